//! The paginator through its public API, built from manifest JSON as the engine builds it.

use serde_json::{Value, json};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use sluice_paginate::{
    BuildError, PageInfo, PageRequestOptions, PageToken, PaginateError, Paginator,
    RecordStopCondition,
};
use std::sync::Arc;

const ORIGIN: &str = "streams[0].retriever.paginator";

fn build_with(manifest: Value, config: Value) -> Result<Paginator, BuildError> {
    let model = model::Paginator::from_node(&manifest, &ManifestPath::root()).expect("valid model");
    Paginator::from_model(
        Some(&model),
        &Arc::new(config),
        &json!({}),
        &ManifestPath::parse(ORIGIN),
    )
}

fn build(manifest: Value) -> Paginator {
    build_with(manifest, json!({})).expect("paginator builds")
}

fn default_paginator(strategy: Value, extra: Value) -> Value {
    let mut manifest = json!({"type": "DefaultPaginator", "pagination_strategy": strategy});
    if let (Value::Object(target), Value::Object(extra)) = (&mut manifest, extra) {
        target.extend(extra);
    }
    manifest
}

fn query_option(name: &str) -> Value {
    json!({"type": "RequestOption", "inject_into": "request_parameter", "field_name": name})
}

fn pairs(options: &PageRequestOptions) -> Vec<(&str, &str)> {
    options
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A page as the engine describes it.
struct Page {
    body: Value,
    headers: Vec<(String, String)>,
    size: usize,
    extracted: Option<usize>,
    last_record: Option<Value>,
    slice: Value,
    page_size_override: Option<u64>,
}

impl Page {
    fn of_size(size: usize) -> Self {
        Page {
            body: json!({}),
            headers: Vec::new(),
            size,
            extracted: None,
            last_record: None,
            slice: json!({}),
            page_size_override: None,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = body;
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn next(
        &self,
        paginator: &Paginator,
        token: Option<&PageToken>,
    ) -> Result<Option<PageToken>, PaginateError> {
        paginator.next_page_token(&PageInfo {
            response_body: Some(&self.body),
            headers: &self.headers,
            last_page_size: self.size,
            extracted_record_count: self.extracted,
            last_record: self.last_record.as_ref(),
            current_token: token,
            stream_slice: &self.slice,
            page_size_override: self.page_size_override,
        })
    }
}

fn token_value(token: Option<PageToken>) -> Option<Value> {
    token.map(|t| t.value().clone())
}

// ---------------------------------------------------------------- OffsetIncrement

fn offset_paginator(strategy_extra: Value) -> Paginator {
    let mut strategy = json!({"type": "OffsetIncrement", "page_size": 2});
    if let (Value::Object(target), Value::Object(extra)) = (&mut strategy, strategy_extra) {
        target.extend(extra);
    }
    build(default_paginator(
        strategy,
        json!({"page_size_option": query_option("limit"), "page_token_option": query_option("offset")}),
    ))
}

#[test]
fn offset_advances_by_records_and_stops_on_a_short_page() {
    let paginator = offset_paginator(json!({}));
    assert_eq!(paginator.initial_token(), None);
    assert_eq!(pairs(&paginator.request_options(None)), [("limit", "2")]);

    let second = Page::of_size(2).next(&paginator, None).unwrap().unwrap();
    assert_eq!(second.value(), &json!(2));
    assert_eq!(second.as_mapping(), &json!({"next_page_token": 2}));
    assert_eq!(
        pairs(&paginator.request_options(Some(&second))),
        [("offset", "2"), ("limit", "2")]
    );

    let third = Page::of_size(2)
        .next(&paginator, Some(&second))
        .unwrap()
        .unwrap();
    assert_eq!(third.value(), &json!(4));
    assert_eq!(
        Page::of_size(1).next(&paginator, Some(&third)).unwrap(),
        None
    );
}

#[test]
fn offset_last_page_exactly_full_needs_one_more_empty_page() {
    let paginator = offset_paginator(json!({}));
    let second = Page::of_size(2).next(&paginator, None).unwrap();
    assert_eq!(token_value(second.clone()), Some(json!(2)));
    // The second page is full too: another request follows, and only its empty page stops.
    let third = Page::of_size(2).next(&paginator, second.as_ref()).unwrap();
    assert_eq!(token_value(third.clone()), Some(json!(4)));
    assert_eq!(
        Page::of_size(0).next(&paginator, third.as_ref()).unwrap(),
        None
    );
}

#[test]
fn offset_inject_on_first_request_starts_at_zero() {
    let paginator = offset_paginator(json!({"inject_on_first_request": true}));
    let first = paginator.initial_token().unwrap();
    assert_eq!(first.value(), &json!(0));
    assert_eq!(
        pairs(&paginator.request_options(Some(&first))),
        [("offset", "0"), ("limit", "2")]
    );
    let second = Page::of_size(2).next(&paginator, Some(&first)).unwrap();
    assert_eq!(token_value(second), Some(json!(2)));
}

#[test]
fn offset_counts_records_before_the_filter() {
    let paginator = offset_paginator(json!({}));
    // The filter kept one record of a full page of two: the pagination goes on, by two.
    let page = Page {
        extracted: Some(2),
        ..Page::of_size(1)
    };
    assert_eq!(
        token_value(page.next(&paginator, None).unwrap()),
        Some(json!(2))
    );
}

#[test]
fn offset_page_size_from_config_and_from_response() {
    let from_config = build_with(
        default_paginator(
            json!({"type": "OffsetIncrement", "page_size": "{{ config['page_size'] }}"}),
            json!({"page_size_option": query_option("limit")}),
        ),
        json!({"page_size": "3"}),
    )
    .unwrap();
    assert_eq!(from_config.page_size(), Some(3));
    assert!(!from_config.needs_response_body());
    assert_eq!(pairs(&from_config.request_options(None)), [("limit", "3")]);
    assert_eq!(Page::of_size(2).next(&from_config, None).unwrap(), None);
    assert_eq!(
        token_value(Page::of_size(3).next(&from_config, None).unwrap()),
        Some(json!(3))
    );

    let from_response = build(default_paginator(
        json!({"type": "OffsetIncrement", "page_size": "{{ response['limit'] }}"}),
        json!({"page_token_option": query_option("offset")}),
    ));
    assert!(from_response.needs_response_body());
    let page = Page::of_size(5).body(json!({"limit": 10}));
    assert_eq!(page.next(&from_response, None).unwrap(), None);
    let page = Page::of_size(10).body(json!({"limit": 10}));
    assert_eq!(
        token_value(page.next(&from_response, None).unwrap()),
        Some(json!(10))
    );
    // A response without the field gives no limit: only an empty page stops.
    let page = Page::of_size(5).body(json!({}));
    assert_eq!(
        token_value(page.next(&from_response, None).unwrap()),
        Some(json!(5))
    );
}

#[test]
fn offset_without_page_size_stops_only_on_an_empty_page() {
    let paginator = build(default_paginator(
        json!({"type": "OffsetIncrement"}),
        json!({"page_token_option": query_option("offset")}),
    ));
    assert_eq!(
        token_value(Page::of_size(7).next(&paginator, None).unwrap()),
        Some(json!(7))
    );
    assert_eq!(Page::of_size(0).next(&paginator, None).unwrap(), None);
}

#[test]
fn offset_rejects_a_token_that_is_not_an_integer() {
    let paginator = offset_paginator(json!({}));
    let token = PageToken::new(json!("abc"));
    let error = Page::of_size(2).next(&paginator, Some(&token)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{ORIGIN}: Last page token value \"abc\" for OffsetIncrement pagination strategy was not an integer"
        )
    );
}

#[test]
fn offset_honours_a_reduced_page_size() {
    let paginator = offset_paginator(json!({"page_size": 100}));
    let page = Page {
        page_size_override: Some(50),
        ..Page::of_size(50)
    };
    assert_eq!(
        token_value(page.next(&paginator, None).unwrap()),
        Some(json!(50))
    );
    assert_eq!(
        pairs(&paginator.request_options_with_page_size(None, Some(50))),
        [("limit", "50")]
    );
}

// ---------------------------------------------------------------- PageIncrement

#[test]
fn page_increment_counts_pages_from_start_from_page() {
    let paginator = build(default_paginator(
        json!({"type": "PageIncrement", "page_size": 3, "start_from_page": 1}),
        json!({"page_size_option": query_option("per_page"), "page_token_option": query_option("page")}),
    ));
    assert_eq!(paginator.initial_token(), None);
    assert_eq!(pairs(&paginator.request_options(None)), [("per_page", "3")]);
    let second = Page::of_size(3).next(&paginator, None).unwrap().unwrap();
    assert_eq!(second.value(), &json!(2));
    let third = Page::of_size(3)
        .next(&paginator, Some(&second))
        .unwrap()
        .unwrap();
    assert_eq!(third.value(), &json!(3));
    assert_eq!(
        pairs(&paginator.request_options(Some(&third))),
        [("page", "3"), ("per_page", "3")]
    );
    assert_eq!(
        Page::of_size(2).next(&paginator, Some(&third)).unwrap(),
        None
    );
}

#[test]
fn page_increment_inject_on_first_request_sends_the_start_page() {
    let paginator = build(default_paginator(
        json!({"type": "PageIncrement", "start_from_page": 1, "inject_on_first_request": true}),
        json!({"page_token_option": query_option("page")}),
    ));
    let first = paginator.initial_token().unwrap();
    assert_eq!(
        pairs(&paginator.request_options(Some(&first))),
        [("page", "1")]
    );
    // Without a page size only an empty page stops.
    let second = Page::of_size(1).next(&paginator, Some(&first)).unwrap();
    assert_eq!(token_value(second.clone()), Some(json!(2)));
    assert_eq!(
        Page::of_size(0).next(&paginator, second.as_ref()).unwrap(),
        None
    );
}

#[test]
fn page_increment_next_page_zero_is_falsy_and_stops() {
    // The reference drops a falsy token: page 0 after a start of -1 ends the pagination.
    let paginator = build(default_paginator(
        json!({"type": "PageIncrement", "start_from_page": -1}),
        json!({"page_token_option": query_option("page")}),
    ));
    assert_eq!(Page::of_size(5).next(&paginator, None).unwrap(), None);
}

#[test]
fn page_increment_page_size_from_config_must_be_an_integer() {
    let strategy = json!({"type": "PageIncrement", "page_size": "{{ config['size'] }}"});
    let ok = build_with(
        default_paginator(strategy.clone(), json!({})),
        json!({"size": 4}),
    )
    .unwrap();
    assert_eq!(ok.page_size(), Some(4));
    let error = build_with(
        default_paginator(strategy, json!({})),
        json!({"size": "many"}),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{ORIGIN}.pagination_strategy.page_size: page_size evaluated to \"many\", which is not an integer"
        )
    );
}

#[test]
fn page_increment_refuses_a_reduced_page_size() {
    let paginator = build(default_paginator(
        json!({"type": "PageIncrement", "page_size": 10}),
        json!({}),
    ));
    let page = Page {
        page_size_override: Some(5),
        ..Page::of_size(5)
    };
    let error = page.next(&paginator, None).unwrap_err();
    assert!(error.is_config_error());
    assert!(
        error
            .to_string()
            .contains("PageIncrement does not support reducing the page size")
    );
}

// ---------------------------------------------------------------- CursorPagination

#[test]
fn cursor_from_the_body_until_it_is_null_missing_or_empty() {
    let paginator = build(default_paginator(
        json!({"type": "CursorPagination", "cursor_value": "{{ response.next_cursor }}"}),
        json!({"page_token_option": query_option("cursor")}),
    ));
    assert!(paginator.needs_response_body());
    assert_eq!(paginator.initial_token(), None);
    let next = Page::of_size(2)
        .body(json!({"next_cursor": "abc"}))
        .next(&paginator, None)
        .unwrap();
    assert_eq!(token_value(next.clone()), Some(json!("abc")));
    assert_eq!(
        pairs(&paginator.request_options(next.as_ref())),
        [("cursor", "abc")]
    );
    for end in [
        json!({"next_cursor": null}),
        json!({}),
        json!({"next_cursor": ""}),
    ] {
        assert_eq!(
            Page::of_size(2)
                .body(end.clone())
                .next(&paginator, next.as_ref())
                .unwrap(),
            None,
            "{end}"
        );
    }
    // A missing response body counts as an empty object.
    let no_body = paginator.next_page_token(&PageInfo {
        response_body: None,
        headers: &[],
        last_page_size: 1,
        extracted_record_count: None,
        last_record: None,
        current_token: None,
        stream_slice: &json!({}),
        page_size_override: None,
    });
    assert_eq!(no_body.unwrap(), None);
}

#[test]
fn cursor_reading_through_a_missing_field_is_an_error() {
    let paginator = build(default_paginator(
        json!({"type": "CursorPagination", "cursor_value": "{{ response.meta.next }}"}),
        json!({}),
    ));
    let error = Page::of_size(1)
        .body(json!({"data": []}))
        .next(&paginator, None)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{ORIGIN}: cannot evaluate cursor_value:")),
        "{error}"
    );
}

