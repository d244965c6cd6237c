//! Every kind of bad input state ends with one clear config error naming what is wrong (the
//! file, the stream, the field, the value, what was expected) and exit code 1; nothing panics,
//! and no bad state is silently dropped for a full re-read. State the reference ignores (LEGACY)
//! is ignored too, with a warning.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An unpartitioned `DatetimeBasedCursor` stream `events` (`%Y-%m-%dT%H:%M:%SZ`) whose
/// cassette answers from 2024-02-10 on: reading from the start fails on an unrecorded request.
const DATETIME_CASE: &str = "incremental-datetime-with-state";
/// The same stream with a cassette that answers a read from the start.
const FROM_START_CASE: &str = "cursor-datetime-legacy-state";
/// A stream `items` partitioned by `region`, with a per-partition state.
const PARTITIONED_CASE: &str = "partition-per-partition-state-in-out";

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance")
        .join(case)
}

/// What `sluice read` printed for a case given `state` as its state file.
struct Run {
    output: Output,
    messages: Vec<Value>,
    state_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn read(case: &str, state: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    std::fs::write(&state_file, state).unwrap();
    let case = case_dir(case);
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("read")
        .arg("--manifest")
        .arg(case.join("manifest.yaml"))
        .arg("--config")
        .arg(case.join("config.json"))
        .arg("--catalog")
        .arg(case.join("catalog.json"))
        .arg("--state")
        .arg(&state_file)
        .arg("--replay")
        .arg(case.join("cassette.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "sluice panicked: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let messages = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    Run {
        output,
        messages,
        state_file,
        _dir: dir,
    }
}

/// One STREAM state message for `stream`.
fn stream_state(stream: &str, state: Value) -> String {
    json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": stream}, "stream_state": state}}])
        .to_string()
}

/// An ERROR trace: message, failure type, and the stream it names, if any.
#[derive(Debug)]
struct Error {
    message: String,
    failure_type: String,
    stream: Option<String>,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn errors(&self) -> Vec<Error> {
        self.messages
            .iter()
            .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
            .map(|m| {
                let error = &m["trace"]["error"];
                Error {
                    message: error["message"].as_str().unwrap().to_owned(),
                    failure_type: error["failure_type"].as_str().unwrap().to_owned(),
                    stream: error["stream_descriptor"]["name"]
                        .as_str()
                        .map(str::to_owned),
                }
            })
            .collect()
    }

    fn records(&self) -> usize {
        crate::support::record_count(&self.messages)
    }

    fn logs(&self, level: &str) -> Vec<String> {
        crate::support::log_texts(&self.messages, level)
    }

    fn assert_exit_1(&self) {
        assert_eq!(
            self.output.status.code(),
            Some(1),
            "expected exit 1: {}",
            self.stdout()
        );
    }

    /// The input is refused before any stream is read: exit 1, one config error, and no
    /// stream started.
    fn refused(&self) -> String {
        self.assert_exit_1();
        let errors = self.errors();
        assert_eq!(
            errors.len(),
            1,
            "expected one ERROR trace: {}",
            self.stdout()
        );
        assert_eq!(errors[0].failure_type, "config_error", "{errors:?}");
        assert!(
            !self
                .messages
                .iter()
                .any(|m| m["trace"]["type"] == "STREAM_STATUS"),
            "a stream started: {}",
            self.stdout()
        );
        errors[0].message.clone()
    }

    /// `stream` fails on its state before any request: exit 1, its own config error, then the
    /// closing one that names it; no record and no state emitted.
    fn stream_refused(&self, stream: &str) -> String {
        self.assert_exit_1();
        let errors = self.errors();
        assert_eq!(
            errors.len(),
            2,
            "expected two ERROR traces: {}",
            self.stdout()
        );
        let (own, closing) = (&errors[0], &errors[1]);
        assert_eq!(own.stream.as_deref(), Some(stream), "{errors:?}");
        assert_eq!(own.failure_type, "config_error", "{errors:?}");
        assert_eq!(closing.failure_type, "config_error", "{errors:?}");
        assert!(
            closing
                .message
                .contains(&format!("{stream}: {}", own.message)),
            "{errors:?}"
        );
        assert_eq!(self.records(), 0, "{}", self.stdout());
        assert!(
            !self.messages.iter().any(|m| m["type"] == "STATE"),
            "a state was emitted: {}",
            self.stdout()
        );
        own.message.clone()
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} is not in: {message}");
    }
}

#[test]
fn state_file_that_is_not_json() {
    let run = read(DATETIME_CASE, "not json");
    let message = run.refused();
    assert_eq!(
        message,
        format!(
            "the state file {} is not valid JSON: expected ident at line 1 column 2",
            run.state_file.display()
        )
    );

    let run = read(DATETIME_CASE, r#"[{"type": "STREAM","#);
    assert_contains(&run.refused(), &["is not valid JSON", "EOF"]);
}

#[test]
fn legacy_state_object_is_refused_as_by_the_reference() {
    // airbyte-cdk 7.39.1 refuses it too ("\"events\" is not of type \"object\""); sluice used
    // to read it as a LEGACY message and re-read everything.
    let run = read(
        DATETIME_CASE,
        r#"{"events": {"updated_at": "2024-02-10T00:00:00Z"}}"#,
    );
    let message = run.refused();
    assert_contains(
        &message,
        &[
            &run.state_file.display().to_string(),
            "must be a list of state messages",
            "found an object with keys `events`",
            "legacy single-object state format is not supported",
        ],
    );

    let run = read(DATETIME_CASE, r#""events""#);
    assert_contains(
        &run.refused(),
        &["must be a list of state messages", "found a string"],
    );

    // An empty object means no state, as in the reference.
    let run = read(FROM_START_CASE, "{}");
    assert!(run.output.status.success(), "{}", run.stdout());
}

#[test]
fn message_with_an_unknown_type() {
    let run = read(
        DATETIME_CASE,
        &stream_state("events", json!({"updated_at": "2024-02-10T00:00:00Z"}))
            .replace("\"STREAM\"", "\"BOGUS\""),
    );
    assert_eq!(
        run.refused(),
        format!(
            "the state file {} cannot be used: input state does not match the Airbyte protocol \
             at `[0].type`: unknown variant `BOGUS`, expected one of `GLOBAL`, `STREAM`, `LEGACY`",
            run.state_file.display()
        )
    );
}

#[test]
fn cursor_value_in_the_wrong_format() {
    let run = read(
        DATETIME_CASE,
        &stream_state("events", json!({"updated_at": "yesterday"})),
    );
    assert_eq!(
        run.stream_refused("events"),
        "the state of stream 'events' has updated_at = \"yesterday\", which matches none of \
         the cursor's datetime formats ('%Y-%m-%dT%H:%M:%SZ')"
    );

    // A number where a datetime string belongs.
    let run = read(
        DATETIME_CASE,
        &stream_state("events", json!({"updated_at": 17})),
    );
    assert_contains(
        &run.stream_refused("events"),
        &["'events'", "updated_at = 17", "'%Y-%m-%dT%H:%M:%SZ'"],
    );
}

#[test]
fn per_partition_state_for_an_unpartitioned_stream() {
    // The reference finds no `updated_at` in it and silently re-reads from the start.
    let run = read(
        DATETIME_CASE,
        &stream_state(
            "events",
            json!({"states": [{"partition": {"id": 1}, "cursor": {"updated_at": "2024-02-10T00:00:00Z"}}]}),
        ),
    );
    assert_contains(
        &run.stream_refused("events"),
        &[
            "the state of stream 'events' is a per-partition state",
            "the stream has no partition router",
            r#""states""#,
        ],
    );
}

#[test]
fn malformed_per_partition_state() {
    let entry =
        json!({"partition": {"region": "eu"}, "cursor": {"updated_at": "2024-01-10T00:00:00Z"}});

    let run = read(
        PARTITIONED_CASE,
        &stream_state("items", json!({"states": entry})),
    );
    assert_contains(
        &run.stream_refused("items"),
        &[
            "the state of stream 'items' has `states` = {",
            "which is not a list",
        ],
    );

    let run = read(
        PARTITIONED_CASE,
        &stream_state(
            "items",
            json!({"states": [{"cursor": {"updated_at": "2024-01-10T00:00:00Z"}}]}),
        ),
    );
    assert_contains(
        &run.stream_refused("items"),
        &[
            "the state of stream 'items' has states[0] = ",
            "without a `partition` object",
            r#"each entry must be {"partition": {...}, "cursor": {...}}"#,
        ],
    );

    let run = read(
        PARTITIONED_CASE,
        &stream_state(
            "items",
            json!({"states": [{"partition": {"region": "eu"}}]}),
        ),
    );
    assert_contains(
        &run.stream_refused("items"),
        &["states[0] = ", "without a `cursor` object"],
    );

    let run = read(
        PARTITIONED_CASE,
        &stream_state("items", json!({"states": [entry, "eu"]})),
    );
    assert_contains(
        &run.stream_refused("items"),
        &[
            "states[1] = \"eu\"",
            "without a `partition` and a `cursor` object",
        ],
    );

    let run = read(
        PARTITIONED_CASE,
        &stream_state(
            "items",
            json!({"states": [{"partition": {"region": "eu"}, "cursor": {"updated_at": "yesterday"}}]}),
        ),
    );
    assert_eq!(
        run.stream_refused("items"),
        "the state of stream 'items' at states[0] (partition {\"region\":\"eu\"}) has \
         updated_at = \"yesterday\", which matches none of the cursor's datetime formats \
         ('%Y-%m-%dT%H:%M:%SZ')"
    );

    let run = read(
        PARTITIONED_CASE,
        &stream_state(
            "items",
            json!({"states": [entry], "state": {"updated_at": "yesterday"}}),
        ),
    );
    assert_contains(
        &run.stream_refused("items"),
        &[
            "'items'",
            "updated_at = \"yesterday\"",
            "'%Y-%m-%dT%H:%M:%SZ'",
        ],
    );
}

#[test]
fn global_state_with_a_shared_state() {
    let global = |shared: Option<Value>| {
        let mut global = json!({"stream_states": [{
            "stream_descriptor": {"name": "events"},
            "stream_state": {"updated_at": "2024-02-10T00:00:00Z"}
        }]});
        if let Some(shared) = shared {
            global["shared_state"] = shared;
        }
        json!([{"type": "GLOBAL", "global": global}]).to_string()
    };
    for shared in [json!({"cursor": 1}), json!({})] {
        let run = read(DATETIME_CASE, &global(Some(shared)));
        assert_eq!(
            run.refused(),
            "the input state cannot be used: the GLOBAL input state carries a `shared_state`; \
             API sources only write per-stream state, so this state was not written by this \
             connector and cannot be used"
        );
    }

    // Without one (or with `null`, as in the reference), its stream states are read: the
    // cassette only answers from the state's 2024-02-10 on.
    for shared in [None, Some(Value::Null)] {
        let run = read(DATETIME_CASE, &global(shared));
        assert!(run.output.status.success(), "{}", run.stdout());
        assert!(run.records() > 0, "{}", run.stdout());
    }
}

#[test]
fn legacy_message_is_ignored_with_a_warning() {
    // As the reference: the stream is read from its start (the cassette answers from
    // 2024-01-01 only), and the run succeeds; unlike it, sluice says so.
    let run = read(
        FROM_START_CASE,
        r#"[{"type": "LEGACY", "data": {"events": {"updated_at": "2024-02-10T00:00:00Z"}}}]"#,
    );
    assert!(run.output.status.success(), "{}", run.stdout());
    assert_eq!(run.records(), 4, "{}", run.stdout());
    let warnings = run.logs("WARN");
    assert_eq!(
        warnings,
        [
            "Ignoring input state message [0]: it is a LEGACY state (holding data keys `events`), \
          and LEGACY state is not supported: streams are read as if they had no state, from \
          their start. Write the state as STREAM messages to resume from it"
        ],
        "{}",
        run.stdout()
    );

    // A STREAM state that lost its `type` counts as LEGACY in the reference too.
    let untyped = stream_state("events", json!({"updated_at": "2024-02-10T00:00:00Z"}))
        .replace(r#""type":"STREAM","#, "");
    let run = read(FROM_START_CASE, &untyped);
    assert!(run.output.status.success(), "{}", run.stdout());
    assert_eq!(run.records(), 4, "{}", run.stdout());
    let warnings = run.logs("WARN");
    assert_eq!(warnings.len(), 1, "{}", run.stdout());
    assert_contains(
        &warnings[0],
        &[
            "[0]",
            "no `type`",
            "a `stream` state for 'events'",
            r#"Add "type": "STREAM""#,
        ],
    );

    // A valid state gives no warning.
    let run = read(
        DATETIME_CASE,
        &stream_state("events", json!({"updated_at": "2024-02-10T00:00:00Z"})),
    );
    assert!(run.output.status.success(), "{}", run.stdout());
    assert!(run.logs("WARN").is_empty(), "{}", run.stdout());
}
