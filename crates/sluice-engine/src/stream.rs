//! A stream built from the manifest: what `discover` says about it and how to read it.

use crate::EngineError;
use crate::actions::{
    PageSizeReducer, PageSizeReduction, Splitting, WindowSplitting, reduction_not_supported,
    split_not_supported,
};
use crate::dynamic_schema::DynamicSchema;
use crate::file_upload::FileUploader;
use crate::output::RecordData;
use crate::slicing::Slicing;
use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::{Map, Value};
use sluice_http::{Action, HttpError, HttpResponse, RequestOptions, RequestVariables, Requester};
use sluice_http::{PAGE_BUFFERS, PageBuffers};
use sluice_paginate::{
    PageInfo, PageRequestOptions, PageToken, PaginateError, PaginationResetPolicy,
    PaginationTracker, Paginator,
};
use sluice_protocol::{AirbyteStream, AsSent, SentEntry, SyncMode};
use sluice_records::{
    AsSentOutcome, RecordAsSent, RecordEditor, RecordSelector, SelectError, SelectVariables,
    TruncatedLists,
};
use sluice_slice::{DatetimeSpec, StreamSlice};
use std::sync::Arc;
use time::OffsetDateTime;

mod chunked;

/// One stream of the manifest, ready to read.
#[derive(Debug)]
pub(crate) struct Stream {
    pub name: String,
    pub primary_key: Vec<Vec<String>>,
    pub schema: SchemaSource,
    pub retriever: StreamRetriever,
    /// How the stream is split into slices and what state it keeps.
    pub slicing: Slicing,
    /// A `StateDelegatingStream`'s incremental stream, read instead of this one (its full
    /// refresh stream) once the stream has state.
    pub with_state: Option<Delegation>,
}

/// The incremental side of a `StateDelegatingStream`.
#[derive(Debug)]
pub(crate) struct Delegation {
    pub incremental: Box<Stream>,
    /// `api_retention_period`: a state older than this reads the full refresh stream again.
    pub retention: Option<sluice_slice::datetime::IsoDuration>,
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

    /// The record selector reads use: the stream's, or one normalising by a schema loaded now
    /// (the reference loads a dynamic schema once per stream and caches it).
    pub async fn selector_for_read(&self) -> Result<SelectorHandle<'_>, EngineError> {
        let SchemaSource::Dynamic(dynamic) = &self.schema else {
            return Ok(SelectorHandle::Borrowed(self.retriever.selector()));
        };
        let Some(recipe) = &dynamic.normalizing_selector else {
            return Ok(SelectorHandle::Borrowed(self.retriever.selector()));
        };
        let schema = dynamic.loader.load().await?;
        Ok(SelectorHandle::Shared(Arc::new(recipe.build(&schema)?)))
    }

    /// Tells the stream what the configured catalog selects of it (`read`): a
    /// `JsonSchemaPropertySelector` asks only for the properties of `json_schema`.
    pub fn configure_for_read(&self, json_schema: &Map<String, Value>) {
        if let StreamRetriever::Simple(retriever) = &self.retriever {
            if let Some(query_properties) = &retriever.query_properties {
                query_properties.configure(json_schema);
            }
        }
        if let Some(delegation) = &self.with_state {
            delegation.incremental.configure_for_read(json_schema);
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
        let cursor_field = self.slicing.cursor.cursor_field();
        let modes = match cursor_field {
            Some(_) => vec![SyncMode::FullRefresh, SyncMode::Incremental],
            None => vec![SyncMode::FullRefresh],
        };
        let mut entry = AirbyteStream::new(&self.name, json_schema, modes);
        if let Some(field) = cursor_field {
            entry.source_defined_cursor =
                Some(!self.slicing.cursor.catalog_may_choose_cursor_field());
            entry.default_cursor_field = Some(vec![field.to_owned()]);
        }
        if !self.primary_key.is_empty() {
            entry.source_defined_primary_key = Some(self.primary_key.clone());
        }
        entry.is_resumable = Some(cursor_field.is_some());
        entry.is_file_based = Some(matches!(
            &self.retriever,
            StreamRetriever::Simple(retriever) if retriever.file_uploader.is_some()
        ));
        entry
    }
}

/// A record selector a reader uses: the stream's own, or one built for this read.
#[derive(Debug, Clone)]
pub(crate) enum SelectorHandle<'a> {
    Borrowed(&'a RecordSelector),
    Shared(Arc<RecordSelector>),
}

impl std::ops::Deref for SelectorHandle<'_> {
    type Target = RecordSelector;

    fn deref(&self) -> &RecordSelector {
        match self {
            SelectorHandle::Borrowed(selector) => selector,
            SelectorHandle::Shared(selector) => selector,
        }
    }
}

/// How a stream gets its records.
#[derive(Debug)]
pub(crate) enum StreamRetriever {
    /// Page by page (`SimpleRetriever`).
    Simple(Box<Retriever>),
    /// From server-side jobs (`AsyncRetriever`).
    Async(Box<crate::async_job::AsyncRetriever>),
}

impl StreamRetriever {
    /// The stream's record selector.
    pub fn selector(&self) -> &RecordSelector {
        match self {
            StreamRetriever::Simple(retriever) => &retriever.selector,
            StreamRetriever::Async(retriever) => &retriever.selector,
        }
    }
}

