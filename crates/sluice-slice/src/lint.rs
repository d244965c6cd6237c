//! Lints for `sluice validate`: settings the reference accepts without a word but that silently
//! hurt the connector's users (state that never advances, flags that do nothing, partition values
//! that are never sent, a concurrency level that can deadlock).
//!
//! Each [`Warning`] names the manifest path of the offending setting, as in
//! `streams[2].incremental_sync.cursor_granularity`. Parent streams are linted where they are
//! declared (`...parent_stream_configs[0].stream...`), unless they are the same stream as a
//! top-level one, whose warnings already cover them.

use serde_json::{Map, Value};
use sluice_interp::{Context, Template, is_truthy};
use sluice_manifest::model::{
    ConcurrencyLevel, DatetimeBasedCursor, DeclarativeStream, IncrementalSync, IntegerOrString,
    ListPartitionRouter, PartitionRouter, Retriever, Stream, StreamEntry, StreamPartitionRouter,
    StringOrList, SubstreamPartitionRouter, UnderlyingPartitionRouter,
};
use sluice_manifest::{Manifest, ManifestPath};
use std::fmt;

/// A setting that is valid but almost certainly not what the author meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the setting lies in the manifest.
    pub path: ManifestPath,
    /// What goes wrong, and how to fix it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The warnings for `manifest`, in manifest order.
pub fn lint(manifest: &Manifest) -> Vec<Warning> {
    let model = &manifest.model;
    let root = ManifestPath::root();
    let mut top_level: Vec<(ManifestPath, &DeclarativeStream)> = Vec::new();
    for (i, entry) in model.streams.iter().flatten().enumerate() {
        let at = root.key("streams").index(i);
        match entry {
            StreamEntry::DeclarativeStream(stream) => top_level.push((at, stream)),
            StreamEntry::ConditionalStreams(conditional) => {
                for (j, stream) in conditional.streams.iter().enumerate() {
                    top_level.push((at.key("streams").index(j), stream));
                }
            }
            StreamEntry::StateDelegatingStream(delegating) => {
                top_level.push((
                    at.key("full_refresh_stream"),
                    &delegating.full_refresh_stream,
                ));
                top_level.push((at.key("incremental_stream"), &delegating.incremental_stream));
            }
        }
    }
    for (i, dynamic) in model.dynamic_streams.iter().flatten().enumerate() {
        let at = root.key("dynamic_streams").index(i).key("stream_template");
        push_stream(&mut top_level, at, &dynamic.stream_template);
    }

    let mut linter = Linter {
        top_level: top_level.iter().map(|(_, s)| *s).collect(),
        warnings: Vec::new(),
    };
    for (at, stream) in &top_level {
        linter.stream(stream, at);
    }
    if let Some(level) = &model.concurrency_level {
        let partitioned = top_level
            .iter()
            .find(|(_, stream)| partition_router(stream).is_some());
        if let Some((at, stream)) = partitioned {
            linter.concurrency(level, &root.key("concurrency_level"), stream, at);
        }
    }
    linter.warnings
}

fn push_stream<'a>(
    streams: &mut Vec<(ManifestPath, &'a DeclarativeStream)>,
    at: ManifestPath,
    stream: &'a Stream,
) {
    match stream {
        Stream::DeclarativeStream(stream) => streams.push((at, stream)),
        Stream::StateDelegatingStream(delegating) => {
            streams.push((
                at.key("full_refresh_stream"),
                &delegating.full_refresh_stream,
            ));
            streams.push((at.key("incremental_stream"), &delegating.incremental_stream));
        }
    }
}

fn partition_router(stream: &DeclarativeStream) -> Option<&StreamPartitionRouter> {
    match &stream.retriever {
        Retriever::SimpleRetriever(retriever) => retriever.partition_router.as_ref(),
        Retriever::AsyncRetriever(retriever) => retriever.partition_router.as_ref(),
        Retriever::CustomRetriever(_) => None,
    }
}

fn stream_label(stream: &DeclarativeStream, at: &ManifestPath) -> String {
    match stream.name.as_deref() {
        Some(name) if !name.is_empty() => format!("`{name}` ({at})"),
        _ => at.to_string(),
    }
}

struct Linter<'m> {
    /// The top-level streams: a parent stream equal to one of them is linted there only.
    top_level: Vec<&'m DeclarativeStream>,
    warnings: Vec<Warning>,
}

