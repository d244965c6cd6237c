//! Turning schema titles and descriptions into rustdoc text.

use super::ir::Doc;

/// The doc comment lines (without `///`) for an item or field.
pub fn doc_lines(doc: &Doc, extra: &[String]) -> Vec<String> {
    let mut paragraphs: Vec<String> = Vec::new();
    if let Some(title) = &doc.title {
        paragraphs.push(rustdoc_text(title));
    }
    if let Some(description) = &doc.description
        && doc.title.as_deref() != Some(description.as_str())
    {
        paragraphs.push(rustdoc_text(description));
    }
    if let Some(default) = &doc.default {
        paragraphs.push(format!("Default: `{default}`"));
    }
    if let Some(deprecation) = &doc.deprecation {
        paragraphs.push(format!("Deprecated: {}", rustdoc_text(deprecation)));
    }
    paragraphs.extend(extra.iter().cloned());
    let mut lines = Vec::new();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        lines.extend(paragraph.lines().map(str::to_owned));
    }
    lines
}

/// Schema text made safe for rustdoc: no indented code blocks (they would become doctests),
/// fenced blocks marked as text, and brackets, angle brackets and bare URLs escaped outside
/// code spans so they are not read as links or HTML.
pub fn rustdoc_text(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("```") {
            out.push(if rest.trim().is_empty() {
                "```text".to_owned()
            } else {
                line.to_owned()
            });
            continue;
        }
        out.push(escape_line(line));
    }
    out.join("\n").trim().to_owned()
}

fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            in_code = !in_code;
        }
        if !in_code && (rest.starts_with("https://") || rest.starts_with("http://")) {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ')' || c == '"' || c == '\'' || c == '<')
                .unwrap_or(rest.len());
            let url = rest[..end].trim_end_matches(['.', ',']);
            out.push('<');
            out.push_str(url);
            out.push('>');
            rest = &rest[url.len()..];
            continue;
        }
        if !in_code && matches!(c, '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_links_and_html_outside_code() {
        assert_eq!(
            rustdoc_text("see [docs](https://x.io/a)."),
            "see \\[docs\\](<https://x.io/a>)."
        );
        assert_eq!(
            rustdoc_text("a <token> and `<b>`"),
            "a \\<token\\> and `<b>`"
        );
        assert_eq!(rustdoc_text("list:\n  * one\n    two"), "list:\n* one\ntwo");
    }
}
