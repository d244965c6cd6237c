//! Cassettes: recorded HTTP exchanges that let a declarative source run offline.
//!
//! A cassette is a JSON file (format documented in `fixtures/README.md`) holding a list of
//! request/response pairs. [`ReplayTransport`] answers requests from it; [`RecordingTransport`]
//! wraps a live transport and writes what it saw, with secrets replaced by
//! [`SECRET_PLACEHOLDER`] (see [`Cassette::redact`]).
//!
//! Requests match a recorded exchange on method, URL (scheme ignored, query parameters compared
//! as a multiset) and body (compared as JSON when both sides are JSON). Identical requests are
//! answered in recorded order, the last answer repeating once the others are used up, so a retry
//! sequence such as 500-then-200 replays faithfully.
//!
//! ```
//! use sluice_http::{Cassette, HttpRequest, Method, ReplayTransport, Transport};
//! let cassette = Cassette::from_json_str(r#"{
//!   "exchanges": [{
//!     "request": {"method": "GET", "url": "https://api.example.com/users?b=2&a=1"},
//!     "response": {"status": 200, "body": {"json": [{"id": 1}]}}
//!   }]
//! }"#).unwrap();
//! let transport = ReplayTransport::new(cassette);
//! let request = HttpRequest::new(Method::Get, "https://api.example.com/users?a=1&b=2");
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let response = runtime.block_on(transport.send(&request)).unwrap();
//! assert_eq!(response.body.as_ref(), br#"[{"id":1}]"#);
//! ```

mod format;
mod matching;
mod record;
mod redact;
mod replay;

pub use format::{Body, Cassette, CassetteError, Exchange, RecordedRequest, RecordedResponse};
pub use matching::RequestKey;
pub use record::RecordingTransport;
pub use redact::{SECRET_PLACEHOLDER, config_secrets, redact_config, redacted_url};
pub use replay::ReplayTransport;
