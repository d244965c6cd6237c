//! Integration tests of sluice-slice.
