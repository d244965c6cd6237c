//! `DefaultErrorHandler` and `CompositeErrorHandler`.

use super::filter::{ResponseFilter, ResponseView};
use super::{Action, BuildError, Outcome, Resolution};
use super::{default_for_status, default_for_transport_error, fallback};
use crate::backoff::BackoffStrategy;
use serde_json::Value;
use sluice_interp::{Context, InterpolatedBoolean, Template};
use sluice_manifest::{ManifestPath, model};
use sluice_protocol::FailureType;
use std::sync::Arc;

/// The reference's retry limits when the manifest sets none.
const DEFAULT_MAX_RETRIES: u32 = 5;
const DEFAULT_MAX_TIME_SECONDS: f64 = 600.0;

/// How failed requests are classified, how often and how long they are retried.
#[derive(Debug, Clone)]
pub enum ErrorHandler {
    Default(DefaultErrorHandler),
    Composite(CompositeErrorHandler),
}

/// A `DefaultErrorHandler`: the response filters in order, then the default mapping.
#[derive(Debug, Clone)]
pub struct DefaultErrorHandler {
    pub response_filters: Vec<ResponseFilter>,
    pub max_retries: u32,
    /// Seconds; the reference always uses 600 for a declarative handler.
    pub max_time: f64,
    pub backoff_strategies: Vec<BackoffStrategy>,
}

impl Default for DefaultErrorHandler {
    fn default() -> Self {
        Self {
            response_filters: Vec::new(),
            max_retries: DEFAULT_MAX_RETRIES,
            max_time: DEFAULT_MAX_TIME_SECONDS,
            backoff_strategies: Vec::new(),
        }
    }
}

/// A `CompositeErrorHandler`: asks each handler in turn.
#[derive(Debug, Clone)]
pub struct CompositeErrorHandler {
    pub error_handlers: Vec<ErrorHandler>,
}

impl Default for ErrorHandler {
    /// What a requester without `error_handler` gets: the default mapping, 5 retries.
    fn default() -> Self {
        ErrorHandler::Default(DefaultErrorHandler::default())
    }
}

impl ErrorHandler {
    /// Builds the manifest's `error_handler`.
    pub fn from_model(
        model: &model::ErrorHandler,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        match model {
            model::ErrorHandler::DefaultErrorHandler(m) => Ok(ErrorHandler::Default(
                DefaultErrorHandler::from_model(m, config, path)?,
            )),
            model::ErrorHandler::CompositeErrorHandler(m) => {
                if m.error_handlers.is_empty() {
                    return Err(BuildError::at(
                        &path.key("error_handlers"),
                        "CompositeErrorHandler expects at least 1 underlying error handler",
                    ));
                }
                let error_handlers = m
                    .error_handlers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        ErrorHandler::from_model(h, config, &path.key("error_handlers").index(i))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(ErrorHandler::Composite(CompositeErrorHandler {
                    error_handlers,
                }))
            }
            model::ErrorHandler::CustomErrorHandler(_) => Err(BuildError::at(
                path,
                "custom error handlers (Python classes) cannot run in sluice",
            )),
        }
    }

    /// How many times a request is retried (a composite uses its first handler's).
    pub fn max_retries(&self) -> u32 {
        match self {
            ErrorHandler::Default(h) => h.max_retries,
            ErrorHandler::Composite(c) => c
                .error_handlers
                .first()
                .map_or(DEFAULT_MAX_RETRIES, Self::max_retries),
        }
    }

    /// How long, in seconds, a request is retried (a composite uses the longest).
    pub fn max_time(&self) -> f64 {
        match self {
            ErrorHandler::Default(h) => h.max_time,
            ErrorHandler::Composite(c) => c
                .error_handlers
                .iter()
                .map(Self::max_time)
                .fold(0.0, f64::max),
        }
    }

    /// The backoff strategies, a composite's flattened in order.
    pub fn backoff_strategies(&self) -> Vec<&BackoffStrategy> {
        match self {
            ErrorHandler::Default(h) => h.backoff_strategies.iter().collect(),
            ErrorHandler::Composite(c) => c
                .error_handlers
                .iter()
                .flat_map(Self::backoff_strategies)
                .collect(),
        }
    }

