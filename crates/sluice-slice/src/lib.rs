//! Partition routers, incremental cursors and stream state of declarative sources, matching the
//! Python reference (airbyte-cdk 7.39.1).
// (crate docs are completed with the public API)

pub mod datetime;
