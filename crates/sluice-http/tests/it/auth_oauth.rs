//! OAuthAuthenticator against a local token endpoint: the refresh request, expiry, refreshing
//! once under concurrency, refresh-token rotation and failures.

use crate::auth_support;

use auth_support::{build, context, form, pairs, try_build};
use serde_json::{Value, json};
use sluice_http::{HttpRequest, Method};
use sluice_protocol::FailureType;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn token_response(access: &str, expires_in: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"access_token": access, "expires_in": expires_in}))
}

#[tokio::test]
async fn refresh_token_grant_sends_the_reference_request_and_caches_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("X-Extra", "yes"))
        .respond_with(token_response("access-1", json!(3600)))
        .expect(1)
        .mount(&server)
        .await;
    let ctx =
        context(json!({"client_id": "cid", "client_secret": "csecret", "refresh_token": "rtoken"}));
    let auth = build(
        json!({
            "type": "OAuthAuthenticator",
            "token_refresh_endpoint": format!("{}/oauth/token", server.uri()),
            "client_id": "{{ config['client_id'] }}",
            "client_secret": "{{ config['client_secret'] }}",
            "refresh_token": "{{ config['refresh_token'] }}",
            "scopes": ["read", "write"],
            "refresh_request_body": {"audience": "api", "grant_type": "ignored"},
            "refresh_request_headers": {"X-Extra": "yes"}
        }),
        &ctx,
    );
    for _ in 0..3 {
        let injections = auth.injections().await.unwrap();
        assert_eq!(
            pairs(&injections),
            [("Authorization".to_owned(), "Bearer access-1".to_owned())]
        );
    }
    let requests = server.received_requests().await.unwrap();
    let refresh = &requests[0];
    assert_eq!(
        refresh.headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let expected: Vec<(String, String)> = [
        ("grant_type", "refresh_token"),
        ("client_id", "cid"),
        ("client_secret", "csecret"),
        ("refresh_token", "rtoken"),
        ("scopes", "read"),
        ("scopes", "write"),
        ("audience", "api"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(form(&refresh.body), expected);
    let secrets = auth.secrets();
    for secret in ["access-1", "csecret", "rtoken"] {
        assert!(
            secrets.contains(&secret.to_owned()),
            "{secret} is not masked"
        );
    }
}

#[tokio::test]
async fn client_credentials_with_custom_names_and_credentials_in_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"token": "tok", "ttl": "60"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let auth = build(
        json!({
            "type": "OAuthAuthenticator",
            "token_refresh_endpoint": format!("{}/token", server.uri()),
            "client_id": "cid", "client_secret": "sec",
            "grant_type": "client_credentials",
            "access_token_name": "token", "expires_in_name": "ttl",
            "refresh_request_headers": {"Authorization": "Basic abc"}
        }),
        &context(json!({})),
    );
    assert_eq!(auth.injections().await.unwrap()[0].value, "Bearer tok");
    let request = &server.received_requests().await.unwrap()[0];
    // Credentials in the Authorization header are not repeated in the body, and no refresh token
    // is sent for this grant.
    assert_eq!(
        form(&request.body),
        [("grant_type".to_owned(), "client_credentials".to_owned())]
    );
    assert_eq!(request.headers.get("authorization").unwrap(), "Basic abc");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response("short-lived", json!(0)))
        .expect(2)
        .mount(&server)
        .await;
    let auth = build(
        json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": server.uri(), "client_id": "c", "client_secret": "s", "refresh_token": "r"}),
        &context(json!({})),
    );
    auth.injections().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    auth.injections().await.unwrap();
}

#[tokio::test]
async fn expiry_given_as_a_date_with_token_expiry_date_format() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response("dated", json!("2999-01-01T00:00:00Z")))
        .expect(1)
        .mount(&server)
        .await;
    let auth = build(
        json!({
            "type": "OAuthAuthenticator", "token_refresh_endpoint": server.uri(),
            "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "token_expiry_date_format": "%Y-%m-%dT%H:%M:%SZ"
        }),
        &context(json!({})),
    );
    auth.injections().await.unwrap();
    auth.injections().await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_refresh_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response("shared", json!(3600)).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;
    let auth = build(
        json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": server.uri(), "client_id": "c", "client_secret": "s", "refresh_token": "r"}),
        &context(json!({})),
    );
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.injections().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap()[0].value, "Bearer shared");
    }
}

