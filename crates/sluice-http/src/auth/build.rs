//! Building authenticators from the manifest model (the reference's `create_*_authenticator`).

use super::{AuthBuildError, AuthContext, Authenticator, InjectInto, Injection, Kind, Secrets};
use super::{jwt, oauth, rate_limited, session, support};
use serde_json::{Map, Value};
use sluice_interp::{Context, Template};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;

pub(crate) fn error(path: &ManifestPath, message: impl Into<String>) -> AuthBuildError {
    AuthBuildError {
        path: path.to_string(),
        message: message.into(),
        rendering: false,
    }
}

/// Compiles a template of the manifest, naming its path when it is not valid Jinja.
pub(crate) fn compile(source: &str, path: &ManifestPath) -> Result<Template, AuthBuildError> {
    Template::new(source).map_err(|e| error(path, e.to_string()))
}

/// A component's `$parameters` as the `parameters` template variable.
pub(crate) fn parameters_value(parameters: Option<&Map<String, Value>>) -> Value {
    Value::Object(parameters.cloned().unwrap_or_default())
}

/// Python's `str()` of what a template evaluates to (the reference's token providers and
/// f-strings stringify the literal-evaluated value: `"007"` stays, `"1_000"` becomes `1000`).
pub(crate) fn render_text(template: &Template, ctx: &Context<'_>) -> Result<String, String> {
    match template.render(ctx).map_err(|e| e.to_string())? {
        Value::String(text) => Ok(text),
        other => Ok(sluice_interp::python_str(&other)),
    }
}

/// Renders a field once, at build time, with the config and the component's parameters.
pub(crate) struct BuildRenderer<'a> {
    pub config: &'a Value,
    pub parameters: Value,
}

impl BuildRenderer<'_> {
    pub(crate) fn text(&self, source: &str, path: &ManifestPath) -> Result<String, AuthBuildError> {
        let template = compile(source, path)?;
        let ctx = Context::new()
            .config(self.config)
            .parameters(&self.parameters);
        render_text(&template, &ctx).map_err(|e| AuthBuildError {
            rendering: true,
            ..error(path, e)
        })
    }
}

/// A `RequestOption` resolved to where a value goes: its names rendered.
pub(crate) fn request_option(
    option: &model::RequestOption,
    renderer: &BuildRenderer<'_>,
    path: &ManifestPath,
) -> Result<(InjectInto, String, Vec<String>), AuthBuildError> {
    let into = match option.inject_into {
        model::InjectInto::Header => InjectInto::Header,
        model::InjectInto::RequestParameter => InjectInto::RequestParameter,
        model::InjectInto::BodyJson => InjectInto::BodyJson,
        model::InjectInto::BodyData => InjectInto::BodyData,
    };
    match (&option.field_name, &option.field_path) {
        (Some(_), Some(_)) => Err(error(
            path,
            "Only one of field_name or field_path can be provided to RequestOption",
        )),
        (None, None) => Err(error(
            path,
            "RequestOption requires either a field_name or field_path",
        )),
        (Some(name), None) => Ok((
            into,
            renderer.text(name, &path.key("field_name"))?,
            Vec::new(),
        )),
        (None, Some(field_path)) => {
            if into != InjectInto::BodyJson {
                return Err(error(
                    &path.key("field_path"),
                    "Nested field injection is only supported for body JSON injection. Please use a top-level field_name for other injection types.",
                ));
            }
            let mut keys = field_path
                .iter()
                .enumerate()
                .map(|(i, key)| renderer.text(key, &path.key("field_path").index(i)))
                .collect::<Result<Vec<_>, _>>()?;
            let name = keys
                .pop()
                .ok_or_else(|| error(&path.key("field_path"), "field_path is empty"))?;
            Ok((into, name, keys))
        }
    }
}

