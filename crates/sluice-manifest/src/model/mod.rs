//! The typed manifest model: one type per component of the declarative component schema.
//!
//! The types are generated (`cargo xtask gen-model`) from the reference's
//! `declarative_component_schema.yaml` into [`generated`](self) and re-exported here, so the
//! model covers every component the schema defines. Conventions:
//!
//! - A component (`type: DpathExtractor`) is a struct named after its schema definition, with
//!   snake_case fields as in the schema; `$parameters` is the field `parameters`. Fields the schema
//!   does not require are `Option`s, and stay `None` when absent: the runtime applies the schema
//!   defaults, which the field docs list ("Default: ...").
//! - Where the schema allows several components (`anyOf`), the field's type is an enum with one
//!   variant per component, named after it and holding it boxed
//!   (`Retriever::SimpleRetriever(Box<SimpleRetriever>)`); the component's `type` picks the
//!   variant. Where it allows several JSON shapes, the variants are named after the shape:
//!   `String`, `Integer`, `Number`, `Boolean`, `List`, `ListOfLists`, `Map`.
//! - String enums of the schema are Rust enums (`HttpMethod::Get`), with `as_str()` and `VALUES`.
//! - Interpolated strings stay `String`; free-form JSON stays [`serde_json::Value`] or
//!   [`serde_json::Map`]; maps with typed values are [`indexmap::IndexMap`] (key order kept).
//!
//! Reading goes through [`FromNode`] rather than serde, so that errors name the exact path and
//! suggest fixes. The types also implement `Serialize` (back to the manifest's JSON shape) and
//! `JsonSchema` (the schema written by `cargo xtask gen-schema`).
//!
//! ```
//! use serde_json::json;
//! use sluice_manifest::model::{FromNode, RecordExtractor};
//! use sluice_manifest::ManifestPath;
//!
//! let node = json!({"type": "DpathExtractor", "field_path": ["data"]});
//! let extractor = RecordExtractor::from_node(&node, &ManifestPath::root()).unwrap();
//! let RecordExtractor::DpathExtractor(dpath) = extractor else { panic!("not a DpathExtractor") };
//! assert_eq!(dpath.field_path, ["data"]);
//!
//! let typo = json!({"type": "DPathExtractr", "field_path": ["data"]});
//! let error = RecordExtractor::from_node(&typo, &ManifestPath::parse("retriever.record_selector.extractor"))
//!     .unwrap_err();
//! assert_eq!(error.suggestion.as_deref(), Some("did you mean 'DpathExtractor'?"));
//! ```

#[allow(missing_docs)]
mod generated;
mod read;
#[cfg(test)]
mod tests;

pub use generated::*;

use crate::{ManifestError, ManifestPath};
use indexmap::IndexMap;
use read::wrong_shape;
use serde_json::{Map, Value};

/// Reads a value of the model from the resolved manifest tree.
///
/// Errors name the path of the offending value (`streams[2].retriever: missing required field
/// 'record_selector'`) and, when one fits, suggest a fix.
pub trait FromNode: Sized {
    /// Reads `node`, which lies at `at` in the manifest.
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError>;

    /// What a value of this type looks like, for messages: "a string", "a DpathExtractor component".
    fn expected() -> String;

    /// The same in the plural, for lists: "strings", "DpathExtractor components".
    fn expected_plural() -> String;
}

/// A component: a struct whose JSON object carries `type: <TYPE>`.
pub trait Component {
    /// The value of the component's `type` key.
    const TYPE: &'static str;
    /// Whether the schema requires the `type` key (a few components may omit it).
    const TYPE_REQUIRED: bool;
}

impl DeclarativeSource {
    /// Builds the model from a resolved manifest tree (references resolved, parameters
    /// propagated and default types filled in, as [`crate::resolve_value`] gives).
    ///
    /// Like the reference, which validates the resolved manifest against the schema, keys the
    /// schema does not know are rejected at the top level (where the schema closes the object)
    /// and ignored inside components (where it leaves them open).
    pub fn from_resolved(resolved: &Value) -> Result<Self, ManifestError> {
        Self::from_node(resolved, &ManifestPath::root())
    }
}