/// A SimpleRetriever: requests pages and selects records from them.
#[derive(Debug)]
pub(crate) struct Retriever {
    pub requester: Requester,
    pub selector: RecordSelector,
    pub paginator: Paginator,
    pub reset_policy: PaginationResetPolicy,
    /// `ignore_stream_slicer_parameters_on_paginated_requests`: a request with a page token
    /// (the initial one included) carries only the paginator's options, not the slice's.
    pub ignore_slice_options_when_paginated: bool,
    /// The stream's `file_uploader`, run on every record selected.
    pub file_uploader: Option<FileUploader>,
    /// The record expander's `truncated_list_retriever`: reads the complete nested list of a
    /// record marked as truncated.
    pub truncated_list: Option<Box<Retriever>>,
    /// The stream the retriever reads (named in the errors of the two actions below).
    pub stream_name: String,
    /// `page_size_reduction`: on `REDUCE_PAGE_SIZE`, the same page with a smaller page size.
    pub page_size_reduction: Option<PageSizeReduction>,
    /// `request_window_splitting`: on `SPLIT_REQUEST_WINDOW`, the window read as two halves.
    pub window_splitting: Option<WindowSplitting>,
    /// The requester's `QueryProperties`: each page is requested once per chunk of properties
    /// and the chunks' records merged (`stream/chunked.rs`).
    pub query_properties: Option<Box<crate::query_properties::QueryProperties>>,
}

/// Which records of a page go on, for incremental streams: a client-side filter counts as part
/// of record selection (its drops shorten the page for the paginator); a data feed's stop
/// condition looks at the page's last record before its own filter drops old records.
#[derive(Clone, Copy, Default)]
pub(crate) struct RecordGate<'g> {
    /// Keeps a record (client-side incremental).
    pub keep: Option<&'g dyn Fn(&Value) -> bool>,
    /// Whether a data feed has read everything new: paging stops after a page whose last
    /// record this rejects, and the page's rejected records are dropped.
    pub feed: Option<&'g dyn Fn(&Value) -> bool>,
}

impl RecordGate<'_> {
    fn is_open(&self) -> bool {
        self.keep.is_none() && self.feed.is_none()
    }
}

/// Reads the pages of one slice, one at a time.
pub(crate) struct PageReader<'a> {
    retriever: &'a Retriever,
    selector: SelectorHandle<'a>,
    stream_slice: Value,
    slice_options: PageRequestOptions,
    token: Option<PageToken>,
    tracker: PaginationTracker,
    records: Vec<Value>,
    done: bool,
    /// An error to report once the records selected before it are handed on.
    failure: Option<EngineError>,
    /// The first page, already at hand (`lazy_read_pointer`).
    embedded_page: Option<Bytes>,
    narrowing: Option<Narrowing<'a>>,
    /// The page size in effect (`page_size_reduction`).
    reducer: Option<PageSizeReducer<'a>>,
    /// The windows a split window is read as (`request_window_splitting`).
    splitting: Option<Box<Splitting<'a>>>,
    /// Variables the requester's templates see by name (an async job's download).
    variables: Map<String, Value>,
    /// The field the slice's cursor reads: located in each record as the page is walked.
    cursor_field: Option<String>,
}

/// How a slice narrows on a pagination reset: from the highest cursor value read in it so far
/// to its end (the reference's `SPLIT_USING_CURSOR`).
pub(crate) struct Narrowing<'a> {
    spec: Arc<DatetimeSpec>,
    /// The slice being read, narrowed by each restart.
    slice: StreamSlice,
    /// The slice's window before any narrowing.
    original: Map<String, Value>,
    reached: Option<OffsetDateTime>,
    /// What the partition router and the cursor add to a request of a slice.
    options: Box<dyn Fn(&StreamSlice) -> PageRequestOptions + 'a>,
}

impl<'a> Narrowing<'a> {
    pub fn new(
        spec: Arc<DatetimeSpec>,
        slice: StreamSlice,
        options: Box<dyn Fn(&StreamSlice) -> PageRequestOptions + 'a>,
    ) -> Self {
        Self {
            original: slice.cursor_slice.clone(),
            spec,
            slice,
            reached: None,
            options,
        }
    }

    fn observe(&mut self, record: &RecordData) {
        let value = record.with_field(&self.spec.cursor_field, |field| {
            field.and_then(|field| self.spec.field_value(field))
        });
        if let Some(value) = value {
            self.reached = Some(self.reached.map_or(value, |r| r.max(value)));
        }
    }

    fn narrowed(&self) -> Map<String, Value> {
        match self.reached {
            Some(reached) => self.spec.narrowed_window(&self.original, reached),
            None => self.original.clone(),
        }
    }
}

impl std::fmt::Debug for Narrowing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Narrowing")
            .field("slice", &self.slice)
            .field("reached", &self.reached)
            .finish()
    }
}

