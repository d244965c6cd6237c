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

mod actions;
mod async_job;
mod build;
mod config;
mod config_rules;
mod dynamic;
mod dynamic_schema;
mod error;
mod file_upload;
mod groups;
mod output;
mod progress;
mod query_properties;
mod read;
mod slicing;
mod stream;
mod support;

pub use config::validate_config;
pub use config_rules::{ConfigRules, NormalisedConfig};
pub use error::{EngineError, Locator};
pub use output::{MessageWriter, PendingMessages, RecordData};
pub use progress::{ReadProgress, StreamPhase, StreamSnapshot};
pub use read::ReadLimits;
pub use support::{Problem, Unsupported, manifest_problems, unsupported_components};

use build::StreamSlot;
use dynamic::DynamicStream;
use groups::StreamGroups;
use serde_json::{Map, Value};
use sluice_http::{HyperTransport, Transport};
use sluice_manifest::{Manifest, model};
use sluice_protocol::{
    AirbyteCatalog, AirbyteConnectionStatus, AirbyteMessage, AirbyteStateMessage,
    ConfiguredAirbyteCatalog, ConfiguredAirbyteStream, ConnectorSpecification, DestinationSyncMode,
    FailureType, Status, SyncMode,
};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// How a [`Source`] reaches the outside world.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The folder of the manifest file, for schema files given by relative path.
    pub manifest_dir: Option<PathBuf>,
    /// The manifest file's text: errors of streams that cannot run name its line and column.
    pub manifest_source: Option<Arc<sluice_manifest::ManifestSource>>,
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
    /// Stops each stream of a `read` early, as the Connector Builder's test read does (see
    /// [`ReadLimits`]); none by default.
    pub limits: ReadLimits,
    /// Counters a `read` keeps per stream (records, requests, slices, retries, waits) for a
    /// watcher such as a progress display; `None` counts nothing.
    pub progress: Option<Arc<ReadProgress>>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            manifest_dir: None,
            manifest_source: None,
            transport: Arc::new(HyperTransport::default()),
            messages: PendingMessages::new(),
            max_wait: None,
            checkpoint_every: None,
            concurrency: None,
            limits: ReadLimits::default(),
            progress: None,
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
    /// What the streams share; the streams of `dynamic_streams` are built from it later.
    factory: build::Factory,
    streams: Vec<StreamSlot>,
    /// The streams `dynamic_streams` make, resolved the first time they are needed (the HTTP
    /// resolver reads the API for them), as the reference resolves them whenever it lists its
    /// streams.
    dynamic: tokio::sync::OnceCell<Result<Vec<DynamicStream>, EngineError>>,
    concurrency: usize,
    checkpoint_every: Option<u64>,
    limits: ReadLimits,
    progress: Option<Arc<ReadProgress>>,
    /// The entries of `dynamic_streams` whose resolver sluice cannot run, with the components
    /// it needs: the streams they would make are missing.
    unbuilt_dynamic_streams: Vec<String>,
}

