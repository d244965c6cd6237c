//! A stream's `file_uploader`: each record names a file, which is downloaded into the staging
//! directory and described on the record's RECORD message (`file_reference`), as the reference's
//! `DefaultFileUploader` does for every record its record selector emits.

use crate::EngineError;
use crate::stream::http_error;
use serde_json::{Map, Value};
use sluice_http::{RequestOptions, RequestVariables, Requester};
use sluice_interp::{Context, Template, python_float};
use sluice_manifest::ManifestPath;
use sluice_protocol::AirbyteRecordMessageFileReference;
use sluice_records::Extractor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where files go: `$AIRBYTE_STAGING_DIRECTORY` (default `/staging/files`) when it exists, else
/// `/tmp/airbyte-file-transfer`, as in the reference.
pub(crate) fn files_directory() -> PathBuf {
    let staging = std::env::var_os("AIRBYTE_STAGING_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/staging/files"));
    if staging.exists() {
        staging
    } else {
        PathBuf::from("/tmp/airbyte-file-transfer")
    }
}

/// A built `FileUploader`.
#[derive(Debug)]
pub(crate) struct FileUploader {
    pub requester: Requester,
    /// Finds the download URL in the record (`download_target_extractor`).
    pub target: Extractor,
    /// The file's name under the stream's directory (`filename_extractor`); a random UUID
    /// without one.
    pub filename: Option<Template>,
    pub parameters: Value,
    pub config: Arc<Value>,
    pub stream: String,
    pub path: ManifestPath,
}

impl FileUploader {
    /// Downloads the file `record` names and says where it was staged.
    pub async fn upload(
        &self,
        record: &Value,
    ) -> Result<AirbyteRecordMessageFileReference, EngineError> {
        let fail = |message: String| EngineError::system(format!("{}: {message}", self.path));
        let mut targets = Vec::new();
        self.target
            .extract(vec![record.clone()], &mut targets)
            .map_err(|e| fail(e.to_string()))?;
        let target = match targets.into_iter().next() {
            None => return Err(fail("No download targets found".to_owned())),
            Some(Value::String(target)) => target,
            Some(other) => {
                return Err(fail(format!(
                    "download_target is expected to be a str but was {}: {other}",
                    python_type(&other)
                )));
            }
        };
        // The reference hands the target to the requester as the slice's extra field
        // `download_target`, which its templates read as `{{ download_target }}`.
        let mut extra = Map::new();
        extra.insert("download_target".to_owned(), Value::String(target));
        let mut slice = Map::new();
        slice.insert("extra_fields".to_owned(), Value::Object(extra));
        let slice = Value::Object(slice);
        let variables = RequestVariables {
            stream_slice: &slice,
            next_page_token: None,
            extra: None,
        };
        let request = self
            .requester
            .build(variables, &RequestOptions::default())
            .await
            .map_err(http_error)?;
        let body = match self.requester.send(&request).await.map_err(http_error)? {
            Some(response) => response.body,
            None => Default::default(),
        };

        let file_name = match &self.filename {
            Some(template) => {
                let ctx = Context::new()
                    .config(&*self.config)
                    .parameters(&self.parameters)
                    .record(record);
                template
                    .render_string(&ctx)
                    .map_err(|e| fail(format!("filename_extractor: {e}")))?
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        // Rebuilt from its components, as Python's `pathlib` would: no repeated or trailing
        // separators (Zendesk's names end with `/`).
        let relative: PathBuf = Path::new(&self.stream)
            .join(file_name.trim_start_matches('/'))
            .components()
            .collect();
        let full = files_directory().join(&relative);
        let write = |full: &Path| -> std::io::Result<u64> {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(full, &body)?;
            Ok(std::fs::metadata(full)?.len())
        };
        let size = write(&full)
            .map_err(|e| fail(format!("cannot write the file {}: {e}", full.display())))?;
        tracing::info!("File uploaded successfully");
        tracing::info!("File url: {}", full.display());
        tracing::info!("File size: {} KB", python_float(size as f64 / 1024.0));
        tracing::info!("File relative path: {}", relative.display());
        Ok(AirbyteRecordMessageFileReference {
            staging_file_url: Some(full.display().to_string()),
            source_file_relative_path: Some(relative.display().to_string()),
            file_size_bytes: Some(size as i64),
        })
    }
}

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_python_floats() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.0), "0.0");
        assert_eq!(python_float(2255.0 / 1024.0), "2.2021484375");
    }
}
