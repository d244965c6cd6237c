//! Extractors: records out of decoded bodies (`DpathExtractor`, `CombinedExtractor`).

use std::sync::Arc;

use serde_json::Value;
use sluice_interp::{Context, Template, is_truthy};
use sluice_manifest::{ManifestPath, model};

use crate::decode::Decoder;
use crate::dpath::{self, Segment};
use crate::error::{BuildError, SelectError};
use crate::expand::{RecordExpander, TruncatedLists};

/// Extracts records at a path in a decoded body (the manifest's `DpathExtractor`).
///
/// Path segments are globs over object keys or, on arrays, indices (see the crate docs). When a
/// segment is exactly `*` every match is a record (`dpath.values`); otherwise the path must
/// designate one value. An empty path takes the whole body. What the path reaches is returned as
/// records: each element of an array, or a single value unless it is empty, `null`, `0` or
/// `false` (Python falsy); a missing path gives no records. Records that are not objects are
/// passed on as they are.
#[derive(Debug, Clone)]
pub struct DpathExtractor {
    field_path: Vec<Segment>,
    has_star: bool,
    expander: Option<RecordExpander>,
}

impl DpathExtractor {
    /// An extractor for a path whose segments are already rendered.
    pub fn new(field_path: Vec<String>) -> Self {
        Self::from_segments(field_path.into_iter().map(Segment::Glob).collect(), None)
    }

    fn from_segments(field_path: Vec<Segment>, expander: Option<RecordExpander>) -> Self {
        let has_star = field_path.iter().any(Segment::is_star);
        Self {
            field_path,
            has_star,
            expander,
        }
    }

    /// Builds the extractor of a manifest; the path's templates are rendered once (they can only
    /// read `config` and `parameters`).
    pub fn from_model(
        model: &model::DpathExtractor,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let parameters = Value::Object(model.parameters.clone().unwrap_or_default());
        let ctx = Context::new().config(&**config).parameters(&parameters);
        let field_path = render_path(&model.field_path, &ctx, &path.key("field_path"))?;
        let expander = model
            .record_expander
            .as_ref()
            .map(|e| RecordExpander::from_model(e, config, &path.key("record_expander")))
            .transpose()?;
        Ok(Self::from_segments(field_path, expander))
    }

    /// The path as plain object keys, when it has no glob, index or record expander: the
    /// records are then exactly the elements of the array at those keys.
    pub(crate) fn plain_keys(&self) -> Option<Vec<String>> {
        if self.expander.is_some() || self.field_path.is_empty() {
            return None;
        }
        self.field_path
            .iter()
            .map(|segment| match segment {
                Segment::Glob(key) if segment.is_literal() => Some(key.clone()),
                _ => None,
            })
            .collect()
    }

    /// Moves the records found in `body` onto `records`.
    pub fn extract(&self, body: Value, records: &mut Vec<Value>) -> Result<(), SelectError> {
        self.extract_with(body, records, None)
    }

    /// [`DpathExtractor::extract`], with the complete lists of truncated records.
    pub(crate) fn extract_with(
        &self,
        body: Value,
        records: &mut Vec<Value>,
        truncated: Option<&TruncatedLists>,
    ) -> Result<(), SelectError> {
        let extracted = if self.field_path.is_empty() {
            body
        } else if self.has_star {
            let mut matches = Vec::new();
            dpath::values(body, &self.field_path, &mut matches);
            Value::Array(matches)
        } else {
            match dpath::get(body, &self.field_path) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(()),
                Err(dpath::Ambiguous) => {
                    return Err(SelectError::Path {
                        component: "DpathExtractor",
                        message: format!(
                            "the field_path {:?} matches more than one value",
                            self.field_path
                        ),
                    });
                }
            }
        };
        match extracted {
            Value::Array(items) => match &self.expander {
                None => records.extend(items),
                Some(expander) => {
                    for item in items {
                        expander.expand(item, records, truncated)?;
                    }
                }
            },
            other if is_truthy(&other) => match &self.expander {
                None => records.push(other),
                Some(expander) => expander.expand(other, records, truncated)?,
            },
            _ => {}
        }
        Ok(())
    }
}

