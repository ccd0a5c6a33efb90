//! Queues, agents and bridged calls through the whole pure engine under
//! simulated time: an agent's phone registers with digest auth, a caller
//! chooses a queue, the engine rings the agent, bridges on answer, and
//! both legs end together; ring timeouts move on, the apology comes at
//! 15 s, and the records say it all.

mod common;

use std::time::Duration;

use common::*;
use hotline::cdr::HangupSide;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::MediaEvent;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_queued_caller_reaches_the_registered_agent_and_both_legs_end_together() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "c1", '2');
    let inv = invite_to(&sim, "1001").expect("the agent is rung at once");
    assert!(inv.starts_with("INVITE sip:1001@127.0.0.1:5081 SIP/2.0"));
    assert!(inv.contains("X-Hotline-Queue: repair"));
    assert!(inv.contains("X-Hotline-Business: repair"));
    assert!(inv.contains("m=audio "));
    assert_eq!(sim.played_names().last().map(String::as_str), Some("moh"));

    sim.run_for(secs(3));
    answer(&mut sim, "1001", &inv, 180);
    sim.run_for(secs(2));
    answer(&mut sim, "1001", &inv, 200);
    let ack = sim.sent.last().expect("ACK").text.clone();
    assert!(ack.starts_with("ACK sip:1001@127.0.0.1:5081"), "{ack}");
    assert!(ack.contains(";tag=agent1001"));
    let call = sim.media_started[0];
    assert!(sim.open_legs(call) == 2, "agent leg media opened");
    // "工号 0 0 7 为您服务", then the bridge.
    let announcement = [
        "agent_intro",
        "digits/0",
        "digits/0",
        "digits/7",
        "agent_serving",
    ];
    let spoken: Duration = announcement.iter().map(|n| sim.duration_of(n)).sum();
    assert!(sim.bridged.is_empty(), "not before the announcement");
    // Prompts start on the 20 ms frame grid: allow one frame.
    sim.run_for(spoken + ms(20));
    assert_eq!(sim.bridged.last().map(|b| b.1), Some(call));
    let names = sim.played_names();
    assert_eq!(names[names.len() - 5..], announcement);
    assert_eq!(
        sim.whispers,
        vec![(call, sim.prompt("repair"))],
        "the agent hears the business type"
    );

    sim.run_for(secs(30));
    // The caller hangs up: the agent's leg gets a BYE.
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let bye = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.peer == phone("1001") && s.text.starts_with("BYE "))
        .expect("BYE to the agent");
    assert!(bye.text.contains(";tag=agent1001"));
    let rec = &sim.records[0];
    assert_eq!(rec.queue.as_deref(), Some("repair"));
    assert_eq!(rec.agent.as_deref(), Some("1001"));
    assert_eq!(rec.agent_number.as_deref(), Some("007"));
    assert_eq!(rec.queue_result.as_deref(), Some("answered"));
    assert_eq!(rec.offers, 1);
    assert!(rec.agent_answered_at.is_some() && rec.agent_answered_at < rec.bridged_at);
    assert_eq!(rec.wrap_up_ms, Some(30_000));
    let wait = rec.wait_ms.expect("wait");
    let expected = 5000 + spoken.as_millis() as u64;
    assert!(
        (expected..=expected + 20).contains(&wait),
        "{wait} vs {expected}"
    );
    assert_eq!(rec.talk_ms, Some(30_000));
    assert_eq!(rec.hangup_side, Some(HangupSide::Caller));
    let log: Vec<&str> = sim
        .lines
        .iter()
        .filter(|(f, _)| f == "queue_log")
        .map(|(_, l)| l.split('|').nth(4).unwrap_or_default())
        .collect();
    assert!(
        log.contains(&"ENTERQUEUE") && log.contains(&"CONNECT") && log.contains(&"COMPLETECALLER"),
        "{log:?}"
    );
    let offers: Vec<&String> = sim
        .lines
        .iter()
        .filter(|(f, _)| f.starts_with("offers-"))
        .map(|(_, l)| l)
        .collect();
    assert_eq!(offers.len(), 1);
    assert!(
        offers[0].contains("\"outcome\":\"answered\"") && offers[0].contains("\"ring_ms\":5000")
    );
}