fn rotating(server: &MockServer) -> Value {
    json!({
        "type": "OAuthAuthenticator",
        "token_refresh_endpoint": format!("{}/token", server.uri()),
        "client_id": "{{ config['credentials']['client_id'] }}",
        "client_secret": "{{ config['credentials']['client_secret'] }}",
        "refresh_token": "{{ config['credentials']['refresh_token'] }}",
        "refresh_token_updater": {}
    })
}

#[tokio::test]
async fn rotation_updates_the_config_once_for_all_streams() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=old-refresh"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 3600}))
                .set_delay(Duration::from_millis(100)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ctx = context(json!({
        "start": "2024-01-01",
        "credentials": {"client_id": "cid", "client_secret": "csec", "refresh_token": "old-refresh"}
    }));
    // Two streams, each with its own authenticator over the same shared config.
    let first = build(rotating(&server), &ctx);
    let second = build(rotating(&server), &ctx);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let auth = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { auth.injections().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap()[0].value, "Bearer new-access");
    }
    let updates = ctx.take_config_updates();
    assert_eq!(updates.len(), 1, "exactly one CONTROL config update");
    let credentials = &updates[0]["credentials"];
    assert_eq!(credentials["refresh_token"], "new-refresh");
    assert_eq!(credentials["access_token"], "new-access");
    assert_eq!(credentials["client_id"], "cid");
    assert_eq!(updates[0]["start"], "2024-01-01");
    let expiry = credentials["token_expiry_date"].as_str().unwrap();
    assert!(
        expiry.ends_with("+00:00") && expiry.contains('T'),
        "{expiry}"
    );
    assert!(first.secrets().contains(&"new-refresh".to_owned()));
    assert!(ctx.take_config_updates().is_empty());
    assert_eq!(ctx.current_config().await, updates[0]);
}

#[tokio::test]
async fn rotation_sends_the_rotated_refresh_token_next_time() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=r1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"access_token": "a1", "refresh_token": "r2", "expires_in": 0}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=r2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "a2", "expires_in": 3600})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ctx = context(
        json!({"credentials": {"client_id": "c", "client_secret": "s", "refresh_token": "r1"}}),
    );
    let auth = build(rotating(&server), &ctx);
    assert_eq!(auth.injections().await.unwrap()[0].value, "Bearer a1");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(auth.injections().await.unwrap()[0].value, "Bearer a2");
    let updates = ctx.take_config_updates();
    assert_eq!(updates.len(), 2);
    // A response without a refresh token keeps the one the config has.
    assert_eq!(updates[1]["credentials"]["refresh_token"], "r2");
}

