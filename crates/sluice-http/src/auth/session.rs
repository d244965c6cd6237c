//! Session tokens: `SessionTokenAuthenticator` (a login request described by a requester) and
//! `LegacySessionTokenAuthenticator` (a configured token checked against a validation URL, or a
//! username/password login).

use super::build::{
    BuildRenderer, compile, error, injection_at, parameters_value, render_text, request_option,
};
use super::oauth::value_text;
use super::support::{self, IsoDuration, Outcome, RetryPolicy, auth_error, body_excerpt, now_utc};
use super::{AuthBuildError, AuthContext, Authenticator, InjectInto, Injection, Secrets};
use crate::url_join::{join_url, manifest_path};
use crate::{HttpError, HttpRequest, HttpResponse, Method, RequestMapping, TransportError};
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpolatedNestedMapping, Template};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use sluice_protocol::FailureType;
use time::OffsetDateTime;

pub(crate) struct SessionToken {
    login: LoginRequest,
    /// Reads the login response as XML (`decoder: XmlDecoder`) instead of JSON.
    xml: Option<super::XmlDecoder>,
    token_path: Vec<String>,
    /// Without one the reference logs in for every request.
    lifetime: Option<IsoDuration>,
    state: tokio::sync::Mutex<Option<(Value, Option<OffsetDateTime>)>>,
    injection: SessionInjection,
}

enum SessionInjection {
    Bearer,
    ApiKey {
        target: (InjectInto, String, Vec<String>),
        /// Renders the injected value from `session_token` (default `{{ session_token }}`).
        value: Template,
        parameters: Value,
    },
}

impl SessionToken {
    pub(crate) fn from_model(
        m: &model::SessionTokenAuthenticator,
        context: &AuthContext,
        secrets: &Secrets,
        path: &ManifestPath,
    ) -> Result<Self, AuthBuildError> {
        let xml = match &m.decoder {
            Some(model::SessionTokenDecoder::XmlDecoder(_)) => {
                Some(context.xml_decoder.clone().ok_or_else(|| {
                    error(
                        &path.key("decoder"),
                        "an XmlDecoder for the login response needs the XML decoder of sluice-records (AuthContext::with_xml_decoder)",
                    )
                })?)
            }
            _ => None,
        };
        let lifetime = m
            .expiration_duration
            .as_deref()
            .map(|text| {
                IsoDuration::parse(text).map_err(|e| error(&path.key("expiration_duration"), e))
            })
            .transpose()?;
        let parameters = parameters_value(m.parameters.as_ref());
        let injection = match &m.request_authentication {
            model::SessionTokenRequestAuthentication::SessionTokenRequestBearerAuthenticator(_) => {
                SessionInjection::Bearer
            }
            model::SessionTokenRequestAuthentication::SessionTokenRequestApiKeyAuthenticator(
                api_key,
            ) => {
                let option_path = path.key("request_authentication").key("inject_into");
                let renderer = BuildRenderer {
                    config: &context.config,
                    parameters: Value::Object(Map::new()),
                };
                SessionInjection::ApiKey {
                    target: request_option(&api_key.inject_into, &renderer, &option_path)?,
                    value: compile(
                        api_key
                            .api_token
                            .as_deref()
                            .filter(|t| !t.is_empty())
                            .unwrap_or("{{ session_token }}"),
                        &path.key("request_authentication").key("api_token"),
                    )?,
                    parameters,
                }
            }
        };
        Ok(Self {
            xml,
            login: LoginRequest::from_model(
                &m.login_requester,
                context,
                secrets,
                &path.key("login_requester"),
            )?,
            token_path: m.session_token_path.clone(),
            lifetime,
            state: tokio::sync::Mutex::new(None),
            injection,
        })
    }

    pub(crate) async fn injections(&self, secrets: &Secrets) -> Result<Vec<Injection>, HttpError> {
        let token = self.token(secrets).await?;
        let token_text = value_text(&token);
        Ok(vec![match &self.injection {
            SessionInjection::Bearer => Injection {
                into: InjectInto::Header,
                name: "Authorization".to_owned(),
                value: format!("Bearer {token_text}"),
                parents: Vec::new(),
            },
            SessionInjection::ApiKey {
                target,
                value,
                parameters,
            } => {
                let ctx = Context::new()
                    .config(&*self.login.config)
                    .parameters(parameters)
                    .with("session_token", &token);
                let rendered = render_text(value, &ctx).map_err(|e| {
                    auth_error(
                        FailureType::ConfigError,
                        format!(
                            "{}: cannot render the session token's api_token: {e}",
                            self.login.origin
                        ),
                        e,
                    )
                })?;
                secrets.add(&rendered);
                injection_at(target, rendered)
            }
        }])
    }

