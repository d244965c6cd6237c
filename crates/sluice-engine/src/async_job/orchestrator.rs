//! Creating, polling and retrying the jobs of one read of a stream, as the reference's
//! `AsyncJobOrchestrator` does: each round starts jobs for new slices while the job limit
//! allows (retrying failed and timed-out jobs first), polls every running job once, hands on
//! the slices whose job is complete, and waits [`super::POLL_INTERVAL`] before the next round.

use super::job::{Job, JobPartition};
use super::status::JobStatus;
use super::{AsyncRetriever, DEFAULT_MAX_ATTEMPTS};
use crate::EngineError;
use sluice_protocol::{AirbyteMessage, FailureType};
use sluice_slice::StreamSlice;
use std::collections::VecDeque;

/// The jobs of one read of a stream.
#[derive(Debug)]
pub(crate) struct Orchestrator<'a> {
    retriever: &'a AsyncRetriever,
    /// A slice taken from the stream's slices but not started yet.
    pending: Option<StreamSlice>,
    slices_done: bool,
    running: Vec<JobPartition>,
    completed: VecDeque<Job>,
    /// Errors that did not stop the jobs; the read fails with them at the end.
    errors: Vec<EngineError>,
    rounds: u64,
    phase: Phase,
    finished: bool,
    next_id: u64,
}

/// The part of a round the orchestrator is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Wait after the previous round, then retry failed and timed-out jobs.
    Retry,
    /// Start jobs for new slices while the limit allows.
    Start,
    /// Poll the running jobs and sort them out.
    Poll,
}

/// What the orchestrator wants next.
// One value per slice or stream, moved rarely: boxing the large variant gains nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    /// A slice whose job is complete.
    Completed(Job),
    /// The next slice of the stream, to start a job for (`Orchestrator::offer`).
    NeedSlice,
    /// Every job is done.
    Done,
}

impl<'a> Orchestrator<'a> {
    pub fn new(retriever: &'a AsyncRetriever) -> Self {
        Self {
            retriever,
            pending: None,
            slices_done: false,
            running: Vec::new(),
            completed: VecDeque::new(),
            errors: Vec::new(),
            rounds: 0,
            phase: Phase::Retry,
            finished: false,
            next_id: 0,
        }
    }

    fn now(&self) -> std::time::Duration {
        self.retriever.clock.now()
    }

    /// The next slice of the stream (`None`: there are no more), when [`Step::NeedSlice`]
    /// asked for it.
    pub fn offer(&mut self, slice: Option<StreamSlice>) {
        match slice {
            Some(slice) => self.pending = Some(slice),
            None => self.slices_done = true,
        }
    }

    /// The stream's slices could not be generated: no more slices; a config error stops
    /// every job, anything else fails the read at its end, as in the reference.
    pub async fn slices_failed(&mut self, error: EngineError) -> Result<(), EngineError> {
        tracing::warn!(
            "Caught exception that stops the processing of the jobs: {}",
            error.message
        );
        self.slices_done = true;
        if error.failure_type == FailureType::ConfigError {
            return Err(self.stop(error).await);
        }
        self.errors.push(error);
        Ok(())
    }

