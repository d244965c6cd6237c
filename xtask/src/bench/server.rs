//! The benchmark's API server: hyper on 127.0.0.1, on its own one-thread runtime, answering
//! from a [`PageSet`] without copying or encoding anything per request.
//!
//! Routes: `GET /offset/items?offset=N&limit=1000` and `GET /cursor/items[?page=K]` (plain
//! records), `GET /offset/typed-items` and `GET /offset/orders` (the other
//! [`RecordShape`]s; see fixtures/bench/README.md). The number of records the API holds is set per run with
//! [`BenchServer::serve_records`], which also resets the counters the harness checks afterwards.
//!
//! The partitioned scenarios' routes (`/delayed/items`, `/parents`, `/children/items`,
//! `/daily/items`, bodies from [`partitions`](super::partitions)) take everything from the query.
//! `/delayed/items` answers after `delay_ms`: a `tokio::time::sleep` per request, so concurrent
//! requests wait at the same time, never one after another.

use super::pages::{PAGE_SIZE, PageBody, PageSet, RecordShape};
use super::partitions;
use anyhow::Context;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

/// What the server answered since the last [`BenchServer::serve_records`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServedStats {
    pub requests: u64,
    pub bytes: u64,
    pub records: u64,
    /// Requests answered with 400/404, with the first such request and why.
    pub rejected: u64,
    pub first_rejection: Option<String>,
}

#[derive(Debug)]
struct Shared {
    /// The plain records, and those of the other shapes the selected scenarios read.
    sets: Vec<PageSet>,
    active_records: AtomicU64,
    cursor_prefix: String,
    requests: AtomicU64,
    bytes: AtomicU64,
    records: AtomicU64,
    rejected: AtomicU64,
    first_rejection: Mutex<Option<String>>,
}

/// A running benchmark server; stops when dropped.
#[derive(Debug)]
pub struct BenchServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    // Dropping the runtime stops the accept loop and every connection.
    _runtime: tokio::runtime::Runtime,
}

impl BenchServer {
    /// Binds 127.0.0.1 on a free port and serves `sets`, each on its shape's offset route (the
    /// plain one also on the cursor route).
    pub fn start(sets: Vec<PageSet>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()
            .context("cannot start the benchmark server's runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .context("cannot bind the benchmark server to 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            active_records: AtomicU64::new(u64::MAX),
            sets,
            cursor_prefix: format!("http://{addr}/cursor/items?page="),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            records: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            first_rejection: Mutex::new(None),
        });
        let accept_shared = Arc::clone(&shared);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&accept_shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move {
                            if let Some(delay) = delay_of(&request) {
                                tokio::time::sleep(delay).await;
                            }
                            Ok::<_, Infallible>(answer(&shared, &request))
                        }
                    });
                    // A client closing its connection mid-response is not the server's problem.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            _runtime: runtime,
        })
    }

    /// `http://127.0.0.1:PORT`, the `api_url` of the benchmark config.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes the API hold `records` records of each shape (at most as many as were generated)
    /// and resets the counters.
    pub fn serve_records(&self, records: u64) {
        self.shared.active_records.store(records, Ordering::SeqCst);
        self.reset_stats();
    }

    /// Resets the counters [`stats`](Self::stats) reads.
    pub fn reset_stats(&self) {
        let s = &self.shared;
        for counter in [&s.requests, &s.bytes, &s.records, &s.rejected] {
            counter.store(0, Ordering::SeqCst);
        }
        if let Ok(mut first) = s.first_rejection.lock() {
            *first = None;
        }
    }

    pub fn stats(&self) -> ServedStats {
        let s = &self.shared;
        ServedStats {
            requests: s.requests.load(Ordering::SeqCst),
            bytes: s.bytes.load(Ordering::SeqCst),
            records: s.records.load(Ordering::SeqCst),
            rejected: s.rejected.load(Ordering::SeqCst),
            first_rejection: s.first_rejection.lock().ok().and_then(|f| f.clone()),
        }
    }
}

