//! The spec's `config_normalization_rules`: migrations, transformations and validations of the
//! user's config, applied when and as the reference applies them.
//!
//! When a source is made for `check`, `discover` or `read` (never for `spec`), a config that is not
//! empty goes through every `config_migrations[i].transformations` in order. If that changed it,
//! the migrated config is announced in a CONTROL message (the platform stores it) and the runner
//! writes it back to the config file. The `transformations` then apply on top, unannounced: they
//! are redone at every run. The streams are built with the result.
//!
//! The `validations` run on that result after the config was checked against the spec's
//! `connection_specification`, before any stream is read.
//!
//! The reference's own ways are kept, each on purpose:
//! - It decides whether migrations changed the config by comparing the migrated config with the
//!   one it was given, of which the migrated one is a *shallow* copy: a change inside a top-level
//!   object or list (`credentials.auth_type`) changes both, so it is neither announced nor written
//!   back; only top-level values that are added, replaced or removed count ([`ShallowCopy`]).
//! - A `DpathValidator` evaluates its `field_path` with an empty config, and skips validation
//!   (logging why) when nothing is at the path.
//! - `ValidateAdheresToSchema` does not interpolate its `base_schema`: a string there is not a
//!   schema, and validating with it fails.
//! - A `PredicateValidator` under `validations` fails every command that validates the config:
//!   the reference calls it with the config, which its `validate()` does not take.
//! - A `ConfigRemapField` whose `map` is a string fails once its field is found (the reference
//!   reads the string as a mapping).
//!
//! Failures while migrating, transforming or validating are system errors (the reference raises
//! them unclassified); mistakes in the rules themselves are config errors, found when the
//! manifest is loaded. Both name the rule's manifest path.

use crate::EngineError;
use crate::support::Unsupported;
use serde_json::{Map, Value};
use sluice_interp::{
    Context, InterpolatedBoolean, InterpolatedMapping, LiteralType, Template, python_str,
};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;
use std::collections::HashSet;

/// The compiled `config_normalization_rules` of a manifest's spec (empty without a spec).
#[derive(Debug, Clone, Default)]
pub struct ConfigRules {
    migrations: Vec<Rule>,
    transformations: Vec<Rule>,
    validations: Vec<Validation>,
}

/// A config after the rules: what the streams run with, and what to announce and store.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalisedConfig {
    /// The config after migrations and transformations.
    pub config: Value,
    /// The config after migrations only, when they changed it (as the reference tells): the
    /// CONTROL message's config, and what the config file is rewritten with.
    pub migrated: Option<Map<String, Value>>,
}

/// One transformation with its manifest path.
#[derive(Debug, Clone)]
struct Rule {
    path: ManifestPath,
    transformation: Transformation,
}

#[derive(Debug, Clone)]
enum Transformation {
    AddFields(AddFields),
    RemapField(RemapField),
    RemoveFields(RemoveFields),
}

/// `ConfigAddFields`: values set at paths, when the optional condition holds.
#[derive(Debug, Clone)]
struct AddFields {
    fields: Vec<AddedField>,
    condition: Option<InterpolatedBoolean>,
}

#[derive(Debug, Clone)]
struct AddedField {
    path: Vec<String>,
    /// The path as a list value, for the condition's `path` variable.
    path_value: Value,
    value: Template,
    valid_types: Vec<LiteralType>,
    parameters: Value,
}

/// `ConfigRemapField`: a field's value replaced by its entry in a map.
#[derive(Debug, Clone)]
struct RemapField {
    field_path: Vec<Template>,
    map: RemapMap,
}

#[derive(Debug, Clone)]
enum RemapMap {
    Mapping(InterpolatedMapping),
    /// A string `map`, which the reference fails to read as a mapping.
    Text,
}

/// `ConfigRemoveFields`: the values at field pointers (globs) removed, when the optional
/// condition (over the config) holds.
#[derive(Debug, Clone)]
struct RemoveFields {
    pointers: Vec<Vec<String>>,
    condition: Option<InterpolatedBoolean>,
}

/// One of `validations`.
#[derive(Debug, Clone)]
enum Validation {
    Dpath {
        path: ManifestPath,
        field_path: Vec<Template>,
        strategy: SchemaStrategy,
    },
    Predicate {
        path: ManifestPath,
    },
}

/// `ValidateAdheresToSchema`: a value (a JSON string is parsed first) against a JSON Schema.
#[derive(Debug, Clone)]
struct SchemaStrategy {
    base_schema: model::StringOrObject,
}

