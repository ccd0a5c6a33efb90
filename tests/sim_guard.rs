//! Who may call and how much, draining on SIGTERM, and reloading on SIGHUP,
//! all under simulated time.

mod common;

use std::time::Duration;

use common::*;
use hotline::cdr::{Disposition, Outcome};
use hotline::config::{AnswerDelay, SourcePrefix};
use hotline::engine::{EngineSettings, Peer, Transport};

fn peer(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().expect("addr"),
        conn: 0,
    }
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.9:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:scanner@203.0.113.9>;tag=s1\r\n\
To: <sip:4008@127.0.0.1:5060>\r\n\
Call-ID: {branch}\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn trunks(list: &[&str]) -> Vec<SourcePrefix> {
    list.iter()
        .map(|t| SourcePrefix(t.parse().expect("prefix")))
        .collect()
}

#[test]
fn calls_from_outside_the_trunk_list_get_403_and_a_record() {
    let mut sim = Sim::new(config(|c| c.security.trunks = trunks(&["10.0.0.0/8"])));
    let stranger = peer("203.0.113.9:5060");
    sim.send_bytes(
        stranger,
        invite("x1", "z9hG4bK-x1", Some(SDP_OFFER)).as_bytes(),
    );
    let refused = sim.sent_starting("SIP/2.0 403");
    assert_eq!(refused.len(), 1);
    assert!(sim.sent_starting("SIP/2.0 180").is_empty());
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::Forbidden);
    assert_eq!(rec.disposition, Disposition::Rejected);
    assert_eq!(rec.sip_status, 403);
    assert_eq!(sim.engine.counters().calls_forbidden, 1);

    // The trunk itself is served.
    sim.send_bytes(
        peer("10.1.2.3:5060"),
        invite("t1", "z9hG4bK-t1", Some(SDP_OFFER)).as_bytes(),
    );
    assert_eq!(sim.sent_starting("SIP/2.0 180").len(), 1);
}

#[test]
fn an_invite_flood_bans_the_source_and_the_ban_expires() {
    // Anyone may call (no trunk list), 20 INVITEs a second per source.
    let mut sim = Sim::new(config(|c| {
        c.security.trunks.clear();
        c.security.invite_rate = 20;
        c.security.flood_ban = Duration::from_secs(60);
        c.calls.max_calls_per_second = 1000;
    }));
    let scanner = peer("203.0.113.9:5060");
    for i in 0..25 {
        let call = format!("f{i}");
        let branch = format!("z9hG4bK-f{i}");
        sim.send_bytes(scanner, invite(&call, &branch, Some(SDP_OFFER)).as_bytes());
    }
    // 20 pass (a second's burst), the 21st bans: it and the rest get nothing.
    assert_eq!(sim.sent_starting("SIP/2.0 100").len(), 20);
    assert_eq!(sim.engine.counters().flood_dropped, 5);
    // Banned: even an OPTIONS goes unanswered, while others are served.
    sim.send_bytes(scanner, options("z9hG4bK-o1").as_bytes());
    assert!(sim
        .sent_starting("SIP/2.0 200 OK")
        .iter()
        .all(|s| !s.text.contains("z9hG4bK-o1")));
    sim.send_bytes(peer("198.51.100.7:5060"), options("z9hG4bK-o2").as_bytes());
    assert!(sim.sent.iter().any(|s| s.text.contains("z9hG4bK-o2")));
    // 60 s later the ban is over.
    sim.run_for(Duration::from_secs(60));
    sim.send_bytes(scanner, options("z9hG4bK-o3").as_bytes());
    assert!(sim
        .sent_starting("SIP/2.0 200")
        .iter()
        .any(|s| s.text.contains("z9hG4bK-o3")));
}

#[test]
fn the_configured_trunk_is_never_banned_for_its_call_rate() {
    // The default config's trunk list is loopback, where Sim's caller is.
    let mut sim = Sim::new(config(|c| {
        c.security.invite_rate = 2;
        c.calls.max_calls_per_second = 1000;
    }));
    for i in 0..50 {
        let call = format!("p{i}");
        let branch = format!("z9hG4bK-p{i}");
        sim.send(&invite(&call, &branch, Some(SDP_OFFER)));
    }
    assert_eq!(sim.sent_starting("SIP/2.0 180").len(), 50);
    assert_eq!(sim.engine.counters().flood_dropped, 0);
}

