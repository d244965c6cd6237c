//! Small text helpers shared by the reports sluice prints for people (`validate`, `preview`,
//! the progress display).

/// `text` cut to `width` characters, ending in `…` when it was longer.
pub fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// `1 record`, `2 records`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
