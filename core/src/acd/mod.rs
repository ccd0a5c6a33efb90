//! Automatic call distribution: queues, agents and strategies as one pure
//! state machine. No clock, no I/O, no SIP: the engine tells the ACD what
//! happened, with `now`, and carries out what it asks for.
//!
//! # Driving it
//!
//! 1. Feed every event to [`Acd::handle`]: a caller joined a queue or hung
//!    up, an agent logged in or went on break, an agent's phone answered
//!    or refused an offer, a phone registered or went away.
//! 2. Drain [`Acd::poll_action`] until it returns `None` and carry each
//!    [`AcdAction`] out: ring an agent ([`AcdAction::Offer`]), cancel a
//!    ringing agent, bridge the caller to the agent who answered, play an
//!    announcement, write a queue_log line, take the caller out of the
//!    queue.
//! 3. Wake at [`Acd::poll_timeout`] and call [`Acd::handle_timeout`]
//!    (ring timeouts, wrap-up ends, announcements, the apology, max wait),
//!    then drain the actions again.
//!
//! # Promises
//!
//! * An agent is offered or connected to at most one caller at a time;
//!   only a ring-all queue offers one caller to several agents at once, and
//!   the first answer wins while the others get [`AcdAction::CancelOffer`].
//! * No agent can get stuck: every [`AgentState`] other than `Idle` is left
//!   by an event the engine always reports (answer, rejection, hang-up) or
//!   by a timer the ACD owns (ring timeout, wrap-up end).
//! * Every `CallerJoined` ends in exactly one [`AcdAction::JoinRefused`] or
//!   [`AcdAction::Leave`], after which the ACD forgets the caller and
//!   ignores further inputs about it. A connected caller's `Leave` comes
//!   when the call ends ([`LeaveReason::Completed`]).
//! * After every call, no queue has both a caller waiting unoffered and a
//!   usable agent (available, reachable, idle) that may serve it.
//! * Inputs that no longer match the state (an answer for an offer
//!   already cancelled, a hang-up for an unknown caller) are ignored. An
//!   `OfferAnswered` that crosses a `CancelOffer` is the engine's to clean
//!   up: it sent the cancel, so it hangs that agent leg up.
//!
//! Strategies are ranking functions in [`strategy`]; the Asterisk-style
//! queue_log vocabulary is in [`queue_log`].

mod agent;
mod queue;
pub mod queue_log;
mod reload;
pub mod strategy;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::directory::CustomerClass;
use crate::ids::CallKey;

use agent::Agent;
pub use agent::{AgentConfig, AgentState, AgentStatus, AgentView, NO_ANSWER_BREAK};
use queue::{Caller, CallerKey, Phase, Queue};
pub use queue::{QueueConfig, QueueCounters, QueueStats, DEFAULT_HANDLE_TIME};
pub use queue_log::{QueueLogEvent, QueueLogKind};
pub use strategy::Strategy;
use timer::{Timer, Timers};

/// Added to a VIP caller's class priority, so any VIP is served before any
/// non-VIP.
pub const VIP_BONUS: u8 = 3;

/// A caller's queue priority: the class priority (group 3, business 2,
/// public 1) plus [`VIP_BONUS`] for VIPs. Higher is served first.
pub fn caller_priority(class: CustomerClass, vip: bool) -> u8 {
    class.priority() + if vip { VIP_BONUS } else { 0 }
}

/// What happened, as far as the ACD is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdInput {
    /// A caller asks to join `queue`. `caller_id` is the calling number,
    /// for the queue_log.
    CallerJoined {
        caller: CallKey,
        queue: String,
        priority: u8,
        caller_id: String,
        /// A repeat caller's agent (first-contact responsibility): offered
        /// to that agent alone until the instant, if the agent is
        /// available; then to anyone.
        preferred: Option<(String, Instant)>,
    },
    /// A waiting caller asked to be called back: their entry stays where
    /// it is (priority, arrival) under the callback's id `callback`, with
    /// no timers; the caller leaves ([`LeaveReason::CallbackRequested`]).
    /// `dial_first`: the customer is dialled before any agent is rung.
    KeepPlace {
        caller: CallKey,
        callback: CallKey,
        dial_first: bool,
    },
    /// Work with no caller on the line (a task, a callback after a
    /// restart) joins a queue, ordered by `order` among equal priorities.
    WorkJoined {
        caller: CallKey,
        queue: String,
        priority: u8,
        order: Instant,
        dial_first: bool,
    },
    /// A dial-first entry's customer answered: offered to agents now,
    /// from its place.
    CustomerReached { caller: CallKey },
    /// Work taken out of its queue (not reached, cancelled, draining).
    WorkWithdrawn { caller: CallKey },
    /// A task at risk of missing its deadline: new priority, same order.
    Reprioritise { caller: CallKey, priority: u8 },
    /// A waiting entry goes to `agent` alone until `until`, if the agent
    /// is available (an agent's "call back" on a task).
    Prefer {
        caller: CallKey,
        agent: String,
        until: Instant,
    },
    /// The caller hung up: while waiting or ringing (an abandon), or
    /// during the connected call.
    CallerHungUp { caller: CallKey },
    /// The caller pressed the queue's exit key while waiting.
    CallerPressedExit { caller: CallKey, key: char },
    /// Logged out -> available. Ignored when already logged in.
    AgentLogin { agent: String },
    /// Any status -> logged out. A ringing offer is cancelled; a connected
    /// call goes on until it ends, with no wrap-up afterwards.
    AgentLogout { agent: String },
    /// Any status -> on break (logging in when logged out). A ringing
    /// offer is cancelled.
    AgentBreak { agent: String, reason: String },
    /// Any status -> available (logging in when logged out).
    AgentAvailable { agent: String },
    /// The agent's phone registered (`true`) or its registration ended.
    /// An unreachable agent is never offered a call; a ringing offer is
    /// cancelled.
    AgentReachable { agent: String, reachable: bool },
    /// The agent's phone answered the offer of `caller`.
    OfferAnswered { caller: CallKey, agent: String },
    /// The agent's phone refused or failed the offer.
    OfferRejected {
        caller: CallKey,
        agent: String,
        reason: RejectReason,
    },
    /// The agent hung up the connected call.
    AgentHungUp { caller: CallKey, agent: String },
    /// The agent is on a call the ACD did not place (a transfer straight
    /// to them), or no longer: never offered a call meanwhile.
    AgentEngaged { agent: String, engaged: bool },
    /// A caller waiting unoffered on another node sharing the store
    /// (`entry` is the store's id for it, `arrival` its arrival on this
    /// node's clock). Never offered here; callers behind it wait for it.
    RemoteWaiting {
        entry: u64,
        queue: String,
        priority: u8,
        arrival: Instant,
    },
    /// That caller was offered, connected or left.
    RemoteGone { entry: u64 },
    /// The agent is held by another node (offered or on a call there), or
    /// no longer.
    AgentClaimedElsewhere { agent: String, claimed: bool },
    /// The store refused this node's claim on `agent` for `caller` (another
    /// node holds the agent, or a caller ahead waits elsewhere): the offer
    /// is withdrawn before anything rang, with no no-answer counted, and
    /// the agent is held elsewhere until the store says otherwise.
    OfferTaken { caller: CallKey, agent: String },
    /// No agent can be offered the waiting caller (the shared store is
    /// out of reach): they leave as from an empty queue, to the IVR's
    /// fallback (a message, by default).
    SendAway { caller: CallKey },
    /// The agent handed the caller on (a transfer): their call ends as
    /// by a hang-up, logged as a transfer.
    AgentTransferred {
        caller: CallKey,
        agent: String,
        to: String,
        attended: bool,
    },
}

/// Why an offer failed at the agent's phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Busy,
    NoAnswer,
    Failed,
}

