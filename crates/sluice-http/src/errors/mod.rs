//! Classifying responses and connection failures (succeed, retry, ignore or fail, and with which
//! failure type), as the reference's `DefaultErrorHandler`, `HttpResponseFilter` and
//! `CompositeErrorHandler` do. Without response filters this is the reference's default mapping
//! of status codes.

pub(crate) mod filter;
mod handler;

pub use filter::ResponseFilter;
pub use handler::{CompositeErrorHandler, DefaultErrorHandler, ErrorHandler};

use crate::{HttpResponse, TransportError};
use sluice_protocol::FailureType;
use std::fmt;

/// What to do with a response (the reference's `ResponseAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Success,
    Fail,
    Retry,
    Ignore,
    RateLimited,
    /// Retry; an authenticator that can refresh its token does so first.
    RefreshTokenThenRetry,
    /// Restart the pagination of the slice (the retriever handles it).
    ResetPagination,
    /// Request the same page with a smaller page size (the retriever handles it).
    ReducePageSize,
    /// Split the slice's window and read the halves (the slicer handles it).
    SplitRequestWindow,
}

impl Action {
    /// The reference's enum spelling, `ResponseAction.RETRY`, as its messages print it.
    pub fn python_name(self) -> &'static str {
        match self {
            Action::Success => "ResponseAction.SUCCESS",
            Action::Fail => "ResponseAction.FAIL",
            Action::Retry => "ResponseAction.RETRY",
            Action::Ignore => "ResponseAction.IGNORE",
            Action::RateLimited => "ResponseAction.RATE_LIMITED",
            Action::RefreshTokenThenRetry => "ResponseAction.REFRESH_TOKEN_THEN_RETRY",
            Action::ResetPagination => "ResponseAction.RESET_PAGINATION",
            Action::ReducePageSize => "ResponseAction.REDUCE_PAGE_SIZE",
            Action::SplitRequestWindow => "ResponseAction.SPLIT_REQUEST_WINDOW",
        }
    }

    /// Whether the request is sent again after this action.
    pub fn retries(self) -> bool {
        matches!(
            self,
            Action::Retry | Action::RateLimited | Action::RefreshTokenThenRetry
        )
    }
}

/// What a request got: a response, or no response at all.
pub type Outcome<'a> = Result<&'a HttpResponse, &'a TransportError>;

/// The decision about one response or failure (the reference's `ErrorResolution`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub action: Action,
    pub failure_type: FailureType,
    /// Empty when the handler gave no message.
    pub message: String,
}

impl Resolution {
    pub(crate) fn new(
        action: Action,
        failure_type: FailureType,
        message: impl Into<String>,
    ) -> Self {
        Self {
            action,
            failure_type,
            message: message.into(),
        }
    }

    pub(crate) fn success() -> Self {
        Self::new(Action::Success, FailureType::SystemError, "")
    }
}

/// A request that failed for good, or a signal the retriever must act on
/// (`action` is then [`Action::ResetPagination`], [`Action::ReducePageSize`] or
/// [`Action::SplitRequestWindow`]; for a failure it is [`Action::Fail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub failure_type: FailureType,
    /// For the user (the TRACE error's `message`), secrets masked.
    pub message: String,
    /// The request and response (the TRACE error's `internal_message`), secrets masked.
    pub internal_message: String,
    pub action: Action,
}

