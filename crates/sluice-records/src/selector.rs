//! `RecordSelector`: decode a response, extract its records, filter, transform and normalise
//! them, as the reference's `record_selector.py` does.

use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_manifest::{ManifestPath, model};

use crate::as_sent::{Beside, PageAsSent};
use crate::decode::{Decoded, Decoder};
use crate::error::{BuildError, SelectError};
use crate::expand::TruncatedLists;
use crate::extract::Extractor;
use crate::filter::{FilterVariables, RecordFilter};
use crate::normalize::SchemaNormalizer;
use crate::raw::{AsSentOutcome, EditScratch, Overlay, RawPlan};
use crate::transform::{TransformVariables, Transformation};
use sluice_protocol::SentEntry;

/// A stream's record selector with its decoder and transformations.
#[derive(Debug, Clone)]
pub struct RecordSelector {
    decoder: Decoder,
    extractor: Extractor,
    filter: Option<RecordFilter>,
    transformations: Vec<Transformation>,
    /// `transform_before_filtering` as the manifest sets it (`None`: the reference's default).
    transform_before_filtering: Option<bool>,
    client_side_incremental: bool,
    normalizer: Option<SchemaNormalizer>,
    /// Whether the stream has a schema: the reference then copies every record into a dict.
    has_schema: bool,
    /// The extractor's path when selecting passes records through unchanged (a JSON decoder, a
    /// DpathExtractor of plain keys, no filter, transformation or normalisation).
    as_sent_path: Option<Vec<String>>,
    /// How the filter and transformations run on records as sent, when they can.
    raw_plan: Option<RawPlan>,
    config: Arc<Value>,
}

/// The variables of the page being selected.
#[derive(Debug, Clone, Copy)]
pub struct SelectVariables<'a> {
    /// The slice the page belongs to (`{}` without partitions).
    pub stream_slice: &'a Value,
    /// The token the page was requested with (`{"next_page_token": ...}`), `None` on the first page.
    pub next_page_token: Option<&'a Value>,
    /// The stream state; the reference always passes `{}`.
    pub stream_state: &'a Value,
    /// The complete lists of the page's truncated records, when a `truncated_list_retriever`
    /// fetched them ([`RecordSelector::truncated_records`]).
    pub truncated: Option<&'a TruncatedLists>,
}

/// Edits a page's records as sent, one after another ([`RecordSelector::editor`]).
#[derive(Debug)]
pub struct RecordEditor<'s> {
    selector: &'s RecordSelector,
    scratch: EditScratch<'s>,
}

impl<'s> RecordEditor<'s> {
    /// The selector it edits for.
    pub fn selector(&self) -> &'s RecordSelector {
        self.selector
    }

    /// [`RecordSelector::process_as_sent`], for the next record of the page. `same_keys`: the
    /// record has the top-level keys of the record this editor was given last, as sent and in
    /// the same order ([`RecordAsSent::same_keys`](crate::RecordAsSent::same_keys) of a record
    /// that follows it).
    pub fn process_as_sent(
        &mut self,
        record: &str,
        entries: &[SentEntry],
        same_keys: bool,
        watch: Option<&str>,
        vars: &SelectVariables<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<AsSentOutcome, SelectError>> {
        let selector = self.selector;
        let Some(plan) = &selector.raw_plan else {
            return Some(Ok(AsSentOutcome::Unchanged));
        };
        let resolve_for = (plan, watch, selector.normalizer.as_ref());
        (self.scratch.layout).resolve(record, entries, same_keys, resolve_for)?;
        let overlay = self.scratch.overlay(record, entries, plan);
        if let Some(outcome) = selector.process_fields_as_sent(overlay, out) {
            return Some(Ok(outcome));
        }
        let mut read = plan.read_object(record, entries, &self.scratch.layout)?;
        let kept = selector.process_one(&mut read, vars);
        Some(kept.map(|kept| match kept {
            false => AsSentOutcome::Dropped,
            true => {
                let overlay = self.scratch.overlay(record, entries, plan);
                plan.edit(overlay, read, selector.normalizer.as_ref(), out)
            }
        }))
    }
}

/// What the paginator needs to know about a selected page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectOutcome {
    /// Records the extractor produced before filtering, counting the empty records a
    /// CombinedExtractor dropped: what OffsetIncrement and PageIncrement compare with the page
    /// size (the reference's `extracted_record_count`).
    pub extracted: usize,
    /// Records appended to the output: the reference's `last_page_size` (the last of them is its
    /// `last_record`).
    pub emitted: usize,
}

