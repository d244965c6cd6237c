//! Concurrent reads: the limit on partitions read at once is honoured and reached, a sync with
//! more than 10,000 partitions at concurrency 1 does not deadlock, one writer keeps each
//! partition's records in order and before the STATE that covers them, and the records and
//! final states are the same at every concurrency level.
//!
//! The tests run against a small threaded HTTP/1.1 server (std::net, keep-alive) that counts the
//! requests in flight at once, which a mock server's delay cannot show.

use crate::support::write_manifest_and_config;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The test server.

/// A request as the handler sees it: its path and decoded query parameters.
struct Request {
    path: String,
    query: HashMap<String, String>,
}

impl Request {
    fn parse(target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect();
        Self {
            path: percent_decode(path),
            query,
        }
    }

    fn param(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The `page` parameter, 1 when absent.
    fn page(&self) -> u64 {
        self.param("page").parse().unwrap_or(1)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| u8::from_str_radix(&text[i + 1..i + 3], 16).ok())
            .flatten();
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// What the handler answers: a status, a JSON body, and how long to wait before answering.
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: Value, delay: Duration) -> Self {
        Self {
            status: 200,
            body: body.to_string(),
            delay,
        }
    }

    fn not_found() -> Self {
        Self {
            status: 404,
            body: "{}".to_owned(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicUsize,
}

struct Server {
    url: String,
    counters: Arc<Counters>,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// Serves `handler` on 127.0.0.1, a thread per connection, for the rest of the test process.
fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counters = Arc::new(Counters::default());
    let handler: Arc<Handler> = Arc::new(handler);
    let shared = Arc::clone(&counters);
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(connection) = connection else { break };
            let handler = Arc::clone(&handler);
            let counters = Arc::clone(&shared);
            std::thread::spawn(move || serve_connection(connection, &*handler, &counters));
        }
    });
    Server { url, counters }
}

/// Answers the requests of one keep-alive connection until the client closes it. A request
/// counts as in flight from its head being read until just before its answer is written, so
/// the count can only be lower than the client's, never higher.
fn serve_connection(mut socket: TcpStream, handler: &Handler, counters: &Counters) {
    let _ = socket.set_nodelay(true);
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match socket.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let request = Request::parse(target);
        let now = counters.in_flight.fetch_add(1, SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, SeqCst);
        counters.requests.fetch_add(1, SeqCst);
        let reply = handler(&request);
        std::thread::sleep(reply.delay);
        counters.in_flight.fetch_sub(1, SeqCst);
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            reply.status,
            reply.body.len(),
            reply.body
        );
        if socket.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running sluice and reading what it printed.

/// One successful `sluice read`: its stdout lines (each checked to be one JSON message), how long
/// it took, and its stderr.
struct Run {
    messages: Vec<Value>,
    elapsed: Duration,
    stderr: String,
}

impl Run {
    /// The data of `stream`'s records, each with the index of its line.
    fn records(&self, stream: &str) -> Vec<(usize, &Value)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m["type"] == "RECORD" && m["record"]["stream"] == stream)
            .map(|(i, m)| (i, &m["record"]["data"]))
            .collect()
    }

    /// The stream states of `stream`'s STATE messages, each with the index of its line.
    fn states(&self, stream: &str) -> Vec<(usize, &Value)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m["type"] == "STATE" && m["state"]["stream"]["stream_descriptor"]["name"] == stream
            })
            .map(|(i, m)| (i, &m["state"]["stream"]["stream_state"]))
            .collect()
    }

    /// The last state of `stream`, without the sync's duration (`lookback_window`) and with a
    /// per-partition state's `states` sorted, so runs at different concurrency compare equal.
    fn final_state(&self, stream: &str) -> Value {
        let (_, state) = *self
            .states(stream)
            .last()
            .unwrap_or_else(|| panic!("no STATE for {stream}"));
        let mut state = state.clone();
        if let Some(object) = state.as_object_mut() {
            object.remove("lookback_window");
            if let Some(Value::Array(states)) = object.get_mut("states") {
                states.sort_by_key(|entry| entry.to_string());
            }
        }
        state
    }

    /// The records of `stream` as sorted JSON texts: a multiset.
    fn record_multiset(&self, stream: &str) -> Vec<String> {
        let mut records: Vec<String> = self
            .records(stream)
            .into_iter()
            .map(|(_, data)| data.to_string())
            .collect();
        records.sort();
        records
    }
}

