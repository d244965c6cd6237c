//! Authenticators: what each adds to a request.
//!
//! The simple authenticators (API key, bearer, basic) read only the config, which does not change
//! during a sync, so their values are rendered once when the stream is built and kept here as
//! plain [`Injection`]s.

use base64::Engine as _;

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

/// One value an authenticator adds to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub into: InjectInto,
    pub name: String,
    pub value: String,
}

/// An authenticator ready to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authenticator {
    injections: Vec<Injection>,
    /// Values that must never appear in logs, errors or cassettes.
    secrets: Vec<String>,
}

impl Authenticator {
    /// `NoAuth`: adds nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// `BearerAuthenticator`: `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Self::header("Authorization", format!("Bearer {token}"), token)
    }

    /// `BasicHttpAuthenticator`: `Authorization: Basic base64(<username>:<password>)`.
    pub fn basic(username: &str, password: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut auth = Self::header("Authorization", format!("Basic {encoded}"), password);
        auth.add_secret(&encoded);
        auth
    }

    /// `ApiKeyAuthenticator`: the key injected where the manifest says.
    pub fn api_key(into: InjectInto, name: &str, value: &str) -> Self {
        let mut auth = Self {
            injections: vec![Injection { into, name: name.to_owned(), value: value.to_owned() }],
            secrets: Vec::new(),
        };
        auth.add_secret(value);
        auth
    }

    fn header(name: &str, value: String, secret: &str) -> Self {
        let mut auth = Self {
            injections: vec![Injection { into: InjectInto::Header, name: name.to_owned(), value }],
            secrets: Vec::new(),
        };
        auth.add_secret(secret);
        auth
    }

    fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secrets.push(secret.to_owned());
        }
    }

    /// What this authenticator adds to a request.
    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    /// The injections into one part of a request.
    pub fn injections_into(&self, into: InjectInto) -> impl Iterator<Item = &Injection> {
        self.injections.iter().filter(move |i| i.into == into)
    }

    /// The secret values this authenticator holds, to mask in anything printed.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_encodes_user_and_password() {
        let auth = Authenticator::basic("user", "pass");
        let inj = &auth.injections()[0];
        assert_eq!((inj.name.as_str(), inj.value.as_str()), ("Authorization", "Basic dXNlcjpwYXNz"));
        assert!(auth.secrets().contains(&"pass".to_owned()));
    }

    #[test]
    fn bearer_and_api_key() {
        assert_eq!(Authenticator::bearer("t").injections()[0].value, "Bearer t");
        let key = Authenticator::api_key(InjectInto::RequestParameter, "api_key", "k");
        assert_eq!(key.injections_into(InjectInto::RequestParameter).count(), 1);
        assert_eq!(key.injections_into(InjectInto::Header).count(), 0);
        assert!(Authenticator::none().injections().is_empty());
    }
}
