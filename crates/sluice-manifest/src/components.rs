//! The declarative components a resolved manifest uses, and where.
//!
//! A tool that checks whether it can run a manifest (`sluice validate`) lists them to name each
//! component it does not support, with its path and stream.

use crate::ManifestPath;
use serde_json::Value;

/// One component of a resolved manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentUse {
    /// The component's `type` (`DpathExtractor`, `CustomRecordExtractor`), or its `class_name`
    /// when a custom component has no type.
    pub component_type: String,
    /// The Python class of a custom component (`source_x.components.MyExtractor`).
    pub class_name: Option<String>,
    /// Where the component is (`streams[2].retriever.record_selector.extractor`).
    pub path: ManifestPath,
    /// The name of the stream the component belongs to, when it lies under `streams[i]`.
    pub stream: Option<String>,
}

/// Top-level sections that hold no component that runs: reusable `definitions` (whatever is
/// used is copied where it is used), JSON `schemas` and free-form `metadata`.
const SKIPPED_TOP_LEVEL: &[&str] = &["definitions", "schemas", "metadata"];

/// Fields whose values are data, not components, whatever `type` keys they contain: JSON
/// schemas and request payloads.
const DATA_FIELDS: &[(&str, &str)] = &[
    ("InlineSchemaLoader", "schema"),
    ("Spec", "connection_specification"),
    ("Spec", "advanced_auth"),
    ("HttpRequester", "request_body_json"),
    ("HttpRequester", "request_body_data"),
    ("RequestBodyJsonObject", "value"),
    ("RequestBodyGraphQL", "value"),
    ("RequestBodyUrlEncodedForm", "value"),
    ("RequestBodyPlainText", "value"),
    ("OAuthAuthenticator", "refresh_request_body"),
    ("OAuthAuthenticator", "refresh_request_headers"),
    ("SessionTokenAuthenticator", "request_body"),
    ("ValidateAdheresToSchema", "base_schema"),
    ("PredicateValidator", "value"),
    ("ConfigRemapField", "map"),
];

/// Where a component is written that the reference never reads, so it does nothing: a
/// `paginator` under a `record_selector` (the real Fullstory manifest has one) instead of under
/// the retriever, or a `FileUploader`'s `file_extractor`. Each is `(path, what happens)`, for a `sluice validate` warning.
pub fn ignored_components(resolved: &Value) -> Vec<(ManifestPath, String)> {
    components(resolved)
        .into_iter()
        .filter_map(|c| {
            let path = c.path.to_string();
            let message = if path.ends_with("record_selector.paginator") {
                format!(
                    "a {} under a record_selector is ignored, as the reference ignores it: the stream is read without pagination (a paginator belongs to the retriever)",
                    c.component_type
                )
            } else if path.ends_with("file_uploader.file_extractor") {
                format!(
                    "the file_extractor ({}) of a FileUploader is ignored, as the reference ignores it: the whole response body is the file",
                    c.component_type
                )
            } else {
                return None;
            };
            Some((c.path, message))
        })
        .collect()
}

/// Lists every declarative component of a resolved manifest in document order, the manifest
/// itself (`DeclarativeSource`) first.
///
/// ```
/// use serde_json::json;
/// let resolved = json!({"type": "DeclarativeSource", "streams": [{"type": "DeclarativeStream",
///     "name": "users", "retriever": {"type": "SimpleRetriever", "record_selector": {
///     "type": "RecordSelector", "extractor": {"type": "CustomRecordExtractor",
///     "class_name": "source_x.components.Extractor"}}}}]});
/// let uses = sluice_manifest::components(&resolved);
/// let custom = uses.iter().find(|c| c.class_name.is_some()).unwrap();
/// assert_eq!(custom.component_type, "CustomRecordExtractor");
/// assert_eq!(custom.path.to_string(), "streams[0].retriever.record_selector.extractor");
/// assert_eq!(custom.stream.as_deref(), Some("users"));
/// ```
pub fn components(resolved: &Value) -> Vec<ComponentUse> {
    let mut found = Vec::new();
    let stream_names: Vec<Option<String>> = resolved
        .get("streams")
        .and_then(Value::as_array)
        .map(|streams| {
            streams
                .iter()
                .map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut walker = Walker {
        stream_names: &stream_names,
        found: &mut found,
    };
    walker.visit(resolved, &ManifestPath::root(), 0);
    found
}

struct Walker<'a> {
    stream_names: &'a [Option<String>],
    found: &'a mut Vec<ComponentUse>,
}

impl Walker<'_> {
    fn visit(&mut self, node: &Value, at: &ManifestPath, depth: usize) {
        // Resolution caps nesting well below this; the guard keeps hand-made trees from
        // exhausting the stack.
        if depth > 512 {
            return;
        }
        match node {
            Value::Object(map) => {
                let component_type = component_type(node);
                if let Some(component_type) = &component_type {
                    self.found.push(ComponentUse {
                        component_type: component_type.clone(),
                        class_name: map
                            .get("class_name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        path: at.clone(),
                        stream: at
                            .stream_index()
                            .and_then(|i| self.stream_names.get(i).cloned().flatten()),
                    });
                } else if is_json_schema(node) {
                    return;
                }
                for (key, child) in map {
                    if key == "$parameters"
                        || (at.is_root() && SKIPPED_TOP_LEVEL.contains(&key.as_str()))
                    {
                        continue;
                    }
                    let is_data = component_type.as_deref().is_some_and(|t| {
                        DATA_FIELDS
                            .iter()
                            .any(|(owner, field)| *owner == t && field == key)
                    });
                    if !is_data {
                        self.visit(child, &at.key(key), depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.visit(item, &at.index(i), depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// A component's type: a `type` naming a component (they start with a capital letter, unlike
/// JSON-schema types such as `object` or `string`), else the `class_name` of a custom component.
fn component_type(node: &Value) -> Option<String> {
    match node.get("type") {
        Some(Value::String(t)) if t.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Some(t.clone())
        }
        Some(_) => None,
        None => node
            .get("class_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn is_json_schema(node: &Value) -> bool {
    node.get("type").is_some_and(|t| {
        !t.is_string()
            || t.as_str()
                .is_some_and(|s| !s.starts_with(|c: char| c.is_ascii_uppercase()))
    }) || node.get("properties").is_some_and(Value::is_object)
        || node.get("$schema").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_paginator_under_a_record_selector_is_named() {
        let resolved = json!({"type": "DeclarativeSource", "streams": [{"type": "DeclarativeStream", "name": "s",
            "retriever": {"type": "SimpleRetriever",
                "record_selector": {"type": "RecordSelector", "paginator": {"type": "DefaultPaginator"}},
                "paginator": {"type": "NoPagination"}}}]});
        let ignored = ignored_components(&resolved);
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert_eq!(
            ignored[0].0.to_string(),
            "streams[0].retriever.record_selector.paginator"
        );
    }

    #[test]
    fn a_file_uploaders_file_extractor_is_named() {
        let resolved = json!({"type": "DeclarativeSource", "streams": [{"type": "DeclarativeStream", "name": "s",
            "file_uploader": {"type": "FileUploader",
                "download_target_extractor": {"type": "DpathExtractor", "field_path": ["url"]},
                "file_extractor": {"type": "DpathExtractor", "field_path": ["content"]}}}]});
        let ignored = ignored_components(&resolved);
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert_eq!(
            ignored[0].0.to_string(),
            "streams[0].file_uploader.file_extractor"
        );
        assert!(ignored[0].1.contains("the whole response body is the file"));
    }
}
