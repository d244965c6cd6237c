//! A manifest with a stream sluice cannot run (custom Python code) still runs its other streams:
//! `check` and `discover` work, `read` of the other stream works, and reading the stream that
//! cannot run fails naming the component, its path and the stream.

use crate::support::{full_refresh_catalog, sluice_read, write_manifest_and_config};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [users]}
definitions:
  requester: {type: HttpRequester, url_base: "URL_BASE", http_method: GET}
streams:
  - type: DeclarativeStream
    name: users
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /users}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
  - type: DeclarativeStream
    name: events
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /events}
      record_selector:
        type: RecordSelector
        extractor:
          type: CustomRecordExtractor
          class_name: source_example.components.EventsExtractor
"##;

fn messages(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn the_streams_that_can_run_still_run() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": 1}, {"id": 2}]})),
        )
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_manifest_and_config(work.path(), MANIFEST, &server.uri());

    // check and discover.
    let run = |command: &'static str| {
        let (manifest, config) = (manifest.clone(), config.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
                .arg(command)
                .arg("--manifest")
                .arg(&manifest)
                .arg("--config")
                .arg(&config)
                .output()
                .unwrap()
        })
    };
    let check = run("check").await.unwrap();
    let check = String::from_utf8(check.stdout).unwrap();
    assert!(check.contains(r#""status":"SUCCEEDED""#), "{check}");
    let discover = run("discover").await.unwrap();
    let discover = String::from_utf8(discover.stdout).unwrap();
    let catalog_message = messages(&discover)
        .into_iter()
        .find(|m| m["type"] == "CATALOG")
        .unwrap_or_else(|| panic!("no catalog: {discover}"));
    let names: Vec<&str> = catalog_message["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["users", "events"]);

    // Reading the stream that runs.
    let users_catalog = work.path().join("users.json");
    std::fs::write(&users_catalog, full_refresh_catalog(&["users"])).unwrap();
    let read = sluice_read(manifest.clone(), config.clone(), users_catalog).await;
    let stdout = String::from_utf8(read.stdout).unwrap();
    assert!(read.status.success(), "{stdout}");
    let records = messages(&stdout)
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .count();
    assert_eq!(records, 2);

    // Reading both: users is read, events fails naming what it needs, and the exit code says so.
    let both = work.path().join("both.json");
    std::fs::write(&both, full_refresh_catalog(&["users", "events"])).unwrap();
    let read = sluice_read(manifest.clone(), config, both).await;
    let stdout = String::from_utf8(read.stdout).unwrap();
    assert!(!read.status.success(), "{stdout}");
    let all = messages(&stdout);
    assert_eq!(all.iter().filter(|m| m["type"] == "RECORD").count(), 2);
    let errors: Vec<&Value> = all
        .iter()
        .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .collect();
    let events_error = errors
        .iter()
        .find(|m| m["trace"]["error"]["stream_descriptor"]["name"] == "events")
        .unwrap_or_else(|| panic!("no error for events: {stdout}"));
    let message = events_error["trace"]["error"]["message"].as_str().unwrap();
    for expected in [
        "CustomRecordExtractor",
        "source_example.components.EventsExtractor",
        "streams[1].retriever.record_selector.extractor",
        "events",
    ] {
        assert!(
            message.contains(expected),
            "{expected} missing from: {message}"
        );
    }
    // The line and column of the extractor in the file come first.
    let located = format!(
        "{}:23:9: sluice cannot run this stream: ",
        manifest.display()
    );
    assert!(message.starts_with(&located), "{message}");
}

/// An error about the manifest that shows only while reading (a template that fails on the
/// response) names the file, line and column of the component, in the stream's ERROR trace and
/// in the sync's closing one.
#[tokio::test]
async fn a_read_time_manifest_error_names_its_line() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": 1}]})))
        .mount(&server)
        .await;
    let users_only = MANIFEST
        .split("  - type: DeclarativeStream\n    name: events")
        .next()
        .unwrap()
        .replace(
            "      record_selector:\n",
            "      paginator:\n        type: DefaultPaginator\n        pagination_strategy:\n          \
             type: CursorPagination\n          cursor_value: \"{{ 1 / 0 }}\"\n      record_selector:\n",
        );
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_manifest_and_config(work.path(), &users_only, &server.uri());
    let catalog = work.path().join("catalog.json");
    std::fs::write(&catalog, full_refresh_catalog(&["users"])).unwrap();
    let read = sluice_read(manifest.clone(), config, catalog).await;
    let stdout = String::from_utf8(read.stdout).unwrap();
    assert!(!read.status.success(), "{stdout}");
    let located = format!(
        "{}:13:7: streams[0].retriever.paginator: cannot evaluate cursor_value",
        manifest.display()
    );
    let errors: Vec<(Value, String)> = messages(&stdout)
        .into_iter()
        .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .map(|m| {
            let error = &m["trace"]["error"];
            (
                error["stream_descriptor"]["name"].clone(),
                error["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{stdout}");
    assert_eq!(errors[0].0, "users");
    assert!(errors[0].1.starts_with(&located), "{stdout}");
    assert!(
        errors[1].1.contains(&format!("users: {located}")),
        "{stdout}"
    );
}
