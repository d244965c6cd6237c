use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_protocol::{AirbyteMessage, Level};
use sluice_protocol::{AsSent, RecordScanner, SentEntry};
use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Messages raised away from the read loop (log lines from a `tracing` layer, CONTROL messages
/// from an OAuth refresh), waiting to be written. Anything may push, from any thread; the
/// [`MessageWriter`] writes them before its next message, so they keep their place among
/// records and states.
#[derive(Debug, Default)]
pub struct PendingMessages {
    pending: AtomicBool,
    messages: Mutex<Vec<AirbyteMessage>>,
}

impl PendingMessages {
    /// An empty queue, shareable between threads.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Queues a message.
    pub fn push(&self, message: AirbyteMessage) {
        // A poisoned lock means a thread panicked while pushing; the messages are still valid.
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        messages.push(message);
        self.pending.store(true, Ordering::Release);
    }

    /// Queues a LOG message.
    pub fn push_log(&self, level: Level, text: String) {
        self.push(AirbyteMessage::log(level, text));
    }

    fn take(&self) -> Vec<AirbyteMessage> {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *messages)
    }
}

/// Writes Airbyte messages as JSON lines, exactly as the reference prints them.
///
/// Records take a fast path that serialises straight from the record, without building an
/// [`AirbyteMessage`]. Give it a buffered writer: it does not buffer by itself.
///
/// [`MessageWriter::threaded`] moves serialisation onto its own thread: records travel there in
/// batches through one bounded channel, with every other message in between, so the order is
/// kept, memory stays bounded, and decoding the next page overlaps writing this one.
#[derive(Debug)]
pub struct MessageWriter<W: Write + Send + 'static> {
    sink: Sink<W>,
    pending: Option<Arc<PendingMessages>>,
}

#[derive(Debug)]
enum Sink<W: Write + Send + 'static> {
    Direct(W),
    Threaded(Threaded<W>),
}

/// Records per batch sent to the writer thread, and batches in flight: enough to keep both
/// threads busy, few enough that memory stays flat however long the stream.
const BATCH_RECORDS: usize = 1000;
const BATCHES_IN_FLIGHT: usize = 1;

/// How long written records may wait in the buffer once the writer has nothing else to do.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Threaded<W> {
    stream: String,
    batch: Vec<RecordData>,
    sender: Option<mpsc::SyncSender<Chunk>>,
    thread: Option<std::thread::JoinHandle<io::Result<W>>>,
}

/// A record's data, parsed or as the API sent it.
#[derive(Debug, Clone)]
pub enum RecordData {
    /// A parsed record.
    Parsed(Value),
    /// An object as the API sent it, which the reference prints byte for byte the same
    /// ([`AsSent::Identical`](sluice_protocol::AsSent::Identical)): written verbatim.
    AsSent(Bytes),
    /// [`RecordData::AsSent`] whose cursor field the page walk found: where its key and value
    /// are, so a cursor reads the value without scanning the record.
    AsSentWithField(Bytes, SentEntry),
    /// An object as the API sent it that is sure to parse but prints otherwise
    /// ([`AsSent::Reprint`](sluice_protocol::AsSent::Reprint)): parsed where it is written, off
    /// the reading thread.
    Unparsed(Bytes),
    /// A parsed record whose file was downloaded (`file_uploader`): its RECORD says where.
    WithFile(Box<(Value, sluice_protocol::AirbyteRecordMessageFileReference)>),
}

