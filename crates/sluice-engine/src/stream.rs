//! A stream built from the manifest: what `discover` says about it and how to read it.

use crate::EngineError;
use crate::dynamic_schema::DynamicSchema;
use crate::output::RecordData;
use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_http::{Action, HttpError, RequestOptions, RequestVariables, Requester};
use sluice_paginate::{
    PageInfo, PageRequestOptions, PageToken, PaginateError, PaginationResetPolicy,
    PaginationTracker, Paginator,
};
use sluice_protocol::{AirbyteStream, AsSent, SyncMode};
use sluice_records::{RecordSelector, SelectError, SelectVariables};

/// One stream of the manifest, ready to read.
#[derive(Debug)]
pub(crate) struct Stream {
    pub name: String,
    pub primary_key: Vec<Vec<String>>,
    pub schema: SchemaSource,
    pub retriever: Retriever,
}

/// Where a stream's JSON schema comes from.
#[derive(Debug)]
pub(crate) enum SchemaSource {
    /// Known when the stream is built (inline or from a file).
    Static(Map<String, Value>),
    /// Loaded from the API when asked for (`DynamicSchemaLoader`).
    Dynamic(Box<DynamicSchema>),
}

impl Stream {
    /// The stream's JSON schema, loading it from the API when the manifest says so.
    pub async fn json_schema(&self) -> Result<Map<String, Value>, EngineError> {
        match &self.schema {
            SchemaSource::Static(schema) => Ok(schema.clone()),
            SchemaSource::Dynamic(dynamic) => dynamic.loader.load().await,
        }
    }

    /// Reads every page of one slice. A dynamic schema is loaded first, as the reference does
    /// for each partition, and records are normalised by it when the selector asks for that.
    pub async fn read_records(
        &self,
        stream_slice: &Value,
        emit: impl FnMut(RecordData) -> Result<Flow, EngineError>,
    ) -> Result<(), EngineError> {
        let SchemaSource::Dynamic(dynamic) = &self.schema else {
            return self.retriever.read_records(stream_slice, emit).await;
        };
        let schema = dynamic.loader.load().await?;
        match &dynamic.normalizing_selector {
            Some(recipe) => {
                let selector = recipe.build(&schema)?;
                self.retriever
                    .read_records_with(&selector, stream_slice, emit)
                    .await
            }
            None => self.retriever.read_records(stream_slice, emit).await,
        }
    }

    /// The stream as `discover` describes it, with its schema loaded.
    pub async fn discover_entry(&self) -> Result<AirbyteStream, EngineError> {
        Ok(self.entry_with_schema(self.json_schema().await?))
    }

    /// The stream as `discover` describes it, without loading a dynamic schema (which is then
    /// empty): for catalogs made without reaching the API.
    pub fn catalog_entry(&self) -> AirbyteStream {
        let schema = match &self.schema {
            SchemaSource::Static(schema) => schema.clone(),
            SchemaSource::Dynamic(_) => Map::new(),
        };
        self.entry_with_schema(schema)
    }

    fn entry_with_schema(&self, json_schema: Map<String, Value>) -> AirbyteStream {
        let mut entry = AirbyteStream::new(&self.name, json_schema, vec![SyncMode::FullRefresh]);
        if !self.primary_key.is_empty() {
            entry.source_defined_primary_key = Some(self.primary_key.clone());
        }
        entry.is_resumable = Some(false);
        entry.is_file_based = Some(false);
        entry
    }
}

/// A SimpleRetriever: requests pages and selects records from them.
#[derive(Debug)]
pub(crate) struct Retriever {
    pub requester: Requester,
    pub selector: RecordSelector,
    pub paginator: Paginator,
    pub reset_policy: PaginationResetPolicy,
}

/// Whether the reader wants more records after the one it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

impl Retriever {
    /// Reads every page of one slice, handing each record to `emit` as soon as its page arrives.
    pub async fn read_records(
        &self,
        stream_slice: &Value,
        emit: impl FnMut(RecordData) -> Result<Flow, EngineError>,
    ) -> Result<(), EngineError> {
        self.read_records_with(&self.selector, stream_slice, emit)
            .await
    }

