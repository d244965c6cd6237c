//! `stream_groups`: streams sharing a resource the API lets only one of them use at a time
//! (`BlockSimultaneousSyncsAction`), as the reference's concurrent read processor defers them.
//!
//! A grouped stream starts only when no other stream of its group is active, it is not being
//! read as some other stream's parent, and none of its grouped ancestors is being read. It stays
//! active until its last partition is read. A grouped parent is active while a child generates
//! its partitions from it.

use crate::EngineError;
use crate::build::StreamSlot;
use crate::slicing::{CursorSpec, Router};
use crate::stream::Stream;
use indexmap::IndexMap;
use sluice_manifest::model;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use tokio::sync::Notify;

/// The groups of one sync and which of their streams are active.
#[derive(Debug, Default)]
pub(crate) struct StreamGroups {
    group_of: HashMap<String, String>,
    /// Each stream's ancestors that are in a group.
    grouped_ancestors: HashMap<String, Vec<String>>,
    active: RefCell<HashSet<String>>,
    changed: Notify,
}

impl StreamGroups {
    /// The manifest's groups over the streams built for this command. As in the reference, a
    /// stream may not share a group with one of its ancestors (it would wait for itself).
    pub fn new(
        groups: Option<&IndexMap<String, model::StreamGroup>>,
        streams: &[&StreamSlot],
    ) -> Result<Self, EngineError> {
        let mut group_of = HashMap::new();
        for (group, definition) in groups.into_iter().flatten() {
            for stream in &definition.streams {
                if let Some(name) = stream.name.as_deref().filter(|n| !n.is_empty()) {
                    group_of.insert(name.to_owned(), group.clone());
                }
            }
        }
        let mut grouped_ancestors = HashMap::new();
        if group_of.is_empty() {
            return Ok(Self::default());
        }
        for slot in streams {
            let StreamSlot::Ready(stream) = slot else {
                continue;
            };
            // The reference sees the parents only of a stream with a per-partition cursor (an
            // incremental substream), so only those are refused; a full refresh child in its
            // parent's group is read as in the reference.
            let mut visible = Vec::new();
            collect_ancestors(stream, &mut visible, true);
            if let Some(group) = group_of.get(&stream.name) {
                if let Some(parent) = visible.iter().find(|a| group_of.get(*a) == Some(group)) {
                    return Err(EngineError::system(format!(
                        "Stream '{}' and its parent stream '{parent}' are both in group '{group}'. A child stream must not share a group with its parent to avoid deadlock.",
                        stream.name
                    )));
                }
            }
            // Waiting, though, counts every parent read (so an API that forbids simultaneous
            // reads is spared one in the reference's blind spot); what is written is the same.
            let mut ancestors = Vec::new();
            collect_ancestors(stream, &mut ancestors, false);
            ancestors.retain(|a| group_of.contains_key(a));
            grouped_ancestors.insert(stream.name.clone(), ancestors);
        }
        Ok(Self {
            group_of,
            grouped_ancestors,
            active: RefCell::default(),
            changed: Notify::new(),
        })
    }

    /// The group of a stream, if it is in one.
    pub fn group(&self, stream: &str) -> Option<&str> {
        self.group_of.get(stream).map(String::as_str)
    }

    /// Waits until `stream` may start, then marks it and its grouped ancestors active.
    pub async fn start(&self, stream: &str) {
        if self.group_of.is_empty() {
            return;
        }
        let ancestors = self.grouped_ancestors.get(stream).map_or(&[][..], |a| a);
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before looking, so a change made in between is not missed.
            changed.as_mut().enable();
            {
                let mut active = self.active.borrow_mut();
                let group = self.group_of.get(stream);
                let blocked = group.is_some_and(|group| {
                    active.contains(stream)
                        || active.iter().any(|a| self.group_of.get(a) == Some(group))
                }) || ancestors.iter().any(|a| active.contains(a));
                if !blocked {
                    if group.is_some() {
                        active.insert(stream.to_owned());
                    }
                    active.extend(ancestors.iter().cloned());
                    return;
                }
            }
            changed.await;
        }
    }

    /// `stream` has generated all its partitions: its parents are no longer read for it.
    pub fn partitions_generated(&self, stream: &str) {
        if let Some(ancestors) = self.grouped_ancestors.get(stream) {
            let mut active = self.active.borrow_mut();
            for ancestor in ancestors {
                active.remove(ancestor);
            }
            self.changed.notify_waiters();
        }
    }

    /// `stream` is read to its end.
    pub fn done(&self, stream: &str) {
        if self.active.borrow_mut().remove(stream) {
            self.changed.notify_waiters();
        }
    }
}

/// The names of the streams `stream` reads as parents, at any depth; with
/// `per_partition_only`, only through streams with a per-partition cursor, as the reference
/// finds them.
fn collect_ancestors(stream: &Stream, names: &mut Vec<String>, per_partition_only: bool) {
    let slicing = &stream.slicing;
    let per_partition = matches!(slicing.cursor, CursorSpec::Datetime(_))
        && !matches!(slicing.router, Router::Single);
    if per_partition_only && !per_partition {
        return;
    }
    collect_from_router(&slicing.router, names, per_partition_only);
}

fn collect_from_router(router: &Router, names: &mut Vec<String>, per_partition_only: bool) {
    match router {
        Router::Single | Router::List(_) => {}
        Router::Substream(parents) => {
            for parent in parents {
                names.push(parent.stream.name.clone());
                collect_ancestors(&parent.stream, names, per_partition_only);
            }
        }
        Router::Product(routers) | Router::Union(_, routers) => {
            for router in routers {
                collect_from_router(router, names, per_partition_only);
            }
        }
        Router::Grouping(_, inner) => collect_from_router(inner, names, per_partition_only),
    }
}
