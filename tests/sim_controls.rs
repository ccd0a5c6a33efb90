//! In-call controls through the whole pure engine in simulated time: an
//! agent's phone puts the caller on hold and back (music in between, the
//! apology after), the same through the API, and the satisfaction survey
//! after the agent hangs up.

mod common;

use std::time::Duration;

use common::*;
use hotline::ids::CallKey;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::MediaEvent;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A caller pressed 2 (repair) and is bridged with agent 1001; returns
/// the call, the caller's To tag and the agent's INVITE.
fn bridged(sim: &mut Sim) -> (CallKey, String, String) {
    register(sim, "1001");
    let tag = caller_presses(sim, "c1", '2');
    let inv = invite_to(sim, "1001").expect("the agent is rung");
    answer(sim, "1001", &inv, 200);
    // "工号 0 0 7 为您服务", then the bridge.
    sim.run_for(secs(8));
    assert_eq!(sim.bridged.len(), 1, "bridged");
    let call = sim.media_started[0];
    (call, tag, inv)
}

/// The caller presses `digit` (RFC 4733).
fn press(sim: &mut Sim, call: CallKey, digit: char) {
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit,
            source: DigitSource::Rfc4733,
        },
    );
}

/// A request from the agent's phone inside the agent leg's dialog.
fn from_agent(sim: &mut Sim, inv: &str, method: &str, cseq: u32, sdp: Option<&str>) {
    let body = sdp.unwrap_or("");
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    let msg = format!(
        "{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bK-{method}{cseq}\r\nFrom: {};tag=agent1001\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:1001@127.0.0.1:5081>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        header(inv, "To"),
        header(inv, "From"),
        header(inv, "Call-ID"),
        body.len()
    );
    sim.send_bytes(phone("1001"), msg.as_bytes());
}

fn agent_sdp(direction: &str) -> String {
    format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n")
}

#[test]
fn a_hold_from_the_agents_phone_plays_music_and_the_apology_on_return() {
    let mut sim = Sim::new(config(|_| {}));
    let (call, tag, inv) = bridged(&mut sim);
    sim.played.clear();
    from_agent(&mut sim, &inv, "INVITE", 2, Some(&agent_sdp("sendonly")));
    let ok = sim.sent.last().expect("200").text.clone();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("a=recvonly"),
        "a hold is answered recvonly: {ok}"
    );
    from_agent(&mut sim, &inv, "ACK", 2, None);
    sim.run_for(secs(10));
    let played = sim.played_names();
    assert_eq!(played.first().map(String::as_str), Some("hold_start"));
    assert!(
        played.iter().skip(1).all(|p| p == "moh") && played.len() >= 2,
        "{played:?}"
    );

    sim.played.clear();
    from_agent(&mut sim, &inv, "INVITE", 3, Some(&agent_sdp("sendrecv")));
    assert!(sim.sent.last().expect("200").text.contains("a=sendrecv"));
    from_agent(&mut sim, &inv, "ACK", 3, None);
    sim.run_for(secs(5));
    assert_eq!(
        sim.played_names(),
        ["sorry_wait"],
        "the apology, then the bridge"
    );
    assert_eq!(sim.bridged.len(), 2, "bridged again");

    sim.run_for(secs(5));
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let r = sim.records.last().expect("record");
    assert_eq!(r.holds, 1);
    let held = r.hold_ms.expect("hold time");
    assert_eq!(held, 10_000, "from the hold's 200 to the resume");
    let _ = call;
}

#[test]
fn hold_and_resume_through_the_api() {
    let mut sim = Sim::new(config(|_| {}));
    let (call, tag, _) = bridged(&mut sim);
    assert_eq!(
        sim.act(|e, now| e.resume(now, call)),
        Err(hotline::engine::ControlError::NotHeld)
    );
    sim.act(|e, now| e.hold(now, call)).expect("held");
    assert_eq!(
        sim.act(|e, now| e.hold(now, call)),
        Err(hotline::engine::ControlError::AlreadyHeld)
    );
    sim.run_for(secs(30));
    sim.act(|e, now| e.resume(now, call)).expect("resumed");
    sim.run_for(secs(5));
    sim.act(|e, now| e.hold(now, call)).expect("held again");
    sim.run_for(secs(4));
    // The caller hangs up while on hold: the hold still counts.
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let r = sim.records.last().expect("record");
    assert_eq!((r.holds, r.hold_ms), (2, Some(34_000)));
}

