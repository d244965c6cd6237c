//! Airbyte low-code manifests: YAML to a resolved tree to a typed, validated model.
//!
//! Loading a manifest runs a fixed pipeline, each stage in its own module:
//!
//! 1. [`yaml`]: parse YAML into a JSON tree (`serde_json::Value`, key order kept).
//! 2. [`resolve`]: resolve references (`$ref`, bare `"#/a/b"` strings, 0.1.0-era `*ref(a.b)`).
//! 3. [`legacy`]: map 0.1.0-era field names and `$options` onto the modern manifest.
//! 4. [`propagate`]: give untyped components the default type of their field and propagate
//!    `$parameters` into nested components, filling missing same-named fields.
//! 5. [`model`]: deserialize the resolved tree into the typed model, with errors that name the
//!    path (`streams[2].retriever.paginator`).
//!
//! No stage keeps positions in the text; a [`ManifestSource`] finds the line and column of a
//! path when an error is shown.
//!
//! ```
//! let yaml = r#"
//! version: 6.0.0
//! type: DeclarativeSource
//! check: { type: CheckStream, stream_names: [users] }
//! streams:
//!   - type: DeclarativeStream
//!     name: users
//!     retriever:
//!       type: SimpleRetriever
//!       requester: { type: HttpRequester, url_base: "https://api.example.com", path: /users }
//!       record_selector:
//!         type: RecordSelector
//!         extractor: { type: DpathExtractor, field_path: [data] }
//! "#;
//! let manifest = sluice_manifest::load_str(yaml).unwrap();
//! assert_eq!(manifest.model.streams.as_ref().map(Vec::len), Some(1));
//! ```

mod components;
mod error;
pub mod legacy;
mod location;
pub mod model;
mod path;
pub mod propagate;
pub mod pyyaml;
pub mod resolve;
mod suggest;
pub mod yaml;

pub use components::{ComponentUse, components, ignored_components};
pub use error::{ManifestError, ManifestErrorKind};
pub use location::{Location, ManifestSource};
pub use path::ManifestPath;
pub use suggest::did_you_mean;

use serde_json::Value;
use std::path::Path;

/// A loaded manifest: the fully resolved tree and the typed model built from it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The resolved tree (references, parameters and default types applied), as JSON.
    pub resolved: Value,
    /// The typed model of the resolved tree.
    pub model: model::DeclarativeSource,
}

/// Loads a manifest from a YAML file.
pub fn load_file(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ManifestError::new(
            ManifestPath::root(),
            ManifestErrorKind::Io,
            format!("cannot read manifest {}: {e}", path.display()),
        )
    })?;
    load_str(&text)
}

/// Loads a manifest from YAML text.
pub fn load_str(yaml_text: &str) -> Result<Manifest, ManifestError> {
    let tree = yaml::parse(yaml_text)?;
    load_value(tree)
}

/// Loads a manifest from an already parsed JSON tree (for example the
/// `__injected_declarative_manifest` config key of the Airbyte platform).
pub fn load_value(tree: Value) -> Result<Manifest, ManifestError> {
    let resolved = resolve_value(tree)?;
    let model = model::DeclarativeSource::from_resolved(&resolved)?;
    Ok(Manifest { resolved, model })
}

/// The manifest's `spec` alone, resolved and typed without resolving the rest of the manifest
/// (so `spec` answers at once even for a very large manifest). `None` when it has no spec.
pub fn load_spec(tree: &Value) -> Result<Option<model::Spec>, ManifestError> {
    let Some(mut spec) = resolve::resolve_section(tree, "spec")? else {
        return Ok(None);
    };
    if let Value::Object(map) = &mut spec {
        // The one default type that applies here: `spec` is a Spec.
        map.entry("type")
            .or_insert_with(|| Value::String("Spec".to_owned()));
    }
    use model::FromNode;
    model::Spec::from_node(&spec, &ManifestPath::root().key("spec")).map(Some)
}

/// Runs every stage but the typed model: the tree the model is built from.
pub fn resolve_value(tree: Value) -> Result<Value, ManifestError> {
    let tree = resolve::resolve_references(tree)?;
    let tree = legacy::upgrade(tree)?;
    propagate::propagate(tree)
}
