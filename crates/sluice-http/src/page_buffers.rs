//! Page-sized buffers used again instead of freed: response bodies, and the pages built from
//! them (the engine's respelled records). Such a buffer lives until the writer thread has
//! written the last record printed from it; freed there, the allocator keeps the block
//! committed for a while before it serves the reading thread again, so every page in flight
//! cost a fresh block. Handing buffers back to the reading side keeps a few warm instead: on
//! `cargo xtask bench` scenario (l) (pages of 2.3 MB), peak RSS went from 39 MB to 30 MB.
//!
//! ```
//! use sluice_http::PAGE_BUFFERS;
//! let mut buffer = PAGE_BUFFERS.take(64);
//! buffer.extend_from_slice(br#"{"data":[{"id":1}]}"#);
//! let body = PAGE_BUFFERS.share(buffer);
//! let record = body.slice(9..17);
//! drop(body);
//! // The buffer goes back once `record`, its last bytes, is dropped.
//! assert_eq!(&record[..], br#"{"id":1}"#);
//! ```

use std::sync::Mutex;

use bytes::Bytes;

/// Buffers kept for reuse: enough for the pages one read holds at once (the page being read,
/// and those waiting to be written).
const KEPT: usize = 6;

/// Larger buffers are freed: keeping them would hold the memory of a rare huge page for the
/// rest of the read.
const KEPT_CAPACITY: usize = 8 << 20;

/// The buffers of this process's reads.
pub static PAGE_BUFFERS: PageBuffers = PageBuffers::new();

/// Empty buffers handed back, for the next page ([`PAGE_BUFFERS`]).
#[derive(Debug)]
pub struct PageBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

impl PageBuffers {
    /// No buffers yet.
    pub const fn new() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer with room for at least `bytes`: one handed back if it has the room
    /// (one too small is freed rather than grown, which would copy it and, growing by
    /// doubling, leave it twice the size of a page).
    pub fn take(&self, bytes: usize) -> Vec<u8> {
        let kept = self
            .free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match kept {
            Some(buffer) if buffer.capacity() >= bytes => buffer,
            // Room for pages a little larger than this one.
            _ => Vec::with_capacity(bytes.saturating_add(bytes / 8)),
        }
    }

    /// `buffer` as shared bytes, handed back for [`PageBuffers::take`] once the last of them is
    /// dropped.
    pub fn share(&'static self, buffer: Vec<u8>) -> Bytes {
        if buffer.capacity() == 0 {
            return Bytes::new();
        }
        Bytes::from_owner(Returned { buffer, to: self })
    }
}

impl Default for PageBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// A buffer that goes back to its [`PageBuffers`] when dropped.
struct Returned {
    buffer: Vec<u8>,
    to: &'static PageBuffers,
}

impl AsRef<[u8]> for Returned {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.buffer);
        if buffer.capacity() > KEPT_CAPACITY {
            return;
        }
        buffer.clear();
        let mut free = self
            .to
            .free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if free.len() < KEPT {
            free.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> &'static PageBuffers {
        Box::leak(Box::new(PageBuffers::new()))
    }

    #[test]
    fn a_buffer_comes_back_empty_once_its_last_bytes_are_dropped() {
        let pool = pool();
        let mut buffer = pool.take(15);
        buffer.extend_from_slice(b"page of records");
        let pointer = buffer.as_ptr();
        let shared = pool.share(buffer);
        let record = shared.slice(5..7);
        drop(shared);
        // Nothing kept: a new buffer for no bytes has no capacity.
        assert_eq!(pool.take(0).capacity(), 0, "handed back while still in use");
        assert_eq!(&record[..], b"of");
        drop(record);
        let again = pool.take(15);
        assert_eq!((again.as_ptr(), again.len()), (pointer, 0));
        let room = again.capacity();
        drop(pool.share(again));
        let larger = pool.take(room + 1);
        assert_ne!(larger.as_ptr(), pointer, "too small, yet taken");
    }

    #[test]
    fn only_a_few_buffers_of_bounded_size_are_kept() {
        let pool = pool();
        drop(pool.share(Vec::with_capacity(KEPT_CAPACITY + 1)));
        let shared: Vec<Bytes> = (0..KEPT + 2)
            .map(|_| pool.share(Vec::with_capacity(16)))
            .collect();
        drop(shared);
        // A new buffer for no bytes has no capacity.
        let kept: Vec<Vec<u8>> = std::iter::from_fn(|| Some(pool.take(0)))
            .take_while(|buffer| buffer.capacity() > 0)
            .collect();
        assert_eq!(kept.len(), KEPT);
        assert!(kept.iter().all(|buffer| buffer.capacity() == 16));
    }
}
