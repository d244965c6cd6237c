//! Partition routers: a list of values, the records of a parent stream, groups of partitions and
//! the cartesian product of several routers, as the reference builds their slices.

use crate::SliceError;
use crate::slice::StreamSlice;
use serde_json::{Map, Value};
use sluice_interp::{Context, Template, python_bool, python_str};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use sluice_paginate::{PageRequestOptions, RequestOption};
use std::collections::HashSet;

fn render_text(
    source: &str,
    config: &Value,
    parameters: &Value,
    path: &ManifestPath,
) -> Result<Value, SliceError> {
    let template = Template::new(source).map_err(|e| SliceError::invalid(path, e.to_string()))?;
    template
        .render(&Context::new().config(config).parameters(parameters))
        .map_err(|e| SliceError::invalid(path, e.to_string()))
}

fn render_string(
    source: &str,
    config: &Value,
    parameters: &Value,
    path: &ManifestPath,
) -> Result<String, SliceError> {
    Ok(match render_text(source, config, parameters, path)? {
        Value::String(text) => text,
        other => python_str(&other),
    })
}

/// A `RequestOption` built at `path`.
pub(crate) fn request_option(
    option: Option<&model::RequestOption>,
    config: &Value,
    path: &ManifestPath,
) -> Result<Option<RequestOption>, SliceError> {
    option
        .map(|o| {
            RequestOption::from_model(o, config, path)
                .map_err(|e| SliceError::invalid(path, e.to_string()))
        })
        .transpose()
}

fn parameters_of(parameters: Option<&Map<String, Value>>) -> Value {
    Value::Object(parameters.cloned().unwrap_or_default())
}

/// A `ListPartitionRouter`: one partition per value.
#[derive(Debug, Clone)]
pub struct ListRouter {
    /// The partition key (`cursor_field`).
    pub key: String,
    values: Vec<Value>,
    request_option: Option<RequestOption>,
}

impl ListRouter {
    /// Builds the router; `values` given as a template are evaluated once, with the config.
    pub fn from_model(
        model: &model::ListPartitionRouter,
        config: &Value,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        let parameters = parameters_of(model.parameters.as_ref());
        let values = match &model.values {
            model::StringOrList::List(values) => {
                values.iter().map(|v| Value::String(v.clone())).collect()
            }
            model::StringOrList::String(source) => {
                match render_text(source, config, &parameters, &path.key("values"))? {
                    Value::Array(values) => values,
                    other => {
                        return Err(SliceError::invalid(
                            &path.key("values"),
                            format!("the values must evaluate to a list, got {other}"),
                        ));
                    }
                }
            }
        };
        Ok(Self {
            key: render_string(
                &model.cursor_field,
                config,
                &parameters,
                &path.key("cursor_field"),
            )?,
            values,
            request_option: request_option(
                model.request_option.as_ref(),
                config,
                &path.key("request_option"),
            )?,
        })
    }

    /// Whether the router puts its value into requests.
    pub fn has_request_option(&self) -> bool {
        self.request_option.is_some()
    }

    /// The partitions, in the order of the values.
    pub fn partitions(&self) -> Vec<StreamSlice> {
        self.values
            .iter()
            .map(|value| {
                let mut partition = Map::new();
                partition.insert(self.key.clone(), value.clone());
                StreamSlice::partition(partition)
            })
            .collect()
    }

    /// What the router adds to a request of `slice`: its value, when truthy in Python (the
    /// reference drops 0 and "", but sends "0").
    pub fn request_options(&self, slice: &StreamSlice, options: &mut PageRequestOptions) {
        if let (Some(option), Some(value)) = (&self.request_option, slice.get(&self.key)) {
            if python_bool(value) {
                option.inject(options, value);
            }
        }
    }
}

/// A `ParentStreamConfig` of a `SubstreamPartitionRouter`, less the parent stream itself, which
/// the engine builds and reads: how a parent record becomes a child partition.
#[derive(Debug, Clone)]
pub struct ParentConfig {
    /// The parent stream's name.
    pub parent_name: String,
    parent_key: Vec<String>,
    /// The child partition's key for the parent's value.
    pub partition_field: String,
    request_option: Option<RequestOption>,
    /// The parent's state is kept in the child's (`incremental_dependency`).
    pub incremental_dependency: bool,
    extra_fields: Vec<Vec<String>>,
    /// Where the child's first page sits inside the parent record (`lazy_read_pointer`).
    lazy_read_pointer: Vec<String>,
}

/// The extra field that carries a child's first page, taken from its parent record.
pub const CHILD_RESPONSE: &str = "child_response";

