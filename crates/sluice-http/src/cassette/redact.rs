//! Keeping secrets out of cassettes and fixture configs.

use super::format::{Body, Cassette};
use crate::HttpRequest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

/// What every secret becomes. Plain letters, so it survives any URL or form encoding unchanged
/// and a config redacted the same way produces requests that match the redacted cassette.
pub const SECRET_PLACEHOLDER: &str = "REDACTED";

/// Query parameters whose values are credentials, whatever the config says.
const SECRET_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "token",
    "auth",
    "auth_token",
    "secret",
    "client_secret",
    "password",
    "refresh_token",
    "signature",
    "sig",
];

/// Fragments of header names that carry credentials (`Authorization`, `X-Api-Key`, `Cookie`...).
const SECRET_HEADER_FRAGMENTS: &[&str] = &[
    "authorization",
    "api-key",
    "apikey",
    "api_key",
    "token",
    "secret",
    "password",
    "cookie",
    "session",
];

/// JSON or form fields that carry credentials, in request bodies (OAuth refresh requests) and
/// response bodies (OAuth token responses).
const SECRET_BODY_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "api_key",
    "apikey",
    "session_token",
];

fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_HEADER_FRAGMENTS.iter().any(|f| name.contains(f))
}

fn is_secret_query_param(name: &str) -> bool {
    SECRET_QUERY_PARAMS
        .iter()
        .any(|p| name.eq_ignore_ascii_case(p))
}

fn is_secret_body_field(name: &str) -> bool {
    SECRET_BODY_FIELDS
        .iter()
        .any(|p| name.eq_ignore_ascii_case(p))
}

impl Cassette {
    /// Replaces every credential with [`SECRET_PLACEHOLDER`]: authorization-like headers, token
    /// query parameters, OAuth fields in bodies, and every occurrence of each string of
    /// `secrets` (the config's [`config_secrets`] and the authenticators' `AuthContext::secrets`),
    /// raw, URL-encoded or base64 ([`crate::secrets::written_forms`]), anywhere in URLs, headers
    /// and bodies (an API that echoes a request echoes its credentials).
    pub fn redact(&mut self, secrets: &[String]) {
        let forms = crate::secrets::all_written_forms(secrets.iter().map(String::as_str));
        let secrets: Vec<&str> = forms.iter().map(String::as_str).collect();
        for exchange in &mut self.exchanges {
            let request = &mut exchange.request;
            request.url = redact_url(&request.url, &secrets);
            redact_headers(&mut request.headers, &secrets);
            // Required headers are matched against requests built from a redacted config, which
            // carry the placeholder inside the value (`Bearer REDACTED`): keep their shape.
            for (_, value) in &mut request.match_headers {
                *value = replace_secrets(value, &secrets);
            }
            if let Some(body) = &mut request.body {
                redact_body(body, &secrets);
            }
            let response = &mut exchange.response;
            redact_headers(&mut response.headers, &secrets);
            if let Some(body) = &mut response.body {
                redact_body(body, &secrets);
            }
        }
    }
}

/// A request's URL fit to show a person, masked as cassettes are: every string of `secrets`
/// (typically [`config_secrets`]), the credentials the request's own authorization-like headers
/// carry, and the values of credential-like query parameters become [`SECRET_PLACEHOLDER`].
pub fn redacted_url(request: &HttpRequest, secrets: &[String]) -> String {
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for (name, value) in &request.headers {
        if is_secret_header(name) {
            // `Bearer abc` carries `abc`, which may also sit in the URL.
            all.push(value);
            all.extend(value.split_whitespace().last());
        }
    }
    let forms = crate::secrets::all_written_forms(all);
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    redact_url(&request.url, &forms)
}

fn replace_secrets(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, SECRET_PLACEHOLDER);
        }
    }
    out
}