/// An agent's phone registered through a proxy (Kamailio, an SBC) that
/// added a Path (RFC 3327) is rung through that proxy: the INVITE goes to
/// the proxy with the Path as its Route, and so does the BYE later.
#[test]
fn an_agent_registered_through_a_proxy_is_rung_through_it() {
    let mut sim = Sim::new(config(|_| {}));
    let proxy = hotline::io::Peer {
        transport: hotline::io::Transport::Udp,
        addr: "127.0.0.1:5999".parse().expect("addr"),
        conn: 0,
    };
    register_via(
        &mut sim,
        "1001",
        0,
        proxy,
        "Path: <sip:127.0.0.1:5999;lr;received=sip:10.1.1.7:5081>\r\nSupported: path\r\nRequire: path\r\n",
    );
    let ok = sim.sent.last().expect("200").text.clone();
    assert!(
        ok.contains("Path: <sip:127.0.0.1:5999;lr;received=sip:10.1.1.7:5081>"),
        "the Path is echoed to a proxy that supports it: {ok}"
    );
    let tag = caller_presses(&mut sim, "c1", '2');
    let inv = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.text.starts_with("INVITE "))
        .expect("the agent is rung");
    assert_eq!(inv.peer, proxy, "sent to the proxy");
    assert!(inv
        .text
        .starts_with("INVITE sip:1001@127.0.0.1:5081 SIP/2.0"));
    assert!(
        inv.text
            .contains("\r\nRoute: <sip:127.0.0.1:5999;lr;received=sip:10.1.1.7:5081>\r\n"),
        "{}",
        inv.text
    );
    let inv = inv.text.clone();
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=ph\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@10.1.1.7:5081>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP_OFFER}",
        header(&inv, "Via"),
        header(&inv, "From"),
        header(&inv, "To"),
        header(&inv, "Call-ID"),
        SDP_OFFER.len()
    );
    sim.send_bytes(proxy, reply.as_bytes());
    let ack = sim.sent.last().expect("ACK");
    assert_eq!(ack.peer, proxy);
    assert!(
        ack.text.starts_with("ACK sip:1001@10.1.1.7:5081"),
        "{}",
        ack.text
    );
    assert!(
        ack.text.contains("\r\nRoute: <sip:127.0.0.1:5999;lr;"),
        "{}",
        ack.text
    );
    sim.run_for(secs(10));
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let bye = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.text.starts_with("BYE "))
        .expect("BYE to the agent");
    assert_eq!(bye.peer, proxy);
    assert!(
        bye.text.contains("\r\nRoute: <sip:127.0.0.1:5999;lr;"),
        "{}",
        bye.text
    );
}

#[test]
fn the_agent_hanging_up_ends_the_caller_too() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    caller_presses(&mut sim, "c2", '1');
    let inv = invite_to(&sim, "1001").expect("rung");
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(10));
    let bye = format!(
        "BYE sip:hotline@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bK-abye\r\nFrom: {};tag=agent1001\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        header(&inv, "To"),
        header(&inv, "From"),
        header(&inv, "Call-ID"),
    );
    sim.send_bytes(phone("1001"), bye.as_bytes());
    assert!(sim
        .sent
        .iter()
        .any(|s| s.peer == phone("1001") && s.text.starts_with("SIP/2.0 200")));
    assert!(
        sim.sent
            .iter()
            .any(|s| s.text.starts_with("BYE sip:13800138000@")),
        "caller hung up"
    );
    let rec = &sim.records[0];
    assert_eq!(rec.hangup_side, Some(HangupSide::Agent));
    assert_eq!(rec.queue_result.as_deref(), Some("answered"));
}

