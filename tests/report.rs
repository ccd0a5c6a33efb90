//! The SLA report: every figure on a hand-built day (expected values worked
//! out in the comments), properties (record order does not matter;
//! intervals and groups add up to the total), bounded memory over a
//! million records, the `hotline report` command end to end, and the HTML
//! rendered by headless Chromium.

#[path = "support/api_config.rs"]
mod api_config;
#[path = "support/chromium.rs"]
mod chromium;
#[path = "support/engine.rs"]
mod engine;

use std::path::Path;

use hotline::cdr::{format_ms, CallRecord, Disposition, HangupSide, Outcome};
use hotline::report::{
    report_of, Accumulator, GroupBy, Interval, Settings, Tally, Thresholds, UtcOffset,
};
use proptest::prelude::*;

/// 2026-11-25T02:00:00Z, which is 10:00 in China (+08:00):
/// 2026-11-25T10:00:00Z is 1_795_600_800_000, minus 8 h (28_800_000 ms).
const BASE: u64 = 1_795_572_000_000;
const HOUR: u64 = 3_600_000;
const CN: UtcOffset = UtcOffset(8 * 3600);

fn at(ms: u64) -> String {
    format_ms(BASE + ms)
}

/// A call that arrived `arrival` ms after BASE and was not answered.
fn call(id: &str, arrival: u64, outcome: Outcome) -> CallRecord {
    CallRecord {
        version: 1,
        call_id: id.into(),
        invite_at: at(arrival),
        ended_at: at(arrival + 1000),
        outcome,
        disposition: Disposition::Rejected,
        hangup_side: Some(HangupSide::Caller),
        ..CallRecord::default()
    }
}

/// Answered by the engine `tta` ms after arrival.
fn answered(id: &str, arrival: u64, tta: u64, outcome: Outcome) -> CallRecord {
    CallRecord {
        answered_at: Some(at(arrival + tta)),
        time_to_answer_ms: Some(tta),
        disposition: Disposition::Answered,
        sip_status: 200,
        ..call(id, arrival, outcome)
    }
}

/// Queued in `queue` `queued` ms after arrival (answered after 2 s).
fn queued(id: &str, arrival: u64, queued: u64, queue: &str) -> CallRecord {
    CallRecord {
        queue: Some(queue.into()),
        business_type: Some(queue.into()),
        queued_at: Some(at(arrival + queued)),
        customer_class: Some("public".into()),
        ..answered(id, arrival, 2000, Outcome::CallerHangup)
    }
}

/// Connected to `agent` after waiting `wait` ms in the queue.
fn connected(
    mut r: CallRecord,
    wait: u64,
    talk: u64,
    agent: (&str, &str),
    side: HangupSide,
) -> CallRecord {
    let queued_at = hotline::tools::records::parse_time_ms(r.queued_at.as_deref().expect("queued"))
        .expect("time");
    r.bridged_at = Some(format_ms(queued_at + wait));
    r.wait_ms = Some(wait);
    r.talk_ms = Some(talk);
    r.wrap_up_ms = Some(30_000);
    r.agent = Some(agent.0.into());
    r.agent_number = Some(agent.1.into());
    r.queue_result = Some("answered".into());
    r.hangup_side = Some(side);
    r.offers = 1;
    r
}

/// Left the queue unanswered.
fn left(mut r: CallRecord, result: &str, wait: u64, message: bool) -> CallRecord {
    r.queue_result = Some(result.into());
    r.wait_ms = Some(wait);
    r.message_file = message.then(|| "2026-11-25/m.wav".to_string());
    r
}

/// Attempt `n` at task `task` of `kind` (a call hotline placed),
/// started `start` ms after BASE and ended `result`; an answered attempt
/// was answered 10 s in.
fn task_call(task: u64, kind: &str, n: u32, result: &str, start: u64) -> CallRecord {
    let mut r = call(&format!("t{task}-{n}-{start}"), start, Outcome::Unanswered);
    r.direction = Some("outbound".into());
    r.dialled_number = "13800138000".into();
    r.trunk = Some("pstn".into());
    r.task = Some(task);
    r.task_kind = Some(kind.into());
    r.origin_call = Some(format!("hl-1-{task}"));
    r.attempt = Some(n);
    r.attempt_result = Some(result.into());
    if result == "answered" {
        r.answered_at = Some(at(start + 10_000));
        r.outcome = Outcome::Completed;
        r.ended_at = at(start + 100_000);
    }
    r
}

/// Fifteen records over two local hours (10:00 and 11:00, +08:00).
fn fixture() -> Vec<CallRecord> {
    use Outcome::*;
    vec![
        // 10:00-11:00
        call("bad", 60_000, BadRequest),                 // 1 invalid
        call("unknown", 120_000, UnknownNumber),         // 2 invalid
        call("busy", 180_000, OverCapacity),             // 3 offered, lost (503)
        call("cancel", 240_000, CallerCancelled),        // 4 offered, lost
        answered("ivr", 300_000, 2000, Completed),       // 5 served by the IVR
        answered("silent", 360_000, 2000, SilentHangup), // 6
        // 7: queued 10 s after arrival, waited 8 s: bridged 18 s after arrival.
        connected(
            queued("quick", 420_000, 10_000, "repair"),
            8_000,
            60_000,
            ("1001", "007"),
            HangupSide::Caller,
        ),
        // 8: answered after 1 s, queued 3 s after arrival, waited 9 s: 12 s.
        connected(
            CallRecord {
                answered_at: Some(at(480_000 + 1000)),
                time_to_answer_ms: Some(1000),
                ..queued("fast", 480_000, 3_000, "repair")
            },
            9_000,
            200_000,
            ("1002", "008"),
            HangupSide::Agent,
        ),
        // 11:00-12:00
        // 9: the engine answered after 16 s, queued at 20 s, waited 30 s: 50 s.
        connected(
            CallRecord {
                answered_at: Some(at(HOUR + 100_000 + 16_000)),
                time_to_answer_ms: Some(16_000),
                ..queued("slow", HOUR + 100_000, 20_000, "complaint")
            },
            30_000,
            120_000,
            ("1001", "007"),
            HangupSide::Caller,
        ),
        left(
            queued("abandon", HOUR + 200_000, 5_000, "repair"),
            "abandoned",
            40_000,
            false,
        ), // 10
        left(
            queued("short", HOUR + 300_000, 5_000, "complaint"),
            "abandoned",
            3_000,
            false,
        ), // 11
        left(
            queued("timeout", HOUR + 400_000, 5_000, "complaint"),
            "timeout",
            300_000,
            true,
        ), // 12
        left(
            queued("exit", HOUR + 500_000, 5_000, "complaint"),
            "exit_key",
            20_000,
            false,
        ), // 13
        left(
            queued("overflow", HOUR + 600_000, 5_000, "complaint"),
            "overflow",
            60_000,
            true,
        ), // 14
        left(
            queued("refused", HOUR + 700_000, 5_000, "complaint"),
            "refused",
            0,
            false,
        ), // 15
    ]
}

