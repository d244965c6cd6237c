//! `RateLimitedMultipleTokenAuthenticator`: several interchangeable tokens, each with its own
//! call quota, as the reference's authenticator of that name runs them.
//!
//! - Each request is put in a quota pool (`TokenQuota`): the first pool one of whose matchers
//!   matches it, else the first pool without matchers, else the first pool (with a warning).
//! - Before the first request every token's pools are seeded from the `quota_status_source`
//!   endpoint, called once per token with that token. A status listed in
//!   `unavailable_status_codes` makes all of that token's pools untracked.
//! - A request is charged to the active token's pool; when that pool is spent the next token
//!   (round robin) becomes active. An untracked pool is never charged: its token signs the
//!   request and the next token becomes active.
//! - When every token's pool is spent, the request waits for the earliest reset (at least five
//!   seconds, at most what is left of `max_wait_time` over the whole episode), then every token
//!   is seeded again. A reset further away than that fails the request (`transient_error`).
//! - When every token's pool is at or below its reserve (`max(budget_min_reserve,
//!   budget_reserve_fraction * limit)`), each request waits `seconds to reset / calls left`
//!   (at most ten seconds) so the last calls spread over the window.
//! - A pool with `remaining_header` / `reset_header` / `limit_header` / `exhaustion_status_codes`
//!   is reconciled with each response ([`RateLimited::update_from_response`]), and a rate-limited
//!   response whose token is spent while another has calls left is retried at once with the
//!   other token ([`RateLimited::has_alternative_token`]).
//!
//! One instance serves every stream whose authenticator resolves to the same definition (the
//! registry in [`super::AuthContext`]), so parents and children draw from the same counters.
//! Waits go through the transport's `wait`; the authenticator's clock moves on by the part of a
//! wait a replaying transport skipped, so resets are reached without the time passing.

use super::build::{BuildRenderer, error};
use super::support::{self, body_excerpt, parse_datetime};
use super::{AuthBuildError, AuthContext, Secrets};
use crate::rate_limit::{RequestMatcher, parse_iso_duration};
use crate::{HttpError, HttpRequest, HttpResponse, Method, Transport, TransportError};
use serde_json::Value;
use sluice_manifest::{ManifestPath, model};
use sluice_protocol::FailureType;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;

/// Progress is logged this often during an exhaustion wait.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// The longest proactive throttling wait before one request, in seconds.
const MAX_BUDGET_DELAY: f64 = 10.0;
/// The shortest exhaustion wait, in seconds, so a stale reset cannot make a busy loop of seeding.
const MIN_EXHAUSTION_WAIT: f64 = 5.0;
/// How far a response's reset may trail the one held and still count as the same window.
const RESET_SKEW_TOLERANCE: time::Duration = time::Duration::seconds(60);

/// One `TokenQuota`.
#[derive(Debug)]
struct Quota {
    name: String,
    /// The index of the state this pool uses: pools of the same name share one, as the
    /// reference keys its states by name.
    slot: usize,
    remaining_path: Vec<String>,
    reset_path: Vec<String>,
    limit_path: Option<Vec<String>>,
    matchers: Vec<RequestMatcher>,
    remaining_header: Option<String>,
    reset_header: Option<String>,
    limit_header: Option<String>,
    exhaustion_status_codes: Vec<u16>,
}

impl Quota {
    fn is_response_aware(&self) -> bool {
        self.remaining_header
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            || self.reset_header.as_deref().is_some_and(|h| !h.is_empty())
            || self.limit_header.as_deref().is_some_and(|h| !h.is_empty())
            || !self.exhaustion_status_codes.is_empty()
    }
}

/// A pool's counters for one token.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PoolState {
    remaining: i64,
    reset_at: OffsetDateTime,
    limit: i64,
    /// `false` when the quota endpoint answered one of `unavailable_status_codes`: there are no
    /// numbers to act on (`remaining` stays 0 and is never charged).
    tracked: bool,
}

#[derive(Debug, Default)]
struct State {
    /// `pools[token slot][quota slot]`; empty until seeded.
    pools: Vec<Vec<PoolState>>,
    /// The index in `tokens` of the active token.
    active: usize,
    budget_logged: bool,
    unmatched_logged: bool,
    untracked_logged: bool,
}

