//! The ACD under simulated time: each strategy, priorities, ring timeouts,
//! ring-all, wrap-up, auto-break, the apology, announcements, max wait,
//! empty queues, the exit key, abandons and exact queue_log lines.

use std::time::{Duration, Instant};

use super::*;

const EPOCH: u64 = 1_700_000_000;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An ACD and a clock.
struct Sim {
    acd: Acd,
    t0: Instant,
    now: Instant,
    /// Every action so far, with when it was asked for.
    log: Vec<(Instant, AcdAction)>,
}

impl Sim {
    fn new(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> Sim {
        let t0 = crate::time::test_epoch();
        Sim {
            acd: Acd::new(queues, agents).expect("valid config"),
            t0,
            now: t0,
            log: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<AcdAction> {
        let out: Vec<AcdAction> = std::iter::from_fn(|| self.acd.poll_action()).collect();
        self.log.extend(out.iter().map(|a| (self.now, a.clone())));
        out
    }

    fn handle(&mut self, input: AcdInput) -> Vec<AcdAction> {
        self.acd.handle(self.now, input);
        self.drain()
    }

    /// Moves the clock to `t0 + at`, running every timer on the way at
    /// its exact instant.
    fn run_until(&mut self, at: Duration) -> Vec<AcdAction> {
        let target = self.t0 + at;
        let mut out = Vec::new();
        while let Some(t) = self.acd.poll_timeout() {
            if t > target {
                break;
            }
            assert!(t >= self.now, "timers never go back in time");
            self.now = t;
            self.acd.handle_timeout(t);
            out.extend(self.drain());
        }
        self.now = target;
        out
    }

    fn ready(&mut self, agents: &[&str]) {
        for a in agents {
            self.handle(AcdInput::AgentLogin {
                agent: a.to_string(),
            });
            self.handle(AcdInput::AgentReachable {
                agent: a.to_string(),
                reachable: true,
            });
        }
    }

    fn join(&mut self, caller: CallKey, queue: &str, priority: u8) -> Vec<AcdAction> {
        self.handle(AcdInput::CallerJoined {
            caller,
            queue: queue.into(),
            priority,
            caller_id: format!("1380013{:04}", caller.0),
            preferred: None,
        })
    }

    fn answer(&mut self, caller: CallKey, agent: &str) -> Vec<AcdAction> {
        self.handle(AcdInput::OfferAnswered {
            caller,
            agent: agent.into(),
        })
    }

    fn caller_hangs_up(&mut self, caller: CallKey) -> Vec<AcdAction> {
        self.handle(AcdInput::CallerHungUp { caller })
    }

    fn agent_hangs_up(&mut self, caller: CallKey, agent: &str) -> Vec<AcdAction> {
        self.handle(AcdInput::AgentHungUp {
            caller,
            agent: agent.into(),
        })
    }

    /// Joins `caller` and has the agent it is offered to answer.
    fn connect(&mut self, caller: CallKey, queue: &str) -> String {
        let offers = offers(&self.join(caller, queue, 1));
        assert_eq!(offers.len(), 1, "{offers:?}");
        let agent = offers[0].1.clone();
        self.answer(caller, &agent);
        agent
    }

    fn state(&self, agent: &str) -> AgentState {
        self.acd.agent(agent).expect("agent").state
    }

    fn status(&self, agent: &str) -> AgentStatus {
        self.acd.agent(agent).expect("agent").status.clone()
    }

    /// queue_log lines written so far, at `EPOCH + seconds since t0`.
    fn lines(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                AcdAction::QueueLog(e) => Some(e.to_line(
                    EPOCH + (*t - self.t0).as_secs(),
                    &format!("call-{}", e.caller.map_or(0, |c| c.0)),
                )),
                _ => None,
            })
            .collect()
    }

    /// queue_log lines containing `event`.
    fn lines_with(&self, event: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(&format!("|{event}|")))
            .collect()
    }
}

fn offers(actions: &[AcdAction]) -> Vec<(CallKey, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Offer { caller, agent } => Some((*caller, agent.clone())),
            _ => None,
        })
        .collect()
}

fn cancels(actions: &[AcdAction]) -> Vec<(CallKey, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::CancelOffer { caller, agent, .. } => Some((*caller, agent.clone())),
            _ => None,
        })
        .collect()
}

fn leaves(actions: &[AcdAction]) -> Vec<(CallKey, LeaveReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Leave { caller, reason } => Some((*caller, reason.clone())),
            _ => None,
        })
        .collect()
}

/// The actions other than queue_log lines and agent state reports.
fn calls(actions: &[AcdAction]) -> Vec<AcdAction> {
    actions
        .iter()
        .filter(|a| !matches!(a, AcdAction::QueueLog(_) | AcdAction::AgentState { .. }))
        .cloned()
        .collect()
}

fn offer(caller: CallKey, agent: &str) -> (CallKey, String) {
    (caller, agent.to_string())
}

fn queue(name: &str) -> QueueConfig {
    QueueConfig::new(name)
}

fn no_wrap(name: &str, strategy: Strategy) -> QueueConfig {
    let mut q = QueueConfig::new(name).with_strategy(strategy);
    q.wrap_up = Duration::ZERO;
    q
}

fn agents(ids: &[&str], queues: &[&str]) -> Vec<AgentConfig> {
    ids.iter().map(|id| AgentConfig::new(id, queues)).collect()
}

// ----- strategies -----

#[test]
fn longest_idle_offers_the_agent_whose_last_call_ended_first() {
    let mut sim = Sim::new(
        vec![no_wrap("q", Strategy::LongestIdle)],
        agents(&["a", "b", "c"], &["q"]),
    );
    sim.ready(&["a", "b", "c"]);
    assert_eq!(
        sim.connect(CallKey(1), "q"),
        "a",
        "never-called agents in member order"
    );
    assert_eq!(sim.connect(CallKey(2), "q"), "b");
    assert_eq!(sim.connect(CallKey(3), "q"), "c");
    sim.run_until(s(10));
    sim.caller_hangs_up(CallKey(3));
    sim.run_until(s(20));
    sim.caller_hangs_up(CallKey(1));
    sim.run_until(s(30));
    sim.caller_hangs_up(CallKey(2));
    sim.run_until(s(40));
    assert_eq!(sim.connect(CallKey(4), "q"), "c", "idle since 10 s");
    assert_eq!(sim.connect(CallKey(5), "q"), "a", "idle since 20 s");
    assert_eq!(sim.connect(CallKey(6), "q"), "b", "idle since 30 s");
}

