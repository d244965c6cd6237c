//! `JwtAuthenticator`: a JSON Web Token signed for every request.
//!
//! The token is assembled as PyJWT does it (header keys sorted, payload in insertion order,
//! compact JSON) and signed with `jsonwebtoken`'s primitives, so any extra header field the
//! manifest asks for can be carried.

use super::build::{BuildRenderer, compile, error, parameters_value, render_text, request_option};
use super::{AuthBuildError, AuthContext, InjectInto, Injection, Secrets};
use crate::HttpError;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpolatedMapping, Template};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, JwtAlgorithm};
use sluice_protocol::FailureType;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) struct Jwt {
    config: Arc<Value>,
    parameters: Value,
    secret_key: Template,
    base64_encode_secret_key: bool,
    algorithm: Algorithm,
    algorithm_name: &'static str,
    /// Seconds until `exp`; `None` makes `exp` equal `iat`, as the reference does.
    token_duration: Option<i64>,
    header_prefix: Option<Template>,
    kid: Option<Template>,
    typ: Option<Template>,
    cty: Option<Template>,
    iss: Option<Template>,
    sub: Option<Template>,
    aud: Option<Template>,
    additional_headers: Option<InterpolatedMapping>,
    additional_payload: Option<InterpolatedMapping>,
    passphrase: Option<Template>,
    target: (InjectInto, String, Vec<String>),
}

const RESERVED_HEADERS: [&str; 4] = ["kid", "alg", "typ", "cty"];
const RESERVED_CLAIMS: [&str; 6] = ["iss", "sub", "aud", "iat", "exp", "nbf"];

