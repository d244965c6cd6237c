//! Call budgets: the manifest's `api_budget` (HTTPAPIBudget), shared by every stream and
//! partition, so a connector never sends more calls than its policies allow.
//!
//! The policies count calls exactly as the reference does: a fixed window counts calls until a
//! reset time (which the API's `ratelimit-reset` header moves), a moving window keeps the time
//! of each call and allows `limit` calls in any `interval`. Neither is a token bucket, so they
//! are implemented here directly rather than on `governor`, whose GCRA would let calls through
//! at different moments than the reference.
//!
//! Waits go through the transport's [`Transport::wait`]; the budget's
//! clock is moved on by whatever part of a wait did not really pass, so a replaying transport
//! (which does not sleep) sees the same windows as a real run, without the time.

use crate::errors::{BuildError, HttpError};
use crate::{HttpRequest, HttpResponse, Transport};
use regex::Regex;
use serde_json::Value;
use sluice_interp::{Context, Template};
use sluice_manifest::{ManifestPath, model};
use sluice_protocol::FailureType;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The reference gives up acquiring a call after this many waits.
const MAX_ACQUIRE_ATTEMPTS: u32 = 100_000;
/// A fixed window's first reset, until the API says otherwise.
const FIRST_FIXED_WINDOW: Duration = Duration::from_secs(10 * 24 * 3600);

/// A shared call budget. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ApiBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    policies: Vec<Policy>,
    reset_header: String,
    remaining_header: String,
    status_codes_for_ratelimit_hit: Vec<u16>,
    /// Microseconds of waits that a non-sleeping transport skipped.
    skipped_us: AtomicU64,
}

/// One call-rate policy and the requests it applies to.
#[derive(Debug)]
pub struct Policy {
    matchers: Vec<RequestMatcher>,
    limiter: Limiter,
}

#[derive(Debug)]
enum Limiter {
    Unlimited,
    Fixed(Mutex<FixedWindow>),
    Moving(Mutex<MovingWindow>),
}

#[derive(Debug)]
struct FixedWindow {
    period_ms: i64,
    call_limit: u64,
    calls: u64,
    next_reset_ms: i64,
}

#[derive(Debug)]
struct MovingWindow {
    /// `(limit, interval_ms)`, shortest interval first.
    rates: Vec<(u64, i64)>,
    /// The time of each call (one entry per unit of weight), oldest first.
    calls: VecDeque<i64>,
}

/// `HttpRequestRegexMatcher`: which requests a policy applies to.
#[derive(Debug, Clone)]
pub struct RequestMatcher {
    method: Option<String>,
    url_base: Option<String>,
    url_path_pattern: Option<Regex>,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    weight: Option<u64>,
}

