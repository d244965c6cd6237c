//! The `records` target: a response body through a decoder and a record selector.

use serde_json::{Value, json};
use sluice_engine::MessageWriter;
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use sluice_protocol::{AsSent, RecordScanner, classify_as_sent};
use sluice_records::{Decoder, Parser, RecordSelector, SelectVariables};
use std::sync::Arc;

use crate::inputs::split_first;

/// The decoders the first input byte chooses between (modulo their number), as a
/// `retriever.decoder` of a manifest; `null` is the default JsonDecoder, and `PandasCsv` the
/// `ResponseToFileExtractor` of an AsyncRetriever's downloads.
pub const DECODER_KINDS: &[&str] = &[
    "JsonDecoder",
    "JsonlDecoder",
    "CsvDecoder",
    "CsvDecoder tab latin-1",
    "XmlDecoder",
    "GzipDecoder JsonlDecoder",
    "GzipDecoder CsvDecoder",
    "GzipDecoder JsonDecoder",
    "ZipfileDecoder JsonlDecoder",
    "ZipfileDecoder CsvDecoder",
    "JsonItemsDecoder",
    "IterableDecoder",
    "PandasCsv",
    "default",
];

/// Bits of the second input byte.
const WITH_FILTER: u8 = 1;
const WITH_TRANSFORMATIONS: u8 = 2;
const WITH_NORMALISATION: u8 = 4;
const TRANSFORM_FIRST: u8 = 8;

pub(crate) fn records(data: &[u8]) {
    let [kind, flags, rest @ ..] = data else {
        return;
    };
    let (path, body) = split_first(rest);
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let field_path: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let kind = DECODER_KINDS[usize::from(*kind) % DECODER_KINDS.len()];
    let Some(selector) = selector(kind, *flags, &field_path) else {
        return;
    };

    // The shortcut for pages passed through unchanged must print what parsing prints (it
    // reads text; the engine sends other bodies through the full selector).
    let as_sent = std::str::from_utf8(body).ok().and_then(|text| {
        selector.records_as_sent(
            text,
            &["next".to_owned(), "meta.cursor".to_owned()],
            Some("id"),
            Vec::new(),
        )
    });
    if let Some(page) = as_sent {
        for record in page.records {
            check_as_sent(&body[record.sent.clone()]);
            if record.class == AsSent::Respelled {
                // The page's scan respelled it as a scan of the record alone does.
                let mut alone = Vec::new();
                // Pages edited before printing keep their top-level nulls.
                let scanned = RecordScanner::for_text(body).and_then(|mut scanner| {
                    scanner.for_editing(selector.changes_records_as_sent());
                    scanner.scan_record(&body[record.sent], &mut alone)
                });
                assert!(matches!(scanned, Some((_, AsSent::Respelled))));
                assert_eq!(alone, page.respelled[record.respelled]);
            }
        }
    }

    let Ok(decoded) = selector.decode(body) else {
        return;
    };
    let _ = decoded.pagination_body();
    let empty = json!({});
    let vars = SelectVariables {
        stream_slice: &empty,
        next_page_token: None,
        stream_state: &empty,
        truncated: None,
    };
    let mut records = Vec::new();
    if selector.select(decoded, &vars, &mut records).is_err() {
        return;
    }
    let mut out = MessageWriter::new(Vec::new());
    for record in records {
        let _ = out.record("stream", record);
    }
}

/// A record found as sent and classified `Identical` prints byte for byte as its parsed value
/// does, and so does one `Respelled` as its respelling; one classified `Reprint` parses.
fn check_as_sent(bytes: &[u8]) {
    let Some(mut scanner) = RecordScanner::for_text(bytes) else {
        return;
    };
    let mut respelled = Vec::new();
    let Some((len, class)) = scanner.scan_record(bytes, &mut respelled) else {
        return;
    };
    let record = &bytes[..len];
    let printed_as = |json: &[u8]| {
        let mut out = Vec::new();
        sluice_protocol::write_record_json_as_sent(&mut out, "s", json, 0)
            .expect("writing to memory");
        String::from_utf8_lossy(&out).into_owned()
    };
    let reprinted = |parsed: &Value| {
        let mut out = Vec::new();
        sluice_protocol::write_record_json(&mut out, "s", parsed, 0).expect("writing to memory");
        String::from_utf8_lossy(&out).into_owned()
    };
    match class {
        AsSent::Identical | AsSent::Respelled => {
            let parsed: Value = serde_json::from_slice(record)
                .unwrap_or_else(|e| panic!("a record printed as sent does not parse: {e}"));
            let written = if class == AsSent::Identical {
                record
            } else {
                &respelled[..]
            };
            assert_eq!(
                printed_as(written),
                reprinted(&parsed),
                "a record printed as sent ({class:?}) differs from its parsed value printed"
            );
        }
        AsSent::Reprint => {
            if let Err(e) = serde_json::from_slice::<Value>(record) {
                panic!("a record classified as sure to parse does not: {e}");
            }
        }
        AsSent::Unsure => {}
    }
    assert_eq!(
        classify_as_sent(record),
        match class {
            AsSent::Respelled => AsSent::Reprint,
            class => class,
        }
    );
}

