//! Python `ast.literal_eval` for rendered template text.
//!
//! The reference renders every template to a string and then literal-evaluates it: `"5"` becomes
//! the integer 5, `"['a']"` a list, `"True"` a boolean, while `"007"`, `"true"` or `"a, b"` stay
//! strings because Python refuses them. This module reproduces that grammar (numbers with `_`,
//! hex/octal/binary, string prefixes and escapes, implicit concatenation, tuples without
//! parentheses, sets, comments) and converts the result to JSON.

use serde_json::{Map, Number, Value};

use crate::pyrepr::float_repr;

/// The Python type of a literal, used for the reference's `valid_types` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiteralType {
    /// `str`
    String,
    /// `int` (which in Python also accepts `bool`)
    Integer,
    /// `float` (which does *not* accept `int`: `"5"` with `valid_types=(float,)` stays `"5"`)
    Float,
    /// `bool`
    Boolean,
    /// `list` (not tuples)
    List,
}

/// A parsed Python literal.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Lit>),
    Tuple(Vec<Lit>),
    Set(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn matches(&self, wanted: LiteralType) -> bool {
        matches!(
            (self, wanted),
            (Lit::Str(_), LiteralType::String)
                | (Lit::Int(_) | Lit::Bool(_), LiteralType::Integer)
                | (Lit::Float(_), LiteralType::Float)
                | (Lit::Bool(_), LiteralType::Boolean)
                | (Lit::List(_), LiteralType::List)
        )
    }

    fn into_json(self) -> Option<Value> {
        Some(match self {
            Lit::None => Value::Null,
            Lit::Bool(b) => Value::Bool(b),
            Lit::Int(i) => int_to_json(i)?,
            Lit::Float(f) => Value::Number(Number::from_f64(f)?),
            Lit::Str(s) => Value::String(s),
            Lit::List(items) | Lit::Tuple(items) | Lit::Set(items) => Value::Array(
                items
                    .into_iter()
                    .map(Lit::into_json)
                    .collect::<Option<_>>()?,
            ),
            Lit::Dict(pairs) => {
                let mut map = Map::with_capacity(pairs.len());
                for (key, value) in pairs {
                    map.insert(key.into_json_key()?, value.into_json()?);
                }
                Value::Object(map)
            }
        })
    }

    /// `json.dumps` turns non-string keys into text this way.
    fn into_json_key(self) -> Option<String> {
        Some(match self {
            Lit::Str(s) => s,
            Lit::Int(i) => i.to_string(),
            Lit::Float(f) => float_repr(f),
            Lit::Bool(b) => b.to_string(),
            Lit::None => "null".to_string(),
            _ => return None,
        })
    }
}

fn int_to_json(i: i128) -> Option<Value> {
    if let Ok(v) = i64::try_from(i) {
        Some(Value::from(v))
    } else {
        u64::try_from(i).ok().map(Value::from)
    }
}

/// Literal-evaluates `text`. `None` means Python would not return a value of an accepted type,
/// in which case the reference keeps the text as it is.
pub fn literal_eval(text: &str, valid_types: &[LiteralType]) -> Option<Value> {
    let lit = parse(text)?;
    if !valid_types.is_empty() && !valid_types.iter().any(|t| lit.matches(*t)) {
        return None;
    }
    lit.into_json()
}

fn parse(text: &str) -> Option<Lit> {
    let text = text.trim_start_matches([' ', '\t']);
    // What conditions render to, decided without tokenizing.
    match text {
        "True" => return Some(Lit::Bool(true)),
        "False" => return Some(Lit::Bool(false)),
        "None" => return Some(Lit::None),
        _ => {}
    }
    if starts_with_plain_name(text) {
        return None;
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, pos: 0 };
    let value = parser.top_level()?;
    (parser.pos == parser.tokens.len()).then_some(value)
}