impl Source {
    /// Builds every stream of the manifest. A stream that needs a component sluice cannot run
    /// is kept aside (discover lists it, reading it fails naming the component); a component
    /// sluice cannot run outside the streams fails here, naming it. The streams of
    /// `dynamic_streams` are made when a command first needs them.
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
        let (factory, streams) = build::streams(&manifest, &config, &options)?;
        let checkpoint_every = options.checkpoint_every;
        let limits = options.limits;
        let progress = options.progress.clone();
        let concurrency = match options.concurrency {
            Some(concurrency) => concurrency.max(1),
            None => build::concurrency_level(&manifest, &config)?,
        };
        let unbuilt_dynamic_streams = dynamic::unresolvable(&manifest)
            .into_iter()
            .flat_map(|(_, needs)| needs)
            .map(|u| u.to_string())
            .collect();
        Ok(Self {
            manifest,
            config,
            config_rules,
            migrated_config,
            factory,
            streams,
            dynamic: tokio::sync::OnceCell::new(),
            concurrency,
            checkpoint_every,
            limits,
            progress,
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

    /// The streams of `dynamic_streams`, resolved (reading the API for an HTTP resolver) the
    /// first time they are asked for.
    async fn dynamic_streams(&self) -> Result<&[DynamicStream], EngineError> {
        let resolved = self
            .dynamic
            .get_or_init(|| async {
                for unbuilt in &self.unbuilt_dynamic_streams {
                    tracing::warn!("The streams of this dynamic stream are left out: {unbuilt}");
                }
                dynamic::resolve(&self.manifest, &self.factory).await
            })
            .await;
        match resolved {
            Ok(streams) => Ok(streams),
            Err(error) => Err(error.clone()),
        }
    }

    /// Every stream, in the reference's order: the manifest's `streams`, then those its
    /// `dynamic_streams` make.
    async fn all_streams(&self) -> Result<Vec<&StreamSlot>, EngineError> {
        let dynamic = self.dynamic_streams().await?;
        let all: Vec<&StreamSlot> = self
            .streams
            .iter()
            .chain(dynamic.iter().map(|d| &d.slot))
            .collect();
        // As in the reference, a stream grouped with one of its ancestors fails every command.
        StreamGroups::new(self.manifest.model.stream_groups.as_ref(), &all)?;
        Ok(all)
    }

    /// `check`: the config against the spec, then the spec's config validations and the
    /// manifest's `CheckStream` or `CheckDynamicStream`. As the reference, logs "Check succeeded"
    /// or "Check failed" once the config matched the spec.
    pub async fn check<W: Write + Send + 'static>(
        &self,
        out: &mut MessageWriter<W>,
    ) -> Result<AirbyteConnectionStatus, EngineError> {
        if let Err(error) = self.validate_against_spec() {
            return Ok(failed(error.message));
        }
        let status = match &self.manifest.model.check {
            model::Check::CheckStream(check) => self.check_streams(check).await?,
            model::Check::CheckDynamicStream(check) => {
                self.check_dynamic_streams(check, out).await?
            }
        };
        match status.status {
            Status::Succeeded => tracing::info!("Check succeeded"),
            Status::Failed => tracing::error!("Check failed"),
        }
        Ok(status)
    }

    /// `CheckStream`: reads the first record of each named stream, then of the streams each
    /// `dynamic_streams_check_configs` entry names. Only static streams are built when they
    /// are all it names, as in the reference; otherwise the dynamic streams are resolved, and
    /// failing that fails the check.
    async fn check_streams(
        &self,
        check: &model::CheckStream,
    ) -> Result<AirbyteConnectionStatus, EngineError> {
        if let Err(error) = self.config_rules.validate(&self.config) {
            return Ok(failed(format!(
                "Encountered an error while discovering streams. Error: {}",
                error.message
            )));
        }
        let names = check.stream_names.clone().unwrap_or_default();
        let dynamic_checks = check
            .dynamic_streams_check_configs
            .as_deref()
            .unwrap_or(&[]);
        let all_static = !names.is_empty()
            && names
                .iter()
                .all(|name| self.streams.iter().any(|s| s.name() == name));
        let streams: Vec<&StreamSlot> = if dynamic_checks.is_empty() && all_static {
            self.streams.iter().collect()
        } else {
            match self.all_streams().await {
                Ok(streams) => streams,
                Err(error) => {
                    return Ok(failed(format!(
                        "Encountered an error while discovering streams. Error: {}",
                        error.message
                    )));
                }
            }
        };
        if streams.is_empty() {
            return Ok(failed("No streams to connect to from source".to_owned()));
        }
        for name in &names {
            let Some(stream) = streams.iter().rev().find(|s| s.name() == name) else {
                return Ok(failed(format!(
                    "Check failed: stream '{name}' is not in the manifest"
                )));
            };
            if let Err(reason) = availability(stream).await {
                return Ok(failed(format!(
                    "Unable to connect to stream {name} - {reason}"
                )));
            }
        }
        for dynamic_check in dynamic_checks {
            let wanted = &dynamic_check.dynamic_stream_name;
            let count = self
                .manifest
                .model
                .dynamic_streams
                .as_ref()
                .map_or(0, Vec::len);
            let Some(index) =
                (0..count).find(|i| dynamic::definition_name(&self.manifest, *i) == *wanted)
            else {
                return Ok(failed(format!(
                    "Dynamic stream {wanted} is not found in manifest."
                )));
            };
            if let Some((_, needs)) = dynamic::unresolvable(&self.manifest)
                .into_iter()
                .find(|(i, _)| *i == index)
            {
                let needs: Vec<String> = needs.iter().map(ToString::to_string).collect();
                return Ok(failed(format!(
                    "Dynamic stream {wanted} cannot be made by sluice: {}",
                    needs.join("; ")
                )));
            }
            let generated: Vec<&StreamSlot> = self
                .dynamic_streams()
                .await?
                .iter()
                .filter(|d| d.definition == *wanted)
                .map(|d| &d.slot)
                .collect();
            let end = match dynamic_check.stream_count {
                None => generated.len(),
                Some(count) => python_slice_end(generated.len(), count),
            };
            for stream in &generated[..end] {
                if let Err(reason) = availability(stream).await {
                    return Ok(failed(format!(
                        "Dynamic Stream {} is not available: {reason}",
                        stream.name()
                    )));
                }
            }
        }
        Ok(succeeded())
    }

    /// `CheckDynamicStream`: reads the first record of the first `stream_count` streams, the
    /// manifest's own first, then those its `dynamic_streams` make. Resolving them happens
    /// outside the check proper, as in the reference: a config error fails the check (after
    /// its trace), any other error fails the command.
    async fn check_dynamic_streams<W: Write + Send + 'static>(
        &self,
        check: &model::CheckDynamicStream,
        out: &mut MessageWriter<W>,
    ) -> Result<AirbyteConnectionStatus, EngineError> {
        let count = check.stream_count;
        let use_availability = check.use_check_availability.unwrap_or(true);
        // The config validations run as the streams are listed, outside the check proper.
        let listed = match self.config_rules.validate(&self.config) {
            Ok(()) => self.all_streams().await,
            Err(error) => Err(error),
        };
        let all = match listed {
            Ok(all) => all,
            Err(error) if error.failure_type == FailureType::ConfigError => {
                let trace = AirbyteMessage::error_trace(
                    error.message.clone(),
                    error.internal_message.clone(),
                    error.failure_type,
                    None,
                );
                out.message(&trace)
                    .map_err(|e| EngineError::system(format!("cannot write to stdout: {e}")))?;
                return Ok(failed(error.message));
            }
            Err(error) => return Err(error),
        };
        let streams = if use_availability && count >= 1 {
            &all[..python_slice_end(all.len(), count)]
        } else {
            &all[..]
        };
        if streams.is_empty() {
            return Ok(failed("No streams to connect to from source".to_owned()));
        }
        if !use_availability {
            return Ok(succeeded());
        }
        for stream in &streams[..python_slice_end(streams.len(), count)] {
            if let Err(reason) = availability(stream).await {
                return Ok(failed(format!(
                    "Stream {} is not available: {reason}",
                    stream.name()
                )));
            }
        }
        Ok(succeeded())
    }

