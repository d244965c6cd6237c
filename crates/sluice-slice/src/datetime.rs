//! Datetime formats as the reference's `DatetimeParser` reads and writes them, ISO 8601 durations
//! as `isodate` applies them, and the reference's format-less parsing (`ab_datetime_parse`).
//!
//! The Python semantics themselves live in `sluice_interp::pytime` and `sluice_interp::strftime`
//! (templates use them too); this module binds them to what the cursors handle: a format string
//! from the manifest and JSON cursor values.
//!
//! Datetimes keep the offset they were parsed with, as Python's aware datetimes do: formatting a
//! value parsed from `-04:00` text writes its `-04:00` wall clock, even under a pattern with a
//! literal `Z`, exactly as the reference does.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use sluice_interp::pytime::{self, DatetimeParser, PyDuration, PyScalar};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A Python strftime pattern as the reference's DatetimeParser reads and writes it.
///
/// Whole-format epochs: `%s` (parse: `int()` of the value, so `"1.5"` fails but the number `1.5`
/// is `1`), `%s_as_float`, `%ms`, `%epoch_microseconds`; format writes `str(int(timestamp * k))`
/// from the float timestamp. Otherwise `strptime`/`strftime`, with `%_ms` as three millisecond
/// digits (parsed as `%f`). The `strptime` expression is compiled once and shared by clones.
#[derive(Clone)]
pub struct DatetimeFormat {
    parser: Arc<DatetimeParser>,
}

impl DatetimeFormat {
    pub fn new(pattern: impl Into<String>) -> Self {
        DatetimeFormat {
            parser: Arc::new(DatetimeParser::new(pattern)),
        }
    }

    pub fn pattern(&self) -> &str {
        self.parser.pattern()
    }

    /// Parses as the reference's DatetimeParser.parse does (naive results are UTC).
    ///
    /// No trimming: `strptime` rejects surrounding whitespace and leftover text (`%Y-%m-%d` on
    /// `2024-01-01T00:00:00` fails), while the epoch formats go through Python's `int()`/`float()`,
    /// which accept it (`" 1700000000 "`).
    pub fn parse(&self, text: &str) -> Result<OffsetDateTime, String> {
        self.parser.parse(PyScalar::Str(text))
    }

    /// Parses a JSON scalar as the reference does with the raw value: numbers go to `int()` /
    /// `float()` for the epoch formats and through `str()` (`1700000000.0`, `True`) for `strptime`.
    /// `None` for null, arrays and objects (the reference skips a null cursor value and fails on
    /// containers).
    pub fn parse_value(&self, value: &Value) -> Option<Result<OffsetDateTime, String>> {
        let scalar = match value {
            Value::String(text) => PyScalar::Str(text),
            Value::Bool(flag) => PyScalar::Bool(*flag),
            Value::Number(number) => match (number.as_i64(), number.as_u64()) {
                (Some(int), _) => PyScalar::Int(i128::from(int)),
                (None, Some(int)) => PyScalar::Int(i128::from(int)),
                _ => PyScalar::Float(number.as_f64()?),
            },
            Value::Null | Value::Array(_) | Value::Object(_) => return None,
        };
        Some(self.parser.parse(scalar))
    }

    /// [`DatetimeFormat::parse`] of the text a JSON string's bytes as sent spell (between its
    /// quotes, escapes unread), when they are plain enough to tell it from the bytes alone;
    /// `None` otherwise.
    pub fn parse_sent_string(&self, bytes: &[u8]) -> Option<Result<OffsetDateTime, String>> {
        self.parser.parse_fixed_bytes(bytes)
    }

    /// Formats as DatetimeParser.format does.
    pub fn format(&self, dt: OffsetDateTime) -> String {
        self.parser.format(dt)
    }
}

impl PartialEq for DatetimeFormat {
    fn eq(&self, other: &Self) -> bool {
        self.pattern() == other.pattern()
    }
}

impl Eq for DatetimeFormat {}

impl fmt::Debug for DatetimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatetimeFormat")
            .field(&self.pattern())
            .finish()
    }
}

