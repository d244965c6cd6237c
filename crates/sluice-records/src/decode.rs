//! Decoders: response bytes to the bodies records are extracted from, as the reference's
//! `decoders/` do.

use std::io::Read;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Map, Value};
use sluice_manifest::{ManifestPath, model};

use crate::error::{BuildError, SelectError};
use crate::xml::xml_to_value;

static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));

/// The most bytes a decoder inflates one response to by default (gzip, zlib, the files of a
/// zip archive together), as much as the HTTP client reads.
const DEFAULT_MAX_INFLATED_BYTES: usize = 384 << 20;

// Process-wide rather than per decoder: decoders are built deep inside components that have
// no options of their own, and one process runs one connector with one limit.
static MAX_INFLATED_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_INFLATED_BYTES);

/// Sets the most bytes a decoder inflates one response to; a decompression bomb then fails the
/// page with an error naming the limit instead of filling memory.
pub fn set_max_inflated_bytes(bytes: usize) {
    MAX_INFLATED_BYTES.store(bytes, Ordering::Relaxed);
}

/// Inflates `decoder` into a buffer, taking its size from `budget`; `FileTooLarge` when the
/// budget runs out.
fn inflate(mut decoder: impl Read, budget: &mut usize) -> std::io::Result<Vec<u8>> {
    // In chunks joined once at the end: growing one buffer would copy it at every reallocation
    // (the allocator moves large blocks), holding two copies of a bomb at once.
    const CHUNK: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        let read = (&mut decoder).take(CHUNK as u64).read_to_end(&mut chunk)?;
        if read == 0 {
            break;
        }
        total += read;
        if total > *budget {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        chunks.push(chunk);
    }
    *budget -= total;
    Ok(chunks.concat())
}

fn inflate_error(error: std::io::Error, what: &str) -> SelectError {
    if error.kind() == std::io::ErrorKind::FileTooLarge {
        let limit = MAX_INFLATED_BYTES.load(Ordering::Relaxed);
        let limit = if limit % (1 << 20) == 0 {
            format!("{} MiB", limit >> 20)
        } else {
            format!("{limit} bytes")
        };
        SelectError::Decode(format!(
            "the response is larger than {limit} once decompressed (a decompression bomb?); \
             a larger limit can be set with --max-response-size"
        ))
    } else {
        SelectError::Decode(format!("{what}: {error}"))
    }
}

/// Decodes a JSON response body into the bodies records are extracted from, as the reference's
/// JsonDecoder does: a top-level array gives one body per element; an empty array, `null`, an
/// empty body or invalid JSON give a single empty object (so nothing is extracted from it).
pub fn decode_json_bodies(body: &[u8]) -> Vec<Value> {
    match crate::json::from_slice(body) {
        Ok(Value::Array(items)) if !items.is_empty() => items,
        Ok(Value::Array(_)) | Ok(Value::Null) => vec![Value::Object(Default::default())],
        Ok(other) => vec![other],
        Err(error) => {
            // The reference logs its parser's failure as an error, then reads the page as empty.
            tracing::error!("Failed to parse JSON data using json library. {error}");
            vec![Value::Object(Default::default())]
        }
    }
}

/// A stream's decoder (`retriever.decoder`; JsonDecoder when absent).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoder {
    /// `JsonDecoder`: lenient JSON (bad JSON gives one empty body).
    Json,
    /// `XmlDecoder`: the document as xmltodict converts it (attributes `@name`, text `#text`,
    /// repeated elements as lists); a malformed document gives one empty body.
    Xml,
    /// `IterableDecoder`: each line of the body as `{"record": line}`.
    Iterable,
    /// `ZipfileDecoder`: every file of a zip archive through a parser.
    Zipfile(Parser),
    /// `JsonlDecoder`, `CsvDecoder`, `GzipDecoder`, `JsonItemsDecoder`: the body through a
    /// parser. The reference streams these responses, so its paginator sees `{}` as the body.
    Streamed(Parser),
}

