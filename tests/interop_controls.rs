//! Interop tests of the in-call controls: the real `hotline` binary with
//! SIPp agents' phones and SIPp callers over loopback. An agent puts the
//! caller on hold with a re-INVITE and takes them back; an agent transfers
//! the caller blind with REFER, to another agent and to a queue; a queue
//! records its calls to a stereo WAV; a queue asks the caller to rate the
//! service when the agent hangs up first.
//!
//! The agents are SIPp (tests/interop/agent_register.xml, then a server
//! scenario on the port they registered from: agent_hold.xml,
//! agent_refer.xml, agent_transfer_target.xml, agent_answer.xml,
//! agent_hangs_up.xml); the callers are SIPp pressing 1 as RFC 4733 events
//! to join the consultation queue (uac_queue.xml, uac_survey.xml). Audio
//! is replayed from captures written by the test (tones: the caller
//! 1000 Hz in PCMU, the first agent 400 Hz and the second 600 Hz in PCMA)
//! from the port in each side's SDP, where the test listens for what the
//! engine sends that side. Prompts are recognised by their exact G.711
//! frames, as in tests/interop_acd.rs.
//!
//! Ports: test `i` (0..=4) has a block of its own: engine SIP
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

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, SystemTime};

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
    assert!(i < 5);
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
