//! Work that outlives a call, as the store keeps it: what the engine asks
//! to be written ([`StoreWrite`]) and what the shell reads back at start
//! ([`StoredWork`]). The store itself (SQLite by default, one interface
//! for PostgreSQL next) is the shell's; the engine only names the writes,
//! and waits for the one that must be durable before it acts (an attempt,
//! before its INVITE leaves).

use std::collections::BTreeSet;

use crate::campaign::{Attempt, Campaign, CampaignId, CampaignState, NumberState, Target};
use crate::tasks::{Task, TaskId};

/// One write, in the order the engine asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWrite {
    /// An attempt is about to be dialled. The engine dials once the store
    /// acknowledges it (`Input::Stored`).
    AttemptStarted {
        campaign: CampaignId,
        target: usize,
        attempt: Attempt,
    },
    /// An attempt ended, and where its number now stands.
    AttemptEnded {
        campaign: CampaignId,
        target: usize,
        attempt: Attempt,
        state: NumberState,
        due_ms: Option<u64>,
    },
    /// A number changed state without a call (do-not-call, cancelled).
    Target {
        campaign: CampaignId,
        target: usize,
        state: NumberState,
        due_ms: Option<u64>,
    },
    Campaign {
        campaign: CampaignId,
        state: CampaignState,
    },
    /// A number joins the do-not-call list (its owner opted out).
    DoNotCall { number: String },
    /// A task, whole, as it now stands (created or changed). `ack`: the
    /// engine waits for it (a dial about to start, a task the API created).
    Task { task: Box<Task>, ack: bool },
    /// A call an agent took (or any answered call), for first-contact
    /// routing after a restart.
    Contact(Contact),
}

impl StoreWrite {
    /// Whether the engine waits for this write before acting.
    pub fn needs_ack(&self) -> bool {
        matches!(
            self,
            StoreWrite::AttemptStarted { .. } | StoreWrite::Task { ack: true, .. }
        )
    }
}

/// A campaign read back, with its uploaded prompt's audio (8 kHz mono)
/// if it brought its own.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCampaign {
    pub campaign: Campaign,
    pub prompt_audio: Option<Vec<i16>>,
}

/// A notice a number heard (answered), for recognising it when it calls
/// the hotline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub number: String,
    pub campaign: CampaignId,
    pub campaign_name: String,
    pub at_ms: u64,
}

/// Everything the store holds that the engine runs from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredWork {
    pub campaigns: Vec<StoredCampaign>,
    pub do_not_call: Vec<String>,
    pub notices: Vec<Notice>,
    /// Every task not yet closed, and those closed in the last days (for
    /// first-contact routing and the lists).
    pub tasks: Vec<Task>,
    /// Calls answered by an agent lately, for first-contact routing.
    pub contacts: Vec<Contact>,
    /// Of the campaigns and tasks above, those another node runs (several
    /// nodes share the store): this node keeps them to show and to route
    /// by, and never dials or offers them. Empty on one node.
    pub foreign: Foreign,
}

/// Campaigns and tasks another node runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Foreign {
    pub campaigns: BTreeSet<CampaignId>,
    pub tasks: BTreeSet<TaskId>,
}

/// What other nodes sharing the store changed since this node last asked
/// (several nodes; never on one). Each item is whole, as the store now
/// holds it, with whether another node runs it (`foreign`): a task this
/// node runs can still be changed elsewhere (edited, cancelled, its
/// outcome set on another node's desk).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkChanges {
    /// Campaigns created, paused, resumed or cancelled elsewhere.
    pub campaigns: Vec<Changed<StoredCampaign>>,
    /// A number of a campaign another node dials: its state and attempts.
    pub targets: Vec<ChangedTarget>,
    pub tasks: Vec<Changed<Task>>,
    pub do_not_call: Vec<String>,
    /// Calls agents took on other nodes (first-contact routing).
    pub contacts: Vec<Contact>,
}

impl WorkChanges {
    pub fn is_empty(&self) -> bool {
        self.campaigns.is_empty()
            && self.targets.is_empty()
            && self.tasks.is_empty()
            && self.do_not_call.is_empty()
            && self.contacts.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Changed<T> {
    pub item: T,
    /// Another node runs it.
    pub foreign: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangedTarget {
    pub campaign: CampaignId,
    pub index: usize,
    pub target: Target,
}

/// A call an agent took, remembered so that the caller's next call can go
/// to the same agent (首问负责制) and be counted as a repeat contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub number: String,
    pub call_id: String,
    pub agent: Option<String>,
    pub at_ms: u64,
}
