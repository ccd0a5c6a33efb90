//! Interop tests of the in-call controls: the real `hotline` binary with
//! SIPp agents' phones and SIPp callers over loopback. An agent puts the
//! caller on hold with a re-INVITE and takes them back; an agent transfers
//! the caller blind with REFER, to another agent and to a queue; an agent
//! holds the caller, consults another agent from the same phone and
//! transfers with REFER + Replaces (attended); a queue records its calls
//! to a stereo WAV; a queue asks the caller to rate the service when the
//! agent hangs up first.
//!
//! The agents are SIPp (tests/interop/agent_register.xml, then a server
//! scenario on the port they registered from: agent_hold.xml,
//! agent_refer.xml, agent_transfer_target.xml, agent_answer.xml,
//! agent_hangs_up.xml), except the phone of the attended transfer, which
//! holds two calls at once (SIPp tells calls apart by Call-ID): the test
//! drives it over its own UDP socket, on the port SIPp registered it
//! from, and sends and hears its RTP itself (800 Hz in the consultation).
//! The callers are SIPp pressing 1 as RFC 4733 events to join the
//! consultation queue (uac_queue.xml, uac_survey.xml). Audio is replayed from captures written by the test (tones: the caller
//! 1000 Hz in PCMU, the first agent 400 Hz and the second 600 Hz in PCMA)
//! from the port in each side's SDP, where the test listens for what the
//! engine sends that side. Prompts are recognised by their exact G.711
//! frames, as in tests/interop_acd.rs.
//!
//! Ports: test `i` (0..=5) has a block of its own: engine SIP
//! 15800 + 10i, SIPp agents 15801 + 10i and 15802 + 10i, the caller
//! 15803 + 10i (control ports 15804..=15806 + 10i); engine RTP
//! 23000 + 100i (50 ports), SIPp media 23050 + 100i (20 ports); API
//! 18500 + i.
//!
//! Needs `sipp` (package sip-tester) with its sample captures, root (raw
//! sockets for the captures) and, for the recording, `sox`; without them
//! tests are skipped, or fail under `CI=true`. With `INTEROP_KEEP=1` each
//! test's folder is kept.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use hotline::media::g711::Codec;
use serde_json::Value;
use support::*;

const LANGUAGE: &str = "en";
/// What each side says: tones, told apart by frequency.
const CALLER_HZ: f64 = 1000.0;
const AGENT_HZ: f64 = 400.0;
const SECOND_AGENT_HZ: f64 = 600.0;
/// The consultation queue's key, as SIPp's RFC 4733 capture.
const QUEUE_KEY: &str = "dtmf_2833_1.pcap";
/// From the caller's answer to the agent's 200 OK, about: the key is sent
/// 1 s after the answer, the agent rings 500 ms (the scenarios' own
/// pause), and SIPp starts the caller's talk 1.5 s after the answer.
const AGENT_ANSWER_MS: u64 = 1700;
const CALLER_TALK_START_MS: u64 = 1500;

// ---- ports, config, peers -----------------------------------------------------

/// Test `i`'s ports (see the module's comment) and its caller's SIPp ports.
fn ports(i: u16) -> (Ports, SippPorts) {
    assert!(i < 6);
    let sip = 15800 + 10 * i;
    let rtp = 23000 + 100 * i;
    let media = rtp + 50;
    let ports = Ports::block(
        200 + i,
        sip,
        (rtp, rtp + 49),
        PortBlock {
            sipp_sip: [sip + 1, sip + 2],
            sipp_control: [sip + 4, sip + 5],
            media,
            api: 18500 + i,
        },
    );
    let caller = SippPorts {
        sip: sip + 3,
        control: sip + 6,
        media: media + 12,
        sdp: media + 16,
    };
    (ports, caller)
}

/// Short queue timings: the engine answers after 500 ms, agents ring 5 s
/// at most, wrap-up is 2 s, no apology while the tests run.
fn settings() -> Settings {
    let q = |v: &str| format!("{v:?}");
    Settings {
        answer_after: "500ms",
        overrides: vec![
            ("[[queues]]", "ring_timeout", q("5s")),
            ("[[queues]]", "wrap_up", q("2s")),
            ("[[queues]]", "apology_after", q("60s")),
        ],
        ..Settings::default()
    }
}

/// `key = value` in the `[[queues]]` table of `queue`: replaced if the
/// table has the key, else added after its `name`.
fn queue_key(text: &str, queue: &str, key: &str, value: &str) -> String {
    let name_line = format!("name = \"{queue}\"");
    let mut out = Vec::new();
    let (mut in_queues, mut this_queue, mut done) = (false, false, false);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let t = line.trim();
        if t.starts_with('[') {
            in_queues = t == "[[queues]]";
            this_queue = false;
        }
        if in_queues && t == name_line {
            this_queue = true;
            let has_key = lines
                .iter()
                .skip_while(|l| l.trim() != name_line)
                .skip(1)
                .take_while(|l| !l.trim().starts_with('['))
                .any(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key));
            out.push(line.to_string());
            if !has_key {
                out.push(format!("{key} = {value}"));
                done = true;
            }
            continue;
        }
        if this_queue && t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            out.push(format!("{key} = {value}"));
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    assert!(done, "no [[queues]] table named {queue}");
    out.join("\n") + "\n"
}

/// `[recordings] dir = "recordings"` (in the engine's folder).
fn with_recordings(text: &str) -> String {
    if text.lines().any(|l| l.trim() == "[recordings]") {
        set_key(text, "[recordings]", "dir", "\"recordings\"")
    } else {
        format!("{text}\n[recordings]\ndir = \"recordings\"\n")
    }
}

/// An engine on `ports` with [`settings`], no queue recording or asking
/// for a rating (whatever config/default.toml says), then these
/// `(queue, key, value)`.
fn engine_with(ports: Ports, queues: &[(&str, &str, &str)], recordings: bool) -> Engine {
    let mut text = config_toml(&ports, &settings());
    let plain = ["consultation", "repair", "complaint"]
        .into_iter()
        .flat_map(|q| [(q, "record", "false"), (q, "survey", "false")]);
    for (queue, key, value) in plain.chain(queues.iter().copied()) {
        text = queue_key(&text, queue, key, value);
    }
    if recordings {
        text = with_recordings(&text);
    }
    Engine::start_config(ports, &text, &[])
}

/// Agent `agent` (password "secret") logs in from SIPp instance `k`'s port.
fn register(engine: &Engine, k: u16, agent: &str) {
    let args = ["-key", "agent", agent, "-au", agent, "-ap", "secret"];
    Sipp::spawn(engine, k, "agent_register.xml", &args, 15).expect_success(engine);
}

/// The agent's phone taking one call: a server scenario on the port it
/// registered from, ready when this returns.
fn phone(engine: &Engine, k: u16, agent: &str, file: &str, extra: &[&str]) -> Sipp {
    let args = [&["-key", "agent", agent][..], extra].concat();
    let sipp = Sipp::start(engine, k, file, &args, 90, 1);
    sipp.wait_listening(engine, k);
    sipp
}

/// The caller, on its own ports: `file` with these keys and `-d`.
fn caller(engine: &Engine, ports: SippPorts, file: &str, args: &[&str], d_ms: u64) -> Sipp {
    let d = d_ms.to_string();
    let args = [args, &["-d", &d]].concat();
    Sipp::start_on(engine, ports, "caller", file, &args, 90, 1)
}

/// A capture of `samples` in `codec`, written to the test's folder.
fn pcap(engine: &Engine, name: &str, samples: &[i16], codec: Codec) -> String {
    let path = engine.path().join(name);
    write_rtp_pcap(&path, samples, codec);
    path.to_string_lossy().into_owned()
}

/// `silent_ms` of silence, `tone_ms` of a tone of `hz`, `after_ms` of
/// silence.
fn silence_tone_silence(silent_ms: u64, hz: f64, tone_ms: u64, after_ms: u64) -> Vec<i16> {
    let mut samples = vec![0i16; silent_ms as usize * 8];
    samples.extend(tone(hz, tone_ms as usize));
    samples.extend(std::iter::repeat_n(0i16, after_ms as usize * 8));
    samples
}

