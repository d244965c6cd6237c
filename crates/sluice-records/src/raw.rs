//! Filters and transformations run on a record as the API sent it, touching only what the
//! manifest asks for.
//!
//! A filter reads a few fields, `AddFields` sets a few top-level keys, `RemoveFields` drops a
//! few: decoding the whole record into a tree to do that, then printing it again, costs several
//! times what the change itself does. [`RawPlan`] holds, for a selector whose filter and
//! transformations are all of that kind, the top-level keys they read, set and remove. A record
//! that prints as sent is then taken as its top-level entries ([`Entries`], found by the page
//! walk), and:
//!
//! - when every template only looks a field up or compares it (most do), the filter and the
//!   transformations run on an [`Overlay`] of the entries: values are read where they were sent;
//! - otherwise only the keys read are parsed into a small object, and the selector's own filter
//!   and transformations run on it exactly as on a whole record.
//!
//! What they leave is written at once ([`AsSentOutcome::Edited`]): the entries kept as sent, the
//! values set in place, the keys added at the end, in the order a Python dict keeps them, and no
//! top-level `null`, as the reference prints a record.
//!
//! The plan refuses (and the tree path runs) anything it cannot prove the same: a template that
//! reads `record` as a whole, a path below the top level or with glob characters, a key both
//! removed and set, a `RemoveFields` condition, any other transformation, schema normalisation.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::{Map, Value};

use sluice_interp::{PlainValue, RecordFields};
use sluice_protocol::SentEntry;

use crate::filter::RecordFilter;
use crate::normalize::{RawKind, SchemaNormalizer};
use crate::transform::Transformation;

/// The top-level keys a selector's filter and transformations read, set and remove, when every
/// one of them can run on a record as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawPlan {
    /// Keys whose values the templates read or the transformations set: parsed for each record
    /// whose templates need a JSON value.
    read: Vec<String>,
    /// Keys `AddFields` sets.
    set: Vec<String>,
    /// Keys `RemoveFields` drops.
    removed: Vec<String>,
}

impl RawPlan {
    /// The plan for `filter` and `transformations`, or `None` when one of them needs the whole
    /// record.
    pub(crate) fn new(
        filter: Option<&RecordFilter>,
        transformations: &[Transformation],
    ) -> Option<RawPlan> {
        let mut plan = RawPlan::default();
        if let Some(filter) = filter {
            plan.read.extend(filter.record_keys_read()?);
        }
        for transformation in transformations {
            let touched = transformation.top_level_keys()?;
            plan.read.extend(touched.read);
            plan.read.extend(touched.set.iter().cloned());
            plan.set.extend(touched.set);
            plan.removed.extend(touched.removed);
        }
        if plan.set.iter().any(|key| plan.removed.contains(key)) {
            return None;
        }
        plan.read.sort();
        plan.read.dedup();
        Some(plan)
    }

    /// The object of the entries of `record` the plan reads; `None` when one does not parse.
    pub(crate) fn read_object(&self, record: &[u8], entries: &Entries<'_>) -> Option<Value> {
        let mut read = Map::new();
        for entry in &entries.list {
            if self
                .read
                .iter()
                .any(|key| key.as_bytes() == entry.key.as_ref())
            {
                let value = crate::json::from_slice(&record[entry.value.clone()]).ok()?;
                let key = String::from_utf8(entry.key.to_vec()).ok()?;
                read.insert(key, value);
            }
        }
        Some(Value::Object(read))
    }

    /// What the transformations made of `read` (the object [`RawPlan::read_object`] gave),
    /// written.
    pub(crate) fn edit(
        &self,
        record: &[u8],
        entries: &Entries<'_>,
        read: Value,
        normalizer: Option<&SchemaNormalizer>,
        watch: Option<&str>,
        out: &mut Vec<u8>,
    ) -> AsSentOutcome {
        let Value::Object(after) = read else {
            // The transformations keep an object an object.
            return AsSentOutcome::Unchanged;
        };
        // Of the read object: the keys set (in the order they were added) and the keys read
        // but untouched.
        let mut overlay = Overlay::new(record, entries).watching(watch);
        overlay.set_normalized = true;
        for (key, value) in &after {
            if self.set.contains(key) {
                overlay.set(key, Cow::Borrowed(value));
            }
        }
        for key in &self.removed {
            overlay.remove(key);
        }
        overlay.into_outcome(normalizer, out)
    }
}