#[test]
fn drain_refuses_new_calls_and_lets_calls_in_progress_finish() {
    let mut sim = Sim::new(config(|c| c.calls.drain_timeout = Duration::from_secs(30)));
    sim.send(&invite("a1", "z9hG4bK-a1", Some(SDP_OFFER)));
    sim.run_for(Duration::from_secs(2));
    let tag = sim.to_tag();
    sim.send(&in_dialog("ACK", "a1", "z9hG4bK-ack", 1, &tag, None));
    let now = sim.now;
    sim.engine.drain(now);
    assert!(!sim.engine.drained(), "a call is still up");
    sim.send(&invite("late", "z9hG4bK-late", Some(SDP_OFFER)));
    let busy = sim.sent_starting("SIP/2.0 503");
    assert_eq!(busy.len(), 1);
    assert!(busy[0].text.contains("Call-ID: late"));
    assert!(busy[0].text.contains("Retry-After:"));
    // The call in progress is not touched for 10 s, then the caller ends it.
    sim.run_for(Duration::from_secs(10));
    assert!(sim.sent_starting("BYE ").is_empty());
    sim.send(&in_dialog("BYE", "a1", "z9hG4bK-bye", 2, &tag, None));
    assert!(sim.engine.drained());
    let a1 = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "a1")
        .expect("a1");
    assert_eq!(a1.outcome, Outcome::CallerHangup);
}

#[test]
fn drain_timeout_hangs_up_what_is_left() {
    let mut sim = Sim::new(config(|c| c.calls.drain_timeout = Duration::from_secs(30)));
    sim.send(&invite("a1", "z9hG4bK-a1", Some(SDP_OFFER)));
    sim.run_for(Duration::from_secs(2));
    let tag = sim.to_tag();
    sim.send(&in_dialog("ACK", "a1", "z9hG4bK-ack", 1, &tag, None));
    let start = sim.now;
    sim.engine.drain(start);
    // Keep the caller's media alive (the IVR would otherwise act on
    // silence): only the drain deadline is under test here.
    let bye = sim.run_until_sent("BYE ", Duration::from_secs(31));
    assert_eq!(bye - start, Duration::from_secs(30));
    let rec = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "a1")
        .expect("a1");
    assert_eq!(rec.outcome, Outcome::Shutdown);
}

#[test]
fn reload_applies_to_new_calls_and_leaves_calls_in_progress_alone() {
    let mut sim = Sim::new(config(|c| {
        c.calls.answer_after = AnswerDelay(Duration::from_secs(2))
    }));
    sim.send(&invite("old", "z9hG4bK-old", Some(SDP_OFFER)));
    // Reload: answer after 500 ms, and a new greeting (the goodbye prompt
    // stands in for a re-recorded one).
    let text = hotline::config::DEFAULT_TOML
        .replace("answer_after = \"2s\"", "answer_after = \"500ms\"")
        .replace("prompt = \"greeting\"", "prompt = \"goodbye\"");
    let next = hotline::config::Config::parse(&text, "reloaded", std::path::Path::new("."))
        .expect("parses");
    let setup = hotline::shell::load::setup(next, "reloaded").expect("loads");
    // SIGHUP's config arrives as one input, loaded off the engine's task.
    let now = sim.now;
    sim.engine
        .handle_input(now, hotline::io::Input::Reload(Box::new(reload_of(setup))));
    sim.send(&invite("new", "z9hG4bK-new", Some(SDP_OFFER)));
    sim.run_for(Duration::from_millis(500));
    let answered = |sim: &Sim, call: &str| {
        let needle = format!("Call-ID: {call}\r\n");
        sim.sent_starting("SIP/2.0 200")
            .iter()
            .find(|s| s.text.contains(&needle))
            .map(|s| sim.elapsed(s.at))
    };
    assert_eq!(answered(&sim, "new"), Some(Duration::from_millis(500)));
    assert_eq!(answered(&sim, "old"), None);
    sim.run_for(Duration::from_millis(1500));
    assert_eq!(answered(&sim, "old"), Some(Duration::from_secs(2)));
    // The old call keeps the old program (the greeting), the new one has
    // the new one.
    let old_tag = sim.to_tag_for("old");
    let new_tag = sim.to_tag_for("new");
    sim.send(&in_dialog("ACK", "old", "z9hG4bK-a1", 1, &old_tag, None));
    sim.send(&in_dialog("ACK", "new", "z9hG4bK-a2", 1, &new_tag, None));
    sim.run_for(Duration::from_millis(100));
    let played = sim.played_names();
    assert_eq!(played, vec!["greeting".to_string(), "goodbye".to_string()]);
}

#[test]
fn a_reload_that_reshapes_the_acd_is_refused_whole() {
    let mut sim = Sim::new(config(|_| {}));
    let mut next = config(|c| c.calls.max_calls = 1);
    next.agents.pop();
    let setup = hotline::shell::load::setup(next, "reloaded").expect("loads");
    let err = sim.engine.reload(reload_of(setup)).expect_err("refused");
    assert!(err.to_string().contains("restart"), "{err}");
    // Nothing changed: the call limit is still the old one.
    sim.send(&invite("a", "z9hG4bK-a", Some(SDP_OFFER)));
    sim.send(&invite("b", "z9hG4bK-b", Some(SDP_OFFER)));
    assert_eq!(sim.sent_starting("SIP/2.0 180").len(), 2);
}

fn reload_of(setup: hotline::setup::Setup) -> hotline::io::Reload {
    hotline::io::Reload {
        settings: EngineSettings::from_config(&setup.config),
        prompts: setup.prompts,
        program: setup.program,
        directory: setup.directory,
    }
}
