//! A full-refresh read against a live HTTP server on 127.0.0.1 gives the same RECORD data and
//! final STATE per stream as the reference gave against the same responses
//! (`tests/data/first_read/expected.json`, recorded by `record_reference.py` there).
//!
//! The server answers only requests that carry the expected authentication and query, so the
//! test also proves each authenticator and request option reached the wire.

use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_KEY: &str = "k3y-secret";

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/first_read")
}

fn body(name: &str) -> ResponseTemplate {
    let bytes = std::fs::read(data_dir().join("responses").join(name)).unwrap();
    ResponseTemplate::new(200).set_body_raw(bytes, "application/json")
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ada:pa ss")
    );
    Mock::given(method("GET"))
        .and(path("/v2/customers"))
        .and(header("X-Api-Key", API_KEY))
        .and(header("Accept", "application/json"))
        .and(query_param("region", "eu"))
        .and(query_param("limit", "50"))
        .and(query_param("active", "true"))
        .respond_with(body("customers.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/invoices/eu"))
        .and(header("Authorization", basic.as_str()))
        .respond_with(body("invoices.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/tags"))
        .and(header(
            "Authorization",
            format!("Bearer {API_KEY}").as_str(),
        ))
        .and(query_param("key", API_KEY))
        .respond_with(body("tags.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/settings"))
        .and(query_param("api_key", API_KEY))
        .respond_with(body("settings.json"))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn read_matches_the_reference_against_a_local_server() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"base_url": server.uri(), "api_key": API_KEY, "region": "eu", "user": "ada", "password": "pa ss"});
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    // The server runs on the runtime's other worker; the blocking child runs off it.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("read")
            .arg("--manifest")
            .arg(data_dir().join("manifest.yaml"))
            .arg("--config")
            .arg(&config_path)
            .arg("--catalog")
            .arg(data_dir().join("catalog.json"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "sluice failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut records: Map<String, Value> = Map::new();
    let mut states: Map<String, Value> = Map::new();
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(line).unwrap();
        match message["type"].as_str() {
            Some("RECORD") => {
                let stream = message["record"]["stream"].as_str().unwrap().to_owned();
                let list = records.entry(stream).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .unwrap()
                    .push(message["record"]["data"].clone());
            }
            Some("STATE") => {
                let state = &message["state"];
                let name = state["stream"]["stream_descriptor"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                states.insert(
                    name,
                    json!({"stream_state": state["stream"]["stream_state"], "sourceStats": state["sourceStats"]}),
                );
            }
            _ => {}
        }
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join("expected.json")).unwrap())
            .unwrap();
    assert_eq!(
        Value::Object(records),
        expected["records"],
        "records differ from the reference's"
    );
    assert_eq!(
        Value::Object(states),
        expected["states"],
        "final states differ from the reference's"
    );
    assert!(!stdout.contains(API_KEY), "a secret reached the output");
}
