//! Classifying responses and connection failures: succeed, retry, ignore or fail, and with
//! which failure type. Without response filters this is the reference's default mapping.

use crate::{HttpResponse, TransportError};
use sluice_protocol::FailureType;
use std::fmt;
use std::time::Duration;

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Success,
    Fail,
    Retry,
    Ignore,
    RateLimited,
}

/// The decision about one response or failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub action: Action,
    pub failure_type: FailureType,
    pub message: String,
}

impl Resolution {
    fn new(action: Action, failure_type: FailureType, message: impl Into<String>) -> Self {
        Self { action, failure_type, message: message.into() }
    }

    /// The resolution once retries have run out: the same failure, said so.
    pub fn exhausted(self, retries: u32) -> Self {
        Self {
            action: Action::Fail,
            message: format!("{} (gave up after {retries} retries)", self.message),
            ..self
        }
    }
}

/// A request that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub failure_type: FailureType,
    /// For the user.
    pub message: String,
    /// The request and response, secrets masked.
    pub internal_message: String,
}

impl HttpError {
    /// A request that could not even be built from the manifest and config.
    pub fn config(message: impl Into<String>) -> Self {
        let message = message.into();
        Self { failure_type: FailureType::ConfigError, internal_message: message.clone(), message }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// How failed requests are classified and retried.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorHandler {
    pub max_retries: u32,
    /// Exponential backoff: `factor * 2^attempt` seconds.
    pub backoff_factor: f64,
}

impl Default for ErrorHandler {
    /// The reference's defaults: 5 retries, exponential backoff with factor 5.
    fn default() -> Self {
        Self { max_retries: 5, backoff_factor: 5.0 }
    }
}

impl ErrorHandler {
    /// Classifies what a request got.
    pub fn resolve(&self, outcome: &Result<HttpResponse, TransportError>) -> Resolution {
        match outcome {
            Ok(response) if response.is_success() => {
                Resolution::new(Action::Success, FailureType::SystemError, "")
            }
            Ok(response) => default_for_status(response.status),
            Err(TransportError::InvalidRequest { reason, .. }) => Resolution::new(
                Action::Fail,
                FailureType::ConfigError,
                format!("Invalid request: {reason}"),
            ),
            Err(TransportError::NotRecorded(text)) => {
                Resolution::new(Action::Fail, FailureType::SystemError, text.clone())
            }
            Err(error) => Resolution::new(
                Action::Retry,
                FailureType::TransientError,
                format!("An exception occurred when making the request: {error}"),
            ),
        }
    }

    /// How long to wait before retry number `attempt` (from 0).
    pub fn backoff(&self, attempt: u32, response: Option<&HttpResponse>) -> Duration {
        if let Some(seconds) = response.and_then(retry_after_seconds) {
            return Duration::from_secs_f64(seconds);
        }
        Duration::from_secs_f64(self.backoff_factor * 2f64.powi(attempt.min(20) as i32))
    }
}

fn retry_after_seconds(response: &HttpResponse) -> Option<f64> {
    let value = response.header("Retry-After")?.trim().parse::<f64>().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// The reference's mapping of status codes, for responses no filter matched.
fn default_for_status(status: u16) -> Resolution {
    use Action::*;
    use FailureType::*;
    let (action, failure_type, text) = match status {
        400 => (Fail, SystemError, "Bad request. Please check your request parameters."),
        401 => (Fail, ConfigError, "Unauthorized. Please ensure you are authenticated correctly."),
        403 => (Fail, ConfigError, "Forbidden. You don't have permission to access this resource."),
        404 => (Fail, SystemError, "Not found. The requested resource was not found on the server."),
        405 => (Fail, SystemError, "Method not allowed. Please check your request method."),
        408 => (Retry, TransientError, "Request timeout."),
        429 => (RateLimited, TransientError, "Too many requests."),
        500 => (Retry, TransientError, "Internal server error."),
        502 => (Retry, TransientError, "Bad gateway."),
        503 => (Retry, TransientError, "Service unavailable."),
        504 => (Retry, TransientError, "Gateway timeout."),
        _ => (Retry, SystemError, "Unexpected response."),
    };
    Resolution::new(action, failure_type, format!("HTTP Status Code: {status}. Error: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn response(status: u16) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse { status, headers: vec![], body: Bytes::new() })
    }

    #[test]
    fn default_mapping_matches_the_reference() {
        let h = ErrorHandler::default();
        assert_eq!(h.resolve(&response(200)).action, Action::Success);
        let r = h.resolve(&response(401));
        assert_eq!((r.action, r.failure_type), (Action::Fail, FailureType::ConfigError));
        let r = h.resolve(&response(503));
        assert_eq!((r.action, r.failure_type), (Action::Retry, FailureType::TransientError));
        assert_eq!(h.resolve(&response(429)).action, Action::RateLimited);
        let r = h.resolve(&response(418));
        assert_eq!((r.action, r.failure_type), (Action::Retry, FailureType::SystemError));
    }

    #[test]
    fn backoff_is_exponential_unless_the_server_says() {
        let h = ErrorHandler::default();
        assert_eq!(h.backoff(0, None), Duration::from_secs(5));
        assert_eq!(h.backoff(2, None), Duration::from_secs(20));
        let r = HttpResponse { status: 429, headers: vec![("Retry-After".into(), "2".into())], body: Bytes::new() };
        assert_eq!(h.backoff(3, Some(&r)), Duration::from_secs(2));
    }
}
