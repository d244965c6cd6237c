//! PyYAML's `yaml.safe_load` of a short text, as the reference applies it to the values a
//! dynamic stream resolver maps into a stream template.
//!
//! Unlike the manifest reader ([`crate::yaml`]), this follows PyYAML's YAML 1.1 typing of a
//! plain scalar, because here it decides what a single rendered value becomes: `yes`/`no`/`on`/
//! `off` (any capitalisation PyYAML knows) are booleans, `~` and `null` are null, `0755` is an
//! octal integer, `1:30` a sexagesimal one (90), `1e3` stays a string while `1.0e+3` is a float,
//! and `a: b` is a mapping. Two things differ from PyYAML, where it builds Python objects JSON
//! cannot hold: a date or timestamp (`2024-01-01`) stays the string it was, and so do `.inf` and
//! `.nan`. Inside a flow or block collection the scalars are typed by `serde_norway`'s YAML 1.2
//! rules, as in the manifest.
//!
//! The error says which class of exception PyYAML raises, since the reference treats them
//! differently (a parser error keeps the text; a scanner error fails, save for a few).

use serde_json::{Number, Value};

/// Why `safe_load` refuses a text, by the exception PyYAML raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeLoadError {
    /// `yaml.parser.ParserError`: the text is not well-formed YAML.
    Parser(String),
    /// `yaml.scanner.ScannerError`: a character that cannot start a token (`@`, `` ` ``, a
    /// tab) or a malformed `%` directive. The message follows PyYAML's wording, which the
    /// reference inspects.
    Scanner(String),
    /// Any other error: an undefined alias, a tag no constructor knows.
    Other(String),
}

