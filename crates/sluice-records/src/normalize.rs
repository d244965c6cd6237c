//! Schema normalisation (`schema_normalization: Default`): the reference's `TypeTransformer`
//! coercions of record values to the types of the stream's JSON schema.
//!
//! The reference walks the record with the schema's `properties`, `items` and `$ref` keywords
//! only (not `anyOf`, `additionalProperties`...), converting each value found under a schema
//! with a single non-null `type` the way Python would: `str()`, `float()`, `int()`, a boolean
//! from `"yes"`/`"no"`-style strings, a scalar wrapped in a list for an array. A conversion that
//! fails leaves the value as it was.

use std::sync::Arc;

use serde_json::{Number, Value};
use sluice_interp::python_str;

use sluice_protocol::{AsSent, RecordScanner};

use crate::dpath::parse_python_int;

/// Normalises records against a stream's JSON schema.
#[derive(Debug, Clone)]
pub struct SchemaNormalizer {
    schema: Arc<Value>,
    /// How each top-level property is normalised, when a record can be normalised field by
    /// field (its root schema has no `$ref`, which would walk the record again).
    fields: Option<Vec<FieldRule>>,
    /// The levels of objects within a record that `fields` normalise by their properties.
    object_levels: usize,
}

/// A top-level property of the schema (or a property of one, in `nested`).
#[derive(Debug, Clone)]
struct FieldRule {
    key: String,
    subschema: Value,
    conversion: Conversion,
    /// Whether the subschema has keywords the normalisation descends by (`properties`,
    /// `items`, `$ref`): without them, a converted value is done.
    descends: bool,
    /// The kinds of JSON value ([`RawKind`]) the normalisation certainly leaves as they are.
    unchanged: u8,
    /// When an object value is left an object and only its `properties` are descended into:
    /// their rules, by which an object as sent can be found unchanged without parsing it.
    nested: Option<Vec<FieldRule>>,
    /// When an array value is left an array and only its `items` (one schema for all) are
    /// converted and descended into: the kinds of element those leave as they are, by which an
    /// array as sent can be found unchanged without parsing it.
    items_unchanged: Option<u8>,
}

/// The kind of a JSON value as sent, told from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawKind {
    String = 1,
    Integer = 2,
    Float = 4,
    Bool = 8,
    Null = 16,
    Object = 32,
    Array = 64,
}

impl RawKind {
    /// The kind of `json`, a value as sent (integers within 64 bits, as in a record that prints
    /// as sent).
    #[inline]
    pub(crate) fn of(json: &[u8]) -> Option<RawKind> {
        Some(match json.first()? {
            b'"' => RawKind::String,
            b'{' => RawKind::Object,
            b'[' => RawKind::Array,
            b't' | b'f' => RawKind::Bool,
            b'n' => RawKind::Null,
            _ if json.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) => RawKind::Float,
            _ => RawKind::Integer,
        })
    }
}

const ALL_KINDS: u8 = 127;
const CONTAINERS: u8 = RawKind::Object as u8 | RawKind::Array as u8;

impl SchemaNormalizer {
    /// A normaliser for `schema` (the stream's `json_schema`).
    pub fn new(schema: Arc<Value>) -> Self {
        let fields = field_rules(&schema);
        let object_levels = fields.as_deref().map_or(0, |rules| nesting(rules) - 1);
        SchemaNormalizer {
            schema,
            fields,
            object_levels,
        }
    }

    /// Converts the values of `record` in place.
    pub fn normalize(&self, record: &mut Value) {
        descend(record, &self.schema, &self.schema, 0);
    }

    /// Whether an object record can be normalised one top-level field at a time
    /// ([`SchemaNormalizer::normalize_field`]), as [`SchemaNormalizer::normalize`] would.
    pub(crate) fn by_field(&self) -> bool {
        self.fields.is_some()
    }

    /// The top-level property named `key` (its index for the calls below), if the schema has
    /// one.
    pub(crate) fn field(&self, key: &[u8]) -> Option<usize> {
        self.field_from(key, 0)
    }