fn with_survey() -> Sim {
    Sim::new(config(|c| {
        for q in c.queues.iter_mut() {
            q.survey = true;
        }
    }))
}

#[test]
fn after_the_agent_hangs_up_the_caller_rates_the_service() {
    let mut sim = with_survey();
    let (call, _tag, inv) = bridged(&mut sim);
    sim.run_for(secs(20));
    sim.played.clear();
    let agent_left_at = sim.now;
    from_agent(&mut sim, &inv, "BYE", 2, None);
    assert!(
        !sim.sent
            .iter()
            .any(|s| s.text.starts_with("BYE sip:13800138000@")),
        "the caller is not hung up: asked first"
    );
    assert_eq!(sim.played_names(), ["survey"]);
    sim.run_for(sim.duration_of("survey") + secs(1));
    press(&mut sim, call, '4');
    assert_eq!(sim.played_names(), ["survey", "survey_thanks"]);
    sim.run_for(sim.duration_of("survey_thanks") + secs(1));
    assert!(sim
        .sent
        .iter()
        .any(|s| s.text.starts_with("BYE sip:13800138000@")));
    let r = sim.records.last().expect("record");
    assert!(r.survey_offered);
    assert_eq!(r.satisfaction, Some(4));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    // The survey is not the agent's talk time: it ended with their BYE.
    let talk = (agent_left_at - sim.bridged[0].0).as_millis() as u64;
    assert_eq!(r.talk_ms, Some(talk));
}

#[test]
fn a_caller_who_does_not_rate_is_asked_once_more_then_the_call_ends() {
    let mut sim = with_survey();
    let (call, _tag, inv) = bridged(&mut sim);
    sim.played.clear();
    from_agent(&mut sim, &inv, "BYE", 2, None);
    // A key that is not a rating is not one.
    sim.run_for(sim.duration_of("survey"));
    press(&mut sim, call, '9');
    sim.run_for(secs(6) + sim.duration_of("survey") + secs(6));
    assert_eq!(sim.played_names(), ["survey", "survey"]);
    let r = sim.records.last().expect("ended without a rating");
    assert!(r.survey_offered);
    assert_eq!(r.satisfaction, None);
}

/// The survey's keys, wait and prompts are the queue's: here 5 is the
/// best (rating 1), the caller has 10 s, and the question is another
/// prompt.
#[test]
fn the_surveys_keys_wait_and_prompts_are_configured_per_queue() {
    let mut sim = Sim::new(config(|c| {
        for q in c.queues.iter_mut() {
            q.survey = true;
            q.survey_keys = "54321".into();
            q.survey_timeout = secs(10);
            q.survey_prompt = "main_menu".into();
            q.survey_thanks = "goodbye".into();
        }
    }));
    let (call, _tag, inv) = bridged(&mut sim);
    sim.played.clear();
    from_agent(&mut sim, &inv, "BYE", 2, None);
    // Not asked again after the default 5 s: the queue gives 10.
    sim.run_for(sim.duration_of("main_menu") + secs(8));
    assert_eq!(sim.played_names(), ["main_menu"]);
    sim.run_for(secs(3));
    assert_eq!(sim.played_names(), ["main_menu", "main_menu"]);
    press(&mut sim, call, '5');
    assert_eq!(sim.played_names(), ["main_menu", "main_menu", "goodbye"]);
    sim.run_for(sim.duration_of("goodbye") + secs(1));
    let r = sim.records.last().expect("record");
    assert_eq!(r.satisfaction, Some(1), "5 is the best here");
}

#[test]
fn survey_keys_must_be_five_different_keys() {
    let text = hotline::config::DEFAULT_TOML
        .replace("survey = true ", "survey_keys = \"1123\"\nsurvey = true ");
    let err = hotline::config::Config::parse(&text, "test", std::path::Path::new("."))
        .expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("queues[2].survey_keys"), "{msg}");
    assert!(msg.contains("five different keys"), "{msg}");
}

#[test]
fn without_a_survey_the_agent_hanging_up_ends_the_call() {
    let mut sim = Sim::new(config(|_| {}));
    let (_, _, inv) = bridged(&mut sim);
    from_agent(&mut sim, &inv, "BYE", 2, None);
    let r = sim.records.last().expect("record");
    assert!(!r.survey_offered);
}

// ---- transfers ----------------------------------------------------------------