/// The parsers the reference composes inside `CompositeRawDecoder` and `ZipfileDecoder`.
#[derive(Debug, Clone, PartialEq)]
pub enum Parser {
    /// Strict JSON: an array gives its elements; invalid JSON or `null` is an error.
    Json,
    /// One JSON document per line; lines that are not JSON are skipped with a warning.
    JsonLines,
    /// The elements of the array at a dotted path (`data.users`; `item` steps into arrays).
    JsonItems {
        /// The path's keys.
        path: Vec<String>,
        /// The text encoding of the body.
        encoding: TextEncoding,
    },
    /// CSV rows as objects keyed by the header row.
    Csv(CsvOptions),
    /// Gunzips the bytes when they start with the gzip magic number, then the inner parser.
    Gzip(Box<Parser>),
    /// `ResponseToFileExtractor`: CSV as the reference reads a downloaded report with pandas
    /// (`read_csv(dtype=object)`): gzip or zlib data inflated, NUL bytes dropped, blank lines
    /// skipped, repeated column names numbered (`a`, `a.1`), missing and empty cells and pandas'
    /// NA strings (`NA`, `null`, `NaN`, ...) as null, unless `preserve_na_values` keeps the NA
    /// strings.
    PandasCsv {
        /// `preserve_na_values`.
        preserve_na_values: bool,
    },
}

/// Options of `CsvDecoder`.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The field delimiter (one ASCII character).
    pub delimiter: u8,
    /// The text encoding.
    pub encoding: TextEncoding,
    /// Values that become `null`.
    pub set_values_to_none: Vec<String>,
}

/// A text encoding named as Python names codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// `utf-8`: invalid bytes are an error; a BOM is kept as a character.
    Utf8,
    /// `utf-8-sig`: a leading BOM is dropped.
    Utf8Sig,
    /// `latin-1` / `iso-8859-1`: each byte is the code point of the same value.
    Latin1,
    /// `ascii`.
    Ascii,
    /// Any other encoding known to the WHATWG encoding standard.
    Other(&'static encoding_rs::Encoding),
}

impl TextEncoding {
    /// The encoding named by a Python codec name, if known.
    pub fn from_python_name(name: &str) -> Option<TextEncoding> {
        let normalized = name.trim().to_ascii_lowercase().replace('_', "-");
        Some(match normalized.as_str() {
            "utf-8" | "utf8" | "u8" | "utf" | "cp65001" => TextEncoding::Utf8,
            "utf-8-sig" | "utf8-sig" => TextEncoding::Utf8Sig,
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "8859" | "cp819" | "l1"
            | "iso-ir-100" => TextEncoding::Latin1,
            "ascii" | "us-ascii" | "646" => TextEncoding::Ascii,
            other => TextEncoding::Other(encoding_rs::Encoding::for_label(other.as_bytes())?),
        })
    }

    /// Decodes bytes to text; invalid input is an error as in Python's strict codecs.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, str>, String> {
        use std::borrow::Cow;
        let invalid = |name: &str| format!("the body is not valid {name} text");
        match self {
            TextEncoding::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| format!("the body is not valid UTF-8: {e}")),
            TextEncoding::Utf8Sig => {
                let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                std::str::from_utf8(bytes)
                    .map(Cow::Borrowed)
                    .map_err(|e| format!("the body is not valid UTF-8: {e}"))
            }
            TextEncoding::Latin1 => Ok(Cow::Owned(bytes.iter().map(|b| char::from(*b)).collect())),
            TextEncoding::Ascii => {
                if bytes.is_ascii() {
                    // ASCII is valid UTF-8.
                    Ok(String::from_utf8_lossy(bytes))
                } else {
                    Err(invalid("ASCII"))
                }
            }
            TextEncoding::Other(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(|| invalid(encoding.name())),
        }
    }
}

/// What a decoder made of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    bodies: Vec<Value>,
    streamed: bool,
}

