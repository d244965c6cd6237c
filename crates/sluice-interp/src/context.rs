//! The variables a template can read.

use std::borrow::Cow;

use serde_json::Value as Json;

/// Variables the reference passes at some call site. A template that reads one of them where the
/// caller did not set it sees `None`, as when the reference passes `None`; any other unknown name
/// is an "undeclared variables" error, as in the reference.
pub(crate) const WELL_KNOWN: [&str; 20] = [
    "config",
    "parameters",
    "options",
    "stream_slice",
    "stream_partition",
    "stream_interval",
    "next_page_token",
    "record",
    "response",
    "headers",
    "last_record",
    "last_page_size",
    "stream_state",
    "creation_response",
    "polling_response",
    "download_target",
    "components_values",
    "request_url",
    "raw_schema",
    "property",
];

/// The variables of one evaluation, borrowed from the caller and cheap to build per request or
/// record. Only the variables a template actually reads are converted when it renders.
///
/// ```
/// use serde_json::json;
/// use sluice_interp::Context;
///
/// let config = json!({"start_date": "2024-01-01"});
/// let slice = json!({"start_time": "2024-01-01", "end_time": "2024-01-31"});
/// let ctx = Context::new().config(&config).stream_slice(&slice).with("page", json!(2));
/// assert!(ctx.get("stream_interval").is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    vars: Vec<(Cow<'a, str>, Cow<'a, Json>)>,
}

/// A variable's value: borrowed (`&serde_json::Value`) or owned (`serde_json::Value`).
pub trait IntoJson<'a> {
    /// Converts into the context's storage.
    fn into_json(self) -> Cow<'a, Json>;
}

impl<'a> IntoJson<'a> for &'a Json {
    fn into_json(self) -> Cow<'a, Json> {
        Cow::Borrowed(self)
    }
}

impl<'a> IntoJson<'a> for Json {
    fn into_json(self) -> Cow<'a, Json> {
        Cow::Owned(self)
    }
}

impl<'a> IntoJson<'a> for Cow<'a, Json> {
    fn into_json(self) -> Cow<'a, Json> {
        self
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub fn $name(self, value: impl IntoJson<'a>) -> Self {
            self.with(stringify!($name), value)
        }
    };
}

impl<'a> Context<'a> {
    /// An empty context.
    pub fn new() -> Self {
        // Room for the variables a component usually sets, so building one allocates once.
        Context {
            vars: Vec::with_capacity(12),
        }
    }

    /// Sets any named variable (hiding an earlier value of the same name).
    pub fn with(mut self, name: impl Into<Cow<'a, str>>, value: impl IntoJson<'a>) -> Self {
        // Contexts are built per record: appending is cheaper than replacing in place, and
        // `get` looks from the end, so the latest value wins.
        self.vars.push((name.into(), value.into_json()));
        self
    }

    /// The value of a variable, if set.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    setter!(
        /// The connector configuration.
        config
    );

    /// `$parameters`, also visible as `options` for 0.1.0-era manifests.
    pub fn parameters(self, value: impl IntoJson<'a>) -> Self {
        let value = value.into_json();
        self.with("options", value.clone())
            .with("parameters", value)
    }

    /// The current slice, also visible as `stream_partition` and `stream_interval`.
    pub fn stream_slice(self, value: impl IntoJson<'a>) -> Self {
        let value = value.into_json();
        self.with("stream_partition", value.clone())
            .with("stream_interval", value.clone())
            .with("stream_slice", value)
    }

    setter!(
        /// The token of the next page (`{"next_page_token": ...}`).
        next_page_token
    );
    setter!(
        /// The record being processed.
        record
    );
    setter!(
        /// The body of the last response.
        response
    );
    setter!(
        /// The headers of the last response.
        headers
    );
    setter!(
        /// The last record of the last page.
        last_record
    );
    setter!(
        /// The number of records of the last page.
        last_page_size
    );
    setter!(
        /// The stream state (0.1.0-era manifests; the reference 7.x rejects it).
        stream_state
    );
    setter!(
        /// The response of an async job's creation request.
        creation_response
    );
    setter!(
        /// The response of an async job's polling request.
        polling_response
    );
    setter!(
        /// The URL of an async job's result.
        download_target
    );
    setter!(
        /// The values a components resolver produced for a generated stream.
        components_values
    );
    setter!(
        /// The URL of the response, for error messages and predicates.
        request_url
    );
}