/// What the ACD asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdAction {
    /// Ring the agent's phone with this caller.
    Offer { caller: CallKey, agent: String },
    /// Stop ringing the agent, for `reason`.
    CancelOffer {
        caller: CallKey,
        agent: String,
        reason: CancelReason,
    },
    /// The agent answered: connect the caller's audio to the agent's.
    Bridge { caller: CallKey, agent: String },
    /// Tell the caller their place in the queue and, when there is an
    /// estimate, the expected wait.
    Announce {
        caller: CallKey,
        position: usize,
        expected_wait: Option<Duration>,
    },
    /// Play "sorry for the wait" (once per caller).
    Apologise { caller: CallKey },
    /// A dial-first entry is at the head with an agent free: dial the
    /// customer, then report [`AcdInput::CustomerReached`] (or withdraw).
    DialCustomer { caller: CallKey },
    /// The caller is out of the ACD for good; exactly once per caller.
    Leave {
        caller: CallKey,
        reason: LeaveReason,
    },
    /// The caller could not join; exactly once per refused join.
    JoinRefused {
        caller: CallKey,
        reason: RefuseReason,
    },
    /// A queue_log line to write.
    QueueLog(QueueLogEvent),
    /// With [`Acd::share_waiting`]: the caller now waits unoffered in
    /// `queue` (other nodes keep their callers behind it), or its place
    /// changed. Said again after every offer that ends unanswered.
    Waiting {
        caller: CallKey,
        queue: String,
        priority: u8,
        arrival: Instant,
    },
    /// With [`Acd::share_waiting`]: the caller is offered, connected or
    /// gone.
    NotWaiting { caller: CallKey },
    /// An agent's status, state or reachability changed.
    AgentState {
        agent: String,
        status: AgentStatus,
        state: AgentState,
        reachable: bool,
    },
}

/// Why the ACD stops ringing an agent, so that every record of the offer
/// (queue_log, the offers stream) names the same outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// Rung for the queue's whole `ring_timeout` (queue_log RINGNOANSWER).
    RingTimeout,
    /// Another agent ringing for the same caller answered first (ring-all).
    AnsweredElsewhere,
    /// The caller hung up, timed out, pressed the exit key or the queue
    /// emptied (queue_log RINGCANCELED).
    CallerLeft,
    /// The agent went on break, logged out or lost its registration.
    AgentAway,
}

/// Why a caller left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// The connected call ended.
    Completed { agent: String, ended_by: EndedBy },
    /// The caller hung up while waiting or ringing.
    Abandoned,
    /// `max_wait` passed and the queue has no overflow target.
    Timeout,
    /// Send the caller to `target` (`max_wait` passed, or the queue was
    /// full on arrival).
    Overflow { target: String },
    /// The last agent logged out of a `leave_empty` queue.
    EmptyQueue,
    /// The caller pressed the exit key.
    ExitKey { key: char },
    /// The caller will be called back; their place is kept by the
    /// callback's entry.
    CallbackRequested { callback: CallKey },
    /// Work withdrawn by the engine.
    Withdrawn,
}

/// Which side ended a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndedBy {
    Caller,
    Agent,
    /// The agent handed the caller on (a transfer).
    Transfer,
}

/// Why a caller could not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// No agent is logged in and the queue does not `join_empty`.
    NoAgents,
    /// `max_len` callers are waiting and there is no overflow target.
    Full,
    UnknownQueue,
    /// The caller id is already in the ACD.
    DuplicateCaller,
}

/// A configuration the ACD cannot run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AcdConfigError {
    #[error("queue {0:?} is defined twice")]
    DuplicateQueue(String),
    #[error("queue {queue:?}: {message}")]
    InvalidQueue { queue: String, message: String },
    #[error("agent {0:?} is defined twice")]
    DuplicateAgent(String),
    #[error("agent {agent:?}: {message}")]
    InvalidAgent { agent: String, message: String },
    #[error("{0}: restart the engine to apply this")]
    NeedsRestart(String),
}

/// Agents counted by status and by state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentCounts {
    pub logged_out: usize,
    pub available: usize,
    pub on_break: usize,
    pub unreachable: usize,
    pub idle: usize,
    pub offered: usize,
    pub on_call: usize,
    pub wrap_up: usize,
}

/// Where a caller is, for status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerPhase<'a> {
    Waiting,
    /// A dial-first entry whose customer is being dialled.
    Dialing,
    Ringing {
        agents: Vec<&'a str>,
    },
    Bridged {
        agent: &'a str,
        since: Instant,
    },
}

/// A read-only look at one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerView<'a> {
    pub queue: &'a str,
    pub priority: u8,
    pub arrival: Instant,
    pub orig_position: usize,
    /// 1-based place in the queue; `None` once connected.
    pub position: Option<usize>,
    pub phase: CallerPhase<'a>,
    /// Work (a callback, a task), not a caller on the line.
    pub work: bool,
    /// A repeat caller waiting for their own agent alone, for now.
    pub reserved_for: Option<&'a str>,
}

/// How a waiting caller leaves without being connected.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Abandon,
    Timeout,
    Empty,
    Key(char),
}

/// The ACD: every queue, agent and waiting caller.
#[derive(Debug)]
pub struct Acd {
    queues: Vec<Queue>,
    queue_names: HashMap<String, usize>,
    agents: Vec<Agent>,
    agent_ids: HashMap<String, u32>,
    callers: HashMap<CallKey, Caller>,
    timers: Timers,
    actions: VecDeque<AcdAction>,
    /// Queues that may have a caller and a usable agent to pair.
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
    /// Join counter: breaks ties between equal arrivals.
    seq: u64,
    /// Repeat callers waiting for their own agent, by agent.
    reserved: HashMap<u32, std::collections::BTreeSet<CallerKey>>,
    /// Callers waiting on other nodes, by the store's entry id.
    remote: HashMap<u64, (usize, CallerKey)>,
    /// With `share_waiting`: the unoffered entries last published.
    published: HashMap<CallKey, CallerKey>,
}

