//! No secret leaks: every authenticator the manifest format has, on the happy path and on every
//! failure path, against a local server that echoes each request (secrets included) back in its
//! answers. A run's stdout (all but the config a CONTROL message must carry), stderr (with the
//! progress display) and recorded cassette must hold no secret, raw or encoded.
//!
//! Adding an authenticator is one entry of [`auth_cases`].

use crate::support::full_refresh_catalog;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The API's stream path; token and login endpoints live elsewhere on the same server.
const ITEMS: &str = "/items";

/// One authenticator to try: its manifest (`URL_BASE` stands for the server), its config, and
/// the endpoint it gets tokens from with what that answers. Every config string starting with
/// `SECRET` and every such string the token endpoint issues is a secret the test looks for.
struct AuthCase {
    name: &'static str,
    authenticator: Value,
    config: Value,
    /// The path the authenticator logs in or fetches tokens at, and its successful answer (the
    /// request is echoed into it under `echo`).
    token_endpoint: Option<(&'static str, Value)>,
    /// The stream requester's own `request_parameters`: a credential sent without an
    /// authenticator.
    request_parameters: Option<Value>,
}

fn auth_cases() -> Vec<AuthCase> {
    let client_credentials = json!({
        "type": "OAuthAuthenticator",
        "token_refresh_endpoint": "URL_BASE/oauth/token",
        "grant_type": "client_credentials",
        "client_id": "{{ config.client_id }}",
        "client_secret": "{{ config.client_secret }}",
    });
    let issued_access = json!({"access_token": "SECRET-access/2c8e+a", "expires_in": 3600});
    let login_requester = json!({
        "type": "HttpRequester",
        "url_base": "URL_BASE",
        "path": "/login",
        "http_method": "POST",
        "request_body_json": {"username": "{{ config.username }}", "password": "{{ config.password }}"},
    });
    let session_issued = json!({"data": {"token": "SECRET-session/8d3f+t"}});
    vec![
        AuthCase {
            name: "ApiKey in a header",
            authenticator: json!({
                "type": "ApiKeyAuthenticator",
                "api_token": "{{ config.api_key }}",
                "inject_into": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Key"},
            }),
            config: json!({"api_key": "SECRET-apikey/7f3a+k"}),
            token_endpoint: None,
            request_parameters: None,
        },
        AuthCase {
            name: "ApiKey in the query",
            authenticator: json!({
                "type": "ApiKeyAuthenticator",
                "api_token": "{{ config.api_key }}",
                "inject_into": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "k"},
            }),
            config: json!({"api_key": "SECRET-apikey/7f3a+q"}),
            token_endpoint: None,
            request_parameters: None,
        },
        AuthCase {
            name: "Bearer",
            authenticator: json!({"type": "BearerAuthenticator", "api_token": "{{ config.token }}"}),
            config: json!({"token": "SECRET-bearer/51c2+b"}),
            token_endpoint: None,
            request_parameters: None,
        },
        AuthCase {
            name: "BasicHttp",
            authenticator: json!({
                "type": "BasicHttpAuthenticator",
                "username": "{{ config.username }}",
                "password": "{{ config.password }}",
            }),
            config: json!({"username": "sam", "password": "SECRET-pass/93d0+w"}),
            token_endpoint: None,
            request_parameters: None,
        },
        AuthCase {
            name: "OAuth client credentials",
            authenticator: client_credentials,
            config: json!({"client_id": "sluice-client", "client_secret": "SECRET-client/0e4b+s"}),
            token_endpoint: Some(("/oauth/token", issued_access.clone())),
            request_parameters: None,
        },
        AuthCase {
            name: "OAuth refresh token",
            authenticator: json!({
                "type": "OAuthAuthenticator",
                "token_refresh_endpoint": "URL_BASE/oauth/token",
                "client_id": "{{ config.client_id }}",
                "client_secret": "{{ config.client_secret }}",
                "refresh_token": "{{ config.refresh_token }}",
            }),
            config: json!({
                "client_id": "sluice-client",
                "client_secret": "SECRET-client/0e4b+r",
                "refresh_token": "SECRET-refresh/6a7d+r",
            }),
            token_endpoint: Some(("/oauth/token", issued_access.clone())),
            request_parameters: None,
        },
        AuthCase {
            name: "OAuth refresh token rotation",
            authenticator: json!({
                "type": "OAuthAuthenticator",
                "token_refresh_endpoint": "URL_BASE/oauth/token",
                "client_id": "{{ config.credentials.client_id }}",
                "client_secret": "{{ config.credentials.client_secret }}",
                "refresh_token": "{{ config.credentials.refresh_token }}",
                "refresh_token_updater": {},
            }),
            config: json!({"credentials": {
                "client_id": "sluice-client",
                "client_secret": "SECRET-client/0e4b+x",
                "refresh_token": "SECRET-refresh/6a7d+x",
            }}),
            token_endpoint: Some((
                "/oauth/token",
                json!({
                    "access_token": "SECRET-access/2c8e+x",
                    "refresh_token": "SECRET-rotated/4f1b+n",
                    "expires_in": 3600,
                }),
            )),
            request_parameters: None,
        },
        AuthCase {
            name: "SessionToken as an API key",
            authenticator: json!({
                "type": "SessionTokenAuthenticator",
                "login_requester": login_requester.clone(),
                "session_token_path": ["data", "token"],
                "expiration_duration": "PT1H",
                "request_authentication": {
                    "type": "ApiKey",
                    "inject_into": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Session"},
                },
            }),
            config: json!({"username": "sam", "password": "SECRET-pass/93d0+s"}),
            token_endpoint: Some(("/login", session_issued.clone())),
            request_parameters: None,
        },
        AuthCase {
            name: "SessionToken as a bearer",
            authenticator: json!({
                "type": "SessionTokenAuthenticator",
                "login_requester": login_requester,
                "session_token_path": ["data", "token"],
                "request_authentication": {"type": "Bearer"},
            }),
            config: json!({"username": "sam", "password": "SECRET-pass/93d0+b"}),
            token_endpoint: Some(("/login", session_issued)),
            request_parameters: None,
        },
        AuthCase {
            name: "LegacySessionToken",
            authenticator: json!({
                "type": "LegacySessionTokenAuthenticator",
                "api_url": "URL_BASE",
                "header": "X-Session",
                "login_url": "/session",
                "session_token_response_key": "id",
                "username": "{{ config.username }}",
                "password": "{{ config.password }}",
                "validate_session_url": "/user/current",
            }),
            config: json!({"username": "sam", "password": "SECRET-pass/93d0+l"}),
            token_endpoint: Some(("/session", json!({"id": "SECRET-legacy/1a2b+l"}))),
            request_parameters: None,
        },
        AuthCase {
            name: "LegacySessionToken with a configured token",
            authenticator: json!({
                "type": "LegacySessionTokenAuthenticator",
                "api_url": "URL_BASE",
                "header": "X-Session",
                "login_url": "/session",
                "session_token": "{{ config.session_token }}",
                "session_token_response_key": "id",
                "username": "{{ config.username }}",
                "password": "{{ config.password }}",
                "validate_session_url": "/user/current",
            }),
            config: json!({
                "username": "sam",
                "password": "SECRET-pass/93d0+v",
                "session_token": "SECRET-configured/7c4d+v",
            }),
            token_endpoint: Some(("/user/current", json!({"ok": true}))),
            request_parameters: None,
        },
        AuthCase {
            name: "RateLimitedMultipleToken",
            authenticator: json!({
                "type": "RateLimitedMultipleTokenAuthenticator",
                "tokens": "{{ config.tokens }}",
                "quota_status_source": {"type": "QuotaStatusSource", "url": "URL_BASE/rate_limit"},
                "quotas": [{
                    "type": "TokenQuota",
                    "name": "core",
                    "remaining_path": ["core", "remaining"],
                    "reset_path": ["core", "reset"],
                }],
                "max_wait_time": "PT1S",
            }),
            config: json!({"tokens": "SECRET-first/3e9a+m,SECRET-second/8b2f+m"}),
            token_endpoint: Some((
                "/rate_limit",
                json!({"core": {"remaining": 100, "reset": in_an_hour()}}),
            )),
            request_parameters: None,
        },
        AuthCase {
            name: "NoAuth with the key in the request parameters",
            authenticator: json!({"type": "NoAuth"}),
            config: json!({"api_key": "SECRET-param/2d5e+p"}),
            token_endpoint: None,
            request_parameters: Some(json!({"api_key": "{{ config.api_key }}"})),
        },
        AuthCase {
            name: "Jwt",
            authenticator: json!({
                "type": "JwtAuthenticator",
                "secret_key": "{{ config.secret_key }}",
                "algorithm": "HS256",
                "token_duration": 600,
                "jwt_payload": {"iss": "sluice"},
            }),
            config: json!({"secret_key": "SECRET-jwtkey/5b6c+j"}),
            token_endpoint: None,
            request_parameters: None,
        },
        AuthCase {
            name: "Selective",
            authenticator: json!({
                "type": "SelectiveAuthenticator",
                "authenticator_selection_path": ["auth", "kind"],
                "authenticators": {
                    "key": {
                        "type": "ApiKeyAuthenticator",
                        "api_token": "{{ config.auth.api_key }}",
                        "inject_into": {"type": "RequestOption", "inject_into": "header", "field_name": "X-Key"},
                    },
                    "oauth": {
                        "type": "OAuthAuthenticator",
                        "token_refresh_endpoint": "URL_BASE/oauth/token",
                        "grant_type": "client_credentials",
                        "client_id": "{{ config.auth.client_id }}",
                        "client_secret": "{{ config.auth.client_secret }}",
                    },
                },
            }),
            config: json!({"auth": {
                "kind": "oauth",
                "client_id": "sluice-client",
                "client_secret": "SECRET-client/0e4b+e",
            }}),
            token_endpoint: Some(("/oauth/token", issued_access)),
            request_parameters: None,
        },
    ]
}

