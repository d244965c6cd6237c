//! The runtime HttpRequester: builds each request from the manifest's templates and sends it,
//! classifying failures and retrying as the reference does.

use crate::auth::{Authenticator, InjectInto, Injection};
use crate::backoff::BackoffContext;
use crate::body::{self, JsonBodyInput, Rendered, RequestInput};
use crate::errors::filter::ResponseView;
use crate::errors::{Action, BuildError, ErrorHandler, HttpError, Resolution};
use crate::rate_limit::ApiBudget;
use crate::redirect;
use crate::retry::{Decision, RetryKind, RetryLoops};
use crate::transport::Timeouts;
use crate::url_join::{join_url, manifest_path};
use crate::{HttpRequest, HttpResponse, Method, Transport, TransportError};
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpError, Template};
use sluice_manifest::{ManifestPath, model};
use sluice_protocol::FailureType;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// `request_parameters` / `request_headers` as compiled templates (kept for callers that build
/// a requester by hand; [`Requester::from_model`] compiles them itself).
#[derive(Debug, Clone, Default)]
pub struct RequestMapping {
    input: RequestInput,
}

impl RequestMapping {
    /// Compiles a mapping from the manifest (`{key: value}`).
    pub fn new(mapping: &Map<String, Value>) -> Result<Self, InterpError> {
        Ok(Self {
            input: RequestInput::mapping(mapping)?,
        })
    }

    /// Whether the mapping has no entries.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Renders into name/value pairs, dropping `null` values; a list value gives one pair per
    /// element, as Python's `requests` encodes it.
    pub fn render(&self, ctx: &Context<'_>, out: &mut Vec<(String, String)>) -> Result<(), String> {
        match self.input.render(ctx, true)? {
            Rendered::Map(map) => {
                out.extend(body::pairs(&map, "parameter").map_err(|e| e.message)?);
                Ok(())
            }
            Rendered::Text(_) => Ok(()),
        }
    }
}

impl From<RequestMapping> for RequestInput {
    fn from(mapping: RequestMapping) -> Self {
        mapping.input
    }
}

/// Where the requester's URL comes from.
#[derive(Debug, Clone)]
pub enum UrlSource {
    /// `url_base` joined with `path`.
    BaseAndPath {
        url_base: Template,
        path: Option<Template>,
    },
    /// The newer single `url` (with an optional `path`).
    Url {
        url: Template,
        path: Option<Template>,
    },
}

/// What other components (paginator, partition router, cursor) add to one request. Each part
/// is merged with the requester's and the authenticator's as the reference merges them: a name
/// given twice is an error, except in JSON bodies, where objects merge and equal values may repeat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestOptions {
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Form fields (`inject_into: body_data`).
    pub body_data: Map<String, Value>,
    /// JSON body fields (`inject_into: body_json`), nested by `field_path`.
    pub body_json: Map<String, Value>,
    /// A full URL that replaces the requester's (a paginator following a next-page link).
    pub url_override: Option<String>,
    /// A path (or full URL) that replaces the requester's `path`, joined to its base as given
    /// (a paginator's `RequestPath`).
    pub path_override: Option<String>,
}

/// The request body templates of a requester.
#[derive(Debug, Clone, Default)]
pub struct RequestBody {
    /// `request_body_data` (or a typed form / plain-text body).
    pub data: RequestInput,
    /// `request_body_json` (or a typed JSON object / GraphQL body).
    pub json: JsonBodyInput,
}

/// The backoff, in seconds, before retrying a rate-limited request with another token.
const TOKEN_ROTATION_BACKOFF: f64 = 0.1;

/// Called each time a response says the API's rate limit was hit (the reference then prints a
/// RUNNING stream status with reason RATE_LIMITED).
#[derive(Clone)]
pub struct RateLimitListener(pub Arc<dyn Fn() + Send + Sync>);

impl fmt::Debug for RateLimitListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimitListener")
    }
}