impl HttpError {
    /// A failure of the given type, with the same text for the user and for the logs.
    pub fn new(failure_type: FailureType, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            failure_type,
            internal_message: message.clone(),
            message,
            action: Action::Fail,
        }
    }

    /// A request that could not even be built from the manifest and config.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(FailureType::ConfigError, message)
    }

    /// A failure with distinct user and internal messages.
    pub fn with_internal(
        failure_type: FailureType,
        message: impl Into<String>,
        internal_message: impl Into<String>,
    ) -> Self {
        Self {
            failure_type,
            message: message.into(),
            internal_message: internal_message.into(),
            action: Action::Fail,
        }
    }

    pub(crate) fn masked(self, mask: impl Fn(&str) -> String) -> Self {
        Self {
            message: mask(&self.message),
            internal_message: mask(&self.internal_message),
            ..self
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// A component of the manifest that cannot be built; the message names its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest at {path}: {message}")]
pub struct BuildError {
    /// Where in the manifest (`streams[0].retriever.requester.error_handler`).
    pub path: String,
    pub message: String,
}

impl BuildError {
    pub(crate) fn at(path: &sluice_manifest::ManifestPath, message: impl fmt::Display) -> Self {
        Self {
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}

/// The reference's mapping of status codes (`DEFAULT_ERROR_MAPPING`).
pub(crate) fn default_for_status(status: u16) -> Option<Resolution> {
    use Action::*;
    use FailureType::*;
    let (action, failure_type, text) = match status {
        400 => (
            Fail,
            SystemError,
            "Bad request. Please check your request parameters.",
        ),
        401 => (
            Fail,
            ConfigError,
            "Unauthorized. Please ensure you are authenticated correctly.",
        ),
        403 => (
            Fail,
            ConfigError,
            "Forbidden. You don't have permission to access this resource.",
        ),
        404 => (
            Fail,
            SystemError,
            "Not found. The requested resource was not found on the server.",
        ),
        405 => (
            Fail,
            SystemError,
            "Method not allowed. Please check your request method.",
        ),
        408 => (Retry, TransientError, "Request timeout."),
        429 => (RateLimited, TransientError, "Too many requests."),
        500 => (Retry, TransientError, "Internal server error."),
        502 => (Retry, TransientError, "Bad gateway."),
        503 => (Retry, TransientError, "Service unavailable."),
        504 => (Retry, TransientError, "Gateway timeout."),
        _ => return None,
    };
    Some(Resolution::new(
        action,
        failure_type,
        format!("HTTP Status Code: {status}. Error: {text}"),
    ))
}

/// The reference's resolution when nothing else matched: retry as a system error.
pub(crate) fn fallback(outcome: Outcome<'_>, url: &str) -> Resolution {
    let message = match outcome {
        Err(error) => format!("{}: {error}", python_exception_name(error)),
        Ok(response) if response.status >= 400 => {
            let class = if response.status < 500 {
                "Client Error"
            } else {
                "Server Error"
            };
            let reason = http::StatusCode::from_u16(response.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            format!(
                "Response was not ok: `{} {class}: {reason} for url: {url}`. Response content is: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )
        }
        Ok(response) => format!("Unexpected response with HTTP status {}", response.status),
    };
    Resolution::new(Action::Retry, FailureType::SystemError, message)
}

/// The `requests` exception a transport failure corresponds to.
pub(crate) fn python_exception_name(error: &TransportError) -> &'static str {
    match error {
        TransportError::InvalidRequest { .. } => "InvalidURL",
        TransportError::Connection { .. } => "ConnectionError",
        TransportError::ConnectTimeout { .. } => "ConnectTimeout",
        TransportError::Timeout { .. }
        | TransportError::Stalled { .. }
        | TransportError::TookTooLong { .. } => "ReadTimeout",
        TransportError::Body { .. } => "ChunkedEncodingError",
        TransportError::TooManyRedirects { .. } => "TooManyRedirects",
        TransportError::NotRecorded(_) | TransportError::TooLarge { .. } => "RequestException",
    }
}

/// The reference's classification of a failure without a response, before any fallback.
pub(crate) fn default_for_transport_error(error: &TransportError) -> Option<Resolution> {
    match error {
        // A URL the client refuses to send is a manifest or config mistake, not worth retrying.
        TransportError::InvalidRequest { reason, .. } => Some(Resolution::new(
            Action::Fail,
            FailureType::ConfigError,
            format!("Invalid request: {reason}"),
        )),
        // sluice's own limits (the reference would wait forever): a transient failure, retried.
        TransportError::Stalled { .. } | TransportError::TookTooLong { .. } => {
            Some(Resolution::new(
                Action::Retry,
                FailureType::TransientError,
                error.to_string(),
            ))
        }
        // sluice's own limit on a body (the reference reads until memory runs out): the same
        // request would bring the same body, so it is not retried.
        TransportError::TooLarge { .. } => Some(Resolution::new(
            Action::Fail,
            FailureType::SystemError,
            error.to_string(),
        )),
        // Replay has nothing to answer with; retrying cannot help.
        TransportError::NotRecorded(text) => Some(Resolution::new(
            Action::Fail,
            FailureType::SystemError,
            text.clone(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mapping_matches_the_reference() {
        let r = default_for_status(401).unwrap();
        assert_eq!(
            (r.action, r.failure_type),
            (Action::Fail, FailureType::ConfigError)
        );
        let r = default_for_status(503).unwrap();
        assert_eq!(
            (r.action, r.failure_type),
            (Action::Retry, FailureType::TransientError)
        );
        assert_eq!(default_for_status(429).unwrap().action, Action::RateLimited);
        assert!(default_for_status(418).is_none());
    }

    #[test]
    fn fallback_names_the_status_like_requests() {
        let response = HttpResponse {
            status: 418,
            headers: vec![],
            body: "tea".into(),
        };
        let r = fallback(Ok(&response), "http://h/x");
        assert_eq!(
            (r.action, r.failure_type),
            (Action::Retry, FailureType::SystemError)
        );
        assert_eq!(
            r.message,
            "Response was not ok: `418 Client Error: I'm a teapot for url: http://h/x`. Response content is: tea"
        );
    }
}