/// A configured catalog: `(name, incremental)` per stream.
fn catalog(streams: &[(&str, bool)]) -> String {
    let streams: Vec<Value> = streams
        .iter()
        .map(|(name, incremental)| {
            let mode = if *incremental {
                "incremental"
            } else {
                "full_refresh"
            };
            json!({
                "stream": {
                    "name": name,
                    "json_schema": {},
                    "supported_sync_modes": ["full_refresh", "incremental"]
                },
                "sync_mode": mode,
                "destination_sync_mode": if *incremental { "append" } else { "overwrite" }
            })
        })
        .collect();
    json!({ "streams": streams }).to_string()
}

/// Runs `sluice read` in `dir` on `manifest` (its `URL_BASE` replaced by `url`) with `config`,
/// `catalog` and `flags`; kills it and fails after `timeout`. Every stdout line must be one JSON
/// message, and the sync must succeed.
fn sluice(
    dir: &Path,
    manifest: &str,
    url: &str,
    config: &Value,
    catalog: &str,
    flags: &[&str],
    timeout: Duration,
) -> Run {
    std::fs::create_dir_all(dir).unwrap();
    let (manifest_path, config_path) = write_manifest_and_config(dir, manifest, url);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let catalog_path = dir.join("catalog.json");
    std::fs::write(&catalog_path, catalog).unwrap();
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("read")
        .arg("--manifest")
        .arg(&manifest_path)
        .arg("--config")
        .arg(&config_path)
        .arg("--catalog")
        .arg(&catalog_path)
        .args(flags)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!(
                "sluice read {flags:?} still running after {timeout:?} (killed): {} lines on stdout; stderr ends:\n{}",
                stdout.lines().count(),
                tail(&stderr, 2000)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success(),
        "sluice read {flags:?} failed ({status}); stderr ends:\n{}\nstdout ends:\n{}",
        tail(&stderr, 3000),
        tail(&stdout, 3000)
    );
    let messages = stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line {i} is not one JSON value ({e}): {line}"));
            assert!(
                message.is_object() && message["type"].is_string(),
                "stdout line {i} is not an Airbyte message: {line}"
            );
            message
        })
        .collect();
    Run {
        messages,
        elapsed,
        stderr,
    }
}

fn tail(text: &str, chars: usize) -> &str {
    let start = text.len().saturating_sub(chars);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

// ---------------------------------------------------------------------------------------------
// 1. The limit is honoured and reached.

const PARTITIONS: usize = 16;
const SLOW: Duration = Duration::from_millis(200);

const LIMIT_MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
CONCURRENCY_LEVEL
streams:
STREAMS
"##;

/// A stream of [`LIMIT_MANIFEST`] named `name`, one partition per value.
fn limit_stream(name: &str, values: &[String]) -> String {
    r##"
  - type: DeclarativeStream
    name: NAME
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /items, http_method: GET}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
      partition_router:
        type: ListPartitionRouter
        cursor_field: partition
        values: VALUES
        request_option: {type: RequestOption, inject_into: request_parameter, field_name: partition}
"##
    .replace("NAME", name)
    .replace("VALUES", &json!(values).to_string())
}

struct LimitCase {
    name: &'static str,
    concurrency_level: &'static str,
    config: Value,
    flags: &'static [&'static str],
    /// The streams the partitions are split between.
    streams: &'static [&'static str],
    expected: usize,
}

/// The most requests in flight at once, the records' partitions, and the run.
fn read_slowly(dir: &Path, case: &LimitCase) -> (usize, Vec<String>, Run) {
    let server = serve(|request| {
        if request.path != "/items" {
            return Reply::not_found();
        }
        Reply::json(
            json!({"data": [{"partition": request.param("partition")}]}),
            SLOW,
        )
    });
    let values: Vec<String> = (0..PARTITIONS).map(|i| format!("p{i:02}")).collect();
    let per_stream = PARTITIONS / case.streams.len();
    let streams: String = case
        .streams
        .iter()
        .zip(values.chunks(per_stream))
        .map(|(name, values)| limit_stream(name, values))
        .collect();
    let manifest = LIMIT_MANIFEST
        .replace("CONCURRENCY_LEVEL", case.concurrency_level)
        .replace("STREAMS", &streams);
    let configured: Vec<(&str, bool)> = case.streams.iter().map(|name| (*name, false)).collect();
    let run = sluice(
        &dir.join(case.name),
        &manifest,
        &server.url,
        &case.config,
        &catalog(&configured),
        case.flags,
        Duration::from_secs(60),
    );
    let mut partitions: Vec<String> = case
        .streams
        .iter()
        .flat_map(|stream| run.records(stream))
        .map(|(_, data)| data["partition"].as_str().unwrap_or_default().to_owned())
        .collect();
    partitions.sort();
    assert_eq!(
        server.counters.requests.load(SeqCst),
        PARTITIONS,
        "{}: one request per partition",
        case.name
    );
    (server.counters.max_in_flight.load(SeqCst), partitions, run)
}

