//! The live figures under simulated time: every expected value is worked
//! out by hand in the comments.

use super::nodes::NodeFigures;
use super::*;

/// 2026-11-25T10:00:00Z: 18:00 at +08:00, so local midnight is 6 h later.
const WALL: u64 = 1_795_600_800_000;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn stats(settings: LiveSettings, t0: Instant) -> LiveStats {
    let queues = ["repair".to_string(), "complaint".to_string()];
    let agents = vec![
        LiveAgent {
            id: "1001".into(),
            name: "A".into(),
            number: "007".into(),
            queues: vec!["repair".into(), "complaint".into()],
        },
        LiveAgent {
            id: "1002".into(),
            name: "B".into(),
            number: "008".into(),
            queues: vec!["complaint".into()],
        },
    ];
    LiveStats::new(settings, &queues, agents, t0, (t0, WALL))
}

fn beijing() -> LiveSettings {
    LiveSettings {
        utc_offset_minutes: 8 * 60,
        ..LiveSettings::default()
    }
}

/// A queue visit: arrives at `arrival`, joins at `joined`, leaves with
/// `result` at `left` (all offsets from t0, in seconds).
fn visit(
    st: &mut LiveStats,
    t0: Instant,
    call: CallKey,
    (arrival, joined, left): (u64, u64, u64),
    result: QueueResult,
) {
    st.handle(
        t0 + s(joined),
        LiveEvent::QueueJoined {
            call,
            queue: "repair",
            arrival: t0 + s(arrival),
        },
    );
    st.handle(t0 + s(left), LiveEvent::QueueLeft { call, result });
}

fn repair(snapshot: &LiveSnapshot) -> &QueueSnapshot {
    &snapshot.queues[0]
}

fn no_ids(_: CallKey) -> String {
    String::new()
}

/// Six visits with results and one still waiting, T = 15 s:
///
/// | call | arrival | joined | left | result | wait | since arrival |
/// |---|---|---|---|---|---|---|
/// | 1 | 0 | 2 | 10 | answered | 8 (in) | 10 (in) |
/// | 2 | 1 | 3 | 20 | answered | 17 (late) | 19 (late) |
/// | 3 | 4 | 10 | 22 | answered | 12 (in) | 18 (late) |
/// | 4 | 6 | 8 | 11 | abandoned | 3 | |
/// | 5 | 7 | 9 | 40 | timeout | 31 | |
/// | 6 | 8 | 9 | 9 | refused | 0 | |
/// | 7 | 30 | 32 | - | waiting | | |
///
/// At t0 + 45 s: 6 results, so SL from arrival = 1/6, from queue entry =
/// 2/6, Asterisk's = 2/3 (answered only), abandon rate = 1/6, ASA =
/// (8 + 17 + 12) / 3 = 12.333 s -> 12333 ms, the longest wait with a
/// result 31 s, the current one (call 7) 45 - 32 = 13 s.
#[test]
fn service_level_today_on_a_hand_worked_day() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    visit(&mut st, t0, CallKey(1), (0, 2, 10), QueueResult::Answered);
    visit(&mut st, t0, CallKey(2), (1, 3, 20), QueueResult::Answered);
    visit(&mut st, t0, CallKey(3), (4, 10, 22), QueueResult::Answered);
    visit(&mut st, t0, CallKey(4), (6, 8, 11), QueueResult::Abandoned);
    visit(&mut st, t0, CallKey(5), (7, 9, 40), QueueResult::Timeout);
    visit(&mut st, t0, CallKey(6), (8, 9, 9), QueueResult::Refused);
    st.handle(
        t0 + s(32),
        LiveEvent::QueueJoined {
            call: CallKey(7),
            queue: "repair",
            arrival: t0 + s(30),
        },
    );
    let snap = st.snapshot(t0 + s(45), true, |c| format!("call-{}", c.0));
    let q = repair(&snap);
    let f = &q.today.figures;
    assert_eq!(f.offered, 7);
    assert_eq!(f.resolved(), 6);
    assert_eq!(f.answered_within_from_arrival, 1);
    assert_eq!(f.answered_within_from_queue_entry, 2);
    assert_eq!(q.today.service_level_from_arrival, Some(1.0 / 6.0));
    assert_eq!(q.today.service_level_from_queue_entry, Some(2.0 / 6.0));
    assert_eq!(q.today.service_level_asterisk, Some(2.0 / 3.0));
    assert_eq!(q.today.abandon_rate, Some(1.0 / 6.0));
    assert_eq!(q.today.asa_ms, Some(12_333));
    assert_eq!(f.answered_wait_ms, 37_000);
    assert_eq!(f.answered_since_arrival_ms, 10_000 + 19_000 + 18_000);
    assert_eq!(q.today.longest_wait_ms, 31_000);
    assert_eq!(q.waiting, 1);
    assert_eq!(q.longest_wait_ms, 13_000);
    assert_eq!(q.longest_wait_today_ms, 31_000);
    let callers = q.callers.as_ref().expect("detail");
    assert_eq!(callers.len(), 1);
    assert_eq!(callers[0].call_id, "call-7");
    assert_eq!(callers[0].wait_ms, 13_000);
    assert_eq!(callers[0].since_arrival_ms, 15_000);
    // Everything happened today, so the totals are the same.
    assert_eq!(q.total.figures, q.today.figures);
    assert_eq!(snap.today, "2026-11-25");
    assert_eq!(snap.utc_offset, "+08:00");
}

