//! The knowledge base through the HTTP API against the real binary
//! (docs/knowledge-base.md): entries created and refused field by field,
//! found by a Chinese word and an English one, two agents editing the same
//! version at once (one saved, the other answered 409 with the current
//! text, then merging), the history holding every version, and all of it
//! still there after the engine is killed and started again.
//!
//! Ports (tests/README.md): engine SIP 15480, API 18780, RTP 22800-22819.

#[path = "support/engine.rs"]
mod engine;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use engine::{base_config, EnginePorts, Hotline};
use serde_json::{json, Value};

const TOKEN: &str = "demo-token";

const PORTS: EnginePorts = EnginePorts {
    sip: 15480,
    api: 18780,
    rtp: (22800, 22819),
};

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

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut r = r.expect("API request");
    let status = r.status().as_u16();
    let text = r
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_string()
        .expect("API body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(path: &str, body: &Value) -> (u16, Value) {
    reply(
        agent()
            .post(&url(path))
            .header("Authorization", &bearer())
            .send_json(body),
    )
}

fn put(path: &str, body: &Value) -> (u16, Value) {
    reply(
        agent()
            .put(&url(path))
            .header("Authorization", &bearer())
            .send_json(body),
    )
}

fn get(path: &str) -> (u16, Value) {
    reply(
        agent()
            .get(&url(path))
            .header("Authorization", &bearer())
            .call(),
    )
}

/// A search; the ids found, in order.
fn search(query: &[(&str, &str)]) -> Vec<u64> {
    let (status, body) = reply(
        agent()
            .get(&url("/api/v1/kb"))
            .header("Authorization", &bearer())
            .query_pairs(query.iter().copied())
            .call(),
    );
    assert_eq!(status, 200, "search {query:?}: {body}");
    body.as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}

/// The field a 400 names.
fn refused(status: u16, body: &Value) -> String {
    assert_eq!(status, 400, "{body}");
    let field = body["field"].as_str().unwrap_or("").to_string();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{field}: "))),
        "the message names the field: {body}"
    );
    field
}

fn gas() -> Value {
    json!({
        "title": "燃气表更换后读数不走",
        "question": "换了新表以后，表上的数字一直不动，是坏了吗？",
        "answer": "新表需要先插卡激活。\n请用户持燃气卡在表上插一次，听到提示音后即可用气。",
        "tags": "燃气，抄表",
        "business_type": "repair"
    })
}

fn broadband() -> Value {
    json!({
        "title": "Broadband outage in the Eastern district",
        "answer": "A fibre cut is being repaired; service is expected back by 18:00.",
        "tags": ["broadband", "outage"],
        "business_type": "consultation"
    })
}

