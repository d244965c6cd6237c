use crate::page_buffers::PAGE_BUFFERS;
use crate::proxy::{ProxyConnector, ProxyEnv};
use crate::{HttpRequest, HttpResponse};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The future a [`Transport`] returns.
pub type TransportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'a>>;

/// Sends a request and returns the whole response. Implemented by the network client and by the
/// record/replay transports used offline.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends `request`; a non-2xx status is a response, not an error.
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a>;

    /// Waits before a retry. A replaying transport has no real server to wait for and
    /// returns at once, so replayed backoffs cost no time.
    fn wait(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A request that got no HTTP response: the connection failed, timed out, or the response could
/// not be read.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid request {request}: {reason}")]
    InvalidRequest { request: String, reason: String },
    #[error("connection error on {request}: {reason}")]
    Connection { request: String, reason: String },
    #[error("timed out after {seconds}s on {request}")]
    Timeout { request: String, seconds: u64 },
    /// No byte arrived for the stall timeout (`--stall-timeout`).
    #[error("no data received for {seconds}s on {request}")]
    Stalled { request: String, seconds: u64 },
    /// The request was not complete within sluice's own limit (`--request-timeout`); a limit
    /// the manifest sets gives [`TransportError::Timeout`], as the reference's do.
    #[error("not complete within {seconds}s on {request}")]
    TookTooLong { request: String, seconds: u64 },
    #[error("could not connect within {seconds}s on {request}")]
    ConnectTimeout { request: String, seconds: u64 },
    #[error("cannot read the response body of {request}: {reason}")]
    Body { request: String, reason: String },
    /// The body, once decompressed, is larger than sluice reads (`--max-response-size`).
    #[error(
        "the response to {request} is larger than {} (a body that never ends, or a \
         decompression bomb?); a larger limit can be set with --max-response-size",
        human_bytes(*.limit)
    )]
    TooLarge { request: String, limit: usize },
    /// More redirects than Python's `requests` follows (30).
    #[error("Exceeded 30 redirects on {request}")]
    TooManyRedirects { request: String },
    /// No recorded exchange answers the request (replay only).
    #[error("{0}")]
    NotRecorded(String),
}

/// Per-request time limits (`connect_timeout_in_seconds`, `read_timeout_in_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// Until the connection is open.
    pub connect: Option<Duration>,
    /// Until the response (headers and body) has arrived.
    pub read: Option<Duration>,
}

type HttpsConnector = hyper_rustls::HttpsConnector<ProxyConnector>;

/// The network transport: a pooled hyper client over HTTP/1.1 and HTTP/2, HTTPS through rustls
/// with the system's roots (falling back to webpki roots), gzip and deflate bodies decoded.
///
/// Proxies come from `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY` (see [`ProxyEnv`]),
/// as with Python `requests`: plain-HTTP requests go to the HTTP proxy with an absolute-form
/// target, HTTPS requests are tunnelled through the HTTPS proxy with `CONNECT`.
#[derive(Debug, Clone)]
pub struct HyperTransport {
    /// Built on the first request: loading the system's root certificates costs milliseconds
    /// that `spec`, `discover` and a failing `check` need not pay.
    client: Arc<OnceLock<Client<HttpsConnector, Full<Bytes>>>>,
    proxies: Arc<Matcher>,
    timeout: Duration,
    /// The longest time without receiving a byte before a request counts as failed.
    stall: Duration,
    /// The largest body read, after decompression.
    max_body: usize,
}

/// The largest response body read by default, after decompression: several hundred MB read
/// whole, while a body that never ends or a decompression bomb stops well before the memory of
/// a small container is gone.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 384 << 20;

impl HyperTransport {
    /// A client whose requests time out after `timeout`, with the proxies of the process
    /// environment ([`ProxyEnv::from_env`]).
    pub fn new(timeout: Duration) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            proxies: Arc::new(ProxyEnv::from_env().matcher()),
            timeout,
            stall: timeout,
            max_body: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The same client, failing a response whose body (decompressed) is larger than `bytes`
    /// with [`TransportError::TooLarge`].
    pub fn with_max_response_bytes(self, bytes: usize) -> Self {
        Self {
            max_body: bytes,
            ..self
        }
    }

    /// The same client, failing a request that receives no byte for `stall` (waiting for the
    /// response's head, or between two parts of its body).
    pub fn with_stall_timeout(self, stall: Duration) -> Self {
        Self { stall, ..self }
    }

