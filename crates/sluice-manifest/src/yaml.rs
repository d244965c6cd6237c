//! Stage 1: YAML text to a JSON tree.
//!
//! The reference loads manifests with PyYAML's `safe_load`, so this stage follows PyYAML where the
//! two YAML readers differ in ways a manifest can show:
//!
//! - a key given twice keeps the value of its last occurrence, at the position of its first (a
//!   Python dict assignment), where serde's own YAML maps would reject the document;
//! - merge keys (`<<: *defaults`, `<<: [*a, *b]`) copy the keys of the merged mappings that the
//!   mapping does not set itself, earlier mappings of a list winning over later ones;
//! - non-string keys (`200:`, `true:`, `~:`) become the strings Python's `json.dumps` would write
//!   for them (`"200"`, `"true"`, `"null"`);
//! - anchors and aliases expand to copies of the anchored node;
//! - application tags (`!Ref x`) are an error, as `safe_load` refuses them.
//!
//! Plain scalars are typed by the YAML 1.2 rules of `serde_norway`, not PyYAML's YAML 1.1 rules:
//! `yes`/`no`/`on`/`off` stay strings, `1e3` is a number and unquoted dates stay strings.

use crate::{ManifestError, ManifestErrorKind, ManifestPath};
use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The key PyYAML's `SafeLoader` treats as a merge of other mappings into the current one.
const MERGE_KEY: &str = "<<";

/// Parses manifest YAML into a JSON tree whose objects keep the key order of the text.
///
/// The document must be a mapping, as the reference requires of a manifest. Syntax errors carry
/// the line and column where the YAML reader stopped.
///
/// ```
/// let tree = sluice_manifest::yaml::parse("version: 6.0.0\nstreams: []\n").unwrap();
/// assert_eq!(tree["version"], "6.0.0");
/// ```
pub fn parse(text: &str) -> Result<Value, ManifestError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    let tree = deserializer
        .deserialize_any(NodeVisitor)
        .map_err(yaml_error)?;
    match tree {
        Value::Object(_) => Ok(tree),
        Value::Null => Err(ManifestError::new(
            ManifestPath::root(),
            ManifestErrorKind::Yaml,
            "the manifest is empty",
        )),
        other => Err(ManifestError::new(
            ManifestPath::root(),
            ManifestErrorKind::Yaml,
            format!(
                "a manifest must be a mapping of keys to values, not {}",
                json_kind(&other)
            ),
        )),
    }
}

/// Parses any YAML document (a scalar, a list or a mapping) into JSON, with the manifest's
/// rules; an empty document is null. The error is the reader's message.
pub(crate) fn parse_any(text: &str) -> Result<Value, String> {
    serde_norway::Deserializer::from_str(text)
        .deserialize_any(NodeVisitor)
        .map_err(|e| e.to_string())
}

fn yaml_error(error: serde_norway::Error) -> ManifestError {
    // serde_norway's message already ends with "at line L column C" when it knows where.
    let mut located = ManifestError::new(
        ManifestPath::root(),
        ManifestErrorKind::Yaml,
        format!("invalid YAML: {error}"),
    );
    located.location = error.location().map(|at| crate::Location {
        line: at.line(),
        column: at.column(),
    });
    located
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Builds a JSON node from any YAML node.
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML node")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        big_integer(v.to_string())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        big_integer(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; the reference would only ever print them back as text.
        Ok(Number::from_f64(v).map_or_else(|| Value::String(python_float_text(v)), Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NodeSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut merged: Vec<Map<String, Value>> = Vec::new();
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let value = access.next_value_seed(NodeSeed)?;
            if key == MERGE_KEY {
                merged.extend(merge_sources(value).map_err(de::Error::custom)?);
            } else {
                // Python dict assignment: a repeated key keeps its first position, takes the last value.
                map.insert(key, value);
            }
        }
        if merged.is_empty() {
            return Ok(Value::Object(map));
        }
        // PyYAML puts merged keys first, the earliest merged mapping winning, then the mapping's own keys.
        let mut result = Map::new();
        for source in merged {
            for (k, v) in source {
                result.entry(k).or_insert(v);
            }
        }
        for (k, v) in map {
            result.insert(k, v);
        }
        Ok(Value::Object(result))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, _) = data.variant::<String>()?;
        Err(de::Error::custom(format!(
            "the YAML tag `!{tag}` is not supported (the reference reads manifests with safe_load, which refuses application tags)"
        )))
    }
}

fn big_integer<E: de::Error>(digits: String) -> Result<Value, E> {
    // Only reachable past 64 bits; keep the digits rather than losing precision.
    serde_json::from_str::<Number>(&digits)
        .map(Value::Number)
        .or(Ok(Value::String(digits)))
}

fn python_float_text(v: f64) -> String {
    if v.is_nan() {
        "nan".to_owned()
    } else if v > 0.0 {
        "inf".to_owned()
    } else {
        "-inf".to_owned()
    }
}

/// The mappings a merge key's value brings in: one mapping or a list of mappings.
fn merge_sources(value: Value) -> Result<Vec<Map<String, Value>>, String> {
    match value {
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                other => Err(format!(
                    "a merge key (`<<`) list may only hold mappings, found {}",
                    json_kind(&other)
                )),
            })
            .collect(),
        other => Err(format!(
            "a merge key (`<<`) needs a mapping or a list of mappings, found {}",
            json_kind(&other)
        )),
    }
}

struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Reads a mapping key and writes it as the string `json.dumps` would give the Python key.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        match d.deserialize_any(NodeVisitor)? {
            Value::String(s) => Ok(s),
            Value::Null => Ok("null".to_owned()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(python_number_key(&n)),
            other => Err(de::Error::custom(format!(
                "a mapping key must be a scalar, found {}",
                json_kind(&other)
            ))),
        }
    }
}

fn python_number_key(n: &Number) -> String {
    match n.as_f64() {
        // Python prints whole floats with a trailing `.0`; serde prints them without.
        Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e16 => {
            format!("{f:.1}")
        }
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_key_order() {
        let tree = parse("b: 1\na: 2\nc: 3\n").unwrap();
        let keys: Vec<_> = tree.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn repeated_key_takes_last_value_at_first_position() {
        let tree = parse("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(tree, json!({"a": 3, "b": 2}));
        let keys: Vec<_> = tree.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn scalar_keys_become_json_dumps_strings() {
        let tree = parse("200: ok\ntrue: yes\n~: n\n1.0: f\n").unwrap();
        assert_eq!(
            tree,
            json!({"200": "ok", "true": "yes", "null": "n", "1.0": "f"})
        );
    }

    #[test]
    fn merge_keys_fill_missing_keys_only() {
        let text = "base: &base {a: 1, b: 2}\nother: &other {b: 9, c: 3}\nx:\n  <<: [*base, *other]\n  a: 10\n";
        let tree = parse(text).unwrap();
        assert_eq!(tree["x"], json!({"a": 10, "b": 2, "c": 3}));
    }

    #[test]
    fn aliases_expand() {
        let tree = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(tree["b"], json!([1, 2]));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!(err.kind, ManifestErrorKind::Yaml);
        assert!(err.message.contains("line 3 column 2"), "{}", err.message);
        assert_eq!(err.location.map(|l| (l.line, l.column)), Some((3, 2)));
    }

    #[test]
    fn refuses_application_tags_and_non_mappings() {
        assert!(parse("a: !Ref x\n").unwrap_err().message.contains("!Ref"));
        assert!(parse("- 1\n").unwrap_err().message.contains("mapping"));
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("? [1]\n: x\n").is_err());
    }
}
