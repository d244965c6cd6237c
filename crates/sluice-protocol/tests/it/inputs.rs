//! Reading the platform's inputs: tolerance for unknown keys, strict enums, and the
//! reference's rules for input state (checked against airbyte-cdk 7.39.1's behaviour).

use serde_json::json;
use sluice_protocol::{
    AirbyteStateType, DestinationSyncMode, ProtocolError, StreamDescriptor, SyncMode,
    ignored_state_messages, parse_config, parse_configured_catalog, parse_input_state,
    parse_message, per_stream_states, to_json_string,
};

const CATALOG_FROM_A_NEWER_PLATFORM: &str = r#"{
  "streams": [
    {
      "stream": {
        "name": "users",
        "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "supported_sync_modes": ["full_refresh", "incremental"],
        "source_defined_cursor": true,
        "default_cursor_field": ["updated_at"],
        "source_defined_primary_key": [["id"]],
        "is_resumable": true,
        "brand_new_stream_field": {"x": 1}
      },
      "sync_mode": "incremental",
      "cursor_field": ["updated_at"],
      "destination_sync_mode": "append_dedup",
      "primary_key": [["id"]],
      "generation_id": 3,
      "minimum_generation_id": 0,
      "sync_id": 42,
      "brand_new_configured_field": [1, 2]
    },
    {
      "stream": {"name": "events", "namespace": "ns", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
      "sync_mode": "full_refresh",
      "destination_sync_mode": "overwrite",
      "cursor_field": null
    }
  ],
  "brand_new_catalog_field": true
}"#;

#[test]
fn configured_catalog_ignores_unknown_fields_at_every_level() {
    let catalog = parse_configured_catalog(CATALOG_FROM_A_NEWER_PLATFORM).unwrap();
    assert_eq!(catalog.streams.len(), 2);
    let users = catalog.stream("users", None).unwrap();
    assert_eq!(users.sync_mode, SyncMode::Incremental);
    assert_eq!(
        users.destination_sync_mode,
        DestinationSyncMode::AppendDedup
    );
    assert_eq!(
        users.cursor_field.as_deref(),
        Some(&["updated_at".to_owned()][..])
    );
    assert_eq!(users.primary_key, Some(vec![vec!["id".to_owned()]]));
    assert_eq!(
        (
            users.generation_id,
            users.minimum_generation_id,
            users.sync_id
        ),
        (Some(3), Some(0), Some(42))
    );
    assert_eq!(users.stream.is_resumable, Some(true));
    let events = catalog.stream("events", Some("ns")).unwrap();
    assert_eq!(events.cursor_field, None);
    assert!(catalog.stream("events", None).is_none());

    // Written back, unknown fields are gone, as in the reference.
    let written = serde_json::to_string(&catalog).unwrap();
    assert!(!written.contains("brand_new"), "{written}");
}

#[test]
fn unknown_sync_mode_is_an_error_naming_its_path() {
    let text = CATALOG_FROM_A_NEWER_PLATFORM.replacen(
        "\"incremental\",\n      \"cursor_field\"",
        "\"mirror\",\n      \"cursor_field\"",
        1,
    );
    let error = parse_configured_catalog(&text).unwrap_err();
    let shown = error.to_string();
    assert!(matches!(error, ProtocolError::Shape { .. }), "{shown}");
    assert!(shown.contains("configured catalog"), "{shown}");
    assert!(shown.contains("streams[0].sync_mode"), "{shown}");
    assert!(shown.contains("unknown variant `mirror`"), "{shown}");

    let text = CATALOG_FROM_A_NEWER_PLATFORM.replacen(
        "[\"full_refresh\", \"incremental\"]",
        "[\"full_refresh\", \"cdc\"]",
        1,
    );
    let shown = parse_configured_catalog(&text).unwrap_err().to_string();
    assert!(
        shown.contains("streams[0].stream.supported_sync_modes[1]"),
        "{shown}"
    );
}

