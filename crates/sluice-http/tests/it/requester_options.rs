//! What the requester puts in a request: URL, query, headers and bodies, merged with the
//! other components' options and encoded as Python's `requests` encodes them.

use serde_json::{Map, Value, json};
use sluice_http::auth::Authenticator;
use sluice_http::{
    HttpRequest, HyperTransport, RequestOptions, RequestVariables, Requester, TransportError,
};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn requester(node: Value) -> Requester {
    let at = ManifestPath::root().key("requester");
    let model = model::HttpRequester::from_node(&node, &at).unwrap();
    let config = Arc::new(json!({"team": "a b", "limit": "50"}));
    Requester::from_model(
        &model,
        &config,
        Arc::new(HyperTransport::default()),
        Authenticator::none(),
        &at,
    )
    .unwrap()
}

async fn build(
    requester: &Requester,
    options: &RequestOptions,
) -> Result<HttpRequest, sluice_http::HttpError> {
    let slice = json!({"id": 7});
    let token = json!({"next_page_token": "p2"});
    requester
        .build(
            RequestVariables {
                stream_slice: &slice,
                next_page_token: Some(&token),
                extra: None,
            },
            options,
        )
        .await
}

fn body_text(request: &HttpRequest) -> String {
    String::from_utf8(request.body.clone().unwrap_or_default().to_vec()).unwrap()
}

#[tokio::test]
async fn get_with_interpolated_query_and_headers() {
    let r = requester(
        json!({"type": "HttpRequester", "url_base": "https://api.x.com/v1/", "path": "/teams/{{ stream_slice.id }}",
        "request_parameters": {"team": "{{ config.team }}", "limit": "{{ config.limit }}", "page": "{{ next_page_token.next_page_token }}", "skip": "{{ config.nothing }}"},
        "request_headers": {"X-Limit": "{{ config.limit }}"}}),
    );
    let options = RequestOptions {
        query: vec![("cursor".into(), "c~1*".into())],
        ..Default::default()
    };
    let request = build(&r, &options).await.unwrap();
    assert_eq!(
        request.url,
        "https://api.x.com/v1/teams/7?team=a+b&limit=50&page=p2&cursor=c~1%2A"
    );
    assert_eq!(request.header("X-Limit"), Some("50"));
    assert!(request.body.is_none());
}

