//! Tasks through the HTTP API against the real binary (docs/tasks-api.md):
//! created (201 only once stored), refused field by field, listed,
//! shown, with a work order's fields; edited by two people who opened
//! the same version at once (one saved, the other 409 with the task as
//! it now is, then saved on it: neither edit lost), by the owning agent
//! but not another, audited; an outcome refused before the customer was
//! reached, cancelled, and all of it still there after a restart on the
//! same store.
//!
//! The config has one trunk (a task's queue must have one to dial
//! through) on a loopback port where nothing listens, no agent logs in
//! and every deadline is years away: nothing is ever dialled.
//!
//! Ports (tests/README.md): engine SIP 15420, the trunk's address 15421
//! (nothing there), API 18700, RTP 22600-22619.

#[path = "support/engine.rs"]
mod engine;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use engine::{base_config, set_key, EnginePorts, Hotline};
use serde_json::{json, Value};

const TOKEN: &str = "demo-token";

const PORTS: EnginePorts = EnginePorts {
    sip: 15420,
    api: 18700,
    rtp: (22600, 22619),
};

/// Where the trunk is: loopback, nothing listening.
const TRUNK: &str = "127.0.0.1:15421";

/// Far in the future, in the API's offset (+08:00 in the default config).
const DUE: &str = "2036-12-07T09:00:00+08:00";

fn config() -> String {
    let mut text = base_config(PORTS);
    text = set_key(&text, "[calls]", "drain_timeout", "\"2s\"");
    text.push_str(&format!(
        "\n[[trunks]]\nname = \"pstn\"\naddress = \"{TRUNK}\"\ntransport = \"udp\"\n\
         caller_id = \"4008001234\"\nmax_channels = 2\nmax_calls_per_second = 1\n"
    ));
    text
}

