//! Voice-notice campaigns through the whole pure engine in simulated
//! time, with the real embedded store: the standard's schedule to the
//! millisecond, results that stop or retry, keys, early media, a trunk's
//! digest challenge and limits, the do-not-call list, a restart in the
//! middle, and a caller who calls back.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hotline::campaign::{CampaignId, NumberState};
use hotline::config::TrunkConfig;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::MediaEvent;
use serde_json::json;

const MIN: Duration = Duration::from_secs(60);

fn sim_with(t: TrunkConfig) -> Sim {
    Sim::new(config(|c| c.trunks.push(t)))
}

fn notice(numbers: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut v =
        json!({"name": "gas outage", "trunk": "pstn", "prompt": "goodbye", "numbers": numbers});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Requests of `method` sent to the trunk, in order, retransmissions
/// left out: (when first sent, text).
fn requests(sim: &Sim, method: &str) -> Vec<(Instant, String)> {
    let mut seen = std::collections::HashSet::new();
    sim.sent
        .iter()
        .filter(|s| s.peer == trunk_peer() && s.text.starts_with(&format!("{method} ")))
        .filter(|s| {
            seen.insert((
                header(&s.text, "Call-ID").to_string(),
                header(&s.text, "CSeq").to_string(),
            ))
        })
        .map(|s| (s.at, s.text.clone()))
        .collect()
}

/// INVITEs sent to the trunk (not their retransmissions).
fn invites(sim: &Sim) -> Vec<(Instant, String)> {
    requests(sim, "INVITE")
}

/// The INVITEs a test has looked at so far.
#[derive(Default)]
struct Seen(usize);

impl Seen {
    /// The next INVITE to the trunk not looked at yet, running the clock
    /// until it leaves (at most `limit`).
    fn next(&mut self, sim: &mut Sim, limit: Duration) -> (Instant, String) {
        let seen = self.0;
        run_until(sim, limit, "an INVITE to the trunk", |s| {
            invites(s).len() > seen
        });
        self.0 += 1;
        invites(sim)[seen].clone()
    }
}

fn number_state(sim: &Sim, id: CampaignId, i: usize) -> NumberState {
    sim.engine.campaign(id).expect("campaign").targets[i].state
}

#[test]
fn busy_every_time_gets_exactly_four_attempts_on_the_standard_schedule() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let id = sim.create_campaign(notice(&["13800000001"], json!({})));
    let t0 = sim.now;
    let mut expected = t0 + MIN;
    for (attempt, wait) in [10 * MIN, 60 * MIN, 180 * MIN, Duration::ZERO]
        .into_iter()
        .enumerate()
    {
        let (at, inv) = seen.next(&mut sim, 4 * 3600 * MIN / 60);
        assert_eq!(at, expected, "attempt {} at the millisecond", attempt + 1);
        assert!(
            inv.starts_with("INVITE sip:13800000001@127.0.0.1:5090 SIP/2.0"),
            "{inv}"
        );
        assert!(
            inv.contains("From: \"4008001234\" <sip:4008001234@"),
            "{inv}"
        );
        sim.run_for(Duration::from_secs(3));
        trunk_says(&mut sim, &inv, 180, "");
        sim.run_for(Duration::from_secs(1));
        trunk_says(&mut sim, &inv, 486, "");
        expected = sim.now + wait;
    }
    // No fifth call, however long we wait.
    sim.run_for(24 * 60 * MIN);
    assert_eq!(invites(&sim).len(), 4);
    assert_eq!(number_state(&sim, id, 0), NumberState::Failed);
    let results: Vec<_> = sim
        .records
        .iter()
        .map(|r| (r.attempt, r.attempt_result.clone(), r.sip_status))
        .collect();
    assert_eq!(
        results,
        (1..=4)
            .map(|n| (Some(n), Some("busy".to_string()), 486))
            .collect::<Vec<_>>()
    );
    assert!(sim
        .records
        .iter()
        .all(|r| r.is_outbound() && r.campaign == Some(id.0)));
    assert!(sim
        .records
        .iter()
        .all(|r| r.dialled_number == "13800000001"));
}

