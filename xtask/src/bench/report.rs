//! Results: one row per runner and command, ratios per scenario, printed as a table and
//! serialised as target/bench/results.json for tracking across commits.

use super::pages::RecordShape;
use super::scenarios::{Scenario, Target, Workload};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    Floor,
    Sluice,
    Reference,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Floor => "floor",
            Runner::Sluice => "sluice",
            Runner::Reference => "reference",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// The run happened and does not count; the message starts with the runner's name.
    Failed(String),
    /// The runner is not available (no reference installed, sluice did not build).
    Skipped(String),
}

/// One runner's result for one command of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub runner: Runner,
    pub command: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Records the connector emitted (the floor: records fetched).
    pub records: Option<u64>,
    /// Records the API served; records per second counts these.
    pub source_records: Option<u64>,
    /// Wall time of the run; for start-up rows the median of `runs`.
    pub wall_s: Option<f64>,
    pub records_per_s: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub requests: Option<u64>,
    pub served_bytes: Option<u64>,
    pub runs: Option<usize>,
    /// sluice rows: sluice's records/s over the reference's (start-up: the reference's median
    /// time over sluice's).
    pub speedup_vs_reference: Option<f64>,
    /// sluice rows: sluice's wall time over the floor's.
    pub wall_vs_floor: Option<f64>,
    /// Partitioned scenarios: partitions read at once (sluice's `--concurrency`; the
    /// reference's concurrency_level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// sluice rows of a concurrency scenario: wall time over (wall time at concurrency 1) / N.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_vs_ideal: Option<f64>,
    /// sluice rows of a scenario held to a multiple of (a)'s time: wall time over (a)'s sluice
    /// wall time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_vs_a: Option<f64>,
}

impl Row {
    pub fn new(runner: Runner, command: &'static str) -> Self {
        Self {
            runner,
            command,
            outcome: Outcome::Ok,
            records: None,
            source_records: None,
            wall_s: None,
            records_per_s: None,
            peak_rss_bytes: None,
            requests: None,
            served_bytes: None,
            runs: None,
            speedup_vs_reference: None,
            wall_vs_floor: None,
            concurrency: None,
            wall_vs_ideal: None,
            wall_vs_a: None,
        }
    }

    /// The command column: the command, and the concurrency when there is one (`read c8`).
    pub fn label(&self) -> String {
        match self.concurrency {
            Some(level) => format!("{} c{level}", self.command),
            None => self.command.to_owned(),
        }
    }

    /// A row for a runner that could not run at all: sluice rows fail, reference rows are
    /// skipped.
    pub fn unavailable(runner: Runner, command: &'static str, why: &str) -> Self {
        let mut row = Self::new(runner, command);
        row.outcome = match runner {
            Runner::Reference => Outcome::Skipped(format!("reference {why}")),
            _ => Outcome::Failed(format!("{} failed: {why}", runner.name())),
        };
        row
    }

    fn ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// One line for the progress log while the benchmark runs.
    pub fn progress_line(&self) -> String {
        let label = format!("{} {}", self.runner.name(), self.label());
        match &self.outcome {
            Outcome::Ok => format!(
                "{label:<16} {} in {}, {}",
                count(self.records),
                seconds(self.wall_s),
                megabytes(self.peak_rss_bytes)
            ),
            Outcome::Failed(why) | Outcome::Skipped(why) => format!("{label:<16} {why}"),
        }
    }
}

/// A scenario's rows, with the ratios filled in on the sluice rows.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub about: &'static str,
    pub manifest: &'static str,
    pub rows: Vec<Row>,
    /// Partitioned scenarios, and read scenarios held to a multiple of (a)'s wall time: whether
    /// the scenario's target was met, and the numbers that say so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetReport>,
    /// The most sluice's wall time may be over (a)'s; checked by [`Report::new`], which sees
    /// (a)'s result.
    #[serde(skip)]
    max_wall_vs_a: Option<f64>,
}

