//! Maps whose keys and values are templates (request parameters, headers, JSON bodies).

use serde_json::{Map, Value as Json};

use crate::context::Context;
use crate::error::InterpError;
use crate::literal::LiteralType;
use crate::template::Template;

/// A flat map of templates, like the reference's `InterpolatedMapping`: keys are evaluated as
/// strings (a key that literal-evaluates to anything else keeps its text), values are
/// literal-evaluated and may be any JSON; non-string values are kept as they are.
#[derive(Debug, Clone)]
pub struct InterpolatedMapping {
    entries: Vec<(Template, MappingValue)>,
}

#[derive(Debug, Clone)]
enum MappingValue {
    Template(Template),
    Literal(Json),
}

impl InterpolatedMapping {
    /// Compiles every key and every string value of `mapping`.
    pub fn new(mapping: &Map<String, Json>) -> Result<Self, InterpError> {
        let entries = mapping
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Json::String(text) => MappingValue::Template(Template::or_null(text)?),
                    other => MappingValue::Literal(other.clone()),
                };
                Ok((Template::or_null(key)?, value))
            })
            .collect::<Result<_, InterpError>>()?;
        Ok(InterpolatedMapping { entries })
    }

    /// Evaluates keys and values. `valid_value_types` is the reference's `valid_value_types`
    /// (request options use `[String, List]`); empty means any type. Values that render empty are
    /// `null`, as in the reference; callers decide whether to drop them.
    pub fn eval(
        &self,
        ctx: &Context<'_>,
        valid_value_types: &[LiteralType],
    ) -> Result<Map<String, Json>, InterpError> {
        let mut out = Map::with_capacity(self.entries.len());
        for (key, value) in &self.entries {
            let key = json_key(key.render_as(ctx, &[LiteralType::String])?);
            let value = match value {
                MappingValue::Template(template) => template.render_as(ctx, valid_value_types)?,
                MappingValue::Literal(json) => json.clone(),
            };
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// A nested JSON structure whose strings (keys and values, at any depth) are templates, like the
/// reference's `InterpolatedNestedMapping`. Object entries whose value evaluates to `null` are
/// dropped; list items are kept.
#[derive(Debug, Clone)]
pub struct InterpolatedNestedMapping {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Template(Template),
    Object(Vec<(Template, Node)>),
    Array(Vec<Node>),
    Literal(Json),
}

impl InterpolatedNestedMapping {
    /// Compiles every string inside `value`.
    pub fn new(value: &Json) -> Result<Self, InterpError> {
        Ok(InterpolatedNestedMapping {
            root: Node::build(value)?,
        })
    }

    /// Evaluates the structure.
    pub fn eval(&self, ctx: &Context<'_>) -> Result<Json, InterpError> {
        self.root.eval(ctx)
    }
}

impl Node {
    fn build(value: &Json) -> Result<Node, InterpError> {
        Ok(match value {
            Json::String(text) => Node::Template(Template::or_null(text)?),
            Json::Object(map) => Node::Object(
                map.iter()
                    .map(|(k, v)| Ok((Template::or_null(k)?, Node::build(v)?)))
                    .collect::<Result<_, InterpError>>()?,
            ),
            Json::Array(items) => {
                Node::Array(items.iter().map(Node::build).collect::<Result<_, _>>()?)
            }
            other => Node::Literal(other.clone()),
        })
    }

    fn eval(&self, ctx: &Context<'_>) -> Result<Json, InterpError> {
        Ok(match self {
            Node::Template(template) => template.render(ctx)?,
            Node::Literal(json) => json.clone(),
            Node::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|item| item.eval(ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Object(entries) => {
                let mut out = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    let value = value.eval(ctx)?;
                    if !value.is_null() {
                        out.insert(json_key(key.render(ctx)?), value);
                    }
                }
                Json::Object(out)
            }
        })
    }
}

/// Python dict keys become JSON object keys the way `json.dumps` writes them.
fn json_key(key: Json) -> String {
    match key {
        Json::String(text) => text,
        Json::Null => "null".to_string(),
        other => other.to_string(),
    }
}
