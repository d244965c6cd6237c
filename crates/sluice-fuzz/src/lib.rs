//! Fuzz targets over everything sluice reads from outside: manifests, templates, rendered
//! literals, datetime formats, response bodies, paginated responses, state, configs and
//! cassettes.
//!
//! Each target is a function taking arbitrary bytes that drives the public API of the crate
//! concerned the way sluice uses it. A target never panics: bad input gives an `Err` somewhere
//! inside and the target returns. The same functions run three ways:
//!
//! - under libFuzzer, through the cargo-fuzz project in `fuzz/` (`cargo xtask fuzz`);
//! - as property tests on stable (`tests/`), with generated inputs, on every `cargo test`;
//! - on a crashing input kept as a regression test.
//!
//! [`seeds`] makes each target's seed corpus from the conformance cases.
//!
//! An input with several parts joins them with [`SEPARATOR`], a byte that never occurs in
//! UTF-8 text, so each text part stays text when a fuzzer mutates the bytes around it:
//!
//! ```
//! use sluice_fuzz::{SEPARATOR, join, target};
//!
//! // `datetime` takes a format and a text to parse with it.
//! let input = join(&[b"%Y-%m-%d", b"2024-02-30"]);
//! assert_eq!(input[8], SEPARATOR);
//! (target("datetime").unwrap().run)(&input);
//!
//! for target in sluice_fuzz::TARGETS {
//!     (target.run)(b"");
//! }
//! ```

mod cases;
mod inputs;
mod records;
pub mod seeds;
mod source;
mod text;
mod wire;

pub use inputs::{SEPARATOR, join};
pub use records::DECODER_KINDS;

/// One fuzz target: the name `cargo xtask fuzz` and the corpus folder use, and its function.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The target's name (also the name of its `fuzz/fuzz_targets/<name>.rs`).
    pub name: &'static str,
    /// What the input bytes are.
    pub input: &'static str,
    /// Runs the input; never panics.
    pub run: fn(&[u8]),
}

/// Every fuzz target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "manifest",
        input: "manifest YAML",
        run: manifest,
    },
    Target {
        name: "template",
        input: "template source, SEPARATOR, JSON object of context variables",
        run: template,
    },
    Target {
        name: "literal",
        input: "rendered text to literal-evaluate",
        run: literal,
    },
    Target {
        name: "datetime",
        input: "datetime format, SEPARATOR, text to parse",
        run: datetime,
    },
    Target {
        name: "records",
        input: "decoder kind byte, flags byte, field path (`/` between keys), SEPARATOR, response body",
        run: records,
    },
    Target {
        name: "paginator",
        input: "record count byte, paginator JSON, SEPARATOR, headers (`Name: value` lines), SEPARATOR, response body",
        run: paginator,
    },
    Target {
        name: "state",
        input: "conformance case name, newline, input state JSON",
        run: state,
    },
    Target {
        name: "config",
        input: "conformance case name, newline, config JSON",
        run: config,
    },
    Target {
        name: "cassette",
        input: "cassette JSON",
        run: cassette,
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A manifest's YAML: loaded (references, `$parameters`, default types, the typed model), its
/// errors located in the text, then built into a [`sluice_engine::Source`] with a sample config.
pub fn manifest(data: &[u8]) {
    source::manifest(data);
}

/// A template compiled and rendered over a context of random variables, as a string, a
/// condition and with a default.
pub fn template(data: &[u8]) {
    text::template(data);
}

/// Rendered template output literal-evaluated as Python's `ast.literal_eval`, for every
/// `valid_types` a manifest field asks for.
pub fn literal(data: &[u8]) {
    text::literal(data);
}

/// A datetime format and a text: parsed and formatted by the cursor's formats, `strptime`,
/// `strftime`, ISO durations and the datetime macros of templates.
pub fn datetime(data: &[u8]) {
    text::datetime(data);
}

/// A response body through one of the decoders (JSON, JSON lines, CSV, XML, gzip, zip, ...),
/// then the extractor, filter, transformations and normalisation, and the records written as
/// the reference prints them.
pub fn records(data: &[u8]) {
    records::records(data);
}

/// A paginator built from its JSON, asked for the next pages of a response with random
/// headers and body.
pub fn paginator(data: &[u8]) {
    wire::paginator(data);
}

/// An input state given to a `read` of an incremental conformance case, replayed from its
/// cassette.
pub fn state(data: &[u8]) {
    source::state(data);
}

/// A config given to a conformance case's manifest: migrated, transformed and validated against
/// its spec.
pub fn config(data: &[u8]) {
    source::config(data);
}

/// A cassette file: parsed, written back, redacted and replayed.
pub fn cassette(data: &[u8]) {
    wire::cassette(data);
}
