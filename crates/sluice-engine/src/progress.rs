//! How far a `read` has got, per stream, for a display or a report to watch while it runs.
//!
//! The read loop counts into atomics (per page of records, per request, per slice), and a
//! watcher on any thread takes [`ReadProgress::snapshot`]s whenever it likes: no lock is held
//! while records flow, and without a [`ReadProgress`] in [`crate::SourceOptions`] nothing is
//! counted at all.
//!
//! ```
//! use sluice_engine::{ReadProgress, SourceOptions};
//! let progress = ReadProgress::new();
//! let options = SourceOptions { progress: Some(progress.clone()), ..SourceOptions::default() };
//! // ... Source::new(manifest, config, options)?.read(...) on one thread, and on another:
//! for stream in progress.snapshot() {
//!     println!("{}: {} records, {} requests", stream.name, stream.records, stream.requests);
//! }
//! # drop(options);
//! ```

use sluice_http::observe::HttpObserver;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The counters of one sync, one entry per stream of the catalog, in catalog order.
#[derive(Debug, Default)]
pub struct ReadProgress {
    streams: Mutex<Vec<Arc<StreamProgress>>>,
}

/// Where a stream is in the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPhase {
    /// Selected, not started yet (waiting for a free worker or its `stream_groups` turn).
    Waiting,
    Running,
    Complete,
    /// Ended with an error (some of its slices may have been read).
    Failed,
}

/// One stream's counts at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSnapshot {
    pub name: String,
    pub phase: StreamPhase,
    pub records: u64,
    /// HTTP requests sent while reading the stream: its parents' (unless answered from the
    /// response cache), retries and redirects included.
    pub requests: u64,
    /// Slices read to their end. A slice is one partition of the stream's router, or one
    /// window of the cursor within it.
    pub slices_done: u64,
    /// Slices generated so far.
    pub slices_known: u64,
    /// Whether every slice is generated, so `slices_known` is final.
    pub all_slices_known: bool,
    /// Failed requests sent again.
    pub retries: u64,
    /// Waits for the API's rate limit: retries of rate-limited requests and the `api_budget`
    /// holding requests back.
    pub rate_limit_waits: u64,
    /// The total of every retry's and rate limit's wait, as asked for.
    pub waited: Duration,
    /// From the stream's start to its end, or to now while it runs; zero before it starts.
    pub elapsed: Duration,
}

impl ReadProgress {
    /// An empty tally, to give to [`crate::SourceOptions::progress`] and watch.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Every stream of the sync so far, in catalog order.
    pub fn snapshot(&self) -> Vec<StreamSnapshot> {
        let now = Instant::now();
        self.lock().iter().map(|s| s.snapshot(now)).collect()
    }

