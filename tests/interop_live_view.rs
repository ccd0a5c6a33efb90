//! The live operations view of the real `hotline` binary: `/metrics`
//! (every line valid Prometheus text; names, labels and values followed
//! through a call that waits in a queue and is answered by a SIPp agent),
//! `/api/v1/status`, `/api/v1/events`, and the wallboard in headless
//! Chromium showing a waiting caller, then none once the caller hangs up,
//! on the same page, from the engine's server-sent events.
//!
//! Ports (this file's own block, apart from the interop tests'): SIP
//! 15200-15219 (engine and SIPp), RTP 27000-27999, API 18200-18219.
//! SIPp keys are sent as SIP INFO and no capture is replayed, so no root
//! is needed. Needs `sipp` and `/usr/bin/chromium`; without them the tests
//! are skipped, or fail under `CI=true`. `INTEROP_KEEP=1` keeps each
//! test's folder; screenshots go to `CARGO_TARGET_TMPDIR`.

mod support;

#[path = "support/browser.rs"]
mod browser;
#[path = "support/chromium.rs"]
mod chromium;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// Test `i`'s ports: SIP 15200 + 5i for the engine, the next two for
/// SIPp 0 and 1 and the two after for their control ports; RTP 27000 +
/// 100i for the engine (50 ports) and 27050 + 100i for SIPp's media (20
/// ports); API 18200 + i.
fn ports(i: u16) -> Ports {
    assert!(i < 4);
    let sip = 15200 + 5 * i;
    let rtp = 27000 + 100 * i;
    Ports::block(
        100 + i,
        sip,
        (rtp, rtp + 49),
        PortBlock {
            sipp_sip: [sip + 1, sip + 2],
            sipp_control: [sip + 3, sip + 4],
            media: rtp + 50,
            api: 18200 + i,
        },
    )
}

// ---- HTTP -------------------------------------------------------------------

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn request(port: u16, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Reply {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn get(port: u16, path: &str) -> Reply {
    request(port, "GET", path)
}

fn status_json(port: u16) -> Value {
    let reply = get(port, "/api/v1/status");
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).expect("status JSON")
}

fn queue_json<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("no queue {name} in {status}"))
}

// ---- the Prometheus text format ---------------------------------------------

/// A scrape: every sample by its series (`name{k="v",...}`, labels
/// sorted), and each family's type.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series(name, labels);
        *self
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("no series {key} in the scrape"))
    }

    /// The sum over every series of `name`.
    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    }

    /// Label values of `label` over the series of `name` that have one.
    fn label_values(&self, name: &str, label: &str) -> BTreeSet<String> {
        let prefix = format!("{name}{{");
        let needle = format!("{label}=\"");
        self.samples
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split(&needle).nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => s.parse().ok(),
        _ => None,
    }
}

/// Parses a sample line's `{...}` label set; returns the labels and the
/// rest of the line. Values may hold `\\`, `\"` and `\n` escapes.
fn parse_labels(line: &str, at: &str) -> (Vec<(String, String)>, String) {
    let mut labels = Vec::new();
    let mut rest = at;
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after.to_string());
        }
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in: {line}"));
        assert!(is_label_name(name), "bad label name {name:?} in: {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in: {line}"),
            }
        };
        labels.push((name.to_string(), value));
        rest = &after[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else {
            assert!(rest.starts_with('}'), "expected , or }} in: {line}");
        }
    }
}

