//! stdout as a channel to a reader sluice does not control: a reader that exits early ends the
//! read at once with exit code 141 and one line on stderr, no panic; a reader that is slow holds
//! the read back (no page is requested faster than its records are taken) with memory flat.

use crate::support::{full_refresh_catalog, read_command, write_manifest_and_config};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
streams:
  - type: DeclarativeStream
    name: items
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "URL_BASE"
        path: /items
        http_method: GET
      paginator:
        type: DefaultPaginator
        pagination_strategy: {type: PageIncrement, page_size: 1000}
        page_token_option: {type: RequestOption, inject_into: request_parameter, field_name: page}
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
"##;

const PAGE_RECORDS: usize = 1000;

/// Serves `pages` full pages of records (about 100 KB each), then an empty one, counting the
/// requests it answers.
async fn serve(pages: usize, answered: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let record = format!("{{\"id\": 1, \"text\": \"{}\"}}", "z".repeat(80));
    let page = format!("{{\"data\": [{}]}}", vec![record; PAGE_RECORDS].join(","));
    let page = Arc::new(page);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (page, answered) = (Arc::clone(&page), Arc::clone(&answered));
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                loop {
                    let mut request = Vec::new();
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let served = answered.fetch_add(1, Ordering::SeqCst);
                    let body = if served < pages {
                        page.as_str()
                    } else {
                        "{\"data\": []}"
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if socket.write_all(head.as_bytes()).await.is_err()
                        || socket.write_all(body.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

/// Starts `sluice read` on the server at `url` with stdout piped to the test.
fn start_read(url: &str, work: &std::path::Path) -> Child {
    let (manifest, config) = write_manifest_and_config(work, MANIFEST, url);
    let catalog = work.join("catalog.json");
    std::fs::write(&catalog, full_refresh_catalog(&["items"])).unwrap();
    read_command(&manifest, &config, &catalog)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `VmRSS` of a running process, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib * 1024.0 / 1e6)
}

#[tokio::test]
async fn a_reader_that_exits_early_ends_the_read_at_once_without_a_panic() {
    let answered = Arc::new(AtomicUsize::new(0));
    // A stream far longer than anyone waits for: 10 million records.
    let url = serve(10_000, Arc::clone(&answered)).await;
    let work = tempfile::tempdir().unwrap();
    let mut child = start_read(&url, work.path());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        // Like `sluice read | head -n 100`.
        let mut line = String::new();
        for _ in 0..100 {
            line.clear();
            stdout.read_line(&mut line).unwrap();
        }
        drop(stdout);
        let closed = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                closed.elapsed() < Duration::from_secs(10),
                "sluice still runs {:?} after its reader left",
                closed.elapsed()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        (status, text)
    })
    .await
    .unwrap();
    let (status, stderr) = status;
    assert_eq!(status.code(), Some(141), "stderr: {stderr}");
    assert!(
        stderr.contains("stdout was closed by its reader"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    let requested = answered.load(Ordering::SeqCst);
    assert!(requested < 100, "{requested} pages requested");
}

#[tokio::test]
async fn a_slow_reader_holds_the_read_back_with_memory_flat() {
    let pages = 300;
    let answered = Arc::new(AtomicUsize::new(0));
    let url = serve(pages, Arc::clone(&answered)).await;
    let work = tempfile::tempdir().unwrap();
    let mut child = start_read(&url, work.path());
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let answered_now = Arc::clone(&answered);
    let (records, paused_requests, paused_rss, status) = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Take nothing for two seconds: the read must wait for the reader.
        std::thread::sleep(Duration::from_millis(500));
        let before = answered_now.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(2));
        let during = answered_now.load(Ordering::SeqCst) - before;
        let rss = rss_mb(pid);
        // Then read the rest slowly, a little at a time.
        let mut records = usize::from(line.contains("\"type\":\"RECORD\""));
        let mut read = 0;
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            records += usize::from(line.contains("\"type\":\"RECORD\""));
            read += 1;
            if read % 20_000 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        (records, during, rss, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(status.success());
    assert_eq!(records, pages * PAGE_RECORDS, "every record arrives");
    // While nothing is read, at most the pages in flight are requested (none after the pipe
    // and the writer's queue are full), however many remain.
    assert!(
        paused_requests <= 2,
        "{paused_requests} pages requested while the reader took nothing"
    );
    assert!(paused_rss < 100.0, "RSS {paused_rss:.1} MB while paused");
    eprintln!(
        "slow reader: {paused_requests} requests and RSS {paused_rss:.1} MB during the pause, \
         {records} records in all"
    );
}
