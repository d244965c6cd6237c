//! The intermediate description of the model: what the schema says, in Rust terms.

use serde_json::Value;

/// A Rust type of a field or union variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    String,
    Integer,
    Number,
    Boolean,
    /// Any JSON value.
    Json,
    /// A free-form JSON object.
    JsonObject,
    List(Box<Ty>),
    /// An object whose values all have one type (key order kept).
    Map(Box<Ty>),
    /// A generated struct, enum, union or alias.
    Named(String),
}

/// The JSON shapes a value can take, used to dispatch unions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

/// Documentation taken from the schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    pub title: Option<String>,
    pub description: Option<String>,
    pub default: Option<Value>,
    pub deprecation: Option<String>,
}

/// A validation keyword of the schema that the model checks on the raw value.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    Minimum(f64),
    ExclusiveMinimum(f64),
    MinItems(u64),
    UniqueItems,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub value: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub json_name: String,
    pub rust_name: String,
    pub ty: Ty,
    pub required: bool,
    pub boxed: bool,
    pub doc: Doc,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    pub name: String,
    pub doc: Doc,
    pub tag: Option<Tag>,
    pub fields: Vec<Field>,
    pub deny_unknown: bool,
    /// At least one of these keys must be present (the schema's `anyOf` of `required`).
    pub require_one_of: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StringEnum {
    pub name: String,
    pub doc: Doc,
    /// (Rust variant name, JSON value)
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    pub ty: Ty,
    pub boxed: bool,
    pub doc: Doc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    pub name: String,
    pub doc: Doc,
    pub variants: Vec<Variant>,
    /// Where the union is used (`Owner.field`), for its documentation.
    pub used_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub doc: Doc,
    pub ty: Ty,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Struct(Struct),
    Enum(StringEnum),
    Union(Union),
    Alias(Alias),
}

impl Item {
    pub fn name(&self) -> &str {
        match self {
            Item::Struct(s) => &s.name,
            Item::Enum(e) => &e.name,
            Item::Union(u) => &u.name,
            Item::Alias(a) => &a.name,
        }
    }
}

/// The whole model, items in the order they are emitted.
#[derive(Debug, Clone)]
pub struct Model {
    pub items: Vec<Item>,
    /// Rust names of the items made from the schema's `definitions` (and the root).
    pub definitions: Vec<String>,
}

impl Model {
    pub fn item(&self, name: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.name() == name)
    }

    /// The tag values of every tagged struct, sorted.
    pub fn component_types(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Struct(s) => s.tag.as_ref().map(|t| t.value.clone()),
                _ => None,
            })
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// The JSON shapes a value of `ty` can take.
    pub fn shapes(&self, ty: &Ty) -> Vec<Shape> {
        let mut shapes = match ty {
            Ty::String => vec![Shape::String],
            Ty::Integer => vec![Shape::Integer],
            Ty::Number => vec![Shape::Number],
            Ty::Boolean => vec![Shape::Boolean],
            Ty::Json => vec![
                Shape::String,
                Shape::Integer,
                Shape::Number,
                Shape::Boolean,
                Shape::Array,
                Shape::Object,
            ],
            Ty::JsonObject | Ty::Map(_) => vec![Shape::Object],
            Ty::List(_) => vec![Shape::Array],
            Ty::Named(name) => match self.item(name) {
                Some(Item::Struct(_)) => vec![Shape::Object],
                Some(Item::Enum(_)) => vec![Shape::String],
                Some(Item::Alias(a)) => self.shapes(&a.ty),
                Some(Item::Union(u)) => {
                    u.variants.iter().flat_map(|v| self.shapes(&v.ty)).collect()
                }
                None => Vec::new(),
            },
        };
        shapes.sort();
        shapes.dedup();
        shapes
    }

    /// The tag of a struct type, when `ty` names a tagged struct.
    pub fn tag_of(&self, ty: &Ty) -> Option<&Tag> {
        match ty {
            Ty::Named(name) => match self.item(name) {
                Some(Item::Struct(s)) => s.tag.as_ref(),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Ty {
    /// The Rust spelling of this type (as the generated code writes it, without `Box`).
    pub fn rust(&self) -> String {
        match self {
            Ty::String => "String".to_owned(),
            Ty::Integer => "i64".to_owned(),
            Ty::Number => "f64".to_owned(),
            Ty::Boolean => "bool".to_owned(),
            Ty::Json => "Value".to_owned(),
            Ty::JsonObject => "Map<String, Value>".to_owned(),
            Ty::List(item) => format!("Vec<{}>", item.rust()),
            Ty::Map(value) => format!("IndexMap<String, {}>", value.rust()),
            Ty::Named(name) => name.clone(),
        }
    }
}
