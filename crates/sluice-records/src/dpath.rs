//! Paths into JSON values with the semantics of the `dpath` library the reference uses.
//!
//! A path segment is a glob (`fnmatch` rules: `*`, `?`, `[abc]`, `[!abc]`) matched against
//! object keys, or an index. On arrays a segment matches an element when it reads as a Python
//! integer equal to the index (negative values count from the end), or when the glob matches the
//! index written in decimal. A segment that a template rendered to an integer matches array
//! indices only, as in the reference, where an integer never equals a string key.

use serde_json::{Map, Value};

/// One segment of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A glob over keys (and, when it reads as an integer, an index).
    Glob(String),
    /// An integer: matches array indices only.
    Index(i64),
    /// A rendered value that can match nothing (a float, a list...).
    Never,
}

impl Segment {
    /// The segment a rendered template value stands for.
    pub(crate) fn from_rendered(value: Value) -> Segment {
        match value {
            Value::String(text) => Segment::Glob(text),
            Value::Number(n) => n.as_i64().map_or(Segment::Never, Segment::Index),
            Value::Bool(b) => Segment::Index(i64::from(b)),
            _ => Segment::Never,
        }
    }

    /// Whether the segment is exactly `*` (the reference then uses `dpath.values`).
    pub(crate) fn is_star(&self) -> bool {
        matches!(self, Segment::Glob(g) if g == "*")
    }

    /// Whether the segment has no glob metacharacter.
    pub(crate) fn is_literal(&self) -> bool {
        match self {
            Segment::Glob(g) => !g.contains(['*', '?', '[']),
            Segment::Index(_) | Segment::Never => true,
        }
    }

    pub(crate) fn matches_key(&self, key: &str) -> bool {
        match self {
            Segment::Glob(g) => fnmatch(key, g),
            Segment::Index(_) | Segment::Never => false,
        }
    }

    pub(crate) fn matches_index(&self, index: usize, len: usize) -> bool {
        let wanted = match self {
            Segment::Index(n) => *n,
            Segment::Glob(g) => match parse_python_int(g) {
                Some(n) => n,
                None => return g == "*" || fnmatch(&index.to_string(), g),
            },
            Segment::Never => return false,
        };
        resolve_index(wanted, len) == Some(index)
    }

    /// The one array index a literal segment designates.
    fn literal_index(&self, len: usize) -> Option<usize> {
        match self {
            Segment::Index(n) => resolve_index(*n, len),
            Segment::Glob(g) => resolve_index(parse_python_int(g)?, len),
            Segment::Never => None,
        }
    }
}

fn resolve_index(wanted: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if wanted < 0 { len + wanted } else { wanted };
    (0..len).contains(&index).then_some(index as usize)
}

/// Python's `int(text)` for base-10 text: surrounding whitespace, a sign, digits with single
/// underscores between them.
pub(crate) fn parse_python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i64 = 0;
    for byte in digits.bytes() {
        match byte {
            b'_' => continue,
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(i64::from(byte - b'0'))?;
            }
            _ => return None,
        }
    }
    Some(if negative { -value } else { value })
}

