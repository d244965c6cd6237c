//! Concurrent reads: limits honoured, no deadlock, one writer (being written).
