//! Partitions and incremental cursors at read time: the slices of a stream, generated lazily
//! (a parent stream is read page by page as its children need partitions), and the cursor that
//! keeps the stream's state as slices close.

use crate::EngineError;
use crate::actions::Splitting;
use crate::async_job::{Job, JobPages, Orchestrator, Step};
use crate::output::RecordData;
use crate::stream::{Narrowing, PageReader, RecordGate, SelectorHandle, Stream, StreamRetriever};
use serde_json::{Map, Value};
use sluice_paginate::PageRequestOptions;
use sluice_slice::{
    CHILD_RESPONSE, CountCursor, CountSpec, DatetimeCursor, DatetimeSpec, GroupingRouter,
    ListRouter, ParentConfig, PerPartitionCursor, SliceError, SliceProgress, StreamSlice,
    UnionRouter, cartesian_product, migrate_legacy_to_per_partition,
};
use std::cell::{RefCell, RefMut};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// How a stream is split into slices, as built from the manifest.
#[derive(Debug, Default)]
pub(crate) struct Slicing {
    pub router: Router,
    pub cursor: CursorSpec,
    /// `LegacyToPerPartitionStateMigration`: the parent's partition field.
    pub legacy_state_partition_field: Option<String>,
}

/// A partition router.
#[derive(Debug, Default)]
pub(crate) enum Router {
    #[default]
    Single,
    List(ListRouter),
    Substream(Vec<Parent>),
    /// A list of routers: the cartesian product of their partitions.
    Product(Vec<Router>),
    Grouping(GroupingRouter, Box<Router>),
    /// Each partition value of the child routers once, normalised to one key.
    Union(UnionRouter, Vec<Router>),
}

/// A parent stream of a `SubstreamPartitionRouter`.
#[derive(Debug)]
pub(crate) struct Parent {
    pub config: ParentConfig,
    pub stream: Box<Stream>,
}

impl Parent {
    /// The stream to read and the state to read it from: a `StateDelegatingStream` reads its
    /// incremental stream once it has state younger than its `api_retention_period`, and its
    /// full refresh stream from no state otherwise.
    fn delegate(&self, state: Map<String, Value>) -> (&Stream, Map<String, Value>) {
        match &self.stream.with_state {
            Some(delegation) if !state.is_empty() => {
                if crate::read::is_past_retention(&self.stream, delegation, &state) {
                    tracing::warn!(
                        "Stream '{}' has a cursor value older than the API's retention period. Falling back to full refresh to avoid data loss.",
                        self.stream.name
                    );
                    (&self.stream, Map::new())
                } else {
                    (&delegation.incremental, state)
                }
            }
            _ => (&self.stream, state),
        }
    }
}

/// An incremental cursor, as built from the manifest.
#[derive(Debug, Default)]
pub(crate) enum CursorSpec {
    #[default]
    None,
    Datetime(Arc<DatetimeSpec>),
    Count(Arc<CountSpec>),
}

impl Slicing {
    /// Whether a parent gives its children their first page (`lazy_read_pointer`).
    fn reads_parents_lazily(&self) -> bool {
        matches!(&self.router, Router::Substream(parents) if parents.iter().any(|p| p.config.is_lazy()))
    }

    /// What the reference requires of a stream read lazily: at most one window per partition.
    fn check_lazy_read(&self, stream: &str) -> Result<(), EngineError> {
        match &self.cursor {
            CursorSpec::Count(_) => Err(EngineError::config(format!(
                "LazySimpleRetriever only supports DatetimeBasedCursor. Found: IncrementingCountCursor (stream {stream})."
            ))),
            CursorSpec::Datetime(spec) if spec.has_step() => Err(EngineError::config(format!(
                "Found more that one slice per parent. LazySimpleRetriever only supports single slice read for stream - {stream}."
            ))),
            _ => Ok(()),
        }
    }
}

impl CursorSpec {
    /// The spec with the cursor field a configured catalog chose, when the manifest lets it
    /// choose (`allow_catalog_defined_cursor_field`); `None` when nothing changes.
    pub fn with_catalog_cursor_field(&self, field: &str) -> Option<CursorSpec> {
        match self {
            CursorSpec::Datetime(spec)
                if spec.catalog_may_choose_cursor_field && spec.cursor_field != field =>
            {
                let mut spec = (**spec).clone();
                field.clone_into(&mut spec.cursor_field);
                Some(CursorSpec::Datetime(Arc::new(spec)))
            }
            CursorSpec::Count(spec)
                if spec.catalog_may_choose_cursor_field && spec.cursor_field != field =>
            {
                let mut spec = (**spec).clone();
                field.clone_into(&mut spec.cursor_field);
                Some(CursorSpec::Count(Arc::new(spec)))
            }
            _ => None,
        }
    }

