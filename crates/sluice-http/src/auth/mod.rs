//! Authenticators: what each adds to a request, built from a manifest's `authenticator`.
//!
//! [`Authenticator::from_model`] turns any of the reference's declarative authenticators into a
//! runtime [`Authenticator`]; before each request the requester asks it, with
//! [`Authenticator::injections`], what to add (headers, query parameters, body fields).
//!
//! - `NoAuth`, `ApiKeyAuthenticator`, `BearerAuthenticator`, `BasicHttpAuthenticator` read only
//!   the config, so their values are rendered once when the stream is built.
//! - `OAuthAuthenticator` fetches an access token (grant `refresh_token`, `client_credentials`,
//!   or a JWT profile assertion) when the current one has expired. With a
//!   `refresh_token_updater` the tokens live in the connector config: a refresh writes the new
//!   access token, expiry and (rotated) refresh token into it and queues the whole updated
//!   config as a config update, which the source prints as a CONTROL message.
//! - `SessionTokenAuthenticator` logs in with its `login_requester` and injects the session
//!   token; `LegacySessionTokenAuthenticator` validates a configured session token or logs in
//!   with username and password.
//! - `JwtAuthenticator` signs a fresh JSON Web Token for every request.
//! - `SelectiveAuthenticator` picks one of its authenticators by a config value when built.
//! - `RateLimitedMultipleTokenAuthenticator` rotates several tokens over quota pools seeded from a
//!   quota status endpoint; it signs the assembled request ([`Authenticator::sign`]), since the
//!   request decides the pool, and one instance serves every stream with the same definition.
//!
//! Every secret an authenticator holds or obtains (keys, passwords, a login request's
//! credentials, tokens from a response, signed JWTs) joins its source's one list,
//! [`AuthContext::secrets`], the moment it is read: errors and logs mask it, raw or encoded, and a
//! recorded cassette redacts it.
//!
//! A token is fetched once even when many partitions ask at the same time: the refresh runs
//! under an async lock and the others wait for its result. Every request an authenticator
//! makes goes through the source's [`Transport`], so record and replay see them.
//!
//! ```
//! use serde_json::json;
//! use sluice_http::auth::{AuthContext, Authenticator, InjectInto};
//! use sluice_http::HyperTransport;
//! use sluice_manifest::model::{self, FromNode};
//! use sluice_manifest::ManifestPath;
//! use std::sync::Arc;
//!
//! let path = ManifestPath::root().key("authenticator");
//! let model = model::Authenticator::from_node(&json!({
//!     "type": "ApiKeyAuthenticator",
//!     "api_token": "{{ config['key'] }}",
//!     "inject_into": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "api_key"}
//! }), &path).unwrap();
//!
//! let context = AuthContext::new(Arc::new(json!({"key": "s3cr3t"})), Arc::new(HyperTransport::default()));
//! let auth = Authenticator::from_model(&model, &context, None, &path)?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let injections = runtime.block_on(auth.injections()).unwrap();
//! assert_eq!(injections[0].into, InjectInto::RequestParameter);
//! assert_eq!((injections[0].name.as_str(), injections[0].value.as_str()), ("api_key", "s3cr3t"));
//! assert!(auth.secrets().contains(&"s3cr3t".to_owned()));
//! # Ok::<(), sluice_http::auth::AuthBuildError>(())
//! ```

mod build;
mod jwt;
mod oauth;
mod rate_limited;
mod session;
mod support;

use crate::{HttpError, HttpRequest, HttpResponse, Transport};
use base64::Engine as _;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Where a value goes in a request, as a manifest's `RequestOption.inject_into` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectInto {
    Header,
    RequestParameter,
    BodyJson,
    BodyData,
}

impl InjectInto {
    /// Parses the manifest's spelling (`header`, `request_parameter`, `body_json`, `body_data`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "header" => Self::Header,
            "request_parameter" => Self::RequestParameter,
            "body_json" => Self::BodyJson,
            "body_data" => Self::BodyData,
            _ => return None,
        })
    }
}

/// One value an authenticator adds to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub into: InjectInto,
    /// The header, parameter or body field name (the last key of a `field_path`).
    pub name: String,
    pub value: String,
    /// For a `body_json` option with a `field_path`: the keys of the objects `name` sits in,
    /// outermost first. Empty otherwise.
    pub parents: Vec<String>,
}

impl Injection {
    fn new(into: InjectInto, name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            into,
            name: name.into(),
            value: value.into(),
            parents: Vec::new(),
        }
    }
}

