//! The agent's desk in headless Chromium against the real binary, with
//! SIPp peers on loopback: agent 1001 signs in, goes available, a SIPp
//! caller presses 2 and agent 1001's SIPp phone answers; the desk shows
//! the caller's number and the repair business type; the agent saves a
//! summary and makes a repair order with its fields (customer, address,
//! fault), which come back in the task list and in `GET /api/v1/tasks`;
//! the agent edits the order while the supervisor edits the same version
//! of it: the desk's save is refused (409), takes the supervisor's note,
//! and saves the agent's address on top, so neither edit is lost; "call
//! back" rings the agent's phone with the follow-up and the SIPp trunk
//! receives the INVITE to the customer's number; the supervisor opens the
//! day's report, which counts the call. A wrong password, a missing CSRF
//! token, an agent opening the supervisor's page or report, and a bad
//! report date are refused. Ports: `Ports::new(30)` (the interop_acd
//! range; tests/README.md).
//!
//! A second test (no SIPp; `Ports::new(31)`): the agent adds an answer
//! from the desk's knowledge-base panel and finds it by a Chinese word.
//!
//! With `DESK_SCREENSHOTS=<folder>` the desk (during the call, editing
//! the order), the supervisor's page and the day's report are saved there
//! as PNGs (docs/images has the ones docs/desk.md shows).
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
    // An order without its address, or with a line break in the name,
    // is refused naming the field.
    let orders = format!("/api/v1/desk/calls/{call_id}/orders");
    for (order, field) in [
        (
            json!({"kind": "repair", "customer_name": "王建国", "fault": "leak"}),
            "address",
        ),
        (
            json!({"kind": "repair", "customer_name": "王建国\r\nX-Evil: 1",
                   "address": "x", "fault": "leak"}),
            "customer_name",
        ),
        (
            json!({"kind": "complaint", "customer_name": "王建国", "fault": "leak"}),
            "fault",
        ),
    ] {
        let (status, body) = fetch(&mut page, "POST", &orders, Some(order), Some(&csrf));
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    // The form: a repair notice with its fields.
    page.eval("document.getElementById('order-kind').value = 'repair'");
    page.eval("document.getElementById('order-kind').dispatchEvent(new Event('change'))");
    assert_eq!(
        page.eval("document.getElementById('order-fault').hidden"),
        json!(false)
    );
    assert_eq!(
        page.eval("document.getElementById('order-subject').hidden"),
        json!(true),
        "a repair has no complaint subject"
    );
    for (id, value) in [
        ("order-customer", "王建国"),
        ("order-address", "朝阳区建国路 88 号 3 单元 501"),
        ("order-fault", "leak"),
        ("order-fault-detail", "燃气表接口漏气"),
        ("order-note", "更换燃气表"),
    ] {
        page.eval(&format!(
            "document.getElementById({id:?}).value = {value:?}"
        ));
    }
    click(&mut page, "#btn-order");
    page.wait_for(
        "document.getElementById('message').textContent",
        &json!("工单已生成"),
        Duration::from_secs(5),
    );
    let row = "[...document.querySelectorAll('#tasks tr')].find(r => r.textContent.includes('13800138000') && r.textContent.includes('回访'))";
    page.wait_for(&format!("!!{row}"), &json!(true), Duration::from_secs(5));
    let task = page
        .eval(&format!("{row}.dataset.task"))
        .as_str()
        .and_then(|t| t.parse::<u64>().ok())
        .expect("the follow-up's row");
    // The row shows the order: who, the fault, where.
    let shown = page.eval(&format!("{row}.querySelector('.order-cell').textContent"));
    let shown = shown.as_str().unwrap_or("");
    for part in [
        "王建国",
        "泄漏",
        "燃气表接口漏气",
        "朝阳区建国路 88 号 3 单元 501",
    ] {
        assert!(shown.contains(part), "{part:?} not in the row: {shown:?}");
    }
    // And the API has them as sent.
    let (status, stored) = fetch(
        &mut page,
        "GET",
        &format!("/api/v1/tasks/{task}"),
        None,
        None,
    );
    assert_eq!(status, 200, "{stored}");
    assert_eq!(
        stored["order"],
        json!({"kind": "repair", "customer_name": "王建国",
               "address": "朝阳区建国路 88 号 3 单元 501", "fault": "leak",
               "fault_detail": "燃气表接口漏气", "subject": null})
    );
    assert_eq!(stored["owner"], "1001");
    let opened = stored["version"].as_u64().expect("a version");

    // The agent opens the order to edit it...
    click(&mut page, &format!("tr[data-task='{task}'] .btn-edit-task"));
    page.wait_for(
        "document.getElementById('task-edit').hidden",
        &json!(false),
        Duration::from_secs(5),
    );
    assert_eq!(
        text_of(&mut page, "te-version"),
        json!(format!("版本 {opened}"))
    );
    assert_eq!(
        page.eval("document.getElementById('te-address').value"),
        json!("朝阳区建国路 88 号 3 单元 501")
    );
    screenshot(&mut page, "desk.png");
    // ... while the supervisor saves a note on the same version.
    let mut sup = Browser::open(&format!("{base}/login"), 1366, 768);
    let (status, signed_sup) = fetch(
        &mut sup,
        "POST",
        "/login",
        Some(json!({"user": "sup", "password": "supervisor"})),
        None,
    );
    assert_eq!(status, 200);
    let sup_csrf = signed_sup["csrf"]
        .as_str()
        .expect("a CSRF token")
        .to_string();
    let (status, body) = fetch(
        &mut sup,
        "PATCH",
        &format!("/api/v1/tasks/{task}"),
        Some(json!({"version": opened, "note": "客户要求上午十点后上门"})),
        Some(&sup_csrf),
    );
    assert_eq!(status, 200, "{body}");
    // The agent's save: refused (the version moved on); the note the
    // agent had not touched now shows the supervisor's, the address the
    // agent typed stays; saving again keeps both.
    page.eval("document.getElementById('te-address').value = '朝阳区建国路 90 号'");
    click(&mut page, "#te-save");
    page.wait_for(
        "document.getElementById('te-conflict').hidden",
        &json!(false),
        Duration::from_secs(5),
    );
    assert_eq!(
        page.eval("document.getElementById('te-note').value"),
        json!("客户要求上午十点后上门")
    );
    assert_eq!(
        page.eval("document.getElementById('te-address').value"),
        json!("朝阳区建国路 90 号")
    );
    screenshot(&mut page, "desk-conflict.png");
    click(&mut page, "#te-save");
    page.wait_for(
        "document.getElementById('task-edit').hidden",
        &json!(true),
        Duration::from_secs(5),
    );
    let (_, edited) = fetch(
        &mut page,
        "GET",
        &format!("/api/v1/tasks/{task}"),
        None,
        None,
    );
    assert_eq!(edited["note"], "客户要求上午十点后上门", "{edited}");
    assert_eq!(edited["order"]["address"], "朝阳区建国路 90 号", "{edited}");
    assert_eq!(edited["order"]["fault_detail"], "燃气表接口漏气");
    assert_eq!(edited["version"], opened + 2);
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

    // The supervisor's page, for the supervisor, with the day's report.
    sup.navigate(&format!("{base}/supervisor"));
    sup.wait_for(
        "document.querySelectorAll('#agents tr').length",
        &json!(2),
        Duration::from_secs(10),
    );
    assert_eq!(
        sup.eval("document.getElementById('report-today').getAttribute('href')"),
        json!("/supervisor/report")
    );
    screenshot(&mut sup, "supervisor.png");
    // Not for agents; a bad date is named.
    let (status, _) = fetch(&mut page, "GET", "/supervisor/report", None, None);
    assert_eq!(status, 403, "an agent asks for the report");
    let (status, body) = fetch(
        &mut sup,
        "GET",
        "/supervisor/report?date=2026-02-30",
        None,
        None,
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("date")),
        "{body}"
    );
    // Today's: the call that was just made, by the hour.
    let offered = "[...document.querySelectorAll('.card')].find(c => c.textContent.includes('Offered calls')).querySelector('.v').textContent";
    let mut counted = Value::Null;
    for _ in 0..20 {
        sup.navigate(&format!("{base}/supervisor/report"));
        sup.wait_for(
            "document.querySelectorAll('.card').length > 0",
            &json!(true),
            Duration::from_secs(10),
        );
        counted = sup.eval(offered);
        if counted == json!("1") {
            break;
        }
        // The record is written as the call ends; give it a moment.
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(counted, json!("1"), "the day's report counts the call");
    screenshot(&mut sup, "supervisor-report.png");
    // Another day's: nothing then.
    sup.navigate(&format!("{base}/supervisor/report?date=2020-01-01"));
    sup.wait_for(
        "document.querySelectorAll('.card').length > 0",
        &json!(true),
        Duration::from_secs(10),
    );
    assert_eq!(sup.eval(offered), json!("0"));

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

#[test]
fn an_agent_adds_an_answer_from_the_desk_and_finds_it_by_a_chinese_word() {
    if !require_chromium() {
        return;
    }
    let ports = Ports::new(31);
    let config = config_toml(&ports, &Settings::default());
    let engine = Engine::start_config(ports, &config, &[]);
    let base = format!("http://127.0.0.1:{}", engine.api_port());
    let mut page = Browser::open(&format!("{base}/login"), 1366, 768);
    let (status, signed) = fetch(
        &mut page,
        "POST",
        "/login",
        Some(json!({"user": "1002", "password": "secret"})),
        None,
    );
    assert_eq!(status, 200, "{signed}");
    page.navigate(&format!("{base}/desk"));
    page.wait_for(
        "!!document.getElementById('agent-status').dataset.status",
        &json!(true),
        Duration::from_secs(10),
    );

    // Nothing yet: the panel says so.
    page.eval("document.getElementById('kb-q').value = '插卡'");
    click(&mut page, "#kb-search");
    page.wait_for(
        "document.getElementById('kb-results').textContent.includes('没有找到')",
        &json!(true),
        Duration::from_secs(5),
    );
    // The agent adds the answer from the panel (the question starts as
    // what they searched for).
    click(&mut page, "#kb-new");
    page.wait_for(
        "document.getElementById('kb-form').hidden",
        &json!(false),
        Duration::from_secs(5),
    );
    assert_eq!(
        page.eval("document.getElementById('kb-question').value"),
        json!("插卡")
    );
    for (id, value) in [
        ("kb-title", "燃气表更换后读数不走"),
        (
            "kb-question",
            "换了新表以后，表上的数字一直不动，是坏了吗？",
        ),
        (
            "kb-answer",
            "新表需要先插卡激活。\n请用户持燃气卡在表上插一次，听到提示音后即可用气。",
        ),
        ("kb-tags", "燃气，抄表"),
        ("kb-business", "repair"),
    ] {
        page.eval(&format!(
            "document.getElementById({id:?}).value = {value:?}"
        ));
    }
    click(&mut page, "#kb-save");
    page.wait_for(
        "document.getElementById('message').textContent.startsWith('答案已加入知识库')",
        &json!(true),
        Duration::from_secs(5),
    );
    assert_eq!(
        page.eval("document.getElementById('kb-form').hidden"),
        json!(true)
    );

    // Found by a Chinese word of its answer, in a search of its own.
    page.eval("document.getElementById('kb-q').value = '激活'");
    click(&mut page, "#kb-search");
    page.wait_for(
        "document.querySelectorAll('#kb-results .kb-item').length",
        &json!(1),
        Duration::from_secs(5),
    );
    assert_eq!(
        page.eval("document.querySelector('#kb-results .kb-title').textContent"),
        json!("燃气表更换后读数不走")
    );
    let answer = page.eval("document.querySelector('#kb-results .kb-text').textContent");
    assert!(
        answer
            .as_str()
            .is_some_and(|a| a.starts_with("新表需要先插卡激活。\n")),
        "the answer, line break kept: {answer}"
    );
    let meta = page.eval("document.querySelector('#kb-results .kb-meta').textContent");
    assert!(
        meta.as_str().is_some_and(|m| m.contains("1002")),
        "written by the agent signed in: {meta}"
    );
    screenshot(&mut page, "desk-kb.png");
    // A word it does not hold finds nothing.
    page.eval("document.getElementById('kb-q').value = '保险丝'");
    click(&mut page, "#kb-search");
    page.wait_for(
        "document.querySelectorAll('#kb-results .kb-item').length",
        &json!(0),
        Duration::from_secs(5),
    );
}
