//! Jinja interpolation for Airbyte low-code manifests, matching the Python reference
//! (`airbyte_cdk.sources.declarative.interpolation`).
//!
//! - [`Template`]: a manifest string compiled once. Rendering literal-evaluates the output like
//!   Python's `ast.literal_eval` (`"5"` -> `5`, `"['a']"` -> a list, `"True"` -> `true`; text
//!   that is not a Python literal stays a string). Strings without Jinja markup are constants and
//!   are never rendered.
//! - [`Context`]: the variables (`config`, `parameters`/`options`, `stream_slice` and its aliases
//!   `stream_partition`/`stream_interval`, `next_page_token`, `record`, `response`, `headers`,
//!   `last_record`, `last_page_size`, `stream_state`, `creation_response`, `polling_response`,
//!   `download_target`, `components_values`, `request_url`, and any extra names), borrowed.
//! - [`InterpolatedBoolean`], [`InterpolatedMapping`], [`InterpolatedNestedMapping`]: the
//!   reference's conditions, flat maps (request parameters, headers) and nested JSON bodies.
//!
//! Templates see the reference's macros (`now_utc`, `today_utc`, `today_with_timezone`,
//! `timestamp`, `max`, `min`, `day_delta`, `duration`, `format_datetime`, `str_to_datetime`,
//! `sanitize_url`, `camel_case_to_snake_case`, `generate_uuid`) and filters (`hash`,
//! `base64encode`, `base64decode`, `base64binascii_decode`, `string`, `regex_search`,
//! `regex_replace`, `hmac`), Python datetime values with `strftime`, `isoformat`, `timestamp`,
//! `date`, `replace` and `+`/`-` with durations, and Python methods on strings, lists and maps
//! (`.get()`, `.items()`, `.split()`, `','.join(...)`...). The environment has no loader and no
//! access to files or the process environment. Values print the way Python's `str()` does
//! (`None`, `True`, `['a', 'b']`).
//!
//! ```
//! use serde_json::json;
//! use sluice_interp::{Context, InterpolatedBoolean, Template};
//!
//! let config = json!({"page_size": "50", "start_date": "2024-01-15T10:00:00Z"});
//! let ctx = Context::new().config(&config);
//!
//! // The rendered "50" is literal-evaluated to a number, as the reference does.
//! let page_size = Template::new("{{ config['page_size'] }}")?;
//! assert_eq!(page_size.render(&ctx)?, json!(50));
//!
//! let day = Template::new("{{ format_datetime(config.start_date, '%Y-%m-%d') }}")?;
//! assert_eq!(day.render_string(&ctx)?, "2024-01-15");
//!
//! let week_before = Template::new(
//!     "{{ (str_to_datetime(config.start_date) - duration('P7D')).strftime('%Y-%m-%d') }}",
//! )?;
//! assert_eq!(week_before.render_string(&ctx)?, "2024-01-08");
//!
//! let record = json!({"score": 7});
//! let keep = InterpolatedBoolean::new("{{ record['score'] > 5 }}")?;
//! assert!(keep.eval(&Context::new().record(&record))?);
//! # Ok::<(), sluice_interp::InterpError>(())
//! ```

mod boolean;
mod context;
mod datetime;
mod direct;
mod error;
mod functions;
mod literal;
mod mapping;
mod pyrepr;
pub mod pytime;
mod rewrite;
pub mod strftime;
mod template;

pub use boolean::{InterpolatedBoolean, is_truthy, python_bool};
pub use context::{Context, IntoJson};
pub use direct::{PlainValue, RecordFields};
pub use error::InterpError;
pub use literal::{LiteralType, literal_eval};
pub use mapping::{InterpolatedMapping, InterpolatedNestedMapping};
pub use template::Template;

/// Python's `repr` (and `str`) of a float: `1.0`, `0.5`, `1e+16`, `nan`.
pub fn python_float(value: f64) -> String {
    pyrepr::float_repr(value)
}

/// Python's `str()` of a JSON value, as the reference sends it in a query string or header
/// (`True`, `1.0`, `['a', 'b']`).
pub fn python_str(value: &serde_json::Value) -> String {
    use serde_json::Value;
    // Scalars other than floats directly: converting them to a template value first cost
    // several times the writing (callgrind on `cargo xtask bench` scenario (k), which turns
    // numbers into strings).
    match value {
        Value::String(text) => return text.clone(),
        Value::Bool(flag) => return if *flag { "True" } else { "False" }.to_owned(),
        Value::Null => return "None".to_owned(),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                return integer.to_string();
            }
            if let Some(integer) = number.as_u64() {
                return integer.to_string();
            }
        }
        Value::Array(_) | Value::Object(_) => {}
    }
    let mut out = String::new();
    pyrepr::write_str(
        &minijinja::Value::from(minijinja::value::Serde(value)),
        &mut out,
    );
    out
}

/// Appends `text` as Python's `json.dumps` writes a string (quoted, ASCII only: anything outside
/// space..`~` as `\uXXXX`), as request bodies are sent by the reference.
pub fn write_python_json_string(text: &str, out: &mut String) {
    functions::json_string(text, out);
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_str_writes_scalars_as_the_template_path_does() {
        let values = serde_json::json!([
            "text", "", true, false, null, 0, -7, i64::MIN, i64::MAX, u64::MAX, 1.5, -0.0, 1e16,
            2.0, [1, "a"], {"k": null}
        ]);
        for value in values.as_array().unwrap() {
            let mut expected = String::new();
            super::pyrepr::write_str(
                &minijinja::Value::from(minijinja::value::Serde(value)),
                &mut expected,
            );
            assert_eq!(super::python_str(value), expected, "{value}");
        }
    }
}