impl<'a> PageReader<'a> {
    /// A reader of the slice whose template value is `stream_slice`, whose partition router and
    /// cursor add `slice_options` to every request.
    pub fn new(
        retriever: &'a Retriever,
        selector: SelectorHandle<'a>,
        stream_slice: Value,
        slice_options: PageRequestOptions,
    ) -> Self {
        Self {
            token: retriever.paginator.initial_token(),
            tracker: retriever.reset_policy.tracker(false),
            retriever,
            selector,
            stream_slice,
            slice_options,
            records: Vec::new(),
            done: false,
            failure: None,
            embedded_page: None,
            narrowing: None,
            reducer: retriever.page_size_reduction.as_ref().map(|config| {
                PageSizeReducer::new(
                    config,
                    retriever.paginator.page_size(),
                    &retriever.stream_name,
                )
            }),
            splitting: None,
            variables: Map::new(),
            cursor_field: None,
        }
    }

    /// Locates the field `cursor_field` in each record as pages are walked, for the cursor.
    pub fn with_cursor_field(mut self, cursor_field: Option<&str>) -> Self {
        self.cursor_field = cursor_field.map(str::to_owned);
        self
    }

    /// Splits the slice's window when the error handler asks for it (`SPLIT_REQUEST_WINDOW`).
    pub fn with_splitting(mut self, splitting: Splitting<'a>) -> Self {
        self.splitting = Some(Box::new(splitting));
        self
    }

    /// Replaces the window being read by its two halves, reading the first now: the API
    /// rejected it with `error`.
    fn split_window(&mut self, error: &HttpError) -> Result<(), EngineError> {
        let retriever = self.retriever;
        let (Some(config), Some(splitting)) =
            (&retriever.window_splitting, self.splitting.as_deref_mut())
        else {
            return Err(split_not_supported(&retriever.stream_name));
        };
        let (first, depth) = splitting.split(config, &retriever.stream_name, &error.message)?;
        self.read_window(first, depth);
        Ok(())
    }

    /// Goes on with the next window of a split slice; `false` when there is none left.
    fn next_window(&mut self) -> bool {
        let Some((window, depth)) = self.splitting.as_mut().and_then(|s| s.next_window()) else {
            return false;
        };
        self.read_window(window, depth);
        true
    }

    /// Reads `window` of the slice from its first page, as a read of its own: its own token,
    /// page size and pagination resets.
    fn read_window(&mut self, window: Map<String, Value>, depth: usize) {
        let retriever = self.retriever;
        let Some(splitting) = self.splitting.as_deref_mut() else {
            return;
        };
        let (slice, options) = splitting.start(window, depth);
        self.stream_slice = slice.template_value();
        self.slice_options = options;
        if let Some(narrowing) = &mut self.narrowing {
            narrowing.original = slice.cursor_slice.clone();
            narrowing.slice.cursor_slice = slice.cursor_slice.clone();
            narrowing.reached = None;
        }
        self.token = retriever.paginator.initial_token();
        self.tracker = retriever.reset_policy.tracker(self.narrowing.is_some());
        self.reducer = retriever.page_size_reduction.as_ref().map(|config| {
            PageSizeReducer::new(
                config,
                retriever.paginator.page_size(),
                &retriever.stream_name,
            )
        });
        self.done = false;
    }

    /// Lets the requester's templates see `variables` by name, as the reference spreads a
    /// slice's extra fields (an async job's `download_target`, `creation_response`, ...).
    pub fn with_variables(mut self, variables: Map<String, Value>) -> Self {
        self.variables = variables;
        self
    }

    /// Narrows the slice to what is left on a pagination reset (`SPLIT_USING_CURSOR`).
    pub fn with_narrowing(mut self, narrowing: Narrowing<'a>) -> Self {
        self.tracker = self.retriever.reset_policy.tracker(true);
        self.narrowing = Some(narrowing);
        self
    }

    /// Starts the slice again from its first page: narrowed to what is left when a cursor can
    /// narrow it, else the same slice, which may be restarted only so often.
    fn restart(&mut self) -> Result<(), PaginateError> {
        self.token = self.retriever.paginator.initial_token();
        let Some(narrowing) = &mut self.narrowing else {
            return self.tracker.restart(true);
        };
        let narrowed = narrowing.narrowed();
        let unchanged = narrowed == narrowing.slice.cursor_slice;
        self.tracker.restart(unchanged)?;
        if !unchanged {
            let from = serde_json::to_string(&narrowing.slice.cursor_slice).unwrap_or_default();
            let to = serde_json::to_string(&narrowed).unwrap_or_default();
            tracing::info!(
                "Hitting PaginationReset event. StreamSlice used will go from {from} to {to}"
            );
            narrowing.slice.cursor_slice = narrowed;
            self.stream_slice = narrowing.slice.template_value();
            self.slice_options = (narrowing.options)(&narrowing.slice);
        }
        Ok(())
    }

    /// Reads the slice's first page from `body` instead of requesting it: a child whose parent
    /// record embeds its first page (`lazy_read_pointer`).
    pub fn with_first_page(mut self, body: Bytes) -> Self {
        self.embedded_page = Some(body);
        self
    }

    /// Requests the current page. `None` means the slice restarts (a pagination reset); an
    /// ignored response ends the slice.
    async fn fetch(&mut self) -> Result<Option<HttpResponse>, EngineError> {
        self.fetch_for(None).await
    }

