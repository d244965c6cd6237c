//! The benchmark's data set: records generated once and kept pre-encoded, one [`Bytes`] per page,
//! so serving a page costs the server nothing but writing shared buffers to the socket.
//!
//! Record `id` runs from 0; page `k` holds ids `k * PAGE_SIZE .. (k + 1) * PAGE_SIZE`. The same
//! encoded records back both pagination styles; only the bytes around them differ.

use bytes::Bytes;
use std::io::Write;

/// Records per page, the `page_size` of every benchmark manifest.
pub const PAGE_SIZE: u64 = 1000;

/// Rounds a record count up to whole pages: the server only serves full pages.
pub fn round_up_to_pages(records: u64) -> u64 {
    records.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// The `status` of record `id`: 6 in 10 active, 3 inactive, 1 deleted.
pub fn status_of(id: u64) -> &'static str {
    match id % 10 {
        0..=5 => "active",
        6..=8 => "inactive",
        _ => "deleted",
    }
}

/// Whether the RecordFilter of fixtures/bench/transform.yaml
/// (`record['status'] != 'deleted'`) keeps record `id`.
pub fn kept_by_status_filter(id: u64) -> bool {
    status_of(id) != "deleted"
}

const COUNTRIES: [&str; 8] = ["NL", "DE", "FR", "US", "GB", "JP", "BR", "IN"];
const TAGS: [&str; 4] = [r#"["new","vip"]"#, r#"["vip"]"#, r#"["trial"]"#, "[]"];

/// Appends record `id` as compact JSON (about 160 bytes; every field varies with the id so no
/// two records or pages are alike).
pub fn write_record(id: u64, out: &mut Vec<u8>) {
    let cents = id % 9_973;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"id":{id},"name":"Customer {id}","email":"c{id}@example.com","status":"{status}","score":{whole}.{frac:02},"country":"{country}","created_at":"2024-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z","tags":{tags}}}"#,
        status = status_of(id),
        whole = cents / 100,
        frac = cents % 100,
        country = COUNTRIES[(id % 8) as usize],
        month = 1 + (id / 28) % 12,
        day = 1 + id % 28,
        hour = id % 24,
        minute = (id / 24) % 60,
        second = (id / 7) % 60,
        tags = TAGS[(id % 4) as usize],
    );
}

/// One response body, as buffers to send in order, and how many records it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageBody {
    pub parts: Vec<Bytes>,
    pub records: u64,
}

/// Every page of a data set, encoded once.
#[derive(Debug)]
pub struct PageSet {
    /// Page `k`'s records, comma-separated, without the enclosing brackets.
    pages: Vec<Bytes>,
}

/// Why a page request cannot be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("offset {offset} is not a multiple of the page size {PAGE_SIZE}")]
    UnalignedOffset { offset: u64 },
    #[error("limit {limit} is not the page size {PAGE_SIZE}")]
    WrongLimit { limit: u64 },
}

impl PageSet {
    /// Generates `records` records (rounded up to whole pages).
    pub fn generate(records: u64) -> Self {
        let page_count = round_up_to_pages(records) / PAGE_SIZE;
        let mut pages = Vec::with_capacity(page_count as usize);
        let mut buffer = Vec::with_capacity(200 * PAGE_SIZE as usize);
        for page in 0..page_count {
            buffer.clear();
            for id in page * PAGE_SIZE..(page + 1) * PAGE_SIZE {
                if id != page * PAGE_SIZE {
                    buffer.push(b',');
                }
                write_record(id, &mut buffer);
            }
            pages.push(Bytes::copy_from_slice(&buffer));
        }
        Self { pages }
    }

    /// How many records the set holds.
    pub fn records(&self) -> u64 {
        self.pages.len() as u64 * PAGE_SIZE
    }

    /// Bytes of encoded records.
    pub fn encoded_len(&self) -> usize {
        self.pages.iter().map(Bytes::len).sum()
    }

