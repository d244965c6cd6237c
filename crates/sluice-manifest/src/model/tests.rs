use super::*;
use crate::ManifestErrorKind;
use serde_json::json;

fn stream(name: &str) -> Value {
    json!({
        "type": "DeclarativeStream",
        "name": name,
        "primary_key": "id",
        "retriever": {
            "type": "SimpleRetriever",
            "requester": {"type": "HttpRequester", "url_base": "https://api.example.com", "path": "/x"},
            "record_selector": {
                "type": "RecordSelector",
                "extractor": {"type": "DpathExtractor", "field_path": ["data"]}
            }
        }
    })
}

fn manifest(streams: Vec<Value>) -> Value {
    json!({
        "type": "DeclarativeSource",
        "version": "6.0.0",
        "check": {"type": "CheckStream", "stream_names": ["a"]},
        "streams": streams
    })
}

fn three_streams() -> Value {
    manifest(vec![stream("a"), stream("b"), stream("c")])
}

fn load(tree: &Value) -> Result<DeclarativeSource, ManifestError> {
    DeclarativeSource::from_resolved(tree)
}

fn retriever_of(model: &DeclarativeSource, index: usize) -> &SimpleRetriever {
    let Some(StreamEntry::DeclarativeStream(stream)) =
        model.streams.as_ref().and_then(|s| s.get(index))
    else {
        panic!("stream {index} is not a DeclarativeStream")
    };
    match &stream.retriever {
        Retriever::SimpleRetriever(retriever) => retriever,
        other => panic!("unexpected retriever {other:?}"),
    }
}

#[test]
fn reads_a_minimal_manifest() {
    let model = load(&three_streams()).unwrap();
    let retriever = retriever_of(&model, 2);
    let RecordExtractor::DpathExtractor(extractor) = &retriever.record_selector.extractor else {
        panic!("not a DpathExtractor")
    };
    assert_eq!(extractor.field_path, ["data"]);
    assert!(
        retriever.paginator.is_none(),
        "absent optional fields stay None"
    );
}

#[test]
fn missing_required_field_names_the_path_and_suggests_the_misspelt_key() {
    let mut tree = three_streams();
    let retriever = &mut tree["streams"][2]["retriever"];
    let selector = retriever
        .as_object_mut()
        .unwrap()
        .remove("record_selector")
        .unwrap();
    retriever["record_selecter"] = selector;
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::MissingField);
    assert_eq!(error.path.to_string(), "streams[2].retriever");
    assert_eq!(error.message, "missing required field 'record_selector'");
    assert_eq!(
        error.suggestion.as_deref(),
        Some("did you mean 'record_selector' instead of 'record_selecter'?")
    );
    assert_eq!(
        error.to_string(),
        "manifest at streams[2].retriever: missing required field 'record_selector' \
         (did you mean 'record_selector' instead of 'record_selecter'?)"
    );
}

#[test]
fn wrong_shape_says_what_was_expected_and_found() {
    let mut tree = three_streams();
    tree["streams"][1]["retriever"]["record_selector"]["extractor"]["field_path"] = json!(5);
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::InvalidValue);
    assert_eq!(
        error.path.to_string(),
        "streams[1].retriever.record_selector.extractor.field_path"
    );
    assert_eq!(
        error.message,
        "expected a list of strings, found a number (5)"
    );
}

#[test]
fn unknown_type_suggests_an_allowed_type() {
    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["paginator"] = json!({"type": "DefaultPaginatr"});
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::UnknownType);
    assert_eq!(error.path.to_string(), "streams[0].retriever.paginator");
    assert!(
        error
            .message
            .contains("unknown component type 'DefaultPaginatr'"),
        "{error}"
    );
    assert_eq!(
        error.suggestion.as_deref(),
        Some("did you mean 'DefaultPaginator'?")
    );
}

#[test]
fn a_component_known_elsewhere_is_refused_where_it_is_not_allowed() {
    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["paginator"] =
        json!({"type": "DpathExtractor", "field_path": []});
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::UnknownType);
    assert_eq!(
        error.message,
        "a DpathExtractor component is not allowed here; expected one of: DefaultPaginator, NoPagination"
    );
}

#[test]
fn a_directly_typed_field_names_the_expected_type() {
    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["record_selector"]["type"] = json!("RecordSelectr");
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::UnknownType);
    assert_eq!(
        error.path.to_string(),
        "streams[0].retriever.record_selector"
    );
    assert_eq!(
        error.suggestion.as_deref(),
        Some("did you mean 'RecordSelector'?")
    );
}

