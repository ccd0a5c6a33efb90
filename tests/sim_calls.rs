//! The inbound call core under simulated time: the answer window, CANCEL
//! racing the answer, a lost ACK, retransmissions, re-INVITE and the records
//! each call leaves. The IVR's timings are in sim_ivr.rs.

mod common;

use std::time::Duration;

use common::*;
use hotline::cdr::{Disposition, HangupSide, Outcome};
use hotline::config::AnswerDelay;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Places a call and acknowledges the answer; returns the To tag.
fn answered_call(sim: &mut Sim, call_id: &str) -> String {
    sim.send(&invite(call_id, "z9hG4bK-inv", Some(SDP_OFFER)));
    sim.run_for(ms(2000));
    let tag = sim.to_tag();
    sim.send(&in_dialog("ACK", call_id, "z9hG4bK-ack", 1, &tag, None));
    tag
}

#[test]
fn ringing_at_once_and_answer_after_the_configured_delay() {
    let mut sim = Sim::new(config(|c| c.calls.answer_after = AnswerDelay(ms(2500))));
    sim.send(&invite("c1", "z9hG4bK-1", Some(SDP_OFFER)));
    let trying = sim.sent_starting("SIP/2.0 100");
    let ringing = sim.sent_starting("SIP/2.0 180");
    assert_eq!(trying.len(), 1);
    assert_eq!(ringing.len(), 1);
    assert_eq!(sim.elapsed(trying[0].at), Duration::ZERO);
    assert_eq!(sim.elapsed(ringing[0].at), Duration::ZERO);
    assert!(sim.sent_starting("SIP/2.0 200").is_empty());

    sim.run_for(ms(2499));
    assert!(
        sim.sent_starting("SIP/2.0 200").is_empty(),
        "not before 2.5 s"
    );
    sim.run_for(ms(1));
    let ok = sim.sent_starting("SIP/2.0 200");
    assert_eq!(ok.len(), 1);
    assert_eq!(sim.elapsed(ok[0].at), ms(2500));
    assert!(ok[0].text.contains("m=audio 20000 RTP/AVP 0 101\r\n"));
    assert!(ok[0].text.contains("Contact: <sip:hotline@127.0.0.1:5060>"));
}

#[test]
fn over_the_call_limit_gets_503_at_once_and_a_record() {
    let mut sim = Sim::new(config(|c| c.calls.max_calls = 1));
    sim.send(&invite("c1", "z9hG4bK-1", Some(SDP_OFFER)));
    sim.send(&invite("c2", "z9hG4bK-2", Some(SDP_OFFER)));
    let busy = sim.sent_starting("SIP/2.0 503");
    assert_eq!(busy.len(), 1);
    assert!(busy[0].text.contains("Call-ID: c2"));
    assert!(busy[0].text.contains("Retry-After: 5\r\n"));
    assert_eq!(sim.elapsed(busy[0].at), Duration::ZERO);
    let rec = &sim.records[0];
    assert_eq!(rec.sip_call_id, "c2");
    assert_eq!(rec.disposition, Disposition::Rejected);
    assert_eq!(rec.outcome, Outcome::OverCapacity);
    assert_eq!(rec.sip_status, 503);
}

#[test]
fn the_call_rate_limit_refuses_a_burst() {
    let mut sim = Sim::new(config(|c| c.calls.max_calls_per_second = 3));
    for i in 0..5 {
        sim.send(&invite(
            &format!("c{i}"),
            &format!("z9hG4bK-{i}"),
            Some(SDP_OFFER),
        ));
    }
    assert_eq!(sim.sent_starting("SIP/2.0 180").len(), 3);
    assert_eq!(sim.sent_starting("SIP/2.0 503").len(), 2);
    sim.run_for(ms(1000));
    sim.send(&invite("later", "z9hG4bK-later", Some(SDP_OFFER)));
    assert_eq!(sim.sent_starting("SIP/2.0 180").len(), 4, "tokens refill");
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let mut sim = Sim::new(config(|_| {}));
    sim.send(&invite("cx", "z9hG4bK-c", Some(SDP_OFFER)));
    sim.run_for(ms(1000));
    sim.send(&cancel("cx", "z9hG4bK-c"));
    let ok = sim.sent_starting("SIP/2.0 200");
    assert_eq!(ok.len(), 1);
    assert!(ok[0].text.contains("CSeq: 1 CANCEL"));
    let tag = sim.to_tag();
    assert!(
        ok[0].text.contains(&format!(";tag={tag}\r\n")),
        "the 200 to CANCEL carries the INVITE's To tag"
    );
    let terminated = sim.sent_starting("SIP/2.0 487");
    assert_eq!(terminated.len(), 1);
    assert!(terminated[0].text.contains("CSeq: 1 INVITE"));
    // The answer timer must not fire for the cancelled call.
    sim.run_for(ms(5000));
    assert!(sim
        .sent_starting("SIP/2.0 200")
        .iter()
        .all(|s| s.text.contains("CANCEL")));
    let rec = &sim.records[0];
    assert_eq!(rec.disposition, Disposition::Cancelled);
    assert_eq!(rec.outcome, Outcome::CallerCancelled);
    assert_eq!(rec.sip_status, 487);
    assert_eq!(rec.hangup_side, Some(HangupSide::Caller));
    assert_eq!(rec.answered_at, None);
}

