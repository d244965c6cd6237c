//! The reference's macros (global functions) and filters.

use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Rest, from_args};
use minijinja::{Environment, Error, ErrorKind, Expression, State, Value, context};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use time::{OffsetDateTime, UtcOffset};

use crate::datetime::{PyDate, PyDateTime, invalid, isoparse, parse_duration, py_add, py_sub};
use crate::pyrepr::{float_repr, write_str};
use crate::pytime::{self, DatetimeParser, PyScalar};
use crate::strftime;

const DEFAULT_DAY_DELTA_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.%f%z";

pub fn register(env: &mut Environment<'static>) {
    env.add_function("now_utc", now_utc);
    env.add_function("today_utc", today_utc);
    env.add_function("today_with_timezone", today_with_timezone);
    env.add_function("timestamp", timestamp);
    env.add_function("str_to_datetime", str_to_datetime);
    env.add_function("max", |args: Rest<Value>| extreme(&args, true));
    env.add_function("min", |args: Rest<Value>| extreme(&args, false));
    env.add_function("day_delta", day_delta);
    env.add_function("duration", duration);
    env.add_function("format_datetime", format_datetime);
    env.add_function("sanitize_url", sanitize_url);
    env.add_function("camel_case_to_snake_case", camel_case_to_snake_case);
    env.add_function("generate_uuid", || uuid::Uuid::new_v4().to_string());
    env.add_function(crate::rewrite::ADD_FUNCTION, add);
    env.add_function(crate::rewrite::SUB_FUNCTION, sub);
    env.add_function(crate::rewrite::MUTABLE_LIST_FUNCTION, || {
        Value::from_object(MutableList::default())
    });

    env.add_filter("hash", hash);
    env.add_filter("base64encode", base64encode);
    env.add_filter("base64decode", base64decode);
    env.add_filter("base64binascii_decode", base64binascii_decode);
    env.add_filter("string", string);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("hmac", hmac);
    env.add_filter("camel_case_to_snake_case", camel_case_to_snake_case);
}

fn now_utc() -> Value {
    Value::from_object(PyDateTime::now_utc())
}

fn today_utc() -> Value {
    Value::from_object(PyDate(OffsetDateTime::now_utc().date()))
}

fn today_with_timezone(name: &str) -> Result<Value, Error> {
    let zone = jiff::tz::TimeZone::get(name)
        .map_err(|e| invalid(format!("unknown time zone {name:?}: {e}")))?;
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    let month = time::Month::try_from(today.month() as u8).map_err(|e| invalid(e.to_string()))?;
    let date = time::Date::from_calendar_date(i32::from(today.year()), month, today.day() as u8)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Value::from_object(PyDate(date)))
}

fn parse_iso(text: &str) -> Result<OffsetDateTime, Error> {
    isoparse(text)
        .map(|dt| dt.to_offset(UtcOffset::UTC))
        .map_err(invalid)
}

fn str_to_datetime(text: &str) -> Result<Value, Error> {
    Ok(Value::from_object(PyDateTime(parse_iso(text)?)))
}

/// Numbers are truncated to an int; strings are parsed as ISO 8601 and give a float.
fn timestamp(value: Value) -> Result<Value, Error> {
    if let Some(dt) = value.downcast_object_ref::<PyDateTime>() {
        return Ok(Value::from(dt.timestamp()));
    }
    if value.as_str().is_some() {
        let dt = PyDateTime(parse_iso(value.as_str().unwrap_or_default())?);
        return Ok(Value::from(dt.timestamp()));
    }
    if let Some(i) = value.as_i64() {
        return Ok(Value::from(i));
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_finite() => Ok(Value::from(f.trunc() as i64)),
        _ => Err(invalid(format!("timestamp() cannot convert {value}"))),
    }
}

/// Python's `max`/`min`: one argument is iterated, several are compared; ties keep the first.
fn extreme(args: &[Value], want_max: bool) -> Result<Value, Error> {
    let items: Vec<Value> = match args {
        [] => return Err(invalid("expected at least 1 argument, got 0")),
        [single] => single.try_iter()?.collect(),
        many => many.to_vec(),
    };
    let mut best: Option<Value> = None;
    for item in items {
        best = Some(match best {
            None => item,
            Some(current) => {
                let better = if want_max {
                    item > current
                } else {
                    item < current
                };
                if better { item } else { current }
            }
        });
    }
    best.ok_or_else(|| invalid("arg is an empty sequence"))
}

