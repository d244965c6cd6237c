//! `RecordExpander`: one record per item of a nested array of each extracted record.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};
use sluice_interp::{Context, Template, is_truthy, python_str};
use sluice_manifest::{ManifestPath, model};

use crate::dpath::{self, Segment, parse_python_int};
use crate::error::{BuildError, SelectError};
use crate::extract::render_path;

/// The reference's RecordExpander (without `truncated_list_retriever`, which needs a retriever).
#[derive(Debug)]
pub struct RecordExpander {
    expand_path: Vec<Segment>,
    remain_original_record: bool,
    merge_parent: bool,
    emit_parent_when_empty: bool,
    parent_fields: Vec<ParentField>,
    truncation_indicator: Option<Vec<Segment>>,
    /// Whether a `truncated_list_retriever` fetches the complete list of a truncated record
    /// (the engine runs it; see [`TruncatedLists`]).
    fetches_truncated: bool,
    warned_truncation: AtomicBool,
    warned_incomplete_fetch: AtomicBool,
}

/// The complete lists of a page's truncated records, fetched by the engine with the expander's
/// `truncated_list_retriever`. A page is extracted twice: once [`collecting`](Self::collecting)
/// the truncated records, whose lists the engine then fetches, and once
/// [`serving`](Self::serving) those lists, in the same order, to the expander.
#[derive(Debug)]
pub struct TruncatedLists {
    collecting: bool,
    wanted: RefCell<Vec<Value>>,
    lists: RefCell<VecDeque<Vec<Value>>>,
}

impl TruncatedLists {
    /// Notes each truncated record met (expanding its embedded items meanwhile).
    pub fn collecting() -> Self {
        Self {
            collecting: true,
            wanted: RefCell::default(),
            lists: RefCell::default(),
        }
    }

    /// Gives the truncated records met, in order, their complete lists.
    pub fn serving(lists: Vec<Vec<Value>>) -> Self {
        Self {
            collecting: false,
            wanted: RefCell::default(),
            lists: RefCell::new(lists.into()),
        }
    }

    /// The truncated records met while collecting, in order.
    pub fn into_wanted(self) -> Vec<Value> {
        self.wanted.into_inner()
    }
}

impl Clone for RecordExpander {
    fn clone(&self) -> Self {
        RecordExpander {
            expand_path: self.expand_path.clone(),
            remain_original_record: self.remain_original_record,
            merge_parent: self.merge_parent,
            emit_parent_when_empty: self.emit_parent_when_empty,
            parent_fields: self.parent_fields.clone(),
            truncation_indicator: self.truncation_indicator.clone(),
            fetches_truncated: self.fetches_truncated,
            warned_truncation: AtomicBool::new(self.warned_truncation.load(Ordering::Relaxed)),
            warned_incomplete_fetch: AtomicBool::new(
                self.warned_incomplete_fetch.load(Ordering::Relaxed),
            ),
        }
    }
}

/// A value copied from the parent record onto each item.
#[derive(Debug, Clone)]
struct ParentField {
    /// Keys (Python `str()` of each rendered segment) to look the value up with.
    parent_path: Vec<Value>,
    record_path: Vec<String>,
}

const GLOB_CHARACTERS: [char; 3] = ['*', '?', '['];

