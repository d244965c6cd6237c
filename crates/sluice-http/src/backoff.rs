//! Backoff strategies: how long to wait before retrying, as the manifest's
//! `backoff_strategies` say (ExponentialBackoffStrategy, ConstantBackoffStrategy,
//! WaitTimeFromHeader, WaitUntilTimeFromHeader, WaitTimeFromResponse).
//!
//! A strategy that has no answer returns `None` and the next one is asked; when none answers,
//! the requester falls back to the reference's built-in exponential retry (1, 2, 4... seconds).

use crate::errors::filter::ResponseView;
use crate::errors::{BuildError, HttpError, Outcome};
use regex::Regex;
use serde_json::Value;
use sluice_interp::{Context, Template};
use sluice_manifest::{ManifestPath, model};
use sluice_protocol::FailureType;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A number that may come from the config (`"{{ config['backoff'] }}"`).
#[derive(Debug, Clone)]
pub enum Seconds {
    Fixed(f64),
    Template(Template),
}

impl Seconds {
    fn from_model(value: &model::NumberOrString, path: &ManifestPath) -> Result<Self, BuildError> {
        match value {
            model::NumberOrString::Number(n) => Ok(Seconds::Fixed(*n)),
            model::NumberOrString::String(text) => match text.trim().parse::<f64>() {
                Ok(n) => Ok(Seconds::Fixed(n)),
                Err(_) => Template::new(text)
                    .map(Seconds::Template)
                    .map_err(|e| BuildError::at(path, e)),
            },
        }
    }

    /// Python's `float()` of the rendered value; `None` when it renders to nothing.
    fn eval(&self, ctx: &Context<'_>) -> Result<Option<f64>, String> {
        let value = match self {
            Seconds::Fixed(n) => return Ok(Some(*n)),
            Seconds::Template(t) => t.render(ctx).map_err(|e| e.to_string())?,
        };
        python_float(&value)
    }
}

fn python_float(value: &Value) -> Result<Option<f64>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::Bool(b) => Ok(Some(f64::from(u8::from(*b)))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| format!("could not convert string to float: '{s}'")),
        other => Err(format!(
            "float() argument must be a string or a number, not {other}"
        )),
    }
}

/// One backoff strategy of an error handler.
#[derive(Debug, Clone)]
pub enum BackoffStrategy {
    /// `factor * 2^attempt` seconds (attempt counts from 1 at the first failure).
    Exponential {
        factor: Seconds,
        jitter: Option<f64>,
    },
    /// The same wait every time.
    Constant {
        seconds: Seconds,
        jitter: Option<f64>,
    },
    /// The number of seconds a response header gives (optionally the part a regex matches).
    WaitTimeFromHeader {
        header: Template,
        regex: Option<Template>,
        max_wait: Option<Seconds>,
    },
    /// The time (epoch seconds) a response header gives, minus now, at least `min_wait`.
    WaitUntilTimeFromHeader {
        header: Template,
        regex: Option<Template>,
        min_wait: Option<Seconds>,
        max_wait: Option<Seconds>,
    },
    /// The number of seconds an expression over the response body and headers gives.
    WaitTimeFromResponse {
        wait_time: Template,
        max_wait: Option<Seconds>,
    },
}

/// What a strategy reads besides the response.
#[derive(Debug, Clone)]
pub struct BackoffContext {
    pub config: Arc<Value>,
    pub parameters: Value,
}

