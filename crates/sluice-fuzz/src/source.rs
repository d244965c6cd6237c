//! Targets that build a [`Source`]: manifests, input states and configs.

use serde_json::Value;
use sluice_engine::{MessageWriter, PendingMessages, ReadLimits, Source, SourceOptions};
use sluice_http::{Cassette, ReplayTransport};
use sluice_manifest::ManifestSource;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cases::{self, Kind};
use crate::inputs::{split_line, text};

pub(crate) fn manifest(data: &[u8]) {
    let Some(yaml) = text(data) else { return };
    let located = Arc::new(ManifestSource::new("manifest.yaml", yaml));
    let tree = match sluice_manifest::yaml::parse(yaml) {
        Ok(tree) => tree,
        Err(error) => {
            let _ = located.describe(&error);
            return;
        }
    };
    let _ = sluice_manifest::load_spec(&tree);
    let manifest = match sluice_manifest::load_value(tree) {
        Ok(manifest) => manifest,
        Err(error) => {
            // `sluice validate` and every command show where the error is.
            let _ = located.describe(&error);
            return;
        }
    };
    let _ = sluice_manifest::components(&manifest.resolved);
    let _ = sluice_manifest::ignored_components(&manifest.resolved);
    let _ = sluice_engine::manifest_problems(&manifest);
    let _ = sluice_engine::unsupported_components(&manifest);
    let _ = sluice_engine::spec(&manifest);
    let config = sluice_engine::sample_config(&manifest);
    let mut options = options(Cassette::new());
    options.manifest_source = Some(located);
    if let Ok(source) = Source::new(manifest, config, options) {
        let _ = source.validate_config();
        let _ = source.configured_catalog_all_full_refresh();
        let _ = source.concurrency_level();
        for (_, error) in source.unrunnable_streams() {
            let _ = error.to_string();
        }
    }
}

pub(crate) fn state(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let (name, state) = split_line(input);
    let Ok(messages) = sluice_protocol::parse_input_state(state) else {
        return;
    };
    let _ = sluice_protocol::per_stream_states(&messages);
    let _ = sluice_protocol::ignored_state_messages(&messages);
    let Some(case) = cases::case(Kind::Incremental, name) else {
        return;
    };
    let Some(catalog) = &case.catalog else { return };
    let options = options(case.cassette.clone());
    let Ok(source) = Source::new(case.manifest.clone(), case.config.clone(), options) else {
        return;
    };
    let mut out = MessageWriter::new(Vec::new());
    let _ = block_on(source.read(catalog, &messages, &mut out));
}

pub(crate) fn config(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let (name, config) = split_line(input);
    let Ok(config) = sluice_protocol::parse_config(config) else {
        return;
    };
    let config = Value::Object(config);
    let Some(case) = cases::case(Kind::WithSpec, name) else {
        return;
    };
    let spec = sluice_engine::spec(&case.manifest);
    let _ = sluice_engine::validate_config(&Value::Object(spec.connection_specification), &config);
    let options = options(case.cassette.clone());
    let Ok(source) = Source::new(case.manifest.clone(), config, options) else {
        return;
    };
    let _ = source.migrated_config();
    if source.validate_config().is_err() {
        return;
    }
    // The config reaches the requests: authenticators, URLs, parameters.
    let mut out = MessageWriter::new(Vec::new());
    let _ = block_on(source.check(&mut out));
}

/// Options that replay `cassette` and never wait before a retry.
fn options(cassette: Cassette) -> SourceOptions {
    SourceOptions {
        manifest_dir: None,
        manifest_source: None,
        transport: Arc::new(ReplayTransport::new(cassette)),
        messages: PendingMessages::new(),
        max_wait: Some(Duration::ZERO),
        checkpoint_every: None,
        concurrency: None,
        // A state far in the past must not make a fuzz run read thousands of slices.
        limits: ReadLimits {
            slices: Some(20),
            ..ReadLimits::default()
        },
        progress: None,
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime starts");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}
