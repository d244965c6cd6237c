//! The benchmark's data sets: records generated once and kept pre-encoded, one [`Bytes`] per page,
//! so serving a page costs the server nothing but writing shared buffers to the socket.
//!
//! Record `id` runs from 0; page `k` holds ids `k * PAGE_SIZE .. (k + 1) * PAGE_SIZE`. Each
//! [`RecordShape`] is its own data set, served on its own offset route; the plain records also
//! back the cursor-paginated route, where only the bytes around them differ.

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

/// Which records a data set holds, and so which manifests read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordShape {
    /// [`write_record`]: about 160 bytes of flat fields, every value of its schema's type.
    Plain,
    /// [`write_typed_record`]: the plain fields plus a nullable field, a nested object and
    /// values of some records sent as the wrong JSON type, for schema normalisation to convert.
    Typed,
    /// [`write_order`]: an order of about 2 KB with nested objects and arrays.
    Wide,
}

impl RecordShape {
    /// The route serving this data set with offset pagination (`?offset=N&limit=1000`).
    pub fn offset_path(self) -> &'static str {
        match self {
            RecordShape::Plain => "/offset/items",
            RecordShape::Typed => "/offset/typed-items",
            RecordShape::Wide => "/offset/orders",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordShape::Plain => "plain",
            RecordShape::Typed => "typed",
            RecordShape::Wide => "wide",
        }
    }

    fn write(self, id: u64, out: &mut Vec<u8>) {
        match self {
            RecordShape::Plain => write_record(id, out),
            RecordShape::Typed => write_typed_record(id, out),
            RecordShape::Wide => write_order(id, out),
        }
    }

    /// Roughly the encoded size of a record, to size buffers.
    fn typical_bytes(self) -> usize {
        match self {
            RecordShape::Plain => 200,
            RecordShape::Typed => 300,
            RecordShape::Wide => 2400,
        }
    }
}

/// The `created_at` of record `id` of the plain and typed shapes, `%Y-%m-%dT%H:%M:%SZ` in 2024
/// (so strings compare as the times do).
pub fn created_at(id: u64) -> String {
    format!(
        "2024-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z",
        month = 1 + (id / 28) % 12,
        day = 1 + id % 28,
        hour = id % 24,
        minute = (id / 24) % 60,
        second = (id / 7) % 60,
    )
}

/// The latest [`created_at`] of records `0 .. records`: the final state of a cursor on it.
pub fn latest_created_at(records: u64) -> Option<String> {
    (0..records).map(created_at).max()
}

/// Appends record `id` as compact JSON (about 160 bytes; every field varies with the id so no
/// two records or pages are alike).
pub fn write_record(id: u64, out: &mut Vec<u8>) {
    let cents = id % 9_973;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"id":{id},"name":"Customer {id}","email":"c{id}@example.com","status":"{status}","score":{whole}.{frac:02},"country":"{country}","created_at":"{created_at}","tags":{tags}}}"#,
        status = status_of(id),
        whole = cents / 100,
        frac = cents % 100,
        country = COUNTRIES[(id % 8) as usize],
        created_at = created_at(id),
        tags = TAGS[(id % 4) as usize],
    );
}

const CITIES: [&str; 6] = ["Amsterdam", "Berlin", "Lyon", "Austin", "Leeds", "Osaka"];