/// The same day with a 5 s short-abandon threshold, and one more abandon
/// (call 8, after 6 s: not short). Call 4's 3 s abandon is short: the
/// denominators are 7 results - 1 = 6: SL from arrival 1/6, from queue
/// entry 2/6, abandon rate (2 abandoned - 1 short) / 6.
#[test]
fn short_abandons_leave_the_denominators() {
    let t0 = crate::time::test_epoch();
    let settings = LiveSettings {
        short_abandon: Some(s(5)),
        ..beijing()
    };
    let mut st = stats(settings, t0);
    visit(&mut st, t0, CallKey(1), (0, 2, 10), QueueResult::Answered);
    visit(&mut st, t0, CallKey(2), (1, 3, 20), QueueResult::Answered);
    visit(&mut st, t0, CallKey(3), (4, 10, 22), QueueResult::Answered);
    visit(&mut st, t0, CallKey(4), (6, 8, 11), QueueResult::Abandoned);
    visit(&mut st, t0, CallKey(5), (7, 9, 40), QueueResult::Timeout);
    visit(&mut st, t0, CallKey(6), (8, 9, 9), QueueResult::Refused);
    // An abandon after 6 s is not short.
    visit(
        &mut st,
        t0,
        CallKey(8),
        (40, 41, 47),
        QueueResult::Abandoned,
    );
    let snap = st.snapshot(t0 + s(50), false, no_ids);
    let today = &repair(&snap).today;
    assert_eq!(today.short_abandons, 1);
    assert_eq!(today.figures.result(QueueResult::Abandoned), 2);
    // 7 results - 1 short = 6.
    assert_eq!(today.service_level_from_arrival, Some(1.0 / 6.0));
    assert_eq!(today.service_level_from_queue_entry, Some(2.0 / 6.0));
    // (2 abandoned - 1 short) / 6.
    assert_eq!(today.abandon_rate, Some(1.0 / 6.0));
}

/// A wait is exactly the simulated time since queue entry.
#[test]
fn longest_wait_advances_with_time() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    let join = |st: &mut LiveStats, call, at: u64| {
        st.handle(
            t0 + s(at),
            LiveEvent::QueueJoined {
                call,
                queue: "repair",
                arrival: t0 + s(at) - Duration::from_millis(1500),
            },
        )
    };
    join(&mut st, CallKey(1), 10);
    join(&mut st, CallKey(2), 25);
    let at = |st: &mut LiveStats, t: Duration| {
        repair(&st.snapshot(t0 + t, false, no_ids)).longest_wait_ms
    };
    assert_eq!(at(&mut st, s(10)), 0);
    assert_eq!(at(&mut st, s(11)), 1_000);
    assert_eq!(at(&mut st, Duration::from_millis(70_250)), 60_250);
    // The longest waiter leaves: the next one's wait (since 25 s) shows.
    st.handle(
        t0 + s(71),
        LiveEvent::QueueLeft {
            call: CallKey(1),
            result: QueueResult::Abandoned,
        },
    );
    assert_eq!(at(&mut st, s(71)), 46_000);
    assert_eq!(at(&mut st, s(100)), 75_000);
    let snap = st.snapshot(t0 + s(100), false, no_ids);
    assert_eq!(repair(&snap).waiting, 1);
    // Call 1 waited 61 s; call 2 has waited 75 s and is still waiting.
    assert_eq!(repair(&snap).today.longest_wait_ms, 61_000);
    assert_eq!(repair(&snap).longest_wait_today_ms, 75_000);
}

