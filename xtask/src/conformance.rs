//! `cargo xtask conformance [--record] [--case NAME]`.
//!
//! With `--record`, runs the reference (`source-declarative-manifest` of airbyte-cdk 7.39.1)
//! on every case under `fixtures/conformance/` against the case's cassette, served by the
//! fixture server with the manifest's hosts rewritten to it, and stores the normalised output
//! as the case's `expected.json`. Without it, runs sluice on every case (offline, `--replay`) and
//! prints a table of which commands match. The layout of a case is in `fixtures/README.md`.

#[path = "../../crates/sluice-runner/tests/it/normalise.rs"]
pub mod normalise;

use crate::reference::installed_cdk_version;
use crate::serve_fixtures::FixtureServer;
use crate::workspace;
use anyhow::{Context, bail};
use normalise::{CaseSpec, diff, normalise};
use serde_json::{Map, Value, json};
use sluice_http::cassette::Cassette;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The reference version expectations are recorded from.
const REFERENCE_VERSION: &str = "7.39.1";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Record expected.json from the reference instead of checking sluice.
    #[arg(long)]
    record: bool,
    /// Only this case (directory name under fixtures/conformance/); repeatable.
    #[arg(long = "case")]
    cases: Vec<String>,
    /// The reference's virtualenv (created with airbyte-cdk 7.39.1 if missing). Default:
    /// /tmp/ref when it already has that version, else target/ref-venv.
    #[arg(long)]
    venv: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let cases = case_dirs(&args.cases)?;
    if args.record {
        record_all(args, &cases)
    } else {
        check_all(&cases)
    }
}

pub fn cases_root() -> PathBuf {
    workspace::root().join("fixtures/conformance")
}

fn case_dirs(only: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let root = cases_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    if !only.is_empty() {
        for name in only {
            if !dirs.iter().any(|d| d.ends_with(name)) {
                bail!(
                    "no case {name} under {} (a case is a directory with a case.json)",
                    root.display()
                );
            }
        }
        dirs.retain(|d| only.iter().any(|name| d.ends_with(name)));
    }
    Ok(dirs)
}

pub fn case_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn load_spec(dir: &Path) -> anyhow::Result<CaseSpec> {
    let text = std::fs::read_to_string(dir.join("case.json"))
        .with_context(|| format!("cannot read {}", dir.join("case.json").display()))?;
    CaseSpec::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))
}

/// Output of one connector run.
struct Output {
    stdout: String,
    stderr: String,
    success: bool,
}

fn run_command(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    Ok(Output {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
    })
}

// ---------------------------------------------------------------------------------------------
// Checking sluice

fn check_all(cases: &[PathBuf]) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "sluice-runner", "--bin", "sluice"])
        .current_dir(workspace::root())
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("building sluice failed");
    }
    let sluice = workspace::target_dir().join("debug/sluice");
    let mut matched = 0usize;
    let mut total = 0usize;
    let mut pending = 0usize;
    println!("{:<40} {:<9} result", "case", "command");
    for dir in cases {
        let spec = load_spec(dir)?;
        // A case marked `pending` needs components sluice does not run yet (the test checks the
        // mark is not stale); it is listed, not compared.
        if let Some(reason) = pending_reason(dir) {
            pending += 1;
            println!("{:<40} {:<9} PENDING: {reason}", case_name(dir), "-");
            continue;
        }
        let expected: Option<Value> = std::fs::read_to_string(dir.join("expected.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        // sluice writes a migrated config back to its file, as the reference does: each command
        // gets a fresh copy of the case's config.
        let scratch = workspace::target_dir()
            .join("conformance-check")
            .join(case_name(dir));
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let config = scratch.join("config.json");
        for command in &spec.commands {
            total += 1;
            let verdict = match expected.as_ref().and_then(|e| e.get(command)) {
                None => "NOT RECORDED (run with --record)".to_owned(),
                Some(expected) => {
                    std::fs::copy(dir.join("config.json"), &config)
                        .with_context(|| format!("cannot copy {}", dir.display()))?;
                    let output = run_command(
                        Command::new(&sluice).args(sluice_args(dir, &config, command)),
                    )?;
                    let actual =
                        normalise(command, &output.stdout, output.success, spec.record_order);
                    let differences = diff(expected, &actual, 3);
                    if differences.is_empty() {
                        matched += 1;
                        "match".to_owned()
                    } else {
                        format!("DIFFERS: {}", differences.join(" | "))
                    }
                }
            };
            println!("{:<40} {:<9} {verdict}", case_name(dir), command);
        }
    }
    println!("\n{matched} of {total} case commands match the reference; {pending} cases pending");
    if matched != total {
        bail!(
            "{} case commands differ from the reference",
            total - matched
        );
    }
    Ok(())
}

/// The case's `pending` mark: why sluice cannot run it yet.
pub fn pending_reason(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("case.json")).ok()?;
    let spec: Value = serde_json::from_str(&text).ok()?;
    spec.get("pending")?.as_str().map(str::to_owned)
}

