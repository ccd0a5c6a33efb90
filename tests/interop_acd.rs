//! Interop tests of the ACD: the real `hotline` binary with agents' phones
//! that register with digest authentication and take queued calls, over
//! loopback. The phones are SIPp (tests/interop/agent_*.xml) and baresip;
//! callers are SIPp pressing a key as RFC 4733 events to join a queue.
//! The harness is in tests/support/mod.rs, shared with tests/interop_calls.rs.
//!
//! A SIPp agent is two SIPp runs on one port: agent_register.xml (a client
//! scenario: SIPp cannot take a call with a new Call-ID in one), then a
//! server scenario taking the engine's INVITE at the address the binding
//! came from.
//!
//! Audio: each side's SDP names a port the test listens on
//! ([`SippPorts::sdp`]); SIPp replays captures from that port, so the
//! engine's symmetric RTP sends there. The caller talks a 1000 Hz tone in
//! PCMU, the agent a 400 Hz tone in PCMA: each side must hear the other's
//! tone, in its own codec. Prompts are recognised by their exact G.711
//! frames: between the agent's answer and the bridge the caller hears the
//! agent's number (`announce_agent`, about 3.6 s in English) and the agent
//! the business type (the whisper), so every timing allows for it.
//!
//! Needs `sipp` (package sip-tester) with its sample captures, root (raw
//! sockets for the captures) and, for one test, `baresip` (package
//! baresip-core); without them tests are skipped, or fail under `CI=true`.
//! With `INTEROP_KEEP=1` each test's folder is kept.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime};

use hotline::media::g711::Codec;
use serde_json::Value;
use support::*;

/// The SIPp instance that calls; agents' phones are instances 0 and 1.
const CALLER: u16 = 2;
/// What the caller and the agent say: tones, told apart by frequency.
const CALLER_HZ: f64 = 1000.0;
const AGENT_HZ: f64 = 400.0;
/// baresip's ausine source.
const BARESIP_HZ: f64 = 440.0;

/// Short queue timings: every `[[queues]]` table gets `ring_timeout`,
/// `apology_after` and a 2 s wrap-up; the engine answers after 500 ms.
fn acd_settings(ring_timeout: &str, apology_after: &str) -> Settings {
    let q = |v: &str| format!("{v:?}");
    Settings {
        answer_after: "500ms",
        overrides: vec![
            ("[[queues]]", "ring_timeout", q(ring_timeout)),
            ("[[queues]]", "wrap_up", q("2s")),
            ("[[queues]]", "apology_after", q(apology_after)),
            // The demo tells consultation callers they may be recorded
            // (1.6 s); these tests time the bridge from the agent's number.
            ("[[queues]]", "recording_notice", "false".into()),
        ],
        ..Settings::default()
    }
}

/// Agent `agent` (password "secret") logs in from SIPp instance `k`'s
/// port: REGISTER, 401 (MD5), REGISTER with the digest, 200.
fn register(engine: &Engine, k: u16, agent: &str) {
    let args = ["-key", "agent", agent, "-au", agent, "-ap", "secret"];
    Sipp::spawn(engine, k, "agent_register.xml", &args, 15).expect_success(engine);
}

/// The agent's phone taking calls: a server scenario on the port it
/// registered from, ready when this returns.
fn phone(engine: &Engine, k: u16, agent: &str, file: &str, extra: &[&str], calls: u32) -> Sipp {
    let args = [&["-key", "agent", agent][..], extra].concat();
    let sipp = Sipp::start(engine, k, file, &args, 60, calls);
    sipp.wait_listening(engine, k);
    sipp
}

/// A capture of `ms` of a tone in `codec`, written to the test's folder.
fn tone_pcap(engine: &Engine, name: &str, hz: f64, ms: usize, codec: Codec) -> String {
    let path = engine.path().join(name);
    write_rtp_pcap(&path, &tone(hz, ms), codec);
    path.to_string_lossy().into_owned()
}

/// The caller: presses `key` (RFC 4733, SIPp's capture) 1 s after the
/// answer, 500 ms later talks `pcap`, and hangs up `talk_ms` after that
/// (uac_queue.xml), or waits for the engine's BYE (uac_queue_hung_up.xml).
fn caller(engine: &Engine, file: &str, dtmf: &str, pcap: &str, talk_ms: u64) -> Sipp {
    let d = talk_ms.to_string();
    let args = ["-key", "dtmf", dtmf, "-key", "pcap", pcap, "-d", &d];
    Sipp::spawn(engine, CALLER, file, &args, 40)
}

/// The queue_log events of one call (by the record's `call_id`), in order.
fn events_of(log: &[QueueLogLine], call_id: &str) -> Vec<String> {
    log.iter()
        .filter(|l| l.call_id == call_id)
        .map(|l| l.event.clone())
        .collect()
}

/// The one line of `log` for this call with this event.
fn event<'a>(log: &'a [QueueLogLine], call_id: &str, name: &str) -> &'a QueueLogLine {
    let lines: Vec<&QueueLogLine> = log
        .iter()
        .filter(|l| l.call_id == call_id && l.event == name)
        .collect();
    assert_eq!(lines.len(), 1, "one {name} for {call_id}: {log:#?}");
    lines[0]
}

