//! Work that outlives a call, where several nodes share the store
//! (docs/cluster.md): each campaign and task is run by one node, the one
//! that created it or took it over; the others keep it to show and to
//! route by. What another node changed reaches this one as
//! [`WorkChanges`]; the work of a node whose lease ran out, as adopted
//! [`StoredWork`].

use std::time::Instant;

use super::Engine;
use crate::store::{StoredWork, WorkChanges};

impl Engine {
    /// What other nodes changed in the store.
    pub(super) fn work_changed(&mut self, _now: Instant, _changes: WorkChanges) {}

    /// Work this node takes over from a node whose lease ran out.
    pub(super) fn work_adopted(&mut self, _now: Instant, _work: StoredWork) {}
}