#[test]
fn knowledge_base_edits_never_lose_each_other_and_survive_a_restart() {
    let mut hotline = Hotline::start(PORTS, &base_config(PORTS), &[]);

    // The token is required, to read as well as to write.
    let (status, _) = reply(agent().get(&url("/api/v1/kb")).call());
    assert_eq!(status, 401);
    let (status, _) = reply(agent().post(&url("/api/v1/kb")).send_json(gas()));
    assert_eq!(status, 401);

    // Refused, each naming its field.
    let with = |key: &str, value: Value| {
        let mut b = gas();
        b[key] = value;
        b
    };
    for (body, field) in [
        (with("title", json!("")), "title"),
        (with("title", json!("x".repeat(201))), "title"),
        (with("answer", json!(" ")), "answer"),
        (with("answer", json!("x".repeat(10_001))), "answer"),
        (with("question", json!("响铃\u{7}")), "question"),
        (
            with(
                "tags",
                json!((0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
            "tags",
        ),
        (with("tags", json!(["x".repeat(33)])), "tags"),
        (with("business_type", json!("billing")), "business_type"),
        (with("author", json!("1001")), "author"),
    ] {
        let (status, reply) = post("/api/v1/kb", &body);
        assert_eq!(refused(status, &reply), field, "{body}");
    }
    let (status, reply) = reply(
        agent()
            .post(&url("/api/v1/kb"))
            .header("Authorization", &bearer())
            .header("Content-Type", "application/json")
            .send("{\"title\": "),
    );
    assert_eq!(refused(status, &reply), "body");
    // The unknown business type is named with the configured ones.
    let (_, reply) = post("/api/v1/kb", &with("business_type", json!("billing")));
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("consultation, repair, complaint")),
        "{reply}"
    );
    // Far larger than any entry: refused before it is read.
    let (status, _) = post("/api/v1/kb", &with("answer", json!("x".repeat(300_000))));
    assert_eq!(status, 413);
    assert!(search(&[]).is_empty(), "nothing refused was stored");

    // Created at version 1.
    let (status, created) = post("/api/v1/kb", &gas());
    assert_eq!(status, 201, "{created}\n{}", hotline.log_tail());
    let g = created["id"].as_u64().expect("an id");
    assert_eq!(created["version"], 1);
    // The author is who asked: the shared token acts as "api.token".
    assert_eq!(created["updated_by"], "api.token");
    assert_eq!(created["tags"], json!(["燃气", "抄表"]));
    let (status, created) = post("/api/v1/kb", &broadband());
    assert_eq!(status, 201, "{created}");
    let b = created["id"].as_u64().expect("an id");

    // Found by a Chinese word (two characters, and longer), an English one
    // whatever its case, a tag, and by business type.
    assert_eq!(search(&[("q", "燃气")]), vec![g]);
    assert_eq!(search(&[("q", "插卡激活")]), vec![g]);
    assert_eq!(search(&[("q", "抄表")]), vec![g]);
    assert_eq!(search(&[("q", "FIBRE")]), vec![b]);
    assert_eq!(search(&[("q", "outage eastern")]), vec![b]);
    assert_eq!(search(&[("business_type", "repair")]), vec![g]);
    assert_eq!(search(&[]), vec![b, g], "newest first");
    assert_eq!(search(&[("limit", "1")]), vec![b]);
    let (status, body) = get("/api/v1/kb?sort=title");
    assert_eq!(refused(status, &body), "sort");
    let (status, _) = get("/api/v1/kb/999");
    assert_eq!(status, 404);
    let (status, body) = get("/api/v1/kb/abc");
    assert_eq!(refused(status, &body), "id");

    // Two agents open version 1 and save at once: one is saved, the other
    // is answered 409 with the text now current, and is not saved.
    let (status, opened) = get(&format!("/api/v1/kb/{g}"));
    assert_eq!(status, 200);
    assert_eq!(opened["version"], 1);
    let edit = |answer: &str| {
        let mut b = gas();
        b["answer"] = json!(answer);
        b["version"] = json!(1);
        b
    };
    let first = "新表需先插卡激活；插卡后仍不走，请报修。";
    let second = "新表需先插卡激活。燃气卡余额为零时表也不走，请先充值。";
    let barrier = Arc::new(Barrier::new(2));
    let edits: Vec<_> = [first, second]
        .into_iter()
        .map(|answer| {
            let body = edit(answer);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                put(&format!("/api/v1/kb/{g}"), &body)
            })
        })
        .collect();
    let mut results: Vec<(u16, Value)> = edits
        .into_iter()
        .map(|h| h.join().expect("edit thread"))
        .collect();
    results.sort_by_key(|(status, _)| *status);
    let [(200, saved), (409, conflict)] = &results[..] else {
        panic!("one 200 and one 409 expected: {results:?}");
    };
    assert_eq!(saved["version"], 2);
    let winner = saved["answer"].as_str().expect("answer").to_string();
    let loser = if winner == first { second } else { first };
    assert_eq!(conflict["field"], "version");
    assert_eq!(conflict["expected"], 1);
    assert_eq!(conflict["current"]["version"], 2);
    assert_eq!(conflict["current"]["answer"], winner.as_str());
    assert!(conflict["error"]
        .as_str()
        .is_some_and(|e| e.contains("merge") || e.contains("Merge")));
    let (_, now) = get(&format!("/api/v1/kb/{g}"));
    assert_eq!(
        now["answer"],
        winner.as_str(),
        "the refused edit changed nothing"
    );

    // The second agent merges onto version 2: saved as 3.
    let merged = format!("{winner}\n{loser}");
    let mut body = edit(&merged);
    body["version"] = json!(2);
    let (status, third) = put(&format!("/api/v1/kb/{g}"), &body);
    assert_eq!(status, 200, "{third}");
    assert_eq!(third["version"], 3);
    // Saving from version 2 again is refused in turn.
    let (status, again) = put(&format!("/api/v1/kb/{g}"), &body);
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["current"]["version"], 3);
    let (status, body) = put(&format!("/api/v1/kb/{g}"), &gas());
    assert_eq!(refused(status, &body), "version");

    let check_history = || {
        let (status, history) = get(&format!("/api/v1/kb/{g}/history"));
        assert_eq!(status, 200, "{history}");
        let versions: Vec<(u64, String)> = history
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| {
                (
                    v["version"].as_u64().expect("version"),
                    v["answer"].as_str().expect("answer").to_string(),
                )
            })
            .collect();
        assert_eq!(
            versions,
            vec![
                (3, merged.clone()),
                (2, winner.clone()),
                (1, gas()["answer"].as_str().expect("answer").to_string()),
            ]
        );
    };
    check_history();

    // Killed (no chance to tidy up) and started again on the same store.
    hotline.kill();
    hotline.restart();
    let (status, after) = get(&format!("/api/v1/kb/{g}"));
    assert_eq!(status, 200, "{after}\n{}", hotline.log_tail());
    assert_eq!(after["version"], 3);
    assert_eq!(after["answer"], merged.as_str());
    check_history();
    assert_eq!(search(&[("q", "充值")]), vec![g], "the index too");
    assert_eq!(search(&[("q", "broadband")]), vec![b]);
    let (status, next) = post("/api/v1/kb", &broadband());
    assert_eq!(status, 201, "{next}");
    assert!(next["id"].as_u64().expect("an id") > b);

    let status = hotline.stop();
    assert!(status.success(), "{status}\n{}", hotline.log_tail());
}
