//! Normalising an Airbyte connector's stdout into what conformance compares, and a readable
//! diff of two normalised outputs. Shared verbatim by the conformance test
//! (`crates/sluice-runner/tests/it/conformance.rs`) and `cargo xtask conformance` (via `#[path]`),
//! so sluice and the reference are always reduced the same way. Depends on serde_json only.
//!
//! Per command the normalised form keeps:
//! - `exit`: `"zero"` or `"nonzero"`;
//! - `errors`: the `failure_type` of every ERROR trace, sorted (streams fail concurrently);
//! - read: `records` = stream name -> the `data` of its RECORD messages in emitted order
//!   (sorted by their JSON text when the case says `"record_order": "sorted"`, for streams whose
//!   partitions interleave), and `states` = stream name -> the last STATE's `stream_state` and
//!   `sourceStats` (`"__global__"` for a GLOBAL state, `"__legacy__"` for a LEGACY one);
//! - check: `status` of the CONNECTION_STATUS (`SUCCEEDED` / `FAILED`);
//! - discover: `streams` = for each catalog stream, its name, supported sync modes, cursor and
//!   primary-key fields;
//! - any command: `controls` = the config of each CONTROL message, in order, when there is at
//!   least one (a config migration, an OAuth token rotation). The reference's configs carry the
//!   manifest (`__injected_declarative_manifest`, which its entrypoint injects when given
//!   `--manifest-path`): it is dropped, as sluice keeps the manifest out of the config. A
//!   rotated token's `token_expiry_date` (now plus the token's lifetime, a wall-clock figure)
//!   becomes [`WALL_CLOCK_MARKER`].
//!
//! Log lines, traces other than ERROR, messages' text and timestamps are not compared.
//!
//! A per-partition state (the shape of the reference's `ConcurrentPerPartitionCursor`: an object
//! with `use_global_cursor`, `states`, `state`, `lookback_window`, `parent_state`) is brought to a
//! canonical form by [`canonicalise`], because parts of it depend on timing, not on the data:
//! - `lookback_window` is the previous sync's wall-clock duration in seconds: it becomes
//!   [`LOOKBACK_WINDOW_MARKER`];
//! - `states` (one entry per partition) is sorted by the entries' JSON text: partitions are
//!   generated and closed in a varying order;
//! - the same applies to per-partition states nested in `parent_state` (a parent that is itself
//!   partitioned);
//! - `sourceStats.recordCount` is dropped: it counts the records since the previous STATE, and
//!   a per-partition cursor emits its first STATE when the first partition closes, while other
//!   partitions are still emitting records, so the split varies from run to run.
//!
//! [`normalise`] applies it, and [`diff`] applies it again to both sides, so an `expected.json`
//! recorded before a rule existed still compares under the rule (it is idempotent).

// Each of the two crates including this file uses a different part of it.
#![allow(dead_code)]

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What a per-partition state's `lookback_window` (a wall-clock figure) is replaced by.
pub const LOOKBACK_WINDOW_MARKER: &str = "<wall-clock seconds>";

/// What a CONTROL config's `token_expiry_date` (a wall-clock instant) is replaced by.
pub const WALL_CLOCK_MARKER: &str = "<wall-clock instant>";

/// The config key under which the reference's entrypoint injects the manifest.
const INJECTED_MANIFEST_KEY: &str = "__injected_declarative_manifest";

/// The Airbyte commands a case can run.
pub const COMMANDS: [&str; 3] = ["check", "discover", "read"];

/// How a case's `case.json` asks its records to be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOrder {
    /// In the order the connector emitted them (per stream).
    Emitted,
    /// Sorted by their JSON text, for streams whose partitions run concurrently.
    Sorted,
}

/// A case's `case.json`: `{"description": "...", "commands": ["read"], "record_order": "emitted"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSpec {
    pub description: String,
    pub commands: Vec<String>,
    pub record_order: RecordOrder,
}

impl CaseSpec {
    /// Parses `case.json`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("case.json is not JSON: {e}"))?;
        let description = value
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let commands: Vec<String> = match value.get("commands") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|c| match c.as_str() {
                    Some(name) if COMMANDS.contains(&name) => Ok(name.to_owned()),
                    _ => Err(format!(
                        "case.json: unknown command {c}; expected one of {COMMANDS:?}"
                    )),
                })
                .collect::<Result<_, _>>()?,
            None => vec!["read".to_owned()],
            Some(other) => {
                return Err(format!("case.json: `commands` must be a list, got {other}"));
            }
        };
        if commands.is_empty() {
            return Err("case.json: `commands` is empty".to_owned());
        }
        let record_order = match value.get("record_order").and_then(Value::as_str) {
            None | Some("emitted") => RecordOrder::Emitted,
            Some("sorted") => RecordOrder::Sorted,
            Some(other) => {
                return Err(format!(
                    "case.json: record_order {other:?} is not \"emitted\" or \"sorted\""
                ));
            }
        };
        Ok(Self {
            description,
            commands,
            record_order,
        })
    }
}