impl ConfigRules {
    /// Compiles the rules of a spec. A mistake in a rule (an empty path, a template that does
    /// not parse, a custom Python component) is a config error naming where it is.
    pub fn from_spec(spec: Option<&model::Spec>) -> Result<Self, EngineError> {
        let Some(rules) = spec.and_then(|s| s.config_normalization_rules.as_ref()) else {
            return Ok(Self::default());
        };
        let root = ManifestPath::root()
            .key("spec")
            .key("config_normalization_rules");
        let mut migrations = Vec::new();
        for (i, migration) in rules.config_migrations.iter().flatten().enumerate() {
            let at = root
                .key("config_migrations")
                .index(i)
                .key("transformations");
            for (j, transformation) in migration.transformations.iter().enumerate() {
                migrations.push(Rule::from_model(transformation, &at.index(j))?);
            }
        }
        let at = root.key("transformations");
        let transformations = rules
            .transformations
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, t)| Rule::from_model(t, &at.index(i)))
            .collect::<Result<_, _>>()?;
        let at = root.key("validations");
        let validations = rules
            .validations
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| Validation::from_model(v, &at.index(i)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            migrations,
            transformations,
            validations,
        })
    }

    /// Migrates, then transforms, the config. An empty config (or one that is not an object) is
    /// left alone, as the reference leaves it.
    pub fn normalise(&self, config: Value) -> Result<NormalisedConfig, EngineError> {
        let mut config = match config {
            Value::Object(map) if !map.is_empty() => map,
            other => {
                return Ok(NormalisedConfig {
                    config: other,
                    migrated: None,
                });
            }
        };
        let mut copy = ShallowCopy::new(&config);
        for rule in &self.migrations {
            rule.apply(&mut config, Some(&mut copy))?;
        }
        let migrated = copy.changed(&config).then(|| config.clone());
        for rule in &self.transformations {
            rule.apply(&mut config, None)?;
        }
        Ok(NormalisedConfig {
            config: Value::Object(config),
            migrated,
        })
    }

    /// Runs the `validations` in order; the first failure is a system error naming the
    /// validator.
    pub fn validate(&self, config: &Value) -> Result<(), EngineError> {
        self.validations.iter().try_for_each(|v| v.validate(config))
    }

    /// Rules that `sluice validate` should warn about, each with where it is: they are valid,
    /// but the reference fails with them whenever they are reached.
    pub fn warnings(spec: Option<&model::Spec>) -> Vec<(ManifestPath, String)> {
        let Some(rules) = spec.and_then(|s| s.config_normalization_rules.as_ref()) else {
            return Vec::new();
        };
        let root = ManifestPath::root()
            .key("spec")
            .key("config_normalization_rules");
        let mut warnings = Vec::new();
        let mut remap = |t: &model::ConfigTransformation, at: ManifestPath| {
            if let model::ConfigTransformation::ConfigRemapField(remap) = t {
                if let model::StringOrObject::String(_) = remap.map {
                    warnings.push((
                        at.key("map"),
                        "a string `map` is not interpolated by the reference, which fails when it \
                         finds the field; write the mapping itself"
                            .to_owned(),
                    ));
                }
            }
        };
        for (i, migration) in rules.config_migrations.iter().flatten().enumerate() {
            for (j, t) in migration.transformations.iter().enumerate() {
                remap(
                    t,
                    root.key("config_migrations")
                        .index(i)
                        .key("transformations")
                        .index(j),
                );
            }
        }
        for (i, t) in rules.transformations.iter().flatten().enumerate() {
            remap(t, root.key("transformations").index(i));
        }
        for (i, validation) in rules.validations.iter().flatten().enumerate() {
            let at = root.key("validations").index(i);
            let strategy = match validation {
                model::ConfigValidator::PredicateValidator(predicate) => {
                    warnings.push((
                        at.clone(),
                        "the reference fails every check, discover and read with a \
                         PredicateValidator among the validations (it calls it with the config, \
                         which it does not take); use a DpathValidator"
                            .to_owned(),
                    ));
                    &predicate.validation_strategy
                }
                model::ConfigValidator::DpathValidator(dpath) => &dpath.validation_strategy,
            };
            if let model::ValidationStrategy::ValidateAdheresToSchema(schema) = strategy {
                if let model::StringOrObject::String(_) = schema.base_schema {
                    warnings.push((
                        at.key("validation_strategy").key("base_schema"),
                        "a string `base_schema` is not interpolated by the reference, so \
                         validating with it always fails; write the schema as an object"
                            .to_owned(),
                    ));
                }
            }
        }
        warnings
    }
}

fn build_error(path: &ManifestPath, message: impl std::fmt::Display) -> EngineError {
    EngineError::in_manifest(path, message)
}

fn custom(component_type: &str, class_name: &str, path: &ManifestPath) -> EngineError {
    let unsupported = Unsupported {
        component_type: component_type.to_owned(),
        class_name: Some(class_name.to_owned()),
        path: path.clone(),
        stream: None,
    };
    EngineError::config(format!("sluice cannot run this manifest: {unsupported}"))
}

fn condition(
    source: Option<&str>,
    path: &ManifestPath,
) -> Result<Option<InterpolatedBoolean>, EngineError> {
    match source {
        None | Some("") => Ok(None),
        Some(source) => InterpolatedBoolean::new(source)
            .map(Some)
            .map_err(|e| build_error(&path.key("condition"), e)),
    }
}