    /// [`PageReader::fetch`], with templates seeing `stream_slice` instead of the slice's own
    /// value when given (a chunk of query properties).
    async fn fetch_for(
        &mut self,
        stream_slice: Option<&Value>,
    ) -> Result<Option<HttpResponse>, EngineError> {
        let retriever = self.retriever;
        let no_slice_options = PageRequestOptions::default();
        // As the reference's `_get_request_options`: the slice's options are left out of a
        // paginated request when the retriever asks for it.
        let slice_options = if self.token.is_some() && retriever.ignore_slice_options_when_paginated
        {
            &no_slice_options
        } else {
            &self.slice_options
        };
        let page_size = self
            .reducer
            .as_ref()
            .and_then(PageSizeReducer::page_size_override);
        let options = request_options(
            retriever
                .paginator
                .request_options_with_page_size(self.token.as_ref(), page_size),
            slice_options,
        )?;
        let variables = RequestVariables {
            stream_slice: stream_slice.unwrap_or(&self.stream_slice),
            next_page_token: self.token.as_ref().map(PageToken::as_mapping),
            extra: (!self.variables.is_empty()).then_some(&self.variables),
        };
        let request = retriever
            .requester
            .build(variables, &options)
            .await
            .map_err(http_error)?;
        let sent = retriever.requester.send(&request).await;
        if sent.is_ok() {
            if let Some(reducer) = &mut self.reducer {
                reducer.on_successful_page();
            }
        }
        match sent {
            Ok(Some(response)) => Ok(Some(response)),
            Ok(None) => {
                self.done = true;
                Ok(Some(HttpResponse {
                    status: 200,
                    headers: Vec::new(),
                    body: Bytes::new(),
                }))
            }
            // The error handler asks to read the slice again from its first page.
            Err(error) if error.action == Action::ResetPagination => {
                tracing::info!("Hitting PaginationReset event: {}", error.message);
                self.restart().map_err(paginate_error)?;
                Ok(None)
            }
            // The same page again, asking for fewer records.
            Err(error) if error.action == Action::ReducePageSize => {
                let stream = retriever.stream_name.as_str();
                let Some(reducer) = &mut self.reducer else {
                    return Err(reduction_not_supported(stream));
                };
                let wait = reducer.reduce(&error.message)?;
                if !wait.is_zero() {
                    retriever.requester.transport.wait(wait).await;
                }
                Ok(None)
            }
            // The window read as two halves, from the first's first page.
            Err(error) if error.action == Action::SplitRequestWindow => {
                self.split_window(&error)?;
                Ok(None)
            }
            Err(error) => Err(http_error(error)),
        }
    }

    /// The next page's records, or `None` once the slice is read.
    pub async fn next_page(
        &mut self,
        gate: RecordGate<'_>,
    ) -> Result<Option<Vec<RecordData>>, EngineError> {
        loop {
            if let Some(failure) = self.failure.take() {
                self.done = true;
                return Err(failure);
            }
            if self.done {
                // A split slice goes on with its next window.
                if self.next_window() {
                    continue;
                }
                return Ok(None);
            }
            match self.read_page(gate).await? {
                Some(page) => return Ok(Some(page)),
                // A pagination reset: the slice starts again from its first page.
                None if !self.done => continue,
                None => return Ok(None),
            }
        }
    }

    /// Whether the page just read ends this run of pages before the paginator is asked: a
    /// reached page limit restarts the slice (a refused restart fails it once the page's
    /// records are out), and a data feed whose cursor rejects the page's last record is done.
    fn page_ends_pagination(&mut self, gate: RecordGate<'_>, last_record: Option<&Value>) -> bool {
        if self.tracker.has_reached_limit() {
            tracing::info!("Hitting PaginationReset event: the page limit is reached");
            if let Err(error) = self.restart() {
                self.failure = Some(paginate_error(error));
            }
            return true;
        }
        if let (Some(feed), Some(last)) = (gate.feed, last_record)
            && !feed(last)
        {
            self.done = true;
            return true;
        }
        false
    }

