//! `DynamicSchemaLoader`: a stream's JSON schema built from a record an API returns (a list of
//! field definitions), as the reference's `dynamic_schema_loader.py` builds it.
//!
//! The loader reads the first record of its own retriever, takes the field definitions at
//! `schema_pointer`, and for each one the field name at `key_pointer` and the field type at
//! `type_pointer` (mapped through `types_mapping`) as an Airbyte type. The `schema_filter` then
//! keeps some of the fields and `schema_transformations` reshape the properties.

use crate::EngineError;
use crate::stream::Retriever;
use serde_json::{Map, Value, json};
use sluice_interp::{Context, InterpolatedBoolean, Template};
use sluice_manifest::{ManifestPath, model};
use sluice_records::{
    FilterVariables, RecordFilter, RecordSelector, TransformVariables, Transformation,
};
use std::sync::Arc;

/// A stream's schema loaded from the API when it is first asked for.
#[derive(Debug)]
pub(crate) struct DynamicSchemaLoader {
    retriever: Retriever,
    config: Arc<Value>,
    /// The `SchemaTypeIdentifier`'s parameters, seen by its pointer templates.
    parameters: Value,
    schema_pointer: Vec<Template>,
    key_pointer: Vec<Template>,
    /// `None` (or empty) types every field as `string`.
    type_pointer: Vec<Template>,
    types_mapping: Vec<TypesMap>,
    filter: Option<RecordFilter>,
    transformations: Vec<Transformation>,
    path: ManifestPath,
}

/// Where a loaded schema comes from: one `DynamicSchemaLoader`, or a list of schema loaders at
/// least one of which is one (`CompositeSchemaLoader`).
#[derive(Debug)]
pub(crate) enum SchemaLoad {
    One(Box<DynamicSchemaLoader>),
    Composite(Vec<SchemaPart>),
}

/// One schema loader of a list.
#[derive(Debug)]
pub(crate) enum SchemaPart {
    Static(Map<String, Value>),
    Loaded(Box<DynamicSchemaLoader>),
}

impl SchemaLoad {
    pub async fn load(&self) -> Result<Map<String, Value>, EngineError> {
        match self {
            SchemaLoad::One(loader) => loader.load().await,
            SchemaLoad::Composite(parts) => {
                let mut schemas = Vec::with_capacity(parts.len());
                for part in parts {
                    schemas.push(match part {
                        SchemaPart::Static(schema) => schema.clone(),
                        SchemaPart::Loaded(loader) => loader.load().await?,
                    });
                }
                combine_schemas(schemas)
            }
        }
    }
}

/// The schemas of a list of schema loaders as one, as the reference's `CompositeSchemaLoader`
/// combines them: an object (or null) whose properties are those of every schema, an earlier
/// loader's property winning over a later one's (in the order of Python's `{**later,
/// **earlier}`); each schema must have `properties`.
pub(crate) fn combine_schemas(
    schemas: Vec<Map<String, Value>>,
) -> Result<Map<String, Value>, EngineError> {
    let mut combined = Map::new();
    for (index, mut schema) in schemas.into_iter().enumerate() {
        let Some(Value::Object(properties)) = schema.remove("properties") else {
            return Err(EngineError::system(format!(
                "the schema of schema loader {index} has no properties: KeyError: 'properties'"
            )));
        };
        let earlier = std::mem::take(&mut combined);
        combined = properties;
        for (name, value) in earlier {
            combined.insert(name, value);
        }
    }
    let mut schema = Map::new();
    schema.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    schema.insert("type".into(), json!(["null", "object"]));
    schema.insert("properties".into(), Value::Object(combined));
    Ok(schema)
}

/// A stream whose schema a [`DynamicSchemaLoader`] gives. As in the reference, a read loads the
/// schema first (a loader that fails fails the stream) and normalises records by it.
#[derive(Debug)]
pub(crate) struct DynamicSchema {
    pub loader: SchemaLoad,
    /// How to build the stream's record selector for the loaded schema; `None` when the
    /// selector does not normalise records (the one built without a schema then serves).
    pub normalizing_selector: Option<SelectorRecipe>,
}

/// What building a stream's record selector takes, kept to build it again once the schema
/// is known.
#[derive(Debug)]
pub(crate) struct SelectorRecipe {
    pub record_selector: model::RecordSelector,
    pub decoder: Option<model::Decoder>,
    pub transformations: Vec<model::RecordTransformation>,
    pub config: Arc<Value>,
    /// The stream's path.
    pub path: ManifestPath,
}