impl RecordSelector {
    /// Builds a stream's selector from `retriever.record_selector`, `retriever.decoder`, the
    /// stream's `transformations` and its JSON schema (used by `schema_normalization: Default`).
    /// `path` is the stream's place in the manifest (`streams[0]`).
    pub fn from_model(
        selector: &model::RecordSelector,
        decoder: Option<&model::Decoder>,
        transformations: &[model::RecordTransformation],
        schema: &Map<String, Value>,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let retriever_path = path.key("retriever");
        let selector_path = retriever_path.key("record_selector");
        let decoder = Decoder::from_model(decoder, &retriever_path.key("decoder"))?;
        let extractor = Extractor::from_model(
            &selector.extractor,
            &decoder,
            config,
            &selector_path.key("extractor"),
        )?;
        let filter = match &selector.record_filter {
            None => None,
            Some(model::AnyRecordFilter::RecordFilter(filter)) => Some(RecordFilter::from_model(
                filter,
                &selector_path.key("record_filter"),
            )?),
            Some(model::AnyRecordFilter::CustomRecordFilter(custom)) => {
                return Err(BuildError::new(
                    &selector_path.key("record_filter"),
                    format!(
                        "custom record filter {} cannot run in sluice (custom Python components are not supported)",
                        custom.class_name
                    ),
                ));
            }
        };
        let normalizer = match &selector.schema_normalization {
            None
            | Some(model::AnySchemaNormalization::SchemaNormalization(
                model::SchemaNormalization::None,
            )) => None,
            Some(model::AnySchemaNormalization::SchemaNormalization(
                model::SchemaNormalization::Default,
            )) => (!schema.is_empty())
                .then(|| SchemaNormalizer::new(Arc::new(Value::Object(schema.clone())))),
            Some(model::AnySchemaNormalization::CustomSchemaNormalization(custom)) => {
                return Err(BuildError::new(
                    &selector_path.key("schema_normalization"),
                    format!(
                        "custom schema normalization {} cannot run in sluice (custom Python components are not supported)",
                        custom.class_name
                    ),
                ));
            }
        };
        let transformations =
            Transformation::list_from_model(transformations, config, &path.key("transformations"))?;
        // Records as sent are normalised field by field, edited like the transformations'.
        let normalizes_by_field = normalizer.as_ref().map(SchemaNormalizer::by_field);
        let raw_plan = match (&filter, transformations.is_empty(), normalizes_by_field) {
            (None, true, None) => None,
            (_, _, Some(false)) => None,
            _ => RawPlan::new(filter.as_ref(), &transformations),
        };
        let passes_through = filter.is_none() && transformations.is_empty() && normalizer.is_none();
        let as_sent_path = match &extractor {
            Extractor::Dpath(extractor)
                if decoder == Decoder::Json && (passes_through || raw_plan.is_some()) =>
            {
                extractor.plain_keys()
            }
            _ => None,
        };
        Ok(RecordSelector {
            raw_plan,
            as_sent_path,
            decoder,
            extractor,
            filter,
            transformations,
            transform_before_filtering: selector.transform_before_filtering,
            client_side_incremental: false,
            normalizer,
            has_schema: !schema.is_empty(),
            config: Arc::clone(config),
        })
    }

    /// Declares the stream client-side incremental: unless the manifest says otherwise,
    /// transformations then run before filtering, as in the reference.
    pub fn set_client_side_incremental(&mut self, enabled: bool) {
        self.client_side_incremental = enabled;
    }

    /// Whether transformations run before the filter.
    pub fn transforms_before_filtering(&self) -> bool {
        self.transform_before_filtering
            .unwrap_or(self.client_side_incremental)
    }

