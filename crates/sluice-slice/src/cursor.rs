//! Incremental cursors: `DatetimeBasedCursor` and `IncrementingCountCursor`, as the reference's
//! `ConcurrentCursor` runs them.
//!
//! A cursor's state is a list of completed intervals. The state it reports is a low-water mark:
//! the highest record cursor value inside the run of completed windows that starts at the sync
//! start, so a window that has not closed (or failed) holds the state back and nothing is lost.
//! A cursor is split in two: a spec built once from the manifest (shared by the cursors of every
//! partition) and the cursor itself, which holds one partition's intervals.

use crate::SliceError;
use crate::clamping::Clamping;
use crate::datetime::{DatetimeFormat, IsoDuration, parse_any};
use crate::router::request_option;
use serde_json::{Map, Value};
use sluice_interp::{Context, Template, python_str};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use sluice_paginate::{PageRequestOptions, RequestOption};
use std::sync::Arc;
use time::OffsetDateTime;

/// What one running slice has seen: the highest cursor value of its records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SliceProgress {
    most_recent_time: Option<OffsetDateTime>,
    most_recent_count: Option<i64>,
    /// A record came out of order (only feeds a log line, as in the reference).
    pub out_of_order: bool,
}

/// A template rendered with the config and the cursor's `$parameters`.
#[derive(Debug, Clone)]
struct ConfigTemplate {
    template: Template,
    parameters: Value,
}

impl ConfigTemplate {
    fn new(source: &str, parameters: &Value, path: &ManifestPath) -> Result<Self, SliceError> {
        Ok(Self {
            template: Template::new(source)
                .map_err(|e| SliceError::invalid(path, e.to_string()))?,
            parameters: parameters.clone(),
        })
    }

    /// The rendered value as the reference's `str()` of it.
    fn text(&self, config: &Value) -> Result<String, String> {
        let ctx = Context::new().config(config).parameters(&self.parameters);
        let value = self.template.render(&ctx).map_err(|e| e.to_string())?;
        Ok(match value {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => python_str(&other),
        })
    }
}

/// A `MinMaxDatetime` (or a plain template, which is one without bounds).
#[derive(Debug, Clone)]
struct MinMaxDatetime {
    datetime: ConfigTemplate,
    format: DatetimeFormat,
    min: Option<ConfigTemplate>,
    max: Option<ConfigTemplate>,
    path: ManifestPath,
}

impl MinMaxDatetime {
    fn from_model(
        model: &model::MinMaxDatetimeOrString,
        cursor_format: &str,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        match model {
            model::MinMaxDatetimeOrString::String(source) => Ok(Self {
                datetime: ConfigTemplate::new(source, parameters, path)?,
                format: DatetimeFormat::new(cursor_format),
                min: None,
                max: None,
                path: path.clone(),
            }),
            model::MinMaxDatetimeOrString::MinMaxDatetime(min_max) => {
                let own = min_max
                    .parameters
                    .as_ref()
                    .map(|p| Value::Object(p.clone()))
                    .unwrap_or_else(|| parameters.clone());
                let optional = |source: &Option<String>, key: &str| {
                    source
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .map(|s| ConfigTemplate::new(s, &own, &path.key(key)))
                        .transpose()
                };
                let format = match min_max.datetime_format.as_deref() {
                    Some(format) if !format.is_empty() => format,
                    _ => cursor_format,
                };
                Ok(Self {
                    datetime: ConfigTemplate::new(&min_max.datetime, &own, &path.key("datetime"))?,
                    format: DatetimeFormat::new(format),
                    min: optional(&min_max.min_datetime, "min_datetime")?,
                    max: optional(&min_max.max_datetime, "max_datetime")?,
                    path: path.clone(),
                })
            }
        }
    }

    fn evaluate(&self, config: &Value) -> Result<OffsetDateTime, SliceError> {
        let fail = |message: String| SliceError::invalid(&self.path, message);
        let parse = |text: &str| {
            self.format.parse(text).map_err(|e| {
                fail(format!(
                    "'{text}' is not a datetime in the format '{}': {e}",
                    self.format.pattern()
                ))
            })
        };
        let mut time = parse(&self.datetime.text(config).map_err(fail)?)?;
        if let Some(min) = &self.min {
            let text = min.text(config).map_err(fail)?;
            if !text.is_empty() {
                time = time.max(parse(&text)?);
            }
        }
        if let Some(max) = &self.max {
            let text = max.text(config).map_err(fail)?;
            if !text.is_empty() {
                time = time.min(parse(&text)?);
            }
        }
        Ok(time)
    }
}

/// A `DatetimeBasedCursor` as built from the manifest: everything but the state.
#[derive(Debug, Clone)]
pub struct DatetimeSpec {
    stream: String,
    config: Arc<Value>,
    /// The record field (and state key) the cursor reads.
    pub cursor_field: String,
    start_key: String,
    end_key: String,
    output: DatetimeFormat,
    /// `cursor_datetime_formats`, then `datetime_format`.
    inputs: Vec<DatetimeFormat>,
    start: MinMaxDatetime,
    end: Option<MinMaxDatetime>,
    step: Option<IsoDuration>,
    granularity: Option<IsoDuration>,
    lookback: Option<IsoDuration>,
    clamping: Clamping,
    compare_strictly: bool,
    start_option: Option<RequestOption>,
    end_option: Option<RequestOption>,
    /// Records outside the window are dropped by sluice (`is_client_side_incremental`).
    pub client_side: bool,
    /// The API returns records newest first; paging stops at the first old one (`is_data_feed`).
    pub data_feed: bool,
    /// Partitions share one cursor (`global_substream_cursor`).
    pub global_substream_cursor: bool,
    /// The configured catalog may name another cursor field
    /// (`allow_catalog_defined_cursor_field`).
    pub catalog_may_choose_cursor_field: bool,
}

