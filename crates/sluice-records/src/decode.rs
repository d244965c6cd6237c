use serde_json::Value;

/// Decodes a JSON response body into the bodies records are extracted from, as the reference's
/// JsonDecoder does: a top-level array gives one body per element; an empty array, `null`, an
/// empty body or invalid JSON give a single empty object (so nothing is extracted from it).
pub fn decode_json_bodies(body: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) if !items.is_empty() => items,
        Ok(Value::Array(_)) | Ok(Value::Null) | Err(_) => vec![Value::Object(Default::default())],
        Ok(other) => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_top_level_arrays_and_falls_back_to_an_empty_object() {
        assert_eq!(
            decode_json_bodies(br#"[{"a":1},{"a":2}]"#),
            vec![json!({"a":1}), json!({"a":2})]
        );
        assert_eq!(decode_json_bodies(br#"{"a":1}"#), vec![json!({"a":1})]);
        for empty in [&b"[]"[..], &b""[..], &b"null"[..], &b"not json"[..]] {
            assert_eq!(decode_json_bodies(empty), vec![json!({})]);
        }
    }
}