/// sluice's arguments for a case command, with the case's config copied to `config` (the
/// conformance test passes the same).
fn sluice_args(dir: &Path, config: &Path, command: &str) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        command.to_owned(),
        "--manifest".into(),
        path("manifest.yaml"),
        "--config".into(),
        config.display().to_string(),
    ];
    if command == "read" {
        args.extend(["--catalog".into(), path("catalog.json")]);
        if dir.join("state.json").exists() {
            args.extend(["--state".into(), path("state.json")]);
        }
    }
    args.extend(["--replay".into(), path("cassette.json")]);
    args
}

// ---------------------------------------------------------------------------------------------
// Recording the reference

fn record_all(args: &Args, cases: &[PathBuf]) -> anyhow::Result<()> {
    let venv = reference_venv(args.venv.as_deref())?;
    let entrypoint = venv.join("bin/source-declarative-manifest");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut failures = Vec::new();
    for dir in cases {
        let name = case_name(dir);
        match runtime.block_on(record_case(&entrypoint, dir)) {
            Ok(summary) => println!("recorded {name}: {summary}"),
            Err(e) => {
                eprintln!("FAILED {name}: {e:#}");
                failures.push(name);
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "could not record {} case(s): {}",
            failures.len(),
            failures.join(", ")
        );
    }
    Ok(())
}

/// The venv holding the reference: `--venv`, else /tmp/ref if it has the right version, else
/// target/ref-venv (created and installed on first use).
fn reference_venv(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => vec![path.to_owned()],
        None => vec![
            PathBuf::from("/tmp/ref"),
            workspace::root().join("target/ref-venv"),
        ],
    };
    for venv in &candidates {
        if installed_cdk_version(venv).as_deref() == Some(REFERENCE_VERSION) {
            return Ok(venv.clone());
        }
    }
    let venv = candidates.last().cloned().context("no venv candidate")?;
    eprintln!(
        "creating {} with airbyte-cdk=={REFERENCE_VERSION} (needs network once)",
        venv.display()
    );
    let created = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .context("cannot run python3")?;
    if !created.success() {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            &format!("airbyte-cdk=={REFERENCE_VERSION}"),
        ])
        .status()
        .context("cannot run pip")?;
    if !installed.success() || installed_cdk_version(&venv).as_deref() != Some(REFERENCE_VERSION) {
        bail!(
            "installing airbyte-cdk {REFERENCE_VERSION} into {} failed",
            venv.display()
        );
    }
    Ok(venv)
}

