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
///
/// Python substitutes `%z`, `%Z` and `%f` itself (only when they follow `%` directly) and hands the
/// rest to the C library; this follows glibc 2.36 (the reference's Debian image): flags `_ - 0 ^ #`,
/// a field width, `E`/`O` modifiers, `%Y`/`%G`/`%C` without zero padding below four digits
/// (`datetime(1, 1, 1)` gives `1-01-01`), `%s` reading the wall clock as UTC (the reference runs in
/// UTC), and unknown directives copied through unchanged.
pub fn format(dt: PrimitiveDateTime, offset: Option<UtcOffset>, pattern: &str) -> String {
    let mut c_format = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            c_format.push(c);
            continue;
        }
        match chars.next() {
            None => c_format.push('%'),
            Some('z') => {
                if let Some(offset) = offset {
                    c_format.push_str(&format_offset(offset, false));
                }
            }
            Some('Z') => {
                if let Some(offset) = offset {
                    c_format.push_str(&offset_name(offset));
                }
            }
            Some('f') => c_format.push_str(&format!("{:06}", dt.microsecond())),
            Some(other) => {
                c_format.push('%');
                c_format.push(other);
            }
        }
    }
    let limit = python_buffer_limit(c_format.len());
    let mut out = String::with_capacity(c_format.len() + 16);
    c_strftime(dt, &c_format, false, limit, &mut out);
    if out.len() >= limit {
        // Python's buffer never grew enough: it returns an empty string (`%3000Y` gives '').
        return String::new();
    }
    out
}

/// The largest buffer CPython's `time.strftime` tries for a C format of `format_len` bytes: it
/// doubles from 1024 until the buffer is 256 times the format, and gives up on output that does
/// not fit (with its terminating NUL) in that one.
fn python_buffer_limit(format_len: usize) -> usize {
    let wanted = format_len.saturating_mul(256);
    let mut size: usize = 1024;
    while size < wanted {
        size = size.saturating_mul(2);
    }
    size
}

/// Python's `timezone.tzname()` for a fixed offset: `UTC`, `UTC+05:30`.
fn offset_name(offset: UtcOffset) -> String {
    if offset.is_utc() {
        "UTC".into()
    } else {
        format!("UTC{}", format_offset(offset, true))
    }
}

/// The flags, width and modifier of one glibc conversion.
#[derive(Clone, Copy)]
struct Spec {
    pad: Option<char>,
    upper: bool,
    swap_case: bool,
    width: usize,
}

impl Spec {
    /// glibc's `add`: pads the whole field to the width, with zeros only for the `0` flag.
    fn pad_field(&self, text: &str, out: &mut String) {
        let len = text.chars().count();
        if len < self.width {
            let fill = if self.pad == Some('0') { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(fill, self.width - len));
        }
        out.push_str(text);
    }

    fn text(&self, text: &str, upper: bool, lower: bool, out: &mut String) {
        let text = if lower {
            text.to_lowercase()
        } else if upper {
            text.to_uppercase()
        } else {
            text.to_string()
        };
        self.pad_field(&text, out);
    }

    /// glibc's `DO_NUMBER`: at least `digits` digits (or the width), zero padded by default.
    fn number(&self, value: i64, digits: usize, space_pad: bool, out: &mut String) {
        let pad = match self.pad {
            Some(p @ ('0' | '-')) => Some(p),
            _ if space_pad => Some('_'),
            other => other,
        };
        let digits = digits.max(self.width);
        let magnitude = value.unsigned_abs().to_string();
        let sign = if value < 0 { "-" } else { "" };
        let len = magnitude.len() + sign.len();
        let padding = digits.saturating_sub(len);
        let body = match pad {
            Some('-') => format!("{sign}{magnitude}"),
            Some('_') => format!("{}{sign}{magnitude}", " ".repeat(padding)),
            _ => format!("{sign}{}{magnitude}", "0".repeat(padding)),
        };
        Spec { pad, ..*self }.pad_field(&body, out);
    }
}