    /// One request. `None` without `done` means the slice restarts.
    async fn read_page(
        &mut self,
        gate: RecordGate<'_>,
    ) -> Result<Option<Vec<RecordData>>, EngineError> {
        let retriever = self.retriever;
        if let Some(query_properties) = &retriever.query_properties {
            return self.read_chunked_page(query_properties, gate).await;
        }
        let response = match self.embedded_page.take() {
            Some(body) => HttpResponse {
                status: 200,
                headers: Vec::new(),
                body,
            },
            None => match self.fetch().await? {
                Some(response) => response,
                None => return Ok(None),
            },
        };
        if self.done {
            return Ok(Some(Vec::new()));
        }
        let stream_slice = &self.stream_slice;

        let selector = &*self.selector;
        let first_body;
        // Records are parsed when each one has a file to download.
        let as_sent = if gate.is_open() && retriever.file_uploader.is_none() {
            let empty_state = Value::Object(Map::new());
            let vars = SelectVariables {
                stream_slice,
                next_page_token: self.token.as_ref().map(PageToken::as_mapping),
                stream_state: &empty_state,
                truncated: None,
            };
            retriever.page_as_sent(
                selector,
                &response.body,
                &vars,
                self.cursor_field.as_deref(),
            )
        } else {
            None
        };
        let (page, last_record, emitted, extracted) = match as_sent {
            Some(AsSentPage {
                records,
                last_record,
                pagination_body,
                extracted,
            }) => {
                first_body = pagination_body;
                let emitted = records.len();
                (records, last_record, emitted, extracted)
            }
            None => {
                let decoded = selector.decode(&response.body).map_err(select_error)?;
                // The paginator reads the body after its records have been moved out; keep
                // a copy only when one of its templates reads `response`.
                first_body = retriever
                    .paginator
                    .needs_response_body()
                    .then(|| decoded.pagination_body().clone());
                self.records.clear();
                let complete_lists = match &retriever.truncated_list {
                    Some(fetcher) => {
                        let truncated = selector
                            .truncated_records(decoded.clone())
                            .map_err(select_error)?;
                        let mut lists = Vec::with_capacity(truncated.len());
                        for record in truncated {
                            // Boxed: the fetch reads pages as this function does.
                            lists.push(fetcher.complete_list(record).boxed_local().await?);
                        }
                        (!lists.is_empty()).then(|| TruncatedLists::serving(lists))
                    }
                    None => None,
                };
                let empty_state = Value::Object(Map::new());
                let select_variables = SelectVariables {
                    stream_slice,
                    next_page_token: self.token.as_ref().map(PageToken::as_mapping),
                    stream_state: &empty_state,
                    truncated: complete_lists.as_ref(),
                };
                let outcome = match selector.select(decoded, &select_variables, &mut self.records) {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        // What was selected before the failure is handed on, as the
                        // reference emits it; the error follows on the next call.
                        self.failure = Some(select_error(error));
                        let selected = self.records.drain(..).map(RecordData::Parsed).collect();
                        return Ok(Some(selected));
                    }
                };
                let mut emitted = outcome.emitted;
                if let Some(keep) = gate.keep {
                    let before = self.records.len();
                    self.records.retain(|record| keep(record));
                    emitted -= before - self.records.len();
                }
                let last_record = self.records.last().cloned();
                if let Some(feed) = gate.feed {
                    self.records.retain(|record| feed(record));
                }
                let page = match &retriever.file_uploader {
                    None => self.records.drain(..).map(RecordData::Parsed).collect(),
                    Some(uploader) => {
                        let mut page = Vec::with_capacity(self.records.len());
                        for record in self.records.drain(..) {
                            let file = uploader.upload(&record).await?;
                            page.push(RecordData::WithFile(Box::new((record, file))));
                        }
                        page
                    }
                };
                (page, last_record, emitted, outcome.extracted)
            }
        };
        if let Some(splitting) = &mut self.splitting {
            splitting.handed_on(page.len());
        }
        for record in &page {
            self.tracker.observe();
            if let Some(narrowing) = &mut self.narrowing {
                narrowing.observe(record);
            }
        }
        if self.page_ends_pagination(gate, last_record.as_ref()) {
            return Ok(Some(page));
        }
        let info = PageInfo {
            response_body: first_body.as_ref(),
            headers: &response.headers,
            last_page_size: emitted,
            extracted_record_count: Some(extracted),
            last_record: last_record.as_ref(),
            current_token: self.token.as_ref(),
            stream_slice: &self.stream_slice,
            page_size_override: self
                .reducer
                .as_ref()
                .and_then(PageSizeReducer::page_size_override),
        };
        let next = retriever
            .paginator
            .next_page_token(&info)
            .map_err(paginate_error)?;
        self.advance_to(next);
        Ok(Some(page))
    }

    /// Moves on to the page of `next`, or ends the slice without one. A token equal to the one
    /// this page was requested with would request this very page again, forever (the reference
    /// does); the slice fails instead, after this page's records.
    fn advance_to(&mut self, next: Option<PageToken>) {
        if let Some(token) = next
            .as_ref()
            .filter(|next| Some(*next) == self.token.as_ref())
        {
            self.failure = Some(EngineError::system(format!(
                "stream '{}': the paginator's next page token {} is the token of the page just \
                 read, so the same page would be requested forever; the API keeps returning the \
                 same cursor (or the paginator reads the wrong field)",
                self.retriever.stream_name,
                token.value()
            )));
        }
        if next.is_none() {
            self.done = true;
        }
        self.token = next;
    }
}

impl Retriever {
    /// Every record this `truncated_list_retriever` reads for `parent_record`, the truncated
    /// record it completes (seen by its templates as `stream_slice['parent_record']`).
    async fn complete_list(&self, parent_record: Value) -> Result<Vec<Value>, EngineError> {
        let mut slice = Map::new();
        slice.insert("parent_record".to_owned(), parent_record);
        let mut reader = PageReader::new(
            self,
            SelectorHandle::Borrowed(&self.selector),
            Value::Object(slice),
            PageRequestOptions::default(),
        );
        let mut records = Vec::new();
        while let Some(page) = reader.next_page(RecordGate::default()).await? {
            records.extend(page.into_iter().map(RecordData::into_value));
        }
        Ok(records)
    }

