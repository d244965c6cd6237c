//! `QueryProperties`: the properties a request asks the API for, from a static list or fetched
//! once from an endpoint (`PropertiesFromEndpoint`), split into chunks (`PropertyChunking`), one
//! request series per chunk; the records of a page's chunks are merged by a key
//! (`GroupByKeyMergeStrategy`). The page loop that uses it is `stream/chunked.rs`.
//!
//! As in the reference:
//! - the chunk's properties reach requests as `stream_slice.extra_fields.query_properties`, and
//!   the `request_parameters` key holding the component is set to them joined by commas;
//! - with a `property_limit`, a chunk starts with `always_include_properties` (which do not count
//!   towards the limit) and each property counts 1 (`property_count`) or its length plus 3
//!   (`characters`: the comma between properties once URL-encoded, `%2C`); a property that would
//!   exceed the limit starts a new chunk, so a first property longer than the limit gives an empty
//!   (or always-included only) first chunk;
//! - without a `property_limit` there is one chunk, the properties followed by
//!   `always_include_properties`; without `property_chunking`, the always included ones come first;
//! - the merge key is the record's values of the key fields joined by commas: a record whose value
//!   of a key field is missing or falsy (`null`, `0`, `""`, ...) has none and goes on unmerged;
//!   a value that is not a string fails the stream (the reference's join raises).

use crate::EngineError;
use crate::build::Builder;
use crate::stream::{PageReader, RecordGate, Retriever, SelectorHandle};
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};
use sluice_interp::{Context, Template};
use sluice_manifest::{ManifestPath, model};
use sluice_paginate::PageRequestOptions;
use sluice_records::{TransformVariables, Transformation};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// A retriever's `QueryProperties`.
#[derive(Debug)]
pub(crate) struct QueryProperties {
    list: PropertyList,
    always_include: Option<Vec<String>>,
    chunking: Option<PropertyChunking>,
    /// `property_selector` (`JsonSchemaPropertySelector`): only the properties the configured
    /// catalog's schema of the stream has are asked for.
    selector: Option<PropertySelector>,
}

/// A `JsonSchemaPropertySelector`: the properties of the configured stream's JSON schema, after
/// its `transformations` (applied to the properties as to one record). Without a configured
/// catalog (check, discover) every property is asked for, as in the reference.
#[derive(Debug)]
pub(crate) struct PropertySelector {
    transformations: Vec<Transformation>,
    config: Arc<Value>,
    path: ManifestPath,
    /// The configured stream's schema properties, once `read` has given them.
    configured: std::sync::OnceLock<Map<String, Value>>,
}

impl PropertySelector {
    fn selected(&self) -> Result<Option<HashSet<String>>, EngineError> {
        let Some(properties) = self.configured.get() else {
            return Ok(None);
        };
        let empty = Value::Object(Map::new());
        let variables = TransformVariables {
            config: &self.config,
            stream_slice: &Value::Null,
            stream_state: &empty,
        };
        let mut properties = Value::Object(properties.clone());
        for transformation in &self.transformations {
            transformation
                .apply(&mut properties, &variables)
                .map_err(|e| EngineError::config(format!("{}: {e}", self.path)))?;
        }
        Ok(Some(match properties {
            Value::Object(map) => map.into_iter().map(|(name, _)| name).collect(),
            _ => HashSet::new(),
        }))
    }
}

#[derive(Debug)]
enum PropertyList {
    Static(Vec<String>),
    Endpoint(Box<PropertiesFromEndpoint>),
}

/// Properties read from an API endpoint, once per stream.
#[derive(Debug)]
pub(crate) struct PropertiesFromEndpoint {
    /// `property_field_path`, rendered with the config and `$parameters`.
    field_path: Vec<Value>,
    retriever: Retriever,
    fetched: OnceCell<Arc<Vec<String>>>,
}

/// How the properties are split into chunks and how the chunks' records merge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PropertyChunking {
    pub limit_type: model::PropertyLimitType,
    /// `property_limit`; `None` (or 0) gives one chunk.
    pub limit: Option<i64>,
    /// The fields of `GroupByKeyMergeStrategy.key` (`["id"]` without a strategy).
    pub merge_key: Vec<String>,
}

