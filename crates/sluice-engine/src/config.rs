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
    let problems: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let at = e.instance_path().to_string();
            let text = pythonish(&e.to_string());
            if at.is_empty() {
                text
            } else {
                format!("{text} (at {at})")
            }
        })
        .collect();
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(
            EngineError::config(format!("Config validation error: {first}"))
                .with_internal(problems.join("; ")),
        ),
    }
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