impl SelectorRecipe {
    /// Whether a selector built this way normalises records by the stream's schema.
    pub fn normalizes(selector: &model::RecordSelector) -> bool {
        matches!(
            selector.schema_normalization,
            Some(model::AnySchemaNormalization::SchemaNormalization(
                model::SchemaNormalization::Default
            ))
        )
    }

    /// The stream's record selector, normalising by `schema`.
    pub fn build(&self, schema: &Map<String, Value>) -> Result<RecordSelector, EngineError> {
        RecordSelector::from_model(
            &self.record_selector,
            self.decoder.as_ref(),
            &self.transformations,
            schema,
            &self.config,
            &self.path,
        )
        .map_err(|e| EngineError::config(e.to_string()))
    }
}

/// `TypesMap`: replaces a field type equal to `current_type` when `condition` holds.
#[derive(Debug)]
struct TypesMap {
    current_type: Value,
    target_type: FieldType,
    /// Over `config` and `raw_schema` (the field definition); `True` when not given.
    condition: InterpolatedBoolean,
}

/// A field type: a type name, a list of them (exactly two make a `oneOf`), or a complex type.
#[derive(Debug, Clone)]
enum FieldType {
    Raw(Value),
    Complex(ComplexFieldType),
}

/// `ComplexFieldType`: a type with the type of its items (arrays only).
#[derive(Debug, Clone)]
struct ComplexFieldType {
    field_type: String,
    items: Option<Box<ComplexItems>>,
}

#[derive(Debug, Clone)]
enum ComplexItems {
    Name(String),
    Complex(ComplexFieldType),
}