    /// The same client routed by `proxies` instead of the process environment.
    ///
    /// ```
    /// use sluice_http::{HyperTransport, ProxyEnv};
    /// let direct = HyperTransport::default().with_proxy_env(ProxyEnv::default());
    /// # drop(direct);
    /// ```
    pub fn with_proxy_env(self, proxies: ProxyEnv) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            proxies: Arc::new(proxies.matcher()),
            timeout: self.timeout,
            stall: self.stall,
            max_body: self.max_body,
        }
    }

    fn client(&self) -> &Client<HttpsConnector, Full<Bytes>> {
        self.client.get_or_init(|| {
            let builder = hyper_rustls::HttpsConnectorBuilder::new();
            let builder = match builder.with_native_roots() {
                Ok(b) => b,
                Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
            };
            let connector = builder
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(ProxyConnector::new(Arc::clone(&self.proxies)));
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector)
        })
    }
}

impl HyperTransport {
    /// The `Proxy-Authorization` a plain-HTTP request sends to its proxy (HTTPS requests send
    /// theirs in the `CONNECT`, never to the destination).
    fn proxy_authorization(&self, url: &str) -> Option<http::HeaderValue> {
        if !url.starts_with("http:") {
            return None;
        }
        let uri = url.parse::<http::Uri>().ok()?;
        self.proxies.intercept(&uri)?.basic_auth().cloned()
    }
}

impl Default for HyperTransport {
    fn default() -> Self {
        Self::new(Duration::from_secs(300))
    }
}

impl Transport for HyperTransport {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        Box::pin(async move {
            let invalid = |reason: String| TransportError::InvalidRequest {
                request: request.to_string(),
                reason,
            };
            let mut builder = http::Request::builder()
                .method(request.method.as_str())
                .uri(request.url.as_str());
            let mut has_accept_encoding = false;
            for (name, value) in &request.headers {
                has_accept_encoding |= name.eq_ignore_ascii_case("accept-encoding");
                builder = builder.header(name.as_str(), value.as_str());
            }
            if !has_accept_encoding {
                builder = builder.header("Accept-Encoding", "gzip, deflate");
            }
            if let Some(auth) = self.proxy_authorization(&request.url) {
                builder = builder.header(http::header::PROXY_AUTHORIZATION, auth);
            }
            let body = Full::new(request.body.clone().unwrap_or_default());
            let http_request = builder.body(body).map_err(|e| invalid(e.to_string()))?;

            let stalled = || TransportError::Stalled {
                request: request.to_string(),
                seconds: self.stall.as_secs(),
            };
            let exchange = async {
                let response =
                    tokio::time::timeout(self.stall, self.client().request(http_request))
                        .await
                        .map_err(|_| stalled())?
                        .map_err(|e| TransportError::Connection {
                            request: request.to_string(),
                            reason: error_chain(&e),
                        })?;
                let (parts, mut body) = response.into_parts();
                let too_large = || TransportError::TooLarge {
                    request: request.to_string(),
                    limit: self.max_body,
                };
                let expected = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                if expected.is_some_and(|length| length > self.max_body) {
                    return Err(too_large());
                }
                // Frame by frame, so a server that stops sending mid-body is noticed.
                let mut received = BodyFrames::new(expected);
                while let Some(frame) = tokio::time::timeout(self.stall, body.frame())
                    .await
                    .map_err(|_| stalled())?
                {
                    let frame = frame.map_err(|e| TransportError::Body {
                        request: request.to_string(),
                        reason: error_chain(&e),
                    })?;
                    if let Ok(data) = frame.into_data() {
                        if received.len() + data.len() > self.max_body {
                            return Err(too_large());
                        }
                        received.push(data);
                    }
                }
                let bytes = received.into_bytes();
                Ok::<_, TransportError>((parts, bytes))
            };
            // The manifest's limits replace sluice's own: connecting plus reading the response.
            let connect = request.timeouts.and_then(|t| t.connect).unwrap_or_default();
            let manifest_limit = request
                .timeouts
                .and_then(|t| t.read)
                .map(|read| connect + read);
            let limit = manifest_limit.unwrap_or(connect + self.timeout);
            let (parts, raw) = tokio::time::timeout(limit, exchange).await.map_err(|_| {
                let request = request.to_string();
                let seconds = limit.as_secs();
                match manifest_limit {
                    Some(_) => TransportError::Timeout { request, seconds },
                    None => TransportError::TookTooLong { request, seconds },
                }
            })??;

            let encoding = parts
                .headers
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase);
            let body = decode_body(encoding.as_deref(), raw, self.max_body).map_err(|e| {
                if e.kind() == std::io::ErrorKind::FileTooLarge {
                    TransportError::TooLarge {
                        request: request.to_string(),
                        limit: self.max_body,
                    }
                } else {
                    TransportError::Body {
                        request: request.to_string(),
                        reason: e.to_string(),
                    }
                }
            })?;
            let headers = parts
                .headers
                .iter()
                .filter(|(name, _)| {
                    // The body is handed on decoded, so its encoding headers no longer hold.
                    encoding.is_none()
                        || (*name != http::header::CONTENT_ENCODING
                            && *name != http::header::CONTENT_LENGTH)
                })
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            Ok(HttpResponse {
                status: parts.status.as_u16(),
                headers,
                body,
            })
        })
    }
}

