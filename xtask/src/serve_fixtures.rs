//! `cargo xtask serve-fixtures DIR`: serves a case's cassette over HTTP on 127.0.0.1 so any
//! program (the reference, curl) can replay it, and rewrites manifests and configs to point at it.
//!
//! One case may call several hosts, so each recorded host gets a path prefix on the server:
//! `https://api.example.com/v1/users` is served as `http://127.0.0.1:PORT/__host/api.example.com/v1/users`.
//! [`HostRewriter`] applies that mapping to manifest and config text and to served bodies and
//! headers (pagination links), and the server maps it back before matching the cassette.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use regex::Regex;
use sluice_http::cassette::Cassette;
use sluice_http::{HttpRequest, Method, ReplayTransport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The path prefix under which a recorded host is served.
const HOST_PREFIX: &str = "/__host/";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A case directory holding cassette.json (or a cassette file).
    dir: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write the case's manifest.yaml, hosts rewritten to this server, to this path.
    #[arg(long)]
    write_manifest: Option<PathBuf>,
    /// Write the case's config.json, hosts rewritten to this server, to this path.
    #[arg(long)]
    write_config: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let (cassette_path, case_dir) = if args.dir.is_dir() {
        (args.dir.join("cassette.json"), Some(args.dir.as_path()))
    } else {
        (args.dir.clone(), None)
    };
    let cassette = Cassette::load(&cassette_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = FixtureServer::start(cassette, args.port).await?;
        let rewriter = server.rewriter();
        for (wanted, name) in [
            (&args.write_manifest, "manifest.yaml"),
            (&args.write_config, "config.json"),
        ] {
            let Some(out) = wanted else { continue };
            let Some(case_dir) = case_dir else {
                bail!("--write-manifest/--write-config need a case directory")
            };
            let text = std::fs::read_to_string(case_dir.join(name))
                .with_context(|| format!("cannot read {}", case_dir.join(name).display()))?;
            std::fs::write(out, rewriter.rewrite(&text))
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        println!(
            "serving {} on http://{}",
            cassette_path.display(),
            server.addr
        );
        for host in &rewriter.hosts {
            println!("  https://{host}/... -> {}", rewriter.prefix(host));
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        for miss in server.unmatched() {
            eprintln!("unmatched: {miss}");
        }
        Ok(())
    })
}

/// Rewrites absolute URLs of the cassette's hosts (and URLs whose host is a Jinja template) to
/// the server's per-host prefix.
#[derive(Debug, Clone)]
pub struct HostRewriter {
    base: String,
    hosts: Vec<String>,
    literal: Option<Regex>,
    templated: Regex,
}

impl HostRewriter {
    pub fn new(addr: SocketAddr, hosts: Vec<String>) -> Self {
        let literal = (!hosts.is_empty()).then(|| {
            let alternatives: Vec<String> = hosts.iter().map(|h| regex::escape(h)).collect();
            // The host must end where a URL's host ends, so `api.x.com` leaves `api.x.com.evil` alone.
            Regex::new(&format!(
                r"(?i)https?://({})([/?#\x22'\s]|$)",
                alternatives.join("|")
            ))
            .expect("escaped host names form a valid pattern")
        });
        let templated = Regex::new(r"https?://([^/\s\x22']*\{\{[^}]*\}\}[^/\s\x22']*)")
            .expect("a constant pattern is valid");
        Self {
            base: format!("http://{addr}"),
            hosts,
            literal,
            templated,
        }
    }

    /// The URL prefix that stands for `https://{host}`.
    pub fn prefix(&self, host: &str) -> String {
        format!("{}{HOST_PREFIX}{host}", self.base)
    }

    /// The inverse of [`HostRewriter::rewrite`] for output: server URLs become `https://host`
    /// again, so records that carry URLs (served bodies were rewritten) show the recorded ones.
    pub fn restore(&self, text: &str) -> String {
        text.replace(&format!("{}{HOST_PREFIX}", self.base), "https://")
    }

    /// `text` with every URL of a recorded or templated host pointed at the server.
    pub fn rewrite(&self, text: &str) -> String {
        let mut out = match &self.literal {
            Some(literal) => literal
                .replace_all(text, |caps: &regex::Captures<'_>| {
                    let boundary = caps.get(2).map_or("", |m| m.as_str());
                    format!("{}{boundary}", self.prefix(&caps[1].to_ascii_lowercase()))
                })
                .into_owned(),
            None => text.to_owned(),
        };
        out = self
            .templated
            .replace_all(&out, |caps: &regex::Captures<'_>| self.prefix(&caps[1]))
            .into_owned();
        out
    }
}

/// A running replay server; stops when dropped.
#[derive(Debug)]
pub struct FixtureServer {
    pub addr: SocketAddr,
    hosts: Vec<String>,
    unmatched: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FixtureServer {
    /// Binds 127.0.0.1:`port` (0 = any free port) and serves `cassette` until dropped.
    pub async fn start(cassette: Cassette, port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let hosts = cassette.hosts();
        let rewriter = Arc::new(HostRewriter::new(addr, hosts.clone()));
        let replay = Arc::new(ReplayTransport::new(cassette));
        let unmatched = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ServerState {
            replay,
            rewriter,
            unmatched: unmatched.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(state.answer(request).await) }
                    });
                    // A client hanging up mid-exchange is its own business.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            hosts,
            unmatched,
            task,
        })
    }

    /// The rewriter that points URLs at this server.
    pub fn rewriter(&self) -> HostRewriter {
        HostRewriter::new(self.addr, self.hosts.clone())
    }

    /// The requests the cassette could not answer so far, with the closest recording of each.
    pub fn unmatched(&self) -> Vec<String> {
        self.unmatched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct ServerState {
    replay: Arc<ReplayTransport>,
    rewriter: Arc<HostRewriter>,
    unmatched: Arc<Mutex<Vec<String>>>,
}

impl ServerState {
    async fn answer(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        match self.replay_one(request).await {
            Ok(response) => response,
            Err(message) => {
                self.unmatched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(message.clone());
                // 404 makes clients fail fast instead of retrying as they would on 5xx.
                plain_response(404, &format!("sluice fixture server: {message}\n"))
            }
        }
    }

    async fn replay_one(
        &self,
        request: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, String> {
        let (parts, body) = request.into_parts();
        let method = Method::parse(parts.method.as_str())
            .ok_or_else(|| format!("unsupported method {}", parts.method))?;
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let Some(rest) = path_and_query.strip_prefix(HOST_PREFIX) else {
            return Err(format!(
                "{method} {path_and_query} is not under {HOST_PREFIX}<host>/"
            ));
        };
        let url = format!("https://{rest}");
        let body = body
            .collect()
            .await
            .map_err(|e| format!("cannot read the request body: {e}"))?
            .to_bytes();
        let mut http_request = HttpRequest::new(method, url);
        for (name, value) in &parts.headers {
            http_request.headers.push((
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        if !body.is_empty() {
            http_request.body = Some(body);
        }
        let recorded = self
            .replay
            .answer(&http_request)
            .map_err(|e| e.to_string())?;

        let mut builder = hyper::Response::builder().status(recorded.status);
        let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        for (name, value) in &recorded.headers {
            // A redirect to a path on the same host stays under that host's prefix.
            let is_host_relative = value.starts_with('/') && !value.starts_with("//");
            let value = if name.eq_ignore_ascii_case("location") && is_host_relative {
                format!("{HOST_PREFIX}{host}{value}")
            } else {
                self.rewriter.rewrite(value)
            };
            builder = builder.header(name.as_str(), value);
        }
        // Bodies may link to the next page on the recorded host: point those links here too.
        let body = match std::str::from_utf8(&recorded.body) {
            Ok(text) => Bytes::from(self.rewriter.rewrite(text)),
            Err(_) => recorded.body,
        };
        builder
            .body(Full::new(body))
            .map_err(|e| format!("the recorded response cannot be served: {e}"))
    }
}

fn plain_response(status: u16, text: &str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::NOT_FOUND);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_http::{HyperTransport, Transport};

    #[test]
    fn rewrites_recorded_and_templated_hosts_only() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let rewriter = HostRewriter::new(
            addr,
            vec!["api.example.com".into(), "auth.example.com:8443".into()],
        );
        let text = "url_base: https://api.example.com/v1\n\
                    token: 'https://auth.example.com:8443/oauth?x=1'\n\
                    other: https://api.example.com.evil/x\n\
                    $schema: http://json-schema.org/draft-07/schema#\n\
                    sub: \"https://{{ config['shop'] }}.myshopify.com/admin\"\n\
                    bare: https://API.example.com";
        assert_eq!(
            rewriter.rewrite(text),
            "url_base: http://127.0.0.1:4000/__host/api.example.com/v1\n\
             token: 'http://127.0.0.1:4000/__host/auth.example.com:8443/oauth?x=1'\n\
             other: https://api.example.com.evil/x\n\
             $schema: http://json-schema.org/draft-07/schema#\n\
             sub: \"http://127.0.0.1:4000/__host/{{ config['shop'] }}.myshopify.com/admin\"\n\
             bare: http://127.0.0.1:4000/__host/api.example.com"
        );
        let output = r#"{"record":{"data":{"next":"http://127.0.0.1:4000/__host/api.example.com/v1?page=2"}}}"#;
        assert_eq!(
            rewriter.restore(output),
            r#"{"record":{"data":{"next":"https://api.example.com/v1?page=2"}}}"#
        );
    }

    #[tokio::test]
    async fn serves_the_cassette_and_reports_misses() {
        let cassette = Cassette::from_json_str(
            r#"{"exchanges": [
              {"request": {"url": "https://api.example.com/items?b=2&a=1"},
               "response": {"status": 200, "headers": {"Link": "<https://api.example.com/items?page=2>; rel=next"},
                            "body": {"json": {"next": "https://api.example.com/items?page=2", "items": [1]}}}},
              {"request": {"url": "https://api.example.com/old"},
               "response": {"status": 301, "headers": {"Location": "/new?x=1"}, "body": {"text": ""}}}
            ]}"#,
        )
        .unwrap();
        let server = FixtureServer::start(cassette, 0).await.unwrap();
        let prefix = server.rewriter().prefix("api.example.com");
        let client = HyperTransport::default();
        let response = client
            .send(&HttpRequest::new(
                Method::Get,
                format!("{prefix}/items?a=1&b=2"),
            ))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["next"], format!("{prefix}/items?page=2"));
        assert_eq!(
            response.header("link"),
            Some(format!("<{prefix}/items?page=2>; rel=next").as_str())
        );

        let moved = client
            .send(&HttpRequest::new(Method::Get, format!("{prefix}/old")))
            .await
            .unwrap();
        assert_eq!(
            moved.header("location"),
            Some("/__host/api.example.com/new?x=1")
        );

        let miss = client
            .send(&HttpRequest::new(Method::Get, format!("{prefix}/item")))
            .await
            .unwrap();
        assert_eq!(miss.status, 404);
        let unmatched = server.unmatched();
        assert_eq!(unmatched.len(), 1);
        assert!(
            unmatched[0].contains("GET https://api.example.com/item"),
            "{}",
            unmatched[0]
        );
        assert!(
            unmatched[0].contains("closest recorded request is #0"),
            "{}",
            unmatched[0]
        );
    }
}
