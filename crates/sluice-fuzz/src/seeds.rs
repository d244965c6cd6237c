//! Seed corpora, made from the conformance cases (`fixtures/conformance/*/`): their manifests,
//! configs, states and cassettes, the templates and datetime formats their manifests use, and
//! their recorded responses as bodies and paginated pages.
//!
//! ```
//! let dir = sluice_fuzz::seeds::conformance_dir();
//! let seeds = sluice_fuzz::seeds::seeds("manifest", &dir);
//! assert!(seeds.len() > 100);
//! ```

use serde_json::{Map, Value, json};
use sluice_http::Cassette;
use sluice_slice::datetime::DatetimeFormat;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::macros::datetime;

pub use crate::cases::conformance_dir;
use crate::cases::{self, Kind};
use crate::inputs::join;
use crate::records::DECODER_KINDS;

/// The seed inputs of the target named `target` (see [`crate::TARGETS`]), made from the
/// conformance cases in `conformance_dir`: distinct, in a stable order. Empty for an unknown
/// target.
pub fn seeds(target: &str, conformance_dir: &Path) -> Vec<Vec<u8>> {
    let cases = read_cases(conformance_dir);
    let mut seeds = BTreeSet::new();
    match target {
        "manifest" => seeds.extend(cases.iter().map(|c| c.manifest.clone().into_bytes())),
        "template" => template_seeds(&cases, &mut seeds),
        "literal" => literal_seeds(&cases, &mut seeds),
        "datetime" => datetime_seeds(&cases, &mut seeds),
        "records" => records_seeds(&cases, &mut seeds),
        "paginator" => paginator_seeds(&cases, &mut seeds),
        "state" => {
            for name in cases::names(conformance_dir, Kind::Incremental) {
                let state = std::fs::read_to_string(conformance_dir.join(&name).join("state.json"))
                    .unwrap_or_else(|_| "[]".to_owned());
                seeds.insert(format!("{name}\n{state}").into_bytes());
            }
        }
        "config" => {
            for name in cases::names(conformance_dir, Kind::WithSpec) {
                if let Some(case) = cases.iter().find(|c| c.name == name) {
                    seeds.insert(format!("{name}\n{}", case.config).into_bytes());
                }
            }
        }
        "cassette" => seeds.extend(cases.iter().map(|c| c.cassette_text.clone().into_bytes())),
        _ => {}
    }
    seeds.into_iter().collect()
}

/// Writes the seeds of `target` into `dir`, one file each named by its index.
pub fn write_seeds(target: &str, conformance_dir: &Path, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let seeds = seeds(target, conformance_dir);
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:05}")), seed)?;
    }
    Ok(seeds.len())
}

/// One case's files, as text and parsed.
struct CaseFiles {
    name: String,
    manifest: String,
    /// The manifest as written (no references resolved).
    tree: Value,
    /// The manifest resolved, when it loads.
    resolved: Option<Value>,
    config: Value,
    cassette_text: String,
    cassette: Option<Cassette>,
}

fn read_cases(dir: &Path) -> Vec<CaseFiles> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    dirs.sort();
    dirs.iter()
        .filter_map(|dir| {
            let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
            let manifest = read("manifest.yaml")?;
            let cassette_text = read("cassette.json").unwrap_or_default();
            Some(CaseFiles {
                name: dir.file_name()?.to_str()?.to_owned(),
                tree: sluice_manifest::yaml::parse(&manifest).unwrap_or(Value::Null),
                resolved: sluice_manifest::load_str(&manifest)
                    .ok()
                    .map(|m| m.resolved),
                manifest,
                config: read("config.json")
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or_else(|| json!({})),
                cassette: Cassette::from_json_str(&cassette_text).ok(),
                cassette_text,
            })
        })
        .collect()
}

fn template_seeds(cases: &[CaseFiles], seeds: &mut BTreeSet<Vec<u8>>) {
    let mut templates = BTreeSet::new();
    for case in cases {
        let mut strings = Vec::new();
        collect_strings(&case.tree, &mut strings);
        for text in strings {
            if text.contains("{{") || text.contains("{%") {
                templates.insert(text.to_owned());
            }
        }
    }
    // Each template once, over a context built from the first case's data.
    let context = cases.first().map(context_of).unwrap_or_else(|| json!({}));
    let context = context.to_string();
    for template in templates {
        seeds.insert(join(&[template.as_bytes(), context.as_bytes()]));
    }
    // And each case's context with a template reading all of it.
    for case in cases {
        let context = context_of(case).to_string();
        seeds.insert(join(&[
            b"{{ config }} {{ response }} {{ stream_slice }}",
            context.as_bytes(),
        ]));
    }
}

