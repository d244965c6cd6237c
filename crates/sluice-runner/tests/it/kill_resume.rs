//! Killed syncs resume from their last STATE without losing a record.
//!
//! Each test reads a stream once without interruption, then for every kill point runs the same
//! read again, kills it with SIGKILL (no cleanup), and runs it once more from the last STATE the
//! killed run printed. The records of the killed run and of the resumed run together must hold
//! every record of the uninterrupted read (duplicates allowed, compared by id, never by order).
//!
//! Kill points cover the whole sync: after the k-th RECORD line for every k from 0 to the
//! total (lines printed after the kill point are not read, so a kill between a slice's last
//! record and its STATE is among them), after every STATE line, and when the server receives
//! its n-th request, for every n (the server kills the process before it answers, so a kill
//! during a parent's pages is among them). Each read runs at concurrency 1 and 4. A sync is
//! also killed twice: once after each k-th record, then its resumed run right after its first
//! STATE, before a last resume.
//!
//! The streams: a `DatetimeBasedCursor` with daily windows; the same per region of a
//! `ListPartitionRouter`; and a substream of an incremental parent with
//! `incremental_dependency`, incremental itself (in daily windows, or in one window so that a
//! partition closes at once and the first STATE already holds a `parent_state`).
//!
//! The server is deterministic: a fixed data set per path, filtered by the `since`/`until`
//! window the cursor sends (both inclusive), in pages of a fixed size. A day's records sit on
//! both bounds of its window, and two of them share a cursor value across a page boundary, so a
//! resume that skipped the state's own value would lose one; some windows are empty.
//!
//! The last test shows that the harness catches a loss: a resume from a state pushed ahead of
//! what was read fails, naming the kill point and the missing ids.

use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Manifests

/// A requester that tags every request with the run it belongs to (`x-run`), so the server
/// counts only the requests of the run it may kill.
const COMMON: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
definitions:
  requester:
    type: HttpRequester
    url_base: "URL_BASE"
    http_method: GET
    request_headers: {x-run: "{{ config['run'] }}"}
  selector:
    type: RecordSelector
    extractor: {type: DpathExtractor, field_path: [data]}
  paginator:
    type: DefaultPaginator
    page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
    pagination_strategy:
      type: CursorPagination
      cursor_value: "{{ response.next_page }}"
      stop_condition: "{{ not response.next_page }}"
"##;

/// A `DatetimeBasedCursor` from `start` to `end` (days of January 2024), in daily windows when
/// `daily`, else in one window.
fn cursor(start: u32, end: u32, daily: bool) -> String {
    let step = if daily {
        "step: P1D, cursor_granularity: PT1S, "
    } else {
        ""
    };
    format!(
        r#"{{type: DatetimeBasedCursor, cursor_field: updated_at, datetime_format: "%Y-%m-%dT%H:%M:%SZ", start_datetime: "2024-01-{start:02}T00:00:00Z", end_datetime: "2024-01-{end:02}T23:59:59Z", {step}start_time_option: {{type: RequestOption, inject_into: request_parameter, field_name: since}}, end_time_option: {{type: RequestOption, inject_into: request_parameter, field_name: until}}}}"#
    )
}

/// `items`: one `DatetimeBasedCursor` over four daily windows, two pages per window but the
/// third, which is empty.
fn plain_manifest() -> String {
    format!(
        r##"{COMMON}
streams:
  - type: DeclarativeStream
    name: items
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {{$ref: "#/definitions/requester", path: /items}}
      record_selector: {{$ref: "#/definitions/selector"}}
      paginator: {{$ref: "#/definitions/paginator"}}
    incremental_sync: {cursor}
"##,
        cursor = cursor(1, 4, true)
    )
}

/// `items` per region of a `ListPartitionRouter` (three regions), each with a daily
/// `DatetimeBasedCursor` over three windows of two pages (one of region b's is empty).
fn list_manifest() -> String {
    format!(
        r##"{COMMON}
streams:
  - type: DeclarativeStream
    name: items
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {{$ref: "#/definitions/requester", path: "/regions/{{{{ stream_partition.region }}}}/items"}}
      record_selector: {{$ref: "#/definitions/selector"}}
      paginator: {{$ref: "#/definitions/paginator"}}
      partition_router: {{type: ListPartitionRouter, values: [a, b, c], cursor_field: region}}
    incremental_sync: {cursor}
"##,
        cursor = cursor(1, 3, true)
    )
}

