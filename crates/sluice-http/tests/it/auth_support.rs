//! Helpers shared by the authenticator tests: building an authenticator from manifest JSON
//! against a local wiremock server, with backoff waits skipped.

#![allow(dead_code)]

use serde_json::Value;
use sluice_http::auth::{AuthBuildError, AuthContext, Authenticator, Injection};
use sluice_http::{HttpRequest, HyperTransport, Transport, TransportFuture};
use sluice_manifest::ManifestPath;
use sluice_manifest::model::{self, FromNode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The network transport, minus the waiting between retries.
#[derive(Debug, Default)]
pub struct NoWait(HyperTransport);

impl Transport for NoWait {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.0.send(request)
    }

    fn wait(&self, _duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

pub fn context(config: Value) -> AuthContext {
    AuthContext::new(Arc::new(config), Arc::new(NoWait::default()))
}

pub fn path() -> ManifestPath {
    ManifestPath::root().key("authenticator")
}

pub fn try_build(node: Value, context: &AuthContext) -> Result<Authenticator, AuthBuildError> {
    try_build_with_base(node, context, None)
}

pub fn try_build_with_base(
    node: Value,
    context: &AuthContext,
    url_base: Option<&str>,
) -> Result<Authenticator, AuthBuildError> {
    let model =
        model::Authenticator::from_node(&node, &path()).expect("a valid authenticator model");
    Authenticator::from_model(&model, context, url_base, &path())
}

pub fn build(node: Value, context: &AuthContext) -> Authenticator {
    try_build(node, context).expect("the authenticator builds")
}

/// `(name, value)` of every injection, in order.
pub fn pairs(injections: &[Injection]) -> Vec<(String, String)> {
    injections
        .iter()
        .map(|i| (i.name.clone(), i.value.clone()))
        .collect()
}

/// The form fields of a recorded request body.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
