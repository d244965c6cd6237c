//! `dynamic_streams`: streams made from a `stream_template` by a components resolver, as the
//! reference makes them each time it lists its streams (`discover`, `read`, `check`).
//!
//! A resolver yields one `components_values` mapping per stream: a record its retriever reads
//! (`HttpComponentsResolver`, which also gives each mapping the record's `stream_slice`), a
//! combination of values found in the config (`ConfigComponentsResolver` and its
//! `stream_config`s), or an entry of `list_of_parameters_for_stream`
//! (`ParametrizedComponentsResolver`). For each, a copy of the template gets every
//! `components_mapping` value at its `field_path` (dpath's `set`: only what exists is replaced,
//! unless `create_or_update` may create it), is transformed again as the manifest was (default
//! types, `$parameters`, the parent's winning with `use_parent_parameters`), then read into the
//! typed model and built like any stream of the manifest.

use crate::EngineError;
use crate::build::{Factory, StreamSlot, parent_stream_names};
use crate::slicing::SliceReader;
use crate::stream::Stream;
use crate::support::{Unsupported, is_supported, unsupported_components};
use futures_util::FutureExt;
use serde_json::{Map, Value, json};
use sluice_interp::{Context, InterpolatedBoolean, LiteralType, Template};
use sluice_manifest::model::{self, FromNode, StreamEntry};
use sluice_manifest::pyyaml::{SafeLoadError, safe_load};
use sluice_manifest::{Manifest, ManifestPath};
use sluice_protocol::FailureType;
use sluice_records::paths;
use std::collections::HashSet;

/// A stream an entry of `dynamic_streams` made.
#[derive(Debug)]
pub(crate) struct DynamicStream {
    /// The entry's `name`, or `dynamic_stream_{index}` when it has none: what a CheckStream's
    /// `dynamic_streams_check_configs` call it.
    pub definition: String,
    pub slot: StreamSlot,
}

/// The name the reference gives the streams of the `index`-th entry of `dynamic_streams`.
pub(crate) fn definition_name(manifest: &Manifest, index: usize) -> String {
    match manifest
        .resolved
        .get("dynamic_streams")
        .and_then(|d| d.get(index))
        .and_then(|d| d.get("name"))
    {
        Some(Value::String(name)) => name.clone(),
        Some(other) => sluice_interp::python_str(other),
        None => format!("dynamic_stream_{index}"),
    }
}

/// The entries of `dynamic_streams` whose resolver needs a component sluice cannot run, each
/// with what it needs: the streams they would make are missing.
pub(crate) fn unresolvable(manifest: &Manifest) -> Vec<(usize, Vec<Unsupported>)> {
    let unsupported = unsupported_components(manifest);
    let count = manifest.model.dynamic_streams.as_ref().map_or(0, Vec::len);
    (0..count)
        .filter_map(|index| {
            let resolver = resolver_path(index);
            let needs: Vec<Unsupported> = unsupported
                .iter()
                .filter(|u| u.path.starts_with(&resolver))
                .cloned()
                .collect();
            (!needs.is_empty()).then_some((index, needs))
        })
        .collect()
}

fn definition_path(index: usize) -> ManifestPath {
    ManifestPath::root().key("dynamic_streams").index(index)
}

fn resolver_path(index: usize) -> ManifestPath {
    definition_path(index).key("components_resolver")
}

/// A stream config a resolver made, transformed and typed, not built yet.
struct Generated {
    definition: String,
    template_path: ManifestPath,
    name: String,
    entry: StreamEntry,
    /// Components of the stream sluice cannot run (it is then kept aside).
    cannot_run: Vec<Unsupported>,
}

/// Resolves every entry of `dynamic_streams` (those whose resolver sluice cannot run are left
/// out; see [`unresolvable`]) and builds the streams they make, in the reference's order.
pub(crate) async fn resolve(
    manifest: &Manifest,
    factory: &Factory,
) -> Result<Vec<DynamicStream>, EngineError> {
    let count = manifest.model.dynamic_streams.as_ref().map_or(0, Vec::len);
    let skipped: Vec<usize> = unresolvable(manifest).into_iter().map(|(i, _)| i).collect();
    let mut generated = Vec::new();
    let mut seen = HashSet::new();
    for index in (0..count).filter(|i| !skipped.contains(i)) {
        generated.extend(generate(manifest, factory, index, &mut seen).await?);
    }
    build_all(manifest, factory, generated)
}

/// Resolves one entry of `dynamic_streams` alone and builds its streams.
async fn resolve_one(
    manifest: &Manifest,
    factory: &Factory,
    index: usize,
) -> Result<Vec<DynamicStream>, EngineError> {
    let generated = generate(manifest, factory, index, &mut HashSet::new()).await?;
    build_all(manifest, factory, generated)
}