/// The variables a template of the case sees: its config, a slice, its first response and
/// that response's first record and headers.
fn context_of(case: &CaseFiles) -> Value {
    let exchange = case.cassette.as_ref().and_then(|c| c.exchanges.first());
    let response = exchange
        .and_then(|e| e.response.body.as_ref()?.to_bytes().ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or_else(|| json!({}));
    let record = first_array(&response)
        .and_then(|items| items.first().cloned())
        .unwrap_or_else(|| json!({}));
    let headers: Map<String, Value> = exchange
        .map(|e| {
            e.response
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "config": case.config,
        "parameters": {"name": case.name},
        "stream_slice": {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-31T23:59:59Z"},
        "next_page_token": {"next_page_token": 2},
        "stream_state": {},
        "response": response,
        "record": record,
        "headers": headers,
    })
}

fn literal_seeds(cases: &[CaseFiles], seeds: &mut BTreeSet<Vec<u8>>) {
    // What Python's literal_eval reads and refuses, then every string the manifests hold.
    const LITERALS: &[&str] = &[
        "5",
        "-7",
        "1_000",
        "0x1F",
        "0o17",
        "0b101",
        "007",
        "1.5",
        "1e400",
        "-0.0",
        ".5",
        "True",
        "False",
        "None",
        "true",
        "'a'",
        "\"b\"",
        "b'x'",
        "r'\\d'",
        "'a' 'b'",
        "u'\\u00e9'",
        "['a', 1]",
        "(1,)",
        "1, 2",
        "{1, 2}",
        "{'a': (1, 2)}",
        "{1: 'x'}",
        "# comment\n5",
        "[1, [2, [3]]]",
        "'\\x41\\N{BULLET}'",
        "2024-01-01",
        "a, b",
        "",
    ];
    seeds.extend(LITERALS.iter().map(|l| l.as_bytes().to_vec()));
    for case in cases {
        let mut strings = Vec::new();
        collect_strings(&case.tree, &mut strings);
        collect_strings(&case.config, &mut strings);
        seeds.extend(strings.into_iter().map(|s| s.as_bytes().to_vec()));
    }
}

fn datetime_seeds(cases: &[CaseFiles], seeds: &mut BTreeSet<Vec<u8>>) {
    let mut formats = BTreeSet::new();
    let mut durations = BTreeSet::new();
    let mut values = BTreeSet::new();
    for case in cases {
        for key in ["datetime_format", "format", "cursor_datetime_formats"] {
            let mut found = Vec::new();
            collect_key(&case.tree, key, &mut found);
            for value in found {
                let mut strings = Vec::new();
                collect_strings(value, &mut strings);
                formats.extend(strings.into_iter().map(str::to_owned));
            }
        }
        for key in ["step", "cursor_granularity", "lookback_window"] {
            let mut found = Vec::new();
            collect_key(&case.tree, key, &mut found);
            durations.extend(
                found
                    .into_iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        let mut strings = Vec::new();
        collect_strings(&case.config, &mut strings);
        values.extend(
            strings
                .into_iter()
                .filter(|s| sluice_slice::datetime::parse_flexible(s).is_ok())
                .map(str::to_owned),
        );
    }
    let fixed = datetime!(2024-03-10 01:02:03.456789 UTC);
    for format in &formats {
        // The format with a value written in it, with the configs' dates and with durations.
        let written = DatetimeFormat::new(format.as_str()).format(fixed);
        seeds.insert(join(&[format.as_bytes(), written.as_bytes()]));
        for value in values.iter().chain(&durations) {
            seeds.insert(join(&[format.as_bytes(), value.as_bytes()]));
        }
    }
}

fn records_seeds(cases: &[CaseFiles], seeds: &mut BTreeSet<Vec<u8>>) {
    let kind_index = |name: &str| {
        u8::try_from(DECODER_KINDS.iter().position(|k| *k == name).unwrap_or(0)).unwrap_or(0)
    };
    for case in cases {
        let resolved = case.resolved.as_ref().unwrap_or(&case.tree);
        let mut paths = Vec::new();
        collect_key(resolved, "field_path", &mut paths);
        let path = paths
            .first()
            .and_then(|p| p.as_array())
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default();
        let mut decoders = Vec::new();
        collect_key(resolved, "decoder", &mut decoders);
        let kind = decoders
            .first()
            .map(|d| {
                let outer = d.get("type").and_then(Value::as_str).unwrap_or("");
                match d.pointer("/decoder/type").and_then(Value::as_str) {
                    Some(inner) => format!("{outer} {inner}"),
                    None => outer.to_owned(),
                }
            })
            .unwrap_or_else(|| "JsonDecoder".to_owned());
        let bodies = case
            .cassette
            .iter()
            .flat_map(|c| &c.exchanges)
            .filter_map(|e| e.response.body.as_ref()?.to_bytes().ok());
        for body in bodies.take(4) {
            for flags in [0, 0x0F] {
                seeds.insert(join(&[&[kind_index(&kind), flags], path.as_bytes(), &body]));
            }
            // The same body as other decoders would receive it.
            let as_lines = json_lines(&body);
            seeds.insert(join(&[&[kind_index("JsonlDecoder"), 0], b"", &as_lines]));
            seeds.insert(join(&[
                &[kind_index("GzipDecoder JsonlDecoder"), 0],
                b"",
                &gzip(&as_lines),
            ]));
            seeds.insert(join(&[
                &[kind_index("ZipfileDecoder JsonlDecoder"), 0],
                b"",
                &zip(&as_lines),
            ]));
        }
    }
    // Hand-made bodies for the decoders no case exercises much.
    let csv = b"id,name,amount\n1,Ada,1.5\n2,\"Hopper, Grace\",NA\n,,\n";
    let xml =
        b"<?xml version=\"1.0\"?><root><item id=\"1\"><name>a</name></item><item id=\"2\"/></root>";
    let by_kind: [(&str, &str, Vec<u8>); 8] = [
        ("CsvDecoder", "", csv.to_vec()),
        (
            "CsvDecoder tab latin-1",
            "",
            b"id\tname\n1\t\xe9t\xe9\n".to_vec(),
        ),
        ("GzipDecoder CsvDecoder", "", gzip(csv)),
        ("ZipfileDecoder CsvDecoder", "", zip(csv)),
        ("PandasCsv", "", csv.to_vec()),
        ("XmlDecoder", "root/item", xml.to_vec()),
        (
            "JsonItemsDecoder",
            "data",
            br#"{"data": [{"id": 1}, {"id": 2}]}"#.to_vec(),
        ),
        ("IterableDecoder", "", b"one\ntwo\n".to_vec()),
    ];
    for (kind, path, body) in by_kind {
        seeds.insert(join(&[&[kind_index(kind), 0x0F], path.as_bytes(), &body]));
    }
}

fn paginator_seeds(cases: &[CaseFiles], seeds: &mut BTreeSet<Vec<u8>>) {
    for case in cases {
        let Some(resolved) = &case.resolved else {
            continue;
        };
        let mut paginators = Vec::new();
        collect_key(resolved, "paginator", &mut paginators);
        let Some(paginator) = paginators
            .into_iter()
            .find(|p| p.get("type") == Some(&json!("DefaultPaginator")))
        else {
            continue;
        };
        let paginator = paginator.to_string();
        let exchanges = case.cassette.iter().flat_map(|c| &c.exchanges);
        for exchange in exchanges.take(3) {
            let headers: String = exchange
                .response
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}\n"))
                .collect();
            let body = exchange
                .response
                .body
                .as_ref()
                .and_then(|b| b.to_bytes().ok())
                .unwrap_or_default();
            let count = serde_json::from_slice::<Value>(&body)
                .ok()
                .as_ref()
                .and_then(first_array)
                .map_or(0, |items| u8::try_from(items.len()).unwrap_or(u8::MAX));
            let mut first = vec![count];
            first.extend_from_slice(paginator.as_bytes());
            seeds.insert(join(&[&first, headers.as_bytes(), &body]));
        }
    }
}

/// Every string in `value`, keys included.
fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(map) => {
            for (key, item) in map {
                out.push(key);
                collect_strings(item, out);
            }
        }
        _ => {}
    }
}

/// The values of every entry named `key`, at any depth.
fn collect_key<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect_key(item, key, out)),
        Value::Object(map) => {
            for (name, item) in map {
                if name == key {
                    out.push(item);
                }
                collect_key(item, key, out);
            }
        }
        _ => {}
    }
}

/// The body itself when it is a list, or its first list-valued entry.
fn first_array(value: &Value) -> Option<&Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.values().find_map(Value::as_array),
        _ => None,
    }
}

/// A JSON body's records as JSON lines; other bodies unchanged.
fn json_lines(body: &[u8]) -> Vec<u8> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let Some(items) = first_array(&value) else {
        return body.to_vec();
    };
    let mut lines = Vec::new();
    for item in items {
        lines.extend_from_slice(item.to_string().as_bytes());
        lines.push(b'\n');
    }
    lines
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn zip(bytes: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for name in ["part-1", "part-2"] {
        if writer.start_file(name, options).is_err() || writer.write_all(bytes).is_err() {
            return Vec::new();
        }
    }
    writer
        .finish()
        .map(|cursor| cursor.into_inner())
        .unwrap_or_default()
}
