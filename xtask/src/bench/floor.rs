//! The floor: the least any client must do to read a scenario's pages. One keep-alive HTTP/1
//! connection, pages fetched one after another exactly as a connector would request them, each
//! body collected and dropped. Its wall time is the bound sluice is measured against, and its
//! bytes per second measure the server's own throughput.

use super::pages::{PAGE_SIZE, RecordShape};
use super::scenarios::Pagination;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What one floor run did.
#[derive(Debug, Clone)]
pub struct FloorRun {
    pub wall: Duration,
    pub pages: u64,
    pub bytes: u64,
}

/// Fetches every page of `pagination` from the server at `addr` until the API says there are no
/// more (an empty page, or `"next":null`): offset pages from `shape`'s route, cursor pages of the
/// plain records.
pub fn run(
    addr: SocketAddr,
    pagination: Pagination,
    shape: RecordShape,
) -> anyhow::Result<FloorRun> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the floor client's runtime")?;
    runtime.block_on(fetch_all(addr, pagination, shape.offset_path()))
}

async fn fetch_all(
    addr: SocketAddr,
    pagination: Pagination,
    offset_path: &str,
) -> anyhow::Result<FloorRun> {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("floor client cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("floor client handshake failed")?;
    let driver = tokio::spawn(connection);

    let host = addr.to_string();
    let mut next_path = Some(match pagination {
        Pagination::Offset => format!("{offset_path}?offset=0&limit={PAGE_SIZE}"),
        Pagination::Cursor => "/cursor/items".to_owned(),
    });
    let mut offset = 0;
    let (mut pages, mut bytes) = (0u64, 0u64);
    while let Some(path) = next_path.take() {
        let request = Request::get(path.as_str())
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new())?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("floor client: GET {path} failed"))?;
        if !response.status().is_success() {
            bail!("floor client: GET {path} answered {}", response.status());
        }
        let body = response.into_body().collect().await?.to_bytes();
        pages += 1;
        bytes += body.len() as u64;
        next_path = match pagination {
            Pagination::Offset if body.starts_with(b"{\"data\":[]") => None,
            Pagination::Offset => {
                offset += PAGE_SIZE;
                Some(format!("{offset_path}?offset={offset}&limit={PAGE_SIZE}"))
            }
            Pagination::Cursor => next_url_path(&body)?,
        };
    }
    drop(sender);
    let _ = driver.await;
    Ok(FloorRun {
        wall: started.elapsed(),
        pages,
        bytes,
    })
}

/// The path and query of the body's `"next":"URL"`, or `None` for `"next":null`. The field is
/// the last one in the body, so only the tail is searched.
fn next_url_path(body: &[u8]) -> anyhow::Result<Option<String>> {
    const MARKER: &[u8] = b"\"next\":";
    let tail = &body[body.len().saturating_sub(256)..];
    let at = memchr::memmem::rfind(tail, MARKER).context("floor client: page has no \"next\"")?;
    let value = &tail[at + MARKER.len()..];
    if value.starts_with(b"null") {
        return Ok(None);
    }
    let url = value
        .strip_prefix(b"\"")
        .and_then(|v| v.split(|&b| b == b'"').next())
        .context("floor client: \"next\" is neither a string nor null")?;
    let url = std::str::from_utf8(url)?;
    let path_start = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| url.len() - rest.len() + i))
        .with_context(|| format!("floor client: next URL {url} is not http://HOST/PATH"))?;
    Ok(Some(url[path_start..].to_owned()))
}
