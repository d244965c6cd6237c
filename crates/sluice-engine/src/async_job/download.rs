//! Reading a completed job: each download target's pages, through the download requester and
//! paginator, then the stream's record selector; the job is deleted once every target is read.

use super::AsyncRetriever;
use super::job::Job;
use crate::EngineError;
use crate::output::RecordData;
use crate::stream::{PageReader, RecordGate, SelectorHandle};
use serde_json::Value;
use sluice_paginate::PageRequestOptions;
use sluice_records::SelectVariables;
use std::collections::VecDeque;

/// The pages of a completed job's slice.
pub(crate) struct JobPages<'a> {
    retriever: &'a AsyncRetriever,
    selector: SelectorHandle<'a>,
    /// The slice's value for the record selector's templates.
    stream_slice: Value,
    job: Option<Job>,
    targets: Option<VecDeque<Value>>,
    current: Option<PageReader<'a>>,
    records: Vec<Value>,
}

impl<'a> JobPages<'a> {
    pub fn new(retriever: &'a AsyncRetriever, selector: SelectorHandle<'a>, job: Job) -> Self {
        Self {
            retriever,
            selector,
            stream_slice: job.slice.template_value(),
            job: Some(job),
            targets: None,
            current: None,
            records: Vec::new(),
        }
    }

    /// The next downloaded page's records, selected; `None` once the job is read (and deleted).
    pub async fn next_page(
        &mut self,
        gate: RecordGate<'_>,
    ) -> Result<Option<Vec<RecordData>>, EngineError> {
        let retriever = self.retriever;
        loop {
            if let Some(pages) = self.current.as_mut() {
                match pages.next_page(RecordGate::default()).await? {
                    Some(page) => return self.select(page, gate).map(Some),
                    None => self.current = None,
                }
            }
            let Some(job) = self.job.as_ref() else {
                return Ok(None);
            };
            if self.targets.is_none() {
                self.targets = Some(retriever.download_targets(job).await?.into());
            }
            match self.targets.as_mut().and_then(VecDeque::pop_front) {
                Some(target) => {
                    let slice = retriever.download_slice(job, target)?;
                    let pages = PageReader::new(
                        &retriever.download,
                        SelectorHandle::Borrowed(&retriever.download.selector),
                        slice.template_value(),
                        PageRequestOptions::default(),
                    )
                    .with_variables(slice.extra_fields);
                    self.current = Some(pages);
                }
                None => {
                    retriever.delete(job).await?;
                    self.job = None;
                }
            }
        }
    }

    /// Filters, transforms and normalises a downloaded page's records.
    fn select(
        &mut self,
        page: Vec<RecordData>,
        gate: RecordGate<'_>,
    ) -> Result<Vec<RecordData>, EngineError> {
        let empty_state = Value::Object(serde_json::Map::new());
        let variables = SelectVariables {
            stream_slice: &self.stream_slice,
            next_page_token: None,
            stream_state: &empty_state,
            truncated: None,
        };
        let records: Vec<Value> = page.into_iter().map(RecordData::into_value).collect();
        self.records.clear();
        let in_range = |record: &Value| {
            gate.keep.is_none_or(|keep| keep(record)) && gate.feed.is_none_or(|feed| feed(record))
        };
        self.selector
            .select_extracted(records, &variables, &mut self.records, in_range)
            .map_err(|e| EngineError::system(e.to_string()))?;
        Ok(self.records.drain(..).map(RecordData::Parsed).collect())
    }
}

impl std::fmt::Debug for JobPages<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobPages")
            .field("job", &self.job.as_ref().map(|j| &j.id))
            .finish()
    }
}