/// glibc `strftime` over the wall clock (`%z` and `%Z` print nothing: Python passes no zone).
/// Stops once `out` reaches `limit` bytes (the caller then drops it), so a huge field width
/// allocates nothing.
fn c_strftime(
    dt: PrimitiveDateTime,
    pattern: &str,
    upper_all: bool,
    limit: usize,
    out: &mut String,
) {
    let mut rest = pattern;
    while let Some(index) = rest.find('%') {
        if out.len() >= limit {
            return;
        }
        out.push_str(&rest[..index]);
        let directive_start = &rest[index..];
        let mut chars = directive_start.char_indices().skip(1).peekable();
        let mut spec = Spec {
            pad: None,
            upper: upper_all,
            swap_case: false,
            width: 0,
        };
        while let Some(&(_, flag)) = chars.peek() {
            match flag {
                '_' | '-' | '0' => spec.pad = Some(flag),
                '^' => spec.upper = true,
                '#' => spec.swap_case = true,
                _ => break,
            }
            chars.next();
        }
        while let Some(&(_, digit)) = chars.peek() {
            let Some(value) = digit.to_digit(10) else {
                break;
            };
            spec.width = spec
                .width
                .saturating_mul(10)
                .saturating_add(value as usize)
                .min(limit);
            chars.next();
        }
        let mut modifier = None;
        if let Some(&(_, m @ ('E' | 'O'))) = chars.peek() {
            modifier = Some(m);
            chars.next();
        }
        let Some((at, conversion)) = chars.next() else {
            // A `%` sequence cut off by the end of the pattern is copied as it is.
            spec.pad_field(directive_start, out);
            return;
        };
        let end = at + conversion.len_utf8();
        let literal = &directive_start[..end];
        rest = &directive_start[end..];
        if !conversion_accepts(conversion, modifier) {
            spec.pad_field(literal, out);
            continue;
        }
        convert(dt, conversion, spec, literal, out);
    }
    out.push_str(rest);
}

fn conversion_accepts(conversion: char, modifier: Option<char>) -> bool {
    match modifier {
        None => true,
        Some('E') => matches!(conversion, 'c' | 'C' | 'x' | 'X' | 'y' | 'Y' | 'z'),
        Some(_) => matches!(
            conversion,
            'b' | 'B'
                | 'h'
                | 'd'
                | 'e'
                | 'H'
                | 'I'
                | 'm'
                | 'M'
                | 'S'
                | 'u'
                | 'U'
                | 'V'
                | 'w'
                | 'W'
                | 'y'
                | 'z'
        ),
    }
}

fn convert(dt: PrimitiveDateTime, conversion: char, spec: Spec, literal: &str, out: &mut String) {
    let weekday = dt.weekday();
    let year = i64::from(dt.year());
    let (iso_year, iso_week, _) = dt.to_iso_week_date();
    let name_upper = spec.upper || spec.swap_case;
    let sub = |pattern: &str, out: &mut String| {
        let mut text = String::new();
        c_strftime(dt, pattern, spec.upper, usize::MAX, &mut text);
        spec.pad_field(&text, out);
    };
    match conversion {
        'a' => spec.text(
            &WEEKDAY_NAMES[weekday_index(weekday)][..3],
            name_upper,
            false,
            out,
        ),
        'A' => spec.text(
            WEEKDAY_NAMES[weekday_index(weekday)],
            name_upper,
            false,
            out,
        ),
        'b' | 'h' => spec.text(&month_name(dt)[..3], name_upper, false, out),
        'B' => spec.text(month_name(dt), name_upper, false, out),
        'p' | 'P' => {
            let text = if dt.hour() < 12 { "AM" } else { "PM" };
            let lower = conversion == 'P' || spec.swap_case;
            spec.text(text, spec.upper, lower, out);
        }
        'Y' => spec.number(year, 1, false, out),
        'C' => spec.number(year.div_euclid(100), 1, false, out),
        'y' => spec.number(year.rem_euclid(100), 2, false, out),
        'G' => spec.number(i64::from(iso_year), 1, false, out),
        'g' => spec.number(i64::from(iso_year).rem_euclid(100), 2, false, out),
        'm' => spec.number(i64::from(u8::from(dt.month())), 2, false, out),
        'd' => spec.number(i64::from(dt.day()), 2, false, out),
        'e' => spec.number(i64::from(dt.day()), 2, true, out),
        'H' => spec.number(i64::from(dt.hour()), 2, false, out),
        'k' => spec.number(i64::from(dt.hour()), 2, true, out),
        'I' => spec.number(i64::from(twelve_hour(dt.hour())), 2, false, out),
        'l' => spec.number(i64::from(twelve_hour(dt.hour())), 2, true, out),
        'M' => spec.number(i64::from(dt.minute()), 2, false, out),
        'S' => spec.number(i64::from(dt.second()), 2, false, out),
        'j' => spec.number(i64::from(dt.ordinal()), 3, false, out),
        'u' => spec.number(i64::from(weekday.number_from_monday()), 1, false, out),
        'w' => spec.number(i64::from(weekday.number_days_from_sunday()), 1, false, out),
        'U' => spec.number(i64::from(dt.sunday_based_week()), 2, false, out),
        'W' => spec.number(i64::from(dt.monday_based_week()), 2, false, out),
        'V' => spec.number(i64::from(iso_week), 2, false, out),
        // glibc's %s reads the wall clock in the process time zone; the reference runs in UTC.
        's' => {
            let seconds = dt.assume_utc().unix_timestamp();
            let text = seconds.to_string();
            spec.pad_field(&text, out);
        }
        'D' | 'x' => sub("%m/%d/%y", out),
        'F' => sub("%Y-%m-%d", out),
        'T' | 'X' => sub("%H:%M:%S", out),
        'R' => sub("%H:%M", out),
        'r' => sub("%I:%M:%S %p", out),
        'c' => sub("%a %b %e %H:%M:%S %Y", out),
        'n' => spec.pad_field("\n", out),
        't' => spec.pad_field("\t", out),
        '%' => spec.pad_field("%", out),
        // Python passes no zone to the C library (`tm_isdst` is -1): %z is empty, %Z a padded "".
        'z' => {}
        'Z' => spec.pad_field("", out),
        _ => spec.pad_field(literal, out),
    }
}

