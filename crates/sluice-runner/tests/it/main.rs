//! Integration tests of sluice-runner, in one binary so the workspace links (and stores) one test executable per crate.

mod as_sent;
mod bad_input;
mod bad_state;
mod checkpoints;
mod concurrency;
mod conformance;
mod control_message;
mod corpus_spec;
mod decoders_over_http;
mod dynamic_streams;
mod file_uploader;
mod first_read;
#[cfg(target_os = "linux")]
mod hostile;
mod kill_resume;
mod normalise;
mod output_channel;
mod parents_over_http;
mod partial_manifest;
mod preview;
#[cfg(target_os = "linux")]
mod progress;
mod prompt_output;
mod readme;
mod secrets;
mod support;