impl QueryProperties {
    /// The component of a SimpleRetriever's requester, if any: a `QueryProperties` among its
    /// `request_parameters`, else its deprecated `fetch_properties_from_endpoint`, else its
    /// `query_properties` (the reference's order). `path` is the requester's.
    pub fn of_requester(
        builder: &Builder<'_>,
        requester: &model::HttpRequester,
        path: &ManifestPath,
    ) -> Result<Option<Self>, EngineError> {
        let in_parameters = match &requester.request_parameters {
            Some(model::RequestParameters::Map(map)) => {
                map.iter().find_map(|(key, value)| match value {
                    model::RequestParameterValue::QueryProperties(qp) => Some((key, qp)),
                    model::RequestParameterValue::String(_) => None,
                })
            }
            _ => None,
        };
        if let Some((key, model)) = in_parameters {
            if requester.fetch_properties_from_endpoint.is_some() {
                return Err(at(
                    path,
                    "PropertiesFromEndpoint should only be specified once per stream, but found in HttpRequester.fetch_properties_from_endpoint and HttpRequester.request_parameters",
                ));
            }
            let at = path.key("request_parameters").key(key);
            return Self::from_model(builder, model, &at).map(Some);
        }
        if let Some(endpoint) = &requester.fetch_properties_from_endpoint {
            let at = path.key("fetch_properties_from_endpoint");
            return Ok(Some(Self {
                list: PropertyList::Endpoint(Box::new(PropertiesFromEndpoint::from_model(
                    builder, endpoint, &at,
                )?)),
                always_include: None,
                chunking: None,
                selector: None,
            }));
        }
        match &requester.query_properties {
            Some(model) => {
                Self::from_model(builder, model, &path.key("query_properties")).map(Some)
            }
            None => Ok(None),
        }
    }

    fn from_model(
        builder: &Builder<'_>,
        model: &model::QueryProperties,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        let selector = match &model.property_selector {
            None => None,
            Some(selector) => {
                let at_selector = path.key("property_selector");
                let transformations = Transformation::list_from_model(
                    selector.transformations.as_deref().unwrap_or_default(),
                    builder.config(),
                    &at_selector.key("transformations"),
                )
                .map_err(|e| EngineError::config(e.to_string()))?;
                Some(PropertySelector {
                    transformations,
                    config: Arc::clone(builder.config()),
                    path: at_selector,
                    configured: std::sync::OnceLock::new(),
                })
            }
        };
        let list = match &model.property_list {
            model::PropertyList::List(list) => PropertyList::Static(list.clone()),
            model::PropertyList::PropertiesFromEndpoint(endpoint) => {
                PropertyList::Endpoint(Box::new(PropertiesFromEndpoint::from_model(
                    builder,
                    endpoint,
                    &path.key("property_list"),
                )?))
            }
        };
        let chunking = model.property_chunking.as_ref().map(|chunking| {
            let merge_key = match chunking.record_merge_strategy.as_ref().map(|s| &s.key) {
                None => vec!["id".to_owned()],
                Some(model::StringOrList::String(key)) => vec![key.clone()],
                Some(model::StringOrList::List(keys)) => keys.clone(),
            };
            PropertyChunking {
                limit_type: chunking.property_limit_type,
                limit: chunking.property_limit,
                merge_key,
            }
        });
        Ok(Self {
            list,
            always_include: model.always_include_properties.clone(),
            chunking,
            selector,
        })
    }

    /// Gives the `property_selector` the configured stream's schema (`read` only).
    pub fn configure(&self, json_schema: &Map<String, Value>) {
        if let Some(selector) = &self.selector {
            let properties = match json_schema.get("properties") {
                Some(Value::Object(properties)) => properties.clone(),
                _ => Map::new(),
            };
            let _ = selector.configured.set(properties);
        }
    }

    /// Whether the records of the chunks are merged by a key (else they go on as read).
    pub fn chunking(&self) -> Option<&PropertyChunking> {
        self.chunking.as_ref()
    }

    /// The chunks of properties, one request series each; fetches the properties from their
    /// endpoint the first time.
    pub async fn chunks(&self) -> Result<Vec<Vec<String>>, EngineError> {
        let fetched;
        let fields: &[String] = match &self.list {
            PropertyList::Static(list) => list,
            PropertyList::Endpoint(endpoint) => {
                fetched = endpoint.properties().await?;
                &fetched
            }
        };
        let selected = match &self.selector {
            Some(selector) => selector.selected()?,
            None => None,
        };
        Ok(chunks(
            fields,
            self.always_include.as_deref(),
            self.chunking.as_ref(),
            selected.as_ref(),
        ))
    }
}