fn month_name(dt: PrimitiveDateTime) -> &'static str {
    MONTH_NAMES[usize::from(u8::from(dt.month())) - 1]
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

/// A parsed `strptime` result: wall clock plus the offset when the pattern had `%z`.
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

/// Parses `input` with a Python `strptime` pattern (see [`Strptime`]).
pub fn parse(input: &str, pattern: &str) -> Result<Parsed, String> {
    Strptime::new(pattern)?.parse(input)
}

/// A Python `datetime.strptime` pattern compiled once, as CPython's `_strptime` does: each
/// directive becomes the same regular expression (matched case-insensitively, anchored at the
/// start; whitespace in the pattern matches one or more whitespace characters), leftover input is
/// an error ("unconverted data remains"), and the fields are combined by the same rules (`%I`
/// without `%p` is AM, `%p` alone changes nothing, `%j` and `%U`/`%W`/`%V` with a weekday decide
/// the date, a later field overrides an earlier one). Names are the C locale's and `%Z` knows
/// `UTC` and `GMT` (a process in UTC); it does not make the result aware, only `%z` does.
///
/// Digits are ASCII only (Python's `\d` would also take other Unicode digits), and `%z` offsets
/// with fractions of a second are rejected (they cannot be represented).
#[derive(Debug, Clone)]
pub struct Strptime {
    pattern: String,
    regex: regex::Regex,
    /// The pattern as fixed-width numbers and literals, when it is only that.
    fixed: Option<FixedLayout>,
}

/// A pattern of `%Y %m %d %H %M %S` and literal characters, the shape most cursor formats have
/// (`%Y-%m-%dT%H:%M:%SZ`), as the bytes a text of its width has at each place. Matching it by
/// hand costs a tenth of the regex, and checking eight bytes at a time a third of checking
/// each piece in turn (callgrind on `cargo xtask bench` scenario (j), where every record's
/// cursor is parsed).
#[derive(Debug, Clone)]
struct FixedLayout {
    /// The length of the text the pattern matches.
    width: usize,
    /// The text in eight-byte words: from the start, and the last one ending where the text
    /// does (overlapping the one before); a text shorter than eight bytes is one word, padded
    /// with zeros.
    words: Vec<FixedWord>,
    numbers: Vec<FixedNumber>,
}

/// What one eight-byte word of the text must hold, a bit mask per byte (little-endian).
#[derive(Debug, Clone, Copy, Default)]
struct FixedWord {
    /// Where the word starts in the text.
    at: usize,
    /// The literal characters, lowercased, and zero elsewhere.
    literals: u64,
    /// `0xff` at the literal characters.
    literal_bytes: u64,
    /// `0x20` at the literal letters, which match either case as the regex matches them.
    any_case: u64,
    /// `0xff` at the digits.
    digit_bytes: u64,
}

/// A directive's field, where its digits are and the values its full-width alternatives take.
#[derive(Debug, Clone, Copy)]
struct FixedNumber {
    field: FixedField,
    at: usize,
    /// 2, or 4 for the year.
    width: usize,
    min: u32,
    max: u32,
}