#[test]
fn round_robin_continues_after_the_last_agent_offered() {
    let mut sim = Sim::new(
        vec![no_wrap("q", Strategy::RoundRobin)],
        agents(&["a", "b", "c", "d"], &["q"]),
    );
    sim.ready(&["a", "b", "c", "d"]);
    for (caller, want) in [(CallKey(1), "a"), (CallKey(2), "b"), (CallKey(3), "c")] {
        assert_eq!(sim.connect(caller, "q"), want);
        sim.caller_hangs_up(caller);
    }
    sim.handle(AcdInput::AgentBreak {
        agent: "d".into(),
        reason: "lunch".into(),
    });
    assert_eq!(
        sim.connect(CallKey(4), "q"),
        "a",
        "d on break: wrap around to a"
    );
    sim.caller_hangs_up(CallKey(4));
    assert_eq!(sim.connect(CallKey(5), "q"), "b");
}

#[test]
fn fewest_calls_beats_longest_idle() {
    for (strategy, want) in [(Strategy::FewestCalls, "b"), (Strategy::LongestIdle, "a")] {
        let mut sim = Sim::new(vec![no_wrap("q", strategy)], agents(&["a", "b"], &["q"]));
        sim.ready(&["a", "b"]);
        assert_eq!(sim.connect(CallKey(1), "q"), "a");
        assert_eq!(sim.connect(CallKey(2), "q"), "b");
        sim.run_until(s(1));
        sim.caller_hangs_up(CallKey(1));
        assert_eq!(sim.connect(CallKey(3), "q"), "a");
        sim.run_until(s(2));
        sim.caller_hangs_up(CallKey(3));
        sim.run_until(s(9));
        sim.caller_hangs_up(CallKey(2));
        // a: 2 calls, idle since 2 s; b: 1 call, idle since 9 s.
        sim.run_until(s(10));
        assert_eq!(sim.connect(CallKey(4), "q"), want);
    }
}

#[test]
fn ring_all_first_answer_wins_and_the_others_are_cancelled() {
    let mut sim = Sim::new(
        vec![queue("q").with_strategy(Strategy::RingAll)],
        agents(&["a", "b", "c"], &["q"]),
    );
    sim.ready(&["a", "b", "c"]);
    let out = sim.join(CallKey(1), "q", 1);
    assert_eq!(
        offers(&out),
        vec![
            offer(CallKey(1), "a"),
            offer(CallKey(1), "b"),
            offer(CallKey(1), "c")
        ]
    );
    sim.run_until(s(3));
    let out = sim.answer(CallKey(1), "b");
    assert_eq!(
        calls(&out),
        vec![
            AcdAction::Bridge {
                caller: CallKey(1),
                agent: "b".into()
            },
            AcdAction::CancelOffer {
                caller: CallKey(1),
                agent: "a".into(),
                reason: CancelReason::AnsweredElsewhere
            },
            AcdAction::CancelOffer {
                caller: CallKey(1),
                agent: "c".into(),
                reason: CancelReason::AnsweredElsewhere
            },
        ]
    );
    assert_eq!(sim.state("a"), AgentState::Idle);
    assert_eq!(sim.state("b"), AgentState::OnCall { caller: CallKey(1) });
    assert!(
        sim.lines_with("RINGNOANSWER").is_empty(),
        "losers did not fail"
    );
    assert_eq!(sim.acd.agent("a").expect("a").consecutive_no_answers, 0);
    // A late answer from a loser changes nothing.
    assert!(sim.answer(CallKey(1), "c").is_empty());
    let out = sim.join(CallKey(2), "q", 1);
    assert_eq!(
        offers(&out),
        vec![offer(CallKey(2), "a"), offer(CallKey(2), "c")]
    );
}

#[test]
fn ring_all_rings_everyone_again_after_a_timeout() {
    let mut sim = Sim::new(
        vec![queue("q").with_strategy(Strategy::RingAll)],
        agents(&["a", "b"], &["q"]),
    );
    sim.ready(&["a", "b"]);
    sim.join(CallKey(1), "q", 1);
    let out = sim.run_until(s(15));
    assert_eq!(
        cancels(&out),
        vec![offer(CallKey(1), "a"), offer(CallKey(1), "b")]
    );
    assert_eq!(
        offers(&out),
        vec![offer(CallKey(1), "a"), offer(CallKey(1), "b")]
    );
    assert_eq!(sim.lines_with("RINGNOANSWER").len(), 2);
}

#[test]
fn skills_rank_by_level_and_leave_out_the_unskilled() {
    let strategy = Strategy::Skills {
        skill: "billing".into(),
        min_level: 5,
    };
    let mut sim = Sim::new(
        vec![no_wrap("billing", strategy)],
        vec![
            AgentConfig::new("a", &["billing"]).with_skill("billing", 3),
            AgentConfig::new("b", &["billing"]).with_skill("billing", 6),
            AgentConfig::new("c", &["billing"]).with_skill("billing", 9),
            AgentConfig::new("d", &["billing"]).with_skill("gas", 9),
        ],
    );
    assert_eq!(sim.acd.agent_queues("a"), Some(vec![]));
    assert_eq!(sim.acd.agent_queues("c"), Some(vec!["billing"]));
    sim.ready(&["a", "b", "c", "d"]);
    assert_eq!(
        sim.connect(CallKey(1), "billing"),
        "c",
        "highest level first"
    );
    assert_eq!(sim.connect(CallKey(2), "billing"), "b");
    assert!(
        offers(&sim.join(CallKey(3), "billing", 1)).is_empty(),
        "a is below 5"
    );
    let stats = sim.acd.queue_stats(sim.now, "billing").expect("stats");
    assert_eq!((stats.agents, stats.waiting, stats.idle), (2, 1, 0));
    // c is free again: it takes the waiting caller.
    sim.run_until(s(5));
    sim.caller_hangs_up(CallKey(1));
    assert_eq!(
        offers(&sim.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>()).last(),
        Some(&offer(CallKey(3), "c"))
    );
}

// ----- priorities -----