/// The first of `formats` that parses `value` (a record's cursor value: string or number, as the
/// reference str()s it), or None.
pub fn parse_any(formats: &[DatetimeFormat], value: &Value) -> Option<OffsetDateTime> {
    formats
        .iter()
        .find_map(|format| format.parse_value(value)?.ok())
}

/// An ISO 8601 duration as the reference's parse_duration/isodate reads it (P1D, PT1S, P1M, P1Y,
/// P1W, PT0.5S...). Months/years are calendar units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDuration {
    pub months: i64,
    pub micros: i128,
}

impl IsoDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = pytime::parse_duration(text)?;
        Ok(IsoDuration {
            months: parsed.months,
            micros: parsed.micros,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.micros == 0
    }

    fn py(self) -> PyDuration {
        PyDuration {
            months: self.months,
            micros: self.micros,
        }
    }

    /// dt + self (calendar months first, as isodate does; clamps the day to the month's end as
    /// isodate does). Fails outside Python's years 1 to 9999.
    pub fn add_to(&self, dt: OffsetDateTime) -> Result<OffsetDateTime, String> {
        self.py().add_to(dt)
    }

    /// dt - self, which isodate computes as dt + (-self).
    pub fn sub_from(&self, dt: OffsetDateTime) -> Result<OffsetDateTime, String> {
        self.py().negate().add_to(dt)
    }
}

