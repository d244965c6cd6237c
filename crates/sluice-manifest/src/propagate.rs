//! Stage 4: default types and `$parameters`.
//!
//! Follows the reference's `ManifestComponentTransformer`, run on the whole resolved manifest
//! (after giving a manifest without a top-level `type` the type `DeclarativeSource`, as the
//! reference does before resolving):
//!
//! - a mapping without `type` gets the default type of the field holding it, looked up by
//!   `"{parent type}.{field}"` in [`DEFAULT_MODEL_TYPES`] (or, when it has a `class_name`, in
//!   [`CUSTOM_COMPONENT_TYPES`]);
//! - the `$parameters` of a component are its parent's merged with its own, its own winning;
//! - every parameter is written into the component's field of the same name unless that field
//!   holds a truthy value (Python truthiness: a missing field, `null`, `false`, `0`, `""`, `[]`
//!   and `{}` are all filled); the merged parameters stay on the component as `$parameters`;
//! - mappings held by a component's fields, and mappings inside lists held by its fields, are
//!   transformed in turn, without the parameter named like the field itself;
//! - JSON schemas (a `type` of `object`, or a list or mapping as `type`) are left as they are;
//!   a mapping that has no type and gets none passes its parameters only to the typed mappings
//!   directly inside it (as in `request_parameters: {fields: {type: QueryProperties}}`).
//!
//! The reference's `ManifestNormalizer` is not applied: the reference runs it only when the
//! Connector Builder asks for it (`__should_normalize`), and it only moves duplicated
//! definitions under `definitions.linked` for display, which does not change what runs.

use crate::{ManifestError, ManifestErrorKind, ManifestPath};
use serde_json::{Map, Value, json};

/// The default `type` of an untyped component, by `"{parent type}.{field name}"`. This is the
/// reference's table, entry for entry, including its `ConfigComponentResolver` spelling (which
/// names no component) and its `ConfigComponentsResolver` keys.
pub const DEFAULT_MODEL_TYPES: &[(&str, &str)] = &[
    (
        "CompositeErrorHandler.error_handlers",
        "DefaultErrorHandler",
    ),
    ("CursorPagination.decoder", "JsonDecoder"),
    ("DatetimeBasedCursor.end_datetime", "MinMaxDatetime"),
    ("DatetimeBasedCursor.end_time_option", "RequestOption"),
    ("DatetimeBasedCursor.start_datetime", "MinMaxDatetime"),
    ("DatetimeBasedCursor.start_time_option", "RequestOption"),
    ("DeclarativeSource.check", "CheckStream"),
    ("DeclarativeSource.spec", "Spec"),
    ("DeclarativeSource.streams", "DeclarativeStream"),
    ("DeclarativeStream.retriever", "SimpleRetriever"),
    ("DeclarativeStream.schema_loader", "JsonFileSchemaLoader"),
    (
        "DynamicDeclarativeStream.stream_template",
        "DeclarativeStream",
    ),
    (
        "DynamicDeclarativeStream.components_resolver",
        "ConfigComponentResolver",
    ),
    ("HttpComponentsResolver.retriever", "SimpleRetriever"),
    (
        "HttpComponentsResolver.components_mapping",
        "ComponentMappingDefinition",
    ),
    ("ConfigComponentsResolver.stream_config", "StreamConfig"),
    (
        "ConfigComponentsResolver.components_mapping",
        "ComponentMappingDefinition",
    ),
    ("DefaultErrorHandler.response_filters", "HttpResponseFilter"),
    ("DefaultPaginator.decoder", "JsonDecoder"),
    ("DefaultPaginator.page_size_option", "RequestOption"),
    ("DpathExtractor.decoder", "JsonDecoder"),
    ("DpathExtractor.record_expander", "RecordExpander"),
    ("HttpRequester.error_handler", "DefaultErrorHandler"),
    ("ListPartitionRouter.request_option", "RequestOption"),
    ("ParentStreamConfig.request_option", "RequestOption"),
    ("ParentStreamConfig.stream", "DeclarativeStream"),
    ("RecordExpander.parent_fields", "ParentFieldPath"),
    ("RecordSelector.extractor", "DpathExtractor"),
    ("RecordSelector.record_filter", "RecordFilter"),
    ("SimpleRetriever.paginator", "NoPagination"),
    ("SimpleRetriever.record_selector", "RecordSelector"),
    ("SimpleRetriever.requester", "HttpRequester"),
    (
        "SubstreamPartitionRouter.parent_stream_configs",
        "ParentStreamConfig",
    ),
    ("AddFields.fields", "AddedFieldDefinition"),
    (
        "CustomPartitionRouter.parent_stream_configs",
        "ParentStreamConfig",
    ),
    ("DynamicSchemaLoader.retriever", "SimpleRetriever"),
    ("SchemaTypeIdentifier.types_map", "TypesMap"),
];