    /// Classifies what a request to `url` got.
    pub fn resolve(&self, outcome: Outcome<'_>, url: &str) -> Resolution {
        let view = outcome.ok().map(|r| ResponseView::new(r, url));
        self.resolve_view(outcome, view.as_ref(), url)
    }

    pub(crate) fn resolve_view(
        &self,
        outcome: Outcome<'_>,
        view: Option<&ResponseView<'_>>,
        url: &str,
    ) -> Resolution {
        match self {
            ErrorHandler::Default(h) => h.resolve(outcome, view, url),
            ErrorHandler::Composite(c) => {
                let mut last = None;
                for handler in &c.error_handlers {
                    let resolution = handler.resolve_view(outcome, view, url);
                    if matches!(
                        resolution.action,
                        Action::Success
                            | Action::Retry
                            | Action::Ignore
                            | Action::ResetPagination
                            | Action::ReducePageSize
                            | Action::SplitRequestWindow
                    ) {
                        return resolution;
                    }
                    last = Some(resolution);
                }
                last.unwrap_or_else(|| fallback(outcome, url))
            }
        }
    }
}

impl DefaultErrorHandler {
    /// Builds a `DefaultErrorHandler` (`max_retries` may be a template over the config).
    pub fn from_model(
        m: &model::DefaultErrorHandler,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let parameters = Value::Object(m.parameters.clone().unwrap_or_default());
        let max_retries = match &m.max_retries {
            None => DEFAULT_MAX_RETRIES,
            Some(model::IntegerOrString::Integer(n)) => clamp_retries(*n),
            Some(model::IntegerOrString::String(text)) => {
                let at = path.key("max_retries");
                let template =
                    Template::with_default(text, "5").map_err(|e| BuildError::at(&at, e))?;
                let ctx = Context::new().config(&**config).parameters(&parameters);
                let value = template.render(&ctx).map_err(|e| BuildError::at(&at, e))?;
                let parsed = match &value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    Value::Bool(b) => Some(i64::from(*b)),
                    _ => None,
                };
                clamp_retries(parsed.ok_or_else(|| {
                    BuildError::at(&at, format!("DefaultErrorHandler.max_retries did not evaluate to an integer (got {value})"))
                })?)
            }
        };
        let backoff_strategies = m
            .backoff_strategies
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, s)| BackoffStrategy::from_model(s, &path.key("backoff_strategies").index(i)))
            .collect::<Result<_, _>>()?;
        let response_filters = m
            .response_filters
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, f)| {
                ResponseFilter::from_model(f, config, &path.key("response_filters").index(i))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            response_filters,
            max_retries,
            max_time: DEFAULT_MAX_TIME_SECONDS,
            backoff_strategies,
        })
    }

    fn resolve(
        &self,
        outcome: Outcome<'_>,
        view: Option<&ResponseView<'_>>,
        url: &str,
    ) -> Resolution {
        if let Some(view) = view {
            for filter in &self.response_filters {
                match filter.matches(view) {
                    Ok(Some(resolution)) => return resolution,
                    Ok(None) => {}
                    Err(error) => {
                        return Resolution::new(
                            Action::Fail,
                            FailureType::SystemError,
                            format!("cannot evaluate a response filter: {error}"),
                        );
                    }
                }
            }
        }
        match outcome {
            // Python's `response.ok`: any status below 400.
            Ok(response) if response.status < 400 => Resolution::success(),
            Ok(response) => {
                default_for_status(response.status).unwrap_or_else(|| fallback(outcome, url))
            }
            Err(error) => {
                default_for_transport_error(error).unwrap_or_else(|| fallback(outcome, url))
            }
        }
    }
}

