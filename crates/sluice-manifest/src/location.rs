//! Where a manifest's components were written: the line and column that errors point at.
//!
//! Loading a manifest keeps no positions (the YAML reader gives none, and the happy path should
//! not pay for them). A [`ManifestSource`] keeps the text, and the first error that needs a
//! location parses it again with a YAML reader that reports positions, giving the position of
//! every node of the document as written.
//!
//! Errors name paths of the *resolved* manifest (`streams[0].retriever.requester.url_base`),
//! while the text may have been written elsewhere: under `definitions` when the requester is a
//! `$ref` or a `#/definitions/...` string, under an anchor when it is a YAML alias or merge key.
//! A resolved path is mapped back by walking the written tree along it and following each
//! reference it goes through (a `$ref` mapping is followed only for keys it does not set
//! itself). A path that was never written (a field filled from `$parameters`, a default type)
//! gets the position of its nearest written ancestor.

use crate::path::Segment;
use crate::{ManifestError, ManifestPath, resolve};
use saphyr_parser::{Event, Parser};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// The most references followed while locating one path (a longer chain is a cycle, which
/// loading has already refused).
const MAX_HOPS: usize = 64;

/// A position in the manifest text, both numbers starting at 1 as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A manifest's text and the name to show for it (its file), able to say where a component
/// of the resolved manifest was written.
///
/// ```
/// use sluice_manifest::{ManifestPath, ManifestSource};
/// let text = "definitions:\n  req:\n    url_base: https://x\nstreams:\n  - retriever:\n      requester:\n        $ref: \"#/definitions/req\"\n";
/// let source = ManifestSource::new("manifest.yaml", text);
/// let at = source.locate(&ManifestPath::parse("streams[0].retriever.requester.url_base"));
/// assert_eq!(at.unwrap().to_string(), "3:5");
/// ```
#[derive(Debug)]
pub struct ManifestSource {
    name: String,
    text: String,
    /// Built by the first lookup; `None` when the text does not parse.
    map: OnceLock<Option<SourceMap>>,
}

