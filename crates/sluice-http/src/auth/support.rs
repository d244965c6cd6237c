//! Small pieces the authenticators share: the reference's datetime parsing and printing, ISO 8601
//! durations, form encoding as Python's `requests` does it, config paths, and sending the
//! authenticators' own requests (token refresh, login) with retries.

use crate::{HttpError, HttpRequest, HttpResponse, Transport, TransportError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sluice_protocol::FailureType;
use std::time::Duration;
use time::format_description::well_known::{Iso8601, Rfc2822, Rfc3339};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// What Python's `quote_plus` leaves alone besides letters and digits.
const QUERY_UNSAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// One form field, encoded as `urllib.parse.urlencode` does (spaces as `+`).
pub(crate) fn form_encode(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        push_quoted(&mut out, key);
        out.push('=');
        push_quoted(&mut out, value);
    }
    out
}

fn push_quoted(out: &mut String, text: &str) {
    for piece in text.split(' ').enumerate() {
        if piece.0 > 0 {
            out.push('+');
        }
        out.extend(utf8_percent_encode(piece.1, QUERY_UNSAFE));
    }
}

/// A mapping's values as `requests` form-encodes them: `None` dropped, a list gives one pair per
/// item, anything else its Python `str()`.
pub(crate) fn form_pairs(map: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(map.len());
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::Array(items) => {
                for item in items.iter().filter(|i| !i.is_null()) {
                    pairs.push((key.clone(), sluice_interp::python_str(item)));
                }
            }
            other => pairs.push((key.clone(), sluice_interp::python_str(other))),
        }
    }
    pairs
}

/// The reference's `ab_datetime_parse`: a Unix timestamp (up to 10 digits), a date, or an
/// ISO 8601 / RFC 3339 / RFC 2822 datetime; naive values are UTC.
pub(crate) fn parse_datetime(text: &str) -> Result<OffsetDateTime, String> {
    let fail = || format!("Could not parse datetime string: {text}");
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if trimmed.starts_with('-') {
            return Err("Timestamp cannot be negative".to_owned());
        }
        if digits.len() > 10 {
            return Err("Timestamp value too large".to_owned());
        }
        let seconds: i64 = digits.parse().map_err(|_| fail())?;
        return OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| fail());
    }
    if !trimmed.contains(':') && trimmed.matches('-').count() == 2 && !trimmed.contains('/') {
        let mut parts = trimmed.split('-').map(str::parse::<i32>);
        let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("Invalid date format: {text}"));
        };
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok());
        let day = u8::try_from(day).ok();
        return match (month, day) {
            (Some(month), Some(day)) => Date::from_calendar_date(year, month, day)
                .map(|d| d.midnight().assume_utc())
                .map_err(|_| format!("Invalid date format: {text}")),
            _ => Err(format!("Invalid date format: {text}")),
        };
    }
    let normalised = normalise_iso(trimmed);
    if let Ok(parsed) = OffsetDateTime::parse(&normalised, &Rfc3339) {
        return Ok(parsed);
    }
    if let Ok(parsed) = OffsetDateTime::parse(&normalised, &Iso8601::DEFAULT) {
        return Ok(parsed);
    }
    if let Ok(parsed) = PrimitiveDateTime::parse(&normalised, &Iso8601::DEFAULT) {
        return Ok(parsed.assume_utc());
    }
    OffsetDateTime::parse(trimmed, &Rfc2822).map_err(|_| fail())
}

/// `2024-01-01 10:00:00 +0000` -> `2024-01-01T10:00:00+00:00`, the shapes `time` reads.
fn normalise_iso(text: &str) -> String {
    let mut out = text.replacen(' ', "T", 1).replace(' ', "");
    // A `+hhmm` offset without its colon.
    let len = out.len();
    if len > 5 {
        let tail = &out[len - 5..];
        let bytes = tail.as_bytes();
        if (bytes[0] == b'+' || bytes[0] == b'-') && bytes[1..].iter().all(u8::is_ascii_digit) {
            out.insert(len - 2, ':');
        }
    }
    out
}

/// `str()` of the reference's `AirbyteDateTime`: ISO 8601 with `T`, microseconds only when not
/// zero, and a `+HH:MM` offset.
pub(crate) fn format_datetime(value: OffsetDateTime) -> String {
    let offset = value.offset();
    let (hours, minutes, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    let micros = value.microsecond();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{sign}{:02}:{:02}",
        value.year(),
        u8::from(value.month()),
        value.day(),
        value.hour(),
        value.minute(),
        value.second(),
        hours.unsigned_abs(),
        minutes.unsigned_abs()
    )
}