impl Decoded {
    /// The decoded bodies, in order.
    pub fn bodies(&self) -> &[Value] {
        &self.bodies
    }

    /// Takes the bodies.
    pub fn into_bodies(self) -> Vec<Value> {
        self.bodies
    }

    /// The body the reference's paginator reads as `response`: the first decoded body, or `{}`
    /// when the decoder streams the response (JSONL, CSV, gzip, iterable) or yielded nothing.
    pub fn pagination_body(&self) -> &Value {
        if self.streamed {
            return &EMPTY_OBJECT;
        }
        self.bodies.first().unwrap_or(&EMPTY_OBJECT)
    }

    /// Whether the reference streams this response (its paginator then sees no body).
    pub fn is_streamed(&self) -> bool {
        self.streamed
    }
}

impl Decoder {
    /// Builds the decoder of a retriever (`None`: the default JsonDecoder).
    pub fn from_model(
        decoder: Option<&model::Decoder>,
        path: &ManifestPath,
    ) -> Result<Decoder, BuildError> {
        let Some(decoder) = decoder else {
            return Ok(Decoder::Json);
        };
        Ok(match decoder {
            model::Decoder::JsonDecoder(_) => Decoder::Json,
            model::Decoder::XmlDecoder(_) => Decoder::Xml,
            model::Decoder::IterableDecoder(_) => Decoder::Iterable,
            model::Decoder::ZipfileDecoder(zip) => {
                Decoder::Zipfile(Parser::from_model(&zip.decoder, &path.key("decoder"))?)
            }
            model::Decoder::JsonlDecoder(_) => Decoder::Streamed(Parser::JsonLines),
            model::Decoder::CsvDecoder(csv) => Decoder::Streamed(Parser::csv(csv, path)?),
            model::Decoder::JsonItemsDecoder(items) => {
                Decoder::Streamed(Parser::json_items(items, path)?)
            }
            model::Decoder::GzipDecoder(gzip) => Decoder::Streamed(Parser::Gzip(Box::new(
                Parser::from_model(&gzip.decoder, &path.key("decoder"))?,
            ))),
            model::Decoder::CustomDecoder(custom) => {
                return Err(BuildError::new(
                    path,
                    format!(
                        "custom decoder {} cannot run in sluice (custom Python components are not supported)",
                        custom.class_name
                    ),
                ));
            }
        })
    }

    /// Whether the reference streams responses through this decoder (its paginator and a
    /// CombinedExtractor cannot read them again).
    pub fn is_streamed(&self) -> bool {
        matches!(self, Decoder::Streamed(_) | Decoder::Iterable)
    }

    /// Decodes a response body.
    pub fn decode(&self, body: &[u8]) -> Result<Decoded, SelectError> {
        let mut bodies = Vec::new();
        match self {
            Decoder::Json => bodies = decode_json_bodies(body),
            Decoder::Xml => bodies.push(decode_xml(body)),
            Decoder::Iterable => decode_lines(body, &mut bodies)?,
            Decoder::Zipfile(parser) => decode_zip(parser, body, &mut bodies)?,
            Decoder::Streamed(parser) => parser.parse(body, &mut bodies)?,
        }
        Ok(Decoded {
            bodies,
            streamed: self.is_streamed(),
        })
    }
}

impl Parser {
    fn from_model(model: &model::InnerDecoder, path: &ManifestPath) -> Result<Parser, BuildError> {
        Ok(match model {
            model::InnerDecoder::JsonDecoder(_) => Parser::Json,
            model::InnerDecoder::JsonlDecoder(_) => Parser::JsonLines,
            model::InnerDecoder::CsvDecoder(csv) => Parser::csv(csv, path)?,
            model::InnerDecoder::JsonItemsDecoder(items) => Parser::json_items(items, path)?,
            model::InnerDecoder::GzipDecoder(gzip) => Parser::Gzip(Box::new(Parser::from_model(
                &gzip.decoder,
                &path.key("decoder"),
            )?)),
        })
    }

