//! Pagination of declarative (low-code) sources, matching the Python reference's
//! `DefaultPaginator`, `NoPagination` and the strategies `OffsetIncrement`, `PageIncrement` and
//! `CursorPagination`, as `SimpleRetriever` drives them.
//!
//! A [`Paginator`] is built once per stream from the manifest and holds no per-partition state:
//! the caller keeps the current [`PageToken`] of each partition, so partitions can be read
//! concurrently and a partition restarts with [`Paginator::initial_token`]. Per partition:
//!
//! 1. `token = paginator.initial_token()`.
//! 2. Send the request with [`Paginator::request_options`]`(token)` merged in, and with
//!    `token.as_mapping()` as the requester templates' `next_page_token`.
//! 3. If the response is ignored (no response), the partition ends. Otherwise read its records,
//!    then `token = paginator.next_page_token(&PageInfo { .. })?`; `None` ends the partition.
//!
//! ```
//! use serde_json::{Value, json};
//! use sluice_manifest::{ManifestPath, model};
//! use sluice_paginate::{PageInfo, Paginator};
//! use std::sync::Arc;
//!
//! let manifest: model::Paginator = sluice_manifest::model::FromNode::from_node(
//!     &json!({
//!         "type": "DefaultPaginator",
//!         "pagination_strategy": {"type": "OffsetIncrement", "page_size": 2},
//!         "page_size_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "limit"},
//!         "page_token_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "offset"}
//!     }),
//!     &ManifestPath::root(),
//! )?;
//! let config = Arc::new(json!({}));
//! let paginator = Paginator::from_model(Some(&manifest), &config, &json!({}), &ManifestPath::parse("paginator"))?;
//!
//! let first = paginator.initial_token();
//! assert_eq!(paginator.request_options(first.as_ref()).query, [("limit".to_owned(), "2".to_owned())]);
//!
//! // A full page of two records: the next page starts at offset 2.
//! let slice = json!({});
//! let page = PageInfo {
//!     response_body: None,
//!     headers: &[],
//!     last_page_size: 2,
//!     extracted_record_count: None,
//!     last_record: None,
//!     current_token: first.as_ref(),
//!     stream_slice: &slice,
//!     page_size_override: None,
//! };
//! let second = paginator.next_page_token(&page)?.expect("a full page has a next page");
//! assert_eq!(second.value(), &json!(2));
//! assert_eq!(
//!     paginator.request_options(Some(&second)).query,
//!     [("offset".to_owned(), "2".to_owned()), ("limit".to_owned(), "2".to_owned())]
//! );
//!
//! // A short page ends the partition.
//! let last = PageInfo { last_page_size: 1, current_token: Some(&second), ..page };
//! assert_eq!(paginator.next_page_token(&last)?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`PaginationResetPolicy`] and [`PaginationTracker`] implement the retriever's
//! `pagination_reset`: restarting a partition after a number of records or when an error handler
//! asks for it, without restarting the same slice forever.

mod error;
mod headers;
mod options;
mod paginator;
mod python;
mod strategy;
mod tracker;

pub use error::{BuildError, PaginateError};
pub use options::{PageRequestOptions, RequestOption};
pub use paginator::{PageInfo, PageToken, Paginator, RecordStopCondition};
pub use tracker::{PaginationResetPolicy, PaginationTracker};

/// Parses a `Link` header the way the reference exposes it to templates as `headers['link']`:
/// each link keyed by its `rel` (or its URL when it has none), holding `url` and its parameters.
pub fn parse_link_header(header: &str) -> serde_json::Map<String, serde_json::Value> {
    headers::parse_links(header)
}

/// The manifest component types this crate implements (for tools that check what a manifest
/// needs, such as `sluice validate`).
pub const SUPPORTED_COMPONENTS: &[&str] = &[
    "DefaultPaginator",
    "NoPagination",
    "OffsetIncrement",
    "PageIncrement",
    "CursorPagination",
    "RequestPath",
    "RequestOption",
    "PaginationReset",
    "PaginationResetLimits",
];