    /// The first record of the unpartitioned stream, reading pages until one has a record.
    pub async fn first_record(&self) -> Result<Option<Value>, EngineError> {
        let mut reader = PageReader::new(
            self,
            SelectorHandle::Borrowed(&self.selector),
            Value::Object(Map::new()),
            PageRequestOptions::default(),
        );
        while let Some(page) = reader.next_page(RecordGate::default()).await? {
            if let Some(record) = page.into_iter().next() {
                return Ok(Some(record.into_value()));
            }
        }
        Ok(None)
    }

    /// The page's records as the API sent them, when the selector would pass them through
    /// unchanged, or only filter them, set or remove top-level keys and normalise them
    /// ([`RecordSelector::changes_records_as_sent`]), and the paginator reads at most some
    /// top-level fields of the body: no record is parsed whole then, unless the reference would
    /// print it otherwise than it was sent (or respelled). `None` sends the page through the
    /// full selector.
    fn page_as_sent(
        &self,
        selector: &RecordSelector,
        body: &Bytes,
        vars: &SelectVariables<'_>,
        cursor_field: Option<&str>,
    ) -> Option<AsSentPage> {
        let fields = self.paginator.response_keys()?;
        // Checked once: the page walk and the editor read the same text.
        let text = std::str::from_utf8(body).ok()?;
        let page = selector.records_as_sent_beside(
            text,
            fields,
            cursor_field,
            PAGE_BUFFERS.take(body.len()),
            Some(&on_two_cores),
        )?;
        let extracted = page.records.len();
        let changes = selector.changes_records_as_sent();
        let respelled = PAGE_BUFFERS.share(page.respelled);
        let editing = match changes {
            // The respelled records' text too: they are written from text.
            true => Some(Editing {
                entries: &page.entries,
                body: text,
                respelled: std::str::from_utf8(&respelled).ok()?,
            }),
            false => None,
        };
        let sent_page = SentPage {
            selector,
            body,
            respelled: &respelled,
            editing,
            cursor_field,
        };
        let (records, last_sent) = sent_page.select_on_two_cores(&page.records, vars)?;
        // As sent, not as printed: a respelled record has lost its top-level nulls, which a
        // paginator's template could tell from missing keys.
        let last_record = match last_sent {
            Some(sent) => {
                let value: Value = serde_json::from_slice(&body[sent]).ok()?;
                if changes {
                    selector.select_parsed_as_sent(value, vars).ok()?
                } else {
                    Some(value)
                }
            }
            None => None,
        };
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
        Some(AsSentPage {
            records,
            last_record,
            pagination_body,
            extracted,
        })
    }
}

/// Pages with at least this many records have their records edited on two cores.
const SPLIT_PAGES_FROM: usize = 64;

/// The thread that scans, then edits, the second half of each page's records, kept from page
/// to page: starting a thread for every page cost 70 µs on a 2-core machine, against 10 µs to
/// hand work to one that is waiting. `None` when no thread can be started: pages are scanned
/// and edited on one core.
static EDITING_HELPER: std::sync::LazyLock<Option<rayon_core::ThreadPool>> =
    std::sync::LazyLock::new(|| {
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "sluice-edit".to_owned())
            .build()
            .ok()
    });

/// Runs `there` on [`EDITING_HELPER`]'s thread while `here` runs on this one (both here when
/// there is no such thread): how a large page's records are scanned
/// ([`RecordSelector::records_as_sent_beside`]) and edited ([`SentPage::select_on_two_cores`])
/// in two halves.
fn on_two_cores(there: &mut (dyn FnMut() + Send), here: &mut dyn FnMut()) {
    match EDITING_HELPER.as_ref() {
        Some(helper) => helper.in_place_scope(|scope| {
            scope.spawn(|_| there());
            here();
        }),
        None => {
            there();
            here();
        }
    }
}

/// A page as sent, its records to select.
struct SentPage<'p> {
    selector: &'p RecordSelector,
    body: &'p Bytes,
    respelled: &'p Bytes,
    /// What the records are edited from, when the selector edits them.
    editing: Option<Editing<'p>>,
    /// The field the slice's cursor reads, located in each record (see
    /// [`RecordData::AsSentWithField`]).
    cursor_field: Option<&'p str>,
}

/// What a page's records are edited from: checked as text once a page rather than field by
/// field.
#[derive(Debug, Clone, Copy)]
struct Editing<'p> {
    /// The records' top-level entries.
    entries: &'p [SentEntry],
    /// The body's text and [`SentPage::respelled`]'s.
    body: &'p str,
    respelled: &'p str,
}

