//! The runtime HttpRequester: builds each request from the manifest's templates and sends it,
//! classifying failures and retrying as the reference does.

use crate::auth::{Authenticator, InjectInto};
use crate::errors::{Action, ErrorHandler, HttpError, Resolution};
use crate::url_join::join_url;
use crate::{HttpRequest, HttpResponse, Method, Transport};
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpError, InterpolatedMapping, LiteralType, Template};
use std::sync::Arc;

/// Query parameter, header and body values: the reference keeps a rendered value only when it
/// literal-evaluates to one of these types, else the rendered text.
const REQUEST_VALUE_TYPES: &[LiteralType] = &[LiteralType::String, LiteralType::List];

/// `request_parameters` / `request_headers`: keys and string values are templates.
#[derive(Debug, Clone, Default)]
pub struct RequestMapping {
    mapping: Option<InterpolatedMapping>,
}

impl RequestMapping {
    /// Compiles a mapping from the manifest (`{key: value}`).
    pub fn new(mapping: &Map<String, Value>) -> Result<Self, InterpError> {
        if mapping.is_empty() {
            return Ok(Self::default());
        }
        Ok(Self { mapping: Some(InterpolatedMapping::new(mapping)?) })
    }

    /// Renders into name/value pairs, dropping `null` values as the reference does. A list
    /// value gives one pair per element, as Python's `requests` encodes it.
    pub fn render(&self, ctx: &Context<'_>, out: &mut Vec<(String, String)>) -> Result<(), String> {
        let Some(mapping) = &self.mapping else {
            return Ok(());
        };
        let rendered = mapping.eval(ctx, REQUEST_VALUE_TYPES).map_err(|e| e.to_string())?;
        for (key, value) in rendered {
            match value {
                Value::Null => {}
                Value::Array(items) => {
                    for item in items.iter().filter(|i| !i.is_null()) {
                        out.push((key.clone(), scalar_str(item)?));
                    }
                }
                other => out.push((key, scalar_str(&other)?)),
            }
        }
        Ok(())
    }

    /// Whether the mapping has no entries.
    pub fn is_empty(&self) -> bool {
        self.mapping.is_none()
    }
}

/// Python's `str()` of a scalar, as `requests` puts it into a query string or header.
fn scalar_str(value: &Value) -> Result<String, String> {
    match value {
        Value::Object(_) => Err(format!("a request value cannot be an object: {value}")),
        other => Ok(sluice_interp::python_str(other)),
    }
}

/// Where the requester's URL comes from.
#[derive(Debug, Clone)]
pub enum UrlSource {
    /// `url_base` joined with `path`.
    BaseAndPath { url_base: Template, path: Option<Template> },
    /// The newer single `url` (with an optional `path`).
    Url { url: Template, path: Option<Template> },
}

/// What other components (paginator, partition router, cursor) add to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestOptions {
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// A full URL that replaces the requester's (a paginator following a next-page link).
    pub url_override: Option<String>,
}

/// A manifest's HttpRequester, ready to build and send requests.
#[derive(Debug, Clone)]
pub struct Requester {
    /// The component's place in the manifest, for errors (`streams[0].retriever.requester`).
    pub origin: String,
    pub url: UrlSource,
    pub method: Method,
    pub params: RequestMapping,
    pub headers: RequestMapping,
    pub authenticator: Authenticator,
    pub error_handler: ErrorHandler,
    pub transport: Arc<dyn Transport>,
    /// The user's config, visible to templates as `config`.
    pub config: Arc<Value>,
    /// The component's `$parameters`, visible to templates as `parameters`.
    pub parameters: Value,
}

/// The per-request variables of a requester's templates.
#[derive(Debug, Clone, Copy)]
pub struct RequestVariables<'a> {
    pub stream_slice: &'a Value,
    pub next_page_token: Option<&'a Value>,
}

