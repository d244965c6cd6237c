//! Filters and transformations run on a record as the API sent it, touching only what the
//! manifest asks for.
//!
//! A filter reads a few fields, `AddFields` sets a few top-level keys, `RemoveFields` drops a
//! few: decoding the whole record into a tree to do that, then printing it again, costs several
//! times what the change itself does. [`RawPlan`] holds, for a selector whose filter and
//! transformations are all of that kind, the top-level keys they read or set; a record is then
//! scanned once for its top-level entries, only those keys are parsed into a small object, and
//! the selector's own filter and transformations run on that object exactly as on a whole
//! record. What they leave is a [`RecordEdit`]: the entries kept as sent, the values set in
//! place, the keys added at the end, in the order a Python dict keeps them.
//!
//! The plan refuses (and the tree path runs) anything it cannot prove the same: a template that
//! reads `record` as a whole, a path below the top level or with glob characters, a key both
//! removed and set, a `RemoveFields` condition, any other transformation, schema normalisation.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::{Map, Value};

use sluice_interp::{PlainValue, RecordFields};

use crate::filter::RecordFilter;
use crate::transform::Transformation;

/// The top-level keys a selector's filter and transformations read, set and remove, when every
/// one of them can run on a record as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawPlan {
    /// Keys whose values the templates read or the transformations set: parsed for each record.
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

    /// The object of the entries of `record` (scanned into `entries`) the plan reads; `None`
    /// when one does not parse.
    pub(crate) fn read_object(&self, record: &[u8], entries: &Entries<'_>) -> Option<Value> {
        let mut read = Map::new();
        for entry in &entries.list {
            if self.read.iter().any(|key| *key == entry.key) {
                let value = crate::json::from_slice(&record[entry.value.clone()]).ok()?;
                read.insert(entry.key.clone().into_owned(), value);
            }
        }
        Some(Value::Object(read))
    }

    /// What the transformations made of `read` (the object [`RawPlan::split`] gave), as an
    /// edit of the record.
    pub(crate) fn edit(&self, entries: &Entries<'_>, read: Value) -> AsSentOutcome {
        let Value::Object(mut after) = read else {
            // The transformations keep an object an object.
            return AsSentOutcome::Unchanged;
        };
        let mut parts = Vec::with_capacity(entries.list.len() + self.set.len());
        for entry in &entries.list {
            if self.removed.iter().any(|key| *key == entry.key) {
                continue;
            }
            if self.set.iter().any(|key| *key == entry.key) {
                let value = after
                    .shift_remove(entry.key.as_ref())
                    .unwrap_or(Value::Null);
                parts.push(EditPart::Set {
                    key: entry.key_range.clone(),
                    value,
                });
            } else {
                parts.push(EditPart::Sent(entry.whole.clone()));
            }
        }
        // What is left of the read object: keys set that the record did not have, in the
        // order they were added, and keys read but untouched (which were written above).
        let sent = |key: &str| entries.list.iter().any(|entry| entry.key == key);
        for (key, value) in after {
            if !sent(&key) && self.set.contains(&key) {
                parts.push(EditPart::Added { key, value });
            }
        }
        let unchanged = parts.len() == entries.list.len()
            && parts.iter().all(|part| matches!(part, EditPart::Sent(_)));
        if unchanged {
            AsSentOutcome::Unchanged
        } else {
            AsSentOutcome::Edited(RecordEdit { parts })
        }
    }
}

/// A record as sent, as the transformations so far have left it: its entries as sent, the
/// values set (in the order a Python dict keeps them) and the keys removed. Templates read its
/// fields through [`RecordFields`] without any of it being parsed into a JSON value.
pub(crate) struct Overlay<'r> {
    record: &'r [u8],
    entries: &'r Entries<'r>,
    set: Vec<(String, Value)>,
    removed: Vec<String>,
}