#[test]
fn vip_and_group_callers_jump_the_queue() {
    use crate::directory::CustomerClass;
    let mut sim = Sim::new(
        vec![no_wrap("q", Strategy::LongestIdle)],
        agents(&["a"], &["q"]),
    );
    sim.ready(&["a"]);
    sim.connect(CallKey(100), "q");
    let public = caller_priority(CustomerClass::Public, false);
    sim.run_until(s(1));
    sim.join(CallKey(1), "q", public);
    sim.run_until(s(2));
    sim.join(CallKey(2), "q", public);
    sim.run_until(s(3));
    sim.join(
        CallKey(3),
        "q",
        caller_priority(CustomerClass::Group, false),
    );
    sim.run_until(s(4));
    sim.join(
        CallKey(4),
        "q",
        caller_priority(CustomerClass::Public, true),
    );
    assert_eq!(
        sim.acd.queue_order("q"),
        Some(vec![CallKey(4), CallKey(3), CallKey(1), CallKey(2)])
    );
    let enter: Vec<String> = sim
        .lines_with("ENTERQUEUE")
        .iter()
        .map(|l| l.rsplit('|').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(enter, ["1", "1", "2", "1", "1"], "origposition");
    assert_eq!(sim.acd.caller(CallKey(1)).and_then(|c| c.position), Some(3));
    sim.run_until(s(5));
    let out = sim.caller_hangs_up(CallKey(100));
    assert_eq!(offers(&out), vec![offer(CallKey(4), "a")], "the VIP first");
}

#[test]
fn an_agent_in_two_queues_takes_the_best_caller_of_both() {
    let mut sim = Sim::new(
        vec![
            no_wrap("sales", Strategy::LongestIdle),
            no_wrap("repair", Strategy::LongestIdle),
        ],
        agents(&["a"], &["sales", "repair"]),
    );
    sim.ready(&["a"]);
    sim.connect(CallKey(100), "sales");
    sim.join(CallKey(1), "repair", 1);
    sim.run_until(s(1));
    sim.join(CallKey(2), "sales", 1);
    let out = sim.caller_hangs_up(CallKey(100));
    assert_eq!(offers(&out), vec![offer(CallKey(1), "a")], "waited longest");
    sim.answer(CallKey(1), "a");
    sim.run_until(s(2));
    sim.join(CallKey(3), "repair", 2);
    let out = sim.caller_hangs_up(CallKey(1));
    assert_eq!(
        offers(&out),
        vec![offer(CallKey(3), "a")],
        "higher priority"
    );
}

// ----- ringing -----

#[test]
fn ring_timeout_moves_to_the_next_agent() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a", "b"], &["q"]));
    sim.ready(&["a", "b"]);
    assert_eq!(
        offers(&sim.join(CallKey(1), "q", 1)),
        vec![offer(CallKey(1), "a")]
    );
    assert_eq!(sim.acd.poll_timeout(), Some(sim.t0 + s(15)));
    assert!(offers(&sim.run_until(ms(14_999))).is_empty());
    let out = sim.run_until(s(15));
    assert_eq!(cancels(&out), vec![offer(CallKey(1), "a")]);
    assert!(
        out.contains(&AcdAction::CancelOffer {
            caller: CallKey(1),
            agent: "a".into(),
            reason: CancelReason::RingTimeout
        }),
        "the cancel says why, as RINGNOANSWER does: {out:?}"
    );
    assert_eq!(
        offers(&out),
        vec![offer(CallKey(1), "b")],
        "not a again: b is idle"
    );
    assert_eq!(sim.state("a"), AgentState::Idle);
    assert_eq!(sim.acd.agent("a").expect("a").consecutive_no_answers, 1);
    assert_eq!(
        sim.lines_with("RINGNOANSWER"),
        [format!("{}|call-1|q|a|RINGNOANSWER|15000", EPOCH + 15)]
    );
    // Both have failed now: back to the best of them.
    let out = sim.run_until(s(30));
    assert_eq!(cancels(&out), vec![offer(CallKey(1), "b")]);
    assert_eq!(offers(&out), vec![offer(CallKey(1), "a")]);
}

#[test]
fn rejected_offers_go_to_the_next_agent_without_a_cancel() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a", "b"], &["q"]));
    sim.ready(&["a", "b"]);
    sim.join(CallKey(1), "q", 1);
    sim.run_until(s(2));
    let out = sim.handle(AcdInput::OfferRejected {
        caller: CallKey(1),
        agent: "a".into(),
        reason: RejectReason::Busy,
    });
    assert!(cancels(&out).is_empty(), "the phone already refused");
    assert_eq!(offers(&out), vec![offer(CallKey(1), "b")]);
    assert_eq!(
        sim.lines_with("RINGNOANSWER"),
        [format!("{}|call-1|q|a|RINGNOANSWER|2000", EPOCH + 2)]
    );
}

#[test]
fn auto_break_after_three_offers_in_a_row_without_answer() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.join(CallKey(1), "q", 1);
    let out = sim.run_until(s(30));
    assert_eq!(
        offers(&out),
        vec![offer(CallKey(1), "a"), offer(CallKey(1), "a")],
        "only a"
    );
    assert_eq!(sim.status("a"), AgentStatus::Available);
    let out = sim.run_until(s(45));
    assert!(offers(&out).is_empty());
    assert_eq!(
        sim.status("a"),
        AgentStatus::OnBreak {
            reason: NO_ANSWER_BREAK.into()
        }
    );
    assert_eq!(sim.state("a"), AgentState::Idle);
    assert_eq!(
        sim.lines_with("PAUSE"),
        [format!("{}|NONE|q|a|PAUSE|no answer", EPOCH + 45)]
    );
    assert_eq!(
        sim.acd.caller(CallKey(1)).expect("waiting").phase,
        CallerPhase::Waiting
    );
    sim.run_until(s(50));
    let out = sim.handle(AcdInput::AgentAvailable { agent: "a".into() });
    assert_eq!(offers(&out), vec![offer(CallKey(1), "a")]);
    assert_eq!(sim.acd.agent("a").expect("a").consecutive_no_answers, 0);
    assert_eq!(sim.lines_with("UNPAUSE").len(), 1);
}

