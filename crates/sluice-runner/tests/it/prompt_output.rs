//! Output reaches stdout promptly: against a server that answers each page after 300 ms, every
//! RECORD and STATE line is on stdout within a second of its page being served, not at exit.

use crate::support::write_manifest_and_config;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PAGES: u64 = 6;
const DELAY: Duration = Duration::from_millis(300);

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
streams:
  - type: DeclarativeStream
    name: items
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /items, http_method: GET}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
      paginator:
        type: DefaultPaginator
        pagination_strategy: {type: PageIncrement, page_size: 2, start_from_page: 1, inject_on_first_request: true}
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
    incremental_sync:
      type: DatetimeBasedCursor
      cursor_field: day
      datetime_format: "%Y-%m-%d"
      start_datetime: "2024-01-01"
      end_datetime: "2024-01-03"
      step: P1D
      cursor_granularity: P1D
"##;

#[tokio::test]
async fn every_line_reaches_stdout_within_a_second_of_its_page() {
    let server = MockServer::start().await;
    // Each of the two daily windows reads PAGES / 2 full pages and an empty last one.
    for page in 1..=PAGES / 2 + 1 {
        let data: Vec<Value> = if page <= PAGES / 2 {
            (0..2).map(|i| json!({"id": page * 10 + i})).collect()
        } else {
            Vec::new()
        };
        Mock::given(method("GET"))
            .and(path("/items"))
            .and(query_param("page", page.to_string()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_delay(DELAY)
                    .set_body_json(json!({"data": data})),
            )
            .mount(&server)
            .await;
    }
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_manifest_and_config(work.path(), MANIFEST, &server.uri());
    let catalog = work.path().join("catalog.json");
    std::fs::write(&catalog, crate::support::full_refresh_catalog(&["items"])).unwrap();

    let lines = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("read")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--config")
            .arg(&config)
            .arg("--catalog")
            .arg(&catalog)
            // One page at a time, so each page's serving time is known.
            .args(["--concurrency", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // Each line with the time it arrived.
        let lines: Vec<(Duration, Value)> = stdout
            .lines()
            .map(|line| {
                (
                    started.elapsed(),
                    serde_json::from_str(&line.unwrap()).unwrap(),
                )
            })
            .collect();
        assert!(child.wait().unwrap().success());
        lines
    })
    .await
    .unwrap();

    let arrivals = |kind: &str| -> Vec<Duration> {
        lines
            .iter()
            .filter(|(_, m)| m["type"] == kind)
            .map(|(at, _)| *at)
            .collect()
    };
    let records = arrivals("RECORD");
    let states = arrivals("STATE");
    assert_eq!(records.len() as u64, PAGES * 2);
    assert_eq!(states.len(), 3, "one per window and one at the end");
    // Pages are served one after another, each after DELAY: the n-th page's records can be on
    // stdout at n * DELAY, and must be within a second of that.
    let slack = Duration::from_secs(1);
    for (index, at) in records.iter().enumerate() {
        let page = index as u32 / 2 + 1 + if index as u64 >= PAGES { 1 } else { 0 };
        let served = DELAY * page;
        assert!(
            *at < served + slack,
            "record {index} reached stdout at {at:?}, its page was served at about {served:?}"
        );
    }
    // The first window's STATE comes right after its last (empty) page, long before the end.
    let end = lines.last().unwrap().0;
    assert!(
        states[0] + DELAY * 2 < end,
        "the first STATE reached stdout at {:?}, the sync ended at {end:?}",
        states[0]
    );
}