/// An authenticator manifest that cannot be built, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest at {path}: {message}")]
pub struct AuthBuildError {
    /// The manifest path of the offending field (`streams[0].retriever.requester.authenticator`).
    pub path: String,
    pub message: String,
    /// Whether a template failed to render with the config: the reference renders such
    /// templates only when the authenticator is used, so this only matters for one in use.
    pub(crate) rendering: bool,
}

/// What every authenticator of one source shares: the config, the transport, the live config
/// that OAuth refresh-token rotation writes into, and the config updates waiting to be printed.
///
/// Create one per source run and pass it to every [`Authenticator::from_model`]; clones share
/// the same state.
#[derive(Clone)]
pub struct AuthContext {
    config: Arc<Value>,
    transport: Arc<dyn Transport>,
    shared: Arc<Shared>,
    /// Reads an XML login response (`SessionTokenAuthenticator.decoder: XmlDecoder`); the
    /// XML conventions belong to the records crate, which gives this.
    xml_decoder: Option<XmlDecoder>,
}

/// XML to JSON as the reference's `XmlDecoder` reads a body (`None`: not XML).
pub type XmlDecoder = Arc<dyn Fn(&[u8]) -> Option<Value> + Send + Sync>;

struct Shared {
    /// The connector config as rotations left it; its lock is also what makes concurrent
    /// refreshes of config-held tokens happen once.
    live_config: tokio::sync::Mutex<Value>,
    updates: Mutex<Vec<Value>>,
    listener: Mutex<Option<ConfigListener>>,
    /// `LegacySessionTokenAuthenticator` logins, shared by every stream like the reference's
    /// module-level cache: key -> session token.
    legacy_tokens: tokio::sync::Mutex<HashMap<String, String>>,
    /// `RateLimitedMultipleTokenAuthenticator`s by their resolved definition, shared by every
    /// stream like the reference's `rate_limited_authenticators`.
    rate_limited: Mutex<HashMap<String, Authenticator>>,
    /// Every secret the source's authenticators hold or have obtained, from the moment each is
    /// read: one list, so a token one stream fetched is masked in every stream's messages and
    /// redacted from a recorded cassette.
    secrets: Secrets,
}

type ConfigListener = Box<dyn Fn(&Value) + Send + Sync>;

impl AuthContext {
    /// A context for a source run with this config, whose authenticators send through
    /// `transport`.
    pub fn new(config: Arc<Value>, transport: Arc<dyn Transport>) -> Self {
        let live = (*config).clone();
        Self {
            config,
            transport,
            shared: Arc::new(Shared {
                live_config: tokio::sync::Mutex::new(live),
                updates: Mutex::new(Vec::new()),
                listener: Mutex::new(None),
                legacy_tokens: tokio::sync::Mutex::new(HashMap::new()),
                rate_limited: Mutex::new(HashMap::new()),
                secrets: Secrets::default(),
            }),
            xml_decoder: None,
        }
    }

    /// Lets session logins read XML responses with `decoder`.
    pub fn with_xml_decoder(mut self, decoder: XmlDecoder) -> Self {
        self.xml_decoder = Some(decoder);
        self
    }

    /// Hands every config update to `listener` the moment it happens (as the reference prints
    /// its CONTROL message at once) instead of queueing it for [`Self::take_config_updates`].
    pub fn on_config_update(&self, listener: impl Fn(&Value) + Send + Sync + 'static) {
        if let Ok(mut slot) = self.shared.listener.lock() {
            *slot = Some(Box::new(listener));
        }
    }

    /// The config updates queued since the last call, oldest first: each is the whole connector
    /// config after an OAuth refresh with a `refresh_token_updater`, to print as a CONTROL
    /// message (`connectorConfig.config`).
    pub fn take_config_updates(&self) -> Vec<Value> {
        self.shared
            .updates
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default()
    }

    /// The connector config as token rotations have left it.
    pub async fn current_config(&self) -> Value {
        self.shared.live_config.lock().await.clone()
    }

    /// Every secret the source's authenticators hold or have obtained so far (keys, passwords,
    /// client secrets, tokens, session ids, signed JWTs, encoded credentials), to mask in
    /// anything printed and to redact from recorded cassettes.
    pub fn secrets(&self) -> Vec<String> {
        self.shared.secrets.list()
    }

    /// The config the source started with.
    pub fn config(&self) -> &Arc<Value> {
        &self.config
    }