#[test]
fn an_answer_resets_the_no_answer_count() {
    let mut sim = Sim::new(
        vec![no_wrap("q", Strategy::LongestIdle)],
        agents(&["a"], &["q"]),
    );
    sim.ready(&["a"]);
    sim.join(CallKey(1), "q", 1);
    sim.run_until(s(30));
    assert_eq!(sim.acd.agent("a").expect("a").consecutive_no_answers, 2);
    sim.answer(CallKey(1), "a");
    assert_eq!(sim.acd.agent("a").expect("a").consecutive_no_answers, 0);
    assert_eq!(sim.acd.agent("a").expect("a").calls_answered, 1);
}

// ----- wrap-up, logout, reachability -----

#[test]
fn wrap_up_holds_the_agent_for_exactly_wrap_up() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.connect(CallKey(1), "q");
    sim.run_until(s(50));
    let out = sim.agent_hangs_up(CallKey(1), "a");
    assert_eq!(
        leaves(&out),
        vec![(
            CallKey(1),
            LeaveReason::Completed {
                agent: "a".into(),
                ended_by: EndedBy::Agent
            }
        )]
    );
    assert_eq!(
        sim.state("a"),
        AgentState::WrapUp {
            until: sim.t0 + s(80)
        }
    );
    sim.run_until(s(60));
    assert!(offers(&sim.join(CallKey(2), "q", 1)).is_empty());
    assert!(offers(&sim.run_until(ms(79_999))).is_empty());
    let out = sim.run_until(s(80));
    assert_eq!(offers(&out), vec![offer(CallKey(2), "a")]);
    let offered_at = sim
        .log
        .iter()
        .find(|(_, a)| {
            matches!(
                a,
                AcdAction::Offer {
                    caller: CallKey(2),
                    ..
                }
            )
        })
        .map(|(t, _)| *t);
    assert_eq!(offered_at, Some(sim.t0 + s(80)));
    assert_eq!(
        sim.lines_with("COMPLETEAGENT"),
        [format!("{}|call-1|q|a|COMPLETEAGENT|0|50|1", EPOCH + 50)]
    );
}

#[test]
fn logout_while_offered_cancels_and_the_caller_waits_on() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a", "b"], &["q"]));
    sim.ready(&["a"]);
    // b is logged in, its phone not registered yet: the queue is not empty.
    sim.handle(AcdInput::AgentLogin { agent: "b".into() });
    sim.join(CallKey(1), "q", 1);
    sim.run_until(s(3));
    let out = sim.handle(AcdInput::AgentLogout { agent: "a".into() });
    assert_eq!(cancels(&out), vec![offer(CallKey(1), "a")]);
    assert!(leaves(&out).is_empty(), "the caller is still queued");
    let out = sim.handle(AcdInput::AgentReachable {
        agent: "b".into(),
        reachable: true,
    });
    assert_eq!(offers(&out), vec![offer(CallKey(1), "b")]);
    assert_eq!(sim.status("a"), AgentStatus::LoggedOut);
    assert_eq!(sim.state("a"), AgentState::Idle);
}

#[test]
fn logout_during_a_call_ends_with_no_wrap_up_and_no_offers() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a", "b"], &["q"]));
    sim.ready(&["a", "b"]);
    sim.connect(CallKey(1), "q");
    sim.run_until(s(10));
    let out = sim.handle(AcdInput::AgentLogout { agent: "a".into() });
    assert!(calls(&out).is_empty(), "the call goes on");
    assert_eq!(sim.state("a"), AgentState::OnCall { caller: CallKey(1) });
    sim.run_until(s(20));
    sim.caller_hangs_up(CallKey(1));
    assert_eq!(sim.state("a"), AgentState::Idle);
    assert_eq!(sim.status("a"), AgentStatus::LoggedOut);
    assert_eq!(
        offers(&sim.join(CallKey(2), "q", 1)),
        vec![offer(CallKey(2), "b")]
    );
    // Handle time has no wrap-up for that call: 20 s of talk.
    let stats = sim.acd.queue_stats(sim.now, "q").expect("q");
    assert_eq!(stats.average_handle_time, s(20));
}

#[test]
fn unreachable_agents_are_never_offered() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.handle(AcdInput::AgentLogin { agent: "a".into() });
    assert!(offers(&sim.join(CallKey(1), "q", 1)).is_empty());
    let out = sim.handle(AcdInput::AgentReachable {
        agent: "a".into(),
        reachable: true,
    });
    assert_eq!(offers(&out), vec![offer(CallKey(1), "a")]);
    sim.run_until(s(4));
    let out = sim.handle(AcdInput::AgentReachable {
        agent: "a".into(),
        reachable: false,
    });
    assert_eq!(cancels(&out), vec![offer(CallKey(1), "a")]);
    assert_eq!(sim.state("a"), AgentState::Idle);
    assert!(offers(&sim.run_until(s(100))).is_empty());
    assert!(
        sim.answer(CallKey(1), "a").is_empty(),
        "a stale answer is ignored"
    );
    assert_eq!(
        sim.acd.caller(CallKey(1)).expect("c").phase,
        CallerPhase::Waiting
    );
}

#[test]
fn break_while_offered_cancels_the_offer() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.join(CallKey(1), "q", 1);
    let out = sim.handle(AcdInput::AgentBreak {
        agent: "a".into(),
        reason: "meeting".into(),
    });
    assert_eq!(cancels(&out), vec![offer(CallKey(1), "a")]);
    assert!(out.iter().any(|a| matches!(
        a,
        AcdAction::CancelOffer {
            reason: CancelReason::AgentAway,
            ..
        }
    )));
    assert_eq!(
        sim.status("a"),
        AgentStatus::OnBreak {
            reason: "meeting".into()
        }
    );
    assert_eq!(
        sim.acd.agent_counts(),
        AgentCounts {
            on_break: 1,
            idle: 1,
            ..AgentCounts::default()
        }
    );
}

// ----- caller timers -----

#[test]
fn apology_at_exactly_fifteen_seconds_once() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.handle(AcdInput::AgentLogin { agent: "a".into() });
    sim.join(CallKey(1), "q", 1);
    assert_eq!(sim.acd.poll_timeout(), Some(sim.t0 + s(15)));
    assert!(calls(&sim.run_until(ms(14_999))).is_empty());
    assert_eq!(
        calls(&sim.run_until(s(15))),
        vec![AcdAction::Apologise { caller: CallKey(1) }]
    );
    let later = sim.run_until(s(200));
    assert!(!later
        .iter()
        .any(|a| matches!(a, AcdAction::Apologise { .. })));
}