/// The record of a caller served by `agent` (number `number`) in `queue`
/// after `offers` offers, its fields consistent with one another.
fn assert_answered(r: &Value, queue: &str, agent: &str, number: &str, offers: u64) {
    assert_eq!(str_field(r, "queue"), queue, "{r}");
    assert_eq!(str_field(r, "business_type"), queue, "{r}");
    assert_eq!(str_field(r, "queue_result"), "answered", "{r}");
    assert_eq!(str_field(r, "agent"), agent, "{r}");
    assert_eq!(str_field(r, "agent_number"), number, "{r}");
    assert_eq!(u64_field(r, "offers"), offers, "{r}");
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    let queued = time_field(r, "queued_at");
    let first_offer = time_field(r, "first_offer_at");
    let bridged = time_field(r, "bridged_at");
    let ended = time_field(r, "ended_at");
    assert!(
        ms_between(queued, first_offer) >= 0 && ms_between(first_offer, bridged) >= 0,
        "queued, offered, bridged out of order: {r}"
    );
    let wait = u64_field(r, "wait_ms") as i64;
    let talk = u64_field(r, "talk_ms") as i64;
    assert!(
        (wait - ms_between(queued, bridged)).abs() <= 5,
        "wait_ms = {wait} is not bridged_at - queued_at: {r}"
    );
    assert!(
        (talk - ms_between(bridged, ended)).abs() <= 5,
        "talk_ms = {talk} is not ended_at - bridged_at: {r}"
    );
}

/// The offers of one call (by the record's `call_id`).
fn offers_of(offers: &[Value], call_id: &str) -> Vec<Value> {
    offers
        .iter()
        .filter(|o| o["call_id"] == call_id)
        .cloned()
        .collect()
}

/// The prompts of "agent number `number` is serving you", played to the
/// caller between the agent's answer and the bridge (`announce_agent`).
fn announcement(number: &str) -> Vec<String> {
    let mut names = vec!["agent_intro".to_string()];
    names.extend(number.chars().map(|d| format!("digits/{d}")));
    names.push("agent_serving".into());
    names
}

/// How long the agent's number takes to say (prompt by prompt, a few ms
/// between them).
fn announcement_ms(language: &str, number: &str) -> u64 {
    announcement(number)
        .iter()
        .map(|name| prompt_ms(language, name) + 5)
        .sum()
}

/// A prompt's first loud frame (RMS above 1000), as the engine sends it in
/// `codec`, and its place (20 ms frames) in the prompt: exactly these 160
/// bytes in a packet mean the prompt is being heard.
fn loud_frame(language: &str, name: &str, codec: Codec) -> (usize, Vec<u8>) {
    let samples = prompt_samples(language, name);
    let (index, frame) = samples
        .chunks(160)
        .enumerate()
        .find(|(_, f)| f.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 160.0 > 1e6)
        .unwrap_or_else(|| panic!("no loud frame in {name}"));
    (index, frame.iter().map(|&x| codec.encode(x)).collect())
}

/// When each play of `name` (by its loud frame) reached the listener.
fn heard_prompt(heard: &Heard, language: &str, name: &str, codec: Codec) -> Vec<SystemTime> {
    let (_, frame) = loud_frame(language, name, codec);
    heard
        .packets
        .iter()
        .filter(|p| p.payload == frame)
        .map(|p| p.at)
        .collect()
}

/// The caller heard the agent's number, prompt after prompt, each digit
/// once; returns when the last prompt was heard.
fn assert_heard_announcement(heard: &Heard, language: &str, number: &str) -> SystemTime {
    let mut last: Option<SystemTime> = None;
    let mut names = announcement(number);
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    for name in names {
        let times = heard_prompt(heard, language, &name, Codec::Pcmu);
        let digit = name.strip_prefix("digits/");
        let plays = match digit {
            Some(d) => number.matches(d).count(),
            None => 1,
        };
        assert_eq!(
            times.len(),
            plays,
            "the caller heard {name} {} times, expected {plays}",
            times.len()
        );
        // In order: each (first) play after the one before.
        let at = times[0];
        if let Some(before) = last {
            assert!(at > before, "{name} heard before the prompt ahead of it");
        }
        last = times.last().copied().or(last);
    }
    last.expect("the announcement has prompts")
}

/// When the first packet of a tone of `hz` arrived.
fn first_tone(heard: &Heard, hz: f64) -> Option<SystemTime> {
    heard
        .packets
        .iter()
        .find(|p| p.samples().is_some_and(|s| tone_share(&s, hz) >= 0.5))
        .map(|p| p.at)
}

