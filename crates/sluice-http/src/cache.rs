//! A response cache for parent streams: a parent read by several children, or also selected
//! itself, is fetched once, as the reference's request cache makes it.
//!
//! The reference keeps every cached response for the whole sync (an in-memory sqlite database
//! with no eviction), so its memory grows with the parents. This cache holds at most a fixed
//! number of bytes and forgets the least recently used responses first: a response evicted
//! before it is asked for again is fetched again, which costs a request, never a record.

use crate::transport::{Transport, TransportFuture};
use crate::{HttpRequest, HttpResponse, Method};
use lru::LruCache;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the cache holds by default: room for the pages of many parents, bounded whatever
/// their number.
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// A request as the cache tells requests apart: method, URL, headers (in any order) and body,
/// as the reference's cache matches them (`match_headers`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<bytes::Bytes>,
}

impl Key {
    fn of(request: &HttpRequest) -> Self {
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        headers.sort();
        Self {
            method: request.method,
            url: request.url.clone(),
            headers,
            body: request.body.clone(),
        }
    }

    fn size(&self) -> usize {
        self.url.len()
            + self.body.as_ref().map_or(0, |b| b.len())
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

fn response_size(response: &HttpResponse) -> usize {
    response.body.len()
        + response
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
}

#[derive(Debug)]
struct Entries {
    map: LruCache<Key, HttpResponse>,
    bytes: usize,
}

/// Responses kept by request, at most `capacity` bytes of them.
#[derive(Debug)]
pub struct ResponseCache {
    entries: Mutex<Entries>,
    capacity: usize,
    /// The requests being sent, each with a lock its duplicates wait on: children reading the
    /// same parent concurrently send each request once and share the answer.
    in_flight: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl ResponseCache {
    /// A cache holding at most `capacity` bytes of requests and responses.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(Entries {
                map: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    fn get(&self, key: &Key) -> Option<HttpResponse> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.map.get(key).cloned()
    }

    fn put(&self, key: Key, response: HttpResponse) {
        let size = key.size() + response_size(&response);
        if size > self.capacity {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = entries.map.put(key.clone(), response) {
            entries.bytes -= key.size() + response_size(&old);
        }
        entries.bytes += size;
        while entries.bytes > self.capacity {
            match entries.map.pop_lru() {
                Some((key, response)) => entries.bytes -= key.size() + response_size(&response),
                None => break,
            }
        }
    }

    fn lock_in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<tokio::sync::Mutex<()>>>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many bytes of requests and responses the cache holds.
    pub fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// A transport that answers GET requests from a [`ResponseCache`] when it can, and
/// keeps their 200 responses (what the reference's cache keeps).
#[derive(Debug, Clone)]
pub struct CachingTransport {
    inner: Arc<dyn Transport>,
    cache: Arc<ResponseCache>,
}

impl CachingTransport {
    /// `inner` with `cache` in front of it.
    pub fn new(inner: Arc<dyn Transport>, cache: Arc<ResponseCache>) -> Self {
        Self { inner, cache }
    }
}

impl Transport for CachingTransport {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        Box::pin(async move {
            if request.method != Method::Get {
                return self.inner.send(request).await;
            }
            let key = Key::of(request);
            if let Some(response) = self.cache.get(&key) {
                crate::observe::notify(|o| o.answered_from_cache());
                return Ok(response);
            }
            let flight = {
                let mut in_flight = self.cache.lock_in_flight();
                Arc::clone(in_flight.entry(key.clone()).or_default())
            };
            let turn = flight.lock().await;
            let response = match self.cache.get(&key) {
                Some(response) => {
                    crate::observe::notify(|o| o.answered_from_cache());
                    Ok(response)
                }
                None => self.inner.send(request).await,
            };
            if let Ok(response) = &response {
                if response.status == 200 {
                    self.cache.put(key.clone(), response.clone());
                }
            }
            drop(turn);
            let mut in_flight = self.cache.lock_in_flight();
            // Clones are only made under this lock: two left means the map's and ours, so no
            // one else waits on this request.
            if Arc::strong_count(&flight) == 2 {
                in_flight.remove(&key);
            }
            response
        })
    }

    fn wait(&self, duration: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.inner.wait(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting {
        sent: AtomicUsize,
    }

    impl Transport for Counting {
        fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
            self.sent.fetch_add(1, Ordering::SeqCst);
            let body = Bytes::from(format!(
                "{{\"url\": \"{}\", \"pad\": \"{}\"}}",
                request.url,
                "x".repeat(100)
            ));
            Box::pin(async move {
                // Answers on a later poll, as a server does, so requests can overlap.
                tokio::task::yield_now().await;
                Ok(HttpResponse {
                    status: 200,
                    headers: Vec::new(),
                    body,
                })
            })
        }
    }

    fn get(url: &str) -> HttpRequest {
        HttpRequest::new(Method::Get, url)
    }

    #[tokio::test]
    async fn a_repeated_get_is_answered_from_the_cache() {
        let counting = Arc::new(Counting::default());
        let transport = CachingTransport::new(counting.clone(), ResponseCache::new(1 << 20));
        let first = transport.send(&get("http://a/1")).await.unwrap();
        let again = transport.send(&get("http://a/1")).await.unwrap();
        assert_eq!(first, again);
        transport.send(&get("http://a/2")).await.unwrap();
        assert_eq!(counting.sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_identical_gets_are_sent_once() {
        let counting = Arc::new(Counting::default());
        let cache = ResponseCache::new(1 << 20);
        let transport = CachingTransport::new(counting.clone(), Arc::clone(&cache));
        let request = get("http://a/1");
        let (a, b, c) = tokio::join!(
            transport.send(&request),
            transport.send(&request),
            transport.send(&request)
        );
        assert_eq!(a.unwrap(), b.unwrap());
        assert!(c.is_ok());
        assert_eq!(counting.sent.load(Ordering::SeqCst), 1);
        assert!(cache.lock_in_flight().is_empty());
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bytes_forgetting_the_oldest() {
        let counting = Arc::new(Counting::default());
        let cache = ResponseCache::new(1000);
        let transport = CachingTransport::new(counting.clone(), Arc::clone(&cache));
        for page in 0..50 {
            transport
                .send(&get(&format!("http://a/{page}")))
                .await
                .unwrap();
            assert!(cache.bytes() <= 1000, "{} bytes held", cache.bytes());
        }
        // The newest page is still there; the first was evicted and is fetched again.
        transport.send(&get("http://a/49")).await.unwrap();
        assert_eq!(counting.sent.load(Ordering::SeqCst), 50);
        transport.send(&get("http://a/0")).await.unwrap();
        assert_eq!(counting.sent.load(Ordering::SeqCst), 51);
    }
}
