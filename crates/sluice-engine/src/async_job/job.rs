//! One asynchronous job and its timer, the partition that retries it, and the limit on jobs
//! running at once: the pure state machine of the reference's `AsyncJob`, `AsyncPartition` and
//! `JobTracker`. Times are durations on a [`JobClock`](super::JobClock), passed in, so the
//! machine is tested without waiting.

use super::status::JobStatus;
use sluice_http::HttpResponse;
use sluice_slice::StreamSlice;
use std::sync::Mutex;
use std::time::Duration;

/// The reference's default number of attempts per job.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// A job: the slice it is for, what the API answered, and its status with its timer.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// sluice's name for the job in logs (the reference makes one up too).
    pub id: String,
    pub slice: StreamSlice,
    /// The creation request's URL, method and response (`None` when creation failed).
    pub creation: Option<Answer>,
    /// The polling response that said the job is complete.
    pub polling: Option<Answer>,
    status: JobStatus,
    /// `None`: the job never times out (a creation failure).
    timeout: Option<Duration>,
    started: Option<Duration>,
    ended: Option<Duration>,
    retry_after: Option<Duration>,
    creation_failure: bool,
}

/// A response with the request it answers, as templates see it (`creation_response`).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub method: &'static str,
    pub url: String,
    pub response: HttpResponse,
}

impl Job {
    /// A job the API accepted at `now`; it runs until its status says otherwise or `timeout`
    /// passes.
    pub fn new(
        id: String,
        slice: StreamSlice,
        creation: Answer,
        timeout: Duration,
        now: Duration,
    ) -> Self {
        Self {
            id,
            slice,
            creation: Some(creation),
            polling: None,
            status: JobStatus::Running,
            timeout: Some(timeout),
            started: Some(now),
            ended: None,
            retry_after: None,
            creation_failure: false,
        }
    }

    /// A job that could not be created: failed from the start, so the retry of failed jobs
    /// tries to create it again.
    pub fn creation_failed(id: String, slice: StreamSlice, now: Duration) -> Self {
        let mut job = Self {
            id,
            slice,
            creation: None,
            polling: None,
            status: JobStatus::Running,
            timeout: None,
            started: Some(now),
            ended: None,
            retry_after: None,
            creation_failure: true,
        };
        job.update_status(JobStatus::Failed, now);
        job
    }

    /// The status at `now`: timed out once the timer ran longer than the timeout, whatever
    /// the API said last.
    pub fn status(&self, now: Duration) -> JobStatus {
        if self.has_timed_out(now) {
            JobStatus::TimedOut
        } else {
            self.status
        }
    }

    fn has_timed_out(&self, now: Duration) -> bool {
        match (self.started, self.timeout) {
            (Some(started), Some(timeout)) => {
                self.ended.unwrap_or(now).saturating_sub(started) > timeout
            }
            _ => false,
        }
    }

    /// Records the status the API gave at `now`: a terminal status stops the timer, running
    /// again after a terminal status restarts it.
    pub fn update_status(&mut self, status: JobStatus, now: Duration) {
        if self.status != JobStatus::Running && status == JobStatus::Running {
            self.started = Some(now);
            self.ended = None;
        } else if status.is_terminal() && self.ended.is_none() {
            self.ended = Some(now);
        }
        self.status = status;
    }

    /// Whether the job was never created on the API side.
    pub fn is_creation_failure(&self) -> bool {
        self.creation_failure
    }

    /// Defers the retry of the job until `at`.
    pub fn set_retry_after(&mut self, at: Duration) {
        self.retry_after = Some(at);
    }

    /// Whether a deferred retry was scheduled.
    pub fn retry_deferred(&self) -> bool {
        self.retry_after.is_some()
    }

    /// Whether the job may be retried at `now`.
    pub fn ready_to_retry(&self, now: Duration) -> bool {
        self.retry_after.is_none_or(|at| now >= at)
    }
}

/// A slice's job and how many times it was tried (the reference's `AsyncPartition`, which
/// always holds one job).
#[derive(Debug)]
pub(crate) struct JobPartition {
    pub job: Job,
    attempts: u32,
    max_attempts: u32,
}

impl JobPartition {
    pub fn new(job: Job, max_attempts: u32) -> Self {
        Self {
            job,
            attempts: 1,
            max_attempts,
        }
    }