    /// The session token, logging in first when there is none or it has expired.
    async fn token(&self, secrets: &Secrets) -> Result<Value, HttpError> {
        let mut state = self.state.lock().await;
        let fresh = match (&*state, self.lifetime) {
            (Some((token, Some(expires_at))), Some(_)) if *expires_at >= now_utc() => {
                Some(token.clone())
            }
            _ => None,
        };
        if let Some(token) = fresh {
            return Ok(token);
        }
        let response = self.login.send(secrets, "Login request").await?;
        let body: Value = match &self.xml {
            // As the reference's XmlDecoder, a body that is not XML reads as `{}`.
            Some(xml) => xml(&response.body).unwrap_or_else(|| Value::Object(Map::new())),
            None => serde_json::from_slice(&response.body).map_err(|e| {
                auth_error(
                    FailureType::SystemError,
                    "Failed to get session token: the login response is not JSON",
                    format!("{}: the login response is not JSON: {e}", self.login.origin),
                )
            })?,
        };
        let first = match body {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        let token = support::config_get(&first, &self.token_path)
            .cloned()
            .ok_or_else(|| {
                let message = format!(
                    "Failed to get session token: the login response has no value at {:?}",
                    self.token_path
                );
                auth_error(FailureType::SystemError, message.clone(), message)
            })?;
        if token.is_null() {
            let message = "Failed to get session token, token is None";
            return Err(auth_error(FailureType::SystemError, message, message));
        }
        secrets.add(&value_text(&token));
        let expires_at = self.lifetime.map(|d| d.after(now_utc()));
        *state = Some((token.clone(), expires_at));
        Ok(token)
    }
}

/// A login requester: an `HttpRequester` whose one request is sent to get a session token.
struct LoginRequest {
    origin: String,
    config: std::sync::Arc<Value>,
    parameters: Value,
    url: Template,
    path: Option<Template>,
    method: Method,
    params: RequestMapping,
    headers: RequestMapping,
    body: LoginBody,
    authenticator: Authenticator,
    context: AuthContext,
}

enum LoginBody {
    None,
    Json(InterpolatedNestedMapping),
    Form(RequestMapping),
    Text(Template),
}

impl LoginRequest {
    fn from_model(
        m: &model::HttpRequester,
        context: &AuthContext,
        secrets: &Secrets,
        path: &ManifestPath,
    ) -> Result<Self, AuthBuildError> {
        let unsupported = |field: &str, what: &str| {
            Err(error(
                &path.key(field),
                format!("{what} in a login_requester is not supported by sluice"),
            ))
        };
        if m.error_handler.is_some() {
            return unsupported("error_handler", "an error_handler");
        }
        if m.query_properties.is_some() || m.fetch_properties_from_endpoint.is_some() {
            return unsupported("query_properties", "query properties");
        }
        let (url, path_template) = match (&m.url, &m.url_base) {
            (Some(url), _) => (url, m.path.as_ref()),
            (None, Some(base)) => (base, m.path.as_ref()),
            (None, None) => {
                return Err(error(path, "the login_requester needs a url or a url_base"));
            }
        };
        let mapping = |map: Map<String, Value>, field: &str| {
            RequestMapping::new(&map).map_err(|e| error(&path.key(field), e.to_string()))
        };
        let params = match &m.request_parameters {
            None => RequestMapping::default(),
            Some(model::RequestParameters::Map(map)) => {
                let mut plain = Map::new();
                for (key, value) in map {
                    match value {
                        model::RequestParameterValue::String(s) => {
                            plain.insert(key.clone(), Value::String(s.clone()));
                        }
                        _ => return unsupported("request_parameters", "QueryProperties"),
                    }
                }
                mapping(plain, "request_parameters")?
            }
            Some(model::RequestParameters::String(_)) => {
                return unsupported("request_parameters", "a string of request parameters");
            }
        };
        let string_map = |map: &indexmap::IndexMap<String, String>| -> Map<String, Value> {
            map.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        };
        let headers = match &m.request_headers {
            None => RequestMapping::default(),
            Some(model::StringOrStringMap::Map(map)) => {
                mapping(string_map(map), "request_headers")?
            }
            Some(model::StringOrStringMap::String(_)) => {
                return unsupported("request_headers", "a string of request headers");
            }
        };
        let nested = |value: Value, field: &str| {
            InterpolatedNestedMapping::new(&value)
                .map_err(|e| error(&path.key(field), e.to_string()))
        };
        let body = match (&m.request_body, &m.request_body_json, &m.request_body_data) {
            (Some(model::RequestBody::RequestBodyJsonObject(b)), _, _) => {
                LoginBody::Json(nested(Value::Object(b.value.clone()), "request_body")?)
            }
            (Some(model::RequestBody::RequestBodyUrlEncodedForm(b)), _, _) => {
                LoginBody::Form(mapping(string_map(&b.value), "request_body")?)
            }
            (Some(model::RequestBody::RequestBodyPlainText(b)), _, _) => {
                LoginBody::Text(compile(&b.value, &path.key("request_body"))?)
            }
            (Some(model::RequestBody::RequestBodyGraphQL(_)), _, _) => {
                return unsupported("request_body", "a GraphQL body");
            }
            (None, Some(model::StringOrObject::Map(map)), _) if !map.is_empty() => {
                LoginBody::Json(nested(Value::Object(map.clone()), "request_body_json")?)
            }
            (None, Some(model::StringOrObject::String(text)), _) => {
                LoginBody::Json(nested(Value::String(text.clone()), "request_body_json")?)
            }
            (None, _, Some(model::StringOrStringMap::Map(map))) if !map.is_empty() => {
                LoginBody::Form(mapping(string_map(map), "request_body_data")?)
            }
            (None, _, Some(model::StringOrStringMap::String(text))) => {
                LoginBody::Text(compile(text, &path.key("request_body_data"))?)
            }
            _ => LoginBody::None,
        };
        let authenticator = match &m.authenticator {
            Some(auth) => Authenticator::from_model(
                auth,
                context,
                m.url_base.as_deref(),
                &path.key("authenticator"),
            )?,
            None => Authenticator::none(),
        };
        for secret in authenticator.secrets() {
            secrets.add(&secret);
        }
        Ok(Self {
            origin: path.to_string(),
            config: std::sync::Arc::clone(&context.config),
            parameters: parameters_value(m.parameters.as_ref()),
            url: compile(
                url,
                &path.key(if m.url.is_some() { "url" } else { "url_base" }),
            )?,
            path: path_template
                .map(|p| compile(p, &path.key("path")))
                .transpose()?,
            method: match m.http_method {
                Some(model::HttpMethod::Post) => Method::Post,
                _ => Method::Get,
            },
            params,
            headers,
            body,
            authenticator,
            context: context.clone(),
        })
    }