    /// Whether the configured catalog may choose the cursor field.
    pub fn catalog_may_choose_cursor_field(&self) -> bool {
        match self {
            CursorSpec::None => false,
            CursorSpec::Datetime(spec) => spec.catalog_may_choose_cursor_field,
            CursorSpec::Count(spec) => spec.catalog_may_choose_cursor_field,
        }
    }

    /// The record field the cursor reads, for `discover`.
    pub fn cursor_field(&self) -> Option<&str> {
        match self {
            CursorSpec::None => None,
            CursorSpec::Datetime(spec) => Some(&spec.cursor_field),
            CursorSpec::Count(spec) => Some(&spec.cursor_field),
        }
    }
}

impl Router {
    /// What the router adds to a request of `slice`.
    fn request_options(&self, slice: &StreamSlice, options: &mut PageRequestOptions) {
        match self {
            Router::Single | Router::Grouping(..) | Router::Union(..) => {}
            Router::List(list) => list.request_options(slice, options),
            Router::Substream(parents) => {
                for parent in parents {
                    parent.config.request_options(slice, options);
                }
            }
            Router::Product(routers) => {
                for router in routers {
                    router.request_options(slice, options);
                }
            }
        }
    }
}

/// The cursor of one read of a stream.
#[derive(Debug)]
pub(crate) enum Cursor {
    /// Full refresh: one state at the end.
    Final,
    Datetime(DatetimeCursor),
    Count(CountCursor),
    PerPartition(Box<PerPartitionCursor>),
}

/// The state the reference gives a stream without a cursor.
pub(crate) fn no_cursor_state() -> Map<String, Value> {
    let mut state = Map::new();
    state.insert("__ab_no_cursor_state_message".to_owned(), Value::Bool(true));
    state
}

fn slice_error(error: SliceError) -> EngineError {
    if error.is_config_error() {
        EngineError::config(error.to_string())
    } else {
        EngineError::system(error.to_string())
    }
}

impl Cursor {
    /// The cursor of `stream` starting from `state`; `cursor_spec` replaces the stream's own
    /// (a cursor field chosen by the configured catalog).
    fn new(
        stream: &Stream,
        state: &Map<String, Value>,
        cursor_spec: Option<&CursorSpec>,
    ) -> Result<Self, EngineError> {
        let slicing = &stream.slicing;
        let spec = cursor_spec.unwrap_or(&slicing.cursor);
        let migrated;
        let state = match (&slicing.legacy_state_partition_field, spec) {
            (Some(partition_field), CursorSpec::Datetime(spec)) => {
                match migrate_legacy_to_per_partition(state, partition_field, &spec.cursor_field) {
                    Some(state) => {
                        migrated = state;
                        &migrated
                    }
                    None => state,
                }
            }
            _ => state,
        };
        let cursor = match (spec, &slicing.router) {
            (CursorSpec::None, _) => Cursor::Final,
            (CursorSpec::Count(spec), _) => Cursor::Count(spec.cursor(state).map_err(slice_error)?),
            (CursorSpec::Datetime(spec), Router::Single) => {
                if state.contains_key("states") || state.contains_key("use_global_cursor") {
                    return Err(EngineError::config(format!(
                        "the state of stream '{}' is a per-partition state, but the stream has no partition router: {}",
                        stream.name,
                        Value::Object(state.clone())
                    )));
                }
                Cursor::Datetime(spec.cursor(state).map_err(slice_error)?)
            }
            (CursorSpec::Datetime(spec), router) => {
                let global = spec.global_substream_cursor || matches!(router, Router::Grouping(..));
                Cursor::PerPartition(Box::new(
                    PerPartitionCursor::new(Arc::clone(spec), state, global, &stream.name)
                        .map_err(slice_error)?,
                ))
            }
        };
        Ok(cursor)
    }

    /// The record field the cursor reads (`None` for full refresh).
    pub fn field(&self) -> Option<&str> {
        match self {
            Cursor::Final => None,
            Cursor::Datetime(cursor) => Some(&cursor.spec().cursor_field),
            Cursor::Count(cursor) => Some(&cursor.spec().cursor_field),
            Cursor::PerPartition(cursor) => Some(&cursor.spec().cursor_field),
        }
    }

