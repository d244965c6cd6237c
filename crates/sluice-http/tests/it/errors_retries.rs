//! Error handling, backoff and rate limits against a local server (wiremock on 127.0.0.1).
//! Waits go through a transport that records them instead of sleeping, so the exact waits
//! are checked without the time.

use serde_json::{Value, json};
use sluice_http::auth::Authenticator;
use sluice_http::{
    Action, ApiBudget, HttpRequest, HttpResponse, HyperTransport, RequestOptions, RequestVariables,
    Requester, Transport, TransportFuture,
};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use sluice_protocol::FailureType;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Sends for real, records waits instead of sleeping.
#[derive(Debug, Default)]
struct RecordedWaits {
    inner: HyperTransport,
    waits: Mutex<Vec<Duration>>,
}

impl Transport for RecordedWaits {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.inner.send(request)
    }
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.waits.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

impl RecordedWaits {
    fn waits(&self) -> Vec<f64> {
        self.waits
            .lock()
            .unwrap()
            .iter()
            .map(Duration::as_secs_f64)
            .collect()
    }
}

fn requester(
    server: &MockServer,
    error_handler: Value,
    transport: Arc<RecordedWaits>,
) -> Requester {
    let at = ManifestPath::root().key("requester");
    let mut node = json!({"type": "HttpRequester", "url_base": server.uri(), "path": "/items", "http_method": "GET"});
    if !error_handler.is_null() {
        node["error_handler"] = error_handler;
    }
    let model = model::HttpRequester::from_node(&node, &at).unwrap();
    let config = Arc::new(json!({"api_key": "k-secret-123"}));
    Requester::from_model(
        &model,
        &config,
        transport,
        Authenticator::bearer("k-secret-123"),
        &at,
    )
    .unwrap()
}

async fn fetch(requester: &Requester) -> Result<Option<HttpResponse>, sluice_http::HttpError> {
    let empty = json!({});
    let variables = RequestVariables {
        stream_slice: &empty,
        next_page_token: None,
        extra: None,
    };
    let request = requester
        .build(variables, &RequestOptions::default())
        .await?;
    requester.send(&request).await
}

async fn respond_in_order(server: &MockServer, responses: Vec<ResponseTemplate>) {
    let count = responses.len();
    for (i, response) in responses.into_iter().enumerate() {
        let mock = Mock::given(method("GET"))
            .and(path("/items"))
            .respond_with(response);
        if i + 1 < count {
            mock.up_to_n_times(1).mount(server).await;
        } else {
            mock.mount(server).await;
        }
    }
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": 1}]}))
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_read_completes() {
    let server = MockServer::start().await;
    respond_in_order(
        &server,
        vec![
            ResponseTemplate::new(429).insert_header("Retry-After", "2"),
            ok(),
        ],
    )
    .await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "DefaultErrorHandler", "backoff_strategies": [{"type": "WaitTimeFromHeader", "header": "Retry-After"}]});
    let response = fetch(&requester(&server, handler, Arc::clone(&transport)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status, 200);
    // The reference sleeps the header's wait plus one second.
    assert_eq!(transport.waits(), vec![3.0]);
}

#[tokio::test]
async fn a_5xx_beyond_max_retries_fails_as_transient_error() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ResponseTemplate::new(503)]).await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "DefaultErrorHandler", "max_retries": 3});
    let error = fetch(&requester(&server, handler, Arc::clone(&transport)))
        .await
        .unwrap_err();
    assert_eq!(error.failure_type, FailureType::TransientError);
    assert_eq!(
        error.message,
        "Exhausted available request attempts. Please see logs for more details. Exception: HTTP Status Code: 503. Error: Service unavailable."
    );
    // No strategy: the reference's own exponential waits.
    assert_eq!(transport.waits(), vec![1.0, 2.0, 4.0]);
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_401_fails_as_config_error_with_the_request_named_and_secrets_masked() {
    let server = MockServer::start().await;
    respond_in_order(
        &server,
        vec![ResponseTemplate::new(401).set_body_json(json!({"message": "bad key k-secret-123"}))],
    )
    .await;
    let transport = Arc::new(RecordedWaits::default());
    let error = fetch(&requester(&server, Value::Null, Arc::clone(&transport)))
        .await
        .unwrap_err();
    assert_eq!(error.failure_type, FailureType::ConfigError);
    assert_eq!(
        error.message,
        "HTTP Status Code: 401. Error: Unauthorized. Please ensure you are authenticated correctly."
    );
    assert!(error.internal_message.starts_with(&format!(
        "'GET' request to '{}/items' failed with status code '401'",
        server.uri()
    )));
    assert!(
        error.internal_message.contains("bad key ****"),
        "{}",
        error.internal_message
    );
    assert!(!error.internal_message.contains("k-secret-123"));
    assert!(transport.waits().is_empty());
}

