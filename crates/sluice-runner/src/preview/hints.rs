//! What to look at when a stream failed or read nothing, from the requests it made and its
//! definition in the manifest.

use super::requests::{LoggedRequest, Outcome, Shape};
use serde_json::Value;

/// A stream's definition in the resolved manifest, with its path (`streams[2]`); `None` for a
/// stream `dynamic_streams` made.
#[derive(Debug, Clone)]
pub struct Definition<'m> {
    path: String,
    stream: &'m Value,
}

impl Definition<'_> {
    fn at(&self, pointer: &str) -> Option<&Value> {
        self.stream.pointer(pointer)
    }

    /// `streams[2].retriever.requester` for `/retriever/requester`.
    fn path_of(&self, pointer: &str) -> String {
        format!("{}{}", self.path, pointer.replace('/', "."))
    }
}

/// Finds the stream named `name` among the manifest's `streams`.
pub fn definition<'m>(resolved: &'m Value, name: &str) -> Option<Definition<'m>> {
    let streams = resolved.get("streams")?.as_array()?;
    let index = streams
        .iter()
        .position(|s| s.get("name").and_then(Value::as_str) == Some(name))?;
    Some(Definition {
        path: format!("streams[{index}]"),
        stream: &streams[index],
    })
}

/// Why a stream failed, and where to look.
pub fn failed(
    definition: Option<&Definition<'_>>,
    requests: &[LoggedRequest],
    secrets: &[String],
) -> String {
    let requester = "/retriever/requester";
    let Some(last) = requests.last() else {
        return "It failed before sending any request: the error above names the manifest path \
                or config key it comes from."
            .to_owned();
    };
    let url = last.shown_url(secrets);
    match &last.outcome {
        Outcome::Response {
            status: code @ (401 | 403),
            ..
        } => {
            let where_ = match definition {
                Some(d) if d.at(&format!("{requester}/authenticator")).is_some() => {
                    let kind = d
                        .at(&format!("{requester}/authenticator/type"))
                        .and_then(Value::as_str)
                        .unwrap_or("authenticator");
                    format!(
                        "the {kind} at {}",
                        d.path_of(&format!("{requester}/authenticator"))
                    )
                }
                Some(d) => format!(
                    "{}: it has no authenticator, does the API need one?",
                    d.path_of(requester)
                ),
                None => "the stream's authenticator".to_owned(),
            };
            format!(
                "The API refused the request (HTTP {code}): check the credentials in the config and {where_}."
            )
        }
        Outcome::Response { status: 404, .. } => format!(
            "Nothing at {} {url} (HTTP 404): check {}.",
            last.method(),
            url_parts(definition)
        ),
        Outcome::Response { status: 429, .. } => {
            "The API is rate limiting (HTTP 429): try again later, or lower the manifest's \
             `concurrency_level` / `api_budget`."
                .to_owned()
        }
        Outcome::Response { status, .. } if *status >= 500 => format!(
            "The server failed (HTTP {status}) on {} {url}: try again later, or see the error \
             handler{}.",
            last.method(),
            definition
                .map(|d| format!(" at {}", d.path_of(&format!("{requester}/error_handler"))))
                .unwrap_or_default()
        ),
        Outcome::Response { status, .. } if !(200..300).contains(status) => format!(
            "The API answered HTTP {status} to {} {url}: check {}.",
            last.method(),
            url_parts(definition)
        ),
        Outcome::Response { .. } => "The requests succeeded; the error above comes from \
                                     reading the response or the records (see the manifest \
                                     path it names)."
            .to_owned(),
        Outcome::Failed(_) => format!(
            "No response from {} {url}: check {} and that the server is reachable.",
            last.method(),
            url_parts(definition)
        ),
    }
}

