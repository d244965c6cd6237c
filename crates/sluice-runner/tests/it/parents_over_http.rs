//! Parent streams over a live HTTP server on 127.0.0.1: a parent that is also selected and read
//! by two children is fetched once per page, as the reference's request cache makes it, and
//! every child partition is read.

use crate::support::{full_refresh_catalog, sluice_read, write_manifest_and_config};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [boards]}
definitions:
  requester:
    type: HttpRequester
    url_base: "URL_BASE"
    http_method: GET
  selector:
    type: RecordSelector
    extractor: {type: DpathExtractor, field_path: [data]}
  boards:
    type: DeclarativeStream
    name: boards
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /boards}
      record_selector: {$ref: "#/definitions/selector"}
      paginator:
        type: DefaultPaginator
        pagination_strategy: {type: PageIncrement, page_size: 2, start_from_page: 1}
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
  child_router:
    type: SubstreamPartitionRouter
    parent_stream_configs:
      - type: ParentStreamConfig
        stream: {$ref: "#/definitions/boards"}
        parent_key: id
        partition_field: board_id
streams:
  - $ref: "#/definitions/boards"
  - type: DeclarativeStream
    name: cards
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: "/boards/{{ stream_partition.board_id }}/cards"}
      record_selector: {$ref: "#/definitions/selector"}
      partition_router: {$ref: "#/definitions/child_router"}
  - type: DeclarativeStream
    name: lists
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: "/boards/{{ stream_partition.board_id }}/lists"}
      record_selector: {$ref: "#/definitions/selector"}
      partition_router: {$ref: "#/definitions/child_router"}
"##;

#[tokio::test]
async fn a_parent_read_by_two_children_and_selected_is_fetched_once_per_page() {
    let server = MockServer::start().await;
    let page = |ids: &[i64]| {
        let data: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": data}))
    };
    // The first page is requested without a page number.
    Mock::given(method("GET"))
        .and(path("/boards"))
        .and(query_param_is_missing("page"))
        .respond_with(page(&[1, 2]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/boards"))
        .and(query_param("page", "2"))
        .respond_with(page(&[3]))
        .expect(1)
        .mount(&server)
        .await;
    for board in 1..=3 {
        for kind in ["cards", "lists"] {
            Mock::given(method("GET"))
                .and(path(format!("/boards/{board}/{kind}")))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"data": [{"id": format!("{kind}-{board}")}]})),
                )
                .expect(1)
                .mount(&server)
                .await;
        }
    }

    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_manifest_and_config(work.path(), MANIFEST, &server.uri());
    let catalog_path = work.path().join("catalog.json");
    std::fs::write(
        &catalog_path,
        full_refresh_catalog(&["boards", "cards", "lists"]),
    )
    .unwrap();
    let output = sluice_read(manifest, config, catalog_path).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "sluice failed:\n{stdout}");

    let mut records: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(line).unwrap();
        if message["type"] == "RECORD" {
            records
                .entry(message["record"]["stream"].as_str().unwrap().to_owned())
                .or_default()
                .push(message["record"]["data"]["id"].to_string());
        }
    }
    for list in records.values_mut() {
        list.sort();
    }
    assert_eq!(records["boards"], ["1", "2", "3"]);
    assert_eq!(
        records["cards"],
        [r#""cards-1""#, r#""cards-2""#, r#""cards-3""#]
    );
    assert_eq!(
        records["lists"],
        [r#""lists-1""#, r#""lists-2""#, r#""lists-3""#]
    );
    // The mocks' `expect(1)` are checked when the server drops: each parent page once.
    server.verify().await;
}
