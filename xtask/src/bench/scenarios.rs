//! The table of benchmark scenarios. A scenario names a manifest in fixtures/bench/ and a
//! workload; adding one (partitions, incremental slices, concurrency) is a new row here, a new
//! manifest, and, if its requests differ, a route in the server and a [`Pagination`] variant the
//! floor client can follow.

use super::pages::kept_by_status_filter;
use serde_json::Value;

/// How a scenario's API pages, which decides the server route and how the floor client walks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pagination {
    /// `/offset/items?offset=N&limit=1000`, ending with an empty page.
    Offset,
    /// `/cursor/items?page=K`, following the body's `next` URL until it is null.
    Cursor,
}

/// How many records a read scenario serves, relative to `--records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSize {
    Full,
    Tenth,
}

/// Who runs a read scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// sluice, the floor and the reference (at `--reference-records`).
    All,
    /// sluice alone (memory scenarios: only sluice's numbers matter).
    SluiceOnly,
}

#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// `read` of the catalog's one stream.
    Read {
        pagination: Pagination,
        size: ReadSize,
        compare: Compare,
        /// Whether the manifest emits record `id` (the others are filtered out).
        emits: fn(u64) -> bool,
        /// Checks the first emitted record against what the manifest must produce.
        check_record: fn(&Value) -> Result<(), String>,
    },
    /// Start-up time: each command run `runs` times (the reference `reference_runs` times), the
    /// median reported.
    Startup {
        commands: &'static [&'static str],
        runs: usize,
        reference_runs: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Unique; its first letter also selects it (`--scenario a`).
    pub name: &'static str,
    pub about: &'static str,
    /// File under fixtures/bench/.
    pub manifest: &'static str,
    pub workload: Workload,
}

impl Scenario {
    /// Whether `--scenario SELECTOR` picks this scenario: its full name, or its group (the part
    /// before the first `-`, e.g. `e` for both memory scenarios).
    pub fn matches(&self, selector: &str) -> bool {
        self.name == selector || self.name.split('-').next() == Some(selector)
    }
}

/// Every scenario, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "a-offset",
        about: "offset pagination, 1,000 records per page, DpathExtractor",
        manifest: "offset.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            size: ReadSize::Full,
            compare: Compare::All,
            emits: every_record,
            check_record: plain_record,
        },
    },
    Scenario {
        name: "b-transform",
        about: "(a) plus RecordFilter, AddFields, RemoveFields",
        manifest: "transform.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            size: ReadSize::Full,
            compare: Compare::All,
            emits: kept_by_status_filter,
            check_record: transformed_record,
        },
    },
    Scenario {
        name: "c-cursor",
        about: "(a) with CursorPagination following the body's next URL (RequestPath)",
        manifest: "cursor.yaml",
        workload: Workload::Read {
            pagination: Pagination::Cursor,
            size: ReadSize::Full,
            compare: Compare::All,
            emits: every_record,
            check_record: plain_record,
        },
    },
    Scenario {
        name: "d-startup",
        about: "spec and check start-up time (median of many runs)",
        manifest: "offset.yaml",
        workload: Workload::Startup {
            commands: &["spec", "check"],
            runs: 30,
            reference_runs: 5,
        },
    },
    Scenario {
        name: "e-memory-tenth",
        about: "peak memory of (a) at a tenth of --records",
        manifest: "offset.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            size: ReadSize::Tenth,
            compare: Compare::SluiceOnly,
            emits: every_record,
            check_record: plain_record,
        },
    },
    Scenario {
        name: "e-memory-full",
        about: "peak memory of (a) at --records",
        manifest: "offset.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            size: ReadSize::Full,
            compare: Compare::SluiceOnly,
            emits: every_record,
            check_record: plain_record,
        },
    },
];

fn every_record(_: u64) -> bool {
    true
}

/// The `data` of a RECORD message.
fn data_of(message: &Value) -> Result<&serde_json::Map<String, Value>, String> {
    message["record"]["data"]
        .as_object()
        .ok_or_else(|| "the first RECORD message has no record.data object".to_owned())
}

/// A record as served: the generator's fields, untouched.
fn plain_record(message: &Value) -> Result<(), String> {
    let data = data_of(message)?;
    for field in ["id", "name", "email", "status", "score", "tags"] {
        if !data.contains_key(field) {
            return Err(format!("the first record lacks the served field {field}"));
        }
    }
    Ok(())
}

/// A record after transform.yaml's AddFields and RemoveFields.
fn transformed_record(message: &Value) -> Result<(), String> {
    let data = data_of(message)?;
    if data.get("source").and_then(Value::as_str) != Some("bench") {
        return Err("AddFields did not add source: bench to the first record".to_owned());
    }
    let id = data.get("id").and_then(Value::as_u64).unwrap_or_default();
    let country = data.get("country").and_then(Value::as_str).unwrap_or("?");
    let expected_key = format!("{country}-{id}");
    if data.get("key").and_then(Value::as_str) != Some(expected_key.as_str()) {
        return Err(format!(
            "AddFields set key to {:?}, expected {expected_key:?}",
            data.get("key")
        ));
    }
    for removed in ["tags", "score"] {
        if data.contains_key(removed) {
            return Err(format!("RemoveFields left {removed} in the first record"));
        }
    }
    Ok(())
}