#[test]
fn announcements_every_period_with_position_and_expected_wait() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.connect(CallKey(100), "q");
    sim.join(CallKey(1), "q", 1);
    sim.run_until(s(10));
    sim.join(CallKey(2), "q", 1);
    let announce = |out: &[AcdAction]| -> Vec<(CallKey, usize, Option<Duration>)> {
        out.iter()
            .filter_map(|a| match a {
                AcdAction::Announce {
                    caller,
                    position,
                    expected_wait,
                } => Some((*caller, *position, *expected_wait)),
                _ => None,
            })
            .collect()
    };
    assert!(announce(&sim.run_until(ms(29_999))).is_empty());
    assert_eq!(
        announce(&sim.run_until(s(30))),
        [(CallKey(1), 1, Some(s(180)))],
        "180 s per call before any data, one agent"
    );
    assert_eq!(
        announce(&sim.run_until(s(40))),
        [(CallKey(2), 2, Some(s(360)))]
    );
    assert_eq!(
        announce(&sim.run_until(s(60))),
        [(CallKey(1), 1, Some(s(180)))]
    );
    sim.run_until(s(61));
    sim.caller_hangs_up(CallKey(100)); // 61 s talk + 30 s wrap-up
    assert_eq!(
        announce(&sim.run_until(s(70))),
        [(CallKey(2), 2, Some(s(182)))],
        "2 x 91 s"
    );
    // Agent gone: no estimate.
    sim.handle(AcdInput::AgentBreak {
        agent: "a".into(),
        reason: "x".into(),
    });
    assert_eq!(announce(&sim.run_until(s(90))), [(CallKey(1), 1, None)]);
}

#[test]
fn max_wait_overflows_or_times_out() {
    let mut overflow = queue("sales");
    overflow.max_wait = Some(s(60));
    overflow.overflow = Some("message".into());
    overflow.join_empty = true;
    let mut plain = queue("repair");
    plain.max_wait = Some(s(60));
    plain.join_empty = true;
    let mut sim = Sim::new(vec![overflow, plain], vec![]);
    sim.join(CallKey(1), "sales", 1);
    sim.join(CallKey(2), "repair", 1);
    let out = sim.run_until(s(60));
    assert_eq!(
        leaves(&out),
        vec![
            (
                CallKey(1),
                LeaveReason::Overflow {
                    target: "message".into()
                }
            ),
            (CallKey(2), LeaveReason::Timeout)
        ]
    );
    assert_eq!(
        sim.lines_with("EXITWITHTIMEOUT"),
        [
            format!("{}|call-1|sales|NONE|EXITWITHTIMEOUT|1|1|60", EPOCH + 60),
            format!("{}|call-2|repair|NONE|EXITWITHTIMEOUT|1|1|60", EPOCH + 60),
        ]
    );
    assert_eq!(sim.acd.caller_count(), 0);
    assert_eq!(sim.acd.poll_timeout(), None, "no timer left behind");
    let stats = sim.acd.queue_stats(sim.now, "sales").expect("sales");
    assert_eq!(
        (stats.counters.overflowed, stats.counters.timed_out),
        (1, 0)
    );
}

#[test]
fn max_wait_while_ringing_cancels_the_offer() {
    let mut q = queue("q");
    q.max_wait = Some(s(60));
    q.ring_timeout = s(100);
    let mut sim = Sim::new(vec![q], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.join(CallKey(1), "q", 1);
    let out = sim.run_until(s(60));
    assert_eq!(cancels(&out), vec![offer(CallKey(1), "a")]);
    assert_eq!(leaves(&out), vec![(CallKey(1), LeaveReason::Timeout)]);
    assert_eq!(
        sim.lines_with("RINGCANCELED"),
        [format!("{}|call-1|q|a|RINGCANCELED|60000", EPOCH + 60)]
    );
    assert_eq!(sim.state("a"), AgentState::Idle);
}

#[test]
fn full_queue_overflows_or_refuses() {
    let mut with = queue("sales");
    with.max_len = Some(1);
    with.overflow = Some("repair".into());
    with.join_empty = true;
    let mut without = queue("repair");
    without.max_len = Some(1);
    without.join_empty = true;
    let mut sim = Sim::new(vec![with, without], vec![]);
    sim.join(CallKey(1), "sales", 1);
    sim.join(CallKey(2), "repair", 1);
    assert_eq!(
        calls(&sim.join(CallKey(3), "sales", 1)),
        vec![AcdAction::Leave {
            caller: CallKey(3),
            reason: LeaveReason::Overflow {
                target: "repair".into()
            }
        }]
    );
    assert_eq!(
        calls(&sim.join(CallKey(4), "repair", 1)),
        vec![AcdAction::JoinRefused {
            caller: CallKey(4),
            reason: RefuseReason::Full
        }]
    );
    assert_eq!(sim.lines_with("FULL").len(), 2);
    assert_eq!(sim.lines_with("ENTERQUEUE").len(), 2);
}

// ----- empty queues, exit key, abandon -----

#[test]
fn join_empty_refuses_when_nobody_is_logged_in() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    assert_eq!(
        calls(&sim.join(CallKey(1), "q", 1)),
        vec![AcdAction::JoinRefused {
            caller: CallKey(1),
            reason: RefuseReason::NoAgents
        }]
    );
    assert_eq!(sim.lines(), [format!("{EPOCH}|call-1|q|NONE|JOINEMPTY|")]);
    // Logged in counts, even before the phone registers.
    sim.handle(AcdInput::AgentLogin { agent: "a".into() });
    assert!(calls(&sim.join(CallKey(2), "q", 1)).is_empty());
    assert_eq!(sim.acd.queue_order("q"), Some(vec![CallKey(2)]));

    let mut joins = queue("q");
    joins.join_empty = true;
    let mut sim = Sim::new(vec![joins], agents(&["a"], &["q"]));
    assert!(calls(&sim.join(CallKey(1), "q", 1)).is_empty());
    let out = sim.run_until(s(1));
    assert!(leaves(&out).is_empty());
    let out = sim.handle(AcdInput::AgentAvailable { agent: "a".into() });
    assert!(offers(&out).is_empty(), "not reachable yet");
    let out = sim.handle(AcdInput::AgentReachable {
        agent: "a".into(),
        reachable: true,
    });
    assert_eq!(offers(&out), vec![offer(CallKey(1), "a")]);
}