/// The stream configs the `index`-th entry of `dynamic_streams` makes, typed; `seen` holds
/// the names of the dynamic streams made so far.
async fn generate(
    manifest: &Manifest,
    factory: &Factory,
    index: usize,
    seen: &mut HashSet<String>,
) -> Result<Vec<Generated>, EngineError> {
    let Some(definition) = manifest
        .model
        .dynamic_streams
        .as_ref()
        .and_then(|d| d.get(index))
    else {
        return Ok(Vec::new());
    };
    let path = definition_path(index);
    let resolved = manifest
        .resolved
        .get("dynamic_streams")
        .and_then(|d| d.get(index));
    let template = match resolved.and_then(|d| d.get("stream_template")) {
        Some(Value::Object(template)) => template.clone(),
        _ => {
            return Err(EngineError::in_manifest(
                &path.key("stream_template"),
                "a stream template must be a mapping",
            ));
        }
    };
    let name = definition_name(manifest, index);
    let resolver = Resolver::build(
        &definition.components_resolver,
        resolved.and_then(|d| d.get("components_resolver")),
        resolved.and_then(|d| d.get("name")),
        factory,
        &resolver_path(index),
    )?;
    let configs = resolver
        .stream_configs(&template, factory.config())
        .await
        .map_err(|e| in_resolver(&resolver_path(index), e))?;
    let use_parent_parameters = definition.use_parent_parameters.unwrap_or(true);
    configs
        .into_iter()
        .map(|stream_config| {
            typed_stream(
                stream_config,
                &name,
                &path.key("stream_template"),
                use_parent_parameters,
                resolver.is_config(),
                seen,
            )
        })
        .collect()
}

/// Builds the streams made, as the manifest's own are built (a parent's responses are cached
/// when a stream of the manifest or of `dynamic_streams` reads it as a parent).
fn build_all(
    manifest: &Manifest,
    factory: &Factory,
    generated: Vec<Generated>,
) -> Result<Vec<DynamicStream>, EngineError> {
    let parent_names = parent_stream_names(
        manifest
            .model
            .streams
            .iter()
            .flatten()
            .chain(generated.iter().map(|g| &g.entry)),
    );
    let builder = factory.builder(parent_names);
    let mut streams = Vec::with_capacity(generated.len());
    for stream in generated {
        let slot = if stream.cannot_run.is_empty() {
            let built = match &stream.entry {
                StreamEntry::DeclarativeStream(s) => builder.stream(s, &stream.template_path),
                StreamEntry::StateDelegatingStream(s) => {
                    builder.state_delegating_stream(s, &stream.template_path)
                }
                StreamEntry::ConditionalStreams(_) => Err(EngineError::in_manifest(
                    &stream.template_path,
                    "a stream template cannot be a ConditionalStreams",
                )),
            };
            let built = built.map_err(|e| EngineError {
                failure_type: FailureType::SystemError,
                message: format!(
                    "{} (building the stream '{}' of {})",
                    e.message,
                    stream.name,
                    stream.template_path.parent()
                ),
                ..e
            })?;
            StreamSlot::Ready(Box::new(built))
        } else {
            let missing: Vec<&Unsupported> = stream.cannot_run.iter().collect();
            let error = crate::build::cannot_run_stream(&missing);
            let model = match &stream.entry {
                StreamEntry::DeclarativeStream(s) => Some(&**s),
                StreamEntry::StateDelegatingStream(s) => Some(&s.full_refresh_stream),
                StreamEntry::ConditionalStreams(_) => None,
            };
            let unrunnable = builder.unrunnable(stream.name, model, &stream.template_path, error);
            StreamSlot::Unrunnable(Box::new(unrunnable))
        };
        streams.push(DynamicStream {
            definition: stream.definition,
            slot,
        });
    }
    Ok(streams)
}

/// What `sluice validate` finds wrong with `dynamic_streams` without reaching an API: a
/// resolver that does not build, and, for the resolvers that need no API, a stream they make
/// from the (sample) config that does not build.
pub(crate) fn problems(manifest: &Manifest, factory: &Factory) -> Vec<EngineError> {
    let Some(definitions) = manifest.model.dynamic_streams.as_ref() else {
        return Vec::new();
    };
    let skipped: Vec<usize> = unresolvable(manifest).into_iter().map(|(i, _)| i).collect();
    let mut problems = Vec::new();
    for (index, definition) in definitions.iter().enumerate() {
        if skipped.contains(&index) {
            continue;
        }
        let resolved = manifest
            .resolved
            .get("dynamic_streams")
            .and_then(|d| d.get(index));
        let built = Resolver::build(
            &definition.components_resolver,
            resolved.and_then(|d| d.get("components_resolver")),
            resolved.and_then(|d| d.get("name")),
            factory,
            &resolver_path(index),
        );
        match built {
            Err(error) => problems.push(error),
            Ok(Resolver::Http { .. }) => {}
            Ok(_) => {
                // Nothing to await: these resolvers read no API.
                let resolved = resolve_one(manifest, factory, index).now_or_never();
                if let Some(Err(error)) = resolved {
                    problems.push(error);
                }
            }
        }
    }
    problems
}