/// A scenario's target, checked.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// `None` when the runs it needs failed.
    pub met: Option<bool>,
    /// Lines for the table's footer: the first says what was aimed for and whether it was met.
    pub summary: Vec<String>,
}

impl ScenarioResult {
    pub fn new(scenario: &Scenario, mut rows: Vec<Row>) -> Self {
        for row in &mut rows {
            if let (true, Some(records), Some(wall)) = (row.ok(), row.source_records, row.wall_s)
                && wall > 0.0
                && row.command == "read"
            {
                row.records_per_s = Some(records as f64 / wall);
            }
        }
        let find = |rows: &[Row], runner: Runner, command: &str| -> Option<Row> {
            rows.iter()
                .find(|r| r.runner == runner && r.command == command && r.ok())
                .cloned()
        };
        // A sluice row is compared with the reference at the same concurrency, else with the
        // reference's one run (at the concurrency the manifest sets).
        let find_reference = |rows: &[Row], command: &str, level: Option<usize>| {
            rows.iter()
                .find(|r| {
                    r.runner == Runner::Reference
                        && r.command == command
                        && r.concurrency == level
                        && r.ok()
                })
                .cloned()
                .or_else(|| find(rows, Runner::Reference, command))
        };
        let snapshot = rows.clone();
        for row in rows
            .iter_mut()
            .filter(|r| r.runner == Runner::Sluice && r.ok())
        {
            let reference = find_reference(&snapshot, row.command, row.concurrency);
            let floor = find(&snapshot, Runner::Floor, row.command);
            if row.command == "read" {
                row.speedup_vs_reference =
                    ratio(row.records_per_s, reference.and_then(|r| r.records_per_s));
                row.wall_vs_floor = ratio(row.wall_s, floor.and_then(|f| f.wall_s));
            } else {
                row.speedup_vs_reference = ratio(reference.and_then(|r| r.wall_s), row.wall_s);
            }
        }
        let (target, max_wall_vs_a) = match scenario.workload {
            Workload::Partitioned { target, .. } => (Some(check_target(target, &mut rows)), None),
            Workload::Read { max_wall_vs_a, .. } => (None, max_wall_vs_a),
            Workload::Startup { .. } => (None, None),
        };
        Self {
            name: scenario.name,
            about: scenario.about,
            manifest: scenario.manifest,
            rows,
            target,
            max_wall_vs_a,
        }
    }

    fn sluice_read(&self) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.runner == Runner::Sluice && r.command == "read" && r.ok())
    }
}

/// The scenario whose sluice wall time others are held to a multiple of.
const BASELINE: &str = "a-offset";

/// Fills in the targets of the scenarios held to a multiple of (a)'s sluice wall time.
fn compare_with_baseline(scenarios: &mut [ScenarioResult]) {
    let baseline = scenarios
        .iter()
        .find(|s| s.name == BASELINE)
        .map(|s| s.sluice_read().and_then(|r| r.wall_s));
    for scenario in scenarios.iter_mut() {
        let Some(max_ratio) = scenario.max_wall_vs_a else {
            continue;
        };
        let wall = scenario.sluice_read().and_then(|r| r.wall_s);
        let vs_a = ratio(wall, baseline.flatten());
        if let Some(row) = scenario
            .rows
            .iter_mut()
            .find(|r| r.runner == Runner::Sluice && r.command == "read" && r.ok())
        {
            row.wall_vs_a = vs_a;
        }
        let met = vs_a.map(|r| r <= max_ratio);
        let unmeasured = match baseline {
            None => format!("{BASELINE} was not run"),
            Some(None) => format!("sluice failed on {BASELINE}"),
            Some(Some(_)) => "sluice failed".to_owned(),
        };
        scenario.target = Some(TargetReport {
            met,
            summary: vec![format!(
                "sluice wall time within {max_ratio:.2}x of {BASELINE}'s ({}): {} = {}: {}",
                seconds(baseline.flatten()),
                seconds(wall),
                times(vs_a),
                verdict(met, "", &unmeasured)
            )],
        });
    }
}

