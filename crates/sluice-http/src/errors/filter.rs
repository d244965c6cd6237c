//! `HttpResponseFilter`: matches a response by status code, error text or predicate.

use super::{Action, Resolution, default_for_status};
use crate::HttpResponse;
use serde_json::{Map, Value};
use sluice_interp::{Context, InterpolatedBoolean, Template};
use sluice_protocol::FailureType;
use std::cell::OnceCell;
use std::sync::Arc;

/// A response seen by the filters, its body parsed at most once however many filters look.
#[derive(Debug)]
pub(crate) struct ResponseView<'a> {
    pub response: &'a HttpResponse,
    /// The request's URL without query, fragment or user info (templates see it as `request_url`).
    pub request_url: String,
    json: OnceCell<Value>,
    headers: OnceCell<Value>,
}

impl<'a> ResponseView<'a> {
    pub fn new(response: &'a HttpResponse, url: &str) -> Self {
        Self {
            response,
            request_url: strip_url(url),
            json: OnceCell::new(),
            headers: OnceCell::new(),
        }
    }

    /// The body as JSON, or `{}` when it is not JSON (as the reference's filters see it).
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            serde_json::from_slice(&self.response.body)
                .unwrap_or_else(|_| Value::Object(Map::new()))
        })
    }

    /// The body as JSON, if it is JSON.
    pub fn parsed(&self) -> Option<&Value> {
        let json = self.json();
        // `{}` also stands for "not JSON"; tell the two apart only when it matters.
        if json.as_object().is_some_and(Map::is_empty) && self.response.body.trim_ascii() != b"{}" {
            return None;
        }
        Some(json)
    }

    /// The headers as a map. Names appear as received and lower-cased, since the reference's
    /// header map is case-insensitive.
    pub fn headers(&self) -> &Value {
        self.headers.get_or_init(|| {
            let mut map = Map::new();
            for (name, value) in &self.response.headers {
                map.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
                map.insert(name.clone(), Value::String(value.clone()));
            }
            Value::Object(map)
        })
    }

    /// The error text the reference's `JsonErrorMessageParser` finds in the body.
    pub fn error_text(&self) -> Option<String> {
        match self.parsed() {
            Some(json) => error_in(json),
            None => Some(String::from_utf8_lossy(&self.response.body).into_owned()),
        }
    }
}

/// Looks for an error message under the usual keys, recursively.
pub(crate) fn error_in(value: &Value) -> Option<String> {
    const KEYS: [&str; 12] = [
        "message",
        "messages",
        "error",
        "errors",
        "failures",
        "failure",
        "detail",
        "err",
        "error_message",
        "msg",
        "reason",
        "status_message",
    ];
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => {
            let found: Vec<String> = items.iter().filter_map(error_in).collect();
            Some(found.join(", "))
        }
        Value::Object(map) => {
            // Python's `a or b or ...`: the first truthy value.
            let next = KEYS
                .iter()
                .filter_map(|k| map.get(*k))
                .find(|v| sluice_interp::is_truthy(v));
            next.and_then(error_in)
        }
        _ => None,
    }
}

fn strip_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

/// One `HttpResponseFilter` of a `DefaultErrorHandler`.
#[derive(Debug, Clone)]
pub struct ResponseFilter {
    /// A filter without action never matches.
    pub action: Option<Action>,
    /// Used only when the action is FAIL.
    pub failure_type: Option<FailureType>,
    pub http_codes: Vec<u16>,
    pub error_message_contains: String,
    pub predicate: Option<InterpolatedBoolean>,
    pub error_message: Option<Template>,
    pub(crate) config: Arc<Value>,
    pub(crate) parameters: Value,
}

impl ResponseFilter {
    /// The resolution when this filter matches the response (filters never match a failure
    /// without response).
    pub(crate) fn matches(&self, view: &ResponseView<'_>) -> Result<Option<Resolution>, String> {
        let Some(action) = self.action else {
            return Ok(None);
        };
        if !self.matches_response(view)? {
            return Ok(None);
        }
        let default = default_for_status(view.response.status);
        let mut message = self.render_message(view)?;
        if message.is_empty() {
            message = default
                .as_ref()
                .map(|d| d.message.clone())
                .unwrap_or_default();
        }
        let failure_type = match (self.failure_type, action, &default) {
            (Some(failure_type), Action::Fail, _) => failure_type,
            (_, _, Some(default)) => default.failure_type,
            _ => FailureType::SystemError,
        };
        Ok(Some(Resolution::new(action, failure_type, message)))
    }

    fn matches_response(&self, view: &ResponseView<'_>) -> Result<bool, String> {
        if self.http_codes.contains(&view.response.status) {
            return Ok(true);
        }
        if let Some(predicate) = &self.predicate {
            if !predicate.source().is_empty() {
                // The reference evaluates predicates without the config.
                let ctx = self.context(view).with("config", Value::Null);
                if predicate.eval(&ctx).map_err(|e| e.to_string())? {
                    return Ok(true);
                }
            }
        }
        if !self.error_message_contains.is_empty() {
            if let Some(text) = view.error_text() {
                if text.contains(&self.error_message_contains) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn render_message(&self, view: &ResponseView<'_>) -> Result<String, String> {
        let Some(template) = &self.error_message else {
            return Ok(String::new());
        };
        if template.is_constant() {
            return Ok(template.source().to_owned());
        }
        let ctx = self.context(view).config(&*self.config);
        template.render_string(&ctx).map_err(|e| e.to_string())
    }

    fn context<'v>(&'v self, view: &'v ResponseView<'_>) -> Context<'v> {
        Context::new()
            .parameters(&self.parameters)
            .with("response", view.json())
            .with("headers", view.headers())
            .with("request_url", Value::String(view.request_url.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_text_follows_the_reference_keys() {
        assert_eq!(
            error_in(&json!({"error": {"message": "bad"}})),
            Some("bad".into())
        );
        assert_eq!(
            error_in(&json!({"errors": ["a", {"msg": "b"}]})),
            Some("a, b".into())
        );
        assert_eq!(
            error_in(&json!({"message": "", "detail": "d"})),
            Some("d".into())
        );
        assert_eq!(error_in(&json!({"other": 1})), None);
    }

    #[test]
    fn request_url_loses_query_and_credentials() {
        assert_eq!(
            strip_url("https://u:p@h.com/a/b?key=s#f"),
            "https://h.com/a/b"
        );
    }
}
