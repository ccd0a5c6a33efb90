//! Several nodes sharing one store (docs/cluster.md): what the engine
//! tells the shared store and what it hears back. Pure data; the shell's
//! cluster thread turns requests into SQL and the store's state into
//! events.
//!
//! The store is the truth for who may ring whom: before ringing an agent,
//! the engine claims the agent ([`ClusterRequest::Claim`]); the store
//! grants it only when no other node holds the agent and no caller ahead
//! of this one (VIP class, then arrival) waits unoffered on another node.
//! A node's claims and waiting callers live as long as its lease: a node
//! that stops renewing it loses them, and with them the right to bridge.

use std::net::SocketAddr;

use crate::acd::AgentStatus;
use crate::ids::CallKey;
use crate::sip::transport::Transport;

/// One of an agent's phones, registered through some node, as every node
/// sees it (ringing it from another node goes to `source` with `path` as
/// the Route set: the edge proxy the phone registered through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBinding {
    pub contact: String,
    pub source: SocketAddr,
    pub transport: Transport,
    pub path: Vec<String>,
    /// Wall-clock ms since the Unix epoch when it expires.
    pub expires_ms: u64,
}

/// What the engine asks of the shared store, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRequest {
    /// Claim `agent` for `caller` (waiting in `queue` with `priority`
    /// since `arrival_ms`); answer [`ClusterEvent::Claimed`] with the same
    /// `claim`. The agent is not rung until then.
    Claim {
        claim: u64,
        agent: String,
        caller: CallKey,
        queue: String,
        priority: u8,
        arrival_ms: u64,
    },
    /// The agent is idle here again: this node's claim on it ends.
    Release { agent: String },
    /// The caller waits unoffered in `queue` (or its place changed).
    Waiting {
        caller: CallKey,
        queue: String,
        priority: u8,
        arrival_ms: u64,
    },
    /// The caller was offered, connected or left.
    NotWaiting { caller: CallKey },
    /// The agent is on a call this node placed outside the ACD (a transfer
    /// or consultation straight to them), or no longer: held like a claim,
    /// so that no other node offers them a call meanwhile.
    Engaged { agent: String, engaged: bool },
    /// The agent's status as set on this node (login, break, logout).
    Status { agent: String, status: AgentStatus },
    /// Every phone of `user` registered through this node (empty: none).
    Bindings {
        user: String,
        bindings: Vec<SharedBinding>,
    },
}

/// What the shared store tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// The answer to a [`ClusterRequest::Claim`]: ring the agent, or not
    /// (held by another node, or a caller ahead waits elsewhere; the store
    /// could not be reached counts as not).
    Claimed {
        claim: u64,
        granted: bool,
    },
    /// A caller waiting unoffered on another node (`entry`: the store's id).
    RemoteWaiting {
        entry: u64,
        queue: String,
        priority: u8,
        arrival_ms: u64,
    },
    RemoteGone {
        entry: u64,
    },
    /// Another node holds the agent (offered, on a call or wrapping up
    /// there), or no longer.
    AgentHeld {
        agent: String,
        held: bool,
    },
    /// The agent's status was set on another node.
    AgentStatus {
        agent: String,
        status: AgentStatus,
    },
    /// The agent's phones registered through other nodes (all of them).
    RemoteBindings {
        user: String,
        bindings: Vec<SharedBinding>,
    },
    /// The store cannot be reached and this node's lease has run out:
    /// nobody is offered an agent here until [`ClusterEvent::StoreBack`].
    StoreLost,
    /// The store is back and this node's state is in it again.
    StoreBack,
}
