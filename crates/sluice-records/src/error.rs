//! Errors of building record components from the manifest and of selecting records at run time.

use sluice_interp::InterpError;
use sluice_manifest::ManifestPath;

/// A record component of the manifest cannot be built. Names the component's place in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BuildError {
    /// Where in the manifest (`streams[0].retriever.record_selector.extractor`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl BuildError {
    pub(crate) fn new(path: &ManifestPath, message: impl std::fmt::Display) -> Self {
        BuildError {
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}

/// Selecting records from a response failed. The reference fails the stream with a system error in
/// each of these cases.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    /// The response body cannot be decoded by the stream's decoder.
    #[error("{0}")]
    Decode(String),
    /// A template of a filter or transformation failed to evaluate.
    #[error("{component}: {source}")]
    Template {
        /// The component whose template failed (`RecordFilter`, `AddFields`...).
        component: &'static str,
        /// The template error, which names the template.
        #[source]
        source: InterpError,
    },
    /// A record is not an object where the reference needs one (it copies each record into a
    /// dict before normalising it against a non-empty schema); the message is Python's.
    #[error("An unexpected error occurred: {0}")]
    NotAnObject(String),
    /// A path of an extractor or transformation cannot be applied to a record.
    #[error("{component}: {message}")]
    Path {
        /// The component whose path failed.
        component: &'static str,
        /// What went wrong, naming the path.
        message: String,
    },
}

impl SelectError {
    pub(crate) fn template(component: &'static str) -> impl FnOnce(InterpError) -> SelectError {
        move |source| SelectError::Template { component, source }
    }
}
