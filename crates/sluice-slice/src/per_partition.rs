//! The per-partition cursor: one datetime cursor per partition of a router, a global cursor
//! beside them, and the parent streams' state, as the reference's
//! `ConcurrentPerPartitionCursor` keeps them.

use crate::SliceError;
use crate::cursor::{DatetimeCursor, DatetimeSpec, SliceProgress};
use crate::datetime::parse_any;
use crate::slice::{StreamSlice, partition_key};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Above this many partitions the cursor keeps one global cursor instead of one per partition.
pub const SWITCH_TO_GLOBAL_LIMIT: usize = 10_000;
/// At most this many partition cursors are kept; finished ones are dropped first.
pub const MAX_PARTITION_CURSORS: usize = 25_000;
/// Between two throttled STATE messages of a partitioned stream.
const EMIT_INTERVAL: Duration = Duration::from_secs(600);

/// A partition whose windows are still being read.
#[derive(Debug)]
struct OpenPartition {
    sequence: u64,
    open_windows: usize,
}

/// A `DatetimeBasedCursor` on a partitioned stream.
#[derive(Debug)]
pub struct PerPartitionCursor {
    spec: Arc<DatetimeSpec>,
    use_global_cursor: bool,
    /// Partition cursors by partition key, with their creation number.
    cursors: HashMap<String, (u64, DatetimeCursor)>,
    /// Partition keys in creation order, for the state's `states` and for eviction.
    creation_order: BTreeMap<u64, String>,
    next_creation: u64,
    open: HashMap<String, OpenPartition>,
    /// Sequence numbers of partitions with windows still open, oldest first.
    processing: VecDeque<u64>,
    next_sequence: u64,
    /// The parent state seen when each partition was generated, published once every earlier
    /// partition has closed.
    pending_parent_states: VecDeque<(Option<Value>, u64)>,
    parent_state: Option<Value>,
    global_cursor: Option<Map<String, Value>>,
    new_global_cursor: Option<Map<String, Value>>,
    lookback_window: i64,
    partition_count: usize,
    synced_some_data: bool,
    started: Option<Instant>,
    last_emission: Option<Instant>,
    duplicate_logged: bool,
}

impl PerPartitionCursor {
    /// The cursor of a stream whose state is `state`; `use_global_cursor` when the manifest asks
    /// for one (`global_substream_cursor`, or a grouping router).
    pub fn new(
        spec: Arc<DatetimeSpec>,
        state: &Map<String, Value>,
        use_global_cursor: bool,
        stream: &str,
    ) -> Result<Self, SliceError> {
        let mut cursor = Self {
            spec,
            use_global_cursor,
            cursors: HashMap::new(),
            creation_order: BTreeMap::new(),
            next_creation: 0,
            open: HashMap::new(),
            processing: VecDeque::new(),
            next_sequence: 0,
            pending_parent_states: VecDeque::new(),
            parent_state: None,
            global_cursor: None,
            new_global_cursor: None,
            lookback_window: 0,
            partition_count: 0,
            synced_some_data: false,
            started: None,
            last_emission: None,
            duplicate_logged: false,
        };
        cursor.set_initial_state(state, stream)?;
        Ok(cursor)
    }