impl DatetimeSpec {
    /// Builds the cursor of stream `stream` from its `incremental_sync` at `path`.
    pub fn from_model(
        model: &model::DatetimeBasedCursor,
        stream: &str,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let render = |source: &str, key: &str| -> Result<String, SliceError> {
            let at = path.key(key);
            ConfigTemplate::new(source, &parameters, &at)?
                .text(config)
                .map_err(|e| SliceError::invalid(&at, e))
        };
        let duration = |source: Option<&str>, key: &str, interpolated: bool| {
            let Some(source) = source.filter(|s| !s.is_empty()) else {
                return Ok(None);
            };
            let text = if interpolated {
                render(source, key)?
            } else {
                source.to_owned()
            };
            if text.is_empty() {
                return Ok(None);
            }
            IsoDuration::parse(&text)
                .map(Some)
                .map_err(|e| SliceError::invalid(&path.key(key), e))
        };
        let granularity = duration(
            model.cursor_granularity.as_deref(),
            "cursor_granularity",
            false,
        )?;
        let has_step = model.step.as_deref().is_some_and(|s| !s.is_empty());
        if has_step != granularity.is_some() {
            return Err(SliceError::invalid(
                path,
                format!(
                    "If step is defined, cursor_granularity should be as well and vice-versa. Right now, step is `{}` and cursor_granularity is `{}`",
                    model.step.as_deref().unwrap_or("None"),
                    model.cursor_granularity.as_deref().unwrap_or("None")
                ),
            ));
        }
        let step = duration(model.step.as_deref(), "step", true)?;
        let lookback = duration(model.lookback_window.as_deref(), "lookback_window", true)?;
        let format = model.datetime_format.as_str();
        let mut inputs: Vec<DatetimeFormat> = model
            .cursor_datetime_formats
            .iter()
            .flatten()
            .map(DatetimeFormat::new)
            .collect();
        inputs.push(DatetimeFormat::new(format));
        let clamping = match &model.clamping {
            Some(clamping) => {
                let target = render(&clamping.target, "clamping")?;
                Clamping::from_target(&target, clamping.target_details.as_ref())
                    .map_err(|e| SliceError::invalid(&path.key("clamping"), e))?
            }
            None => Clamping::None,
        };
        let option = |option: &Option<model::RequestOption>, key: &str| {
            request_option(option.as_ref(), config, &path.key(key))
        };
        let spec = Self {
            stream: stream.to_owned(),
            config: Arc::clone(config),
            cursor_field: render(&model.cursor_field, "cursor_field")?,
            start_key: render(
                model
                    .partition_field_start
                    .as_deref()
                    .unwrap_or("start_time"),
                "partition_field_start",
            )?,
            end_key: render(
                model.partition_field_end.as_deref().unwrap_or("end_time"),
                "partition_field_end",
            )?,
            output: DatetimeFormat::new(format),
            inputs,
            start: MinMaxDatetime::from_model(
                &model.start_datetime,
                format,
                &parameters,
                &path.key("start_datetime"),
            )?,
            end: model
                .end_datetime
                .as_ref()
                .map(|end| {
                    MinMaxDatetime::from_model(end, format, &parameters, &path.key("end_datetime"))
                })
                .transpose()?,
            step,
            granularity,
            lookback,
            clamping,
            compare_strictly: model.is_compare_strictly.unwrap_or(false),
            start_option: option(&model.start_time_option, "start_time_option")?,
            end_option: option(&model.end_time_option, "end_time_option")?,
            client_side: model.is_client_side_incremental.unwrap_or(false),
            data_feed: model.is_data_feed.unwrap_or(false),
            global_substream_cursor: model.global_substream_cursor.unwrap_or(false),
            catalog_may_choose_cursor_field: model
                .allow_catalog_defined_cursor_field
                .unwrap_or(false),
        };
        // The start is read when the stream is built in the reference: a bad one fails early.
        spec.start.evaluate(&spec.config)?;
        Ok(spec)
    }

    /// The cursor datetime a stream state holds, if it holds a readable one: the cursor field,
    /// the first interval of a concurrent-shaped state, or the global cursor of a per-partition
    /// state (what the reference checks against an API's retention period).
    pub fn state_datetime(&self, state: &Map<String, Value>) -> Option<OffsetDateTime> {
        if is_concurrent_state(state) {
            let first = state.get("slices")?.as_array()?.first()?;
            let value = first
                .get("most_recent_cursor_value")
                .filter(|v| sluice_interp::is_truthy(v))
                .or_else(|| first.get("end"))?;
            return parse_any(&self.inputs, value);
        }
        let value = match state.get("state") {
            Some(Value::Object(global))
                if state.contains_key("lookback_window")
                    || state.contains_key("use_global_cursor") =>
            {
                global.get(&self.cursor_field)?
            }
            _ => state.get(&self.cursor_field)?,
        };
        if !sluice_interp::is_truthy(value) {
            return None;
        }
        parse_any(&self.inputs, value)
    }

    /// Whether windows are cut by a `step` (or `cursor_granularity`): more than one per sync.
    pub fn has_step(&self) -> bool {
        self.step.is_some() || self.granularity.is_some()
    }

    /// A cursor starting from `state` (a stream state, `{}` for none).
    pub fn cursor(
        self: &Arc<Self>,
        state: &Map<String, Value>,
    ) -> Result<DatetimeCursor, SliceError> {
        let start = self.start.evaluate(&self.config)?;
        if is_concurrent_state(state) {
            return self.cursor_from_intervals(state, start);
        }
        let stored = match state.get(&self.cursor_field) {
            None => None,
            Some(value) => Some(self.parse_state_value(value)?),
        };
        let sync_start = match stored {
            Some(stored) if stored >= start => stored,
            _ => start,
        };
        Ok(DatetimeCursor {
            spec: Arc::clone(self),
            legacy: state.clone(),
            sync_start,
            start,
            intervals: vec![Interval {
                start,
                end: sync_start,
                most_recent: Some(sync_start),
            }],
        })
    }