/// Checks `target` against a partitioned scenario's rows, filling in `wall_vs_ideal`.
fn check_target(target: Target, rows: &mut [Row]) -> TargetReport {
    let sluice_at = |rows: &[Row], level: usize| {
        rows.iter()
            .find(|r| r.runner == Runner::Sluice && r.concurrency == Some(level) && r.ok())
            .cloned()
    };
    let reference_at = |rows: &[Row], level: Option<usize>| {
        rows.iter()
            .find(|r| r.runner == Runner::Reference && r.concurrency == level && r.ok())
            .cloned()
    };
    let sluice_levels: Vec<usize> = rows
        .iter()
        .filter(|r| r.runner == Runner::Sluice)
        .filter_map(|r| r.concurrency)
        .collect();
    match target {
        Target::ScalesWithConcurrency { max_ratio } => {
            let serial = sluice_at(rows, 1).and_then(|r| r.wall_s);
            let highest = sluice_levels.iter().copied().max().unwrap_or(1);
            let mut summary = vec![String::new()];
            summary.push(format!(
                "  {:>3} {:>12} {:>10} {:>10} {:>15} {:>13}",
                "N", "sluice wall", "serial/N", "ratio", "reference wall", "ref / sluice"
            ));
            let mut met = serial.map(|_| true);
            let mut misses = Vec::new();
            for &level in &sluice_levels {
                let sluice = sluice_at(rows, level);
                let ideal = serial.map(|s| s / level as f64);
                let vs_ideal = ratio(sluice.as_ref().and_then(|r| r.wall_s), ideal);
                if let Some(row) = rows
                    .iter_mut()
                    .find(|r| r.runner == Runner::Sluice && r.concurrency == Some(level) && r.ok())
                {
                    row.wall_vs_ideal = vs_ideal;
                }
                match vs_ideal {
                    Some(r) if r <= max_ratio => {}
                    Some(r) => {
                        met = met.map(|_| false);
                        misses.push(format!("{r:.2}x at N={level}"));
                    }
                    None => met = None,
                }
                let reference = reference_at(rows, Some(level));
                summary.push(format!(
                    "  {level:>3} {:>12} {:>10} {:>10} {:>15} {:>13}",
                    seconds(sluice.as_ref().and_then(|r| r.wall_s)),
                    seconds(ideal),
                    times(vs_ideal),
                    seconds(reference.as_ref().and_then(|r| r.wall_s)),
                    times(ratio(
                        reference.and_then(|r| r.wall_s),
                        sluice.and_then(|r| r.wall_s)
                    )),
                ));
            }
            summary[0] = format!(
                "sluice wall time at concurrency N within {max_ratio:.2}x of serial/N (serial: sluice at N=1) up to N={highest}: {}",
                verdict(met, &misses.join(", "), "a sluice run failed")
            );
            TargetReport { met, summary }
        }
        Target::SpeedupAtSameConcurrency { min_speedup } => {
            // The reference's row says its concurrency even when it did not run.
            let level = rows
                .iter()
                .find(|r| r.runner == Runner::Reference)
                .and_then(|r| r.concurrency);
            let reference = reference_at(rows, level);
            let same = level.and_then(|level| sluice_at(rows, level));
            let speedup = same.as_ref().and_then(|r| r.speedup_vs_reference);
            let met = speedup.map(|s| s >= min_speedup);
            let unmeasured = if reference.is_none() {
                "the reference did not run".to_owned()
            } else {
                format!(
                    "sluice failed at concurrency {}",
                    level.map_or("-".to_owned(), |l| l.to_string())
                )
            };
            let mut summary = vec![format!(
                "sluice rec/s at least {min_speedup:.0}x the reference's at the same concurrency ({}): sluice {} vs reference {} = {}: {}",
                level.map_or("-".to_owned(), |l| l.to_string()),
                rate(same.as_ref().and_then(|r| r.records_per_s)),
                rate(reference.as_ref().and_then(|r| r.records_per_s)),
                times(speedup),
                verdict(met, "", &unmeasured)
            )];
            let best = rows
                .iter()
                .filter(|r| r.runner == Runner::Sluice && r.ok())
                .max_by(|a, b| {
                    a.records_per_s
                        .unwrap_or(0.0)
                        .total_cmp(&b.records_per_s.unwrap_or(0.0))
                });
            if let Some(best) = best {
                summary.push(format!(
                    "  sluice's best: {} at concurrency {} ({} the reference at {})",
                    rate(best.records_per_s),
                    best.concurrency.map_or("-".to_owned(), |l| l.to_string()),
                    times(best.speedup_vs_reference),
                    level.map_or("-".to_owned(), |l| l.to_string()),
                ));
            }
            TargetReport { met, summary }
        }
        Target::PeakRssUnder { max_bytes } => {
            let sluice: Vec<&Row> = rows.iter().filter(|r| r.runner == Runner::Sluice).collect();
            let peaks: Vec<Option<u64>> = sluice
                .iter()
                .map(|r| r.peak_rss_bytes.filter(|_| r.ok()))
                .collect();
            let met = peaks
                .iter()
                .map(|p| p.map(|p| p < max_bytes))
                .collect::<Option<Vec<bool>>>()
                .map(|all| all.iter().all(|&under| under));
            let measured: Vec<String> = sluice
                .iter()
                .zip(&peaks)
                .map(|(row, peak)| {
                    format!(
                        "{} ({}) at concurrency {}",
                        megabytes(*peak),
                        mebibytes(*peak),
                        row.concurrency.map_or("-".to_owned(), |l| l.to_string())
                    )
                })
                .collect();
            let summary = vec![format!(
                "sluice peak RSS under {} ({}): {}: {}",
                mebibytes(Some(max_bytes)),
                megabytes(Some(max_bytes)),
                measured.join(", "),
                verdict(met, "", "a sluice run failed")
            )];
            TargetReport { met, summary }
        }
    }
}

