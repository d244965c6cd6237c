//! The user's config checked against the manifest's `spec.connection_specification`.

use crate::EngineError;
use serde_json::Value;

/// Checks `config` against a JSON Schema; the error lists what is wrong, in the reference's words
/// (`Config validation error: 'token' is a required property`).
pub fn validate_config(
    connection_specification: &Value,
    config: &Value,
) -> Result<(), EngineError> {
    let validator = jsonschema::validator_for(connection_specification).map_err(|e| {
        EngineError::config(format!(
            "the spec's connection_specification is not a valid JSON Schema: {e}"
        ))
    })?;
    let problems = problems(&validator, config);
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(
            EngineError::config(format!("Config validation error: {first}"))
                .with_internal(problems.join("; ")),
        ),
    }
}

/// Checks a value against a JSON Schema: the first problem, in the reference's words, or why
/// the schema is not one.
pub(crate) fn check_against_schema(schema: &Value, value: &Value) -> Result<(), String> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| format!("invalid JSON Schema: {e}"))?;
    match problems(&validator, value).into_iter().next() {
        None => Ok(()),
        Some(problem) => Err(problem),
    }
}

fn problems(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let text = pythonish(&e.to_string());
            if at.is_empty() {
                text
            } else {
                format!("{text} (at {at})")
            }
        })
        .collect()
}

