//! `sluice preview`: tables of a few records per stream, the requests made with secrets masked,
//! and hints for streams that failed or read nothing, against a local server.

use std::path::{Path, PathBuf};
use std::process::Output;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s3cr3t-t0ken-123";

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [users]}
definitions:
  requester:
    type: HttpRequester
    url_base: "URL_BASE"
    http_method: GET
    authenticator:
      type: ApiKeyAuthenticator
      api_token: "{{ config.api_key }}"
      inject_into: {type: RequestOption, inject_into: request_parameter, field_name: api_token}
streams:
  - type: DeclarativeStream
    name: users
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /users}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
      paginator:
        type: DefaultPaginator
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
        pagination_strategy: {type: PageIncrement, page_size: 2, start_from_page: 1, inject_on_first_request: true}
  - type: DeclarativeStream
    name: orders
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /orders}
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
        extractor: {type: DpathExtractor, field_path: [data]}
  - type: DeclarativeStream
    name: per_region
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /regions}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
      partition_router:
        type: ListPartitionRouter
        cursor_field: region
        values: "{{ config.get('regions', []) }}"
  - type: DeclarativeStream
    name: flaky
    retriever:
      type: SimpleRetriever
      requester:
        $ref: "#/definitions/requester"
        path: /flaky
        error_handler:
          type: DefaultErrorHandler
          max_retries: 2
          backoff_strategies: [{type: ConstantBackoffStrategy, backoff_time_in_seconds: 0.01}]
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
spec:
  type: Spec
  connection_specification:
    type: object
    properties:
      api_key: {type: string, airbyte_secret: true}
"##;

/// A server where `users` has three records over two pages, `orders` refuses the token and
/// `events` answers under `items` instead of `data`.
async fn server() -> MockServer {
    let server = MockServer::start().await;
    let users = |page: &str, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/users"))
            .and(query_param("page", page))
            .and(query_param("api_token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    users(
        "1",
        serde_json::json!({"data": [
            {"id": 1, "name": "Ada", "tags": ["admin"]},
            {"id": 2, "name": "Grace", "email": "grace@example.com"}
        ]}),
    )
    .mount(&server)
    .await;
    users(
        "2",
        serde_json::json!({"data": [{"id": 3, "name": "Linus"}]}),
    )
    .mount(&server)
    .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "bad token"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"items": [{"id": "e1"}], "next": null})),
        )
        .mount(&server)
        .await;
    server
}

fn write_inputs(dir: &Path, url_base: &str) -> (PathBuf, PathBuf) {
    let manifest = dir.join("manifest.yaml");
    std::fs::write(&manifest, MANIFEST.replace("URL_BASE", url_base)).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, serde_json::json!({"api_key": TOKEN}).to_string()).unwrap();
    (manifest, config)
}

/// Runs `sluice preview` with `flags` off the async runtime; gives stdout, stderr and the output.
async fn preview(server: &MockServer, flags: &[&str]) -> (String, String, Output) {
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_inputs(work.path(), &server.uri());
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("preview")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--config")
            .arg(&config)
            .args(&flags)
            .env("COLUMNS", "100")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (stdout, stderr, output)
}

/// The requests the server received for `route`.
async fn requests_to(server: &MockServer, route: &str) -> usize {
    let received = server.received_requests().await.unwrap();
    received.iter().filter(|r| r.url.path() == route).count()
}