/// Names where an error of a resolver comes from.
fn in_resolver(path: &ManifestPath, error: EngineError) -> EngineError {
    EngineError {
        message: format!("{path}: {}", error.message),
        ..error
    }
}

/// A stream config made by a resolver, transformed again as the reference does, checked for a
/// string and unique name, and read into the typed model.
fn typed_stream(
    stream_config: Map<String, Value>,
    definition: &str,
    template_path: &ManifestPath,
    use_parent_parameters: bool,
    from_config: bool,
    seen: &mut HashSet<String>,
) -> Result<Generated, EngineError> {
    let mut stream = sluice_manifest::propagate::propagate_component(
        "",
        stream_config,
        &Map::new(),
        use_parent_parameters,
    )
    .map_err(|e| EngineError::system(format!("{template_path}: {e}")))?;
    stream
        .entry("type")
        .or_insert_with(|| json!("DeclarativeStream"));
    let name = match stream.get("name") {
        Some(Value::String(name)) => name.clone(),
        other => {
            let shown = other.map_or("None".to_owned(), sluice_interp::python_str);
            return Err(EngineError::system(format!(
                "{template_path}: Expected stream name {shown} to be a string, got {}.",
                python_type(other)
            )));
        }
    };
    if !seen.insert(name.clone()) {
        let (advice, failure_type) = if from_config {
            ("Please check your configuration.", FailureType::ConfigError)
        } else {
            ("Please contact Airbyte Support.", FailureType::SystemError)
        };
        let message = format!("Dynamic streams list contains a duplicate name: {name}. {advice}");
        return Err(EngineError::new(failure_type, message.clone()).with_internal(message));
    }
    let cannot_run: Vec<Unsupported> = sluice_manifest::components(&Value::Object(stream.clone()))
        .into_iter()
        .filter(|c| !is_supported(&c.component_type))
        .map(|c| Unsupported {
            component_type: c.component_type,
            class_name: c.class_name,
            path: template_path.join(&c.path),
            stream: Some(name.clone()),
        })
        .collect();
    let entry = match typed_with_coercion(Value::Object(stream), template_path) {
        Ok(model::Stream::DeclarativeStream(s)) => StreamEntry::DeclarativeStream(s),
        Ok(model::Stream::StateDelegatingStream(s)) => StreamEntry::StateDelegatingStream(s),
        Err(e) => {
            return Err(EngineError::system(format!(
                "{e} (in the stream '{name}' made from this template)"
            )));
        }
    };
    Ok(Generated {
        definition: definition.to_owned(),
        template_path: template_path.clone(),
        name,
        entry,
        cannot_run,
    })
}

/// Reads a made stream into the typed model as the reference's pydantic models read it: no
/// schema validates it (the manifest's was validated before its values were mapped in), and a
/// number or a boolean where a string is expected becomes its Python text (`True`, `5`), as
/// pydantic coerces it. A value mapped in from YAML (`yes` -> true) thus still fits a string
/// field, such as a request parameter.
fn typed_with_coercion(
    mut stream: Value,
    template_path: &ManifestPath,
) -> Result<model::Stream, sluice_manifest::ManifestError> {
    // Each round fixes one value; a stream has far fewer fields than this.
    for _ in 0..256 {
        let error = match model::Stream::from_node(&stream, template_path) {
            Ok(typed) => return Ok(typed),
            Err(error) => error,
        };
        let coercible = error.kind == sluice_manifest::ManifestErrorKind::InvalidValue
            && error.message.starts_with("expected a string");
        let slot = error
            .path
            .strip_prefix(template_path)
            .and_then(|at| stream.pointer_mut(&at.json_pointer()))
            .filter(|slot| coercible && (slot.is_number() || slot.is_boolean()));
        match slot {
            Some(slot) => *slot = Value::String(sluice_interp::python_str(slot)),
            None => return Err(error),
        }
    }
    model::Stream::from_node(&stream, template_path)
}

/// Python's `type(value)` as it prints.
fn python_type(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "<class 'NoneType'>",
        Some(Value::Bool(_)) => "<class 'bool'>",
        Some(Value::Number(n)) if n.is_f64() => "<class 'float'>",
        Some(Value::Number(_)) => "<class 'int'>",
        Some(Value::String(_)) => "<class 'str'>",
        Some(Value::Array(_)) => "<class 'list'>",
        Some(Value::Object(_)) => "<class 'dict'>",
    }
}

/// A components resolver, ready to give the stream configs.
enum Resolver {
    /// Records of a retriever, each read with its slice.
    Http {
        stream: Box<Stream>,
        mappings: Vec<Mapping>,
    },
    Config {
        stream_configs: Vec<ConfigPointer>,
        mappings: Vec<Mapping>,
    },
    Parametrized {
        values: Vec<Map<String, Value>>,
        mappings: Vec<Mapping>,
    },
}

