//! `read`'s live progress display, read back through a terminal emulator (`vt100`): drawn on stderr when it is a terminal (a pseudo-terminal
//! here), never otherwise unless `--progress always`, and never on stdout, which keeps only
//! Airbyte messages.

use serde_json::Value;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a `sluice read` printed.
struct Printed {
    stdout: String,
    /// stderr, as the terminal (or pipe) received it, escape codes and all.
    stderr: String,
    success: bool,
}

/// Runs `sluice read ARGS` with stdout on a pipe and stderr on the slave side of a new
/// pseudo-terminal of 160 columns, reading what reaches the master side.
fn read_on_terminal(args: &[String]) -> Printed {
    read_at_terminal(args, false)
}

/// [`read_on_terminal`], with stdout on the same terminal when `stdout_too`.
fn read_at_terminal(args: &[String], stdout_too: bool) -> Printed {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let slave_path = ptsname(&master, Vec::new()).unwrap();
    let slave = File::options()
        .read(true)
        .write(true)
        .open(slave_path.to_str().unwrap())
        .unwrap();
    let size = rustix::termios::Winsize {
        ws_row: ROWS,
        ws_col: TERMINAL_COLUMNS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, size).unwrap();
    let mut master = File::from(master);
    // Read while the child writes: a full terminal buffer would block it.
    let terminal = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        // Once every slave handle is closed, Linux answers EIO: the end of the output.
        while let Ok(n @ 1..) = master.read(&mut buffer) {
            seen.extend_from_slice(&buffer[..n]);
        }
        seen
    });
    let stdout = match stdout_too {
        true => Stdio::from(slave.try_clone().unwrap()),
        false => Stdio::piped(),
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .arg("read")
        .args(args)
        .env("TERM", "xterm")
        .stdout(stdout)
        .stderr(Stdio::from(slave));
    let child = command.spawn().unwrap();
    // The command holds the parent's handle on the slave: without dropping it the terminal
    // never ends.
    drop(command);
    let output = child.wait_with_output().unwrap();
    let stderr = terminal.join().unwrap();
    Printed {
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        success: output.status.success(),
    }
}

/// Runs `sluice read ARGS` with stdout and stderr on pipes.
fn read_on_pipes(args: &[String]) -> Printed {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("read")
        .args(args)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    Printed {
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
    }
}

fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance")
        .join(name)
}

