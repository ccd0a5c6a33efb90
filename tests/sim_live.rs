//! The live view through the whole pure engine under simulated time: the
//! figures of `Engine::live_status` follow a queued call from the IVR to
//! the agent and agree with the call's record; the service level, the
//! waits and the midnight reset are exact.

mod common;

use std::time::Duration;

use common::*;
use hotline::config::UtcOffset;
use hotline::live::{LiveSnapshot, QueueSnapshot};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Agent 1001's phone answers the engine's last INVITE with `status`.
fn agent_answers(sim: &mut Sim, status: u16) {
    let inv = invite_to(sim, "1001").expect("the agent was rung");
    answer(sim, "1001", &inv, status);
}

fn queue<'a>(snap: &'a LiveSnapshot, name: &str) -> &'a QueueSnapshot {
    snap.queues
        .iter()
        .find(|q| q.name == name)
        .expect("queue in the snapshot")
}

/// How long the agent's announcement ("工号 0 0 7 为您服务") plays.
fn announcement(sim: &Sim) -> Duration {
    [
        "agent_intro",
        "digits/0",
        "digits/0",
        "digits/7",
        "agent_serving",
    ]
    .iter()
    .map(|n| sim.duration_of(n))
    .sum()
}

/// A caller presses 2 (repair) 2 s after the INVITE; agent 1001's phone
/// rings 5 s, answers, the announcement plays, the bridge. The wait the
/// live view counts is the record's `wait_ms`, and the call is in time
/// both ways when 5 s + the announcement <= 15 s.
#[test]
fn a_queued_call_is_counted_live_and_agrees_with_its_record() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let invite_at = sim.now;
    let tag = caller_presses(&mut sim, "c1", '2');
    let joined_at = sim.now;

    let snap = sim.engine.live_status(sim.now, true);
    assert_eq!(snap.calls.in_progress, 1);
    let calls = snap.calls.list.as_ref().expect("detail");
    assert_eq!(calls[0].state, "queued");
    assert_eq!(calls[0].queue.as_deref(), Some("repair"));
    assert_eq!(calls[0].age_ms, 2000);
    let repair = queue(&snap, "repair");
    assert_eq!(repair.waiting, 1);
    assert_eq!(repair.longest_wait_ms, 0);
    assert_eq!(repair.total.offered, 1);
    assert_eq!(snap.agents[0].state, "offered");
    assert_eq!(repair.agents.ringing, 1);

    sim.run_for(secs(3));
    let snap = sim.engine.live_status(sim.now, true);
    assert_eq!(queue(&snap, "repair").longest_wait_ms, 3000);
    let callers = queue(&snap, "repair").callers.clone().expect("detail");
    assert_eq!(callers[0].wait_ms, 3000);
    assert_eq!(callers[0].since_arrival_ms, 5000);

    sim.run_for(secs(2));
    agent_answers(&mut sim, 200);
    let snap = sim.engine.live_status(sim.now, true);
    // The agent answered; the caller hears the announcement: still waiting.
    assert_eq!(queue(&snap, "repair").waiting, 1);
    assert_eq!(
        snap.calls.list.as_ref().expect("detail")[0].state,
        "connecting"
    );
    assert_eq!(snap.agents[0].state, "on_call");

    let spoken = announcement(&sim);
    sim.run_for(spoken + ms(20));
    let bridged_at = sim.bridged.last().expect("bridged").0;
    let wait = bridged_at - joined_at;
    assert!(wait <= secs(15), "the test needs a wait in time: {wait:?}");
    let snap = sim.engine.live_status(sim.now, true);
    let repair = queue(&snap, "repair");
    assert_eq!(repair.waiting, 0);
    assert_eq!(repair.today.results["answered"], 1);
    assert_eq!(
        repair.today.figures.answered_wait_ms,
        wait.as_millis() as u64
    );
    assert_eq!(
        repair.today.figures.answered_since_arrival_ms,
        (bridged_at - invite_at).as_millis() as u64
    );
    assert_eq!(repair.today.service_level_from_arrival, Some(1.0));
    assert_eq!(repair.today.service_level_from_queue_entry, Some(1.0));
    assert_eq!(
        snap.calls.list.as_ref().expect("detail")[0].state,
        "with_agent"
    );

    sim.run_for(secs(20));
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let record = sim.records.last().expect("record").clone();
    assert_eq!(record.wait_ms, Some(wait.as_millis() as u64));
    let snap = sim.engine.live_status(sim.now, true);
    assert_eq!(snap.calls.in_progress, 0);
    assert_eq!(snap.calls.today.offered, 1);
    assert_eq!(snap.calls.today.answered, 1);
    assert_eq!(snap.calls.today.ended["caller_hangup"], 1);
    assert_eq!(snap.calls.today.connection_rate, Some(1.0));
    // The bridged call's result was counted once, at the bridge.
    let repair = queue(&snap, "repair");
    assert_eq!(repair.total.offered, 1);
    assert_eq!(repair.total.figures.resolved(), 1);
    assert_eq!(snap.agents[0].state, "wrap_up");
    assert_eq!(repair.agents.wrap_up, 1);

    // Every response the engine sent, by code, counted once.
    let mut sent = std::collections::BTreeMap::new();
    for s in &sim.sent {
        if let Some(code) = s.text.strip_prefix("SIP/2.0 ") {
            let code: u16 = code[..3].parse().expect("code");
            *sent.entry(code).or_insert(0u64) += 1;
        }
    }
    assert_eq!(snap.sip_responses, sent);
    assert_eq!(sent.get(&401), Some(&1));
}

