//! Writing a migrated config back to the config file, as the reference does after the spec's
//! `config_migrations` changed it: the file holds what Python's `json.dump` writes (`", "` and
//! `": "` separators, non-ASCII characters escaped, Python's float spelling, no final newline).

use serde_json::ser::Formatter;
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::path::Path;

/// Replaces the config file's content with `config`, in place as the reference does.
pub fn rewrite(path: &Path, config: &Map<String, Value>) -> io::Result<()> {
    std::fs::write(path, python_json(&Value::Object(config.clone()))?)
}

/// `json.dumps(value)` with Python's defaults.
pub fn python_json(value: &Value) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    serde::Serialize::serialize(value, &mut serializer).map_err(io::Error::other)?;
    Ok(out)
}

/// Python `json` module's default output.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // `ensure_ascii`: everything beyond ASCII as UTF-16 `\uXXXX` escapes.
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(sluice_interp::python_float(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_python_json_dump_writes() {
        let value = json!({"a": [1, 2.5, true, null], "ü": "é😀", "nested": {"x": "\"q\"\n"}});
        assert_eq!(
            String::from_utf8(python_json(&value).unwrap()).unwrap(),
            r#"{"a": [1, 2.5, true, null], "\u00fc": "\u00e9\ud83d\ude00", "nested": {"x": "\"q\"\n"}}"#
        );
    }

    #[test]
    fn floats_are_spelled_as_python_repr() {
        for (value, python) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-12.25, "-12.25"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.0, "0.0"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(sluice_interp::python_float(value), python, "{value}");
        }
    }

    #[test]
    fn rewrite_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{\"old\": 1}").unwrap();
        let config = json!({"credentials": {"api_token": "t"}});
        rewrite(&path, config.as_object().unwrap()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"credentials": {"api_token": "t"}}"#
        );
    }
}
