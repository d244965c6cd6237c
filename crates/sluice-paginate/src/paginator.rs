//! The paginator a retriever drives: `DefaultPaginator` or `NoPagination`.

use crate::error::{BuildError, PaginateError};
use crate::options::{PageRequestOptions, RequestOption, check_no_collision};
use crate::python::is_truthy;
use crate::strategy::Strategy;
use serde_json::{Map, Value};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use std::fmt;
use std::sync::Arc;

/// A page token, held as the mapping `{"next_page_token": value}` that requester templates read
/// as `next_page_token` (`{{ next_page_token['next_page_token'] }}`).
#[derive(Debug, Clone, PartialEq)]
pub struct PageToken {
    mapping: Value,
}

impl PageToken {
    /// Wraps a token value.
    pub fn new(value: Value) -> Self {
        let mut mapping = Map::with_capacity(1);
        mapping.insert("next_page_token".to_owned(), value);
        PageToken {
            mapping: Value::Object(mapping),
        }
    }

    /// The token value itself (an offset, a page number, a cursor, a URL).
    pub fn value(&self) -> &Value {
        self.mapping.get("next_page_token").unwrap_or(&Value::Null)
    }

    /// The mapping to pass to templates as `next_page_token`.
    pub fn as_mapping(&self) -> &Value {
        &self.mapping
    }
}

/// What the paginator needs to know about the page just read.
#[derive(Debug, Clone, Copy)]
pub struct PageInfo<'a> {
    /// The first item the stream's decoder produced for the response (an empty object when it
    /// produced none). Only read when [`Paginator::needs_response_body`] is true; `None` then
    /// counts as an empty object.
    pub response_body: Option<&'a Value>,
    /// The response headers as received.
    pub headers: &'a [(String, String)],
    /// The number of records the page gave the retriever (after the record filter).
    pub last_page_size: usize,
    /// The number of records the extractor returned before the record filter, when a record
    /// selector read the page; `OffsetIncrement` and `PageIncrement` count these so that a filter
    /// cannot end the pagination early. `None` means `last_page_size`.
    pub extracted_record_count: Option<usize>,
    /// The last record of the page (after the record filter).
    pub last_record: Option<&'a Value>,
    /// The token the page was requested with.
    pub current_token: Option<&'a PageToken>,
    /// The slice the page was read for.
    pub stream_slice: &'a Value,
    /// The page size actually requested when a page size reduction is in effect.
    pub page_size_override: Option<u64>,
}

/// Decides, from the last record of a page, that the stream's cursor has seen everything after
/// it: the reference's `StopConditionPaginationStrategyDecorator` with a `CursorStopCondition`,
/// used for data feeds (`is_data_feed`), which stops when the cursor would not sync the record.
pub trait RecordStopCondition: Send + Sync {
    /// Whether pagination must stop after a page whose last record is `record`.
    fn is_met(&self, record: &Value) -> bool;
}

/// The runtime paginator of one stream. It holds no per-partition state: the caller keeps the
/// current [`PageToken`] per partition, so one paginator serves partitions read concurrently,
/// and restarting a partition (a pagination reset) is `initial_token()` again.
#[derive(Clone)]
pub struct Paginator {
    origin: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    NoPagination,
    Default(Box<DefaultPaginator>),
}

#[derive(Clone)]
struct DefaultPaginator {
    strategy: Strategy,
    page_size_option: Option<RequestOption>,
    page_token_option: Option<TokenOption>,
    stop_condition: Option<Arc<dyn RecordStopCondition>>,
    /// What the strategy's templates read of the response body, worked out once.
    response_keys: Option<Vec<String>>,
}

impl fmt::Debug for DefaultPaginator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultPaginator")
            .field("strategy", &self.strategy)
            .field("page_size_option", &self.page_size_option)
            .field("page_token_option", &self.page_token_option)
            .field("stop_condition", &self.stop_condition.is_some())
            .finish()
    }
}

impl fmt::Debug for Paginator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paginator")
            .field("origin", &self.origin)
            .field("kind", &self.kind)
            .finish()
    }
}

#[derive(Debug, Clone)]
enum TokenOption {
    Request(RequestOption),
    /// `RequestPath`: the token is the next page's path or URL.
    Path,
}

impl Paginator {
    /// Builds the paginator of a retriever: `None` (no paginator in the manifest) and
    /// `NoPagination` read one page per partition.
    ///
    /// `parameters` are the retriever's `$parameters`, used where a strategy has none of its own;
    /// `path` is the paginator's place in the manifest, for errors.
    pub fn from_model(
        model: Option<&model::Paginator>,
        config: &Arc<Value>,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let origin = path.to_string();
        let Some(model::Paginator::DefaultPaginator(model)) = model else {
            return Ok(Paginator {
                origin,
                kind: Kind::NoPagination,
            });
        };
        let parameters = model
            .parameters
            .as_ref()
            .map_or_else(|| parameters.clone(), |own| Value::Object(own.clone()));
        let page_size_option = model
            .page_size_option
            .as_ref()
            .map(|option| RequestOption::from_model(option, config, &path.key("page_size_option")))
            .transpose()?;
        let page_token_path = path.key("page_token_option");
        let page_token_option = match &model.page_token_option {
            None => None,
            Some(model::PageTokenOption::RequestPath(_)) => Some(TokenOption::Path),
            Some(model::PageTokenOption::RequestOption(option)) => Some(TokenOption::Request(
                RequestOption::from_model(option, config, &page_token_path)?,
            )),
        };
        let strategy = Strategy::from_model(
            &model.pagination_strategy,
            config,
            &parameters,
            &path.key("pagination_strategy"),
        )?;
        if page_size_option.is_some() {
            if let Some(error) = strategy.page_size_error() {
                return Err(error.clone());
            }
        }
        if page_size_option.is_some() && strategy.page_size().is_none_or(|size| size == 0) {
            return Err(BuildError::Invalid {
                path: path.key("page_size_option").to_string(),
                message: "page_size_option cannot be set if the pagination strategy does not have a page_size"
                    .to_owned(),
            });
        }
        if let (Some(size_option), Some(TokenOption::Request(token_option))) =
            (&page_size_option, &page_token_option)
        {
            check_no_collision(size_option, token_option, path)?;
        }
        let response_keys = strategy.response_keys();
        Ok(Paginator {
            origin,
            kind: Kind::Default(Box::new(DefaultPaginator {
                response_keys,
                strategy,
                page_size_option,
                page_token_option,
                stop_condition: None,
            })),
        })
    }

