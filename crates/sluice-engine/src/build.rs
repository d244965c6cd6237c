//! Builds runtime streams from the typed model (the reference's component factory).
//!
//! Every error names the manifest path of the component it comes from.

use crate::actions::{RetrieverContext, reject_actions, retriever_actions};
use crate::async_job::{AsyncRetriever, DEFAULT_MAX_ATTEMPTS, JobClock, JobTracker, StatusMap};
use crate::dynamic_schema::{
    DynamicSchema, DynamicSchemaLoader, SchemaLoad, SchemaPart, SelectorRecipe, combine_schemas,
};
use crate::file_upload::FileUploader;
use crate::query_properties::QueryProperties;
use crate::slicing::{CursorSpec, Parent, Router, Slicing};
use crate::stream::{Delegation, Retriever, SchemaSource, Stream, StreamRetriever};
use crate::support::{Unsupported, refuse_outside_streams, unsupported_components};
use crate::{EngineError, SourceOptions};
use serde_json::{Map, Value};
use sluice_http::auth::{AuthContext, Authenticator};
use sluice_http::{ApiBudget, CachingTransport, DEFAULT_CACHE_BYTES, Requester, ResponseCache};
use sluice_interp::{Context, Template};
use sluice_manifest::model::{self, StreamEntry};
use sluice_manifest::{Manifest, ManifestPath};
use sluice_paginate::{PaginationResetPolicy, Paginator};
use sluice_protocol::ConnectorSpecification;
use sluice_protocol::{AirbyteMessage, FailureType, SyncMode};
use sluice_records::{Decoder, Extractor, Parser, RecordSelector};
use sluice_slice::datetime::IsoDuration;
use sluice_slice::{
    CountSpec, DatetimeSpec, GroupingRouter, ListRouter, ParentConfig, SliceError, UnionRouter,
};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Everything a component needs while it is built.
pub(crate) struct Builder<'a> {
    config: &'a Arc<Value>,
    options: &'a SourceOptions,
    /// Shared by every authenticator: token refreshes and config rotations happen once.
    auth: &'a AuthContext,
    /// The manifest's `api_budget`, shared by every requester.
    budget: Option<ApiBudget>,
    /// The config's secret values, masked in every message.
    config_secrets: Arc<Vec<String>>,
    /// Streams that are the parent of another: their responses are cached, so a parent read
    /// by several children (or also selected) is fetched once.
    parent_names: HashSet<String>,
    parent_cache: Arc<ResponseCache>,
    /// The limit on async jobs running at once, shared by every stream.
    job_tracker: &'a Arc<JobTracker>,
    job_clock: &'a Arc<JobClock>,
}

fn at(path: &ManifestPath, message: impl std::fmt::Display) -> EngineError {
    EngineError::in_manifest(path, message)
}

/// A stream of the manifest: ready to read, or one sluice cannot run, with the reason.
#[derive(Debug)]
pub(crate) enum StreamSlot {
    Ready(Box<Stream>),
    Unrunnable(Box<Unrunnable>),
}

/// A stream sluice cannot run: what `discover` still says about it, and why reading it fails.
#[derive(Debug)]
pub(crate) struct Unrunnable {
    pub name: String,
    pub entry: sluice_protocol::AirbyteStream,
    pub error: EngineError,
}

impl StreamSlot {
    pub fn name(&self) -> &str {
        match self {
            StreamSlot::Ready(stream) => &stream.name,
            StreamSlot::Unrunnable(unrunnable) => &unrunnable.name,
        }
    }
}

/// What the streams of a source share, kept for as long as the source: the streams of
/// `dynamic_streams` are built from it when they are resolved (at `discover`, `read` or `check`),
/// sharing the authenticators' state, the API budget and the parents' response cache with the
/// manifest's own streams.
#[derive(Debug)]
pub(crate) struct Factory {
    config: Arc<Value>,
    options: SourceOptions,
    /// Shared by every authenticator: token refreshes and config rotations happen once.
    auth: AuthContext,
    /// The manifest's `api_budget`, shared by every requester.
    budget: Option<ApiBudget>,
    /// The config's secret values, masked in every message.
    config_secrets: Arc<Vec<String>>,
    parent_cache: Arc<ResponseCache>,
    /// `max_concurrent_async_job_count`: async jobs running at once across the source.
    job_tracker: Arc<JobTracker>,
    job_clock: Arc<JobClock>,
}

impl Factory {
    /// What the streams of `manifest` share. A component sluice cannot run outside the streams,
    /// `dynamic_streams` and `check` refuses the whole manifest here, naming it.
    pub fn new(
        manifest: &Manifest,
        config: &Arc<Value>,
        options: &SourceOptions,
    ) -> Result<Self, EngineError> {
        refuse_outside_streams(&unsupported_components(manifest))?;
        let auth = AuthContext::new(Arc::clone(config), Arc::clone(&options.transport))
            .with_xml_decoder(Arc::new(sluice_records::decode_xml_body));
        let messages = Arc::clone(&options.messages);
        auth.on_config_update(move |updated| {
            if let Value::Object(config) = updated {
                messages.push(AirbyteMessage::control_config(config.clone()));
            }
        });
        let budget = match &manifest.model.api_budget {
            Some(budget) => Some(
                ApiBudget::from_model(budget, config, &ManifestPath::root().key("api_budget"))
                    .map_err(|e| EngineError::config(e.to_string()))?,
            ),
            None => None,
        };
        // Without a spec, the values under credentials' names are still secret.
        let spec = manifest
            .resolved
            .pointer("/spec/connection_specification")
            .unwrap_or(&Value::Null);
        let config_secrets = sluice_http::cassette::config_secrets(spec, config);
        Ok(Self {
            config: Arc::clone(config),
            options: options.clone(),
            auth,
            budget,
            config_secrets: Arc::new(config_secrets),
            parent_cache: ResponseCache::new(DEFAULT_CACHE_BYTES),
            job_tracker: Arc::new(JobTracker::new(max_concurrent_async_jobs(manifest))),
            job_clock: Arc::new(JobClock::default()),
        })
    }

    /// The config the streams are built with.
    pub fn config(&self) -> &Arc<Value> {
        &self.config
    }

    /// A builder whose streams named in `parent_names` cache their responses.
    /// The manifest file's text, when the manifest is a file.
    /// The config's secrets and every secret the authenticators hold or have obtained so far.
    pub(crate) fn secrets(&self) -> Vec<String> {
        (self.secret_list())()
    }