#[test]
fn cursor_stop_condition_is_checked_first() {
    let paginator = build(default_paginator(
        json!({
            "type": "CursorPagination",
            "cursor_value": "{{ response.next }}",
            "stop_condition": "{{ not response.has_more }}"
        }),
        json!({}),
    ));
    let more = Page::of_size(1).body(json!({"next": "n2", "has_more": true}));
    assert_eq!(
        token_value(more.next(&paginator, None).unwrap()),
        Some(json!("n2"))
    );
    let done = Page::of_size(1).body(json!({"next": "n3", "has_more": false}));
    assert_eq!(done.next(&paginator, None).unwrap(), None);
}

#[test]
fn cursor_follows_the_link_header() {
    let paginator = build(default_paginator(
        json!({
            "type": "CursorPagination",
            "cursor_value": "{{ headers['link']['next']['url'] }}",
            "stop_condition": "{{ 'next' not in headers['link'] }}"
        }),
        json!({"page_token_option": {"type": "RequestPath"}}),
    ));
    assert!(!paginator.needs_response_body());
    let page = Page::of_size(2).header(
        "link",
        "<https://api.example.com/items?page=2>; rel=\"next\", <https://api.example.com/items?page=5>; rel=\"last\"",
    );
    let next = page.next(&paginator, None).unwrap().unwrap();
    assert_eq!(next.value(), &json!("https://api.example.com/items?page=2"));
    let options = paginator.request_options(Some(&next));
    assert_eq!(
        options.path.as_deref(),
        Some("https://api.example.com/items?page=2")
    );
    assert!(options.query.is_empty());
    let last = Page::of_size(2).header(
        "Link",
        "<https://api.example.com/items?page=1>; rel=\"first\"",
    );
    assert_eq!(last.next(&paginator, Some(&next)).unwrap(), None);
    // No Link header at all: `headers['link']` is an empty dict.
    assert_eq!(
        Page::of_size(2).next(&paginator, Some(&next)).unwrap(),
        None
    );
}

