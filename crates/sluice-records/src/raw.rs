//! Filters and transformations run on a record as the API sent it, touching only what the
//! manifest asks for.
//!
//! A filter reads a few fields, `AddFields` sets a few top-level keys, `RemoveFields` drops a
//! few: decoding the whole record into a tree to do that, then printing it again, costs several
//! times what the change itself does. [`RawPlan`] holds, for a selector whose filter and
//! transformations are all of that kind, the top-level keys they read, set and remove. A record
//! that prints as sent is then taken as its top-level entries (found by the page walk, matched
//! with the plan's keys once for the records whose keys are the last one's: [`KeyLayout`]),
//! and:
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
//! removed and set, a `RemoveFields` condition, any other transformation, a schema normalisation
//! that cannot run one top-level field at a time.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::{Map, Value};

use sluice_interp::{LiteralType, PlainValue, RecordFields, Template};
use sluice_protocol::SentEntry;

use crate::filter::RecordFilter;
use crate::normalize::{ObjectScanners, RawKind, SchemaNormalizer};
use crate::transform::Transformation;

/// The top-level keys a selector's filter and transformations read, set and remove, when every
/// one of them can run on a record as sent, and the transformations' edits by slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawPlan {
    /// Keys whose values the templates read or the transformations set: parsed for each record
    /// whose templates need a JSON value.
    read: Vec<String>,
    /// Keys `AddFields` sets.
    set: Vec<String>,
    /// Keys `RemoveFields` drops.
    removed: Vec<String>,
    /// Every key above, once: the slots an [`Overlay`] keeps the record's changes in.
    slots: Vec<String>,
    /// Each slot's key as JSON (`"key"`), written after the record's entries when it is added.
    quoted: Vec<Vec<u8>>,
    /// The transformations' edits, in order; `None` when one only runs on a parsed object of
    /// the keys read (an `AddFields` condition).
    edits: Option<Vec<Edit>>,
}

/// One edit of the plan's: a [`KeyEdit`] by slot, a constant written as JSON once.
#[derive(Debug, Clone)]
enum Edit {
    SetJson {
        slot: usize,
        json: Vec<u8>,
    },
    SetRendered {
        slot: usize,
        template: Template,
        valid_types: Vec<LiteralType>,
    },
    Remove {
        slot: usize,
    },
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
        let mut edits = Some(Vec::new());
        for transformation in transformations {
            let touched = transformation.top_level_keys()?;
            plan.read.extend(touched.read);
            for edit in &touched.edits {
                match edit {
                    KeyEdit::Set { key, .. } => {
                        plan.read.push(key.clone());
                        plan.set.push(key.clone());
                    }
                    KeyEdit::Remove { key } => plan.removed.push(key.clone()),
                }
            }
            match &mut edits {
                Some(edits) if !touched.parsed_only => edits.extend(touched.edits),
                _ => edits = None,
            }
        }
        if plan.set.iter().any(|key| plan.removed.contains(key)) {
            return None;
        }
        plan.read.sort();
        plan.read.dedup();
        let touched: Vec<String> = plan.read.iter().chain(&plan.removed).cloned().collect();
        for key in &touched {
            plan.add_slot(key);
        }
        plan.edits = match edits {
            Some(edits) => Some(
                edits
                    .into_iter()
                    .map(|edit| plan.compile(edit))
                    .collect::<Option<_>>()?,
            ),
            None => None,
        };
        Some(plan)
    }

    /// Gives `key` a slot, unless it has one.
    fn add_slot(&mut self, key: &str) {
        if self.slot_of(key).is_none() {
            self.slots.push(key.to_owned());
            let mut quoted = Vec::with_capacity(key.len() + 2);
            sluice_protocol::json::push_json_str(&mut quoted, key);
            self.quoted.push(quoted);
        }
    }

    /// The slot of `key`. Compared as short byte strings: templates look keys up by name on
    /// every record.
    fn slot_of(&self, key: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| same_bytes(slot.as_bytes(), key.as_bytes()))
    }

    /// `edit` by slot (its key has one), a constant written as JSON.
    fn compile(&self, edit: KeyEdit) -> Option<Edit> {
        Some(match edit {
            KeyEdit::Set {
                key,
                value: NewValue::Constant(value),
            } => {
                let mut json = Vec::new();
                write_value(&mut json, &value);
                Edit::SetJson {
                    slot: self.slot_of(&key)?,
                    json,
                }
            }
            KeyEdit::Set {
                key,
                value:
                    NewValue::Rendered {
                        template,
                        valid_types,
                    },
            } => Edit::SetRendered {
                slot: self.slot_of(&key)?,
                template,
                valid_types,
            },
            KeyEdit::Remove { key } => Edit::Remove {
                slot: self.slot_of(&key)?,
            },
        })
    }

    /// The object of the entries of `record` the plan reads; `None` when one does not parse.
    pub(crate) fn read_object(
        &self,
        record: &str,
        entries: &[SentEntry],
        layout: &KeyLayout,
    ) -> Option<Value> {
        let mut read = Map::new();
        for (index, entry) in entries.iter().enumerate() {
            if layout.slot_of_entry[index].is_some_and(|slot| self.read.contains(&self.slots[slot]))
            {
                let value =
                    crate::json::from_slice(record.as_bytes().get(entry.value.clone())?).ok()?;
                let key = String::from_utf8(layout.key(index).to_vec()).ok()?;
                read.insert(key, value);
            }
        }
        Some(Value::Object(read))
    }

    /// What the transformations made of `read` (the object [`RawPlan::read_object`] gave),
    /// written.
    pub(crate) fn edit(
        &self,
        mut overlay: Overlay<'_, '_>,
        read: Value,
        normalizer: Option<&SchemaNormalizer>,
        out: &mut Vec<u8>,
    ) -> AsSentOutcome {
        let Value::Object(after) = read else {
            // The transformations keep an object an object.
            return AsSentOutcome::Unchanged;
        };
        // Of the read object: the keys set (in the order they were added) and the keys read
        // but untouched.
        overlay.work.set_normalized = true;
        for (key, value) in &after {
            if self.set.contains(key) {
                if let Some(slot) = self.slot_of(key) {
                    overlay.set_value(slot, value);
                }
            }
        }
        for key in &self.removed {
            if let Some(slot) = self.slot_of(key) {
                overlay.remove(slot);
            }
        }
        overlay.into_outcome(normalizer, out)
    }
}

