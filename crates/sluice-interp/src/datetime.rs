//! Python `datetime`, `date` and `timedelta`/`isodate.Duration` values for templates.
//!
//! Manifests call methods on the values that `now_utc()`, `today_utc()`, `str_to_datetime()` and
//! `duration()` return (`now_utc().strftime(...)`, `(now_utc() - duration('P1D')).isoformat()`),
//! and the rendered text of these values is Python's `str()` of them, so both follow CPython.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr, from_args};
use minijinja::{Error, ErrorKind, State, Value};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::strftime;

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;

/// A timezone-aware Python `datetime.datetime` (the reference only produces aware ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyDateTime(pub OffsetDateTime);

/// A Python `datetime.date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyDate(pub Date);

/// A Python `timedelta`, or an `isodate.Duration` when `months` is not zero (ISO 8601 years and
/// months have no fixed length, so they are kept apart and applied on the calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyDuration {
    pub months: i64,
    pub micros: i128,
}

pub fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

impl PyDateTime {
    /// The current time with Python's microsecond precision.
    pub fn now_utc() -> PyDateTime {
        PyDateTime(crate::pytime::now_utc())
    }

    pub fn strftime(&self, pattern: &str) -> String {
        strftime::format(
            PrimitiveDateTime::new(self.0.date(), self.0.time()),
            Some(self.0.offset()),
            pattern,
        )
    }

    /// Seconds since the epoch as Python's `datetime.timestamp()` float.
    pub fn timestamp(&self) -> f64 {
        crate::pytime::timestamp(self.0)
    }

    pub fn isoformat(&self, sep: &str, timespec: &str) -> Result<String, Error> {
        let d = self.0;
        let clock = match timespec {
            "auto" if d.microsecond() == 0 => {
                format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second())
            }
            "auto" | "microseconds" => format!(
                "{:02}:{:02}:{:02}.{:06}",
                d.hour(),
                d.minute(),
                d.second(),
                d.microsecond()
            ),
            "milliseconds" => format!(
                "{:02}:{:02}:{:02}.{:03}",
                d.hour(),
                d.minute(),
                d.second(),
                d.millisecond()
            ),
            "seconds" => format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second()),
            "minutes" => format!("{:02}:{:02}", d.hour(), d.minute()),
            "hours" => format!("{:02}", d.hour()),
            other => return Err(invalid(format!("Unknown timespec value: {other:?}"))),
        };
        Ok(format!(
            "{}{sep}{clock}{}",
            format_date(d.date()),
            strftime::format_offset(d.offset(), true)
        ))
    }
}

impl fmt::Display for PyDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.isoformat(" ", "auto") {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl PyDuration {
    pub fn from_micros(micros: i128) -> PyDuration {
        PyDuration { months: 0, micros }
    }

    /// `-duration`.
    pub fn negate(self) -> PyDuration {
        PyDuration {
            months: -self.months,
            micros: -self.micros,
        }
    }

    fn to_time_duration(self) -> Result<Duration, Error> {
        let seconds = i64::try_from(self.micros.div_euclid(MICROS_PER_SECOND))
            .map_err(|_| invalid("duration out of range"))?;
        let micros = self.micros.rem_euclid(MICROS_PER_SECOND) as i32;
        Ok(Duration::new(seconds, micros * 1000))
    }

