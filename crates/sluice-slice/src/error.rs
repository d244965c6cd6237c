//! Errors of building partition routers and cursors, and of reading state.

/// What went wrong, with the manifest path or the stream it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SliceError {
    /// The component cannot be built (the reference rejects it when it builds the stream).
    #[error("{path}: {message}")]
    Invalid {
        /// Where the component is (`streams[2].incremental_sync`).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The input state does not fit the stream.
    #[error("the state of stream '{stream}' {message}")]
    State {
        /// The stream whose state it is.
        stream: String,
        /// What is wrong with it.
        message: String,
    },
    /// A value computed while reading (a window boundary, an end date) cannot be used.
    #[error("{0}")]
    Runtime(String),
}

impl SliceError {
    pub(crate) fn invalid(path: &impl std::fmt::Display, message: impl Into<String>) -> Self {
        SliceError::Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Whether the user's input (manifest, config or state) is at fault, rather than the API.
    pub fn is_config_error(&self) -> bool {
        !matches!(self, SliceError::Runtime(_))
    }
}