fn valid_types(value_type: Option<&model::ValueType>) -> Vec<LiteralType> {
    match value_type {
        None => Vec::new(),
        Some(model::ValueType::String) => vec![LiteralType::String],
        Some(model::ValueType::Number) => vec![LiteralType::Float],
        Some(model::ValueType::Integer) => vec![LiteralType::Integer],
        Some(model::ValueType::Boolean) => vec![LiteralType::Boolean],
    }
}

fn templates(items: &[String], path: &ManifestPath) -> Result<Vec<Template>, EngineError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| Template::new(item).map_err(|e| build_error(&path.index(i), e)))
        .collect()
}

impl Rule {
    fn from_model(
        model: &model::ConfigTransformation,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        let transformation = match model {
            model::ConfigTransformation::ConfigAddFields(add) => {
                let fields = add
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, field)| {
                        let at = path.key("fields").index(i);
                        if field.path.is_empty() {
                            return Err(build_error(
                                &at.key("path"),
                                "Expected a non-zero-length path for the AddFields transformation",
                            ));
                        }
                        Ok(AddedField {
                            path: field.path.clone(),
                            path_value: Value::from(field.path.clone()),
                            value: Template::new(&field.value)
                                .map_err(|e| build_error(&at.key("value"), e))?,
                            valid_types: valid_types(field.value_type.as_ref()),
                            parameters: Value::Object(field.parameters.clone().unwrap_or_default()),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Transformation::AddFields(AddFields {
                    fields,
                    condition: condition(add.condition.as_deref(), path)?,
                })
            }
            model::ConfigTransformation::ConfigRemapField(remap) => {
                if remap.field_path.is_empty() {
                    return Err(build_error(
                        &path.key("field_path"),
                        "field_path cannot be empty.",
                    ));
                }
                let map = match &remap.map {
                    model::StringOrObject::Map(map) => RemapMap::Mapping(
                        InterpolatedMapping::new(map)
                            .map_err(|e| build_error(&path.key("map"), e))?,
                    ),
                    model::StringOrObject::String(_) => RemapMap::Text,
                };
                Transformation::RemapField(RemapField {
                    field_path: templates(&remap.field_path, &path.key("field_path"))?,
                    map,
                })
            }
            model::ConfigTransformation::ConfigRemoveFields(remove) => {
                Transformation::RemoveFields(RemoveFields {
                    pointers: remove.field_pointers.clone(),
                    condition: condition(remove.condition.as_deref(), path)?,
                })
            }
            model::ConfigTransformation::CustomConfigTransformation(c) => {
                return Err(custom("CustomConfigTransformation", &c.class_name, path));
            }
        };
        Ok(Rule {
            path: path.clone(),
            transformation,
        })
    }

    fn name(&self) -> &'static str {
        match self.transformation {
            Transformation::AddFields(_) => "ConfigAddFields",
            Transformation::RemapField(_) => "ConfigRemapField",
            Transformation::RemoveFields(_) => "ConfigRemoveFields",
        }
    }

    /// Applies the rule; `copy` follows a migration for the reference's change test.
    fn apply(
        &self,
        config: &mut Map<String, Value>,
        copy: Option<&mut ShallowCopy>,
    ) -> Result<(), EngineError> {
        let mut noted = NoCopy;
        let copy: &mut dyn Observer = match copy {
            Some(copy) => copy,
            None => &mut noted,
        };
        let result = match &self.transformation {
            Transformation::AddFields(add) => add.apply(config, copy),
            Transformation::RemapField(remap) => remap.apply(config, copy),
            Transformation::RemoveFields(remove) => remove.apply(config, copy),
        };
        result.map_err(|detail| {
            EngineError::system(format!(
                "{} at {} failed on the config: {detail}",
                self.name(),
                self.path
            ))
        })
    }
}

/// Template contexts need the config as a value; the rules hold it as a map. Moving it into a
/// value and back costs nothing.
fn with_config_value<T>(config: &mut Map<String, Value>, f: impl FnOnce(&Value) -> T) -> T {
    let value = Value::Object(std::mem::take(config));
    let out = f(&value);
    if let Value::Object(map) = value {
        *config = map;
    }
    out
}

impl AddFields {
    fn apply(
        &self,
        config: &mut Map<String, Value>,
        copy: &mut dyn Observer,
    ) -> Result<(), String> {
        for field in &self.fields {
            // The value is worked out before the condition, which can read it.
            let value = with_config_value(config, |config| -> Result<Option<Value>, String> {
                let ctx = Context::new().config(config).parameters(&field.parameters);
                let value = field
                    .value
                    .render_as(&ctx, &field.valid_types)
                    .map_err(|e| e.to_string())?;
                if let Some(condition) = &self.condition {
                    let empty = Value::Object(Map::new());
                    let ctx = Context::new()
                        .config(config)
                        .parameters(&empty)
                        .with("value", &value)
                        .with("path", &field.path_value);
                    if !condition.eval(&ctx).map_err(|e| e.to_string())? {
                        return Ok(None);
                    }
                }
                Ok(Some(value))
            })?;
            let Some(value) = value else {
                continue;
            };
            let mut target = Value::Object(std::mem::take(config));
            let set = sluice_records::paths::set(&mut target, &field.path, value);
            if let Value::Object(map) = target {
                *config = map;
            }
            set?;
            let replaced = if field.path.len() == 1 {
                vec![field.path[0].clone()]
            } else {
                Vec::new()
            };
            copy.changed(config, &replaced);
        }
        Ok(())
    }
}

impl RemapField {
    fn apply(
        &self,
        config: &mut Map<String, Value>,
        copy: &mut dyn Observer,
    ) -> Result<(), String> {
        let (components, mapping) = with_config_value(config, |value| -> Result<_, String> {
            let empty = Value::Object(Map::new());
            let ctx = Context::new().config(value).parameters(&empty);
            let components = self
                .field_path
                .iter()
                .map(|t| t.render(&ctx).map_err(|e| e.to_string()))
                .collect::<Result<Vec<Value>, String>>()?;
            // Only string components can name a key; the reference stops at any other.
            let Some(keys) = components
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>()
            else {
                return Ok((None, None));
            };
            let (last, parents) = keys.split_last().expect("field_path is not empty");
            let mut current = value;
            for key in parents {
                match current.get(*key) {
                    Some(next @ Value::Object(_)) => current = next,
                    _ => return Ok((None, None)),
                }
            }
            let Some(found) = current.get(*last) else {
                return Ok((None, None));
            };
            let mapping = match &self.map {
                RemapMap::Mapping(mapping) => mapping.eval(&ctx, &[]).map_err(|e| e.to_string())?,
                RemapMap::Text => return Err("'str' object has no attribute 'items'".to_owned()),
            };
            let replacement = match found {
                Value::String(text) => mapping.get(text).cloned(),
                Value::Array(_) => return Err("unhashable type: 'list'".to_owned()),
                Value::Object(_) => return Err("unhashable type: 'dict'".to_owned()),
                // Map keys are strings: no other value equals one.
                _ => None,
            };
            let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            Ok((Some(keys), replacement))
        })?;
        let (Some(keys), Some(replacement)) = (components, mapping) else {
            return Ok(());
        };
        let (last, parents) = keys.split_last().expect("field_path is not empty");
        let mut current = &mut *config;
        for key in parents {
            match current.get_mut(key) {
                Some(Value::Object(next)) => current = next,
                _ => return Ok(()),
            }
        }
        current.insert(last.clone(), replacement);
        let replaced = if keys.len() == 1 {
            vec![keys[0].clone()]
        } else {
            Vec::new()
        };
        copy.changed(config, &replaced);
        Ok(())
    }
}

impl RemoveFields {
    fn apply(
        &self,
        config: &mut Map<String, Value>,
        copy: &mut dyn Observer,
    ) -> Result<(), String> {
        if let Some(condition) = &self.condition {
            let holds = with_config_value(config, |value| {
                let empty = Value::Object(Map::new());
                condition.eval(&Context::new().config(value).parameters(&empty))
            })
            .map_err(|e| e.to_string())?;
            if !holds {
                return Ok(());
            }
        }
        for pointer in &self.pointers {
            let before: Vec<String> = if pointer.len() == 1 {
                config.keys().cloned().collect()
            } else {
                Vec::new()
            };
            let mut target = Value::Object(std::mem::take(config));
            let removed = sluice_records::paths::delete(&mut target, pointer);
            if let Value::Object(map) = target {
                *config = map;
            }
            if removed > 0 {
                let replaced: Vec<String> = before
                    .into_iter()
                    .filter(|key| !config.contains_key(key))
                    .collect();
                copy.changed(config, &replaced);
            }
        }
        Ok(())
    }
}

impl Validation {
    fn from_model(
        model: &model::ConfigValidator,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        let strategy = |model: &model::ValidationStrategy| match model {
            model::ValidationStrategy::ValidateAdheresToSchema(schema) => Ok(SchemaStrategy {
                base_schema: schema.base_schema.clone(),
            }),
            model::ValidationStrategy::CustomValidationStrategy(c) => Err(custom(
                "CustomValidationStrategy",
                &c.class_name,
                &path.key("validation_strategy"),
            )),
        };
        Ok(match model {
            model::ConfigValidator::DpathValidator(dpath) => Validation::Dpath {
                path: path.clone(),
                field_path: templates(&dpath.field_path, &path.key("field_path"))?,
                strategy: strategy(&dpath.validation_strategy)?,
            },
            model::ConfigValidator::PredicateValidator(predicate) => {
                strategy(&predicate.validation_strategy)?;
                Validation::Predicate { path: path.clone() }
            }
        })
    }

