//! Output byte-equality against lines the reference printed (see tests/fixtures/).

use serde_json::{Map, Value, json};
use sluice_protocol::json::to_reference_writer;
use sluice_protocol::{
    AirbyteCatalog, AirbyteMessage, AirbyteStream, AirbyteStreamStatus, ConnectorSpecification,
    EmittedAt, FailureType, Level, Status, StreamDescriptor, SyncMode, parse_message,
    to_json_string, write_message_json, write_record_json,
};

const ROUND_TRIPS: &str = include_str!("../fixtures/reference_round_trips.jsonl");
const GENERATED: &str = include_str!("../fixtures/reference_generated_messages.jsonl");
const READ_OK: &str = include_str!("../fixtures/reference_read/output_ok.jsonl");
const READ_HTTP_404: &str = include_str!("../fixtures/reference_read/output_http_404.jsonl");
const FLOATS: &str = include_str!("../fixtures/reference_floats.json");

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| !line.trim().is_empty())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test data must be an object, got {other}"),
    }
}

#[test]
fn reading_then_writing_matches_the_reference_for_every_message_kind() {
    let mut count = 0;
    for line in lines(ROUND_TRIPS) {
        let case: Value = serde_json::from_str(line).unwrap();
        let input = serde_json::to_string(&case["input"]).unwrap();
        let expected = case["expected"].as_str().unwrap();

        let message = parse_message(&input).unwrap_or_else(|error| panic!("{input}: {error}"));
        assert_eq!(to_json_string(&message), expected, "input: {input}");

        // Reading the reference's own output back gives what the reference gives.
        let reread = parse_message(expected).unwrap();
        assert_eq!(to_json_string(&reread), case["reread"].as_str().unwrap());
        count += 1;
    }
    assert!(count >= 19, "fixture lost its cases: {count}");
}

#[test]
fn lines_printed_by_real_reference_runs_round_trip_byte_for_byte() {
    let mut kinds = std::collections::BTreeSet::new();
    for line in lines(GENERATED)
        .chain(lines(READ_OK))
        .chain(lines(READ_HTTP_404))
    {
        let message = parse_message(line).unwrap_or_else(|error| panic!("{line}: {error}"));
        kinds.insert(message.message_type().as_str());
        assert_eq!(to_json_string(&message), line);

        let mut written = Vec::new();
        write_message_json(&mut written, &message).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), line);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["CONTROL", "LOG", "RECORD", "SPEC", "STATE", "TRACE"]
    );
}

#[test]
fn floats_are_spelled_as_orjson_spells_them() {
    let cases: Vec<Value> = serde_json::from_str(FLOATS).unwrap();
    assert!(cases.len() > 400);
    for case in cases {
        let value = f64::from_bits(case["bits"].as_u64().unwrap());
        let mut out = Vec::new();
        to_reference_writer(&mut out, &value).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            case["orjson"].as_str().unwrap(),
            "{value:e}"
        );
    }
}

fn records_from_fixtures() -> Vec<(String, Value, i64)> {
    let mut records = Vec::new();
    let inputs = lines(ROUND_TRIPS).map(|line| {
        let case: Value = serde_json::from_str(line).unwrap();
        serde_json::to_string(&case["input"]).unwrap()
    });
    let outputs = lines(READ_OK).map(str::to_owned);
    for line in inputs.chain(outputs) {
        if let AirbyteMessage::Record(record) = parse_message(&line).unwrap() {
            records.push((record.stream, Value::Object(record.data), record.emitted_at));
        }
    }
    records
}

#[test]
fn fast_record_path_writes_the_same_bytes_as_the_full_message() {
    let mut records = records_from_fixtures();
    assert!(records.len() >= 2);
    records.push((
        "naïve \"stream\"\n".to_owned(),
        json!({
            "null_at_top": null,
            "nested": {"null_inside": null, "list": [null, 1, -2.5, 1e300, 5e-324]},
            "unicode": "é\u{2028}😀\u{1}\u{7f}",
            "ints": [i64::MIN, u64::MAX],
            "empty": {},
            "bool": false,
        }),
        -1,
    ));
    records.push(("s".to_owned(), json!({}), i64::MAX));

    for (stream, data, emitted_at) in records {
        let mut fast = Vec::new();
        write_record_json(&mut fast, &stream, &data, emitted_at).unwrap();

        let slow = AirbyteMessage::record(stream.clone(), object(data.clone()), emitted_at);
        let mut slow_bytes = Vec::new();
        write_message_json(&mut slow_bytes, &slow).unwrap();

        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(slow_bytes).unwrap(),
            "stream {stream:?}, data {data}"
        );
    }
}

#[test]
fn fast_record_path_matches_a_record_the_reference_printed() {
    let printed = lines(READ_OK)
        .find(|line| line.contains("\"RECORD\""))
        .unwrap();
    // The API returned {"id":1,"name":null,"nested":{"x":null},"big":1e16,"arr":[null]}.
    let data = json!({"id": 1, "name": null, "nested": {"x": null}, "big": 1e16, "arr": [null]});
    let emitted_at = parse_message(printed)
        .ok()
        .and_then(|message| match message {
            AirbyteMessage::Record(record) => Some(record.emitted_at),
            _ => None,
        })
        .unwrap();

    let mut fast = Vec::new();
    write_record_json(&mut fast, "items", &data, emitted_at).unwrap();
    assert_eq!(String::from_utf8(fast).unwrap(), printed);
}