/// The body as sent, gunzipped or inflated as its `Content-Encoding` says; an error of kind
/// `FileTooLarge` when it would grow past `limit` bytes.
fn decode_body(encoding: Option<&str>, raw: Bytes, limit: usize) -> std::io::Result<Bytes> {
    match encoding {
        Some("gzip") | Some("x-gzip") => {
            inflate_at_most(flate2::read::MultiGzDecoder::new(raw.as_ref()), limit).map(Bytes::from)
        }
        Some("deflate") => {
            // Servers send either zlib-wrapped or raw deflate under this name.
            match inflate_at_most(flate2::read::ZlibDecoder::new(raw.as_ref()), limit) {
                Err(e) if e.kind() != std::io::ErrorKind::FileTooLarge => {
                    inflate_at_most(flate2::read::DeflateDecoder::new(raw.as_ref()), limit)
                        .map(Bytes::from)
                }
                inflated => inflated.map(Bytes::from),
            }
        }
        _ => Ok(raw),
    }
}

/// A body's frames as they arrive, held once: a body of one frame as it came, the frames of a
/// body of known length copied into one buffer of that length, others kept apart and joined
/// once at the end (growing one buffer would copy it at every reallocation, as the allocator
/// moves large blocks, holding two copies of a large body at once).
struct BodyFrames {
    expected: Option<usize>,
    first: Option<Bytes>,
    joined: Vec<u8>,
    frames: Vec<Bytes>,
    len: usize,
}

impl BodyFrames {
    fn new(expected: Option<usize>) -> Self {
        Self {
            expected,
            first: None,
            joined: Vec::new(),
            frames: Vec::new(),
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, data: Bytes) {
        self.len += data.len();
        if self.len == data.len() {
            self.first = Some(data);
            return;
        }
        match self.expected {
            Some(expected) if self.len <= expected => {
                if let Some(first) = self.first.take() {
                    self.joined = PAGE_BUFFERS.take(expected);
                    self.joined.extend_from_slice(&first);
                }
                self.joined.extend_from_slice(&data);
            }
            // Unknown length, or more than announced.
            _ => {
                self.frames.extend(self.first.take());
                if !self.joined.is_empty() {
                    self.frames
                        .push(PAGE_BUFFERS.share(std::mem::take(&mut self.joined)));
                }
                self.frames.push(data);
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        if let Some(first) = self.first {
            return first;
        }
        if self.frames.is_empty() {
            return PAGE_BUFFERS.share(self.joined);
        }
        let mut joined = bytes::BytesMut::with_capacity(self.len);
        for frame in self.frames {
            joined.extend_from_slice(&frame);
        }
        joined.freeze()
    }
}

/// Reads `decoder` to its end, failing with `FileTooLarge` as soon as it yields more than
/// `limit` bytes: a decompression bomb stops at the limit instead of filling memory.
fn inflate_at_most(mut decoder: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    // In chunks joined once at the end, for the reason given at `BodyFrames`.
    const CHUNK: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        let read = (&mut decoder).take(CHUNK as u64).read_to_end(&mut chunk)?;
        if read == 0 {
            break;
        }
        total += read;
        if total > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("larger than {} once decompressed", human_bytes(limit)),
            ));
        }
        chunks.push(chunk);
    }
    Ok(chunks.concat())
}

/// `384 MiB`, `12 KiB`, `100 bytes`.
fn human_bytes(bytes: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn decodes_gzip_and_deflate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decode_body(Some("gzip"), gz.into(), 100).unwrap(),
            Bytes::from_static(b"{\"a\":1}")
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"xyz").unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            decode_body(Some("deflate"), z.into(), 100).unwrap(),
            Bytes::from_static(b"xyz")
        );
        assert!(decode_body(Some("gzip"), Bytes::from_static(b"not gzip"), 100).is_err());
    }

    #[test]
    fn stops_inflating_at_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b' '; 10_000]).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        assert_eq!(
            decode_body(Some("gzip"), gz.clone(), 10_000).unwrap().len(),
            10_000
        );
        let error = decode_body(Some("gzip"), gz, 9_999).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(human_bytes(384 << 20), "384 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
