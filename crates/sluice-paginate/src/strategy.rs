//! The pagination strategies: how the next page's token follows from the last page.

use crate::error::{BuildError, PaginateError};
use crate::headers::headers_object;
use crate::python::{as_python_int, is_truthy};
use crate::{PageInfo, PageToken};
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpolatedBoolean, Template};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use std::sync::Arc;

/// The variable that holds the page size a `CursorPagination` actually requested.
const REQUESTED_PAGE_SIZE: &str = "page_size";

/// One strategy, built from the manifest.
#[derive(Debug, Clone)]
pub(crate) enum Strategy {
    Offset(OffsetIncrement),
    Page(PageIncrement),
    Cursor(CursorPagination),
}

impl Strategy {
    pub fn from_model(
        model: &model::PaginationStrategy,
        config: &Arc<Value>,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let own = |own: &Option<Map<String, Value>>| {
            own.as_ref()
                .map_or_else(|| parameters.clone(), |map| Value::Object(map.clone()))
        };
        Ok(match model {
            model::PaginationStrategy::OffsetIncrement(m) => Strategy::Offset(
                OffsetIncrement::from_model(m, config, own(&m.parameters), path)?,
            ),
            model::PaginationStrategy::PageIncrement(m) => Strategy::Page(
                PageIncrement::from_model(m, config, &own(&m.parameters), path)?,
            ),
            model::PaginationStrategy::CursorPagination(m) => Strategy::Cursor(
                CursorPagination::from_model(m, config, own(&m.parameters), path)?,
            ),
            model::PaginationStrategy::CustomPaginationStrategy(m) => {
                return Err(BuildError::CustomComponent {
                    path: path.to_string(),
                    class_name: m.class_name.clone(),
                });
            }
        })
    }

    /// The token of the first request, if the strategy injects one.
    pub fn initial_token(&self) -> Option<Value> {
        match self {
            Strategy::Offset(s) => s.inject_on_first_request.then(|| Value::from(0)),
            Strategy::Page(s) => s
                .inject_on_first_request
                .then(|| Value::from(s.start_from_page)),
            Strategy::Cursor(_) => None,
        }
    }

    /// The page size evaluated against the config alone (the reference's `get_page_size`), or
    /// `None` when the strategy has none or it cannot be evaluated without a response.
    pub fn page_size(&self) -> Option<i64> {
        match self {
            Strategy::Offset(s) => s.config_page_size.as_ref().ok().copied().flatten(),
            Strategy::Page(s) => s.page_size,
            Strategy::Cursor(s) => s.page_size,
        }
    }

    /// Why the page size cannot be evaluated against the config alone, for a strategy whose page
    /// size is a template (the reference raises it as soon as `page_size_option` needs it).
    pub fn page_size_error(&self) -> Option<&BuildError> {
        match self {
            Strategy::Offset(s) => s.config_page_size.as_ref().err(),
            Strategy::Page(_) | Strategy::Cursor(_) => None,
        }
    }

