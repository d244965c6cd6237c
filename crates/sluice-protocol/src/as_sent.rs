//! Records written as the API sent them, when that is byte for byte what the reference prints.
//!
//! Parsing a record only to print it again costs most of a plain read. Most APIs send compact
//! JSON that the reference (json.loads, then orjson) would print unchanged; [`prints_as_sent`]
//! tells when that holds, so the record's bytes can be copied instead.

use std::io::{self, Write};

use serde::Serialize;

use crate::json::ReferenceFormatter;

/// What the reference would print for a record's JSON, as an API sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsSent {
    /// Exactly these bytes: an object, no whitespace, no top-level `null` (the reference
    /// leaves those out), no repeated key, strings escaped only where JSON requires it and as
    /// serde_json spells it, integers within 64 bits, floats spelled as the reference spells
    /// them. Copy it.
    Identical,
    /// Other bytes, and the JSON parses for sure: parse it and print the value (anywhere).
    Reprint,
    /// It may not parse (an escaped surrogate, a number out of range, deep nesting, not
    /// valid JSON): parse it before relying on it.
    Unsure,
}

/// Classifies the record data `json` (one JSON value, as an API sent it) against what
/// [`write_record_json`](crate::write_record_json) prints once it is parsed.
pub fn classify_as_sent(json: &[u8]) -> AsSent {
    let mut scan = Scan {
        bytes: json,
        at: 0,
        depth: 0,
        keys: Vec::new(),
        identical: true,
        parses: true,
    };
    let well_formed = scan.object(true) && {
        scan.space();
        scan.at == json.len()
    };
    match (well_formed && scan.parses, scan.identical) {
        (false, _) => AsSent::Unsure,
        (true, true) => AsSent::Identical,
        (true, false) => AsSent::Reprint,
    }
}

/// Whether the record data `json` is exactly what the reference prints for it
/// ([`AsSent::Identical`]).
pub fn prints_as_sent(json: &[u8]) -> bool {
    classify_as_sent(json) == AsSent::Identical
}

/// Writes a RECORD message whose `data` is `json` verbatim: call only when
/// [`prints_as_sent`] holds. The bytes equal [`write_record_json`](crate::write_record_json)'s
/// for the parsed data. No trailing newline is written.
pub fn write_record_json_as_sent<W: Write>(
    out: &mut W,
    stream: &str,
    json: &[u8],
    emitted_at_ms: i64,
) -> io::Result<()> {
    crate::json::write_record_with(out, stream, emitted_at_ms, |out| out.write_all(json))
}

/// Walks one JSON value. Each step returns whether the text is still well formed; what would
/// print differently clears `identical`, what might not parse clears `parses`.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Open objects and arrays: deeper than serde_json's own limit allows is left to the parser
    /// (and this scan's recursion stays shallow).
    depth: usize,
    /// The keys of the open objects, as sent (start and end), innermost last: one stack for
    /// the whole record rather than a list per object.
    keys: Vec<(usize, usize)>,
    identical: bool,
    parses: bool,
}

