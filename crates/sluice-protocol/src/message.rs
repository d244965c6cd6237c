//! The envelope: one [`AirbyteMessage`] per output line.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::catalog::{AirbyteCatalog, DestinationCatalog};
use crate::connection_status::{AirbyteConnectionStatus, Status};
use crate::control::{
    AirbyteControlConnectorConfigMessage, AirbyteControlMessage, OrchestratorType,
};
use crate::log::{AirbyteLogMessage, Level};
use crate::record::AirbyteRecordMessage;
use crate::spec::ConnectorSpecification;
use crate::state::{AirbyteStateMessage, StreamDescriptor};
use crate::trace::{
    AirbyteErrorTraceMessage, AirbyteStreamStatus, AirbyteStreamStatusTraceMessage,
    AirbyteTraceMessage, EmittedAt, FailureType,
};

/// The `type` of an [`AirbyteMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    Record,
    State,
    Log,
    Spec,
    ConnectionStatus,
    Catalog,
    Trace,
    Control,
    DestinationCatalog,
}

/// One protocol message. On the wire it is `{"type": "<TYPE>", "<payload key>": {...}}`,
/// e.g. `{"type":"RECORD","record":{...}}` or `{"type":"CONNECTION_STATUS","connectionStatus":{...}}`.
///
/// Reading ignores unknown keys; a message whose payload key is missing is an error.
#[derive(Clone, Debug, PartialEq)]
pub enum AirbyteMessage {
    Record(AirbyteRecordMessage),
    State(AirbyteStateMessage),
    Log(AirbyteLogMessage),
    /// Boxed: a specification is much larger than the other payloads.
    Spec(Box<ConnectorSpecification>),
    ConnectionStatus(AirbyteConnectionStatus),
    Catalog(AirbyteCatalog),
    Trace(AirbyteTraceMessage),
    Control(AirbyteControlMessage),
    DestinationCatalog(DestinationCatalog),
}

impl AirbyteMessage {
    /// A RECORD; `emitted_at_ms` is whole milliseconds since the Unix epoch.
    pub fn record(stream: impl Into<String>, data: Map<String, Value>, emitted_at_ms: i64) -> Self {
        Self::Record(AirbyteRecordMessage::new(stream, data, emitted_at_ms))
    }

    /// A STREAM_STATUS trace. The reference stamps these with fractional milliseconds
    /// ([`EmittedAt::now_fractional`]).
    pub fn stream_status(
        stream: StreamDescriptor,
        status: AirbyteStreamStatus,
        emitted_at: impl Into<EmittedAt>,
    ) -> Self {
        let status = AirbyteStreamStatusTraceMessage {
            stream_descriptor: stream,
            status,
            reasons: None,
        };
        Self::Trace(AirbyteTraceMessage::stream_status(
            status,
            emitted_at.into(),
        ))
    }

    /// An ERROR trace stamped now in whole milliseconds, as the reference stamps them.
    /// Set `stream_descriptor` on the payload to tie the error to a stream.
    pub fn error_trace(
        message: impl Into<String>,
        internal_message: Option<String>,
        failure_type: FailureType,
        stack_trace: Option<String>,
    ) -> Self {
        let error = AirbyteErrorTraceMessage {
            message: message.into(),
            internal_message,
            stack_trace,
            failure_type: Some(failure_type),
            stream_descriptor: None,
        };
        Self::Trace(AirbyteTraceMessage::error(error, EmittedAt::now_millis()))
    }

    /// A LOG message.
    pub fn log(level: Level, message: impl Into<String>) -> Self {
        Self::Log(AirbyteLogMessage {
            level,
            message: message.into(),
            stack_trace: None,
        })
    }

    /// A CONNECTION_STATUS message (the answer to `check`).
    pub fn connection_status(status: Status, message: Option<String>) -> Self {
        Self::ConnectionStatus(AirbyteConnectionStatus { status, message })
    }

    /// A CATALOG message (the answer to `discover`).
    pub fn catalog(catalog: AirbyteCatalog) -> Self {
        Self::Catalog(catalog)
    }

    /// A SPEC message (the answer to `spec`).
    pub fn spec(spec: ConnectorSpecification) -> Self {
        Self::Spec(Box::new(spec))
    }

    /// A per-stream STATE message. The reference's entrypoint always attaches
    /// `sourceStats.recordCount`: the number of records of that stream since its previous
    /// state message, as a float.
    pub fn state_stream(
        stream: StreamDescriptor,
        stream_state: Map<String, Value>,
        record_count: Option<f64>,
    ) -> Self {
        Self::State(AirbyteStateMessage::per_stream(
            stream,
            stream_state,
            record_count,
        ))
    }