    fn csv(model: &model::CsvDecoder, path: &ManifestPath) -> Result<Parser, BuildError> {
        let delimiter = model.delimiter.as_deref().unwrap_or(",");
        // The reference unescapes delimiters written with a backslash (`\t`).
        let delimiter = if delimiter.starts_with('\\') {
            unescape_delimiter(delimiter)
        } else {
            delimiter.to_string()
        };
        let delimiter = match delimiter.as_bytes() {
            [byte] if byte.is_ascii() => *byte,
            _ => {
                return Err(BuildError::new(
                    &path.key("delimiter"),
                    format!(
                        "the CSV delimiter must be a single ASCII character, not {delimiter:?}"
                    ),
                ));
            }
        };
        Ok(Parser::Csv(CsvOptions {
            delimiter,
            encoding: encoding(model.encoding.as_deref(), path)?,
            set_values_to_none: model.set_values_to_none.clone().unwrap_or_default(),
        }))
    }

    fn json_items(
        model: &model::JsonItemsDecoder,
        path: &ManifestPath,
    ) -> Result<Parser, BuildError> {
        if model.items_path.is_empty() {
            return Err(BuildError::new(
                &path.key("items_path"),
                "JsonItemsDecoder requires a non-empty items_path",
            ));
        }
        Ok(Parser::JsonItems {
            path: model.items_path.split('.').map(str::to_string).collect(),
            encoding: encoding(model.encoding.as_deref(), path)?,
        })
    }

    /// Parses bytes, appending the bodies found.
    pub fn parse(&self, bytes: &[u8], out: &mut Vec<Value>) -> Result<(), SelectError> {
        let mut inflate_budget = MAX_INFLATED_BYTES.load(Ordering::Relaxed);
        self.parse_within(bytes, &mut inflate_budget, out)
    }

    /// [`Parser::parse`], inflating at most `inflate_budget` more bytes.
    fn parse_within(
        &self,
        bytes: &[u8],
        inflate_budget: &mut usize,
        out: &mut Vec<Value>,
    ) -> Result<(), SelectError> {
        match self {
            Parser::Json => parse_json_strict(bytes, out),
            Parser::JsonLines => parse_json_lines(bytes, out),
            Parser::JsonItems { path, encoding } => parse_json_items(bytes, path, *encoding, out),
            Parser::Csv(options) => parse_csv(bytes, options, out),
            Parser::PandasCsv { preserve_na_values } => {
                parse_pandas_csv(bytes, *preserve_na_values, inflate_budget, out)
            }
            Parser::Gzip(inner) => {
                if bytes.starts_with(&[0x1f, 0x8b]) {
                    let plain = inflate(flate2::read::MultiGzDecoder::new(bytes), inflate_budget)
                        .map_err(|e| inflate_error(e, "cannot gunzip the body"))?;
                    inner.parse_within(&plain, inflate_budget, out)
                } else {
                    inner.parse_within(bytes, inflate_budget, out)
                }
            }
        }
    }
}

fn encoding(name: Option<&str>, path: &ManifestPath) -> Result<TextEncoding, BuildError> {
    let name = name.unwrap_or("utf-8");
    TextEncoding::from_python_name(name)
        .ok_or_else(|| BuildError::new(&path.key("encoding"), format!("unknown encoding {name:?}")))
}

/// Python's `unicode_escape` for the short escapes a delimiter is written with.
fn unescape_delimiter(text: &str) -> String {
    match text {
        "\\t" => "\t".to_string(),
        "\\n" => "\n".to_string(),
        "\\r" => "\r".to_string(),
        "\\\\" => "\\".to_string(),
        "\\x1f" | "\\x1F" => "\u{1f}".to_string(),
        other => other
            .strip_prefix("\\x")
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .map_or_else(|| other.to_string(), |b| char::from(b).to_string()),
    }
}

