//! A call: one customer's contact with the hotline. It owns its legs (the
//! customer's, an agent's, any other it places), its IVR, its place in a
//! queue and the facts its record is built from ([`record`]).

pub mod controls;
pub mod notice;
pub mod record;
pub mod work;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Language;
use crate::directory::CustomerInfo;
use crate::ids::{CallKey, LegKey};
use crate::ivr::Ivr;
use crate::leg::Leg;
use crate::media::catalog::PromptLibrary;
use crate::media::dtmf::DigitSource;
use crate::media::prompt::PromptId;

/// A feature code an agent dialled, with the agent's index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Login(usize),
    Logout(usize),
    Break(usize),
    Available(usize),
    /// The outcome of the agent's last task call.
    TaskOutcome(usize, crate::tasks::TaskOutcome),
    /// Dialled by someone who is not a registered agent.
    Refused,
}

/// What follows an announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSequence {
    /// Connect the customer to the agent who answered on `leg`.
    Bridge { agent: String, leg: LegKey },
    /// Back to music on hold.
    Moh,
    /// Connect the customer again with `leg` (after a hold, or a failed
    /// transfer).
    Rebridge { leg: LegKey },
    /// The transfer announcement is over: move the caller on.
    Transfer,
    /// A failed transfer with nobody to go back to: queue again.
    Requeue,
    /// A task's briefing to the agent is over: dial the customer.
    DialCustomer,
    /// The callback number was read back: wait for the caller's key.
    CallbackListen,
    /// The callback is booked and said: hang up.
    Hangup,
    /// A customer called back first has heard why: wait for an agent.
    WaitForAgent,
}

/// How a queued call left its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueExit {
    Answered,
    Abandoned,
    Timeout,
    Overflow,
    Empty,
    ExitKey,
    Refused,
    /// Left to be called back, keeping the place.
    Callback,
}

impl QueueExit {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueExit::Answered => "answered",
            QueueExit::Abandoned => "abandoned",
            QueueExit::Timeout => "timeout",
            QueueExit::Overflow => "overflow",
            QueueExit::Empty => "empty",
            QueueExit::ExitKey => "exit_key",
            QueueExit::Refused => "refused",
            QueueExit::Callback => "callback",
        }
    }
}

/// Where a queued call stands, for its record.
#[derive(Debug, Clone, Default)]
pub struct QueueVisit {
    pub queue: String,
    pub joined_at: Option<Instant>,
    pub first_offer_at: Option<Instant>,
    pub bridged_at: Option<Instant>,
    /// The agent's phone answered (the announcement plays before the bridge).
    pub answered_at: Option<Instant>,
    /// The queue's wrap-up after this call, for the record.
    pub wrap_up: Option<Duration>,
    /// Left the queue unanswered (refused, timed out, ...).
    pub left_at: Option<Instant>,
    pub agent: Option<String>,
    pub agent_number: Option<String>,
    pub offers: u32,
    pub result: Option<QueueExit>,
}

impl QueueVisit {
    /// Still waiting for an agent.
    pub fn waiting(&self) -> bool {
        self.result.is_none() && self.bridged_at.is_none()
    }
}

pub struct Call {
    pub key: CallKey,
    /// The prompts the call started with: a reload does not change the
    /// ids its media plays.
    pub prompts: Arc<PromptLibrary>,
    /// The customer's leg: the IVR talks to it and the record describes it.
    pub customer: LegKey,
    pub legs: Vec<Leg>,
    /// Legs ringing or connected to agents, and whose they are.
    pub agent_legs: Vec<(LegKey, String)>,
    /// The two legs whose audio is relayed.
    pub bridge: Option<(LegKey, LegKey)>,
    pub arrived_at: Instant,
    /// When ringing ends and the call is answered.
    pub answer_at: Option<Instant>,
    pub ivr: Ivr,
    /// Token of the prompt playing to the customer now; other tokens'
    /// ends are stale.
    pub playing: Option<u32>,
    pub next_token: u32,
    /// The last key taken, for dropping the same key sent two ways.
    pub last_digit: Option<(char, DigitSource, Instant)>,
    pub info: CustomerInfo,
    pub message_file: Option<String>,
    /// When the message now being recorded started (after the beep).
    pub recording_since: Option<Instant>,
    /// A message shorter than `messages.min_length`, discarded: its length.
    pub message_discarded_ms: Option<u64>,
    /// The call's time in an ACD queue, once the IVR queues it.
    pub queue: Option<QueueVisit>,
    /// A feature code dialled by an agent, instead of the IVR.
    pub feature: Option<Feature>,
    /// Prompts still to play in an announcement built from pieces, and
    /// what to do when it is over.
    pub sequence: VecDeque<PromptId>,
    pub after_sequence: Option<AfterSequence>,
    pub agent_hung_up: bool,
    pub digits: String,
    pub caller_spoke: bool,
    /// A call hotline placed to deliver a campaign's notice.
    pub notice: Option<notice::NoticeCall>,
    /// An inbound caller who heard a campaign's notice lately: (campaign,
    /// its name).
    pub notified_by: Option<(crate::campaign::CampaignId, String)>,
    /// In-call controls: hold, the survey, transfers.
    pub controls: controls::Controls,
    /// A call placed to work a task.
    pub work: Option<work::WorkCall>,
    /// A waiting caller's callback request.
    pub callback: Option<work::CallbackAsk>,
    /// A caller who called lately (first-contact responsibility).
    pub repeat: Option<work::RepeatContact>,
}