#[test]
fn the_number_of_partitions_read_at_once_is_the_concurrency_and_never_more() {
    let level_4 =
        "concurrency_level: {type: ConcurrencyLevel, default_concurrency: 4, max_concurrency: 10}";
    let cases = [
        LimitCase {
            name: "flag-1",
            concurrency_level: "",
            config: json!({}),
            flags: &["--concurrency", "1"],
            streams: &["items"],
            expected: 1,
        },
        LimitCase {
            name: "flag-4",
            concurrency_level: "",
            config: json!({}),
            flags: &["--concurrency", "4"],
            streams: &["items"],
            expected: 4,
        },
        // The flag overrides the manifest's level.
        LimitCase {
            name: "flag-8",
            concurrency_level: level_4,
            config: json!({}),
            flags: &["--concurrency", "8"],
            streams: &["items"],
            expected: 8,
        },
        LimitCase {
            name: "manifest-4",
            concurrency_level: level_4,
            config: json!({}),
            flags: &[],
            streams: &["items"],
            expected: 4,
        },
        LimitCase {
            name: "default-2",
            concurrency_level: "",
            config: json!({}),
            flags: &[],
            streams: &["items"],
            expected: 2,
        },
        // The limit holds across streams: two streams generate their partitions at once (half
        // the level), but 4 partitions are read at once in all.
        LimitCase {
            name: "two-streams-4",
            concurrency_level: "",
            config: json!({}),
            flags: &["--concurrency", "4"],
            streams: &["items", "more_items"],
            expected: 4,
        },
        // A level from the config is capped by max_concurrency.
        LimitCase {
            name: "config-20-capped-at-6",
            concurrency_level: r#"concurrency_level: {type: ConcurrencyLevel, default_concurrency: "{{ config['workers'] }}", max_concurrency: 6}"#,
            config: json!({"workers": 20}),
            flags: &[],
            streams: &["items"],
            expected: 6,
        },
    ];
    let work = tempfile::tempdir().unwrap();
    let expected_partitions: Vec<String> = (0..PARTITIONS).map(|i| format!("p{i:02}")).collect();
    // The cases run side by side, each against its own server: the whole takes as long as the
    // slowest (16 × 200 ms at concurrency 1).
    let outcomes: Vec<(usize, Vec<String>, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(|| read_slowly(work.path(), case)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (case, (max_in_flight, partitions, _)) in cases.iter().zip(&outcomes) {
        assert_eq!(
            partitions, &expected_partitions,
            "{}: one record per partition",
            case.name
        );
        assert_eq!(
            *max_in_flight, case.expected,
            "{}: the most requests in flight at once",
            case.name
        );
    }
    // Two streams were active at once (at concurrency 4 two streams generate partitions side by
    // side), so the 4 is a limit shared by the streams, not one per stream.
    let (_, _, two_streams) = &outcomes[5];
    let status_line = |stream: &str, status: &str| {
        two_streams.messages.iter().position(|m| {
            m["type"] == "TRACE"
                && m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
                && m["trace"]["stream_status"]["status"] == status
        })
    };
    let second_started = status_line("more_items", "STARTED");
    let first_complete = status_line("items", "COMPLETE");
    assert!(
        second_started.is_some() && second_started < first_complete,
        "more_items STARTED on line {second_started:?}, items COMPLETE on line {first_complete:?}"
    );
    let at_1 = outcomes[0].2.elapsed;
    let at_8 = outcomes[2].2.elapsed;
    assert!(
        at_8.as_secs_f64() < 0.5 * at_1.as_secs_f64(),
        "concurrency 8 took {at_8:?}, concurrency 1 took {at_1:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. No deadlock at concurrency 1 with more than 10,000 partitions.

const PARENT_PAGE: u64 = 1000;

const MANY_MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [parents]}
definitions:
  requester: {type: HttpRequester, url_base: "URL_BASE", http_method: GET}
  selector:
    type: RecordSelector
    extractor: {type: DpathExtractor, field_path: [data]}
  parents:
    type: DeclarativeStream
    name: parents
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /parents}
      record_selector: {$ref: "#/definitions/selector"}
      paginator:
        type: DefaultPaginator
        pagination_strategy: {type: PageIncrement, page_size: 1000, start_from_page: 1, inject_on_first_request: true}
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
streams:
  - type: DeclarativeStream
    name: children
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: "/children/{{ stream_partition.parent_id }}"}
      record_selector: {$ref: "#/definitions/selector"}
      partition_router:
        type: SubstreamPartitionRouter
        parent_stream_configs:
          - type: ParentStreamConfig
            stream: {$ref: "#/definitions/parents"}
            parent_key: id
            partition_field: parent_id
INCREMENTAL
  - $ref: "#/definitions/parents"
"##;

/// The child's cursor: one window per partition (no step).
const CHILD_CURSOR: &str = r#"    incremental_sync:
      type: DatetimeBasedCursor
      cursor_field: updated_at
      datetime_format: "%Y-%m-%d"
      start_datetime: "2024-01-01"
      end_datetime: "2024-01-31""#;

/// The day of child `id`'s `updated_at` (its newest is the 28th).
fn child_day(id: u64) -> u64 {
    1 + id % 28
}

/// Reads `children` of `parents` records at concurrency 1; gives the run and the number of
/// requests to /parents and to /children.
fn read_many(dir: &Path, parents: u64, incremental: bool, catalog: &str) -> (Run, usize, usize) {
    let parent_requests = Arc::new(AtomicUsize::new(0));
    let child_requests = Arc::new(AtomicUsize::new(0));
    let (parent_count, child_count) = (Arc::clone(&parent_requests), Arc::clone(&child_requests));
    let server = serve(move |request| {
        if request.path == "/parents" {
            parent_count.fetch_add(1, SeqCst);
            let first = (request.page() - 1) * PARENT_PAGE + 1;
            let last = (request.page() * PARENT_PAGE).min(parents);
            let data: Vec<Value> = (first..=last).map(|id| json!({"id": id})).collect();
            return Reply::json(json!({ "data": data }), Duration::ZERO);
        }
        let Some(id) = request
            .path
            .strip_prefix("/children/")
            .and_then(|id| id.parse::<u64>().ok())
        else {
            return Reply::not_found();
        };
        child_count.fetch_add(1, SeqCst);
        let updated_at = format!("2024-01-{:02}", child_day(id));
        Reply::json(
            json!({"data": [{"id": id, "updated_at": updated_at}]}),
            Duration::ZERO,
        )
    });
    let manifest =
        MANY_MANIFEST.replace("INCREMENTAL", if incremental { CHILD_CURSOR } else { "" });
    let run = sluice(
        dir,
        &manifest,
        &server.url,
        &json!({}),
        catalog,
        &["--concurrency", "1"],
        Duration::from_secs(120),
    );
    (
        run,
        parent_requests.load(SeqCst),
        child_requests.load(SeqCst),
    )
}

/// The ids of `stream`'s records, checking there is one record per id from 1 to `count`.
fn assert_ids_1_to(run: &Run, stream: &str, count: u64) {
    let ids: Vec<u64> = run
        .records(stream)
        .into_iter()
        .map(|(_, data)| data["id"].as_u64().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len() as u64, count, "{stream}: records");
    assert_eq!(distinct.len() as u64, count, "{stream}: distinct ids");
    assert_eq!(distinct.first(), Some(&1));
    assert_eq!(distinct.last(), Some(&count));
}

#[test]
fn ten_thousand_and_one_partitions_at_concurrency_1_finish() {
    const PARENTS: u64 = 10_001;
    let work = tempfile::tempdir().unwrap();
    // The child first: it reads the parent to generate its partitions while the selected parent
    // waits for the only generator; the parent then comes from the cache.
    let (run, parent_requests, child_requests) = read_many(
        work.path(),
        PARENTS,
        false,
        &catalog(&[("children", false), ("parents", false)]),
    );
    eprintln!("{PARENTS} partitions at concurrency 1: {:?}", run.elapsed);
    assert_ids_1_to(&run, "children", PARENTS);
    assert_ids_1_to(&run, "parents", PARENTS);
    assert_eq!(child_requests as u64, PARENTS, "one request per partition");
    assert_eq!(
        parent_requests as u64,
        PARENTS.div_ceil(PARENT_PAGE),
        "each parent page fetched once"
    );
    assert_eq!(
        run.final_state("children"),
        json!({"__ab_no_cursor_state_message": true})
    );
}

#[test]
fn a_per_partition_cursor_past_10000_partitions_at_concurrency_1_switches_to_a_global_cursor() {
    // The cursor checks the count before it counts the partition it is given, as the reference
    // does: the 10,002nd partition is the first above the limit.
    const PARENTS: u64 = 10_002;
    let work = tempfile::tempdir().unwrap();
    let (run, _, child_requests) =
        read_many(work.path(), PARENTS, true, &catalog(&[("children", true)]));
    eprintln!(
        "{PARENTS} per-partition incremental partitions at concurrency 1: {:?}",
        run.elapsed
    );
    assert_ids_1_to(&run, "children", PARENTS);
    assert_eq!(child_requests as u64, PARENTS, "one request per partition");
    let newest = (1..=PARENTS).map(child_day).max().unwrap();
    let state = run.final_state("children");
    let partition_states = state.get("states").and_then(Value::as_array).map(Vec::len);
    assert_eq!(
        state["use_global_cursor"],
        json!(true),
        "{partition_states:?} partition states; stderr ends:\n{}",
        tail(&run.stderr, 2000)
    );
    assert_eq!(
        partition_states, None,
        "a global cursor keeps no partition states"
    );
    assert_eq!(
        state["state"],
        json!({"updated_at": format!("2024-01-{newest:02}")}),
        "{state}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3 and 4. One writer, partition order, state after records; the same results at every level.

/// Four streams and a parent:
/// - `pages`: 6 list partitions × 3 pages, full refresh;
/// - `windows`: 6 list partitions × 2 daily windows × 3 pages, a per-partition cursor;
/// - `days`: 8 daily windows × 3 pages, a plain datetime cursor (one STATE per closed window);
/// - `children` of `parents` (2 pages, 5 parents), 2 pages each; `parents` selected too.
///
/// Every record carries where it came from (partition, window start, page, index in page).
const MIXED_MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [pages]}
definitions:
  selector:
    type: RecordSelector
    extractor: {type: DpathExtractor, field_path: [data]}
  paginator:
    type: DefaultPaginator
    pagination_strategy: {type: PageIncrement, page_size: 2, start_from_page: 1, inject_on_first_request: true}
    page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
  list_router:
    type: ListPartitionRouter
    cursor_field: partition
    values: [p0, p1, p2, p3, p4, p5]
    request_option: {type: RequestOption, inject_into: request_parameter, field_name: partition}
  cursor:
    type: DatetimeBasedCursor
    cursor_field: updated_at
    datetime_format: "%Y-%m-%dT%H:%M:%SZ"
    step: P1D
    cursor_granularity: PT1S
    start_time_option: {type: RequestOption, inject_into: request_parameter, field_name: since}
    end_time_option: {type: RequestOption, inject_into: request_parameter, field_name: until}
  parents:
    type: DeclarativeStream
    name: parents
    primary_key: [id]
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /parents, http_method: GET}
      record_selector: {$ref: "#/definitions/selector"}
      paginator:
        type: DefaultPaginator
        pagination_strategy: {type: PageIncrement, page_size: 3, start_from_page: 1, inject_on_first_request: true}
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
streams:
  - type: DeclarativeStream
    name: pages
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /pages, http_method: GET}
      record_selector: {$ref: "#/definitions/selector"}
      paginator: {$ref: "#/definitions/paginator"}
      partition_router: {$ref: "#/definitions/list_router"}
  - type: DeclarativeStream
    name: windows
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /windows, http_method: GET}
      record_selector: {$ref: "#/definitions/selector"}
      paginator: {$ref: "#/definitions/paginator"}
      partition_router: {$ref: "#/definitions/list_router"}
    incremental_sync:
      $ref: "#/definitions/cursor"
      start_datetime: "2024-03-01T00:00:00Z"
      end_datetime: "2024-03-02T23:59:59Z"
  - type: DeclarativeStream
    name: days
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: /days, http_method: GET}
      record_selector: {$ref: "#/definitions/selector"}
      paginator: {$ref: "#/definitions/paginator"}
    incremental_sync:
      $ref: "#/definitions/cursor"
      start_datetime: "2024-03-01T00:00:00Z"
      end_datetime: "2024-03-08T23:59:59Z"
  - type: DeclarativeStream
    name: children
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: "/children/{{ stream_partition.parent_id }}", http_method: GET}
      record_selector: {$ref: "#/definitions/selector"}
      paginator: {$ref: "#/definitions/paginator"}
      partition_router:
        type: SubstreamPartitionRouter
        parent_stream_configs:
          - type: ParentStreamConfig
            stream: {$ref: "#/definitions/parents"}
            parent_key: id
            partition_field: parent_id
  - $ref: "#/definitions/parents"