/// What the routers of a stream need to know about it.
struct StreamFacts {
    label: String,
    incremental: bool,
}

impl Linter<'_> {
    fn warn(&mut self, path: ManifestPath, message: String) {
        self.warnings.push(Warning { path, message });
    }

    fn stream(&mut self, stream: &DeclarativeStream, at: &ManifestPath) {
        let router = partition_router(stream);
        if let Some(IncrementalSync::DatetimeBasedCursor(cursor)) = &stream.incremental_sync {
            let cursor_at = at.key("incremental_sync");
            self.granularity(cursor, &cursor_at);
            if router.is_some() {
                self.sortable_format(cursor, &cursor_at);
            }
        }
        if let Some(router) = router {
            let facts = StreamFacts {
                label: stream_label(stream, at),
                incremental: stream.incremental_sync.is_some(),
            };
            self.stream_router(router, &at.key("retriever").key("partition_router"), &facts);
        }
    }

    fn stream_router(
        &mut self,
        router: &StreamPartitionRouter,
        at: &ManifestPath,
        facts: &StreamFacts,
    ) {
        match router {
            StreamPartitionRouter::SubstreamPartitionRouter(r) => self.substream(r, at, facts),
            StreamPartitionRouter::ListPartitionRouter(r) => self.list(r, at),
            StreamPartitionRouter::GroupingPartitionRouter(r) => self.underlying(
                &r.underlying_partition_router,
                &at.key("underlying_partition_router"),
                facts,
            ),
            StreamPartitionRouter::UnionPartitionRouter(r) => {
                for (i, inner) in r.partition_routers.iter().enumerate() {
                    self.underlying(inner, &at.key("partition_routers").index(i), facts);
                }
            }
            StreamPartitionRouter::CustomPartitionRouter(_) => {}
            StreamPartitionRouter::List(routers) => {
                for (i, inner) in routers.iter().enumerate() {
                    self.router(inner, &at.index(i), facts);
                }
            }
        }
    }

    fn router(&mut self, router: &PartitionRouter, at: &ManifestPath, facts: &StreamFacts) {
        match router {
            PartitionRouter::SubstreamPartitionRouter(r) => self.substream(r, at, facts),
            PartitionRouter::ListPartitionRouter(r) => self.list(r, at),
            PartitionRouter::GroupingPartitionRouter(r) => self.underlying(
                &r.underlying_partition_router,
                &at.key("underlying_partition_router"),
                facts,
            ),
            PartitionRouter::UnionPartitionRouter(r) => {
                for (i, inner) in r.partition_routers.iter().enumerate() {
                    self.underlying(inner, &at.key("partition_routers").index(i), facts);
                }
            }
            PartitionRouter::CustomPartitionRouter(_) => {}
        }
    }

    fn underlying(
        &mut self,
        router: &UnderlyingPartitionRouter,
        at: &ManifestPath,
        facts: &StreamFacts,
    ) {
        match router {
            UnderlyingPartitionRouter::SubstreamPartitionRouter(r) => self.substream(r, at, facts),
            UnderlyingPartitionRouter::ListPartitionRouter(r) => self.list(r, at),
            UnderlyingPartitionRouter::UnionPartitionRouter(r) => {
                for (i, inner) in r.partition_routers.iter().enumerate() {
                    self.underlying(inner, &at.key("partition_routers").index(i), facts);
                }
            }
            UnderlyingPartitionRouter::CustomPartitionRouter(_) => {}
        }
    }

    /// (b) `incremental_dependency` on a child without `incremental_sync`, and the parents.
    fn substream(
        &mut self,
        router: &SubstreamPartitionRouter,
        at: &ManifestPath,
        facts: &StreamFacts,
    ) {
        for (i, config) in router.parent_stream_configs.iter().enumerate() {
            let config_at = at.key("parent_stream_configs").index(i);
            if config.incremental_dependency == Some(true) && !facts.incremental {
                self.warn(
                    config_at.key("incremental_dependency"),
                    format!(
                        "has no effect: the stream {} has no incremental_sync, and only an incremental \
                         stream stores its parent's state, so every sync re-reads the parent from its start; \
                         add an incremental_sync to the stream or remove incremental_dependency",
                        facts.label
                    ),
                );
            }
            let mut parents = Vec::new();
            push_stream(&mut parents, config_at.key("stream"), &config.stream);
            for (parent_at, parent) in parents {
                if !self.top_level.contains(&parent) {
                    self.stream(parent, &parent_at);
                }
            }
        }
    }

    /// (c) partition values that `request_option` never sends.
    fn list(&mut self, router: &ListPartitionRouter, at: &ManifestPath) {
        let Some(option) = &router.request_option else {
            return;
        };
        let field = option
            .field_name
            .clone()
            .or_else(|| option.field_path.as_ref().map(|p| p.join(".")))
            .unwrap_or_default();
        let dropped = |value: &str| {
            format!(
                "the partition value {value} is never sent: the reference injects a partition value \
                 through request_option ({} `{field}`) only when it is truthy, so this partition is \
                 requested without it",
                option.inject_into.as_str()
            )
        };
        let values_at = at.key("values");
        match &router.values {
            StringOrList::List(values) => {
                for (i, value) in values.iter().enumerate() {
                    if value.is_empty() {
                        self.warn(values_at.index(i), dropped("\"\""));
                    }
                }
            }
            StringOrList::String(source) => {
                let Some(Value::Array(values)) = render_values(source, router.parameters.as_ref())
                else {
                    return;
                };
                for value in values.iter().filter(|v| !is_truthy(v)) {
                    self.warn(values_at.clone(), dropped(&value.to_string()));
                }
            }
        }
    }

    /// (a) a `cursor_granularity` finer than the `datetime_format` can represent.
    fn granularity(&mut self, cursor: &DatetimeBasedCursor, at: &ManifestPath) {
        let Some(text) = cursor.cursor_granularity.as_deref() else {
            return;
        };
        let (Some(granularity), Some(unit)) = (
            IsoDuration::parse(text),
            finest_unit(&cursor.datetime_format),
        ) else {
            return;
        };
        if granularity.is_positive() && granularity.is_finer_than(unit) {
            self.warn(
                at.key("cursor_granularity"),
                format!(
                    "{text} is finer than datetime_format {:?} can represent (one {}): a slice's \
                     formatted end loses the difference, so adjacent slices never merge and the state \
                     advances by at most one slice per sync; use a cursor_granularity of at least {} \
                     or a more precise datetime_format",
                    cursor.datetime_format,
                    unit.name(),
                    unit.iso()
                ),
            );
        }
    }

    /// (d) a `datetime_format` whose strings do not sort chronologically, on a partitioned stream.
    fn sortable_format(&mut self, cursor: &DatetimeBasedCursor, at: &ManifestPath) {
        let format = &cursor.datetime_format;
        if EPOCH_FORMATS.contains(&format.as_str()) || sorts_chronologically(format) {
            return;
        }
        self.warn(
            at.key("datetime_format"),
            format!(
                "{format:?} does not sort chronologically as text, and the reference takes the global \
                 `state` of a partitioned stream as the greatest formatted cursor value compared as \
                 strings, so that state can move to an earlier date; prefer an ISO 8601 format such as \
                 \"%Y-%m-%dT%H:%M:%SZ\""
            ),
        );
    }

    /// (e) a concurrency level of 1 with a partitioned stream.
    fn concurrency(
        &mut self,
        level: &ConcurrencyLevel,
        at: &ManifestPath,
        stream: &DeclarativeStream,
        stream_at: &ManifestPath,
    ) {
        let is_one = |value: &IntegerOrString| match value {
            IntegerOrString::Integer(n) => *n == 1,
            IntegerOrString::String(s) => s.trim() == "1",
        };
        let path = if is_one(&level.default_concurrency) {
            at.key("default_concurrency")
        } else if level.max_concurrency == Some(1) {
            at.key("max_concurrency")
        } else {
            return;
        };
        self.warn(
            path,
            format!(
                "a concurrency level of 1 runs partition generation and reads on one worker, which the \
                 reference's own schema warns can deadlock once a stream has more than 10,000 pending \
                 partitions, as the partitioned stream {} may; use at least 2",
                stream_label(stream, stream_at)
            ),
        );
    }
}

