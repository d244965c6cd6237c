//! Python `datetime` semantics shared with the incremental cursors: the reference's
//! `DatetimeParser` (epoch formats on top of `strptime`/`strftime`), `datetime.timestamp()`,
//! `datetime.fromtimestamp()`, `int()`/`float()` of text, and ISO 8601 durations as `isodate`
//! reads and applies them.
//!
//! Python datetimes only span the years 1 to 9999; results outside fail here as they do there.

use std::borrow::Cow;
use std::sync::OnceLock;

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::strftime::{self, Parsed, Strptime};

pub use crate::datetime::{PyDuration, isoparse, parse_duration};
pub use crate::pyrepr::float_repr;

/// A scalar as the reference hands it to `DatetimeParser.parse`: a JSON string, integer, float or
/// boolean (Python's `bool` is an `int`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyScalar<'a> {
    Str(&'a str),
    Int(i128),
    Float(f64),
    Bool(bool),
}

impl<'a> PyScalar<'a> {
    /// Python's `str()` of the value.
    pub fn py_str(&self) -> Cow<'a, str> {
        match self {
            PyScalar::Str(text) => Cow::Borrowed(*text),
            PyScalar::Int(value) => value.to_string().into(),
            PyScalar::Float(value) => float_repr(*value).into(),
            PyScalar::Bool(true) => "True".into(),
            PyScalar::Bool(false) => "False".into(),
        }
    }

    /// Python's `int()` of the value (floats are truncated, text is read as a decimal literal).
    pub fn py_int(&self) -> Result<i128, String> {
        match self {
            PyScalar::Str(text) => py_int(text),
            PyScalar::Int(value) => Ok(*value),
            PyScalar::Float(value) if value.is_nan() => {
                Err("cannot convert float NaN to integer".into())
            }
            PyScalar::Float(value) if value.is_infinite() => {
                Err("cannot convert float infinity to integer".into())
            }
            PyScalar::Float(value) => Ok(value.trunc() as i128),
            PyScalar::Bool(value) => Ok(i128::from(*value)),
        }
    }

    /// Python's `float()` of the value.
    pub fn py_float(&self) -> Result<f64, String> {
        match self {
            PyScalar::Str(text) => py_float(text),
            PyScalar::Int(value) => Ok(*value as f64),
            PyScalar::Float(value) => Ok(*value),
            PyScalar::Bool(value) => Ok(f64::from(u8::from(*value))),
        }
    }
}

/// Python's `int(text)`: surrounding whitespace, a sign, and single `_` between digits are allowed.
pub fn py_int(text: &str) -> Result<i128, String> {
    let bad = || format!("invalid literal for int() with base 10: {text:?}");
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if !underscores_between_digits(digits) || !digits.bytes().any(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(bad());
    }
    trimmed.replace('_', "").parse().map_err(|_| bad())
}

/// Python's `float(text)`: decimal or exponent notation, `inf`/`infinity`/`nan`, surrounding
/// whitespace, single `_` between digits.
pub fn py_float(text: &str) -> Result<f64, String> {
    let bad = || format!("could not convert string to float: {text:?}");
    let trimmed = text.trim();
    if !underscores_between_digits(trimmed) {
        return Err(bad());
    }
    let cleaned = trimmed.replace('_', "");
    let body = cleaned.strip_prefix(['+', '-']).unwrap_or(&cleaned);
    let special = ["inf", "infinity", "nan"]
        .iter()
        .any(|name| body.eq_ignore_ascii_case(name));
    let numeric = body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !special && !numeric {
        return Err(bad());
    }
    cleaned.parse().map_err(|_| bad())
}

fn underscores_between_digits(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_'
            || (i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    })
}

/// The current UTC time at Python's microsecond precision, rounded to the nearest microsecond
/// (a clock set to a microsecond value, as a test's frozen clock is, reads back as that value).
pub fn now_utc() -> OffsetDateTime {
    round_to_micros(OffsetDateTime::now_utc())
}

