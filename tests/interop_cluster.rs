//! Interop test of several hotline nodes sharing state (docs/cluster.md):
//! a throw-away PostgreSQL cluster the test creates, two real `hotline`
//! nodes using it (`[store] url`, `[node] id`), Kamailio in front running
//! config/kamailio/hotline-edge.cfg as shipped, SIPp callers through
//! Kamailio and a SIPp agent's phone registered through Kamailio, all on
//! loopback.
//!
//! One agent, registered through one node, with a Contact where nothing
//! listens (127.0.0.2): either node can ring it only through Kamailio with
//! the Path. Both nodes list it as registered; its status set on one node
//! shows on the other. Four callers, one a second, are spread over the
//! nodes by the dispatcher (round robin) and wait while the agent is on
//! break; then the agent is made available on one node, and takes them
//! in arrival order (one global order per queue), each rung from the node
//! holding that caller.
//!
//! Needs PostgreSQL's server (package postgresql), `kamailio` and `sipp`,
//! and root (SIPp replays the key through raw sockets). Without them the
//! test is skipped, or fails under `CI=true`.
//!
//! Ports: node k SIP 16100 + k, API 18900 + k, RTP 32100 + 100k .. + 99;
//! Kamailio 16110; SIPp agent 16120 (control 16140), callers 16130
//! (control 16150), media 32500 .. 32519.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::kamailio::{kamailio_modules, Kamailio};
use support::postgres::PgCluster;
use support::*;

const AGENT: u16 = 0;
const CALLER: u16 = 1;
const KAMAILIO_PORT: u16 = 16110;
const TOKEN: &str = "demo-token";

fn node_ports(k: u16) -> Ports {
    Ports::block(
        60 + k,
        16100 + k,
        (32100 + 100 * k, 32100 + 100 * k + 99),
        PortBlock {
            sipp_sip: [16120, 16130],
            sipp_control: [16140, 16150],
            media: 32500,
            api: 18900 + k,
        },
    )
}

/// config/default.toml for node `id` on `ports`, sharing `url`.
fn node_config(ports: &Ports, url: &str, id: &str) -> String {
    let q = |v: &str| format!("{v:?}");
    let settings = Settings {
        answer_after: "300ms",
        overrides: vec![
            ("[[queues]]", "ring_timeout", q("10s")),
            ("[[queues]]", "wrap_up", q("1s")),
            ("[[queues]]", "apology_after", q("60s")),
        ],
        ..Settings::default()
    };
    let mut text = config_toml(ports, &settings);
    text.push_str(&format!(
        "\n[store]\nurl = {}\n\n[node]\nid = {}\nlease = \"3s\"\n",
        q(url),
        q(id)
    ));
    text
}

