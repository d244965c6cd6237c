//! Request options as the reference merges and encodes them: query parameters, headers and
//! bodies (`request_body_json`, `request_body_data`, the typed `request_body`), combined from the
//! requester, the authenticator and the other components, then encoded as Python's `requests`
//! encodes them.

use crate::errors::HttpError;
use serde_json::{Map, Value};
use sluice_interp::{
    Context, InterpolatedMapping, InterpolatedNestedMapping, LiteralType, Template,
};
use sluice_protocol::FailureType;

/// Query parameter and form values keep a rendered value only when it literal-evaluates to one
/// of these types, else the rendered text.
const REQUEST_VALUE_TYPES: &[LiteralType] = &[LiteralType::String, LiteralType::List];

/// A flat request input (`request_parameters`, `request_headers`, `request_body_data`): a map
/// of templates, or one template that may render to a map (or, for body data, to text).
#[derive(Debug, Clone, Default)]
pub enum RequestInput {
    #[default]
    Empty,
    Mapping(InterpolatedMapping),
    Template(Template),
}

/// What a flat input rendered to.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Map(Map<String, Value>),
    Text(String),
}

impl RequestInput {
    /// Compiles a map from the manifest.
    pub fn mapping(map: &Map<String, Value>) -> Result<Self, sluice_interp::InterpError> {
        if map.is_empty() {
            return Ok(Self::Empty);
        }
        Ok(Self::Mapping(InterpolatedMapping::new(map)?))
    }

    /// Compiles a single template from the manifest.
    pub fn template(source: &str) -> Result<Self, sluice_interp::InterpError> {
        if source.is_empty() {
            return Ok(Self::Empty);
        }
        Ok(Self::Template(Template::with_default(source, "")?))
    }

    /// Whether there is nothing to render.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// Renders, dropping `null` values. `typed` applies the reference's value types for query
    /// parameters and form data; headers keep any literal.
    pub fn render(&self, ctx: &Context<'_>, typed: bool) -> Result<Rendered, String> {
        let types = if typed { REQUEST_VALUE_TYPES } else { &[] };
        match self {
            Self::Empty => Ok(Rendered::Map(Map::new())),
            Self::Mapping(mapping) => {
                let mut map = mapping.eval(ctx, types).map_err(|e| e.to_string())?;
                map.retain(|_, v| !v.is_null());
                Ok(Rendered::Map(map))
            }
            Self::Template(template) => match template.render(ctx).map_err(|e| e.to_string())? {
                Value::Object(mut map) => {
                    map.retain(|_, v| !v.is_null());
                    Ok(Rendered::Map(map))
                }
                Value::Null => Ok(Rendered::Map(Map::new())),
                Value::String(text) => Ok(Rendered::Text(text)),
                other => Ok(Rendered::Text(sluice_interp::python_str(&other))),
            },
        }
    }
}

/// `request_body_json`: a nested structure of templates, or one template rendering to an object.
#[derive(Debug, Clone, Default)]
pub enum JsonBodyInput {
    #[default]
    Empty,
    Nested(InterpolatedNestedMapping),
    Template(Template),
}

impl JsonBodyInput {
    /// Renders to an object; text is refused as the reference refuses it.
    pub fn render(&self, ctx: &Context<'_>) -> Result<Map<String, Value>, String> {
        let value = match self {
            Self::Empty => return Ok(Map::new()),
            Self::Nested(nested) => nested.eval(ctx).map_err(|e| e.to_string())?,
            Self::Template(template) => template.render(ctx).map_err(|e| e.to_string())?,
        };
        match value {
            Value::Object(map) => Ok(map),
            Value::Null => Ok(Map::new()),
            Value::String(text) if text.is_empty() => Ok(Map::new()),
            _ => Err("Request body json cannot be a string".to_owned()),
        }
    }

    /// Whether there is nothing to render.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }
}

fn collision(path: &str) -> HttpError {
    HttpError::new(
        FailureType::SystemError,
        format!(
            "Request body collision, duplicate keys detected at key path: {path}. Please ensure that all keys in the request are unique."
        ),
    )
}

/// Adds `source` into `target` as the reference's `combine_mappings` does: a key given twice
/// is an error, except in JSON bodies where nested objects merge and equal values may repeat.
pub fn merge_into(
    target: &mut Map<String, Value>,
    source: Map<String, Value>,
    allow_same_value: bool,
    prefix: &str,
) -> Result<(), HttpError> {
    for (key, value) in source {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match target.get_mut(&key) {
            None => {
                target.insert(key, value);
            }
            Some(Value::Object(existing)) if allow_same_value => match value {
                Value::Object(inner) => merge_into(existing, inner, true, &path)?,
                _ => return Err(collision(&path)),
            },
            Some(existing) => {
                if !allow_same_value || *existing != value {
                    return Err(collision(&path));
                }
            }
        }
    }
    Ok(())
}

