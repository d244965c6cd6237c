//! The read loop: stream statuses, records and state, in the reference's order.

use crate::build::StreamSlot;
use crate::groups::StreamGroups;
use crate::output::RecordData;
use crate::progress::{ReadProgress, StreamProgress};
use crate::slicing::{CursorSpec, SlicePages, SliceReader};
use crate::stream::{Delegation, Stream};
use crate::{EngineError, MessageWriter};
use futures_util::future::join_all;
use futures_util::stream::{self, FuturesUnordered, StreamExt};
use serde_json::{Map, Value};
use sluice_protocol::{
    AirbyteMessage, AirbyteStateMessage, AirbyteStreamStatus, ConfiguredAirbyteCatalog, EmittedAt,
    StreamDescriptor,
};
use sluice_slice::{SliceProgress, StreamSlice};
use std::cell::RefCell;
use std::io::Write;
use std::pin::pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Reads the first record of a stream (for `check`): the first page of its first slice; an
/// empty slice is fine, a stream without any slice is not (as in the reference).
pub(crate) async fn first_record(stream: &Stream) -> Result<(), EngineError> {
    let (reader, mut source) = SliceReader::open(stream, &Map::new()).await?;
    let Some(slice) = source.next_slice(&reader).await? else {
        return Err(EngineError::config(format!(
            "Cannot attempt to connect to stream {} - no stream slices were found",
            stream.name
        )));
    };
    let mut pages = reader.pages(&slice);
    let key = reader.cursor().slice_key(&slice);
    reader.next_page(&mut pages, &key).await?;
    Ok(())
}

/// How a sync runs, the same for every stream.
#[derive(Debug, Clone)]
pub(crate) struct ReadOptions {
    /// How many partitions are read at once, across all streams.
    pub concurrency: usize,
    /// `--checkpoint-every`.
    pub checkpoint_every: Option<u64>,
    /// Where each stream stops early (`sluice preview`).
    pub limits: ReadLimits,
    /// Gives a stream's errors about the manifest their line and column.
    pub locator: crate::error::Locator,
    /// Where each stream's counts go, for a watcher.
    pub progress: Option<Arc<ReadProgress>>,
}

/// Limits that stop each stream of a `read` early, as the Connector Builder's test read does
/// (its defaults are 100 records, 5 slices and 5 pages per slice). Unset, they cost nothing.
///
/// A stream that reaches a limit stops requesting, ends COMPLETE and writes no final STATE: the
/// read is a sample, not a sync to resume from. Only the slices it read to their last page
/// write theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most records read of each stream.
    pub records: Option<u64>,
    /// The most slices read of each stream.
    pub slices: Option<u64>,
    /// The most pages read of each slice.
    pub pages_per_slice: Option<u64>,
}

impl ReadLimits {
    /// Whether `count` has reached `limit`.
    fn reached(limit: Option<u64>, count: u64) -> bool {
        limit.is_some_and(|limit| count >= limit)
    }