    /// [`SchemaNormalizer::field`], trying the property at index `from` first: when a record's
    /// keys come in the schema's order, each is found at once.
    pub(crate) fn field_from(&self, key: &[u8], from: usize) -> Option<usize> {
        rule_index(self.fields.as_ref()?, key, from)
    }

    /// Whether the normalisation certainly leaves `value` (a value as sent, of kind `kind`,
    /// within a record that prints as sent), the property `field`'s, as it is: told from its
    /// kind, and for an array from its elements' kinds.
    #[inline]
    pub(crate) fn leaves(&self, field: usize, kind: Option<RawKind>, value: &[u8]) -> bool {
        self.fields
            .as_ref()
            .is_some_and(|rules| rules[field].leaves(kind, value))
    }

    /// Writes `object` (an object as sent, within a record that prints as sent), the value of
    /// the property `field`, normalised to `out`: what the normalisation leaves is copied, and
    /// only the values it may change are parsed, each alone. `Some(false)`, with nothing
    /// written, when it leaves the whole object as it is; `None`, with `out` as it was, when
    /// the object is not normalised by its properties alone, or cannot be read as sent.
    pub(crate) fn normalize_object(
        &self,
        field: usize,
        object: &[u8],
        out: &mut Vec<u8>,
        scanners: &mut ObjectScanners,
    ) -> Option<bool> {
        let nested = self.fields.as_ref()?[field].nested.as_deref()?;
        if scanners.levels.len() < self.object_levels {
            scanners.levels.resize_with(self.object_levels, || {
                let mut scanner = RecordScanner::default();
                // Entries where they are sent, nulls among them (no record's top level here).
                scanner.for_editing(true);
                scanner
            });
        }
        let start = out.len();
        let ObjectScanners { levels, respelled } = scanners;
        let written = self.write_object(nested, object, out, (1, levels), respelled);
        if written.is_none() {
            out.truncate(start);
        }
        written
    }

    /// [`SchemaNormalizer::normalize_object`] for an object at `depth` below the record, by the
    /// rules of its properties, scanned by the first of `levels` (the others for the objects
    /// within it). The entries it leaves are copied in runs, as they were sent (the object
    /// prints as sent, so it is compact): writing them one by one was most of normalising an
    /// object (callgrind on `cargo xtask bench` scenario (k)).
    fn write_object(
        &self,
        rules: &[FieldRule],
        object: &[u8],
        out: &mut Vec<u8>,
        (depth, levels): (usize, &mut [RecordScanner]),
        respelled: &mut Vec<u8>,
    ) -> Option<bool> {
        let (scanner, deeper) = levels.split_first_mut()?;
        // Checked with its record, once.
        scanner.use_printed_text();
        respelled.clear();
        let scanned = scanner.scan_record(object, respelled);
        if scanned != Some((object.len(), AsSent::Identical)) {
            return None;
        }
        // Up to here the object is copied or written already.
        let mut copied = 0;
        // Properties usually come in the schema's order.
        let mut next_rule = 0;
        for entry in scanner.entries() {
            let quoted = &object[entry.key.clone()];
            let key = &quoted[1..quoted.len() - 1];
            if key.contains(&b'\\') {
                return None;
            }
            let Some(at) = rule_index(rules, key, next_rule) else {
                continue;
            };
            next_rule = at + 1;
            let rule = &rules[at];
            let value = &object[entry.value.clone()];
            let kind = RawKind::of(value);
            if rule.leaves(kind, value) {
                continue;
            }
            if copied == 0 {
                // About as long as it was sent: growing from empty cost more than writing it.
                out.reserve(object.len() + 8);
            }
            out.extend_from_slice(&object[copied..entry.value.start]);
            copied = entry.value.end;
            match (kind, &rule.nested) {
                (Some(RawKind::Object), Some(nested)) => {
                    let below = (depth + 1, &mut *deeper);
                    if !self.write_object(nested, value, out, below, respelled)? {
                        out.extend_from_slice(value);
                    }
                }
                _ => {
                    // As the whole record's normalisation treats this property's value.
                    let mut parsed = crate::json::from_slice(value).ok()?;
                    rule.normalize(&mut parsed, &self.schema, depth + 1);
                    crate::raw::write_value(out, &parsed);
                }
            }
        }
        if copied == 0 {
            return Some(false);
        }
        out.extend_from_slice(&object[copied..]);
        Some(true)
    }