fn parse_json_strict(bytes: &[u8], out: &mut Vec<Value>) -> Result<(), SelectError> {
    match crate::json::from_slice(bytes) {
        Ok(Value::Array(items)) => out.extend(items),
        Ok(Value::Null) | Err(_) => {
            return Err(SelectError::Decode(
                "Response JSON data failed to be parsed.".to_string(),
            ));
        }
        Ok(other) => out.push(other),
    }
    Ok(())
}

fn parse_json_lines(bytes: &[u8], out: &mut Vec<Value>) -> Result<(), SelectError> {
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let text = std::str::from_utf8(line)
            .map_err(|e| SelectError::Decode(format!("a JSON line is not valid UTF-8: {e}")))?;
        match serde_json::from_str::<Value>(text) {
            Ok(value) => out.push(value),
            Err(error) => {
                tracing::warn!("Cannot decode/parse line {text:?} as JSON, error: {error}");
            }
        }
    }
    Ok(())
}

fn parse_json_items(
    bytes: &[u8],
    path: &[String],
    encoding: TextEncoding,
    out: &mut Vec<Value>,
) -> Result<(), SelectError> {
    let text = encoding.decode(bytes).map_err(SelectError::Decode)?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| SelectError::Decode(format!("the body is not valid JSON: {e}")))?;
    collect_items(document, path, out);
    Ok(())
}

/// ijson's `items(prefix + ".item")`: object keys step into objects, `item` steps into every
/// element of an array; the elements of the array found at the end are the bodies.
fn collect_items(node: Value, path: &[String], out: &mut Vec<Value>) {
    let Some((step, rest)) = path.split_first() else {
        if let Value::Array(items) = node {
            out.extend(items);
        }
        return;
    };
    match node {
        Value::Object(mut map) => {
            if let Some(child) = map.swap_remove(step.as_str()) {
                collect_items(child, rest, out);
            }
        }
        Value::Array(items) if step == "item" => {
            for item in items {
                collect_items(item, rest, out);
            }
        }
        _ => {}
    }
}

fn parse_csv(bytes: &[u8], options: &CsvOptions, out: &mut Vec<Value>) -> Result<(), SelectError> {
    let text = options
        .encoding
        .decode(bytes)
        .map_err(SelectError::Decode)?;
    // Python reads the text with universal newlines, so `\r\n` and `\r` become `\n` even
    // inside quoted fields.
    let text = if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        text
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(row) => row.map_err(csv_error)?,
        None => return Ok(()),
    };
    let names: Vec<String> = header.iter().map(str::to_string).collect();
    for row in records {
        let row = row.map_err(csv_error)?;
        let mut record = Map::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let value = match row.get(index) {
                Some(field) if options.set_values_to_none.iter().any(|v| v == field) => Value::Null,
                Some(field) => Value::String(field.to_string()),
                None => Value::Null,
            };
            record.insert(name.clone(), value);
        }
        if row.len() > names.len() {
            // csv.DictReader keeps the extra fields of a long row in a list under the key None.
            let extra = row
                .iter()
                .skip(names.len())
                .map(|f| Value::String(f.to_string()));
            record.insert("null".to_string(), Value::Array(extra.collect()));
        }
        out.push(Value::Object(record));
    }
    Ok(())
}

/// The strings pandas reads as missing by default (`keep_default_na`).
const PANDAS_NA_VALUES: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

