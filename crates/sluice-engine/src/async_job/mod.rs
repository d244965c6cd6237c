//! `AsyncRetriever`: records from server-side jobs (reports, exports). Per slice of the stream a
//! job is created (`creation_requester`), polled (`polling_requester`, `status_extractor`,
//! `status_mapping`) until it is complete, then its results are downloaded
//! (`download_target_extractor`, `download_target_requester`, `download_requester`,
//! `download_paginator`, `download_decoder`, `download_extractor`), selected by the stream's
//! record selector, and the job is deleted (`delete_requester`). Jobs that fail or time out are
//! tried again, up to three attempts (aborting timed-out ones with `abort_requester`); at most
//! `max_concurrent_async_job_count` jobs run at once across the source.
//!
//! - `status.rs`: job statuses and `status_mapping`;
//! - `job.rs`: a job's state machine and timer, retries, the job limit (pure);
//! - `orchestrator.rs`: creating, polling and retrying the jobs of a stream's slices;
//! - `download.rs`: reading a completed job's records;
//! - this file: the built component and its HTTP calls.

mod download;
mod job;
mod orchestrator;
mod status;

pub(crate) use download::JobPages;
pub(crate) use job::{DEFAULT_MAX_ATTEMPTS, Job, JobTracker};
pub(crate) use orchestrator::{Orchestrator, Step};
pub(crate) use status::StatusMap;

use crate::EngineError;
use crate::output::PendingMessages;
use crate::stream::{Retriever, http_error};
use job::Answer;
use serde_json::{Map, Value};
use sluice_http::{HttpResponse, RequestOptions, RequestVariables, Requester, Transport};
use sluice_records::{Decoder, Extractor, RecordSelector};
use sluice_slice::StreamSlice;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The reference waits this long between two rounds of polling.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// An AsyncRetriever, built.
#[derive(Debug)]
pub(crate) struct AsyncRetriever {
    pub stream: String,
    /// The stream's record selector: filters, transforms and normalises downloaded records
    /// (its decoder and extractor are not used, as in the reference).
    pub selector: RecordSelector,
    pub creation: Requester,
    pub polling: Requester,
    pub abort: Option<Requester>,
    pub delete: Option<Requester>,
    pub download_target_requester: Option<Requester>,
    /// Downloads one target: `download_requester`, `download_paginator`, and a selector of
    /// `download_decoder` and `download_extractor` that passes records on untouched.
    pub download: Retriever,
    /// `decoder`: reads the polling (and download target) responses.
    pub decoder: Decoder,
    pub status_extractor: Extractor,
    pub download_target_extractor: Option<Extractor>,
    pub status_map: StatusMap,
    /// `polling_job_timeout` (60 minutes by default).
    pub job_timeout: Duration,
    /// `failed_retry_wait_time_in_seconds`.
    pub failed_retry_wait: Option<Duration>,
    pub max_attempts: u32,
    pub tracker: Arc<JobTracker>,
    pub clock: Arc<JobClock>,
    /// ERROR traces of jobs that could not be created go out at once, as in the reference.
    pub messages: Arc<PendingMessages>,
}

/// The time jobs are timed by: real time plus the waits a replaying transport skipped, so a
/// replayed sync times its jobs out after as many polls as a real one.
#[derive(Debug)]
pub(crate) struct JobClock {
    start: Instant,
    skipped_us: AtomicU64,
}

impl Default for JobClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            skipped_us: AtomicU64::new(0),
        }
    }
}

impl JobClock {
    pub fn now(&self) -> Duration {
        self.start.elapsed() + Duration::from_micros(self.skipped_us.load(Ordering::Relaxed))
    }

    /// Waits `duration` through `transport` (which may not really wait).
    pub async fn wait(&self, transport: &dyn Transport, duration: Duration) {
        let started = Instant::now();
        transport.wait(duration).await;
        let skipped = duration.saturating_sub(started.elapsed());
        let skipped = u64::try_from(skipped.as_micros()).unwrap_or(u64::MAX);
        self.skipped_us.fetch_add(skipped, Ordering::Relaxed);
    }
}

/// The variables a requester of the job sees: the slice (with `extra` among its extra fields)
/// and each extra field by name.
fn job_slice(slice: &StreamSlice, extra: Map<String, Value>) -> StreamSlice {
    let mut slice = slice.clone();
    slice.extra_fields.extend(extra);
    slice
}

/// A response as templates see it (`creation_response`, `polling_response`): its JSON object,
/// with `headers` and `request` added unless the body has them.
pub(crate) fn response_context(answer: &Answer, what: &str) -> Result<Value, EngineError> {
    let body: Value = serde_json::from_slice(&answer.response.body).map_err(|e| {
        EngineError::system(format!(
            "the {what} response of {} {} is not JSON: {e}",
            answer.method, answer.url
        ))
    })?;
    let Value::Object(mut context) = body else {
        return Err(EngineError::system(format!(
            "the {what} response of {} {} is not a JSON object",
            answer.method, answer.url
        )));
    };
    if !context.contains_key("headers") {
        let headers: Map<String, Value> = answer
            .response
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        context.insert("headers".into(), Value::Object(headers));
    }
    if !context.contains_key("request") {
        let mut request = Map::new();
        request.insert("method".into(), Value::String(answer.method.into()));
        request.insert("url".into(), Value::String(answer.url.clone()));
        context.insert("request".into(), Value::Object(request));
    }
    Ok(Value::Object(context))
}

