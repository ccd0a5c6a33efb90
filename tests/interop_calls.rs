//! Interop tests: the real `hotline` binary, driven by SIPp (and by raw UDP
//! for malformed requests) over loopback. Each test runs its own engine with
//! its own config (config/default.toml with its ports, folders and shorter
//! waits), record and message folders in a temporary directory, so the
//! tests can run in parallel. The harness is in tests/support/mod.rs,
//! shared with tests/interop_acd.rs.
//!
//! Needs `sipp` (Debian package `sip-tester`) on PATH, and its sample
//! captures in /usr/share/sip-tester: without them the SIPp tests are
//! skipped, or fail when `CI=true`. Tests where the caller talks or sends
//! keys in RTP also need root (SIPp replays captures through a raw socket).
//!
//! Scenarios live in `tests/interop/*.xml`. With `INTEROP_KEEP=1` each
//! test's folder (config, engine log, records, messages, SIPp traces) is
//! kept and its path printed.

mod support;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

// ---- tests -------------------------------------------------------------------

/// A normal call: 180 before 200 (the scenario requires it), the greeting
/// heard as PCMU RTP, the caller hangs up after 3 s.
#[test]
fn answered_inside_window_with_ringing_first() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(1);
    let mut engine = Engine::start(ports, &Settings::default());

    let rtp = UdpSocket::bind(("127.0.0.1", ports.caller_rtp())).expect("bind RTP listener");
    let stop = Arc::new(AtomicBool::new(false));
    let counter = count_rtp(rtp, stop.clone(), Duration::from_secs(30));
    let rtp_port = ports.caller_rtp().to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &rtp_port, "-d", "3000"],
        20,
    );
    sipp.expect_success(&engine);
    stop.store(true, Ordering::Relaxed);
    let stats = counter.join().expect("RTP counter");

    assert!(
        stats.packets >= 100,
        "too little RTP from the engine: {stats:?}"
    );
    assert_eq!(stats.not_version_2, 0, "{stats:?}");
    assert_eq!(
        stats.payload_types,
        BTreeSet::from([0]),
        "PCMU only: {stats:?}"
    );
    assert!(
        stats.with_sound >= 50,
        "greeting audio, not only silence: {stats:?}"
    );
    assert_eq!(stats.sequence_breaks, 0, "{stats:?}");
    for from in &stats.sources {
        assert!(
            (ports.rtp.0..=ports.rtp.1).contains(&from.port()),
            "RTP from {from}, outside the configured range {:?}",
            ports.rtp
        );
    }

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 200, "{r}");
    assert_eq!(str_field(r, "codec"), "PCMU", "{r}");
    let tta = u64_field(r, "time_to_answer_ms");
    assert!(
        (900..=15000).contains(&tta),
        "time_to_answer_ms = {tta}: {r}"
    );
    assert!(r["ringing_at"].is_string(), "ringing_at missing: {r}");
    assert!(
        str_field(r, "ringing_at") <= str_field(r, "answered_at"),
        "rang after answering: {r}"
    );
    assert_eq!(str_field(r, "caller_number"), "13800138000", "{r}");
    assert_eq!(str_field(r, "dialled_number"), "4000", "{r}");
}

/// A caller who never sends RTP nor presses a key: greeting, main menu,
/// the menu's timeout, then the silent-caller node (question, wait,
/// apology, wait) and the engine hangs up; the call lasts just that long.
#[test]
fn silent_caller_hung_up_by_engine() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(2);
    let s = Settings::default();
    let mut engine = Engine::start(ports, &s);
    let sipp = Sipp::spawn(&engine, 0, "uac_silent.xml", &[], 60);
    sipp.expect_success(&engine);

    let lang = s.language;
    let expected = prompt_ms(lang, "greeting")
        + prompt_ms(lang, "main_menu")
        + ms(s.menu_timeout)
        + prompt_ms(lang, "silent_question")
        + ms(s.silent_wait)
        + prompt_ms(lang, "silent_apology")
        + ms(s.apology_wait);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "silent_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "engine", "{r}");
    assert_eq!(ivr_path(r), ["welcome", "main", "silent"], "{r}");
    assert_eq!(r["caller_spoke"], Value::Bool(false), "{r}");
    assert_eq!(str_field(r, "digits"), "", "{r}");
    assert!(r["business_type"].is_null(), "{r}");
    assert_eq!(str_field(r, "language"), lang, "{r}");
    let duration = u64_field(r, "duration_ms");
    assert!(
        duration.abs_diff(expected) <= 1500,
        "duration_ms = {duration}, expected {expected} +/- 1500: {r}"
    );
}