    /// What the cursor knows a slice's records by: its partition key for a per-partition
    /// cursor (worked out once per slice, not per record), else nothing.
    pub fn slice_key(&self, slice: &StreamSlice) -> String {
        match self {
            Cursor::PerPartition(_) => slice.partition_key(),
            _ => String::new(),
        }
    }

    /// Notes a record of the slice known by `slice_key` ([`Cursor::slice_key`]).
    pub fn observe(&mut self, slice_key: &str, progress: &mut SliceProgress, record: &Value) {
        match self {
            Cursor::Final => {}
            Cursor::Datetime(cursor) => cursor.observe(progress, record),
            Cursor::Count(cursor) => cursor.observe(progress, record),
            Cursor::PerPartition(cursor) => cursor.observe(slice_key, progress, record),
        }
    }

    /// Notes the value of the cursor field of a record of the slice known by `slice_key`
    /// (what [`Cursor::observe`] reads of the record).
    pub fn observe_field(&mut self, slice_key: &str, progress: &mut SliceProgress, field: &Value) {
        match self {
            Cursor::Final => {}
            Cursor::Datetime(cursor) => cursor.observe_field(progress, field),
            Cursor::Count(cursor) => cursor.observe_field(progress, field),
            Cursor::PerPartition(cursor) => cursor.observe_field(slice_key, progress, field),
        }
    }

    /// [`Cursor::observe_field`] for a field sent as a JSON string, from its bytes as sent
    /// (between its quotes, escapes unread), when the cursor can tell its value from them.
    /// Whether it did; when not, the field is for [`Cursor::observe_field`].
    pub fn observe_sent_string(&mut self, progress: &mut SliceProgress, sent: &[u8]) -> bool {
        match self {
            Cursor::Datetime(cursor) => cursor.observe_sent_string(progress, sent),
            Cursor::Final | Cursor::Count(_) | Cursor::PerPartition(_) => false,
        }
    }

    /// Records `slice` as read; gives the state to emit now, if any.
    pub fn close(
        &mut self,
        slice: &StreamSlice,
        progress: &SliceProgress,
    ) -> Result<Option<Map<String, Value>>, EngineError> {
        match self {
            Cursor::Final => Ok(None),
            Cursor::Datetime(cursor) => {
                cursor
                    .close(&slice.cursor_slice, progress)
                    .map_err(slice_error)?;
                Ok(Some(cursor.state()))
            }
            Cursor::Count(cursor) => {
                let moved = progress != &SliceProgress::default();
                cursor.close(progress);
                Ok(moved.then(|| cursor.state()))
            }
            Cursor::PerPartition(cursor) => cursor.close(slice, progress).map_err(slice_error),
        }
    }

    /// The state a checkpoint inside `slice` may promise (`--checkpoint-every`): unpartitioned
    /// cursors only, while the slice's records come in ascending order.
    pub fn checkpoint(
        &self,
        slice: &StreamSlice,
        progress: &SliceProgress,
    ) -> Option<Map<String, Value>> {
        match self {
            Cursor::Datetime(cursor) => cursor.state_through(&slice.cursor_slice, progress),
            Cursor::Count(cursor) => cursor.state_through(progress),
            Cursor::Final | Cursor::PerPartition(_) => None,
        }
    }

    /// The state as it stands (a parent's state for its child).
    pub fn state(&self) -> Map<String, Value> {
        match self {
            Cursor::Final => no_cursor_state(),
            Cursor::Datetime(cursor) => cursor.state(),
            Cursor::Count(cursor) => cursor.state(),
            Cursor::PerPartition(cursor) => cursor.state(),
        }
    }

    /// The state at the end of the stream; `router_state` is the partition router's state.
    pub fn final_state(&mut self, router_state: Option<Value>) -> Map<String, Value> {
        match self {
            Cursor::PerPartition(cursor) => cursor.final_state(router_state),
            other => other.state(),
        }
    }

    /// What the cursor adds to a request of `slice`.
    fn request_options(&self, slice: &StreamSlice, options: &mut PageRequestOptions) {
        match self {
            Cursor::Final => {}
            Cursor::Datetime(cursor) => cursor.spec().request_options(&slice.cursor_slice, options),
            Cursor::Count(cursor) => cursor.spec().request_options(&slice.cursor_slice, options),
            Cursor::PerPartition(cursor) => {
                cursor.spec().request_options(&slice.cursor_slice, options)
            }
        }
    }