// ---- prompts heard --------------------------------------------------------------

/// How long prompts take to say, one after the other (a few ms between).
fn prompts_ms(names: &[String]) -> u64 {
    names.iter().map(|n| prompt_ms(LANGUAGE, n) + 5).sum()
}

/// "Agent 0 0 7 is serving you", played between the agent's answer and
/// the bridge.
fn agent_announcement(number: &str) -> Vec<String> {
    let mut names = vec!["agent_intro".to_string()];
    names.extend(number.chars().map(|d| format!("digits/{d}")));
    names.push("agent_serving".into());
    names
}

/// "Transferring you to extension 8 0 0 3", before the caller moves.
fn transfer_announcement(extension: &str) -> Vec<String> {
    let mut names = vec!["transfer_to".to_string()];
    names.extend(extension.chars().map(|d| format!("digits/{d}")));
    names
}

/// A prompt's first loud frame (RMS above 1000) as the engine sends it in
/// `codec`: exactly these bytes in a packet mean the prompt is heard.
fn loud_frame(name: &str, codec: Codec) -> Vec<u8> {
    let samples = prompt_samples(LANGUAGE, name);
    let frame = samples
        .chunks(160)
        .find(|f| f.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 160.0 > 1e6)
        .unwrap_or_else(|| panic!("no loud frame in {name}"));
    frame.iter().map(|&x| codec.encode(x)).collect()
}

/// When each play of `name` reached the caller (PCMU).
fn heard(heard: &Heard, name: &str) -> Vec<SystemTime> {
    let frame = loud_frame(name, Codec::Pcmu);
    heard
        .packets
        .iter()
        .filter(|p| p.payload == frame)
        .map(|p| p.at)
        .collect()
}

/// The caller heard `names` one after the other, from the first play of
/// `names[0]`: among the announcements' prompts (digits, "agent ... is
/// serving you", "transferring you to extension"), the next ones heard
/// are exactly these, each digit as often as it is said. Returns when
/// the first and the last were heard.
fn assert_heard_in_order(h: &Heard, names: &[String]) -> (SystemTime, SystemTime) {
    let mut candidates: Vec<String> = (0..10).map(|d| format!("digits/{d}")).collect();
    candidates.extend(
        [
            "agent_intro",
            "agent_serving",
            "transfer_to",
            "recording_notice",
        ]
        .map(String::from),
    );
    candidates.extend(names.iter().cloned());
    let frames: Vec<(String, Vec<u8>)> = candidates
        .into_iter()
        .map(|n| {
            let frame = loud_frame(&n, Codec::Pcmu);
            (n, frame)
        })
        .collect();
    let sequence: Vec<(&str, SystemTime)> = h
        .packets
        .iter()
        .filter_map(|p| {
            frames
                .iter()
                .find(|(_, f)| *f == p.payload)
                .map(|(n, _)| (n.as_str(), p.at))
        })
        .skip_while(|(n, _)| *n != names[0])
        .take(names.len())
        .collect();
    let heard: Vec<&str> = sequence.iter().map(|(n, _)| *n).collect();
    assert_eq!(heard, names, "the prompts the caller heard, in order");
    (sequence[0].1, sequence[sequence.len() - 1].1)
}

/// Packets heard in `[from, to)` that are a tone of `hz`: nine tenths of
/// their energy at that frequency (a frame of speech in a prompt can have
/// half).
fn tone_between(h: &Heard, hz: f64, from: SystemTime, to: SystemTime) -> usize {
    h.packets
        .iter()
        .filter(|p| p.at >= from && p.at < to)
        .filter_map(|p| p.samples())
        .filter(|s| tone_share(s, hz) >= 0.9)
        .count()
}

fn packets_between(h: &Heard, from: SystemTime, to: SystemTime) -> usize {
    h.packets
        .iter()
        .filter(|p| p.at >= from && p.at < to)
        .count()
}

fn at_offset(t: SystemTime, ms: i64) -> SystemTime {
    if ms >= 0 {
        t + Duration::from_millis(ms as u64)
    } else {
        t - Duration::from_millis(ms.unsigned_abs())
    }
}

/// The one record, once the engine has stopped cleanly.
fn only_record(engine: &mut Engine) -> Value {
    let records = engine.stop_and_read_records();
    single(&records).clone()
}

// ---- hold -------------------------------------------------------------------------

/// The agent's phone puts the caller on hold with a re-INVITE (sendonly):
/// the engine answers recvonly and stops sending to the phone; the caller
/// hears "please hold" then music, and none of the agent; 6 s later the
/// phone resumes (sendrecv, answered sendrecv): the caller hears the
/// apology, then the agent again. The record says one hold of about 6 s.
#[test]
fn a_hold_reinvite_plays_music_to_the_caller_and_the_record_counts_it() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(key) = sample_pcap(QUEUE_KEY) else {
        return;
    };
    let (ports, caller_ports) = ports(0);
    let mut engine = engine_with(ports, &[], false);
    register(&engine, 0, "1001");

    let announce = prompts_ms(&agent_announcement("007"));
    let hold_after = announce + 2000;
    let hold_ms = 6000;
    let resumed_ms = prompts_ms(&["sorry_wait".to_string()]) + 2500;
    let agent_talk = hold_after + hold_ms + resumed_ms;
    let caller_d = AGENT_ANSWER_MS - CALLER_TALK_START_MS + agent_talk;
    let agent_voice = pcap(
        &engine,
        "agent.pcap",
        &tone(AGENT_HZ, agent_talk as usize + 1000),
        Codec::Pcma,
    );
    let caller_voice = pcap(
        &engine,
        "caller.pcap",
        &tone(CALLER_HZ, caller_d as usize - 300),
        Codec::Pcmu,
    );
    let limit = Duration::from_secs(60);
    let agent_ear = RtpProbe::listen(ports.sipp(0).sdp, limit);
    let caller_ear = RtpProbe::listen(caller_ports.sdp, limit);
    let d = hold_after.to_string();
    let agent = phone(
        &engine,
        0,
        "1001",
        "agent_hold.xml",
        &["-key", "pcap", &agent_voice, "-d", &d],
    );
    let uac = caller(
        &engine,
        caller_ports,
        "uac_queue.xml",
        &["-key", "dtmf", &key, "-key", "pcap", &caller_voice],
        caller_d,
    );
    uac.expect_success(&engine);
    let agent = agent.expect_success(&engine);
    let to_agent = agent_ear.finish();
    let to_caller = caller_ear.finish();

    // The SDP answers, as the phone saw them.
    let logs = agent.logs();
    assert!(
        logs.contains("hold answer: a=recvonly") || logs.contains("hold answer: a=inactive"),
        "{logs}"
    );
    assert!(logs.contains("resume answer: a=sendrecv"), "{logs}");

    // Connected, then "please hold" and music, then "sorry to have kept
    // you waiting" and the agent again.
    let held = heard(&to_caller, "hold_start");
    assert_eq!(held.len(), 1, "the caller heard the hold prompt once");
    let back = heard(&to_caller, "sorry_wait");
    assert_eq!(back.len(), 1, "the caller heard the apology once");
    let (held, back) = (held[0], back[0]);
    let on_hold = ms_between(held, back);
    assert!(
        (4000..=8000).contains(&on_hold),
        "from the hold prompt to the apology: {on_hold} ms, about {hold_ms} expected"
    );
    let start = to_caller.packets[0].at;
    let end = to_caller.packets.last().expect("packets").at + Duration::from_millis(1);
    let before = tone_between(&to_caller, AGENT_HZ, start, held);
    assert!(
        before >= 50,
        "the agent was heard before the hold: {before}"
    );
    // While held: no agent, but sound all along (the prompt, then music).
    let while_held = tone_between(&to_caller, AGENT_HZ, held, back);
    assert_eq!(while_held, 0, "the caller heard the agent while on hold");
    let music = heard(&to_caller, "moh")
        .into_iter()
        .filter(|t| *t > held && *t < back)
        .count();
    assert!(music >= 1, "no music on hold heard between the prompts");
    let window = on_hold as usize / 20;
    let packets = packets_between(&to_caller, held, back);
    assert!(
        packets >= window * 9 / 10,
        "{packets} packets to the caller in {on_hold} ms on hold: the audio stopped"
    );
    let sound = to_caller
        .packets
        .iter()
        .filter(|p| p.at >= held && p.at < back)
        .filter(|p| p.payload.iter().any(|&b| b != 0xFF))
        .count();
    assert!(
        sound >= window * 3 / 4,
        "{sound} of {packets} held packets carry sound"
    );
    let after = tone_between(&to_caller, AGENT_HZ, back, end);
    assert!(
        after >= 50,
        "the agent was not heard after the resume: {after}"
    );
    let echo = tone_between(&to_caller, CALLER_HZ, start, end);
    assert_eq!(echo, 0, "the caller heard itself");

    // The phone heard the caller before and after the hold...
    let (a_start, a_end) = (
        to_agent.packets.first().expect("RTP to the phone").at,
        to_agent.packets.last().expect("RTP to the phone").at + Duration::from_millis(1),
    );
    let before = tone_between(&to_agent, CALLER_HZ, a_start, held);
    let after = tone_between(&to_agent, CALLER_HZ, back, a_end);
    assert!(
        before >= 50 && after >= 50,
        "the phone heard the caller for {before} packets before the hold, {after} after"
    );
    // ...but, answered recvonly, nothing while held (a little slack at
    // each end for packets already on their way).
    let quiet_from = at_offset(held, 300);
    let quiet_to = at_offset(held, on_hold - 2500);
    let to_held_phone = packets_between(&to_agent, quiet_from, quiet_to);
    assert_eq!(
        to_held_phone, 0,
        "the engine answered the hold recvonly but sent the phone {to_held_phone} packets"
    );

    let r = only_record(&mut engine);
    assert_eq!(str_field(&r, "agent"), "1001", "{r}");
    assert_eq!(u64_field(&r, "holds"), 1, "{r}");
    let hold = u64_field(&r, "hold_ms");
    assert!(
        hold.abs_diff(hold_ms) <= 500,
        "hold_ms = {hold}, expected about {hold_ms}: {r}"
    );
    let talk = u64_field(&r, "talk_ms");
    assert!(
        talk > hold,
        "talk_ms ({talk}) includes the hold ({hold}): {r}"
    );
}