/// The authenticator's clock: the wall clock and a monotonic one, both moved on by the part of
/// each wait the transport did not really spend (a replay does not sleep). Built on tokio's
/// clock, so a test with paused time moves it too.
#[derive(Debug)]
struct Clock {
    wall_start: OffsetDateTime,
    start: tokio::time::Instant,
    skipped: Mutex<Duration>,
}

impl Clock {
    fn new() -> Self {
        Self {
            wall_start: support::now_utc(),
            start: tokio::time::Instant::now(),
            skipped: Mutex::new(Duration::ZERO),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed() + *self.skipped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> OffsetDateTime {
        self.wall_start + self.elapsed()
    }

    async fn sleep(&self, transport: &dyn Transport, duration: Duration) {
        let before = tokio::time::Instant::now();
        transport.wait(duration).await;
        let spent = before.elapsed();
        if spent < duration {
            *self.skipped.lock().unwrap_or_else(PoisonError::into_inner) += duration - spent;
        }
    }
}

/// The runtime `RateLimitedMultipleTokenAuthenticator`, shared by every stream that uses the
/// same definition.
#[derive(Debug)]
pub(crate) struct RateLimited {
    /// The tokens in rotation order (a token listed twice is used twice).
    tokens: Vec<String>,
    /// For each of `tokens`, the index of its state (a token listed twice has one).
    token_slots: Vec<usize>,
    slot_count: usize,
    quotas: Vec<Quota>,
    quota_slot_count: usize,
    status_url: String,
    status_method: Method,
    status_headers: Vec<(String, String)>,
    unavailable: BTreeSet<u16>,
    auth_method: String,
    header: String,
    max_wait: Duration,
    reserve_fraction: f64,
    min_reserve: i64,
    transport: Arc<dyn Transport>,
    secrets: Secrets,
    state: Mutex<State>,
    initialized: AtomicBool,
    /// Held while the tokens are seeded, so concurrent requests seed once.
    refresh: tokio::sync::Mutex<()>,
    clock: Clock,
}

/// What one pass of [`RateLimited::acquire`] decided.
enum Step {
    Use { token: usize, delay: Option<f64> },
    Wait(f64),
}

impl RateLimited {
    /// Builds the authenticator, or returns the one already built for the same resolved
    /// definition in this source (the reference's `rate_limited_authenticators` registry).
    pub(crate) fn from_model(
        m: &model::RateLimitedMultipleTokenAuthenticator,
        context: &AuthContext,
        secrets: &Secrets,
        path: &ManifestPath,
    ) -> Result<(String, Self), AuthBuildError> {
        // As the reference: these templates see the config only, not `$parameters`.
        let renderer = BuildRenderer {
            config: &context.config,
            parameters: Value::Object(serde_json::Map::new()),
        };
        let tokens: Vec<String> = match &m.tokens {
            model::StringOrList::String(text) => {
                let rendered = renderer.text(text, &path.key("tokens"))?;
                let delimiter = m
                    .token_delimiter
                    .as_deref()
                    .filter(|d| !d.is_empty())
                    .unwrap_or(",");
                rendered
                    .split(delimiter)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            model::StringOrList::List(list) => list
                .iter()
                .enumerate()
                .map(|(i, t)| renderer.text(t, &path.key("tokens").index(i)))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        };
        for token in &tokens {
            secrets.add(token);
        }
        if tokens.is_empty() {
            return Err(error(
                &path.key("tokens"),
                "Authentication tokens are missing from the configuration.",
            ));
        }
        if m.quotas.is_empty() {
            return Err(error(
                &path.key("quotas"),
                "Quota pool configuration is missing.",
            ));
        }

        let source = &m.quota_status_source;
        let source_path = path.key("quota_status_source");
        let status_url = renderer.text(&source.url, &source_path.key("url"))?;
        let status_method = match source.http_method {
            Some(model::HttpMethod::Post) => Method::Post,
            _ => Method::Get,
        };
        let status_headers = source
            .request_headers
            .iter()
            .flatten()
            .map(|(name, value)| {
                Ok((
                    name.clone(),
                    renderer.text(value, &source_path.key("request_headers").key(name))?,
                ))
            })
            .collect::<Result<Vec<_>, AuthBuildError>>()?;
        let unavailable = status_codes(
            source.unavailable_status_codes.as_deref(),
            &source_path.key("unavailable_status_codes"),
        )?;
        let auth_method = m.auth_method.clone().unwrap_or_else(|| "Bearer".to_owned());
        let header = m
            .header
            .clone()
            .unwrap_or_else(|| "Authorization".to_owned());
        let max_wait_text = renderer.text(
            m.max_wait_time.as_deref().unwrap_or("PT2H"),
            &path.key("max_wait_time"),
        )?;
        let max_wait = parse_iso_duration(&max_wait_text).map_err(|e| {
            error(
                &path.key("max_wait_time"),
                format!(
                    "max_wait_time must be a fixed-length ISO 8601 duration (e.g. 'PT2H'); calendar-unit durations like '{max_wait_text}' are not supported ({e})"
                ),
            )
        })?;
        let reserve_fraction = m.budget_reserve_fraction.unwrap_or(0.1);
        let min_reserve = m.budget_min_reserve.unwrap_or(50);

        let mut quota_names: Vec<&str> = Vec::new();
        let mut quotas = Vec::with_capacity(m.quotas.len());
        let mut specs = Vec::with_capacity(m.quotas.len());
        for (i, q) in m.quotas.iter().enumerate() {
            let quota_path = path.key("quotas").index(i);
            let slot = match quota_names.iter().position(|n| *n == q.name) {
                Some(slot) => slot,
                None => {
                    quota_names.push(&q.name);
                    quota_names.len() - 1
                }
            };
            let matchers = q
                .matchers
                .iter()
                .flatten()
                .enumerate()
                .map(|(j, matcher)| {
                    RequestMatcher::from_model(
                        matcher,
                        &context.config,
                        &quota_path.key("matchers").index(j),
                    )
                    .map_err(|e| AuthBuildError {
                        path: e.path.clone(),
                        message: e.message.clone(),
                        rendering: false,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let exhaustion_status_codes: Vec<u16> = status_codes(
                q.exhaustion_status_codes.as_deref(),
                &quota_path.key("exhaustion_status_codes"),
            )?
            .into_iter()
            .collect();
            specs.push(serde_json::json!({
                "name": q.name,
                "remaining_path": q.remaining_path,
                "reset_path": q.reset_path,
                "limit_path": q.limit_path,
                "remaining_header": q.remaining_header,
                "reset_header": q.reset_header,
                "limit_header": q.limit_header,
                "exhaustion_status_codes": q.exhaustion_status_codes.clone().unwrap_or_default(),
                "matchers": q.matchers.iter().flatten().map(|matcher| serde_json::json!({
                    "method": matcher.method,
                    "url_base": matcher.url_base,
                    "url_path_pattern": matcher.url_path_pattern,
                    "params": matcher.params,
                    "headers": matcher.headers,
                    "weight": serde_json::to_value(&matcher.weight).unwrap_or(Value::Null),
                })).collect::<Vec<_>>(),
            }));
            quotas.push(Quota {
                name: q.name.clone(),
                slot,
                remaining_path: q.remaining_path.clone(),
                reset_path: q.reset_path.clone(),
                limit_path: q.limit_path.clone(),
                matchers,
                remaining_header: q.remaining_header.clone(),
                reset_header: q.reset_header.clone(),
                limit_header: q.limit_header.clone(),
                exhaustion_status_codes,
            });
        }
        let quota_slot_count = quota_names.len();

        // The registry key: the resolved definition, so `$parameters` propagated onto the
        // model from different streams do not split the counters.
        let key = serde_json::json!({
            "tokens": tokens,
            "quotas": specs,
            "quota_status_url": status_url,
            "quota_status_http_method": status_method.as_str(),
            "quota_status_headers": status_headers,
            "quota_status_unavailable_status_codes": unavailable,
            "auth_method": auth_method,
            "header": header,
            "max_wait_time": max_wait.as_secs_f64(),
            "budget_reserve_fraction": reserve_fraction,
            "budget_min_reserve": min_reserve,
        })
        .to_string();

        let mut unique: Vec<&str> = Vec::new();
        let token_slots = tokens
            .iter()
            .map(|t| match unique.iter().position(|u| *u == t) {
                Some(slot) => slot,
                None => {
                    unique.push(t);
                    unique.len() - 1
                }
            })
            .collect();
        let slot_count = unique.len();
        Ok((
            key,
            Self {
                tokens,
                token_slots,
                slot_count,
                quotas,
                quota_slot_count,
                status_url,
                status_method,
                status_headers,
                unavailable,
                auth_method,
                header,
                max_wait,
                reserve_fraction,
                min_reserve,
                transport: Arc::clone(&context.transport),
                secrets: secrets.clone(),
                state: Mutex::new(State::default()),
                initialized: AtomicBool::new(false),
                refresh: tokio::sync::Mutex::new(()),
                clock: Clock::new(),
            },
        ))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mask(&self, text: &str) -> String {
        self.secrets.mask(text)
    }

    /// The header value for `token`, as the authenticator sends it on data requests.
    fn header_value(&self, token: &str) -> String {
        format!("{} {token}", self.auth_method).trim().to_owned()
    }

    /// Charges one call of `request`'s pool to a token (waiting when the quotas say so) and
    /// sets that token's header on `request`. `mask` masks the config's secrets in logs.
    pub(crate) async fn sign(
        &self,
        request: &mut HttpRequest,
        mask: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), HttpError> {
        self.ensure_initialized().await?;
        let quota = self.match_quota(request, mask);
        let token = self.acquire(quota).await?;
        let value = self.header_value(&self.tokens[token]);
        request.set_header(&self.header, value);
        Ok(())
    }

    async fn ensure_initialized(&self) -> Result<(), HttpError> {
        if self.initialized.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.refresh.lock().await;
        if !self.initialized.load(Ordering::Acquire) {
            self.seed_all().await?;
            self.initialized.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The pool of `request`: the first whose matchers match it, else the first without
    /// matchers, else the first (warning once).
    fn match_quota(&self, request: &HttpRequest, mask: &(dyn Fn(&str) -> String + Sync)) -> &Quota {
        let mut default = None;
        for quota in &self.quotas {
            if quota.matchers.is_empty() {
                default = default.or(Some(quota));
            } else if quota.matchers.iter().any(|m| m.matches(request)) {
                return quota;
            }
        }
        if let Some(quota) = default {
            return quota;
        }
        let mut state = self.lock();
        if !state.unmatched_logged {
            state.unmatched_logged = true;
            tracing::warn!(
                "Request {} did not match any quota pool; falling back to '{}'. Consider defining a matcher-less default pool.",
                self.mask(&mask(&request.url)),
                self.quotas[0].name
            );
        }
        &self.quotas[0]
    }

    fn pool<'s>(&self, state: &'s State, token: usize, quota: &Quota) -> &'s PoolState {
        &state.pools[self.token_slots[token]][quota.slot]
    }

    /// Reserves one call of `quota` and returns the index of the token it was charged to.
    async fn acquire(&self, quota: &Quota) -> Result<usize, HttpError> {
        // `max_wait_time` bounds all the waits of one exhaustion episode together.
        let mut deadline: Option<Duration> = None;
        loop {
            let step = {
                let mut state = self.lock();
                let token = state.active;
                let slot = self.token_slots[token];
                let pool = state.pools[slot][quota.slot];
                if !pool.tracked {
                    // Nothing to count; spread the calls over the tokens.
                    state.active = (state.active + 1) % self.tokens.len();
                    return Ok(token);
                }
                if pool.remaining > 0 {
                    state.pools[slot][quota.slot].remaining -= 1;
                    Step::Use {
                        token,
                        delay: self.budget_delay(&state, quota),
                    }
                } else if (0..self.tokens.len()).all(|t| {
                    let p = self.pool(&state, t, quota);
                    p.remaining <= 0 && p.tracked
                }) {
                    let now = self.clock.elapsed();
                    let end = *deadline.get_or_insert(now + self.max_wait);
                    let left = end.saturating_sub(now).as_secs_f64();
                    let wall = self.clock.now();
                    let soonest = (0..self.tokens.len())
                        .map(|t| (self.pool(&state, t, quota).reset_at - wall).as_seconds_f64())
                        .fold(f64::INFINITY, f64::min);
                    if left <= 0.0 || soonest >= left {
                        return Err(HttpError::with_internal(
                            FailureType::TransientError,
                            "Rate limit is exceeded for all provided tokens.",
                            format!(
                                "Rate limits for all tokens (quota: {}) were reached and the next reset exceeds max_wait_time",
                                quota.name
                            ),
                        ));
                    }
                    Step::Wait(soonest.max(MIN_EXHAUSTION_WAIT).min(left))
                } else {
                    state.active = (state.active + 1) % self.tokens.len();
                    continue;
                }
            };
            match step {
                Step::Wait(seconds) => {
                    tracing::info!(
                        "All tokens exhausted (quota: {}). Waiting {seconds:.0}s until rate limit resets.",
                        quota.name
                    );
                    self.sleep_with_heartbeat(seconds, &quota.name).await;
                    self.refresh_after_exhaustion(quota).await?;
                }
                Step::Use { token, delay } => {
                    if let Some(delay) = delay.filter(|d| *d >= 0.1) {
                        let log = {
                            let mut state = self.lock();
                            !std::mem::replace(&mut state.budget_logged, true)
                        };
                        if log {
                            tracing::info!(
                                "API budget: throttling requests ({delay:.1}s delay) for quota '{}'.",
                                quota.name
                            );
                        }
                        self.clock
                            .sleep(&*self.transport, Duration::from_secs_f64(delay))
                            .await;
                    }
                    return Ok(token);
                }
            }
        }
    }

    /// The proactive throttling wait before a call of `quota`, once every token is within its
    /// reserve.
    fn budget_delay(&self, state: &State, quota: &Quota) -> Option<f64> {
        let pools: Vec<&PoolState> = (0..self.tokens.len())
            .map(|t| self.pool(state, t, quota))
            .collect();
        if pools.iter().any(|p| !p.tracked) {
            return None;
        }
        let reserve =
            |p: &PoolState| (self.min_reserve as f64).max(p.limit as f64 * self.reserve_fraction);
        if !pools.iter().all(|p| p.remaining as f64 <= reserve(p)) {
            return None;
        }
        let active = self.pool(state, state.active, quota);
        let to_reset = (active.reset_at - self.clock.now())
            .as_seconds_f64()
            .max(0.0);
        let left: i64 = pools.iter().map(|p| p.remaining.max(0)).sum();
        if left <= 0 || to_reset <= 0.0 {
            return None;
        }
        Some((to_reset / left as f64).min(MAX_BUDGET_DELAY))
    }

    async fn sleep_with_heartbeat(&self, seconds: f64, quota: &str) {
        let mut left = seconds;
        while left > 0.0 {
            let chunk = left.min(HEARTBEAT.as_secs_f64());
            self.clock
                .sleep(&*self.transport, Duration::from_secs_f64(chunk))
                .await;
            left -= chunk;
            if left > 0.0 {
                tracing::info!(
                    "Rate limit exhausted (quota: {quota}). Waiting for reset — {left:.0}s remaining."
                );
            }
        }
    }

    /// Seeds every token again after an exhaustion wait, unless a concurrent request already
    /// did.
    async fn refresh_after_exhaustion(&self, quota: &Quota) -> Result<(), HttpError> {
        let _guard = self.refresh.lock().await;
        let still_exhausted = {
            let state = self.lock();
            (0..self.tokens.len()).all(|t| {
                let p = self.pool(&state, t, quota);
                p.remaining <= 0 && p.tracked
            })
        };
        if still_exhausted {
            self.seed_all().await?;
        }
        Ok(())
    }

    /// Fetches every token's quotas and replaces all counters with them.
    async fn seed_all(&self) -> Result<(), HttpError> {
        let mut pools = vec![Vec::new(); self.slot_count];
        for (token, slot) in self.token_slots.iter().enumerate() {
            pools[*slot] = self.fetch(token).await?;
        }
        let untracked = pools
            .iter()
            .filter(|p| p.iter().any(|s| !s.tracked))
            .count();
        let log = {
            let mut state = self.lock();
            state.pools = pools;
            state.budget_logged = false;
            let log = untracked > 0 && !state.untracked_logged;
            state.untracked_logged |= log;
            log
        };
        if log {
            if untracked == self.tokens.len() {
                tracing::info!(
                    "Quota status endpoint reports that rate limiting is unavailable. Token quotas are untracked: the connector will not wait for quota resets, throttle proactively, or rotate tokens on exhaustion. Responses that report a rate limit are still handled by the stream's error handler."
                );
            } else {
                tracing::info!(
                    "Quota status endpoint reports that rate limiting is unavailable for {untracked} of {} tokens. Those tokens are used without quota tracking. The other {} keep proactive throttling until their counters are locally spent, after which traffic moves onto the untracked tokens: the connector no longer waits for a quota reset, so it never refreshes them.",
                    self.slot_count,
                    self.slot_count - untracked
                );
            }
        }
        Ok(())
    }

    /// One token's pools from the quota status endpoint.
    async fn fetch(&self, token: usize) -> Result<Vec<PoolState>, HttpError> {
        let mut request = HttpRequest::new(self.status_method, self.status_url.clone());
        for (name, value) in &self.status_headers {
            request.set_header(name, value.clone());
        }
        // The reference's `TokenAuthenticator`: the method and the token, not trimmed.
        request.set_header(
            &self.header,
            format!("{} {}", self.auth_method, self.tokens[token]),
        );
        let response = self.send_status(&request).await?;
        let now = self.clock.now();
        if self.unavailable.contains(&response.status) {
            return Ok(vec![
                PoolState {
                    remaining: 0,
                    reset_at: now,
                    limit: 0,
                    tracked: false,
                };
                self.quota_slot_count
            ]);
        }
        let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            HttpError::with_internal(
                FailureType::SystemError,
                format!("The quota status response is not JSON: {e}"),
                self.mask(&format!(
                    "'{}' request to '{}' answered a body that is not JSON ({e}): '{}'",
                    request.method,
                    request.url,
                    body_excerpt(&response.body, 1000)
                )),
            )
        })?;
        let mut pools = vec![
            PoolState {
                remaining: 0,
                reset_at: now,
                limit: 0,
                tracked: true,
            };
            self.quota_slot_count
        ];
        for quota in &self.quotas {
            let remaining = extract(&body, &quota.remaining_path, &quota.name, "remaining")?;
            let reset = extract(&body, &quota.reset_path, &quota.name, "reset")?;
            let limit = match &quota.limit_path {
                Some(path) if !path.is_empty() => extract(&body, path, &quota.name, "limit")?,
                _ => remaining,
            };
            let remaining = python_int(remaining)?;
            let reset_at = reset_datetime(reset)?;
            let limit = python_int(limit)?;
            pools[quota.slot] = PoolState {
                remaining,
                reset_at,
                limit,
                tracked: true,
            };
        }
        Ok(pools)
    }

    /// Sends a quota status request with a requester's default error handling: 429, 5xx and
    /// connection errors are retried (5 times, 5, 10, 20... seconds apart), other failures
    /// fail, and `unavailable_status_codes` are handed back as they are.
    async fn send_status(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut retry = 0u32;
        loop {
            crate::observe::notify(|o| o.request_sent());
            let outcome = self.transport.send(request).await;
            let transient = match &outcome {
                Ok(response) if self.unavailable.contains(&response.status) => false,
                Ok(response) => {
                    response.status == 429 || response.status == 408 || response.status >= 500
                }
                Err(TransportError::NotRecorded(_) | TransportError::InvalidRequest { .. }) => {
                    false
                }
                Err(_) => true,
            };
            if !transient || retry >= 5 {
                return match outcome {
                    Ok(response)
                        if response.is_success() || self.unavailable.contains(&response.status) =>
                    {
                        Ok(response)
                    }
                    Ok(response) => Err(self.status_failure(request, &response)),
                    Err(TransportError::NotRecorded(text)) => {
                        Err(HttpError::new(FailureType::SystemError, self.mask(&text)))
                    }
                    Err(e) => Err(HttpError::with_internal(
                        FailureType::TransientError,
                        format!(
                            "The quota status request failed: {}",
                            self.mask(&e.to_string())
                        ),
                        self.mask(&e.to_string()),
                    )),
                };
            }
            let wait = Duration::from_secs(5u64 << retry);
            let reason = match &outcome {
                Ok(response) => format!("status {}", response.status),
                Err(error) => self.mask(&error.to_string()),
            };
            tracing::info!(
                "quota status: caught retryable error ({reason}) after {} tries; waiting {} seconds then retrying",
                retry + 1,
                wait.as_secs()
            );
            self.clock.sleep(&*self.transport, wait).await;
            retry += 1;
        }
    }

    fn status_failure(&self, request: &HttpRequest, response: &HttpResponse) -> HttpError {
        let (failure_type, message) = match response.status {
            400 => (
                FailureType::SystemError,
                "HTTP Status Code: 400. Error: Bad request. Please check your request parameters.",
            ),
            401 => (
                FailureType::ConfigError,
                "HTTP Status Code: 401. Error: Unauthorized. Please ensure you are authenticated correctly.",
            ),
            403 => (
                FailureType::ConfigError,
                "HTTP Status Code: 403. Error: Forbidden. You don't have permission to access this resource.",
            ),
            404 => (
                FailureType::SystemError,
                "HTTP Status Code: 404. Error: Not found. The requested resource was not found on the server.",
            ),
            429 | 408 | 500.. => (
                FailureType::TransientError,
                "The quota status endpoint kept failing after 5 retries.",
            ),
            _ => (
                FailureType::SystemError,
                "The quota status endpoint answered an unexpected status.",
            ),
        };
        HttpError::with_internal(
            failure_type,
            message,
            self.mask(&format!(
                "'{}' request to '{}' failed with status code '{}'. Response (body): '{}'",
                request.method,
                request.url,
                response.status,
                body_excerpt(&response.body, 1000)
            )),
        )
    }

    /// The token that signed `request`, read back from its header.
    fn sender(&self, request: &HttpRequest) -> Option<usize> {
        let value = request.header(&self.header).filter(|v| !v.is_empty())?;
        let token = if self.auth_method.is_empty() {
            value.trim()
        } else {
            value
                .strip_prefix(&format!("{} ", self.auth_method))?
                .trim()
        };
        self.tokens.iter().position(|t| t == token)
    }

    /// Reconciles the pool of `request` with the rate-limit headers of its response, when the
    /// pool declares them (the reference's `update_from_response`).
    pub(crate) fn update_from_response(&self, request: &HttpRequest, response: &HttpResponse) {
        let quota = self.match_quota(request, &|t| t.to_owned());
        if !quota.is_response_aware() {
            return;
        }
        let Some(token) = self.sender(request) else {
            return;
        };
        let header = |name: &Option<String>| {
            name.as_deref()
                .filter(|n| !n.is_empty())
                .and_then(|n| response.header(n))
        };
        let exhausted_status = quota.exhaustion_status_codes.contains(&response.status);
        let mut remaining = header(&quota.remaining_header).and_then(header_int);
        if remaining.is_none() && exhausted_status {
            remaining = Some(0);
        }
        let reset_at = header(&quota.reset_header).and_then(|v| parse_datetime(v).ok());
        let limit = header(&quota.limit_header).and_then(header_int);
        if remaining.is_none() && limit.is_none() && reset_at.is_none() {
            return;
        }
        let mut state = self.lock();
        let slot = self.token_slots[token];
        let Some(pool) = state.pools.get_mut(slot).map(|p| &mut p[quota.slot]) else {
            return;
        };
        if !pool.tracked {
            return;
        }
        if let Some(limit) = limit.filter(|l| *l > 0) {
            if reset_at.is_none_or(|r| r >= pool.reset_at) {
                pool.limit = limit;
            }
        }
        match reset_at {
            Some(reset) if reset > pool.reset_at => {
                // A new window: the server's numbers replace the local count.
                pool.reset_at = reset;
                pool.remaining = remaining.unwrap_or(pool.limit);
            }
            _ => {
                if let Some(remaining) = remaining {
                    let same_window = (remaining <= 0 && exhausted_status)
                        || reset_at.is_none_or(|r| r >= pool.reset_at - RESET_SKEW_TOLERANCE);
                    if same_window {
                        pool.remaining = pool.remaining.min(remaining);
                    }
                }
            }
        }
    }

    /// Whether a rate-limited `request` can be retried at once with another token: its token is
    /// tracked and spent, and another token has calls left.
    pub(crate) fn has_alternative_token(&self, request: &HttpRequest) -> bool {
        let quota = self.match_quota(request, &|t| t.to_owned());
        let Some(sender) = self.sender(request) else {
            return false;
        };
        let state = self.lock();
        if state.pools.is_empty() {
            return false;
        }
        let own = self.pool(&state, sender, quota);
        if !own.tracked || own.remaining > 0 {
            return false;
        }
        let sender_token = &self.tokens[sender];
        (0..self.tokens.len())
            .filter(|t| &self.tokens[*t] != sender_token)
            .any(|t| self.pool(&state, t, quota).remaining > 0)
    }
}

/// Status codes of the manifest, deduplicated and sorted.
fn status_codes(
    codes: Option<&[i64]>,
    path: &ManifestPath,
) -> Result<BTreeSet<u16>, AuthBuildError> {
    codes
        .unwrap_or_default()
        .iter()
        .map(|c| {
            u16::try_from(*c).map_err(|_| error(path, format!("{c} is not an HTTP status code")))
        })
        .collect()
}

/// The value at a quota path of the status response, or the reference's error naming the pool.
fn extract<'v>(
    body: &'v Value,
    path: &[String],
    quota: &str,
    field: &str,
) -> Result<&'v Value, HttpError> {
    let mut value = body;
    for key in path {
        value = match value {
            Value::Object(map) if map.contains_key(key) => &map[key],
            _ => {
                return Err(HttpError::with_internal(
                    FailureType::SystemError,
                    format!(
                        "Quota status response does not contain the configured {field} path for token quota \"{quota}\"."
                    ),
                    format!(
                        "Quota status response did not contain the {field} path {} configured for quota '{quota}'",
                        python_list(path)
                    ),
                ));
            }
        };
    }
    Ok(value)
}

fn python_list(path: &[String]) -> String {
    let items: Vec<String> = path
        .iter()
        .map(|p| format!("'{}'", p.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", items.join(", "))
}

/// Python's `int()` of a JSON value: integers, floats (truncated), booleans and integer text.
fn python_int(value: &Value) -> Result<i64, HttpError> {
    let parsed = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(text) => header_int(text),
        _ => None,
    };
    parsed.ok_or_else(|| {
        HttpError::new(
            FailureType::SystemError,
            format!(
                "invalid literal for int(): {}",
                sluice_interp::python_str(value)
            ),
        )
    })
}

/// `ab_datetime_parse` of a JSON value: an integer is a Unix timestamp, text is parsed.
fn reset_datetime(value: &Value) -> Result<OffsetDateTime, HttpError> {
    let parsed = match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => parse_datetime(&n.to_string()),
        Value::Bool(b) => parse_datetime(if *b { "1" } else { "0" }),
        Value::String(text) => parse_datetime(text),
        other => Err(format!(
            "Could not parse datetime string: expected string or integer, got {}",
            sluice_interp::python_str(other)
        )),
    };
    parsed.map_err(|e| HttpError::new(FailureType::SystemError, e))
}

/// Python's `int()` of header text: surrounding spaces and `_` between digits allowed.
fn header_int(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    if trimmed.starts_with('_') || trimmed.ends_with('_') || trimmed.contains("__") {
        return None;
    }
    trimmed.replace('_', "").parse().ok()
}