    /// The records of a page that fit under the record limit, `read` being read already.
    fn keep_records(&self, mut records: Vec<RecordData>, read: u64) -> Vec<RecordData> {
        if let Some(limit) = self.records {
            let room = limit.saturating_sub(read);
            records.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        records
    }
}

/// What the streams of one sync share. Streams and their partitions run as futures on one task,
/// so the writer sits in a `RefCell` borrowed only to write a message, never across an await.
struct SyncContext<'o, W: Write + Send + 'static> {
    out: RefCell<&'o mut MessageWriter<W>>,
    /// One permit per partition being read, across all streams.
    readers: Semaphore,
    /// One permit per stream generating its partitions: as in the reference, half the
    /// workers, at least one. A stream whose partitions are all generated lets the next stream
    /// start while its last partitions are still read.
    generators: Semaphore,
    /// `stream_groups`: which streams may not be read at the same time.
    groups: StreamGroups,
    options: ReadOptions,
}

impl<W: Write + Send + 'static> SyncContext<'_, W> {
    fn emit(&self, message: &AirbyteMessage) -> Result<(), EngineError> {
        self.out
            .borrow_mut()
            .message(message)
            .map_err(write_failure)
    }
}

/// Reads every configured stream, then fails if any stream failed, naming them all.
pub(crate) async fn read<W: Write + Send + 'static>(
    streams: &[&StreamSlot],
    groups: StreamGroups,
    unbuilt_dynamic_streams: &[String],
    options: ReadOptions,
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
    let concurrency = options.concurrency.max(1);
    let sync = SyncContext {
        out: RefCell::new(out),
        readers: Semaphore::new(concurrency),
        generators: Semaphore::new((concurrency / 2).max(1)),
        groups,
        options,
    };
    let no_state = Map::new();
    let mut failures: Vec<(String, EngineError)> = Vec::new();
    let mut runnable = Vec::new();
    tracing::info!("Starting syncing");
    for configured in &catalog.streams {
        let name = &configured.stream.name;
        let progress = sync.options.progress.as_ref().map(|p| p.stream(name));
        // As in the reference, a later stream of the same name (a dynamic one) wins.
        match streams.iter().rev().find(|s| s.name() == name) {
            Some(StreamSlot::Ready(stream)) => {
                let state = states
                    .get(&StreamDescriptor::new(name))
                    .unwrap_or(&no_state);
                stream.configure_for_read(&configured.stream.json_schema);
                let cursor_field = configured.cursor_field.as_deref().unwrap_or_default();
                if let Some(group) = sync.groups.group(name) {
                    tracing::info!(
                        "Stream '{name}' is in blocking group '{group}'. Will defer starting this stream if another stream in the same group or its parents are active."
                    );
                }
                runnable.push(read_stream(&sync, stream, state, cursor_field, progress));
            }
            Some(StreamSlot::Unrunnable(unrunnable)) => {
                let descriptor = StreamDescriptor::new(name);
                sync.emit(&status(&descriptor, AirbyteStreamStatus::Started))?;
                sync.emit(&stream_error(name, &unrunnable.error))?;
                sync.emit(&status(&descriptor, AirbyteStreamStatus::Incomplete))?;
                failures.push((name.clone(), unrunnable.error.clone()));
                if let Some(progress) = progress {
                    progress.ended(true);
                }
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
                sync.emit(&stream_error(name, &error))?;
                failures.push((name.clone(), error));
                if let Some(progress) = progress {
                    progress.ended(true);
                }
            }
        }
    }
    // Streams wait for a generator permit in catalog order (the semaphore is fair), so at
    // concurrency 1 they run one after the other, as listed.
    for (name, outcome) in join_all(runnable).await {
        if let Some(error) = outcome? {
            failures.push((name, error));
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

/// What a stream's partition generator yields.
enum Generated {
    Slice(StreamSlice),
    /// Every partition is generated (or generating failed): the router's state at that point.
    End {
        router_state: Option<Value>,
        error: Option<EngineError>,
    },
}

/// One slice being read, page by page.
struct Partition<'a, 'p> {
    slice: StreamSlice,
    pages: SlicePages<'a>,
    /// The cursor's key for the slice ([`crate::slicing::Cursor::slice_key`]).
    key: String,
    progress: SliceProgress,
    records: u64,
    /// Pages read so far, for [`ReadLimits::pages_per_slice`].
    pages_read: u64,
    checkpoint_every: Option<u64>,
    /// Held from the first request to the slice's end.
    permit: Option<SemaphorePermit<'p>>,
}

/// Reads the next page of `partition`, first waiting for a reader's permit.
async fn read_page<'a, 'p>(
    readers: &'p Semaphore,
    reader: &SliceReader<'a>,
    mut partition: Partition<'a, 'p>,
) -> (
    Partition<'a, 'p>,
    Result<Option<Vec<RecordData>>, EngineError>,
) {
    if partition.permit.is_none() {
        // The semaphore is never closed, so acquiring cannot fail.
        partition.permit = readers.acquire().await.ok();
    }
    let page = reader.next_page(&mut partition.pages, &partition.key).await;
    if let Ok(Some(_)) = &page {
        partition.pages_read += 1;
    }
    (partition, page)
}

/// A stream's running counts.
struct Tally {
    total: u64,
    since_state: u64,
    failure: Option<EngineError>,
}

/// Reads one stream; gives its name and outcome. The outer error is fatal (stdout is gone);
/// the inner one is the stream's failure, already reported, after which the sync goes on with
/// the other streams. A slice that fails is reported and the stream's other slices are still
/// read; its state never moves past the failed slice.
async fn read_stream<W: Write + Send + 'static>(
    sync: &SyncContext<'_, W>,
    stream: &Stream,
    state: &Map<String, Value>,
    catalog_cursor_field: &[String],
    progress: Option<Arc<StreamProgress>>,
) -> (String, Result<Option<EngineError>, EngineError>) {
    // A stream whose group is busy waits before it takes a generator's place.
    sync.groups.start(&stream.name).await;
    let generator = sync.generators.acquire().await.ok();
    // The stream's requests count as its own, its parents' included.
    let observer = progress
        .clone()
        .map(|p| p as Arc<dyn sluice_http::observe::HttpObserver>);
    let read = read_stream_with(
        sync,
        generator,
        stream,
        state,
        catalog_cursor_field,
        progress.as_deref(),
    );
    let outcome = sluice_http::observe::observed(observer, read).await;
    if let (Some(progress), Ok(failure)) = (&progress, &outcome) {
        progress.ended(failure.is_some());
    }
    sync.groups.partitions_generated(&stream.name);
    sync.groups.done(&stream.name);
    (stream.name.clone(), outcome)
}

async fn read_stream_with<W: Write + Send + 'static>(
    sync: &SyncContext<'_, W>,
    mut generator: Option<SemaphorePermit<'_>>,
    stream: &Stream,
    state: &Map<String, Value>,
    catalog_cursor_field: &[String],
    progress: Option<&StreamProgress>,
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
                sync.emit(&AirbyteMessage::state_stream(
                    descriptor,
                    Map::new(),
                    Some(0.0),
                ))?;
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
    if let Some(progress) = progress {
        progress.started();
    }
    sync.emit(&status(&descriptor, AirbyteStreamStatus::Started))?;
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
    let opened = match cursor_spec {
        Ok(cursor_spec) => SliceReader::open_with_cursor(stream, state, cursor_spec.as_ref()).await,
        Err(error) => Err(error),
    };
    let (reader, source) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            let error = sync.options.locator.locate(error);
            tracing::error!("Exception while syncing stream {}: {}", stream.name, error);
            sync.emit(&stream_error(&stream.name, &error))?;
            sync.emit(&status(&descriptor, AirbyteStreamStatus::Incomplete))?;
            return Ok(Some(error));
        }
    };
    let reader = &reader;
    let cursor_field = reader.cursor().field().map(str::to_owned);
    let slices = stream::unfold(Some(source), |source| async move {
        let mut source = source?;
        let generated = match source.next_slice(reader).await {
            Ok(Some(slice)) => return Some((Generated::Slice(slice), Some(source))),
            Ok(None) => Generated::End {
                router_state: source.router_state(),
                error: None,
            },
            Err(error) => Generated::End {
                router_state: source.router_state(),
                error: Some(error),
            },
        };
        Some((generated, None))
    });
    let mut slices = pin!(slices);
    let mut reading = FuturesUnordered::new();
    let mut generating = true;
    let mut router_state = None;
    let mut tally = Tally {
        total: 0,
        since_state: 0,
        failure: None,
    };
    let limits = sync.options.limits;
    // Whether a limit stopped the stream before it read everything.
    let mut cut_short = false;
    let mut slices_started: u64 = 0;
    // Partitions are generated a little ahead of the readers (twice as many as read at
    // once), so reading a parent overlaps reading children, and memory stays bounded however
    // many partitions there are.
    let ahead = 2 * sync.options.concurrency.max(1);
    loop {
        let generate = generating && reading.len() < ahead;
        if !generate && reading.is_empty() {
            break;
        }
        tokio::select! {
            Some((mut partition, page)) = reading.next(), if !reading.is_empty() => {
                match page {
                    Ok(Some(records)) => {
                        let records = limits.keep_records(records, tally.total);
                        if let Some(progress) = progress {
                            progress.records(Vec::<RecordData>::len(&records));
                        }
                        write_page(sync, stream, reader, &cursor_field, &mut partition, records, &mut tally)?;
                        if ReadLimits::reached(limits.records, tally.total) {
                            // Dropping the other partitions' reads cancels their requests.
                            cut_short = true;
                            reading.clear();
                            stop_generating(&mut generating, &mut generator, sync, &stream.name);
                        } else if ReadLimits::reached(limits.pages_per_slice, partition.pages_read) {
                            // Left open: its state never claims the pages not read.
                            cut_short = true;
                        } else {
                            reading.push(read_page(&sync.readers, reader, partition));
                        }
                    }
                    Ok(None) | Err(_) => {
                        let read = page.map(drop);
                        close_partition(sync, stream, reader, &partition, read, &mut tally)?;
                        if let Some(progress) = progress {
                            progress.slice_done();
                        }
                    }
                }
            }
            generated = slices.next(), if generate => match generated {
                Some(Generated::Slice(slice)) => {
                    let partition = Partition {
                        pages: reader.pages(&slice),
                        key: reader.cursor().slice_key(&slice),
                        slice,
                        progress: SliceProgress::default(),
                        records: 0,
                        pages_read: 0,
                        checkpoint_every: sync.options.checkpoint_every,
                        permit: None,
                    };
                    reading.push(read_page(&sync.readers, reader, partition));
                    if let Some(progress) = progress {
                        progress.slice_generated();
                    }
                    slices_started += 1;
                    if ReadLimits::reached(limits.slices, slices_started) {
                        cut_short = true;
                        stop_generating(&mut generating, &mut generator, sync, &stream.name);
                    }
                }
                Some(Generated::End { router_state: state, error }) => {
                    stop_generating(&mut generating, &mut generator, sync, &stream.name);
                    if let Some(progress) = progress {
                        progress.all_slices_generated();
                    }
                    router_state = state;
                    if let Some(error) = error {
                        let error = sync.options.locator.locate(error);
                        sync.emit(&stream_error(&stream.name, &error))?;
                        tally.failure = Some(error);
                    }
                }
                None => generating = false,
            },
        }
    }
    drop(generator);
    tracing::info!("Read {} records from {} stream", tally.total, stream.name);
    tracing::info!("Marking stream {} as STOPPED", stream.name);
    tracing::info!("Finished syncing {}", stream.name);
    let final_status = match tally.failure {
        None => AirbyteStreamStatus::Complete,
        Some(_) => AirbyteStreamStatus::Incomplete,
    };
    sync.emit(&status(&descriptor, final_status))?;
    if cut_short {
        tracing::info!(
            "Stream {} stopped at the read limits: no final state",
            stream.name
        );
        return Ok(tally.failure);
    }
    let final_state = reader.final_state(router_state);
    sync.emit(&AirbyteMessage::state_stream(
        descriptor,
        final_state,
        Some(tally.since_state as f64),
    ))?;
    Ok(tally.failure)
}

