//! Joining `url_base` and `path` the way the reference's HttpRequester joins them.

/// Joins a base URL and a path as the reference's `_join_url` does: an empty path gives the
/// base unchanged; otherwise the base gets a trailing `/` and the path is resolved against it as
/// a relative reference (Python's `urljoin`): `a/b` extends the base, `/a/b` replaces its path,
/// a full URL replaces it all. A manifest's `path` has its leading `/` stripped before (see
/// [`manifest_path`]); a paginator's next-page path does not.
pub fn join_url(url_base: &str, path: &str) -> String {
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

/// A manifest's rendered `path`, as the reference's `get_path` hands it to [`join_url`]:
/// without leading slashes, so it always extends the base.
pub fn manifest_path(path: &str) -> &str {
    path.trim_start_matches('/')
}

#[cfg(test)]
mod tests {
    use super::{join_url, manifest_path};

    #[test]
    fn joins_like_the_reference() {
        assert_eq!(
            join_url("https://example.com/api/", "endpoint"),
            "https://example.com/api/endpoint"
        );
        assert_eq!(
            join_url("https://example.com/api", manifest_path("/endpoint")),
            "https://example.com/api/endpoint"
        );
        assert_eq!(
            join_url("https://example.com/api/v1", "/v2/next?p=2"),
            "https://example.com/v2/next?p=2"
        );
        assert_eq!(
            join_url("https://example.com/api/", ""),
            "https://example.com/api/"
        );
        assert_eq!(
            join_url("https://example.com/api", ""),
            "https://example.com/api"
        );
        assert_eq!(
            join_url("https://example.com/api", "https://other.com/x"),
            "https://other.com/x"
        );
        assert_eq!(
            join_url("https://example.com/v1", "a/b?x=1"),
            "https://example.com/v1/a/b?x=1"
        );
    }
}
