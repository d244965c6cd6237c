//! `RateLimitedMultipleTokenAuthenticator` against a local quota status endpoint.

use crate::auth_support::{build, context, try_build};
use serde_json::{Value, json};
use sluice_http::auth::{AuthContext, Authenticator};
use sluice_http::{HttpRequest, HttpResponse, HyperTransport, Method, Transport, TransportFuture};
use sluice_protocol::FailureType;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The network transport; waits are recorded and skipped.
#[derive(Debug, Default)]
struct Waits {
    inner: HyperTransport,
    waits: Mutex<Vec<Duration>>,
}

impl Transport for Waits {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.inner.send(request)
    }

    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.waits.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn epoch_in(seconds: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + seconds
}

fn authenticator(server: &MockServer, extra: Value) -> Value {
    let mut node = json!({
        "type": "RateLimitedMultipleTokenAuthenticator",
        "tokens": ["{{ config['first'] }}", "{{ config['second'] }}"],
        "quota_status_source": {"type": "QuotaStatusSource", "url": format!("{}/rate_limit", server.uri())},
        "quotas": [
            {"type": "TokenQuota", "name": "search", "remaining_path": ["search", "remaining"],
             "reset_path": ["search", "reset"], "limit_path": ["search", "limit"],
             "matchers": [{"type": "HttpRequestRegexMatcher", "url_path_pattern": "/search"}]},
            {"type": "TokenQuota", "name": "core", "remaining_path": ["core", "remaining"],
             "reset_path": ["core", "reset"]}
        ],
        "max_wait_time": "PT10M",
        "budget_reserve_fraction": 0,
        "budget_min_reserve": 0
    });
    for (k, v) in extra.as_object().unwrap() {
        node[k] = v.clone();
    }
    node
}

fn config() -> Value {
    json!({"first": "tok-first-111", "second": "tok-second-222"})
}

fn quota_body(search: i64, core: i64, reset: u64) -> Value {
    json!({
        "search": {"remaining": search, "reset": reset, "limit": 30},
        "core": {"remaining": core, "reset": reset.to_string()}
    })
}

