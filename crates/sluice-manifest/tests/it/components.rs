//! Listing the components of a resolved manifest for `sluice validate`.

use sluice_manifest::{components, resolve_value, yaml};

#[test]
fn lists_components_with_path_and_stream_skipping_data() {
    let text = r#"
version: 6.0.0
definitions:
  unused: {type: CustomRequester, class_name: a.Unused}
schemas:
  users: {type: object, properties: {type: {type: string}}}
metadata: {type: Whatever}
streams:
  - name: users
    schema_loader:
      type: InlineSchemaLoader
      schema: {type: object, properties: {kind: {type: SomeSchemaType}}}
    retriever:
      requester:
        url_base: https://x
        request_body_json: {type: NotAComponent}
        request_parameters:
          fields: {type: QueryProperties, property_list: [a]}
      record_selector:
        extractor: {class_name: source_x.components.Extractor}
check: {stream_names: [users]}
spec:
  connection_specification: {type: object, properties: {api_key: {type: string}}}
"#;
    let resolved = resolve_value(yaml::parse(text).unwrap()).unwrap();
    let uses = components(&resolved);
    let listed: Vec<(String, String)> = uses
        .iter()
        .map(|c| (c.path.to_string(), c.component_type.clone()))
        .collect();
    let expected = [
        ("<root>", "DeclarativeSource"),
        ("streams[0]", "DeclarativeStream"),
        ("streams[0].schema_loader", "InlineSchemaLoader"),
        ("streams[0].retriever", "SimpleRetriever"),
        ("streams[0].retriever.requester", "HttpRequester"),
        (
            "streams[0].retriever.requester.request_parameters.fields",
            "QueryProperties",
        ),
        ("streams[0].retriever.record_selector", "RecordSelector"),
        (
            "streams[0].retriever.record_selector.extractor",
            "CustomRecordExtractor",
        ),
        ("check", "CheckStream"),
        ("spec", "Spec"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    assert_eq!(listed, expected);

    let custom = uses.iter().find(|c| c.class_name.is_some()).unwrap();
    assert_eq!(
        custom.class_name.as_deref(),
        Some("source_x.components.Extractor")
    );
    assert_eq!(custom.stream.as_deref(), Some("users"));
    assert!(
        uses.iter()
            .find(|c| c.component_type == "CheckStream")
            .unwrap()
            .stream
            .is_none()
    );
}

#[test]
fn untyped_custom_component_is_listed_by_class_name() {
    let tree = serde_json::json!({"type": "DeclarativeSource", "streams": [{"type": "DeclarativeStream",
        "name": "s", "transformations": [{"class_name": "x.T"}]}]});
    let uses = components(&tree);
    let custom = uses.last().unwrap();
    assert_eq!(custom.component_type, "x.T");
    assert_eq!(custom.path.to_string(), "streams[0].transformations[0]");
}
