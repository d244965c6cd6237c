//! Records written as the API sent them, when that is byte for byte what the reference prints.
//!
//! Parsing a record only to print it again costs most of a plain read. Most APIs send compact
//! JSON that the reference (json.loads, then orjson) would print unchanged; [`prints_as_sent`]
//! tells when that holds, so the record's bytes can be copied instead. When they differ only in
//! tokens spelled otherwise (`12.50` for `12.5`, whitespace, `\/`, a top-level `null` the
//! reference leaves out), [`RecordScanner`] respells those tokens in a copy of the record
//! instead of parsing it.

use std::io::{self, Write};
use std::ops::Range;

use serde::Serialize;

use crate::json::ReferenceFormatter;

mod identical;

/// What the reference would print for a record's JSON, as an API sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsSent {
    /// Exactly these bytes: an object, no whitespace, no top-level `null` (the reference
    /// leaves those out), no repeated key, strings escaped only where JSON requires it and as
    /// serde_json spells it, integers within 64 bits, floats spelled as the reference spells
    /// them. Copy it.
    Identical,
    /// Other bytes, and the JSON parses for sure: parse it and print the value (anywhere).
    /// [`RecordScanner::scan_record`] gives [`AsSent::Respelled`] instead where it can.
    Reprint,
    /// Other bytes, which the scanner respelled as the reference prints them (only from
    /// [`RecordScanner::scan_record`]).
    Respelled,
    /// It may not parse (an escaped surrogate, a number out of range, deep nesting, not
    /// valid JSON): parse it before relying on it.
    Unsure,
}