#[test]
fn an_answer_hears_the_notice_and_the_confirm_key_ends_the_campaign_for_that_number() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let id = sim.create_campaign(notice(
        &["13800000001"],
        json!({"first_after": "0s", "confirm_key": "1", "repeat_key": "2"}),
    ));
    let (_, inv) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &inv, 200, "");
    let ack = sim.sent.last().expect("ACK").text.clone();
    assert!(ack.starts_with("ACK sip:callee@127.0.0.1:5090"), "{ack}");
    let call = *sim.media_started.last().expect("the callee's media opened");
    assert_eq!(sim.played_names(), ["goodbye"], "the notice plays");
    sim.run_for(Duration::from_secs(1));
    // "2" plays it again from the start; "1" confirms.
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '2',
            source: DigitSource::Rfc4733,
        },
    );
    assert_eq!(sim.played_names(), ["goodbye", "goodbye"]);
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '1',
            source: DigitSource::Rfc4733,
        },
    );
    let bye = sim.sent.last().expect("BYE").text.clone();
    assert!(
        bye.starts_with("BYE sip:callee@"),
        "hung up after the confirmation: {bye}"
    );
    assert_eq!(number_state(&sim, id, 0), NumberState::Confirmed);
    let r = sim.records.last().expect("record");
    assert_eq!(r.attempt_result.as_deref(), Some("confirmed"));
    assert_eq!(r.digits, "21");
    assert!(r.answered_at.is_some());
    sim.run_for(24 * 60 * MIN);
    assert_eq!(
        invites(&sim).len(),
        1,
        "a confirmed number is not called again"
    );
}

#[test]
fn without_a_confirm_key_a_notice_heard_to_its_end_is_success_and_unconfirmed_retries() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let heard = sim.create_campaign(notice(&["13800000001"], json!({"first_after": "0s"})));
    let (_, inv) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &inv, 200, "");
    sim.run_for(sim.duration_of("goodbye") + Duration::from_millis(100));
    assert_eq!(number_state(&sim, heard, 0), NumberState::Confirmed);
    assert_eq!(
        sim.records
            .last()
            .and_then(|r| r.attempt_result.clone())
            .as_deref(),
        Some("heard")
    );

    // With a confirm key, silence after the notice is not a confirmation:
    // the number is called again 10 minutes later.
    let unconfirmed = sim.create_campaign(notice(
        &["13800000002"],
        json!({"first_after": "0s", "confirm_key": "1"}),
    ));
    let (_, inv) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &inv, 200, "");
    sim.run_for(sim.duration_of("goodbye") + Duration::from_secs(6));
    assert_eq!(
        number_state(&sim, unconfirmed, 0),
        NumberState::WaitingRetry
    );
    assert_eq!(
        sim.records
            .last()
            .and_then(|r| r.attempt_result.clone())
            .as_deref(),
        Some("unconfirmed")
    );
    let ended = sim.now;
    let (at, _) = seen.next(&mut sim, 11 * MIN);
    assert!(
        at - ended <= 10 * MIN && at - ended > 9 * MIN,
        "{:?}",
        at - ended
    );
}

#[test]
fn early_media_is_not_an_answer_and_an_invalid_number_is_tried_once() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let id = sim.create_campaign(notice(
        &["13800000001", "19900000000"],
        json!({"first_after": "0s"}),
    ));
    let (_, busy) = seen.next(&mut sim, MIN);
    let (_, invalid) = seen.next(&mut sim, MIN);
    let (busy, invalid) = if busy.contains("13800000001") {
        (busy, invalid)
    } else {
        (invalid, busy)
    };
    // 183 with SDP (a carrier's announcement), then 486.
    trunk_says(&mut sim, &busy, 183, "");
    sim.run_for(Duration::from_secs(5));
    assert!(sim.media_started.is_empty(), "no media for early media");
    assert!(sim.played.is_empty(), "the notice waits for an answer");
    trunk_says(&mut sim, &busy, 486, "");
    trunk_says(&mut sim, &invalid, 404, "");
    assert_eq!(number_state(&sim, id, 0), NumberState::WaitingRetry);
    assert_eq!(number_state(&sim, id, 1), NumberState::Invalid);
    sim.run_for(5 * 60 * MIN);
    let to_invalid = invites(&sim)
        .iter()
        .filter(|(_, t)| t.starts_with("INVITE sip:19900000000@"))
        .count();
    assert_eq!(to_invalid, 1);
}