/// Local midnight at +08:00 is 16:00Z, 6 h after t0 (18:00 local). "Today"
/// is reset by the clock alone: a snapshot just after midnight shows
/// zeros and the new date without any event in between. A call that
/// arrived before midnight and is answered after it belongs to no "today"
/// (days bucket by arrival) but to the totals.
#[test]
fn today_resets_at_local_midnight() {
    let t0 = crate::time::test_epoch();
    let midnight = t0 + s(6 * 3600);
    let mut st = stats(beijing(), t0);
    st.handle(t0 + s(1), LiveEvent::CallAnswered { arrival: t0 });
    visit(&mut st, t0, CallKey(1), (0, 5, 12), QueueResult::Answered);
    // Arrives at 23:59:50 local, waits from 23:59:52.
    st.handle(
        midnight - s(8),
        LiveEvent::QueueJoined {
            call: CallKey(2),
            queue: "repair",
            arrival: midnight - s(10),
        },
    );
    let before = st.snapshot(midnight - Duration::from_millis(1), false, no_ids);
    assert_eq!(before.today, "2026-11-25");
    assert_eq!(before.calls.today.answered, 1);
    assert_eq!(repair(&before).today.figures.offered, 2);
    assert_eq!(
        repair(&before).today.figures.result(QueueResult::Answered),
        1
    );
    let version = st.version();

    let after = st.snapshot(midnight, false, no_ids);
    assert_eq!(after.today, "2026-11-26");
    assert_eq!(after.calls.today.answered, 0);
    assert_eq!(after.calls.today.offered, 0);
    assert_eq!(repair(&after).today.figures, QueueFigures::default());
    assert_eq!(repair(&after).today.service_level_from_arrival, None);
    assert_eq!(after.calls.total.answered, 1, "totals are kept");
    assert!(
        st.version() > version,
        "the reset is news for the wallboard"
    );

    // Call 2 is answered at 00:00:05: it arrived yesterday, so it counts
    // in the totals only.
    assert_eq!(repair(&after).waiting, 1);
    st.handle(
        midnight + s(5),
        LiveEvent::QueueLeft {
            call: CallKey(2),
            result: QueueResult::Answered,
        },
    );
    // Arrived after midnight: today.
    visit(
        &mut st,
        midnight,
        CallKey(3),
        (20, 21, 30),
        QueueResult::Abandoned,
    );
    let snap = st.snapshot(midnight + s(60), false, no_ids);
    let q = repair(&snap);
    assert_eq!(q.today.figures.offered, 1);
    assert_eq!(q.today.figures.result(QueueResult::Answered), 0);
    assert_eq!(q.today.figures.result(QueueResult::Abandoned), 1);
    assert_eq!(q.total.figures.offered, 3);
    assert_eq!(q.total.figures.result(QueueResult::Answered), 2);
    // 0 answered in time / 1 result today.
    assert_eq!(q.today.service_level_from_arrival, Some(0.0));
}

/// With no offset, the same instant is still 2026-11-25 (10:00Z), and
/// midnight is 14 h away.
#[test]
fn the_offset_decides_when_midnight_is() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(LiveSettings::default(), t0);
    assert_eq!(
        st.snapshot(t0 + s(6 * 3600), false, no_ids).today,
        "2026-11-25"
    );
    assert_eq!(
        st.snapshot(t0 + s(14 * 3600) - Duration::from_millis(1), false, no_ids)
            .today,
        "2026-11-25"
    );
    assert_eq!(
        st.snapshot(t0 + s(14 * 3600), false, no_ids).today,
        "2026-11-26"
    );
    assert_eq!(format_offset(-330), "-05:30");
}