/// Seconds since the epoch an hour from now, as quota endpoints give resets.
fn in_an_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
        + 3600
}

/// What goes wrong in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Nothing: records are read (the API still echoes the request outside the records).
    Success,
    /// The API answers this status, echoing the request in the body.
    ApiStatus(u16),
    /// The token or login endpoint answers this status, echoing the request (a 5xx once, then
    /// a 4xx, so its retries take a moment).
    TokenStatus(u16),
    /// The API answers after the request timeout.
    Timeout,
    /// The API answers 200 with a body that is not JSON, echoing the request.
    BadBody,
}

/// Answers with the request it got, as JSON under `echo` of `answer`.
struct Echo {
    status: u16,
    answer: Value,
    /// Answers the echo as text that is not JSON.
    garbled: bool,
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let headers: serde_json::Map<String, Value> = request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
                )
            })
            .collect();
        let echo = json!({
            "url": request.url.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
        });
        if self.garbled {
            return ResponseTemplate::new(self.status)
                .insert_header("Content-Type", "application/json")
                .set_body_string(format!("<html>not json: {echo}"));
        }
        let mut answer = self.answer.clone();
        answer["echo"] = echo;
        ResponseTemplate::new(self.status).set_body_json(answer)
    }
}

fn echo(status: u16, answer: Value) -> Echo {
    Echo {
        status,
        answer,
        garbled: false,
    }
}

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
streams:
  - type: DeclarativeStream
    name: items
    primary_key: [id]
    schema_loader: {type: InlineSchemaLoader, schema: {type: object}}
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "URL_BASE"
        path: /items
        http_method: GET
        authenticator: AUTHENTICATOR
        request_parameters: PARAMETERS
        error_handler:
          type: DefaultErrorHandler
          max_retries: 1
          backoff_strategies: [{type: ConstantBackoffStrategy, backoff_time_in_seconds: 0.01}]
      record_selector:
        type: RecordSelector
        extractor: {type: DpathExtractor, field_path: [data]}
