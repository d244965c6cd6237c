//! `--checkpoint-every N`: inside a slice whose records come in ascending cursor order, a STATE
//! every N records; none after the first record out of order; none at all without the flag.

use crate::support::{full_refresh_catalog, sluice_read_with, write_manifest_and_config};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [events]}
streams:
  - type: DeclarativeStream
    name: events
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /events, http_method: GET}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
    incremental_sync:
      type: DatetimeBasedCursor
      cursor_field: updated_at
      datetime_format: "%Y-%m-%d"
      start_datetime: "2024-01-01"
      end_datetime: "2024-01-31"
"##;

/// The cursor values of the STATE messages a read of records dated `days` emits.
async fn states(days: &[u32], flags: &[&str]) -> Vec<String> {
    let server = MockServer::start().await;
    let data: Vec<Value> = days
        .iter()
        .map(|day| json!({"updated_at": format!("2024-01-{day:02}")}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": data })))
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_manifest_and_config(work.path(), MANIFEST, &server.uri());
    let catalog = work.path().join("catalog.json");
    std::fs::write(&catalog, full_refresh_catalog(&["events"])).unwrap();
    let flags = flags.iter().map(|f| f.to_string()).collect();
    let output = sluice_read_with(manifest, config, catalog, flags).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|m| m["type"] == "STATE")
        .map(|m| {
            m["state"]["stream"]["stream_state"]["updated_at"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn ascending_records_are_checkpointed_every_n() {
    let states = states(&[1, 2, 3, 4, 5], &["--checkpoint-every", "2"]).await;
    // After records 2 and 4, then the window's own STATE and the final one.
    assert_eq!(
        states,
        ["2024-01-02", "2024-01-04", "2024-01-05", "2024-01-05"]
    );
}

#[tokio::test]
async fn checkpoints_stop_at_the_first_record_out_of_order() {
    let states = states(&[1, 3, 2, 4, 5], &["--checkpoint-every", "2"]).await;
    assert_eq!(states, ["2024-01-03", "2024-01-05", "2024-01-05"]);
}

#[tokio::test]
async fn without_the_flag_states_come_as_the_reference_emits_them() {
    let states = states(&[1, 2, 3, 4, 5], &[]).await;
    assert_eq!(states, ["2024-01-05", "2024-01-05"]);
}