#[test]
fn a_trunk_that_challenges_is_answered_with_digest_credentials() {
    let mut sim = sim_with(trunk(30, 10, true));
    let mut seen = Seen::default();
    sim.create_campaign(notice(&["13800000001"], json!({"first_after": "0s"})));
    let (_, first) = seen.next(&mut sim, MIN);
    assert!(!first.contains("Authorization"));
    trunk_says(
        &mut sim,
        &first,
        407,
        "Proxy-Authenticate: Digest realm=\"pstn\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n",
    );
    let ack = &sim.sent[sim.sent.len() - 2].text;
    assert!(
        ack.starts_with("ACK sip:13800000001@127.0.0.1:5090"),
        "the 407 is ACKed: {ack}"
    );
    let second = sim.sent.last().expect("INVITE again").text.clone();
    assert!(second.starts_with("INVITE sip:13800000001@"), "{second}");
    let auth = header(&second, "Proxy-Authorization");
    assert!(auth.starts_with("Digest username=\"hotline\""), "{auth}");
    assert!(
        auth.contains("realm=\"pstn\"") && auth.contains("nonce=\"n0nce\""),
        "{auth}"
    );
    assert_eq!(
        header(&second, "Call-ID"),
        header(&first, "Call-ID"),
        "same call"
    );
    assert_eq!(header(&second, "CSeq"), "2 INVITE");
    // The password is never in a message.
    assert!(sim.sent.iter().all(|s| !s.text.contains("trunk-secret")));
    trunk_says(&mut sim, &second, 200, "");
    assert_eq!(sim.media_started.len(), 1, "answered after the challenge");
}

#[test]
fn a_burst_of_numbers_never_exceeds_the_trunks_channels_or_call_rate() {
    let mut sim = sim_with(trunk(5, 2, false));
    let numbers: Vec<String> = (0..40).map(|i| format!("1380000{i:04}")).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    sim.create_campaign(notice(
        &refs,
        json!({"first_after": "0s", "ring_timeout": "20s"}),
    ));
    // Every callee lets it ring out; step in small steps and check the caps.
    let start = sim.now;
    let mut most_at_once = 0;
    while sim.now < start + 10 * MIN {
        sim.run_for(Duration::from_millis(100));
        let placed = invites(&sim).len();
        let cancels = requests(&sim, "CANCEL");
        let cancelled = cancels.len();
        // Answer each CANCEL's INVITE with 487, as a phone does.
        let open: Vec<String> = cancels.into_iter().map(|(_, t)| t).collect();
        for c in open {
            let call_id = header(&c, "Call-ID").to_string();
            if sim
                .sent
                .iter()
                .any(|s| s.text.starts_with("ACK ") && s.text.contains(&call_id))
            {
                continue;
            }
            let inv = invites(&sim)
                .into_iter()
                .find(|(_, t)| header(t, "Call-ID") == call_id)
                .expect("its INVITE")
                .1;
            trunk_says(&mut sim, &inv, 487, "");
        }
        most_at_once = most_at_once.max(placed.saturating_sub(cancelled));
    }
    assert!(
        most_at_once <= 5,
        "{most_at_once} calls at once through a 5-channel trunk"
    );
    let times: Vec<Instant> = invites(&sim).iter().map(|(t, _)| *t).collect();
    for (i, t) in times.iter().enumerate() {
        let in_second = times[i..]
            .iter()
            .take_while(|x| **x < *t + Duration::from_secs(1))
            .count();
        assert!(in_second <= 2, "{in_second} INVITEs in one second at 2/s");
    }
    assert!(times.len() >= 40, "every number was tried: {}", times.len());
}

#[test]
fn the_do_not_call_list_and_the_opt_out_key_stop_calls() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let first = sim.create_campaign(notice(
        &["13800000001"],
        json!({"first_after": "0s", "optout_key": "9"}),
    ));
    let (_, inv) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &inv, 200, "");
    let call = *sim.media_started.last().expect("media");
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '9',
            source: DigitSource::Rfc4733,
        },
    );
    assert_eq!(number_state(&sim, first, 0), NumberState::OptedOut);
    // A later campaign to the same number (written another way) never
    // calls it: the opt-out is on the do-not-call list.
    let second = sim.create_campaign(notice(
        &["+86 138 0000 0001", "13800000002"],
        json!({"first_after": "0s"}),
    ));
    sim.run_for(MIN);
    let called: Vec<String> = invites(&sim)
        .iter()
        .map(|(_, t)| t.lines().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(called.len(), 2, "{called:?}");
    assert!(called[1].starts_with("INVITE sip:13800000002@"));
    assert_eq!(number_state(&sim, second, 0), NumberState::OptedOut);
    // The API adds numbers too.
    sim.act(|e, now| e.add_do_not_call(now, "13800000003"));
    let third = sim.create_campaign(notice(&["13800000003"], json!({"first_after": "0s"})));
    sim.run_for(MIN);
    assert_eq!(number_state(&sim, third, 0), NumberState::OptedOut);
    assert_eq!(invites(&sim).len(), 2);
}