    /// Runs rounds until a job completes, a slice is needed or everything is done.
    pub async fn step(&mut self) -> Result<Step, EngineError> {
        loop {
            if let Some(job) = self.completed.pop_front() {
                return Ok(Step::Completed(job));
            }
            if self.finished {
                return Ok(Step::Done);
            }
            match self.phase {
                Phase::Retry => {
                    if self.rounds > 0 {
                        // Nothing to wait for when no job runs and the next may start now.
                        let idle = self.running.is_empty() && self.retriever.tracker.has_room();
                        if !idle {
                            self.retriever.wait_between_polls().await;
                        }
                    }
                    for index in 0..self.running.len() {
                        if let Err(error) = self.replace_failed_job(index).await {
                            return Err(self.stop(error).await);
                        }
                    }
                    self.phase = Phase::Start;
                }
                Phase::Start => {
                    if self.pending.is_none() {
                        if !self.slices_done && self.retriever.tracker.has_room() {
                            return Ok(Step::NeedSlice);
                        }
                        self.phase = Phase::Poll;
                        continue;
                    }
                    if !self.retriever.tracker.try_acquire() {
                        tracing::debug!(
                            "Waiting before creating more jobs as the limit of concurrent jobs has been reached. Will try again later..."
                        );
                        self.phase = Phase::Poll;
                        continue;
                    }
                    let Some(slice) = self.pending.take() else {
                        continue;
                    };
                    match self.start_job(slice).await {
                        Ok(job) => {
                            let partition = JobPartition::new(job, self.max_attempts());
                            self.running.push(partition);
                        }
                        Err(error) => {
                            self.retriever.tracker.release();
                            return Err(self.stop(error).await);
                        }
                    }
                }
                Phase::Poll => {
                    if self.running.is_empty() && self.pending.is_none() {
                        if !self.slices_done {
                            // Whether another slice comes decides whether the jobs are over.
                            return Ok(Step::NeedSlice);
                        }
                        self.finished = true;
                        return self.finish().map(|()| Step::Done);
                    }
                    match self.update_statuses().await {
                        Ok(()) => self.process_partitions().await,
                        Err(error) if error.failure_type == FailureType::ConfigError => {
                            return Err(self.stop(error).await);
                        }
                        Err(error) => {
                            tracing::warn!(
                                "Caught exception that stops the processing of the jobs: {}",
                                error.message
                            );
                            self.errors.push(error);
                        }
                    }
                    self.rounds += 1;
                    self.phase = Phase::Retry;
                }
            }
        }
    }

    /// Stops every job after an error that ends the read.
    async fn stop(&mut self, error: EngineError) -> EngineError {
        tracing::warn!(
            "Caught exception that stops the processing of the jobs: {}",
            error.message
        );
        self.abort_all().await;
        self.finished = true;
        error
    }

    fn max_attempts(&self) -> u32 {
        if self.retriever.max_attempts == 0 {
            DEFAULT_MAX_ATTEMPTS
        } else {
            self.retriever.max_attempts
        }
    }

    /// Creates the job of `slice`. A job the API refuses becomes a failed job, retried like
    /// any failed job (its error goes out at once); a config error stops everything.
    async fn start_job(&mut self, slice: StreamSlice) -> Result<Job, EngineError> {
        self.next_id += 1;
        let id = format!("{}-job-{}", self.retriever.stream, self.next_id);
        match self.retriever.create(&slice).await {
            Ok(answer) => Ok(Job::new(
                id,
                slice,
                answer,
                self.retriever.job_timeout,
                self.now(),
            )),
            Err(error) => {
                tracing::warn!("Exception has occurred during job creation: {}", error);
                if error.failure_type == FailureType::ConfigError {
                    return Err(error);
                }
                let partition = serde_json::to_string(&slice.template_value()).unwrap_or_default();
                tracing::warn!(
                    "Could not start job for slice {partition}. Job will be flagged as failed and retried if max number of attempts not reached: {error}"
                );
                self.retriever.messages.push(AirbyteMessage::error_trace(
                    error.message.clone(),
                    error.internal_message.clone(),
                    error.failure_type,
                    None,
                ));
                Ok(Job::creation_failed(
                    format!("{id} - Job that could not start"),
                    slice,
                    self.now(),
                ))
            }
        }
    }

    /// Starts the job of a running partition again when it failed or timed out, unless a
    /// failed job must wait `failed_retry_wait_time_in_seconds` first.
    async fn replace_failed_job(&mut self, index: usize) -> Result<(), EngineError> {
        let now = self.now();
        let wait = self.retriever.failed_retry_wait;
        let partition = &mut self.running[index];
        let status = partition.job.status(now);
        if !matches!(status, JobStatus::Failed | JobStatus::TimedOut) {
            return Ok(());
        }
        if let Some(wait) = wait {
            let job = &mut partition.job;
            if status == JobStatus::Failed && !job.is_creation_failure() {
                if !job.ready_to_retry(now) {
                    return Ok(());
                }
                if !job.retry_deferred() {
                    job.set_retry_after(now + wait);
                    tracing::info!(
                        "Job {} failed. Deferring retry for {} seconds.",
                        job.id,
                        wait.as_secs()
                    );
                    return Ok(());
                }
            }
        }
        let slice = partition.job.slice.clone();
        tracing::debug!("Attempting to replace job {}...", partition.job.id);
        // The new attempt keeps the slot of the job it replaces.
        let job = self.start_job(slice).await?;
        self.running[index].replace(job);
        Ok(())
    }

