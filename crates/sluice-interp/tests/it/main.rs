//! Integration tests of sluice-interp, in one binary so the workspace links (and stores) one test executable per crate.

mod corpus;
mod projection;
mod reference;
