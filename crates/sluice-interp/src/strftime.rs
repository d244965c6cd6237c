//! Python-compatible `strftime`/`strptime` on top of the `time` crate.
//!
//! Manifests carry Python format strings (`%Y-%m-%dT%H:%M:%S.%f%z`), so the directive set and the
//! padding follow CPython on glibc, including the `-` flag (`%-d`) and unknown directives being
//! copied through unchanged.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

const WEEKDAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Formats `dt` (wall clock) with a Python `strftime` pattern; `offset` is `None` for naive values
/// such as dates, which then format `%z`/`%Z` as empty strings, as Python does.
pub fn format(dt: PrimitiveDateTime, offset: Option<UtcOffset>, pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let no_pad = chars.peek() == Some(&'-');
        if no_pad {
            chars.next();
        }
        let Some(directive) = chars.next() else {
            out.push('%');
            if no_pad {
                out.push('-');
            }
            break;
        };
        let num = |out: &mut String, value: i64, width: usize| {
            if no_pad {
                out.push_str(&value.to_string());
            } else {
                out.push_str(&format!("{value:0width$}"));
            }
        };
        let weekday = dt.weekday();
        match directive {
            'Y' => out.push_str(&format!("{:04}", dt.year())),
            'y' => num(&mut out, i64::from(dt.year().rem_euclid(100)), 2),
            'C' => num(&mut out, i64::from(dt.year().div_euclid(100)), 2),
            'm' => num(&mut out, i64::from(u8::from(dt.month())), 2),
            'd' => num(&mut out, i64::from(dt.day()), 2),
            'e' => out.push_str(&format!("{:>2}", dt.day())),
            'H' => num(&mut out, i64::from(dt.hour()), 2),
            'I' => num(&mut out, i64::from(twelve_hour(dt.hour())), 2),
            'M' => num(&mut out, i64::from(dt.minute()), 2),
            'S' => num(&mut out, i64::from(dt.second()), 2),
            'f' => out.push_str(&format!("{:06}", dt.microsecond())),
            'j' => num(&mut out, i64::from(dt.ordinal()), 3),
            'p' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
            'a' => out.push_str(&WEEKDAY_NAMES[weekday_index(weekday)][..3]),
            'A' => out.push_str(WEEKDAY_NAMES[weekday_index(weekday)]),
            'b' | 'h' => out.push_str(&MONTH_NAMES[usize::from(u8::from(dt.month())) - 1][..3]),
            'B' => out.push_str(MONTH_NAMES[usize::from(u8::from(dt.month())) - 1]),
            'w' => out.push_str(&weekday.number_days_from_sunday().to_string()),
            'u' => out.push_str(&weekday.number_from_monday().to_string()),
            'U' => num(&mut out, i64::from(dt.sunday_based_week()), 2),
            'W' => num(&mut out, i64::from(dt.monday_based_week()), 2),
            'V' => num(&mut out, i64::from(dt.iso_week()), 2),
            'G' => out.push_str(&format!("{:04}", dt.to_iso_week_date().0)),
            'z' => {
                if let Some(offset) = offset {
                    out.push_str(&format_offset(offset, false));
                }
            }
            'Z' => {
                if let Some(offset) = offset {
                    if offset.is_utc() {
                        out.push_str("UTC");
                    } else {
                        out.push_str(&format!("UTC{}", format_offset(offset, true)));
                    }
                }
            }
            // glibc's %s reads the wall clock in the process time zone; the reference runs in UTC.
            's' => out.push_str(&dt.assume_utc().unix_timestamp().to_string()),
            'D' => out.push_str(&format(dt, offset, "%m/%d/%y")),
            'F' => out.push_str(&format(dt, offset, "%Y-%m-%d")),
            'T' => out.push_str(&format(dt, offset, "%H:%M:%S")),
            'R' => out.push_str(&format(dt, offset, "%H:%M")),
            'c' => out.push_str(&format(dt, offset, "%a %b %e %H:%M:%S %Y")),
            'x' => out.push_str(&format(dt, offset, "%m/%d/%y")),
            'X' => out.push_str(&format(dt, offset, "%H:%M:%S")),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            '%' => out.push('%'),
            other => {
                out.push('%');
                if no_pad {
                    out.push('-');
                }
                out.push(other);
            }
        }
    }
    out
}

fn twelve_hour(hour: u8) -> u8 {
    match hour % 12 {
        0 => 12,
        h => h,
    }
}