impl RecordExpander {
    /// Builds the expander of a DpathExtractor.
    pub fn from_model(
        model: &model::RecordExpander,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let fetches_truncated = model.truncated_list_retriever.is_some();
        if fetches_truncated && model.truncation_indicator_path.is_none() {
            return Err(BuildError::new(
                path,
                "`truncation_indicator_path` is required when `truncated_list_retriever` is configured.",
            ));
        }
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let ctx = Context::new().config(&**config).parameters(&parameters);
        let expand_path = render_path(
            &model.expand_records_from_field,
            &ctx,
            &path.key("expand_records_from_field"),
        )?;
        let truncation_indicator = model
            .truncation_indicator_path
            .as_ref()
            .map(|p| {
                let at = path.key("truncation_indicator_path");
                let segments = render_path(p, &ctx, &at)?;
                reject_globs(&segments, &at)?;
                Ok::<_, BuildError>(segments)
            })
            .transpose()?;
        let parent_fields = model
            .parent_fields
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, field)| {
                ParentField::from_model(field, config, &path.key("parent_fields").index(i))
            })
            .collect::<Result<_, _>>()?;
        Ok(RecordExpander {
            expand_path,
            remain_original_record: model.remain_original_record.unwrap_or(false),
            merge_parent: model.merge_parent.unwrap_or(false),
            emit_parent_when_empty: matches!(
                model.on_no_records,
                Some(model::OnNoRecords::EmitParent)
            ),
            parent_fields,
            truncation_indicator,
            fetches_truncated,
            warned_truncation: AtomicBool::new(false),
            warned_incomplete_fetch: AtomicBool::new(false),
        })
    }

    fn carries_parent_context(&self) -> bool {
        self.remain_original_record || self.merge_parent || !self.parent_fields.is_empty()
    }

    /// Expands one extracted record onto `out`; `truncated` carries the complete lists of
    /// truncated records when the engine fetches them.
    pub(crate) fn expand(
        &self,
        record: Value,
        out: &mut Vec<Value>,
        truncated: Option<&TruncatedLists>,
    ) -> Result<(), SelectError> {
        if !record.is_object() || self.expand_path.is_empty() {
            out.push(record);
            return Ok(());
        }
        if let Some(indicator) = &self.truncation_indicator {
            let is_truncated =
                matches!(dpath::get_ref(&record, indicator), Ok(Some(flag)) if is_truthy(flag));
            if is_truncated && self.fetches_truncated {
                match truncated {
                    Some(lists) if lists.collecting => {
                        lists.wanted.borrow_mut().push(record.clone())
                    }
                    Some(lists) => {
                        let fetched = lists.lists.borrow_mut().pop_front().unwrap_or_default();
                        self.warn_if_fetch_incomplete(&record, indicator, fetched.len());
                        if !fetched.is_empty() {
                            return self.expand_items(&record, fetched.iter(), out);
                        }
                        // Nothing fetched: the embedded items stand in, as in the reference.
                    }
                    None => {}
                }
            } else if is_truncated {
                self.warn_truncated_without_retriever(&record, indicator);
            }
        }
        if !self.carries_parent_context() && !self.emit_parent_when_empty {
            // Nothing of the parent is kept: move the items out of it.
            let mut matches = Vec::new();
            dpath::values(record, &self.expand_path, &mut matches);
            for matched in matches {
                if let Value::Array(items) = matched {
                    out.extend(items);
                }
            }
            return Ok(());
        }
        let mut matches = Vec::new();
        dpath::values_ref(&record, &self.expand_path, &mut matches);
        let lists: Vec<&Vec<Value>> = matches.iter().filter_map(|m| m.as_array()).collect();
        let embedded: usize = lists.iter().map(|l| l.len()).sum();
        self.expand_items(&record, lists.into_iter().flatten(), out)?;
        if embedded == 0 && self.emit_parent_when_empty {
            out.push(record);
        }
        Ok(())
    }

    /// The items of `record` (embedded or fetched), each with the parent's context.
    fn expand_items<'i>(
        &self,
        record: &Value,
        items: impl Iterator<Item = &'i Value>,
        out: &mut Vec<Value>,
    ) -> Result<(), SelectError> {
        let merge_base = self
            .merge_parent
            .then(|| without_expanded_lists(record, &self.expand_path));
        for item in items {
            let child = match item {
                Value::Object(map) => map.clone(),
                other if self.carries_parent_context() => {
                    let mut wrapped = Map::with_capacity(1);
                    wrapped.insert("value".to_string(), other.clone());
                    wrapped
                }
                other => {
                    out.push(other.clone());
                    continue;
                }
            };
            out.push(self.with_parent_context(record, child, merge_base.as_ref())?);
        }
        Ok(())
    }

    /// Merge the parent under the item, then copy the named parent fields, then embed the parent.
    fn with_parent_context(
        &self,
        parent: &Value,
        child: Map<String, Value>,
        merge_base: Option<&Map<String, Value>>,
    ) -> Result<Value, SelectError> {
        let mut child = match merge_base {
            Some(base) => {
                let mut merged = base.clone();
                for (key, value) in child {
                    merged.insert(key, value);
                }
                merged
            }
            None => child,
        };
        let mut child_value = Value::Object(std::mem::take(&mut child));
        for field in &self.parent_fields {
            let value = lookup(parent, &field.parent_path)
                .cloned()
                .unwrap_or(Value::Null);
            dpath::new(&mut child_value, &field.record_path, value).map_err(|message| {
                SelectError::Path {
                    component: "RecordExpander",
                    message: format!(
                        "Cannot write parent field to `record_path` {:?}: the expanded item already holds a non-object value on that path ({message})",
                        field.record_path
                    ),
                }
            })?;
        }
        if self.remain_original_record {
            if let Value::Object(map) = &mut child_value {
                map.insert("original_record".to_string(), parent.clone());
            }
        }
        Ok(child_value)
    }

    /// Once per stream: the complete list fetched for a truncated record is shorter than the
    /// `total_count` next to its truncation indicator.
    fn warn_if_fetch_incomplete(&self, record: &Value, indicator: &[Segment], fetched: usize) {
        let Some(total) = total_count(record, indicator) else {
            return;
        };
        if fetched >= total || self.warned_incomplete_fetch.swap(true, Ordering::Relaxed) {
            return;
        }
        let fallback = if fetched == 0 {
            " The embedded items were expanded as a fallback."
        } else {
            ""
        };
        tracing::warn!(
            "The `truncated_list_retriever` for the nested list at {} returned {fetched} record(s) but the `total_count` field next to {} reports {total}, so the fetched list is still incomplete.{fallback} Check that the retriever has a `paginator` configured and that its request matches the complete-list endpoint. This warning is emitted once per stream; other records may be affected as well.",
            python_list(&self.expand_path),
            python_list(indicator)
        );
    }

    fn warn_truncated_without_retriever(&self, record: &Value, indicator: &[Segment]) {
        if self.warned_truncation.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut matches = Vec::new();
        dpath::values_ref(record, &self.expand_path, &mut matches);
        let embedded: usize = matches
            .iter()
            .filter_map(|m| m.as_array())
            .map(Vec::len)
            .sum();
        let total = match total_count(record, indicator) {
            Some(total) => format!(" of {total} total"),
            None => String::new(),
        };
        tracing::warn!(
            "The nested list at {} is marked as truncated (the field at {} is truthy) but no `truncated_list_retriever` is configured, so only the {embedded} embedded item(s){total} were expanded and the remaining items are not emitted. Configure `truncated_list_retriever` to fetch the complete list if the API provides an endpoint for it. This warning is emitted once per stream; other records may be truncated as well.",
            python_list(&self.expand_path),
            python_list(indicator)
        );
    }
}