/// The selector of a stream with the decoder `kind` extracting at `field_path`.
fn selector(kind: &str, flags: u8, field_path: &[&str]) -> Option<RecordSelector> {
    let at = ManifestPath::root().key("streams").index(0);
    let mut selector = json!({
        "type": "RecordSelector",
        "extractor": {"type": "DpathExtractor", "field_path": field_path},
    });
    if flags & WITH_FILTER != 0 {
        selector["record_filter"] = json!({
            "type": "RecordFilter",
            "condition": "{{ record.get('id') is not none and record['id'] != stream_state.get('id') }}"
        });
    }
    if flags & WITH_NORMALISATION != 0 {
        selector["schema_normalization"] = json!("Default");
    }
    if flags & TRANSFORM_FIRST != 0 {
        selector["transform_before_filtering"] = json!(true);
    }
    let selector = model::RecordSelector::from_node(&selector, &at).ok()?;
    let transformations = if flags & WITH_TRANSFORMATIONS != 0 {
        transformations(&at)?
    } else {
        Vec::new()
    };
    let schema = json!({
        "type": "object",
        "properties": {
            "id": {"type": ["null", "integer"]},
            "name": {"type": ["null", "string"]},
            "amount": {"type": ["null", "number"]},
            "active": {"type": ["null", "boolean"]},
            "tags": {"type": ["null", "array"], "items": {"type": ["null", "string"]}},
            "meta": {"type": ["null", "object"], "properties": {"n": {"type": "integer"}}}
        }
    });
    let Value::Object(schema) = schema else {
        unreachable!()
    };
    let config = Arc::new(json!({"region": "eu"}));
    let (decoder, replaced) = decoder(kind, field_path);
    let decoder = match decoder {
        Some(decoder) => Some(model::Decoder::from_node(&decoder, &at.key("decoder")).ok()?),
        None => None,
    };
    let built = RecordSelector::from_model(
        &selector,
        decoder.as_ref(),
        &transformations,
        &schema,
        &config,
        &at,
    )
    .ok()?;
    Some(match replaced {
        Some(decoder) => built.with_decoder(decoder),
        None => built,
    })
}

/// The manifest's decoder for `kind`, or a decoder the engine puts in place of it.
fn decoder(kind: &str, field_path: &[&str]) -> (Option<Value>, Option<Decoder>) {
    let decoder = match kind {
        "default" => return (None, None),
        "PandasCsv" => {
            let preserve_na_values = field_path.len() % 2 == 1;
            let parser = Parser::PandasCsv { preserve_na_values };
            return (None, Some(Decoder::Streamed(parser)));
        }
        "CsvDecoder tab latin-1" => {
            json!({"type": "CsvDecoder", "delimiter": "\\t", "encoding": "latin-1", "set_values_to_none": ["", "NULL"]})
        }
        "JsonItemsDecoder" => {
            let items_path = if field_path.is_empty() {
                "data".to_owned()
            } else {
                field_path.join(".")
            };
            json!({"type": "JsonItemsDecoder", "items_path": items_path})
        }
        nested if nested.contains(' ') => {
            let (outer, inner) = nested.split_once(' ').unwrap_or((nested, ""));
            json!({"type": outer, "decoder": {"type": inner}})
        }
        plain => json!({"type": plain}),
    };
    (Some(decoder), None)
}

/// One of each kind of transformation that changes records.
fn transformations(at: &ManifestPath) -> Option<Vec<model::RecordTransformation>> {
    let list = json!([
        {"type": "AddFields", "fields": [
            {"type": "AddedFieldDefinition", "path": ["region"], "value": "{{ config.region }}"},
            {"type": "AddedFieldDefinition", "path": ["meta", "id_copy"], "value": "{{ record.get('id') }}"}
        ]},
        {"type": "RemoveFields", "field_pointers": [["secret"], ["*", "password"]]},
        {"type": "KeysToSnakeCase"},
        {"type": "KeysReplace", "old": " ", "new": "_"},
        {"type": "DpathFlattenFields", "field_path": ["attributes"]},
        {"type": "FlattenFields", "flatten_lists": true}
    ]);
    let Value::Array(list) = list else {
        return None;
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            model::RecordTransformation::from_node(t, &at.key("transformations").index(i)).ok()
        })
        .collect()
}