/// Checks every line against the text exposition format (0.0.4) and the
/// naming conventions, and returns the samples.
fn parse_exposition(text: &str) -> Scrape {
    assert!(
        text.ends_with('\n'),
        "the exposition must end with a newline"
    );
    let mut samples = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = BTreeSet::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            assert!(is_metric_name(name), "bad HELP name: {line}");
            assert!(helps.insert(name.to_string()), "second HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert!(is_metric_name(name), "bad TYPE name: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type: {line}"
            );
            assert!(
                !samples
                    .keys()
                    .any(|k: &String| k == name || k.starts_with(&format!("{name}{{"))),
                "TYPE after samples: {line}"
            );
            let before = types.insert(name.to_string(), kind.to_string());
            assert!(before.is_none(), "second TYPE: {line}");
            continue;
        }
        if line.starts_with('#') {
            continue; // a comment
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(is_metric_name(name), "bad metric name: {line}");
        assert!(types.contains_key(name), "sample before its TYPE: {line}");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(line, &line[name_end + 1..])
        } else {
            (Vec::new(), line[name_end..].to_string())
        };
        let fields: Vec<&str> = rest.trim_start_matches(' ').split(' ').collect();
        assert!(
            (1..=2).contains(&fields.len()),
            "expected a value and an optional timestamp: {line}"
        );
        let value = parse_value(fields[0]).unwrap_or_else(|| panic!("bad value: {line}"));
        if let Some(ts) = fields.get(1) {
            assert!(ts.parse::<i64>().is_ok(), "bad timestamp: {line}");
        }
        let label_refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let key = series(name, &label_refs);
        assert!(
            samples.insert(key, value).is_none(),
            "duplicate series: {line}"
        );
    }
    for (name, kind) in &types {
        assert!(name.starts_with("hotline_"), "{name}: no hotline_ prefix");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} ({kind}): counters and only counters end in _total"
        );
        if name.contains("second") {
            assert!(
                name.ends_with("_seconds") || name.ends_with("_seconds_total"),
                "{name}: the unit goes last"
            );
        }
    }
    Scrape { samples, types }
}

fn scrape(port: u16) -> Scrape {
    let reply = get(port, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        reply.headers
    );
    parse_exposition(&reply.body)
}