#[test]
fn ring_timeout_cancels_and_moves_to_the_next_agent() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    register(&mut sim, "1002");
    caller_presses(&mut sim, "c3", '3');
    let first_agent = if invite_to(&sim, "1001").is_some() {
        "1001"
    } else {
        "1002"
    };
    let other = if first_agent == "1001" {
        "1002"
    } else {
        "1001"
    };
    let inv = invite_to(&sim, first_agent).expect("rung");
    answer(&mut sim, first_agent, &inv, 180);
    sim.run_for(ms(14_900));
    assert!(invite_to(&sim, other).is_none());
    sim.run_for(ms(100));
    let cancel = sim
        .sent
        .iter()
        .find(|s| s.text.starts_with("CANCEL "))
        .expect("CANCEL after 15 s")
        .text
        .clone();
    assert_eq!(header(&cancel, "Via"), header(&inv, "Via"), "same branch");
    assert!(invite_to(&sim, other).is_some(), "the next agent is rung");
    // The first phone confirms with 487; the engine ACKs it.
    answer(&mut sim, first_agent, &inv, 487);
    assert!(sim.sent.last().expect("ACK").text.starts_with("ACK "));
    // Both records name one outcome: the offers line says no_answer (its
    // SIP status the 487 of our CANCEL), the queue_log RINGNOANSWER.
    let offers = offer_outcomes(&sim);
    assert_eq!(offers, [(first_agent.to_string(), "no_answer".into(), 487)]);
    let log = queue_log_events(&sim);
    assert!(
        log.contains(&(first_agent.to_string(), "RINGNOANSWER".to_string())),
        "{log:?}"
    );
    assert!(!log.iter().any(|(_, e)| e == "RINGCANCELED"), "{log:?}");
}

/// Each offers line's agent, outcome and SIP status, in order.
fn offer_outcomes(sim: &Sim) -> Vec<(String, String, u64)> {
    sim.lines
        .iter()
        .filter(|(f, _)| f.starts_with("offers-"))
        .map(|(_, l)| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (
                v["agent"].as_str().expect("agent").to_string(),
                v["outcome"].as_str().expect("outcome").to_string(),
                v["sip_status"].as_u64().expect("status"),
            )
        })
        .collect()
}

/// Each queue_log line's agent and event.
fn queue_log_events(sim: &Sim) -> Vec<(String, String)> {
    sim.lines
        .iter()
        .filter(|(f, _)| f == "queue_log")
        .map(|(_, l)| {
            let fields: Vec<&str> = l.split('|').collect();
            (fields[3].to_string(), fields[4].to_string())
        })
        .collect()
}

/// The two cancels that are not a ring timeout stay `cancelled`: in a
/// ring-all queue the agent who did not answer first, and an agent still
/// ringing when the caller hangs up (queue_log RINGCANCELED).
#[test]
fn offers_cancelled_for_another_answer_or_a_caller_gone_say_cancelled() {
    let mut sim = Sim::new(config(|c| {
        for q in &mut c.queues {
            q.strategy = hotline::acd::Strategy::RingAll;
        }
    }));
    register(&mut sim, "1001");
    register(&mut sim, "1002");
    caller_presses(&mut sim, "all", '1');
    let inv1 = invite_to(&sim, "1001").expect("1001 rung");
    let inv2 = invite_to(&sim, "1002").expect("1002 rung at once too");
    answer(&mut sim, "1001", &inv1, 180);
    answer(&mut sim, "1002", &inv2, 180);
    sim.run_for(secs(3));
    answer(&mut sim, "1002", &inv2, 200);
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("CANCEL ")),
        "the other phone is cancelled"
    );
    answer(&mut sim, "1001", &inv1, 487);
    let offers = offer_outcomes(&sim);
    assert!(
        offers.contains(&("1002".into(), "answered".into(), 200))
            && offers.contains(&("1001".into(), "cancelled".into(), 487)),
        "{offers:?}"
    );

    // A caller who hangs up while an agent rings.
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "gone", '2');
    let inv = invite_to(&sim, "1001").expect("rung");
    answer(&mut sim, "1001", &inv, 180);
    sim.run_for(secs(4));
    sim.send(&in_dialog("BYE", "gone", "z9hG4bK-bye", 2, &tag, None));
    answer(&mut sim, "1001", &inv, 487);
    assert_eq!(
        offer_outcomes(&sim),
        [("1001".to_string(), "cancelled".to_string(), 487)]
    );
    let log = queue_log_events(&sim);
    assert!(
        log.contains(&("1001".to_string(), "RINGCANCELED".to_string())),
        "{log:?}"
    );
}