    /// Where each record of a JSON page is, as the API sent it, when selecting would pass the
    /// records through unchanged: a JSON decoder, a DpathExtractor of plain keys, no filter,
    /// transformation, normalisation or cursor check, and a page whose records are objects in an
    /// array at that path. Each record is classified by what the reference prints for it, and
    /// respelled where only some tokens differ. The top-level `fields` (what a paginator reads
    /// of the body) are located too. `None` means: select in full.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use serde_json::{Map, json};
    /// # use sluice_manifest::{ManifestPath, model::{self, FromNode}};
    /// # use sluice_records::RecordSelector;
    /// let at = ManifestPath::root();
    /// let model = model::RecordSelector::from_node(
    ///     &json!({"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["data"]}}),
    ///     &at,
    /// )?;
    /// let selector = RecordSelector::from_model(&model, None, &[], &Map::new(), &Arc::new(json!({})), &at)?;
    /// let body = r#"{"data": [{"id":1}, {"id":2}], "next": "p2"}"#;
    /// let page = selector.records_as_sent(body, &["next".to_owned()], None, Vec::new()).unwrap();
    /// assert_eq!(&body[page.records[1].sent.clone()], r#"{"id":2}"#);
    /// assert_eq!(page.records[1].class, sluice_protocol::AsSent::Identical);
    ///
    /// let body = r#"{"data": [{"id": 1, "amount": 12.50}], "next": "p2"}"#;
    /// let page = selector.records_as_sent(body, &["next".to_owned()], None, Vec::new()).unwrap();
    /// assert_eq!(page.records[0].class, sluice_protocol::AsSent::Respelled);
    /// assert_eq!(&page.respelled[page.records[0].respelled.clone()], br#"{"id":1,"amount":12.5}"#);
    /// assert_eq!(&body[page.fields[0].1.clone()], r#""p2""#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The body is text: one that is not UTF-8 is no JSON, which the full selector reports.
    ///
    /// `watch`: a top-level key whose value each record's [`crate::RecordAsSent::watched`] locates
    /// (a cursor's field). `respelled`: the buffer [`PageAsSent::respelled`] is written to
    /// (cleared first), so that a caller can reuse one page's buffer for the next.
    pub fn records_as_sent(
        &self,
        body: &str,
        fields: &[String],
        watch: Option<&str>,
        respelled: Vec<u8>,
    ) -> Option<PageAsSent> {
        self.records_as_sent_beside(body, fields, watch, respelled, None)
    }

    /// [`RecordSelector::records_as_sent`], a large page's records scanned in two halves, the
    /// second by `beside` on another core. The same records as scanning them in one go.
    pub fn records_as_sent_beside(
        &self,
        body: &str,
        fields: &[String],
        watch: Option<&str>,
        respelled: Vec<u8>,
        beside: Option<Beside<'_>>,
    ) -> Option<PageAsSent> {
        if self.client_side_incremental {
            return None;
        }
        crate::as_sent::page_as_sent(
            body,
            self.as_sent_path.as_ref()?,
            fields,
            self.raw_plan.is_some(),
            watch,
            respelled,
            beside,
        )
    }

    /// Whether records found by [`RecordSelector::records_as_sent`] still go through a filter,
    /// transformations or normalisation: [`RecordSelector::process_as_sent`] then runs them.
    pub fn changes_records_as_sent(&self) -> bool {
        self.raw_plan.is_some()
    }

    /// Filters, transforms and normalises one record as sent, as the page walk gives it when
    /// the selector changes records: compact, classified [`AsSent::Identical`] or respelled,
    /// top-level nulls kept. `None` when the record cannot be handled without parsing it whole
    /// (a key that does not decode, a value that does not parse): select it parsed then
    /// ([`RecordSelector::select_parsed_as_sent`]).
    ///
    /// [`AsSent::Identical`]: sluice_protocol::AsSent::Identical
    ///
    /// `entries`: the record's top-level entries, as the page walk found them
    /// ([`PageAsSent::entries`]). `watch`: a top-level key (a cursor's field) whose place an
    /// edited record notes, as the page walk notes it ([`crate::RecordAsSent::watched`]).
    /// `out`: where an edited record is written (appended), so that a page's edited records
    /// can share one buffer.
    pub fn process_as_sent(
        &self,
        record: &str,
        entries: &[SentEntry],
        watch: Option<&str>,
        vars: &SelectVariables<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<AsSentOutcome, SelectError>> {
        self.editor()
            .process_as_sent(record, entries, false, watch, vars, out)
    }

    /// An editor of records as sent, for a page's records one after another: what
    /// [`RecordSelector::process_as_sent`] does, keeping from one record to the next where the
    /// keys the filter and transformations touch are.
    pub fn editor(&self) -> RecordEditor<'_> {
        RecordEditor {
            selector: self,
            scratch: EditScratch::default(),
        }
    }