"##;

const MIXED_STREAMS: [(&str, bool); 5] = [
    ("pages", false),
    ("windows", true),
    ("days", true),
    ("children", false),
    ("parents", false),
];

/// Where each stream's records come from: the fields that name a slice (records of one slice
/// must keep their page order).
fn slice_fields(stream: &str) -> &'static [&'static str] {
    match stream {
        "pages" => &["partition"],
        "windows" => &["partition", "since"],
        "days" => &["since"],
        "children" => &["parent"],
        _ => &[],
    }
}

/// A few milliseconds' wait, 0 to 30, fixed per request.
fn jitter(request: &Request) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.path.hash(&mut hasher);
    let mut query: Vec<_> = request.query.iter().collect();
    query.sort();
    query.hash(&mut hasher);
    Duration::from_millis(hasher.finish() % 31)
}

/// Pages of 2, 2 and 1 records (the paginator stops at the short page); page `page` of a slice
/// whose records carry `fields`. Records of a window have `updated_at` at hour 0, 1, ... of the
/// window's day, rising with the page.
fn mixed_page(request: &Request, fields: &[&str]) -> Value {
    let page = request.page();
    let size = match page {
        1 | 2 => 2,
        3 => 1,
        _ => 0,
    };
    let data: Vec<Value> = (0..size)
        .map(|index| {
            let mut record = serde_json::Map::new();
            for field in fields {
                record.insert((*field).to_owned(), json!(request.param(field)));
            }
            if let Some(day) = request.query.get("since").and_then(|s| s.get(..10)) {
                let hour = (page - 1) * 2 + index;
                record.insert(
                    "updated_at".to_owned(),
                    json!(format!("{day}T{hour:02}:00:00Z")),
                );
            }
            record.insert("page".to_owned(), json!(page));
            record.insert("index".to_owned(), json!(index));
            Value::Object(record)
        })
        .collect();
    json!({ "data": data })
}

