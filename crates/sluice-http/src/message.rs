use bytes::Bytes;
use std::fmt;

/// An HTTP method a declarative requester can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The method's name on the wire (`GET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Parses a method name, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request ready to send: the URL carries its query string already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    /// Header names and values, in the order they were set.
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    /// Connect and read time limits; `None` leaves the transport's own.
    pub timeouts: Option<crate::transport::Timeouts>,
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeouts: None,
        }
    }

    /// Appends query parameters, encoded as Python's `requests` encodes them
    /// (`application/x-www-form-urlencoded`, spaces as `+`), after any query the URL has.
    pub fn with_query(mut self, params: &[(String, String)]) -> Self {
        if params.is_empty() {
            return self;
        }
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            serializer.append_pair(k, v);
        }
        let encoded = serializer.finish();
        let (base, fragment) = match self.url.split_once('#') {
            Some((b, f)) => (b.to_owned(), Some(f.to_owned())),
            None => (self.url.clone(), None),
        };
        let sep = if base.contains('?') {
            if base.ends_with('?') || base.ends_with('&') {
                ""
            } else {
                "&"
            }
        } else {
            "?"
        };
        self.url = format!("{base}{sep}{encoded}");
        if let Some(f) = fragment {
            self.url.push('#');
            self.url.push_str(&f);
        }
        self
    }

    /// Sets a header, replacing any earlier value of the same name (names compare case-insensitively).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Sets a header in place, replacing any earlier value of the same name.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.to_owned(), value)),
        }
    }

    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets the body and its content type.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.set_header("Content-Type", content_type);
        self.body = Some(body.into());
        self
    }
}

impl fmt::Display for HttpRequest {
    /// `GET https://host/path?query` — for error messages; callers mask secrets in the URL first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// A response with its body read and decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_form_encoded_and_appended() {
        let q = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let r = HttpRequest::new(Method::Get, "https://h/p")
            .with_query(&[q("a", "x y"), q("b", "1&2")]);
        assert_eq!(r.url, "https://h/p?a=x+y&b=1%262");
        let r = HttpRequest::new(Method::Get, "https://h/p?z=1").with_query(&[q("a", "b")]);
        assert_eq!(r.url, "https://h/p?z=1&a=b");
        let r = HttpRequest::new(Method::Get, "https://h/p").with_query(&[]);
        assert_eq!(r.url, "https://h/p");
    }

    #[test]
    fn headers_replace_case_insensitively() {
        let r = HttpRequest::new(Method::Get, "https://h")
            .with_header("Accept", "a")
            .with_header("accept", "b");
        assert_eq!(r.headers, vec![("Accept".to_owned(), "b".to_owned())]);
        assert_eq!(r.header("ACCEPT"), Some("b"));
    }
}