async fn mount_quota(server: &MockServer, token: &str, body: Value, times: Option<u64>) {
    let mock = Mock::given(method("GET"))
        .and(path("/rate_limit"))
        .and(header("Authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body));
    let mock = match times {
        Some(n) => mock.up_to_n_times(n).with_priority(1),
        None => mock,
    };
    mock.mount(server).await;
}

async fn sign(auth: &Authenticator, url: &str) -> Result<String, sluice_http::HttpError> {
    let mut request = HttpRequest::new(Method::Get, url);
    auth.sign(&mut request, &|t| t.to_owned()).await?;
    Ok(request.header("Authorization").unwrap().to_owned())
}

fn waits_context(transport: &Arc<Waits>) -> AuthContext {
    AuthContext::new(
        Arc::new(config()),
        Arc::clone(transport) as Arc<dyn Transport>,
    )
}

#[tokio::test]
async fn seeds_each_token_and_rotates_when_its_pool_is_spent() {
    let server = MockServer::start().await;
    let reset = epoch_in(3600);
    mount_quota(&server, "tok-first-111", quota_body(0, 2, reset), None).await;
    mount_quota(&server, "tok-second-222", quota_body(0, 1, reset), None).await;
    let auth = build(authenticator(&server, json!({})), &context(config()));
    assert!(auth.injections().await.unwrap().is_empty());
    let url = format!("{}/repos", server.uri());
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(sign(&auth, &url).await.unwrap());
    }
    assert_eq!(
        sent,
        [
            "Bearer tok-first-111",
            "Bearer tok-first-111",
            "Bearer tok-second-222"
        ]
    );
    // Every token is spent and the reset is an hour away, past `max_wait_time` (10 minutes).
    let error = sign(&auth, &url).await.unwrap_err();
    assert_eq!(error.failure_type, FailureType::TransientError);
    assert_eq!(
        error.message,
        "Rate limit is exceeded for all provided tokens."
    );
    assert!(error.internal_message.contains("(quota: core)"));
    // Seeded once per token, not per request.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn requests_are_charged_to_the_first_pool_that_matches() {
    let server = MockServer::start().await;
    let reset = epoch_in(3600);
    mount_quota(&server, "tok-first-111", quota_body(1, 5, reset), None).await;
    mount_quota(&server, "tok-second-222", quota_body(1, 5, reset), None).await;
    let auth = build(authenticator(&server, json!({})), &context(config()));
    let search = format!("{}/search/issues", server.uri());
    let core = format!("{}/repos", server.uri());
    assert_eq!(sign(&auth, &search).await.unwrap(), "Bearer tok-first-111");
    // The search pool of the first token is spent: search moves to the second token...
    assert_eq!(sign(&auth, &search).await.unwrap(), "Bearer tok-second-222");
    // ...and so does the active token, but the core pool still has calls on it.
    assert_eq!(sign(&auth, &core).await.unwrap(), "Bearer tok-second-222");
    // Both search pools are spent now.
    let error = sign(&auth, &search).await.unwrap_err();
    assert!(error.internal_message.contains("(quota: search)"));
    assert_eq!(sign(&auth, &core).await.unwrap(), "Bearer tok-second-222");
}

#[tokio::test]
async fn waits_for_the_earliest_reset_then_seeds_again() {
    let server = MockServer::start().await;
    let soon = epoch_in(30);
    let later = epoch_in(3600);
    mount_quota(&server, "tok-first-111", quota_body(0, 1, soon), Some(1)).await;
    mount_quota(&server, "tok-second-222", quota_body(0, 1, later), Some(1)).await;
    mount_quota(&server, "tok-first-111", quota_body(0, 5, later), None).await;
    mount_quota(&server, "tok-second-222", quota_body(0, 5, later), None).await;
    let transport = Arc::new(Waits::default());
    let auth = build(
        authenticator(&server, json!({})),
        &waits_context(&transport),
    );
    let url = format!("{}/repos", server.uri());
    assert_eq!(sign(&auth, &url).await.unwrap(), "Bearer tok-first-111");
    assert_eq!(sign(&auth, &url).await.unwrap(), "Bearer tok-second-222");
    assert!(transport.waits.lock().unwrap().is_empty());
    // Both spent: wait for the first token's reset (about 30 s), seed again, go on.
    let third = sign(&auth, &url).await.unwrap();
    assert!(third.starts_with("Bearer tok-"), "{third}");
    let waited: Duration = transport.waits.lock().unwrap().iter().sum();
    assert!(
        waited >= Duration::from_secs(28) && waited <= Duration::from_secs(31),
        "{waited:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn the_waits_of_one_exhaustion_are_bounded_by_max_wait_time() {
    let server = MockServer::start().await;
    let soon = epoch_in(20);
    // The endpoint keeps reporting spent pools whose reset is 20 s away: waiting goes on
    // until `max_wait_time` (one minute) is used up, then fails.
    mount_quota(&server, "tok-first-111", quota_body(0, 0, soon), None).await;
    mount_quota(&server, "tok-second-222", quota_body(0, 0, soon), None).await;
    let transport = Arc::new(Waits::default());
    let auth = build(
        authenticator(&server, json!({"max_wait_time": "PT1M"})),
        &waits_context(&transport),
    );
    let error = sign(&auth, &format!("{}/repos", server.uri()))
        .await
        .unwrap_err();
    assert_eq!(error.failure_type, FailureType::TransientError);
    let waits = transport.waits.lock().unwrap().clone();
    let waited: Duration = waits.iter().sum();
    assert!(waits.len() >= 2, "{waits:?}");
    assert!(waited <= Duration::from_secs(60), "{waits:?}");
}

#[tokio::test]
async fn an_unavailable_status_leaves_the_tokens_untracked_and_round_robin() {
    let server = MockServer::start().await;
    Mock::given(path("/rate_limit"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let with_codes = authenticator(
        &server,
        json!({"quota_status_source": {"type": "QuotaStatusSource",
            "url": format!("{}/rate_limit", server.uri()), "unavailable_status_codes": [404]}}),
    );
    let auth = build(with_codes, &context(config()));
    let url = format!("{}/repos", server.uri());
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.push(sign(&auth, &url).await.unwrap());
    }
    assert_eq!(
        sent,
        [
            "Bearer tok-first-111",
            "Bearer tok-second-222",
            "Bearer tok-first-111",
            "Bearer tok-second-222",
            "Bearer tok-first-111"
        ]
    );
    // Without the code listed, the 404 fails.
    let auth = build(authenticator(&server, json!({})), &context(config()));
    let error = sign(&auth, &url).await.unwrap_err();
    assert_eq!(error.failure_type, FailureType::SystemError);
}

#[tokio::test]
async fn a_missing_quota_path_is_a_system_error_naming_the_pool() {
    let server = MockServer::start().await;
    Mock::given(path("/rate_limit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"core": {}})))
        .mount(&server)
        .await;
    let auth = build(authenticator(&server, json!({})), &context(config()));
    let error = sign(&auth, &format!("{}/repos", server.uri()))
        .await
        .unwrap_err();
    assert_eq!(error.failure_type, FailureType::SystemError);
    assert_eq!(
        error.message,
        "Quota status response does not contain the configured remaining path for token quota \"search\"."
    );
}

#[tokio::test]
async fn tokens_are_masked() {
    let server = MockServer::start().await;
    Mock::given(path("/rate_limit"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("bad token tok-first-111 tok-second-222"),
        )
        .mount(&server)
        .await;
    let node = authenticator(&server, json!({"tokens": "{{ config['all'] }}"}));
    let auth = build(
        node,
        &context(json!({"all": " tok-first-111 , tok-second-222,"})),
    );
    let secrets = auth.secrets();
    assert!(secrets.contains(&"tok-first-111".to_owned()));
    assert!(secrets.contains(&"tok-second-222".to_owned()));
    assert!(!format!("{auth:?}").contains("tok-"));
    let error = sign(&auth, &format!("{}/repos", server.uri()))
        .await
        .unwrap_err();
    assert_eq!(error.failure_type, FailureType::ConfigError);
    for text in [&error.message, &error.internal_message] {
        assert!(!text.contains("tok-first-111"), "{text}");
        assert!(!text.contains("tok-second-222"), "{text}");
    }
    assert!(error.internal_message.contains("****"));
}

#[tokio::test]
async fn one_definition_shares_its_counters_across_streams() {
    let server = MockServer::start().await;
    let reset = epoch_in(3600);
    mount_quota(&server, "tok-first-111", quota_body(0, 1, reset), None).await;
    mount_quota(&server, "tok-second-222", quota_body(0, 1, reset), None).await;
    let context = context(config());
    let mut parent = authenticator(&server, json!({}));
    parent["$parameters"] = json!({"name": "parent"});
    let child = authenticator(&server, json!({"$parameters": {"name": "child"}}));
    let parent = build(parent, &context);
    let child = build(child, &context);
    let url = format!("{}/repos", server.uri());
    assert_eq!(sign(&parent, &url).await.unwrap(), "Bearer tok-first-111");
    assert_eq!(sign(&child, &url).await.unwrap(), "Bearer tok-second-222");
    assert!(sign(&parent, &url).await.is_err());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn response_headers_spend_a_pool_and_offer_the_other_token() {
    let server = MockServer::start().await;
    let reset = epoch_in(3600);
    mount_quota(&server, "tok-first-111", quota_body(0, 50, reset), None).await;
    mount_quota(&server, "tok-second-222", quota_body(0, 50, reset), None).await;
    let mut node = authenticator(&server, json!({}));
    node["quotas"][1]["remaining_header"] = json!("X-RateLimit-Remaining");
    node["quotas"][1]["exhaustion_status_codes"] = json!([429]);
    let auth = build(node, &context(config()));
    let url = format!("{}/repos", server.uri());
    let mut request = HttpRequest::new(Method::Get, url.as_str());
    auth.sign(&mut request, &|t| t.to_owned()).await.unwrap();
    assert_eq!(
        request.header("Authorization"),
        Some("Bearer tok-first-111")
    );
    assert!(!auth.has_alternative_token(&request));
    let rejected = HttpResponse {
        status: 429,
        headers: Vec::new(),
        body: Default::default(),
    };
    auth.update_from_response(&request, &rejected);
    assert!(auth.has_alternative_token(&request));
    assert_eq!(sign(&auth, &url).await.unwrap(), "Bearer tok-second-222");
    let low = HttpResponse {
        status: 200,
        headers: vec![("x-ratelimit-remaining".into(), "0".into())],
        body: Default::default(),
    };
    let mut second = HttpRequest::new(Method::Get, url.as_str());
    second.set_header("Authorization", "Bearer tok-second-222");
    auth.update_from_response(&second, &low);
    assert!(sign(&auth, &url).await.is_err());
}

#[tokio::test]
async fn definitions_that_cannot_run_are_refused() {
    let server = MockServer::start().await;
    let error = try_build(
        authenticator(&server, json!({})),
        &context(json!({"first": "", "second": " "})),
    )
    .unwrap_err();
    assert!(error.message.contains("Authentication tokens are missing"));
    let error = try_build(
        authenticator(&server, json!({"max_wait_time": "P1M"})),
        &context(config()),
    )
    .unwrap_err();
    assert!(error.message.contains("fixed-length ISO 8601 duration"));
}
