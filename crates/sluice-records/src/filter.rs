//! `RecordFilter`: keeps the records for which a condition holds.

use serde_json::Value;
use sluice_interp::{Context, InterpolatedBoolean};
use sluice_manifest::{ManifestPath, model};

use crate::error::{BuildError, SelectError};

/// A record filter: `condition` over `record`, `config`, `parameters`, `stream_slice` (also
/// `stream_partition`, `stream_interval`), `stream_state` and `next_page_token`.
#[derive(Debug, Clone)]
pub struct RecordFilter {
    condition: InterpolatedBoolean,
    parameters: Value,
}

/// What a filter condition can read besides the record.
#[derive(Debug, Clone, Copy)]
pub struct FilterVariables<'a> {
    /// The connector configuration.
    pub config: &'a Value,
    /// The current slice.
    pub stream_slice: &'a Value,
    /// The stream state (the reference passes `{}`).
    pub stream_state: &'a Value,
    /// The token the page was requested with (`{"next_page_token": ...}`), if any.
    pub next_page_token: Option<&'a Value>,
}

impl RecordFilter {
    /// Builds a `record_filter`. As in the reference, an empty condition evaluates to its default
    /// `False` and so drops every record.
    pub fn from_model(
        model: &model::RecordFilter,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let condition = InterpolatedBoolean::new(model.condition.as_deref().unwrap_or(""))
            .map_err(|e| BuildError::new(&path.key("condition"), e))?;
        Ok(RecordFilter {
            condition,
            parameters: Value::Object(model.parameters.clone().unwrap_or_default()),
        })
    }

    /// The record's top-level keys the condition reads, or `None` when it reads the record as
    /// a whole.
    pub(crate) fn record_keys_read(&self) -> Option<Vec<String>> {
        self.condition.keys_read("record")
    }

    /// Whether a record as sent is kept, when the condition only looks up or compares its fields;
    /// `None` when that cannot be told without parsing it.
    pub(crate) fn keeps_overlay(&self, overlay: &crate::raw::Overlay<'_, '_>) -> Option<bool> {
        self.condition.eval_record(overlay)
    }

    /// Whether the record is kept.
    pub fn keep(&self, record: &Value, vars: &FilterVariables<'_>) -> Result<bool, SelectError> {
        let null = Value::Null;
        let ctx = Context::new()
            .config(vars.config)
            .parameters(&self.parameters)
            .stream_slice(vars.stream_slice)
            .stream_state(vars.stream_state)
            .next_page_token(vars.next_page_token.unwrap_or(&null))
            .record(record);
        self.condition
            .eval(&ctx)
            .map_err(SelectError::template("RecordFilter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn filter(condition: &str) -> RecordFilter {
        let node =
            json!({"type": "RecordFilter", "condition": condition, "$parameters": {"min": 2}});
        let model = model::RecordFilter::from_node(&node, &ManifestPath::root()).unwrap();
        RecordFilter::from_model(&model, &ManifestPath::root()).unwrap()
    }

    #[test]
    fn conditions_see_record_slice_parameters_and_token() {
        let config = json!({"skip": "b"});
        let slice = json!({"start": "2024-01-01"});
        let state = json!({});
        let token = json!({"next_page_token": 3});
        let vars = FilterVariables {
            config: &config,
            stream_slice: &slice,
            stream_state: &state,
            next_page_token: Some(&token),
        };
        let by_value = filter("{{ record.n >= parameters.min and record.name != config.skip }}");
        assert!(by_value.keep(&json!({"n": 2, "name": "a"}), &vars).unwrap());
        assert!(!by_value.keep(&json!({"n": 1, "name": "a"}), &vars).unwrap());
        assert!(!by_value.keep(&json!({"n": 3, "name": "b"}), &vars).unwrap());
        let by_slice = filter(
            "{{ record.day >= stream_interval.start and next_page_token.next_page_token == 3 }}",
        );
        assert!(by_slice.keep(&json!({"day": "2024-02-01"}), &vars).unwrap());
        assert!(!by_slice.keep(&json!({"day": "2023-02-01"}), &vars).unwrap());
    }
}