/// A manifest's HttpRequester, ready to build and send requests.
#[derive(Debug, Clone)]
pub struct Requester {
    /// The component's place in the manifest, for errors (`streams[0].retriever.requester`).
    pub origin: String,
    pub url: UrlSource,
    pub method: Method,
    pub params: RequestInput,
    pub headers: RequestInput,
    pub body: RequestBody,
    pub authenticator: Authenticator,
    pub error_handler: ErrorHandler,
    pub transport: Arc<dyn Transport>,
    /// The source's call budget, shared by all its requesters.
    pub budget: Option<ApiBudget>,
    /// `connect_timeout_in_seconds` / `read_timeout_in_seconds`.
    pub timeouts: Option<Timeouts>,
    /// Values to mask in errors and logs besides the authenticator's (the config's
    /// `airbyte_secret` fields).
    pub config_secrets: Arc<Vec<String>>,
    pub on_rate_limited: Option<RateLimitListener>,
    /// The user's config, visible to templates as `config`.
    pub config: Arc<Value>,
    /// The component's `$parameters`, visible to templates as `parameters`.
    pub parameters: Value,
    /// The longest wait before a retry: a server asking for more fails the request at once
    /// (`--max-wait`), so a sync never sleeps for a year.
    pub max_wait: Option<Duration>,
    /// The `request_parameters` key holding a `QueryProperties`: each request sets it to the
    /// properties of its chunk (`stream_slice.extra_fields.query_properties`) joined by commas.
    pub query_properties_key: Option<String>,
}

/// The per-request variables of a requester's templates.
#[derive(Debug, Clone, Copy)]
pub struct RequestVariables<'a> {
    pub stream_slice: &'a Value,
    pub next_page_token: Option<&'a Value>,
    /// Variables templates see by name beside `stream_slice`: a slice's extra fields, which
    /// the reference spreads into every requester template (an async job's
    /// `creation_response`, `polling_response` and `download_target`).
    pub extra: Option<&'a Map<String, Value>>,
}

/// The value of the query parameter holding a `QueryProperties`: the chunk's properties, which
/// the retriever puts in `stream_slice.extra_fields.query_properties`, joined by commas (the
/// reference's join, whatever the API's own delimiter).
fn query_properties_value(stream_slice: &Value) -> Result<String, HttpError> {
    let properties = stream_slice
        .get("extra_fields")
        .and_then(|extra| extra.get("query_properties"))
        .filter(|properties| !properties.is_null());
    let Some(properties) = properties else {
        return Err(HttpError::new(
            FailureType::SystemError,
            "QueryProperties component is defined but stream_partition does not contain query_properties",
        ));
    };
    let Some(properties) = properties.as_array() else {
        return Err(HttpError::new(
            FailureType::SystemError,
            "QueryProperties component is defined but stream_slice.extra_fields.query_properties is not a List",
        ));
    };
    let mut joined = String::new();
    for (i, property) in properties.iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        match property {
            Value::String(text) => joined.push_str(text),
            other => {
                return Err(HttpError::new(
                    FailureType::SystemError,
                    format!("sequence item {i}: expected str instance, found {other}"),
                ));
            }
        }
    }
    Ok(joined)
}