    fn datetime_spec(&self) -> Option<&Arc<DatetimeSpec>> {
        match self {
            Cursor::Datetime(cursor) => Some(cursor.spec()),
            Cursor::PerPartition(cursor) => Some(cursor.spec()),
            _ => None,
        }
    }

    /// Whether a record of `slice` is inside this sync's range (client-side incremental and
    /// data feeds).
    fn should_be_synced(&self, slice_key: &str, record: &Value) -> bool {
        let synced = match self {
            Cursor::Datetime(cursor) => cursor.should_be_synced(record),
            Cursor::PerPartition(cursor) => cursor.should_be_synced(slice_key, record),
            _ => Ok(true),
        };
        synced.unwrap_or(true)
    }
}

type BoxFuture<'f, T> = Pin<Box<dyn Future<Output = T> + 'f>>;

/// The shared half of one read of a stream: what reading a slice's pages needs, and the cursor
/// the slices advance. Slices are read concurrently, each page between two awaits, so the cursor
/// sits in a `RefCell` that is only ever borrowed for synchronous work.
pub(crate) struct SliceReader<'a> {
    stream: &'a Stream,
    selector: SelectorHandle<'a>,
    cursor: RefCell<Cursor>,
    /// Child slices read their first page from the parent record (`lazy_read_pointer`, on a
    /// sync without state).
    lazy: bool,
    /// The completed jobs of an async stream's slices, by [`job_key`], until they are read.
    completed_jobs: RefCell<HashMap<String, VecDeque<Job>>>,
}

/// How a slice's completed job is found again when the slice is read.
fn job_key(slice: &StreamSlice) -> String {
    serde_json::to_string(&slice.template_value()).unwrap_or_default()
}

/// How one slice is read.
pub(crate) enum SlicePages<'a> {
    /// Page by page (SimpleRetriever).
    Simple(Box<PageReader<'a>>),
    /// A completed job's downloads (AsyncRetriever).
    Job(Box<JobPages<'a>>),
    /// A slice that cannot be read, and why (reported once).
    Unreadable(Option<EngineError>),
}

/// The generating half of one read of a stream: its partitions, turned into slices by the
/// cursor. Owned by whoever generates slices (a parent is read here, page by page), apart from
/// the slices being read.
pub(crate) struct SliceSource<'a> {
    partitions: Partitions<'a>,
    queue: VecDeque<StreamSlice>,
    partitions_done: bool,
    /// An async stream's jobs: the slices come out once their job is complete.
    jobs: Option<Orchestrator<'a>>,
}

impl<'a> SliceReader<'a> {
    /// A read of `stream` from `state`. Parents of a substream start from the part of `state`
    /// their child keeps for them (`incremental_dependency`).
    pub async fn open(
        stream: &'a Stream,
        state: &Map<String, Value>,
    ) -> Result<(Self, SliceSource<'a>), EngineError> {
        Self::open_with_cursor(stream, state, None).await
    }

    /// [`SliceReader::open`] with another cursor spec (a cursor field the catalog chose).
    pub async fn open_with_cursor(
        stream: &'a Stream,
        state: &Map<String, Value>,
        cursor_spec: Option<&CursorSpec>,
    ) -> Result<(Self, SliceSource<'a>), EngineError> {
        let cursor = Cursor::new(stream, state, cursor_spec)?;
        let selector = stream.selector_for_read().await?;
        let partitions = Partitions::new(&stream.slicing.router, state)?;
        let lazy = state.is_empty() && stream.slicing.reads_parents_lazily();
        if lazy {
            stream.slicing.check_lazy_read(&stream.name)?;
        }
        let reader = Self {
            stream,
            selector,
            cursor: RefCell::new(cursor),
            lazy,
            completed_jobs: RefCell::new(HashMap::new()),
        };
        let jobs = match &stream.retriever {
            StreamRetriever::Async(retriever) => Some(Orchestrator::new(retriever)),
            StreamRetriever::Simple(_) => None,
        };
        let source = SliceSource {
            partitions,
            queue: VecDeque::new(),
            partitions_done: false,
            jobs,
        };
        Ok((reader, source))
    }