/// Combines rendered flat inputs: at most one may be text, and text cannot be combined with a
/// non-empty map.
pub fn combine_flat(parts: Vec<Rendered>) -> Result<Rendered, HttpError> {
    let texts = parts
        .iter()
        .filter(|p| matches!(p, Rendered::Text(_)))
        .count();
    if texts > 1 {
        return Err(HttpError::new(
            FailureType::SystemError,
            "Cannot combine multiple string options",
        ));
    }
    let non_empty: Vec<Rendered> = parts
        .into_iter()
        .filter(|p| !matches!(p, Rendered::Map(m) if m.is_empty()))
        .collect();
    if texts == 1 {
        if non_empty.len() > 1 {
            return Err(HttpError::new(
                FailureType::SystemError,
                "Cannot combine multiple options if one is a string",
            ));
        }
        return Ok(non_empty
            .into_iter()
            .next()
            .unwrap_or(Rendered::Map(Map::new())));
    }
    let mut out = Map::new();
    for part in non_empty {
        if let Rendered::Map(map) = part {
            merge_into(&mut out, map, false, "")?;
        }
    }
    Ok(Rendered::Map(out))
}

/// The `(name, value)` pairs `requests` sends for a map of parameters: a list gives one pair per
/// element, `None`s are left out, values print as Python's `str()`.
pub fn pairs(map: &Map<String, Value>, what: &str) -> Result<Vec<(String, String)>, HttpError> {
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::Object(_) => {
                return Err(HttpError::new(
                    FailureType::SystemError,
                    format!(
                        "Invalid value for `{key}` {what}. The values of request params cannot be an object."
                    ),
                ));
            }
            Value::Array(items) => {
                for item in items.iter().filter(|i| !i.is_null()) {
                    out.push((key.clone(), sluice_interp::python_str(item)));
                }
            }
            other => out.push((key.clone(), sluice_interp::python_str(other))),
        }
    }
    Ok(out)
}

/// Python's `urllib.parse.quote_plus`: letters, digits and `_.-~` stay, spaces become `+`.
pub fn quote_plus(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(other >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(other & 15)]));
            }
        }
    }
}

/// Python's `urlencode(pairs)`.
pub fn urlencode(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus(key, &mut out);
        out.push('=');
        quote_plus(value, &mut out);
    }
    out
}

/// Python's `json.dumps(value)`: `", "` and `": "` separators, non-ASCII escaped.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(value, &mut out);
    out
}

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => {
                out.push_str(&sluice_interp::python_str(&Value::from(f)));
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(text) => sluice_interp::write_python_json_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(&Value::String(key.clone()), out);
                out.push_str(": ");
                write_python_json(item, out);
            }
            out.push('}');
        }
    }
}

/// Sets `value` at `parents.name` inside `map`, creating the objects on the way.
pub fn insert_nested(map: &mut Map<String, Value>, parents: &[String], name: &str, value: Value) {
    let mut current = map;
    for key in parents {
        let slot = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return;
        };
        current = next;
    }
    current.insert(name.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn combine_refuses_duplicates_except_equal_json() {
        let mut target = obj(json!({"a": 1, "n": {"x": 1}}));
        assert!(merge_into(&mut target.clone(), obj(json!({"a": 1})), false, "").is_err());
        merge_into(&mut target, obj(json!({"a": 1, "n": {"y": 2}})), true, "").unwrap();
        assert_eq!(
            Value::Object(target.clone()),
            json!({"a": 1, "n": {"x": 1, "y": 2}})
        );
        let err = merge_into(&mut target, obj(json!({"n": {"x": 3}})), true, "").unwrap_err();
        assert!(err.message.contains("key path: n.x"), "{}", err.message);
        let text = combine_flat(vec![
            Rendered::Text("raw".into()),
            Rendered::Map(Map::new()),
        ])
        .unwrap();
        assert_eq!(text, Rendered::Text("raw".into()));
        assert!(
            combine_flat(vec![
                Rendered::Text("raw".into()),
                Rendered::Map(obj(json!({"a": 1})))
            ])
            .is_err()
        );
    }

    #[test]
    fn encodes_like_requests() {
        let p = pairs(
            &obj(json!({"q": "a b~*", "ids": [1, 2], "none": null, "f": true})),
            "parameter",
        )
        .unwrap();
        assert_eq!(urlencode(&p), "q=a+b~%2A&ids=1&ids=2&f=True");
        assert_eq!(
            python_json(&json!({"a": [1, 2.5], "é": "x\n"})),
            r#"{"a": [1, 2.5], "\u00e9": "x\n"}"#
        );
    }

    #[test]
    fn nested_insert() {
        let mut map = Map::new();
        insert_nested(&mut map, &["a".into(), "b".into()], "c", json!("v"));
        assert_eq!(Value::Object(map), json!({"a": {"b": {"c": "v"}}}));
    }
}
