//! Templates simple enough to evaluate straight on JSON, without minijinja.
//!
//! Per-record templates (`AddFields` values, `RecordFilter` conditions) run once per record, and
//! most of them only look a value up (`{{ record['country'] }}-{{ record.id }}`) or compare one
//! with a literal (`{{ record['status'] != 'deleted' }}`). Converting the record for minijinja and
//! running its VM costs several microseconds per record; evaluating such a template directly
//! costs a few map lookups.
//!
//! The direct evaluation only takes the plain case: every lookup finds a string or an integer
//! through objects, and a comparison compares two strings or two integers. Anything else (a
//! missing key, a float, a list, a variable not set) returns `None`, and the template renders in
//! full, so the two paths cannot disagree: the plain case is exactly what minijinja would print.

use std::fmt::Write;

use serde_json::Value as Json;

use crate::context::{Context, WELL_KNOWN};
use crate::template::METHOD_NAMES;

/// A template of text and `{{ lookup }}` / `{{ lookup <op> literal }}` expressions.
#[derive(Debug, Clone)]
pub(crate) struct Direct {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Lookup(Lookup),
    Compare(Lookup, Comparison, Literal),
}

/// A context variable and the object keys read through it (`record['a'].b`).
#[derive(Debug, Clone)]
struct Lookup {
    variable: String,
    keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone)]
enum Literal {
    String(String),
    Integer(i64),
}

impl Direct {
    /// Parses `source`, or `None` when it is not of the simple shape.
    pub(crate) fn parse(source: &str) -> Option<Direct> {
        if source.contains("{%") || source.contains("{#") {
            return None;
        }
        let mut pieces = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find("{{") {
                Some(start) => {
                    push_text(&rest[..start], &mut pieces)?;
                    let after = &rest[start + 2..];
                    let end = after.find("}}")?;
                    pieces.push(parse_expression(&after[..end])?);
                    rest = &after[end + 2..];
                }
                None => {
                    push_text(rest, &mut pieces)?;
                    rest = "";
                }
            }
        }
        let has_expression = pieces.iter().any(|p| !matches!(p, Piece::Text(_)));
        has_expression.then_some(Direct { pieces })
    }

    /// The first keys read through the variable `name` (`record['a'].b` reads `a`); `None` when
    /// it is read as a whole.
    pub(crate) fn keys_read(&self, name: &str) -> Option<Vec<String>> {
        let mut keys: Vec<String> = Vec::new();
        for piece in &self.pieces {
            let lookup = match piece {
                Piece::Text(_) => continue,
                Piece::Lookup(lookup) | Piece::Compare(lookup, _, _) => lookup,
            };
            if lookup.variable != name {
                continue;
            }
            let key = lookup.keys.first()?;
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        Some(keys)
    }

    /// The rendered text, or `None` when the values are not of the plain case.
    pub(crate) fn render(&self, ctx: &Context<'_>) -> Option<String> {
        self.render_with(|lookup| PlainValue::of(lookup.find(ctx)?))
    }

    /// The rendered text when every lookup reads a field of `record` (and nothing else), or
    /// `None`, as [`Direct::render`].
    pub(crate) fn render_record(&self, record: &dyn RecordFields) -> Option<String> {
        self.render_with(record_lookup(record))
    }

    /// [`Direct::render_record`], appending to `out` (left part written when it gives `None`).
    pub(crate) fn render_record_into(
        &self,
        record: &dyn RecordFields,
        out: &mut String,
    ) -> Option<()> {
        self.render_into(record_lookup(record), out)
    }

    /// What a template of one comparison of a field of `record` (`{{ record.status != 'x' }}`,
    /// a filter's usual condition) renders, as a boolean: the text `True` or `False` it would
    /// render, without writing it. `None` for any other template, or when it cannot be told.
    pub(crate) fn compare_record(&self, record: &dyn RecordFields) -> Option<bool> {
        let [Piece::Compare(lookup, comparison, literal)] = self.pieces.as_slice() else {
            return None;
        };
        if lookup.variable != "record" {
            return None;
        }
        compare(record.plain(&lookup.keys)?, *comparison, literal)
    }

    fn render_with<'v>(&self, find: impl Fn(&Lookup) -> Option<PlainValue<'v>>) -> Option<String> {
        // Room for what most renders make at once: growing the text a lookup at a time was
        // several allocations a record.
        let mut out = String::with_capacity(RENDERED_CAPACITY);
        self.render_into(find, &mut out)?;
        Some(out)
    }

    fn render_into<'v>(
        &self,
        find: impl Fn(&Lookup) -> Option<PlainValue<'v>>,
        out: &mut String,
    ) -> Option<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Lookup(lookup) => match find(lookup)? {
                    PlainValue::String(text) => out.push_str(text),
                    // Per record: itoa, not the formatting machinery.
                    PlainValue::Integer(number) => match number.as_i64() {
                        Some(integer) => out.push_str(itoa::Buffer::new().format(integer)),
                        None => {
                            let _ = write!(out, "{number}");
                        }
                    },
                },
                Piece::Compare(lookup, comparison, literal) => {
                    let holds = compare(find(lookup)?, *comparison, literal)?;
                    out.push_str(if holds { "True" } else { "False" });
                }
            }
        }
        Some(())
    }
}