#[test]
fn a_restart_mid_campaign_neither_loses_nor_repeats_an_attempt() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let id = sim.create_campaign(notice(
        &["13800000001", "13800000002"],
        json!({"first_after": "0s"}),
    ));
    let (_, a) = seen.next(&mut sim, MIN);
    let (_, _b) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &a, 486, "");
    // The engine dies (kill -9) with the second attempt on the line.
    let dir = sim.store_dir.clone();
    let crashed_at = sim.wall_ms();
    drop(sim);

    let later = crashed_at + 20_000;
    let mut sim = Sim::with_store(
        config(|c| c.trunks.push(trunk(30, 10, false))),
        dir,
        Instant::now(),
        later,
    );
    let mut seen = Seen::default();
    // The interrupted attempt has its record and is not dialled again now.
    let interrupted: Vec<_> = sim
        .records
        .iter()
        .filter(|r| r.attempt_result.as_deref() == Some("interrupted"))
        .collect();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].attempt, Some(1));
    sim.run_for(9 * MIN);
    assert!(invites(&sim).is_empty(), "nothing is repeated at once");
    // Both numbers' second attempts come on the schedule: the busy one 10
    // minutes after its 486, the interrupted one 10 minutes after the
    // restart.
    let (at, inv) = seen.next(&mut sim, 2 * MIN);
    let (at2, inv2) = seen.next(&mut sim, 2 * MIN);
    let mut got = [
        inv.lines().next().unwrap_or("").to_string(),
        inv2.lines().next().unwrap_or("").to_string(),
    ];
    got.sort();
    assert!(
        got[0].starts_with("INVITE sip:13800000001@")
            && got[1].starts_with("INVITE sip:13800000002@"),
        "{got:?}"
    );
    assert!(at2 - sim.t0 <= 10 * MIN && at - sim.t0 < 10 * MIN);
    let c = sim.engine.campaign(id).expect("campaign");
    assert!(
        c.targets.iter().all(|t| t.attempts.len() == 2),
        "second attempts, not repeats of the first"
    );
}

#[test]
fn a_number_that_heard_a_notice_and_calls_the_hotline_is_recognised() {
    let mut sim = sim_with(trunk(30, 10, false));
    let mut seen = Seen::default();
    let id = sim.create_campaign(notice(&["13800138000"], json!({"first_after": "0s"})));
    let (_, inv) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &inv, 200, "");
    sim.run_for(sim.duration_of("goodbye") + Duration::from_secs(1));
    // The test caller's number is 13800138000 (tests/common invite()).
    sim.send(&invite("back", "z9hG4bK-back", Some(SDP_OFFER)));
    sim.run_for(Duration::from_secs(3));
    let tag = sim.to_tag_for("back");
    sim.send(&in_dialog("BYE", "back", "z9hG4bK-bye", 2, &tag, None));
    let r = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "back")
        .expect("record");
    assert!(!r.is_outbound());
    assert_eq!(r.campaign, Some(id.0));
    assert_eq!(r.campaign_name.as_deref(), Some("gas outage"));
}

/// The IVR can branch on a recent notice: an `notified` node sends the
/// caller who heard "gas outage" one way, anyone else the usual way.
#[test]
fn the_ivr_branches_on_a_notice_heard_lately() {
    let text = hotline::config::DEFAULT_TOML
        .replace("entry = \"welcome\"", "entry = \"after_notice\"")
        .replace(
            "[ivr.schedules.office]",
            "[ivr.nodes.after_notice]\ntype = \"notified\"\ncampaign = \"gas outage\"\nyes = \"again\"\nno = \"welcome\"\n\n[ivr.nodes.again]\ntype = \"play\"\nprompt = \"goodbye\"\nnext = \"welcome\"\n\n[ivr.schedules.office]",
        );
    let mut c =
        hotline::config::Config::parse(&text, "test", std::path::Path::new(".")).expect("config");
    c.trunks.push(trunk(30, 10, false));
    let mut sim = Sim::new(c);
    let mut seen = Seen::default();
    // Before any notice: the usual greeting.
    sim.send(&invite("before", "z9hG4bK-b", Some(SDP_OFFER)));
    sim.run_for(Duration::from_secs(2));
    let tag = sim.to_tag_for("before");
    sim.send(&in_dialog("ACK", "before", "z9hG4bK-ba", 1, &tag, None));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.played_names(), ["greeting"]);
    sim.send(&in_dialog("BYE", "before", "z9hG4bK-bb", 2, &tag, None));

    sim.create_campaign(notice(&["13800138000"], json!({"first_after": "0s"})));
    let (_, inv) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &inv, 200, "");
    sim.run_for(sim.duration_of("goodbye") + Duration::from_secs(1));
    sim.played.clear();
    sim.send(&invite("after", "z9hG4bK-a", Some(SDP_OFFER)));
    sim.run_for(Duration::from_secs(2));
    let tag = sim.to_tag_for("after");
    sim.send(&in_dialog("ACK", "after", "z9hG4bK-aa", 1, &tag, None));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.played_names(), ["goodbye"], "the notice's own branch");
    sim.send(&in_dialog("BYE", "after", "z9hG4bK-ab", 2, &tag, None));
    let r = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "after")
        .expect("record");
    assert_eq!(r.ivr_path.first().map(String::as_str), Some("after_notice"));
}

