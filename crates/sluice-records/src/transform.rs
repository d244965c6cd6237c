//! Record transformations of a stream (`transformations:`), applied in order to each record.
//!
//! Transformations change objects only: a record that is not an object passes unchanged.

use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_interp::{Context, InterpolatedBoolean, LiteralType, Template, python_str};
use sluice_manifest::{ManifestPath, model};

use crate::dpath::{self, Segment};
use crate::error::{BuildError, SelectError};
use crate::extract::render_path;
use crate::raw::{KeyEdit, NewValue, TopLevelKeys};

/// What a transformation can read besides the record.
#[derive(Debug, Clone, Copy)]
pub struct TransformVariables<'a> {
    /// The connector configuration.
    pub config: &'a Value,
    /// The current slice (also `stream_partition`, `stream_interval`).
    pub stream_slice: &'a Value,
    /// The stream state (the reference always passes `{}` here).
    pub stream_state: &'a Value,
}

/// One transformation of the manifest.
#[derive(Debug, Clone)]
pub enum Transformation {
    /// `AddFields`
    AddFields(AddFields),
    /// `RemoveFields`
    RemoveFields(RemoveFields),
    /// `KeysToLower`: top-level keys in lower case.
    KeysToLower,
    /// `KeysToSnakeCase`: keys (recursively through objects) in snake_case.
    KeysToSnakeCase,
    /// `KeysReplace`
    KeysReplace(KeysReplace),
    /// `FlattenFields`
    FlattenFields {
        /// Whether list elements are flattened too (`key.0`, `key.1`).
        flatten_lists: bool,
    },
    /// `DpathFlattenFields`
    DpathFlattenFields(DpathFlattenFields),
}

/// A string template evaluated once when constant, per record otherwise.
#[derive(Debug, Clone)]
enum Evaluated {
    Constant(Value),
    Template(Template),
}

impl Evaluated {
    fn new(source: &str, valid: &[LiteralType], path: &ManifestPath) -> Result<Self, BuildError> {
        let template = Template::new(source).map_err(|e| BuildError::new(path, e))?;
        if template.is_constant() {
            let value = template
                .render_as(&Context::new(), valid)
                .map_err(|e| BuildError::new(path, e))?;
            Ok(Evaluated::Constant(value))
        } else {
            Ok(Evaluated::Template(template))
        }
    }

    fn eval(
        &self,
        ctx: &Context<'_>,
        valid: &[LiteralType],
        component: &'static str,
    ) -> Result<Value, SelectError> {
        match self {
            Evaluated::Constant(value) => Ok(value.clone()),
            Evaluated::Template(template) => template
                .render_as(ctx, valid)
                .map_err(SelectError::template(component)),
        }
    }
}

/// `AddFields`: values (templates over `record`, `config`, `stream_slice`, `parameters`) set
/// at paths, when the optional `condition` (which also sees `value` and `path`) holds.
#[derive(Debug, Clone)]
pub struct AddFields {
    fields: Vec<AddedField>,
    condition: Option<InterpolatedBoolean>,
    parameters: Value,
}

#[derive(Debug, Clone)]
struct AddedField {
    path: Vec<String>,
    path_value: Value,
    value: Evaluated,
    valid_types: Vec<LiteralType>,
    parameters: Value,
}

/// `RemoveFields`: removes the values at the field pointers (globs). With a `condition` the
/// reference removes every scalar of the record for which the condition (over `property`)
/// holds, whatever the pointers say.
#[derive(Debug, Clone)]
pub struct RemoveFields {
    pointers: Vec<Vec<Segment>>,
    condition: Option<InterpolatedBoolean>,
}

/// `KeysReplace`: replaces text in every key, recursively through objects.
#[derive(Debug, Clone)]
pub struct KeysReplace {
    old: Evaluated,
    new: Evaluated,
    parameters: Value,
}

/// `DpathFlattenFields`: lifts the keys of the object at a path onto the record.
#[derive(Debug, Clone)]
pub struct DpathFlattenFields {
    field_path: Vec<Segment>,
    has_star: bool,
    delete_origin_value: bool,
    replace_record: bool,
    prefix: Option<String>,
    suffix: Option<String>,
}