/// Renders the segments of a manifest path once.
pub(crate) fn render_path(
    segments: &[String],
    ctx: &Context<'_>,
    path: &ManifestPath,
) -> Result<Vec<Segment>, BuildError> {
    segments
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let at = path.index(i);
            let template = Template::new(source).map_err(|e| BuildError::new(&at, e))?;
            template
                .render(ctx)
                .map(Segment::from_rendered)
                .map_err(|e| BuildError::new(&at, e))
        })
        .collect()
}

/// How a CombinedExtractor combines its sub-extractors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CombineMode {
    Union,
    FirstMatch,
}

/// A record extractor of the manifest: `DpathExtractor` or `CombinedExtractor`.
#[derive(Debug, Clone)]
pub enum Extractor {
    /// One path.
    Dpath(DpathExtractor),
    /// Several extractors over the same response.
    Combined(CombinedExtractor),
}

/// `CombinedExtractor`: the union of its sub-extractors' records, or those of the first one
/// that yields any.
#[derive(Debug, Clone)]
pub struct CombinedExtractor {
    extractors: Vec<Extractor>,
    mode: CombineMode,
    skip_empty_records: bool,
}

impl Extractor {
    /// Builds a `record_selector.extractor`. A CombinedExtractor over a decoder the reference
    /// streams is refused as in the reference (it would silently read an empty body).
    pub fn from_model(
        model: &model::RecordExtractor,
        decoder: &Decoder,
        config: &Arc<Value>,
        path: &ManifestPath,
    ) -> Result<Extractor, BuildError> {
        match model {
            model::RecordExtractor::DpathExtractor(dpath) => Ok(Extractor::Dpath(
                DpathExtractor::from_model(dpath, config, path)?,
            )),
            model::RecordExtractor::CombinedExtractor(combined) => {
                if decoder.is_streamed() {
                    return Err(BuildError::new(
                        path,
                        "CombinedExtractor cannot read a streamed response (CsvDecoder, JsonlDecoder, JsonItemsDecoder, GzipDecoder, IterableDecoder): each sub-extractor needs the whole body",
                    ));
                }
                if combined.extractors.is_empty() {
                    return Err(BuildError::new(
                        &path.key("extractors"),
                        "CombinedExtractor requires at least one extractor",
                    ));
                }
                let extractors = combined
                    .extractors
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        Extractor::from_model(e, decoder, config, &path.key("extractors").index(i))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Extractor::Combined(CombinedExtractor {
                    extractors,
                    mode: match combined.mode {
                        Some(model::CombineMode::FirstMatch) => CombineMode::FirstMatch,
                        _ => CombineMode::Union,
                    },
                    skip_empty_records: combined.skip_empty_records.unwrap_or(false),
                }))
            }
            model::RecordExtractor::CustomRecordExtractor(custom) => Err(BuildError::new(
                path,
                format!(
                    "custom extractor {} cannot run in sluice (custom Python components are not supported)",
                    custom.class_name
                ),
            )),
        }
    }

    /// Moves the records of `bodies` onto `records`. Returns how many records the reference's
    /// RecordSelector counts for the page before filtering: the records extracted plus the
    /// empty records a CombinedExtractor dropped.
    pub fn extract(
        &self,
        bodies: Vec<Value>,
        records: &mut Vec<Value>,
    ) -> Result<usize, SelectError> {
        self.extract_with(bodies, records, None)
    }

    /// [`Extractor::extract`], with the complete lists of truncated records.
    pub(crate) fn extract_with(
        &self,
        bodies: Vec<Value>,
        records: &mut Vec<Value>,
        truncated: Option<&TruncatedLists>,
    ) -> Result<usize, SelectError> {
        match self {
            Extractor::Dpath(dpath) => {
                let before = records.len();
                for body in bodies {
                    dpath.extract_with(body, records, truncated)?;
                }
                Ok(records.len() - before)
            }
            Extractor::Combined(combined) => combined.extract(bodies, records, truncated),
        }
    }
}