impl PropertiesFromEndpoint {
    fn from_model(
        builder: &Builder<'_>,
        model: &model::PropertiesFromEndpoint,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let config = builder.config();
        let ctx = Context::new().config(&**config).parameters(&parameters);
        let field_path = model
            .property_field_path
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let at = path.key("property_field_path").index(i);
                let template = Template::new(field).map_err(|e| self::at(&at, e))?;
                template
                    .render_string(&ctx)
                    .map(Value::String)
                    .map_err(|e| self::at(&at, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let retriever = match &model.retriever {
            model::SimpleOrCustomRetriever::SimpleRetriever(retriever) => builder
                .simple_retriever(
                    retriever,
                    &[],
                    &Map::new(),
                    &path.key("retriever"),
                    &path.key("retriever"),
                )?,
            model::SimpleOrCustomRetriever::CustomRetriever(_) => {
                return Err(at(
                    &path.key("retriever"),
                    "custom retrievers cannot run in sluice",
                ));
            }
        };
        Ok(Self {
            field_path,
            retriever,
            fetched: OnceCell::new(),
        })
    }

    /// Every record of the endpoint (one unpartitioned read, all pages), each turned into a
    /// property by `property_field_path`; read once, however many slices ask.
    async fn properties(&self) -> Result<Arc<Vec<String>>, EngineError> {
        let fetched = self.fetched.get_or_try_init(|| self.read()).await?;
        Ok(Arc::clone(fetched))
    }

    /// Reads the endpoint. Boxed: a page loop reading these pages sits inside the page loop of
    /// the stream that asks for them.
    fn read(&self) -> LocalBoxFuture<'_, Result<Arc<Vec<String>>, EngineError>> {
        Box::pin(async move {
            let mut reader = PageReader::new(
                &self.retriever,
                SelectorHandle::Borrowed(&self.retriever.selector),
                Value::Object(Map::new()),
                PageRequestOptions::default(),
            );
            let mut properties = Vec::new();
            while let Some(page) = reader.next_page(RecordGate::default()).await? {
                for record in page {
                    properties.push(property_of(&record.into_value(), &self.field_path)?);
                }
            }
            Ok(Arc::new(properties))
        })
    }
}

/// The property a record of the properties endpoint names: the value at `path`, as Python's
/// `str()` writes it (`[]` when there is none, the reference's default).
fn property_of(record: &Value, path: &[Value]) -> Result<String, EngineError> {
    match sluice_records::paths::get(record, path) {
        Ok(Some(Value::String(text))) => Ok(text.clone()),
        Ok(Some(value)) => Ok(sluice_interp::python_str(value)),
        Ok(None) => Ok("[]".to_owned()),
        Err(_) => Err(EngineError::system(format!(
            "PropertiesFromEndpoint: property_field_path {} matches more than one value",
            Value::Array(path.to_vec())
        ))),
    }
}

/// Splits `fields` into the chunks requested one after the other; `configured` (the properties
/// the configured catalog selects) leaves out the others, except where the reference does not
/// look at it (chunking without a limit).
pub(crate) fn chunks(
    fields: &[String],
    always_include: Option<&[String]>,
    chunking: Option<&PropertyChunking>,
    configured: Option<&HashSet<String>>,
) -> Vec<Vec<String>> {
    let always = always_include.unwrap_or_default();
    let selected = |field: &&String| configured.is_none_or(|c| c.contains(*field));
    let Some(chunking) = chunking else {
        // One chunk: the always included properties first.
        return vec![
            always
                .iter()
                .chain(fields.iter().filter(selected))
                .cloned()
                .collect(),
        ];
    };
    let limit = match chunking.limit {
        None | Some(0) => {
            // One chunk, the always included properties last (and the catalog not consulted).
            return vec![fields.iter().chain(always).cloned().collect()];
        }
        Some(limit) => limit,
    };
    let mut out = Vec::new();
    let mut current: Vec<String> = always.to_vec();
    let mut size: i64 = 0;
    for field in fields.iter().filter(selected) {
        let field_size = match chunking.limit_type {
            // The `,` between two properties is sent URL-encoded: `%2C`.
            model::PropertyLimitType::Characters => field.chars().count() as i64 + 3,
            model::PropertyLimitType::PropertyCount => 1,
        };
        if size + field_size > limit {
            out.push(std::mem::replace(&mut current, always.to_vec()));
            size = 0;
        }
        current.push(field.clone());
        size += field_size;
    }
    out.push(current);
    out
}

impl PropertyChunking {
    /// The key a record of a chunk merges by, `None` when the record has none (it then goes on
    /// unmerged). Fails on a key value that is not a string, as the reference's join does.
    pub fn merge_key(&self, record: &Value) -> Result<Option<String>, EngineError> {
        let mut values = Vec::with_capacity(self.merge_key.len());
        for field in &self.merge_key {
            match record.get(field) {
                Some(value) if is_truthy(value) => values.push(value),
                _ => return Ok(None),
            }
        }
        let mut key = String::new();
        for (i, value) in values.iter().enumerate() {
            let Value::String(text) = value else {
                return Err(EngineError::system(format!(
                    "GroupByKeyMergeStrategy: sequence item {i}: expected str instance, {} found (the merge key {:?} must be a string)",
                    python_type(value),
                    self.merge_key[i]
                )));
            };
            if i > 0 {
                key.push(',');
            }
            key.push_str(text);
        }
        Ok(Some(key))
    }
}

/// Records of one page's chunks merged by key, in the order their keys were first seen.
#[derive(Debug, Default)]
pub(crate) struct MergedRecords {
    records: Vec<Map<String, Value>>,
    index: std::collections::HashMap<String, usize>,
}

impl MergedRecords {
    /// Merges `record` into the one with the same key.
    pub fn add(&mut self, key: String, record: Value) {
        let Value::Object(record) = record else {
            return;
        };
        match self.index.get(&key) {
            Some(&i) => deep_merge(&mut self.records[i], record),
            None => {
                self.index.insert(key, self.records.len());
                // Merged into an empty record, as the reference does: the same result.
                self.records.push(record);
            }
        }
    }

