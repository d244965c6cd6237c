//! Answering requests from a cassette.

use super::format::{Cassette, CassetteError};
use super::matching::RequestKey;
use crate::{HttpRequest, HttpResponse, Transport, TransportError, TransportFuture};
use std::path::Path;
use std::sync::Mutex;

/// A [`Transport`] that answers from a cassette and never touches the network.
///
/// Each recorded exchange answers one request; when several recorded exchanges match the same
/// request they answer in recorded order and the last one keeps answering afterwards.
#[derive(Debug)]
pub struct ReplayTransport {
    cassette: Cassette,
    keys: Vec<RequestKey>,
    /// How many times each exchange has answered.
    uses: Mutex<Vec<usize>>,
    origin: String,
}

impl ReplayTransport {
    /// Replays `cassette`.
    pub fn new(cassette: Cassette) -> Self {
        Self::with_origin(cassette, "the cassette".to_owned())
    }

    /// Replays the cassette file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, CassetteError> {
        Ok(Self::with_origin(
            Cassette::load(path)?,
            format!("cassette {}", path.display()),
        ))
    }

    fn with_origin(cassette: Cassette, origin: String) -> Self {
        let keys = cassette
            .exchanges
            .iter()
            .map(|e| RequestKey::of_recorded(&e.request))
            .collect();
        let uses = Mutex::new(vec![0; cassette.exchanges.len()]);
        Self {
            cassette,
            keys,
            uses,
            origin,
        }
    }

    /// The cassette being replayed.
    pub fn cassette(&self) -> &Cassette {
        &self.cassette
    }

    /// The recorded answer to `request`, or [`TransportError::NotRecorded`] naming the request
    /// and the closest recorded one.
    pub fn answer(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let key = RequestKey::of_request(request);
        let candidates: Vec<usize> = (0..self.keys.len())
            .filter(|&i| self.keys[i] == key && self.missing_headers(i, request).is_empty())
            .collect();
        let Some(&last) = candidates.last() else {
            return Err(TransportError::NotRecorded(
                self.not_recorded_message(request, &key),
            ));
        };
        let chosen = {
            // A poisoned lock only means another request panicked mid-update; counts stay usable.
            let mut uses = self
                .uses
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let chosen = candidates
                .iter()
                .copied()
                .find(|&i| uses[i] == 0)
                .unwrap_or(last);
            uses[chosen] += 1;
            chosen
        };
        self.cassette.exchanges[chosen]
            .response
            .to_response()
            .map_err(|reason| TransportError::Body {
                request: request.to_string(),
                reason: format!("exchange #{chosen}: {reason}"),
            })
    }

    /// The exchanges that have not answered any request yet, by index.
    pub fn unused_exchanges(&self) -> Vec<usize> {
        let uses = self
            .uses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        uses.iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| i)
            .collect()
    }

    /// The required headers of exchange `index` that `request` lacks or sends with another value.
    fn missing_headers(&self, index: usize, request: &HttpRequest) -> Vec<String> {
        self.cassette.exchanges[index]
            .request
            .match_headers
            .iter()
            .filter(|(name, value)| request.header(name) != Some(value.as_str()))
            .map(|(name, value)| match request.header(name) {
                Some(sent) => format!("header {name}: {sent:?} vs recorded {value:?}"),
                None => format!("header {name} missing (recorded {value:?})"),
            })
            .collect()
    }

    fn not_recorded_message(&self, request: &HttpRequest, key: &RequestKey) -> String {
        let mut message = format!("no recorded exchange in {} answers {request}", self.origin);
        let closest = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, recorded)| (i, key.similarity(recorded)))
            // The earliest of equally close recordings, as a reader scanning the file would pick.
            .fold(None, |best: Option<(usize, f64)>, (i, score)| match best {
                Some((_, best_score)) if best_score >= score => best,
                _ => Some((i, score)),
            });
        match closest {
            Some((index, _)) => {
                let recorded = &self.cassette.exchanges[index].request;
                let mut differences = key.differences(&self.keys[index]);
                differences.extend(self.missing_headers(index, request));
                let differences = differences.join("; ");
                message.push_str(&format!(
                    "; the closest recorded request is #{index} {} ({differences})",
                    recorded.describe()
                ));
            }
            None => message.push_str("; the cassette holds no exchanges"),
        }
        message
    }
}

