//! The table of benchmark scenarios. A scenario names a manifest in fixtures/bench/ and a
//! workload; adding one is a new row here, a new manifest, and, if its requests differ, a route in
//! the server and a [`Pagination`] variant the floor client can follow. Read scenarios pick the
//! records they read by [`RecordShape`] (a new shape is a generator in `pages.rs` and its offset
//! route) and may read incrementally, their final state checked ([`ReadMode`]); those reading
//! as many records as (a) may be held to a multiple of (a)'s sluice wall time (`max_wall_vs_a`). Partitioned reads
//! ([`Workload::Partitioned`]: (f) to (i)) have no floor; their [`Shape`] says what the API holds,
//! passed to the manifest through the run's config, and their [`Target`] what they aim for.

use super::pages::{RecordShape, kept_by_status_filter, latest_created_at};
use serde_json::Value;

/// How a scenario's API pages, which decides the server route and how the floor client walks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pagination {
    /// The shape's route (`/offset/items` for the plain records) with `?offset=N&limit=1000`,
    /// ending with an empty page.
    Offset,
    /// `/cursor/items?page=K`, following the body's `next` URL until it is null (plain records
    /// only).
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

/// Checks a read's last STATE message, given how many records the API served.
pub type StateCheck = fn(&Value, u64) -> Result<(), String>;

/// How a [`Workload::Read`] scenario reads its stream.
#[derive(Debug, Clone, Copy)]
pub enum ReadMode {
    /// Full refresh (catalog.json).
    FullRefresh,
    /// Incremental (catalog_incremental.json; the manifest's cursor field is the source's, the
    /// catalog's is not used): the last STATE message printed must pass `check_state`, given
    /// how many records the API served.
    Incremental { check_state: StateCheck },
}

#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// `read` of the catalog's one stream.
    Read {
        pagination: Pagination,
        /// The records the API holds.
        records: RecordShape,
        size: ReadSize,
        compare: Compare,
        mode: ReadMode,
        /// Whether the manifest emits record `id` (the others are filtered out).
        emits: fn(u64) -> bool,
        /// Checks the first emitted record against what the manifest must produce.
        check_record: fn(&Value) -> Result<(), String>,
        /// At most this many times (a)'s sluice wall time, for scenarios reading as many
        /// records as (a); the report says whether it was met.
        max_wall_vs_a: Option<f64>,
    },
    /// Start-up time: each command run `runs` times (the reference `reference_runs` times), the
    /// median reported.
    Startup {
        commands: &'static [&'static str],
        runs: usize,
        reference_runs: usize,
    },
    /// `read` of the catalog's one stream, partitioned: `shape` says what the API holds (the
    /// config the harness writes per run carries it), sluice reads at each of `sluice_levels`
    /// (`--concurrency N`), the reference as `reference` says. No floor.
    Partitioned {
        shape: Shape,
        /// Read in incremental mode (catalog_incremental.json, a STATE message expected), else
        /// full refresh (catalog.json).
        incremental: bool,
        sluice_levels: &'static [usize],
        reference: ReferenceRuns,
        check_record: fn(&Value) -> Result<(), String>,
        target: Target,
    },
}

/// What the API holds for a [`Workload::Partitioned`] scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `partitions` partitions of a ListPartitionRouter (the manifest lists them), each one
    /// request answered after `delay_ms` with `records` records.
    Delayed {
        partitions: u64,
        records: u64,
        delay_ms: u64,
    },
    /// A substream: parent records (paged by the manifest), each parent one child request
    /// answered at once with `records_per_parent` records.
    Substream {
        parents: Parents,
        records_per_parent: u64,
    },
    /// Daily slices from 2024-01-01: at most `days` days, a thousandth of `--records` if
    /// fewer (the reference: of `--reference-records`), each day 600 to 1,400 records.
    Daily { days: u64 },
}

/// How many parents a [`Shape::Substream`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parents {
    Fixed(u64),
    /// A tenth of `--records` (whole pages of 1,000), at most this many.
    TenthOfRecordsUpTo(u64),
}