/// The field a [`FixedNumber`] sets, as its directive's group does in [`Fields::take`].
#[derive(Debug, Clone, Copy)]
enum FixedField {
    Year = 0,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

const LOW_BYTES: u64 = 0x0101_0101_0101_0101;

impl FixedLayout {
    /// The layout of `pattern`, or `None` when it has anything else.
    fn of(pattern: &str) -> Option<FixedLayout> {
        // The byte each place of the text must hold (`None` for a digit), and the numbers.
        let mut places: Vec<Option<u8>> = Vec::new();
        let mut numbers = Vec::new();
        let mut bytes = pattern.bytes();
        while let Some(byte) = bytes.next() {
            if byte != b'%' {
                // Whitespace means `\s+` to the regex, and non-ASCII is left to it too. So is a
                // backslash, which leaves every literal as JSON text spells it, so that a JSON
                // string's bytes as sent parse here as its text would
                // ([`Strptime::parse_fixed_bytes`]).
                if !byte.is_ascii_graphic() || byte == b'\\' {
                    return None;
                }
                places.push(Some(byte));
                continue;
            }
            // The ranges of the two-digit alternatives of each directive's regex; the leap
            // seconds 60 and 61 are left to the regex path.
            let (field, width, min, max) = match bytes.next()? {
                b'Y' => (FixedField::Year, 4, 0, 9999),
                b'm' => (FixedField::Month, 2, 1, 12),
                b'd' => (FixedField::Day, 2, 1, 31),
                b'H' => (FixedField::Hour, 2, 0, 23),
                b'M' => (FixedField::Minute, 2, 0, 59),
                b'S' => (FixedField::Second, 2, 0, 59),
                _ => return None,
            };
            numbers.push(FixedNumber {
                field,
                at: places.len(),
                width,
                min,
                max,
            });
            places.extend(std::iter::repeat_n(None, width));
        }
        let width = places.len();
        let mut starts: Vec<usize> = (0..width.saturating_sub(8)).step_by(8).collect();
        starts.push(width.saturating_sub(8));
        let words = starts
            .into_iter()
            .map(|at| {
                let mut word = FixedWord {
                    at,
                    ..FixedWord::default()
                };
                for (index, place) in places[at..].iter().take(8).enumerate() {
                    let shift = 8 * index;
                    match place {
                        Some(literal) => {
                            word.literals |= u64::from(literal.to_ascii_lowercase()) << shift;
                            word.literal_bytes |= 0xff << shift;
                            if literal.is_ascii_alphabetic() {
                                word.any_case |= 0x20 << shift;
                            }
                        }
                        None => word.digit_bytes |= 0xff << shift,
                    }
                }
                word
            })
            .collect();
        Some(FixedLayout {
            width: places.len(),
            words,
            numbers,
        })
    }

    /// Whether `text` (of the layout's width) has the literals and digits where the layout has
    /// them.
    fn matches(&self, text: &[u8]) -> bool {
        self.words.iter().all(|word| {
            let text = match text.get(word.at..word.at + 8) {
                Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap_or_default()),
                None => text
                    .iter()
                    .rev()
                    .fold(0, |word, &byte| (word << 8) | u64::from(byte)),
            };
            // A byte ORed with 0x20 is the lowercase letter only when it was that letter in
            // either case.
            let literals_match = ((text | word.any_case) & word.literal_bytes) == word.literals;
            // A digit is 0x30 to 0x39: with 0x30 taken off, no high bits, and no carry into
            // them when 6 is added.
            let offsets = (text ^ (0x30 * LOW_BYTES)) & word.digit_bytes;
            let high = 0xf0 * LOW_BYTES;
            let digits_match = (offsets & high) == 0 && ((offsets + 6 * LOW_BYTES) & high) == 0;
            literals_match && digits_match
        })
    }
}

/// The number the ASCII digits of `number` in `text` spell.
#[inline(always)]
fn digits_value(text: &[u8], number: &FixedNumber) -> u32 {
    let digit = |index: usize| u32::from(text[number.at + index] - b'0');
    match number.width {
        2 => digit(0) * 10 + digit(1),
        _ => digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3),
    }
}

const TZ_NAMES: [&str; 2] = ["utc", "gmt"];