/// The current time in UTC, truncated to microseconds as Python's clock is.
pub(crate) fn now_utc() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc().to_offset(UtcOffset::UTC);
    let micros = now.microsecond();
    now.replace_microsecond(micros).unwrap_or(now)
}

/// An ISO 8601 duration (`PT1H`, `P1D`, `P1W`, `P1M`, `P1Y`, `P1DT12H30M`), as `isodate`
/// reads `expiration_duration`: years and months are calendar months.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IsoDuration {
    months: i64,
    seconds: f64,
}

impl IsoDuration {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let fail = || format!("Unable to parse duration string '{text}'");
        let body = text.trim().strip_prefix('P').ok_or_else(fail)?;
        let (date_part, time_part) = match body.split_once('T') {
            Some((d, t)) if !t.is_empty() => (d, Some(t)),
            Some(_) => return Err(fail()),
            None => (body, None),
        };
        let mut months = 0i64;
        let mut seconds = 0f64;
        let mut seen = false;
        for (number, unit) in units(date_part).ok_or_else(fail)? {
            seen = true;
            match unit {
                'Y' => months += whole(number).ok_or_else(fail)? * 12,
                'M' => months += whole(number).ok_or_else(fail)?,
                'W' => seconds += number * 7.0 * 86_400.0,
                'D' => seconds += number * 86_400.0,
                _ => return Err(fail()),
            }
        }
        if let Some(time_part) = time_part {
            for (number, unit) in units(time_part).ok_or_else(fail)? {
                seen = true;
                match unit {
                    'H' => seconds += number * 3600.0,
                    'M' => seconds += number * 60.0,
                    'S' => seconds += number,
                    _ => return Err(fail()),
                }
            }
        }
        if !seen {
            return Err(fail());
        }
        Ok(Self { months, seconds })
    }

    /// `start` plus this duration.
    pub(crate) fn after(self, start: OffsetDateTime) -> OffsetDateTime {
        let shifted = add_months(start, self.months);
        shifted + time::Duration::seconds_f64(self.seconds)
    }
}

fn whole(number: f64) -> Option<i64> {
    (number.fract() == 0.0).then_some(number as i64)
}

/// `1D12H` -> `[(1, 'D'), (12, 'H')]`.
fn units(text: &str) -> Option<Vec<(f64, char)>> {
    let mut out = Vec::new();
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            number.push(if c == ',' { '.' } else { c });
        } else {
            let value: f64 = number.parse().ok()?;
            out.push((value, c));
            number.clear();
        }
    }
    number.is_empty().then_some(out)
}

fn add_months(start: OffsetDateTime, months: i64) -> OffsetDateTime {
    if months == 0 {
        return start;
    }
    let total = i64::from(start.year()) * 12 + i64::from(u8::from(start.month())) - 1 + months;
    let Ok(year) = i32::try_from(total.div_euclid(12)) else {
        return start;
    };
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).unwrap_or(Month::January);
    let mut day = start.day();
    // Clamp to the month's last day, as `isodate` does (31 Jan + 1 month = 28/29 Feb).
    loop {
        if let Ok(date) = Date::from_calendar_date(year, month, day) {
            return start.replace_date(date);
        }
        if day <= 28 {
            return start;
        }
        day -= 1;
    }
}

