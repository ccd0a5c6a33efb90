//! Random traffic through the ACD: joins (some repeat callers waiting for
//! their own agent), hang-ups, exit keys, callbacks that keep a caller's
//! place, tasks (some dialled first, some raised when at risk), logins,
//! logouts, breaks, registration flaps, answers, rejections, agent
//! hang-ups, stale inputs and time steps (always to the earliest timer).
//! After every step the action stream and the ACD's own views must agree
//! and keep the promises: one call per agent (ring-all offers excepted),
//! one agent per caller, no caller left waiting beside a usable agent.
//! At the end everyone hangs up and the timers run out: every caller has
//! left exactly once, every agent is idle, and every offer is accounted
//! for (answered, rejected or cancelled).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hotline::acd::{
    self, Acd, AcdAction, AcdInput, AgentConfig, AgentState, AgentStatus, CallerPhase, LeaveReason,
    QueueConfig, QueueLogEvent, QueueLogKind, RejectReason,
};
use hotline::ids::CallKey;
use proptest::prelude::*;
use proptest::sample::Index;

const QUEUES: usize = 3;
const AGENTS: usize = 5;
const SKILL: &str = "s";

#[derive(Debug, Clone)]
struct Setup {
    queues: Vec<QueueConfig>,
    agents: Vec<AgentConfig>,
    /// Agents logged in and registered before the first step.
    ready: Vec<bool>,
}

#[derive(Debug, Clone)]
enum Op {
    Join {
        queue: usize,
        priority: u8,
        /// A repeat caller: their own agent, and how long they wait for it.
        preferred: Option<(usize, u64)>,
    },
    /// A waiting caller books a callback that keeps their place.
    KeepPlace(Index, bool),
    /// A task joins a queue, ordered `order` s from now.
    Work {
        queue: usize,
        priority: u8,
        order: u64,
        dial_first: bool,
    },
    /// A dial-first entry's customer answered.
    Reached(Index),
    Withdraw(Index),
    Raise(Index),
    HangUp(Index),
    Exit(Index),
    Login(usize),
    Logout(usize),
    Break(usize),
    Available(usize),
    Reachable(usize, bool),
    Answer(Index),
    Reject(Index, RejectReason),
    AgentHangUp(Index),
    /// Another node sharing the store takes the agent, or lets it go.
    HeldElsewhere(usize, bool),
    /// The store refuses the claim behind an offer (another node got the
    /// agent first).
    Taken(Index),
    /// A caller waiting unoffered on another node, `ahead` ms before now
    /// (entry ids 1..=4), or gone.
    Remote {
        entry: u64,
        queue: usize,
        ahead: u64,
    },
    RemoteGone(u64),
    Advance(u64),
    /// An answer, rejection or agent hang-up that matches nothing.
    Stale {
        caller: CallKey,
        agent: usize,
        kind: u8,
    },
}

fn strategy() -> impl Strategy<Value = acd::Strategy> {
    prop_oneof![
        Just(acd::Strategy::LongestIdle),
        Just(acd::Strategy::RoundRobin),
        Just(acd::Strategy::FewestCalls),
        Just(acd::Strategy::RingAll),
        (1u8..=10).prop_map(|min_level| acd::Strategy::Skills {
            skill: SKILL.into(),
            min_level
        }),
    ]
}