/// The live view shows each trunk's channels in use and each campaign's
/// numbers by state, in /api/v1/status and /metrics.
#[test]
fn the_live_view_shows_trunk_channels_and_campaign_progress() {
    let mut sim = sim_with(trunk(5, 10, false));
    let mut seen = Seen::default();
    let id = sim.create_campaign(notice(
        &["13800000001", "13800000002", "13800000003"],
        json!({"first_after": "0s"}),
    ));
    let (_, a) = seen.next(&mut sim, MIN);
    seen.next(&mut sim, MIN);
    seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &a, 404, "");
    let now = sim.now;
    let snap = sim.engine.live_status(now, false);
    let t = &snap.outbound.trunks[0];
    assert_eq!(
        (t.name.as_str(), t.channels, t.max_channels),
        ("pstn", 2, 5)
    );
    let c = &snap.outbound.campaigns[0];
    assert_eq!((c.id, c.numbers), (id.0, 3));
    assert_eq!(c.counts.get("dialing"), Some(&2));
    assert_eq!(c.counts.get("invalid"), Some(&1));
    let text = hotline::live::prometheus::encode(&snap, Default::default());
    assert!(
        text.contains("hotline_trunk_channels{trunk=\"pstn\"} 2"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "hotline_campaign_numbers{{campaign=\"{}\",state=\"invalid\"}} 1",
            id.0
        )),
        "{text}"
    );
}

/// The trunk's 200 to our `request` (a BYE).
fn trunk_ok(sim: &mut Sim, request: &str) {
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(request, "Via"),
        header(request, "From"),
        header(request, "To"),
        header(request, "Call-ID"),
        header(request, "CSeq"),
    );
    sim.send_bytes(trunk_peer(), reply.as_bytes());
}

#[test]
fn a_call_we_hang_up_holds_its_channel_until_the_trunk_has_our_bye() {
    // One channel: the trunk must never see a second call while it still
    // has the first (our BYE leaves only once the record is durable).
    let mut sim = sim_with(trunk(1, 10, false));
    let mut seen = Seen::default();
    sim.create_campaign(notice(
        &["13800000001", "13800000002", "13800000003"],
        json!({"first_after": "0s"}),
    ));
    let (_, first) = seen.next(&mut sim, MIN);
    trunk_says(&mut sim, &first, 200, "");
    sim.run_for(sim.duration_of("goodbye") + Duration::from_millis(100));
    let byes = requests(&sim, "BYE");
    assert_eq!(byes.len(), 1, "hung up after the notice");
    sim.run_for(Duration::from_secs(3));
    assert_eq!(
        invites(&sim).len(),
        1,
        "no call while the BYE is unanswered"
    );
    trunk_ok(&mut sim, &byes[0].1);
    let answered_at = sim.now;
    let (at, second) = seen.next(&mut sim, Duration::from_secs(1));
    assert_eq!(
        at, answered_at,
        "the channel is free once the BYE is answered"
    );
    // A BYE never answered frees the channel when its transaction gives up
    // (timer F, 64 x T1).
    trunk_says(&mut sim, &second, 200, "");
    sim.run_for(sim.duration_of("goodbye") + Duration::from_millis(100));
    let (bye_at, _) = requests(&sim, "BYE")[1].clone();
    let (at, _) = seen.next(&mut sim, 2 * MIN);
    assert_eq!(at - bye_at, Duration::from_secs(32));
}