/// "met", "NOT met (misses)", or "not measured (why)".
fn verdict(met: Option<bool>, misses: &str, unmeasured: &str) -> String {
    match met {
        Some(true) => "met".to_owned(),
        Some(false) if misses.is_empty() => "NOT met".to_owned(),
        Some(false) => format!("NOT met ({misses})"),
        None => format!("not measured ({unmeasured})"),
    }
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// A data set the server answered from.
#[derive(Debug, Clone, Serialize)]
pub struct DataSet {
    pub shape: RecordShape,
    pub records: u64,
    pub encoded_bytes: u64,
    pub generation_s: f64,
}

/// The 1-minute load average from /proc/loadavg.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Everything one `cargo xtask bench` measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub unix_time: u64,
    pub git_commit: Option<String>,
    pub cores: usize,
    /// The 1-minute load average when the benchmark started: other work on the machine skews
    /// every timing.
    pub load_average: Option<f64>,
    pub data_sets: Vec<DataSet>,
    /// Runs of each sluice and floor read; their rows give the median wall time and the
    /// highest peak RSS.
    pub read_runs: u32,
    pub reference_records: u64,
    /// Why the reference did not run, if it did not.
    pub reference_skipped: Option<String>,
    pub scenarios: Vec<ScenarioResult>,
}