impl Acd {
    /// Checks the configuration and starts with every agent logged out and
    /// unreachable. An agent is a member of each queue it lists whose
    /// strategy ranks it (a skills queue leaves out agents below the
    /// minimum level); member order is the order of `agents`.
    pub fn new(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> Result<Acd, AcdConfigError> {
        let mut queue_names = HashMap::new();
        let mut qs = Vec::with_capacity(queues.len());
        for config in queues {
            check_queue(&config)?;
            if queue_names.insert(config.name.clone(), qs.len()).is_some() {
                return Err(AcdConfigError::DuplicateQueue(config.name));
            }
            qs.push(Queue::new(config));
        }
        let mut agent_ids = HashMap::new();
        let mut list = Vec::with_capacity(agents.len());
        for config in agents {
            let id = config.id.clone();
            let invalid = |message: String| AcdConfigError::InvalidAgent {
                agent: id.clone(),
                message,
            };
            if config.id.is_empty() {
                return Err(invalid("the id is empty".into()));
            }
            for (skill, level) in &config.skills {
                if !(1..=10).contains(level) {
                    return Err(invalid(format!(
                        "skill {skill:?} has level {level}, expected 1..=10"
                    )));
                }
            }
            let index = u32::try_from(list.len()).map_err(|_| invalid("too many agents".into()))?;
            let mut agent = Agent::new(config, index);
            for (i, name) in agent.config.queues.iter().enumerate() {
                let Some(&q) = queue_names.get(name) else {
                    return Err(invalid(format!("serves unknown queue {name:?}")));
                };
                if agent.config.queues[..i].contains(name) {
                    return Err(invalid(format!("lists queue {name:?} twice")));
                }
                if qs[q].config.strategy.rank(&agent.candidate()).is_some() {
                    agent.queues.push(q);
                    qs[q].agents.push(index);
                }
            }
            if agent_ids.insert(agent.config.id.clone(), index).is_some() {
                return Err(AcdConfigError::DuplicateAgent(agent.config.id));
            }
            list.push(agent);
        }
        let n = qs.len();
        Ok(Acd {
            queues: qs,
            queue_names,
            agents: list,
            agent_ids,
            callers: HashMap::new(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            dirty: Vec::new(),
            is_dirty: vec![false; n],
            seq: 0,
            reserved: HashMap::new(),
            remote: HashMap::new(),
            published: HashMap::new(),
        })
    }

    /// Several nodes share the store: from now on, say which callers wait
    /// unoffered ([`AcdAction::Waiting`], [`AcdAction::NotWaiting`]).
    pub fn share_waiting(&mut self) {
        for queue in &mut self.queues {
            queue.share = true;
        }
    }

    /// Takes one input at `now`; drain [`poll_action`](Self::poll_action)
    /// afterwards.
    pub fn handle(&mut self, now: Instant, input: AcdInput) {
        match input {
            AcdInput::CallerJoined {
                caller,
                queue,
                priority,
                caller_id,
                preferred,
            } => {
                self.join(now, caller, queue, priority, caller_id);
                if let Some((agent, until)) = preferred {
                    self.prefer(now, caller, &agent, until);
                }
            }
            AcdInput::KeepPlace {
                caller,
                callback,
                dial_first,
            } => self.keep_place(now, caller, callback, dial_first),
            AcdInput::WorkJoined {
                caller,
                queue,
                priority,
                order,
                dial_first,
            } => self.join_work(caller, &queue, priority, order, dial_first),
            AcdInput::CustomerReached { caller } => self.customer_reached(caller),
            AcdInput::WorkWithdrawn { caller } => self.withdraw_work(caller),
            AcdInput::Reprioritise { caller, priority } => self.reprioritise(caller, priority),
            AcdInput::Prefer {
                caller,
                agent,
                until,
            } => self.prefer(now, caller, &agent, until),
            AcdInput::CallerHungUp { caller } => match self.bridged_agent(caller) {
                Some(agent) => self.end_call(now, caller, agent, EndedBy::Caller, None),
                None => self.remove_caller(now, caller, Exit::Abandon),
            },
            AcdInput::CallerPressedExit { caller, key } => {
                if self.bridged_agent(caller).is_none() {
                    self.remove_caller(now, caller, Exit::Key(key));
                }
            }
            AcdInput::AgentLogin { agent } => {
                if let Some(a) = self.agent_index(&agent) {
                    if !self.agents[a as usize].status.is_logged_in() {
                        self.set_status(now, a, AgentStatus::Available);
                    }
                }
            }
            AcdInput::AgentLogout { agent } => {
                if let Some(a) = self.agent_index(&agent) {
                    self.set_status(now, a, AgentStatus::LoggedOut);
                }
            }
            AcdInput::AgentBreak { agent, reason } => {
                if let Some(a) = self.agent_index(&agent) {
                    self.set_status(now, a, AgentStatus::OnBreak { reason });
                }
            }
            AcdInput::AgentAvailable { agent } => {
                if let Some(a) = self.agent_index(&agent) {
                    self.set_status(now, a, AgentStatus::Available);
                }
            }
            AcdInput::AgentReachable { agent, reachable } => {
                if let Some(a) = self.agent_index(&agent) {
                    self.set_reachable(a, reachable);
                }
            }
            AcdInput::OfferAnswered { caller, agent } => {
                if let Some(a) = self.offered(caller, &agent) {
                    self.answer(now, caller, a);
                }
            }
            AcdInput::OfferRejected { caller, agent, .. } => {
                if let Some(a) = self.offered(caller, &agent) {
                    self.offer_failed(now, a, caller, false);
                }
            }
            AcdInput::AgentEngaged { agent, engaged } => {
                if let Some(a) = self.agent_index(&agent) {
                    if self.agents[a as usize].engaged != engaged {
                        self.agents[a as usize].engaged = engaged;
                        if engaged {
                            self.withdraw_offer(a);
                        }
                        self.reindex(a);
                        self.emit_agent(a);
                    }
                }
            }
            AcdInput::RemoteWaiting {
                entry,
                queue,
                priority,
                arrival,
            } => self.remote_waiting(entry, &queue, priority, arrival),
            AcdInput::RemoteGone { entry } => self.remote_gone(entry),
            AcdInput::SendAway { caller } => {
                let waiting = self.callers.get(&caller).is_some_and(|c| !c.is_work());
                if waiting && self.bridged_agent(caller).is_none() {
                    self.remove_caller(now, caller, Exit::Empty);
                }
            }
            AcdInput::AgentClaimedElsewhere { agent, claimed } => {
                if let Some(a) = self.agent_index(&agent) {
                    self.set_claimed_elsewhere(a, claimed);
                }
            }
            AcdInput::OfferTaken { caller, agent } => {
                if let Some(a) = self.offered(caller, &agent) {
                    self.agents[a as usize].offered_at = None;
                    self.set_state(a, AgentState::Idle, None);
                    self.stop_ringing(caller, a, false);
                    self.set_claimed_elsewhere(a, true);
                }
            }
            AcdInput::AgentHungUp { caller, agent } => {
                if let Some(a) = self.agent_index(&agent) {
                    if self.bridged_agent(caller) == Some(a) {
                        self.end_call(now, caller, a, EndedBy::Agent, None);
                    }
                }
            }
            AcdInput::AgentTransferred {
                caller,
                agent,
                to,
                attended,
            } => {
                if let Some(a) = self.agent_index(&agent) {
                    if self.bridged_agent(caller) == Some(a) {
                        self.end_call(now, caller, a, EndedBy::Transfer, Some((to, attended)));
                    }
                }
            }
        }
        self.settle(now);
    }

    /// Runs every timer due at or before `now`, in order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(at) = self.timers.next().filter(|at| *at <= now) {
            while let Some(timer) = self.timers.pop_at(at) {
                self.fire(at, now, timer);
            }
            self.settle(now);
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next thing to do, in the order it was decided.
    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    // ----- read-only views -----

    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.iter().map(|q| q.config.name.as_str())
    }

    /// Lengths, waits, agents and totals of one queue.
    pub fn queue_stats(&self, now: Instant, queue: &str) -> Option<QueueStats> {
        let q_index = *self.queue_names.get(queue)?;
        let q = &self.queues[q_index];
        Some(QueueStats {
            name: q.config.name.clone(),
            strategy: q.config.strategy.clone(),
            waiting: q.members.len() - q.work,
            work: q.work,
            ringing: self
                .callers
                .values()
                .filter(|c| c.queue == q_index && matches!(c.phase, Phase::Ringing { .. }))
                .count(),
            longest_wait: q.longest_wait(now),
            agents: q.agents.len(),
            logged_in: q.logged_in,
            available: q.available,
            idle: q.idle.len(),
            average_handle_time: q.average_handle_time(),
            counters: q.counters,
        })
    }

    /// Caller ids in a queue, in service order (connected callers are no
    /// longer in the queue).
    pub fn queue_order(&self, queue: &str) -> Option<Vec<CallKey>> {
        let q = &self.queues[*self.queue_names.get(queue)?];
        Some(q.members.iter().map(|k| k.id).collect())
    }

    pub fn agent(&self, id: &str) -> Option<AgentView<'_>> {
        let a = *self.agent_ids.get(id)?;
        Some(self.agents[a as usize].view())
    }