/// Evaluates an interpolated `values` string once, as the reference does, when it needs no config.
fn render_values(source: &str, parameters: Option<&Map<String, Value>>) -> Option<Value> {
    let template = Template::new(source).ok()?;
    if template.is_constant() || template.reads("config") {
        return None;
    }
    let parameters = Value::Object(parameters.cloned().unwrap_or_default());
    template
        .render(&Context::new().parameters(&parameters))
        .ok()
}

/// Formats the reference writes as epoch numbers (`DatetimeParser.format`): their text keeps one
/// length for centuries, so string order is fine in practice.
const EPOCH_FORMATS: [&str; 4] = ["%s", "%ms", "%s_as_float", "%epoch_microseconds"];

/// The smallest step of time a format distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

const MICROS_PER_DAY: f64 = 86_400e6;

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Microsecond => "microsecond",
            Unit::Millisecond => "millisecond",
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    fn iso(self) -> &'static str {
        match self {
            Unit::Microsecond => "PT0.000001S",
            Unit::Millisecond => "PT0.001S",
            Unit::Second => "PT1S",
            Unit::Minute => "PT1M",
            Unit::Hour => "PT1H",
            Unit::Day => "P1D",
            Unit::Week => "P1W",
            Unit::Month => "P1M",
            Unit::Year => "P1Y",
        }
    }

    /// The length of this unit in microseconds, a month counting 28 days (the shortest) as in
    /// [`IsoDuration::is_finer_than`].
    fn micros(self) -> f64 {
        match self {
            Unit::Microsecond => 1.0,
            Unit::Millisecond => 1e3,
            Unit::Second => 1e6,
            Unit::Minute => 60e6,
            Unit::Hour => 3600e6,
            Unit::Day => MICROS_PER_DAY,
            Unit::Week => 7.0 * MICROS_PER_DAY,
            Unit::Month => 28.0 * MICROS_PER_DAY,
            Unit::Year => 12.0 * 28.0 * MICROS_PER_DAY,
        }
    }
}

