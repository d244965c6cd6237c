/// The closest of `candidates` to `word`, when it is close enough to be a likely misspelling.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|(_, score)| *score > 0.85)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_close_names_only() {
        let names = ["DpathExtractor", "RecordSelector", "HttpRequester"];
        assert_eq!(
            super::did_you_mean("DPathExtractor", names),
            Some("DpathExtractor")
        );
        assert_eq!(
            super::did_you_mean("HttpRequestor", names),
            Some("HttpRequester")
        );
        assert_eq!(super::did_you_mean("Zebra", names), None);
    }
}