#[test]
fn cancel_racing_the_200_leaves_the_call_up() {
    let mut sim = Sim::new(config(|_| {}));
    sim.send(&invite("race", "z9hG4bK-r", Some(SDP_OFFER)));
    sim.run_for(ms(2000)); // the 200 goes out at exactly 2 s
    sim.send(&cancel("race", "z9hG4bK-r")); // the CANCEL crossed it
    let oks = sim.sent_starting("SIP/2.0 200");
    assert_eq!(oks.len(), 2, "200 to INVITE and 200 to CANCEL");
    assert!(sim.sent_starting("SIP/2.0 487").is_empty());
    assert!(
        sim.records.is_empty(),
        "the call goes on; the caller will BYE"
    );
    let tag = sim.to_tag();
    sim.send(&in_dialog("ACK", "race", "z9hG4bK-ack", 1, &tag, None));
    sim.send(&in_dialog("BYE", "race", "z9hG4bK-bye", 2, &tag, None));
    assert_eq!(sim.records[0].outcome, Outcome::CallerHangup);
}

#[test]
fn lost_ack_retransmits_the_200_then_timer_h_ends_the_call() {
    let mut sim = Sim::new(config(|_| {}));
    sim.send(&invite("noack", "z9hG4bK-n", Some(SDP_OFFER)));
    sim.run_for(ms(2000));
    let answered = sim.now;
    sim.run_for(Duration::from_secs(40));
    let oks: Vec<u128> = sim
        .sent_starting("SIP/2.0 200")
        .iter()
        .map(|s| (s.at - answered).as_millis())
        .collect();
    assert_eq!(
        oks,
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let bye = sim.sent_starting("BYE ");
    assert!(!bye.is_empty());
    assert_eq!(
        bye[0].at - answered,
        Duration::from_secs(32),
        "timer H = 64*T1"
    );
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::NoAck);
    assert_eq!(rec.disposition, Disposition::Failed);
    // No ACK: the greeting never started.
    assert!(sim.played.is_empty());
}

#[test]
fn bye_retransmitted_over_udp_until_answered() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "byeretx");
    let first = sim.run_until_sent("BYE ", Duration::from_secs(60));
    sim.run_until(first + ms(1600));
    let byes: Vec<u128> = sim
        .sent_starting("BYE ")
        .iter()
        .map(|s| (s.at - first).as_millis())
        .collect();
    assert_eq!(byes, vec![0, 500, 1500], "timer E doubles");
    let bye = sim.sent_starting("BYE ")[0].text.clone();
    let branch = bye
        .lines()
        .find(|l| l.starts_with("Via:"))
        .and_then(|l| l.split("branch=").nth(1))
        .and_then(|b| b.split(';').next())
        .expect("branch")
        .to_string();
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\nFrom: <sip:4008@127.0.0.1>;tag=x\r\nTo: <sip:1@127.0.0.1>;tag=caller1\r\nCall-ID: byeretx\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    sim.send(&reply);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.sent_starting("BYE ").len(), 3, "no more after the 200");
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let mut sim = Sim::new(config(|_| {}));
    let inv = invite("dup", "z9hG4bK-d", Some(SDP_OFFER));
    sim.send(&inv);
    sim.run_for(ms(500));
    sim.send(&inv);
    assert_eq!(sim.sent_starting("SIP/2.0 180").len(), 2, "180 sent again");
    assert_eq!(sim.sent_starting("SIP/2.0 100").len(), 1);
    sim.run_for(ms(2000));
    assert_eq!(sim.engine.active_calls(), 1);
    assert_eq!(sim.engine.counters().retransmissions_absorbed, 1);
}

#[test]
fn caller_bye_is_answered_and_recorded_and_retransmission_absorbed() {
    let mut sim = Sim::new(config(|_| {}));
    let tag = answered_call(&mut sim, "bye");
    sim.run_for(ms(4000));
    let bye = in_dialog("BYE", "bye", "z9hG4bK-b", 2, &tag, None);
    sim.send(&bye);
    sim.send(&bye);
    let oks = sim.sent_starting("SIP/2.0 200");
    let bye_oks: Vec<_> = oks
        .iter()
        .filter(|s| s.text.contains("CSeq: 2 BYE"))
        .collect();
    assert_eq!(bye_oks.len(), 2, "the retransmitted BYE gets the same 200");
    assert!(sim.sent_starting("SIP/2.0 481").is_empty());
    assert_eq!(sim.records.len(), 1);
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::CallerHangup);
    assert_eq!(rec.hangup_side, Some(HangupSide::Caller));
    assert_eq!(rec.duration_ms, Some(4000));
    assert!(sim.rtp_packets >= 195, "media flowed: {}", sim.rtp_packets);
}