#[test]
fn a_union_member_is_taken_by_its_type_even_without_optional_fields() {
    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["paginator"] = json!({"type": "NoPagination"});
    let model = load(&tree).unwrap();
    assert!(matches!(
        retriever_of(&model, 0).paginator,
        Some(Paginator::NoPagination(_))
    ));

    // A required field missing inside the chosen member is reported there, not as "no variant".
    tree["streams"][0]["retriever"]["paginator"] = json!({"type": "DefaultPaginator"});
    let error = load(&tree).unwrap_err();
    assert_eq!(error.path.to_string(), "streams[0].retriever.paginator");
    assert_eq!(
        error.message,
        "missing required field 'pagination_strategy'"
    );
}

#[test]
fn a_union_without_type_lists_the_allowed_types() {
    let mut tree = three_streams();
    tree["streams"][0]["retriever"]
        .as_object_mut()
        .unwrap()
        .remove("type");
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::MissingField);
    assert_eq!(
        error.message,
        "missing required field 'type' (one of: SimpleRetriever, AsyncRetriever, CustomRetriever)"
    );
}

#[test]
fn a_member_whose_type_is_optional_is_taken_without_type() {
    let mut tree = three_streams();
    tree["streams"][0]["state_migrations"] = json!([{}]);
    let model = load(&tree).unwrap();
    let Some(StreamEntry::DeclarativeStream(stream)) =
        model.streams.as_ref().and_then(|s| s.first())
    else {
        panic!("not a DeclarativeStream")
    };
    assert!(matches!(
        stream.state_migrations.as_deref(),
        Some([StateMigration::LegacyToPerPartitionStateMigration(_)])
    ));
}

#[test]
fn integer_or_string_accepts_both_but_integer_only_refuses_strings() {
    let mut tree = three_streams();
    let requester = &mut tree["streams"][0]["retriever"]["requester"];
    requester["error_handler"] = json!({
        "type": "DefaultErrorHandler",
        "max_retries": "{{ config['retries'] }}",
        "response_filters": [{"type": "HttpResponseFilter", "http_codes": [404]}]
    });
    let model = load(&tree).unwrap();
    let Some(Requester::HttpRequester(requester)) = Some(&retriever_of(&model, 0).requester) else {
        panic!("not an HttpRequester")
    };
    let Some(ErrorHandler::DefaultErrorHandler(handler)) = &requester.error_handler else {
        panic!("not a DefaultErrorHandler")
    };
    assert_eq!(
        handler.max_retries,
        Some(IntegerOrString::String("{{ config['retries'] }}".into()))
    );

    tree["streams"][0]["retriever"]["requester"]["error_handler"]["max_retries"] = json!(3);
    let model = load(&tree).unwrap();
    let Requester::HttpRequester(requester) = &retriever_of(&model, 0).requester else {
        panic!("not an HttpRequester")
    };
    let Some(ErrorHandler::DefaultErrorHandler(handler)) = &requester.error_handler else {
        panic!("not a DefaultErrorHandler")
    };
    assert_eq!(handler.max_retries, Some(IntegerOrString::Integer(3)));

    let filter =
        &mut tree["streams"][0]["retriever"]["requester"]["error_handler"]["response_filters"][0];
    filter["http_codes"] = json!(["404"]);
    let error = load(&tree).unwrap_err();
    assert_eq!(
        error.path.to_string(),
        "streams[0].retriever.requester.error_handler.response_filters[0].http_codes[0]"
    );
    assert_eq!(
        error.message,
        "expected an integer, found a string (\"404\")"
    );
}

#[test]
fn schema_constraints_are_checked() {
    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["record_selector"]["extractor"] =
        json!({"type": "CombinedExtractor", "extractors": []});
    let error = load(&tree).unwrap_err();
    assert_eq!(
        error.path.to_string(),
        "streams[0].retriever.record_selector.extractor.extractors"
    );
    assert!(error.message.contains("at least 1"), "{error}");

    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["requester"]["error_handler"] = json!({
        "type": "DefaultErrorHandler",
        "response_filters": [{"type": "HttpResponseFilter", "http_codes": [404, 404]}]
    });
    let error = load(&tree).unwrap_err();
    assert!(error.message.contains("must be unique"), "{error}");
}

