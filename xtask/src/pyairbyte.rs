//! `cargo xtask pyairbyte`: reads a conformance case through sluice with PyAirbyte, into
//! PyAirbyte's default (DuckDB) cache, and compares what the cache holds with the case's
//! expected records.
//!
//! This is the path a PyAirbyte user takes: `ab.get_source(..., local_executable=sluice)` with the
//! manifest in the config's `__injected_declarative_manifest`. PyAirbyte runs `spec`, `check`,
//! `discover` and `read` as separate processes, so sluice makes real HTTP requests, to the case's
//! cassette served on 127.0.0.1 (the serve-fixtures server). Installing PyAirbyte takes minutes
//! and about 800 MB, so this check is not part of CI; the venv is kept and reused.

use crate::serve_fixtures::FixtureServer;
use crate::workspace;
use anyhow::{Context, bail};
use serde_json::{Map, Value};
use sluice_http::cassette::Cassette;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The conformance case to read (a directory under fixtures/conformance).
    #[arg(long, default_value = "tiny_shop")]
    case: String,
    /// The venv to install PyAirbyte into (created when it lacks PyAirbyte);
    /// default: target/pyairbyte-venv.
    #[arg(long)]
    venv: Option<PathBuf>,
    /// The cargo profile to build sluice with.
    #[arg(long, default_value = "release")]
    profile: String,
}

/// The PyAirbyte side: argv = sluice, manifest, config, streams (JSON list), output file.
/// Datetimes come back from DuckDB as Python datetimes, naive ones in UTC: they are written as
/// ISO text with `Z`, as the case's sources send them, so records compare with the expected ones.
const READ_SCRIPT: &str = r#"
import datetime, decimal, json, sys
import yaml
import airbyte as ab

sluice, manifest_path, config_path, streams, out_path = sys.argv[1:6]
config = json.load(open(config_path))
config["__injected_declarative_manifest"] = yaml.safe_load(open(manifest_path))
source = ab.get_source(
    "source-sluice-check", config=config, local_executable=sluice, install_if_missing=False
)
source.check()
source.select_streams(json.loads(streams))
cache = ab.get_default_cache()
result = source.read(cache=cache)