impl ManifestSource {
    /// The manifest `text`, shown as `name` (a file path) in messages.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            map: OnceLock::new(),
        }
    }

    /// The name shown for the manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the node at `path` of the resolved manifest was written, or its nearest written
    /// ancestor. `None` only when the text does not parse.
    pub fn locate(&self, path: &ManifestPath) -> Option<Location> {
        let map = self
            .map
            .get_or_init(|| SourceMap::build(&self.text))
            .as_ref()?;
        map.position(&written_at(&map.written, path))
    }

    /// Where `error` lies: the reader's own position for a YAML syntax error, else where its
    /// path was written.
    pub fn locate_error(&self, error: &ManifestError) -> Option<Location> {
        error.location.or_else(|| self.locate(&error.path))
    }

    /// `manifest.yaml:42:7` for `path`, or the name alone when it cannot be located.
    pub fn position_text(&self, path: &ManifestPath) -> String {
        self.with_location(self.locate(path))
    }

    /// The error as a compiler prints it: `manifest.yaml:42:7: streams[2].retriever: <message>`.
    pub fn describe(&self, error: &ManifestError) -> String {
        let mut text = self.with_location(self.locate_error(error));
        if !error.path.is_root() {
            text.push_str(&format!(": {}", error.path));
        }
        text.push_str(&format!(": {}", error.message));
        if let Some(suggestion) = &error.suggestion {
            text.push_str(&format!(" ({suggestion})"));
        }
        text
    }

    fn with_location(&self, location: Option<Location>) -> String {
        match location {
            Some(location) => format!("{}:{location}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The document as written (aliases expanded, references not) and the position of its nodes.
#[derive(Debug)]
struct SourceMap {
    written: Value,
    /// The position of each node: a mapping value at its key, a list item where it starts.
    positions: HashMap<ManifestPath, Location>,
    /// Paths whose children were written elsewhere: an alias and its anchor, a mapping and the
    /// mappings it merges (`<<`), in document order.
    redirects: Vec<(ManifestPath, ManifestPath)>,
}

impl SourceMap {
    fn build(text: &str) -> Option<Self> {
        let written = crate::yaml::parse(text).ok()?;
        let (positions, redirects) = positions(text)?;
        Some(Self {
            written,
            positions,
            redirects,
        })
    }

    /// The position of `path` in the document as written, or of its nearest ancestor that has one.
    fn position(&self, path: &ManifestPath) -> Option<Location> {
        let mut path = path.clone();
        loop {
            if let Some(location) = self.exact(&path, 0) {
                return Some(location);
            }
            if path.is_root() {
                return None;
            }
            path = path.parent();
        }
    }

    fn exact(&self, path: &ManifestPath, hops: usize) -> Option<Location> {
        if let Some(location) = self.positions.get(path) {
            return Some(*location);
        }
        if hops > MAX_HOPS {
            return None;
        }
        // The longest redirected prefix first: an alias nested in an alias is the nearer source.
        let mut candidates: Vec<&(ManifestPath, ManifestPath)> = self
            .redirects
            .iter()
            .filter(|(from, _)| path.starts_with(from) && path != from)
            .collect();
        candidates.sort_by_key(|(from, _)| std::cmp::Reverse(from.segments().len()));
        candidates.into_iter().find_map(|(from, to)| {
            let rest = path.strip_prefix(from)?;
            self.exact(&to.join(&rest), hops + 1)
        })
    }
}

/// The path in the document as written where the node at `resolved` of the resolved manifest
/// comes from, as far down as it can be followed.
fn written_at(written: &Value, resolved: &ManifestPath) -> ManifestPath {
    let mut node = written;
    let mut at = ManifestPath::root();
    let mut hops = 0;
    for segment in resolved.segments() {
        // Where the walk stands before following references: what a segment found nowhere
        // (a field filled from `$parameters`) is closest to.
        let before = at.clone();
        // Follow references until the node holds this segment itself.
        while hops < MAX_HOPS {
            let reference = match (node, segment) {
                (Value::String(text), _) => text.as_str(),
                (Value::Object(map), Segment::Key(key)) if map.contains_key(key) => break,
                (Value::Object(map), _) => match map.get(resolve::MERGE_REF_KEY) {
                    Some(Value::String(text)) => text.as_str(),
                    _ => break,
                },
                _ => break,
            };
            let Some((target, target_at)) = resolve::reference_target(written, reference) else {
                break;
            };
            (node, at) = (target, target_at);
            hops += 1;
        }
        let next = match (node, segment) {
            (Value::Object(map), Segment::Key(key)) => map.get(key).map(|v| (v, at.key(key))),
            (Value::Array(items), Segment::Index(i)) => items.get(*i).map(|v| (v, at.index(*i))),
            _ => None,
        };
        match next {
            Some(found) => (node, at) = found,
            None => return before,
        }
    }
    at
}

/// What the parser is inside of, with the path of that node (`None` inside a mapping key that
/// is itself a collection, which no path can name).
enum Frame {
    Mapping {
        path: Option<ManifestPath>,
        /// The key just read, waiting for its value, and where it was written.
        key: Option<(Option<String>, Location)>,
    },
    Sequence {
        path: Option<ManifestPath>,
        next: usize,
        /// Set for the list of a merge key (`<<: [*a, *b]`): the mapping its aliases merge into.
        merge_into: Option<ManifestPath>,
    },
}

type Positions = (
    HashMap<ManifestPath, Location>,
    Vec<(ManifestPath, ManifestPath)>,
);

/// The position of every node of the first document of `text`, and the redirects of its aliases
/// and merge keys; `None` when the text is not valid YAML.
fn positions(text: &str) -> Option<Positions> {
    let mut positions = HashMap::new();
    let mut redirects = Vec::new();
    let mut anchors: HashMap<usize, ManifestPath> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        let start = Location {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        let anchor = match &event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    break;
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                continue;
            }
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _) => *anchor,
            Event::Alias(_) => 0,
            _ => continue,
        };
        // Where this node sits: the root, a key or a value of a mapping, an item of a list.
        let mut merge_into = None;
        let (path, location) = match stack.last_mut() {
            None => (Some(ManifestPath::root()), Location { line: 1, column: 1 }),
            Some(Frame::Mapping { path, key }) => match key.take() {
                None => {
                    let text = match &event {
                        Event::Scalar(text, ..) => Some(key_text(text)),
                        _ => None,
                    };
                    *key = Some((text, start));
                    // A key is no node of the tree; a collection as key is skipped whole.
                    match event {
                        Event::SequenceStart(..) => stack.push(Frame::Sequence {
                            path: None,
                            next: 0,
                            merge_into: None,
                        }),
                        Event::MappingStart(..) => stack.push(Frame::Mapping {
                            path: None,
                            key: None,
                        }),
                        _ => {}
                    }
                    continue;
                }
                Some((text, key_at)) => {
                    let mapping = path.clone();
                    let value = mapping.as_ref().zip(text.as_deref()).map(|(m, k)| m.key(k));
                    if text.as_deref() == Some("<<") {
                        merge_into = mapping;
                    }
                    (value, key_at)
                }
            },
            Some(Frame::Sequence {
                path,
                next,
                merge_into: merging,
            }) => {
                let item = path.as_ref().map(|p| p.index(*next));
                *next += 1;
                if merging.is_some() {
                    merge_into = merging.clone();
                }
                (item, start)
            }
        };
        if let Some(path) = &path {
            positions.insert(path.clone(), location);
            if anchor > 0 {
                anchors.insert(anchor, path.clone());
            }
        }
        match event {
            Event::Alias(id) => {
                let Some(anchored) = anchors.get(&id) else {
                    continue;
                };
                // A merged alias lends its keys to the mapping, a plain one its children to itself.
                if let Some(into) = merge_into {
                    redirects.push((into, anchored.clone()));
                } else if let Some(path) = path {
                    redirects.push((path, anchored.clone()));
                }
            }
            Event::SequenceStart(..) => stack.push(Frame::Sequence {
                // The items of a merge list are merged, not kept.
                path: if merge_into.is_some() { None } else { path },
                next: 0,
                merge_into,
            }),
            Event::MappingStart(..) => {
                if let (Some(into), Some(path)) = (merge_into, &path) {
                    redirects.push((into, path.clone()));
                }
                stack.push(Frame::Mapping { path, key: None });
            }
            _ => {}
        }
    }
    Some((positions, redirects))
}