/// Whether `a` and `b` are the same bytes: a few word compares for short ones rather than a
/// call to `memcmp`, which was most of matching keys (callgrind on `cargo xtask bench`
/// scenario (b)).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let length = a.len();
    if length != b.len() {
        return false;
    }
    // Two words each, the first and the last, which overlap when shorter than two. Read with
    // `first_chunk`: `copy_from_slice` is a call of its own in this toolchain's std.
    let u32_at =
        |bytes: &[u8], at: usize| bytes[at..].first_chunk().map(|w| u32::from_le_bytes(*w));
    let u64_at =
        |bytes: &[u8], at: usize| bytes[at..].first_chunk().map(|w| u64::from_le_bytes(*w));
    match length {
        0 => true,
        // The first, the middle and the last byte are all of them.
        1..4 => a[0] == b[0] && a[length / 2] == b[length / 2] && a[length - 1] == b[length - 1],
        4..8 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, length - 4) == u32_at(b, length - 4),
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, length - 8) == u64_at(b, length - 8),
        _ => a == b,
    }
}

/// Where a record's top-level keys are, and which of them the plan touches, worked out once for
/// the records that have the same keys in the same order as the last one (most records of a
/// page): looking each key up among the record's entries for every record was a sixth of
/// editing one (callgrind on `cargo xtask bench` scenario (b)).
#[derive(Debug, Default)]
pub(crate) struct KeyLayout {
    /// Whether the fields below describe the keys of the last record resolved.
    resolved: bool,
    /// Counts the layouts worked out, so that what depends on one can tell it is still the one.
    generation: u64,
    /// The keys as sent, quotes included, back to back; each entry's ends at `sent_ends`.
    sent: Vec<u8>,
    sent_ends: Vec<usize>,
    /// The keys unquoted and unescaped, back to back; each entry's ends at `key_ends`.
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    /// For each entry, the plan's slot its key is, if any.
    slot_of_entry: Vec<Option<usize>>,
    /// For each slot of the plan, the entry with its key, if the record has it.
    entry_of_slot: Vec<Option<usize>>,
    /// For each entry, the schema's top-level property of its key, when records are
    /// normalised.
    field_of_entry: Vec<Option<usize>>,
    /// The key whose place an edited record notes (a cursor's field), its entry and its slot.
    watch: Option<String>,
    watched_entry: Option<usize>,
    watched_slot: Option<usize>,
}

