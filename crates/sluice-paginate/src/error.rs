//! Errors of building a paginator from the manifest and of paginating at run time.

use sluice_interp::InterpError;

/// The manifest's paginator cannot be built. Every variant names the component's place in the
/// manifest (`streams[0].retriever.paginator.pagination_strategy`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A template of the component does not compile or cannot be evaluated against the config.
    #[error("{path}: {source}")]
    Template {
        /// Where the template is.
        path: String,
        /// What the template engine reported.
        source: InterpError,
    },
    /// The component is not valid (the reference rejects it when it builds the stream).
    #[error("{path}: {message}")]
    Invalid {
        /// Where the component is.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A `CustomPaginationStrategy`: Python code that sluice cannot run.
    #[error(
        "{path}: the custom pagination strategy `{class_name}` is Python code, which sluice cannot run"
    )]
    CustomComponent {
        /// Where the component is.
        path: String,
        /// The Python class the manifest names.
        class_name: String,
    },
}

/// Paginating failed while reading a page. Every variant names the paginator's place in the
/// manifest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaginateError {
    /// A template failed to evaluate against the page.
    #[error("{origin}: cannot evaluate {field}: {source}")]
    Template {
        /// The paginator's place in the manifest.
        origin: String,
        /// Which field's template (`cursor_value`, `stop_condition`, `page_size`).
        field: &'static str,
        /// What the template engine reported.
        source: InterpError,
    },
    /// A value does not have the type the strategy needs (a page size that is not a number, an
    /// offset token that is not an integer), or a value cannot be put into the request.
    #[error("{origin}: {message}")]
    Invalid {
        /// The paginator's place in the manifest.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// `PageIncrement` was asked to read a page at a reduced size: pages are addressed as
    /// page number times page size, so a smaller size would skip records. The reference reports
    /// this as a config error.
    #[error(
        "{origin}: PageIncrement does not support reducing the page size while paginating: pages are \
         addressed as page number * page size, so a smaller page size shifts every following page \
         boundary and would skip records. Use OffsetIncrement or CursorPagination instead."
    )]
    PageSizeOverrideUnsupported {
        /// The paginator's place in the manifest.
        origin: String,
    },
    /// A pagination reset kept restarting the same slice (the reference's `PaginationTracker`).
    #[error(
        "there were {attempts} attempts with the same slice already while the max allowed is {allowed}"
    )]
    SameSliceRetried {
        /// Restarts of the same slice so far.
        attempts: u32,
        /// Restarts allowed.
        allowed: u32,
    },
}

impl PaginateError {
    /// Whether the reference reports this error as a config error (the user's manifest or config
    /// is wrong) rather than a system error.
    pub fn is_config_error(&self) -> bool {
        matches!(self, PaginateError::PageSizeOverrideUnsupported { .. })
    }
}