/// The agent's phone rings 14 s: the wait is 14 s + the announcement,
/// over 15 s from queue entry and from arrival (2 s more): not in time,
/// SL 0 / 1 both ways, Asterisk's too.
#[test]
fn a_slow_answer_misses_the_service_level() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "c2", '2');
    sim.run_for(secs(14));
    agent_answers(&mut sim, 200);
    let spoken = announcement(&sim);
    sim.run_for(spoken + ms(20));
    assert!(!sim.bridged.is_empty());
    let snap = sim.engine.live_status(sim.now, false);
    let today = &queue(&snap, "repair").today;
    assert_eq!(today.results["answered"], 1);
    assert_eq!(today.answered_within_from_arrival, 0);
    assert_eq!(today.answered_within_from_queue_entry, 0);
    assert_eq!(today.service_level_from_arrival, Some(0.0));
    assert_eq!(today.service_level_asterisk, Some(0.0));
    sim.send(&in_dialog("BYE", "c2", "z9hG4bK-bye", 2, &tag, None));
}

/// With no agent logged in the queue refuses (join_empty is off): a
/// refused visit. With join_empty on, a caller who waits 20 s and hangs
/// up is an abandon with a 20 s wait.
#[test]
fn refusals_and_abandons() {
    let mut sim = Sim::new(config(|_| {}));
    caller_presses(&mut sim, "c3", '1');
    let snap = sim.engine.live_status(sim.now, false);
    let consultation = &queue(&snap, "consultation").today;
    assert_eq!(consultation.offered, 1);
    assert_eq!(consultation.results["refused"], 1);
    assert_eq!(consultation.service_level_from_arrival, Some(0.0));

    let mut sim = Sim::new(config(|c| {
        for q in &mut c.queues {
            q.join_empty = true;
        }
    }));
    let tag = caller_presses(&mut sim, "c4", '3');
    sim.run_for(secs(20));
    let snap = sim.engine.live_status(sim.now, false);
    assert_eq!(queue(&snap, "complaint").longest_wait_ms, 20_000);
    sim.send(&in_dialog("BYE", "c4", "z9hG4bK-bye", 2, &tag, None));
    let snap = sim.engine.live_status(sim.now, false);
    let complaint = queue(&snap, "complaint");
    assert_eq!(complaint.waiting, 0);
    assert_eq!(complaint.today.results["abandoned"], 1);
    assert_eq!(complaint.today.longest_wait_ms, 20_000);
    assert_eq!(complaint.today.abandon_rate, Some(1.0));
    assert_eq!(snap.calls.today.ended["caller_hangup"], 1);
}

/// `[api] utc_offset = "+08:00"`: the simulation starts at 10:00Z, 18:00
/// local, so "today" ends 6 h later and the figures reset then, by the
/// clock alone.
#[test]
fn today_follows_the_configured_offset() {
    let mut sim = Sim::new(config(|c| {
        c.api.as_mut().expect("[api]").utc_offset = UtcOffset(8 * 60);
    }));
    let t0 = sim.t0;
    let tag = caller_presses(&mut sim, "c5", '1');
    sim.run_for(secs(1));
    sim.send(&in_dialog("BYE", "c5", "z9hG4bK-bye", 2, &tag, None));
    let snap = sim.engine.live_status(sim.now, false);
    assert_eq!(snap.today, "2026-11-25");
    assert_eq!(snap.utc_offset, "+08:00");
    assert_eq!(snap.calls.today.offered, 1);

    let midnight = t0 + secs(6 * 3600);
    sim.run_until(midnight - ms(1));
    let snap = sim.engine.live_status(sim.now, false);
    assert_eq!(
        (snap.today.as_str(), snap.calls.today.offered),
        ("2026-11-25", 1)
    );
    sim.run_until(midnight);
    let snap = sim.engine.live_status(sim.now, false);
    assert_eq!(snap.today, "2026-11-26");
    assert_eq!(snap.calls.today.offered, 0);
    assert_eq!(snap.calls.total.offered, 1);
}
