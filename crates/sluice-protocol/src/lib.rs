//! Airbyte protocol messages and catalogs, read and written exactly as the Python reference
//! (`airbyte-cdk` 7.x) reads and writes them. Serde types only; no I/O.
//!
//! * [`AirbyteMessage`] is one output line: RECORD, STATE, LOG, SPEC, CONNECTION_STATUS,
//!   CATALOG, TRACE, CONTROL (and DESTINATION_CATALOG). Its constructors build the messages
//!   a source emits.
//! * [`to_json_string`] / [`write_message_json`] print a message byte for byte like the
//!   reference (key order, omitted `None` fields, orjson's float spelling, dropped top-level
//!   nulls of dict fields; see [`json`]). [`write_record_json`] is the fast path
//!   for RECORD lines and writes the same bytes without building a message;
//!   [`classify_as_sent`] tells when a record's JSON, as an API sent it, is already those bytes
//!   (so [`write_record_json_as_sent`] can copy it without parsing), or is sure to parse.
//! * [`parse_config`], [`parse_configured_catalog`], [`parse_input_state`] and
//!   [`per_stream_states`] read the platform's inputs: unknown keys are ignored, unknown enum
//!   values are errors naming their path.
//!
//! Numbers keep the reference's kinds: record `emitted_at` is an integer, `recordCount` a
//! float, and trace/control `emitted_at` either ([`EmittedAt`]).
//!
//! ```
//! use serde_json::json;
//! use sluice_protocol::{
//!     AirbyteMessage, AirbyteStreamStatus, StreamDescriptor, SyncMode, parse_configured_catalog,
//!     parse_input_state, per_stream_states, to_json_string, write_record_json,
//! };
//!
//! let catalog = parse_configured_catalog(
//!     r#"{"streams": [{"stream": {"name": "users", "json_schema": {},
//!         "supported_sync_modes": ["incremental"], "added_by_a_newer_platform": 1},
//!         "sync_mode": "incremental", "destination_sync_mode": "append"}]}"#,
//! )?;
//! assert_eq!(catalog.streams[0].sync_mode, SyncMode::Incremental);
//!
//! let state = parse_input_state(
//!     r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"},
//!         "stream_state": {"updated_at": "2024-01-01"}}}]"#,
//! )?;
//! let states = per_stream_states(&state)?;
//! assert_eq!(states[&StreamDescriptor::new("users")]["updated_at"], "2024-01-01");
//!
//! let data = json!({"id": 1, "email": null, "score": 1e16});
//! let mut line = Vec::new();
//! write_record_json(&mut line, "users", &data, 1700000000000)?;
//! assert_eq!(
//!     String::from_utf8(line)?,
//!     r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"score":1e+16},"emitted_at":1700000000000}}"#
//! );
//!
//! let status = AirbyteMessage::stream_status(
//!     StreamDescriptor::new("users"),
//!     AirbyteStreamStatus::Complete,
//!     1700000000000.5,
//! );
//! assert_eq!(
//!     to_json_string(&status),
//!     r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1700000000000.5,"stream_status":{"stream_descriptor":{"name":"users"},"status":"COMPLETE"}}}"#
//! );
//!
//! let checkpoint = AirbyteMessage::state_stream(
//!     StreamDescriptor::new("users"),
//!     json!({"updated_at": "2024-02-01"}).as_object().cloned().unwrap_or_default(),
//!     Some(2.0),
//! );
//! assert_eq!(
//!     to_json_string(&checkpoint),
//!     r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},"stream_state":{"updated_at":"2024-02-01"}},"sourceStats":{"recordCount":2.0}}}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod as_sent;
mod catalog;
mod connection_status;
mod control;
mod input;
pub mod json;
mod log;
mod message;
mod record;
mod spec;
mod state;
mod trace;

pub use as_sent::{
    AsSent, RecordScanner, SentEntry, classify_as_sent, prints_as_sent, write_record_json_as_sent,
};
pub use catalog::{
    AirbyteCatalog, AirbyteStream, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream,
    DestinationCatalog, DestinationOperation, DestinationSyncMode, SyncMode,
};
pub use connection_status::{AirbyteConnectionStatus, Status};
pub use control::{AirbyteControlConnectorConfigMessage, AirbyteControlMessage, OrchestratorType};
pub use input::{
    ProtocolError, ignored_state_messages, parse_config, parse_configured_catalog,
    parse_input_state, parse_message, per_stream_states,
};
pub use json::{
    ReferenceFormatter, to_json_string, write_json_str, write_message_json, write_record_json,
};
pub use log::{AirbyteLogMessage, Level};
pub use message::{AirbyteMessage, MessageType};
pub use record::{
    AirbyteRecordMessage, AirbyteRecordMessageFileReference, AirbyteRecordMessageMeta,
    AirbyteRecordMessageMetaChange, RecordChange, RecordChangeReason,
};
pub use spec::{
    AdvancedAuth, AuthFlowType, AuthSpecification, AuthType, ConnectorSpecification,
    OAuth2Specification, OAuthConfigSpecification, OAuthConnectorInputSpecification,
    OAuthStateSpecification, RootObjectStep,
};
pub use state::{
    AirbyteGlobalState, AirbyteStateMessage, AirbyteStateStats, AirbyteStateType,
    AirbyteStreamState, StreamDescriptor,
};
pub use trace::{
    AirbyteAnalyticsTraceMessage, AirbyteErrorTraceMessage, AirbyteEstimateTraceMessage,
    AirbyteStreamStatus, AirbyteStreamStatusRateLimitedReason, AirbyteStreamStatusReason,
    AirbyteStreamStatusReasonType, AirbyteStreamStatusTraceMessage, AirbyteTraceMessage, EmittedAt,
    EstimateType, FailureType, TraceType, now_millis,
};
