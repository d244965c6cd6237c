//! `cargo xtask bench`: sluice against the reference and the floor, scenario by scenario.
//!
//! One invocation builds `target/dist/sluice`, finds or installs the reference
//! (`source-declarative-manifest` of airbyte-cdk 7.39.1), generates the data set once, starts
//! the local API [`server`], and runs every selected scenario of [`scenarios::SCENARIOS`]:
//! the [`floor`] client, sluice and the reference each read the same pages. A run that fails
//! (a capability sluice lacks yet, a wrong record count) becomes a "sluice failed: ..." row;
//! the others still run. The table goes to stdout and `target/bench/results.json`.
//!
//! The reference is far slower, so it reads `--reference-records` records (200,000 by default)
//! and is compared by records per second. Benchmarks are measurements, never tests: nothing
//! here is timed in `cargo test`.
//!
//! Read scenarios read one of the [`pages::RecordShape`] data sets, each generated only when a
//! selected scenario reads it (the plain records always): (a) to (e) and (j) the plain records,
//! (k) records some of whose values normalisation converts, (l) orders of about 2 KB at a tenth
//! of `--records`. Incremental reads ((j), (k)) must end with a STATE message their scenario
//! checks. Scenarios reading as many records as (a) may be held to a multiple of (a)'s sluice
//! wall time ((b), (j), (k): 1.3 times); the footer says whether they were, when (a) ran too.
//!
//! Partitioned scenarios ([`Workload::Partitioned`]: concurrency, substreams, daily slices,
//! memory with many partitions) have no floor. Their shape goes to the connectors in a config
//! written per run (`target/bench/config-SCENARIO-RUNNER-cN.json`): sluice reads at each level
//! with `--concurrency N`, the reference at the level its manifest sets or, through the config's
//! `concurrency`, at each of sluice's. Each has a target the footer says was met or not.
//!
//! sluice is built into, and the results written under, `$CARGO_TARGET_DIR` when it is set,
//! else `target/`.

mod floor;
mod measure;
mod pages;
mod partitions;
mod report;
mod scenarios;
mod server;

use crate::reference::installed_cdk_version;
use crate::workspace;
use anyhow::{Context, bail};
use measure::{ChildRun, run_child};
use pages::{PageSet, RecordShape, round_up_to_pages};
use report::{Outcome, Report, Row, Runner, ScenarioResult};
use scenarios::{
    Compare, Parents, ReadMode, ReadSize, ReferenceRuns, SCENARIOS, Scenario, Shape, Workload,
};
use server::BenchServer;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The reference version the benchmark compares against.
const REFERENCE_VERSION: &str = "7.39.1";
/// Longest a single sluice run may take before it is killed and reported as failed.
const SLUICE_TIME_LIMIT: Duration = Duration::from_secs(300);
/// The same for the reference, which is much slower.
const REFERENCE_TIME_LIMIT: Duration = Duration::from_secs(1200);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records per read scenario (rounded up to whole pages of 1,000).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Records the reference reads per read scenario; it is compared by records per second.
    #[arg(long, default_value_t = 200_000)]
    reference_records: u64,
    /// Only this scenario: its name (`a-offset`) or letter (`a`); repeatable.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Do not run (or install) the reference.
    #[arg(long)]
    no_reference: bool,
    /// Runs of each sluice and floor read: the table shows the median wall time and the highest
    /// peak RSS (the reference, far slower, runs once).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Benchmark this sluice binary instead of building target/dist/sluice (in
    /// `$CARGO_TARGET_DIR` when set).
    #[arg(long, value_name = "PATH")]
    sluice: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let selected = select_scenarios(&args.scenarios)?;
    // Read before building sluice, which loads the machine itself.
    let load_average = report::load_average();
    let records = round_up_to_pages(args.records.max(1));
    if records != args.records {
        eprintln!(
            "--records {} rounded up to {records} (whole pages)",
            args.records
        );
    }
    let reference_records = round_up_to_pages(args.reference_records.clamp(1, records));

    let root = workspace::root();
    let target_dir = crate::workspace::target_dir();
    let work = target_dir.join("bench");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    let sluice = match &args.sluice {
        Some(path) => Ok(path.clone()),
        None => build_sluice(&root, &target_dir),
    };
    let reference = if args.no_reference {
        Err("skipped (--no-reference)".to_owned())
    } else {
        reference_entrypoint(&root)
    };
    if let Err(why) = &reference {
        eprintln!("reference: {why}");
    }

    let mut sets = Vec::new();
    let mut generated = Vec::new();
    for (shape, count) in data_sets(&selected, records) {
        eprintln!("generating {count} {} records...", shape.name());
        let generation_started = Instant::now();
        let set = PageSet::generate(shape, count);
        generated.push(report::DataSet {
            shape,
            records: count,
            encoded_bytes: set.encoded_len() as u64,
            generation_s: generation_started.elapsed().as_secs_f64(),
        });
        sets.push(set);
    }
    let server = BenchServer::start(sets)?;
    for set in &generated {
        eprintln!(
            "serving {} {} records ({:.1} MB) on {}",
            set.records,
            set.shape.name(),
            set.encoded_bytes as f64 / 1e6,
            server.base_url()
        );
    }
    let inputs = Inputs::write(&work, &server)?;

    let bench = Bench {
        server: &server,
        inputs: &inputs,
        sluice: sluice.as_deref().map_err(Clone::clone),
        reference: reference.as_deref().map_err(Clone::clone),
        records,
        reference_records,
        runs: args.runs,
    };
    let mut results = Vec::new();
    for scenario in selected {
        eprintln!("scenario {}: {}", scenario.name, scenario.about);
        results.push(bench.run_scenario(scenario));
    }

    let report = Report::new(
        load_average,
        generated,
        args.runs,
        reference_records,
        reference.as_ref().err().cloned(),
        results,
    );
    println!("{}", report.table());
    let json_path = work.join("results.json");
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    std::fs::write(&json_path, json)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!("wrote {}", json_path.display());

    let sluice_failures = report.sluice_failures();
    if sluice_failures > 0 {
        bail!("{sluice_failures} sluice run(s) failed: see the table");
    }
    Ok(())
}