/// An agent answers a queued caller. While the caller hears the agent's
/// number ("agent 0 0 7 is serving you"), the agent hears the business
/// type (the whisper, "repair"); then they are connected: two-way audio,
/// transcoded (the caller offers PCMU alone, the agent answers PCMA
/// alone). The caller hangs up: the engine BYEs the agent.
#[test]
fn sipp_agent_answers_queued_caller_audio_both_ways() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(dtmf) = sample_pcap("dtmf_2833_2.pcap") else {
        return;
    };
    let ports = Ports::new(20);
    let s = acd_settings("3s", "10s");
    let mut engine = Engine::start(ports, &s);
    register(&engine, 0, "1001");

    // Both talk from the answer until the caller hangs up: the agent's
    // number, then 4 s connected.
    let announce = announcement_ms(s.language, "007");
    let connected_ms = 4000;
    let talk_ms = announce + connected_ms;
    let voice_ms = talk_ms as usize - 300;
    let agent_voice = tone_pcap(&engine, "agent.pcap", AGENT_HZ, voice_ms, Codec::Pcma);
    let caller_voice = tone_pcap(&engine, "caller.pcap", CALLER_HZ, voice_ms, Codec::Pcmu);
    let limit = Duration::from_secs(40);
    let agent_ear = RtpProbe::listen(ports.sipp(0).sdp, limit);
    let caller_ear = RtpProbe::listen(ports.sipp(CALLER).sdp, limit);
    let agent = phone(
        &engine,
        0,
        "1001",
        "agent_answer.xml",
        &["-key", "pcap", &agent_voice],
        1,
    );
    let uac = caller(&engine, "uac_queue.xml", &dtmf, &caller_voice, talk_ms);
    uac.expect_success(&engine);
    agent.expect_success(&engine);
    let agent_heard = agent_ear.finish();
    let caller_heard = caller_ear.finish();

    // Before the bridge: the caller hears the agent's number, the agent
    // the business type, in its own codec.
    let announced = assert_heard_announcement(&caller_heard, s.language, "007");
    let whisper = heard_prompt(&agent_heard, s.language, "repair", Codec::Pcma);
    assert_eq!(whisper.len(), 1, "the agent heard the whisper {whisper:?}");
    let first_voice = first_tone(&agent_heard, CALLER_HZ).expect("the caller's voice");
    assert!(
        whisper[0] < first_voice,
        "the whisper came after the bridge"
    );
    let agent_voice_at = first_tone(&caller_heard, AGENT_HZ).expect("the agent's voice");
    assert!(
        announced < agent_voice_at,
        "the caller heard the agent before the end of the announcement"
    );

    // Connected: the agent hears the caller, in PCMA; the caller hears the
    // agent (and, before, music on hold and the announcement), in PCMU.
    // Neither hears itself.
    let expected = connected_ms as usize / 20;
    assert_eq!(agent_heard.payload_types(), [8].into(), "the agent's PCMA");
    let caller_to_agent = agent_heard.tone_packets(CALLER_HZ);
    assert!(
        caller_to_agent >= expected * 2 / 3,
        "the agent heard {caller_to_agent} packets of the caller's tone, \
         about {expected} expected, in {} packets",
        agent_heard.packets.len()
    );
    assert_eq!(agent_heard.tone_packets(AGENT_HZ), 0, "agent's own echo");
    assert_eq!(
        caller_heard.payload_types(),
        [0].into(),
        "the caller's PCMU"
    );
    let agent_to_caller = caller_heard.tone_packets(AGENT_HZ);
    assert!(
        agent_to_caller >= expected * 2 / 3,
        "the caller heard {agent_to_caller} packets of the agent's tone, \
         about {expected} expected, in {} packets",
        caller_heard.packets.len()
    );
    assert_eq!(caller_heard.tone_packets(CALLER_HZ), 0, "caller's own echo");
    for p in agent_heard.packets.iter().chain(&caller_heard.packets) {
        assert_eq!(p.version, 2, "{p:?}");
        assert!(
            (ports.rtp.0..=ports.rtp.1).contains(&p.from.port()),
            "RTP from {}, outside the engine's range {:?}",
            p.from,
            ports.rtp
        );
    }

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_answered(r, "repair", "1001", "007", 1);
    assert_eq!(str_field(r, "digits"), "2", "{r}");
    assert_eq!(str_field(r, "codec"), "PCMU", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(
        ivr_path(r),
        ["welcome", "main", "repair", "repair_queue"],
        "{r}"
    );
    // Rung 500 ms (180, then 200), the announcement, then connected until
    // the caller's BYE.
    let wait = u64_field(r, "wait_ms");
    let expected_wait = 500 + announce;
    assert!(
        wait.abs_diff(expected_wait) <= 1000,
        "wait_ms = {wait}, expected about {expected_wait}: {r}"
    );
    let talk = u64_field(r, "talk_ms");
    assert!(
        talk.abs_diff(connected_ms) <= 1000,
        "talk_ms = {talk}, expected about {connected_ms}: {r}"
    );
    let bridged = time_field(r, "bridged_at");
    assert!(
        ms_between(announced, bridged) >= -100,
        "bridged before the announcement ended: {r}"
    );

    let call_id = str_field(r, "call_id");
    let log = engine.queue_log();
    assert_eq!(
        events_of(&log, call_id),
        ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"],
        "{log:#?}"
    );
    let connect = event(&log, call_id, "CONNECT");
    assert_eq!(
        (connect.queue.as_str(), connect.agent.as_str()),
        ("repair", "1001")
    );
    let offers = offers_of(&engine.offers(), call_id);
    let o = single(&offers);
    assert_eq!(str_field(o, "agent"), "1001", "{o}");
    assert_eq!(str_field(o, "outcome"), "answered", "{o}");
    assert_eq!(u64_field(o, "sip_status"), 200, "{o}");
    let ring = u64_field(o, "ring_ms");
    assert!((400..=2000).contains(&ring), "ring_ms = {ring}: {o}");
}