/// Appends record `id` of the typed shape (about 300 bytes): [`write_record`]'s fields plus
/// `visits`, `verified`, `deleted_at` (null unless deleted) and an `address` object. Some values
/// come as another JSON type than fixtures/bench/normalise.yaml's schema says, as real APIs send
/// them, for `schema_normalization: Default` to convert: ids divisible by 3 send `score` as a
/// string, by 4 `visits` as a string, by 5 `verified` as `"true"`/`"false"`, and even ids the
/// address's `postal_code` as a number. Record 0 has every conversion.
pub fn write_typed_record(id: u64, out: &mut Vec<u8>) {
    let cents = id % 9_973;
    let score = format!("{}.{:02}", cents / 100, cents % 100);
    let score = if id.is_multiple_of(3) {
        format!("\"{score}\"")
    } else {
        score
    };
    let visits = id % 500;
    let visits = if id.is_multiple_of(4) {
        format!("\"{visits}\"")
    } else {
        visits.to_string()
    };
    let verified = id % 7 != 3;
    let verified = if id.is_multiple_of(5) {
        format!("\"{verified}\"")
    } else {
        verified.to_string()
    };
    let deleted_at = match status_of(id) {
        "deleted" => format!("\"{}\"", created_at(id + 1)),
        _ => "null".to_owned(),
    };
    let postal_code = 10_000 + id % 89_999;
    let postal_code = if id.is_multiple_of(2) {
        postal_code.to_string()
    } else {
        format!("\"{postal_code}\"")
    };
    let _ = write!(
        out,
        r#"{{"id":{id},"name":"Customer {id}","email":"c{id}@example.com","status":"{status}","score":{score},"visits":{visits},"verified":{verified},"country":"{country}","created_at":"{created_at}","deleted_at":{deleted_at},"address":{{"street":"{house} Main Street","city":"{city}","postal_code":{postal_code}}},"tags":{tags}}}"#,
        status = status_of(id),
        country = COUNTRIES[(id % 8) as usize],
        created_at = created_at(id),
        house = 1 + id % 250,
        city = CITIES[(id % 6) as usize],
        tags = TAGS[(id % 4) as usize],
    );
}

const FIRST_NAMES: [&str; 8] = [
    "Anna", "Bram", "Chloe", "Daan", "Emma", "Finn", "Greta", "Hugo",
];
const LAST_NAMES: [&str; 7] = [
    "Jansen", "Müller", "Martin", "Smith", "Brown", "Tanaka", "Silva",
];
const STREETS: [&str; 5] = [
    "Keizersgracht",
    "Friedrichstraße",
    "Rue de la République",
    "Congress Avenue",
    "Park Row",
];
const PRODUCTS: [&str; 6] = [
    "Wireless Mouse",
    "Mechanical Keyboard",
    "USB-C Hub, 7 ports",
    "27-inch Monitor",
    "Laptop Stand",
    "Noise-cancelling Headphones",
];
const COLORS: [&str; 4] = ["black", "white", "silver", "blue"];
const SIZES: [&str; 3] = ["S", "M", "L"];
const ORDER_STATUSES: [&str; 5] = ["pending", "paid", "shipped", "delivered", "refunded"];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
const CHANNELS: [&str; 3] = ["web", "ios", "android"];