/// CANCEL while it rings: 200 for the CANCEL, 487 for the INVITE.
#[test]
fn cancel_before_answer() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(3);
    let settings = Settings {
        answer_after: "5s",
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &settings);
    let sipp = Sipp::spawn(&engine, 0, "cancel.xml", &[], 15);
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "cancelled", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_cancelled", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 487, "{r}");
    assert!(r["ringing_at"].is_string(), "{r}");
    assert!(r["answered_at"].is_null(), "{r}");
    assert!(r["duration_ms"].is_null(), "{r}");
}

/// The caller hangs up during the greeting, half a second after the answer.
#[test]
fn caller_bye() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(4);
    let mut engine = Engine::start(ports, &Settings::default());
    let media = ports.sipp(0).media.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &media, "-d", "500"],
        15,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    let duration = u64_field(r, "duration_ms");
    assert!(
        (400..3000).contains(&duration),
        "duration_ms = {duration}: {r}"
    );
}

/// The same call over TCP.
#[test]
fn call_over_tcp() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(5);
    let mut engine = Engine::start(ports, &Settings::default());
    let media = ports.sipp(0).media.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-t", "t1", "-key", "rtp_port", &media, "-d", "1000"],
        15,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert!(str_field(r, "source").starts_with("tcp:"), "{r}");
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
}

/// A caller who stays silent through the greeting and the menu, so the
/// silent-caller node asks whether anyone is there; then the caller talks
/// (recorded PCMA speech) and the IVR takes it back to the main menu.
/// The silent node's waits are long (10 s), so only the speech can have
/// moved the call on before the caller hangs up.
#[test]
fn speaking_caller_goes_back_to_the_menu() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("g711a.pcap") else {
        return;
    };
    let ports = Ports::new(6);
    let s = Settings {
        language: "zh",
        silent_wait: "10s",
        apology_wait: "10s",
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &s);
    // Silent until the question is being asked (its prompt is over 2 s).
    let lang = s.language;
    let silent_until =
        prompt_ms(lang, "greeting") + prompt_ms(lang, "main_menu") + ms(s.menu_timeout) + 500;
    let silent_until = silent_until.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_speak.xml",
        &["-key", "pcap", &pcap, "-d", &silent_until],
        60,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(
        ivr_path(r),
        ["welcome", "main", "silent", "main"],
        "speech in the silent node leads back to the menu: {r}"
    );
    assert_eq!(r["caller_spoke"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(str_field(r, "codec"), "PCMA", "caller's first codec: {r}");
    assert_eq!(str_field(r, "digits"), "", "{r}");
}

/// max_calls = 1: a second call while the first is up gets 503 with
/// Retry-After (the scenario checks the header).
#[test]
fn over_capacity_gets_503() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(7);
    let settings = Settings {
        max_calls: 1,
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &settings);
    let media = ports.sipp(0).media.to_string();
    // Rings 1 s, then stays up 5 s.
    let first = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &media, "-d", "5000"],
        20,
    );
    thread::sleep(Duration::from_millis(1500));
    let second = Sipp::spawn(&engine, 1, "busy.xml", &[], 15);
    second.expect_success(&engine);
    first.expect_success(&engine);

    let records = engine.stop_and_read_records();
    assert_eq!(records.len(), 2, "{records:#?}");
    let rejected: Vec<Value> = records
        .iter()
        .filter(|r| r["disposition"] == "rejected")
        .cloned()
        .collect();
    let r = single(&rejected);
    assert_eq!(str_field(r, "outcome"), "over_capacity", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 503, "{r}");
    assert_eq!(str_field(r, "caller_number"), "13800138001", "{r}");
    let held = records
        .iter()
        .find(|r| r["disposition"] == "answered")
        .unwrap_or_else(|| panic!("no answered call: {records:#?}"));
    assert_eq!(str_field(held, "outcome"), "caller_hangup", "{held}");
}