fn mixed_server() -> Server {
    serve(|request| {
        let delay = jitter(request);
        let body = match request.path.as_str() {
            "/pages" => mixed_page(request, &["partition"]),
            "/windows" => mixed_page(request, &["partition", "since", "until"]),
            "/days" => mixed_page(request, &["since", "until"]),
            "/parents" => {
                let ids: &[u64] = match request.page() {
                    1 => &[1, 2, 3],
                    2 => &[4, 5],
                    _ => &[],
                };
                let data: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
                json!({ "data": data })
            }
            path => match path.strip_prefix("/children/") {
                Some(parent) => {
                    let mut page = mixed_page(request, &[]);
                    for record in page["data"].as_array_mut().unwrap() {
                        record["parent"] = json!(parent);
                    }
                    page
                }
                None => return Reply::not_found(),
            },
        };
        Reply::json(body, delay)
    })
}

fn read_mixed(dir: &Path, concurrency: usize) -> Run {
    let server = mixed_server();
    let concurrency = concurrency.to_string();
    sluice(
        &dir.join(format!("concurrency-{concurrency}")),
        MIXED_MANIFEST,
        &server.url,
        &json!({}),
        &catalog(&MIXED_STREAMS),
        &["--concurrency", &concurrency],
        Duration::from_secs(60),
    )
}