/// `items` of each record of an incremental parent `parents` (daily windows over three days,
/// one parent per page), with `incremental_dependency`; the child is incremental too, over two
/// days, in daily windows when `child_daily` (else in one window, so a partition closes at
/// once and its parent state is published in the first STATE).
fn substream_manifest(child_daily: bool) -> String {
    format!(
        r##"{COMMON}
  parents:
    type: DeclarativeStream
    name: parents
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {{$ref: "#/definitions/requester", path: /parents}}
      record_selector: {{$ref: "#/definitions/selector"}}
      paginator: {{$ref: "#/definitions/paginator"}}
    incremental_sync: {parent_cursor}
streams:
  - type: DeclarativeStream
    name: items
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {{$ref: "#/definitions/requester", path: "/parents/{{{{ stream_partition.parent_id }}}}/items"}}
      record_selector: {{$ref: "#/definitions/selector"}}
      paginator: {{$ref: "#/definitions/paginator"}}
      partition_router:
        type: SubstreamPartitionRouter
        parent_stream_configs:
          - type: ParentStreamConfig
            stream: {{$ref: "#/definitions/parents"}}
            parent_key: id
            partition_field: parent_id
            incremental_dependency: true
    incremental_sync: {child_cursor}
"##,
        parent_cursor = cursor(1, 3, true),
        child_cursor = cursor(1, 2, child_daily),
    )
}

// ---------------------------------------------------------------------------------------------
// Data

/// The times of a day's records: the first and last on the bounds of the day's window, and the
/// second and third sharing a cursor value (with pages of two they straddle a page boundary).
const TIMES: [&str; 4] = ["00:00:00", "05:00:00", "05:00:00", "23:59:59"];

/// Records `{prefix}{day}-{i}` for each of `days` and each of [`TIMES`], in ascending cursor
/// order.
fn daily_records(prefix: &str, days: &[u32]) -> Vec<Value> {
    days.iter()
        .flat_map(|day| {
            TIMES.iter().enumerate().map(move |(i, time)| {
                json!({
                    "id": format!("{prefix}{day}-{i}"),
                    "updated_at": format!("2024-01-{day:02}T{time}Z"),
                })
            })
        })
        .collect()
}

/// A path's records in the order the server gives them, and its page size.
type Paths = HashMap<String, (usize, Vec<Value>)>;

fn plain_data() -> Paths {
    HashMap::from([("/items".to_owned(), (2, daily_records("i", &[1, 2, 4])))])
}

fn list_data() -> Paths {
    ["a", "b", "c"]
        .into_iter()
        .map(|region| {
            // Region b has nothing on the second day: an empty window amid full ones.
            let days: &[u32] = if region == "b" { &[1, 3] } else { &[1, 2, 3] };
            let records = daily_records(&format!("{region}-"), days);
            (format!("/regions/{region}/items"), (2, records))
        })
        .collect()
}

/// Parents: one on the first day, two on the second (so two pages of one), one on the third;
/// two of them on the bounds of their window.
const PARENTS: [(&str, &str); 4] = [
    ("p1", "2024-01-01T00:00:00Z"),
    ("p2", "2024-01-02T06:00:00Z"),
    ("p3", "2024-01-02T23:59:59Z"),
    ("p4", "2024-01-03T06:00:00Z"),
];

fn substream_data() -> Paths {
    let parents = PARENTS
        .iter()
        .map(|(id, updated_at)| json!({"id": id, "updated_at": updated_at}))
        .collect();
    let mut paths = HashMap::from([("/parents".to_owned(), (1, parents))]);
    for (parent, _) in PARENTS {
        let records = daily_records(&format!("{parent}-"), &[1, 2]);
        paths.insert(format!("/parents/{parent}/items"), (2, records));
    }
    paths
}

// ---------------------------------------------------------------------------------------------
// The server

/// The test API and what it knows of the run in progress.
struct Api {
    paths: Paths,
    /// The run whose requests are counted (the `x-run` header), 0 for none.
    run: AtomicU64,
    /// Requests of that run so far.
    requests: AtomicUsize,
    /// The request of that run on whose arrival the server kills the process, 0 for none.
    kill_at: AtomicUsize,
    /// The process of a run that may be killed. Held locked while it is spawned, so a request
    /// cannot arrive before it is here.
    child: Mutex<Option<Child>>,
}