/// A REFER from agent 1001's phone, inside its leg's dialog.
fn refer(sim: &mut Sim, inv: &str, to: &str, cseq: u32) {
    let msg = format!(
        "REFER sip:hotline@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bK-refer{cseq}\r\nFrom: {};tag=agent1001\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} REFER\r\nContact: <sip:1001@127.0.0.1:5081>\r\nRefer-To: <{to}>\r\nReferred-By: <sip:1001@127.0.0.1>\r\nContent-Length: 0\r\n\r\n",
        header(inv, "To"),
        header(inv, "From"),
        header(inv, "Call-ID"),
    );
    sim.send_bytes(phone("1001"), msg.as_bytes());
}

/// Agent 1001's phone, with the caller on hold, calls agent 1002 through
/// hotline (a new dialog, `call_id`), as a phone's "consult" key does.
fn consult_invite(
    sim: &mut Sim,
    call_id: &str,
    dialled: &str,
    method: &str,
    cseq: u32,
    to_tag: Option<&str>,
) {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let body = if method == "INVITE" { SDP_OFFER } else { "" };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let msg = format!(
        "{method} sip:{dialled}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bK-c{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1:5081>;tag=consult1001\r\nTo: <sip:{dialled}@127.0.0.1:5060>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:1001@127.0.0.1:5081>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sim.send_bytes(phone("1001"), msg.as_bytes());
}

/// Responses hotline sent to agent 1001's phone for the dialog `call_id`.
fn responses_in(sim: &Sim, call_id: &str) -> Vec<String> {
    sim.sent
        .iter()
        .filter(|s| s.peer == phone("1001") && s.text.starts_with("SIP/2.0 "))
        .filter(|s| header(&s.text, "Call-ID") == call_id)
        .map(|s| s.text.lines().next().unwrap_or_default().to_string())
        .collect()
}

/// The attended transfer: 1001 holds the caller, calls 1002 (the
/// consultation, rung and bridged through hotline), then sends REFER with
/// Replaces naming that call: the caller is connected with 1002, both of
/// 1001's calls end, and the record splits the handle time.
#[test]
fn an_attended_transfer_connects_the_caller_with_the_agent_consulted() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1002");
    let (_call, tag, inv) = bridged(&mut sim);
    sim.run_for(secs(10));
    let held_at = sim.now;
    from_agent(&mut sim, &inv, "INVITE", 2, Some(&agent_sdp("sendonly")));
    from_agent(&mut sim, &inv, "ACK", 2, None);
    sim.run_for(secs(2));
    // The consultation: 1001's phone dials 1002.
    consult_invite(&mut sim, "consult-1", "1002", "INVITE", 1, None);
    let inv2 = invite_to(&sim, "1002").expect("1002 rung for the consultation");
    assert!(responses_in(&sim, "consult-1")
        .iter()
        .any(|l| l.starts_with("SIP/2.0 180")));
    assert!(
        sim.records.is_empty(),
        "a consultation is not a call to the hotline"
    );
    answer(&mut sim, "1002", &inv2, 200);
    let ok = responses_in(&sim, "consult-1");
    assert_eq!(
        ok.last().map(String::as_str),
        Some("SIP/2.0 200 OK"),
        "{ok:?}"
    );
    let consult_tag = sim
        .sent
        .iter()
        .rev()
        .find(|s| {
            s.peer == phone("1001")
                && s.text.starts_with("SIP/2.0 200")
                && header(&s.text, "Call-ID") == "consult-1"
        })
        .map(|s| {
            header(&s.text, "To")
                .split("tag=")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        })
        .expect("the consultation's 200");
    consult_invite(&mut sim, "consult-1", "1002", "ACK", 1, Some(&consult_tag));
    let bridges = sim.bridged.len();
    assert_eq!(bridges, 2, "1001's consultation bridged with 1002");
    sim.run_for(secs(5));
    // The transfer: REFER on the held call, Replaces naming the consultation.
    refer(
        &mut sim,
        &inv,
        &format!("sip:1002@127.0.0.1?Replaces=consult-1%3Bto-tag%3D{consult_tag}%3Bfrom-tag%3Dconsult1001"),
        3,
    );
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("SIP/2.0 202")),
        "REFER accepted"
    );
    assert_eq!(
        notifies(&sim).last().map(String::as_str),
        Some("SIP/2.0 200 OK")
    );
    let byes_to_1001 = sim
        .sent
        .iter()
        .filter(|s| s.peer == phone("1001") && s.text.starts_with("BYE "))
        .count();
    assert_eq!(byes_to_1001, 2, "both of 1001's calls end");
    assert_eq!(sim.bridged.len(), 3, "the caller is bridged with 1002");
    let transferred_at = sim.now;
    // (Within the sim's media inactivity timeout: no RTP flows here.)
    sim.run_for(secs(10));
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    assert!(sim
        .sent
        .iter()
        .any(|s| s.peer == phone("1002") && s.text.starts_with("BYE ")));
    assert_eq!(sim.records.len(), 1, "one record per customer call");
    let r = &sim.records[0];
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(r.transfers[0].from.as_deref(), Some("1001"));
    assert_eq!(r.transfers[0].to, "agent:1002");
    assert_eq!(r.transfers[0].result.as_deref(), Some("answered"));
    assert_eq!(r.agent.as_deref(), Some("1002"));
    assert_eq!(r.holds, 1);
    let attended = queue_log_lines(&sim, "ATTENDEDTRANSFER");
    assert!(
        attended.len() == 1 && attended[0].starts_with("1001|ATTENDEDTRANSFER|BRIDGE|1002|"),
        "{attended:?}"
    );
    let parts: Vec<(&str, u64)> = r
        .agent_parts
        .iter()
        .map(|p| (p.agent.as_str(), p.talk_ms))
        .collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    // 1001 had the caller from the bridge to the transfer (hold included).
    assert_eq!(
        parts[0],
        (
            "1001",
            (transferred_at - sim.bridged[0].0).as_millis() as u64
        )
    );
    assert_eq!(parts[1], ("1002", 10_000), "{r:?}");
    assert_eq!(r.outcome, hotline::cdr::Outcome::CallerHangup);
    assert!(held_at < transferred_at);
    // Both agents are free again (1001 after its wrap-up).
    let agents = sim.engine.agent_snapshots();
    assert!(
        agents.iter().any(|a| a.id == "1002" && a.state == "idle"),
        "{agents:?}"
    );
}