impl BackoffStrategy {
    /// Builds a strategy from the manifest.
    pub fn from_model(
        model: &model::BackoffStrategy,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let template = |text: &str, field: &str| {
            Template::new(text).map_err(|e| BuildError::at(&path.key(field), e))
        };
        let max_wait = |value: &Option<model::NumberOrString>| {
            value
                .as_ref()
                .map(|v| Seconds::from_model(v, &path.key("max_waiting_time_in_seconds")))
                .transpose()
        };
        let jitter = |value: Option<f64>| match value {
            Some(j) if j < 0.0 => Err(BuildError::at(
                &path.key("jitter_range_in_seconds"),
                "jitter_range_in_seconds must be greater than or equal to 0",
            )),
            other => Ok(other),
        };
        Ok(match model {
            model::BackoffStrategy::ExponentialBackoffStrategy(m) => BackoffStrategy::Exponential {
                factor: match &m.factor {
                    Some(f) => Seconds::from_model(f, &path.key("factor"))?,
                    None => Seconds::Fixed(5.0),
                },
                jitter: jitter(m.jitter_range_in_seconds)?,
            },
            model::BackoffStrategy::ConstantBackoffStrategy(m) => BackoffStrategy::Constant {
                seconds: Seconds::from_model(
                    &m.backoff_time_in_seconds,
                    &path.key("backoff_time_in_seconds"),
                )?,
                jitter: jitter(m.jitter_range_in_seconds)?,
            },
            model::BackoffStrategy::WaitTimeFromHeader(m) => BackoffStrategy::WaitTimeFromHeader {
                header: template(&m.header, "header")?,
                regex: m
                    .regex
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| template(r, "regex"))
                    .transpose()?,
                max_wait: max_wait(&m.max_waiting_time_in_seconds)?,
            },
            model::BackoffStrategy::WaitUntilTimeFromHeader(m) => {
                BackoffStrategy::WaitUntilTimeFromHeader {
                    header: template(&m.header, "header")?,
                    regex: m
                        .regex
                        .as_deref()
                        .filter(|r| !r.is_empty())
                        .map(|r| template(r, "regex"))
                        .transpose()?,
                    min_wait: m
                        .min_wait
                        .as_ref()
                        .map(|v| Seconds::from_model(v, &path.key("min_wait")))
                        .transpose()?,
                    max_wait: max_wait(&m.max_waiting_time_in_seconds)?,
                }
            }
            model::BackoffStrategy::WaitTimeFromResponse(m) => {
                BackoffStrategy::WaitTimeFromResponse {
                    wait_time: template(&m.wait_time_in_seconds, "wait_time_in_seconds")?,
                    max_wait: max_wait(&m.max_waiting_time_in_seconds)?,
                }
            }
            model::BackoffStrategy::CustomBackoffStrategy(_) => {
                return Err(BuildError::at(
                    path,
                    "custom backoff strategies (Python classes) cannot run in sluice",
                ));
            }
        })
    }

    /// Seconds to wait before retrying after `attempt` failed sends of the request (from 1),
    /// `None` when this strategy has no answer. An error stops the stream (a wait longer than
    /// `max_waiting_time_in_seconds`, or a value that is not a number).
    pub(crate) fn backoff_time(
        &self,
        outcome: Outcome<'_>,
        view: Option<&ResponseView<'_>>,
        attempt: u32,
        bctx: &BackoffContext,
    ) -> Result<Option<f64>, HttpError> {
        let ctx = Context::new()
            .config(&*bctx.config)
            .parameters(&bctx.parameters);
        let bad =
            |e: String| HttpError::new(FailureType::SystemError, format!("backoff strategy: {e}"));
        match self {
            BackoffStrategy::Exponential { factor, jitter } => {
                let factor = factor.eval(&ctx).map_err(bad)?.unwrap_or(0.0);
                Ok(Some(with_jitter(
                    factor * 2f64.powi(attempt.min(1000) as i32),
                    *jitter,
                )))
            }
            BackoffStrategy::Constant { seconds, jitter } => {
                let seconds = seconds.eval(&ctx).map_err(bad)?.unwrap_or(0.0);
                Ok(Some(with_jitter(seconds, *jitter)))
            }
            BackoffStrategy::WaitTimeFromHeader {
                header,
                regex,
                max_wait,
            } => {
                let Ok(response) = outcome else {
                    return Ok(None);
                };
                let value = header_number(response, header, regex.as_ref(), &ctx).map_err(bad)?;
                let max = max_wait
                    .as_ref()
                    .map(|m| m.eval(&ctx))
                    .transpose()
                    .map_err(bad)?
                    .flatten();
                if let (Some(max), Some(value)) = (max, value) {
                    if value != 0.0 && value >= max {
                        return Err(too_long(value, max));
                    }
                }
                Ok(value)
            }
            BackoffStrategy::WaitUntilTimeFromHeader {
                header,
                regex,
                min_wait,
                max_wait,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let wait_until = match outcome {
                    Ok(response) => {
                        header_number(response, header, regex.as_ref(), &ctx).map_err(bad)?
                    }
                    Err(_) => None,
                };
                let min_wait = min_wait
                    .as_ref()
                    .map(|m| m.eval(&ctx))
                    .transpose()
                    .map_err(bad)?
                    .flatten();
                let min_wait = min_wait.filter(|m| *m != 0.0);
                let max = max_wait
                    .as_ref()
                    .map(|m| m.eval(&ctx))
                    .transpose()
                    .map_err(bad)?
                    .flatten();
                let capped = |wait: f64| match max {
                    Some(max) if wait >= max => Err(too_long(wait, max)),
                    _ => Ok(Some(wait)),
                };
                match (wait_until.filter(|w| *w != 0.0), min_wait) {
                    (None, Some(min)) => capped(min),
                    (None, None) => Ok(None),
                    (Some(until), Some(min)) => capped((until - now).max(min)),
                    (Some(until), None) if until - now < 0.0 => Ok(None),
                    (Some(until), None) => capped(until - now),
                }
            }
            BackoffStrategy::WaitTimeFromResponse {
                wait_time,
                max_wait,
            } => {
                let empty = Value::Object(serde_json::Map::new());
                let (body, headers) = match view {
                    Some(view) => (view.parsed().unwrap_or(&empty), view.headers()),
                    None => (&empty, &empty),
                };
                let ctx = ctx.with("response", body).with("headers", headers);
                let rendered = match wait_time.render(&ctx) {
                    Ok(Value::String(text)) if text == wait_time.source() => None,
                    Ok(value) => Some(value),
                    Err(_) => None,
                };
                let Some(rendered) = rendered else {
                    tracing::warn!(
                        "WaitTimeFromResponse: `wait_time_in_seconds` could not be evaluated on this response; deferring to the next backoff strategy."
                    );
                    return Ok(None);
                };
                let wait = match python_float(&rendered) {
                    Ok(Some(wait)) => wait,
                    Ok(None) => return Ok(None),
                    Err(_) => {
                        tracing::warn!(
                            "WaitTimeFromResponse: `wait_time_in_seconds` resolved to a non-numeric value; deferring to the next backoff strategy."
                        );
                        return Ok(None);
                    }
                };
                if !wait.is_finite() || wait < 0.0 {
                    return Ok(None);
                }
                let max = max_wait
                    .as_ref()
                    .map(|m| m.eval(&ctx))
                    .transpose()
                    .map_err(bad)?
                    .flatten();
                if let Some(max) = max {
                    if wait != 0.0 && wait >= max {
                        return Err(too_long(wait, max));
                    }
                }
                Ok(Some(wait))
            }
        }
    }
}

