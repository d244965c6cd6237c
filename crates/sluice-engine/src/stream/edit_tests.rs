//! Records filtered and transformed as sent print exactly as the same records parsed, filtered,
//! transformed and printed: a pseudo-random walk over records (compact, as the reference prints
//! them unchanged) and over selectors (filters, `AddFields`, `RemoveFields` in any order).

use super::{FoundRecord, RecordData, select_as_sent};
use bytes::Bytes;
use serde_json::{Value, json};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use sluice_protocol::{AsSent, RecordScanner};
use sluice_records::{AsSentOutcome, RecordSelector, SelectVariables};
use std::sync::Arc;

struct Walk {
    state: u64,
    /// Which keys the last record had, a bit each.
    keys: usize,
}

impl Walk {
    fn next(&mut self, bound: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.state >> 33) % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.next(if depth > 1 { 6 } else { 9 }) {
            0 => json!(self.next(1000)),
            1 => json!(self.pick(&["x", "é", "a\"b", "line\nbreak", "", "deleted", "NL"])),
            2 => json!(self.next(100) as f64 / 8.0),
            3 => json!(self.next(2) == 0),
            4 => json!(-(self.next(50) as i64)),
            5 => Value::Null,
            6 => json!([self.value(depth + 1), self.value(depth + 1)]),
            7 => json!({"k": self.value(depth + 1), "n": null}),
            _ => json!({"o": self.value(depth + 1), "k": self.value(depth + 1)}),
        }
    }

    fn record(&mut self) -> String {
        // Now and then an empty record, whose keys no other record has.
        if self.next(40) == 0 {
            return "{}".to_owned();
        }
        // Half the records have the keys of the one before, as most records of a page do.
        if self.next(2) == 0 {
            // Each key three times in four.
            self.keys = (0..7)
                .filter(|_| self.next(4) != 0)
                .map(|bit| 1 << bit)
                .sum();
        }
        let mut record = serde_json::Map::new();
        for (bit, key) in ["id", "status", "country", "tags", "score", "a\"q", "source"]
            .into_iter()
            .enumerate()
        {
            if self.keys & (1 << bit) != 0 {
                record.insert(key.to_owned(), self.value(0));
            }
        }
        let mut text = Vec::new();
        sluice_protocol::json::to_reference_writer(&mut text, &record).unwrap();
        let text = String::from_utf8(text).unwrap();
        // Spellings the reference prints otherwise: the record is then respelled.
        if text == "{}" {
            return text;
        }
        match self.next(5) {
            0 => text.replacen('{', r#"{"z":1.50,"#, 1),
            1 => text.replacen('{', r#"{"z":"\u00e9","n":null, "#, 1),
            2 => text.replacen('{', r#"{"n":null,"#, 1),
            _ => text,
        }
    }

    fn selector(&mut self) -> Value {
        let filters = [
            "{{ record['status'] != 'deleted' }}",
            "{{ record.id > 500 }}",
            "{{ record['country'] == 'NL' or not record.score }}",
            "{{ record.tags }}",
        ];
        let mut transformations = Vec::new();
        for _ in 0..self.next(4) {
            transformations.push(match self.next(4) {
                0 => json!({"type": "RemoveFields", "field_pointers": [
                    [self.pick(&["tags", "score", "a\"q", "missing"])]
                ]}),
                1 => json!({"type": "AddFields", "fields": [{
                    "type": "AddedFieldDefinition",
                    "path": [self.pick(&["key", "source", "id", "added", "status"])],
                    "value": self.pick(&[
                        "bench",
                        "{{ record['country'] }}-{{ record['id'] }}",
                        "{{ record.score }}",
                        "{{ record.id + 1 }}",
                        "{{ record.tags }}",
                        "{{ record.added }}",
                        "{{ 1.5 }}",
                        "{{ None }}",
                    ]),
                }]}),
                // A condition that holds for some records and not others.
                2 => json!({"type": "AddFields",
                "condition": "{{ record.tags }}",
                "fields": [{
                    "type": "AddedFieldDefinition",
                    "path": [self.pick(&["key", "country", "tags"])],
                    "value": "{{ record.country }}",
                }]}),
                _ => json!({"type": "AddFields",
                "condition": "{{ value != 'NL-1' and record.status != 'x' }}",
                "fields": [{
                    "type": "AddedFieldDefinition",
                    "path": [self.pick(&["key", "country"])],
                    "value": "{{ record['country'] }}-{{ record.status }}",
                }]}),
            });
        }
        let mut selector = json!({
            "type": "RecordSelector",
            "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
            "transform_before_filtering": self.next(2) == 0,
        });
        if self.next(3) != 0 {
            selector["record_filter"] =
                json!({"type": "RecordFilter", "condition": self.pick(&filters)});
        }
        let mut schema = json!({});
        if self.next(3) == 0 {
            selector["schema_normalization"] = json!("Default");
            let types = [
                json!({"type": "integer"}),
                json!({"type": "string"}),
                json!({"type": ["null", "number"]}),
                json!({"type": "boolean"}),
                json!({"type": "array", "items": {"type": "string"}}),
                json!({"type": ["array", "null"]}),
                json!({"type": "object", "properties": {"k": {"type": "string"}}}),
                json!({"type": ["object", "null"], "properties": {"k": {"type": ["null", "integer"]},
                    "o": {"type": "object", "properties": {"k": {"type": "boolean"}}}}}),
                json!({"type": ["string", "integer"]}),
                json!({}),
                // Arrays found unchanged from their elements' kinds, or converted.
                json!({"type": "array", "items": {"type": ["null", "integer"]}}),
                json!({"type": "array", "items": {"type": "object",
                    "properties": {"k": {"type": "string"}}}}),
                json!({"type": "object", "properties": {"k": {"type": "array",
                    "items": {"type": "boolean"}}}}),
            ];
            let mut properties = serde_json::Map::new();
            for key in [
                "id", "status", "country", "tags", "score", "source", "key", "added", "z",
            ] {
                if self.next(5) != 0 {
                    properties.insert(key.to_owned(), types[self.next(types.len())].clone());
                }
            }
            schema = json!({"type": "object", "properties": properties});
        }
        json!({"selector": selector, "transformations": transformations, "schema": schema})
    }
}

fn build(parts: &Value) -> RecordSelector {
    let at = ManifestPath::root();
    let selector = model::RecordSelector::from_node(&parts["selector"], &at).unwrap();
    let transformations: Vec<model::RecordTransformation> = parts["transformations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| model::RecordTransformation::from_node(t, &at).unwrap())
        .collect();
    let config = Arc::new(json!({}));
    RecordSelector::from_model(
        &selector,
        None,
        &transformations,
        &parts["schema"].as_object().cloned().unwrap_or_default(),
        &config,
        &at,
    )
    .unwrap()
}

/// The top-level entries the page walk finds in `record`, scanning it for editing.
fn walked(record: &[u8]) -> Vec<sluice_protocol::SentEntry> {
    let mut scanner = RecordScanner::for_text(record).unwrap();
    scanner.for_editing(true);
    scanner.scan_record(record, &mut Vec::new()).unwrap();
    scanner.entries().to_vec()
}

/// A read's variables, all empty.
fn variables(empty: &Value) -> SelectVariables<'_> {
    SelectVariables {
        stream_slice: empty,
        next_page_token: None,
        stream_state: empty,
        truncated: None,
    }
}

/// What the tree path prints for `record`: `None` when it drops it, the error text when it
/// fails.
fn printed_by_tree(
    selector: &RecordSelector,
    record: &str,
    vars: &SelectVariables<'_>,
) -> Result<Option<String>, String> {
    let body = format!(r#"{{"data":[{record}]}}"#);
    let mut out = Vec::new();
    selector
        .select_body(body.as_bytes(), vars, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out.pop().map(|value| {
        let mut text = Vec::new();
        sluice_protocol::write_record_json(&mut text, "s", &value, 0).unwrap();
        String::from_utf8(text).unwrap()
    }))
}

/// The RECORD line of `data`, as the writer thread writes it.
fn print(data: RecordData) -> String {
    let mut text = Vec::new();
    match data {
        RecordData::AsSent(json) => {
            sluice_protocol::write_record_json_as_sent(&mut text, "s", &json, 0).unwrap()
        }
        other => {
            sluice_protocol::write_record_json(&mut text, "s", &other.into_value(), 0).unwrap()
        }
    }
    String::from_utf8(text).unwrap()
}

#[test]
fn records_selected_as_sent_print_as_the_tree_path_prints_them() {
    let mut walk = Walk { state: 7, keys: 0 };
    let empty = json!({});
    let vars = variables(&empty);
    // [left to the full selector, dropped, printed, selectors the tree path alone runs,
    // records respelled, records edited as sent]
    let mut outcomes = [0usize; 6];
    for _ in 0..300 {
        let parts = walk.selector();
        let selector = build(&parts);
        if !selector.changes_records_as_sent() {
            outcomes[3] += 1;
            continue;
        }
        // One editor for the selector's records, as for a page's.
        let mut editor = selector.editor();
        for _ in 0..100 {
            let record = walk.record();
            // As the page walk hands it over.
            let mut scanner = RecordScanner::for_text(record.as_bytes()).unwrap();
            scanner.for_editing(true);
            scanner.watch(Some("id"));
            let mut respelled = Vec::new();
            let scanned = scanner.scan_record(record.as_bytes(), &mut respelled);
            let entries = scanner.entries().to_vec();
            let watched = scanner.watched().cloned();
            let (class, respelled) = match scanned {
                Some((_, AsSent::Respelled)) => {
                    outcomes[4] += 1;
                    (
                        AsSent::Respelled,
                        Some(String::from_utf8(respelled).unwrap()),
                    )
                }
                Some((_, class)) => (class, None),
                None => panic!("{record} is not JSON"),
            };
            let expected = printed_by_tree(&selector, &record, &vars);
            let found = FoundRecord {
                class,
                sent: Bytes::from(record.clone()),
                respelled: respelled.clone().map(Bytes::from),
                text: Some(respelled.as_deref().unwrap_or(&record)),
                same_keys: false,
                entries: Some(&entries),
                watched: watched.as_ref(),
            };
            // After another record's edit.
            let mut edited = b"{}".to_vec();
            let Some(got) = select_as_sent(&mut editor, found, Some("id"), &vars, &mut edited)
            else {
                // The full selector decides: the tree path fails on this record.
                assert!(expected.is_err(), "record {record}\nselector {parts}");
                outcomes[0] += 1;
                continue;
            };
            let got = got.map(|kept| kept.into_data(&Bytes::from(edited)));
            if matches!(
                got,
                Some(RecordData::AsSent(_) | RecordData::AsSentWithField(..))
            ) {
                outcomes[5] += 1;
            }
            // Where an edited record has the cursor's field, the cursor reads what the
            // parsed record has there.
            if let Some(data @ RecordData::AsSentWithField(json, field)) = &got {
                let parsed = data.to_value();
                // Exactly there, not found again by a scan.
                assert_eq!(&json[field.key.clone()], br#""id""#, "record {record}");
                let value: Value = serde_json::from_slice(&json[field.value.clone()])
                    .unwrap_or_else(|_| panic!("record {record}: no value at {field:?}"));
                assert_eq!(Some(&value), parsed.get("id"), "record {record}");
                let read = data.with_field("id", |value| value.cloned());
                assert_eq!(
                    read.as_ref(),
                    parsed.get("id"),
                    "record {record}\nselector {parts}"
                );
            }
            let got = got.map(print);
            match &got {
                None => outcomes[1] += 1,
                Some(_) => outcomes[2] += 1,
            }
            assert_eq!(Ok(got), expected, "record {record}\nselector {parts}");
        }
    }
    // Every outcome must be common, or the test proves little.
    assert!(
        outcomes[0] > 50
            && outcomes[1] > 500
            && outcomes[2] > 1000
            && outcomes[4] > 1000
            && outcomes[5] > 1000,
        "{outcomes:?}"
    );
}

/// The selector of `cargo xtask bench` scenario (b), as real manifests write one.
#[test]
fn a_filter_and_top_level_add_and_remove_fields_run_as_sent() {
    let parts = json!({"selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
        "record_filter": {"type": "RecordFilter", "condition": "{{ record['status'] != 'deleted' }}"}},
        "transformations": [{"type": "AddFields", "fields": [{"type": "AddedFieldDefinition", "path": ["source"], "value": "bench"},
        {"type": "AddedFieldDefinition", "path": ["key"], "value": "{{ record['country'] }}-{{ record['id'] }}"}]},
        {"type": "RemoveFields", "field_pointers": [["tags"], ["score"]]}]});
    let selector = build(&parts);
    assert!(selector.changes_records_as_sent());
    let empty = json!({});
    let vars = variables(&empty);
    let record = r#"{"id":7,"status":"active","score":1.5,"country":"NL","tags":["a"]}"#;
    let entries = walked(record.as_bytes());
    assert!(matches!(
        selector.process_as_sent(record, &entries, None, &vars, &mut Vec::new()),
        Some(Ok(AsSentOutcome::Edited(..)))
    ));
    let found = FoundRecord {
        class: AsSent::Identical,
        sent: Bytes::from_static(record.as_bytes()),
        respelled: None,
        text: Some(record),
        same_keys: false,
        entries: Some(&entries),
        watched: None,
    };
    let mut buffer = Vec::new();
    let Some(Some(kept)) = select_as_sent(&mut selector.editor(), found, None, &vars, &mut buffer)
    else {
        panic!("dropped, or not selected as sent");
    };
    let RecordData::AsSent(edited) = kept.into_data(&Bytes::from(buffer)) else {
        panic!("not edited as sent");
    };
    assert_eq!(
        edited,
        Bytes::from_static(
            br#"{"id":7,"status":"active","country":"NL","source":"bench","key":"NL-7"}"#
        )
    );
    let deleted = r#"{"id":8,"status":"deleted"}"#;
    assert_eq!(
        selector
            .process_as_sent(
                deleted,
                &walked(deleted.as_bytes()),
                None,
                &vars,
                &mut Vec::new()
            )
            .unwrap()
            .unwrap(),
        AsSentOutcome::Dropped
    );
}

/// A page scanned and edited on two cores gives the records, in order, and the last one handed
/// on, that one core gives, and those print as the tree path prints them.
#[test]
fn a_page_edited_on_two_cores_is_the_page_edited_on_one() {
    use super::{Editing, SPLIT_PAGES_FROM, SentPage, on_two_cores};
    let mut walk = Walk { state: 11, keys: 0 };
    let empty = json!({});
    let vars = variables(&empty);
    let (mut split_pages, mut scanned_in_halves) = (0, 0);
    for _ in 0..40 {
        let parts = walk.selector();
        let selector = build(&parts);
        if !selector.changes_records_as_sent() {
            continue;
        }
        let records: Vec<String> = (0..600).map(|_| walk.record()).collect();
        let text = format!(r#"{{"data":[{}]}}"#, records.join(","));
        let body = Bytes::from(text.clone());
        let Some(page) = selector.records_as_sent(&text, &[], Some("id"), Vec::new()) else {
            continue;
        };
        // Pages from 64 KB are scanned in halves.
        let halves = selector.records_as_sent_beside(
            &text,
            &[],
            Some("id"),
            Vec::new(),
            Some(&on_two_cores),
        );
        assert_eq!(halves.as_ref(), Some(&page), "selector {parts}");
        scanned_in_halves += usize::from(body.len() >= 64 << 10);
        assert!(page.records.len() >= SPLIT_PAGES_FROM);
        let respelled = Bytes::from(page.respelled.clone());
        let sent_page = SentPage {
            selector: &selector,
            body: &body,
            respelled: &respelled,
            editing: Some(Editing {
                entries: &page.entries,
                body: &text,
                respelled: std::str::from_utf8(&respelled).unwrap(),
            }),
            cursor_field: Some("id"),
        };
        let one = sent_page.select(&page.records, &vars);
        let two = sent_page.select_on_two_cores(&page.records, &vars);
        let printed = |selected: Option<(Vec<RecordData>, Option<std::ops::Range<usize>>)>| {
            selected
                .map(|(records, last)| (records.into_iter().map(print).collect::<Vec<_>>(), last))
        };
        let (one, two) = (printed(one), printed(two));
        assert_eq!(one, two, "selector {parts}");
        if let Some((printed, _)) = two {
            split_pages += 1;
            let mut tree = Vec::new();
            selector.select_body(&body, &vars, &mut tree).unwrap();
            let tree: Vec<String> = tree
                .into_iter()
                .map(|value| print(RecordData::Parsed(value)))
                .collect();
            assert_eq!(printed, tree, "selector {parts}");
        }
    }
    assert!(split_pages > 10, "{split_pages}");
    assert!(scanned_in_halves > 10, "{scanned_in_halves}");
}
