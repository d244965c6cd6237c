//! The requests a preview made: a [`Transport`] that notes each one with its outcome and time.

use serde_json::Value;
use sluice_http::{HttpRequest, Transport, TransportFuture};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request sent, and what came of it.
#[derive(Debug)]
pub struct LoggedRequest {
    /// As sent (credentials included): show it only through [`LoggedRequest::shown_url`].
    request: HttpRequest,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// What a request got back.
#[derive(Debug)]
pub enum Outcome {
    Response {
        status: u16,
        /// The body's size, decompressed.
        bytes: usize,
        shape: Shape,
    },
    /// No response: the connection failed or timed out.
    Failed(String),
}

/// What a JSON body looks like at its top level: enough to tell why no record was selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    Object(Vec<String>),
    Array(usize),
    /// Not JSON, or a JSON scalar.
    Other,
}

impl Shape {
    fn of(body: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Shape::Object(map.keys().cloned().collect()),
            Ok(Value::Array(items)) => Shape::Array(items.len()),
            _ => Shape::Other,
        }
    }
}

impl LoggedRequest {
    pub fn method(&self) -> &'static str {
        self.request.method.as_str()
    }

    /// The URL with the config's secrets and the request's credentials masked.
    pub fn shown_url(&self, secrets: &[String]) -> String {
        sluice_http::cassette::redacted_url(&self.request, secrets)
    }

    /// Whether `other` is the same request with the same outcome (a retry that fared alike).
    pub fn repeats(&self, other: &LoggedRequest) -> bool {
        let outcome = |r: &LoggedRequest| match &r.outcome {
            Outcome::Response { status, .. } => Ok(*status),
            Outcome::Failed(error) => Err(error.clone()),
        };
        self.request.method == other.request.method
            && self.request.url == other.request.url
            && outcome(self) == outcome(other)
    }

    /// The outcome as one line: `200, 12 ms, 1.2 kB`, or the failure, masked.
    pub fn shown_outcome(&self, secrets: &[String]) -> String {
        let millis = self.elapsed.as_millis();
        match &self.outcome {
            Outcome::Response { status, bytes, .. } => {
                format!("{status}, {millis} ms, {}", size(*bytes))
            }
            // Transport errors name the request by its raw URL.
            Outcome::Failed(error) => format!(
                "no response after {millis} ms: {}",
                error.replace(&self.request.url, &self.shown_url(secrets))
            ),
        }
    }
}

fn size(bytes: usize) -> String {
    match bytes {
        0..1000 => format!("{bytes} B"),
        1000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1000.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
}

/// Sends requests through another transport and notes each one, in the order they complete.
#[derive(Debug)]
pub struct RequestLog {
    inner: Arc<dyn Transport>,
    entries: Mutex<Vec<LoggedRequest>>,
}

impl RequestLog {
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The requests noted since the last call.
    pub fn take(&self) -> Vec<LoggedRequest> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Transport for RequestLog {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.send(request).await;
            let outcome = match &result {
                Ok(response) => Outcome::Response {
                    status: response.status,
                    bytes: response.body.len(),
                    shape: if response.is_success() {
                        Shape::of(&response.body)
                    } else {
                        Shape::Other
                    },
                },
                Err(error) => Outcome::Failed(error.to_string()),
            };
            let entry = LoggedRequest {
                request: request.clone(),
                outcome,
                elapsed: started.elapsed(),
            };
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry);
            result
        })
    }

    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.inner.wait(duration)
    }
}