#[tokio::test]
async fn a_parameter_set_twice_is_refused() {
    let r = requester(
        json!({"type": "HttpRequester", "url": "https://api.x.com/items", "request_parameters": {"page": "1"}}),
    );
    let options = RequestOptions {
        query: vec![("page".into(), "2".into())],
        ..Default::default()
    };
    let error = build(&r, &options).await.unwrap_err();
    assert!(
        error
            .message
            .contains("duplicate keys detected at key path: page"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn post_json_body_merges_nested_options() {
    let r = requester(
        json!({"type": "HttpRequester", "url": "https://api.x.com/search", "http_method": "POST",
        "request_body_json": {"filter": {"team": "{{ config.team }}"}, "size": 10}}),
    );
    let mut body_json = Map::new();
    body_json.insert("filter".into(), json!({"after": "2024-01-01"}));
    let options = RequestOptions {
        body_json,
        ..Default::default()
    };
    let request = build(&r, &options).await.unwrap();
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(
        body_text(&request),
        r#"{"filter": {"team": "a b", "after": "2024-01-01"}, "size": 10}"#
    );
}

#[tokio::test]
async fn form_and_plain_text_bodies() {
    let form = requester(
        json!({"type": "HttpRequester", "url": "https://api.x.com/f", "http_method": "POST",
        "request_body": {"type": "RequestBodyUrlEncodedForm", "value": {"team": "{{ config.team }}", "n": "1"}}}),
    );
    let request = build(&form, &RequestOptions::default()).await.unwrap();
    assert_eq!(
        request.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(body_text(&request), "team=a+b&n=1");

    let text = requester(
        json!({"type": "HttpRequester", "url": "https://api.x.com/t", "http_method": "POST",
        "request_body": {"type": "RequestBodyPlainText", "value": "team={{ config.team }}"}}),
    );
    let request = build(&text, &RequestOptions::default()).await.unwrap();
    assert_eq!(body_text(&request), "team=a b");
    assert_eq!(request.header("Content-Type"), None);
}

#[tokio::test]
async fn graphql_and_json_object_bodies() {
    let gql = requester(
        json!({"type": "HttpRequester", "url": "https://api.x.com/graphql", "http_method": "POST",
        "request_body": {"type": "RequestBodyGraphQL", "value": {"query": "{ team(id: {{ stream_slice.id }}) { name } }"}}}),
    );
    let request = build(&gql, &RequestOptions::default()).await.unwrap();
    assert_eq!(
        body_text(&request),
        r#"{"query": "{ team(id: 7) { name } }"}"#
    );

    let object = requester(
        json!({"type": "HttpRequester", "url": "https://api.x.com/o", "http_method": "POST",
        "request_body": {"type": "RequestBodyJsonObject", "value": {"ids": [1, 2], "limit": "{{ config.limit }}"}}}),
    );
    let request = build(&object, &RequestOptions::default()).await.unwrap();
    assert_eq!(body_text(&request), r#"{"ids": [1, 2], "limit": 50}"#);
}

#[tokio::test]
async fn json_and_data_together_are_refused_when_built() {
    let at = ManifestPath::root().key("requester");
    let node = json!({"type": "HttpRequester", "url": "https://x", "request_body_json": {"a": 1}, "request_body_data": {"b": "2"}});
    let model = model::HttpRequester::from_node(&node, &at).unwrap();
    let error = Requester::from_model(
        &model,
        &Arc::new(json!({})),
        Arc::new(HyperTransport::default()),
        Authenticator::none(),
        &at,
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with("manifest at requester: "),
        "{error}"
    );
}

#[tokio::test]
async fn the_request_reaches_the_server_as_built() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/items"))
        .and(query_param("team", "a b"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("q=x"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let r = requester(
        json!({"type": "HttpRequester", "url_base": format!("{}/v1", server.uri()), "path": "items", "http_method": "POST",
        "request_parameters": {"team": "{{ config.team }}"}, "request_body_data": {"q": "x"}}),
    );
    let request = build(&r, &RequestOptions::default()).await.unwrap();
    let response = r.send(&request).await.unwrap().unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn read_timeout_from_the_manifest_applies() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let r = requester(
        json!({"type": "HttpRequester", "url": server.uri(), "read_timeout_in_seconds": 0.2}),
    );
    let request = build(&r, &RequestOptions::default()).await.unwrap();
    let started = std::time::Instant::now();
    let outcome = r.transport.send(&request).await;
    assert!(
        matches!(outcome, Err(TransportError::Timeout { .. })),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn redirects_are_followed_as_requests_follows_them() {
    let server = MockServer::start().await;
    // A moved endpoint: POST gets a 302 (requests turns it into a GET without body), then a
    // 307 keeps the method.
    Mock::given(method("POST"))
        .and(path("/old"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/moved?x=1"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/moved"))
        .and(query_param("x", "1"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/final"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/final"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [1, 2]})))
        .expect(1)
        .mount(&server)
        .await;
    let r = requester(
        json!({"type": "HttpRequester", "url_base": server.uri(), "path": "old",
        "http_method": "POST", "request_body_json": {"q": "x"}}),
    );
    let request = build(&r, &RequestOptions::default()).await.unwrap();
    let response = r.send(&request).await.unwrap().unwrap();
    assert_eq!(
        (response.status, &response.body[..]),
        (200, &br#"{"data":[1,2]}"#[..])
    );
}

#[tokio::test]
async fn endless_redirects_fail_after_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/loop"))
        .respond_with(ResponseTemplate::new(301).insert_header("Location", "/loop"))
        .mount(&server)
        .await;
    let r = requester(
        json!({"type": "HttpRequester", "url_base": server.uri(), "path": "loop",
        "error_handler": {"type": "DefaultErrorHandler", "max_retries": 0}}),
    );
    let request = build(&r, &RequestOptions::default()).await.unwrap();
    let error = r.send(&request).await.unwrap_err();
    assert!(
        error.to_string().contains("Exceeded 30 redirects"),
        "{error}"
    );
    // The original request and 30 redirects.
    assert_eq!(server.received_requests().await.unwrap().len(), 31);
}
