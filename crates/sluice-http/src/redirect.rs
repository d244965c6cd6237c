//! Redirects, followed as the reference's HTTP client (Python `requests`) follows them.
//!
//! `requests` follows 301, 302, 303, 307 and 308 responses that carry a `Location`, up to 30
//! times, before the error handler sees the response: a moved endpoint reads on instead of
//! yielding a page of nothing. Like `requests`, a 302 or 303 (a 301 only for POST) turns the
//! request into a GET, every redirect but 307 and 308 drops the body, and the
//! `Authorization` header is dropped when the redirect leaves the host.

use url::Url;

use crate::message::{HttpRequest, HttpResponse, Method};

/// Redirects followed before giving up (`requests.Session.max_redirects`).
pub(crate) const MAX_REDIRECTS: usize = 30;

/// Headers `requests` removes when a redirect drops the body.
const BODY_HEADERS: [&str; 3] = ["Content-Length", "Content-Type", "Transfer-Encoding"];

/// The request that follows `response`, when it is a redirect to a URL that resolves.
pub(crate) fn next_request(request: &HttpRequest, response: &HttpResponse) -> Option<HttpRequest> {
    if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.header("Location")?;
    let previous = Url::parse(&request.url).ok()?;
    // `//host/path` keeps the scheme; anything else resolves like `urljoin`.
    let target = previous.join(location).ok()?;

    let mut next = request.clone();
    let status = response.status;
    // `requests` spares HEAD, which manifests cannot send.
    let becomes_get =
        matches!(status, 302 | 303) || (status == 301 && request.method == Method::Post);
    if becomes_get {
        next.method = Method::Get;
    }
    if !matches!(status, 307 | 308) {
        next.body = None;
        next.headers
            .retain(|(name, _)| !BODY_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)));
    }
    if strips_authorization(&previous, &target) {
        next.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("Authorization"));
    }
    next.url = target.to_string();
    Some(next)
}

/// `requests.Session.should_strip_auth`: another host, or another scheme or port on the same
/// host, except http to https with default ports.
fn strips_authorization(previous: &Url, target: &Url) -> bool {
    if previous.host_str() != target.host_str() {
        return true;
    }
    let to_https_with_default_ports = previous.scheme() == "http"
        && target.scheme() == "https"
        && previous.port().is_none()
        && target.port().is_none();
    if to_https_with_default_ports {
        return false;
    }
    // The `url` crate leaves a scheme's default port out: `port()` is `None` for it.
    let same_scheme = previous.scheme() == target.scheme();
    if same_scheme && previous.port().is_none() && target.port().is_none() {
        return false;
    }
    previous.port() != target.port() || !same_scheme
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(status: u16, location: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("location".to_owned(), location.to_owned())],
            body: Default::default(),
        }
    }

    fn post(url: &str) -> HttpRequest {
        let mut request = HttpRequest::new(Method::Post, url);
        request.headers = vec![
            ("Authorization".to_owned(), "Bearer t".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        request.body = Some("{}".into());
        request
    }

    #[test]
    fn resolves_the_location_like_urljoin() {
        let request = HttpRequest::new(Method::Get, "https://api.example.com/v1/items?page=2");
        let next = |location| {
            next_request(&request, &redirect(302, location))
                .unwrap()
                .url
        };
        assert_eq!(next("/v2/items"), "https://api.example.com/v2/items");
        assert_eq!(next("other"), "https://api.example.com/v1/other");
        assert_eq!(next("//cdn.example.com/x"), "https://cdn.example.com/x");
        assert_eq!(next("http://elsewhere/y?z=1"), "http://elsewhere/y?z=1");
    }

    #[test]
    fn changes_the_method_and_drops_the_body_as_requests_does() {
        let request = post("https://h/a");
        let followed = |status| next_request(&request, &redirect(status, "/b")).unwrap();
        for status in [301, 302, 303] {
            let next = followed(status);
            assert_eq!((next.method, next.body.is_none()), (Method::Get, true));
            assert!(next.headers.iter().all(|(n, _)| n != "Content-Type"));
            // Same host: the credentials stay.
            assert!(next.headers.iter().any(|(n, _)| n == "Authorization"));
        }
        for status in [307, 308] {
            let next = followed(status);
            assert_eq!((next.method, next.body.is_some()), (Method::Post, true));
        }
        let put = HttpRequest::new(Method::Put, "https://h/a");
        assert_eq!(
            next_request(&put, &redirect(301, "/b")).unwrap().method,
            Method::Put
        );
    }

    #[test]
    fn drops_credentials_when_leaving_the_host() {
        let request = post("http://h/a");
        let keeps = |location| {
            next_request(&request, &redirect(307, location))
                .unwrap()
                .headers
                .iter()
                .any(|(n, _)| n == "Authorization")
        };
        assert!(!keeps("https://other/a"));
        assert!(keeps("https://h/a"));
        assert!(keeps("http://h:80/a"));
        assert!(!keeps("http://h:8080/a"));
    }

    #[test]
    fn anything_else_is_not_followed() {
        let request = HttpRequest::new(Method::Get, "https://h/a");
        assert!(next_request(&request, &redirect(200, "/b")).is_none());
        assert!(next_request(&request, &redirect(304, "/b")).is_none());
        let without_location = HttpResponse {
            status: 302,
            headers: vec![],
            body: Default::default(),
        };
        assert!(next_request(&request, &without_location).is_none());
    }
}
