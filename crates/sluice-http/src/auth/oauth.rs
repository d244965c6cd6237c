//! `OAuthAuthenticator`: an access token from a token endpoint, refreshed when it expires.
//!
//! Without a `refresh_token_updater` each authenticator keeps its own token (the reference's
//! `DeclarativeOauth2Authenticator`). With one, the tokens live in the connector config shared by
//! every stream (`SingleUseRefreshTokenOauth2Authenticator`): a refresh writes the new access
//! token, its expiry and the rotated refresh token there and publishes the updated config.

use super::build::{BuildRenderer, compile, error, parameters_value, render_text};
use super::support::{
    self, Outcome, RetryPolicy, auth_error, body_excerpt, config_get, config_set, format_datetime,
    now_utc, parse_datetime,
};
use super::{AuthBuildError, AuthContext, InjectInto, Injection, Secrets, jwt};
use crate::{HttpError, HttpRequest, Method, TransportError};
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpolatedMapping, Template};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use sluice_protocol::FailureType;
use time::OffsetDateTime;

const DEFAULT_LIFETIME: time::Duration = time::Duration::hours(1);
/// How deep the token response is searched for a key.
const MAX_SEARCH_DEPTH: usize = 5;
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub(crate) struct OAuth {
    context: AuthContext,
    parameters: Value,
    endpoint: Option<Template>,
    client_id_name: Template,
    client_id: Option<Template>,
    client_secret_name: Template,
    client_secret: Option<Template>,
    refresh_token_name: Template,
    refresh_token: Option<Template>,
    access_token_name: Template,
    expires_in_name: Template,
    grant_type_name: Template,
    grant_type: Template,
    extra_body: Option<InterpolatedMapping>,
    extra_headers: Option<InterpolatedMapping>,
    as_query_params: bool,
    scopes: Vec<String>,
    /// `token_expiry_date_format` given: `expires_in` is the expiry time, not seconds.
    expiry_is_time: bool,
    rejection: RejectionRules,
    assertion: Option<jwt::Jwt>,
    store: Store,
}

/// Which failed refreshes mean "the refresh token is no longer valid" (a config error).
struct RejectionRules {
    status_codes: Vec<i64>,
    key: String,
    values: Vec<String>,
}

enum Store {
    /// The authenticator's own token.
    Own(tokio::sync::Mutex<OwnToken>),
    /// Tokens in the shared connector config (`refresh_token_updater`).
    Config(ConfigPaths),
}

struct OwnToken {
    access_token: Option<String>,
    expires_at: OffsetDateTime,
}

struct ConfigPaths {
    access_token: Vec<String>,
    refresh_token: Vec<String>,
    expiry: Vec<String>,
    /// The client credentials, read from `credentials.client_id` / `credentials.client_secret`
    /// of the config when there, else the manifest's values (as the reference does).
    client_id: String,
    client_secret: String,
}

/// What a token endpoint answered.
struct TokenResponse {
    access_token: String,
    expires_at: OffsetDateTime,
    refresh_token: Option<Value>,
}

fn strings(path: Option<&Vec<String>>, default: &[&str]) -> Vec<String> {
    path.cloned()
        .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect())
}