impl RecordData {
    /// The record as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            RecordData::Parsed(value) => value.clone(),
            RecordData::WithFile(filed) => filed.0.clone(),
            RecordData::AsSent(json)
            | RecordData::AsSentWithField(json, _)
            | RecordData::Unparsed(json) => parse_checked(json),
        }
    }

    /// The record's top-level field `name`, if it has one, which is all a cursor reads: of a
    /// record kept as sent, only that field is parsed (the rest is scanned, not built).
    pub fn with_field<T>(&self, name: &str, read: impl FnOnce(Option<&Value>) -> T) -> T {
        match self {
            RecordData::Parsed(value) => read(value.get(name)),
            RecordData::WithFile(filed) => read(filed.0.get(name)),
            RecordData::AsSentWithField(json, field) if is_key(&json[field.key.clone()], name) => {
                let value: Option<Value> = serde_json::from_slice(&json[field.value.clone()]).ok();
                read(value.as_ref())
            }
            RecordData::AsSent(json)
            | RecordData::AsSentWithField(json, _)
            | RecordData::Unparsed(json) => read(scanned_field(json, name).as_ref()),
        }
    }

    /// [`RecordData::with_field`], writing a field sent as a string without escapes (a cursor's
    /// datetime, typically) into `scratch` instead of a new value: a cursor reads one such
    /// field of every record, and parsing it into a new value cost more than parsing the
    /// datetime (callgrind, `cargo xtask bench` scenario (j)).
    pub fn with_field_in<T>(
        &self,
        name: &str,
        scratch: &mut Value,
        read: impl FnOnce(Option<&Value>) -> T,
    ) -> T {
        let plain = self
            .sent_string_field(name)
            .filter(|text| !text.contains(&b'\\'))
            .and_then(|text| std::str::from_utf8(text).ok());
        let Some(text) = plain else {
            return self.with_field(name, read);
        };
        if let Value::String(kept) = scratch {
            kept.clear();
            kept.push_str(text);
        } else {
            *scratch = Value::String(text.to_owned());
        }
        read(Some(scratch))
    }

    /// The bytes between the quotes of the top-level field `name`, as sent, when the record
    /// was kept as sent with that field located and the field is a string; escapes unread.
    pub fn sent_string_field(&self, name: &str) -> Option<&[u8]> {
        let RecordData::AsSentWithField(json, field) = self else {
            return None;
        };
        match &json[field.value.clone()] {
            [b'"', text @ .., b'"'] if is_key(&json[field.key.clone()], name) => Some(text),
            _ => None,
        }
    }

    /// The record as a JSON value, parsing it if it was kept as sent.
    pub fn into_value(self) -> Value {
        match self {
            RecordData::Parsed(value) => value,
            RecordData::WithFile(filed) => filed.0,
            RecordData::AsSent(json)
            | RecordData::AsSentWithField(json, _)
            | RecordData::Unparsed(json) => parse_checked(&json),
        }
    }
}

/// The top-level field `name` of `json`, a record as sent, located by the page walk's scanner
/// and parsed alone. A record the scanner cannot read field by field (a key repeated or spelled
/// with escapes, a number beyond 64 bits) is parsed whole.
fn scanned_field(json: &[u8], name: &str) -> Option<Value> {
    let whole = || parse_checked(json).get(name).cloned();
    let Some(mut scanner) = RecordScanner::for_text(json) else {
        return whole();
    };
    if !scanner.watch(Some(name)) {
        return whole();
    }
    // Keeps a top-level `null`, which the record has as a value.
    scanner.for_editing(true);
    let mut respelled = Vec::new();
    let printed = match scanner.scan_record(json, &mut respelled) {
        Some((_, AsSent::Identical)) => json,
        Some((_, AsSent::Respelled)) => &respelled[..],
        _ => return whole(),
    };
    let field = scanner.watched()?;
    serde_json::from_slice(&printed[field.value.clone()]).ok()
}

/// Whether `quoted` (a key as sent, quotes included, without escapes) is `name`.
fn is_key(quoted: &[u8], name: &str) -> bool {
    quoted.len() == name.len() + 2 && &quoted[1..quoted.len() - 1] == name.as_bytes()
}

/// Parses JSON that was checked to parse when its page was read.
fn parse_checked(json: &[u8]) -> Value {
    serde_json::from_slice(json).unwrap_or_default()
}

