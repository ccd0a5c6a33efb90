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
//! Ports (each test its own block, `cluster_ports`; tests/README.md):
//! nodes SIP 16900 - 16908, API 18960 - 18968, RTP 19000 - 19999 and 32100 - 32699;
//! Kamailio 16910 - 16912; SIPp 16920 - 16959, media 32500 - 32599.

mod support;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::kamailio::{kamailio_and_sipp, Kamailio};
use support::postgres::PgCluster;
use support::*;

const AGENT: u16 = 0;
const CALLER: u16 = 1;
const KAMAILIO_PORT: u16 = 16910;
const TOKEN: &str = "demo-token";

/// Node `k` of test `test`'s ports: SIP 16900 + test + k, API 18960 +
/// test + k; the test's SIPp pair 16920 + test, 16930 + test (control
/// 16940 + test, 16950 + test); RTP and SIPp media as given.
fn cluster_ports(test: u16, k: u16, rtp: (u16, u16), media: u16) -> Ports {
    Ports::block(
        60 + test + k,
        16900 + test + k,
        rtp,
        PortBlock {
            sipp_sip: [16920 + test, 16930 + test],
            sipp_control: [16940 + test, 16950 + test],
            media,
            api: 18960 + test + k,
        },
    )
}

fn node_ports(k: u16) -> Ports {
    cluster_ports(0, k, (32100 + 100 * k, 32100 + 100 * k + 99), 32500)
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

/// Callers waiting in queues on a node now, as its status shows them:
/// every live node's (several nodes' figures are summed).
fn waiting_shown_by(port: u16) -> u64 {
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

/// Callers waiting on a node itself: its `/metrics`, which each node
/// answers for itself alone.
fn waiting_on(port: u16) -> u64 {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = ureq::get(&url)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    text.lines()
        .filter(|l| l.starts_with("hotline_queue_waiting_calls{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The agents' phones (SIPp instance `AGENT`, on the port they registered
/// from through Kamailio) for `calls` calls: each answered at once and
/// hung up after `talk_ms`. Listening when it returns.
fn phones(engine: &Engine, kam: SocketAddr, talk_ms: u64, calls: u32, timeout_s: u64) -> Sipp {
    let talk = talk_ms.to_string();
    let args = ["-key", "agent", "1001", "-d", &talk];
    let phones = Sipp::start_via(
        engine,
        kam,
        AGENT,
        "cluster_agent.xml",
        &args,
        timeout_s,
        calls,
    );
    phones.wait_listening(engine, AGENT);
    phones
}

/// `calls` callers through Kamailio, `rate` a second (SIPp instance
/// `CALLER`), each pressing 1 and waiting until hotline hangs up.
fn callers(engine: &Engine, kam: SocketAddr, dtmf: &str, calls: u32, rate: u32) -> Sipp {
    let (rate, limit) = (rate.to_string(), calls.max(10).to_string());
    let args = [
        "-key", "dtmf", dtmf, "-r", &rate, "-rp", "1000", "-l", &limit,
    ];
    Sipp::start_via(engine, kam, CALLER, "cluster_caller.xml", &args, 150, calls)
}

fn logged<'a>(logs: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    logs.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn two_nodes_share_one_agent_and_one_order_per_queue() {
    let Some((modules, dtmf)) = kamailio_and_sipp() else {
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
    let phone = phones(&a, kam, 6000, 4, 90);
    let callers = callers(&a, kam, &dtmf, 4, 1);
    wait_until(
        &fail("four callers waiting across the nodes"),
        Duration::from_secs(15),
        || waiting_on(pa.api()) + waiting_on(pb.api()) == 4,
    );
    assert_eq!(waiting_on(pa.api()), 2, "{}", fail("two callers on node a"));
    assert_eq!(waiting_on(pb.api()), 2, "{}", fail("two callers on node b"));
    // Each node's wallboard and status show all four.
    wait_until(
        &fail("both nodes' status shows the four callers"),
        Duration::from_secs(5),
        || waiting_shown_by(pa.api()) == 4 && waiting_shown_by(pb.api()) == 4,
    );
    let (_, status) = api(pa.api(), "GET", "/api/v1/status", None);
    assert_eq!(status["nodes"], serde_json::json!(["b"]), "{status}");

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

    // The day's figures on either node count every node's calls: 4
    // answered by an agent.
    for port in [pa.api(), pb.api()] {
        wait_until(
            &fail("the status sums both nodes' calls"),
            Duration::from_secs(5),
            || {
                let (_, status) = api(port, "GET", "/api/v1/status", None);
                let answered: u64 = status["queues"]
                    .as_array()
                    .map(|qs| {
                        qs.iter()
                            .filter_map(|q| q["today"]["results"]["answered"].as_u64())
                            .sum()
                    })
                    .unwrap_or(0);
                answered == 4 && status["calls"]["today"]["offered"] == 4
            },
        );
    }

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

/// The store is lost: the node goes on answering and playing prompts, and
/// a caller who asks for an agent is offered a message; when the store is
/// back, callers reach the agent again.
#[test]
fn a_node_without_its_store_offers_a_message_then_recovers() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(dtmf) = sample_pcap("dtmf_2833_1.pcap") else {
        return;
    };
    let Some(mut pg) = PgCluster::start() else {
        return;
    };
    let ports = cluster_ports(2, 0, (32300, 32399), 32520);
    let mut node = Engine::start_config(ports, &node_config(&ports, &pg.url(), "solo"), &[]);
    let voice = node.path().join("caller.pcap");
    write_pcmu_pcap(&voice, &tone(1000.0, 3000));
    let voice = voice.to_string_lossy().into_owned();
    let register = ["-key", "agent", "1001", "-au", "1001", "-ap", "secret"];
    Sipp::spawn(&node, AGENT, "agent_register.xml", &register, 15).expect_success(&node);

    // 1. The store goes away; within the lease the node stops offering.
    pg.stop();
    node.wait_for_log(
        "no agent is offered until it is back",
        Duration::from_secs(10),
    );
    let args = ["-key", "dtmf", &dtmf, "-key", "pcap", &voice, "-d", "6000"];
    Sipp::spawn(&node, CALLER, "uac_queue.xml", &args, 30).expect_success(&node);

    // 2. The store is back: the agent is offered callers again.
    pg.start_again();
    node.wait_for_log("the shared store is back", Duration::from_secs(15));
    let agent = Sipp::start(
        &node,
        AGENT,
        "agent_answer.xml",
        &["-key", "agent", "1001", "-key", "pcap", &voice],
        40,
        1,
    );
    agent.wait_listening(&node, AGENT);
    let args = ["-key", "dtmf", &dtmf, "-key", "pcap", &voice, "-d", "6000"];
    Sipp::spawn(&node, CALLER, "uac_queue.xml", &args, 40).expect_success(&node);
    agent.expect_success(&node);

    let records = node.stop_and_read_records();
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("disposition").is_some())
        .collect();
    assert_eq!(calls.len(), 2, "{records:?}");
    // Answered, the greeting and menu played, then a message offered.
    let lost = calls[0];
    assert_eq!(str_field(lost, "disposition"), "answered", "{lost}");
    assert_eq!(str_field(lost, "queue_result"), "empty", "{lost}");
    assert!(
        ivr_path(lost).contains(&"message"),
        "offered a message: {lost}"
    );
    let back = calls[1];
    assert_eq!(str_field(back, "queue_result"), "answered", "{back}");
    assert_eq!(str_field(back, "agent"), "1001", "{back}");
    assert!(str_field(back, "call_id").starts_with("hl-solo-"), "{back}");
}

/// `kill -9` of one node with a call up: new calls reach the surviving
/// node through Kamailio's failover, and the agent the dead node held is
/// released when its lease runs out and offered by the survivor (rung
/// through Kamailio with the Path), while the survivor's own call goes on.
#[test]
fn the_survivor_takes_over_after_kill_9() {
    let Some((modules, dtmf)) = kamailio_and_sipp() else {
        return;
    };
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let block = |k: u16, rtp: u16| cluster_ports(3, k, (rtp, rtp + 99), 32540);
    let (pa, pb) = (block(0, 32400), block(1, 32600));
    let mut a = Engine::start_config(pa, &node_config(&pa, &pg.url(), "a"), &[]);
    let mut b = Engine::start_config(pb, &node_config(&pb, &pg.url(), "b"), &[]);
    let nodes = [
        format!("sip:{}", a.sip_addr()),
        format!("sip:{}", b.sip_addr()),
    ];
    let kamailio = Kamailio::start(&b.path().join("kamailio"), 16911, &nodes, modules);
    let kam = kamailio.addr;

    // Two agents' phones on one SIPp port, registered through Kamailio.
    for agent in ["1001", "1002"] {
        let args = [
            "-key",
            "agent",
            agent,
            "-key",
            "contact_ip",
            "127.0.0.2",
            "-au",
            agent,
            "-ap",
            "secret",
        ];
        Sipp::start_via(&b, kam, AGENT, "kam_agent_register.xml", &args, 15, 1).expect_success(&b);
    }
    for port in [pa.api(), pb.api()] {
        for agent in ["1001", "1002"] {
            wait_until(
                &format!("{agent} registered and available on API {port}"),
                Duration::from_secs(5),
                || {
                    let view = agent_on(port, agent);
                    view["registered"] == Value::Bool(true) && view["status"] == "available"
                },
            );
        }
    }
    // The phones talk 30 s on every call.
    let phones = phones(&b, kam, 30_000, 3, 60);
    // One caller on each node (round robin), each taken by an agent.
    let first = callers(&b, kam, &dtmf, 2, 1);
    let on_call = |port: u16| -> Option<String> {
        ["1001", "1002"]
            .into_iter()
            .find(|agent| agent_on(port, agent)["state"] == "on_call")
            .map(str::to_string)
    };
    wait_until(
        "an agent on a call on each node",
        Duration::from_secs(20),
        || on_call(pa.api()).is_some() && on_call(pb.api()).is_some(),
    );
    let held_by_a = on_call(pa.api()).unwrap_or_default();
    let held_by_b = on_call(pb.api()).unwrap_or_default();
    assert_ne!(held_by_a, held_by_b, "one agent per call");

    // 2. Node a dies. A new caller reaches node b (Kamailio fails over
    // from a), and is offered the agent a held once a's lease runs out.
    a.kill();
    let killed_at = Instant::now();
    let caller_ports = SippPorts {
        sip: 16934,
        control: 16954,
        media: 32560,
        sdp: 32564,
    };
    let second = Sipp::start_on_via(
        &b,
        kam,
        caller_ports,
        "caller-after-kill",
        "cluster_caller.xml",
        &["-key", "dtmf", &dtmf],
        60,
        1,
    );
    wait_until(
        &format!("node b connects {held_by_a}, released by the dead node"),
        Duration::from_secs(20),
        || agent_on(pb.api(), &held_by_a)["state"] == "on_call",
    );
    let took = killed_at.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "not before node a's lease (3 s) ran out: {took:?}"
    );
    assert_eq!(
        agent_on(pb.api(), &held_by_b)["state"],
        "on_call",
        "node b's own call goes on"
    );
    drop(second);
    drop(first);
    drop(phones);
    drop(kamailio);

    // 3. Node b's records: its first caller with one agent, the caller
    // after the failover with the other; each call offered once.
    let records = b.stop_and_read_records();
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("disposition").is_some())
        .collect();
    assert_eq!(calls.len(), 2, "{records:?}");
    let agents: Vec<&str> = calls.iter().map(|r| str_field(r, "agent")).collect();
    assert!(agents.contains(&held_by_a.as_str()), "{agents:?}");
    assert!(agents.contains(&held_by_b.as_str()), "{agents:?}");
    let offers = b.offers();
    for call in &calls {
        let id = str_field(call, "call_id");
        let n = offers
            .iter()
            .filter(|o| o.get("call_id").and_then(Value::as_str) == Some(id))
            .count();
        assert_eq!(n, 1, "{id} offered once: {offers:?}");
    }
    drop(pg);
}

/// 200 callers through Kamailio, spread over two nodes, 20 agents whose
/// phones registered through Kamailio: every caller's call is answered by
/// an agent once, and
/// no agent is ever offered a call while it rings or talks with another
/// (its calls' intervals, from both nodes' records, never overlap).
#[test]
fn two_hundred_calls_and_twenty_agents_never_double_book_an_agent() {
    let Some((modules, dtmf)) = kamailio_and_sipp() else {
        return;
    };
    let Some(pg) = PgCluster::start() else {
        return;
    };
    const AGENTS: u32 = 20;
    const CALLS: u32 = 200;
    let block = |k: u16| cluster_ports(5, k, (19000 + 400 * k, 19000 + 400 * k + 399), 32580);
    let (pa, pb) = (block(0), block(1));
    let ids: Vec<String> = (1..=AGENTS).map(|i| format!("{}", 2000 + i)).collect();
    let with_agents = |ports: &Ports, node: &str| {
        let mut text = node_config(ports, &pg.url(), node);
        for (i, id) in ids.iter().enumerate() {
            let md5 = hotline::sip::digest::ha1(
                hotline::sip::digest::Algorithm::Md5,
                id,
                "hotline",
                "secret",
            );
            text.push_str(&format!(
                "\n[[agents]]\nid = \"{id}\"\nnumber = \"{}\"\nname = \"Load agent {id}\"\n\
                 ha1_md5 = \"{md5}\"\nqueues = [\"consultation\"]\n",
                100 + i
            ));
        }
        text
    };
    let mut a = Engine::start_config(pa, &with_agents(&pa, "a"), &[]);
    let mut b = Engine::start_config(pb, &with_agents(&pb, "b"), &[]);
    let nodes = [
        format!("sip:{}", a.sip_addr()),
        format!("sip:{}", b.sip_addr()),
    ];
    let kamailio = Kamailio::start(&a.path().join("kamailio"), 16912, &nodes, modules);
    let kam = kamailio.addr;

    // The agents register through Kamailio from one port, then one UAS
    // there answers all their calls (talking 3 s each). Five calls a
    // second keep nearly every agent busy (about 4 s a call with the
    // wrap-up), so both nodes want the same few free agents at once.
    let csv = a.path().join("agents.csv");
    let mut lines = String::from("SEQUENTIAL\n");
    for id in &ids {
        lines.push_str(&format!(
            "{id};[authentication username={id} password=secret]\n"
        ));
    }
    std::fs::write(&csv, lines).expect("agents.csv");
    let csv = csv.to_string_lossy().into_owned();
    let args = ["-inf", &csv, "-key", "contact_ip", "127.0.0.2", "-r", "20"];
    Sipp::start_via(&a, kam, AGENT, "kam_agents_register.xml", &args, 30, AGENTS)
        .expect_success(&a);
    for port in [pa.api(), pb.api()] {
        wait_until(
            &format!("{AGENTS} agents registered and available on API {port}"),
            Duration::from_secs(10),
            || {
                ids.iter().all(|id| {
                    let view = agent_on(port, id);
                    view["registered"] == Value::Bool(true) && view["status"] == "available"
                })
            },
        );
    }
    let phones = phones(&a, kam, 3000, CALLS, 150);
    let callers = callers(&a, kam, &dtmf, CALLS, 5);
    callers.expect_success(&a);
    phones.expect_success(&a);
    drop(kamailio);

    // Both nodes' records: every caller answered once; per agent, each
    // call (from its offer to its end) after the previous one ended.
    let mut answered = std::collections::BTreeMap::new();
    let mut busy: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    let mut per_node = Vec::new();
    for engine in [&mut a, &mut b] {
        let records = engine.stop_and_read_records();
        let calls: Vec<&Value> = records
            .iter()
            .filter(|r| r.get("disposition").is_some())
            .collect();
        per_node.push(calls.len());
        let ended: std::collections::HashMap<&str, &str> = calls
            .iter()
            .map(|r| (str_field(r, "call_id"), str_field(r, "ended_at")))
            .collect();
        for r in &calls {
            // The agent answered (and hung up 3 s later, maybe before the
            // announcements were over: the bridge is not the point here).
            assert!(!str_field(r, "agent_answered_at").is_empty(), "{r}");
            assert!(ids.iter().any(|id| id == str_field(r, "agent")), "{r}");
            *answered
                .entry(str_field(r, "caller_number").to_string())
                .or_insert(0) += 1;
        }
        for o in engine.offers() {
            let call = str_field(&o, "call_id");
            let end = if str_field(&o, "outcome") == "answered" {
                ended.get(call).copied().unwrap_or_default()
            } else {
                str_field(&o, "ended_at")
            };
            busy.entry(str_field(&o, "agent").to_string())
                .or_default()
                .push((str_field(&o, "offered_at").to_string(), end.to_string()));
        }
    }
    assert_eq!(answered.len(), CALLS as usize, "every caller answered");
    assert!(answered.values().all(|&n| n == 1), "{answered:?}");
    assert!(
        per_node.iter().all(|&n| n >= CALLS as usize / 4),
        "both nodes took calls: {per_node:?}"
    );
    for (agent, mut spans) in busy {
        spans.sort();
        for pair in spans.windows(2) {
            let ((_, end), (next, _)) = (&pair[0], &pair[1]);
            assert!(
                next >= end,
                "{agent} offered a call at {next} while busy until {end}"
            );
        }
    }
    drop(pg);
}

/// Work that outlives a call, over two nodes with no Kamailio needed (the
/// nodes dial the trunk themselves): a campaign and a task created on
/// node a are seen on node b; node a is killed while its campaign's
/// first attempt rings; node b takes the campaign and the task over once
/// a's lease (3 s) runs out, ends that attempt as interrupted and makes
/// the retry itself. The trunk (SIPp) gets two INVITEs in all, one from
/// each node: nothing dialled twice, nothing lost.
#[test]
fn a_dead_nodes_campaign_and_task_are_taken_over_and_retried_by_the_survivor() {
    if !require_tool("sipp") {
        return;
    }
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let block = |k: u16| cluster_ports(7, k, (19800 + 100 * k, 19800 + 100 * k + 99), 32590);
    let (pa, pb) = (block(0), block(1));
    let trunk_at = pa.sipp(0).sip;
    let with_trunk = |ports: &Ports, node: &str| {
        let mut text = node_config(ports, &pg.url(), node);
        text.push_str(&format!(
            "\n[[trunks]]\nname = \"pstn\"\naddress = \"127.0.0.1:{trunk_at}\"\n\
             caller_id = \"4008001234\"\nmax_channels = 10\nmax_calls_per_second = 10\n"
        ));
        text
    };
    let mut a = Engine::start_config(pa, &with_trunk(&pa, "a"), &[]);
    let mut b = Engine::start_config(pb, &with_trunk(&pb, "b"), &[]);
    // The trunk: rings 3 s, then busy, for every call.
    let trunk = Sipp::start(&a, 0, "trunk_busy.xml", &["-d", "3000"], 60, 10);
    trunk.wait_listening(&a, 0);

    // 1. Created on node a, which runs them; node b sees both.
    let spec = r#"{"name": "gas outage", "trunk": "pstn", "prompt": "notice_example",
                   "numbers": ["13800000009"], "first_after": "0s", "retry": ["2s"]}"#;
    let (status, created) = api(pa.api(), "POST", "/api/v1/campaigns", Some(spec));
    assert_eq!(status, 201, "{created}");
    let campaign = created["id"].as_u64().expect("campaign id");
    let task = r#"{"kind": "follow_up", "number": "13800000077", "queue": "repair",
                   "due": "2036-12-07T09:00:00+08:00", "note": "回访"}"#;
    let (status, created) = api(pa.api(), "POST", "/api/v1/tasks", Some(task));
    assert_eq!(status, 201, "{created}");
    let task = created["id"].as_u64().expect("task id");
    let campaign_path = format!("/api/v1/campaigns/{campaign}");
    let task_path = format!("/api/v1/tasks/{task}");
    wait_until(
        "node b shows node a's campaign on its first attempt, and its task",
        Duration::from_secs(10),
        || {
            let (_, c) = api(pb.api(), "GET", &campaign_path, None);
            let (status, t) = api(pb.api(), "GET", &task_path, None);
            c["numbers"][0]["state"] == "dialing" && status == 200 && t["note"] == "回访"
        },
    );

    // 2. Node a dies while its attempt rings.
    wait_until(
        "the trunk rings with node a's call",
        Duration::from_secs(10),
        || {
            trunk
                .read("_messages.log", usize::MAX)
                .contains("INVITE sip:13800000009")
        },
    );
    a.kill();
    let killed_at = Instant::now();

    // 3. Node b takes over: attempt 1 interrupted, attempt 2 its own.
    let mut shown = Value::Null;
    wait_until(
        "node b retries the number itself, and it ends failed",
        Duration::from_secs(30),
        || {
            shown = api(pb.api(), "GET", &campaign_path, None).1;
            shown["numbers"][0]["state"] == "failed"
        },
    );
    let attempts: Vec<(u64, String)> = shown["numbers"][0]["attempts"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    (
                        a["attempt"].as_u64().unwrap_or(0),
                        a["result"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        attempts,
        vec![(1, "interrupted".to_string()), (2, "busy".to_string())],
        "{shown}"
    );
    let log = b.log_text();
    assert!(
        log.contains("taking over work from a node that died"),
        "{log}"
    );
    assert!(
        killed_at.elapsed() >= Duration::from_secs(3),
        "not before node a's lease ran out"
    );
    let (status, t) = api(pb.api(), "GET", &task_path, None);
    assert_eq!((status, &t["state"]), (200, &Value::from("open")), "{t}");

    // 4. The trunk saw two calls: the first from node a, the retry from
    // node b, nothing twice.
    thread::sleep(Duration::from_secs(1));
    let messages = trunk.stop();
    let invites: Vec<&str> = messages
        .split("message received")
        .filter_map(|chunk| chunk.split_once("\n\n").map(|(_, m)| m))
        .filter(|m| m.trim_start().starts_with("INVITE "))
        .collect();
    let call_ids: std::collections::BTreeSet<&str> = invites
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("call-id:"))
        })
        .collect();
    assert_eq!(call_ids.len(), 2, "{messages}");
    let from_b = invites
        .iter()
        .filter(|m| m.contains(&format!("127.0.0.1:{}", pb.sip)))
        .count();
    assert!(from_b > 0, "the retry came from node b: {messages}");
    let records = b.stop_and_read_records();
    let results: Vec<&str> = records
        .iter()
        .filter(|r| r.get("campaign").is_some_and(|c| !c.is_null()))
        .map(|r| str_field(r, "attempt_result"))
        .collect();
    assert_eq!(results, ["interrupted", "busy"], "{records:?}");
    drop(pg);
}