/// The part of the report about `stream`: from its heading to the blank line after it.
fn section<'a>(stdout: &'a str, stream: &str) -> &'a str {
    let start = stdout
        .find(&format!("{stream}: "))
        .unwrap_or_else(|| panic!("no section for {stream} in:\n{stdout}"));
    let rest = &stdout[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[tokio::test]
async fn every_stream_is_shown_with_its_requests_and_hints() {
    let server = server().await;
    let (stdout, stderr, output) = preview(&server, &[]).await;
    // A stream failed.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");

    let users = section(&stdout, "users");
    let lines: Vec<&str> = users.lines().collect();
    assert_eq!(lines[0], "users: 3 records", "{users}");
    assert_eq!(lines[1], "id │ name  │ tags      │ email");
    assert_eq!(lines[3], "1  │ Ada   │ [\"admin\"] │");
    assert_eq!(lines[4], "2  │ Grace │           │ grace@example.com");
    assert_eq!(lines[5], "3  │ Linus │           │");
    assert_eq!(lines[6], "2 requests:");
    assert!(
        lines[7].starts_with("  GET http://127.0.0.1:")
            && lines[7].contains("/users?api_token=REDACTED&page=1 -> 200, "),
        "{users}"
    );
    assert!(lines[8].contains("page=2 -> 200, "), "{users}");

    let orders = section(&stdout, "orders");
    assert!(
        orders.starts_with("orders: 0 records, FAILED\nerror: "),
        "{orders}"
    );
    assert!(
        orders.contains("/orders?api_token=REDACTED -> 401, "),
        "{orders}"
    );
    assert!(
        orders.contains(
            "hint: The API refused the request (HTTP 401): check the credentials in the config and the ApiKeyAuthenticator at streams[1].retriever.requester.authenticator."
        ),
        "{orders}"
    );

    let events = section(&stdout, "events");
    assert!(
        events.starts_with("events: 0 records\n1 request:"),
        "{events}"
    );
    assert!(
        events.contains(
            "hint: 1 request was answered but no record was selected. The record selector's field_path is [data] (streams[2].retriever.record_selector.extractor); the last response's top-level keys were: items, next."
        ),
        "{events}"
    );
    let per_region = section(&stdout, "per_region");
    assert_eq!(
        per_region,
        "per_region: 0 records\n0 requests:\nhint: No request was sent: the ListPartitionRouter at streams[3].retriever.partition_router produced no partition (did its parent stream or list read nothing?)."
    );
    assert!(stdout.ends_with("2 failed, 2 read nothing\n"), "{stdout}");

    // The token travels in a query parameter its name does not mark as secret: the spec's
    // `airbyte_secret` is what hides it.
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn retries_that_fare_alike_take_one_line() {
    let server = server().await;
    let (stdout, stderr, output) = preview(&server, &["--stream", "flaky"]).await;
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "flaky: 0 records, FAILED", "{stdout}");
    assert_eq!(lines[2], "3 requests:", "{stdout}");
    assert!(
        lines[3].contains("/flaky?api_token=REDACTED -> 503, "),
        "{stdout}"
    );
    assert_eq!(lines[4], "    (2 more alike)", "{stdout}");
    assert!(
        lines[5].starts_with("hint: The server failed (HTTP 503) on GET http://127.0.0.1:")
            && lines[5].ends_with(
                "/flaky?api_token=REDACTED: try again later, or see the error handler at streams[4].retriever.requester.error_handler."
            ),
        "{stdout}"
    );
    assert_eq!(requests_to(&server, "/flaky").await, 3);
}

#[tokio::test]
async fn the_record_limit_stops_paging() {
    let server = server().await;
    let (stdout, stderr, output) = preview(&server, &["--stream", "users", "--records", "2"]).await;
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Only the chosen stream is read, and only its first page: it held the two records.
    assert!(
        stdout.starts_with("users: 2 records (the --records limit of 2)\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("orders") && !stdout.contains("events"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("per_region") && !stdout.contains("flaky"),
        "{stdout}"
    );
    assert!(!stdout.contains("Linus"), "{stdout}");
    assert!(stdout.contains("1 request:\n"), "{stdout}");
    assert_eq!(requests_to(&server, "/users").await, 1);
    assert_eq!(requests_to(&server, "/orders").await, 0);
}

#[tokio::test]
async fn the_page_limit_stops_paging() {
    let server = server().await;
    let (stdout, stderr, output) = preview(&server, &["--stream", "users", "--pages", "1"]).await;
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("users: 2 records\n"), "{stdout}");
    assert_eq!(requests_to(&server, "/users").await, 1);
}

#[tokio::test]
async fn an_unknown_stream_names_the_streams_there_are() {
    let server = server().await;
    let (stdout, stderr, output) = preview(&server, &["--stream", "nope"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: no stream 'nope' in the manifest; its streams are: users, orders, events, per_region, flaky\n"
    );
}

/// Streams made by `dynamic_streams` from the tables `/tables` lists.
const DYNAMIC_MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [t1]}
dynamic_streams:
  - type: DynamicDeclarativeStream
    name: tables
    stream_template:
      type: DeclarativeStream
      name: placeholder
      retriever:
        type: SimpleRetriever
        requester: {type: HttpRequester, url_base: "URL_BASE", path: /placeholder}
        record_selector:
          type: RecordSelector
          extractor: {type: DpathExtractor, field_path: [rows]}
    components_resolver:
      type: HttpComponentsResolver
      retriever:
        type: SimpleRetriever
        requester: {type: HttpRequester, url_base: "URL_BASE", path: /tables}
        record_selector:
          type: RecordSelector
          extractor: {type: DpathExtractor, field_path: []}
      components_mapping:
        - type: ComponentMappingDefinition
          field_path: [name]
          value: "{{ components_values.name }}"
        - type: ComponentMappingDefinition
          field_path: [retriever, requester, path]
          value: "/tables/{{ components_values.name }}"
"##;

/// Runs `sluice preview` on [`DYNAMIC_MANIFEST`] against a server answering `/tables` with
/// `tables_status`.
async fn preview_dynamic(tables_status: u16) -> (String, String, Output) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/tables"))
        .respond_with(
            ResponseTemplate::new(tables_status).set_body_json(serde_json::json!([{"name": "t1"}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tables/t1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"rows": [{"x": 1}]})),
        )
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("manifest.yaml");
    std::fs::write(
        &manifest,
        DYNAMIC_MANIFEST.replace("URL_BASE", &server.uri()),
    )
    .unwrap();
    let config = work.path().join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["preview", "--manifest"])
            .arg(&manifest)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (stdout, stderr, output)
}

#[tokio::test]
async fn the_requests_of_discover_come_first() {
    let (stdout, stderr, output) = preview_dynamic(200).await;
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "discover: 1 request", "{stdout}");
    assert!(lines[1].contains("/tables -> 200, "), "{stdout}");
    assert_eq!(lines[3], "t1: 1 record", "{stdout}");
}

#[tokio::test]
async fn a_failed_discover_still_shows_its_requests() {
    let (stdout, stderr, output) = preview_dynamic(401).await;
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("discover: 1 request\n"), "{stdout}");
    assert!(stdout.contains("/tables -> 401, "), "{stdout}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}
