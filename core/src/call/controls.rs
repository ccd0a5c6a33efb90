//! What an agent does to a call in progress: hold and resume, transfer,
//! and the satisfaction survey the caller is asked after the agent hangs
//! up. The call flow carries these out; here is what the call remembers.

use std::time::{Duration, Instant};

use crate::call::QueueVisit;
use crate::ids::LegKey;

#[derive(Debug, Clone, Default)]
pub struct Controls {
    /// On hold since then (the caller hears music).
    pub held_since: Option<Instant>,
    /// The leg the caller was bridged with before the hold.
    pub held_partner: Option<LegKey>,
    pub holds: u32,
    pub hold_total: Duration,
    pub survey: Option<Survey>,
    /// The caller's rating, 1 (best) to 5.
    pub satisfaction: Option<u8>,
    /// Transfers, in order, for the record.
    pub transfers: Vec<Transfer>,
    /// A transfer under way: the leg being rung, and where the caller
    /// goes back to if it fails.
    pub transferring: Option<Transferring>,
    /// An agent rung outside the ACD by a transfer, and their leg: the ACD
    /// has them engaged until that leg ends.
    pub direct_agent: Option<(LegKey, String)>,
    /// The call is recorded once bridged (its queue says so).
    pub record: bool,
    /// The recording, relative to the recordings folder, once started.
    pub recording_file: Option<String>,
    /// Why the recording stopped early (the call went on).
    pub recording_error: Option<String>,
    /// Each agent's time with the caller so far, in order: a transfer to
    /// another agent adds a part, so each agent's handle time is theirs.
    pub served: Vec<AgentPart>,
    /// The agent with the caller now, and since when.
    pub serving: Option<(String, Instant)>,
    /// The agent's consultation call while the caller is on hold: their
    /// phone's second call, and the agent it rings (an attended transfer
    /// joins the caller with them).
    pub consult: Option<Consult>,
    /// The queue visit in which the caller first reached an agent, kept
    /// when a transfer queues them again: the record's wait and service
    /// level are the caller's first wait, not the transfer's.
    pub first_visit: Option<QueueVisit>,
    /// The caller's key for the callback exchange is due by then.
    pub callback_key_at: Option<Instant>,
    /// What the agent saved on the desk: a summary and the business type
    /// they chose (the IVR's may differ).
    pub summary: Option<String>,
    pub saved_business: Option<String>,
}

/// A consultation call: the holding agent's phone called another agent
/// through hotline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consult {
    /// The holding agent, and their phone's call to hotline (a UAS leg).
    pub from: String,
    pub phone: LegKey,
    /// The agent consulted, and the leg ringing or connecting them.
    pub agent: String,
    pub target: LegKey,
}

/// One agent's time connected to the caller (hold included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPart {
    pub agent: String,
    pub talk: Duration,
}

impl Controls {
    /// `agent` is connected to the caller from `now` (a bridge).
    pub fn agent_connected(&mut self, now: Instant, agent: String) {
        self.agent_parted(now);
        self.serving = Some((agent, now));
    }

    /// The agent with the caller leaves them (hangs up, or transfers).
    pub fn agent_parted(&mut self, now: Instant) {
        let Some((agent, since)) = self.serving.take() else {
            return;
        };
        let talk = now.saturating_duration_since(since);
        // Back with the same agent (a transfer that failed): one part.
        match self.served.last_mut() {
            Some(last) if last.agent == agent => last.talk += talk,
            _ => self.served.push(AgentPart { agent, talk }),
        }
    }

    /// Every agent's part, the one connected now counted to `now`.
    pub fn agent_parts(&self, now: Instant) -> Vec<AgentPart> {
        let mut parts = self.served.clone();
        if let Some((agent, since)) = &self.serving {
            let talk = now.saturating_duration_since(*since);
            match parts.last_mut() {
                Some(last) if &last.agent == agent => last.talk += talk,
                _ => parts.push(AgentPart {
                    agent: agent.clone(),
                    talk,
                }),
            }
        }
        parts
    }

    /// Time on hold, a hold still in progress counted to `now`.
    pub fn hold_time(&self, now: Instant) -> Duration {
        self.hold_total
            + self
                .held_since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// The survey: asked, and the key awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    /// Times the question has been asked (it is asked at most twice).
    pub asked: u32,
    /// When the answer is late (set once the question has been played).
    pub deadline: Option<Instant>,
    /// The answer is in; the thanks are playing.
    pub answered: bool,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    Queue(String),
    Agent(String),
    /// A number through a trunk.
    Number(String),
    /// The satisfaction survey: the agent leaves and the caller rates.
    Survey,
}

impl TransferTarget {
    pub fn describe(&self) -> String {
        match self {
            TransferTarget::Queue(q) => format!("queue:{q}"),
            TransferTarget::Agent(a) => format!("agent:{a}"),
            TransferTarget::Number(n) => format!("number:{n}"),
            TransferTarget::Survey => "survey".to_string(),
        }
    }
}

/// One transfer, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The agent who transferred.
    pub from: Option<String>,
    pub to: TransferTarget,
    pub at: Instant,
    /// answered, no_answer, busy, failed, queued.
    pub result: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferring {
    /// The leg ringing the target (none for a queue).
    pub leg: Option<LegKey>,
    /// The transferring agent's leg, kept until the target answers, so
    /// that a failed transfer goes back to it.
    pub from_leg: Option<LegKey>,
    /// The REFER's subscription to tell of progress (NOTIFY), if the
    /// transfer came as a REFER.
    pub refer: Option<LegKey>,
}
