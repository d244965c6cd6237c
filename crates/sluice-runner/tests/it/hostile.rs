//! Servers that misbehave on purpose. Whatever a server does, a sync ends in bounded time with
//! bounded memory and a message that says what happened: a body that never ends, gzip and zip
//! bombs, a body of several hundred MB (read whole, in at most twice its size), huge headers,
//! invalid UTF-8, a truncated chunked body, a connection reset mid-page, a server that stops
//! mid-body or trickles, a `Retry-After` of a year, a cursor that never moves, and redirects to
//! another host. Each test measures the peak RSS of the `sluice` process (`wait4`) and prints it.

use crate::support::{full_refresh_catalog, read_command, write_manifest_and_config};
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Peak RSS every hostile server must leave sluice under.
const RSS_LIMIT_MB: f64 = 512.0;

/// One retry after a tenth of a second, so the tests take seconds, not minutes. `PAGINATOR`,
/// `DECODER` and `BACKOFF` are replaced per test.
const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
streams:
  - type: DeclarativeStream
    name: items
    retriever:
      type: SimpleRetriever
      DECODER
      requester:
        type: HttpRequester
        url_base: "URL_BASE"
        path: /items
        http_method: GET
        authenticator:
          type: BearerAuthenticator
          api_token: "{{ config['token'] }}"
        error_handler:
          type: DefaultErrorHandler
          max_retries: 1
          backoff_strategies: [BACKOFF]
      PAGINATOR
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
"##;

const SHORT_BACKOFF: &str = "{type: ConstantBackoffStrategy, backoff_time_in_seconds: 0.1}";

const CURSOR_PAGINATOR: &str = r#"paginator:
        type: DefaultPaginator
        pagination_strategy:
          type: CursorPagination
          cursor_value: "{{ response.next }}"
          stop_condition: "{{ not response.next }}"
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: cursor}"#;

const TOKEN: &str = "hostile-test-token";

/// What a test server answers to every request it reads.
#[derive(Clone)]
enum Behaviour {
    /// A 200 whose chunked body of records never ends.
    EndlessBody,
    /// A 200 with `Content-Encoding: gzip` whose body inflates to 10 GiB of spaces.
    GzipBomb(Arc<Vec<u8>>),
    /// A 200 whose body is a zip archive of one file that inflates to 2 GiB.
    ZipBomb(Arc<Vec<u8>>),
    /// A 200 with `records` records of `record_size` bytes each, with a Content-Length.
    HugeBody { records: usize, record_size: usize },
    /// A response head with one header of this many bytes.
    HugeHeader(usize),
    /// A 200 whose JSON holds a byte that is not UTF-8.
    InvalidUtf8,
    /// A chunked body cut off in the middle of a chunk, then the connection closed.
    TruncatedChunked,
    /// Part of the body, then the connection reset (`SO_LINGER` 0).
    ResetMidPage,
    /// The head and part of the body, then nothing.
    StopMidBody,
    /// The head, then one byte of the body every half second.
    Trickle,
    /// A 429 asking to retry after a year.
    RetryAfterAYear,
    /// A page of one record whose next-page cursor is always the same.
    SameCursorForever,
    /// A 302 to the same path on `location`, counting the requests it answers.
    RedirectTo {
        location: String,
        answered: Arc<AtomicUsize>,
    },
    /// One record, noting whether the request carried the `Authorization` header.
    RecordAuthorization(Arc<AtomicBool>),
}

async fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                // One request per connection: every answer below ends with the connection.
                let Some(head) = read_head(&mut socket).await else {
                    return;
                };
                answer(behaviour, &head, socket).await;
            });
        }
    });
    format!("http://{address}")
}

async fn read_head(socket: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    Some(String::from_utf8_lossy(&request).into_owned())
}

const JSON_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n";