impl KeyLayout {
    /// Makes this the layout of `record`, whose top-level entries are `entries`, for `plan`,
    /// the watched key `watch` and the selector's `normalizer`; `None` when a key does not
    /// decode. `same_keys`: the record is known to have the keys of the last one resolved, as
    /// sent and in the same order (then they are not compared again).
    pub(crate) fn resolve(
        &mut self,
        record: &str,
        entries: &[SentEntry],
        same_keys: bool,
        resolve_for: (&RawPlan, Option<&str>, Option<&SchemaNormalizer>),
    ) -> Option<()> {
        let (plan, watch, normalizer) = resolve_for;
        let record = record.as_bytes();
        let known = same_keys && self.resolved && entries.len() == self.sent_ends.len();
        debug_assert!(
            !known || self.describes(record, entries),
            "told the same keys"
        );
        if (known || self.describes(record, entries)) && self.watch.as_deref() == watch {
            return Some(());
        }
        self.resolved = false;
        self.generation += 1;
        self.sent.clear();
        self.sent_ends.clear();
        self.keys.clear();
        self.key_ends.clear();
        self.slot_of_entry.clear();
        self.field_of_entry.clear();
        self.entry_of_slot.clear();
        self.entry_of_slot.resize(plan.slots.len(), None);
        self.watch = watch.map(str::to_owned);
        self.watched_entry = None;
        self.watched_slot = watch.and_then(|watch| plan.slot_of(watch));
        // Records usually have their keys in the schema's order: each is looked for from the
        // property after the last one found.
        let mut next_field = 0;
        for (index, entry) in entries.iter().enumerate() {
            let quoted = record.get(entry.key.clone())?;
            let key = key_text(quoted)?;
            let field = normalizer.and_then(|normalizer| normalizer.field_from(&key, next_field));
            if let Some(field) = field {
                next_field = field + 1;
            }
            self.field_of_entry.push(field);
            self.sent.extend_from_slice(quoted);
            self.sent_ends.push(self.sent.len());
            self.keys.extend_from_slice(&key);
            self.key_ends.push(self.keys.len());
            let slot = plan.slots.iter().position(|slot| slot.as_bytes() == &*key);
            if let Some(slot) = slot {
                self.entry_of_slot[slot] = Some(index);
            }
            self.slot_of_entry.push(slot);
            if watch.is_some_and(|watch| watch.as_bytes() == &*key) {
                self.watched_entry = Some(index);
            }
        }
        self.resolved = true;
        Some(())
    }

    /// Whether the last record resolved had the keys of `record`, as sent.
    fn describes(&self, record: &[u8], entries: &[SentEntry]) -> bool {
        if !self.resolved || entries.len() != self.sent_ends.len() {
            return false;
        }
        let mut start = 0;
        entries.iter().zip(&self.sent_ends).all(|(entry, &end)| {
            let same = record
                .get(entry.key.clone())
                .is_some_and(|key| same_bytes(key, &self.sent[start..end]));
            start = end;
            same
        })
    }

    /// The key of entry `index`, unquoted and unescaped.
    fn key(&self, index: usize) -> &[u8] {
        let start = index
            .checked_sub(1)
            .map_or(0, |before| self.key_ends[before]);
        &self.keys[start..self.key_ends[index]]
    }

    /// The entry whose key is `key`.
    fn entry_of(&self, key: &[u8]) -> Option<usize> {
        (0..self.key_ends.len()).find(|&index| self.key(index) == key)
    }
}

/// What the transformations so far did to one of the plan's keys.
#[derive(Debug, Clone, Copy)]
enum Slot<'s> {
    /// Nothing: the record's entry, if it has one, prints as sent.
    AsSent,
    Removed,
    /// Set to this JSON, as the reference prints it.
    Set(Json<'s>),
}

impl Slot<'_> {
    /// What the slot's state is, without its value.
    fn code(self) -> u8 {
        match self {
            Slot::AsSent => 0,
            Slot::Removed => 1,
            Slot::Set(_) => 2,
        }
    }
}

/// JSON text of a value set.
#[derive(Debug, Clone, Copy)]
enum Json<'s> {
    /// A constant of the plan's.
    Constant(&'s [u8]),
    /// Written at this range of [`OverlayWork::values`].
    Written(usize, usize),
}

impl<'s> Json<'s> {
    /// The text, `values` being [`OverlayWork::values`].
    fn bytes<'v>(self, values: &'v [u8]) -> &'v [u8]
    where
        's: 'v,
    {
        match self {
            Json::Constant(json) => json,
            Json::Written(start, end) => &values[start..end],
        }
    }
}

/// The parts of an [`Overlay`] kept from one record to the next, so that editing a record
/// allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct OverlayWork<'s> {
    /// One for each of the plan's slots.
    slots: Vec<Slot<'s>>,
    /// The JSON of the values set that are not constants.
    values: Vec<u8>,
    /// A template's rendered text.
    text: String,
    /// The slots set that are printed after the record's entries, in the order they were set:
    /// the record has no entry for them, or they were removed before being set again.
    appended: Vec<usize>,
    /// The values set were normalised already (they come from a normalised object).
    set_normalized: bool,
    /// Entries whose values normalisation changed (after the templates ran), in the record's
    /// order.
    replaced: Vec<(usize, Replacement)>,
    /// Objects as sent that normalisation changed, written again with only their changed
    /// values normalised (at the ranges of [`Replacement::Object`]).
    normalized: Vec<u8>,
    /// How records of the layout are written, for the changes the edits made.
    steps: WriteSteps,
    /// Scanners of the objects normalisation rewrites.
    object_scanners: ObjectScanners,
}