impl Jwt {
    pub(crate) fn from_model(
        m: &model::JwtAuthenticator,
        context: &AuthContext,
        secrets: &Secrets,
        path: &ManifestPath,
    ) -> Result<Self, AuthBuildError> {
        let parameters = parameters_value(m.parameters.as_ref());
        let renderer = BuildRenderer {
            config: &context.config,
            parameters: parameters.clone(),
        };
        let algorithm = match m.algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
            JwtAlgorithm::Es256 => Algorithm::ES256,
            JwtAlgorithm::Es384 => Algorithm::ES384,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Rs384 => Algorithm::RS384,
            JwtAlgorithm::Rs512 => Algorithm::RS512,
            JwtAlgorithm::Ps256 => Algorithm::PS256,
            JwtAlgorithm::Ps384 => Algorithm::PS384,
            JwtAlgorithm::Ps512 => Algorithm::PS512,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::Es256k | JwtAlgorithm::Es512 => {
                return Err(error(
                    &path.key("algorithm"),
                    format!(
                        "sluice cannot sign JWTs with {} (supported: HS*, RS*, PS*, ES256, ES384, EdDSA)",
                        m.algorithm.as_str()
                    ),
                ));
            }
        };
        let optional = |source: Option<&String>, field: &str| {
            source
                .filter(|s| !s.is_empty())
                .map(|s| compile(s, &path.key(field)))
                .transpose()
        };
        let mapping = |map: Option<&Map<String, Value>>, field: &str| {
            map.filter(|m| !m.is_empty())
                .map(|m| {
                    InterpolatedMapping::new(m).map_err(|e| error(&path.key(field), e.to_string()))
                })
                .transpose()
        };
        let (kid, typ, cty) = match &m.jwt_headers {
            Some(h) => (
                h.kid.clone(),
                Some(h.typ.clone().unwrap_or_else(|| "JWT".to_owned())),
                h.cty.clone(),
            ),
            None => (None, Some("JWT".to_owned()), None),
        };
        let payload = m.jwt_payload.as_ref();
        let target = match &m.request_option {
            Some(option) => request_option(option, &renderer, &path.key("request_option"))?,
            None => (InjectInto::Header, "Authorization".to_owned(), Vec::new()),
        };
        if let Ok(secret) = renderer.text(&m.secret_key, &path.key("secret_key")) {
            secrets.add(&secret);
        }
        Ok(Self {
            config: Arc::clone(&context.config),
            secret_key: compile(&m.secret_key, &path.key("secret_key"))?,
            base64_encode_secret_key: m.base64_encode_secret_key.unwrap_or(false),
            algorithm,
            algorithm_name: m.algorithm.as_str(),
            token_duration: Some(m.token_duration.unwrap_or(1200)),
            header_prefix: optional(m.header_prefix.as_ref(), "header_prefix")?,
            kid: optional(kid.as_ref(), "jwt_headers.kid")?,
            typ: optional(typ.as_ref(), "jwt_headers.typ")?,
            cty: optional(cty.as_ref(), "jwt_headers.cty")?,
            iss: optional(payload.and_then(|p| p.iss.as_ref()), "jwt_payload.iss")?,
            sub: optional(payload.and_then(|p| p.sub.as_ref()), "jwt_payload.sub")?,
            aud: optional(payload.and_then(|p| p.aud.as_ref()), "jwt_payload.aud")?,
            additional_headers: mapping(
                m.additional_jwt_headers.as_ref(),
                "additional_jwt_headers",
            )?,
            additional_payload: mapping(
                m.additional_jwt_payload.as_ref(),
                "additional_jwt_payload",
            )?,
            passphrase: optional(m.passphrase.as_ref(), "passphrase")?,
            target,
            parameters,
        })
    }

    pub(crate) fn injections(&self, secrets: &Secrets) -> Result<Vec<Injection>, HttpError> {
        let token = self
            .token()
            .map_err(|e| HttpError::new(FailureType::SystemError, e))?;
        secrets.add(&token);
        Ok(vec![super::build::injection_at(&self.target, token)])
    }

    fn context(&self) -> Context<'_> {
        Context::new()
            .config(&*self.config)
            .parameters(&self.parameters)
    }

    /// The header value: the signed token, after `header_prefix` when there is one.
    pub(crate) fn token(&self) -> Result<String, String> {
        let signed = self
            .signed()
            .map_err(|e| format!("Failed to sign token: {e}"))?;
        let prefix = match &self.header_prefix {
            Some(template) => render_text(template, &self.context())?,
            None => String::new(),
        };
        Ok(if prefix.is_empty() {
            signed
        } else {
            format!("{prefix} {signed}")
        })
    }

    fn signed(&self) -> Result<String, String> {
        let ctx = self.context();
        let header = self.header(&ctx)?;
        let payload = self.payload(&ctx)?;
        let message = format!("{}.{}", base64_json(&header)?, base64_json(&payload)?);
        let key = self.key(&ctx)?;
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, self.algorithm)
            .map_err(|e| e.to_string())?;
        Ok(format!("{message}.{signature}"))
    }

    /// PyJWT's header: `typ` and `alg`, then the manifest's headers; keys sorted.
    fn header(&self, ctx: &Context<'_>) -> Result<BTreeMap<String, Value>, String> {
        let mut header = BTreeMap::new();
        header.insert("typ".to_owned(), Value::String("JWT".to_owned()));
        if let Some(extra) = &self.additional_headers {
            let extra = extra.eval(ctx, &[]).map_err(|e| e.to_string())?;
            if extra.keys().any(|k| RESERVED_HEADERS.contains(&k.as_str())) {
                return Err("'kid', 'alg', 'typ', 'cty' are reserved headers and should not be set as part of 'additional_jwt_headers'".to_owned());
            }
            header.extend(extra);
        }
        for (name, template) in [("kid", &self.kid), ("typ", &self.typ), ("cty", &self.cty)] {
            if let Some(template) = template {
                header.insert(
                    name.to_owned(),
                    template.render(ctx).map_err(|e| e.to_string())?,
                );
            }
        }
        header.insert(
            "alg".to_owned(),
            Value::String(self.algorithm_name.to_owned()),
        );
        if header
            .get("typ")
            .is_some_and(|t| !sluice_interp::is_truthy(t))
        {
            header.remove("typ");
        }
        Ok(header)
    }

    fn payload(&self, ctx: &Context<'_>) -> Result<Map<String, Value>, String> {
        let mut payload = match &self.additional_payload {
            Some(extra) => extra.eval(ctx, &[]).map_err(|e| e.to_string())?,
            None => Map::new(),
        };
        if payload
            .keys()
            .any(|k| RESERVED_CLAIMS.contains(&k.as_str()))
        {
            return Err("'iss', 'sub', 'aud', 'iat', 'exp', 'nbf' are reserved properties and should not be set as part of 'additional_jwt_payload'".to_owned());
        }
        for (name, template) in [("iss", &self.iss), ("sub", &self.sub), ("aud", &self.aud)] {
            if let Some(template) = template {
                payload.insert(
                    name.to_owned(),
                    template.render(ctx).map_err(|e| e.to_string())?,
                );
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        payload.insert("iat".to_owned(), Value::from(now));
        payload.insert(
            "exp".to_owned(),
            Value::from(now + self.token_duration.unwrap_or(0)),
        );
        payload.insert("nbf".to_owned(), Value::from(now));
        Ok(payload)
    }

    fn key(&self, ctx: &Context<'_>) -> Result<EncodingKey, String> {
        let secret = render_text(&self.secret_key, ctx)?;
        if let Some(passphrase) = &self.passphrase {
            let passphrase = render_text(passphrase, ctx)?;
            if !passphrase.is_empty() {
                // As the reference: the key is an encrypted PEM, decrypted with the passphrase
                // (and never base64-encoded first).
                let pem = decrypt_private_key(&secret, &passphrase)?;
                return self.asymmetric_key(pem.as_bytes());
            }
        }
        let secret = if self.base64_encode_secret_key {
            STANDARD.encode(secret)
        } else {
            secret
        };
        let pem = secret.as_bytes();
        match self.algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                Ok(EncodingKey::from_secret(pem))
            }
            _ => self.asymmetric_key(pem),
        }
    }

    fn asymmetric_key(&self, pem: &[u8]) -> Result<EncodingKey, String> {
        match self.algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(format!(
                "an encrypted private key cannot sign with {:?}, an HMAC algorithm",
                self.algorithm
            )),
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(pem).map_err(|e| e.to_string())
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).map_err(|e| e.to_string()),
            _ => EncodingKey::from_rsa_pem(pem).map_err(|e| e.to_string()),
        }
    }
}

