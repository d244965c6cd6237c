//! Catalogs: what a source offers (`discover`) and what the platform asks it to read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json::omit_top_level_nulls;

/// How a stream is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

/// How a destination writes a stream. Sources only pass it through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    Append,
    Overwrite,
    AppendDedup,
    Update,
    SoftDelete,
}

/// One stream as a source describes it in its catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStream {
    pub name: String,
    #[serde(serialize_with = "omit_top_level_nulls::serialize")]
    pub json_schema: Map<String, Value>,
    pub supported_sync_modes: Vec<SyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defined_cursor: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defined_primary_key: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_resumable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_file_based: Option<bool>,
}

impl AirbyteStream {
    /// A stream with only the required fields set.
    pub fn new(
        name: impl Into<String>,
        json_schema: Map<String, Value>,
        supported_sync_modes: Vec<SyncMode>,
    ) -> Self {
        Self {
            name: name.into(),
            json_schema,
            supported_sync_modes,
            source_defined_cursor: None,
            default_cursor_field: None,
            source_defined_primary_key: None,
            namespace: None,
            is_resumable: None,
            is_file_based: None,
        }
    }
}

/// The answer to `discover`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteCatalog {
    pub streams: Vec<AirbyteStream>,
}

/// One stream the platform asks the source to read, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredAirbyteStream {
    pub stream: AirbyteStream,
    pub sync_mode: SyncMode,
    pub destination_sync_mode: DestinationSyncMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_object_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_files: Option<bool>,
}

impl ConfiguredAirbyteStream {
    /// A configured stream with only the required fields set.
    pub fn new(
        stream: AirbyteStream,
        sync_mode: SyncMode,
        destination_sync_mode: DestinationSyncMode,
    ) -> Self {
        Self {
            stream,
            sync_mode,
            destination_sync_mode,
            cursor_field: None,
            destination_object_name: None,
            primary_key: None,
            generation_id: None,
            minimum_generation_id: None,
            sync_id: None,
            include_files: None,
        }
    }
}

/// The catalog given to `read`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredAirbyteCatalog {
    pub streams: Vec<ConfiguredAirbyteStream>,
}

impl ConfiguredAirbyteCatalog {
    /// The configured stream with this name and namespace, if the catalog has it.
    pub fn stream(&self, name: &str, namespace: Option<&str>) -> Option<&ConfiguredAirbyteStream> {
        self.streams.iter().find(|configured| {
            configured.stream.name == name && configured.stream.namespace.as_deref() == namespace
        })
    }
}

/// A destination's catalog (`DESTINATION_CATALOG` messages); sources never emit it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationCatalog {
    pub operations: Vec<DestinationOperation>,
}

/// One operation a destination can perform on one of its objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationOperation {
    pub object_name: String,
    pub sync_mode: DestinationSyncMode,
    #[serde(serialize_with = "omit_top_level_nulls::serialize")]
    pub json_schema: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_keys: Option<Vec<Vec<String>>>,
}