impl SentPage<'_> {
    /// [`SentPage::select`], half the records on a second core when the selector edits them
    /// (editing records is the read's own work; the first core also fetches pages).
    fn select_on_two_cores(
        &self,
        records: &[RecordAsSent],
        vars: &SelectVariables<'_>,
    ) -> Option<(Vec<RecordData>, Option<std::ops::Range<usize>>)> {
        if self.editing.is_none() || records.len() < SPLIT_PAGES_FROM {
            return self.select(records, vars);
        }
        let (first, second) = records.split_at(records.len() / 2);
        let (slice, token, state) = (vars.stream_slice, vars.next_page_token, vars.stream_state);
        let (mut first_selected, mut second_selected) = (None, None);
        // A panic on the second core is this one's, once both halves are done.
        on_two_cores(
            &mut || {
                let vars = SelectVariables {
                    stream_slice: slice,
                    next_page_token: token,
                    stream_state: state,
                    truncated: None,
                };
                second_selected = Some(self.select(second, &vars));
            },
            &mut || first_selected = Some(self.select(first, vars)),
        );
        let (mut selected, first_last) = first_selected??;
        let (second_selected, second_last) = second_selected??;
        selected.extend(second_selected);
        Some((selected, second_last.or(first_last)))
    }

    /// What the selector makes of `records`, and where the last one handed on was sent; `None`
    /// sends the page through the full selector.
    fn select(
        &self,
        records: &[RecordAsSent],
        vars: &SelectVariables<'_>,
    ) -> Option<(Vec<RecordData>, Option<std::ops::Range<usize>>)> {
        let mut selected = Vec::with_capacity(records.len());
        let mut last_sent = None;
        // The records edited are written into one buffer, shared by their bytes.
        let mut edited = match (self.editing, records.first(), records.last()) {
            (Some(_), Some(first), Some(last)) => EDITED_BUFFERS
                .take((last.sent.end - first.sent.start).saturating_add(64 * records.len())),
            _ => Vec::new(),
        };
        let mut editor = self.selector.editor();
        // Whether the record before was given to the editor (the one whose keys a record's
        // `same_keys` compares with).
        let mut previous_edited = false;
        for record in records {
            let edited_as_sent = matches!(record.class, AsSent::Identical | AsSent::Respelled);
            let same_keys = previous_edited && edited_as_sent && record.same_keys;
            previous_edited = self.editing.is_some() && edited_as_sent;
            let text = match (self.editing, record.respelled.is_empty()) {
                (Some(editing), true) => Some(editing.body.get(record.sent.clone())?),
                (Some(editing), false) => Some(editing.respelled.get(record.respelled.clone())?),
                (None, _) => None,
            };
            let found = FoundRecord {
                class: record.class,
                sent: self.body.slice(record.sent.clone()),
                respelled: (!record.respelled.is_empty())
                    .then(|| self.respelled.slice(record.respelled.clone())),
                text,
                same_keys,
                entries: self
                    .editing
                    .map(|editing| &editing.entries[record.entries.clone()]),
                watched: record.watched.as_ref(),
            };
            let kept = select_as_sent(&mut editor, found, self.cursor_field, vars, &mut edited)?;
            if let Some(kept) = kept {
                selected.push(kept);
                last_sent = Some(record.sent.clone());
            }
        }
        let edited = EDITED_BUFFERS.share(edited);
        let selected = selected
            .into_iter()
            .map(|kept| kept.into_data(&edited))
            .collect();
        Some((selected, last_sent))
    }
}

/// A page read without parsing its records whole.
struct AsSentPage {
    records: Vec<RecordData>,
    /// The last record handed on, as the paginator sees it.
    last_record: Option<Value>,
    /// The fields of the body the paginator reads, when it reads some.
    pagination_body: Option<Value>,
    /// Records found before the filter.
    extracted: usize,
}

/// One record of a page as sent, as the page walk found it.
struct FoundRecord<'r> {
    class: AsSent,
    /// Its bytes as sent.
    sent: Bytes,
    /// The bytes it is printed from, when they were copied or respelled apart from the body:
    /// always for [`AsSent::Respelled`].
    respelled: Option<Bytes>,
    /// The text it is printed from, when the selector changes records.
    text: Option<&'r str>,
    /// It has the keys of the record given to the editor before it.
    same_keys: bool,
    /// Its top-level entries (as printed), when the selector changes records.
    entries: Option<&'r [SentEntry]>,
    /// Where it has the cursor's field, as printed.
    watched: Option<&'r SentEntry>,
}

/// Buffers the records of a page edited as sent are written into (apart from
/// [`PAGE_BUFFERS`], whose buffers hold whole pages: these hold half of one).
static EDITED_BUFFERS: PageBuffers = PageBuffers::new();

/// A record [`select_as_sent`] keeps.
#[derive(Debug)]
enum Kept {
    Data(RecordData),
    /// Edited, and written at this range of the page's buffer of edited records; with where it
    /// has the cursor's field, from its own first byte.
    Edited(std::ops::Range<usize>, Option<SentEntry>),
}

impl Kept {
    /// The record, `edited` being the buffer it was written into if it was edited.
    fn into_data(self, edited: &Bytes) -> RecordData {
        match self {
            Kept::Data(data) => data,
            Kept::Edited(range, Some(field)) => {
                RecordData::AsSentWithField(edited.slice(range), field)
            }
            Kept::Edited(range, None) => RecordData::AsSent(edited.slice(range)),
        }
    }
}

