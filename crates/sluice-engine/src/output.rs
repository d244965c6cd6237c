use serde_json::Value;
use sluice_protocol::AirbyteMessage;
use std::io::{self, Write};

/// Writes Airbyte messages as JSON lines, exactly as the reference prints them.
///
/// Records take a fast path that serialises straight from the borrowed record, without building
/// an [`AirbyteMessage`]. Give it a buffered writer: it does not buffer by itself.
#[derive(Debug)]
pub struct MessageWriter<W: Write> {
    out: W,
}

impl<W: Write> MessageWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// Writes one RECORD message stamped now.
    pub fn record(&mut self, stream: &str, data: &Value) -> io::Result<()> {
        let emitted_at = sluice_protocol::now_millis();
        sluice_protocol::write_record_json(&mut self.out, stream, data, emitted_at)?;
        self.out.write_all(b"\n")
    }

    /// Writes any message.
    pub fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        sluice_protocol::write_message_json(&mut self.out, message)?;
        self.out.write_all(b"\n")
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}