    /// The top-level keys of the response body the strategy's templates read (empty when none
    /// reads it); `None` when one reads the body as a whole.
    pub fn response_keys(&self) -> Option<Vec<String>> {
        match self {
            Strategy::Offset(s) => s
                .page_size_template
                .as_ref()
                .map_or(Some(Vec::new()), |t| t.keys_read("response")),
            Strategy::Page(_) => Some(Vec::new()),
            Strategy::Cursor(s) => {
                let mut keys = s.cursor_value.keys_read("response")?;
                if let Some(condition) = &s.stop_condition {
                    for key in condition.keys_read("response")? {
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
                Some(keys)
            }
        }
    }

    /// The next token (not yet checked for truthiness), or `None` to stop.
    pub fn next_token(
        &self,
        page: &PageInfo<'_>,
        origin: &str,
    ) -> Result<Option<Value>, PaginateError> {
        match self {
            Strategy::Offset(s) => s.next_token(page, origin),
            Strategy::Page(s) => s.next_token(page, origin),
            Strategy::Cursor(s) => s.next_token(page, origin),
        }
    }
}

fn template(source: &str, path: &ManifestPath) -> Result<Template, BuildError> {
    Template::new(source).map_err(|source| BuildError::Template {
        path: path.to_string(),
        source,
    })
}

/// How a manifest writes `page_size`.
enum PageSize<'a> {
    /// A number, or a string of digits (the reference's factory turns `"100"` back into `100`).
    Constant(i64),
    /// Any other non-empty string: a template.
    Template(&'a str),
    /// An empty string: no page size.
    Absent,
}

impl<'a> PageSize<'a> {
    fn of(page_size: &'a model::IntegerOrString) -> Self {
        match page_size {
            model::IntegerOrString::Integer(n) => PageSize::Constant(*n),
            model::IntegerOrString::String(s) if s.is_empty() => PageSize::Absent,
            model::IntegerOrString::String(s) => match s.parse() {
                Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => PageSize::Constant(n),
                _ => PageSize::Template(s),
            },
        }
    }
}

/// Evaluates a page size template against the config, requiring an integer as the reference
/// does (`"{x} is of type {type}. Expected <class 'int'>"`).
fn config_page_size(
    source: &str,
    config: &Value,
    parameters: &Value,
    path: &ManifestPath,
) -> Result<i64, BuildError> {
    let template = template(source, path)?;
    let ctx = Context::new().config(config).parameters(parameters);
    let value = template
        .render(&ctx)
        .map_err(|source| BuildError::Template {
            path: path.to_string(),
            source,
        })?;
    as_python_int(&value).ok_or_else(|| BuildError::Invalid {
        path: path.to_string(),
        message: format!("page_size evaluated to {value}, which is not an integer"),
    })
}

/// The number of records the API returned on the page: the extractor's count before any record
/// filter, so a filter can neither end the pagination nor shorten the offset.
fn records_returned(page: &PageInfo<'_>) -> usize {
    page.extracted_record_count.unwrap_or(page.last_page_size)
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// `OffsetIncrement`: the token is the number of records read so far.
#[derive(Debug, Clone)]
pub(crate) struct OffsetIncrement {
    config: Arc<Value>,
    parameters: Value,
    constant_page_size: Option<i64>,
    /// A page size that is a template, evaluated per page with the response in context.
    page_size_template: Option<Template>,
    /// The page size evaluated against the config alone.
    config_page_size: Result<Option<i64>, BuildError>,
    inject_on_first_request: bool,
}

impl OffsetIncrement {
    fn from_model(
        model: &model::OffsetIncrement,
        config: &Arc<Value>,
        parameters: Value,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let page_size_path = path.key("page_size");
        let (constant_page_size, page_size_template, config_page_size) =
            match model.page_size.as_ref().map(PageSize::of) {
                None | Some(PageSize::Absent) => (None, None, Ok(None)),
                Some(PageSize::Constant(n)) => (Some(n), None, Ok(Some(n))),
                Some(PageSize::Template(source)) => {
                    let template = template(source, &page_size_path)?;
                    // Only needed for `page_size_option`; the paginator reports the error there.
                    let from_config =
                        config_page_size(source, config, &parameters, &page_size_path).map(Some);
                    (None, Some(template), from_config)
                }
            };
        Ok(OffsetIncrement {
            config: Arc::clone(config),
            parameters,
            constant_page_size,
            page_size_template,
            config_page_size,
            inject_on_first_request: model.inject_on_first_request.unwrap_or(false),
        })
    }

    /// The page size the last request asked for; `None` when there is no limit to compare with.
    fn requested_page_size(
        &self,
        page: &PageInfo<'_>,
        origin: &str,
    ) -> Result<Option<f64>, PaginateError> {
        if let Some(size) = page.page_size_override {
            return Ok(Some(size as f64));
        }
        if let Some(size) = self.constant_page_size {
            return Ok(Some(size as f64));
        }
        let Some(template) = &self.page_size_template else {
            return Ok(None);
        };
        let empty = empty_object();
        let ctx = Context::new()
            .config(&*self.config)
            .parameters(&self.parameters)
            .response(page.response_body.unwrap_or(&empty));
        let value = template
            .render(&ctx)
            .map_err(|source| PaginateError::Template {
                origin: origin.to_owned(),
                field: "page_size",
                source,
            })?;
        // The reference compares with Python's `<` after a truthiness test: a falsy page size
        // means no limit, a number is compared, anything else cannot be compared.
        if !is_truthy(&value) {
            return Ok(None);
        }
        match &value {
            Value::Bool(b) => Ok(Some(f64::from(u8::from(*b)))),
            Value::Number(n) => Ok(n.as_f64()),
            other => Err(PaginateError::Invalid {
                origin: origin.to_owned(),
                message: format!("page_size evaluated to {other}, which is not a number"),
            }),
        }
    }

    fn next_token(
        &self,
        page: &PageInfo<'_>,
        origin: &str,
    ) -> Result<Option<Value>, PaginateError> {
        let returned = records_returned(page);
        let requested = self.requested_page_size(page, origin)?;
        if returned == 0 || requested.is_some_and(|size| (returned as f64) < size) {
            return Ok(None);
        }
        let returned = i64::try_from(returned).unwrap_or(i64::MAX);
        let offset = match page.current_token.map(PageToken::value) {
            None | Some(Value::Null) => returned,
            Some(last) => {
                let last = as_python_int(last).ok_or_else(|| PaginateError::Invalid {
                    origin: origin.to_owned(),
                    message: format!(
                        "Last page token value {last} for OffsetIncrement pagination strategy was not an integer"
                    ),
                })?;
                last.checked_add(returned)
                    .ok_or_else(|| PaginateError::Invalid {
                        origin: origin.to_owned(),
                        message: format!("the offset {last} + {returned} overflows"),
                    })?
            }
        };
        Ok(Some(Value::from(offset)))
    }
}

/// `PageIncrement`: the token is the page number.
#[derive(Debug, Clone)]
pub(crate) struct PageIncrement {
    page_size: Option<i64>,
    start_from_page: i64,
    inject_on_first_request: bool,
}

impl PageIncrement {
    fn from_model(
        model: &model::PageIncrement,
        config: &Value,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        Ok(PageIncrement {
            page_size: evaluated_page_size(model.page_size.as_ref(), config, parameters, path)?,
            start_from_page: model.start_from_page.unwrap_or(0),
            inject_on_first_request: model.inject_on_first_request.unwrap_or(false),
        })
    }

    fn next_token(
        &self,
        page: &PageInfo<'_>,
        origin: &str,
    ) -> Result<Option<Value>, PaginateError> {
        if page.page_size_override.is_some() {
            return Err(PaginateError::PageSizeOverrideUnsupported {
                origin: origin.to_owned(),
            });
        }
        let returned = records_returned(page);
        let short_page = self
            .page_size
            .is_some_and(|size| size != 0 && i64::try_from(returned).is_ok_and(|n| n < size));
        if returned == 0 || short_page {
            return Ok(None);
        }
        let overflow = || PaginateError::Invalid {
            origin: origin.to_owned(),
            message: "the page number overflows".to_owned(),
        };
        let next = match page.current_token.map(PageToken::value) {
            None | Some(Value::Null) => self.start_from_page.checked_add(1).ok_or_else(overflow)?,
            Some(last) => {
                let last = as_python_int(last).ok_or_else(|| PaginateError::Invalid {
                    origin: origin.to_owned(),
                    message: format!(
                        "Last page token value {last} for PageIncrement pagination strategy was not an integer"
                    ),
                })?;
                last.checked_add(1).ok_or_else(overflow)?
            }
        };
        Ok(Some(Value::from(next)))
    }
}

/// `page_size` of `PageIncrement` and `CursorPagination`: evaluated once against the config.
fn evaluated_page_size(
    page_size: Option<&model::IntegerOrString>,
    config: &Value,
    parameters: &Value,
    path: &ManifestPath,
) -> Result<Option<i64>, BuildError> {
    match page_size.map(PageSize::of) {
        None => Ok(None),
        Some(PageSize::Constant(n)) => Ok(Some(n)),
        // The reference evaluates an empty string too, which gives `""`, not an integer.
        Some(PageSize::Absent) => {
            config_page_size("", config, parameters, &path.key("page_size")).map(Some)
        }
        Some(PageSize::Template(source)) => {
            config_page_size(source, config, parameters, &path.key("page_size")).map(Some)
        }
    }
}

/// `CursorPagination`: the token is a template over the response, its headers and the last
/// record; `stop_condition` ends the pagination first when it holds.
#[derive(Debug, Clone)]
pub(crate) struct CursorPagination {
    config: Arc<Value>,
    parameters: Value,
    cursor_value: Template,
    stop_condition: Option<InterpolatedBoolean>,
    page_size: Option<i64>,
    /// Whether a template reads `headers`: only then are they converted for each page.
    reads_headers: bool,
}

impl CursorPagination {
    fn from_model(
        model: &model::CursorPagination,
        config: &Arc<Value>,
        parameters: Value,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let page_size = evaluated_page_size(model.page_size.as_ref(), config, &parameters, path)?;
        let cursor_value = template(&model.cursor_value, &path.key("cursor_value"))?;
        let stop_condition = model
            .stop_condition
            .as_deref()
            .map(|condition| {
                InterpolatedBoolean::new(condition).map_err(|source| BuildError::Template {
                    path: path.key("stop_condition").to_string(),
                    source,
                })
            })
            .transpose()?;
        // Without a declared page size the `page_size` variable is unbound, and the reference
        // rejects a template that reads it rather than let it silently stop after one page.
        if page_size.is_none() {
            let field = if cursor_value.reads(REQUESTED_PAGE_SIZE) {
                Some(("cursor_value", cursor_value.source()))
            } else {
                stop_condition
                    .as_ref()
                    .filter(|c| c.reads(REQUESTED_PAGE_SIZE))
                    .map(|c| ("stop_condition", c.source()))
            };
            if let Some((field, template)) = field {
                return Err(BuildError::Invalid {
                    path: path.key(field).to_string(),
                    message: format!(
                        "the template {template:?} reads the `page_size` variable, but this \
                         CursorPagination declares no `page_size`: declare `page_size` on the \
                         strategy, or compare against a value the manifest defines, such as \
                         `config['page_size']`"
                    ),
                });
            }
        }
        let reads_headers = cursor_value.reads("headers")
            || stop_condition.as_ref().is_some_and(|c| c.reads("headers"));
        Ok(CursorPagination {
            config: Arc::clone(config),
            parameters,
            cursor_value,
            stop_condition,
            page_size,
            reads_headers,
        })
    }

    fn next_token(
        &self,
        page: &PageInfo<'_>,
        origin: &str,
    ) -> Result<Option<Value>, PaginateError> {
        let empty = empty_object();
        let headers = if self.reads_headers {
            headers_object(page.headers)
        } else {
            empty_object()
        };
        let requested_page_size = page
            .page_size_override
            .map(|n| Value::from(i64::try_from(n).unwrap_or(i64::MAX)))
            .or_else(|| self.page_size.map(Value::from))
            .unwrap_or(Value::Null);
        let mut ctx = Context::new()
            .config(&*self.config)
            .parameters(&self.parameters)
            .response(page.response_body.unwrap_or(&empty))
            .headers(&headers)
            .last_page_size(Value::from(page.last_page_size))
            .stream_slice(page.stream_slice)
            .with(REQUESTED_PAGE_SIZE, requested_page_size);
        if let Some(record) = page.last_record {
            ctx = ctx.last_record(record);
        }
        if let Some(condition) = &self.stop_condition {
            let stop = condition
                .eval(&ctx)
                .map_err(|source| PaginateError::Template {
                    origin: origin.to_owned(),
                    field: "stop_condition",
                    source,
                })?;
            if stop {
                return Ok(None);
            }
        }
        let token = self
            .cursor_value
            .render(&ctx)
            .map_err(|source| PaginateError::Template {
                origin: origin.to_owned(),
                field: "cursor_value",
                source,
            })?;
        Ok(Some(token))
    }
}