#[test]
fn cursor_reads_headers_last_record_page_size_and_slice() {
    let paginator = build(default_paginator(
        json!({
            "type": "CursorPagination",
            "cursor_value": "{{ last_record['id'] }}-{{ headers['X-Total'] }}-{{ stream_slice['region'] }}",
            "stop_condition": "{{ last_page_size < page_size }}",
            "page_size": 2
        }),
        json!({"page_size_option": query_option("limit"), "page_token_option": query_option("after")}),
    ));
    let page = Page {
        last_record: Some(json!({"id": 42})),
        slice: json!({"region": "eu"}),
        ..Page::of_size(2).header("X-Total", "9")
    };
    assert_eq!(
        token_value(page.next(&paginator, None).unwrap()),
        Some(json!("42-9-eu"))
    );
    let short = Page {
        last_record: Some(json!({"id": 43})),
        ..Page::of_size(1)
    };
    assert_eq!(short.next(&paginator, None).unwrap(), None);
    // `page_size` follows a reduction, so a full reduced page is not a short page.
    let reduced = Page {
        page_size_override: Some(1),
        slice: json!({"region": "us"}),
        ..short
    };
    assert!(reduced.next(&paginator, None).unwrap().is_some());
}

#[test]
fn cursor_reading_page_size_without_declaring_it_is_rejected() {
    let error = build_with(
        default_paginator(
            json!({
                "type": "CursorPagination",
                "cursor_value": "{{ response.next }}",
                "stop_condition": "{{ last_page_size < page_size }}"
            }),
            json!({}),
        ),
        json!({}),
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "{ORIGIN}.pagination_strategy.stop_condition: the template"
        )),
        "{error}"
    );
    // `config['page_size']` is not the variable.
    build(default_paginator(
        json!({
            "type": "CursorPagination",
            "cursor_value": "{{ response.next }}",
            "stop_condition": "{{ last_page_size < config['page_size'] }}"
        }),
        json!({}),
    ));
}