#[test]
fn leave_empty_sends_callers_away_when_the_last_agent_logs_out() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a", "b"], &["q"]));
    sim.handle(AcdInput::AgentLogin { agent: "a".into() });
    sim.handle(AcdInput::AgentBreak {
        agent: "b".into(),
        reason: "training".into(),
    });
    sim.join(CallKey(1), "q", 1);
    sim.run_until(s(5));
    sim.join(CallKey(2), "q", 1);
    sim.run_until(s(9));
    assert!(leaves(&sim.handle(AcdInput::AgentLogout { agent: "a".into() })).is_empty());
    let out = sim.handle(AcdInput::AgentLogout { agent: "b".into() });
    assert_eq!(
        leaves(&out),
        vec![
            (CallKey(2), LeaveReason::EmptyQueue),
            (CallKey(1), LeaveReason::EmptyQueue)
        ]
    );
    assert_eq!(
        sim.lines_with("EXITEMPTY"),
        [
            format!("{}|call-2|q|NONE|EXITEMPTY|2|2|4", EPOCH + 9),
            format!("{}|call-1|q|NONE|EXITEMPTY|1|1|9", EPOCH + 9),
        ]
    );

    let mut stays = queue("q");
    stays.leave_empty = false;
    let mut sim = Sim::new(vec![stays], agents(&["a"], &["q"]));
    sim.handle(AcdInput::AgentLogin { agent: "a".into() });
    sim.join(CallKey(1), "q", 1);
    assert!(leaves(&sim.handle(AcdInput::AgentLogout { agent: "a".into() })).is_empty());
    assert_eq!(sim.acd.caller_count(), 1);
}

#[test]
fn exit_key_leaves_with_position_and_wait() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.connect(CallKey(100), "q");
    sim.join(CallKey(1), "q", 1);
    sim.join(CallKey(2), "q", 1);
    sim.run_until(s(20));
    let out = sim.handle(AcdInput::CallerPressedExit {
        caller: CallKey(2),
        key: '5',
    });
    assert_eq!(
        leaves(&out),
        vec![(CallKey(2), LeaveReason::ExitKey { key: '5' })]
    );
    assert_eq!(
        sim.lines_with("EXITWITHKEY"),
        [format!("{}|call-2|q|NONE|EXITWITHKEY|5|2|2|20", EPOCH + 20)]
    );
    // The exit key means nothing once connected.
    assert!(sim
        .handle(AcdInput::CallerPressedExit {
            caller: CallKey(100),
            key: '5'
        })
        .is_empty());
}

#[test]
fn abandon_logs_position_and_wait() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.connect(CallKey(100), "q");
    for c in 1..=3 {
        sim.join(CallKey(c), "q", 1);
    }
    sim.run_until(s(31));
    let out = sim.caller_hangs_up(CallKey(2));
    assert_eq!(leaves(&out), vec![(CallKey(2), LeaveReason::Abandoned)]);
    assert_eq!(
        sim.lines_with("ABANDON"),
        [format!("{}|call-2|q|NONE|ABANDON|2|2|31", EPOCH + 31)]
    );
    assert_eq!(sim.acd.queue_order("q"), Some(vec![CallKey(1), CallKey(3)]));
    assert_eq!(sim.acd.caller(CallKey(3)).and_then(|c| c.position), Some(2));
    assert!(
        sim.caller_hangs_up(CallKey(2)).is_empty(),
        "gone means gone"
    );
    let stats = sim.acd.queue_stats(sim.now, "q").expect("q");
    assert_eq!(stats.counters.abandoned, 1);
    assert_eq!(stats.longest_wait, Some(s(31)));
}

#[test]
fn abandon_while_ringing_cancels_the_offer() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    sim.join(CallKey(1), "q", 1);
    sim.run_until(s(5));
    let out = sim.caller_hangs_up(CallKey(1));
    assert_eq!(
        calls(&out),
        vec![
            AcdAction::CancelOffer {
                caller: CallKey(1),
                agent: "a".into(),
                reason: CancelReason::CallerLeft
            },
            AcdAction::Leave {
                caller: CallKey(1),
                reason: LeaveReason::Abandoned
            }
        ]
    );
    assert_eq!(
        sim.lines()[sim.lines().len() - 2..],
        [
            format!("{}|call-1|q|a|RINGCANCELED|5000", EPOCH + 5),
            format!("{}|call-1|q|NONE|ABANDON|1|1|5", EPOCH + 5),
        ]
    );
    assert_eq!(sim.state("a"), AgentState::Idle);
    assert_eq!(sim.acd.poll_timeout(), None);
}

// ----- the queue_log of a whole call -----

#[test]
fn queue_log_lines_of_a_call_are_exact() {
    let mut sim = Sim::new(
        vec![queue("repair")],
        agents(&["1001", "1002"], &["repair"]),
    );
    sim.ready(&["1001", "1002"]);
    sim.handle(AcdInput::CallerJoined {
        caller: CallKey(7),
        queue: "repair".into(),
        priority: 1,
        caller_id: "13800138000".into(),
        preferred: None,
    });
    sim.run_until(s(17));
    sim.answer(CallKey(7), "1002");
    sim.run_until(s(100));
    sim.caller_hangs_up(CallKey(7));
    sim.run_until(s(130));
    sim.handle(AcdInput::AgentBreak {
        agent: "1001".into(),
        reason: "lunch".into(),
    });
    sim.handle(AcdInput::AgentAvailable {
        agent: "1001".into(),
    });
    sim.handle(AcdInput::AgentLogout {
        agent: "1002".into(),
    });
    let e = |t: u64| EPOCH + t;
    assert_eq!(
        sim.lines(),
        [
            format!("{}|NONE|repair|1001|ADDMEMBER|", e(0)),
            format!("{}|NONE|repair|1002|ADDMEMBER|", e(0)),
            format!("{}|call-7|repair|NONE|ENTERQUEUE||13800138000|1", e(0)),
            format!("{}|call-7|repair|1001|RINGNOANSWER|15000", e(15)),
            format!("{}|call-7|repair|1002|CONNECT|17|1002|2", e(17)),
            format!("{}|call-7|repair|1002|COMPLETECALLER|17|83|1", e(100)),
            format!("{}|NONE|repair|1001|PAUSE|lunch", e(130)),
            format!("{}|NONE|repair|1001|UNPAUSE|", e(130)),
            format!("{}|NONE|repair|1002|REMOVEMEMBER|", e(130)),
        ]
    );
    let stats = sim.acd.queue_stats(sim.now, "repair").expect("stats");
    assert_eq!(stats.average_handle_time, s(83 + 30));
    assert_eq!(
        (
            stats.counters.entered,
            stats.counters.answered,
            stats.counters.completed
        ),
        (1, 1, 1)
    );
}