/// Reduces a connector's stdout for `command` to its normalised form. Lines that are not JSON
/// objects (stray prints) are skipped.
pub fn normalise(command: &str, stdout: &str, exit_success: bool, order: RecordOrder) -> Value {
    let mut records: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut states: BTreeMap<String, Value> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut status = Value::Null;
    let mut streams: Vec<Value> = Vec::new();
    let mut controls: Vec<Value> = Vec::new();

    for line in stdout.lines() {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        match message.get("type").and_then(Value::as_str) {
            Some("RECORD") => {
                let record = &message["record"];
                let name = qualified_name(record.get("namespace"), record.get("stream"));
                records
                    .entry(name)
                    .or_default()
                    .push(record.get("data").cloned().unwrap_or(Value::Null));
            }
            Some("STATE") => {
                let (key, value) = normalise_state(&message["state"]);
                states.insert(key, value);
            }
            Some("TRACE") => {
                let trace = &message["trace"];
                if trace.get("type").and_then(Value::as_str) == Some("ERROR") {
                    let failure = trace["error"]
                        .get("failure_type")
                        .and_then(Value::as_str)
                        .unwrap_or("none");
                    errors.push(failure.to_owned());
                }
            }
            Some("CONNECTION_STATUS") => {
                status = message["connectionStatus"]
                    .get("status")
                    .cloned()
                    .unwrap_or(Value::Null);
            }
            Some("CONTROL") => {
                if let Some(Value::Object(config)) = message["control"]
                    .get("connectorConfig")
                    .and_then(|c| c.get("config"))
                {
                    let mut config = config.clone();
                    config.shift_remove(INJECTED_MANIFEST_KEY);
                    controls.push(Value::Object(config));
                }
            }
            Some("CATALOG") => {
                if let Some(Value::Array(catalog)) = message["catalog"].get("streams") {
                    streams = catalog.iter().map(normalise_catalog_stream).collect();
                }
            }
            _ => {}
        }
    }
    errors.sort();
    if order == RecordOrder::Sorted {
        for list in records.values_mut() {
            list.sort_by_cached_key(|r| r.to_string());
        }
    }

    let mut out = Map::new();
    out.insert(
        "exit".into(),
        json!(if exit_success { "zero" } else { "nonzero" }),
    );
    out.insert("errors".into(), json!(errors));
    match command {
        "read" => {
            out.insert(
                "records".into(),
                Value::Object(
                    records
                        .into_iter()
                        .map(|(k, v)| (k, Value::Array(v)))
                        .collect(),
                ),
            );
            out.insert("states".into(), Value::Object(states.into_iter().collect()));
        }
        "check" => {
            out.insert("status".into(), status);
        }
        "discover" => {
            out.insert("streams".into(), Value::Array(streams));
        }
        _ => {}
    }
    if !controls.is_empty() {
        out.insert("controls".into(), Value::Array(controls));
    }
    canonicalise(&Value::Object(out))
}

/// The canonical form of a normalised command output: every stream's final state has the
/// per-partition rules of the module documentation applied. Anything else is returned unchanged,
/// and applying it twice changes nothing.
pub fn canonicalise(output: &Value) -> Value {
    let mut output = output.clone();
    if let Some(Value::Array(controls)) = output.get_mut("controls") {
        for config in controls {
            mark_token_expiry(config);
        }
    }
    if let Some(Value::Object(states)) = output.get_mut("states") {
        for entry in states.values_mut() {
            let Value::Object(entry) = entry else {
                continue;
            };
            let mut partitioned = false;
            if let Some(stream_state) = entry.get_mut("stream_state") {
                partitioned |= canonicalise_stream_state(stream_state);
            }
            // A GLOBAL state: `{"global": {"shared_state": ..., "stream_states": [...]}}`.
            if let Some(Value::Array(streams)) = entry
                .get_mut("global")
                .and_then(|g| g.get_mut("stream_states"))
            {
                for stream in streams {
                    if let Some(stream_state) = stream.get_mut("stream_state") {
                        partitioned |= canonicalise_stream_state(stream_state);
                    }
                }
            }
            if partitioned && let Some(Value::Object(stats)) = entry.get_mut("sourceStats") {
                stats.remove("recordCount");
            }
        }
    }
    output
}