/// How an edited record is written, worked out once for a layout and the changes the edits
/// make to its keys, which are the same for most records of a page: deciding it entry by entry
/// was most of writing an edited record (callgrind on `cargo xtask bench` scenario (b)).
#[derive(Debug, Default)]
struct WriteSteps {
    /// The layout's generation, each slot's [`Slot::code`] and the slots added, that the steps
    /// were worked out for.
    generation: u64,
    codes: Vec<u8>,
    appended: Vec<usize>,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The entries `first..=last` as sent (but their top-level nulls).
    Sent { first: usize, last: usize },
    /// The entry with the slot's key, set in place.
    InPlace { entry: usize, slot: usize },
    /// The slot's key, set after the record's entries.
    Added { slot: usize },
}

/// A value normalisation changed.
#[derive(Debug)]
enum Replacement {
    Value(Value),
    /// An object, written at this range of [`OverlayWork::normalized`].
    Object(Range<usize>),
}

/// What editing records as sent keeps from one record to the next (see
/// [`RecordSelector::editor`](crate::RecordSelector::editor)).
#[derive(Debug, Default)]
pub(crate) struct EditScratch<'s> {
    pub(crate) layout: KeyLayout,
    work: OverlayWork<'s>,
}

impl<'s> EditScratch<'s> {
    /// An overlay of `record` (its entries `entries`, the layout resolved for them).
    pub(crate) fn overlay<'r>(
        &'r mut self,
        record: &'r str,
        entries: &'r [SentEntry],
        plan: &'s RawPlan,
    ) -> Overlay<'r, 's> {
        let work = &mut self.work;
        work.slots.clear();
        work.slots.resize(plan.slots.len(), Slot::AsSent);
        work.values.clear();
        work.appended.clear();
        work.set_normalized = false;
        work.replaced.clear();
        work.normalized.clear();
        Overlay {
            record,
            entries,
            layout: &self.layout,
            plan,
            work,
        }
    }
}

/// A record as sent, as the transformations so far have left it: its entries as sent, and the
/// plan's keys set or removed (added keys after the others, in the order a Python dict keeps
/// them). Templates read its fields through [`RecordFields`] without any of it being parsed
/// into a JSON value.
pub(crate) struct Overlay<'r, 's> {
    record: &'r str,
    entries: &'r [SentEntry],
    layout: &'r KeyLayout,
    plan: &'s RawPlan,
    work: &'r mut OverlayWork<'s>,
}

impl<'s> Overlay<'_, 's> {
    /// Runs the plan's edits; `None` when one cannot run on the record as sent (a template
    /// reads something else than a plain field, or renders nothing).
    pub(crate) fn run_edits(&mut self) -> Option<()> {
        let plan = self.plan;
        for edit in plan.edits.as_ref()? {
            match edit {
                Edit::SetJson { slot, json } => self.set(*slot, Json::Constant(json)),
                Edit::SetRendered {
                    slot,
                    template,
                    valid_types,
                } => {
                    let mut text = std::mem::take(&mut self.work.text);
                    text.clear();
                    let rendered = template.render_record_text(&*self, &mut text);
                    let json = rendered
                        .filter(|()| !text.is_empty())
                        .map(|()| self.write_evaluated(&text, valid_types));
                    self.work.text = text;
                    self.set(*slot, json?);
                }
                Edit::Remove { slot } => self.remove(*slot),
            }
        }
        Some(())
    }

    /// Writes what `text` literal-evaluates to as JSON: itself as a string when it is no
    /// literal of `valid_types`, as the reference keeps it.
    fn write_evaluated(&mut self, text: &str, valid_types: &[LiteralType]) -> Json<'s> {
        let values = &mut self.work.values;
        let start = values.len();
        match sluice_interp::literal_eval(text, valid_types) {
            Some(value) => write_value(values, &value),
            None => sluice_protocol::json::push_json_str(values, text),
        }
        Json::Written(start, values.len())
    }

    /// `record[key] = value` for the slot's key.
    fn set_value(&mut self, slot: usize, value: &Value) {
        let values = &mut self.work.values;
        let start = values.len();
        write_value(values, value);
        let json = Json::Written(start, values.len());
        self.set(slot, json);
    }

    /// `record[key] = json` for the slot's key: in place when the record has the key, at the
    /// end otherwise.
    fn set(&mut self, slot: usize, json: Json<'s>) {
        let moves_to_end = match self.work.slots[slot] {
            Slot::Set(_) => false,
            Slot::Removed => true,
            Slot::AsSent => self.layout.entry_of_slot[slot].is_none(),
        };
        if moves_to_end {
            self.work.appended.retain(|&appended| appended != slot);
            self.work.appended.push(slot);
        }
        self.work.slots[slot] = Slot::Set(json);
    }

    /// `del record[key]` for the slot's key, if the record has it.
    fn remove(&mut self, slot: usize) {
        if let Slot::Set(_) = self.work.slots[slot] {
            self.work.appended.retain(|&appended| appended != slot);
        }
        self.work.slots[slot] = Slot::Removed;
    }

    /// The JSON text of a value set.
    fn json(&self, json: Json<'s>) -> &[u8] {
        json.bytes(&self.work.values)
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
        if self.work.replaced.is_empty() {
            return self.write_by_steps(out);
        }
        // A value normalisation replaced: written entry by entry.
        let record = self.record.as_bytes();
        let mut edited = Edited::open(out, record);
        let layout = self.layout;
        let mut replaced = self.work.replaced.iter().peekable();
        for (index, entry) in self.entries.iter().enumerate() {
            let watched = layout.watched_entry == Some(index);
            if let Some(slot) = layout.slot_of_entry[index] {
                match self.work.slots[slot] {
                    Slot::AsSent => {}
                    Slot::Removed => continue,
                    Slot::Set(_) if self.work.appended.contains(&slot) => continue,
                    Slot::Set(json) => {
                        edited.entry(&record[entry.key.clone()], self.json(json), watched);
                        continue;
                    }
                }
            }
            if let Some((_, replacement)) = replaced.next_if(|(at, _)| *at == index) {
                let sent_key = &record[entry.key.clone()];
                match replacement {
                    Replacement::Value(value) => {
                        if !value.is_null() {
                            edited.write(sent_key, |out| write_value(out, value), watched);
                        }
                    }
                    Replacement::Object(range) => {
                        let object = &self.work.normalized[range.clone()];
                        edited.entry(sent_key, object, watched);
                    }
                }
                continue;
            }
            // The reference leaves top-level nulls out.
            if !is_null(record, entry) {
                edited.sent_entry(entry, watched);
            }
        }
        for &slot in &self.work.appended {
            if let Slot::Set(json) = self.work.slots[slot] {
                let watched = layout.watched_slot == Some(slot);
                edited.entry(&self.plan.quoted[slot], self.json(json), watched);
            }
        }
        edited.close()
    }
}