    /// [`Self::secrets`] as of each call, for as long as the caller likes.
    pub(crate) fn secret_list(&self) -> impl Fn() -> Vec<String> + Send + Sync + 'static {
        let config_secrets = Arc::clone(&self.config_secrets);
        let auth = self.auth.clone();
        move || {
            let mut secrets = config_secrets.to_vec();
            secrets.extend(auth.secrets());
            secrets
        }
    }

    pub(crate) fn manifest_source(&self) -> Option<&Arc<sluice_manifest::ManifestSource>> {
        self.options.manifest_source.as_ref()
    }

    pub(crate) fn builder(&self, parent_names: HashSet<String>) -> Builder<'_> {
        Builder {
            config: &self.config,
            options: &self.options,
            auth: &self.auth,
            budget: self.budget.clone(),
            config_secrets: Arc::clone(&self.config_secrets),
            parent_names,
            parent_cache: Arc::clone(&self.parent_cache),
            job_tracker: &self.job_tracker,
            job_clock: &self.job_clock,
        }
    }

    /// Builds every stream of the manifest's `streams`. A stream that needs a component sluice
    /// cannot run becomes [`StreamSlot::Unrunnable`], so the others still run. The streams of a
    /// `ConditionalStreams` are built when its condition holds for the config.
    pub fn streams(&self, manifest: &Manifest) -> Result<Vec<StreamSlot>, EngineError> {
        self.streams_where(manifest, false)
    }

    /// [`Factory::streams`], with every `ConditionalStreams` taken as holding when
    /// `every_condition_holds` (so `validate` checks the streams of both outcomes).
    pub(crate) fn streams_where(
        &self,
        manifest: &Manifest,
        every_condition_holds: bool,
    ) -> Result<Vec<StreamSlot>, EngineError> {
        let unsupported = unsupported_components(manifest);
        let builder = self.builder(parent_stream_names(manifest.model.streams.iter().flatten()));
        let mut streams = Vec::new();
        for (entry, path) in self.streams_in_effect(manifest, every_condition_holds)? {
            let missing: Vec<&Unsupported> = unsupported
                .iter()
                .filter(|u| u.path.is_within(&path))
                .collect();
            let built = if !missing.is_empty() {
                Err(cannot_run_stream(&missing))
            } else {
                match entry {
                    InEffect::Declarative(stream) => builder.stream(stream, &path),
                    InEffect::Delegating(delegating) => {
                        builder.state_delegating_stream(delegating, &path)
                    }
                }
            };
            streams.push(match built {
                Ok(stream) => StreamSlot::Ready(Box::new(stream)),
                Err(error) if !missing.is_empty() => {
                    StreamSlot::Unrunnable(Box::new(unrunnable(entry, &builder, &path, error)))
                }
                // A stream the reference cannot build either refuses the whole manifest, as in
                // the reference (where it is a system error, raised while building).
                Err(error) => {
                    return Err(EngineError {
                        failure_type: FailureType::SystemError,
                        ..error
                    });
                }
            });
        }
        Ok(streams)
    }
}

/// A stream of the manifest's `streams` that is in effect for the config.
#[derive(Clone, Copy)]
enum InEffect<'m> {
    Declarative(&'m model::DeclarativeStream),
    Delegating(&'m model::StateDelegatingStream),
}

impl Factory {
    /// The manifest's streams with their paths, a `ConditionalStreams` giving its own streams
    /// (`streams[i].streams[j]`) when its condition holds for the config, none otherwise. As in
    /// the reference, the condition reads the config only (its `$parameters` are not given).
    fn streams_in_effect<'m>(
        &self,
        manifest: &'m Manifest,
        every_condition_holds: bool,
    ) -> Result<Vec<(InEffect<'m>, ManifestPath)>, EngineError> {
        let root = ManifestPath::root().key("streams");
        let mut in_effect = Vec::new();
        for (index, entry) in manifest.model.streams.iter().flatten().enumerate() {
            let path = root.index(index);
            match entry {
                StreamEntry::DeclarativeStream(stream) => {
                    in_effect.push((InEffect::Declarative(stream), path));
                }
                StreamEntry::StateDelegatingStream(delegating) => {
                    in_effect.push((InEffect::Delegating(delegating), path));
                }
                StreamEntry::ConditionalStreams(conditional) => {
                    let at_condition = path.key("condition");
                    let holds = every_condition_holds || {
                        let condition =
                            sluice_interp::InterpolatedBoolean::new(&conditional.condition)
                                .map_err(|e| at(&at_condition, e))?;
                        let no_parameters = Value::Object(Map::new());
                        let ctx = Context::new()
                            .config(&*self.config)
                            .parameters(&no_parameters);
                        condition.eval(&ctx).map_err(|e| at(&at_condition, e))?
                    };
                    if holds {
                        for (inner, stream) in conditional.streams.iter().enumerate() {
                            in_effect.push((
                                InEffect::Declarative(stream),
                                path.key("streams").index(inner),
                            ));
                        }
                    }
                }
            }
        }
        Ok(in_effect)
    }
}

/// Builds every stream of the manifest's `streams` (see [`Factory::streams`]), with what they
/// share.
pub(crate) fn streams(
    manifest: &Manifest,
    config: &Arc<Value>,
    options: &SourceOptions,
) -> Result<(Factory, Vec<StreamSlot>), EngineError> {
    let factory = Factory::new(manifest, config, options)?;
    let streams = factory.streams(manifest)?;
    Ok((factory, streams))
}

/// What `discover` can say of a stream that cannot run: its name, its schema when it is
/// written in the manifest, and its sync modes.
/// The error of a stream that needs components sluice cannot run, about the first of them.
pub(crate) fn cannot_run_stream(missing: &[&Unsupported]) -> EngineError {
    let listed: Vec<String> = missing.iter().map(ToString::to_string).collect();
    EngineError {
        path: missing.first().map(|u| u.path.clone()),
        ..EngineError::config(format!(
            "sluice cannot run this stream: {}",
            listed.join("; ")
        ))
    }
}

fn unrunnable(
    entry: InEffect<'_>,
    builder: &Builder<'_>,
    path: &ManifestPath,
    error: EngineError,
) -> Unrunnable {
    let (name, stream) = match entry {
        InEffect::Declarative(stream) => (stream.name.clone().unwrap_or_default(), stream),
        InEffect::Delegating(stream) => (stream.name.clone(), &stream.full_refresh_stream),
    };
    builder.unrunnable(name, Some(stream), path, error)
}

