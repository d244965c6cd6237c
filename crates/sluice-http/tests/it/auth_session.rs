//! SessionTokenAuthenticator and LegacySessionTokenAuthenticator against a local server.

use crate::auth_support;

use auth_support::{build, context, pairs, try_build, try_build_with_base};
use serde_json::json;
use sluice_http::auth::InjectInto;
use sluice_protocol::FailureType;
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn session(
    server: &MockServer,
    expiration: Option<&str>,
    request_authentication: serde_json::Value,
) -> serde_json::Value {
    let mut node = json!({
        "type": "SessionTokenAuthenticator",
        "login_requester": {
            "type": "HttpRequester",
            "url_base": server.uri(),
            "path": "/login",
            "http_method": "POST",
            "request_headers": {"X-Client": "sluice"},
            "request_body_json": {"user": "{{ config['user'] }}", "password": "{{ config['password'] }}"}
        },
        "session_token_path": ["auth", "token"],
        "request_authentication": request_authentication
    });
    if let Some(expiration) = expiration {
        node["expiration_duration"] = json!(expiration);
    }
    node
}

#[tokio::test]
async fn logs_in_once_while_the_token_lasts_and_injects_it_as_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login"))
        .and(header("X-Client", "sluice"))
        .and(body_json(json!({"user": "ann", "password": "pw-123"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"auth": {"token": "sess-1"}}))
                .set_delay(Duration::from_millis(50)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ctx = context(json!({"user": "ann", "password": "pw-123"}));
    let auth = build(
        session(&server, Some("PT1H"), json!({"type": "Bearer"})),
        &ctx,
    );
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.injections().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            pairs(&task.await.unwrap().unwrap()),
            [("Authorization".to_owned(), "Bearer sess-1".to_owned())]
        );
    }
    assert!(auth.secrets().contains(&"sess-1".to_owned()));
}

#[tokio::test]
async fn without_an_expiration_every_request_logs_in() {
    let server = MockServer::start().await;
    Mock::given(path("/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"auth": {"token": 42}})))
        .expect(2)
        .mount(&server)
        .await;
    let api_key = json!({
        "type": "ApiKey",
        "api_token": "Token {{ session_token }}",
        "inject_into": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Session"}
    });
    let auth = build(
        session(&server, None, api_key),
        &context(json!({"user": "u", "password": "p"})),
    );
    for _ in 0..2 {
        assert_eq!(
            pairs(&auth.injections().await.unwrap()),
            [("X-Session".to_owned(), "Token 42".to_owned())]
        );
    }
}

#[tokio::test]
async fn the_token_can_go_into_a_query_parameter() {
    let server = MockServer::start().await;
    Mock::given(path("/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"auth": {"token": "q"}})))
        .mount(&server)
        .await;
    let api_key = json!({"type": "ApiKey", "inject_into": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "session"}});
    let auth = build(
        session(&server, Some("P1D"), api_key),
        &context(json!({"user": "u", "password": "p"})),
    );
    let injections = auth.injections().await.unwrap();
    assert_eq!(
        (injections[0].into, injections[0].value.as_str()),
        (InjectInto::RequestParameter, "q")
    );
}

#[tokio::test]
async fn a_refused_login_is_a_config_error_with_secrets_masked() {
    let server = MockServer::start().await;
    Mock::given(path("/login"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad password pw-secret-9"))
        .mount(&server)
        .await;
    let mut node = session(&server, Some("PT1H"), json!({"type": "Bearer"}));
    node["login_requester"]["authenticator"] =
        json!({"type": "BasicHttpAuthenticator", "username": "u", "password": "pw-secret-9"});
    let auth = build(
        node,
        &context(json!({"user": "u", "password": "pw-secret-9"})),
    );
    let error = auth.injections().await.unwrap_err();
    assert_eq!(error.failure_type, FailureType::ConfigError);
    assert!(
        !error.internal_message.contains("pw-secret-9"),
        "{}",
        error.internal_message
    );
    assert!(error.internal_message.contains("401"));
}

#[tokio::test]
async fn a_missing_token_path_and_bad_durations_fail_clearly() {
    let server = MockServer::start().await;
    Mock::given(path("/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"other": 1})))
        .mount(&server)
        .await;
    let ctx = context(json!({"user": "u", "password": "p"}));
    let error = build(
        session(&server, Some("PT1H"), json!({"type": "Bearer"})),
        &ctx,
    )
    .injections()
    .await
    .unwrap_err();
    assert!(
        error.message.contains("Failed to get session token"),
        "{}",
        error.message
    );
    let error = try_build(
        session(&server, Some("7200"), json!({"type": "Bearer"})),
        &ctx,
    )
    .err()
    .unwrap();
    assert_eq!(error.path, "authenticator.expiration_duration");
}

fn legacy() -> serde_json::Value {
    json!({
        "type": "LegacySessionTokenAuthenticator",
        "header": "X-Metabase-Session",
        "login_url": "session",
        "validate_session_url": "user/current",
        "session_token": "{{ config['session_token'] }}",
        "session_token_response_key": "id",
        "username": "{{ config['username'] }}",
        "password": "{{ config['password'] }}"
    })
}

#[tokio::test]
async fn legacy_uses_a_valid_configured_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/user/current"))
        .and(header("X-Metabase-Session", "configured"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let ctx = context(json!({"session_token": "configured", "username": "u", "password": "p"}));
    let base = format!("{}/api/", server.uri());
    let auth = try_build_with_base(legacy(), &ctx, Some(&base)).unwrap();
    for _ in 0..2 {
        assert_eq!(
            pairs(&auth.injections().await.unwrap()),
            [("X-Metabase-Session".to_owned(), "configured".to_owned())]
        );
    }
}

#[tokio::test]
async fn legacy_logs_in_when_the_token_is_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/api/user/current"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/session"))
        .and(body_json(json!({"username": "u", "password": "p4ss"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "fresh-session"})))
        .expect(1)
        .mount(&server)
        .await;
    let ctx = context(json!({"session_token": "stale", "username": "u", "password": "p4ss"}));
    let base = format!("{}/api/", server.uri());
    // Two streams share the login, as the reference's module-level cache does.
    for _ in 0..2 {
        let auth = try_build_with_base(legacy(), &ctx, Some(&base)).unwrap();
        assert_eq!(auth.injections().await.unwrap()[0].value, "fresh-session");
    }
}

#[tokio::test]
async fn legacy_without_credentials_or_url_base_fails() {
    let server = MockServer::start().await;
    Mock::given(query_param("never", "called"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let ctx = context(json!({"session_token": "", "username": "", "password": ""}));
    let auth = try_build_with_base(legacy(), &ctx, Some(&server.uri())).unwrap();
    let error = auth.injections().await.unwrap_err();
    assert!(error.message.starts_with("Invalid credentials"));
    let error = try_build(legacy(), &ctx).err().unwrap();
    assert!(error.message.contains("url_base"));
}
