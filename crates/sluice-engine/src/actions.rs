//! What a retriever does when its error handler resolves to `REDUCE_PAGE_SIZE` or
//! `SPLIT_REQUEST_WINDOW`: which manifests may ask for it (the reference's factory checks), the
//! page size in effect while reading a window and when to give up (the reference's
//! `PageSizeReducer`), and the settings of window splitting.

use crate::EngineError;
use serde_json::{Map, Value};
use sluice_interp::python_float;
use sluice_manifest::model;
use sluice_paginate::PageRequestOptions;
use sluice_slice::datetime::IsoDuration;
use sluice_slice::{DatetimeSpec, StreamSlice};
use std::sync::Arc;
use std::time::Duration;

/// The reference's bound on how deep a window is split, whatever the cursor allows.
const MAX_SPLIT_DEPTH: usize = 10;

/// A retriever's `page_size_reduction`, with the schema's defaults.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageSizeReduction {
    pub reduction_factor: f64,
    pub minimum_page_size: i64,
    pub max_attempts: i64,
    pub backoff_seconds: f64,
    pub retries_at_minimum_page_size: i64,
    pub failure_message: Option<String>,
    /// `AFTER_SUCCESSFUL_PAGE`: the configured page size is asked for again after a page that
    /// succeeds (else the reduced size stays for the rest of the window).
    pub restore_after_success: bool,
}

impl PageSizeReduction {
    pub fn from_model(model: &model::PageSizeReduction) -> Self {
        Self {
            reduction_factor: model.reduction_factor.unwrap_or(2.0),
            minimum_page_size: model.minimum_page_size.unwrap_or(1),
            max_attempts: model.max_attempts.unwrap_or(5),
            backoff_seconds: model.backoff_seconds.unwrap_or(0.5),
            retries_at_minimum_page_size: model.retries_at_minimum_page_size.unwrap_or(0),
            failure_message: model.failure_message.clone(),
            restore_after_success: matches!(
                model.reset_policy,
                Some(model::PageSizeResetPolicy::AfterSuccessfulPage)
            ),
        }
    }

    /// The reference's checks of the values themselves (`PageSizeReduction.__post_init__`).
    pub fn check(&self) -> Result<(), String> {
        if self.reduction_factor <= 1.0 {
            return Err(format!(
                "The page size reduction factor needs to be greater than 1. Got {}",
                python_float(self.reduction_factor)
            ));
        }
        if self.minimum_page_size < 1 {
            return Err(format!(
                "The minimum page size needs to be strictly positive. Got {}",
                self.minimum_page_size
            ));
        }
        if self.max_attempts < 1 {
            return Err(format!(
                "The maximum number of page size reductions needs to be strictly positive. Got {}",
                self.max_attempts
            ));
        }
        if self.backoff_seconds < 0.0 {
            return Err(format!(
                "The wait between page size reductions cannot be negative. Got {}",
                python_float(self.backoff_seconds)
            ));
        }
        if self.retries_at_minimum_page_size < 0 {
            return Err(format!(
                "The number of retries at the minimum page size cannot be negative. Got {}",
                self.retries_at_minimum_page_size
            ));
        }
        Ok(())
    }

    fn with_failure_message(&self, message: String) -> String {
        with_failure_message(message, self.failure_message.as_deref())
    }
}

/// `message` followed by the connector's `failure_message`, when it has a non-blank one.
pub(crate) fn with_failure_message(message: String, failure_message: Option<&str>) -> String {
    match failure_message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(extra) => format!("{message} {extra}"),
        None => message,
    }
}

/// The page size in effect while reading one window, and the reductions made in a row.
#[derive(Debug)]
pub(crate) struct PageSizeReducer<'a> {
    config: &'a PageSizeReduction,
    configured: Option<i64>,
    stream: &'a str,
    current: Option<i64>,
    attempts: i64,
    total_reductions: i64,
    retries_at_minimum: i64,
}

impl<'a> PageSizeReducer<'a> {
    /// A reducer of `configured`, the page size the paginator asks for.
    pub fn new(config: &'a PageSizeReduction, configured: Option<i64>, stream: &'a str) -> Self {
        Self {
            config,
            configured,
            stream,
            current: None,
            attempts: 0,
            total_reductions: 0,
            retries_at_minimum: 0,
        }
    }

    /// The reduced page size to ask for, `None` while the configured one is in effect.
    pub fn page_size_override(&self) -> Option<u64> {
        self.current.and_then(|size| u64::try_from(size).ok())
    }

    /// Shrinks the page size for the next request of the same page, or fails once it cannot
    /// shrink any more. Gives how long to wait before that request. `rejection` is the error
    /// handler's message about the response.
    pub fn reduce(&mut self, rejection: &str) -> Result<Duration, EngineError> {
        let stream = self.stream;
        let Some(configured) = self.configured else {
            return Err(EngineError::config(format!(
                "Stream {stream} is set up to reduce its page size on error but does not define one. Set `page_size` on the pagination strategy and `page_size_option` on the paginator."
            ))
            .with_internal(format!(
                "Stream {stream} received a REDUCE_PAGE_SIZE response action but its paginator does not inject a page size"
            )));
        };
        let rejection = if rejection.is_empty() {
            String::new()
        } else {
            format!("; the API rejected the page: {rejection}")
        };
        let current = self.current.unwrap_or(configured);
        let reduced = self
            .config
            .minimum_page_size
            .max((current as f64 / self.config.reduction_factor).floor() as i64);
        if reduced >= current {
            return self.retry_at_minimum(current, &rejection);
        }
        self.attempts += 1;
        self.total_reductions += 1;
        if self.attempts > self.config.max_attempts {
            return Err(EngineError::transient(self.config.with_failure_message(format!(
                "The source keeps rejecting pages of stream {stream} at every page size the connector requested, down to {current} records per page."
            )))
            .with_internal(format!(
                "Stream {stream} reduced its page size {} times in a row without a single page succeeding, which is the configured maximum of {} ({} reductions so far while reading this partition){rejection}",
                self.attempts - 1,
                self.config.max_attempts,
                self.total_reductions - 1
            )));
        }
        let wait = self.config.backoff_seconds * self.attempts as f64;
        tracing::info!(
            "Reducing the page size of stream {stream} from {current} to {reduced} and retrying the same page in {}s.",
            python_float(wait)
        );
        self.current = Some(reduced);
        Ok(Duration::from_secs_f64(wait.max(0.0)))
    }