/// Whether `text` starts with a name other than `True`, `False`, `None` and `set` (`set()`) and has no quote (so
/// no string prefix like `b'..'`): such text is never a literal, and most rendered text (`FR-7`,
/// `active`) is of that kind, so it is rejected without tokenizing.
///
/// Byte loops: an `AddFields` value is evaluated for every record, and searching by `char` cost
/// four times as much (callgrind on `cargo xtask bench` scenario (b)).
fn starts_with_plain_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let name_end = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(bytes.len());
    let name = &bytes[..name_end];
    name.first()
        .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_')
        && !matches!(name, b"True" | b"False" | b"None" | b"set")
        && !bytes.iter().any(|&b| b == b'\'' || b == b'"')
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Str(String),
    /// A bytes or f-string literal: valid syntax, never a value `literal_eval` returns.
    Unsupported,
    Name(String),
    Punct(char),
}

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    // Python's tokenizer: at the start of a logical line outside brackets, indentation is an error
    // and blank or comment-only lines are skipped. The first line was already left-stripped.
    let mut at_line_start = true;
    let mut logical_line_done = false;
    while i < chars.len() {
        let c = chars[i];
        if at_line_start && depth == 0 {
            let mut j = i;
            while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
                j += 1;
            }
            let blank = j == chars.len() || matches!(chars[j], '\n' | '\r' | '#');
            if !blank {
                if j != i || logical_line_done {
                    return None;
                }
                at_line_start = false;
            }
            if blank {
                i = j;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                i += 1;
                continue;
            }
        }
        match c {
            ' ' | '\t' | '\x0c' | '\r' => i += 1,
            '\n' => {
                i += 1;
                if depth == 0 {
                    at_line_start = true;
                    logical_line_done = !tokens.is_empty();
                }
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '(' | '[' | '{' => {
                depth += 1;
                tokens.push(Tok::Punct(c));
                i += 1;
            }
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                tokens.push(Tok::Punct(c));
                i += 1;
            }
            ',' | ':' | '+' | '-' => {
                tokens.push(Tok::Punct(c));
                i += 1;
            }
            '0'..='9' => i = number(&chars, i, &mut tokens)?,
            '.' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                i = number(&chars, i, &mut tokens)?
            }
            '\'' | '"' => i = string(&chars, i, "", &mut tokens)?,
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let is_prefix = word.len() <= 2
                    && word
                        .chars()
                        .all(|p| matches!(p.to_ascii_lowercase(), 'r' | 'u' | 'b' | 'f'));
                if is_prefix && matches!(chars.get(i), Some('\'' | '"')) {
                    i = string(&chars, i, &word.to_ascii_lowercase(), &mut tokens)?;
                } else {
                    tokens.push(Tok::Name(word));
                }
            }
            // Any other operator is valid Python that is not a literal, or invalid syntax: either
            // way the text stays as it is.
            _ => return None,
        }
    }
    if depth != 0 {
        return None;
    }
    Some(tokens)
}

fn number(chars: &[char], start: usize, tokens: &mut Vec<Tok>) -> Option<usize> {
    let mut i = start;
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    while i < chars.len() && is_word(chars[i]) {
        // An exponent sign belongs to the number.
        if matches!(chars[i], 'e' | 'E')
            && !chars[start..i]
                .iter()
                .any(|c| matches!(c, 'x' | 'X' | 'b' | 'B' | 'o' | 'O'))
            && matches!(chars.get(i + 1), Some('+' | '-'))
        {
            i += 2;
            continue;
        }
        i += 1;
    }
    let raw: String = chars[start..i].iter().collect();
    tokens.push(parse_number(&raw)?);
    Some(i)
}

fn strip_underscores(digits: &str, radix_ok: impl Fn(char) -> bool) -> Option<String> {
    // Underscores only between digits, never doubled, leading or trailing.
    let mut out = String::with_capacity(digits.len());
    let mut prev_underscore = true;
    for c in digits.chars() {
        if c == '_' {
            if prev_underscore {
                return None;
            }
            prev_underscore = true;
        } else if radix_ok(c) {
            out.push(c);
            prev_underscore = false;
        } else {
            return None;
        }
    }
    (!prev_underscore).then_some(out)
}

