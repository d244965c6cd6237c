//! Writing messages byte for byte as the reference does.
//!
//! The reference serialises every message with `serpyco_rs` (`omit_none=True`) and then
//! `orjson.dumps`. Two consequences matter for exact output:
//!
//! * floats are printed like orjson prints them, which is Ryu's shortest representation with
//!   an explicit `+` in positive exponents (`1e+16`), unlike serde_json's default (`1e16`);
//! * fields typed `Dict[str, Any]` in the reference (record `data`, `connectionSpecification`,
//!   `json_schema`, a control message's `config`, ...) lose their *top-level* entries whose
//!   value is `null`; nested nulls and nulls inside arrays are kept. State blobs
//!   (`stream_state`, `shared_state`) are a custom type there and keep their nulls.
//!
//! [`to_json_string`], [`write_message_json`] and [`write_record_json`] produce that output.
//! Serialising the types with plain `serde_json::to_string` gives the same structure but
//! serde_json's float spelling.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::ser::Formatter;
use serde_json::{Map, Value};

use crate::message::AirbyteMessage;

/// A compact [`Formatter`] that spells floats the way orjson does (`1e+16`, `0.00001`,
/// `12.0`); everything else is serde_json's compact output, which already matches orjson
/// (UTF-8 kept as is, control characters escaped, no spaces).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceFormatter;

impl Formatter for ReferenceFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // serde_json only hands finite values to the formatter (it writes `null` for NaN and
        // infinities itself, as orjson does).
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(value);
        write_with_signed_exponent(writer, text)
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        // The reference has no 32-bit floats; widen so the spelling follows the f64 rules.
        self.write_f64(writer, f64::from(value))
    }
}

/// Ryu writes `1e16` and `1.5e-7`; orjson writes `1e+16` and `1.5e-7`.
fn write_with_signed_exponent<W: ?Sized + Write>(writer: &mut W, text: &str) -> io::Result<()> {
    match text.find('e') {
        Some(at) if !text[at + 1..].starts_with('-') => {
            writer.write_all(&text.as_bytes()[..=at])?;
            writer.write_all(b"+")?;
            writer.write_all(&text.as_bytes()[at + 1..])
        }
        _ => writer.write_all(text.as_bytes()),
    }
}

/// Serialises `value` with the reference's float spelling. Useful for any JSON the engine
/// must print exactly like the reference (messages, but also e.g. state values in logs).
pub fn to_reference_writer<W: Write, T: ?Sized + Serialize>(
    out: &mut W,
    value: &T,
) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, ReferenceFormatter);
    value.serialize(&mut serializer).map_err(io::Error::from)
}

/// Writes `text` as a JSON string, exactly as [`to_reference_writer`] does. Most strings need
/// no escape and are copied between their quotes, without going through a serializer (a
/// string a record's edit adds took about 200 instructions that way: callgrind on
/// `cargo xtask bench` scenario (b)).
pub fn write_json_str<W: ?Sized + Write>(out: &mut W, text: &str) -> io::Result<()> {
    if needs_no_escape(text) {
        out.write_all(b"\"")?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\"")
    } else {
        serialize_str(out, text)
    }
}

/// [`write_json_str`] into memory: a string without escapes is copied at once, as most keys and
/// values edits write are (three writes through [`Write`] cost three times the copy, callgrind
/// on `cargo xtask bench` scenario (b)).
pub fn push_json_str(out: &mut Vec<u8>, text: &str) {
    if needs_no_escape(text) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing to memory cannot fail.
        let _ = serialize_str(out, text);
    }
}

/// Whether `text` is written between quotes as it is.
#[inline]
fn needs_no_escape(text: &str) -> bool {
    text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

fn serialize_str<W: ?Sized + Write>(out: &mut W, text: &str) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, ReferenceFormatter);
    text.serialize(&mut serializer).map_err(io::Error::from)
}

/// Writes one message as the reference prints it, without the trailing newline.
pub fn write_message_json<W: Write>(out: &mut W, message: &AirbyteMessage) -> io::Result<()> {
    to_reference_writer(out, message)
}

