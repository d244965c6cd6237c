//! Which components sluice can run today, and a report of those it cannot.

use sluice_manifest::{ComponentUse, Manifest, ManifestPath};
use std::fmt;

/// Component types sluice runs. Everything else in a manifest is reported by
/// [`unsupported_components`] and refused by [`crate::Source::new`].
const SUPPORTED: &[&str] = &[
    "DeclarativeSource",
    "DeclarativeStream",
    "SimpleRetriever",
    "HttpRequester",
    "RecordSelector",
    "DpathExtractor",
    "JsonDecoder",
    "NoPagination",
    "InlineSchemaLoader",
    "JsonFileSchemaLoader",
    "CheckStream",
    "Spec",
    "NoAuth",
    "ApiKeyAuthenticator",
    "BearerAuthenticator",
    "BasicHttpAuthenticator",
    "RequestOption",
];

/// A component of a manifest that sluice cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The component's type.
    pub component_type: String,
    /// The Python class of a custom component.
    pub class_name: Option<String>,
    /// Where it is.
    pub path: ManifestPath,
    /// The stream it belongs to.
    pub stream: Option<String>,
}

impl Unsupported {
    /// Custom Python components can never run in sluice; others may in a later version.
    pub fn is_custom_code(&self) -> bool {
        self.class_name.is_some() || self.component_type.starts_with("Custom")
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.component_type)?;
        if let Some(class) = &self.class_name {
            write!(f, " (class {class})")?;
        }
        write!(f, " at {}", self.path)?;
        if let Some(stream) = &self.stream {
            write!(f, " in stream '{stream}'")?;
        }
        if self.is_custom_code() {
            f.write_str(": a custom Python component, which sluice cannot run")
        } else {
            f.write_str(": not supported by sluice yet")
        }
    }
}

/// Every component of the manifest that sluice cannot run, in document order.
pub fn unsupported_components(manifest: &Manifest) -> Vec<Unsupported> {
    sluice_manifest::components(&manifest.resolved)
        .into_iter()
        .filter(|c| c.class_name.is_some() || !SUPPORTED.contains(&c.component_type.as_str()))
        .map(
            |ComponentUse {
                 component_type,
                 class_name,
                 path,
                 stream,
             }| Unsupported {
                component_type,
                class_name,
                path,
                stream,
            },
        )
        .collect()
}
