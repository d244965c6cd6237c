//! Records out of responses: decoding bodies, extracting records at a path, and (later) the
//! record filter, transformations and schema normalisation of a manifest's RecordSelector.
//!
//! Records are moved out of the decoded body, never copied.
//!
//! ```
//! use sluice_records::{DpathExtractor, decode_json_bodies};
//! let bodies = decode_json_bodies(br#"{"data": {"users": [{"id": 1}, {"id": 2}]}}"#);
//! let extractor = DpathExtractor::new(vec!["data".into(), "users".into()]);
//! let mut records = Vec::new();
//! for body in bodies {
//!     extractor.extract(body, &mut records);
//! }
//! assert_eq!(records.len(), 2);
//! assert_eq!(records[1]["id"], 2);
//! ```

mod decode;
mod extract;

pub use decode::decode_json_bodies;
pub use extract::DpathExtractor;