/// How a resolver treats a rendered value before setting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueParsing {
    /// Set as rendered (`HttpComponentsResolver`).
    AsRendered,
    /// YAML-parsed unless it is a string the mapping types as a string; PyYAML's scanner
    /// errors about `%` and tabs keep the text (`ConfigComponentsResolver`).
    YamlLenient,
    /// Always YAML-parsed; only a parser error keeps the text
    /// (`ParametrizedComponentsResolver`).
    YamlStrict,
}

impl Resolver {
    fn build(
        resolver: &model::ComponentsResolver,
        resolved: Option<&Value>,
        definition_name: Option<&Value>,
        factory: &Factory,
        path: &ManifestPath,
    ) -> Result<Self, EngineError> {
        use model::ComponentsResolver as R;
        let mappings_path = path.key("components_mapping");
        match resolver {
            R::HttpComponentsResolver(http) => {
                let mappings = Mapping::all(&http.components_mapping, &mappings_path, false)?;
                // The resolver's retriever as a stream of its own, named after the entry: no
                // cursor, no transformations, no schema to normalise records by.
                let name = match definition_name {
                    Some(Value::String(name)) if !name.is_empty() => name.clone(),
                    _ => "__http_components_resolver".to_owned(),
                };
                let retriever = resolved
                    .and_then(|r| r.get("retriever"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let node = json!({
                    "type": "DeclarativeStream",
                    "name": name,
                    "retriever": retriever,
                    "schema_loader": {"type": "InlineSchemaLoader", "schema": {}},
                });
                let stream = model::DeclarativeStream::from_node(&node, path)?;
                let stream = factory.builder(HashSet::new()).stream(&stream, path)?;
                Ok(Resolver::Http {
                    stream: Box::new(stream),
                    mappings,
                })
            }
            R::ConfigComponentsResolver(config) => {
                let mappings = Mapping::all(&config.components_mapping, &mappings_path, true)?;
                let at_configs = path.key("stream_config");
                let stream_configs = match &config.stream_config {
                    model::StreamConfigs::StreamConfig(one) => {
                        vec![ConfigPointer::build(one, &at_configs)?]
                    }
                    model::StreamConfigs::List(many) => many
                        .iter()
                        .enumerate()
                        .map(|(i, one)| ConfigPointer::build(one, &at_configs.index(i)))
                        .collect::<Result<_, _>>()?,
                };
                Ok(Resolver::Config {
                    stream_configs,
                    mappings,
                })
            }
            R::ParametrizedComponentsResolver(parametrized) => {
                let mappings =
                    Mapping::all(&parametrized.components_mapping, &mappings_path, false)?;
                Ok(Resolver::Parametrized {
                    values: parametrized
                        .stream_parameters
                        .list_of_parameters_for_stream
                        .clone(),
                    mappings,
                })
            }
        }
    }

    fn is_config(&self) -> bool {
        matches!(self, Resolver::Config { .. })
    }

    /// The stream configs: the template with each set of components values mapped in.
    async fn stream_configs(
        &self,
        template: &Map<String, Value>,
        config: &Value,
    ) -> Result<Vec<Map<String, Value>>, EngineError> {
        let template_value = Value::Object(template.clone());
        let mut out = Vec::new();
        match self {
            Resolver::Http { stream, mappings } => {
                let (reader, mut source) = SliceReader::open(stream, &Map::new()).await?;
                while let Some(slice) = source.next_slice(&reader).await? {
                    let stream_slice = slice.template_value();
                    let mut pages = reader.pages(&slice);
                    let key = reader.cursor().slice_key(&slice);
                    while let Some(page) = reader.next_page(&mut pages, &key).await? {
                        for record in page {
                            let values = record.into_value();
                            let vars = Variables {
                                config,
                                template: &template_value,
                                components_values: &values,
                                stream_slice: Some(&stream_slice),
                            };
                            out.push(map_values(
                                template,
                                mappings,
                                &vars,
                                ValueParsing::AsRendered,
                            )?);
                        }
                    }
                }
            }
            Resolver::Config {
                stream_configs,
                mappings,
            } => {
                for values in config_combinations(stream_configs, config)? {
                    let values = Value::Object(values);
                    let parsing = ValueParsing::YamlLenient;
                    out.push(map_components_values(
                        template,
                        &template_value,
                        mappings,
                        config,
                        &values,
                        parsing,
                    )?);
                }
            }
            Resolver::Parametrized { values, mappings } => {
                for values in values {
                    let values = Value::Object(values.clone());
                    let parsing = ValueParsing::YamlStrict;
                    out.push(map_components_values(
                        template,
                        &template_value,
                        mappings,
                        config,
                        &values,
                        parsing,
                    )?);
                }
            }
        }
        Ok(out)
    }
}

/// What a mapping's templates see.
struct Variables<'v> {
    config: &'v Value,
    template: &'v Value,
    components_values: &'v Value,
    stream_slice: Option<&'v Value>,
}

/// One `ComponentMappingDefinition`.
struct Mapping {
    path: ManifestPath,
    field_path: Vec<Template>,
    value: Template,
    value_type: Option<LiteralType>,
    create_or_update: bool,
    condition: Option<InterpolatedBoolean>,
    parameters: Value,
}

impl Mapping {
    fn all(
        mappings: &[model::ComponentMappingDefinition],
        path: &ManifestPath,
        conditions_allowed: bool,
    ) -> Result<Vec<Mapping>, EngineError> {
        mappings
            .iter()
            .enumerate()
            .map(|(i, m)| Mapping::build(m, &path.index(i), conditions_allowed))
            .collect()
    }