fn weekday_index(weekday: Weekday) -> usize {
    usize::from(weekday.number_days_from_monday())
}

/// `+HHMM` (strftime `%z`) or `+HH:MM` (isoformat), with seconds when the offset has them.
pub fn format_offset(offset: UtcOffset, colon: bool) -> String {
    let sign = if offset.is_negative() { '-' } else { '+' };
    let (h, m, s) = offset.as_hms();
    let sep = if colon { ":" } else { "" };
    let mut text = format!("{sign}{:02}{sep}{:02}", h.unsigned_abs(), m.unsigned_abs());
    if s != 0 {
        text.push_str(&format!("{sep}{:02}", s.unsigned_abs()));
    }
    text
}

/// A parsed `strptime` result: wall clock plus the offset when the pattern had `%z`/`%Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub datetime: PrimitiveDateTime,
    pub offset: Option<UtcOffset>,
}

impl Parsed {
    /// Python's convention in the reference: naive results are taken as UTC.
    pub fn assume_utc_if_naive(self) -> OffsetDateTime {
        self.datetime
            .assume_offset(self.offset.unwrap_or(UtcOffset::UTC))
    }
}

/// Parses `input` with a Python `strptime` pattern. The whole input must be consumed.
pub fn parse(input: &str, pattern: &str) -> Result<Parsed, String> {
    let mismatch = || format!("time data {input:?} does not match format {pattern:?}");
    let mut year = 1900i32;
    let mut month = 1u8;
    let mut day = 1u8;
    let mut hour = 0u8;
    let mut minute = 0u8;
    let mut second = 0u8;
    let mut micro = 0u32;
    let mut pm: Option<bool> = None;
    let mut ordinal: Option<u16> = None;
    let mut offset: Option<UtcOffset> = None;

    let mut rest = input;
    let mut pat = pattern.chars().peekable();
    while let Some(c) = pat.next() {
        if c != '%' {
            if c.is_whitespace() {
                // Python: whitespace in the pattern matches any amount of whitespace.
                rest = rest.trim_start();
                continue;
            }
            rest = rest.strip_prefix(c).ok_or_else(mismatch)?;
            continue;
        }
        let directive = pat.next().ok_or_else(mismatch)?;
        match directive {
            'Y' => year = take_number(&mut rest, 4, 4).ok_or_else(mismatch)? as i32,
            'y' => {
                let y = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as i32;
                year = if y < 69 { 2000 + y } else { 1900 + y };
            }
            'm' => month = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as u8,
            'd' => day = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as u8,
            'H' => hour = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as u8,
            'I' => hour = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as u8,
            'M' => minute = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as u8,
            'S' => second = take_number(&mut rest, 1, 2).ok_or_else(mismatch)? as u8,
            'j' => ordinal = Some(take_number(&mut rest, 1, 3).ok_or_else(mismatch)? as u16),
            'f' => {
                let digits: String = rest
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .take(6)
                    .collect();
                if digits.is_empty() {
                    return Err(mismatch());
                }
                rest = &rest[digits.len()..];
                micro = format!("{digits:0<6}").parse().map_err(|_| mismatch())?;
            }
            'p' => {
                let upper = rest.get(..2).map(str::to_ascii_uppercase);
                pm = match upper.as_deref() {
                    Some("AM") => Some(false),
                    Some("PM") => Some(true),
                    _ => return Err(mismatch()),
                };
                rest = &rest[2..];
            }
            'a' | 'A' => {
                rest = take_name(rest, &WEEKDAY_NAMES).ok_or_else(mismatch)?.1;
            }
            'b' | 'B' | 'h' => {
                let (index, remaining) = take_name(rest, &MONTH_NAMES).ok_or_else(mismatch)?;
                month = index as u8 + 1;
                rest = remaining;
            }
            'z' => {
                let (parsed, remaining) = take_offset(rest).ok_or_else(mismatch)?;
                offset = Some(parsed);
                rest = remaining;
            }
            'Z' => {
                let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
                match name.to_ascii_uppercase().as_str() {
                    "UTC" | "GMT" | "Z" => offset = Some(UtcOffset::UTC),
                    _ => return Err(mismatch()),
                }
                rest = &rest[name.len()..];
            }
            '%' => rest = rest.strip_prefix('%').ok_or_else(mismatch)?,
            other => {
                return Err(format!(
                    "{other:?} is a bad directive in format {pattern:?}"
                ));
            }
        }
    }
    if !rest.is_empty() {
        return Err(format!("unconverted data remains: {rest}"));
    }
    if let Some(is_pm) = pm {
        hour %= 12;
        if is_pm {
            hour += 12;
        }
    }
    let date = match ordinal {
        Some(day_of_year) => Date::from_ordinal_date(year, day_of_year),
        None => Month::try_from(month).and_then(|m| Date::from_calendar_date(year, m, day)),
    }
    .map_err(|e| format!("{input:?}: {e}"))?;
    let time =
        Time::from_hms_micro(hour, minute, second, micro).map_err(|e| format!("{input:?}: {e}"))?;
    Ok(Parsed {
        datetime: PrimitiveDateTime::new(date, time),
        offset,
    })
}

