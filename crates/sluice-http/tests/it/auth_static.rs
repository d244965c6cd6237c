//! The authenticators that need no server: API key, bearer, basic, JWT, selective, no auth.

use crate::auth_support;

use auth_support::{build, context, pairs, try_build};
use serde_json::json;
use sluice_http::auth::InjectInto;

#[tokio::test]
async fn api_key_goes_where_inject_into_says() {
    let ctx = context(json!({"key": "k-123", "name": "X-Api-Key"}));
    let cases = [
        (
            json!({"type": "RequestOption", "inject_into": "header", "field_name": "{{ config['name'] }}"}),
            InjectInto::Header,
            "X-Api-Key",
        ),
        (
            json!({"type": "RequestOption", "inject_into": "request_parameter", "field_name": "api_key"}),
            InjectInto::RequestParameter,
            "api_key",
        ),
        (
            json!({"type": "RequestOption", "inject_into": "body_data", "field_name": "key"}),
            InjectInto::BodyData,
            "key",
        ),
        (
            json!({"type": "RequestOption", "inject_into": "body_json", "field_path": ["auth", "key"]}),
            InjectInto::BodyJson,
            "key",
        ),
    ];
    for (option, into, name) in cases {
        let auth = build(
            json!({"type": "ApiKeyAuthenticator", "api_token": "{{ config['key'] }}", "inject_into": option}),
            &ctx,
        );
        let injection = &auth.injections().await.unwrap()[0];
        assert_eq!(
            (
                injection.into,
                injection.name.as_str(),
                injection.value.as_str()
            ),
            (into, name, "k-123")
        );
        if into == InjectInto::BodyJson {
            assert_eq!(injection.parents, ["auth"]);
        }
        assert_eq!(auth.secrets(), ["k-123"]);
    }
    let deprecated = build(
        json!({"type": "ApiKeyAuthenticator", "api_token": "Token {{ config['key'] }}", "header": "Authorization"}),
        &ctx,
    );
    assert_eq!(
        pairs(&deprecated.injections().await.unwrap()),
        [("Authorization".to_owned(), "Token k-123".to_owned())]
    );
}

#[tokio::test]
async fn api_key_manifest_errors() {
    let ctx = context(json!({}));
    let both = try_build(
        json!({"type": "ApiKeyAuthenticator", "api_token": "k", "header": "h", "inject_into": {"type": "RequestOption", "inject_into": "header", "field_name": "h"}}),
        &ctx,
    );
    assert!(both.err().unwrap().message.contains("cannot be set both"));
    let neither = try_build(
        json!({"type": "ApiKeyAuthenticator", "api_token": "k"}),
        &ctx,
    );
    assert!(
        neither
            .err()
            .unwrap()
            .message
            .contains("Expected either inject_into or header")
    );
    let nested_header = try_build(
        json!({"type": "ApiKeyAuthenticator", "api_token": "k", "inject_into": {"type": "RequestOption", "inject_into": "header", "field_path": ["a", "b"]}}),
        &ctx,
    );
    assert_eq!(
        nested_header.err().unwrap().path,
        "authenticator.inject_into.field_path"
    );
}