    /// Normalises the value of the top-level property `field` of an object record, as
    /// [`SchemaNormalizer::normalize`] does it within the record.
    pub(crate) fn normalize_field(&self, field: usize, value: &mut Value) {
        let Some(rules) = &self.fields else {
            return;
        };
        let rule = &rules[field];
        rule.normalize(value, &self.schema, 1);
    }
}

impl FieldRule {
    /// [`SchemaNormalizer::leaves`] for this rule. Inlined: called for every value of every
    /// record, and most values are decided by their kind alone.
    #[inline]
    fn leaves(&self, kind: Option<RawKind>, value: &[u8]) -> bool {
        match kind {
            Some(kind) if self.unchanged & kind as u8 != 0 => true,
            Some(RawKind::Array) => self
                .items_unchanged
                .is_some_and(|kinds| elements_within(value, kinds)),
            _ => false,
        }
    }

    /// Converts `value` (the property's, at `depth` below the record) by the rule, then
    /// normalises what it holds: as the whole record's normalisation treats this property's
    /// value.
    fn normalize(&self, value: &mut Value, root: &Value, depth: usize) {
        self.conversion.apply(value, &self.subschema);
        if self.descends {
            descend(value, &self.subschema, root, depth);
        }
    }
}

/// The top-level properties' rules, or `None` when the root schema has a `$ref`. Under the
/// root, the normalisation of an object only reads `properties` (`items` needs an array),
/// converting then descending into each field on its own.
fn field_rules(schema: &Value) -> Option<Vec<FieldRule>> {
    let Value::Object(keywords) = schema else {
        return Some(Vec::new());
    };
    if keywords.contains_key("$ref") {
        return None;
    }
    let Some(Value::Object(properties)) = keywords.get("properties") else {
        return Some(Vec::new());
    };
    Some(property_rules(properties, 0))
}

fn property_rules(properties: &serde_json::Map<String, Value>, depth: usize) -> Vec<FieldRule> {
    properties
        .iter()
        .map(|(key, subschema)| {
            let conversion = Conversion::of(subschema);
            let descends = descends(subschema);
            FieldRule {
                key: key.clone(),
                subschema: subschema.clone(),
                conversion,
                descends,
                unchanged: unchanged_kinds(conversion, descends),
                nested: nested_rules(subschema, conversion, depth + 1),
                items_unchanged: items_unchanged(subschema, conversion),
            }
        })
        .collect()
}

/// The rules of `subschema`'s properties, when normalising an object under it converts
/// nothing but those: it keeps an object an object, and has no `$ref` (which would walk the
/// object again under another schema).
fn nested_rules(subschema: &Value, conversion: Conversion, depth: usize) -> Option<Vec<FieldRule>> {
    let Value::Object(map) = subschema else {
        return None;
    };
    if depth > MAX_DEPTH
        || map.contains_key("$ref")
        || converted_unchanged(conversion) & RawKind::Object as u8 == 0
    {
        return None;
    }
    match map.get("properties") {
        Some(Value::Object(properties)) => Some(property_rules(properties, depth)),
        _ => None,
    }
}

/// The kinds of value that [`convert`] then [`descend`] certainly leave as they are under a
/// subschema converting by `conversion` (and descending, if `descends`); other kinds may change
/// (or not) and are normalised as values.
fn unchanged_kinds(conversion: Conversion, descends: bool) -> u8 {
    // Scalars have nothing to descend into.
    let containers = if descends { 0 } else { CONTAINERS };
    let scalars = ALL_KINDS & !CONTAINERS;
    converted_unchanged(conversion) & (scalars | containers)
}