async fn answer(behaviour: Behaviour, head: &str, mut socket: TcpStream) {
    match behaviour {
        Behaviour::EndlessBody => {
            let _ = socket
                .write_all(format!("{JSON_HEAD}transfer-encoding: chunked\r\n\r\n").as_bytes())
                .await;
            let _ = write_chunk(&mut socket, b"{\"data\": [").await;
            let record = format!("{{\"id\": 1, \"pad\": \"{}\"}}, ", "x".repeat(200));
            let chunk = record.repeat(64 * 1024 / record.len());
            while write_chunk(&mut socket, chunk.as_bytes()).await.is_ok() {}
        }
        Behaviour::GzipBomb(body) => {
            let head = format!(
                "{JSON_HEAD}content-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
        Behaviour::ZipBomb(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
        Behaviour::HugeBody {
            records,
            record_size,
        } => {
            let record = |id: usize| {
                let pad = "y".repeat(record_size - huge_record_overhead(id));
                format!("{{\"id\": {id}, \"pad\": \"{pad}\"}}")
            };
            let (open, close) = ("{\"data\": [", "]}");
            let length =
                open.len() + records * record_size + records.saturating_sub(1) + close.len();
            let head = format!("{JSON_HEAD}content-length: {length}\r\n\r\n{open}");
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut buffer = String::with_capacity(1 << 20);
            for id in 0..records {
                if id > 0 {
                    buffer.push(',');
                }
                buffer.push_str(&record(id));
                if buffer.len() >= 1 << 20 {
                    if socket.write_all(buffer.as_bytes()).await.is_err() {
                        return;
                    }
                    buffer.clear();
                }
            }
            buffer.push_str(close);
            let _ = socket.write_all(buffer.as_bytes()).await;
        }
        Behaviour::HugeHeader(size) => {
            let head = format!("{JSON_HEAD}x-huge: ");
            let _ = socket.write_all(head.as_bytes()).await;
            let chunk = vec![b'h'; 64 * 1024];
            let mut sent = 0;
            while sent < size {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
            let _ = socket
                .write_all(b"\r\ncontent-length: 11\r\n\r\n{\"data\": []}")
                .await;
        }
        Behaviour::InvalidUtf8 => {
            let body: &[u8] = b"{\"data\": [{\"id\": 1, \"name\": \"caf\xe9\"}]}";
            let head = format!("{JSON_HEAD}content-length: {}\r\n\r\n", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body).await;
        }
        Behaviour::TruncatedChunked => {
            let head = format!("{JSON_HEAD}transfer-encoding: chunked\r\n\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(b"100\r\n{\"data\": [{\"id\": 1}").await;
        }
        Behaviour::ResetMidPage => {
            let head = format!("{JSON_HEAD}content-length: 1000\r\n\r\n{{\"data\": [{{\"id\": 1}}");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            // A reset, not a close: SO_LINGER 0 set on the std socket (tokio's setter is
            // deprecated for blocking on drop, which a zero linger never does).
            if let Ok(socket) = socket.into_std() {
                let socket = socket2::SockRef::from(&socket);
                let _ = socket.set_linger(Some(Duration::ZERO));
            }
        }
        Behaviour::StopMidBody => {
            let head = format!("{JSON_HEAD}content-length: 100\r\n\r\n{{\"data\": [");
            let _ = socket.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Behaviour::Trickle => {
            let head = format!("{JSON_HEAD}content-length: 1000\r\n\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            for _ in 0..120 {
                if socket.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Behaviour::RetryAfterAYear => {
            let response = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 31536000\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(response.as_bytes()).await;
        }
        Behaviour::SameCursorForever => {
            let body = r#"{"data": [{"id": 1}], "next": "page-2"}"#;
            let head = format!("{JSON_HEAD}content-length: {}\r\n\r\n{body}", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
        }
        Behaviour::RedirectTo { location, answered } => {
            answered.fetch_add(1, Ordering::SeqCst);
            let response = format!(
                "HTTP/1.1 302 Found\r\nlocation: {location}/items\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
        Behaviour::RecordAuthorization(saw_authorization) => {
            let has = head
                .lines()
                .any(|line| line.to_ascii_lowercase().starts_with("authorization:"));
            saw_authorization.store(has, Ordering::SeqCst);
            let body = r#"{"data": [{"id": 7}]}"#;
            let head = format!("{JSON_HEAD}content-length: {}\r\n\r\n{body}", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
        }
    }
}

/// The bytes of a record of [`Behaviour::HugeBody`] that are not its padding.
fn huge_record_overhead(id: usize) -> usize {
    format!("{{\"id\": {id}, \"pad\": \"\"}}").len()
}

async fn write_chunk(socket: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    socket.write_all(data).await?;
    socket.write_all(b"\r\n").await
}

/// Raw deflate blocks inflating to `repeats` MiB of spaces: one MiB compressed with a full
/// flush (byte-aligned, no back-references across it) repeated, then an empty final block.
fn deflated_spaces(repeats: usize) -> (Vec<u8>, u64) {
    let mut compressor = flate2::Compress::new(flate2::Compression::best(), false);
    let input = vec![b' '; 1 << 20];
    let mut block = Vec::with_capacity(8 << 10);
    compressor
        .compress_vec(&input, &mut block, flate2::FlushCompress::Full)
        .unwrap();
    assert_eq!(
        compressor.total_in(),
        1 << 20,
        "one call compresses the whole MiB"
    );
    let mut deflate = block.repeat(repeats);
    // BFINAL=1, stored, LEN=0, NLEN=!0.
    deflate.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    (deflate, (repeats as u64) << 20)
}

fn gzip_bomb() -> Vec<u8> {
    let (deflate, inflated) = deflated_spaces(10 * 1024);
    let mut member = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let prefix = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"data\": [").unwrap();
        gz.finish().unwrap()
    };
    member.extend_from_slice(&deflate);
    // The CRC is never reached: the inflated size passes any limit long before.
    member.extend_from_slice(&0u32.to_le_bytes());
    member.extend_from_slice(&(inflated as u32).to_le_bytes());
    [prefix, member].concat()
}

fn zip_bomb() -> Vec<u8> {
    let (deflate, inflated) = deflated_spaces(2 * 1024 - 1);
    let name = b"records.jsonl";
    let mut zip = Vec::new();
    let local_header = |zip: &mut Vec<u8>| {
        zip.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        zip.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0x21, 0]);
        zip.extend_from_slice(&0u32.to_le_bytes()); // crc, never reached
        zip.extend_from_slice(&(deflate.len() as u32).to_le_bytes());
        zip.extend_from_slice(&(inflated as u32).to_le_bytes());
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
    };
    local_header(&mut zip);
    zip.extend_from_slice(name);
    zip.extend_from_slice(&deflate);
    let central = zip.len();
    zip.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0x21, 0]);
    zip.extend_from_slice(&0u32.to_le_bytes());
    zip.extend_from_slice(&(deflate.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(inflated as u32).to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
    zip.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    zip.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    zip.extend_from_slice(name);
    let central_size = zip.len() - central;
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend_from_slice(&(central_size as u32).to_le_bytes());
    zip.extend_from_slice(&(central as u32).to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}

/// What a read did: its messages, stderr, exit, time and the peak RSS of the process.
struct Run {
    messages: Vec<Value>,
    stderr: String,
    success: bool,
    elapsed: Duration,
    peak_rss_mb: f64,
}

impl Run {
    fn errors(&self) -> Vec<(String, String)> {
        self.messages
            .iter()
            .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
            .map(|m| {
                let error = &m["trace"]["error"];
                let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
                (text("failure_type"), text("message"))
            })
            .collect()
    }

    fn records(&self) -> usize {
        crate::support::record_count(&self.messages)
    }

    fn logs(&self, level: &str) -> Vec<String> {
        crate::support::log_texts(&self.messages, level)
    }

    /// Asserts the read ended within `seconds`.
    fn ended_within(&self, seconds: u64) {
        assert!(
            self.elapsed < Duration::from_secs(seconds),
            "took {:?}",
            self.elapsed
        );
    }

    /// The run's numbers, printed for the record and checked against the memory limit.
    fn report(&self, case: &str) {
        eprintln!(
            "hostile {case}: peak RSS {:.1} MB, {:.1} s, {} records",
            self.peak_rss_mb,
            self.elapsed.as_secs_f64(),
            self.records()
        );
        for (failure_type, message) in self.errors() {
            eprintln!("  {failure_type}: {message}");
        }
        assert!(
            self.peak_rss_mb < RSS_LIMIT_MB,
            "{case}: peak RSS {:.1} MB",
            self.peak_rss_mb
        );
    }
}

struct Setup {
    decoder: &'static str,
    paginator: &'static str,
    backoff: &'static str,
    flags: Vec<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            decoder: "",
            paginator: "",
            backoff: SHORT_BACKOFF,
            flags: Vec::new(),
        }
    }
}

async fn read(url: &str, setup: Setup) -> Run {
    let work = tempfile::tempdir().unwrap();
    let manifest_text = MANIFEST
        .replace("DECODER", setup.decoder)
        .replace("PAGINATOR", setup.paginator)
        .replace("BACKOFF", setup.backoff);
    let (manifest, config) = write_manifest_and_config(work.path(), &manifest_text, url);
    std::fs::write(&config, format!(r#"{{"token": "{TOKEN}"}}"#)).unwrap();
    let catalog = work.path().join("catalog.json");
    std::fs::write(&catalog, full_refresh_catalog(&["items"])).unwrap();
    let stdout_path = work.path().join("stdout");
    let stderr_path = work.path().join("stderr");
    let started = Instant::now();
    let (success, peak_rss_mb) = {
        let stdout = std::fs::File::create(&stdout_path).unwrap();
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut command = read_command(&manifest, &config, &catalog);
        command
            .args(&setup.flags)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        tokio::task::spawn_blocking(move || wait_measured(command.spawn().unwrap()))
            .await
            .unwrap()
    };
    let elapsed = started.elapsed();
    let stdout = std::fs::read(&stdout_path).unwrap();
    let messages = stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!("not a JSON line ({e}): {}", String::from_utf8_lossy(line))
            })
        })
        .collect();
    Run {
        messages,
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
        success,
        elapsed,
        peak_rss_mb,
    }
}

/// Waits for `child`, giving whether it succeeded and its peak RSS in MB: the kernel's
/// high-water mark `VmHWM`, polled every millisecond while it runs (as `cargo xtask bench`
/// does; `wait4` would be exact but needs `unsafe`, which the workspace forbids). The mark only
/// grows, so only growth in the last millisecond before exiting could be missed.
fn wait_measured(mut child: std::process::Child) -> (bool, f64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let started = Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("sluice still runs after {:?}", started.elapsed());
        }
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), peak_kib as f64 * 1024.0 / 1e6);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn flags(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|f| f.to_string()).collect()
}

/// Asserts the read failed with an ERROR trace of `failure_type` whose message has `needle`.
fn assert_failed_with(run: &Run, failure_type: &str, needle: &str) {
    assert!(!run.success, "the read succeeded");
    let errors = run.errors();
    assert!(
        errors
            .iter()
            .any(|(kind, message)| kind == failure_type && message.contains(needle)),
        "no {failure_type} error containing {needle:?} in {errors:#?}\nstderr: {}",
        run.stderr
    );
}

#[tokio::test]
async fn a_body_that_never_ends_fails_at_the_response_size_limit() {
    let url = serve(Behaviour::EndlessBody).await;
    let run = read(&url, Setup::default()).await;
    run.report("endless body");
    assert_failed_with(&run, "system_error", "larger than 384 MiB");
    assert_failed_with(&run, "system_error", "--max-response-size");
    // Not retried: the same request would bring the same body.
    run.ended_within(60);
}

#[tokio::test]
async fn a_gzip_bomb_fails_at_the_response_size_limit() {
    let url = serve(Behaviour::GzipBomb(Arc::new(gzip_bomb()))).await;
    let run = read(&url, Setup::default()).await;
    run.report("gzip bomb");
    assert_failed_with(&run, "system_error", "larger than 384 MiB");
    assert_eq!(run.records(), 0);
}

#[tokio::test]
async fn a_zip_bomb_fails_at_the_response_size_limit() {
    let url = serve(Behaviour::ZipBomb(Arc::new(zip_bomb()))).await;
    let setup = Setup {
        decoder: "decoder: {type: ZipfileDecoder, decoder: {type: JsonlDecoder}}",
        ..Setup::default()
    };
    let run = read(&url, setup).await;
    run.report("zip bomb");
    assert_failed_with(
        &run,
        "system_error",
        "larger than 384 MiB once decompressed",
    );
}

#[tokio::test]
async fn a_smaller_limit_is_taken_from_the_command_line() {
    let url = serve(Behaviour::GzipBomb(Arc::new(gzip_bomb()))).await;
    let setup = Setup {
        flags: flags(&["--max-response-size", "16MiB"]),
        ..Setup::default()
    };
    let run = read(&url, setup).await;
    run.report("gzip bomb, 16 MiB limit");
    assert_failed_with(&run, "system_error", "larger than 16 MiB");
    assert!(run.peak_rss_mb < 100.0, "{:.1} MB", run.peak_rss_mb);
}

#[tokio::test]
async fn a_body_of_several_hundred_mb_is_read_whole_in_at_most_twice_its_size() {
    let (records, record_size) = (30_000, 10_000);
    let body_mb = (records * record_size) as f64 / 1e6;
    let url = serve(Behaviour::HugeBody {
        records,
        record_size,
    })
    .await;
    let run = read(&url, Setup::default()).await;
    run.report("300 MB body");
    assert!(run.success, "{:#?}\n{}", run.errors(), run.stderr);
    assert_eq!(run.records(), records);
    let mut ids: Vec<u64> = run
        .messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| {
            let data = &m["record"]["data"];
            let id = data["id"].as_u64().unwrap();
            let padding = record_size - huge_record_overhead(id as usize);
            assert_eq!(data["pad"].as_str().unwrap().len(), padding, "record {id}");
            id
        })
        .collect();
    ids.sort_unstable();
    assert!(ids.iter().copied().eq(0..records as u64), "ids differ");
    assert!(
        run.peak_rss_mb <= 2.0 * body_mb,
        "peak RSS {:.1} MB for a body of {body_mb:.1} MB",
        run.peak_rss_mb
    );
}

#[tokio::test]
async fn a_response_head_of_16_mib_fails_the_stream() {
    let url = serve(Behaviour::HugeHeader(16 << 20)).await;
    let run = read(&url, Setup::default()).await;
    run.report("16 MiB header");
    assert_failed_with(&run, "system_error", "/items");
    let (_, message) = &run.errors()[0];
    assert!(message.contains("too large"), "{message}");
}

#[tokio::test]
async fn invalid_utf8_in_a_json_body_is_reported_as_the_reference_does() {
    let url = serve(Behaviour::InvalidUtf8).await;
    let run = read(&url, Setup::default()).await;
    run.report("invalid UTF-8");
    // The reference cannot decode the body, logs an error and reads the page as empty.
    assert!(run.success, "{:#?}", run.errors());
    assert_eq!(run.records(), 0);
    let errors = run.logs("ERROR");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Failed to parse JSON data")),
        "{errors:#?}"
    );
}