fn too_long(wait: f64, max: f64) -> HttpError {
    HttpError::with_internal(
        FailureType::TransientError,
        "The rate limit wait time is longer than the connector is allowed to wait.",
        format!(
            "Rate limit wait time {}s is greater than or equal to the maximum of {}s this stream is allowed to wait. Stopping the stream...",
            py_float(wait),
            py_float(max)
        ),
    )
}

/// Python's `repr()` of a float (`2.0`, `0.1`).
pub(crate) fn py_float(value: f64) -> String {
    sluice_interp::python_str(&Value::from(value))
}

/// The header's value as a number: the part the regex matches at its start, if any.
fn header_number(
    response: &crate::HttpResponse,
    header: &Template,
    regex: Option<&Template>,
    ctx: &Context<'_>,
) -> Result<Option<f64>, String> {
    let name = header.render_string(ctx).map_err(|e| e.to_string())?;
    let Some(value) = response.header(&name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let mut text = value;
    if let Some(regex) = regex {
        let pattern = regex.render_string(ctx).map_err(|e| e.to_string())?;
        // Python's `re.match` only matches at the start of the text.
        let compiled = Regex::new(&format!("^(?:{pattern})"))
            .map_err(|e| format!("invalid regex {pattern:?}: {e}"))?;
        if let Some(found) = compiled.find(value) {
            text = found.as_str();
        }
    }
    Ok(text.trim().parse::<f64>().ok())
}

/// Python's `random.uniform(wait, wait + 2 * jitter)`.
fn with_jitter(wait: f64, jitter: Option<f64>) -> f64 {
    match jitter {
        Some(jitter) if jitter > 0.0 => wait + random_unit() * 2.0 * jitter,
        _ => wait,
    }
}

/// A number in [0, 1), random enough for spreading retries.
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpResponse;
    use serde_json::json;

    fn ctx() -> BackoffContext {
        BackoffContext {
            config: Arc::new(json!({"wait": "3"})),
            parameters: json!({}),
        }
    }

    fn response(headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status: 429,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn exponential_and_constant() {
        let r = response(&[]);
        let exp = BackoffStrategy::Exponential {
            factor: Seconds::Fixed(5.0),
            jitter: None,
        };
        assert_eq!(
            exp.backoff_time(Ok(&r), None, 1, &ctx()).unwrap(),
            Some(10.0)
        );
        assert_eq!(
            exp.backoff_time(Ok(&r), None, 3, &ctx()).unwrap(),
            Some(40.0)
        );
        let constant = BackoffStrategy::Constant {
            seconds: Seconds::Template(Template::new("{{ config['wait'] }}").unwrap()),
            jitter: None,
        };
        assert_eq!(
            constant.backoff_time(Ok(&r), None, 4, &ctx()).unwrap(),
            Some(3.0)
        );
        let jittered = BackoffStrategy::Constant {
            seconds: Seconds::Fixed(1.0),
            jitter: Some(0.5),
        };
        let wait = jittered
            .backoff_time(Ok(&r), None, 1, &ctx())
            .unwrap()
            .unwrap();
        assert!((1.0..=2.0).contains(&wait));
    }

    #[test]
    fn wait_time_from_header_with_regex_and_cap() {
        let header = |h: &str| Template::new(h).unwrap();
        let strategy = BackoffStrategy::WaitTimeFromHeader {
            header: header("X-Wait"),
            regex: Some(header("[0-9.]+")),
            max_wait: Some(Seconds::Fixed(60.0)),
        };
        let r = response(&[("x-wait", "1.5s")]);
        assert_eq!(
            strategy.backoff_time(Ok(&r), None, 1, &ctx()).unwrap(),
            Some(1.5)
        );
        assert_eq!(
            strategy
                .backoff_time(Ok(&response(&[])), None, 1, &ctx())
                .unwrap(),
            None
        );
        let err = strategy
            .backoff_time(Ok(&response(&[("X-Wait", "60")])), None, 1, &ctx())
            .unwrap_err();
        assert_eq!(err.failure_type, FailureType::TransientError);
        assert!(
            err.internal_message
                .contains("60.0s is greater than or equal to the maximum of 60.0s")
        );
    }

    #[test]
    fn wait_until_time_from_header() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let strategy = BackoffStrategy::WaitUntilTimeFromHeader {
            header: Template::new("reset").unwrap(),
            regex: None,
            min_wait: Some(Seconds::Fixed(2.0)),
            max_wait: None,
        };
        let soon = format!("{}", now as u64 + 30);
        let wait = strategy
            .backoff_time(Ok(&response(&[("reset", &soon)])), None, 1, &ctx())
            .unwrap()
            .unwrap();
        assert!((28.0..=31.0).contains(&wait), "{wait}");
        let past = format!("{}", now as u64 - 30);
        assert_eq!(
            strategy
                .backoff_time(Ok(&response(&[("reset", &past)])), None, 1, &ctx())
                .unwrap(),
            Some(2.0)
        );
        assert_eq!(
            strategy
                .backoff_time(Ok(&response(&[])), None, 1, &ctx())
                .unwrap(),
            Some(2.0)
        );
    }

    #[test]
    fn wait_time_from_response_reads_the_body() {
        let strategy = BackoffStrategy::WaitTimeFromResponse {
            wait_time: Template::new("{{ response['retry_in'] }}").unwrap(),
            max_wait: None,
        };
        let mut r = response(&[]);
        r.body = bytes::Bytes::from_static(br#"{"retry_in": 0.25}"#);
        let view = ResponseView::new(&r, "http://h/x");
        assert_eq!(
            strategy
                .backoff_time(Ok(&r), Some(&view), 1, &ctx())
                .unwrap(),
            Some(0.25)
        );
    }
}
