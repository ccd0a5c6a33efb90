//! Work that outlives a call, as the store keeps it: what the engine asks
//! to be written ([`StoreWrite`]) and what the shell reads back at start
//! ([`StoredWork`]). The store itself (SQLite by default, one interface
//! for PostgreSQL next) is the shell's; the engine only names the writes,
//! and waits for the one that must be durable before it acts (an attempt,
//! before its INVITE leaves).

use crate::campaign::{Attempt, Campaign, CampaignId, CampaignState, NumberState};
use crate::tasks::Task;

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