/// Python's `str.isdecimal()` for the ASCII digits manifests use.
pub(crate) fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`; an unclosed `[` is literal.
pub(crate) fn fnmatch(name: &str, pattern: &str) -> bool {
    if !pattern.contains(['*', '?', '[']) {
        return name == pattern;
    }
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    glob_match(&name, &pattern)
}

fn glob_match(name: &[char], pattern: &[char]) -> bool {
    let (mut n, mut p) = (0, 0);
    // Position to resume from after the last `*`: (pattern index after it, name index).
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some('?') => Some(p + 1),
            Some('[') => match class_match(&pattern[p..], name[n]) {
                Some((true, consumed)) => Some(p + consumed),
                Some((false, _)) => None,
                None => (name[n] == '[').then_some(p + 1),
            },
            Some(c) => (*c == name[n]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                n += 1;
            }
            None => match backtrack {
                Some((after_star, from)) => {
                    p = after_star;
                    n = from + 1;
                    backtrack = Some((after_star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class at the start of `pattern` (`[...]`). Returns whether it matched
/// and how many pattern characters the class spans, or `None` when the class is not closed.
fn class_match(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    loop {
        let first = *pattern.get(i)?;
        if first == ']' && i > start {
            break;
        }
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            let last = pattern[i + 2];
            if first <= c && c <= last {
                matched = true;
            }
            i += 3;
        } else {
            if first == c {
                matched = true;
            }
            i += 1;
        }
    }
    Some((matched != negate, i + 1))
}

/// `dpath.values`: every value at `path`, in the reference's order, moved out of `node`.
pub(crate) fn values(node: Value, path: &[Segment], out: &mut Vec<Value>) {
    let Some((segment, rest)) = path.split_first() else {
        out.push(node);
        return;
    };
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                if segment.matches_key(&key) {
                    values(child, rest, out);
                }
            }
        }
        Value::Array(items) => {
            let len = items.len();
            for (index, child) in items.into_iter().enumerate() {
                if segment.matches_index(index, len) {
                    values(child, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// `dpath.values` by reference.
pub(crate) fn values_ref<'a>(node: &'a Value, path: &[Segment], out: &mut Vec<&'a Value>) {
    let Some((segment, rest)) = path.split_first() else {
        out.push(node);
        return;
    };
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                if segment.matches_key(key) {
                    values_ref(child, rest, out);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                if segment.matches_index(index, items.len()) {
                    values_ref(child, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// More than one value matched a path that must designate a single one (`dpath.get`).
#[derive(Debug)]
pub(crate) struct Ambiguous;

/// `dpath.get`: the single value at `path`, moved out of `node`.
pub(crate) fn get(node: Value, path: &[Segment]) -> Result<Option<Value>, Ambiguous> {
    if path.iter().all(Segment::is_literal) {
        let mut node = node;
        for segment in path {
            node = match node {
                Value::Object(mut map) => match segment {
                    Segment::Glob(key) => match map.swap_remove(key.as_str()) {
                        Some(child) => child,
                        None => return Ok(None),
                    },
                    _ => return Ok(None),
                },
                Value::Array(mut items) => match segment.literal_index(items.len()) {
                    Some(index) => items.swap_remove(index),
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
        }
        return Ok(Some(node));
    }
    let mut found = Vec::new();
    values(node, path, &mut found);
    if found.len() > 1 {
        return Err(Ambiguous);
    }
    Ok(found.pop())
}

/// `dpath.get` by reference.
pub(crate) fn get_ref<'a>(
    node: &'a Value,
    path: &[Segment],
) -> Result<Option<&'a Value>, Ambiguous> {
    if path.iter().all(Segment::is_literal) {
        let mut node = node;
        for segment in path {
            node = match node {
                Value::Object(map) => match segment {
                    Segment::Glob(key) => match map.get(key.as_str()) {
                        Some(child) => child,
                        None => return Ok(None),
                    },
                    _ => return Ok(None),
                },
                Value::Array(items) => match segment.literal_index(items.len()) {
                    Some(index) => &items[index],
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
        }
        return Ok(Some(node));
    }
    let mut found = Vec::new();
    values_ref(node, path, &mut found);
    if found.len() > 1 {
        return Err(Ambiguous);
    }
    Ok(found.pop())
}

/// Whether dpath treats the value as a leaf (a scalar).
pub(crate) fn is_leaf(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// `dpath.new`: sets `value` at `path` (not a glob), creating missing objects, or arrays where the
/// next segment is a decimal number; arrays are extended with nulls up to the index set.
pub(crate) fn new(record: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the path is empty".to_string());
    };
    let mut current = record;
    for (i, segment) in parents.iter().enumerate() {
        let next_is_index = is_decimal(&path[i + 1]);
        let fresh = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        current = match current {
            Value::Object(map) => map.entry(segment.clone()).or_insert_with(fresh),
            Value::Array(items) => {
                let existed = parse_python_int(segment)
                    .and_then(|n| resolve_index(n, items.len()))
                    .is_some();
                let index = array_slot(items, segment, path)?;
                if !existed {
                    items[index] = fresh();
                }
                &mut items[index]
            }
            _ => {
                return Err(format!(
                    "cannot set {path:?}: {segment:?} is not a container"
                ));
            }
        };
        if is_leaf(current) {
            return Err(format!(
                "cannot set {path:?}: the value at {segment:?} is not an object or array"
            ));
        }
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            let index = array_slot(items, last, path)?;
            items[index] = value;
        }
        _ => {
            return Err(format!(
                "cannot set {path:?}: the parent is not a container"
            ));
        }
    }
    Ok(())
}

/// The array slot a `dpath.new` segment designates, extending the array with nulls up to it.
fn array_slot(items: &mut Vec<Value>, segment: &str, path: &[String]) -> Result<usize, String> {
    let wanted = parse_python_int(segment)
        .ok_or_else(|| format!("cannot set {path:?}: {segment:?} is not an array index"))?;
    if wanted < 0 {
        return resolve_index(wanted, items.len())
            .ok_or_else(|| format!("cannot set {path:?}: index {wanted} is out of range"));
    }
    let index = usize::try_from(wanted).map_err(|_| format!("index {wanted} is too large"))?;
    if index >= items.len() {
        items.resize(index + 1, Value::Null);
    }
    Ok(index)
}

/// One step of a concrete path found by walking a value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    /// An index and the length of its array when the walk saw it.
    Index(usize, usize),
}

/// Every path in `node`, in dpath's walk order: each container's children first, then each
/// child's own paths.
fn walk_paths(node: &Value, location: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match node {
        Value::Object(map) => {
            for key in map.keys() {
                location.push(Step::Key(key.clone()));
                out.push(location.clone());
                location.pop();
            }
            for (key, child) in map {
                location.push(Step::Key(key.clone()));
                walk_paths(child, location, out);
                location.pop();
            }
        }
        Value::Array(items) => {
            for index in 0..items.len() {
                location.push(Step::Index(index, items.len()));
                out.push(location.clone());
                location.pop();
            }
            for (index, child) in items.iter().enumerate() {
                location.push(Step::Index(index, items.len()));
                walk_paths(child, location, out);
                location.pop();
            }
        }
        _ => {}
    }
}

fn step_matches(step: &Step, segment: &Segment) -> bool {
    match step {
        Step::Key(key) => segment.matches_key(key),
        Step::Index(index, len) => segment.matches_index(*index, *len),
    }
}

fn resolve<'a>(node: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(node, |node, step| match (node, step) {
        (Value::Object(map), Step::Key(key)) => map.get(key.as_str()),
        (Value::Array(items), Step::Index(index, _)) => items.get(*index),
        _ => None,
    })
}

fn resolve_mut<'a>(node: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(node, |node, step| match (node, step) {
        (Value::Object(map), Step::Key(key)) => map.get_mut(key.as_str()),
        (Value::Array(items), Step::Index(index, _)) => items.get_mut(*index),
        _ => None,
    })
}

/// Removes the value at a concrete path the way dpath does: an object key is removed; an array
/// element is removed only when it is the last one, otherwise it becomes null so the indices of
/// the others stay the same.
fn remove_at(record: &mut Value, path: &[Step]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    match (resolve_mut(record, parent_path), last) {
        (Some(Value::Object(map)), Step::Key(key)) => {
            map.shift_remove(key.as_str());
        }
        (Some(Value::Array(items)), Step::Index(index, _)) => {
            if *index + 1 == items.len() {
                items.pop();
            } else if let Some(slot) = items.get_mut(*index) {
                *slot = Value::Null;
            }
        }
        _ => {}
    }
}

/// A scalar predicate of `dpath.delete` (RemoveFields' condition).
pub(crate) type LeafFilter<'a, E> = &'a mut dyn FnMut(&Value) -> Result<bool, E>;

/// `dpath.delete` with an optional filter. Without a filter, every value at the glob is removed.
/// With one, dpath removes every *scalar anywhere in the record* for which the filter holds,
/// whatever the glob says: the reference's RemoveFields `condition` inherits that behaviour.
/// Returns how many values were removed.
pub(crate) fn delete<E>(
    record: &mut Value,
    glob: &[Segment],
    filter: Option<LeafFilter<'_, E>>,
) -> Result<usize, E> {
    if filter.is_none() && !glob.is_empty() && glob.iter().all(Segment::is_literal) {
        return Ok(delete_literal(record, glob));
    }
    let mut paths = Vec::new();
    walk_paths(record, &mut Vec::new(), &mut paths);
    let mut removed = 0;
    let mut filter = filter;
    for path in paths {
        let Some(current) = resolve(record, &path) else {
            continue;
        };
        let selected = match filter.as_mut() {
            Some(keep) => is_leaf(current) && keep(current)?,
            None => {
                path.len() == glob.len() && path.iter().zip(glob).all(|(s, g)| step_matches(s, g))
            }
        };
        if selected {
            remove_at(record, &path);
            removed += 1;
        }
    }
    Ok(removed)
}

fn delete_literal(record: &mut Value, glob: &[Segment]) -> usize {
    let Some((last, parents)) = glob.split_last() else {
        return 0;
    };
    let mut current = record;
    for segment in parents {
        current = match current {
            Value::Object(map) => match segment {
                Segment::Glob(key) => match map.get_mut(key.as_str()) {
                    Some(child) => child,
                    None => return 0,
                },
                _ => return 0,
            },
            Value::Array(items) => match segment.literal_index(items.len()) {
                Some(index) => &mut items[index],
                None => return 0,
            },
            _ => return 0,
        };
    }
    match current {
        Value::Object(map) => match last {
            Segment::Glob(key) => usize::from(map.shift_remove(key.as_str()).is_some()),
            _ => 0,
        },
        Value::Array(items) => match last.literal_index(items.len()) {
            Some(index) if index + 1 == items.len() => {
                items.pop();
                1
            }
            Some(index) => {
                items[index] = Value::Null;
                1
            }
            None => 0,
        },
        _ => 0,
    }
}

/// A path glob with more than one `**` (dpath's `InvalidGlob`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidGlob;

/// `dpath.set`: replaces every value already in `node` whose path matches `glob` by `value`,
/// creating nothing; gives how many were replaced. One `**` segment stands for any number of
/// segments (at least none), as in dpath.
pub(crate) fn set(node: &mut Value, glob: &[Segment], value: &Value) -> Result<usize, InvalidGlob> {
    let double_stars = glob
        .iter()
        .filter(|g| matches!(g, Segment::Glob(text) if text == "**"))
        .count();
    if double_stars > 1 {
        return Err(InvalidGlob);
    }
    let mut paths = Vec::new();
    walk_paths(node, &mut Vec::new(), &mut paths);
    let mut changed = 0;
    for path in paths {
        if !glob_matches(&path, glob) {
            continue;
        }
        // A path under one replaced before it no longer exists.
        if let Some(slot) = resolve_mut(node, &path) {
            *slot = value.clone();
            changed += 1;
        }
    }
    Ok(changed)
}

/// dpath's `match` of a concrete path against a glob, `**` included.
fn glob_matches(path: &[Step], glob: &[Segment]) -> bool {
    let all = |steps: &[Step], segments: &[Segment]| {
        steps.len() == segments.len() && steps.iter().zip(segments).all(|(s, g)| step_matches(s, g))
    };
    let Some(at) = glob
        .iter()
        .position(|g| matches!(g, Segment::Glob(text) if text == "**"))
    else {
        return all(path, glob);
    };
    let (before, after) = (&glob[..at], &glob[at + 1..]);
    if path.len() >= glob.len() {
        // `**` becomes as many `*` as make the lengths equal (at least one).
        let stars = path.len() - glob.len() + 1;
        all(&path[..at], before) && all(&path[at + stars..], after)
    } else if path.len() + 1 == glob.len() {
        // ... or collapses to nothing.
        all(&path[..at], before) && all(&path[at..], after)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn globs(path: &[&str]) -> Vec<Segment> {
        path.iter().map(|s| Segment::Glob(s.to_string())).collect()
    }

    #[test]
    fn fnmatch_follows_python() {
        assert!(fnmatch("data", "data"));
        assert!(fnmatch("b1", "b?"));
        assert!(!fnmatch("b12", "b?"));
        assert!(fnmatch("abc", "a*"));
        assert!(fnmatch("abc", "*c"));
        assert!(fnmatch("axxbyc", "a*b*c"));
        assert!(fnmatch("b", "[abc]"));
        assert!(!fnmatch("d", "[abc]"));
        assert!(fnmatch("d", "[!abc]"));
        assert!(fnmatch("5", "[0-9]"));
        assert!(fnmatch("[x", "[x"), "an unclosed class is literal");
        assert!(fnmatch("", "*"));
    }

    #[test]
    fn python_int_parsing() {
        assert_eq!(parse_python_int(" 01 "), Some(1));
        assert_eq!(parse_python_int("-1"), Some(-1));
        assert_eq!(parse_python_int("1_000"), Some(1000));
        assert_eq!(parse_python_int("1__0"), None);
        assert_eq!(parse_python_int("x"), None);
        assert_eq!(parse_python_int(""), None);
    }

    #[test]
    fn get_reads_keys_indices_and_negative_indices() {
        let body = json!({"a": [1, 2, 3]});
        assert_eq!(
            get(body.clone(), &globs(&["a", "-1"])).unwrap(),
            Some(json!(3))
        );
        assert_eq!(
            get(body.clone(), &globs(&["a", "01"])).unwrap(),
            Some(json!(2))
        );
        assert_eq!(get(body.clone(), &globs(&["b"])).unwrap(), None);
        assert_eq!(
            get(body, &[Segment::Glob("a".into()), Segment::Index(0)]).unwrap(),
            Some(json!(1))
        );
        let keyed = json!({"0": "zero"});
        assert_eq!(
            get(keyed.clone(), &[Segment::Index(0)]).unwrap(),
            None,
            "an integer never matches a key"
        );
        assert_eq!(get(keyed, &globs(&["0"])).unwrap(), Some(json!("zero")));
        assert!(get(json!({"b1": 1, "b2": 2}), &globs(&["b?"])).is_err());
    }

    #[test]
    fn values_walk_in_order() {
        let body = json!({"a": {"x": {"y": 1}, "z": [{"y": 2}, {"y": 3}]}});
        let mut out = Vec::new();
        values(body, &globs(&["a", "*", "y"]), &mut out);
        assert_eq!(out, vec![json!(1)]);
    }

    #[test]
    fn new_creates_objects_and_arrays() {
        let mut record = json!({"id": 1});
        new(&mut record, &["a".into(), "b".into()], json!(5)).unwrap();
        new(&mut record, &["list".into(), "2".into()], json!("x")).unwrap();
        assert_eq!(
            record,
            json!({"id": 1, "a": {"b": 5}, "list": [null, null, "x"]})
        );
        new(&mut record, &["id".into()], json!(2)).unwrap();
        assert_eq!(record["id"], 2);
        assert!(new(&mut record, &["id".into(), "x".into()], json!(1)).is_err());
    }

    #[test]
    fn delete_matches_dpath() {
        let mut record = json!({"tags": ["x", "y", "z"], "k": 1});
        let none: Option<LeafFilter<'_, ()>> = None;
        assert_eq!(
            delete(&mut record, &globs(&["tags", "*"]), none).unwrap(),
            3
        );
        assert_eq!(record, json!({"tags": [null, null], "k": 1}));

        let mut record = json!({"tags": ["x", "y", "z"]});
        let none: Option<LeafFilter<'_, ()>> = None;
        delete(&mut record, &globs(&["tags", "-1"]), none).unwrap();
        assert_eq!(record, json!({"tags": ["x", "y"]}));

        // With a filter the glob does not matter: every matching scalar goes.
        let mut record = json!({"a": 1, "b": {"c": null, "d": [null, 2, null]}, "e": null});
        let mut is_null = |v: &Value| Ok::<_, ()>(v.is_null());
        let removed = delete(&mut record, &globs(&["a"]), Some(&mut is_null)).unwrap();
        assert_eq!(removed, 4);
        assert_eq!(record, json!({"a": 1, "b": {"d": [null, 2]}}));
    }

    #[test]
    fn set_replaces_existing_values_only() {
        let mut node = json!({"name": "x", "retriever": {"requester": {"path": "/a"}}, "list": [{"v": 1}, {"v": 2}]});
        let value = json!("new");
        assert_eq!(set(&mut node, &globs(&["name"]), &value), Ok(1));
        assert_eq!(
            set(
                &mut node,
                &globs(&["retriever", "requester", "path"]),
                &value
            ),
            Ok(1)
        );
        assert_eq!(set(&mut node, &globs(&["missing"]), &value), Ok(0));
        assert_eq!(set(&mut node, &globs(&["list", "*", "v"]), &value), Ok(2));
        assert_eq!(node["name"], "new");
        assert_eq!(node["retriever"]["requester"]["path"], "new");
        assert_eq!(node["list"], json!([{"v": "new"}, {"v": "new"}]));
        assert!(node.get("missing").is_none());
    }

    #[test]
    fn set_matches_indices_and_double_stars() {
        let mut node =
            json!({"t": [{"f": [{"value": "a"}]}], "deep": {"x": {"name": 1}, "name": 2}});
        let index = [
            Segment::Glob("t".into()),
            Segment::Index(0),
            Segment::Glob("f".into()),
            Segment::Glob("0".into()),
            Segment::Glob("value".into()),
        ];
        assert_eq!(set(&mut node, &index, &json!("b")), Ok(1));
        assert_eq!(node["t"][0]["f"][0]["value"], "b");
        // An integer never matches an object key.
        let mut keyed = json!({"0": "x"});
        assert_eq!(set(&mut keyed, &[Segment::Index(0)], &json!("y")), Ok(0));
        // `**` stands for any depth, none included.
        assert_eq!(
            set(&mut node, &globs(&["deep", "**", "name"]), &json!(0)),
            Ok(2)
        );
        assert_eq!(node["deep"], json!({"x": {"name": 0}, "name": 0}));
        assert_eq!(
            set(&mut node, &globs(&["**", "a", "**"]), &json!(0)),
            Err(InvalidGlob)
        );
    }
}