/// Replaces every `token_expiry_date` string in a CONTROL config by [`WALL_CLOCK_MARKER`].
fn mark_token_expiry(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "token_expiry_date" && child.is_string() {
                    *child = json!(WALL_CLOCK_MARKER);
                } else {
                    mark_token_expiry(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mark_token_expiry),
        _ => {}
    }
}

/// Whether `state` has the shape of a per-partition cursor's state.
fn is_per_partition_state(state: &Map<String, Value>) -> bool {
    state.contains_key("use_global_cursor")
        || state.contains_key("parent_state")
        || state.get("states").is_some_and(Value::is_array)
        || (state.contains_key("state") && state.contains_key("lookback_window"))
}

/// Canonicalises one `stream_state` in place; returns whether it is a per-partition state.
fn canonicalise_stream_state(state: &mut Value) -> bool {
    let Value::Object(state) = state else {
        return false;
    };
    if !is_per_partition_state(state) {
        return false;
    }
    if let Some(lookback) = state.get_mut("lookback_window") {
        *lookback = json!(LOOKBACK_WINDOW_MARKER);
    }
    if let Some(Value::Array(partitions)) = state.get_mut("states") {
        partitions.sort_by_cached_key(|p| p.to_string());
    }
    if let Some(Value::Object(parents)) = state.get_mut("parent_state") {
        for parent in parents.values_mut() {
            canonicalise_stream_state(parent);
        }
    }
    true
}

fn qualified_name(namespace: Option<&Value>, name: Option<&Value>) -> String {
    let name = name.and_then(Value::as_str).unwrap_or_default();
    match namespace.and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

fn normalise_state(state: &Value) -> (String, Value) {
    let stats = state.get("sourceStats").cloned().unwrap_or(Value::Null);
    match state.get("type").and_then(Value::as_str) {
        Some("GLOBAL") => (
            "__global__".to_owned(),
            json!({"global": state.get("global").cloned(), "sourceStats": stats}),
        ),
        Some("STREAM") => {
            let stream = &state["stream"];
            let descriptor = &stream["stream_descriptor"];
            let name = qualified_name(descriptor.get("namespace"), descriptor.get("name"));
            (
                name,
                json!({"stream_state": stream.get("stream_state").cloned(), "sourceStats": stats}),
            )
        }
        _ => (
            "__legacy__".to_owned(),
            json!({"data": state.get("data").cloned(), "sourceStats": stats}),
        ),
    }
}

fn normalise_catalog_stream(stream: &Value) -> Value {
    let field = |name: &str| stream.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "name": field("name"),
        "supported_sync_modes": field("supported_sync_modes"),
        "source_defined_cursor": field("source_defined_cursor"),
        "default_cursor_field": field("default_cursor_field"),
        "source_defined_primary_key": field("source_defined_primary_key"),
    })
}

/// The differences between two normalised outputs, one readable line each
/// (`read: records["users"][2].name: expected "Ann", got "Anne"`), at most `limit` of them.
///
/// Both sides are [`canonicalise`]d first, so an `expected.json` recorded before a
/// canonicalisation rule existed is compared under it.
pub fn diff(expected: &Value, actual: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let (expected, actual) = (canonicalise(expected), canonicalise(actual));
    diff_at(&expected, &actual, &mut String::new(), &mut out, limit);
    out
}

fn diff_at(
    expected: &Value,
    actual: &Value,
    path: &mut String,
    out: &mut Vec<String>,
    limit: usize,
) {
    if out.len() >= limit || expected == actual {
        return;
    }
    let here = if path.is_empty() {
        "(top)".to_owned()
    } else {
        path.clone()
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let len = path.len();
                push_key(path, key);
                match a.get(key) {
                    Some(av) => diff_at(ev, av, path, out, limit),
                    None if out.len() < limit => {
                        out.push(format!("{path}: missing, expected {}", short(ev)))
                    }
                    None => {}
                }
                path.truncate(len);
            }
            for (key, av) in a {
                if !e.contains_key(key) && out.len() < limit {
                    let len = path.len();
                    push_key(path, key);
                    out.push(format!("{path}: unexpected {}", short(av)));
                    path.truncate(len);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{here}: expected {} items, got {}",
                    e.len(),
                    a.len()
                ));
            }
            for (index, (ev, av)) in e.iter().zip(a).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                diff_at(ev, av, path, out, limit);
                path.truncate(len);
            }
            if out.len() < limit {
                for (index, extra) in a.iter().enumerate().skip(e.len()).take(3) {
                    out.push(format!("{here}[{index}]: unexpected {}", short(extra)));
                }
                for (index, missing) in e.iter().enumerate().skip(a.len()).take(3) {
                    out.push(format!(
                        "{here}[{index}]: missing, expected {}",
                        short(missing)
                    ));
                }
            }
        }
        _ => out.push(format!(
            "{here}: expected {}, got {}",
            short(expected),
            short(actual)
        )),
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        path.push('.');
        path.push_str(key);
    } else if path.is_empty() {
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_owned())));
    }
}