/// Scrapes until `done` holds, or panics after `limit`.
fn scrape_until(port: u16, limit: Duration, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + limit;
    loop {
        let s = scrape(port);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}: {s:#?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Every metric family /metrics exposes (docs/live-view.md lists each).
/// `hotline_trunk_channels`, `hotline_trunk_channels_max` and
/// `hotline_campaign_numbers` have series only with `[[trunks]]` and
/// campaigns, which this config has not (sim_outbound checks them).
const FAMILIES: &[(&str, &str)] = &[
    ("hotline_agents", "gauge"),
    ("hotline_agents_registered", "gauge"),
    ("hotline_callbacks_waiting", "gauge"),
    ("hotline_calls_answered_total", "counter"),
    ("hotline_calls_ended_total", "counter"),
    ("hotline_calls_in_progress", "gauge"),
    ("hotline_calls_invalid_total", "counter"),
    ("hotline_calls_offered_total", "counter"),
    ("hotline_queue_agents", "gauge"),
    ("hotline_queue_answered_wait_seconds_total", "counter"),
    ("hotline_queue_answered_within_threshold_total", "counter"),
    ("hotline_queue_calls_total", "counter"),
    ("hotline_queue_longest_wait_seconds", "gauge"),
    ("hotline_queue_offered_total", "counter"),
    ("hotline_queue_service_level_today_ratio", "gauge"),
    ("hotline_queue_short_abandons_total", "counter"),
    ("hotline_queue_waiting_calls", "gauge"),
    ("hotline_repeat_contacts_total", "counter"),
    ("hotline_rtp_errors_total", "counter"),
    ("hotline_rtp_packets_total", "counter"),
    ("hotline_service_level_target_ratio", "gauge"),
    ("hotline_service_level_threshold_seconds", "gauge"),
    ("hotline_sip_responses_total", "counter"),
    ("hotline_storage_failures_total", "counter"),
    ("hotline_tasks_at_risk", "gauge"),
    ("hotline_tasks_open", "gauge"),
    ("hotline_tasks_overdue", "gauge"),
];

const QUEUES: [&str; 3] = ["consultation", "repair", "complaint"];
const RESULTS: [&str; 9] = [
    "answered",
    "abandoned",
    "timeout",
    "overflow",
    "empty",
    "exit_key",
    "refused",
    "ended_before_bridge",
    "callback",
];

// ---- server-sent events -------------------------------------------------------

/// Reads server-sent events from /api/v1/events: each `status` event's
/// JSON, with when it arrived.
fn read_events(port: u16, count: usize, limit: Duration) -> Vec<(Instant, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(limit)).expect("timeout");
    stream
        // HTTP/1.0: no chunked encoding, the stream is the body as is.
        .write_all(
            b"GET /api/v1/events HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        )
        .expect("send");
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("headers");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(
        head.starts_with("http/1.0 200") || head.starts_with("http/1.1 200"),
        "{head}"
    );
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let mut events = Vec::new();
    let mut event = String::new();
    while events.len() < count {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("an event in time");
        assert!(n > 0, "the event stream ended");
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            assert_eq!(event, "status");
            let value: Value = serde_json::from_str(data).expect("event JSON");
            events.push((Instant::now(), value));
        }
    }
    events
}

// ---- SIPp ---------------------------------------------------------------------

/// Agent 1001 registers from SIPp instance 0 (logged in on register).
fn register_agent(engine: &Engine) {
    let args = ["-key", "agent", "1001", "-au", "1001", "-ap", "secret"];
    Sipp::spawn(engine, 0, "agent_register.xml", &args, 15).expect_success(engine);
}

/// SIPp instance 1 calls, presses `digit` (SIP INFO) 1 s after the
/// answer and hangs up `hold_ms` later.
fn caller(engine: &Engine, digit: &str, hold_ms: u64) -> Sipp {
    let d = hold_ms.to_string();
    Sipp::spawn(
        engine,
        1,
        "live_caller.xml",
        &["-key", "digit", digit, "-d", &d],
        40,
    )
}

// ---- the tests -----------------------------------------------------------------

/// A caller presses 2 (repair); agent 1001's SIPp phone rings 3 s, then
/// answers; the caller hangs up 9 s after the key. Times after the
/// INVITE: answer 0.5 s, key 1.5 s, queued about then, agent answers
/// about 3 s later, the English announcement of "007" (about 3.6 s) ends
/// with the bridge near 8 s, hang-up near 10.5 s. So the wait (about
/// 6.6 s) and arrival to bridge (about 8 s) are both within T = 15 s.
#[test]
fn metrics_and_status_follow_a_call_through_the_queue_to_an_agent() {
    if !require_tool("sipp") {
        return;
    }
    let ports = ports(0);
    let s = Settings {
        answer_after: "500ms",
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &s);
    let api = ports.api();

    // Before any call: every family, zeros, no service level yet.
    let idle = scrape(api);
    let families: Vec<(&str, &str)> = idle
        .types
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(families, FAMILIES);
    assert_eq!(idle.value("hotline_calls_in_progress", &[]), 0.0);
    assert_eq!(
        idle.value(
            "hotline_storage_failures_total",
            &[("kind", "record_write_retried")]
        ),
        0.0
    );
    assert_eq!(
        idle.value(
            "hotline_agents",
            &[("status", "logged_out"), ("state", "idle")]
        ),
        2.0
    );
    assert_eq!(
        idle.label_values("hotline_queue_waiting_calls", "queue"),
        QUEUES.iter().map(|q| q.to_string()).collect()
    );
    assert_eq!(
        idle.label_values("hotline_queue_calls_total", "result"),
        RESULTS.iter().map(|q| q.to_string()).collect()
    );
    assert!(idle
        .value(
            "hotline_queue_service_level_today_ratio",
            &[("queue", "repair"), ("measured_from", "arrival")]
        )
        .is_nan());
    assert_eq!(
        idle.value("hotline_service_level_threshold_seconds", &[]),
        15.0
    );
    assert_eq!(idle.value("hotline_service_level_target_ratio", &[]), 0.8);

    // Read-only views are open; agent commands still need the token.
    assert_eq!(
        request(api, "POST", "/api/v1/agents/1001/login").status,
        401
    );
    let page = get(api, "/wallboard");
    assert_eq!(page.status, 200);
    assert!(
        page.headers.contains("content-type: text/html"),
        "{}",
        page.headers
    );
    for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
        assert!(
            !page.body.contains(external),
            "the wallboard fetches {external}"
        );
    }
    assert!(page.body.contains("new EventSource(\"/api/v1/events\")"));

    // Server-sent events: one at once, the next within the 3 s heartbeat.
    let events = read_events(api, 2, Duration::from_secs(6));
    assert_eq!(events[0].1["queues"].as_array().map(Vec::len), Some(3));
    assert_eq!(events[0].1["calls"]["in_progress"], 0);
    let gap = events[1].0 - events[0].0;
    assert!(
        gap <= Duration::from_millis(3500),
        "second event after {gap:?}"
    );

    register_agent(&engine);
    scrape_until(api, Duration::from_secs(5), "agent 1001 available", |s| {
        s.value(
            "hotline_agents",
            &[("status", "available"), ("state", "idle")],
        ) == 1.0
            && s.value("hotline_agents_registered", &[]) == 1.0
    });
    let agent = Sipp::start(
        &engine,
        0,
        "live_agent_answer.xml",
        &["-key", "agent", "1001"],
        60,
        1,
    );
    agent.wait_listening(&engine, 0);
    let uac = caller(&engine, "2", 9000);

    // Queued, the agent's phone ringing.
    let waiting = scrape_until(api, Duration::from_secs(10), "a caller waiting", |s| {
        s.value("hotline_queue_waiting_calls", &[("queue", "repair")]) == 1.0
    });
    assert_eq!(waiting.value("hotline_calls_in_progress", &[]), 1.0);
    assert_eq!(
        waiting.value(
            "hotline_agents",
            &[("status", "available"), ("state", "offered")]
        ),
        1.0
    );
    assert_eq!(
        waiting.value(
            "hotline_queue_agents",
            &[
                ("queue", "repair"),
                ("status", "available"),
                ("state", "offered")
            ]
        ),
        1.0
    );
    assert_eq!(
        waiting.value("hotline_queue_offered_total", &[("queue", "repair")]),
        1.0
    );
    assert_eq!(
        waiting.sum("hotline_queue_calls_total"),
        0.0,
        "no result yet"
    );
    assert_eq!(waiting.sum("hotline_queue_waiting_calls"), 1.0);
    let first_wait = waiting.value("hotline_queue_longest_wait_seconds", &[("queue", "repair")]);
    assert!((0.0..3.0).contains(&first_wait), "{first_wait}");
    assert_eq!(waiting.value("hotline_calls_offered_total", &[]), 1.0);
    assert_eq!(waiting.value("hotline_calls_answered_total", &[]), 1.0);

    let status = status_json(api);
    let repair = queue_json(&status, "repair");
    assert_eq!(repair["waiting"], 1);
    assert_eq!(repair["callers"].as_array().map(Vec::len), Some(1));
    let calls = status["calls"]["list"].as_array().expect("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["state"], "queued");
    assert_eq!(calls[0]["queue"], "repair");
    assert_eq!(calls[0]["business_type"], "repair");
    assert!(calls[0].get("caller_number").is_none());
    assert_eq!(status["agents"][0]["id"], "1001");
    assert_eq!(status["agents"][0]["state"], "offered");

    // The wait grows with the clock (the phone rings 3 s).
    thread::sleep(Duration::from_millis(1500));
    let later = scrape(api);
    assert_eq!(
        later.value("hotline_queue_waiting_calls", &[("queue", "repair")]),
        1.0
    );
    let second_wait = later.value("hotline_queue_longest_wait_seconds", &[("queue", "repair")]);
    assert!(
        second_wait - first_wait >= 1.49,
        "the longest wait went from {first_wait} s to {second_wait} s in 1.5 s"
    );

    uac.expect_success(&engine);
    agent.expect_success(&engine);
    let done = scrape_until(
        api,
        Duration::from_secs(5),
        "the call over, RTP counted",
        |s| {
            s.value("hotline_calls_in_progress", &[]) == 0.0
                && s.value("hotline_rtp_packets_total", &[("direction", "sent")]) > 0.0
        },
    );
    let repair = [("queue", "repair")];
    assert_eq!(done.value("hotline_queue_waiting_calls", &repair), 0.0);
    assert_eq!(
        done.value("hotline_queue_longest_wait_seconds", &repair),
        0.0
    );
    assert_eq!(done.value("hotline_queue_offered_total", &repair), 1.0);
    assert_eq!(done.sum("hotline_queue_offered_total"), 1.0);
    assert_eq!(
        done.value(
            "hotline_queue_calls_total",
            &[("queue", "repair"), ("result", "answered")]
        ),
        1.0
    );
    assert_eq!(done.sum("hotline_queue_calls_total"), 1.0);
    for from in ["arrival", "queue_entry"] {
        let labels = [("queue", "repair"), ("measured_from", from)];
        assert_eq!(
            done.value("hotline_queue_answered_within_threshold_total", &labels),
            1.0,
            "{from}"
        );
        assert_eq!(
            done.value("hotline_queue_service_level_today_ratio", &labels),
            1.0,
            "{from}"
        );
        let other = [("queue", "complaint"), ("measured_from", from)];
        assert!(done
            .value("hotline_queue_service_level_today_ratio", &other)
            .is_nan());
    }
    let waited = done.value("hotline_queue_answered_wait_seconds_total", &repair);
    assert!((3.0..15.0).contains(&waited), "waited {waited} s");
    assert_eq!(done.value("hotline_calls_offered_total", &[]), 1.0);
    assert_eq!(done.value("hotline_calls_answered_total", &[]), 1.0);
    assert_eq!(done.value("hotline_calls_invalid_total", &[]), 0.0);
    assert_eq!(
        done.value("hotline_calls_ended_total", &[("outcome", "caller_hangup")]),
        1.0
    );
    assert_eq!(done.sum("hotline_calls_ended_total"), 1.0);
    // The agent wraps up (30 s in the demo config).
    assert_eq!(
        done.value(
            "hotline_agents",
            &[("status", "available"), ("state", "wrap_up")]
        ),
        1.0
    );
    // REGISTER: 401 then 200; the INVITE: 100, 180, 200; INFO and BYE: 200.
    let codes = done.label_values("hotline_sip_responses_total", "code");
    assert_eq!(
        codes,
        ["100", "180", "200", "401"]
            .iter()
            .map(|c| c.to_string())
            .collect()
    );
    for (code, at_least) in [("100", 1.0), ("180", 1.0), ("200", 4.0), ("401", 1.0)] {
        let n = done.value("hotline_sip_responses_total", &[("code", code)]);
        assert!(n >= at_least, "{n} responses {code}");
    }

    let status = status_json(api);
    let repair_json = queue_json(&status, "repair");
    assert_eq!(repair_json["waiting"], 0);
    assert_eq!(repair_json["today"]["results"]["answered"], 1);
    assert_eq!(repair_json["today"]["service_level_from_arrival"], 1.0);
    assert_eq!(status["calls"]["in_progress"], 0);
    assert_eq!(status["calls"]["list"], json!([]));
    assert!(status["rtp"]["packets_sent"]
        .as_u64()
        .is_some_and(|n| n > 0));

    let records = engine.stop_and_read_records();
    let record = single(&records);
    assert_eq!(str_field(record, "queue_result"), "answered");
    // The metric's wait is the record's wait_ms, in seconds.
    assert_eq!(
        (waited * 1000.0).round() as u64,
        u64_field(record, "wait_ms")
    );
}

/// A caller presses 1 (consultation, which takes callers with no agent
/// logged in for this test) and hangs up 12 s later. The wallboard,
/// opened while the caller waits, shows 1 waiting with a ticking wait,
/// then, on the same page (no reload), 0 waiting and 1 abandoned, with
/// the service level 0/1 in red.
#[test]
fn the_wallboard_shows_a_waiting_caller_then_none_after_the_hang_up() {
    if !require_tool("sipp") || !browser::require_chromium() {
        return;
    }
    let ports = ports(1);
    let s = Settings {
        answer_after: "500ms",
        overrides: vec![("[[queues]]", "join_empty", "true".to_string())],
        ..Settings::default()
    };
    let engine = Engine::start(ports, &s);
    let api = ports.api();
    let uac = caller(&engine, "1", 12_000);
    scrape_until(api, Duration::from_secs(10), "a caller waiting", |s| {
        s.value("hotline_queue_waiting_calls", &[("queue", "consultation")]) == 1.0
    });

    let url = format!("http://127.0.0.1:{api}/wallboard");
    let mut page = browser::Browser::open(&url, 1600, 900);
    let tile = |field: &str| {
        format!(
            "(document.querySelector('.tile[data-queue=\"consultation\"] [data-field=\"{field}\"]') || {{}}).textContent"
        )
    };
    page.wait_for(&tile("waiting"), &json!("1"), Duration::from_secs(10));
    // Marks this page: it must still be there at the end (no reload).
    page.eval("window.__sameView = 42");
    assert_eq!(
        page.eval("document.querySelectorAll('.tile').length"),
        json!(3)
    );
    assert_eq!(
        page.eval(&tile("service-level")),
        json!("–"),
        "no result yet"
    );
    assert_eq!(page.eval(&tile("available")), json!("0"));
    assert_eq!(
        page.eval("document.getElementById('in-progress').textContent"),
        json!("1")
    );

    // The longest wait ticks ("m:ss").
    let seconds = |text: &Value| -> u64 {
        let text = text.as_str().expect("text");
        let (m, s) = text.split_once(':').expect("m:ss");
        m.parse::<u64>().expect("minutes") * 60 + s.parse::<u64>().expect("seconds")
    };
    let first = page.eval(&tile("longest-wait"));
    thread::sleep(Duration::from_millis(2200));
    let second = page.eval(&tile("longest-wait"));
    assert!(
        seconds(&second) >= seconds(&first) + 2,
        "the wait went from {first} to {second} in 2.2 s"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let waiting_png = shots.join("wallboard-waiting.png");
    page.screenshot(&waiting_png);
    eprintln!("screenshot: {}", waiting_png.display());

    // The caller hangs up (12 s after the key): the page follows.
    uac.expect_success(&engine);
    page.wait_for(&tile("waiting"), &json!("0"), Duration::from_secs(5));
    assert_eq!(page.eval(&tile("abandoned")), json!("1"));
    assert_eq!(page.eval(&tile("offered")), json!("1"));
    assert_eq!(page.eval(&tile("longest-wait")), json!("0:00"));
    // 0 answered in time / 1 result.
    assert_eq!(page.eval(&tile("service-level")), json!("0.0%"));
    assert_eq!(
        page.eval("document.querySelector('.tile[data-queue=\"consultation\"]').classList.contains('sl-bad')"),
        json!(true)
    );
    page.wait_for(
        "document.getElementById('in-progress').textContent",
        &json!("0"),
        Duration::from_secs(5),
    );
    assert_eq!(
        page.eval("window.__sameView"),
        json!(42),
        "the page was reloaded"
    );
    // The same in /metrics: one abandon, 0 in time / 1 result.
    let done = scrape(api);
    let consultation = [("queue", "consultation")];
    assert_eq!(
        done.value("hotline_queue_waiting_calls", &consultation),
        0.0
    );
    assert_eq!(
        done.value(
            "hotline_queue_calls_total",
            &[("queue", "consultation"), ("result", "abandoned")]
        ),
        1.0
    );
    assert_eq!(done.sum("hotline_queue_calls_total"), 1.0);
    assert_eq!(
        done.value(
            "hotline_queue_service_level_today_ratio",
            &[("queue", "consultation"), ("measured_from", "arrival")]
        ),
        0.0
    );
    let after_png = shots.join("wallboard-after.png");
    page.screenshot(&after_png);
    eprintln!("screenshot: {}", after_png.display());
}
