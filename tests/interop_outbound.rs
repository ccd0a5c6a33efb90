//! Outbound notice calls against a real trunk: SIPp in server mode plays
//! the trunk (tests/interop/trunk_*.xml) and the campaign is driven
//! through the HTTP API (and `hotline campaign ...`). Each test has its
//! own ports (k = 0..=9): engine SIP 15700 + k, SIPp 15720 + k (control
//! 15740 + k), API 18400 + k, engine RTP 24000 + 100k .. + 99, SIPp media
//! 25000 + 20k.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TOKEN: &str = "demo-token";

fn ports(k: u16) -> Ports {
    assert!(k < 10);
    let rtp = 24000 + 100 * k;
    Ports::block(
        k,
        15700 + k,
        (rtp, rtp + 99),
        PortBlock {
            sipp_sip: [15720 + k, 15730 + k],
            sipp_control: [15740 + k, 15750 + k],
            media: 25000 + 20 * k,
            api: 18400 + k,
        },
    )
}

/// The default config on test `k`'s ports with one trunk, "pstn", at
/// SIPp instance 0; `trunk_extra` adds keys to it (TOML lines).
fn config(k: u16, transport: &str, trunk_extra: &str) -> String {
    let p = ports(k);
    let mut text = base_config(p.engine());
    text = set_key(&text, "[calls]", "drain_timeout", "\"2s\"");
    text.push_str(&format!(
        "\n[[trunks]]\nname = \"pstn\"\naddress = \"127.0.0.1:{}\"\ntransport = \"{transport}\"\n\
         caller_id = \"4008001234\"\nmax_channels = 10\nmax_calls_per_second = 10\n{trunk_extra}\n",
        p.sipp(0).sip
    ));
    text
}

fn start(k: u16) -> Engine {
    Engine::start_config(ports(k), &config(k, "udp", ""), &[])
}

/// SIPp as the trunk: `scenario` in server mode, for up to `calls` calls,
/// ready for the engine's INVITEs when this returns.
fn trunk(engine: &Engine, scenario: &str, extra: &[&str], calls: u32) -> Sipp {
    let sipp = Sipp::start(engine, 0, scenario, extra, 120, calls);
    sipp.wait_listening(engine, 0);
    sipp
}