/// The data sets the selected scenarios read, with how many records each needs: the plain
/// records always (`records` of them, as start-up checks read them too), the other shapes only
/// when a selected scenario reads them.
fn data_sets(selected: &[&Scenario], records: u64) -> Vec<(RecordShape, u64)> {
    let mut sets = vec![(RecordShape::Plain, records)];
    for scenario in selected {
        if let Workload::Read {
            records: shape,
            size,
            ..
        } = scenario.workload
        {
            let needed = read_size(size, records);
            match sets.iter_mut().find(|(s, _)| *s == shape) {
                Some((_, count)) => *count = (*count).max(needed),
                None => sets.push((shape, needed)),
            }
        }
    }
    sets
}

/// Records a read scenario of `size` serves when `--records` is `records`.
fn read_size(size: ReadSize, records: u64) -> u64 {
    match size {
        ReadSize::Full => records,
        ReadSize::Tenth => round_up_to_pages(records / 10),
    }
}

fn select_scenarios(selectors: &[String]) -> anyhow::Result<Vec<&'static Scenario>> {
    if selectors.is_empty() {
        return Ok(SCENARIOS.iter().collect());
    }
    for selector in selectors {
        if !SCENARIOS.iter().any(|s| s.matches(selector)) {
            let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            bail!(
                "no scenario {selector}; the scenarios are {} (or their letters)",
                names.join(", ")
            );
        }
    }
    Ok(SCENARIOS
        .iter()
        .filter(|s| selectors.iter().any(|sel| s.matches(sel)))
        .collect())
}

/// `cargo build --profile dist -p sluice-runner` (fat LTO, as shipped); a failure becomes every
/// sluice row's reason.
fn build_sluice(root: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let binary = target_dir.join("dist/sluice");
    eprintln!("building {}...", binary.display());
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--profile",
            "dist",
            "-p",
            "sluice-runner",
            "--bin",
            "sluice",
        ])
        .current_dir(root)
        .status();
    match status {
        Ok(status) if status.success() => Ok(binary),
        Ok(status) => Err(format!(
            "cargo build --profile dist -p sluice-runner failed ({status}; compiler output above)"
        )),
        Err(e) => Err(format!("cannot run cargo build: {e}")),
    }
}

