//! The declarative source: builds runtime streams from a manifest's typed model and runs the
//! Airbyte commands on them (`spec`, `check`, `discover`, `read`), emitting the messages the
//! reference emits, in its order.
//!
//! ```no_run
//! # async fn run() -> Result<(), sluice_engine::EngineError> {
//! use sluice_engine::{MessageWriter, Source, SourceOptions};
//! let manifest = sluice_manifest::load_file("manifest.yaml".as_ref())?;
//! let config = serde_json::json!({"api_key": "..."});
//! let source = Source::new(manifest, config, SourceOptions::default())?;
//! let catalog = source.configured_catalog_all_full_refresh();
//! let mut out = MessageWriter::new(std::io::stdout());
//! println!("{:?}", sluice_engine::spec(source.manifest()));
//! source.read(&catalog, &[], &mut out).await?;
//! # Ok(()) }
//! ```

mod build;
mod config;
mod config_rules;
mod dynamic_schema;
mod error;
mod output;
mod read;
mod slicing;
mod stream;
mod support;

pub use config::validate_config;
pub use config_rules::{ConfigRules, NormalisedConfig};
pub use error::EngineError;
pub use output::{MessageWriter, PendingMessages, RecordData};
pub use support::{Unsupported, manifest_problems, unsupported_components};

use build::StreamSlot;
use serde_json::{Map, Value};
use sluice_http::{HyperTransport, Transport};
use sluice_manifest::Manifest;
use sluice_protocol::{
    AirbyteCatalog, AirbyteConnectionStatus, AirbyteMessage, AirbyteStateMessage,
    ConfiguredAirbyteCatalog, ConfiguredAirbyteStream, ConnectorSpecification, DestinationSyncMode,
    Status, SyncMode,
};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// How a [`Source`] reaches the outside world.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The folder of the manifest file, for schema files given by relative path.
    pub manifest_dir: Option<PathBuf>,
    /// Where requests go: the network, or a cassette.
    pub transport: Arc<dyn Transport>,
    /// Where messages raised outside the read loop go (CONTROL messages after a config
    /// migration or an OAuth token rotation); give the same queue to the [`MessageWriter`].
    pub messages: Arc<PendingMessages>,
    /// The longest wait before a retry; a server asking for more fails the stream at once.
    pub max_wait: Option<std::time::Duration>,
    /// Emit a STATE every this many records inside a slice while its records come in ascending
    /// cursor order (unpartitioned incremental streams; off by default, as in the reference).
    pub checkpoint_every: Option<u64>,
    /// How many partitions are read at once, across all streams; overrides the manifest's
    /// `concurrency_level`.
    pub concurrency: Option<usize>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            manifest_dir: None,
            transport: Arc::new(HyperTransport::default()),
            messages: PendingMessages::new(),
            max_wait: None,
            checkpoint_every: None,
            concurrency: None,
        }
    }
}

/// A manifest with its config, ready to run.
#[derive(Debug)]
pub struct Source {
    manifest: Manifest,
    config: Arc<Value>,
    /// The spec's `config_normalization_rules`.
    config_rules: ConfigRules,
    /// The config after the spec's migrations, when they changed it.
    migrated_config: Option<Map<String, Value>>,
    streams: Vec<StreamSlot>,
    concurrency: usize,
    checkpoint_every: Option<u64>,
    /// The components of `dynamic_streams` sluice cannot run: the streams they would make are
    /// missing.
    unbuilt_dynamic_streams: Vec<String>,
}

