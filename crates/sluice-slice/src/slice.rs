//! A stream slice: the partition a request reads and the cursor window inside it.

use serde_json::{Map, Value};

/// One unit of reading: a partition (from the partition router) and a cursor window (from the
/// incremental cursor), plus fields a parent record lends its child (`extra_fields`).
///
/// Templates see the partition and the window merged into one mapping (`stream_slice`,
/// `stream_partition` and `stream_interval` are the same value in the reference); the extra fields
/// are visible as `stream_slice.extra_fields`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamSlice {
    /// The partition's fields (`{"board_id": 7, "parent_slice": {}}`); empty without a router.
    pub partition: Map<String, Value>,
    /// The cursor window's fields (`{"start_time": "...", "end_time": "..."}`); empty without a cursor.
    pub cursor_slice: Map<String, Value>,
    /// Fields of the parent record, by the names of the router's `extra_fields`.
    pub extra_fields: Map<String, Value>,
}

impl StreamSlice {
    /// A slice of one partition and no cursor window.
    pub fn partition(partition: Map<String, Value>) -> Self {
        Self {
            partition,
            ..Self::default()
        }
    }

    /// The value templates see as `stream_slice`: the partition, then the window.
    pub fn template_value(&self) -> Value {
        let mut merged = self.partition.clone();
        for (key, value) in &self.cursor_slice {
            merged.insert(key.clone(), value.clone());
        }
        if !self.extra_fields.is_empty() {
            merged.insert(
                "extra_fields".to_owned(),
                Value::Object(self.extra_fields.clone()),
            );
        }
        Value::Object(merged)
    }

    /// A field of the partition or, failing that, of the window (the reference's mapping lookup).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.partition
            .get(key)
            .or_else(|| self.cursor_slice.get(key))
    }

    /// The partition as the reference keys it in per-partition state: JSON with sorted keys and
    /// no spaces.
    pub fn partition_key(&self) -> String {
        partition_key(&self.partition)
    }
}

/// A partition as the reference keys it: JSON with keys sorted at every level, no spaces.
pub fn partition_key(partition: &Map<String, Value>) -> String {
    let sorted = sort_keys(&Value::Object(partition.clone()));
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// The value with the keys of every object sorted, as Python's `json.dumps(sort_keys=True)`.
pub(crate) fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sort_keys(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partition_keys_sort_nested_objects() {
        let Value::Object(partition) = json!({"b": 1, "a": {"z": 1, "y": [ {"d": 1, "c": 2} ]}})
        else {
            unreachable!()
        };
        assert_eq!(
            partition_key(&partition),
            r#"{"a":{"y":[{"c":2,"d":1}],"z":1},"b":1}"#
        );
    }

    #[test]
    fn templates_see_partition_window_and_extra_fields() {
        let slice = StreamSlice {
            partition: json!({"id": 1}).as_object().cloned().unwrap(),
            cursor_slice: json!({"start_time": "a"}).as_object().cloned().unwrap(),
            extra_fields: json!({"name": "n"}).as_object().cloned().unwrap(),
        };
        assert_eq!(
            slice.template_value(),
            json!({"id": 1, "start_time": "a", "extra_fields": {"name": "n"}})
        );
        assert_eq!(slice.get("start_time"), Some(&json!("a")));
    }
}
