//! The statuses of an asynchronous job and the manifest's `status_mapping` from the API's
//! statuses to them.

use serde_json::Value;
use sluice_manifest::{ManifestPath, model};
use std::collections::HashMap;

/// Where a job stands, as the reference's `AsyncJobStatus` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum JobStatus {
    Running,
    Completed,
    Failed,
    TimedOut,
    /// The API has nothing to return for the job: no records, no retry.
    Skipped,
}

impl JobStatus {
    /// A terminal status does not change any more.
    pub fn is_terminal(self) -> bool {
        self != JobStatus::Running
    }

    /// The name the reference prints.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Running => "RUNNING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::TimedOut => "TIMED_OUT",
            JobStatus::Skipped => "SKIPPED",
        }
    }
}

/// `status_mapping`: which API status means which job status.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusMap {
    by_api_status: HashMap<String, JobStatus>,
}

impl StatusMap {
    /// Builds the mapping; as in the reference, an API status may be listed under one job
    /// status only.
    pub fn from_model(map: &model::AsyncJobStatusMap, path: &ManifestPath) -> Result<Self, String> {
        let groups: [(&str, JobStatus, &[String]); 5] = [
            ("running", JobStatus::Running, &map.running),
            ("completed", JobStatus::Completed, &map.completed),
            ("failed", JobStatus::Failed, &map.failed),
            ("timeout", JobStatus::TimedOut, &map.timeout),
            (
                "skipped",
                JobStatus::Skipped,
                map.skipped.as_deref().unwrap_or_default(),
            ),
        ];
        let mut by_api_status = HashMap::new();
        for (field, status, api_statuses) in groups {
            for api_status in api_statuses {
                if by_api_status.insert(api_status.clone(), status).is_some() {
                    return Err(format!(
                        "manifest at {}: API status {api_status} is already set for another status than '{field}'. Please ensure API statuses are only provided once",
                        path.key(field)
                    ));
                }
            }
        }
        Ok(Self { by_api_status })
    }

    /// The job status of the first value the status extractor found (`None` when it found
    /// none), compared as Python's `str()` prints it.
    pub fn status_of(&self, api_status: Option<&Value>) -> Result<JobStatus, String> {
        let text = match api_status {
            None => "None".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => sluice_interp::python_str(other),
        };
        self.by_api_status.get(&text).copied().ok_or_else(|| {
            format!(
                "API status `{text}` is unknown. Contact the connector developer to make sure this status is supported."
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::model::FromNode;

    fn map(node: Value) -> Result<StatusMap, String> {
        let at = ManifestPath::root().key("status_mapping");
        let model = model::AsyncJobStatusMap::from_node(&node, &at).map_err(|e| e.to_string())?;
        StatusMap::from_model(&model, &at)
    }

    #[test]
    fn maps_api_statuses_to_job_statuses() {
        let statuses = map(json!({
            "running": ["pending", "IN_PROGRESS"], "completed": ["ready"],
            "failed": ["failed"], "timeout": ["timeout"], "skipped": ["CANCELLED"]
        }))
        .unwrap();
        assert_eq!(
            statuses.status_of(Some(&json!("pending"))),
            Ok(JobStatus::Running)
        );
        assert_eq!(
            statuses.status_of(Some(&json!("ready"))),
            Ok(JobStatus::Completed)
        );
        assert_eq!(
            statuses.status_of(Some(&json!("timeout"))),
            Ok(JobStatus::TimedOut)
        );
        assert_eq!(
            statuses.status_of(Some(&json!("CANCELLED"))),
            Ok(JobStatus::Skipped)
        );
        let unknown = statuses.status_of(Some(&json!("done"))).unwrap_err();
        assert!(
            unknown.starts_with("API status `done` is unknown"),
            "{unknown}"
        );
        // Nothing extracted reads as Python's `None`.
        assert!(statuses.status_of(None).unwrap_err().contains("`None`"));
    }

    #[test]
    fn non_string_statuses_compare_as_python_prints_them() {
        let statuses = map(json!({
            "running": ["0"], "completed": ["1", "True"], "failed": [], "timeout": []
        }))
        .unwrap();
        assert_eq!(statuses.status_of(Some(&json!(0))), Ok(JobStatus::Running));
        assert_eq!(
            statuses.status_of(Some(&json!(1))),
            Ok(JobStatus::Completed)
        );
        assert_eq!(
            statuses.status_of(Some(&json!(true))),
            Ok(JobStatus::Completed)
        );
    }

    #[test]
    fn an_api_status_listed_twice_is_refused() {
        let error = map(json!({
            "running": ["pending"], "completed": ["pending"], "failed": [], "timeout": []
        }))
        .unwrap_err();
        assert!(error.contains("status_mapping.completed"), "{error}");
        assert!(
            error.contains("API status pending is already set"),
            "{error}"
        );
    }
}