/// One call to a node's API; (status, JSON body or Null).
fn api(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let auth = format!("Bearer {TOKEN}");
    let response = match method {
        "GET" => agent.get(&url).header("Authorization", &auth).call(),
        _ => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or("{}")),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Agent `id` as node `port` lists it.
fn agent_on(port: u16, id: &str) -> Value {
    let (status, body) = api(port, "GET", "/api/v1/agents", None);
    assert_eq!(status, 200, "GET /api/v1/agents: {body}");
    let list = body
        .get("agents")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .cloned()
        .unwrap_or_default();
    list.into_iter()
        .find(|a| a.get("id").and_then(Value::as_str) == Some(id))
        .unwrap_or_else(|| panic!("agent {id} not listed: {body}"))
}

/// Waits until `check` holds, or panics with `what`.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Callers waiting in queues on a node now.
fn waiting_on(port: u16) -> u64 {
    let (_, body) = api(port, "GET", "/api/v1/status", None);
    body.get("queues")
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .filter_map(|q| q.get("waiting").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0)
}

fn logged<'a>(logs: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    logs.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn two_nodes_share_one_agent_and_one_order_per_queue() {
    if !require_tool("kamailio") || !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(modules) = kamailio_modules() else {
        return;
    };
    let Some(dtmf) = sample_pcap("dtmf_2833_1.pcap") else {
        return;
    };
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let url = pg.url();
    let (pa, pb) = (node_ports(0), node_ports(1));
    let mut a = Engine::start_config(pa, &node_config(&pa, &url, "a"), &[]);
    let mut b = Engine::start_config(pb, &node_config(&pb, &url, "b"), &[]);
    let nodes = [
        format!("sip:{}", a.sip_addr()),
        format!("sip:{}", b.sip_addr()),
    ];
    let kamailio = Kamailio::start(&a.path().join("kamailio"), KAMAILIO_PORT, &nodes, modules);
    let kam = kamailio.addr;
    let fail = |what: &str| -> String {
        format!(
            "{what}\n--- kamailio (tail) ---\n{}\n--- node a (tail) ---\n{}\n--- node b (tail) ---\n{}",
            kamailio.log(),
            a.log_tail(),
            b.log_tail()
        )
    };

    // 1. The agent registers through Kamailio (to one node, by its AOR);
    // both nodes list it as registered.
    let args = [
        "-key",
        "agent",
        "1001",
        "-key",
        "contact_ip",
        "127.0.0.2",
        "-au",
        "1001",
        "-ap",
        "secret",
    ];
    Sipp::start_via(&a, kam, AGENT, "kam_agent_register.xml", &args, 15, 1).expect_success(&a);
    for port in [pa.api(), pb.api()] {
        wait_until(
            &fail(&format!("1001 registered as node API {port} sees it")),
            Duration::from_secs(5),
            || agent_on(port, "1001")["registered"] == Value::Bool(true),
        );
    }

    // 2. Its status, set on one node, is the other's too.
    let (status, body) = api(
        pb.api(),
        "POST",
        "/api/v1/agents/1001/break",
        Some(r#"{"reason": "meeting"}"#),
    );
    assert_eq!(status, 200, "break on node b: {body}");
    wait_until(
        &fail("node a sees 1001 on break"),
        Duration::from_secs(5),
        || agent_on(pa.api(), "1001")["status"] == "on_break",
    );

    // 3. Four callers, a second apart, spread over both nodes; they wait.
    // The agent talks 6 s (the announcements before the bridge included).
    let phone = Sipp::start_via(
        &a,
        kam,
        AGENT,
        "cluster_agent.xml",
        &["-key", "agent", "1001", "-d", "6000"],
        90,
        4,
    );
    phone.wait_listening(&a, AGENT);
    let callers = Sipp::start_via(
        &a,
        kam,
        CALLER,
        "cluster_caller.xml",
        &["-key", "dtmf", &dtmf, "-r", "1", "-rp", "1000", "-l", "10"],
        90,
        4,
    );
    wait_until(
        &fail("four callers waiting across the nodes"),
        Duration::from_secs(15),
        || waiting_on(pa.api()) + waiting_on(pb.api()) == 4,
    );
    assert_eq!(waiting_on(pa.api()), 2, "{}", fail("two callers on node a"));
    assert_eq!(waiting_on(pb.api()), 2, "{}", fail("two callers on node b"));

    // 4. Available (on node a): the callers are taken in arrival order,
    // whichever node holds them.
    let (status, body) = api(pa.api(), "POST", "/api/v1/agents/1001/available", None);
    assert_eq!(status, 200, "available on node a: {body}");
    let phone = phone.expect_success(&a);
    callers.expect_success(&a);
    let logs = phone.logs();
    assert_eq!(
        logged(&logs, "caller"),
        ["13800000001", "13800000002", "13800000003", "13800000004"],
        "{}",
        fail("the agent took the callers in arrival order")
    );
    // Each was rung by the node holding it, through Kamailio.
    let rung_by: Vec<bool> = logged(&logs, "node-via")
        .iter()
        .map(|via| via.contains(&format!("127.0.0.1:{}", pa.sip)))
        .collect();
    assert_eq!(rung_by.len(), 4, "{logs}");
    assert!(
        rung_by.contains(&true) && rung_by.contains(&false),
        "both nodes rang the agent (registered through one of them): {logs}"
    );

    // 5. Records: each node wrote its own callers', its name in their ids,
    // each answered by 1001; no agent was offered twice at once (four
    // offers in all, each answered).
    drop(kamailio);
    let mut offers = 0;
    for (node, engine) in [("a", &mut a), ("b", &mut b)] {
        let records = engine.stop_and_read_records();
        let calls: Vec<&Value> = records
            .iter()
            .filter(|r| r.get("disposition").is_some())
            .collect();
        assert_eq!(calls.len(), 2, "node {node}: {records:?}");
        for r in calls {
            assert!(
                str_field(r, "call_id").starts_with(&format!("hl-{node}-")),
                "node {node}'s name in the record's id: {r}"
            );
            assert_eq!(str_field(r, "agent"), "1001", "{r}");
            assert_eq!(str_field(r, "queue_result"), "answered", "{r}");
        }
        for o in engine.offers() {
            assert_eq!(str_field(&o, "outcome"), "answered", "node {node}: {o}");
            offers += 1;
        }
    }
    assert_eq!(offers, 4, "one offer per caller");
    drop(pg);
}