// ---- transfer -----------------------------------------------------------------------

/// A transfer's run, once the caller has hung up: the engine, the
/// transferring phone (1001), the phone transferred to (1002) and what
/// the caller heard.
struct Transfer {
    engine: Engine,
    first: Sipp,
    second: Sipp,
    caller_heard: Heard,
}

/// Agent 1001 takes the caller and REFERs them to `target` 2 s into the
/// bridge; once 1001 is busy, agent 1002 logs in from SIPp instance 1 and
/// waits with agent_transfer_target.xml. The caller hangs up 3 s after
/// the REFER plus `until_bridged` ms (the announcement and what follows
/// until 1002 is connected).
fn transfer(i: u16, queues: &[(&str, &str, &str)], target: &str, until_bridged: u64) -> Transfer {
    let key = sample_pcap(QUEUE_KEY).expect("checked by the test");
    let (ports, caller_ports) = ports(i);
    let engine = engine_with(ports, queues, false);
    register(&engine, 0, "1001");
    let refer_after = prompts_ms(&agent_announcement("007")) + 2000;
    let caller_d = AGENT_ANSWER_MS - CALLER_TALK_START_MS + refer_after + until_bridged + 3000;
    let first_voice = pcap(
        &engine,
        "agent1.pcap",
        &tone(AGENT_HZ, refer_after as usize + 2000),
        Codec::Pcma,
    );
    let second_voice = pcap(
        &engine,
        "agent2.pcap",
        &tone(SECOND_AGENT_HZ, 8000),
        Codec::Pcma,
    );
    let caller_voice = pcap(
        &engine,
        "caller.pcap",
        &tone(CALLER_HZ, caller_d as usize - 300),
        Codec::Pcmu,
    );
    let caller_ear = RtpProbe::listen(caller_ports.sdp, Duration::from_secs(60));
    let d = refer_after.to_string();
    let first = phone(
        &engine,
        0,
        "1001",
        "agent_refer.xml",
        &[
            "-key",
            "pcap",
            &first_voice,
            "-key",
            "target",
            target,
            "-d",
            &d,
        ],
    );
    let uac = caller(
        &engine,
        caller_ports,
        "uac_queue.xml",
        &["-key", "dtmf", &key, "-key", "pcap", &caller_voice],
        caller_d,
    );
    // 1001 has answered by now (about 2.2 s after the INVITE): 1002 logs
    // in, and is free for the transfer alone.
    thread::sleep(Duration::from_millis(4000));
    register(&engine, 1, "1002");
    let second = phone(
        &engine,
        1,
        "1002",
        "agent_transfer_target.xml",
        &["-key", "pcap", &second_voice],
    );
    uac.expect_success(&engine);
    let first = first.expect_success(&engine);
    let second = second.expect_success(&engine);
    Transfer {
        engine,
        first,
        second,
        caller_heard: caller_ear.finish(),
    }
}

/// The REFER's 202 and NOTIFYs (RFC 3515), as the transferring phone
/// logged them: 100 Trying while the subscription is active, then 200 OK
/// ending it, then the engine's BYE.
fn assert_refer_progress(first: &Sipp) {
    let logs = first.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| ["refer:", "notify", "bye"].iter().any(|w| l.contains(w)))
        .map(str::trim)
        .collect();
    assert_eq!(
        lines,
        [
            "refer: 202",
            "notify 1: SIP/2.0 100 Trying (active, message/sipfrag, refer)",
            "notify 2: SIP/2.0 200 OK (terminated, message/sipfrag, refer)",
            "bye",
        ],
        "{logs}"
    );
}

/// The caller heard 1001, then the announcement (prompt by prompt), then
/// only 1002.
fn assert_moved(h: &Heard, announcement: &[String]) {
    let (said, done) = assert_heard_in_order(h, announcement);
    let start = h.packets[0].at;
    let end = h.packets.last().expect("packets").at + Duration::from_millis(1);
    let first = tone_between(h, AGENT_HZ, start, said);
    assert!(first >= 50, "the caller heard 1001 for {first} packets");
    assert_eq!(
        tone_between(h, AGENT_HZ, said, end),
        0,
        "the caller heard 1001 after the transfer began"
    );
    let second = tone_between(h, SECOND_AGENT_HZ, done, end);
    assert!(
        second >= 100,
        "the caller heard 1002 for {second} packets, about 150 expected"
    );
    assert_eq!(tone_between(h, SECOND_AGENT_HZ, start, said), 0);
    // Sound all through the announcement: it was heard, not skipped.
    let sound = h
        .packets
        .iter()
        .filter(|p| p.at >= said && p.at < done)
        .count();
    let window = ms_between(said, done) as usize / 20;
    assert!(
        sound >= window * 9 / 10,
        "{sound} packets during a {window}-frame announcement"
    );
}

/// The talk split between the agents: 1001 about 2 s (to its REFER),
/// then 1002 about 3 s (to the caller's hang-up).
fn assert_agent_parts(r: &Value) {
    let parts = r["agent_parts"]
        .as_array()
        .unwrap_or_else(|| panic!("no agent_parts in the record: {r}"));
    let parts: Vec<(&str, u64)> = parts
        .iter()
        .map(|p| (str_field(p, "agent"), u64_field(p, "talk_ms")))
        .collect();
    assert_eq!(parts.len(), 2, "{r}");
    assert_eq!((parts[0].0, parts[1].0), ("1001", "1002"), "{r}");
    assert!(parts[0].1.abs_diff(2000) <= 700, "1001's part: {r}");
    assert!((2000..=5000).contains(&parts[1].1), "1002's part: {r}");
}