    /// The counters of the stream `name`, added on first use.
    pub(crate) fn stream(&self, name: &str) -> Arc<StreamProgress> {
        let mut streams = self.lock();
        if let Some(stream) = streams.iter().find(|s| s.name == name) {
            return Arc::clone(stream);
        }
        let stream = Arc::new(StreamProgress::new(name));
        streams.push(Arc::clone(&stream));
        stream
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<StreamProgress>>> {
        // A watcher that panicked while holding the lock leaves the counters intact.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One stream's counters; the read loop and its requests write, [`ReadProgress`] reads.
#[derive(Debug)]
pub(crate) struct StreamProgress {
    name: String,
    phase: AtomicU8,
    records: AtomicU64,
    requests: AtomicU64,
    slices_done: AtomicU64,
    slices_known: AtomicU64,
    all_slices_known: AtomicBool,
    retries: AtomicU64,
    rate_limit_waits: AtomicU64,
    waited_micros: AtomicU64,
    started: OnceLock<Instant>,
    ended: OnceLock<Instant>,
}

const WAITING: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;
const FAILED: u8 = 3;

impl StreamProgress {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            phase: AtomicU8::new(WAITING),
            records: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            slices_done: AtomicU64::new(0),
            slices_known: AtomicU64::new(0),
            all_slices_known: AtomicBool::new(false),
            retries: AtomicU64::new(0),
            rate_limit_waits: AtomicU64::new(0),
            waited_micros: AtomicU64::new(0),
            started: OnceLock::new(),
            ended: OnceLock::new(),
        }
    }

    pub fn started(&self) {
        let _ = self.started.set(Instant::now());
        self.phase.store(RUNNING, Relaxed);
    }

    pub fn ended(&self, failed: bool) {
        let _ = self.ended.set(Instant::now());
        self.phase
            .store(if failed { FAILED } else { COMPLETE }, Relaxed);
    }

    pub fn records(&self, count: usize) {
        self.records.fetch_add(count as u64, Relaxed);
    }

    pub fn slice_generated(&self) {
        self.slices_known.fetch_add(1, Relaxed);
    }

    pub fn all_slices_generated(&self) {
        self.all_slices_known.store(true, Relaxed);
    }

    pub fn slice_done(&self) {
        self.slices_done.fetch_add(1, Relaxed);
    }

    fn waited(&self, wait: Duration) {
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        // Saturating: a server asking for years must not wrap the total around.
        let _ = self
            .waited_micros
            .fetch_update(Relaxed, Relaxed, |total| Some(total.saturating_add(micros)));
    }

    fn snapshot(&self, now: Instant) -> StreamSnapshot {
        let phase = match self.phase.load(Relaxed) {
            WAITING => StreamPhase::Waiting,
            RUNNING => StreamPhase::Running,
            COMPLETE => StreamPhase::Complete,
            _ => StreamPhase::Failed,
        };
        let elapsed = match (self.started.get(), self.ended.get()) {
            (Some(start), Some(end)) => end.saturating_duration_since(*start),
            (Some(start), None) => now.saturating_duration_since(*start),
            _ => Duration::ZERO,
        };
        StreamSnapshot {
            name: self.name.clone(),
            phase,
            records: self.records.load(Relaxed),
            requests: self.requests.load(Relaxed),
            slices_done: self.slices_done.load(Relaxed),
            slices_known: self.slices_known.load(Relaxed),
            all_slices_known: self.all_slices_known.load(Relaxed),
            retries: self.retries.load(Relaxed),
            rate_limit_waits: self.rate_limit_waits.load(Relaxed),
            waited: Duration::from_micros(self.waited_micros.load(Relaxed)),
            elapsed,
        }
    }
}

impl HttpObserver for StreamProgress {
    fn request_sent(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    fn answered_from_cache(&self) {
        let _ = self
            .requests
            .fetch_update(Relaxed, Relaxed, |sent| Some(sent.saturating_sub(1)));
    }

    fn retrying(&self, wait: Duration, rate_limited: bool) {
        self.retries.fetch_add(1, Relaxed);
        if rate_limited {
            self.rate_limit_waits.fetch_add(1, Relaxed);
        }
        self.waited(wait);
    }

    fn budget_wait(&self, wait: Duration) {
        self.rate_limit_waits.fetch_add(1, Relaxed);
        self.waited(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_stream_in_the_order_streams_appear() {
        let progress = ReadProgress::new();
        let users = progress.stream("users");
        let orders = progress.stream("orders");
        users.started();
        users.slice_generated();
        users.slice_generated();
        users.all_slices_generated();
        users.records(50);
        users.records(25);
        users.request_sent();
        users.request_sent();
        users.answered_from_cache();
        users.retrying(Duration::from_secs(2), true);
        users.retrying(Duration::from_secs(1), false);
        users.budget_wait(Duration::from_millis(500));
        users.slice_done();
        users.ended(false);
        // The same name gives the same counters.
        progress.stream("users").records(1);

        let snapshot = progress.snapshot();
        assert_eq!(snapshot.len(), 2);
        let users = &snapshot[0];
        assert_eq!(users.name, "users");
        assert_eq!(users.phase, StreamPhase::Complete);
        assert_eq!(users.records, 76);
        assert_eq!(users.requests, 1);
        assert_eq!((users.slices_done, users.slices_known), (1, 2));
        assert!(users.all_slices_known);
        assert_eq!((users.retries, users.rate_limit_waits), (2, 2));
        assert_eq!(users.waited, Duration::from_millis(3500));
        assert_eq!(snapshot[1].phase, StreamPhase::Waiting);
        assert_eq!(snapshot[1].elapsed, Duration::ZERO);
        orders.ended(true);
        assert_eq!(progress.snapshot()[1].phase, StreamPhase::Failed);
    }
}
