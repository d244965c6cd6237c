//! The few Python value rules the reference's paginator relies on.

use serde_json::Value;
use sluice_interp::python_str;

/// Python's `bool(value)`: `None`, `False`, zero, and empty strings, lists and dicts are false.
///
/// The reference drops a next-page token that is falsy, so a cursor of `""` or `0` ends the
/// pagination.
pub(crate) fn is_truthy(value: &Value) -> bool {
    sluice_interp::python_bool(value)
}

/// The value as a Python `int`, if it is one (`bool` is an `int` in Python).
pub(crate) fn as_python_int(value: &Value) -> Option<i64> {
    match value {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Appends `key`/`value` the way `requests` encodes a params or form-data mapping: `None` is
/// left out, a list gives one pair per non-`None` element, a dict gives one pair per key, and
/// anything else is Python's `str()` of it.
pub(crate) fn push_form_pairs(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items.iter().filter(|item| !item.is_null()) {
                out.push((key.to_owned(), python_str(item)));
            }
        }
        Value::Object(map) => {
            for name in map.keys() {
                out.push((key.to_owned(), name.clone()));
            }
        }
        other => out.push((key.to_owned(), python_str(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_follows_python() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!is_truthy(&falsy), "{falsy} should be falsy");
        }
        for truthy in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("0"),
            json!("False"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(is_truthy(&truthy), "{truthy} should be truthy");
        }
    }

    #[test]
    fn ints_include_bools_but_not_floats_or_strings() {
        assert_eq!(as_python_int(&json!(7)), Some(7));
        assert_eq!(as_python_int(&json!(true)), Some(1));
        assert_eq!(as_python_int(&json!(7.0)), None);
        assert_eq!(as_python_int(&json!("7")), None);
    }

    #[test]
    fn form_pairs_encode_like_requests() {
        let mut out = Vec::new();
        push_form_pairs("a", &json!(5), &mut out);
        push_form_pairs("b", &json!(null), &mut out);
        push_form_pairs("c", &json!(["x", null, 2]), &mut out);
        push_form_pairs("d", &json!({"k1": 1, "k2": 2}), &mut out);
        push_form_pairs("e", &json!(true), &mut out);
        push_form_pairs("f", &json!(1.0), &mut out);
        let pairs: Vec<(&str, &str)> = out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("a", "5"),
                ("c", "x"),
                ("c", "2"),
                ("d", "k1"),
                ("d", "k2"),
                ("e", "True"),
                ("f", "1.0")
            ]
        );
    }
}
