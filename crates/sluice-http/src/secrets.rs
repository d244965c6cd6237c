//! Hiding secrets wherever text leaves sluice: the forms a secret travels in, and which names
//! carry credentials.
//!
//! A secret is hidden in all the forms it may be written in on the way: raw, URL-encoded (a
//! query parameter or a form body) and base64 (Basic auth, a token encoded by the API).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Secrets shorter than this are not hidden: replacing two letters would garble unrelated text.
pub const MIN_SECRET_LEN: usize = 3;

/// Below this length a secret's base64 is a handful of letters likely to occur by chance in a
/// body, so only its raw and URL-encoded forms are hidden.
const MIN_BASE64_SOURCE_LEN: usize = 6;

/// Every form `secret` may be written in, longest first (so a form containing another is
/// replaced whole): raw, percent-encoded (upper- and lower-case hex), form-encoded, and base64
/// (standard and URL-safe, padded and not). Empty for a secret too short to hide.
pub fn written_forms(secret: &str) -> Vec<String> {
    if secret.len() < MIN_SECRET_LEN {
        return Vec::new();
    }
    let mut forms = vec![secret.to_owned()];
    let percent = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    forms.push(lower_hex(&percent));
    forms.push(percent);
    forms.push(form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    if secret.len() >= MIN_BASE64_SOURCE_LEN {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(secret));
        }
    }
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    forms
}

/// `%2F` as `%2f`: some clients write percent-encoding in lower case.
fn lower_hex(percent: &str) -> String {
    let mut out = String::with_capacity(percent.len());
    let mut chars = percent.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

/// The forms of every secret in `secrets`, longest first, ready for [`hide_forms`].
pub fn all_written_forms<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut forms: Vec<String> = secrets.into_iter().flat_map(written_forms).collect();
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    forms
}

/// `text` with every one of `forms` (from [`all_written_forms`]) replaced by `placeholder`.
pub fn hide_forms(text: &str, forms: &[String], placeholder: &str) -> String {
    let mut out = text.to_owned();
    for form in forms {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), placeholder);
        }
    }
    out
}

/// `text` with every secret of `secrets`, in every form it may be written in, replaced by `****`
/// as the reference masks its logs.
pub fn mask<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    hide_forms(text, &all_written_forms(secrets), "****")
}

/// Fragments of the names of fields, headers and parameters that carry credentials
/// (`password`, `X-Api-Key`, `client_secret`, `session_token`...).
const CREDENTIAL_NAME_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "credential",
    "signature",
];

/// Whether a field, header or parameter of this name carries a credential.
pub fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "key" || name == "pwd" || CREDENTIAL_NAME_FRAGMENTS.iter().any(|f| name.contains(f))
}

/// The credentials a request carries under credential names ([`is_credential_name`]): query
/// parameters, headers (and the token after an `Authorization` scheme), and the fields of a JSON
/// or form body. A login request's password is one, whatever template wrote it.
pub fn credentials_in(request: &crate::HttpRequest) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, query)) = request.url.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if is_credential_name(&name) {
                found.push(value.into_owned());
            }
        }
    }
    for (name, value) in &request.headers {
        if is_credential_name(name) {
            found.push(value.clone());
            found.extend(value.split_whitespace().nth(1).map(str::to_owned));
        }
    }
    if let Some(body) = &request.body {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => credentials_in_json(&json, &mut found),
            Err(_) => {
                for (name, value) in form_urlencoded::parse(body) {
                    if is_credential_name(&name) {
                        found.push(value.into_owned());
                    }
                }
            }
        }
    }
    found.retain(|value| value.len() >= MIN_SECRET_LEN);
    found
}

fn credentials_in_json(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map {
                match field {
                    serde_json::Value::String(text) if is_credential_name(key) => {
                        found.push(text.clone());
                    }
                    serde_json::Value::Number(number) if is_credential_name(key) => {
                        found.push(number.to_string());
                    }
                    other => credentials_in_json(other, found),
                }
            }
        }
        serde_json::Value::Array(items) => {
            items
                .iter()
                .for_each(|item| credentials_in_json(item, found));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_credentials_are_found_by_name() {
        let request =
            crate::HttpRequest::new(crate::Method::Post, "https://h/login?api_key=k3y1&page=2")
                .with_header("Authorization", "Basic dXNlcjpw")
                .with_body(
                    "application/json",
                    br#"{"user": {"name": "sam", "password": "hunter2"}, "totp": "123456"}"#
                        .to_vec(),
                );
        assert_eq!(
            credentials_in(&request),
            ["k3y1", "Basic dXNlcjpw", "dXNlcjpw", "hunter2"]
        );
        let form = crate::HttpRequest::new(crate::Method::Post, "https://h/login").with_body(
            "application/x-www-form-urlencoded",
            b"username=sam&pwd=a%2Fb".to_vec(),
        );
        assert_eq!(credentials_in(&form), ["a/b"]);
    }

    #[test]
    fn every_form_of_a_secret_is_hidden() {
        let text = "raw s3cr/t+1 url s3cr%2Ft%2B1 lower s3cr%2ft%2b1 b64 czNjci90KzE= \
                    Basic dXNlcjpzM2NyL3QrMQ==";
        let masked = mask(text, ["s3cr/t+1", "user:s3cr/t+1"]);
        assert_eq!(masked, "raw **** url **** lower **** b64 **** Basic ****");
    }

    #[test]
    fn short_secrets_keep_their_base64_out() {
        assert!(written_forms("ab").is_empty());
        assert_eq!(written_forms("abcd"), ["abcd"]);
    }

    #[test]
    fn credential_names() {
        for name in [
            "password",
            "X-Api-Key",
            "client_secret",
            "session_token",
            "key",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in ["username", "monkey", "page"] {
            assert!(!is_credential_name(name), "{name}");
        }
    }
}