    /// Every agent, in configuration order.
    pub fn agents(&self) -> impl Iterator<Item = AgentView<'_>> {
        self.agents.iter().map(Agent::view)
    }

    /// Ids of the queues the agent is a member of.
    pub fn agent_queues(&self, id: &str) -> Option<Vec<&str>> {
        let a = *self.agent_ids.get(id)?;
        Some(
            self.agents[a as usize]
                .queues
                .iter()
                .map(|&q| self.queues[q].config.name.as_str())
                .collect(),
        )
    }

    pub fn agent_counts(&self) -> AgentCounts {
        let mut c = AgentCounts::default();
        for a in &self.agents {
            match a.status {
                AgentStatus::LoggedOut => c.logged_out += 1,
                AgentStatus::Available => c.available += 1,
                AgentStatus::OnBreak { .. } => c.on_break += 1,
            }
            if !a.reachable {
                c.unreachable += 1;
            }
            match a.state {
                AgentState::Idle => c.idle += 1,
                AgentState::Offered { .. } => c.offered += 1,
                AgentState::OnCall { .. } => c.on_call += 1,
                AgentState::WrapUp { .. } => c.wrap_up += 1,
            }
        }
        c
    }

    pub fn caller(&self, id: CallKey) -> Option<CallerView<'_>> {
        let c = self.callers.get(&id)?;
        let q = &self.queues[c.queue];
        let agent_id = |a: &u32| self.agents[*a as usize].config.id.as_str();
        let (position, phase) = match &c.phase {
            Phase::Waiting => (Some(q.position(&c.key)), CallerPhase::Waiting),
            Phase::Dialing => (Some(q.position(&c.key)), CallerPhase::Dialing),
            Phase::Ringing { agents } => (
                Some(q.position(&c.key)),
                CallerPhase::Ringing {
                    agents: agents.iter().map(agent_id).collect(),
                },
            ),
            Phase::Bridged { agent, since } => (
                None,
                CallerPhase::Bridged {
                    agent: agent_id(agent),
                    since: *since,
                },
            ),
        };
        Some(CallerView {
            queue: &q.config.name,
            priority: c.key.priority.0,
            arrival: c.key.arrival,
            orig_position: c.orig_position,
            position,
            phase,
            work: c.is_work(),
            reserved_for: c.reserved_for.map(|a| agent_id(&a)),
        })
    }

    /// A waiting caller's expected wait at their place (see
    /// [`QueueStats`]); `None` without an available agent to estimate by.
    pub fn expected_wait(&self, id: CallKey) -> Option<Duration> {
        let c = self.callers.get(&id)?;
        let q = &self.queues[c.queue];
        q.expected_wait(q.position(&c.key))
    }

    /// Callers the ACD is tracking (waiting, ringing or connected).
    pub fn caller_count(&self) -> usize {
        self.callers.len()
    }

    // ----- callers -----

    fn join(&mut self, now: Instant, id: CallKey, queue: String, priority: u8, caller_id: String) {
        let Some(&q) = self.queue_names.get(&queue) else {
            return self.refuse(id, RefuseReason::UnknownQueue);
        };
        if self.callers.contains_key(&id) {
            return self.refuse(id, RefuseReason::DuplicateCaller);
        }
        let (join_empty, max_len) = {
            let config = &self.queues[q].config;
            (config.join_empty, config.max_len)
        };
        if !join_empty && self.queues[q].logged_in == 0 {
            self.queues[q].counters.refused += 1;
            self.log(q, Some(id), None, QueueLogKind::JoinEmpty);
            return self.refuse(id, RefuseReason::NoAgents);
        }
        let waiting = self.queues[q].members.len() - self.queues[q].work;
        if max_len.is_some_and(|max| waiting >= max) {
            self.log(q, Some(id), None, QueueLogKind::Full);
            match self.queues[q].config.overflow.clone() {
                Some(target) => {
                    self.queues[q].counters.overflowed += 1;
                    self.actions.push_back(AcdAction::Leave {
                        caller: id,
                        reason: LeaveReason::Overflow { target },
                    });
                }
                None => {
                    self.queues[q].counters.refused += 1;
                    self.refuse(id, RefuseReason::Full);
                }
            }
            return;
        }
        let (key, orig_position) = self.enter(q, id, priority, now, true);
        let queue = &self.queues[q];
        let at = |d: Option<Duration>| d.map(|d| now + d);
        let caller = Caller {
            queue: q,
            key,
            orig_position,
            phase: Phase::Waiting,
            declined: Vec::new(),
            announce_at: at(queue.config.announce_every),
            apology_at: at(queue.config.apology_after),
            max_wait_at: at(queue.config.max_wait),
            work: None,
            reserved_for: None,
            prefer_until: None,
        };
        for (at, timer) in [
            (caller.announce_at, Timer::Announce(id)),
            (caller.apology_at, Timer::Apology(id)),
            (caller.max_wait_at, Timer::MaxWait(id)),
        ] {
            if let Some(at) = at {
                self.timers.schedule(at, timer);
            }
        }
        self.callers.insert(id, caller);
        self.log(
            q,
            Some(id),
            None,
            QueueLogKind::EnterQueue {
                url: String::new(),
                caller_id,
                orig_position,
            },
        );
        self.mark_dirty(q);
    }

    /// A new entry in queue `q`, in its place (priority, then `arrival`,
    /// then join order): a caller on the line (`live`) or work. Returns
    /// its key and 1-based place.
    fn enter(
        &mut self,
        q: usize,
        id: CallKey,
        priority: u8,
        arrival: Instant,
        live: bool,
    ) -> (CallerKey, usize) {
        self.seq += 1;
        let key = CallerKey {
            priority: std::cmp::Reverse(priority),
            arrival,
            seq: self.seq,
            id,
        };
        let queue = &mut self.queues[q];
        queue.insert(key, live);
        if live {
            queue.counters.entered += 1;
        } else {
            queue.work += 1;
        }
        (key, queue.position(&key))
    }

    fn remote_waiting(&mut self, entry: u64, queue: &str, priority: u8, arrival: Instant) {
        let Some(&q) = self.queue_names.get(queue) else {
            return;
        };
        self.remote_gone(entry);
        // Remote entries sort by their arrival; at equal instants, before
        // local callers (seq 0), and among themselves by entry id.
        let key = CallerKey {
            priority: std::cmp::Reverse(priority),
            arrival,
            seq: 0,
            id: CallKey(entry),
        };
        self.queues[q].remote.insert(key);
        self.remote.insert(entry, (q, key));
    }

    fn remote_gone(&mut self, entry: u64) {
        if let Some((q, key)) = self.remote.remove(&entry) {
            self.queues[q].remote.remove(&key);
            self.mark_dirty(q);
        }
    }

    fn set_claimed_elsewhere(&mut self, a: u32, claimed: bool) {
        let agent = &mut self.agents[a as usize];
        if agent.claimed_elsewhere == claimed {
            return;
        }
        agent.claimed_elsewhere = claimed;
        if claimed {
            self.withdraw_offer(a);
        }
        self.reindex(a);
    }

    fn refuse(&mut self, caller: CallKey, reason: RefuseReason) {
        self.actions
            .push_back(AcdAction::JoinRefused { caller, reason });
    }

    /// The agent a caller is connected to.
    fn bridged_agent(&self, caller: CallKey) -> Option<u32> {
        match self.callers.get(&caller)?.phase {
            Phase::Bridged { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// Takes a waiting or ringing caller out of the ACD.
    fn remove_caller(&mut self, now: Instant, id: CallKey, exit: Exit) {
        let Some(caller) = self.callers.get(&id) else {
            return;
        };
        if matches!(caller.phase, Phase::Bridged { .. }) {
            return;
        }
        self.release_reserved(id);
        let Some(caller) = self.callers.remove(&id) else {
            return;
        };
        let q = caller.queue;
        let position = self.queues[q].position(&caller.key);
        if let Phase::Ringing { agents } = &caller.phase {
            for &a in agents {
                let ring = self.ring_time(now, a);
                self.cancel_offer(id, a, CancelReason::CallerLeft);
                self.log(q, Some(id), Some(a), QueueLogKind::RingCanceled { ring });
                self.set_state(a, AgentState::Idle, None);
            }
        }
        self.queues[q].remove(&caller.key);
        self.cancel_caller_timers(id, &caller);
        if caller.is_work() {
            // Work is never "abandoned": only the engine withdraws it.
            self.queues[q].work -= 1;
            self.actions.push_back(AcdAction::Leave {
                caller: id,
                reason: LeaveReason::Withdrawn,
            });
            return;
        }
        let wait = now.saturating_duration_since(caller.key.arrival);
        let orig_position = caller.orig_position;
        let overflow = self.queues[q].config.overflow.clone();
        let counters = &mut self.queues[q].counters;
        let (kind, reason) = match exit {
            Exit::Abandon => {
                counters.abandoned += 1;
                (
                    QueueLogKind::Abandon {
                        position,
                        orig_position,
                        wait,
                    },
                    LeaveReason::Abandoned,
                )
            }
            Exit::Timeout => {
                let reason = match overflow {
                    Some(target) => {
                        counters.overflowed += 1;
                        LeaveReason::Overflow { target }
                    }
                    None => {
                        counters.timed_out += 1;
                        LeaveReason::Timeout
                    }
                };
                (
                    QueueLogKind::ExitWithTimeout {
                        position,
                        orig_position,
                        wait,
                    },
                    reason,
                )
            }
            Exit::Empty => {
                counters.exited_empty += 1;
                (
                    QueueLogKind::ExitEmpty {
                        position,
                        orig_position,
                        wait,
                    },
                    LeaveReason::EmptyQueue,
                )
            }
            Exit::Key(key) => {
                counters.exited_key += 1;
                (
                    QueueLogKind::ExitWithKey {
                        key,
                        position,
                        orig_position,
                        wait,
                    },
                    LeaveReason::ExitKey { key },
                )
            }
        };
        self.log(q, Some(id), None, kind);
        self.actions
            .push_back(AcdAction::Leave { caller: id, reason });
    }

    fn cancel_caller_timers(&mut self, id: CallKey, caller: &Caller) {
        self.timers.cancel(caller.announce_at, Timer::Announce(id));
        self.timers.cancel(caller.apology_at, Timer::Apology(id));
        self.timers.cancel(caller.max_wait_at, Timer::MaxWait(id));
        self.timers
            .cancel(caller.prefer_until, Timer::Preference(id));
    }

    // ----- work: callbacks and tasks -----

    /// A waiting caller becomes a callback with the same place: same
    /// priority, arrival and join order, under the callback's id.
    fn keep_place(&mut self, now: Instant, id: CallKey, callback: CallKey, dial_first: bool) {
        if self.callers.contains_key(&callback) {
            return;
        }
        let Some(caller) = self.callers.get(&id) else {
            return;
        };
        // A caller on the line only: work already is what a callback is.
        if matches!(caller.phase, Phase::Bridged { .. }) || caller.is_work() {
            return;
        }
        self.release_reserved(id);
        let Some(mut caller) = self.callers.remove(&id) else {
            return;
        };
        let q = caller.queue;
        if let Phase::Ringing { agents } = &caller.phase {
            for &a in agents {
                let ring = self.ring_time(now, a);
                self.cancel_offer(id, a, CancelReason::CallerLeft);
                self.log(q, Some(id), Some(a), QueueLogKind::RingCanceled { ring });
                self.set_state(a, AgentState::Idle, None);
            }
        }
        self.cancel_caller_timers(id, &caller);
        let position = self.queues[q].position(&caller.key);
        let wait = now.saturating_duration_since(caller.key.arrival);
        let orig_position = caller.orig_position;
        self.queues[q].remove(&caller.key);
        self.queues[q].counters.callbacks += 1;
        self.log(
            q,
            Some(id),
            None,
            QueueLogKind::Callback {
                position,
                orig_position,
                wait,
            },
        );
        self.actions.push_back(AcdAction::Leave {
            caller: id,
            reason: LeaveReason::CallbackRequested { callback },
        });
        let key = CallerKey {
            id: callback,
            ..caller.key
        };
        caller.key = key;
        caller.phase = Phase::Waiting;
        caller.declined.clear();
        caller.announce_at = None;
        caller.apology_at = None;
        caller.max_wait_at = None;
        caller.reserved_for = None;
        caller.prefer_until = None;
        caller.work = Some(dial_first);
        self.queues[q].insert(key, false);
        self.queues[q].work += 1;
        self.callers.insert(callback, caller);
        self.mark_dirty(q);
    }

    fn join_work(
        &mut self,
        id: CallKey,
        queue: &str,
        priority: u8,
        order: Instant,
        dial_first: bool,
    ) {
        let Some(&q) = self.queue_names.get(queue) else {
            return self.refuse(id, RefuseReason::UnknownQueue);
        };
        if self.callers.contains_key(&id) {
            return self.refuse(id, RefuseReason::DuplicateCaller);
        }
        let (key, orig_position) = self.enter(q, id, priority, order, false);
        self.callers.insert(
            id,
            Caller {
                queue: q,
                key,
                orig_position,
                phase: Phase::Waiting,
                declined: Vec::new(),
                announce_at: None,
                apology_at: None,
                max_wait_at: None,
                work: Some(dial_first),
                reserved_for: None,
                prefer_until: None,
            },
        );
        self.mark_dirty(q);
    }

    fn customer_reached(&mut self, id: CallKey) {
        let Some(caller) = self.callers.get_mut(&id) else {
            return;
        };
        if caller.phase != Phase::Dialing {
            return;
        }
        caller.phase = Phase::Waiting;
        caller.work = Some(false);
        let q = caller.queue;
        let key = caller.key;
        self.queues[q].set_unoffered(key, true);
        self.mark_dirty(q);
    }

    fn withdraw_work(&mut self, id: CallKey) {
        let Some(caller) = self.callers.get(&id) else {
            return;
        };
        if !caller.is_work() || matches!(caller.phase, Phase::Bridged { .. }) {
            return;
        }
        let q = caller.queue;
        if let Phase::Ringing { agents } = &caller.phase {
            for a in agents.clone() {
                self.cancel_offer(id, a, CancelReason::CallerLeft);
                self.set_state(a, AgentState::Idle, None);
            }
        }
        if let Some(caller) = self.callers.remove(&id) {
            self.queues[q].remove(&caller.key);
            self.queues[q].work -= 1;
            self.actions.push_back(AcdAction::Leave {
                caller: id,
                reason: LeaveReason::Withdrawn,
            });
        }
    }

    fn reprioritise(&mut self, id: CallKey, priority: u8) {
        let Some(caller) = self.callers.get_mut(&id) else {
            return;
        };
        if matches!(caller.phase, Phase::Bridged { .. }) {
            return;
        }
        let old = caller.key;
        let key = CallerKey {
            priority: std::cmp::Reverse(priority),
            ..old
        };
        caller.key = key;
        let q = caller.queue;
        let queue = &mut self.queues[q];
        queue.members.remove(&old);
        queue.members.insert(key);
        if queue.set_unoffered(old, false) {
            queue.set_unoffered(key, true);
        }
        self.mark_dirty(q);
    }

    /// A repeat caller waits for their own agent, if that agent serves
    /// the queue and is available (busy is fine: they may finish in
    /// time); until `until`, nobody else is offered them.
    fn prefer(&mut self, now: Instant, id: CallKey, agent: &str, until: Instant) {
        let Some(a) = self.agent_index(agent) else {
            return;
        };
        let Some(caller) = self.callers.get(&id) else {
            return;
        };
        let q = caller.queue;
        let agent = &self.agents[a as usize];
        let serves = agent.queues.contains(&q);
        if !serves || agent.status != AgentStatus::Available || !agent.reachable || until <= now {
            return;
        }
        if caller.phase != Phase::Waiting {
            return;
        }
        let key = caller.key;
        self.queues[q].set_unoffered(key, false);
        if let Some(c) = self.callers.get_mut(&id) {
            c.reserved_for = Some(a);
            c.prefer_until = Some(until);
        }
        self.timers.schedule(until, Timer::Preference(id));
        self.reserved.entry(a).or_default().insert(key);
        if self.agents[a as usize].usable() {
            self.offer_reserved(now, a);
        }
    }

    /// The caller no longer waits for one agent: back in the queue's
    /// order, for anyone.
    fn release_reserved(&mut self, id: CallKey) {
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        let Some(a) = c.reserved_for.take() else {
            return;
        };
        let until = c.prefer_until.take();
        let key = c.key;
        let q = c.queue;
        self.timers.cancel(until, Timer::Preference(id));
        if let Some(set) = self.reserved.get_mut(&a) {
            set.retain(|k| k.id != id);
            if set.is_empty() {
                self.reserved.remove(&a);
            }
        }
        if c.phase == Phase::Waiting {
            self.queues[q].set_unoffered(key, true);
            self.mark_dirty(q);
        }
    }

    /// Every caller waiting for agent `a` goes back to the queue.
    fn release_reserved_for(&mut self, a: u32) {
        let ids: Vec<CallKey> = self
            .reserved
            .get(&a)
            .map(|s| s.iter().map(|k| k.id).collect())
            .unwrap_or_default();
        for id in ids {
            self.release_reserved(id);
        }
    }

    /// Offers agent `a` the first caller waiting for it alone.
    fn offer_reserved(&mut self, now: Instant, a: u32) {
        let Some(key) = self.reserved.get(&a).and_then(|s| s.first().copied()) else {
            return;
        };
        self.release_reserved(key.id);
        // Released into the queue's order: take it out again for this offer.
        if let Some(q) = self.callers.get(&key.id).map(|c| c.queue) {
            self.queues[q].set_unoffered(key, false);
        }
        self.offer(now, key.id, a);
    }

    /// Every caller waiting in queue `q` leaves: its last agent logged out.
    /// From the back, so each caller's logged position is its own.
    fn empty_queue(&mut self, now: Instant, q: usize) {
        let ids: Vec<CallKey> = self.queues[q]
            .members
            .iter()
            .rev()
            .map(|k| k.id)
            .filter(|id| self.callers.get(id).is_some_and(|c| !c.is_work()))
            .collect();
        for id in ids {
            self.remove_caller(now, id, Exit::Empty);
        }
    }

    // ----- offers and calls -----

    /// The agent index, when `agent` is ringing with `caller`.
    fn offered(&self, caller: CallKey, agent: &str) -> Option<u32> {
        let a = self.agent_index(agent)?;
        (self.agents[a as usize].state == AgentState::Offered { caller }).then_some(a)
    }

    fn offer(&mut self, now: Instant, id: CallKey, a: u32) {
        let Some(caller) = self.callers.get_mut(&id) else {
            return;
        };
        let queue = &mut self.queues[caller.queue];
        match caller.phase {
            Phase::Waiting => {
                queue.set_unoffered(caller.key, false);
                caller.phase = Phase::Ringing { agents: vec![a] };
            }
            Phase::Ringing { ref mut agents } => agents.push(a),
            Phase::Bridged { .. } | Phase::Dialing => return,
        }
        if queue.config.strategy == Strategy::RoundRobin {
            queue.cursor = Some(a);
        }
        let deadline = now + queue.config.ring_timeout;
        // Other nodes hear the caller is no longer waiting before it rings.
        self.publish_waiting();
        let agent = &mut self.agents[a as usize];
        agent.offered_at = Some(now);
        self.actions.push_back(AcdAction::Offer {
            caller: id,
            agent: agent.config.id.clone(),
        });
        self.set_state(a, AgentState::Offered { caller: id }, Some(deadline));
    }

    fn cancel_offer(&mut self, caller: CallKey, a: u32, reason: CancelReason) {
        self.actions.push_back(AcdAction::CancelOffer {
            caller,
            agent: self.agents[a as usize].config.id.clone(),
            reason,
        });
    }

    fn ring_time(&self, now: Instant, a: u32) -> Duration {
        self.agents[a as usize]
            .offered_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    /// The agent's offer is withdrawn on its side (break, logout, gone
    /// unreachable): the caller goes on waiting.
    fn withdraw_offer(&mut self, a: u32) {
        if let AgentState::Offered { caller } = self.agents[a as usize].state {
            self.cancel_offer(caller, a, CancelReason::AgentAway);
            self.set_state(a, AgentState::Idle, None);
            self.stop_ringing(caller, a, false);
        }
    }

    /// Takes `a` off the agents ringing with `caller`; a caller with no
    /// agent left ringing waits to be offered again.
    fn stop_ringing(&mut self, id: CallKey, a: u32, declined: bool) {
        let Some(caller) = self.callers.get_mut(&id) else {
            return;
        };
        if declined && !caller.declined.contains(&a) {
            caller.declined.push(a);
        }
        let Phase::Ringing { agents } = &mut caller.phase else {
            return;
        };
        agents.retain(|&x| x != a);
        if agents.is_empty() {
            caller.phase = Phase::Waiting;
            let q = caller.queue;
            self.queues[q].set_unoffered(caller.key, true);
            self.mark_dirty(q);
        }
    }

    /// An offer ended without an answer: refused by the phone, or (with
    /// `timed_out`) rung for the queue's whole ring timeout.
    fn offer_failed(&mut self, now: Instant, a: u32, caller: CallKey, timed_out: bool) {
        let Some(q) = self.callers.get(&caller).map(|c| c.queue) else {
            return;
        };
        let ring = self.ring_time(now, a);
        if timed_out {
            self.cancel_offer(caller, a, CancelReason::RingTimeout);
        }
        self.log(
            q,
            Some(caller),
            Some(a),
            QueueLogKind::RingNoAnswer { ring },
        );
        self.agents[a as usize].no_answers += 1;
        // A phone that refused (busy, failed) is not rung again at once:
        // it rests for the queue's `retry` (Asterisk's retry), through the
        // same timer as wrap-up. A ring timeout has already waited.
        let retry = self.queues[q].config.retry;
        if timed_out || retry.is_zero() {
            self.set_state(a, AgentState::Idle, None);
        } else {
            self.set_state(a, AgentState::WrapUp { until: now + retry }, None);
        }
        self.stop_ringing(caller, a, true);
        let agent = &self.agents[a as usize];
        if agent.status == AgentStatus::Available
            && self.queues[q]
                .config
                .auto_break_after
                .is_some_and(|n| agent.no_answers >= n)
        {
            self.set_status(
                now,
                a,
                AgentStatus::OnBreak {
                    reason: NO_ANSWER_BREAK.into(),
                },
            );
        }
    }

    fn answer(&mut self, now: Instant, id: CallKey, a: u32) {
        let Some(caller) = self.callers.get_mut(&id) else {
            return;
        };
        let Phase::Ringing { agents } = std::mem::replace(
            &mut caller.phase,
            Phase::Bridged {
                agent: a,
                since: now,
            },
        ) else {
            return;
        };
        let q = caller.queue;
        let key = caller.key;
        let caller_is_work = caller.is_work();
        let timers = (
            caller.announce_at.take(),
            caller.apology_at.take(),
            caller.max_wait_at.take(),
        );
        self.timers.cancel(timers.0, Timer::Announce(id));
        self.timers.cancel(timers.1, Timer::Apology(id));
        self.timers.cancel(timers.2, Timer::MaxWait(id));
        self.queues[q].remove(&key);
        if caller_is_work {
            self.queues[q].work -= 1;
        }
        self.queues[q].counters.answered += 1;
        let ring = self.ring_time(now, a);
        let agent = &mut self.agents[a as usize];
        agent.calls_answered += 1;
        agent.no_answers = 0;
        let agent_id = agent.config.id.clone();
        self.actions.push_back(AcdAction::Bridge {
            caller: id,
            agent: agent_id.clone(),
        });
        self.set_state(a, AgentState::OnCall { caller: id }, None);
        for other in agents.into_iter().filter(|&o| o != a) {
            self.cancel_offer(id, other, CancelReason::AnsweredElsewhere);
            self.set_state(other, AgentState::Idle, None);
        }
        self.log(
            q,
            Some(id),
            Some(a),
            QueueLogKind::Connect {
                hold: now.saturating_duration_since(key.arrival),
                bridged_uniqueid: agent_id,
                ring,
            },
        );
    }

    /// A connected call ended: the agent wraps up (unless logged out) and
    /// the caller leaves.
    /// `transfer`: where the caller went (an extension, or the agent
    /// taking the call when attended), for the queue_log.
    fn end_call(
        &mut self,
        now: Instant,
        id: CallKey,
        a: u32,
        ended_by: EndedBy,
        transfer: Option<(String, bool)>,
    ) {
        if self.bridged_agent(id) != Some(a) {
            return;
        }
        let Some(caller) = self.callers.remove(&id) else {
            return;
        };
        let Phase::Bridged { since, .. } = caller.phase else {
            return;
        };
        let q = caller.queue;
        let hold = since.saturating_duration_since(caller.key.arrival);
        let talk = now.saturating_duration_since(since);
        let orig_position = caller.orig_position;
        self.log(
            q,
            Some(id),
            Some(a),
            match (ended_by, transfer) {
                (EndedBy::Caller, _) => QueueLogKind::CompleteCaller {
                    hold,
                    talk,
                    orig_position,
                },
                (_, Some((to, false))) => QueueLogKind::BlindTransfer {
                    extension: to,
                    hold,
                    talk,
                    orig_position,
                },
                (_, Some((to, true))) => QueueLogKind::AttendedTransfer {
                    to_agent: to,
                    hold,
                    talk,
                    orig_position,
                },
                (_, None) => QueueLogKind::CompleteAgent {
                    hold,
                    talk,
                    orig_position,
                },
            },
        );
        let agent = &mut self.agents[a as usize];
        agent.last_call_end = Some(now);
        let wrap = if agent.status.is_logged_in() {
            self.queues[q].config.wrap_up
        } else {
            Duration::ZERO
        };
        let queue = &mut self.queues[q];
        queue.record_handle_time(talk + wrap);
        queue.counters.completed += 1;
        self.actions.push_back(AcdAction::Leave {
            caller: id,
            reason: LeaveReason::Completed {
                agent: agent.config.id.clone(),
                ended_by,
            },
        });
        let state = if wrap.is_zero() {
            AgentState::Idle
        } else {
            AgentState::WrapUp { until: now + wrap }
        };
        self.set_state(a, state, None);
    }

    // ----- agents -----

    fn agent_index(&self, id: &str) -> Option<u32> {
        self.agent_ids.get(id).copied()
    }

    /// Moves an agent to `state`, keeping its timer (`deadline` is the ring
    /// timeout of an offer) and its place in the idle sets in step.
    fn set_state(&mut self, a: u32, state: AgentState, deadline: Option<Instant>) {
        let agent = &mut self.agents[a as usize];
        match agent.state {
            AgentState::Offered { .. } => self.timers.cancel(agent.deadline, Timer::RingTimeout(a)),
            AgentState::WrapUp { until } => self.timers.cancel(Some(until), Timer::WrapUpEnd(a)),
            _ => {}
        }
        agent.deadline = None;
        match state {
            AgentState::Offered { .. } => {
                if let Some(at) = deadline {
                    self.timers.schedule(at, Timer::RingTimeout(a));
                    agent.deadline = Some(at);
                }
            }
            AgentState::WrapUp { until } => {
                self.timers.schedule(until, Timer::WrapUpEnd(a));
                agent.deadline = Some(until);
            }
            _ => {}
        }
        if !matches!(state, AgentState::Offered { .. }) {
            agent.offered_at = None;
        }
        let changed = agent.state != state;
        agent.state = state;
        self.reindex(a);
        if changed {
            self.emit_agent(a);
        }
    }

    fn set_status(&mut self, now: Instant, a: u32, status: AgentStatus) {
        let agent = &self.agents[a as usize];
        if agent.status == status {
            return;
        }
        let kinds = match (&agent.status, &status) {
            (AgentStatus::LoggedOut, AgentStatus::Available) => {
                vec![QueueLogKind::AddMember { paused: false }]
            }
            (AgentStatus::LoggedOut, AgentStatus::OnBreak { reason }) => vec![
                QueueLogKind::AddMember { paused: true },
                QueueLogKind::Pause {
                    reason: reason.clone(),
                },
            ],
            (AgentStatus::Available, AgentStatus::OnBreak { reason }) => {
                vec![QueueLogKind::Pause {
                    reason: reason.clone(),
                }]
            }
            (AgentStatus::OnBreak { .. }, AgentStatus::Available) => vec![QueueLogKind::Unpause {
                reason: String::new(),
            }],
            (_, AgentStatus::LoggedOut) => vec![QueueLogKind::RemoveMember],
            _ => Vec::new(),
        };
        for q in agent.queues.clone() {
            for kind in &kinds {
                self.log(q, None, Some(a), kind.clone());
            }
        }
        let before = self.presence(a);
        let agent = &mut self.agents[a as usize];
        if status == AgentStatus::Available {
            agent.no_answers = 0;
        }
        let logged_out = !status.is_logged_in();
        agent.status = status;
        self.update_presence(a, before);
        if self.agents[a as usize].status != AgentStatus::Available {
            self.withdraw_offer(a);
            self.release_reserved_for(a);
        }
        self.reindex(a);
        self.emit_agent(a);
        if logged_out {
            for q in self.agents[a as usize].queues.clone() {
                let queue = &self.queues[q];
                if queue.logged_in == 0 && queue.config.leave_empty {
                    self.empty_queue(now, q);
                }
            }
        }
    }

    fn set_reachable(&mut self, a: u32, reachable: bool) {
        if self.agents[a as usize].reachable == reachable {
            return;
        }
        let before = self.presence(a);
        self.agents[a as usize].reachable = reachable;
        self.update_presence(a, before);
        if !reachable {
            self.withdraw_offer(a);
            self.release_reserved_for(a);
        }
        self.reindex(a);
        self.emit_agent(a);
    }

    /// (logged in, available) for the queues' counters.
    fn presence(&self, a: u32) -> (bool, bool) {
        let agent = &self.agents[a as usize];
        (agent.status.is_logged_in(), agent.available())
    }

    fn update_presence(&mut self, a: u32, (was_in, was_available): (bool, bool)) {
        let (is_in, is_available) = self.presence(a);
        for &q in &self.agents[a as usize].queues {
            let queue = &mut self.queues[q];
            match (was_in, is_in) {
                (false, true) => queue.logged_in += 1,
                (true, false) => queue.logged_in -= 1,
                _ => {}
            }
            match (was_available, is_available) {
                (false, true) => queue.available += 1,
                (true, false) => queue.available -= 1,
                _ => {}
            }
        }
    }

    /// Puts a usable agent into its queues' idle sets (and marks them for
    /// assignment) or takes an unusable one out.
    fn reindex(&mut self, a: u32) {
        let agent = &mut self.agents[a as usize];
        let usable = agent.usable();
        if usable == agent.indexed {
            return;
        }
        agent.indexed = usable;
        if usable {
            let candidate = agent.candidate();
            let ranks: Vec<(usize, strategy::Rank)> = agent
                .queues
                .iter()
                .filter_map(|&q| {
                    let rank = self.queues[q].config.strategy.rank(&candidate)?;
                    Some((q, rank))
                })
                .collect();
            for &(q, rank) in &ranks {
                self.queues[q].idle.insert(rank);
                if !self.is_dirty[q] {
                    self.is_dirty[q] = true;
                    self.dirty.push(q);
                }
            }
            self.agents[a as usize].ranks = ranks;
        } else {
            for (q, rank) in std::mem::take(&mut agent.ranks) {
                self.queues[q].idle.remove(&rank);
            }
        }
    }

    fn emit_agent(&mut self, a: u32) {
        let agent = &self.agents[a as usize];
        self.actions.push_back(AcdAction::AgentState {
            agent: agent.config.id.clone(),
            status: agent.status.clone(),
            state: agent.state,
            reachable: agent.reachable,
        });
    }

    // ----- assignment and timers -----

    fn mark_dirty(&mut self, q: usize) {
        if !self.is_dirty[q] {
            self.is_dirty[q] = true;
            self.dirty.push(q);
        }
    }

    /// Pairs waiting callers with usable agents until no marked queue has
    /// both. Across queues the best caller (priority, then arrival) goes
    /// first; within a queue the strategy picks the agent.
    fn settle(&mut self, now: Instant) {
        // Repeat callers first, each to their own agent once it is free.
        if !self.reserved.is_empty() {
            let free: Vec<u32> = self
                .reserved
                .keys()
                .copied()
                .filter(|&a| self.agents[a as usize].usable())
                .collect();
            for a in free {
                self.offer_reserved(now, a);
            }
        }
        loop {
            let mut best: Option<(CallerKey, usize)> = None;
            for &q in &self.dirty {
                let queue = &self.queues[q];
                if queue.idle.is_empty() {
                    continue;
                }
                if let Some(head) = queue.unoffered.first() {
                    if queue.remote_ahead_of(head) {
                        continue;
                    }
                    if best.is_none_or(|(key, _)| *head < key) {
                        best = Some((*head, q));
                    }
                }
            }
            let Some((key, q)) = best else {
                break;
            };
            // Customer first: dial them now; agents are offered the entry
            // once they answer (it keeps its place meanwhile).
            if let Some(c) = self
                .callers
                .get_mut(&key.id)
                .filter(|c| c.work == Some(true))
            {
                c.phase = Phase::Dialing;
                self.queues[q].set_unoffered(key, false);
                self.publish_waiting();
                self.actions
                    .push_back(AcdAction::DialCustomer { caller: key.id });
                continue;
            }
            let queue = &self.queues[q];
            let declined = self
                .callers
                .get(&key.id)
                .map_or(&[][..], |c| c.declined.as_slice());
            let strategy = &queue.config.strategy;
            let agents = if strategy.rings_all() {
                strategy::pick_all(&queue.idle, declined)
            } else {
                strategy::pick(strategy, &queue.idle, queue.cursor, declined)
                    .into_iter()
                    .collect()
            };
            if agents.is_empty() || !self.callers.contains_key(&key.id) {
                // Cannot happen (idle is not empty, unoffered callers are
                // tracked); never loop on it.
                self.queues[q].set_unoffered(key, false);
                continue;
            }
            for a in agents {
                self.offer(now, key.id, a);
            }
        }
        for q in self.dirty.drain(..) {
            self.is_dirty[q] = false;
        }
        self.publish_waiting();
    }

    /// Says which entries changed between waiting unoffered and not since
    /// the last time (only with `share_waiting`).
    fn publish_waiting(&mut self) {
        for q in 0..self.queues.len() {
            if self.queues[q].changed.is_empty() {
                continue;
            }
            let changed = std::mem::take(&mut self.queues[q].changed);
            for key in changed {
                let queue = &self.queues[q];
                let waiting = queue.unoffered.contains(&key);
                let before = self.published.get(&key.id).copied();
                if waiting && before != Some(key) {
                    self.published.insert(key.id, key);
                    self.actions.push_back(AcdAction::Waiting {
                        caller: key.id,
                        queue: queue.config.name.clone(),
                        priority: key.priority.0,
                        arrival: key.arrival,
                    });
                } else if !waiting && before == Some(key) {
                    self.published.remove(&key.id);
                    self.actions
                        .push_back(AcdAction::NotWaiting { caller: key.id });
                }
            }
        }
    }

    fn fire(&mut self, at: Instant, now: Instant, timer: Timer) {
        match timer {
            Timer::WrapUpEnd(a) => {
                if matches!(self.agents[a as usize].state, AgentState::WrapUp { .. }) {
                    self.set_state(a, AgentState::Idle, None);
                }
            }
            Timer::RingTimeout(a) => {
                if let AgentState::Offered { caller } = self.agents[a as usize].state {
                    self.agents[a as usize].deadline = None;
                    self.offer_failed(now, a, caller, true);
                }
            }
            Timer::MaxWait(id) => {
                if let Some(c) = self.callers.get_mut(&id) {
                    c.max_wait_at = None;
                    self.remove_caller(now, id, Exit::Timeout);
                }
            }
            Timer::Preference(id) => {
                if let Some(c) = self.callers.get_mut(&id) {
                    c.prefer_until = None;
                    self.release_reserved(id);
                }
            }
            Timer::Apology(id) => {
                if let Some(c) = self.callers.get_mut(&id) {
                    c.apology_at = None;
                    self.actions.push_back(AcdAction::Apologise { caller: id });
                }
            }
            Timer::Announce(id) => {
                let Some(c) = self.callers.get(&id) else {
                    return;
                };
                let queue = &self.queues[c.queue];
                let position = queue.position(&c.key);
                let expected_wait = queue.expected_wait(position);
                let next = queue.config.announce_every.map(|every| {
                    let next = at + every;
                    if next > now {
                        next
                    } else {
                        now + every
                    }
                });
                if let Some(next) = next {
                    self.timers.schedule(next, Timer::Announce(id));
                }
                if let Some(c) = self.callers.get_mut(&id) {
                    c.announce_at = next;
                }
                self.actions.push_back(AcdAction::Announce {
                    caller: id,
                    position,
                    expected_wait,
                });
            }
        }
    }

    fn log(&mut self, q: usize, caller: Option<CallKey>, agent: Option<u32>, kind: QueueLogKind) {
        self.actions.push_back(AcdAction::QueueLog(QueueLogEvent {
            queue: self.queues[q].config.name.clone(),
            caller,
            agent: agent.map(|a| self.agents[a as usize].config.id.clone()),
            kind,
        }));
    }
}

fn check_queue(config: &QueueConfig) -> Result<(), AcdConfigError> {
    let invalid = |message: &str| {
        Err(AcdConfigError::InvalidQueue {
            queue: config.name.clone(),
            message: message.to_string(),
        })
    };
    if config.name.is_empty() {
        return invalid("the name is empty");
    }
    if config.ring_timeout.is_zero() {
        return invalid("ring_timeout must be more than zero");
    }
    if config.announce_every.is_some_and(|d| d.is_zero()) {
        return invalid("announce_every must be more than zero");
    }
    if config.max_len == Some(0) {
        return invalid("max_len must be at least 1");
    }
    if config.auto_break_after == Some(0) {
        return invalid("auto_break_after must be at least 1");
    }
    if let Strategy::Skills { skill, min_level } = &config.strategy {
        if skill.is_empty() {
            return invalid("the skills strategy needs a skill name");
        }
        if !(1..=10).contains(min_level) {
            return invalid("the skills strategy's min_level must be 1..=10");
        }
    }
    Ok(())
}