    fn build(
        mapping: &model::ComponentMappingDefinition,
        path: &ManifestPath,
        conditions_allowed: bool,
    ) -> Result<Mapping, EngineError> {
        let invalid =
            |field: &str, e: &dyn std::fmt::Display| EngineError::in_manifest(&path.key(field), e);
        let condition = match mapping.condition.as_deref().filter(|c| !c.is_empty()) {
            Some(_) if !conditions_allowed => {
                return Err(EngineError::in_manifest(
                    &path.key("condition"),
                    "`condition` is only supported for `ConfigComponentsResolver`",
                ));
            }
            Some(condition) => {
                Some(InterpolatedBoolean::new(condition).map_err(|e| invalid("condition", &e))?)
            }
            None => None,
        };
        let field_path = templates(&mapping.field_path, &path.key("field_path"))?;
        let value_type = mapping.value_type.as_ref().map(|t| match t {
            model::ValueType::String => LiteralType::String,
            model::ValueType::Number => LiteralType::Float,
            model::ValueType::Integer => LiteralType::Integer,
            model::ValueType::Boolean => LiteralType::Boolean,
        });
        Ok(Mapping {
            path: path.clone(),
            field_path,
            value: Template::new(&mapping.value).map_err(|e| invalid("value", &e))?,
            value_type,
            create_or_update: mapping.create_or_update.unwrap_or(false),
            condition,
            parameters: Value::Object(mapping.parameters.clone().unwrap_or_default()),
        })
    }
}

/// A copy of `template` with every mapping applied for one set of components values.
/// [`map_values`] for a resolver whose values come from the config or the manifest, not from
/// a stream slice.
fn map_components_values(
    template: &Map<String, Value>,
    template_value: &Value,
    mappings: &[Mapping],
    config: &Value,
    values: &Value,
    parsing: ValueParsing,
) -> Result<Map<String, Value>, EngineError> {
    let vars = Variables {
        config,
        template: template_value,
        components_values: values,
        stream_slice: None,
    };
    map_values(template, mappings, &vars, parsing)
}

fn map_values(
    template: &Map<String, Value>,
    mappings: &[Mapping],
    vars: &Variables<'_>,
    parsing: ValueParsing,
) -> Result<Map<String, Value>, EngineError> {
    let mut updated = Value::Object(template.clone());
    for mapping in mappings {
        let failed = |e: &dyn std::fmt::Display| {
            EngineError::system(format!("manifest at {}: {e}", mapping.path))
        };
        let mut ctx = Context::new()
            .config(vars.config)
            .parameters(&mapping.parameters)
            .with("components_values", vars.components_values)
            .with("stream_template_config", vars.template);
        if let Some(slice) = vars.stream_slice {
            ctx = ctx.stream_slice(slice);
        }
        if let Some(condition) = &mapping.condition {
            if !condition.eval(&ctx).map_err(|e| failed(&e))? {
                continue;
            }
        }
        let valid_types: &[LiteralType] = match &mapping.value_type {
            Some(t) => std::slice::from_ref(t),
            None => &[],
        };
        let value = mapping
            .value
            .render_as(&ctx, valid_types)
            .map_err(|e| failed(&e))?;
        let path = mapping
            .field_path
            .iter()
            .map(|t| t.render(&ctx))
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| failed(&e))?;
        let keeps_string = value.is_string() && valid_types == [LiteralType::String];
        let value = match parsing {
            ValueParsing::AsRendered => value,
            ValueParsing::YamlLenient if keeps_string => value,
            ValueParsing::YamlLenient | ValueParsing::YamlStrict => {
                parse_yaml(value, parsing == ValueParsing::YamlLenient).map_err(|e| failed(&e))?
            }
        };
        let changed = paths::set_existing(&mut updated, &path, &value).map_err(|_| {
            failed(&format!(
                "Invalid glob. Only one '**' is permitted per glob: {}",
                sluice_interp::python_str(&Value::Array(path.clone()))
            ))
        })?;
        let creates = parsing != ValueParsing::AsRendered && mapping.create_or_update;
        if changed == 0 && creates && sluice_interp::is_truthy(&value) {
            let keys: Vec<String> = path.iter().map(path_key).collect();
            paths::set(&mut updated, &keys, value).map_err(|e| failed(&e))?;
        }
    }
    match updated {
        Value::Object(map) => Ok(map),
        _ => unreachable!("the template stays a mapping"),
    }
}