    /// A reduction asked for at the smallest page size allowed: the same page again while the
    /// retries at that size last, then a failure.
    fn retry_at_minimum(&mut self, current: i64, rejection: &str) -> Result<Duration, EngineError> {
        let stream = self.stream;
        let allowed = self.config.retries_at_minimum_page_size;
        if self.retries_at_minimum < allowed {
            self.retries_at_minimum += 1;
            let wait = self.config.backoff_seconds * self.retries_at_minimum as f64;
            tracing::info!(
                "Stream {stream} cannot request a page smaller than {current} records, so the same page is retried unchanged in {}s ({} of {allowed}).",
                python_float(wait),
                self.retries_at_minimum
            );
            return Ok(Duration::from_secs_f64(wait.max(0.0)));
        }
        let minimum = self.config.minimum_page_size;
        if self.current.is_none() && minimum > 1 {
            let spent = if self.retries_at_minimum > 0 {
                format!(
                    " ({} retries at that size were spent first)",
                    self.retries_at_minimum
                )
            } else {
                String::new()
            };
            return Err(EngineError::config(format!(
                "The page size of stream {stream} ({current}) is already at or below the configured minimum of {minimum}, so the connector cannot reduce it. Raise the page size of the stream, or lower `minimum_page_size`."
            ))
            .with_internal(format!(
                "Stream {stream} has a configured page size of {current} which is not greater than the configured minimum page size of {minimum}, so it can never be reduced{spent}{rejection}"
            )));
        }
        let spent = if self.retries_at_minimum > 0 {
            format!(", after {} retries at that size", self.retries_at_minimum)
        } else {
            String::new()
        };
        Err(EngineError::transient(self.config.with_failure_message(format!(
            "The source keeps rejecting pages of stream {stream} at the smallest page size the connector is allowed to request ({current} records per page)."
        )))
        .with_internal(format!(
            "Stream {stream} still fails with a page size of {current}, which is the smallest page size allowed by the configured minimum of {minimum}{spent}{rejection}"
        )))
    }

    /// After a page that needed no reduction: the budgets start again, and the configured page
    /// size is restored under `AFTER_SUCCESSFUL_PAGE`.
    pub fn on_successful_page(&mut self) {
        self.attempts = 0;
        self.retries_at_minimum = 0;
        if !self.config.restore_after_success {
            return;
        }
        if let Some(current) = self.current.take() {
            tracing::info!(
                "Restoring the page size of stream {} from {current} to {}.",
                self.stream,
                self.configured.map_or("None".to_owned(), |c| c.to_string())
            );
        }
    }
}

/// A retriever's `request_window_splitting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WindowSplitting {
    pub failure_message: Option<String>,
    pub min_split_window: Option<IsoDuration>,
    /// `min_split_window` as the reference prints a `timedelta` (`1 day, 0:00:00`).
    pub min_split_window_text: Option<String>,
}

/// How a slice's window is split on `SPLIT_REQUEST_WINDOW`: the window being read and those
/// left, read in order before the slice closes (its records stay the slice's).
pub(crate) struct Splitting<'a> {
    spec: Arc<DatetimeSpec>,
    /// The slice, with the window being read.
    slice: StreamSlice,
    /// The slice as it was given, before any split.
    original: StreamSlice,
    /// Windows still to read, the next one last, each with its split depth.
    pending: Vec<(Map<String, Value>, usize)>,
    depth: usize,
    /// Records handed on from the window being read.
    emitted: usize,
    /// What the partition router and the cursor add to a request of a slice.
    options: Box<dyn Fn(&StreamSlice) -> PageRequestOptions + 'a>,
}

impl<'a> Splitting<'a> {
    pub fn new(
        spec: Arc<DatetimeSpec>,
        slice: StreamSlice,
        options: Box<dyn Fn(&StreamSlice) -> PageRequestOptions + 'a>,
    ) -> Self {
        Self {
            spec,
            original: slice.clone(),
            slice,
            pending: Vec::new(),
            depth: 0,
            emitted: 0,
            options,
        }
    }

    /// Notes `count` records of the window being read handed on.
    pub fn handed_on(&mut self, count: usize) {
        self.emitted += count;
    }

    /// The window being read was rejected with `rejection` (the error handler's message): gives
    /// its first half and that half's depth, keeping the second for later, or fails as the
    /// reference does when the window cannot be split any further.
    pub fn split(
        &mut self,
        config: &WindowSplitting,
        stream: &str,
        rejection: &str,
    ) -> Result<(Map<String, Value>, usize), EngineError> {
        let window = slice_repr(&self.slice, &self.slice.cursor_slice);
        if self.emitted > 0 {
            tracing::warn!(
                "Stream {stream} already emitted {} record(s) from {window} before it was rejected; splitting and re-reading the window may re-emit them.",
                self.emitted
            );
        }
        let rejection = if rejection.is_empty() {
            String::new()
        } else {
            format!(": {rejection}")
        };
        let failure = |message: String| {
            EngineError::transient(with_failure_message(
                message,
                config.failure_message.as_deref(),
            ))
        };
        if self.depth >= MAX_SPLIT_DEPTH {
            let original = slice_repr(&self.original, &self.original.cursor_slice);
            tracing::warn!(
                "Stream {stream} hit the maximum request window split depth ({MAX_SPLIT_DEPTH}) while splitting {original}."
            );
            return Err(failure(format!(
                "Stream {stream} could not split its request window to a size the API accepts within {MAX_SPLIT_DEPTH} splits."
            ))
            .with_internal(format!(
                "Stream {stream} exceeded the maximum request window split depth of {MAX_SPLIT_DEPTH} while splitting {original}; the API still rejected {window}{rejection}"
            )));
        }
        let halves = self
            .spec
            .split_request_window(&self.slice.cursor_slice, config.min_split_window)
            .map_err(|e| EngineError::system(e.to_string()))?;
        let Some([first, second]) = halves else {
            let note = match &config.min_split_window_text {
                Some(min) => format!(", its configured `min_split_window` ({min})"),
                None => String::new(),
            };
            return Err(failure(format!(
                "The API kept rejecting stream {stream}'s request window even at the smallest window its cursor allows{note}, or splitting the window further would not make progress."
            ))
            .with_internal(format!(
                "Stream {stream} could not split its request window {window} any further; the API rejected it{rejection}"
            )));
        };
        tracing::info!(
            "Stream {stream}: the API rejected request window {window} (split depth {}); reducing it to [{}, {}] and reading each in turn.",
            self.depth,
            slice_repr(&self.slice, &first),
            slice_repr(&self.slice, &second)
        );
        let depth = self.depth + 1;
        self.pending.push((second, depth));
        Ok((first, depth))
    }