/// `cents` as a decimal amount: `1234` -> `12.34`.
fn amount(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A 2024 timestamp `seconds` after 2024-01-01T00:00:00Z, with milliseconds, as APIs send them.
fn timestamp(seconds: u64) -> String {
    let days = seconds / 86_400 % 336;
    format!(
        "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + days / 28,
        1 + days % 28,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        seconds % 1000,
    )
}

/// Appends order `id` (about 2 KB; every order differs): a customer with an address, a
/// shipping address, 4 to 8 line items with their own discounts array, totals, payment,
/// a metadata map and tags, shaped as e-commerce APIs return orders.
pub fn write_order(id: u64, out: &mut Vec<u8>) {
    let customer = id / 3;
    let first = FIRST_NAMES[(customer % 8) as usize];
    let created = 1_000 + id * 37;
    let _ = write!(
        out,
        r#"{{"id":{id},"number":"ORD-{id:08}","status":"{status}","currency":"{currency}","created_at":"{created_at}","updated_at":"{updated_at}","customer":{{"id":{customer},"first_name":"{first}","last_name":"{last}","email":"{email}.{customer}@example.com","phone":"+31 6 {phone:08}","accepts_marketing":{marketing},"created_at":"{customer_since}","address":"#,
        status = ORDER_STATUSES[(id % 5) as usize],
        currency = CURRENCIES[(id % 4) as usize],
        created_at = timestamp(created),
        updated_at = timestamp(created + 3_600 + id % 86_400),
        last = LAST_NAMES[(customer % 7) as usize],
        email = first.to_lowercase(),
        phone = customer * 7_919 % 100_000_000,
        marketing = customer.is_multiple_of(2),
        customer_since = timestamp(customer * 11),
    );
    write_address(customer, out);
    out.extend_from_slice(br#"},"shipping_address":"#);
    write_address(customer + id % 2, out);
    out.extend_from_slice(br#","line_items":["#);
    let mut subtotal = 0;
    for item in 0..4 + id % 5 {
        let line = id * 8 + item;
        let quantity = 1 + line % 4;
        let unit_cents = 499 + (line * 7_919) % 25_000;
        let discount_cents = if line.is_multiple_of(3) {
            unit_cents / 10
        } else {
            0
        };
        let total_cents = quantity * unit_cents - discount_cents;
        subtotal += total_cents;
        if item > 0 {
            out.push(b',');
        }
        let _ = write!(
            out,
            r#"{{"id":{line},"sku":"SKU-{sku:06}","name":"{name}","variant":{{"color":"{color}","size":"{size}"}},"quantity":{quantity},"unit_price":{unit},"total":{total},"tax_rate":0.21,"discounts":["#,
            sku = (line * 7_877) % 1_000_000,
            name = PRODUCTS[(line % 6) as usize],
            color = COLORS[(line % 4) as usize],
            size = SIZES[(line % 3) as usize],
            unit = amount(unit_cents),
            total = amount(total_cents),
        );
        if discount_cents > 0 {
            let _ = write!(
                out,
                r#"{{"code":"SAVE10-{code}","amount":{discount}}}"#,
                code = line % 97,
                discount = amount(discount_cents)
            );
        }
        out.extend_from_slice(b"]}");
    }
    let tax = subtotal * 21 / 100;
    let shipping = if subtotal > 10_000 { 0 } else { 495 };
    let _ = write!(
        out,
        r#"],"totals":{{"subtotal":{subtotal},"tax":{tax},"shipping":{shipping},"total":{total}}},"payment":{{"method":"card","brand":"{brand}","last4":"{last4:04}","captured_at":{captured}}},"metadata":{{"channel":"{channel}","campaign":"spring-{campaign}","ab_bucket":"b{bucket}","referrer":"https://www.example.com/products?ref={referrer}"}},"tags":{tags}}}"#,
        subtotal = amount(subtotal),
        tax = amount(tax),
        shipping = amount(shipping),
        total = amount(subtotal + tax + shipping),
        brand = if id.is_multiple_of(3) {
            "mastercard"
        } else {
            "visa"
        },
        last4 = id * 31 % 10_000,
        captured = if id.is_multiple_of(5) {
            "null".to_owned()
        } else {
            format!("\"{}\"", timestamp(created + 60))
        },
        channel = CHANNELS[(id % 3) as usize],
        campaign = id % 12,
        bucket = id % 4,
        referrer = id % 1_000,
        tags = TAGS[(id % 4) as usize],
    );
}

/// Appends the address numbered `n` as a JSON object.
fn write_address(n: u64, out: &mut Vec<u8>) {
    let line2 = if n.is_multiple_of(4) {
        format!("\"Apt {}\"", 1 + n % 40)
    } else {
        "null".to_owned()
    };
    let _ = write!(
        out,
        r#"{{"line1":"{house} {street}","line2":{line2},"city":"{city}","postal_code":"{postal}","country":"{country}"}}"#,
        house = 1 + n % 300,
        street = STREETS[(n % 5) as usize],
        city = CITIES[(n % 6) as usize],
        postal = 10_000 + n * 13 % 89_999,
        country = COUNTRIES[(n % 8) as usize],
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
    shape: RecordShape,
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
    /// Generates `records` records of `shape` (rounded up to whole pages).
    pub fn generate(shape: RecordShape, records: u64) -> Self {
        let page_count = round_up_to_pages(records) / PAGE_SIZE;
        let mut pages = Vec::with_capacity(page_count as usize);
        let mut buffer = Vec::with_capacity(shape.typical_bytes() * PAGE_SIZE as usize);
        for page in 0..page_count {
            buffer.clear();
            for id in page * PAGE_SIZE..(page + 1) * PAGE_SIZE {
                if id != page * PAGE_SIZE {
                    buffer.push(b',');
                }
                shape.write(id, &mut buffer);
            }
            pages.push(Bytes::copy_from_slice(&buffer));
        }
        Self { shape, pages }
    }

    pub fn shape(&self) -> RecordShape {
        self.shape
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
        let pages = PageSet::generate(RecordShape::Plain, 2500);
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
        let pages = PageSet::generate(RecordShape::Plain, 1000);
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
        let pages = PageSet::generate(RecordShape::Plain, 2000);
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

    fn encoded(write: fn(u64, &mut Vec<u8>), id: u64) -> (usize, Value) {
        let mut out = Vec::new();
        write(id, &mut out);
        let record = serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "record {id} is not JSON ({e}): {}",
                String::from_utf8_lossy(&out)
            )
        });
        (out.len(), record)
    }

    #[test]
    fn typed_records_send_some_values_as_other_types_than_their_schema() {
        for id in [0, 1, 7, 999, 123_456, 9_999_999] {
            let (len, record) = encoded(write_typed_record, id);
            assert!((250..=340).contains(&len), "record {id} is {len} bytes");
            assert_eq!(record["id"], id);
            assert_eq!(record["created_at"], created_at(id));
            assert!(record["address"]["city"].is_string());
        }
        // Record 0 has every conversion normalisation makes; record 1 none of them.
        let (_, first) = encoded(write_typed_record, 0);
        assert_eq!(first["score"], "0.00");
        assert_eq!(first["visits"], "0");
        assert_eq!(first["verified"], "true");
        assert_eq!(first["address"]["postal_code"], 10_000);
        assert_eq!(first["deleted_at"], Value::Null);
        let (_, second) = encoded(write_typed_record, 1);
        assert!(second["score"].is_f64() && second["visits"].is_u64());
        assert!(second["verified"].is_boolean() && second["address"]["postal_code"].is_string());
        let (_, deleted) = encoded(write_typed_record, 9);
        assert_eq!(deleted["deleted_at"], created_at(10));
    }

    #[test]
    fn orders_are_about_2_kb_of_nested_json_and_all_differ() {
        let mut sizes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in 0..1_000 {
            let mut out = Vec::new();
            write_order(id, &mut out);
            sizes.push(out.len());
            assert!(seen.insert(out), "order {id} repeats an earlier one");
        }
        let average = sizes.iter().sum::<usize>() / sizes.len();
        assert!(
            (1_800..=2_200).contains(&average),
            "orders average {average} bytes"
        );
        assert!(
            sizes.iter().all(|&len| (1_400..=2_800).contains(&len)),
            "{sizes:?}"
        );
        for id in [0, 1, 4, 999_999] {
            let (_, order) = encoded(write_order, id);
            assert_eq!(order["id"], id);
            let items = order["line_items"].as_array().unwrap();
            assert_eq!(items.len() as u64, 4 + id % 5);
            assert!(items[0]["discounts"].is_array());
            assert!(order["customer"]["address"]["postal_code"].is_string());
            assert!(order["totals"]["total"].is_f64());
            assert!(order["metadata"]["referrer"].is_string());
        }
    }

    #[test]
    fn each_shape_is_served_from_its_own_route() {
        let orders = PageSet::generate(RecordShape::Wide, 1000);
        assert_eq!(orders.shape().offset_path(), "/offset/orders");
        let page = join(&orders.offset_body(0, 1000, 1000).unwrap());
        assert!(page["data"][999]["line_items"].is_array());
        let paths = [RecordShape::Plain, RecordShape::Typed, RecordShape::Wide]
            .map(RecordShape::offset_path);
        assert!(paths.iter().all(|p| p.starts_with("/offset/")));
        assert_eq!(std::collections::HashSet::from(paths).len(), 3);
    }

    #[test]
    fn the_latest_created_at_is_the_greatest_of_the_records_served() {
        assert_eq!(latest_created_at(0), None);
        assert_eq!(
            latest_created_at(1).as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        let latest = latest_created_at(5_000).unwrap();
        assert!((0..5_000).all(|id| created_at(id) <= latest));
        assert!((0..5_000).any(|id| created_at(id) == latest));
        assert!(latest.starts_with("2024-12-"), "{latest}");
    }

    #[test]
    fn the_status_filter_drops_one_record_in_ten() {
        let kept = (0..1000).filter(|&id| kept_by_status_filter(id)).count();
        assert_eq!(kept, 900);
    }
}