    fn build(&self, auth: &[Injection]) -> Result<HttpRequest, String> {
        let empty = Value::Object(Map::new());
        let ctx = Context::new()
            .config(&*self.config)
            .parameters(&self.parameters)
            .stream_slice(&empty);
        let base = render_text(&self.url, &ctx)?;
        let url = match &self.path {
            Some(path) => {
                let path = render_text(path, &ctx)?;
                if path.is_empty() {
                    base
                } else {
                    join_url(&base, manifest_path(&path))
                }
            }
            None => base,
        };
        let mut query = Vec::new();
        self.params.render(&ctx, &mut query)?;
        let of = |into: InjectInto| auth.iter().filter(move |i| i.into == into);
        query.extend(of(InjectInto::RequestParameter).map(|i| (i.name.clone(), i.value.clone())));
        let mut request = HttpRequest::new(self.method, url).with_query(&query);
        let mut headers = Vec::new();
        self.headers.render(&ctx, &mut headers)?;
        for (name, value) in headers {
            request.set_header(&name, value);
        }
        match &self.body {
            LoginBody::None | LoginBody::Json(_) => {
                let mut body = match &self.body {
                    LoginBody::Json(mapping) => mapping.eval(&ctx).map_err(|e| e.to_string())?,
                    _ => Value::Object(Map::new()),
                };
                if let Value::String(text) = &body {
                    body = serde_json::from_str(text)
                        .map_err(|e| format!("request_body_json is not a JSON object: {e}"))?;
                }
                for injection in of(InjectInto::BodyJson) {
                    insert_nested(&mut body, injection);
                }
                let is_empty = body.as_object().is_some_and(Map::is_empty);
                if !is_empty {
                    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                    request = request.with_body("application/json", bytes);
                }
                if of(InjectInto::BodyData).next().is_some() {
                    return Err(
                        "a body_data injection cannot go into a JSON login request".to_owned()
                    );
                }
            }
            LoginBody::Form(mapping) => {
                let mut pairs = Vec::new();
                mapping.render(&ctx, &mut pairs)?;
                pairs.extend(of(InjectInto::BodyData).map(|i| (i.name.clone(), i.value.clone())));
                request = request.with_body(
                    "application/x-www-form-urlencoded",
                    support::form_encode(&pairs),
                );
            }
            LoginBody::Text(template) => {
                request.body = Some(render_text(template, &ctx)?.into());
            }
        }
        for injection in of(InjectInto::Header) {
            request.set_header(&injection.name, injection.value.clone());
        }
        Ok(request)
    }

