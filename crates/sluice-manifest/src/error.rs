use crate::{Location, ManifestPath};
use std::fmt;

/// What kind of problem a [`ManifestError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestErrorKind {
    /// The manifest file could not be read.
    Io,
    /// The text is not valid YAML.
    Yaml,
    /// A reference points at nothing.
    DanglingReference,
    /// References point at each other in a loop.
    ReferenceCycle,
    /// A `type` names no known component.
    UnknownType,
    /// A required field is missing.
    MissingField,
    /// A field has a value of the wrong shape.
    InvalidValue,
}

/// A problem in a manifest, naming where it is and, when one fits, what was probably meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// Where in the manifest (`streams[2].retriever.paginator`).
    pub path: ManifestPath,
    /// What kind of problem it is.
    pub kind: ManifestErrorKind,
    /// What is wrong, in words.
    pub message: String,
    /// A likely fix, such as the correct spelling of a type or field.
    pub suggestion: Option<String>,
    /// Where in the text, when the error knows it without a path (a YAML syntax error);
    /// [`crate::ManifestSource::locate_error`] finds the others.
    pub location: Option<Location>,
}

impl ManifestError {
    /// A new error without a suggestion.
    pub fn new(path: ManifestPath, kind: ManifestErrorKind, message: impl Into<String>) -> Self {
        Self {
            path,
            kind,
            message: message.into(),
            suggestion: None,
            location: None,
        }
    }

    /// Adds a suggestion ("did you mean `DpathExtractor`?").
    pub fn with_suggestion(mut self, suggestion: impl Into<String>) -> Self {
        self.suggestion = Some(suggestion.into());
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_root() {
            write!(f, "manifest: {}", self.message)?;
        } else {
            write!(f, "manifest at {}: {}", self.path, self.message)?;
        }
        if let Some(s) = &self.suggestion {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}