/// `read`'s arguments for a conformance case, replayed from its cassette.
fn case_args(name: &str) -> Vec<String> {
    let dir = case_dir(name);
    let path = |file: &str| dir.join(file).to_string_lossy().into_owned();
    [
        "--manifest",
        &path("manifest.yaml"),
        "--config",
        &path("config.json"),
        "--catalog",
        &path("catalog.json"),
        "--replay",
        &path("cassette.json"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Rows and columns of the test's terminal (`--progress always` into a pipe draws for 80).
const ROWS: u16 = 40;
const TERMINAL_COLUMNS: u16 = 160;
const PIPE_COLUMNS: u16 = 80;

fn emulator(columns: u16) -> vt100::Parser {
    let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    vt100::Parser::new(size(ROWS), size(columns), 0)
}

/// What a terminal of `columns` shows once it has received `output`.
fn screen(output: &str, columns: u16) -> String {
    let mut terminal = emulator(columns);
    terminal.process(output.as_bytes());
    terminal.screen().contents()
}

/// What the terminal shows just before each redraw of the display (each starts by moving the
/// cursor up over the last frame: `ESC [ n A`).
fn frames(output: &str, columns: u16) -> Vec<String> {
    let mut terminal = emulator(columns);
    let mut shown = Vec::new();
    let mut rest = output;
    while let Some(at) = rest.find("\x1b[") {
        let digits = rest[at + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        let redraw = digits > 0 && rest[at + 2 + digits..].starts_with('A');
        let end = if redraw { at } else { at + 2 };
        terminal.process(&rest.as_bytes()[..end]);
        if redraw {
            shown.push(terminal.screen().contents());
            terminal.process(&rest.as_bytes()[at..at + 3 + digits]);
            rest = &rest[at + 3 + digits..];
        } else {
            rest = &rest[end..];
        }
    }
    terminal.process(rest.as_bytes());
    shown.push(terminal.screen().contents());
    shown
}

/// Every stdout line is an Airbyte message; the records, per stream.
fn records_of(stdout: &str) -> serde_json::Map<String, Value> {
    let mut records = serde_json::Map::new();
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout holds a line that is not JSON ({e}): {line:?}"));
        let kind = message["type"].as_str().unwrap_or_default();
        assert!(
            [
                "RECORD",
                "STATE",
                "LOG",
                "TRACE",
                "CONTROL",
                "SPEC",
                "CATALOG",
                "CONNECTION_STATUS"
            ]
            .contains(&kind),
            "stdout holds a line that is not an Airbyte message: {line:?}"
        );
        if kind == "RECORD" {
            let record = &message["record"];
            let stream = record["stream"].as_str().unwrap().to_owned();
            let list = records
                .entry(stream)
                .or_insert_with(|| Value::Array(vec![]));
            list.as_array_mut().unwrap().push(record["data"].clone());
        }
    }
    records
}

fn expected_records(case: &str) -> Value {
    let text = std::fs::read_to_string(case_dir(case).join("expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    expected["read"]["records"].clone()
}

/// The summary table's row for `name`, split into its columns.
fn summary_row(text: &str, name: &str) -> Vec<String> {
    let start = text
        .rfind("stream  ")
        .unwrap_or_else(|| panic!("no summary table in:\n{text}"));
    text[start..]
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{text}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn at_a_terminal_read_shows_progress_on_stderr_and_only_messages_on_stdout() {
    // A rate-limited response, retried: every counter of the display has something to show.
    let case = "http-error-rate-limited-filter";
    let printed = read_on_terminal(&case_args(case));
    assert!(printed.success, "{}", printed.stderr);
    assert_eq!(
        Value::Object(records_of(&printed.stdout)),
        expected_records(case)
    );
    let shown = screen(&printed.stderr, TERMINAL_COLUMNS);
    // stream, status, records, requests, slices, retries, rate-limited, waited.
    let users = summary_row(&shown, "users");
    assert_eq!(
        users[..8],
        ["users", "complete", "2", "2", "1/1", "1", "1", "1.0s"],
        "{shown}"
    );
    let total = summary_row(&shown, "total");
    assert_eq!(
        total[..5],
        ["total", "complete", "2", "2", "1/1"],
        "{shown}"
    );
    // Drawn as a terminal display: the cursor moves back over the live lines.
    assert!(printed.stderr.contains("\x1b["), "{:?}", printed.stderr);
}

#[test]
fn several_streams_and_their_slices_each_get_a_row() {
    let case = "three_streams";
    let printed = read_on_terminal(&case_args(case));
    assert!(printed.success, "{}", printed.stderr);
    assert_eq!(
        Value::Object(records_of(&printed.stdout)),
        expected_records(case)
    );
    let shown = screen(&printed.stderr, TERMINAL_COLUMNS);
    for (name, records) in [("users", "3"), ("groups", "2"), ("roles", "2")] {
        let row = summary_row(&shown, name);
        assert_eq!(row[..5], [name, "complete", records, "1", "1/1"], "{shown}");
    }
    assert_eq!(summary_row(&shown, "total")[2], "7", "{shown}");
}

#[test]
fn a_failed_stream_is_shown_failed() {
    let printed = read_on_terminal(&case_args("one_stream_fails"));
    assert!(!printed.success);
    records_of(&printed.stdout);
    let shown = screen(&printed.stderr, TERMINAL_COLUMNS);
    assert_eq!(summary_row(&shown, "users")[1], "complete", "{shown}");
    assert_eq!(summary_row(&shown, "secrets")[1], "failed", "{shown}");
    assert_eq!(summary_row(&shown, "total")[1], "failed", "{shown}");
}

#[test]
fn without_a_terminal_nothing_is_drawn_unless_asked() {
    let case = "http-error-rate-limited-filter";
    let quiet = read_on_pipes(&case_args(case));
    assert!(quiet.success);
    assert_eq!(quiet.stderr, "", "stderr is a pipe: no display");
    let mut always = case_args(case);
    always.extend(["--progress".to_owned(), "always".to_owned()]);
    let drawn = read_on_pipes(&always);
    assert!(drawn.success);
    assert_eq!(drawn.stdout.lines().count(), quiet.stdout.lines().count());
    assert_eq!(records_of(&drawn.stdout), records_of(&quiet.stdout));
    let shown = screen(&drawn.stderr, PIPE_COLUMNS);
    assert_eq!(
        summary_row(&shown, "users")[..3],
        ["users", "complete", "2"]
    );

    let mut never = case_args(case);
    never.extend(["--progress".to_owned(), "never".to_owned()]);
    let at_terminal = read_on_terminal(&never);
    assert!(at_terminal.success);
    assert_eq!(at_terminal.stderr, "", "--progress never at a terminal");
}

#[test]
fn messages_on_the_same_terminal_get_no_display() {
    let case = "http-error-rate-limited-filter";
    let printed = read_at_terminal(&case_args(case), true);
    assert!(printed.success);
    // Both went to the terminal: what it received is the messages and nothing else.
    let received = printed.stderr.replace("\r\n", "\n");
    assert_eq!(Value::Object(records_of(&received)), expected_records(case));
    assert!(!received.contains("stream  "), "{received}");
}

/// A read slow enough to be seen running: three pages, each answered after 600 ms (more than
/// twice the display's refresh, so even a busy machine draws each page's counts).
#[tokio::test(flavor = "multi_thread")]
async fn the_display_is_live_while_the_read_runs() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let page = |ids: &[u64]| {
        let data: Vec<Value> = ids.iter().map(|id| serde_json::json!({"id": id})).collect();
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({ "data": data }))
            .set_delay(std::time::Duration::from_millis(600))
    };
    // The first request names no page.
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(page(&[1, 2]))
        .with_priority(10)
        .mount(&server)
        .await;
    for (number, ids) in [("2", &[3, 4][..]), ("3", &[5][..])] {
        Mock::given(method("GET"))
            .and(path("/items"))
            .and(query_param("page", number))
            .respond_with(page(ids))
            .mount(&server)
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let (manifest, config) =
        crate::support::write_manifest_and_config(dir.path(), SLOW_MANIFEST, &server.uri());
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        crate::support::full_refresh_catalog(&["slow_items"]),
    )
    .unwrap();
    let args: Vec<String> = [
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--catalog".as_ref(),
        catalog.as_os_str(),
    ]
    .iter()
    .map(|a| a.to_string_lossy().into_owned())
    .collect();
    let printed = tokio::task::spawn_blocking(move || read_on_terminal(&args))
        .await
        .unwrap();
    assert!(printed.success, "{}", printed.stderr);
    assert_eq!(
        records_of(&printed.stdout)["slow_items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // Each redraw starts with the cursor moving up over the last frame: split there.
    let running: Vec<String> = frames(&printed.stderr, TERMINAL_COLUMNS)
        .iter()
        .flat_map(|frame| frame.lines())
        .filter(|line| line.contains("slow_items") && line.contains("running"))
        .map(str::to_owned)
        .collect();
    assert!(
        running.len() >= 2,
        "the stream is seen running, frame after frame:\n{}",
        printed.stderr
    );
    assert!(
        running.iter().any(|line| line.contains(" 2 records")),
        "a frame shows the records of the first page while the next are read:\n{running:#?}"
    );
    let last = screen(&printed.stderr, TERMINAL_COLUMNS);
    assert!(
        !last.contains("running"),
        "the live lines give way to the summary:\n{last}"
    );
    assert_eq!(
        summary_row(&last, "slow_items")[..5],
        ["slow_items", "complete", "5", "3", "1/1"]
    );
}

const SLOW_MANIFEST: &str = r#"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [slow_items]}
streams:
  - type: DeclarativeStream
    name: slow_items
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "URL_BASE"
        path: /items
        http_method: GET
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
      paginator:
        type: DefaultPaginator
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
        pagination_strategy: {type: PageIncrement, page_size: 2, start_from_page: 1}
"#;

#[test]
fn a_parent_served_from_the_cache_costs_its_child_no_request() {
    // `invoices` is read, and is also `invoice_lines`' parent: its page is fetched once.
    let case = "partition-substream-lazy-read";
    let mut args = case_args(case);
    args.extend(["--progress".to_owned(), "always".to_owned()]);
    let printed = read_on_pipes(&args);
    assert!(printed.success, "{}", printed.stderr);
    let shown = screen(&printed.stderr, PIPE_COLUMNS);
    let cassette = std::fs::read_to_string(case_dir(case).join("cassette.json")).unwrap();
    let cassette: Value = serde_json::from_str(&cassette).unwrap();
    let exchanges = cassette["exchanges"].as_array().unwrap().len();
    assert_eq!(exchanges, 2);
    assert_eq!(
        summary_row(&shown, "invoices")[..5],
        ["invoices", "complete", "3", "1", "1/1"]
    );
    assert_eq!(
        summary_row(&shown, "invoice_lines")[..5],
        ["invoice_lines", "complete", "4", "1", "3/3"],
        "{shown}"
    );
    assert_eq!(summary_row(&shown, "total")[3], exchanges.to_string());
}
