//! The common case of [`RecordScanner::scan_record`](super::RecordScanner::scan_record), in one
//! tight pass: a compact record the reference prints exactly as sent.
//!
//! Most records of a page are compact, with plain strings, integers and short decimals, and
//! every record has the keys of the one before it, in the same order. This pass accepts only
//! such records, keeping its place in locals rather than in the general scanner's state, and
//! checks a record's top-level keys against the last record's instead of against each other.
//! Anything else (whitespace, an escape serde_json writes otherwise, a top-level `null` left out,
//! a number the reference may spell otherwise, a repeated key) is left to the general scan,
//! which then starts the record again. Callgrind on `cargo xtask bench` scenario (a): the
//! general scan took about 3,000 instructions for each 160-byte record.

use super::{BACKSLASHES, MAX_DEPTH, QUOTES, SentEntry, zero_bytes};

/// The top-level keys of the last record scanned here, all different, back to back.
#[derive(Debug, Default, Clone)]
pub(super) struct LastKeys {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<usize>,
}

impl LastKeys {
    fn key(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        Some(&self.bytes[start..end])
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn replace(&mut self, record: &[u8], keys: &[(usize, usize)]) {
        self.bytes.clear();
        self.ends.clear();
        for &(start, end) in keys {
            self.bytes.extend_from_slice(&record[start..end]);
            self.ends.push(self.bytes.len());
        }
    }
}

/// What the pass notes of a record's top level.
pub(super) struct TopLevel<'s> {
    /// Records are scanned for editing: top-level nulls are kept, and the entries noted.
    pub editing: bool,
    pub entries: &'s mut Vec<SentEntry>,
    pub watch: Option<&'s [u8]>,
    pub watched: &'s mut Option<SentEntry>,
    pub last_keys: &'s mut LastKeys,
    /// Set when the record has exactly the keys of `last_keys`, in order.
    pub same_keys: &'s mut bool,
    /// The keys of the open objects (start and end), innermost last.
    pub keys: &'s mut Vec<(usize, usize)>,
}

/// The length of the record `bytes` starts with, when the reference prints it exactly as sent
/// and it is simple enough for this pass; `None` sends it to the general scan. Call only on
/// text without control bytes (which JSON forbids in strings, unchecked here); the entries and
/// the watched key are noted as [`RecordScanner::scan_record`](super::RecordScanner::scan_record)
/// notes them (and may be left half noted when it gives up).
pub(super) fn identical_record(bytes: &[u8], top: TopLevel<'_>) -> Option<usize> {
    let TopLevel {
        editing,
        entries,
        watch,
        watched,
        last_keys,
        same_keys,
        keys,
    } = top;
    keys.clear();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut at = 1;
    if *bytes.get(at)? == b'}' {
        *same_keys = last_keys.len() == 0;
        last_keys.replace(bytes, &[]);
        return Some(at + 1);
    }
    // Whether every key so far is the last record's key at the same place: those are all
    // different, so then no key is repeated.
    let mut as_last_record = true;
    loop {
        let key_start = at;
        let index = keys.len();
        at = new_key(bytes, at, keys, |key| {
            as_last_record =
                as_last_record && last_keys.key(index).is_some_and(|last| same(last, key));
            as_last_record
        })?;
        let key = &bytes[key_start..at];
        keys.push((key_start, at));
        if *bytes.get(at)? != b':' {
            return None;
        }
        let value_start = at + 1;
        at = value(bytes, value_start, 1, keys)?;
        let entry = || SentEntry {
            key: key_start..value_start - 1,
            value: value_start..at,
        };
        if editing {
            entries.push(entry());
        } else if bytes[value_start] == b'n' {
            // A top-level null, which the reference leaves out.
            return None;
        }
        if watch == Some(key) {
            *watched = Some(entry());
        }
        match *bytes.get(at)? {
            b',' => at += 1,
            b'}' => break,
            _ => return None,
        }
    }
    // A record with fewer keys than the last one matches them as far as it goes.
    *same_keys = as_last_record && keys.len() == last_keys.len();
    if !*same_keys {
        last_keys.replace(bytes, keys);
    }
    Some(at + 1)
}

/// The end of the key at `at` (a string), when it is not one of `earlier`, the keys of its
/// object so far; `known_new` may tell so from the key alone.
#[inline(always)]
fn new_key(
    bytes: &[u8],
    at: usize,
    earlier: &[(usize, usize)],
    known_new: impl FnOnce(&[u8]) -> bool,
) -> Option<usize> {
    if *bytes.get(at)? != b'"' {
        return None;
    }
    let end = string(bytes, at + 1)?;
    let key = &bytes[at..end];
    let repeated = !known_new(key)
        && earlier
            .iter()
            .any(|&(start, end)| same(&bytes[start..end], key));
    (!repeated).then_some(end)
}

/// The end of the value at `at`, in an object or array `depth` deep: strings and numbers here,
/// in the caller's loop.
#[inline(always)]
fn value(bytes: &[u8], at: usize, depth: usize, keys: &mut Vec<(usize, usize)>) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string(bytes, at + 1),
        b'-' | b'0'..=b'9' => number(bytes, at),
        _ => other_value(bytes, at, depth, keys),
    }
}

fn other_value(
    bytes: &[u8],
    at: usize,
    depth: usize,
    keys: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    match *bytes.get(at)? {
        b'{' if depth < MAX_DEPTH => object(bytes, at, depth + 1, keys),
        b'[' if depth < MAX_DEPTH => array(bytes, at, depth + 1, keys),
        b't' => word(bytes, at, b"true"),
        b'f' => word(bytes, at, b"false"),
        b'n' => word(bytes, at, b"null"),
        _ => None,
    }
}