    /// The next window left to read, if any.
    pub fn next_window(&mut self) -> Option<(Map<String, Value>, usize)> {
        self.pending.pop()
    }

    /// Starts reading `window` at `depth`: gives the slice as it now is and what its requests
    /// carry.
    pub fn start(
        &mut self,
        window: Map<String, Value>,
        depth: usize,
    ) -> (&StreamSlice, PageRequestOptions) {
        self.slice.cursor_slice = window;
        self.depth = depth;
        self.emitted = 0;
        let options = (self.options)(&self.slice);
        (&self.slice, options)
    }
}

impl std::fmt::Debug for Splitting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splitting")
            .field("slice", &self.slice)
            .field("depth", &self.depth)
            .field("pending", &self.pending)
            .finish()
    }
}

/// How the reference prints a slice of `slice`'s partition with `window`: Python's `repr` of
/// the partition and window merged.
fn slice_repr(slice: &StreamSlice, window: &Map<String, Value>) -> String {
    let mut merged = slice.partition.clone();
    merged.extend(window.iter().map(|(k, v)| (k.clone(), v.clone())));
    sluice_interp::python_str(&Value::Object(merged))
}

/// `REDUCE_PAGE_SIZE` on a retriever without `page_size_reduction` (the reference's
/// `PageSizeReductionNotSupportedException`).
pub(crate) fn reduction_not_supported(stream: &str) -> EngineError {
    EngineError::config(format!(
        "Stream {stream} resolves an API response to the REDUCE_PAGE_SIZE action but is not set up to send a smaller page. Add `page_size_reduction` to the stream's retriever, or remove the REDUCE_PAGE_SIZE action from its error handler."
    ))
    .with_internal(format!(
        "An error handler of stream {stream} resolved to REDUCE_PAGE_SIZE but the retriever it is attached to defines no page_size_reduction. The action is only supported on the main requester of a SimpleRetriever that defines page_size_reduction."
    ))
}

/// `SPLIT_REQUEST_WINDOW` on a slice that cannot be split (the reference's
/// `RequestWindowSplitNotSupportedException`).
pub(crate) fn split_not_supported(stream: &str) -> EngineError {
    EngineError::config(format!(
        "Stream {stream} resolves to a request window split but is not set up to split its window. Add `request_window_splitting` to the stream's retriever (this requires a datetime-based incremental cursor with `cursor_granularity` set), or remove the `SPLIT_REQUEST_WINDOW` action from its error handler."
    ))
    .with_internal(format!(
        "A request window split was requested for stream {stream} but its retriever defines no `request_window_splitting`, or its cursor does not support window splitting. The action is only supported on a SimpleRetriever whose cursor has a `split_request_window` method and that defines `request_window_splitting`."
    ))
}

/// A fixed duration as Python prints a `timedelta`: `2 days, 1:00:00`, `0:30:00`, `0:00:00.500000`.
pub(crate) fn python_timedelta(micros: i128) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let seconds = rest / 1_000_000;
    let fraction = rest % 1_000_000;
    let mut text = String::new();
    if days != 0 {
        let plural = if days.abs() == 1 { "" } else { "s" };
        text.push_str(&format!("{days} day{plural}, "));
    }
    text.push_str(&format!(
        "{}:{:02}:{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    ));
    if fraction != 0 {
        text.push_str(&format!(".{fraction:06}"));
    }
    text
}

/// What the stream around a retriever brings to the checks of its actions.
pub(crate) struct RetrieverContext<'m> {
    pub stream: &'m str,
    pub incremental_sync: Option<&'m model::IncrementalSync>,
    pub has_file_uploader: bool,
    /// A substream whose parent is read lazily (`lazy_read_pointer`).
    pub reads_parent_lazily: bool,
    /// The retriever belongs to a stream (not to a dynamic schema loader), so it has a cursor.
    pub is_stream: bool,
}

/// Whether `handler` (nested composites included) has a response filter with `action`. A
/// custom handler cannot be looked into, as in the reference.
pub(crate) fn uses_action(
    handler: Option<&model::ErrorHandler>,
    action: model::ResponseAction,
) -> bool {
    match handler {
        Some(model::ErrorHandler::CompositeErrorHandler(composite)) => composite
            .error_handlers
            .iter()
            .any(|nested| uses_action(Some(nested), action)),
        Some(model::ErrorHandler::DefaultErrorHandler(handler)) => handler
            .response_filters
            .iter()
            .flatten()
            .any(|filter| filter.action == Some(action)),
        _ => false,
    }
}