def plain(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() == datetime.timedelta(0):
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value

records = {}
for name, dataset in result.streams.items():
    records[name] = [
        {k: plain(v) for k, v in dict(record).items() if not k.startswith("_airbyte_")}
        for record in dataset
    ]
json.dump(records, open(out_path, "w"), default=str)
"#;

pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = workspace::root();
    let case_dir = root.join("fixtures/conformance").join(&args.case);
    if !case_dir.join("cassette.json").exists() {
        bail!("{} has no cassette.json", case_dir.display());
    }
    let venv = args
        .venv
        .clone()
        .unwrap_or_else(|| workspace::target_dir().join("pyairbyte-venv"));
    let python = ensure_pyairbyte(&venv)?;
    let sluice = build_sluice(&args.profile)?;

    let work = workspace::target_dir()
        .join("pyairbyte-run")
        .join(&args.case);
    // A previous run's cache would hold its records and state: start from nothing.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    let streams = selected_streams(&case_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cassette = Cassette::load(&case_dir.join("cassette.json"))?;
    let server = runtime.block_on(FixtureServer::start(cassette, 0))?;
    let rewriter = server.rewriter();
    for name in ["manifest.yaml", "config.json"] {
        let text = std::fs::read_to_string(case_dir.join(name))
            .with_context(|| format!("cannot read {}", case_dir.join(name).display()))?;
        std::fs::write(work.join(name), rewriter.rewrite(&text))?;
    }
    std::fs::write(work.join("read.py"), READ_SCRIPT)?;

    println!(
        "reading {} through {} with PyAirbyte",
        args.case,
        sluice.display()
    );
    let read_started = Instant::now();
    let status = Command::new(&python)
        .arg(work.join("read.py"))
        .arg(&sluice)
        .arg(work.join("manifest.yaml"))
        .arg(work.join("config.json"))
        .arg(serde_json::to_string(&streams)?)
        .arg(work.join("records.json"))
        .current_dir(&work)
        // Without the registry (as here), PyAirbyte must not try to fetch connector metadata.
        .env("AIRBYTE_OFFLINE_MODE", "1")
        .env("DO_NOT_TRACK", "1")
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!("PyAirbyte's read failed ({status})");
    }
    let unmatched = server.unmatched();
    if !unmatched.is_empty() {
        bail!(
            "the cassette did not answer every request:\n  {}",
            unmatched.join("\n  ")
        );
    }
    let read_time = read_started.elapsed();

    let text = std::fs::read_to_string(work.join("records.json"))?;
    let got: Map<String, Value> = serde_json::from_str(&rewriter.restore(&text))
        .context("PyAirbyte's records are not JSON")?;
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case_dir.join("expected.json"))
            .context("the case has no expected.json")?,
    )?;
    let expected = expected["read"]["records"]
        .as_object()
        .context("expected.json has no read.records")?;
    let differences = compare(expected, &got);
    if !differences.is_empty() {
        bail!(
            "the cache does not hold the case's records:\n  {}",
            differences.join("\n  ")
        );
    }
    let total: usize = got
        .values()
        .map(|records| records.as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "ok: PyAirbyte's cache holds the {total} expected records of {} stream(s) (read in {:.1} s; {:.1} s in all)",
        got.len(),
        read_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The venv's python, after installing PyAirbyte into the venv if it lacks it.
fn ensure_pyairbyte(venv: &Path) -> anyhow::Result<PathBuf> {
    let python = venv.join("bin/python");
    let has_pyairbyte = |python: &Path| {
        Command::new(python)
            .args(["-c", "import airbyte"])
            .env("DO_NOT_TRACK", "1")
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if python.exists() && has_pyairbyte(&python) {
        return Ok(python);
    }
    println!(
        "installing PyAirbyte into {} (minutes, about 800 MB)",
        venv.display()
    );
    let started = Instant::now();
    run_checked(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    run_checked(Command::new(&python).args(["-m", "pip", "install", "--quiet", "airbyte"]))?;
    if !has_pyairbyte(&python) {
        bail!("PyAirbyte does not import after installing it");
    }
    println!(
        "installed PyAirbyte in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

fn build_sluice(profile: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(Command::new(cargo).current_dir(workspace::root()).args([
        "build",
        "--locked",
        "-p",
        "sluice-runner",
        "--profile",
        profile,
    ]))?;
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(workspace::target_dir().join(dir).join("sluice"))
}

fn run_checked(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// The streams the case's catalog selects (every stream of the manifest without a catalog is
/// not supported here: the case must have one).
fn selected_streams(case_dir: &Path) -> anyhow::Result<Vec<String>> {
    let path = case_dir.join("catalog.json");
    let catalog: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let streams: Vec<String> = catalog["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["stream"]["name"].as_str().map(str::to_owned))
        .collect();
    if streams.is_empty() {
        bail!("{} selects no stream", path.display());
    }
    Ok(streams)
}

/// A record's JSON with every object's keys sorted: the cache keeps a stream's columns in the
/// schema's order, not the order the record had.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Each stream's records compared as multisets (partitions interleave), in words.
fn compare(expected: &Map<String, Value>, got: &Map<String, Value>) -> Vec<String> {
    let sorted = |records: Option<&Value>| -> Vec<String> {
        let mut texts: Vec<String> = records
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(canonical)
            .collect();
        texts.sort();
        texts
    };
    let mut names: Vec<&String> = expected.keys().chain(got.keys()).collect();
    names.sort();
    names.dedup();
    let mut differences = Vec::new();
    for name in names {
        let want = sorted(expected.get(name));
        let have = sorted(got.get(name));
        if want == have {
            continue;
        }
        let missing = want.iter().find(|r| !have.contains(r));
        let extra = have.iter().find(|r| !want.contains(r));
        differences.push(format!(
            "{name}: expected {} records, the cache has {}{}{}",
            want.len(),
            have.len(),
            missing.map_or(String::new(), |r| format!("; missing {r}")),
            extra.map_or(String::new(), |r| format!("; unexpected {r}")),
        ));
    }
    differences
}