/// Per slice of `stream`, its records' `(page, index)` in the order written.
fn slices_in_order(run: &Run, stream: &str) -> BTreeMap<Vec<String>, Vec<(u64, u64)>> {
    let mut slices: BTreeMap<Vec<String>, Vec<(u64, u64)>> = BTreeMap::new();
    for (_, data) in run.records(stream) {
        let slice = slice_fields(stream)
            .iter()
            .map(|field| data[*field].to_string())
            .collect();
        slices.entry(slice).or_default().push((
            data["page"].as_u64().unwrap(),
            data["index"].as_u64().unwrap(),
        ));
    }
    slices
}

/// What a STATE promises for a resume: the next sync starts from its cursor value `v`
/// (inclusive), so every record with a cursor value below `v` must already be written; and `v`
/// is the start date or the cursor value of a record already written (the low-water mark is a
/// record's value, never a window end). `states` gives, per STATE line, the promised values,
/// each with the slice fields that scope it (`None` for the whole stream).
fn assert_states_follow_their_records(
    run: &Run,
    stream: &str,
    start: &str,
    promises: impl Fn(&Value) -> Vec<(Option<String>, String)>,
) {
    let records = run.records(stream);
    let states = run.states(stream);
    assert!(!states.is_empty(), "{stream}: no STATE");
    for (line, state) in states {
        for (partition, value) in promises(state) {
            let in_scope = |data: &&Value| {
                partition
                    .as_ref()
                    .is_none_or(|p| data["partition"].as_str() == Some(p))
            };
            for (record_line, data) in records.iter().filter(|(_, d)| in_scope(d)) {
                let cursor = data["updated_at"].as_str().unwrap();
                assert!(
                    cursor >= value.as_str() || *record_line < line,
                    "{stream}: the STATE on line {line} ({state}) promises every record before {value} ({partition:?}), but {data} is written later, on line {record_line}"
                );
            }
            let written_before = records
                .iter()
                .filter(|(record_line, d)| *record_line < line && in_scope(d))
                .any(|(_, d)| d["updated_at"].as_str() == Some(value.as_str()));
            assert!(
                value == start || written_before,
                "{stream}: the STATE on line {line} ({state}) has {value} ({partition:?}), neither the start nor a record written before it"
            );
        }
    }
}