#[tokio::test]
async fn ignore_action_gives_no_response() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ResponseTemplate::new(404)]).await;
    let handler = json!({"type": "DefaultErrorHandler", "response_filters": [{"type": "HttpResponseFilter", "http_codes": [404], "action": "IGNORE"}]});
    let result = fetch(&requester(
        &server,
        handler,
        Arc::new(RecordedWaits::default()),
    ))
    .await
    .unwrap();
    assert!(result.is_none());
}

#[tokio::test]
async fn fail_action_on_a_200_uses_the_filter_message_and_failure_type() {
    let server = MockServer::start().await;
    respond_in_order(
        &server,
        vec![
            ResponseTemplate::new(200).set_body_json(json!({"status": "error", "detail": "quota"})),
        ],
    )
    .await;
    let handler = json!({"type": "DefaultErrorHandler", "response_filters": [{
        "type": "HttpResponseFilter", "predicate": "{{ response.status == 'error' }}", "action": "FAIL",
        "failure_type": "config_error", "error_message": "API said: {{ response.detail }}"}]});
    let error = fetch(&requester(
        &server,
        handler,
        Arc::new(RecordedWaits::default()),
    ))
    .await
    .unwrap_err();
    assert_eq!(
        (error.failure_type, error.message.as_str()),
        (FailureType::ConfigError, "API said: quota")
    );
}

#[tokio::test]
async fn retry_action_with_constant_backoff_then_success() {
    let server = MockServer::start().await;
    respond_in_order(
        &server,
        vec![
            ResponseTemplate::new(400).set_body_string("try again later"),
            ok(),
        ],
    )
    .await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "DefaultErrorHandler",
        "response_filters": [{"type": "HttpResponseFilter", "error_message_contains": "again", "action": "RETRY"}],
        "backoff_strategies": [{"type": "ConstantBackoffStrategy", "backoff_time_in_seconds": 0.5}]});
    let response = fetch(&requester(&server, handler, Arc::clone(&transport)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(transport.waits(), vec![1.5]);
}

#[tokio::test]
async fn rate_limited_action_without_strategy_waits_exponentially_and_is_counted() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ResponseTemplate::new(429)]).await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "DefaultErrorHandler", "max_retries": 2});
    let error = fetch(&requester(&server, handler, Arc::clone(&transport)))
        .await
        .unwrap_err();
    assert_eq!(transport.waits(), vec![1.0, 2.0]);
    assert_eq!(
        (error.failure_type, error.message.as_str()),
        (FailureType::TransientError, "API rate limit exceeded.")
    );
    assert_eq!(
        error.internal_message,
        "Rate limit retry budget exhausted. Last exception: HTTP Status Code: 429. Error: Too many requests."
    );
}

#[tokio::test]
async fn exponential_backoff_grows_with_the_attempt() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ResponseTemplate::new(500)]).await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "DefaultErrorHandler", "max_retries": 2,
        "backoff_strategies": [{"type": "ExponentialBackoffStrategy", "factor": "{{ 0.25 }}"}]});
    let error = fetch(&requester(&server, handler, Arc::clone(&transport)))
        .await
        .unwrap_err();
    // factor * 2^attempt (attempt from 1), plus the reference's extra second.
    assert_eq!(transport.waits(), vec![1.5, 2.0]);
    assert_eq!(error.failure_type, FailureType::TransientError);
}