/// The jsonschema crate quotes names JSON-style (`"token"`); Python's jsonschema uses reprs (`'token'`).
fn pythonish(message: &str) -> String {
    match message.strip_suffix(" is a required property") {
        Some(name) if name.starts_with('"') && name.ends_with('"') && name.len() >= 2 => {
            format!("'{}' is a required property", &name[1..name.len() - 1])
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_missing_required_like_the_reference() {
        let spec = json!({"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}});
        let err = validate_config(&spec, &json!({})).unwrap_err();
        assert_eq!(
            err.message,
            "Config validation error: 'token' is a required property"
        );
        assert_eq!(err.failure_type, sluice_protocol::FailureType::ConfigError);
        assert!(validate_config(&spec, &json!({"token": "x"})).is_ok());
        let err = validate_config(&spec, &json!({"token": 5})).unwrap_err();
        assert!(err.message.contains("token"), "{}", err.message);
    }

    #[test]
    fn an_invalid_schema_is_a_config_error_not_a_panic() {
        let err = validate_config(&json!({"type": 12}), &json!({})).unwrap_err();
        assert!(err.message.contains("not a valid JSON Schema"));
    }
}

/// A config that satisfies a spec's shape, for checking a manifest without a user's config:
/// each property's `default`, else its first example that fits (an item example of an array
/// property becomes a one-item list; a string example that does not match the property's
/// `pattern`, such as the placeholder `YYYY-MM-DD`, is passed over), `const` or enum value, else
/// a value of its type (a date or datetime in the shape its `format` or `pattern` asks for),
/// following the first variant of a `oneOf`/`anyOf`.
pub(crate) fn sample_config(connection_specification: &Value) -> Value {
    sample(connection_specification, 0)
}

fn sample(schema: &Value, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    let first = |key: &str| {
        schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
    };
    if let Some(value) = schema.get("default").or_else(|| schema.get("const")) {
        return value.clone();
    }
    let declared = declared_type(schema);
    if let Some(example) = fitting_example(schema, declared) {
        return example;
    }
    if let Some(value) = first("enum") {
        return value.clone();
    }
    if let Some(variant) = first("oneOf").or_else(|| first("anyOf")) {
        let mut value = sample(variant, depth + 1);
        // A variant often only narrows the parent's properties: keep both.
        if let (Value::Object(own), Some(Value::Object(_))) =
            (sample_object(schema, depth), schema.get("properties"))
        {
            if let Value::Object(merged) = &mut value {
                for (k, v) in own {
                    merged.entry(k).or_insert(v);
                }
            }
        }
        return value;
    }
    match declared {
        "object" => sample_object(schema, depth),
        "array" => Value::Array(Vec::new()),
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String(sample_string(schema)),
    }
}

fn declared_type(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    }
}

/// The first of the property's `examples` a user could have typed: specs often give an array
/// property examples of its items, and a string property a placeholder of its format.
fn fitting_example(schema: &Value, declared: &str) -> Option<Value> {
    let examples = schema.get("examples")?.as_array()?;
    let pattern = string_pattern(schema);
    examples
        .iter()
        .find_map(|example| match (declared, example) {
            ("array", Value::Array(_)) => Some(example.clone()),
            ("array", item) => Some(Value::Array(vec![item.clone()])),
            ("string", Value::String(text)) => match &pattern {
                Some(pattern) if !pattern.is_match(text) => None,
                _ => Some(example.clone()),
            },
            _ => Some(example.clone()),
        })
}

/// The property's `pattern`, when the regex engine reads it (JSON Schema patterns are ECMA
/// regexes; the few it cannot read are ignored here, as a sample is only a best guess).
fn string_pattern(schema: &Value) -> Option<regex::Regex> {
    regex::Regex::new(schema.get("pattern")?.as_str()?).ok()
}

fn sample_object(schema: &Value, depth: usize) -> Value {
    let properties = schema.get("properties").and_then(Value::as_object);
    Value::Object(
        properties
            .into_iter()
            .flatten()
            .map(|(name, property)| (name.clone(), sample(property, depth + 1)))
            .collect(),
    )
}

/// A string for the property: the first candidate its `pattern` accepts, trying those of its
/// `format` first (connectors' specs write dates as `2020-01-01`, `01-01-2020`, ...).
fn sample_string(schema: &Value) -> String {
    const DATETIMES: &[&str] = &[
        "2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00.000Z",
        "2020-01-01T00:00:00",
        "2020-01-01 00:00:00",
        "2020-01-01T00:00:00+00:00",
    ];
    const DATES: &[&str] = &["2020-01-01", "01-01-2020", "2020/01/01", "01/01/2020"];
    const OTHERS: &[&str] = &["sample", "1", "2020-01"];
    let format = schema
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let candidates: Vec<&str> = match format {
        "date-time" => [DATETIMES, DATES, OTHERS].concat(),
        "date" => [DATES, DATETIMES, OTHERS].concat(),
        _ => [OTHERS, DATETIMES, DATES].concat(),
    };
    let fallback = match format {
        "date-time" => DATETIMES[0],
        "date" => DATES[0],
        _ => OTHERS[0],
    };
    let Some(pattern) = string_pattern(schema) else {
        return fallback.to_owned();
    };
    candidates
        .into_iter()
        .find(|candidate| pattern.is_match(candidate))
        .unwrap_or(fallback)
        .to_owned()
}

#[cfg(test)]
mod sample_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn samples_follow_defaults_examples_and_types() {
        let spec = json!({"type": "object", "properties": {
            "page_size": {"type": "integer", "default": 50},
            "region": {"type": "string", "examples": ["eu"]},
            "start_date": {"type": "string", "format": "date-time"},
            "credentials": {"type": "object", "oneOf": [
                {"properties": {"auth_type": {"const": "oauth"}, "client_id": {"type": "string"}}},
                {"properties": {"auth_type": {"const": "token"}}}
            ]}
        }});
        assert_eq!(
            sample_config(&spec),
            json!({"page_size": 50, "region": "eu", "start_date": "2020-01-01T00:00:00Z",
                   "credentials": {"auth_type": "oauth", "client_id": "sample"}})
        );
    }

    #[test]
    fn samples_fit_patterns_and_item_examples() {
        let spec = json!({"type": "object", "properties": {
            // coingecko-coins: a date in dd-mm-yyyy.
            "start": {"type": "string", "format": "date", "pattern": "^[0-9]{2}-[0-9]{2}-[0-9]{4}$"},
            // exchange-rates: the example is a placeholder the pattern rejects.
            "from": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                     "examples": ["YYYY-MM-DD"]},
            // trustpilot: examples of the items of an array.
            "units": {"type": "array", "items": {"type": "string"}, "examples": ["a.com", "b.com"]},
            "lists": {"type": "array", "examples": [["x"]]},
            "stamp": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"},
            "free": {"type": "string", "pattern": "^[a-z]+$", "examples": ["abc"]}
        }});
        assert_eq!(
            sample_config(&spec),
            json!({"start": "01-01-2020", "from": "2020-01-01", "units": ["a.com"],
                   "lists": ["x"], "stamp": "2020-01-01T00:00:00Z", "free": "abc"})
        );
    }
}