#[test]
fn cursor_token_in_a_nested_json_body_and_a_header() {
    let paginator = build(default_paginator(
        json!({"type": "CursorPagination", "cursor_value": "{{ response.pageInfo.endCursor }}", "page_size": 50}),
        json!({
            "page_size_option": {"type": "RequestOption", "inject_into": "body_json", "field_path": ["variables", "first"]},
            "page_token_option": {"type": "RequestOption", "inject_into": "body_json", "field_path": ["variables", "after"]}
        }),
    ));
    let first = paginator.request_options(None);
    assert_eq!(
        Value::Object(first.body_json),
        json!({"variables": {"first": 50}})
    );
    let next = Page::of_size(50)
        .body(json!({"pageInfo": {"endCursor": "Y3Vy"}}))
        .next(&paginator, None)
        .unwrap();
    let options = paginator.request_options(next.as_ref());
    assert_eq!(
        Value::Object(options.body_json),
        json!({"variables": {"after": "Y3Vy", "first": 50}})
    );

    let in_header = build(default_paginator(
        json!({"type": "CursorPagination", "cursor_value": "{{ response.next }}"}),
        json!({"page_token_option": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Cursor"}}),
    ));
    let options = in_header.request_options(Some(&PageToken::new(json!(17))));
    assert_eq!(options.headers, [("X-Cursor".to_owned(), "17".to_owned())]);
}

#[test]
fn body_data_takes_token_and_page_size_as_form_fields() {
    let paginator = build(default_paginator(
        json!({"type": "PageIncrement", "page_size": 25}),
        json!({
            "page_size_option": {"type": "RequestOption", "inject_into": "body_data", "field_name": "count"},
            "page_token_option": {"type": "RequestOption", "inject_into": "body_data", "field_name": "page"}
        }),
    ));
    let options = paginator.request_options(Some(&PageToken::new(json!(2))));
    assert_eq!(
        options.body_data,
        [
            ("page".to_owned(), "2".to_owned()),
            ("count".to_owned(), "25".to_owned())
        ]
    );
    assert!(options.query.is_empty() && options.headers.is_empty() && options.body_json.is_empty());
}

#[test]
fn request_path_token_is_not_sent_for_a_falsy_initial_token() {
    let paginator = build(default_paginator(
        json!({"type": "OffsetIncrement", "page_size": 10, "inject_on_first_request": true}),
        json!({"page_size_option": query_option("limit"), "page_token_option": {"type": "RequestPath"}}),
    ));
    let first = paginator.initial_token();
    let options = paginator.request_options(first.as_ref());
    assert_eq!(options.path, None);
    assert_eq!(pairs(&options), [("limit", "10")]);
    let relative = paginator.request_options(Some(&PageToken::new(json!("/v1/items?page=2"))));
    assert_eq!(relative.path.as_deref(), Some("/v1/items?page=2"));
}

#[test]
fn a_repeated_cursor_is_followed_as_in_the_reference() {
    // The reference has no guard against an API that returns the same cursor again: it requests
    // the page again. Matching it, the paginator hands the same token back.
    let paginator = build(default_paginator(
        json!({"type": "CursorPagination", "cursor_value": "{{ response.next }}"}),
        json!({"page_token_option": query_option("cursor")}),
    ));
    let token = PageToken::new(json!("same"));
    let next = Page::of_size(1)
        .body(json!({"next": "same"}))
        .next(&paginator, Some(&token))
        .unwrap();
    assert_eq!(next, Some(token));
}

// ---------------------------------------------------------------- the paginator as a whole

#[test]
fn no_pagination_reads_one_page() {
    for paginator in [
        Paginator::from_model(
            None,
            &Arc::new(json!({})),
            &json!({}),
            &ManifestPath::parse(ORIGIN),
        )
        .unwrap(),
        build(json!({"type": "NoPagination"})),
    ] {
        assert!(!paginator.paginates());
        assert_eq!(paginator.initial_token(), None);
        assert!(paginator.request_options(None).is_empty());
        assert_eq!(Page::of_size(100).next(&paginator, None).unwrap(), None);
        assert!(!paginator.needs_response_body());
    }
}

#[test]
fn page_size_option_needs_a_page_size() {
    let error = build_with(
        default_paginator(
            json!({"type": "CursorPagination", "cursor_value": "{{ response.next }}"}),
            json!({"page_size_option": query_option("limit")}),
        ),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{ORIGIN}.page_size_option: page_size_option cannot be set if the pagination strategy does not have a page_size"
        )
    );
}

#[test]
fn options_writing_the_same_key_are_rejected() {
    let error = build_with(
        default_paginator(
            json!({"type": "OffsetIncrement", "page_size": 5}),
            json!({"page_size_option": query_option("n"), "page_token_option": query_option("n")}),
        ),
        json!({}),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("duplicate keys detected at key path: n"),
        "{error}"
    );
}

#[test]
fn custom_strategies_are_named_in_the_error() {
    let error = build_with(
        default_paginator(
            json!({"type": "CustomPaginationStrategy", "class_name": "source_x.Pager"}),
            json!({}),
        ),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{ORIGIN}.pagination_strategy: the custom pagination strategy `source_x.Pager` is Python code, which sluice cannot run"
        )
    );
}