impl OAuth {
    pub(crate) fn from_model(
        m: &model::OAuthAuthenticator,
        context: &AuthContext,
        secrets: &Secrets,
        path: &ManifestPath,
    ) -> Result<Self, AuthBuildError> {
        let parameters = parameters_value(m.parameters.as_ref());
        let renderer = BuildRenderer {
            config: &context.config,
            parameters: parameters.clone(),
        };
        let template = |source: Option<&String>, default: &str, field: &str| {
            compile(source.map_or(default, String::as_str), &path.key(field))
        };
        let optional = |source: Option<&String>, field: &str| {
            source.map(|s| compile(s, &path.key(field))).transpose()
        };
        let use_assertion = m.use_profile_assertion.unwrap_or(false);
        let assertion = match (&m.profile_assertion, use_assertion) {
            (Some(profile), true) => Some(jwt::Jwt::from_model(
                profile,
                context,
                secrets,
                &path.key("profile_assertion"),
            )?),
            (None, true) => {
                return Err(error(
                    path,
                    "OAuthAuthenticator configuration error: 'profile_assertion' is required when using the profile assertion flow.",
                ));
            }
            _ => None,
        };
        let rejection = rejection_rules(m, path)?;
        let mapping = |map: Option<&Map<String, Value>>, field: &str| {
            map.filter(|m| !m.is_empty())
                .map(|m| {
                    InterpolatedMapping::new(m).map_err(|e| error(&path.key(field), e.to_string()))
                })
                .transpose()
        };
        for secret in [&m.client_secret, &m.refresh_token, &m.access_token_value]
            .into_iter()
            .flatten()
        {
            if let Ok(value) = renderer.text(secret, path) {
                secrets.add(&value);
            }
        }

        let store = match &m.refresh_token_updater {
            Some(updater) => {
                let updater_path = path.key("refresh_token_updater");
                if m.token_refresh_endpoint.is_none() {
                    return Err(error(
                        &path.key("token_refresh_endpoint"),
                        "a refresh_token_updater needs a token_refresh_endpoint",
                    ));
                }
                let paths = ConfigPaths {
                    access_token: strings(
                        updater.access_token_config_path.as_ref(),
                        &["credentials", "access_token"],
                    ),
                    refresh_token: strings(
                        updater.refresh_token_config_path.as_ref(),
                        &["credentials", "refresh_token"],
                    ),
                    expiry: strings(
                        updater.token_expiry_date_config_path.as_ref(),
                        &["credentials", "token_expiry_date"],
                    ),
                    client_id: config_credential(
                        context,
                        "client_id",
                        m.client_id.as_deref(),
                        &renderer,
                        &path.key("client_id"),
                    )?,
                    client_secret: config_credential(
                        context,
                        "client_secret",
                        m.client_secret.as_deref(),
                        &renderer,
                        &path.key("client_secret"),
                    )?,
                };
                secrets.add(&paths.client_secret);
                for config_path in [&paths.refresh_token, &paths.access_token] {
                    if let Some(value) = config_get(&context.config, config_path) {
                        secrets.add(&value_text(value));
                    }
                }
                // The reference reads the stored expiry when it is built.
                if let Some(stored) = config_get(&context.config, &paths.expiry) {
                    let text = value_text(stored);
                    if !text.is_empty() {
                        parse_datetime(&text).map_err(|e| {
                            error(&updater_path.key("token_expiry_date_config_path"), e)
                        })?;
                    }
                }
                Store::Config(paths)
            }
            None => {
                if !use_assertion && (m.client_id.is_none() || m.client_secret.is_none()) {
                    return Err(error(
                        path,
                        "OAuthAuthenticator configuration error: Both 'client_id' and 'client_secret' are required for the basic OAuth flow.",
                    ));
                }
                let access_token = match &m.access_token_value {
                    Some(source) => Some(renderer.text(source, &path.key("access_token_value"))?)
                        .filter(|token| !token.is_empty()),
                    None => None,
                };
                let expires_at = initial_expiry(
                    m.token_expiry_date.as_deref(),
                    &renderer,
                    &path.key("token_expiry_date"),
                )?;
                Store::Own(tokio::sync::Mutex::new(OwnToken {
                    access_token,
                    expires_at,
                }))
            }
        };
        let refresh_token_name = match &m.refresh_token_updater {
            Some(updater) => template(
                updater.refresh_token_name.as_ref(),
                "refresh_token",
                "refresh_token_updater.refresh_token_name",
            )?,
            None => template(
                m.refresh_token_name.as_ref(),
                "refresh_token",
                "refresh_token_name",
            )?,
        };
        let oauth = Self {
            context: context.clone(),
            endpoint: optional(m.token_refresh_endpoint.as_ref(), "token_refresh_endpoint")?,
            client_id_name: template(m.client_id_name.as_ref(), "client_id", "client_id_name")?,
            client_id: optional(m.client_id.as_ref(), "client_id")?,
            client_secret_name: template(
                m.client_secret_name.as_ref(),
                "client_secret",
                "client_secret_name",
            )?,
            client_secret: optional(m.client_secret.as_ref(), "client_secret")?,
            refresh_token_name,
            refresh_token: optional(m.refresh_token.as_ref(), "refresh_token")?,
            access_token_name: template(
                m.access_token_name.as_ref(),
                "access_token",
                "access_token_name",
            )?,
            expires_in_name: template(m.expires_in_name.as_ref(), "expires_in", "expires_in_name")?,
            grant_type_name: template(m.grant_type_name.as_ref(), "grant_type", "grant_type_name")?,
            grant_type: if use_assertion {
                compile(JWT_BEARER_GRANT, &path.key("grant_type"))?
            } else {
                template(m.grant_type.as_ref(), "refresh_token", "grant_type")?
            },
            extra_body: mapping(m.refresh_request_body.as_ref(), "refresh_request_body")?,
            extra_headers: mapping(
                m.refresh_request_headers.as_ref(),
                "refresh_request_headers",
            )?,
            as_query_params: m.send_refresh_request_as_query_params.unwrap_or(false),
            scopes: m.scopes.clone().unwrap_or_default(),
            expiry_is_time: m
                .token_expiry_date_format
                .as_deref()
                .is_some_and(|f| !f.is_empty()),
            rejection,
            assertion,
            store,
            parameters,
        };
        if let Store::Own(_) = oauth.store {
            let grant = oauth
                .render(&oauth.grant_type)
                .map_err(|e| error(&path.key("grant_type"), e))?;
            if grant == "refresh_token" && oauth.refresh_token.is_none() {
                return Err(error(
                    path,
                    "OAuthAuthenticator configuration error: A 'refresh_token' is required when the 'grant_type' is set to 'refresh_token'.",
                ));
            }
        }
        Ok(oauth)
    }

