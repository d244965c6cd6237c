//! Stage 2: references.
//!
//! Follows the reference's `ManifestReferenceResolver`:
//!
//! - a string starting with `#/` anywhere in the manifest is replaced by the node it points at;
//! - a mapping with a `$ref` key is replaced by the referenced mapping with the mapping's other
//!   keys laid over it (the mapping's own keys win); when `$ref` points at something that is not a
//!   mapping, that value replaces the whole mapping;
//! - references inside a referenced node are resolved too, and targets are looked up in the
//!   manifest as written (not as resolved);
//! - a path segment that is not a key of a mapping is split at its first `/`, so a key that
//!   itself contains `/` can still be reached (`#/nested/path` reads the key `nested/path` when the
//!   mapping has one); numeric segments index lists;
//! - `config_overrides` holds connector config, never references, and is copied as is.
//!
//! Beyond the reference (which no longer reads 0.1.0-era manifests), a string containing
//! `*ref(a.b.c)` refers to the dotted path `a.b.c`, both as a bare value and as a `$ref` value, as
//! the 0.1.0 parser read it; and a JSON-pointer escaped segment (`~1` for `/`, `~0` for `~`) is
//! unescaped when the path does not resolve as written.

use crate::{ManifestError, ManifestErrorKind, ManifestPath};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The key that merges a referenced mapping into the mapping holding it.
const REF_KEY: &str = "$ref";
/// Fields whose values are connector config, never references.
const CONFIG_VALUE_FIELDS: &[&str] = &["config_overrides"];
/// Nesting deeper than this (mappings, lists and reference hops together) is refused: real
/// manifests stay far below it, and it keeps recursion well inside the stack.
const MAX_DEPTH: usize = 256;
/// The resolved tree may hold at most this many nodes (the largest real manifests resolve to about
/// 200,000); references that multiply each other can
/// otherwise make a small file expand without bound.
const MAX_NODES: usize = 5_000_000;

/// Replaces every reference of the tree by its target.
///
/// Errors name the path where the offending reference is written and the reference text:
/// a reference to nothing is [`ManifestErrorKind::DanglingReference`], references that lead back
/// to themselves are [`ManifestErrorKind::ReferenceCycle`].
///
/// ```
/// use serde_json::json;
/// let tree = json!({
///     "definitions": {"requester": {"url_base": "https://x", "path": "/a"}},
///     "requester": {"$ref": "#/definitions/requester", "path": "/b"},
///     "base": "#/definitions/requester/url_base",
/// });
/// let resolved = sluice_manifest::resolve::resolve_references(tree).unwrap();
/// assert_eq!(resolved["requester"], json!({"url_base": "https://x", "path": "/b"}));
/// assert_eq!(resolved["base"], "https://x");
/// ```
pub fn resolve_references(tree: Value) -> Result<Value, ManifestError> {
    let mut resolver = Resolver {
        manifest: &tree,
        in_progress: Vec::new(),
        done: HashMap::new(),
        nodes: 0,
    };
    resolver.evaluate(&tree, &ManifestPath::root(), 0)
}

/// Resolves only the subtree under the top-level `key` (references may still point anywhere in
/// the manifest): what a caller needing one section, such as `spec`, pays instead of expanding
/// every stream. `None` when the manifest has no such key.
pub fn resolve_section(tree: &Value, key: &str) -> Result<Option<Value>, ManifestError> {
    let Some(node) = tree.get(key) else {
        return Ok(None);
    };
    let mut resolver = Resolver {
        manifest: tree,
        in_progress: Vec::new(),
        done: HashMap::new(),
        nodes: 0,
    };
    resolver
        .evaluate(node, &ManifestPath::root().key(key), 0)
        .map(Some)
}

