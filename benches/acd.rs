//! ACD assignment cost with 10,000 waiting callers and 1,000 agents, per
//! strategy: `cargo bench --bench acd`. Plain timing loops, no harness;
//! each event is timed on its own (input plus draining the actions) and
//! the mean and worst are printed. Target: well under 1 ms per event.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hotline::acd::{Acd, AcdAction, AcdInput, AgentConfig, AgentState, QueueConfig, Strategy};
use hotline::ids::CallKey;

const AGENTS: usize = 1_000;
const WAITING: usize = 10_000;
const EVENTS: usize = 1_000;

struct Bench {
    acd: Acd,
    now: Instant,
    next_caller: u64,
}

/// Mean and worst of a set of timings.
#[derive(Default)]
struct Timing {
    total: Duration,
    worst: Duration,
    count: u32,
}

impl Timing {
    fn add(&mut self, d: Duration) {
        self.total += d;
        self.worst = self.worst.max(d);
        self.count += 1;
    }

    fn print(&self, strategy: &str, event: &str) {
        let mean = self.total.as_nanos() as f64 / f64::from(self.count.max(1));
        println!(
            "{strategy:<13} {event:<44} {mean:>9.0} ns/op  worst {:>9.0} ns",
            self.worst.as_nanos() as f64
        );
    }
}

impl Bench {
    fn new(strategy: Strategy) -> Bench {
        let mut q = QueueConfig::new("q").with_strategy(strategy);
        q.wrap_up = Duration::ZERO;
        q.join_empty = true;
        q.auto_break_after = None;
        let agents = (0..AGENTS)
            .map(|i| AgentConfig::new(&agent(i), &["q"]).with_skill("s", (i % 10) as u8 + 1))
            .collect();
        let mut b = Bench {
            acd: Acd::new(vec![q], agents).expect("config"),
            now: Instant::now(),
            next_caller: 1,
        };
        // Callers first, then agents log in one by one and take a call
        // each: 1,000 on calls, 10,000 waiting.
        for _ in 0..WAITING + AGENTS {
            b.join();
        }
        for i in 0..AGENTS {
            b.input(AcdInput::AgentLogin { agent: agent(i) });
            let out = b.input(AcdInput::AgentReachable {
                agent: agent(i),
                reachable: true,
            });
            for (caller, a) in offers(&out) {
                b.input(AcdInput::OfferAnswered { caller, agent: a });
            }
        }
        b.check();
        b
    }

    fn input(&mut self, input: AcdInput) -> Vec<AcdAction> {
        self.now += Duration::from_millis(1);
        self.acd.handle(self.now, input);
        std::iter::from_fn(|| self.acd.poll_action()).collect()
    }

    fn join(&mut self) -> Vec<AcdAction> {
        let n = self.next_caller;
        self.next_caller += 1;
        self.input(AcdInput::CallerJoined {
            caller: CallKey(n),
            queue: "q".into(),
            priority: 1 + (n % 3) as u8,
            caller_id: "13800138000".into(),
            preferred: None,
        })
    }

    /// Times one input, actions drained included.
    fn timed(&mut self, timing: &mut Timing, input: AcdInput) -> Vec<AcdAction> {
        self.now += Duration::from_millis(1);
        let start = Instant::now();
        self.acd.handle(self.now, input);
        let out: Vec<AcdAction> = std::iter::from_fn(|| self.acd.poll_action()).collect();
        timing.add(start.elapsed());
        black_box(out)
    }

    fn top_up(&mut self) {
        while self.waiting() < WAITING {
            self.join();
        }
    }

    fn waiting(&self) -> usize {
        self.acd.queue_stats(self.now, "q").map_or(0, |s| s.waiting)
    }

    fn check(&self) {
        let counts = self.acd.agent_counts();
        assert_eq!(counts.on_call, AGENTS, "every agent busy");
        assert_eq!(self.waiting(), WAITING);
    }

    /// The caller an agent is talking to.
    fn call_of(&self, i: usize) -> CallKey {
        match self.acd.agent(&agent(i)).map(|v| v.state) {
            Some(AgentState::OnCall { caller }) => caller,
            other => panic!("agent {i} not on a call: {other:?}"),
        }
    }
}

fn agent(i: usize) -> String {
    format!("{}", 1000 + i)
}

fn offers(out: &[AcdAction]) -> Vec<(CallKey, String)> {
    out.iter()
        .filter_map(|a| match a {
            AcdAction::Offer { caller, agent } => Some((*caller, agent.clone())),
            _ => None,
        })
        .collect()
}