/// The kinds of element that normalising an array under `subschema` (converting by
/// `conversion`) certainly leaves as they are, when it keeps an array an array and reads only
/// one `items` schema for all its elements (`properties` reads nothing of an array).
fn items_unchanged(subschema: &Value, conversion: Conversion) -> Option<u8> {
    let Value::Object(map) = subschema else {
        return None;
    };
    if map.contains_key("$ref") || converted_unchanged(conversion) & RawKind::Array as u8 == 0 {
        return None;
    }
    let items = map.get("items")?;
    if !items.is_object() {
        return None;
    }
    Some(unchanged_kinds(Conversion::of(items), descends(items)))
}

/// Whether every element of `array`, a compact array as sent, is a scalar of a kind in `kinds`.
/// False for anything else (a container among the elements, whitespace), which is then parsed.
fn elements_within(array: &[u8], kinds: u8) -> bool {
    let Some(mut rest) = array.strip_prefix(b"[").and_then(|a| a.strip_suffix(b"]")) else {
        return false;
    };
    while !rest.is_empty() {
        let end = match rest[0] {
            b'"' => match string_end(rest) {
                Some(end) => end,
                None => return false,
            },
            b'{' | b'[' => return false,
            _ => memchr::memchr(b',', rest).unwrap_or(rest.len()),
        };
        let (element, after) = rest.split_at(end);
        if RawKind::of(element).is_none_or(|kind| kinds & kind as u8 == 0) {
            return false;
        }
        rest = match after {
            [] => after,
            [b',', next @ ..] if !next.is_empty() => next,
            _ => return false,
        };
    }
    true
}

/// The length of the string `text` starts with, quotes included.
fn string_end(text: &[u8]) -> Option<usize> {
    let mut at = 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', &text[at..])?;
        match text[at] {
            b'"' => return Some(at + 1),
            // An escape: the next byte is escaped.
            _ => at += 2,
        }
        if at > text.len() {
            return None;
        }
    }
}

/// Whether [`descend`] reads any keyword of `subschema`.
fn descends(subschema: &Value) -> bool {
    let Value::Object(map) = subschema else {
        return false;
    };
    ["properties", "items", "$ref"]
        .iter()
        .any(|keyword| map.contains_key(*keyword))
}

/// The kinds of value that [`convert`] certainly leaves as they are under `conversion`.
fn converted_unchanged(conversion: Conversion) -> u8 {
    let null = if conversion.keeps_null {
        RawKind::Null as u8
    } else {
        0
    };
    let scalars = ALL_KINDS & !CONTAINERS;
    let converted_unchanged = match conversion.target {
        // `convert` returns without a single type given as a string.
        None => scalars | CONTAINERS,
        Some(Target::String) => RawKind::String as u8,
        // `float()` keeps a float; the others it cannot convert.
        Some(Target::Number) => RawKind::Float as u8 | RawKind::Null as u8 | CONTAINERS,
        Some(Target::Integer) => RawKind::Integer as u8 | RawKind::Null as u8 | CONTAINERS,
        Some(Target::Boolean) => RawKind::Bool as u8,
        Some(Target::Array) => CONTAINERS,
    };
    converted_unchanged | null
}

/// Scanners for objects within records, one per level of nesting, kept by an editor from
/// record to record: moving a pooled scanner in and out of a thread-local for each object was
/// a third of normalising one, and the objects of one property, which have the same keys, are
/// checked against the last one's (callgrind on `cargo xtask bench` scenario (k)).
#[derive(Debug, Default)]
pub(crate) struct ObjectScanners {
    levels: Vec<RecordScanner>,
    /// What the scanners would respell: nothing, in objects that print as sent.
    respelled: Vec<u8>,
}