    fn render(&self, template: &Template) -> Result<String, String> {
        let ctx = Context::new()
            .config(&*self.context.config)
            .parameters(&self.parameters);
        render_text(template, &ctx)
    }

    /// The `Authorization: Bearer` header, after a refresh if the token has expired.
    pub(crate) async fn injections(&self, secrets: &Secrets) -> Result<Vec<Injection>, HttpError> {
        let token = self.current_token(secrets, None).await?;
        Ok(vec![Injection {
            into: InjectInto::Header,
            name: "Authorization".to_owned(),
            value: format!("Bearer {token}"),
            parents: Vec::new(),
        }])
    }

    /// Refreshes now, unless the header that was rejected is no longer the current one.
    pub(crate) async fn force_refresh(
        &self,
        rejected: Option<&str>,
        secrets: &Secrets,
    ) -> Result<(), HttpError> {
        self.current_token(secrets, Some(rejected.unwrap_or_default()))
            .await
            .map(drop)
    }

    /// The access token to use, refreshing it first when it has expired or when `rejected`
    /// (a forced refresh) is still the current header.
    async fn current_token(
        &self,
        secrets: &Secrets,
        rejected: Option<&str>,
    ) -> Result<String, HttpError> {
        let forced = |current: Option<&str>| {
            rejected.is_some_and(|sent| {
                current.is_none_or(|token| sent.is_empty() || format!("Bearer {token}") == sent)
            })
        };
        match &self.store {
            Store::Own(state) => {
                let mut state = state.lock().await;
                if self.endpoint.is_none() {
                    return state.access_token.clone().ok_or_else(|| {
                        auth_error(
                            FailureType::SystemError,
                            "OAuthAuthenticator: access_token is not set",
                            "access_token is not set and there is no token_refresh_endpoint",
                        )
                    });
                }
                let expired = state.access_token.is_none() || now_utc() > state.expires_at;
                if expired || forced(state.access_token.as_deref()) {
                    let still_valid = (!expired).then_some(state.expires_at);
                    let refresh_token = self
                        .refresh_token
                        .as_ref()
                        .map(|t| self.render(t))
                        .transpose()
                        .map_err(render_failure)?;
                    let response = self
                        .request_token(refresh_token, None, still_valid, secrets)
                        .await?;
                    state.access_token = Some(response.access_token);
                    state.expires_at = response.expires_at;
                }
                Ok(state.access_token.clone().unwrap_or_default())
            }
            Store::Config(paths) => {
                let mut live = self.context.shared.live_config.lock().await;
                let stored = config_get(&live, &paths.expiry)
                    .map(value_text)
                    .unwrap_or_default();
                let expires_at = if stored.is_empty() {
                    now_utc() - time::Duration::days(1)
                } else {
                    parse_datetime(&stored)
                        .map_err(|e| auth_error(FailureType::SystemError, e.clone(), e))?
                };
                let expired = now_utc() > expires_at;
                let current = config_get(&live, &paths.access_token).map(value_text);
                if expired || forced(current.as_deref()) {
                    let refresh_token = config_get(&live, &paths.refresh_token)
                        .map(value_text)
                        .unwrap_or_default();
                    let credentials = (paths.client_id.clone(), paths.client_secret.clone());
                    let still_valid = (!expired).then_some(expires_at);
                    let response = self
                        .request_token(Some(refresh_token), Some(credentials), still_valid, secrets)
                        .await?;
                    config_set(
                        &mut live,
                        &paths.access_token,
                        Value::String(response.access_token),
                    );
                    if let Some(rotated) = response.refresh_token {
                        secrets.add(&value_text(&rotated));
                        config_set(&mut live, &paths.refresh_token, rotated);
                    }
                    config_set(
                        &mut live,
                        &paths.expiry,
                        Value::String(format_datetime(response.expires_at)),
                    );
                    self.context.publish(&live);
                }
                Ok(config_get(&live, &paths.access_token)
                    .map(value_text)
                    .unwrap_or_default())
            }
        }
    }

