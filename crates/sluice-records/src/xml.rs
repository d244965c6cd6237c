//! XML to JSON with the conventions of Python's `xmltodict.parse` (the reference's XmlDecoder):
//! attributes become `@name` keys, text becomes the element's value or, next to attributes or
//! children, a `#text` key; repeated child elements become a list; an empty element is `null`;
//! whitespace around text is stripped; namespace prefixes are kept in names; comments and
//! processing instructions are ignored.

use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// One open element: its content so far (attributes and children) and its text.
struct Open {
    name: String,
    item: Option<Map<String, Value>>,
    text: String,
}

/// Converts an XML document; an error describes why it is not well-formed.
pub(crate) fn xml_to_value(text: &str) -> Result<Value, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Map<String, Value>> = None;
    let mut finished = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("{e} at byte {}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => {
                if finished {
                    return Err("junk after document element".to_string());
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                if finished {
                    return Err("junk after document element".to_string());
                }
                let element = open(&start)?;
                finished = close(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("unexpected end tag")?;
                finished = close(element, &mut stack, &mut root);
            }
            Event::Text(content) => {
                let raw = std::str::from_utf8(content.as_ref()).map_err(|e| e.to_string())?;
                let unescaped = quick_xml::escape::unescape(raw).map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(element) => push_text(&mut element.text, &unescaped),
                    None if unescaped.trim().is_empty() => {}
                    None => return Err("text outside the document element".to_string()),
                }
            }
            Event::CData(content) => {
                let raw = std::str::from_utf8(content.as_ref()).map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(element) => push_text(&mut element.text, raw),
                    None => return Err("CDATA outside the document element".to_string()),
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element at the end of the document".to_string());
    }
    match root {
        Some(map) => Ok(Value::Object(map)),
        None => Err("no element found".to_string()),
    }
}

/// Character data with expat's line-end normalisation (`\r\n` and `\r` read as `\n`).
fn push_text(text: &mut String, piece: &str) {
    if piece.contains('\r') {
        text.push_str(&piece.replace("\r\n", "\n").replace('\r', "\n"));
    } else {
        text.push_str(piece);
    }
}

fn open(start: &BytesStart<'_>) -> Result<Open, String> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|e| e.to_string())?
        .to_string();
    let mut item: Option<Map<String, Value>> = None;
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = std::str::from_utf8(attribute.key.as_ref()).map_err(|e| e.to_string())?;
        let raw = std::str::from_utf8(&attribute.value).map_err(|e| e.to_string())?;
        // XML attribute-value normalisation: each literal whitespace character reads as a space.
        let normalized = raw.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ");
        let value = quick_xml::escape::unescape(&normalized).map_err(|e| e.to_string())?;
        item.get_or_insert_with(Map::new)
            .insert(format!("@{key}"), Value::String(value.into_owned()));
    }
    Ok(Open {
        name,
        item,
        text: String::new(),
    })
}

/// Closes an element into its parent (or the document). Returns whether it was the root.
fn close(element: Open, stack: &mut [Open], root: &mut Option<Map<String, Value>>) -> bool {
    let text = element.text.trim();
    let text = (!text.is_empty()).then(|| text.to_string());
    let value = match element.item {
        Some(mut item) => {
            if let Some(text) = text {
                push_data(&mut item, "#text".to_string(), Value::String(text));
            }
            Value::Object(item)
        }
        None => text.map_or(Value::Null, Value::String),
    };
    match stack.last_mut() {
        Some(parent) => {
            push_data(
                parent.item.get_or_insert_with(Map::new),
                element.name,
                value,
            );
            false
        }
        None => {
            let mut document = Map::new();
            document.insert(element.name, value);
            *root = Some(document);
            true
        }
    }
}

/// Adds a value under a key, turning repeated keys into a list.
fn push_data(item: &mut Map<String, Value>, key: String, value: Value) {
    match item.get_mut(&key) {
        Some(Value::Array(list)) => list.push(value),
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            item.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_xmltodict() {
        let xml = r#"<?xml version="1.0"?>
            <root>
              <location id="123">
                San Francisco
              </location>
              <item id="1" category="books"><name>Book &amp; Title</name><price>10.99</price></item>
              <item id="2"><name><![CDATA[<Gadget>]]></name><empty/></item>
              <!-- a comment -->
            </root>"#;
        assert_eq!(
            xml_to_value(xml).unwrap(),
            json!({"root": {
                "location": {"@id": "123", "#text": "San Francisco"},
                "item": [
                    {"@id": "1", "@category": "books", "name": "Book & Title", "price": "10.99"},
                    {"@id": "2", "name": "<Gadget>", "empty": null}
                ]
            }})
        );
    }

    #[test]
    fn mixed_content_and_namespaces() {
        assert_eq!(
            xml_to_value(r#"<a xmlns:x="urn:x">one<x:b>2</x:b>three</a>"#).unwrap(),
            json!({"a": {"@xmlns:x": "urn:x", "x:b": "2", "#text": "onethree"}})
        );
        assert_eq!(xml_to_value("<a/>").unwrap(), json!({"a": null}));
    }

    #[test]
    fn rejects_what_expat_rejects() {
        assert!(xml_to_value("").is_err());
        assert!(xml_to_value("<a></b>").is_err());
        assert!(xml_to_value("<a/><b/>").is_err());
        assert!(xml_to_value("<a>&nope;</a>").is_err());
        assert!(xml_to_value("not xml").is_err());
    }
}