    /// [`RecordSelector::process_as_sent`] when every template only looks up or compares the
    /// record's fields: those are read where they were sent, nothing is parsed into a JSON
    /// value. `None` when a template needs more.
    fn process_fields_as_sent<'s>(
        &'s self,
        mut overlay: Overlay<'_, 's>,
        out: &mut Vec<u8>,
    ) -> Option<AsSentOutcome> {
        let transform_first = self.transforms_before_filtering();
        if transform_first {
            overlay.run_edits()?;
        }
        if let Some(filter) = &self.filter {
            if !filter.keeps_overlay(&overlay)? {
                return Some(AsSentOutcome::Dropped);
            }
        }
        if !transform_first {
            overlay.run_edits()?;
        }
        Some(overlay.into_outcome(self.normalizer.as_ref(), out))
    }

    /// One parsed record through the filter, transformations and normalisation, as
    /// [`RecordSelector::select`] runs them; `None` when the filter drops it.
    pub fn select_parsed_as_sent(
        &self,
        mut record: Value,
        vars: &SelectVariables<'_>,
    ) -> Result<Option<Value>, SelectError> {
        let kept = self.process_one(&mut record, vars)?;
        Ok(kept.then_some(record))
    }

    /// The variables of the transformations' and the filter's templates.
    fn variables<'v>(
        &'v self,
        vars: &SelectVariables<'v>,
    ) -> (TransformVariables<'v>, FilterVariables<'v>) {
        let transform_vars = TransformVariables {
            config: &self.config,
            stream_slice: vars.stream_slice,
            stream_state: vars.stream_state,
        };
        let filter_vars = FilterVariables {
            config: &self.config,
            stream_slice: vars.stream_slice,
            stream_state: vars.stream_state,
            next_page_token: vars.next_page_token,
        };
        (transform_vars, filter_vars)
    }

    /// [`RecordSelector::process`] for one record outside a page (no cursor range).
    fn process_one(
        &self,
        record: &mut Value,
        vars: &SelectVariables<'_>,
    ) -> Result<bool, SelectError> {
        let (transform_vars, filter_vars) = self.variables(vars);
        self.process(
            record,
            self.transforms_before_filtering(),
            &transform_vars,
            &filter_vars,
            &mut |_| true,
        )
    }

    /// The decoder (also the paginator's, as in the reference).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The selector reading bodies with `decoder` instead of the manifest's (an
    /// AsyncRetriever's `ResponseToFileExtractor`, which reads the body itself).
    pub fn with_decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = decoder;
        // Bodies are no longer JSON read as sent.
        self.as_sent_path = None;
        self.raw_plan = None;
        self
    }

    /// Decodes a response body. Keep the result to hand `Decoded::pagination_body` to the
    /// paginator before the records are moved out by [`RecordSelector::select`].
    pub fn decode(&self, body: &[u8]) -> Result<Decoded, SelectError> {
        self.decoder.decode(body)
    }

    /// The records of the page whose nested list is truncated and whose complete list the
    /// record expander's `truncated_list_retriever` fetches, in the order selection meets them
    /// (only the extractor runs).
    pub fn truncated_records(&self, decoded: Decoded) -> Result<Vec<Value>, SelectError> {
        let collecting = TruncatedLists::collecting();
        let mut scratch = Vec::new();
        self.extractor
            .extract_with(decoded.into_bodies(), &mut scratch, Some(&collecting))?;
        Ok(collecting.into_wanted())
    }

    /// Selects the records of a decoded page onto `out`.
    pub fn select(
        &self,
        decoded: Decoded,
        vars: &SelectVariables<'_>,
        out: &mut Vec<Value>,
    ) -> Result<SelectOutcome, SelectError> {
        self.select_where(decoded, vars, out, |_| true)
    }

    /// Selects like [`RecordSelector::select`], keeping only records for which `in_cursor_range`
    /// holds as well: the client-side incremental cursor's check, which the reference runs
    /// before the filter's condition.
    pub fn select_where(
        &self,
        decoded: Decoded,
        vars: &SelectVariables<'_>,
        out: &mut Vec<Value>,
        mut in_cursor_range: impl FnMut(&Value) -> bool,
    ) -> Result<SelectOutcome, SelectError> {
        let start = out.len();
        let extracted = self
            .extractor
            .extract_with(decoded.into_bodies(), out, vars.truncated)?;
        let emitted = self.process_from(start, vars, out, &mut in_cursor_range)?;
        Ok(SelectOutcome { extracted, emitted })
    }

    /// Filters, transforms and normalises records another component already extracted (an
    /// AsyncRetriever's downloaded records), appending those kept to `out`; the selector's own
    /// decoder and extractor are not used, as in the reference's `filter_and_transform`.
    pub fn select_extracted(
        &self,
        records: Vec<Value>,
        vars: &SelectVariables<'_>,
        out: &mut Vec<Value>,
        mut in_cursor_range: impl FnMut(&Value) -> bool,
    ) -> Result<SelectOutcome, SelectError> {
        let start = out.len();
        let extracted = records.len();
        out.extend(records);
        let emitted = self.process_from(start, vars, out, &mut in_cursor_range)?;
        Ok(SelectOutcome { extracted, emitted })
    }

    /// Processes `out[start..]` in place, keeping the records that pass; gives how many did.
    fn process_from(
        &self,
        start: usize,
        vars: &SelectVariables<'_>,
        out: &mut Vec<Value>,
        in_cursor_range: &mut impl FnMut(&Value) -> bool,
    ) -> Result<usize, SelectError> {
        let transform_first = self.transforms_before_filtering();
        let (transform_vars, filter_vars) = self.variables(vars);
        // Compact the kept records to the front of the page as they are processed.
        let mut kept = start;
        for index in start..out.len() {
            let result = self.process(
                &mut out[index],
                transform_first,
                &transform_vars,
                &filter_vars,
                in_cursor_range,
            );
            match result {
                Ok(true) => {
                    out.swap(kept, index);
                    kept += 1;
                }
                Ok(false) => {}
                Err(error) => {
                    out.truncate(kept);
                    return Err(error);
                }
            }
        }
        out.truncate(kept);
        Ok(kept - start)
    }

    /// Decodes and selects in one step, for callers that do not need the decoded body.
    pub fn select_body(
        &self,
        body: &[u8],
        vars: &SelectVariables<'_>,
        out: &mut Vec<Value>,
    ) -> Result<SelectOutcome, SelectError> {
        let decoded = self.decode(body)?;
        self.select(decoded, vars, out)
    }

    /// Filters, transforms and normalises one record; returns whether it is kept.
    fn process(
        &self,
        record: &mut Value,
        transform_first: bool,
        transform_vars: &TransformVariables<'_>,
        filter_vars: &FilterVariables<'_>,
        in_cursor_range: &mut impl FnMut(&Value) -> bool,
    ) -> Result<bool, SelectError> {
        if transform_first {
            self.transform(record, transform_vars)?;
        }
        if !in_cursor_range(record) {
            return Ok(false);
        }
        if let Some(filter) = &self.filter {
            if !filter.keep(record, filter_vars)? {
                return Ok(false);
            }
        }
        if !transform_first {
            self.transform(record, transform_vars)?;
        }
        if self.has_schema && !record.is_object() {
            *record = python_dict(std::mem::take(record))?;
        }
        if let Some(normalizer) = &self.normalizer {
            normalizer.normalize(record);
        }
        Ok(true)
    }

    fn transform(
        &self,
        record: &mut Value,
        vars: &TransformVariables<'_>,
    ) -> Result<(), SelectError> {
        for transformation in &self.transformations {
            transformation.apply(record, vars)?;
        }
        Ok(())
    }
}

