//! How a target's input bytes split into parts.

/// The byte between the parts of an input: never part of UTF-8 text.
pub const SEPARATOR: u8 = 0xFF;

/// Joins parts into one input, [`SEPARATOR`] between them.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut input = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            input.push(SEPARATOR);
        }
        input.extend_from_slice(part);
    }
    input
}

/// The first part and the rest (empty when there is no separator).
pub(crate) fn split_first(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// The bytes as text; `None` when they are not UTF-8 (sluice reads every text input as UTF-8
/// and refuses anything else before these APIs see it).
pub(crate) fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// The first line (a conformance case's name) and the rest.
pub(crate) fn split_line(text: &str) -> (&str, &str) {
    text.split_once('\n').unwrap_or((text, ""))
}