/// Malformed and unsupported requests, and an INFO for no call, each get
/// their proper error; garbage gets nothing; the engine still answers
/// afterwards.
#[test]
fn bad_requests_answered() {
    let ports = Ports::new(8);
    let mut engine = Engine::start(ports, &Settings::default());
    let invite = "INVITE sip:4000@127.0.0.1 SIP/2.0";

    let bad_length = RawRequest {
        content_length: "abc",
        ..RawRequest::new(invite, "INVITE")
    };
    assert_status(
        &exchange(&engine, &bad_length, "bad-length"),
        400,
        "Content-Length: abc",
    );

    let unknown = RawRequest::new("FOO sip:4000@127.0.0.1 SIP/2.0", "FOO");
    assert_status(
        &exchange(&engine, &unknown, "unknown-method"),
        501,
        "method FOO",
    );

    let require = RawRequest {
        extra_headers: "Require: foo\r\n",
        ..RawRequest::new(invite, "INVITE")
    };
    let response = exchange(&engine, &require, "require-foo");
    assert_status(&response, 420, "Require: foo");
    assert_eq!(header(&response, "Unsupported"), Some("foo"), "{response}");

    let info = RawRequest {
        extra_headers: "Content-Type: application/dtmf-relay\r\n",
        content_length: "10",
        body: "Signal=5\r\n",
        ..RawRequest::new("INFO sip:4000@127.0.0.1 SIP/2.0", "INFO")
    };
    assert_status(
        &exchange(&engine, &info, "info-no-dialog"),
        481,
        "INFO outside any call",
    );

    let probe = RawRequest::new("OPTIONS sip:4000@127.0.0.1 SIP/2.0", "OPTIONS");
    assert_status(&exchange(&engine, &probe, "options-1"), 200, "OPTIONS");

    let http = RawRequest::new("INVITE http://example.com/4000 SIP/2.0", "INVITE");
    assert_status(
        &exchange(&engine, &http, "http-uri"),
        416,
        "http: Request-URI",
    );

    let g729_sdp = "v=0\r\n\
                    o=probe 1 1 IN IP4 127.0.0.1\r\n\
                    s=-\r\n\
                    c=IN IP4 127.0.0.1\r\n\
                    t=0 0\r\n\
                    m=audio 16990 RTP/AVP 18\r\n\
                    a=rtpmap:18 G729/8000\r\n";
    let length = g729_sdp.len().to_string();
    let g729 = RawRequest {
        extra_headers: "Content-Type: application/sdp\r\n",
        content_length: &length,
        body: g729_sdp,
        ..RawRequest::new(invite, "INVITE")
    };
    assert_status(
        &exchange(&engine, &g729, "g729-only"),
        488,
        "G.729-only offer",
    );

    // Garbage: no reply at all.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    socket
        .send_to(b"\x00\x01\x02 not SIP \xff\xfe\r\n\r\n", engine.sip_addr())
        .expect("send");
    let mut buf = [0u8; 4096];
    if let Ok((n, _)) = socket.recv_from(&mut buf) {
        panic!(
            "garbage got a reply: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }

    assert_status(
        &exchange(&engine, &probe, "options-2"),
        200,
        "OPTIONS after garbage",
    );

    let records = engine.stop_and_read_records();
    let r = records
        .iter()
        .find(|r| r["sip_call_id"] == "g729-only")
        .unwrap_or_else(|| panic!("no record of the 488 call: {records:#?}"));
    assert_eq!(str_field(r, "disposition"), "rejected", "{r}");
    assert_eq!(str_field(r, "outcome"), "no_common_codec", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 488, "{r}");
}

// ---- IVR menus, keys in every form, messages --------------------------------

/// The record of a caller who chose `business` in the main menu by
/// pressing `digits`, then hung up while hearing that no agent is free:
/// with no agent registered, the queue of the same name refuses the caller
/// and the IVR falls back to the no-agents prompt.
fn assert_chose(r: &Value, business: &str, digits: &str) {
    assert_eq!(str_field(r, "business_type"), business, "{r}");
    assert_eq!(str_field(r, "digits"), digits, "{r}");
    let queue = format!("{business}_queue");
    let path = ivr_path(r);
    assert!(
        path.starts_with(&["welcome", "main", business, &queue, "no_agents"]),
        "ivr_path = {path:?}: {r}"
    );
    assert_eq!(str_field(r, "queue"), business, "{r}");
    assert_eq!(str_field(r, "queue_result"), "refused", "{r}");
    assert_eq!(u64_field(r, "offers"), 0, "{r}");
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
}

/// Key 2 as RFC 4733 telephone-events (SIPp's capture, payload type 101,
/// the type our SDP offers), pressed during the greeting: it interrupts it
/// and chooses repair. Its three end packets count once.
#[test]
fn dtmf_rfc4733_chooses_repair() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("dtmf_2833_2.pcap") else {
        return;
    };
    let ports = Ports::new(9);
    let mut engine = Engine::start(ports, &Settings::default());
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_dtmf_rtp.xml",
        &["-key", "pcap", &pcap, "-d", "2000"],
        30,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    assert_chose(single(&records), "repair", "2");
}

/// Key 3 as SIP INFO (application/dtmf-relay) chooses complaint. A second
/// 3 sent both as INFO and as RFC 4733 events at the same moment counts
/// once: "33", not "333".
#[test]
fn dtmf_sip_info_chooses_complaint() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("dtmf_2833_3.pcap") else {
        return;
    };
    let ports = Ports::new(10);
    let mut engine = Engine::start(ports, &Settings::default());
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_dtmf_info.xml",
        &["-key", "digit", "3", "-key", "pcap", &pcap, "-d", "1500"],
        30,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    assert_chose(single(&records), "complaint", "33");
}