impl Authenticator {
    /// Builds the runtime authenticator of a requester's `authenticator`.
    ///
    /// `url_base` is the enclosing requester's `url_base` template (only
    /// `LegacySessionTokenAuthenticator` uses it). Errors name `path`, the authenticator's place
    /// in the manifest. Values that come from the config only are rendered here, once.
    pub fn from_model(
        model: &model::Authenticator,
        context: &AuthContext,
        url_base: Option<&str>,
        path: &ManifestPath,
    ) -> Result<Self, AuthBuildError> {
        use model::Authenticator as A;
        let built = match model {
            A::NoAuth(_) => Ok(Self::none()),
            A::ApiKeyAuthenticator(m) => api_key(m, context, path),
            A::BearerAuthenticator(m) => bearer(m, context, path),
            A::BasicHttpAuthenticator(m) => basic(m, context, path),
            A::OAuthAuthenticator(m) => oauth_authenticator(m, context, path),
            A::JwtAuthenticator(m) => jwt_authenticator(m, context, path),
            A::SessionTokenAuthenticator(m) => session_token(m, context, path),
            A::LegacySessionTokenAuthenticator(m) => legacy(m, context, url_base, path),
            A::SelectiveAuthenticator(m) => selective(m, context, url_base, path),
            A::CustomAuthenticator(m) => Err(error(
                path,
                format!(
                    "CustomAuthenticator ({}) is Python code, which sluice cannot run",
                    m.class_name
                ),
            )),
            A::RateLimitedMultipleTokenAuthenticator(m) => rate_limited_tokens(m, context, path),
        };
        built.map(|auth| auth.reporting_to(context))
    }
}

fn selectable(
    model: &model::SelectableAuthenticator,
    context: &AuthContext,
    url_base: Option<&str>,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    use model::SelectableAuthenticator as S;
    match model {
        S::NoAuth(_) => Ok(Authenticator::none()),
        S::ApiKeyAuthenticator(m) => api_key(m, context, path),
        S::BearerAuthenticator(m) => bearer(m, context, path),
        S::BasicHttpAuthenticator(m) => basic(m, context, path),
        S::OAuthAuthenticator(m) => oauth_authenticator(m, context, path),
        S::JwtAuthenticator(m) => jwt_authenticator(m, context, path),
        S::SessionTokenAuthenticator(m) => session_token(m, context, path),
        S::LegacySessionTokenAuthenticator(m) => legacy(m, context, url_base, path),
        S::CustomAuthenticator(m) => Err(error(
            path,
            format!(
                "CustomAuthenticator ({}) is Python code, which sluice cannot run",
                m.class_name
            ),
        )),
        S::RateLimitedMultipleTokenAuthenticator(m) => rate_limited_tokens(m, context, path),
    }
}

fn api_key(
    m: &model::ApiKeyAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let renderer = BuildRenderer {
        config: &context.config,
        parameters: parameters_value(m.parameters.as_ref()),
    };
    let (into, name, parents) = match (&m.inject_into, &m.header) {
        (Some(_), Some(_)) => {
            return Err(error(
                path,
                "inject_into and header cannot be set both for ApiKeyAuthenticator - remove the deprecated header option",
            ));
        }
        (None, None) => {
            return Err(error(
                path,
                "Expected either inject_into or header to be set for ApiKeyAuthenticator",
            ));
        }
        (None, Some(header)) => (
            InjectInto::Header,
            renderer.text(header, &path.key("header"))?,
            Vec::new(),
        ),
        (Some(option), None) => request_option(option, &renderer, &path.key("inject_into"))?,
    };
    let token = renderer.text(m.api_token.as_deref().unwrap_or(""), &path.key("api_token"))?;
    let mut auth = Authenticator::api_key(into, &name, &token);
    if let Some(Kind::Fixed(injections)) = std::sync::Arc::get_mut(&mut auth.kind) {
        for injection in injections {
            injection.parents.clone_from(&parents);
        }
    }
    Ok(auth)
}

fn bearer(
    m: &model::BearerAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let renderer = BuildRenderer {
        config: &context.config,
        parameters: parameters_value(m.parameters.as_ref()),
    };
    Ok(Authenticator::bearer(
        &renderer.text(&m.api_token, &path.key("api_token"))?,
    ))
}

fn basic(
    m: &model::BasicHttpAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let renderer = BuildRenderer {
        config: &context.config,
        parameters: parameters_value(m.parameters.as_ref()),
    };
    let username = renderer.text(&m.username, &path.key("username"))?;
    let password = renderer.text(m.password.as_deref().unwrap_or(""), &path.key("password"))?;
    Ok(Authenticator::basic(&username, &password))
}