    /// The refresh request's arguments, in the reference's order.
    fn refresh_arguments(
        &self,
        refresh_token: Option<String>,
        credentials: Option<(String, String)>,
        headers: &Map<String, Value>,
    ) -> Result<Map<String, Value>, HttpError> {
        let mut args = Map::new();
        let grant_type_name = self.render(&self.grant_type_name).map_err(render_failure)?;
        args.insert(
            grant_type_name.clone(),
            Value::String(self.render(&self.grant_type).map_err(render_failure)?),
        );
        if let Some(jwt) = &self.assertion {
            args.insert(
                "assertion".to_owned(),
                Value::String(jwt.token().map_err(|e| {
                    auth_error(
                        FailureType::SystemError,
                        "OAuth access token refresh request failed.",
                        e,
                    )
                })?),
            );
            return Ok(args);
        }
        // Credentials already in an Authorization header must not be sent twice.
        if !headers.contains_key("Authorization") {
            let (client_id, client_secret) = match credentials {
                Some(pair) => (Value::String(pair.0), Value::String(pair.1)),
                None => {
                    let id = match &self.client_id {
                        Some(t) => self.render(t).map_err(render_failure)?,
                        None => String::new(),
                    };
                    if id.is_empty() {
                        return Err(refresh_failure(
                            "OAuthAuthenticator was unable to evaluate client_id parameter",
                        ));
                    }
                    let secret = match &self.client_secret {
                        Some(t) => Value::String(self.render(t).map_err(render_failure)?),
                        None => Value::Null,
                    };
                    if secret.as_str().is_none_or(str::is_empty) {
                        tracing::warn!(
                            "OAuthAuthenticator was unable to evaluate client_secret parameter hence it'll be empty"
                        );
                    }
                    (Value::String(id), secret)
                }
            };
            args.insert(
                self.render(&self.client_id_name).map_err(render_failure)?,
                client_id,
            );
            args.insert(
                self.render(&self.client_secret_name)
                    .map_err(render_failure)?,
                client_secret,
            );
        }
        let refresh_token_name = self
            .render(&self.refresh_token_name)
            .map_err(render_failure)?;
        args.insert(
            refresh_token_name,
            refresh_token.map_or(Value::Null, Value::String),
        );
        if !self.scopes.is_empty() {
            args.insert("scopes".to_owned(), Value::from(self.scopes.clone()));
        }
        if let Some(extra) = &self.extra_body {
            let ctx = Context::new()
                .config(&*self.context.config)
                .parameters(&self.parameters);
            for (key, value) in extra
                .eval(&ctx, &[])
                .map_err(|e| render_failure(e.to_string()))?
            {
                args.entry(key).or_insert(value);
            }
        }
        Ok(args)
    }