/// The agent hangs up first: the engine BYEs the caller, and the record
/// and queue_log say the agent ended the call.
#[test]
fn agent_hangs_up_first() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(dtmf) = sample_pcap("dtmf_2833_1.pcap") else {
        return;
    };
    let ports = Ports::new(21);
    let s = acd_settings("3s", "10s");
    let mut engine = Engine::start(ports, &s);
    register(&engine, 0, "1001");
    // The agent hangs up 2.5 s after the announcement of its number.
    let connected_ms = 2500;
    let talk_ms = announcement_ms(s.language, "007") + connected_ms;
    let agent_voice = tone_pcap(&engine, "agent.pcap", AGENT_HZ, 2000, Codec::Pcma);
    let caller_voice = tone_pcap(&engine, "caller.pcap", CALLER_HZ, 2000, Codec::Pcmu);
    let d = talk_ms.to_string();
    let agent = phone(
        &engine,
        0,
        "1001",
        "agent_hangs_up.xml",
        &["-key", "pcap", &agent_voice, "-d", &d],
        1,
    );
    // The caller stays until the engine hangs up on it.
    let uac = caller(&engine, "uac_queue_hung_up.xml", &dtmf, &caller_voice, 0);
    agent.expect_success(&engine);
    uac.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_answered(r, "consultation", "1001", "007", 1);
    assert_eq!(str_field(r, "hangup_side"), "agent", "{r}");
    assert_eq!(str_field(r, "outcome"), "completed", "{r}");
    let talk = u64_field(r, "talk_ms");
    assert!(
        talk.abs_diff(connected_ms) <= 1000,
        "talk_ms = {talk}, expected about {connected_ms}: {r}"
    );

    let call_id = str_field(r, "call_id");
    let log = engine.queue_log();
    assert_eq!(
        events_of(&log, call_id),
        ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"],
        "{log:#?}"
    );
    let offers = offers_of(&engine.offers(), call_id);
    assert_eq!(
        str_field(single(&offers), "outcome"),
        "answered",
        "{offers:?}"
    );
}

/// Two agents logged in; the first rung (1001: longest idle, first in the
/// member list) only rings. At the ring timeout (3 s here) the engine
/// CANCELs it (200 and 487 from the phone, ACK from the engine) and rings
/// 1002, who answers.
#[test]
fn agent_no_answer_moves_to_next_agent() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(dtmf) = sample_pcap("dtmf_2833_1.pcap") else {
        return;
    };
    let ports = Ports::new(22);
    let ring_timeout = "3s";
    let s = acd_settings(ring_timeout, "10s");
    let mut engine = Engine::start(ports, &s);
    register(&engine, 0, "1001");
    register(&engine, 1, "1002");
    let agent_voice = tone_pcap(&engine, "agent.pcap", AGENT_HZ, 2000, Codec::Pcma);
    let caller_voice = tone_pcap(&engine, "caller.pcap", CALLER_HZ, 2000, Codec::Pcmu);
    let sleeper = phone(&engine, 0, "1001", "agent_no_answer.xml", &[], 1);
    let answerer = phone(
        &engine,
        1,
        "1002",
        "agent_answer.xml",
        &["-key", "pcap", &agent_voice],
        1,
    );
    // 1001 rings out, 1002 rings 500 ms; its number; 2 s connected.
    let announce = announcement_ms(s.language, "008");
    let talk_ms = ms(ring_timeout) + 500 + announce + 2000;
    let uac = caller(&engine, "uac_queue.xml", &dtmf, &caller_voice, talk_ms);
    uac.expect_success(&engine);
    sleeper.expect_success(&engine);
    answerer.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_answered(r, "consultation", "1002", "008", 2);
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    let wait = u64_field(r, "wait_ms");
    let expected = ms(ring_timeout) + 500 + announce;
    assert!(
        wait.abs_diff(expected) <= 1000,
        "wait_ms = {wait}, expected about {expected}: {r}"
    );

    let call_id = str_field(r, "call_id");
    let offers = offers_of(&engine.offers(), call_id);
    assert_eq!(offers.len(), 2, "{offers:#?}");
    let (first, second) = (&offers[0], &offers[1]);
    assert_eq!(str_field(first, "agent"), "1001", "{first}");
    // Rung for the whole ring timeout: no_answer, as the queue_log's
    // RINGNOANSWER says (the CANCEL's 487 is still the status).
    assert_eq!(str_field(first, "outcome"), "no_answer", "{first}");
    assert_eq!(u64_field(first, "sip_status"), 487, "{first}");
    let ring = u64_field(first, "ring_ms");
    assert!(
        ring.abs_diff(ms(ring_timeout)) <= 500,
        "1001 rang {ring} ms, the ring timeout is {ring_timeout}: {first}"
    );
    assert_eq!(str_field(second, "agent"), "1002", "{second}");
    assert_eq!(str_field(second, "outcome"), "answered", "{second}");

    let log = engine.queue_log();
    assert_eq!(
        events_of(&log, call_id),
        ["ENTERQUEUE", "RINGNOANSWER", "CONNECT", "COMPLETECALLER"],
        "{log:#?}"
    );
    let no_answer = event(&log, call_id, "RINGNOANSWER");
    assert_eq!(no_answer.agent, "1001", "{no_answer:?}");
    let rang: u64 = no_answer.data[0].parse().expect("ring time in ms");
    assert!(rang.abs_diff(ms(ring_timeout)) <= 500, "{no_answer:?}");
    assert_eq!(event(&log, call_id, "CONNECT").agent, "1002");
}