/// A REFER with Replaces that names no consultation is refused by NOTIFY
/// (481), and the caller stays with the agent.
#[test]
fn a_replaces_that_names_no_consultation_is_refused() {
    let mut sim = Sim::new(config(|_| {}));
    let (_call, _tag, inv) = bridged(&mut sim);
    refer(
        &mut sim,
        &inv,
        "sip:1002@127.0.0.1?Replaces=nothing%3Bto-tag%3Da%3Bfrom-tag%3Db",
        2,
    );
    assert_eq!(
        notifies(&sim).last().map(String::as_str),
        Some("SIP/2.0 481 Call/Transaction Does Not Exist")
    );
    assert!(!sim
        .sent
        .iter()
        .any(|s| s.peer == phone("1001") && s.text.starts_with("BYE ")));
    assert!(sim.records.is_empty(), "the call goes on");
}

/// The consulted agent does not answer: the phone's call gets the
/// refusal, and the caller stays on hold with the first agent.
#[test]
fn a_consultation_refused_leaves_the_caller_on_hold() {
    let mut sim = Sim::new(config(|_| {}));
    register(&mut sim, "1002");
    let (_call, _tag, inv) = bridged(&mut sim);
    from_agent(&mut sim, &inv, "INVITE", 2, Some(&agent_sdp("sendonly")));
    from_agent(&mut sim, &inv, "ACK", 2, None);
    consult_invite(&mut sim, "consult-2", "008", "INVITE", 1, None);
    let inv2 = invite_to(&sim, "1002").expect("1002 rung, by the number callers hear");
    answer(&mut sim, "1002", &inv2, 486);
    assert_eq!(
        responses_in(&sim, "consult-2").last().map(String::as_str),
        Some("SIP/2.0 486 Not Answered")
    );
    sim.played.clear();
    sim.run_for(secs(5));
    assert!(
        sim.played_names().contains(&"moh".to_string()),
        "still on hold"
    );
    assert!(sim.records.is_empty());
}