    /// The cursor, for synchronous work only (never held across an await).
    pub fn cursor(&self) -> RefMut<'_, Cursor> {
        self.cursor.borrow_mut()
    }

    /// A reader of the pages of `slice`.
    pub fn pages(&self, slice: &StreamSlice) -> SlicePages<'a> {
        let retriever = match &self.stream.retriever {
            StreamRetriever::Simple(retriever) => retriever,
            StreamRetriever::Async(retriever) => {
                let job = self
                    .completed_jobs
                    .borrow_mut()
                    .get_mut(&job_key(slice))
                    .and_then(VecDeque::pop_front);
                return match job {
                    Some(job) => SlicePages::Job(Box::new(JobPages::new(
                        retriever,
                        self.selector.clone(),
                        job,
                    ))),
                    None => SlicePages::Unreadable(Some(EngineError::system(format!(
                        "stream {}: no completed job for slice {}",
                        self.stream.name,
                        job_key(slice)
                    )))),
                };
            }
        };
        SlicePages::Simple(Box::new(self.simple_pages(retriever, slice)))
    }

    fn simple_pages(
        &self,
        retriever: &'a crate::stream::Retriever,
        slice: &StreamSlice,
    ) -> PageReader<'a> {
        let cursor = self.cursor.borrow();
        let mut options = PageRequestOptions::default();
        self.stream
            .slicing
            .router
            .request_options(slice, &mut options);
        cursor.request_options(slice, &mut options);
        let pages = PageReader::new(
            retriever,
            self.selector.clone(),
            slice.template_value(),
            options,
        )
        .with_cursor_field(cursor.field());
        let pages = match slice.extra_fields.get(CHILD_RESPONSE).filter(|_| self.lazy) {
            Some(embedded) => {
                pages.with_first_page(serde_json::to_vec(embedded).unwrap_or_default().into())
            }
            None => pages,
        };
        let splits = retriever.window_splitting.is_some();
        let pages = match cursor.datetime_spec().filter(|_| splits) {
            Some(spec) => {
                let router = &self.stream.slicing.router;
                let for_options = Arc::clone(spec);
                let options = Box::new(move |slice: &StreamSlice| {
                    let mut options = PageRequestOptions::default();
                    router.request_options(slice, &mut options);
                    for_options.request_options(&slice.cursor_slice, &mut options);
                    options
                });
                pages.with_splitting(Splitting::new(Arc::clone(spec), slice.clone(), options))
            }
            None => pages,
        };
        let narrows = retriever.reset_policy.split_using_cursor;
        match cursor.datetime_spec().filter(|_| narrows) {
            Some(spec) => {
                let spec = Arc::clone(spec);
                let router = &self.stream.slicing.router;
                let for_options = Arc::clone(&spec);
                let options = Box::new(move |slice: &StreamSlice| {
                    let mut options = PageRequestOptions::default();
                    router.request_options(slice, &mut options);
                    for_options.request_options(&slice.cursor_slice, &mut options);
                    options
                });
                pages.with_narrowing(Narrowing::new(spec, slice.clone(), options))
            }
            None => pages,
        }
    }

    /// The next page of `pages`, filtered as the stream's cursor asks; `slice_key` is the
    /// cursor's key for the slice ([`Cursor::slice_key`], worked out once per slice).
    pub async fn next_page(
        &self,
        pages: &mut SlicePages<'a>,
        slice_key: &str,
    ) -> Result<Option<Vec<RecordData>>, EngineError> {
        let spec = self.cursor.borrow().datetime_spec().cloned();
        let filter = |record: &Value| self.cursor.borrow().should_be_synced(slice_key, record);
        let gate = RecordGate {
            keep: spec
                .as_ref()
                .filter(|s| s.client_side && !s.data_feed)
                .map(|_| &filter as &dyn Fn(&Value) -> bool),
            feed: spec
                .as_ref()
                .filter(|s| s.data_feed)
                .map(|_| &filter as &dyn Fn(&Value) -> bool),
        };
        match pages {
            SlicePages::Simple(pages) => pages.next_page(gate).await,
            SlicePages::Job(pages) => pages.next_page(gate).await,
            SlicePages::Unreadable(error) => match error.take() {
                Some(error) => Err(error),
                None => Ok(None),
            },
        }
    }

    /// The stream's state at its end; `router_state` is the partition router's state then.
    pub fn final_state(&self, router_state: Option<Value>) -> Map<String, Value> {
        self.cursor.borrow_mut().final_state(router_state)
    }
}

