//! Every decoder over a live HTTP server on 127.0.0.1: each `records-decoder-*` case's recorded
//! response is served by wiremock, sluice reads it through the network transport, and its
//! records equal the reference's (the case's expected.json).

use crate::support::sluice_read;
use serde_json::Value;
use sluice_http::Cassette;
use std::path::{Path, PathBuf};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance")
        .join(name)
}

async fn read_through_a_server(case: &str) {
    let dir = case_dir(case);
    let cassette = Cassette::load(&dir.join("cassette.json")).unwrap();
    let [exchange] = cassette.exchanges.as_slice() else {
        panic!("{case}: expected one recorded exchange");
    };
    let recorded = exchange.response.to_response().unwrap();
    let server = MockServer::start().await;
    let mut response =
        ResponseTemplate::new(recorded.status).set_body_bytes(recorded.body.to_vec());
    for (name, value) in &recorded.headers {
        response = response.insert_header(name.as_str(), value.as_str());
    }
    Mock::given(method(exchange.request.method.as_str()))
        .respond_with(response)
        .mount(&server)
        .await;

    let work = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    let manifest_path = work.path().join("manifest.yaml");
    std::fs::write(
        &manifest_path,
        manifest.replace("https://api.example.com", &server.uri()),
    )
    .unwrap();
    let output = sluice_read(
        manifest_path,
        dir.join("config.json"),
        dir.join("catalog.json"),
    )
    .await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{case}: sluice failed:\n{stdout}");

    let mut records: serde_json::Map<String, Value> = serde_json::Map::new();
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(line).unwrap();
        if message["type"] == "RECORD" {
            let stream = message["record"]["stream"].as_str().unwrap().to_owned();
            let list = records
                .entry(stream)
                .or_insert_with(|| Value::Array(Vec::new()));
            list.as_array_mut()
                .unwrap()
                .push(message["record"]["data"].clone());
        }
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case_dir(case).join("expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        Value::Object(records),
        expected["read"]["records"],
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csv() {
    read_through_a_server("records-decoder-csv").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonl() {
    read_through_a_server("records-decoder-jsonl").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn xml() {
    read_through_a_server("records-decoder-xml").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip() {
    read_through_a_server("records-decoder-gzip").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn iterable() {
    read_through_a_server("records-decoder-iterable").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zipfile() {
    read_through_a_server("records-decoder-zipfile").await;
}
