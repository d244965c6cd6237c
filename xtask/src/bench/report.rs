//! Results: one row per runner and command, ratios per scenario, printed as a table and
//! serialised as target/bench/results.json for tracking across commits.

use super::scenarios::Scenario;
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
        let label = format!("{} {}", self.runner.name(), self.command);
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
        let snapshot = rows.clone();
        for row in rows
            .iter_mut()
            .filter(|r| r.runner == Runner::Sluice && r.ok())
        {
            let reference = find(&snapshot, Runner::Reference, row.command);
            let floor = find(&snapshot, Runner::Floor, row.command);
            if row.command == "read" {
                row.speedup_vs_reference =
                    ratio(row.records_per_s, reference.and_then(|r| r.records_per_s));
                row.wall_vs_floor = ratio(row.wall_s, floor.and_then(|f| f.wall_s));
            } else {
                row.speedup_vs_reference = ratio(reference.and_then(|r| r.wall_s), row.wall_s);
            }
        }
        Self {
            name: scenario.name,
            about: scenario.about,
            manifest: scenario.manifest,
            rows,
        }
    }
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// The data set the server answered from.
#[derive(Debug, Clone, Serialize)]
pub struct DataSet {
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
    pub data_set: DataSet,
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
        data_set: DataSet,
        read_runs: u32,
        reference_records: u64,
        reference_skipped: Option<String>,
        scenarios: Vec<ScenarioResult>,
    ) -> Self {
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
            data_set,
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
        let _ = writeln!(
            out,
            "{:<15} {:<9} {:<6} {:>10} {:>10} {:>11} {:>9} {:>10} {:>10}",
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
                    "{:<15} {:<9} {:<6}",
                    scenario.name,
                    row.runner.name(),
                    row.command
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

fn times(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.2}x"))
}