impl DynamicSchemaLoader {
    /// Builds the loader around its already built retriever (which reads with no stream
    /// transformations and no schema, as the reference's does).
    pub fn from_model(
        model: &model::DynamicSchemaLoader,
        retriever: Retriever,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        let identifier = &model.schema_type_identifier;
        let identifier_path = path.key("schema_type_identifier");
        let pointer = |segments: Option<&Vec<String>>, key: &str| {
            segments
                .map(|list| {
                    list.iter()
                        .enumerate()
                        .map(|(index, segment)| {
                            Template::new(segment).map_err(|e| {
                                at(&identifier_path.key(key).index(index), e.to_string())
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let schema_pointer = pointer(identifier.schema_pointer.as_ref(), "schema_pointer")?;
        let key_pointer = pointer(Some(&identifier.key_pointer), "key_pointer")?;
        let type_pointer = pointer(identifier.type_pointer.as_ref(), "type_pointer")?;
        let types_mapping = identifier
            .types_mapping
            .iter()
            .flatten()
            .enumerate()
            .map(|(index, map)| {
                TypesMap::from_model(map, &identifier_path.key("types_mapping").index(index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filter = match &model.schema_filter {
            None => None,
            Some(model::AnyRecordFilter::RecordFilter(filter)) => Some(
                RecordFilter::from_model(filter, &path.key("schema_filter"))
                    .map_err(|e| EngineError::config(e.to_string()))?,
            ),
            Some(model::AnyRecordFilter::CustomRecordFilter(_)) => {
                return Err(at(
                    &path.key("schema_filter"),
                    "custom record filters cannot run in sluice",
                ));
            }
        };
        let transformations = Transformation::list_from_model(
            model.schema_transformations.as_deref().unwrap_or_default(),
            config,
            &path.key("schema_transformations"),
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        Ok(Self {
            retriever,
            config: Arc::clone(config),
            parameters: Value::Object(identifier.parameters.clone().unwrap_or_default()),
            schema_pointer,
            key_pointer,
            type_pointer,
            types_mapping,
            filter,
            transformations,
            path: path.clone(),
        })
    }

    /// Reads the first record of the loader's retriever and builds the JSON schema from it.
    pub async fn load(&self) -> Result<Map<String, Value>, EngineError> {
        let first = self.retriever.first_record().await?;
        let properties = match first {
            Some(record) => self.properties(&record)?,
            None => Map::new(),
        };
        let properties = self.transform(self.filter(properties)?)?;
        let mut schema = Map::new();
        schema.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft-07/schema#"),
        );
        schema.insert("type".into(), json!("object"));
        schema.insert("additionalProperties".into(), Value::Bool(true));
        schema.insert("properties".into(), Value::Object(properties));
        Ok(schema)
    }

    /// The properties the record's field definitions describe, in their order.
    fn properties(&self, record: &Value) -> Result<Map<String, Value>, EngineError> {
        let mut properties = Map::new();
        // An empty record is falsy to the reference: no fields.
        if record.as_object().is_some_and(Map::is_empty) {
            return Ok(properties);
        }
        let definitions = self.extract(record, &self.schema_pointer, "schema_pointer")?;
        let Some(Value::Array(definitions)) = definitions else {
            return Err(self.error(format!(
                "expected a list of field definitions at schema_pointer, got {}",
                shown(definitions)
            )));
        };
        for definition in definitions {
            let key = match self.extract(definition, &self.key_pointer, "key_pointer")? {
                Some(Value::String(key)) => key.clone(),
                other => {
                    return Err(
                        self.error(format!("Expected key to be a string. Got {}", shown(other)))
                    );
                }
            };
            let field_type = self.field_type(definition)?;
            properties.insert(key, field_type);
        }
        Ok(properties)
    }

    /// The Airbyte type of one field definition.
    fn field_type(&self, definition: &Value) -> Result<Value, EngineError> {
        let string = Value::String("string".into());
        let raw = if self.type_pointer.is_empty() {
            &string
        } else {
            self.extract(definition, &self.type_pointer, "type_pointer")?
                .unwrap_or(&string)
        };
        let mapped = self.map_type(raw, definition)?;
        match mapped {
            FieldType::Raw(Value::Array(types))
                if types.len() == 2 && types.iter().all(Value::is_string) =>
            {
                let first = self.airbyte_type(types[0].as_str().unwrap_or_default())?;
                let second = self.airbyte_type(types[1].as_str().unwrap_or_default())?;
                Ok(json!({"oneOf": [first, second]}))
            }
            FieldType::Raw(Value::String(name)) => self.airbyte_type(&name),
            FieldType::Complex(complex) => self.complex_type(&complex),
            FieldType::Raw(other) => Err(self.error(format!(
                "Invalid data type. Available string or two items list of string. Got {other}."
            ))),
        }
    }

    /// The first `types_mapping` entry whose `current_type` equals the type and whose
    /// condition holds gives the type; else it stays.
    fn map_type(&self, raw: &Value, definition: &Value) -> Result<FieldType, EngineError> {
        let empty = Value::Object(Map::new());
        for types_map in &self.types_mapping {
            let ctx = Context::new()
                .config(&*self.config)
                .parameters(&empty)
                .with("raw_schema", definition);
            let holds = types_map
                .condition
                .eval(&ctx)
                .map_err(|e| self.error(format!("types_mapping condition: {e}")))?;
            if *raw == types_map.current_type && holds {
                return Ok(types_map.target_type.clone());
            }
        }
        Ok(FieldType::Raw(raw.clone()))
    }

    fn complex_type(&self, complex: &ComplexFieldType) -> Result<Value, EngineError> {
        let mut field_type = self.airbyte_type(&complex.field_type)?;
        if let (Some(items), Value::Object(map)) = (&complex.items, &mut field_type) {
            let items = match &**items {
                ComplexItems::Name(name) => self.airbyte_type(name)?,
                ComplexItems::Complex(inner) => self.complex_type(inner)?,
            };
            map.insert("items".into(), items);
        }
        Ok(field_type)
    }

    fn airbyte_type(&self, name: &str) -> Result<Value, EngineError> {
        airbyte_type(name).ok_or_else(|| self.error(format!("Invalid Airbyte data type: {name}")))
    }

    /// The fields the `schema_filter` keeps; its condition sees each field as
    /// `record` = `{name: type}`.
    fn filter(&self, properties: Map<String, Value>) -> Result<Map<String, Value>, EngineError> {
        let Some(filter) = &self.filter else {
            return Ok(properties);
        };
        let empty = Value::Object(Map::new());
        let variables = FilterVariables {
            config: &self.config,
            stream_slice: &Value::Null,
            stream_state: &empty,
            next_page_token: None,
        };
        let mut kept = Map::new();
        for (key, value) in properties {
            let mut field = Map::new();
            field.insert(key, value);
            let field = Value::Object(field);
            if filter
                .keep(&field, &variables)
                .map_err(|e| self.error(format!("schema_filter: {e}")))?
            {
                if let Value::Object(field) = field {
                    kept.extend(field);
                }
            }
        }
        Ok(kept)
    }

    /// The `schema_transformations` applied to the properties as to one record.
    fn transform(&self, properties: Map<String, Value>) -> Result<Map<String, Value>, EngineError> {
        let empty = Value::Object(Map::new());
        let variables = TransformVariables {
            config: &self.config,
            stream_slice: &Value::Null,
            stream_state: &empty,
        };
        let mut properties = Value::Object(properties);
        for transformation in &self.transformations {
            transformation
                .apply(&mut properties, &variables)
                .map_err(|e| self.error(format!("schema_transformations: {e}")))?;
        }
        match properties {
            Value::Object(properties) => Ok(properties),
            _ => Ok(Map::new()),
        }
    }

    /// `dpath.get` over the rendered pointer: the value at the path (segments are globs that
    /// must match one value at most); `None` when nothing is there. An empty pointer is the
    /// value itself.
    fn extract<'v>(
        &self,
        value: &'v Value,
        pointer: &[Template],
        name: &str,
    ) -> Result<Option<&'v Value>, EngineError> {
        if pointer.is_empty() {
            return Ok(Some(value));
        }
        let ctx = Context::new()
            .config(&*self.config)
            .parameters(&self.parameters);
        let segments = pointer
            .iter()
            .map(|segment| segment.render_string(&ctx))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("{name}: {e}")))?;
        let mut found = Vec::new();
        collect_matches(value, &segments, &mut found);
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(self.error(format!(
                "{name} {segments:?} must match only one value, it matches {}",
                found.len()
            ))),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> EngineError {
        at(&self.path, message)
    }
}

impl TypesMap {
    fn from_model(model: &model::TypesMap, path: &ManifestPath) -> Result<Self, EngineError> {
        let current_type = match &model.current_type {
            model::StringOrList::String(name) => Value::String(name.clone()),
            model::StringOrList::List(names) => json!(names),
        };
        let target_type = match &model.target_type {
            model::TargetType::String(name) => FieldType::Raw(Value::String(name.clone())),
            model::TargetType::List(names) => FieldType::Raw(json!(names)),
            model::TargetType::ComplexFieldType(complex) => FieldType::Complex(
                ComplexFieldType::from_model(complex, &path.key("target_type"))?,
            ),
        };
        let condition = InterpolatedBoolean::new(model.condition.as_deref().unwrap_or("True"))
            .map_err(|e| at(&path.key("condition"), e))?;
        Ok(Self {
            current_type,
            target_type,
            condition,
        })
    }
}

impl ComplexFieldType {
    fn from_model(
        model: &model::ComplexFieldType,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        let items = match &model.items {
            None => None,
            Some(model::StringOrComplexFieldType::String(name)) => {
                Some(Box::new(ComplexItems::Name(name.clone())))
            }
            Some(model::StringOrComplexFieldType::ComplexFieldType(inner)) => Some(Box::new(
                ComplexItems::Complex(Self::from_model(inner, &path.key("items"))?),
            )),
        };
        // As in the reference, an empty `items` counts as none.
        let items =
            items.filter(|items| !matches!(&**items, ComplexItems::Name(n) if n.is_empty()));
        if items.is_some() && model.field_type != "array" {
            return Err(at(
                path,
                "'items' can only be used when 'field_type' is an array.",
            ));
        }
        Ok(Self {
            field_type: model.field_type.clone(),
            items,
        })
    }
}

/// The Airbyte types a field definition may name.
fn airbyte_type(name: &str) -> Option<Value> {
    let nullable = |kind: &str| json!({"type": ["null", kind]});
    Some(match name {
        "string" | "boolean" | "integer" | "number" | "array" | "object" => nullable(name),
        "date" => json!({"type": ["null", "string"], "format": "date"}),
        "timestamp_without_timezone" => json!({
            "type": ["null", "string"],
            "format": "date-time",
            "airbyte_type": "timestamp_without_timezone"
        }),
        "timestamp_with_timezone" => json!({"type": ["null", "string"], "format": "date-time"}),
        "time_without_timezone" => json!({
            "type": ["null", "string"],
            "format": "time",
            "airbyte_type": "time_without_timezone"
        }),
        "time_with_timezone" => json!({
            "type": ["null", "string"],
            "format": "time",
            "airbyte_type": "time_with_timezone"
        }),
        _ => return None,
    })
}

/// Every value at the glob path, stopping once two are found (more cannot be used).
fn collect_matches<'v>(value: &'v Value, segments: &[String], found: &mut Vec<&'v Value>) {
    let Some((segment, rest)) = segments.split_first() else {
        found.push(value);
        return;
    };
    let is_glob = segment.contains(['*', '?', '[']);
    match value {
        Value::Object(map) => {
            if !is_glob {
                if let Some(child) = map.get(segment) {
                    collect_matches(child, rest, found);
                }
                return;
            }
            for (key, child) in map {
                if found.len() > 1 {
                    return;
                }
                if fnmatch(key, segment) {
                    collect_matches(child, rest, found);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                if found.len() > 1 {
                    return;
                }
                if fnmatch(&index.to_string(), segment) {
                    collect_matches(child, rest, found);
                }
            }
        }
        _ => {}
    }
}

/// Python's `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`; an unclosed `[` is literal.
fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    glob_match(&name, &pattern)
}

fn glob_match(name: &[char], pattern: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| glob_match(&name[skip..], rest)),
        '?' => !name.is_empty() && glob_match(&name[1..], rest),
        '[' => match class_end(rest) {
            Some(end) => {
                let Some((&c, name_rest)) = name.split_first() else {
                    return false;
                };
                in_class(c, &rest[..end]) && glob_match(name_rest, &rest[end + 1..])
            }
            None => name.first() == Some(&'[') && glob_match(&name[1..], rest),
        },
        literal => name.first() == Some(&literal) && glob_match(&name[1..], rest),
    }
}

/// Where the `]` closing a class starts after `[` (a `]` right after `[` or `[!` is literal).
fn class_end(class: &[char]) -> Option<usize> {
    let start = usize::from(class.first() == Some(&'!'));
    let start = start + usize::from(class.get(start) == Some(&']'));
    class[start..]
        .iter()
        .position(|&c| c == ']')
        .map(|p| p + start)
}

fn in_class(c: char, class: &[char]) -> bool {
    let (negated, class) = match class.split_first() {
        Some(('!', rest)) => (true, rest),
        _ => (false, class),
    };
    let mut matched = false;
    let mut index = 0;
    while index < class.len() {
        if index + 2 < class.len() && class[index + 1] == '-' {
            matched |= class[index] <= c && c <= class[index + 2];
            index += 3;
        } else {
            matched |= class[index] == c;
            index += 1;
        }
    }
    matched != negated
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "None".to_string(), Value::to_string)
}

fn at(path: &ManifestPath, message: impl std::fmt::Display) -> EngineError {
    EngineError::in_manifest(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_paths_follow_dpath() {
        let value = json!({"data": {"fields": [{"name": "a"}, {"name": "b"}]}});
        let path = |segments: &[&str]| -> Vec<String> {
            segments.iter().map(ToString::to_string).collect()
        };
        let mut found = Vec::new();
        collect_matches(&value, &path(&["data", "fields", "1", "name"]), &mut found);
        assert_eq!(found, vec![&json!("b")]);
        found.clear();
        collect_matches(&value, &path(&["d*", "fields"]), &mut found);
        assert_eq!(found.len(), 1);
        found.clear();
        collect_matches(&value, &path(&["data", "fields", "*", "name"]), &mut found);
        assert_eq!(found.len(), 2);
        found.clear();
        collect_matches(&value, &path(&["data", "missing"]), &mut found);
        assert!(found.is_empty());
    }

    #[test]
    fn fnmatch_classes() {
        assert!(fnmatch("b1", "b[0-9]"));
        assert!(!fnmatch("b1", "b[!0-9]"));
        assert!(fnmatch("[x", "[x"));
        assert!(fnmatch("anything", "*"));
        assert!(!fnmatch("ab", "a"));
    }

    #[test]
    fn airbyte_types_are_nullable() {
        assert_eq!(
            airbyte_type("integer"),
            Some(json!({"type": ["null", "integer"]}))
        );
        assert_eq!(
            airbyte_type("date"),
            Some(json!({"type": ["null", "string"], "format": "date"}))
        );
        assert_eq!(airbyte_type("varchar"), None);
    }
}