impl Transformation {
    /// Builds a list of transformations; `path` is the list's (`...transformations`).
    pub fn list_from_model(
        models: &[model::RecordTransformation],
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Vec<Transformation>, BuildError> {
        models
            .iter()
            .enumerate()
            .map(|(index, model)| Transformation::from_model(model, config, &path.index(index)))
            .collect()
    }

    /// Builds a stream's transformation.
    pub fn from_model(
        model: &model::RecordTransformation,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Transformation, BuildError> {
        Ok(match model {
            model::RecordTransformation::AddFields(add) => {
                Transformation::AddFields(AddFields::from_model(add, path)?)
            }
            model::RecordTransformation::RemoveFields(remove) => {
                Transformation::RemoveFields(RemoveFields::from_model(remove, path)?)
            }
            model::RecordTransformation::KeysToLower(_) => Transformation::KeysToLower,
            model::RecordTransformation::KeysToSnakeCase(_) => Transformation::KeysToSnakeCase,
            model::RecordTransformation::KeysReplace(replace) => {
                let parameters = Value::Object(replace.parameters.clone().unwrap_or_default());
                Transformation::KeysReplace(KeysReplace {
                    old: Evaluated::new(&replace.old, &[], &path.key("old"))?,
                    new: Evaluated::new(&replace.new, &[], &path.key("new"))?,
                    parameters,
                })
            }
            model::RecordTransformation::FlattenFields(flatten) => Transformation::FlattenFields {
                flatten_lists: flatten.flatten_lists.unwrap_or(true),
            },
            model::RecordTransformation::DpathFlattenFields(flatten) => {
                Transformation::DpathFlattenFields(DpathFlattenFields::from_model(
                    flatten, config, path,
                )?)
            }
            model::RecordTransformation::CustomTransformation(custom) => {
                return Err(BuildError::new(
                    path,
                    format!(
                        "custom transformation {} cannot run in sluice (custom Python components are not supported)",
                        custom.class_name
                    ),
                ));
            }
        })
    }

    /// The top-level keys of a record this transformation reads, sets and removes, when that
    /// is all it does, and its edits (see [`crate::raw`]); `None` when it needs the whole record.
    pub(crate) fn top_level_keys(&self) -> Option<TopLevelKeys> {
        let mut keys = TopLevelKeys::default();
        match self {
            Transformation::AddFields(add) => {
                for field in &add.fields {
                    let [key] = field.path.as_slice() else {
                        return None;
                    };
                    let value = match &field.value {
                        Evaluated::Template(template) => {
                            keys.read.extend(template.keys_read("record")?);
                            NewValue::Rendered {
                                template: template.clone(),
                                valid_types: field.valid_types.clone(),
                            }
                        }
                        Evaluated::Constant(value) => NewValue::Constant(value.clone()),
                    };
                    keys.edits.push(KeyEdit::Set {
                        key: key.clone(),
                        value,
                    });
                }
                if let Some(condition) = &add.condition {
                    keys.read.extend(condition.keys_read("record")?);
                    // The condition is evaluated on the parsed keys.
                    keys.parsed_only = true;
                }
            }
            Transformation::RemoveFields(remove) => {
                if remove.condition.is_some() {
                    return None;
                }
                for pointer in &remove.pointers {
                    match pointer.as_slice() {
                        [Segment::Glob(key)] if pointer[0].is_literal() => {
                            keys.edits.push(KeyEdit::Remove { key: key.clone() });
                        }
                        // An empty pointer removes nothing.
                        [] => {}
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
        Some(keys)
    }

    /// Applies the transformation to one record.
    pub fn apply(
        &self,
        record: &mut Value,
        vars: &TransformVariables<'_>,
    ) -> Result<(), SelectError> {
        if !record.is_object() {
            return Ok(());
        }
        match self {
            Transformation::AddFields(add) => add.apply(record, vars),
            Transformation::RemoveFields(remove) => remove.apply(record, vars),
            Transformation::KeysToLower => {
                if let Value::Object(map) = record {
                    let old = std::mem::take(map);
                    for (key, value) in old {
                        map.insert(key.to_lowercase(), value);
                    }
                }
                Ok(())
            }
            Transformation::KeysToSnakeCase => {
                rename_keys(record, &mut |key| snake_case(key));
                Ok(())
            }
            Transformation::KeysReplace(replace) => replace.apply(record, vars),
            Transformation::FlattenFields { flatten_lists } => {
                let taken = std::mem::take(record);
                *record = Value::Object(flatten(taken, *flatten_lists));
                Ok(())
            }
            Transformation::DpathFlattenFields(flatten) => flatten.apply(record),
        }
    }
}

fn value_type(value_type: Option<&model::ValueType>) -> Vec<LiteralType> {
    match value_type {
        None => Vec::new(),
        Some(model::ValueType::String) => vec![LiteralType::String],
        Some(model::ValueType::Number) => vec![LiteralType::Float],
        Some(model::ValueType::Integer) => vec![LiteralType::Integer],
        Some(model::ValueType::Boolean) => vec![LiteralType::Boolean],
    }
}

impl AddFields {
    fn from_model(model: &model::AddFields, path: &ManifestPath) -> Result<Self, BuildError> {
        let fields = model
            .fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let at = path.key("fields").index(i);
                if field.path.is_empty() {
                    return Err(BuildError::new(
                        &at.key("path"),
                        "Expected a non-zero-length path for the AddFields transformation",
                    ));
                }
                let valid_types = value_type(field.value_type.as_ref());
                Ok(AddedField {
                    path: field.path.clone(),
                    path_value: Value::from(field.path.clone()),
                    value: Evaluated::new(&field.value, &valid_types, &at.key("value"))?,
                    valid_types,
                    parameters: Value::Object(field.parameters.clone().unwrap_or_default()),
                })
            })
            .collect::<Result<_, _>>()?;
        let condition = condition(model.condition.as_deref(), &path.key("condition"))?;
        Ok(AddFields {
            fields,
            condition,
            parameters: Value::Object(model.parameters.clone().unwrap_or_default()),
        })
    }

    fn apply(&self, record: &mut Value, vars: &TransformVariables<'_>) -> Result<(), SelectError> {
        for field in &self.fields {
            let value = {
                let ctx = Context::new()
                    .config(vars.config)
                    .parameters(&field.parameters)
                    .stream_slice(vars.stream_slice)
                    .record(&*record);
                let value = field.value.eval(&ctx, &field.valid_types, "AddFields")?;
                if let Some(condition) = &self.condition {
                    let ctx = Context::new()
                        .config(vars.config)
                        .parameters(&self.parameters)
                        .stream_slice(vars.stream_slice)
                        .record(&*record)
                        .with("value", &value)
                        .with("path", &field.path_value);
                    if !condition
                        .eval(&ctx)
                        .map_err(SelectError::template("AddFields"))?
                    {
                        continue;
                    }
                }
                value
            };
            dpath::new(record, &field.path, value).map_err(|message| SelectError::Path {
                component: "AddFields",
                message,
            })?;
        }
        Ok(())
    }
}

fn condition(
    source: Option<&str>,
    path: &ManifestPath,
) -> Result<Option<InterpolatedBoolean>, BuildError> {
    match source {
        None | Some("") => Ok(None),
        Some(source) => InterpolatedBoolean::new(source)
            .map(Some)
            .map_err(|e| BuildError::new(path, e)),
    }
}

impl RemoveFields {
    fn from_model(model: &model::RemoveFields, path: &ManifestPath) -> Result<Self, BuildError> {
        Ok(RemoveFields {
            pointers: model
                .field_pointers
                .iter()
                .map(|pointer| pointer.iter().cloned().map(Segment::Glob).collect())
                .collect(),
            condition: condition(model.condition.as_deref(), &path.key("condition"))?,
        })
    }

    fn apply(&self, record: &mut Value, vars: &TransformVariables<'_>) -> Result<(), SelectError> {
        // The reference builds this condition without parameters.
        let no_parameters = Value::Object(Map::new());
        for pointer in &self.pointers {
            match &self.condition {
                None => {
                    if !pointer.is_empty() {
                        dpath::delete::<SelectError>(record, pointer, None)?;
                    }
                }
                Some(condition) => {
                    let mut holds = |property: &Value| {
                        let ctx = Context::new()
                            .config(vars.config)
                            .parameters(&no_parameters)
                            .with("property", property);
                        condition
                            .eval(&ctx)
                            .map_err(SelectError::template("RemoveFields"))
                    };
                    dpath::delete(record, pointer, Some(&mut holds))?;
                }
            }
        }
        Ok(())
    }
}

impl KeysReplace {
    fn apply(&self, record: &mut Value, vars: &TransformVariables<'_>) -> Result<(), SelectError> {
        let (old, new) = {
            let ctx = Context::new()
                .config(vars.config)
                .parameters(&self.parameters)
                .stream_slice(vars.stream_slice)
                .stream_state(vars.stream_state)
                .record(&*record);
            (
                text(self.old.eval(&ctx, &[], "KeysReplace")?),
                text(self.new.eval(&ctx, &[], "KeysReplace")?),
            )
        };
        rename_keys(record, &mut |key| key.replace(old.as_str(), &new));
        Ok(())
    }
}

/// Python's `str()` of an evaluated value.
fn text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => python_str(&other),
    }
}

/// Renames the keys of an object and, recursively, of the objects among its values (not of
/// objects inside lists). A renamed key that collides keeps the first one's place and the
/// last one's value, as Python dict assignment does.
fn rename_keys(value: &mut Value, rename: &mut dyn FnMut(&str) -> String) {
    let Value::Object(map) = value else {
        return;
    };
    let old = std::mem::take(map);
    for (key, mut child) in old {
        rename_keys(&mut child, rename);
        map.insert(rename(&key), child);
    }
}

/// The reference's KeysToSnakeCase: transliterate to ASCII, split into tokens (runs of capitals
/// followed by lower case letters, lower case runs, digit runs; anything else separates), drop
/// empty separators between tokens, prefix a leading number with `_`, join with `_`.
pub(crate) fn snake_case(key: &str) -> String {
    let ascii = any_ascii::any_ascii(key);
    let bytes = ascii.as_bytes();
    let mut tokens: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let byte = bytes[i];
        if byte.is_ascii_uppercase() {
            while i < bytes.len() && bytes[i].is_ascii_uppercase() {
                i += 1;
            }
            while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                i += 1;
            }
            tokens.push(&ascii[start..i]);
        } else if byte.is_ascii_lowercase() {
            while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                i += 1;
            }
            tokens.push(&ascii[start..i]);
        } else if byte.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            tokens.push(&ascii[start..i]);
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            tokens.push("");
        }
    }
    if tokens.len() >= 3 {
        let last = tokens.len() - 1;
        let mut kept = Vec::with_capacity(tokens.len());
        kept.push(tokens[0]);
        kept.extend(tokens[1..last].iter().copied().filter(|t| !t.is_empty()));
        kept.push(tokens[last]);
        tokens = kept;
    }
    if tokens
        .first()
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
    {
        tokens.insert(0, "");
    }
    tokens
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// The reference's FlattenFields, step for step: a stack of (value, key) pairs where nested keys
/// keep their own name unless it is taken (or a list was met), then `parent.key`.
fn flatten(record: Value, flatten_lists: bool) -> Map<String, Value> {
    let mut stack = vec![(record, "_".to_string())];
    let mut flat = Map::new();
    let mut force_with_parent_name = false;
    while let Some((current, parent_key)) = stack.pop() {
        match current {
            Value::Object(map) => {
                for (key, value) in map {
                    let new_key = if force_with_parent_name || flat.contains_key(&key) {
                        format!("{parent_key}.{key}")
                    } else {
                        key
                    };
                    stack.push((value, new_key));
                }
            }
            Value::Array(items) if flatten_lists => {
                for (index, item) in items.into_iter().enumerate() {
                    force_with_parent_name = true;
                    stack.push((item, format!("{parent_key}.{index}")));
                }
            }
            other => {
                flat.insert(parent_key, other);
            }
        }
    }
    flat
}