/// The finest unit `format` can represent, read the way the reference's `DatetimeParser.format`
/// writes it: the epoch formats only when they are the whole format, `%_ms` anywhere, and
/// otherwise Python's `strftime` directives. `None` when the format has no date or time field.
fn finest_unit(format: &str) -> Option<Unit> {
    match format {
        "%s" => return Some(Unit::Second),
        "%ms" => return Some(Unit::Millisecond),
        "%s_as_float" | "%epoch_microseconds" => return Some(Unit::Microsecond),
        _ => {}
    }
    directives(format)
        .into_iter()
        .filter_map(|(d, _)| match d {
            Directive::Millis => Some(Unit::Millisecond),
            Directive::Char(c) => directive_unit(c),
        })
        .min()
}

fn directive_unit(directive: char) -> Option<Unit> {
    Some(match directive {
        'f' => Unit::Microsecond,
        'S' | 's' | 'c' | 'X' | 'T' | 'r' => Unit::Second,
        'M' | 'R' => Unit::Minute,
        'H' | 'I' | 'k' | 'l' => Unit::Hour,
        'd' | 'e' | 'j' | 'x' | 'D' | 'F' | 'a' | 'A' | 'w' | 'u' => Unit::Day,
        'U' | 'W' | 'V' => Unit::Week,
        'm' | 'b' | 'B' | 'h' => Unit::Month,
        'Y' | 'y' | 'G' | 'g' | 'C' => Unit::Year,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    /// `%_ms`, the reference's zero-padded milliseconds.
    Millis,
    /// `%<c>`, with any glibc flag (`-`, `_`, `0`, `^`, `#`) dropped.
    Char(char),
}

/// The directives of a strftime format, in order, each with whether it carries a glibc flag
/// (`-`, `_`, `0`, `^`, `#`: unpadded or recased output). `%%` is a literal and not listed.
fn directives(format: &str) -> Vec<(Directive, bool)> {
    let mut out = Vec::new();
    let mut rest = format;
    while let Some(i) = rest.find('%') {
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix("_ms") {
            out.push((Directive::Millis, false));
            rest = after;
            continue;
        }
        let mut chars = rest.chars();
        let mut flagged = false;
        let mut c = chars.next();
        while let Some('-' | '_' | '0' | '^' | '#') = c {
            flagged = true;
            c = chars.next();
        }
        match c {
            Some('%') | None => {}
            Some(c) => out.push((Directive::Char(c), flagged)),
        }
        rest = chars.as_str();
    }
    out
}

/// Whether strings in `format` sort as their datetimes do: zero-padded fields from the full year
/// down, none skipped (`%Y-%m-%d`, `%Y%m%dT%H%M%S.%f`, `%Y-%j`), then at most a UTC offset or zone,
/// which the reference's own formatting keeps constant.
fn sorts_chronologically(format: &str) -> bool {
    // The rank each field has; a field must come right after the one before it.
    let rank = |directive: Directive| match directive {
        Directive::Char('Y') => Some((0, 0)),
        Directive::Char('m') => Some((1, 1)),
        Directive::Char('d') => Some((2, 2)),
        Directive::Char('j') => Some((1, 2)),
        Directive::Char('H') => Some((3, 3)),
        Directive::Char('M') => Some((4, 4)),
        Directive::Char('S') => Some((5, 5)),
        Directive::Char('f') | Directive::Millis => Some((6, 6)),
        _ => None,
    };
    let mut last: Option<u8> = None;
    let mut zone = false;
    for (directive, flagged) in directives(format) {
        if flagged {
            return false;
        }
        if let Directive::Char('z' | 'Z') = directive {
            zone = true;
            continue;
        }
        let Some((first, through)) = rank(directive) else {
            return false;
        };
        let expected = last.map_or(0, |l| l + 1);
        if zone || first != expected {
            return false;
        }
        last = Some(through);
    }
    last.is_some()
}

/// An ISO 8601 duration as `isodate` reads it: whole months (years count 12), and the rest in
/// microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IsoDuration {
    months: i64,
    micros: f64,
}

impl IsoDuration {
    fn parse(text: &str) -> Option<Self> {
        let (negative, body) = match text.trim().strip_prefix('-') {
            Some(body) => (true, body),
            None => (false, text.trim().trim_start_matches('+')),
        };
        let body = body.strip_prefix('P')?;
        let (date, time) = match body.split_once('T') {
            Some((_, "")) => return None,
            Some((date, time)) => (date, time),
            None => (body, ""),
        };
        let mut duration = IsoDuration {
            months: 0,
            micros: 0.0,
        };
        let mut any = false;
        let date_units = [
            ('Y', 0.0),
            ('M', 0.0),
            ('W', 7.0 * MICROS_PER_DAY),
            ('D', MICROS_PER_DAY),
        ];
        let time_units = [('H', 3600e6), ('M', 60e6), ('S', 1e6)];
        for (in_date, part, units) in [
            (true, date, &date_units[..]),
            (false, time, &time_units[..]),
        ] {
            let mut number = String::new();
            let mut next = 0;
            for c in part.chars() {
                if c.is_ascii_digit() || c == '.' || c == ',' {
                    number.push(if c == ',' { '.' } else { c });
                    continue;
                }
                let position = units[next..].iter().position(|(u, _)| *u == c)?;
                next += position + 1;
                let value: f64 = number.parse().ok()?;
                number.clear();
                any = true;
                match (in_date, c) {
                    (true, 'Y') | (true, 'M') if value.fract() != 0.0 => return None,
                    (true, 'Y') => duration.months += 12 * value as i64,
                    (true, 'M') => duration.months += value as i64,
                    _ => duration.micros += value * units[next - 1].1,
                }
            }
            if !number.is_empty() {
                return None;
            }
        }
        if !any {
            return None;
        }
        if negative {
            duration.months = -duration.months;
            duration.micros = -duration.micros;
        }
        Some(duration)
    }

    fn is_positive(self) -> bool {
        self.months > 0 || (self.months == 0 && self.micros > 0.0)
    }

    /// Whether this duration is shorter than the shortest `unit` (months count 28 days).
    fn is_finer_than(self, unit: Unit) -> bool {
        (self.months as f64 * Unit::Month.micros() + self.micros) < unit.micros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTER: &str =
        "{ type: HttpRequester, url_base: 'https://api.example.com', path: /items }";
    const SELECTOR: &str =
        "{ type: RecordSelector, extractor: { type: DpathExtractor, field_path: [] } }";

    /// A manifest whose streams are the given YAML mappings (each a flow mapping of the stream's
    /// extra keys), with `extra` appended at the top level.
    fn manifest(streams: &[(&str, &str, &str)], extra: &str) -> Manifest {
        let mut yaml = String::from(
            "version: 6.0.0\ntype: DeclarativeSource\ncheck: { type: CheckStream, stream_names: [s0] }\nstreams:\n",
        );
        for (name, retriever_extra, stream_extra) in streams {
            yaml.push_str(&format!(
                "  - type: DeclarativeStream\n    name: {name}\n    retriever:\n      type: SimpleRetriever\n      requester: {REQUESTER}\n      record_selector: {SELECTOR}\n{retriever_extra}{stream_extra}"
            ));
        }
        yaml.push_str(extra);
        sluice_manifest::load_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn cursor(format: &str, granularity: &str) -> String {
        format!(
            "    incremental_sync:\n      type: DatetimeBasedCursor\n      cursor_field: updated_at\n      datetime_format: '{format}'\n      start_datetime: '2024-01-01T00:00:00Z'\n      step: P1D\n      cursor_granularity: {granularity}\n"
        )
    }

    fn paths(warnings: &[Warning]) -> Vec<String> {
        warnings.iter().map(|w| w.path.to_string()).collect()
    }

    const LIST_ROUTER: &str = "      partition_router: { type: ListPartitionRouter, cursor_field: section, values: [a, b] }\n";

    #[test]
    fn a_clean_manifest_gives_no_warning() {
        let parent = format!(
            "      partition_router:\n        type: SubstreamPartitionRouter\n        parent_stream_configs:\n          - type: ParentStreamConfig\n            parent_key: id\n            partition_field: parent_id\n            incremental_dependency: true\n            request_option: {{ type: RequestOption, inject_into: request_parameter, field_name: parent }}\n            stream: {{ type: DeclarativeStream, name: s0, retriever: {{ type: SimpleRetriever, requester: {REQUESTER}, record_selector: {SELECTOR} }} }}\n"
        );
        let m = manifest(
            &[
                ("s0", "", &cursor("%Y-%m-%d", "P1D")),
                ("s1", &parent, &cursor("%Y-%m-%dT%H:%M:%SZ", "PT1S")),
                (
                    "s2",
                    LIST_ROUTER,
                    &cursor("%Y-%m-%dT%H:%M:%S.%fZ", "PT0.000001S"),
                ),
                ("s3", "", &cursor("%s", "PT1S")),
            ],
            "concurrency_level: { type: ConcurrencyLevel, default_concurrency: 2 }\n",
        );
        assert_eq!(lint(&m), []);
    }

    #[test]
    fn granularity_finer_than_the_format() {
        let m = manifest(
            &[
                ("s0", "", &cursor("%Y-%m-%d", "PT1S")),
                ("s1", "", &cursor("%Y-%m-%dT%H:%M:%SZ", "PT0.000001S")),
                ("s2", "", &cursor("%Y-%m-%dT%H:%M:%S.%_ms", "PT0.001S")),
                ("s3", "", &cursor("%ms", "PT0.000001S")),
            ],
            "",
        );
        let warnings = lint(&m);
        assert_eq!(
            paths(&warnings),
            [
                "streams[0].incremental_sync.cursor_granularity",
                "streams[1].incremental_sync.cursor_granularity",
                "streams[3].incremental_sync.cursor_granularity",
            ]
        );
        assert_eq!(
            warnings[0].to_string(),
            "streams[0].incremental_sync.cursor_granularity: PT1S is finer than datetime_format \
             \"%Y-%m-%d\" can represent (one day): a slice's formatted end loses the difference, so \
             adjacent slices never merge and the state advances by at most one slice per sync; use a \
             cursor_granularity of at least P1D or a more precise datetime_format"
        );
        assert!(
            warnings[1].message.contains("(one second)"),
            "{}",
            warnings[1]
        );
        assert!(
            warnings[2].message.contains("(one millisecond)"),
            "{}",
            warnings[2]
        );
    }

    #[test]
    fn format_units() {
        assert_eq!(finest_unit("%Y-%m-%d"), Some(Unit::Day));
        assert_eq!(
            finest_unit("%Y-%m-%dT%H:%M:%S.%f%z"),
            Some(Unit::Microsecond)
        );
        assert_eq!(finest_unit("%Y-%m-%d %H:%M"), Some(Unit::Minute));
        assert_eq!(finest_unit("%Y-%m"), Some(Unit::Month));
        assert_eq!(finest_unit("%s_as_float"), Some(Unit::Microsecond));
        assert_eq!(finest_unit("%epoch_microseconds"), Some(Unit::Microsecond));
        // `%%S` is a literal: the format carries days only.
        assert_eq!(finest_unit("%Y-%m-%d%%S"), Some(Unit::Day));
        assert_eq!(finest_unit("literal"), None);
        let d = |t| IsoDuration::parse(t).unwrap();
        assert!(d("PT0.000001S").is_finer_than(Unit::Second));
        assert!(!d("PT1S").is_finer_than(Unit::Second));
        assert!(!d("P1D").is_finer_than(Unit::Day));
        assert!(d("PT23H").is_finer_than(Unit::Day));
        assert!(!d("P1M").is_finer_than(Unit::Month));
        assert!(d("P1D").is_finer_than(Unit::Month));
        assert!(!d("P1Y").is_finer_than(Unit::Year));
        assert!(!d("P1W").is_finer_than(Unit::Day));
        assert_eq!(IsoDuration::parse("1D"), None);
        assert_eq!(IsoDuration::parse("PT"), None);
        assert_eq!(IsoDuration::parse("{{ config['g'] }}"), None);
    }

    #[test]
    fn incremental_dependency_without_incremental_sync() {
        let router = |dependency: bool| {
            format!(
                "      partition_router:\n        type: SubstreamPartitionRouter\n        parent_stream_configs:\n          - type: ParentStreamConfig\n            parent_key: id\n            partition_field: parent_id\n            incremental_dependency: {dependency}\n            stream: {{ type: DeclarativeStream, name: parents, retriever: {{ type: SimpleRetriever, requester: {REQUESTER}, record_selector: {SELECTOR} }} }}\n"
            )
        };
        let m = manifest(
            &[
                ("s0", &router(true), ""),
                ("s1", &router(true), &cursor("%Y-%m-%d", "P1D")),
                ("s2", &router(false), ""),
            ],
            "",
        );
        let warnings = lint(&m);
        assert_eq!(
            warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "streams[0].retriever.partition_router.parent_stream_configs[0].incremental_dependency: \
              has no effect: the stream `s0` (streams[0]) has no incremental_sync, and only an \
              incremental stream stores its parent's state, so every sync re-reads the parent from \
              its start; add an incremental_sync to the stream or remove incremental_dependency"
            ]
        );
    }

    #[test]
    fn parent_streams_are_linted_where_declared() {
        let parent_cursor = "{ type: DatetimeBasedCursor, cursor_field: updated_at, datetime_format: '%Y-%m-%d', start_datetime: '2024-01-01', step: P1D, cursor_granularity: PT1H }";
        let router = format!(
            "      partition_router:\n        type: GroupingPartitionRouter\n        group_size: 2\n        underlying_partition_router:\n          type: SubstreamPartitionRouter\n          parent_stream_configs:\n            - type: ParentStreamConfig\n              parent_key: id\n              partition_field: parent_id\n              stream: {{ type: DeclarativeStream, name: parents, incremental_sync: {parent_cursor}, retriever: {{ type: SimpleRetriever, requester: {REQUESTER}, record_selector: {SELECTOR} }} }}\n"
        );
        let m = manifest(&[("s0", &router, "")], "");
        assert_eq!(
            paths(&lint(&m)),
            [
                "streams[0].retriever.partition_router.underlying_partition_router.parent_stream_configs[0].stream.incremental_sync.cursor_granularity"
            ]
        );
    }

    #[test]
    fn a_parent_equal_to_a_top_level_stream_is_linted_once() {
        let yaml = format!(
            "version: 6.0.0\ntype: DeclarativeSource\ncheck: {{ type: CheckStream, stream_names: [parents] }}\ndefinitions:\n  parents:\n    type: DeclarativeStream\n    name: parents\n    retriever: {{ type: SimpleRetriever, requester: {REQUESTER}, record_selector: {SELECTOR} }}\n    incremental_sync: {{ type: DatetimeBasedCursor, cursor_field: u, datetime_format: '%Y-%m-%d', start_datetime: '2024-01-01', step: P1D, cursor_granularity: PT1S }}\nstreams:\n  - $ref: '#/definitions/parents'\n  - type: DeclarativeStream\n    name: children\n    retriever:\n      type: SimpleRetriever\n      requester: {REQUESTER}\n      record_selector: {SELECTOR}\n      partition_router:\n        type: SubstreamPartitionRouter\n        parent_stream_configs:\n          - {{ type: ParentStreamConfig, parent_key: id, partition_field: pid, stream: {{ $ref: '#/definitions/parents' }} }}\n"
        );
        let m = sluice_manifest::load_str(&yaml).unwrap();
        assert_eq!(
            paths(&lint(&m)),
            ["streams[0].incremental_sync.cursor_granularity"]
        );
    }

    #[test]
    fn falsy_list_values_with_a_request_option() {
        let router = |values: &str| {
            format!(
                "      partition_router: {{ type: ListPartitionRouter, cursor_field: section, values: {values}, request_option: {{ type: RequestOption, inject_into: request_parameter, field_name: section }} }}\n"
            )
        };
        let without_option = "      partition_router: { type: ListPartitionRouter, cursor_field: section, values: [a, ''] }\n";
        let m = manifest(
            &[
                ("s0", &router("[a, '', b]"), ""),
                ("s1", &router("\"{{ ['a', 0, false, [], 'b'] }}\""), ""),
                ("s2", &router("\"{{ config['sections'] }}\""), ""),
                ("s3", without_option, ""),
                ("s4", &router("\"['a', '']\""), ""),
            ],
            "",
        );
        let warnings = lint(&m);
        assert_eq!(
            paths(&warnings),
            [
                "streams[0].retriever.partition_router.values[1]",
                "streams[1].retriever.partition_router.values",
                "streams[1].retriever.partition_router.values",
                "streams[1].retriever.partition_router.values",
            ]
        );
        assert_eq!(
            warnings[0].message,
            "the partition value \"\" is never sent: the reference injects a partition value through \
             request_option (request_parameter `section`) only when it is truthy, so this partition \
             is requested without it"
        );
        assert!(
            warnings[1]
                .message
                .starts_with("the partition value 0 is never sent")
        );
        assert!(
            warnings[2]
                .message
                .starts_with("the partition value false is never sent")
        );
        assert!(
            warnings[3]
                .message
                .starts_with("the partition value [] is never sent")
        );
    }

    #[test]
    fn non_iso_format_on_a_partitioned_stream() {
        let m = manifest(
            &[
                ("s0", LIST_ROUTER, &cursor("%d/%m/%Y", "P1D")),
                ("s1", "", &cursor("%d/%m/%Y", "P1D")),
                ("s2", LIST_ROUTER, &cursor("%Y-%m-%dT%H:%M:%S%z", "PT1S")),
                ("s3", LIST_ROUTER, &cursor("%ms", "PT0.001S")),
            ],
            "",
        );
        let warnings = lint(&m);
        assert_eq!(
            paths(&warnings),
            ["streams[0].incremental_sync.datetime_format"]
        );
        assert!(
            warnings[0]
                .message
                .starts_with("\"%d/%m/%Y\" does not sort chronologically")
        );
        assert!(sorts_chronologically("%Y-%m-%d"));
        assert!(sorts_chronologically("%Y%m%dT%H%M%S.%fZ"));
        assert!(sorts_chronologically("%Y-%j %H:%M"));
        assert!(sorts_chronologically("%Y-%m-%dT%H:%M:%S.%_msZ"));
        assert!(!sorts_chronologically("%Y-%d"));
        assert!(!sorts_chronologically("%y-%m-%d"));
        assert!(!sorts_chronologically("%Y-%-m-%-d"));
        assert!(!sorts_chronologically("%b %d %Y"));
        assert!(!sorts_chronologically("%Y-%m-%d %I:%M %p"));
        assert!(!sorts_chronologically("%z %Y"));
    }

    #[test]
    fn concurrency_level_one_with_a_partitioned_stream() {
        let level = |default: &str| {
            format!(
                "concurrency_level: {{ type: ConcurrencyLevel, default_concurrency: {default} }}\n"
            )
        };
        let partitioned = manifest(&[("s0", "", ""), ("s1", LIST_ROUTER, "")], &level("1"));
        let warnings = lint(&partitioned);
        assert_eq!(
            warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "concurrency_level.default_concurrency: a concurrency level of 1 runs partition \
              generation and reads on one worker, which the reference's own schema warns can \
              deadlock once a stream has more than 10,000 pending partitions, as the partitioned \
              stream `s1` (streams[1]) may; use at least 2"
            ]
        );
        let unpartitioned = manifest(&[("s0", "", "")], &level("1"));
        assert_eq!(lint(&unpartitioned), []);
        let two = manifest(&[("s1", LIST_ROUTER, "")], &level("2"));
        assert_eq!(lint(&two), []);
    }
}