impl Report {
    pub fn new(
        load_average: Option<f64>,
        data_sets: Vec<DataSet>,
        read_runs: u32,
        reference_records: u64,
        reference_skipped: Option<String>,
        mut scenarios: Vec<ScenarioResult>,
    ) -> Self {
        compare_with_baseline(&mut scenarios);
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(crate::workspace::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        Self {
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            git_commit,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            load_average,
            data_sets,
            read_runs,
            reference_records,
            reference_skipped,
            scenarios,
        }
    }

    pub fn sluice_failures(&self) -> usize {
        self.scenarios
            .iter()
            .flat_map(|s| &s.rows)
            .filter(|r| r.runner == Runner::Sluice && !r.ok())
            .count()
    }

    /// The human-readable table, with a legend and the server's own throughput.
    pub fn table(&self) -> String {
        let mut out = String::new();
        // `read c16` on partitioned scenarios' rows; the usual 6 otherwise.
        let cmd_width = self
            .scenarios
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.label().len())
            .max()
            .unwrap_or(0)
            .max(6);
        let name_width = self
            .scenarios
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(15);
        let _ = writeln!(
            out,
            "{:<name_width$} {:<9} {:<cmd_width$} {:>10} {:>10} {:>11} {:>9} {:>10} {:>10}",
            "scenario",
            "runner",
            "cmd",
            "records",
            "wall",
            "rec/s",
            "peak RSS",
            "vs ref",
            "vs floor"
        );
        for scenario in &self.scenarios {
            for row in &scenario.rows {
                let lead = format!(
                    "{:<name_width$} {:<9} {:<cmd_width$}",
                    scenario.name,
                    row.runner.name(),
                    row.label()
                );
                match &row.outcome {
                    Outcome::Ok => {
                        let records = match row.runs {
                            Some(runs) => format!("{runs} runs"),
                            None => count(row.records),
                        };
                        let wall = match row.runs {
                            Some(_) => format!("{} med", millis(row.wall_s)),
                            None => seconds(row.wall_s),
                        };
                        let _ = writeln!(
                            out,
                            "{lead} {records:>10} {wall:>10} {:>11} {:>9} {:>10} {:>10}",
                            rate(row.records_per_s),
                            megabytes(row.peak_rss_bytes),
                            times(row.speedup_vs_reference),
                            times(row.wall_vs_floor),
                        );
                    }
                    Outcome::Failed(why) | Outcome::Skipped(why) => {
                        let _ = writeln!(out, "{lead} {}", one_line(why, 160));
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "\nrecords: emitted; rec/s: records the API served per second of wall time; \
             peak RSS: the child's VmHWM."
        );
        let _ = writeln!(
            out,
            "vs ref: sluice rec/s / reference rec/s (start-up: reference median / sluice median); \
             vs floor: sluice wall / floor wall."
        );
        let _ = writeln!(
            out,
            "sluice and floor reads: the median wall time of {} runs, the highest peak RSS of them.",
            self.read_runs
        );
        let _ = writeln!(
            out,
            "The reference reads {} records per read scenario (it is slow); it is compared by rec/s.",
            count(Some(self.reference_records))
        );
        if cmd_width > 6 {
            let _ = writeln!(
                out,
                "read cN: a read at concurrency N (sluice --concurrency N; the reference's concurrency_level). \
                 vs ref compares with the reference at the same N, else with its one run.\n\
                 Partitioned scenarios (no floor): the reference reads the whole data set, daily slices at most \
                 --reference-records / 1,000 days."
            );
        }
        let targets: Vec<(&str, &TargetReport)> = self
            .scenarios
            .iter()
            .filter_map(|s| s.target.as_ref().map(|t| (s.name, t)))
            .collect();
        if !targets.is_empty() {
            let _ = writeln!(out, "Targets:");
            for (name, target) in targets {
                let mut lines = target.summary.iter();
                if let Some(first) = lines.next() {
                    let _ = writeln!(out, "{name}: {first}");
                }
                for line in lines {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        if let Some(load) = self.load_average.filter(|&load| load >= 0.5) {
            let _ = writeln!(
                out,
                "WARNING: the load average was {load:.2} on {} cores when the benchmark started: \
                 other work skews these timings.",
                self.cores
            );
        }
        if let Some(why) = &self.reference_skipped {
            let _ = writeln!(out, "Reference: {why}.");
        }
        let memory: Vec<String> = self
            .scenarios
            .iter()
            .filter(|s| s.name.starts_with("e-"))
            .flat_map(|s| &s.rows)
            .filter(|r| r.runner == Runner::Sluice && r.ok())
            .map(|r| {
                format!(
                    "{} at {} records",
                    megabytes(r.peak_rss_bytes),
                    count(r.records)
                )
            })
            .collect();
        if !memory.is_empty() {
            let _ = writeln!(out, "sluice peak RSS: {}.", memory.join(", "));
        }
        // The largest floor run measures the server best: per-connection set-up weighs least.
        if let Some(floor) = self
            .scenarios
            .iter()
            .flat_map(|s| &s.rows)
            .filter(|r| r.runner == Runner::Floor && r.ok())
            .max_by_key(|r| r.served_bytes)
            && let (Some(bytes), Some(wall), Some(requests)) =
                (floor.served_bytes, floor.wall_s, floor.requests)
        {
            let _ = writeln!(
                out,
                "Server throughput, measured by the floor client on one connection: {:.0} MB/s, {:.0} pages/s.",
                bytes as f64 / wall / 1e6,
                requests as f64 / wall
            );
        }
        out
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}...")
    }
}

fn count(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |s| format!("{s:.3} s"))
}

fn millis(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |s| format!("{:.1} ms", s * 1000.0))
}

fn rate(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(r) if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
        Some(r) if r >= 1e3 => format!("{:.1} k/s", r / 1e3),
        Some(r) => format!("{r:.0} /s"),
    }
}

fn megabytes(value: Option<u64>) -> String {
    value.map_or("-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn mebibytes(value: Option<u64>) -> String {
    value.map_or("-".to_owned(), |b| {
        format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
    })
}

fn times(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenarios::SCENARIOS;

    fn scenario(name: &str) -> &'static Scenario {
        SCENARIOS.iter().find(|s| s.name == name).unwrap()
    }

    fn sluice_read(wall_s: f64) -> Row {
        let mut row = Row::new(Runner::Sluice, "read");
        row.wall_s = Some(wall_s);
        row.source_records = Some(1_000);
        row
    }

    #[test]
    fn reads_held_to_a_multiple_of_a_are_checked_against_its_sluice_wall_time() {
        let mut results = vec![
            ScenarioResult::new(scenario("a-offset"), vec![sluice_read(1.0)]),
            ScenarioResult::new(scenario("j-datetime-cursor"), vec![sluice_read(1.2)]),
            ScenarioResult::new(scenario("k-normalise"), vec![sluice_read(2.0)]),
            ScenarioResult::new(scenario("l-wide-records"), vec![sluice_read(9.0)]),
        ];
        compare_with_baseline(&mut results);
        let met: Vec<Option<Option<bool>>> = results
            .iter()
            .map(|s| s.target.as_ref().map(|t| t.met))
            .collect();
        assert_eq!(met, [None, Some(Some(true)), Some(Some(false)), None]);
        assert_eq!(results[2].rows[0].wall_vs_a, Some(2.0));
        assert!(results[2].target.as_ref().unwrap().summary[0].contains("2.00x: NOT met"));
    }

    #[test]
    fn without_a_the_multiple_is_not_measured() {
        let mut failed = Row::new(Runner::Sluice, "read");
        failed.outcome = Outcome::Failed("sluice failed: boom".to_owned());
        for others in [
            vec![],
            vec![ScenarioResult::new(scenario("a-offset"), vec![failed])],
        ] {
            let mut results = others;
            results.push(ScenarioResult::new(
                scenario("b-transform"),
                vec![sluice_read(1.0)],
            ));
            compare_with_baseline(&mut results);
            let target = results.last().unwrap().target.as_ref().unwrap();
            assert_eq!(target.met, None);
            assert!(
                target.summary[0].contains("not measured"),
                "{:?}",
                target.summary
            );
        }
    }
}