    /// The body answering `?offset=OFFSET&limit=LIMIT` when the API holds `total` records
    /// (`total` at most [`records`](Self::records)): `{"data":[...]}`, empty past the end.
    pub fn offset_body(&self, offset: u64, limit: u64, total: u64) -> Result<PageBody, PageError> {
        if limit != PAGE_SIZE {
            return Err(PageError::WrongLimit { limit });
        }
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(PageError::UnalignedOffset { offset });
        }
        Ok(match self.page_within(offset / PAGE_SIZE, total) {
            Some(records) => PageBody {
                parts: vec![
                    Bytes::from_static(b"{\"data\":["),
                    records.clone(),
                    Bytes::from_static(b"]}"),
                ],
                records: PAGE_SIZE,
            },
            None => PageBody {
                parts: vec![Bytes::from_static(b"{\"data\":[]}")],
                records: 0,
            },
        })
    }

    /// The body of cursor page `page` (0-based) when the API holds `total` records:
    /// `{"data":[...],"next":URL}` with `URL = next_page_prefix + (page + 1)`, or `"next":null`
    /// on the last page.
    pub fn cursor_body(&self, page: u64, total: u64, next_page_prefix: &str) -> PageBody {
        let Some(records) = self.page_within(page, total) else {
            return PageBody {
                parts: vec![Bytes::from_static(b"{\"data\":[],\"next\":null}")],
                records: 0,
            };
        };
        let is_last = (page + 1) * PAGE_SIZE >= total;
        let tail = if is_last {
            Bytes::from_static(b"],\"next\":null}")
        } else {
            Bytes::from(format!("],\"next\":\"{next_page_prefix}{}\"}}", page + 1))
        };
        PageBody {
            parts: vec![Bytes::from_static(b"{\"data\":["), records.clone(), tail],
            records: PAGE_SIZE,
        }
    }

    fn page_within(&self, page: u64, total: u64) -> Option<&Bytes> {
        if page * PAGE_SIZE >= total.min(self.records()) {
            return None;
        }
        self.pages.get(usize::try_from(page).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn join(body: &PageBody) -> Value {
        let bytes: Vec<u8> = body.parts.iter().flat_map(|b| b.iter().copied()).collect();
        serde_json::from_slice(&bytes).expect("a page body is JSON")
    }

    #[test]
    fn records_are_json_of_about_160_bytes_with_the_fields_the_manifests_use() {
        for id in [0, 7, 999, 123_456, 999_999, 9_999_999] {
            let mut out = Vec::new();
            write_record(id, &mut out);
            assert!(
                (140..=180).contains(&out.len()),
                "record {id} is {} bytes",
                out.len()
            );
            let record: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(record["id"], id);
            assert_eq!(record["status"], status_of(id));
            for field in ["country", "tags", "score", "created_at"] {
                assert!(record.get(field).is_some(), "record {id} lacks {field}");
            }
        }
    }

    #[test]
    fn offset_pages_hold_consecutive_ids_and_end_with_an_empty_page() {
        let pages = PageSet::generate(2500);
        assert_eq!(pages.records(), 3000, "rounded up to whole pages");
        let second = join(&pages.offset_body(1000, 1000, 3000).unwrap());
        let ids: Vec<u64> = second["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (1000..2000).collect::<Vec<_>>());
        assert_eq!(
            join(&pages.offset_body(3000, 1000, 3000).unwrap()),
            serde_json::json!({"data": []})
        );
        // A smaller active total ends the data set earlier.
        assert_eq!(
            join(&pages.offset_body(1000, 1000, 1000).unwrap())["data"],
            serde_json::json!([])
        );
    }

    #[test]
    fn offset_requests_off_the_page_grid_are_refused() {
        let pages = PageSet::generate(1000);
        assert_eq!(
            pages.offset_body(500, 1000, 1000),
            Err(PageError::UnalignedOffset { offset: 500 })
        );
        assert_eq!(
            pages.offset_body(0, 50, 1000),
            Err(PageError::WrongLimit { limit: 50 })
        );
    }

    #[test]
    fn cursor_pages_link_to_the_next_page_until_the_last() {
        let pages = PageSet::generate(2000);
        let prefix = "http://127.0.0.1:1/cursor/items?page=";
        let first = join(&pages.cursor_body(0, 2000, prefix));
        assert_eq!(first["next"], format!("{prefix}1"));
        assert_eq!(first["data"].as_array().unwrap().len(), 1000);
        let last = join(&pages.cursor_body(1, 2000, prefix));
        assert_eq!(last["next"], Value::Null);
        assert_eq!(last["data"][0]["id"], 1000);
        assert_eq!(
            join(&pages.cursor_body(2, 2000, prefix)),
            serde_json::json!({"data": [], "next": null})
        );
    }

    #[test]
    fn the_status_filter_drops_one_record_in_ten() {
        let kept = (0..1000).filter(|&id| kept_by_status_filter(id)).count();
        assert_eq!(kept, 900);
    }
}