/// A rendered path segment as a key `dpath.new` creates.
fn path_key(segment: &Value) -> String {
    match segment {
        Value::String(text) => text.clone(),
        other => sluice_interp::python_str(other),
    }
}

/// The resolvers' `_parse_yaml_if_possible`: a string becomes what `yaml.safe_load` makes of
/// it; when YAML refuses it, the text stays as it is for a parser error (and, when `lenient`,
/// for the scanner errors about `%` and tabs), and anything else fails.
fn parse_yaml(value: Value, lenient: bool) -> Result<Value, SafeLoadError> {
    let Value::String(text) = value else {
        return Ok(value);
    };
    match safe_load(&text) {
        Ok(parsed) => Ok(parsed),
        Err(SafeLoadError::Parser(_)) => Ok(Value::String(text)),
        Err(SafeLoadError::Scanner(message))
            if lenient
                && (message
                    .contains("expected alphabetic or numeric character, but found '%'")
                    || message.contains("found character '\\t' that cannot start any token")) =>
        {
            Ok(Value::String(text))
        }
        Err(error) => Err(error),
    }
}

/// One `StreamConfig`: where in the config a resolver finds stream values.
struct ConfigPointer {
    path: ManifestPath,
    configs_pointer: Vec<Template>,
    default_values: Vec<Value>,
    parameters: Value,
}

impl ConfigPointer {
    fn build(config: &model::StreamConfig, path: &ManifestPath) -> Result<Self, EngineError> {
        let configs_pointer = templates(&config.configs_pointer, &path.key("configs_pointer"))?;
        Ok(Self {
            path: path.clone(),
            configs_pointer,
            default_values: config
                .default_values
                .iter()
                .flatten()
                .cloned()
                .map(Value::Object)
                .collect(),
            parameters: Value::Object(config.parameters.clone().unwrap_or_default()),
        })
    }

    /// The values at the pointer (a list gives its items, anything else itself; nothing found
    /// gives none), then the default values.
    fn values(&self, config: &Value) -> Result<Vec<Value>, EngineError> {
        let ctx = Context::new().config(config).parameters(&self.parameters);
        let glob = self
            .configs_pointer
            .iter()
            .map(|t| t.render(&ctx))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::in_manifest(&self.path, e))?;
        let mut values = match paths::get(config, &glob) {
            Ok(None) => Vec::new(),
            Ok(Some(Value::Array(items))) => items.clone(),
            Ok(Some(value)) => vec![value.clone()],
            Err(paths::MoreThanOne) => {
                return Err(EngineError::config(format!(
                    "manifest at {}: dpath.get() globs must match only one leaf: the configs_pointer matches several values of the config",
                    self.path.key("configs_pointer")
                )));
            }
        };
        values.extend(self.default_values.iter().cloned());
        Ok(values)
    }
}

/// Every combination of one value from each `StreamConfig` (their cartesian product, the first
/// varying slowest), each merged into one mapping: a mapping's keys go in as they are (later
/// ones winning), any other value goes in as `source_config_{i}`: `[index, value]`.
fn config_combinations(
    pointers: &[ConfigPointer],
    config: &Value,
) -> Result<Vec<Map<String, Value>>, EngineError> {
    let lists = pointers
        .iter()
        .map(|p| p.values(config))
        .collect::<Result<Vec<_>, _>>()?;
    let mut combinations: Vec<Vec<(usize, &Value)>> = vec![Vec::new()];
    for list in &lists {
        let mut next = Vec::with_capacity(combinations.len() * list.len());
        for combination in &combinations {
            for (index, value) in list.iter().enumerate() {
                let mut extended = combination.clone();
                extended.push((index, value));
                next.push(extended);
            }
        }
        combinations = next;
    }
    Ok(combinations
        .into_iter()
        .map(|combination| {
            let mut merged = Map::new();
            for (config_index, (index, value)) in combination.into_iter().enumerate() {
                match value {
                    Value::Object(map) => {
                        for (k, v) in map {
                            merged.insert(k.clone(), v.clone());
                        }
                    }
                    other => {
                        merged
                            .entry(format!("source_config_{config_index}"))
                            .or_insert_with(|| json!([index, other]));
                    }
                }
            }
            merged
        })
        .collect())
}

