//! Finding a top-level field of a record as sent, without parsing the record.
//!
//! A cursor reads one field of every record. Parsing the record into a map to read it cost more
//! than everything else done to a record kept as sent (callgrind on `cargo xtask bench` scenario
//! (j): 11,600 instructions a record through serde's map, about a tenth of that here), so the
//! record's top level is walked by hand: strings skipped to their closing quote, nested values
//! to their closing bracket, nothing decoded but the keys compared.

use std::ops::Range;

/// The byte range of the value of the top-level key `name` in `record`, the last one when the
/// key is repeated (as Python and `serde_json` keep it). `record` must be valid JSON (records
/// kept as sent were checked to parse); anything else gives `None`, never a panic.
///
/// ```
/// let record = br#"{"id": 1, "nested": {"updated_at": "x"}, "updated_at": "2024-01-02"}"#;
/// let range = sluice_records::top_level_value(record, "updated_at").unwrap();
/// assert_eq!(&record[range], br#""2024-01-02""#);
/// assert!(sluice_records::top_level_value(record, "missing").is_none());
/// ```
pub fn top_level_value(record: &[u8], name: &str) -> Option<Range<usize>> {
    let mut at = skip_whitespace(record, 0);
    if record.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(record, at + 1);
    let mut found = None;
    if record.get(at) == Some(&b'}') {
        return None;
    }
    loop {
        if record.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(record, at)?;
        let is_name = key_is(&record[at..key_end], name);
        at = skip_whitespace(record, key_end);
        if record.get(at) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(record, at + 1);
        let value_end = value_end(record, value_start)?;
        if is_name {
            found = Some(value_start..value_end);
        }
        at = skip_whitespace(record, value_end);
        match record.get(at)? {
            b',' => at = skip_whitespace(record, at + 1),
            b'}' => return found,
            _ => return None,
        }
    }
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Just past the string whose opening quote is at `start`.
pub(crate) fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'\\' {
            at += 2;
        } else {
            return Some(at + 1);
        }
    }
}

/// Just past the value that starts at `start`.
pub(crate) fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = start;
            loop {
                match bytes.get(at)? {
                    b'"' => {
                        at = string_end(bytes, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        // A number, `true`, `false` or `null`: up to the next separator or space.
        _ => {
            let rest = &bytes[start..];
            let end = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))?;
            Some(start + end)
        }
    }
}

/// Whether the quoted key (quotes included) is `name`, decoding it only when it has escapes.
fn key_is(quoted: &[u8], name: &str) -> bool {
    let inner = &quoted[1..quoted.len() - 1];
    if !inner.contains(&b'\\') {
        return inner == name.as_bytes();
    }
    serde_json::from_slice::<String>(quoted).is_ok_and(|key| key == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'r>(record: &'r str, name: &str) -> Option<&'r str> {
        top_level_value(record.as_bytes(), name).map(|range| &record[range])
    }

    #[test]
    fn finds_top_level_values_of_every_kind() {
        let record = r#"{"s":"a\"}b","n":-1.5e3,"t":true,"z":null,"o":{"s":"in","x":[1,{"y":"]"}]},"l":[],"e":""}"#;
        assert_eq!(field(record, "s"), Some(r#""a\"}b""#));
        assert_eq!(field(record, "n"), Some("-1.5e3"));
        assert_eq!(field(record, "t"), Some("true"));
        assert_eq!(field(record, "z"), Some("null"));
        assert_eq!(field(record, "o"), Some(r#"{"s":"in","x":[1,{"y":"]"}]}"#));
        assert_eq!(field(record, "l"), Some("[]"));
        assert_eq!(field(record, "e"), Some(r#""""#));
        // Only the top level.
        assert_eq!(field(record, "y"), None);
        assert_eq!(field(record, "x"), None);
    }

    #[test]
    fn takes_spaces_repeats_and_escaped_keys_as_json_does() {
        let record = " {\n \"a\" : 1 ,\t\"a\":[ 2 ] , \"\\u0062\": \"c\" } ";
        assert_eq!(field(record, "a"), Some("[ 2 ]"));
        assert_eq!(field(record, "b"), Some("\"c\""));
        assert_eq!(field("{}", "a"), None);
        assert_eq!(field("{ }", "a"), None);
    }

    #[test]
    fn anything_but_an_object_gives_nothing() {
        for text in [
            "[1]",
            "\"a\"",
            "",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":\"x",
            "{\"a\":1 2}",
        ] {
            assert_eq!(field(text, "a"), None, "{text}");
        }
    }

    /// Pseudo-random records, spaced and repeated as APIs send them: the field found must be
    /// the field parsing the record gives.
    #[test]
    fn agrees_with_parsing_the_record() {
        let mut state: u64 = 11;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let values = [
            "1",
            "-2.5e3",
            "true",
            "null",
            r#""x,}""#,
            r#""\"""#,
            "[1, {\"a\": [2]}]",
            r#"{"a": {"b": "}"}}"#,
            "[]",
            "{}",
            r#""\u0061""#,
        ];
        let keys = ["a", "b", "\\u0061", "c d"];
        let spaces = ["", " ", "\n  ", "\t"];
        let mut found = 0;
        for _ in 0..20_000 {
            let mut text = String::from(spaces[next(4) as usize]);
            text.push('{');
            for index in 0..next(5) {
                if index > 0 {
                    text.push(',');
                }
                text.push_str(spaces[next(4) as usize]);
                text.push_str(&format!("\"{}\"", keys[next(4) as usize]));
                text.push_str(spaces[next(4) as usize]);
                text.push(':');
                text.push_str(spaces[next(4) as usize]);
                text.push_str(values[next(values.len() as u64) as usize]);
                text.push_str(spaces[next(4) as usize]);
            }
            text.push('}');
            let parsed: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            for name in ["a", "b", "c d", "z"] {
                let scanned = top_level_value(text.as_bytes(), name)
                    .map(|range| serde_json::from_str::<serde_json::Value>(&text[range]).unwrap());
                assert_eq!(scanned.as_ref(), parsed.get(name), "{name} in {text}");
                found += usize::from(scanned.is_some());
            }
        }
        assert!(found > 20_000, "only {found} fields found");
    }
}
