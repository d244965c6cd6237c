//! Reading JSON objects into generated structs, and the errors that name what and where.

use super::FromNode;
use crate::{ManifestError, ManifestErrorKind, ManifestPath, did_you_mean};
use serde_json::{Map, Value};

/// A validation keyword of the schema, checked on the raw value before it is read. Each applies
/// only to the JSON shape it is about (a minimum to numbers, `minItems` to lists), as in JSON
/// Schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Constraint {
    Minimum(f64),
    ExclusiveMinimum(f64),
    MinItems(usize),
    UniqueItems,
}

impl Constraint {
    fn check(self, node: &Value, at: &ManifestPath) -> Result<(), ManifestError> {
        let invalid = |message: String| {
            Err(ManifestError::new(
                at.clone(),
                ManifestErrorKind::InvalidValue,
                message,
            ))
        };
        match (self, node) {
            (Constraint::Minimum(min), Value::Number(n)) if n.as_f64().is_some_and(|v| v < min) => {
                invalid(format!("{n} is less than the minimum {min}"))
            }
            (Constraint::ExclusiveMinimum(min), Value::Number(n))
                if n.as_f64().is_some_and(|v| v <= min) =>
            {
                invalid(format!("{n} must be greater than {min}"))
            }
            (Constraint::MinItems(min), Value::Array(items)) if items.len() < min => {
                invalid(format!(
                    "the list needs at least {min} item(s), found {}",
                    items.len()
                ))
            }
            (Constraint::UniqueItems, Value::Array(items)) => {
                match items
                    .iter()
                    .enumerate()
                    .find(|(i, item)| items[..*i].contains(item))
                {
                    Some((i, item)) => invalid(format!(
                        "item {i} ({item}) repeats an earlier item; items must be unique"
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The fields of one JSON object being read into a generated struct.
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    at: &'a ManifestPath,
    /// Every key the struct knows (including `type`), for suggestions and unknown-key checks.
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    /// Starts reading `node`, which must be an object (else "expected `expected()`, found ...").
    pub(crate) fn new(
        node: &'a Value,
        at: &'a ManifestPath,
        known: &'static [&'static str],
        expected: fn() -> String,
    ) -> Result<Self, ManifestError> {
        match node {
            Value::Object(object) => Ok(Self { object, at, known }),
            other => Err(wrong_shape(other, at, &expected())),
        }
    }

    /// Checks the component `type`: it must name this component, and be present when required.
    pub(crate) fn tag(&self, expected_type: &str, required: bool) -> Result<(), ManifestError> {
        match self.object.get("type") {
            Some(Value::String(found)) if found == expected_type => Ok(()),
            Some(Value::String(found)) => {
                let error = ManifestError::new(
                    self.at.clone(),
                    ManifestErrorKind::UnknownType,
                    format!(
                        "expected a component of type '{expected_type}' here, found type '{found}'"
                    ),
                );
                Err(match did_you_mean(found, [expected_type]) {
                    Some(s) => error.with_suggestion(format!("did you mean '{s}'?")),
                    None => error,
                })
            }
            Some(other) => Err(wrong_shape(other, &self.at.key("type"), "a string")),
            None if required => Err(ManifestError::new(
                self.at.clone(),
                ManifestErrorKind::MissingField,
                format!("missing required field 'type' (expected '{expected_type}')"),
            )),
            None => Ok(()),
        }
    }

    /// Rejects keys the struct does not know (for objects the schema closes with
    /// `additionalProperties: false`).
    pub(crate) fn deny_unknown(&self) -> Result<(), ManifestError> {
        match self
            .object
            .keys()
            .find(|k| !self.known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some(key) => {
                let error = ManifestError::new(
                    self.at.clone(),
                    ManifestErrorKind::InvalidValue,
                    format!(
                        "unknown field '{key}'; allowed fields: {}",
                        self.known.join(", ")
                    ),
                );
                Err(match did_you_mean(key, self.known.iter().copied()) {
                    Some(s) => error.with_suggestion(format!("did you mean '{s}'?")),
                    None => error,
                })
            }
        }
    }

    /// At least one of `keys` must be present.
    pub(crate) fn require_one_of(&self, keys: &[&str]) -> Result<(), ManifestError> {
        if keys.iter().any(|k| self.object.contains_key(*k)) {
            return Ok(());
        }
        let listed: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
        Err(ManifestError::new(
            self.at.clone(),
            ManifestErrorKind::MissingField,
            format!(
                "missing required field: one of {} must be present",
                listed.join(", ")
            ),
        ))
    }

    /// A field the schema requires.
    pub(crate) fn required<T: FromNode>(
        &self,
        key: &str,
        constraints: &[Constraint],
    ) -> Result<T, ManifestError> {
        match self.optional(key, constraints)? {
            Some(value) => Ok(value),
            None => Err(self.missing(key)),
        }
    }

    /// A field that may be absent. A present `null` is read like any other value (and so is
    /// an error for typed fields), as schema validation treats it.
    pub(crate) fn optional<T: FromNode>(
        &self,
        key: &str,
        constraints: &[Constraint],
    ) -> Result<Option<T>, ManifestError> {
        let Some(node) = self.object.get(key) else {
            return Ok(None);
        };
        let at = self.at.key(key);
        for constraint in constraints {
            constraint.check(node, &at)?;
        }
        T::from_node(node, &at).map(Some)
    }

    fn missing(&self, key: &str) -> ManifestError {
        let error = ManifestError::new(
            self.at.clone(),
            ManifestErrorKind::MissingField,
            format!("missing required field '{key}'"),
        );
        let unknown = self
            .object
            .keys()
            .map(String::as_str)
            .filter(|k| !self.known.contains(k));
        match did_you_mean(key, unknown) {
            Some(typo) => {
                error.with_suggestion(format!("did you mean '{key}' instead of '{typo}'?"))
            }
            None => error,
        }
    }
}

/// "a number", "a list": what a JSON value is, for messages.
pub(crate) fn describe_found(node: &Value) -> String {
    match node {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > 40 => "a string".to_owned(),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// "expected a list of strings, found a number".
pub(crate) fn wrong_shape(node: &Value, at: &ManifestPath, expected: &str) -> ManifestError {
    ManifestError::new(
        at.clone(),
        ManifestErrorKind::InvalidValue,
        format!("expected {expected}, found {}", describe_found(node)),
    )
}

/// The text of a string node, for string enums.
pub(crate) fn string_value<'a>(
    node: &'a Value,
    at: &ManifestPath,
    expected: fn() -> String,
) -> Result<&'a str, ManifestError> {
    node.as_str()
        .ok_or_else(|| wrong_shape(node, at, &expected()))
}

/// A `type` that is not one of the components allowed at this place.
pub(crate) fn unknown_type(found: &str, allowed: &[&str], at: &ManifestPath) -> ManifestError {
    let known_elsewhere = super::COMPONENT_TYPES.contains(&found);
    let message = if known_elsewhere {
        format!(
            "a {found} component is not allowed here; expected one of: {}",
            allowed.join(", ")
        )
    } else {
        format!(
            "unknown component type '{found}'; expected one of: {}",
            allowed.join(", ")
        )
    };
    let error = ManifestError::new(at.clone(), ManifestErrorKind::UnknownType, message);
    match did_you_mean(found, allowed.iter().copied()) {
        Some(s) => error.with_suggestion(format!("did you mean '{s}'?")),
        None => error,
    }
}

/// A component without `type` where several component types are allowed.
pub(crate) fn missing_type(allowed: &[&str], at: &ManifestPath) -> ManifestError {
    ManifestError::new(
        at.clone(),
        ManifestErrorKind::MissingField,
        format!(
            "missing required field 'type' (one of: {})",
            allowed.join(", ")
        ),
    )
}

/// A string that is not one of the values of a string enum.
pub(crate) fn unknown_value(found: &str, allowed: &[&str], at: &ManifestPath) -> ManifestError {
    let listed: Vec<String> = allowed.iter().map(|v| format!("'{v}'")).collect();
    let error = ManifestError::new(
        at.clone(),
        ManifestErrorKind::InvalidValue,
        format!(
            "unknown value '{found}'; expected one of: {}",
            listed.join(", ")
        ),
    );
    match did_you_mean(found, allowed.iter().copied()) {
        Some(s) => error.with_suggestion(format!("did you mean '{s}'?")),
        None => error,
    }
}