// ---- the HTTP API -----------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn url(engine: &Engine, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", engine.api_port())
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut r = r.expect("API request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("API body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(engine: &Engine, path: &str, body: Value) -> (u16, Value) {
    reply(
        agent()
            .post(&url(engine, path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(body),
    )
}

fn get(engine: &Engine, path: &str) -> (u16, Value) {
    reply(
        agent()
            .get(&url(engine, path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    )
}

/// Creates a campaign through the API; returns its id.
fn create(engine: &Engine, spec: Value) -> u64 {
    let (status, body) = post(engine, "/api/v1/campaigns", spec);
    assert_eq!(status, 201, "create: {body}\n{}", engine.log_tail());
    body["id"].as_u64().expect("id")
}

fn campaign(engine: &Engine, id: u64) -> Value {
    let (status, body) = get(engine, &format!("/api/v1/campaigns/{id}"));
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the campaign until its first number is in `state`; returns the
/// campaign as it then stands.
fn wait_state(engine: &Engine, id: u64, state: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let c = campaign(engine, id);
        if c["numbers"][0]["state"] == state {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "number not {state} within {limit:?}: {c:#}\n{}",
            engine.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (attempt, result, sip_status) of the first number's attempts.
fn attempts(c: &Value) -> Vec<(u64, String, u64)> {
    c["numbers"][0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap_or(0),
                a["result"].as_str().unwrap_or("").to_string(),
                a["sip_status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The outbound records written so far, by attempt.
fn outbound_records(engine: &Engine) -> BTreeMap<u64, Value> {
    engine
        .records()
        .into_iter()
        .filter(|r| r["direction"] == "outbound")
        .map(|r| (r["attempt"].as_u64().expect("attempt"), r))
        .collect()
}

/// Waits for the record of `attempt` (written once the call has ended).
fn wait_record(engine: &Engine, attempt: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = outbound_records(engine).remove(&attempt) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no record of attempt {attempt}:\n{}",
            engine.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- what SIPp received ------------------------------------------------------

/// The INVITEs in a SIPp messages log that SIPp received: (Call-ID,
/// CSeq, whole message), retransmissions included.
fn received_invites(log: &str) -> Vec<(String, String, String)> {
    log.split("message received")
        .skip(1)
        .filter_map(|chunk| {
            // "[n] bytes :\n\n<message>" up to the next separator line.
            let msg = chunk.split_once("\n\n")?.1;
            let msg = msg.split("\n----").next().unwrap_or(msg);
            if !msg.trim_start().starts_with("INVITE ") {
                return None;
            }
            let field = |name: &str| {
                msg.lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            Some((field("Call-ID"), field("CSeq"), msg.to_string()))
        })
        .collect()
}

/// Distinct INVITE transactions (Call-ID, CSeq) SIPp received.
fn invite_transactions(log: &str) -> BTreeSet<(String, String)> {
    received_invites(log)
        .into_iter()
        .map(|(id, cseq, _)| (id, cseq))
        .collect()
}

fn call_ids(log: &str) -> BTreeSet<String> {
    received_invites(log)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// Waits until SIPp has received `n` distinct INVITE transactions.
fn wait_invites(sipp: &Sipp, engine: &Engine, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while invite_transactions(&sipp.read("_messages.log", usize::MAX)).len() < n {
        assert!(
            Instant::now() < deadline,
            "SIPp did not get {n} INVITEs within {limit:?}:\n{}",
            engine.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- the tests -----------------------------------------------------------------

/// The callee answers and presses 1 (RFC 4733, from SIPp's capture)
/// during the notice: confirmed, hung up by the engine, recorded.
#[test]
fn an_answer_and_key_1_as_rfc4733_confirms_the_number() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("dtmf_2833_1.pcap") else {
        return;
    };
    let engine = start(0);
    let sipp = trunk(&engine, "trunk_answer_key.xml", &["-key", "pcap", &pcap], 1);
    let id = create(
        &engine,
        json!({"name": "gas outage", "trunk": "pstn", "prompt": "notice_example",
               "numbers": ["13800000001"], "first_after": "0s",
               "confirm_key": "1", "repeat_key": "2", "optout_key": "9"}),
    );
    let c = wait_state(&engine, id, "confirmed", Duration::from_secs(20));
    let sipp = sipp.expect_success(&engine);
    assert_eq!(attempts(&c), vec![(1, "confirmed".to_string(), 200)]);
    assert_eq!(c["state"], "completed", "{c:#}");
    let r = wait_record(&engine, 1);
    assert_eq!(r["attempt_result"], "confirmed", "{r:#}");
    assert_eq!(r["campaign"], id, "{r:#}");
    assert_eq!(r["trunk"], "pstn", "{r:#}");
    assert_eq!(r["dialled_number"], "13800000001", "{r:#}");
    assert_eq!(r["digits"], "1", "{r:#}");
    assert_eq!(r["hangup_side"], "engine", "{r:#}");
    let log = sipp.read("_messages.log", usize::MAX);
    let invites = received_invites(&log);
    let (_, _, invite) = invites.first().expect("an INVITE");
    assert!(
        invite.starts_with("INVITE sip:13800000001@127.0.0.1:15720 SIP/2.0"),
        "{invite}"
    );
    assert!(
        invite.contains("<sip:4008001234@"),
        "the trunk's caller id: {invite}"
    );
    assert_eq!(
        r["sip_call_id"], invites[0].0,
        "the record names the SIP call"
    );
}

/// Busy every time on a 1 s schedule: exactly four INVITEs (the first and
/// three retries), then the number is failed.
#[test]
fn busy_every_time_gets_exactly_four_attempts() {
    if !require_tool("sipp") {
        return;
    }
    let engine = start(1);
    let sipp = trunk(&engine, "trunk_busy.xml", &["-d", "200"], 100);
    let id = create(
        &engine,
        json!({"name": "busy", "trunk": "pstn", "prompt": "notice_example",
               "numbers": ["13800000002"], "first_after": "0s",
               "retry": ["1s", "1s", "1s"], "confirm_key": "1"}),
    );
    let c = wait_state(&engine, id, "failed", Duration::from_secs(30));
    // Room for a fifth that must not come.
    std::thread::sleep(Duration::from_secs(2));
    let log = sipp.stop();
    assert_eq!(
        attempts(&c),
        (1..=4)
            .map(|n| (n, "busy".to_string(), 486))
            .collect::<Vec<_>>()
    );
    assert_eq!(invite_transactions(&log).len(), 4, "INVITEs SIPp received");
    assert_eq!(call_ids(&log).len(), 4, "one call per attempt");
    let records = outbound_records(&engine);
    assert_eq!(
        records.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(
        records
            .values()
            .all(|r| r["attempt_result"] == "busy" && r["sip_status"] == 486),
        "{records:#?}"
    );
    // Attempts at least a second apart (the retry waits after each end).
    let at: Vec<std::time::SystemTime> = c["numbers"][0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| humantime::parse_rfc3339(a["at"].as_str().expect("at")).expect("time"))
        .collect();
    for pair in at.windows(2) {
        assert!(
            ms_between(pair[0], pair[1]) >= 1000,
            "retry sooner than 1 s: {c:#}"
        );
    }
}

/// 404: no such number; tried once, never again.
#[test]
fn a_number_answered_404_is_tried_once_and_invalid() {
    if !require_tool("sipp") {
        return;
    }
    let engine = start(2);
    let sipp = trunk(&engine, "trunk_not_found.xml", &[], 100);
    let id = create(
        &engine,
        json!({"name": "404", "trunk": "pstn", "prompt": "notice_example",
               "numbers": ["13800000404"], "first_after": "0s",
               "retry": ["1s", "1s", "1s"]}),
    );
    let c = wait_state(&engine, id, "invalid", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    let log = sipp.stop();
    assert_eq!(attempts(&c), vec![(1, "invalid".to_string(), 404)]);
    assert_eq!(invite_transactions(&log).len(), 1, "{log}");
    assert_eq!(wait_record(&engine, 1)["attempt_result"], "invalid");
}

/// A trunk that challenges with 407: the INVITE goes again with
/// Proxy-Authorization (a valid MD5 digest for the configured user and
/// the password from the environment), is answered, and the password is
/// never in the engine's log.
#[test]
fn a_407_challenge_is_answered_with_the_trunk_credentials() {
    if !require_tool("sipp") {
        return;
    }
    const SECRET: &str = "tr0nk-S3cret-4417";
    let k = 3;
    let extra = "username = \"hotline\"\npassword_env = \"HOTLINE_TEST_TRUNK_SECRET\"";
    let engine = Engine::start_config(
        ports(k),
        &config(k, "udp", extra),
        &[("HOTLINE_TEST_TRUNK_SECRET", SECRET)],
    );
    let sipp = trunk(&engine, "trunk_auth.xml", &[], 1);
    let id = create(
        &engine,
        json!({"name": "auth", "trunk": "pstn", "prompt": "repair",
               "numbers": ["13800000407"], "first_after": "0s"}),
    );
    let c = wait_state(&engine, id, "confirmed", Duration::from_secs(20));
    let sipp = sipp.expect_success(&engine);
    assert_eq!(attempts(&c), vec![(1, "heard".to_string(), 200)]);
    let log = sipp.read("_messages.log", usize::MAX);
    let invites = received_invites(&log);
    let cseqs: BTreeSet<&str> = invites.iter().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(
        cseqs,
        BTreeSet::from(["1 INVITE", "2 INVITE"]),
        "the INVITE, then again with credentials"
    );
    assert_eq!(call_ids(&log).len(), 1, "one dialog");
    let (_, _, second) = invites
        .iter()
        .find(|(_, c, _)| c == "2 INVITE")
        .expect("the second INVITE");
    let value = header(&second.replace('\n', "\r\n"), "Proxy-Authorization")
        .expect("Proxy-Authorization")
        .to_string();
    let creds = hotline::sip::digest::DigestCredentials::parse(&value).expect("digest");
    let ha1 = hotline::sip::digest::ha1(
        hotline::sip::digest::Algorithm::Md5,
        "hotline",
        "trunk.example",
        SECRET,
    );
    assert!(creds.verify(&ha1, "INVITE"), "a wrong digest: {value}");
    assert!(sipp.logs().contains("auth=Digest"), "{}", sipp.logs());
    let text = engine.log_text();
    assert!(text.contains("placing a notice call"));
    assert!(
        !text.contains(SECRET),
        "the trunk password is in the engine's log"
    );
}

/// 183 with SDP (a carrier's announcement), then 486: early media is not
/// an answer; the attempt is busy.
#[test]
fn early_media_then_486_is_busy_not_an_answer() {
    if !require_tool("sipp") {
        return;
    }
    let engine = start(4);
    let sipp = trunk(&engine, "trunk_early_media_busy.xml", &[], 1);
    let id = create(
        &engine,
        json!({"name": "early", "trunk": "pstn", "prompt": "notice_example",
               "numbers": ["13800000183"], "first_after": "0s", "retry": ["1h"]}),
    );
    let c = wait_state(&engine, id, "waiting_retry", Duration::from_secs(15));
    sipp.expect_success(&engine);
    assert_eq!(attempts(&c), vec![(1, "busy".to_string(), 486)]);
    let r = wait_record(&engine, 1);
    assert_eq!(r["attempt_result"], "busy", "{r:#}");
    assert!(r["answered_at"].is_null(), "not answered: {r:#}");
    assert_ne!(r["disposition"], "answered", "{r:#}");
}

/// kill -9 while an attempt rings, then a restart on the same store: the
/// attempt is recorded interrupted, the next is attempt 2, and no attempt
/// is dialled twice.
#[test]
fn a_crash_while_ringing_resumes_without_a_duplicate_attempt() {
    if !require_tool("sipp") {
        return;
    }
    let mut engine = start(5);
    // Rings 3 s, then busy.
    let sipp = trunk(&engine, "trunk_busy.xml", &["-d", "3000"], 100);
    let id = create(
        &engine,
        json!({"name": "crash", "trunk": "pstn", "prompt": "notice_example",
               "numbers": ["13800000009"], "first_after": "0s", "retry": ["2s"]}),
    );
    wait_invites(&sipp, &engine, 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    engine.kill();
    engine.restart();
    let c = wait_state(&engine, id, "failed", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    let log = sipp.stop();
    assert_eq!(
        attempts(&c),
        vec![
            (1, "interrupted".to_string(), 0),
            (2, "busy".to_string(), 486)
        ]
    );
    // One INVITE transaction per attempt, each a call of its own.
    assert_eq!(invite_transactions(&log).len(), 2, "{log}");
    assert_eq!(call_ids(&log).len(), 2);
    let records = outbound_records(&engine);
    assert_eq!(records.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(records[&1]["attempt_result"], "interrupted");
    assert_eq!(records[&2]["attempt_result"], "busy");
    let attempt_2 = engine.log_text().matches("placing a notice call").count();
    assert_eq!(attempt_2, 2, "one INVITE placed by each run");
}

/// A trunk over TCP (SIPp -t t1): the engine connects, sends the INVITE
/// and the rest of the dialog on that connection, and reads the answers.
#[test]
fn a_tcp_trunk_takes_the_notice_call() {
    if !require_tool("sipp") {
        return;
    }
    let k = 6;
    let mut engine = Engine::start_config(ports(k), &config(k, "tcp", ""), &[]);
    let sipp = Sipp::start(&engine, 0, "trunk_answer.xml", &["-t", "t1"], 60, 2);
    wait_tcp_listening(ports(k).sipp(0).sip, Duration::from_secs(5));
    // The port in the callee's SDP, where the notice is sent.
    let rtp = RtpProbe::listen(ports(k).sipp(0).sdp, Duration::from_secs(30));
    let id = create(
        &engine,
        json!({"name": "tcp", "trunk": "pstn", "prompt": "repair",
               "numbers": ["13800000006", "13800000016"], "first_after": "0s",
               "max_concurrent": 1}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        let c = campaign(&engine, id);
        if c["state"] == "completed" {
            break c;
        }
        assert!(Instant::now() < deadline, "{c:#}\n{}", engine.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    };
    let sipp = sipp.expect_success(&engine);
    let heard = rtp.finish();
    // "repair" is about 1 s: two notices of PCMU with sound in them.
    let sound = heard
        .packets
        .iter()
        .filter(|p| p.payload_type == 0 && p.payload.iter().any(|&b| b != 0xFF))
        .count();
    assert!(
        sound >= 50,
        "{sound} packets of the notice reached the callee"
    );
    for n in c["numbers"].as_array().expect("numbers") {
        assert_eq!(n["state"], "confirmed", "{c:#}");
        assert_eq!(n["attempts"][0]["result"], "heard", "{c:#}");
    }
    let records = engine.stop_and_read_records();
    assert_eq!(records.len(), 2, "{records:#?}");
    let log = sipp.read("_messages.log", usize::MAX);
    assert!(log.contains("TCP message received"), "{log}");
    assert!(!log.contains("UDP message"), "{log}");
    let invites = received_invites(&log);
    assert_eq!(invites.len(), 2);
    assert!(
        invites[0].2.contains("Via: SIP/2.0/TCP "),
        "{}",
        invites[0].2
    );
    assert!(
        invites[0].2.contains(";transport=tcp>"),
        "a Contact for TCP: {}",
        invites[0].2
    );
    // Both calls, and their ACKs and BYEs, on one connection.
    let opened = engine
        .log_text()
        .matches("TCP connection to a trunk opened")
        .count();
    assert_eq!(opened, 1, "one connection, reused");
}

// ---- the CLI ----------------------------------------------------------------------

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = command()
        .arg("campaign")
        .args(args)
        .output()
        .expect("run hotline campaign");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hotline campaign create | list | show | pause | resume` against the
/// running engine, by --api/--token and by --config; a 400 names the
/// field and exits 2.
#[test]
fn the_campaign_cli_creates_lists_shows_pauses_and_resumes() {
    let k = 7;
    let engine = start(k);
    let api = format!("http://127.0.0.1:{}", engine.api_port());
    let base = ["--api", api.as_str(), "--token", TOKEN];
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&base);
        cli(&all)
    };

    // JSON: numbers on the command line, the prompt by name.
    let (code, out, err) = with(&[
        "create",
        "--name",
        "gas outage",
        "--trunk",
        "pstn",
        "--prompt",
        "notice_example",
        "--number",
        "13800000001",
        "--number",
        "138-0000-0002",
        "--first-after",
        "1h",
        "--retry",
        "10m,1h",
        "--confirm-key",
        "1",
        "--repeat-key",
        "2",
        "--optout-key",
        "9",
        "--max-concurrent",
        "5",
        "--ring-timeout",
        "20s",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let first: u64 = out.trim().parse().expect("create prints the id");

    // Multipart: a CSV and a WAV, through --config.
    let dir = engine.path();
    let csv = dir.join("numbers.csv");
    fs::write(
        &csv,
        "number,name\n13900000001,A\n13900000002,B\n13900000003,C\n",
    )
    .expect("csv");
    let wav = prompt_path("en", "repair");
    let config = engine.config_path().display().to_string();
    let (code, out, err) = cli(&[
        "create",
        "--config",
        &config,
        "--name",
        "from files",
        "--trunk",
        "pstn",
        "--wav",
        &wav.display().to_string(),
        "--numbers",
        &csv.display().to_string(),
        "--number",
        "13900000004",
        "--first-after",
        "2h",
        "--start-at",
        "2030-01-01T09:00:00+08:00",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let second: u64 = out.trim().parse().expect("id");
    assert_ne!(first, second);

    let c = campaign(&engine, first);
    assert_eq!(c["name"], "gas outage");
    assert_eq!(c["retry"], json!(["10m", "1h"]), "{c:#}");
    assert_eq!(c["confirm_key"], "1");
    assert_eq!(c["optout_key"], "9");
    assert_eq!(c["max_concurrent"], 5);
    assert_eq!(c["ring_timeout"], "20s");
    assert_eq!(c["numbers"][1]["number"], "13800000002");
    let c = campaign(&engine, second);
    assert_eq!(
        c["total"], 4,
        "three from the CSV, one from --number: {c:#}"
    );
    assert_eq!(
        c["prompt"], "repair",
        "the WAV's file stem names the prompt"
    );
    assert!(
        c["start_at"]
            .as_str()
            .is_some_and(|s| s.starts_with("2030-01-01T01:00:00")),
        "{c:#}"
    );

    let (code, out, err) = with(&["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gas outage") && out.contains("from files"),
        "{out}"
    );

    let (code, out, err) = cli(&["show", &first.to_string(), "--config", &config]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("13800000001") && out.contains("pending"),
        "{out}"
    );

    let (code, out, err) = with(&["pause", &first.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("paused"), "{out}");
    assert_eq!(campaign(&engine, first)["state"], "paused");
    let (code, out, err) = with(&["resume", &first.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("running"), "{out}");
    assert_eq!(campaign(&engine, first)["state"], "running");
    let (code, _, err) = with(&["cancel", &second.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(campaign(&engine, second)["state"], "cancelled");

    // A field the API refuses: named, exit 2.
    let (code, out, err) = with(&[
        "create",
        "--name",
        "bad",
        "--trunk",
        "pstn",
        "--prompt",
        "repair",
        "--number",
        "13800000001",
        "--retry",
        "10m,soon",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("retry[1]"), "{err}");
    let (code, _, err) = with(&[
        "create",
        "--name",
        "bad",
        "--trunk",
        "nowhere",
        "--prompt",
        "repair",
        "--number",
        "13800000001",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("trunk"), "{err}");
    // A wrong token is not a field error.
    let (code, _, err) = cli(&["list", "--api", &api, "--token", "wrong"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
}

/// Waits until something listens on TCP `port` on 127.0.0.1 (or any
/// address), from /proc/net/tcp (state 0A), without connecting to it.
fn wait_tcp_listening(port: u16, limit: Duration) {
    let wanted = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    let deadline = Instant::now() + limit;
    loop {
        let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let listening = table.lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 3 && f[3] == "0A" && wanted.iter().any(|w| w == f[1])
        });
        if listening {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on TCP port {port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
