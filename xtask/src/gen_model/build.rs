//! Reading the component schema into the model description ([`Model`]).

use super::ir::*;
use super::names;
use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Builds the model of the whole schema: the root `DeclarativeSource` and every definition.
/// `notes` collects inline types the naming tables do not cover.
pub fn build(schema: &Value, notes: &mut Vec<String>) -> anyhow::Result<Model> {
    let definitions = schema
        .get("definitions")
        .and_then(Value::as_object)
        .context("the schema has no `definitions` object")?;
    let mut builder = Builder {
        items: Vec::new(),
        notes,
    };
    let mut names = vec!["DeclarativeSource".to_owned()];
    builder.object_struct("DeclarativeSource", schema, Some(false))?;
    for (name, definition) in definitions {
        builder
            .definition(name, definition)
            .with_context(|| format!("definition {name}"))?;
        names.push(name.clone());
    }
    let mut model = Model {
        items: builder.items,
        definitions: names,
    };
    box_struct_variants(&mut model);
    break_cycles(&mut model)?;
    Ok(model)
}

struct Builder<'n> {
    items: Vec<Item>,
    notes: &'n mut Vec<String>,
}

fn doc_of(schema: &Value) -> Doc {
    let text = |key: &str| {
        schema
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
    };
    let deprecated = schema
        .get("deprecated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Doc {
        title: text("title"),
        description: text("description"),
        default: schema.get("default").cloned(),
        deprecation: if deprecated {
            Some(text("deprecation_message").unwrap_or_else(|| "deprecated".to_owned()))
        } else {
            None
        },
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The validation keywords of a property, including those of its `anyOf` branches.
fn constraints_of(schema: &Value) -> Vec<Constraint> {
    let mut found = Vec::new();
    let mut collect = |s: &Value| {
        if let Some(n) = s.get("minimum").and_then(Value::as_f64) {
            found.push(Constraint::Minimum(n));
        }
        if let Some(n) = s.get("exclusiveMinimum").and_then(Value::as_f64) {
            found.push(Constraint::ExclusiveMinimum(n));
        }
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            found.push(Constraint::MinItems(n));
        }
        if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
            found.push(Constraint::UniqueItems);
        }
    };
    collect(schema);
    for branch in schema
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect(branch);
    }
    found
}

fn variant_name(ty: &Ty) -> String {
    match ty {
        Ty::String => "String".to_owned(),
        Ty::Integer => "Integer".to_owned(),
        Ty::Number => "Number".to_owned(),
        Ty::Boolean => "Boolean".to_owned(),
        Ty::Json => "Json".to_owned(),
        Ty::JsonObject | Ty::Map(_) => "Map".to_owned(),
        Ty::List(item) if matches!(**item, Ty::List(_)) => "ListOfLists".to_owned(),
        Ty::List(_) => "List".to_owned(),
        Ty::Named(name) => name.clone(),
    }
}