/// Classifies the record data `json` (one JSON value, as an API sent it) against what
/// [`write_record_json`](crate::write_record_json) prints once it is parsed: never
/// [`AsSent::Respelled`].
pub fn classify_as_sent(json: &[u8]) -> AsSent {
    let Some(mut scanner) = RecordScanner::for_text(json) else {
        return AsSent::Unsure;
    };
    let mut respelled = Vec::new();
    match scanner.scan_record(json, &mut respelled) {
        Some((len, class)) if len == json.len() => match class {
            AsSent::Respelled => AsSent::Reprint,
            class => class,
        },
        _ => AsSent::Unsure,
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

/// Scans the records of one text (a response body) as sent: each is checked to be well-formed
/// JSON, classified, and respelled where only some of its tokens differ from the reference's
/// spelling. One scanner serves a whole body; its buffers are reused from record to record.
///
/// ```
/// use sluice_protocol::{AsSent, RecordScanner};
///
/// let body = br#"[{"id":1,"amount":12.50,"note":null},{"id":2}]"#;
/// let mut scanner = RecordScanner::for_text(body).expect("UTF-8");
/// let mut respelled = Vec::new();
/// let (len, class) = scanner.scan_record(&body[1..], &mut respelled).unwrap();
/// assert_eq!((len, class), (35, AsSent::Respelled));
/// assert_eq!(respelled, br#"{"id":1,"amount":12.5}"#);
/// assert_eq!(scanner.scan_record(&body[37..], &mut respelled), Some((8, AsSent::Identical)));
/// assert_eq!(scanner.skip_value(br#"[1, "a"] tail"#), Some(8));
/// // For editing: top-level nulls kept, and where the entries are as printed (`12.5`).
/// scanner.for_editing(true);
/// let mut printed = Vec::new();
/// assert_eq!(scanner.scan_record(&body[1..], &mut printed), Some((35, AsSent::Respelled)));
/// assert_eq!(printed, br#"{"id":1,"amount":12.5,"note":null}"#);
/// let entries = scanner.entries();
/// assert_eq!((entries[1].key.clone(), entries[1].value.clone()), (8..16, 17..21));
/// ```
#[derive(Debug, Default, Clone)]
pub struct RecordScanner {
    /// The text may hold bytes below 0x20, which JSON allows only as whitespace between
    /// tokens: strings are then checked for them (most bodies hold none, and skip the check).
    controls_possible: bool,
    /// The keys of the open objects, as sent (start and end), innermost last: one stack for
    /// the whole record rather than a list per object.
    keys: Vec<(usize, usize)>,
    /// A number's spelling, reused.
    spelled: Vec<u8>,
    /// The top-level entries of the last record scanned.
    entries: Vec<SentEntry>,
    /// Records are scanned for editing (see [`RecordScanner::for_editing`]).
    editing: bool,
    /// The key watched ([`RecordScanner::watch`]), quoted as sent, and where the last record
    /// scanned has it.
    watch: Option<Vec<u8>>,
    watched: Option<SentEntry>,
    /// The top-level keys of the last record the quick pass took.
    last_keys: identical::LastKeys,
    /// `last_keys` are those of the last record scanned.
    last_keys_current: bool,
    /// The last record scanned has the top-level keys of the one before it.
    same_keys: bool,
    /// How often the quick pass gave up lately ([`QUICK_MISS`] for each miss, one off for each
    /// record it took), and records scanned without it since it was last tried.
    quick_misses: u32,
    quick_skipped: u32,
    /// Only the general scan is used (set by tests, to check the quick pass against it).
    general_only: bool,
}

/// A top-level entry of a record as sent: where its key (quotes included) and its value are,
/// counted from the record's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEntry {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

impl RecordScanner {
    /// A scanner for values found in `text`, or `None` when `text` is not UTF-8 (and so not
    /// JSON). Every slice later given to the scanner must come from `text`.
    pub fn for_text(text: &[u8]) -> Option<RecordScanner> {
        Some(RecordScanner::for_str(std::str::from_utf8(text).ok()?))
    }

    /// [`RecordScanner::for_text`] for text known to be UTF-8, which is not checked again.
    pub fn for_str(text: &str) -> RecordScanner {
        let mut scanner = RecordScanner::default();
        scanner.use_str(text);
        scanner
    }

    /// Scans values found in `text` from now on, as a scanner [made for it](RecordScanner::for_text)
    /// would, keeping this one's settings and buffers; false, and nothing changed, when `text` is
    /// not UTF-8. One scanner can then serve many small texts without allocating for each.
    pub fn use_text(&mut self, text: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        self.use_str(text);
        true
    }

    /// [`RecordScanner::use_text`] for text known to be UTF-8.
    fn use_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        self.controls_possible = bytes.iter().fold(false, |seen, &b| seen | (b < 0x20));
    }

    /// Scans values found within a record this scanner's kind found the reference prints as
    /// it is (its bytes as sent when [`AsSent::Identical`], else the respelled bytes), from now
    /// on, keeping this one's settings and buffers: such text is UTF-8 with no control byte,
    /// so unlike [`RecordScanner::use_text`] it is not read to check that again.
    pub fn use_printed_text(&mut self) {
        self.controls_possible = false;
    }

    /// Scans the record (a JSON object) that `bytes` starts with: its length and what the
    /// reference prints for it. For [`AsSent::Respelled`] those bytes are appended to
    /// `respelled`; otherwise `respelled` is left as it was. `None` when `bytes` does not start
    /// with a well-formed JSON object.
    pub fn scan_record(
        &mut self,
        bytes: &[u8],
        respelled: &mut Vec<u8>,
    ) -> Option<(usize, AsSent)> {
        self.entries.clear();
        self.watched = None;
        let previous_keys_known = std::mem::take(&mut self.last_keys_current);
        self.same_keys = false;
        // Text with control bytes has its strings checked for them, which the quick pass
        // does not do.
        if !self.controls_possible && !self.general_only && self.try_quick_pass() {
            let mut same_keys = false;
            let top = identical::TopLevel {
                editing: self.editing,
                entries: &mut self.entries,
                watch: self.watch.as_deref(),
                watched: &mut self.watched,
                last_keys: &mut self.last_keys,
                same_keys: &mut same_keys,
                keys: &mut self.keys,
            };
            if let Some(len) = identical::identical_record(bytes, top) {
                self.keys.clear();
                self.quick_misses = self.quick_misses.saturating_sub(1);
                self.last_keys_current = true;
                self.same_keys = previous_keys_known && same_keys;
                return Some((len, AsSent::Identical));
            }
            self.quick_misses = (self.quick_misses + QUICK_MISS).min(QUICK_MISSES_KEPT);
            self.keys.clear();
            self.entries.clear();
            self.watched = None;
        }
        let kept = respelled.len();
        let mut scan = self.scan(bytes, respelled);
        let well_formed = scan.object(true);
        scan.keys.clear();
        if !well_formed {
            scan.out.truncate(kept);
            return None;
        }
        let len = scan.at;
        let class = if !scan.parses {
            AsSent::Unsure
        } else if scan.reprint {
            AsSent::Reprint
        } else if scan.copied == 0 {
            AsSent::Identical
        } else {
            scan.out.extend_from_slice(&bytes[scan.copied..len]);
            return Some((len, AsSent::Respelled));
        };
        scan.out.truncate(kept);
        Some((len, class))
    }

    /// Whether the next record goes through the quick pass first: unless it gave up on most
    /// records lately (each miss scans part of a record twice: scenario (l)'s orders, most of
    /// which have a decimal to respell, took 30% more instructions), and then still every
    /// [`QUICK_PROBE`]th record, to notice when records change.
    fn try_quick_pass(&mut self) -> bool {
        if self.quick_misses <= QUICK_OFF_ABOVE {
            return true;
        }
        self.quick_skipped += 1;
        if self.quick_skipped < QUICK_PROBE {
            return false;
        }
        self.quick_skipped = 0;
        true
    }

    /// Scans the next record as if no record had been scanned before it: for a scanner cloned
    /// to scan records that do not follow the last one (another part of the page).
    pub fn forget_last_record(&mut self) {
        self.last_keys_current = false;
        self.same_keys = false;
    }

    /// Whether the record just scanned has the top-level keys of the one scanned before it, as
    /// sent and in the same order (told by the quick pass, which compares them anyway; false
    /// when it cannot tell).
    pub fn same_keys_as_last(&self) -> bool {
        self.same_keys
    }

    /// When scanning [for editing](RecordScanner::for_editing), the top-level entries of the
    /// record [`RecordScanner::scan_record`] scanned last, in the order sent (a repeated key
    /// included), where they are in the record as printed: as sent, or respelled. Empty
    /// otherwise.
    pub fn entries(&self) -> &[SentEntry] {
        &self.entries
    }

    /// Notes where records have the top-level key `key` ([`RecordScanner::watched`]), a
    /// cursor's field, whose value is then read without scanning the record again. Whether
    /// the key can be watched: one JSON spells with escapes cannot (nothing is then noted).
    pub fn watch(&mut self, key: Option<&str>) -> bool {
        let key =
            key.filter(|key| !key.contains(['"', '\\']) && !key.chars().any(char::is_control));
        self.watch = key.map(|key| format!("\"{key}\"").into_bytes());
        self.watch.is_some()
    }

    /// Where the record [`RecordScanner::scan_record`] scanned last has the
    /// [watched](RecordScanner::watch) key and its value, in the record as printed; `None`
    /// when it does not have it (or has it as a top-level `null` left out).
    pub fn watched(&self) -> Option<&SentEntry> {
        self.watched.as_ref()
    }

    /// Scans records that are edited before they are printed: their top-level entries are
    /// noted ([`RecordScanner::entries`]) and their top-level `null`s kept, for templates must
    /// see those keys. Such a record prints as the reference prints it only once its top-level
    /// nulls are left out, and one whose only difference is top-level nulls counts as
    /// [`AsSent::Identical`].
    pub fn for_editing(&mut self, editing: bool) {
        self.editing = editing;
    }

    /// The length of the well-formed JSON value (of any kind) that `bytes` starts with, after
    /// any whitespace; `None` when there is none.
    pub fn skip_value(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut out = Vec::new();
        let mut scan = self.scan(bytes, &mut out);
        let well_formed = scan.value() && scan.parses;
        scan.keys.clear();
        well_formed.then_some(scan.at)
    }

    fn scan<'s>(&'s mut self, bytes: &'s [u8], out: &'s mut Vec<u8>) -> Scan<'s> {
        Scan {
            bytes,
            at: 0,
            depth: 0,
            entries: &mut self.entries,
            watch: self.watch.as_deref(),
            watched: &mut self.watched,
            keys: &mut self.keys,
            spelled: &mut self.spelled,
            controls_possible: self.controls_possible,
            in_key: false,
            reprint: false,
            parses: true,
            copied: 0,
            out_start: out.len(),
            out,
            editing: self.editing,
        }
    }
}

