use serde_json::Value;
use sluice_protocol::{AirbyteMessage, Level};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
/// Records take a fast path that serialises straight from the borrowed record, without building
/// an [`AirbyteMessage`]. Give it a buffered writer: it does not buffer by itself.
#[derive(Debug)]
pub struct MessageWriter<W: Write> {
    out: W,
    pending: Option<Arc<PendingMessages>>,
}

impl<W: Write> MessageWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> Self {
        Self { out, pending: None }
    }

    /// A writer that also writes the messages queued in `pending`.
    pub fn with_pending(out: W, pending: Arc<PendingMessages>) -> Self {
        Self {
            out,
            pending: Some(pending),
        }
    }

    /// Writes one RECORD message stamped now.
    pub fn record(&mut self, stream: &str, data: &Value) -> io::Result<()> {
        self.write_pending()?;
        let emitted_at = sluice_protocol::now_millis();
        sluice_protocol::write_record_json(&mut self.out, stream, data, emitted_at)?;
        self.out.write_all(b"\n")
    }

    /// Writes any message.
    pub fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        self.write_pending()?;
        self.write_one(message)
    }

    fn write_one(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        sluice_protocol::write_message_json(&mut self.out, message)?;
        self.out.write_all(b"\n")
    }

    fn write_pending(&mut self) -> io::Result<()> {
        let Some(pending) = &self.pending else {
            return Ok(());
        };
        if !pending.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        for message in pending.take() {
            self.write_one(&message)?;
        }
        Ok(())
    }

    /// Writes queued messages and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_logs_come_before_the_next_message() {
        let pending = PendingMessages::new();
        let mut writer = MessageWriter::with_pending(Vec::new(), Arc::clone(&pending));
        writer.record("s", &serde_json::json!({"a": 1})).unwrap();
        pending.push_log(Level::Info, "retrying".to_owned());
        writer.record("s", &serde_json::json!({"a": 2})).unwrap();
        writer.flush().unwrap();
        let text = String::from_utf8(writer.into_inner()).unwrap();
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
}