impl Requester {
    /// Builds a requester from the manifest's `HttpRequester`. The engine passes the
    /// authenticator it built from `model.authenticator`; the budget, config secrets and
    /// rate-limit listener are set on the result.
    pub fn from_model(
        model: &model::HttpRequester,
        config: &Arc<Value>,
        transport: Arc<dyn Transport>,
        authenticator: Authenticator,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let compile = |source: &str, field: &str| {
            Template::new(source).map_err(|e| BuildError::at(&path.key(field), e))
        };
        let path_template = model
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| compile(p, "path"))
            .transpose()?;
        let url = match (
            model.url.as_deref().filter(|u| !u.is_empty()),
            model.url_base.as_deref(),
        ) {
            (Some(url), _) => UrlSource::Url {
                url: compile(url, "url")?,
                path: path_template,
            },
            (None, Some(base)) => UrlSource::BaseAndPath {
                url_base: compile(base, "url_base")?,
                path: path_template,
            },
            (None, None) => {
                return Err(BuildError::at(
                    path,
                    "missing required field 'url' (or 'url_base')",
                ));
            }
        };
        let method = match model.http_method {
            None | Some(model::HttpMethod::Get) => Method::Get,
            Some(model::HttpMethod::Post) => Method::Post,
        };
        let flat = |value: &Option<model::StringOrStringMap>,
                    field: &str|
         -> Result<RequestInput, BuildError> {
            let at = path.key(field);
            match value {
                None => Ok(RequestInput::Empty),
                Some(model::StringOrStringMap::Map(map)) => {
                    let plain: Map<String, Value> = map
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    RequestInput::mapping(&plain).map_err(|e| BuildError::at(&at, e))
                }
                Some(model::StringOrStringMap::String(text)) => {
                    RequestInput::template(text).map_err(|e| BuildError::at(&at, e))
                }
            }
        };
        let mut query_properties_keys = Vec::new();
        let params = match &model.request_parameters {
            None => RequestInput::Empty,
            Some(model::RequestParameters::Map(map)) => {
                let mut plain = Map::new();
                for (key, value) in map {
                    match value {
                        model::RequestParameterValue::String(s) => {
                            plain.insert(key.clone(), Value::String(s.clone()));
                        }
                        // Filled per request from the chunk being read (the engine reads the
                        // component itself, see `query_properties_key`).
                        model::RequestParameterValue::QueryProperties(_) => {
                            query_properties_keys.push(key.clone());
                        }
                    }
                }
                if query_properties_keys.len() > 1 {
                    return Err(BuildError::at(
                        &path.key("request_parameters"),
                        format!(
                            "request_parameters only supports defining one QueryProperties field, but found {} usages",
                            query_properties_keys.len()
                        ),
                    ));
                }
                RequestInput::mapping(&plain)
                    .map_err(|e| BuildError::at(&path.key("request_parameters"), e))?
            }
            Some(model::RequestParameters::String(text)) => RequestInput::template(text)
                .map_err(|e| BuildError::at(&path.key("request_parameters"), e))?,
        };
        let headers = flat(&model.request_headers, "request_headers")?;
        let mut data = flat(&model.request_body_data, "request_body_data")?;
        let nested = |value: &Value, at: &ManifestPath| {
            sluice_interp::InterpolatedNestedMapping::new(value)
                .map(JsonBodyInput::Nested)
                .map_err(|e| BuildError::at(at, e))
        };
        let mut json = match &model.request_body_json {
            None => JsonBodyInput::Empty,
            Some(model::StringOrObject::Map(map)) if map.is_empty() => JsonBodyInput::Empty,
            Some(model::StringOrObject::Map(map)) => {
                nested(&Value::Object(map.clone()), &path.key("request_body_json"))?
            }
            Some(model::StringOrObject::String(text)) if text.is_empty() => JsonBodyInput::Empty,
            Some(model::StringOrObject::String(text)) => JsonBodyInput::Template(
                Template::with_default(text, "")
                    .map_err(|e| BuildError::at(&path.key("request_body_json"), e))?,
            ),
        };
        // The typed `request_body` replaces the untyped fields, as in the reference.
        if let Some(typed) = &model.request_body {
            let at = path.key("request_body").key("value");
            match typed {
                model::RequestBody::RequestBodyUrlEncodedForm(form) => {
                    let plain: Map<String, Value> = form
                        .value
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    data = RequestInput::mapping(&plain).map_err(|e| BuildError::at(&at, e))?;
                }
                model::RequestBody::RequestBodyPlainText(text) => {
                    data =
                        RequestInput::template(&text.value).map_err(|e| BuildError::at(&at, e))?;
                }
                model::RequestBody::RequestBodyJsonObject(object) => {
                    json = if object.value.is_empty() {
                        JsonBodyInput::Empty
                    } else {
                        nested(&Value::Object(object.value.clone()), &at)?
                    };
                }
                model::RequestBody::RequestBodyGraphQL(graphql) => {
                    let mut query = Map::new();
                    query.insert("query".into(), Value::String(graphql.value.query.clone()));
                    json = nested(&Value::Object(query), &at)?;
                }
            }
        }
        if !data.is_empty() && !json.is_empty() {
            return Err(BuildError::at(
                path,
                "RequestOptionsProvider should only contain either 'request_body_data' or 'request_body_json' not both",
            ));
        }
        let error_handler = match &model.error_handler {
            Some(handler) => ErrorHandler::from_model(handler, config, &path.key("error_handler"))?,
            None => ErrorHandler::default(),
        };
        let seconds = |value: Option<f64>| {
            value
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
        };
        let timeouts = (model.connect_timeout_in_seconds.is_some()
            || model.read_timeout_in_seconds.is_some())
        .then(|| Timeouts {
            connect: seconds(model.connect_timeout_in_seconds),
            read: seconds(model.read_timeout_in_seconds),
        });
        Ok(Self {
            origin: path.to_string(),
            url,
            method,
            params,
            headers,
            body: RequestBody { data, json },
            authenticator,
            error_handler,
            transport,
            budget: None,
            timeouts,
            config_secrets: Arc::new(Vec::new()),
            on_rate_limited: None,
            config: Arc::clone(config),
            parameters,
            max_wait: None,
            query_properties_key: query_properties_keys.pop(),
        })
    }

    /// Builds the request for one page of one slice.
    pub async fn build(
        &self,
        variables: RequestVariables<'_>,
        options: &RequestOptions,
    ) -> Result<HttpRequest, HttpError> {
        let injections = self
            .authenticator
            .injections()
            .await
            .map_err(|e| e.masked(|t| self.mask(t)))?;
        let mut request = self.assemble(variables, options, &injections)?;
        self.authenticator
            .sign(&mut request, &|t| self.mask(t))
            .await
            .map_err(|e| e.masked(|t| self.mask(t)))?;
        Ok(request)
    }

    /// Builds the request from the requester's templates, the authenticator's injections and
    /// the other components' options, merged and encoded as the reference does.
    pub fn assemble(
        &self,
        variables: RequestVariables<'_>,
        options: &RequestOptions,
        injections: &[Injection],
    ) -> Result<HttpRequest, HttpError> {
        let mut ctx = Context::new()
            .config(&*self.config)
            .parameters(&self.parameters)
            .stream_slice(variables.stream_slice);
        if let Some(token) = variables.next_page_token {
            ctx = ctx.next_page_token(token);
        }
        // As the reference's interpolation context: the slice's extra fields are also
        // variables of their own (`{{ download_target }}`), over the names above.
        if let Some(Value::Object(extra)) = variables.stream_slice.get("extra_fields") {
            for (name, value) in extra {
                ctx = ctx.with(name, value);
            }
        }
        for (name, value) in variables.extra.into_iter().flatten() {
            ctx = ctx.with(name.as_str(), value);
        }
        let ctx = &ctx;
        let build_error = |what: &str, e: String| {
            HttpError::config(format!("{}: cannot render {what}: {e}", self.origin))
                .masked(|t| self.mask(t))
        };
        let url = match &options.url_override {
            Some(url) => url.clone(),
            None => self
                .render_url(ctx, options.path_override.as_deref())
                .map_err(|e| build_error("the URL", e))?,
        };
        let injected = |into: InjectInto| -> Map<String, Value> {
            let mut map = Map::new();
            for injection in injections.iter().filter(|i| i.into == into) {
                body::insert_nested(
                    &mut map,
                    &injection.parents,
                    &injection.name,
                    Value::String(injection.value.clone()),
                );
            }
            map
        };
        let extra = |pairs: &[(String, String)]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        };

        // Query parameters: a template that renders to text gives no parameters.
        let mut own_params = match self
            .params
            .render(ctx, true)
            .map_err(|e| build_error("request_parameters", e))?
        {
            Rendered::Map(map) => map,
            Rendered::Text(_) => Map::new(),
        };
        if let Some(key) = &self.query_properties_key {
            own_params.insert(
                key.clone(),
                Value::String(query_properties_value(variables.stream_slice)?),
            );
        }
        let params = match body::combine_flat(vec![
            Rendered::Map(own_params),
            Rendered::Map(injected(InjectInto::RequestParameter)),
            Rendered::Map(extra(&options.query)),
        ])? {
            Rendered::Map(map) => map,
            Rendered::Text(_) => Map::new(),
        };
        let query = body::pairs(&params, "parameter")?;
        let url = append_query(&url, &query);

        let headers = match body::combine_flat(vec![
            self.headers
                .render(ctx, false)
                .map_err(|e| build_error("request_headers", e))?,
            Rendered::Map(injected(InjectInto::Header)),
            Rendered::Map(extra(&options.headers)),
        ])? {
            Rendered::Map(map) => map,
            Rendered::Text(_) => {
                return Err(HttpError::new(
                    FailureType::SystemError,
                    "Request headers cannot be a string",
                ));
            }
        };

        let mut json = self
            .body
            .json
            .render(ctx)
            .map_err(|e| build_error("request_body_json", e))?;
        body::merge_into(&mut json, injected(InjectInto::BodyJson), true, "")?;
        body::merge_into(&mut json, options.body_json.clone(), true, "")?;
        let data = body::combine_flat(vec![
            self.body
                .data
                .render(ctx, true)
                .map_err(|e| build_error("request_body_data", e))?,
            Rendered::Map(injected(InjectInto::BodyData)),
            Rendered::Map(extra_values(&options.body_data)),
        ])?;

        let mut request = HttpRequest::new(self.method, url);
        for (name, value) in &headers {
            request.set_header(name, sluice_interp::python_str(value));
        }
        let data_is_empty = matches!(&data, Rendered::Map(m) if m.is_empty())
            || matches!(&data, Rendered::Text(t) if t.is_empty());
        if !json.is_empty() && !data_is_empty {
            return Err(HttpError::new(
                FailureType::SystemError,
                "At the same time only one of the 'request_body_data' and 'request_body_json' functions can return data",
            ));
        }
        if !json.is_empty() {
            request =
                request.with_body("application/json", body::python_json(&Value::Object(json)));
        } else {
            match data {
                Rendered::Text(text) if !text.is_empty() => request.body = Some(text.into()),
                Rendered::Map(map) if !map.is_empty() => {
                    let pairs = body::pairs(&map, "body field")?;
                    request = request
                        .with_body("application/x-www-form-urlencoded", body::urlencode(&pairs));
                }
                _ => {}
            }
        }
        request.timeouts = self.timeouts;
        Ok(request)
    }

    fn render_url(&self, ctx: &Context<'_>, path_override: Option<&str>) -> Result<String, String> {
        let render = |t: &Template| t.render_string(ctx).map_err(|e| e.to_string());
        let (base, path) = match &self.url {
            UrlSource::BaseAndPath { url_base, path } => (url_base, path),
            UrlSource::Url { url, path } => (url, path),
        };
        let base = render(base)?;
        if let Some(next) = path_override.filter(|p| !p.is_empty()) {
            return Ok(join_url(&base, next));
        }
        let path = path.as_ref().map(render).transpose()?.unwrap_or_default();
        Ok(join_url(&base, manifest_path(&path)))
    }

    /// Sends `request` within the rate budget, following redirects as the reference's client
    /// does (see [`redirect`]); gives the last outcome and, after a redirect, the URL it came from.
    async fn send_following_redirects(
        &self,
        request: &HttpRequest,
    ) -> Result<(Result<HttpResponse, TransportError>, Option<String>), HttpError> {
        let mut redirected: Option<HttpRequest> = None;
        for _ in 0..=redirect::MAX_REDIRECTS {
            let current = redirected.as_ref().unwrap_or(request);
            if let Some(budget) = &self.budget {
                budget
                    .acquire(current, &*self.transport)
                    .await
                    .map_err(|e| e.masked(|t| self.mask(t)))?;
            }
            crate::observe::notify(|o| o.request_sent());
            let outcome = self.transport.send(current).await;
            if let (Some(budget), Ok(response)) = (&self.budget, &outcome) {
                budget.update_from_response(current, response);
            }
            let next = match &outcome {
                Ok(response) => redirect::next_request(current, response),
                Err(_) => None,
            };
            match next {
                Some(next) => redirected = Some(next),
                None => return Ok((outcome, redirected.map(|r| r.url))),
            }
        }
        let last = redirected.as_ref().unwrap_or(request);
        let error = TransportError::TooManyRedirects {
            request: last.to_string(),
        };
        Ok((Err(error), redirected.map(|r| r.url)))
    }

    /// Sends a request, retrying as the error handler says; returns the response to read
    /// records from, or `None` when the handler says to ignore it.
    ///
    /// Retries follow the reference: a wait from the backoff strategies is slept plus one
    /// second; without one, rate limits and other retryable failures wait 1, 2, 4... seconds;
    /// each kind counts its own retries against `max_retries`, and `max_time` bounds them.
    pub async fn send(&self, request: &HttpRequest) -> Result<Option<HttpResponse>, HttpError> {
        let mut request = request.clone();
        let mut loops = RetryLoops::new(
            self.error_handler.max_retries(),
            self.error_handler.max_time(),
        );
        let strategies = self.error_handler.backoff_strategies();
        let backoff_context = BackoffContext {
            config: Arc::clone(&self.config),
            parameters: self.parameters.clone(),
        };
        let mut attempts: u32 = 0;
        let mut refreshed_token = false;
        loop {
            attempts += 1;
            if attempts > 1 && self.authenticator.is_dynamic() {
                // As the reference re-applies its auth on every retry: a token may have changed.
                let injections = self
                    .authenticator
                    .injections()
                    .await
                    .map_err(|e| e.masked(|t| self.mask(t)))?;
                for injection in injections.iter().filter(|i| i.into == InjectInto::Header) {
                    request.set_header(&injection.name, injection.value.clone());
                }
                self.authenticator
                    .sign(&mut request, &|t| self.mask(t))
                    .await
                    .map_err(|e| e.masked(|t| self.mask(t)))?;
            }
            let (outcome, redirected_url) = self.send_following_redirects(&request).await?;
            if let Ok(response) = &outcome {
                self.authenticator.update_from_response(&request, response);
            }
            // As `requests`' `response.url`: where the response came from.
            let response_url = redirected_url.as_deref().unwrap_or(&request.url);
            let view = outcome
                .as_ref()
                .ok()
                .map(|r| ResponseView::new(r, response_url));
            let resolution =
                self.error_handler
                    .resolve_view(outcome.as_ref(), view.as_ref(), response_url);
            match resolution.action {
                Action::Success => return Ok(outcome.ok()),
                Action::Ignore => {
                    let text = if resolution.message.is_empty() {
                        match &outcome {
                            Ok(r) => format!(
                                "Ignoring response for '{}' request to '{}' with response code '{}'",
                                request.method, request.url, r.status
                            ),
                            Err(e) => format!(
                                "Ignoring response for '{}' request to '{}' with error '{e}'",
                                request.method, request.url
                            ),
                        }
                    } else {
                        resolution.message.clone()
                    };
                    tracing::info!("{}", self.mask(&text));
                    return Ok(None);
                }
                Action::Fail => {
                    return Err(self.failure(&request, &outcome, view.as_ref(), resolution));
                }
                Action::ResetPagination | Action::ReducePageSize | Action::SplitRequestWindow => {
                    let mut error = HttpError::new(resolution.failure_type, resolution.message);
                    error.action = resolution.action;
                    return Err(error.masked(|t| self.mask(t)));
                }
                Action::Retry | Action::RateLimited | Action::RefreshTokenThenRetry => {}
            }
            if resolution.action == Action::RateLimited {
                if let Some(listener) = &self.on_rate_limited {
                    (listener.0)();
                }
            }
            if resolution.action == Action::RefreshTokenThenRetry {
                if refreshed_token {
                    let status = status_text(&outcome);
                    let internal = format!(
                        "'{}' request to '{}' was rejected with {status} again after the OAuth token was refreshed; not refreshing again.",
                        request.method, request.url
                    );
                    tracing::error!("{}", self.mask(&internal));
                    return Err(HttpError::with_internal(
                        FailureType::ConfigError,
                        "Refreshed OAuth access token is rejected by the API.",
                        internal,
                    )
                    .masked(|t| self.mask(t)));
                }
                match self.authenticator.refresh_after_rejection(&request).await {
                    Ok(true) => {
                        refreshed_token = true;
                        tracing::info!(
                            "Refreshed OAuth token due to REFRESH_TOKEN_THEN_RETRY response action"
                        );
                    }
                    Ok(false) => tracing::warn!(
                        "REFRESH_TOKEN_THEN_RETRY action received but authenticator does not support token refresh. Proceeding with normal retry."
                    ),
                    Err(error) if error.failure_type == FailureType::ConfigError => {
                        return Err(error.masked(|t| self.mask(t)));
                    }
                    Err(error) => tracing::warn!(
                        "Failed to refresh OAuth token: {}. Proceeding with retry using existing token.",
                        self.mask(&error.message)
                    ),
                }
            }

            let mut user_wait = None;
            // As the reference's client: when the token that was rate limited is spent and
            // another has calls left, the retry goes out at once with that one, without
            // asking the backoff strategies.
            if resolution.action == Action::RateLimited
                && self.authenticator.has_alternative_token(&request)
            {
                tracing::info!(
                    "Rate limited on the current credential; retrying in {TOKEN_ROTATION_BACKOFF}s with another one instead of waiting for the rate limit to reset. Any configured backoff, including a wait cap, is not evaluated for this retry."
                );
                user_wait = Some(TOKEN_ROTATION_BACKOFF);
            }
            for strategy in strategies.iter().filter(|_| user_wait.is_none()) {
                let wait = strategy
                    .backoff_time(outcome.as_ref(), view.as_ref(), attempts, &backoff_context)
                    .map_err(|e| e.masked(|t| self.mask(t)))?;
                if let Some(wait) = wait.filter(|w| *w != 0.0) {
                    user_wait = Some(wait.max(0.0));
                    break;
                }
            }
            let kind = match user_wait {
                Some(wait) => RetryKind::UserDefined(wait),
                None if resolution.action == Action::RateLimited => RetryKind::RateLimit,
                None => RetryKind::Default,
            };
            let message = if resolution.message.is_empty() {
                format!(
                    "Request to {} failed with failure type {}, response action {}.",
                    request.url,
                    python_failure_type(resolution.failure_type),
                    resolution.action.python_name()
                )
            } else {
                resolution.message.clone()
            };
            match loops.on_failure(kind) {
                Decision::Wait {
                    wait,
                    tries,
                    logged_wait,
                } => {
                    match (kind, &outcome) {
                        (RetryKind::UserDefined(_), Ok(response)) => tracing::info!(
                            "UserDefinedBackoffException: Rate limit exceeded (HTTP {}). Retrying in {logged_wait} seconds.",
                            response.status
                        ),
                        (RetryKind::UserDefined(_), Err(_)) => {
                            tracing::info!(
                                "UserDefinedBackoffException: Rate limit exceeded. Retrying in {logged_wait} seconds."
                            )
                        }
                        _ => {
                            let message = self.mask(&message);
                            tracing::info!(
                                "Backing off _send(...) for {:.1}s ({}: {message})",
                                wait.as_secs_f64(),
                                kind.exception_name()
                            );
                            tracing::info!(
                                "Caught retryable error '{message}' after {tries} tries. Waiting {logged_wait} seconds then retrying..."
                            );
                        }
                    }
                    if let Some(max_wait) = self.max_wait.filter(|max| wait > *max) {
                        let url = self.mask(&request.url);
                        return Err(HttpError::with_internal(
                            FailureType::TransientError,
                            format!(
                                "The API asked to wait {:.0} s before retrying {} {url}, longer than the longest wait allowed ({} s, --max-wait).",
                                wait.as_secs_f64(),
                                request.method,
                                max_wait.as_secs()
                            ),
                            format!("Refused to wait {:.0} s: {message}", wait.as_secs_f64()),
                        )
                        .masked(|t| self.mask(t)));
                    }
                    if wait > Duration::from_secs(60) {
                        tracing::warn!(
                            "Waiting {:.0} s before retrying {} {}",
                            wait.as_secs_f64(),
                            request.method,
                            self.mask(&request.url)
                        );
                    }
                    let rate_limited = resolution.action == Action::RateLimited;
                    crate::observe::notify(|o| o.retrying(wait, rate_limited));
                    self.transport.wait(wait).await;
                    loops.retried(kind);
                }
                Decision::GiveUp { tries, elapsed } => {
                    match (kind, &outcome) {
                        (RetryKind::UserDefined(_), Ok(response)) => tracing::error!(
                            "Max retry limit reached after {elapsed:.1}s. Request: <PreparedRequest [{}]>, Response: <Response [{}]>",
                            request.method,
                            response.status
                        ),
                        (RetryKind::UserDefined(_), Err(_)) => tracing::error!(
                            "Max retry limit reached after {elapsed:.1}s. Request: <PreparedRequest [{}]>, Response: None",
                            request.method
                        ),
                        _ => tracing::error!(
                            "Giving up _send(...) after {tries} tries ({}: {})",
                            kind.exception_name(),
                            self.mask(&message)
                        ),
                    }
                    tracing::error!("Retries exhausted with backoff exception.");
                    let rate_limited = matches!(&outcome, Ok(r) if r.status == 429);
                    let error = if rate_limited {
                        HttpError::with_internal(
                            FailureType::TransientError,
                            "API rate limit exceeded.",
                            format!("Rate limit retry budget exhausted. Last exception: {message}"),
                        )
                    } else {
                        HttpError::with_internal(
                            resolution.failure_type,
                            format!(
                                "Exhausted available request attempts. Please see logs for more details. Exception: {message}"
                            ),
                            format!("Exhausted available request attempts. Exception: {message}"),
                        )
                    };
                    return Err(error.masked(|t| self.mask(t)));
                }
            }
        }
    }

    /// The error for a FAIL resolution: the handler's message for the user, the request and
    /// response (secrets masked) for the logs.
    fn failure(
        &self,
        request: &HttpRequest,
        outcome: &Result<HttpResponse, TransportError>,
        view: Option<&ResponseView<'_>>,
        resolution: Resolution,
    ) -> HttpError {
        let detail = match (outcome, view) {
            (Ok(response), Some(view)) => {
                let parsed_error = view.error_text().unwrap_or_else(|| "None".into());
                let body = match view.parsed() {
                    Some(json) => sluice_interp::python_str(json),
                    None => String::from_utf8_lossy(&response.body).into_owned(),
                };
                let headers: Map<String, Value> = response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect();
                let request_body = match &request.body {
                    None => "None".to_owned(),
                    Some(bytes) if request.header("Content-Type") == Some("application/json") => {
                        format!("b'{}'", String::from_utf8_lossy(bytes))
                    }
                    Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                };
                format!(
                    "'{}' request to '{}' failed with status code '{}' and error message: '{parsed_error}'. Request (body): '{request_body}'. Response (body): '{body}'. Response (headers): '{}'.",
                    request.method,
                    request.url,
                    response.status,
                    sluice_interp::python_str(&Value::Object(headers)),
                )
            }
            (Err(error), _) => {
                format!(
                    "'{}' request to '{}' failed with exception: '{error}'",
                    request.method, request.url
                )
            }
            (Ok(_), None) => format!("'{}' request to '{}' failed", request.method, request.url),
        };
        let detail = self.mask(&detail);
        tracing::error!("{detail}");
        let message = if resolution.message.is_empty() {
            detail.clone()
        } else {
            resolution.message
        };
        HttpError::with_internal(resolution.failure_type, message, detail).masked(|t| self.mask(t))
    }

    /// Replaces every secret (the authenticator's and the config's) with `****`, also in its
    /// URL-encoded and base64 forms.
    pub fn mask(&self, text: &str) -> String {
        let secrets = self.authenticator.secrets();
        crate::secrets::mask(
            text,
            secrets
                .iter()
                .chain(self.config_secrets.iter())
                .map(String::as_str),
        )
    }
}