/// The agent transfers the caller to the survey (REFER to `survey`) on a
/// queue that does not survey by itself: the agent's leg ends, the caller
/// rates, and the record says so.
#[test]
fn a_refer_to_the_survey_lets_the_caller_rate_after_the_agent_leaves() {
    let mut sim = Sim::new(config(|_| {}));
    let (call, _tag, inv) = bridged(&mut sim);
    sim.played.clear();
    refer(&mut sim, &inv, "sip:survey@127.0.0.1", 2);
    assert_eq!(
        notifies(&sim).last().map(String::as_str),
        Some("SIP/2.0 200 OK")
    );
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("BYE ")),
        "the agent leaves the call"
    );
    assert_eq!(sim.played_names(), ["survey"]);
    sim.run_for(sim.duration_of("survey"));
    press(&mut sim, call, '2');
    sim.run_for(sim.duration_of("survey_thanks") + secs(1));
    let r = sim.records.last().expect("record");
    assert!(r.survey_offered);
    assert_eq!(r.satisfaction, Some(2));
    assert_eq!(r.transfers[0].to, "survey");
    assert_eq!(r.transfers[0].from.as_deref(), Some("1001"));
    // 1001 is in wrap-up, not on the call.
    let agents = sim.engine.agent_snapshots();
    assert!(
        agents
            .iter()
            .any(|a| a.id == "1001" && a.state == "wrap_up"),
        "{agents:?}"
    );
}

/// queue_log lines from `EVENT` on (`agent|EVENT|data...`), in order.
fn queue_log_lines(sim: &Sim, event: &str) -> Vec<String> {
    sim.lines
        .iter()
        .filter(|(f, _)| f == "queue_log")
        .filter_map(|(_, l)| {
            let fields: Vec<&str> = l.trim_end().split('|').collect();
            (fields.get(4) == Some(&event)).then(|| fields[3..].join("|"))
        })
        .collect()
}

/// NOTIFY sipfrag lines sent to agent 1001, in order.
fn notifies(sim: &Sim) -> Vec<String> {
    sim.sent
        .iter()
        .filter(|s| s.peer == phone("1001") && s.text.starts_with("NOTIFY "))
        .map(|s| {
            s.text
                .rsplit("\r\n\r\n")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect()
}

fn with_extensions() -> Sim {
    Sim::new(config(|c| {
        for q in c.queues.iter_mut() {
            if q.name == "complaint" {
                q.extension = Some("8003".into());
            }
        }
    }))
}

#[test]
fn a_refer_to_another_agent_announces_the_extension_and_connects_them() {
    let mut sim = with_extensions();
    register(&mut sim, "1002");
    let (call, tag, inv) = bridged(&mut sim);
    sim.run_for(secs(30));
    sim.played.clear();
    let transferred_at = sim.now;
    refer(&mut sim, &inv, "sip:1002@127.0.0.1:5060", 2);
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("SIP/2.0 202")),
        "REFER accepted"
    );
    assert_eq!(notifies(&sim), ["SIP/2.0 100 Trying"]);
    // "正在为您转接，分机号 0 0 8" (agent 1002 is number 008), then 1002 rings.
    sim.run_for(secs(6));
    assert_eq!(
        &sim.played_names()[..4],
        ["transfer_to", "digits/0", "digits/0", "digits/8"]
    );
    let inv2 = invite_to(&sim, "1002").expect("1002 rung");
    assert!(inv2.contains("X-Hotline-Transfer: 1"));
    answer(&mut sim, "1002", &inv2, 200);
    assert_eq!(
        notifies(&sim).last().map(String::as_str),
        Some("SIP/2.0 200 OK")
    );
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("BYE ")),
        "the transferring agent's leg is hung up"
    );
    assert_eq!(sim.bridged.len(), 2, "the caller is bridged with 1002");
    sim.run_for(secs(5));
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    assert!(sim
        .sent
        .iter()
        .any(|s| s.peer == phone("1002") && s.text.starts_with("BYE ")));
    let r = sim.records.last().expect("one record");
    assert_eq!(sim.records.len(), 1, "one record per customer call");
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(r.transfers[0].from.as_deref(), Some("1001"));
    assert_eq!(r.transfers[0].to, "agent:1002");
    assert_eq!(r.transfers[0].result.as_deref(), Some("answered"));
    // queue_log: 1001's call ends as a blind transfer to 008, not a
    // COMPLETEAGENT.
    let blind = queue_log_lines(&sim, "BLINDTRANSFER");
    assert_eq!(blind.len(), 1, "{:?}", sim.lines);
    assert!(
        blind[0].starts_with("1001|BLINDTRANSFER|008|hotline|"),
        "{blind:?}"
    );
    assert!(queue_log_lines(&sim, "COMPLETEAGENT").is_empty());
    // Each agent's handle time is theirs: 1001 until the REFER, 1002
    // from its answer; the announcement and ringing are nobody's.
    assert_eq!(
        r.agent.as_deref(),
        Some("1002"),
        "the agent who served last"
    );
    let parts: Vec<(&str, u64)> = r
        .agent_parts
        .iter()
        .map(|p| (p.agent.as_str(), p.talk_ms))
        .collect();
    // Bridged within the 8 s `bridged` ran, then 30 s before the REFER.
    let first = (transferred_at - sim.bridged[0].0).as_millis() as u64;
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0], ("1001", first));
    assert_eq!(parts[1].0, "1002");
    assert!(
        (5_000..6_000).contains(&parts[1].1),
        "1002 talked 5 s: {parts:?}"
    );
    assert_eq!(r.talk_ms, Some(parts[0].1 + parts[1].1));
    // Both agents are free again afterwards (1001 after its wrap-up).
    let agents = sim.engine.agent_snapshots();
    assert!(
        agents.iter().any(|a| a.id == "1002" && a.state == "idle"),
        "{agents:?}"
    );
    let _ = call;
}

