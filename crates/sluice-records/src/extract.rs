use serde_json::Value;

/// Extracts records at a path in a decoded body (the manifest's `DpathExtractor`).
///
/// Path segments are object keys or, on arrays, indices. A segment `*` matches every key or
/// element at its level. An empty path takes the whole body. What the path reaches is
/// returned as records: each element of an array, or a single non-empty value; a missing path
/// gives no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpathExtractor {
    field_path: Vec<String>,
    has_wildcard: bool,
}

impl DpathExtractor {
    /// An extractor for a path whose segments are already rendered.
    pub fn new(field_path: Vec<String>) -> Self {
        let has_wildcard = field_path.iter().any(|s| s == "*");
        Self {
            field_path,
            has_wildcard,
        }
    }

    /// The path records are taken from.
    pub fn field_path(&self) -> &[String] {
        &self.field_path
    }

    /// Moves the records found in `body` onto `records`.
    pub fn extract(&self, body: Value, records: &mut Vec<Value>) {
        let extracted = if self.has_wildcard {
            let mut matches = Vec::new();
            collect_matches(body, &self.field_path, &mut matches);
            Value::Array(matches)
        } else {
            match take_at(body, &self.field_path) {
                Some(found) => found,
                None => return,
            }
        };
        match extracted {
            Value::Array(items) => records.extend(items),
            other if is_truthy(&other) => records.push(other),
            _ => {}
        }
    }
}

fn take_at(mut node: Value, path: &[String]) -> Option<Value> {
    for segment in path {
        node = match node {
            Value::Object(mut map) => map.swap_remove(segment.as_str())?,
            Value::Array(mut items) => {
                let index: usize = segment.parse().ok()?;
                if index >= items.len() {
                    return None;
                }
                items.swap_remove(index)
            }
            _ => return None,
        };
    }
    Some(node)
}

fn collect_matches(node: Value, path: &[String], out: &mut Vec<Value>) {
    let Some((segment, rest)) = path.split_first() else {
        out.push(node);
        return;
    };
    let wildcard = segment == "*";
    match node {
        Value::Object(map) => {
            if wildcard {
                for (_, child) in map {
                    collect_matches(child, rest, out);
                }
            } else if let Some(child) = map
                .into_iter()
                .find_map(|(k, v)| (k == *segment).then_some(v))
            {
                collect_matches(child, rest, out);
            }
        }
        Value::Array(items) => {
            if wildcard {
                for child in items {
                    collect_matches(child, rest, out);
                }
            } else if let Ok(index) = segment.parse::<usize>() {
                if let Some(child) = items.into_iter().nth(index) {
                    collect_matches(child, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// Python truthiness of a JSON value: empty containers, empty strings, zero, false and null are false.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract(path: &[&str], body: Value) -> Vec<Value> {
        let extractor = DpathExtractor::new(path.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        extractor.extract(body, &mut out);
        out
    }

    #[test]
    fn nested_path_and_missing_path() {
        let body = json!({"data": {"items": [{"id": 1}, {"id": 2}]}, "meta": {}});
        assert_eq!(
            extract(&["data", "items"], body.clone()),
            vec![json!({"id": 1}), json!({"id": 2})]
        );
        assert!(extract(&["data", "nope"], body.clone()).is_empty());
        assert!(
            extract(&["meta"], body).is_empty(),
            "an empty object is no record"
        );
    }

    #[test]
    fn empty_path_takes_the_body_and_single_objects_are_one_record() {
        assert_eq!(extract(&[], json!({"id": 7})), vec![json!({"id": 7})]);
        assert_eq!(
            extract(&["user"], json!({"user": {"id": 7}})),
            vec![json!({"id": 7})]
        );
        assert!(extract(&[], json!({})).is_empty());
    }

    #[test]
    fn array_indices_and_wildcards() {
        let body = json!({"pages": [{"rows": [{"id": 1}]}, {"rows": [{"id": 2}, {"id": 3}]}]});
        assert_eq!(extract(&["pages", "1", "rows"], body.clone()).len(), 2);
        assert_eq!(
            extract(&["pages", "*", "rows"], body),
            vec![json!([{"id": 1}]), json!([{"id": 2}, {"id": 3}])],
            "a wildcard yields each match, as dpath.values does"
        );
        let body = json!({"a": {"x": {"id": 1}, "y": {"id": 2}}});
        assert_eq!(
            extract(&["a", "*"], body),
            vec![json!({"id": 1}), json!({"id": 2})]
        );
    }
}
