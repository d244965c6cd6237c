//! A stream built from the manifest: what `discover` says about it and how to read it.

use crate::EngineError;
use serde_json::{Map, Value};
use sluice_http::{HttpError, RequestOptions, RequestVariables, Requester};
use sluice_protocol::{AirbyteStream, SyncMode};
use sluice_records::{DpathExtractor, decode_json_bodies};

/// One stream of the manifest, ready to read.
#[derive(Debug)]
pub(crate) struct Stream {
    pub name: String,
    pub primary_key: Vec<Vec<String>>,
    pub json_schema: Map<String, Value>,
    pub retriever: Retriever,
}

impl Stream {
    /// The stream as `discover` describes it.
    pub fn catalog_entry(&self) -> AirbyteStream {
        let mut entry = AirbyteStream::new(
            &self.name,
            self.json_schema.clone(),
            vec![SyncMode::FullRefresh],
        );
        if !self.primary_key.is_empty() {
            entry.source_defined_primary_key = Some(self.primary_key.clone());
        }
        entry.is_resumable = Some(false);
        entry.is_file_based = Some(false);
        entry
    }
}

/// A SimpleRetriever: requests pages and selects records from them.
#[derive(Debug)]
pub(crate) struct Retriever {
    pub requester: Requester,
    pub extractor: DpathExtractor,
}

/// Whether the reader wants more records after the one it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

impl Retriever {
    /// Reads every record of the stream, handing each to `emit` as soon as its page arrives.
    pub async fn read_records(
        &self,
        mut emit: impl FnMut(Value) -> Result<Flow, EngineError>,
    ) -> Result<(), EngineError> {
        let empty = Value::Object(Map::new());
        let variables = RequestVariables {
            stream_slice: &empty,
            next_page_token: None,
        };
        let request = self
            .requester
            .build(variables, &RequestOptions::default())
            .map_err(http_error)?;
        let Some(response) = self.requester.send(&request).await.map_err(http_error)? else {
            return Ok(());
        };
        let mut records = Vec::new();
        for body in decode_json_bodies(&response.body) {
            self.extractor.extract(body, &mut records);
        }
        for record in records {
            if emit(record)? == Flow::Stop {
                break;
            }
        }
        Ok(())
    }
}

pub(crate) fn http_error(error: HttpError) -> EngineError {
    EngineError::new(error.failure_type, error.message).with_internal(error.internal_message)
}