fn extra_values(map: &Map<String, Value>) -> Map<String, Value> {
    map.clone()
}

fn status_text(outcome: &Result<HttpResponse, TransportError>) -> String {
    match outcome {
        Ok(response) => format!("status code '{}'", response.status),
        Err(error) => format!("exception '{error}'"),
    }
}

/// `FailureType.transient_error`, as the reference prints the enum.
fn python_failure_type(failure_type: FailureType) -> &'static str {
    match failure_type {
        FailureType::SystemError => "FailureType.system_error",
        FailureType::ConfigError => "FailureType.config_error",
        FailureType::TransientError => "FailureType.transient_error",
    }
}

/// Adds query pairs to a URL as `requests` does: pairs the URL already has with the same value
/// are not repeated, the rest go after its query, encoded like `urlencode`.
fn append_query(url: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let existing: Vec<(String, String)> = match base.split_once('?') {
        Some((_, query)) => form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        None => Vec::new(),
    };
    // The reference drops a parameter the URL already carries with the same (first) value.
    let duplicate = |name: &str, value: &str| {
        existing
            .iter()
            .find(|(k, _)| k == name)
            .is_some_and(|(_, v)| v == value)
    };
    let mut dropped: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let all_same = pairs.iter().filter(|(k, _)| k == name).count() == 1;
        if all_same && duplicate(name, value) {
            dropped.push(name);
        }
    }
    let kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !dropped.contains(&k.as_str()))
        .cloned()
        .collect();
    if kept.is_empty() {
        return url.to_owned();
    }
    let encoded = body::urlencode(&kept);
    let separator = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let mut out = format!("{base}{separator}{encoded}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::append_query;

    #[test]
    fn query_is_appended_without_repeating_the_url_s_own() {
        let q = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            append_query("https://h/p", &[q("a", "x y")]),
            "https://h/p?a=x+y"
        );
        assert_eq!(
            append_query("https://h/p?a=1", &[q("a", "1"), q("b", "2")]),
            "https://h/p?a=1&b=2"
        );
        assert_eq!(
            append_query("https://h/p?a=1", &[q("a", "2")]),
            "https://h/p?a=1&a=2"
        );
    }
}