/// A record as sent, as the transformations so far have left it: its entries as sent, the
/// values set (in the order a Python dict keeps them) and the keys removed. Templates read its
/// fields through [`RecordFields`] without any of it being parsed into a JSON value.
pub(crate) struct Overlay<'a> {
    record: &'a [u8],
    entries: &'a Entries<'a>,
    /// Borrowed where a constant or an already parsed value is set.
    set: Vec<(&'a str, Cow<'a, Value>)>,
    removed: Vec<&'a str>,
    /// The values set were normalised already (they come from a normalised object).
    set_normalized: bool,
    /// A key whose place the edited record notes (a cursor's field).
    watch: Option<&'a str>,
    /// Objects as sent that normalisation changed, written again with only their changed
    /// values normalised (`normalized_entries` says where in `normalized`, by key).
    normalized: Vec<u8>,
    normalized_entries: Vec<(&'a [u8], Range<usize>)>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(record: &'a [u8], entries: &'a Entries<'a>) -> Overlay<'a> {
        Overlay {
            record,
            entries,
            set: Vec::new(),
            removed: Vec::new(),
            set_normalized: false,
            watch: None,
            normalized: Vec::new(),
            normalized_entries: Vec::new(),
        }
    }

    /// Notes where the edited record has the top-level key `watch`.
    pub(crate) fn watching(mut self, watch: Option<&'a str>) -> Overlay<'a> {
        self.watch = watch;
        self
    }

    /// `record[key] = value`: in place when the key is set already.
    pub(crate) fn set(&mut self, key: &'a str, value: Cow<'a, Value>) {
        self.removed.retain(|removed| *removed != key);
        match self.set.iter_mut().find(|(set, _)| *set == key) {
            Some((_, old)) => *old = value,
            None => self.set.push((key, value)),
        }
    }

    /// `del record[key]`, if it is there.
    pub(crate) fn remove(&mut self, key: &'a str) {
        self.set.retain(|(set, _)| *set != key);
        if !self.removed.contains(&key) {
            self.removed.push(key);
        }
    }

    /// The record as the reference prints it now, normalised by `normalizer` (which must
    /// normalise [by field](SchemaNormalizer::by_field)) first; an edited record is appended to
    /// `out`.
    pub(crate) fn into_outcome(
        mut self,
        normalizer: Option<&SchemaNormalizer>,
        out: &mut Vec<u8>,
    ) -> AsSentOutcome {
        if let Some(normalizer) = normalizer {
            self.normalize(normalizer);
        }
        let record = self.record;
        let is_null = |entry: &Entry<'_>| &record[entry.value.clone()] == b"null";
        if self.set.is_empty()
            && self.normalized_entries.is_empty()
            && !self.entries.list.iter().any(|entry| {
                is_null(entry)
                    || self
                        .removed
                        .iter()
                        .any(|key| key.as_bytes() == entry.key.as_ref())
            })
        {
            return AsSentOutcome::Unchanged;
        }
        let start = out.len();
        out.reserve(self.record.len() + 64);
        out.push(b'{');
        let mut edited = Edited {
            out,
            start,
            watch: self.watch,
            watched: None,
            record,
            run: None,
            run_watched: None,
        };
        let mut set = self.set;
        for entry in &self.entries.list {
            let key = entry.key.as_ref();
            if self.removed.iter().any(|removed| removed.as_bytes() == key) {
                continue;
            }
            let sent_key = &record[entry.key_range.clone()];
            if let Some((_, range)) = self.normalized_entries.iter().find(|(k, _)| *k == key) {
                let object = &self.normalized[range.clone()];
                edited.write(
                    key,
                    |out| out.extend_from_slice(sent_key),
                    |out| out.extend_from_slice(object),
                );
                continue;
            }
            match set.iter().position(|(set, _)| set.as_bytes() == key) {
                Some(index) => {
                    let (_, value) = set.remove(index);
                    edited.entry(key, |out| out.extend_from_slice(sent_key), &value);
                }
                // The reference leaves top-level nulls out.
                None if is_null(entry) => {}
                None => edited.sent_entry(entry),
            }
        }
        // Keys the record did not have, in the order they were first set.
        for (key, value) in set {
            let write_key = |out: &mut Vec<u8>| sluice_protocol::json::push_json_str(out, key);
            edited.entry(key.as_bytes(), write_key, &value);
        }
        edited.flush_run();
        edited.out.push(b'}');
        AsSentOutcome::Edited(start..edited.out.len(), edited.watched)
    }
}