fn queue_config(i: usize) -> impl Strategy<Value = QueueConfig> {
    (
        strategy(),
        (any::<bool>(), any::<bool>()),
        prop::option::of(10u64..120),
        prop::option::of(1usize..5),
        any::<bool>(),
        prop_oneof![Just(0u64), Just(5), Just(30)],
        prop::option::of(1u32..4),
        1u64..30,
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            move |(
                strategy,
                (join_empty, leave_empty),
                max_wait,
                max_len,
                overflow,
                wrap,
                auto_break,
                ring,
                (announce, apology),
            )| {
                let mut q = QueueConfig::new(&format!("q{i}")).with_strategy(strategy);
                q.join_empty = join_empty;
                q.leave_empty = leave_empty;
                q.max_wait = max_wait.map(Duration::from_secs);
                q.max_len = max_len;
                q.overflow = overflow.then(|| "message".to_string());
                q.wrap_up = Duration::from_secs(wrap);
                q.auto_break_after = auto_break;
                q.ring_timeout = Duration::from_secs(ring);
                q.announce_every = announce.then_some(Duration::from_secs(30));
                q.apology_after = apology.then_some(Duration::from_secs(15));
                q
            },
        )
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        (queue_config(0), queue_config(1), queue_config(2)),
        prop::collection::vec((1u8..8, prop::option::of(1u8..=10), any::<bool>()), AGENTS),
    )
        .prop_map(|((q0, q1, q2), agents)| {
            let mut ready = Vec::new();
            let agents = agents
                .into_iter()
                .enumerate()
                .map(|(i, (mask, level, up))| {
                    ready.push(up);
                    let queues: Vec<String> = (0..QUEUES)
                        .filter(|q| mask & (1 << q) != 0)
                        .map(|q| format!("q{q}"))
                        .collect();
                    let names: Vec<&str> = queues.iter().map(String::as_str).collect();
                    let mut a = AgentConfig::new(&format!("a{i}"), &names);
                    if let Some(level) = level {
                        a = a.with_skill(SKILL, level);
                    }
                    a
                })
                .collect();
            Setup {
                queues: vec![q0, q1, q2],
                agents,
                ready,
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS;
    prop_oneof![
        6 => (
            0..QUEUES,
            1u8..=6,
            prop::option::weighted(0.3, (0..AGENTS, 1u64..30_000))
        )
            .prop_map(|(queue, priority, preferred)| Op::Join {
                queue,
                priority,
                preferred
            }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(i, d)| Op::KeepPlace(i, d)),
        2 => (0..QUEUES, 0u8..=10, 0u64..7200, any::<bool>()).prop_map(
            |(queue, priority, order, dial_first)| Op::Work {
                queue,
                priority,
                order,
                dial_first
            }
        ),
        2 => any::<Index>().prop_map(Op::Reached),
        1 => any::<Index>().prop_map(Op::Withdraw),
        1 => any::<Index>().prop_map(Op::Raise),
        2 => any::<Index>().prop_map(Op::HangUp),
        1 => any::<Index>().prop_map(Op::Exit),
        2 => agent.clone().prop_map(Op::Login),
        1 => agent.clone().prop_map(Op::Logout),
        1 => agent.clone().prop_map(Op::Break),
        2 => agent.clone().prop_map(Op::Available),
        2 => (agent.clone(), any::<bool>()).prop_map(|(a, r)| Op::Reachable(a, r)),
        5 => any::<Index>().prop_map(Op::Answer),
        2 => (
            any::<Index>(),
            prop_oneof![
                Just(RejectReason::Busy),
                Just(RejectReason::NoAnswer),
                Just(RejectReason::Failed)
            ]
        )
            .prop_map(|(i, r)| Op::Reject(i, r)),
        3 => any::<Index>().prop_map(Op::AgentHangUp),
        1 => (agent.clone(), any::<bool>()).prop_map(|(a, h)| Op::HeldElsewhere(a, h)),
        1 => any::<Index>().prop_map(Op::Taken),
        1 => (1u64..=4, 0..QUEUES, 0u64..60_000).prop_map(|(entry, queue, ahead)| Op::Remote {
            entry,
            queue,
            ahead
        }),
        1 => (1u64..=4).prop_map(Op::RemoteGone),
        5 => (0u64..40_000).prop_map(Op::Advance),
        1 => (0u64..40, agent, 0u8..3).prop_map(|(caller, agent, kind)| Op::Stale {
            caller: CallKey(caller),
            agent,
            kind
        }),
    ]
}

/// The ACD, a clock, and what the action stream says is going on.
struct Driver {
    acd: Acd,
    setup: Setup,
    now: Instant,
    next_id: u64,
    joined: BTreeSet<CallKey>,
    /// Leave or JoinRefused per caller.
    terminal: BTreeMap<CallKey, u32>,
    alive: BTreeSet<CallKey>,
    offers: BTreeSet<(CallKey, String)>,
    bridged: BTreeMap<CallKey, String>,
    /// Entries that are work, and those whose customer is being dialled.
    work: BTreeSet<CallKey>,
    dial_first: BTreeSet<CallKey>,
    dialing: BTreeSet<CallKey>,
    /// Callers the ACD says wait unoffered (shared with other nodes).
    published: BTreeSet<CallKey>,
    /// Agents another node holds.
    held: BTreeSet<String>,
    /// Callers waiting on other nodes: entry -> queue.
    remote: BTreeMap<u64, usize>,
    made: u64,
    answered: u64,
    rejected: u64,
    cancelled: u64,
}

impl Driver {
    fn new(setup: Setup) -> Driver {
        let mut acd = Acd::new(setup.queues.clone(), setup.agents.clone()).expect("valid");
        // Shared with other nodes: the waiting callers are published too.
        acd.share_waiting();
        let mut d = Driver {
            acd,
            setup,
            now: Instant::now(),
            next_id: 1,
            joined: BTreeSet::new(),
            terminal: BTreeMap::new(),
            alive: BTreeSet::new(),
            offers: BTreeSet::new(),
            bridged: BTreeMap::new(),
            work: BTreeSet::new(),
            dial_first: BTreeSet::new(),
            dialing: BTreeSet::new(),
            published: BTreeSet::new(),
            held: BTreeSet::new(),
            remote: BTreeMap::new(),
            made: 0,
            answered: 0,
            rejected: 0,
            cancelled: 0,
        };
        for i in 0..AGENTS {
            if d.setup.ready[i] {
                d.input(AcdInput::AgentLogin { agent: agent(i) });
                d.input(AcdInput::AgentReachable {
                    agent: agent(i),
                    reachable: true,
                });
            }
        }
        d
    }

    fn input(&mut self, input: AcdInput) -> Vec<AcdAction> {
        self.acd.handle(self.now, input);
        self.drain()
    }

    fn drain(&mut self) -> Vec<AcdAction> {
        let actions: Vec<AcdAction> = std::iter::from_fn(|| self.acd.poll_action()).collect();
        for a in &actions {
            self.account(a);
        }
        self.check();
        actions
    }

    /// Follows one action, checking it makes sense.
    fn account(&mut self, action: &AcdAction) {
        match action {
            AcdAction::Offer { caller, agent } => {
                assert!(self.alive.contains(caller), "offer of gone caller {caller}");
                assert!(
                    !self.offers.iter().any(|(_, a)| a == agent),
                    "{agent} offered twice"
                );
                assert!(
                    !self.bridged.values().any(|a| a == agent),
                    "{agent} offered while on a call"
                );
                assert!(
                    !self.bridged.contains_key(caller),
                    "{caller} already bridged"
                );
                assert!(
                    !self.dialing.contains(caller),
                    "{caller} offered while its customer is dialled"
                );
                assert!(
                    !self.held.contains(agent),
                    "{agent} offered while another node holds it"
                );
                assert!(
                    !self.published.contains(caller),
                    "{caller} offered while published as waiting"
                );
                self.offers.insert((*caller, agent.clone()));
                self.made += 1;
            }
            AcdAction::CancelOffer { caller, agent, .. } => {
                assert!(
                    self.offers.remove(&(*caller, agent.clone())),
                    "cancel of an offer not made: {caller} {agent}"
                );
                self.cancelled += 1;
            }
            AcdAction::Bridge { caller, agent } => {
                assert!(
                    self.offers.remove(&(*caller, agent.clone())),
                    "bridge without offer"
                );
                assert!(
                    self.bridged.insert(*caller, agent.clone()).is_none(),
                    "{caller} bridged twice"
                );
                self.answered += 1;
            }
            AcdAction::Leave { caller, reason } => {
                assert!(
                    self.alive.remove(caller),
                    "leave of {caller} not in the ACD"
                );
                *self.terminal.entry(*caller).or_default() += 1;
                let work = self.work.remove(caller);
                self.dial_first.remove(caller);
                self.dialing.remove(caller);
                if matches!(reason, LeaveReason::Withdrawn) {
                    assert!(work, "{caller} withdrawn but not work");
                }
                if work {
                    assert!(
                        matches!(
                            reason,
                            LeaveReason::Withdrawn | LeaveReason::Completed { .. }
                        ),
                        "work {caller} left for {reason:?}"
                    );
                }
                assert!(
                    !self.offers.iter().any(|(c, _)| c == caller),
                    "{caller} left with an offer ringing"
                );
                let bridged = self.bridged.remove(caller);
                match reason {
                    LeaveReason::Completed { agent, .. } => {
                        assert_eq!(bridged.as_ref(), Some(agent))
                    }
                    other => assert_eq!(bridged, None, "{other:?} while bridged"),
                }
            }
            AcdAction::JoinRefused { caller, .. } => {
                *self.terminal.entry(*caller).or_default() += 1;
                self.alive.remove(caller);
            }
            AcdAction::Announce { caller, .. } | AcdAction::Apologise { caller } => {
                assert!(self.alive.contains(caller));
                assert!(!self.bridged.contains_key(caller), "announce while bridged");
            }
            // A dial-first entry (a customer-first callback) at the head
            // with an agent free. The model makes none; should it, the
            // entry is in the ACD and with no agent yet.
            AcdAction::QueueLog(_) | AcdAction::AgentState { .. } => {}
            AcdAction::Waiting { caller, .. } => {
                assert!(self.alive.contains(caller), "{caller} waiting but gone");
                assert!(
                    !self.bridged.contains_key(caller),
                    "{caller} waiting, bridged"
                );
                self.published.insert(*caller);
            }
            AcdAction::NotWaiting { caller } => {
                assert!(
                    self.published.remove(caller),
                    "{caller} not waiting, but never said to be"
                );
            }
            AcdAction::DialCustomer { caller } => {
                assert!(self.alive.contains(caller), "dial of gone {caller}");
                assert!(
                    self.dial_first.contains(caller),
                    "{caller} is not dial-first"
                );
                assert!(self.dialing.insert(*caller), "{caller} dialled twice");
                assert!(!self.offers.iter().any(|(c, _)| c == caller));
            }
        }
    }

    fn member(&self, agent: usize, queue: usize) -> bool {
        let config = &self.setup.agents[agent];
        let q = &self.setup.queues[queue];
        config.queues.contains(&q.name)
            && match &q.strategy {
                acd::Strategy::Skills { skill, min_level } => {
                    config.skills.get(skill).is_some_and(|l| l >= min_level)
                }
                _ => true,
            }
    }

    /// The ACD's views agree with the action stream and keep the promises.
    fn check(&self) {
        assert_eq!(self.acd.caller_count(), self.alive.len());
        let mut offered = BTreeSet::new();
        for (i, view) in self.acd.agents().enumerate() {
            assert_eq!(view.id, agent(i));
            match view.state {
                AgentState::Offered { caller } => {
                    assert_eq!(view.status, &AgentStatus::Available, "{view:?}");
                    assert!(view.reachable, "{view:?}");
                    offered.insert((caller, view.id.to_string()));
                }
                AgentState::OnCall { caller } => {
                    assert_eq!(self.bridged.get(&caller).map(String::as_str), Some(view.id));
                }
                AgentState::WrapUp { until } => assert!(until > self.now),
                AgentState::Idle => {}
            }
        }
        assert_eq!(offered, self.offers, "agent states match the offers made");
        let on_call = self
            .acd
            .agents()
            .filter(|v| matches!(v.state, AgentState::OnCall { .. }))
            .count();
        assert_eq!(on_call, self.bridged.len());

        let mut queued = 0;
        for (q, config) in self.setup.queues.iter().enumerate() {
            let order = self.acd.queue_order(&config.name).expect("queue");
            queued += order.len();
            let mut waiting = 0;
            for c in &order {
                let view = self.acd.caller(*c).expect("queued caller is tracked");
                assert_eq!(view.work, self.work.contains(c), "{c} work or not");
                match view.phase {
                    // A repeat caller waits for their own agent, who must
                    // not be free (or they would have been offered).
                    CallerPhase::Waiting if view.reserved_for.is_some() => {
                        let own = view.reserved_for.unwrap_or_default();
                        let free = self.acd.agent(own).is_some_and(|v| {
                            v.status == &AgentStatus::Available
                                && v.reachable
                                && v.state == AgentState::Idle
                                && !self.held.contains(own)
                        });
                        assert!(!free, "{c} waits for {own}, who is free");
                    }
                    CallerPhase::Waiting => {
                        assert!(self.published.contains(c), "{c} waits unpublished");
                        waiting += 1
                    }
                    CallerPhase::Dialing => {
                        assert!(self.dialing.contains(c), "{c} dialling unannounced");
                        assert!(!self.published.contains(c), "{c} dialling, published");
                    }
                    CallerPhase::Ringing { agents } => {
                        assert!(!self.published.contains(c), "{c} ringing, published");
                        assert!(!agents.is_empty());
                        assert!(
                            agents.len() == 1 || config.strategy.rings_all(),
                            "several offers outside ring-all"
                        );
                    }
                    CallerPhase::Bridged { .. } => panic!("bridged caller still queued"),
                }
            }
            let usable = self
                .acd
                .agents()
                .enumerate()
                .filter(|(i, v)| {
                    self.member(*i, q)
                        && v.status == &AgentStatus::Available
                        && v.reachable
                        && v.state == AgentState::Idle
                        && !self.held.contains(v.id)
                })
                .count();
            let stats = self.acd.queue_stats(self.now, &config.name).expect("stats");
            assert_eq!(stats.idle, usable, "idle index of {}", config.name);
            // A caller waiting on another node may be ahead of ours.
            let remote_here = self.remote.values().any(|&rq| rq == q);
            assert!(
                waiting == 0 || usable == 0 || remote_here,
                "{} has {waiting} waiting and {usable} usable agents",
                config.name
            );
        }
        assert_eq!(queued + self.bridged.len(), self.alive.len());
        if let Some(t) = self.acd.poll_timeout() {
            assert!(t > self.now, "a due timer was left unrun");
        }
    }

    fn advance_to(&mut self, target: Instant) {
        while let Some(t) = self.acd.poll_timeout() {
            if t > target {
                break;
            }
            self.now = t;
            self.acd.handle_timeout(t);
            self.drain();
        }
        self.now = target;
    }

    fn step(&mut self, op: &Op) {
        let alive: Vec<CallKey> = self.alive.iter().copied().collect();
        let offers: Vec<(CallKey, String)> = self.offers.iter().cloned().collect();
        let bridged: Vec<(CallKey, String)> =
            self.bridged.iter().map(|(c, a)| (*c, a.clone())).collect();
        match op {
            Op::Join {
                queue,
                priority,
                preferred,
            } => {
                let caller = CallKey(self.next_id);
                self.next_id += 1;
                self.joined.insert(caller);
                self.alive.insert(caller);
                self.input(AcdInput::CallerJoined {
                    caller,
                    queue: format!("q{queue}"),
                    priority: *priority,
                    caller_id: format!("{}", caller.0),
                    preferred: preferred
                        .map(|(a, ms)| (agent(a), self.now + Duration::from_millis(ms))),
                });
            }
            Op::KeepPlace(i, dial_first) if !alive.is_empty() => {
                let caller = *i.get(&alive);
                let before = self
                    .acd
                    .caller(caller)
                    .map(|v| (v.queue.to_string(), v.position));
                let callback = CallKey(self.next_id);
                self.next_id += 1;
                let live = !self.bridged.contains_key(&caller) && !self.work.contains(&caller);
                if live {
                    self.joined.insert(callback);
                    self.alive.insert(callback);
                    self.work.insert(callback);
                    if *dial_first {
                        self.dial_first.insert(callback);
                    }
                }
                let out = self.input(AcdInput::KeepPlace {
                    caller,
                    callback,
                    dial_first: *dial_first,
                });
                if live {
                    assert!(out.contains(&AcdAction::Leave {
                        caller,
                        reason: LeaveReason::CallbackRequested { callback }
                    }));
                    // Same place, unless it was handed out at once.
                    if let (Some((queue, position)), Some(after)) =
                        (before, self.acd.caller(callback))
                    {
                        assert_eq!(after.queue, queue);
                        if matches!(after.phase, CallerPhase::Waiting) {
                            assert_eq!(after.position, position, "the callback keeps the place");
                        }
                    }
                } else {
                    assert!(
                        out.is_empty(),
                        "keep-place of a bridged caller or work: {out:?}"
                    );
                }
            }
            Op::Work {
                queue,
                priority,
                order,
                dial_first,
            } => {
                let caller = CallKey(self.next_id);
                self.next_id += 1;
                self.joined.insert(caller);
                self.alive.insert(caller);
                self.work.insert(caller);
                if *dial_first {
                    self.dial_first.insert(caller);
                }
                self.input(AcdInput::WorkJoined {
                    caller,
                    queue: format!("q{queue}"),
                    priority: *priority,
                    order: self.now + Duration::from_secs(*order),
                    dial_first: *dial_first,
                });
            }
            Op::Reached(i) if !self.dialing.is_empty() => {
                let dialing: Vec<CallKey> = self.dialing.iter().copied().collect();
                let caller = *i.get(&dialing);
                self.dialing.remove(&caller);
                self.dial_first.remove(&caller);
                self.input(AcdInput::CustomerReached { caller });
            }
            Op::Withdraw(i) if !self.work.is_empty() => {
                let work: Vec<CallKey> = self.work.iter().copied().collect();
                let caller = *i.get(&work);
                let bridged = self.bridged.contains_key(&caller);
                let out = self.input(AcdInput::WorkWithdrawn { caller });
                if bridged {
                    assert!(out.is_empty(), "withdrawal of a bridged task: {out:?}");
                } else {
                    assert!(!self.alive.contains(&caller), "{caller} still there");
                }
            }
            Op::Raise(i) if !self.work.is_empty() => {
                let work: Vec<CallKey> = self.work.iter().copied().collect();
                let caller = *i.get(&work);
                self.input(AcdInput::Reprioritise {
                    caller,
                    priority: 10,
                });
                if let Some(v) = self.acd.caller(caller) {
                    if v.position.is_some() {
                        assert_eq!(v.priority, 10);
                    }
                }
            }
            Op::HangUp(i) if !alive.is_empty() => {
                self.input(AcdInput::CallerHungUp {
                    caller: *i.get(&alive),
                });
            }
            Op::Exit(i) if !alive.is_empty() => {
                let caller = *i.get(&alive);
                let was_bridged = self.bridged.contains_key(&caller);
                let out = self.input(AcdInput::CallerPressedExit { caller, key: '0' });
                if was_bridged {
                    assert!(out.is_empty(), "exit key during the call: {out:?}");
                } else {
                    assert!(!self.alive.contains(&caller));
                }
            }
            Op::Login(a) => {
                self.input(AcdInput::AgentLogin { agent: agent(*a) });
            }
            Op::Logout(a) => {
                self.input(AcdInput::AgentLogout { agent: agent(*a) });
            }
            Op::Break(a) => {
                self.input(AcdInput::AgentBreak {
                    agent: agent(*a),
                    reason: "tea".into(),
                });
            }
            Op::Available(a) => {
                self.input(AcdInput::AgentAvailable { agent: agent(*a) });
            }
            Op::Reachable(a, reachable) => {
                self.input(AcdInput::AgentReachable {
                    agent: agent(*a),
                    reachable: *reachable,
                });
            }
            Op::Answer(i) if !offers.is_empty() => {
                let (caller, agent) = i.get(&offers).clone();
                let out = self.input(AcdInput::OfferAnswered {
                    caller,
                    agent: agent.clone(),
                });
                assert!(out.contains(&AcdAction::Bridge { caller, agent }));
            }
            Op::Reject(i, reason) if !offers.is_empty() => {
                let (caller, agent) = i.get(&offers).clone();
                // The phone's refusal is the offer's end: no cancel for it.
                self.offers.remove(&(caller, agent.clone()));
                self.rejected += 1;
                let out = self.input(AcdInput::OfferRejected {
                    caller,
                    agent: agent.clone(),
                    reason: *reason,
                });
                assert!(!out.iter().any(|a| matches!(
                    a,
                    AcdAction::CancelOffer { caller: c, agent: g, .. } if *c == caller && *g == agent
                )));
            }
            Op::AgentHangUp(i) if !bridged.is_empty() => {
                let (caller, agent) = i.get(&bridged).clone();
                let out = self.input(AcdInput::AgentHungUp { caller, agent });
                assert!(out.iter().any(|a| matches!(
                    a,
                    AcdAction::Leave {
                        caller: c,
                        reason: LeaveReason::Completed { .. }
                    } if *c == caller
                )));
            }
            Op::HeldElsewhere(a, held) => {
                if *held {
                    self.held.insert(agent(*a));
                } else {
                    self.held.remove(&agent(*a));
                }
                let out = self.input(AcdInput::AgentClaimedElsewhere {
                    agent: agent(*a),
                    claimed: *held,
                });
                // A ringing offer is cancelled (the cancel is accounted).
                let _ = out;
            }
            Op::Taken(i) if !offers.is_empty() => {
                let (caller, agent) = i.get(&offers).clone();
                // Nothing rang: the offer ends without a cancel (counted
                // with the refusals).
                self.offers.remove(&(caller, agent.clone()));
                self.rejected += 1;
                self.held.insert(agent.clone());
                let out = self.input(AcdInput::OfferTaken {
                    caller,
                    agent: agent.clone(),
                });
                assert!(!out.iter().any(|a| matches!(
                    a,
                    AcdAction::CancelOffer { .. }
                        | AcdAction::QueueLog(QueueLogEvent {
                            kind: QueueLogKind::RingNoAnswer { .. },
                            ..
                        })
                )));
            }
            Op::Remote {
                entry,
                queue,
                ahead,
            } => {
                let arrival = self
                    .now
                    .checked_sub(Duration::from_millis(*ahead))
                    .unwrap_or(self.now);
                self.remote.insert(*entry, *queue);
                self.input(AcdInput::RemoteWaiting {
                    entry: *entry,
                    queue: self.setup.queues[*queue].name.clone(),
                    priority: 1,
                    arrival,
                });
            }
            Op::RemoteGone(entry) => {
                self.remote.remove(entry);
                self.input(AcdInput::RemoteGone { entry: *entry });
            }
            Op::Advance(ms) => {
                let target = self.now + Duration::from_millis(*ms);
                self.advance_to(target);
            }
            Op::Stale {
                caller,
                agent: a,
                kind,
            } => {
                let pair = (*caller, agent(*a));
                if self.offers.contains(&pair) || self.bridged.get(caller) == Some(&pair.1) {
                    return;
                }
                let (caller, agent) = pair;
                let input = match kind {
                    0 => AcdInput::OfferAnswered { caller, agent },
                    1 => AcdInput::OfferRejected {
                        caller,
                        agent,
                        reason: RejectReason::NoAnswer,
                    },
                    _ => AcdInput::AgentHungUp { caller, agent },
                };
                let out = self.input(input.clone());
                assert!(out.is_empty(), "{input:?} changed things: {out:?}");
            }
            _ => {}
        }
    }

    /// Everyone hangs up, then time runs until no timer is left.
    fn drain_all(&mut self) {
        for caller in self.alive.clone() {
            self.input(AcdInput::CallerHungUp { caller });
        }
        let mut rounds = 0;
        while let Some(t) = self.acd.poll_timeout() {
            rounds += 1;
            assert!(rounds < 10_000, "timers never run out");
            self.now = t;
            self.acd.handle_timeout(t);
            self.drain();
        }
        assert!(self.alive.is_empty(), "still in the ACD: {:?}", self.alive);
        assert_eq!(self.acd.caller_count(), 0);
        for id in &self.joined {
            assert_eq!(
                self.terminal.get(id),
                Some(&1),
                "caller {id}: one Leave or JoinRefused"
            );
        }
        assert_eq!(self.terminal.len(), self.joined.len());
        assert!(self.offers.is_empty() && self.bridged.is_empty());
        for view in self.acd.agents() {
            assert_eq!(view.state, AgentState::Idle, "{view:?}");
        }
        assert_eq!(
            self.made,
            self.answered + self.rejected + self.cancelled,
            "offers = answered + rejected + cancelled"
        );
        for config in &self.setup.queues {
            let stats = self.acd.queue_stats(self.now, &config.name).expect("stats");
            assert_eq!((stats.waiting, stats.ringing), (0, 0));
            let c = stats.counters;
            assert_eq!(c.answered, c.completed, "every connected call ended");
        }
    }
}

fn agent(i: usize) -> String {
    format!("a{i}")
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_traffic_keeps_the_promises(
        setup in setup(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut d = Driver::new(setup);
        for op in &ops {
            d.step(op);
        }
        d.drain_all();
    }
}