/// Refuses both actions on a requester that has no page or window of its own (`description`
/// says which), as the reference does.
pub(crate) fn reject_actions(
    handler: Option<&model::ErrorHandler>,
    description: &str,
) -> Result<(), String> {
    if uses_action(handler, model::ResponseAction::ReducePageSize) {
        return Err(format!(
            "The REDUCE_PAGE_SIZE response action is not supported on the {description}: only the main requester of a SimpleRetriever can re-issue its page with a smaller page size. Use a different action on that error handler."
        ));
    }
    if uses_action(handler, model::ResponseAction::SplitRequestWindow) {
        return Err(format!(
            "The SPLIT_REQUEST_WINDOW response action is not supported on the {description}: only the main requester of a SimpleRetriever reads a window that can be split. Use a different action on that error handler."
        ));
    }
    Ok(())
}

/// Refuses both actions on the `login_requester` of a `SessionTokenAuthenticator` of the
/// retriever's requester (directly or among a `SelectiveAuthenticator`'s), which the reference
/// checks while it builds the requester.
fn reject_on_login_requesters(
    retriever: &model::SimpleRetriever,
    name: &str,
) -> Result<(), String> {
    let model::Requester::HttpRequester(requester) = &retriever.requester else {
        return Ok(());
    };
    let description = format!("`login_requester` of the SessionTokenAuthenticator of {name}");
    let check = |session: &model::SessionTokenAuthenticator| {
        reject_actions(session.login_requester.error_handler.as_ref(), &description)
    };
    match &requester.authenticator {
        Some(model::Authenticator::SessionTokenAuthenticator(session)) => check(session),
        Some(model::Authenticator::SelectiveAuthenticator(selective)) => {
            for candidate in selective.authenticators.values() {
                if let model::SelectableAuthenticator::SessionTokenAuthenticator(session) =
                    candidate
                {
                    check(session)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn requester_error_handler(retriever: &model::SimpleRetriever) -> Option<&model::ErrorHandler> {
    match &retriever.requester {
        model::Requester::HttpRequester(requester) => requester.error_handler.as_ref(),
        model::Requester::CustomRequester(_) => None,
    }
}

fn uses_query_properties(retriever: &model::SimpleRetriever) -> bool {
    let model::Requester::HttpRequester(requester) = &retriever.requester else {
        return false;
    };
    match &requester.request_parameters {
        Some(model::RequestParameters::Map(map)) => map
            .values()
            .any(|v| matches!(v, model::RequestParameterValue::QueryProperties(_))),
        _ => false,
    }
}

/// The retriever's `request_window_splitting` and `page_size_reduction`, refused where the
/// reference refuses them (with its messages), in its order.
pub(crate) fn retriever_actions(
    retriever: &model::SimpleRetriever,
    context: &RetrieverContext<'_>,
) -> Result<(Option<WindowSplitting>, Option<PageSizeReduction>), String> {
    let name = context.stream;
    reject_on_login_requesters(retriever, name)?;
    let handler = requester_error_handler(retriever);
    let reduces = uses_action(handler, model::ResponseAction::ReducePageSize);
    let splits = uses_action(handler, model::ResponseAction::SplitRequestWindow);
    if context.reads_parent_lazily && (retriever.page_size_reduction.is_some() || reduces) {
        return Err(format!(
            "`page_size_reduction` and the REDUCE_PAGE_SIZE response action are not supported when reading a parent stream lazily. Remove either the page size reduction or the parent stream's `lazy_read_pointer` for stream {name}."
        ));
    }
    if context.reads_parent_lazily && (retriever.request_window_splitting.is_some() || splits) {
        return Err(format!(
            "`request_window_splitting` and the SPLIT_REQUEST_WINDOW response action are not supported when reading a parent stream lazily. Remove either the request window splitting or the parent stream's `lazy_read_pointer` for stream {name}."
        ));
    }
    let splitting = window_splitting(retriever, context, splits)?;
    let reduction = page_size_reduction(retriever, context, reduces)?;
    Ok((splitting, reduction))
}

fn window_splitting(
    retriever: &model::SimpleRetriever,
    context: &RetrieverContext<'_>,
    splits: bool,
) -> Result<Option<WindowSplitting>, String> {
    let name = context.stream;
    let Some(block) = &retriever.request_window_splitting else {
        if splits {
            return Err(format!(
                "Stream {name} has a response filter with the SPLIT_REQUEST_WINDOW action but the retriever does not define `request_window_splitting`. Add a `request_window_splitting` block to the retriever."
            ));
        }
        return Ok(None);
    };
    if !splits {
        tracing::warn!(
            "Stream {name} defines `request_window_splitting` but no response filter with the SPLIT_REQUEST_WINDOW action was found on its requester. The request window will never be split unless a custom error handler or custom code resolves to that action."
        );
    }
    let cursor = match context.incremental_sync {
        Some(model::IncrementalSync::DatetimeBasedCursor(cursor)) => Some(cursor),
        _ => None,
    };
    if context.incremental_sync.is_none() {
        let found = if context.is_stream {
            "FinalStateCursor"
        } else {
            "no cursor"
        };
        return Err(format!(
            "`request_window_splitting` requires an incremental cursor that supports window splitting on stream {name}. Found {found}: this is only supported today for a `DatetimeBasedCursor` with `cursor_granularity` set."
        ));
    }
    let Some((cursor, granularity_text)) = cursor.and_then(|c| {
        c.cursor_granularity
            .as_deref()
            .filter(|g| !g.is_empty())
            .map(|g| (c, g))
    }) else {
        return Err(format!(
            "`request_window_splitting` requires `cursor_granularity` on the `DatetimeBasedCursor` of stream {name}: without it there is no smallest window to stop splitting at, and no way to keep two child windows from overlapping at their shared edge."
        ));
    };
    if cursor.is_client_side_incremental == Some(true) {
        return Err(format!(
            "`request_window_splitting` cannot be used together with `is_client_side_incremental` on stream {name}: the window is filtered client-side rather than sent to the API, so splitting it would not change the request and could not resolve a SPLIT_REQUEST_WINDOW response."
        ));
    }
    let granularity = IsoDuration::parse(granularity_text).map_err(|e| e.to_string())?;
    if granularity.months == 0 && granularity.micros <= 0 {
        return Err(format!(
            "`request_window_splitting` requires a `cursor_granularity` greater than zero on stream {name}: `{granularity_text}` parses to a zero-length duration, which can never produce a smaller child window."
        ));
    }
    if let Some(unit) = smallest_format_unit(&cursor.datetime_format) {
        if granularity.months == 0 && granularity.micros < unit {
            return Err(format!(
                "`request_window_splitting` requires `cursor_granularity` to be no finer than what `datetime_format` can represent on stream {name}: `datetime_format` {} cannot represent a value finer than {}, but `cursor_granularity` {} is finer than that. Use a `datetime_format` precise enough to represent `cursor_granularity`, or a coarser `cursor_granularity`.",
                python_repr(&cursor.datetime_format),
                python_timedelta(unit),
                python_repr(granularity_text)
            ));
        }
    }
    let min_text = block.min_split_window.as_deref().filter(|m| !m.is_empty());
    let min_split_window = match min_text {
        None => None,
        Some(text) => match IsoDuration::parse(text) {
            Ok(min) if min.months == 0 && min.micros > 0 => Some(min),
            _ => {
                return Err(format!(
                    "`min_split_window` must be a positive duration expressible as a fixed number of days/hours/minutes/seconds on stream {name}: `{text}` is not."
                ));
            }
        },
    };
    if uses_query_properties(retriever) {
        return Err(format!(
            "`request_window_splitting` cannot be used together with query properties on stream {name}. Records from the earlier property chunks may have already been emitted when a chunk asks to split the window, so splitting and re-reading it could duplicate them."
        ));
    }
    if context.has_file_uploader {
        return Err(format!(
            "`request_window_splitting` cannot be used together with a `file_uploader` on stream {name}. The file uploader sends one request per record from inside the window's record generator, so a split requested partway through could re-emit records already yielded by it."
        ));
    }
    Ok(Some(WindowSplitting {
        failure_message: block.failure_message.clone(),
        min_split_window_text: min_split_window.map(|m| python_timedelta(m.micros)),
        min_split_window,
    }))
}

/// The finest step `datetime_format` can show, in microseconds (the reference's
/// `_DATETIME_FORMAT_DIRECTIVE_GRANULARITY`); `None` when it has none of those directives.
fn smallest_format_unit(format: &str) -> Option<i128> {
    const SECOND: i128 = 1_000_000;
    const UNITS: &[(&str, i128)] = &[
        ("%epoch_microseconds", 1),
        ("%s_as_float", 1),
        ("%f", 1),
        ("%_ms", 1_000),
        ("%ms", 1_000),
        ("%S", SECOND),
        ("%s", SECOND),
        ("%M", 60 * SECOND),
        ("%H", 3_600 * SECOND),
        ("%I", 3_600 * SECOND),
        ("%d", 86_400 * SECOND),
    ];
    UNITS
        .iter()
        .filter(|(directive, _)| format.contains(directive))
        .map(|(_, unit)| *unit)
        .min()
}

/// A string as Python's `repr` prints it (for the plain text of a manifest field).
fn python_repr(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn page_size_reduction(
    retriever: &model::SimpleRetriever,
    context: &RetrieverContext<'_>,
    reduces: bool,
) -> Result<Option<PageSizeReduction>, String> {
    let name = context.stream;
    let Some(block) = &retriever.page_size_reduction else {
        if reduces {
            return Err(format!(
                "Stream {name} has a response filter with the REDUCE_PAGE_SIZE action but the retriever does not define `page_size_reduction`. Add a `page_size_reduction` block to the retriever."
            ));
        }
        return Ok(None);
    };
    if !reduces {
        tracing::warn!(
            "Stream {name} defines `page_size_reduction` but no response filter with the REDUCE_PAGE_SIZE action was found on its requester. The page size will never be reduced unless a custom error handler resolves to that action."
        );
    }
    if uses_query_properties(retriever) {
        return Err(format!(
            "`page_size_reduction` cannot be used together with query properties on stream {name}. Records from the earlier property chunks have already been emitted when a chunk asks for a smaller page, so retrying the page would emit them twice."
        ));
    }
    if context.has_file_uploader {
        return Err(format!(
            "`page_size_reduction` cannot be used together with a `file_uploader` on stream {name}. The file uploader sends one request per record from inside the page's record generator, so a reduction asked for halfway through a page would re-emit the records already yielded by it."
        ));
    }
    let Some(model::Paginator::DefaultPaginator(paginator)) = &retriever.paginator else {
        return Err(format!(
            "`page_size_reduction` requires a DefaultPaginator on stream {name} so that the connector can send a smaller page size."
        ));
    };
    if paginator.page_size_option.is_none() {
        return Err(format!(
            "`page_size_reduction` requires `page_size_option` on the paginator of stream {name}: without it the connector cannot tell the API to send a smaller page."
        ));
    }
    if matches!(
        paginator.page_token_option,
        Some(model::PageTokenOption::RequestPath(_))
    ) {
        return Err(format!(
            "`page_size_reduction` does not support a `page_token_option` of type RequestPath on stream {name}. The next page is then requested through a URL returned by the API, which already carries the page size, so the reduced page size would be sent alongside the original one. Use a CursorPagination strategy with a `page_token_option` of type RequestOption instead."
        ));
    }
    let page_size = match &paginator.pagination_strategy {
        model::PaginationStrategy::PageIncrement(_) => {
            return Err(format!(
                "`page_size_reduction` does not support the PageIncrement pagination strategy used by stream {name}. Pages are addressed as page number * page size, so a smaller page size shifts every following page boundary and would skip records. Use OffsetIncrement or CursorPagination."
            ));
        }
        // Custom code never runs in sluice; the stream is refused for it elsewhere.
        model::PaginationStrategy::CustomPaginationStrategy(_) => None,
        model::PaginationStrategy::OffsetIncrement(offset) => Some(offset.page_size.as_ref()),
        model::PaginationStrategy::CursorPagination(cursor) => Some(cursor.page_size.as_ref()),
    };
    let reduction = PageSizeReduction::from_model(block);
    if let Some(page_size) = page_size {
        check_page_size_is_reducible(page_size, &reduction, name)?;
    }
    reduction.check()?;
    Ok(Some(reduction))
}

fn check_page_size_is_reducible(
    page_size: Option<&model::IntegerOrString>,
    reduction: &PageSizeReduction,
    name: &str,
) -> Result<(), String> {
    let Some(page_size) = page_size else {
        return Err(format!(
            "`page_size_reduction` requires `page_size` on the pagination strategy of stream {name}: without it the paginator does not send a page size, so there is nothing to reduce."
        ));
    };
    // A template is only known once the config is; the reducer checks it then.
    let configured = match page_size {
        model::IntegerOrString::Integer(size) => Some(*size),
        model::IntegerOrString::String(text) => text.trim().parse::<i64>().ok(),
    };
    let Some(configured) = configured else {
        return Ok(());
    };
    let minimum = reduction.minimum_page_size.max(1);
    if configured <= minimum {
        return Err(format!(
            "`page_size_reduction` on stream {name} can never reduce its page size: the pagination strategy's `page_size` is {configured} and `minimum_page_size` is {minimum}. Lower `minimum_page_size` or raise `page_size`."
        ));
    }
    let factor = reduction.reduction_factor;
    let attempts = reduction.max_attempts.max(1);
    if minimum > 1 && factor.powi(attempts as i32) < configured as f64 / minimum as f64 {
        let reachable =
            minimum.max((configured as f64 / factor.powi(attempts as i32)).floor() as i64);
        let needed = ((configured as f64 / minimum as f64).ln() / factor.ln()).ceil() as i64;
        tracing::warn!(
            "Stream {name} sets `minimum_page_size` to {minimum}, which `page_size_reduction` cannot reach in one run of failing pages: `max_attempts` is {attempts} and `reduction_factor` is {}, so {attempts} reductions of a page size of {configured} stop at {reachable} records per page and the sync then fails with a transient error. Whichever of the two bounds is tighter wins; reaching {minimum} in one run needs `max_attempts` of at least {needed}.",
            python_float(factor)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::FailureType;

    fn config(factor: f64, minimum: i64, attempts: i64) -> PageSizeReduction {
        PageSizeReduction {
            reduction_factor: factor,
            minimum_page_size: minimum,
            max_attempts: attempts,
            backoff_seconds: 0.5,
            retries_at_minimum_page_size: 0,
            failure_message: Some("Narrow the sync down.".to_owned()),
            restore_after_success: false,
        }
    }

    /// The page sizes asked for by successive reductions, until the reducer gives up.
    fn sizes(reducer: &mut PageSizeReducer<'_>) -> (Vec<u64>, EngineError) {
        let mut sizes = Vec::new();
        loop {
            match reducer.reduce("too big") {
                Ok(_) => sizes.push(reducer.page_size_override().unwrap()),
                Err(error) => return (sizes, error),
            }
        }
    }

    #[test]
    fn the_page_size_is_floor_divided_down_to_the_minimum_then_fails() {
        let config = config(3.0, 2, 10);
        let mut reducer = PageSizeReducer::new(&config, Some(100), "s");
        let (sizes, error) = sizes(&mut reducer);
        assert_eq!(sizes, [33, 11, 3, 2]);
        assert_eq!(error.failure_type, FailureType::TransientError);
        assert_eq!(
            error.message,
            "The source keeps rejecting pages of stream s at the smallest page size the connector is allowed to request (2 records per page). Narrow the sync down."
        );
    }

    #[test]
    fn reductions_in_a_row_are_bounded_by_max_attempts() {
        let config = config(2.0, 1, 2);
        let mut reducer = PageSizeReducer::new(&config, Some(100), "s");
        let (sizes, error) = sizes(&mut reducer);
        assert_eq!(sizes, [50, 25]);
        assert_eq!(error.failure_type, FailureType::TransientError);
        assert!(
            error.message.contains("down to 25 records per page."),
            "{}",
            error.message
        );
    }

    #[test]
    fn the_waits_grow_with_the_attempts_in_a_row_and_a_success_restarts_them() {
        let config = config(2.0, 1, 2);
        let mut reducer = PageSizeReducer::new(&config, Some(100), "s");
        assert_eq!(reducer.reduce("").unwrap(), Duration::from_millis(500));
        assert_eq!(reducer.reduce("").unwrap(), Duration::from_millis(1000));
        reducer.on_successful_page();
        // NEVER: the reduced size stays, the budget starts again.
        assert_eq!(reducer.page_size_override(), Some(25));
        assert_eq!(reducer.reduce("").unwrap(), Duration::from_millis(500));
        assert_eq!(reducer.page_size_override(), Some(12));
    }

    #[test]
    fn after_successful_page_restores_the_configured_size() {
        let mut config = config(2.0, 1, 5);
        config.restore_after_success = true;
        let mut reducer = PageSizeReducer::new(&config, Some(100), "s");
        reducer.reduce("").unwrap();
        reducer.on_successful_page();
        assert_eq!(reducer.page_size_override(), None);
        reducer.reduce("").unwrap();
        assert_eq!(reducer.page_size_override(), Some(50));
    }

    #[test]
    fn the_minimum_allows_retries_then_a_floor_never_left_is_a_config_error() {
        let mut config = config(2.0, 10, 5);
        config.retries_at_minimum_page_size = 1;
        let mut reducer = PageSizeReducer::new(&config, Some(10), "s");
        assert_eq!(reducer.reduce("").unwrap(), Duration::from_millis(500));
        assert_eq!(reducer.page_size_override(), None);
        let error = reducer.reduce("").unwrap_err();
        assert_eq!(error.failure_type, FailureType::ConfigError);
    }

    fn retriever(extra: serde_json::Value) -> model::SimpleRetriever {
        use sluice_manifest::model::FromNode;
        let mut node = serde_json::json!({
            "type": "SimpleRetriever",
            "requester": {
                "type": "HttpRequester",
                "url_base": "https://api.example.com",
                "path": "/items",
                "error_handler": {
                    "type": "CompositeErrorHandler",
                    "error_handlers": [{
                        "type": "DefaultErrorHandler",
                        "response_filters": [
                            {"type": "HttpResponseFilter", "http_codes": [413], "action": "REDUCE_PAGE_SIZE"},
                            {"type": "HttpResponseFilter", "http_codes": [422], "action": "SPLIT_REQUEST_WINDOW"}
                        ]
                    }]
                }
            },
            "record_selector": {
                "type": "RecordSelector",
                "extractor": {"type": "DpathExtractor", "field_path": []}
            },
            "paginator": {
                "type": "DefaultPaginator",
                "page_size_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "limit"},
                "pagination_strategy": {"type": "OffsetIncrement", "page_size": 100}
            },
            "page_size_reduction": {"type": "PageSizeReduction"},
            "request_window_splitting": {"type": "RequestWindowSplitting", "min_split_window": "PT1H"}
        });
        merge(&mut node, extra);
        model::SimpleRetriever::from_node(&node, &sluice_manifest::ManifestPath::root()).unwrap()
    }

    fn merge(node: &mut serde_json::Value, extra: serde_json::Value) {
        match (node, extra) {
            (serde_json::Value::Object(node), serde_json::Value::Object(extra)) => {
                for (key, value) in extra {
                    match node.get_mut(&key) {
                        Some(existing) if value.is_object() && existing.is_object() => {
                            merge(existing, value);
                        }
                        _ if value.is_null() => {
                            node.remove(&key);
                        }
                        _ => {
                            node.insert(key, value);
                        }
                    }
                }
            }
            (node, extra) => *node = extra,
        }
    }

    fn cursor(extra: serde_json::Value) -> model::IncrementalSync {
        use sluice_manifest::model::FromNode;
        let mut node = serde_json::json!({
            "type": "DatetimeBasedCursor",
            "cursor_field": "updated_at",
            "datetime_format": "%Y-%m-%dT%H:%M:%SZ",
            "start_datetime": "2024-01-01T00:00:00Z",
            "step": "P1D",
            "cursor_granularity": "PT1S"
        });
        merge(&mut node, extra);
        model::IncrementalSync::from_node(&node, &sluice_manifest::ManifestPath::root()).unwrap()
    }

    fn check(
        retriever: &model::SimpleRetriever,
        incremental: Option<&model::IncrementalSync>,
    ) -> Result<(bool, bool), String> {
        let context = RetrieverContext {
            stream: "s",
            incremental_sync: incremental,
            has_file_uploader: false,
            reads_parent_lazily: false,
            is_stream: true,
        };
        retriever_actions(retriever, &context)
            .map(|(split, reduce)| (split.is_some(), reduce.is_some()))
    }

    #[test]
    fn both_actions_are_accepted_on_a_datetime_cursor_with_granularity() {
        let cursor = cursor(serde_json::json!({}));
        assert_eq!(
            check(&retriever(serde_json::json!({})), Some(&cursor)),
            Ok((true, true))
        );
    }

    #[test]
    fn an_action_without_its_block_is_refused() {
        let cursor = cursor(serde_json::json!({}));
        let error = check(
            &retriever(serde_json::json!({"page_size_reduction": null})),
            Some(&cursor),
        )
        .unwrap_err();
        assert!(error.starts_with("Stream s has a response filter with the REDUCE_PAGE_SIZE action but the retriever does not define `page_size_reduction`."), "{error}");
        let error = check(
            &retriever(serde_json::json!({"request_window_splitting": null})),
            Some(&cursor),
        )
        .unwrap_err();
        assert!(
            error
                .starts_with("Stream s has a response filter with the SPLIT_REQUEST_WINDOW action"),
            "{error}"
        );
    }

    #[test]
    fn page_size_reduction_needs_a_reducible_page_size() {
        let cursor = cursor(serde_json::json!({}));
        let refused =
            |extra: serde_json::Value| check(&retriever(extra), Some(&cursor)).unwrap_err();
        assert!(
            refused(serde_json::json!({"paginator": {"page_size_option": null}}))
                .contains("requires `page_size_option`")
        );
        assert!(refused(serde_json::json!({"paginator": {"pagination_strategy": {"type": "PageIncrement", "page_size": 10}}})).contains("does not support the PageIncrement"));
        assert!(
            refused(
                serde_json::json!({"paginator": {"page_token_option": {"type": "RequestPath"}}})
            )
            .contains("of type RequestPath")
        );
        assert!(
            refused(serde_json::json!({"paginator": {"pagination_strategy": {"page_size": 1}}}))
                .contains("can never reduce its page size")
        );
        assert!(
            refused(serde_json::json!({"paginator": {"type": "NoPagination"}}))
                .contains("requires a DefaultPaginator")
        );
    }

    #[test]
    fn window_splitting_needs_a_datetime_cursor_with_a_granularity_it_can_print() {
        let refused = |cursor_extra: serde_json::Value, extra: serde_json::Value| {
            let cursor = cursor(cursor_extra);
            check(&retriever(extra), Some(&cursor)).unwrap_err()
        };
        assert!(
            check(&retriever(serde_json::json!({})), None)
                .unwrap_err()
                .contains("Found FinalStateCursor")
        );
        assert!(
            refused(
                serde_json::json!({"step": null, "cursor_granularity": null}),
                serde_json::json!({})
            )
            .contains("requires `cursor_granularity`")
        );
        assert!(
            refused(
                serde_json::json!({"is_client_side_incremental": true}),
                serde_json::json!({})
            )
            .contains("`is_client_side_incremental`")
        );
        assert!(
            refused(
                serde_json::json!({"datetime_format": "%Y-%m-%d"}),
                serde_json::json!({})
            )
            .contains("cannot represent a value finer than 1 day, 0:00:00")
        );
        assert!(
            refused(
                serde_json::json!({}),
                serde_json::json!({"request_window_splitting": {"min_split_window": "P1M"}})
            )
            .contains("`min_split_window` must be a positive duration")
        );
    }

    #[test]
    fn other_requesters_refuse_both_actions() {
        let retriever = retriever(serde_json::json!({}));
        let model::Requester::HttpRequester(requester) = &retriever.requester else {
            unreachable!()
        };
        let error = reject_actions(
            requester.error_handler.as_ref(),
            "requester of a `file_uploader`",
        )
        .unwrap_err();
        assert!(error.starts_with("The REDUCE_PAGE_SIZE response action is not supported on the requester of a `file_uploader`"), "{error}");
        assert_eq!(reject_actions(None, "x"), Ok(()));
    }

    #[test]
    fn a_login_requester_refuses_both_actions() {
        let cursor = cursor(serde_json::json!({}));
        let login = serde_json::json!({
            "type": "SessionTokenAuthenticator",
            "login_requester": {
                "type": "HttpRequester",
                "url_base": "https://api.example.com",
                "path": "/login",
                "error_handler": {
                    "type": "DefaultErrorHandler",
                    "response_filters": [
                        {"type": "HttpResponseFilter", "http_codes": [422], "action": "SPLIT_REQUEST_WINDOW"}
                    ]
                }
            },
            "session_token_path": ["token"],
            "request_authentication": {"type": "Bearer"}
        });
        let retriever = retriever(serde_json::json!({"requester": {"authenticator": login}}));
        let error = check(&retriever, Some(&cursor)).unwrap_err();
        assert!(
            error.starts_with("The SPLIT_REQUEST_WINDOW response action is not supported on the `login_requester` of the SessionTokenAuthenticator of s:"),
            "{error}"
        );
    }

    fn splitting(min: Option<&str>) -> (Splitting<'static>, WindowSplitting) {
        let model::IncrementalSync::DatetimeBasedCursor(model) = cursor(serde_json::json!({}))
        else {
            unreachable!()
        };
        let config = Arc::new(serde_json::json!({}));
        let spec =
            DatetimeSpec::from_model(&model, "s", &config, &sluice_manifest::ManifestPath::root())
                .unwrap();
        let mut slice = StreamSlice::partition(Map::new());
        slice.cursor_slice = serde_json::from_value(serde_json::json!({
            "start_time": "2024-05-01T00:00:00Z", "end_time": "2024-05-04T23:59:59Z"
        }))
        .unwrap();
        let min_split_window = min.map(|m| IsoDuration::parse(m).unwrap());
        let settings = WindowSplitting {
            failure_message: Some(" Set a later start date. ".to_owned()),
            min_split_window,
            min_split_window_text: min_split_window.map(|m| python_timedelta(m.micros)),
        };
        let splitting = Splitting::new(
            Arc::new(spec),
            slice,
            Box::new(|_| PageRequestOptions::default()),
        );
        (splitting, settings)
    }

    fn bounds(window: &Map<String, Value>) -> (String, String) {
        let text = |key: &str| window[key].as_str().unwrap().to_owned();
        (text("start_time"), text("end_time"))
    }

    #[test]
    fn split_windows_are_read_depth_first_in_order() {
        let (mut splitting, settings) = splitting(None);
        let (first, depth) = splitting.split(&settings, "s", "too big").unwrap();
        assert_eq!(
            (bounds(&first), depth),
            (
                ("2024-05-01T00:00:00Z".into(), "2024-05-02T23:59:59Z".into()),
                1
            )
        );
        splitting.start(first, depth);
        let (first, depth) = splitting.split(&settings, "s", "").unwrap();
        assert_eq!(
            (bounds(&first), depth),
            (
                ("2024-05-01T00:00:00Z".into(), "2024-05-01T23:59:59Z".into()),
                2
            )
        );
        let order: Vec<_> = std::iter::from_fn(|| splitting.next_window())
            .map(|(window, depth)| (bounds(&window), depth))
            .collect();
        assert_eq!(
            order,
            [
                (
                    ("2024-05-02T00:00:00Z".into(), "2024-05-02T23:59:59Z".into()),
                    2
                ),
                (
                    ("2024-05-03T00:00:00Z".into(), "2024-05-04T23:59:59Z".into()),
                    1
                ),
            ]
        );
    }

    #[test]
    fn splitting_stops_at_the_minimum_window_and_at_ten_splits() {
        let (mut splitting, settings) = splitting(Some("P2D"));
        let (first, depth) = splitting.split(&settings, "s", "").unwrap();
        splitting.start(first, depth);
        let error = splitting.split(&settings, "s", "too big").unwrap_err();
        assert_eq!(
            error.failure_type,
            sluice_protocol::FailureType::TransientError
        );
        assert_eq!(
            error.message,
            "The API kept rejecting stream s's request window even at the smallest window its cursor allows, its configured `min_split_window` (2 days, 0:00:00), or splitting the window further would not make progress. Set a later start date."
        );
        let (mut splitting, settings) = splitting_without_min();
        for _ in 0..MAX_SPLIT_DEPTH {
            let (first, depth) = splitting.split(&settings, "s", "").unwrap();
            splitting.start(first, depth);
        }
        let error = splitting.split(&settings, "s", "").unwrap_err();
        assert!(error.message.starts_with("Stream s could not split its request window to a size the API accepts within 10 splits."), "{}", error.message);
    }

    fn splitting_without_min() -> (Splitting<'static>, WindowSplitting) {
        splitting(None)
    }

    #[test]
    fn python_prints_floats_and_timedeltas_so() {
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_timedelta(86_400_000_000), "1 day, 0:00:00");
        assert_eq!(
            python_timedelta(2 * 86_400_000_000 + 3_600_000_000),
            "2 days, 1:00:00"
        );
        assert_eq!(python_timedelta(1_800_000_000), "0:30:00");
    }
}