impl ApiBudget {
    /// Builds the manifest's `api_budget`.
    pub fn from_model(
        model: &model::HTTPAPIBudget,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let policies = model
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| Policy::from_model(p, config, &path.key("policies").index(i)))
            .collect::<Result<_, _>>()?;
        let status_codes_for_ratelimit_hit = match &model.status_codes_for_ratelimit_hit {
            Some(codes) if !codes.is_empty() => codes
                .iter()
                .map(|c| {
                    u16::try_from(*c).map_err(|_| {
                        BuildError::at(
                            &path.key("status_codes_for_ratelimit_hit"),
                            format!("{c} is not an HTTP status code"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => vec![429],
        };
        Ok(Self::new(
            policies,
            model
                .ratelimit_reset_header
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or("ratelimit-reset"),
            model
                .ratelimit_remaining_header
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or("ratelimit-remaining"),
            status_codes_for_ratelimit_hit,
        ))
    }

    /// A budget of the given policies; the first policy matching a request governs it.
    pub fn new(
        policies: Vec<Policy>,
        reset_header: &str,
        remaining_header: &str,
        status_codes_for_ratelimit_hit: Vec<u16>,
    ) -> Self {
        Self {
            inner: Arc::new(BudgetInner {
                policies,
                reset_header: reset_header.to_owned(),
                remaining_header: remaining_header.to_owned(),
                status_codes_for_ratelimit_hit,
                skipped_us: AtomicU64::new(0),
            }),
        }
    }

    fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        (real + self.inner.skipped_us.load(Ordering::Relaxed) as i64) / 1000
    }

    fn policy_for(&self, request: &HttpRequest) -> Option<&Policy> {
        self.inner.policies.iter().find(|p| p.matches(request))
    }

    /// Waits until the budget allows `request`, then counts it.
    pub async fn acquire(
        &self,
        request: &HttpRequest,
        transport: &dyn Transport,
    ) -> Result<(), HttpError> {
        let Some(policy) = self.policy_for(request) else {
            return Ok(());
        };
        let weight = policy.weight(request);
        for attempt in 1..MAX_ACQUIRE_ATTEMPTS {
            let wait = policy
                .try_acquire(weight, self.now_ms())
                .map_err(|message| {
                    HttpError::new(FailureType::SystemError, format!("api_budget: {message}"))
                })?;
            let Some(wait) = wait else {
                return Ok(());
            };
            tracing::debug!(
                "Policy reached call limit for endpoint {}. Sleeping for {:?} on attempt {attempt}.",
                request.url,
                wait
            );
            let started = Instant::now();
            crate::observe::notify(|o| o.budget_wait(wait));
            transport.wait(wait).await;
            let skipped = wait.saturating_sub(started.elapsed());
            self.inner
                .skipped_us
                .fetch_add(skipped.as_micros() as u64, Ordering::Relaxed);
        }
        Err(HttpError::new(
            FailureType::TransientError,
            format!(
                "Exhausted all {MAX_ACQUIRE_ATTEMPTS} attempts to acquire a call for endpoint {}",
                request.url
            ),
        ))
    }

    /// Adjusts the budget to what the API says is left (`ratelimit-remaining`,
    /// `ratelimit-reset`, or a rate-limit status meaning nothing is left).
    pub fn update_from_response(&self, request: &HttpRequest, response: &HttpResponse) {
        let Some(policy) = self.policy_for(request) else {
            return;
        };
        let header_int = |name: &str| {
            response
                .header(name)
                .filter(|v| !v.is_empty())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let available = header_int(&self.inner.remaining_header).or_else(|| {
            self.inner
                .status_codes_for_ratelimit_hit
                .contains(&response.status)
                .then_some(0)
        });
        let reset_ms =
            header_int(&self.inner.reset_header).map(|seconds| seconds.saturating_mul(1000));
        policy.update(available, reset_ms, self.now_ms());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the counters half-updated, so keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Policy {
    /// A policy without limits for the matching requests.
    pub fn unlimited(matchers: Vec<RequestMatcher>) -> Self {
        Self {
            matchers,
            limiter: Limiter::Unlimited,
        }
    }

    /// At most `call_limit` calls per `period`, the first window ending 10 days from now
    /// unless the API's reset header says otherwise (as in the reference).
    pub fn fixed_window(period: Duration, call_limit: u64, matchers: Vec<RequestMatcher>) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            matchers,
            limiter: Limiter::Fixed(Mutex::new(FixedWindow {
                period_ms: period.as_millis() as i64,
                call_limit,
                calls: 0,
                next_reset_ms: now + FIRST_FIXED_WINDOW.as_millis() as i64,
            })),
        }
    }

    /// At most `limit` calls in any `interval`, for each `(limit, interval)`.
    pub fn moving_window(rates: Vec<(u64, Duration)>, matchers: Vec<RequestMatcher>) -> Self {
        let mut rates: Vec<(u64, i64)> = rates
            .into_iter()
            .map(|(l, i)| (l, i.as_millis() as i64))
            .collect();
        rates.sort_by_key(|(_, interval)| *interval);
        Self {
            matchers,
            limiter: Limiter::Moving(Mutex::new(MovingWindow {
                rates,
                calls: VecDeque::new(),
            })),
        }
    }

    fn from_model(
        model: &model::CallRatePolicy,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let matchers = |list: &[model::HttpRequestRegexMatcher]| {
            list.iter()
                .enumerate()
                .map(|(i, m)| RequestMatcher::from_model(m, config, &path.key("matchers").index(i)))
                .collect::<Result<Vec<_>, _>>()
        };
        match model {
            model::CallRatePolicy::UnlimitedCallRatePolicy(m) => {
                Ok(Self::unlimited(matchers(&m.matchers)?))
            }
            model::CallRatePolicy::FixedWindowCallRatePolicy(m) => {
                let period = parse_iso_duration(&m.period)
                    .map_err(|e| BuildError::at(&path.key("period"), e))?;
                let limit = u64::try_from(m.call_limit).map_err(|_| {
                    BuildError::at(&path.key("call_limit"), "call_limit cannot be negative")
                })?;
                Ok(Self::fixed_window(period, limit, matchers(&m.matchers)?))
            }
            model::CallRatePolicy::MovingWindowCallRatePolicy(m) => {
                if m.rates.is_empty() {
                    return Err(BuildError::at(
                        &path.key("rates"),
                        "The list of rates can not be empty",
                    ));
                }
                let rates = m
                    .rates
                    .iter()
                    .enumerate()
                    .map(|(i, rate)| {
                        let at = path.key("rates").index(i);
                        let limit = integer_or_template(&rate.limit, config, &at.key("limit"))?;
                        let interval = parse_iso_duration(&rate.interval)
                            .map_err(|e| BuildError::at(&at.key("interval"), e))?;
                        Ok((limit, interval))
                    })
                    .collect::<Result<_, BuildError>>()?;
                Ok(Self::moving_window(rates, matchers(&m.matchers)?))
            }
        }
    }

    fn matches(&self, request: &HttpRequest) -> bool {
        self.matchers.is_empty() || self.matchers.iter().any(|m| m.matches(request))
    }

    fn weight(&self, request: &HttpRequest) -> u64 {
        self.matchers
            .iter()
            .find(|m| m.matches(request))
            .and_then(|m| m.weight)
            .unwrap_or(1)
    }

    /// Counts a call of `weight` now, or says how long to wait before trying again.
    fn try_acquire(&self, weight: u64, now: i64) -> Result<Option<Duration>, String> {
        let wait_ms = match &self.limiter {
            Limiter::Unlimited => return Ok(None),
            Limiter::Fixed(window) => {
                let mut window = lock(window);
                if weight > window.call_limit {
                    return Err("Weight can not exceed the call limit".into());
                }
                window.roll(now);
                if window.calls + weight > window.call_limit {
                    window.next_reset_ms - now
                } else {
                    window.calls += weight;
                    return Ok(None);
                }
            }
            Limiter::Moving(window) => {
                let mut window = lock(window);
                let lowest = window.rates.iter().map(|(l, _)| *l).min().unwrap_or(0);
                if weight > lowest {
                    return Err(format!(
                        "Weight can not exceed the lowest configured rate limit ({lowest})"
                    ));
                }
                match window.put(now, weight) {
                    None => return Ok(None),
                    Some(wait) => wait,
                }
            }
        };
        // One millisecond more, so the retry lands after the edge of the window, not on it.
        Ok(Some(Duration::from_millis(wait_ms.max(0) as u64 + 1)))
    }

    fn update(&self, available: Option<i64>, reset_ms: Option<i64>, now: i64) {
        match &self.limiter {
            Limiter::Unlimited => {}
            Limiter::Fixed(window) => {
                let mut window = lock(window);
                window.roll(now);
                let left = window.call_limit.saturating_sub(window.calls) as i64;
                // Only ever lower what is left, so a policy stricter than the API stays so.
                if let Some(available) = available {
                    if left > available {
                        window.calls = window.call_limit.saturating_sub(available.max(0) as u64);
                    }
                }
                if let Some(reset) = reset_ms {
                    window.next_reset_ms = reset;
                }
            }
            Limiter::Moving(window) => {
                // Without a reset time the best sync is: nothing left means the window is full.
                if available == Some(0) && reset_ms.is_none() {
                    let mut window = lock(window);
                    let free = window.free(now);
                    if free > 0 {
                        window.put(now, free);
                    }
                }
            }
        }
    }
}

impl FixedWindow {
    fn roll(&mut self, now: i64) {
        if now > self.next_reset_ms {
            self.next_reset_ms += self.period_ms;
            self.calls = 0;
        }
    }
}

impl MovingWindow {
    fn count_since(&self, since: i64) -> u64 {
        // Calls are in time order: count from the newest back.
        self.calls.iter().rev().take_while(|t| **t >= since).count() as u64
    }

    fn free(&self, now: i64) -> u64 {
        self.rates
            .iter()
            .map(|(limit, interval)| limit.saturating_sub(self.count_since(now - interval)))
            .min()
            .unwrap_or(0)
    }

    /// Records `weight` calls now; when a rate is full, how long (ms) until there is room.
    fn put(&mut self, now: i64, weight: u64) -> Option<i64> {
        let longest = self.rates.last().map_or(0, |(_, i)| *i);
        while self.calls.front().is_some_and(|t| *t < now - longest) {
            self.calls.pop_front();
        }
        for (limit, interval) in &self.rates {
            let used = self.count_since(now - interval);
            if limit.saturating_sub(used) < weight {
                // Room comes when the call `limit - weight` places from the newest leaves the window.
                let index_from_newest = (limit - weight) as usize;
                let wait = self
                    .calls
                    .iter()
                    .rev()
                    .nth(index_from_newest)
                    .map_or(0, |bound| bound - (now - interval));
                return Some(wait);
            }
        }
        self.calls.extend(std::iter::repeat_n(now, weight as usize));
        None
    }
}

impl RequestMatcher {
    /// Matches requests by method, base URL, path regex (searched in the path), query
    /// parameters and headers (all given must be present with these values).
    pub fn new(
        method: Option<&str>,
        url_base: Option<&str>,
        url_path_pattern: Option<&str>,
        params: Vec<(String, String)>,
        headers: Vec<(String, String)>,
        weight: Option<u64>,
    ) -> Result<Self, String> {
        Ok(Self {
            method: method.map(str::to_ascii_uppercase),
            url_base: url_base.map(|u| u.trim_end_matches('/').to_owned()),
            url_path_pattern: url_path_pattern
                .filter(|p| !p.is_empty())
                .map(|p| Regex::new(p).map_err(|e| format!("invalid url_path_pattern {p:?}: {e}")))
                .transpose()?,
            params,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            weight,
        })
    }

    pub(crate) fn from_model(
        m: &model::HttpRequestRegexMatcher,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let pairs = |map: &Option<serde_json::Map<String, Value>>| -> Vec<(String, String)> {
            map.iter()
                .flatten()
                .map(|(k, v)| (k.clone(), sluice_interp::python_str(v)))
                .collect()
        };
        let weight = m
            .weight
            .as_ref()
            .map(|w| integer_or_template(w, config, &path.key("weight")))
            .transpose()?;
        if weight == Some(0) {
            return Err(BuildError::at(
                &path.key("weight"),
                "weight must be >= 1, got 0",
            ));
        }
        Self::new(
            m.method.as_deref(),
            m.url_base.as_deref(),
            m.url_path_pattern.as_deref(),
            pairs(&m.params),
            pairs(&m.headers),
            weight,
        )
        .map_err(|e| BuildError::at(path, e))
    }

    pub(crate) fn matches(&self, request: &HttpRequest) -> bool {
        if self
            .method
            .as_deref()
            .is_some_and(|m| m != request.method.as_str())
        {
            return false;
        }
        let Ok(url) = url::Url::parse(&request.url) else {
            return false;
        };
        if let Some(base) = &self.url_base {
            let host = url.host_str().unwrap_or_default();
            let netloc = match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            };
            if &netloc != base {
                return false;
            }
        }
        if let Some(pattern) = &self.url_path_pattern {
            if !pattern.is_match(url.path().trim_end_matches('/')) {
                return false;
            }
        }
        if !self.params.is_empty() {
            // Python's `dict(parse_qsl(...))`: the last value of a repeated name wins.
            let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let value_of = |name: &str| {
                query
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            if !self
                .params
                .iter()
                .all(|(k, v)| value_of(k) == Some(v.as_str()))
            {
                return false;
            }
        }
        self.headers
            .iter()
            .all(|(k, v)| request.header(k) == Some(v.as_str()))
    }
}

fn integer_or_template(
    value: &model::IntegerOrString,
    config: &Arc<Value>,
    path: &ManifestPath,
) -> Result<u64, BuildError> {
    let number = match value {
        model::IntegerOrString::Integer(n) => Some(*n),
        model::IntegerOrString::String(text) => {
            let template = Template::new(text).map_err(|e| BuildError::at(path, e))?;
            match template
                .render(&Context::new().config(&**config))
                .map_err(|e| BuildError::at(path, e))?
            {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
        }
    };
    number
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| BuildError::at(path, "expected a non-negative integer"))
}

/// An ISO 8601 duration of weeks, days, hours, minutes and seconds (`PT1H`, `P1D`, `PT0.5S`).
pub fn parse_iso_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid ISO 8601 duration {text:?}");
    let rest = text.trim().strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut seconds = 0f64;
    let mut any = false;
    let mut scan = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let factor = units
                .iter()
                .find(|(u, _)| *u == c)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    if c == 'Y' || c == 'M' {
                        format!("{} (years and months are not fixed lengths of time)", bad())
                    } else {
                        bad()
                    }
                })?;
            seconds += number.parse::<f64>().map_err(|_| bad())? * factor;
            number.clear();
            any = true;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    scan(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    scan(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    if !any {
        return Err(bad());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    #[test]
    fn durations() {
        assert_eq!(
            parse_iso_duration("PT1H").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_iso_duration("P1DT0.5S").unwrap(),
            Duration::from_millis(86_400_500)
        );
        assert!(parse_iso_duration("P1M").is_err());
        assert!(parse_iso_duration("1H").is_err());
    }

    #[test]
    fn moving_window_waits_for_the_oldest_call_to_leave() {
        let policy = Policy::moving_window(vec![(2, Duration::from_secs(10))], vec![]);
        assert_eq!(policy.try_acquire(1, 0).unwrap(), None);
        assert_eq!(policy.try_acquire(1, 1000).unwrap(), None);
        assert_eq!(
            policy.try_acquire(1, 2000).unwrap(),
            Some(Duration::from_millis(8001))
        );
        assert_eq!(
            policy.try_acquire(1, 10_000).unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(policy.try_acquire(1, 10_001).unwrap(), None);
        assert!(policy.try_acquire(3, 10_001).is_err());
    }

    #[test]
    fn fixed_window_follows_the_reset_header() {
        let policy = Policy::fixed_window(Duration::from_secs(60), 2, vec![]);
        let now = 1_000_000;
        policy.update(None, Some(now + 5000), now);
        assert_eq!(policy.try_acquire(1, now).unwrap(), None);
        policy.update(Some(0), None, now);
        assert_eq!(
            policy.try_acquire(1, now).unwrap(),
            Some(Duration::from_millis(5001))
        );
        // After the reset, a new window of 60 s.
        assert_eq!(policy.try_acquire(1, now + 5001).unwrap(), None);
    }

    #[test]
    fn matchers() {
        let m = RequestMatcher::new(
            Some("get"),
            Some("https://api.x.com/"),
            Some("/users"),
            vec![("page".into(), "1".into())],
            vec![("X-Key".into(), "k".into())],
            Some(3),
        )
        .unwrap();
        let request = HttpRequest::new(Method::Get, "https://api.x.com/v1/users/?page=1")
            .with_header("x-key", "k");
        assert!(m.matches(&request));
        assert!(
            !m.matches(
                &HttpRequest::new(Method::Get, "https://api.x.com/v1/users?page=2")
                    .with_header("x-key", "k")
            )
        );
        assert!(
            !m.matches(
                &HttpRequest::new(Method::Post, "https://api.x.com/v1/users?page=1")
                    .with_header("x-key", "k")
            )
        );
        let policy = Policy::unlimited(vec![m]);
        assert_eq!(policy.weight(&request), 3);
    }
}