#[derive(Debug)]
enum Chunk {
    Records(String, Vec<RecordData>),
    Message(Box<AirbyteMessage>),
    Flush(mpsc::SyncSender<io::Result<()>>),
}

impl<W: Write + Send + 'static> MessageWriter<W> {
    /// A writer over `out`, on the calling thread.
    pub fn new(out: W) -> Self {
        Self {
            sink: Sink::Direct(out),
            pending: None,
        }
    }

    /// A writer whose serialisation and writing run on a thread of their own; fails only when
    /// the thread cannot be started.
    pub fn threaded(out: W) -> io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel::<Chunk>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("sluice-writer".to_owned())
            .spawn(move || write_chunks(out, receiver))?;
        Ok(Self {
            sink: Sink::Threaded(Threaded {
                stream: String::new(),
                batch: Vec::with_capacity(BATCH_RECORDS),
                sender: Some(sender),
                thread: Some(thread),
            }),
            pending: None,
        })
    }

    /// Also writes the messages queued in `pending`, before each message of its own.
    pub fn with_pending(mut self, pending: Arc<PendingMessages>) -> Self {
        self.pending = Some(pending);
        self
    }

    /// Writes one RECORD message, stamped when it is written.
    pub fn record(&mut self, stream: &str, data: Value) -> io::Result<()> {
        self.record_data(stream, RecordData::Parsed(data))
    }

    /// Writes one RECORD message of data parsed or as sent, stamped when it is written.
    pub fn record_data(&mut self, stream: &str, data: RecordData) -> io::Result<()> {
        self.write_pending()?;
        match &mut self.sink {
            Sink::Direct(out) => write_record(out, stream, &data),
            Sink::Threaded(threaded) => {
                if threaded.stream != stream {
                    threaded.send_batch()?;
                    stream.clone_into(&mut threaded.stream);
                }
                threaded.batch.push(data);
                if threaded.batch.len() >= BATCH_RECORDS {
                    threaded.send_batch()?;
                }
                Ok(())
            }
        }
    }

    /// Hands the records written so far to the writer thread, so a slow source's records reach
    /// stdout without waiting for a full batch (the engine calls this after each page).
    pub fn send_records(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Direct(out) => out.flush(),
            Sink::Threaded(threaded) => threaded.send_batch(),
        }
    }

    /// Writes any message.
    pub fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        self.write_pending()?;
        self.write_one(Cow::Borrowed(message))
    }

    /// Writes a message in place, or hands it to the writer thread (a borrowed one is copied
    /// only then).
    fn write_one(&mut self, message: Cow<'_, AirbyteMessage>) -> io::Result<()> {
        match &mut self.sink {
            Sink::Direct(out) => {
                write_message(out, &message)?;
                if matches!(*message, AirbyteMessage::State(_)) {
                    out.flush()?;
                }
                Ok(())
            }
            Sink::Threaded(threaded) => {
                threaded.send_batch()?;
                threaded.send(Chunk::Message(Box::new(message.into_owned())))
            }
        }
    }

    fn write_pending(&mut self) -> io::Result<()> {
        let Some(pending) = &self.pending else {
            return Ok(());
        };
        if !pending.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        for message in pending.take() {
            self.write_one(Cow::Owned(message))?;
        }
        Ok(())
    }

    /// Writes queued messages and flushes the underlying writer; when threaded, waits until
    /// everything sent so far is written.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        match &mut self.sink {
            Sink::Direct(out) => out.flush(),
            Sink::Threaded(threaded) => {
                threaded.send_batch()?;
                let (done, wait) = mpsc::sync_channel(1);
                threaded.send(Chunk::Flush(done))?;
                wait.recv().map_err(|_| writer_gone())?
            }
        }
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        match std::mem::replace(&mut self.sink, Sink::Threaded(Threaded::finished())) {
            Sink::Direct(out) => Ok(out),
            Sink::Threaded(mut threaded) => threaded.finish(),
        }
    }
}