    /// `dt + duration` as `isodate` computes it: calendar months first (the day clamped to the
    /// month's length), then the fixed part, on the wall clock; the result must stay within
    /// Python's years 1 to 9999.
    pub fn add_to(self, dt: OffsetDateTime) -> Result<OffsetDateTime, String> {
        shift_datetime(dt, self)
            .map_err(|e| e.detail().unwrap_or("date value out of range").to_string())
    }
}

impl fmt::Display for PyDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let years = self.months / 12;
        let months = self.months % 12;
        if years != 0 {
            write!(f, "{years} years, ")?;
        }
        if months != 0 {
            let unit = if months <= 1 { "month" } else { "months" };
            write!(f, "{months} {unit}, ")?;
        }
        let days = self.micros.div_euclid(MICROS_PER_DAY);
        let rest = self.micros.rem_euclid(MICROS_PER_DAY);
        if days != 0 {
            let unit = if days.abs() == 1 { "day" } else { "days" };
            write!(f, "{days} {unit}, ")?;
        }
        let seconds = rest / MICROS_PER_SECOND;
        let micros = rest % MICROS_PER_SECOND;
        write!(
            f,
            "{}:{:02}:{:02}",
            seconds / 3600,
            (seconds / 60) % 60,
            seconds % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// Parses an ISO 8601 duration (`P1D`, `PT1H30M`, `-P1Y2M`, `P1W`, `PT0.5S`, `P1,5D`) like
/// `isodate.parse_duration`: units in the order Y M W D, then T and H M S, each a number with an
/// optional `.`/`,` fraction; `PT` and a trailing `T` are zero. Fractions of a second round to
/// microseconds half to even, as `timedelta` does. Differences: fractional years or months are
/// rejected here (`isodate` accepts them but cannot add them to a date), and the alternative
/// `PYYYY-MM-DDThh:mm:ss` form is not supported.
pub fn parse_duration(text: &str) -> Result<PyDuration, String> {
    let bad = || format!("Unable to parse duration string {text:?}");
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let body = body.strip_prefix('P').ok_or_else(bad)?;
    if body.is_empty() {
        return Err(bad());
    }
    let (date_part, time_part) = match body.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (body, None),
    };
    let mut months: i64 = 0;
    let mut micros: f64 = 0.0;
    let mut consume = |part: &str, units: &[(char, Option<i64>, f64)]| -> Result<(), String> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let position = units[next_unit..]
                .iter()
                .position(|(unit, _, _)| *unit == c)
                .ok_or_else(bad)?;
            next_unit += position + 1;
            let (_, month_factor, micro_factor) = units[next_unit - 1];
            let well_formed = match number.split_once('.') {
                Some((whole, fraction)) => {
                    !whole.is_empty()
                        && !fraction.is_empty()
                        && fraction.bytes().all(|b| b.is_ascii_digit())
                }
                None => !number.is_empty(),
            };
            if !well_formed {
                return Err(bad());
            }
            let value: f64 = number.parse().map_err(|_| bad())?;
            match month_factor {
                Some(factor) => {
                    if value.fract() != 0.0 {
                        return Err(bad());
                    }
                    months = months
                        .checked_add((value as i64).checked_mul(factor).ok_or_else(bad)?)
                        .ok_or_else(bad)?;
                }
                None => micros += value * micro_factor,
            }
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    let day = 86_400e6;
    consume(
        date_part,
        &[
            ('Y', Some(12), 0.0),
            ('M', Some(1), 0.0),
            ('W', None, 7.0 * day),
            ('D', None, day),
        ],
    )?;
    if let Some(time_part) = time_part {
        consume(
            time_part,
            &[('H', None, 3600e6), ('M', None, 60e6), ('S', None, 1e6)],
        )?;
    }
    // timedelta's limit: 999999999 days.
    if micros.abs() >= 1e9 * day {
        return Err(format!("days overflow in duration {text:?}"));
    }
    let duration = PyDuration {
        months,
        micros: micros.round_ties_even() as i128,
    };
    Ok(if negative {
        duration.negate()
    } else {
        duration
    })
}

/// Parses ISO 8601 text the way `dateutil.parser.isoparse` does: `2022-01-14`, `20220114`,
/// `2022-01`, `2022-01-01T13:45:30.123Z`, `2022-01-01 13:45+02:00`; no zone means UTC.
pub fn isoparse(text: &str) -> Result<OffsetDateTime, String> {
    let bad = || format!("invalid ISO 8601 datetime: {text:?}");
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = text.get(from..from + len)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = digits(0, 4).ok_or_else(bad)? as i32;
    let (month, day, mut pos) = if bytes.get(4) == Some(&b'-') {
        let month = digits(5, 2).ok_or_else(bad)?;
        if bytes.get(7) == Some(&b'-') {
            (month, digits(8, 2).ok_or_else(bad)?, 10)
        } else {
            (month, 1, 7)
        }
    } else if bytes.len() >= 8 && digits(4, 4).is_some() {
        (
            digits(4, 2).ok_or_else(bad)?,
            digits(6, 2).ok_or_else(bad)?,
            8,
        )
    } else {
        (1, 1, 4)
    };
    let month = Month::try_from(month as u8).map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, month, day as u8).map_err(|_| bad())?;
    let mut clock = [0u32; 3];
    let mut micro = 0u32;
    let mut offset = UtcOffset::UTC;
    if pos < text.len() {
        // Any single character separates the date from the time.
        pos += text[pos..].chars().next().map_or(1, char::len_utf8);
        let with_colons = bytes.get(pos + 2) == Some(&b':');
        for (index, slot) in clock.iter_mut().enumerate() {
            match digits(pos, 2) {
                Some(value) => {
                    *slot = value;
                    pos += 2;
                }
                None if index == 0 => return Err(bad()),
                None => break,
            }
            if with_colons && index < 2 && bytes.get(pos) == Some(&b':') {
                pos += 1;
            } else if with_colons {
                break;
            }
        }
        if matches!(bytes.get(pos), Some(b'.' | b',')) {
            pos += 1;
            let fraction: String = text[pos..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if fraction.is_empty() {
                return Err(bad());
            }
            pos += fraction.len();
            let padded: String = format!("{fraction:0<6}").chars().take(6).collect();
            micro = padded.parse().map_err(|_| bad())?;
        }
        if pos < text.len() {
            let (parsed, rest) = strftime::take_offset(&text[pos..]).ok_or_else(bad)?;
            if !rest.is_empty() {
                return Err(bad());
            }
            offset = parsed;
        }
    }
    let (hour, minute, second) = (clock[0] as u8, clock[1] as u8, clock[2] as u8);
    // ISO 8601 allows 24:00 for the end of a day.
    let (date, hour) = if hour == 24 && minute == 0 && second == 0 && micro == 0 {
        (date.next_day().ok_or_else(bad)?, 0)
    } else {
        (date, hour)
    };
    let time = Time::from_hms_micro(hour, minute, second, micro).map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// Adds `months` on the calendar, clamping the day to the month's length as `isodate` does.
fn add_months(date: Date, months: i64) -> Result<Date, Error> {
    if months == 0 {
        return Ok(date);
    }
    let zero_based = i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 + months;
    let year =
        i32::try_from(zero_based.div_euclid(12)).map_err(|_| invalid("date out of range"))?;
    let month = Month::try_from((zero_based.rem_euclid(12) + 1) as u8)
        .map_err(|_| invalid("date out of range"))?;
    let day = date.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).map_err(|e| invalid(e.to_string()))
}

fn shift_datetime(dt: OffsetDateTime, duration: PyDuration) -> Result<OffsetDateTime, Error> {
    let date = add_months(dt.date(), duration.months)?;
    if !(1..=9999).contains(&date.year()) {
        return Err(invalid(format!("year {} is out of range", date.year())));
    }
    dt.replace_date(date)
        .checked_add(duration.to_time_duration()?)
        .filter(|shifted| (1..=9999).contains(&shifted.year()))
        .ok_or_else(|| invalid("date value out of range"))
}

fn shift_date(date: Date, duration: PyDuration) -> Result<Date, Error> {
    // Python's date + timedelta only uses the whole days.
    let date = add_months(date, duration.months)?;
    let days = i64::try_from(duration.micros.div_euclid(MICROS_PER_DAY))
        .map_err(|_| invalid("date out of range"))?;
    date.checked_add(Duration::days(days))
        .ok_or_else(|| invalid("date out of range"))
}

fn micros_between(a: OffsetDateTime, b: OffsetDateTime) -> i128 {
    (a - b).whole_microseconds()
}

/// Python `+` for datetimes and durations; `None` when neither operand is one of them.
pub fn py_add(lhs: &Value, rhs: &Value) -> Option<Result<Value, Error>> {
    let (l, r) = (Operand::of(lhs), Operand::of(rhs));
    let result = match (l, r) {
        (Operand::Other, Operand::Other) => return None,
        (Operand::DateTime(dt), Operand::Duration(d))
        | (Operand::Duration(d), Operand::DateTime(dt)) => {
            shift_datetime(dt.0, d).map(|v| Value::from_object(PyDateTime(v)))
        }
        (Operand::Date(date), Operand::Duration(d))
        | (Operand::Duration(d), Operand::Date(date)) => {
            shift_date(date.0, d).map(|v| Value::from_object(PyDate(v)))
        }
        (Operand::Duration(a), Operand::Duration(b)) => Ok(Value::from_object(PyDuration {
            months: a.months + b.months,
            micros: a.micros + b.micros,
        })),
        _ => Err(unsupported("+", lhs, rhs)),
    };
    Some(result)
}

/// Python `-` for datetimes and durations; `None` when neither operand is one of them.
pub fn py_sub(lhs: &Value, rhs: &Value) -> Option<Result<Value, Error>> {
    let (l, r) = (Operand::of(lhs), Operand::of(rhs));
    let result = match (l, r) {
        (Operand::Other, Operand::Other) => return None,
        (Operand::DateTime(dt), Operand::Duration(d)) => {
            shift_datetime(dt.0, d.negate()).map(|v| Value::from_object(PyDateTime(v)))
        }
        (Operand::Date(date), Operand::Duration(d)) => {
            shift_date(date.0, d.negate()).map(|v| Value::from_object(PyDate(v)))
        }
        (Operand::DateTime(a), Operand::DateTime(b)) => Ok(Value::from_object(
            PyDuration::from_micros(micros_between(a.0, b.0)),
        )),
        (Operand::Date(a), Operand::Date(b)) => Ok(Value::from_object(PyDuration::from_micros(
            i128::from((a.0 - b.0).whole_days()) * MICROS_PER_DAY,
        ))),
        (Operand::Duration(a), Operand::Duration(b)) => Ok(Value::from_object(PyDuration {
            months: a.months - b.months,
            micros: a.micros - b.micros,
        })),
        _ => Err(unsupported("-", lhs, rhs)),
    };
    Some(result)
}

fn unsupported(op: &str, lhs: &Value, rhs: &Value) -> Error {
    invalid(format!(
        "unsupported operand types for {op}: {} and {}",
        type_name(lhs),
        type_name(rhs)
    ))
}

fn type_name(value: &Value) -> String {
    match Operand::of(value) {
        Operand::DateTime(_) => "datetime".into(),
        Operand::Date(_) => "date".into(),
        Operand::Duration(_) => "timedelta".into(),
        Operand::Other => value.kind().to_string(),
    }
}

enum Operand {
    DateTime(PyDateTime),
    Date(PyDate),
    Duration(PyDuration),
    Other,
}

impl Operand {
    fn of(value: &Value) -> Operand {
        if let Some(dt) = value.downcast_object_ref::<PyDateTime>() {
            Operand::DateTime(*dt)
        } else if let Some(date) = value.downcast_object_ref::<PyDate>() {
            Operand::Date(*date)
        } else if let Some(duration) = value.downcast_object_ref::<PyDuration>() {
            Operand::Duration(*duration)
        } else {
            Operand::Other
        }
    }
}

fn date_attribute(date: Date, name: &str) -> Option<Value> {
    Some(Value::from(match name {
        "year" => date.year(),
        "month" => i32::from(u8::from(date.month())),
        "day" => i32::from(date.day()),
        _ => return None,
    }))
}

fn strftime_arg(args: &[Value]) -> Result<String, Error> {
    let (pattern,): (&str,) = from_args(args)?;
    Ok(pattern.to_string())
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let d = self.0;
        let name = key.as_str()?;
        date_attribute(d.date(), name).or_else(|| {
            Some(Value::from(match name {
                "hour" => u32::from(d.hour()),
                "minute" => u32::from(d.minute()),
                "second" => u32::from(d.second()),
                "microsecond" => d.microsecond(),
                _ => return None,
            }))
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => Ok(Value::from(self.strftime(&strftime_arg(args)?))),
            "isoformat" => {
                let (sep, timespec, kwargs): (Option<&str>, Option<&str>, Kwargs) =
                    from_args(args)?;
                let sep = kwargs.get::<Option<&str>>("sep")?.or(sep).unwrap_or("T");
                let timespec = kwargs
                    .get::<Option<&str>>("timespec")?
                    .or(timespec)
                    .unwrap_or("auto");
                kwargs.assert_all_used()?;
                Ok(Value::from(self.isoformat(sep, timespec)?))
            }
            "timestamp" => {
                from_args::<()>(args)?;
                Ok(Value::from(self.timestamp()))
            }
            "date" => {
                from_args::<()>(args)?;
                Ok(Value::from_object(PyDate(self.0.date())))
            }
            // Every datetime here is already in UTC or a fixed offset; UTC is what manifests want.
            "astimezone" => Ok(Value::from_object(PyDateTime(
                self.0.to_offset(UtcOffset::UTC),
            ))),
            "weekday" => Ok(Value::from(self.0.weekday().number_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.0.weekday().number_from_monday())),
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let mut dt = self.0;
                let field = |name: &str| kwargs.get::<Option<i64>>(name);
                let narrow =
                    |v: i64| u8::try_from(v).map_err(|_| invalid(format!("{v} out of range")));
                if let Some(v) = field("year")? {
                    let year = i32::try_from(v).map_err(|_| invalid("year out of range"))?;
                    dt = dt.replace_year(year).map_err(|e| invalid(e.to_string()))?;
                }
                if let Some(v) = field("month")? {
                    let month = Month::try_from(narrow(v)?).map_err(|e| invalid(e.to_string()))?;
                    dt = dt
                        .replace_month(month)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                if let Some(v) = field("day")? {
                    dt = dt
                        .replace_day(narrow(v)?)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                if let Some(v) = field("hour")? {
                    dt = dt
                        .replace_hour(narrow(v)?)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                if let Some(v) = field("minute")? {
                    dt = dt
                        .replace_minute(narrow(v)?)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                if let Some(v) = field("second")? {
                    dt = dt
                        .replace_second(narrow(v)?)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                if let Some(v) = field("microsecond")? {
                    let micro =
                        u32::try_from(v).map_err(|_| invalid("microsecond out of range"))?;
                    dt = dt
                        .replace_microsecond(micro)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                kwargs.assert_all_used()?;
                Ok(Value::from_object(PyDateTime(dt)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        date_attribute(self.0, key.as_str()?)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => Ok(Value::from(strftime::format(
                PrimitiveDateTime::new(self.0, Time::MIDNIGHT),
                None,
                &strftime_arg(args)?,
            ))),
            "isoformat" => {
                from_args::<()>(args)?;
                Ok(Value::from(format_date(self.0)))
            }
            "weekday" => Ok(Value::from(self.0.weekday().number_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.0.weekday().number_from_monday())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_date(self.0))
    }
}

impl Object for PyDuration {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let value = match key.as_str()? {
            "days" => self.micros.div_euclid(MICROS_PER_DAY),
            "seconds" => self.micros.rem_euclid(MICROS_PER_DAY) / MICROS_PER_SECOND,
            "microseconds" => self.micros.rem_euclid(MICROS_PER_SECOND),
            "years" => i128::from(self.months / 12),
            "months" => i128::from(self.months % 12),
            _ => return None,
        };
        i64::try_from(value).ok().map(Value::from)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" if self.months == 0 => {
                from_args::<()>(args)?;
                Ok(Value::from(self.micros as f64 / 1e6))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some((self.months, self.micros).cmp(&(other.months, other.micros)))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn durations_print_like_python() {
        let cases = [
            ("P1D", "1 day, 0:00:00"),
            ("P6DT23H", "6 days, 23:00:00"),
            ("PT1H30M", "1:30:00"),
            ("P1Y", "1 years, 0:00:00"),
            ("P1M", "1 month, 0:00:00"),
            ("P2Y3M", "2 years, 3 months, 0:00:00"),
            ("PT0.5S", "0:00:00.500000"),
            ("-P1D", "-1 day, 0:00:00"),
            ("P1W", "7 days, 0:00:00"),
            ("PT36H", "1 day, 12:00:00"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_duration(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        assert!(parse_duration("P1DT-1H").is_err());
        assert!(parse_duration("1D").is_err());
        assert!(parse_duration("P").is_err());
    }

    #[test]
    fn isoparse_accepts_dateutil_forms() {
        let cases = [
            ("2022-01-14", datetime!(2022-01-14 0:00 UTC)),
            ("20220114", datetime!(2022-01-14 0:00 UTC)),
            ("2022-01-01 13:45:30", datetime!(2022-01-01 13:45:30 UTC)),
            (
                "2022-01-01T13:45:30+00:00",
                datetime!(2022-01-01 13:45:30 UTC),
            ),
            (
                "2022-01-01T13:45:30.123456Z",
                datetime!(2022-01-01 13:45:30.123456 UTC),
            ),
            ("2022-02-28T00:00:00-08:00", datetime!(2022-02-28 0:00 -8)),
            ("2022-01-01T13:45", datetime!(2022-01-01 13:45 UTC)),
        ];
        for (input, expected) in cases {
            assert_eq!(isoparse(input).unwrap(), expected, "{input}");
        }
        assert!(isoparse("yesterday").is_err());
        assert!(isoparse("2022-13-01").is_err());
    }

    #[test]
    fn month_arithmetic_clamps_the_day() {
        let dt = PyDateTime(datetime!(2020-03-31 0:00 UTC));
        let result = py_sub(
            &Value::from_object(dt),
            &Value::from_object(parse_duration("P1M").unwrap()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(result.to_string(), "2020-02-29 00:00:00+00:00");
    }
}