/// The only agent logged in is busy (486 to every offer): the caller
/// waits on music on hold, hears the apology at `apology_after` (3 s
/// here; recognised by its exact PCMU frames), then gives up.
#[test]
fn caller_abandons_in_queue() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(dtmf) = sample_pcap("dtmf_2833_2.pcap") else {
        return;
    };
    let ports = Ports::new(23);
    let apology_after = "3s";
    let s = acd_settings("3s", apology_after);
    let mut engine = Engine::start(ports, &s);
    register(&engine, 0, "1001");
    let caller_voice = tone_pcap(&engine, "caller.pcap", CALLER_HZ, 1000, Codec::Pcmu);
    let caller_ear = RtpProbe::listen(ports.sipp(CALLER).sdp, Duration::from_secs(40));
    // As many offers as the engine makes.
    let busy = phone(&engine, 0, "1001", "agent_busy.xml", &[], 100);
    // Queued about 1 s after the answer; the apology at 3 s, 1.9 s long.
    let uac = caller(&engine, "uac_queue.xml", &dtmf, &caller_voice, 5000);
    uac.expect_success(&engine);
    let caller_heard = caller_ear.finish();
    let phone_log = busy.stop();

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "queue"), "repair", "{r}");
    assert_eq!(str_field(r, "queue_result"), "abandoned", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    for absent in ["agent", "agent_number", "bridged_at", "talk_ms"] {
        assert!(r[absent].is_null(), "{absent} set: {r}");
    }
    let queued = time_field(r, "queued_at");
    let wait = u64_field(r, "wait_ms") as i64;
    assert!(
        (wait - ms_between(queued, time_field(r, "ended_at"))).abs() <= 5,
        "wait_ms = {wait} is not ended_at - queued_at: {r}"
    );
    assert!((4500..=7000).contains(&wait), "wait_ms = {wait}: {r}");

    // The apology, from its first loud frame, at apology_after.
    let (index, frame) = loud_frame(s.language, "sorry_wait", Codec::Pcmu);
    let heard_at = caller_heard
        .first_with_payload(&frame)
        .unwrap_or_else(|| panic!("the caller never heard the apology ({r})"));
    let started = ms_between(queued, heard_at) - index as i64 * 20;
    assert!(
        started.abs_diff(ms(apology_after) as i64) <= 700,
        "the apology started {started} ms after the caller was queued, \
         apology_after = {apology_after}"
    );

    let call_id = str_field(r, "call_id");
    let offers = offers_of(&engine.offers(), call_id);
    assert!(
        !offers.is_empty(),
        "the busy agent was never offered the call"
    );
    assert_eq!(
        u64_field(r, "offers"),
        offers.len() as u64,
        "{r}\n{offers:#?}"
    );
    for o in &offers {
        assert_eq!(str_field(o, "agent"), "1001", "{o}");
        assert_eq!(str_field(o, "outcome"), "busy", "{o}");
        assert_eq!(u64_field(o, "sip_status"), 486, "{o}");
    }
    // Every 486 was ACKed: as many ACKs reached the phone as INVITEs.
    let count = |start: &str| {
        phone_log
            .lines()
            .filter(|l| l.starts_with(start) && l.contains("SIP/2.0"))
            .count()
    };
    assert_eq!(count("INVITE "), offers.len(), "{phone_log}");
    assert_eq!(count("ACK "), offers.len(), "{phone_log}");

    let log = engine.queue_log();
    let events = events_of(&log, call_id);
    assert_eq!(
        events.first().map(String::as_str),
        Some("ENTERQUEUE"),
        "{log:#?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("ABANDON"),
        "{log:#?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "RINGNOANSWER").count(),
        offers.len(),
        "{log:#?}"
    );
    assert!(!events.iter().any(|e| e == "CONNECT"), "{log:#?}");
}

