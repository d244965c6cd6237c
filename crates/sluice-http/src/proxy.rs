//! Outbound proxies from `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY`, honoured the
//! way Python `requests` honours them: plain-HTTP requests go to the HTTP proxy in absolute
//! form, HTTPS requests are tunnelled through the HTTPS proxy with `CONNECT`, and `NO_PROXY`
//! (hosts, domain suffixes, IPs and networks, `*`) sends a request straight to its host.
//!
//! The matching itself is hyper-util's [`Matcher`]; this module feeds it explicit values (so a
//! test can build one without touching the process environment) and provides the connector that
//! routes each connection.

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tower_service::Service;

/// The proxy settings a [`HyperTransport`](crate::HyperTransport) routes by: the values of the
/// usual environment variables, each `None` (or empty) when unset.
///
/// ```
/// use sluice_http::ProxyEnv;
/// let proxies = ProxyEnv {
///     http_proxy: Some("http://127.0.0.1:3128".to_owned()),
///     no_proxy: Some("internal.example.com,10.0.0.0/8".to_owned()),
///     ..ProxyEnv::default()
/// };
/// assert!(proxies.proxy_for("http://api.example.com/v1").is_some());
/// assert!(proxies.proxy_for("http://db.internal.example.com/").is_none());
/// assert!(proxies.proxy_for("https://api.example.com/").is_none()); // no HTTPS proxy set
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `http_proxy` / `HTTP_PROXY`: the proxy for `http://` URLs.
    pub http_proxy: Option<String>,
    /// `https_proxy` / `HTTPS_PROXY`: the proxy `https://` URLs are tunnelled through.
    pub https_proxy: Option<String>,
    /// `all_proxy` / `ALL_PROXY`: the proxy for either scheme when its own variable is unset.
    pub all_proxy: Option<String>,
    /// `no_proxy` / `NO_PROXY`: comma-separated hosts, domain suffixes, IPs, CIDR networks or
    /// `*`, reached directly.
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads the process environment. As in Python's `urllib` (which `requests` uses), the
    /// lowercase variable wins over the uppercase one when both are set.
    pub fn from_env() -> Self {
        let read = |name: &str| {
            [name.to_ascii_lowercase(), name.to_owned()]
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        Self {
            http_proxy: read("HTTP_PROXY"),
            https_proxy: read("HTTPS_PROXY"),
            all_proxy: read("ALL_PROXY"),
            no_proxy: read("NO_PROXY"),
        }
    }

    /// The proxy URI a request to `url` goes through, or `None` when it goes directly (no proxy
    /// for its scheme, bypassed by `no_proxy`, or `url` is not a valid URI).
    pub fn proxy_for(&self, url: &str) -> Option<http::Uri> {
        let uri = url.parse::<http::Uri>().ok()?;
        self.matcher()
            .intercept(&uri)
            .map(|intercept| intercept.uri().clone())
    }

    pub(crate) fn matcher(&self) -> Matcher {
        let value = |v: &Option<String>| v.clone().unwrap_or_default();
        Matcher::builder()
            .http(value(&self.http_proxy))
            .https(value(&self.https_proxy))
            .all(value(&self.all_proxy))
            .no(value(&self.no_proxy))
            .build()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The innermost connector of the transport's client (TLS is layered on top by
/// hyper-rustls): connects to the destination, to its HTTP proxy, or through a `CONNECT`
/// tunnel, as the [`Matcher`] says.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    tcp: HttpConnector,
    matcher: Arc<Matcher>,
}

impl ProxyConnector {
    pub(crate) fn new(matcher: Arc<Matcher>) -> Self {
        let mut tcp = HttpConnector::new();
        // TLS runs over this connector's streams, so `https://` destinations must pass through.
        tcp.enforce_http(false);
        Self { tcp, matcher }
    }
}

impl Service<http::Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: http::Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let intercept = self.matcher.intercept(&destination);
        Box::pin(async move {
            let Some(intercept) = intercept else {
                let io = tcp.call(destination).await?;
                return Ok(ProxyStream {
                    io,
                    via_proxy: false,
                });
            };
            let proxy = intercept.uri().clone();
            if proxy.scheme() != Some(&http::uri::Scheme::HTTP) {
                return Err(format!(
                    "proxy {proxy} for {destination}: only http:// proxies are supported"
                )
                .into());
            }
            if destination.scheme() == Some(&http::uri::Scheme::HTTPS) {
                let mut tunnel = Tunnel::new(proxy, tcp);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel.call(destination).await?;
                // Inside the tunnel the client talks to the destination itself (origin form).
                Ok(ProxyStream {
                    io,
                    via_proxy: false,
                })
            } else {
                let io = tcp.call(proxy).await?;
                Ok(ProxyStream {
                    io,
                    via_proxy: true,
                })
            }
        })
    }
}

/// A TCP connection to a destination, to an HTTP proxy (`via_proxy`: the client then writes
/// absolute-form request targets), or through a tunnel.
pub(crate) struct ProxyStream {
    io: TokioIo<TcpStream>,
    via_proxy: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.via_proxy)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