#[test]
fn primary_key_is_told_apart_by_shape() {
    for (key, expected) in [
        (json!("id"), PrimaryKey::String("id".into())),
        (
            json!(["id", "date"]),
            PrimaryKey::List(vec!["id".into(), "date".into()]),
        ),
        (
            json!([["a", "b"]]),
            PrimaryKey::ListOfLists(vec![vec!["a".into(), "b".into()]]),
        ),
        (json!([]), PrimaryKey::List(Vec::new())),
    ] {
        assert_eq!(
            PrimaryKey::from_node(&key, &ManifestPath::root()).unwrap(),
            expected
        );
    }
    let error = PrimaryKey::from_node(&json!(7), &ManifestPath::parse("streams[0].primary_key"))
        .unwrap_err();
    assert_eq!(
        error.message,
        "expected a string, a list of strings or a list of lists of strings, found a number (7)"
    );
}

#[test]
fn string_enums_refuse_unknown_values_with_a_suggestion() {
    let node = json!("headers");
    let error = InjectInto::from_node(&node, &ManifestPath::parse("x.inject_into")).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::InvalidValue);
    assert_eq!(error.suggestion.as_deref(), Some("did you mean 'header'?"));
    assert_eq!(
        InjectInto::from_node(&json!("header"), &ManifestPath::root()).unwrap(),
        InjectInto::Header
    );
    assert_eq!(InjectInto::Header.as_str(), "header");
}

#[test]
fn unknown_top_level_keys_are_refused_but_unknown_component_keys_ignored() {
    let mut tree = three_streams();
    tree["stream"] = json!([]);
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::InvalidValue);
    assert!(
        error.message.starts_with("unknown field 'stream'"),
        "{error}"
    );
    assert_eq!(error.suggestion.as_deref(), Some("did you mean 'streams'?"));

    let mut tree = three_streams();
    tree["streams"][0]["retriever"]["some_extension"] = json!({"any": "thing"});
    assert!(load(&tree).is_ok());
}

#[test]
fn streams_or_dynamic_streams_is_required() {
    let mut tree = three_streams();
    tree.as_object_mut().unwrap().remove("streams");
    let error = load(&tree).unwrap_err();
    assert_eq!(error.kind, ManifestErrorKind::MissingField);
    assert!(
        error.message.contains("'streams', 'dynamic_streams'"),
        "{error}"
    );
}

#[test]
fn closed_nested_objects_refuse_unknown_keys() {
    let node = json!({"kid": "k", "alg": "HS256"});
    let error = JwtHeaders::from_node(&node, &ManifestPath::parse("a.jwt_headers")).unwrap_err();
    assert!(error.message.starts_with("unknown field 'alg'"), "{error}");
}

#[test]
fn null_is_not_a_value_for_typed_fields() {
    let mut tree = three_streams();
    tree["streams"][0]["name"] = Value::Null;
    let error = load(&tree).unwrap_err();
    assert_eq!(error.path.to_string(), "streams[0].name");
    assert_eq!(error.message, "expected a string, found null");
}

#[test]
fn serializes_back_to_the_manifest_shape() {
    let mut tree = three_streams();
    tree["streams"][0]["$parameters"] = json!({"name": "a"});
    let model = load(&tree).unwrap();
    let written = serde_json::to_value(&model).unwrap();
    assert_eq!(written["type"], "DeclarativeSource");
    assert_eq!(written["streams"][0]["$parameters"], json!({"name": "a"}));
    assert_eq!(
        written["streams"][0]["retriever"]["record_selector"]["extractor"]["type"],
        "DpathExtractor"
    );
    assert!(
        written["streams"][0]["retriever"]
            .get("paginator")
            .is_none()
    );
    assert_eq!(load(&written).unwrap(), model);
}

#[test]
fn component_types_are_sorted_and_complete() {
    assert!(COMPONENT_TYPES.windows(2).all(|w| w[0] < w[1]));
    for t in [
        "DeclarativeStream",
        "DpathExtractor",
        "ApiKey",
        "FileUploader",
        "DeclarativeSource",
    ] {
        assert!(COMPONENT_TYPES.contains(&t), "{t} missing");
    }
    assert_eq!(DpathExtractor::TYPE, "DpathExtractor");
}

#[cfg(feature = "schema")]
#[test]
fn the_json_schema_carries_the_component_type() {
    let schema = schemars::schema_for!(DpathExtractor).to_value();
    assert_eq!(
        schema["properties"]["type"]["enum"],
        json!(["DpathExtractor"])
    );
    assert_eq!(schema["required"][0], "type");
    assert_eq!(
        schema["properties"]["$parameters"]["type"],
        json!(["object", "null"])
    );
}
