//! Reading the platform's inputs (config, configured catalog, input state) from their JSON
//! text, with the reference's leniency and strictness.
//!
//! Unknown keys are ignored everywhere, so files written by a newer platform still load.
//! Unknown enum values (a new sync mode, say) are errors that name the offending path.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::catalog::ConfiguredAirbyteCatalog;
use crate::message::AirbyteMessage;
use crate::state::{AirbyteStateMessage, AirbyteStateType, StreamDescriptor};

/// Why an input could not be read. `document` names the input ("config", "configured
/// catalog", "input state", "message"); the caller knows the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{document} is not valid JSON: {detail}")]
    Syntax {
        document: &'static str,
        detail: serde_json::Error,
    },

    #[error("{document} does not match the Airbyte protocol at `{path}`: {detail}")]
    Shape {
        document: &'static str,
        path: String,
        detail: serde_json::Error,
    },

    #[error("{document} must be a JSON object, found {found}")]
    NotAnObject {
        document: &'static str,
        found: &'static str,
    },

    #[error(
        "input state must be a list of state messages \
         ([{{\"type\": \"STREAM\", \"stream\": {{\"stream_descriptor\": ..., \"stream_state\": ...}}}}]), \
         found {found}"
    )]
    StateNotAList { found: &'static str },

    #[error(
        "input state must be a list of state messages \
         ([{{\"type\": \"STREAM\", \"stream\": {{\"stream_descriptor\": ..., \"stream_state\": ...}}}}]), \
         found an object with keys {keys}: the legacy single-object state format is not supported"
    )]
    StateIsAnObject { keys: String },

    #[error("input state message [{index}] has none of `stream`, `global` or `data`")]
    EmptyStateMessage { index: usize },

    #[error("input state message [{index}] is of type {state_type} but has no `{field}` object")]
    StateFieldMissing {
        index: usize,
        state_type: &'static str,
        field: &'static str,
    },

    #[error(
        "the GLOBAL input state carries a `shared_state`; API sources only write per-stream \
         state, so this state was not written by this connector and cannot be used"
    )]
    SharedStateUnsupported,
}

/// Parses a config file's text: any JSON object, unknown keys and all.
pub fn parse_config(json: &str) -> Result<Map<String, Value>, ProtocolError> {
    let document = "config";
    match parse_json(document, json)? {
        Value::Object(config) => Ok(config),
        other => Err(ProtocolError::NotAnObject {
            document,
            found: json_kind(&other),
        }),
    }
}

/// Parses a configured catalog (the `--catalog` file of `read`).
pub fn parse_configured_catalog(json: &str) -> Result<ConfiguredAirbyteCatalog, ProtocolError> {
    deserialize_str("configured catalog", json)
}

/// Parses one JSON line into a message.
pub fn parse_message(line: &str) -> Result<AirbyteMessage, ProtocolError> {
    deserialize_str("message", line)
}

/// Parses an input state file (the `--state` file of `read`) into state messages.
///
/// * A list is read as state messages; each must carry `stream`, `global` or a non-empty
///   `data`, as the reference requires.
/// * `null`, `{}`, `[]` and other JSON "falsy" values mean no state, as in the reference.
/// * A non-empty object (the pre-per-stream legacy format) is an error, as in the reference
///   7.x (earlier versions accepted it); so is any other non-list value.
pub fn parse_input_state(json: &str) -> Result<Vec<AirbyteStateMessage>, ProtocolError> {
    let document = "input state";
    let value = parse_json(document, json)?;
    if is_falsy(&value) {
        return Ok(Vec::new());
    }
    match value {
        Value::Array(_) => {
            let messages: Vec<AirbyteStateMessage> = deserialize_value(document, value)?;
            for (index, message) in messages.iter().enumerate() {
                let has_data = message.data.as_ref().is_some_and(|data| !data.is_empty());
                if message.stream.is_none() && message.global.is_none() && !has_data {
                    return Err(ProtocolError::EmptyStateMessage { index });
                }
            }
            Ok(messages)
        }
        Value::Object(legacy) => Err(ProtocolError::StateIsAnObject {
            keys: key_list(&legacy),
        }),
        other => Err(ProtocolError::StateNotAList {
            found: json_kind(&other),
        }),
    }
}

/// The state of each stream in an input state, keyed by stream, as the reference's connector
/// state manager extracts it:
///
/// * exactly one GLOBAL message: its `stream_states` (a `shared_state` is an error);
/// * otherwise: every STREAM message, a later one for the same stream winning; GLOBAL,
///   LEGACY and untyped messages are ignored.
///
/// A stream without `stream_state` maps to an empty object.
pub fn per_stream_states(
    messages: &[AirbyteStateMessage],
) -> Result<HashMap<StreamDescriptor, Map<String, Value>>, ProtocolError> {
    if let [only] = messages {
        if only.state_type == Some(AirbyteStateType::Global) {
            return global_stream_states(only);
        }
    }

    let mut states = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        if message.state_type != Some(AirbyteStateType::Stream) {
            continue;
        }
        let stream = message
            .stream
            .as_ref()
            .ok_or(ProtocolError::StateFieldMissing {
                index,
                state_type: "STREAM",
                field: "stream",
            })?;
        states.insert(
            stream.stream_descriptor.clone(),
            stream.stream_state.clone().unwrap_or_default(),
        );
    }
    Ok(states)
}

