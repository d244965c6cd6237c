//! `cargo xtask gen-model`: generate the typed manifest model from the component schema.
//!
//! The reference generates its pydantic models from the same schema; this does the same for
//! Rust: one struct per object definition, one enum per union and per string enum, each with a
//! `FromNode` impl that reads the resolved manifest tree with errors naming the path.

mod build;
mod docs;
mod emit;
mod ir;
mod names;

use crate::workspace;
use anyhow::{Context, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the generated model goes, relative to the workspace root.
pub const OUTPUT: &str = "crates/sluice-manifest/src/model/generated.rs";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component schema (YAML). Default: ../shared/reference/declarative_component_schema.yaml
    /// relative to the workspace root.
    schema: Option<PathBuf>,
    /// Only check that the committed file is current; exit non-zero when it is stale.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = workspace::root();
    let schema_path = args
        .schema
        .clone()
        .unwrap_or_else(|| root.join("../shared/reference/declarative_component_schema.yaml"));
    let source = generate(&schema_path)?;
    workspace::write_or_check(
        &root.join(OUTPUT),
        &source,
        args.check,
        "cargo xtask gen-model",
    )
}

/// The formatted source of the model generated from the schema file.
pub fn generate(schema_path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(schema_path)
        .with_context(|| format!("cannot read the schema {}", schema_path.display()))?;
    let schema: serde_json::Value = serde_norway::from_str(&text)
        .with_context(|| format!("{} is not valid YAML", schema_path.display()))?;
    let mut notes = Vec::new();
    let model = build::build(&schema, &mut notes)?;
    for note in &notes {
        eprintln!("note: {note} (name it in xtask/src/gen_model/names.rs)");
    }
    let file_name = schema_path.file_name().map_or_else(
        || "the component schema".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    rustfmt(&emit::emit(&model, &file_name))
}

/// Formats with the workspace's rustfmt settings.
fn rustfmt(source: &str) -> anyhow::Result<String> {
    let config = workspace::root().join("rustfmt.toml");
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run rustfmt (install it with `rustup component add rustfmt`)")?;
    child
        .stdin
        .take()
        .context("rustfmt has no stdin")?
        .write_all(source.as_bytes())
        .context("cannot send the source to rustfmt")?;
    let output = child.wait_with_output().context("rustfmt did not finish")?;
    if !output.status.success() {
        bail!(
            "rustfmt rejected the generated source:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("rustfmt printed invalid UTF-8")
}