impl Builder<'_> {
    fn push_unique(&mut self, item: Item) -> anyhow::Result<()> {
        match self.items.iter_mut().find(|i| i.name() == item.name()) {
            None => self.items.push(item),
            Some(Item::Union(existing)) => {
                let Item::Union(new) = item else {
                    bail!("two types named {}", existing.name)
                };
                let mut a: Vec<String> = existing.variants.iter().map(|v| v.ty.rust()).collect();
                let mut b: Vec<String> = new.variants.iter().map(|v| v.ty.rust()).collect();
                a.sort();
                b.sort();
                if a != b {
                    bail!("two different unions would be named {}", existing.name);
                }
                existing.used_by.extend(new.used_by);
            }
            Some(existing) => {
                if !same_shape(existing, &item) {
                    bail!("two different types would be named {}", existing.name());
                }
            }
        }
        Ok(())
    }

    fn definition(&mut self, name: &str, schema: &Value) -> anyhow::Result<()> {
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let mut union = self.union(branches, name)?;
            union.name = name.to_owned();
            union.doc = doc_of(schema);
            union.used_by.clear();
            return self.push_unique(Item::Union(union));
        }
        if schema.get("enum").is_some() {
            let values = string_list(schema.get("enum"));
            return self.push_unique(Item::Enum(StringEnum {
                name: name.to_owned(),
                doc: doc_of(schema),
                values: values
                    .iter()
                    .map(|v| (names::enum_variant_name(v), v.clone()))
                    .collect(),
            }));
        }
        if schema.get("properties").is_none() {
            return self.push_unique(Item::Alias(Alias {
                name: name.to_owned(),
                doc: doc_of(schema),
                ty: Ty::JsonObject,
            }));
        }
        self.object_struct(name, schema, None)
    }

    /// A struct for an object schema with `properties`. `tag_required` overrides whether the
    /// `type` key must be present.
    fn object_struct(
        &mut self,
        name: &str,
        schema: &Value,
        tag_required: Option<bool>,
    ) -> anyhow::Result<()> {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required = string_list(schema.get("required"));
        let position = self.items.len();
        let tag = properties.get("type").and_then(|t| {
            let values = string_list(t.get("enum"));
            match values.as_slice() {
                [single] => Some(Tag {
                    value: single.clone(),
                    required: tag_required.unwrap_or(required.iter().any(|r| r == "type")),
                }),
                _ => None,
            }
        });
        let mut fields = Vec::new();
        for (key, property) in properties {
            if key == "type" && tag.is_some() {
                continue;
            }
            let rust_name = match key.as_str() {
                "$parameters" => "parameters".to_owned(),
                "type" => "r#type".to_owned(),
                other => other.to_owned(),
            };
            let ty = self
                .ty_of(property, &format!("{name}.{key}"))
                .with_context(|| format!("property {name}.{key}"))?;
            fields.push(Field {
                json_name: key.clone(),
                rust_name,
                ty,
                required: required.contains(key),
                boxed: false,
                doc: doc_of(property),
                constraints: constraints_of(property),
            });
        }
        let require_one_of = schema
            .get("anyOf")
            .and_then(Value::as_array)
            .map(|alternatives| {
                alternatives
                    .iter()
                    .flat_map(|a| string_list(a.get("required")))
                    .collect()
            })
            .unwrap_or_default();
        let item = Item::Struct(Struct {
            name: name.to_owned(),
            doc: doc_of(schema),
            tag,
            fields,
            deny_unknown: schema.get("additionalProperties") == Some(&Value::Bool(false)),
            require_one_of,
        });
        if let Some(existing) = self.items.iter().find(|i| i.name() == name) {
            if !same_shape(existing, &item) {
                bail!("two different objects would be named {name}");
            }
            return Ok(());
        }
        self.items.insert(position, item);
        Ok(())
    }

    /// The Rust type of a property schema found at `location` (`Owner.field[]`...).
    fn ty_of(&mut self, schema: &Value, location: &str) -> anyhow::Result<Ty> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/definitions/")
                .ok_or_else(|| anyhow!("unsupported reference {reference}"))?;
            return Ok(Ty::Named(name.to_owned()));
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            if let [single] = branches.as_slice() {
                return self.ty_of(single, location);
            }
            let union = self.union(branches, location)?;
            let name = union.name.clone();
            self.push_unique(Item::Union(union))?;
            return Ok(Ty::Named(name));
        }
        if let Some(types) = schema.get("type").and_then(Value::as_array) {
            let types: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            if types.len() >= 5 {
                return Ok(Ty::Json);
            }
            let branches: Vec<Value> = types
                .iter()
                .map(|t| {
                    let mut branch = schema.as_object().cloned().unwrap_or_default();
                    branch.remove("title");
                    branch.remove("description");
                    branch.insert("type".to_owned(), Value::String((*t).to_owned()));
                    Value::Object(branch)
                })
                .collect();
            let union = self.union(&branches, location)?;
            let name = union.name.clone();
            self.push_unique(Item::Union(union))?;
            return Ok(Ty::Named(name));
        }
        let kind = schema.get("type").and_then(Value::as_str);
        if schema.get("enum").is_some() && matches!(kind, None | Some("string")) {
            let values = string_list(schema.get("enum"));
            let name = match names::enum_name(&values) {
                Some(name) => name.to_owned(),
                None => {
                    let name = names::fallback_name(location);
                    self.notes
                        .push(format!("unnamed enum at {location}: named {name}"));
                    name
                }
            };
            self.push_unique(Item::Enum(StringEnum {
                name: name.clone(),
                doc: doc_of(schema),
                values: values
                    .iter()
                    .map(|v| (names::enum_variant_name(v), v.clone()))
                    .collect(),
            }))?;
            return Ok(Ty::Named(name));
        }
        Ok(match kind {
            Some("string") => Ty::String,
            Some("integer") => Ty::Integer,
            Some("number") => Ty::Number,
            Some("boolean") => Ty::Boolean,
            Some("array") => match schema.get("items") {
                Some(items) => Ty::List(Box::new(self.ty_of(items, &format!("{location}[]"))?)),
                None => Ty::List(Box::new(Ty::Json)),
            },
            Some("object") | None if schema.get("properties").is_some() => {
                let name = match names::struct_name(location) {
                    Some(name) => name.to_owned(),
                    None => {
                        let name = names::fallback_name(location);
                        self.notes
                            .push(format!("unnamed object at {location}: named {name}"));
                        name
                    }
                };
                self.object_struct(&name, schema, None)?;
                Ty::Named(name)
            }
            Some("object") => match schema.get("additionalProperties") {
                Some(values @ Value::Object(_)) => {
                    Ty::Map(Box::new(self.ty_of(values, &format!("{location}{{}}"))?))
                }
                _ => Ty::JsonObject,
            },
            None => Ty::Json,
            Some(other) => bail!("unsupported type {other} at {location}"),
        })
    }

    fn union(&mut self, branches: &[Value], location: &str) -> anyhow::Result<Union> {
        let mut variants: Vec<Variant> = Vec::new();
        for branch in branches {
            let ty = self.ty_of(branch, location)?;
            let name = variant_name(&ty);
            if variants.iter().any(|v| v.name == name) {
                bail!("two variants named {name} in the union at {location}");
            }
            let mut doc = doc_of(branch);
            if matches!(ty, Ty::Named(_)) {
                doc = Doc::default();
            }
            variants.push(Variant {
                name,
                ty,
                boxed: false,
                doc,
            });
        }
        let types: Vec<String> = variants.iter().map(|v| v.ty.rust()).collect();
        let name = match names::union_name(&types) {
            Some(name) => name.to_owned(),
            None if variants.iter().all(|v| !matches!(v.ty, Ty::Named(_))) => variants
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join("Or"),
            None => {
                let name = names::fallback_name(location);
                self.notes.push(format!(
                    "unnamed union at {location} ({}): named {name}",
                    types.join(" | ")
                ));
                name
            }
        };
        Ok(Union {
            name,
            doc: Doc::default(),
            variants,
            used_by: vec![location.to_owned()],
        })
    }
}

