//! The page loop of a retriever with `QueryProperties` (component in `query_properties.rs`).
//!
//! As the reference's `SimpleRetriever._read_pages`: each page is requested once per chunk of
//! properties, all with the same page token; a chunk's request sees the slice with
//! `extra_fields` replaced by `{"query_properties": [...]}`. With `property_chunking`, a record
//! with a merge key is merged into the page's record of that key and those go on after the
//! page's last chunk, in the order their keys first came; a record without one goes on at once.
//! The next page token comes from the last chunk's response, with the page's size and last
//! record counted over what went on (merged records as one each); an ignored response of the
//! last chunk ends the slice.

use super::*;
use crate::query_properties::{MergedRecords, QueryProperties};

/// The last chunk's response, as the paginator reads it.
struct LastChunk {
    response: HttpResponse,
    body: Option<Value>,
    extracted: usize,
    stream_slice: Value,
    ignored: bool,
}

impl PageReader<'_> {
    /// One page: one request per chunk of properties. `None` means the slice restarts.
    pub(super) async fn read_chunked_page(
        &mut self,
        query_properties: &QueryProperties,
        gate: RecordGate<'_>,
    ) -> Result<Option<Vec<RecordData>>, EngineError> {
        let retriever = self.retriever;
        let chunks = query_properties.chunks().await?;
        let chunking = query_properties.chunking();
        let selector = self.selector.clone();
        let mut page: Vec<RecordData> = Vec::new();
        let mut merged = MergedRecords::default();
        let mut last: Option<LastChunk> = None;
        for chunk in chunks {
            let chunk_slice = with_query_properties(&self.stream_slice, chunk);
            let Some(response) = self.fetch_for(Some(&chunk_slice)).await? else {
                // A pagination reset: what went on already stays; the merged records are lost,
                // as in the reference.
                return Ok(Some(page));
            };
            if std::mem::take(&mut self.done) {
                // An ignored response has no records; only the last chunk's ends the slice.
                last = Some(LastChunk {
                    response,
                    body: None,
                    extracted: 0,
                    stream_slice: chunk_slice,
                    ignored: true,
                });
                continue;
            }
            let decoded = selector.decode(&response.body).map_err(select_error)?;
            let body = retriever
                .paginator
                .needs_response_body()
                .then(|| decoded.pagination_body().clone());
            self.records.clear();
            let empty_state = Value::Object(Map::new());
            let select_variables = SelectVariables {
                stream_slice: &self.stream_slice,
                next_page_token: self.token.as_ref().map(PageToken::as_mapping),
                stream_state: &empty_state,
                truncated: None,
            };
            let selected = selector.select(decoded, &select_variables, &mut self.records);
            if let Some(keep) = gate.keep {
                self.records.retain(|record| keep(record));
            }
            if let Some(feed) = gate.feed {
                self.records.retain(|record| feed(record));
            }
            for record in self.records.drain(..) {
                let key = match chunking {
                    Some(chunking) => match chunking.merge_key(&record) {
                        Ok(key) => key,
                        Err(error) => {
                            self.failure = Some(error);
                            return Ok(Some(page));
                        }
                    },
                    None => None,
                };
                match key {
                    Some(key) => merged.add(key, record),
                    None => page.push(RecordData::Parsed(record)),
                }
            }
            let outcome = match selected {
                Ok(outcome) => outcome,
                Err(error) => {
                    // What went on before the failure stays; the error follows.
                    self.failure = Some(select_error(error));
                    return Ok(Some(page));
                }
            };
            last = Some(LastChunk {
                response,
                body,
                extracted: outcome.extracted,
                stream_slice: chunk_slice,
                ignored: false,
            });
        }
        page.extend(merged.into_records().map(RecordData::Parsed));
        for record in &page {
            self.tracker.observe();
            if let Some(narrowing) = &mut self.narrowing {
                narrowing.observe(record);
            }
        }
        let Some(last) = last.filter(|last| !last.ignored) else {
            self.done = true;
            return Ok(Some(page));
        };
        let last_record = page.last().map(RecordData::to_value);
        if self.page_ends_pagination(gate, last_record.as_ref()) {
            return Ok(Some(page));
        }
        let info = PageInfo {
            response_body: last.body.as_ref(),
            headers: &last.response.headers,
            last_page_size: page.len(),
            extracted_record_count: Some(last.extracted),
            last_record: last_record.as_ref(),
            current_token: self.token.as_ref(),
            stream_slice: &last.stream_slice,
            page_size_override: None,
        };
        let next = retriever
            .paginator
            .next_page_token(&info)
            .map_err(paginate_error)?;
        self.advance_to(next);
        Ok(Some(page))
    }
}

/// The slice as a chunk's requests see it: its `extra_fields` replaced by the chunk's
/// properties (a parent's extra fields are not visible then, as in the reference).
fn with_query_properties(stream_slice: &Value, chunk: Vec<String>) -> Value {
    let mut slice = stream_slice.as_object().cloned().unwrap_or_default();
    let mut extra = Map::new();
    extra.insert(
        "query_properties".to_owned(),
        Value::Array(chunk.into_iter().map(Value::String).collect()),
    );
    slice.insert("extra_fields".to_owned(), Value::Object(extra));
    Value::Object(slice)
}