    /// A paginator that reads one page per partition (`NoPagination`).
    pub fn none(origin: impl Into<String>) -> Self {
        Paginator {
            origin: origin.into(),
            kind: Kind::NoPagination,
        }
    }

    /// Adds a stop condition on the last record of each page, checked before the strategy (the
    /// reference does this for data feeds). `NoPagination` has no next page anyway.
    pub fn with_record_stop_condition(mut self, condition: Arc<dyn RecordStopCondition>) -> Self {
        if let Kind::Default(paginator) = &mut self.kind {
            paginator.stop_condition = Some(condition);
        }
        self
    }

    /// The paginator's place in the manifest.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the manifest paginates at all (`DefaultPaginator`).
    pub fn paginates(&self) -> bool {
        matches!(self.kind, Kind::Default(_))
    }

    /// The token of the first request of a partition: `Some` only for `OffsetIncrement` (`0`) and
    /// `PageIncrement` (`start_from_page`) with `inject_on_first_request`.
    pub fn initial_token(&self) -> Option<PageToken> {
        match &self.kind {
            Kind::NoPagination => None,
            Kind::Default(paginator) => paginator.strategy.initial_token().map(PageToken::new),
        }
    }

    /// The page size the strategy asks for (the reference's `get_page_size`), if it has one that
    /// does not depend on the response.
    pub fn page_size(&self) -> Option<i64> {
        match &self.kind {
            Kind::NoPagination => None,
            Kind::Default(paginator) => paginator.strategy.page_size(),
        }
    }

    /// The top-level keys of the response body that [`next_page_token`](Self::next_page_token)
    /// reads (`next` for `{{ response.next }}`), so a caller may hand it only those in
    /// [`PageInfo::response_body`]; `None` when it reads the body as a whole.
    pub fn response_keys(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::NoPagination => Some(&[]),
            Kind::Default(paginator) => paginator.response_keys.as_deref(),
        }
    }

    /// Whether [`next_page_token`](Self::next_page_token) reads the response body, so the caller
    /// must keep the decoded body (before moving records out of it) and pass it in [`PageInfo`].
    pub fn needs_response_body(&self) -> bool {
        self.response_keys().is_none_or(|keys| !keys.is_empty())
    }

    /// What the paginator adds to the request for the page of `token` (`None` for the first page
    /// unless [`initial_token`](Self::initial_token) gave one): the page size on every request,
    /// the token when there is one.
    pub fn request_options(&self, token: Option<&PageToken>) -> PageRequestOptions {
        self.request_options_with_page_size(token, None)
    }

    /// Like [`request_options`](Self::request_options), asking for `page_size_override` records
    /// instead of the strategy's page size (a page size reduction).
    pub fn request_options_with_page_size(
        &self,
        token: Option<&PageToken>,
        page_size_override: Option<u64>,
    ) -> PageRequestOptions {
        let mut options = PageRequestOptions::default();
        let Kind::Default(paginator) = &self.kind else {
            return options;
        };
        let token = token.map(PageToken::value).filter(|value| !value.is_null());
        match (&paginator.page_token_option, token) {
            (Some(TokenOption::Request(option)), Some(value)) => option.inject(&mut options, value),
            (Some(TokenOption::Path), Some(value)) if is_truthy(value) => {
                options.path = Some(sluice_interp::python_str(value));
            }
            _ => {}
        }
        if let Some(option) = &paginator.page_size_option {
            let size = page_size_override
                .map(Value::from)
                .or_else(|| paginator.strategy.page_size().map(Value::from));
            if let Some(size) = size.filter(is_truthy) {
                option.inject(&mut options, &size);
            }
        }
        options
    }

    /// The token of the next page, or `None` when the partition has no more pages.
    ///
    /// Call it after every page whose response was not ignored, with the token the page was
    /// requested with in `page.current_token`.
    pub fn next_page_token(&self, page: &PageInfo<'_>) -> Result<Option<PageToken>, PaginateError> {
        let Kind::Default(paginator) = &self.kind else {
            return Ok(None);
        };
        if let (Some(condition), Some(record)) = (&paginator.stop_condition, page.last_record) {
            // An empty record is falsy in the reference, which then skips the condition.
            if is_truthy(record) && condition.is_met(record) {
                return Ok(None);
            }
        }
        let token = paginator.strategy.next_token(page, &self.origin)?;
        Ok(token.filter(is_truthy).map(PageToken::new))
    }
}