impl Source {
    /// Builds every stream of the manifest. A stream that needs a component sluice cannot run
    /// is kept aside (discover lists it, reading it fails naming the component); a component
    /// sluice cannot run outside the streams fails here, naming it.
    ///
    /// The config first goes through the spec's `config_normalization_rules` (see
    /// [`ConfigRules`]): when its migrations change it, a CONTROL message with the migrated
    /// config is queued on [`SourceOptions::messages`] and [`Source::migrated_config`] has it.
    pub fn new(
        manifest: Manifest,
        config: Value,
        options: SourceOptions,
    ) -> Result<Self, EngineError> {
        // A manifest refused anyway is refused before its config is migrated and announced.
        support::refuse_outside_streams(&unsupported_components(&manifest))?;
        let config_rules = ConfigRules::from_spec(manifest.model.spec.as_ref())?;
        let NormalisedConfig {
            config,
            migrated: migrated_config,
        } = config_rules.normalise(config)?;
        if let Some(migrated) = &migrated_config {
            options
                .messages
                .push(AirbyteMessage::control_config(migrated.clone()));
        }
        let config = Arc::new(config);
        let streams = build::streams(&manifest, &config, &options)?;
        let checkpoint_every = options.checkpoint_every;
        let concurrency = match options.concurrency {
            Some(concurrency) => concurrency.max(1),
            None => build::concurrency_level(&manifest, &config)?,
        };
        let unbuilt_dynamic_streams = unsupported_components(&manifest)
            .into_iter()
            .filter(|u| u.path.top_key() == Some("dynamic_streams"))
            .map(|u| u.to_string())
            .collect();
        Ok(Self {
            manifest,
            config,
            config_rules,
            migrated_config,
            streams,
            concurrency,
            checkpoint_every,
            unbuilt_dynamic_streams,
        })
    }

    /// The manifest the source runs.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Checks the config against the spec's `connection_specification`, then runs the spec's
    /// `config_normalization_rules.validations` (whose failures are system errors, as in the
    /// reference).
    pub fn validate_config(&self) -> Result<(), EngineError> {
        self.validate_against_spec()?;
        self.config_rules.validate(&self.config)
    }

    /// Checks the config against the spec's `connection_specification`, when the manifest has a spec.
    fn validate_against_spec(&self) -> Result<(), EngineError> {
        match self
            .manifest
            .resolved
            .pointer("/spec/connection_specification")
        {
            Some(schema) => validate_config(schema, &self.config),
            None => Ok(()),
        }
    }

