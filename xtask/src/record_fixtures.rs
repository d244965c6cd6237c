//! `cargo xtask record-fixtures --manifest M --config C [--catalog K] [--state S] --out DIR`:
//! runs sluice against the live API (or any local server the manifest points at) with
//! `--record-cassette`, and writes a conformance case: the cassette and the inputs, with every
//! config value the spec marks `airbyte_secret` (or held under a credential's name, see
//! `config_secrets`) replaced by the placeholder in both.

use crate::workspace;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use sluice_http::cassette::{Cassette, config_secrets, redact_config};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The connector manifest (YAML).
    #[arg(long)]
    manifest: PathBuf,
    /// The config, with real credentials (they never reach the output).
    #[arg(long)]
    config: PathBuf,
    /// The configured catalog; default: every stream sluice discovers, in full refresh.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Input state for an incremental read.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The case directory to write, e.g. fixtures/conformance/my-case.
    #[arg(long)]
    out: PathBuf,
    /// One line saying what the case shows (written to case.json when it does not exist yet).
    #[arg(long, default_value = "")]
    description: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let manifest_text = read(&args.manifest)?;
    let manifest: Value = serde_norway::from_str(&manifest_text)
        .with_context(|| format!("{} is not a YAML mapping", args.manifest.display()))?;
    let connection_spec = manifest
        .pointer("/spec/connection_specification")
        .cloned()
        .unwrap_or(Value::Null);
    let mut config: Value = serde_json::from_str(&read(&args.config)?)
        .with_context(|| format!("{} is not JSON", args.config.display()))?;
    let secrets = config_secrets(&connection_spec, &config);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let out = args.out.canonicalize()?;
    let catalog = match &args.catalog {
        Some(path) => path.clone(),
        None => {
            let path = out.join("catalog.json");
            write_default_catalog(args, &path)?;
            path
        }
    };

    let cassette_path = out.join("cassette.json");
    let mut sluice = sluice_command();
    sluice
        .arg("read")
        .arg("--manifest")
        .arg(&args.manifest)
        .arg("--config")
        .arg(&args.config);
    sluice
        .arg("--catalog")
        .arg(&catalog)
        .arg("--record-cassette")
        .arg(&cassette_path);
    if let Some(state) = &args.state {
        sluice.arg("--state").arg(state);
    }
    let status = sluice.status().context("cannot run sluice")?;
    if !status.success() {
        eprintln!(
            "sluice exited with {status}; the cassette keeps what it recorded, which may be what the case shows"
        );
    }

    // sluice redacts when it writes; doing it again here keeps the promise even if it did not.
    let mut cassette = Cassette::load(&cassette_path).with_context(
        || "sluice wrote no readable cassette (does it support --record-cassette?)",
    )?;
    cassette.redact(&secrets);
    cassette.save(&cassette_path)?;

    redact_config(&connection_spec, &mut config);
    write(&out.join("config.json"), &pretty(&config)?)?;
    write(&out.join("manifest.yaml"), &manifest_text)?;
    if catalog != out.join("catalog.json") {
        write(&out.join("catalog.json"), &read(&catalog)?)?;
    }
    if let Some(state) = &args.state {
        write(&out.join("state.json"), &read(state)?)?;
    }
    let case_json = out.join("case.json");
    if !case_json.exists() {
        write(
            &case_json,
            &pretty(&json!({"description": args.description, "commands": ["read"]}))?,
        )?;
    }
    println!(
        "wrote case {} ({} exchanges). Record the reference's output with `cargo xtask conformance --record --case {}`",
        out.display(),
        cassette.exchanges.len(),
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    Ok(())
}

fn sluice_command() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "run",
            "--quiet",
            "-p",
            "sluice-runner",
            "--bin",
            "sluice",
            "--",
        ])
        .current_dir(workspace::root());
    command
}

/// Every stream sluice discovers, in full refresh.
fn write_default_catalog(args: &Args, path: &Path) -> anyhow::Result<()> {
    let output = sluice_command()
        .arg("discover")
        .arg("--manifest")
        .arg(&args.manifest)
        .arg("--config")
        .arg(&args.config)
        .output()
        .context("cannot run sluice discover")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(catalog) = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|message| message["type"] == "CATALOG")
    else {
        bail!(
            "sluice discover gave no catalog: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let streams: Vec<Value> = catalog["catalog"]["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|stream| json!({"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}))
        .collect();
    write(path, &pretty(&json!({"streams": streams}))?)
}

fn pretty(value: &Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