/// The record's one transfer.
fn the_transfer(r: &Value) -> &Value {
    let transfers = r["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("no transfers in the record: {r}"));
    assert_eq!(transfers.len(), 1, "{r}");
    &transfers[0]
}

/// Agent 1001's phone REFERs the caller to agent 1002: 202, NOTIFY 100
/// then 200 (sipfrag), BYE to 1001; the caller hears "transferring you
/// to extension 0 0 8" (1002's number), then 1002, who was rung with
/// X-Hotline-Transfer. One record lists the transfer, answered.
#[test]
fn a_refer_to_another_agent_announces_the_extension_and_connects_them() {
    if !require_tool("sipp") || !require_root() || sample_pcap(QUEUE_KEY).is_none() {
        return;
    }
    let announcement = transfer_announcement("008");
    // The announcement, then 1002 rings 500 ms.
    let until_bridged = prompts_ms(&announcement) + 700;
    let mut t = transfer(1, &[], "1002", until_bridged);
    assert_refer_progress(&t.first);
    let second = t.second.logs();
    assert!(
        second.contains("invite: transfer=1 "),
        "1002 was not rung as a transfer: {second}"
    );
    assert_moved(&t.caller_heard, &announcement);

    let r = only_record(&mut t.engine);
    let x = the_transfer(&r);
    assert_eq!(x["from"], "1001", "{r}");
    assert_eq!(x["to"], "agent:1002", "{r}");
    assert_eq!(x["result"], "answered", "{r}");
    assert!(x["at"].is_string(), "{r}");
    assert_eq!(str_field(&r, "disposition"), "answered", "{r}");
    assert_agent_parts(&r);
}

/// Agent 1001's phone REFERs the caller to extension 8003, the complaint
/// queue's: 202, NOTIFY 100 then 200, BYE to 1001; the caller hears
/// "transferring you to extension 8 0 0 3", joins the complaint queue,
/// and 1002 (free; 1001 is in wrap-up) is rung from it and answers.
#[test]
fn a_refer_to_a_queue_extension_queues_the_caller_after_the_announcement() {
    if !require_tool("sipp") || !require_root() || sample_pcap(QUEUE_KEY).is_none() {
        return;
    }
    let announcement = transfer_announcement("8003");
    // The announcement, 1002 rung (500 ms), then its number announced.
    let until_bridged = prompts_ms(&announcement) + 700 + prompts_ms(&agent_announcement("008"));
    let queues = [("complaint", "extension", "\"8003\"")];
    let mut t = transfer(2, &queues, "8003", until_bridged);
    assert_refer_progress(&t.first);
    let second = t.second.logs();
    assert!(
        second.contains("queue=complaint"),
        "1002 was not rung from the complaint queue: {second}"
    );
    assert_moved(&t.caller_heard, &announcement);

    let r = only_record(&mut t.engine);
    let x = the_transfer(&r);
    assert_eq!(x["from"], "1001", "{r}");
    assert_eq!(x["to"], "queue:complaint", "{r}");
    assert_eq!(x["result"], "queued", "{r}");
    assert_eq!(
        ivr_path(&r).last().copied(),
        Some("transfer:queue:complaint"),
        "{r}"
    );
    assert_eq!(str_field(&r, "agent"), "1002", "{r}");
    assert_agent_parts(&r);
}

// ---- attended transfer -----------------------------------------------------------------

/// One SIP message a phone received, as text.
struct SipText {
    text: String,
}

impl SipText {
    fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    fn is_request(&self, method: &str) -> bool {
        self.start_line().starts_with(&format!("{method} "))
    }

    fn status(&self) -> Option<u16> {
        let rest = self.start_line().strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// Every value of header `name` (full name, as the engine writes
    /// them), in order.
    fn headers(&self, name: &str) -> Vec<&str> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n")
            .skip(1)
            .filter_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }

    fn header(&self, name: &str) -> &str {
        self.headers(name).first().copied().unwrap_or("")
    }

    fn call_id(&self) -> &str {
        self.header("Call-ID")
    }

    /// (number, method) of the CSeq.
    fn cseq(&self) -> (u32, &str) {
        let mut parts = self.header("CSeq").split_whitespace();
        let n = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (n, parts.next().unwrap_or(""))
    }

    fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    /// The URI in a name-addr header value (`<sip:...>;tag=x`).
    fn uri_of(value: &str) -> &str {
        match (value.find('<'), value.find('>')) {
            (Some(a), Some(b)) if a < b => &value[a + 1..b],
            _ => value.split(';').next().unwrap_or(value).trim(),
        }
    }

    fn tag_of(value: &str) -> &str {
        value
            .split(";tag=")
            .nth(1)
            .map_or("", |t| t.split(';').next().unwrap_or(t))
    }

    /// Where the SDP body says to send RTP (c= address, m=audio port).
    fn media_addr(&self) -> SocketAddr {
        let body = self.body();
        let ip = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))
            .unwrap_or_else(|| panic!("no c= line in:\n{}", self.text));
        let port = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("m=audio "))
            .and_then(|m| m.split_whitespace().next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no m=audio line in:\n{}", self.text));
        SocketAddr::new(ip.trim().parse().expect("an IPv4 address"), port)
    }
}

/// One dialog of the phone, as its UA: our From or To (with our tag),
/// the engine's, where in-dialog requests go, our last CSeq.
struct Dialog {
    call_id: String,
    local: String,
    remote: String,
    target: String,
    cseq: u32,
}

/// Agent 1001's phone driven by the test over its own UDP socket: bound
/// to the port SIPp registered 1001 from (so the engine sends it 1001's
/// calls and takes its new INVITE as the holding agent's). It answers
/// the engine's retransmitted INVITEs and 2xx again, as a UA would, and
/// keeps every message sent and received for failure messages.
struct AgentPhone {
    socket: UdpSocket,
    engine: SocketAddr,
    port: u16,
    transcript: Vec<String>,
    /// Our final answer to each INVITE we took, by Call-ID.
    answers: Vec<(String, String)>,
    /// Our ACK to each 2xx we took, by (Call-ID, CSeq).
    acks: Vec<((String, u32), String)>,
    branches: u32,
}