/// A reference found in a string, in the syntax it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reference<'a> {
    /// `#/a/b/0`: segments separated by `/`.
    Pointer(&'a str),
    /// `*ref(a.b.0)`: the 0.1.0-era form, segments separated by `.`.
    Dotted(&'a str),
}

impl<'a> Reference<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        if let Some(path) = text.strip_prefix("#/") {
            return Some(Self::Pointer(path));
        }
        // The 0.1.0 parser replaced any string containing `*ref(` by the target named up to the first `)`.
        let start = text.find("*ref(")? + "*ref(".len();
        let len = text[start..].find(')')?;
        Some(Self::Dotted(text[start..start + len].trim()))
    }

    fn separator(self) -> char {
        match self {
            Self::Pointer(_) => '/',
            Self::Dotted(_) => '.',
        }
    }

    fn path(self) -> &'a str {
        match self {
            Self::Pointer(p) | Self::Dotted(p) => p,
        }
    }
}

struct Resolver<'m> {
    manifest: &'m Value,
    /// References being expanded, outermost first, with where each is written.
    in_progress: Vec<(String, ManifestPath)>,
    /// Resolved targets by reference text: a target resolves the same wherever it is used.
    done: HashMap<String, Value>,
    nodes: usize,
}

impl Resolver<'_> {
    fn evaluate(
        &mut self,
        node: &Value,
        at: &ManifestPath,
        depth: usize,
    ) -> Result<Value, ManifestError> {
        if depth > MAX_DEPTH {
            return Err(ManifestError::new(
                at.clone(),
                ManifestErrorKind::InvalidValue,
                format!(
                    "the manifest nests deeper than {MAX_DEPTH} levels (counting reference hops)"
                ),
            ));
        }
        self.count(1, at)?;
        match node {
            Value::Object(map) => self.evaluate_object(map, at, depth),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.evaluate(item, &at.index(i), depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::String(text) => match Reference::parse(text) {
                Some(reference) => self.expand(text, reference, at, depth),
                None => Ok(node.clone()),
            },
            _ => Ok(node.clone()),
        }
    }

    fn evaluate_object(
        &mut self,
        map: &Map<String, Value>,
        at: &ManifestPath,
        depth: usize,
    ) -> Result<Value, ManifestError> {
        let mut own = Map::with_capacity(map.len());
        for (key, value) in map {
            if key == REF_KEY {
                continue;
            }
            let evaluated = if CONFIG_VALUE_FIELDS.contains(&key.as_str()) {
                self.count(node_count(value), at)?;
                value.clone()
            } else {
                self.evaluate(value, &at.key(key), depth + 1)?
            };
            own.insert(key.clone(), evaluated);
        }
        let Some(ref_value) = map.get(REF_KEY) else {
            return Ok(Value::Object(own));
        };
        match self.evaluate(ref_value, &at.key(REF_KEY), depth + 1)? {
            Value::Object(mut base) => {
                // The mapping's own keys win over the referenced ones, keeping the referenced order.
                for (key, value) in own {
                    base.insert(key, value);
                }
                Ok(Value::Object(base))
            }
            other => Ok(other),
        }
    }

    fn expand(
        &mut self,
        text: &str,
        reference: Reference<'_>,
        at: &ManifestPath,
        depth: usize,
    ) -> Result<Value, ManifestError> {
        if let Some(resolved) = self.done.get(text) {
            let resolved = resolved.clone();
            self.count(node_count(&resolved), at)?;
            return Ok(resolved);
        }
        if let Some(start) = self.in_progress.iter().position(|(r, _)| r == text) {
            let chain: Vec<String> = self.in_progress[start..]
                .iter()
                .map(|(r, p)| format!("`{r}` at {p}"))
                .chain(std::iter::once(format!("`{text}` at {at}")))
                .collect();
            return Err(ManifestError::new(
                at.clone(),
                ManifestErrorKind::ReferenceCycle,
                format!(
                    "reference `{text}` leads back to itself: {}",
                    chain.join(" -> ")
                ),
            ));
        }
        let Some((target, target_at)) = lookup(self.manifest, reference) else {
            return Err(ManifestError::new(
                at.clone(),
                ManifestErrorKind::DanglingReference,
                format!("reference `{text}` points at nothing in the manifest"),
            ));
        };
        self.in_progress.push((text.to_owned(), at.clone()));
        let resolved = self.evaluate(target, &target_at, depth + 1);
        self.in_progress.pop();
        let resolved = resolved?;
        self.done.insert(text.to_owned(), resolved.clone());
        Ok(resolved)
    }

    fn count(&mut self, nodes: usize, at: &ManifestPath) -> Result<(), ManifestError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(ManifestError::new(
                at.clone(),
                ManifestErrorKind::InvalidValue,
                format!("references expand the manifest past {MAX_NODES} nodes"),
            ));
        }
        Ok(())
    }
}