/// A phone that sends keys as tones: the SDP offers PCMU alone (no
/// telephone-event), and the audio (a capture written by this test) holds
/// 100 ms of the DTMF pair for 1 (697 + 1209 Hz) after 1 s of silence.
/// The engine hears the tones and chooses consultation.
#[test]
fn dtmf_inband_chooses_consultation() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let ports = Ports::new(11);
    let mut engine = Engine::start(ports, &Settings::default());
    let pcap = engine.path().join("dtmf_1_inband.pcap");
    write_pcmu_pcap(&pcap, &dtmf_audio(697.0, 1209.0, 1000, 100, 500));
    let pcap = pcap.to_string_lossy().into_owned();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_dtmf_inband.xml",
        &["-key", "pcap", &pcap, "-d", "2500"],
        30,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "codec"), "PCMU", "{r}");
    assert_chose(r, "consultation", "1");
}

/// Runs `scenario` (uac_message*.xml: key 9 as RFC 4733 during the
/// greeting, the "leave a message" prompt and the beep, then 7.08 s of
/// PCMA speech) as test `n`; returns the engine, still running.
fn leave_message(n: u16, scenario: &str) -> Option<Engine> {
    if !require_tool("sipp") || !require_root() {
        return None;
    }
    let (Some(dtmf), Some(speech)) = (sample_pcap("dtmf_2833_9.pcap"), sample_pcap("g711a.pcap"))
    else {
        return None;
    };
    let s = Settings::default();
    let engine = Engine::start(Ports::new(n), &s);
    let until_recording =
        prompt_ms(s.language, "leave_message") + prompt_ms(s.language, "beep") + 500;
    let until_recording = until_recording.to_string();
    let args = ["-key", "dtmf", &dtmf, "-key", "pcap", &speech];
    let sipp = Sipp::spawn(
        &engine,
        0,
        scenario,
        &[&args[..], &["-d", &until_recording]].concat(),
        60,
    );
    sipp.expect_success(&engine);
    Some(engine)
}