#[test]
fn configured_catalog_requires_what_the_reference_requires() {
    let missing = r#"{"streams": [{"stream": {"name": "u", "json_schema": {}, "supported_sync_modes": []}, "sync_mode": "full_refresh"}]}"#;
    let shown = parse_configured_catalog(missing).unwrap_err().to_string();
    assert!(
        shown.contains("missing field `destination_sync_mode`"),
        "{shown}"
    );

    let float_generation = r#"{"streams": [{"stream": {"name": "u", "json_schema": {}, "supported_sync_modes": []}, "sync_mode": "full_refresh", "destination_sync_mode": "append", "generation_id": 2.0}]}"#;
    let shown = parse_configured_catalog(float_generation)
        .unwrap_err()
        .to_string();
    assert!(shown.contains("streams[0].generation_id"), "{shown}");

    let broken = parse_configured_catalog(r#"{"streams": ["#).unwrap_err();
    assert!(matches!(broken, ProtocolError::Syntax { .. }), "{broken}");
    let trailing = parse_configured_catalog(r#"{"streams": []} x"#).unwrap_err();
    assert!(
        matches!(trailing, ProtocolError::Syntax { .. }),
        "{trailing}"
    );
}

#[test]
fn config_is_any_object_and_nothing_else() {
    let config = parse_config(
        r#"{"api_key": "k", "__injected_declarative_manifest": {"version": "6"}, "n": null}"#,
    )
    .unwrap();
    assert_eq!(config["api_key"], "k");
    assert!(config["n"].is_null());
    let error = parse_config("[1]").unwrap_err();
    assert_eq!(
        error.to_string(),
        "config must be a JSON object, found a list"
    );
}

#[test]
fn state_list_keeps_opaque_blobs_whole_and_ignores_unknown_fields() {
    let messages = parse_input_state(
        r#"[{"type": "STREAM", "newfield": 1,
             "stream": {"stream_descriptor": {"name": "u", "extra": 1},
                        "stream_state": {"a": 1, "__ab_x": 2, "n": null, "deep": {"k": [1.5]}}},
             "sourceStats": {"recordCount": 3, "rejectedRecordCount": 1}}]"#,
    )
    .unwrap();
    assert_eq!(messages.len(), 1);
    let state = messages[0]
        .stream
        .as_ref()
        .unwrap()
        .stream_state
        .as_ref()
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(state.clone()),
        json!({"a": 1, "__ab_x": 2, "n": null, "deep": {"k": [1.5]}})
    );
    assert_eq!(messages[0].source_stats.unwrap().record_count, Some(3.0));
}

#[test]
fn falsy_state_documents_mean_no_state() {
    for text in ["null", "{}", "[]", "false", "0", "\"\""] {
        assert_eq!(parse_input_state(text).unwrap(), vec![], "{text}");
    }
}

#[test]
fn bad_state_documents_are_clear_errors() {
    let error = parse_input_state("5").unwrap_err();
    assert!(error.to_string().contains("found a number"), "{error}");

    let error = parse_input_state(r#"[{"type": "STREAM"}]"#).unwrap_err();
    assert!(
        matches!(error, ProtocolError::EmptyStateMessage { index: 0 }),
        "{error}"
    );
    // `data: {}` is as good as no data in the reference.
    let error = parse_input_state(
        r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "a"}}}, {"data": {}}]"#,
    )
    .unwrap_err();
    assert!(
        matches!(error, ProtocolError::EmptyStateMessage { index: 1 }),
        "{error}"
    );

    let error =
        parse_input_state(r#"[{"type": "BOGUS", "stream": {"stream_descriptor": {"name": "u"}}}]"#)
            .unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.contains("[0].type") && shown.contains("unknown variant `BOGUS`"),
        "{shown}"
    );

    let error = parse_input_state(r#"[{"type": "STREAM", "stream": {}}]"#).unwrap_err();
    assert!(error.to_string().contains("[0].stream"), "{error}");

    assert!(matches!(
        parse_input_state("").unwrap_err(),
        ProtocolError::Syntax { .. }
    ));
}

