//! A hook for watching the HTTP traffic of a piece of work, such as one stream's read.
//!
//! Requesters are built once and shared (a parent stream's requester serves every child that
//! reads it), so they cannot know on whose behalf they send. Instead the caller runs its work
//! inside [`observed`], and every [`Requester::send`](crate::Requester::send) polled within it
//! tells that work's [`HttpObserver`]. The observer lives in a task-local slot that is set
//! only while the work's future is polled, so several pieces of work running as futures on one
//! task each see their own requests. Without an observer nothing is counted and nothing costs.
//!
//! ```
//! use sluice_http::observe::{HttpObserver, observed};
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::time::Duration;
//!
//! #[derive(Debug, Default)]
//! struct Requests(AtomicU64);
//! impl HttpObserver for Requests {
//!     fn request_sent(&self) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//!     fn retrying(&self, _wait: Duration, _rate_limited: bool) {}
//!     fn budget_wait(&self, _wait: Duration) {}
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let requests = Arc::new(Requests::default());
//! let answer = observed(Some(requests.clone()), async { 42 }).await;
//! assert_eq!((answer, requests.0.load(Ordering::Relaxed)), (42, 0));
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Told of each HTTP event of the work it observes. Called on the sending task, so an
/// implementation should be quick (atomic counters, not I/O).
pub trait HttpObserver: Send + Sync + std::fmt::Debug {
    /// A request went out: each retry and each redirect followed is one more.
    fn request_sent(&self);
    /// A request failed and is sent again after `wait` (the backoff asked for, which a
    /// replaying transport does not sleep). `rate_limited` when the API said its rate limit was
    /// hit.
    fn retrying(&self, wait: Duration, rate_limited: bool);
    /// The source's own call budget (`api_budget`) holds a request back for `wait`.
    fn budget_wait(&self, wait: Duration);
    /// The request last told to [`HttpObserver::request_sent`] was answered from the parent
    /// streams' response cache: it never reached the API.
    fn answered_from_cache(&self) {}
}

tokio::task_local! {
    static OBSERVER: Arc<dyn HttpObserver>;
}

/// Runs `work`, telling `observer` of every request sent while it runs. `None` runs it as is.
pub async fn observed<F: Future>(observer: Option<Arc<dyn HttpObserver>>, work: F) -> F::Output {
    match observer {
        Some(observer) => OBSERVER.scope(observer, work).await,
        None => work.await,
    }
}

/// Tells the observer of the work being polled, if it has one.
pub(crate) fn notify(event: impl FnOnce(&dyn HttpObserver)) {
    // Outside `observed` there is no slot, which is the common case, not an error.
    let _ = OBSERVER.try_with(|observer| event(observer.as_ref()));
}
