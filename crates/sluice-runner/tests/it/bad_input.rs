//! Every kind of bad input ends with one clear message naming what and where, and a non-zero
//! exit; nothing panics.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GOOD_MANIFEST: &str = r##"
version: 6.0.0
type: DeclarativeSource
check: { type: CheckStream, stream_names: [users] }
definitions:
  requester: { type: HttpRequester, url_base: "http://127.0.0.1:9/v1", path: /users }
streams:
  - type: DeclarativeStream
    name: users
    retriever:
      type: SimpleRetriever
      requester: { $ref: "#/definitions/requester" }
      record_selector:
        type: RecordSelector
        extractor: { type: DpathExtractor, field_path: [data] }
spec:
  type: Spec
  connection_specification:
    type: object
    required: [token]
    properties: { token: { type: string, airbyte_secret: true } }
"##;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn sluice(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "sluice panicked: {stderr}");
    output
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The one ERROR trace a failed connector command prints, and its failure type.
fn error_trace(output: &Output) -> (String, String) {
    assert!(!output.status.success(), "expected a failure, got exit 0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let traces: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .collect();
    assert_eq!(traces.len(), 1, "expected one ERROR trace in: {stdout}");
    let error = &traces[0]["trace"]["error"];
    (
        error["message"].as_str().unwrap().to_owned(),
        error["failure_type"].as_str().unwrap().to_owned(),
    )
}

fn validate_error(manifest_text: &str) -> String {
    let case = Case::new();
    let manifest = case.file("manifest.yaml", manifest_text);
    let output = sluice(&["validate", "--manifest", arg(&manifest)]);
    assert!(!output.status.success(), "validate accepted a bad manifest");
    // Report lines name the file as given: strip the temporary folder for the assertions.
    String::from_utf8_lossy(&output.stderr).replace(&format!("{}", case.dir.path().display()), "")
}

/// Whether `report` has a line starting `/manifest.yaml:<at>: <rest>`.
fn has_line(report: &str, at: &str, rest: &str) -> bool {
    let start = format!("/manifest.yaml:{at}: {rest}");
    report.lines().any(|l| l.starts_with(&start))
}

#[test]
fn invalid_yaml_names_the_line() {
    let message = validate_error("version: 6.0.0\nstreams: [\n  - {");
    assert!(message.contains("line"), "{message}");
    assert!(
        has_line(&message, "3:3", "error: invalid YAML"),
        "{message}"
    );
}

#[test]
fn unknown_component_type_is_named_with_a_suggestion() {
    let message =
        validate_error(&GOOD_MANIFEST.replace("type: DpathExtractor", "type: DpathExtracter"));
    assert!(
        has_line(
            &message,
            "15:9",
            "error: streams[0].retriever.record_selector.extractor: unknown component type"
        ),
        "{message}"
    );
    assert!(
        message.contains("DpathExtracter") && message.contains("DpathExtractor"),
        "{message}"
    );
}

#[test]
fn missing_required_field_is_named() {
    let message = validate_error(&GOOD_MANIFEST.replace(
        "      record_selector:\n        type: RecordSelector\n        extractor: { type: DpathExtractor, field_path: [data] }\n",
        "",
    ));
    assert!(
        has_line(
            &message,
            "10:5",
            "error: streams[0].retriever: missing required field 'record_selector'"
        ),
        "{message}"
    );
}

#[test]
fn dangling_reference_is_named() {
    let message =
        validate_error(&GOOD_MANIFEST.replace("#/definitions/requester", "#/definitions/nope"));
    assert!(message.contains("#/definitions/nope"), "{message}");
    // The `$ref` key in `requester: { $ref: ... }`.
    assert!(
        has_line(
            &message,
            "12:20",
            "error: streams[0].retriever.requester.$ref: reference"
        ),
        "{message}"
    );
}

#[test]
fn reference_cycle_is_an_error_not_a_hang() {
    let manifest = GOOD_MANIFEST.replace(
        "definitions:\n",
        "definitions:\n  a: { $ref: \"#/definitions/b\" }\n  b: { $ref: \"#/definitions/a\" }\n",
    )
    .replace("requester: { $ref: \"#/definitions/requester\" }", "requester: { $ref: \"#/definitions/a\" }");
    let message = validate_error(&manifest);
    assert!(
        message.contains("leads back to itself") && message.contains("#/definitions/a"),
        "{message}"
    );
    assert!(
        has_line(&message, "6:8", "error: definitions.a.$ref: reference"),
        "{message}"
    );
}

#[test]
fn custom_components_are_listed_by_name_and_stream() {
    let manifest = GOOD_MANIFEST.replace(
        "extractor: { type: DpathExtractor, field_path: [data] }",
        "extractor: { type: CustomRecordExtractor, class_name: source_x.components.Extractor }",
    );
    let message = validate_error(&manifest);
    assert!(message.contains("CustomRecordExtractor"), "{message}");
    assert!(
        message.contains("source_x.components.Extractor"),
        "{message}"
    );
    assert!(
        has_line(
            &message,
            "15:9",
            "error: streams[0].retriever.record_selector.extractor: CustomRecordExtractor"
        ),
        "{message}"
    );
    assert!(message.contains("'users'"), "{message}");
}

#[test]
fn a_runnable_manifest_validates() {
    let case = Case::new();
    let manifest = case.file("manifest.yaml", GOOD_MANIFEST);
    let output = sluice(&["validate", "--manifest", arg(&manifest)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A trap the reference accepts silently is a warning on stderr: a day-precise format with a
/// one-second granularity pins the state. Only the warning is asserted: whether validate exits 0
/// depends on the engine supporting DatetimeBasedCursor, and warnings never change it.
#[test]
fn validate_warns_about_a_granularity_finer_than_the_format() {
    let case = Case::new();
    let with_cursor = GOOD_MANIFEST.replace(
        "    retriever:\n",
        "    incremental_sync:\n      type: DatetimeBasedCursor\n      cursor_field: updated_at\n      \
         datetime_format: \"%Y-%m-%d\"\n      start_datetime: \"2024-01-01\"\n      step: P7D\n      \
         cursor_granularity: PT1S\n    retriever:\n",
    );
    assert_ne!(with_cursor, GOOD_MANIFEST);
    let manifest = case.file("manifest.yaml", &with_cursor);
    let output = sluice(&["validate", "--manifest", arg(&manifest)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:16:7: warning: streams[0].incremental_sync.cursor_granularity: PT1S is finer than \
             datetime_format \"%Y-%m-%d\" can represent (one day)",
            manifest.display()
        )),
        "{stderr}"
    );

    // The manifest without the trap validates with no warning.
    let manifest = case.file("clean.yaml", GOOD_MANIFEST);
    let output = sluice(&["validate", "--manifest", arg(&manifest)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("warning:"),
        "{stderr}"
    );
}

#[test]
fn config_failing_the_spec_is_a_config_error() {
    let case = Case::new();
    let manifest = case.file("manifest.yaml", GOOD_MANIFEST);
    let config = case.file("config.json", r#"{"token": 5}"#);
    let catalog = case.file("catalog.json", r#"{"streams": []}"#);
    let output = sluice(&[
        "read",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
        "--catalog",
        arg(&catalog),
    ]);
    let (message, failure_type) = error_trace(&output);
    assert_eq!(failure_type, "config_error");
    assert!(
        message.contains("Config validation error") && message.contains("token"),
        "{message}"
    );
}

#[test]
fn unreadable_catalog_names_the_file() {
    let case = Case::new();
    let manifest = case.file("manifest.yaml", GOOD_MANIFEST);
    let config = case.file("config.json", r#"{"token": "t"}"#);
    let catalog = case.file("catalog.json", r#"{"streams": [{"stream": 1}]}"#);
    let output = sluice(&[
        "read",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
        "--catalog",
        arg(&catalog),
    ]);
    let (message, failure_type) = error_trace(&output);
    assert_eq!(failure_type, "config_error");
    assert!(message.contains("catalog.json"), "{message}");
    let missing = case.dir.path().join("missing.json");
    let output = sluice(&[
        "read",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
        "--catalog",
        arg(&missing),
    ]);
    let (message, _) = error_trace(&output);
    assert!(message.contains("missing.json"), "{message}");
}

#[test]
fn config_that_is_not_json_names_the_file() {
    let case = Case::new();
    let manifest = case.file("manifest.yaml", GOOD_MANIFEST);
    let config = case.file("config.json", "{not json");
    let output = sluice(&[
        "check",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
    ]);
    let (message, failure_type) = error_trace(&output);
    assert_eq!(failure_type, "config_error");
    assert!(
        message.contains("config.json") && message.contains("not valid JSON"),
        "{message}"
    );
}

#[test]
fn a_bad_manifest_in_a_connector_command_is_a_config_error_naming_the_path() {
    let case = Case::new();
    let manifest = case.file(
        "manifest.yaml",
        &GOOD_MANIFEST.replace("type: DpathExtractor", "type: Nope"),
    );
    let config = case.file("config.json", r#"{"token": "t"}"#);
    let output = sluice(&[
        "discover",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
    ]);
    let (message, failure_type) = error_trace(&output);
    assert_eq!(failure_type, "config_error");
    assert!(
        message.starts_with(&format!(
            "{}:15:9: streams[0].retriever.record_selector.extractor: unknown component type 'Nope'",
            manifest.display()
        )),
        "{message}"
    );
}

/// A component reached through `$ref` was written under `definitions`: errors in it point
/// there, in `validate`'s report and in a connector command's ERROR trace alike.
#[test]
fn errors_in_a_referenced_component_point_into_definitions() {
    let case = Case::new();
    let text = GOOD_MANIFEST.replace("path: /users }", "path: /users, http_method: FETCH }");
    let manifest = case.file("manifest.yaml", &text);
    let output = sluice(&["validate", "--manifest", arg(&manifest), "--format", "json"]);
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let diagnostic = &document["diagnostics"][0];
    assert_eq!(
        (
            &diagnostic["line"],
            &diagnostic["column"],
            &diagnostic["stream"]
        ),
        (&json!(6), &json!(86), &json!("users")),
        "{document}"
    );
    let report = validate_error(&text);
    let expected = "6:86: error: streams[0].retriever.requester.http_method: unknown value 'FETCH'";
    assert!(
        has_line(
            &report,
            expected.split_once(": ").unwrap().0,
            expected.split_once(": ").unwrap().1
        ),
        "{report}"
    );
    let config = case.file("config.json", r#"{"token": "t"}"#);
    let output = sluice(&[
        "check",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
    ]);
    let (message, failure_type) = error_trace(&output);
    assert_eq!(failure_type, "config_error");
    assert!(
        message.starts_with(&format!(
            "{}:6:86: streams[0].retriever.requester.http_method: unknown value 'FETCH'",
            manifest.display()
        )),
        "{message}"
    );
}

/// A manifest with problems in two streams and a manifest-wide one: the report lists the
/// manifest-wide ones first, then each stream's errors and warnings together, in manifest
/// order, one per line, and ends with a summary; `--format json` gives the same as one document.
#[test]
fn validate_groups_the_report_by_stream_and_speaks_json() {
    let case = Case::new();
    let text = GOOD_MANIFEST
        .replace(
            "spec:\n",
            "  - type: DeclarativeStream\n    name: orders\n    retriever:\n      type: SimpleRetriever\n      \
             requester: { $ref: \"#/definitions/requester\" }\n      record_selector:\n        \
             type: RecordSelector\n        extractor: { type: CustomRecordExtractor, class_name: x.Orders }\n\
             spec:\n",
        )
        .replace(
            "extractor: { type: DpathExtractor, field_path: [data] }",
            "extractor: { type: CustomRecordExtractor, class_name: x.Users }",
        )
        .replacen(
            "    retriever:\n",
            "    incremental_sync:\n      type: DatetimeBasedCursor\n      cursor_field: updated_at\n      \
             datetime_format: \"%Y-%m-%d\"\n      start_datetime: \"2024-01-01\"\n      step: P7D\n      \
             cursor_granularity: PT1S\n    retriever:\n",
            1,
        )
        // The spec comes last in the file, but its warning is manifest-wide: it comes first.
        + "  config_normalization_rules:\n    type: ConfigNormalizationRules\n    transformations:\n      \
           - { type: ConfigRemapField, field_path: [token], map: \"{{ config.m }}\" }\n";
    let manifest = case.file("manifest.yaml", &text);
    let report = validate_error(&text);
    let lines: Vec<&str> = report.lines().collect();
    let expected = [
        "/manifest.yaml:40:56: warning: spec.config_normalization_rules.transformations[0].map: a string `map`",
        "/manifest.yaml:22:9: error: streams[0].retriever.record_selector.extractor: CustomRecordExtractor (class x.Users) in stream 'users'",
        "/manifest.yaml:16:7: warning: streams[0].incremental_sync.cursor_granularity:",
        "/manifest.yaml:30:9: error: streams[1].retriever.record_selector.extractor: CustomRecordExtractor (class x.Orders) in stream 'orders'",
        "/manifest.yaml: sluice cannot run this manifest: 2 errors, 2 warnings",
    ];
    assert_eq!(lines.len(), expected.len(), "{report}");
    for (line, start) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?} in:\n{report}"
        );
    }

    let output = sluice(&["validate", "--manifest", arg(&manifest), "--format", "json"]);
    assert!(!output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["runnable"], false);
    assert_eq!(
        (document["errors"].as_u64(), document["warnings"].as_u64()),
        (Some(2), Some(2))
    );
    let diagnostics = document["diagnostics"].as_array().unwrap();
    let summary: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            format!(
                "{} {}:{} {} {}",
                d["severity"], d["line"], d["column"], d["path"], d["stream"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            r#""warning" 40:56 "spec.config_normalization_rules.transformations[0].map" null"#,
            r#""error" 22:9 "streams[0].retriever.record_selector.extractor" "users""#,
            r#""warning" 16:7 "streams[0].incremental_sync.cursor_granularity" "users""#,
            r#""error" 30:9 "streams[1].retriever.record_selector.extractor" "orders""#,
        ]
    );
    assert_eq!(diagnostics[1]["file"], arg(&manifest));
    assert_eq!(
        diagnostics[1]["message"],
        "CustomRecordExtractor (class x.Users) in stream 'users': a custom Python component, which sluice cannot run"
    );
}

#[test]
fn check_with_a_config_failing_the_spec_reports_failed_status() {
    let case = Case::new();
    let manifest = case.file("manifest.yaml", GOOD_MANIFEST);
    let config = case.file("config.json", "{}");
    let output = sluice(&[
        "check",
        "--manifest",
        arg(&manifest),
        "--config",
        arg(&config),
    ]);
    assert!(
        output.status.success(),
        "the reference exits 0 with a FAILED status"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let status: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(status["connectionStatus"]["status"], "FAILED");
    assert_eq!(
        status["connectionStatus"]["message"],
        "Config validation error: 'token' is a required property"
    );
}

#[test]
fn custom_python_components_in_the_config_are_a_config_error() {
    let case = Case::new();
    let manifest = injected_manifest();
    let config = serde_json::json!({
        "token": "t",
        "__injected_declarative_manifest": manifest,
        "__injected_components_py": "class MyExtractor: pass\n",
    });
    let config = case.file("config.json", &config.to_string());
    for command in ["spec", "check", "discover"] {
        let output = sluice(&[command, "--config", arg(&config)]);
        let (message, failure_type) = error_trace(&output);
        assert_eq!(failure_type, "config_error", "{command}");
        assert!(
            message.contains("__injected_components_py") && message.contains("no custom Python"),
            "{command}: {message}"
        );
    }
    // The reference runs the code only when the key holds something: an empty one is no code.
    let empty = serde_json::json!({
        "token": "t",
        "__injected_declarative_manifest": injected_manifest(),
        "__injected_components_py": "",
    });
    let empty = case.file("empty.json", &empty.to_string());
    let output = sluice(&["spec", "--config", arg(&empty)]);
    assert!(output.status.success(), "{output:?}");
}

/// [`GOOD_MANIFEST`] as the JSON tree the platform injects into the config.
fn injected_manifest() -> Value {
    serde_json::json!({
        "version": "6.0.0",
        "type": "DeclarativeSource",
        "check": {"type": "CheckStream", "stream_names": ["users"]},
        "streams": [{
            "type": "DeclarativeStream",
            "name": "users",
            "retriever": {
                "type": "SimpleRetriever",
                "requester": {"type": "HttpRequester", "url_base": "http://127.0.0.1:9/v1", "path": "/users"},
                "record_selector": {
                    "type": "RecordSelector",
                    "extractor": {"type": "DpathExtractor", "field_path": ["data"]}
                }
            }
        }]
    })
}
