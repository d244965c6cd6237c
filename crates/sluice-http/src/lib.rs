//! HTTP for declarative sources: requests built from a manifest's requester, authenticators,
//! and the transports that carry them (a pooled hyper client, or a cassette in tests).
//!
//! The [`Transport`] trait is the seam between building a request and sending it: the
//! [`HyperTransport`] talks to the network; the record/replay transports of [`cassette`] let
//! tests and the conformance suite run offline.
//!
//! ```
//! use sluice_http::{HttpRequest, Method};
//! let request = HttpRequest::new(Method::Get, "https://api.example.com/v1/users")
//!     .with_query(&[("page".to_owned(), "2".to_owned())])
//!     .with_header("Accept", "application/json");
//! assert_eq!(request.url, "https://api.example.com/v1/users?page=2");
//! ```

pub mod auth;
pub mod cassette;
mod errors;
mod message;
mod requester;
mod transport;
pub mod url_join;

pub use cassette::{Cassette, RecordingTransport, ReplayTransport};
pub use errors::{Action, ErrorHandler, HttpError, Resolution};
pub use message::{HttpRequest, HttpResponse, Method};
pub use requester::{RequestMapping, RequestOptions, RequestVariables, Requester, UrlSource};
pub use transport::{HyperTransport, Transport, TransportError, TransportFuture};