impl DpathFlattenFields {
    fn from_model(
        model: &model::DpathFlattenFields,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let ctx = Context::new().config(&**config).parameters(&parameters);
        let field_path = render_path(&model.field_path, &ctx, &path.key("field_path"))?;
        let affix = |source: Option<&String>, field: &str| -> Result<Option<String>, BuildError> {
            let Some(source) = source else {
                return Ok(None);
            };
            let at = path.key("key_transformation").key(field);
            let value = Template::new(source)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| BuildError::new(&at, e))?;
            Ok(is_truthy_python(&value).then(|| text(value)))
        };
        let transformation = model.key_transformation.as_ref();
        Ok(DpathFlattenFields {
            has_star: field_path.iter().any(Segment::is_star),
            field_path,
            delete_origin_value: model.delete_origin_value.unwrap_or(false),
            replace_record: model.replace_record.unwrap_or(false),
            prefix: affix(transformation.and_then(|t| t.prefix.as_ref()), "prefix")?,
            suffix: affix(transformation.and_then(|t| t.suffix.as_ref()), "suffix")?,
        })
    }

    fn apply(&self, record: &mut Value) -> Result<(), SelectError> {
        let extracted = if self.has_star {
            let mut found = Vec::new();
            dpath::values_ref(record, &self.field_path, &mut found);
            found.first().copied()
        } else {
            dpath::get_ref(record, &self.field_path).map_err(|_| SelectError::Path {
                component: "DpathFlattenFields",
                message: format!(
                    "the field_path {:?} matches more than one value",
                    self.field_path
                ),
            })?
        };
        let Some(Value::Object(extracted)) = extracted else {
            return Ok(());
        };
        let mut extracted = extracted.clone();
        if self.prefix.is_some() || self.suffix.is_some() {
            extracted = extracted
                .into_iter()
                .map(|(key, value)| {
                    let prefix = self.prefix.as_deref().unwrap_or("");
                    let suffix = self.suffix.as_deref().unwrap_or("");
                    (format!("{prefix}{key}{suffix}"), value)
                })
                .collect();
        }
        let Value::Object(map) = record else {
            return Ok(());
        };
        if self.replace_record && !extracted.is_empty() {
            *map = extracted;
            return Ok(());
        }
        if extracted.keys().any(|key| map.contains_key(key)) {
            return Ok(());
        }
        if self.delete_origin_value {
            dpath::delete::<SelectError>(record, &self.field_path, None)?;
        }
        if let Value::Object(map) = record {
            map.extend(extracted);
        }
        Ok(())
    }
}