#[test]
fn a_waiting_caller_hears_the_apology_at_15_s_and_can_abandon() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "c4", '1');
    let queued_at = sim.now;
    let inv = invite_to(&sim, "1001").expect("rung");
    answer(&mut sim, "1001", &inv, 486); // busy
    sim.run_for(secs(16));
    let apology = sim
        .played
        .iter()
        .zip(sim.played_names())
        .find(|(_, n)| n == "sorry_wait")
        .map(|((at, _, _), _)| *at)
        .expect("apology");
    assert_eq!(apology - queued_at, secs(15));
    sim.send(&in_dialog("BYE", "c4", "z9hG4bK-bye", 2, &tag, None));
    let rec = &sim.records[0];
    assert_eq!(rec.queue_result.as_deref(), Some("abandoned"));
    assert_eq!(rec.agent, None);
    assert!(sim
        .lines
        .iter()
        .any(|(f, l)| f == "queue_log" && l.contains("|ABANDON|")));
}

#[test]
fn with_no_agent_logged_in_the_caller_is_offered_a_message() {
    let mut sim = Sim::new(config(|_| {}));
    caller_presses(&mut sim, "c5", '1');
    assert_eq!(sim.played_names()[1], "no_agents");
    assert!(sim
        .sent
        .iter()
        .all(|s| !s.text.starts_with("INVITE sip:100")));
}

#[test]
fn feature_codes_put_an_agent_on_break_and_back() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    assert_eq!(
        agent_dials(&mut sim, "1001", "*3", "f1"),
        ["agent_on_break"]
    );
    let rec = sim.records.last().expect("feature call record");
    assert_eq!(rec.ivr_path, ["feature:*3"]);
    assert!(sim
        .sent
        .iter()
        .any(|s| s.peer == phone("1001") && s.text.starts_with("BYE ")));

    caller_presses(&mut sim, "c6", '2');
    sim.run_for(secs(5));
    assert!(
        invite_to(&sim, "1001").is_none(),
        "no offers during a break"
    );
    assert_eq!(
        agent_dials(&mut sim, "1001", "*4", "f2"),
        ["agent_logged_in"]
    );
    assert!(
        invite_to(&sim, "1001").is_some(),
        "available again: the waiting caller is offered"
    );
}

#[test]
fn a_feature_code_from_a_non_agent_is_refused() {
    let mut sim = Sim::new(config(|_| {}));
    // 1002 is an agent but its phone never registered.
    assert_eq!(agent_dials(&mut sim, "1002", "*1", "f3"), ["agent_unknown"]);
}

/// Names of the prompts played to one call.
fn played_to(sim: &Sim, call: hotline::ids::CallKey) -> Vec<String> {
    sim.played
        .iter()
        .zip(sim.played_names())
        .filter(|((_, c, _), _)| *c == call)
        .map(|(_, n)| n)
        .collect()
}

#[test]
fn a_second_caller_hears_their_position_every_30_s() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    caller_presses(&mut sim, "first", '2'); // rings 1001, unanswered
    caller_presses(&mut sim, "second", '2');
    let second = *sim.media_started.last().expect("media");
    sim.run_for(secs(40));
    let heard = played_to(&sim, second);
    let at = heard
        .iter()
        .position(|n| n == "queue_ahead")
        .expect("position announced");
    assert_eq!(
        heard[at..at + 3],
        ["queue_ahead", "digits/1", "queue_waiting"]
    );
    assert_eq!(
        heard.get(at + 3).map(String::as_str),
        Some("moh"),
        "music again after"
    );
}