    /// Asks the token endpoint for a new access token.
    async fn request_token(
        &self,
        refresh_token: Option<String>,
        credentials: Option<(String, String)>,
        still_valid_until: Option<OffsetDateTime>,
        secrets: &Secrets,
    ) -> Result<TokenResponse, HttpError> {
        let endpoint = match &self.endpoint {
            Some(t) => self.render(t).map_err(render_failure)?,
            None => String::new(),
        };
        if endpoint.is_empty() {
            return Err(refresh_failure(
                "OAuthAuthenticator was unable to evaluate token_refresh_endpoint parameter",
            ));
        }
        let headers = match &self.extra_headers {
            Some(mapping) => {
                let ctx = Context::new()
                    .config(&*self.context.config)
                    .parameters(&self.parameters);
                mapping
                    .eval(&ctx, &[])
                    .map_err(|e| render_failure(e.to_string()))?
            }
            None => Map::new(),
        };
        let args = self.refresh_arguments(refresh_token, credentials, &headers)?;
        let pairs = support::form_pairs(&args);
        let mut request = HttpRequest::new(Method::Post, endpoint);
        if self.as_query_params {
            request = request.with_query(&pairs);
        } else if !pairs.is_empty() {
            request = request.with_body(
                "application/x-www-form-urlencoded",
                support::form_encode(&pairs),
            );
        }
        for (name, value) in &headers {
            if !value.is_null() {
                request.set_header(name, value_text(value));
            }
        }
        let mask = |text: &str| mask(text, secrets);
        let response = match support::send_with_retries(
            &*self.context.transport,
            &request,
            RetryPolicy::TokenRefresh,
            "Refresh token",
        )
        .await
        {
            Outcome::Response(response) => response,
            Outcome::GaveUp(response) => {
                return Err(auth_error(
                    FailureType::TransientError,
                    "OAuth access token refresh request failed after retries.",
                    mask(&format!(
                        "'POST' request to '{}' failed with status code '{}'. Response (body): '{}'",
                        request.url,
                        response.status,
                        body_excerpt(&response.body, 1000)
                    )),
                ));
            }
            Outcome::Unreachable(TransportError::NotRecorded(text)) => {
                return Err(auth_error(
                    FailureType::SystemError,
                    mask(&text),
                    mask(&text),
                ));
            }
            Outcome::Unreachable(e) => {
                return Err(auth_error(
                    FailureType::TransientError,
                    "OAuth access token refresh request failed due to a network error.",
                    mask(&format!(
                        "Network error during OAuth token refresh after retries were exhausted: {e}"
                    )),
                ));
            }
        };
        if response.status >= 400 {
            return Err(self.rejection_error(&request, &response, secrets));
        }
        let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            auth_error(
                FailureType::SystemError,
                "OAuth access token refresh request failed.",
                format!("Unexpected error during OAuth token refresh: {e}"),
            )
        })?;
        let access_name = self
            .render(&self.access_token_name)
            .map_err(render_failure)?;
        let access_token = find_key(&body, &access_name, 0)?;
        let access_token = match access_token {
            Some(value) if python_truthy(value) => value_text(value),
            _ => {
                let message =
                    format!("Token refresh API response was missing access token {access_name}");
                return Err(auth_error(
                    FailureType::SystemError,
                    message.clone(),
                    message,
                ));
            }
        };
        secrets.add(&access_token);
        let expires_in_name = self.render(&self.expires_in_name).map_err(render_failure)?;
        let expires_at = match find_key(&body, &expires_in_name, 0)? {
            Some(value) if !value.is_null() => self.parse_expiry(value)?,
            _ => still_valid_until.unwrap_or_else(|| now_utc() + DEFAULT_LIFETIME),
        };
        let refresh_token_name = self
            .render(&self.refresh_token_name)
            .map_err(render_failure)?;
        let refresh_token = match &self.store {
            Store::Config(_) => find_key(&body, &refresh_token_name, 0)?
                .filter(|v| !v.is_null())
                .cloned(),
            Store::Own(_) => None,
        };
        tracing::debug!(
            "Refresh token: obtained an access token from {}",
            mask(&request.url)
        );
        Ok(TokenResponse {
            access_token,
            expires_at,
            refresh_token,
        })
    }

    fn parse_expiry(&self, value: &Value) -> Result<OffsetDateTime, HttpError> {
        let text = value_text(value);
        if self.expiry_is_time {
            return parse_datetime(&text).map_err(|e| {
                let message = format!("Invalid token expiry date format: {e}");
                auth_error(FailureType::SystemError, message.clone(), message)
            });
        }
        let seconds = text.trim().parse::<f64>().ok().filter(|s| s.is_finite()).ok_or_else(|| {
            let message = format!("Invalid expires_in value: {text}. Expected number of seconds when no format specified.");
            auth_error(FailureType::SystemError, message.clone(), message)
        })?;
        Ok(now_utc() + time::Duration::seconds(seconds.trunc() as i64))
    }

    /// The error for a token endpoint that answered 4xx.
    fn rejection_error(
        &self,
        request: &HttpRequest,
        response: &crate::HttpResponse,
        secrets: &Secrets,
    ) -> HttpError {
        let content: Option<Map<String, Value>> = serde_json::from_slice(&response.body).ok();
        let body = mask(&body_excerpt(&response.body, 1000), secrets);
        let matches_rule = content.as_ref().is_some_and(|c| {
            self.rejection
                .status_codes
                .contains(&i64::from(response.status))
                && c.get(&self.rejection.key)
                    .and_then(Value::as_str)
                    .is_some_and(|v| self.rejection.values.iter().any(|x| x == v))
        });
        if matches_rule {
            let mut message = "Refresh token was rejected by the OAuth provider (invalid, expired, or already used). Re-authenticate this source's credentials in its connection settings.".to_owned();
            if let Some(detail) = content.as_ref().and_then(|c| provider_detail(c, secrets)) {
                message.push_str(" Provider error: ");
                message.push_str(&detail);
            }
            return auth_error(
                FailureType::ConfigError,
                message,
                format!(
                    "Refresh token rejected by the OAuth token endpoint. HTTP {}: {body}",
                    response.status
                ),
            );
        }
        // Like `requests`' HTTPError, which the reference lets through as a system error.
        let reason = http::StatusCode::from_u16(response.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let message = format!(
            "{} Client Error: {reason} for url: {}",
            response.status,
            mask(&request.url, secrets)
        );
        auth_error(
            FailureType::SystemError,
            message.clone(),
            format!("{message}. Response (body): '{body}'"),
        )
    }
}