/// An edited record as it is written (from `start` in `out`), noting where it has the
/// watched key. Entries kept as sent that follow each other in the record are copied at once,
/// commas included (`run`): one copy per entry was most of an edit's copying (callgrind on
/// `cargo xtask bench` scenario (b)).
struct Edited<'w> {
    out: &'w mut Vec<u8>,
    start: usize,
    watch: Option<&'w str>,
    watched: Option<SentEntry>,
    /// The record as sent.
    record: &'w [u8],
    /// Entries as sent not written yet: from the first one's key to the last one's value.
    run: Option<Range<usize>>,
    /// Where the run has the watched key, in the record.
    run_watched: Option<SentEntry>,
}

impl Edited<'_> {
    /// Writes the entry `key` set to `value`; a top-level null is left out, as the reference
    /// leaves it.
    fn entry(&mut self, key: &[u8], write_key: impl FnOnce(&mut Vec<u8>), value: &Value) {
        if value.is_null() {
            return;
        }
        self.write(key, write_key, |out| write_value(out, value));
    }

    /// Writes an entry of the record as sent, with the run of those before it when it follows
    /// them.
    fn sent_entry(&mut self, entry: &Entry<'_>) {
        let record = self.record;
        let follows = self.run.as_ref().is_some_and(|run| {
            run.end + 1 == entry.key_range.start && record.get(run.end) == Some(&b',')
        });
        if follows {
            if let Some(run) = &mut self.run {
                run.end = entry.value.end;
            }
        } else {
            self.flush_run();
            self.run = Some(entry.key_range.start..entry.value.end);
        }
        if self
            .watch
            .is_some_and(|watch| watch.as_bytes() == entry.key.as_ref())
        {
            self.run_watched = Some(SentEntry {
                key: entry.key_range.clone(),
                value: entry.value.clone(),
            });
        }
    }

    /// Writes the entries waiting in the run.
    fn flush_run(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        if self.out.len() > self.start + 1 {
            self.out.push(b',');
        }
        let at = self.out.len() - self.start;
        self.out.extend_from_slice(&self.record[run.clone()]);
        if let Some(sent) = self.run_watched.take() {
            let moved =
                |range: Range<usize>| range.start - run.start + at..range.end - run.start + at;
            self.watched = Some(SentEntry {
                key: moved(sent.key),
                value: moved(sent.value),
            });
        }
    }

    fn write(
        &mut self,
        key: &[u8],
        write_key: impl FnOnce(&mut Vec<u8>),
        write_value: impl FnOnce(&mut Vec<u8>),
    ) {
        self.flush_run();
        if self.out.len() > self.start + 1 {
            self.out.push(b',');
        }
        let key_start = self.out.len() - self.start;
        write_key(self.out);
        let key_end = self.out.len() - self.start;
        self.out.push(b':');
        write_value(self.out);
        if self.watch.is_some_and(|watch| watch.as_bytes() == key) {
            self.watched = Some(SentEntry {
                key: key_start..key_end,
                value: key_end + 1..self.out.len() - self.start,
            });
        }
    }
}

impl<'a> Overlay<'a> {
    /// Normalises the values set, and the entries as sent whose kind of value the schema may
    /// change (those become values set in place).
    fn normalize(&mut self, normalizer: &SchemaNormalizer) {
        if !self.set_normalized {
            for (key, value) in &mut self.set {
                if let Some(field) = normalizer.field(key.as_bytes()) {
                    normalizer.normalize_field(field, value.to_mut());
                }
            }
        }
        let entries = self.entries;
        // Records usually have their keys in the schema's order: each is looked for from the
        // property after the last one found.
        let mut next_field = 0;
        for entry in &entries.list {
            let key: &'a [u8] = entry.key.as_ref();
            let Some(field) = normalizer.field_from(key, next_field) else {
                continue;
            };
            next_field = field + 1;
            let sent = &self.record[entry.value.clone()];
            let kind = RawKind::of(sent);
            if normalizer.leaves(field, kind, sent)
                || self.removed.iter().any(|removed| removed.as_bytes() == key)
                || self.set.iter().any(|(set, _)| set.as_bytes() == key)
            {
                continue;
            }
            // Only for the values that change: checking a key's bytes again was a tenth of a
            // normalised read (callgrind on `cargo xtask bench` scenario (k)).
            let Ok(key) = std::str::from_utf8(key) else {
                continue;
            };
            if kind == Some(RawKind::Object) {
                // Only the values that change are parsed; an object written as it was sent is
                // left as it is.
                let from = self.normalized.len();
                if normalizer.normalize_object(field, sent, &mut self.normalized) {
                    if self.normalized[from..] == *sent {
                        self.normalized.truncate(from);
                    } else {
                        let range = from..self.normalized.len();
                        self.normalized_entries.push((key.as_bytes(), range));
                    }
                    continue;
                }
            }
            // The record prints as sent, so its values parse.
            let Ok(mut value) = crate::json::from_slice(sent) else {
                continue;
            };
            normalizer.normalize_field(field, &mut value);
            self.set.push((key, Cow::Owned(value)));
        }
    }
}