impl AgentPhone {
    fn bind(port: u16, engine: SocketAddr) -> AgentPhone {
        let socket = UdpSocket::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot bind the phone's SIP port {port}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        AgentPhone {
            socket,
            engine,
            port,
            transcript: Vec::new(),
            answers: Vec::new(),
            acks: Vec::new(),
            branches: 0,
        }
    }

    fn transcript(&self) -> String {
        self.transcript.join("\n----\n")
    }

    fn send(&mut self, text: &str) {
        self.transcript.push(format!(">>> {text}"));
        self.socket
            .send_to(text.as_bytes(), self.engine)
            .expect("send SIP");
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK-1001-{}-{}", std::process::id(), self.branches)
    }

    fn contact(&self) -> String {
        format!("<sip:1001@127.0.0.1:{}>", self.port)
    }

    /// The next message that is not a retransmission this phone already
    /// answered (OPTIONS get 200 too), or None at `deadline`.
    fn recv(&mut self, deadline: Instant) -> Option<SipText> {
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let msg = SipText {
                text: String::from_utf8_lossy(&buf[..n]).into_owned(),
            };
            self.transcript.push(format!("<<< {}", msg.text));
            if msg.is_request("INVITE") {
                let again = self
                    .answers
                    .iter()
                    .find(|(id, _)| id == msg.call_id())
                    .map(|(_, answer)| answer.clone());
                if let Some(answer) = again {
                    self.send(&answer);
                    continue;
                }
            }
            if msg.status().is_some_and(|s| (200..300).contains(&s)) && msg.cseq().1 == "INVITE" {
                let key = (msg.call_id().to_string(), msg.cseq().0);
                let again = self
                    .acks
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, ack)| ack.clone());
                if let Some(ack) = again {
                    self.send(&ack);
                    continue;
                }
            }
            if msg.is_request("OPTIONS") {
                self.respond(&msg, 200, "OK", None, None);
                continue;
            }
            return Some(msg);
        }
        None
    }

    /// Waits up to `limit` for a message `wanted` matches; `resend`
    /// (a request of ours) goes again every 500 ms until one arrives
    /// (UDP retransmission). Other responses are passed over; another
    /// request fails the test.
    fn expect(
        &mut self,
        what: &str,
        limit: Duration,
        resend: Option<&str>,
        wanted: impl Fn(&SipText) -> bool,
    ) -> SipText {
        let deadline = Instant::now() + limit;
        let mut next_resend = Instant::now() + Duration::from_millis(500);
        loop {
            let step = (Instant::now() + Duration::from_millis(100)).min(deadline);
            if let Some(msg) = self.recv(step) {
                if wanted(&msg) {
                    return msg;
                }
                assert!(
                    msg.status().is_some(),
                    "1001's phone waited for {what} but got another request:\n{}",
                    self.transcript()
                );
            }
            assert!(
                Instant::now() < deadline,
                "1001's phone: no {what} within {limit:?}:\n{}",
                self.transcript()
            );
            if let Some(request) = resend.filter(|_| Instant::now() >= next_resend) {
                self.send(request);
                next_resend = Instant::now() + Duration::from_millis(500);
            }
        }
    }

    /// A response to `req`, To tagged with `tag` when it has none.
    fn respond(
        &mut self,
        req: &SipText,
        status: u16,
        reason: &str,
        tag: Option<&str>,
        sdp: Option<&str>,
    ) -> String {
        let vias: String = req
            .headers("Via")
            .iter()
            .map(|v| format!("Via: {v}\r\n"))
            .collect();
        let mut to = req.header("To").to_string();
        if let Some(tag) = tag.filter(|_| SipText::tag_of(&to).is_empty()) {
            to = format!("{to};tag={tag}");
        }
        let body = sdp.unwrap_or("");
        let ctype = if sdp.is_some() {
            "Content-Type: application/sdp\r\n"
        } else {
            ""
        };
        let text = format!(
            "SIP/2.0 {status} {reason}\r\n{vias}From: {from}\r\nTo: {to}\r\n\
             Call-ID: {id}\r\nCSeq: {cseq}\r\nContact: {contact}\r\n{ctype}\
             Content-Length: {len}\r\n\r\n{body}",
            from = req.header("From"),
            id = req.call_id(),
            cseq = req.header("CSeq"),
            contact = self.contact(),
            len = body.len(),
        );
        self.send(&text);
        text
    }

    /// A request: in `dialog` (its next CSeq unless `cseq` is given, as
    /// for an ACK), with these extra header lines and SDP body.
    fn request(
        &mut self,
        dialog: &mut Dialog,
        method: &str,
        cseq: Option<u32>,
        extra: &str,
        sdp: Option<&str>,
    ) -> String {
        let n = cseq.unwrap_or_else(|| {
            dialog.cseq += 1;
            dialog.cseq
        });
        let branch = self.branch();
        let body = sdp.unwrap_or("");
        let ctype = if sdp.is_some() {
            "Content-Type: application/sdp\r\n"
        } else {
            ""
        };
        let text = format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: {local}\r\nTo: {remote}\r\n\
             Call-ID: {id}\r\nCSeq: {n} {method}\r\nContact: {contact}\r\n\
             {extra}{ctype}Content-Length: {len}\r\n\r\n{body}",
            target = dialog.target,
            port = self.port,
            local = dialog.local,
            remote = dialog.remote,
            id = dialog.call_id,
            contact = self.contact(),
            len = body.len(),
        );
        self.send(&text);
        text
    }

    /// Sends INVITE `invite` (in `dialog`) and waits for its final
    /// response, which must be 200 with SDP; ACKs it. Returns the 200.
    fn invite(&mut self, what: &str, dialog: &mut Dialog, invite: &str) -> SipText {
        let cseq = dialog.cseq;
        let id = dialog.call_id.clone();
        // Resent until a provisional response, then waited for.
        let first = self.expect(what, Duration::from_secs(5), Some(invite), |m| {
            m.call_id() == id && m.cseq() == (cseq, "INVITE") && m.status().is_some()
        });
        let ok = if first.status().is_some_and(|s| s >= 200) {
            first
        } else {
            self.expect(what, Duration::from_secs(10), None, |m| {
                m.call_id() == id
                    && m.cseq() == (cseq, "INVITE")
                    && m.status().is_some_and(|s| s >= 200)
            })
        };
        assert_eq!(
            ok.status(),
            Some(200),
            "{what}: {}\n{}",
            ok.start_line(),
            self.transcript()
        );
        if SipText::tag_of(&dialog.remote).is_empty() {
            dialog.remote = ok.header("To").to_string();
        }
        let contact = SipText::uri_of(ok.header("Contact")).to_string();
        if !contact.is_empty() {
            dialog.target = contact;
        }
        let ack = self.request(dialog, "ACK", Some(cseq), "", None);
        self.acks.push(((id, cseq), ack));
        ok
    }
}

/// The phone's SDP: PCMA and telephone-events on `port`, `direction`.
fn phone_sdp(port: u16, version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=1001 4242 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

/// The phone's audio on one call: from 127.0.0.1:`port`, a tone of `hz`
/// in PCMA every 20 ms to `to`, while keeping what arrives on that port.
struct PhoneVoice {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Heard>,
}

impl PhoneVoice {
    fn start(port: u16, to: SocketAddr, hz: f64) -> PhoneVoice {
        let socket = UdpSocket::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot bind the phone's RTP port {port}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let frames: Vec<Vec<u8>> = tone(hz, 1000)
                .chunks(160)
                .map(|f| f.iter().map(|&s| Codec::Pcma.encode(s)).collect())
                .collect();
            let mut heard = Heard::default();
            let mut buf = [0u8; 2048];
            let mut next = Instant::now();
            let ssrc = 0x1001_0000u32 + u32::from(port);
            let mut i = 0usize;
            // At most a minute, whatever happens to the test.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let now = Instant::now();
                if now >= next {
                    let mut rtp = vec![0x80, 8];
                    rtp.extend((i as u16).to_be_bytes());
                    rtp.extend((160 * i as u32).to_be_bytes());
                    rtp.extend(ssrc.to_be_bytes());
                    rtp.extend(&frames[i % frames.len()]);
                    let _ = socket.send_to(&rtp, to);
                    i += 1;
                    next += Duration::from_millis(20);
                    continue;
                }
                let wait = (next - now).max(Duration::from_millis(1));
                socket.set_read_timeout(Some(wait)).expect("timeout");
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    heard.not_rtp += 1;
                    continue;
                }
                let packet = &buf[..n];
                let csrc = usize::from(packet[0] & 0x0f) * 4;
                heard.packets.push(RtpPacket {
                    at: SystemTime::now(),
                    from,
                    version: packet[0] >> 6,
                    payload_type: packet[1] & 0x7f,
                    seq: u16::from_be_bytes([packet[2], packet[3]]),
                    timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
                    payload: packet.get(12 + csrc..).unwrap_or_default().to_vec(),
                });
            }
            heard
        });
        PhoneVoice { stop, handle }
    }

    fn finish(self) -> Heard {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the phone's RTP thread")
    }
}

/// A Content-Type's media type, without its parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// What 1001's phone saw after its REFER, in order.
#[derive(Debug, PartialEq, Eq)]
enum AfterRefer {
    Accepted(u16),
    /// The sipfrag's status line, Subscription-State, Event, Content-Type.
    Notify(String, String, String, String),
    /// A BYE on the held call (`true`) or the consultation.
    Bye {
        held_call: bool,
    },
}