/// A wrong password gets 403 (after the challenge); the fifth failure
/// from one address bans it: even a REGISTER with the right password gets
/// 403 at once, with Retry-After (at most the 5 min ban).
#[test]
fn wrong_password_refused() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(24);
    let mut engine = Engine::start(ports, &acd_settings("3s", "10s"));
    let wrong = ["-key", "agent", "1001", "-au", "1001", "-ap", "not-secret"];
    // Five tries, each a new registration: 401, then 403 without Retry-After.
    Sipp::start(&engine, 0, "agent_register_wrong.xml", &wrong, 20, 5).expect_success(&engine);
    let right = ["-key", "agent", "1001", "-au", "1001", "-ap", "secret"];
    let banned =
        Sipp::spawn(&engine, 0, "agent_register_banned.xml", &right, 15).expect_success(&engine);
    let logs = banned.logs();
    let retry: u64 = logs
        .lines()
        .find_map(|l| l.trim().strip_prefix("retry_after="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After logged: {logs:?}"));
    assert!((1..=300).contains(&retry), "Retry-After: {retry}");

    assert!(
        !engine.log_text().contains("agent registered"),
        "{}",
        engine.log_tail()
    );
    let records = engine.stop_and_read_records();
    assert!(records.is_empty(), "{records:#?}");
    assert!(engine.offers().is_empty());
    let log = engine.queue_log();
    assert!(log.is_empty(), "nobody logged in: {log:#?}");
}

// ---- baresip -----------------------------------------------------------------

/// baresip, headless, as an agent's phone: its own config folder, SIP on
/// the port of phone `k`, RTP in that phone's media ports, a 440 Hz tone
/// (ausine) as its microphone, ALSA's null device as its speaker, and
/// what it hears dumped to WAV files (sndfile). It registers at once and
/// answers every call (`answermode=auto`, the menu module).
struct Baresip {
    child: Child,
    dir: PathBuf,
}

impl Baresip {
    /// Starts baresip for `agent`; with `instance_id`, its uuid module
    /// adds `+sip.instance="<urn:uuid:...>"` to its Contact, as it does by
    /// default.
    fn start(engine: &Engine, k: u16, agent: &str, instance_id: bool) -> Baresip {
        let dir = engine.path().join(format!("baresip{k}"));
        let dumps = dir.join("heard");
        fs::create_dir_all(&dumps).expect("baresip folder");
        let p = engine.ports.sipp(k);
        let uuid = if instance_id {
            "module_tmp\t\tuuid.so\n"
        } else {
            ""
        };
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip}\n\
             net_interface\t\t127.0.0.1\n\
             rtp_ports\t\t{rtp}-{rtp_end}\n\
             call_local_timeout\t120\n\
             call_max_calls\t\t4\n\
             audio_player\t\talsa,null\n\
             audio_alert\t\talsa,null\n\
             audio_source\t\tausine,{hz}\n\
             ausrc_srate\t\t48000\n\
             ausrc_channels\t\t2\n\
             snd_path\t\t{dumps}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\tausine.so\n\
             module\t\t\talsa.so\n\
             module\t\t\tsndfile.so\n\
             {uuid}\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            // baresip also binds TLS on the next port, so each baresip gets
            // a pair of its own, apart from the SIPp ports.
            sip = 14000 + 2 * engine.ports.n,
            rtp = p.media,
            rtp_end = p.media + 3,
            hz = BARESIP_HZ,
            dumps = dumps.display(),
        );
        fs::write(dir.join("config"), config).expect("baresip config");
        let account = format!(
            "<sip:{agent}@127.0.0.1:{port}>;auth_pass=secret;regint=60;answermode=auto\n",
            port = engine.ports.sip
        );
        fs::write(dir.join("accounts"), account).expect("baresip accounts");
        let out = fs::File::create(dir.join("baresip.out")).expect("baresip output");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .arg("-s") // SIP trace, into baresip.out
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output file"))
            .stderr(out)
            .spawn()
            .expect("start baresip");
        Baresip { child, dir }
    }

    fn output(&self) -> String {
        let bytes = fs::read(self.dir.join("baresip.out")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the engine has `agent`'s binding from this phone.
    fn wait_registered(&mut self, engine: &Engine, agent: &str) {
        let needle = format!("agent registered agent={agent}");
        for _ in 0..200 {
            if engine.log_text().contains(&needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("baresip exited ({status}):\n{}", tail(&self.output(), 6000));
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "baresip did not register within 10 s.\n--- baresip ---\n{}\n--- hotline ---\n{}",
            tail(&self.output(), 6000),
            engine.log_tail()
        );
    }

    /// Stops baresip (SIGTERM: it unregisters and closes its dumps).
    fn stop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }

    /// What baresip heard: the WAV its sndfile module wrote for the
    /// decoded side of the call.
    fn heard(&self) -> Option<PathBuf> {
        files_ending(&self.dir.join("heard"), "-dec.wav").pop()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- baresip (tail) ---\n{}", tail(&self.output(), 6000));
        }
    }
}