#[test]
fn the_exit_key_takes_a_waiting_caller_to_the_message_fallback() {
    let mut sim = Sim::new(config(|c| {
        for q in &mut c.queues {
            q.exit_key = Some('*');
        }
    }));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "exit", '2');
    let call = *sim.media_started.last().expect("media");
    sim.run_for(secs(3));
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '*',
            source: DigitSource::Rfc4733,
        },
    );
    let heard = played_to(&sim, call);
    assert_eq!(heard.last().map(String::as_str), Some("no_agents"));
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("CANCEL ")),
        "the ringing agent is cancelled"
    );
    sim.send(&in_dialog("BYE", "exit", "z9hG4bK-bye", 2, &tag, None));
    let rec = sim.records.last().expect("record");
    assert_eq!(rec.queue_result.as_deref(), Some("exit_key"));
    assert_eq!(rec.digits, "2*");
    assert!(sim
        .lines
        .iter()
        .any(|(f, l)| f == "queue_log" && l.contains("|EXITWITHKEY|")));
}

#[test]
fn a_caller_hanging_up_during_the_agent_announcement_frees_the_agent() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "gone", '1');
    let inv = invite_to(&sim, "1001").expect("rung");
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(ms(300)); // still announcing "工号007"
    sim.send(&in_dialog("BYE", "gone", "z9hG4bK-bye", 2, &tag, None));
    assert!(sim
        .sent
        .iter()
        .any(|s| s.peer == phone("1001") && s.text.starts_with("BYE ")));
    // After wrap-up the agent takes the next caller.
    sim.run_for(secs(31));
    caller_presses(&mut sim, "next", '1');
    let invites = sim
        .sent
        .iter()
        .filter(|s| s.peer == phone("1001") && s.text.starts_with("INVITE "))
        .count();
    assert_eq!(invites, 2, "the agent is not stuck");
}

#[test]
fn overflow_sends_the_caller_to_another_queue() {
    let mut sim = Sim::new(config(|c| {
        for q in &mut c.queues {
            if q.name == "complaint" {
                q.max_wait = Some(secs(10));
                q.overflow = Some("consultation".into());
            }
        }
    }));
    register(&mut sim, "1001");
    caller_presses(&mut sim, "busy", '1'); // 1001 rings for this one
    let tag = caller_presses(&mut sim, "over", '3');
    sim.run_for(secs(11));
    sim.send(&in_dialog("BYE", "over", "z9hG4bK-bye", 2, &tag, None));
    let rec = sim.records.last().expect("record");
    assert_eq!(
        rec.queue.as_deref(),
        Some("consultation"),
        "moved on to the overflow queue"
    );
    assert!(
        rec.ivr_path.contains(&"queue:consultation".to_string()),
        "{:?}",
        rec.ivr_path
    );
}

#[test]
fn a_busy_agent_rests_before_the_next_offer() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    caller_presses(&mut sim, "retry", '2');
    let inv = invite_to(&sim, "1001").expect("rung");
    answer(&mut sim, "1001", &inv, 486);
    let count = |sim: &Sim| {
        sim.sent
            .iter()
            .filter(|s| s.peer == phone("1001") && s.text.starts_with("INVITE "))
            .count()
    };
    sim.run_for(ms(4_900));
    assert_eq!(count(&sim), 1, "not rung again within the 5 s retry");
    sim.run_for(ms(200));
    assert_eq!(count(&sim), 2, "rung again after it");
}

