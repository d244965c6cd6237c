//! The read loop: stream statuses, records and state, in the reference's order.

use crate::build::StreamSlot;
use crate::slicing::{CursorSpec, SliceReader};
use crate::stream::{Delegation, Stream};
use crate::{EngineError, MessageWriter};
use serde_json::{Map, Value};
use sluice_protocol::{
    AirbyteMessage, AirbyteStateMessage, AirbyteStreamStatus, ConfiguredAirbyteCatalog, EmittedAt,
    StreamDescriptor,
};
use sluice_slice::SliceProgress;
use std::io::Write;

/// Reads the first record of a stream (for `check`): the first page of its first slice; an
/// empty stream is fine.
pub(crate) async fn first_record(stream: &Stream) -> Result<(), EngineError> {
    let mut reader = SliceReader::new(stream, &Map::new()).await?;
    let Some(slice) = reader.next_slice().await? else {
        return Ok(());
    };
    let mut pages = reader.pages(&slice);
    reader.next_page(&mut pages, &slice).await?;
    Ok(())
}

/// Reads every configured stream, then fails if any stream failed, naming them all.
pub(crate) async fn read<W: Write + Send + 'static>(
    streams: &[StreamSlot],
    unbuilt_dynamic_streams: &[String],
    checkpoint_every: Option<u64>,
    catalog: &ConfiguredAirbyteCatalog,
    state: &[AirbyteStateMessage],
    out: &mut MessageWriter<W>,
) -> Result<(), EngineError> {
    let states = sluice_protocol::per_stream_states(state)
        .map_err(|e| EngineError::config(format!("the input state cannot be used: {e}")))?;
    // Ignored as the reference ignores them, but never silently: the sync restarts from scratch.
    for warning in sluice_protocol::ignored_state_messages(state) {
        tracing::warn!("{warning}");
    }
    let no_state = Map::new();
    let mut failures: Vec<(String, EngineError)> = Vec::new();
    tracing::info!("Starting syncing");
    for configured in &catalog.streams {
        let name = &configured.stream.name;
        let stream = match streams.iter().find(|s| s.name() == name) {
            Some(StreamSlot::Ready(stream)) => stream,
            Some(StreamSlot::Unrunnable(unrunnable)) => {
                let descriptor = StreamDescriptor::new(name);
                emit(out, &status(&descriptor, AirbyteStreamStatus::Started))?;
                emit(out, &stream_error(name, &unrunnable.error))?;
                emit(out, &status(&descriptor, AirbyteStreamStatus::Incomplete))?;
                failures.push((name.clone(), unrunnable.error.clone()));
                continue;
            }
            None => {
                let error = if unbuilt_dynamic_streams.is_empty() {
                    EngineError::config(format!(
                        "The stream '{name}' in the catalog is not in the manifest"
                    ))
                } else {
                    EngineError::config(format!(
                        "The stream '{name}' in the catalog is not among the manifest's streams; its dynamic_streams may make it, but sluice cannot run them: {}",
                        unbuilt_dynamic_streams.join("; ")
                    ))
                };
                emit(out, &stream_error(name, &error))?;
                failures.push((name.clone(), error));
                continue;
            }
        };
        let state = states
            .get(&StreamDescriptor::new(name))
            .unwrap_or(&no_state);
        let cursor_field = configured.cursor_field.as_deref().unwrap_or_default();
        if let Some(error) = read_stream(stream, state, cursor_field, checkpoint_every, out).await?
        {
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
/// failure, already reported, after which the sync goes on with the next stream. A slice that
/// fails is reported and the stream's other slices are still read; its state never moves past
/// the failed slice.
async fn read_stream<W: Write + Send + 'static>(
    stream: &Stream,
    state: &Map<String, Value>,
    catalog_cursor_field: &[String],
    checkpoint_every: Option<u64>,
    out: &mut MessageWriter<W>,
) -> Result<Option<EngineError>, EngineError> {
    let no_state = Map::new();
    let (stream, state) = match &stream.with_state {
        Some(delegation) if !state.is_empty() => {
            if is_past_retention(stream, delegation, state) {
                // As the reference does: the old state is dropped (and says so with an empty
                // STATE), and the full refresh stream is read again.
                tracing::warn!(
                    "Stream '{}' has a cursor value older than the API's retention period. Falling back to full refresh to avoid data loss.",
                    stream.name
                );
                let descriptor = StreamDescriptor::new(&stream.name);
                emit(
                    out,
                    &AirbyteMessage::state_stream(descriptor, Map::new(), Some(0.0)),
                )?;
                (stream, &no_state)
            } else {
                (&*delegation.incremental, state)
            }
        }
        _ => (stream, state),
    };
    let descriptor = StreamDescriptor::new(&stream.name);
    tracing::info!("Marking stream {} as STARTED", stream.name);
    tracing::info!("Syncing stream: {}", stream.name);
    emit(out, &status(&descriptor, AirbyteStreamStatus::Started))?;
    let cursor_spec = match catalog_cursor_field {
        // An empty name means no cursor chosen (the platform writes `[""]` for that).
        [] => Ok(None),
        [field] if field.is_empty() => Ok(None),
        [field] => Ok(stream.slicing.cursor.with_catalog_cursor_field(field)),
        _ if stream.slicing.cursor.catalog_may_choose_cursor_field() => {
            Err(EngineError::config(format!(
                "The `{}` stream does not support nested cursor_field. Please specify only a single cursor_field for the stream in the configured catalog.",
                stream.name
            )))
        }
        _ => Ok(None),
    };
    let reader = match cursor_spec {
        Ok(cursor_spec) => SliceReader::with_cursor(stream, state, cursor_spec.as_ref()).await,
        Err(error) => Err(error),
    };
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(error) => {
            tracing::error!("Exception while syncing stream {}: {}", stream.name, error);
            emit(out, &stream_error(&stream.name, &error))?;
            emit(out, &status(&descriptor, AirbyteStreamStatus::Incomplete))?;
            return Ok(Some(error));
        }
    };
    let cursor_field = reader.cursor.field().map(str::to_owned);
    let mut total: u64 = 0;
    let mut since_state: u64 = 0;
    let mut failure: Option<EngineError> = None;
    loop {
        let slice = match reader.next_slice().await {
            Ok(Some(slice)) => slice,
            Ok(None) => break,
            Err(error) => {
                emit(out, &stream_error(&stream.name, &error))?;
                failure = Some(error);
                break;
            }
        };
        let mut pages = reader.pages(&slice);
        let mut progress = SliceProgress::default();
        let mut in_slice: u64 = 0;
        let mut checkpoints = checkpoint_every;
        let slice_key = reader.cursor.slice_key(&slice);
        let read = loop {
            let records = match reader.next_page(&mut pages, &slice).await {
                Ok(Some(records)) => records,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            for record in records {
                if let Some(field) = &cursor_field {
                    let cursor = &mut reader.cursor;
                    record.with_field(field, |record| {
                        cursor.observe(&slice_key, &mut progress, record)
                    });
                }
                if total == 0 {
                    tracing::info!("Marking stream {} as RUNNING", stream.name);
                    emit(out, &status(&descriptor, AirbyteStreamStatus::Running))?;
                }
                total += 1;
                since_state += 1;
                in_slice += 1;
                out.record_data(&stream.name, record)
                    .map_err(write_failure)?;
                if checkpoints.is_some_and(|every| in_slice % every == 0) {
                    if progress.out_of_order {
                        let window = serde_json::to_string(&slice.cursor_slice).unwrap_or_default();
                        tracing::warn!(
                            "Records of stream {} are not in ascending order of its cursor in slice {window}: no more checkpoints inside this slice",
                            stream.name
                        );
                        checkpoints = None;
                    } else if let Some(state) = reader.cursor.checkpoint(&slice, &progress) {
                        let message = AirbyteMessage::state_stream(
                            descriptor.clone(),
                            state,
                            Some(since_state as f64),
                        );
                        emit(out, &message)?;
                        since_state = 0;
                    }
                }
            }
            out.send_records().map_err(write_failure)?;
        };
        let closed = read.and_then(|()| reader.cursor.close(&slice, &progress));
        match closed {
            Ok(Some(state)) => {
                emit(
                    out,
                    &AirbyteMessage::state_stream(
                        descriptor.clone(),
                        state,
                        Some(since_state as f64),
                    ),
                )?;
                since_state = 0;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!("Exception while syncing stream {}: {}", stream.name, error);
                emit(out, &stream_error(&stream.name, &error))?;
                failure = Some(error);
            }
        }
    }
    tracing::info!("Read {total} records from {} stream", stream.name);
    tracing::info!("Marking stream {} as STOPPED", stream.name);
    tracing::info!("Finished syncing {}", stream.name);
    let final_status = match failure {
        None => AirbyteStreamStatus::Complete,
        Some(_) => AirbyteStreamStatus::Incomplete,
    };
    emit(out, &status(&descriptor, final_status))?;
    let final_state = reader.final_state();
    emit(
        out,
        &AirbyteMessage::state_stream(descriptor, final_state, Some(since_state as f64)),
    )?;
    Ok(failure)
}

/// Whether a `StateDelegatingStream`'s state is older than its `api_retention_period` (or has
/// no readable cursor, which counts as older, as in the reference).
fn is_past_retention(
    full_refresh: &Stream,
    delegation: &Delegation,
    state: &Map<String, Value>,
) -> bool {
    let Some(retention) = delegation.retention else {
        return false;
    };
    // The full refresh stream's cursor reads the state first: a completed full refresh counts
    // as current.
    let read_time = |cursor: &CursorSpec| match cursor {
        CursorSpec::None => state
            .get("__ab_no_cursor_state_message")
            .is_some_and(sluice_interp::is_truthy)
            .then(now_utc),
        CursorSpec::Datetime(spec) => spec.state_datetime(state),
        CursorSpec::Count(_) => None,
    };
    let cursor_time = read_time(&full_refresh.slicing.cursor)
        .or_else(|| read_time(&delegation.incremental.slicing.cursor));
    match (cursor_time, retention.sub_from(now_utc())) {
        (Some(cursor), Ok(cutoff)) => cursor < cutoff,
        _ => true,
    }
}

fn now_utc() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
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