    /// A cursor from a state in the reference's concurrent shape
    /// (`{"state_type": "date-range", "slices": [{"start", "end", "most_recent_cursor_value"}]}`):
    /// the stored intervals are kept, so only their gaps and the time after them are read.
    fn cursor_from_intervals(
        self: &Arc<Self>,
        state: &Map<String, Value>,
        start: OffsetDateTime,
    ) -> Result<DatetimeCursor, SliceError> {
        let bad = |message: String| SliceError::State {
            stream: self.stream.clone(),
            message,
        };
        let slices = match state.get("slices") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(slices)) => slices.as_slice(),
            Some(other) => return Err(bad(format!("has `slices` = {other}, which is not a list"))),
        };
        let mut intervals = Vec::with_capacity(slices.len());
        for (index, slice) in slices.iter().enumerate() {
            let field = |key: &str| -> Result<Option<OffsetDateTime>, SliceError> {
                match slice.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => self.parse_state_value(value).map(Some),
                }
            };
            let (Some(interval_start), Some(interval_end)) = (field("start")?, field("end")?)
            else {
                return Err(bad(format!(
                    "has slices[{index}] = {slice}, without a start and an end"
                )));
            };
            intervals.push(Interval {
                start: interval_start,
                end: interval_end,
                most_recent: field("most_recent_cursor_value")?,
            });
        }
        let sync_start = intervals
            .first()
            .map(|first| first.most_recent.unwrap_or(first.end))
            .unwrap_or(start);
        let legacy = match state.get("legacy") {
            Some(Value::Object(legacy)) => legacy.clone(),
            _ => Map::new(),
        };
        if intervals.is_empty() {
            intervals.push(Interval {
                start,
                end: sync_start,
                most_recent: Some(sync_start),
            });
        }
        Ok(DatetimeCursor {
            spec: Arc::clone(self),
            legacy,
            sync_start,
            start,
            intervals,
        })
    }

    fn parse_state_value(&self, value: &Value) -> Result<OffsetDateTime, SliceError> {
        parse_any(&self.inputs, value).ok_or_else(|| SliceError::State {
            stream: self.stream.clone(),
            message: format!(
                "has {} = {value}, which matches none of the cursor's datetime formats ({})",
                self.cursor_field,
                self.format_list()
            ),
        })
    }

    /// The formats cursor values are read with: `cursor_datetime_formats`, then `datetime_format`.
    pub(crate) fn input_formats(&self) -> &[DatetimeFormat] {
        &self.inputs
    }

    /// A datetime in the cursor's `datetime_format`.
    pub(crate) fn format(&self, value: OffsetDateTime) -> String {
        self.output.format(value)
    }

    fn format_list(&self) -> String {
        self.inputs
            .iter()
            .map(|f| format!("'{}'", f.pattern()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The upper bound of the sync: `end_datetime`, or now; floored when clamping.
    pub fn end(&self) -> Result<OffsetDateTime, SliceError> {
        let end = match &self.end {
            Some(end) => end.evaluate(&self.config)?,
            None => now(),
        };
        match self.clamping.floor_granularity(self.granularity) {
            None => Ok(end),
            Some(granularity) => {
                let floored = self.clamping.floor(end);
                granularity.sub_from(floored).map_err(SliceError::Runtime)
            }
        }
    }

    /// The window that is left of `window` once its records up to `reached` were read: from
    /// `reached` (in the cursor's format) to the window's end, as the reference narrows a slice
    /// on a pagination reset (`SPLIT_USING_CURSOR`).
    pub fn narrowed_window(
        &self,
        window: &Map<String, Value>,
        reached: OffsetDateTime,
    ) -> Map<String, Value> {
        let mut narrowed = Map::new();
        narrowed.insert(
            self.start_key.clone(),
            Value::String(self.output.format(reached)),
        );
        if let Some(end) = window.get(&self.end_key) {
            narrowed.insert(self.end_key.clone(), end.clone());
        }
        narrowed
    }

    /// `cursor_granularity`, when the manifest sets one.
    pub fn granularity(&self) -> Option<IsoDuration> {
        self.granularity
    }

    /// `window` cut in two ordered halves covering the same range, as the reference's
    /// `split_request_window` does on `SPLIT_REQUEST_WINDOW`: the span counted in
    /// `cursor_granularity` units (both ends included), the first half taking the floor of half
    /// of them, the second starting one unit after the first ends. `None` when the window cannot
    /// be split: no granularity, reversed or empty bounds, a span at or below
    /// `min_split_window`, or a single unit left. A missing or unreadable bound is an error (the
    /// slice was made wrong; the API is not to blame).
    pub fn split_request_window(
        &self,
        window: &Map<String, Value>,
        min_split_window: Option<IsoDuration>,
    ) -> Result<Option<[Map<String, Value>; 2]>, SliceError> {
        let Some(granularity) = self.granularity else {
            return Ok(None);
        };
        let bound = |key: &str| -> Result<OffsetDateTime, String> {
            let value = window
                .get(key)
                .ok_or_else(|| format!("KeyError: '{key}'"))?;
            parse_any(&self.inputs, value)
                .ok_or_else(|| format!("No format in {} matching {value}", self.format_list()))
        };
        let (start, end) = match (bound(&self.start_key), bound(&self.end_key)) {
            (Ok(start), Ok(end)) => (start, end),
            (Err(reason), _) | (_, Err(reason)) => {
                return Err(SliceError::Runtime(format!(
                    "Stream {} produced a request window with a missing or invalid '{}'/'{}' boundary and could not split it further: {reason}",
                    self.stream, self.start_key, self.end_key
                )));
            }
        };
        if start >= end {
            return Ok(None);
        }
        let span = (end - start).whole_microseconds();
        if let Some(min) = min_split_window {
            // Only fixed durations reach here (the engine refuses months and years).
            if min.months == 0 && span <= min.micros {
                return Ok(None);
            }
        }
        if granularity.months != 0 || granularity.micros <= 0 {
            return Err(SliceError::Runtime(format!(
                "Stream {} cannot split a request window by a cursor_granularity of {} months",
                self.stream, granularity.months
            )));
        }
        let unit = granularity.micros;
        let total_units = span.div_euclid(unit) + 1;
        if total_units <= 1 {
            return Ok(None);
        }
        let half_units = total_units / 2;
        let offset = |micros: i128| -> Option<OffsetDateTime> {
            let micros = i64::try_from(micros).ok()?;
            start.checked_add(time::Duration::microseconds(micros))
        };
        let (Some(first_end), Some(second_start)) =
            (offset(half_units * unit - unit), offset(half_units * unit))
        else {
            return Ok(None);
        };
        if !(start <= first_end && first_end < second_start && second_start <= end) {
            return Ok(None);
        }
        Ok(Some([
            self.window(start, first_end),
            self.window(second_start, end),
        ]))
    }

    /// The record's cursor value, when it has one in a known format.
    pub fn record_value(&self, record: &Value) -> Option<OffsetDateTime> {
        self.field_value(record.get(&self.cursor_field)?)
    }

    /// The time a record's cursor field holds, when it is in a known format.
    pub fn field_value(&self, field: &Value) -> Option<OffsetDateTime> {
        parse_any(&self.inputs, field)
    }

    /// [`DatetimeSpec::field_value`] of a field sent as a JSON string whose bytes as sent
    /// (between its quotes, escapes unread) are `sent`, when the first input format reads them
    /// from the bytes alone; `None` leaves the field to [`DatetimeSpec::field_value`].
    fn sent_string_value(&self, sent: &[u8]) -> Option<OffsetDateTime> {
        // A later format is tried only when the first fails, which the full path decides.
        self.inputs.first()?.parse_sent_string(sent)?.ok()
    }

    /// The start and end of a window.
    pub fn window_bounds(
        &self,
        cursor_slice: &Map<String, Value>,
    ) -> Result<(OffsetDateTime, OffsetDateTime), SliceError> {
        let bound = |key: &str| {
            let value = cursor_slice.get(key).ok_or_else(|| {
                SliceError::Runtime(format!(
                    "Partition is expected to have key `{key}` but could not be found"
                ))
            })?;
            parse_any(&self.inputs, value).ok_or_else(|| {
                SliceError::Runtime(format!(
                    "window boundary {value} matches none of the formats {}",
                    self.format_list()
                ))
            })
        };
        Ok((bound(&self.start_key)?, bound(&self.end_key)?))
    }

    /// What the cursor adds to a request of `slice`: the window's start and end.
    pub fn request_options(
        &self,
        cursor_slice: &Map<String, Value>,
        options: &mut PageRequestOptions,
    ) {
        if let (Some(option), Some(value)) = (&self.start_option, cursor_slice.get(&self.start_key))
        {
            option.inject(options, value);
        }
        if let (Some(option), Some(value)) = (&self.end_option, cursor_slice.get(&self.end_key)) {
            option.inject(options, value);
        }
    }

    fn merge_step(&self) -> IsoDuration {
        self.granularity.unwrap_or(IsoDuration {
            months: 0,
            micros: 1000,
        })
    }

    fn window(&self, start: OffsetDateTime, end: OffsetDateTime) -> Map<String, Value> {
        let mut window = Map::new();
        window.insert(
            self.start_key.clone(),
            Value::String(self.output.format(start)),
        );
        window.insert(self.end_key.clone(), Value::String(self.output.format(end)));
        window
    }

    /// `lower + step`, or past `end` when there is no step (the reference's `timedelta.max`).
    fn step_from(&self, lower: OffsetDateTime, end: OffsetDateTime) -> OffsetDateTime {
        match self.step {
            Some(step) => step.add_to(lower).unwrap_or(end),
            None => end,
        }
    }

    fn minus_granularity(&self, value: OffsetDateTime) -> Result<OffsetDateTime, SliceError> {
        match self.granularity {
            Some(granularity) => granularity.sub_from(value).map_err(SliceError::Runtime),
            None => Ok(value),
        }
    }

    /// The windows between `lower` and `upper`, as the reference cuts them.
    fn split(
        &self,
        lower: OffsetDateTime,
        upper: OffsetDateTime,
        upper_is_end: bool,
        start: OffsetDateTime,
        end: OffsetDateTime,
        out: &mut Vec<Map<String, Value>>,
    ) -> Result<(), SliceError> {
        let has_granularity = self.granularity.is_some();
        if lower > upper || (lower == upper && !has_granularity) || upper < start {
            return Ok(());
        }
        let lower = self.clamping.ceil(lower.max(start));
        if lower > upper || (lower == upper && (self.compare_strictly || !upper_is_end)) {
            return Ok(());
        }
        if self.step.is_none() || self.step_from(lower, end) >= upper {
            let clamped_upper = if upper_is_end && has_granularity {
                upper
            } else {
                self.clamping.ceil(upper)
            };
            let last = if has_granularity && !upper_is_end {
                self.minus_granularity(clamped_upper)?
            } else {
                clamped_upper
            };
            out.push(self.window(lower, last));
            return Ok(());
        }
        let mut current = lower;
        loop {
            let next = self.step_from(current, end).min(upper);
            let clamped_upper = if next != upper {
                self.clamping.ceil(next)
            } else {
                next
            };
            let reached = next >= upper || clamped_upper == upper;
            let clamped_lower = self.clamping.ceil(current);
            if clamped_lower >= clamped_upper {
                break;
            }
            let last = if has_granularity && (!upper_is_end || !reached) {
                self.minus_granularity(clamped_upper)?
            } else {
                clamped_upper
            };
            out.push(self.window(clamped_lower, last));
            current = clamped_upper;
            if reached {
                break;
            }
        }
        Ok(())
    }
}

/// Whether a state is in the reference's concurrent shape rather than `{cursor_field: value}`.
fn is_concurrent_state(state: &Map<String, Value>) -> bool {
    matches!(
        state.get("state_type").and_then(Value::as_str),
        Some("date-range" | "integer")
    )
}

fn now() -> OffsetDateTime {
    sluice_interp::pytime::now_utc()
}

/// A completed stretch of the cursor: every record between `start` and `end` was read.
#[derive(Debug, Clone, PartialEq)]
struct Interval {
    start: OffsetDateTime,
    end: OffsetDateTime,
    most_recent: Option<OffsetDateTime>,
}

/// Sorts and merges intervals that touch (one `step` apart at most).
fn merge(mut intervals: Vec<Interval>, step: IsoDuration) -> Vec<Interval> {
    intervals.sort_by_key(|interval| (interval.start, interval.end));
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for current in intervals {
        if let Some(last) = merged.last_mut() {
            let touches = step
                .add_to(last.end)
                .map(|e| e >= current.start)
                .unwrap_or(true);
            if touches {
                last.end = last.end.max(current.end);
                last.most_recent = match (last.most_recent, current.most_recent) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                continue;
            }
        }
        merged.push(current);
    }
    merged
}

/// A `DatetimeBasedCursor` with its state.
#[derive(Debug, Clone)]
pub struct DatetimeCursor {
    spec: Arc<DatetimeSpec>,
    /// The input state, whose other keys the reference carries through.
    legacy: Map<String, Value>,
    sync_start: OffsetDateTime,
    /// `start_datetime`, evaluated once when the cursor is made (as the reference does).
    start: OffsetDateTime,
    intervals: Vec<Interval>,
}

impl DatetimeCursor {
    /// The cursor's spec.
    pub fn spec(&self) -> &Arc<DatetimeSpec> {
        &self.spec
    }

    /// The windows to read, in order.
    pub fn windows(&mut self) -> Result<Vec<Map<String, Value>>, SliceError> {
        let spec = &*self.spec;
        let merged = merge(std::mem::take(&mut self.intervals), spec.merge_step());
        self.intervals = merged.clone();
        let start = self.start;
        let end = spec.end()?;
        let mut windows = Vec::new();
        let Some(first) = merged.first() else {
            return Ok(windows);
        };
        // A gap is read up to the next stored interval, but never past the sync's end: the
        // reference would cut windows up to an interval a state puts centuries ahead (millions
        // of them, which sluice, cutting them all at once, cannot even hold).
        if start < first.start {
            spec.split(start, first.start.min(end), false, start, end, &mut windows)?;
        }
        for pair in merged.windows(2) {
            let lower = match spec.granularity {
                Some(granularity) => granularity
                    .add_to(pair[0].end)
                    .map_err(SliceError::Runtime)?,
                None => pair[0].end,
            };
            spec.split(
                lower,
                pair[1].start.min(end),
                false,
                start,
                end,
                &mut windows,
            )?;
        }
        let last = merged.last().map(|i| i.end).unwrap_or(start);
        let lower = match spec.lookback {
            Some(lookback) => lookback.sub_from(last).map_err(SliceError::Runtime)?,
            None => last,
        };
        spec.split(lower, end, true, start, end, &mut windows)?;
        Ok(windows)
    }

    /// Notes a record's cursor value in its slice's progress.
    pub fn observe(&self, progress: &mut SliceProgress, record: &Value) {
        if let Some(field) = record.get(&self.spec.cursor_field) {
            self.observe_field(progress, field);
        }
    }

    /// Notes the value of a record's cursor field in its slice's progress (what
    /// [`observe`](Self::observe) reads of the record).
    pub fn observe_field(&self, progress: &mut SliceProgress, field: &Value) {
        if let Some(value) = self.spec.field_value(field) {
            Self::observe_time(progress, value);
        }
    }

    /// [`DatetimeCursor::observe_field`] for a field sent as a JSON string, from its bytes as
    /// sent (between its quotes, escapes unread), without making a value of them: a cursor
    /// reads the field of every record (callgrind, `cargo xtask bench` scenario (j)). Whether
    /// the bytes told the time; when not, the field is for
    /// [`observe_field`](Self::observe_field).
    pub fn observe_sent_string(&self, progress: &mut SliceProgress, sent: &[u8]) -> bool {
        let Some(value) = self.spec.sent_string_value(sent) else {
            return false;
        };
        Self::observe_time(progress, value);
        true
    }

    fn observe_time(progress: &mut SliceProgress, value: OffsetDateTime) {
        match progress.most_recent_time {
            Some(current) if current > value => progress.out_of_order = true,
            Some(current) if current == value => {}
            _ => progress.most_recent_time = Some(value),
        }
    }

    /// Records a window as read; its records' highest value may move the state.
    pub fn close(
        &mut self,
        window: &Map<String, Value>,
        progress: &SliceProgress,
    ) -> Result<(), SliceError> {
        let (start, end) = self.spec.window_bounds(window)?;
        self.intervals.push(Interval {
            start,
            end,
            most_recent: progress.most_recent_time,
        });
        self.intervals = merge(std::mem::take(&mut self.intervals), self.spec.merge_step());
        Ok(())
    }

    /// The state as if `window` were closed at the newest record read in it so far: what a
    /// mid-window checkpoint may promise when the window's records come in ascending order
    /// (the next sync re-reads from that value, inclusive). `None` before any record, or once a
    /// record came out of order.
    pub fn state_through(
        &self,
        window: &Map<String, Value>,
        progress: &SliceProgress,
    ) -> Option<Map<String, Value>> {
        let reached = progress
            .most_recent_time
            .filter(|_| !progress.out_of_order)?;
        let (start, _) = self.spec.window_bounds(window).ok()?;
        let mut partial = self.clone();
        partial.intervals.push(Interval {
            start,
            end: reached.max(start),
            most_recent: Some(reached),
        });
        Some(partial.state())
    }

    /// The low-water mark: the highest value read in the completed run from the sync start.
    pub fn low_water_mark(&self) -> OffsetDateTime {
        let merged = merge(self.intervals.clone(), self.spec.merge_step());
        merged
            .first()
            .map(|first| first.most_recent.unwrap_or(first.start))
            .unwrap_or(self.sync_start)
    }

    /// The state as the reference writes it: the input state with the cursor field set to the
    /// low-water mark.
    pub fn state(&self) -> Map<String, Value> {
        let mut state = self.legacy.clone();
        state.insert(
            self.spec.cursor_field.clone(),
            Value::String(self.spec.output.format(self.low_water_mark())),
        );
        state
    }

    /// Where the sync started (the state's value, or the start date).
    pub fn sync_start(&self) -> OffsetDateTime {
        self.sync_start
    }

    /// Whether a record is inside the range this sync reads (client-side filtering and data
    /// feeds). Records without a readable cursor value are kept, as in the reference.
    pub fn should_be_synced(&self, record: &Value) -> Result<bool, SliceError> {
        let Some(value) = self.spec.record_value(record) else {
            return Ok(true);
        };
        let lowest = match self.spec.lookback {
            None => self.sync_start,
            Some(lookback) => match lookback.sub_from(self.sync_start) {
                Ok(lower) => lower.max(self.sync_start.min(self.start)),
                Err(_) => self.sync_start,
            },
        };
        Ok(lowest <= value && value <= self.spec.end()?)
    }
}

/// An `IncrementingCountCursor` as built from the manifest.
#[derive(Debug, Clone)]
pub struct CountSpec {
    stream: String,
    /// The record field (and state key) the cursor reads.
    pub cursor_field: String,
    start_value: i64,
    start_option: Option<RequestOption>,
    /// The configured catalog may name another cursor field
    /// (`allow_catalog_defined_cursor_field`).
    pub catalog_may_choose_cursor_field: bool,
}

/// The window key an incrementing count cursor puts its start under.
const COUNT_START_KEY: &str = "start";

impl CountSpec {
    /// Builds the cursor of stream `stream` from its `incremental_sync` at `path`.
    pub fn from_model(
        model: &model::IncrementingCountCursor,
        stream: &str,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, SliceError> {
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let start_value = match &model.start_value {
            None => 0,
            Some(model::IntegerOrString::Integer(value)) => *value,
            Some(model::IntegerOrString::String(source)) => {
                let at = path.key("start_value");
                let text = ConfigTemplate::new(source, &parameters, &at)?
                    .text(config)
                    .map_err(|e| SliceError::invalid(&at, e))?;
                text.trim().parse().map_err(|_| {
                    SliceError::invalid(&at, format!("start_value '{text}' is not an integer"))
                })?
            }
        };
        let cursor_field =
            ConfigTemplate::new(&model.cursor_field, &parameters, &path.key("cursor_field"))?
                .text(config)
                .map_err(|e| SliceError::invalid(&path.key("cursor_field"), e))?;
        let start_option = request_option(
            model.start_value_option.as_ref(),
            config,
            &path.key("start_value_option"),
        )?;
        Ok(Self {
            stream: stream.to_owned(),
            cursor_field,
            start_value,
            start_option,
            catalog_may_choose_cursor_field: model
                .allow_catalog_defined_cursor_field
                .unwrap_or(false),
        })
    }

    /// A cursor starting from `state` (a stream state, `{}` for none).
    pub fn cursor(self: &Arc<Self>, state: &Map<String, Value>) -> Result<CountCursor, SliceError> {
        let stored = match state.get(&self.cursor_field) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| SliceError::State {
                stream: self.stream.clone(),
                message: format!(
                    "has {} = {value}, which is not an integer as an incrementing count cursor needs",
                    self.cursor_field
                ),
            })?),
        };
        // A stored 0 counts as no state in the reference.
        let sync_start = match stored {
            Some(stored) if stored != 0 && stored >= self.start_value => stored,
            _ => self.start_value,
        };
        Ok(CountCursor {
            spec: Arc::clone(self),
            legacy: state.clone(),
            sync_start,
            most_recent: None,
        })
    }

    /// What the cursor adds to a request: the count to start from.
    pub fn request_options(
        &self,
        cursor_slice: &Map<String, Value>,
        options: &mut PageRequestOptions,
    ) {
        if let (Some(option), Some(value)) = (&self.start_option, cursor_slice.get(COUNT_START_KEY))
        {
            option.inject(options, value);
        }
    }
}

