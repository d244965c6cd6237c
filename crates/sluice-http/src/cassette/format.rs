//! The cassette file format and its conversions to and from requests and responses.

use crate::{HttpRequest, HttpResponse, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format version written into every cassette; readers accept files without it.
const FORMAT_VERSION: u32 = 1;

/// A cassette that cannot be read, understood or written.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cannot read cassette {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write cassette {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cassette {origin} is not valid: {source}")]
    Parse {
        origin: String,
        source: serde_json::Error,
    },
    #[error("cassette {origin}, exchange #{index} ({request}): {reason}")]
    Invalid {
        origin: String,
        index: usize,
        request: String,
        reason: String,
    },
}

/// A list of recorded exchanges, in the order they happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// Format version (currently 1).
    #[serde(default = "format_version")]
    pub sluice_cassette: u32,
    /// Free text for whoever reads the file; ignored by replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub exchanges: Vec<Exchange>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

/// One request and the response it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

/// The parts of a request that identify it: method, URL (with its query) and body. Headers are
/// kept for the reader but take no part in matching (authorization headers are redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequest {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default, with = "header_map", skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Headers a request must carry (same value, names compared case-insensitively) to match:
    /// lets a hand-written cassette check what an authenticator sends. Never written by the
    /// recorder, since clients differ in the headers they add.
    #[serde(default, with = "header_map", skip_serializing_if = "Vec::is_empty")]
    pub match_headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// A recorded response. The body is stored decoded (a gzip-encoded transfer is stored as its
/// content); binary content is kept as base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default, with = "header_map", skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

fn default_status() -> u16 {
    200
}

/// A body in the form easiest to read and edit: parsed JSON, UTF-8 text, or base64 for bytes
/// that are neither. Written as `{"json": ...}`, `{"text": "..."}` or `{"base64": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Body {
    Json(serde_json::Value),
    Text(String),
    Base64(String),
}

impl Body {
    /// Chooses the most readable form for `bytes`: JSON if they parse as a JSON document, else
    /// text if they are UTF-8, else base64.
    pub fn from_bytes(bytes: &[u8]) -> Option<Body> {
        if bytes.is_empty() {
            return None;
        }
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            return Some(Body::Json(value));
        }
        Some(match std::str::from_utf8(bytes) {
            Ok(text) => Body::Text(text.to_owned()),
            Err(_) => Body::Base64(BASE64.encode(bytes)),
        })
    }

    /// The bytes this body stands for (JSON is written compactly, keys in their recorded order).
    pub fn to_bytes(&self) -> Result<Bytes, String> {
        Ok(match self {
            Body::Json(value) => serde_json::to_vec(value).map_err(|e| e.to_string())?.into(),
            Body::Text(text) => Bytes::copy_from_slice(text.as_bytes()),
            Body::Base64(encoded) => BASE64
                .decode(encoded.trim())
                .map_err(|e| format!("body is not valid base64: {e}"))?
                .into(),
        })
    }
}

impl RecordedRequest {
    /// Captures a request as sent.
    pub fn from_request(request: &HttpRequest) -> Self {
        Self {
            method: request.method.as_str().to_owned(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            match_headers: Vec::new(),
            body: request.body.as_deref().and_then(Body::from_bytes),
        }
    }

    /// `GET https://host/path?query`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method.to_ascii_uppercase(), self.url)
    }
}

impl RecordedResponse {
    /// Captures a response; headers that describe the transfer rather than the content are
    /// dropped, since the body is stored decoded and re-encoded when served.
    pub fn from_response(response: &HttpResponse) -> Self {
        const TRANSFER_HEADERS: [&str; 5] = [
            "content-length",
            "content-encoding",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ];
        Self {
            status: response.status,
            headers: response
                .headers
                .iter()
                .filter(|(name, _)| {
                    !TRANSFER_HEADERS
                        .iter()
                        .any(|t| name.eq_ignore_ascii_case(t))
                })
                .cloned()
                .collect(),
            body: Body::from_bytes(&response.body),
        }
    }

    /// The response to hand back on replay.
    pub fn to_response(&self) -> Result<HttpResponse, String> {
        let body = match &self.body {
            Some(body) => body.to_bytes()?,
            None => Bytes::new(),
        };
        let mut headers = self.headers.clone();
        let has_content_type = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if !has_content_type && matches!(self.body, Some(Body::Json(_))) {
            // Hand-written cassettes often omit it; JSON decoders of some connectors look at it.
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        Ok(HttpResponse {
            status: self.status,
            headers,
            body,
        })
    }
}

impl Cassette {
    /// An empty cassette.
    pub fn new() -> Self {
        Self {
            sluice_cassette: FORMAT_VERSION,
            comment: None,
            exchanges: Vec::new(),
        }
    }

    /// Parses and validates a cassette held in a string.
    pub fn from_json_str(text: &str) -> Result<Self, CassetteError> {
        Self::parse(text, "<string>")
    }