/// Python's `dict(value)` for a record that is not an object: an empty string or list gives `{}`,
/// a list of `[key, value]` pairs gives an object; anything else fails as Python fails.
fn python_dict(value: Value) -> Result<Value, SelectError> {
    let type_name = match &value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(s) if s.is_empty() => return Ok(Value::Object(Map::new())),
        Value::String(_) => {
            return Err(SelectError::NotAnObject(
                "dictionary update sequence element #0 has length 1; 2 is required".to_string(),
            ));
        }
        Value::Array(_) | Value::Object(_) => "",
    };
    let items = match value {
        Value::Array(items) => items,
        Value::Object(map) => return Ok(Value::Object(map)),
        _ => {
            return Err(SelectError::NotAnObject(format!(
                "'{type_name}' object is not iterable"
            )));
        }
    };
    let mut map = Map::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let pair = match item {
            Value::Array(pair) if pair.len() == 2 => pair,
            other => {
                let length = match &other {
                    Value::Array(a) => a.len(),
                    Value::String(s) => s.chars().count(),
                    Value::Object(m) => m.len(),
                    _ => {
                        return Err(SelectError::NotAnObject(format!(
                            "cannot convert dictionary update sequence element #{index} to a sequence"
                        )));
                    }
                };
                return Err(SelectError::NotAnObject(format!(
                    "dictionary update sequence element #{index} has length {length}; 2 is required"
                )));
            }
        };
        let mut pair = pair.into_iter();
        let (Some(key), Some(value)) = (pair.next(), pair.next()) else {
            continue;
        };
        let key = match key {
            Value::String(key) => key,
            other => sluice_interp::python_str(&other),
        };
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn selector(node: Value, transformations: Value, schema: Value) -> RecordSelector {
        let at = ManifestPath::root().key("streams").index(0);
        let model = model::RecordSelector::from_node(&node, &at).unwrap();
        let transformations: Vec<model::RecordTransformation> = transformations
            .as_array()
            .unwrap()
            .iter()
            .map(|t| model::RecordTransformation::from_node(t, &at).unwrap())
            .collect();
        let Value::Object(schema) = schema else {
            panic!("schema")
        };
        RecordSelector::from_model(
            &model,
            None,
            &transformations,
            &schema,
            &Arc::new(json!({})),
            &at,
        )
        .unwrap()
    }

    fn run(
        selector: &RecordSelector,
        body: &str,
    ) -> (Result<SelectOutcome, SelectError>, Vec<Value>) {
        let empty = json!({});
        let vars = SelectVariables {
            stream_slice: &empty,
            next_page_token: None,
            stream_state: &empty,
            truncated: None,
        };
        let mut out = Vec::new();
        let decoded = selector.decode(body.as_bytes()).unwrap();
        (selector.select(decoded, &vars, &mut out), out)
    }

    #[test]
    fn counts_before_and_after_filtering_and_orders_transforms() {
        let node = json!({"type": "RecordSelector",
            "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
            "record_filter": {"type": "RecordFilter", "condition": "{{ record.keep }}"}});
        let add = json!([{"type": "AddFields", "fields": [{"type": "AddedFieldDefinition", "path": ["keep"], "value": "true"}]}]);
        let plain = selector(node.clone(), add.clone(), json!({}));
        let (outcome, out) = run(
            &plain,
            r#"{"data": [{"keep": true}, {"keep": false}, {"id": 3}]}"#,
        );
        assert_eq!(
            outcome.unwrap(),
            SelectOutcome {
                extracted: 3,
                emitted: 1
            }
        );
        assert_eq!(
            out,
            vec![json!({"keep": "true"})],
            "`true` is no Python literal: it stays text"
        );

        let mut node_first = node;
        node_first["transform_before_filtering"] = json!(true);
        let first = selector(node_first, add, json!({}));
        let (outcome, _) = run(&first, r#"{"data": [{"keep": false}, {"id": 3}]}"#);
        assert_eq!(outcome.unwrap().emitted, 2);

        let (outcome, out) = run(&plain, r#"{"data": []}"#);
        assert_eq!((outcome.unwrap().extracted, out.len()), (0, 0));
    }

    #[test]
    fn non_object_records_fail_only_with_a_schema() {
        let node = json!({"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["ids"]}});
        let without = selector(node.clone(), json!([]), json!({}));
        let (outcome, out) = run(&without, r#"{"ids": [1, "a"]}"#);
        assert_eq!(
            (outcome.unwrap().emitted, out),
            (2, vec![json!(1), json!("a")])
        );
        let with = selector(node, json!([]), json!({"type": "object"}));
        let (outcome, out) = run(&with, r#"{"ids": [{"id": 1}, 2]}"#);
        assert_eq!(
            outcome.unwrap_err(),
            SelectError::NotAnObject("'int' object is not iterable".into())
        );
        assert_eq!(
            out,
            vec![json!({"id": 1})],
            "records before the failure are kept"
        );
        assert_eq!(python_dict(json!([["a", 1]])).unwrap(), json!({"a": 1}));
        assert_eq!(python_dict(json!("")).unwrap(), json!({}));
    }

    #[test]
    fn normalizes_with_the_stream_schema() {
        let node = json!({"type": "RecordSelector", "schema_normalization": "Default",
            "extractor": {"type": "DpathExtractor", "field_path": []}});
        let normalizing = selector(
            node,
            json!([]),
            json!({"properties": {"n": {"type": "integer"}}}),
        );
        let (_, out) = run(&normalizing, r#"[{"n": "5"}]"#);
        assert_eq!(out, vec![json!({"n": 5})]);
    }
}