impl<'a> SliceSource<'a> {
    /// The next slice to read, or `None` when every partition is done. An async stream's
    /// slices come out once their job is complete.
    pub async fn next_slice(
        &mut self,
        reader: &SliceReader<'a>,
    ) -> Result<Option<StreamSlice>, EngineError> {
        if self.jobs.is_none() {
            return self.next_plain_slice(reader).await;
        }
        loop {
            let step = match self.jobs.as_mut() {
                Some(jobs) => jobs.step().await?,
                None => return Ok(None),
            };
            match step {
                Step::Completed(job) => {
                    let slice = job.slice.clone();
                    reader
                        .completed_jobs
                        .borrow_mut()
                        .entry(job_key(&slice))
                        .or_default()
                        .push_back(*job);
                    return Ok(Some(slice));
                }
                Step::NeedSlice => {
                    let next = self.next_plain_slice(reader).await;
                    let Some(jobs) = self.jobs.as_mut() else {
                        return Ok(None);
                    };
                    match next {
                        Ok(slice) => jobs.offer(slice),
                        Err(error) => jobs.slices_failed(error).await?,
                    }
                }
                Step::Done => return Ok(None),
            }
        }
    }

    /// The next slice of the stream's partitions and cursor.
    async fn next_plain_slice(
        &mut self,
        reader: &SliceReader<'a>,
    ) -> Result<Option<StreamSlice>, EngineError> {
        loop {
            if let Some(slice) = self.queue.pop_front() {
                return Ok(Some(slice));
            }
            if self.partitions_done {
                return Ok(None);
            }
            let Some(partition) = self.partitions.next().await? else {
                self.partitions_done = true;
                continue;
            };
            let mut cursor = reader.cursor.borrow_mut();
            match &mut *cursor {
                Cursor::Final => self.queue.push_back(partition),
                Cursor::Datetime(cursor) => {
                    for window in cursor.windows().map_err(slice_error)? {
                        self.queue.push_back(StreamSlice {
                            cursor_slice: window,
                            ..partition.clone()
                        });
                    }
                }
                Cursor::Count(cursor) => self.queue.push_back(StreamSlice {
                    cursor_slice: cursor.window(),
                    ..partition
                }),
                Cursor::PerPartition(cursor) => {
                    let router_state = self.partitions.state();
                    let slices = cursor
                        .slices_of(&partition, router_state.as_ref())
                        .map_err(slice_error)?;
                    self.queue.extend(slices);
                }
            }
        }
    }

    /// The partition router's state (the parents' states), for the stream's final state.
    pub fn router_state(&self) -> Option<Value> {
        self.partitions.state()
    }
}

/// The partitions of a router, generated as they are asked for.
enum Partitions<'a> {
    Single {
        given: bool,
    },
    List(std::vec::IntoIter<StreamSlice>),
    Substream(Box<Substream<'a>>),
    Product {
        routers: &'a [Router],
        state: Map<String, Value>,
        partitions: Option<std::vec::IntoIter<StreamSlice>>,
    },
    Grouping {
        grouping: GroupingRouter,
        inner: Box<Partitions<'a>>,
        inner_done: bool,
        state: Option<Value>,
    },
    /// The children are read one after the other, each to its end.
    Union {
        union: UnionRouter,
        children: Vec<Partitions<'a>>,
        current: usize,
    },
}