#[test]
fn the_action_stream_of_an_answered_call() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    let out = sim.join(CallKey(1), "q", 1);
    assert!(matches!(
        out.as_slice(),
        [
            AcdAction::QueueLog(QueueLogEvent {
                kind: QueueLogKind::EnterQueue { .. },
                ..
            }),
            AcdAction::Offer {
                caller: CallKey(1),
                ..
            },
            AcdAction::AgentState {
                state: AgentState::Offered { caller: CallKey(1) },
                ..
            },
        ]
    ));
    let out = sim.answer(CallKey(1), "a");
    assert!(matches!(
        out.as_slice(),
        [
            AcdAction::Bridge {
                caller: CallKey(1),
                ..
            },
            AcdAction::AgentState {
                state: AgentState::OnCall { caller: CallKey(1) },
                ..
            },
            AcdAction::QueueLog(QueueLogEvent {
                kind: QueueLogKind::Connect { .. },
                ..
            }),
        ]
    ));
    assert_eq!(
        sim.acd.caller(CallKey(1)).map(|c| c.phase),
        Some(CallerPhase::Bridged {
            agent: "a",
            since: sim.t0
        })
    );
    assert_eq!(
        sim.acd.poll_timeout(),
        None,
        "a connected caller has no timers"
    );
}

// ----- robustness and configuration -----

#[test]
fn stale_and_unknown_inputs_change_nothing() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a"], &["q"]));
    sim.ready(&["a"]);
    assert_eq!(
        calls(&sim.join(CallKey(1), "nope", 1)),
        vec![AcdAction::JoinRefused {
            caller: CallKey(1),
            reason: RefuseReason::UnknownQueue
        }]
    );
    sim.join(CallKey(2), "q", 1);
    assert_eq!(
        calls(&sim.join(CallKey(2), "q", 1)),
        vec![AcdAction::JoinRefused {
            caller: CallKey(2),
            reason: RefuseReason::DuplicateCaller
        }]
    );
    for input in [
        AcdInput::OfferAnswered {
            caller: CallKey(9),
            agent: "a".into(),
        },
        AcdInput::OfferAnswered {
            caller: CallKey(2),
            agent: "zz".into(),
        },
        AcdInput::AgentHungUp {
            caller: CallKey(2),
            agent: "a".into(),
        },
        AcdInput::OfferRejected {
            caller: CallKey(3),
            agent: "a".into(),
            reason: RejectReason::Failed,
        },
        AcdInput::CallerHungUp {
            caller: CallKey(42),
        },
        AcdInput::AgentLogin { agent: "a".into() },
        AcdInput::AgentLogin {
            agent: "ghost".into(),
        },
        AcdInput::AgentAvailable { agent: "a".into() },
        AcdInput::AgentReachable {
            agent: "a".into(),
            reachable: true,
        },
    ] {
        assert!(sim.handle(input.clone()).is_empty(), "{input:?}");
    }
    assert_eq!(sim.state("a"), AgentState::Offered { caller: CallKey(2) });
}

#[test]
fn configuration_errors_name_the_culprit() {
    let err = |queues: Vec<QueueConfig>, agents: Vec<AgentConfig>| {
        Acd::new(queues, agents).expect_err("invalid").to_string()
    };
    assert_eq!(
        err(vec![queue("q"), queue("q")], vec![]),
        "queue \"q\" is defined twice"
    );
    assert_eq!(
        err(vec![queue("q")], agents(&["a"], &["x"])),
        "agent \"a\": serves unknown queue \"x\""
    );
    assert_eq!(
        err(vec![queue("q")], agents(&["a", "a"], &["q"])),
        "agent \"a\" is defined twice"
    );
    assert_eq!(
        err(
            vec![queue("q")],
            vec![AgentConfig::new("a", &["q"]).with_skill("gas", 11)]
        ),
        "agent \"a\": skill \"gas\" has level 11, expected 1..=10"
    );
    let mut zero = queue("q");
    zero.ring_timeout = Duration::ZERO;
    assert_eq!(
        err(vec![zero], vec![]),
        "queue \"q\": ring_timeout must be more than zero"
    );
    let skills = queue("q").with_strategy(Strategy::Skills {
        skill: "gas".into(),
        min_level: 0,
    });
    assert!(err(vec![skills], vec![]).contains("min_level"));
}

