//! The ACD's timer table, keyed by why each wake-up exists. Entries are
//! removed exactly when their reason goes away (the owner keeps the
//! instant it scheduled), so [`Timers::next`] is always a real deadline
//! and never a stale one.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::ids::CallKey;

/// Why the ACD wants to be woken. At equal instants, agents are freed
/// before callers are timed out, and announcements come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// An agent's wrap-up ends.
    WrapUpEnd(u32),
    /// An agent's phone has rung for the queue's `ring_timeout`.
    RingTimeout(u32),
    /// A caller reached the queue's `max_wait`.
    MaxWait(CallKey),
    /// A caller has waited `apology_after`.
    Apology(CallKey),
    /// A caller's next position announcement.
    Announce(CallKey),
    /// A repeat caller has waited long enough for their own agent.
    Preference(CallKey),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    set: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, timer: Timer) {
        self.set.insert((at, timer));
    }

    /// Removes the entry scheduled at `at`, if `at` is `Some`.
    pub fn cancel(&mut self, at: Option<Instant>, timer: Timer) {
        if let Some(at) = at {
            self.set.remove(&(at, timer));
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Removes and returns one entry due exactly at `at`.
    pub fn pop_at(&mut self, at: Instant) -> Option<Timer> {
        match self.set.first() {
            Some((first, _)) if *first == at => self.set.pop_first().map(|(_, t)| t),
            _ => None,
        }
    }
}
