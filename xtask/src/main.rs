//! Development tasks for the sluice workspace, run as `cargo xtask <task>`.
//!
//! Each task lives in its own module; this file only parses the command line and dispatches.

mod bench;
mod conformance;
mod fuzz;
mod gen_model;
mod gen_schema;
mod image;
mod pyairbyte;
mod record_fixtures;
mod reference;
mod serve_fixtures;
mod workspace;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Development tasks for the sluice workspace")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Generate the typed manifest model (crates/sluice-manifest/src/model/generated.rs)
    /// from the reference's declarative component schema.
    GenModel(gen_model::Args),
    /// Write the manifest JSON Schema (schemas/declarative_component_schema.json) from the model.
    GenSchema(gen_schema::Args),
    /// Serve a case's cassette over HTTP on 127.0.0.1, optionally writing its manifest and
    /// config with hosts rewritten to the server.
    ServeFixtures(serve_fixtures::Args),
    /// Check sluice against every conformance case, or (--record) record the reference's output.
    Conformance(conformance::Args),
    /// Record a new conformance case by running sluice against a live (or local) API.
    RecordFixtures(record_fixtures::Args),
    /// Benchmark sluice against the reference and a bare HTTP client on a local API server.
    Bench(bench::Args),
    /// Read a conformance case through sluice with PyAirbyte into its default cache and compare
    /// the cached records with the case's (installs PyAirbyte in a venv first; not run in CI).
    Pyairbyte(pyairbyte::Args),
    /// Fuzz sluice's inputs with cargo-fuzz on nightly, each target from its seed corpus (the
    /// stable property tests of sluice-fuzz instead when there is no nightly toolchain).
    Fuzz(fuzz::Args),
    /// Build the Airbyte platform image (an archive for `docker load` / `podman load`, and a
    /// Dockerfile), optionally testing it under chroot.
    Image(image::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::GenModel(args) => gen_model::run(&args),
        Task::GenSchema(args) => gen_schema::run(&args),
        Task::ServeFixtures(args) => serve_fixtures::run(&args),
        Task::Conformance(args) => conformance::run(&args),
        Task::RecordFixtures(args) => record_fixtures::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Pyairbyte(args) => pyairbyte::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Image(args) => image::run(&args),
    }
}
