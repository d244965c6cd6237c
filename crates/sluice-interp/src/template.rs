//! Compiled templates and the reference's result rules.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde_json::Value as Json;

use crate::context::{Context, WELL_KNOWN};
use crate::direct::Direct;
use crate::error::InterpError;
use crate::functions;
use crate::literal::{LiteralType, literal_eval};
use crate::pyrepr;
use crate::rewrite::{normalize_jinja2_idioms, rewrite_datetime_arithmetic};

const TEMPLATE_NAME: &str = "template";

/// The shared base environment: MiniJinja builtins, pycompat methods, the reference's macros and
/// filters, Python-style output. It has no loader and no access to files or the process
/// environment; `range` is removed as in the reference.
static BASE_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.remove_global("range");
    env.remove_global("debug");
    functions::register(&mut env);
    env.set_unknown_method_callback(functions::unknown_method);
    env.set_formatter(|out, _state, value| {
        let mut text = String::new();
        pyrepr::write_str(value, &mut text);
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    env
});

/// What a template evaluates to when its output is empty or reads an undefined value.
#[derive(Debug, Clone)]
enum Fallback {
    /// `InterpolatedString` without a default: the template itself again, so empty output gives
    /// `""` and an undefined value is an error.
    Itself,
    /// `JinjaInterpolation` with `default=None` (mapping values): `null`.
    Null,
    /// An explicit default template.
    Template(Box<Template>),
}

#[derive(Debug, Clone)]
enum Body {
    /// Text without `{{`, `{%` or `{#`: never rendered.
    Constant(String),
    Jinja(Arc<Compiled>),
}

struct Compiled {
    env: Environment<'static>,
    /// The same template evaluated without minijinja, when it is that simple.
    direct: Option<Direct>,
    /// Top-level variables the template reads from the context (globals excluded), and how.
    variables: Vec<(String, Access)>,
}

/// How a template reads a context variable: decides how much of it is converted per render.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    /// As a whole (passed on, iterated, a method called on it): converted in full.
    Whole,
    /// Only through these constant keys (`record['id']`, `record.id`): only they are converted,
    /// which matters for a per-record template over a large record.
    Keys(Vec<String>),
}

/// Names that, read as an attribute, are methods rather than keys (`record.get('x')`): every
/// dict method, and the list and string methods templates use.
pub(crate) const METHOD_NAMES: &[&str] = &[
    "get",
    "items",
    "keys",
    "values",
    "update",
    "pop",
    "popitem",
    "clear",
    "fromkeys",
    "copy",
    "setdefault",
    "append",
    "extend",
    "index",
    "count",
    "split",
    "strip",
    "lower",
    "upper",
    "replace",
    "startswith",
    "endswith",
    "join",
    "format",
    "encode",
    "zfill",
    "lstrip",
    "rstrip",
    "title",
    "capitalize",
    "find",
];

impl Access {
    /// From minijinja's nested names (`record`, `record.id`, `record.a.b`) for one variable.
    fn of(name: &str, nested: &BTreeSet<String>) -> Access {
        let mut keys = Vec::new();
        for entry in nested {
            if entry == name {
                return Access::Whole;
            }
            let Some(rest) = entry.strip_prefix(name).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let key = rest.split('.').next().unwrap_or(rest);
            if METHOD_NAMES.contains(&key) {
                return Access::Whole;
            }
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
        if keys.is_empty() {
            Access::Whole
        } else {
            Access::Keys(keys)
        }
    }

    /// The variable as the template needs it.
    fn convert(&self, value: &Json) -> Value {
        match (self, value) {
            (Access::Keys(keys), Json::Object(map)) => {
                // A key containing `.` cannot be told apart in the nested names: keep those too.
                let dotted = map.iter().filter(|(k, _)| k.contains('.'));
                let wanted = keys.iter().filter_map(|k| map.get_key_value(k.as_str()));
                let pairs: Vec<(&str, Value)> = wanted
                    .chain(dotted)
                    .map(|(k, v)| (k.as_str(), Value::from(minijinja::value::Serde(v))))
                    .collect();
                Value::from_pairs(pairs)
            }
            _ => Value::from(minijinja::value::Serde(value)),
        }
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("variables", &self.variables)
            .finish_non_exhaustive()
    }
}

/// A template compiled once from a manifest string.
///
/// Evaluation follows the reference's `JinjaInterpolation`: render, then literal-evaluate the
/// text with Python's rules (`"5"` -> 5, `"['a']"` -> list, `"True"` -> true, `"007"` stays a
/// string); empty output or an undefined value falls back to the default.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    body: Body,
    fallback: Fallback,
}