/// An `IncrementingCountCursor` with its state: one window from the stored count on.
#[derive(Debug, Clone)]
pub struct CountCursor {
    spec: Arc<CountSpec>,
    legacy: Map<String, Value>,
    sync_start: i64,
    most_recent: Option<i64>,
}

impl CountCursor {
    /// The cursor's spec.
    pub fn spec(&self) -> &Arc<CountSpec> {
        &self.spec
    }

    /// The one window: from the stored count (or `start_value`) on.
    pub fn window(&self) -> Map<String, Value> {
        let mut window = Map::new();
        window.insert(COUNT_START_KEY.to_owned(), Value::from(self.sync_start));
        window
    }

    /// Notes a record's count in its slice's progress.
    pub fn observe(&self, progress: &mut SliceProgress, record: &Value) {
        if let Some(field) = record.get(&self.spec.cursor_field) {
            self.observe_field(progress, field);
        }
    }

    /// Notes the value of a record's cursor field in its slice's progress (what
    /// [`observe`](Self::observe) reads of the record).
    pub fn observe_field(&self, progress: &mut SliceProgress, field: &Value) {
        let Some(value) = field.as_i64() else {
            return;
        };
        match progress.most_recent_count {
            Some(current) if current > value => progress.out_of_order = true,
            Some(current) if current == value => {}
            _ => progress.most_recent_count = Some(value),
        }
    }