/// Writes `value` as the reference prints it: strings, integers and booleans directly, which
/// are most of the values edits and normalisation write; others through the serializer.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Number(number) if number.is_i64() || number.is_u64() => {
            let mut digits = itoa::Buffer::new();
            let text = match number.as_i64() {
                Some(integer) => digits.format(integer),
                None => digits.format(number.as_u64().unwrap_or_default()),
            };
            out.extend_from_slice(text.as_bytes());
        }
        // Writing to memory cannot fail.
        Value::String(text) => sluice_protocol::json::push_json_str(out, text),
        _ => drop(sluice_protocol::json::to_reference_writer(out, value)),
    }
}

impl RecordFields for Overlay<'_> {
    #[expect(
        clippy::manual_contains,
        reason = "`contains` sets up memchr's search, which costs more than a short value's byte \
                  loop"
    )]
    fn plain(&self, keys: &[String]) -> Option<PlainValue<'_>> {
        let [key] = keys else {
            return None;
        };
        if self.removed.contains(&key.as_str()) {
            return None;
        }
        if let Some((_, value)) = self.set.iter().find(|(set, _)| set == key) {
            return PlainValue::of(value);
        }
        let entry = self
            .entries
            .list
            .iter()
            .find(|entry| entry.key.as_ref() == key.as_bytes())?;
        let value = &self.record[entry.value.clone()];
        match value.first()? {
            b'"' => {
                let inner = &value[1..value.len() - 1];
                if inner.iter().any(|&b| b == b'\\') {
                    return None;
                }
                std::str::from_utf8(inner).ok().map(PlainValue::String)
            }
            // `-0` is read as a float.
            b'-' | b'0'..=b'9'
                if value != b"-0" && !value.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) =>
            {
                let text = std::str::from_utf8(value).ok()?;
                let number = match text.parse::<i64>() {
                    Ok(integer) => serde_json::Number::from(integer),
                    Err(_) => serde_json::Number::from(text.parse::<u64>().ok()?),
                };
                Some(PlainValue::Integer(number))
            }
            _ => None,
        }
    }
}

/// What the filter and transformations make of a record as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum AsSentOutcome {
    /// The filter drops it.
    Dropped,
    /// It prints as sent.
    Unchanged,
    /// It prints as the bytes written at this range of the buffer given: its JSON as the
    /// reference prints it; with where it has the watched key, counted from its first byte
    /// (see [`RecordSelector::process_as_sent`](crate::RecordSelector)), if it has it.
    Edited(Range<usize>, Option<SentEntry>),
}

/// The top-level entries of a compact record.
#[derive(Debug)]
pub(crate) struct Entries<'r> {
    list: Vec<Entry<'r>>,
}

#[derive(Debug)]
struct Entry<'r> {
    /// The key, unquoted and unescaped.
    key: Cow<'r, [u8]>,
    /// `"key"`, quotes included.
    key_range: Range<usize>,
    value: Range<usize>,
}

