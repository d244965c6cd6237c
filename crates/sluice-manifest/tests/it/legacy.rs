//! 0.1.0-era manifests resolve to the same tree as their modern spelling.

use serde_json::{Value, json};
use std::path::Path;

fn resolve(yaml: &str) -> Value {
    sluice_manifest::resolve_value(sluice_manifest::yaml::parse(yaml).unwrap()).unwrap()
}

fn resolve_data(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    resolve(&std::fs::read_to_string(path).unwrap())
}

/// The parts of the tree the model is built from (definitions and version differ by era).
fn runnable(mut tree: Value) -> Value {
    let root = tree.as_object_mut().unwrap();
    root.shift_remove("definitions");
    root.shift_remove("version");
    tree
}

#[test]
fn tutorial_of_both_eras_resolves_to_the_same_tree() {
    let old = runnable(resolve_data("tutorial_0.1.0.yaml"));
    let new = runnable(resolve_data("tutorial_modern.yaml"));
    assert_eq!(old, new);
}

#[test]
fn tutorial_0_1_0_resolves_to_the_references_tree_of_the_modern_spelling() {
    let reference_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tutorial_modern.resolved.json"),
    )
    .unwrap();
    let reference: Value = serde_json::from_str(&reference_text).unwrap();
    assert_eq!(
        runnable(resolve_data("tutorial_0.1.0.yaml")),
        runnable(reference)
    );
}

#[test]
fn tutorial_moves_the_datetime_slicer_to_the_stream() {
    let tree = resolve_data("tutorial_0.1.0.yaml");
    let rates = &tree["streams"][0];
    assert_eq!(rates["name"], "rates");
    assert_eq!(rates["primary_key"], "date");
    assert_eq!(rates["incremental_sync"]["type"], "DatetimeBasedCursor");
    assert_eq!(rates["incremental_sync"]["step"], "P1D");
    assert_eq!(rates["incremental_sync"]["cursor_granularity"], "P1D");
    assert!(rates["retriever"].get("stream_slicer").is_none());
    assert_eq!(
        rates["retriever"]["requester"]["request_parameters"],
        json!({"base": "{{ config['base'] }}"})
    );
    assert_eq!(
        rates["retriever"]["requester"]["url_base"],
        "https://api.apilayer.com"
    );
    assert_eq!(tree["check"]["type"], "CheckStream");
}

#[test]
fn options_become_parameters_and_merge_with_them() {
    let tree = resolve(
        "streams:\n  - $options: {name: a, x: 1}\n    $parameters: {x: 2}\n    retriever: {requester: {url_base: u}}\n",
    );
    let stream = &tree["streams"][0];
    assert_eq!(stream["$parameters"], json!({"name": "a", "x": 2}));
    assert_eq!(stream["name"], "a");
    assert!(stream.get("$options").is_none());
}

#[test]
fn untyped_slicers_get_the_type_their_fields_imply() {
    let tree = resolve(
        r#"
streams:
  - name: s
    stream_cursor_field: [updated]
    retriever:
      requester: {url_base: u}
      stream_slicer:
        stream_slicers:
          - start_datetime: "2021-01-01"
            end_datetime: "2021-02-01"
            datetime_format: "%Y-%m-%d"
            step: "1w"
            lookback_window: "3d"
            stream_state_field_start: since
          - slice_values: [a, b]
            cursor_field: c
          - {}
"#,
    );
    let stream = &tree["streams"][0];
    let cursor = &stream["incremental_sync"];
    assert_eq!(cursor["type"], "DatetimeBasedCursor");
    assert_eq!(cursor["step"], "P1W");
    assert_eq!(cursor["lookback_window"], "P3D");
    assert_eq!(cursor["partition_field_start"], "since");
    assert_eq!(cursor["cursor_field"], "updated");
    assert!(stream.get("stream_cursor_field").is_none());
    let router = &stream["retriever"]["partition_router"];
    assert_eq!(router["type"], "ListPartitionRouter");
    assert_eq!(router["values"], json!(["a", "b"]));
}

#[test]
fn single_slice_disappears() {
    let tree = resolve(
        "streams:\n  - retriever: {requester: {url_base: u}, stream_slicer: {type: SingleSlice}}\n",
    );
    let stream = &tree["streams"][0];
    assert!(stream["retriever"].get("stream_slicer").is_none());
    assert!(stream["retriever"].get("partition_router").is_none());
    assert!(stream.get("incremental_sync").is_none());
}

#[test]
fn token_authenticator_becomes_bearer_or_api_key() {
    let tree = resolve(
        "a: {type: TokenAuthenticator, token: t}\nb: {type: TokenAuthenticator, token: t, auth_method: Token, auth_header: X-Auth}\n",
    );
    assert_eq!(
        tree["a"],
        json!({"type": "BearerAuthenticator", "api_token": "t"})
    );
    assert_eq!(
        tree["b"],
        json!({"type": "ApiKeyAuthenticator", "header": "X-Auth", "api_token": "Token t"})
    );
}

#[test]
fn two_datetime_slicers_are_an_error_naming_the_slicer() {
    let err = sluice_manifest::resolve_value(json!({"streams": [{"retriever": {"stream_slicer": {
        "type": "CartesianProductStreamSlicer",
        "stream_slicers": [{"type": "DatetimeStreamSlicer"}, {"type": "DatetimeStreamSlicer"}]}}}]}))
    .unwrap_err();
    assert_eq!(err.path.to_string(), "streams[0].retriever.stream_slicer");
}

#[test]
fn modern_manifest_passes_through_unchanged() {
    let tree = json!({
        "version": "6.0.0",
        "streams": [{"type": "DeclarativeStream", "name": "s",
            "retriever": {"type": "SimpleRetriever",
                "requester": {"type": "HttpRequester", "url_base": "u", "request_parameters": {"a": "b"}},
                "record_selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": []}},
                "paginator": {"type": "DefaultPaginator", "page_token_option": {"type": "RequestPath"},
                    "pagination_strategy": {"type": "PageIncrement", "page_size": 10}}},
            "incremental_sync": {"type": "DatetimeBasedCursor", "cursor_field": "c", "datetime_format": "%s",
                "start_datetime": "0", "step": "P1D", "cursor_granularity": "PT1S"}}]
    });
    assert_eq!(
        sluice_manifest::legacy::upgrade(tree.clone()).unwrap(),
        tree
    );
}

#[test]
fn tutorial_of_both_eras_builds_the_same_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let old = sluice_manifest::load_file(&dir.join("tutorial_0.1.0.yaml")).unwrap();
    let new = sluice_manifest::load_file(&dir.join("tutorial_modern.yaml")).unwrap();
    assert_eq!(old.model.streams, new.model.streams);
    assert_eq!(old.model.check, new.model.check);
}