/// Packets of `samples` (20 ms each) that are mostly a tone of `hz`.
fn tone_frames(samples: &[i16], hz: f64) -> usize {
    samples
        .chunks(160)
        .filter(|f| tone_share(f, hz) >= 0.5)
        .count()
}

fn wav_samples(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(reader.spec().sample_rate, 8000, "{}", path.display());
    reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("bad samples in {}: {e}", path.display()))
}

/// Settings for baresip 1.0: its digest code (libre 1.1) gives up with
/// ENOSYS ("Register: Function not implemented") when any challenge names
/// an algorithm other than MD5, so the SHA-256 challenge of the default
/// config must go.
fn baresip_settings() -> Settings {
    let mut s = acd_settings("5s", "10s");
    s.overrides
        .push(("[registrar]", "algorithms", "[\"MD5\"]".into()));
    s
}

/// The caller's half of a call to a baresip agent: presses 3 (complaint),
/// talks a 1000 Hz tone, hangs up after `talk_ms`; returns what the caller
/// heard.
fn call_baresip(engine: &Engine, talk_ms: u64) -> Heard {
    let dtmf = sample_pcap("dtmf_2833_3.pcap").expect("checked by the caller");
    let caller_voice = tone_pcap(
        engine,
        "caller.pcap",
        CALLER_HZ,
        talk_ms as usize - 300,
        Codec::Pcmu,
    );
    let caller_ear = RtpProbe::listen(engine.ports.sipp(CALLER).sdp, Duration::from_secs(40));
    caller(engine, "uac_queue.xml", &dtmf, &caller_voice, talk_ms).expect_success(engine);
    caller_ear.finish()
}

/// baresip as agent 1002: it registers (MD5 digest), auto-answers the
/// engine's INVITE, and the caller hears its tone; baresip hears the
/// caller's. The caller hangs up; baresip gets the BYE.
#[test]
fn baresip_agent_answers() {
    if !require_tool("sipp") || !require_tool("baresip") || !require_root() {
        return;
    }
    if sample_pcap("dtmf_2833_3.pcap").is_none() {
        return;
    }
    let ports = Ports::new(25);
    let mut engine = Engine::start(ports, &baresip_settings());
    let mut phone = Baresip::start(&engine, 0, "1002", false);
    phone.wait_registered(&engine, "1002");

    // baresip answers at once; its number; 4 s connected.
    let connected_ms = 4000;
    let talk_ms = announcement_ms("en", "008") + connected_ms;
    let caller_heard = call_baresip(&engine, talk_ms);
    phone.stop();

    assert_heard_announcement(&caller_heard, "en", "008");
    assert_eq!(
        caller_heard.payload_types(),
        [0].into(),
        "the caller's PCMU"
    );
    let from_phone = caller_heard.tone_packets(BARESIP_HZ);
    let expected = connected_ms as usize / 20;
    assert!(
        from_phone >= expected * 2 / 3,
        "the caller heard {from_phone} packets of baresip's {BARESIP_HZ} Hz tone \
         in {} packets (about {expected} expected)",
        caller_heard.packets.len(),
    );
    let heard = phone
        .heard()
        .unwrap_or_else(|| panic!("baresip wrote no WAV of what it heard"));
    let to_phone = tone_frames(&wav_samples(&heard), CALLER_HZ);
    assert!(
        to_phone >= expected * 2 / 3,
        "baresip heard {to_phone} frames of the caller's {CALLER_HZ} Hz tone \
         (about {expected} expected) in {}",
        heard.display()
    );

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_answered(r, "complaint", "1002", "008", 1);
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    let call_id = str_field(r, "call_id");
    let offers = offers_of(&engine.offers(), call_id);
    let o = single(&offers);
    assert_eq!(str_field(o, "agent"), "1002", "{o}");
    assert_eq!(str_field(o, "outcome"), "answered", "{o}");
    let log = engine.queue_log();
    assert_eq!(
        events_of(&log, call_id),
        ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"],
        "{log:#?}"
    );
    // Stopping, baresip unregistered (Expires 0): the binding went.
    assert!(
        engine
            .log_text()
            .contains("agent binding removed agent=1002"),
        "{}",
        engine.log_tail()
    );
}

// ---- engine bugs, reproduced ---------------------------------------------------

/// baresip as it comes (its uuid module loaded) puts
/// `+sip.instance="<urn:uuid:...>"` after its Contact URI. The engine takes
/// the URI up to the *last* '>' (inside the quoted instance id), so the
/// binding, the INVITE's Request-URI and the To are garbage, the Contact's
/// `expires` is not seen (60 s becomes 3600 s), and baresip's
/// unregistration (expires=0) adds a second garbage binding instead of
/// removing the first.
#[test]
fn baresip_with_instance_id_keeps_a_clean_binding() {
    if !require_tool("sipp") || !require_tool("baresip") || !require_root() {
        return;
    }
    if sample_pcap("dtmf_2833_3.pcap").is_none() {
        return;
    }
    let ports = Ports::new(26);
    let mut engine = Engine::start(ports, &baresip_settings());
    let mut phone = Baresip::start(&engine, 0, "1002", true);
    phone.wait_registered(&engine, "1002");
    let registered = engine.log_text();
    let line = registered
        .lines()
        .find(|l| l.contains("agent registered agent=1002"))
        .expect("registered");
    assert!(
        !line.contains("sip.instance") && !line.contains('>'),
        "the binding's contact is not the Contact's URI: {line}"
    );
    // Long enough to be connected after the agent's number is announced.
    call_baresip(&engine, 6000);
    phone.stop();
    engine.wait_for_log("agent binding removed agent=1002", Duration::from_secs(5));
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "queue_result"), "answered", "{r}");
    assert_eq!(str_field(r, "agent"), "1002", "{r}");
}