/// A value's JSON, cut short so one line stays readable.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 120 {
        return text;
    }
    let cut: String = text.chars().take(117).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ_OUTPUT: &str = r#"{"type":"LOG","log":{"level":"INFO","message":"Starting syncing"}}
{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1,"stream_status":{"stream_descriptor":{"name":"users"},"status":"STARTED"}}}
{"type":"RECORD","record":{"stream":"users","data":{"id":2,"name":"Bo"},"emitted_at":1}}
{"type":"RECORD","record":{"stream":"orders","data":{"id":9},"emitted_at":1}}
{"type":"RECORD","record":{"stream":"users","data":{"id":1,"name":"Ann"},"emitted_at":2}}
{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":null},"stream_state":{"__ab_no_cursor_state_message":true}},"sourceStats":{"recordCount":2.0}}}
not json at all
{"type":"TRACE","trace":{"type":"ERROR","emitted_at":3,"error":{"message":"boom","failure_type":"system_error"}}}
{"type":"TRACE","trace":{"type":"ERROR","emitted_at":3,"error":{"message":"bad key","failure_type":"config_error"}}}
"#;

    #[test]
    fn read_output_keeps_records_states_and_failure_types() {
        let normalised = normalise("read", READ_OUTPUT, false, RecordOrder::Emitted);
        assert_eq!(
            normalised,
            json!({
                "exit": "nonzero",
                "errors": ["config_error", "system_error"],
                "records": {"orders": [{"id": 9}], "users": [{"id": 2, "name": "Bo"}, {"id": 1, "name": "Ann"}]},
                "states": {"users": {"stream_state": {"__ab_no_cursor_state_message": true}, "sourceStats": {"recordCount": 2.0}}}
            })
        );
        let sorted = normalise("read", READ_OUTPUT, false, RecordOrder::Sorted);
        assert_eq!(sorted["records"]["users"][0]["id"], 1);
    }

    #[test]
    fn check_and_discover_keep_status_and_stream_shapes() {
        let check = r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"401"}}"#;
        assert_eq!(
            normalise("check", check, true, RecordOrder::Emitted),
            json!({"exit": "zero", "errors": [], "status": "FAILED"})
        );
        let discover = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"users","json_schema":{},"supported_sync_modes":["full_refresh"],"source_defined_primary_key":[["id"]],"is_resumable":false}]}}"#;
        assert_eq!(
            normalise("discover", discover, true, RecordOrder::Emitted)["streams"],
            json!([{"name": "users", "supported_sync_modes": ["full_refresh"], "source_defined_cursor": null,
                    "default_cursor_field": null, "source_defined_primary_key": [["id"]]}])
        );
    }

    #[test]
    fn diff_names_stream_record_index_and_field() {
        let expected = json!({"exit": "zero", "records": {"users": [{"id": 1, "name": "Ann"}, {"id": 2}]}, "states": {}});
        let actual = json!({"exit": "zero", "records": {"users": [{"id": 1, "name": "Anne"}]}, "states": {"x": 1}});
        assert_eq!(
            diff(&expected, &actual, 10),
            vec![
                "records.users: expected 2 items, got 1".to_owned(),
                "records.users[0].name: expected \"Ann\", got \"Anne\"".to_owned(),
                "records.users[1]: missing, expected {\"id\":2}".to_owned(),
                "states.x: unexpected 1".to_owned(),
            ]
        );
        assert!(diff(&expected, &expected, 10).is_empty());
        let odd_key = diff(&json!({"a b": 1}), &json!({"a b": 2}), 10);
        assert_eq!(odd_key, vec!["a b: expected 1, got 2".to_owned()]);
        assert_eq!(diff(&json!([1, 2, 3]), &json!([4, 5, 6]), 2).len(), 2);
    }

    fn per_partition_state(states: Value, lookback: u64, count: f64) -> String {
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {
            "stream_descriptor": {"name": "items", "namespace": null},
            "stream_state": {"use_global_cursor": false, "states": states,
                             "state": {"updated_at": "2024-01-20"}, "lookback_window": lookback,
                             "parent_state": {"parents": {"use_global_cursor": false, "lookback_window": 2,
                                              "states": [{"partition": {"id": "b"}, "cursor": {"u": "2"}},
                                                         {"partition": {"id": "a"}, "cursor": {"u": "1"}}]}}}},
            "sourceStats": {"recordCount": count}}})
        .to_string()
    }

    #[test]
    fn per_partition_state_is_canonical_whatever_the_timing() {
        let eu = json!({"partition": {"region": "eu"}, "cursor": {"updated_at": "2024-01-12"}});
        let us = json!({"partition": {"region": "us"}, "cursor": {"updated_at": "2024-01-20"}});
        let one = normalise(
            "read",
            &per_partition_state(json!([us, eu]), 1, 3.0),
            true,
            RecordOrder::Sorted,
        );
        let other = normalise(
            "read",
            &per_partition_state(json!([eu, us]), 2, 1.0),
            true,
            RecordOrder::Emitted,
        );
        assert_eq!(one, other);
        let state = &one["states"]["items"];
        assert_eq!(state["stream_state"]["states"], json!([eu, us]));
        assert_eq!(
            state["stream_state"]["lookback_window"],
            LOOKBACK_WINDOW_MARKER
        );
        let parent = &state["stream_state"]["parent_state"]["parents"];
        assert_eq!(parent["lookback_window"], LOOKBACK_WINDOW_MARKER);
        assert_eq!(parent["states"][0]["partition"]["id"], "a");
        assert_eq!(state["sourceStats"], json!({}));
        // Idempotent, and applied to both sides by diff: a raw expected side still matches.
        assert_eq!(canonicalise(&one), one);
        let raw = json!({"exit": "zero", "states": {"items": {
            "stream_state": {"use_global_cursor": true, "state": {"u": "1"}, "lookback_window": 7},
            "sourceStats": {"recordCount": 4.0}}}});
        let later = json!({"exit": "zero", "states": {"items": {
            "stream_state": {"use_global_cursor": true, "state": {"u": "1"}, "lookback_window": 1},
            "sourceStats": {"recordCount": 0.0}}}});
        assert!(diff(&raw, &later, 10).is_empty());
        let moved = json!({"exit": "zero", "states": {"items": {
            "stream_state": {"use_global_cursor": true, "state": {"u": "2"}, "lookback_window": 1},
            "sourceStats": {"recordCount": 0.0}}}});
        assert_eq!(
            diff(&raw, &moved, 10),
            vec!["states.items.stream_state.state.u: expected \"1\", got \"2\"".to_owned()]
        );
    }

    #[test]
    fn plain_states_keep_their_record_count_and_fields() {
        let flat = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":{"updated_at":"2024-01-05","lookback_window":3,"states":"not a list"}},"sourceStats":{"recordCount":2.0}}}"#;
        let normalised = normalise("read", flat, true, RecordOrder::Sorted);
        assert_eq!(
            normalised["states"]["events"],
            json!({"stream_state": {"updated_at": "2024-01-05", "lookback_window": 3, "states": "not a list"},
                   "sourceStats": {"recordCount": 2.0}})
        );
    }

    #[test]
    fn control_configs_are_kept_without_the_injected_manifest_or_the_clock() {
        let output = r#"{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG","emitted_at":1.5,"connectorConfig":{"config":{"region":"eu","__injected_declarative_manifest":{"version":"6.0.0"},"credentials":{"token_expiry_date":"2026-01-01T00:00:00+00:00"}}}}}
{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}"#;
        let normalised = normalise("check", output, true, RecordOrder::Emitted);
        assert_eq!(
            normalised["controls"],
            json!([{"region": "eu", "credentials": {"token_expiry_date": WALL_CLOCK_MARKER}}])
        );
        let quiet = normalise(
            "check",
            r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}"#,
            true,
            RecordOrder::Emitted,
        );
        assert!(
            quiet.get("controls").is_none(),
            "no CONTROL, no key: {quiet}"
        );
        assert_eq!(
            diff(&normalised, &quiet, 10),
            vec![format!(
                "controls: missing, expected {}",
                normalised["controls"]
            )]
        );
    }

    #[test]
    fn case_spec_defaults_and_rejects_unknown_commands() {
        let spec = CaseSpec::parse(r#"{"description": "d"}"#).unwrap();
        assert_eq!(
            (spec.commands, spec.record_order),
            (vec!["read".to_owned()], RecordOrder::Emitted)
        );
        assert!(CaseSpec::parse(r#"{"commands": ["spec"]}"#).is_err());
        assert!(CaseSpec::parse(r#"{"record_order": "random"}"#).is_err());
    }
}