fn clamp_retries(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl ResponseFilter {
    /// Builds an `HttpResponseFilter`.
    pub fn from_model(
        m: &model::HttpResponseFilter,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let action = m.action.as_ref().map(|a| match a {
            model::ResponseAction::Success => Action::Success,
            model::ResponseAction::Fail => Action::Fail,
            model::ResponseAction::Retry => Action::Retry,
            model::ResponseAction::Ignore => Action::Ignore,
            model::ResponseAction::ResetPagination => Action::ResetPagination,
            model::ResponseAction::RateLimited => Action::RateLimited,
            model::ResponseAction::RefreshTokenThenRetry => Action::RefreshTokenThenRetry,
            model::ResponseAction::ReducePageSize => Action::ReducePageSize,
            model::ResponseAction::SplitRequestWindow => Action::SplitRequestWindow,
        });
        let failure_type = m.failure_type.as_ref().map(|f| match f {
            model::FailureType::SystemError => FailureType::SystemError,
            model::FailureType::ConfigError => FailureType::ConfigError,
            model::FailureType::TransientError => FailureType::TransientError,
        });
        let http_codes = m
            .http_codes
            .iter()
            .flatten()
            .map(|c| {
                u16::try_from(*c).map_err(|_| {
                    BuildError::at(
                        &path.key("http_codes"),
                        format!("{c} is not an HTTP status code"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let predicate = match m.predicate.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(
                InterpolatedBoolean::new(p)
                    .map_err(|e| BuildError::at(&path.key("predicate"), e))?,
            ),
            None => None,
        };
        let error_message = match m.error_message.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => {
                Some(Template::new(t).map_err(|e| BuildError::at(&path.key("error_message"), e))?)
            }
            None => None,
        };
        Ok(Self {
            action,
            failure_type,
            http_codes,
            error_message_contains: m.error_message_contains.clone().unwrap_or_default(),
            predicate,
            error_message,
            config: Arc::clone(config),
            parameters: Value::Object(m.parameters.clone().unwrap_or_default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpResponse;
    use serde_json::json;

    fn handler(yaml: Value) -> ErrorHandler {
        use sluice_manifest::model::FromNode;
        let model = model::ErrorHandler::from_node(&yaml, &ManifestPath::root()).unwrap();
        ErrorHandler::from_model(
            &model,
            &Arc::new(json!({"retries": "3"})),
            &ManifestPath::root(),
        )
        .unwrap()
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn filters_come_before_the_default_mapping() {
        let h = handler(
            json!({"type": "DefaultErrorHandler", "max_retries": "{{ config['retries'] }}", "response_filters": [
                {"type": "HttpResponseFilter", "http_codes": [404], "action": "IGNORE"},
                {"type": "HttpResponseFilter", "predicate": "{{ 'quota' in response }}", "action": "RATE_LIMITED"},
                {"type": "HttpResponseFilter", "error_message_contains": "expired", "action": "FAIL", "failure_type": "config_error",
                 "error_message": "Token expired: {{ response.error }}"},
            ]}),
        );
        assert_eq!(h.max_retries(), 3);
        let url = "http://h/x";
        assert_eq!(
            h.resolve(Ok(&response(404, "{}")), url).action,
            Action::Ignore
        );
        let r = h.resolve(Ok(&response(200, r#"{"quota": 1}"#)), url);
        assert_eq!(
            (r.action, r.failure_type),
            (Action::RateLimited, FailureType::SystemError)
        );
        let r = h.resolve(Ok(&response(400, r#"{"error": "token expired"}"#)), url);
        assert_eq!(
            (r.action, r.failure_type),
            (Action::Fail, FailureType::ConfigError)
        );
        assert_eq!(r.message, "Token expired: token expired");
        assert_eq!(
            h.resolve(Ok(&response(200, "[]")), url).action,
            Action::Success
        );
        assert_eq!(
            h.resolve(Ok(&response(302, "")), url).action,
            Action::Success
        );
        let r = h.resolve(Ok(&response(500, "")), url);
        assert_eq!(
            (r.action, r.failure_type),
            (Action::Retry, FailureType::TransientError)
        );
    }

    #[test]
    fn composite_lets_a_later_handler_override_fail() {
        let h = handler(json!({"type": "CompositeErrorHandler", "error_handlers": [
            {"type": "DefaultErrorHandler", "max_retries": 2},
            {"type": "DefaultErrorHandler", "response_filters": [{"type": "HttpResponseFilter", "http_codes": [403], "action": "RETRY"}]},
        ]}));
        assert_eq!(h.max_retries(), 2);
        assert_eq!(h.max_time(), 600.0);
        assert_eq!(h.resolve(Ok(&response(403, "")), "u").action, Action::Retry);
        assert_eq!(h.resolve(Ok(&response(401, "")), "u").action, Action::Fail);
    }
}