/// The attended transfer (RFC 5589 section 7), with agent 1001's phone
/// driven by the test: it takes the caller (who pressed 1), holds them
/// (re-INVITE a=sendonly, answered a=recvonly), calls 1002 from the same
/// address (a new INVITE to sip:1002@hotline: the consultation), talks
/// with 1002 once they answer, then REFERs the held call with
/// Refer-To: <sip:1002@...?Replaces=<the consultation>>: 202, NOTIFY
/// "SIP/2.0 200 OK", and a BYE on both of its calls. The caller heard
/// 1001, then the hold (never the consultation), then 1002; 1002 heard
/// 1001 in the consultation, then the caller. The record lists the
/// transfer, answered, with one hold and the talk split 1001 then 1002.
#[test]
fn an_attended_transfer_with_replaces_connects_the_caller_with_the_consulted_agent() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(key) = sample_pcap(QUEUE_KEY) else {
        return;
    };
    let (ports, caller_ports) = ports(5);
    let mut engine = engine_with(ports, &[], false);
    register(&engine, 0, "1001");
    // 1001's phone: the test, on the port SIPp registered from; its
    // audio on ports of SIPp instance 0's block that SIPp never binds.
    let mut phone1001 = AgentPhone::bind(ports.sipp(0).sip, engine.sip_addr());
    let (first_media, consult_media) = (ports.sipp(0).sdp, ports.caller_rtp());
    const CONSULT_HZ: f64 = 800.0;

    // The hold 2 s into the talk, the consultation 1 s later, the REFER
    // 2 s after 1002 answered (rung 500 ms); the caller hangs up about
    // 3 s after the REFER.
    let announce = prompts_ms(&agent_announcement("007"));
    let hold_after = announce + 2000;
    let until_refer = hold_after + 1000 + 800 + 2000;
    let caller_d = AGENT_ANSWER_MS - CALLER_TALK_START_MS + until_refer + 3000;
    let caller_voice = pcap(
        &engine,
        "caller.pcap",
        &tone(CALLER_HZ, caller_d as usize - 300),
        Codec::Pcmu,
    );
    let second_voice = pcap(
        &engine,
        "agent2.pcap",
        &tone(SECOND_AGENT_HZ, 9000),
        Codec::Pcma,
    );
    let caller_ear = RtpProbe::listen(caller_ports.sdp, Duration::from_secs(60));
    let second_ear = RtpProbe::listen(ports.sipp(1).sdp, Duration::from_secs(60));
    let uac = caller(
        &engine,
        caller_ports,
        "uac_queue.xml",
        &["-key", "dtmf", &key, "-key", "pcap", &caller_voice],
        caller_d,
    );

    // The engine rings 1001: 180, 500 ms, 200 with PCMA.
    let invite = phone1001.expect("the engine's INVITE", Duration::from_secs(15), None, |m| {
        m.is_request("INVITE")
    });
    let tag = "t1001held";
    phone1001.respond(&invite, 180, "Ringing", Some(tag), None);
    thread::sleep(Duration::from_millis(500));
    let answer = phone_sdp(first_media, 1, "sendrecv");
    let ok = phone1001.respond(&invite, 200, "OK", Some(tag), Some(&answer));
    phone1001
        .answers
        .push((invite.call_id().to_string(), ok.clone()));
    let held_id = invite.call_id().to_string();
    phone1001.expect(
        "the ACK of 1001's 200",
        Duration::from_secs(5),
        Some(&ok),
        |m| m.is_request("ACK") && m.call_id() == held_id,
    );
    let first_voice = PhoneVoice::start(first_media, invite.media_addr(), AGENT_HZ);
    let mut held = Dialog {
        call_id: held_id.clone(),
        local: format!("{};tag={tag}", invite.header("To")),
        remote: invite.header("From").to_string(),
        target: SipText::uri_of(invite.header("Contact")).to_string(),
        cseq: 100,
    };

    // 1001 is busy: 1002 logs in and waits for a call.
    register(&engine, 1, "1002");
    let second = phone(
        &engine,
        1,
        "1002",
        "agent_transfer_target.xml",
        &["-key", "pcap", &second_voice],
    );

    // The hold.
    thread::sleep(Duration::from_millis(hold_after));
    let hold_sent = SystemTime::now();
    let sendonly = phone_sdp(first_media, 2, "sendonly");
    let hold = phone1001.request(&mut held, "INVITE", None, "", Some(&sendonly));
    let hold_ok = phone1001.invite("the hold's 200", &mut held, &hold);
    assert!(
        hold_ok.body().contains("a=recvonly"),
        "the hold answered without a=recvonly:\n{}",
        hold_ok.text
    );

    // The consultation: a new call from the same phone to 1002.
    thread::sleep(Duration::from_millis(1000));
    let consult_id = format!("consult-{}-{}", std::process::id(), ports.sip);
    let mut consult = Dialog {
        call_id: consult_id.clone(),
        local: "<sip:1001@127.0.0.1>;tag=t1001consult".to_string(),
        remote: format!("<sip:1002@127.0.0.1:{}>", ports.sip),
        target: format!("sip:1002@127.0.0.1:{}", ports.sip),
        cseq: 0,
    };
    let offer = phone_sdp(consult_media, 1, "sendrecv");
    let call_1002 = phone1001.request(&mut consult, "INVITE", None, "", Some(&offer));
    let consult_ok = phone1001.invite("the consultation's 200", &mut consult, &call_1002);
    let consult_voice = PhoneVoice::start(consult_media, consult_ok.media_addr(), CONSULT_HZ);

    // The transfer, 2 s into the consultation.
    thread::sleep(Duration::from_millis(2000));
    let replaces = format!(
        "{consult_id}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
        SipText::tag_of(&consult.remote),
        SipText::tag_of(&consult.local)
    );
    let refer_to = format!(
        "Refer-To: <sip:1002@127.0.0.1?Replaces={replaces}>\r\n\
         Referred-By: <sip:1001@127.0.0.1>\r\n"
    );
    let refer_sent = SystemTime::now();
    let refer = phone1001.request(&mut held, "REFER", None, &refer_to, None);
    let refer_cseq = held.cseq;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next_resend = Instant::now() + Duration::from_millis(500);
    let done = |seen: &[AfterRefer]| {
        let byes = seen
            .iter()
            .filter(|e| matches!(e, AfterRefer::Bye { .. }))
            .count();
        let final_notify = seen
            .iter()
            .any(|e| matches!(e, AfterRefer::Notify(frag, ..) if !frag.starts_with("SIP/2.0 1")));
        byes >= 2 && final_notify
    };
    while !done(&seen) && Instant::now() < deadline {
        let Some(msg) = phone1001.recv(Instant::now() + Duration::from_millis(100)) else {
            if seen.is_empty() && Instant::now() >= next_resend {
                phone1001.send(&refer);
                next_resend = Instant::now() + Duration::from_millis(500);
            }
            continue;
        };
        if msg.cseq() == (refer_cseq, "REFER") && msg.call_id() == held_id {
            if let Some(status) = msg.status() {
                if !seen.contains(&AfterRefer::Accepted(status)) {
                    seen.push(AfterRefer::Accepted(status));
                }
            }
        } else if msg.is_request("NOTIFY") && msg.call_id() == held_id {
            phone1001.respond(&msg, 200, "OK", None, None);
            let frag = msg.body().lines().next().unwrap_or("").trim().to_string();
            let state = msg.header("Subscription-State");
            let state = state.split(';').next().unwrap_or("").trim().to_string();
            seen.push(AfterRefer::Notify(
                frag,
                state,
                msg.header("Event").to_string(),
                media_type(msg.header("Content-Type")),
            ));
        } else if msg.is_request("BYE") {
            phone1001.respond(&msg, 200, "OK", None, None);
            let held_call = msg.call_id() == held_id;
            assert!(
                held_call || msg.call_id() == consult_id,
                "a BYE on no call of 1001's:\n{}",
                phone1001.transcript()
            );
            seen.push(AfterRefer::Bye { held_call });
        } else {
            assert!(
                msg.status().is_some(),
                "1001's phone got an unexpected request after its REFER:\n{}",
                phone1001.transcript()
            );
        }
    }
    let heard_by_1001 = first_voice.finish();
    let heard_in_consultation = consult_voice.finish();
    let transcript = phone1001.transcript();
    assert_eq!(
        seen.first(),
        Some(&AfterRefer::Accepted(202)),
        "{seen:?}\n{transcript}"
    );
    let notifies: Vec<&AfterRefer> = seen
        .iter()
        .filter(|e| matches!(e, AfterRefer::Notify(..)))
        .collect();
    let last_notify = AfterRefer::Notify(
        "SIP/2.0 200 OK".into(),
        "terminated".into(),
        "refer".into(),
        "message/sipfrag".into(),
    );
    assert_eq!(
        notifies.last(),
        Some(&&last_notify),
        "{seen:?}\n{transcript}"
    );
    let byes: Vec<&AfterRefer> = seen
        .iter()
        .filter(|e| matches!(e, AfterRefer::Bye { .. }))
        .collect();
    assert_eq!(byes.len(), 2, "{seen:?}\n{transcript}");
    assert!(
        byes.contains(&&AfterRefer::Bye { held_call: true })
            && byes.contains(&&AfterRefer::Bye { held_call: false }),
        "a BYE on each of 1001's calls: {seen:?}\n{transcript}"
    );

    uac.expect_success(&engine);
    let second = second.expect_success(&engine);
    let to_caller = caller_ear.finish();
    let to_second = second_ear.finish();
    // Rung directly (the engine marks it X-Hotline-Transfer), not from a
    // queue.
    let rung = second.logs();
    assert!(
        rung.lines()
            .any(|l| l.trim().starts_with("invite: ") && l.trim().ends_with(" queue=")),
        "1002 was rung from a queue: {rung}"
    );

    // The caller: 1001, then the hold prompt (and never 1001 nor the
    // consultation while held), then 1002 right after the REFER.
    let held_heard = heard(&to_caller, "hold_start");
    assert_eq!(held_heard.len(), 1, "the caller heard the hold prompt once");
    let held_heard = held_heard[0];
    assert!(held_heard > hold_sent, "the hold prompt before the hold");
    let start = to_caller.packets[0].at;
    let end = to_caller.packets.last().expect("packets").at + Duration::from_millis(1);
    let first = tone_between(&to_caller, AGENT_HZ, start, held_heard);
    assert!(first >= 50, "the caller heard 1001 for {first} packets");
    assert_eq!(
        tone_between(&to_caller, AGENT_HZ, held_heard, end),
        0,
        "the caller heard 1001 after the hold"
    );
    assert_eq!(
        tone_between(&to_caller, SECOND_AGENT_HZ, start, refer_sent),
        0,
        "the caller heard 1002 before the transfer (the consultation leaked)"
    );
    assert_eq!(
        tone_between(&to_caller, CONSULT_HZ, start, end),
        0,
        "the caller heard 1001's side of the consultation"
    );
    let after = tone_between(&to_caller, SECOND_AGENT_HZ, refer_sent, end);
    assert!(
        after >= 100,
        "the caller heard 1002 for {after} packets after the transfer, about 150 expected"
    );
    let window = ms_between(held_heard, end) as usize / 20;
    let packets = packets_between(&to_caller, held_heard, end);
    assert!(
        packets >= window * 9 / 10,
        "{packets} packets to the caller in {window} frames from the hold on: the audio stopped"
    );
    assert_eq!(
        tone_between(&to_caller, CALLER_HZ, start, end),
        0,
        "the caller heard itself"
    );

    // 1001 heard the caller before the hold; in the consultation, 1002
    // and not the caller.
    let caller_to_1001 = tone_between(
        &heard_by_1001,
        CALLER_HZ,
        heard_by_1001.packets.first().map_or(hold_sent, |p| p.at),
        hold_sent,
    );
    assert!(
        caller_to_1001 >= 50,
        "1001 heard the caller for {caller_to_1001} packets before the hold"
    );
    let from_1002 = heard_in_consultation.tone_packets(SECOND_AGENT_HZ);
    assert!(
        from_1002 >= 50,
        "1001 heard 1002 for {from_1002} packets in the consultation"
    );
    assert_eq!(
        heard_in_consultation.tone_packets(CALLER_HZ),
        0,
        "1001 heard the caller in the consultation"
    );
    // 1002 heard 1001 in the consultation, then the caller.
    let s_start = to_second.packets.first().expect("RTP to 1002").at;
    let s_end = to_second.packets.last().expect("RTP to 1002").at + Duration::from_millis(1);
    let consulted = tone_between(&to_second, CONSULT_HZ, s_start, refer_sent);
    assert!(
        consulted >= 50,
        "1002 heard 1001 for {consulted} packets in the consultation"
    );
    assert_eq!(
        tone_between(&to_second, CALLER_HZ, s_start, refer_sent),
        0,
        "1002 heard the caller before the transfer"
    );
    let caller_heard = tone_between(&to_second, CALLER_HZ, refer_sent, s_end);
    assert!(
        caller_heard >= 100,
        "1002 heard the caller for {caller_heard} packets after the transfer"
    );
    assert_eq!(
        tone_between(&to_second, CONSULT_HZ, at_offset(refer_sent, 300), s_end),
        0,
        "1002 heard 1001 after the transfer"
    );

    let r = only_record(&mut engine);
    let x = the_transfer(&r);
    assert_eq!(x["from"], "1001", "{r}");
    assert_eq!(x["to"], "agent:1002", "{r}");
    assert_eq!(x["result"], "answered", "{r}");
    assert!(x["at"].is_string(), "{r}");
    assert_eq!(str_field(&r, "agent"), "1002", "{r}");
    assert_eq!(str_field(&r, "disposition"), "answered", "{r}");
    assert_eq!(u64_field(&r, "holds"), 1, "{r}");
    let on_hold = ms_between(hold_sent, refer_sent) as u64;
    let hold_ms = u64_field(&r, "hold_ms");
    assert!(
        hold_ms.abs_diff(on_hold) <= 500,
        "hold_ms = {hold_ms}, held about {on_hold} ms (to the REFER): {r}"
    );
    let parts = r["agent_parts"]
        .as_array()
        .unwrap_or_else(|| panic!("no agent_parts in the record: {r}"));
    let parts: Vec<(&str, u64)> = parts
        .iter()
        .map(|p| (str_field(p, "agent"), u64_field(p, "talk_ms")))
        .collect();
    assert_eq!(parts.len(), 2, "{r}");
    assert_eq!((parts[0].0, parts[1].0), ("1001", "1002"), "{r}");
    // 1001: from the bridge to the REFER, the hold included.
    let with_1001 = ms_between(time_field(&r, "bridged_at"), refer_sent) as u64;
    assert!(
        parts[0].1.abs_diff(with_1001) <= 500,
        "1001's part: about {with_1001} ms expected: {r}"
    );
    assert!((2000..=5000).contains(&parts[1].1), "1002's part: {r}");
}