fn rejection_rules(
    m: &model::OAuthAuthenticator,
    path: &ManifestPath,
) -> Result<RejectionRules, AuthBuildError> {
    let on_updater = m.refresh_token_updater.as_ref().filter(|u| {
        u.refresh_token_error_status_codes
            .as_ref()
            .is_some_and(|c| !c.is_empty())
            || u.refresh_token_error_key
                .as_ref()
                .is_some_and(|k| !k.is_empty())
            || u.refresh_token_error_values
                .as_ref()
                .is_some_and(|v| !v.is_empty())
    });
    let on_authenticator = m
        .refresh_token_error_status_codes
        .as_ref()
        .is_some_and(|c| !c.is_empty())
        || m.refresh_token_error_key
            .as_ref()
            .is_some_and(|k| !k.is_empty())
        || m.refresh_token_error_values
            .as_ref()
            .is_some_and(|v| !v.is_empty());
    Ok(match (on_updater, on_authenticator) {
        (Some(_), true) => {
            return Err(error(
                path,
                "refresh_token_error should either be defined on the OAuthAuthenticatorModel or the RefreshTokenUpdaterModel, not both",
            ));
        }
        (Some(u), false) => RejectionRules {
            status_codes: u
                .refresh_token_error_status_codes
                .clone()
                .unwrap_or_default(),
            key: u.refresh_token_error_key.clone().unwrap_or_default(),
            values: u.refresh_token_error_values.clone().unwrap_or_default(),
        },
        (None, true) => RejectionRules {
            status_codes: m
                .refresh_token_error_status_codes
                .clone()
                .unwrap_or_default(),
            key: m.refresh_token_error_key.clone().unwrap_or_default(),
            values: m.refresh_token_error_values.clone().unwrap_or_default(),
        },
        (None, false) => RejectionRules {
            status_codes: vec![400],
            key: "error".to_owned(),
            values: vec!["invalid_grant".to_owned(), "invalid_permissions".to_owned()],
        },
    })
}

/// `credentials.<name>` of the config, else the manifest's template rendered.
fn config_credential(
    context: &AuthContext,
    name: &str,
    manifest_value: Option<&str>,
    renderer: &BuildRenderer<'_>,
    path: &ManifestPath,
) -> Result<String, AuthBuildError> {
    if let Some(value) = config_get(
        &context.config,
        &["credentials".to_owned(), name.to_owned()],
    ) {
        return Ok(value_text(value));
    }
    match manifest_value {
        Some(source) => renderer.text(source, path),
        None => Ok(String::new()),
    }
}