/// The default `type` of an untyped component that has a `class_name` (a custom component).
pub const CUSTOM_COMPONENT_TYPES: &[(&str, &str)] = &[
    (
        "CompositeErrorHandler.backoff_strategies",
        "CustomBackoffStrategy",
    ),
    ("DeclarativeStream.retriever", "CustomRetriever"),
    ("DeclarativeStream.transformations", "CustomTransformation"),
    (
        "DefaultErrorHandler.backoff_strategies",
        "CustomBackoffStrategy",
    ),
    (
        "DefaultPaginator.pagination_strategy",
        "CustomPaginationStrategy",
    ),
    ("HttpRequester.authenticator", "CustomAuthenticator"),
    ("HttpRequester.error_handler", "CustomErrorHandler"),
    ("RecordSelector.extractor", "CustomRecordExtractor"),
    ("SimpleRetriever.partition_router", "CustomPartitionRouter"),
];

const PARAMETERS_KEY: &str = "$parameters";
/// Deeper trees are refused rather than risking the stack; resolution already caps real ones.
const MAX_DEPTH: usize = 512;

/// Adds default types and propagates `$parameters` through the resolved manifest.
///
/// ```
/// use serde_json::json;
/// let tree = json!({"streams": [{"$parameters": {"name": "users", "path": "/users"},
///     "retriever": {"requester": {"url_base": "https://x"}}}]});
/// let tree = sluice_manifest::propagate::propagate(tree).unwrap();
/// let stream = &tree["streams"][0];
/// assert_eq!(stream["type"], "DeclarativeStream");
/// assert_eq!(stream["name"], "users");
/// assert_eq!(stream["retriever"]["requester"]["type"], "HttpRequester");
/// assert_eq!(stream["retriever"]["requester"]["path"], "/users");
/// ```
pub fn propagate(tree: Value) -> Result<Value, ManifestError> {
    let Value::Object(mut root) = tree else {
        return Err(ManifestError::new(
            ManifestPath::root(),
            ManifestErrorKind::InvalidValue,
            "a manifest must be a mapping of keys to values",
        ));
    };
    if !root.contains_key("type") {
        root.insert("type".to_owned(), json!("DeclarativeSource"));
    }
    let transformer = Transformer {
        use_parent_parameters: false,
    };
    transformer
        .transform("", root, &Map::new(), &ManifestPath::root(), 0)
        .map(Value::Object)
}

/// Runs the transformation on one component given its parent's field and parameters, as the
/// reference does for the streams a dynamic stream resolver generates.
///
/// With `use_parent_parameters`, the parent's parameters win over the component's own.
pub fn propagate_component(
    parent_field: &str,
    component: Map<String, Value>,
    parent_parameters: &Map<String, Value>,
    use_parent_parameters: bool,
) -> Result<Map<String, Value>, ManifestError> {
    Transformer {
        use_parent_parameters,
    }
    .transform(
        parent_field,
        component,
        parent_parameters,
        &ManifestPath::root(),
        0,
    )
}