/// Why a stream that ran without error read no record.
pub fn read_nothing(definition: Option<&Definition<'_>>, requests: &[LoggedRequest]) -> String {
    let Some(last) = requests.last() else {
        return no_request(definition);
    };
    let selector = "/retriever/record_selector";
    let field_path = definition
        .and_then(|d| d.at(&format!("{selector}/extractor/field_path")))
        .and_then(Value::as_array)
        .map(|path| {
            path.iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect::<Vec<_>>()
        });
    let extractor = match (definition, &field_path) {
        (Some(d), Some(path)) => format!(
            "The record selector's field_path is [{}] ({})",
            path.join(", "),
            d.path_of(&format!("{selector}/extractor"))
        ),
        (Some(d), None) => format!("See the record selector at {}", d.path_of(selector)),
        (None, _) => "See the stream's record selector".to_owned(),
    };
    let filter = definition
        .and_then(|d| d.at(&format!("{selector}/record_filter/condition")))
        .and_then(Value::as_str)
        .map(|condition| format!("; its record_filter `{condition}` may drop every record"))
        .unwrap_or_default();
    match &last.outcome {
        Outcome::Response { status, .. } if !(200..300).contains(status) => format!(
            "The last response was HTTP {status}, which the error handler let pass without \
             records: see the error handler at {}.",
            definition
                .map(|d| d.path_of("/retriever/requester/error_handler"))
                .unwrap_or_else(|| "the stream's requester".to_owned())
        ),
        Outcome::Response { shape, .. } => {
            let seen = match shape {
                Shape::Object(keys) => {
                    let first = field_path.as_ref().and_then(|p| p.first());
                    if first.is_some_and(|f| keys.contains(f)) {
                        format!(
                            "the last response has `{}` but no record under it: the API may \
                             have nothing for this query or date window",
                            first.map(String::as_str).unwrap_or_default()
                        )
                    } else if keys.is_empty() {
                        "the last response was an empty JSON object".to_owned()
                    } else {
                        format!(
                            "the last response's top-level keys were: {}",
                            keys.join(", ")
                        )
                    }
                }
                Shape::Array(0) => "the last response was an empty JSON array".to_owned(),
                Shape::Array(n) => format!(
                    "the last response was a JSON array of {n} items (an empty field_path \
                     selects them)"
                ),
                Shape::Other => "the last response was not a JSON object or array (check \
                                 the decoder)"
                    .to_owned(),
            };
            let sent = crate::text::count(requests.len(), "request");
            let verb = if requests.len() == 1 { "was" } else { "were" };
            format!(
                "{sent} {verb} answered but no record was selected. {extractor}{filter}; {seen}."
            )
        }
        Outcome::Failed(_) => "The last request got no response.".to_owned(),
    }
}

/// Why a stream sent no request at all.
fn no_request(definition: Option<&Definition<'_>>) -> String {
    let Some(d) = definition else {
        return "No request was sent: the stream produced no slice.".to_owned();
    };
    if let Some(router) = d.at("/retriever/partition_router") {
        let kind = match router {
            Value::Array(routers) => format!("{} partition routers", routers.len()),
            router => router
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("partition router")
                .to_owned(),
        };
        return format!(
            "No request was sent: the {kind} at {} produced no partition (did its parent \
             stream or list read nothing?).",
            d.path_of("/retriever/partition_router")
        );
    }
    if let Some(start) = d.at("/incremental_sync/start_datetime") {
        let start = match start {
            Value::String(text) => text.clone(),
            other => other
                .get("datetime")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_owned),
        };
        return format!(
            "No request was sent: the cursor at {} produced no window; is its start_datetime \
             `{start}` after its end (in the future)?",
            d.path_of("/incremental_sync")
        );
    }
    "No request was sent: the stream produced no slice.".to_owned()
}

/// Where the request's URL comes from.
fn url_parts(definition: Option<&Definition<'_>>) -> String {
    let Some(d) = definition else {
        return "the stream's url_base and path".to_owned();
    };
    let requester = "/retriever/requester";
    let text = |key: &str| {
        d.at(&format!("{requester}/{key}"))
            .and_then(Value::as_str)
            .map(|v| format!("{key} `{v}`"))
    };
    let parts: Vec<String> = ["url_base", "url", "path"]
        .iter()
        .filter_map(|key| text(key))
        .collect();
    let parts = if parts.is_empty() {
        "the URL".to_owned()
    } else {
        parts.join(" and ")
    };
    format!("{parts} at {}", d.path_of(requester))
}