/// `secrets` are every written form of each secret, longest first.
fn redact_url(url: &str, secrets: &[&str]) -> String {
    let url = replace_secrets(url, secrets);

    let Some((base, rest)) = url.split_once('?') else {
        return url;
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    // Rewrite only the values of secret parameters, leaving the rest of the query byte-for-byte.
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => {
                let decoded: String = form_urlencoded::parse(name.as_bytes())
                    .map(|(k, _)| k.into_owned())
                    .collect();
                if is_secret_query_param(&decoded) {
                    format!("{name}={SECRET_PLACEHOLDER}")
                } else {
                    pair.to_owned()
                }
            }
            None => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{base}?{}", redacted.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn redact_headers(headers: &mut [(String, String)], secrets: &[&str]) {
    for (name, value) in headers.iter_mut() {
        if is_secret_header(name) {
            *value = SECRET_PLACEHOLDER.to_owned();
        } else {
            *value = replace_secrets(value, secrets);
        }
    }
}

fn redact_body(body: &mut Body, secrets: &[&str]) {
    match body {
        Body::Json(value) => redact_json(value, secrets),
        Body::Text(text) => {
            let replaced = replace_secrets(text, secrets);
            *text = redact_form_text(&replaced).unwrap_or(replaced);
        }
        Body::Base64(encoded) => {
            let Ok(mut bytes) = BASE64.decode(encoded.trim()) else {
                return;
            };
            for secret in secrets {
                bytes = replace_bytes(&bytes, secret.as_bytes(), SECRET_PLACEHOLDER.as_bytes());
            }
            *encoded = BASE64.encode(&bytes);
        }
    }
}

fn redact_json(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(text) => *text = replace_secrets(text, secrets),
        Value::Array(items) => items.iter_mut().for_each(|item| redact_json(item, secrets)),
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if is_secret_body_field(key) && !field.is_null() {
                    *field = Value::String(SECRET_PLACEHOLDER.to_owned());
                } else {
                    redact_json(field, secrets);
                }
            }
        }
        _ => {}
    }
}

/// A body that looks like a form (`a=1&refresh_token=...`) gets its secret fields replaced;
/// anything else is left alone (`None`).
fn redact_form_text(text: &str) -> Option<String> {
    let looks_like_form = !text.is_empty()
        && !text.contains(char::is_whitespace)
        && text.split('&').all(|pair| pair.contains('='));
    if !looks_like_form {
        return None;
    }
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(text.as_bytes()) {
        let value = if is_secret_body_field(&name) {
            SECRET_PLACEHOLDER.into()
        } else {
            value
        };
        serializer.append_pair(&name, &value);
    }
    Some(serializer.finish())
}

