//! Finding a page's records without parsing them, for selectors that would not change them.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The byte ranges of the records in `body`: the objects of the array found by following the
/// object keys of `path` from the top-level object. `None` when the page is of any other shape
/// (not valid JSON, a key missing or repeated on the way, something else than an array of
/// objects at the end), which the full selector then handles.
pub(crate) fn record_ranges(body: &[u8], path: &[String]) -> Option<Vec<Range<usize>>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut ranges = Vec::new();
    Walk {
        path,
        body_start: body.as_ptr() as usize,
        ranges: &mut ranges,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(ranges)
}

/// Follows `path` down objects, then takes the array's elements.
struct Walk<'p, 'r> {
    path: &'p [String],
    body_start: usize,
    ranges: &'r mut Vec<Range<usize>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.first() {
            Some(key) => write!(formatter, "an object with the key {key:?}"),
            None => formatter.write_str("an array of objects"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((key, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(
                "an object where the records' array was expected",
            ));
        };
        let mut found = false;
        while let Some(is_key) = map.next_key_seed(KeyIs(key))? {
            if !is_key {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if found {
                // The parsed object would keep the last one; leave that to the full selector.
                return Err(de::Error::custom("a repeated key"));
            }
            found = true;
            map.next_value_seed(Walk {
                path: rest,
                body_start: self.body_start,
                ranges: &mut *self.ranges,
            })?;
        }
        if found {
            Ok(())
        } else {
            Err(de::Error::custom("the key is missing"))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.path.is_empty() {
            return Err(de::Error::custom("an array on the way to the records"));
        }
        while let Some(record) = seq.next_element::<&'de RawValue>()? {
            let text = record.get();
            if !text.starts_with('{') {
                return Err(de::Error::custom("a record that is not an object"));
            }
            let start = text.as_ptr() as usize - self.body_start;
            self.ranges.push(start..start + text.len());
        }
        Ok(())
    }
}

/// Whether a map key equals the expected one.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str, path: &[&str]) -> Option<Vec<&'static str>> {
        let body: &'static str = Box::leak(body.to_owned().into_boxed_str());
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        record_ranges(body.as_bytes(), &path)
            .map(|ranges| ranges.into_iter().map(|r| &body[r]).collect())
    }

    #[test]
    fn finds_the_objects_of_the_array_at_the_path() {
        assert_eq!(
            records(
                r#"{"total": 2, "data": [{"id":1}, {"id": 2, "a": [1]}], "next": null}"#,
                &["data"]
            ),
            Some(vec![r#"{"id":1}"#, r#"{"id": 2, "a": [1]}"#])
        );
        assert_eq!(
            records(r#"{"a": {"\u0062": [{}]}}"#, &["a", "b"]),
            Some(vec!["{}"])
        );
        assert_eq!(records(r#"{"data": []}"#, &["data"]), Some(vec![]));
    }

    #[test]
    fn any_other_shape_is_left_to_the_full_selector() {
        for (body, path) in [
            (r#"{"data": [1, 2]}"#, &["data"][..]),
            (r#"{"data": {"id": 1}}"#, &["data"]),
            (r#"{"data": [{}], "data": [{}]}"#, &["data"]),
            (r#"{"other": [{}]}"#, &["data"]),
            (r#"[{"data": [{}]}]"#, &["data"]),
            (r#"{"data": [{}]} trailing"#, &["data"]),
            (r#"{"data": [{]}"#, &["data"]),
            (r#"{"data": [{"a": "\ud800"}]"#, &["data"]),
            (r#"{"a": [{"b": [{}]}]}"#, &["a", "b"]),
        ] {
            assert_eq!(records(body, path), None, "{body}");
        }
    }
}