/// The lookups of a template rendered from `record`'s fields: `record.…` only.
fn record_lookup<'r>(record: &'r dyn RecordFields) -> impl Fn(&Lookup) -> Option<PlainValue<'r>> {
    move |lookup| match lookup.variable.as_str() {
        "record" => record.plain(&lookup.keys),
        _ => None,
    }
}

/// Whether `value` compares to `literal` as `comparison` says; `None` for a string against
/// an integer, which the template engine would decide.
fn compare(value: PlainValue<'_>, comparison: Comparison, literal: &Literal) -> Option<bool> {
    let ordering = match (value, literal) {
        (PlainValue::String(left), Literal::String(right)) => left.cmp(right.as_str()),
        (PlainValue::Integer(left), Literal::Integer(right)) => left.as_i64()?.cmp(right),
        _ => return None,
    };
    Some(comparison.holds(ordering))
}

/// A value of the plain case: a string, or an integer within 64 bits.
#[derive(Debug, Clone, PartialEq)]
pub enum PlainValue<'a> {
    String(&'a str),
    Integer(serde_json::Number),
}

impl<'a> PlainValue<'a> {
    /// `value` when it is of the plain case.
    pub fn of(value: &'a Json) -> Option<PlainValue<'a>> {
        match value {
            Json::String(text) => Some(PlainValue::String(text)),
            Json::Number(number) if number.is_i64() || number.is_u64() => {
                Some(PlainValue::Integer(number.clone()))
            }
            _ => None,
        }
    }
}

/// The fields of a record kept in another form than a JSON value (a record as the API sent
/// it), for templates that only look fields up or compare them
/// ([`Template::render_record_as`](crate::Template::render_record_as)).
pub trait RecordFields {
    /// The value at `keys` (object keys from the record down), when it is there and of the
    /// plain case; `None` otherwise (the template is then rendered in full).
    fn plain(&self, keys: &[String]) -> Option<PlainValue<'_>>;
}

impl Lookup {
    fn find<'c>(&self, ctx: &'c Context<'_>) -> Option<&'c Json> {
        let mut value = ctx.get(&self.variable)?;
        for key in &self.keys {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }
}

impl Comparison {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Comparison::Equal => ordering == Equal,
            Comparison::NotEqual => ordering != Equal,
            Comparison::Less => ordering == Less,
            Comparison::LessOrEqual => ordering != Greater,
            Comparison::Greater => ordering == Greater,
            Comparison::GreaterOrEqual => ordering != Less,
        }
    }
}

/// Text between expressions; braces and line breaks (which Jinja normalises) are left to the
/// full renderer.
fn push_text(text: &str, pieces: &mut Vec<Piece>) -> Option<()> {
    if text.contains(['{', '}', '\n', '\r']) {
        return None;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_owned()));
    }
    Some(())
}

fn parse_expression(expression: &str) -> Option<Piece> {
    let expression = expression.trim_matches(' ');
    match split_comparison(expression)? {
        Some((left, comparison, right)) => {
            let lookup = parse_lookup(left.trim_matches(' '))?;
            let literal = parse_literal(right.trim_matches(' '))?;
            Some(Piece::Compare(lookup, comparison, literal))
        }
        None => Some(Piece::Lookup(parse_lookup(expression)?)),
    }
}

