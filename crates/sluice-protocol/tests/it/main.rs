//! Integration tests of sluice-protocol, in one binary so the workspace links (and stores) one test executable per crate.

mod inputs;
mod reference_output;