/// The reference's entrypoint: /tmp/ref when it holds airbyte-cdk 7.39.1, else
/// target/bench-venv, created with `python3 -m venv` and pip on first use.
fn reference_entrypoint(root: &Path) -> Result<PathBuf, String> {
    let bench_venv = root.join("target/bench-venv");
    for venv in [PathBuf::from("/tmp/ref"), bench_venv.clone()] {
        if installed_cdk_version(&venv).as_deref() == Some(REFERENCE_VERSION) {
            return Ok(venv.join("bin/source-declarative-manifest"));
        }
    }
    eprintln!(
        "installing airbyte-cdk {REFERENCE_VERSION} into {} (needs PyPI once)...",
        bench_venv.display()
    );
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&bench_venv)
        .status()
        .map_err(|e| format!("skipped: cannot run python3 ({e})"))?;
    if !created.success() {
        return Err(format!(
            "skipped: python3 -m venv {} failed",
            bench_venv.display()
        ));
    }
    let installed = Command::new(bench_venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            &format!("airbyte-cdk=={REFERENCE_VERSION}"),
        ])
        .status()
        .map_err(|e| format!("skipped: cannot run pip ({e})"))?;
    if !installed.success()
        || installed_cdk_version(&bench_venv).as_deref() != Some(REFERENCE_VERSION)
    {
        return Err(format!(
            "skipped: pip could not install airbyte-cdk=={REFERENCE_VERSION} into {}",
            bench_venv.display()
        ));
    }
    Ok(bench_venv.join("bin/source-declarative-manifest"))
}

/// The config and catalogs the connector runs read.
#[derive(Debug)]
struct Inputs {
    work: PathBuf,
    api_url: String,
    /// `{"api_url": ...}`, the config of the unpartitioned scenarios.
    config: PathBuf,
    /// Full refresh of `items`.
    catalog: PathBuf,
    /// Incremental sync of `items` on `updated_at`.
    incremental_catalog: PathBuf,
    manifests: PathBuf,
}

impl Inputs {
    fn write(work: &Path, server: &BenchServer) -> anyhow::Result<Self> {
        let config = work.join("config.json");
        let text =
            serde_json::to_string_pretty(&serde_json::json!({"api_url": server.base_url()}))?;
        std::fs::write(&config, text)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let manifests = workspace::root().join("fixtures/bench");
        Ok(Self {
            work: work.to_path_buf(),
            api_url: server.base_url(),
            config,
            catalog: manifests.join("catalog.json"),
            incremental_catalog: manifests.join("catalog_incremental.json"),
            manifests,
        })
    }

    /// What an unpartitioned scenario's runs read: the shared config, the full-refresh catalog.
    fn plain(&self) -> RunInputs {
        RunInputs {
            config: self.config.clone(),
            catalog: self.catalog.clone(),
            concurrency: None,
        }
    }

    /// The shared config and the catalog of `mode`.
    fn read(&self, mode: ReadMode) -> RunInputs {
        match mode {
            ReadMode::FullRefresh => self.plain(),
            ReadMode::Incremental { .. } => RunInputs {
                catalog: self.incremental_catalog.clone(),
                ..self.plain()
            },
        }
    }

    /// Writes the config of one partitioned run: `api_url`, the plan's keys and the
    /// `concurrency`.
    fn partitioned(
        &self,
        scenario: &Scenario,
        runner: Runner,
        plan: &Plan,
        incremental: bool,
        concurrency: usize,
    ) -> anyhow::Result<RunInputs> {
        let mut config = serde_json::Map::new();
        config.insert("api_url".to_owned(), self.api_url.clone().into());
        config.extend(plan.config.clone());
        config.insert("concurrency".to_owned(), concurrency.into());
        let path = self.work.join(format!(
            "config-{}-{}-c{concurrency}.json",
            scenario.name,
            runner.name()
        ));
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(config))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(RunInputs {
            config: path,
            catalog: if incremental {
                self.incremental_catalog.clone()
            } else {
                self.catalog.clone()
            },
            concurrency: Some(concurrency),
        })
    }
}

