//! RECORD messages.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json::omit_top_level_nulls;

/// One record of one stream.
///
/// `data` keeps the API's key order. Like the reference, its top-level `null` entries are
/// left out when it is written; nested nulls stay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteRecordMessage {
    pub stream: String,
    #[serde(serialize_with = "omit_top_level_nulls::serialize")]
    pub data: Map<String, Value>,
    /// Milliseconds since the Unix epoch (an integer in the protocol and the reference).
    pub emitted_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<AirbyteRecordMessageMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_reference: Option<AirbyteRecordMessageFileReference>,
}

impl AirbyteRecordMessage {
    /// A record with only the required fields set.
    pub fn new(stream: impl Into<String>, data: Map<String, Value>, emitted_at_ms: i64) -> Self {
        Self {
            stream: stream.into(),
            data,
            emitted_at: emitted_at_ms,
            namespace: None,
            meta: None,
            file_reference: None,
        }
    }
}

/// Changes made to a record during the sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteRecordMessageMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<AirbyteRecordMessageMetaChange>>,
}

/// One change made to one field of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteRecordMessageMetaChange {
    pub field: String,
    pub change: RecordChange,
    pub reason: RecordChangeReason,
}

/// What happened to the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordChange {
    Nulled,
    Truncated,
}

/// Why the field changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordChangeReason {
    SourceRecordSizeLimitation,
    DestinationRecordSizeLimitation,
    PlatformRecordSizeLimitation,
    SourceFieldSizeLimitation,
    DestinationFieldSizeLimitation,
    PlatformFieldSizeLimitation,
    SourceSerializationError,
    DestinationSerializationError,
    PlatformSerializationError,
    SourceRetrievalError,
    DestinationTypecastError,
}

/// Where the file a file-based record describes was staged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteRecordMessageFileReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file_relative_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size_bytes: Option<i64>,
}