/// Python truthiness (`if prefix:`).
fn is_truthy_python(value: &Value) -> bool {
    sluice_interp::python_bool(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn build(model: Value) -> Transformation {
        let model = model::RecordTransformation::from_node(&model, &ManifestPath::root()).unwrap();
        Transformation::from_model(
            &model,
            &Arc::new(json!({"region": "eu"})),
            &ManifestPath::root(),
        )
        .unwrap()
    }

    fn apply(t: &Transformation, mut record: Value) -> Value {
        let config = json!({"region": "eu"});
        let slice = json!({"start": "2024-01-01"});
        let state = json!({});
        let vars = TransformVariables {
            config: &config,
            stream_slice: &slice,
            stream_state: &state,
        };
        t.apply(&mut record, &vars).unwrap();
        record
    }

    #[test]
    fn add_fields_values_types_and_conditions() {
        let t = build(json!({"type": "AddFields", "fields": [
            {"type": "AddedFieldDefinition", "path": ["region"], "value": "{{ config.region }}"},
            {"type": "AddedFieldDefinition", "path": ["nested", "start"], "value": "{{ stream_slice.start }}"},
            {"type": "AddedFieldDefinition", "path": ["double"], "value": "{{ record.id * 2 }}"},
            {"type": "AddedFieldDefinition", "path": ["as_text"], "value": "{{ record.id }}", "value_type": "string"},
            {"type": "AddedFieldDefinition", "path": ["constant"], "value": "5"},
            {"type": "AddedFieldDefinition", "path": ["list", "1"], "value": "x"},
            {"type": "AddedFieldDefinition", "path": ["from_earlier"], "value": "{{ record.region }}"}
        ]}));
        assert_eq!(
            apply(&t, json!({"id": 2})),
            json!({"id": 2, "region": "eu", "nested": {"start": "2024-01-01"}, "double": 4,
                "as_text": "2", "constant": 5, "list": [null, "x"], "from_earlier": "eu"})
        );
        let t = build(
            json!({"type": "AddFields", "condition": "{{ value is not none and path[0] != 'skip' }}",
            "fields": [{"type": "AddedFieldDefinition", "path": ["a"], "value": "{{ record.missing }}"}, {"type": "AddedFieldDefinition", "path": ["skip"], "value": "1"},
                       {"type": "AddedFieldDefinition", "path": ["b"], "value": "1"}]}),
        );
        assert_eq!(
            apply(&t, json!({})),
            json!({"a": "", "b": 1}),
            "an undefined value renders as an empty string"
        );
        assert_eq!(
            apply(&t, json!([1])),
            json!([1]),
            "non-objects pass unchanged"
        );
    }

    #[test]
    fn remove_fields_pointers_and_condition() {
        let t = build(
            json!({"type": "RemoveFields", "field_pointers": [["a", "b"], ["tags", "*"], ["missing"]]}),
        );
        assert_eq!(
            apply(&t, json!({"a": {"b": 1, "c": 2}, "tags": [1, 2]})),
            json!({"a": {"c": 2}, "tags": [null]})
        );
        let t = build(
            json!({"type": "RemoveFields", "field_pointers": [["x"]], "condition": "{{ property == 'drop' }}"}),
        );
        assert_eq!(
            apply(&t, json!({"x": 1, "y": "drop", "z": {"w": "drop", "v": 2}})),
            json!({"x": 1, "z": {"v": 2}})
        );
    }

    #[test]
    fn key_transformations() {
        let lower = build(json!({"type": "KeysToLower"}));
        assert_eq!(
            apply(&lower, json!({"ID": 1, "Nested": {"KEY": 2}})),
            json!({"id": 1, "nested": {"KEY": 2}})
        );
        let replace = build(json!({"type": "KeysReplace", "old": " ", "new": "_"}));
        assert_eq!(
            apply(&replace, json!({"a b": {"c d": 1}, "e": [{"f g": 1}]})),
            json!({"a_b": {"c_d": 1}, "e": [{"f g": 1}]})
        );
        let snake = build(json!({"type": "KeysToSnakeCase"}));
        assert_eq!(
            apply(&snake, json!({"someKey": {"InnerKey": 1}})),
            json!({"some_key": {"inner_key": 1}})
        );
    }

    #[test]
    fn snake_case_tokenisation() {
        for (key, expected) in [
            ("someKey", "some_key"),
            ("HTTPResponse", "httpresponse"),
            ("created at", "created_at"),
            ("_id", "_id"),
            ("1st place", "_1_st_place"),
            ("someKey ", "some_key_"),
            ("Ünïcödé Kéy", "unicode_key"),
            ("a--b", "a_b"),
            ("", ""),
            ("__", ""),
            ("version2Name", "version_2_name"),
        ] {
            assert_eq!(snake_case(key), expected, "{key:?}");
        }
    }

    #[test]
    fn flatten_fields() {
        let t = build(json!({"type": "FlattenFields"}));
        let flat = apply(
            &t,
            json!({"id": 1, "a": {"b": 2, "id": 3}, "l": [{"x": 1}, 5]}),
        );
        let expected = json!({"l.1": 5, "l.0.x": 1, "a.id": 3, "a.b": 2, "id": 1});
        assert_eq!(flat, expected);
        let t = build(json!({"type": "FlattenFields", "flatten_lists": false}));
        assert_eq!(apply(&t, json!({"a": {"b": [1]}})), json!({"b": [1]}));
    }

    #[test]
    fn dpath_flatten_fields() {
        let t = build(
            json!({"type": "DpathFlattenFields", "field_path": ["data"], "delete_origin_value": true}),
        );
        assert_eq!(
            apply(&t, json!({"id": 1, "data": {"x": 2}})),
            json!({"id": 1, "x": 2})
        );
        assert_eq!(
            apply(&t, json!({"id": 1, "data": {"id": 2}})),
            json!({"id": 1, "data": {"id": 2}}),
            "conflicting keys leave the record alone"
        );
        let t = build(
            json!({"type": "DpathFlattenFields", "field_path": ["data"], "replace_record": true,
            "key_transformation": {"type": "KeyTransformation", "prefix": "{{ config.region }}_"}}),
        );
        assert_eq!(
            apply(&t, json!({"id": 1, "data": {"x": 2}})),
            json!({"eu_x": 2})
        );
        let t = build(json!({"type": "DpathFlattenFields", "field_path": ["*", "inner"]}));
        assert_eq!(
            apply(&t, json!({"a": {"inner": {"x": 1}}})),
            json!({"a": {"inner": {"x": 1}}, "x": 1})
        );
    }
}
