//! The read loop: stream statuses, records and state, in the reference's order.

use crate::stream::{Flow, Stream};
use crate::{EngineError, MessageWriter};
use serde_json::{Map, Value};
use sluice_protocol::{
    AirbyteMessage, AirbyteStateMessage, AirbyteStreamStatus, ConfiguredAirbyteCatalog, EmittedAt,
    StreamDescriptor,
};
use std::io::Write;

/// Reads the first record of a stream (for `check`); an empty stream is fine.
pub(crate) async fn first_record(stream: &Stream) -> Result<(), EngineError> {
    let no_slice = Value::Object(Map::new());
    stream.read_records(&no_slice, |_| Ok(Flow::Stop)).await
}

/// Reads every configured stream, then fails if any stream failed, naming them all.
pub(crate) async fn read<W: Write + Send + 'static>(
    streams: &[Stream],
    catalog: &ConfiguredAirbyteCatalog,
    _state: &[AirbyteStateMessage],
    out: &mut MessageWriter<W>,
) -> Result<(), EngineError> {
    let mut failures: Vec<(String, EngineError)> = Vec::new();
    tracing::info!("Starting syncing");
    for configured in &catalog.streams {
        let name = &configured.stream.name;
        let Some(stream) = streams.iter().find(|s| &s.name == name) else {
            let error = EngineError::config(format!(
                "The stream '{name}' in the catalog is not in the manifest"
            ));
            emit(out, &stream_error(name, &error))?;
            failures.push((name.clone(), error));
            continue;
        };
        if let Some(error) = read_stream(stream, out).await? {
            failures.push((name.clone(), error));
        }
    }
    if failures.is_empty() {
        tracing::info!("Finished syncing");
        return Ok(());
    }
    let names: Vec<String> = failures
        .iter()
        .map(|(name, e)| {
            format!(
                "{name}: {}",
                e.internal_message.as_deref().unwrap_or(&e.message)
            )
        })
        .collect();
    // Each stream's own ERROR trace carries its failure type; like the reference, the closing
    // error that makes the exit code non-zero is a config_error, as it is not actionable itself.
    let message = format!(
        "During the sync, the following streams did not sync successfully: {}",
        names.join(", ")
    );
    tracing::info!("{message}");
    Err(EngineError::config(message))
}

/// Reads one stream. The outer error is fatal (stdout is gone); the inner one is the stream's
/// failure, already reported, after which the sync goes on with the next stream.
async fn read_stream<W: Write + Send + 'static>(
    stream: &Stream,
    out: &mut MessageWriter<W>,
) -> Result<Option<EngineError>, EngineError> {
    let descriptor = StreamDescriptor::new(&stream.name);
    tracing::info!("Marking stream {} as STARTED", stream.name);
    tracing::info!("Syncing stream: {}", stream.name);
    emit(out, &status(&descriptor, AirbyteStreamStatus::Started))?;
    let mut count: u64 = 0;
    let mut write_error = None;
    let no_slice = Value::Object(Map::new());
    let result = stream
        .read_records(&no_slice, |record| {
            if count == 0 {
                tracing::info!("Marking stream {} as RUNNING", stream.name);
                if let Err(e) = out.message(&status(&descriptor, AirbyteStreamStatus::Running)) {
                    write_error = Some(e);
                    return Ok(Flow::Stop);
                }
            }
            count += 1;
            match out.record_data(&stream.name, record) {
                Ok(()) => Ok(Flow::Continue),
                Err(e) => {
                    write_error = Some(e);
                    Ok(Flow::Stop)
                }
            }
        })
        .await;
    if let Some(e) = write_error {
        return Err(write_failure(e));
    }
    let no_cursor = no_cursor_state();
    if let Err(error) = &result {
        tracing::error!("Exception while syncing stream {}: {}", stream.name, error);
    }
    tracing::info!("Read {count} records from {} stream", stream.name);
    tracing::info!("Marking stream {} as STOPPED", stream.name);
    tracing::info!("Finished syncing {}", stream.name);
    match result {
        Ok(()) => {
            emit(out, &status(&descriptor, AirbyteStreamStatus::Complete))?;
            emit(
                out,
                &AirbyteMessage::state_stream(descriptor, no_cursor, Some(count as f64)),
            )?;
            Ok(None)
        }
        Err(error) => {
            emit(out, &stream_error(&stream.name, &error))?;
            emit(out, &status(&descriptor, AirbyteStreamStatus::Incomplete))?;
            emit(
                out,
                &AirbyteMessage::state_stream(descriptor, no_cursor, Some(count as f64)),
            )?;
            Ok(Some(error))
        }
    }
}

/// The state the reference gives a stream without a cursor.
fn no_cursor_state() -> Map<String, Value> {
    let mut state = Map::new();
    state.insert("__ab_no_cursor_state_message".to_owned(), Value::Bool(true));
    state
}

fn status(descriptor: &StreamDescriptor, status: AirbyteStreamStatus) -> AirbyteMessage {
    AirbyteMessage::stream_status(descriptor.clone(), status, EmittedAt::now_fractional())
}

fn stream_error(stream: &str, error: &EngineError) -> AirbyteMessage {
    let mut message = AirbyteMessage::error_trace(
        error.message.clone(),
        error.internal_message.clone(),
        error.failure_type,
        None,
    );
    if let AirbyteMessage::Trace(trace) = &mut message {
        if let Some(e) = trace.error.as_mut() {
            e.stream_descriptor = Some(StreamDescriptor::new(stream));
        }
    }
    message
}

fn emit<W: Write + Send + 'static>(
    out: &mut MessageWriter<W>,
    message: &AirbyteMessage,
) -> Result<(), EngineError> {
    out.message(message).map_err(write_failure)
}

fn write_failure(error: std::io::Error) -> EngineError {
    EngineError::system(format!("cannot write to stdout: {error}"))
}
