//! Which components sluice can run today, and a report of those it cannot.

use sluice_manifest::{ComponentUse, Manifest, ManifestPath};
use std::fmt;

/// Component types the engine itself runs; the crates it builds on list theirs.
const ENGINE_COMPONENTS: &[&str] = &[
    "DeclarativeSource",
    "DeclarativeStream",
    "StateDelegatingStream",
    "ConcurrencyLevel",
    "SimpleRetriever",
    "AsyncRetriever",
    "AsyncJobStatusMap",
    "ResponseToFileExtractor",
    "QueryProperties",
    "PropertiesFromEndpoint",
    "PropertyChunking",
    "GroupByKeyMergeStrategy",
    "JsonSchemaPropertySelector",
    "InlineSchemaLoader",
    "JsonFileSchemaLoader",
    "DynamicSchemaLoader",
    "SchemaTypeIdentifier",
    "TypesMap",
    "ComplexFieldType",
    "CheckStream",
    "Spec",
    "DynamicDeclarativeStream",
    "HttpComponentsResolver",
    "ConfigComponentsResolver",
    "ParametrizedComponentsResolver",
    "ComponentMappingDefinition",
    "StreamConfig",
    "StreamParametersDefinition",
    "CheckDynamicStream",
    "DynamicStreamCheckConfig",
    "ConfigNormalizationRules",
    "ConfigMigration",
    "ConfigAddFields",
    "ConfigRemapField",
    "ConfigRemoveFields",
    "DpathValidator",
    "PredicateValidator",
    "ValidateAdheresToSchema",
    "FileUploader",
    "ConditionalStreams",
    "BlockSimultaneousSyncsAction",
    "PageSizeReduction",
    "RequestWindowSplitting",
];

/// Whether sluice can run a component of this type.
pub(crate) fn is_supported(component_type: &str) -> bool {
    [
        ENGINE_COMPONENTS,
        sluice_http::SUPPORTED_COMPONENTS,
        sluice_paginate::SUPPORTED_COMPONENTS,
        sluice_records::SUPPORTED_COMPONENTS,
        sluice_slice::SUPPORTED_COMPONENTS,
    ]
    .iter()
    .any(|list| list.contains(&component_type))
}

/// A component of a manifest that sluice cannot run (refused by [`crate::Source::new`]).
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

/// Every component of the manifest that sluice cannot run, in document order. A `class_name`
/// makes a component custom only when it has no `type` (propagation then gives it a `Custom*`
/// type): on a component with a built-in `type`, the reference ignores it as an unknown field.
pub fn unsupported_components(manifest: &Manifest) -> Vec<Unsupported> {
    sluice_manifest::components(&manifest.resolved)
        .into_iter()
        .filter(|c| !is_supported(&c.component_type))
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

/// Refuses a manifest that needs a component sluice cannot run outside the streams (where a
/// stream could be kept aside), naming every such component.
pub(crate) fn refuse_outside_streams(
    unsupported: &[Unsupported],
) -> Result<(), crate::EngineError> {
    let global: Vec<String> = unsupported
        .iter()
        .filter(|u| {
            !matches!(
                u.path.top_key(),
                Some("streams" | "definitions" | "dynamic_streams" | "check")
            )
        })
        .map(ToString::to_string)
        .collect();
    if global.is_empty() {
        return Ok(());
    }
    Err(crate::EngineError::config(format!(
        "sluice cannot run this manifest: {}",
        global.join("; ")
    )))
}

/// One thing that keeps a manifest from running, as `sluice validate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The component at fault, when the problem names one.
    pub path: Option<ManifestPath>,
    /// What is wrong, naming the component.
    pub message: String,
}

impl Problem {
    fn of_error(error: crate::EngineError, manifest: &Manifest) -> Self {
        Self {
            path: error.manifest_path(&manifest.resolved),
            message: error.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Everything that keeps a manifest from running, as `sluice validate` reports it: each
/// component sluice cannot run, or else the error building its streams gives with a sample
/// config made from the spec (a malformed duration, template or path that fails whatever the
/// user's config says). For `dynamic_streams`, each resolver is built; the streams of a resolver
/// that needs no API (config or parameters) are made from the sample config and built too.
pub fn manifest_problems(manifest: &Manifest) -> Vec<Problem> {
    let mut problems: Vec<Problem> = unsupported_components(manifest)
        .iter()
        .map(|u| Problem {
            path: Some(u.path.clone()),
            message: u.to_string(),
        })
        .collect();
    let config = std::sync::Arc::new(crate::sample_config(manifest));
    // Errors that only repeat the components listed above are left out.
    let is_new = |error: &crate::EngineError| !error.message.starts_with("sluice cannot run this");
    let push = |problems: &mut Vec<Problem>, error: crate::EngineError| {
        if is_new(&error) {
            problems.push(Problem::of_error(error, manifest));
        }
    };
    if let Err(error) = crate::ConfigRules::from_spec(manifest.model.spec.as_ref()) {
        push(&mut problems, error);
    }
    let factory =
        match crate::build::Factory::new(manifest, &config, &crate::SourceOptions::default()) {
            Ok(factory) => factory,
            Err(error) => {
                push(&mut problems, error);
                return problems;
            }
        };
    match factory.streams_where(manifest, true) {
        Ok(streams) => {
            for slot in streams {
                if let crate::build::StreamSlot::Unrunnable(u) = slot {
                    push(&mut problems, u.error);
                }
            }
        }
        Err(error) => push(&mut problems, error),
    }
    for error in crate::dynamic::problems(manifest, &factory) {
        push(&mut problems, error);
    }
    problems
}