spec:
  type: Spec
  connection_specification: {type: object, properties: {}}
"##;

/// What one run left behind, and the secrets to look for in it.
struct Run {
    read: Printed,
    /// `check` with the same files, after the read.
    check: Printed,
    secrets: Vec<String>,
}

/// What one command printed and recorded.
struct Printed {
    stdout: String,
    stderr: String,
    cassette: Option<String>,
}

impl Printed {
    fn of(output: &std::process::Output, cassette: &Path) -> Self {
        Self {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            cassette: std::fs::read_to_string(cassette).ok(),
        }
    }
}

/// Runs `sluice` with `args` and DEBUG logs on (they say the most), off the async runtime.
async fn sluice(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .env("SLUICE_DEBUG", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn run(case: &AuthCase, scenario: Scenario) -> Run {
    let server = MockServer::start().await;
    let items = match scenario {
        Scenario::ApiStatus(status) => echo(status, json!({"error": "no"})),
        Scenario::BadBody => Echo {
            status: 200,
            answer: Value::Null,
            garbled: true,
        },
        _ => echo(200, json!({"data": [{"id": 1}, {"id": 2}]})),
    };
    let delay = if scenario == Scenario::Timeout {
        Duration::from_secs(3)
    } else {
        Duration::ZERO
    };
    Mock::given(method("GET"))
        .and(path(ITEMS))
        .respond_with(DelayedEcho(items, delay))
        .mount(&server)
        .await;
    if let Some((token_path, issued)) = &case.token_endpoint {
        if let Scenario::TokenStatus(status) = scenario {
            if status >= 500 {
                // Once, so the retries after it end (on the 4xx) in a second or five.
                Mock::given(path(*token_path))
                    .respond_with(echo(status, json!({"error": "down"})))
                    .up_to_n_times(1)
                    .with_priority(1)
                    .mount(&server)
                    .await;
            }
            Mock::given(path(*token_path))
                .respond_with(echo(
                    if status >= 500 { 400 } else { status },
                    json!({"error": "invalid_grant"}),
                ))
                .mount(&server)
                .await;
        } else {
            Mock::given(path(*token_path))
                .respond_with(echo(200, issued.clone()))
                .mount(&server)
                .await;
        }
    }
    // The legacy session token authenticator checks its session here.
    Mock::given(path("/user/current"))
        .respond_with(echo(200, json!({"ok": true})))
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let authenticator = case
        .authenticator
        .to_string()
        .replace("URL_BASE", &server.uri());
    let manifest = MANIFEST
        .replace("AUTHENTICATOR", &authenticator)
        .replace(
            "PARAMETERS",
            &case
                .request_parameters
                .clone()
                .unwrap_or_else(|| json!({}))
                .to_string(),
        )
        .replace("URL_BASE", &server.uri());
    let manifest_path = dir.path().join("manifest.yaml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, case.config.to_string()).unwrap();
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, full_refresh_catalog(&["items"])).unwrap();
    let cassette_path = dir.path().join("cassette.json");
    let check_cassette = dir.path().join("check-cassette.json");
    let text = |path: &Path| path.to_str().unwrap().to_owned();
    let args = |command: &str, cassette: &Path| {
        vec![
            command.to_owned(),
            "--manifest".to_owned(),
            text(&manifest_path),
            "--config".to_owned(),
            text(&config_path),
            "--record-cassette".to_owned(),
            text(cassette),
            "--request-timeout".to_owned(),
            "0.5".to_owned(),
        ]
    };
    let mut read_args = args("read", &cassette_path);
    read_args.extend([
        "--catalog".to_owned(),
        text(&catalog_path),
        "--progress".to_owned(),
        "always".to_owned(),
    ]);
    let read = sluice(read_args).await;
    let check = sluice(args("check", &check_cassette)).await;

    let mut secrets = Vec::new();
    collect_secrets(&case.config, &mut secrets);
    if let Some((_, issued)) = &case.token_endpoint {
        collect_secrets(issued, &mut secrets);
    }
    // A `user:password` pair is sent base64-encoded by Basic auth.
    if let (Some(user), Some(password)) = (
        find_string(&case.config, "username"),
        find_string(&case.config, "password"),
    ) {
        secrets.push(format!("{user}:{password}"));
    }
    // Credentials made while running (a signed JWT) are whatever the API was sent.
    for request in server.received_requests().await.unwrap_or_default() {
        if let Some(value) = request.headers.get("authorization") {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            secrets.extend(value.split_whitespace().last().map(str::to_owned));
        }
    }
    secrets.sort();
    secrets.dedup();
    Run {
        read: Printed::of(&read, &cassette_path),
        check: Printed::of(&check, &check_cassette),
        secrets,
    }
}

/// An [`Echo`] answered after a delay (none but for [`Scenario::Timeout`]).
struct DelayedEcho(Echo, Duration);

impl Respond for DelayedEcho {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request).set_delay(self.1)
    }
}