/// Writes a page of a partition's records, noting each in the cursor, with the mid-slice
/// checkpoints `--checkpoint-every` asks for.
fn write_page<W: Write + Send + 'static>(
    sync: &SyncContext<'_, W>,
    stream: &Stream,
    reader: &SliceReader<'_>,
    cursor_field: &Option<String>,
    partition: &mut Partition<'_, '_>,
    records: Vec<RecordData>,
    tally: &mut Tally,
) -> Result<(), EngineError> {
    let descriptor = || StreamDescriptor::new(&stream.name);
    let mut field_value = Value::Null;
    for record in records {
        if let Some(field) = cursor_field {
            let mut cursor = reader.cursor();
            let observed = record
                .sent_string_field(field)
                .is_some_and(|sent| cursor.observe_sent_string(&mut partition.progress, sent));
            if !observed {
                record.with_field_in(field, &mut field_value, |value| {
                    if let Some(value) = value {
                        cursor.observe_field(&partition.key, &mut partition.progress, value);
                    }
                });
            }
        }
        if tally.total == 0 {
            tracing::info!("Marking stream {} as RUNNING", stream.name);
            sync.emit(&status(&descriptor(), AirbyteStreamStatus::Running))?;
        }
        tally.total += 1;
        tally.since_state += 1;
        partition.records += 1;
        sync.out
            .borrow_mut()
            .record_data(&stream.name, record)
            .map_err(write_failure)?;
        let Some(every) = partition.checkpoint_every else {
            continue;
        };
        if partition.records % every != 0 {
            continue;
        }
        if partition.progress.out_of_order {
            let window = serde_json::to_string(&partition.slice.cursor_slice).unwrap_or_default();
            tracing::warn!(
                "Records of stream {} are not in ascending order of its cursor in slice {window}: no more checkpoints inside this slice",
                stream.name
            );
            partition.checkpoint_every = None;
        } else if let Some(state) = reader
            .cursor()
            .checkpoint(&partition.slice, &partition.progress)
        {
            let message =
                AirbyteMessage::state_stream(descriptor(), state, Some(tally.since_state as f64));
            sync.emit(&message)?;
            tally.since_state = 0;
        }
    }
    sync.out.borrow_mut().send_records().map_err(write_failure)
}