impl<'r> Overlay<'r> {
    pub(crate) fn new(record: &'r [u8], entries: &'r Entries<'r>) -> Overlay<'r> {
        Overlay {
            record,
            entries,
            set: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// `record[key] = value`: in place when the key is set already.
    pub(crate) fn set(&mut self, key: &str, value: Value) {
        self.removed.retain(|removed| removed != key);
        match self.set.iter_mut().find(|(set, _)| set == key) {
            Some((_, old)) => *old = value,
            None => self.set.push((key.to_owned(), value)),
        }
    }

    /// `del record[key]`, if it is there.
    pub(crate) fn remove(&mut self, key: &str) {
        self.set.retain(|(set, _)| set != key);
        if !self.removed.iter().any(|removed| removed == key) {
            self.removed.push(key.to_owned());
        }
    }

    /// The record as an edit of the entries sent.
    pub(crate) fn into_outcome(self) -> AsSentOutcome {
        let mut parts = Vec::with_capacity(self.entries.list.len() + self.set.len());
        let mut changed = false;
        let mut set = self.set;
        for entry in &self.entries.list {
            if self.removed.iter().any(|key| *key == entry.key) {
                changed = true;
                continue;
            }
            match set.iter().position(|(key, _)| *key == entry.key) {
                Some(index) => {
                    let (_, value) = set.remove(index);
                    changed = true;
                    parts.push(EditPart::Set {
                        key: entry.key_range.clone(),
                        value,
                    });
                }
                None => parts.push(EditPart::Sent(entry.whole.clone())),
            }
        }
        // Keys the record did not have, in the order they were first set.
        for (key, value) in set {
            changed = true;
            parts.push(EditPart::Added { key, value });
        }
        if changed {
            AsSentOutcome::Edited(RecordEdit { parts })
        } else {
            AsSentOutcome::Unchanged
        }
    }
}

impl RecordFields for Overlay<'_> {
    fn plain(&self, keys: &[String]) -> Option<PlainValue<'_>> {
        let [key] = keys else {
            return None;
        };
        if self.removed.iter().any(|removed| removed == key) {
            return None;
        }
        if let Some((_, value)) = self.set.iter().find(|(set, _)| set == key) {
            return PlainValue::of(value);
        }
        let entry = self.entries.list.iter().find(|entry| entry.key == *key)?;
        let value = &self.record[entry.value.clone()];
        match value.first()? {
            b'"' => {
                let inner = &value[1..value.len() - 1];
                if inner.contains(&b'\\') {
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
    /// It prints as the edit says.
    Edited(RecordEdit),
}

/// A record as sent, changed: its entries in the order the reference prints them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordEdit {
    /// The record's entries, in order.
    pub parts: Vec<EditPart>,
}

/// One entry of an edited record.
#[derive(Debug, Clone, PartialEq)]
pub enum EditPart {
    /// An entry as sent (`"key":value`), by its byte range in the record.
    Sent(Range<usize>),
    /// An entry the record had whose value was set: its key as sent (quotes included), then
    /// the new value.
    Set { key: Range<usize>, value: Value },
    /// A key added after the record's own entries.
    Added { key: String, value: Value },
}

/// The top-level entries of a compact record.
#[derive(Debug)]
pub(crate) struct Entries<'r> {
    list: Vec<Entry<'r>>,
}

#[derive(Debug)]
struct Entry<'r> {
    key: Cow<'r, str>,
    /// `"key"`, quotes included.
    key_range: Range<usize>,
    value: Range<usize>,
    /// `"key":value`.
    whole: Range<usize>,
}

impl<'r> Entries<'r> {
    /// Scans `record`, which must be valid JSON (the engine classifies each record before) and,
    /// to be split, an object printed compactly (no space between tokens, as a record the
    /// reference prints unchanged is) with no key repeated. Anything else gives `None`.
    ///
    /// Written by hand: the serde walk over `RawValue`s it replaces cost more per record than
    /// the parse it saves (callgrind on `cargo xtask bench` scenario (b)).
    pub(crate) fn scan(record: &'r [u8]) -> Option<Entries<'r>> {
        if record.first() != Some(&b'{') || record.last() != Some(&b'}') {
            return None;
        }
        let mut list: Vec<Entry<'r>> = Vec::with_capacity(16);
        if record.len() == 2 {
            return Some(Entries { list });
        }
        let mut at = 1;
        loop {
            if record.get(at) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(record, at)?;
            let key = key_text(&record[at..key_end])?;
            if record.get(key_end) != Some(&b':') || list.iter().any(|entry| entry.key == key) {
                return None;
            }
            let value_start = key_end + 1;
            let value_end = value_end(record, value_start)?;
            list.push(Entry {
                key,
                key_range: at..key_end,
                value: value_start..value_end,
                whole: at..value_end,
            });
            match record.get(value_end) {
                Some(b',') => at = value_end + 1,
                Some(b'}') if value_end + 1 == record.len() => return Some(Entries { list }),
                _ => return None,
            }
        }
    }
}

/// Just past the string whose opening quote is at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
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
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
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
        // A number, `true`, `false` or `null`: up to the next separator.
        _ => Some(start + memchr::memchr2(b',', b'}', &bytes[start..])?),
    }
}

/// The text of a key, `"..."` quotes included: borrowed unless it has escapes.
fn key_text(quoted: &[u8]) -> Option<Cow<'_, str>> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(quoted)
            .ok()
            .map(Cow::Owned)
    } else {
        std::str::from_utf8(inner).ok().map(Cow::Borrowed)
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

    fn scan(record: &str) -> Option<Vec<(String, &str, &str)>> {
        let entries = Entries::scan(record.as_bytes())?;
        Some(
            entries
                .list
                .iter()
                .map(|e| {
                    (
                        e.key.to_string(),
                        &record[e.key_range.clone()],
                        &record[e.whole.clone()],
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn an_overlay_edits_as_a_python_dict_changes() {
        let record = br#"{"id":7,"a":"x","b":2}"#;
        let entries = Entries::scan(record).unwrap();
        let mut overlay = Overlay::new(record, &entries);
        assert_eq!(
            overlay.plain(&["a".to_owned()]),
            Some(PlainValue::String("x"))
        );
        assert_eq!(
            overlay.plain(&["id".to_owned()]),
            Some(PlainValue::Integer(7.into()))
        );
        overlay.set("new", Value::from(1));
        overlay.set("a", Value::from("y"));
        overlay.set("new", Value::from(2));
        overlay.remove("b");
        assert_eq!(overlay.plain(&["b".to_owned()]), None);
        assert_eq!(
            overlay.plain(&["a".to_owned()]),
            Some(PlainValue::String("y"))
        );
        let AsSentOutcome::Edited(edit) = overlay.into_outcome() else {
            panic!("not edited");
        };
        assert_eq!(
            edit.parts,
            [
                EditPart::Sent(1..7),
                EditPart::Set {
                    key: 8..11,
                    value: Value::from("y")
                },
                EditPart::Added {
                    key: "new".to_owned(),
                    value: Value::from(2)
                },
            ]
        );
        let unchanged = Overlay::new(record, &entries);
        assert_eq!(unchanged.into_outcome(), AsSentOutcome::Unchanged);
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

    #[test]
    fn refuses_what_is_not_one_compact_object_with_distinct_keys() {
        assert!(scan(r#"{"id" :1}"#).is_none());
        assert!(scan(r#"{ "id":1}"#).is_none());
        assert!(scan(r#"{"id":1,"id":2}"#).is_none());
        assert!(scan(r#"[1]"#).is_none());
        assert!(scan(r#"{"id":1}x"#).is_none());
    }
}