fn parse_pandas_csv(
    bytes: &[u8],
    preserve_na_values: bool,
    inflate_budget: &mut usize,
    out: &mut Vec<Value>,
) -> Result<(), SelectError> {
    // The reference inflates what `zlib` (gzip or zlib headers) accepts and writes the rest as
    // sent, without its NUL bytes.
    // Anything but a bomb that fails to inflate is simply not compressed.
    let attempt = |result: std::io::Result<Vec<u8>>| match result {
        Ok(inflated) => Ok(Some(inflated)),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            Err(inflate_error(e, "cannot inflate the body"))
        }
        Err(_) => Ok(None),
    };
    let mut inflated = None;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let budget = &mut *inflate_budget;
        inflated = attempt(inflate(flate2::read::MultiGzDecoder::new(bytes), budget))?;
    }
    if inflated.is_none() {
        inflated = attempt(inflate(
            flate2::read::ZlibDecoder::new(bytes),
            inflate_budget,
        ))?
        .filter(|zlib| !zlib.is_empty());
    }
    let plain: Vec<u8> = if let Some(inflated) = inflated {
        inflated
    } else {
        let kept: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
        if kept.len() < bytes.len() {
            tracing::warn!(
                "Filter 'null' bytes from string, size reduced {} -> {} chars",
                bytes.len(),
                kept.len()
            );
        }
        kept
    };
    let text = String::from_utf8_lossy(&plain);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = reader
        .records()
        .filter(|row| !matches!(row, Ok(r) if r.len() == 1 && r.get(0) == Some("")));
    let header = match rows.next() {
        Some(row) => row.map_err(csv_error)?,
        None => {
            tracing::info!("Empty data received. No columns to parse from file");
            return Ok(());
        }
    };
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for name in header.iter() {
        let mut unique = name.to_string();
        let mut count = 0;
        while names.contains(&unique) {
            count += 1;
            unique = format!("{name}.{count}");
        }
        names.push(unique);
    }
    let is_missing = |field: &str| {
        if preserve_na_values {
            field.is_empty()
        } else {
            PANDAS_NA_VALUES.contains(&field)
        }
    };
    for row in rows {
        let row = row.map_err(csv_error)?;
        if row.len() > names.len() {
            return Err(SelectError::Decode(format!(
                "Error tokenizing data. C error: Expected {} fields, saw {}",
                names.len(),
                row.len()
            )));
        }
        let record = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let value = match row.get(index) {
                    Some(field) if !is_missing(field) => Value::String(field.to_string()),
                    _ => Value::Null,
                };
                (name.clone(), value)
            })
            .collect();
        out.push(Value::Object(record));
    }
    Ok(())
}

fn csv_error(error: csv::Error) -> SelectError {
    SelectError::Decode(format!("cannot parse the CSV body: {error}"))
}

/// A body read as the reference's `XmlDecoder` reads it (for other crates: a session login's
/// response); `None` when it is not well-formed XML (the reference then warns and reads `{}`).
pub fn decode_xml_body(bytes: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(bytes);
    match xml_to_value(&text) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!("Response cannot be parsed from XML: {error}");
            None
        }
    }
}

fn decode_xml(bytes: &[u8]) -> Value {
    decode_xml_body(bytes).unwrap_or_else(|| Value::Object(Map::new()))
}

/// `requests.iter_lines()`: lines split at `\n`, `\r\n` or `\r`, without a last empty line.
fn decode_lines(bytes: &[u8], out: &mut Vec<Value>) -> Result<(), SelectError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .unwrap_or(rest.len());
        let line = std::str::from_utf8(&rest[..end]).map_err(|e| {
            SelectError::Decode(format!("a line of the body is not valid UTF-8: {e}"))
        })?;
        let mut record = Map::with_capacity(1);
        record.insert("record".to_string(), Value::String(line.to_string()));
        out.push(Value::Object(record));
        let skip = match (rest.get(end), rest.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        rest = &rest[end + skip..];
    }
    Ok(())
}