impl CombinedExtractor {
    fn extract(
        &self,
        bodies: Vec<Value>,
        records: &mut Vec<Value>,
        truncated: Option<&TruncatedLists>,
    ) -> Result<usize, SelectError> {
        let mut bodies = Some(bodies);
        let last = self.extractors.len().saturating_sub(1);
        let mut counted = 0;
        for (index, extractor) in self.extractors.iter().enumerate() {
            // Each sub-extractor reads the whole response; only the last may take the bodies.
            let input = if index == last {
                bodies.take().unwrap_or_default()
            } else {
                bodies.clone().unwrap_or_default()
            };
            let mut found = Vec::new();
            let count = extractor.extract_with(input, &mut found, truncated)?;
            if self.skip_empty_records {
                let before = found.len();
                found.retain(is_truthy);
                let dropped = before - found.len();
                if dropped > 0 {
                    tracing::warn!(
                        "CombinedExtractor dropped {dropped} empty record(s) yielded by sub-extractor {index} because `skip_empty_records` is enabled."
                    );
                }
            }
            match self.mode {
                CombineMode::Union => {
                    counted += count;
                    records.append(&mut found);
                }
                CombineMode::FirstMatch => {
                    if !found.is_empty() {
                        records.append(&mut found);
                        return Ok(count);
                    }
                }
            }
        }
        Ok(counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract(path: &[&str], body: Value) -> Vec<Value> {
        let extractor = DpathExtractor::new(path.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        extractor.extract(body, &mut out).unwrap();
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
    fn non_object_records_pass_through() {
        assert_eq!(
            extract(&["ids"], json!({"ids": [1, "two", null]})),
            vec![json!(1), json!("two"), json!(null)]
        );
        assert_eq!(extract(&["name"], json!({"name": "x"})), vec![json!("x")]);
        assert!(extract(&["count"], json!({"count": 0})).is_empty());
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

    fn combined(mode: CombineMode, skip: bool, paths: &[&[&str]]) -> Extractor {
        Extractor::Combined(CombinedExtractor {
            extractors: paths
                .iter()
                .map(|p| {
                    Extractor::Dpath(DpathExtractor::new(
                        p.iter().map(|s| s.to_string()).collect(),
                    ))
                })
                .collect(),
            mode,
            skip_empty_records: skip,
        })
    }

    #[test]
    fn combined_union_and_first_match() {
        let body = json!({"a": [{"id": 1}, null], "b": [{"id": 2}]});
        let mut out = Vec::new();
        let count = combined(CombineMode::Union, false, &[&["a"], &["b"]])
            .extract(vec![body.clone()], &mut out)
            .unwrap();
        assert_eq!((count, out.len()), (3, 3));

        let mut out = Vec::new();
        let count = combined(CombineMode::Union, true, &[&["a"], &["b"]])
            .extract(vec![body.clone()], &mut out)
            .unwrap();
        assert_eq!(out, vec![json!({"id": 1}), json!({"id": 2})]);
        assert_eq!(
            count, 3,
            "dropped empty records still count toward the page size"
        );

        let mut out = Vec::new();
        let count = combined(
            CombineMode::FirstMatch,
            false,
            &[&["missing"], &["b"], &["a"]],
        )
        .extract(vec![body.clone()], &mut out)
        .unwrap();
        assert_eq!((count, out), (1, vec![json!({"id": 2})]));

        let only_nulls = json!({"a": [null], "b": [{"id": 2}]});
        let mut out = Vec::new();
        let count = combined(CombineMode::FirstMatch, true, &[&["a"], &["b"]])
            .extract(vec![only_nulls], &mut out)
            .unwrap();
        assert_eq!((count, out), (1, vec![json!({"id": 2})]));
    }
}
