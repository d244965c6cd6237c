//! Records as a text table: one column per top-level field, in the order fields first appear.

use crate::text::clip;
use serde_json::{Map, Value};

/// The narrowest a column is squeezed to when the table is too wide for the terminal.
const MIN_COLUMN: usize = 4;

/// Renders `records` as a table at most `width` characters wide, each cell at most `max_cell`
/// characters (longer values end in `…`). Columns that cannot fit even squeezed are left out and
/// named below the table. Widths count characters, so wide (CJK) characters may overflow.
pub fn render(records: &[Map<String, Value>], max_cell: usize, width: usize) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for record in records {
        for key in record.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let max_cell = max_cell.max(MIN_COLUMN);
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            columns
                .iter()
                .map(|c| clip(&cell(record.get(*c)), max_cell))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            rows.iter()
                .map(|row| chars(&row[i]))
                .chain([chars(&clip(name, max_cell))])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let shown = fit(&mut widths, width);
    let mut out = String::new();
    let header: Vec<String> = columns[..shown]
        .iter()
        .map(|name| clip(name, max_cell))
        .collect();
    line(&mut out, &header, &widths);
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    out.push_str(&rule.join("─┼─"));
    out.push('\n');
    for row in &rows {
        line(&mut out, &row[..shown], &widths);
    }
    if shown < columns.len() {
        out.push_str(&format!(
            "(too wide for {width} characters, columns left out: {})\n",
            columns[shown..].join(", ")
        ));
    }
    out
}

/// Squeezes the widest columns until the table fits in `width`, then drops trailing columns
/// if it still does not; gives how many columns are shown.
fn fit(widths: &mut Vec<usize>, width: usize) -> usize {
    // Each column after the first adds a ` │ ` separator.
    let total =
        |widths: &[usize]| widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1);
    while total(widths) > width {
        let Some((widest, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            break;
        };
        if w <= MIN_COLUMN {
            break;
        }
        widths[widest] = w - 1;
    }
    while widths.len() > 1 && total(widths) > width {
        widths.pop();
    }
    widths.len()
}

fn line(out: &mut String, cells: &[String], widths: &[usize]) {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(text, width)| {
            let text = clip(text, *width);
            let pad = width.saturating_sub(chars(&text));
            format!("{text}{}", " ".repeat(pad))
        })
        .collect();
    out.push_str(padded.join(" │ ").trim_end());
    out.push('\n');
}

/// A value as one line: strings bare, nested values as compact JSON, a missing field empty.
fn cell(value: Option<&Value>) -> String {
    let text = match value {
        None => return String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(values: Value) -> Vec<Map<String, Value>> {
        serde_json::from_value(values).unwrap()
    }

    #[test]
    fn columns_are_the_union_of_fields_in_first_seen_order() {
        let table = render(
            &records(json!([
                {"id": 1, "name": "Ada"},
                {"id": 2, "tags": ["x", "y"], "name": null, "note": "two\nlines"}
            ])),
            40,
            120,
        );
        assert_eq!(
            table,
            "id │ name │ tags      │ note\n\
             ───┼──────┼───────────┼──────────\n\
             1  │ Ada  │           │\n\
             2  │ null │ [\"x\",\"y\"] │ two lines\n"
        );
    }

    #[test]
    fn long_cells_are_clipped_and_wide_tables_squeezed() {
        let long = "a".repeat(50);
        let table = render(&records(json!([{"k": long}])), 10, 120);
        assert_eq!(table.lines().nth(2), Some("aaaaaaaaa…"));
        let table = render(&records(json!([{"a": "123456", "b": "123456"}])), 40, 11);
        assert_eq!(table.lines().nth(2), Some("123… │ 123…"));
        let table = render(&records(json!([{"a": 1, "b": 2, "c": 3}])), 40, 5);
        assert!(table.ends_with("columns left out: c)\n"), "{table}");
    }
}