async fn record_case(entrypoint: &Path, dir: &Path) -> anyhow::Result<String> {
    let spec = load_spec(dir)?;
    let cassette = Cassette::load(&dir.join("cassette.json"))?;
    let work = workspace::root()
        .join("target/conformance-record")
        .join(case_name(dir));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    let mut expected = Map::new();
    for command in &spec.commands {
        // A fresh server per command, so "answer in recorded order" starts over each time.
        let server = FixtureServer::start(cassette.clone(), 0).await?;
        let rewriter = server.rewriter();
        // Written afresh for every run of the reference: it writes a migrated config back.
        let write_inputs = || -> anyhow::Result<()> {
            for name in ["manifest.yaml", "config.json"] {
                let text = std::fs::read_to_string(dir.join(name))
                    .with_context(|| format!("cannot read {}", dir.join(name).display()))?;
                std::fs::write(work.join(name), rewriter.rewrite(&text))?;
            }
            Ok(())
        };
        write_inputs()?;
        let mut process = Command::new(entrypoint);
        process.arg(command);
        process.arg("--config").arg(work.join("config.json"));
        process
            .arg("--manifest-path")
            .arg(work.join("manifest.yaml"));
        if command == "read" {
            if !dir.join("catalog.json").exists() {
                write_default_catalog(entrypoint, dir, &work)?;
                write_inputs()?;
            }
            process.arg("--catalog").arg(dir.join("catalog.json"));
            if dir.join("state.json").exists() {
                process.arg("--state").arg(dir.join("state.json"));
            }
        }
        // The reference must talk to the local server only, never through a proxy.
        process
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        let output = tokio::task::spawn_blocking(move || run_command(&mut process)).await??;
        let misses = server.unmatched();
        if !misses.is_empty() {
            bail!(
                "{command}: the cassette does not answer every request of the reference:\n  {}",
                misses.join("\n  ")
            );
        }
        let stdout = rewriter.restore(&output.stdout);
        let normalised = normalise(command, &stdout, output.success, spec.record_order);
        if normalised["exit"] == "nonzero"
            && normalised["errors"].as_array().is_some_and(Vec::is_empty)
        {
            let tail: Vec<&str> = output
                .stderr
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "{command}: the reference failed without an ERROR trace:\n{}",
                tail.join("\n")
            );
        }
        expected.insert(command.clone(), normalised);
    }
    let summary = summarise(&expected);
    let mut text = serde_json::to_string_pretty(&Value::Object(expected))?;
    text.push('\n');
    std::fs::write(dir.join("expected.json"), text)?;
    Ok(summary)
}

/// A catalog of every stream the reference discovers, each in full refresh.
fn write_default_catalog(entrypoint: &Path, dir: &Path, work: &Path) -> anyhow::Result<()> {
    let output = run_command(
        Command::new(entrypoint)
            .arg("discover")
            .arg("--config")
            .arg(work.join("config.json"))
            .arg("--manifest-path")
            .arg(work.join("manifest.yaml")),
    )?;
    let catalog = output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|m| m["type"] == "CATALOG")
        .with_context(|| {
            format!(
                "the reference's discover gave no catalog:\n{}",
                output.stderr
            )
        })?;
    let streams: Vec<Value> = catalog["catalog"]["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|stream| json!({"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}))
        .collect();
    let mut text = serde_json::to_string_pretty(&json!({"streams": streams}))?;
    text.push('\n');
    std::fs::write(dir.join("catalog.json"), text)?;
    println!(
        "wrote {} (every discovered stream, full refresh)",
        dir.join("catalog.json").display()
    );
    Ok(())
}

fn summarise(expected: &Map<String, Value>) -> String {
    let parts: Vec<String> = expected
        .iter()
        .map(|(command, out)| {
            let detail = match command.as_str() {
                "read" => {
                    let records: usize = out["records"].as_object().map_or(0, |m| {
                        m.values().filter_map(Value::as_array).map(Vec::len).sum()
                    });
                    format!("{records} records")
                }
                "check" => out["status"].as_str().unwrap_or("no status").to_owned(),
                _ => format!("{} streams", out["streams"].as_array().map_or(0, Vec::len)),
            };
            let errors = out["errors"].as_array().map_or(0, Vec::len);
            format!(
                "{command} exit {} ({detail}, {errors} errors)",
                out["exit"].as_str().unwrap_or("?")
            )
        })
        .collect();
    parts.join("; ")
}