    /// [`Retriever::read_records`] with another record selector (one normalising by a schema
    /// loaded at read time).
    pub async fn read_records_with(
        &self,
        selector: &RecordSelector,
        stream_slice: &Value,
        mut emit: impl FnMut(RecordData) -> Result<Flow, EngineError>,
    ) -> Result<(), EngineError> {
        let mut token = self.paginator.initial_token();
        let mut tracker = self.reset_policy.tracker(false);
        let mut records = Vec::new();
        let empty_state = Value::Object(Map::new());
        loop {
            let options = request_options(self.paginator.request_options(token.as_ref()));
            let variables = RequestVariables {
                stream_slice,
                next_page_token: token.as_ref().map(PageToken::as_mapping),
            };
            let request = self
                .requester
                .build(variables, &options)
                .await
                .map_err(http_error)?;
            let response = match self.requester.send(&request).await {
                Ok(Some(response)) => response,
                Ok(None) => return Ok(()),
                // The error handler asks to read the slice again from its first page.
                Err(error) if error.action == Action::ResetPagination => {
                    tracing::info!("Hitting PaginationReset event: {}", error.message);
                    token = self.paginator.initial_token();
                    tracker.restart(true).map_err(paginate_error)?;
                    continue;
                }
                Err(error) => return Err(http_error(error)),
            };

            let first_body;
            let as_sent = self.page_as_sent(selector, &response.body);
            let (last_record, emitted, extracted) = match as_sent {
                Some((page, pagination_body)) => {
                    first_body = pagination_body;
                    let last_record = page.last().map(RecordData::to_value);
                    let count = page.len();
                    if emit_page(page, &mut tracker, &mut emit)? == Flow::Stop {
                        return Ok(());
                    }
                    (last_record, count, count)
                }
                None => {
                    let decoded = selector.decode(&response.body).map_err(select_error)?;
                    // The paginator reads the body after its records have been moved out; keep
                    // a copy only when one of its templates reads `response`.
                    first_body = self
                        .paginator
                        .needs_response_body()
                        .then(|| decoded.pagination_body().clone());
                    records.clear();
                    let select_variables = SelectVariables {
                        stream_slice,
                        next_page_token: token.as_ref().map(PageToken::as_mapping),
                        stream_state: &empty_state,
                    };
                    let outcome = match selector.select(decoded, &select_variables, &mut records) {
                        Ok(outcome) => outcome,
                        Err(error) => {
                            // What was selected before the failure is emitted, as the
                            // reference does.
                            for record in records.drain(..) {
                                emit(RecordData::Parsed(record))?;
                            }
                            return Err(select_error(error));
                        }
                    };
                    let last_record = records.last().cloned();
                    let page = records.drain(..).map(RecordData::Parsed);
                    if emit_page(page, &mut tracker, &mut emit)? == Flow::Stop {
                        return Ok(());
                    }
                    (last_record, outcome.emitted, outcome.extracted)
                }
            };
            if tracker.has_reached_limit() {
                tracing::info!("Hitting PaginationReset event: the page limit is reached");
                token = self.paginator.initial_token();
                tracker.restart(true).map_err(paginate_error)?;
                continue;
            }
            let page = PageInfo {
                response_body: first_body.as_ref(),
                headers: &response.headers,
                last_page_size: emitted,
                extracted_record_count: Some(extracted),
                last_record: last_record.as_ref(),
                current_token: token.as_ref(),
                stream_slice,
                page_size_override: None,
            };
            token = self
                .paginator
                .next_page_token(&page)
                .map_err(paginate_error)?;
            if token.is_none() {
                return Ok(());
            }
        }
    }

    /// The page's records as the API sent them, when the selector would pass them through
    /// unchanged and the paginator reads at most some top-level fields of the body: no record
    /// is parsed then, unless the reference would print it differently from how it was sent.
    /// Gives the records and, when the paginator reads the body, the fields it reads.
    fn page_as_sent(
        &self,
        selector: &RecordSelector,
        body: &Bytes,
    ) -> Option<(Vec<RecordData>, Option<Value>)> {
        let fields = self.paginator.response_keys()?;
        let page = selector.records_as_sent(body, fields)?;
        let mut records = Vec::with_capacity(page.records.len());
        for range in page.records {
            let json = body.slice(range);
            records.push(match sluice_protocol::classify_as_sent(&json) {
                AsSent::Identical => RecordData::AsSent(json),
                AsSent::Reprint => RecordData::Unparsed(json),
                // Anything the parser rejects sends the whole page through the full selector,
                // which decides what becomes of it.
                AsSent::Unsure => RecordData::Parsed(serde_json::from_slice(&json).ok()?),
            });
        }
        // The paginator reads the body exactly when it reads some of its fields.
        let pagination_body = if fields.is_empty() {
            None
        } else {
            let mut read = Map::new();
            for (name, range) in page.fields {
                read.insert(name, serde_json::from_slice(&body[range]).ok()?);
            }
            Some(Value::Object(read))
        };
        Some((records, pagination_body))
    }
}

/// Hands a page's records to `emit`, counting each for the pagination reset.
fn emit_page(
    records: impl IntoIterator<Item = RecordData>,
    tracker: &mut PaginationTracker,
    emit: &mut impl FnMut(RecordData) -> Result<Flow, EngineError>,
) -> Result<Flow, EngineError> {
    for record in records {
        tracker.observe();
        if emit(record)? == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

fn select_error(error: SelectError) -> EngineError {
    EngineError::system(error.to_string())
}

fn paginate_error(error: PaginateError) -> EngineError {
    if error.is_config_error() {
        EngineError::config(error.to_string())
    } else {
        EngineError::system(error.to_string())
    }
}

/// The paginator's parts of a request, in the requester's terms.
fn request_options(page: PageRequestOptions) -> RequestOptions {
    RequestOptions {
        query: page.query,
        headers: page.headers,
        body_json: page.body_json,
        body_data: page
            .body_data
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        url_override: None,
        path_override: page.path,
    }
}

pub(crate) fn http_error(error: HttpError) -> EngineError {
    if error.action != Action::Fail {
        // Pagination resets, page size reductions and window splits are not built yet: say so
        // rather than failing with the API's message alone.
        return EngineError::new(
            error.failure_type,
            format!(
                "{} (the error handler asked for {:?}, which sluice does not support yet)",
                error.message, error.action
            ),
        )
        .with_internal(error.internal_message);
    }
    EngineError::new(error.failure_type, error.message).with_internal(error.internal_message)
}
