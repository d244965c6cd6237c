//! The benchmark's API server: hyper on 127.0.0.1, on its own one-thread runtime, answering
//! from a [`PageSet`] without copying or encoding anything per request.
//!
//! Routes: `GET /offset/items?offset=N&limit=1000` and `GET /cursor/items[?page=K]` (see
//! fixtures/bench/README.md). The number of records the API holds is set per run with
//! [`BenchServer::serve_records`], which also resets the counters the harness checks afterwards.

use super::pages::{PAGE_SIZE, PageSet};
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
    pages: PageSet,
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
    /// Binds 127.0.0.1 on a free port and serves `pages`.
    pub fn start(pages: PageSet) -> anyhow::Result<Self> {
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
            active_records: AtomicU64::new(pages.records()),
            pages,
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
                        async move { Ok::<_, Infallible>(answer(&shared, &request)) }
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

    /// Makes the API hold `records` records (at most as many as were generated) and resets the
    /// counters.
    pub fn serve_records(&self, records: u64) {
        let s = &self.shared;
        s.active_records
            .store(records.min(s.pages.records()), Ordering::SeqCst);
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

fn answer(shared: &Shared, request: &Request<Incoming>) -> Response<ChunkedBody> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let total = shared.active_records.load(Ordering::Relaxed);
    let query = request.uri().query().unwrap_or("");
    let page = match request.uri().path() {
        "/offset/items" => {
            let offset = query_number(query, "offset").unwrap_or(Ok(0));
            let limit = query_number(query, "limit").unwrap_or(Ok(PAGE_SIZE));
            match (offset, limit) {
                (Ok(offset), Ok(limit)) => shared
                    .pages
                    .offset_body(offset, limit, total)
                    .map_err(|e| e.to_string()),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        "/cursor/items" => match query_number(query, "page").unwrap_or(Ok(0)) {
            Ok(page) => Ok(shared.pages.cursor_body(page, total, &shared.cursor_prefix)),
            Err(e) => Err(e),
        },
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

/// The value of `name` in a query string as a number: `None` when absent.
fn query_number(query: &str, name: &str) -> Option<Result<u64, String>> {
    let value = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)?
        .1;
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