struct Responder(Arc<Api>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let api = &self.0;
        let run = request
            .headers
            .get("x-run")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("run-"))
            .and_then(|v| v.parse::<u64>().ok());
        if run.is_some() && run == Some(api.run.load(Ordering::SeqCst)) {
            let n = api.requests.fetch_add(1, Ordering::SeqCst) + 1;
            if n == api.kill_at.load(Ordering::SeqCst) {
                if let Some(child) = api.child.lock().unwrap().as_mut() {
                    let _ = child.kill();
                }
            }
        }
        let Some((page_size, records)) = api.paths.get(request.url.path()) else {
            return ResponseTemplate::new(404);
        };
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let (Some(since), Some(until)) = (query.get("since"), query.get("until")) else {
            return ResponseTemplate::new(400).set_body_string("since and until are required");
        };
        let page: usize = query.get("page").map_or(1, |p| p.parse().unwrap_or(0));
        if page == 0 {
            return ResponseTemplate::new(400).set_body_string("bad page");
        }
        // The format is fixed, so text order is time order.
        let in_window: Vec<&Value> = records
            .iter()
            .filter(|r| {
                let at = r["updated_at"].as_str().unwrap();
                since.as_str() <= at && at <= until.as_str()
            })
            .collect();
        let data: Vec<&Value> = in_window
            .iter()
            .skip((page - 1) * page_size)
            .take(*page_size)
            .copied()
            .collect();
        let next_page = if page * page_size < in_window.len() {
            json!(page + 1)
        } else {
            Value::Null
        };
        ResponseTemplate::new(200).set_body_json(json!({"data": data, "next_page": next_page}))
    }
}

// ---------------------------------------------------------------------------------------------
// Running sluice

/// Where a run is killed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kill {
    /// Right after its k-th RECORD line (0: as soon as it starts).
    AfterRecords(usize),
    /// Right after its j-th STATE line.
    AfterStates(usize),
    /// When the server receives its n-th request, before the server answers.
    AtRequest(usize),
}

impl fmt::Display for Kill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kill::AfterRecords(k) => write!(f, "after RECORD #{k}"),
            Kill::AfterStates(j) => write!(f, "after STATE #{j}"),
            Kill::AtRequest(n) => write!(f, "at request #{n}"),
        }
    }
}

/// What a run printed.
#[derive(Debug, Default)]
struct Printed {
    ids: Vec<String>,
    states: usize,
    /// The last STATE message's `state`.
    last_state: Option<Value>,
    /// Requests the server counted for the run.
    requests: usize,
}

impl Printed {
    /// Takes one line of output; gives whether it was a RECORD or STATE (its kind).
    fn take(&mut self, line: &str) -> Result<&'static str, String> {
        let message: Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        match message["type"].as_str() {
            Some("RECORD") => {
                let id = &message["record"]["data"]["id"];
                let id = id
                    .as_str()
                    .ok_or_else(|| format!("a record without id: {line}"))?;
                self.ids.push(id.to_owned());
                Ok("RECORD")
            }
            Some("STATE") => {
                self.states += 1;
                self.last_state = Some(message["state"].clone());
                Ok("STATE")
            }
            _ => Ok(""),
        }
    }
}

/// One stream, its server, and the files every run shares.
struct Harness {
    _server: MockServer,
    api: Arc<Api>,
    dir: tempfile::TempDir,
    manifest: PathBuf,
    catalog: PathBuf,
    runs: AtomicU64,
}