impl<'a> Partitions<'a> {
    fn new(router: &'a Router, state: &Map<String, Value>) -> Result<Self, EngineError> {
        Ok(match router {
            Router::Single => Partitions::Single { given: false },
            Router::List(list) => Partitions::List(list.partitions().into_iter()),
            Router::Substream(parents) => {
                Partitions::Substream(Box::new(Substream::new(parents, state)?))
            }
            Router::Product(routers) => Partitions::Product {
                routers,
                state: state.clone(),
                partitions: None,
            },
            Router::Grouping(grouping, inner) => Partitions::Grouping {
                grouping: grouping.clone(),
                inner: Box::new(Partitions::new(inner, state)?),
                inner_done: false,
                state: None,
            },
            Router::Union(union, routers) => Partitions::Union {
                union: union.clone(),
                children: routers
                    .iter()
                    .map(|router| Partitions::new(router, state))
                    .collect::<Result<_, _>>()?,
                current: 0,
            },
        })
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<StreamSlice>, EngineError>> {
        Box::pin(async move {
            match self {
                Partitions::Single { given } => {
                    if *given {
                        return Ok(None);
                    }
                    *given = true;
                    Ok(Some(StreamSlice::default()))
                }
                Partitions::List(partitions) => Ok(partitions.next()),
                Partitions::Substream(substream) => substream.next().await,
                Partitions::Product {
                    routers,
                    state,
                    partitions,
                } => {
                    if partitions.is_none() {
                        // The reference takes the product of every router's whole list of
                        // partitions, so each router is read to its end first.
                        let mut lists = Vec::with_capacity(routers.len());
                        for router in routers.iter() {
                            let mut source = Partitions::new(router, state)?;
                            let mut list = Vec::new();
                            while let Some(partition) = source.next().await? {
                                list.push(partition);
                            }
                            lists.push(list);
                        }
                        *partitions = Some(cartesian_product(&lists).into_iter());
                    }
                    Ok(partitions.as_mut().and_then(Iterator::next))
                }
                Partitions::Grouping {
                    grouping,
                    inner,
                    inner_done,
                    state,
                } => loop {
                    if *inner_done {
                        return Ok(grouping.finish());
                    }
                    match inner.next().await? {
                        Some(partition) => {
                            if let Some(group) = grouping.push(partition).map_err(slice_error)? {
                                *state = inner.state();
                                return Ok(Some(group));
                            }
                        }
                        None => {
                            *inner_done = true;
                            *state = inner.state();
                        }
                    }
                },
                Partitions::Union {
                    union,
                    children,
                    current,
                } => {
                    while let Some(child) = children.get_mut(*current) {
                        match child.next().await? {
                            Some(partition) => {
                                if let Some(admitted) =
                                    union.admit(partition).map_err(slice_error)?
                                {
                                    return Ok(Some(admitted));
                                }
                            }
                            None => *current += 1,
                        }
                    }
                    Ok(None)
                }
            }
        })
    }

    /// The router's state: the parents' states of a substream (`None` for other routers).
    fn state(&self) -> Option<Value> {
        match self {
            Partitions::Substream(substream) => Some(substream.state()),
            Partitions::Grouping { state, .. } => state.clone(),
            // The parents' states of every child, merged (a parent two children share keeps
            // the last one's, as in the reference, which warns about it once it happens).
            Partitions::Union { children, .. } => {
                let mut merged = Map::new();
                for child in children {
                    if let Some(Value::Object(state)) = child.state() {
                        merged.extend(state);
                    }
                }
                Some(Value::Object(merged))
            }
            _ => None,
        }
    }
}

/// The partitions of a `SubstreamPartitionRouter`: one per parent record, parent by parent.
struct Substream<'a> {
    parents: Vec<ParentRead<'a>>,
    current: usize,
}

/// One parent stream being read for its children.
struct ParentRead<'a> {
    parent: &'a Parent,
    /// The stream read: the parent's own, or a `StateDelegatingStream`'s side for its state.
    stream: &'a Stream,
    /// The parent's state as its child keeps it.
    state: Map<String, Value>,
    reader: Option<(SliceReader<'a>, SliceSource<'a>)>,
    slice: Option<ParentSlice<'a>>,
    pending: VecDeque<StreamSlice>,
    done: bool,
}

/// A slice of a parent being read.
struct ParentSlice<'a> {
    slice: StreamSlice,
    pages: Option<SlicePages<'a>>,
    /// The parent cursor's key for the slice ([`Cursor::slice_key`]).
    key: String,
    progress: SliceProgress,
    had_records: bool,
}

impl<'a> Substream<'a> {
    fn new(parents: &'a [Parent], child_state: &Map<String, Value>) -> Result<Self, EngineError> {
        let parents = parents
            .iter()
            .map(|parent| {
                let (stream, state) = parent.delegate(parent_state(parent, child_state));
                ParentRead {
                    state,
                    stream,
                    parent,
                    reader: None,
                    slice: None,
                    pending: VecDeque::new(),
                    done: false,
                }
            })
            .collect();
        Ok(Self {
            parents,
            current: 0,
        })
    }

    async fn next(&mut self) -> Result<Option<StreamSlice>, EngineError> {
        while let Some(parent) = self.parents.get_mut(self.current) {
            match parent.next().await? {
                Some(slice) => return Ok(Some(slice)),
                None => self.current += 1,
            }
        }
        Ok(None)
    }