/// How the reference reads a [`Workload::Partitioned`] scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceRuns {
    /// Not at all: only sluice's numbers matter.
    Never,
    /// Once, at the level the manifest sets (its default of 2 when it sets none).
    Once { level: usize },
    /// Once at each of sluice's levels, through the config's `concurrency`.
    AtEachLevel,
}

/// What a [`Workload::Partitioned`] scenario aims for; the report says whether it was met.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// sluice's wall time at concurrency N within `max_ratio` times its time at concurrency 1
    /// divided by N, for every level measured.
    ScalesWithConcurrency { max_ratio: f64 },
    /// sluice's records/s at least `min_speedup` times the reference's at the same concurrency.
    SpeedupAtSameConcurrency { min_speedup: f64 },
    /// sluice's peak RSS under `max_bytes` at every level.
    PeakRssUnder { max_bytes: u64 },
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
            records: RecordShape::Plain,
            size: ReadSize::Full,
            compare: Compare::All,
            mode: ReadMode::FullRefresh,
            emits: every_record,
            check_record: plain_record,
            max_wall_vs_a: None,
        },
    },
    Scenario {
        name: "b-transform",
        about: "(a) plus RecordFilter, AddFields, RemoveFields",
        manifest: "transform.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            records: RecordShape::Plain,
            size: ReadSize::Full,
            compare: Compare::All,
            mode: ReadMode::FullRefresh,
            emits: kept_by_status_filter,
            check_record: transformed_record,
            max_wall_vs_a: Some(1.3),
        },
    },
    Scenario {
        name: "c-cursor",
        about: "(a) with CursorPagination following the body's next URL (RequestPath)",
        manifest: "cursor.yaml",
        workload: Workload::Read {
            pagination: Pagination::Cursor,
            records: RecordShape::Plain,
            size: ReadSize::Full,
            compare: Compare::All,
            mode: ReadMode::FullRefresh,
            emits: every_record,
            check_record: plain_record,
            max_wall_vs_a: None,
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
            records: RecordShape::Plain,
            size: ReadSize::Tenth,
            compare: Compare::SluiceOnly,
            mode: ReadMode::FullRefresh,
            emits: every_record,
            check_record: plain_record,
            max_wall_vs_a: None,
        },
    },
    Scenario {
        name: "e-memory-full",
        about: "peak memory of (a) at --records",
        manifest: "offset.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            records: RecordShape::Plain,
            size: ReadSize::Full,
            compare: Compare::SluiceOnly,
            mode: ReadMode::FullRefresh,
            emits: every_record,
            check_record: plain_record,
            max_wall_vs_a: None,
        },
    },
    Scenario {
        name: "f-concurrency",
        about: "32 partitions (ListPartitionRouter) x 100 records, each request answered after 50 ms, at concurrency 1, 2, 8, 16",
        manifest: "concurrency.yaml",
        workload: Workload::Partitioned {
            shape: Shape::Delayed {
                // The manifest's ListPartitionRouter lists 32 values.
                partitions: 32,
                records: 100,
                delay_ms: 50,
            },
            incremental: false,
            sluice_levels: &[1, 2, 8, 16],
            reference: ReferenceRuns::AtEachLevel,
            check_record: plain_record,
            target: Target::ScalesWithConcurrency { max_ratio: 1.25 },
        },
    },
    Scenario {
        name: "g-substream",
        about: "substream: 1,000 parents (pages of 100), one request per parent, 5 records each",
        manifest: "substream.yaml",
        workload: Workload::Partitioned {
            shape: Shape::Substream {
                parents: Parents::Fixed(1_000),
                records_per_parent: 5,
            },
            incremental: false,
            sluice_levels: &[2, 8, 16],
            reference: ReferenceRuns::Once { level: 2 },
            check_record: child_record,
            target: Target::SpeedupAtSameConcurrency { min_speedup: 10.0 },
        },
    },
    Scenario {
        name: "h-incremental",
        about: "incremental DatetimeBasedCursor, step P1D, 100 days of 600 to 1,400 records, pages of 1,000",
        manifest: "daily.yaml",
        workload: Workload::Partitioned {
            shape: Shape::Daily { days: 100 },
            incremental: true,
            sluice_levels: &[2, 8, 16],
            reference: ReferenceRuns::Once { level: 2 },
            check_record: dated_record,
            target: Target::SpeedupAtSameConcurrency { min_speedup: 10.0 },
        },
    },
    Scenario {
        name: "i-partitions",
        about: "peak memory, incremental substream with a cursor per partition: 100,000 parents (a tenth of --records at most), 1 record each",
        manifest: "partitions.yaml",
        workload: Workload::Partitioned {
            shape: Shape::Substream {
                parents: Parents::TenthOfRecordsUpTo(100_000),
                records_per_parent: 1,
            },
            incremental: true,
            sluice_levels: &[2, 16],
            reference: ReferenceRuns::Never,
            check_record: incremental_child_record,
            target: Target::PeakRssUnder {
                max_bytes: 64 << 20,
            },
        },
    },
    Scenario {
        name: "j-datetime-cursor",
        about: "(a) read incrementally: a DatetimeBasedCursor on created_at, one slice holding every record",
        manifest: "datetime_cursor.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            records: RecordShape::Plain,
            size: ReadSize::Full,
            compare: Compare::All,
            mode: ReadMode::Incremental {
                check_state: state_is_latest_created_at,
            },
            emits: every_record,
            check_record: plain_record,
            max_wall_vs_a: Some(1.3),
        },
    },
    Scenario {
        name: "k-normalise",
        about: "(j) plus schema_normalization: Default, on records some of whose values need converting",
        manifest: "normalise.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            records: RecordShape::Typed,
            size: ReadSize::Full,
            compare: Compare::All,
            mode: ReadMode::Incremental {
                check_state: state_is_latest_created_at,
            },
            emits: every_record,
            check_record: normalised_record,
            max_wall_vs_a: Some(1.3),
        },
    },
    Scenario {
        name: "l-wide-records",
        about: "orders of about 2 KB with nested objects and arrays (a tenth of --records), offset pagination, DpathExtractor",
        manifest: "wide.yaml",
        workload: Workload::Read {
            pagination: Pagination::Offset,
            records: RecordShape::Wide,
            size: ReadSize::Tenth,
            compare: Compare::All,
            mode: ReadMode::FullRefresh,
            emits: every_record,
            check_record: order_record,
            max_wall_vs_a: None,
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

/// A record of a substream: as served, with its parent's id.
fn child_record(message: &Value) -> Result<(), String> {
    plain_record(message)?;
    if !data_of(message)?.contains_key("parent_id") {
        return Err("the first record lacks the served field parent_id".to_owned());
    }
    Ok(())
}

/// A record of daily.yaml: as served, with its cursor field.
fn dated_record(message: &Value) -> Result<(), String> {
    plain_record(message)?;
    match data_of(message)?.get("updated_at").and_then(Value::as_str) {
        Some(time) if time.starts_with("2024-") => Ok(()),
        other => Err(format!("the first record's updated_at is {other:?}")),
    }
}

/// A record of partitions.yaml: a substream record with its cursor field.
fn incremental_child_record(message: &Value) -> Result<(), String> {
    child_record(message)?;
    dated_record(message)
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

/// The last STATE message of datetime_cursor.yaml and normalise.yaml: the cursor is the latest
/// `created_at` of the `served` records (every record is inside the one slice).
fn state_is_latest_created_at(message: &Value, served: u64) -> Result<(), String> {
    let state = &message["state"]["stream"]["stream_state"];
    let expected = latest_created_at(served);
    match state.get("created_at").and_then(Value::as_str) {
        Some(cursor) if Some(cursor) == expected.as_deref() => Ok(()),
        _ => Err(format!(
            "the final state is {state}, expected created_at {}",
            expected.as_deref().unwrap_or("(no records)")
        )),
    }
}

/// A typed record after normalise.yaml's schema normalisation: record 0, the first, sends
/// `score`, `visits`, `verified` and `address.postal_code` as other JSON types than its schema's.
fn normalised_record(message: &Value) -> Result<(), String> {
    plain_record(message)?;
    let data = data_of(message)?;
    let converted = [
        (
            "score",
            data.get("score").is_some_and(Value::is_f64),
            "a number",
        ),
        (
            "visits",
            data.get("visits").is_some_and(Value::is_u64),
            "an integer",
        ),
        (
            "verified",
            data.get("verified").is_some_and(Value::is_boolean),
            "a boolean",
        ),
        (
            "address.postal_code",
            data.get("address")
                .and_then(|a| a.get("postal_code"))
                .is_some_and(Value::is_string),
            "a string",
        ),
        // Both connectors leave a record's top-level nulls out.
        (
            "deleted_at",
            data.get("deleted_at").is_none_or(Value::is_string),
            "absent or a string",
        ),
    ];
    for (field, ok, expected) in converted {
        if !ok {
            return Err(format!(
                "the first record's {field} is not {expected} after normalisation: {}",
                Value::Object(data.clone())
            ));
        }
    }
    Ok(())
}

/// An order of wide.yaml, as served: nested customer and address, line items, totals.
fn order_record(message: &Value) -> Result<(), String> {
    data_of(message)?;
    let data = &message["record"]["data"];
    let nested = [
        "/customer/address/city",
        "/shipping_address/line1",
        "/line_items/0/sku",
        "/totals/total",
        "/metadata/channel",
    ];
    for pointer in nested {
        if data.pointer(pointer).is_none() {
            return Err(format!("the first order lacks {pointer}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::pages::{created_at, write_order, write_typed_record};
    use serde_json::json;

    fn record_message(data: Value) -> Value {
        json!({"type": "RECORD", "record": {"stream": "items", "data": data, "emitted_at": 0}})
    }

    fn state_message(stream_state: Value) -> Value {
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {
            "stream_descriptor": {"name": "items"}, "stream_state": stream_state}}})
    }

    #[test]
    fn the_final_state_must_be_the_latest_created_at_served() {
        let latest = latest_created_at(3_000).unwrap();
        assert_eq!(
            state_is_latest_created_at(&state_message(json!({"created_at": latest})), 3_000),
            Ok(())
        );
        // The end of the slice, or the latest of fewer records, is not it.
        for wrong in [json!({"created_at": "2026-12-06T20:00:00Z"}), json!({})] {
            let why = state_is_latest_created_at(&state_message(wrong), 3_000).unwrap_err();
            assert!(why.contains(&latest), "{why}");
        }
        let fewer = latest_created_at(100).unwrap();
        assert!(
            state_is_latest_created_at(&state_message(json!({"created_at": fewer})), 3_000)
                .is_err()
        );
    }

    #[test]
    fn a_typed_record_passes_only_once_normalised() {
        let mut out = Vec::new();
        write_typed_record(0, &mut out);
        let mut served: Value = serde_json::from_slice(&out).unwrap();
        assert!(normalised_record(&record_message(served.clone())).is_err());
        // What schema_normalization: Default makes of it, with the top-level null left out.
        served["score"] = json!(0.0);
        served["visits"] = json!(0);
        served["verified"] = json!(true);
        served["address"]["postal_code"] = json!("10000");
        served.as_object_mut().unwrap().remove("deleted_at");
        assert_eq!(normalised_record(&record_message(served.clone())), Ok(()));
        served["deleted_at"] = json!(created_at(1));
        assert_eq!(normalised_record(&record_message(served.clone())), Ok(()));
        served["visits"] = json!("0");
        let why = normalised_record(&record_message(served)).unwrap_err();
        assert!(why.contains("visits is not an integer"), "{why}");
    }

    #[test]
    fn an_order_must_keep_its_nested_fields() {
        let mut out = Vec::new();
        write_order(7, &mut out);
        let mut order: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(order_record(&record_message(order.clone())), Ok(()));
        order["line_items"] = json!([]);
        assert_eq!(
            order_record(&record_message(order)),
            Err("the first order lacks /line_items/0/sku".to_owned())
        );
    }

    #[test]
    fn cursor_pagination_reads_plain_records_and_baselines_read_as_many_as_a() {
        for scenario in SCENARIOS {
            if let Workload::Read {
                pagination,
                records,
                size,
                max_wall_vs_a,
                ..
            } = scenario.workload
            {
                if pagination == Pagination::Cursor {
                    assert_eq!(records, RecordShape::Plain, "{}", scenario.name);
                }
                if max_wall_vs_a.is_some() {
                    assert_eq!(size, ReadSize::Full, "{}", scenario.name);
                }
            }
        }
    }
}