/// As the reference: a rejection its `refresh_token_error_*` rules recognise (by default 400
/// with `invalid_grant`) is a config error; any other 4xx is the HTTP error, a system error.
#[tokio::test]
async fn token_endpoint_rejections() {
    let server = MockServer::start().await;
    Mock::given(path("/unauthorized"))
        .respond_with(ResponseTemplate::new(401).set_body_string("nope very-secret-value"))
        .mount(&server)
        .await;
    Mock::given(path("/invalid"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "AADSTS50173: expired"}),
        ))
        .mount(&server)
        .await;
    let ctx = context(json!({"secret": "very-secret-value"}));
    let cases = [
        (
            "unauthorized",
            FailureType::SystemError,
            "401 Client Error: Unauthorized for url",
        ),
        (
            "invalid",
            FailureType::ConfigError,
            "Provider error: invalid_grant: AADSTS50173",
        ),
    ];
    for (endpoint, failure_type, expected) in cases {
        let auth = build(
            json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": format!("{}/{endpoint}", server.uri()), "client_id": "c", "client_secret": "{{ config['secret'] }}", "refresh_token": "r"}),
            &ctx,
        );
        let error = auth.injections().await.unwrap_err();
        assert_eq!(error.failure_type, failure_type, "{endpoint}");
        assert!(error.message.contains(expected), "{}", error.message);
        assert!(
            !error.internal_message.contains("very-secret-value"),
            "{}",
            error.internal_message
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_transient() {
    let server = MockServer::start().await;
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/flaky"))
        .respond_with(token_response("after-retries", json!(3600)))
        .mount(&server)
        .await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let ctx = context(json!({}));
    let oauth = |endpoint: &str| json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": format!("{}/{endpoint}", server.uri()), "client_id": "c", "client_secret": "s", "refresh_token": "r"});
    assert_eq!(
        build(oauth("flaky"), &ctx).injections().await.unwrap()[0].value,
        "Bearer after-retries"
    );
    let error = build(oauth("down"), &ctx).injections().await.unwrap_err();
    assert_eq!(error.failure_type, FailureType::TransientError);
}

#[tokio::test]
async fn malformed_token_responses_fail_clearly() {
    let server = MockServer::start().await;
    Mock::given(path("/no-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token_type": "bearer"})))
        .mount(&server)
        .await;
    Mock::given(path("/not-json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&server)
        .await;
    let ctx = context(json!({}));
    let oauth = |endpoint: &str| json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": format!("{}/{endpoint}", server.uri()), "client_id": "c", "client_secret": "s", "refresh_token": "r"});
    let error = build(oauth("no-token"), &ctx)
        .injections()
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        "Token refresh API response was missing access token access_token"
    );
    let error = build(oauth("not-json"), &ctx)
        .injections()
        .await
        .unwrap_err();
    assert_eq!(
        (error.failure_type, error.message.as_str()),
        (
            FailureType::SystemError,
            "OAuth access token refresh request failed."
        )
    );
}

#[tokio::test]
async fn a_given_access_token_is_used_without_refreshing() {
    let ctx = context(json!({"token": "given-token"}));
    let auth = build(
        json!({"type": "OAuthAuthenticator", "access_token_value": "{{ config['token'] }}", "client_id": "c", "client_secret": "s", "grant_type": "client_credentials"}),
        &ctx,
    );
    assert_eq!(
        auth.injections().await.unwrap()[0].value,
        "Bearer given-token"
    );
    assert!(auth.secrets().contains(&"given-token".to_owned()));
}

#[tokio::test]
async fn a_rejected_request_forces_one_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response("first", json!(3600)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_response("second", json!(3600)))
        .mount(&server)
        .await;
    let auth = build(
        json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": server.uri(), "client_id": "c", "client_secret": "s", "refresh_token": "r"}),
        &context(json!({})),
    );
    let sent = HttpRequest::new(Method::Get, "https://api.example.com/x")
        .with_header("Authorization", "Bearer first");
    assert_eq!(auth.injections().await.unwrap()[0].value, "Bearer first");
    assert!(auth.refresh_after_rejection(&sent).await.unwrap());
    assert_eq!(auth.injections().await.unwrap()[0].value, "Bearer second");
    // The same stale request again: the token already changed, so no third refresh.
    auth.refresh_after_rejection(&sent).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn manifest_errors_name_the_path() {
    let ctx = context(json!({}));
    let error = try_build(json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": "https://x", "client_id": "c", "client_secret": "s"}), &ctx).err().unwrap();
    assert!(
        error.message.contains("A 'refresh_token' is required"),
        "{error}"
    );
    assert_eq!(error.path, "authenticator");
    let error = try_build(json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": "https://x", "refresh_token": "r"}), &ctx).err().unwrap();
    assert!(
        error
            .message
            .contains("Both 'client_id' and 'client_secret' are required")
    );
    let error = try_build(
        json!({"type": "OAuthAuthenticator", "token_refresh_endpoint": "https://x", "client_id": "c", "client_secret": "s", "refresh_token": "r", "token_expiry_date": "{{ config['missing'] }}"}),
        &ctx,
    )
    .err()
    .unwrap();
    assert_eq!(error.path, "authenticator.token_expiry_date");
}