/// Ends a stream's partition generation, once: its generator's place goes to the next stream
/// and its parents are no longer read for it.
fn stop_generating<W: Write + Send + 'static, P>(
    generating: &mut bool,
    generator: &mut Option<P>,
    sync: &SyncContext<'_, W>,
    stream: &str,
) {
    if std::mem::replace(generating, false) {
        generator.take();
        sync.groups.partitions_generated(stream);
    }
}

/// Closes a partition whose pages are all read (or whose read failed): the cursor may move,
/// and its state is written after the partition's records.
fn close_partition<W: Write + Send + 'static>(
    sync: &SyncContext<'_, W>,
    stream: &Stream,
    reader: &SliceReader<'_>,
    partition: &Partition<'_, '_>,
    read: Result<(), EngineError>,
    tally: &mut Tally,
) -> Result<(), EngineError> {
    let closed = read.and_then(|()| reader.cursor().close(&partition.slice, &partition.progress));
    match closed {
        Ok(Some(state)) => {
            sync.emit(&AirbyteMessage::state_stream(
                StreamDescriptor::new(&stream.name),
                state,
                Some(tally.since_state as f64),
            ))?;
            tally.since_state = 0;
        }
        Ok(None) => {}
        Err(error) => {
            let error = sync.options.locator.locate(error);
            tracing::error!("Exception while syncing stream {}: {}", stream.name, error);
            sync.emit(&stream_error(&stream.name, &error))?;
            tally.failure = Some(error);
        }
    }
    Ok(())
}