fn day_delta(num_days: i64, format: Option<&str>, kwargs: Kwargs) -> Result<String, Error> {
    let format = kwargs
        .get::<Option<&str>>("format")?
        .or(format)
        .unwrap_or(DEFAULT_DAY_DELTA_FORMAT);
    kwargs.assert_all_used()?;
    let now = PyDateTime::now_utc().0;
    let shifted = now
        .checked_add(time::Duration::days(num_days))
        .ok_or_else(|| invalid("day_delta out of range"))?;
    Ok(PyDateTime(shifted).strftime(format))
}

fn duration(text: &str) -> Result<Value, Error> {
    parse_duration(text)
        .map(Value::from_object)
        .map_err(invalid)
}

/// The reference's `format_datetime`: datetimes use plain `strftime`, strings and ints go through
/// its datetime parser, which also knows `%s`, `%ms`, `%epoch_microseconds`, `%s_as_float`, `%_ms`.
fn format_datetime(
    value: Value,
    format: &str,
    input_format: Option<&str>,
) -> Result<String, Error> {
    if let Some(dt) = value.downcast_object_ref::<PyDateTime>() {
        return Ok(dt.strftime(format));
    }
    let dt = if let Some(text) = value.as_str() {
        match input_format {
            Some(pattern) => strftime::parse(text, pattern)
                .map_err(invalid)?
                .assume_utc_if_naive(),
            None => parse_iso(text)?,
        }
    } else if value.kind() == minijinja::value::ValueKind::Number && value.as_i64().is_some() {
        let number = value.as_i64().unwrap_or_default();
        DatetimeParser::new(input_format.unwrap_or("%s"))
            .parse(PyScalar::Int(i128::from(number)))
            .map_err(invalid)?
    } else {
        return Err(invalid(format!(
            "format_datetime() expects a datetime, a string or an integer, got {value}"
        )));
    };
    Ok(format_with_epochs(PyDateTime(dt), format))
}

/// The reference's `DatetimeParser.format`.
pub fn format_with_epochs(dt: PyDateTime, format: &str) -> String {
    pytime::format(dt.0, format)
}