    /// A CONTROL message carrying an updated config, stamped now in fractional
    /// milliseconds as the reference stamps them.
    pub fn control_config(config: Map<String, Value>) -> Self {
        Self::Control(AirbyteControlMessage {
            control_type: OrchestratorType::ConnectorConfig,
            emitted_at: EmittedAt::now_fractional(),
            connector_config: Some(AirbyteControlConnectorConfigMessage { config }),
        })
    }

    /// The message's `type`.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Record(_) => MessageType::Record,
            Self::State(_) => MessageType::State,
            Self::Log(_) => MessageType::Log,
            Self::Spec(_) => MessageType::Spec,
            Self::ConnectionStatus(_) => MessageType::ConnectionStatus,
            Self::Catalog(_) => MessageType::Catalog,
            Self::Trace(_) => MessageType::Trace,
            Self::Control(_) => MessageType::Control,
            Self::DestinationCatalog(_) => MessageType::DestinationCatalog,
        }
    }
}

impl MessageType {
    /// The wire spelling, e.g. `"CONNECTION_STATUS"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Record => "RECORD",
            Self::State => "STATE",
            Self::Log => "LOG",
            Self::Spec => "SPEC",
            Self::ConnectionStatus => "CONNECTION_STATUS",
            Self::Catalog => "CATALOG",
            Self::Trace => "TRACE",
            Self::Control => "CONTROL",
            Self::DestinationCatalog => "DESTINATION_CATALOG",
        }
    }

    /// The key that holds this type's payload.
    pub fn payload_key(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::State => "state",
            Self::Log => "log",
            Self::Spec => "spec",
            Self::ConnectionStatus => "connectionStatus",
            Self::Catalog => "catalog",
            Self::Trace => "trace",
            Self::Control => "control",
            Self::DestinationCatalog => "destination_catalog",
        }
    }
}

impl Serialize for AirbyteMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message_type = self.message_type();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", &message_type)?;
        let key = message_type.payload_key();
        match self {
            Self::Record(payload) => map.serialize_entry(key, payload)?,
            Self::State(payload) => map.serialize_entry(key, payload)?,
            Self::Log(payload) => map.serialize_entry(key, payload)?,
            Self::Spec(payload) => map.serialize_entry(key, payload)?,
            Self::ConnectionStatus(payload) => map.serialize_entry(key, payload)?,
            Self::Catalog(payload) => map.serialize_entry(key, payload)?,
            Self::Trace(payload) => map.serialize_entry(key, payload)?,
            Self::Control(payload) => map.serialize_entry(key, payload)?,
            Self::DestinationCatalog(payload) => map.serialize_entry(key, payload)?,
        }
        map.end()
    }
}

/// The wire shape, as the reference models it: a type and one optional field per payload.
#[derive(Deserialize)]
struct WireMessage {
    #[serde(rename = "type")]
    message_type: MessageType,
    log: Option<AirbyteLogMessage>,
    spec: Option<ConnectorSpecification>,
    #[serde(rename = "connectionStatus")]
    connection_status: Option<AirbyteConnectionStatus>,
    catalog: Option<AirbyteCatalog>,
    record: Option<AirbyteRecordMessage>,
    state: Option<AirbyteStateMessage>,
    trace: Option<AirbyteTraceMessage>,
    control: Option<AirbyteControlMessage>,
    destination_catalog: Option<DestinationCatalog>,
}

impl<'de> Deserialize<'de> for AirbyteMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireMessage::deserialize(deserializer)?;
        let message_type = wire.message_type;
        let message = match message_type {
            MessageType::Record => wire.record.map(Self::Record),
            MessageType::State => wire.state.map(Self::State),
            MessageType::Log => wire.log.map(Self::Log),
            MessageType::Spec => wire.spec.map(|spec| Self::Spec(Box::new(spec))),
            MessageType::ConnectionStatus => wire.connection_status.map(Self::ConnectionStatus),
            MessageType::Catalog => wire.catalog.map(Self::Catalog),
            MessageType::Trace => wire.trace.map(Self::Trace),
            MessageType::Control => wire.control.map(Self::Control),
            MessageType::DestinationCatalog => {
                wire.destination_catalog.map(Self::DestinationCatalog)
            }
        };
        message.ok_or_else(|| {
            D::Error::custom(format_args!(
                "a {} message needs a `{}` object",
                message_type.as_str(),
                message_type.payload_key()
            ))
        })
    }
}