impl Harness {
    fn new(manifest: &str, paths: Paths) -> Self {
        let api = Arc::new(Api {
            paths,
            run: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
            kill_at: AtomicUsize::new(0),
            child: Mutex::new(None),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The server runs on a thread of its own; this runtime only starts it.
        let server = runtime.block_on(async {
            let server = MockServer::builder()
                .disable_request_recording()
                .start()
                .await;
            Mock::given(any())
                .respond_with(Responder(api.clone()))
                .mount(&server)
                .await;
            server
        });
        let dir = tempfile::tempdir().unwrap();
        let manifest_path = dir.path().join("manifest.yaml");
        std::fs::write(&manifest_path, manifest.replace("URL_BASE", &server.uri())).unwrap();
        let catalog = dir.path().join("catalog.json");
        let catalog_json = json!({"streams": [{
            "stream": {"name": "items", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
            "sync_mode": "incremental",
            "destination_sync_mode": "append"
        }]});
        std::fs::write(&catalog, catalog_json.to_string()).unwrap();
        Self {
            _server: server,
            api,
            dir,
            manifest: manifest_path,
            catalog,
            runs: AtomicU64::new(0),
        }
    }

    /// Starts counting the requests of a new run (killing it at request `kill_at`, 0 for
    /// never) and gives the command that makes it.
    fn start_run(&self, state: Option<&Value>, flags: &[&str], kill_at: usize) -> Command {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let config = self.dir.path().join(format!("config-{run}.json"));
        std::fs::write(&config, json!({"run": format!("run-{run}")}).to_string()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("read")
            .arg("--manifest")
            .arg(&self.manifest)
            .arg("--config")
            .arg(&config)
            .arg("--catalog")
            .arg(&self.catalog)
            .args(flags);
        if let Some(state) = state {
            let state_file = self.dir.path().join(format!("state-{run}.json"));
            std::fs::write(&state_file, json!([state]).to_string()).unwrap();
            command.arg("--state").arg(state_file);
        }
        self.api.requests.store(0, Ordering::SeqCst);
        self.api.kill_at.store(kill_at, Ordering::SeqCst);
        self.api.run.store(run, Ordering::SeqCst);
        command
    }

    /// A read to its end: what it printed, or why it failed.
    fn full_run(&self, state: Option<&Value>, flags: &[&str]) -> Result<Printed, String> {
        let output = self
            .start_run(state, flags, 0)
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "the read failed ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let mut printed = Printed::default();
        for line in stdout.lines() {
            printed.take(line)?;
        }
        printed.requests = self.api.requests.load(Ordering::SeqCst);
        Ok(printed)
    }

    fn kill_child(&self) {
        if let Some(child) = self.api.child.lock().unwrap().as_mut() {
            let _ = child.kill();
        }
    }

    /// A read from `state` killed at `kill`: what it printed up to there.
    fn killed_run(
        &self,
        state: Option<&Value>,
        kill: Kill,
        flags: &[&str],
    ) -> Result<Printed, String> {
        let kill_at = match kill {
            Kill::AtRequest(n) => n,
            _ => 0,
        };
        let mut command = self.start_run(state, flags, kill_at);
        let stdout = {
            let mut slot = self.api.child.lock().unwrap();
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?;
            let stdout = child.stdout.take().unwrap();
            *slot = Some(child);
            stdout
        };
        if kill == Kill::AfterRecords(0) {
            self.kill_child();
        }
        let mut printed = Printed::default();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let mut reached = kill == Kill::AfterRecords(0);
        let mut outcome = Ok(());
        while !reached {
            line.clear();
            match reader.read_line(&mut line) {
                // The end, or a line the kill cut short (which no reader would take).
                Ok(0) => break,
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {}
                Err(e) => {
                    outcome = Err(e.to_string());
                    break;
                }
            }
            let kind = match printed.take(&line) {
                Ok(kind) => kind,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            reached = match kill {
                Kill::AfterRecords(k) => kind == "RECORD" && printed.ids.len() == k,
                Kill::AfterStates(j) => kind == "STATE" && printed.states == j,
                Kill::AtRequest(_) => false,
            };
            if reached {
                self.kill_child();
            }
        }
        drop(reader);
        let mut child = self.api.child.lock().unwrap().take().unwrap();
        let _ = child.kill();
        let status = child.wait().map_err(|e| e.to_string())?;
        printed.requests = self.api.requests.load(Ordering::SeqCst);
        self.api.kill_at.store(0, Ordering::SeqCst);
        outcome?;
        if !reached && status.signal() != Some(9) {
            return Err(format!(
                "the run was to be killed {kill} but ended first ({status}), after {} records and {} requests",
                printed.ids.len(),
                printed.requests
            ));
        }
        Ok(printed)
    }
}

// ---------------------------------------------------------------------------------------------
// Sweeping the kill points

/// A change made to a state before resuming from it (only to show that a loss is caught).
type Tamper = fn(&Value) -> Value;

/// What a sweep over the kill points found.
struct Sweep {
    label: String,
    kill_points: usize,
    /// One line per kill point that lost records (or whose runs failed).
    failures: Vec<String>,
    /// Resumes that read fewer records than the whole sync: the state was used.
    shortened_resumes: usize,
    /// Kill points whose resume state held a non-empty `parent_state` before the sync's end.
    mid_sync_parent_states: usize,
}

impl Sweep {
    fn new(label: &str, kill_points: usize) -> Self {
        Self {
            label: label.to_owned(),
            kill_points,
            failures: Vec::new(),
            shortened_resumes: 0,
            mid_sync_parent_states: 0,
        }
    }
}

impl Sweep {
    fn assert_no_loss(&self) {
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} kill points lost records or failed:\n{}",
            self.label,
            self.failures.len(),
            self.kill_points,
            self.failures.join("\n")
        );
        assert!(
            self.shortened_resumes > 0,
            "{}: no resume read less than the whole sync, so no state was put to the test",
            self.label
        );
    }
}

/// The `--concurrency` flag and `extra_flags`, and the label of a sweep with them.
fn flags_and_label<'a>(
    name: &str,
    concurrency: &'a str,
    extra_flags: &[&'a str],
) -> (Vec<&'a str>, String) {
    let mut flags = vec!["--concurrency", concurrency];
    flags.extend_from_slice(extra_flags);
    let label = format!("{name} [{}]", flags.join(" "));
    (flags, label)
}

/// A read without interruption, which reads every record of the data set once.
fn uninterrupted(label: &str, harness: &Harness, flags: &[&str]) -> Printed {
    let whole = harness
        .full_run(None, flags)
        .unwrap_or_else(|e| panic!("{label}: the uninterrupted read failed: {e}"));
    let all: BTreeSet<&str> = whole.ids.iter().map(String::as_str).collect();
    let expected: BTreeSet<&str> = harness
        .api
        .paths
        .iter()
        .filter(|(path, _)| path.ends_with("/items"))
        .flat_map(|(_, (_, records))| records.iter())
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        all, expected,
        "{label}: the uninterrupted read does not read the data set"
    );
    assert_eq!(
        whole.ids.len(),
        all.len(),
        "{label}: the uninterrupted read repeats records"
    );
    whole
}

/// Reads once without interruption, then kills a read at every kill point (or only at `only`)
/// and resumes it from its last STATE, passed through `tamper`.
fn sweep(
    name: &str,
    harness: &Harness,
    concurrency: usize,
    extra_flags: &[&str],
    tamper: Option<Tamper>,
    only: Option<&[Kill]>,
) -> Sweep {
    let concurrency = concurrency.to_string();
    let (flags, label) = flags_and_label(name, &concurrency, extra_flags);
    let started = std::time::Instant::now();
    let whole = uninterrupted(&label, harness, &flags);
    let all: BTreeSet<&str> = whole.ids.iter().map(String::as_str).collect();

    let kills: Vec<Kill> = match only {
        Some(only) => only.to_vec(),
        None => (0..=whole.ids.len())
            .map(Kill::AfterRecords)
            .chain((1..=whole.states).map(Kill::AfterStates))
            .chain((1..=whole.requests).map(Kill::AtRequest))
            .collect(),
    };
    let mut sweep = Sweep::new(&label, kills.len());
    for kill in kills {
        let killed = match harness.killed_run(None, kill, &flags) {
            Ok(killed) => killed,
            Err(e) => {
                sweep.failures.push(format!("killed {kill}: {e}"));
                continue;
            }
        };
        let state = killed.last_state.as_ref().map(|s| match tamper {
            Some(tamper) => tamper(s),
            None => s.clone(),
        });
        let resumed = match harness.full_run(state.as_ref(), &flags) {
            Ok(resumed) => resumed,
            Err(e) => {
                sweep.failures.push(format!(
                    "killed {kill}, the resume from {} failed: {e}",
                    describe(state.as_ref())
                ));
                continue;
            }
        };
        if resumed.ids.len() < all.len() {
            sweep.shortened_resumes += 1;
        }
        let stream_state = state.as_ref().map(|s| &s["stream"]["stream_state"]);
        if killed.states < whole.states
            && stream_state
                .is_some_and(|s| s["parent_state"].as_object().is_some_and(|p| !p.is_empty()))
        {
            sweep.mid_sync_parent_states += 1;
        }
        let seen: BTreeSet<&str> = killed
            .ids
            .iter()
            .chain(&resumed.ids)
            .map(String::as_str)
            .collect();
        if let Some(missing) = missing(&all, &seen) {
            sweep.failures.push(format!(
                "killed {kill} (it had printed {} records, {} STATE, the server had {} requests), resumed from {}: missing ids {missing}",
                killed.ids.len(),
                killed.states,
                killed.requests,
                describe(state.as_ref()),
            ));
        }
    }
    eprintln!(
        "{label}: {} kill points ({} records, {} STATE, {} requests uninterrupted) in {:.1?}",
        sweep.kill_points,
        whole.ids.len(),
        whole.states,
        whole.requests,
        started.elapsed()
    );
    sweep
}

/// A sync killed twice: killed after its k-th RECORD (every k) or its j-th STATE (every j),
/// resumed from its last STATE and killed again right after the resumed run's first STATE,
/// then resumed once more from the last STATE printed. The three runs' records together must
/// hold every record.
fn sweep_twice(name: &str, harness: &Harness, concurrency: usize) -> Sweep {
    let concurrency = concurrency.to_string();
    let (flags, label) = flags_and_label(name, &concurrency, &[]);
    let label = format!("{label}, killed twice");
    let started = std::time::Instant::now();
    let whole = uninterrupted(&label, harness, &flags);
    let all: BTreeSet<&str> = whole.ids.iter().map(String::as_str).collect();
    let kills: Vec<Kill> = (0..=whole.ids.len())
        .map(Kill::AfterRecords)
        .chain((1..=whole.states).map(Kill::AfterStates))
        .collect();
    let mut sweep = Sweep::new(&label, kills.len());
    for kill in kills {
        let first = match harness.killed_run(None, kill, &flags) {
            Ok(first) => first,
            Err(e) => {
                sweep.failures.push(format!("killed {kill}: {e}"));
                continue;
            }
        };
        let first_state = first.last_state.as_ref();
        let again = Kill::AfterStates(1);
        let second = match harness.killed_run(first_state, again, &flags) {
            Ok(second) => second,
            Err(e) => {
                sweep.failures.push(format!(
                    "killed {kill}, resumed from {} and killed {again}: {e}",
                    describe(first_state)
                ));
                continue;
            }
        };
        // Without a STATE of its own the second run leaves the first one's in place.
        let second_state = second.last_state.as_ref().or(first_state);
        let third = match harness.full_run(second_state, &flags) {
            Ok(third) => third,
            Err(e) => {
                sweep.failures.push(format!(
                    "killed {kill}, resumed and killed {again}, the resume from {} failed: {e}",
                    describe(second_state)
                ));
                continue;
            }
        };
        if third.ids.len() < all.len() {
            sweep.shortened_resumes += 1;
        }
        let seen: BTreeSet<&str> = first
            .ids
            .iter()
            .chain(&second.ids)
            .chain(&third.ids)
            .map(String::as_str)
            .collect();
        if let Some(missing) = missing(&all, &seen) {
            sweep.failures.push(format!(
                "killed {kill} (after {} records, {} STATE), resumed from {} and killed {again} (after {} records), resumed from {}: missing ids {missing}",
                first.ids.len(),
                first.states,
                describe(first_state),
                second.ids.len(),
                describe(second_state),
            ));
        }
    }
    eprintln!(
        "{label}: {} kill points in {:.1?}",
        sweep.kill_points,
        started.elapsed()
    );
    sweep
}

/// The ids of `all` not in `seen` (the first 20 of them), if any.
fn missing(all: &BTreeSet<&str>, seen: &BTreeSet<&str>) -> Option<String> {
    let missing: Vec<&str> = all.difference(seen).copied().collect();
    match missing.len() {
        0 => None,
        n if n <= 20 => Some(format!("{missing:?}")),
        n => Some(format!("{:?} and {} more", &missing[..20], n - 20)),
    }
}

fn describe(state: Option<&Value>) -> String {
    match state {
        Some(state) => format!("state {}", state["stream"]["stream_state"]),
        None => "no state (a fresh read)".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

fn plain_sweep(concurrency: usize, flags: &[&str]) -> Sweep {
    let harness = Harness::new(&plain_manifest(), plain_data());
    sweep("datetime stream", &harness, concurrency, flags, None, None)
}

fn list_sweep(concurrency: usize) -> Sweep {
    let harness = Harness::new(&list_manifest(), list_data());
    sweep(
        "list-partitioned stream",
        &harness,
        concurrency,
        &[],
        None,
        None,
    )
}

fn substream_sweep(concurrency: usize, child_daily: bool) -> Sweep {
    let harness = Harness::new(&substream_manifest(child_daily), substream_data());
    let name = if child_daily {
        "substream of an incremental parent, child in daily windows"
    } else {
        "substream of an incremental parent, child in one window"
    };
    sweep(name, &harness, concurrency, &[], None, None)
}

#[test]
fn a_datetime_stream_killed_anywhere_resumes_without_loss_at_concurrency_1() {
    plain_sweep(1, &[]).assert_no_loss();
}

#[test]
fn a_datetime_stream_killed_anywhere_resumes_without_loss_at_concurrency_4() {
    plain_sweep(4, &[]).assert_no_loss();
}

/// `--checkpoint-every 1`: a STATE after every record of a window whose records ascend, so
/// kills inside a window resume from inside it.
#[test]
fn a_checkpointed_datetime_stream_killed_anywhere_resumes_without_loss() {
    for concurrency in [1, 4] {
        plain_sweep(concurrency, &["--checkpoint-every", "1"]).assert_no_loss();
    }
}

#[test]
fn a_list_partitioned_stream_killed_anywhere_resumes_without_loss_at_concurrency_1() {
    list_sweep(1).assert_no_loss();
}

#[test]
fn a_list_partitioned_stream_killed_anywhere_resumes_without_loss_at_concurrency_4() {
    list_sweep(4).assert_no_loss();
}

#[test]
fn a_substream_with_incremental_dependency_killed_anywhere_resumes_without_loss_at_concurrency_1() {
    substream_sweep(1, true).assert_no_loss();
    let single_window = substream_sweep(1, false);
    single_window.assert_no_loss();
    // The first partition closes before any other: the first STATE holds its parent's state.
    assert!(
        single_window.mid_sync_parent_states > 0,
        "{}: no resume started from a mid-sync state with a parent_state",
        single_window.label
    );
}

#[test]
fn a_substream_with_incremental_dependency_killed_anywhere_resumes_without_loss_at_concurrency_4() {
    substream_sweep(4, true).assert_no_loss();
    substream_sweep(4, false).assert_no_loss();
}

/// Every stream of these tests, by name: its manifest and its data.
fn all_streams() -> [(&'static str, String, Paths); 4] {
    [
        ("datetime stream", plain_manifest(), plain_data()),
        ("list-partitioned stream", list_manifest(), list_data()),
        (
            "substream, child in daily windows",
            substream_manifest(true),
            substream_data(),
        ),
        (
            "substream, child in one window",
            substream_manifest(false),
            substream_data(),
        ),
    ]
}

fn killed_twice(concurrency: usize) {
    for (name, manifest, data) in all_streams() {
        let harness = Harness::new(&manifest, data);
        sweep_twice(name, &harness, concurrency).assert_no_loss();
    }
}

#[test]
fn a_resumed_sync_killed_again_resumes_without_loss_at_concurrency_1() {
    killed_twice(1);
}

#[test]
fn a_resumed_sync_killed_again_resumes_without_loss_at_concurrency_4() {
    killed_twice(4);
}

/// Every datetime in `state` two days later: a state that promises more than was read.
fn two_days_ahead(state: &Value) -> Value {
    match state {
        Value::String(text) => match text.strip_prefix("2024-01-") {
            Some(rest) if rest.len() > 2 => {
                let day: u32 = rest[..2].parse().unwrap();
                Value::String(format!("2024-01-{:02}{}", day + 2, &rest[2..]))
            }
            _ => state.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(two_days_ahead).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), two_days_ahead(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The harness catches a loss: resuming from the first STATE pushed two days ahead loses
/// records in every stream, and the failure names the kill point and the missing ids.
#[test]
fn a_resume_from_a_state_ahead_of_the_records_read_is_caught() {
    for (name, manifest, data) in all_streams() {
        let harness = Harness::new(&manifest, data);
        let sweep = sweep(
            name,
            &harness,
            1,
            &[],
            Some(two_days_ahead),
            Some(&[Kill::AfterStates(1)]),
        );
        assert_eq!(sweep.failures.len(), 1, "{name}: the loss went unnoticed");
        let failure = &sweep.failures[0];
        assert!(
            failure.contains("killed after STATE #1") && failure.contains("missing ids [\""),
            "{name}: {failure}"
        );
    }
}