fn collect_secrets(value: &Value, out: &mut Vec<String>) {
    match value {
        // A list of tokens in one string is each of them, and the whole.
        Value::String(text) if text.starts_with("SECRET") => {
            out.push(text.clone());
            out.extend(text.split(',').map(str::to_owned));
        }
        Value::Array(items) => items.iter().for_each(|item| collect_secrets(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_secrets(item, out)),
        _ => {}
    }
}

fn find_string<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|v| find_string(v, key))),
        _ => None,
    }
}

/// Every way `secret` may be written: raw, base64 (standard and URL-safe; without padding, which
/// the padded forms contain) and URL-encoded (percent-encoding in either case, and forms' `+`).
fn written_forms(secret: &str) -> Vec<(String, &'static str)> {
    let mut upper = String::new();
    let mut lower = String::new();
    for byte in secret.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            upper.push(char::from(byte));
            lower.push(char::from(byte));
        } else {
            upper.push_str(&format!("%{byte:02X}"));
            lower.push_str(&format!("%{byte:02x}"));
        }
    }
    let form = upper.replace("%20", "+");
    vec![
        (secret.to_owned(), "raw"),
        (STANDARD_NO_PAD.encode(secret), "base64"),
        (URL_SAFE_NO_PAD.encode(secret), "URL-safe base64"),
        (upper, "URL-encoded"),
        (lower, "URL-encoded (lower-case hex)"),
        (form, "form-encoded"),
    ]
}