impl std::fmt::Display for SafeLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SafeLoadError::Parser(m) | SafeLoadError::Scanner(m) | SafeLoadError::Other(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for SafeLoadError {}

/// What `yaml.safe_load(text)` gives, as JSON.
///
/// ```
/// use serde_json::json;
/// use sluice_manifest::pyyaml::safe_load;
/// assert_eq!(safe_load("users").unwrap(), json!("users"));
/// assert_eq!(safe_load("yes").unwrap(), json!(true));
/// assert_eq!(safe_load("0755").unwrap(), json!(493));
/// assert_eq!(safe_load("a: b").unwrap(), json!({"a": "b"}));
/// assert_eq!(safe_load("").unwrap(), json!(null));
/// ```
pub fn safe_load(text: &str) -> Result<Value, SafeLoadError> {
    if let Some(plain) = single_plain_scalar(text) {
        return plain_scalar(plain);
    }
    structured(text)
}

/// The scalar when `text` is one plain (unquoted) scalar on one line, trimmed as PyYAML trims it.
fn single_plain_scalar(text: &str) -> Option<&str> {
    if text.contains(['\n', '\r', '\t']) {
        return None;
    }
    let trimmed = text.trim_matches(' ');
    let mut chars = trimmed.chars();
    let Some(first) = chars.next() else {
        return Some(trimmed);
    };
    if "[]{},#&*!|>'\"%@`".contains(first) {
        return None;
    }
    // `-`, `?` and `:` start a plain scalar only when a non-space follows.
    if "-?:".contains(first) && chars.next().is_none_or(|c| c == ' ') {
        return None;
    }
    if trimmed.contains(": ") || trimmed.contains(" #") || trimmed.ends_with(':') {
        return None;
    }
    for marker in ["---", "..."] {
        if let Some(rest) = trimmed.strip_prefix(marker) {
            if rest.is_empty() || rest.starts_with(' ') {
                return None;
            }
        }
    }
    Some(trimmed)
}

/// A plain scalar typed by PyYAML's implicit resolvers.
fn plain_scalar(text: &str) -> Result<Value, SafeLoadError> {
    const TRUE: &[&str] = &[
        "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
    ];
    const FALSE: &[&str] = &[
        "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
    ];
    if TRUE.contains(&text) {
        return Ok(Value::Bool(true));
    }
    if FALSE.contains(&text) {
        return Ok(Value::Bool(false));
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if text == "<<" || text == "=" {
        let tag = if text == "<<" { "merge" } else { "value" };
        return Err(SafeLoadError::Other(format!(
            "could not determine a constructor for the tag 'tag:yaml.org,2002:{tag}'"
        )));
    }
    if is_int(text) {
        if let Some(value) = int_value(text) {
            return Ok(value);
        }
    } else if is_float(text) {
        if let Some(value) = float_value(text) {
            return Ok(value);
        }
    }
    Ok(Value::String(text.to_owned()))
}

fn strip_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn all_of(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(allowed)
}

fn is_digit_or_underscore(c: char) -> bool {
    c.is_ascii_digit() || c == '_'
}

/// `[0-5]?[0-9]`: one sexagesimal part after a colon.
fn is_sexagesimal_part(part: &str) -> bool {
    match part.as_bytes() {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    }
}

/// `[1-9][0-9_]*` followed by one or more `:[0-5]?[0-9]`.
fn is_sexagesimal(body: &str) -> bool {
    let mut parts = body.split(':');
    let head = parts.next().unwrap_or_default();
    let mut rest = parts.peekable();
    rest.peek().is_some()
        && head.starts_with(|c: char| ('1'..='9').contains(&c))
        && all_of(head, is_digit_or_underscore)
        && rest.all(is_sexagesimal_part)
}

/// PyYAML's int resolver.
fn is_int(text: &str) -> bool {
    let (_, body) = strip_sign(text);
    if let Some(rest) = body.strip_prefix("0b") {
        return all_of(rest, |c| c == '0' || c == '1' || c == '_');
    }
    if let Some(rest) = body.strip_prefix("0x") {
        return all_of(rest, |c| c.is_ascii_hexdigit() || c == '_');
    }
    if body == "0" {
        return true;
    }
    if let Some(rest) = body.strip_prefix('0') {
        return all_of(rest, |c| ('0'..='7').contains(&c) || c == '_');
    }
    if !body.starts_with(|c: char| ('1'..='9').contains(&c)) {
        return false;
    }
    if body.contains(':') {
        is_sexagesimal(body)
    } else {
        all_of(body, is_digit_or_underscore)
    }
}

/// PyYAML's int constructor; `None` past 64 bits (or for digits it cannot read).
fn int_value(text: &str) -> Option<Value> {
    let cleaned = text.replace('_', "");
    let (negative, body) = strip_sign(&cleaned);
    let magnitude: i128 = if body == "0" {
        0
    } else if let Some(rest) = body.strip_prefix("0b") {
        i128::from_str_radix(rest, 2).ok()?
    } else if let Some(rest) = body.strip_prefix("0x") {
        i128::from_str_radix(rest, 16).ok()?
    } else if body.starts_with('0') {
        i128::from_str_radix(body, 8).ok()?
    } else if body.contains(':') {
        let mut value: i128 = 0;
        for part in body.split(':') {
            value = value.checked_mul(60)?.checked_add(part.parse().ok()?)?;
        }
        value
    } else {
        body.parse().ok()?
    };
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value)
        .map(Value::from)
        .or_else(|_| u64::try_from(value).map(Value::from))
        .ok()
}

/// `[eE][-+][0-9]+`, or nothing.
fn is_optional_exponent(text: &str) -> bool {
    if text.is_empty() {
        return true;
    }
    let Some(rest) = text.strip_prefix(['e', 'E']) else {
        return false;
    };
    let Some(digits) = rest.strip_prefix(['-', '+']) else {
        return false;
    };
    all_of(digits, |c| c.is_ascii_digit())
}

/// PyYAML's float resolver.
fn is_float(text: &str) -> bool {
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    if let Some(rest) = text.strip_prefix('.') {
        // `\.[0-9][0-9_]*` then an optional exponent (no sign allowed before the dot).
        let end = rest
            .find(|c: char| !is_digit_or_underscore(c))
            .unwrap_or(rest.len());
        return rest.starts_with(|c: char| c.is_ascii_digit())
            && is_optional_exponent(&rest[end..]);
    }
    let (_, body) = strip_sign(text);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    let Some((whole, fraction)) = body.split_once('.') else {
        return false;
    };
    if !whole.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let whole_ok = if whole.contains(':') {
        // Sexagesimal: `[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`, no exponent.
        let mut parts = whole.split(':');
        let head = parts.next().unwrap_or_default();
        let ok = all_of(head, is_digit_or_underscore) && parts.all(is_sexagesimal_part);
        return ok && fraction.chars().all(is_digit_or_underscore);
    } else {
        all_of(whole, is_digit_or_underscore)
    };
    let digits_end = fraction
        .find(|c: char| !is_digit_or_underscore(c))
        .unwrap_or(fraction.len());
    whole_ok && is_optional_exponent(&fraction[digits_end..])
}

/// PyYAML's float constructor; infinities and NaN stay text (JSON has no such numbers).
fn float_value(text: &str) -> Option<Value> {
    let cleaned = text.replace('_', "").to_lowercase();
    let (negative, body) = strip_sign(&cleaned);
    if body == ".inf" || body == ".nan" {
        return None;
    }
    let magnitude = if body.contains(':') {
        let mut value = 0.0_f64;
        for part in body.split(':') {
            value = value * 60.0 + part.parse::<f64>().ok()?;
        }
        value
    } else {
        body.parse::<f64>().ok()?
    };
    let value = if negative { -magnitude } else { magnitude };
    Number::from_f64(value).map(Value::Number)
}

/// Anything but one plain scalar: what PyYAML refuses, else the tree `serde_norway` reads.
fn structured(text: &str) -> Result<Value, SafeLoadError> {
    let trimmed = text.trim_start_matches([' ', '\n', '\r']);
    if let Some(directive) = text.strip_prefix('%') {
        return Err(directive_error(directive));
    }
    if starts_quoted(trimmed) {
        // A tab inside quotes is text.
    } else if text.contains('\t') {
        return Err(SafeLoadError::Scanner(
            "while scanning for the next token\nfound character '\\t' that cannot start any token"
                .to_owned(),
        ));
    }
    if let Some(c) = token_starts(trimmed).find(|c| *c == '@' || *c == '`') {
        return Err(SafeLoadError::Scanner(format!(
            "while scanning for the next token\nfound character '{c}' that cannot start any token"
        )));
    }
    if let Some(alias) = trimmed.strip_prefix('*') {
        return Err(SafeLoadError::Other(format!(
            "found undefined alias '{}'",
            alias.split([' ', ',', ']', '}']).next().unwrap_or_default()
        )));
    }
    if trimmed.starts_with('!') {
        return Err(SafeLoadError::Other(format!(
            "could not determine a constructor for the tag '{}'",
            trimmed.split(' ').next().unwrap_or_default()
        )));
    }
    crate::yaml::parse_any(text).map_err(SafeLoadError::Parser)
}

fn starts_quoted(text: &str) -> bool {
    text.starts_with(['"', '\''])
}

/// The first character of each token PyYAML's scanner would start where `@` or `` ` `` could
/// stand: the text's start, and after `: `, `- `, `[`, `{` and `, `.
fn token_starts(text: &str) -> impl Iterator<Item = char> + '_ {
    let first = text.chars().next();
    let after = ["- ", ": ", "[", "{", ", "]
        .into_iter()
        .flat_map(move |marker| {
            text.match_indices(marker).filter_map(move |(i, m)| {
                text[i + m.len()..].trim_start_matches(' ').chars().next()
            })
        });
    first.into_iter().chain(after)
}

