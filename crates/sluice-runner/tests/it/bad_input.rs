//! Every kind of bad input ends with one clear message naming what and where, and a non-zero
//! exit; nothing panics.

use serde_json::Value;
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
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn invalid_yaml_names_the_line() {
    let message = validate_error("version: 6.0.0\nstreams: [\n  - {");
    assert!(message.contains("line"), "{message}");
}

#[test]
fn unknown_component_type_is_named_with_a_suggestion() {
    let message =
        validate_error(&GOOD_MANIFEST.replace("type: DpathExtractor", "type: DpathExtracter"));
    assert!(
        message.contains("streams[0].retriever.record_selector.extractor"),
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
        message.contains("streams[0].retriever") && message.contains("record_selector"),
        "{message}"
    );
}

#[test]
fn dangling_reference_is_named() {
    let message =
        validate_error(&GOOD_MANIFEST.replace("#/definitions/requester", "#/definitions/nope"));
    assert!(message.contains("#/definitions/nope"), "{message}");
    assert!(
        message.contains("streams[0].retriever.requester"),
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
        message.contains("streams[0].retriever.record_selector.extractor"),
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
        stderr.contains(
            "warning: streams[0].incremental_sync.cursor_granularity: PT1S is finer than \
             datetime_format \"%Y-%m-%d\" can represent (one day)"
        ),
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
        message.contains("streams[0].retriever.record_selector.extractor"),
        "{message}"
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