fn oauth_authenticator(
    m: &model::OAuthAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let secrets = Secrets::default();
    let oauth = oauth::OAuth::from_model(m, context, &secrets, path)?;
    Ok(Authenticator::with_kind(
        Kind::OAuth(Box::new(oauth)),
        secrets,
    ))
}

fn jwt_authenticator(
    m: &model::JwtAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let secrets = Secrets::default();
    let jwt = jwt::Jwt::from_model(m, context, &secrets, path)?;
    Ok(Authenticator::with_kind(Kind::Jwt(Box::new(jwt)), secrets))
}

fn session_token(
    m: &model::SessionTokenAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let secrets = Secrets::default();
    let session = session::SessionToken::from_model(m, context, &secrets, path)?;
    Ok(Authenticator::with_kind(
        Kind::SessionToken(Box::new(session)),
        secrets,
    ))
}

/// Builds the authenticator, or hands out the one this source already built for the same
/// resolved definition, so every stream (parents and children) shares its token counters.
fn rate_limited_tokens(
    m: &model::RateLimitedMultipleTokenAuthenticator,
    context: &AuthContext,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let secrets = Secrets::default();
    let (key, built) = rate_limited::RateLimited::from_model(m, context, &secrets, path)?;
    let mut registry = context
        .shared
        .rate_limited
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let auth = registry
        .entry(key)
        .or_insert_with(|| Authenticator::with_kind(Kind::RateLimited(Box::new(built)), secrets));
    Ok(auth.clone())
}

fn legacy(
    m: &model::LegacySessionTokenAuthenticator,
    context: &AuthContext,
    url_base: Option<&str>,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let secrets = Secrets::default();
    let legacy = session::LegacySessionToken::from_model(m, context, url_base, &secrets, path)?;
    Ok(Authenticator::with_kind(
        Kind::LegacySessionToken(Box::new(legacy)),
        secrets,
    ))
}

/// Builds every candidate (as the reference does, so a broken one fails even when not chosen),
/// then keeps the one the config selects.
fn selective(
    m: &model::SelectiveAuthenticator,
    context: &AuthContext,
    url_base: Option<&str>,
    path: &ManifestPath,
) -> Result<Authenticator, AuthBuildError> {
    let selection_path = path.key("authenticator_selection_path");
    let selected_name =
        support::config_get(&context.config, &m.authenticator_selection_path).map(|selected| {
            match selected {
                Value::String(text) => text.clone(),
                other => sluice_interp::python_str(other),
            }
        });
    let mut built = Vec::with_capacity(m.authenticators.len());
    for (name, candidate) in &m.authenticators {
        let candidate_path = path.key("authenticators").key(name);
        match selectable(candidate, context, url_base, &candidate_path) {
            Ok(auth) => built.push((name.as_str(), auth)),
            // Every candidate is built, as in the reference, but one not selected is never
            // used: its templates need not render with this config (an API token user's
            // config has no OAuth fields).
            Err(e) if e.rendering && selected_name.as_deref() != Some(name.as_str()) => {}
            Err(e) => return Err(e),
        }
    }
    let selected = support::config_get(&context.config, &m.authenticator_selection_path)
        .ok_or_else(|| {
            error(
                &selection_path,
                "The path from `authenticator_selection_path` is not found in the config.",
            )
        })?;
    let selected = match selected {
        Value::String(text) => text.clone(),
        other => sluice_interp::python_str(other),
    };
    built
        .into_iter()
        .find(|(name, _)| *name == selected)
        .map(|(_, auth)| auth)
        .ok_or_else(|| {
            error(
                &path.key("authenticators"),
                format!("The authenticator `{selected}` is not found."),
            )
        })
}

/// The fixed injection of a rendered value into the place a request option names.
pub(crate) fn injection_at(option: &(InjectInto, String, Vec<String>), value: String) -> Injection {
    Injection {
        into: option.0,
        name: option.1.clone(),
        value,
        parents: option.2.clone(),
    }
}