/// The index of the rule of the property named `key` among `rules`, trying the one at `from`
/// first: when an object's keys come in the schema's order, each is found at once. Inlined:
/// called for every entry of every object normalised, and a call of its own cost bench (k)
/// half a percent of its instructions.
#[inline(always)]
fn rule_index(rules: &[FieldRule], key: &[u8], from: usize) -> Option<usize> {
    match rules.get(from) {
        Some(rule) if crate::raw::same_bytes(rule.key.as_bytes(), key) => Some(from),
        // Property names are distinct: the one found anywhere is the one looked for.
        _ => rules.iter().position(|rule| rule.key.as_bytes() == key),
    }
}

/// How deep `rules` have nested rules: the levels of objects they normalise, theirs included.
fn nesting(rules: &[FieldRule]) -> usize {
    1 + rules
        .iter()
        .filter_map(|rule| rule.nested.as_deref().map(nesting))
        .max()
        .unwrap_or(0)
}

/// Deep enough for any real schema; stops `$ref` cycles.
const MAX_DEPTH: usize = 64;

fn descend(instance: &mut Value, schema: &Value, root: &Value, depth: usize) {
    let Value::Object(keywords) = schema else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    for (keyword, value) in keywords {
        match keyword.as_str() {
            "properties" => {
                let (Value::Object(properties), Value::Object(fields)) = (value, &mut *instance)
                else {
                    continue;
                };
                for (name, subschema) in properties {
                    if let Some(field) = fields.get_mut(name.as_str()) {
                        convert(field, subschema);
                    }
                }
                for (name, subschema) in properties {
                    if let Some(field) = fields.get_mut(name.as_str()) {
                        descend(field, subschema, root, depth + 1);
                    }
                }
            }
            "items" => {
                let Value::Array(items) = instance else {
                    continue;
                };
                match value {
                    Value::Object(_) => {
                        for item in items.iter_mut() {
                            convert(item, value);
                        }
                        for item in items.iter_mut() {
                            descend(item, value, root, depth + 1);
                        }
                    }
                    Value::Array(tuple) => {
                        for (item, subschema) in items.iter_mut().zip(tuple) {
                            descend(item, subschema, root, depth + 1);
                        }
                    }
                    _ => {}
                }
            }
            "$ref" => {
                if let Some(target) = value.as_str().and_then(|r| resolve_ref(root, r)) {
                    descend(instance, target, root, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// A local reference (`#/definitions/x`) into the root schema.
fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    let decoded = percent_decode(pointer);
    root.pointer(&decoded)
}

fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `TypeTransformer.default_convert`.
fn convert(value: &mut Value, subschema: &Value) {
    Conversion::of(subschema).apply(value, subschema);
}

/// What [`convert`] does under a subschema: read from its `type` once per rule rather than for
/// every value (looking the keyword up was a tenth of a normalised field, callgrind on
/// `cargo xtask bench` scenario (k)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conversion {
    /// The single non-null type given as a string, when it is one that converts.
    target: Option<Target>,
    /// `"null" in type`: a null is left as it is.
    keeps_null: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    String,
    Number,
    Integer,
    Boolean,
    Array,
}

impl Conversion {
    fn of(subschema: &Value) -> Conversion {
        let none = Conversion {
            target: None,
            keeps_null: false,
        };
        let Value::Object(map) = subschema else {
            return none;
        };
        let empty = Value::Array(Vec::new());
        let types = map.get("type").unwrap_or(&empty);
        let single = match types {
            Value::Array(types) => {
                let mut non_null = types.iter().filter(|t| t.as_str() != Some("null"));
                match (non_null.next(), non_null.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
            other => Some(other),
        };
        // Any other type converts nothing.
        let target = single.and_then(Value::as_str).and_then(|name| match name {
            "string" => Some(Target::String),
            "number" => Some(Target::Number),
            "integer" => Some(Target::Integer),
            "boolean" => Some(Target::Boolean),
            "array" => Some(Target::Array),
            _ => None,
        });
        Conversion {
            target,
            keeps_null: type_mentions_null(types),
        }
    }

    /// Converts `value`, under `subschema` (whose conversion this is).
    fn apply(self, value: &mut Value, subschema: &Value) {
        if value.is_null() && self.keeps_null {
            return;
        }
        let converted = match self.target {
            None => None,
            Some(Target::String) => match &*value {
                Value::String(_) => return,
                other => Some(Value::String(python_str(other))),
            },
            Some(Target::Number) => to_float(value),
            Some(Target::Integer) => to_integer(value),
            Some(Target::Boolean) => to_boolean(value),
            Some(Target::Array) => wrap_in_array(value, subschema),
        };
        if let Some(converted) = converted {
            *value = converted;
        }
    }
}

/// `"null" in type`: list membership, or a substring test when the type is a string.
fn type_mentions_null(target: &Value) -> bool {
    match target {
        Value::Array(types) => types.iter().any(|t| t.as_str() == Some("null")),
        Value::String(text) => text.contains("null"),
        _ => false,
    }
}

/// Python's `float(value)`; non-finite results become `null`, as the reference serialises them.
fn to_float(value: &Value) -> Option<Value> {
    let float = match value {
        Value::Number(n) => n.as_f64()?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(text) => parse_python_float(text)?,
        _ => return None,
    };
    Some(Number::from_f64(float).map_or(Value::Null, Value::Number))
}

fn parse_python_float(text: &str) -> Option<f64> {
    let text = text.trim();
    let cleaned;
    let text = if text.contains('_') {
        // Underscores are allowed only between digits.
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'_'
                && !(i > 0
                    && bytes[i - 1].is_ascii_digit()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            {
                return None;
            }
        }
        cleaned = text.replace('_', "");
        cleaned.as_str()
    } else {
        text
    };
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if !matches!(unsigned, "inf" | "infinity" | "nan")
        && !unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    lower.parse::<f64>().ok()
}

/// Python's `int(value)`.
fn to_integer(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => None,
        Value::Number(n) => {
            let truncated = n.as_f64()?.trunc();
            if !truncated.is_finite() {
                return None;
            }
            // Within i64 the truncation is exact; beyond it Python keeps a big integer.
            if truncated.abs() < 9.2e18 {
                Some(Value::from(truncated as i64))
            } else {
                Number::from_f64(truncated).map(Value::Number)
            }
        }
        Value::Bool(b) => Some(Value::from(i64::from(*b))),
        Value::String(text) => parse_python_int(text).map(Value::from),
        _ => None,
    }
}

/// The reference's boolean coercion: strings through `strtobool`, anything else through `bool()`.
fn to_boolean(value: &Value) -> Option<Value> {
    Some(Value::Bool(match value {
        Value::Bool(_) => return None,
        Value::String(text) => match text.trim().to_lowercase().as_str() {
            "y" | "yes" | "t" | "true" | "on" | "1" => true,
            "n" | "no" | "f" | "false" | "off" | "0" => false,
            _ => return None,
        },
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }))
}

/// A scalar (or null) becomes a one-element list when the items' types are all simple types
/// given as a list (a type given as a string is read character by character in the reference,
/// so it never qualifies).
fn wrap_in_array(value: &mut Value, subschema: &Value) -> Option<Value> {
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        return None;
    }
    let items = match subschema.get("items") {
        None => None,
        Some(Value::Object(items)) => Some(items),
        Some(_) => return None,
    };
    const SIMPLE: [&str; 5] = ["string", "number", "integer", "boolean", "null"];
    let simple = match items.and_then(|i| i.get("type")) {
        None => true,
        Some(Value::Array(types)) => types
            .iter()
            .all(|t| t.as_str().is_some_and(|t| SIMPLE.contains(&t))),
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    };
    simple.then(|| Value::Array(vec![std::mem::take(value)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalize(schema: Value, mut record: Value) -> Value {
        SchemaNormalizer::new(Arc::new(schema)).normalize(&mut record);
        record
    }

    #[test]
    fn a_property_is_found_from_anywhere_it_is_looked_for_from() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}
        }});
        let normalizer = SchemaNormalizer::new(Arc::new(schema));
        let a = normalizer.field(b"a").unwrap();
        let c = normalizer.field(b"c").unwrap();
        for from in 0..5 {
            assert_eq!(normalizer.field_from(b"a", from), Some(a), "{from}");
            assert_eq!(normalizer.field_from(b"c", from), Some(c), "{from}");
            assert_eq!(normalizer.field_from(b"x", from), None, "{from}");
        }
    }

    #[test]
    fn an_array_is_told_unchanged_from_its_elements_kinds() {
        let strings = RawKind::String as u8;
        let numbers = RawKind::Integer as u8 | RawKind::Float as u8;
        assert!(elements_within(b"[]", 0));
        assert!(elements_within(br#"["x","y"]"#, strings));
        // An escaped quote and a comma inside a string.
        assert!(elements_within(br#"["a\",1","\\"]"#, strings));
        assert!(!elements_within(br#"["x",1]"#, strings));
        assert!(elements_within(b"[1,2.5,-3e2]", numbers));
        assert!(!elements_within(b"[1,2.5]", RawKind::Integer as u8));
        assert!(!elements_within(b"[true,null]", RawKind::Bool as u8));
        // Containers are parsed, whatever the kinds.
        assert!(!elements_within(b"[[1]]", ALL_KINDS));
        assert!(!elements_within(br#"[{"k":1}]"#, ALL_KINDS));
        // Anything but a compact array.
        assert!(!elements_within(br#"["x",]"#, strings));
        assert!(!elements_within(br#"["x", "y"]"#, strings));
        assert!(!elements_within(br#""x""#, strings));
        assert!(!elements_within(br#"["x"#, strings));
    }

    #[test]
    fn scalar_coercions() {
        let schema = json!({"type": "object", "properties": {
            "s": {"type": "string"}, "n": {"type": ["null", "number"]}, "i": {"type": "integer"},
            "b": {"type": "boolean"}, "bad": {"type": "integer"}, "keep": {"type": ["string", "integer"]},
            "none_s": {"type": "string"}, "none_b": {"type": "boolean"}, "nul": {"type": ["null", "integer"]},
            "f": {"type": "integer"}, "obj": {"type": "string"}
        }});
        let record = json!({"s": 1.5, "n": " 2_0 ", "i": "42", "b": "Yes", "bad": "4.2",
            "keep": 5, "none_s": null, "none_b": null, "nul": null, "f": 3.9, "obj": {"a": true}});
        assert_eq!(
            normalize(schema, record),
            json!({"s": "1.5", "n": 20.0, "i": 42, "b": true, "bad": "4.2", "keep": 5,
                "none_s": "None", "none_b": false, "nul": null, "f": 3, "obj": "{'a': True}"})
        );
    }

    #[test]
    fn nested_objects_arrays_and_refs() {
        let schema = json!({
            "definitions": {"id": {"type": "object", "properties": {"v": {"type": "integer"}}}},
            "type": "object",
            "properties": {
                "nested": {"type": "object", "properties": {"x": {"type": "number"}}},
                "list": {"type": "array", "items": {"type": "string"}},
                "wrap": {"type": "array", "items": {"type": ["string"]}},
                "nowrap": {"type": "array", "items": {"type": "string"}},
                "ref": {"$ref": "#/definitions/id"}
            }
        });
        let record = json!({"nested": {"x": "1.5"}, "list": [1, true], "wrap": "a", "nowrap": "a",
            "ref": {"v": "7"}, "extra": "1"});
        assert_eq!(
            normalize(schema, record),
            json!({"nested": {"x": 1.5}, "list": ["1", "True"], "wrap": ["a"], "nowrap": "a",
                "ref": {"v": 7}, "extra": "1"})
        );
    }

    #[test]
    fn python_float_parsing() {
        assert_eq!(parse_python_float("1e3"), Some(1000.0));
        assert_eq!(parse_python_float(" .5 "), Some(0.5));
        assert!(parse_python_float("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_python_float("1_0"), Some(10.0));
        assert_eq!(parse_python_float("_1"), None);
        assert_eq!(parse_python_float("abc"), None);
        assert_eq!(to_float(&json!("inf")), Some(Value::Null));
    }
}