impl AsyncRetriever {
    /// Sends one request of `requester` for `slice`, whose extra fields templates also see by
    /// name; a response the error handler ignores is an error here, as in the reference.
    async fn send(
        &self,
        requester: &Requester,
        slice: &StreamSlice,
        what: &str,
    ) -> Result<Answer, EngineError> {
        let stream_slice = slice.template_value();
        let variables = RequestVariables {
            stream_slice: &stream_slice,
            next_page_token: None,
            extra: Some(&slice.extra_fields),
        };
        let request = requester
            .build(variables, &RequestOptions::default())
            .await
            .map_err(http_error)?;
        match requester.send(&request).await.map_err(http_error)? {
            Some(response) => Ok(Answer {
                method: request.method.as_str(),
                url: requester.mask(&request.url),
                response,
            }),
            None => Err(EngineError::system(format!(
                "Async job {what}: no response to {} {} (the error handler ignored it)",
                request.method,
                requester.mask(&request.url)
            ))),
        }
    }

    /// Creates the job of `slice` on the API.
    pub async fn create(&self, slice: &StreamSlice) -> Result<Answer, EngineError> {
        self.send(&self.creation, slice, "creation").await
    }

    /// The slice the polling, abort and delete requesters see: the job's, with
    /// `creation_response`.
    fn created_slice(&self, job: &Job) -> Result<StreamSlice, EngineError> {
        let creation = job.creation.as_ref().ok_or_else(|| {
            EngineError::system(format!("job {} was never created on the API side", job.id))
        })?;
        let mut extra = Map::new();
        extra.insert(
            "creation_response".into(),
            response_context(creation, "job creation")?,
        );
        Ok(job_slice(&job.slice, extra))
    }

    /// Polls the job: the API's status, mapped, and the response it came in.
    pub async fn poll(&self, job: &Job) -> Result<(status::JobStatus, Answer), EngineError> {
        let slice = self.created_slice(job)?;
        let answer = self.send(&self.polling, &slice, "polling").await?;
        let mut found = Vec::new();
        self.extract(&self.status_extractor, &answer.response, &mut found)?;
        let status = self
            .status_map
            .status_of(found.first())
            .map_err(EngineError::system)?;
        Ok((status, answer))
    }

    fn extract(
        &self,
        extractor: &Extractor,
        response: &HttpResponse,
        out: &mut Vec<Value>,
    ) -> Result<(), EngineError> {
        let decoded = self
            .decoder
            .decode(&response.body)
            .map_err(|e| EngineError::system(e.to_string()))?;
        extractor
            .extract(decoded.into_bodies(), out)
            .map_err(|e| EngineError::system(e.to_string()))?;
        Ok(())
    }

    /// Aborts the job on the API side, when the manifest says how.
    pub async fn abort(&self, job: &Job) -> Result<(), EngineError> {
        let Some(abort) = &self.abort else {
            return Ok(());
        };
        let slice = self.created_slice(job)?;
        self.send(abort, &slice, "abort").await.map(drop)
    }

    /// Deletes the job once its records are read, when the manifest says how.
    pub async fn delete(&self, job: &Job) -> Result<(), EngineError> {
        let Some(delete) = &self.delete else {
            return Ok(());
        };
        let slice = self.created_slice(job)?;
        self.send(delete, &slice, "deletion").await.map(drop)
    }

    /// What to download for a completed job: the download targets its polling response (or
    /// the `download_target_requester`'s) lists; one download without a target when the
    /// manifest extracts none.
    pub async fn download_targets(&self, job: &Job) -> Result<Vec<Value>, EngineError> {
        let Some(extractor) = &self.download_target_extractor else {
            return Ok(vec![Value::String(String::new())]);
        };
        let polling = job.polling.as_ref().ok_or_else(|| {
            EngineError::system(format!("job {} has no polling response", job.id))
        })?;
        let fetched;
        let response = match &self.download_target_requester {
            Some(requester) => {
                let mut extra = Map::new();
                extra.insert(
                    "polling_response".into(),
                    response_context(polling, "job polling")?,
                );
                let slice = job_slice(&StreamSlice::default(), extra);
                fetched = self.send(requester, &slice, "download target").await?;
                &fetched.response
            }
            None => &polling.response,
        };
        let mut targets = Vec::new();
        self.extract(extractor, response, &mut targets)?;
        Ok(targets)
    }

    /// The slice a download of `target` sees: the job's, with `download_target`,
    /// `creation_response` and `polling_response`.
    pub fn download_slice(&self, job: &Job, target: Value) -> Result<StreamSlice, EngineError> {
        let mut extra = Map::new();
        extra.insert("download_target".into(), target);
        if let Some(creation) = &job.creation {
            extra.insert(
                "creation_response".into(),
                response_context(creation, "job creation")?,
            );
        }
        if let Some(polling) = &job.polling {
            extra.insert(
                "polling_response".into(),
                response_context(polling, "job polling")?,
            );
        }
        Ok(job_slice(&job.slice, extra))
    }

    /// Waits before the next round of polling.
    pub async fn wait_between_polls(&self) {
        self.clock
            .wait(&*self.polling.transport, POLL_INTERVAL)
            .await;
    }
}
