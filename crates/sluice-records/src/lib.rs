//! Records out of responses, as the reference's record selector makes them: decoders (JSON,
//! JSON lines, CSV, XML, gzip, zip, line iteration), extractors (`DpathExtractor` with its
//! `RecordExpander`, `CombinedExtractor`), the `RecordFilter`, the stream's transformations and
//! schema normalisation.
//!
//! Paths follow the `dpath` library the reference uses: each segment is a glob (`*`, `?`,
//! `[abc]`) over object keys or an index into arrays (negative indices count from the end).
//!
//! Records are moved out of the decoded body, never copied; templates are compiled once and
//! constant ones are never rendered; a transformation touches only the record it changes.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::{json, Map};
//! use sluice_manifest::{ManifestPath, model};
//! use sluice_manifest::model::FromNode;
//! use sluice_records::{RecordSelector, SelectVariables};
//!
//! let at = ManifestPath::root().key("streams").index(0);
//! let selector = model::RecordSelector::from_node(&json!({
//!     "type": "RecordSelector",
//!     "extractor": {"type": "DpathExtractor", "field_path": ["data", "users"]},
//!     "record_filter": {"type": "RecordFilter", "condition": "{{ record.active }}"}
//! }), &at)?;
//! let transformations = vec![model::RecordTransformation::from_node(&json!(
//!     {"type": "AddFields", "fields": [{"type": "AddedFieldDefinition", "path": ["region"], "value": "{{ config.region }}"}]}
//! ), &at)?];
//! let config = Arc::new(json!({"region": "eu"}));
//! let selector = RecordSelector::from_model(
//!     &selector, None, &transformations, &Map::new(), &config, &at,
//! )?;
//!
//! let decoded = selector.decode(br#"{"data": {"users": [{"id": 1, "active": true}, {"id": 2, "active": false}]}}"#)?;
//! // A paginator would read `decoded.pagination_body()` here, before the records are moved out.
//! let empty = json!({});
//! let vars = SelectVariables { stream_slice: &empty, next_page_token: None, stream_state: &empty, truncated: None };
//! let mut records = Vec::new();
//! let outcome = selector.select(decoded, &vars, &mut records)?;
//! assert_eq!((outcome.extracted, outcome.emitted), (2, 1));
//! assert_eq!(records, vec![json!({"id": 1, "active": true, "region": "eu"})]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod as_sent;
mod decode;
mod dpath;
mod error;
mod expand;
mod extract;
mod filter;
mod json;
mod normalize;
pub mod paths;
mod raw;
mod selector;
mod transform;
mod xml;

pub use as_sent::{Beside, PageAsSent, RecordAsSent};
pub use decode::{
    CsvOptions, Decoded, Decoder, Parser, TextEncoding, decode_json_bodies, decode_xml_body,
    set_max_inflated_bytes,
};
pub use error::{BuildError, SelectError};
pub use expand::{RecordExpander, TruncatedLists};
pub use extract::{CombinedExtractor, DpathExtractor, Extractor};
pub use filter::{FilterVariables, RecordFilter};
pub use normalize::SchemaNormalizer;
pub use raw::AsSentOutcome;
pub use selector::{RecordEditor, RecordSelector, SelectOutcome, SelectVariables};
pub use transform::{
    AddFields, DpathFlattenFields, KeysReplace, RemoveFields, TransformVariables, Transformation,
};

/// The manifest component types this crate implements (for tools that check what a manifest
/// needs, such as `sluice validate`).
pub const SUPPORTED_COMPONENTS: &[&str] = &[
    "RecordSelector",
    "DpathExtractor",
    "CombinedExtractor",
    "RecordExpander",
    "ParentFieldPath",
    "RecordFilter",
    "AddFields",
    "AddedFieldDefinition",
    "RemoveFields",
    "KeysToLower",
    "KeysToSnakeCase",
    "KeysReplace",
    "FlattenFields",
    "DpathFlattenFields",
    "KeyTransformation",
    "JsonDecoder",
    "JsonlDecoder",
    "JsonItemsDecoder",
    "CsvDecoder",
    "XmlDecoder",
    "GzipDecoder",
    "IterableDecoder",
    "ZipfileDecoder",
];
