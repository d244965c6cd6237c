//! Python's `str()`/`repr()` of template values.
//!
//! Jinja2 writes `str(value)` for `{{ value }}`: `None`, `True`, `['a', 'b']`, `{'k': 1}`, `1e+20`.
//! That text is what the reference then literal-evaluates (or sends as a header), so the output
//! must be Python's, not MiniJinja's JSON-like default.

use std::fmt::Write;

use minijinja::value::{Value, ValueKind};

use crate::datetime::{PyDate, PyDateTime, PyDuration};

/// Python's `repr(float)`: shortest round-trip digits, exponent outside `1e-4 <= |x| < 1e16`.
pub fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
    }
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs())
    }
}

/// Python's `repr(str)`.
pub fn str_repr(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Appends Python's `str(value)` (what `{{ value }}` prints).
pub fn write_str(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::String => out.push_str(value.as_str().unwrap_or_default()),
        // Datetimes and durations print their Python `str()`.
        ValueKind::Plain => {
            let _ = write!(out, "{value}");
        }
        _ => write_repr(value, out),
    }
}

/// Appends Python's `repr(value)` (how values print inside lists and dicts).
pub fn write_repr(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(f) if !value.is_integer() => out.push_str(&float_repr(f)),
            _ => {
                let _ = write!(out, "{value}");
            }
        },
        ValueKind::String => str_repr(value.as_str().unwrap_or_default(), out),
        ValueKind::Bytes => {
            let _ = write!(out, "{value}");
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let (open, close) = if value.is_tuple() {
                ('(', ")")
            } else {
                ('[', "]")
            };
            out.push(open);
            let mut count = 0;
            if let Ok(items) = value.try_iter() {
                for (index, item) in items.enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    write_repr(&item, out);
                    count += 1;
                }
            }
            if value.is_tuple() && count == 1 {
                out.push(',');
            }
            out.push_str(close);
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (index, key) in keys.enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    write_repr(&key, out);
                    out.push_str(": ");
                    let item = value.get_item(&key).unwrap_or_default();
                    write_repr(&item, out);
                }
            }
            out.push('}');
        }
        _ => write_object_repr(value, out),
    }
}

fn write_object_repr(value: &Value, out: &mut String) {
    if let Some(dt) = value.downcast_object_ref::<PyDateTime>() {
        let d = dt.0;
        let _ = write!(
            out,
            "datetime.datetime({}, {}, {}, {}, {}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        );
        if d.second() != 0 || d.microsecond() != 0 {
            let _ = write!(out, ", {}", d.second());
        }
        if d.microsecond() != 0 {
            let _ = write!(out, ", {}", d.microsecond());
        }
        out.push_str(", tzinfo=datetime.timezone.utc)");
    } else if let Some(date) = value.downcast_object_ref::<PyDate>() {
        let d = date.0;
        let _ = write!(
            out,
            "datetime.date({}, {}, {})",
            d.year(),
            u8::from(d.month()),
            d.day()
        );
    } else if let Some(duration) = value.downcast_object_ref::<PyDuration>() {
        let _ = write!(out, "datetime.timedelta({duration})");
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let cases = [
            (1.0, "1.0"),
            (1e20, "1e+20"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (123456789.0, "123456789.0"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (1.5e16, "1.5e+16"),
            (1583017323.5, "1583017323.5"),
        ];
        for (value, expected) in cases {
            assert_eq!(float_repr(value), expected);
        }
    }

    #[test]
    fn containers_print_like_python() {
        let value = Value::from(minijinja::value::Serde(serde_json::json!({
            "k": ["a'b", "c\"d", "e\nf", "é", null, true, 1.0, 2]
        })));
        let mut out = String::new();
        write_str(&value, &mut out);
        assert_eq!(
            out,
            r#"{'k': ["a'b", 'c"d', 'e\nf', 'é', None, True, 1.0, 2]}"#
        );
    }
}
