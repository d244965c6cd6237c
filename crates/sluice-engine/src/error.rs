use sluice_protocol::FailureType;
use std::fmt;

/// A failure of a sync, check or discover, classified as the platform expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// Who is to blame: the user's config, a passing outage, or sluice/the API.
    pub failure_type: FailureType,
    /// For the user.
    pub message: String,
    /// For the developer: the underlying error, e.g. the request and response.
    pub internal_message: Option<String>,
}

impl EngineError {
    /// An error with the given failure type and user message.
    pub fn new(failure_type: FailureType, message: impl Into<String>) -> Self {
        Self {
            failure_type,
            message: message.into(),
            internal_message: None,
        }
    }

    /// A problem with the user's config (or manifest): retrying will not help.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(FailureType::ConfigError, message)
    }

    /// A problem in sluice or the API.
    pub fn system(message: impl Into<String>) -> Self {
        Self::new(FailureType::SystemError, message)
    }

    /// A passing problem: retrying later may succeed.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(FailureType::TransientError, message)
    }

    /// Adds the developer-facing detail.
    pub fn with_internal(mut self, internal: impl Into<String>) -> Self {
        self.internal_message = Some(internal.into());
        self
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

impl From<sluice_manifest::ManifestError> for EngineError {
    fn from(error: sluice_manifest::ManifestError) -> Self {
        EngineError::config(error.to_string())
    }
}
