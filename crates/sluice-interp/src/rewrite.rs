//! Source rewrite that routes `+` and `-` through Python-aware functions.
//!
//! MiniJinja has no operator overloading for objects, but manifests write
//! `now_utc() - duration('P1D')`. Templates that can produce datetimes get every `a + b` / `a - b`
//! inside `{{ ... }}` rewritten to `__sluice_add(a, b)` / `__sluice_sub(a, b)`, which handle
//! datetimes and durations and defer to MiniJinja's own operators otherwise.

use std::sync::LazyLock;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::parse;
use minijinja::syntax::SyntaxConfig;
use regex::Regex;

pub const ADD_FUNCTION: &str = "__sluice_add";
pub const MUTABLE_LIST_FUNCTION: &str = "__sluice_list";
pub const SUB_FUNCTION: &str = "__sluice_sub";

/// Jinja2 idioms MiniJinja does not parse or run, rewritten to equivalents:
/// - `{% for x in xs: %}`: Jinja2 tolerates the Python-style colon.
/// - `{% set xs = [] %}` followed by `xs.append(...)`: MiniJinja lists are immutable, so an empty
///   list assigned by `set` becomes a list object that supports `append`/`extend`.
pub fn normalize_jinja2_idioms(source: &str) -> Option<String> {
    static FOR_COLON: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"(\{%-?\s*for\b[^%]*?):\s*(-?%\})").ok());
    static EMPTY_LIST_SET: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"(\{%-?\s*set\s+[A-Za-z_][A-Za-z0-9_]*\s*=\s*)\[\s*\](\s*-?%\})").ok()
    });
    if !source.contains("{%") {
        return None;
    }
    let mut text = source.to_string();
    if let Some(regex) = FOR_COLON.as_ref() {
        text = regex.replace_all(&text, "$1 $2").into_owned();
    }
    if source.contains(".append(") || source.contains(".extend(") {
        if let Some(regex) = EMPTY_LIST_SET.as_ref() {
            let replacement = format!("${{1}}{MUTABLE_LIST_FUNCTION}()${{2}}");
            text = regex.replace_all(&text, replacement.as_str()).into_owned();
        }
    }
    (text != source).then_some(text)
}

/// Names whose presence means a template may do datetime arithmetic.
const DATETIME_SOURCES: [&str; 5] = [
    "duration",
    "now_utc",
    "today_utc",
    "str_to_datetime",
    "today_with_timezone",
];

/// Returns the rewritten source, or `None` when nothing needs rewriting.
pub fn rewrite_datetime_arithmetic(source: &str) -> Option<String> {
    if !DATETIME_SOURCES.iter().any(|name| source.contains(name))
        || !(source.contains('+') || source.contains('-'))
    {
        return None;
    }
    let ast = parse(source, "<template>", SyntaxConfig::default()).ok()?;
    let Stmt::Template(template) = &ast else {
        return None;
    };
    let mut ops = Vec::new();
    for child in &template.children {
        collect_statement(source, child, &mut ops)?;
    }
    if ops.is_empty() {
        return None;
    }
    ops.sort_by_key(|op| (op.start, std::cmp::Reverse(op.end)));
    Some(emit(source, 0, source.len(), &ops))
}

/// The arithmetic of a statement's expressions: an emitted one, a `set`, and those of `if` and
/// `for` blocks and their bodies (Amazon Ads writes `{%- set today = today_utc() -
/// duration('P1D') -%}`).
fn collect_statement(source: &str, stmt: &Stmt<'_>, ops: &mut Vec<ArithmeticOp>) -> Option<()> {
    match stmt {
        Stmt::EmitExpr(emit) => collect(source, &emit.expr, ops),
        Stmt::Set(set) => collect(source, &set.expr, ops),
        Stmt::IfCond(cond) => {
            collect(source, &cond.expr, ops)?;
            for child in cond.true_body.iter().chain(&cond.false_body) {
                collect_statement(source, child, ops)?;
            }
            Some(())
        }
        Stmt::ForLoop(for_loop) => {
            collect(source, &for_loop.iter, ops)?;
            for child in for_loop.body.iter().chain(&for_loop.else_body) {
                collect_statement(source, child, ops)?;
            }
            Some(())
        }
        _ => Some(()),
    }
}

/// One `a + b` / `a - b` in the source: its text range and where the operator sits.
#[derive(Debug)]
struct ArithmeticOp {
    start: usize,
    operator: usize,
    end: usize,
    function: &'static str,
}

/// The smallest range covering every node of the subtree (node spans alone do not nest).
fn extent(expr: &Expr<'_>) -> (usize, usize) {
    let span = expr.span();
    let mut range = (span.start_offset as usize, span.end_offset as usize);
    for kid in children(expr) {
        let (start, end) = extent(kid);
        range = (range.0.min(start), range.1.max(end));
    }
    range
}

