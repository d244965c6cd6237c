//! stdout, watched for its reader going away.
//!
//! Rust ignores `SIGPIPE`, so a reader that exits early (`sluice read | head -1`) shows up as a
//! write failing with `BrokenPipe`. The read then stops at its next write, and `main` ends with
//! [`CLOSED_STDOUT_EXIT_CODE`] and one line on stderr instead of an error trace nobody can read.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// 128 + `SIGPIPE`: what a shell reports for a writer its pipe's reader left.
pub const CLOSED_STDOUT_EXIT_CODE: u8 = 141;

/// The process's stdout, noting when a write finds its reader gone.
#[derive(Debug, Clone, Default)]
pub struct Stdout {
    closed: Arc<AtomicBool>,
}

impl Stdout {
    /// Whether a write (through this handle or a clone) found the reader gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn watch<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(error) = &result
            && error.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.watch(io::stdout().write(bytes))
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.watch(io::stdout().write_all(bytes))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.watch(io::stdout().flush())
    }
}