/// Whether a `StateDelegatingStream`'s state is older than its `api_retention_period` (or has
/// no readable cursor, which counts as older, as in the reference).
pub(crate) fn is_past_retention(
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

fn write_failure(error: std::io::Error) -> EngineError {
    EngineError::system(format!("cannot write to stdout: {error}"))
}

#[cfg(test)]
mod tests {
    use crate::{MessageWriter, ReadLimits, Source, SourceOptions};
    use serde_json::{Value, json};
    use sluice_http::{Cassette, ReplayTransport};
    use std::sync::Arc;

    /// Three daily slices, each answered with the same page of two records.
    const MANIFEST: &str = r#"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [events]}
streams:
  - type: DeclarativeStream
    name: events
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "https://api.test", path: /events}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
    incremental_sync:
      type: DatetimeBasedCursor
      cursor_field: updated_at
      datetime_format: "%Y-%m-%d"
      start_datetime: "2024-01-01"
      end_datetime: "2024-01-04"
      step: P1D
      cursor_granularity: P1D
"#;

    /// The types of the messages a read with `limits` writes, RECORD and STATE only.
    async fn read(limits: ReadLimits) -> Vec<String> {
        let cassette = Cassette::from_json_str(
            &json!({"exchanges": [{
                "request": {"method": "GET", "url": "https://api.test/events"},
                "response": {"status": 200, "body": {"json": {"data": [
                    {"id": 1, "updated_at": "2024-01-01"},
                    {"id": 2, "updated_at": "2024-01-01"}
                ]}}}
            }]})
            .to_string(),
        )
        .unwrap();
        let manifest =
            sluice_manifest::load_value(sluice_manifest::yaml::parse(MANIFEST).unwrap()).unwrap();
        let options = SourceOptions {
            transport: Arc::new(ReplayTransport::new(cassette)),
            concurrency: Some(1),
            limits,
            ..SourceOptions::default()
        };
        let source = Source::new(manifest, json!({}), options).unwrap();
        let catalog = source.configured_catalog_all_full_refresh();
        let mut out = MessageWriter::new(Vec::new());
        source.read(&catalog, &[], &mut out).await.unwrap();
        let written = out.into_inner().unwrap();
        String::from_utf8(written)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter_map(|m| m["type"].as_str().map(str::to_owned))
            .filter(|t| t == "RECORD" || t == "STATE")
            .collect()
    }

    #[tokio::test]
    async fn without_limits_every_slice_is_read() {
        let messages = read(ReadLimits::default()).await;
        // Each slice's records and STATE, then the final STATE.
        let slice = ["RECORD", "RECORD", "STATE"];
        assert_eq!(messages, [&slice[..], &slice, &slice, &["STATE"]].concat());
    }

    #[tokio::test]
    async fn a_stream_stops_at_its_record_limit_without_a_final_state() {
        let limits = ReadLimits {
            records: Some(3),
            ..ReadLimits::default()
        };
        // The second slice is cut after its first record: it writes no STATE.
        assert_eq!(read(limits).await, ["RECORD", "RECORD", "STATE", "RECORD"]);
    }

    #[tokio::test]
    async fn a_stream_stops_at_its_slice_limit() {
        let limits = ReadLimits {
            slices: Some(2),
            ..ReadLimits::default()
        };
        assert_eq!(
            read(limits).await,
            ["RECORD", "RECORD", "STATE", "RECORD", "RECORD", "STATE"]
        );
    }
}