    /// The merged records.
    pub fn into_records(self) -> impl Iterator<Item = Value> {
        self.records.into_iter().map(Value::Object)
    }
}

/// Merges `source` into `target`: objects on both sides merge, any other value of `source`
/// replaces `target`'s (in its place, when `target` has the key).
pub(crate) fn deep_merge(target: &mut Map<String, Value>, source: Map<String, Value>) {
    for (key, value) in source {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(nested)) => deep_merge(existing, nested),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn at(path: &ManifestPath, message: impl std::fmt::Display) -> EngineError {
    EngineError::in_manifest(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn chunking(limit_type: model::PropertyLimitType, limit: Option<i64>) -> PropertyChunking {
        PropertyChunking {
            limit_type,
            limit,
            merge_key: strings(&["id"]),
        }
    }

    #[test]
    fn property_count_splits_into_chunks_of_the_limit() {
        let fields = strings(&["a", "b", "c", "d", "e"]);
        let by_two = chunking(model::PropertyLimitType::PropertyCount, Some(2));
        assert_eq!(
            chunks(&fields, None, Some(&by_two), None),
            vec![strings(&["a", "b"]), strings(&["c", "d"]), strings(&["e"])]
        );
    }

    #[test]
    fn characters_count_each_property_and_its_encoded_delimiter() {
        // Each property counts its length plus 3 (`%2C`): "abcd" 7, "ef" 5, "g" 4.
        let fields = strings(&["abcd", "ef", "g"]);
        let twelve = chunking(model::PropertyLimitType::Characters, Some(12));
        assert_eq!(
            chunks(&fields, None, Some(&twelve), None),
            vec![strings(&["abcd", "ef"]), strings(&["g"])]
        );
        let eleven = chunking(model::PropertyLimitType::Characters, Some(11));
        assert_eq!(
            chunks(&fields, None, Some(&eleven), None),
            vec![strings(&["abcd"]), strings(&["ef", "g"])]
        );
        // Characters are counted, not bytes.
        let seven = chunking(model::PropertyLimitType::Characters, Some(7));
        assert_eq!(
            chunks(&strings(&["éééé", "x"]), None, Some(&seven), None),
            vec![strings(&["éééé"]), strings(&["x"])]
        );
    }

    #[test]
    fn a_property_longer_than_the_limit_starts_after_an_empty_chunk() {
        let fields = strings(&["abcdefgh", "b"]);
        let five = chunking(model::PropertyLimitType::Characters, Some(5));
        assert_eq!(
            chunks(&fields, None, Some(&five), None),
            vec![vec![], strings(&["abcdefgh"]), strings(&["b"])]
        );
    }

    #[test]
    fn always_included_properties_lead_every_chunk_without_counting() {
        let fields = strings(&["a", "b", "c"]);
        let always = strings(&["id", "updated"]);
        let by_two = chunking(model::PropertyLimitType::PropertyCount, Some(2));
        assert_eq!(
            chunks(&fields, Some(&always), Some(&by_two), None),
            vec![
                strings(&["id", "updated", "a", "b"]),
                strings(&["id", "updated", "c"])
            ]
        );
        // Without a limit: one chunk, always included last; without chunking: first.
        let unlimited = chunking(model::PropertyLimitType::PropertyCount, None);
        assert_eq!(
            chunks(&fields, Some(&always), Some(&unlimited), None),
            vec![strings(&["a", "b", "c", "id", "updated"])]
        );
        assert_eq!(
            chunks(&fields, Some(&always), None, None),
            vec![strings(&["id", "updated", "a", "b", "c"])]
        );
        // No properties at all still make one request.
        assert_eq!(
            chunks(&[], Some(&always), Some(&by_two), None),
            vec![always.clone()]
        );
    }

    #[test]
    fn configured_properties_filter_chunks_except_without_a_limit() {
        let fields = strings(&["a", "b", "c"]);
        let configured: HashSet<String> = strings(&["a", "c"]).into_iter().collect();
        let by_one = chunking(model::PropertyLimitType::PropertyCount, Some(1));
        assert_eq!(
            chunks(&fields, None, Some(&by_one), Some(&configured)),
            vec![strings(&["a"]), strings(&["c"])]
        );
        assert_eq!(
            chunks(&fields, None, None, Some(&configured)),
            vec![strings(&["a", "c"])]
        );
        let unlimited = chunking(model::PropertyLimitType::PropertyCount, None);
        assert_eq!(
            chunks(&fields, None, Some(&unlimited), Some(&configured)),
            vec![fields.clone()]
        );
    }

    #[test]
    fn merge_key_joins_the_key_fields_and_skips_falsy_values() {
        let composite = PropertyChunking {
            merge_key: strings(&["parent_id", "day"]),
            ..chunking(model::PropertyLimitType::PropertyCount, Some(1))
        };
        let key = |record: Value| composite.merge_key(&record);
        assert_eq!(
            key(json!({"parent_id": "p", "day": "d"})).unwrap(),
            Some("p,d".into())
        );
        assert_eq!(key(json!({"parent_id": "p"})).unwrap(), None);
        assert_eq!(key(json!({"parent_id": "", "day": "d"})).unwrap(), None);
        assert_eq!(key(json!({"parent_id": "p", "day": 0})).unwrap(), None);
        // A string key is required, as the reference's join requires one.
        assert!(key(json!({"parent_id": "p", "day": 5})).is_err());
    }

    #[test]
    fn records_merge_deeply_in_the_order_their_keys_appear() {
        let mut merged = MergedRecords::default();
        merged.add(
            "1".into(),
            json!({"id": "1", "a": 1, "nested": {"x": 1}, "list": [1]}),
        );
        merged.add("2".into(), json!({"id": "2", "a": 2}));
        merged.add(
            "1".into(),
            json!({"id": "1", "b": 1, "nested": {"y": 2}, "list": [2]}),
        );
        let records: Vec<Value> = merged.into_records().collect();
        assert_eq!(
            records,
            vec![
                json!({"id": "1", "a": 1, "nested": {"x": 1, "y": 2}, "list": [2], "b": 1}),
                json!({"id": "2", "a": 2}),
            ]
        );
        // Key order: the first chunk's fields, then the new ones.
        let keys: Vec<&String> = records[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "a", "nested", "list", "b"]);
    }

    #[test]
    fn endpoint_properties_read_the_field_path_as_python_str() {
        let path = vec![json!("name")];
        assert_eq!(
            property_of(&json!({"name": "email"}), &path).unwrap(),
            "email"
        );
        assert_eq!(property_of(&json!({"name": 5}), &path).unwrap(), "5");
        assert_eq!(property_of(&json!({"other": 5}), &path).unwrap(), "[]");
    }
}