/// What a miss of the quick pass adds to [`RecordScanner`]'s count of them (a record it takes
/// takes one off): it stays in use while it takes more than four records in five.
const QUICK_MISS: u32 = 4;
/// The count above which the quick pass is only tried now and then, and the most it counts.
const QUICK_OFF_ABOVE: u32 = 16;
const QUICK_MISSES_KEPT: u32 = 32;
const QUICK_PROBE: u32 = 16;

/// Walks one JSON value. Each step returns whether the text is still well formed. A token the
/// reference spells otherwise is respelled into `out` when it can be on its own; what cannot
/// sets `reprint`, and what might not parse clears `parses`.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Open objects and arrays: deeper than serde_json's own limit allows is left to the parser
    /// (and this scan's recursion stays shallow).
    depth: usize,
    /// The record's top-level entries, as they are scanned.
    entries: &'a mut Vec<SentEntry>,
    watch: Option<&'a [u8]>,
    watched: &'a mut Option<SentEntry>,
    keys: &'a mut Vec<(usize, usize)>,
    spelled: &'a mut Vec<u8>,
    controls_possible: bool,
    /// Scanning an object's key: a key spelled otherwise could equal another once parsed, so
    /// it is not respelled (the record is reprinted).
    in_key: bool,
    reprint: bool,
    parses: bool,
    /// How much of `bytes` has been copied to `out`: nonzero once a token was respelled (a
    /// record starts with `{`, so nothing is respelled at 0).
    copied: usize,
    out: &'a mut Vec<u8>,
    /// Where this record's bytes start in `out`.
    out_start: usize,
    editing: bool,
}

/// Below serde_json's nesting limit (128), with room for how it counts.
const MAX_DEPTH: usize = 100;