/// Below serde_json's nesting limit (128), with room for how it counts.
const MAX_DEPTH: usize = 100;

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace, which the reference never prints.
    fn space(&mut self) {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
        if self.at != start {
            self.identical = false;
        }
    }

    fn value(&mut self) -> bool {
        self.space();
        match self.peek() {
            Some(b'{' | b'[') if self.depth >= MAX_DEPTH => false,
            Some(b'{') => self.nested(|scan| scan.object(false)),
            Some(b'[') => self.nested(Scan::array),
            Some(b'"') => self.string(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn nested(&mut self, scan: impl FnOnce(&mut Self) -> bool) -> bool {
        self.depth += 1;
        let ok = scan(self);
        self.depth -= 1;
        ok
    }

    fn object(&mut self, top_level: bool) -> bool {
        let first_key = self.keys.len();
        let ok = self.members(top_level, first_key);
        self.keys.truncate(first_key);
        ok
    }

    /// An object's members; its keys are stacked from `first_key` on.
    fn members(&mut self, top_level: bool, first_key: usize) -> bool {
        self.space();
        if !self.eat(b'{') {
            return false;
        }
        self.space();
        if self.eat(b'}') {
            return true;
        }
        loop {
            self.space();
            let key_start = self.at;
            if !self.string() {
                return false;
            }
            // A repeated key (as sent): the parsed object keeps one entry.
            let key = &self.bytes[key_start..self.at];
            let bytes = self.bytes;
            if self.keys[first_key..]
                .iter()
                .any(|&(start, end)| &bytes[start..end] == key)
            {
                self.identical = false;
            }
            self.keys.push((key_start, self.at));
            self.space();
            if !self.eat(b':') {
                return false;
            }
            self.space();
            if top_level && self.bytes[self.at..].starts_with(b"null") {
                self.identical = false;
            }
            if !self.value() {
                return false;
            }
            self.space();
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self) -> bool {
        if !self.eat(b'[') {
            return false;
        }
        self.space();
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value() {
                return false;
            }
            self.space();
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn word(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// A string; identical only with the escapes serde_json writes: `\"`, `\\`, `\b`, `\f`,
    /// `\n`, `\r`, `\t`, and `\u00xx` (lower-case hex) for the other control characters.
    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            let Some(offset) = memchr::memchr2(b'"', b'\\', &self.bytes[self.at..]) else {
                return false;
            };
            // A raw control character, which JSON forbids, fails the JSON check the caller made
            // before; it is not looked for here.
            self.at += offset;
            if self.bytes[self.at] == b'"' {
                self.at += 1;
                return true;
            }
            let escape = &self.bytes[self.at + 1..];
            match escape.first() {
                Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
                Some(b'/') => {
                    self.identical = false;
                    self.at += 2;
                }
                Some(b'u') => {
                    let Some(code) = escape
                        .get(1..5)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                    else {
                        return false;
                    };
                    if (0xd800..=0xdfff).contains(&code) {
                        // A surrogate parses only when paired; leave that to the parser.
                        self.parses = false;
                    }
                    if !is_spelled_control(escape) {
                        self.identical = false;
                    }
                    self.at += 6;
                }
                _ => return false,
            }
        }
    }

    /// A number: identical when an integer serde_json keeps as an integer or a float spelled
    /// as the reference spells it.
    fn number(&mut self) -> bool {
        let start = self.at;
        let end = self.bytes[start..]
            .iter()
            .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
            .map_or(self.bytes.len(), |p| start + p);
        self.at = end;
        let text = &self.bytes[start..end];
        let is_integer = !text.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
        let digits = &text[usize::from(text.first() == Some(&b'-'))..];
        if is_integer && text.len() <= 18 && text != b"-0" {
            // Fits in an i64 whatever the digits.
            return !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
        }
        if is_short_plain_decimal(digits) {
            return true;
        }
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        if is_integer {
            // `-0` parses as a float, and so does an integer beyond 64 bits: printed otherwise,
            // and past f64's range (over 308 digits) not parsed at all.
            let fits = text != "-0" && (text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok());
            if !fits {
                self.identical = false;
                self.parses &= digits.len() <= 300;
            }
            return !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
        }
        let Ok(value) = serde_json::from_str::<f64>(text) else {
            // Out of range (`1e400`), or not a number at all.
            self.parses = false;
            return true;
        };
        let mut spelled = Vec::with_capacity(text.len());
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut spelled, ReferenceFormatter);
        if value.serialize(&mut serializer).is_err() || spelled != text.as_bytes() {
            self.identical = false;
        }
        true
    }
}

/// Whether `digits` (a number without its sign) is a decimal the reference spells unchanged,
/// told without parsing: `d.d` with at most 15 significant digits, at least 0.1, and no
/// trailing zero but in `d.0`. Such a decimal is the shortest that round-trips to its float
/// (15 digits always survive the trip), which is what the reference prints.
fn is_short_plain_decimal(digits: &[u8]) -> bool {
    let Some(point) = digits.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (whole, fraction) = (&digits[..point], &digits[point + 1..]);
    let all_digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    if !all_digits(whole) || !all_digits(fraction) {
        return false;
    }
    let significant = if whole == b"0" {
        // Below 1: only from 0.1 on is it written without an exponent for sure.
        if fraction[0] == b'0' {
            return false;
        }
        fraction.len()
    } else {
        if whole[0] == b'0' {
            return false;
        }
        whole.len() + fraction.len()
    };
    let trailing_zero = fraction.len() > 1 && fraction.ends_with(b"0");
    significant <= 15 && !trailing_zero && !(whole == b"0" && fraction == b"0")
}

/// `u00xx` naming a control character serde_json escapes that way (not one with a short form).
fn is_spelled_control(escape: &[u8]) -> bool {
    let Some(hex) = escape.get(1..5) else {
        return false;
    };
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if !hex.starts_with(b"00") || !hex.iter().all(lower_hex) {
        return false;
    }
    let Ok(code) = u8::from_str_radix(std::str::from_utf8(&hex[2..]).unwrap_or("zz"), 16) else {
        return false;
    };
    code < 0x20 && !matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What the writer prints for `json` once parsed.
    fn printed(json: &str) -> Vec<u8> {
        let value: Value = serde_json::from_str(json).unwrap();
        let mut out = Vec::new();
        crate::write_record_json(&mut out, "s", &value, 7).unwrap();
        out
    }

    fn printed_as_sent(json: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_record_json_as_sent(&mut out, "s", json.as_bytes(), 7).unwrap();
        out
    }

    /// A small deterministic generator of JSON texts in many spellings.
    struct Texts {
        state: u64,
    }

    impl Texts {
        fn below(&mut self, bound: u64) -> u64 {
            self.state = self
                .state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.state >> 33) % bound
        }

        fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
            options[self.below(options.len() as u64) as usize]
        }

        fn space(&mut self, out: &mut String) {
            if self.below(12) == 0 {
                out.push_str(self.pick(&[" ", "\n", "\t", "  "]));
            }
        }

        fn value(&mut self, depth: u32, out: &mut String) {
            let kind = if depth > 3 {
                self.below(4)
            } else {
                self.below(7)
            };
            match kind {
                0 => out.push_str(self.pick(&["true", "false", "null"])),
                1 => out.push_str(self.pick(&[
                    "0",
                    "-0",
                    "7",
                    "-12",
                    "123456789012345678",
                    "9223372036854775807",
                    "-9223372036854775808",
                    "18446744073709551615",
                    "18446744073709551616",
                    "1.5",
                    "12.50",
                    "0.1",
                    "-0.0",
                    "0.0",
                    "1e5",
                    "1E5",
                    "1e+16",
                    "1e16",
                    "1.5e-7",
                    "100000.0",
                    "12.0",
                    "0.00001",
                    "1e-05",
                    "3.141592653589793",
                    "2.5e+300",
                    "1e400",
                    "-1e999",
                    "123456789012345678901234567890",
                ])),
                2 | 3 => self.string(out),
                4 => {
                    out.push('[');
                    for i in 0..self.below(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        self.space(out);
                        self.value(depth + 1, out);
                    }
                    out.push(']');
                }
                _ => self.object(depth + 1, out),
            }
        }

        fn string(&mut self, out: &mut String) {
            out.push('"');
            for _ in 0..self.below(5) {
                out.push_str(self.pick(&[
                    "a",
                    "key",
                    "é",
                    "🦀",
                    " ",
                    "\\\"",
                    "\\\\",
                    "\\n",
                    "\\t",
                    "\\r",
                    "\\b",
                    "\\f",
                    "\\/",
                    "\\u001f",
                    "\\u001F",
                    "\\u000a",
                    "\\u00e9",
                    "\\u0000",
                    "\\ud83e\\udd80",
                    "\\ud800",
                    "\\udc00x",
                ]));
            }
            out.push('"');
        }

        fn object(&mut self, depth: u32, out: &mut String) {
            out.push('{');
            for i in 0..self.below(5) {
                if i > 0 {
                    out.push(',');
                }
                self.space(out);
                out.push('"');
                out.push_str(self.pick(&["a", "b", "c", "id", "\\u0061"]));
                out.push('"');
                self.space(out);
                out.push(':');
                self.value(depth, out);
            }
            self.space(out);
            out.push('}');
        }
    }

    #[test]
    fn as_sent_never_differs_from_printing_the_parsed_record() {
        let mut texts = Texts { state: 42 };
        let mut seen = [0usize; 3];
        for _ in 0..100_000 {
            let mut text = String::new();
            texts.object(0, &mut text);
            let parsed = serde_json::from_str::<Value>(&text);
            match classify_as_sent(text.as_bytes()) {
                AsSent::Identical => {
                    seen[0] += 1;
                    assert_eq!(
                        String::from_utf8(printed_as_sent(&text)).unwrap(),
                        String::from_utf8(printed(&text)).unwrap(),
                        "{text}"
                    );
                }
                AsSent::Reprint => {
                    seen[1] += 1;
                    assert!(parsed.is_ok(), "{text} is not sure to parse: {parsed:?}");
                }
                AsSent::Unsure => seen[2] += 1,
            }
        }
        // Every outcome must be common, or the test proves little.
        assert!(seen.iter().all(|&n| n > 2_000), "{seen:?}");
    }

    #[test]
    fn short_plain_decimals_are_spelled_unchanged() {
        // A fixed pseudo-random walk over decimals of every length and magnitude.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % bound
        };
        let mut accepted = 0;
        for _ in 0..50_000 {
            let whole = match next(3) {
                0 => "0".to_owned(),
                _ => {
                    let magnitude = 10u64.pow(next(16) as u32);
                    (next(magnitude) + 1).to_string()
                }
            };
            let fraction: String = (0..=next(17))
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            let text = format!("{whole}.{fraction}");
            if !is_short_plain_decimal(text.as_bytes()) {
                continue;
            }
            accepted += 1;
            let value: f64 = text.parse().unwrap();
            let mut spelled = Vec::new();
            let mut serializer =
                serde_json::Serializer::with_formatter(&mut spelled, ReferenceFormatter);
            value.serialize(&mut serializer).unwrap();
            assert_eq!(String::from_utf8(spelled).unwrap(), text);
        }
        assert!(
            accepted > 5_000,
            "only {accepted} decimals took the short path"
        );
    }

    #[test]
    fn as_sent_exactly_when_parsing_and_printing_gives_the_same_bytes() {
        let cases = [
            r#"{"id":1,"name":"a","tags":["x","y"],"n":{"k":null,"j":[]},"ok":true}"#,
            r#"{}"#,
            r#"{"a":1.5,"b":0.1,"c":1e+16,"d":1.5e-7,"e":12.0,"f":-3}"#,
            r#"{"a":1.50}"#,
            r#"{"a":12.5,"b":0.5,"c":0.05,"d":-1.25,"e":100.0,"f":12.00,"g":0.0}"#,
            r#"{"a":123456789012345.6,"b":12345678901234.5,"c":0.123456789012345}"#,
            r#"{"a":0.1234567890123456,"b":99999999999999.9,"c":1.7976931348623157}"#,
            r#"{"a":1E5}"#,
            r#"{"a":1e16}"#,
            r#"{"a":100000.0}"#,
            r#"{"a":-0}"#,
            r#"{"a":-0.0}"#,
            r#"{"a":18446744073709551615,"b":-9223372036854775808}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":"é ü \" \\ \n \t \r \b \f \u001f \u0000"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":null}"#,
            r#"{"a":{"b":null}}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"{"a": 1}"#,
            r#" {"a":1}"#,
            r#"{"a":[1, 2]}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"{"\u0061":1,"a":2}"#,
        ];
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(!prints_as_sent(deep.as_bytes()));
        let nested = format!(r#"{{"a":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(prints_as_sent(nested.as_bytes()));
        for json in cases {
            if prints_as_sent(json.as_bytes()) {
                assert_eq!(printed_as_sent(json), printed(json), "{json}");
            }
        }
        let accepted = [
            r#"{"id":1,"name":"a","tags":["x","y"],"n":{"k":null,"j":[]},"ok":true}"#,
            r#"{}"#,
            r#"{"a":1.5,"b":0.1,"c":1e+16,"d":1.5e-7,"e":12.0,"f":-3}"#,
            r#"{"a":18446744073709551615,"b":-9223372036854775808}"#,
            r#"{"a":"é ü \" \\ \n \t \r \b \f \u001f \u0000"}"#,
            r#"{"a":{"b":null}}"#,
            r#"{"a":[1,{"b":[]}]}"#,
            r#"{"a":12.5,"b":0.5,"d":-1.25,"e":100.0,"f":99999999999999.9}"#,
        ];
        for json in accepted {
            assert!(prints_as_sent(json.as_bytes()), "{json}");
        }
        let as_sent = cases
            .iter()
            .filter(|j| prints_as_sent(j.as_bytes()))
            .count();
        assert!(as_sent >= 5, "only {as_sent} cases print as sent");
    }
}
