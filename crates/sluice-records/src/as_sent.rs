//! Finding a page's records without parsing them, for selectors that would not change them.

use std::fmt;
use std::ops::Range;

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Where a page's records are, as sent, and the top-level fields asked for besides them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageAsSent {
    /// The byte range of each record in the body.
    pub records: Vec<Range<usize>>,
    /// The byte range of each top-level field asked for that the body has (and of any whose
    /// name holds a `.`, which a template's `response.a.b` could also mean).
    pub fields: Vec<(String, Range<usize>)>,
}

/// Finds the records of `body`: the objects of the array reached by following the object keys
/// of `path` from the top-level object, and the top-level `fields`. `None` when the page is of
/// any other shape (not valid JSON, a key missing or repeated on the way, something else than
/// an array of objects at the end, a field that is also the path's first key), which the full
/// selector then handles.
pub(crate) fn page_as_sent(body: &[u8], path: &[String], fields: &[String]) -> Option<PageAsSent> {
    if fields.iter().any(|field| Some(field) == path.first()) {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut page = PageAsSent::default();
    Walk {
        path,
        fields: Some(fields),
        body_start: body.as_ptr() as usize,
        page: &mut page,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(page)
}

/// Follows `path` down objects, then takes the array's elements.
struct Walk<'p, 'r> {
    path: &'p [String],
    /// Top-level fields to locate too; `None` below the top level.
    fields: Option<&'p [String]>,
    body_start: usize,
    page: &'r mut PageAsSent,
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
        while let Some(name) = map.next_key::<KeyName<'de>>()? {
            let name = name.0;
            if name != key.as_str() {
                let wanted = self.fields.is_some_and(|fields| {
                    fields.iter().any(|f| f == name.as_ref()) || name.contains('.')
                });
                if !wanted {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                if self.page.fields.iter().any(|(f, _)| f == name.as_ref()) {
                    return Err(de::Error::custom("a repeated key"));
                }
                let value = map.next_value::<&'de RawValue>()?;
                let range = self.range_of(value);
                self.page.fields.push((name.into_owned(), range));
                continue;
            }
            if found {
                // The parsed object would keep the last one; leave that to the full selector.
                return Err(de::Error::custom("a repeated key"));
            }
            found = true;
            map.next_value_seed(Walk {
                path: rest,
                fields: None,
                body_start: self.body_start,
                page: &mut *self.page,
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
            if !record.get().starts_with('{') {
                return Err(de::Error::custom("a record that is not an object"));
            }
            let range = self.range_of(record);
            self.page.records.push(range);
        }
        Ok(())
    }
}

impl Walk<'_, '_> {
    fn range_of(&self, value: &RawValue) -> Range<usize> {
        let text = value.get();
        let start = text.as_ptr() as usize - self.body_start;
        start..start + text.len()
    }
}

/// A map key, borrowed from the body unless it has escapes.
struct KeyName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyNameVisitor)
    }
}

struct KeyNameVisitor;

impl<'de> Visitor<'de> for KeyNameVisitor {
    type Value = KeyName<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(KeyName(Cow::Borrowed(key)))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(KeyName(Cow::Owned(key.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str, path: &[&str]) -> Option<Vec<&'static str>> {
        let body: &'static str = Box::leak(body.to_owned().into_boxed_str());
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        page_as_sent(body.as_bytes(), &path, &[])
            .map(|page| page.records.into_iter().map(|r| &body[r]).collect())
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
    fn finds_the_top_level_fields_asked_for() {
        let body = r#"{"data": [{"id": 1}], "next": "https://x/2", "a.b": 1, "c": {"next": 3}}"#;
        let page =
            page_as_sent(body.as_bytes(), &["data".to_owned()], &["next".to_owned()]).unwrap();
        let fields: Vec<(&str, &str)> = page
            .fields
            .iter()
            .map(|(name, range)| (name.as_str(), &body[range.clone()]))
            .collect();
        assert_eq!(fields, [("next", r#""https://x/2""#), ("a.b", "1")]);
        // A field that is the records' own key, or repeated, is left to the full selector.
        assert_eq!(
            page_as_sent(body.as_bytes(), &["data".to_owned()], &["data".to_owned()]),
            None
        );
        let repeated = r#"{"data": [], "next": 1, "next": 2}"#;
        assert_eq!(
            page_as_sent(
                repeated.as_bytes(),
                &["data".to_owned()],
                &["next".to_owned()]
            ),
            None
        );
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
