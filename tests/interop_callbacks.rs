//! A queue callback end to end on loopback, with the real binary and
//! three SIPp peers: a caller (instance 2, tests/interop/uac_callback.xml)
//! waits in the repair queue, takes the callback offer with 1, confirms
//! the number read back with 1 and is hung up; the agent's phone
//! (instance 0, agent_task.xml) answers the callback task; the trunk
//! (instance 1, trunk_callback.xml) receives the INVITE to the caller's
//! number and answers; the two are bridged and the records link the
//! callback to the call it came from. Ports: `Ports::new(29)` (the
//! interop_acd range, see tests/README.md).
//!
//! Needs `sipp` (package sip-tester) with its sample captures and root
//! (raw sockets for the key captures); without them the test is skipped,
//! or fails under `CI=true`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const TOKEN: &str = "demo-token";
const AGENT: u16 = 0;
const TRUNK: u16 = 1;
const CALLER: u16 = 2;

fn api() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn call_api(engine: &Engine, method: &str, path: &str) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}{path}", engine.api_port());
    let auth = format!("Bearer {TOKEN}");
    let r = match method {
        "POST" => api()
            .post(&url)
            .header("Authorization", &auth)
            .send_json(serde_json::json!({})),
        _ => api().get(&url).header("Authorization", &auth).call(),
    };
    let mut r = r.expect("API request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("API body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The live view's callbacks, as /api/v1/status shows them.
fn callbacks(engine: &Engine) -> Value {
    let (status, body) = call_api(engine, "GET", "/api/v1/status");
    assert_eq!(status, 200, "{body}");
    body["tasks"]["callbacks"].clone()
}

/// SIPp's RFC 4733 capture `src` as a later press of the same key: its
/// RTP timestamps and sequence numbers moved on, so the receiver takes it
/// for a new event rather than a repeat of the first (the captures all
/// share one timestamp). SIPp recomputes the UDP checksum as it replays.
fn again_pcap(engine: &Engine, src: &str, name: &str) -> String {
    let mut bytes = std::fs::read(src).expect("capture");
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        let rtp = at + 16 + 14 + 20 + 8;
        if rtp + 8 <= at + 16 + len {
            let seq = u16::from_be_bytes([bytes[rtp + 2], bytes[rtp + 3]]).wrapping_add(100);
            bytes[rtp + 2..rtp + 4].copy_from_slice(&seq.to_be_bytes());
            let ts = u32::from_be_bytes(bytes[rtp + 4..rtp + 8].try_into().expect("4 bytes"))
                .wrapping_add(80_000);
            bytes[rtp + 4..rtp + 8].copy_from_slice(&ts.to_be_bytes());
        }
        at += 16 + len;
    }
    let path = engine.path().join(name);
    std::fs::write(&path, bytes).expect("write capture");
    path.to_string_lossy().into_owned()
}

fn wait_until(engine: &Engine, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "{what}: not within {limit:?}\n{}",
            engine.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_caller_books_a_callback_and_the_agent_reaches_them_through_the_trunk() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let (Some(two), Some(one)) = (
        sample_pcap("dtmf_2833_2.pcap"),
        sample_pcap("dtmf_2833_1.pcap"),
    ) else {
        return;
    };
    let ports = Ports::new(29);
    let q = |v: &str| format!("{v:?}");
    let settings = Settings {
        answer_after: "500ms",
        overrides: vec![
            ("[[queues]]", "wrap_up", q("2s")),
            ("[[queues]]", "apology_after", q("30s")),
            ("[[queues]]", "recording_notice", "false".into()),
        ],
        ..Settings::default()
    };
    // The repair queue offers the callback after 2 s of waiting.
    let config = config_toml(&ports, &settings).replacen(
        "name = \"repair\"\n",
        "name = \"repair\"\ncallback_after = \"2s\"\n",
        1,
    );
    assert!(config.contains("callback_after"));
    let config = with_trunk(config, ports.sipp(TRUNK).sip);
    let mut engine = Engine::start_config(ports, &config, &[]);

    // The agent logs in and goes on break: the caller waits.
    let register = ["-key", "agent", "1001", "-au", "1001", "-ap", "secret"];
    Sipp::spawn(&engine, AGENT, "agent_register.xml", &register, 15).expect_success(&engine);
    let (status, body) = call_api(&engine, "POST", "/api/v1/agents/1001/break");
    assert_eq!(status, 200, "{body}");

    let confirm = again_pcap(&engine, &one, "confirm.pcap");
    let caller = Sipp::spawn(
        &engine,
        CALLER,
        "uac_callback.xml",
        &[
            "-key", "menu", &two, "-key", "one", &one, "-key", "confirm", &confirm,
        ],
        40,
    );
    caller.expect_success(&engine);
    wait_until(
        &engine,
        Duration::from_secs(5),
        "the callback is waiting",
        || callbacks(&engine)["waiting"] == 1,
    );

    // The agent is back: the callback is theirs; the trunk answers.
    let trunk = Sipp::start(&engine, TRUNK, "trunk_callback.xml", &["-d", "3000"], 60, 1);
    trunk.wait_listening(&engine, TRUNK);
    let phone = Sipp::start(
        &engine,
        AGENT,
        "agent_task.xml",
        &["-key", "agent", "1001"],
        60,
        1,
    );
    phone.wait_listening(&engine, AGENT);
    let (status, body) = call_api(&engine, "POST", "/api/v1/agents/1001/available");
    assert_eq!(status, 200, "{body}");
    trunk.expect_success(&engine);
    let phone = phone.expect_success(&engine);
    assert!(phone.logs().contains("kind=callback"), "{}", phone.logs());
    wait_until(
        &engine,
        Duration::from_secs(5),
        "the callback is done",
        || {
            let c = callbacks(&engine);
            c["waiting"] == 0 && c["completed_today"] == 1
        },
    );

    let records = engine.stop_and_read_records();
    let asked = records
        .iter()
        .find(|r| r["queue_result"] == "callback")
        .unwrap_or_else(|| panic!("the caller's record: {records:#?}"));
    let task = asked["callback_task"].as_u64().expect("callback_task");
    assert_eq!(str_field(asked, "queue"), "repair", "{asked}");
    let back = records
        .iter()
        .find(|r| r["task"].as_u64() == Some(task))
        .unwrap_or_else(|| panic!("the callback's record: {records:#?}"));
    assert_eq!(str_field(back, "origin_call"), str_field(asked, "call_id"));
    assert_eq!(str_field(back, "direction"), "outbound", "{back}");
    assert_eq!(str_field(back, "task_kind"), "callback", "{back}");
    assert_eq!(str_field(back, "attempt_result"), "answered", "{back}");
    assert_eq!(str_field(back, "caller_number"), "13800138000", "{back}");
    assert_eq!(str_field(back, "trunk"), "pstn", "{back}");
    assert_eq!(str_field(back, "agent"), "1001", "{back}");
    assert!(!back["bridged_at"].is_null(), "bridged: {back}");
    let talk = u64_field(back, "talk_ms");
    assert!((2500..=6000).contains(&talk), "talk_ms = {talk}: {back}");
}