fn parse_number(raw: &str) -> Option<Tok> {
    let lower = raw.to_ascii_lowercase();
    if lower.ends_with('j') {
        // Complex numbers are never kept by the reference.
        return Some(Tok::Unsupported);
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = rest.strip_prefix('_').unwrap_or(rest);
            let digits = strip_underscores(rest, |c| c.is_digit(radix))?;
            return i128::from_str_radix(&digits, radix).ok().map(Tok::Int);
        }
    }
    let is_float = lower.contains(['.', 'e']);
    if !is_float {
        let digits = strip_underscores(&lower, |c| c.is_ascii_digit())?;
        if digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|b| b != b'0') {
            // "leading zeros in decimal integer literals are not permitted"
            return None;
        }
        return digits.parse().ok().map(Tok::Int);
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut text = String::new();
    if !whole.is_empty() {
        text.push_str(&strip_underscores(whole, |c| c.is_ascii_digit())?);
    }
    text.push('.');
    if !fraction.is_empty() {
        text.push_str(&strip_underscores(fraction, |c| c.is_ascii_digit())?);
    }
    if text == "." {
        return None;
    }
    if let Some(exponent) = exponent {
        let (sign, digits) = match exponent.as_bytes().first() {
            Some(b'+') | Some(b'-') => (&exponent[..1], &exponent[1..]),
            _ => ("", exponent),
        };
        text.push('e');
        text.push_str(sign);
        text.push_str(&strip_underscores(digits, |c| c.is_ascii_digit())?);
    }
    let value: f64 = format!("0{text}").replace("0.e", "0.0e").parse().ok()?;
    // Python gives `inf` here, which has no JSON form: keep the text.
    value.is_finite().then_some(Tok::Float(value))
}