fn node_count(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(node_count).sum::<usize>(),
        Value::Array(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        _ => 1,
    }
}

/// The node a reference string (`#/a/b`, `*ref(a.b)`) points at in the manifest as written, and
/// its path; `None` when `text` is no reference or points at nothing.
pub(crate) fn reference_target<'m>(
    manifest: &'m Value,
    text: &str,
) -> Option<(&'m Value, ManifestPath)> {
    lookup(manifest, Reference::parse(text)?)
}

/// The key that merges a referenced mapping into the mapping holding it (`$ref`).
pub(crate) const MERGE_REF_KEY: &str = REF_KEY;

/// Finds the node a reference points at, and its path, in the manifest as written.
fn lookup<'m>(manifest: &'m Value, reference: Reference<'_>) -> Option<(&'m Value, ManifestPath)> {
    let separator = reference.separator();
    let path = reference.path();
    if let Some(found) = lookup_ambiguous(manifest, path, separator) {
        return Some(found);
    }
    if separator == '/' && path.contains('~') {
        return lookup_json_pointer(manifest, path);
    }
    None
}

/// The reference's reading of a path: at each level, first the whole rest of the path as one
/// key, then the part up to the next separator as a key or list index.
fn lookup_ambiguous<'m>(
    mut node: &'m Value,
    mut rest: &str,
    separator: char,
) -> Option<(&'m Value, ManifestPath)> {
    let mut at = ManifestPath::root();
    while !rest.is_empty() {
        if let Some(whole) = node.as_object().and_then(|map| map.get(rest)) {
            return Some((whole, at.key(rest)));
        }
        let (head, tail) = rest.split_once(separator).unwrap_or((rest, ""));
        (node, at) = step(node, head, &at)?;
        rest = tail;
    }
    Some((node, at))
}

/// One level down: a mapping key, or a list index (negative counts from the end, as in Python).
fn step<'m>(
    node: &'m Value,
    segment: &str,
    at: &ManifestPath,
) -> Option<(&'m Value, ManifestPath)> {
    match node {
        Value::Object(map) => map.get(segment).map(|v| (v, at.key(segment))),
        Value::Array(items) => {
            let index: i64 = segment.parse().ok()?;
            let index = if index < 0 {
                i64::try_from(items.len()).ok()? + index
            } else {
                index
            };
            let index = usize::try_from(index).ok()?;
            items.get(index).map(|v| (v, at.index(index)))
        }
        _ => None,
    }
}

fn lookup_json_pointer<'m>(mut node: &'m Value, path: &str) -> Option<(&'m Value, ManifestPath)> {
    let mut at = ManifestPath::root();
    for raw in path.split('/') {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        (node, at) = step(node, &segment, &at)?;
    }
    Some((node, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_both_reference_syntaxes() {
        assert_eq!(Reference::parse("#/a/b"), Some(Reference::Pointer("a/b")));
        assert_eq!(
            Reference::parse("*ref(definitions.x)"),
            Some(Reference::Dotted("definitions.x"))
        );
        assert_eq!(Reference::parse("plain"), None);
        assert_eq!(Reference::parse("a #/b"), None);
    }

    #[test]
    fn whole_key_with_separator_wins() {
        let tree = json!({"nested": {"path": "first"}, "nested/path": "second"});
        let (value, at) = lookup(&tree, Reference::Pointer("nested/path")).unwrap();
        assert_eq!(value, "second");
        assert_eq!(at.to_string(), "nested/path");
    }

    #[test]
    fn negative_index_counts_from_the_end() {
        let tree = json!({"l": [1, 2, 3]});
        assert_eq!(lookup(&tree, Reference::Pointer("l/-1")).unwrap().0, 3);
    }
}