/// Where each secret shows, named by place and form, with a snippet around it in which the
/// secret itself is masked.
fn leaks(place: &str, text: &str, secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (index, secret) in secrets.iter().enumerate() {
        for (form, how) in written_forms(secret) {
            if let Some(at) = text.find(&form) {
                let mut start = at.saturating_sub(60);
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (at + form.len() + 60).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                let snippet = text[start..end].replace(&form, &format!("<secret {index} {how}>"));
                let snippet = mask_all(&snippet, secrets).replace('\n', " ");
                found.push(format!(
                    "{place}: secret {index} ({}...) {how}: ...{snippet}...",
                    &secret[..10.min(secret.len())]
                ));
            }
        }
    }
    found
}

/// Stdout without the config a CONTROL message carries (the one place a rotated token must go).
fn stdout_leaks(stdout: &str, secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in stdout.lines().enumerate() {
        let mut message: Value = match serde_json::from_str(line) {
            Ok(message) => message,
            Err(_) => {
                found.extend(leaks(
                    &format!("stdout line {} (not JSON)", number + 1),
                    line,
                    secrets,
                ));
                continue;
            }
        };
        let kind = message["type"].as_str().unwrap_or("?").to_owned();
        let text = if kind == "CONTROL" {
            if let Some(control) = message["control"]["connectorConfig"].as_object_mut() {
                control.remove("config");
            }
            message.to_string()
        } else {
            line.to_owned()
        };
        found.extend(leaks(
            &format!("stdout line {} ({kind})", number + 1),
            &text,
            secrets,
        ));
    }
    found
}