fn decode_zip(parser: &Parser, bytes: &[u8], out: &mut Vec<Value>) -> Result<(), SelectError> {
    // One budget for all the files: an archive of many files each below the limit is a bomb too.
    let mut inflate_budget = MAX_INFLATED_BYTES.load(Ordering::Relaxed);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
        SelectError::Decode(format!("Received an invalid zip file in response: {e}"))
    })?;
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(|e| {
            SelectError::Decode(format!("Received an invalid zip file in response: {e}"))
        })?;
        let name = file.name().to_string();
        let content = inflate(&mut file, &mut inflate_budget).map_err(|e| {
            inflate_error(e, &format!("Failed to parse file: {name} from zip file"))
        })?;
        parser
            .parse_within(&content, &mut inflate_budget, out)
            .map_err(|e| {
                SelectError::Decode(format!("Failed to parse file: {name} from zip file: {e}"))
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn csv(delimiter: u8, none: &[&str]) -> Parser {
        Parser::Csv(CsvOptions {
            delimiter,
            encoding: TextEncoding::Utf8,
            set_values_to_none: none.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn pandas_csv_reads_na_strings_as_null_unless_preserved() {
        let body = b"a,b,a\nNA,,x\n\nnull,1\n";
        let read = |preserve_na_values| {
            let mut out = Vec::new();
            Parser::PandasCsv { preserve_na_values }
                .parse(body, &mut out)
                .unwrap();
            out
        };
        assert_eq!(
            read(false),
            vec![
                json!({"a": null, "b": null, "a.1": "x"}),
                json!({"a": null, "b": "1", "a.1": null})
            ]
        );
        assert_eq!(
            read(true),
            vec![
                json!({"a": "NA", "b": null, "a.1": "x"}),
                json!({"a": "null", "b": "1", "a.1": null})
            ]
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut zlib, b"a\n1\n").unwrap();
        let mut out = Vec::new();
        Parser::PandasCsv {
            preserve_na_values: false,
        }
        .parse(&zlib.finish().unwrap(), &mut out)
        .unwrap();
        assert_eq!(out, vec![json!({"a": "1"})]);
    }

    #[test]
    fn splits_top_level_arrays_and_falls_back_to_an_empty_object() {
        assert_eq!(
            decode_json_bodies(br#"[{"a":1},{"a":2}]"#),
            vec![json!({"a":1}), json!({"a":2})]
        );
        assert_eq!(decode_json_bodies(br#"{"a":1}"#), vec![json!({"a":1})]);
        for empty in [&b"[]"[..], &b""[..], &b"null"[..], &b"not json"[..]] {
            assert_eq!(decode_json_bodies(empty), vec![json!({})]);
        }
    }

    #[test]
    fn pagination_body_is_the_first_body_unless_streamed() {
        let decoded = Decoder::Json.decode(br#"[{"a":1},{"a":2}]"#).unwrap();
        assert_eq!(decoded.pagination_body(), &json!({"a": 1}));
        let decoded = Decoder::Streamed(Parser::JsonLines)
            .decode(b"{\"a\":1}\n")
            .unwrap();
        assert_eq!(decoded.pagination_body(), &json!({}));
        assert_eq!(decoded.bodies(), &[json!({"a": 1})]);
    }

    #[test]
    fn json_lines_skip_bad_lines() {
        let decoded = Decoder::Streamed(Parser::JsonLines)
            .decode(b"{\"a\":1}\r\n\nnot json\n[1,2]")
            .unwrap();
        assert_eq!(decoded.into_bodies(), vec![json!({"a": 1}), json!([1, 2])]);
        assert!(
            Decoder::Streamed(Parser::JsonLines)
                .decode(b"\xff\n")
                .is_err()
        );
    }

    #[test]
    fn csv_rows_follow_dict_reader() {
        let mut out = Vec::new();
        csv(b',', &["", "NA"])
            .parse(
                b"id,name,note\r\n1,\"a,b\",NA\r\n\r\n2,x\r\n3,y,z,extra\n",
                &mut out,
            )
            .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"id": "1", "name": "a,b", "note": null}),
                json!({"id": "2", "name": "x", "note": null}),
                json!({"id": "3", "name": "y", "note": "z", "null": ["extra"]}),
            ]
        );
        let mut out = Vec::new();
        csv(b'\t', &[]).parse(b"a\tb\n1\t2\n", &mut out).unwrap();
        assert_eq!(out, vec![json!({"a": "1", "b": "2"})]);
        let mut out = Vec::new();
        csv(b',', &[]).parse(b"", &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn csv_encodings() {
        let parser = Parser::Csv(CsvOptions {
            delimiter: b',',
            encoding: TextEncoding::from_python_name("ISO-8859-1").unwrap(),
            set_values_to_none: vec![],
        });
        let mut out = Vec::new();
        parser.parse(b"name\ncaf\xe9\n", &mut out).unwrap();
        assert_eq!(out, vec![json!({"name": "café"})]);
        assert!(
            csv(b',', &[])
                .parse(b"name\ncaf\xe9\n", &mut Vec::new())
                .is_err()
        );
        assert!(TextEncoding::from_python_name("no-such-codec").is_none());
        assert_eq!(unescape_delimiter("\\t"), "\t");
    }

    #[test]
    fn gzip_wraps_an_inner_parser_and_passes_plain_bytes_through() {
        let decoder = Decoder::Streamed(Parser::Gzip(Box::new(Parser::JsonLines)));
        let decoded = decoder.decode(&gzip(b"{\"a\":1}\n{\"a\":2}\n")).unwrap();
        assert_eq!(decoded.bodies().len(), 2);
        let decoded = decoder.decode(b"{\"a\":3}\n").unwrap();
        assert_eq!(decoded.bodies(), &[json!({"a": 3})]);
        let strict = Decoder::Streamed(Parser::Gzip(Box::new(Parser::Json)));
        assert!(strict.decode(&gzip(b"null")).is_err());
        assert_eq!(strict.decode(&gzip(b"[]")).unwrap().bodies().len(), 0);
    }

    #[test]
    fn iterable_lines() {
        let decoded = Decoder::Iterable.decode(b"a\r\nb\n\nc\rd\n").unwrap();
        let lines: Vec<_> = decoded
            .bodies()
            .iter()
            .map(|b| b["record"].clone())
            .collect();
        assert_eq!(
            lines,
            vec![json!("a"), json!("b"), json!(""), json!("c"), json!("d")]
        );
        assert!(Decoder::Iterable.decode(b"").unwrap().bodies().is_empty());
    }

    #[test]
    fn json_items_follow_ijson_paths() {
        let parser = Parser::JsonItems {
            path: vec!["data".into(), "item".into(), "users".into()],
            encoding: TextEncoding::Utf8,
        };
        let mut out = Vec::new();
        parser
            .parse(
                br#"{"data": [{"users": [1, 2]}, {"users": [3]}]}"#,
                &mut out,
            )
            .unwrap();
        assert_eq!(out, vec![json!(1), json!(2), json!(3)]);
    }

    #[test]
    fn zip_archives() {
        let mut buffer = std::io::Cursor::new(Vec::new());
        {
            let mut writer = zip::ZipWriter::new(&mut buffer);
            let options = zip::write::SimpleFileOptions::default();
            writer.start_file("a.jsonl", options).unwrap();
            writer.write_all(b"{\"id\":1}\n{\"id\":2}\n").unwrap();
            writer.start_file("b.jsonl", options).unwrap();
            writer.write_all(b"{\"id\":3}\n").unwrap();
            writer.finish().unwrap();
        }
        let decoder = Decoder::Zipfile(Parser::JsonLines);
        let decoded = decoder.decode(buffer.get_ref()).unwrap();
        assert_eq!(decoded.bodies().len(), 3);
        assert_eq!(decoded.pagination_body(), &json!({"id": 1}));
        assert!(decoder.decode(b"not a zip").is_err());
    }

    #[test]
    fn xml_bad_documents_give_an_empty_body() {
        let decoded = Decoder::Xml.decode(b"<a><b>1</b>").unwrap();
        assert_eq!(decoded.bodies(), &[json!({})]);
        let decoded = Decoder::Xml.decode(b"<a><b>1</b><b>2</b></a>").unwrap();
        assert_eq!(decoded.bodies(), &[json!({"a": {"b": ["1", "2"]}})]);
    }
}