#[tokio::test]
async fn wait_until_time_from_header_and_max_waiting_time() {
    let server = MockServer::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    respond_in_order(
        &server,
        vec![ResponseTemplate::new(429).insert_header("X-Reset", reset.to_string().as_str())],
    )
    .await;
    let handler = json!({"type": "DefaultErrorHandler", "backoff_strategies": [
        {"type": "WaitUntilTimeFromHeader", "header": "X-Reset", "max_waiting_time_in_seconds": 60}]});
    let error = fetch(&requester(
        &server,
        handler,
        Arc::new(RecordedWaits::default()),
    ))
    .await
    .unwrap_err();
    assert_eq!(error.failure_type, FailureType::TransientError);
    assert_eq!(
        error.message,
        "The rate limit wait time is longer than the connector is allowed to wait."
    );
}

#[tokio::test]
async fn composite_handler_retries_what_the_second_handler_retries() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ResponseTemplate::new(403), ok()]).await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "CompositeErrorHandler", "error_handlers": [
        {"type": "DefaultErrorHandler", "response_filters": [{"type": "HttpResponseFilter", "http_codes": [418], "action": "IGNORE"}]},
        {"type": "DefaultErrorHandler", "response_filters": [{"type": "HttpResponseFilter", "http_codes": [403], "action": "RETRY"}],
         "backoff_strategies": [{"type": "ConstantBackoffStrategy", "backoff_time_in_seconds": 0.1}]}]});
    let response = fetch(&requester(&server, handler, Arc::clone(&transport)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(transport.waits(), vec![1.1]);
}

#[tokio::test]
async fn signals_for_the_retriever_are_returned_as_their_action() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ResponseTemplate::new(400)]).await;
    let handler = json!({"type": "DefaultErrorHandler", "response_filters": [
        {"type": "HttpResponseFilter", "http_codes": [400], "action": "RESET_PAGINATION"}]});
    let error = fetch(&requester(
        &server,
        handler,
        Arc::new(RecordedWaits::default()),
    ))
    .await
    .unwrap_err();
    assert_eq!(error.action, Action::ResetPagination);
}

fn budget(policies: Value) -> ApiBudget {
    let node = json!({"type": "HTTPAPIBudget", "policies": policies});
    let model =
        model::HTTPAPIBudget::from_node(&node, &ManifestPath::root().key("api_budget")).unwrap();
    ApiBudget::from_model(
        &model,
        &Arc::new(json!({})),
        &ManifestPath::root().key("api_budget"),
    )
    .unwrap()
}

#[tokio::test]
async fn moving_window_policy_spaces_calls() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ok()]).await;
    let transport = Arc::new(RecordedWaits::default());
    let mut requester = requester(&server, Value::Null, Arc::clone(&transport));
    requester.budget = Some(budget(json!([{"type": "MovingWindowCallRatePolicy",
        "rates": [{"type": "Rate", "limit": 2, "interval": "PT10S"}],
        "matchers": [{"type": "HttpRequestRegexMatcher", "url_path_pattern": "/items"}]}])));
    for _ in 0..3 {
        fetch(&requester).await.unwrap().unwrap();
    }
    let waits = transport.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!((9.0..=10.0).contains(&waits[0]), "{waits:?}");
}

#[tokio::test]
async fn fixed_window_policy_follows_ratelimit_headers() {
    let server = MockServer::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    respond_in_order(
        &server,
        vec![
            ok().insert_header("ratelimit-remaining", "0")
                .insert_header("ratelimit-reset", reset.to_string().as_str()),
            ok(),
        ],
    )
    .await;
    let transport = Arc::new(RecordedWaits::default());
    let mut requester = requester(&server, Value::Null, Arc::clone(&transport));
    requester.budget = Some(budget(
        json!([{"type": "FixedWindowCallRatePolicy", "period": "PT1M", "call_limit": 100, "matchers": []}]),
    ));
    fetch(&requester).await.unwrap().unwrap();
    fetch(&requester).await.unwrap().unwrap();
    let waits = transport.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!((28.0..=31.0).contains(&waits[0]), "{waits:?}");
}