impl Shared {
    /// The data set served with offset pagination at `path`.
    fn set_at(&self, path: &str) -> Result<&PageSet, String> {
        self.sets
            .iter()
            .find(|set| set.shape().offset_path() == path)
            .ok_or_else(|| format!("no route {path} (or its records were not generated)"))
    }
}

fn answer(shared: &Shared, request: &Request<Incoming>) -> Response<ChunkedBody> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let total = shared.active_records.load(Ordering::Relaxed);
    let query = request.uri().query().unwrap_or("");
    let page = match request.uri().path() {
        path if path.starts_with("/offset/") => shared
            .set_at(path)
            .and_then(|set| offset_page(set, query, total)),
        // The cursor route serves the plain records, which are always generated.
        "/cursor/items" => shared
            .set_at(RecordShape::Plain.offset_path())
            .and_then(|set| {
                let page = query_number(query, "page").unwrap_or(Ok(0))?;
                Ok(set.cursor_body(page, total, &shared.cursor_prefix))
            }),
        "/delayed/items" => delayed_page(query),
        "/parents" => parents_page(query),
        "/children/items" => children_page(query),
        "/daily/items" => daily_page(query),
        other => Err(format!("no route {other}")),
    };
    match page {
        Ok(page) => {
            let body = ChunkedBody::new(page.parts);
            shared.bytes.fetch_add(body.remaining, Ordering::Relaxed);
            shared.records.fetch_add(page.records, Ordering::Relaxed);
            let mut response = Response::new(body);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(reason) => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = shared.first_rejection.lock() {
                first.get_or_insert_with(|| format!("{} -> {reason}", request.uri()));
            }
            let mut response = Response::new(ChunkedBody::new(vec![Bytes::from(reason)]));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// `GET /SHAPE-ROUTE?offset=N&limit=1000`: a page of `set`, empty past `total`.
fn offset_page(set: &PageSet, query: &str, total: u64) -> Result<PageBody, String> {
    let offset = query_number(query, "offset").unwrap_or(Ok(0))?;
    let limit = query_number(query, "limit").unwrap_or(Ok(PAGE_SIZE))?;
    set.offset_body(offset, limit, total)
        .map_err(|e| e.to_string())
}

/// How long `/delayed/items` waits before answering: its `delay_ms`.
fn delay_of(request: &Request<Incoming>) -> Option<Duration> {
    if request.uri().path() != "/delayed/items" {
        return None;
    }
    let millis = query_number(request.uri().query().unwrap_or(""), "delay_ms")?.ok()?;
    Some(Duration::from_millis(millis))
}

/// `GET /delayed/items?partition=K&records=R&delay_ms=D`: records `K * R .. (K + 1) * R`.
fn delayed_page(query: &str) -> Result<PageBody, String> {
    let partition = required_number(query, "partition")?;
    let records = required_number(query, "records")?;
    Ok(PageBody {
        parts: vec![Bytes::from(partitions::delayed_body(partition, records))],
        records,
    })
}

/// `GET /parents?offset=N&limit=L&total=T`: parents `N .. min(N + L, T)`.
fn parents_page(query: &str) -> Result<PageBody, String> {
    let offset = required_number(query, "offset")?;
    let limit = required_number(query, "limit")?;
    let total = required_number(query, "total")?;
    let (body, records) = partitions::parents_body(offset, limit, total);
    Ok(PageBody {
        parts: vec![Bytes::from(body)],
        records,
    })
}

/// `GET /children/items?parent=K&records=R`: parent K's R children.
fn children_page(query: &str) -> Result<PageBody, String> {
    let parent = required_number(query, "parent")?;
    let records = required_number(query, "records")?;
    Ok(PageBody {
        parts: vec![Bytes::from(partitions::children_body(parent, records))],
        records,
    })
}

/// `GET /daily/items?start_time=S&end_time=E&offset=N&limit=L`: records `N .. N + L` of the day
/// starting at S; E must end the same day (the manifest steps one day at a time).
fn daily_page(query: &str) -> Result<PageBody, String> {
    let start = query_text(query, "start_time").ok_or("no start_time")?;
    let end = query_text(query, "end_time").ok_or("no end_time")?;
    let (day, start_second) = partitions::day_and_second(&start)?;
    let (end_day, _) = partitions::day_and_second(&end)?;
    if start_second != 0 || end_day != day {
        return Err(format!(
            "the slice {start} .. {end} is not one whole day (step P1D)"
        ));
    }
    let offset = query_number(query, "offset").unwrap_or(Ok(0))?;
    let limit = required_number(query, "limit")?;
    let (body, records) = partitions::daily_body(day, offset, limit);
    Ok(PageBody {
        parts: vec![Bytes::from(body)],
        records,
    })
}

/// The raw value of `name` in a query string: `None` when absent.
fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    Some(
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)?
            .1,
    )
}