impl<W> Threaded<W> {
    fn finished() -> Self {
        Self {
            stream: String::new(),
            batch: Vec::new(),
            sender: None,
            thread: None,
        }
    }

    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let Some(sender) = &self.sender else {
            return Err(writer_gone());
        };
        if sender.send(chunk).is_ok() {
            return Ok(());
        }
        // The thread stopped at a failed write (stdout's reader gone, a full disk): that
        // failure is the one to report, and the read stops here instead of reading on for
        // nobody.
        match self.finish() {
            Err(error) => Err(error),
            Ok(_) => Err(writer_gone()),
        }
    }

    fn send_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let records = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_RECORDS));
        self.send(Chunk::Records(self.stream.clone(), records))
    }

    /// Closes the channel and waits for the thread: its error, if it failed, or the writer.
    fn finish(&mut self) -> io::Result<W> {
        self.sender = None;
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(writer_gone())),
            None => Err(writer_gone()),
        }
    }
}

impl<W: Write + Send + 'static> Drop for MessageWriter<W> {
    fn drop(&mut self) {
        if let Sink::Threaded(threaded) = &mut self.sink {
            // Whatever was sent is written before the process goes on; errors were reported by
            // the last flush, or are no longer anyone's to report.
            let _ = threaded.send_batch();
            let _ = threaded.finish();
        }
    }
}

/// Writes what the reading thread sends. Output reaches stdout promptly without a write per
/// record: the buffer is flushed after every STATE (progress the platform must not lose) and,
/// once the writer has caught up with the reader, within [`FLUSH_INTERVAL`], so records that
/// arrive slowly are never held back while records that arrive fast go out in large blocks.
fn write_chunks<W: Write>(mut out: W, chunks: mpsc::Receiver<Chunk>) -> io::Result<W> {
    let mut result = Ok(());
    let mut unflushed = false;
    let mut last_flush = Instant::now();
    loop {
        let chunk = match chunks.try_recv() {
            Ok(chunk) => chunk,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) if !unflushed => match chunks.recv() {
                Ok(chunk) => chunk,
                Err(_) => break,
            },
            Err(mpsc::TryRecvError::Empty) => {
                let due = last_flush + FLUSH_INTERVAL;
                let waited = due
                    .checked_duration_since(Instant::now())
                    .map(|left| chunks.recv_timeout(left));
                match waited {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(mpsc::RecvTimeoutError::Disconnected)) => break,
                    Some(Err(mpsc::RecvTimeoutError::Timeout)) | None => {
                        result = out.flush();
                        unflushed = false;
                        last_flush = Instant::now();
                        if result.is_err() {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        match chunk {
            Chunk::Records(stream, records) => {
                result = records
                    .iter()
                    .try_for_each(|r| write_record(&mut out, &stream, r));
                unflushed = true;
            }
            Chunk::Message(message) => {
                result = write_message(&mut out, &message);
                if matches!(*message, AirbyteMessage::State(_)) && result.is_ok() {
                    result = out.flush();
                    unflushed = false;
                    last_flush = Instant::now();
                } else {
                    unflushed = true;
                }
            }
            Chunk::Flush(done) => {
                result = out.flush();
                unflushed = false;
                let flushed = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = done.send(flushed);
            }
        }
        if result.is_err() {
            // Closing the channel tells the reading side at its next send.
            break;
        }
    }
    result.map(|()| out)
}

fn write_record<W: Write>(out: &mut W, stream: &str, data: &RecordData) -> io::Result<()> {
    let emitted_at = sluice_protocol::now_millis();
    match data {
        RecordData::Parsed(value) => {
            sluice_protocol::write_record_json(&mut *out, stream, value, emitted_at)?;
        }
        RecordData::WithFile(filed) => {
            let (value, file) = &**filed;
            let data = match value {
                Value::Object(data) => data.clone(),
                _ => Map::new(),
            };
            let mut record = sluice_protocol::AirbyteRecordMessage::new(stream, data, emitted_at);
            record.file_reference = Some(file.clone());
            sluice_protocol::write_message_json(
                &mut *out,
                &sluice_protocol::AirbyteMessage::Record(record),
            )?;
        }
        RecordData::AsSent(json) | RecordData::AsSentWithField(json, _) => {
            sluice_protocol::write_record_json_as_sent(&mut *out, stream, json, emitted_at)?;
        }
        RecordData::Unparsed(json) => {
            // Checked to parse before it was queued; should that ever not hold, the read
            // fails loudly rather than losing the record.
            let value: Value = serde_json::from_slice(json).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a record does not parse: {e}"),
                )
            })?;
            sluice_protocol::write_record_json(&mut *out, stream, &value, emitted_at)?;
        }
    }
    out.write_all(b"\n")
}