/// The expiry the authenticator starts with: `token_expiry_date` (a timestamp or a template),
/// else already expired.
fn initial_expiry(
    source: Option<&str>,
    renderer: &BuildRenderer<'_>,
    path: &ManifestPath,
) -> Result<OffsetDateTime, AuthBuildError> {
    let invalid = |e: String| error(path, format!("Invalid token expiry date format: {e}"));
    match source {
        None | Some("") => Ok(now_utc() - time::Duration::days(1)),
        Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
            parse_datetime(text).map_err(invalid)
        }
        Some(template) => parse_datetime(&renderer.text(template, path)?).map_err(invalid),
    }
}

/// The reference's recursive search of a token response for a key: the top level first, then
/// nested objects and lists, at most five levels down.
fn find_key<'a>(data: &'a Value, key: &str, depth: usize) -> Result<Option<&'a Value>, HttpError> {
    if depth > MAX_SEARCH_DEPTH {
        let message = format!(
            "The maximum level of recursion is reached. Couldn't find the specified `{key}` in the response."
        );
        return Err(auth_error(
            FailureType::ConfigError,
            message.clone(),
            message,
        ));
    }
    match data {
        Value::Object(map) => {
            if let Some(value) = map.get(key) {
                return Ok(Some(value));
            }
            for value in map.values() {
                if let Some(found) = find_key(value, key, depth + 1)?.filter(|v| !v.is_null()) {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        }
        Value::Array(items) => {
            for item in items {
                if let Some(found) = find_key(item, key, depth + 1)?.filter(|v| !v.is_null()) {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The short provider error the reference appends to its message: the OAuth `error` code and
/// a leading provider code of `error_description` (`AADSTS50173`).
fn provider_detail(content: &Map<String, Value>, secrets: &Secrets) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(error) = content.get("error").and_then(Value::as_str) {
        let words: Vec<&str> = error.split_whitespace().collect();
        if !words.is_empty() {
            parts.push(words.join(" "));
        }
    }
    if let Some(description) = content.get("error_description").and_then(Value::as_str) {
        let description = description.trim();
        let letters = description
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let digits = description[letters..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = letters + digits;
        let boundary = description[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        if letters >= 3 && digits >= 4 && boundary {
            parts.push(description[..end].to_owned());
        }
    }
    if parts.is_empty() {
        return None;
    }
    let detail = mask(&parts.join(": "), secrets);
    Some(match detail.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &detail[..cut]),
        None => detail,
    })
}

fn mask(text: &str, secrets: &Secrets) -> String {
    secrets.mask(text)
}

/// A JSON value as Python's `str()` prints it, strings unquoted.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => sluice_interp::python_str(other),
    }
}

fn python_truthy(value: &Value) -> bool {
    sluice_interp::is_truthy(value)
}

fn refresh_failure(reason: &str) -> HttpError {
    auth_error(
        FailureType::SystemError,
        "OAuth access token refresh request failed.",
        format!("Unexpected error during OAuth token refresh: {reason}"),
    )
}

fn render_failure(reason: String) -> HttpError {
    refresh_failure(&reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_keys_nested_and_stops_at_depth() {
        let body = json!({"data": {"token": {"access_token": "abc"}}, "expires_in": 60});
        assert_eq!(
            find_key(&body, "access_token", 0).unwrap(),
            Some(&json!("abc"))
        );
        assert_eq!(find_key(&body, "expires_in", 0).unwrap(), Some(&json!(60)));
        assert_eq!(find_key(&body, "missing", 0).unwrap(), None);
        let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}});
        let error = find_key(&deep, "missing", 0).unwrap_err();
        assert_eq!(error.failure_type, FailureType::ConfigError);
    }

    #[test]
    fn provider_detail_keeps_only_stable_codes() {
        let secrets = Secrets::default();
        let content = json!({"error": "invalid_grant", "error_description": "AADSTS50173: The grant expired at 2024-01-01"});
        assert_eq!(
            provider_detail(content.as_object().unwrap(), &secrets).as_deref(),
            Some("invalid_grant: AADSTS50173")
        );
        let content = json!({"error_description": "expired at 12:00"});
        assert_eq!(
            provider_detail(content.as_object().unwrap(), &secrets),
            None
        );
    }
}
