//! Targets over template text: templates, literal evaluation, datetime formats.

use serde_json::{Map, Value, json};
use sluice_interp::{
    Context, InterpolatedBoolean, InterpolatedMapping, InterpolatedNestedMapping, LiteralType,
    Template, pytime, strftime,
};
use sluice_slice::datetime::{DatetimeFormat, IsoDuration, parse_flexible};
use time::macros::datetime;

use crate::inputs::{split_first, text};

/// The `valid_types` manifest fields ask for: any type, each one alone, and request options'.
const VALID_TYPES: &[&[LiteralType]] = &[
    &[],
    &[LiteralType::String],
    &[LiteralType::Integer],
    &[LiteralType::Float],
    &[LiteralType::Boolean],
    &[LiteralType::List],
    &[LiteralType::String, LiteralType::List],
];

pub(crate) fn template(data: &[u8]) {
    let (source, context) = split_first(data);
    let Some(source) = text(source) else { return };
    let variables = match serde_json::from_slice::<Value>(context) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let ctx = context_of(&variables);

    if let Ok(template) = Template::new(source) {
        let _ = template.render(&ctx);
        let _ = template.render_string(&ctx);
        let _ = template.is_constant();
        let _ = template.keys_read("config");
        let _ = template.keys_read("record");
    }
    if let Ok(template) = Template::with_default(source, "{{ config.get('default') }}") {
        let _ = template.render(&ctx);
    }
    if let Ok(condition) = InterpolatedBoolean::new(source) {
        let _ = condition.eval(&ctx);
    }
    // Request options: the source as a key and as a value, flat and nested.
    let mut mapping = Map::new();
    mapping.insert(source.to_owned(), Value::String(source.to_owned()));
    if let Ok(mapping) = InterpolatedMapping::new(&mapping) {
        let _ = mapping.eval(&ctx, &[LiteralType::String, LiteralType::List]);
    }
    if let Ok(nested) = InterpolatedNestedMapping::new(&json!({"body": [source, {"k": source}]})) {
        let _ = nested.eval(&ctx);
    }
}

/// A context with each entry of `variables` as a variable, through the setters that add the
/// reference's aliases (`options`, `stream_partition`, `stream_interval`).
fn context_of(variables: &Map<String, Value>) -> Context<'_> {
    let mut ctx = Context::new();
    for (name, value) in variables {
        ctx = match name.as_str() {
            "parameters" => ctx.parameters(value),
            "stream_slice" => ctx.stream_slice(value),
            _ => ctx.with(name.as_str(), value),
        };
    }
    ctx
}

pub(crate) fn literal(data: &[u8]) {
    let Some(rendered) = text(data) else { return };
    // A template printing the text renders exactly it, then literal-evaluates it; a constant
    // template (no Jinja markup) is literal-evaluated without rendering.
    let value = Value::String(rendered.to_owned());
    let ctx = Context::new().with("text", &value);
    let printing = Template::new("{{ text }}").expect("a fixed template compiles");
    let constant = Template::new(rendered).ok().filter(Template::is_constant);
    for valid_types in VALID_TYPES {
        let _ = printing.render_as(&ctx, valid_types);
        if let Some(constant) = &constant {
            let _ = constant.render_as(&ctx, valid_types);
        }
    }
    if let Ok(value) = printing.render(&ctx) {
        // What the value prints as when sent in a query string or a header.
        let _ = sluice_interp::python_str(&value);
    }
}

pub(crate) fn datetime(data: &[u8]) {
    let (format, value) = split_first(data);
    let (Some(format), Some(value)) = (text(format), text(value)) else {
        return;
    };

    // A cursor's `datetime_format` / `cursor_datetime_formats` on a record's or state's value.
    let cursor_format = DatetimeFormat::new(format);
    if let Ok(parsed) = cursor_format.parse(value) {
        let formatted = cursor_format.format(parsed);
        let _ = cursor_format.parse(&formatted);
    }
    for scalar in [
        Value::String(value.to_owned()),
        value.parse::<i64>().map_or(Value::Null, Value::from),
        value.parse::<f64>().ok().map_or(Value::Null, Value::from),
    ] {
        let _ = cursor_format.parse_value(&scalar);
    }
    let fixed = datetime!(2024-02-29 23:59:58.123456 UTC);
    let _ = cursor_format.format(fixed);
    let _ = cursor_format.format(datetime!(0001-01-01 00:00:00 UTC));
    let _ = cursor_format.format(datetime!(9999-12-31 23:59:59.999999 UTC));

    // `strptime` / `strftime` as templates' datetimes use them.
    if let Ok(parsed) = strftime::parse(value, format) {
        let _ = strftime::format(parsed.datetime, parsed.offset, format);
        let _ = pytime::format(parsed.assume_utc_if_naive(), format);
    }
    let _ = pytime::strftime_aware(fixed, format);

    // Config values read without a format, and a cursor's step, lookback and granularity.
    if let Ok(parsed) = parse_flexible(value) {
        let _ = pytime::check_range(parsed);
    }
    if let Ok(duration) = IsoDuration::parse(value) {
        let _ = duration.is_zero();
        let _ = duration.add_to(fixed);
        let _ = duration.sub_from(fixed);
    }

    // The datetime macros of templates.
    let variables = json!({"value": value, "format": format});
    let ctx = Context::new().config(&variables);
    for source in [
        "{{ format_datetime(config.value, config.format) }}",
        "{{ str_to_datetime(config.value) }}",
        "{{ duration(config.value) }}",
        "{{ now_utc().strftime(config.format) }}",
        "{{ (str_to_datetime('2024-01-01') + duration(config.value)).isoformat() }}",
        "{{ format_datetime(config.value, '%Y-%m-%dT%H:%M:%SZ', config.format) }}",
    ] {
        let template = Template::new(source).expect("a fixed template compiles");
        let _ = template.render(&ctx);
    }
}