/// One visit per result, each counted once under its own label; a second
/// result for the same visit is ignored; a call that ends with a visit
/// open counts it abandoned.
#[test]
fn counters_per_result() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    for (call, result) in QueueResult::ALL.iter().enumerate() {
        visit(&mut st, t0, CallKey(call as u64), (0, 1, 2), *result);
    }
    // Ignored: call 0's visit already has its result.
    st.handle(
        t0 + s(3),
        LiveEvent::QueueLeft {
            call: CallKey(0),
            result: QueueResult::Timeout,
        },
    );
    // Call 100 is in the queue when its call ends.
    st.handle(
        t0 + s(3),
        LiveEvent::QueueJoined {
            call: CallKey(100),
            queue: "repair",
            arrival: t0,
        },
    );
    st.handle(
        t0 + s(4),
        LiveEvent::CallEnded {
            call: CallKey(100),
            arrival: t0,
            outcome: Outcome::CallerHangup,
            answered: true,
        },
    );
    // Unknown queues are not counted.
    st.handle(
        t0 + s(4),
        LiveEvent::QueueJoined {
            call: CallKey(200),
            queue: "nowhere",
            arrival: t0,
        },
    );
    let snap = st.snapshot(t0 + s(5), false, no_ids);
    let q = repair(&snap);
    // One visit per result, and call 100.
    assert_eq!(q.total.offered, QueueResult::ALL.len() as u64 + 1);
    for result in QueueResult::ALL {
        let want = if result == QueueResult::Abandoned {
            2
        } else {
            1
        };
        assert_eq!(
            q.total.results[result.as_str()],
            want,
            "{}",
            result.as_str()
        );
    }
    assert_eq!(q.waiting, 0);
    assert_eq!(snap.queues[1].total.offered, 0);
}

/// Offered = answered by the engine + ended unanswered (not invalid):
/// 2 answered + 1 busy + 1 cancelled = 4; 2 invalid apart; connection
/// rate 2/4.
#[test]
fn calls_offered_answered_and_invalid() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    for call in (0..2).map(CallKey) {
        st.handle(t0 + s(2), LiveEvent::CallAnswered { arrival: t0 });
        st.handle(
            t0 + s(30),
            LiveEvent::CallEnded {
                call,
                arrival: t0,
                outcome: Outcome::Completed,
                answered: true,
            },
        );
    }
    for (call, outcome) in [
        (CallKey(2), Outcome::OverCapacity),
        (CallKey(3), Outcome::CallerCancelled),
        (CallKey(4), Outcome::UnknownNumber),
        (CallKey(5), Outcome::BadRequest),
    ] {
        st.handle(
            t0 + s(31),
            LiveEvent::CallEnded {
                call,
                arrival: t0,
                outcome,
                answered: false,
            },
        );
    }
    let snap = st.snapshot(t0 + s(32), false, no_ids);
    let today = &snap.calls.today;
    assert_eq!(today.offered, 4);
    assert_eq!(today.answered, 2);
    assert_eq!(today.invalid, 2);
    assert_eq!(today.connection_rate, Some(0.5));
    assert_eq!(today.ended["completed"], 2);
    assert_eq!(today.ended["over_capacity"], 1);
    assert_eq!(today.ended["unknown_number"], 1);
    assert_eq!(today.ended.len(), 5);
}