#[test]
fn a_contact_that_has_not_authenticated_never_receives_a_call() {
    let mut sim = Sim::new(config(|_| {}));
    // A stranger registers agent 1001's id at its own address, first with
    // no credentials, then with a made-up digest: both refused.
    let rogue = hotline::engine::Peer {
        transport: hotline::engine::Transport::Udp,
        addr: "127.0.0.1:5099".parse().expect("addr"),
        conn: 0,
    };
    let reg = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-rogue{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=r\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: rogue\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@127.0.0.1:5099>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    sim.send_bytes(rogue, reg(1, "").as_bytes());
    assert!(sim
        .sent
        .last()
        .expect("reply")
        .text
        .starts_with("SIP/2.0 401"));
    let forged = "Authorization: Digest username=\"1001\", realm=\"hotline\", nonce=\"made-up\", uri=\"sip:127.0.0.1:5060\", response=\"00000000000000000000000000000000\", algorithm=MD5\r\n";
    sim.send_bytes(rogue, reg(2, forged).as_bytes());
    let reply = &sim.sent.last().expect("reply").text;
    assert!(
        reply.starts_with("SIP/2.0 401") || reply.starts_with("SIP/2.0 403"),
        "{reply}"
    );
    assert!(!sim.engine.agent_registered("1001"));
    // A caller asking for an agent: nothing is sent to the stranger, and
    // with no agent reachable the caller is offered a message.
    caller_presses(&mut sim, "c-rogue", '1');
    sim.run_for(secs(20));
    assert!(sim
        .sent
        .iter()
        .all(|s| !(s.peer == rogue && s.text.starts_with("INVITE "))));
    assert_eq!(sim.played_names()[1], "no_agents");
}

#[test]
fn the_wait_ends_when_the_caller_leaves_the_queue_not_after_the_message() {
    let mut sim = Sim::new(config(|c| {
        for q in &mut c.queues {
            q.exit_key = Some('*');
        }
    }));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "leaves", '2');
    let call = *sim.media_started.last().expect("media");
    sim.run_for(secs(3));
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '*',
            source: DigitSource::Rfc4733,
        },
    );
    // Then 20 s with the message prompt and recording before hanging up.
    sim.run_for(secs(20));
    sim.send(&in_dialog("BYE", "leaves", "z9hG4bK-bye", 2, &tag, None));
    let rec = sim.records.last().expect("record");
    assert_eq!(rec.queue_result.as_deref(), Some("exit_key"));
    // Queued at the key press, left 3 s later: 3000 ms, not 23 000.
    assert_eq!(rec.wait_ms, Some(3000));
}

#[test]
fn a_caller_gone_during_the_agent_announcement_abandoned() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "gone2", '1');
    let inv = invite_to(&sim, "1001").expect("rung");
    sim.run_for(ms(4000));
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(ms(300)); // "工号007..." still playing
    sim.send(&in_dialog("BYE", "gone2", "z9hG4bK-bye", 2, &tag, None));
    let rec = sim.records.last().expect("record");
    assert!(rec.agent_answered_at.is_some());
    assert_eq!(rec.bridged_at, None, "never connected");
    assert_eq!(rec.queue_result.as_deref(), Some("abandoned"));
    assert_eq!(rec.talk_ms, None);
    // Queued, rung at once, answered after 4 s, gone 0.3 s later.
    assert_eq!(rec.wait_ms, Some(4300));
}

#[test]
fn after_an_overflow_the_wait_counts_from_the_first_queue() {
    let mut sim = Sim::new(config(|c| {
        for q in &mut c.queues {
            if q.name == "complaint" {
                q.max_wait = Some(secs(10));
                q.overflow = Some("consultation".into());
            }
        }
    }));
    register(&mut sim, "1001");
    caller_presses(&mut sim, "busy2", '1'); // 1001 rings for this one
    let tag = caller_presses(&mut sim, "over2", '3');
    let entered = sim.records.len();
    sim.run_for(secs(11));
    sim.send(&in_dialog("BYE", "over2", "z9hG4bK-bye", 2, &tag, None));
    assert_eq!(sim.records.len(), entered + 1);
    let rec = sim.records.last().expect("record");
    assert_eq!(rec.queue.as_deref(), Some("consultation"));
    assert_eq!(rec.queue_result.as_deref(), Some("abandoned"));
    // 10 s in complaint, then 1 s in consultation: 11 000 ms from the
    // first entry, and queued_at is that entry (invite + 2 s answer).
    assert_eq!(rec.wait_ms, Some(11_000));
    let invite = hotline::tools::records::parse_time_ms(&rec.invite_at).expect("invite_at");
    let queued = rec
        .queued_at
        .as_deref()
        .and_then(hotline::tools::records::parse_time_ms)
        .expect("queued_at");
    assert_eq!(queued - invite, 2000);
}

