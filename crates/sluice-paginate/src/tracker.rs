//! Pagination resets: restarting a partition's pagination when the API asks for it
//! (`RESET_PAGINATION` from an error handler) or after a number of records
//! (`PaginationResetLimits`), as the reference's `PaginationTracker` does.

use crate::error::{BuildError, PaginateError};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;

/// A retriever's `pagination_reset`, built once per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaginationResetPolicy {
    /// `limits.number_of_records`: restart after this many records.
    pub record_limit: Option<u64>,
    /// `SPLIT_USING_CURSOR`: restart from the last cursor value the partition reached (the
    /// stream's cursor narrows the slice); `RESET` restarts the same slice.
    pub split_using_cursor: bool,
}

impl PaginationResetPolicy {
    /// Builds the policy of a retriever. `None` (no `pagination_reset`) still allows the restarts
    /// an error handler's `RESET_PAGINATION` asks for.
    ///
    /// `has_record_filter`: the reference rejects record limits on a stream with a record filter,
    /// since filtered records would not count.
    pub fn from_model(
        model: Option<&model::PaginationReset>,
        has_record_filter: bool,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let Some(model) = model else {
            return Ok(Self::default());
        };
        let limit = model
            .limits
            .as_ref()
            .and_then(|limits| limits.number_of_records);
        if model.limits.is_some() && has_record_filter {
            return Err(BuildError::Invalid {
                path: path.key("limits").to_string(),
                message: "PaginationResetLimits are not supported while having record filter."
                    .to_owned(),
            });
        }
        let record_limit = limit
            .map(|n| {
                u64::try_from(n).map_err(|_| BuildError::Invalid {
                    path: path.key("limits").key("number_of_records").to_string(),
                    message: format!("number_of_records must not be negative, got {n}"),
                })
            })
            .transpose()?;
        Ok(Self {
            record_limit,
            split_using_cursor: model.action == model::PaginationResetAction::SplitUsingCursor,
        })
    }

    /// A tracker for one partition. `cursor_narrows_slice`: whether the stream has a cursor that
    /// can narrow the slice to what is left (only with `SPLIT_USING_CURSOR` and a datetime or
    /// per-partition cursor, as in the reference).
    pub fn tracker(&self, cursor_narrows_slice: bool) -> PaginationTracker {
        let with_cursor = self.split_using_cursor && cursor_narrows_slice;
        PaginationTracker {
            record_limit: self.record_limit,
            records: 0,
            // With a cursor a restart must make progress; without one it is a retry, allowed once.
            allowed_attempts_with_same_slice: if with_cursor { 1 } else { 2 },
            attempts_with_same_slice: 0,
        }
    }
}

/// Counts a partition's records between pagination restarts and refuses to restart the same
/// slice forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaginationTracker {
    record_limit: Option<u64>,
    records: u64,
    allowed_attempts_with_same_slice: u32,
    attempts_with_same_slice: u32,
}

impl PaginationTracker {
    /// Counts one record the partition emitted.
    pub fn observe(&mut self) {
        self.records += 1;
    }

    /// Whether the record limit is reached, so the pagination must restart before the next page.
    pub fn has_reached_limit(&self) -> bool {
        self.record_limit.is_some_and(|limit| self.records >= limit)
    }

    /// Records a restart. `slice_unchanged`: whether the slice the partition restarts with is the
    /// one it was reading (no cursor, or the cursor could not narrow it). Fails once the same
    /// slice was restarted as often as allowed.
    pub fn restart(&mut self, slice_unchanged: bool) -> Result<(), PaginateError> {
        if slice_unchanged {
            self.attempts_with_same_slice += 1;
            if self.attempts_with_same_slice >= self.allowed_attempts_with_same_slice {
                return Err(PaginateError::SameSliceRetried {
                    attempts: self.attempts_with_same_slice,
                    allowed: self.allowed_attempts_with_same_slice,
                });
            }
        } else {
            self.attempts_with_same_slice = 0;
        }
        self.records = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(action: model::PaginationResetAction, limit: Option<i64>) -> model::PaginationReset {
        model::PaginationReset {
            action,
            limits: limit.map(|n| model::PaginationResetLimits {
                number_of_records: Some(n),
            }),
        }
    }

    #[test]
    fn without_a_model_a_restart_of_the_same_slice_is_allowed_once() {
        let policy = PaginationResetPolicy::from_model(None, false, &ManifestPath::root()).unwrap();
        let mut tracker = policy.tracker(true);
        assert!(!tracker.has_reached_limit());
        assert!(tracker.restart(true).is_ok());
        let error = tracker.restart(true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "there were 2 attempts with the same slice already while the max allowed is 2"
        );
    }

    #[test]
    fn record_limit_triggers_and_restart_counts_again() {
        let model = reset(model::PaginationResetAction::Reset, Some(3));
        let policy =
            PaginationResetPolicy::from_model(Some(&model), false, &ManifestPath::root()).unwrap();
        let mut tracker = policy.tracker(true);
        for _ in 0..3 {
            assert!(!tracker.has_reached_limit());
            tracker.observe();
        }
        assert!(tracker.has_reached_limit());
        tracker.restart(false).unwrap();
        assert!(!tracker.has_reached_limit());
    }

    #[test]
    fn split_using_cursor_needs_progress_on_every_restart() {
        let model = reset(model::PaginationResetAction::SplitUsingCursor, Some(10));
        let policy =
            PaginationResetPolicy::from_model(Some(&model), false, &ManifestPath::root()).unwrap();
        let mut with_cursor = policy.tracker(true);
        with_cursor.restart(false).unwrap();
        with_cursor.restart(false).unwrap();
        assert!(with_cursor.restart(true).is_err());
        // Without a cursor able to narrow the slice it behaves like RESET.
        let mut without_cursor = policy.tracker(false);
        assert!(without_cursor.restart(true).is_ok());
    }

    #[test]
    fn limits_are_rejected_with_a_record_filter() {
        let model = reset(model::PaginationResetAction::Reset, Some(10));
        let path = ManifestPath::parse("streams[0].retriever.pagination_reset");
        let error = PaginationResetPolicy::from_model(Some(&model), true, &path).unwrap_err();
        assert_eq!(
            error.to_string(),
            "streams[0].retriever.pagination_reset.limits: PaginationResetLimits are not supported while having record filter."
        );
    }
}
