//! `HyperTransport` routes through the proxies of a `ProxyEnv` as Python `requests` does with
//! `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`. The proxies here are tiny servers on 127.0.0.1
//! that record the request head they get; nothing touches the process environment.

use sluice_http::{HttpRequest, HyperTransport, Method, ProxyEnv, Transport, TransportError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A server that records the head of every request it gets and answers each with `reply`.
async fn recording_server(reply: &'static str) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (heads, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (address, received)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nproxied";

fn transport(proxies: ProxyEnv) -> HyperTransport {
    HyperTransport::new(Duration::from_secs(10)).with_proxy_env(proxies)
}

fn request_line(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn plain_http_goes_to_the_http_proxy_in_absolute_form() {
    let (proxy, mut heads) = recording_server(OK).await;
    let transport = transport(ProxyEnv {
        http_proxy: Some(format!("http://{proxy}")),
        ..ProxyEnv::default()
    });
    let response = transport
        .send(&HttpRequest::new(Method::Get, "http://example.invalid/x"))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.as_ref(), b"proxied");
    let head = heads.recv().await.unwrap();
    assert_eq!(request_line(&head), "GET http://example.invalid/x HTTP/1.1");
    assert!(
        !head.to_ascii_lowercase().contains("proxy-authorization"),
        "{head}"
    );
}

#[tokio::test]
async fn proxy_credentials_in_the_url_become_proxy_authorization() {
    let (proxy, mut heads) = recording_server(OK).await;
    let transport = transport(ProxyEnv {
        all_proxy: Some(format!("http://user:p%40ss@{proxy}")),
        ..ProxyEnv::default()
    });
    transport
        .send(&HttpRequest::new(
            Method::Get,
            "http://example.invalid/x?a=1",
        ))
        .await
        .unwrap();
    let head = heads.recv().await.unwrap();
    assert_eq!(
        request_line(&head),
        "GET http://example.invalid/x?a=1 HTTP/1.1"
    );
    // base64("user:p@ss")
    assert!(
        head.contains("proxy-authorization: Basic dXNlcjpwQHNz\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn https_is_tunnelled_with_connect_through_the_https_proxy() {
    // The proxy refuses the tunnel, which ends the request before any TLS: what matters is
    // that the CONNECT (with the proxy's credentials) reached the HTTPS proxy, not the HTTP one.
    let (http_proxy, mut http_heads) = recording_server(OK).await;
    let (https_proxy, mut https_heads) =
        recording_server("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
    let transport = transport(ProxyEnv {
        http_proxy: Some(format!("http://{http_proxy}")),
        https_proxy: Some(format!("http://user:pass@{https_proxy}")),
        ..ProxyEnv::default()
    });
    let error = transport
        .send(&HttpRequest::new(Method::Get, "https://example.invalid/y"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::Connection { .. }),
        "{error}"
    );
    let head = https_heads.recv().await.unwrap();
    assert_eq!(request_line(&head), "CONNECT example.invalid:443 HTTP/1.1");
    // base64("user:pass")
    assert!(
        head.contains("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"),
        "{head}"
    );
    assert!(http_heads.try_recv().is_err(), "the HTTP proxy was used");
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let (proxy, mut proxy_heads) = recording_server(OK).await;
    let (origin, mut origin_heads) =
        recording_server("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndirect")
            .await;
    let transport = transport(ProxyEnv {
        http_proxy: Some(format!("http://{proxy}")),
        no_proxy: Some("internal.example, 127.0.0.1".to_owned()),
        ..ProxyEnv::default()
    });
    let response = transport
        .send(&HttpRequest::new(Method::Get, format!("http://{origin}/z")))
        .await
        .unwrap();
    assert_eq!(response.body.as_ref(), b"direct");
    let head = origin_heads.recv().await.unwrap();
    assert_eq!(request_line(&head), "GET /z HTTP/1.1");
    assert!(proxy_heads.try_recv().is_err(), "the proxy was used");
}

#[test]
fn no_proxy_matches_hosts_domain_suffixes_networks_and_star() {
    let proxies = ProxyEnv {
        http_proxy: Some("http://proxy.local:3128".to_owned()),
        https_proxy: Some("proxy.local:3129".to_owned()),
        no_proxy: Some("example.com, .corp.example, 10.0.0.0/8, ::1".to_owned()),
        ..ProxyEnv::default()
    };
    let via = |url: &str| proxies.proxy_for(url).map(|uri| uri.to_string());
    assert_eq!(
        via("http://api.other.com/v1").as_deref(),
        Some("http://proxy.local:3128/")
    );
    // A proxy without a scheme is an HTTP proxy, as in requests.
    assert_eq!(
        via("https://api.other.com/v1").as_deref(),
        Some("http://proxy.local:3129/")
    );
    assert_eq!(via("http://example.com/"), None);
    assert_eq!(via("https://api.example.com/"), None);
    assert_eq!(via("http://db.corp.example/"), None);
    assert_eq!(via("http://10.1.2.3:8080/"), None);
    assert_eq!(via("http://[::1]:8080/"), None);
    assert!(via("http://notexample.com/").is_some());
    assert!(via("http://11.1.2.3/").is_some());

    let everything_direct = ProxyEnv {
        no_proxy: Some("*".to_owned()),
        ..proxies.clone()
    };
    assert_eq!(everything_direct.proxy_for("https://api.other.com/"), None);
    assert_eq!(ProxyEnv::default().proxy_for("http://api.other.com/"), None);
}