// ---- recording ------------------------------------------------------------------------

/// One HTTP/1.1 GET to the engine's API; returns (status, body bytes).
fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    (status, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// sox's `stat` of one channel of `[from_ms, from_ms + ms)` of a WAV:
/// (RMS amplitude, 0 to 1; rough frequency in Hz).
fn sox_stat(wav: &Path, channel: u8, from_ms: u64, ms: u64) -> (f64, f64) {
    let out = Command::new("sox")
        .arg(wav)
        .args(["-n", "trim"])
        .arg(format!("{}", from_ms as f64 / 1000.0))
        .arg(format!("{}", ms as f64 / 1000.0))
        .args(["remix", &channel.to_string(), "stat"])
        .output()
        .expect("run sox");
    // `stat` reports on stderr.
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sox failed: {text}");
    let value = |label: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label} in sox's stat: {text}"))
    };
    (value("RMS     amplitude"), value("Rough   frequency"))
}

/// A queue with `record = true`: the caller hears the recording notice,
/// then the agent's number; once bridged the caller talks (1000 Hz) while
/// the agent is silent, then the agent (400 Hz) while the caller is
/// silent. The WAV under `<recordings>/YYYY-MM-DD/<call id>.wav` is
/// stereo, 8 kHz, as long as the bridge, with the caller's tone on the
/// left and the agent's on the right (sox); the API serves the same bytes
/// to a token holder only.
#[test]
fn a_recorded_call_has_the_caller_left_and_the_agent_right() {
    if !require_tool("sipp") || !require_tool("sox") || !require_root() {
        return;
    }
    let Some(key) = sample_pcap(QUEUE_KEY) else {
        return;
    };
    let (ports, caller_ports) = ports(3);
    let queues = [
        ("consultation", "record", "true"),
        ("consultation", "recording_notice", "true"),
    ];
    let mut engine = engine_with(ports, &queues, true);
    register(&engine, 0, "1001");

    // Bridged after the notice and the agent's number, the agent's answer
    // about AGENT_ANSWER_MS after the caller's: then (bridge time) the
    // caller talks to 3 s, the agent from 4.5 s to 7.5 s, and the caller
    // hangs up at 8.5 s.
    let mut before_bridge = vec!["recording_notice".to_string()];
    before_bridge.extend(agent_announcement("007"));
    let to_bridge = prompts_ms(&before_bridge);
    let caller_tone = AGENT_ANSWER_MS + to_bridge - CALLER_TALK_START_MS + 3000;
    let caller_d = caller_tone + 5500;
    let caller_voice = pcap(
        &engine,
        "caller.pcap",
        &silence_tone_silence(0, CALLER_HZ, caller_tone, 5000),
        Codec::Pcmu,
    );
    let agent_voice = pcap(
        &engine,
        "agent.pcap",
        &silence_tone_silence(to_bridge + 4500, AGENT_HZ, 3000, 3000),
        Codec::Pcma,
    );
    let caller_ear = RtpProbe::listen(caller_ports.sdp, Duration::from_secs(60));
    let agent = phone(
        &engine,
        0,
        "1001",
        "agent_answer.xml",
        &["-key", "pcap", &agent_voice],
    );
    let uac = caller(
        &engine,
        caller_ports,
        "uac_queue.xml",
        &["-key", "dtmf", &key, "-key", "pcap", &caller_voice],
        caller_d,
    );
    uac.expect_success(&engine);
    agent.expect_success(&engine);
    let to_caller = caller_ear.finish();
    // The notice, before the agent's number.
    assert_heard_in_order(&to_caller, &before_bridge);

    // The recording is written a second at a time: closed at the end of
    // the call, before the engine stops.
    thread::sleep(Duration::from_millis(1500));
    let r = engine.records();
    let r = single(&r).clone();
    let call_id = str_field(&r, "call_id").to_string();
    let file = str_field(&r, "recording_file").to_string();
    let day = &str_field(&r, "bridged_at")[..10];
    assert_eq!(file, format!("{day}/{call_id}.wav"), "{r}");
    assert!(r.get("recording_error").is_none_or(Value::is_null), "{r}");
    let wav = engine.path().join("recordings").join(&file);
    assert!(wav.is_file(), "no {}", wav.display());

    let info = wav_info(&wav);
    assert_eq!(
        (
            info.spec.channels,
            info.spec.sample_rate,
            info.spec.bits_per_sample
        ),
        (2, 8000, 16),
        "{:?}",
        info.spec
    );
    // wav_info counts samples of both channels.
    let frames_ms = info.duration_ms / 2;
    let talk = u64_field(&r, "talk_ms");
    assert!(
        frames_ms.abs_diff(talk) <= 1000,
        "the WAV holds {frames_ms} ms, the bridge lasted {talk} ms"
    );

    // Where only the caller spoke: the left channel is the caller's tone,
    // the right silent; where only the agent spoke, the other way round.
    let (left, left_hz) = sox_stat(&wav, 1, 500, 2000);
    let (right, _) = sox_stat(&wav, 2, 500, 2000);
    assert!(left > 0.05, "the caller's tone on the left: RMS {left}");
    assert!(
        right < 0.005,
        "the right channel while the agent was silent: RMS {right}"
    );
    assert!(
        (left_hz - CALLER_HZ).abs() < 100.0,
        "the left channel's frequency: {left_hz} Hz"
    );
    let (left, _) = sox_stat(&wav, 1, 5000, 2000);
    let (right, right_hz) = sox_stat(&wav, 2, 5000, 2000);
    assert!(right > 0.05, "the agent's tone on the right: RMS {right}");
    assert!(
        left < 0.005,
        "the left channel while the caller was silent: RMS {left}"
    );
    assert!(
        (right_hz - AGENT_HZ).abs() < 50.0,
        "the right channel's frequency: {right_hz} Hz"
    );

    // The API: the same bytes, to a token holder only.
    let path = format!("/api/v1/recordings/{call_id}");
    let (status, body) = http_get(ports.api(), &path, Some("demo-token"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let on_disk = std::fs::read(&wav).expect("read the WAV");
    assert!(
        body == on_disk,
        "the API's {} bytes differ from the file's {}",
        body.len(),
        on_disk.len()
    );
    let (status, _) = http_get(ports.api(), &path, None);
    assert_eq!(status, 401);
    let (status, _) = http_get(ports.api(), &path, Some("wrong"));
    assert_eq!(status, 401);
    let (status, _) = http_get(ports.api(), "/api/v1/recordings/hl-0-0", Some("demo-token"));
    assert_eq!(status, 404);
    assert!(engine.stop().success(), "{}", engine.log_tail());
}

// ---- survey ------------------------------------------------------------------------------

/// A queue with the survey: the agent hangs up first, the caller is not
/// hung up but asked to rate the service, presses 4 (RFC 4733) during
/// the question, is thanked, and the engine hangs up. The record says
/// the survey was offered and the rating is 4.
#[test]
fn after_the_agent_hangs_up_the_caller_rates_the_service_with_4() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let (Some(key), Some(rating)) = (sample_pcap(QUEUE_KEY), sample_pcap("dtmf_2833_4.pcap"))
    else {
        return;
    };
    let (ports, caller_ports) = ports(4);
    let mut engine = engine_with(ports, &[("consultation", "survey", "true")], false);
    register(&engine, 0, "1001");

    let hangs_up = prompts_ms(&agent_announcement("007")) + 2000;
    // The rating 3 s into the question (8.6 s long in English).
    let caller_d = AGENT_ANSWER_MS - CALLER_TALK_START_MS + hangs_up + 3000;
    let agent_voice = pcap(
        &engine,
        "agent.pcap",
        &tone(AGENT_HZ, hangs_up as usize + 1000),
        Codec::Pcma,
    );
    // Quiet before the rating, so that its events are the only RTP.
    let caller_voice = pcap(
        &engine,
        "caller.pcap",
        &tone(CALLER_HZ, caller_d as usize - 1000),
        Codec::Pcmu,
    );
    let caller_ear = RtpProbe::listen(caller_ports.sdp, Duration::from_secs(60));
    let d = hangs_up.to_string();
    let agent = phone(
        &engine,
        0,
        "1001",
        "agent_hangs_up.xml",
        &["-key", "pcap", &agent_voice, "-d", &d],
    );
    let uac = caller(
        &engine,
        caller_ports,
        "uac_survey.xml",
        &[
            "-key",
            "dtmf",
            &key,
            "-key",
            "pcap",
            &caller_voice,
            "-key",
            "rating",
            &rating,
        ],
        caller_d,
    );
    agent.expect_success(&engine);
    uac.expect_success(&engine);
    let to_caller = caller_ear.finish();
    let asked = heard(&to_caller, "survey");
    assert_eq!(asked.len(), 1, "the caller heard the question once");
    let thanked = heard(&to_caller, "survey_thanks");
    assert_eq!(thanked.len(), 1, "the caller was thanked once");
    assert!(asked[0] < thanked[0]);
    assert!(
        tone_between(&to_caller, AGENT_HZ, to_caller.packets[0].at, asked[0]) > 0,
        "the caller spoke with the agent before the question"
    );

    let r = only_record(&mut engine);
    assert_eq!(str_field(&r, "agent"), "1001", "{r}");
    assert_eq!(str_field(&r, "hangup_side"), "agent", "{r}");
    assert_eq!(r["survey_offered"], true, "{r}");
    assert_eq!(u64_field(&r, "satisfaction"), 4, "{r}");
    assert_eq!(str_field(&r, "digits"), "14", "{r}");
}