/// Checks the run's records and states: every slice's records complete and in page order, and
/// the incremental streams' STATEs never ahead of what is written.
fn assert_mixed_run_is_sound(run: &Run, label: &str) {
    let expected_order = vec![(1, 0), (1, 1), (2, 0), (2, 1), (3, 0)];
    let expected_slices = [("pages", 6), ("windows", 12), ("days", 8), ("children", 5)];
    for (stream, count) in expected_slices {
        let slices = slices_in_order(run, stream);
        assert_eq!(slices.len(), count, "{label}: {stream}: slices");
        for (slice, order) in &slices {
            assert_eq!(
                order, &expected_order,
                "{label}: {stream}: records of slice {slice:?} as written"
            );
        }
    }
    assert_eq!(run.records("parents").len(), 5, "{label}: parents");
    let start = "2024-03-01T00:00:00Z";
    assert_states_follow_their_records(run, "days", start, |state| {
        vec![(None, state["updated_at"].as_str().unwrap().to_owned())]
    });
    assert_states_follow_their_records(run, "windows", start, |state| {
        state["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                (
                    Some(entry["partition"]["partition"].as_str().unwrap().to_owned()),
                    entry["cursor"]["updated_at"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    });
}

#[test]
fn one_writer_keeps_each_partitions_records_in_order_and_before_its_state() {
    let work = tempfile::tempdir().unwrap();
    let (concurrent, sequential) = std::thread::scope(|scope| {
        let concurrent = scope.spawn(|| read_mixed(work.path(), 4));
        let sequential = scope.spawn(|| read_mixed(work.path(), 1));
        (concurrent.join().unwrap(), sequential.join().unwrap())
    });
    assert_mixed_run_is_sound(&concurrent, "concurrency 4");
    assert_mixed_run_is_sound(&sequential, "concurrency 1");
    // One STATE per closed daily window, and a final one.
    assert!(concurrent.states("days").len() >= 8);
    for (stream, _) in MIXED_STREAMS {
        assert_eq!(
            concurrent.final_state(stream),
            sequential.final_state(stream),
            "{stream}: final state at concurrency 4, then 1"
        );
    }
    assert_eq!(
        concurrent.final_state("days"),
        json!({"updated_at": "2024-03-08T04:00:00Z"})
    );
}

#[test]
fn every_concurrency_level_reads_the_same_records_and_ends_in_the_same_state() {
    let work = tempfile::tempdir().unwrap();
    let runs: Vec<(usize, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = [1, 2, 8]
            .into_iter()
            .map(|level| {
                let dir = work.path();
                scope.spawn(move || (level, read_mixed(dir, level)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (_, first) = &runs[0];
    for (level, run) in &runs[1..] {
        for (stream, _) in MIXED_STREAMS {
            assert_eq!(
                run.record_multiset(stream),
                first.record_multiset(stream),
                "{stream}: records at concurrency {level} and 1"
            );
            assert_eq!(
                run.final_state(stream),
                first.final_state(stream),
                "{stream}: final state at concurrency {level} and 1"
            );
        }
    }
    // 6 × 5 + 12 × 5 + 8 × 5 + 5 × 5 + 5 records.
    let total: usize = MIXED_STREAMS
        .iter()
        .map(|(stream, _)| first.records(stream).len())
        .sum();
    assert_eq!(total, 160);
}

// ---------------------------------------------------------------------------------------------
// 6. `stream_groups`: streams of one group are never read at the same time.

const GROUPS_MANIFEST: &str = r##"
version: 7.0.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [a]}
concurrency_level: {type: ConcurrencyLevel, default_concurrency: 8, max_concurrency: 8}
definitions:
  a: {$ref: "#/definitions/base", name: a, $parameters: {name: a}}
  b: {$ref: "#/definitions/base", name: b, $parameters: {name: b}}
  c: {$ref: "#/definitions/base", name: c, $parameters: {name: c}}
  base:
    type: DeclarativeStream
    retriever:
      type: SimpleRetriever
      requester: {type: HttpRequester, url_base: "URL_BASE", path: "/{{ parameters.name }}", http_method: GET}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
      partition_router:
        type: ListPartitionRouter
        cursor_field: partition
        values: ["1", "2", "3", "4"]
        request_option: {type: RequestOption, inject_into: request_parameter, field_name: partition}
streams:
  - $ref: "#/definitions/a"
  - $ref: "#/definitions/b"
  - $ref: "#/definitions/c"
stream_groups:
  shared_session:
    streams:
      - $ref: "#/definitions/a"
      - $ref: "#/definitions/b"
    action: {type: BlockSimultaneousSyncsAction}
"##;

#[test]
fn streams_of_one_group_are_never_read_at_the_same_time() {
    let in_flight: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let ungrouped_overlaps = Arc::new(AtomicUsize::new(0));
    let (seen, grouped, ungrouped) = (
        Arc::clone(&in_flight),
        Arc::clone(&overlaps),
        Arc::clone(&ungrouped_overlaps),
    );
    let server = serve(move |request| {
        let stream = request.path.trim_start_matches('/').to_owned();
        {
            let mut now = seen.lock().unwrap();
            *now.entry(stream.clone()).or_default() += 1;
            let count = |name: &str| now.get(name).copied().unwrap_or(0);
            if count("a") > 0 && count("b") > 0 {
                grouped.fetch_add(1, SeqCst);
            }
            if count("c") > 0 && count("a") + count("b") > 0 {
                ungrouped.fetch_add(1, SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(80));
        *seen.lock().unwrap().get_mut(&stream).unwrap() -= 1;
        Reply::json(
            json!({"data": [{"partition": request.param("partition")}]}),
            Duration::ZERO,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let run = sluice(
        dir.path(),
        GROUPS_MANIFEST,
        &server.url,
        &json!({}),
        &catalog(&[("a", false), ("b", false), ("c", false)]),
        &[],
        Duration::from_secs(60),
    );
    for stream in ["a", "b", "c"] {
        assert_eq!(run.records(stream).len(), 4, "{stream}");
    }
    assert_eq!(
        overlaps.load(SeqCst),
        0,
        "a and b were read at the same time"
    );
    // The group does not hold back the stream outside it.
    assert!(
        ungrouped_overlaps.load(SeqCst) > 0,
        "c never ran beside a or b"
    );
    assert!(run.stderr.is_empty() || !run.stderr.contains("panicked"));
    let logs: Vec<&str> = run
        .messages
        .iter()
        .filter(|m| m["type"] == "LOG")
        .filter_map(|m| m["log"]["message"].as_str())
        .collect();
    assert!(logs.iter().any(|l| l.starts_with(
        "Stream 'b' is in blocking group 'shared_session'. Will defer starting this stream"
    )));
}