#[tokio::test]
async fn a_truncated_chunked_body_fails_the_stream() {
    let url = serve(Behaviour::TruncatedChunked).await;
    let run = read(&url, Setup::default()).await;
    run.report("truncated chunked body");
    assert_failed_with(&run, "system_error", "/items");
    run.ended_within(20);
}

#[tokio::test]
async fn a_connection_reset_mid_page_fails_the_stream() {
    let url = serve(Behaviour::ResetMidPage).await;
    let run = read(&url, Setup::default()).await;
    run.report("reset mid-page");
    assert_failed_with(&run, "system_error", "/items");
    run.ended_within(20);
}

#[tokio::test]
async fn a_server_that_stops_mid_body_fails_the_stream_after_the_stall_timeout() {
    let url = serve(Behaviour::StopMidBody).await;
    let setup = Setup {
        flags: flags(&["--stall-timeout", "1"]),
        ..Setup::default()
    };
    let run = read(&url, setup).await;
    run.report("stops mid-body");
    assert_failed_with(&run, "transient_error", "/items");
    // Two attempts of about a second each.
    run.ended_within(15);
}

#[tokio::test]
async fn a_trickling_server_fails_the_stream_after_the_request_timeout() {
    let url = serve(Behaviour::Trickle).await;
    let setup = Setup {
        flags: flags(&["--stall-timeout", "30", "--request-timeout", "2"]),
        ..Setup::default()
    };
    let run = read(&url, setup).await;
    run.report("trickle");
    assert_failed_with(&run, "transient_error", "not complete within 2s");
    run.ended_within(20);
}