impl Requester {
    /// Builds the request for one page of one slice.
    pub fn build(
        &self,
        variables: RequestVariables<'_>,
        options: &RequestOptions,
    ) -> Result<HttpRequest, HttpError> {
        let mut ctx = Context::new()
            .config(&*self.config)
            .parameters(&self.parameters)
            .stream_slice(variables.stream_slice);
        if let Some(token) = variables.next_page_token {
            ctx = ctx.next_page_token(token);
        }
        let ctx = &ctx;
        let build_error = |what: &str, e: String| {
            HttpError::config(format!("{}: cannot render {what}: {e}", self.origin))
        };
        let url = match &options.url_override {
            Some(url) => url.clone(),
            None => self.render_url(ctx).map_err(|e| build_error("the URL", e))?,
        };
        let mut query = Vec::new();
        self.params.render(ctx, &mut query).map_err(|e| build_error("request_parameters", e))?;
        for injection in self.authenticator.injections_into(InjectInto::RequestParameter) {
            query.push((injection.name.clone(), injection.value.clone()));
        }
        merge_unique(&mut query, &options.query, &self.origin, "query parameter")?;

        let mut request = HttpRequest::new(self.method, url).with_query(&query);
        let mut headers = Vec::new();
        self.headers.render(ctx, &mut headers).map_err(|e| build_error("request_headers", e))?;
        for injection in self.authenticator.injections_into(InjectInto::Header) {
            headers.push((injection.name.clone(), injection.value.clone()));
        }
        merge_unique(&mut headers, &options.headers, &self.origin, "header")?;
        for (name, value) in headers {
            request.set_header(&name, value);
        }
        Ok(request)
    }

    fn render_url(&self, ctx: &Context<'_>) -> Result<String, String> {
        let render = |t: &Template| t.render_string(ctx).map_err(|e| e.to_string());
        Ok(match &self.url {
            UrlSource::BaseAndPath { url_base, path } => {
                let base = render(url_base)?;
                let path = path.as_ref().map(render).transpose()?.unwrap_or_default();
                join_url(&base, &path)
            }
            UrlSource::Url { url, path } => {
                let url = render(url)?;
                match path.as_ref().map(render).transpose()? {
                    Some(path) if !path.is_empty() => join_url(&url, &path),
                    _ => url,
                }
            }
        })
    }

    /// Sends a request, retrying as the error handler says; returns the response to read
    /// records from, or `None` when the handler says to ignore it.
    pub async fn send(&self, request: &HttpRequest) -> Result<Option<HttpResponse>, HttpError> {
        let mut attempt: u32 = 0;
        loop {
            let outcome = self.transport.send(request).await;
            let resolution = self.error_handler.resolve(&outcome);
            match resolution.action {
                Action::Success => return Ok(outcome.ok()),
                Action::Ignore => {
                    tracing::info!("ignoring response of {}: {}", self.masked(request), resolution.message);
                    return Ok(None);
                }
                Action::Fail => return Err(self.failure(request, &outcome, resolution)),
                Action::Retry | Action::RateLimited => {
                    if attempt >= self.error_handler.max_retries {
                        return Err(self.failure(request, &outcome, resolution.exhausted(attempt)));
                    }
                    let wait = self.error_handler.backoff(attempt, outcome.as_ref().ok());
                    tracing::info!(
                        "retrying {} in {:.1}s (attempt {} of {}): {}",
                        self.masked(request),
                        wait.as_secs_f64(),
                        attempt + 1,
                        self.error_handler.max_retries,
                        resolution.message
                    );
                    self.transport.wait(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    fn failure(
        &self,
        request: &HttpRequest,
        outcome: &Result<HttpResponse, crate::TransportError>,
        resolution: Resolution,
    ) -> HttpError {
        let detail = match outcome {
            Ok(response) => format!(
                "'{}' request to '{}' failed with status code '{}'. Response (body): '{}'",
                request.method,
                request.url,
                response.status,
                String::from_utf8_lossy(&response.body[..response.body.len().min(2048)])
            ),
            Err(error) => error.to_string(),
        };
        HttpError {
            failure_type: resolution.failure_type,
            message: resolution.message,
            internal_message: self.mask(&detail),
        }
    }

    fn masked(&self, request: &HttpRequest) -> String {
        self.mask(&request.to_string())
    }

    /// Replaces every secret the authenticator holds with `****`.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.authenticator.secrets() {
            if secret.len() >= 3 {
                text = text.replace(secret.as_str(), "****");
                let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                if encoded != *secret {
                    text = text.replace(&encoded, "****");
                }
            }
        }
        text
    }
}

/// Adds `extra` to `into`; the reference refuses a name given twice.
fn merge_unique(
    into: &mut Vec<(String, String)>,
    extra: &[(String, String)],
    origin: &str,
    what: &str,
) -> Result<(), HttpError> {
    for (name, value) in extra {
        if into.iter().any(|(n, _)| n == name) {
            return Err(HttpError::config(format!(
                "{origin}: the {what} '{name}' is set twice (by the requester and by another component)"
            )));
        }
        into.push((name.clone(), value.clone()));
    }
    Ok(())
}
