//! Agents: what the agent chose (its [`AgentStatus`]) and what the system
//! is doing with it (its [`AgentState`]), kept apart as in FreeSWITCH's
//! mod_callcenter, but with every state owning the event or timer that
//! leaves it:
//!
//! | State | Left by |
//! |---|---|
//! | `Idle` | an offer (only when available and reachable) |
//! | `Offered` | answer, rejection, ring timeout, or cancel (caller gone, another agent answered, the agent went on break, logged out or unreachable) |
//! | `OnCall` | either side hanging up |
//! | `WrapUp` | its timer (the queue's `wrap_up`) |

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::Deserialize;

use super::strategy::{Candidate, Rank};
use crate::ids::CallKey;

/// One agent as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The login id the engine uses, e.g. `"1001"`.
    pub id: String,
    /// The number callers hear ("007号客服员"), e.g. `"007"`.
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub name: String,
    /// Skill name to level, 1..=10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Names of the queues the agent serves.
    pub queues: Vec<String>,
}

impl AgentConfig {
    /// An agent serving `queues`, with the id as number and name and no
    /// skills.
    pub fn new(id: &str, queues: &[&str]) -> AgentConfig {
        AgentConfig {
            id: id.to_string(),
            number: id.to_string(),
            name: id.to_string(),
            skills: BTreeMap::new(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
        }
    }

    /// Adds a skill at `level`.
    pub fn with_skill(mut self, skill: &str, level: u8) -> AgentConfig {
        self.skills.insert(skill.to_string(), level);
        self
    }
}

/// What the agent chose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentStatus {
    #[default]
    LoggedOut,
    Available,
    OnBreak {
        reason: String,
    },
}

impl AgentStatus {
    pub fn is_logged_in(&self) -> bool {
        !matches!(self, AgentStatus::LoggedOut)
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentStatus::LoggedOut => f.write_str("logged-out"),
            AgentStatus::Available => f.write_str("available"),
            AgentStatus::OnBreak { reason } => write!(f, "on-break({reason})"),
        }
    }
}

/// The reason an agent is put on break after too many offers in a row
/// ended without an answer.
pub const NO_ANSWER_BREAK: &str = "no answer";

/// What the system is doing with the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentState {
    #[default]
    Idle,
    /// The agent's phone is ringing with this caller.
    Offered {
        caller: CallKey,
    },
    OnCall {
        caller: CallKey,
    },
    /// After a call, until `until`.
    WrapUp {
        until: Instant,
    },
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentState::Idle => f.write_str("idle"),
            AgentState::Offered { caller } => write!(f, "offered({})", caller.0),
            AgentState::OnCall { caller } => write!(f, "on-call({})", caller.0),
            AgentState::WrapUp { .. } => f.write_str("wrap-up"),
        }
    }
}

/// An agent at run time.
#[derive(Debug)]
pub(crate) struct Agent {
    pub config: AgentConfig,
    pub index: u32,
    pub status: AgentStatus,
    pub state: AgentState,
    /// Registered: the engine can reach the agent's phone.
    pub reachable: bool,
    /// On a call the ACD did not place (a transfer straight to the
    /// agent): not offered one meanwhile.
    pub engaged: bool,
    /// Held by another node sharing the store (offered or on a call
    /// there, docs/cluster.md): not offered a call here meanwhile.
    pub claimed_elsewhere: bool,
    pub calls_answered: u64,
    pub last_call_end: Option<Instant>,
    /// Offers in a row that ended without an answer.
    pub no_answers: u32,
    /// When the current offer started ringing.
    pub offered_at: Option<Instant>,
    /// The ring timeout or wrap-up end, mirrored in the timer table.
    pub deadline: Option<Instant>,
    /// Queues the agent is a member of (listed and skilled enough).
    pub queues: Vec<usize>,
    /// In its queues' idle sets (it was usable when last checked).
    pub indexed: bool,
    /// The (queue, rank) entries it has in those idle sets while indexed.
    pub ranks: Vec<(usize, Rank)>,
}

impl Agent {
    pub fn new(config: AgentConfig, index: u32) -> Agent {
        Agent {
            config,
            index,
            status: AgentStatus::LoggedOut,
            state: AgentState::Idle,
            reachable: false,
            engaged: false,
            claimed_elsewhere: false,
            calls_answered: 0,
            last_call_end: None,
            no_answers: 0,
            offered_at: None,
            deadline: None,
            queues: Vec::new(),
            indexed: false,
            ranks: Vec::new(),
        }
    }

    /// Can be offered a call right now.
    pub fn usable(&self) -> bool {
        self.status == AgentStatus::Available
            && self.reachable
            && !self.engaged
            && !self.claimed_elsewhere
            && self.state == AgentState::Idle
    }

    /// Counts toward a queue's available agents (for wait estimates).
    pub fn available(&self) -> bool {
        self.status == AgentStatus::Available && self.reachable
    }

    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            agent: self.index,
            calls_answered: self.calls_answered,
            last_call_end: self.last_call_end,
            skills: &self.config.skills,
        }
    }

    pub fn view(&self) -> AgentView<'_> {
        AgentView {
            id: &self.config.id,
            number: &self.config.number,
            name: &self.config.name,
            status: &self.status,
            state: self.state,
            reachable: self.reachable,
            calls_answered: self.calls_answered,
            last_call_end: self.last_call_end,
            consecutive_no_answers: self.no_answers,
        }
    }
}

/// A read-only look at one agent, for status pages and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentView<'a> {
    pub id: &'a str,
    pub number: &'a str,
    pub name: &'a str,
    pub status: &'a AgentStatus,
    pub state: AgentState,
    pub reachable: bool,
    pub calls_answered: u64,
    pub last_call_end: Option<Instant>,
    pub consecutive_no_answers: u32,
}
