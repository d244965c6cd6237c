//! What makes two requests "the same" for replay, and how far apart two requests are.

use super::format::{RecordedRequest, host_with_port};
use crate::HttpRequest;
use percent_encoding::percent_decode_str;

/// A request reduced to what matching compares: method, host, decoded path, query parameters as
/// a sorted multiset, and the body (as JSON, as sorted form fields, or as bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestKey {
    pub method: String,
    /// `host` or `host:port`, lower case; the scheme is ignored so a cassette recorded over
    /// HTTPS answers the same request sent to a local HTTP server.
    pub host: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: BodyKey,
}

/// A request body in comparable form.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyKey {
    Empty,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Bytes(Vec<u8>),
}

impl RequestKey {
    /// The key of a request about to be sent.
    pub fn of_request(request: &HttpRequest) -> Self {
        let content_type = request.header("content-type").unwrap_or_default();
        Self::build(
            request.method.as_str(),
            &request.url,
            request.body.as_deref().unwrap_or_default(),
            content_type,
        )
    }

    /// The key of a recorded request.
    pub fn of_recorded(request: &RecordedRequest) -> Self {
        let body = request
            .body
            .as_ref()
            .and_then(|b| b.to_bytes().ok())
            .unwrap_or_default();
        let content_type = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        Self::build(&request.method, &request.url, &body, content_type)
    }

    fn build(method: &str, url: &str, body: &[u8], content_type: &str) -> Self {
        let (host, path, query) = match url::Url::parse(url) {
            Ok(parsed) => {
                let mut query: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                query.sort();
                let path = percent_decode_str(parsed.path())
                    .decode_utf8_lossy()
                    .into_owned();
                (host_with_port(&parsed).unwrap_or_default(), path, query)
            }
            // Not a URL: compare it whole, so it can still match an identical recording.
            Err(_) => (String::new(), url.to_owned(), Vec::new()),
        };
        Self {
            method: method.to_ascii_uppercase(),
            host,
            path,
            query,
            body: BodyKey::of(body, content_type),
        }
    }

    /// How alike two requests are, from 0 (nothing in common) to 1 (same method, host and path);
    /// used to name the closest recording when a request has none.
    pub fn similarity(&self, other: &RequestKey) -> f64 {
        let method = if self.method == other.method {
            1.0
        } else {
            0.0
        };
        let host = if self.host == other.host { 1.0 } else { 0.0 };
        let path = strsim::normalized_levenshtein(&self.path, &other.path);
        let query = multiset_overlap(&self.query, &other.query);
        (method + host + 3.0 * path + query) / 6.0
    }

    /// The parts that differ from `recorded`, for an error message.
    pub fn differences(&self, recorded: &RequestKey) -> Vec<String> {
        let mut out = Vec::new();
        if self.method != recorded.method {
            out.push(format!(
                "method {} vs recorded {}",
                self.method, recorded.method
            ));
        }
        if self.host != recorded.host {
            out.push(format!("host {} vs recorded {}", self.host, recorded.host));
        }
        if self.path != recorded.path {
            out.push(format!("path {} vs recorded {}", self.path, recorded.path));
        }
        if self.query != recorded.query {
            let show = |pairs: &[(String, String)], others: &[(String, String)]| {
                let only: Vec<String> = pairs
                    .iter()
                    .filter(|p| !others.contains(p))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                if only.is_empty() {
                    "nothing".to_owned()
                } else {
                    only.join("&")
                }
            };
            out.push(format!(
                "query has {} where the recording has {}",
                show(&self.query, &recorded.query),
                show(&recorded.query, &self.query)
            ));
        }
        if self.body != recorded.body {
            out.push("body differs".to_owned());
        }
        out
    }
}

impl BodyKey {
    fn of(body: &[u8], content_type: &str) -> Self {
        if body.is_empty() {
            return BodyKey::Empty;
        }
        if let Ok(value) = serde_json::from_slice(body) {
            return BodyKey::Json(value);
        }
        if content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            pairs.sort();
            return BodyKey::Form(pairs);
        }
        BodyKey::Bytes(body.to_vec())
    }
}

/// Share of the larger multiset found in the other (both are sorted); two empty sets are equal.
fn multiset_overlap(a: &[(String, String)], b: &[(String, String)]) -> f64 {
    let larger = a.len().max(b.len());
    if larger == 0 {
        return 1.0;
    }
    let mut remaining: Vec<&(String, String)> = b.iter().collect();
    let mut common = 0usize;
    for pair in a {
        if let Some(pos) = remaining.iter().position(|p| *p == pair) {
            remaining.swap_remove(pos);
            common += 1;
        }
    }
    common as f64 / larger as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    fn key(method: Method, url: &str) -> RequestKey {
        RequestKey::of_request(&HttpRequest::new(method, url))
    }

    #[test]
    fn query_order_encoding_and_scheme_do_not_matter() {
        let a = key(
            Method::Get,
            "https://API.example.com/v1/a%20b?x=1&y=two+words&x=0",
        );
        let b = key(
            Method::Get,
            "http://api.example.com/v1/a b?y=two%20words&x=0&x=1",
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            key(
                Method::Get,
                "https://api.example.com/v1/a%20b?x=1&y=two+words"
            )
        );
        assert_ne!(
            a,
            key(
                Method::Post,
                "https://api.example.com/v1/a%20b?x=1&y=two+words&x=0"
            )
        );
        assert_ne!(
            key(Method::Get, "https://h:8080/p"),
            key(Method::Get, "https://h/p")
        );
    }

    #[test]
    fn json_bodies_compare_as_json_and_forms_as_multisets() {
        let json = |text: &'static str| {
            RequestKey::of_request(
                &HttpRequest::new(Method::Post, "https://h/p").with_body("application/json", text),
            )
        };
        assert_eq!(
            json(r#"{"a": 1, "b": [1, 2]}"#),
            json(r#"{"b":[1,2],"a":1}"#)
        );
        assert_ne!(json(r#"{"a": 1}"#), json(r#"{"a": 2}"#));
        let form = |text: &'static str| {
            RequestKey::of_request(
                &HttpRequest::new(Method::Post, "https://h/p")
                    .with_body("application/x-www-form-urlencoded", text),
            )
        };
        assert_eq!(
            form("grant_type=refresh&client_id=c"),
            form("client_id=c&grant_type=refresh")
        );
    }

    #[test]
    fn similarity_prefers_same_method_and_close_paths() {
        let asked = key(Method::Get, "https://h/v1/users?page=2");
        let near = key(Method::Get, "https://h/v1/user?page=2");
        let far = key(Method::Get, "https://h/v2/orders");
        let post = key(Method::Post, "https://h/v1/users?page=2");
        assert!(asked.similarity(&near) > asked.similarity(&far));
        assert!(asked.similarity(&near) > asked.similarity(&post) - 0.2);
        let diffs = asked.differences(&near);
        assert_eq!(
            diffs,
            vec!["path /v1/users vs recorded /v1/user".to_owned()]
        );
        let q = key(Method::Get, "https://h/v1/users?page=3").differences(&asked);
        assert_eq!(
            q,
            vec!["query has page=3 where the recording has page=2".to_owned()]
        );
    }
}
