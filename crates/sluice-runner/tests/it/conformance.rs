//! Conformance: sluice must give what the reference (airbyte-cdk 7.39.1) gave on every case
//! under `fixtures/conformance/`. Each case's `expected.json` was recorded from the reference by
//! `cargo xtask conformance --record`; here sluice runs offline against the case's cassette
//! (`--replay`) and its normalised output is compared. Set `SLUICE_CONFORMANCE_CASE=name` to run
//! one case. See `fixtures/README.md`.

use crate::normalise::{CaseSpec, diff, normalise};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A case that takes longer than this is stuck (replay never waits on the network).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/conformance")
}

/// The arguments sluice gets for `command` on the case in `dir`, with the case's config copied
/// to `config` (sluice writes a migrated config back to its file, as the reference does).
fn sluice_args(dir: &Path, config: &Path, command: &str) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        command.to_owned(),
        "--manifest".into(),
        path("manifest.yaml"),
    ];
    args.extend(["--config".into(), config.display().to_string()]);
    if command == "read" {
        args.extend(["--catalog".into(), path("catalog.json")]);
        if dir.join("state.json").exists() {
            args.extend(["--state".into(), path("state.json")]);
        }
    }
    args.extend(["--replay".into(), path("cassette.json")]);
    args
}

struct Run {
    stdout: String,
    stderr: String,
    success: bool,
}

fn run_sluice(args: &[String]) -> Result<Run, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start sluice: {e}"))?;
    // Drain both pipes on their own threads so a chatty run cannot block on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().ok_or("no stdout pipe")?));
    let stderr = drain(Box::new(child.stderr.take().ok_or("no stderr pipe")?));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("sluice did not finish within {CASE_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Run {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        success: status.success(),
    })
}

/// Runs every command of one case; returns the problems found (empty when it conforms).
fn check_case(dir: &Path) -> Vec<String> {
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let spec = match read("case.json").and_then(|text| CaseSpec::parse(&text)) {
        Ok(spec) => spec,
        Err(e) => return vec![e],
    };
    let expected: Value = match read("expected.json") {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(e) => return vec![format!("expected.json is not JSON: {e}")],
        },
        Err(_) => {
            return vec![
                "no expected.json: record it with `cargo xtask conformance --record --case <name>`"
                    .into(),
            ];
        }
    };
    let scratch = match tempfile::tempdir() {
        Ok(scratch) => scratch,
        Err(e) => return vec![format!("cannot make a scratch directory: {e}")],
    };
    let config = scratch.path().join("config.json");
    let mut problems = Vec::new();
    for command in &spec.commands {
        if let Err(e) = std::fs::copy(dir.join("config.json"), &config) {
            problems.push(format!("config.json: {e}"));
            break;
        }
        let Some(expected) = expected.get(command) else {
            problems.push(format!(
                "{command}: expected.json has no `{command}` entry; re-record the case"
            ));
            continue;
        };
        let run = match run_sluice(&sluice_args(dir, &config, command)) {
            Ok(run) => run,
            Err(e) => {
                problems.push(format!("{command}: {e}"));
                continue;
            }
        };
        let actual = normalise(command, &run.stdout, run.success, spec.record_order);
        let differences = diff(expected, &actual, 12);
        if !differences.is_empty() {
            problems.extend(differences.into_iter().map(|d| format!("{command}: {d}")));
            let tail: Vec<&str> = run.stderr.lines().rev().take(5).collect();
            if !tail.is_empty() {
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                problems.push(format!(
                    "{command}: sluice stderr (last lines):\n      {}",
                    tail.join("\n      ")
                ));
            }
        }
    }
    problems
}

/// The case's `pending` mark: why sluice cannot run it yet.
fn pending_reason(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("case.json")).ok()?;
    let spec: Value = serde_json::from_str(&text).ok()?;
    spec.get("pending")?.as_str().map(str::to_owned)
}

/// The components `sluice validate` says sluice cannot run in the case's manifest, if any.
fn refused_components(dir: &Path) -> Option<String> {
    let manifest = dir.join("manifest.yaml").display().to_string();
    let run = run_sluice(&["validate".to_owned(), "--manifest".to_owned(), manifest]).ok()?;
    if run.success {
        return None;
    }
    // Only missing components count: a build error against validate's sample config can come
    // from a fixture's minimal spec, and the case's real config is what the comparison uses.
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.ends_with("not supported by sluice yet") || l.ends_with("which sluice cannot run")
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

fn case_dirs() -> Vec<PathBuf> {
    let only = std::env::var("SLUICE_CONFORMANCE_CASE").ok();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("case.json").exists())
                .collect()
        })
        .unwrap_or_default();
    if let Some(only) = only {
        dirs.retain(|d| d.file_name().is_some_and(|n| n.to_string_lossy() == only));
    }
    dirs.sort();
    dirs
}

#[test]
fn sluice_matches_the_reference_on_every_case() {
    let dirs = case_dirs();
    assert!(
        !dirs.is_empty(),
        "no conformance cases found under {}",
        cases_dir().display()
    );
    let mut failed = Vec::new();
    let mut unsupported = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A case whose manifest sluice refuses to run (`sluice validate` names what is missing)
        // records behaviour still to build: it is listed, not compared. Every case sluice
        // claims to run must match.
        // Skipping is explicit: the case must say `"pending": "<why>"`, so a regression that makes
        // sluice refuse a manifest it used to run fails here instead of skipping silently.
        if let Some(missing) = refused_components(dir) {
            match pending_reason(dir) {
                Some(reason) => {
                    eprintln!("PENDING  {name}: {reason} (sluice refuses: {missing})");
                    unsupported.push(name);
                }
                None => {
                    eprintln!("REFUSED  {name}: {missing}");
                    failed.push(name);
                }
            }
            continue;
        }
        if let Some(reason) = pending_reason(dir) {
            eprintln!(
                "STALE    {name}: marked pending ({reason}) but sluice runs it: drop the mark"
            );
            failed.push(name);
            continue;
        }
        let problems = check_case(dir);
        if problems.is_empty() {
            eprintln!("ok       {name}");
        } else {
            eprintln!("MISMATCH {name}");
            for problem in &problems {
                eprintln!("    {problem}");
            }
            failed.push(name);
        }
    }
    eprintln!(
        "{} cases: {} match the reference, {} differ, {} need components sluice does not run yet",
        dirs.len(),
        dirs.len() - failed.len() - unsupported.len(),
        failed.len(),
        unsupported.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} conformance cases differ from the reference: {}",
        failed.len(),
        dirs.len(),
        failed.join(", ")
    );
}