/// The files and the concurrency of one connector run.
#[derive(Debug, Clone)]
struct RunInputs {
    config: PathBuf,
    catalog: PathBuf,
    /// Partitions read at once: sluice gets `--concurrency N`, the reference's manifest reads
    /// it from the config (or sets its own); the row shows it.
    concurrency: Option<usize>,
}

/// What a partitioned scenario's API holds for one runner, and the config keys that say so.
#[derive(Debug, Clone)]
struct Plan {
    config: serde_json::Map<String, serde_json::Value>,
    /// Records the API serves (parents included).
    served: u64,
    /// Records the connector emits.
    emitted: u64,
}

impl Plan {
    /// The plan of `shape` for a runner whose record budget is `budget` (`--records` for
    /// sluice, `--reference-records` for the reference): only daily slices and the tenth-sized
    /// substream shrink with it.
    fn new(shape: Shape, budget: u64) -> Self {
        let mut config = serde_json::Map::new();
        let (served, emitted) = match shape {
            Shape::Delayed {
                partitions,
                records,
                delay_ms,
            } => {
                config.insert("partition_records".to_owned(), records.into());
                config.insert("delay_ms".to_owned(), delay_ms.into());
                (partitions * records, partitions * records)
            }
            Shape::Substream {
                parents,
                records_per_parent,
            } => {
                let parents = match parents {
                    Parents::Fixed(parents) => parents,
                    Parents::TenthOfRecordsUpTo(most) => round_up_to_pages(budget / 10).min(most),
                };
                config.insert("parents".to_owned(), parents.into());
                config.insert("child_records".to_owned(), records_per_parent.into());
                let children = parents * records_per_parent;
                (parents + children, children)
            }
            Shape::Daily { days } => {
                let days = days.min(budget / 1000).max(1);
                let end = format!("{}T23:59:59Z", partitions::date_of_day(days - 1));
                config.insert("end_date".to_owned(), end.into());
                let records = partitions::records_in_days(days);
                (records, records)
            }
        };
        Self {
            config,
            served,
            emitted,
        }
    }
}

/// A connector under test.
#[derive(Debug, Clone, Copy)]
enum Connector<'a> {
    Sluice(&'a Path),
    Reference(&'a Path),
}

impl Connector<'_> {
    fn runner(self) -> Runner {
        match self {
            Connector::Sluice(_) => Runner::Sluice,
            Connector::Reference(_) => Runner::Reference,
        }
    }

    fn time_limit(self) -> Duration {
        match self {
            Connector::Sluice(_) => SLUICE_TIME_LIMIT,
            Connector::Reference(_) => REFERENCE_TIME_LIMIT,
        }
    }

    /// The command line of `command` (spec, check, read) on `manifest`.
    fn command(self, command: &str, manifest: &Path, inputs: &RunInputs) -> Command {
        let (program, manifest_flag) = match self {
            Connector::Sluice(path) => (path, "--manifest"),
            Connector::Reference(path) => (path, "--manifest-path"),
        };
        let mut process = Command::new(program);
        process
            .arg(command)
            .arg("--config")
            .arg(&inputs.config)
            .arg(manifest_flag)
            .arg(manifest);
        if command == "read" {
            process.arg("--catalog").arg(&inputs.catalog);
            if let (Connector::Sluice(_), Some(level)) = (self, inputs.concurrency) {
                process.arg("--concurrency").arg(level.to_string());
            }
        }
        // Both must talk to the local server directly, never through a proxy.
        process
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        process
    }
}

/// Everything a scenario run needs.
struct Bench<'a> {
    server: &'a BenchServer,
    inputs: &'a Inputs,
    sluice: Result<&'a Path, String>,
    reference: Result<&'a Path, String>,
    records: u64,
    reference_records: u64,
    runs: u32,
}

/// What a read run is expected to produce.
#[derive(Debug, Clone, Copy)]
struct ReadExpectation {
    /// Records the API holds.
    served: u64,
    /// Records the manifest emits from them.
    emitted: u64,
    check_record: fn(&serde_json::Value) -> Result<(), String>,
    /// An incremental read: at least one STATE message must be printed.
    states: bool,
    /// Checks the last STATE message, given the records served.
    check_state: Option<scenarios::StateCheck>,
}