/// An encrypted PKCS#8 private key (`-----BEGIN ENCRYPTED PRIVATE KEY-----`) decrypted with
/// `passphrase`, as an unencrypted PKCS#8 PEM. (The older OpenSSL form with a `DEK-Info`
/// header is not read.)
fn decrypt_private_key(
    pem: &str,
    passphrase: &str,
) -> Result<pkcs8::der::zeroize::Zeroizing<String>, String> {
    use pkcs8::der::pem::LineEnding;
    if pem.contains("DEK-Info:") {
        return Err(
            "the private key is encrypted in the legacy OpenSSL PEM form (DEK-Info); encrypt it as PKCS#8 (`openssl pkcs8 -topk8`)"
                .to_owned(),
        );
    }
    let (label, der) = pkcs8::der::Document::from_pem(pem.trim())
        .map_err(|e| format!("the private key is not a PEM document: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!(
            "a passphrase was given but the private key is not encrypted (it is a {label})"
        ));
    }
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_bytes())
        .map_err(|e| format!("the encrypted private key cannot be read: {e}"))?;
    let decrypted = encrypted
        .decrypt(passphrase)
        .map_err(|e| format!("the private key cannot be decrypted with the passphrase: {e}"))?;
    decrypted
        .to_pem("PRIVATE KEY", LineEnding::LF)
        .map_err(|e| e.to_string())
}

/// Compact JSON, base64url-encoded without padding (one part of a JWT).
fn base64_json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_vec(value)
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn jwt(node: Value, config: Value) -> Jwt {
        let path = ManifestPath::root();
        let model = model::JwtAuthenticator::from_node(&node, &path).unwrap();
        let context =
            AuthContext::new(Arc::new(config), Arc::new(crate::HyperTransport::default()));
        Jwt::from_model(&model, &context, &Secrets::default(), &path).unwrap()
    }

    fn decode_part(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn hs256_token_has_sorted_header_and_verifies() {
        let auth = jwt(
            json!({
                "type": "JwtAuthenticator", "secret_key": "{{ config['secret'] }}", "algorithm": "HS256",
                "token_duration": 60, "header_prefix": "JWT",
                "jwt_headers": {"kid": "key-1"}, "jwt_payload": {"iss": "{{ config['issuer'] }}"},
                "additional_jwt_payload": {"scope": "read"}
            }),
            json!({"secret": "a-long-enough-shared-secret", "issuer": "me"}),
        );
        let token = auth.token().unwrap();
        let signed = token.strip_prefix("JWT ").unwrap();
        let parts: Vec<&str> = signed.split('.').collect();
        let header_text = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header_text, r#"{"alg":"HS256","kid":"key-1","typ":"JWT"}"#);
        let payload = decode_part(parts[1]);
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["scope", "iss", "iat", "exp", "nbf"]);
        assert_eq!(
            payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
            60
        );

        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_issuer(&["me"]);
        let key = jsonwebtoken::DecodingKey::from_secret(b"a-long-enough-shared-secret");
        jsonwebtoken::decode::<Value>(signed, &key, &validation).unwrap();
    }

    /// A P-256 key encrypted as PKCS#8 (AES-256-CBC, PBKDF2) with the passphrase `s3cret`,
    /// made for this test by `openssl pkcs8 -topk8 -v2 aes-256-cbc`, and its public key.
    const ENCRYPTED_EC_KEY: &str = r#"-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAi6dWhMx31d4QICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEJaoYLvWSlTtuPP5GsN5BscEgZDc