/// A `%` directive at the start of the text: a malformed name is a scanner error (PyYAML's
/// wording), a well-formed one leaves a document without its `---`, a parser error.
fn directive_error(directive: &str) -> SafeLoadError {
    let name_end = directive
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(directive.len());
    let next = directive[name_end..].chars().next();
    match next {
        _ if name_end == 0 => SafeLoadError::Scanner(format!(
            "while scanning a directive\nexpected alphabetic or numeric character, but found {}",
            found(next)
        )),
        Some(c) if c != ' ' && c != '\n' => SafeLoadError::Scanner(format!(
            "while scanning a directive\nexpected alphabetic or numeric character, but found {}",
            found(next)
        )),
        _ => SafeLoadError::Parser("expected '<document start>', but found '<stream end>'".into()),
    }
}

fn found(c: Option<char>) -> String {
    match c {
        Some(c) => format!("'{c}'"),
        None => "'\\x00'".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_scalars_follow_yaml_1_1() {
        let cases = [
            ("users", json!("users")),
            ("  My Table  ", json!("My Table")),
            ("yes", json!(true)),
            ("No", json!(false)),
            ("on", json!(true)),
            ("TRUE", json!(true)),
            ("tRue", json!("tRue")),
            ("y", json!("y")),
            ("null", json!(null)),
            ("~", json!(null)),
            ("", json!(null)),
            ("0", json!(0)),
            ("00", json!(0)),
            ("-0", json!(0)),
            ("+1", json!(1)),
            ("1_000", json!(1000)),
            ("1__0", json!(10)),
            ("_1", json!("_1")),
            ("0755", json!(493)),
            ("08", json!("08")),
            ("0x1F", json!(31)),
            ("0b101", json!(5)),
            ("0o17", json!("0o17")),
            ("1:30", json!(90)),
            ("-1:30", json!(-90)),
            ("1:61", json!("1:61")),
            ("1e3", json!("1e3")),
            ("1.5e3", json!("1.5e3")),
            ("1.0e+3", json!(1000.0)),
            ("1.", json!(1.0)),
            (".5", json!(0.5)),
            ("190:20:30.15", json!(685230.15)),
            (".inf", json!(".inf")),
            ("2024-01-01", json!("2024-01-01")),
            ("a:b", json!("a:b")),
            ("abc#c", json!("abc#c")),
            ("a, b", json!("a, b")),
            ("x ]", json!("x ]")),
            ("100%", json!("100%")),
            ("abc @x", json!("abc @x")),
        ];
        for (text, expected) in cases {
            assert_eq!(safe_load(text).unwrap(), expected, "{text:?}");
        }
    }

    #[test]
    fn structures_and_comments() {
        assert_eq!(safe_load("a: b").unwrap(), json!({"a": "b"}));
        assert_eq!(safe_load("[a, b]").unwrap(), json!(["a", "b"]));
        assert_eq!(safe_load("{a: 1}").unwrap(), json!({"a": 1}));
        assert_eq!(safe_load("- a").unwrap(), json!(["a"]));
        assert_eq!(safe_load("abc #c").unwrap(), json!("abc"));
        assert_eq!(safe_load("#c").unwrap(), json!(null));
        assert_eq!(safe_load("'q'").unwrap(), json!("q"));
        assert_eq!(safe_load("\"a\tb\"").unwrap(), json!("a\tb"));
        assert_eq!(safe_load("a\nb").unwrap(), json!("a b"));
    }

    #[test]
    fn errors_by_exception_class() {
        let scanner = |text: &str| match safe_load(text) {
            Err(SafeLoadError::Scanner(message)) => message,
            other => panic!("{text:?}: {other:?}"),
        };
        assert!(
            scanner("%Y-%m-%d").contains("expected alphabetic or numeric character, but found '%'")
        );
        assert!(scanner("%").contains("but found '\\x00'"));
        assert!(scanner("x\ty").contains("found character '\\t' that cannot start any token"));
        assert!(scanner("@x").contains("found character '@'"));
        assert!(scanner("a: @b").contains("found character '@'"));
        assert!(scanner("x: `y").contains("found character '`'"));
        assert!(matches!(safe_load("%abc"), Err(SafeLoadError::Parser(_))));
        assert!(matches!(safe_load("x: [1"), Err(SafeLoadError::Parser(_))));
        assert!(matches!(safe_load("*x"), Err(SafeLoadError::Other(_))));
        assert!(matches!(safe_load("!x y"), Err(SafeLoadError::Other(_))));
        assert!(matches!(safe_load("<<"), Err(SafeLoadError::Other(_))));
    }
}