/// `calls.caller_id_from`: which header names the caller. A PBX in front
/// sends its own number in From and the caller's in P-Asserted-Identity
/// or Remote-Party-ID; the chosen one is the record's `caller_number`, the
/// number looked up in the caller directory and the agent's
/// X-Hotline-Caller. Without that header, From it is.
#[test]
fn the_caller_is_taken_from_the_configured_header() {
    use hotline::sip::message::CallerIdFrom;
    let dir = tempfile::tempdir().expect("tempdir");
    let callers = dir.path().join("callers.csv");
    std::fs::write(
        &callers,
        "13800138000,group,yes,Li Lei\n13900139000,business,no,Han Meimei\n",
    )
    .expect("write");
    let pai =
        "P-Asserted-Identity: \"Li Lei\" <sip:+8613800138000@10.0.0.5>, <tel:+8613800138000>\r\n";
    let rpid = "Remote-Party-ID: <sip:4008@10.0.0.5>;party=called, \"Han Meimei\" <sip:13900139000@10.0.0.5>;party=calling;screen=yes\r\n";
    for (from, headers, number, class) in [
        (CallerIdFrom::From, format!("{pai}{rpid}"), "8000", "public"),
        (
            CallerIdFrom::PAssertedIdentity,
            format!("{pai}{rpid}"),
            "+8613800138000",
            "group",
        ),
        (
            CallerIdFrom::RemotePartyId,
            format!("{pai}{rpid}"),
            "13900139000",
            "business",
        ),
        // Asked for P-Asserted-Identity, the INVITE has none: From.
        (
            CallerIdFrom::PAssertedIdentity,
            rpid.to_string(),
            "8000",
            "public",
        ),
    ] {
        let mut sim = Sim::new(config(|c| {
            c.directory.file = Some(callers.clone());
            c.calls.caller_id_from = from;
        }));
        register(&mut sim, "1001");
        let inv = invite("pbx", "z9hG4bK-inv", Some(SDP_OFFER))
            .replace(
                "From: \"Li Lei\" <sip:13800138000@127.0.0.1:5070>",
                "From: \"PBX\" <sip:8000@127.0.0.1:5070>",
            )
            .replace("Contact: ", &format!("{headers}Contact: "));
        sim.send(&inv);
        sim.run_for(ms(2000));
        let tag = sim.to_tag_for("pbx");
        sim.send(&in_dialog("ACK", "pbx", "z9hG4bK-ack", 1, &tag, None));
        let call = *sim.media_started.last().expect("media");
        sim.media_event(
            call,
            MediaEvent::Digit {
                digit: '2',
                source: DigitSource::Rfc4733,
            },
        );
        let offer = invite_to(&sim, "1001").expect("the agent is rung");
        assert_eq!(header(&offer, "X-Hotline-Caller"), number, "{from:?}");
        assert_eq!(
            header(&offer, "X-Hotline-Class"),
            class,
            "{from:?}: the directory saw the same number"
        );
        sim.send(&in_dialog("BYE", "pbx", "z9hG4bK-bye", 2, &tag, None));
        let rec = &sim.records[0];
        assert_eq!(rec.caller_number, number, "{from:?}");
        assert_eq!(rec.customer_class.as_deref(), Some(class), "{from:?}");
    }
}