/// The `total_count` field next to the truncation indicator, when it is an integer.
fn total_count(record: &Value, indicator: &[Segment]) -> Option<usize> {
    let (_, siblings) = indicator.split_last()?;
    let mut path = siblings.to_vec();
    path.push(Segment::from_rendered(Value::String(
        "total_count".to_owned(),
    )));
    match dpath::get_ref(record, &path) {
        Ok(Some(Value::Number(n))) => n.as_u64().and_then(|t| usize::try_from(t).ok()),
        _ => None,
    }
}

/// A path as Python prints the list of its segments (`['lines', 'data']`).
fn python_list(path: &[Segment]) -> String {
    let items: Vec<String> = path
        .iter()
        .map(|segment| match segment {
            Segment::Glob(text) => python_str(&Value::Array(vec![Value::String(text.clone())]))
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            Segment::Index(n) => n.to_string(),
            Segment::Never => "None".to_owned(),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

impl ParentField {
    fn from_model(
        model: &model::ParentFieldPath,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        if model.parent_path.is_empty() {
            return Err(BuildError::new(
                &path.key("parent_path"),
                "`parent_path` cannot be empty.",
            ));
        }
        if model.record_path.is_empty() {
            return Err(BuildError::new(
                &path.key("record_path"),
                "`record_path` cannot be empty.",
            ));
        }
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let ctx = Context::new().config(&**config).parameters(&parameters);
        let render = |segments: &[String], at: &ManifestPath| -> Result<Vec<Value>, BuildError> {
            let values = segments
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    Template::new(s)
                        .and_then(|t| t.render(&ctx))
                        .map_err(|e| BuildError::new(&at.index(i), e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if values
                .iter()
                .any(|v| matches!(v, Value::String(s) if s.contains(GLOB_CHARACTERS)))
            {
                return Err(BuildError::new(
                    at,
                    "Glob characters ('*', '?', '[') are not supported: the path must identify a single field.",
                ));
            }
            Ok(values)
        };
        let parent_path = render(&model.parent_path, &path.key("parent_path"))?;
        let record_path = render(&model.record_path, &path.key("record_path"))?
            .iter()
            .map(python_str)
            .collect();
        Ok(ParentField {
            parent_path,
            record_path,
        })
    }
}

fn reject_globs(segments: &[Segment], path: &ManifestPath) -> Result<(), BuildError> {
    if segments
        .iter()
        .any(|s| matches!(s, Segment::Glob(g) if g.contains(GLOB_CHARACTERS)))
    {
        return Err(BuildError::new(
            path,
            "Glob characters ('*', '?', '[') are not supported: the path must identify a single field.",
        ));
    }
    Ok(())
}

/// The reference's `_lookup`: keys compared as `str(segment)`, list indices as `int(segment)`.
fn lookup<'a>(record: &'a Value, path: &[Value]) -> Option<&'a Value> {
    path.iter().try_fold(record, |node, segment| match node {
        Value::Object(map) => map.get(python_str(segment).as_str()),
        Value::Array(items) => {
            let wanted = match segment {
                Value::Number(n) => n.as_i64()?,
                Value::Bool(b) => i64::from(*b),
                Value::String(s) => parse_python_int(s)?,
                _ => return None,
            };
            let len = i64::try_from(items.len()).ok()?;
            let index = if wanted < 0 { len + wanted } else { wanted };
            usize::try_from(index).ok().and_then(|i| items.get(i))
        }
        _ => None,
    })
}

/// A copy of the parent without the lists at the expansion path.
fn without_expanded_lists(parent: &Value, path: &[Segment]) -> Map<String, Value> {
    let mut stripped = parent.clone();
    let mut found = Vec::new();
    list_paths(parent, path, &mut Vec::new(), &mut found);
    // Deepest and right-most first, so removing an element never shifts a later match.
    found.sort_by(|a, b| b.cmp(a));
    for steps in found {
        remove_path(&mut stripped, &steps);
    }
    match stripped {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Index(usize),
    Key(String),
}

fn list_paths(node: &Value, path: &[Segment], at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    let Some((segment, rest)) = path.split_first() else {
        if node.is_array() {
            out.push(at.clone());
        }
        return;
    };
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                if segment.matches_key(key) {
                    at.push(Step::Key(key.clone()));
                    list_paths(child, rest, at, out);
                    at.pop();
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                if segment.matches_index(index, items.len()) {
                    at.push(Step::Index(index));
                    list_paths(child, rest, at, out);
                    at.pop();
                }
            }
        }
        _ => {}
    }
}

fn remove_path(node: &mut Value, steps: &[Step]) {
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let parent = parents
        .iter()
        .try_fold(node, |node, step| match (node, step) {
            (Value::Object(map), Step::Key(key)) => map.get_mut(key.as_str()),
            (Value::Array(items), Step::Index(index)) => items.get_mut(*index),
            _ => None,
        });
    match (parent, last) {
        (Some(Value::Object(map)), Step::Key(key)) => {
            map.shift_remove(key.as_str());
        }
        (Some(Value::Array(items)), Step::Index(index)) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn expander(yaml: Value) -> RecordExpander {
        let model = model::RecordExpander::from_node(&yaml, &ManifestPath::root()).unwrap();
        RecordExpander::from_model(&model, &Arc::new(json!({})), &ManifestPath::root()).unwrap()
    }

    fn expand(expander: &RecordExpander, record: Value) -> Vec<Value> {
        let mut out = Vec::new();
        expander.expand(record, &mut out, None).unwrap();
        out
    }

    #[test]
    fn expands_nested_lists() {
        let e = expander(
            json!({"type": "RecordExpander", "expand_records_from_field": ["lines", "data"]}),
        );
        let record = json!({"id": 1, "lines": {"data": [{"a": 1}, {"a": 2}]}});
        assert_eq!(expand(&e, record), vec![json!({"a": 1}), json!({"a": 2})]);
        assert!(expand(&e, json!({"id": 1})).is_empty());
        assert_eq!(expand(&e, json!("scalar")), vec![json!("scalar")]);
    }

    #[test]
    fn parent_context() {
        let e = expander(json!({
            "type": "RecordExpander",
            "expand_records_from_field": ["items"],
            "merge_parent": true,
            "parent_fields": [{"type": "ParentFieldPath", "parent_path": ["id"], "record_path": ["parent", "id"]}],
            "remain_original_record": true
        }));
        let record = json!({"id": 1, "name": "p", "items": [{"name": "c"}, 5]});
        let out = expand(&e, record.clone());
        assert_eq!(
            out,
            vec![
                json!({"id": 1, "name": "c", "parent": {"id": 1}, "original_record": record.clone()}),
                json!({"id": 1, "name": "p", "value": 5, "parent": {"id": 1}, "original_record": record}),
            ]
        );
    }

    #[test]
    fn emit_parent_when_nothing_expands() {
        let e = expander(
            json!({"type": "RecordExpander", "expand_records_from_field": ["items"], "on_no_records": "emit_parent"}),
        );
        assert_eq!(
            expand(&e, json!({"id": 1, "items": []})),
            vec![json!({"id": 1, "items": []})]
        );
        assert_eq!(expand(&e, json!({"id": 2, "items": [3]})), vec![json!(3)]);
    }

    #[test]
    fn refuses_globs_and_retrievers() {
        let model = model::RecordExpander::from_node(&json!({
            "type": "RecordExpander",
            "expand_records_from_field": ["items"],
            "parent_fields": [{"type": "ParentFieldPath", "parent_path": ["*"], "record_path": ["x"]}]
        }), &ManifestPath::root())
        .unwrap();
        assert!(
            RecordExpander::from_model(&model, &Arc::new(json!({})), &ManifestPath::root())
                .is_err()
        );
    }
}
