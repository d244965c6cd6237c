//! Records passed through as the API sent them print exactly as parsed records do.
//!
//! The same two pages are read twice from a local server: by a plain manifest, whose records
//! take the as-sent path (the cursor paginator reading only `response.next`), and by the same
//! manifest with a transformation that changes nothing, which parses every record. Every RECORD
//! line must be the same bytes (but for `emitted_at`).

use crate::support::sluice_read;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PAGE: &str = r#"{"data": [
  {"id":1,"name":"plain","tags":["a"],"score":1.5,"n":{"k":null}},
  {"id": 2, "spaced": true},
  {"id":3,"email":null,"name":"top-level null"},
  {"id":4,"f":1.50,"e":1E5,"g":1e16,"h":0.1},
  {"id":5,"s":"caf\u00e9 \/ \n \u001f \u000a"},
  {"id":6,"dup":1,"dup":2},
  {"id":7,"big":123456789012345678901234,"neg":-0},
  {"id":8,"nested":{"k":null,"l":[1,2.0,{"m":[]}]}},
  {"id":9,"u":"é ü 🦀","q":"\"quoted\" \\ back"},
  {}
], "total": 10, "next": "NEXT_URL"}"#;

const LAST_PAGE: &str = r#"{"next": null, "data": [{"id":11,"last":true}, {"id": 12}]}"#;

const MANIFEST: &str = r#"
version: 6.7.0
type: DeclarativeSource
check:
  type: CheckStream
  stream_names: [items]
streams:
  - type: DeclarativeStream
    name: items
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "{{ config['base_url'] }}"
        path: /items
        http_method: GET
      record_selector:
        type: RecordSelector
        extractor:
          type: DpathExtractor
          field_path: [data]
      paginator:
        type: DefaultPaginator
        page_token_option:
          type: RequestPath
        pagination_strategy:
          type: CursorPagination
          cursor_value: "{{ response.next }}"
          stop_condition: "{{ not response.next }}"
    schema_loader:
      type: InlineSchemaLoader
      schema:
        type: object
        properties: {}
TRANSFORMATIONS
spec:
  type: Spec
  connection_specification:
    type: object
    properties:
      base_url: {type: string}
"#;

const NO_OP_TRANSFORMATION: &str = "    transformations:
      - type: RemoveFields
        field_pointers: [[no_such_field]]";

fn record_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.starts_with(r#"{"type":"RECORD""#))
        .map(|line| match line.rsplit_once(r#","emitted_at":"#) {
            Some((before, _)) => before.to_owned(),
            None => line.to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_as_sent_print_like_parsed_records() {
    let server = MockServer::start().await;
    let first_page = PAGE.replace("NEXT_URL", &format!("{}/items/2", server.uri()));
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(first_page, "application/json"))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items/2"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(LAST_PAGE, "application/json"))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, format!(r#"{{"base_url": "{}"}}"#, server.uri())).unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        r#"{"streams": [{"stream": {"name": "items", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}"#,
    )
    .unwrap();
    let mut outputs = Vec::new();
    for (name, transformations) in [("as_sent", ""), ("parsed", NO_OP_TRANSFORMATION)] {
        let manifest = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &manifest,
            MANIFEST.replace("TRANSFORMATIONS", transformations),
        )
        .unwrap();
        let (config, catalog) = (config.clone(), catalog.clone());
        let output = sluice_read(manifest, config, catalog).await;
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stdout}\n{stderr}");
        outputs.push(record_lines(&stdout));
    }
    assert_eq!(outputs[0].len(), 12, "{:#?}", outputs[0]);
    assert_eq!(outputs[0], outputs[1]);
}
