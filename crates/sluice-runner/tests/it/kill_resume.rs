//! Killed syncs resume from their last STATE without losing a record (being written).