    fn validate(&self, config: &Value) -> Result<(), EngineError> {
        match self {
            Validation::Dpath {
                path,
                field_path,
                strategy,
            } => {
                let fail = |detail: String| {
                    EngineError::system(format!("DpathValidator at {path}: {detail}"))
                };
                // The reference evaluates the path with an empty config.
                let empty = Value::Object(Map::new());
                let ctx = Context::new().config(&empty).parameters(&empty);
                let segments = field_path
                    .iter()
                    .map(|t| t.render(&ctx).map_err(|e| fail(e.to_string())))
                    .collect::<Result<Vec<Value>, _>>()?;
                if segments.is_empty() {
                    return Err(fail("Field path is empty".to_owned()));
                }
                if segments.iter().any(|s| s == "*") {
                    for value in sluice_records::paths::values(config, &segments) {
                        strategy.validate(value).map_err(fail)?;
                    }
                    return Ok(());
                }
                match sluice_records::paths::get(config, &segments) {
                    Ok(Some(value)) => strategy.validate(value).map_err(fail),
                    Ok(None) => {
                        let missing = python_str(&Value::Array(segments));
                        tracing::info!("Validation skipped. Key not found: {missing}");
                        Ok(())
                    }
                    Err(_) => Err(fail(format!(
                        "dpath.get() globs must match only one leaf: {}",
                        python_str(&Value::Array(segments))
                    ))),
                }
            }
            Validation::Predicate { path } => Err(EngineError::system(format!(
                "PredicateValidator at {path} cannot validate the config: the reference \
                 (airbyte-cdk 7.39.1) calls it with the config, which its validate() does not take \
                 (\"PredicateValidator.validate() takes 1 positional argument but 2 were given\"), \
                 so every check, discover and read with it fails"
            ))),
        }
    }
}

impl SchemaStrategy {
    fn validate(&self, value: &Value) -> Result<(), String> {
        let parsed;
        let value = match value {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|_| format!("Invalid JSON string: {text}"))?;
                &parsed
            }
            other => other,
        };
        let schema = match &self.base_schema {
            model::StringOrObject::Map(map) => Value::Object(map.clone()),
            model::StringOrObject::String(text) => {
                return Err(format!(
                    "{} is not of type 'object', 'boolean' (base_schema is a string, which the \
                     reference does not interpolate)",
                    python_str(&Value::Array(vec![Value::String(text.clone())]))
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                ));
            }
        };
        crate::config::check_against_schema(&schema, value)
            .map_err(|problem| format!("JSON schema validation error: {problem}"))
    }
}