fn replace_bytes(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(replacement);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The config values that the spec's `connection_specification` marks `airbyte_secret: true`
/// (nested objects, `oneOf`/`anyOf`/`allOf` alternatives and arrays included), and those under a
/// credential's name (`password`, `api_key`, `client_secret`, `*token*`: see
/// [`crate::secrets::is_credential_name`]) whatever the spec says, as strings.
pub fn config_secrets(connection_specification: &Value, config: &Value) -> Vec<String> {
    secret_paths(connection_specification, config)
        .iter()
        .filter_map(|path| config.pointer(path))
        .filter_map(|value| match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect()
}

/// Replaces the config values [`config_secrets`] gives with [`SECRET_PLACEHOLDER`], in place.
pub fn redact_config(connection_specification: &Value, config: &mut Value) {
    for path in secret_paths(connection_specification, config) {
        if let Some(slot) = config.pointer_mut(&path).filter(|slot| !slot.is_null()) {
            *slot = Value::String(SECRET_PLACEHOLDER.to_owned());
        }
    }
}

/// JSON pointers (into `config`) of the values the schema marks secret or that sit under a
/// credential's name.
fn secret_paths(schema: &Value, config: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    collect_secret_paths(schema, config, String::new(), &mut paths);
    collect_credential_paths(config, String::new(), &mut paths);
    paths.sort();
    paths.dedup();
    paths
}

/// A spec need not mark a connector's `api_key` secret for it to be one.
fn collect_credential_paths(config: &Value, pointer: String, out: &mut Vec<String>) {
    match config {
        Value::Object(values) => {
            for (name, value) in values {
                let child = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                let scalar = matches!(value, Value::String(_) | Value::Number(_));
                if scalar && crate::secrets::is_credential_name(name) {
                    out.push(child);
                } else {
                    collect_credential_paths(value, child, out);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_credential_paths(item, format!("{pointer}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn collect_secret_paths(schema: &Value, config: &Value, pointer: String, out: &mut Vec<String>) {
    let Value::Object(schema) = schema else {
        return;
    };
    if schema.get("airbyte_secret").and_then(Value::as_bool) == Some(true) {
        out.push(pointer.clone());
        return;
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(alternatives)) = schema.get(combinator) {
            for alternative in alternatives {
                collect_secret_paths(alternative, config, pointer.clone(), out);
            }
        }
    }
    if let (Some(Value::Object(properties)), Value::Object(values)) =
        (schema.get("properties"), config)
    {
        for (name, property) in properties {
            if values.contains_key(name) {
                let child = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                collect_secret_paths(property, &values[name], child, out);
            }
        }
    }
    if let (Some(items), Value::Array(values)) = (schema.get("items"), config) {
        for (index, value) in values.iter().enumerate() {
            collect_secret_paths(items, value, format!("{pointer}/{index}"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{Exchange, RecordedRequest, RecordedResponse};
    use serde_json::json;

    fn exchange(
        url: &str,
        headers: &[(&str, &str)],
        request_body: Option<Body>,
        response_body: Body,
    ) -> Exchange {
        Exchange {
            request: RecordedRequest {
                method: "POST".into(),
                url: url.into(),
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
                match_headers: vec![("Authorization".into(), "Bearer s3cr/t".into())],
                body: request_body,
            },
            response: RecordedResponse {
                status: 200,
                headers: vec![],
                body: Some(response_body),
            },
        }
    }

    #[test]
    fn a_shown_url_hides_config_and_header_credentials() {
        let request = HttpRequest::new(
            crate::Method::Get,
            "https://h/v1/t0ken-in-path/items?sig=abc&page=2&user=cfg%2Bsecret",
        )
        .with_header("Authorization", "Bearer t0ken-in-path")
        .with_header("Accept", "application/json");
        assert_eq!(
            redacted_url(&request, &["cfg+secret".to_owned()]),
            "https://h/v1/REDACTED/items?sig=REDACTED&page=2&user=REDACTED"
        );
    }

    #[test]
    fn credentials_never_reach_the_cassette() {
        let mut cassette = Cassette::new();
        cassette.exchanges.push(exchange(
            "https://h/v1/s3cr%2Ft/items?api_key=abc&page=2&AccessToken=x&token=t0k",
            &[("Authorization", "Bearer abc"), ("X-Api-Key", "k"), ("Accept", "application/json"), ("X-Echo", "s3cr/t")],
            Some(Body::Text("grant_type=refresh_token&refresh_token=r1&client_secret=cs".into())),
            Body::Json(json!({"access_token": "at", "expires_in": 3600, "nested": [{"note": "has s3cr/t inside"}]})),
        ));
        cassette.redact(&["s3cr/t".to_owned()]);
        let exchange = &cassette.exchanges[0];
        assert_eq!(
            exchange.request.url,
            "https://h/v1/REDACTED/items?api_key=REDACTED&page=2&AccessToken=x&token=REDACTED"
        );
        let headers: Vec<&str> = exchange
            .request
            .headers
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            headers,
            ["REDACTED", "REDACTED", "application/json", "REDACTED"]
        );
        assert_eq!(
            exchange.request.match_headers,
            [("Authorization".to_owned(), "Bearer REDACTED".to_owned())]
        );
        assert_eq!(
            exchange.request.body,
            Some(Body::Text(
                "grant_type=refresh_token&refresh_token=REDACTED&client_secret=REDACTED".into()
            ))
        );
        assert_eq!(
            exchange.response.body,
            Some(Body::Json(
                json!({"access_token": "REDACTED", "expires_in": 3600, "nested": [{"note": "has REDACTED inside"}]})
            ))
        );
        assert!(!cassette.to_json_string().contains("s3cr"));
    }

    #[test]
    fn binary_bodies_are_redacted_too() {
        let mut body = Body::Base64(BASE64.encode(b"\xff\xfepw=hunter2\x00"));
        redact_body(&mut body, &["hunter2"]);
        assert_eq!(
            body,
            Body::Base64(BASE64.encode(b"\xff\xfepw=REDACTED\x00"))
        );
    }

    #[test]
    fn spec_secrets_and_credentials_are_found_in_nested_objects_and_alternatives() {
        let spec = json!({
            "type": "object",
            "properties": {
                "api_key": {"type": "string", "airbyte_secret": true},
                "region": {"type": "string"},
                "credentials": {"oneOf": [
                    {"properties": {"password": {"type": "string", "airbyte_secret": true}}},
                    {"properties": {"client_secret": {"type": "string", "airbyte_secret": true}}}
                ]},
                "tokens": {"type": "array", "items": {"type": "string", "airbyte_secret": true}},
                "pin": {"type": "integer", "airbyte_secret": true}
            }
        });
        let mut config = json!({
            "api_key": "k1", "region": "eu", "user": {"password": "pw", "name": "sam"},
            "credentials": {"client_secret": "cs"},
            "tokens": ["t1", "t2"], "pin": 1234
        });
        let mut secrets = config_secrets(&spec, &config);
        secrets.sort();
        assert_eq!(secrets, ["1234", "cs", "k1", "pw", "t1", "t2"]);
        redact_config(&spec, &mut config);
        assert_eq!(
            config,
            json!({
                "api_key": "REDACTED", "region": "eu", "user": {"password": "REDACTED", "name": "sam"},
                "credentials": {"client_secret": "REDACTED"},
                "tokens": ["REDACTED", "REDACTED"], "pin": "REDACTED"
            })
        );
    }
}