impl Strptime {
    pub fn new(pattern: &str) -> Result<Strptime, String> {
        let source = format!("(?i)^(?:{})", directive_regex_for(pattern, pattern)?);
        let regex = regex::Regex::new(&source).map_err(|e| {
            if e.to_string().contains("duplicate capture group name") {
                format!("redefinition of group name in format {}", py_repr(pattern))
            } else {
                format!("invalid format {}: {e}", py_repr(pattern))
            }
        })?;
        let fixed = FixedLayout::of(pattern);
        Ok(Strptime {
            pattern: pattern.to_string(),
            regex,
            fixed,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Python's `datetime.strptime(input, pattern)`.
    pub fn parse(&self, input: &str) -> Result<Parsed, String> {
        if let Some(parsed) = self.parse_fixed_bytes(input.as_bytes()) {
            return parsed;
        }
        self.parse_with_regex(input)
    }

    /// [`Strptime::parse`]'s result for the text `bytes` spell, when the pattern is of fixed
    /// pieces and every number in `bytes` has its full width and a value its regex takes at that
    /// width: then the regex's first choice at every group is that number, so its match is this
    /// one. `None` for anything else, which [`Strptime::parse`] decides. `bytes` may also be a
    /// JSON string as sent, between its quotes: what matches here has no escapes, as the
    /// pattern's literals have no backslash.
    pub fn parse_fixed_bytes(&self, bytes: &[u8]) -> Option<Result<Parsed, String>> {
        let layout = self.fixed.as_ref()?;
        // Every piece has its width: an input of another length is the regex's to decide.
        if bytes.len() != layout.width || !layout.matches(bytes) {
            return None;
        }
        // By field, in `FixedField`'s order; what `Fields::take` sets for each group.
        let mut values = [0i64; 6];
        let mut year_set = false;
        for number in &layout.numbers {
            let value = digits_value(bytes, number);
            if value < number.min || value > number.max {
                return None;
            }
            values[number.field as usize] = i64::from(value);
            year_set |= matches!(number.field, FixedField::Year);
        }
        let [year, month, day, hour, minute, second] = values;
        let fields = Fields {
            year: year_set.then_some(year),
            month,
            day,
            hour,
            minute,
            second,
            ..Fields::default()
        };
        Some(fields.finish())
    }

    fn parse_with_regex(&self, input: &str) -> Result<Parsed, String> {
        let found = self.regex.captures(input).ok_or_else(|| {
            format!(
                "time data {} does not match format {}",
                py_repr(input),
                py_repr(&self.pattern)
            )
        })?;
        let end = found.get(0).map_or(0, |m| m.end());
        if end != input.len() {
            return Err(format!("unconverted data remains: {}", &input[end..]));
        }
        let mut fields = Fields::default();
        for name in self.regex.capture_names().flatten() {
            if let Some(text) = found.name(name) {
                fields.take(name, text.as_str(), found.name("p").map(|m| m.as_str()))?;
            }
        }
        fields.finish()
    }
}

fn py_repr(text: &str) -> String {
    let mut out = String::new();
    crate::pyrepr::str_repr(text, &mut out);
    out
}

/// `_strptime.TimeRE.pattern`: the regular expression of a whole format.
fn directive_regex_for(format: &str, whole: &str) -> Result<String, String> {
    let bad = |directive: char| {
        format!(
            "{} is a bad directive in format {}",
            py_repr(&directive.to_string()),
            py_repr(whole)
        )
    };
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            while chars.peek().is_some_and(|next| next.is_whitespace()) {
                chars.next();
            }
            out.push_str(r"\s+");
            continue;
        }
        if c != '%' {
            out.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        let Some(directive) = chars.next() else {
            return Err(format!("stray % in format {}", py_repr(whole)));
        };
        // Python escapes regex syntax and whitespace before it looks at directives, so `%` followed
        // by one of them is reported as a bad `%`.
        if directive.is_whitespace() || r"\.^$*+?(){}[]|".contains(directive) {
            return Err(bad('%'));
        }
        let regex = match directive {
            'd' => r"(?P<d>3[0-1]|[1-2][0-9]|0[1-9]|[1-9]| [1-9])".to_string(),
            'f' => r"(?P<f>[0-9]{1,6})".to_string(),
            'H' => r"(?P<H>2[0-3]|[0-1][0-9]|[0-9])".to_string(),
            'I' => r"(?P<I>1[0-2]|0[1-9]|[1-9])".to_string(),
            'G' => r"(?P<G>[0-9]{4})".to_string(),
            'j' => {
                r"(?P<j>36[0-6]|3[0-5][0-9]|[1-2][0-9][0-9]|0[1-9][0-9]|00[1-9]|[1-9][0-9]|0[1-9]|[1-9])"
                    .to_string()
            }
            'm' => r"(?P<m>1[0-2]|0[1-9]|[1-9])".to_string(),
            'M' => r"(?P<M>[0-5][0-9]|[0-9])".to_string(),
            'S' => r"(?P<S>6[0-1]|[0-5][0-9]|[0-9])".to_string(),
            'U' => r"(?P<U>5[0-3]|[0-4][0-9]|[0-9])".to_string(),
            'W' => r"(?P<W>5[0-3]|[0-4][0-9]|[0-9])".to_string(),
            'w' => r"(?P<w>[0-6])".to_string(),
            'u' => r"(?P<u>[1-7])".to_string(),
            'V' => r"(?P<V>5[0-3]|0[1-9]|[1-4][0-9]|[0-9])".to_string(),
            'y' => r"(?P<y>[0-9][0-9])".to_string(),
            'Y' => r"(?P<Y>[0-9]{4})".to_string(),
            'z' => r"(?P<z>[+-][0-9][0-9]:?[0-5][0-9](:?[0-5][0-9](\.[0-9]{1,6})?)?|(?-i:Z))"
                .to_string(),
            'A' => names_regex('A', WEEKDAY_NAMES.iter().copied()),
            'a' => names_regex('a', WEEKDAY_NAMES.iter().map(|name| &name[..3])),
            'B' => names_regex('B', MONTH_NAMES.iter().copied()),
            'b' => names_regex('b', MONTH_NAMES.iter().map(|name| &name[..3])),
            'p' => names_regex('p', ["am", "pm"].into_iter()),
            'Z' => names_regex('Z', TZ_NAMES.into_iter()),
            '%' => "%".to_string(),
            'c' => directive_regex_for("%a %b %d %H:%M:%S %Y", whole)?,
            'x' => directive_regex_for("%m/%d/%y", whole)?,
            'X' => directive_regex_for("%H:%M:%S", whole)?,
            other => return Err(bad(other)),
        };
        out.push_str(&regex);
    }
    Ok(out)
}

/// `_strptime.TimeRE.__seqToRE`: alternatives, longest first (stable for equal lengths).
fn names_regex<'n>(group: char, names: impl Iterator<Item = &'n str>) -> String {
    let mut names: Vec<String> = names.map(str::to_lowercase).collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    let alternatives: Vec<String> = names.iter().map(|name| regex::escape(name)).collect();
    format!("(?P<{group}>{})", alternatives.join("|"))
}

/// The fields `_strptime._strptime` collects before it builds the date.
#[derive(Default)]
struct Fields {
    year: Option<i64>,
    iso_year: Option<i64>,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    fraction: i64,
    offset: Option<(i64, i64)>,
    iso_week: Option<i64>,
    week_of_year: Option<(i64, bool)>,
    weekday: Option<i64>,
    julian: Option<i64>,
}

fn int(text: &str) -> i64 {
    // The regular expressions only let ASCII digits (and a leading space for %d) through.
    text.trim().parse().unwrap_or_default()
}

fn name_index(names: &[&str], text: &str, abbreviated: bool) -> i64 {
    names
        .iter()
        .position(|name| {
            let name = if abbreviated { &name[..3] } else { name };
            name.eq_ignore_ascii_case(text)
        })
        .unwrap_or_default() as i64
}

impl Fields {
    fn take(&mut self, group: &str, text: &str, ampm: Option<&str>) -> Result<(), String> {
        match group {
            "y" => {
                let y = int(text);
                self.year = Some(if y <= 68 { y + 2000 } else { y + 1900 });
            }
            "Y" => self.year = Some(int(text)),
            "G" => self.iso_year = Some(int(text)),
            "m" => self.month = int(text),
            "B" => self.month = name_index(&MONTH_NAMES, text, false) + 1,
            "b" => self.month = name_index(&MONTH_NAMES, text, true) + 1,
            "d" => self.day = int(text),
            "H" => self.hour = int(text),
            "I" => {
                let hour = int(text);
                let pm = ampm.is_some_and(|p| p.eq_ignore_ascii_case("pm"));
                self.hour = match (pm, hour) {
                    (false, 12) => 0,
                    (true, h) if h != 12 => h + 12,
                    (_, h) => h,
                };
            }
            "M" => self.minute = int(text),
            "S" => self.second = int(text),
            "f" => self.fraction = int(&format!("{text:0<6}")),
            "A" => self.weekday = Some(name_index(&WEEKDAY_NAMES, text, false)),
            "a" => self.weekday = Some(name_index(&WEEKDAY_NAMES, text, true)),
            "w" => self.weekday = Some((int(text) + 6) % 7),
            "u" => self.weekday = Some(int(text) - 1),
            "j" => self.julian = Some(int(text)),
            "U" => self.week_of_year = Some((int(text), false)),
            "W" => self.week_of_year = Some((int(text), true)),
            "V" => self.iso_week = Some(int(text)),
            "z" => self.offset = Some(parse_z(text)?),
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Parsed, String> {
        if self.year.is_none() && self.iso_year.is_some() {
            if self.iso_week.is_none() || self.weekday.is_none() {
                return Err(
                    "ISO year directive '%G' must be used with the ISO week directive \
                            '%V' and a weekday directive ('%A', '%a', '%w', or '%u')."
                        .into(),
                );
            }
            if self.julian.is_some() {
                return Err(
                    "Day of the year directive '%j' is not compatible with ISO year \
                            directive '%G'. Use '%Y' instead."
                        .into(),
                );
            }
        } else if self.week_of_year.is_none() && self.iso_week.is_some() {
            return Err(if self.weekday.is_none() {
                "ISO week directive '%V' must be used with the ISO year directive '%G' and a \
                 weekday directive ('%A', '%a', '%w', or '%u')."
            } else {
                "ISO week directive '%V' is incompatible with the year directive '%Y'. Use the \
                 ISO year '%G' instead."
            }
            .into());
        }
        let (month, day) = (
            if self.month == 0 { 1 } else { self.month },
            if self.day == 0 { 1 } else { self.day },
        );
        let mut year = match self.year {
            // Python computes with 1904 and then builds February 29th of 1900, which fails.
            None if month == 2 && day == 29 => {
                return Err("day is out of range for month".into());
            }
            None => 1900,
            Some(year) => year,
        };
        if self.julian.is_none() {
            if let Some(weekday) = self.weekday {
                if let Some((week, monday_first)) = self.week_of_year {
                    self.julian = Some(julian_from_week(year, week, weekday, monday_first)?);
                } else if let (Some(iso_year), Some(iso_week)) = (self.iso_year, self.iso_week) {
                    let (y, julian) = julian_from_iso_week(iso_year, iso_week, weekday + 1)?;
                    year = y;
                    self.julian = Some(julian);
                }
                if let Some(julian) = self.julian.filter(|j| *j <= 0) {
                    year -= 1;
                    self.julian = Some(julian + if is_leap(year) { 366 } else { 365 });
                }
            }
        }
        let date = match self.julian {
            None => py_date(year, month, day)?,
            Some(julian) => from_ordinal(julian - 1 + to_ordinal(py_date(year, 1, 1)?))?,
        };
        let time = Time::from_hms_micro(
            u8::try_from(self.hour).unwrap_or(u8::MAX),
            u8::try_from(self.minute).unwrap_or(u8::MAX),
            u8::try_from(self.second).unwrap_or(u8::MAX),
            u32::try_from(self.fraction).unwrap_or(u32::MAX),
        )
        .map_err(|_| {
            if self.second > 59 {
                "second must be in 0..59".to_string()
            } else {
                format!(
                    "invalid time {:02}:{:02}:{:02}",
                    self.hour, self.minute, self.second
                )
            }
        })?;
        let offset = match self.offset {
            None => None,
            Some((seconds, micros)) => {
                if micros != 0 {
                    return Err("UTC offsets with fractions of a second are not supported".into());
                }
                if seconds.abs() >= 86_400 {
                    return Err("offset must be a timedelta strictly between \
                                -timedelta(hours=24) and timedelta(hours=24)"
                        .into());
                }
                let seconds = i32::try_from(seconds).map_err(|e| e.to_string())?;
                Some(UtcOffset::from_whole_seconds(seconds).map_err(|e| e.to_string())?)
            }
        };
        Ok(Parsed {
            datetime: PrimitiveDateTime::new(date, time),
            offset,
        })
    }
}

/// `%z` text as `_strptime` reads it: seconds and microseconds east of UTC.
fn parse_z(z: &str) -> Result<(i64, i64), String> {
    if z == "Z" {
        return Ok((0, 0));
    }
    let mut text = z.to_string();
    if text.as_bytes().get(3) == Some(&b':') {
        text.remove(3);
        if text.len() > 5 {
            if text.as_bytes().get(5) != Some(&b':') {
                return Err(format!("Inconsistent use of : in {z}"));
            }
            text.remove(5);
        }
    }
    let number = |from: usize, to: usize| -> Result<i64, String> {
        let part = text.get(from..to.min(text.len())).unwrap_or("");
        if part.is_empty() {
            return Ok(0);
        }
        part.parse()
            .map_err(|_| format!("invalid literal for int() with base 10: {}", py_repr(part)))
    };
    let seconds = number(1, 3)? * 3600 + number(3, 5)? * 60 + number(5, 7)?;
    let fraction = text.get(8..).unwrap_or("");
    let micros = if fraction.is_empty() {
        0
    } else {
        number(8, 14)? * 10_i64.pow(6 - fraction.len().min(6) as u32)
    };
    Ok(if text.starts_with('-') {
        (-seconds, -micros)
    } else {
        (seconds, micros)
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Python's `date(year, month, day)`, with its range (years 1 to 9999).
fn py_date(year: i64, month: i64, day: i64) -> Result<Date, String> {
    if !(1..=9999).contains(&year) {
        return Err(format!("year {year} is out of range"));
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or("month must be in 1..12")?;
    let day = u8::try_from(day).map_err(|_| "day is out of range for month")?;
    Date::from_calendar_date(year as i32, month, day)
        .map_err(|_| "day is out of range for month".to_string())
}

/// Python's `date.toordinal()` (0001-01-01 is 1).
fn to_ordinal(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - 1_721_425
}

/// Python's `date.fromordinal()`.
fn from_ordinal(ordinal: i64) -> Result<Date, String> {
    let out_of_range = || format!("ordinal {ordinal} is out of range");
    let julian = i32::try_from(ordinal + 1_721_425).map_err(|_| out_of_range())?;
    let date = Date::from_julian_day(julian).map_err(|_| out_of_range())?;
    if (1..=9999).contains(&date.year()) && ordinal >= 1 {
        Ok(date)
    } else {
        Err(out_of_range())
    }
}

/// Monday is 0, as Python's `date.weekday()`.
fn py_weekday(date: Date) -> i64 {
    i64::from(date.weekday().number_days_from_monday())
}

/// `_strptime._calc_julian_from_U_or_W`.
fn julian_from_week(year: i64, week: i64, weekday: i64, monday_first: bool) -> Result<i64, String> {
    let mut first_weekday = py_weekday(py_date(year, 1, 1)?);
    let mut day_of_week = weekday;
    if !monday_first {
        first_weekday = (first_weekday + 1) % 7;
        day_of_week = (day_of_week + 1) % 7;
    }
    let week_0_length = (7 - first_weekday) % 7;
    Ok(if week == 0 {
        1 + day_of_week - first_weekday
    } else {
        1 + week_0_length + 7 * (week - 1) + day_of_week
    })
}

/// `_strptime._calc_julian_from_V`: `(year, day of year)`, which may fall in the year before.
fn julian_from_iso_week(
    iso_year: i64,
    iso_week: i64,
    iso_weekday: i64,
) -> Result<(i64, i64), String> {
    let correction = py_weekday(py_date(iso_year, 1, 4)?) + 1 + 3;
    let mut ordinal = iso_week * 7 + iso_weekday - correction;
    let mut year = iso_year;
    if ordinal < 1 {
        ordinal += to_ordinal(py_date(year, 1, 1)?);
        year -= 1;
        ordinal -= to_ordinal(py_date(year, 1, 1)?);
    }
    Ok((year, ordinal))
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
    fn output_longer_than_pythons_buffer_is_empty() {
        // Found by fuzzing: a huge field width asked for more memory than there is.
        let dt = datetime!(2024-01-01 00:00);
        assert_eq!(format(dt, None, "%99999999999999999999Y-%m"), "");
        // CPython's buffer for a 6-byte format grows to 2048 bytes, NUL included.
        assert_eq!(format(dt, None, "%2047Y").len(), 2047);
        assert_eq!(format(dt, None, "%2048Y"), "");
        assert_eq!(format(dt, None, "%3000Y"), "");
        // Twelve bytes of format: a 4096-byte buffer.
        assert_eq!(format(dt, None, "%2000Y%2000Y").len(), 4000);
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

    /// Inputs near and far from cursor formats: where the hand-written match decides, it
    /// decides as the regex does.
    #[test]
    fn fixed_patterns_parse_as_the_regex_parses() {
        let patterns = [
            "%Y-%m-%dT%H:%M:%SZ",
            "%Y-%m-%d",
            "%Y%m%d%H%M%S",
            "%d/%m/%Y %H:%M",
            "%m%d",
            "%H:%M:%S",
            "%Y-%m-%dT%H:%M:%S.000+0000",
            "%d.%m.%Y_%Hh%M",
        ];
        let alphabet: Vec<char> = "0123456789012345678901234567890-:/TtZz ;?\u{e9}.+hH_\u{10}"
            .chars()
            .collect();
        let mut state: u64 = 3;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % bound as u64) as usize
        };
        let mut decided = 0;
        for pattern in patterns {
            let strptime = Strptime::new(pattern).unwrap();
            let sample = strftime_sample(pattern);
            for _ in 0..20_000 {
                // A valid date with a few characters changed, dropped or added.
                let mut input: Vec<char> = sample.chars().collect();
                for _ in 0..next(4) {
                    let at = next(input.len() + 1);
                    match next(3) {
                        0 if at < input.len() => input[at] = alphabet[next(alphabet.len())],
                        1 if at < input.len() => {
                            input.remove(at);
                        }
                        _ => input.insert(at, alphabet[next(alphabet.len())]),
                    }
                }
                let input: String = input.into_iter().collect();
                if let Some(fast) = strptime.parse_fixed_bytes(input.as_bytes()) {
                    decided += 1;
                    assert_eq!(
                        fast,
                        strptime.parse_with_regex(&input),
                        "{input:?} as {pattern}"
                    );
                }
            }
        }
        assert!(
            decided > 20_000,
            "only {decided} inputs took the fixed path"
        );
    }

    fn strftime_sample(pattern: &str) -> String {
        pattern
            .replace("%Y", "2024")
            .replace("%m", "02")
            .replace("%d", "29")
            .replace("%H", "23")
            .replace("%M", "59")
            .replace("%S", "07")
    }
}