fn word(bytes: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    bytes[at..].starts_with(word).then_some(at + word.len())
}

/// A nested object from its `{`, its keys stacked on `keys` while it is open.
fn object(
    bytes: &[u8],
    mut at: usize,
    depth: usize,
    keys: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    at += 1;
    if *bytes.get(at)? == b'}' {
        return Some(at + 1);
    }
    let first_key = keys.len();
    loop {
        let key_start = at;
        at = new_key(bytes, at, &keys[first_key..], |_| false)?;
        keys.push((key_start, at));
        if *bytes.get(at)? != b':' {
            return None;
        }
        at = value(bytes, at + 1, depth, keys)?;
        match *bytes.get(at)? {
            b',' => at += 1,
            b'}' => {
                keys.truncate(first_key);
                return Some(at + 1);
            }
            _ => return None,
        }
    }
}

fn array(
    bytes: &[u8],
    mut at: usize,
    depth: usize,
    keys: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    at += 1;
    if *bytes.get(at)? == b']' {
        return Some(at + 1);
    }
    loop {
        at = value(bytes, at, depth, keys)?;
        match *bytes.get(at)? {
            b',' => at += 1,
            b']' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// The end of the string whose first byte (after its quote) is at `at`: after its closing
/// quote. Only the escapes serde_json writes itself are taken.
///
/// Eight bytes at a time to the end, rather than through the general scan's
/// `quote_or_backslash`, whose hand-over to memchr and separate tail cost this pass 11% more
/// instructions (callgrind on `cargo xtask bench` scenario (a): 361 M against 403 M).
#[inline]
fn string(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        while let Some(chunk) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let found = zero_bytes(word ^ QUOTES) | zero_bytes(word ^ BACKSLASHES);
            if found != 0 {
                at += (found.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        match *bytes.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => match *bytes.get(at + 1)? {
                b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                _ => return None,
            },
            _ => at += 1,
        }
    }
}

/// The end of the number at `at`, when the reference prints it as sent for sure: an integer
/// within 64 bits, or a decimal that is [short and plain](super::is_short_plain_decimal), told
/// from the digits' counts as they are read.
#[inline]
fn number(bytes: &[u8], start: usize) -> Option<usize> {
    let digits_start = start + usize::from(bytes[start] == b'-');
    let mut at = digits_start;
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    let whole = at - digits_start;
    let below_one = whole == 1 && bytes[digits_start] == b'0';
    if bytes.get(at) != Some(&b'.') {
        // JSON has no leading zeros (`01`), `-0` prints as `-0.0`, and at most 18 digits fit
        // in an i64 whatever they are.
        let plain =
            whole > 0 && !(bytes[digits_start] == b'0' && (whole > 1 || start < digits_start));
        let exponent = matches!(bytes.get(at), Some(b'e' | b'E'));
        return (plain && !exponent && at - start <= 18).then_some(at);
    }
    if whole == 0 || (bytes[digits_start] == b'0' && !below_one) {
        return None;
    }
    let fraction_start = at + 1;
    at = fraction_start;
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    let fraction = at - fraction_start;
    if fraction == 0 || matches!(bytes.get(at), Some(b'e' | b'E')) {
        return None;
    }
    // Below 1, only from 0.1 on is it printed without an exponent; a trailing zero is
    // dropped (but in `d.0`); past 15 significant digits the float may print otherwise.
    let significant = if below_one {
        if bytes[fraction_start] == b'0' {
            return None;
        }
        fraction
    } else {
        whole + fraction
    };
    let trailing_zero = fraction > 1 && bytes[at - 1] == b'0';
    (significant <= 15 && !trailing_zero).then_some(at)
}

/// Whether two short byte strings (keys) are equal, a word at a time: most keys are shorter
/// than the call memcmp needs.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    let word = |bytes: &[u8], at: usize| {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
    };
    let half = |bytes: &[u8], at: usize| {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default())
    };
    match len {
        0..4 => a == b,
        4..8 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_compare_as_slices_do() {
        let texts = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "bbcd",
            "abcdefg",
            "abcdefh",
            "zbcdefg",
            "abcdefgh",
            "abcdefgi",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "bbcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
        }
    }

    #[test]
    fn numbers_are_taken_only_when_printed_as_sent() {
        for (text, taken) in [
            ("0", true),
            ("7", true),
            ("-12", true),
            ("123456789012345678", true),
            ("1234567890123456789", false),
            ("-0", false),
            ("01", false),
            ("-01", false),
            ("0.5", true),
            ("-0.5", true),
            ("12.5", true),
            ("12.50", false),
            ("0.05", false),
            ("1e5", false),
            ("1.5E3", false),
            ("-", false),
            ("1.", false),
            ("0.1", true),
            ("0.0", false),
            ("-0.0", false),
            ("12.0", true),
            ("100000.0", true),
            ("3.14159265358979", true),
            ("3.141592653589793", false),
            ("0.123456789012345", true),
            ("0.1234567890123456", false),
            ("00.5", false),
            ("1.5e3", false),
            ("-", false),
        ] {
            let bytes = format!("{text},").into_bytes();
            let end = number(&bytes, 0);
            assert_eq!(end.is_some(), taken, "{text}");
            if taken {
                assert_eq!(end, Some(text.len()), "{text}");
            }
        }
    }
}