impl Transport for ReplayTransport {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        Box::pin(async move { self.answer(request) })
    }

    /// A replay has no server to wait for: backoffs cost no time.
    fn wait(
        &self,
        _duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    const CASSETTE: &str = r#"{
      "exchanges": [
        {"request": {"url": "https://api.example.com/v1/users?page=1&limit=2"},
         "response": {"status": 500, "body": {"text": "oops"}}},
        {"request": {"url": "https://api.example.com/v1/users?limit=2&page=1"},
         "response": {"status": 200, "headers": {"X-Page": "1"}, "body": {"json": {"data": [1, 2]}}}},
        {"request": {"method": "POST", "url": "https://api.example.com/v1/search",
                     "body": {"json": {"q": "x", "size": 10}}},
         "response": {"status": 201, "body": {"base64": "AAEC"}}}
      ]
    }"#;

    fn transport() -> ReplayTransport {
        ReplayTransport::new(Cassette::from_json_str(CASSETTE).unwrap())
    }

    #[tokio::test]
    async fn identical_requests_answer_in_order_and_the_last_repeats() {
        let transport = transport();
        let request = HttpRequest::new(
            Method::Get,
            "https://api.example.com/v1/users?limit=2&page=1",
        );
        let statuses = [
            transport.send(&request).await.unwrap().status,
            transport.send(&request).await.unwrap().status,
            transport.send(&request).await.unwrap().status,
        ];
        assert_eq!(statuses, [500, 200, 200]);
        let response = transport.send(&request).await.unwrap();
        assert_eq!(response.header("x-page"), Some("1"));
        assert_eq!(response.body.as_ref(), br#"{"data":[1,2]}"#);
        assert_eq!(transport.unused_exchanges(), vec![2]);
    }

    #[tokio::test]
    async fn required_headers_must_be_sent() {
        let cassette = Cassette::from_json_str(
            r#"{"exchanges": [{"request": {"url": "https://h/me", "match_headers": {"Authorization": "Bearer REDACTED"}},
                               "response": {"status": 200}}]}"#,
        )
        .unwrap();
        let transport = ReplayTransport::new(cassette);
        let good = HttpRequest::new(Method::Get, "https://h/me")
            .with_header("authorization", "Bearer REDACTED");
        assert_eq!(transport.send(&good).await.unwrap().status, 200);
        let bad = HttpRequest::new(Method::Get, "https://h/me")
            .with_header("Authorization", "Bearer other");
        let Err(TransportError::NotRecorded(message)) = transport.send(&bad).await else {
            panic!("expected NotRecorded");
        };
        assert!(
            message
                .contains(r#"header Authorization: "Bearer other" vs recorded "Bearer REDACTED""#),
            "{message}"
        );
        let none = HttpRequest::new(Method::Get, "https://h/me");
        assert!(transport.send(&none).await.is_err());
    }

    #[tokio::test]
    async fn bodies_match_as_json_and_binary_responses_survive() {
        let transport = transport();
        let request = HttpRequest::new(Method::Post, "https://api.example.com/v1/search")
            .with_body("application/json", r#"{"size": 10, "q": "x"}"#);
        let response = transport.send(&request).await.unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body.as_ref(), &[0u8, 1, 2]);
        let other = HttpRequest::new(Method::Post, "https://api.example.com/v1/search")
            .with_body("application/json", r#"{"size": 20, "q": "x"}"#);
        assert!(matches!(
            transport.send(&other).await,
            Err(TransportError::NotRecorded(_))
        ));
    }

    #[tokio::test]
    async fn an_unmatched_request_names_itself_and_the_closest_recording() {
        let transport = transport();
        let request = HttpRequest::new(
            Method::Get,
            "https://api.example.com/v1/user?page=1&limit=2",
        );
        let Err(TransportError::NotRecorded(message)) = transport.send(&request).await else {
            panic!("expected NotRecorded");
        };
        assert!(
            message.contains("answers GET https://api.example.com/v1/user?page=1&limit=2"),
            "{message}"
        );
        assert!(
            message.contains(
                "closest recorded request is #0 GET https://api.example.com/v1/users?page=1&limit=2"
            ),
            "{message}"
        );
        assert!(
            message.contains("path /v1/user vs recorded /v1/users"),
            "{message}"
        );
        let empty = ReplayTransport::new(Cassette::new());
        let Err(TransportError::NotRecorded(message)) = empty.send(&request).await else {
            panic!("expected NotRecorded");
        };
        assert!(
            message.ends_with("the cassette holds no exchanges"),
            "{message}"
        );
    }
}