/// The messages index once it has `n` lines (it is written after the WAV,
/// which is written after the recording ends), or a panic after 5 s.
fn wait_for_index(engine: &Engine, n: usize) -> Vec<Value> {
    let index = engine.messages_dir().join("index.jsonl");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = if index.is_file() {
            read_jsonl(&index)
        } else {
            Vec::new()
        };
        if lines.len() >= n || Instant::now() > deadline {
            assert_eq!(
                lines.len(),
                n,
                "messages index: {lines:#?}\n{}",
                engine.log_tail()
            );
            return lines;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Checks one message: the index line `m` agrees with the call's record
/// `r`, and its WAV is 8 kHz mono 16-bit, holds the 7.08 s of speech the
/// caller sent (only received audio is recorded) and is not silent.
fn check_message(engine: &Engine, r: &Value, m: &Value, ended_by: &str) {
    let file = str_field(r, "message_file");
    assert_eq!(str_field(m, "file"), file, "index and record agree: {m}");
    assert_eq!(str_field(m, "call_id"), str_field(r, "call_id"), "{m}");
    assert_eq!(str_field(m, "ended_by"), ended_by, "{m}");
    assert_eq!(str_field(m, "caller_number"), "13800138000", "{m}");
    assert_eq!(str_field(m, "dialled_number"), "4000", "{m}");
    assert_eq!(str_field(m, "customer_class"), "public", "{m}");
    assert!(m["business_type"].is_null(), "9 chooses no business: {m}");

    let info = wav_info(&engine.messages_dir().join(file));
    assert_eq!(
        (
            info.spec.channels,
            info.spec.sample_rate,
            info.spec.bits_per_sample
        ),
        (1, 8000, 16),
        "{info:?}"
    );
    assert_eq!(info.spec.sample_format, hound::SampleFormat::Int);
    assert!(
        (5000..=7100).contains(&info.duration_ms),
        "message of {} ms, expected about 7080: {info:?}",
        info.duration_ms
    );
    assert!(
        u64_field(m, "duration_ms").abs_diff(info.duration_ms) <= 20,
        "index says {} ms, the WAV holds {} ms: {m}",
        u64_field(m, "duration_ms"),
        info.duration_ms
    );
    // Speech at about -25 dBFS; silence would be near 0.
    assert!(info.rms > 300.0, "the message is (nearly) silent: {info:?}");
}

/// Key 9 (RFC 4733) during the greeting, the "leave a message" prompt and
/// the beep, 7 s of speech (PCMA), then # as SIP INFO (application/dtmf):
/// the engine says the message is saved and hangs up. The message is in
/// the index and on disk, the record names it, and `hotline messages list`
/// shows it.
#[test]
fn message_recorded_from_sipp_audio() {
    let Some(mut engine) = leave_message(12, "uac_message.xml") else {
        return;
    };
    let index = wait_for_index(&engine, 1);
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(
        ivr_path(r),
        ["welcome", "main", "message", "message_saved"],
        "{r}"
    );
    assert_eq!(str_field(r, "digits"), "9#", "{r}");
    assert_eq!(str_field(r, "outcome"), "completed", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "engine", "{r}");
    assert_eq!(str_field(r, "codec"), "PCMA", "{r}");
    assert_eq!(r["caller_spoke"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "customer_class"), "public", "{r}");
    assert_eq!(r["vip"], Value::Bool(false), "{r}");
    check_message(&engine, r, single(&index), "pound");

    let out = command()
        .args(["messages", "list", "--config"])
        .arg(engine.config_path())
        .output()
        .expect("run hotline messages list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "messages list: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let file = str_field(r, "message_file");
    assert!(stdout.contains("13800138000"), "caller missing:\n{stdout}");
    assert!(stdout.contains(file), "file {file} missing:\n{stdout}");
    assert!(stdout.contains("pound"), "ended_by missing:\n{stdout}");
}

/// The caller hangs up while still being recorded: the message is kept
/// (ended by "hangup") and the record names it.
#[test]
fn message_kept_when_caller_hangs_up() {
    let Some(mut engine) = leave_message(14, "uac_message_bye.xml") else {
        return;
    };
    let index = wait_for_index(&engine, 1);
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(ivr_path(r), ["welcome", "main", "message"], "{r}");
    assert_eq!(str_field(r, "digits"), "9", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    check_message(&engine, r, single(&index), "hangup");
}

/// The engine is stopped (SIGTERM) while a caller is leaving a message:
/// the call's record names the message, so the message must be kept and
/// indexed like one cut short by the caller hanging up (the engine waits
/// for the WAV before it exits).
#[test]
fn message_kept_on_shutdown() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let (Some(dtmf), Some(speech)) = (sample_pcap("dtmf_2833_9.pcap"), sample_pcap("g711a.pcap"))
    else {
        return;
    };
    let s = Settings::default();
    let mut engine = Engine::start(Ports::new(15), &s);
    let until_recording =
        prompt_ms(s.language, "leave_message") + prompt_ms(s.language, "beep") + 500;
    let d = until_recording.to_string();
    let args = ["-key", "dtmf", &dtmf, "-key", "pcap", &speech, "-d", &d];
    // The scenario fails (the engine's BYE comes before its INFO): ignored.
    let _sipp = Sipp::spawn(&engine, 0, "uac_message.xml", &args, 60);
    // Ringing, 1 s to the key, the prompt and the beep, 3 s of speech.
    thread::sleep(Duration::from_millis(2000 + until_recording + 3000));

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "outcome"), "shutdown", "{r}");
    assert_eq!(ivr_path(r), ["welcome", "main", "message"], "{r}");
    let file = str_field(r, "message_file");
    let wav = engine.messages_dir().join(file);
    assert!(wav.is_file(), "no {}", wav.display());
    let m = wait_for_index(&engine, 1);
    assert_eq!(str_field(single(&m), "file"), file, "{m:?}");
}

/// A caller directory with the caller's number as a group VIP: the record
/// carries the class, the VIP flag and the directory's name for it.
#[test]
fn caller_directory_sets_class_and_vip() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(13);
    let s = Settings {
        directory: Some(
            "# number,class,vip,name\n\
             13800138000,group,yes,Test Group Co\n\
             138*,business,no,Prefix Only\n",
        ),
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &s);
    let media = ports.sipp(0).media.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &media, "-d", "1000"],
        15,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "caller_number"), "13800138000", "{r}");
    assert_eq!(
        str_field(r, "customer_class"),
        "group",
        "the exact number beats the prefix: {r}"
    );
    assert_eq!(r["vip"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "customer_name"), "Test Group Co", "{r}");
}