/// Agents by status and state, and per queue by what they are doing.
#[test]
fn agents_by_status_and_state() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    let before = st.snapshot(t0, false, no_ids);
    assert_eq!(before.queues[1].agents.logged_out, 2);
    let on_break = AgentStatus::OnBreak {
        reason: "lunch".into(),
    };
    st.handle(
        t0,
        LiveEvent::Agent {
            id: "1001",
            status: &AgentStatus::Available,
            state: AgentState::OnCall { caller: CallKey(1) },
            registered: true,
        },
    );
    st.handle(
        t0,
        LiveEvent::Agent {
            id: "1002",
            status: &on_break,
            state: AgentState::Idle,
            registered: true,
        },
    );
    let snap = st.snapshot(t0, false, no_ids);
    assert_eq!(snap.agents[0].status, "available");
    assert_eq!(snap.agents[0].state, "on_call");
    assert_eq!(snap.agents[1].status, "on_break");
    assert_eq!(snap.agents[1].break_reason.as_deref(), Some("lunch"));
    // repair: 1001 only; complaint: both.
    let repair_agents = snap.queues[0].agents;
    assert_eq!((repair_agents.on_call, repair_agents.on_break), (1, 0));
    let complaint = snap.queues[1].agents;
    assert_eq!(
        (complaint.on_call, complaint.on_break, complaint.logged_out),
        (1, 1, 0)
    );

    st.handle(
        t0,
        LiveEvent::Agent {
            id: "1001",
            status: &AgentStatus::Available,
            state: AgentState::Idle,
            registered: false,
        },
    );
    let snap = st.snapshot(t0, false, no_ids);
    assert_eq!(snap.queues[0].agents.unregistered, 1);
    assert_eq!(snap.queues[0].agents.available, 0);
}

#[test]
fn sip_responses_by_code() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    let version = st.version();
    for code in [100, 180, 200, 200, 503, 99, 700] {
        st.sip_response_sent(code);
    }
    let snap = st.snapshot(t0, false, no_ids);
    assert_eq!(
        snap.sip_responses.into_iter().collect::<Vec<_>>(),
        vec![(100, 1), (180, 1), (200, 2), (503, 1)]
    );
    assert_eq!(st.version(), version, "not news for the wallboard");
}

/// The Prometheus text for the hand-worked day: names, labels, values.
#[test]
fn prometheus_text_carries_the_figures() {
    let t0 = crate::time::test_epoch();
    let mut st = stats(beijing(), t0);
    visit(&mut st, t0, CallKey(1), (0, 2, 10), QueueResult::Answered);
    visit(&mut st, t0, CallKey(2), (1, 3, 20), QueueResult::Answered);
    visit(&mut st, t0, CallKey(4), (6, 8, 11), QueueResult::Abandoned);
    st.handle(
        t0 + s(32),
        LiveEvent::QueueJoined {
            call: CallKey(7),
            queue: "repair",
            arrival: t0 + s(30),
        },
    );
    st.sip_response_sent(180);
    let mut snap = st.snapshot(t0 + s(45), false, no_ids);
    snap.calls.in_progress = 1;
    let rtp = prometheus::RtpTotals {
        packets_sent: 500,
        packets_received: 480,
        packets_invalid: 2,
        send_errors: 1,
    };
    let text = prometheus::encode(&snap, rtp);
    let has = |line: &str| {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        )
    };
    has("# TYPE hotline_queue_calls_total counter");
    has("hotline_calls_in_progress 1");
    has("hotline_queue_waiting_calls{queue=\"repair\"} 1");
    // Call 7 joined at 32 s: 13 s at 45 s.
    has("hotline_queue_longest_wait_seconds{queue=\"repair\"} 13.0");
    has("hotline_queue_offered_total{queue=\"repair\"} 4");
    has("hotline_queue_calls_total{queue=\"repair\",result=\"answered\"} 2");
    has("hotline_queue_calls_total{queue=\"repair\",result=\"abandoned\"} 1");
    has("hotline_queue_calls_total{queue=\"complaint\",result=\"answered\"} 0");
    // Call 1 in time both ways (8 s, 10 s); call 2 late both ways.
    has("hotline_queue_answered_within_threshold_total{queue=\"repair\",measured_from=\"arrival\"} 1");
    has("hotline_queue_answered_within_threshold_total{queue=\"repair\",measured_from=\"queue_entry\"} 1");
    // 1 in time / 3 results.
    has(&format!(
        "hotline_queue_service_level_today_ratio{{queue=\"repair\",measured_from=\"arrival\"}} {}",
        1.0f64 / 3.0
    ));
    has("hotline_queue_service_level_today_ratio{queue=\"complaint\",measured_from=\"arrival\"} NaN");
    // 8 s + 17 s.
    has("hotline_queue_answered_wait_seconds_total{queue=\"repair\"} 25.0");
    has("hotline_service_level_threshold_seconds 15.0");
    has("hotline_agents{status=\"logged_out\",state=\"idle\"} 2");
    has("hotline_queue_agents{queue=\"complaint\",status=\"logged_out\",state=\"idle\"} 2");
    has("hotline_queue_agents{queue=\"repair\",status=\"logged_out\",state=\"idle\"} 1");
    has("hotline_sip_responses_total{code=\"180\"} 1");
    has("hotline_rtp_packets_total{direction=\"sent\"} 500");
    has("hotline_rtp_errors_total{kind=\"send_failed\"} 1");
    has("hotline_rtp_errors_total{kind=\"invalid_received\"} 2");
}