/// Splits at the first comparison operator outside quotes: `Some(None)` when there is none,
/// `None` when an operator character starts something this module does not evaluate (`=`, `!x`).
#[allow(clippy::option_option)]
fn split_comparison(expression: &str) -> Option<Option<(&str, Comparison, &str)>> {
    let bytes = expression.as_bytes();
    let mut quote = None;
    for (at, &byte) in bytes.iter().enumerate() {
        match (quote, byte) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(byte),
            (None, b'=' | b'!' | b'<' | b'>') => {
                let (comparison, width) = match (byte, bytes.get(at + 1)) {
                    (b'=', Some(b'=')) => (Comparison::Equal, 2),
                    (b'!', Some(b'=')) => (Comparison::NotEqual, 2),
                    (b'<', Some(b'=')) => (Comparison::LessOrEqual, 2),
                    (b'>', Some(b'=')) => (Comparison::GreaterOrEqual, 2),
                    (b'<', _) => (Comparison::Less, 1),
                    (b'>', _) => (Comparison::Greater, 1),
                    _ => return None,
                };
                return Some(Some((
                    &expression[..at],
                    comparison,
                    &expression[at + width..],
                )));
            }
            _ => {}
        }
    }
    Some(None)
}

/// `variable`, then `['key']`, `["key"]` or `.key` any number of times.
fn parse_lookup(text: &str) -> Option<Lookup> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let variable = &text[..end];
    if !WELL_KNOWN.contains(&variable) {
        return None;
    }
    let mut keys = Vec::new();
    let mut rest = &text[end..];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let quote = after.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
            let close = after[1..].find(quote)? + 1;
            let key = &after[1..close];
            if key.contains('\\') {
                return None;
            }
            keys.push(key.to_owned());
            rest = after[close + 1..].strip_prefix(']')?;
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let key = &after[..end];
            let is_identifier = key.starts_with(|c: char| c.is_ascii_alphabetic());
            if !is_identifier || METHOD_NAMES.contains(&key) {
                return None;
            }
            keys.push(key.to_owned());
            rest = &after[end..];
        } else {
            return None;
        }
    }
    Some(Lookup {
        variable: variable.to_owned(),
        keys,
    })
}

/// A quoted string without escapes, or a decimal integer.
fn parse_literal(text: &str) -> Option<Literal> {
    let quote = text.chars().next()?;
    if matches!(quote, '\'' | '"') {
        let inner = text.strip_prefix(quote)?.strip_suffix(quote)?;
        if inner.contains([quote, '\\']) {
            return None;
        }
        return Some(Literal::String(inner.to_owned()));
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok().map(Literal::Integer)
}

/// The capacity a render starts with.
const RENDERED_CAPACITY: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_only_the_simple_shapes() {
        for simple in [
            "{{ record['id'] }}",
            "{{record.id}}",
            "{{ record[\"a\"].b['c'] }}-x",
            "{{ record['status'] != 'deleted' }}",
            "{{ record.n >= -3 }}",
            "prefix {{ config['region'] }} suffix",
        ] {
            assert!(Direct::parse(simple).is_some(), "{simple}");
        }
        for other in [
            "plain text",
            "{{ record.get('id') }}",
            "{{ record.items }}",
            "{{ record['id'] | string }}",
            "{{ now_utc() }}",
            "{{ record['a'] == 1.5 }}",
            "{{ record['a'] == 007 }}",
            "{{ record['a'] = 1 }}",
            "{{ record['a'] == 'it\\'s' }}",
            "{{- record.id }}",
            "{% if record %}x{% endif %}",
            "{{ record.id }}\n",
            "{{ unknown_variable }}",
            "{{ record['a'] and record['b'] }}",
            "{{ record['a'] + 1 }}",
            "{{ record['id'] }",
        ] {
            assert!(Direct::parse(other).is_none(), "{other}");
        }
    }

    #[test]
    fn renders_lookups_and_comparisons_of_plain_values() {
        let record = json!({"id": 7, "country": "FR", "status": "deleted", "n": {"m": "x"}});
        let ctx = Context::new().record(&record);
        let render = |source: &str| Direct::parse(source).unwrap().render(&ctx);
        assert_eq!(
            render("{{ record['country'] }}-{{ record.id }}").unwrap(),
            "FR-7"
        );
        assert_eq!(render("{{ record.n.m }}").unwrap(), "x");
        assert_eq!(
            render("{{ record['status'] != 'deleted' }}").unwrap(),
            "False"
        );
        assert_eq!(render("{{ record['id'] > 5 }}").unwrap(), "True");
        assert_eq!(render("{{ record['id'] <= 5 }}").unwrap(), "False");
        // Not the plain case: left to the full renderer.
        assert_eq!(render("{{ record['missing'] }}"), None);
        assert_eq!(render("{{ record['n'] }}"), None);
        assert_eq!(render("{{ record['id'] == 'x' }}"), None);
        assert_eq!(render("{{ config['id'] }}"), None);
    }
}