    fn publish(&self, config: &Value) {
        let listener = self.shared.listener.lock();
        match listener.as_ref().ok().and_then(|l| l.as_ref()) {
            Some(listener) => listener(config),
            None => {
                if let Ok(mut updates) = self.shared.updates.lock() {
                    updates.push(config.clone());
                }
            }
        }
    }
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthContext")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// The secret values an authenticator has seen, shared by its clones; grows as tokens are
/// fetched.
#[derive(Debug, Clone, Default)]
struct Secrets(Arc<Mutex<Vec<String>>>);

impl Secrets {
    fn add(&self, secret: &str) {
        // Masking very short values would garble unrelated text.
        if secret.len() < crate::secrets::MIN_SECRET_LEN {
            return;
        }
        if let Ok(mut list) = self.0.lock() {
            if !list.iter().any(|s| s == secret) {
                list.push(secret.to_owned());
            }
        }
    }

    fn list(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `text` with every secret, raw or encoded, replaced by `****`.
    fn mask(&self, text: &str) -> String {
        let list = self.list();
        crate::secrets::mask(text, list.iter().map(String::as_str))
    }
}

/// An authenticator ready to use. Clones share its tokens.
#[derive(Clone)]
pub struct Authenticator {
    kind: Arc<Kind>,
    secrets: Secrets,
}

enum Kind {
    /// Values fixed when built (no auth, API key, bearer, basic).
    Fixed(Vec<Injection>),
    OAuth(Box<oauth::OAuth>),
    SessionToken(Box<session::SessionToken>),
    LegacySessionToken(Box<session::LegacySessionToken>),
    Jwt(Box<jwt::Jwt>),
    /// Sets its header itself, on the assembled request ([`Authenticator::sign`]).
    RateLimited(Box<rate_limited::RateLimited>),
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::none()
    }
}

impl fmt::Debug for Authenticator {
    /// Names the kind only: the values are secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.kind {
            Kind::Fixed(injections) if injections.is_empty() => "NoAuth",
            Kind::Fixed(_) => "Fixed",
            Kind::OAuth(_) => "OAuth",
            Kind::SessionToken(_) => "SessionToken",
            Kind::LegacySessionToken(_) => "LegacySessionToken",
            Kind::Jwt(_) => "Jwt",
            Kind::RateLimited(_) => "RateLimitedMultipleToken",
        };
        f.debug_struct("Authenticator")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    fn with_kind(kind: Kind, secrets: Secrets) -> Self {
        Self {
            kind: Arc::new(kind),
            secrets,
        }
    }

    /// Keeps this authenticator's secrets, and those it obtains from now on, in the source's one
    /// list (`AuthContext::secrets`).
    fn reporting_to(mut self, context: &AuthContext) -> Self {
        let source = &context.shared.secrets;
        for secret in self.secrets.list() {
            source.add(&secret);
        }
        self.secrets = source.clone();
        self
    }

    fn fixed(injections: Vec<Injection>, secrets: &[&str]) -> Self {
        let list = Secrets::default();
        for secret in secrets {
            list.add(secret);
        }
        Self::with_kind(Kind::Fixed(injections), list)
    }

    /// `NoAuth`: adds nothing.
    pub fn none() -> Self {
        Self::fixed(Vec::new(), &[])
    }