#[test]
fn a_transfer_nobody_answers_brings_the_caller_back_to_the_agent() {
    let mut sim = with_extensions();
    register(&mut sim, "1002");
    let (_, tag, inv) = bridged(&mut sim);
    refer(&mut sim, &inv, "sip:1002@127.0.0.1:5060", 2);
    sim.run_for(secs(6));
    let inv2 = invite_to(&sim, "1002").expect("1002 rung");
    answer(&mut sim, "1002", &inv2, 180);
    sim.played.clear();
    // 1002 rings 20 s: CANCEL, its 487, then the apology and 1001 again.
    sim.run_for(secs(20));
    let cancel = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.peer == phone("1002") && s.text.starts_with("CANCEL "))
        .expect("CANCEL")
        .text
        .clone();
    respond(&mut sim, phone("1002"), &cancel, 200);
    answer(&mut sim, "1002", &inv2, 487);
    sim.run_for(secs(4));
    assert!(
        sim.played_names().contains(&"transfer_failed".to_string()),
        "{:?}",
        sim.played_names()
    );
    assert_eq!(sim.bridged.len(), 2, "back with 1001");
    assert!(
        notifies(&sim)
            .last()
            .is_some_and(|n| n.starts_with("SIP/2.0 487")),
        "{:?}",
        notifies(&sim)
    );
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let r = sim.records.last().expect("record");
    assert_eq!(r.transfers[0].result.as_deref(), Some("no_answer"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    // 1002 is offered calls again.
    assert!(sim
        .engine
        .agent_snapshots()
        .iter()
        .any(|a| a.id == "1002" && a.state == "idle"));
}

#[test]
fn a_transfer_to_a_queue_through_the_api_queues_the_caller_after_the_announcement() {
    let mut sim = with_extensions();
    let (call, tag, _) = bridged(&mut sim);
    sim.played.clear();
    assert!(matches!(
        sim.act(|e, now| e.transfer(now, call, "nowhere", None)),
        Err(hotline::engine::ControlError::UnknownTarget(_))
    ));
    let transferred_at = sim.now;
    sim.act(|e, now| e.transfer(now, call, "8003", None))
        .expect("to the complaint queue");
    sim.run_for(secs(6));
    let played = sim.played_names();
    assert_eq!(
        &played[..5],
        [
            "transfer_to",
            "digits/8",
            "digits/0",
            "digits/0",
            "digits/3"
        ]
    );
    assert!(
        sim.sent
            .iter()
            .any(|s| s.peer == phone("1001") && s.text.starts_with("BYE ")),
        "1001 leaves the call"
    );
    // 1001 is in wrap-up: the complaint queue waits, with music.
    assert!(played.contains(&"moh".to_string()), "{played:?}");
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let r = sim.records.last().expect("record");
    assert_eq!(r.transfers[0].to, "queue:complaint");
    assert_eq!(r.transfers[0].result.as_deref(), Some("queued"));
    let blind = queue_log_lines(&sim, "BLINDTRANSFER");
    assert!(
        blind.len() == 1 && blind[0].starts_with("1001|BLINDTRANSFER|8003|hotline|"),
        "{blind:?}"
    );
    // The record keeps the visit in which the caller reached an agent:
    // their wait and service level are the first queue's (repair),
    // answered by 1001, whose talk ended with the transfer.
    assert_eq!(r.queue.as_deref(), Some("repair"));
    assert_eq!(r.queue_result.as_deref(), Some("answered"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    let talk = (transferred_at - sim.bridged[0].0).as_millis() as u64;
    assert_eq!(r.talk_ms, Some(talk));
    assert!(r.agent_parts.is_empty(), "one agent only");
}

/// A repair call (the repair queue does not record) bridged to 1001 and
/// hung up by the caller after 5 s: its record.
fn repair_call_record(sim: &mut Sim) -> hotline::cdr::CallRecord {
    register(sim, "1001");
    let tag = caller_presses(sim, "c1", '2');
    let inv = invite_to(sim, "1001").expect("the agent is rung");
    answer(sim, "1001", &inv, 200);
    sim.run_for(secs(10));
    assert_eq!(sim.bridged.len(), 1, "bridged");
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    sim.records.last().expect("record").clone()
}

/// Recording is per queue, per agent or per business type: a queue that
/// does not record still records an agent with `record = true`, or a call
/// of a business type listed in `[recordings] business_types`.
#[test]
fn an_agent_or_a_business_type_can_ask_for_recording() {
    let plain = repair_call_record(&mut Sim::new(config(|_| {})));
    assert_eq!(plain.recording_file, None, "repair does not record");

    let mut sim = Sim::new(config(|c| {
        for a in c.agents.iter_mut().filter(|a| a.id == "1001") {
            a.record = true;
        }
    }));
    let by_agent = repair_call_record(&mut sim);
    assert!(by_agent.recording_file.is_some(), "1001 records");
    assert_eq!(sim.call_recordings.len(), 1);
    assert!(
        sim.played_names().contains(&"recording_notice".to_string()),
        "the caller is told"
    );

    let mut sim = Sim::new(config(|c| {
        c.recordings.business_types = vec!["repair".into()]
    }));
    let by_type = repair_call_record(&mut sim);
    assert_eq!(by_type.business_type.as_deref(), Some("repair"));
    assert!(by_type.recording_file.is_some(), "repair calls record");
}

/// One 20 ms RTP packet of PCMA carrying `level`.
fn pcma_packet(seq: u16, level: i16) -> Vec<u8> {
    let codec = hotline::media::g711::Codec::from_payload_type(8).expect("PCMA");
    let payload: Vec<u8> = (0..160).map(|_| codec.encode(level)).collect();
    let mut buf = [0u8; 300];
    let len = rtp_rs::RtpPacketBuilder::new()
        .payload_type(8)
        .ssrc(9)
        .sequence(rtp_rs::Seq::from(seq))
        .timestamp(u32::from(seq) * 160)
        .payload(&payload)
        .build_into(&mut buf)
        .expect("rtp");
    buf[..len].to_vec()
}

#[test]
fn a_recorded_queue_says_so_then_records_the_caller_left_and_the_agent_right() {
    let mut sim = Sim::new(config(|c| {
        for q in c.queues.iter_mut() {
            q.record = true;
        }
    }));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "c1", '2');
    let inv = invite_to(&sim, "1001").expect("the agent is rung");
    sim.played.clear();
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(8));
    let played = sim.played_names();
    assert_eq!(
        played.first().map(String::as_str),
        Some("recording_notice"),
        "the caller hears of the recording before the agent: {played:?}"
    );
    assert_eq!(sim.bridged.len(), 1);
    let call = sim.media_started[0];
    let customer = sim.engine.customer_leg(call).expect("customer leg");
    let agent = sim
        .engine
        .call_legs(call)
        .into_iter()
        .find(|l| *l != customer)
        .expect("agent leg");
    let caller_at: std::net::SocketAddr = "127.0.0.1:6000".parse().expect("addr");
    let agent_at: std::net::SocketAddr = "127.0.0.1:7000".parse().expect("addr");
    // Three seconds: the caller loud, the agent soft.
    for seq in 0..150u16 {
        sim.leg_rtp(call, customer, caller_at, &pcma_packet(seq, 8000));
        sim.leg_rtp(call, agent, agent_at, &pcma_packet(seq, 1000));
        sim.run_for(Duration::from_millis(20));
    }
    // Written a second at a time while the call goes on.
    let (samples, ended) = sim.call_recordings.values().next().expect("chunks").clone();
    assert!(!ended);
    assert!(samples.len() >= 2 * 8000 * 2, "{} samples", samples.len());
    let bridged_for = sim.now - sim.bridged[0].0;
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let r = sim.records.last().expect("record");
    let file = r.recording_file.clone().expect("the record names the file");
    assert!(file.ends_with(&format!("{}.wav", r.call_id)), "{file}");
    let (samples, ended) = sim.call_recordings.get(&file).expect("that file").clone();
    assert!(ended, "the last chunk closes the file");
    // Stereo and in time: as long as the bridge lasted, to a frame.
    let frames = samples.len() as i64 / 2;
    let expected = bridged_for.as_millis() as i64 * 8;
    assert!(
        (frames - expected).abs() <= 160,
        "{frames} frames, {expected} expected"
    );
    let mean = |channel: usize| {
        let s: Vec<i64> = samples
            .chunks(2)
            .map(|f| i64::from(f[channel]).abs())
            .filter(|&v| v > 0)
            .collect();
        s.iter().sum::<i64>() / s.len().max(1) as i64
    };
    let (left, right) = (mean(0), mean(1));
    assert!((7000..9000).contains(&left), "caller on the left: {left}");
    assert!((800..1200).contains(&right), "agent on the right: {right}");
    assert_eq!(r.recording_error, None);
}

#[test]
fn a_recording_that_cannot_be_written_stops_but_the_call_goes_on() {
    let mut sim = Sim::new(config(|c| {
        for q in c.queues.iter_mut() {
            q.record = true;
            q.recording_notice = false;
        }
    }));
    register(&mut sim, "1001");
    let tag = caller_presses(&mut sim, "c1", '2');
    let inv = invite_to(&sim, "1001").expect("the agent is rung");
    sim.played.clear();
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(8));
    assert!(
        !sim.played_names().contains(&"recording_notice".to_string()),
        "no notice when the queue says so"
    );
    let call = sim.media_started[0];
    sim.act(|e, now| {
        e.handle_input(
            now,
            hotline::io::Input::CallRecordingFailed {
                call,
                error: "No space left on device".into(),
            },
        )
    });
    sim.run_for(secs(5));
    assert!(
        !sim.sent.iter().any(|s| s.text.starts_with("BYE ")),
        "the call goes on"
    );
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let r = sim.records.last().expect("record");
    assert!(r.recording_file.is_some());
    assert_eq!(
        r.recording_error.as_deref(),
        Some("No space left on device")
    );
    assert_eq!(r.agent.as_deref(), Some("1001"));
}