    /// `check`: the config against the spec, then the spec's config validations and the
    /// manifest's CheckStream. As the reference, logs "Check succeeded" or "Check failed" once the
    /// config matched the spec.
    pub async fn check<W: Write + Send + 'static>(
        &self,
        out: &mut MessageWriter<W>,
    ) -> Result<AirbyteConnectionStatus, EngineError> {
        let _ = out;
        if let Err(error) = self.validate_against_spec() {
            return Ok(failed(error.message));
        }
        let status = self.check_streams().await?;
        match status.status {
            Status::Succeeded => tracing::info!("Check succeeded"),
            Status::Failed => tracing::error!("Check failed"),
        }
        Ok(status)
    }

    /// The config validations, then a first record of each of the CheckStream's streams.
    async fn check_streams(&self) -> Result<AirbyteConnectionStatus, EngineError> {
        if let Err(error) = self.config_rules.validate(&self.config) {
            return Ok(failed(format!(
                "Encountered an error while discovering streams. Error: {}",
                error.message
            )));
        }
        let names = build::check_stream_names(&self.manifest)?;
        for name in names {
            let stream = match self.streams.iter().find(|s| s.name() == name) {
                Some(StreamSlot::Ready(stream)) => stream,
                Some(StreamSlot::Unrunnable(unrunnable)) => {
                    return Ok(failed(format!(
                        "Unable to connect to stream {name} - {}",
                        unrunnable.error.message
                    )));
                }
                None => {
                    return Ok(failed(format!(
                        "Check failed: stream '{name}' is not in the manifest"
                    )));
                }
            };
            if let Err(error) = read::first_record(stream).await {
                return Ok(failed(format!(
                    "Unable to connect to stream {name} - {}",
                    error.internal_message.as_deref().unwrap_or(&error.message)
                )));
            }
        }
        Ok(AirbyteConnectionStatus {
            status: Status::Succeeded,
            message: None,
        })
    }

    /// `discover`: one catalog entry per stream. A stream with a `DynamicSchemaLoader` reads
    /// its schema from the API here.
    pub async fn discover(&self) -> Result<AirbyteCatalog, EngineError> {
        let mut streams = Vec::with_capacity(self.streams.len());
        for slot in &self.streams {
            streams.push(match slot {
                StreamSlot::Ready(stream) => stream.discover_entry().await?,
                StreamSlot::Unrunnable(unrunnable) => unrunnable.entry.clone(),
            });
        }
        Ok(AirbyteCatalog { streams })
    }

    /// A configured catalog that reads every stream in full refresh (for tools and examples).
    pub fn configured_catalog_all_full_refresh(&self) -> ConfiguredAirbyteCatalog {
        let streams = self
            .streams
            .iter()
            .map(|slot| {
                let entry = match slot {
                    StreamSlot::Ready(stream) => stream.catalog_entry(),
                    StreamSlot::Unrunnable(unrunnable) => unrunnable.entry.clone(),
                };
                ConfiguredAirbyteStream::new(
                    entry,
                    SyncMode::FullRefresh,
                    DestinationSyncMode::Overwrite,
                )
            })
            .collect();
        ConfiguredAirbyteCatalog { streams }
    }

    /// `read`: the configured streams, with their state, into `out`.
    pub async fn read<W: Write + Send + 'static>(
        &self,
        catalog: &ConfiguredAirbyteCatalog,
        state: &[AirbyteStateMessage],
        out: &mut MessageWriter<W>,
    ) -> Result<(), EngineError> {
        let options = read::ReadOptions {
            concurrency: self.concurrency,
            checkpoint_every: self.checkpoint_every,
        };
        read::read(
            &self.streams,
            &self.unbuilt_dynamic_streams,
            options,
            catalog,
            state,
            out,
        )
        .await
    }

    /// How many partitions are read at once: [`SourceOptions::concurrency`], else the
    /// manifest's `concurrency_level`, else the reference's default of 2.
    pub fn concurrency_level(&self) -> usize {
        self.concurrency
    }

    /// The streams sluice cannot run, each with the reason (the components it needs).
    pub fn unrunnable_streams(&self) -> Vec<(&str, &EngineError)> {
        self.streams
            .iter()
            .filter_map(|slot| match slot {
                StreamSlot::Unrunnable(u) => Some((u.name.as_str(), &u.error)),
                StreamSlot::Ready(_) => None,
            })
            .collect()
    }

    /// The config the source runs with (after the spec's migrations and transformations).
    pub fn config_value(&self) -> &Value {
        &self.config
    }

    /// The config after the spec's migrations, when they changed it (the reference tells a
    /// change only at the top level, see [`ConfigRules`]): what the CONTROL message announced,
    /// and what the reference writes back to the config file.
    pub fn migrated_config(&self) -> Option<&Map<String, Value>> {
        self.migrated_config.as_ref()
    }
}

/// The manifest's connector specification (the generic one when it has none). Needs no config
/// and builds no stream.
pub fn spec(manifest: &Manifest) -> ConnectorSpecification {
    build::spec(manifest.model.spec.as_ref())
}

/// The connector specification of a manifest's typed `spec` (see `sluice_manifest::load_spec`,
/// which reads it without resolving the rest of the manifest); the generic one for `None`.
pub fn spec_of(spec: Option<&sluice_manifest::model::Spec>) -> ConnectorSpecification {
    build::spec(spec)
}

fn failed(message: String) -> AirbyteConnectionStatus {
    AirbyteConnectionStatus {
        status: Status::Failed,
        message: Some(message),
    }
}

/// A config shaped by the manifest's spec (defaults, examples, else values of the declared
/// types): what `sluice validate` builds the streams with.
pub fn sample_config(manifest: &Manifest) -> Value {
    match manifest.resolved.pointer("/spec/connection_specification") {
        Some(spec) => config::sample_config(spec),
        None => Value::Object(Default::default()),
    }
}

/// The spec `source-declarative-manifest` prints without a manifest: a config that carries one.
pub fn generic_spec() -> ConnectorSpecification {
    let connection_specification = serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Low-code source spec",
        "type": "object",
        "required": ["__injected_declarative_manifest"],
        "additionalProperties": true,
        "properties": {
            "__injected_declarative_manifest": {
                "title": "Low-code manifest",
                "type": "object",
                "description": "The low-code manifest that defines the components of the source."
            }
        }
    });
    match connection_specification {
        Value::Object(map) => ConnectorSpecification::new(map),
        _ => unreachable!("a JSON object literal"),
    }
}
