//! TRACE messages (errors, estimates, stream statuses, analytics) and their timestamps.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::state::StreamDescriptor;

/// A `emitted_at` of a TRACE or CONTROL message, in milliseconds since the Unix epoch.
///
/// The protocol types it as a number and the reference writes both kinds: ERROR traces carry
/// whole milliseconds (`1795503023804`), while STREAM_STATUS, CONTROL and ANALYTICS messages
/// carry fractional ones (`1795503023804.982`). Keeping the kind keeps the output identical.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EmittedAt {
    /// Whole milliseconds, written as a JSON integer.
    Millis(i64),
    /// Fractional milliseconds, written as a JSON float (always with a `.`).
    FractionalMillis(f64),
}

impl EmittedAt {
    /// Now, in whole milliseconds (as the reference stamps ERROR traces and records).
    pub fn now_millis() -> Self {
        Self::Millis(now_millis())
    }

    /// Now, in fractional milliseconds with microsecond resolution (as the reference stamps
    /// STREAM_STATUS traces and CONTROL messages).
    pub fn now_fractional() -> Self {
        let micros = since_epoch().as_micros() as f64;
        // Seconds first, then milliseconds: the reference computes `timestamp() * 1000`, and
        // going through seconds gives the same rounding of the last digits.
        Self::FractionalMillis(micros / 1_000_000.0 * 1000.0)
    }

    /// The value as a float of milliseconds, whatever its kind.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Millis(millis) => millis as f64,
            Self::FractionalMillis(millis) => millis,
        }
    }
}

/// Milliseconds since the Unix epoch, as record `emitted_at` values are.
pub fn now_millis() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

fn since_epoch() -> std::time::Duration {
    // A clock before 1970 is a broken host; zero keeps messages well-formed instead of panicking.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl From<i64> for EmittedAt {
    fn from(millis: i64) -> Self {
        Self::Millis(millis)
    }
}

impl From<f64> for EmittedAt {
    fn from(millis: f64) -> Self {
        Self::FractionalMillis(millis)
    }
}

impl Serialize for EmittedAt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Millis(millis) => serializer.serialize_i64(millis),
            Self::FractionalMillis(millis) => serializer.serialize_f64(millis),
        }
    }
}

impl<'de> Deserialize<'de> for EmittedAt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EmittedAtVisitor;

        impl Visitor<'_> for EmittedAtVisitor {
            type Value = EmittedAt;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a number of milliseconds since the Unix epoch")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<EmittedAt, E> {
                Ok(EmittedAt::Millis(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<EmittedAt, E> {
                Ok(i64::try_from(value)
                    .map(EmittedAt::Millis)
                    .unwrap_or(EmittedAt::FractionalMillis(value as f64)))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<EmittedAt, E> {
                Ok(EmittedAt::FractionalMillis(value))
            }
        }

        deserializer.deserialize_any(EmittedAtVisitor)
    }
}

/// The kind of a TRACE message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceType {
    Error,
    Estimate,
    StreamStatus,
    Analytics,
}

/// A TRACE message; the field matching `trace_type` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteTraceMessage {
    #[serde(rename = "type")]
    pub trace_type: TraceType,
    pub emitted_at: EmittedAt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AirbyteErrorTraceMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<AirbyteEstimateTraceMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<AirbyteStreamStatusTraceMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<AirbyteAnalyticsTraceMessage>,
}

impl AirbyteTraceMessage {
    fn empty(trace_type: TraceType, emitted_at: EmittedAt) -> Self {
        Self {
            trace_type,
            emitted_at,
            error: None,
            estimate: None,
            stream_status: None,
            analytics: None,
        }
    }

    /// An ERROR trace.
    pub fn error(error: AirbyteErrorTraceMessage, emitted_at: EmittedAt) -> Self {
        Self {
            error: Some(error),
            ..Self::empty(TraceType::Error, emitted_at)
        }
    }

    /// An ESTIMATE trace.
    pub fn estimate(estimate: AirbyteEstimateTraceMessage, emitted_at: EmittedAt) -> Self {
        Self {
            estimate: Some(estimate),
            ..Self::empty(TraceType::Estimate, emitted_at)
        }
    }

    /// A STREAM_STATUS trace.
    pub fn stream_status(status: AirbyteStreamStatusTraceMessage, emitted_at: EmittedAt) -> Self {
        Self {
            stream_status: Some(status),
            ..Self::empty(TraceType::StreamStatus, emitted_at)
        }
    }

    /// An ANALYTICS trace.
    pub fn analytics(analytics: AirbyteAnalyticsTraceMessage, emitted_at: EmittedAt) -> Self {
        Self {
            analytics: Some(analytics),
            ..Self::empty(TraceType::Analytics, emitted_at)
        }
    }
}

/// Who is to blame for an error, which drives the platform's retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    SystemError,
    ConfigError,
    TransientError,
}

/// The payload of an ERROR trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteErrorTraceMessage {
    /// For the user.
    pub message: String,
    /// For the developer: the underlying error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_descriptor: Option<StreamDescriptor>,
}

/// Whether an estimate is for one stream or the whole sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EstimateType {
    Stream,
    Sync,
}

/// The payload of an ESTIMATE trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirbyteEstimateTraceMessage {
    pub name: String,
    #[serde(rename = "type")]
    pub estimate_type: EstimateType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_estimate: Option<i64>,
}

/// Where a stream is in its sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AirbyteStreamStatus {
    Started,
    Running,
    Complete,
    Incomplete,
}

/// Why a stream has its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AirbyteStreamStatusReasonType {
    RateLimited,
}

/// Details of a rate-limited stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteStreamStatusRateLimitedReason {
    /// When the quota resets, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_reset: Option<i64>,
}

/// One reason attached to a stream status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteStreamStatusReason {
    #[serde(rename = "type")]
    pub reason_type: AirbyteStreamStatusReasonType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<AirbyteStreamStatusRateLimitedReason>,
}

/// The payload of a STREAM_STATUS trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteStreamStatusTraceMessage {
    pub stream_descriptor: StreamDescriptor,
    pub status: AirbyteStreamStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<AirbyteStreamStatusReason>>,
}

/// The payload of an ANALYTICS trace: a static event name and an optional value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirbyteAnalyticsTraceMessage {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