    /// `BearerAuthenticator`: `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        let header = format!("Bearer {token}");
        Self::fixed(
            vec![Injection::new(InjectInto::Header, "Authorization", header)],
            &[token],
        )
    }

    /// `BasicHttpAuthenticator`: `Authorization: Basic base64(<username>:<password>)`.
    pub fn basic(username: &str, password: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let header = format!("Basic {encoded}");
        Self::fixed(
            vec![Injection::new(InjectInto::Header, "Authorization", header)],
            &[password, &encoded],
        )
    }

    /// `ApiKeyAuthenticator`: the key injected where the manifest says.
    pub fn api_key(into: InjectInto, name: &str, value: &str) -> Self {
        Self::fixed(vec![Injection::new(into, name, value)], &[value])
    }

    /// What to add to the next request. Fetches or refreshes a token first when the
    /// authenticator needs one (OAuth, session token), once however many callers ask at the
    /// same time. A token endpoint that refuses the credentials gives a `config_error`.
    pub async fn injections(&self) -> Result<Vec<Injection>, HttpError> {
        match &*self.kind {
            Kind::Fixed(injections) => Ok(injections.clone()),
            Kind::OAuth(oauth) => oauth.injections(&self.secrets).await,
            Kind::SessionToken(session) => session.injections(&self.secrets).await,
            Kind::LegacySessionToken(legacy) => legacy.injections(&self.secrets).await,
            Kind::Jwt(jwt) => jwt.injections(&self.secrets),
            // Which token signs depends on the request: see `sign`.
            Kind::RateLimited(_) => Ok(Vec::new()),
        }
    }

    /// Signs an assembled request, for authenticators whose credential depends on the request
    /// (`RateLimitedMultipleTokenAuthenticator` charges the request's quota pool to a token, waiting
    /// when every token is spent, and sets that token's header). Does nothing for the others,
    /// whose values come from [`Self::injections`]. `mask` masks the config's secrets in logs.
    pub async fn sign(
        &self,
        request: &mut HttpRequest,
        mask: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), HttpError> {
        match &*self.kind {
            Kind::RateLimited(tokens) => tokens
                .sign(request, mask)
                .await
                .map_err(|e| e.masked(|t| self.secrets.mask(&mask(t)))),
            _ => Ok(()),
        }
    }

    /// Lets the authenticator see the response to `request` (after each attempt): a
    /// `RateLimitedMultipleTokenAuthenticator` reconciles its counters with the pool's rate-limit
    /// headers.
    pub fn update_from_response(&self, request: &HttpRequest, response: &HttpResponse) {
        if let Kind::RateLimited(tokens) = &*self.kind {
            tokens.update_from_response(request, response);
        }
    }

    /// Whether a rate-limited `request` can be retried at once with another credential instead
    /// of waiting for its token's window: its token is spent and another has calls left.
    pub fn has_alternative_token(&self, request: &HttpRequest) -> bool {
        match &*self.kind {
            Kind::RateLimited(tokens) => tokens.has_alternative_token(request),
            _ => false,
        }
    }

    /// Refreshes the OAuth access token after the API rejected `rejected` (the reference's
    /// `REFRESH_TOKEN_THEN_RETRY`), unless the token was already replaced since that request was
    /// sent. Returns `false` when this authenticator has no token to refresh.
    pub async fn refresh_after_rejection(&self, rejected: &HttpRequest) -> Result<bool, HttpError> {
        match &*self.kind {
            Kind::OAuth(oauth) => {
                oauth
                    .force_refresh(rejected.header("Authorization"), &self.secrets)
                    .await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether [`Self::injections`] can change between requests (tokens, signed JWTs).
    pub fn is_dynamic(&self) -> bool {
        !matches!(&*self.kind, Kind::Fixed(_))
    }

    /// Every secret value this authenticator holds or has fetched so far (keys, passwords,
    /// client secrets, refresh and access tokens, encoded credentials), to mask in anything
    /// printed. One built by [`Self::from_model`] shares the list of its source's authenticators
    /// ([`AuthContext::secrets`]), so this includes theirs.
    pub fn secrets(&self) -> Vec<String> {
        self.secrets.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn basic_encodes_user_and_password() {
        let auth = Authenticator::basic("user", "pass");
        let injections = block_on(auth.injections()).unwrap();
        assert_eq!(
            (injections[0].name.as_str(), injections[0].value.as_str()),
            ("Authorization", "Basic dXNlcjpwYXNz")
        );
        assert!(auth.secrets().contains(&"pass".to_owned()));
        assert!(auth.secrets().contains(&"dXNlcjpwYXNz".to_owned()));
        assert!(!auth.is_dynamic());
    }

    #[test]
    fn bearer_api_key_and_none() {
        assert_eq!(
            block_on(Authenticator::bearer("tok").injections()).unwrap()[0].value,
            "Bearer tok"
        );
        let key = Authenticator::api_key(InjectInto::RequestParameter, "api_key", "k3y");
        assert_eq!(
            block_on(key.injections()).unwrap()[0].into,
            InjectInto::RequestParameter
        );
        assert!(
            block_on(Authenticator::none().injections())
                .unwrap()
                .is_empty()
        );
        assert_eq!(format!("{key:?}"), "Authenticator { kind: \"Fixed\", .. }");
    }

    #[test]
    fn config_updates_queue_until_a_listener_takes_them() {
        let context = AuthContext::new(
            Arc::new(Value::Null),
            Arc::new(crate::HyperTransport::default()),
        );
        context.publish(&serde_json::json!({"a": 1}));
        assert_eq!(
            context.take_config_updates(),
            vec![serde_json::json!({"a": 1})]
        );
        assert!(context.take_config_updates().is_empty());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        context.on_config_update(move |c| sink.lock().unwrap().push(c.clone()));
        context.publish(&serde_json::json!({"a": 2}));
        assert!(context.take_config_updates().is_empty());
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
