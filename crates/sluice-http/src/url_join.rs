//! Joining `url_base` and `path` the way the reference's HttpRequester joins them.

/// Joins a base URL and a path: an empty path gives the base unchanged; otherwise the base gets
/// a trailing `/` and the path (leading `/` stripped) is resolved against it as a relative
/// reference (so a path that is a full URL replaces the base).
pub fn join_url(url_base: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return url_base.to_owned();
    }
    let mut base = url_base.to_owned();
    if !base.ends_with('/') {
        base.push('/');
    }
    match url::Url::parse(&base).and_then(|b| b.join(path)) {
        Ok(joined) => joined.to_string(),
        // Not an absolute base (e.g. an interpolation produced garbage): keep the plain
        // concatenation so the error surfaces where the request is sent, with the URL in it.
        Err(_) => format!("{base}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::join_url;

    #[test]
    fn joins_like_the_reference() {
        assert_eq!(join_url("https://example.com/api/", "endpoint"), "https://example.com/api/endpoint");
        assert_eq!(join_url("https://example.com/api", "/endpoint"), "https://example.com/api/endpoint");
        assert_eq!(join_url("https://example.com/api/", ""), "https://example.com/api/");
        assert_eq!(join_url("https://example.com/api", ""), "https://example.com/api");
        assert_eq!(join_url("https://example.com/api", "https://other.com/x"), "https://other.com/x");
        assert_eq!(join_url("https://example.com/v1", "a/b?x=1"), "https://example.com/v1/a/b?x=1");
    }
}
