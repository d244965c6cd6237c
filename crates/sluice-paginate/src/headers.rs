//! The `headers` variable of pagination templates, as the reference builds it: the response's
//! headers as a dict, with `link` replaced by the parsed `Link` header
//! (`headers['link']['next']['url']`).

use serde_json::{Map, Value};

/// Builds the `headers` object: one entry per header name (names compared case-insensitively,
/// the first spelling kept, repeated headers joined with `", "` as `urllib3` joins them), then
/// `link` set to the parsed `Link` header (an empty object when there is none).
pub(crate) fn headers_object(headers: &[(String, String)]) -> Value {
    let mut object = Map::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let existing = object
            .iter_mut()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, slot)| slot);
        match existing {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                object.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    let link_header = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("link"))
        .and_then(|(_, value)| value.as_str());
    let links = link_header.map(parse_links).unwrap_or_default();
    object.insert("link".to_owned(), Value::Object(links));
    Value::Object(object)
}

/// Characters `requests` strips around link values and parameters.
const QUOTES_AND_SPACE: &[char] = &[' ', '\'', '"'];

/// Parses a `Link` header the way `requests.Response.links` does: each link keyed by its `rel`
/// (or its URL when it has none), holding `url` and its parameters; a later link with the same
/// key replaces an earlier one.
pub(crate) fn parse_links(header: &str) -> Map<String, Value> {
    let mut links = Map::new();
    let header = header.trim_matches(QUOTES_AND_SPACE);
    if header.is_empty() {
        return links;
    }
    for entry in split_links(header) {
        let (url, params) = entry.split_once(';').unwrap_or((entry, ""));
        let mut link = Map::new();
        link.insert(
            "url".to_owned(),
            Value::String(url.trim_matches(&['<', '>', ' ', '\'', '"'][..]).to_owned()),
        );
        for param in params.split(';') {
            // `requests` stops at the first parameter that is not exactly `key=value`.
            let mut parts = param.split('=');
            let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                break;
            };
            link.insert(
                key.trim_matches(QUOTES_AND_SPACE).to_owned(),
                Value::String(value.trim_matches(QUOTES_AND_SPACE).to_owned()),
            );
        }
        let key = match (link.get("rel"), link.get("url")) {
            (Some(Value::String(rel)), _) if !rel.is_empty() => rel.clone(),
            (_, Some(Value::String(url))) => url.clone(),
            _ => continue,
        };
        links.insert(key, Value::Object(link));
    }
    links
}

/// Splits on `,` followed by optional spaces and `<` (Python's `re.split(", *<", value)`),
/// dropping the separator.
fn split_links(header: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = header.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b',' {
            let mut after = index + 1;
            while after < bytes.len() && bytes[after] == b' ' {
                after += 1;
            }
            if after < bytes.len() && bytes[after] == b'<' {
                parts.push(&header[start..index]);
                start = after + 1;
                index = after + 1;
                continue;
            }
        }
        index += 1;
    }
    parts.push(&header[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_next_and_last_like_requests() {
        let links = parse_links(
            r#"<https://api.example.com/items?page=2>; rel="next", <https://api.example.com/items?page=9>; rel="last""#,
        );
        assert_eq!(
            Value::Object(links),
            json!({
                "next": {"url": "https://api.example.com/items?page=2", "rel": "next"},
                "last": {"url": "https://api.example.com/items?page=9", "rel": "last"}
            })
        );
    }

    #[test]
    fn keeps_commas_inside_urls_and_keys_links_without_rel_by_url() {
        let links = parse_links("<https://h/x?ids=1,2>; title=a,<https://h/y>");
        assert_eq!(
            Value::Object(links),
            json!({
                "https://h/x?ids=1,2": {"url": "https://h/x?ids=1,2", "title": "a"},
                "https://h/y": {"url": "https://h/y"}
            })
        );
    }

    #[test]
    fn stops_at_a_malformed_parameter() {
        let links = parse_links(r#"<https://h/p2>; rel=next; bogus; type="x""#);
        assert_eq!(
            Value::Object(links),
            json!({"next": {"url": "https://h/p2", "rel": "next"}})
        );
        assert!(parse_links("  ").is_empty());
    }

    #[test]
    fn headers_object_joins_repeats_and_adds_parsed_links() {
        let object = headers_object(&pairs(&[
            ("Link", "<https://h/p2>; rel=\"next\""),
            ("X-Total", "5"),
            ("x-total", "6"),
        ]));
        assert_eq!(
            object,
            json!({
                "Link": "<https://h/p2>; rel=\"next\"",
                "X-Total": "5, 6",
                "link": {"next": {"url": "https://h/p2", "rel": "next"}}
            })
        );
    }

    #[test]
    fn lowercase_link_header_is_replaced_and_missing_link_is_empty() {
        let object = headers_object(&pairs(&[("link", "<https://h/p2>; rel=next")]));
        assert_eq!(
            object,
            json!({"link": {"next": {"url": "https://h/p2", "rel": "next"}}})
        );
        assert_eq!(headers_object(&[]), json!({"link": {}}));
    }
}