#[test]
fn fast_record_path_writes_non_object_data_unchanged() {
    let mut out = Vec::new();
    write_record_json(&mut out, "s", &json!([null, 1e16]), 5).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"type":"RECORD","record":{"stream":"s","data":[null,1e+16],"emitted_at":5}}"#
    );
}

/// Replaces the clock-dependent `emitted_at` so constructor output can be compared with
/// lines the reference printed at another time.
fn with_emitted_at(mut message: AirbyteMessage, emitted_at: EmittedAt) -> AirbyteMessage {
    match &mut message {
        AirbyteMessage::Trace(trace) => trace.emitted_at = emitted_at,
        AirbyteMessage::Control(control) => control.emitted_at = emitted_at,
        _ => {}
    }
    message
}

fn generated_line(prefix: &str) -> &'static str {
    lines(GENERATED)
        .find(|line| line.starts_with(prefix))
        .unwrap()
}

#[test]
fn constructors_build_what_the_reference_helpers_build() {
    // as_airbyte_message of AirbyteTracedException(message, internal_message, config_error).
    let printed = generated_line(r#"{"type":"TRACE","trace":{"type":"ERROR""#);
    let AirbyteMessage::Trace(reference) = parse_message(printed).unwrap() else {
        panic!("not a trace: {printed}")
    };
    let built = AirbyteMessage::error_trace(
        "boom",
        Some("internal".to_owned()),
        FailureType::ConfigError,
        reference
            .error
            .as_ref()
            .and_then(|error| error.stack_trace.clone()),
    );
    assert!(matches!(&built, AirbyteMessage::Trace(trace)
        if matches!(trace.emitted_at, EmittedAt::Millis(_))));
    assert_eq!(
        to_json_string(&with_emitted_at(built, reference.emitted_at)),
        printed
    );

    let printed = generated_line(r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS""#);
    let AirbyteMessage::Trace(reference) = parse_message(printed).unwrap() else {
        panic!("not a trace: {printed}")
    };
    let built = AirbyteMessage::stream_status(
        StreamDescriptor::new("users"),
        AirbyteStreamStatus::Started,
        reference.emitted_at,
    );
    assert_eq!(to_json_string(&built), printed);

    // create_connector_config_control_message({"access_token": "a", "expires": None}).
    let printed = generated_line(r#"{"type":"CONTROL""#);
    let AirbyteMessage::Control(reference) = parse_message(printed).unwrap() else {
        panic!("not a control message: {printed}")
    };
    let built =
        AirbyteMessage::control_config(object(json!({"access_token": "a", "expires": null})));
    assert!(matches!(&built, AirbyteMessage::Control(control)
        if matches!(control.emitted_at, EmittedAt::FractionalMillis(_))));
    assert_eq!(
        to_json_string(&with_emitted_at(built, reference.emitted_at)),
        printed
    );
}

#[test]
fn constructors_match_the_reference_read_output() {
    let output: Vec<&str> = lines(READ_OK).collect();
    let state = AirbyteMessage::state_stream(
        StreamDescriptor::new("items"),
        object(json!({"__ab_no_cursor_state_message": true})),
        Some(1.0),
    );
    assert!(output.contains(&to_json_string(&state).as_str()));

    let log = AirbyteMessage::log(Level::Info, "Starting syncing");
    assert!(output.contains(&to_json_string(&log).as_str()));
}

#[test]
fn simple_constructors_print_the_reference_shapes() {
    assert_eq!(
        to_json_string(&AirbyteMessage::connection_status(Status::Succeeded, None)),
        r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}"#
    );
    let spec = ConnectorSpecification::new(object(json!({"type": "object"})));
    // Printed by the reference for ConnectorSpecification(connectionSpecification={...}).
    assert_eq!(
        to_json_string(&AirbyteMessage::spec(spec)),
        r#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"},"supportsNormalization":false,"supportsDBT":false}}"#
    );
    let catalog = AirbyteCatalog {
        streams: vec![AirbyteStream::new(
            "bare",
            Map::new(),
            vec![SyncMode::FullRefresh],
        )],
    };
    assert_eq!(
        to_json_string(&AirbyteMessage::catalog(catalog)),
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"bare","json_schema":{},"supported_sync_modes":["full_refresh"]}]}}"#
    );
}

#[test]
fn clock_stamps_have_the_reference_kinds() {
    let before = sluice_protocol::now_millis();
    let EmittedAt::FractionalMillis(fractional) = EmittedAt::now_fractional() else {
        panic!("now_fractional must be fractional")
    };
    let EmittedAt::Millis(whole) = EmittedAt::now_millis() else {
        panic!("now_millis must be whole")
    };
    assert!(before <= whole && whole - before < 60_000);
    assert!((fractional - whole as f64).abs() < 60_000.0);
}