/// Where a rule reports a change to the config it works on.
trait Observer {
    /// One change was made to `config`; it set or removed the top-level keys `replaced`, and
    /// changed nothing else at the top level (a deeper change happened inside a top-level value).
    fn changed(&mut self, config: &Map<String, Value>, replaced: &[String]);
}

/// Transformations after the migrations: nobody looks.
struct NoCopy;

impl Observer for NoCopy {
    fn changed(&mut self, _: &Map<String, Value>, _: &[String]) {}
}

/// The config the reference compares the migrated config with, to decide whether to announce
/// it. The reference migrates a shallow copy of the config it was given: a top-level value is
/// shared by both until a migration sets or removes that key, and a change made inside a shared
/// value shows in both.
#[derive(Debug)]
struct ShallowCopy {
    original: Map<String, Value>,
    shared: HashSet<String>,
}

impl ShallowCopy {
    fn new(config: &Map<String, Value>) -> Self {
        Self {
            original: config.clone(),
            shared: config.keys().cloned().collect(),
        }
    }

    /// Whether the migrated config differs from the original, as Python's `!=` tells.
    fn changed(&self, config: &Map<String, Value>) -> bool {
        !py_eq_maps(&self.original, config)
    }
}

impl Observer for ShallowCopy {
    fn changed(&mut self, config: &Map<String, Value>, replaced: &[String]) {
        for key in replaced {
            self.shared.remove(key);
        }
        for key in &self.shared {
            if let (Some(now), Some(was)) = (config.get(key), self.original.get_mut(key)) {
                if now != was {
                    *was = now.clone();
                }
            }
        }
    }
}

/// Python's `==` on decoded JSON: objects regardless of key order, numbers by value (`1 ==
/// 1.0`), and `True == 1`.
fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => py_eq_maps(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| py_eq(x, y))
        }
        (Value::Number(_) | Value::Bool(_), Value::Number(_) | Value::Bool(_)) => {
            match (exact(a), exact(b)) {
                (Some(x), Some(y)) => x == y,
                _ => number(a) == number(b),
            }
        }
        _ => a == b,
    }
}

fn py_eq_maps(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(key, x)| b.get(key).is_some_and(|y| py_eq(x, y)))
}