fn default_type(table: &[(&str, &'static str)], field: &str) -> Option<&'static str> {
    table.iter().find(|(key, _)| *key == field).map(|(_, t)| *t)
}

struct Transformer {
    use_parent_parameters: bool,
}

impl Transformer {
    fn transform(
        &self,
        parent_field: &str,
        mut component: Map<String, Value>,
        parent_parameters: &Map<String, Value>,
        at: &ManifestPath,
        depth: usize,
    ) -> Result<Map<String, Value>, ManifestError> {
        if depth > MAX_DEPTH {
            return Err(ManifestError::new(
                at.clone(),
                ManifestErrorKind::InvalidValue,
                format!("the manifest nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        if !component.contains_key("type") {
            let table = if component.contains_key("class_name") {
                CUSTOM_COMPONENT_TYPES
            } else {
                DEFAULT_MODEL_TYPES
            };
            if let Some(found) = default_type(table, parent_field) {
                component.insert("type".to_owned(), json!(found));
            }
        }

        let own_parameters = match component.shift_remove(PARAMETERS_KEY) {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(ManifestError::new(
                    at.key(PARAMETERS_KEY),
                    ManifestErrorKind::InvalidValue,
                    "`$parameters` must be a mapping",
                ));
            }
        };
        let mut parameters = if self.use_parent_parameters {
            merged(&own_parameters, parent_parameters)
        } else {
            merged(parent_parameters, &own_parameters)
        };

        if is_json_schema(&component) {
            return Ok(component);
        }

        let Some(component_type) = component.get("type").map(type_text) else {
            // Not a component: only typed mappings directly inside it get the parameters.
            let nested: Vec<String> = component
                .iter()
                .filter(|(_, v)| v.get("type").is_some_and(truthy))
                .map(|(k, _)| k.clone())
                .collect();
            for key in nested {
                if let Some(Value::Object(child)) = component.get_mut(&key) {
                    let child = std::mem::take(child);
                    let child =
                        self.transform(parent_field, child, &parameters, &at.key(&key), depth + 1)?;
                    component.insert(key, Value::Object(child));
                }
            }
            return Ok(component);
        };

        // Fields filled from a parameter share the parameter's value in the reference: a list
        // field transformed in place shows up transformed in `$parameters` too.
        let mut filled_from_parameters = Vec::new();
        for (key, value) in &parameters {
            let keep_own = component.get(key).is_some_and(truthy);
            if !keep_own {
                component.insert(key.clone(), value.clone());
                filled_from_parameters.push(key.clone());
            }
        }

        let keys: Vec<String> = component.keys().cloned().collect();
        for key in keys {
            let field_id = format!("{component_type}.{key}");
            let field_at = at.key(&key);
            match component.get_mut(&key) {
                Some(Value::Object(child)) => {
                    let child = std::mem::take(child);
                    let excluded = parameters.shift_remove(&key);
                    let child =
                        self.transform(&field_id, child, &parameters, &field_at, depth + 1)?;
                    component.insert(key.clone(), Value::Object(child));
                    if let Some(excluded) = excluded.filter(truthy) {
                        parameters.insert(key, excluded);
                    }
                }
                Some(Value::Array(items)) => {
                    let mut items = std::mem::take(items);
                    let excluded = parameters.shift_remove(&key);
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Object(element) = item {
                            let element = std::mem::take(element);
                            let element = self.transform(
                                &field_id,
                                element,
                                &parameters,
                                &field_at.index(i),
                                depth + 1,
                            )?;
                            *item = Value::Object(element);
                        }
                    }
                    if let Some(excluded) = excluded.filter(truthy) {
                        let restored = if filled_from_parameters.contains(&key) {
                            Value::Array(items.clone())
                        } else {
                            excluded
                        };
                        parameters.insert(key.clone(), restored);
                    }
                    component.insert(key, Value::Array(items));
                }
                _ => {}
            }
        }

        if !parameters.is_empty() {
            component.insert(PARAMETERS_KEY.to_owned(), Value::Object(parameters));
        }
        Ok(component)
    }
}

/// `{**first, **second}`: the keys of `first` in order, then the new keys of `second`; the values
/// of `second` win.
fn merged(first: &Map<String, Value>, second: &Map<String, Value>) -> Map<String, Value> {
    let mut out = first.clone();
    for (k, v) in second {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Component types are strings; `type: object`, a list of types or a `properties`-like mapping
/// mark a JSON schema.
fn is_json_schema(component: &Map<String, Value>) -> bool {
    match component.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(_) | Value::Object(_)) => true,
        _ => false,
    }
}

/// The type as the reference formats it into `"{type}.{field}"` keys.
fn type_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// Python truthiness of a JSON value.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