fn round_to_micros(time: OffsetDateTime) -> OffsetDateTime {
    let micros = (time.unix_timestamp_nanos() + 500).div_euclid(1000);
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).unwrap_or(time)
}

/// Python's `datetime.timestamp()` of an aware datetime: the exact microseconds since the epoch,
/// divided by 10^6 and rounded once to the nearest float.
pub fn timestamp(dt: OffsetDateTime) -> f64 {
    let micros = dt.unix_timestamp_nanos().div_euclid(1000);
    let (seconds, fraction) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    // Rust parses decimal text with correct rounding, as Python divides integers.
    let text = if seconds < 0 && fraction != 0 {
        format!("-{}.{:06}", -(seconds + 1), 1_000_000 - fraction)
    } else {
        format!("{seconds}.{fraction:06}")
    };
    text.parse().unwrap_or(f64::NAN)
}

/// Checks Python's datetime range on the wall clock (years 1 to 9999).
pub fn check_range(dt: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if (1..=9999).contains(&dt.year()) {
        Ok(dt)
    } else {
        Err(format!("year {} is out of range", dt.year()))
    }
}

/// Python's `datetime.fromtimestamp(seconds, tz=timezone.utc)` for an integer.
pub fn from_timestamp(seconds: i128) -> Result<OffsetDateTime, String> {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| "timestamp out of range for platform time_t".to_string())
        .and_then(check_range)
}

/// Python's `datetime.fromtimestamp(seconds, tz=timezone.utc)` for a float: the fraction is
/// rounded to microseconds half to even, as CPython does.
pub fn from_timestamp_float(seconds: f64) -> Result<OffsetDateTime, String> {
    if seconds.is_nan() {
        return Err("Invalid value NaN (not a number)".into());
    }
    if !seconds.is_finite() || seconds.abs() > 1e18 {
        return Err("timestamp out of range for platform time_t".into());
    }
    let mut whole = seconds.trunc();
    let mut micros = ((seconds - whole) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        whole += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        whole -= 1.0;
    }
    let base = from_timestamp(whole as i128)?;
    base.checked_add(Duration::microseconds(micros as i64))
        .ok_or_else(|| "timestamp out of range".to_string())
        .and_then(check_range)
}

/// The Unix epoch plus `micros` microseconds (Python's `EPOCH + timedelta(microseconds=...)`).
pub fn epoch_plus_micros(micros: i128) -> Result<OffsetDateTime, String> {
    let out_of_range = || "date value out of range".to_string();
    let nanos = micros.checked_mul(1000).ok_or_else(out_of_range)?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| out_of_range())
        .and_then(|dt| check_range(dt).map_err(|_| out_of_range()))
}

/// The reference's `DatetimeParser` bound to one format string: `%s`, `%s_as_float`, `%ms` and
/// `%epoch_microseconds` as whole formats are epochs; otherwise the format is a `strptime` /
/// `strftime` pattern in which `%_ms` stands for milliseconds. The `strptime` expression is
/// compiled on first use and kept.
#[derive(Debug, Clone)]
pub struct DatetimeParser {
    pattern: String,
    /// The epoch the whole pattern names, told once: a cursor parses every record's value.
    epoch: Option<Epoch>,
    strptime: OnceLock<Result<Strptime, String>>,
}

/// The epoch formats `DatetimeParser` recognises when they are the whole format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    Seconds,
    SecondsFloat,
    Millis,
    Micros,
}

impl Epoch {
    fn of(pattern: &str) -> Option<Epoch> {
        Some(match pattern {
            "%s" => Epoch::Seconds,
            "%s_as_float" => Epoch::SecondsFloat,
            "%ms" => Epoch::Millis,
            "%epoch_microseconds" => Epoch::Micros,
            _ => return None,
        })
    }
}