impl Scan<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Where the byte at `at` (not in a range respelled yet) is in the record as printed.
    fn printed_at(&self, at: usize) -> usize {
        self.out.len() - self.out_start + at - self.copied
    }

    /// Replaces the bytes in `range` by `spelling` in the respelled copy. Ranges come in
    /// order; one that overlaps what was already copied cannot be respelled.
    fn respell(&mut self, range: Range<usize>, spelling: &[u8]) {
        if self.in_key || range.start < self.copied {
            self.reprint = true;
            return;
        }
        self.out
            .extend_from_slice(&self.bytes[self.copied..range.start]);
        self.out.extend_from_slice(spelling);
        self.copied = range.end;
    }

    /// Skips whitespace, which the reference never prints.
    #[inline]
    fn space(&mut self) {
        // Compact JSON has none: that case is kept to one comparison.
        if !matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            return;
        }
        self.more_space();
    }

    fn more_space(&mut self) {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
        if start == 0 {
            // Before the record: not part of it.
            self.reprint = true;
        } else {
            self.respell(start..self.at, b"");
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

    /// An object's members; its keys are stacked from `first_key` on. At the top level, an
    /// entry whose value is `null` is left out, with its comma.
    fn members(&mut self, top_level: bool, first_key: usize) -> bool {
        if !self.eat(b'{') {
            return false;
        }
        self.space();
        if self.eat(b'}') {
            return true;
        }
        // At the top level: whether an entry was kept before this one, where the comma before
        // this entry is, and whether the next comma goes with a left-out first entry.
        let mut kept_one = false;
        let mut comma_before = 0;
        let mut drop_next_comma = false;
        loop {
            self.space();
            let key_start = self.at;
            self.in_key = true;
            let key_ok = self.string();
            self.in_key = false;
            if !key_ok {
                return false;
            }
            // A repeated key (as sent): the parsed object keeps one entry.
            let key = &self.bytes[key_start..self.at];
            let bytes = self.bytes;
            if self.keys[first_key..]
                .iter()
                .any(|&(start, end)| end - start == key.len() && bytes[start..end] == *key)
            {
                self.reprint = true;
            }
            let key_end = self.at;
            self.keys.push((key_start, key_end));
            // Where the key is printed (nothing in it is respelled), when entries are noted.
            let watched = top_level && self.watch == Some(&self.bytes[key_start..key_end]);
            let noted = top_level && self.editing || watched;
            let printed_key = if noted {
                self.printed_at(key_start)..self.printed_at(key_end)
            } else {
                0..0
            };
            self.space();
            if !self.eat(b':') {
                return false;
            }
            self.space();
            let value_start = self.at;
            let printed_value_start = if noted {
                self.printed_at(value_start)
            } else {
                0
            };
            if !self.value() {
                return false;
            }
            let is_null = &self.bytes[value_start..self.at] == b"null";
            if noted {
                let entry = SentEntry {
                    key: printed_key,
                    value: printed_value_start..self.printed_at(self.at),
                };
                if watched {
                    // A repeated key: the parsed object keeps the last value.
                    *self.watched = (self.editing || !is_null).then(|| entry.clone());
                }
                if top_level && self.editing {
                    self.entries.push(entry);
                }
            }
            if top_level && is_null && !self.editing {
                if kept_one {
                    self.respell(comma_before..self.at, b"");
                } else {
                    self.respell(key_start..self.at, b"");
                    drop_next_comma = true;
                }
            } else {
                kept_one = true;
            }
            self.space();
            if self.eat(b'}') {
                return true;
            }
            comma_before = self.at;
            if !self.eat(b',') {
                return false;
            }
            if std::mem::take(&mut drop_next_comma) {
                self.respell(comma_before..self.at, b"");
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
    /// Other escapes of one character are respelled as serde_json writes that character.
    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            let Some(offset) = quote_or_backslash(&self.bytes[self.at..]) else {
                return false;
            };
            if self.controls_possible
                && self.bytes[self.at..self.at + offset]
                    .iter()
                    .any(|&b| b < 0x20)
            {
                // JSON forbids raw control characters in strings.
                return false;
            }
            self.at += offset;
            if self.bytes[self.at] == b'"' {
                self.at += 1;
                return true;
            }
            let start = self.at;
            let escape = &self.bytes[start + 1..];
            match escape.first() {
                Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
                Some(b'/') => {
                    self.at += 2;
                    self.respell(start..self.at, b"/");
                }
                Some(b'u') => {
                    let Some(code) = escape
                        .get(1..5)
                        .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    else {
                        return false;
                    };
                    self.at += 6;
                    match char::from_u32(code) {
                        // A surrogate parses only when paired; leave that to the parser.
                        None => self.parses = false,
                        Some(decoded) => {
                            let mut buffer = [0u8; 6];
                            let spelling = spell_char(decoded, &mut buffer);
                            if spelling != &self.bytes[start..self.at] {
                                self.respell(start..self.at, spelling);
                            }
                        }
                    }
                }
                _ => return false,
            }
        }
    }

    /// A number, by JSON's grammar: identical when an integer serde_json keeps as an integer
    /// or a float spelled as the reference spells it; other floats are respelled.
    fn number(&mut self) -> bool {
        let start = self.at;
        let Some(end) = number_end(self.bytes, start) else {
            return false;
        };
        self.at = end;
        let text = &self.bytes[start..end];
        let is_integer = !text.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
        let negative = text[0] == b'-';
        let digits = &text[usize::from(negative)..];
        if is_integer && text.len() <= 18 && text != b"-0" {
            // Fits in an i64 whatever the digits.
            return true;
        }
        if is_short_plain_decimal(digits) {
            return true;
        }
        if let Some(trimmed) = without_trailing_zeros(digits) {
            // `12.50`: the same decimal, shorter, with at most 15 significant digits, is the
            // shortest that round-trips, which is what the reference prints.
            let mut spelling = std::mem::take(self.spelled);
            spelling.clear();
            if negative {
                spelling.push(b'-');
            }
            spelling.extend_from_slice(trimmed);
            self.respell(start..end, &spelling);
            *self.spelled = spelling;
            return true;
        }
        // JSON's grammar keeps the text ASCII.
        let text = std::str::from_utf8(text).unwrap_or_default();
        if is_integer {
            let fits = text != "-0" && (text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok());
            if fits {
                return true;
            }
            // `-0` parses as a float, and so does an integer beyond 64 bits: printed
            // otherwise, and past f64's range (over 308 digits) not parsed at all.
            if digits.len() > 300 {
                self.parses = false;
                return true;
            }
        }
        let Ok(value) = serde_json::from_str::<f64>(text) else {
            // Out of range (`1e400`).
            self.parses = false;
            return true;
        };
        let mut spelling = std::mem::take(self.spelled);
        spelling.clear();
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut spelling, ReferenceFormatter);
        if value.serialize(&mut serializer).is_err() {
            self.parses = false;
        } else if spelling != text.as_bytes() {
            self.respell(start..end, &spelling);
        }
        *self.spelled = spelling;
        true
    }
}

/// Where the first `"` or `\\` of `bytes` is. Most strings in records are short (keys, codes,
/// dates): eight bytes at a time in a word finds their end sooner than setting up memchr's
/// vector search does (callgrind on `cargo xtask bench` scenario (a): the byte loop it replaces
/// was the scan's largest cost); long strings go to memchr.
#[inline]
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let mut at = 0;
    while at < SHORT {
        let Some(chunk) = bytes.get(at..at + 8) else {
            return bytes[at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\')
                .map(|found| at + found);
        };
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let found = zero_bytes(word ^ QUOTES) | zero_bytes(word ^ BACKSLASHES);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', &bytes[SHORT..]).map(|found| found + SHORT)
}

const QUOTES: u64 = 0x2222_2222_2222_2222;
const BACKSLASHES: u64 = 0x5c5c_5c5c_5c5c_5c5c;

/// The high bit of each zero byte of `word`, exact up to its first zero byte (a borrow may
/// mark bytes after it), so the lowest bit set is the first zero byte.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(0x0101_0101_0101_0101) & !word & 0x8080_8080_8080_8080
}

/// The end of the JSON number starting at `start`, when one does: `-`, then `0` or digits not
/// starting with `0`, then an optional fraction and exponent, each with at least one digit.
fn number_end(bytes: &[u8], start: usize) -> Option<usize> {
    let digits_from = |at: usize| {
        at + bytes.get(at..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let mut at = start + usize::from(bytes.get(start) == Some(&b'-'));
    match bytes.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at = digits_from(at + 1),
        _ => return None,
    }
    if bytes.get(at) == Some(&b'.') {
        let end = digits_from(at + 1);
        if end == at + 1 {
            return None;
        }
        at = end;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let end = digits_from(at);
        if end == at {
            return None;
        }
        at = end;
    }
    Some(at)
}

/// `digits` (a number without its sign) with the trailing zeros of its fraction dropped, when
/// it has some and what is left is a [short plain decimal](is_short_plain_decimal).
fn without_trailing_zeros(digits: &[u8]) -> Option<&[u8]> {
    if digits.iter().any(|b| matches!(b, b'e' | b'E')) {
        return None;
    }
    let point = digits.iter().position(|&b| b == b'.')?;
    let mut end = digits.len();
    while end > point + 2 && digits[end - 1] == b'0' {
        end -= 1;
    }
    let trimmed = &digits[..end];
    (end < digits.len() && is_short_plain_decimal(trimmed)).then_some(trimmed)
}

/// How serde_json writes `c` in a string: the short escapes, `\u00xx` for the other control
/// characters, anything else as its UTF-8.
fn spell_char(c: char, buffer: &mut [u8; 6]) -> &[u8] {
    let short = match c {
        '"' => Some(b'"'),
        '\\' => Some(b'\\'),
        '\u{8}' => Some(b'b'),
        '\u{c}' => Some(b'f'),
        '\n' => Some(b'n'),
        '\r' => Some(b'r'),
        '\t' => Some(b't'),
        _ => None,
    };
    if let Some(short) = short {
        buffer[0] = b'\\';
        buffer[1] = short;
        return &buffer[..2];
    }
    if u32::from(c) < 0x20 {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let code = u32::from(c) as usize;
        buffer.copy_from_slice(b"\\u0000");
        buffer[4] = HEX[code >> 4];
        buffer[5] = HEX[code & 0xf];
        return &buffer[..];
    }
    c.encode_utf8(&mut buffer[..4]).as_bytes()
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
        let mut seen = [0usize; 5];
        for _ in 0..100_000 {
            let mut text = String::new();
            texts.object(0, &mut text);
            if texts.below(6) == 0 {
                // Broken: a byte dropped, or one inserted, somewhere.
                let at = texts.below(text.len() as u64) as usize;
                if text.is_char_boundary(at) && text.is_char_boundary(at + 1) {
                    match texts.below(2) {
                        0 => drop(text.remove(at)),
                        _ => text.insert(
                            at,
                            texts
                                .pick(&["0", "\"", ",", "}", "\\", "e", "\u{1}"])
                                .chars()
                                .next()
                                .unwrap(),
                        ),
                    }
                }
            }
            // Sometimes with more after it, as in a page.
            let tail = texts.pick(&["", "", ",{\"next\":1}", "]", " ,"]);
            let page = format!("{text}{tail}");
            let parsed = serde_json::from_str::<Value>(&text);
            let mut scanner = RecordScanner::for_text(page.as_bytes()).unwrap();
            scanner.watch(Some("a"));
            let mut respelled = b"before".to_vec();
            let scanned = scanner.scan_record(page.as_bytes(), &mut respelled);
            if let Some((len, class)) = scanned {
                // Reprinted records must parse.
                assert!(
                    class == AsSent::Unsure || serde_json::from_str::<Value>(&page[..len]).is_ok(),
                    "{text} was scanned but its first {len} bytes do not parse"
                );
                if parsed.is_ok() {
                    assert_eq!(len, text.len(), "{page}");
                }
            }
            if scanned.is_none_or(|(_, class)| class == AsSent::Unsure) {
                assert_eq!(respelled, b"before", "{page}");
            }
            let Some((len, class)) = scanned else {
                seen[0] += 1;
                // Scanning stops at the record's end: what follows may make the page invalid,
                // never the record.
                assert!(
                    parsed.is_err() || !text.starts_with('{'),
                    "{text} parses but was not scanned"
                );
                continue;
            };
            let record = &page[..len];
            match class {
                AsSent::Identical => {
                    seen[1] += 1;
                    check_watched(record, scanner.watched());
                    assert_eq!(
                        String::from_utf8(printed_as_sent(record)).unwrap(),
                        String::from_utf8(printed(record)).unwrap(),
                        "{record}"
                    );
                }
                AsSent::Respelled => {
                    seen[2] += 1;
                    let respelled = std::str::from_utf8(&respelled[6..]).unwrap();
                    check_watched(respelled, scanner.watched());
                    assert_eq!(
                        String::from_utf8(printed_as_sent(respelled)).unwrap(),
                        String::from_utf8(printed(record)).unwrap(),
                        "{record}"
                    );
                    assert_eq!(classify_as_sent(record.as_bytes()), AsSent::Reprint);
                }
                AsSent::Reprint => {
                    seen[3] += 1;
                    assert_eq!(classify_as_sent(record.as_bytes()), AsSent::Reprint);
                }
                AsSent::Unsure => seen[4] += 1,
            }
        }
        // Every outcome must be common, or the test proves little.
        assert!(seen.iter().all(|&n| n > 2_000), "{seen:?}");
    }

    /// Records as a page has them: many of one shape (the keys of the one before, in order,
    /// or some of them), others of any.
    fn page_of_records(texts: &mut Texts, records: usize) -> Vec<String> {
        let shapes: [&[&str]; 4] = [
            &["id", "a", "b", "c"],
            &["id", "a", "b"],
            &["id", "a", "b", "c", "id"],
            &["id", "b", "a", "c"],
        ];
        (0..records)
            .map(|_| {
                let mut text = String::new();
                if texts.below(3) == 0 {
                    texts.object(0, &mut text);
                } else {
                    let shape = shapes[texts.below(4) as usize];
                    text.push('{');
                    for (i, key) in shape.iter().enumerate() {
                        if i > 0 {
                            text.push(',');
                        }
                        text.push_str(&format!("\"{key}\":"));
                        texts.value(1, &mut text);
                    }
                    text.push('}');
                }
                // Whitespace as spaces: a text with bytes below 0x20 is left to the general
                // scan.
                text.replace(['\n', '\t', '\r'], " ")
            })
            .collect()
    }

    #[test]
    fn the_quick_pass_is_tried_now_and_then_while_it_keeps_missing() {
        let respelled = br#"{"a":1.50}"#;
        let mut scanner = RecordScanner::for_text(respelled).unwrap();
        for _ in 0..8 {
            let scanned = scanner.scan_record(respelled, &mut Vec::new());
            assert_eq!(scanned, Some((10, AsSent::Respelled)));
        }
        assert!(scanner.quick_misses > QUICK_OFF_ABOVE);
        let tried = (0..QUICK_PROBE * 2)
            .filter(|_| scanner.try_quick_pass())
            .count();
        assert_eq!(tried, 2);
        // Records it takes bring it back, through the records it is tried on.
        let plain = br#"{"a":1}"#;
        assert!(scanner.use_text(plain));
        for _ in 0..QUICK_PROBE * QUICK_MISSES_KEPT {
            assert_eq!(
                scanner.scan_record(plain, &mut Vec::new()),
                Some((7, AsSent::Identical))
            );
        }
        assert!(scanner.quick_misses <= QUICK_OFF_ABOVE);
        assert!(scanner.try_quick_pass());
    }

    #[test]
    fn a_scanner_given_another_text_checks_it_as_a_new_one_would() {
        let plain = br#"{"a":1}"#;
        let mut scanner = RecordScanner::for_text(plain).unwrap();
        assert_eq!(
            scanner.scan_record(plain, &mut Vec::new()),
            Some((7, AsSent::Identical))
        );
        // A raw control byte in a string is not JSON.
        let with_control = b"{\"a\":\"x\x01\"}";
        assert!(scanner.use_text(with_control));
        assert_eq!(scanner.scan_record(with_control, &mut Vec::new()), None);
        assert!(!scanner.use_text(b"{\"a\":\"\xff\"}"));
        assert!(scanner.use_text(plain));
        assert_eq!(
            scanner.scan_record(plain, &mut Vec::new()),
            Some((7, AsSent::Identical))
        );
    }

    #[test]
    fn the_quick_pass_finds_what_the_general_scan_finds() {
        let mut texts = Texts { state: 7 };
        let mut quick_records = 0;
        for editing in [false, true] {
            for _ in 0..200 {
                let records = page_of_records(&mut texts, 50);
                let page = records.join(",");
                assert!(!page.bytes().any(|b| b < 0x20));
                let new_scanner = |general_only| {
                    let mut scanner = RecordScanner::for_text(page.as_bytes()).unwrap();
                    scanner.general_only = general_only;
                    scanner.for_editing(editing);
                    scanner.watch(Some("a"));
                    scanner
                };
                // One scanner for the page, as the page walk has: the quick pass then
                // compares each record's keys with the last record's.
                let (mut quick, mut general) = (new_scanner(false), new_scanner(true));
                let mut at = 0;
                for record in &records {
                    let bytes = &page.as_bytes()[at..];
                    let (mut quick_out, mut general_out) = (Vec::new(), Vec::new());
                    let found = quick.scan_record(bytes, &mut quick_out);
                    let expected = general.scan_record(bytes, &mut general_out);
                    assert_eq!(found, expected, "{record}");
                    assert_eq!(quick_out, general_out, "{record}");
                    assert_eq!(quick.entries(), general.entries(), "{record}");
                    assert_eq!(quick.watched(), general.watched(), "{record}");
                    quick_records +=
                        usize::from(found.is_some_and(|(_, class)| class == AsSent::Identical));
                    at += record.len() + 1;
                }
            }
        }
        assert!(quick_records > 2_000, "{quick_records}");
    }

    /// The watched key `a` is where the scanner says in `printed`, or has no value but null.
    fn check_watched(printed: &str, watched: Option<&SentEntry>) {
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(printed).unwrap();
        match watched {
            Some(entry) => {
                assert_eq!(&printed[entry.key.clone()], "\"a\"", "{printed}");
                let value: Value = serde_json::from_str(&printed[entry.value.clone()]).unwrap();
                assert_eq!(parsed.get("a"), Some(&value), "{printed}");
            }
            None => assert!(parsed.get("a").is_none_or(Value::is_null), "{printed}"),
        }
    }

    #[test]
    fn a_record_is_told_to_have_the_last_ones_keys_only_when_it_has() {
        let records = [
            (r#"{"a":1,"b":"x"}"#, false),
            (r#"{"a":2,"b":"y"}"#, true),
            // Fewer keys, all of them the last record's.
            (r#"{"a":2}"#, false),
            (r#"{"a":3}"#, true),
            (r#"{}"#, false),
            (r#"{}"#, true),
            (r#"{"a":3}"#, false),
            // Scanned by the general scan, which does not tell.
            (r#"{"a":1.50}"#, false),
            (r#"{"a":4}"#, false),
            (r#"{"b":4}"#, false),
            (r#"{"a":4,"b":5}"#, false),
            (r#"{"a":6,"b":7}"#, true),
            (r#"{"b":6,"a":7}"#, false),
        ];
        let text: String = records.iter().map(|(record, _)| *record).collect();
        for editing in [false, true] {
            let mut scanner = RecordScanner::for_text(text.as_bytes()).unwrap();
            scanner.for_editing(editing);
            let mut at = 0;
            for (record, same_keys) in records {
                let (len, _) = scanner
                    .scan_record(&text.as_bytes()[at..], &mut Vec::new())
                    .unwrap();
                assert_eq!(len, record.len());
                assert_eq!(scanner.same_keys_as_last(), same_keys, "{record}");
                at += len;
            }
            // A clone scanning elsewhere is not told its first record follows.
            let mut elsewhere = scanner.clone();
            elsewhere.forget_last_record();
            let record = br#"{"b":8,"a":9}"#;
            elsewhere.scan_record(record, &mut Vec::new()).unwrap();
            assert!(!elsewhere.same_keys_as_last());
            elsewhere.scan_record(record, &mut Vec::new()).unwrap();
            assert!(elsewhere.same_keys_as_last());
        }
    }

    /// The entries are where the scanner says in `printed`, keys and values, one per key.
    fn check_entries(printed: &str, entries: &[SentEntry]) {
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(printed).unwrap();
        assert_eq!(entries.len(), parsed.len(), "{printed}");
        for entry in entries {
            let key: String = serde_json::from_str(&printed[entry.key.clone()]).unwrap();
            let value: Value = serde_json::from_str(&printed[entry.value.clone()]).unwrap();
            assert_eq!(parsed.get(&key), Some(&value), "{printed}");
        }
    }

    #[test]
    fn with_top_level_nulls_kept_a_record_prints_once_they_are_left_out() {
        let mut texts = Texts { state: 9 };
        let mut kept_some = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            texts.object(0, &mut text);
            let mut scanner = RecordScanner::for_text(text.as_bytes()).unwrap();
            scanner.for_editing(true);
            let mut respelled = Vec::new();
            let class = match scanner.scan_record(text.as_bytes(), &mut respelled) {
                Some((_, class @ (AsSent::Identical | AsSent::Respelled))) => class,
                _ => continue,
            };
            let printed_here = match class {
                AsSent::Identical => text.clone(),
                _ => String::from_utf8(respelled).unwrap(),
            };
            check_entries(&printed_here, scanner.entries());
            let mut parsed: serde_json::Map<String, Value> =
                serde_json::from_str(&printed_here).unwrap();
            let before = parsed.len();
            parsed.retain(|_, value| !value.is_null());
            kept_some += usize::from(parsed.len() < before);
            // Printed with its nulls left out, key by key as sent, it is what the writer prints.
            let mut without_nulls = Vec::new();
            write_without_nulls(&mut without_nulls, &printed_here, scanner.entries());
            assert_eq!(
                String::from_utf8(printed_as_sent(
                    std::str::from_utf8(&without_nulls).unwrap()
                ))
                .unwrap(),
                String::from_utf8(printed(&text)).unwrap(),
                "{text}"
            );
        }
        assert!(kept_some > 200, "{kept_some}");
    }

    /// `printed` without its top-level null entries, written from its entries' bytes.
    fn write_without_nulls(out: &mut Vec<u8>, printed: &str, entries: &[SentEntry]) {
        out.push(b'{');
        let mut first = true;
        for entry in entries {
            if &printed[entry.value.clone()] == "null" {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(&printed.as_bytes()[entry.key.start..entry.value.end]);
        }
        out.push(b'}');
    }

    #[test]
    fn finds_the_first_quote_or_backslash_as_a_byte_loop_does() {
        let mut state: u64 = 5;
        for _ in 0..50_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (state >> 33) as usize % 100;
            let mut next = state;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    next = next
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    // Quotes and backslashes rare; bytes next to theirs, and zero, common.
                    match (next >> 33) % 64 {
                        0 => b'"',
                        1 => b'\\',
                        2 => 0x21,
                        3 => 0x23,
                        4 => 0x5b,
                        5 => 0x5d,
                        6 => 0x00,
                        7 => 0xa2,
                        8 => 0xdc,
                        other => b'a' + (other as u8 % 26),
                    }
                })
                .collect();
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\');
            assert_eq!(quote_or_backslash(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn respells_what_the_reference_spells_otherwise() {
        for (sent, printed) in [
            (
                r#"{"a":12.50,"b":3.00,"c":-0.10}"#,
                r#"{"a":12.5,"b":3.0,"c":-0.1}"#,
            ),
            (
                r#"{"a":1E5,"b":-0,"c":0.00}"#,
                r#"{"a":100000.0,"b":-0.0,"c":0.0}"#,
            ),
            (r#"{"a":1.0e10}"#, r#"{"a":10000000000.0}"#),
            (
                r#"{ "a" : [1, 2] ,"b":{"c" :3} }"#,
                r#"{"a":[1,2],"b":{"c":3}}"#,
            ),
            (r#"{"a":null,"b":1,"c":null,"d":null}"#, r#"{"b":1}"#),
            (
                r#"{"a":null, "b":null ,"c":{"d":null}}"#,
                r#"{"c":{"d":null}}"#,
            ),
            (r#"{"a":null}"#, r#"{}"#),
            (
                r#"{"a":"x\/y\u00e9\u0041\u001F\u000a\u0022"}"#,
                r#"{"a":"x/yéA\u001f\n\""}"#,
            ),
        ] {
            let mut scanner = RecordScanner::for_text(sent.as_bytes()).unwrap();
            let mut respelled = Vec::new();
            assert_eq!(
                scanner.scan_record(sent.as_bytes(), &mut respelled),
                Some((sent.len(), AsSent::Respelled)),
                "{sent}"
            );
            assert_eq!(std::str::from_utf8(&respelled).unwrap(), printed, "{sent}");
        }
        // A key spelled otherwise could equal another key once parsed: reprinted.
        for sent in [
            r#"{"\u0061":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1, "b":null}"#,
        ] {
            assert_eq!(classify_as_sent(sent.as_bytes()), AsSent::Reprint, "{sent}");
        }
    }

    #[test]
    fn only_well_formed_json_is_scanned() {
        for text in [
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":1-2}"#,
            r#"{"a":--1}"#,
            "{\"a\":\"x\ty\"}",
            "{\"a\u{1}\":1}",
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":[1,]}"#,
        ] {
            let mut scanner = RecordScanner::for_text(text.as_bytes()).unwrap();
            assert_eq!(
                scanner.scan_record(text.as_bytes(), &mut Vec::new()),
                None,
                "{text}"
            );
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        }
        assert!(RecordScanner::for_text(b"{\"a\":\"\xff\"}").is_none());
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
