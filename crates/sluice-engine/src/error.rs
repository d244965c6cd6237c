use sluice_manifest::{ManifestPath, ManifestSource};
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
    /// The manifest component at fault, when the error is about one; see
    /// [`EngineError::manifest_path`].
    pub path: Option<ManifestPath>,
}

impl EngineError {
    /// An error with the given failure type and user message.
    pub fn new(failure_type: FailureType, message: impl Into<String>) -> Self {
        Self {
            failure_type,
            message: message.into(),
            internal_message: None,
            path: None,
        }
    }

    /// A problem with the manifest component at `path`: a config error whose message starts
    /// `manifest at <path>: `.
    pub fn in_manifest(path: &ManifestPath, message: impl fmt::Display) -> Self {
        Self {
            path: Some(path.clone()),
            ..Self::config(format!("manifest at {path}: {message}"))
        }
    }

    /// The manifest component the error is about: the one it was made with, else the path its
    /// message starts with (`manifest at <path>: `, or `<path>: ` as the component crates
    /// write their build errors), when that path lies under a top-level key of `manifest`.
    pub fn manifest_path(&self, manifest: &serde_json::Value) -> Option<ManifestPath> {
        self.manifest_path_where(|key| manifest.get(key).is_some())
    }

    /// The error with the file, line and column of the manifest component it is about put
    /// first (`manifest.yaml:42:7: streams[2].retriever: ...`, the `manifest at ` of the message
    /// dropped), when it is about one; `is_top_key` tells the manifest's top-level keys. The
    /// located error keeps no [`EngineError::path`], so locating it again changes nothing.
    pub fn locate_in(self, source: &ManifestSource, is_top_key: impl Fn(&str) -> bool) -> Self {
        let Some(path) = self.manifest_path_where(is_top_key) else {
            return self;
        };
        let message = self
            .message
            .strip_prefix("manifest at ")
            .unwrap_or(&self.message);
        Self {
            message: format!("{}: {message}", source.position_text(&path)),
            path: None,
            ..self
        }
    }

    /// [`EngineError::manifest_path`] for a manifest whose top-level keys `is_top_key` knows.
    pub fn manifest_path_where(&self, is_top_key: impl Fn(&str) -> bool) -> Option<ManifestPath> {
        if self.path.is_some() {
            return self.path.clone();
        }
        let text = self
            .message
            .strip_prefix("manifest at ")
            .unwrap_or(&self.message);
        let (head, _) = text.split_once(": ")?;
        let well_formed = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_$.[]".contains(c));
        let path = ManifestPath::parse(head);
        let known = path.top_key().is_some_and(is_top_key);
        (well_formed && known).then_some(path)
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

/// Puts the manifest file's line and column first in errors about a manifest component (see
/// [`EngineError::locate_in`]); does nothing for a manifest that is no file. Keeps only the
/// manifest's top-level keys, so it outlives the manifest.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    source: Option<std::sync::Arc<ManifestSource>>,
    top_keys: Vec<String>,
}

impl Locator {
    /// A locator for the manifest whose resolved tree is `manifest` and whose file is `source`.
    pub fn new(
        source: Option<&std::sync::Arc<ManifestSource>>,
        manifest: &serde_json::Value,
    ) -> Self {
        Self {
            source: source.cloned(),
            top_keys: manifest
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// The error, located when it is about a component of the manifest file.
    pub fn locate(&self, error: EngineError) -> EngineError {
        match &self.source {
            Some(source) => error.locate_in(source, |key| self.top_keys.iter().any(|k| k == key)),
            None => error,
        }
    }
}

impl From<sluice_manifest::ManifestError> for EngineError {
    fn from(error: sluice_manifest::ManifestError) -> Self {
        Self {
            path: (!error.path.is_root()).then(|| error.path.clone()),
            ..EngineError::config(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_component_an_error_is_about() {
        let manifest = json!({"streams": [], "spec": {}});
        let path = ManifestPath::parse("streams[1].retriever");
        let made = EngineError::in_manifest(&path, "bad");
        assert_eq!(made.message, "manifest at streams[1].retriever: bad");
        assert_eq!(made.manifest_path(&json!({})), Some(path.clone()));
        let written = EngineError::config("streams[1].retriever: cannot build: x");
        assert_eq!(written.manifest_path(&manifest), Some(path));
        let spec = EngineError::config("manifest at spec.x: bad");
        assert_eq!(
            spec.manifest_path(&manifest),
            Some(ManifestPath::parse("spec.x"))
        );
        let source = ManifestSource::new("m.yaml", "streams:\n  - a: 1\n  - retriever: {}\n");
        let located = made.locate_in(&source, |key| key == "streams");
        assert_eq!(located.message, "m.yaml:3:5: streams[1].retriever: bad");
        assert_eq!(located.clone().locate_in(&source, |_| true), located);
        for unrelated in [
            "the state of stream 'users': bad",
            "HTTP 500: oops",
            "checks: no such key",
        ] {
            assert_eq!(
                EngineError::config(unrelated).manifest_path(&manifest),
                None
            );
        }
    }
}
