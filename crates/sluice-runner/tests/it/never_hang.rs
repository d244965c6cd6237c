//! A sync never hangs: a server that stops sending mid-body, one that trickles a byte at a time,
//! and one that asks to wait a year each end the sync with a `transient_error` in bounded time.

use crate::support::{full_refresh_catalog, sluice_read_with, write_manifest_and_config};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One retry after a tenth of a second, so the tests take seconds, not minutes.
const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
streams:
  - type: DeclarativeStream
    name: items
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "URL_BASE"
        path: /items
        http_method: GET
        error_handler:
          type: DefaultErrorHandler
          max_retries: 1
          backoff_strategies: [BACKOFF]
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
"##;

const SHORT_BACKOFF: &str = "{type: ConstantBackoffStrategy, backoff_time_in_seconds: 0.1}";

/// What a test server does once it has read a request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Sends the head and part of the body, then nothing.
    StopMidBody,
    /// Sends the head, then one byte of the body every half second.
    Trickle,
    /// Answers 429 asking to retry after a year.
    RetryAfterAYear,
}

async fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                match behaviour {
                    Behaviour::StopMidBody => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"data\": [";
                        let _ = socket.write_all(head.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Behaviour::Trickle => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
                        let _ = socket.write_all(head.as_bytes()).await;
                        for _ in 0..120 {
                            if socket.write_all(b" ").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    Behaviour::RetryAfterAYear => {
                        let response = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 31536000\r\ncontent-length: 0\r\n\r\n";
                        let _ = socket.write_all(response.as_bytes()).await;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

/// Runs a read against `behaviour` with `flags`; gives the failure types of its ERROR traces,
/// their messages, whether it succeeded and how long it took.
async fn read(
    behaviour: Behaviour,
    backoff: &str,
    flags: &[&str],
) -> (Vec<String>, String, bool, Duration) {
    let url = serve(behaviour).await;
    let work = tempfile::tempdir().unwrap();
    let manifest_text = MANIFEST.replace("BACKOFF", backoff);
    let (manifest, config) = write_manifest_and_config(work.path(), &manifest_text, &url);
    let catalog = work.path().join("catalog.json");
    std::fs::write(&catalog, full_refresh_catalog(&["items"])).unwrap();
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let started = Instant::now();
    let output = sluice_read_with(manifest, config, catalog, flags).await;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut failure_types = Vec::new();
    let mut messages = String::new();
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(line).unwrap();
        if message["type"] == "TRACE" && message["trace"]["type"] == "ERROR" {
            let error = &message["trace"]["error"];
            failure_types.push(
                error["failure_type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            messages.push_str(error["message"].as_str().unwrap_or_default());
            messages.push('\n');
        }
    }
    (failure_types, messages, output.status.success(), elapsed)
}

#[tokio::test]
async fn a_server_that_stops_mid_body_fails_the_stream_after_the_stall_timeout() {
    let (failures, messages, success, elapsed) = read(
        Behaviour::StopMidBody,
        SHORT_BACKOFF,
        &["--stall-timeout", "1"],
    )
    .await;
    assert!(!success);
    assert!(
        failures.contains(&"transient_error".to_owned()),
        "{failures:?}: {messages}"
    );
    assert!(messages.contains("/items"), "{messages}");
    // Two attempts of about a second each.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[tokio::test]
async fn a_trickling_server_fails_the_stream_after_the_request_timeout() {
    let (failures, messages, success, elapsed) = read(
        Behaviour::Trickle,
        SHORT_BACKOFF,
        &["--stall-timeout", "30", "--request-timeout", "2"],
    )
    .await;
    assert!(!success);
    assert!(
        failures.contains(&"transient_error".to_owned()),
        "{failures:?}: {messages}"
    );
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[tokio::test]
async fn a_server_asking_to_wait_a_year_fails_the_stream_at_once() {
    let (failures, messages, success, elapsed) = read(
        Behaviour::RetryAfterAYear,
        "{type: WaitTimeFromHeader, header: Retry-After}",
        &[],
    )
    .await;
    assert!(!success);
    assert!(
        failures.contains(&"transient_error".to_owned()),
        "{failures:?}: {messages}"
    );
    assert!(messages.contains("--max-wait"), "{messages}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}
