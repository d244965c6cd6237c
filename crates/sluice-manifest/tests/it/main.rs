//! Integration tests of sluice-manifest, in one binary so the workspace links (and stores) one test executable per crate.

mod components;
mod corpus;
mod legacy;
mod propagate;
mod reference_trees;
mod resolve;
