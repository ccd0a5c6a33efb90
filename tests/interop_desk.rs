//! The agent's desk in headless Chromium against the real binary, with
//! SIPp peers on loopback: agent 1001 signs in, goes available, a SIPp
//! caller presses 2 and agent 1001's SIPp phone answers; the desk shows
//! the caller's number and the repair business type; the agent saves a
//! summary and makes a repair order; its follow-up appears in the task
//! list; "call back" rings the agent's phone with it and the SIPp trunk
//! receives the INVITE to the customer's number. A wrong password, a
//! missing CSRF token and an agent opening the supervisor's page are
//! refused. Ports: `Ports::new(30)` (the interop_acd range; tests/README.md).
//!
//! With `DESK_SCREENSHOTS=<folder>` the desk (during the call) and the
//! supervisor's page are saved there as PNGs (docs/images has the ones
//! docs/desk.md shows).
//!
//! Needs `sipp` with its sample captures, root (raw sockets for the key
//! capture) and `chromium`; without them the test is skipped, or fails
//! under `CI=true`.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/chromium.rs"]
mod chromium;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::{require_chromium, Browser};
use hotline::media::g711::Codec;
use serde_json::{json, Value};
use support::*;

const AGENT: u16 = 0;
const TRUNK: u16 = 1;
const CALLER: u16 = 2;

/// `fetch` from the page: (status, JSON body or null).
fn fetch(
    page: &mut Browser,
    method: &str,
    path: &str,
    body: Option<Value>,
    csrf: Option<&str>,
) -> (u64, Value) {
    let mut headers = json!({ "Content-Type": "application/json", "Accept": "application/json" });
    if let Some(token) = csrf {
        headers["X-CSRF-Token"] = json!(token);
    }
    let init = json!({
        "method": method,
        "headers": headers,
        "credentials": "same-origin",
        "body": body.map(|b| b.to_string()),
    });
    let out = page.eval_async(&format!(
        "fetch({path:?}, {init}).then(async r => {{ let t = await r.text(); let j = null; try {{ j = JSON.parse(t) }} catch (e) {{}} return [r.status, j]; }})"
    ));
    (out[0].as_u64().unwrap_or(0), out[1].clone())
}

fn text_of(page: &mut Browser, id: &str) -> Value {
    page.eval(&format!("document.getElementById({id:?}).textContent"))
}

fn click(page: &mut Browser, selector: &str) {
    page.eval(&format!("document.querySelector({selector:?}).click()"));
}

fn screenshot(page: &mut Browser, name: &str) {
    if let Some(dir) = std::env::var_os("DESK_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        page.screenshot(&dir.join(name));
    }
}