/// A caller whose phone sends 30 ms packets (SIPp's g711a.pcap: 240
/// samples of PCMA each). The engine relays only the last 80 samples of
/// each packet to the agent (`MediaSession::handle_rtp` keeps the last
/// 160-sample chunk as `last_audio`), so two thirds of the caller's voice
/// never reach the agent.
#[test]
fn caller_30ms_packets_reach_the_agent_whole() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let (Some(dtmf), Some(speech)) = (sample_pcap("dtmf_2833_2.pcap"), sample_pcap("g711a.pcap"))
    else {
        return;
    };
    let ports = Ports::new(27);
    let mut engine = Engine::start(ports, &acd_settings("3s", "10s"));
    register(&engine, 0, "1001");
    let agent_voice = tone_pcap(&engine, "agent.pcap", AGENT_HZ, 1000, Codec::Pcma);
    let agent_ear = RtpProbe::listen(ports.sipp(0).sdp, Duration::from_secs(40));
    let agent = phone(
        &engine,
        0,
        "1001",
        "agent_answer.xml",
        &["-key", "pcap", &agent_voice],
        1,
    );
    // The speech (7 s) from the answer: the agent's number, 3 s connected.
    let talk_ms = announcement_ms("en", "007") + 3000;
    caller(&engine, "uac_queue.xml", &dtmf, &speech, talk_ms).expect_success(&engine);
    agent.expect_success(&engine);
    let heard = agent_ear.finish();
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "queue_result"), "answered", "{r}");
    // What the agent heard once connected (the whisper came before).
    let bridged = time_field(r, "bridged_at");
    let relayed: Vec<&RtpPacket> = heard
        .packets
        .iter()
        .filter(|p| p.payload_type == 8 && ms_between(bridged, p.at) >= 0)
        .collect();
    let (Some(first), Some(last)) = (relayed.first(), relayed.last()) else {
        panic!("the agent heard nothing once connected: {r}");
    };
    let span_ms = ms_between(first.at, last.at) + 30;
    let samples: usize = relayed.iter().map(|p| p.payload.len()).sum();
    let sizes: std::collections::BTreeSet<usize> =
        relayed.iter().map(|p| p.payload.len()).collect();
    assert!(
        samples as i64 * 1000 >= span_ms * 8000 * 9 / 10,
        "the agent got {samples} samples in {span_ms} ms of the caller's speech \
         (8 per ms expected, the caller sends 240 per 30 ms packet); \
         payload sizes: {sizes:?}"
    );
}

// ---- the HTTP API -------------------------------------------------------------

/// One HTTP/1.1 request to the engine's API; returns (status, body).
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_string()
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{ctype}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_http_api_shows_and_changes_agent_status() {
    let ports = Ports::new(28);
    let mut engine = Engine::start(ports, &Settings::default());
    let api = ports.api();
    let (status, body) = http(api, "GET", "/api/v1/agents", None, "");
    assert_eq!(status, 200, "{body}");
    let agents: Value = serde_json::from_str(&body).expect("JSON");
    let first = &agents[0];
    assert_eq!(first["id"], "1001");
    assert_eq!(first["number"], "007");
    assert_eq!(first["status"], "logged_out");
    assert_eq!(first["registered"], false);

    let (status, _) = http(api, "POST", "/api/v1/agents/1001/login", None, "");
    assert_eq!(status, 401, "no token");
    let (status, _) = http(api, "POST", "/api/v1/agents/1001/login", Some("wrong"), "");
    assert_eq!(status, 401, "wrong token");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/agents/1001/login",
        Some("demo-token"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"available\""), "{body}");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/agents/1001/break",
        Some("demo-token"),
        "{\"reason\":\"lunch\"}",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"status\":\"on_break\"") && body.contains("lunch"),
        "{body}"
    );
    let (status, _) = http(
        api,
        "POST",
        "/api/v1/agents/9999/login",
        Some("demo-token"),
        "",
    );
    assert_eq!(status, 404);
    let records = engine.stop_and_read_records();
    assert!(records.is_empty());
    let paused = engine.queue_log().into_iter().any(|l| {
        l.event == "PAUSE"
            && l.agent == "1001"
            && l.data.first().map(String::as_str) == Some("lunch")
    });
    assert!(paused, "queue_log has the PAUSE with its reason");
}