/// The value of `name` in a query string, percent-decoded: `None` when absent.
fn query_text(query: &str, name: &str) -> Option<String> {
    query_value(query, name).map(percent_decode)
}

/// `%XX` escapes and `+` decoded; an invalid escape is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `name` in a query string as a number, which must be there.
fn required_number(query: &str, name: &str) -> Result<u64, String> {
    query_number(query, name).unwrap_or_else(|| Err(format!("no query parameter {name}")))
}

/// The value of `name` in a query string as a number: `None` when absent.
fn query_number(query: &str, name: &str) -> Option<Result<u64, String>> {
    let value = query_value(query, name)?;
    Some(
        value
            .parse()
            .map_err(|_| format!("query parameter {name}={value} is not a number")),
    )
}

/// A response body made of shared buffers, sent one frame each, with an exact length so hyper
/// writes a Content-Length header.
#[derive(Debug)]
struct ChunkedBody {
    parts: VecDeque<Bytes>,
    remaining: u64,
}

impl ChunkedBody {
    fn new(parts: Vec<Bytes>) -> Self {
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        Self {
            parts: parts.into(),
            remaining,
        }
    }
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = this.parts.pop_front().map(|part| {
            this.remaining -= part.len() as u64;
            Ok(Frame::data(part))
        });
        Poll::Ready(next)
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_text(page: &PageBody) -> String {
        page.parts
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            percent_decode("2024-01-02T00%3A00%3A00Z"),
            "2024-01-02T00:00:00Z"
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(
            query_text("x=1&start_time=2024-01-02T00%3a00%3a00Z", "start_time").as_deref(),
            Some("2024-01-02T00:00:00Z")
        );
    }

    #[test]
    fn daily_requests_must_cover_one_whole_day() {
        let page = daily_page(
            "start_time=2024-01-02T00%3A00%3A00Z&end_time=2024-01-02T23%3A59%3A59Z&offset=0&limit=1000",
        )
        .unwrap();
        assert_eq!(page.records, 800);
        assert!(body_text(&page).contains(r#""updated_at":"2024-01-02T00:00:00Z""#));
        let two_days =
            daily_page("start_time=2024-01-02T00:00:00Z&end_time=2024-01-03T23:59:59Z&limit=1000");
        assert!(two_days.unwrap_err().contains("not one whole day"));
        assert!(daily_page("end_time=2024-01-02T23:59:59Z&limit=1000").is_err());
    }

    #[test]
    fn partition_routes_need_their_parameters() {
        assert_eq!(
            delayed_page("partition=3&records=100&delay_ms=50")
                .unwrap()
                .records,
            100
        );
        assert_eq!(
            delayed_page("records=100").unwrap_err(),
            "no query parameter partition"
        );
        assert_eq!(children_page("parent=5&records=2").unwrap().records, 2);
        assert_eq!(
            parents_page("offset=0&limit=100&total=250")
                .unwrap()
                .records,
            100
        );
        assert_eq!(
            parents_page("offset=200&limit=100&total=250")
                .unwrap()
                .records,
            50
        );
    }
}
