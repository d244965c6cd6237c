//! Targets over what comes back from an API: paginated responses and cassettes.

use serde_json::{Value, json};
use sluice_http::{Cassette, HttpRequest, Method, ReplayTransport};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use sluice_paginate::{PageInfo, Paginator, parse_link_header};
use std::sync::Arc;

use crate::inputs::{split_first, text};

/// How many pages a paginator is asked to go on for, each on the same response.
const PAGES: usize = 3;

/// How many of a cassette's recorded requests are sent to it again.
const REPLAYED: usize = 16;

pub(crate) fn paginator(data: &[u8]) {
    let [count, rest @ ..] = data else { return };
    let (paginator, rest) = split_first(rest);
    let (headers, body) = split_first(rest);
    let Ok(Value::Object(paginator)) = serde_json::from_slice::<Value>(paginator) else {
        return;
    };
    let Some(headers) = text(headers) else { return };
    let headers: Vec<(String, String)> = headers
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();

    let at = ManifestPath::root()
        .key("streams")
        .index(0)
        .key("retriever")
        .key("paginator");
    let Ok(model) = model::Paginator::from_node(&Value::Object(paginator), &at) else {
        return;
    };
    let config = Arc::new(json!({"page_size": 2, "start": "2024-01-01"}));
    let parameters = json!({"page_size": 5});
    let Ok(paginator) = Paginator::from_model(Some(&model), &config, &parameters, &at) else {
        return;
    };

    // The body as the default JsonDecoder gives it; its first list holds the records.
    let bodies = sluice_records::decode_json_bodies(body);
    let response = bodies.first().cloned().unwrap_or_else(|| json!({}));
    let records: Vec<Value> = match &response {
        Value::Object(map) => map
            .values()
            .find_map(|v| v.as_array().cloned())
            .unwrap_or_default(),
        _ => bodies.clone(),
    };
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("link") {
            let _ = parse_link_header(value);
        }
    }

    let slice = json!({"start_time": "2024-01-01", "end_time": "2024-01-31"});
    let _ = paginator.needs_response_body();
    let _ = paginator.page_size();
    let page_size_override = count.checked_sub(200).map(u64::from);
    let mut token = paginator.initial_token();
    for _ in 0..PAGES {
        let _ = paginator.request_options(token.as_ref());
        let _ = paginator.request_options_with_page_size(token.as_ref(), page_size_override);
        let page = PageInfo {
            response_body: Some(&response),
            headers: &headers,
            last_page_size: usize::from(*count),
            extracted_record_count: Some(records.len()),
            last_record: records.last(),
            current_token: token.as_ref(),
            stream_slice: &slice,
            page_size_override,
        };
        match paginator.next_page_token(&page) {
            Ok(Some(next)) => token = Some(next),
            Ok(None) | Err(_) => break,
        }
    }
}

pub(crate) fn cassette(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(cassette) = Cassette::from_json_str(text) else {
        return;
    };
    // What `--record` writes is what replay reads.
    let written = cassette.to_json_string();
    match Cassette::from_json_str(&written) {
        Ok(again) => assert_eq!(again, cassette, "a cassette written and read back differs"),
        Err(e) => panic!("a cassette written by sluice does not load: {e}\n{written}"),
    }
    let _ = cassette.hosts();
    let mut redacted = cassette.clone();
    redacted.redact(&["secret".to_owned(), "REDACTED".to_owned()]);
    let _ = redacted.to_json_string();

    // Each answer looks through every exchange: a few requests are enough, and keep a large
    // cassette quick.
    let requests: Vec<HttpRequest> = cassette
        .exchanges
        .iter()
        .take(REPLAYED)
        .filter_map(|exchange| {
            let recorded = &exchange.request;
            let mut request = HttpRequest::new(Method::parse(&recorded.method)?, &recorded.url);
            for (name, value) in recorded.headers.iter().chain(&recorded.match_headers) {
                request.set_header(name, value);
            }
            request.body = recorded.body.as_ref().and_then(|b| b.to_bytes().ok());
            Some(request)
        })
        .collect();
    let replay = ReplayTransport::new(cassette);
    for request in &requests {
        let _ = replay.answer(request);
    }
    // Once more, as a retry or a repeated request does; then requests that were not recorded.
    for request in &requests {
        let _ = replay.answer(request);
        let _ = replay.answer(
            &request
                .clone()
                .with_query(&[("page".to_owned(), "2".to_owned())]),
        );
        let mut other = request.clone();
        other.method = Method::Post;
        other.body = Some(b"{\"a\": 1}".to_vec().into());
        let _ = replay.answer(&other);
    }
    let _ = replay.unused_exchanges();
}
