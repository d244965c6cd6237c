//! Default types and `$parameters` propagation (the reference's component transformer).

use serde_json::{Value, json};
use sluice_manifest::propagate::{DEFAULT_MODEL_TYPES, propagate};

#[test]
fn untyped_components_get_their_fields_default_type() {
    let tree = propagate(json!({
        "check": {"stream_names": ["s"]},
        "streams": [{"retriever": {"requester": {}, "record_selector": {"extractor": {"field_path": []}},
            "paginator": {}}}]
    }))
    .unwrap();
    assert_eq!(tree["type"], "DeclarativeSource");
    assert_eq!(tree["check"]["type"], "CheckStream");
    let retriever = &tree["streams"][0]["retriever"];
    assert_eq!(tree["streams"][0]["type"], "DeclarativeStream");
    assert_eq!(retriever["type"], "SimpleRetriever");
    assert_eq!(retriever["requester"]["type"], "HttpRequester");
    assert_eq!(
        retriever["record_selector"]["extractor"]["type"],
        "DpathExtractor"
    );
    assert_eq!(retriever["paginator"]["type"], "NoPagination");
}

#[test]
fn custom_components_get_the_custom_default_type() {
    let tree = propagate(json!({"streams": [{"retriever": {"requester": {"authenticator": {"class_name": "a.B"}}}}]}))
        .unwrap();
    assert_eq!(
        tree["streams"][0]["retriever"]["requester"]["authenticator"]["type"],
        "CustomAuthenticator"
    );
}

#[test]
fn own_parameters_override_the_parents_and_fill_missing_fields() {
    let tree = propagate(json!({"streams": [{
        "$parameters": {"name": "users", "path": "/users", "x": 1},
        "retriever": {"requester": {"$parameters": {"x": 2}, "path": "/own", "url_base": ""}}
    }]}))
    .unwrap();
    let stream = &tree["streams"][0];
    let requester = &stream["retriever"]["requester"];
    assert_eq!(stream["name"], "users");
    assert_eq!(
        requester["path"], "/own",
        "an existing field wins over a parameter"
    );
    assert_eq!(requester["x"], 2);
    assert_eq!(
        requester["$parameters"],
        json!({"name": "users", "path": "/users", "x": 2})
    );
}

#[test]
fn falsy_fields_are_filled_like_missing_ones() {
    let tree =
        propagate(json!({"streams": [{"$parameters": {"name": "n", "primary_key": "id"}, "name": "", "primary_key": []}]}))
            .unwrap();
    assert_eq!(tree["streams"][0]["name"], "n");
    assert_eq!(tree["streams"][0]["primary_key"], "id");
}

#[test]
fn json_schemas_and_plain_objects_are_not_components() {
    let tree = propagate(json!({"streams": [{
        "$parameters": {"name": "s"},
        "schema_loader": {"type": "InlineSchemaLoader", "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}},
        "retriever": {"requester": {"request_body_json": {"a": {"b": 1}}}}
    }]}))
    .unwrap();
    let stream = &tree["streams"][0];
    assert_eq!(
        stream["schema_loader"]["schema"],
        json!({"type": "object", "properties": {"id": {"type": "integer"}}})
    );
    assert_eq!(
        stream["retriever"]["requester"]["request_body_json"],
        json!({"a": {"b": 1}})
    );
}

#[test]
fn parameter_named_like_a_field_is_not_passed_into_that_field() {
    let tree = propagate(json!({"streams": [{
        "$parameters": {"retriever": {"k": 1}, "name": "s"},
        "retriever": {"requester": {}}
    }]}))
    .unwrap();
    let retriever = &tree["streams"][0]["retriever"];
    assert!(retriever.get("retriever").is_none());
    assert_eq!(retriever["$parameters"], json!({"name": "s"}));
}

#[test]
fn the_default_type_table_is_the_references() {
    assert_eq!(DEFAULT_MODEL_TYPES.len(), 37);
    let lookup: std::collections::HashMap<_, _> = DEFAULT_MODEL_TYPES.iter().copied().collect();
    assert_eq!(lookup.len(), 37, "no key twice");
    assert_eq!(lookup["SimpleRetriever.paginator"], "NoPagination");
    assert_eq!(
        lookup["DynamicDeclarativeStream.components_resolver"],
        "ConfigComponentResolver"
    );
}

#[test]
fn non_mapping_parameters_are_an_error() {
    let err = propagate(json!({"streams": [{"$parameters": [1]}]})).unwrap_err();
    assert_eq!(err.path.to_string(), "streams[0].$parameters");
    let err = propagate(Value::Null).unwrap_err();
    assert!(err.path.is_root());
}