#[derive(Debug)]
struct OlderThan(i64);

impl RecordStopCondition for OlderThan {
    fn is_met(&self, record: &Value) -> bool {
        record["updated"]
            .as_i64()
            .is_some_and(|updated| updated < self.0)
    }
}

#[test]
fn record_stop_condition_ends_a_data_feed() {
    let paginator =
        offset_paginator(json!({})).with_record_stop_condition(Arc::new(OlderThan(100)));
    let fresh = Page {
        last_record: Some(json!({"updated": 150})),
        ..Page::of_size(2)
    };
    assert!(fresh.next(&paginator, None).unwrap().is_some());
    let stale = Page {
        last_record: Some(json!({"updated": 50})),
        ..Page::of_size(2)
    };
    assert_eq!(stale.next(&paginator, None).unwrap(), None);
}

#[test]
fn strategy_parameters_are_visible_to_templates() {
    let paginator = build(default_paginator(
        json!({
            "type": "CursorPagination",
            "cursor_value": "{{ response[parameters['cursor_field']] }}",
            "$parameters": {"cursor_field": "after"}
        }),
        json!({}),
    ));
    let next = Page::of_size(1)
        .body(json!({"after": "p2"}))
        .next(&paginator, None)
        .unwrap();
    assert_eq!(token_value(next), Some(json!("p2")));
}