Uqj88y4FHN/j6t2V/QFjoYEzWpBGs0K/JzUmtTeCvGQMv7+BSXYqRgkFTBaAUxve
kUT//UHiuTp1tYlkHTquMwFOQliF6Oe6YwR4QdupZ9lhllaFjlTLQkBo40jplXec
mrZQjWyf+GsUW8pykLTXLgh+1n3BdWt+4ID/SYHdLskG0s0AYcaNdGwCuQMpuDc=
-----END ENCRYPTED PRIVATE KEY-----"#;
    const EC_PUBLIC_KEY: &str = r#"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEu8aAX1bT5QKmGw37nUoYnyxt70B7
MsIAhUZ+7FArAzAwqB/Sj/SQunbyOnW41zIjJSW792FEiVAJgV8DbMpIfg==
-----END PUBLIC KEY-----"#;

    #[test]
    fn an_encrypted_private_key_is_decrypted_with_the_passphrase() {
        let node = |passphrase: &str| {
            json!({"type": "JwtAuthenticator", "secret_key": "{{ config['key'] }}", "algorithm": "ES256",
                   "passphrase": passphrase, "token_duration": 60})
        };
        let config = json!({"key": ENCRYPTED_EC_KEY, "pass": "s3cret"});
        let token = jwt(node("{{ config['pass'] }}"), config.clone())
            .token()
            .unwrap();
        let signed = token.strip_prefix("Bearer ").unwrap_or(&token);
        let key = jsonwebtoken::DecodingKey::from_ec_pem(EC_PUBLIC_KEY.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(signed, &key, &validation).unwrap();

        let wrong = jwt(node("not-it"), config.clone()).token().unwrap_err();
        assert!(
            wrong.contains("cannot be decrypted with the passphrase"),
            "{wrong}"
        );
        // Without a passphrase the encrypted key is read as a plain one, and fails.
        assert!(jwt(node(""), config).token().is_err());
    }

    #[test]
    fn base64_secret_and_reserved_claims() {
        let auth = jwt(
            json!({"type": "JwtAuthenticator", "secret_key": "k", "algorithm": "HS256", "base64_encode_secret_key": true}),
            json!({}),
        );
        let token = auth.token().unwrap();
        let key = jsonwebtoken::DecodingKey::from_secret(STANDARD.encode("k").as_bytes());
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();

        let bad = jwt(
            json!({"type": "JwtAuthenticator", "secret_key": "k", "algorithm": "HS256", "additional_jwt_payload": {"exp": "1"}}),
            json!({}),
        );
        assert!(bad.token().unwrap_err().contains("reserved properties"));
    }

    #[test]
    fn unsupported_algorithm_is_a_build_error() {
        let path = ManifestPath::root().key("authenticator");
        let model = model::JwtAuthenticator::from_node(
            &json!({"type": "JwtAuthenticator", "secret_key": "k", "algorithm": "ES256K"}),
            &path,
        )
        .unwrap();
        let context = AuthContext::new(
            Arc::new(json!({})),
            Arc::new(crate::HyperTransport::default()),
        );
        let error = Jwt::from_model(&model, &context, &Secrets::default(), &path)
            .err()
            .unwrap();
        assert_eq!(error.path, "authenticator.algorithm");
    }
}