    /// `{parent name: parent state}` for every parent the child keeps state for.
    fn state(&self) -> Value {
        let mut state = Map::new();
        for parent in &self.parents {
            if parent.parent.config.incremental_dependency {
                let parent_state = match &parent.reader {
                    Some((reader, _)) => reader.cursor.borrow().state(),
                    None => parent.initial_state(),
                };
                state.insert(
                    parent.parent.config.parent_name.clone(),
                    Value::Object(parent_state),
                );
            }
        }
        Value::Object(state)
    }
}

/// The state a parent starts from: the child's `parent_state` for it, else the child's global
/// cursor, else a child state of one plain value (keyed by the parent's cursor field), as the
/// reference seeds it; nothing without `incremental_dependency`.
fn parent_state(parent: &Parent, child_state: &Map<String, Value>) -> Map<String, Value> {
    if !parent.config.incremental_dependency {
        return Map::new();
    }
    let mut child_state = child_state.clone();
    child_state.remove("__ab_no_cursor_state_message");
    if child_state.is_empty() {
        return Map::new();
    }
    let name = &parent.config.parent_name;
    if let Some(Value::Object(states)) = child_state.get("parent_state") {
        if let Some(Value::Object(state)) = states.get(name) {
            return state.clone();
        }
    }
    if !child_state.contains_key("parent_state") || child_state.get("state").is_some() {
        if let Some(Value::Object(global)) = child_state.get("state") {
            return global.clone();
        }
    }
    let values: Vec<&Value> = child_state.values().collect();
    if let [value @ (Value::String(_) | Value::Number(_))] = values.as_slice() {
        // A StateDelegatingStream's incremental stream names the field, as the child has state.
        let stream = match &parent.stream.with_state {
            Some(delegation) => &delegation.incremental,
            None => &parent.stream,
        };
        if let Some(field) = stream.slicing.cursor.cursor_field() {
            let mut state = Map::new();
            state.insert(field.to_owned(), (*value).clone());
            return state;
        }
    }
    Map::new()
}

impl<'a> ParentRead<'a> {
    fn initial_state(&self) -> Map<String, Value> {
        match Cursor::new(self.stream, &self.state, None) {
            Ok(cursor) => cursor.state(),
            Err(_) => self.state.clone(),
        }
    }

    /// The next child partition from this parent's records.
    async fn next(&mut self) -> Result<Option<StreamSlice>, EngineError> {
        loop {
            // The last child of a parent slice waits until the parent slice is known to be
            // over, so the parent's cursor has closed it first (as the reference does).
            let slice_open = self.slice.as_ref().is_some_and(|s| s.pages.is_some());
            if self.pending.len() > 1 || (!self.pending.is_empty() && !slice_open) {
                return Ok(self.pending.pop_front());
            }
            if self.done {
                return Ok(self.pending.pop_front());
            }
            if self.reader.is_none() {
                self.reader = Some(SliceReader::open(self.stream, &self.state).await?);
            }
            let Some((reader, source)) = self.reader.as_mut() else {
                continue;
            };
            match self.slice.as_mut() {
                Some(current) if current.pages.is_some() => {
                    let page = match current.pages.as_mut() {
                        Some(pages) => reader.next_page(pages, &current.key).await?,
                        None => None,
                    };
                    match page {
                        Some(records) => {
                            for record in records {
                                let record = record.into_value();
                                current.had_records = true;
                                reader.cursor().observe(
                                    &current.key,
                                    &mut current.progress,
                                    &record,
                                );
                                if let Some(child) = self
                                    .parent
                                    .config
                                    .child_slice(&record, &current.slice.partition)
                                {
                                    self.pending.push_back(child);
                                }
                            }
                        }
                        None => {
                            // The reference closes a parent slice only when it had records.
                            if current.had_records {
                                reader.cursor().close(&current.slice, &current.progress)?;
                            }
                            current.pages = None;
                        }
                    }
                }
                _ => match source.next_slice(reader).await? {
                    Some(slice) => {
                        let pages = reader.pages(&slice);
                        let key = reader.cursor.borrow().slice_key(&slice);
                        self.slice = Some(ParentSlice {
                            key,
                            slice,
                            pages: Some(pages),
                            progress: SliceProgress::default(),
                            had_records: false,
                        });
                    }
                    None => {
                        reader.final_state(source.router_state());
                        self.done = true;
                    }
                },
            }
        }
    }
}