/// Runs every authenticator (those `applies` to) through `scenario` at once and fails naming
/// every leak; `check` asserts each run went the way the scenario means, so a run that fails
/// early for another reason cannot pass by printing nothing.
async fn assert_no_leaks(
    scenario: Scenario,
    applies: fn(&AuthCase) -> bool,
    check: fn(&Printed) -> bool,
) {
    // All at once: the runs spend their time waiting for a child process.
    let runs: Vec<_> = auth_cases()
        .into_iter()
        .filter(applies)
        .map(|case| tokio::spawn(async move { (case.name, run(&case, scenario).await) }))
        .collect();
    let mut problems = Vec::new();
    for handle in runs {
        let (name, run) = handle.await.unwrap();
        let mut found = Vec::new();
        for (command, printed) in [("read", &run.read), ("check", &run.check)] {
            found.extend(
                stdout_leaks(&printed.stdout, &run.secrets)
                    .into_iter()
                    .map(|leak| format!("{command} {leak}")),
            );
            let stderr = match command {
                "read" => "read stderr (progress display)",
                _ => "check stderr",
            };
            found.extend(leaks(stderr, &printed.stderr, &run.secrets));
            match &printed.cassette {
                Some(cassette) => {
                    found.extend(leaks(
                        &format!("{command} cassette"),
                        cassette,
                        &run.secrets,
                    ));
                }
                None => found.push(format!("{command} recorded no cassette")),
            }
        }
        // A check reads one page only, which a body that is not JSON leaves empty, not failed.
        let status = match scenario {
            Scenario::Success => "\"status\":\"SUCCEEDED\"",
            Scenario::BadBody => "\"type\":\"CONNECTION_STATUS\"",
            _ => "\"status\":\"FAILED\"",
        };
        if !check(&run.read) || !run.check.stdout.contains(status) {
            found.push(format!(
                "the run did not go as {scenario:?} means:\nread stdout: {}\nread stderr: {}\ncheck stdout: {}",
                mask_all(&run.read.stdout, &run.secrets),
                mask_all(&run.read.stderr, &run.secrets),
                mask_all(&run.check.stdout, &run.secrets),
            ));
        }
        problems.extend(
            found
                .into_iter()
                .map(|f| format!("[{name}, {scenario:?}] {f}")),
        );
    }
    assert!(
        problems.is_empty(),
        "secrets leaked:\n{}",
        problems.join("\n")
    );
}

fn mask_all(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        for (form, _) in written_forms(secret) {
            text = text.replace(&form, "<secret>");
        }
    }
    text
}

fn every_case(_: &AuthCase) -> bool {
    true
}

fn with_token_endpoint(case: &AuthCase) -> bool {
    case.token_endpoint.is_some()
}

fn records_read(run: &Printed) -> bool {
    run.stdout.matches("\"type\":\"RECORD\"").count() == 2
}

fn failed(run: &Printed) -> bool {
    run.stdout.contains("\"type\":\"TRACE\"") && !run.stdout.contains("\"type\":\"RECORD\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_everything_works() {
    assert_no_leaks(Scenario::Success, every_case, records_read).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_api_answers_401() {
    assert_no_leaks(Scenario::ApiStatus(401), every_case, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_api_answers_403() {
    assert_no_leaks(Scenario::ApiStatus(403), every_case, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_api_answers_500() {
    assert_no_leaks(Scenario::ApiStatus(500), every_case, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_token_endpoint_answers_401() {
    assert_no_leaks(Scenario::TokenStatus(401), with_token_endpoint, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_token_endpoint_answers_500() {
    assert_no_leaks(Scenario::TokenStatus(500), with_token_endpoint, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_api_times_out() {
    assert_no_leaks(Scenario::Timeout, every_case, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_when_the_api_sends_a_bad_body() {
    assert_no_leaks(Scenario::BadBody, every_case, failed).await;
}

#[test]
fn written_forms_differ_from_the_raw_secret() {
    let forms = written_forms("SECRET-pass/93d0+w");
    assert_eq!(forms[3].0, "SECRET-pass%2F93d0%2Bw");
    assert_eq!(forms[1].0, "U0VDUkVULXBhc3MvOTNkMCt3");
    let found = leaks(
        "here",
        "Basic c2FtOlNFQ1JFVC1wYXNzLzkzZDArdw==",
        &["sam:SECRET-pass/93d0+w".to_owned()],
    );
    assert!(
        found[0].starts_with("here: secret 0 (sam:SECRET...) base64: ...Basic <secret 0 base64>=="),
        "{found:?}"
    );
}