/// What happens on one node: `visits` (call key, times, result), each
/// call answered and ended; `busy`: an agent on a call there.
fn node_events(
    st: &mut LiveStats,
    t0: Instant,
    visits: &[(u64, (u64, u64, u64), QueueResult)],
    busy: Option<&str>,
) {
    for &(key, times, result) in visits {
        let call = CallKey(key);
        st.handle(
            t0 + s(times.0),
            LiveEvent::CallAnswered {
                arrival: t0 + s(times.0),
            },
        );
        visit(st, t0, call, times, result);
        st.handle(
            t0 + s(times.2 + 1),
            LiveEvent::CallEnded {
                call,
                arrival: t0 + s(times.0),
                outcome: Outcome::CallerHangup,
                answered: true,
            },
        );
    }
    for id in ["1001", "1002"] {
        st.handle(
            t0,
            LiveEvent::Agent {
                id,
                status: &AgentStatus::Available,
                state: match busy {
                    Some(b) if b == id => AgentState::OnCall { caller: CallKey(1) },
                    _ => AgentState::Idle,
                },
                registered: true,
            },
        );
    }
}

#[test]
fn two_nodes_summed_equal_one_node_that_took_every_call() {
    let t0 = crate::time::test_epoch();
    let a_calls = [(1, (0, 5, 12), QueueResult::Answered)];
    let b_calls = [
        (2, (0, 4, 44), QueueResult::Abandoned),
        (3, (10, 12, 30), QueueResult::Answered),
    ];
    let mut a = stats(beijing(), t0);
    node_events(&mut a, t0, &a_calls, None);
    let mut b = stats(beijing(), t0);
    node_events(&mut b, t0, &b_calls, Some("1002"));
    // One node that took all three calls, with 1002 on a call.
    let mut one = stats(beijing(), t0);
    node_events(
        &mut one,
        t0,
        &[a_calls[0], b_calls[0], b_calls[1]],
        Some("1002"),
    );

    let at = t0 + s(60);
    let from_b = NodeFigures::of("b", &b.snapshot(at, false, no_ids));
    // Through the store, as JSON.
    let text = serde_json::to_string(&from_b).expect("json");
    let from_b: NodeFigures = serde_json::from_str(&text).expect("back");
    let mut summed = a.snapshot(at, false, no_ids);
    summed.add_nodes(&[from_b]);
    let whole = one.snapshot(at, false, no_ids);

    assert_eq!(summed.nodes, vec!["b".to_string()]);
    assert_eq!(summed.calls.total.figures, whole.calls.total.figures);
    assert_eq!(summed.calls.today.figures, whole.calls.today.figures);
    assert_eq!(
        summed.calls.today.connection_rate,
        whole.calls.today.connection_rate
    );
    let (mine, all) = (repair(&summed), repair(&whole));
    assert_eq!(mine.today.figures, all.today.figures);
    assert_eq!(mine.total.figures, all.total.figures);
    assert_eq!(mine.today.offered, 3);
    // 2 answered within 15 s of 3 (the 40 s abandon counts): 2/3.
    assert_eq!(
        mine.today.service_level_from_queue_entry,
        all.today.service_level_from_queue_entry
    );
    assert_eq!(mine.today.abandon_rate, all.today.abandon_rate);
    assert_eq!(mine.today.longest_wait_ms, 40_000);
    // 1002 is on a call on node b: busy here too.
    assert_eq!(summed.agents[1].state, "on_call");
    assert_eq!(summed.queues[1].agents, whole.queues[1].agents);
    assert_eq!(summed.queues[1].agents.on_call, 1);
}
