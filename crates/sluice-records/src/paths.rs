//! The reference's `dpath` operations on any JSON value, for callers outside this crate (the
//! spec's config normalisation rules set, delete and read values of the user's config with the
//! same semantics as record transformations do on records).
//!
//! Segments are globs over object keys (`*`, `?`, `[abc]`) or array indices, as described in
//! the crate documentation.

use serde_json::Value;

use crate::dpath::{self, Segment};

/// `dpath.new`: sets `value` at `path` (literal keys, not globs), creating missing objects (or
/// arrays where the next segment is a decimal number). Fails, saying why, when the path runs
/// through a value that is not an object or array.
///
/// ```
/// use serde_json::json;
/// let mut config = json!({"api_token": "t"});
/// sluice_records::paths::set(&mut config, &["credentials".into(), "api_token".into()], json!("t")).unwrap();
/// assert_eq!(config, json!({"api_token": "t", "credentials": {"api_token": "t"}}));
/// ```
pub fn set(target: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    dpath::new(target, path, value)
}

/// A path with more than one `**` segment (dpath's `InvalidGlob`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidGlob;

/// `dpath.set`: replaces every value already in `target` whose path matches `glob` by `value`,
/// creating nothing; gives how many were replaced. Segments are rendered template values (a
/// string is a glob, an integer an array index), and one `**` stands for any number of
/// segments, none included.
///
/// ```
/// use serde_json::json;
/// let mut stream = json!({"name": "", "fields": [{"value": 1}, {"value": 2}]});
/// let set = |stream: &mut serde_json::Value, glob: serde_json::Value| {
///     sluice_records::paths::set_existing(stream, glob.as_array().unwrap(), &json!("x"))
/// };
/// assert_eq!(set(&mut stream, json!(["name"])), Ok(1));
/// assert_eq!(set(&mut stream, json!(["fields", "*", "value"])), Ok(2));
/// assert_eq!(set(&mut stream, json!(["missing"])), Ok(0));
/// assert_eq!(stream, json!({"name": "x", "fields": [{"value": "x"}, {"value": "x"}]}));
/// ```
pub fn set_existing(
    target: &mut Value,
    glob: &[Value],
    value: &Value,
) -> Result<usize, InvalidGlob> {
    let glob: Vec<Segment> = glob.iter().cloned().map(Segment::from_rendered).collect();
    dpath::set(target, &glob, value).map_err(|_| InvalidGlob)
}

/// `dpath.delete`: removes every value the glob matches (an array element that is not the last
/// becomes `null`, so the others keep their index). Returns how many values were removed; 0 is
/// the reference's `PathNotFound`. An empty glob removes nothing.
///
/// ```
/// use serde_json::json;
/// let mut config = json!({"a": 1, "ab": 2, "b": {"c": 3}});
/// assert_eq!(sluice_records::paths::delete(&mut config, &["a*".into()]), 2);
/// assert_eq!(config, json!({"b": {"c": 3}}));
/// ```
pub fn delete(target: &mut Value, glob: &[String]) -> usize {
    if glob.is_empty() {
        return 0;
    }
    let glob: Vec<Segment> = glob.iter().cloned().map(Segment::Glob).collect();
    match dpath::delete::<std::convert::Infallible>(target, &glob, None) {
        Ok(removed) => removed,
        Err(never) => match never {},
    }
}

/// A glob given to [`get`] matched more than one value (the reference's `dpath.get` refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoreThanOne;

/// `dpath.get`: the one value at `path`, whose segments are rendered template values (a string
/// is a glob, an integer an array index). `None` when nothing is there (the reference's
/// `KeyError`).
///
/// ```
/// use serde_json::json;
/// let config = json!({"report": {"schema": "{}"}, "list": [1, 2]});
/// let at = |path: serde_json::Value| sluice_records::paths::get(&config, path.as_array().unwrap());
/// assert_eq!(at(json!(["report", "schema"])), Ok(Some(&json!("{}"))));
/// assert_eq!(at(json!(["list", 1])), Ok(Some(&json!(2))));
/// assert_eq!(at(json!(["missing"])), Ok(None));
/// assert!(at(json!(["*"])).is_err());
/// ```
pub fn get<'a>(target: &'a Value, path: &[Value]) -> Result<Option<&'a Value>, MoreThanOne> {
    let path: Vec<Segment> = path.iter().cloned().map(Segment::from_rendered).collect();
    dpath::get_ref(target, &path).map_err(|_| MoreThanOne)
}

/// `dpath.values`: every value at `path` (segments as in [`get`]), in the reference's order.
pub fn values<'a>(target: &'a Value, path: &[Value]) -> Vec<&'a Value> {
    let path: Vec<Segment> = path.iter().cloned().map(Segment::from_rendered).collect();
    let mut found = Vec::new();
    dpath::values_ref(target, &path, &mut found);
    found
}