impl Bench<'_> {
    fn run_scenario(&self, scenario: &Scenario) -> ScenarioResult {
        let manifest = self.inputs.manifests.join(scenario.manifest);
        let rows = match scenario.workload {
            Workload::Read {
                pagination,
                records,
                size,
                compare,
                mode,
                emits,
                check_record,
                max_wall_vs_a: _,
            } => {
                let full = read_size(size, self.records);
                let check_state = match mode {
                    ReadMode::FullRefresh => None,
                    ReadMode::Incremental { check_state } => Some(check_state),
                };
                let expect = |served: u64| ReadExpectation {
                    served,
                    emitted: (0..served).filter(|&id| emits(id)).count() as u64,
                    check_record,
                    states: check_state.is_some(),
                    check_state,
                };
                let inputs = self.inputs.read(mode);
                let mut rows = Vec::new();
                if compare == Compare::All {
                    rows.push(self.median_of(|| self.floor_row(pagination, records, full)));
                }
                rows.push(self.median_of(|| {
                    self.read_row(self.sluice_connector(), &manifest, expect(full), &inputs)
                }));
                if compare == Compare::All {
                    let reference = self.reference_connector();
                    let served = self.reference_records.min(full);
                    rows.push(self.read_row(reference, &manifest, expect(served), &inputs));
                }
                rows
            }
            Workload::Partitioned {
                shape,
                incremental,
                sluice_levels,
                reference,
                check_record,
                target: _,
            } => {
                let run = |connector: Result<Connector<'_>, (Runner, String)>,
                           budget: u64,
                           level: usize| {
                    let runner = match connector {
                        Ok(connector) => connector.runner(),
                        Err((runner, _)) => runner,
                    };
                    let plan = Plan::new(shape, budget);
                    let expect = ReadExpectation {
                        served: plan.served,
                        emitted: plan.emitted,
                        check_record,
                        states: incremental,
                        check_state: None,
                    };
                    let mut row =
                        match self
                            .inputs
                            .partitioned(scenario, runner, &plan, incremental, level)
                        {
                            Ok(inputs) => {
                                let measure =
                                    || self.read_row(connector.clone(), &manifest, expect, &inputs);
                                match runner {
                                    Runner::Reference => measure(),
                                    _ => self.median_of(measure),
                                }
                            }
                            Err(e) => Row::unavailable(runner, "read", &format!("{e:#}")),
                        };
                    row.concurrency = Some(level);
                    row
                };
                let mut rows = Vec::new();
                for &level in sluice_levels {
                    rows.push(run(self.sluice_connector(), self.records, level));
                    if reference == ReferenceRuns::AtEachLevel {
                        rows.push(run(
                            self.reference_connector(),
                            self.reference_records,
                            level,
                        ));
                    }
                }
                if let ReferenceRuns::Once { level } = reference {
                    rows.push(run(
                        self.reference_connector(),
                        self.reference_records,
                        level,
                    ));
                }
                rows
            }
            Workload::Startup {
                commands,
                runs,
                reference_runs,
            } => {
                let mut rows = Vec::new();
                for &command in commands {
                    rows.push(self.startup_row(self.sluice_connector(), command, &manifest, runs));
                    rows.push(self.startup_row(
                        self.reference_connector(),
                        command,
                        &manifest,
                        reference_runs,
                    ));
                }
                rows
            }
        };
        ScenarioResult::new(scenario, rows)
    }

    /// Measures `self.runs` times: the run of median wall time, carrying the highest peak RSS of
    /// all runs; the first failure ends it.
    fn median_of(&self, mut measure: impl FnMut() -> Row) -> Row {
        let mut rows = Vec::new();
        for _ in 0..self.runs {
            let row = measure();
            if row.outcome != Outcome::Ok {
                return row;
            }
            rows.push(row);
        }
        let peak_rss_bytes = rows.iter().filter_map(|r| r.peak_rss_bytes).max();
        rows.sort_by(|a, b| a.wall_s.unwrap_or(0.0).total_cmp(&b.wall_s.unwrap_or(0.0)));
        let mut median = rows.swap_remove(rows.len() / 2);
        median.peak_rss_bytes = peak_rss_bytes;
        median
    }

    fn sluice_connector(&self) -> Result<Connector<'_>, (Runner, String)> {
        self.sluice
            .as_ref()
            .map(|p| Connector::Sluice(p))
            .map_err(|e| (Runner::Sluice, e.clone()))
    }

    fn reference_connector(&self) -> Result<Connector<'_>, (Runner, String)> {
        self.reference
            .as_ref()
            .map(|p| Connector::Reference(p))
            .map_err(|e| (Runner::Reference, e.clone()))
    }

    fn floor_row(
        &self,
        pagination: scenarios::Pagination,
        shape: RecordShape,
        records: u64,
    ) -> Row {
        self.server.serve_records(records);
        let mut row = Row::new(Runner::Floor, "read");
        match floor::run(self.server.addr(), pagination, shape) {
            Ok(run) => {
                let served = self.server.stats();
                row.wall_s = Some(run.wall.as_secs_f64());
                row.records = Some(served.records);
                row.source_records = Some(served.records);
                row.served_bytes = Some(run.bytes);
                row.requests = Some(run.pages);
                row.outcome = if served.records == records {
                    Outcome::Ok
                } else {
                    Outcome::Failed(format!(
                        "floor failed: fetched {} records, expected {records}",
                        served.records
                    ))
                };
            }
            Err(e) => row.outcome = Outcome::Failed(format!("floor failed: {e:#}")),
        }
        eprintln!("  {}", row.progress_line());
        row
    }

    fn read_row(
        &self,
        connector: Result<Connector<'_>, (Runner, String)>,
        manifest: &Path,
        expect: ReadExpectation,
        inputs: &RunInputs,
    ) -> Row {
        let connector = match connector {
            Ok(connector) => connector,
            Err((runner, why)) => return Row::unavailable(runner, "read", &why),
        };
        let runner = connector.runner();
        let mut row = Row::new(runner, "read");
        row.concurrency = inputs.concurrency;
        self.server.serve_records(expect.served);
        let mut command = connector.command("read", manifest, inputs);
        match run_child(&mut command, connector.time_limit()) {
            Ok(run) => {
                let served = self.server.stats();
                row.wall_s = Some(run.wall.as_secs_f64());
                row.peak_rss_bytes = run.peak_rss_bytes;
                row.records = Some(run.output.records);
                row.source_records = Some(served.records);
                row.served_bytes = Some(served.bytes);
                row.requests = Some(served.requests);
                row.outcome = match read_failure(&run, &served, expect) {
                    None => Outcome::Ok,
                    Some(why) => Outcome::Failed(format!("{} failed: {why}", runner.name())),
                };
            }
            Err(e) => {
                row.outcome = Outcome::Failed(format!("{} failed: {e:#}", runner.name()));
            }
        }
        eprintln!("  {}", row.progress_line());
        row
    }

    fn startup_row(
        &self,
        connector: Result<Connector<'_>, (Runner, String)>,
        command_name: &'static str,
        manifest: &Path,
        runs: usize,
    ) -> Row {
        let connector = match connector {
            Ok(connector) => connector,
            Err((runner, why)) => return Row::unavailable(runner, command_name, &why),
        };
        let runner = connector.runner();
        let mut row = Row::new(runner, command_name);
        self.server.serve_records(self.records);
        let inputs = self.inputs.plain();
        let mut walls = Vec::with_capacity(runs);
        let mut peak: Option<u64> = None;
        // One untimed run first, so every timed run finds the binary and libraries cached.
        for attempt in 0..=runs {
            let mut command = connector.command(command_name, manifest, &inputs);
            let failure = match run_child(&mut command, connector.time_limit()) {
                Ok(run) => match startup_failure(&run, command_name) {
                    None => {
                        if attempt > 0 {
                            walls.push(run.wall.as_secs_f64());
                            peak = peak.max(run.peak_rss_bytes);
                        }
                        None
                    }
                    Some(why) => Some(why),
                },
                Err(e) => Some(format!("{e:#}")),
            };
            if let Some(why) = failure {
                row.outcome = Outcome::Failed(format!("{} failed: {why}", runner.name()));
                eprintln!("  {}", row.progress_line());
                return row;
            }
        }
        walls.sort_by(f64::total_cmp);
        row.wall_s = walls.get(walls.len() / 2).copied();
        row.runs = Some(walls.len());
        row.peak_rss_bytes = peak;
        eprintln!("  {}", row.progress_line());
        row
    }
}