/// Adds the component's `type` to the JSON Schema of a component struct (serde writes it as a
/// tag, which schemars does not see on structs).
#[cfg(feature = "schema")]
pub(crate) fn tagged_schema<T: Component>(schema: &mut schemars::Schema) {
    let object = schema.ensure_object();
    let mut properties = Map::new();
    properties.insert(
        "type".to_owned(),
        serde_json::json!({ "type": "string", "enum": [T::TYPE] }),
    );
    if let Some(Value::Object(existing)) = object.remove("properties") {
        properties.extend(existing);
    }
    object.insert("properties".to_owned(), Value::Object(properties));
    if T::TYPE_REQUIRED {
        let required = object
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = required {
            list.insert(0, Value::String("type".to_owned()));
        }
    }
}

impl FromNode for String {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        node.as_str()
            .map(str::to_owned)
            .ok_or_else(|| wrong_shape(node, at, &Self::expected()))
    }
    fn expected() -> String {
        "a string".to_owned()
    }
    fn expected_plural() -> String {
        "strings".to_owned()
    }
}

/// Integers as JSON Schema counts them: `5` and `5.0` are integers, `5.5` and `"5"` are not.
impl FromNode for i64 {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        let integral = match node {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        integral.ok_or_else(|| wrong_shape(node, at, &Self::expected()))
    }
    fn expected() -> String {
        "an integer".to_owned()
    }
    fn expected_plural() -> String {
        "integers".to_owned()
    }
}

impl FromNode for f64 {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        node.as_f64()
            .ok_or_else(|| wrong_shape(node, at, &Self::expected()))
    }
    fn expected() -> String {
        "a number".to_owned()
    }
    fn expected_plural() -> String {
        "numbers".to_owned()
    }
}

impl FromNode for bool {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        node.as_bool()
            .ok_or_else(|| wrong_shape(node, at, &Self::expected()))
    }
    fn expected() -> String {
        "a boolean".to_owned()
    }
    fn expected_plural() -> String {
        "booleans".to_owned()
    }
}

/// Any JSON value, taken as it is.
impl FromNode for Value {
    fn from_node(node: &Value, _at: &ManifestPath) -> Result<Self, ManifestError> {
        Ok(node.clone())
    }
    fn expected() -> String {
        "a JSON value".to_owned()
    }
    fn expected_plural() -> String {
        "JSON values".to_owned()
    }
}

/// A free-form JSON object.
impl FromNode for Map<String, Value> {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        node.as_object()
            .cloned()
            .ok_or_else(|| wrong_shape(node, at, &Self::expected()))
    }
    fn expected() -> String {
        "an object".to_owned()
    }
    fn expected_plural() -> String {
        "objects".to_owned()
    }
}

impl<T: FromNode> FromNode for Vec<T> {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        let items = node
            .as_array()
            .ok_or_else(|| wrong_shape(node, at, &Self::expected()))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::from_node(item, &at.index(i)))
            .collect()
    }
    fn expected() -> String {
        format!("a list of {}", T::expected_plural())
    }
    fn expected_plural() -> String {
        format!("lists of {}", T::expected_plural())
    }
}

/// An object whose values all have one type, key order kept.
impl<T: FromNode> FromNode for IndexMap<String, T> {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        let object = node
            .as_object()
            .ok_or_else(|| wrong_shape(node, at, &Self::expected()))?;
        object
            .iter()
            .map(|(key, value)| Ok((key.clone(), T::from_node(value, &at.key(key))?)))
            .collect()
    }
    fn expected() -> String {
        format!("an object of {}", T::expected_plural())
    }
    fn expected_plural() -> String {
        format!("objects of {}", T::expected_plural())
    }
}

/// `null` reads as `None`. (Struct fields do not use this: an absent field is `None`, and a
/// `null` where the schema wants a value is an error, as in the reference's validation.)
impl<T: FromNode> FromNode for Option<T> {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        match node {
            Value::Null => Ok(None),
            other => T::from_node(other, at).map(Some),
        }
    }
    fn expected() -> String {
        format!("{} or null", T::expected())
    }
    fn expected_plural() -> String {
        format!("{} or nulls", T::expected_plural())
    }
}

impl<T: FromNode> FromNode for Box<T> {
    fn from_node(node: &Value, at: &ManifestPath) -> Result<Self, ManifestError> {
        T::from_node(node, at).map(Box::new)
    }
    fn expected() -> String {
        T::expected()
    }
    fn expected_plural() -> String {
        T::expected_plural()
    }
}