    /// `discover`: one catalog entry per stream, the manifest's own then those its
    /// `dynamic_streams` make. A stream with a `DynamicSchemaLoader` reads its schema from the
    /// API here.
    pub async fn discover(&self) -> Result<AirbyteCatalog, EngineError> {
        let all = self.all_streams().await?;
        let mut streams = Vec::with_capacity(all.len());
        for slot in all {
            streams.push(match slot {
                StreamSlot::Ready(stream) => stream.discover_entry().await?,
                StreamSlot::Unrunnable(unrunnable) => unrunnable.entry.clone(),
            });
        }
        Ok(AirbyteCatalog { streams })
    }

    /// The streams known without reaching the API: the manifest's own, and those of
    /// `dynamic_streams` once a command has resolved them.
    fn known_streams(&self) -> impl Iterator<Item = &StreamSlot> {
        let dynamic = match self.dynamic.get() {
            Some(Ok(dynamic)) => &dynamic[..],
            _ => &[],
        };
        self.streams.iter().chain(dynamic.iter().map(|d| &d.slot))
    }

    /// A configured catalog that reads every stream in full refresh (for tools and examples).
    /// The streams of `dynamic_streams` are in it once a command has resolved them.
    pub fn configured_catalog_all_full_refresh(&self) -> ConfiguredAirbyteCatalog {
        let streams = self
            .known_streams()
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

    /// `read`: the configured streams, with their state, into `out`. The streams of
    /// `dynamic_streams` are resolved first, whichever streams the catalog selects, as in the
    /// reference.
    pub async fn read<W: Write + Send + 'static>(
        &self,
        catalog: &ConfiguredAirbyteCatalog,
        state: &[AirbyteStateMessage],
        out: &mut MessageWriter<W>,
    ) -> Result<(), EngineError> {
        let options = read::ReadOptions {
            concurrency: self.concurrency,
            checkpoint_every: self.checkpoint_every,
            limits: self.limits,
            locator: error::Locator::new(self.factory.manifest_source(), &self.manifest.resolved),
            progress: self.progress.clone(),
        };
        let streams = self.all_streams().await?;
        let groups = StreamGroups::new(self.manifest.model.stream_groups.as_ref(), &streams)?;
        read::read(
            &streams,
            groups,
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

    /// The streams sluice cannot run, each with the reason (the components it needs): the
    /// manifest's own, and those of `dynamic_streams` once a command has resolved them.
    pub fn unrunnable_streams(&self) -> Vec<(&str, &EngineError)> {
        self.known_streams()
            .filter_map(|slot| match slot {
                StreamSlot::Unrunnable(u) => Some((u.name.as_str(), &u.error)),
                StreamSlot::Ready(_) => None,
            })
            .collect()
    }

    /// Every secret to keep out of anything written: the config values the spec marks
    /// `airbyte_secret`, and what the authenticators hold or have obtained so far (keys,
    /// passwords, tokens, session ids, signed JWTs). A recorded cassette redacts them.
    pub fn secrets(&self) -> Vec<String> {
        self.factory.secrets()
    }

    /// [`Self::secrets`] as they are at each call, also after the source is gone: what masks
    /// every log line, as tokens keep arriving during a sync.
    pub fn secret_list(&self) -> impl Fn() -> Vec<String> + Send + Sync + 'static {
        self.factory.secret_list()
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

/// Whether a stream can be read, as the reference's `check_availability` tells: its first
/// slice's first page reads (an empty one is fine); the reason when not.
async fn availability(stream: &StreamSlot) -> Result<(), String> {
    match stream {
        StreamSlot::Ready(stream) => read::first_record(stream)
            .await
            .map_err(|e| e.internal_message.unwrap_or(e.message)),
        StreamSlot::Unrunnable(unrunnable) => Err(unrunnable.error.message.clone()),
    }
}

/// Where Python's `items[:count]` ends.
fn python_slice_end(len: usize, count: i64) -> usize {
    match usize::try_from(count) {
        Ok(count) => count.min(len),
        Err(_) => len.saturating_sub(usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)),
    }
}

fn succeeded() -> AirbyteConnectionStatus {
    AirbyteConnectionStatus {
        status: Status::Succeeded,
        message: None,
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
