//! Datetime formats as the reference's `DatetimeParser` reads and writes them.