// ---- the HTTP API -----------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", PORTS.api)
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut r = r.expect("API request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("API body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(path: &str, body: Value) -> (u16, Value) {
    reply(
        agent()
            .post(&url(path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(body),
    )
}

fn post_empty(path: &str) -> (u16, Value) {
    reply(
        agent()
            .post(&url(path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_empty(),
    )
}

fn get(path: &str) -> (u16, Value) {
    reply(
        agent()
            .get(&url(path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    )
}

fn patch(path: &str, body: Value) -> (u16, Value) {
    reply(
        agent()
            .patch(&url(path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(body),
    )
}

/// A signed-in person: the session cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn signed_in(user: &str, password: &str) -> Session {
    let mut r = agent()
        .post(&url("/login"))
        .send_json(json!({ "user": user, "password": password }))
        .expect("sign in");
    assert_eq!(r.status().as_u16(), 200, "{user} signs in");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .to_string();
    let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
    Session {
        cookie,
        csrf: body["csrf"].as_str().unwrap_or("").to_string(),
    }
}

/// PATCH with a session's cookie (and its CSRF token when `csrf`).
fn patch_as(s: &Session, path: &str, csrf: bool, body: Value) -> (u16, Value) {
    let mut req = agent().patch(&url(path)).header("Cookie", &s.cookie);
    if csrf {
        req = req.header("X-CSRF-Token", &s.csrf);
    }
    reply(req.send_json(body))
}

/// Every line of the audit files in `dir`.
fn audit_lines(dir: &std::path::Path) -> Vec<Value> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("records folder").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("audit-") && name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(entry.path()).expect("audit file");
            lines.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    lines
}

fn repair_order() -> Value {
    json!({"customer_name": "王建国", "address": "朝阳区建国路 88 号 3 单元 501",
           "fault": "leak", "fault_detail": "燃气表接口漏气"})
}

fn follow_up(number: &str) -> Value {
    json!({"kind": "follow_up", "number": number, "queue": "repair", "due": DUE,
           "note": "燃气表已更换，回访是否满意"})
}

/// Creates a task; returns it as answered.
fn create(hotline: &Hotline, spec: Value) -> Value {
    let (status, body) = post("/api/v1/tasks", spec);
    assert_eq!(status, 201, "create: {body}\n{}", hotline.log_tail());
    assert!(body["id"].as_u64().is_some(), "an id: {body}");
    body
}

/// The field a 400 names.
fn refused(status: u16, body: &Value) -> String {
    assert_eq!(status, 400, "{body}");
    body["field"].as_str().unwrap_or("").to_string()
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|t| t["id"].as_u64())
        .collect()
}

fn task(id: u64) -> Value {
    let (status, body) = get(&format!("/api/v1/tasks/{id}"));
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn tasks_through_the_api_survive_a_restart() {
    let mut hotline = Hotline::start(PORTS, &config(), &[]);

    // The token is required for every task endpoint.
    let (status, _) = reply(
        agent()
            .post(&url("/api/v1/tasks"))
            .send_json(follow_up("13800000001")),
    );
    assert_eq!(status, 401);
    let (status, _) = reply(agent().get(&url("/api/v1/tasks")).call());
    assert_eq!(status, 401);

    // Refused, each naming its field.
    let mut bad_due = follow_up("13800000001");
    bad_due["due"] = json!("tomorrow morning");
    let (status, body) = post("/api/v1/tasks", bad_due);
    assert_eq!(refused(status, &body), "due");
    let mut no_queue = follow_up("13800000001");
    no_queue["queue"] = json!("billing");
    let (status, body) = post("/api/v1/tasks", no_queue);
    assert_eq!(
        refused(status, &body),
        "queue",
        "checked against the config"
    );
    let (status, body) = reply(
        agent()
            .post(&url("/api/v1/tasks"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .header("Content-Type", "application/json")
            .send("{\"kind\": "),
    );
    assert_eq!(refused(status, &body), "body");
    let (status, body) = reply(
        agent()
            .post(&url("/api/v1/tasks"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .header("Content-Type", "text/plain")
            .send(follow_up("13800000001").to_string()),
    );
    assert_eq!(
        refused(status, &body),
        "body",
        "JSON needs its content type"
    );

    // Created: answered once stored.
    let first = create(&hotline, follow_up("138-0000-0001"));
    let id = first["id"].as_u64().unwrap_or(0);
    assert_eq!(first["state"], "open", "{first}");
    assert_eq!(first["number"], "13800000001");
    assert_eq!(first["due"], DUE, "{first}");
    let mut complaint = follow_up("13800000002");
    complaint["kind"] = json!("complaint");
    complaint["due"] = json!("2036-12-06T18:00:00+08:00");
    let second = create(&hotline, complaint);
    let other = second["id"].as_u64().unwrap_or(0);
    assert_ne!(id, other);

    // Listed by deadline; filtered.
    let (status, list) = get("/api/v1/tasks");
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![other, id], "earliest deadline first");
    assert!(list
        .as_array()
        .is_some_and(|l| l.iter().all(|t| t["state"] == "open")));
    let (_, open) = get("/api/v1/tasks?state=open&queue=repair");
    assert_eq!(ids(&open), vec![other, id]);
    let (_, done) = get("/api/v1/tasks?state=done");
    assert_eq!(ids(&done), Vec::<u64>::new());
    let (_, elsewhere) = get("/api/v1/tasks?queue=consultation");
    assert_eq!(ids(&elsewhere), Vec::<u64>::new());
    let (status, body) = get("/api/v1/tasks?state=opened");
    assert_eq!(refused(status, &body), "state");
    let (status, body) = get("/api/v1/tasks?status=open");
    assert_eq!(refused(status, &body), "status");

    // One, and none.
    let shown = task(id);
    assert_eq!(shown["kind"], "follow_up");
    assert_eq!(shown["queue"], "repair");
    assert_eq!(shown["note"], "燃气表已更换，回访是否满意");
    assert!(shown["created"].as_str().is_some(), "{shown}");
    let (status, _) = get("/api/v1/tasks/9999");
    assert_eq!(status, 404);

    // A repair follow-up with its order's fields, owned by agent 1001.
    let mut spec = follow_up("13800000004");
    spec["owner"] = json!("1001");
    spec["order"] = repair_order();
    let repair = create(&hotline, spec.clone());
    let rid = repair["id"].as_u64().unwrap_or(0);
    assert_eq!(task(rid)["order"], {
        let mut o = repair_order();
        o["kind"] = json!("repair");
        o["subject"] = Value::Null;
        o
    });
    for (order, field) in [
        (
            json!({"customer_name": "王建国", "fault": "leak"}),
            "order.address",
        ),
        (
            json!({"customer_name": "王建国\r\nX-Evil: 1", "address": "x", "fault": "leak"}),
            "order.customer_name",
        ),
        (
            json!({"customer_name": "王", "address": "x", "fault": "fire"}),
            "order.fault",
        ),
        (
            json!({"customer_name": "王", "address": "x", "fault": "other"}),
            "order.fault_detail",
        ),
        (
            json!({"customer_name": "王", "address": "x", "fault": "leak", "colour": "red"}),
            "order.colour",
        ),
    ] {
        let mut bad = spec.clone();
        bad["order"] = order;
        let (status, body) = post("/api/v1/tasks", bad);
        assert_eq!(refused(status, &body), field);
    }

    // Edits refused field by field, and for what is not there.
    let edit_path = format!("/api/v1/tasks/{rid}");
    let v = repair["version"].as_u64().expect("a version");
    for (body, field) in [
        (json!({"note": "x"}), "version"),
        (json!({"version": v}), "body"),
        (json!({"version": v, "due": "next week"}), "due"),
        (
            json!({"version": v, "order": {"fault": "fire"}}),
            "order.fault",
        ),
        (
            json!({"version": v, "order": {"subject": "x"}}),
            "order.subject",
        ),
        (json!({"version": v, "owner": "1002"}), "owner"),
        (json!({"version": v, "note": "响铃\u{7}"}), "note"),
    ] {
        let (status, reply) = patch(&edit_path, body.clone());
        assert_eq!(refused(status, &reply), field, "{body}");
    }
    let (status, _) = patch("/api/v1/tasks/9999", json!({"version": 1, "note": "x"}));
    assert_eq!(status, 404);

    // Two editors opened version v and save at once: one is saved, the
    // other is 409 with the task as the first left it.
    let note_edit = json!({"version": v, "note": "客户要求上午十点后回访"});
    let address_edit = json!({"version": v, "order": {"address": "朝阳区建国路 90 号"}});
    let barrier = Arc::new(Barrier::new(2));
    let edits: Vec<_> = [note_edit.clone(), address_edit.clone()]
        .into_iter()
        .map(|body| {
            let barrier = barrier.clone();
            let path = edit_path.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (body.clone(), patch(&path, body))
            })
        })
        .collect();
    let mut results: Vec<(Value, (u16, Value))> = edits
        .into_iter()
        .map(|h| h.join().expect("edit thread"))
        .collect();
    results.sort_by_key(|(_, (status, _))| *status);
    let [(_, (200, saved)), (lost, (409, conflict))] = &results[..] else {
        panic!("one 200 and one 409 expected: {results:?}");
    };
    assert_eq!(saved["version"], v + 1, "{saved}");
    assert_eq!(conflict["field"], "version", "{conflict}");
    assert_eq!(conflict["expected"], v);
    assert_eq!(conflict["current"]["version"], v + 1);
    assert_eq!(
        (&conflict["current"]["note"], &conflict["current"]["order"]),
        (&saved["note"], &saved["order"]),
        "the 409 carries the saved edit to merge with"
    );
    // The second editor saves again on the version now current.
    let mut again = lost.clone();
    again["version"] = conflict["current"]["version"].clone();
    let (status, merged) = patch(&edit_path, again);
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["version"], v + 2);
    let both = task(rid);
    assert_eq!(both["note"], "客户要求上午十点后回访", "{both}");
    assert_eq!(both["order"]["address"], "朝阳区建国路 90 号", "{both}");
    assert_eq!(
        both["order"]["customer_name"], "王建国",
        "untouched fields kept"
    );
    assert_eq!(both["version"], v + 2);

    // Agents edit only their own tasks; a session's edit needs its CSRF
    // token.
    let other_agent = signed_in("1002", "secret");
    let (status, _) = patch_as(
        &other_agent,
        &edit_path,
        true,
        json!({"version": v + 2, "note": "x"}),
    );
    assert_eq!(status, 403, "1002 does not own it");
    let owner = signed_in("1001", "secret");
    let (status, _) = patch_as(
        &owner,
        &edit_path,
        false,
        json!({"version": v + 2, "note": "x"}),
    );
    assert_eq!(status, 403, "no CSRF token");
    let (status, mine) = patch_as(
        &owner,
        &edit_path,
        true,
        json!({"version": v + 2, "due": "2036-12-08T09:00:00+08:00"}),
    );
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["due"], "2036-12-08T09:00:00+08:00");
    assert_eq!(mine["note"], "客户要求上午十点后回访");
    let final_version = mine["version"].as_u64().expect("version");
    assert_eq!(final_version, v + 3);

    // Each edit is in the audit log: who, the versions, what changed.
    let audit = audit_lines(&hotline.records_dir());
    let target = rid.to_string();
    let edits: Vec<&Value> = audit
        .iter()
        .filter(|l| l["action"] == "task.edit" && l["target"] == target.as_str())
        .collect();
    assert!(
        edits
            .iter()
            .any(|l| l["who"] == "api.token" && l["result"] == 409),
        "{edits:?}"
    );
    assert!(
        edits
            .iter()
            .any(|l| l["who"] == "1002" && l["result"] == 403),
        "{edits:?}"
    );
    assert!(
        edits.iter().any(|l| l["who"] == "1001"
            && l["result"] == 200
            && l["detail"]["changed"] == json!(["due"])
            && l["detail"]["version"] == final_version),
        "{edits:?}"
    );
    assert!(
        edits.iter().all(|l| l["at"].as_str().is_some()),
        "when: {edits:?}"
    );

    // No outcome before the customer was reached.
    let path = format!("/api/v1/tasks/{id}/outcome");
    let (status, body) = post(&path, json!({"outcome": "satisfied"}));
    assert_eq!(status, 409, "{body}");
    let (status, body) = post(&path, json!({"outcome": "delighted"}));
    assert_eq!(refused(status, &body), "outcome");
    let (status, _) = post(
        "/api/v1/tasks/9999/outcome",
        json!({"outcome": "satisfied"}),
    );
    assert_eq!(status, 404);

    // Cancelled.
    let (status, cancelled) = post_empty(&format!("/api/v1/tasks/{id}/cancel"));
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["closed"].as_str().is_some(), "{cancelled}");
    assert_eq!(task(id)["state"], "cancelled");
    let (status, again) = post_empty(&format!("/api/v1/tasks/{id}/cancel"));
    assert_eq!(
        (status, &again["state"]),
        (200, &json!("cancelled")),
        "asked twice"
    );
    let (status, _) = post_empty("/api/v1/tasks/9999/cancel");
    assert_eq!(status, 404);
    let (_, open) = get("/api/v1/tasks?state=open");
    assert_eq!(ids(&open), vec![other, rid]);
    // A closed task is not edited.
    let (status, closed) = patch(
        &format!("/api/v1/tasks/{id}"),
        json!({"version": 99, "note": "x"}),
    );
    assert_eq!(status, 409, "{closed}");
    let closed_version = task(id)["version"].clone();
    let (status, closed) = patch(
        &format!("/api/v1/tasks/{id}"),
        json!({"version": closed_version, "note": "x"}),
    );
    assert_eq!(status, 409, "{closed}");
    assert_eq!(closed["current"]["state"], "cancelled");

    // Stopped and started again on the same store: both are still there,
    // as they were, and a new task gets a new id.
    let status = hotline.stop();
    assert!(status.success(), "{status}\n{}", hotline.log_tail());
    hotline.restart();
    let again = task(id);
    assert_eq!(again["state"], "cancelled", "{again}");
    assert_eq!(again["due"], DUE);
    assert_eq!(again["note"], "燃气表已更换，回访是否满意");
    assert_eq!(task(other)["state"], "open");
    // The edits too, at their version.
    let edited = task(rid);
    assert_eq!(edited["version"], final_version);
    assert_eq!(edited["note"], "客户要求上午十点后回访");
    assert_eq!(edited["order"]["address"], "朝阳区建国路 90 号");
    assert_eq!(edited["due"], "2036-12-08T09:00:00+08:00");
    let third = create(&hotline, follow_up("13800000003"));
    let third = third["id"].as_u64().unwrap_or(0);
    assert!(
        third > id && third > other,
        "ids go on past the stored ones"
    );

    // Nothing was ever dialled.
    for t in [id, other, rid] {
        assert_eq!(task(t)["attempts"], json!([]), "task {t} was dialled");
    }
    let status = hotline.stop();
    assert!(status.success(), "{status}");
}