    /// Records the window as read.
    pub fn close(&mut self, progress: &SliceProgress) {
        if let Some(value) = progress.most_recent_count {
            self.most_recent = Some(self.most_recent.map_or(value, |m| m.max(value)));
        }
    }

    /// The state as if the window were closed now: what a mid-window checkpoint may promise
    /// while records come in ascending order. `None` before any record, or once one came out of
    /// order.
    pub fn state_through(&self, progress: &SliceProgress) -> Option<Map<String, Value>> {
        progress
            .most_recent_count
            .filter(|_| !progress.out_of_order)?;
        let mut partial = self.clone();
        partial.close(progress);
        Some(partial.state())
    }

    /// The state as the reference writes it.
    pub fn state(&self) -> Map<String, Value> {
        let mut state = self.legacy.clone();
        let value = self
            .most_recent
            .map_or(self.sync_start, |m| m.max(self.sync_start));
        state.insert(self.spec.cursor_field.clone(), Value::from(value));
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn spec(extra: Value) -> Arc<DatetimeSpec> {
        let mut node = json!({
            "type": "DatetimeBasedCursor",
            "cursor_field": "updated_at",
            "datetime_format": "%Y-%m-%dT%H:%M:%SZ",
            "start_datetime": "2024-01-01T00:00:00Z",
            "end_datetime": "2024-01-03T12:00:00Z"
        });
        if let (Value::Object(node), Value::Object(extra)) = (&mut node, extra) {
            node.extend(extra);
        }
        let model = model::DatetimeBasedCursor::from_node(&node, &ManifestPath::root()).unwrap();
        let config = Arc::new(json!({}));
        Arc::new(DatetimeSpec::from_model(&model, "s", &config, &ManifestPath::root()).unwrap())
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn progress(cursor: &DatetimeCursor, value: &str) -> SliceProgress {
        let mut progress = SliceProgress::default();
        cursor.observe(&mut progress, &json!({"updated_at": value}));
        progress
    }

    fn split(spec: &DatetimeSpec, start: &str, end: &str, min: Option<&str>) -> Option<[Value; 2]> {
        let window = object(json!({"start_time": start, "end_time": end}));
        let min = min.map(|m| IsoDuration::parse(m).unwrap());
        spec.split_request_window(&window, min)
            .unwrap()
            .map(|halves| halves.map(Value::Object))
    }

    #[test]
    fn a_string_observed_from_its_bytes_as_sent_counts_as_its_parsed_value_does() {
        // A second format that reads some of the same texts otherwise: the bytes path reads
        // the first alone, and leaves the rest to the parsed value's path. And a literal
        // backslash, which JSON text escapes.
        let cases = [
            (
                json!(["%Y-%m-%dT%H:%M:%SZ", "%Y-%d-%mT%H:%M:%SZ", "%Y-%m-%d"]),
                "{Y}-{m}-{d}T{H}:{M}:{S}Z",
            ),
            (json!(["%Y\\/%m-%dT%H"]), "{Y}\\/{m}-{d}T{H}"),
            (json!(["%Y\\/%m-%dT%H"]), "{Y}\\\\\\/{m}-{d}T{H}"),
        ];
        let pieces = [
            "2024-",
            "01",
            "-02",
            "T03:04:05",
            "Z",
            "z",
            "t",
            "13",
            "\\u0032",
            "\\/",
            "\\\\",
            "2",
            "60",
            "29",
            "-",
            ":",
            "\u{e9}",
        ];
        let mut state: u64 = 7;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % bound as u64) as usize
        };
        let mut from_bytes = 0;
        for (formats, shape) in cases {
            let spec = spec(json!({ "cursor_datetime_formats": formats }));
            let cursor = spec.cursor(&Map::new()).unwrap();
            let mut earlier = SliceProgress::default();
            for round in 0..10_000 {
                // A time (some of whose fields are out of range) with pieces changed, or
                // pieces drawn at random.
                let mut sent = match round % 2 {
                    0 => shape
                        .replace("{Y}", &format!("{:04}", 2020 + next(8)))
                        .replace("{m}", &format!("{:02}", next(14)))
                        .replace("{d}", &format!("{:02}", next(33)))
                        .replace("{H}", &format!("{:02}", next(25)))
                        .replace("{M}", &format!("{:02}", next(61)))
                        .replace("{S}", &format!("{:02}", next(61))),
                    _ => String::new(),
                };
                for _ in 0..next(4) {
                    let piece = pieces[next(pieces.len())];
                    let tail = sent.len().checked_sub(piece.len());
                    match tail.filter(|&at| next(2) == 0 && sent.is_char_boundary(at)) {
                        Some(at) => sent.replace_range(at.., piece),
                        None => sent.insert_str(0, piece),
                    }
                }
                let Ok(parsed) = serde_json::from_str::<Value>(&format!("\"{sent}\"")) else {
                    continue;
                };
                // From no record yet, and after the records so far.
                for before in [SliceProgress::default(), earlier.clone()] {
                    let mut expected = before.clone();
                    cursor.observe_field(&mut expected, &parsed);
                    let mut observed = before;
                    if cursor.observe_sent_string(&mut observed, sent.as_bytes()) {
                        from_bytes += 1;
                        assert_eq!(observed, expected, "{sent}");
                    }
                }
                cursor.observe_field(&mut earlier, &parsed);
            }
        }
        assert!(
            from_bytes > 1_000,
            "only {from_bytes} strings were read from their bytes"
        );
    }