#[test]
fn an_agent_works_a_repair_call_from_the_desk_and_calls_the_customer_back() {
    if !require_tool("sipp") || !require_root() || !require_chromium() {
        return;
    }
    let Some(two) = sample_pcap("dtmf_2833_2.pcap") else {
        return;
    };
    let ports = Ports::new(30);
    let q = |v: &str| format!("{v:?}");
    let settings = Settings {
        answer_after: "500ms",
        overrides: vec![
            ("[[queues]]", "wrap_up", q("2s")),
            ("[[queues]]", "recording_notice", "false".into()),
        ],
        ..Settings::default()
    };
    let config = config_toml(&ports, &settings);
    let config = with_trunk(config, ports.sipp(TRUNK).sip);
    let mut engine = Engine::start_config(ports, &config, &[]);
    let register = ["-key", "agent", "1001", "-au", "1001", "-ap", "secret"];
    Sipp::spawn(&engine, AGENT, "agent_register.xml", &register, 15).expect_success(&engine);

    let base = format!("http://127.0.0.1:{}", engine.api_port());
    let mut page = Browser::open(&format!("{base}/login"), 1366, 768);
    // A wrong password is refused; the right one signs in.
    let (status, _) = fetch(
        &mut page,
        "POST",
        "/login",
        Some(json!({"user": "1001", "password": "wrong"})),
        None,
    );
    assert_eq!(status, 401);
    let (status, signed) = fetch(
        &mut page,
        "POST",
        "/login",
        Some(json!({"user": "1001", "password": "secret"})),
        None,
    );
    assert_eq!(status, 200, "{signed}");
    let csrf = signed["csrf"].as_str().expect("a CSRF token").to_string();
    // A change without the CSRF token is refused, and the agent may not
    // open the supervisor's page.
    let (status, _) = fetch(
        &mut page,
        "POST",
        "/api/v1/agents/1001/break",
        Some(json!({})),
        None,
    );
    assert_eq!(status, 403, "no CSRF token");
    let (status, _) = fetch(&mut page, "GET", "/supervisor", None, None);
    assert_eq!(status, 403, "an agent on the supervisor's page");
    let (status, _) = fetch(
        &mut page,
        "POST",
        "/api/v1/agents/1001/break",
        Some(json!({"reason": "rest"})),
        Some(&csrf),
    );
    assert_eq!(status, 200);

    page.navigate(&format!("{base}/desk"));
    let status_of = "document.getElementById('agent-status').dataset.status";
    page.wait_for(status_of, &json!("on_break"), Duration::from_secs(10));
    click(&mut page, "#btn-available");
    page.wait_for(status_of, &json!("available"), Duration::from_secs(10));

    // A caller presses 2 (repair); the agent's phone answers.
    let voice = engine.path().join("agent.pcap");
    write_rtp_pcap(&voice, &tone(400.0, 1000), Codec::Pcma);
    let voice = voice.to_string_lossy().into_owned();
    let phone = Sipp::start(
        &engine,
        AGENT,
        "agent_answer.xml",
        &["-key", "agent", "1001", "-key", "pcap", &voice],
        60,
        1,
    );
    phone.wait_listening(&engine, AGENT);
    let caller_voice = engine.path().join("caller.pcap");
    write_rtp_pcap(&caller_voice, &tone(1000.0, 1000), Codec::Pcmu);
    let caller_voice = caller_voice.to_string_lossy().into_owned();
    let caller = Sipp::spawn(
        &engine,
        CALLER,
        "uac_queue.xml",
        &[
            "-key",
            "dtmf",
            &two,
            "-key",
            "pcap",
            &caller_voice,
            "-d",
            "20000",
        ],
        60,
    );
    page.wait_for(
        "document.getElementById('call-number').textContent",
        &json!("13800138000"),
        Duration::from_secs(15),
    );
    assert_eq!(text_of(&mut page, "call-business"), json!("repair"));
    // A first call from this number: no repeat-caller tag shown.
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('call-repeat')).display"),
        json!("none")
    );
    page.wait_for(
        "document.getElementById('call-state').textContent",
        &json!("通话中"),
        Duration::from_secs(10),
    );
    screenshot(&mut page, "desk.png");

    // The agent holds the call and takes it back, from the desk.
    let call_id = page.eval("desk.call.call_id");
    let call_id = call_id.as_str().expect("the call's id").to_string();
    // (Once bridged: the caller hears the agent's number first.)
    let mut held = (0, Value::Null);
    for _ in 0..40 {
        held = fetch(
            &mut page,
            "POST",
            &format!("/api/v1/calls/{call_id}/hold"),
            Some(json!({})),
            Some(&csrf),
        );
        if held.0 != 409 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(held.0, 200, "{}", held.1);
    page.wait_for(
        "document.getElementById('call-state').textContent",
        &json!("保持中"),
        Duration::from_secs(5),
    );
    let (status, body) = fetch(
        &mut page,
        "POST",
        &format!("/api/v1/calls/{call_id}/resume"),
        Some(json!({})),
        Some(&csrf),
    );
    assert_eq!(status, 200, "{body}");

    // Notes, then a repair order.
    page.eval("document.getElementById('notes-business').value = 'repair'");
    page.eval("document.getElementById('notes-summary').value = '燃气表漏气，已派维修'");
    click(&mut page, "#btn-save");
    page.wait_for(
        "document.getElementById('message').textContent",
        &json!("已保存"),
        Duration::from_secs(5),
    );
    page.eval("document.getElementById('order-kind').value = 'repair'");
    page.eval("document.getElementById('order-note').value = '更换燃气表'");
    click(&mut page, "#btn-order");
    page.wait_for(
        "document.getElementById('message').textContent",
        &json!("工单已生成"),
        Duration::from_secs(5),
    );
    page.wait_for(
        "[...document.querySelectorAll('#tasks tr')].some(r => r.textContent.includes('13800138000') && r.textContent.includes('回访'))",
        &json!(true),
        Duration::from_secs(5),
    );
    let task = page
        .eval("[...document.querySelectorAll('#tasks tr')].find(r => r.textContent.includes('回访')).dataset.task")
        .as_str()
        .and_then(|t| t.parse::<u64>().ok())
        .expect("the follow-up's row");
    // A break, so the follow-up waits for the agent's "call back".
    click(&mut page, "#btn-break");
    page.wait_for(status_of, &json!("on_break"), Duration::from_secs(5));
    caller.expect_success(&engine);
    phone.expect_success(&engine);

    // "Call back": the phone rings with the follow-up, then the trunk
    // gets the INVITE to the customer's number.
    let trunk = Sipp::start(&engine, TRUNK, "trunk_callback.xml", &["-d", "2000"], 60, 1);
    trunk.wait_listening(&engine, TRUNK);
    let phone = Sipp::start(
        &engine,
        AGENT,
        "agent_follow_up.xml",
        &["-key", "agent", "1001"],
        60,
        1,
    );
    phone.wait_listening(&engine, AGENT);
    click(&mut page, "#btn-available");
    page.wait_for(status_of, &json!("available"), Duration::from_secs(5));
    let (status, body) = fetch(
        &mut page,
        "POST",
        &format!("/api/v1/desk/tasks/{task}/call-back"),
        Some(json!({})),
        Some(&csrf),
    );
    // The task may already be ringing (the agent was free): both mean the
    // phone rings with it.
    assert!(status == 200 || status == 409, "{status} {body}");
    let phone = phone.expect_success(&engine);
    assert!(phone.logs().contains("kind=follow_up"), "{}", phone.logs());
    trunk.expect_success(&engine);

    // The supervisor's page, for the supervisor.
    let mut sup = Browser::open(&format!("{base}/login"), 1366, 768);
    let (status, _) = fetch(
        &mut sup,
        "POST",
        "/login",
        Some(json!({"user": "sup", "password": "supervisor"})),
        None,
    );
    assert_eq!(status, 200);
    sup.navigate(&format!("{base}/supervisor"));
    sup.wait_for(
        "document.querySelectorAll('#agents tr').length",
        &json!(2),
        Duration::from_secs(10),
    );
    screenshot(&mut sup, "supervisor.png");

    let records = engine.stop_and_read_records();
    let call = records
        .iter()
        .find(|r| r["queue"] == "repair" && r["direction"].is_null())
        .unwrap_or_else(|| panic!("the caller's record: {records:#?}"));
    assert_eq!(str_field(call, "summary"), "燃气表漏气，已派维修");
    assert_eq!(str_field(call, "agent_business_type"), "repair");
    let back = records
        .iter()
        .find(|r| r["task"].as_u64() == Some(task))
        .unwrap_or_else(|| panic!("the follow-up's record: {records:#?}"));
    assert_eq!(str_field(back, "task_kind"), "follow_up");
    assert_eq!(str_field(back, "origin_call"), str_field(call, "call_id"));
    assert_eq!(str_field(back, "attempt_result"), "answered");
}
