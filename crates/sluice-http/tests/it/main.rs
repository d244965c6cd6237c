//! Integration tests of sluice-http, in one binary so the workspace links (and stores) one test executable per crate.

mod auth_oauth;
mod auth_rate_limited;
mod auth_session;
mod auth_static;
mod auth_support;
mod errors_retries;
mod proxy;
mod requester_options;