fn write_message<W: Write>(out: &mut W, message: &AirbyteMessage) -> io::Result<()> {
    sluice_protocol::write_message_json(&mut *out, message)?;
    out.write_all(b"\n")
}

fn writer_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the output writer stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::ops::Range;

    #[test]
    fn queued_logs_come_before_the_next_message() {
        let pending = PendingMessages::new();
        for threaded in [false, true] {
            let writer = if threaded {
                MessageWriter::threaded(Vec::new()).unwrap()
            } else {
                MessageWriter::new(Vec::new())
            };
            let mut writer = writer.with_pending(Arc::clone(&pending));
            writer.record("s", serde_json::json!({"a": 1})).unwrap();
            pending.push_log(Level::Info, "retrying".to_owned());
            writer.record("s", serde_json::json!({"a": 2})).unwrap();
            let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            assert_log_between_records(&text);
        }
    }

    #[test]
    fn threaded_output_keeps_order_across_batches_and_streams() {
        let mut writer = MessageWriter::threaded(Vec::new()).unwrap();
        for i in 0..2500 {
            writer
                .record(
                    if i < 1200 { "a" } else { "b" },
                    serde_json::json!({"i": i}),
                )
                .unwrap();
            if i == 1100 {
                writer
                    .message(&AirbyteMessage::log(Level::Info, "mid".to_owned()))
                    .unwrap();
            }
        }
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2501);
        assert!(lines[1101].contains("\"mid\""), "{}", lines[1101]);
        assert!(lines[1100].contains("\"i\":1100") && lines[1102].contains("\"i\":1101"));
        assert!(
            lines[1200].contains("\"stream\":\"a\"") && lines[1201].contains("\"stream\":\"b\"")
        );
    }

    fn assert_log_between_records(text: &str) {
        let types: Vec<&str> = text
            .lines()
            .map(|l| {
                if l.contains("\"LOG\"") {
                    "LOG"
                } else {
                    "RECORD"
                }
            })
            .collect();
        assert_eq!(types, ["RECORD", "LOG", "RECORD"]);
        assert!(text.contains(r#"{"type":"LOG","log":{"level":"INFO","message":"retrying"}}"#));
    }

    #[test]
    fn a_cursor_reads_one_field_of_a_record_kept_as_sent() {
        let raw = Bytes::from_static(
            br#"{"id": 1, "nested": {"updated_at": "x"}, "updated_at": "2024-01-02"}"#,
        );
        for record in [
            RecordData::AsSent(raw.clone()),
            RecordData::Unparsed(raw.clone()),
        ] {
            let seen = record.with_field("updated_at", |v| v.cloned());
            assert_eq!(seen, Some(serde_json::json!("2024-01-02")));
            assert_eq!(record.with_field("missing", |v| v.cloned()), None);
        }
        let parsed = RecordData::Parsed(serde_json::json!({"updated_at": "a", "id": 2}));
        assert_eq!(
            parsed.with_field("updated_at", |v| v.cloned()),
            Some(serde_json::json!("a"))
        );
        // Where the page walk found the field; another field is looked for.
        let located = RecordData::AsSentWithField(
            raw.clone(),
            SentEntry {
                key: 41..53,
                value: 55..67,
            },
        );
        assert_eq!(&raw[41..53], br#""updated_at""#);
        assert_eq!(
            located.with_field("updated_at", |v| v.cloned()),
            Some(serde_json::json!("2024-01-02"))
        );
        assert_eq!(
            located.with_field("id", |v| v.cloned()),
            Some(serde_json::json!(1))
        );
    }

    #[test]
    fn a_located_string_field_is_read_into_the_scratch_value() {
        let raw = Bytes::from_static(br#"{"t":"2024-01-02","e":"a\u00e9","n":7}"#);
        let located = |key: Range<usize>, value: Range<usize>| {
            RecordData::AsSentWithField(raw.clone(), SentEntry { key, value })
        };
        let mut scratch = Value::String(String::with_capacity(32));
        let kept = match &scratch {
            Value::String(kept) => kept.as_ptr(),
            _ => unreachable!(),
        };
        let read = |record: &RecordData, name: &str, scratch: &mut Value| {
            record.with_field_in(name, scratch, |v| v.cloned())
        };
        let plain = located(1..4, 5..17);
        assert_eq!(read(&plain, "t", &mut scratch), Some(json!("2024-01-02")));
        assert!(matches!(&scratch, Value::String(s) if s.as_ptr() == kept && s == "2024-01-02"));
        // A second record's value replaces the first.
        let other = RecordData::AsSentWithField(
            Bytes::from_static(br#"{"t":"b"}"#),
            SentEntry {
                key: 1..4,
                value: 5..8,
            },
        );
        assert_eq!(read(&other, "t", &mut scratch), Some(json!("b")));
        // Escapes are parsed, another field is looked for, a number is no string.
        let escaped = located(18..21, 22..31);
        assert_eq!(read(&escaped, "e", &mut scratch), Some(json!("a\u{e9}")));
        assert_eq!(read(&plain, "n", &mut scratch), Some(json!(7)));
        assert_eq!(
            read(&located(32..35, 36..37), "n", &mut scratch),
            Some(json!(7))
        );
        assert_eq!(read(&plain, "missing", &mut scratch), None);
    }

    #[test]
    fn a_record_with_a_repeated_key_gives_its_last_value() {
        let record = RecordData::Unparsed(Bytes::from_static(
            br#"{"updated_at": "a", "updated_at": "b", "n": null}"#,
        ));
        assert_eq!(
            record.with_field("updated_at", |v| v.cloned()),
            Some(serde_json::json!("b"))
        );
        assert_eq!(record.with_field("n", |v| v.cloned()), Some(Value::Null));
        let spaced = RecordData::AsSent(Bytes::from_static(br#"{"n" : null, "a\"b": 1}"#));
        assert_eq!(spaced.with_field("n", |v| v.cloned()), Some(Value::Null));
        assert_eq!(
            spaced.with_field("a\"b", |v| v.cloned()),
            Some(serde_json::json!(1))
        );
    }

    /// A sink whose reader went away after `room` bytes.
    struct ClosingPipe {
        room: usize,
    }

    impl Write for ClosingPipe {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = bytes.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_stops_the_reading_side_at_its_next_send() {
        let mut writer = MessageWriter::threaded(ClosingPipe { room: 1000 }).unwrap();
        let mut sent = 0;
        let error = loop {
            // Each record is sent to the writer thread at once.
            let result = writer
                .record("s", serde_json::json!({"id": sent}))
                .and_then(|()| writer.send_records());
            match result {
                Ok(()) => sent += 1,
                Err(error) => break error,
            }
            assert!(sent < 1000, "the writer's failure never reached the reader");
        };
        // The thread's own error, not a generic one.
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_ne!(error.to_string(), writer_gone().to_string());
        writer.record("s", serde_json::json!({})).unwrap();
        assert!(writer.send_records().is_err());
    }
}