/// The value at a config path (`dpath.get`), or `None` when a key is missing.
pub(crate) fn config_get<'a>(config: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = config;
    for key in path {
        current = match current {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Sets the value at a config path, creating objects on the way (`dpath.new`).
pub(crate) fn config_set(config: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *config = value;
        return;
    };
    let mut current = config;
    for key in parents {
        if !current.is_object() {
            *current = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = current else { return };
        current = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = current {
        map.insert(last.clone(), value);
    }
}

/// How an authenticator's own request is retried when the server fails transiently (429, 5xx,
/// no response).
#[derive(Debug, Clone, Copy)]
pub(crate) enum RetryPolicy {
    /// The OAuth refresh: waits of 1, 2, 4... seconds until 300 seconds of waiting in all.
    TokenRefresh,
    /// A requester's default handler: 5 retries, waits of 5, 10, 20... seconds.
    Requester,
}

impl RetryPolicy {
    fn wait_before(self, retry: u32, waited: Duration) -> Option<Duration> {
        match self {
            RetryPolicy::TokenRefresh => {
                let wait = Duration::from_secs(1u64 << retry.min(20));
                (waited + wait <= Duration::from_secs(300)).then_some(wait)
            }
            RetryPolicy::Requester => {
                (retry < 5).then(|| Duration::from_secs(5u64 << retry.min(20)))
            }
        }
    }
}

/// What an authenticator's request ended with once retries are over.
pub(crate) enum Outcome {
    /// A response that is not transient (2xx, or a 4xx other than 429).
    Response(HttpResponse),
    /// Still a 429 or 5xx when the retries ran out.
    GaveUp(HttpResponse),
    /// No response at all when the retries ran out.
    Unreachable(TransportError),
}

/// Sends `request`, retrying transient failures as `policy` says.
pub(crate) async fn send_with_retries(
    transport: &dyn Transport,
    request: &HttpRequest,
    policy: RetryPolicy,
    what: &str,
) -> Outcome {
    let mut retry = 0u32;
    let mut waited = Duration::ZERO;
    loop {
        crate::observe::notify(|o| o.request_sent());
        let outcome = transport.send(request).await;
        let transient = match &outcome {
            Ok(response) => response.status == 429 || response.status >= 500,
            Err(TransportError::NotRecorded(_) | TransportError::InvalidRequest { .. }) => false,
            Err(_) => true,
        };
        if !transient {
            return match outcome {
                Ok(response) => Outcome::Response(response),
                Err(error) => Outcome::Unreachable(error),
            };
        }
        let Some(wait) = policy.wait_before(retry, waited) else {
            return match outcome {
                Ok(response) => Outcome::GaveUp(response),
                Err(error) => Outcome::Unreachable(error),
            };
        };
        let reason = match &outcome {
            Ok(response) => format!("status {}", response.status),
            Err(error) => error.to_string(),
        };
        tracing::info!(
            "{what}: caught retryable error ({reason}) after {} tries; waiting {} seconds then retrying",
            retry + 1,
            wait.as_secs()
        );
        transport.wait(wait).await;
        waited += wait;
        retry += 1;
    }
}

/// An error of an authenticator at run time.
pub(crate) fn auth_error(
    failure_type: FailureType,
    message: impl Into<String>,
    internal: impl Into<String>,
) -> HttpError {
    HttpError::with_internal(failure_type, message, internal)
}

/// The first `max` characters of a response body, for messages.
pub(crate) fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datetimes_parse_like_the_reference() {
        let utc = |s: &str| format_datetime(parse_datetime(s).unwrap());
        assert_eq!(utc("2024-03-14T15:09:26Z"), "2024-03-14T15:09:26+00:00");
        assert_eq!(utc("2024-03-14 15:09:26"), "2024-03-14T15:09:26+00:00");
        assert_eq!(
            utc("2024-03-14T15:09:26.5+02:00"),
            "2024-03-14T15:09:26.500000+02:00"
        );
        assert_eq!(utc("2024-03-14T15:09:26+0200"), "2024-03-14T15:09:26+02:00");
        assert_eq!(utc("2024-03-14"), "2024-03-14T00:00:00+00:00");
        assert_eq!(utc("1678806000"), "2023-03-14T15:00:00+00:00");
        assert!(parse_datetime("12345678901").is_err());
        assert!(parse_datetime("2024-13-01").is_err());
        assert!(parse_datetime("soon").is_err());
    }

    #[test]
    fn iso_durations() {
        let start = parse_datetime("2024-01-31T00:00:00Z").unwrap();
        let after = |s: &str| format_datetime(IsoDuration::parse(s).unwrap().after(start));
        assert_eq!(after("PT1H"), "2024-01-31T01:00:00+00:00");
        assert_eq!(after("P1DT30M"), "2024-02-01T00:30:00+00:00");
        assert_eq!(after("P1W"), "2024-02-07T00:00:00+00:00");
        assert_eq!(after("P1M"), "2024-02-29T00:00:00+00:00");
        assert_eq!(after("P1Y"), "2025-01-31T00:00:00+00:00");
        for bad in ["7200", "P", "PT", "P1X", "1H"] {
            assert!(IsoDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_encode_like_python() {
        let pairs = form_pairs(
            json!({"a": "x y", "b": null, "scopes": ["r", "w"], "n": 5, "t": true, "s": "*~/"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(
            form_encode(&pairs),
            "a=x+y&scopes=r&scopes=w&n=5&t=True&s=%2A~%2F"
        );
    }

    #[test]
    fn config_paths() {
        let mut config = json!({"credentials": {"refresh_token": "r1"}});
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config_get(&config, &path(&["credentials", "refresh_token"])),
            Some(&json!("r1"))
        );
        assert_eq!(
            config_get(&config, &path(&["credentials", "missing"])),
            None
        );
        config_set(
            &mut config,
            &path(&["credentials", "access_token"]),
            json!("a"),
        );
        config_set(&mut config, &path(&["other", "deep"]), json!(1));
        assert_eq!(
            config,
            json!({"credentials": {"refresh_token": "r1", "access_token": "a"}, "other": {"deep": 1}})
        );
    }
}