#[test]
fn on_a_node_sharing_a_store_an_agent_rung_by_a_transfer_is_held_until_it_ends() {
    use hotline::cluster::ClusterRequest;
    let mut sim = Sim::new(config(|c| {
        c.store.url = Some("postgres://hotline@db.example/hotline".into());
        c.node.id = Some("a".into());
    }));
    sim.grant_claims = true;
    register(&mut sim, "1002");
    let (_, tag, inv) = bridged(&mut sim);
    sim.cluster.clear();
    refer(&mut sim, &inv, "sip:1002@127.0.0.1:5060", 2);
    sim.run_for(secs(6));
    let inv2 = invite_to(&sim, "1002").expect("1002 rung");
    let held = ClusterRequest::Engaged {
        agent: "1002".into(),
        engaged: true,
    };
    assert!(sim.cluster.contains(&held), "{:?}", sim.cluster);
    answer(&mut sim, "1002", &inv2, 200);
    sim.run_for(secs(5));
    // A release after the hold ends it (one before it, when the ACD saw
    // the agent engaged, released nothing).
    let released = |sim: &Sim| {
        let from = sim.cluster.iter().position(|r| *r == held).unwrap_or(0);
        sim.cluster[from..].iter().any(|r| {
            matches!(r, ClusterRequest::Release { agent } if agent == "1002")
                || *r
                    == ClusterRequest::Engaged {
                        agent: "1002".into(),
                        engaged: false,
                    }
        })
    };
    assert!(
        !released(&sim),
        "held while on the transferred call: {:?}",
        sim.cluster
    );
    // The caller hangs up: 1002 is free, and no longer held.
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    sim.run_for(secs(1));
    assert!(released(&sim), "{:?}", sim.cluster);
}