/// The message as the reference prints it (no trailing newline).
pub fn to_json_string(message: &AirbyteMessage) -> String {
    let mut bytes = Vec::with_capacity(128);
    // Writing into a Vec cannot fail and every protocol type serialises infallibly (string
    // keys only), so an error here would be a bug in this crate, not bad input.
    to_reference_writer(&mut bytes, message).expect("serialising an AirbyteMessage cannot fail");
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

/// Writes `{"type":"RECORD","record":{"stream":…,"data":…,"emitted_at":…}}` straight from
/// borrowed parts: the same bytes as [`write_message_json`] on
/// [`AirbyteMessage::record`](crate::AirbyteMessage::record), without building the message.
///
/// `data` is normally an object; like the reference, its top-level `null` entries are left
/// out. Any other JSON value is written unchanged. No trailing newline is written.
pub fn write_record_json<W: Write>(
    out: &mut W,
    stream: &str,
    data: &Value,
    emitted_at_ms: i64,
) -> io::Result<()> {
    write_record_with(out, stream, emitted_at_ms, |out| {
        let mut serializer = serde_json::Serializer::with_formatter(out, ReferenceFormatter);
        match data {
            Value::Object(map) => WithoutTopLevelNulls(map).serialize(&mut serializer),
            other => other.serialize(&mut serializer),
        }
        .map_err(io::Error::from)
    })
}

/// A RECORD message around the data `write_data` writes.
pub(crate) fn write_record_with<W: Write>(
    out: &mut W,
    stream: &str,
    emitted_at_ms: i64,
    write_data: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    out.write_all(b"{\"type\":\"RECORD\",\"record\":{\"stream\":")?;
    write_json_str(&mut *out, stream)?;
    out.write_all(b",\"data\":")?;
    write_data(&mut *out)?;
    out.write_all(b",\"emitted_at\":")?;
    out.write_all(itoa::Buffer::new().format(emitted_at_ms).as_bytes())?;
    out.write_all(b"}}")
}

/// An object serialised without its top-level `null` entries (the reference's `omit_none`
/// applied to a `Dict[str, Any]` field).
pub(crate) struct WithoutTopLevelNulls<'a>(pub(crate) &'a Map<String, Value>);

impl Serialize for WithoutTopLevelNulls<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kept = self.0.values().filter(|value| !value.is_null()).count();
        let mut map = serializer.serialize_map(Some(kept))?;
        for (key, value) in self.0 {
            if !value.is_null() {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// `serialize_with` helpers for the reference's `Dict[str, Any]` fields.
pub(crate) mod omit_top_level_nulls {
    use serde::Serialize;
    use serde::ser::Serializer;
    use serde_json::{Map, Value};

    use super::WithoutTopLevelNulls;

    pub(crate) fn serialize<S: Serializer>(
        map: &Map<String, Value>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        WithoutTopLevelNulls(map).serialize(serializer)
    }

    pub(crate) fn option<S: Serializer>(
        map: &Option<Map<String, Value>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match map {
            Some(map) => WithoutTopLevelNulls(map).serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn option_list<S: Serializer>(
        maps: &Option<Vec<Map<String, Value>>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match maps {
            Some(maps) => serializer.collect_seq(maps.iter().map(WithoutTopLevelNulls)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(value: f64) -> String {
        let mut out = Vec::new();
        to_reference_writer(&mut out, &value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_written_as_the_serializer_writes_them() {
        for text in [
            "",
            "plain",
            "é 🦀",
            "quote \" inside",
            "back\\slash",
            "line\nbreak",
            "\u{1}",
            "tab\t",
            "\u{7f}",
            "a/b",
            "\u{2028}",
        ] {
            let mut fast = Vec::new();
            write_json_str(&mut fast, text).unwrap();
            let mut serialized = Vec::new();
            to_reference_writer(&mut serialized, text).unwrap();
            assert_eq!(fast, serialized, "{text:?}");
            let mut pushed = b"before".to_vec();
            push_json_str(&mut pushed, text);
            assert_eq!(pushed[6..], serialized, "{text:?}");
        }
    }

    #[test]
    fn floats_use_orjson_exponent_sign() {
        assert_eq!(spelled(1e16), "1e+16");
        assert_eq!(spelled(1.2345678901234568e20), "1.2345678901234568e+20");
        assert_eq!(spelled(1.5e-7), "1.5e-7");
        assert_eq!(spelled(0.00001), "0.00001");
        assert_eq!(spelled(12.0), "12.0");
        assert_eq!(spelled(-0.0), "-0.0");
        assert_eq!(spelled(f64::NAN), "null");
    }
}