/// A scalar key as the tree names it: PyYAML's null key is `null`.
fn key_text(text: &str) -> String {
    match text {
        "~" | "" => "null".to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: &str) -> String {
        ManifestSource::new("m.yaml", text)
            .locate(&ManifestPath::parse(path))
            .map(|l| l.to_string())
            .unwrap_or_default()
    }

    const MANIFEST: &str = "\
version: 6.0.0
definitions:
  requester:
    type: HttpRequester
    url_base: https://x
  base: &base
    name: users
    primary_key: id
streams:
  - type: DeclarativeStream
    retriever:
      requester:
        $ref: \"#/definitions/requester\"
        path: /users
      paginator: \"#/definitions/requester\"
  - <<: *base
    name: orders
    schema_loader: { type: InlineSchemaLoader, schema: {a: [1, {b: 2}]} }
  - *base
";

    #[test]
    fn mapping_values_are_located_at_their_key() {
        assert_eq!(at(MANIFEST, "version"), "1:1");
        assert_eq!(at(MANIFEST, "streams"), "9:1");
        assert_eq!(at(MANIFEST, "streams[0]"), "10:5");
        assert_eq!(at(MANIFEST, "streams[0].retriever.requester.path"), "14:9");
        assert_eq!(at(MANIFEST, ""), "1:1");
    }

    #[test]
    fn flow_collections_are_located_too() {
        assert_eq!(at(MANIFEST, "streams[1].schema_loader"), "18:5");
        assert_eq!(at(MANIFEST, "streams[1].schema_loader.type"), "18:22");
        assert_eq!(
            at(MANIFEST, "streams[1].schema_loader.schema.a[1].b"),
            "18:65"
        );
    }

    #[test]
    fn referenced_components_point_into_definitions() {
        // `url_base` is not set by the `$ref` mapping: it comes from the definition.
        assert_eq!(
            at(MANIFEST, "streams[0].retriever.requester.url_base"),
            "5:5"
        );
        // A bare reference string is the whole definition.
        assert_eq!(at(MANIFEST, "streams[0].retriever.paginator.type"), "4:5");
        // The reference itself stays where it is written.
        assert_eq!(at(MANIFEST, "streams[0].retriever.paginator"), "15:7");
    }

    #[test]
    fn aliases_and_merge_keys_point_at_the_anchor() {
        // Own keys of a merging mapping win; merged ones come from the anchor.
        assert_eq!(at(MANIFEST, "streams[1].name"), "17:5");
        assert_eq!(at(MANIFEST, "streams[1].primary_key"), "8:5");
        assert_eq!(at(MANIFEST, "streams[2]"), "19:5");
        assert_eq!(at(MANIFEST, "streams[2].primary_key"), "8:5");
    }

    #[test]
    fn a_merge_list_takes_the_earliest_mapping_first() {
        let text = "a: &a {k: 1}\nb: &b {k: 2, m: 3}\nx:\n  <<: [*a, *b]\n  own: 4\n";
        assert_eq!(at(text, "x.k"), "1:8");
        assert_eq!(at(text, "x.m"), "2:14");
        assert_eq!(at(text, "x.own"), "5:3");
    }

    #[test]
    fn unwritten_paths_fall_back_to_the_nearest_ancestor() {
        assert_eq!(
            at(MANIFEST, "streams[0].retriever.requester.$parameters.x"),
            "12:7"
        );
        assert_eq!(at(MANIFEST, "streams[7].name"), "9:1");
    }

    #[test]
    fn unparsable_text_has_no_location() {
        assert_eq!(at("a: [1, 2\n", "a"), "");
    }

    #[test]
    fn describes_errors_like_a_compiler() {
        let source = ManifestSource::new("m.yaml", MANIFEST);
        let error = ManifestError::new(
            ManifestPath::parse("streams[0].retriever.requester.url_base"),
            crate::ManifestErrorKind::InvalidValue,
            "bad",
        )
        .with_suggestion("did you mean 'x'?");
        assert_eq!(
            source.describe(&error),
            "m.yaml:5:5: streams[0].retriever.requester.url_base: bad (did you mean 'x'?)"
        );
    }
}