fn exact(value: &Value) -> Option<i128> {
    match value {
        Value::Bool(b) => Some(i128::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn rules(normalization: Value) -> Result<ConfigRules, EngineError> {
        let spec = model::Spec::from_node(
            &json!({"type": "Spec", "connection_specification": {"type": "object"},
                    "config_normalization_rules": normalization}),
            &ManifestPath::root().key("spec"),
        )
        .expect("a valid spec");
        ConfigRules::from_spec(Some(&spec))
    }

    fn migrations(transformations: Value) -> ConfigRules {
        rules(
            json!({"type": "ConfigNormalizationRules", "config_migrations": [
            {"type": "ConfigMigration", "transformations": transformations}]}),
        )
        .unwrap()
    }

    fn transformations(transformations: Value) -> ConfigRules {
        rules(json!({"type": "ConfigNormalizationRules", "transformations": transformations}))
            .unwrap()
    }

    fn validations(validations: Value) -> ConfigRules {
        rules(json!({"type": "ConfigNormalizationRules", "validations": validations})).unwrap()
    }

    fn add(path: Value, value: &str, condition: Option<&str>) -> Value {
        let mut add = json!({"type": "ConfigAddFields", "fields": [
            {"type": "AddedFieldDefinition", "path": path, "value": value}]});
        if let Some(condition) = condition {
            add["condition"] = json!(condition);
        }
        add
    }

    #[test]
    fn add_fields_moves_a_legacy_key_and_announces_the_change() {
        // source-slack's migration.
        let rules = migrations(json!([
            add(
                json!(["credentials", "api_token"]),
                "{{ config['api_token'] }}",
                Some("{{ config.get('api_token', False) }}")
            ),
            add(
                json!(["credentials", "option_title"]),
                "API Token Credentials",
                Some("{{ config.get('api_token', False) }}")
            ),
        ]));
        let out = rules
            .normalise(json!({"start_date": "2021-07-22T20:00:00Z", "api_token": "tok"}))
            .unwrap();
        let expected = json!({"start_date": "2021-07-22T20:00:00Z", "api_token": "tok",
            "credentials": {"api_token": "tok", "option_title": "API Token Credentials"}});
        assert_eq!(out.config, expected);
        assert_eq!(out.migrated.map(Value::Object), Some(expected));

        let current =
            json!({"credentials": {"api_token": "tok", "option_title": "API Token Credentials"}});
        let out = rules.normalise(current.clone()).unwrap();
        assert_eq!((out.config, out.migrated), (current, None));
    }

    #[test]
    fn add_fields_types_values_and_reads_value_and_path_in_its_condition() {
        let rules = migrations(json!([
            {"type": "ConfigAddFields", "fields": [
                {"type": "AddedFieldDefinition", "path": ["n"], "value": "{{ config['count'] }}", "value_type": "string"},
                {"type": "AddedFieldDefinition", "path": ["m"], "value": "{{ config['count'] }}"},
                {"type": "AddedFieldDefinition", "path": ["list", "1"], "value": "x"}]},
            add(json!(["skipped"]), "{{ 2 * 2 }}", Some("{{ value > 4 and path == ['skipped'] }}")),
            add(json!(["kept"]), "{{ 2 * 2 }}", Some("{{ value == 4 and path == ['kept'] }}")),
        ]));
        let out = rules.normalise(json!({"count": "5"})).unwrap();
        assert_eq!(
            out.config,
            json!({"count": "5", "n": "5", "m": 5, "list": [null, "x"], "kept": 4})
        );
    }

    #[test]
    fn add_fields_through_a_scalar_fails_naming_the_rule() {
        let rules = migrations(json!([
            {"type": "ConfigRemoveFields", "field_pointers": [["unused"]]},
            add(json!(["credentials", "api_token"]), "t", None),
        ]));
        let err = rules.normalise(json!({"credentials": "x"})).unwrap_err();
        assert_eq!(err.failure_type, sluice_protocol::FailureType::SystemError);
        assert!(
            err.message.starts_with(
                "ConfigAddFields at spec.config_normalization_rules.config_migrations[0].transformations[1] failed"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_empty_path_or_a_bad_template_is_a_config_error_at_its_path() {
        let err = rules(
            json!({"type": "ConfigNormalizationRules", "config_migrations": [
            {"type": "ConfigMigration", "transformations": [add(json!([]), "x", None)]}]}),
        )
        .unwrap_err();
        assert_eq!(err.failure_type, sluice_protocol::FailureType::ConfigError);
        assert!(
            err.message.contains(
                "spec.config_normalization_rules.config_migrations[0].transformations[0].fields[0].path"
            ),
            "{}",
            err.message
        );
        let err = rules(
            json!({"type": "ConfigNormalizationRules", "transformations": [
            add(json!(["a"]), "{{ config[ }}", None)]}),
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("spec.config_normalization_rules.transformations[0].fields[0].value"),
            "{}",
            err.message
        );
        let err = rules(
            json!({"type": "ConfigNormalizationRules", "transformations": [
            {"type": "ConfigRemapField", "field_path": [], "map": {}}]}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("field_path cannot be empty"),
            "{}",
            err.message
        );
    }

    #[test]
    fn custom_components_are_refused_by_name() {
        let err = rules(json!({"type": "ConfigNormalizationRules", "validations": [
            {"type": "DpathValidator", "field_path": ["api_url"], "validation_strategy":
                {"type": "CustomValidationStrategy", "class_name": "source_x.components.V"}}]}))
        .unwrap_err();
        assert!(
            err.message.contains("CustomValidationStrategy (class source_x.components.V) at spec.config_normalization_rules.validations[0].validation_strategy"),
            "{}",
            err.message
        );
    }

    #[test]
    fn remap_replaces_known_values_only() {
        let rules = migrations(json!([
            {"type": "ConfigRemapField", "field_path": ["region"],
             "map": {"EU": "eu-west", "US": "{{ config['us'] }}", "1": "one"}},
        ]));
        let out = rules
            .normalise(json!({"region": "US", "us": "us-east"}))
            .unwrap();
        assert_eq!(out.config["region"], "us-east");
        assert!(out.migrated.is_some());
        for unchanged in [
            json!({"region": "APAC"}),
            json!({"region": 1}),
            json!({"other": 1}),
        ] {
            let out = rules.normalise(unchanged.clone()).unwrap();
            assert_eq!((out.config, out.migrated), (unchanged, None));
        }
        let err = rules.normalise(json!({"region": ["EU"]})).unwrap_err();
        assert!(
            err.message.contains("unhashable type: 'list'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_change_inside_a_top_level_object_is_not_announced() {
        // The reference migrates a shallow copy: the nested change shows in both copies.
        let rules = migrations(json!([
            {"type": "ConfigRemapField", "field_path": ["credentials", "auth_type"],
             "map": {"Client": "oauth2.0"}},
        ]));
        let out = rules
            .normalise(json!({"credentials": {"auth_type": "Client"}}))
            .unwrap();
        assert_eq!(
            out.config,
            json!({"credentials": {"auth_type": "oauth2.0"}})
        );
        assert_eq!(out.migrated, None);

        // Added inside an existing object: not announced; a new top-level object: announced.
        let rules = migrations(json!([add(
            json!(["credentials", "auth_type"]),
            "token",
            None
        )]));
        let out = rules
            .normalise(json!({"credentials": {"token": "t"}}))
            .unwrap();
        assert_eq!(out.migrated, None);
        let out = rules.normalise(json!({"token": "t"})).unwrap();
        assert_eq!(
            out.migrated.map(Value::Object),
            Some(json!({"token": "t", "credentials": {"auth_type": "token"}}))
        );

        // A nested change, then the same key replaced: the original saw the nested change.
        let rules = migrations(json!([
            {"type": "ConfigAddFields", "fields": [
                {"type": "AddedFieldDefinition", "path": ["a", "x"], "value": "1"},
                {"type": "AddedFieldDefinition", "path": ["a"], "value": "{{ {'x': 1} }}"}]},
        ]));
        let out = rules.normalise(json!({"a": {}})).unwrap();
        assert_eq!(out.config, json!({"a": {"x": 1}}));
        assert_eq!(out.migrated, None, "{{'x': 1}} == {{'x': 1}} in Python");
    }

    #[test]
    fn remove_fields_takes_globs_and_a_condition_over_the_config() {
        let rules = migrations(json!([
            {"type": "ConfigRemoveFields", "field_pointers": [["legacy_*"], ["nested", "x"], [], ["absent"]]},
        ]));
        let out = rules
            .normalise(json!({"legacy_a": 1, "legacy_b": 2, "keep": 3, "nested": {"x": 1, "y": 2}}))
            .unwrap();
        assert_eq!(out.config, json!({"keep": 3, "nested": {"y": 2}}));
        assert_eq!(
            out.migrated.map(Value::Object),
            Some(json!({"keep": 3, "nested": {"y": 2}}))
        );

        let rules = transformations(json!([
            {"type": "ConfigRemoveFields", "field_pointers": [["token"]],
             "condition": "{{ config.get('auth') == 'oauth' }}"},
        ]));
        let out = rules
            .normalise(json!({"auth": "oauth", "token": "t"}))
            .unwrap();
        assert_eq!((out.config, out.migrated), (json!({"auth": "oauth"}), None));
        let out = rules
            .normalise(json!({"auth": "key", "token": "t"}))
            .unwrap();
        assert_eq!(out.config, json!({"auth": "key", "token": "t"}));
    }

    #[test]
    fn transformations_apply_after_migrations_and_are_not_announced() {
        let rules = rules(json!({"type": "ConfigNormalizationRules",
            "config_migrations": [{"type": "ConfigMigration", "description": "rename",
                "transformations": [add(json!(["b"]), "{{ config['a'] }}", None),
                                    {"type": "ConfigRemoveFields", "field_pointers": [["a"]]}]}],
            "transformations": [add(json!(["derived"]), "{{ config['b'] }}-x", None)]}))
        .unwrap();
        let out = rules.normalise(json!({"a": "v"})).unwrap();
        assert_eq!(out.config, json!({"b": "v", "derived": "v-x"}));
        assert_eq!(out.migrated.map(Value::Object), Some(json!({"b": "v"})));
    }

    #[test]
    fn an_empty_config_is_left_alone() {
        let rules = transformations(json!([add(json!(["x"]), "1", None)]));
        let out = rules.normalise(json!({})).unwrap();
        assert_eq!((out.config, out.migrated), (json!({}), None));
    }

    fn schema_validator(field_path: Value) -> Value {
        json!({"type": "DpathValidator", "field_path": field_path, "validation_strategy": {
            "type": "ValidateAdheresToSchema",
            "base_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}})
    }

    #[test]
    fn dpath_validator_checks_json_strings_and_objects_against_the_schema() {
        let rules = validations(json!([schema_validator(json!(["report"]))]));
        assert!(
            rules
                .validate(&json!({"report": "{\"name\": \"a\"}"}))
                .is_ok()
        );
        assert!(rules.validate(&json!({"report": {"name": "a"}})).is_ok());
        let err = rules
            .validate(&json!({"report": "{\"nom\": 1}"}))
            .unwrap_err();
        assert_eq!(err.failure_type, sluice_protocol::FailureType::SystemError);
        assert_eq!(
            err.message,
            "DpathValidator at spec.config_normalization_rules.validations[0]: JSON schema \
             validation error: 'name' is a required property"
        );
        let err = rules.validate(&json!({"report": "not json"})).unwrap_err();
        assert!(
            err.message.ends_with("Invalid JSON string: not json"),
            "{}",
            err.message
        );
        // Nothing at the path: skipped.
        assert!(rules.validate(&json!({"other": 1})).is_ok());
    }

    #[test]
    fn dpath_validator_star_checks_every_value_and_paths_see_an_empty_config() {
        let rules = validations(json!([schema_validator(json!(["reports", "*"]))]));
        assert!(
            rules
                .validate(&json!({"reports": [{"name": "a"}, "{\"name\": \"b\"}"]}))
                .is_ok()
        );
        assert!(
            rules
                .validate(&json!({"reports": [{"name": "a"}, {"x": 1}]}))
                .is_err()
        );
        assert!(rules.validate(&json!({"reports": []})).is_ok());

        // `config` is empty when the path is evaluated: this reads key "" and finds nothing.
        let rules = validations(json!([schema_validator(json!([
            "{{ config.get('key', '') }}"
        ]))]));
        assert!(
            rules
                .validate(&json!({"key": "report", "report": "bad"}))
                .is_ok()
        );

        let rules = validations(json!([schema_validator(json!(["re*"]))]));
        assert!(rules.validate(&json!({"report": {"name": "a"}})).is_ok());
        let err = rules
            .validate(&json!({"report": {}, "result": {}}))
            .unwrap_err();
        assert!(
            err.message.contains("must match only one leaf"),
            "{}",
            err.message
        );

        let rules = validations(json!([schema_validator(json!([]))]));
        assert!(
            rules
                .validate(&json!({}))
                .unwrap_err()
                .message
                .contains("Field path is empty")
        );
    }

    #[test]
    fn a_string_base_schema_and_a_predicate_validator_fail_as_in_the_reference() {
        let rules = validations(json!([{"type": "DpathValidator", "field_path": ["report"],
            "validation_strategy": {"type": "ValidateAdheresToSchema", "base_schema": "{\"type\": \"object\"}"}}]));
        assert!(rules.validate(&json!({})).is_ok());
        let err = rules.validate(&json!({"report": "{}"})).unwrap_err();
        assert!(
            err.message.contains("is not of type 'object', 'boolean'"),
            "{}",
            err.message
        );

        let predicate = json!([{"type": "PredicateValidator", "value": "{{ config['x'] }}",
            "validation_strategy": {"type": "ValidateAdheresToSchema", "base_schema": {"type": "string"}}}]);
        let rules = validations(predicate.clone());
        let err = rules.validate(&json!({"x": "a"})).unwrap_err();
        assert!(
            err.message.starts_with(
                "PredicateValidator at spec.config_normalization_rules.validations[0]"
            ),
            "{}",
            err.message
        );
        let spec = model::Spec::from_node(
            &json!({"type": "Spec", "connection_specification": {},
                    "config_normalization_rules": {"type": "ConfigNormalizationRules", "validations": predicate}}),
            &ManifestPath::root().key("spec"),
        )
        .unwrap();
        let warnings = ConfigRules::warnings(Some(&spec));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            warnings[0].0.to_string(),
            "spec.config_normalization_rules.validations[0]"
        );
    }

    #[test]
    fn python_equality_ignores_key_order_and_number_spelling() {
        assert!(py_eq(
            &json!({"a": 1, "b": [1.0, true]}),
            &json!({"b": [1, 1], "a": 1.0})
        ));
        assert!(!py_eq(&json!({"a": "1"}), &json!({"a": 1})));
        assert!(!py_eq(&json!({"a": null}), &json!({})));
    }
}