/// Why a read run does not count, if it does not.
fn read_failure(
    run: &ChildRun,
    served: &server::ServedStats,
    expect: ReadExpectation,
) -> Option<String> {
    let detail = || {
        run.output
            .first_error()
            .or_else(|| run.stderr_tail.lines().last().map(str::to_owned))
            .unwrap_or_else(|| "no error message".to_owned())
    };
    if run.timed_out {
        return Some(format!(
            "killed after {:.0} s ({} records so far)",
            run.wall.as_secs_f64(),
            run.output.records
        ));
    }
    // What the server refused says more than the connector's own message about it.
    let rejected = || match &served.first_rejection {
        Some(rejection) => format!(
            " (the server rejected {} request(s), first: {rejection})",
            served.rejected
        ),
        None => String::new(),
    };
    if !run.status.success() {
        return Some(format!("{}: {}{}", run.status, detail(), rejected()));
    }
    if let Some(error) = run.output.first_error() {
        return Some(format!("reported an error: {error}{}", rejected()));
    }
    if let Some(rejection) = &served.first_rejection {
        return Some(format!(
            "the server rejected {} request(s), first: {rejection}",
            served.rejected
        ));
    }
    if expect.states && run.output.states == 0 {
        return Some(format!(
            "an incremental read printed no STATE message ({} records)",
            run.output.records
        ));
    }
    if run.output.records != expect.emitted {
        return Some(format!(
            "emitted {} records, expected {} (it made {} requests and the server sent {} of {} records)",
            run.output.records, expect.emitted, served.requests, served.records, expect.served
        ));
    }
    if let Some(check_state) = expect.check_state {
        let Some(last) = run.output.last_state.as_deref() else {
            return Some("an incremental read printed no STATE message".to_owned());
        };
        let checked = serde_json::from_str(last)
            .map_err(|e| format!("its last STATE line is not JSON: {e}"))
            .and_then(|message| check_state(&message, expect.served));
        if let Err(why) = checked {
            return Some(why);
        }
    }
    let first = run.output.first_record.as_deref()?;
    match serde_json::from_str(first) {
        Ok(message) => (expect.check_record)(&message).err(),
        Err(e) => Some(format!("its first RECORD line is not JSON: {e}")),
    }
}