/// What the selector makes of `found`: `Some(None)` when its filter drops it, `None` when the
/// whole page must go through the full selector (a record that does not parse, an error). When
/// the selector changes records, one that prints as sent or respelled is edited as sent; the
/// others are selected parsed, as the full selector does. A record kept as sent, or edited,
/// says where it has `cursor_field`; an edited record is written into `edited`.
fn select_as_sent(
    editor: &mut RecordEditor<'_>,
    found: FoundRecord<'_>,
    cursor_field: Option<&str>,
    vars: &SelectVariables<'_>,
    edited: &mut Vec<u8>,
) -> Option<Option<Kept>> {
    let located = |json: Bytes, field: Option<&SentEntry>| match field {
        Some(field) => RecordData::AsSentWithField(json, field.clone()),
        None => RecordData::AsSent(json),
    };
    let selector = editor.selector();
    let FoundRecord {
        class,
        sent,
        respelled,
        text,
        same_keys,
        entries,
        watched,
    } = found;
    let data = match (class, entries, text) {
        (AsSent::Identical | AsSent::Respelled, Some(entries), Some(text)) => {
            // Edited from the text it is printed from (its top-level nulls kept, see
            // `PageAsSent::entries`), which its entries point into.
            let printed = respelled.unwrap_or_else(|| sent.clone());
            match editor.process_as_sent(text, entries, same_keys, cursor_field, vars, edited) {
                Some(Ok(AsSentOutcome::Dropped)) => None,
                Some(Ok(AsSentOutcome::Unchanged)) => Some(located(printed, watched)),
                Some(Ok(AsSentOutcome::Edited(range, field))) => {
                    return Some(Some(Kept::Edited(range, field)));
                }
                // An error, or a value that does not parse: selected parsed, an error is
                // reported after the records selected before it, as the reference does.
                None | Some(Err(_)) => select_parsed(selector, &sent, vars)?,
            }
        }
        (_, Some(_), _) => select_parsed(selector, &sent, vars)?,
        (AsSent::Identical | AsSent::Respelled, None, _) => {
            Some(located(respelled.unwrap_or(sent), watched))
        }
        (AsSent::Reprint, None, _) => Some(RecordData::Unparsed(sent)),
        // Anything the parser rejects sends the whole page through the full selector, which
        // decides what becomes of it.
        _ => Some(RecordData::Parsed(serde_json::from_slice(&sent).ok()?)),
    };
    Some(data.map(Kept::Data))
}

/// One record parsed and selected as the full selector selects it; `None` when it does not
/// parse or selecting it fails (the full selector then reports that in its place).
fn select_parsed(
    selector: &RecordSelector,
    sent: &[u8],
    vars: &SelectVariables<'_>,
) -> Option<Option<RecordData>> {
    let value = serde_json::from_slice(sent).ok()?;
    let selected = selector.select_parsed_as_sent(value, vars).ok()?;
    Some(selected.map(RecordData::Parsed))
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

/// The paginator's and the slice's parts of a request, in the requester's terms. As in the
/// reference, the two may not set the same key (a JSON body may repeat one with the same value).
fn request_options(
    page: PageRequestOptions,
    slice: &PageRequestOptions,
) -> Result<RequestOptions, EngineError> {
    for (paged, sliced) in [
        (&page.query, &slice.query),
        (&page.headers, &slice.headers),
        (&page.body_data, &slice.body_data),
    ] {
        if let Some((key, _)) = paged
            .iter()
            .find(|(k, _)| sliced.iter().any(|(s, _)| s == k))
        {
            return Err(collision(key));
        }
    }
    let mut body_json = page.body_json;
    merge_json_body(&mut body_json, &slice.body_json, &mut Vec::new())?;
    Ok(RequestOptions {
        query: page
            .query
            .into_iter()
            .chain(slice.query.iter().cloned())
            .collect(),
        headers: page
            .headers
            .into_iter()
            .chain(slice.headers.iter().cloned())
            .collect(),
        body_json,
        body_data: page
            .body_data
            .into_iter()
            .chain(slice.body_data.iter().cloned())
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        url_override: None,
        path_override: page.path,
    })
}

/// Merges `source` into `target`, refusing a path that both set to different values.
fn merge_json_body(
    target: &mut Map<String, Value>,
    source: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), EngineError> {
    for (key, value) in source {
        path.push(key.clone());
        match (target.get_mut(key), value) {
            (None, _) => {
                target.insert(key.clone(), value.clone());
            }
            (Some(Value::Object(nested)), Value::Object(source)) => {
                merge_json_body(nested, source, path)?;
            }
            (Some(existing), _) if existing == value => {}
            (Some(_), _) => return Err(collision(&path.join("."))),
        }
        path.pop();
    }
    Ok(())
}

fn collision(key_path: &str) -> EngineError {
    EngineError::system(format!(
        "Request body collision, duplicate keys detected at key path: {key_path}. Please ensure that all keys in the request are unique."
    ))
}

pub(crate) fn http_error(error: HttpError) -> EngineError {
    if error.action != Action::Fail {
        // Only a stream's page loop acts on pagination resets, page size reductions and window
        // splits: elsewhere say so rather than failing with the API's message alone.
        return EngineError::new(
            error.failure_type,
            format!(
                "{} (the error handler asked for {:?}, which only a stream's own requests can act on)",
                error.message, error.action
            ),
        )
        .with_internal(error.internal_message);
    }
    EngineError::new(error.failure_type, error.message).with_internal(error.internal_message)
}

#[cfg(test)]
mod edit_tests;