/// Each text of a list of templates compiled; an error names the item's path under `path`.
fn templates(sources: &[String], path: &ManifestPath) -> Result<Vec<Template>, EngineError> {
    sources
        .iter()
        .enumerate()
        .map(|(i, source)| {
            Template::new(source).map_err(|e| EngineError::in_manifest(&path.index(i), e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(node: Value) -> Mapping {
        let model =
            model::ComponentMappingDefinition::from_node(&node, &ManifestPath::root()).unwrap();
        Mapping::build(&model, &ManifestPath::parse("components_mapping[0]"), true).unwrap()
    }

    fn apply(
        template: Value,
        mappings: &[Mapping],
        values: Value,
        parsing: ValueParsing,
    ) -> Result<Value, EngineError> {
        let config = json!({"region": "eu"});
        let Value::Object(template) = template else {
            panic!()
        };
        let template_value = Value::Object(template.clone());
        let slice = json!({"base_id": "b1", "extra_fields": {"name": "Base One"}});
        let vars = Variables {
            config: &config,
            template: &template_value,
            components_values: &values,
            stream_slice: Some(&slice),
        };
        map_values(&template, mappings, &vars, parsing).map(Value::Object)
    }

    #[test]
    fn values_go_where_the_template_has_them() {
        let mappings = [
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["name"],
                "value": "{{ components_values.name }}"}),
            ),
            mapping(json!({"type": "ComponentMappingDefinition",
                "field_path": ["retriever", "requester", "path"],
                "value": "{{ stream_slice.base_id }}/{{ components_values.id }}"})),
            mapping(json!({"type": "ComponentMappingDefinition",
                "field_path": ["transformations", "0", "fields", "0", "value"],
                "value": "{{ stream_slice.extra_fields.name }}"})),
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["missing"],
                "value": "{{ components_values.id }}"}),
            ),
        ];
        let template = json!({"name": "", "retriever": {"requester": {"path": "x"}},
            "transformations": [{"fields": [{"value": "v"}]}]});
        let out = apply(
            template,
            &mappings,
            json!({"name": "users", "id": 7}),
            ValueParsing::AsRendered,
        )
        .unwrap();
        assert_eq!(out["name"], "users");
        assert_eq!(out["retriever"]["requester"]["path"], "b1/7");
        assert_eq!(out["transformations"][0]["fields"][0]["value"], "Base One");
        assert!(out.get("missing").is_none(), "set creates nothing: {out}");
    }

    #[test]
    fn create_or_update_creates_a_truthy_value_only() {
        let create = |field: &str, value: &str| {
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["a", field],
                "value": value, "create_or_update": true}),
            )
        };
        let mappings = [create("b", "{{ components_values.x }}"), create("c", "")];
        let out = apply(
            json!({}),
            &mappings,
            json!({"x": "yes"}),
            ValueParsing::YamlStrict,
        )
        .unwrap();
        // YAML makes `yes` true; the empty value is not created.
        assert_eq!(out, json!({"a": {"b": true}}));
        // The HTTP resolver never creates.
        let out = apply(
            json!({}),
            &mappings,
            json!({"x": "yes"}),
            ValueParsing::AsRendered,
        )
        .unwrap();
        assert_eq!(out, json!({}));
    }

    #[test]
    fn config_resolver_keeps_strings_typed_as_strings_and_honours_conditions() {
        let mappings = [
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["a"],
                "value": "{{ components_values.v }}", "value_type": "string"}),
            ),
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["b"],
                "value": "{{ components_values.v }}"}),
            ),
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["c"],
                "value": "set", "condition": "{{ components_values.get('flag') }}"}),
            ),
            mapping(
                json!({"type": "ComponentMappingDefinition", "field_path": ["d"],
                "value": "%Y-%m-%d"}),
            ),
        ];
        let template = json!({"a": "", "b": "", "c": "unset", "d": ""});
        let out = apply(
            template,
            &mappings,
            json!({"v": "on"}),
            ValueParsing::YamlLenient,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"a": "on", "b": true, "c": "unset", "d": "%Y-%m-%d"})
        );
        // The parametrized resolver fails on what YAML's scanner refuses.
        let error = apply(
            json!({"d": ""}),
            &mappings[3..],
            json!({}),
            ValueParsing::YamlStrict,
        )
        .unwrap_err();
        assert!(
            error.message.contains("components_mapping[0]"),
            "{}",
            error.message
        );
    }

    #[test]
    fn condition_is_refused_outside_the_config_resolver() {
        let model = model::ComponentMappingDefinition::from_node(
            &json!({"type": "ComponentMappingDefinition", "field_path": ["a"], "value": "x",
                "condition": "{{ true }}"}),
            &ManifestPath::root(),
        )
        .unwrap();
        let error = Mapping::build(
            &model,
            &ManifestPath::parse("dynamic_streams[0].components_resolver.components_mapping[0]"),
            false,
        )
        .err()
        .unwrap();
        assert!(error.message.contains(
            "dynamic_streams[0].components_resolver.components_mapping[0].condition: `condition` is only supported"
        ));
    }

    fn pointer(pointer: &[&str], defaults: Value) -> ConfigPointer {
        let node = json!({"type": "StreamConfig", "configs_pointer": pointer,
            "default_values": defaults, "$parameters": {"key": "reports"}});
        let model = model::StreamConfig::from_node(&node, &ManifestPath::root()).unwrap();
        ConfigPointer::build(&model, &ManifestPath::parse("stream_config")).unwrap()
    }

    #[test]
    fn config_values_combine_as_a_product() {
        let config = json!({
            "reports": [{"name": "a"}, {"name": "b"}],
            "regions": ["eu", "us"],
        });
        let pointers = [
            pointer(&["{{ parameters.key }}"], json!([{"name": "default"}])),
            pointer(&["regions"], json!([])),
        ];
        let combinations = config_combinations(&pointers, &config).unwrap();
        let shown: Vec<Value> = combinations.into_iter().map(Value::Object).collect();
        assert_eq!(
            shown,
            vec![
                json!({"name": "a", "source_config_1": [0, "eu"]}),
                json!({"name": "a", "source_config_1": [1, "us"]}),
                json!({"name": "b", "source_config_1": [0, "eu"]}),
                json!({"name": "b", "source_config_1": [1, "us"]}),
                json!({"name": "default", "source_config_1": [0, "eu"]}),
                json!({"name": "default", "source_config_1": [1, "us"]}),
            ]
        );
        // A pointer that finds nothing gives no stream, unless it has default values.
        let none = config_combinations(&[pointer(&["nothing"], json!([]))], &config).unwrap();
        assert!(none.is_empty());
        // A value that is not a list is one stream config.
        let one = config_combinations(&[pointer(&["regions", "0"], json!([]))], &config).unwrap();
        assert_eq!(
            one,
            vec![
                json!({"source_config_0": [0, "eu"]})
                    .as_object()
                    .unwrap()
                    .clone()
            ]
        );
    }

    #[test]
    fn generated_streams_are_typed_and_need_unique_string_names() {
        let mut seen = HashSet::new();
        let at = ManifestPath::parse("dynamic_streams[0].stream_template");
        let stream = json!({"type": "DeclarativeStream", "name": "users",
            "$parameters": {"path": "/users"},
            "retriever": {"type": "SimpleRetriever",
                "requester": {"type": "HttpRequester", "url_base": "https://x"},
                "record_selector": {"type": "RecordSelector",
                    "extractor": {"type": "DpathExtractor", "field_path": []}}}});
        let Value::Object(stream) = stream else {
            panic!()
        };
        let generated =
            typed_stream(stream.clone(), "tables", &at, true, false, &mut seen).unwrap();
        assert_eq!(generated.name, "users");
        let StreamEntry::DeclarativeStream(model) = &generated.entry else {
            panic!("a DeclarativeStream")
        };
        let model::Retriever::SimpleRetriever(retriever) = &model.retriever else {
            panic!()
        };
        let model::Requester::HttpRequester(requester) = &retriever.requester else {
            panic!()
        };
        assert_eq!(requester.path.as_deref(), Some("/users"));
        let duplicate = typed_stream(stream.clone(), "tables", &at, true, true, &mut seen)
            .err()
            .unwrap();
        assert_eq!(duplicate.failure_type, FailureType::ConfigError);
        assert!(duplicate.message.contains("duplicate name: users"));
        let mut unnamed = stream;
        unnamed.remove("name");
        let error = typed_stream(unnamed, "tables", &at, true, false, &mut HashSet::new())
            .err()
            .unwrap();
        assert!(
            error
                .message
                .contains("Expected stream name None to be a string"),
            "{}",
            error.message
        );
    }

    #[test]
    fn numbers_and_booleans_fit_string_fields_as_python_text() {
        let at = ManifestPath::parse("dynamic_streams[0].stream_template");
        let stream = json!({"type": "DeclarativeStream", "name": "s", "primary_key": 5,
            "retriever": {"type": "SimpleRetriever",
                "requester": {"type": "HttpRequester", "url_base": "https://x", "path": 7,
                    "request_parameters": {"active": true, "ratio": 0.5}},
                "record_selector": {"type": "RecordSelector",
                    "extractor": {"type": "DpathExtractor", "field_path": []}}}});
        let model::Stream::DeclarativeStream(stream) = typed_with_coercion(stream, &at).unwrap()
        else {
            panic!("a DeclarativeStream")
        };
        assert!(matches!(&stream.primary_key, Some(model::PrimaryKey::String(k)) if k == "5"));
        let model::Retriever::SimpleRetriever(retriever) = &stream.retriever else {
            panic!()
        };
        let model::Requester::HttpRequester(requester) = &retriever.requester else {
            panic!()
        };
        assert_eq!(requester.path.as_deref(), Some("7"));
        let shown = serde_json::to_value(&requester.request_parameters).unwrap();
        assert_eq!(shown, json!({"active": "True", "ratio": "0.5"}));
        // Anything else still fails, naming the path.
        let wrong = json!({"type": "DeclarativeStream", "name": "s",
            "retriever": {"type": "SimpleRetriever", "requester": ["not", "a", "requester"],
                "record_selector": {"type": "RecordSelector",
                    "extractor": {"type": "DpathExtractor", "field_path": []}}}});
        let error = typed_with_coercion(wrong, &at).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("dynamic_streams[0].stream_template.retriever.requester"),
            "{error}"
        );
    }
}