#[tokio::test]
async fn bearer_and_basic_render_from_config() {
    let ctx = context(json!({"token": "t0k", "user": "ann", "password": "s3cret"}));
    let bearer = build(
        json!({"type": "BearerAuthenticator", "api_token": "{{ config['token'] }}"}),
        &ctx,
    );
    assert_eq!(bearer.injections().await.unwrap()[0].value, "Bearer t0k");
    let basic = build(
        json!({"type": "BasicHttpAuthenticator", "username": "{{ config['user'] }}", "password": "{{ config['password'] }}"}),
        &ctx,
    );
    assert_eq!(
        basic.injections().await.unwrap()[0].value,
        "Basic YW5uOnMzY3JldA=="
    );
    let no_password = build(
        json!({"type": "BasicHttpAuthenticator", "username": "ann"}),
        &ctx,
    );
    assert_eq!(
        no_password.injections().await.unwrap()[0].value,
        "Basic YW5uOg=="
    );
    assert!(
        build(json!({"type": "NoAuth"}), &ctx)
            .injections()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn jwt_is_signed_per_request_and_injected() {
    let ctx = context(json!({"secret": "a-shared-secret-of-some-length"}));
    let auth = build(
        json!({
            "type": "JwtAuthenticator", "secret_key": "{{ config['secret'] }}", "algorithm": "HS256",
            "header_prefix": "Bearer",
            "request_option": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Jwt"}
        }),
        &ctx,
    );
    let injection = auth.injections().await.unwrap().remove(0);
    assert_eq!(injection.name, "X-Jwt");
    let token = injection.value.strip_prefix("Bearer ").unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(b"a-shared-secret-of-some-length");
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &key,
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    )
    .unwrap();
    assert_eq!(
        claims.claims["exp"].as_i64().unwrap() - claims.claims["iat"].as_i64().unwrap(),
        1200
    );
    assert!(
        auth.secrets()
            .iter()
            .any(|s| s == token || s == &injection.value)
    );
    assert!(auth.is_dynamic());
}

#[tokio::test]
async fn selective_picks_by_config_value() {
    let selective = json!({
        "type": "SelectiveAuthenticator",
        "authenticator_selection_path": ["credentials", "auth_type"],
        "authenticators": {
            "token": {"type": "BearerAuthenticator", "api_token": "{{ config['credentials']['token'] }}"},
            "key": {"type": "ApiKeyAuthenticator", "api_token": "{{ config['credentials']['key'] }}", "header": "X-Key"}
        }
    });
    let ctx = context(json!({"credentials": {"auth_type": "key", "key": "kk-1"}}));
    let auth = build(selective.clone(), &ctx);
    assert_eq!(
        pairs(&auth.injections().await.unwrap()),
        [("X-Key".to_owned(), "kk-1".to_owned())]
    );

    let unknown = try_build(
        selective.clone(),
        &context(json!({"credentials": {"auth_type": "oauth"}})),
    );
    assert!(
        unknown
            .err()
            .unwrap()
            .message
            .contains("The authenticator `oauth` is not found.")
    );
    let missing = try_build(selective, &context(json!({"credentials": {}})));
    let error = missing.err().unwrap();
    assert_eq!(error.path, "authenticator.authenticator_selection_path");
}

/// Zendesk Support: the Basic candidate's username (`email + '/token'`) does not render with an
/// OAuth user's config, which the reference never renders, as that candidate is not used.
#[tokio::test]
async fn selective_ignores_candidates_not_selected_whose_templates_need_other_config() {
    let selective = json!({
        "type": "SelectiveAuthenticator",
        "authenticator_selection_path": ["credentials", "credentials"],
        "authenticators": {
            "oauth2.0": {"type": "BearerAuthenticator", "api_token": "{{ config['credentials']['access_token'] }}"},
            "api_token": {"type": "BasicHttpAuthenticator",
                          "username": "{{ config['credentials']['email'] + '/token' }}",
                          "password": "{{ config['credentials']['api_token'] }}"}
        }
    });
    let oauth =
        context(json!({"credentials": {"credentials": "oauth2.0", "access_token": "at-1"}}));
    let auth = build(selective.clone(), &oauth);
    assert_eq!(
        pairs(&auth.injections().await.unwrap()),
        [("Authorization".to_owned(), "Bearer at-1".to_owned())]
    );
    // The selected candidate's templates must render.
    let token_user =
        context(json!({"credentials": {"credentials": "api_token", "api_token": "t"}}));
    let error = try_build(selective, &token_user).err().unwrap();
    assert_eq!(
        error.path,
        "authenticator.authenticators.api_token.username"
    );
}

#[tokio::test]
async fn python_components_are_refused_with_their_class() {
    let error = try_build(
        json!({"type": "CustomAuthenticator", "class_name": "source_x.components.Auth"}),
        &context(json!({})),
    )
    .err()
    .unwrap();
    assert!(
        error.to_string().contains("source_x.components.Auth"),
        "{error}"
    );
    assert!(error.to_string().starts_with("manifest at authenticator:"));
}