impl<'r> Entries<'r> {
    /// The entries the page walk found in `record` (an object that prints as sent, so with
    /// distinct keys).
    pub(crate) fn from_sent(record: &'r [u8], sent: &[SentEntry]) -> Option<Entries<'r>> {
        let mut list = Vec::with_capacity(sent.len());
        for entry in sent {
            list.push(Entry {
                key: key_text(record.get(entry.key.clone())?)?,
                key_range: entry.key.clone(),
                value: entry.value.clone(),
            });
        }
        Some(Entries { list })
    }
}

/// The text of a key, `"..."` quotes included: borrowed unless it has escapes.
#[expect(
    clippy::manual_contains,
    reason = "`contains` sets up memchr's search, which costs more than a short key's byte loop"
)]
fn key_text(quoted: &[u8]) -> Option<Cow<'_, [u8]>> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if inner.iter().any(|&b| b == b'\\') {
        serde_json::from_slice::<String>(quoted)
            .ok()
            .map(|key| Cow::Owned(key.into_bytes()))
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The top-level keys one transformation reads, sets and removes.
#[derive(Debug, Default)]
pub(crate) struct TopLevelKeys {
    pub read: Vec<String>,
    pub set: Vec<String>,
    pub removed: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries the page walk finds in `record`, scanning it for editing.
    fn walked(record: &[u8]) -> Vec<SentEntry> {
        let mut scanner = sluice_protocol::RecordScanner::for_text(record).unwrap();
        scanner.for_editing(true);
        scanner.scan_record(record, &mut Vec::new()).unwrap();
        scanner.entries().to_vec()
    }

    fn scan(record: &str) -> Option<Vec<(String, &str, &str)>> {
        let sent = walked(record.as_bytes());
        let entries = Entries::from_sent(record.as_bytes(), &sent)?;
        Some(
            entries
                .list
                .iter()
                .map(|e| {
                    (
                        String::from_utf8(e.key.to_vec()).unwrap(),
                        &record[e.key_range.clone()],
                        &record[e.key_range.start..e.value.end],
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn an_overlay_edits_as_a_python_dict_changes() {
        let record = br#"{"id":7,"a":"x","b":2}"#;
        let sent = walked(record);
        let entries = Entries::from_sent(record, &sent).unwrap();
        let mut overlay = Overlay::new(record, &entries);
        assert_eq!(
            overlay.plain(&["a".to_owned()]),
            Some(PlainValue::String("x"))
        );
        assert_eq!(
            overlay.plain(&["id".to_owned()]),
            Some(PlainValue::Integer(7.into()))
        );
        overlay.set("new", Cow::Owned(Value::from(1)));
        overlay.set("a", Cow::Owned(Value::from("y")));
        overlay.set("new", Cow::Owned(Value::from(2)));
        overlay.remove("b");
        assert_eq!(overlay.plain(&["b".to_owned()]), None);
        assert_eq!(
            overlay.plain(&["a".to_owned()]),
            Some(PlainValue::String("y"))
        );
        // Written after what the buffer holds already.
        let mut out = b"earlier".to_vec();
        let edited = br#"{"id":7,"a":"y","new":2}"#;
        assert_eq!(
            overlay.into_outcome(None, &mut out),
            AsSentOutcome::Edited(7..7 + edited.len(), None)
        );
        assert_eq!(&out[7..], edited);
        let mut nulls = Overlay::new(record, &entries).watching(Some("b"));
        nulls.set("a", Cow::Owned(Value::Null));
        nulls.set("c", Cow::Owned(Value::Null));
        nulls.remove("id");
        let from = out.len();
        // The watched key is placed from the record's own first byte.
        let watched = SentEntry {
            key: 1..4,
            value: 5..6,
        };
        assert_eq!(
            nulls.into_outcome(None, &mut out),
            AsSentOutcome::Edited(from..from + 7, Some(watched))
        );
        assert_eq!(&out[from..], br#"{"b":2}"#);
        let unchanged = Overlay::new(record, &entries);
        assert_eq!(
            unchanged.into_outcome(None, &mut out),
            AsSentOutcome::Unchanged
        );
    }

    #[test]
    fn values_are_written_as_the_serializer_writes_them() {
        let values = serde_json::json!([
            true, false, null, 0, -7, 42, i64::MIN, i64::MAX, u64::MAX, 1.5, -0.0, 1e16,
            "text", "é\"\\\n", [1, "a"], {"k": null}
        ]);
        for value in values.as_array().unwrap() {
            let mut written = Vec::new();
            write_value(&mut written, value);
            let mut expected = Vec::new();
            sluice_protocol::json::to_reference_writer(&mut expected, value).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn scans_the_entries_of_a_compact_object() {
        let entries = scan(r#"{"id":1,"a\"b":{"c":[1,2]},"s":"x,y"}"#).unwrap();
        assert_eq!(
            entries,
            [
                ("id".to_owned(), r#""id""#, r#""id":1"#),
                ("a\"b".to_owned(), r#""a\"b""#, r#""a\"b":{"c":[1,2]}"#),
                ("s".to_owned(), r#""s""#, r#""s":"x,y""#),
            ]
        );
        assert_eq!(scan("{}").unwrap(), []);
    }
}