/// `urllib.parse.quote_plus`.
fn sanitize_url(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn camel_case_to_snake_case(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for (index, c) in value.chars().enumerate() {
        if index > 0 && c.is_ascii_uppercase() {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A list that `append`/`extend` can grow, for `{% set xs = [] %}` followed by `xs.append(x)`.
#[derive(Debug, Default)]
struct MutableList(Mutex<Vec<Value>>);

impl MutableList {
    fn items(&self) -> Vec<Value> {
        self.0.lock().map(|items| items.clone()).unwrap_or_default()
    }
}

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        let index = key.as_i64()?;
        let index = if index < 0 {
            items.len() as i64 + index
        } else {
            index
        };
        items.get(usize::try_from(index).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut items = self.0.lock().map_err(|_| invalid("list lock poisoned"))?;
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                items.push(item);
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                items.extend(more.try_iter()?);
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// Python-ish arithmetic for rewritten `+`: datetimes first, MiniJinja's own `+` otherwise.
fn add(lhs: Value, rhs: Value) -> Result<Value, Error> {
    if let Some(result) = py_add(&lhs, &rhs) {
        return result;
    }
    static PLAIN: LazyLock<Option<Expression<'static, 'static>>> =
        LazyLock::new(|| PLAIN_ENV.compile_expression("lhs + rhs").ok());
    eval_plain(&PLAIN, lhs, rhs)
}

fn sub(lhs: Value, rhs: Value) -> Result<Value, Error> {
    if let Some(result) = py_sub(&lhs, &rhs) {
        return result;
    }
    static PLAIN: LazyLock<Option<Expression<'static, 'static>>> =
        LazyLock::new(|| PLAIN_ENV.compile_expression("lhs - rhs").ok());
    eval_plain(&PLAIN, lhs, rhs)
}

static PLAIN_ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::empty);

fn eval_plain(
    expression: &Option<Expression<'static, 'static>>,
    lhs: Value,
    rhs: Value,
) -> Result<Value, Error> {
    expression
        .as_ref()
        .ok_or_else(|| invalid("arithmetic unavailable"))?
        .eval(context! { lhs, rhs })
}

/// Python's `str(value)` for filters that stringify their input.
fn python_str(value: &Value) -> String {
    let mut out = String::new();
    write_str(value, &mut out);
    out
}

fn hash(
    value: Value,
    hash_type: Option<String>,
    salt: Option<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let hash_type = kwargs.get::<Option<String>>("hash_type")?.or(hash_type);
    let salt = kwargs.get::<Option<Value>>("salt")?.or(salt);
    kwargs.assert_all_used()?;
    let mut data = python_str(&value).into_bytes();
    if let Some(salt) = salt.filter(Value::is_true) {
        data.extend_from_slice(python_str(&salt).as_bytes());
    }
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(match hash_type.as_deref().unwrap_or("md5") {
        "md5" => hex(&Md5::digest(&data)),
        "sha1" => hex(&Sha1::digest(&data)),
        "sha224" => hex(&Sha224::digest(&data)),
        "sha256" => hex(&Sha256::digest(&data)),
        "sha384" => hex(&Sha384::digest(&data)),
        "sha512" => hex(&Sha512::digest(&data)),
        other => return Err(invalid(format!("No hashing function named {other}"))),
    })
}

fn base64encode(value: &str) -> String {
    STANDARD.encode(value.as_bytes())
}

fn base64decode(value: &str) -> Result<String, Error> {
    // Python's b64decode drops characters outside the alphabet before decoding.
    let cleaned: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let bytes = STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| invalid(format!("base64decode: {e}")))?;
    String::from_utf8(bytes).map_err(|e| invalid(format!("base64decode: {e}")))
}

/// Despite its name the reference's filter *encodes* ASCII text to base64.
fn base64binascii_decode(value: &str) -> Result<String, Error> {
    if !value.is_ascii() {
        return Err(invalid("base64binascii_decode: value is not ASCII"));
    }
    Ok(STANDARD.encode(value.as_bytes()))
}

/// Strings pass through; anything else becomes `"""<json>"""` so literal evaluation keeps it a string.
fn string(value: Value) -> Result<String, Error> {
    if let Some(text) = value.as_str() {
        return Ok(text.to_string());
    }
    let mut out = String::from("\"\"\"");
    python_json_dumps(&value, &mut out)?;
    out.push_str("\"\"\"");
    Ok(out)
}

/// `json.dumps` with its defaults (`ensure_ascii`, `", "` and `": "` separators).
fn python_json_dumps(value: &Value, out: &mut String) -> Result<(), Error> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if value.as_i64().is_some() || i128::try_from(value.clone()).is_ok() {
                out.push_str(&value.to_string());
            } else {
                let f = f64::try_from(value.clone())?;
                out.push_str(&match float_repr(f).as_str() {
                    "nan" => "NaN".to_string(),
                    "inf" => "Infinity".to_string(),
                    "-inf" => "-Infinity".to_string(),
                    other => other.to_string(),
                });
            }
        }
        ValueKind::String => json_string(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (index, item) in value.try_iter()?.enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                python_json_dumps(&item, out)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (index, key) in value.try_iter()?.enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                match key.as_str() {
                    Some(text) => json_string(text, out),
                    None => json_string(&python_str(&key), out),
                }
                out.push_str(": ");
                python_json_dumps(&value.get_item(&key)?, out)?;
            }
            out.push('}');
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("Object of type {} is not JSON serializable", value.kind()),
            ));
        }
    }
    Ok(())
}

pub(crate) fn json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(pattern).map_err(|e| invalid(format!("invalid regex {pattern:?}: {e}")))
}