#[test]
fn bye_for_an_unknown_dialog_is_481() {
    let mut sim = Sim::new(config(|_| {}));
    sim.send(&in_dialog("BYE", "nosuch", "z9hG4bK-x", 2, "zzz", None));
    assert_eq!(sim.sent_starting("SIP/2.0 481").len(), 1);
}

#[test]
fn reinvite_to_hold_and_back() {
    let mut sim = Sim::new(config(|_| {}));
    let tag = answered_call(&mut sim, "hold");
    let hold = SDP_OFFER.replace("a=sendrecv", "a=sendonly");
    sim.send(&in_dialog(
        "INVITE",
        "hold",
        "z9hG4bK-h",
        2,
        &tag,
        Some(&hold),
    ));
    let ok = sim.sent_starting("SIP/2.0 200");
    let last = ok.last().expect("200");
    assert!(last.text.contains("CSeq: 2 INVITE"));
    assert!(last.text.contains("a=recvonly"));
    assert!(
        last.text.contains("o=hotline ") && last.text.contains(" 2 IN IP4"),
        "version bumped"
    );
    assert_eq!(sim.media_updates.last().map(|u| u.2), Some(false));
    sim.send(&in_dialog("ACK", "hold", "z9hG4bK-ha", 2, &tag, None));
    sim.send(&in_dialog(
        "INVITE",
        "hold",
        "z9hG4bK-u",
        3,
        &tag,
        Some(SDP_OFFER),
    ));
    assert!(sim
        .sent_starting("SIP/2.0 200")
        .last()
        .expect("200")
        .text
        .contains("a=sendrecv"));
    assert_eq!(sim.media_updates.last().map(|u| u.2), Some(true));
}

#[test]
fn invite_without_sdp_gets_an_offer_and_the_answer_comes_in_the_ack() {
    let mut sim = Sim::new(config(|_| {}));
    sim.send(&invite("late", "z9hG4bK-l", None));
    sim.run_for(ms(2000));
    let ok = sim.sent_starting("SIP/2.0 200");
    assert!(ok[0].text.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"));
    assert!(sim.media_started.is_empty());
    let tag = sim.to_tag();
    let answer = SDP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101");
    sim.send(&in_dialog(
        "ACK",
        "late",
        "z9hG4bK-la",
        1,
        &tag,
        Some(&answer),
    ));
    assert_eq!(sim.media_started.len(), 1);
    assert_eq!(sim.played.len(), 1, "greeting starts");
    sim.send(&in_dialog("BYE", "late", "z9hG4bK-lb", 2, &tag, None));
    assert_eq!(
        sim.records[0].codec,
        Some(hotline::media::g711::Codec::Pcma)
    );
}

#[test]
fn no_common_codec_is_488_with_a_record() {
    let mut sim = Sim::new(config(|_| {}));
    let g729 = SDP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18");
    sim.send(&invite("g729", "z9hG4bK-g", Some(&g729)));
    assert_eq!(sim.sent_starting("SIP/2.0 488").len(), 1);
    assert_eq!(sim.records[0].outcome, Outcome::NoCommonCodec);
    assert_eq!(sim.records[0].disposition, Disposition::Rejected);
    // The ACK for the 488 ends the transaction quietly.
    let tag = sim.to_tag_of("SIP/2.0 488");
    sim.send(&in_dialog("ACK", "g729", "z9hG4bK-g", 1, &tag, None));
    sim.run_for(Duration::from_secs(40));
    assert_eq!(
        sim.sent_starting("SIP/2.0 488").len(),
        1,
        "no timer G after the ACK"
    );
}

#[test]
fn dead_media_is_hung_up() {
    let mut sim = Sim::new(config(|c| {
        c.media.inactivity_timeout = Duration::from_secs(4);
    }));
    answered_call(&mut sim, "dead");
    let media_start = sim.now;
    sim.run_for(Duration::from_secs(20));
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::MediaTimeout);
    let bye = sim.sent_starting("BYE ")[0].at;
    assert_eq!(bye - media_start, Duration::from_secs(4));
}

#[test]
fn shutdown_ends_every_call_with_a_record() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "a1");
    sim.send(&invite("r1", "z9hG4bK-r1", Some(SDP_OFFER)));
    sim.shutdown();
    let mut outcomes: Vec<_> = sim
        .records
        .iter()
        .map(|r| (r.sip_call_id.clone(), r.outcome))
        .collect();
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        outcomes,
        vec![
            ("a1".into(), Outcome::Shutdown),
            ("r1".into(), Outcome::Shutdown)
        ]
    );
    sim.send(&invite("late", "z9hG4bK-late", Some(SDP_OFFER)));
    assert!(sim.sent_starting("SIP/2.0 503").len() >= 2);
}