#[tokio::test]
async fn a_server_asking_to_wait_a_year_fails_the_stream_at_once() {
    let url = serve(Behaviour::RetryAfterAYear).await;
    let setup = Setup {
        backoff: "{type: WaitTimeFromHeader, header: Retry-After}",
        ..Setup::default()
    };
    let run = read(&url, setup).await;
    run.report("Retry-After a year");
    assert_failed_with(&run, "transient_error", "--max-wait");
    run.ended_within(10);
}

#[tokio::test]
async fn a_cursor_that_never_moves_fails_the_stream_after_its_first_page() {
    let url = serve(Behaviour::SameCursorForever).await;
    let setup = Setup {
        paginator: CURSOR_PAGINATOR,
        ..Setup::default()
    };
    let run = read(&url, setup).await;
    run.report("same cursor forever");
    assert_failed_with(&run, "system_error", "same page would be requested forever");
    // The first two pages' records (the first page, then the page of the cursor that repeats)
    // are kept; nothing more is requested.
    assert_eq!(run.records(), 2);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_followed_without_the_authorization_header() {
    let saw_authorization = Arc::new(AtomicBool::new(true));
    let other = serve(Behaviour::RecordAuthorization(Arc::clone(
        &saw_authorization,
    )))
    .await;
    // `localhost` is another host than `127.0.0.1` to the client, as `requests` compares them.
    let other = other.replace("127.0.0.1", "localhost");
    let answered = Arc::new(AtomicUsize::new(0));
    let url = serve(Behaviour::RedirectTo {
        location: other,
        answered: Arc::clone(&answered),
    })
    .await;
    let run = read(&url, Setup::default()).await;
    run.report("redirect to another host");
    assert!(run.success, "{:#?}", run.errors());
    assert_eq!(run.records(), 1);
    assert_eq!(answered.load(Ordering::SeqCst), 1);
    assert!(
        !saw_authorization.load(Ordering::SeqCst),
        "the token went to the other host"
    );
}

#[tokio::test]
async fn endless_redirects_end_after_thirty() {
    let answered = Arc::new(AtomicUsize::new(0));
    // A relative location: the server redirects to itself.
    let url = serve(Behaviour::RedirectTo {
        location: String::new(),
        answered: Arc::clone(&answered),
    })
    .await;
    let run = read(&url, Setup::default()).await;
    run.report("endless redirects");
    assert!(!run.success);
    let errors = run.errors();
    assert!(
        errors
            .iter()
            .any(|(_, m)| m.contains("Exceeded 30 redirects")),
        "{errors:#?}"
    );
    // Each of the two attempts follows 30 redirects: 31 requests each.
    assert_eq!(answered.load(Ordering::SeqCst), 62);
}
