//! JSON into `serde_json::Value`, exactly as `serde_json::from_slice` gives it, faster for pages
//! of records.
//!
//! `serde_json` inserts an object's keys one by one into a map that grows (and rehashes) as it
//! goes, which was a fifth of decoding time in the profile of `cargo xtask bench`. Here an
//! object's entries are first pushed on a scratch stack shared by the whole document, then the
//! map is built once at its final size. Duplicate keys keep the first position and the last
//! value, as in `serde_json` and Python.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses one JSON document (surrounding whitespace allowed, nothing after it).
pub(crate) fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    if let Some(value) = plain_scalar(bytes) {
        return Ok(value);
    }
    let mut scratch = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Decode {
        scratch: &mut scratch,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A string without escapes, or an integer of up to 18 digits, read without setting up a
/// deserializer: these are most of the single values normalisation parses, and setting one up
/// cost several times the parse (callgrind on `cargo xtask bench` scenario (k)). `None` for
/// anything else, which serde_json reads.
fn plain_scalar(bytes: &[u8]) -> Option<Value> {
    match bytes {
        [b'"', inner @ .., b'"'] => {
            if inner.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
                return None;
            }
            std::str::from_utf8(inner)
                .ok()
                .map(|text| Value::String(text.to_owned()))
        }
        [b'-', digits @ ..] | digits @ [b'1'..=b'9', ..] if plain_digits(digits) => {
            // At most 18 digits: within an i64, with or without the sign.
            let magnitude = digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
            let value = if bytes[0] == b'-' {
                -magnitude
            } else {
                magnitude
            };
            Some(Value::Number(value.into()))
        }
        b"0" => Some(Value::Number(0.into())),
        _ => None,
    }
}

/// Digits of an integer as JSON spells it (no leading zero), at most 18 of them.
fn plain_digits(digits: &[u8]) -> bool {
    matches!(digits.first(), Some(b'1'..=b'9'))
        && digits.len() <= 18
        && digits.iter().all(u8::is_ascii_digit)
}

/// Decodes one value; nested objects stack their entries above those of their parents.
struct Decode<'s> {
    scratch: &'s mut Vec<(String, Value)>,
}

impl<'de> DeserializeSeed<'de> for Decode<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Decode<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Decode {
            scratch: &mut *self.scratch,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let start = self.scratch.len();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Decode {
                scratch: &mut *self.scratch,
            })?;
            self.scratch.push((key, value));
        }
        // An exact-size iterator: the map is allocated once.
        let object: Map<String, Value> = self.scratch.drain(start..).collect();
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_what_serde_json_gives() {
        let documents = [
            r#"{"data": [{"id": 1, "name": "a", "tags": ["x", "y"], "nested": {"k": {"j": null}}},
                         {"id": -2, "score": 1.5, "big": 18446744073709551615}]}"#,
            r#"{"b": 1, "a": 2, "b": 3, "c": {"x": 1, "x": {"y": 2}}}"#,
            r#"  [1, "two", 3.0, true, false, null, [], {}, [[{}]]]  "#,
            r#""\u00e9\ud83d\ude00 \" \\ \/""#,
            "12345678901234567890123",
            "-0.0",
            "{}",
            // Single values, some read without serde_json.
            r#""plain""#,
            r#""é and 😀""#,
            r#""""#,
            r#""esc\"aped""#,
            "0",
            "-0",
            "7",
            "-42",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775808",
            "-9223372036854775809",
            "12.50",
            " 5",
            "true",
        ];
        for document in documents {
            let expected: Value = serde_json::from_str(document).unwrap();
            let got = from_slice(document.as_bytes()).unwrap();
            assert_eq!(got, expected, "{document}");
            // Key order too, which `==` on maps does not compare.
            assert_eq!(got.to_string(), expected.to_string(), "{document}");
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for document in [
            "",
            "1e400",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{} x",
            "nul",
            "[1] [2]",
            "007",
            "-",
            "\"tab\there\"",
            "\"unterminated",
        ] {
            assert!(
                serde_json::from_str::<Value>(document).is_err(),
                "{document}"
            );
            assert!(from_slice(document.as_bytes()).is_err(), "{document}");
        }
    }
}