#[test]
fn legacy_object_state_is_rejected_as_in_the_reference() {
    // airbyte-cdk 7.x iterates the object's keys as messages and fails.
    let error = parse_input_state(r#"{"users": {"updated_at": "2024-01-01"}}"#).unwrap_err();
    assert!(
        matches!(error, ProtocolError::StateIsAnObject { .. }),
        "{error}"
    );
    let shown = error.to_string();
    assert!(
        shown.contains("`users`") && shown.contains("list of state messages"),
        "{shown}"
    );
}

#[test]
fn listed_legacy_messages_are_read_then_ignored_with_a_warning() {
    let listed = parse_input_state(
        r#"[{"type": "LEGACY", "data": {"users": {"a": 1}}}, {"data": {"users": {"a": 1}}}]"#,
    )
    .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].state_type, Some(AirbyteStateType::Legacy));
    assert_eq!(listed[1].state_type, None);

    // The reference's state manager takes per-stream state only from STREAM/GLOBAL messages.
    assert!(per_stream_states(&listed).unwrap().is_empty());
    let ignored = ignored_state_messages(&listed);
    assert_eq!(ignored.len(), 2, "{ignored:?}");
    assert!(
        ignored[0].contains("[0]")
            && ignored[0].contains("LEGACY")
            && ignored[0].contains("`users`"),
        "{}",
        ignored[0]
    );
    assert!(ignored[1].contains("no `type`"), "{}", ignored[1]);

    // A lone GLOBAL message is used; one among others is not.
    let global = r#"{"type": "GLOBAL", "global": {"stream_states": [{"stream_descriptor": {"name": "g"}}]}}"#;
    let lone = parse_input_state(&format!("[{global}]")).unwrap();
    assert!(ignored_state_messages(&lone).is_empty());
    let mixed = parse_input_state(&format!(
        r#"[{global}, {{"type": "STREAM", "stream": {{"stream_descriptor": {{"name": "s"}}}}}}]"#
    ))
    .unwrap();
    let ignored = ignored_state_messages(&mixed);
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert!(
        ignored[0].contains("GLOBAL") && ignored[0].contains("(g)"),
        "{}",
        ignored[0]
    );
}

#[test]
fn per_stream_states_follow_the_reference_state_manager() {
    let messages = parse_input_state(
        r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "v"}, "stream_state": {"b": 1}}},
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": "v"}, "stream_state": {"b": 2}}},
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": "v", "namespace": "n"}}},
            {"type": "GLOBAL", "global": {"stream_states": [{"stream_descriptor": {"name": "g"}, "stream_state": {"c": 1}}]}},
            {"stream": {"stream_descriptor": {"name": "untyped"}, "stream_state": {"d": 1}}}]"#,
    )
    .unwrap();
    let states = per_stream_states(&messages).unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states[&StreamDescriptor::new("v")]["b"], 2);
    assert!(states[&StreamDescriptor::with_namespace("v", Some("n".to_owned()))].is_empty());

    let global = parse_input_state(
        r#"[{"type": "GLOBAL", "global": {"stream_states": [{"stream_descriptor": {"name": "u"}, "stream_state": {"a": 1}}]}}]"#,
    )
    .unwrap();
    assert_eq!(
        per_stream_states(&global).unwrap()[&StreamDescriptor::new("u")]["a"],
        1
    );

    let shared = parse_input_state(
        r#"[{"type": "GLOBAL", "global": {"shared_state": {}, "stream_states": []}}]"#,
    )
    .unwrap();
    assert!(matches!(
        per_stream_states(&shared).unwrap_err(),
        ProtocolError::SharedStateUnsupported
    ));

    let stream_without_stream =
        parse_input_state(r#"[{"type": "STREAM", "data": {"x": 1}}]"#).unwrap();
    let error = per_stream_states(&stream_without_stream).unwrap_err();
    assert_eq!(
        error.to_string(),
        "input state message [0] is of type STREAM but has no `stream` object"
    );
}

#[test]
fn messages_ignore_unknown_fields_and_reject_missing_payloads() {
    let message = parse_message(
        r#"{"type": "LOG", "log": {"level": "INFO", "message": "hi", "future": 1}, "record": null, "future": {}}"#,
    )
    .unwrap();
    assert_eq!(
        to_json_string(&message),
        r#"{"type":"LOG","log":{"level":"INFO","message":"hi"}}"#
    );

    let error = parse_message(r#"{"type": "RECORD", "log": {"level": "INFO", "message": "hi"}}"#)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("a RECORD message needs a `record` object"),
        "{error}"
    );

    let error = parse_message(r#"{"type": "TELEMETRY"}"#).unwrap_err();
    assert!(
        error.to_string().contains("unknown variant `TELEMETRY`"),
        "{error}"
    );

    let error = parse_message(
        r#"{"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": "now"}}"#,
    )
    .unwrap_err();
    assert!(error.to_string().contains("trace.emitted_at"), "{error}");
}

#[test]
fn destination_catalog_messages_are_read_and_written() {
    let line = r#"{"type":"DESTINATION_CATALOG","destination_catalog":{"operations":[{"object_name":"o","sync_mode":"soft_delete","json_schema":{"type":"object"},"matching_keys":[["id"]]}]}}"#;
    assert_eq!(to_json_string(&parse_message(line).unwrap()), line);
}
