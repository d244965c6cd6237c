//! CONTROL messages: a connector asking the platform to persist a new config.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json::omit_top_level_nulls;
use crate::trace::EmittedAt;

/// The kind of a CONTROL message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrchestratorType {
    ConnectorConfig,
}

/// A CONTROL message, e.g. after an OAuth token refresh rotated a refresh token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteControlMessage {
    #[serde(rename = "type")]
    pub control_type: OrchestratorType,
    pub emitted_at: EmittedAt,
    #[serde(
        rename = "connectorConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connector_config: Option<AirbyteControlConnectorConfigMessage>,
}

/// The config the platform should store. Top-level nulls are dropped when written, as the
/// reference does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteControlConnectorConfigMessage {
    #[serde(serialize_with = "omit_top_level_nulls::serialize")]
    pub config: Map<String, Value>,
}