fn collect(source: &str, expr: &Expr<'_>, ops: &mut Vec<ArithmeticOp>) -> Option<()> {
    if let Expr::BinOp(binop) = expr {
        let function = match binop.op {
            BinOpKind::Add => Some(ADD_FUNCTION),
            BinOpKind::Sub => Some(SUB_FUNCTION),
            _ => None,
        };
        if let Some(function) = function {
            let (left_start, left_end) = extent(&binop.left);
            let (right_start, right_end) = extent(&binop.right);
            let symbol = if function == ADD_FUNCTION { '+' } else { '-' };
            let gap = source.get(left_end..right_start)?;
            let operator = left_end + gap.find(symbol)?;
            let span = expr.span();
            ops.push(ArithmeticOp {
                start: left_start.min(span.start_offset as usize),
                operator,
                end: right_end.max(span.end_offset as usize),
                function,
            });
        }
    }
    for kid in children(expr) {
        collect(source, kid, ops)?;
    }
    Some(())
}

/// The text of `start..end` with every outermost operation inside it replaced by a call.
fn emit(source: &str, start: usize, end: usize, ops: &[ArithmeticOp]) -> String {
    let mut out = String::new();
    let mut copied_to = start;
    for op in ops {
        if op.start < copied_to || op.end > end {
            continue;
        }
        out.push_str(&source[copied_to..op.start]);
        out.push_str(&format!(
            "{}({}, {})",
            op.function,
            emit(source, op.start, op.operator, ops).trim(),
            emit(source, op.operator + 1, op.end, ops).trim()
        ));
        copied_to = op.end;
    }
    out.push_str(&source[copied_to..end]);
    out
}

fn children<'e, 'a>(expr: &'e Expr<'a>) -> Vec<&'e Expr<'a>> {
    let mut kids: Vec<&Expr<'a>> = Vec::new();
    let call_args = |args: &'e [CallArg<'a>], kids: &mut Vec<&'e Expr<'a>>| {
        for arg in args {
            match arg {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => kids.push(e),
            }
        }
    };
    match expr {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(s) => {
            kids.push(&s.expr);
            kids.extend(s.start.iter().chain(s.stop.iter()).chain(s.step.iter()));
        }
        Expr::UnaryOp(u) => kids.push(&u.expr),
        Expr::BinOp(b) => {
            kids.push(&b.left);
            kids.push(&b.right);
        }
        Expr::Compare(c) => {
            kids.push(&c.expr);
            kids.extend(c.ops.iter().map(|op| &op.expr));
        }
        Expr::IfExpr(i) => {
            kids.push(&i.test_expr);
            kids.push(&i.true_expr);
            kids.extend(i.false_expr.iter());
        }
        Expr::Filter(f) => {
            kids.extend(f.expr.iter());
            call_args(&f.args, &mut kids);
        }
        Expr::Test(t) => {
            kids.push(&t.expr);
            call_args(&t.args, &mut kids);
        }
        Expr::GetAttr(g) => kids.push(&g.expr),
        Expr::GetItem(g) => {
            kids.push(&g.expr);
            kids.push(&g.subscript_expr);
        }
        Expr::Call(c) => {
            kids.push(&c.expr);
            call_args(&c.args, &mut kids);
        }
        Expr::List(l) => kids.extend(l.items.iter()),
        Expr::Tuple(t) => kids.extend(t.items.iter()),
        Expr::Map(m) => kids.extend(m.keys.iter().chain(m.values.iter())),
    }
    kids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_jinja2_idioms() {
        assert_eq!(
            normalize_jinja2_idioms(
                "{% set xs = [] %}{% for x in y: %}{% set _ = xs.append(x) %}{% endfor %}"
            )
            .as_deref(),
            Some(
                "{% set xs = __sluice_list() %}{% for x in y %}{% set _ = xs.append(x) %}{% endfor %}"
            )
        );
        assert_eq!(normalize_jinja2_idioms("{{ a }}"), None);
    }

    #[test]
    fn rewrites_only_arithmetic_in_datetime_templates() {
        assert_eq!(rewrite_datetime_arithmetic("{{ 1 + 2 }}"), None);
        assert_eq!(
            rewrite_datetime_arithmetic("x {{ now_utc() - duration('P1D') }} y").as_deref(),
            Some("x {{ __sluice_sub(now_utc(), duration('P1D')) }} y")
        );
        assert_eq!(
            rewrite_datetime_arithmetic("{{ (now_utc() - duration('P1D')).strftime('%Y') }}")
                .as_deref(),
            Some("{{ (__sluice_sub(now_utc(), duration('P1D'))).strftime('%Y') }}")
        );
        assert_eq!(
            rewrite_datetime_arithmetic("{{ (a + b) - duration(x - 1) }}").as_deref(),
            Some("{{ __sluice_sub((__sluice_add(a, b)), duration(__sluice_sub(x, 1))) }}")
        );
    }

    #[test]
    fn rewrites_arithmetic_in_set_if_and_for_statements() {
        assert_eq!(
            rewrite_datetime_arithmetic(
                "{%- set t = today_utc() - duration('P1D') -%}{% if t - x %}{{ t }}{% endif %}"
            )
            .as_deref(),
            Some(
                "{%- set t = __sluice_sub(today_utc(), duration('P1D')) -%}{% if __sluice_sub(t, x) %}{{ t }}{% endif %}"
            )
        );
        assert_eq!(
            rewrite_datetime_arithmetic(
                "{% for d in [now_utc() + duration('P1D')] %}{{ d }}{% endfor %}"
            )
            .as_deref(),
            Some("{% for d in [__sluice_add(now_utc(), duration('P1D'))] %}{{ d }}{% endfor %}")
        );
    }
}