/// The first capture group of the first match, `""` without a match or without groups.
fn regex_search(value: &str, pattern: &str) -> Result<Value, Error> {
    let regex = compile_regex(pattern)?;
    let Some(captures) = regex.captures(value) else {
        return Ok(Value::from(""));
    };
    if regex.captures_len() < 2 {
        return Ok(Value::from(""));
    }
    // A group that did not take part in the match is Python's None.
    Ok(captures
        .get(1)
        .map_or(Value::from(()), |m| Value::from(m.as_str())))
}

fn regex_replace(value: &str, pattern: &str, replacement: &str) -> Result<String, Error> {
    let regex = compile_regex(pattern)?;
    let replacement = python_replacement(replacement)?;
    Ok(regex.replace_all(value, replacement.as_str()).into_owned())
}

/// Translates Python `re.sub` replacement syntax (`\1`, `\g<name>`, `\n`) to the regex crate's.
fn python_replacement(replacement: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut group = d.to_string();
                    if let Some(&next) = chars.peek() {
                        if next.is_ascii_digit() {
                            group.push(next);
                            chars.next();
                        }
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                Some('g') => {
                    if chars.next() != Some('<') {
                        return Err(invalid("bad \\g group reference in replacement"));
                    }
                    let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return Err(invalid("bad escape (end of pattern) in replacement")),
            },
            other => out.push(other),
        }
    }
    Ok(out)
}

fn hmac(
    value: Value,
    key: Option<Value>,
    hash_type: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let key = kwargs
        .get::<Option<Value>>("key")?
        .or(key)
        .ok_or_else(|| invalid("hmac() missing required argument: 'key'"))?;
    let hash_type = kwargs.get::<Option<String>>("hash_type")?.or(hash_type);
    kwargs.assert_all_used()?;
    let hash_type = hash_type.as_deref().unwrap_or("sha256");
    if hash_type != "sha256" {
        return Err(invalid(format!(
            "Hash type '{hash_type}' is not allowed. Allowed types: sha256"
        )));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(python_str(&key).as_bytes())
        .map_err(|e| invalid(e.to_string()))?;
    mac.update(python_str(&value).as_bytes());
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Python-style methods MiniJinja and pycompat lack, then pycompat's.
pub fn unknown_method(
    state: &mut State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let Some(text) = value.as_str() {
        match method {
            "encode" => {
                // Only used before hashing/base64 in manifests; bytes of UTF-8 text.
                let _: (Option<&str>,) = from_args(args)?;
                return Ok(Value::from_bytes(text.as_bytes().to_vec()));
            }
            "zfill" => {
                let (width,): (usize,) = from_args(args)?;
                let (sign, digits) = match text.strip_prefix(['-', '+']) {
                    Some(rest) => (&text[..1], rest),
                    None => ("", text),
                };
                let pad = width.saturating_sub(text.chars().count());
                return Ok(Value::from(format!("{sign}{}{digits}", "0".repeat(pad))));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::PyDuration;

    #[test]
    fn python_replacement_syntax() {
        assert_eq!(
            python_replacement(r"\1-\g<name>$").unwrap(),
            "${1}-${name}$$"
        );
    }

    #[test]
    fn quote_plus() {
        assert_eq!(
            sanitize_url("https://example.com/path?query=value&a=b c"),
            "https%3A%2F%2Fexample.com%2Fpath%3Fquery%3Dvalue%26a%3Db+c"
        );
    }

    #[test]
    fn epoch_formats() {
        let dt = PyDateTime(parse_iso("2020-03-01T01:02:03.5+02:00").unwrap());
        assert_eq!(format_with_epochs(dt, "%s"), "1583017323");
        assert_eq!(format_with_epochs(dt, "%ms"), "1583017323500");
        assert_eq!(format_with_epochs(dt, "%s_as_float"), "1583017323.5");
        assert_eq!(
            format_with_epochs(dt, "%epoch_microseconds"),
            "1583017323500000"
        );
        assert_eq!(
            format_with_epochs(dt, "%Y-%m-%dT%H:%M:%S.%_msZ"),
            "2020-02-29T23:02:03.500Z"
        );
    }

    #[test]
    fn duration_type_is_exported_for_arithmetic() {
        let d = PyDuration::from_micros(1_000_000);
        assert_eq!(d.to_string(), "0:00:01");
    }
}
