//! Partition routers, incremental cursors and stream state of declarative sources, matching the
//! Python reference (airbyte-cdk 7.39.1).
//!
//! A stream is read slice by slice. A [`StreamSlice`] pairs a partition (from a partition router:
//! a list of values, the records of a parent stream, or their cartesian product) with a cursor
//! window (from an incremental cursor). This crate builds those pieces from the manifest's typed
//! model and keeps the state they advance; the engine reads the slices and reports what it read.
//! It does no I/O: the records of a parent stream are handed to [`ParentConfig`] by the engine.
//!
//! ```
//! use serde_json::{Map, Value, json};
//! use sluice_manifest::{ManifestPath, model};
//! use sluice_slice::{DatetimeSpec, SliceProgress};
//! use std::sync::Arc;
//!
//! let cursor: model::DatetimeBasedCursor = model::FromNode::from_node(
//!     &json!({
//!         "type": "DatetimeBasedCursor",
//!         "cursor_field": "updated_at",
//!         "datetime_format": "%Y-%m-%d",
//!         "start_datetime": "2024-01-01",
//!         "end_datetime": "2024-01-03",
//!         "step": "P1D",
//!         "cursor_granularity": "P1D"
//!     }),
//!     &ManifestPath::root(),
//! )?;
//! let config = Arc::new(json!({}));
//! let spec = Arc::new(DatetimeSpec::from_model(&cursor, "events", &config, &ManifestPath::parse("incremental_sync"))?);
//! let mut cursor = spec.cursor(&Map::new())?;
//! let windows = cursor.windows()?;
//! // Day-long windows; the last one ends at the end date.
//! assert_eq!(windows.len(), 2);
//! assert_eq!(Value::Object(windows[0].clone()), json!({"start_time": "2024-01-01", "end_time": "2024-01-01"}));
//! assert_eq!(Value::Object(windows[1].clone()), json!({"start_time": "2024-01-02", "end_time": "2024-01-03"}));
//!
//! // The first day is read: its newest record becomes the state.
//! let mut progress = SliceProgress::default();
//! cursor.observe(&mut progress, &json!({"id": 1, "updated_at": "2024-01-01"}));
//! cursor.close(&windows[0], &progress)?;
//! assert_eq!(Value::Object(cursor.state()), json!({"updated_at": "2024-01-01"}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clamping;
mod cursor;
pub mod datetime;
mod error;
pub mod lint;
mod per_partition;
mod router;
mod slice;

pub use cursor::{CountCursor, CountSpec, DatetimeCursor, DatetimeSpec, SliceProgress};
pub use error::SliceError;
pub use per_partition::{MAX_PARTITION_CURSORS, PerPartitionCursor, SWITCH_TO_GLOBAL_LIMIT};
pub use router::{
    CHILD_RESPONSE, GroupingRouter, ListRouter, ParentConfig, UnionRouter, cartesian_product,
    migrate_legacy_to_per_partition,
};
pub use slice::{StreamSlice, partition_key};

/// Component types this crate builds; the engine and `sluice validate` accept them.
pub const SUPPORTED_COMPONENTS: &[&str] = &[
    "DatetimeBasedCursor",
    "MinMaxDatetime",
    "IncrementingCountCursor",
    "ListPartitionRouter",
    "SubstreamPartitionRouter",
    "ParentStreamConfig",
    "GroupingPartitionRouter",
    "UnionPartitionRouter",
    "LegacyToPerPartitionStateMigration",
    "Clamping",
];