/// The input state messages [`per_stream_states`] leaves out, each with why, for a warning:
/// LEGACY and untyped messages (the reference ignores them: every stream then reads as if it
/// had no state), and GLOBAL messages that are not the only message.
pub fn ignored_state_messages(messages: &[AirbyteStateMessage]) -> Vec<String> {
    if let [only] = messages {
        if only.state_type == Some(AirbyteStateType::Global) {
            return Vec::new();
        }
    }
    messages
        .iter()
        .enumerate()
        .filter_map(|(index, message)| {
            let what = match message.state_type {
                Some(AirbyteStateType::Stream) => return None,
                Some(AirbyteStateType::Legacy) => "it is a LEGACY state",
                None => "it has no `type`, so it counts as a LEGACY state",
                Some(AirbyteStateType::Global) => {
                    return Some(format!(
                        "Ignoring input state message [{index}]: a GLOBAL state is only read when \
                         it is the only message of the input state, and this input state has {} \
                         messages; its stream states ({}) are not used",
                        messages.len(),
                        global_stream_names(message)
                    ));
                }
            };
            let mut holds = Vec::new();
            if let Some(data) = message.data.as_ref().filter(|data| !data.is_empty()) {
                holds.push(format!("data keys {}", key_list(data)));
            }
            if let Some(stream) = message.stream_descriptor() {
                holds.push(format!("a `stream` state for '{}'", stream.name));
            }
            if message.global.is_some() {
                holds.push("a `global` state".to_owned());
            }
            let fix = if message.state_type.is_none() && message.stream.is_some() {
                "Add \"type\": \"STREAM\" to the message to resume from it"
            } else {
                "Write the state as STREAM messages to resume from it"
            };
            if holds.is_empty() {
                holds.push("nothing".to_owned());
            }
            Some(format!(
                "Ignoring input state message [{index}]: {what} (holding {}), and LEGACY state \
                 is not supported: streams are read as if they had no state, from their start. {fix}",
                holds.join(" and ")
            ))
        })
        .collect()
}

fn global_stream_names(message: &AirbyteStateMessage) -> String {
    let names: Vec<&str> = message
        .global
        .iter()
        .flat_map(|global| &global.stream_states)
        .map(|state| state.stream_descriptor.name.as_str())
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// An object's keys, for a message: `` `a`, `b` ``, the first few only.
fn key_list(object: &Map<String, Value>) -> String {
    const SHOWN: usize = 5;
    let mut keys: Vec<String> = object
        .keys()
        .take(SHOWN)
        .map(|k| format!("`{k}`"))
        .collect();
    if object.len() > SHOWN {
        keys.push(format!("and {} more", object.len() - SHOWN));
    }
    keys.join(", ")
}

fn global_stream_states(
    only: &AirbyteStateMessage,
) -> Result<HashMap<StreamDescriptor, Map<String, Value>>, ProtocolError> {
    let global = only
        .global
        .as_ref()
        .ok_or(ProtocolError::StateFieldMissing {
            index: 0,
            state_type: "GLOBAL",
            field: "global",
        })?;
    if global.shared_state.is_some() {
        return Err(ProtocolError::SharedStateUnsupported);
    }
    Ok(global
        .stream_states
        .iter()
        .map(|state| {
            (
                state.stream_descriptor.clone(),
                state.stream_state.clone().unwrap_or_default(),
            )
        })
        .collect())
}

fn parse_json(document: &'static str, json: &str) -> Result<Value, ProtocolError> {
    serde_json::from_str(json).map_err(|detail| ProtocolError::Syntax { document, detail })
}

fn deserialize_str<T: DeserializeOwned>(
    document: &'static str,
    json: &str,
) -> Result<T, ProtocolError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| shape_or_syntax(document, error))?;
    // Trailing garbage after the document is a syntax error, as in Python's json.loads.
    deserializer
        .end()
        .map_err(|detail| ProtocolError::Syntax { document, detail })?;
    Ok(value)
}

fn deserialize_value<T: DeserializeOwned>(
    document: &'static str,
    value: Value,
) -> Result<T, ProtocolError> {
    serde_path_to_error::deserialize(value).map_err(|error| shape_or_syntax(document, error))
}

fn shape_or_syntax(
    document: &'static str,
    error: serde_path_to_error::Error<serde_json::Error>,
) -> ProtocolError {
    let path = error.path().to_string();
    let detail = error.into_inner();
    if detail.is_syntax() || detail.is_eof() {
        ProtocolError::Syntax { document, detail }
    } else {
        ProtocolError::Shape {
            document,
            path,
            detail,
        }
    }
}

/// Python truthiness of a parsed JSON value: the reference skips a state that is falsy.
fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(entries) => entries.is_empty(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