impl Call {
    /// A call at its start: its customer's leg `customer` (in `legs`, or
    /// to be placed), its IVR, and what the directory knows of the
    /// caller; no queue, no agent, nothing played yet.
    pub fn new(
        key: CallKey,
        prompts: Arc<PromptLibrary>,
        customer: LegKey,
        legs: Vec<Leg>,
        ivr: Ivr,
        info: CustomerInfo,
        now: Instant,
    ) -> Call {
        Call {
            key,
            prompts,
            customer,
            legs,
            agent_legs: Vec::new(),
            bridge: None,
            arrived_at: now,
            answer_at: None,
            ivr,
            playing: None,
            next_token: 0,
            last_digit: None,
            info,
            message_file: None,
            recording_since: None,
            message_discarded_ms: None,
            queue: None,
            feature: None,
            sequence: VecDeque::new(),
            after_sequence: None,
            agent_hung_up: false,
            digits: String::new(),
            caller_spoke: false,
            notice: None,
            notified_by: None,
            controls: Default::default(),
            work: None,
            callback: None,
            repeat: None,
        }
    }

    pub fn leg(&self, key: LegKey) -> Option<&Leg> {
        self.legs.iter().find(|l| l.key == key)
    }

    pub fn leg_mut(&mut self, key: LegKey) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.key == key)
    }

    /// The customer's leg. Every call has one until it ends.
    pub fn customer_leg(&self) -> Option<&Leg> {
        self.leg(self.customer)
    }

    pub fn customer_leg_mut(&mut self) -> Option<&mut Leg> {
        let key = self.customer;
        self.leg_mut(key)
    }

    /// The leg the customer is with: bridged with, or held by.
    pub fn partner(&self) -> Option<LegKey> {
        match (self.bridge, self.controls.held_partner) {
            (Some((a, b)), _) => Some(if a == self.customer { b } else { a }),
            (None, held) => held,
        }
    }

    /// The agent a leg rings or connects, if it is an agent's.
    pub fn agent_of(&self, leg: LegKey) -> Option<String> {
        self.agent_legs
            .iter()
            .find(|(l, _)| *l == leg)
            .map(|(_, a)| a.clone())
    }

    /// The leg ringing or connecting `agent`.
    pub fn leg_of_agent(&self, agent: &str) -> Option<LegKey> {
        self.agent_legs
            .iter()
            .find(|(_, a)| a == agent)
            .map(|(l, _)| *l)
    }

    /// Takes a leg out of the call (it has ended).
    pub fn remove_leg(&mut self, key: LegKey) -> Option<Leg> {
        let i = self.legs.iter().position(|l| l.key == key)?;
        if self.bridge.is_some_and(|(a, b)| a == key || b == key) {
            self.bridge = None;
        }
        Some(self.legs.remove(i))
    }

    /// A prompt by name in the call's language, else in `fallback`.
    pub fn prompt(&self, name: &str, fallback: Language) -> Option<PromptId> {
        self.prompts
            .get(self.ivr.language, name)
            .or_else(|| self.prompts.get(fallback, name))
    }

    /// The leg prompts play to: the agent while a task's call briefs them
    /// (the customer is not on the line yet), else the customer.
    pub fn prompt_leg(&self) -> LegKey {
        match &self.work {
            Some(w) if w.stage == work::WorkStage::Briefing => w.agent_leg.unwrap_or(self.customer),
            _ => self.customer,
        }
    }

    /// The next playback token for the customer's prompts.
    pub fn next_play_token(&mut self) -> u32 {
        self.next_token = self.next_token.wrapping_add(1);
        self.playing = Some(self.next_token);
        self.next_token
    }
}

/// The engine's own id for a call, as in its record: `hl-<start ms>-<n>`,
/// or `hl-<node>-<start ms>-<n>` on a node sharing a store.
pub fn record_id(clock: &crate::time::WallClock, key: CallKey) -> String {
    record_id_of(clock, key.0)
}

/// [`record_id`] for any of the engine's keys (calls, legs, attempts).
pub fn record_id_of(clock: &crate::time::WallClock, key: u64) -> String {
    match &clock.node {
        Some(node) => format!("hl-{}-{}-{key}", node.as_str(), clock.base_ms),
        None => format!("hl-{}-{key}", clock.base_ms),
    }
}