/// Whether `entry`'s value in `record` is `null`: every value is valid JSON, and only a null
/// starts with `n`.
fn is_null(record: &[u8], entry: &SentEntry) -> bool {
    record.get(entry.value.start) == Some(&b'n')
}

impl<'s> Overlay<'_, 's> {
    /// [`Overlay::into_outcome`] when no value was replaced: by the steps of the record's
    /// layout and changes, worked out again when those differ from the last record's.
    fn write_by_steps(self, out: &mut Vec<u8>) -> AsSentOutcome {
        let layout = self.layout;
        let work = &mut *self.work;
        let steps = &mut work.steps;
        let same = steps.generation == layout.generation
            && steps.appended == work.appended
            && steps.codes.len() == work.slots.len()
            && steps
                .codes
                .iter()
                .zip(&work.slots)
                .all(|(&code, slot)| code == slot.code());
        if !same {
            steps.generation = layout.generation;
            steps.codes.clear();
            steps
                .codes
                .extend(work.slots.iter().map(|slot| slot.code()));
            steps.appended.clone_from(&work.appended);
            steps.steps.clear();
            for index in 0..layout.slot_of_entry.len() {
                let step = match layout.slot_of_entry[index].map(|slot| (slot, work.slots[slot])) {
                    Some((_, Slot::Removed)) => continue,
                    Some((slot, Slot::Set(_))) if work.appended.contains(&slot) => continue,
                    Some((slot, Slot::Set(_))) => Step::InPlace { entry: index, slot },
                    None | Some((_, Slot::AsSent)) => match steps.steps.last_mut() {
                        Some(Step::Sent { last, .. }) if *last + 1 == index => {
                            *last = index;
                            continue;
                        }
                        _ => Step::Sent {
                            first: index,
                            last: index,
                        },
                    },
                };
                steps.steps.push(step);
            }
            let added = work.appended.iter().map(|&slot| Step::Added { slot });
            steps.steps.extend(added);
        }
        let record = self.record.as_bytes();
        let entries = self.entries;
        let has_null = |first: usize, last: usize| {
            entries[first..=last]
                .iter()
                .any(|entry| is_null(record, entry))
        };
        match steps.steps.as_slice() {
            [] if entries.is_empty() => return AsSentOutcome::Unchanged,
            [Step::Sent { first: 0, last }]
                if *last + 1 == entries.len() && !has_null(0, *last) =>
            {
                return AsSentOutcome::Unchanged;
            }
            _ => {}
        }
        let mut edited = Edited::open(out, record);
        let values = &work.values[..];
        let watched_entry = layout.watched_entry;
        for &step in &steps.steps {
            match step {
                Step::Sent { first, last } if !has_null(first, last) => {
                    let watched = watched_entry
                        .filter(|watched| (first..=last).contains(watched))
                        .map(|watched| entries[watched].clone());
                    edited.sent_run(entries[first].key.start..entries[last].value.end, watched);
                }
                Step::Sent { first, last } => {
                    for (index, entry) in entries.iter().enumerate().take(last + 1).skip(first) {
                        if !is_null(record, entry) {
                            edited.sent_entry(entry, watched_entry == Some(index));
                        }
                    }
                }
                Step::InPlace { entry, slot } => {
                    if let Slot::Set(value) = work.slots[slot] {
                        let key = &record[entries[entry].key.clone()];
                        edited.entry(key, value.bytes(values), watched_entry == Some(entry));
                    }
                }
                Step::Added { slot } => {
                    if let Slot::Set(value) = work.slots[slot] {
                        let watched = layout.watched_slot == Some(slot);
                        edited.entry(&self.plan.quoted[slot], value.bytes(values), watched);
                    }
                }
            }
        }
        edited.close()
    }
}