/// The reference's datetime parsing of a start/end value that has no explicit format
/// (ab_datetime_parse / str_to_datetime): ISO 8601 strings, dates, epoch numbers.
///
/// Follows `ab_datetime_parse` on text: all-digit text (optionally `-`) is epoch seconds (negative
/// or more than ten digits fail, so `20230314` is a 1970 timestamp); text without `:` with two `-`
/// and no `/` is a `Y-M-D` date; a time without a date fails; otherwise `dateutil.parser.parse`,
/// of which this covers the datetime forms: `Y-M-D` or `Y/M/D`, `T` or spaces, `H:M[:S[.f]]`
/// (fraction truncated to microseconds), then `Z`, `UTC`, `GMT`, `±HH`, `±HHMM` or `±HH:MM`.
/// The offset is kept (naive is UTC).
pub fn parse_flexible(text: &str) -> Result<OffsetDateTime, String> {
    let cannot = || format!("Could not parse datetime string: {text}");
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let timestamp = pytime::py_int(text)?;
        if timestamp < 0 {
            return Err("Timestamp cannot be negative".into());
        }
        if timestamp.to_string().len() > 10 {
            return Err("Timestamp value too large".into());
        }
        return pytime::from_timestamp(timestamp);
    }
    let dashes = text.matches('-').count();
    if !text.contains(':') && dashes == 2 && !text.contains('/') {
        let invalid = || format!("Invalid date format: {text}");
        let parts: Vec<i128> = text
            .split('-')
            .map(pytime::py_int)
            .collect::<Result<_, _>>()
            .map_err(|_| invalid())?;
        let date = date_of(parts[0], parts[1], parts[2]).ok_or_else(invalid)?;
        return Ok(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    if text.contains(':') && dashes < 2 && text.matches('/').count() < 2 {
        return Err(format!("Missing date part in datetime string: {text}"));
    }
    parse_dateutil_datetime(text.trim()).ok_or_else(cannot)
}

fn date_of(year: i128, month: i128, day: i128) -> Option<Date> {
    let year = i32::try_from(year)
        .ok()
        .filter(|y| (1..=9999).contains(y))?;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

/// The `dateutil.parser.parse` forms of a date and a time that sources send.
fn parse_dateutil_datetime(text: &str) -> Option<OffsetDateTime> {
    let mut rest = text;
    let number = |rest: &mut &str, max: usize| -> Option<i128> {
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > max {
            return None;
        }
        let value = rest[..len].parse().ok()?;
        *rest = &rest[len..];
        Some(value)
    };
    let year = number(&mut rest, 4)?;
    let separator = rest.chars().next().filter(|c| matches!(c, '-' | '/'))?;
    rest = &rest[1..];
    let month = number(&mut rest, 2)?;
    rest = rest.strip_prefix(separator)?;
    let day = number(&mut rest, 2)?;
    let date = date_of(year, month, day)?;
    let after_date = rest.strip_prefix(['T', 't']).unwrap_or(rest);
    rest = after_date.trim_start();
    if rest.is_empty() {
        return Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    let hour = number(&mut rest, 2)?;
    rest = rest.strip_prefix(':')?;
    let minute = number(&mut rest, 2)?;
    let mut second = 0;
    let mut micro = 0;
    if let Some(after) = rest.strip_prefix(':') {
        rest = after;
        second = number(&mut rest, 2)?;
        if let Some(after) = rest.strip_prefix(['.', ',']) {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            micro = format!("{:0<6}", &after[..len.min(6)]).parse().ok()?;
            rest = &after[len..];
        }
    }
    let time = Time::from_hms_micro(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        micro,
    )
    .ok()?;
    let zone = rest.trim();
    let offset = if zone.is_empty()
        || ["z", "utc", "gmt"]
            .iter()
            .any(|name| zone.eq_ignore_ascii_case(name))
    {
        time::UtcOffset::UTC
    } else {
        let (offset, left) = sluice_interp::strftime::take_offset(zone)?;
        if !left.is_empty() || offset.seconds_past_minute() != 0 {
            return None;
        }
        offset
    };
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
mod tests {
    //! Expected values come from the reference (airbyte-cdk 7.39.1 on CPython 3.11, glibc 2.36):
    //! `DatetimeParser().parse(value, format).isoformat()`, `DatetimeParser().format(dt, format)`,
    //! `isodate.parse_duration`, `ab_datetime_parse`.

    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn parse(value: &str, format: &str) -> Result<OffsetDateTime, String> {
        DatetimeFormat::new(format).parse(value)
    }

    fn ok(value: &str, format: &str) -> OffsetDateTime {
        parse(value, format).unwrap_or_else(|e| panic!("{value:?} with {format:?}: {e}"))
    }

    #[test]
    fn parses_epoch_formats() {
        assert_eq!(ok("1700000000", "%s"), datetime!(2023-11-14 22:13:20 UTC));
        assert_eq!(ok(" 1700000000 ", "%s"), datetime!(2023-11-14 22:13:20 UTC));
        assert_eq!(ok("1_000", "%s"), datetime!(1970-01-01 00:16:40 UTC));
        assert_eq!(ok("+5", "%s"), datetime!(1970-01-01 00:00:05 UTC));
        assert_eq!(ok("-5", "%s"), datetime!(1969-12-31 23:59:55 UTC));
        assert!(parse("1.5", "%s").is_err());
        assert_eq!(
            ok("1.5", "%s_as_float"),
            datetime!(1970-01-01 00:00:01.5 UTC)
        );
        assert_eq!(
            ok("1700000000.123456789", "%s_as_float"),
            datetime!(2023-11-14 22:13:20.123457 UTC)
        );
        assert_eq!(ok(" 2 ", "%s_as_float"), datetime!(1970-01-01 00:00:02 UTC));
        assert_eq!(ok("1e3", "%s_as_float"), datetime!(1970-01-01 00:16:40 UTC));
        assert!(parse("nan", "%s_as_float").is_err());
        assert!(parse("inf", "%s_as_float").is_err());
        assert_eq!(
            ok("1700000000123", "%ms"),
            datetime!(2023-11-14 22:13:20.123 UTC)
        );
        assert_eq!(ok("-1", "%ms"), datetime!(1969-12-31 23:59:59.999 UTC));
        assert_eq!(
            ok("1700000000123456", "%epoch_microseconds"),
            datetime!(2023-11-14 22:13:20.123456 UTC)
        );
    }

    #[test]
    fn parses_json_values_as_the_reference_receives_them() {
        let seconds = DatetimeFormat::new("%s");
        let at = |v: Value| seconds.parse_value(&v).unwrap().unwrap();
        assert_eq!(at(json!(1.5)), datetime!(1970-01-01 00:00:01 UTC));
        assert_eq!(at(json!(true)), datetime!(1970-01-01 00:00:01 UTC));
        assert_eq!(at(json!(1700000000)), datetime!(2023-11-14 22:13:20 UTC));
        assert!(seconds.parse_value(&json!(null)).is_none());
        // str(1700000000) with %Y leaves "000000"; str(1.5) does not match.
        let year = DatetimeFormat::new("%Y");
        assert!(year.parse_value(&json!(1700000000)).unwrap().is_err());
        assert!(year.parse_value(&json!(1.5)).unwrap().is_err());
        let formats = [
            DatetimeFormat::new("%Y-%m-%d"),
            DatetimeFormat::new("%Y-%m-%dT%H:%M:%S%z"),
            DatetimeFormat::new("%s"),
        ];
        assert_eq!(
            parse_any(&formats, &json!("2023-01-02T03:04:05-04:00")),
            Some(datetime!(2023-01-02 03:04:05 -4))
        );
        assert_eq!(
            parse_any(&formats, &json!("2023-01-02")),
            Some(datetime!(2023-01-02 0:00 UTC))
        );
        assert_eq!(
            parse_any(&formats, &json!(1700000000)),
            Some(datetime!(2023-11-14 22:13:20 UTC))
        );
        assert_eq!(parse_any(&formats, &json!("yesterday")), None);
        assert_eq!(parse_any(&formats, &json!(null)), None);
    }

    #[test]
    fn parses_strptime_directives() {
        let f = "%Y-%m-%dT%H:%M:%S.%f%z";
        assert_eq!(
            ok("2023-01-02T03:04:05.123456+0000", f),
            datetime!(2023-01-02 03:04:05.123456 UTC)
        );
        assert_eq!(
            ok("2023-01-02T03:04:05.1-04:00", f),
            datetime!(2023-01-02 03:04:05.1 -4)
        );
        let z = "%Y-%m-%dT%H:%M:%S%z";
        assert_eq!(
            ok("2023-01-02T03:04:05Z", z),
            datetime!(2023-01-02 03:04:05 UTC)
        );
        assert!(parse("2023-01-02T03:04:05z", z).is_err());
        assert!(parse("2023-01-02T03:04:05+01", z).is_err());
        assert_eq!(
            ok("2023-01-02T03:04:05+01:30:15", z),
            datetime!(2023-01-02 03:04:05 +1:30:15)
        );
        assert!(parse("2023-01-02T03:04:05+0130:15", z).is_err());
        assert!(parse("2023-01-02T03:04:05+2500", z).is_err());
        // Literal text matches case-insensitively.
        assert_eq!(
            ok("2023-01-02t03:04:05z", "%Y-%m-%dT%H:%M:%SZ"),
            datetime!(2023-01-02 03:04:05 UTC)
        );
        assert_eq!(
            ok("2023-01-02 03:04:05.1", "%Y-%m-%d %H:%M:%S.%_ms"),
            datetime!(2023-01-02 03:04:05.1 UTC)
        );
        assert_eq!(ok("2023-1-2", "%Y-%m-%d"), datetime!(2023-01-02 0:00 UTC));
        assert!(parse(" 2023-01-02", "%Y-%m-%d").is_err());
        assert_eq!(
            parse("2023-01-02 ", "%Y-%m-%d").unwrap_err(),
            "unconverted data remains:  "
        );
        assert_eq!(
            parse("2023-01-02T00:00:00", "%Y-%m-%d").unwrap_err(),
            "unconverted data remains: T00:00:00"
        );
        assert_eq!(
            ok("2023-01-02  03", "%Y-%m-%d %H"),
            datetime!(2023-01-02 03:00 UTC)
        );
        assert!(parse("2023-01-0203", "%Y-%m-%d %H").is_err());
        // The regular expression backtracks: day "3", month "10".
        assert_eq!(ok("310", "%d%m"), datetime!(1900-10-03 0:00 UTC));
        assert_eq!(ok("2023- 2", "%Y-%d"), datetime!(2023-01-02 0:00 UTC));
        assert_eq!(ok("01 PM", "%H %p"), datetime!(1900-01-01 01:00 UTC));
        assert_eq!(ok("01 PM", "%I %p"), datetime!(1900-01-01 13:00 UTC));
        assert_eq!(ok("12 am", "%I %p"), datetime!(1900-01-01 0:00 UTC));
        assert_eq!(ok("12", "%I"), datetime!(1900-01-01 0:00 UTC));
        assert_eq!(
            parse("13", "%I").unwrap_err(),
            "unconverted data remains: 3"
        );
        assert_eq!(
            ok("Mon, 02 Jan 2023 03:04:05 GMT", "%a, %d %b %Y %H:%M:%S %Z"),
            datetime!(2023-01-02 03:04:05 UTC)
        );
        assert_eq!(
            ok("Monday January 2 2023", "%A %B %d %Y"),
            datetime!(2023-01-02 0:00 UTC)
        );
        assert_eq!(ok("2023 UTC", "%Y %Z"), datetime!(2023-01-01 0:00 UTC));
        assert!(parse("2023 Z", "%Y %Z").is_err());
        assert!(parse("2023 EST", "%Y %Z").is_err());
        assert_eq!(ok("23", "%y"), datetime!(2023-01-01 0:00 UTC));
        assert_eq!(ok("69", "%y"), datetime!(1969-01-01 0:00 UTC));
        assert_eq!(ok("2023-032", "%Y-%j"), datetime!(2023-02-01 0:00 UTC));
        assert_eq!(ok("2023 05 1", "%Y %U %w"), datetime!(2023-01-30 0:00 UTC));
        assert_eq!(ok("2023 05 1", "%Y %W %u"), datetime!(2023-01-30 0:00 UTC));
        assert_eq!(ok("2023 05 1", "%G %V %u"), datetime!(2023-01-30 0:00 UTC));
        assert!(parse("2023 05", "%Y %V").is_err());
        assert_eq!(ok("01/02/23", "%x"), datetime!(2023-01-02 0:00 UTC));
        assert_eq!(ok("03:04:05", "%X"), datetime!(1900-01-01 03:04:05 UTC));
        assert_eq!(
            ok("Mon Jan  2 03:04:05 2023", "%c"),
            datetime!(2023-01-02 03:04:05 UTC)
        );
        assert_eq!(ok("Jan  2", "%b %d"), datetime!(1900-01-02 0:00 UTC));
        assert!(parse("02/29", "%m/%d").is_err());
        assert_eq!(
            parse("2023", "%q").unwrap_err(),
            "'q' is a bad directive in format '%q'"
        );
        assert_eq!(parse("2023", "%Y%").unwrap_err(), "stray % in format '%Y%'");
        assert!(parse("2023", "%-Y").is_err());
        assert_eq!(ok("2023%", "%Y%%"), datetime!(2023-01-01 0:00 UTC));
        assert_eq!(ok("2023.01", "%Y.%m"), datetime!(2023-01-01 0:00 UTC));
        assert!(parse("2023x01", "%Y.%m").is_err());
        assert!(parse("1700000000", "%Y%m%d").is_err());
        assert!(parse("2023-01-02 03:04:60", "%Y-%m-%d %H:%M:%S").is_err());
        assert!(parse("2023-01-02 24:00:00", "%Y-%m-%d %H:%M:%S").is_err());
        assert!(parse("2023-02-30", "%Y-%m-%d").is_err());
        assert_eq!(ok("0001-01-01", "%Y-%m-%d"), datetime!(0001-01-01 0:00 UTC));
        assert!(parse("0000-01-01", "%Y-%m-%d").is_err());
        assert!(parse("2023-01-02T03:04:05.1234567", "%Y-%m-%dT%H:%M:%S.%f").is_err());
    }

    fn fmt(dt: OffsetDateTime, format: &str) -> String {
        DatetimeFormat::new(format).format(dt)
    }

    #[test]
    fn formats_epochs_from_the_float_timestamp() {
        let dt = datetime!(2023-01-02 03:04:05.123456 UTC);
        assert_eq!(fmt(dt, "%s"), "1672628645");
        assert_eq!(fmt(dt, "%s_as_float"), "1672628645.123456");
        assert_eq!(fmt(dt, "%ms"), "1672628645123");
        assert_eq!(fmt(dt, "%epoch_microseconds"), "1672628645123456");
        let before = datetime!(1969-12-31 23:59:59.5 UTC);
        assert_eq!(fmt(before, "%s"), "0");
        assert_eq!(fmt(before, "%s_as_float"), "-0.5");
        assert_eq!(fmt(before, "%ms"), "-500");
        assert_eq!(fmt(before, "%epoch_microseconds"), "-500000");
        assert_eq!(fmt(before, "%s000"), "-1000");
        let east = datetime!(2023-01-02 03:04:05 -4);
        assert_eq!(fmt(east, "%s"), "1672643045");
        assert_eq!(fmt(east, "%s_as_float"), "1672643045.0");
        let first = datetime!(0001-01-01 0:00 UTC);
        assert_eq!(fmt(first, "%s"), "-62135596800");
        assert_eq!(fmt(first, "%epoch_microseconds"), "-62135596800000000");
    }

    #[test]
    fn formats_strftime_directives() {
        let dt = datetime!(2023-01-02 03:04:05.123456 UTC);
        assert_eq!(
            fmt(dt, "%Y-%m-%dT%H:%M:%S.%_msZ"),
            "2023-01-02T03:04:05.123Z"
        );
        assert_eq!(
            fmt(dt, "%Y-%m-%dT%H:%M:%S.%f%z"),
            "2023-01-02T03:04:05.123456+0000"
        );
        assert_eq!(
            fmt(dt, "%Y-%m-%dT%H:%M:%S%z %Z"),
            "2023-01-02T03:04:05+0000 UTC"
        );
        assert_eq!(
            fmt(
                dt,
                "%Y %y %C %G %g %V %U %W %j %u %w %a %A %b %B %h %p %I %e %D %F %T %R %c %x %X %n%t%%"
            ),
            "2023 23 20 2023 23 01 01 01 002 1 1 Mon Monday Jan January Jan AM 03  2 01/02/23 \
             2023-01-02 03:04:05 03:04 Mon Jan  2 03:04:05 2023 01/02/23 03:04:05 \n\t%"
        );
        assert_eq!(
            fmt(
                dt,
                "%-d %-m %-H %_d %k %l %P %r %s %q %Ey %Od %^a %#b %10Y %05d"
            ),
            "2 1 3  2  3  3 am 03:04:05 AM 1672628645 %q 23 02 MON JAN 0000002023 00002"
        );
        assert_eq!(fmt(dt, "%"), "%");
        assert_eq!(fmt(dt, "%Y%"), "2023%");
        assert_eq!(fmt(dt, "%_ms %_ms"), "123 123");
        // Every copy of the microsecond digits is replaced, %f included.
        assert_eq!(fmt(dt, "%f.%_ms"), "123.123");
        assert_eq!(fmt(dt, "%s000"), "1672628645000");

        let east = datetime!(2023-01-02 03:04:05 -4);
        assert_eq!(
            fmt(east, "%Y-%m-%dT%H:%M:%S.%_msZ"),
            "2023-01-02T03:04:05.000Z"
        );
        assert_eq!(
            fmt(east, "%Y-%m-%dT%H:%M:%S%z %Z"),
            "2023-01-02T03:04:05-0400 UTC-04:00"
        );
        assert_eq!(fmt(east, "%s000"), "1672628645000");
        let seconds_offset = datetime!(2023-01-02 03:04:05.12 +5:30:10);
        assert_eq!(
            fmt(seconds_offset, "%Y-%m-%dT%H:%M:%S%z %Z"),
            "2023-01-02T03:04:05+053010 UTC+05:30:10"
        );
        assert_eq!(fmt(seconds_offset, "%s_as_float"), "1672608835.12");

        let first = datetime!(0001-01-01 0:00 UTC);
        assert_eq!(
            fmt(first, "%Y-%m-%dT%H:%M:%S.%_msZ"),
            "1-01-01T00:00:00.000Z"
        );
        let pm = datetime!(2023-01-02 13:04:05 UTC);
        assert_eq!(
            fmt(
                pm,
                "%e|%-e|%0e|%_e|%3e|%k|%-k|%0k|%l|%_H|%-H|%5H|%-5H|%_5H|%05e"
            ),
            " 2|2|02| 2|  2|13|13|13| 1|13|13|00013|   13|   13|00002"
        );
        assert_eq!(
            fmt(
                pm,
                "%^p|%#p|%^P|%#P|%^a|%#a|%^B|%#Z|%^Z|%10a|%-10a|%_10a|%010a|%^10b"
            ),
            "PM|pm|pm|pm|MON|MON|JANUARY|||       Mon|       Mon|       Mon|0000000Mon|       JAN"
        );
        assert_eq!(
            fmt(pm, "%Ea|%Ez|%Od|%EY|%Oy|%OH|%EC|%Ex|%Oe|%OS"),
            "%Ea||02|2023|23|13|20|01/02/23| 2|05"
        );
        assert_eq!(
            fmt(pm, "%-q|%5q|%+Y|%:z|%10z|%Q|%5%|%-%"),
            "%-q|  %5q|%+Y|%:z||%Q|    %|%"
        );
        assert_eq!(
            fmt(pm, "%10f|%-f|%%f|%5Z|%15s"),
            "      %10f|%-f|%f|     |     1672664645"
        );
        for (year, expected) in [
            (1, "1|0|1|01|01"),
            (5, "5|0|4|04|05"),
            (999, "999|9|999|99|99"),
            (1000, "1000|10|1000|00|00"),
        ] {
            let dt = PrimitiveDateTime::new(
                Date::from_calendar_date(year, Month::January, 2).unwrap(),
                Time::from_hms(3, 4, 5).unwrap(),
            )
            .assume_utc();
            assert_eq!(fmt(dt, "%Y|%C|%G|%g|%y"), expected, "{year}");
        }
    }

    #[test]
    fn formats_round_trip() {
        let format = DatetimeFormat::new("%Y-%m-%dT%H:%M:%S.%f%z");
        let dt = datetime!(2023-01-02 03:04:05.123456 -4);
        assert_eq!(format.parse(&format.format(dt)), Ok(dt));
        assert_eq!(format, DatetimeFormat::new("%Y-%m-%dT%H:%M:%S.%f%z"));
        assert_eq!(format.pattern(), "%Y-%m-%dT%H:%M:%S.%f%z");
    }

    #[test]
    fn durations_read_and_apply_like_isodate() {
        let d = |text: &str| IsoDuration::parse(text).unwrap();
        let day = 86_400_000_000;
        assert_eq!(
            d("P1D"),
            IsoDuration {
                months: 0,
                micros: day
            }
        );
        assert_eq!(
            d("PT1S"),
            IsoDuration {
                months: 0,
                micros: 1_000_000
            }
        );
        assert_eq!(
            d("P1M"),
            IsoDuration {
                months: 1,
                micros: 0
            }
        );
        assert_eq!(
            d("P1Y"),
            IsoDuration {
                months: 12,
                micros: 0
            }
        );
        assert_eq!(
            d("P1W"),
            IsoDuration {
                months: 0,
                micros: 7 * day
            }
        );
        assert_eq!(
            d("PT0.5S"),
            IsoDuration {
                months: 0,
                micros: 500_000
            }
        );
        assert!(d("PT").is_zero());
        assert_eq!(d("P1DT"), d("P1D"));
        assert_eq!(d("-P1D").micros, -day);
        assert_eq!(d("+P1D"), d("P1D"));
        assert_eq!(d("P1,5D").micros, day + day / 2);
        assert_eq!(d("PT0.0000005S").micros, 0);
        assert_eq!(d("PT0.0000015S").micros, 2);
        assert_eq!(d("PT0.0000025S").micros, 2);
        assert_eq!(d("P1.5W").micros, 10 * day + day / 2);
        assert_eq!(
            d("P1Y2M3W4DT5H6M7.5S"),
            IsoDuration {
                months: 14,
                micros: 25 * day + 18_367_500_000
            }
        );
        for bad in [
            "P", "p1d", "P1d", " P1D", "P1D ", "PT1H1H", "P1M1Y", "PT-1S", "P1e3D",
        ] {
            assert!(IsoDuration::parse(bad).is_err(), "{bad}");
        }
        let cases = [
            ("2020-01-31", "P1M", "2020-02-29", "2019-12-31"),
            ("2020-03-31", "-P1M", "2020-02-29", "2020-04-30"),
            ("2020-02-29", "P1Y", "2021-02-28", "2019-02-28"),
            ("2020-12-15", "P1M", "2021-01-15", "2020-11-15"),
            ("2020-01-31", "P13M", "2021-02-28", "2018-12-31"),
        ];
        let day_format = DatetimeFormat::new("%Y-%m-%d");
        for (base, duration, plus, minus) in cases {
            let base_dt = day_format.parse(base).unwrap();
            let duration = d(duration);
            assert_eq!(day_format.format(duration.add_to(base_dt).unwrap()), plus);
            assert_eq!(
                day_format.format(duration.sub_from(base_dt).unwrap()),
                minus
            );
        }
        let base = datetime!(2020-01-31 10:00 UTC);
        assert_eq!(d("P1M1D").add_to(base), Ok(datetime!(2020-03-01 10:00 UTC)));
        assert_eq!(
            d("P1M1D").sub_from(base),
            Ok(datetime!(2019-12-30 10:00 UTC))
        );
        assert!(d("P1M").add_to(datetime!(9999-12-01 0:00 UTC)).is_err());
        assert!(d("-PT1S").add_to(datetime!(0001-01-01 0:00 UTC)).is_err());
        assert_eq!(
            d("-PT1S").sub_from(datetime!(0001-01-01 0:00 UTC)),
            Ok(datetime!(0001-01-01 0:00:01 UTC))
        );
    }

    #[test]
    fn flexible_parsing_follows_ab_datetime_parse() {
        let ok = |text: &str| parse_flexible(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            ok("2023-03-14T15:09:26Z"),
            datetime!(2023-03-14 15:09:26 UTC)
        );
        assert_eq!(
            ok("2023-03-14T15:09:26.123456789Z"),
            datetime!(2023-03-14 15:09:26.123456 UTC)
        );
        assert_eq!(
            ok("2023-03-14 15:09:26+02:00"),
            datetime!(2023-03-14 15:09:26 +2)
        );
        assert_eq!(
            ok("2023-03-14T15:09:26-0400"),
            datetime!(2023-03-14 15:09:26 -4)
        );
        assert_eq!(ok("2023-03-14"), datetime!(2023-03-14 0:00 UTC));
        assert_eq!(ok("2023-3-4"), datetime!(2023-03-04 0:00 UTC));
        assert_eq!(
            parse_flexible("2023-02-30").unwrap_err(),
            "Invalid date format: 2023-02-30"
        );
        assert!(parse_flexible("2023-13-01").is_err());
        assert_eq!(ok("20230314"), datetime!(1970-08-23 03:31:54 UTC));
        assert_eq!(ok("1678806566"), datetime!(2023-03-14 15:09:26 UTC));
        assert_eq!(
            parse_flexible("-5").unwrap_err(),
            "Timestamp cannot be negative"
        );
        assert_eq!(
            parse_flexible("12345678901").unwrap_err(),
            "Timestamp value too large"
        );
        assert_eq!(ok("0001"), datetime!(1970-01-01 00:00:01 UTC));
        assert_eq!(ok("2023-03-14T15:09"), datetime!(2023-03-14 15:09 UTC));
        assert!(parse_flexible("2023-03-14T15").is_err());
        assert_eq!(
            ok("2023/03/14 15:09:26"),
            datetime!(2023-03-14 15:09:26 UTC)
        );
        assert!(parse_flexible("15:09:26").is_err());
        assert!(parse_flexible("2023-03-14T25:00:00").is_err());
        assert!(parse_flexible("2023-03-14T24:00:00").is_err());
        assert_eq!(
            ok("2023-03-14T15:09:26 UTC"),
            datetime!(2023-03-14 15:09:26 UTC)
        );
        assert!(parse_flexible("2023-03-14T15:09:26+05:30:10").is_err());
        assert_eq!(ok("  2023-03-14"), datetime!(2023-03-14 0:00 UTC));
        assert!(parse_flexible("").is_err());
        assert!(parse_flexible(" 1678806566").is_err());
    }
}
