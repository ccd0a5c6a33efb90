//! A simulated afternoon through the pure engine, then the report over the
//! records it wrote: 200 callers with seeded random arrivals over about
//! three hours, some giving up while ringing, some leaving in the IVR,
//! most queueing for one of three agents whose phones answer after random
//! delays (some past the 15 s ring timeout), callers who hang up when
//! their patience runs out, agents who sometimes hang up first. The
//! simulation keeps its own counts from what it saw on the wire; the
//! report's figures must equal them.

mod common;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use common::*;
use hotline::ids::CallKey;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::MediaEvent;
use hotline::report::{Accumulator, Interval, Settings, Source, Thresholds, UtcOffset};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CALLERS: usize = 200;
const AGENTS: [&str; 3] = ["1001", "1002", "1003"];
const T: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Hangs up (CANCEL) while it rings.
    Cancels,
    /// Hangs up in the IVR without asking for an agent.
    IvrOnly,
    /// Presses a queue key and waits for an agent.
    Queues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Arrive(usize),
    Cancel(usize),
    Press(usize),
    IvrHangUp(usize),
    GiveUp(usize),
    TalkOver(usize),
    AgentAnswers(usize),
    Reregister(usize, u32),
}

struct Caller {
    call_id: String,
    number: String,
    kind: Kind,
    arrived: Instant,
    key: Option<CallKey>,
    tag: String,
    answered: bool,
    queued: Option<Instant>,
    bridged: Option<Instant>,
    gave_up: bool,
    ended: bool,
    patience: Duration,
    talk: Duration,
    agent_hangs_up: bool,
    choice: char,
    /// The agent leg that was connected, by index into `offers`.
    leg: Option<usize>,
}

struct Offer {
    agent: String,
    invite: String,
    caller: Option<usize>,
    cancelled: bool,
    delay: Duration,
}

struct Day {
    sim: Sim,
    rng: StdRng,
    callers: Vec<Caller>,
    offers: Vec<Offer>,
    by_call_id: HashMap<String, usize>,
    by_number: HashMap<String, usize>,
    by_key: HashMap<CallKey, usize>,
    acts: BinaryHeap<Reverse<(Instant, u64, Act)>>,
    seq: u64,
    sent_seen: usize,
    bridged_seen: usize,
}

/// An INVITE from caller `number`.
fn caller_invite(call_id: &str, number: &str) -> String {
    invite(call_id, &format!("z9hG4bK-{call_id}"), Some(SDP_OFFER)).replace("13800138000", number)
}

fn caller_request(method: &str, c: &Caller, cseq: u32) -> String {
    let branch = format!("z9hG4bK-{}-{method}", c.call_id);
    in_dialog(method, &c.call_id, &branch, cseq, &c.tag, None).replace("13800138000", &c.number)
}

impl Day {
    fn at(&mut self, when: Instant, act: Act) {
        self.seq += 1;
        self.acts.push(Reverse((when, self.seq, act)));
    }

