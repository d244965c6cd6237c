use serde_json::Value;
use sluice_protocol::{AirbyteMessage, Level};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Log lines waiting to be written as LOG messages. Anything may push (any thread, e.g. a
/// `tracing` layer); the [`MessageWriter`] writes them before its next message, so logs keep
/// their place among records and states.
#[derive(Debug, Default)]
pub struct LogQueue {
    pending: AtomicBool,
    lines: Mutex<Vec<(Level, String)>>,
}

impl LogQueue {
    /// An empty queue, shareable between threads.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Queues a log line.
    pub fn push(&self, level: Level, message: String) {
        // A poisoned lock means a thread panicked while pushing; the lines are still valid.
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.push((level, message));
        self.pending.store(true, Ordering::Release);
    }

    fn take(&self) -> Vec<(Level, String)> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *lines)
    }
}

/// Writes Airbyte messages as JSON lines, exactly as the reference prints them.
///
/// Records take a fast path that serialises straight from the borrowed record, without building
/// an [`AirbyteMessage`]. Give it a buffered writer: it does not buffer by itself.
#[derive(Debug)]
pub struct MessageWriter<W: Write> {
    out: W,
    logs: Option<Arc<LogQueue>>,
}

impl<W: Write> MessageWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> Self {
        Self { out, logs: None }
    }

    /// A writer that also writes the lines queued in `logs`, as LOG messages.
    pub fn with_logs(out: W, logs: Arc<LogQueue>) -> Self {
        Self {
            out,
            logs: Some(logs),
        }
    }

    /// Writes one RECORD message stamped now.
    pub fn record(&mut self, stream: &str, data: &Value) -> io::Result<()> {
        self.write_pending_logs()?;
        let emitted_at = sluice_protocol::now_millis();
        sluice_protocol::write_record_json(&mut self.out, stream, data, emitted_at)?;
        self.out.write_all(b"\n")
    }

    /// Writes any message.
    pub fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        self.write_pending_logs()?;
        self.write_one(message)
    }

    fn write_one(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        sluice_protocol::write_message_json(&mut self.out, message)?;
        self.out.write_all(b"\n")
    }

    fn write_pending_logs(&mut self) -> io::Result<()> {
        let Some(logs) = &self.logs else {
            return Ok(());
        };
        if !logs.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        for (level, line) in logs.take() {
            self.write_one(&AirbyteMessage::log(level, line))?;
        }
        Ok(())
    }

    /// Writes queued logs and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_pending_logs()?;
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
        let logs = LogQueue::new();
        let mut writer = MessageWriter::with_logs(Vec::new(), Arc::clone(&logs));
        writer.record("s", &serde_json::json!({"a": 1})).unwrap();
        logs.push(Level::Info, "retrying".to_owned());
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