fn string(chars: &[char], start: usize, prefix: &str, tokens: &mut Vec<Tok>) -> Option<usize> {
    let quote = chars[start];
    let triple = chars.get(start + 1) == Some(&quote) && chars.get(start + 2) == Some(&quote);
    let raw = prefix.contains('r');
    let mut i = start + if triple { 3 } else { 1 };
    let mut out = String::new();
    loop {
        let c = *chars.get(i)?;
        if c == quote {
            if !triple {
                i += 1;
                break;
            }
            if chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote) {
                i += 3;
                break;
            }
        }
        if c == '\n' && !triple {
            return None;
        }
        if c == '\\' {
            let next = *chars.get(i + 1)?;
            if raw {
                out.push('\\');
                out.push(next);
                i += 2;
                continue;
            }
            i += 2;
            match next {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut value = next.to_digit(8)?;
                    for _ in 0..2 {
                        match chars.get(i).and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                i += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(value)?);
                }
                'x' | 'u' | 'U' => {
                    let len = match next {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.get(i..i + len)?.iter().collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i += len;
                }
                // `\N{name}` needs the Unicode name table; treat it as not a literal.
                'N' => return None,
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    if prefix.contains('b') || prefix.contains('f') {
        tokens.push(Tok::Unsupported);
    } else {
        tokens.push(Tok::Str(out));
    }
    Some(i)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn at_closer(&self) -> bool {
        matches!(self.peek(), None | Some(Tok::Punct(')' | ']' | '}')))
    }

    /// `a, b` at the top level is a tuple, as in Python.
    fn top_level(&mut self) -> Option<Lit> {
        let first = self.value()?;
        if !self.eat(',') {
            return Some(first);
        }
        let mut items = vec![first];
        while !self.at_closer() {
            items.push(self.value()?);
            if !self.eat(',') {
                break;
            }
        }
        Some(Lit::Tuple(items))
    }

    /// Items up to `close`, allowing a trailing comma.
    fn items(&mut self, close: char) -> Option<(Vec<Lit>, bool)> {
        let mut items = Vec::new();
        let mut saw_comma = false;
        while !self.eat(close) {
            items.push(self.value()?);
            if self.eat(',') {
                saw_comma = true;
            } else if !self.eat(close) {
                return None;
            } else {
                break;
            }
        }
        Some((items, saw_comma))
    }

    fn value(&mut self) -> Option<Lit> {
        let tok = self.peek()?.clone();
        self.pos += 1;
        match tok {
            Tok::Punct(sign @ ('+' | '-')) => {
                // Only a sign directly on a number literal (parentheses allowed, not `--5`).
                let mut depth = 0;
                while self.eat('(') {
                    depth += 1;
                }
                let number = match self.peek()? {
                    Tok::Int(i) => Lit::Int(if sign == '-' { -i } else { *i }),
                    Tok::Float(f) => Lit::Float(if sign == '-' { -f } else { *f }),
                    _ => return None,
                };
                self.pos += 1;
                for _ in 0..depth {
                    if !self.eat(')') {
                        return None;
                    }
                }
                self.reject_binary_op()?;
                Some(number)
            }
            Tok::Int(i) => {
                self.reject_binary_op()?;
                Some(Lit::Int(i))
            }
            Tok::Float(f) => {
                self.reject_binary_op()?;
                Some(Lit::Float(f))
            }
            Tok::Str(first) => {
                let mut text = first;
                while let Some(Tok::Str(next)) = self.peek() {
                    text.push_str(next);
                    self.pos += 1;
                }
                if matches!(self.peek(), Some(Tok::Unsupported)) {
                    return None;
                }
                Some(Lit::Str(text))
            }
            Tok::Unsupported => None,
            Tok::Name(name) => match name.as_str() {
                "None" => Some(Lit::None),
                "True" => Some(Lit::Bool(true)),
                "False" => Some(Lit::Bool(false)),
                "set" if self.eat('(') && self.eat(')') => Some(Lit::Set(Vec::new())),
                _ => None,
            },
            Tok::Punct('[') => Some(Lit::List(self.items(']')?.0)),
            Tok::Punct('(') => {
                let (items, saw_comma) = self.items(')')?;
                if items.len() == 1 && !saw_comma {
                    items.into_iter().next()
                } else {
                    Some(Lit::Tuple(items))
                }
            }
            Tok::Punct('{') => self.braces(),
            Tok::Punct(_) => None,
        }
    }

    /// `1 + 2` is not a literal (only complex sums are, which the reference drops anyway).
    fn reject_binary_op(&self) -> Option<()> {
        match self.peek() {
            Some(Tok::Punct('+' | '-')) => None,
            _ => Some(()),
        }
    }

    fn braces(&mut self) -> Option<Lit> {
        if self.eat('}') {
            return Some(Lit::Dict(Vec::new()));
        }
        let first = self.value()?;
        if self.eat(':') {
            let mut pairs = vec![(first, self.value()?)];
            loop {
                if self.eat('}') {
                    break;
                }
                if !self.eat(',') {
                    return None;
                }
                if self.eat('}') {
                    break;
                }
                let key = self.value()?;
                if !self.eat(':') {
                    return None;
                }
                pairs.push((key, self.value()?));
            }
            // Later duplicates win, and unhashable keys are a TypeError in Python.
            let mut unique: Vec<(Lit, Lit)> = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                if matches!(key, Lit::List(_) | Lit::Dict(_) | Lit::Set(_)) {
                    return None;
                }
                match unique.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => unique.push((key, value)),
                }
            }
            return Some(Lit::Dict(unique));
        }
        let mut items = vec![first];
        if self.eat(',') {
            let (rest, _) = self.items('}')?;
            items.extend(rest);
        } else if !self.eat('}') {
            return None;
        }
        if items
            .iter()
            .any(|k| matches!(k, Lit::List(_) | Lit::Dict(_) | Lit::Set(_)))
        {
            return None;
        }
        let mut unique: Vec<Lit> = Vec::with_capacity(items.len());
        for item in items {
            if !unique.contains(&item) {
                unique.push(item);
            }
        }
        Some(Lit::Set(unique))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(text: &str) -> Option<Value> {
        literal_eval(text, &[])
    }

    /// Expected values come from `ast.literal_eval` in CPython 3.11 (`None` = the text is kept).
    #[test]
    fn matches_python_literal_eval() {
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("5", Some(json!(5))),
            ("5.0", Some(json!(5.0))),
            ("-5", Some(json!(-5))),
            ("+5", Some(json!(5))),
            ("- 5", Some(json!(-5))),
            ("-(5)", Some(json!(-5))),
            ("--5", None),
            ("-True", None),
            ("\n5", Some(json!(5))),
            ("5\n", Some(json!(5))),
            (" 5", Some(json!(5))),
            ("\t5", Some(json!(5))),
            ("\n 5", None),
            ("5\n6", None),
            ("5 # comment", Some(json!(5))),
            ("1_000", Some(json!(1000))),
            ("1__000", None),
            ("00", Some(json!(0))),
            ("0_0", Some(json!(0))),
            ("007", None),
            ("01", None),
            ("1e400", None),
            (".5", Some(json!(0.5))),
            ("5.", Some(json!(5.0))),
            ("1E5", Some(json!(100000.0))),
            ("1e-5", Some(json!(0.00001))),
            ("0x1F", Some(json!(31))),
            ("0o17", Some(json!(15))),
            ("0b101", Some(json!(5))),
            ("1j", None),
            ("1+2j", None),
            ("1+2", None),
            ("(1,)", Some(json!([1]))),
            ("()", Some(json!([]))),
            ("1,", Some(json!([1]))),
            ("1,2", Some(json!([1, 2]))),
            ("{}", Some(json!({}))),
            ("set()", Some(json!([]))),
            ("{1,2}", Some(json!([1, 2]))),
            ("'a' \"b\"", Some(json!("ab"))),
            ("r'\\d'", Some(json!("\\d"))),
            ("'\\d'", Some(json!("\\d"))),
            ("b'x'", None),
            ("f'x'", None),
            ("[1,]", Some(json!([1]))),
            ("{'a':1,}", Some(json!({"a": 1}))),
            ("'''x\ny'''", Some(json!("x\ny"))),
            ("'x\ny'", None),
            ("None", Some(json!(null))),
            ("True", Some(json!(true))),
            ("False", Some(json!(false))),
            ("true", None),
            ("null", None),
            ("1 if 1 else 2", None),
            (
                "[1, [2, {'a': (3, 4)}]]",
                Some(json!([1, [2, {"a": [3, 4]}]])),
            ),
            ("'\\x41\\u00e9'", Some(json!("Aé"))),
            ("'\\q'", Some(json!("\\q"))),
            ("'a\\\nb'", Some(json!("ab"))),
            ("'\\101'", Some(json!("A"))),
            (
                "{1: 'a', True: 2, None: 3}",
                Some(json!({"1": "a", "true": 2, "null": 3})),
            ),
            ("{'a': 1, 'a': 2}", Some(json!({"a": 2}))),
            ("{[1]: 2}", None),
            ("2020-01-01", None),
            ("hello world", None),
            ("FR-7", None),
            ("_x", None),
            ("  None", Some(json!(null))),
            ("set ()", Some(json!([]))),
            ("Truex", None),
            ("", None),
            ("   ", None),
            ("[", None),
            ("a, b", None),
            ("12345678901234567890", Some(json!(12345678901234567890u64))),
            ("123456789012345678901234567890", None),
        ];
        for (text, expected) in cases {
            assert_eq!(eval(text), expected, "literal_eval({text:?})");
        }
    }

    #[test]
    fn valid_types_follow_python_isinstance() {
        assert_eq!(literal_eval("5", &[LiteralType::String]), None);
        assert_eq!(
            literal_eval("'5'", &[LiteralType::String]),
            Some(json!("5"))
        );
        assert_eq!(
            literal_eval("True", &[LiteralType::Integer]),
            Some(json!(true))
        );
        assert_eq!(literal_eval("5", &[LiteralType::Float]), None);
        assert_eq!(literal_eval("5.5", &[LiteralType::Float]), Some(json!(5.5)));
        assert_eq!(
            literal_eval("['a']", &[LiteralType::String, LiteralType::List]),
            Some(json!(["a"]))
        );
        assert_eq!(literal_eval("('a',)", &[LiteralType::List]), None);
    }
}