fn settings(short_abandon_ms: Option<u64>) -> Settings {
    Settings {
        interval: Interval::parse("1h").expect("1h"),
        utc_offset: CN,
        thresholds: Thresholds {
            service_level_ms: 15_000,
            short_abandon_ms,
        },
        ..Settings::default()
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

#[test]
fn every_figure_on_a_hand_built_day() {
    let records = fixture();
    let report = report_of(&records, settings(Some(5_000)));
    let f = &report.total.figures;
    // Records 1 and 2 are not calls; 3..=15 are offered: 13.
    assert_eq!(f.invalid, 2);
    assert_eq!(f.offered, 13);
    // All but 3 (503) and 4 (cancelled) answered: 11; 11/13.
    assert_eq!(f.engine_answered, 11);
    assert!(close(f.connection_rate, 11.0 / 13.0));
    // Answered within 15 s: all 11 but 9 (16 s): 10 of 13 offered.
    assert_eq!(f.engine_answered_within_t, 10);
    assert!(close(f.engine_answer_rate_within_t, 10.0 / 13.0));
    // 7..=15 asked for an agent: 9. Connected: 7, 8, 9: 3 of 9.
    assert_eq!(f.asked_for_agent, 9);
    assert_eq!(f.agent_answered, 3);
    assert!(close(f.manual_connection_rate, 3.0 / 9.0));
    // 11 waited 3 s < 5 s: a short abandon. Denominator 9 - 1 = 8.
    assert_eq!(f.short_abandons, 1);
    // From arrival: 7 took 18 s, 8 took 12 s, 9 took 50 s: only 8. 1/8.
    assert_eq!(f.answered_within_t_from_arrival, 1);
    assert!(close(f.service_level_from_arrival, 1.0 / 8.0));
    // From queue entry: waits 8 s, 9 s, 30 s: 7 and 8. 2/8.
    assert_eq!(f.answered_within_t_from_queue, 2);
    assert!(close(f.service_level_from_queue, 2.0 / 8.0));
    // Asterisk: over answered calls only: 2/3.
    assert!(close(f.asterisk_service_level, 2.0 / 3.0));
    // ASA: (8000 + 9000 + 30000) / 3 = 15666.67 -> 15667 ms.
    assert_eq!(f.asa_ms, Some(15_667));
    // From arrival: (18000 + 12000 + 50000) / 3 = 26666.67 -> 26667 ms.
    assert_eq!(f.asa_from_arrival_ms, Some(26_667));
    // Abandoned: 10 only (11 is short): 1/8.
    assert_eq!(f.abandoned, 1);
    assert!(close(f.abandon_rate, 1.0 / 8.0));
    assert_eq!(
        (f.timeouts, f.overflows, f.exit_key, f.empty, f.refused),
        (1, 1, 1, 0, 1)
    );
    assert_eq!(f.other_queue_results, 0);
    // Lost: 3 and 4 (never answered), then 10, 11, 13, 15 (no agent, no
    // message; 12 and 14 left messages): 6 of 13.
    assert_eq!(f.lost, 6);
    assert!(close(f.call_loss_rate, 6.0 / 13.0));
    // AHT: talk 60000 + 200000 + 120000 = 380000, wrap-up 3 x 30000 =
    // 90000: 470000 / 3 = 156666.67 -> 156667 ms.
    assert_eq!(f.aht_ms, Some(156_667));
    assert_eq!(f.mean_talk_ms, Some(126_667)); // 380000 / 3
    assert_eq!(f.mean_wrap_up_ms, Some(30_000));
    // Talk <= 180 s: 7 (60 s) and 9 (120 s), not 8 (200 s): 2/3.
    assert_eq!(f.handled_within_3min, 2);
    assert!(close(f.handled_within_3min_rate, 2.0 / 3.0));
    // Waits of the 9 who asked, in s: 8, 9, 30, 40, 3, 300, 20, 60, 0.
    assert_eq!(f.longest_wait_ms, Some(300_000));
    // Sorted: 0 3 8 9 20 30 40 60 300. Nearest rank: p50 ceil(4.5) = 5th
    // = 20; p80 ceil(7.2) = 8th = 60; p90 ceil(8.1) = 9th = 300; p95, p99
    // also the 9th.
    assert_eq!(f.wait_p50_s, Some(20));
    assert_eq!(f.wait_p80_s, Some(60));
    assert_eq!(f.wait_p90_s, Some(300));
    assert_eq!(f.wait_p95_s, Some(300));
    assert_eq!(f.wait_p99_s, Some(300));
    // 6 is the silent call; 8 is the agent who hung up first.
    assert_eq!(f.silent_calls, 1);
    assert_eq!(f.agent_hung_up_first, 1);
}

#[test]
fn without_a_short_abandon_threshold_every_abandon_counts() {
    let report = report_of(&fixture(), settings(None));
    let f = &report.total.figures;
    // 10 and 11 both abandoned; denominators are all 9 who asked.
    assert_eq!((f.abandoned, f.short_abandons), (2, 0));
    assert!(close(f.abandon_rate, 2.0 / 9.0));
    assert!(close(f.service_level_from_arrival, 1.0 / 9.0));
    assert!(close(f.service_level_from_queue, 2.0 / 9.0));
    // Lost does not depend on the threshold: still 6.
    assert_eq!(f.lost, 6);
}

#[test]
fn t_is_inclusive() {
    let mut s = settings(None);
    s.thresholds.service_level_ms = 12_000;
    let f = report_of(&fixture(), s.clone()).total.figures;
    // 8 was connected exactly 12 s after arriving: it counts.
    assert_eq!(f.answered_within_t_from_arrival, 1);
    // Engine answers <= 12 s: all 11 answered but 9 (16 s): 10.
    assert_eq!(f.engine_answered_within_t, 10);
    s.thresholds.service_level_ms = 11_999;
    let f = report_of(&fixture(), s).total.figures;
    assert_eq!(f.answered_within_t_from_arrival, 0);
}

#[test]
fn local_hours_and_queues_on_the_fixture() {
    let mut s = settings(Some(5_000));
    s.by = Some(GroupBy::Queue);
    let report = report_of(&fixture(), s);
    let labels: Vec<&str> = report
        .intervals
        .iter()
        .map(|r| r.label.as_deref().unwrap_or(""))
        .collect();
    // BASE is 02:00Z = 10:00 local; records 1-8 in the first hour.
    assert_eq!(labels, ["2026-11-25 10:00", "2026-11-25 11:00"]);
    let (ten, eleven) = (&report.intervals[0].figures, &report.intervals[1].figures);
    // 10:00: offered 3..=8 = 6, invalid 2, asked 7 and 8, both connected;
    // from arrival only 8 (12 s): 1/2. Lost 3 and 4.
    assert_eq!(
        (
            ten.offered,
            ten.invalid,
            ten.asked_for_agent,
            ten.agent_answered
        ),
        (6, 2, 2, 2)
    );
    assert!(close(ten.service_level_from_arrival, 0.5));
    assert_eq!(ten.lost, 2);
    // 11:00: offered 9..=15 = 7, all asked, 1 connected (9, at 50 s);
    // 1 short abandon: SL 0/6. Lost 10, 11, 13, 15.
    assert_eq!(
        (
            eleven.offered,
            eleven.asked_for_agent,
            eleven.agent_answered
        ),
        (7, 7, 1)
    );
    assert!(close(eleven.service_level_from_arrival, 0.0));
    assert_eq!(eleven.lost, 4);
    // Groups: complaint 9, 11..=15 (6); repair 7, 8, 10 (3); none 3..=6 (4
    // offered) plus the 2 invalid.
    let groups: Vec<(&str, u64)> = report
        .groups
        .iter()
        .map(|g| (g.group.as_deref().unwrap_or(""), g.figures.offered))
        .collect();
    assert_eq!(groups, [("(none)", 4), ("complaint", 6), ("repair", 3)]);
    // (interval, group) cells: 10:00 has none and repair; 11:00 has
    // complaint and repair (10).
    assert_eq!(report.rows.len(), 4);
}

#[test]
fn agents_on_the_fixture() {
    let report = report_of(&fixture(), settings(None));
    let a: Vec<_> = report.agents.iter().collect();
    assert_eq!(a.len(), 2);
    // 1001: 7 (60 s talk) and 9 (120 s): AHT (180000 + 60000) / 2 = 120000.
    assert_eq!(
        (a[0].agent.as_str(), a[0].number.as_deref()),
        ("1001", Some("007"))
    );
    assert_eq!(
        (a[0].calls, a[0].talk_ms, a[0].wrap_up_ms),
        (2, 180_000, 60_000)
    );
    assert_eq!(a[0].aht_ms, Some(120_000));
    assert_eq!((a[0].handled_within_3min, a[0].hung_up_first), (2, 0));
    // 1002: 8 (200 s talk, hung up first): AHT 230000.
    assert_eq!(
        (a[1].calls, a[1].aht_ms, a[1].hung_up_first),
        (1, Some(230_000), 1)
    );
    assert_eq!(a[1].handled_within_3min, 0);
}

/// A call answered by 1001, transferred to 1002 (40 s + 100 s of talk),
/// rated 2 after 1002 hung up; another by 1001 alone rated 5; a third
/// asked but not rated; one put on hold.
#[test]
fn transfers_split_handle_time_and_ratings_go_to_the_last_agent() {
    use hotline::cdr::{AgentPartRecord, TransferRecord};
    let mut t = connected(
        queued("t1", 0, 5_000, "repair"),
        3_000,
        140_000,
        ("1002", "008"),
        HangupSide::Agent,
    );
    t.transfers = vec![TransferRecord {
        from: Some("1001".into()),
        to: "agent:1002".into(),
        at: at(48_000),
        result: Some("answered".into()),
    }];
    t.agent_parts = vec![
        AgentPartRecord {
            agent: "1001".into(),
            talk_ms: 40_000,
        },
        AgentPartRecord {
            agent: "1002".into(),
            talk_ms: 100_000,
        },
    ];
    t.survey_offered = true;
    t.satisfaction = Some(2);
    let mut u = connected(
        queued("t2", 60_000, 5_000, "repair"),
        1_000,
        20_000,
        ("1001", "007"),
        HangupSide::Agent,
    );
    u.survey_offered = true;
    u.satisfaction = Some(5);
    u.holds = 1;
    u.hold_ms = Some(8_000);
    let mut v = connected(
        queued("t3", 120_000, 5_000, "repair"),
        1_000,
        30_000,
        ("1001", "007"),
        HangupSide::Agent,
    );
    v.survey_offered = true;
    let report = report_of(&[t, u, v], settings(None));
    let f = &report.total.figures;
    // One customer call each: three answered, one transferred.
    assert_eq!((f.agent_answered, f.transferred), (3, 1));
    assert_eq!((f.survey_offered, f.rated), (3, 2));
    assert!(close(f.survey_response_rate, 2.0 / 3.0));
    assert!(close(f.satisfaction_rate, 0.5));
    assert!(close(f.mean_rating, 3.5));
    assert_eq!((f.held_calls, f.mean_hold_ms), (1, Some(8_000)));
    // AHT per customer call: (140 + 20 + 30 s talk + 3 x 30 s wrap-up) / 3.
    assert_eq!(f.aht_ms, Some(280_000 / 3));
    let agent = |id: &str| {
        report
            .agents
            .iter()
            .find(|a| a.agent == id)
            .expect("agent row")
    };
    // 1001: its 40 s part of t1, then t2 and t3; rated once (5), by t2.
    let a = agent("1001");
    assert_eq!((a.calls, a.talk_ms), (3, 90_000));
    assert_eq!((a.survey_offered, a.rated), (2, 1));
    assert!(close(a.satisfaction_rate, 0.0));
    assert_eq!(a.hung_up_first, 2, "t1's hang-up was 1002's");
    // 1002: the 100 s after the transfer, the hang-up and the 2.
    let b = agent("1002");
    assert_eq!((b.calls, b.talk_ms, b.hung_up_first), (1, 100_000, 1));
    assert_eq!(b.number.as_deref(), Some("008"));
    assert!(close(b.satisfaction_rate, 1.0));
}

#[test]
fn from_and_to_select_by_arrival() {
    let mut s = settings(None);
    // [11:00, 11:10) local. Records 9..=15 arrive at 11:00 + 100 s, 200 s,
    // ..., 700 s: 9 to 13 (up to 11:08:20) are in; 14 at 11:10:00 is not
    // (to is exclusive), nor 15. In: 5; out: the other 15 - 5 = 10.
    s.from_ms = Some(BASE + HOUR);
    s.to_ms = Some(BASE + HOUR + 600_000);
    let report = report_of(&fixture(), s);
    assert_eq!(report.total.figures.offered, 5);
    assert_eq!(report.source.outside_range, 10);
    assert_eq!(report.intervals.len(), 1, "only the 11:00 hour");
}

// ---- properties ----------------------------------------------------------------

/// A record from a few random choices, over three local days.
fn arb_record() -> impl Strategy<Value = CallRecord> {
    (
        0u64..3 * 86_400_000,
        0u8..13,
        0u64..20_000,
        0u64..400_000,
        0u64..400_000,
        0usize..4,
        0usize..3,
        any::<bool>(),
    )
        .prop_map(|(arrival, kind, tta, wait, talk, agent, queue, flag)| {
            let queues = ["repair", "complaint", "consultation"];
            let agents = [
                ("1001", "007"),
                ("1002", "008"),
                ("1003", "011"),
                ("1004", "012"),
            ];
            let id = format!("p{arrival}");
            let mut r = match kind {
                0 => call(&id, arrival, Outcome::BadRequest),
                1 => call(&id, arrival, Outcome::OverCapacity),
                2 => answered(&id, arrival, tta, Outcome::SilentHangup),
                3 => answered(&id, arrival, tta, Outcome::Completed),
                4..=6 => {
                    let side = if flag {
                        HangupSide::Agent
                    } else {
                        HangupSide::Caller
                    };
                    connected(
                        queued(&id, arrival, 4000, queues[queue]),
                        wait,
                        talk,
                        agents[agent],
                        side,
                    )
                }
                7 => left(
                    queued(&id, arrival, 4000, queues[queue]),
                    "abandoned",
                    wait / 20,
                    flag,
                ),
                8 => left(
                    queued(&id, arrival, 4000, queues[queue]),
                    "timeout",
                    wait,
                    flag,
                ),
                // A callback booked: its task id from a few, so that
                // attempts below meet their requests.
                10 => CallRecord {
                    callback_task: Some(arrival % 7),
                    ..left(
                        queued(&id, arrival, 4000, queues[queue]),
                        "callback",
                        wait,
                        false,
                    )
                },
                // A task's call: a callback or a follow-up, some answered.
                11 | 12 => task_call(
                    arrival % 7,
                    if kind == 11 { "callback" } else { "follow_up" },
                    (wait % 3) as u32 + 1,
                    ["answered", "not_reached", "failed", "agent_left"][agent],
                    arrival,
                ),
                _ => left(
                    queued(&id, arrival, 4000, queues[queue]),
                    "exit_key",
                    wait,
                    flag,
                ),
            };
            if (4..=10).contains(&kind) {
                r.customer_class = Some(if flag { "group" } else { "public" }.into());
            }
            if kind == 3 && flag {
                r.repeat_of = Some("hl-1-1".into());
            }
            r
        })
}

fn prop_settings(by: Option<GroupBy>, interval: &str) -> Settings {
    Settings {
        interval: Interval::parse(interval).expect("interval"),
        utc_offset: CN,
        by,
        thresholds: Thresholds {
            service_level_ms: 15_000,
            short_abandon_ms: Some(5_000),
        },
        ..Settings::default()
    }
}

fn sum<'a>(rows: impl Iterator<Item = &'a hotline::report::Row>) -> Tally {
    let mut t = Tally::default();
    for r in rows {
        t.merge(&r.tally);
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn record_order_does_not_matter(
        (records, shuffled) in prop::collection::vec(arb_record(), 0..80)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        for by in [None, Some(GroupBy::Queue), Some(GroupBy::Agent), Some(GroupBy::Class)] {
            let a = report_of(&records, prop_settings(by, "1h"));
            let b = report_of(&shuffled, prop_settings(by, "1h"));
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn intervals_and_groups_add_up_to_the_total(
        records in prop::collection::vec(arb_record(), 0..80),
        by in prop::sample::select(vec![GroupBy::Queue, GroupBy::Agent, GroupBy::BusinessType, GroupBy::Class]),
        interval in prop::sample::select(vec!["15m", "1h", "1d"]),
    ) {
        let report = report_of(&records, prop_settings(Some(by), interval));
        let total = &report.total.tally;
        prop_assert_eq!(&sum(report.intervals.iter()), total);
        prop_assert_eq!(&sum(report.groups.iter()), total);
        prop_assert_eq!(&sum(report.rows.iter()), total);
        let agent_calls: u64 = report.agents.iter().map(|a| a.calls).sum();
        prop_assert_eq!(agent_calls, total.agent_answered);
        // Every call that asked for an agent ended one way.
        let t = total;
        prop_assert_eq!(
            t.asked_for_agent,
            t.agent_answered + t.abandoned + t.short_abandons + t.timeouts + t.overflows
                + t.exit_key + t.empty + t.refused + t.callbacks + t.other_queue_results
        );
        // Task calls are outbound: in no inbound figure.
        let inbound = records.iter().filter(|r| !r.is_outbound()).count() as u64;
        prop_assert_eq!(report.total.figures.offered + report.total.figures.invalid, inbound);
        let attempts: u64 = report.tasks.task_calls.iter().map(|k| k.attempts).sum();
        prop_assert_eq!(attempts, records.len() as u64 - inbound);
        prop_assert!(report.outbound.is_empty(), "task calls are no campaign's");
        let tasks = &report.tasks;
        prop_assert!(tasks.callback_answer_p50_ms <= tasks.callback_answer_p90_ms);
        prop_assert!(tasks.callbacks_timed <= tasks.callbacks_completed);
    }

    #[test]
    fn wait_percentiles_never_exceed_the_longest_wait(
        records in prop::collection::vec(arb_record(), 1..80),
    ) {
        let report = report_of(&records, prop_settings(Some(GroupBy::Queue), "1h"));
        for row in report.rows.iter().chain(&report.groups).chain([&report.total]) {
            let f = &row.figures;
            let longest = f.longest_wait_ms.unwrap_or(0);
            for p in [f.wait_p50_s, f.wait_p80_s, f.wait_p90_s, f.wait_p95_s, f.wait_p99_s] {
                prop_assert!(p.is_none_or(|s| s * 1000 <= longest), "{p:?} s above {longest} ms");
            }
            prop_assert!(f.wait_p50_s <= f.wait_p99_s);
        }
    }
}

// ---- bounded memory ------------------------------------------------------------

#[test]
fn a_million_records_in_bounded_state() {
    // 1000 distinct records over one day, fed 1000 times: the state after
    // the first pass must not grow, and the totals scale exactly.
    let pool: Vec<CallRecord> = (0..1000u64)
        .map(|i| {
            let arrival = i * 86_000; // spread over 86 000 s < 1 day
            let queue = ["repair", "complaint", "consultation"][(i % 3) as usize];
            match i % 4 {
                0 => connected(
                    queued(&format!("m{i}"), arrival, 4000, queue),
                    (i % 120) * 1000,
                    60_000 + i,
                    ("1001", "007"),
                    HangupSide::Caller,
                ),
                1 => left(
                    queued(&format!("m{i}"), arrival, 4000, queue),
                    "abandoned",
                    (i % 90 + 5) * 1000,
                    false,
                ),
                2 => answered(&format!("m{i}"), arrival, 2000, Outcome::Completed),
                _ => call(&format!("m{i}"), arrival, Outcome::OverCapacity),
            }
        })
        .collect();
    let mut acc = Accumulator::new(prop_settings(Some(GroupBy::Queue), "15m"));
    for r in &pool {
        acc.add(r);
    }
    let after_one_pass = acc.state_size();
    let started = std::time::Instant::now();
    for _ in 1..1000 {
        for r in &pool {
            acc.add(r);
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(acc.state_size(), after_one_pass, "state grew with records");
    // 86 000 s of arrivals: at most 96 quarter hours, x 4 groups (3
    // queues and "(none)" for calls never queued).
    assert!(after_one_pass.cells <= 96 * 4, "{after_one_pass:?}");
    let report = acc.finish(hotline::report::Source::default());
    // Each pass: 1000 offered (the 503s too), 250 connected, 250
    // abandoned (after 5 s or more: none is short). 1000 passes.
    assert_eq!(report.total.figures.offered, 1_000_000);
    assert_eq!(report.total.figures.agent_answered, 250_000);
    assert_eq!(report.total.figures.abandoned, 250_000);
    eprintln!("1,000,000 records through the accumulator in {elapsed:?}");
}

// ---- the command ---------------------------------------------------------------

/// The fixture written as a day's record file with a torn last line and a
/// foreign one; returns the folder.
fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text: String = fixture().iter().map(CallRecord::to_line).collect();
    text.push_str("not json at all\n");
    text.push_str("{\"version\":1,\"call_id\":\"torn");
    std::fs::write(dir.path().join("2026-11-25.jsonl"), text).expect("write");
    // The agent-attempt stream is not call records.
    std::fs::write(dir.path().join("offers-2026-11-25.jsonl"), "{}\n").expect("write");
    dir
}

fn hotline(args: &[&str]) -> std::process::Output {
    engine::command().args(args).output().expect("run hotline")
}

fn report_cmd(dir: &Path, extra: &[&str]) -> (String, String) {
    let path = dir.to_str().expect("utf-8 path");
    let mut args = vec![
        "report",
        path,
        "--utc-offset",
        "+08:00",
        "--short-abandon",
        "5s",
    ];
    if !extra.contains(&"--interval") {
        args.extend(["--interval", "1h"]);
    }
    args.extend_from_slice(extra);
    let out = hotline(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "hotline report failed: {stderr}");
    (stdout, stderr)
}

#[test]
fn csv_has_a_row_per_interval_and_a_total() {
    let dir = fixture_dir();
    let (csv, stderr) = report_cmd(dir.path(), &["--format", "csv"]);
    assert!(
        stderr.contains("warning: 2 torn or invalid line(s) skipped"),
        "{stderr}"
    );
    let lines: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let head = &lines[0];
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(lines.len(), 4, "header, 10:00, 11:00, total:\n{csv}");
    assert_eq!(lines[1][col("interval_start")], "2026-11-25T10:00:00+08:00");
    assert_eq!(lines[1][col("interval_end")], "2026-11-25T11:00:00+08:00");
    assert_eq!(lines[2][col("offered")], "7");
    let total = &lines[3];
    assert_eq!(total[col("row")], "total");
    assert_eq!(total[col("offered")], "13");
    // 11/13 = 0.84615... -> 0.8462; SL from arrival 1/8 = 0.125.
    assert_eq!(total[col("connection_rate")], "0.8462");
    assert_eq!(total[col("service_level_from_arrival")], "0.1250");
    assert_eq!(total[col("asa_ms")], "15667");
    assert_eq!(total[col("wait_p50_s")], "20");
    assert_eq!(total[col("records_read")], "15");
    assert_eq!(total[col("skipped_lines")], "2");
    // Every figure is a column.
    for c in hotline::report::format::COLUMNS {
        col(c.name);
    }
}

#[test]
fn json_has_a_stable_shape() {
    let dir = fixture_dir();
    let (json, _) = report_cmd(dir.path(), &["--format", "json", "--by", "queue"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["report_version"], 1);
    assert_eq!(v["settings"]["interval"], "1h");
    assert_eq!(v["settings"]["utc_offset"], "+08:00");
    assert_eq!(v["settings"]["by"], "queue");
    assert_eq!(v["settings"]["service_level_ms"], 15_000);
    assert_eq!(v["settings"]["short_abandon_ms"], 5_000);
    assert_eq!(v["source"]["skipped_lines"], 2);
    assert_eq!(v["source"]["records"], 15);
    assert_eq!(v["total"]["figures"]["offered"], 13);
    assert_eq!(v["total"]["figures"]["lost"], 6);
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["rows"][0]["group"], "(none)");
    assert_eq!(v["rows"][0]["label"], "2026-11-25 10:00");
    assert_eq!(v["agents"][1]["hung_up_first"], 1);
    // Waits in whole seconds: 0 3 8 9 20 30 40 60 300, one call each.
    assert_eq!(v["wait_histogram"].as_array().map(Vec::len), Some(9));
    assert_eq!(v["wait_histogram"][8], serde_json::json!([300, 1]));
}

#[test]
fn the_table_fits_100_columns() {
    let dir = fixture_dir();
    let (table, _) = report_cmd(dir.path(), &[]);
    assert!(table.contains("2 torn or invalid lines skipped"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }
    // Two hours and the total, transposed: every figure is a row.
    assert!(table.contains("Service level from arrival"));
    let sl = table
        .lines()
        .find(|l| l.starts_with("Service level from arrival"))
        .expect("SL row");
    // 10:00: 1/2; 11:00: 0/6; total 1/8.
    assert!(
        sl.split_whitespace()
            .eq("Service level from arrival 50.0% 0.0% 12.5%".split_whitespace()),
        "{sl}"
    );
    // With quarter hours over a whole day: one line per interval.
    let (wide, _) = report_cmd(dir.path(), &["--interval", "15m", "--by", "queue"]);
    for line in wide.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let out = hotline(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn config_api_settings_are_the_defaults_and_flags_win() {
    let dir = fixture_dir();
    let config = api_config::write(dir.path());
    let (path, config) = (
        dir.path().to_str().expect("path"),
        config.to_str().expect("path"),
    );
    let base = ["report", path, "--format", "json", "--interval", "1h"];
    let with_config = json_of(&[&base[..], &["--config", config]].concat());
    let s = &with_config["settings"];
    assert_eq!(s["utc_offset"], "+05:30");
    assert_eq!(s["service_level_ms"], 20_000);
    assert_eq!(s["short_abandon_ms"], 4_000);
    assert_eq!(s["target"], 0.9);
    // The same report as with those values given as flags.
    let flags = [
        "--utc-offset",
        "+05:30",
        "--service-level",
        "20s",
        "--short-abandon",
        "4s",
        "--target",
        "90%",
    ];
    assert_eq!(with_config, json_of(&[&base[..], &flags].concat()));
    // Without --config: +00:00, 15 s, 80%, short abandons off.
    let plain = json_of(&base);
    assert_eq!(plain["settings"]["utc_offset"], "+00:00");
    assert_eq!(plain["settings"]["service_level_ms"], 15_000);
    assert_eq!(
        plain["settings"]["short_abandon_ms"],
        serde_json::Value::Null
    );
    assert_eq!(plain["settings"]["target"], 0.8);
    // Flags win over the config; 0s turns short abandons off.
    let overridden = json_of(
        &[
            &base[..],
            &[
                "--config",
                config,
                "--utc-offset",
                "+08:00",
                "--service-level",
                "10s",
                "--short-abandon",
                "0s",
                "--target",
                "70%",
            ],
        ]
        .concat(),
    );
    let s = &overridden["settings"];
    assert_eq!(s["utc_offset"], "+08:00");
    assert_eq!(s["service_level_ms"], 10_000);
    assert_eq!(s["short_abandon_ms"], serde_json::Value::Null);
    assert_eq!(s["target"], 0.7);
    // A config that cannot be read is an error naming it.
    let out = hotline(&[&base[..], &["--config", "/nonexistent/hotline.toml"]].concat());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hotline.toml"));
}

#[test]
fn queue_names_are_whole_in_the_table() {
    // The fixture's queues plus "consultation", longer than the narrowest
    // column (10).
    let dir = fixture_dir();
    let extra: String = [
        connected(
            queued("c1", 600_000, 4_000, "consultation"),
            7_000,
            60_000,
            ("1001", "007"),
            HangupSide::Caller,
        ),
        left(
            queued("c2", HOUR + 600_000, 4_000, "consultation"),
            "abandoned",
            12_000,
            false,
        ),
    ]
    .iter()
    .map(CallRecord::to_line)
    .collect();
    std::fs::write(dir.path().join("2026-11-25-b.jsonl"), extra).expect("write");
    let (json, _) = report_cmd(dir.path(), &["--format", "json", "--by", "queue"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let names: Vec<String> = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["group"].as_str().expect("name").to_string())
        .collect();
    assert!(names.iter().any(|n| n.chars().count() > 10), "{names:?}");
    // One day: the queues are the columns. Hours: a line per (hour,
    // queue), then the queues' totals as columns.
    for interval in ["1d", "1h"] {
        let (table, _) = report_cmd(dir.path(), &["--by", "queue", "--interval", interval]);
        let heading = table
            .lines()
            .find(|l| l.trim_start().starts_with(names[0].as_str()))
            .unwrap_or_else(|| panic!("no heading line of queues:\n{table}"));
        let heads: Vec<&str> = heading.split_whitespace().collect();
        let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
        want.push("Total");
        assert_eq!(heads, want, "{interval}:\n{table}");
        assert!(
            !table.contains('~'),
            "a name was cut ({interval}):\n{table}"
        );
        for line in table.lines() {
            assert!(line.chars().count() <= 100, "too wide: {line:?}");
        }
    }
}

#[test]
fn bad_arguments_are_refused() {
    let dir = fixture_dir();
    let path = dir.path().to_str().expect("path");
    for args in [
        vec!["report", path, "--interval", "7m"],
        vec!["report", path, "--utc-offset", "8"],
        vec!["report", path, "--from", "yesterday"],
        vec!["report", path, "--format", "pdf"],
        vec!["report", "/nonexistent/cdr"],
    ] {
        let out = hotline(&args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn output_goes_to_a_file() {
    let dir = fixture_dir();
    let out = dir.path().join("r.csv");
    let (stdout, _) = report_cmd(
        dir.path(),
        &["--format", "csv", "-o", out.to_str().expect("path")],
    );
    assert!(stdout.is_empty());
    let csv = std::fs::read_to_string(&out).expect("written");
    assert!(csv.starts_with("row,interval_start"));
}

/// The HTML report of the fixture.
fn html_report(dir: &Path) -> (std::path::PathBuf, String) {
    let file = dir.join("report.html");
    report_cmd(
        dir,
        &["--format", "html", "-o", file.to_str().expect("path")],
    );
    let html = std::fs::read_to_string(&file).expect("html");
    (file, html)
}

#[test]
fn the_html_is_one_self_contained_file() {
    let dir = fixture_dir();
    let (_, html) = html_report(dir.path());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no JavaScript");
    // Nothing fetched: the only URL is SVG's namespace name.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!html.contains("<link") && !html.contains("<img") && !html.contains("@import"));
    assert!(
        html.contains("id=\"skipped\""),
        "the skipped lines are said"
    );
}

#[test]
fn chromium_renders_the_charts() {
    let Some(browser) = chromium::find() else {
        return;
    };
    let dir = fixture_dir();
    let (page, _) = html_report(dir.path());
    let dom = chromium::dump_dom(&browser, &page);
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(count("<svg class=\"chart "), 3, "three charts");
    // One SL point per hour (both hours had callers waiting), one target
    // line, one SL path.
    assert_eq!(count("class=\"sl-point\""), 2);
    assert_eq!(count("class=\"target-line\""), 1);
    assert_eq!(count("class=\"sl-line\""), 1);
    // Offered in both hours, connected in both (7, 8; 9), abandoned only
    // in the second (10; 11 is short).
    assert_eq!(count("class=\"bar offered\""), 2);
    assert_eq!(count("class=\"bar answered\""), 2);
    assert_eq!(count("class=\"bar abandoned\""), 1);
    // Waits 0..300 s in 15 s bins (300 s / 15 = 20 bins fit the 40 and 15
    // s = T is an edge). Bin k holds (15k, 15k + 15]: 0, 3, 8, 9 -> bin 0;
    // 20, 30 -> 1; 40 -> 2; 60 -> 3; 300 -> 19: five bars.
    assert_eq!(count("class=\"bar wait\""), 5);
    assert_eq!(count("class=\"t-line\""), 1);
    // The agents' table: 1001 and 1002.
    assert!(dom.contains("<td>1001</td>") && dom.contains("<td>1002</td>"));
    let png = dir.path().join("report.png");
    let bytes = chromium::screenshot(&browser, &page, &png, 1280, 2000);
    assert!(
        bytes > 10_000,
        "a real picture, not a blank page ({bytes} bytes)"
    );
    assert_eq!(chromium::png_size(&png), (1280, 2000));
}

/// Outbound attempts: counted per campaign, never in the inbound figures.
#[test]
fn outbound_attempts_have_their_own_figures_and_leave_the_inbound_ones_alone() {
    let inbound = report_of(&fixture(), settings(Some(5_000)));
    let attempt = |n: u64, number: &str, result: &str, answered: bool| {
        let mut r = call(
            &format!("out{n}"),
            3_600_000 * 10 + n * 1000,
            Outcome::Unanswered,
        );
        r.direction = Some("outbound".into());
        r.campaign = Some(3);
        r.campaign_name = Some("payment reminder".into());
        r.dialled_number = number.into();
        r.attempt_result = Some(result.into());
        if answered {
            r.answered_at = Some(r.invite_at.clone());
            r.outcome = Outcome::Completed;
        }
        r
    };
    let mut records = fixture();
    records.extend([
        attempt(1, "13800000001", "busy", false),
        attempt(2, "13800000001", "confirmed", true),
        attempt(3, "13800000002", "invalid", false),
        attempt(4, "13800000003", "no_answer", false),
    ]);
    let both = report_of(&records, settings(Some(5_000)));
    assert_eq!(
        both.total.figures, inbound.total.figures,
        "inbound figures unchanged"
    );
    assert_eq!(both.outbound.len(), 1);
    let c = &both.outbound[0];
    assert_eq!((c.campaign, c.numbers, c.attempts), (3, 3, 4));
    assert_eq!(
        (c.reached, c.confirmed, c.invalid, c.not_reached),
        (1, 1, 1, 1)
    );
    assert_eq!(c.results["busy"], 1);
    let table = hotline::report::format::table::render(&both);
    assert!(table.contains("Outbound"), "{table}");
    assert!(table.contains("3 payment reminder"), "{table}");
}

/// Callbacks, task calls and repeat contacts: the fixture with three
/// callbacks booked, two repeat callers and the calls placed for tasks;
/// figures from `report_of`, then the same records through the command.
#[test]
fn callbacks_task_calls_and_repeat_contacts() {
    let inbound = report_of(&fixture(), settings(Some(5_000)));
    let booked = |id: &str, arrival: u64, task: u64| CallRecord {
        callback_task: Some(task),
        ..left(
            queued(id, arrival, 5_000, "repair"),
            "callback",
            90_000,
            false,
        )
    };
    // Requests end 1 s after arrival: at 11:15:01, 11:20:01, 11:25:01.
    let (r1, r2, r3) = (HOUR + 900_000, HOUR + 1_200_000, HOUR + 1_500_000);
    let mut records = fixture();
    // 5 (served by the IVR) and 9 (slow) called within the window before.
    records[4].repeat_of = Some("hl-1-50".into());
    records[8].repeat_of = Some("hl-1-90".into());
    records.extend([
        booked("cb1", r1, 101),
        booked("cb2", r2, 102),
        booked("cb3", r3, 103),
        // 101: not reached, then answered (10 s into the call) 20 min
        // after the request ended.
        task_call(101, "callback", 1, "not_reached", r1 + 300_000),
        task_call(
            101,
            "callback",
            2,
            "answered",
            r1 + 1000 + 1_200_000 - 10_000,
        ),
        // 102: answered at the first attempt, 40 min after the request.
        task_call(
            102,
            "callback",
            1,
            "answered",
            r2 + 1000 + 2_400_000 - 10_000,
        ),
        // 103: not reached, then the trunk failed: a failed callback.
        task_call(103, "callback", 1, "not_reached", r3 + 300_000),
        task_call(103, "callback", 2, "failed", r3 + 900_000),
        // Tasks left by calls.
        task_call(201, "follow_up", 1, "answered", 2 * HOUR),
        task_call(202, "message", 1, "not_reached", 2 * HOUR),
        task_call(202, "message", 2, "agent_left", 2 * HOUR + 600_000),
    ]);
    let report = report_of(&records, settings(Some(5_000)));
    let (f, before) = (&report.total.figures, &inbound.total.figures);
    // The three callbacks: offered, asked for an agent, neither abandoned
    // nor lost.
    assert_eq!(f.offered, before.offered + 3);
    assert_eq!(f.asked_for_agent, before.asked_for_agent + 3);
    assert_eq!((f.callbacks, before.callbacks), (3, 0));
    assert_eq!(f.abandoned, before.abandoned);
    assert_eq!(f.lost, before.lost, "a booked callback is not lost");
    assert_eq!(f.other_queue_results, 0);
    // Repeat contacts: 2 of 13 + 3 = 16 offered: 12.5%.
    assert_eq!(f.repeat_contacts, 2);
    assert!(close(f.repeat_contact_rate, 2.0 / 16.0));
    // Task calls are no campaign's, and not inbound.
    assert!(report.outbound.is_empty());
    let t = &report.tasks;
    assert_eq!(t.callbacks_requested, 3);
    assert_eq!((t.callbacks_completed, t.callbacks_failed), (2, 1));
    // Times: 20 min and 40 min. Nearest rank: p50 = 1st, p90 = 2nd.
    assert_eq!(t.callbacks_timed, 2);
    assert_eq!(t.callback_answer_p50_ms, Some(1_200_000));
    assert_eq!(t.callback_answer_p90_ms, Some(2_400_000));
    let kinds: Vec<(&str, u64, u64)> = t
        .task_calls
        .iter()
        .map(|k| (k.kind.as_str(), k.attempts, k.answered))
        .collect();
    assert_eq!(
        kinds,
        [
            ("callback", 5, 2),
            ("message", 2, 0),
            ("follow_up", 1, 1),
            ("complaint", 0, 0),
        ]
    );
    assert!(t.repeat_contact_above_target);
    // The order of the records does not matter.
    let mut reversed = records.clone();
    reversed.reverse();
    assert_eq!(report_of(&reversed, settings(Some(5_000))), report);

    // The same through `hotline report`: JSON and the table.
    let dir = tempfile::tempdir().expect("tempdir");
    let text: String = records.iter().map(CallRecord::to_line).collect();
    std::fs::write(dir.path().join("2026-11-25.jsonl"), text).expect("write");
    let (json, _) = report_cmd(dir.path(), &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let tasks = &v["tasks"];
    assert_eq!(tasks["callbacks_requested"], 3);
    assert_eq!(tasks["callbacks_completed"], 2);
    assert_eq!(tasks["callbacks_failed"], 1);
    assert_eq!(tasks["callback_answer_p50_ms"], 1_200_000);
    assert_eq!(tasks["callback_answer_p90_ms"], 2_400_000);
    assert_eq!(tasks["task_calls"][0]["kind"], "callback");
    assert_eq!(tasks["task_calls"][0]["attempts"], 5);
    assert_eq!(tasks["task_calls"][2]["answered"], 1);
    assert_eq!(tasks["repeat_contacts"], 2);
    assert_eq!(tasks["repeat_contact_rate"], 0.125);
    assert_eq!(tasks["repeat_contact_target"], 0.05);
    assert_eq!(tasks["repeat_contact_above_target"], true);
    assert_eq!(v["total"]["figures"]["callbacks"], 3);
    assert_eq!(v["total"]["figures"]["repeat_contact_rate"], 0.125);
    assert_eq!(v["outbound"].as_array().map(Vec::len), Some(0));
    let (table, _) = report_cmd(dir.path(), &[]);
    for line in table.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }
    assert!(table.contains("Callbacks and tasks"), "{table}");
    let row = |label: &str| {
        table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("Callbacks completed"), "Callbacks completed 2");
    assert_eq!(row("Callbacks failed"), "Callbacks failed 1");
    assert_eq!(
        row("Request to answer, median"),
        "Request to answer, median 20m 00s"
    );
    assert_eq!(
        row("Request to answer, p90"),
        "Request to answer, p90 40m 00s"
    );
    // The figures' own row has a value per hour; the section's one the
    // verdict.
    let verdict = table
        .lines()
        .find(|l| l.contains("target"))
        .expect("the repeat-contact verdict");
    assert!(
        verdict.starts_with("Repeat-contact rate")
            && verdict.ends_with("12.5%  ABOVE the 5.0% target"),
        "{verdict}"
    );
    assert_eq!(row("follow_up"), "follow_up 1 1 100.0%");
    // Without repeat callers the rate is within the target.
    for r in &mut records {
        r.repeat_of = None;
    }
    let calm = report_of(&records, settings(None));
    assert_eq!(calm.tasks.repeat_contact_rate, Some(0.0));
    assert!(!calm.tasks.repeat_contact_above_target);
    let calm_table = hotline::report::format::table::render(&calm);
    assert!(
        calm_table.contains("within the 5.0% target"),
        "{calm_table}"
    );
    // With no callbacks, tasks or repeat callers, no section.
    let plain = hotline::report::format::table::render(&inbound);
    assert!(!plain.contains("Callbacks and tasks"), "{plain}");
}
