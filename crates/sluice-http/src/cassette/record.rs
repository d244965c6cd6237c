//! Recording the exchanges of a live transport.

use super::format::{Cassette, CassetteError, Exchange, RecordedRequest, RecordedResponse};
use crate::{HttpRequest, Transport, TransportFuture};
use std::path::Path;
use std::sync::Mutex;

/// A [`Transport`] that forwards every request to `inner` and remembers the exchange, so the
/// session can be written as a cassette (secrets redacted) and replayed later.
///
/// Requests that got no response (connection errors, timeouts) are not recorded.
#[derive(Debug)]
pub struct RecordingTransport<T: Transport> {
    inner: T,
    exchanges: Mutex<Vec<Exchange>>,
}

impl<T: Transport> RecordingTransport<T> {
    /// Records what passes through `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            exchanges: Mutex::new(Vec::new()),
        }
    }

    /// The exchanges recorded so far, not redacted.
    pub fn cassette(&self) -> Cassette {
        let exchanges = self
            .exchanges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        Cassette {
            exchanges,
            ..Cassette::new()
        }
    }

    /// Writes the exchanges recorded so far to `path`, with credentials and each of `secrets`
    /// replaced by the placeholder (see [`Cassette::redact`]).
    pub fn save(&self, path: &Path, secrets: &[String]) -> Result<(), CassetteError> {
        let mut cassette = self.cassette();
        cassette.redact(secrets);
        cassette.save(path)
    }
}

impl<T: Transport> Transport for RecordingTransport<T> {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        Box::pin(async move {
            let response = self.inner.send(request).await?;
            let exchange = Exchange {
                request: RecordedRequest::from_request(request),
                response: RecordedResponse::from_response(&response),
            };
            self.exchanges
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(exchange);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::ReplayTransport;
    use crate::{HttpResponse, Method, TransportError};
    use bytes::Bytes;

    /// Answers every request with its own URL as JSON, the token it was sent, or fails on `/down`.
    #[derive(Debug)]
    struct EchoTransport;

    impl Transport for EchoTransport {
        fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
            Box::pin(async move {
                if request.url.ends_with("/down") {
                    return Err(TransportError::Connection {
                        request: request.to_string(),
                        reason: "refused".into(),
                    });
                }
                let body = serde_json::json!({"url": request.url, "token": "live-token-1"});
                Ok(HttpResponse {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: Bytes::from(serde_json::to_vec(&body).unwrap()),
                })
            })
        }
    }

    #[tokio::test]
    async fn records_then_replays_with_secrets_redacted() {
        let recorder = RecordingTransport::new(EchoTransport);
        let request = HttpRequest::new(
            Method::Get,
            "https://api.example.com/items?user=sam&key=my-secret",
        )
        .with_header("Authorization", "Bearer my-secret");
        let live = recorder.send(&request).await.unwrap();
        assert!(
            recorder
                .send(&HttpRequest::new(
                    Method::Get,
                    "https://api.example.com/down"
                ))
                .await
                .is_err()
        );
        assert_eq!(recorder.cassette().exchanges.len(), 1);

        let path =
            std::env::temp_dir().join(format!("sluice-cassette-test-{}.json", std::process::id()));
        recorder
            .save(&path, &["my-secret".to_owned(), "live-token-1".to_owned()])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            !text.contains("my-secret") && !text.contains("live-token-1"),
            "{text}"
        );

        // A config redacted the same way sends the placeholder, which the cassette answers.
        let replay = ReplayTransport::new(Cassette::from_json_str(&text).unwrap());
        let redacted = HttpRequest::new(
            Method::Get,
            "https://api.example.com/items?key=REDACTED&user=sam",
        );
        let replayed = replay.send(&redacted).await.unwrap();
        assert_eq!(replayed.status, live.status);
        let body: serde_json::Value = serde_json::from_slice(&replayed.body).unwrap();
        assert_eq!(body["token"], "REDACTED");
        assert!(
            replay.send(&request).await.is_err(),
            "the live secret must not match any more"
        );
    }
}
