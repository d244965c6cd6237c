//! HTTP for declarative sources: requests built from a manifest's requester, authenticators,
//! and the transports that carry them (a pooled hyper client, or a cassette in tests).
//!
//! The [`Transport`] trait is the seam between building a request and sending it: the
//! [`HyperTransport`] talks to the network; the record/replay transports of [`cassette`] let
//! tests and the conformance suite run offline. [`Requester::send`] adds what the reference's
//! client does around each exchange: the rate budget, redirects (followed as Python's `requests`
//! follows them), and the error handler's retries and backoff.
//!
//! ```
//! use sluice_http::{HttpRequest, Method};
//! let request = HttpRequest::new(Method::Get, "https://api.example.com/v1/users")
//!     .with_query(&[("page".to_owned(), "2".to_owned())])
//!     .with_header("Accept", "application/json");
//! assert_eq!(request.url, "https://api.example.com/v1/users?page=2");
//! ```

pub mod auth;
pub mod backoff;
mod body;
mod cache;
pub mod cassette;
pub mod errors;
mod message;
pub mod observe;
mod page_buffers;
mod proxy;
pub mod rate_limit;
mod redirect;
mod requester;
mod retry;
pub mod secrets;
mod transport;
pub mod url_join;

pub use body::{JsonBodyInput, RequestInput};
pub use cache::{CachingTransport, DEFAULT_CACHE_BYTES, ResponseCache};
pub use cassette::{Cassette, RecordingTransport, ReplayTransport};
pub use errors::{Action, BuildError, ErrorHandler, HttpError, Resolution};
pub use message::{HttpRequest, HttpResponse, Method};
pub use page_buffers::{PAGE_BUFFERS, PageBuffers};
pub use proxy::ProxyEnv;
pub use rate_limit::ApiBudget;
pub use requester::{
    RateLimitListener, RequestBody, RequestMapping, RequestOptions, RequestVariables, Requester,
    UrlSource,
};
pub use transport::{HyperTransport, Timeouts, Transport, TransportError, TransportFuture};

/// The manifest component types this crate implements (for tools that check what a manifest
/// needs, such as `sluice validate`).
pub const SUPPORTED_COMPONENTS: &[&str] = &[
    "HttpRequester",
    "RequestOption",
    "NoAuth",
    "ApiKeyAuthenticator",
    "BearerAuthenticator",
    "BasicHttpAuthenticator",
    "OAuthAuthenticator",
    "JwtAuthenticator",
    "SessionTokenAuthenticator",
    "SessionTokenRequestApiKeyAuthenticator",
    "SessionTokenRequestBearerAuthenticator",
    "ApiKey",
    "Bearer",
    "LegacySessionTokenAuthenticator",
    "SelectiveAuthenticator",
    "RateLimitedMultipleTokenAuthenticator",
    "TokenQuota",
    "QuotaStatusSource",
    "DefaultErrorHandler",
    "CompositeErrorHandler",
    "HttpResponseFilter",
    "ExponentialBackoffStrategy",
    "ConstantBackoffStrategy",
    "WaitTimeFromHeader",
    "WaitUntilTimeFromHeader",
    "WaitTimeFromResponse",
    "HTTPAPIBudget",
    "FixedWindowCallRatePolicy",
    "MovingWindowCallRatePolicy",
    "UnlimitedCallRatePolicy",
    "HttpRequestRegexMatcher",
    "RequestBodyJsonObject",
    "RequestBodyUrlEncodedForm",
    "RequestBodyPlainText",
    "RequestBodyGraphQL",
    "RequestBodyGraphQlQuery",
];
