//! `cargo xtask gen-schema`: write the manifest JSON Schema from the typed model.
//!
//! The schema comes from the model types (schemars), so it cannot drift from what sluice reads.

use crate::workspace;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// Where the schema goes, relative to the workspace root.
pub const OUTPUT: &str = "schemas/declarative_component_schema.json";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only check that the committed file is current; exit non-zero when it is stale.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(&schema())?;
    text.push('\n');
    workspace::write_or_check(
        &workspace::root().join(OUTPUT),
        &text,
        args.check,
        "cargo xtask gen-schema",
    )
}

/// The JSON Schema (draft 7) of a manifest, rooted at `DeclarativeSource`.
pub fn schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    sluice_manifest::model::add_definition_schemas(&mut generator);
    let root = generator.into_root_schema_for::<sluice_manifest::model::DeclarativeSource>();
    let mut value = root.to_value();
    tidy(&mut value);
    lead_with_identity(value)
}

/// Puts `$schema`, `title` and `description` first, where a reader looks for them.
fn lead_with_identity(value: Value) -> Value {
    let Value::Object(mut object) = value else {
        return value;
    };
    let mut ordered = Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(v) = object.remove(key) {
            ordered.insert(key.to_owned(), v);
        }
    }
    ordered.extend(object);
    Value::Object(ordered)
}

/// Makes the schema say what a manifest may contain rather than how Rust stores it: optional
/// fields are absent, not `null`, and numbers carry no Rust storage format.
fn tidy(value: &mut Value) {
    match value {
        Value::Object(object) => {
            drop_null_type(object);
            if matches!(
                object.get("format").and_then(Value::as_str),
                Some("double" | "int64" | "uint64" | "uint" | "int")
            ) {
                object.remove("format");
            }
            for child in object.values_mut() {
                tidy(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

fn drop_null_type(object: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [single] = types.as_slice() {
            let single = single.clone();
            object.insert("type".to_owned(), single);
        }
    }
    let null = serde_json::json!({ "type": "null" });
    if let Some(Value::Array(branches)) = object.get_mut("anyOf")
        && branches.contains(&null)
    {
        branches.retain(|b| *b != null);
        if let [single] = branches.as_slice() {
            let single = single.clone();
            object.remove("anyOf");
            if let Value::Object(inner) = single {
                for (k, v) in inner {
                    object.entry(k).or_insert(v);
                }
            }
        }
    }
}
