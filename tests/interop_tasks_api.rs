//! Tasks through the HTTP API against the real binary (docs/tasks-api.md):
//! created (201 only once stored), refused field by field, listed,
//! shown, an outcome refused before the customer was reached, cancelled,
//! and all of it still there after a restart on the same store.
//!
//! The config has one trunk (a task's queue must have one to dial
//! through) on a loopback port where nothing listens, no agent logs in
//! and every deadline is years away: nothing is ever dialled.
//!
//! Ports (tests/README.md): engine SIP 15420, the trunk's address 15421
//! (nothing there), API 18700, RTP 22600-22619.

#[path = "support/engine.rs"]
mod engine;

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
    assert_eq!(ids(&open), vec![other]);

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
    let third = create(&hotline, follow_up("13800000003"));
    let third = third["id"].as_u64().unwrap_or(0);
    assert!(
        third > id && third > other,
        "ids go on past the stored ones"
    );

    // Nothing was ever dialled.
    for t in [id, other] {
        assert_eq!(task(t)["attempts"], json!([]), "task {t} was dialled");
    }
    let status = hotline.stop();
    assert!(status.success(), "{status}");
}