/// Why a spec/check run does not count, if it does not.
fn startup_failure(run: &ChildRun, command: &str) -> Option<String> {
    if run.timed_out {
        return Some(format!(
            "{command} killed after {:.0} s",
            run.wall.as_secs_f64()
        ));
    }
    if !run.status.success() {
        let detail = run
            .output
            .first_error()
            .or_else(|| run.stderr_tail.lines().last().map(str::to_owned))
            .unwrap_or_default();
        return Some(format!("{command} {}: {detail}", run.status));
    }
    let messages: Vec<serde_json::Value> = run.output.messages().collect();
    match command {
        "spec" if !messages.iter().any(|m| m["type"] == "SPEC") => {
            Some("spec printed no SPEC message".to_owned())
        }
        "check" => {
            let status = messages
                .iter()
                .find(|m| m["type"] == "CONNECTION_STATUS")
                .map(|m| &m["connectionStatus"]);
            match status {
                Some(status) if status["status"] == "SUCCEEDED" => None,
                Some(status) => Some(format!(
                    "check answered {}: {}",
                    status["status"].as_str().unwrap_or("?"),
                    status["message"].as_str().unwrap_or("no message")
                )),
                None => Some(format!(
                    "check printed no CONNECTION_STATUS: {}",
                    run.output
                        .first_error()
                        .unwrap_or_else(|| "no error message".to_owned())
                )),
            }
        }
        _ => None,
    }
}