    fn set_initial_state(
        &mut self,
        state: &Map<String, Value>,
        stream: &str,
    ) -> Result<(), SliceError> {
        if state.is_empty() {
            return Ok(());
        }
        let bad = |message: String| SliceError::State {
            stream: stream.to_owned(),
            message,
        };
        if !state.contains_key("states") && !state.contains_key("state") {
            self.set_global_state(state, stream)?;
        } else {
            self.use_global_cursor = state
                .get("use_global_cursor")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            self.lookback_window = match state.get("lookback_window") {
                None | Some(Value::Null) => 0,
                Some(value) => value
                    .as_i64()
                    .or_else(|| value.as_f64().map(|f| f as i64))
                    .ok_or_else(|| {
                        bad(format!(
                            "has lookback_window = {value}, which is not a number of seconds"
                        ))
                    })?,
            };
            let entries = match state.get("states") {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(entries)) => entries.as_slice(),
                Some(other) => {
                    return Err(bad(format!("has `states` = {other}, which is not a list")));
                }
            };
            for (index, entry) in entries.iter().enumerate() {
                let (Some(Value::Object(partition)), Some(Value::Object(cursor_state))) =
                    (entry.get("partition"), entry.get("cursor"))
                else {
                    let missing = match (entry.get("partition"), entry.get("cursor")) {
                        (Some(Value::Object(_)), _) => "a `cursor` object",
                        (_, Some(Value::Object(_))) => "a `partition` object",
                        _ => "a `partition` and a `cursor` object",
                    };
                    return Err(bad(format!(
                        "has states[{index}] = {entry}, without {missing}: each entry must be {{\"partition\": {{...}}, \"cursor\": {{...}}}}"
                    )));
                };
                let cursor = self.spec.cursor(cursor_state).map_err(|e| match e {
                    SliceError::State { message, .. } => bad(format!(
                        "at states[{index}] (partition {}) {message}",
                        Value::Object(partition.clone())
                    )),
                    other => other,
                })?;
                self.partition_count += 1;
                self.insert_cursor(partition_key(partition), cursor);
            }
            if let Some(global) = state.get("state") {
                let Value::Object(global) = global else {
                    return Err(bad(format!(
                        "has `state` = {global}, which is not an object"
                    )));
                };
                self.set_global_state(global, stream)?;
            }
        }
        if let Some(parent_state) = state
            .get("parent_state")
            .filter(|v| sluice_interp::is_truthy(v))
        {
            self.parent_state = Some(parent_state.clone());
        }
        Ok(())
    }

    fn set_global_state(
        &mut self,
        state: &Map<String, Value>,
        stream: &str,
    ) -> Result<(), SliceError> {
        let field = &self.spec.cursor_field;
        let Some(value) = state.get(field) else {
            return Ok(());
        };
        let parsed =
            parse_any(self.spec.input_formats(), value).ok_or_else(|| SliceError::State {
                stream: stream.to_owned(),
                message: format!(
                    "has {field} = {value}, which matches none of the cursor's datetime formats ({})",
                    self.spec
                        .input_formats()
                        .iter()
                        .map(|f| format!("'{}'", f.pattern()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let mut global = Map::new();
        global.insert(field.clone(), Value::String(self.spec.format(parsed)));
        self.global_cursor = Some(global.clone());
        self.new_global_cursor = Some(global);
        Ok(())
    }

    fn insert_cursor(&mut self, key: String, cursor: DatetimeCursor) {
        if let Some(entry) = self.cursors.get_mut(&key) {
            entry.1 = cursor;
            return;
        }
        let creation = self.next_creation;
        self.next_creation += 1;
        self.creation_order.insert(creation, key.clone());
        self.cursors.insert(key, (creation, cursor));
    }

    fn cursor_of(&self, key: &str) -> Option<&DatetimeCursor> {
        self.cursors.get(key).map(|(_, cursor)| cursor)
    }

    /// Drops the oldest partition cursor whose partition is not being read, else the oldest.
    fn evict_one(&mut self) {
        let finished = self
            .creation_order
            .iter()
            .find(|(_, key)| !self.open.contains_key(*key))
            .map(|(creation, _)| *creation);
        let creation = match finished {
            Some(creation) => creation,
            None => {
                tracing::warn!(
                    "The maximum number of partitions has been reached. Dropping the oldest partition."
                );
                match self.creation_order.keys().next() {
                    Some(creation) => *creation,
                    None => return,
                }
            }
        };
        if let Some(key) = self.creation_order.remove(&creation) {
            self.cursors.remove(&key);
        }
    }

    /// A cursor for a partition not seen before: from the global cursor, less the last sync's
    /// duration.
    fn new_partition_cursor(&self) -> Result<DatetimeCursor, SliceError> {
        match &self.global_cursor {
            Some(global) if !global.is_empty() => {
                let mut state = global.clone();
                if self.lookback_window != 0 {
                    if let Some(value) = global.get(&self.spec.cursor_field) {
                        if let Some(parsed) = parse_any(self.spec.input_formats(), value) {
                            let earlier = parsed - time::Duration::seconds(self.lookback_window);
                            state.insert(
                                self.spec.cursor_field.clone(),
                                Value::String(self.spec.format(earlier)),
                            );
                        }
                    }
                }
                self.spec.cursor(&state)
            }
            _ => self.spec.cursor(&Map::new()),
        }
    }

    /// Whether the cursor keeps one global cursor rather than one per partition.
    pub fn uses_global_cursor(&self) -> bool {
        self.use_global_cursor
    }

    /// The slices of one partition: one per window of its cursor. `parent_state` is the
    /// router's state right after it gave this partition. A partition still being read is not
    /// read twice.
    pub fn slices_of(
        &mut self,
        partition: &StreamSlice,
        parent_state: Option<&Value>,
    ) -> Result<Vec<StreamSlice>, SliceError> {
        self.started.get_or_insert_with(Instant::now);
        self.ensure_partition_limit();
        let key = partition.partition_key();
        if !self.cursors.contains_key(&key) {
            let cursor = self.new_partition_cursor()?;
            self.partition_count += 1;
            self.insert_cursor(key.clone(), cursor);
        }
        if self.open.contains_key(&key) {
            if !self.duplicate_logged {
                tracing::warn!("Partition duplication detected for stream");
                self.duplicate_logged = true;
            }
            return Ok(Vec::new());
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.processing.push_back(sequence);
        let changed = self
            .pending_parent_states
            .back()
            .is_none_or(|(last, _)| last.as_ref() != parent_state);
        if changed {
            self.pending_parent_states
                .push_back((parent_state.cloned(), sequence));
        }
        let windows = match self.cursors.get_mut(&key) {
            Some((_, cursor)) => cursor.windows()?,
            None => Vec::new(),
        };
        self.open.insert(
            key,
            OpenPartition {
                sequence,
                open_windows: windows.len(),
            },
        );
        Ok(windows
            .into_iter()
            .map(|window| StreamSlice {
                partition: partition.partition.clone(),
                cursor_slice: window,
                extra_fields: partition.extra_fields.clone(),
            })
            .collect())
    }

    fn ensure_partition_limit(&mut self) {
        if !self.use_global_cursor && self.partition_count > SWITCH_TO_GLOBAL_LIMIT {
            tracing::info!(
                "Exceeded the 'SWITCH_TO_GLOBAL_LIMIT' of {SWITCH_TO_GLOBAL_LIMIT}. Switching to global cursor."
            );
            self.use_global_cursor = true;
        }
        while self.cursors.len() > MAX_PARTITION_CURSORS - 1 {
            self.evict_one();
        }
    }

    /// Notes a record of the slice whose partition key is `partition_key` (see
    /// [`StreamSlice::partition_key`], worked out once per slice) in the slice's progress and in
    /// the global cursor.
    pub fn observe(&mut self, partition_key: &str, progress: &mut SliceProgress, record: &Value) {
        if let Some(field) = record.get(&self.spec.cursor_field) {
            self.observe_field(partition_key, progress, field);
        }
    }

    /// Notes the value of a record's cursor field (what [`observe`](Self::observe) reads of
    /// the record).
    pub fn observe_field(
        &mut self,
        partition_key: &str,
        progress: &mut SliceProgress,
        field: &Value,
    ) {
        let Some(value) = parse_any(self.spec.input_formats(), field) else {
            return;
        };
        self.synced_some_data = true;
        self.update_global_cursor(self.spec.format(value));
        if !self.use_global_cursor {
            if let Some(cursor) = self.cursor_of(partition_key) {
                cursor.observe_field(progress, field);
            }
        }
    }

    /// The reference compares the formatted values as strings.
    fn update_global_cursor(&mut self, value: String) {
        let field = &self.spec.cursor_field;
        let newer = match self.new_global_cursor.as_ref().and_then(|g| g.get(field)) {
            Some(Value::String(current)) => *current < value,
            _ => true,
        };
        if newer {
            let mut global = Map::new();
            global.insert(field.clone(), Value::String(value));
            self.new_global_cursor = Some(global);
        }
    }

    /// Records a slice as read. Gives the state to emit when one is due (the first close, then
    /// at most one every ten minutes, as the reference throttles them).
    pub fn close(
        &mut self,
        slice: &StreamSlice,
        progress: &SliceProgress,
    ) -> Result<Option<Map<String, Value>>, SliceError> {
        let key = slice.partition_key();
        let Some(open) = self.open.get_mut(&key) else {
            return Ok(None);
        };
        open.open_windows = open.open_windows.saturating_sub(1);
        let partition_done = open.open_windows == 0;
        if !self.use_global_cursor {
            if let Some((_, cursor)) = self.cursors.get_mut(&key) {
                cursor.close(&slice.cursor_slice, progress)?;
                if partition_done {
                    let value = cursor.state().get(&self.spec.cursor_field).cloned();
                    if let Some(Value::String(value)) = value {
                        self.update_global_cursor(value);
                    }
                }
            }
        }
        if partition_done {
            if let Some(open) = self.open.remove(&key) {
                self.processing.retain(|s| *s != open.sequence);
            }
        }
        self.publish_parent_state();
        Ok(self.throttled_state())
    }

    fn publish_parent_state(&mut self) {
        let mut published = None;
        while let Some((_, sequence)) = self.pending_parent_states.front() {
            if self
                .processing
                .front()
                .is_some_and(|oldest| oldest <= sequence)
            {
                break;
            }
            published = self
                .pending_parent_states
                .pop_front()
                .map(|(state, _)| state);
        }
        if let Some(state) = published {
            self.parent_state = state;
        }
    }

    fn throttled_state(&mut self) -> Option<Map<String, Value>> {
        let now = Instant::now();
        if self
            .last_emission
            .is_some_and(|last| now.duration_since(last) <= EMIT_INTERVAL)
        {
            return None;
        }
        self.last_emission = Some(now);
        if self.use_global_cursor
            && !self
                .parent_state
                .as_ref()
                .is_some_and(sluice_interp::is_truthy)
        {
            return None;
        }
        Some(self.state())
    }

    /// The state at the end of the stream. When every partition closed, the global cursor and
    /// the parent state (`router_state`) advance and `lookback_window` becomes this sync's
    /// duration in seconds.
    pub fn final_state(&mut self, router_state: Option<Value>) -> Map<String, Value> {
        let all_closed = self.open.values().all(|p| p.open_windows == 0);
        if all_closed {
            if self.synced_some_data {
                self.global_cursor = self.new_global_cursor.clone();
                let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
                self.lookback_window = elapsed.as_secs_f64().ceil() as i64;
            }
            self.parent_state = router_state;
        }
        self.state()
    }

    /// The state as the reference writes it.
    pub fn state(&self) -> Map<String, Value> {
        let mut state = Map::new();
        state.insert(
            "use_global_cursor".to_owned(),
            Value::Bool(self.use_global_cursor),
        );
        if !self.use_global_cursor {
            let states = self
                .creation_order
                .values()
                .filter_map(|key| Some((key, self.cursor_of(key)?)))
                .map(|(key, cursor)| {
                    let partition: Value = serde_json::from_str(key).unwrap_or(Value::Null);
                    let mut entry = Map::new();
                    entry.insert("partition".to_owned(), partition);
                    entry.insert("cursor".to_owned(), Value::Object(cursor.state()));
                    Value::Object(entry)
                })
                .collect();
            state.insert("states".to_owned(), Value::Array(states));
        }
        if let Some(global) = self.global_cursor.as_ref().filter(|g| !g.is_empty()) {
            state.insert("state".to_owned(), Value::Object(global.clone()));
        }
        state.insert(
            "lookback_window".to_owned(),
            Value::from(self.lookback_window),
        );
        if let Some(parent_state) = &self.parent_state {
            state.insert("parent_state".to_owned(), parent_state.clone());
        }
        state
    }

    /// Whether a record of the slice whose partition key is `partition_key` is inside the range
    /// this sync reads.
    pub fn should_be_synced(
        &self,
        partition_key: &str,
        record: &Value,
    ) -> Result<bool, SliceError> {
        if !self.use_global_cursor {
            if let Some(cursor) = self.cursor_of(partition_key) {
                return cursor.should_be_synced(record);
            }
        }
        self.new_partition_cursor()?.should_be_synced(record)
    }

    /// The cursor's spec.
    pub fn spec(&self) -> &Arc<DatetimeSpec> {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_manifest::ManifestPath;
    use sluice_manifest::model::{self, FromNode};

    fn spec() -> Arc<DatetimeSpec> {
        let model = model::DatetimeBasedCursor::from_node(
            &json!({
                "type": "DatetimeBasedCursor",
                "cursor_field": "updated_at",
                "datetime_format": "%Y-%m-%d",
                "start_datetime": "2024-01-01",
                "end_datetime": "2024-01-02"
            }),
            &ManifestPath::root(),
        )
        .unwrap();
        let config = Arc::new(json!({}));
        Arc::new(DatetimeSpec::from_model(&model, "s", &config, &ManifestPath::root()).unwrap())
    }

    fn partition(id: usize) -> StreamSlice {
        StreamSlice::partition(json!({"id": id}).as_object().cloned().unwrap())
    }

    /// Generates and reads `count` partitions, one record each.
    fn read_partitions(cursor: &mut PerPartitionCursor, count: usize) {
        let record = json!({"updated_at": "2024-01-02"});
        for id in 0..count {
            for slice in cursor.slices_of(&partition(id), None).unwrap() {
                let mut progress = SliceProgress::default();
                cursor.observe(&slice.partition_key(), &mut progress, &record);
                cursor.close(&slice, &progress).unwrap();
            }
        }
    }

    #[test]
    fn states_list_each_partition_with_its_cursor() {
        let mut cursor = PerPartitionCursor::new(spec(), &Map::new(), false, "s").unwrap();
        read_partitions(&mut cursor, 2);
        let mut state = cursor.final_state(None);
        state.insert("lookback_window".into(), json!(0));
        assert_eq!(
            Value::Object(state),
            json!({
                "use_global_cursor": false,
                "states": [
                    {"partition": {"id": 0}, "cursor": {"updated_at": "2024-01-02"}},
                    {"partition": {"id": 1}, "cursor": {"updated_at": "2024-01-02"}}
                ],
                "state": {"updated_at": "2024-01-02"},
                "lookback_window": 0
            })
        );
    }

    #[test]
    fn more_partitions_than_the_limit_switch_to_a_global_cursor() {
        let mut cursor = PerPartitionCursor::new(spec(), &Map::new(), false, "s").unwrap();
        // The reference checks the count before it counts the new partition.
        read_partitions(&mut cursor, SWITCH_TO_GLOBAL_LIMIT + 1);
        assert!(!cursor.uses_global_cursor());
        read_partitions(&mut cursor, 1);
        assert!(cursor.uses_global_cursor());
        let state = cursor.final_state(None);
        assert!(!state.contains_key("states"), "{state:?}");
        assert_eq!(state["state"], json!({"updated_at": "2024-01-02"}));
    }

    #[test]
    fn partition_cursors_are_capped_dropping_finished_ones_first() {
        let mut cursor = PerPartitionCursor::new(spec(), &Map::new(), false, "s").unwrap();
        read_partitions(&mut cursor, MAX_PARTITION_CURSORS + 100);
        assert_eq!(cursor.cursors.len(), MAX_PARTITION_CURSORS);
        // The oldest went first.
        assert!(cursor.cursor_of(&partition(0).partition_key()).is_none());
        let newest = partition(MAX_PARTITION_CURSORS + 99).partition_key();
        assert!(cursor.cursor_of(&newest).is_some());
    }
}