    #[test]
    fn a_window_splits_into_two_ordered_halves_one_granularity_apart() {
        let spec = spec(json!({"step": "P10D", "cursor_granularity": "PT1S"}));
        assert_eq!(
            split(&spec, "2024-01-01T00:00:00Z", "2024-01-10T23:59:59Z", None),
            Some([
                json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-05T23:59:59Z"}),
                json!({"start_time": "2024-01-06T00:00:00Z", "end_time": "2024-01-10T23:59:59Z"}),
            ])
        );
        // An odd number of units: the first half takes the floor of half of them.
        let days = spec_with_days();
        assert_eq!(
            split(&days, "2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", None),
            Some([
                json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}),
                json!({"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-03T00:00:00Z"}),
            ])
        );
    }

    #[test]
    fn gaps_before_stored_intervals_far_ahead_stop_at_the_end() {
        // Found by fuzzing: windows were cut up to an interval starting in the year 6827, days
        // past the end; here a century ahead.
        let spec = spec(json!({"step": "P1D", "cursor_granularity": "PT1S"}));
        let state = object(json!({
            "state_type": "date-range",
            "slices": [
                {"start": "2224-03-01T00:00:00Z", "end": "2024-01-01T23:59:59Z"},
                {"start": "2124-03-03T00:00:00Z", "end": "2124-03-03T12:00:00Z"}
            ]
        }));
        let mut cursor = spec.cursor(&state).unwrap();
        let windows = cursor.windows().unwrap();
        // Up to the end (2024-01-03T12:00:00Z) only.
        assert!(windows.len() < 10, "{} windows", windows.len());
        let last = windows.iter().filter_map(|w| w["end_time"].as_str()).max();
        assert_eq!(last, Some("2024-01-03T12:00:00Z"));
    }

    fn spec_with_days() -> Arc<DatetimeSpec> {
        spec(json!({"step": "P10D", "cursor_granularity": "P1D"}))
    }

    #[test]
    fn a_window_of_one_unit_or_at_the_minimum_split_window_is_not_split() {
        let days = spec_with_days();
        assert_eq!(
            split(&days, "2024-01-01T00:00:00Z", "2024-01-01T23:59:59Z", None),
            None
        );
        assert_eq!(
            split(&days, "2024-01-03T00:00:00Z", "2024-01-01T00:00:00Z", None),
            None
        );
        let seconds = spec(json!({"step": "P10D", "cursor_granularity": "PT1S"}));
        assert_eq!(
            split(
                &seconds,
                "2024-01-01T00:00:00Z",
                "2024-01-02T00:00:00Z",
                Some("P1D")
            ),
            None
        );
        assert!(
            split(
                &seconds,
                "2024-01-01T00:00:00Z",
                "2024-01-02T00:00:01Z",
                Some("P1D")
            )
            .is_some()
        );
        // Without cursor_granularity there is no smallest unit to stop at.
        let none = spec(json!({}));
        assert_eq!(
            split(&none, "2024-01-01T00:00:00Z", "2024-01-10T00:00:00Z", None),
            None
        );
    }

    #[test]
    fn a_window_without_its_bounds_cannot_be_split() {
        let spec = spec_with_days();
        let window = object(json!({"start_time": "2024-01-01T00:00:00Z"}));
        assert!(spec.split_request_window(&window, None).is_err());
    }

    #[test]
    fn windows_step_by_day_less_the_granularity_and_the_last_ends_at_the_end() {
        let mut cursor = spec(json!({"step": "P1D", "cursor_granularity": "PT1S"}))
            .cursor(&Map::new())
            .unwrap();
        let windows: Vec<Value> = cursor
            .windows()
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect();
        assert_eq!(
            windows,
            [
                json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T23:59:59Z"}),
                json!({"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-02T23:59:59Z"}),
                json!({"start_time": "2024-01-03T00:00:00Z", "end_time": "2024-01-03T12:00:00Z"}),
            ]
        );
    }

    #[test]
    fn the_state_moves_only_over_windows_closed_from_the_start() {
        let mut cursor = spec(json!({"step": "P1D", "cursor_granularity": "PT1S"}))
            .cursor(&Map::new())
            .unwrap();
        let windows = cursor.windows().unwrap();
        // The second day closes first: the first is still open, so the state stays at the start.
        let second = progress(&cursor, "2024-01-02T10:00:00Z");
        cursor.close(&windows[1], &second).unwrap();
        assert_eq!(cursor.state()["updated_at"], json!("2024-01-01T00:00:00Z"));
        let first = progress(&cursor, "2024-01-01T08:00:00Z");
        cursor.close(&windows[0], &first).unwrap();
        assert_eq!(cursor.state()["updated_at"], json!("2024-01-02T10:00:00Z"));
    }

    #[test]
    fn a_stored_state_starts_the_window_at_its_value_less_the_lookback_and_keeps_other_keys() {
        let state = object(json!({"updated_at": "2024-01-02T06:00:00Z", "other": 1}));
        let mut cursor = spec(json!({"lookback_window": "PT6H"}))
            .cursor(&state)
            .unwrap();
        let windows: Vec<Value> = cursor
            .windows()
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect();
        assert_eq!(
            windows,
            [json!({"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-03T12:00:00Z"})]
        );
        assert_eq!(
            Value::Object(cursor.state()),
            json!({"updated_at": "2024-01-02T06:00:00Z", "other": 1})
        );
    }

    #[test]
    fn a_state_in_an_unknown_format_names_the_stream_and_the_formats() {
        let state = object(json!({"updated_at": "yesterday"}));
        let error = spec(json!({})).cursor(&state).unwrap_err().to_string();
        assert!(error.contains("stream 's'"), "{error}");
        assert!(error.contains("%Y-%m-%dT%H:%M:%SZ"), "{error}");
    }
}