impl ParentConfig {
    /// Builds the parent config at `path`; `parent_name` is the parent stream's name.
    pub fn from_model(
        model: &model::ParentStreamConfig,
        parent_name: &str,
        config: &Value,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        let parameters = parameters_of(model.parameters.as_ref());
        let lazy_read_pointer = model
            .lazy_read_pointer
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, part)| {
                let at = path.key("lazy_read_pointer").index(i);
                if part.contains('*') {
                    return Err(SliceError::invalid(
                        &at,
                        "The '*' wildcard in 'lazy_read_pointer' is not supported — only direct paths are allowed.",
                    ));
                }
                render_string(part, config, &parameters, &at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let parent_key = render_string(
            &model.parent_key,
            config,
            &parameters,
            &path.key("parent_key"),
        )?;
        let extra_fields = model
            .extra_fields
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, field)| {
                field
                    .iter()
                    .enumerate()
                    .map(|(j, part)| {
                        render_string(
                            part,
                            config,
                            &parameters,
                            &path.key("extra_fields").index(i).index(j),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            parent_name: parent_name.to_owned(),
            parent_key: parent_key.split('/').map(str::to_owned).collect(),
            partition_field: render_string(
                &model.partition_field,
                config,
                &parameters,
                &path.key("partition_field"),
            )?,
            request_option: request_option(
                model.request_option.as_ref(),
                config,
                &path.key("request_option"),
            )?,
            incremental_dependency: model.incremental_dependency.unwrap_or(false),
            extra_fields,
            lazy_read_pointer,
        })
    }

    /// The child partition of a parent record read in the parent partition `parent_partition`;
    /// `None` when the record has no (or a null) parent key.
    pub fn child_slice(
        &self,
        record: &Value,
        parent_partition: &Map<String, Value>,
    ) -> Option<StreamSlice> {
        let value = lookup(record, &self.parent_key).filter(|v| !v.is_null())?;
        let mut partition = Map::new();
        partition.insert(self.partition_field.clone(), value.clone());
        partition.insert(
            "parent_slice".to_owned(),
            Value::Object(parent_partition.clone()),
        );
        let mut extra_fields = Map::new();
        if self.is_lazy() {
            let embedded = lookup(record, &self.lazy_read_pointer)
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            extra_fields.insert(CHILD_RESPONSE.to_owned(), embedded);
        }
        for path in &self.extra_fields {
            let value = lookup(record, path).cloned().unwrap_or(Value::Null);
            extra_fields.insert(path.join("."), value);
        }
        Some(StreamSlice {
            partition,
            cursor_slice: Map::new(),
            extra_fields,
        })
    }

    /// Whether the child's first page is read from the parent record (`lazy_read_pointer`).
    pub fn is_lazy(&self) -> bool {
        !self.lazy_read_pointer.is_empty()
    }

    /// Whether the parent's value goes into the child's requests.
    pub fn has_request_option(&self) -> bool {
        self.request_option.is_some()
    }

    /// What the parent adds to a child's request: the partition's value, when truthy in Python.
    pub fn request_options(&self, slice: &StreamSlice, options: &mut PageRequestOptions) {
        if let (Some(option), Some(value)) =
            (&self.request_option, slice.get(&self.partition_field))
        {
            if python_bool(value) {
                option.inject(options, value);
            }
        }
    }
}

/// A value at a path of object keys (list indexes by number), as dpath reads one.
fn lookup<'v>(record: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(record, |current, key| match current {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A `UnionPartitionRouter`'s own part: the partitions of its child routers (built and read by
/// the caller), each partition value once, normalised to `{partition_field: value}` with the
/// child's other partition keys moved into the slice's extra fields.
#[derive(Debug, Clone)]
pub struct UnionRouter {
    /// The one partition key every child emits (`partition_field`, rendered when built).
    pub field: String,
    /// The values given so far, as JSON text: a string `"1"` and a number `1` differ, as in
    /// Python (where `1` and `1.0` would not, a difference no API's ids show).
    seen: HashSet<String>,
}

impl UnionRouter {
    /// Builds the union's own part; `child_fields` are the partition keys its children are
    /// known to emit, which must all be the union's.
    pub fn from_model(
        model: &model::UnionPartitionRouter,
        child_fields: &[(String, &'static str)],
        config: &Value,
        stream: &str,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        if model.partition_routers.len() < 2 {
            return Err(SliceError::invalid(
                &path.key("partition_routers"),
                format!(
                    "UnionPartitionRouter for stream {stream} needs at least 2 child partition routers"
                ),
            ));
        }
        let parameters = parameters_of(model.parameters.as_ref());
        let field = render_string(
            &model.partition_field,
            config,
            &parameters,
            &path.key("partition_field"),
        )?;
        if let Some((child_field, child_type)) = child_fields.iter().find(|(f, _)| *f != field) {
            return Err(SliceError::invalid(
                path,
                format!(
                    "UnionPartitionRouter expects all child partition routers to emit the partition field '{field}', but a {child_type} child emits '{child_field}'."
                ),
            ));
        }
        Ok(Self {
            field,
            seen: HashSet::new(),
        })
    }

    /// Takes one partition of a child router: the union's partition, or `None` for a value
    /// an earlier partition already gave.
    pub fn admit(&mut self, slice: StreamSlice) -> Result<Option<StreamSlice>, SliceError> {
        let StreamSlice {
            mut partition,
            extra_fields,
            ..
        } = slice;
        let Some(value) = partition.remove(&self.field) else {
            return Err(SliceError::Runtime(format!(
                "UnionPartitionRouter expects all child partition routers to emit the partition field '{}'. Got {}",
                self.field,
                python_str(&Value::Object(partition))
            )));
        };
        if matches!(value, Value::Object(_) | Value::Array(_)) {
            return Err(SliceError::Runtime(format!(
                "UnionPartitionRouter can only deduplicate hashable partition values. Got unhashable value {} for partition field '{}'.",
                python_str(&value),
                self.field
            )));
        }
        if !self.seen.insert(value.to_string()) {
            return Ok(None);
        }
        let mut extra = extra_fields;
        extra.extend(partition);
        let mut normalised = Map::new();
        normalised.insert(self.field.clone(), value);
        Ok(Some(StreamSlice {
            partition: normalised,
            cursor_slice: Map::new(),
            extra_fields: extra,
        }))
    }
}

/// A `GroupingPartitionRouter`: batches of the underlying router's partitions.
#[derive(Debug, Clone)]
pub struct GroupingRouter {
    group_size: usize,
    deduplicate: bool,
    batch: Vec<StreamSlice>,
    seen: HashSet<String>,
    path: ManifestPath,
}

impl GroupingRouter {
    /// Builds the grouping (the underlying router is built by the caller).
    pub fn from_model(
        model: &model::GroupingPartitionRouter,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        let group_size = usize::try_from(model.group_size)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                SliceError::invalid(
                    &path.key("group_size"),
                    format!(
                        "Group size must be greater than 0, got {}",
                        model.group_size
                    ),
                )
            })?;
        Ok(Self {
            group_size,
            deduplicate: model.deduplicate.unwrap_or(true),
            batch: Vec::new(),
            seen: HashSet::new(),
            path: path.clone(),
        })
    }

    /// Takes one partition of the underlying router; gives a group when one is full.
    pub fn push(&mut self, partition: StreamSlice) -> Result<Option<StreamSlice>, SliceError> {
        let keys: Vec<&String> = partition
            .partition
            .keys()
            .filter(|k| *k != "parent_slice")
            .collect();
        let [key] = keys.as_slice() else {
            return Err(SliceError::invalid(
                &self.path,
                format!(
                    "GroupingPartitionRouter expects a single partition key-value pair. Got {}",
                    Value::Object(partition.partition.clone())
                ),
            ));
        };
        if self.deduplicate {
            let seen_key = partition.partition[key.as_str()].to_string();
            if !self.seen.insert(seen_key) {
                return Ok(None);
            }
        }
        self.batch.push(partition);
        if self.batch.len() == self.group_size {
            return Ok(Some(self.group()));
        }
        Ok(None)
    }

    /// The last, partial group, once the underlying router is done.
    pub fn finish(&mut self) -> Option<StreamSlice> {
        (!self.batch.is_empty()).then(|| self.group())
    }

    fn group(&mut self) -> StreamSlice {
        let batch = std::mem::take(&mut self.batch);
        let mut partition = Map::new();
        if let Some(first) = batch.first() {
            for key in first.partition.keys() {
                let values = batch
                    .iter()
                    .map(|p| p.partition.get(key).cloned().unwrap_or(Value::Null))
                    .collect();
                partition.insert(key.clone(), Value::Array(values));
            }
        }
        let mut extra_fields = Map::new();
        for slice in &batch {
            for key in slice.extra_fields.keys() {
                if !extra_fields.contains_key(key) {
                    let values = batch
                        .iter()
                        .map(|p| p.extra_fields.get(key).cloned().unwrap_or(Value::Null))
                        .collect();
                    extra_fields.insert(key.clone(), Value::Array(values));
                }
            }
        }
        StreamSlice {
            partition,
            cursor_slice: Map::new(),
            extra_fields,
        }
    }
}

/// The cartesian product of several routers' partitions; on a shared key the first router wins.
pub fn cartesian_product(routers: &[Vec<StreamSlice>]) -> Vec<StreamSlice> {
    let mut product = vec![StreamSlice::default()];
    for partitions in routers {
        let mut next = Vec::with_capacity(product.len() * partitions.len());
        for prefix in &product {
            for partition in partitions {
                let mut combined = prefix.clone();
                for (key, value) in &partition.partition {
                    combined
                        .partition
                        .entry(key.clone())
                        .or_insert_with(|| value.clone());
                }
                for (key, value) in &partition.extra_fields {
                    combined
                        .extra_fields
                        .entry(key.clone())
                        .or_insert_with(|| value.clone());
                }
                next.push(combined);
            }
        }
        product = next;
    }
    product
}

/// `LegacyToPerPartitionStateMigration`: `{"<id>": {"<cursor_field>": v}}` becomes per-partition
/// state keyed by the parent's `partition_field`. States that are not of that shape are kept.
pub fn migrate_legacy_to_per_partition(
    state: &Map<String, Value>,
    partition_field: &str,
    cursor_field: &str,
) -> Option<Map<String, Value>> {
    if state.is_empty() || state.contains_key("states") {
        return None;
    }
    let legacy = state.values().all(|value| match value {
        Value::Object(cursor) => cursor.len() == 1 && cursor.contains_key(cursor_field),
        _ => false,
    });
    if !legacy {
        return None;
    }
    let states = state
        .iter()
        .map(|(key, cursor)| {
            let mut partition = Map::new();
            partition.insert(partition_field.to_owned(), Value::String(key.clone()));
            let mut entry = Map::new();
            entry.insert("partition".to_owned(), Value::Object(partition));
            entry.insert("cursor".to_owned(), cursor.clone());
            Value::Object(entry)
        })
        .collect();
    let mut migrated = Map::new();
    migrated.insert("states".to_owned(), Value::Array(states));
    Some(migrated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn union(node: Value) -> Result<UnionRouter, SliceError> {
        use sluice_manifest::model::FromNode;
        let model = model::UnionPartitionRouter::from_node(&node, &ManifestPath::root()).unwrap();
        let fields = [("repository".to_owned(), "ListPartitionRouter")];
        UnionRouter::from_model(&model, &fields, &json!({}), "issues", &ManifestPath::root())
    }

    #[test]
    fn a_union_gives_each_value_once_with_other_keys_as_extra_fields() {
        let routers = json!([{"type": "ListPartitionRouter", "cursor_field": "repository", "values": ["a"]},
                             {"type": "ListPartitionRouter", "cursor_field": "repository", "values": ["b"]}]);
        let mut router = union(
            json!({"type": "UnionPartitionRouter", "partition_field": "repository",
                                      "partition_routers": routers}),
        )
        .unwrap();
        let from_parent = StreamSlice {
            partition: object(json!({"repository": "a", "parent_slice": {"org": 1}})),
            extra_fields: object(json!({"name": "n"})),
            ..StreamSlice::default()
        };
        let admitted = router.admit(from_parent).unwrap().unwrap();
        assert_eq!(admitted.partition, object(json!({"repository": "a"})));
        assert_eq!(
            admitted.extra_fields,
            object(json!({"name": "n", "parent_slice": {"org": 1}}))
        );
        let again = StreamSlice::partition(object(json!({"repository": "a"})));
        assert_eq!(router.admit(again).unwrap(), None);
        // A number is another value than the string of its digits.
        let number = StreamSlice::partition(object(json!({"repository": 1})));
        assert!(router.admit(number.clone()).unwrap().is_some());
        assert!(
            router
                .admit(StreamSlice::partition(object(json!({"repository": "1"}))))
                .unwrap()
                .is_some()
        );
        assert_eq!(router.admit(number).unwrap(), None);

        let missing = router.admit(StreamSlice::partition(object(json!({"repo": "x"}))));
        assert!(missing.unwrap_err().to_string().contains(
            "expects all child partition routers to emit the partition field 'repository'. Got {'repo': 'x'}"
        ));
        let unhashable = router.admit(StreamSlice::partition(object(json!({"repository": ["x"]}))));
        assert!(
            unhashable
                .unwrap_err()
                .to_string()
                .contains("Got unhashable value ['x']")
        );
    }

    #[test]
    fn a_union_needs_children_emitting_its_field() {
        // (Fewer than two children are refused by the model, as by the schema.)
        let other_field = union(
            json!({"type": "UnionPartitionRouter", "partition_field": "repo",
            "partition_routers": [{"type": "ListPartitionRouter", "cursor_field": "repository", "values": ["a"]},
                                  {"type": "ListPartitionRouter", "cursor_field": "repository", "values": ["b"]}]}),
        );
        assert!(other_field.unwrap_err().to_string().contains(
            "expects all child partition routers to emit the partition field 'repo', but a ListPartitionRouter child emits 'repository'."
        ));
    }

    #[test]
    fn a_list_value_of_zero_text_is_sent_and_an_empty_one_is_not() {
        use sluice_manifest::model::FromNode;
        let node = json!({
            "type": "ListPartitionRouter",
            "cursor_field": "region",
            "values": ["0", "", "1"],
            "request_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "region"}
        });
        let model = model::ListPartitionRouter::from_node(&node, &ManifestPath::root()).unwrap();
        let router = ListRouter::from_model(&model, &json!({}), &ManifestPath::root()).unwrap();
        let sent: Vec<Vec<(String, String)>> = router
            .partitions()
            .iter()
            .map(|slice| {
                let mut options = PageRequestOptions::default();
                router.request_options(slice, &mut options);
                options.query
            })
            .collect();
        let query = |value: &str| vec![("region".to_owned(), value.to_owned())];
        assert_eq!(sent, vec![query("0"), vec![], query("1")]);
    }

    #[test]
    fn product_merges_partitions_first_router_winning() {
        let a = vec![
            StreamSlice::partition(object(json!({"x": 1, "k": "a"}))),
            StreamSlice::partition(object(json!({"x": 2, "k": "a"}))),
        ];
        let b = vec![StreamSlice::partition(object(json!({"y": 1, "k": "b"})))];
        let product = cartesian_product(&[a, b]);
        assert_eq!(product.len(), 2);
        assert_eq!(
            Value::Object(product[1].partition.clone()),
            json!({"x": 2, "k": "a", "y": 1})
        );
    }

    #[test]
    fn grouping_batches_and_deduplicates() {
        let model = model::GroupingPartitionRouter {
            group_size: 2,
            underlying_partition_router: model::UnderlyingPartitionRouter::ListPartitionRouter(
                Box::new(model::ListPartitionRouter {
                    cursor_field: "id".into(),
                    values: model::StringOrList::List(vec![]),
                    request_option: None,
                    parameters: None,
                }),
            ),
            deduplicate: None,
            parameters: None,
        };
        let mut grouping = GroupingRouter::from_model(&model, &ManifestPath::root()).unwrap();
        let slice = |id: i64| StreamSlice::partition(object(json!({"id": id})));
        assert_eq!(grouping.push(slice(1)).unwrap(), None);
        assert_eq!(grouping.push(slice(1)).unwrap(), None);
        let group = grouping.push(slice(2)).unwrap().unwrap();
        assert_eq!(Value::Object(group.partition), json!({"id": [1, 2]}));
        assert_eq!(grouping.push(slice(3)).unwrap(), None);
        assert_eq!(
            Value::Object(grouping.finish().unwrap().partition),
            json!({"id": [3]})
        );
    }

    #[test]
    fn parent_records_without_the_key_give_no_partition() {
        let config = ParentConfig {
            parent_name: "parents".into(),
            parent_key: vec!["owner".into(), "id".into()],
            partition_field: "owner_id".into(),
            request_option: None,
            incremental_dependency: false,
            extra_fields: vec![vec!["name".into()]],
            lazy_read_pointer: Vec::new(),
        };
        let slice = config
            .child_slice(&json!({"owner": {"id": 7}, "name": "n"}), &Map::new())
            .unwrap();
        assert_eq!(
            Value::Object(slice.partition),
            json!({"owner_id": 7, "parent_slice": {}})
        );
        assert_eq!(Value::Object(slice.extra_fields), json!({"name": "n"}));
        assert!(
            config
                .child_slice(&json!({"owner": {"id": null}}), &Map::new())
                .is_none()
        );
        assert!(
            config
                .child_slice(&json!({"name": "x"}), &Map::new())
                .is_none()
        );
    }

    #[test]
    fn legacy_states_become_per_partition() {
        let state = object(json!({"13": {"updated_at": "2024-01-01"}}));
        let migrated = migrate_legacy_to_per_partition(&state, "parent_id", "updated_at").unwrap();
        assert_eq!(
            Value::Object(migrated),
            json!({"states": [{"partition": {"parent_id": "13"}, "cursor": {"updated_at": "2024-01-01"}}]})
        );
        assert!(
            migrate_legacy_to_per_partition(&object(json!({"updated_at": "x"})), "p", "updated_at")
                .is_none()
        );
    }
}