/// An agent whose phone is an extension of a PBX (`trunk` and
/// `extension` in `[[agents]]`) needs no registration: reachable and
/// logged in from the start, rung with `sip:8001@<trunk>` sent to the
/// trunk's address, bridged when the PBX answers.
#[test]
fn an_agent_on_a_pbx_extension_is_rung_through_its_trunk() {
    let pbx = hotline::io::Peer {
        transport: hotline::io::Transport::Udp,
        addr: "127.0.0.1:5090".parse().expect("addr"),
        conn: 0,
    };
    let mut sim = Sim::new(config(|c| {
        c.trunks.push(hotline::config::TrunkConfig {
            name: "pbx".into(),
            address: pbx.addr,
            transport: hotline::config::TrunkTransport::Udp,
            caller_id: "4008001234".into(),
            max_channels: 30,
            max_calls_per_second: 10,
            domain: Some("pbx.example".into()),
            username: None,
            password: None,
            password_env: None,
            tls_ca: None,
        });
        let agent = &mut c.agents[0];
        agent.trunk = Some("pbx".into());
        agent.extension = Some("8001".into());
        agent.ha1_md5 = None;
        agent.ha1_sha256 = None;
    }));
    let agents = sim.engine.agent_snapshots();
    let a = agents.iter().find(|a| a.id == "1001").expect("agent 1001");
    assert!(a.registered && a.status == "available", "{a:?}");
    assert!(!sim.engine.agent_registered("1001"), "no registration");

    let tag = caller_presses(&mut sim, "ext", '2');
    let inv = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.text.starts_with("INVITE "))
        .expect("the extension is rung");
    assert_eq!(inv.peer, pbx, "sent to the trunk");
    assert!(
        inv.text.starts_with("INVITE sip:8001@pbx.example SIP/2.0"),
        "{}",
        inv.text
    );
    assert!(inv.text.contains("X-Hotline-Queue: repair"), "{}", inv.text);
    let inv = inv.text.clone();
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=pbx\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:8001@127.0.0.1:5090>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP_OFFER}",
        header(&inv, "Via"),
        header(&inv, "From"),
        header(&inv, "To"),
        header(&inv, "Call-ID"),
        SDP_OFFER.len()
    );
    sim.send_bytes(pbx, reply.as_bytes());
    assert!(sim
        .sent
        .last()
        .is_some_and(|s| s.peer == pbx && s.text.starts_with("ACK sip:8001@127.0.0.1:5090")));
    sim.run_for(secs(10));
    assert!(!sim.bridged.is_empty(), "caller connected to the extension");
    sim.send(&in_dialog("BYE", "ext", "z9hG4bK-bye", 2, &tag, None));
    assert!(sim
        .sent
        .iter()
        .any(|s| s.peer == pbx && s.text.starts_with("BYE sip:8001@127.0.0.1:5090")));
    let rec = &sim.records[0];
    assert_eq!(rec.agent.as_deref(), Some("1001"));
    assert_eq!(rec.queue_result.as_deref(), Some("answered"));
}

/// A phone that cannot answer any offered digest algorithm (Debian's
/// baresip 1.0 and SHA-256) asks again without credentials: hotline
/// counts and logs each such retry, so the operator can tell why it never
/// logs in. A phone that answers is never counted.
#[test]
fn a_phone_that_never_answers_the_challenge_is_noticed() {
    let mut sim = Sim::new(config(|_| {}));
    let plain = |cseq: u32| {
        format!(
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5082;branch=z9hG4bK-plain{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:1002@127.0.0.1>;tag=p\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: plain-1002\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1002@127.0.0.1:5082>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        )
    };
    register(&mut sim, "1001");
    sim.run_for(Duration::from_secs(30));
    register_again(&mut sim, "1001", 1);
    assert_eq!(
        sim.engine.counters().challenges_unanswered,
        0,
        "1001 answers"
    );
    sim.send_bytes(phone("1002"), plain(1).as_bytes());
    assert!(sim
        .sent
        .last()
        .expect("401")
        .text
        .starts_with("SIP/2.0 401"));
    assert_eq!(
        sim.engine.counters().challenges_unanswered,
        0,
        "a first 401 is normal"
    );
    sim.run_for(Duration::from_secs(30));
    sim.send_bytes(phone("1002"), plain(2).as_bytes());
    sim.run_for(Duration::from_secs(30));
    sim.send_bytes(phone("1002"), plain(3).as_bytes());
    assert_eq!(sim.engine.counters().challenges_unanswered, 2);
    assert!(!sim.engine.agent_registered("1002"));
}