    /// Polls every running job once.
    async fn update_statuses(&mut self) -> Result<(), EngineError> {
        for index in 0..self.running.len() {
            let now = self.now();
            if self.running[index].job.status(now) != JobStatus::Running {
                continue;
            }
            let (status, answer) = self.retriever.poll(&self.running[index].job).await?;
            let now = self.now();
            let job = &mut self.running[index].job;
            tracing::debug!(
                "Status of job {} is now {} (was {})",
                job.id,
                status.name(),
                job.status(now).name()
            );
            job.update_status(status, now);
            if status == JobStatus::Completed {
                job.polling = Some(answer);
            }
        }
        Ok(())
    }

    /// Hands on completed jobs, drops skipped ones, gives up on jobs out of attempts and keeps
    /// the others (failed and timed-out jobs first, to be retried).
    async fn process_partitions(&mut self) {
        let mut still_running: Vec<JobPartition> = Vec::new();
        let partitions = std::mem::take(&mut self.running);
        for partition in partitions {
            let now = self.now();
            let slice_text =
                serde_json::to_string(&partition.job.slice.template_value()).unwrap_or_default();
            match partition.status(now) {
                JobStatus::Completed => {
                    tracing::info!(
                        "The following jobs for stream slice {slice_text} have been completed: ['{}'].",
                        partition.job.id
                    );
                    self.retriever.tracker.release();
                    self.completed.push_back(partition.job);
                }
                JobStatus::Skipped => {
                    tracing::info!(
                        "The following jobs for stream slice {slice_text} have been skipped (no data to return): ['{}'].",
                        partition.job.id
                    );
                    self.retriever.tracker.release();
                }
                JobStatus::Running => still_running.push(partition),
                status if partition.has_reached_max_attempts() => {
                    if status == JobStatus::TimedOut {
                        self.abort(&partition.job).await;
                    }
                    self.retriever.tracker.release();
                    self.errors.push(
                        EngineError::system("Async job failed after exhausting all retry attempts.")
                            .with_internal(format!(
                                "At least one job could not be completed for slice {slice_text}. Job statuses were: {{'{}': {}}}. See warning logs for more information.",
                                partition.job.id,
                                status.name()
                            )),
                    );
                }
                status => {
                    if status == JobStatus::TimedOut {
                        self.abort(&partition.job).await;
                    }
                    still_running.insert(0, partition);
                }
            }
        }
        self.running = still_running;
    }

    /// Aborts a job on the API side; a failure is only logged.
    async fn abort(&self, job: &Job) {
        if let Err(error) = self.retriever.abort(job).await {
            tracing::warn!("Could not free budget for job {}: {}", job.id, error);
        }
    }

    /// Stops every running job (a config error ends the read).
    async fn abort_all(&mut self) {
        let now = self.now();
        for partition in std::mem::take(&mut self.running) {
            if matches!(
                partition.job.status(now),
                JobStatus::Running | JobStatus::TimedOut
            ) && partition.job.creation.is_some()
            {
                self.abort(&partition.job).await;
            }
            self.retriever.tracker.release();
        }
    }

    /// The end of the jobs: fails when some job could not be completed.
    fn finish(&mut self) -> Result<(), EngineError> {
        tracing::info!(
            "JobOrchestrator loop of stream {} completed after {} rounds",
            self.retriever.stream,
            self.rounds
        );
        if self.errors.is_empty() {
            return Ok(());
        }
        let internal: Vec<String> = self
            .errors
            .drain(..)
            .map(|e| match e.internal_message {
                Some(internal) => format!("{}: {internal}", e.message),
                None => e.message,
            })
            .collect();
        Err(EngineError::system(
            "One or more async jobs failed after exhausting all retry attempts.",
        )
        .with_internal(internal.join("\n")))
    }
}