    /// Steps to the next of: the engine's or a media session's wake-up, or
    /// our next action, and looks at what the engine sent after each.
    fn run(&mut self, end: Instant) {
        loop {
            let act_at = self.acts.peek().map(|Reverse((t, _, _))| *t);
            let wake = self
                .sim
                .media
                .values()
                .filter_map(|m| m.poll_timeout())
                .chain(self.sim.engine.poll_timeout())
                .min();
            let next = match (act_at, wake) {
                (Some(a), Some(w)) => a.min(w),
                (Some(a), None) => a,
                (None, Some(w)) => w,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            if act_at == Some(next) {
                self.sim.run_until(next);
                self.scan();
                if let Some(Reverse((_, _, act))) = self.acts.pop() {
                    self.perform(act);
                    self.scan();
                }
            } else {
                self.sim.run_until(next);
                self.scan();
            }
        }
        self.sim.run_until(end);
        self.scan();
    }

    fn perform(&mut self, act: Act) {
        let now = self.sim.now;
        match act {
            Act::Arrive(i) => {
                let text = caller_invite(&self.callers[i].call_id, &self.callers[i].number);
                self.sim.send(&text);
                self.callers[i].arrived = now;
                if self.callers[i].kind == Kind::Cancels {
                    // The engine answers after 2 s: give up after 1.
                    self.at(now + Duration::from_millis(1000), Act::Cancel(i));
                }
            }
            Act::Cancel(i) => {
                let c = &self.callers[i];
                let text = cancel(&c.call_id, &format!("z9hG4bK-{}", c.call_id))
                    .replace("13800138000", &c.number);
                self.sim.send(&text);
                self.callers[i].ended = true;
            }
            Act::Press(i) => {
                let (Some(key), false) = (self.callers[i].key, self.callers[i].ended) else {
                    return;
                };
                let digit = self.callers[i].choice;
                self.sim.media_event(
                    key,
                    MediaEvent::Digit {
                        digit,
                        source: DigitSource::Rfc4733,
                    },
                );
                self.callers[i].queued = Some(now);
                let patience = self.callers[i].patience;
                self.at(now + patience, Act::GiveUp(i));
            }
            Act::IvrHangUp(i) | Act::GiveUp(i) => {
                let c = &self.callers[i];
                if c.ended || c.bridged.is_some() {
                    return;
                }
                let bye = caller_request("BYE", c, 2);
                self.callers[i].gave_up = matches!(act, Act::GiveUp(_));
                self.callers[i].ended = true;
                self.sim.send(&bye);
            }
            Act::TalkOver(i) => {
                if self.callers[i].ended {
                    return;
                }
                self.callers[i].ended = true;
                if self.callers[i].agent_hangs_up {
                    let leg = self.callers[i].leg.expect("a connected leg");
                    let offer = &self.offers[leg];
                    let inv = &offer.invite;
                    let port = phone(&offer.agent).addr.port();
                    let bye = format!(
                        "BYE sip:hotline@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-abye{leg}\r\nFrom: {};tag=agent{}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
                        header(inv, "To"),
                        offer.agent,
                        header(inv, "From"),
                        header(inv, "Call-ID"),
                    );
                    let p = phone(&offer.agent);
                    self.sim.send_bytes(p, bye.as_bytes());
                } else {
                    let bye = caller_request("BYE", &self.callers[i], 2);
                    self.sim.send(&bye);
                }
            }
            Act::AgentAnswers(o) => {
                if self.offers[o].cancelled {
                    return;
                }
                let (agent, inv) = (self.offers[o].agent.clone(), self.offers[o].invite.clone());
                answer(&mut self.sim, &agent, &inv, 200);
            }
            Act::Reregister(a, round) => {
                register_again(&mut self.sim, AGENTS[a], round);
                self.at(
                    now + Duration::from_secs(300),
                    Act::Reregister(a, round + 1),
                );
            }
        }
    }

    /// What the engine sent since the last look, and who was connected.
    fn scan(&mut self) {
        while self.sent_seen < self.sim.sent.len() {
            let s = &self.sim.sent[self.sent_seen];
            self.sent_seen += 1;
            let (text, peer, when) = (s.text.clone(), s.peer, s.at);
            let call_id = header(&text, "Call-ID").to_string();
            let agent = AGENTS.iter().find(|a| phone(a) == peer).copied();
            match agent {
                Some(agent) => self.sent_to_agent(agent, &text, &call_id, when),
                None => self.sent_to_caller(&text, &call_id),
            }
        }
        while self.bridged_seen < self.sim.bridged.len() {
            let (when, key) = self.sim.bridged[self.bridged_seen];
            self.bridged_seen += 1;
            let i = self.by_key[&key];
            assert!(self.callers[i].bridged.is_none(), "bridged twice");
            self.callers[i].bridged = Some(when);
            // The leg this caller was connected to: the last one answered
            // for them (the INVITE named the caller's number).
            let leg = self
                .offers
                .iter()
                .rposition(|o| o.caller == Some(i) && !o.cancelled);
            self.callers[i].leg = leg;
            let talk = self.callers[i].talk;
            self.at(when + talk, Act::TalkOver(i));
        }
    }

    fn sent_to_caller(&mut self, text: &str, call_id: &str) {
        let Some(&i) = self.by_call_id.get(call_id) else {
            return;
        };
        if text.starts_with("SIP/2.0 200") && text.contains("CSeq: 1 INVITE") {
            if self.callers[i].answered {
                return; // a retransmission
            }
            self.callers[i].answered = true;
            self.callers[i].tag = self.sim.to_tag_for(call_id);
            let ack = caller_request("ACK", &self.callers[i], 1);
            self.sim.send(&ack);
            let key = *self.sim.media_started.last().expect("media started");
            self.callers[i].key = Some(key);
            self.by_key.insert(key, i);
            let now = self.sim.now;
            match self.callers[i].kind {
                Kind::IvrOnly => self.at(now + Duration::from_secs(3), Act::IvrHangUp(i)),
                Kind::Queues => {
                    let press = Duration::from_millis(self.rng.random_range(300..3000));
                    self.at(now + press, Act::Press(i));
                }
                Kind::Cancels => {}
            }
        } else if text.starts_with("BYE ") {
            // The engine hangs up (the agent did, or the IVR ended the call).
            self.callers[i].ended = true;
            let peer = self.sim.peer();
            respond(&mut self.sim, peer, text, 200);
        }
    }

    fn sent_to_agent(&mut self, agent: &str, text: &str, call_id: &str, when: Instant) {
        if text.starts_with("INVITE ") {
            let number = header(text, "X-Hotline-Caller").to_string();
            let delay = Duration::from_millis(self.rng.random_range(1_000..20_000));
            self.offers.push(Offer {
                agent: agent.to_string(),
                invite: text.to_string(),
                caller: self.by_number.get(&number).copied(),
                cancelled: false,
                delay,
            });
            let o = self.offers.len() - 1;
            answer(&mut self.sim, agent, text, 180);
            self.at(when + self.offers[o].delay, Act::AgentAnswers(o));
        } else if text.starts_with("CANCEL ") {
            let Some(o) = self
                .offers
                .iter()
                .rposition(|o| header(&o.invite, "Call-ID") == call_id)
            else {
                return;
            };
            self.offers[o].cancelled = true;
            respond(&mut self.sim, phone(agent), text, 200);
            let inv = self.offers[o].invite.clone();
            answer(&mut self.sim, agent, &inv, 487);
        } else if text.starts_with("BYE ") {
            respond(&mut self.sim, phone(agent), text, 200);
        }
    }
}

#[test]
fn a_simulated_afternoon_reported_matches_what_happened() {
    let sim = Sim::new(config(|c| {
        // Callers here send no RTP; keep the calls up regardless.
        c.media.inactivity_timeout = Duration::from_secs(7200);
        let mut third = c.agents[0].clone();
        third.id = "1003".into();
        third.number = "011".into();
        third.name = "Agent 1003".into();
        // md5("1003:hotline:secret")
        third.ha1_md5 = Some("2ec9e1b3e273f802cf2f1e7ed5a24c81".into());
        third.ha1_sha256 = None;
        c.agents.push(third);
    }));
    let mut rng = StdRng::seed_from_u64(20261125);
    let t0 = sim.t0;
    let mut day = Day {
        sim,
        rng: StdRng::seed_from_u64(7),
        callers: Vec::new(),
        offers: Vec::new(),
        by_call_id: HashMap::new(),
        by_number: HashMap::new(),
        by_key: HashMap::new(),
        acts: BinaryHeap::new(),
        seq: 0,
        sent_seen: 0,
        bridged_seen: 0,
    };
    for agent in AGENTS {
        register(&mut day.sim, agent);
    }
    for a in 0..AGENTS.len() {
        day.at(t0 + Duration::from_secs(300), Act::Reregister(a, 1));
    }
    // Poisson arrivals, 54 s apart on average: 200 calls in about 3 h.
    let mut arrival = t0 + Duration::from_secs(10);
    for i in 0..CALLERS {
        let u: f64 = rng.random_range(1e-9..1.0);
        arrival += Duration::from_millis((-u.ln() * 54_000.0) as u64 + 1);
        let kind = match rng.random_range(0..100) {
            0..5 => Kind::Cancels,
            5..15 => Kind::IvrOnly,
            _ => Kind::Queues,
        };
        let c = Caller {
            call_id: format!("day-{i}"),
            number: format!("1390000{i:04}"),
            kind,
            arrived: arrival,
            key: None,
            tag: String::new(),
            answered: false,
            queued: None,
            bridged: None,
            gave_up: false,
            ended: false,
            patience: Duration::from_millis(rng.random_range(10_000..180_000)),
            talk: Duration::from_millis(rng.random_range(30_000..300_000)),
            agent_hangs_up: rng.random_range(0..10) == 0,
            choice: ['1', '2', '3'][rng.random_range(0..3)],
            leg: None,
        };
        day.by_call_id.insert(c.call_id.clone(), i);
        day.by_number.insert(c.number.clone(), i);
        day.callers.push(c);
        day.at(arrival, Act::Arrive(i));
    }
    // Everyone is done within 30 min of the last arrival (patience < 3
    // min, talk < 5 min, max_wait 5 min, wrap-up 30 s).
    let end = arrival + Duration::from_secs(1800);
    day.run(end);
    let sim = &day.sim;
    assert_eq!(sim.records.len(), CALLERS, "one record per caller");

    // The simulation's own counts, from what it did and saw.
    let callers = &day.callers;
    let count = |f: &dyn Fn(&Caller) -> bool| callers.iter().filter(|c| f(c)).count() as u64;
    let offered = CALLERS as u64;
    let engine_answered = count(&|c| c.answered);
    let asked = count(&|c| c.queued.is_some());
    let connected = count(&|c| c.bridged.is_some());
    let abandoned = count(&|c| c.gave_up);
    let sl_arrival = count(&|c| c.bridged.is_some_and(|b| b - c.arrived <= T));
    let sl_queue = count(&|c| c.bridged.zip(c.queued).is_some_and(|(b, q)| b - q <= T));
    let agent_first = count(&|c| c.bridged.is_some() && c.agent_hangs_up);
    let rang_too_long = day.offers.iter().filter(|o| o.delay > T).count();
    eprintln!(
        "offered {offered}, answered {engine_answered}, asked {asked}, connected {connected}, \
         abandoned {abandoned}, SL arrival {sl_arrival}, SL queue {sl_queue}, agent hung up \
         first {agent_first}, offers {} ({rang_too_long} rang past 15 s)",
        day.offers.len()
    );
    // The mix this seed must produce for the test to mean something.
    assert!(abandoned >= 5 && connected >= 50 && sl_arrival >= 5 && sl_queue > sl_arrival);
    assert!(asked > connected + abandoned / 2 && rang_too_long > 0 && agent_first > 0);

    // The records as the writer stores them, read back as `hotline
    // report` reads them.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("2026-11-25.jsonl");
    let text: String = sim.records.iter().map(|r| r.to_line()).collect();
    std::fs::write(&file, text).expect("write records");
    let settings = Settings {
        interval: Interval::parse("1h").expect("1h"),
        utc_offset: UtcOffset(0),
        thresholds: Thresholds {
            service_level_ms: 15_000,
            short_abandon_ms: None,
        },
        ..Settings::default()
    };
    let mut acc = Accumulator::new(settings);
    let stats = hotline::tools::records::for_each_record(&[file], |_, _| {}, |r| acc.add(&r))
        .expect("read records");
    assert_eq!(stats.skipped_lines, 0);
    let report = acc.finish(Source {
        records: stats.records,
        ..Source::default()
    });
    let f = &report.total.figures;
    assert_eq!(f.offered, offered);
    assert_eq!(f.invalid, 0);
    assert_eq!(f.engine_answered, engine_answered);
    assert_eq!(f.asked_for_agent, asked);
    assert_eq!(f.agent_answered, connected);
    assert_eq!(f.abandoned, abandoned);
    assert_eq!(f.answered_within_t_from_arrival, sl_arrival);
    assert_eq!(f.answered_within_t_from_queue, sl_queue);
    assert_eq!(f.agent_hung_up_first, agent_first);
    // Nobody waited 5 min (patience < 3 min) and every agent stayed
    // logged in: every unanswered queued caller abandoned.
    assert_eq!(asked, connected + abandoned);
    assert_eq!(
        f.timeouts + f.overflows + f.exit_key + f.empty + f.refused,
        0
    );
    // Per hour of arrival (the day starts at 10:00:00Z, so simulated
    // hours are the report's UTC hours).
    let mut per_hour: HashMap<u64, u64> = HashMap::new();
    for c in callers {
        *per_hour
            .entry((c.arrived - t0).as_secs() / 3600)
            .or_default() += 1;
    }
    for (h, row) in report.intervals.iter().enumerate() {
        assert_eq!(
            row.figures.offered,
            per_hour.get(&(h as u64)).copied().unwrap_or(0),
            "hour {h}"
        );
    }
    assert_eq!(
        report.agents.iter().map(|a| a.calls).sum::<u64>(),
        connected
    );
}