    /// Reads and validates a cassette file.
    pub fn load(path: &Path) -> Result<Self, CassetteError> {
        let text = std::fs::read_to_string(path).map_err(|source| CassetteError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, CassetteError> {
        let cassette: Cassette =
            serde_json::from_str(text).map_err(|source| CassetteError::Parse {
                origin: origin.to_owned(),
                source,
            })?;
        cassette.validate(origin)?;
        Ok(cassette)
    }

    /// Checks what serde cannot: methods, URLs and base64 bodies.
    fn validate(&self, origin: &str) -> Result<(), CassetteError> {
        for (index, exchange) in self.exchanges.iter().enumerate() {
            let invalid = |reason: String| CassetteError::Invalid {
                origin: origin.to_owned(),
                index,
                request: exchange.request.describe(),
                reason,
            };
            if Method::parse(&exchange.request.method).is_none() {
                return Err(invalid(format!(
                    "unknown HTTP method {:?}",
                    exchange.request.method
                )));
            }
            url::Url::parse(&exchange.request.url)
                .map_err(|e| invalid(format!("the URL is not absolute: {e}")))?;
            for body in [&exchange.request.body, &exchange.response.body]
                .into_iter()
                .flatten()
            {
                body.to_bytes().map_err(invalid)?;
            }
        }
        Ok(())
    }

    /// The cassette as pretty-printed JSON, ready to be edited by hand.
    pub fn to_json_string(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the cassette, creating parent directories as needed.
    pub fn save(&self, path: &Path) -> Result<(), CassetteError> {
        let write_error = |source| CassetteError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        std::fs::write(path, self.to_json_string()).map_err(write_error)
    }

    /// The distinct `host[:port]` of every recorded URL, in first-seen order.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for exchange in &self.exchanges {
            let host = url::Url::parse(&exchange.request.url)
                .ok()
                .as_ref()
                .and_then(host_with_port);
            if let Some(host) = host.filter(|h| !hosts.contains(h)) {
                hosts.push(host);
            }
        }
        hosts
    }
}

/// `host` or `host:port` when the port is not the scheme's default.
pub(crate) fn host_with_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Headers are written as a JSON object (readable), read back as pairs (repeated names survive).
mod header_map {
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(
        headers: &[(String, String)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(headers.len()))?;
        for (name, value) in headers {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    pairs.push(entry);
                }
                Ok(pairs)
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_pick_the_most_readable_form_and_round_trip() {
        assert_eq!(Body::from_bytes(b""), None);
        let json = Body::from_bytes(br#"{"b": 1, "a": [true, null]}"#).unwrap();
        assert!(matches!(json, Body::Json(_)));
        assert_eq!(
            json.to_bytes().unwrap().as_ref(),
            br#"{"b":1,"a":[true,null]}"#
        );
        let csv = Body::from_bytes(b"id,name\n1,caf\xc3\xa9\n").unwrap();
        assert_eq!(csv, Body::Text("id,name\n1,café\n".to_owned()));
        let gzip = [0x1f_u8, 0x8b, 0x08, 0x00, 0xff, 0xfe];
        let binary = Body::from_bytes(&gzip).unwrap();
        assert!(matches!(binary, Body::Base64(_)));
        assert_eq!(binary.to_bytes().unwrap().as_ref(), &gzip);
    }

    #[test]
    fn a_hand_written_cassette_parses_with_defaults() {
        let cassette = Cassette::from_json_str(
            r#"{"exchanges": [{"request": {"url": "https://h.example/x"}, "response": {"body": {"text": "ok"}}}]}"#,
        )
        .unwrap();
        let exchange = &cassette.exchanges[0];
        assert_eq!(exchange.request.method, "GET");
        assert_eq!(exchange.response.status, 200);
        assert_eq!(cassette.hosts(), vec!["h.example".to_owned()]);
    }

    #[test]
    fn invalid_cassettes_say_which_exchange_is_wrong() {
        let err = Cassette::from_json_str(
            r#"{"exchanges": [{"request": {"method": "BREW", "url": "https://h/x"}, "response": {}}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("exchange #0 (BREW https://h/x): unknown HTTP method"),
            "{err}"
        );
        let err = Cassette::from_json_str(
            r#"{"exchanges": [{"request": {"url": "https://h/x"}, "response": {"body": {"base64": "%%"}}}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not valid base64"), "{err}");
        let err = Cassette::from_json_str(
            r#"{"exchanges": [{"request": {"url": "/relative"}, "response": {}}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not absolute"), "{err}");
        assert!(Cassette::from_json_str(r#"{"exchanges": [], "extra": 1}"#).is_err());
    }

    #[test]
    fn repeated_headers_survive_a_round_trip() {
        let response = RecordedResponse {
            status: 200,
            headers: vec![
                ("Set-Cookie".into(), "a=1".into()),
                ("Set-Cookie".into(), "b=2".into()),
            ],
            body: None,
        };
        let cassette = Cassette {
            exchanges: vec![Exchange {
                request: RecordedRequest {
                    method: "GET".into(),
                    url: "https://h/".into(),
                    headers: vec![],
                    match_headers: vec![],
                    body: None,
                },
                response,
            }],
            ..Cassette::new()
        };
        let text = cassette.to_json_string();
        assert_eq!(Cassette::from_json_str(&text).unwrap(), cassette);
    }

    #[test]
    fn responses_drop_transfer_headers_and_json_gets_a_content_type() {
        let response = HttpResponse {
            status: 200,
            headers: vec![
                ("Content-Length".into(), "7".into()),
                ("X-Rate".into(), "9".into()),
            ],
            body: Bytes::from_static(b"{\"a\":1}"),
        };
        let recorded = RecordedResponse::from_response(&response);
        assert_eq!(
            recorded.headers,
            vec![("X-Rate".to_owned(), "9".to_owned())]
        );
        let replayed = recorded.to_response().unwrap();
        assert_eq!(replayed.header("content-type"), Some("application/json"));
        assert_eq!(replayed.body, response.body);
    }
}