fn take_number(rest: &mut &str, min: usize, max: usize) -> Option<u32> {
    let len = rest
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if len < min {
        return None;
    }
    let value = rest[..len].parse().ok()?;
    *rest = &rest[len..];
    Some(value)
}

fn take_name<'s>(rest: &'s str, names: &[&str]) -> Option<(usize, &'s str)> {
    // Full names first so "March" is not read as "Mar" + "ch".
    for (index, name) in names.iter().enumerate() {
        if let Some(head) = rest.get(..name.len()) {
            if head.eq_ignore_ascii_case(name) {
                return Some((index, &rest[name.len()..]));
            }
        }
    }
    for (index, name) in names.iter().enumerate() {
        if let Some(head) = rest.get(..3) {
            if head.eq_ignore_ascii_case(&name[..3]) {
                return Some((index, &rest[3..]));
            }
        }
    }
    None
}

/// `Z`, `+HH`, `+HHMM`, `+HH:MM`, `+HH:MM:SS` as Python's `%z` accepts.
pub fn take_offset(rest: &str) -> Option<(UtcOffset, &str)> {
    if let Some(after) = rest.strip_prefix(['Z', 'z']) {
        return Some((UtcOffset::UTC, after));
    }
    let sign: i8 = match rest.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut cursor = &rest[1..];
    let mut parts = [0i8; 3];
    for (index, part) in parts.iter_mut().enumerate() {
        if index > 0 {
            if let Some(after) = cursor.strip_prefix(':') {
                cursor = after;
            }
        }
        let digits = cursor
            .get(..2)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        match digits {
            Some(d) => {
                *part = d.parse().ok()?;
                cursor = &cursor[2..];
            }
            None if index == 0 => return None,
            None => break,
        }
    }
    let offset = UtcOffset::from_hms(sign * parts[0], sign * parts[1], sign * parts[2]).ok()?;
    Some((offset, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_python_directives() {
        let dt = datetime!(2020-03-01 01:02:03.5);
        let utc = Some(UtcOffset::UTC);
        assert_eq!(
            format(dt, utc, "%Y-%m-%dT%H:%M:%S.%f%z"),
            "2020-03-01T01:02:03.500000+0000"
        );
        assert_eq!(
            format(dt, utc, "%a %A %b %B %j %p %I"),
            "Sun Sunday Mar March 061 AM 01"
        );
        assert_eq!(format(dt, None, "%-d/%-m %z%Z|%q %%"), "1/3 |%q %");
        // "%ms" is month + "s" for strftime; only format_datetime treats it as milliseconds.
        assert_eq!(format(dt, utc, "%ms"), "03s");
        assert_eq!(format(dt, utc, "%s"), "1583024523");
    }

    #[test]
    fn parses_python_directives() {
        let parsed = parse("01/02/2020 13:04:05.25 +02:00", "%d/%m/%Y %H:%M:%S.%f %z").unwrap();
        assert_eq!(parsed.datetime, datetime!(2020-02-01 13:04:05.25));
        assert_eq!(parsed.offset, Some(UtcOffset::from_hms(2, 0, 0).unwrap()));
        let parsed = parse(
            "Sat, 01 Feb 2020 01:00:00 -0800",
            "%a, %d %b %Y %H:%M:%S %z",
        )
        .unwrap();
        assert_eq!(parsed.offset, Some(UtcOffset::from_hms(-8, 0, 0).unwrap()));
        assert!(parse("2020-01-01x", "%Y-%m-%d").is_err());
        assert!(parse("2020-13-01", "%Y-%m-%d").is_err());
    }
}
