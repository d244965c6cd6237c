//! Conditions (`{{ record['x'] > 5 }}`) with the reference's truthiness.

use serde_json::Value as Json;

use crate::context::Context;
use crate::error::InterpError;
use crate::template::Template;

/// A condition string evaluated to a boolean.
///
/// The reference renders the condition with a default of `"False"` and treats the result as false
/// when it is `False`, `None`, `0`, `0.0`, an empty string, list or object, or one of the strings
/// `"False"`, `"false"`, `"{}"`, `"[]"`, `"()"`, `"0"`, `"0.0"`; anything else is true.
#[derive(Debug, Clone)]
pub struct InterpolatedBoolean {
    template: Template,
}

impl InterpolatedBoolean {
    /// Compiles the condition.
    pub fn new(condition: &str) -> Result<Self, InterpError> {
        Ok(InterpolatedBoolean {
            template: Template::with_default(condition, "False")?,
        })
    }

    /// The condition's source text.
    pub fn source(&self) -> &str {
        self.template.source()
    }

    /// Whether the condition reads the context variable `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.template.reads(name)
    }

    /// The keys of the context variable `name` the condition reads; `None` when it reads the
    /// variable as a whole (see [`Template::keys_read`]).
    pub fn keys_read(&self, name: &str) -> Option<Vec<String>> {
        self.template.keys_read(name)
    }

    /// Evaluates the condition.
    pub fn eval(&self, ctx: &Context<'_>) -> Result<bool, InterpError> {
        Ok(is_truthy(&self.template.render(ctx)?))
    }

    /// Evaluates a condition that only reads fields of `record`, as [`InterpolatedBoolean::eval`]
    /// does; `None` when it cannot be told without a context (see
    /// [`Template::render_record_as`]).
    pub fn eval_record(&self, record: &dyn crate::RecordFields) -> Option<bool> {
        // One comparison renders `True` or `False`, which need not be written and evaluated.
        if let Some(holds) = self.template.compare_record(record) {
            return Some(holds);
        }
        Some(is_truthy(&self.template.render_record_as(record, &[])?))
    }
}

/// Python's `bool(value)`: `None`, `False`, zero, and empty strings, lists and dicts are false
/// (the string `"0"` is true, unlike for [`is_truthy`]). What the reference's plain `if value:`
/// tests.
pub fn python_bool(value: &Json) -> bool {
    match value {
        Json::String(s) => !s.is_empty(),
        other => is_truthy(other),
    }
}

/// Whether an evaluated value counts as true for the reference (`evaluated not in FALSE_VALUES`).
pub fn is_truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        // Python: 0 == False and 0.0 == False, so they are in the list.
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !matches!(
            s.as_str(),
            "False" | "false" | "{}" | "[]" | "()" | "" | "0" | "0.0"
        ),
        Json::Array(items) => !items.is_empty(),
        Json::Object(map) => !map.is_empty(),
    }
}