#[tokio::test]
async fn unlimited_policy_takes_precedence_for_its_requests() {
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ok()]).await;
    let transport = Arc::new(RecordedWaits::default());
    let mut requester = requester(&server, Value::Null, Arc::clone(&transport));
    requester.budget = Some(budget(json!([
        {"type": "UnlimitedCallRatePolicy", "matchers": [{"type": "HttpRequestRegexMatcher", "method": "GET"}]},
        {"type": "FixedWindowCallRatePolicy", "period": "PT1H", "call_limit": 1, "matchers": []}])));
    for _ in 0..3 {
        fetch(&requester).await.unwrap().unwrap();
    }
    assert!(transport.waits().is_empty());
}

/// Counts what [`sluice_http::observe`] reports.
#[derive(Debug, Default)]
struct Counted {
    requests: std::sync::atomic::AtomicU64,
    events: Mutex<Vec<String>>,
}

impl sluice_http::observe::HttpObserver for Counted {
    fn request_sent(&self) {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn retrying(&self, wait: Duration, rate_limited: bool) {
        let event = format!("retry {}s rate_limited={rate_limited}", wait.as_secs_f64());
        self.events.lock().unwrap().push(event);
    }
    fn budget_wait(&self, wait: Duration) {
        let event = format!("budget {}s", wait.as_secs_f64().round());
        self.events.lock().unwrap().push(event);
    }
}

impl Counted {
    fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn an_observer_sees_the_requests_retries_and_waits_of_its_work_only() {
    use sluice_http::observe::observed;
    let server = MockServer::start().await;
    respond_in_order(
        &server,
        vec![
            ResponseTemplate::new(429).insert_header("Retry-After", "2"),
            ResponseTemplate::new(500),
            ok(),
        ],
    )
    .await;
    let transport = Arc::new(RecordedWaits::default());
    let handler = json!({"type": "DefaultErrorHandler", "backoff_strategies": [{"type": "WaitTimeFromHeader", "header": "Retry-After"}]});
    let requester = requester(&server, handler, Arc::clone(&transport));
    let first = Arc::new(Counted::default());
    let second = Arc::new(Counted::default());
    // Two pieces of work on one task, as the engine reads streams: each sees its own requests.
    let (a, b) = tokio::join!(
        observed(Some(first.clone()), fetch(&requester)),
        observed(Some(second.clone()), async {
            fetch(&requester).await.unwrap();
            fetch(&requester).await
        }),
    );
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    // Work that nobody observes is not counted anywhere.
    fetch(&requester).await.unwrap().unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
    assert_eq!(first.requests() + second.requests(), 5);
    assert!(first.requests() >= 1 && second.requests() >= 2);
    let mut retried: Vec<String> = [first.events(), second.events()].concat();
    retried.sort();
    assert_eq!(
        retried,
        ["retry 1s rate_limited=false", "retry 3s rate_limited=true"],
        "the 429 (its 2 s plus one) and the 500 (one second) were retried, by whichever work got them"
    );
}

#[tokio::test]
async fn an_observer_sees_the_waits_of_the_api_budget() {
    use sluice_http::observe::observed;
    let server = MockServer::start().await;
    respond_in_order(&server, vec![ok()]).await;
    let transport = Arc::new(RecordedWaits::default());
    let mut requester = requester(&server, Value::Null, Arc::clone(&transport));
    requester.budget = Some(budget(json!([{"type": "MovingWindowCallRatePolicy",
        "rates": [{"type": "Rate", "limit": 1, "interval": "PT10S"}], "matchers": []}])));
    let counted = Arc::new(Counted::default());
    observed(Some(counted.clone()), async {
        fetch(&requester).await.unwrap();
        fetch(&requester).await.unwrap();
    })
    .await;
    fetch(&requester).await.unwrap();
    assert_eq!(transport.waits().len(), 2, "{:?}", transport.waits());
    assert_eq!(counted.requests(), 2);
    assert_eq!(counted.events(), ["budget 10s"]);
}