fn run(name: &str, strategy: Strategy) {
    let mut b = Bench::new(strategy);

    // A caller joins behind 10,000 others; no agent is free.
    let mut join = Timing::default();
    let mut joined = Vec::new();
    for _ in 0..EVENTS {
        let n = b.next_caller;
        b.next_caller += 1;
        let caller = CallKey(n);
        let out = b.timed(
            &mut join,
            AcdInput::CallerJoined {
                caller,
                queue: "q".into(),
                priority: 1 + (n % 3) as u8,
                caller_id: "13800138000".into(),
                preferred: None,
            },
        );
        assert!(offers(&out).is_empty());
        joined.push(caller);
    }
    join.print(name, "join (10k waiting, all agents busy)");

    // Waiting callers hang up, spread over the whole queue.
    let order = b.acd.queue_order("q").expect("q");
    let step = order.len() / EVENTS;
    let mut abandon = Timing::default();
    for k in 0..EVENTS {
        let caller = order[k * step];
        b.timed(&mut abandon, AcdInput::CallerHungUp { caller });
    }
    abandon.print(name, "hang-up while waiting (any position)");
    b.top_up();

    // A call ends; the agent (no wrap-up) takes the longest-waiting
    // caller at once; then that agent answers.
    let mut freed = Timing::default();
    let mut answer = Timing::default();
    for k in 0..EVENTS {
        let i = (k * 7) % AGENTS;
        let caller = b.call_of(i);
        let out = b.timed(
            &mut freed,
            AcdInput::AgentHungUp {
                caller,
                agent: agent(i),
            },
        );
        let offered = offers(&out);
        assert_eq!(offered.len(), 1, "the freed agent takes the next caller");
        let (next, a) = offered[0].clone();
        b.timed(
            &mut answer,
            AcdInput::OfferAnswered {
                caller: next,
                agent: a,
            },
        );
    }
    freed.print(name, "call ends, agent takes the longest waiter");
    answer.print(name, "offer answered (bridge)");
    b.top_up();

    // An agent back from a break takes the longest-waiting caller.
    let mut available = Timing::default();
    for k in 0..EVENTS {
        let i = (k * 13) % AGENTS;
        let caller = b.call_of(i);
        b.input(AcdInput::AgentBreak {
            agent: agent(i),
            reason: "tea".into(),
        });
        b.input(AcdInput::AgentHungUp {
            caller,
            agent: agent(i),
        });
        let out = b.timed(&mut available, AcdInput::AgentAvailable { agent: agent(i) });
        for (next, a) in offers(&out) {
            b.input(AcdInput::OfferAnswered {
                caller: next,
                agent: a,
            });
        }
    }
    available.print(name, "agent available, takes the longest waiter");
    b.top_up();

    // Timers as they fall due: mostly position announcements and
    // apologies for the 10,000 waiting callers.
    // The earlier phases moved the clock on without running timers: run
    // the overdue ones in one batch first, then wake at each deadline.
    let mut batch = Timing::default();
    let start = Instant::now();
    b.acd.handle_timeout(b.now);
    let overdue = std::iter::from_fn(|| b.acd.poll_action()).count();
    batch.add(start.elapsed());
    batch.print(
        name,
        &format!("overdue timers in one batch ({overdue} actions)"),
    );
    let mut timer = Timing::default();
    for _ in 0..EVENTS {
        let Some(at) = b.acd.poll_timeout() else {
            break;
        };
        b.now = at;
        let start = Instant::now();
        b.acd.handle_timeout(b.now);
        let out: Vec<AcdAction> = std::iter::from_fn(|| b.acd.poll_action()).collect();
        timer.add(start.elapsed());
        for (caller, a) in offers(black_box(&out)) {
            b.input(AcdInput::OfferAnswered { caller, agent: a });
        }
    }
    timer.print(name, "timer due (announcement with position)");
}

fn main() {
    println!(
        "{AGENTS} agents, {WAITING} waiting callers, {EVENTS} events of each kind per strategy\n"
    );
    run("longest-idle", Strategy::LongestIdle);
    run("round-robin", Strategy::RoundRobin);
    run("fewest-calls", Strategy::FewestCalls);
    run("ring-all", Strategy::RingAll);
    run(
        "skills",
        Strategy::Skills {
            skill: "s".into(),
            min_level: 1,
        },
    );
}
