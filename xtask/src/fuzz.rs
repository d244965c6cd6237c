//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs sluice-fuzz's targets under libFuzzer with
//! cargo-fuzz on a nightly toolchain, one after the other, each from its seed corpus (made from
//! the conformance cases), and prints what each reached. Without nightly it runs the same
//! targets as stable property tests instead.

use crate::workspace;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to run (every target in turn when absent).
    target: Option<String>,
    /// How long each target runs.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// What libFuzzer reported at the end of one target's run.
#[derive(Debug, Default)]
struct Outcome {
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus: Option<String>,
    crash: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let targets: Vec<&sluice_fuzz::Target> = match &args.target {
        Some(name) => vec![sluice_fuzz::target(name).with_context(|| {
            let names: Vec<&str> = sluice_fuzz::TARGETS.iter().map(|t| t.name).collect();
            format!(
                "no fuzz target {name:?}; the targets are {}",
                names.join(", ")
            )
        })?],
        None => sluice_fuzz::TARGETS.iter().collect(),
    };
    if !has_nightly() {
        println!(
            "no nightly toolchain (`rustup toolchain install nightly` gives one): running the \
             targets as stable property tests instead"
        );
        let status = Command::new("cargo")
            .args(["test", "--package", "sluice-fuzz"])
            .current_dir(workspace::root())
            .status()
            .context("cannot run cargo test")?;
        if !status.success() {
            bail!("the property tests of sluice-fuzz failed ({status})");
        }
        return Ok(());
    }
    ensure_cargo_fuzz()?;
    let project = workspace::root().join("crates/sluice-fuzz/fuzz");
    let lock = project.join("Cargo.lock");
    if !lock.exists() {
        // Build with the versions the workspace pins (cargo adds libFuzzer's own).
        std::fs::copy(workspace::root().join("Cargo.lock"), &lock)
            .with_context(|| format!("cannot write {}", lock.display()))?;
    }
    let fuzz_dir = workspace::target_dir().join("fuzz");
    let conformance = workspace::root().join("fixtures/conformance");

    let mut results = Vec::new();
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target.name);
        let seeds = sluice_fuzz::seeds::write_seeds(target.name, &conformance, &corpus)
            .with_context(|| format!("cannot write the seeds into {}", corpus.display()))?;
        println!(
            "fuzzing {} for {} s from {} ({seeds} seeds)",
            target.name,
            args.seconds,
            corpus.display()
        );
        let outcome = fuzz_one(&project, &fuzz_dir, target.name, &corpus, args.seconds)?;
        results.push((target.name, outcome));
    }

    println!();
    println!(
        "{:<10} {:>12} {:>8} {:>8} {:>8} {:<18} result",
        "target", "executions", "exec/s", "cov", "ft", "corpus"
    );
    let show = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    for (name, outcome) in &results {
        println!(
            "{:<10} {:>12} {:>8} {:>8} {:>8} {:<18} {}",
            name,
            show(outcome.executions),
            show(outcome.exec_per_sec),
            show(outcome.coverage),
            show(outcome.features),
            outcome.corpus.as_deref().unwrap_or("?"),
            outcome.crash.as_deref().unwrap_or("no crash"),
        );
    }
    let crashed = results.iter().filter(|(_, o)| o.crash.is_some()).count();
    if crashed > 0 {
        bail!(
            "{crashed} target(s) crashed; each crashing input is kept (see above): make it a regression test"
        );
    }
    Ok(())
}

fn has_nightly() -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if installed {
        return Ok(());
    }
    println!("installing cargo-fuzz");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!("`cargo install cargo-fuzz --locked` failed ({status})");
    }
    Ok(())
}

/// Runs one target for `seconds`; its log goes to `fuzz_dir/logs/TARGET.log`.
fn fuzz_one(
    project: &Path,
    fuzz_dir: &Path,
    target: &str,
    corpus: &Path,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_dir.join("logs");
    for dir in [&artifacts, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut artifact_prefix = artifacts.into_os_string();
    artifact_prefix.push("/");
    let status = Command::new("cargo")
        .arg("+nightly")
        .arg("fuzz")
        .arg("run")
        // sluice forbids unsafe code: AddressSanitizer would find little and halve the speed.
        // Overflow checks and debug assertions stay on (cargo-fuzz's default).
        .args(["--sanitizer", "none"])
        // Under the workspace's target dir, so one `cargo clean` frees it all.
        .arg("--target-dir")
        .arg(fuzz_dir)
        .arg(target)
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        // A hang is a finding too; the largest seeds (whole manifests, cassettes) fit.
        .arg("-timeout=30")
        .arg("-max_len=131072")
        .arg("-print_final_stats=1")
        .arg({
            let mut arg = std::ffi::OsString::from("-artifact_prefix=");
            arg.push(&artifact_prefix);
            arg
        })
        .current_dir(project)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("cannot run cargo fuzz")?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut outcome = parse_log(&text);
    if !status.success() {
        let artifact = text
            .lines()
            .find_map(|line| {
                line.split_once("Test unit written to ")
                    .map(|(_, p)| p.trim())
            })
            .map(PathBuf::from);
        let panic = text
            .lines()
            .find(|line| line.contains("panicked at"))
            .unwrap_or("see the log");
        outcome.crash = Some(match artifact {
            Some(path) => format!("CRASH: {} ({panic})", path.display()),
            None => format!("FAILED ({status}): {}", log_path.display()),
        });
        println!(
            "  {} ({})",
            outcome.crash.as_deref().unwrap_or(""),
            log_path.display()
        );
    }
    Ok(outcome)
}

/// libFuzzer's last status line (`#N DONE cov: C ft: F corp: U/S exec/s: E ...`) and its final
/// stats (`stat::number_of_executed_units: N`).
fn parse_log(text: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let status_line = text
        .lines()
        .rev()
        .find(|line| line.starts_with('#') && line.contains("cov:"));
    if let Some(line) = status_line {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        let number = |key: &str| after(key).and_then(|w| w.parse().ok());
        outcome.coverage = number("cov:");
        outcome.features = number("ft:");
        outcome.exec_per_sec = number("exec/s:");
        outcome.corpus = after("corp:").map(str::to_owned);
        outcome.executions = words
            .first()
            .and_then(|w| w.trim_start_matches('#').parse().ok());
    }
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            outcome.executions = n.trim().parse().ok().or(outcome.executions);
        }
        if let Some(n) = line.strip_prefix("stat::average_exec_per_sec:") {
            outcome.exec_per_sec = n.trim().parse().ok().or(outcome.exec_per_sec);
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_lines() {
        let log = "#1024\tpulse  cov: 10 ft: 12 corp: 5/1Kb exec/s: 512 rss: 40Mb\n\
                   #250000\tDONE   cov: 23500 ft: 61000 corp: 1400/7Mb lim: 4096 exec/s: 830 rss: 90Mb\n\
                   Done 250000 runs in 301 second(s)\n\
                   stat::number_of_executed_units: 250001\n\
                   stat::average_exec_per_sec:     830\n";
        let outcome = parse_log(log);
        assert_eq!(outcome.executions, Some(250_001));
        assert_eq!(outcome.exec_per_sec, Some(830));
        assert_eq!(outcome.coverage, Some(23_500));
        assert_eq!(outcome.features, Some(61_000));
        assert_eq!(outcome.corpus.as_deref(), Some("1400/7Mb"));
    }
}
