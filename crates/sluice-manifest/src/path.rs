use std::fmt;

/// A location in a manifest, displayed as `streams[2].retriever.paginator`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ManifestPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl ManifestPath {
    /// The root of the manifest.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses a dotted path such as `streams[2].retriever` (used in tests and messages).
    pub fn parse(text: &str) -> Self {
        let mut path = Self::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (key, rest) = part.split_once('[').unwrap_or((part, ""));
            if !key.is_empty() {
                path = path.key(key);
            }
            for idx in rest.split('[') {
                if let Ok(i) = idx.trim_end_matches(']').parse() {
                    path = path.index(i);
                }
            }
        }
        path
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_owned()));
        next
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// The keys and indices from the root down.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root of the manifest.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This path followed by `rest` (a path relative to it).
    pub fn join(&self, rest: &ManifestPath) -> Self {
        let mut next = self.clone();
        next.0.extend(rest.0.iter().cloned());
        next
    }

    /// Whether this path is `prefix` or lies under it.
    pub fn starts_with(&self, prefix: &ManifestPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// This path relative to `prefix`, when it lies under it.
    pub fn strip_prefix(&self, prefix: &ManifestPath) -> Option<ManifestPath> {
        self.0
            .strip_prefix(prefix.0.as_slice())
            .map(|rest| ManifestPath(rest.to_vec()))
    }

    /// The path as a JSON pointer into the manifest's tree (`/streams/2/retriever`), for
    /// `serde_json::Value::pointer`.
    pub fn json_pointer(&self) -> String {
        let mut pointer = String::new();
        for segment in &self.0 {
            pointer.push('/');
            match segment {
                Segment::Key(key) => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Segment::Index(index) => pointer.push_str(&index.to_string()),
            }
        }
        pointer
    }

    /// The path holding this one (the root for the root).
    pub fn parent(&self) -> Self {
        let mut parent = self.clone();
        parent.0.pop();
        parent
    }

    /// The top-level key this path lies under (`streams[2].retriever` gives `streams`).
    pub fn top_key(&self) -> Option<&str> {
        match self.0.first() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// Whether this path is `ancestor` or lies under it (`streams[1].retriever` is within
    /// `streams[1]`, not within `streams[10]`).
    pub fn is_within(&self, ancestor: &ManifestPath) -> bool {
        self.0.starts_with(&ancestor.0)
    }

    /// The index of the stream this path lies in (`streams[2]...` gives 2).
    pub fn stream_index(&self) -> Option<usize> {
        match self.top_entry() {
            Some(("streams", i)) => Some(i),
            _ => None,
        }
    }

    /// The top-level list and the index of the entry this path lies in
    /// (`dynamic_streams[2].stream_template` gives `("dynamic_streams", 2)`).
    pub fn top_entry(&self) -> Option<(&str, usize)> {
        match self.0.as_slice() {
            [Segment::Key(k), Segment::Index(i), ..] => Some((k, *i)),
            _ => None,
        }
    }

    /// The first `len` keys and indices of this path (all of it when it is shorter).
    pub fn prefix(&self, len: usize) -> Self {
        Self(self.0.iter().take(len).cloned().collect())
    }
}

impl fmt::Display for ManifestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_and_indices() {
        let p = ManifestPath::root()
            .key("streams")
            .index(2)
            .key("retriever")
            .key("paginator");
        assert_eq!(p.to_string(), "streams[2].retriever.paginator");
        assert_eq!(ManifestPath::parse("streams[2].retriever.paginator"), p);
        assert_eq!(p.stream_index(), Some(2));
        assert_eq!(p.top_entry(), Some(("streams", 2)));
        assert_eq!(p.prefix(2).to_string(), "streams[2]");
        assert_eq!(p.prefix(9), p);
    }

    #[test]
    fn joins_and_compares_prefixes() {
        let template = ManifestPath::parse("dynamic_streams[0].stream_template");
        let inner = ManifestPath::parse("retriever.requester");
        let joined = template.join(&inner);
        assert_eq!(
            joined.to_string(),
            "dynamic_streams[0].stream_template.retriever.requester"
        );
        assert!(joined.starts_with(&template));
        assert!(!template.starts_with(&joined));
        assert_eq!(joined.parent(), template.key("retriever"));
        assert!(ManifestPath::root().parent().is_root());
        assert_eq!(joined.strip_prefix(&template), Some(inner));
        assert_eq!(template.strip_prefix(&joined), None);
        let odd = ManifestPath::root().key("a/b~c").index(3);
        assert_eq!(odd.json_pointer(), "/a~1b~0c/3");
    }
}