    pub fn status(&self, now: Duration) -> JobStatus {
        self.job.status(now)
    }

    pub fn has_reached_max_attempts(&self) -> bool {
        self.attempts >= self.max_attempts
    }

    /// Replaces the job by a new attempt.
    pub fn replace(&mut self, job: Job) {
        self.attempts += 1;
        self.job = job;
    }

    #[cfg(test)]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// How many jobs may run at once across every stream of the source
/// (`max_concurrent_async_job_count`, 1 by default); a slot is taken when a job is created and
/// given back once its partition is complete, skipped or given up.
#[derive(Debug)]
pub(crate) struct JobTracker {
    limit: usize,
    running: Mutex<usize>,
}

impl JobTracker {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            running: Mutex::new(0),
        }
    }

    /// Takes a slot if one is free.
    pub fn try_acquire(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if *running >= self.limit {
            return false;
        }
        *running += 1;
        true
    }

    /// Whether a slot is free.
    pub fn has_room(&self) -> bool {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) < self.limit
    }

    pub fn release(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        *running = running.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn answer() -> Answer {
        Answer {
            method: "POST",
            url: "https://api.example.com/jobs".into(),
            response: HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: Default::default(),
            },
        }
    }

    fn job(timeout: u64) -> Job {
        Job::new(
            "job".into(),
            StreamSlice::default(),
            answer(),
            secs(timeout),
            secs(0),
        )
    }

    #[test]
    fn a_running_job_times_out_after_its_timeout() {
        let job = job(60);
        assert_eq!(job.status(secs(60)), JobStatus::Running);
        assert_eq!(job.status(secs(61)), JobStatus::TimedOut);
    }

    #[test]
    fn a_terminal_status_stops_the_timer() {
        let mut job = job(60);
        job.update_status(JobStatus::Completed, secs(30));
        assert_eq!(job.status(secs(3600)), JobStatus::Completed);
        // Completed too late is timed out, as in the reference.
        let mut late = self::job(60);
        late.update_status(JobStatus::Completed, secs(90));
        assert_eq!(late.status(secs(90)), JobStatus::TimedOut);
    }

    #[test]
    fn running_again_restarts_the_timer() {
        let mut job = job(60);
        job.update_status(JobStatus::Failed, secs(50));
        job.update_status(JobStatus::Running, secs(100));
        assert_eq!(job.status(secs(150)), JobStatus::Running);
        assert_eq!(job.status(secs(161)), JobStatus::TimedOut);
    }

    #[test]
    fn the_api_can_say_timed_out() {
        let mut job = job(60);
        job.update_status(JobStatus::TimedOut, secs(5));
        assert_eq!(job.status(secs(5)), JobStatus::TimedOut);
    }

    #[test]
    fn a_creation_failure_is_failed_and_never_times_out() {
        let job = Job::creation_failed("x".into(), StreamSlice::default(), secs(0));
        assert!(job.is_creation_failure());
        assert_eq!(job.status(secs(1_000_000)), JobStatus::Failed);
    }

    #[test]
    fn deferred_retries_wait_their_time() {
        let mut job = job(60);
        assert!(job.ready_to_retry(secs(0)));
        assert!(!job.retry_deferred());
        job.set_retry_after(secs(10));
        assert!(job.retry_deferred());
        assert!(!job.ready_to_retry(secs(9)));
        assert!(job.ready_to_retry(secs(10)));
    }

    #[test]
    fn a_partition_counts_its_attempts() {
        let mut partition = JobPartition::new(job(60), DEFAULT_MAX_ATTEMPTS);
        assert!(!partition.has_reached_max_attempts());
        partition.replace(job(60));
        assert!(!partition.has_reached_max_attempts());
        partition.replace(job(60));
        assert_eq!(partition.attempts(), 3);
        assert!(partition.has_reached_max_attempts());
    }

    #[test]
    fn the_tracker_limits_jobs_at_once() {
        let tracker = JobTracker::new(2);
        assert!(tracker.try_acquire());
        assert!(tracker.try_acquire());
        assert!(!tracker.has_room());
        assert!(!tracker.try_acquire());
        tracker.release();
        assert!(tracker.try_acquire());
        // A limit below one is one.
        let one = JobTracker::new(0);
        assert!(one.try_acquire());
        assert!(!one.try_acquire());
    }
}