/// Whether two items describe the same type (the same inline object met at two places).
fn same_shape(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Struct(x), Item::Struct(y)) => {
            x.tag == y.tag
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|(f, g)| f.json_name == g.json_name && f.ty == g.ty)
        }
        (Item::Enum(x), Item::Enum(y)) => x.values == y.values,
        _ => false,
    }
}

/// Union variants holding a component are boxed: it keeps the enums small and lets
/// components contain themselves through unions.
fn box_struct_variants(model: &mut Model) {
    let structs: Vec<String> = model
        .items
        .iter()
        .filter(|i| matches!(i, Item::Struct(_)))
        .map(|i| i.name().to_owned())
        .collect();
    for item in &mut model.items {
        if let Item::Union(union) = item {
            for variant in &mut union.variants {
                if let Ty::Named(name) = &variant.ty {
                    variant.boxed = structs.contains(name);
                }
            }
        }
    }
}

/// Boxes struct fields that would make a type contain itself directly.
fn break_cycles(model: &mut Model) -> anyhow::Result<()> {
    loop {
        let index: HashMap<String, usize> = model
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.name().to_owned(), i))
            .collect();
        let edges: Vec<Vec<(usize, Option<usize>)>> = model
            .items
            .iter()
            .map(|item| direct_edges(item, &index))
            .collect();
        let Some((from, field)) = find_back_edge(&edges) else {
            return Ok(());
        };
        match (&mut model.items[from], field) {
            (Item::Struct(s), Some(f)) => s.fields[f].boxed = true,
            (item, _) => bail!("{} contains itself and cannot be boxed", item.name()),
        }
    }
}

/// (target item, field index when the edge is a struct field)
fn direct_edges(item: &Item, index: &HashMap<String, usize>) -> Vec<(usize, Option<usize>)> {
    let target = |ty: &Ty| match ty {
        Ty::Named(name) => index.get(name).copied(),
        _ => None,
    };
    match item {
        Item::Struct(s) => s
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.boxed)
            .filter_map(|(i, f)| target(&f.ty).map(|t| (t, Some(i))))
            .collect(),
        Item::Union(u) => u
            .variants
            .iter()
            .filter(|v| !v.boxed)
            .filter_map(|v| target(&v.ty).map(|t| (t, None)))
            .collect(),
        Item::Alias(a) => target(&a.ty).map(|t| (t, None)).into_iter().collect(),
        Item::Enum(_) => Vec::new(),
    }
}

fn find_back_edge(edges: &[Vec<(usize, Option<usize>)>]) -> Option<(usize, Option<usize>)> {
    fn visit(
        node: usize,
        edges: &[Vec<(usize, Option<usize>)>],
        state: &mut [u8],
    ) -> Option<(usize, Option<usize>)> {
        state[node] = 1;
        for &(next, field) in &edges[node] {
            match state[next] {
                1 => return Some((node, field)),
                0 => {
                    if let Some(found) = visit(next, edges, state) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        state[node] = 2;
        None
    }
    let mut state = vec![0u8; edges.len()];
    (0..edges.len()).find_map(|start| {
        if state[start] == 0 {
            visit(start, edges, &mut state)
        } else {
            None
        }
    })
}