impl Template {
    /// Compiles `source` with `InterpolatedString` semantics (no default: empty output is `""`,
    /// reading through an undefined value is an error).
    pub fn new(source: &str) -> Result<Template, InterpError> {
        Ok(Template {
            source: source.to_string(),
            body: compile(source)?,
            fallback: Fallback::Itself,
        })
    }

    /// Compiles `source` with a default template used when the output is empty or undefined.
    pub fn with_default(source: &str, default: &str) -> Result<Template, InterpError> {
        let mut template = Template::new(source)?;
        if default != source {
            template.fallback = Fallback::Template(Box::new(Template::new(default)?));
        }
        Ok(template)
    }

    /// Compiles `source` so that empty output or an undefined value gives `null`, as the
    /// reference's mapping values do.
    pub fn or_null(source: &str) -> Result<Template, InterpError> {
        let mut template = Template::new(source)?;
        template.fallback = Fallback::Null;
        Ok(template)
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether rendering reads the context variable `name` (its default template included); a
    /// constant reads none. Lets callers skip building a value no template uses.
    pub fn reads(&self, name: &str) -> bool {
        // A variable read through keys has at least one.
        self.keys_read(name).is_none_or(|keys| !keys.is_empty())
    }

    /// The keys of the context variable `name` the template reads (`response.next`), its
    /// default template included: empty when it does not read the variable, `None` when it reads
    /// it as a whole (passes it on, iterates it, calls a method on it).
    pub fn keys_read(&self, name: &str) -> Option<Vec<String>> {
        let mut keys = match &self.body {
            Body::Constant(_) => Vec::new(),
            // The direct form knows subscripts (`record['id']`), which minijinja's analysis
            // reports as reading the variable whole.
            Body::Jinja(compiled) => match &compiled.direct {
                Some(direct) => direct.keys_read(name)?,
                None => match compiled.variables.iter().find(|(v, _)| v == name) {
                    None => Vec::new(),
                    Some((_, Access::Whole)) => return None,
                    Some((_, Access::Keys(keys))) => keys.clone(),
                },
            },
        };
        if let Fallback::Template(default) = &self.fallback {
            for key in default.keys_read(name)? {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        Some(keys)
    }

    /// Whether the source has no Jinja markup (it is never rendered).
    pub fn is_constant(&self) -> bool {
        matches!(self.body, Body::Constant(_))
    }

    /// Renders and literal-evaluates the result.
    pub fn render(&self, ctx: &Context<'_>) -> Result<Json, InterpError> {
        self.render_as(ctx, &[])
    }

    /// Renders and literal-evaluates, keeping the text when the literal's type is not one of
    /// `valid_types` (the reference's `valid_types`; empty means any type).
    pub fn render_as(
        &self,
        ctx: &Context<'_>,
        valid_types: &[LiteralType],
    ) -> Result<Json, InterpError> {
        match self.render_text(ctx) {
            Ok(text) if !text.is_empty() => return Ok(evaluate(text, valid_types)),
            Ok(_) => {}
            Err(Failure::Undefined(error)) => {
                if let Fallback::Itself = self.fallback {
                    return Err(error);
                }
            }
            Err(Failure::Other(error)) => return Err(error),
        }
        match &self.fallback {
            Fallback::Itself => Ok(Json::String(String::new())),
            Fallback::Null => Ok(Json::Null),
            Fallback::Template(default) => {
                let text = default.render_text(ctx).map_err(Failure::into_error)?;
                Ok(evaluate(text, valid_types))
            }
        }
    }

    /// Renders and literal-evaluates as [`Template::render_as`] does, for a template that only
    /// looks fields of `record` up or compares them (nothing else in its context), without
    /// building a context. `None` when the template is not of that shape or a value is not of
    /// the plain case (a string or an integer): render it with [`Template::render_as`] then.
    pub fn render_record_as(
        &self,
        record: &dyn crate::direct::RecordFields,
        valid_types: &[LiteralType],
    ) -> Option<Json> {
        let text = match &self.body {
            Body::Constant(text) => text.clone(),
            Body::Jinja(compiled) => compiled.direct.as_ref()?.render_record(record)?,
        };
        // An empty text falls back to the template's default.
        (!text.is_empty()).then(|| evaluate(text, valid_types))
    }

    /// The text [`Template::render_record_as`] renders before literal evaluation, appended to
    /// `text` (with a part written when it gives `None`): for a caller that evaluates it
    /// itself, without a new string each time.
    pub fn render_record_text(
        &self,
        record: &dyn crate::direct::RecordFields,
        text: &mut String,
    ) -> Option<()> {
        match &self.body {
            Body::Constant(constant) => {
                text.push_str(constant);
                Some(())
            }
            Body::Jinja(compiled) => compiled.direct.as_ref()?.render_record_into(record, text),
        }
    }

    /// [`Template::render_record_as`] of a template that is one comparison of a field of
    /// `record`, as the boolean its rendered text (`True` or `False`) evaluates to; `None` for
    /// any other template.
    pub fn compare_record(&self, record: &dyn crate::direct::RecordFields) -> Option<bool> {
        match &self.body {
            Body::Jinja(compiled) => compiled.direct.as_ref()?.compare_record(record),
            Body::Constant(_) => None,
        }
    }

    /// Renders for a field that is always a string: literal evaluation only unquotes string
    /// literals (`"'abc'"` -> `abc`), any other literal keeps its rendered text.
    pub fn render_string(&self, ctx: &Context<'_>) -> Result<String, InterpError> {
        match self.render_as(ctx, &[LiteralType::String])? {
            Json::String(text) => Ok(text),
            Json::Null => Ok(String::new()),
            other => Ok(other.to_string()),
        }
    }

    /// The rendered text before literal evaluation.
    fn render_text(&self, ctx: &Context<'_>) -> Result<String, Failure> {
        let compiled = match &self.body {
            Body::Constant(text) => return Ok(text.clone()),
            Body::Jinja(compiled) => compiled,
        };
        if let Some(text) = compiled.direct.as_ref().and_then(|d| d.render(ctx)) {
            return Ok(text);
        }
        let mut missing = Vec::new();
        let mut root: Vec<(&str, Value)> = Vec::with_capacity(compiled.variables.len());
        for (name, access) in &compiled.variables {
            match ctx.get(name) {
                Some(value) => root.push((name, access.convert(value))),
                None if WELL_KNOWN.contains(&name.as_str()) => root.push((name, Value::from(()))),
                None => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(Failure::Other(InterpError::UndeclaredVariables {
                template: self.source.clone(),
                names: missing,
            }));
        }
        let template = compiled
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Failure::Other(self.render_error(&e)))?;
        template
            .render(Value::from_pairs(root))
            .map_err(|error| match error.kind() {
                ErrorKind::UndefinedError => Failure::Undefined(self.render_error(&error)),
                _ => Failure::Other(self.render_error(&error)),
            })
    }

    fn render_error(&self, error: &minijinja::Error) -> InterpError {
        InterpError::Render {
            template: self.source.clone(),
            message: describe(error),
        }
    }
}

enum Failure {
    /// Jinja's `UndefinedError`: the reference falls back to the default.
    Undefined(InterpError),
    Other(InterpError),
}

impl Failure {
    fn into_error(self) -> InterpError {
        match self {
            Failure::Undefined(error) | Failure::Other(error) => error,
        }
    }
}

fn evaluate(text: String, valid_types: &[LiteralType]) -> Json {
    literal_eval(&text, valid_types).unwrap_or(Json::String(text))
}

fn describe(error: &minijinja::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn is_constant(source: &str) -> bool {
    !(source.contains("{{") || source.contains("{%") || source.contains("{#"))
}

/// Jinja normalises line endings and drops one trailing newline, even for plain text.
fn constant_text(source: &str) -> String {
    let mut text = if source.contains('\r') {
        source.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        source.to_string()
    };
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

fn compile(source: &str) -> Result<Body, InterpError> {
    if is_constant(source) {
        return Ok(Body::Constant(constant_text(source)));
    }
    let syntax_error = |error: minijinja::Error| InterpError::Syntax {
        template: source.to_string(),
        message: describe(&error),
    };
    let mut env = BASE_ENV.clone();
    let normalized = normalize_jinja2_idioms(source);
    let source_text = normalized.as_deref().unwrap_or(source);
    // The rewrite is an addition: should its output not compile, the original text is used.
    let rewritten = rewrite_datetime_arithmetic(source_text)
        .filter(|text| env.add_template_owned(TEMPLATE_NAME, text.clone()).is_ok());
    if rewritten.is_none() {
        env.add_template_owned(TEMPLATE_NAME, source_text.to_string())
            .map_err(syntax_error)?;
    }
    let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_string()).collect();
    let template = env.get_template(TEMPLATE_NAME).map_err(syntax_error)?;
    let nested: BTreeSet<String> = template.undeclared_variables(true).into_iter().collect();
    let variables = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !globals.contains(name))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|name| {
            let access = Access::of(&name, &nested);
            (name, access)
        })
        .collect();
    let direct = if normalized.is_none() && rewritten.is_none() {
        Direct::parse(source)
    } else {
        None
    };
    Ok(Body::Jinja(Arc::new(Compiled {
        env,
        direct,
        variables,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The same template with its direct evaluation removed: always rendered by minijinja.
    fn without_direct(template: &Template) -> Template {
        let mut slow = template.clone();
        if let Body::Jinja(compiled) = &template.body {
            slow.body = Body::Jinja(Arc::new(Compiled {
                env: compiled.env.clone(),
                direct: None,
                variables: compiled.variables.clone(),
            }));
        }
        slow
    }

    #[test]
    fn tells_which_keys_of_a_variable_it_reads() {
        let keys = |source: &str| Template::new(source).unwrap().keys_read("response");
        assert_eq!(keys("{{ response.next }}"), Some(vec!["next".to_owned()]));
        assert_eq!(
            keys("{{ response.links.next or response.cursor }}"),
            Some(vec!["cursor".to_owned(), "links".to_owned()])
        );
        assert_eq!(keys("{{ config.x }}"), Some(vec![]));
        assert_eq!(keys("plain"), Some(vec![]));
        assert_eq!(keys("{{ response.get('next') }}"), None);
        assert_eq!(keys("{{ response }}"), None);
        assert_eq!(keys("{{ response | length }}"), None);
        // Subscripts, in the direct form.
        assert_eq!(
            keys("{{ response['a']['b'] }}-{{ response.c }}{{ response['a'] != 'x' }}"),
            Some(vec!["a".to_owned(), "c".to_owned()])
        );
    }

    #[test]
    fn direct_evaluation_agrees_with_minijinja() {
        let sources = [
            "{{ record['country'] }}-{{ record['id'] }}",
            "{{ record.id }}",
            "{{ record['nested']['inner'] }}",
            "{{ record.nested.inner }} and {{ config['region'] }}",
            "{{ record['status'] != 'deleted' }}",
            "{{ record['status'] == \"active\" }}",
            "{{ record['id'] > 5 }}",
            "{{ record['id'] >= -2 }}",
            "{{ record['id'] < 0 }}",
            "{{ record['id'] <= 7 }}",
            "{{ record['name'] < 'm' }}",
            "{{ record['missing'] }}",
            "{{ record['missing'] == 'x' }}",
            "{{ record['nested']['missing'] }}",
            "x{{ record['id'] }}",
        ];
        let records = [
            json!({"country": "FR", "id": 7, "status": "deleted", "name": "zoë",
                   "nested": {"inner": "ü"}}),
            json!({"country": "", "id": -3, "status": "active", "name": "abc",
                   "nested": {"inner": 12}}),
            json!({"country": "007", "id": 18446744073709551615_u64, "status": null,
                   "name": "it's \"quoted\"", "nested": {"inner": true}}),
            json!({"country": ["a"], "id": 1.5, "status": 1, "name": {"k": "v"},
                   "nested": "not an object"}),
            json!({"country": "[1, 2]", "id": "5", "status": "True", "name": "None",
                   "nested": {"inner": 1.0}}),
            json!({}),
        ];
        let config = json!({"region": "eu"});
        let mut direct_renders = 0;
        for source in sources {
            let fast = Template::new(source).unwrap();
            let slow = without_direct(&fast);
            let Body::Jinja(compiled) = &fast.body else {
                panic!("{source} is a template");
            };
            for record in &records {
                let ctx = Context::new().config(&config).record(record);
                if compiled
                    .direct
                    .as_ref()
                    .and_then(|d| d.render(&ctx))
                    .is_some()
                {
                    direct_renders += 1;
                }
                let expected = slow.render(&ctx).map_err(|e| e.to_string());
                let got = fast.render(&ctx).map_err(|e| e.to_string());
                assert_eq!(got, expected, "{source} on {record}");
            }
        }
        assert!(direct_renders >= 25, "only {direct_renders} direct renders");
    }
}
