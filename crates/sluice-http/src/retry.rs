//! The reference's retry bookkeeping.
//!
//! The reference wraps each send in three nested retry loops, one per kind of retry: the
//! innermost for waits a backoff strategy computed (it sleeps the wait plus one second), the
//! middle one for rate limits without such a wait, the outer one for other retryable failures
//! (both waiting 1, 2, 4... seconds). Each loop counts its own tries against `max_retries + 1`,
//! and an outer loop's retry restarts the loops inside it. The innermost and outer loops also
//! give up once `max_time` has passed. This module keeps those counters, so mixed failures are
//! retried exactly as often as the reference retries them.

use std::time::{Duration, Instant};

/// Which retry loop a retryable failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RetryKind {
    /// A backoff strategy gave a wait (`UserDefinedBackoffException`).
    UserDefined(f64),
    /// Rate limited, no strategy wait (`RateLimitBackoffException`).
    RateLimit,
    /// Any other retry (`DefaultBackoffException`).
    Default,
}

impl RetryKind {
    /// The reference's exception class, as its logs print it.
    pub fn exception_name(self) -> &'static str {
        match self {
            RetryKind::UserDefined(_) => {
                "airbyte_cdk.sources.streams.http.exceptions.UserDefinedBackoffException"
            }
            RetryKind::RateLimit => {
                "airbyte_cdk.sources.streams.http.exceptions.RateLimitBackoffException"
            }
            RetryKind::Default => {
                "airbyte_cdk.sources.streams.http.exceptions.DefaultBackoffException"
            }
        }
    }

    fn level(self) -> usize {
        match self {
            RetryKind::UserDefined(_) => 0,
            RetryKind::RateLimit => 1,
            RetryKind::Default => 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Loop {
    tries: u32,
    started: Instant,
    try_started: Instant,
    /// The exponent of the next exponential wait.
    next_exponent: i32,
}

impl Loop {
    fn new(now: Instant) -> Self {
        Self {
            tries: 1,
            started: now,
            try_started: now,
            next_exponent: 0,
        }
    }
}

/// What to do after a retryable failure.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Wait this long, then send again. `tries` is the count the reference logs.
    Wait {
        wait: Duration,
        tries: u32,
        logged_wait: String,
    },
    /// Stop: the retries are used up. `elapsed` is the giving-up loop's time, in seconds.
    GiveUp { tries: u32, elapsed: f64 },
}

/// The three nested retry loops of one request.
#[derive(Debug, Clone)]
pub(crate) struct RetryLoops {
    max_tries: u32,
    max_time: f64,
    loops: [Loop; 3],
}

impl RetryLoops {
    pub fn new(max_retries: u32, max_time: f64) -> Self {
        let now = Instant::now();
        Self {
            max_tries: max_retries.saturating_add(1),
            max_time,
            loops: [Loop::new(now); 3],
        }
    }

    /// Decides about a failure of the given kind.
    pub fn on_failure(&mut self, kind: RetryKind) -> Decision {
        let level = kind.level();
        let current = self.loops[level];
        let elapsed = current
            .try_started
            .duration_since(current.started)
            .as_secs_f64();
        // The rate-limit loop has no time limit.
        let timed_out = level != 1 && elapsed >= self.max_time;
        if current.tries == self.max_tries || timed_out {
            return Decision::GiveUp {
                tries: current.tries,
                elapsed: Instant::now().duration_since(current.started).as_secs_f64(),
            };
        }
        let (wait, logged_wait) = match kind {
            // The strategy's wait is slept with one extra second on top.
            RetryKind::UserDefined(seconds) => {
                let total = seconds + 1.0;
                (total, crate::backoff::py_float(total))
            }
            RetryKind::RateLimit | RetryKind::Default => {
                let exponential = 2f64.powi(current.next_exponent.min(62));
                if level == 2 && self.max_time - elapsed < exponential {
                    let remaining = self.max_time - elapsed;
                    (remaining, crate::backoff::py_float(remaining))
                } else {
                    (exponential, format!("{}", exponential as u64))
                }
            }
        };
        Decision::Wait {
            wait: Duration::try_from_secs_f64(wait.max(0.0)).unwrap_or(Duration::MAX),
            tries: current.tries,
            logged_wait,
        }
    }

    /// Records that the loop of `kind` sends again now: its count goes up and the loops inside
    /// it start over.
    pub fn retried(&mut self, kind: RetryKind) {
        let level = kind.level();
        let now = Instant::now();
        let current = &mut self.loops[level];
        current.tries += 1;
        current.try_started = now;
        current.next_exponent += 1;
        for inner in &mut self.loops[..level] {
            *inner = Loop::new(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loop_counts_its_own_tries() {
        let mut loops = RetryLoops::new(2, 600.0);
        for expected in [1, 2] {
            let Decision::Wait {
                tries, logged_wait, ..
            } = loops.on_failure(RetryKind::Default)
            else {
                panic!("should wait");
            };
            assert_eq!(tries, expected);
            assert_eq!(logged_wait, if expected == 1 { "1" } else { "2" });
            loops.retried(RetryKind::Default);
        }
        assert!(matches!(
            loops.on_failure(RetryKind::Default),
            Decision::GiveUp { tries: 3, .. }
        ));
    }

    #[test]
    fn an_outer_retry_restarts_the_inner_loops() {
        let mut loops = RetryLoops::new(1, 600.0);
        let Decision::Wait { logged_wait, .. } = loops.on_failure(RetryKind::UserDefined(0.5))
        else {
            panic!("should wait");
        };
        assert_eq!(logged_wait, "1.5");
        loops.retried(RetryKind::UserDefined(0.5));
        assert!(matches!(
            loops.on_failure(RetryKind::UserDefined(0.5)),
            Decision::GiveUp { .. }
        ));
        // A default retry in between gives the inner loop a fresh count.
        let mut loops = RetryLoops::new(1, 600.0);
        loops.retried(RetryKind::UserDefined(0.5));
        assert!(matches!(
            loops.on_failure(RetryKind::Default),
            Decision::Wait { .. }
        ));
        loops.retried(RetryKind::Default);
        assert!(matches!(
            loops.on_failure(RetryKind::UserDefined(0.5)),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn max_retries_zero_gives_up_at_once() {
        let mut loops = RetryLoops::new(0, 600.0);
        assert!(matches!(
            loops.on_failure(RetryKind::RateLimit),
            Decision::GiveUp { tries: 1, .. }
        ));
    }
}