    /// Sends the login request with the default requester's retries; a failure names the
    /// request with secrets masked.
    async fn send(&self, secrets: &Secrets, what: &str) -> Result<HttpResponse, HttpError> {
        // Boxed: a login requester may itself use a session token authenticator.
        let auth = Box::pin(self.authenticator.injections()).await?;
        let request = self.build(&auth).map_err(|e| {
            HttpError::config(format!(
                "{}: cannot build the login request: {e}",
                self.origin
            ))
        })?;
        // The password a login sends comes from a template: it is known only now.
        for credential in crate::secrets::credentials_in(&request) {
            secrets.add(&credential);
        }
        let masked = |text: &str| mask(text, secrets, &self.authenticator);
        let failed = |response: &HttpResponse| {
            let failure_type = match response.status {
                401 | 403 => FailureType::ConfigError,
                429 | 500.. => FailureType::TransientError,
                _ => FailureType::SystemError,
            };
            auth_error(
                failure_type,
                format!(
                    "{what} failed with status code {} ({})",
                    response.status, self.origin
                ),
                masked(&format!(
                    "'{}' request to '{}' failed with status code '{}'. Response (body): '{}'",
                    request.method,
                    request.url,
                    response.status,
                    body_excerpt(&response.body, 1000)
                )),
            )
        };
        match support::send_with_retries(
            &*self.context.transport,
            &request,
            RetryPolicy::Requester,
            what,
        )
        .await
        {
            Outcome::Response(response) if response.is_success() => Ok(response),
            Outcome::Response(response) | Outcome::GaveUp(response) => Err(failed(&response)),
            Outcome::Unreachable(TransportError::NotRecorded(text)) => Err(auth_error(
                FailureType::SystemError,
                masked(&text),
                masked(&text),
            )),
            Outcome::Unreachable(e) => Err(auth_error(
                FailureType::TransientError,
                format!("{what} failed: {}", masked(&e.to_string())),
                masked(&e.to_string()),
            )),
        }
    }
}

fn insert_nested(body: &mut Value, injection: &Injection) {
    let mut current = body;
    for key in &injection.parents {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        current = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(map) = current {
        map.insert(
            injection.name.clone(),
            Value::String(injection.value.clone()),
        );
    }
}

fn mask(text: &str, secrets: &Secrets, inner: &Authenticator) -> String {
    let list: Vec<String> = secrets.list().into_iter().chain(inner.secrets()).collect();
    crate::secrets::mask(text, list.iter().map(String::as_str))
}

/// `LegacySessionTokenAuthenticator`: the configured `session_token` while the validation URL
/// accepts it, else a token from logging in with username and password.
pub(crate) struct LegacySessionToken {
    context: AuthContext,
    header: String,
    api_url: String,
    session_token: String,
    response_key: String,
    username: String,
    password: String,
    login_url: String,
    validate_url: String,
    /// Whether the configured token was accepted, once asked.
    validated: tokio::sync::Mutex<Option<bool>>,
}

impl LegacySessionToken {
    pub(crate) fn from_model(
        m: &model::LegacySessionTokenAuthenticator,
        context: &AuthContext,
        url_base: Option<&str>,
        secrets: &Secrets,
        path: &ManifestPath,
    ) -> Result<Self, AuthBuildError> {
        let renderer = BuildRenderer {
            config: &context.config,
            parameters: parameters_value(m.parameters.as_ref()),
        };
        let url_base = url_base.ok_or_else(|| {
            error(
                path,
                "LegacySessionTokenAuthenticator needs the requester's url_base",
            )
        })?;
        let text = |source: Option<&String>, field: &str| {
            renderer.text(source.map_or("", String::as_str), &path.key(field))
        };
        let legacy = Self {
            context: context.clone(),
            header: renderer.text(&m.header, &path.key("header"))?,
            api_url: renderer.text(url_base, &path.key("url_base"))?,
            session_token: text(m.session_token.as_ref(), "session_token")?,
            response_key: renderer.text(
                &m.session_token_response_key,
                &path.key("session_token_response_key"),
            )?,
            username: text(m.username.as_ref(), "username")?,
            password: text(m.password.as_ref(), "password")?,
            login_url: renderer.text(&m.login_url, &path.key("login_url"))?,
            validate_url: renderer
                .text(&m.validate_session_url, &path.key("validate_session_url"))?,
            validated: tokio::sync::Mutex::new(None),
        };
        secrets.add(&legacy.session_token);
        secrets.add(&legacy.password);
        Ok(legacy)
    }

    pub(crate) async fn injections(&self, secrets: &Secrets) -> Result<Vec<Injection>, HttpError> {
        if self.header.is_empty() {
            return Ok(Vec::new());
        }
        let token = self.token(secrets).await?;
        Ok(vec![Injection {
            into: InjectInto::Header,
            name: self.header.clone(),
            value: token,
            parents: Vec::new(),
        }])
    }

    async fn token(&self, secrets: &Secrets) -> Result<String, HttpError> {
        if !self.session_token.is_empty() && self.session_token_is_valid(secrets).await? {
            return Ok(self.session_token.clone());
        }
        if self.username.is_empty() || self.password.is_empty() {
            let message =
                "Invalid credentials: session token is not valid or provide username and password";
            return Err(auth_error(FailureType::SystemError, message, message));
        }
        let url = format!("{}{}", self.api_url, self.login_url);
        let cache_key = format!(
            "{url}\u{0}{}\u{0}{}\u{0}{}",
            self.username, self.password, self.response_key
        );
        let mut cache = self.context.shared.legacy_tokens.lock().await;
        if let Some(token) = cache.get(&cache_key) {
            return Ok(token.clone());
        }
        tracing::info!("Using generated session token by username and password");
        let body = serde_json::json!({"username": self.username, "password": self.password});
        let request =
            HttpRequest::new(Method::Post, url).with_body("application/json", body.to_string());
        let response = self
            .context
            .transport
            .send(&request)
            .await
            .map_err(|e| transport_failure(&e, secrets))?;
        if !response.is_success() {
            return Err(status_failure(
                "Failed to retrieve new session token",
                &request,
                &response,
                secrets,
            ));
        }
        let parsed: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let token = parsed
            .get(&self.response_key)
            .map(value_text)
            .ok_or_else(|| {
                let message = format!(
                    "Failed to retrieve new session token: the response has no '{}'",
                    self.response_key
                );
                auth_error(FailureType::SystemError, message.clone(), message)
            })?;
        secrets.add(&token);
        cache.insert(cache_key, token.clone());
        Ok(token)
    }

    /// Asks the validation URL once whether the configured token is accepted: 401 means no,
    /// any other failure is an error.
    async fn session_token_is_valid(&self, secrets: &Secrets) -> Result<bool, HttpError> {
        let mut validated = self.validated.lock().await;
        if let Some(valid) = *validated {
            return Ok(valid);
        }
        let request = HttpRequest::new(
            Method::Get,
            format!("{}{}", self.api_url, self.validate_url),
        )
        .with_header(&self.header, self.session_token.clone());
        let response = self
            .context
            .transport
            .send(&request)
            .await
            .map_err(|e| transport_failure(&e, secrets))?;
        let valid = match response.status {
            200..=399 => {
                tracing::info!("Connection check for source is successful.");
                true
            }
            401 => {
                tracing::info!("Unable to connect by session token from config (status 401)");
                false
            }
            _ => {
                return Err(status_failure(
                    "Error while validating session token",
                    &request,
                    &response,
                    secrets,
                ));
            }
        };
        *validated = Some(valid);
        Ok(valid)
    }
}

fn transport_failure(error: &TransportError, secrets: &Secrets) -> HttpError {
    let text = mask(&error.to_string(), secrets, &Authenticator::none());
    let failure_type = match error {
        TransportError::NotRecorded(_) | TransportError::InvalidRequest { .. } => {
            FailureType::SystemError
        }
        _ => FailureType::TransientError,
    };
    auth_error(failure_type, text.clone(), text)
}

fn status_failure(
    what: &str,
    request: &HttpRequest,
    response: &HttpResponse,
    secrets: &Secrets,
) -> HttpError {
    let internal = format!(
        "{what}: '{}' request to '{}' failed with status code '{}'. Response (body): '{}'",
        request.method,
        request.url,
        response.status,
        body_excerpt(&response.body, 1000)
    );
    // The reference raises `requests` errors here, which it reports as system errors.
    let failure_type = FailureType::SystemError;
    auth_error(
        failure_type,
        format!("{what}, response code {}", response.status),
        mask(&internal, secrets, &Authenticator::none()),
    )
}