/// An edited record as it is written (from `start` in `out`), noting where it has the
/// watched key. Entries kept as sent that follow each other in the record are copied at once,
/// commas included (`run`): one copy per entry was most of an edit's copying (callgrind on
/// `cargo xtask bench` scenario (b)).
struct Edited<'w> {
    out: &'w mut Vec<u8>,
    start: usize,
    watched: Option<SentEntry>,
    /// The record as sent.
    record: &'w [u8],
    /// Entries as sent not written yet: from the first one's key to the last one's value.
    run: Option<Range<usize>>,
    /// Where the run has the watched key, in the record.
    run_watched: Option<SentEntry>,
}

impl<'w> Edited<'w> {
    /// Starts writing an edited `record` after what `out` holds.
    fn open(out: &'w mut Vec<u8>, record: &'w [u8]) -> Edited<'w> {
        let start = out.len();
        out.reserve(record.len() + 64);
        out.push(b'{');
        Edited {
            out,
            start,
            watched: None,
            record,
            run: None,
            run_watched: None,
        }
    }

    /// Ends the record: where it was written, and where it has the watched key.
    fn close(mut self) -> AsSentOutcome {
        self.flush_run();
        self.out.push(b'}');
        AsSentOutcome::Edited(self.start..self.out.len(), self.watched)
    }

    /// Writes the entry `key` (as JSON) set to `json`; a top-level null is left out, as the
    /// reference leaves it.
    fn entry(&mut self, key: &[u8], json: &[u8], watched: bool) {
        if json != b"null" {
            self.write(key, |out| out.extend_from_slice(json), watched);
        }
    }

    /// Writes entries of the record as sent that follow each other, `run` (from the first one's
    /// key to the last one's value), with the watched one if it is among them.
    fn sent_run(&mut self, run: Range<usize>, watched: Option<SentEntry>) {
        self.flush_run();
        self.run = Some(run);
        self.run_watched = watched;
    }

    /// Writes an entry of the record as sent, with the run of those before it when it follows
    /// them.
    fn sent_entry(&mut self, entry: &SentEntry, watched: bool) {
        let record = self.record;
        let follows = self.run.as_ref().is_some_and(|run| {
            run.end + 1 == entry.key.start && record.get(run.end) == Some(&b',')
        });
        if follows {
            if let Some(run) = &mut self.run {
                run.end = entry.value.end;
            }
        } else {
            self.flush_run();
            self.run = Some(entry.key.start..entry.value.end);
        }
        if watched {
            self.run_watched = Some(entry.clone());
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

    fn write(&mut self, key: &[u8], write_value: impl FnOnce(&mut Vec<u8>), watched: bool) {
        self.flush_run();
        if self.out.len() > self.start + 1 {
            self.out.push(b',');
        }
        let key_start = self.out.len() - self.start;
        self.out.extend_from_slice(key);
        let key_end = self.out.len() - self.start;
        self.out.push(b':');
        write_value(self.out);
        if watched {
            self.watched = Some(SentEntry {
                key: key_start..key_end,
                value: key_end + 1..self.out.len() - self.start,
            });
        }
    }
}

impl Overlay<'_, '_> {
    /// Normalises the values set, and the entries as sent whose kind of value the schema may
    /// change (noted as replaced).
    fn normalize(&mut self, normalizer: &SchemaNormalizer) {
        if !self.work.set_normalized {
            for slot in 0..self.work.slots.len() {
                let Slot::Set(json) = self.work.slots[slot] else {
                    continue;
                };
                let Some(field) = normalizer.field(self.plan.slots[slot].as_bytes()) else {
                    continue;
                };
                // Values set print as the reference prints them, so they parse.
                let Ok(mut value) = crate::json::from_slice(self.json(json)) else {
                    continue;
                };
                normalizer.normalize_field(field, &mut value);
                self.set_value(slot, &value);
            }
        }
        let layout = self.layout;
        let record = self.record.as_bytes();
        for (index, entry) in self.entries.iter().enumerate() {
            let Some(field) = layout.field_of_entry[index] else {
                continue;
            };
            let sent = &record[entry.value.clone()];
            let kind = RawKind::of(sent);
            let changed_already = layout.slot_of_entry[index]
                .is_some_and(|slot| !matches!(self.work.slots[slot], Slot::AsSent));
            if changed_already || normalizer.leaves(field, kind, sent) {
                continue;
            }
            let work = &mut *self.work;
            if kind == Some(RawKind::Object) {
                // Only the values that change are parsed; an object written as it was sent is
                // left as it is.
                let from = work.normalized.len();
                let written = &mut work.normalized;
                match normalizer.normalize_object(field, sent, written, &mut work.object_scanners) {
                    // Written as it was sent after all.
                    Some(true) if work.normalized[from..] == *sent => {
                        work.normalized.truncate(from);
                        continue;
                    }
                    Some(true) => {
                        let range = from..work.normalized.len();
                        work.replaced.push((index, Replacement::Object(range)));
                        continue;
                    }
                    Some(false) => continue,
                    None => {}
                }
            }
            // The record prints as sent, so its values parse.
            let Ok(mut value) = crate::json::from_slice(sent) else {
                continue;
            };
            normalizer.normalize_field(field, &mut value);
            work.replaced.push((index, Replacement::Value(value)));
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

impl RecordFields for Overlay<'_, '_> {
    fn plain(&self, keys: &[String]) -> Option<PlainValue<'_>> {
        let [key] = keys else {
            return None;
        };
        let entry = match self.plan.slot_of(key) {
            Some(slot) => match self.work.slots[slot] {
                Slot::Removed => return None,
                // Read back from the JSON written, which is rare: a template reading a key an
                // earlier `AddFields` set.
                Slot::Set(json) => return plain_sent(std::str::from_utf8(self.json(json)).ok()?),
                Slot::AsSent => self.layout.entry_of_slot[slot]?,
            },
            None => self.layout.entry_of(key.as_bytes())?,
        };
        plain_sent(self.record.get(self.entries.get(entry)?.value.clone())?)
    }
}

/// A value as sent (valid JSON) as a [`PlainValue`], when it is one. Byte loops: `contains`
/// sets up memchr's search, which costs more than a short value's loop.
fn plain_sent(value: &str) -> Option<PlainValue<'_>> {
    let bytes = value.as_bytes();
    match bytes.first()? {
        b'"' => {
            let inner = value.get(1..value.len() - 1)?;
            if inner.bytes().any(|b| b == b'\\') {
                return None;
            }
            Some(PlainValue::String(inner))
        }
        // `-0` is read as a float.
        b'-' | b'0'..=b'9'
            if value != "-0" && !bytes.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) =>
        {
            let number = match value.parse::<i64>() {
                Ok(integer) => serde_json::Number::from(integer),
                Err(_) => serde_json::Number::from(value.parse::<u64>().ok()?),
            };
            Some(PlainValue::Integer(number))
        }
        _ => None,
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

/// The top-level keys one transformation reads, and what it sets and removes.
#[derive(Debug, Default)]
pub(crate) struct TopLevelKeys {
    pub read: Vec<String>,
    /// Its edits, in order.
    pub edits: Vec<KeyEdit>,
    /// It runs only on a parsed object of the keys read (an `AddFields` condition), not as
    /// [`KeyEdit`]s on a record as sent.
    pub parsed_only: bool,
}

/// One change a transformation makes to a record's top level.
#[derive(Debug)]
pub(crate) enum KeyEdit {
    Set { key: String, value: NewValue },
    Remove { key: String },
}

/// A value `AddFields` sets.
#[derive(Debug)]
pub(crate) enum NewValue {
    Constant(Value),
    /// A template's text, literal-evaluated to one of `valid_types` (any when empty).
    Rendered {
        template: Template,
        valid_types: Vec<LiteralType>,
    },
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

    /// A plan with a slot for each of `keys`.
    fn plan_of(keys: &[&str]) -> RawPlan {
        let mut plan = RawPlan::default();
        for key in keys {
            plan.add_slot(key);
        }
        plan
    }

    #[test]
    fn an_overlay_edits_as_a_python_dict_changes() {
        let record = r#"{"id":7,"a":"x","b":2}"#;
        let sent = walked(record.as_bytes());
        let plan = plan_of(&["id", "a", "b", "c", "new", "gone"]);
        let slot = |key: &str| plan.slot_of(key).unwrap();
        let mut scratch = EditScratch::default();
        scratch
            .layout
            .resolve(record, &sent, false, (&plan, None, None))
            .unwrap();
        let mut overlay = scratch.overlay(record, &sent, &plan);
        assert_eq!(
            overlay.plain(&["a".to_owned()]),
            Some(PlainValue::String("x"))
        );
        assert_eq!(
            overlay.plain(&["id".to_owned()]),
            Some(PlainValue::Integer(7.into()))
        );
        overlay.set_value(slot("new"), &Value::from(1));
        overlay.set_value(slot("a"), &Value::from("y"));
        overlay.set_value(slot("new"), &Value::from(2));
        overlay.remove(slot("b"));
        // Removed and set again: at the end, as in a dict.
        overlay.remove(slot("id"));
        overlay.set_value(slot("id"), &Value::from(8));
        assert_eq!(overlay.plain(&["b".to_owned()]), None);
        assert_eq!(
            overlay.plain(&["a".to_owned()]),
            Some(PlainValue::String("y"))
        );
        assert_eq!(
            overlay.plain(&["new".to_owned()]),
            Some(PlainValue::Integer(2.into()))
        );
        // Written after what the buffer holds already.
        let mut out = b"earlier".to_vec();
        let edited = br#"{"a":"y","new":2,"id":8}"#;
        assert_eq!(
            overlay.into_outcome(None, &mut out),
            AsSentOutcome::Edited(7..7 + edited.len(), None)
        );
        assert_eq!(&out[7..], edited);
        scratch
            .layout
            .resolve(record, &sent, false, (&plan, Some("b"), None))
            .unwrap();
        let mut nulls = scratch.overlay(record, &sent, &plan);
        nulls.set_value(slot("a"), &Value::Null);
        nulls.set_value(slot("c"), &Value::Null);
        nulls.remove(slot("id"));
        nulls.remove(slot("gone"));
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
        // Removing a key the record does not have changes nothing.
        let mut unchanged = scratch.overlay(record, &sent, &plan);
        unchanged.remove(slot("gone"));
        assert_eq!(
            unchanged.into_outcome(None, &mut out),
            AsSentOutcome::Unchanged
        );
    }

    #[test]
    fn short_keys_compare_as_their_bytes_do() {
        // Every length to 20, each differing from the others in one byte at every place.
        let mut keys = vec![String::new()];
        for length in 1..=20 {
            let key: String = (0..length).map(|i| char::from(b'a' + i)).collect();
            for at in 0..usize::from(length) {
                let mut other = key.clone().into_bytes();
                other[at] = b'X';
                keys.push(String::from_utf8(other).unwrap());
            }
            keys.push(key);
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
        }
    }

    #[test]
    fn a_layout_is_kept_for_records_with_the_same_keys_only() {
        let plan = plan_of(&["id", "a\"b"]);
        let mut layout = KeyLayout::default();
        let keys = |layout: &KeyLayout| -> Vec<(String, Option<usize>)> {
            (0..layout.key_ends.len())
                .map(|index| {
                    let key = String::from_utf8(layout.key(index).to_vec()).unwrap();
                    (key, layout.slot_of_entry[index])
                })
                .collect()
        };
        let record = r#"{"id":1,"a\"b":{"c":[1,2]},"s":"x,y"}"#;
        layout
            .resolve(
                record,
                &walked(record.as_bytes()),
                false,
                (&plan, None, None),
            )
            .unwrap();
        let expected = [("id", Some(0)), ("a\"b", Some(1)), ("s", None)];
        let expected = expected.map(|(key, slot)| (key.to_owned(), slot));
        assert_eq!(keys(&layout), expected);
        assert_eq!(layout.entry_of_slot, [Some(0), Some(1)]);
        // The same keys with other values: the layout holds.
        let same = br#"{"id":22,"a\"b":3,"s":"z"}"#;
        assert!(layout.describes(same, &walked(same)));
        // Another order, another key, one key fewer: it is worked out again.
        for other in [
            &br#"{"a\"b":3,"id":22,"s":"z"}"#[..],
            br#"{"id":22,"a\"b":3,"t":"z"}"#,
            br#"{"id":22,"a\"b":3}"#,
        ] {
            assert!(!layout.describes(other, &walked(other)));
        }
        let other = r#"{"s":"z","id":22}"#;
        layout
            .resolve(other, &walked(other.as_bytes()), false, (&plan, None, None))
            .unwrap();
        assert_eq!(
            keys(&layout),
            [("s".to_owned(), None), ("id".to_owned(), Some(0))]
        );
        assert_eq!(layout.entry_of_slot, [Some(1), None]);
        layout
            .resolve("{}", &walked(b"{}"), false, (&plan, None, None))
            .unwrap();
        assert_eq!(keys(&layout), []);
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
}