impl DatetimeParser {
    pub fn new(pattern: impl Into<String>) -> DatetimeParser {
        let pattern = pattern.into();
        DatetimeParser {
            epoch: Epoch::of(&pattern),
            pattern,
            strptime: OnceLock::new(),
        }
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// `DatetimeParser.parse`: epochs through `int()`/`float()` of the value, anything else
    /// through `strptime(str(value))`; naive results are UTC.
    pub fn parse(&self, value: PyScalar<'_>) -> Result<OffsetDateTime, String> {
        match self.epoch {
            Some(Epoch::Seconds) => from_timestamp(value.py_int()?),
            Some(Epoch::SecondsFloat) => from_timestamp_float(value.py_float()?),
            Some(Epoch::Micros) => epoch_plus_micros(value.py_int()?),
            Some(Epoch::Millis) => {
                let millis = value.py_int()?;
                epoch_plus_micros(millis.checked_mul(1000).ok_or("date value out of range")?)
            }
            None => {
                let strptime = self.strptime().as_ref().map_err(Clone::clone)?;
                Ok(strptime.parse(&value.py_str())?.assume_utc_if_naive())
            }
        }
    }

    /// [`DatetimeParser::parse`] of a string, from its bytes, when the pattern is a `strptime`
    /// one that [`Strptime::parse_fixed_bytes`] decides them by; `None` leaves the string to
    /// [`DatetimeParser::parse`]. `bytes` may be a JSON string as sent, escapes unread.
    pub fn parse_fixed_bytes(&self, bytes: &[u8]) -> Option<Result<OffsetDateTime, String>> {
        if self.epoch.is_some() {
            return None;
        }
        let strptime = self.strptime().as_ref().ok()?;
        let parsed = strptime.parse_fixed_bytes(bytes)?;
        Some(parsed.map(Parsed::assume_utc_if_naive))
    }

    fn strptime(&self) -> &Result<Strptime, String> {
        self.strptime
            .get_or_init(|| Strptime::new(&self.pattern.replace("%_ms", "%f")))
    }

    /// `DatetimeParser.format`.
    pub fn format(&self, dt: OffsetDateTime) -> String {
        format(dt, &self.pattern)
    }
}

/// `DatetimeParser.format`: epochs from the float `timestamp()` (truncated, so half a second
/// before the epoch is `0`), `%_ms` as three digits of milliseconds, anything else `strftime`.
pub fn format(dt: OffsetDateTime, pattern: &str) -> String {
    let seconds = || timestamp(dt);
    match Epoch::of(pattern) {
        Some(Epoch::Seconds) => (seconds().trunc() as i128).to_string(),
        Some(Epoch::SecondsFloat) => float_repr(seconds()),
        Some(Epoch::Micros) => ((seconds() * 1_000_000.0).trunc() as i128).to_string(),
        Some(Epoch::Millis) => ((seconds() * 1000.0).trunc() as i128).to_string(),
        None if pattern.contains("%_ms") => {
            // The reference replaces every occurrence of the six microsecond digits in the output,
            // wherever they come from.
            let micros = strftime_aware(dt, "%f");
            let millis = format!("{:03}", dt.microsecond() / 1000);
            strftime_aware(dt, &pattern.replace("%_ms", "%f")).replace(&micros, &millis)
        }
        None => strftime_aware(dt, pattern),
    }
}

/// Python's `strftime` of an aware datetime (wall clock and offset of `dt`).
pub fn strftime_aware(dt: OffsetDateTime, pattern: &str) -> String {
    strftime::format(
        PrimitiveDateTime::new(dt.date(), dt.time()),
        Some(dt.offset()),
        pattern,
    )
}

#[cfg(test)]
mod now_tests {
    use super::*;

    #[test]
    fn now_rounds_to_the_nearest_microsecond() {
        let at = |nanos: i128| OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
        assert_eq!(
            round_to_micros(at(1_000_405_046_999)),
            at(1_000_405_047_000)
        );
        assert_eq!(
            round_to_micros(at(1_000_405_046_400)),
            at(1_000_405_046_000)
        );
    }
}