impl Builder<'_> {
    /// The user's config, as templates see it.
    pub(crate) fn config(&self) -> &Arc<Value> {
        self.config
    }

    /// What `discover` can say of a stream named `name` that cannot run (`stream` is its model,
    /// or its full refresh stream's): its schema when it is written in the manifest, and its
    /// sync modes.
    pub(crate) fn unrunnable(
        &self,
        name: String,
        stream: Option<&model::DeclarativeStream>,
        path: &ManifestPath,
        error: EngineError,
    ) -> Unrunnable {
        let schema = stream
            .and_then(|s| {
                let parameters = parameters_value(s.parameters.as_ref());
                match self.schema(s, &name, &parameters, &path.key("schema_loader")) {
                    Ok(SchemaSource::Static(schema)) => Some(schema),
                    _ => None,
                }
            })
            .unwrap_or_default();
        let incremental = stream.is_some_and(|s| s.incremental_sync.is_some());
        let modes = if incremental {
            vec![SyncMode::FullRefresh, SyncMode::Incremental]
        } else {
            vec![SyncMode::FullRefresh]
        };
        let mut entry = sluice_protocol::AirbyteStream::new(&name, schema, modes);
        entry.is_resumable = Some(incremental);
        entry.is_file_based = Some(false);
        // Reading it fails with this error, which names the line of the component at fault.
        let error = match &self.options.manifest_source {
            Some(source) => error.locate_in(source, |_| false),
            None => error,
        };
        Unrunnable { name, entry, error }
    }

    pub(crate) fn stream(
        &self,
        stream: &model::DeclarativeStream,
        path: &ManifestPath,
    ) -> Result<Stream, EngineError> {
        let name = stream.name.clone().unwrap_or_default();
        let parameters = parameters_value(stream.parameters.as_ref());
        let primary_key = match &stream.primary_key {
            None => Vec::new(),
            Some(model::PrimaryKey::String(key)) if key.is_empty() => Vec::new(),
            Some(model::PrimaryKey::String(key)) => vec![vec![key.clone()]],
            Some(model::PrimaryKey::List(keys)) => keys.iter().map(|k| vec![k.clone()]).collect(),
            Some(model::PrimaryKey::ListOfLists(keys)) => keys.clone(),
        };
        let schema = self.schema(stream, &name, &parameters, &path.key("schema_loader"))?;
        // A dynamic schema is not known yet: records are not normalised by it.
        let no_schema = Map::new();
        let json_schema = match &schema {
            SchemaSource::Static(schema) => schema,
            SchemaSource::Dynamic(_) => &no_schema,
        };
        let slicing = self.slicing(stream, &name, path)?;
        let transformations = stream.transformations.as_deref().unwrap_or(&[]);
        let retriever = match &stream.retriever {
            model::Retriever::SimpleRetriever(r) => {
                let mut retriever = self.simple_retriever(
                    &with_cursor_defaults(r, &slicing),
                    transformations,
                    json_schema,
                    path,
                    &path.key("retriever"),
                )?;
                let reads_parent_lazily = matches!(
                    &r.partition_router,
                    Some(model::StreamPartitionRouter::SubstreamPartitionRouter(router))
                        if router.parent_stream_configs.iter().any(|parent| {
                            parent.lazy_read_pointer.as_ref().is_some_and(|p| !p.is_empty())
                        })
                );
                let context = RetrieverContext {
                    stream: &name,
                    incremental_sync: stream.incremental_sync.as_ref(),
                    has_file_uploader: stream.file_uploader.is_some(),
                    reads_parent_lazily,
                    is_stream: true,
                };
                self.with_actions(&mut retriever, r, &context, &path.key("retriever"))?;
                if let Some(uploader) = &stream.file_uploader {
                    retriever.file_uploader =
                        Some(self.file_uploader(uploader, &name, &path.key("file_uploader"))?);
                }
                let caches = match &r.requester {
                    model::Requester::HttpRequester(h) => h.use_cache != Some(false),
                    model::Requester::CustomRequester(_) => false,
                };
                if caches && self.parent_names.contains(&name) {
                    let transport = Arc::clone(&retriever.requester.transport);
                    retriever.requester.transport = Arc::new(CachingTransport::new(
                        transport,
                        Arc::clone(&self.parent_cache),
                    ));
                }
                StreamRetriever::Simple(Box::new(retriever))
            }
            model::Retriever::AsyncRetriever(r) => StreamRetriever::Async(Box::new(
                self.async_retriever(r, &slicing, transformations, json_schema, &name, path)?,
            )),
            model::Retriever::CustomRetriever(_) => {
                return Err(at(
                    &path.key("retriever"),
                    "custom retrievers cannot run in sluice",
                ));
            }
        };
        Ok(Stream {
            name,
            primary_key,
            schema,
            retriever,
            slicing,
            with_state: None,
        })
    }

    /// A `StateDelegatingStream`: its full refresh stream, reading its incremental stream
    /// instead once there is state.
    pub(crate) fn state_delegating_stream(
        &self,
        delegating: &model::StateDelegatingStream,
        path: &ManifestPath,
    ) -> Result<Stream, EngineError> {
        let full_refresh_name = delegating
            .full_refresh_stream
            .name
            .as_deref()
            .unwrap_or_default();
        let incremental_name = delegating
            .incremental_stream
            .name
            .as_deref()
            .unwrap_or_default();
        if full_refresh_name != delegating.name || incremental_name != delegating.name {
            return Err(at(
                path,
                format!(
                    "state_delegating_stream, full_refresh_stream name and incremental_stream must have equal names. Instead has {}, {full_refresh_name} and {incremental_name}.",
                    delegating.name
                ),
            ));
        }
        let retention = match delegating.api_retention_period.as_deref() {
            Some(source) if !source.is_empty() => {
                let at_retention = path.key("api_retention_period");
                let parameters = parameters_value(delegating.parameters.as_ref());
                let ctx = Context::new()
                    .config(&**self.config)
                    .parameters(&parameters);
                let text = compile(source, &at_retention)?
                    .render_string(&ctx)
                    .map_err(|e| at(&at_retention, e))?;
                if text.is_empty() {
                    None
                } else {
                    Some(IsoDuration::parse(&text).map_err(|e| at(&at_retention, e))?)
                }
            }
            _ => None,
        };
        let mut stream = self.stream(
            &delegating.full_refresh_stream,
            &path.key("full_refresh_stream"),
        )?;
        let incremental = self.stream(
            &delegating.incremental_stream,
            &path.key("incremental_stream"),
        )?;
        if retention.is_some()
            && [&stream, &incremental]
                .iter()
                .any(|s| matches!(s.slicing.cursor, CursorSpec::Count(_)))
        {
            return Err(at(
                path,
                format!(
                    "Stream '{}' uses IncrementingCountCursor which is not supported with api_retention_period. IncrementingCountCursor does not use datetime-based cursors, so cursor age validation cannot be performed.",
                    delegating.name
                ),
            ));
        }
        stream.with_state = Some(Delegation {
            incremental: Box::new(incremental),
            retention,
        });
        Ok(stream)
    }

    /// The stream's partition router, incremental cursor and state migrations.
    fn slicing(
        &self,
        stream: &model::DeclarativeStream,
        name: &str,
        path: &ManifestPath,
    ) -> Result<Slicing, EngineError> {
        let partition_router = match &stream.retriever {
            model::Retriever::SimpleRetriever(retriever) => retriever.partition_router.as_ref(),
            model::Retriever::AsyncRetriever(retriever) => retriever.partition_router.as_ref(),
            model::Retriever::CustomRetriever(_) => None,
        };
        let router = match partition_router {
            None => Router::Single,
            Some(router) => {
                self.stream_router(router, &path.key("retriever").key("partition_router"), name)?
            }
        };
        let cursor_path = path.key("incremental_sync");
        let cursor = match &stream.incremental_sync {
            None => CursorSpec::None,
            Some(model::IncrementalSync::DatetimeBasedCursor(cursor)) => {
                CursorSpec::Datetime(Arc::new(
                    DatetimeSpec::from_model(cursor, name, self.config, &cursor_path)
                        .map_err(slice_error)?,
                ))
            }
            Some(model::IncrementalSync::IncrementingCountCursor(cursor)) => {
                if !matches!(router, Router::Single) {
                    return Err(at(
                        &cursor_path,
                        format!(
                            "The low-code framework does not currently support usage of a PartitionRouter and an IncrementingCountCursor at the same time. Please specify only one of these options for stream {name}."
                        ),
                    ));
                }
                CursorSpec::Count(Arc::new(
                    CountSpec::from_model(cursor, name, self.config, &cursor_path)
                        .map_err(slice_error)?,
                ))
            }
        };
        let mut legacy_state_partition_field = None;
        for (index, migration) in stream.state_migrations.iter().flatten().enumerate() {
            let at_migration = path.key("state_migrations").index(index);
            match migration {
                model::StateMigration::LegacyToPerPartitionStateMigration(_) => {
                    let Router::Substream(parents) = &router else {
                        return Err(at(
                            &at_migration,
                            "LegacyToPerPartitionStateMigration needs a SubstreamPartitionRouter",
                        ));
                    };
                    if !matches!(cursor, CursorSpec::Datetime(_)) {
                        return Err(at(
                            &at_migration,
                            "LegacyToPerPartitionStateMigration needs a DatetimeBasedCursor",
                        ));
                    }
                    // The reference migrates only with exactly one parent.
                    if let [parent] = parents.as_slice() {
                        legacy_state_partition_field = Some(parent.config.partition_field.clone());
                    }
                }
                model::StateMigration::CustomStateMigration(_) => {
                    return Err(at(
                        &at_migration,
                        "custom state migrations cannot run in sluice",
                    ));
                }
            }
        }
        Ok(Slicing {
            router,
            cursor,
            legacy_state_partition_field,
        })
    }

    fn stream_router(
        &self,
        router: &model::StreamPartitionRouter,
        path: &ManifestPath,
        stream: &str,
    ) -> Result<Router, EngineError> {
        use model::StreamPartitionRouter as R;
        match router {
            R::ListPartitionRouter(list) => self.list_router(list, path),
            R::SubstreamPartitionRouter(substream) => self.substream_router(substream, path),
            R::GroupingPartitionRouter(grouping) => self.grouping_router(grouping, path, stream),
            R::List(routers) => {
                let mut built = Vec::with_capacity(routers.len());
                for (index, router) in routers.iter().enumerate() {
                    built.push(self.partition_router(router, &path.index(index), stream)?);
                }
                Ok(Router::Product(built))
            }
            R::UnionPartitionRouter(union) => self.union_router(union, path, stream),
            R::CustomPartitionRouter(_) => {
                Err(at(path, "this partition router is not supported yet"))
            }
        }
    }

    fn underlying_router(
        &self,
        router: &model::UnderlyingPartitionRouter,
        path: &ManifestPath,
        stream: &str,
    ) -> Result<Router, EngineError> {
        use model::UnderlyingPartitionRouter as U;
        match router {
            U::ListPartitionRouter(list) => self.list_router(list, path),
            U::SubstreamPartitionRouter(substream) => self.substream_router(substream, path),
            U::UnionPartitionRouter(union) => self.union_router(union, path, stream),
            U::CustomPartitionRouter(_) => {
                Err(at(path, "this partition router is not supported yet"))
            }
        }
    }

    /// A `UnionPartitionRouter`: its children, which must all emit its partition field and put
    /// nothing into requests (a union's partition comes from one child, so a child's request
    /// option could not apply to it consistently).
    fn union_router(
        &self,
        union: &model::UnionPartitionRouter,
        path: &ManifestPath,
        stream: &str,
    ) -> Result<Router, EngineError> {
        let at_children = path.key("partition_routers");
        let mut children = Vec::with_capacity(union.partition_routers.len());
        let mut child_fields = Vec::new();
        for (index, child) in union.partition_routers.iter().enumerate() {
            let built = self.underlying_router(child, &at_children.index(index), stream)?;
            match &built {
                Router::List(list) => child_fields.push((list.key.clone(), "ListPartitionRouter")),
                Router::Substream(parents) => child_fields.extend(
                    parents
                        .iter()
                        .map(|p| (p.config.partition_field.clone(), "SubstreamPartitionRouter")),
                ),
                Router::Union(union, _) => {
                    child_fields.push((union.field.clone(), "UnionPartitionRouter"));
                }
                _ => {}
            }
            children.push(built);
        }
        let own = UnionRouter::from_model(union, &child_fields, self.config, stream, path)
            .map_err(slice_error)?;
        let injects = children.iter().any(|child| match child {
            Router::List(list) => list.has_request_option(),
            Router::Substream(parents) => parents.iter().any(|p| p.config.has_request_option()),
            _ => false,
        });
        if injects {
            return Err(at(
                path,
                "Request options are not supported for UnionPartitionRouter.",
            ));
        }
        Ok(Router::Union(own, children))
    }

    fn partition_router(
        &self,
        router: &model::PartitionRouter,
        path: &ManifestPath,
        stream: &str,
    ) -> Result<Router, EngineError> {
        use model::PartitionRouter as R;
        match router {
            R::ListPartitionRouter(list) => self.list_router(list, path),
            R::SubstreamPartitionRouter(substream) => self.substream_router(substream, path),
            R::GroupingPartitionRouter(grouping) => self.grouping_router(grouping, path, stream),
            R::UnionPartitionRouter(union) => self.union_router(union, path, stream),
            R::CustomPartitionRouter(_) => {
                Err(at(path, "this partition router is not supported yet"))
            }
        }
    }

    fn list_router(
        &self,
        list: &model::ListPartitionRouter,
        path: &ManifestPath,
    ) -> Result<Router, EngineError> {
        Ok(Router::List(
            ListRouter::from_model(list, self.config, path).map_err(slice_error)?,
        ))
    }

    fn grouping_router(
        &self,
        grouping: &model::GroupingPartitionRouter,
        path: &ManifestPath,
        stream: &str,
    ) -> Result<Router, EngineError> {
        let inner_path = path.key("underlying_partition_router");
        let inner =
            self.underlying_router(&grouping.underlying_partition_router, &inner_path, stream)?;
        // Request options belong to single partitions, which a group no longer is.
        let injects = match &inner {
            Router::List(list) => list.has_request_option(),
            Router::Substream(parents) => parents.iter().any(|p| p.config.has_request_option()),
            _ => false,
        };
        if injects {
            return Err(at(
                &inner_path,
                "Request options are not supported for GroupingPartitionRouter.",
            ));
        }
        let grouping = GroupingRouter::from_model(grouping, path).map_err(slice_error)?;
        Ok(Router::Grouping(grouping, Box::new(inner)))
    }

    fn substream_router(
        &self,
        substream: &model::SubstreamPartitionRouter,
        path: &ManifestPath,
    ) -> Result<Router, EngineError> {
        let mut parents = Vec::with_capacity(substream.parent_stream_configs.len());
        for (index, parent) in substream.parent_stream_configs.iter().enumerate() {
            let at_parent = path.key("parent_stream_configs").index(index);
            let stream_path = at_parent.key("stream");
            // A StateDelegatingStream parent is read as its incremental stream once the child
            // keeps state for it (`incremental_dependency`), else as its full refresh stream.
            let stream = match &parent.stream {
                model::Stream::DeclarativeStream(declarative) => {
                    self.stream(declarative, &stream_path)?
                }
                model::Stream::StateDelegatingStream(delegating) => {
                    self.state_delegating_stream(delegating, &stream_path)?
                }
            };
            let config = ParentConfig::from_model(parent, &stream.name, self.config, &at_parent)
                .map_err(slice_error)?;
            parents.push(Parent {
                config,
                stream: Box::new(stream),
            });
        }
        Ok(Router::Substream(parents))
    }

    fn schema(
        &self,
        stream: &model::DeclarativeStream,
        name: &str,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<SchemaSource, EngineError> {
        match &stream.schema_loader {
            None => Ok(SchemaSource::Static(
                self.schema_file(None, name, parameters, path)
                    .unwrap_or_default(),
            )),
            Some(model::StreamSchemaLoader::InlineSchemaLoader(inline)) => Ok(
                SchemaSource::Static(inline.schema.clone().unwrap_or_default()),
            ),
            Some(model::StreamSchemaLoader::JsonFileSchemaLoader(file)) => {
                Ok(SchemaSource::Static(self.schema_file(
                    file.file_path.as_deref(),
                    name,
                    parameters,
                    path,
                )?))
            }
            Some(model::StreamSchemaLoader::DynamicSchemaLoader(loader)) => {
                let loader = SchemaLoad::One(Box::new(self.dynamic_schema(loader, name, path)?));
                Ok(self.loaded_schema(stream, loader, path))
            }
            Some(model::StreamSchemaLoader::List(loaders)) => {
                let mut parts = Vec::with_capacity(loaders.len());
                for (index, loader) in loaders.iter().enumerate() {
                    let at_loader = path.index(index);
                    parts.push(match loader {
                        model::SchemaLoader::InlineSchemaLoader(inline) => {
                            SchemaPart::Static(inline.schema.clone().unwrap_or_default())
                        }
                        model::SchemaLoader::JsonFileSchemaLoader(file) => {
                            SchemaPart::Static(self.schema_file(
                                file.file_path.as_deref(),
                                name,
                                parameters,
                                &at_loader,
                            )?)
                        }
                        model::SchemaLoader::DynamicSchemaLoader(loader) => SchemaPart::Loaded(
                            Box::new(self.dynamic_schema(loader, name, &at_loader)?),
                        ),
                        model::SchemaLoader::CustomSchemaLoader(_) => {
                            return Err(at(&at_loader, "a custom schema loader cannot run"));
                        }
                    });
                }
                if parts.iter().all(|p| matches!(p, SchemaPart::Static(_))) {
                    let schemas = parts
                        .into_iter()
                        .filter_map(|part| match part {
                            SchemaPart::Static(schema) => Some(schema),
                            SchemaPart::Loaded(_) => None,
                        })
                        .collect();
                    return Ok(SchemaSource::Static(
                        combine_schemas(schemas).map_err(|e| at(path, e.message))?,
                    ));
                }
                Ok(self.loaded_schema(stream, SchemaLoad::Composite(parts), path))
            }
            Some(_) => Err(at(path, "this schema loader is not supported yet")),
        }
    }

    /// A schema loaded from the API when asked for, with how to rebuild the stream's record
    /// selector around it.
    fn loaded_schema(
        &self,
        stream: &model::DeclarativeStream,
        loader: SchemaLoad,
        path: &ManifestPath,
    ) -> SchemaSource {
        let normalizing_selector = match &stream.retriever {
            model::Retriever::SimpleRetriever(retriever)
                if SelectorRecipe::normalizes(&retriever.record_selector) =>
            {
                Some(SelectorRecipe {
                    record_selector: retriever.record_selector.clone(),
                    decoder: retriever.decoder.clone(),
                    transformations: stream.transformations.clone().unwrap_or_default(),
                    config: Arc::clone(self.config),
                    path: stream_path(path),
                })
            }
            _ => None,
        };
        SchemaSource::Dynamic(Box::new(DynamicSchema {
            loader,
            normalizing_selector,
        }))
    }

    /// A DynamicSchemaLoader with its own SimpleRetriever, which (as in the reference) applies
    /// no stream transformations and normalises by no schema.
    fn dynamic_schema(
        &self,
        loader: &model::DynamicSchemaLoader,
        name: &str,
        path: &ManifestPath,
    ) -> Result<DynamicSchemaLoader, EngineError> {
        let retriever_path = path.key("retriever");
        let model::Retriever::SimpleRetriever(retriever) = &loader.retriever else {
            return Err(at(
                &retriever_path,
                "only a SimpleRetriever can load a dynamic schema in sluice",
            ));
        };
        // The loader's retriever: no stream transformations, no schema to normalise by.
        let mut built =
            self.simple_retriever(retriever, &[], &Map::new(), path, &retriever_path)?;
        let context = RetrieverContext {
            stream: name,
            incremental_sync: None,
            has_file_uploader: false,
            reads_parent_lazily: false,
            is_stream: false,
        };
        self.with_actions(&mut built, retriever, &context, &retriever_path)?;
        let retriever = built;
        DynamicSchemaLoader::from_model(loader, retriever, self.config, path)
    }

    /// A JsonFileSchemaLoader: the file relative to the manifest's folder; by default
    /// `schemas/<stream>.json`. The reference reads `./source_<name>/schemas/...` from its
    /// Python package; a manifest-only connector keeps `schemas/` beside the manifest, so that
    /// prefix is dropped when the path does not exist as written.
    fn schema_file(
        &self,
        file_path: Option<&str>,
        name: &str,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Map<String, Value>, EngineError> {
        let rendered = match file_path.filter(|p| !p.is_empty()) {
            Some(template) => {
                let ctx = Context::new().config(&**self.config).parameters(parameters);
                compile(template, &path.key("file_path"))?
                    .render_string(&ctx)
                    .map_err(|e| at(&path.key("file_path"), e))?
            }
            None => format!("schemas/{name}.json"),
        };
        let base = self
            .options
            .manifest_dir
            .as_deref()
            .unwrap_or(Path::new("."));
        let mut candidates = vec![base.join(&rendered)];
        let relative = rendered.trim_start_matches("./");
        if let Some((first, rest)) = relative.split_once('/') {
            if first.starts_with("source_") {
                candidates.push(base.join(rest));
            }
        }
        let file = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
            at(
                path,
                format!("schema file not found: {}", candidates[0].display()),
            )
        })?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| at(path, format!("cannot read {}: {e}", file.display())))?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(schema)) => Ok(schema),
            Ok(_) => Err(at(
                path,
                format!("{} does not hold a JSON object", file.display()),
            )),
            Err(e) => Err(at(
                path,
                format!("{} is not valid JSON: {e}", file.display()),
            )),
        }
    }

    /// A stream's SimpleRetriever; the record selector also applies the stream's
    /// transformations and normalises records by its schema, as in the reference.
    /// A SimpleRetriever. Its record selector also applies `transformations` and normalises by
    /// `json_schema`, as in the reference; `selector_path` names the selector's errors (the
    /// stream's path for a stream, the loader's for a dynamic schema).
    pub(crate) fn simple_retriever(
        &self,
        retriever: &model::SimpleRetriever,
        transformations: &[model::RecordTransformation],
        json_schema: &Map<String, Value>,
        selector_path: &ManifestPath,
        path: &ManifestPath,
    ) -> Result<Retriever, EngineError> {
        let (requester, query_properties) = match &retriever.requester {
            model::Requester::HttpRequester(r) => {
                let at = path.key("requester");
                let query_properties = QueryProperties::of_requester(self, r, &at)?;
                (self.requester(r, &at)?, query_properties.map(Box::new))
            }
            model::Requester::CustomRequester(_) => {
                return Err(at(
                    &path.key("requester"),
                    "custom requesters cannot run in sluice",
                ));
            }
        };
        let selector = RecordSelector::from_model(
            &retriever.record_selector,
            retriever.decoder.as_ref(),
            transformations,
            json_schema,
            self.config,
            selector_path,
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        let parameters = parameters_value(retriever.parameters.as_ref());
        let paginator = Paginator::from_model(
            retriever.paginator.as_ref(),
            self.config,
            &parameters,
            &path.key("paginator"),
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        let reset_policy = PaginationResetPolicy::from_model(
            retriever.pagination_reset.as_ref(),
            retriever.record_selector.record_filter.is_some(),
            &path.key("pagination_reset"),
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        let truncated_list = self.truncated_list_retriever(
            &retriever.record_selector.extractor,
            &path.key("record_selector").key("extractor"),
        )?;
        Ok(Retriever {
            truncated_list,
            requester,
            selector,
            paginator,
            reset_policy,
            ignore_slice_options_when_paginated: retriever
                .ignore_stream_slicer_parameters_on_paginated_requests
                .unwrap_or(false),
            file_uploader: None,
            stream_name: String::new(),
            page_size_reduction: None,
            window_splitting: None,
            query_properties,
        })
    }

    /// The `truncated_list_retriever` of the record selector's record expander, which reads a
    /// truncated record's complete list (with no stream transformations and no schema, as the
    /// reference builds it).
    fn truncated_list_retriever(
        &self,
        extractor: &model::RecordExtractor,
        path: &ManifestPath,
    ) -> Result<Option<Box<Retriever>>, EngineError> {
        fn expander_retriever(
            e: &model::DpathExtractor,
        ) -> Option<&model::SimpleOrCustomRetriever> {
            e.record_expander
                .as_ref()
                .and_then(|x| x.truncated_list_retriever.as_ref())
        }
        match extractor {
            model::RecordExtractor::DpathExtractor(dpath) => {
                let Some(retriever) = expander_retriever(dpath) else {
                    return Ok(None);
                };
                let at_retriever = path.key("record_expander").key("truncated_list_retriever");
                let model::SimpleOrCustomRetriever::SimpleRetriever(simple) = retriever else {
                    return Err(at(&at_retriever, "a custom retriever cannot run in sluice"));
                };
                for (option, set) in [
                    ("partition_router", simple.partition_router.is_some()),
                    ("pagination_reset", simple.pagination_reset.is_some()),
                ] {
                    if set {
                        return Err(at(
                            &at_retriever,
                            format!("`{option}` is not supported on `truncated_list_retriever`."),
                        ));
                    }
                }
                let built =
                    self.simple_retriever(simple, &[], &Map::new(), &at_retriever, &at_retriever)?;
                Ok(Some(Box::new(built)))
            }
            model::RecordExtractor::CombinedExtractor(combined) => {
                let nested = combined.extractors.iter().position(|e| {
                    matches!(e, model::RecordExtractor::DpathExtractor(d) if expander_retriever(d).is_some())
                });
                match nested {
                    Some(index) => Err(at(
                        &path.key("extractors").index(index),
                        "a truncated_list_retriever inside a CombinedExtractor is not supported by sluice",
                    )),
                    None => Ok(None),
                }
            }
            model::RecordExtractor::CustomRecordExtractor(_) => Ok(None),
        }
    }

    /// The retriever's `page_size_reduction` and `request_window_splitting`, checked as the
    /// reference checks them when it builds the retriever.
    fn with_actions(
        &self,
        retriever: &mut Retriever,
        model: &model::SimpleRetriever,
        context: &RetrieverContext<'_>,
        path: &ManifestPath,
    ) -> Result<(), EngineError> {
        let (splitting, reduction) =
            retriever_actions(model, context).map_err(|message| at(path, message))?;
        context.stream.clone_into(&mut retriever.stream_name);
        retriever.window_splitting = splitting;
        retriever.page_size_reduction = reduction;
        Ok(())
    }

    /// A stream's `file_uploader`. Its `file_extractor` is not read: the reference does not
    /// read it either (the whole response body is the file).
    fn file_uploader(
        &self,
        uploader: &model::FileUploader,
        stream: &str,
        path: &ManifestPath,
    ) -> Result<FileUploader, EngineError> {
        if let model::Requester::HttpRequester(r) = &uploader.requester {
            reject_actions(r.error_handler.as_ref(), "requester of a `file_uploader`")
                .map_err(|message| at(&path.key("requester"), message))?;
        }
        let requester = match &uploader.requester {
            model::Requester::HttpRequester(r) => self.requester(r, &path.key("requester"))?,
            model::Requester::CustomRequester(_) => {
                return Err(at(
                    &path.key("requester"),
                    "a custom requester cannot run in sluice",
                ));
            }
        };
        let at_target = path.key("download_target_extractor");
        let target = Extractor::from_model(
            &uploader.download_target_extractor,
            &Decoder::Json,
            self.config,
            &at_target,
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        let filename = uploader
            .filename_extractor
            .as_deref()
            .filter(|source| !source.is_empty())
            .map(|source| compile(source, &path.key("filename_extractor")))
            .transpose()?;
        Ok(FileUploader {
            requester,
            target,
            filename,
            parameters: parameters_value(uploader.parameters.as_ref()),
            config: Arc::clone(self.config),
            stream: stream.to_owned(),
            path: path.clone(),
        })
    }

    /// An AsyncRetriever. Its record selector filters, transforms and normalises the
    /// downloaded records; the download's own selector (`download_decoder`,
    /// `download_extractor`) passes them on untouched, as in the reference.
    fn async_retriever(
        &self,
        retriever: &model::AsyncRetriever,
        slicing: &Slicing,
        transformations: &[model::RecordTransformation],
        json_schema: &Map<String, Value>,
        name: &str,
        path: &ManifestPath,
    ) -> Result<AsyncRetriever, EngineError> {
        let at_retriever = path.key("retriever");
        if retriever.download_target_requester.is_some()
            && retriever.download_target_extractor.is_none()
        {
            return Err(at(
                &at_retriever,
                "`download_target_extractor` required if using a `download_target_requester`",
            ));
        }
        let requester = |model: &model::Requester, field: &str| match model {
            model::Requester::HttpRequester(r) => self.requester(r, &at_retriever.key(field)),
            model::Requester::CustomRequester(_) => Err(at(
                &at_retriever.key(field),
                "custom requesters cannot run in sluice",
            )),
        };
        let optional = |model: Option<&model::Requester>, field: &str| {
            model.map(|m| requester(m, field)).transpose()
        };
        let build_error = |e: sluice_records::BuildError| EngineError::config(e.to_string());
        // A client-side incremental stream transforms records before filtering them, unless
        // the manifest says otherwise.
        let mut record_selector = retriever.record_selector.clone();
        let client_side = matches!(&slicing.cursor, CursorSpec::Datetime(spec) if spec.client_side);
        if client_side && record_selector.transform_before_filtering.is_none() {
            record_selector.transform_before_filtering = Some(true);
        }
        let selector = RecordSelector::from_model(
            &record_selector,
            retriever.decoder.as_ref(),
            transformations,
            json_schema,
            self.config,
            path,
        )
        .map_err(build_error)?;
        let decoder = sluice_records::Decoder::from_model(
            retriever.decoder.as_ref(),
            &at_retriever.key("decoder"),
        )
        .map_err(build_error)?;
        let status_extractor = sluice_records::Extractor::from_model(
            &retriever.status_extractor,
            &decoder,
            self.config,
            &at_retriever.key("status_extractor"),
        )
        .map_err(build_error)?;
        let download_target_extractor = retriever
            .download_target_extractor
            .as_ref()
            .map(|extractor| {
                sluice_records::Extractor::from_model(
                    extractor,
                    &decoder,
                    self.config,
                    &at_retriever.key("download_target_extractor"),
                )
            })
            .transpose()
            .map_err(build_error)?;
        let status_map = StatusMap::from_model(
            &retriever.status_mapping,
            &at_retriever.key("status_mapping"),
        )
        .map_err(EngineError::config)?;
        let download = self.download_retriever(retriever, &at_retriever)?;
        let minutes = |value: &model::IntegerOrString, field: &str| -> Result<u64, EngineError> {
            let at_field = at_retriever.key(field);
            let number = match value {
                model::IntegerOrString::Integer(n) => *n,
                model::IntegerOrString::String(source) => {
                    let ctx = Context::new().config(&**self.config);
                    let rendered = compile(source, &at_field)?
                        .render_string(&ctx)
                        .map_err(|e| at(&at_field, e))?;
                    rendered
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| at(&at_field, format!("{rendered:?} is not an integer")))?
                }
            };
            u64::try_from(number).map_err(|_| at(&at_field, format!("{number} is negative")))
        };
        // The reference's default of 60 minutes also stands for a timeout of 0.
        let job_timeout = match &retriever.polling_job_timeout {
            Some(value) => minutes(value, "polling_job_timeout")?,
            None => 0,
        };
        let job_timeout = Duration::from_secs(60 * if job_timeout == 0 { 60 } else { job_timeout });
        let failed_retry_wait = match &retriever.failed_retry_wait_time_in_seconds {
            Some(value) => match minutes(value, "failed_retry_wait_time_in_seconds")? {
                0 => {
                    return Err(at(
                        &at_retriever.key("failed_retry_wait_time_in_seconds"),
                        "failed_retry_wait_time_in_seconds must be >= 1",
                    ));
                }
                seconds => Some(Duration::from_secs(seconds)),
            },
            None => None,
        };
        Ok(AsyncRetriever {
            stream: name.to_owned(),
            selector,
            creation: requester(&retriever.creation_requester, "creation_requester")?,
            polling: requester(&retriever.polling_requester, "polling_requester")?,
            abort: optional(retriever.abort_requester.as_ref(), "abort_requester")?,
            delete: optional(retriever.delete_requester.as_ref(), "delete_requester")?,
            download_target_requester: optional(
                retriever.download_target_requester.as_ref(),
                "download_target_requester",
            )?,
            download,
            decoder,
            status_extractor,
            download_target_extractor,
            status_map,
            job_timeout,
            failed_retry_wait,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            tracker: Arc::clone(self.job_tracker),
            clock: Arc::clone(self.job_clock),
            messages: Arc::clone(&self.options.messages),
        })
    }

    /// The SimpleRetriever an AsyncRetriever downloads a job's results with.
    fn download_retriever(
        &self,
        retriever: &model::AsyncRetriever,
        at_retriever: &ManifestPath,
    ) -> Result<Retriever, EngineError> {
        let extractor = match &retriever.download_extractor {
            None => model::RecordExtractor::DpathExtractor(Box::new(model::DpathExtractor {
                field_path: Vec::new(),
                record_expander: None,
                parameters: None,
            })),
            Some(model::DownloadExtractor::DpathExtractor(e)) => {
                model::RecordExtractor::DpathExtractor(e.clone())
            }
            Some(model::DownloadExtractor::CombinedExtractor(e)) => {
                model::RecordExtractor::CombinedExtractor(e.clone())
            }
            Some(model::DownloadExtractor::CustomRecordExtractor(e)) => {
                model::RecordExtractor::CustomRecordExtractor(e.clone())
            }
            // It reads the body itself: the records are its rows, passed on as they are.
            Some(model::DownloadExtractor::ResponseToFileExtractor(_)) => {
                model::RecordExtractor::DpathExtractor(Box::new(model::DpathExtractor {
                    field_path: Vec::new(),
                    record_expander: None,
                    parameters: None,
                }))
            }
        };
        let response_to_file = match &retriever.download_extractor {
            Some(model::DownloadExtractor::ResponseToFileExtractor(extractor)) => {
                Some(Decoder::Streamed(Parser::PandasCsv {
                    preserve_na_values: extractor.preserve_na_values.unwrap_or(false),
                }))
            }
            _ => None,
        };
        let selector_model = model::RecordSelector {
            extractor,
            record_filter: None,
            schema_normalization: None,
            transform_before_filtering: None,
            parameters: None,
        };
        // The download selector's errors name the AsyncRetriever's own fields.
        let selector = RecordSelector::from_model(
            &selector_model,
            retriever.download_decoder.as_ref(),
            &[],
            &Map::new(),
            self.config,
            &at_retriever.parent(),
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        let selector = match response_to_file {
            Some(decoder) => selector.with_decoder(decoder),
            None => selector,
        };
        let requester = match &retriever.download_requester {
            model::Requester::HttpRequester(r) => {
                self.requester(r, &at_retriever.key("download_requester"))?
            }
            model::Requester::CustomRequester(_) => {
                return Err(at(
                    &at_retriever.key("download_requester"),
                    "custom requesters cannot run in sluice",
                ));
            }
        };
        let paginator = Paginator::from_model(
            retriever.download_paginator.as_ref(),
            self.config,
            &Value::Object(Map::new()),
            &at_retriever.key("download_paginator"),
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        Ok(Retriever {
            requester,
            selector,
            paginator,
            reset_policy: PaginationResetPolicy::default(),
            ignore_slice_options_when_paginated: false,
            file_uploader: None,
            truncated_list: None,
            stream_name: String::new(),
            page_size_reduction: None,
            window_splitting: None,
            query_properties: None,
        })
    }

    fn requester(
        &self,
        requester: &model::HttpRequester,
        path: &ManifestPath,
    ) -> Result<Requester, EngineError> {
        let authenticator = match &requester.authenticator {
            None => Authenticator::none(),
            Some(auth) => Authenticator::from_model(
                auth,
                self.auth,
                requester.url_base.as_deref(),
                &path.key("authenticator"),
            )
            .map_err(|e| EngineError::config(e.to_string()))?,
        };
        let mut built = Requester::from_model(
            requester,
            self.config,
            Arc::clone(&self.options.transport),
            authenticator,
            path,
        )
        .map_err(|e| EngineError::config(e.to_string()))?;
        built.budget = self.budget.clone();
        built.max_wait = self.options.max_wait;
        built.config_secrets = Arc::clone(&self.config_secrets);
        Ok(built)
    }
}

/// The names of the streams other streams read as parents, at any depth (the reference caches
/// these streams' responses, wherever they are read).
pub(crate) fn parent_stream_names<'m>(
    streams: impl Iterator<Item = &'m StreamEntry>,
) -> HashSet<String> {
    fn from_router(router: &model::PartitionRouter, names: &mut HashSet<String>) {
        use model::PartitionRouter as R;
        match router {
            R::SubstreamPartitionRouter(substream) => from_substream(substream, names),
            R::GroupingPartitionRouter(grouping) => {
                from_underlying(&grouping.underlying_partition_router, names)
            }
            R::UnionPartitionRouter(union) => from_union(union, names),
            _ => {}
        }
    }
    fn from_underlying(router: &model::UnderlyingPartitionRouter, names: &mut HashSet<String>) {
        use model::UnderlyingPartitionRouter as U;
        match router {
            U::SubstreamPartitionRouter(substream) => from_substream(substream, names),
            U::UnionPartitionRouter(union) => from_union(union, names),
            _ => {}
        }
    }
    fn from_union(union: &model::UnionPartitionRouter, names: &mut HashSet<String>) {
        for child in &union.partition_routers {
            from_underlying(child, names);
        }
    }
    fn from_substream(substream: &model::SubstreamPartitionRouter, names: &mut HashSet<String>) {
        for parent in &substream.parent_stream_configs {
            match &parent.stream {
                model::Stream::DeclarativeStream(stream) => {
                    names.extend(stream.name.clone());
                    from_stream(stream, names);
                }
                model::Stream::StateDelegatingStream(stream) => {
                    names.insert(stream.name.clone());
                    from_stream(&stream.full_refresh_stream, names);
                    from_stream(&stream.incremental_stream, names);
                }
            }
        }
    }
    fn from_stream(stream: &model::DeclarativeStream, names: &mut HashSet<String>) {
        use model::StreamPartitionRouter as R;
        let partition_router = match &stream.retriever {
            model::Retriever::SimpleRetriever(retriever) => &retriever.partition_router,
            model::Retriever::AsyncRetriever(retriever) => &retriever.partition_router,
            model::Retriever::CustomRetriever(_) => return,
        };
        match partition_router {
            Some(R::SubstreamPartitionRouter(substream)) => from_substream(substream, names),
            Some(R::GroupingPartitionRouter(grouping)) => {
                from_underlying(&grouping.underlying_partition_router, names)
            }
            Some(R::UnionPartitionRouter(union)) => from_union(union, names),
            Some(R::List(routers)) => {
                for router in routers {
                    from_router(router, names);
                }
            }
            _ => {}
        }
    }
    let mut names = HashSet::new();
    for entry in streams {
        match entry {
            StreamEntry::DeclarativeStream(stream) => from_stream(stream, &mut names),
            StreamEntry::StateDelegatingStream(stream) => {
                from_stream(&stream.full_refresh_stream, &mut names);
                from_stream(&stream.incremental_stream, &mut names);
            }
            StreamEntry::ConditionalStreams(conditional) => {
                for stream in &conditional.streams {
                    from_stream(stream, &mut names);
                }
            }
        }
    }
    names
}

fn slice_error(error: SliceError) -> EngineError {
    EngineError::config(error.to_string())
}

/// A client-side incremental stream transforms records before its record filter runs, unless
/// the manifest says otherwise (the reference's default for that flag).
fn with_cursor_defaults<'r>(
    retriever: &'r model::SimpleRetriever,
    slicing: &Slicing,
) -> std::borrow::Cow<'r, model::SimpleRetriever> {
    let client_side = matches!(&slicing.cursor, CursorSpec::Datetime(spec) if spec.client_side);
    if !client_side
        || retriever
            .record_selector
            .transform_before_filtering
            .is_some()
    {
        return std::borrow::Cow::Borrowed(retriever);
    }
    let mut retriever = retriever.clone();
    retriever.record_selector.transform_before_filtering = Some(true);
    std::borrow::Cow::Owned(retriever)
}

/// The path of the stream a schema loader's path is in (`streams[2].schema_loader` ->
/// `streams[2]`; outside `streams`, what holds the loader).
fn stream_path(path: &ManifestPath) -> ManifestPath {
    match path.stream_index() {
        Some(index) => ManifestPath::root().key("streams").index(index),
        None => path.parent(),
    }
}

fn compile(source: &str, path: &ManifestPath) -> Result<Template, EngineError> {
    Template::new(source).map_err(|e| at(path, e))
}

fn parameters_value(parameters: Option<&Map<String, Value>>) -> Value {
    Value::Object(parameters.cloned().unwrap_or_default())
}

/// The manifest's spec as `spec` prints it.
pub(crate) fn spec(spec: Option<&model::Spec>) -> ConnectorSpecification {
    let Some(spec) = spec else {
        return crate::generic_spec();
    };
    let mut out = ConnectorSpecification::new(spec.connection_specification.clone());
    out.documentation_url = spec.documentation_url.clone();
    // The model's AuthFlow has the protocol's AdvancedAuth shape; the protocol type is stricter
    // (known enum values), and a value it rejects is left out rather than failing `spec`.
    out.advanced_auth = spec.advanced_auth.as_ref().and_then(|flow| {
        let value = serde_json::to_value(flow).ok()?;
        match serde_json::from_value::<sluice_protocol::AdvancedAuth>(value) {
            Ok(mut advanced_auth) => {
                // The reference's model default, which it prints.
                let input = advanced_auth
                    .oauth_config_specification
                    .as_mut()
                    .and_then(|oauth| oauth.oauth_connector_input_specification.as_mut());
                if let Some(input) = input {
                    input
                        .scopes_join_strategy
                        .get_or_insert_with(|| "space".to_owned());
                }
                Some(advanced_auth)
            }
            Err(e) => {
                tracing::warn!("spec.advanced_auth is left out: {e}");
                None
            }
        }
    });
    out
}

/// `max_concurrent_async_job_count`, as the reference reads it: an integer, or a template
/// rendered without the config (the reference's job tracker has none), anything unusable or
/// below one giving one.
fn max_concurrent_async_jobs(manifest: &Manifest) -> usize {
    let value = match &manifest.model.max_concurrent_async_job_count {
        None => 1,
        Some(model::IntegerOrString::Integer(n)) => *n,
        Some(model::IntegerOrString::String(source)) => {
            let empty = Value::Object(Map::new());
            let ctx = Context::new().config(&empty);
            let rendered = Template::new(source)
                .ok()
                .and_then(|t| t.render_string(&ctx).ok())
                .and_then(|text| text.trim().parse::<i64>().ok());
            match rendered {
                Some(n) => n,
                None => {
                    tracing::warn!("Error interpolating max job count: {source}. Setting to 1.");
                    1
                }
            }
        }
    };
    if value < 1 {
        tracing::warn!(
            "The `max_concurrent_async_job_count` property is less than 1: {value}. Setting to 1. Please update the source manifest to set a valid value."
        );
    }
    usize::try_from(value).unwrap_or(1).max(1)
}

/// Workers when the manifest sets no `concurrency_level` (the reference's lowest safe level).
const DEFAULT_CONCURRENCY: usize = 2;

/// The manifest's `concurrency_level`: `default_concurrency` (an integer, or a template that
/// must render to one), capped by `max_concurrency`.
pub(crate) fn concurrency_level(manifest: &Manifest, config: &Value) -> Result<usize, EngineError> {
    let Some(level) = &manifest.model.concurrency_level else {
        return Ok(DEFAULT_CONCURRENCY);
    };
    let path = ManifestPath::root().key("concurrency_level");
    let invalid = |message: &str| at(&path.key("default_concurrency"), message);
    let level_value = match &level.default_concurrency {
        model::IntegerOrString::Integer(value) => *value,
        model::IntegerOrString::String(source) => {
            if source.contains("config") && level.max_concurrency.is_none() {
                return Err(at(
                    &path,
                    "ConcurrencyLevel requires that max_concurrency be defined if the default_concurrency can be used-specified",
                ));
            }
            let parameters = parameters_value(level.parameters.as_ref());
            let ctx = Context::new().config(config).parameters(&parameters);
            let rendered = compile(source, &path.key("default_concurrency"))?
                .render(&ctx)
                .map_err(|e| invalid(&e.to_string()))?;
            let value = rendered
                .as_i64()
                .ok_or_else(|| invalid("default_concurrency did not evaluate to an integer"))?;
            match level.max_concurrency {
                Some(max) if max != 0 => value.min(max),
                _ => value,
            }
        }
    };
    usize::try_from(level_value)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            invalid(&format!(
                "a concurrency level must be at least 1, got {level_value}"
            ))
        })
}