#[test]
fn views_report_queue_and_agent_figures() {
    let mut sim = Sim::new(vec![queue("q")], agents(&["a", "b", "c"], &["q"]));
    sim.ready(&["a", "b"]);
    sim.handle(AcdInput::AgentLogin { agent: "c".into() });
    sim.connect(CallKey(1), "q");
    sim.join(CallKey(2), "q", 1);
    sim.join(CallKey(3), "q", 1);
    sim.run_until(s(7));
    let stats = sim.acd.queue_stats(sim.now, "q").expect("q");
    assert_eq!(stats.name, "q");
    assert_eq!((stats.waiting, stats.ringing, stats.idle), (2, 1, 0));
    assert_eq!((stats.logged_in, stats.available, stats.agents), (3, 2, 3));
    assert_eq!(stats.longest_wait, Some(s(7)));
    let counts = sim.acd.agent_counts();
    assert_eq!(
        (
            counts.available,
            counts.unreachable,
            counts.on_call,
            counts.offered,
            counts.idle
        ),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(sim.acd.queue_names().collect::<Vec<_>>(), ["q"]);
    assert_eq!(sim.acd.agents().count(), 3);
    assert!(sim.acd.queue_stats(sim.now, "nope").is_none());
    let c2 = sim.acd.caller(CallKey(2)).expect("2");
    assert_eq!(c2.phase, CallerPhase::Ringing { agents: vec!["b"] });
    assert_eq!((c2.position, c2.orig_position, c2.queue), (Some(1), 1, "q"));
}

// ----- several nodes sharing the store -----

#[test]
fn a_caller_waiting_on_another_node_is_served_first() {
    let mut sim = Sim::new(vec![queue("repair")], agents(&["1001"], &["repair"]));
    // The other node's caller arrived 2 s before ours.
    sim.run_until(s(2));
    sim.handle(AcdInput::RemoteWaiting {
        entry: 41,
        queue: "repair".into(),
        priority: 1,
        arrival: sim.t0,
    });
    sim.handle(AcdInput::AgentLogin {
        agent: "1001".into(),
    });
    sim.join(CallKey(1), "repair", 1);
    let offered = offers(&sim.handle(AcdInput::AgentReachable {
        agent: "1001".into(),
        reachable: true,
    }));
    assert!(
        offered.is_empty(),
        "the earlier caller elsewhere goes first: {offered:?}"
    );
    let view = sim.acd.caller(CallKey(1)).expect("waiting");
    assert_eq!(view.position, Some(2), "counted behind the remote caller");
    // The other node took the agent for its caller, then the call ended
    // and the agent is free again: now ours is offered.
    sim.handle(AcdInput::AgentClaimedElsewhere {
        agent: "1001".into(),
        claimed: true,
    });
    assert!(offers(&sim.handle(AcdInput::RemoteGone { entry: 41 })).is_empty());
    let offered = offers(&sim.handle(AcdInput::AgentClaimedElsewhere {
        agent: "1001".into(),
        claimed: false,
    }));
    assert_eq!(offered, vec![(CallKey(1), "1001".to_string())]);
    // A remote caller arriving later does not block ours.
    let mut sim = Sim::new(vec![queue("repair")], agents(&["1001"], &["repair"]));
    sim.handle(AcdInput::AgentLogin {
        agent: "1001".into(),
    });
    sim.join(CallKey(1), "repair", 1);
    sim.run_until(s(1));
    sim.handle(AcdInput::RemoteWaiting {
        entry: 42,
        queue: "repair".into(),
        priority: 1,
        arrival: sim.now,
    });
    let offered = offers(&sim.handle(AcdInput::AgentReachable {
        agent: "1001".into(),
        reachable: true,
    }));
    assert_eq!(offered, vec![(CallKey(1), "1001".to_string())]);
}

#[test]
fn an_offer_the_store_refused_returns_the_caller_unharmed() {
    let mut sim = Sim::new(
        vec![queue("repair")],
        agents(&["1001", "1002"], &["repair"]),
    );
    sim.ready(&["1001"]);
    let offered = offers(&sim.join(CallKey(1), "repair", 1));
    assert_eq!(offered, vec![(CallKey(1), "1001".to_string())]);
    let out = sim.handle(AcdInput::OfferTaken {
        caller: CallKey(1),
        agent: "1001".into(),
    });
    assert!(
        !out.iter().any(|a| matches!(
            a,
            AcdAction::QueueLog(QueueLogEvent {
                kind: QueueLogKind::RingNoAnswer { .. },
                ..
            })
        )),
        "nothing rang, so no RINGNOANSWER: {out:?}"
    );
    assert!(offers(&out).is_empty(), "1001 is held elsewhere");
    assert_eq!(sim.state("1001"), AgentState::Idle);
    assert_eq!(
        sim.acd.caller(CallKey(1)).expect("still waiting").position,
        Some(1)
    );
    // Another agent here takes the caller at once.
    let offered = offers(&sim.handle(AcdInput::AgentLogin {
        agent: "1002".into(),
    }));
    assert!(offered.is_empty());
    let offered = offers(&sim.handle(AcdInput::AgentReachable {
        agent: "1002".into(),
        reachable: true,
    }));
    assert_eq!(offered, vec![(CallKey(1), "1002".to_string())]);
    // 1001's claim elsewhere ends: offered the next caller, no no-answer
    // counted against it (no auto-break).
    sim.handle(AcdInput::AgentClaimedElsewhere {
        agent: "1001".into(),
        claimed: false,
    });
    let offered = offers(&sim.join(CallKey(2), "repair", 1));
    assert_eq!(offered, vec![(CallKey(2), "1001".to_string())]);
}

#[test]
fn shared_queues_say_when_a_caller_waits_unoffered() {
    fn shared(actions: &[AcdAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                AcdAction::Waiting {
                    caller,
                    queue,
                    priority,
                    ..
                } => Some(format!("waiting {} {queue} {priority}", caller.0)),
                AcdAction::NotWaiting { caller } => Some(format!("not {}", caller.0)),
                _ => None,
            })
            .collect()
    }
    let mut sim = Sim::new(vec![queue("repair")], agents(&["1001"], &["repair"]));
    sim.acd.share_waiting();
    sim.handle(AcdInput::AgentLogin {
        agent: "1001".into(),
    });
    assert_eq!(
        shared(&sim.join(CallKey(1), "repair", 2)),
        ["waiting 1 repair 2"]
    );
    // Offered: no longer waiting unoffered, as seen by other nodes.
    let out = sim.handle(AcdInput::AgentReachable {
        agent: "1001".into(),
        reachable: true,
    });
    assert_eq!(shared(&out), ["not 1"]);
    // Refused by the phone: waiting again, in the same place.
    let out = sim.handle(AcdInput::OfferRejected {
        caller: CallKey(1),
        agent: "1001".into(),
        reason: RejectReason::Busy,
    });
    assert_eq!(shared(&out), ["waiting 1 repair 2"]);
    // A caller who hangs up while waiting is gone.
    let out = sim.caller_hangs_up(CallKey(1));
    assert_eq!(shared(&out), ["not 1"]);
    // Without sharing, nothing is said.
    let mut plain = Sim::new(vec![queue("repair")], agents(&["1001"], &["repair"]));
    plain.handle(AcdInput::AgentLogin {
        agent: "1001".into(),
    });
    assert!(shared(&plain.join(CallKey(1), "repair", 2)).is_empty());
}
