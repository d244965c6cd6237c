//! STATE messages: checkpoints the platform stores and hands back on the next sync.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json::omit_top_level_nulls;

/// Names a stream: its name and optional namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl StreamDescriptor {
    /// A descriptor without namespace, the usual case for API sources.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: None,
        }
    }

    /// A descriptor with an optional namespace.
    pub fn with_namespace(name: impl Into<String>, namespace: Option<String>) -> Self {
        Self {
            name: name.into(),
            namespace,
        }
    }
}

/// Which of a state message's fields carries the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AirbyteStateType {
    /// One state for all streams plus per-stream states, in `global`.
    Global,
    /// One stream's state, in `stream`.
    Stream,
    /// The deprecated whole-source blob, in `data`.
    Legacy,
}

/// One stream's state. `stream_state` is opaque: every key is kept, nulls included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStreamState {
    pub stream_descriptor: StreamDescriptor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_state: Option<Map<String, Value>>,
}

/// A GLOBAL state: a shared blob plus the states of each stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteGlobalState {
    pub stream_states: Vec<AirbyteStreamState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<Map<String, Value>>,
}

/// Counters attached to a state message.
///
/// `recordCount` is a float in the protocol and in the reference's output (`12.0`). The
/// reference model has no `rejectedRecordCount`, so that field is not read or written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStateStats {
    #[serde(
        rename = "recordCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_count: Option<f64>,
}

/// A state message. Which field is set depends on `state_type` (absent means LEGACY).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStateMessage {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub state_type: Option<AirbyteStateType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<AirbyteStreamState>,
    #[serde(rename = "global", default, skip_serializing_if = "Option::is_none")]
    pub global: Option<AirbyteGlobalState>,
    /// The deprecated LEGACY blob. The reference types it as a plain dict, so top-level
    /// nulls are dropped when it is written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub data: Option<Map<String, Value>>,
    #[serde(
        rename = "sourceStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_stats: Option<AirbyteStateStats>,
    #[serde(
        rename = "destinationStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_stats: Option<AirbyteStateStats>,
}

impl AirbyteStateMessage {
    /// A STREAM state message for one stream, optionally with `sourceStats.recordCount`.
    pub fn per_stream(
        stream_descriptor: StreamDescriptor,
        stream_state: Map<String, Value>,
        record_count: Option<f64>,
    ) -> Self {
        Self {
            state_type: Some(AirbyteStateType::Stream),
            stream: Some(AirbyteStreamState {
                stream_descriptor,
                stream_state: Some(stream_state),
            }),
            source_stats: record_count.map(|count| AirbyteStateStats {
                record_count: Some(count),
            }),
            ..Self::default()
        }
    }

    /// A LEGACY state message wrapping a whole-source blob.
    pub fn legacy(data: Map<String, Value>) -> Self {
        Self {
            state_type: Some(AirbyteStateType::Legacy),
            data: Some(data),
            ..Self::default()
        }
    }

    /// The stream this message is about: the descriptor of a STREAM state, `None` otherwise.
    pub fn stream_descriptor(&self) -> Option<&StreamDescriptor> {
        self.stream.as_ref().map(|stream| &stream.stream_descriptor)
    }
}
