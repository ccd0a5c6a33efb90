//! One node of several sharing a store (docs/cluster.md), in simulated
//! time: the engine's requests to the shared store are captured and the
//! test answers them as the store would, so that what the node does with
//! each answer is checked exactly (the store's own side runs against
//! PostgreSQL in tests/interop_cluster.rs).

mod common;

use std::time::Duration;

use common::*;
use hotline::cluster::{ClusterEvent, ClusterRequest, SharedBinding};
use hotline::engine::{AgentCommand, Peer, Transport};
use hotline::io::Input;

fn node_config() -> hotline::config::Config {
    config(|c| {
        c.store.url = Some("postgres://hotline@db.example/hotline".into());
        c.node.id = Some("a".into());
    })
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The claims asked for so far: (claim, agent, queue).
fn claims(sim: &Sim) -> Vec<(u64, String, String)> {
    sim.cluster
        .iter()
        .filter_map(|r| match r {
            ClusterRequest::Claim {
                claim,
                agent,
                queue,
                ..
            } => Some((*claim, agent.clone(), queue.clone())),
            _ => None,
        })
        .collect()
}

fn store_says(sim: &mut Sim, event: ClusterEvent) {
    sim.act(|engine, now| engine.handle_input(now, Input::Cluster(event)));
}

fn queue_log_has(sim: &Sim, what: &str) -> bool {
    sim.lines
        .iter()
        .any(|(file, line)| file == "queue_log" && line.contains(what))
}

#[test]
fn an_agent_is_rung_only_once_the_store_grants_the_claim() {
    let mut sim = Sim::new(node_config());
    register(&mut sim, "1001");
    // Its phone and status are told to the store.
    assert!(sim.cluster.iter().any(|r| matches!(
        r,
        ClusterRequest::Bindings { user, bindings } if user == "1001" && bindings.len() == 1
    )));
    assert!(sim.cluster.iter().any(|r| matches!(
        r,
        ClusterRequest::Status { agent, .. } if agent == "1001"
    )));
    caller_presses(&mut sim, "c1", '2');
    let asked = claims(&sim);
    assert_eq!(asked.len(), 1, "{:?}", sim.cluster);
    assert_eq!(
        (asked[0].1.as_str(), asked[0].2.as_str()),
        ("1001", "repair")
    );
    assert!(
        invite_to(&sim, "1001").is_none(),
        "not rung before the claim"
    );
    sim.run_for(secs(1));
    assert!(invite_to(&sim, "1001").is_none());
    store_says(
        &mut sim,
        ClusterEvent::Claimed {
            claim: asked[0].0,
            granted: true,
        },
    );
    let invite = invite_to(&sim, "1001").expect("rung once granted");
    assert!(invite.contains("X-Hotline-Queue: repair"), "{invite}");
    // The node's name is in its records' ids.
    sim.send(&in_dialog(
        "BYE",
        "c1",
        "z9hG4bK-bye",
        2,
        &sim.to_tag_for("c1"),
        None,
    ));
    sim.run_for(secs(2));
    let record = sim.records.last().expect("the caller's record");
    assert!(record.call_id.starts_with("hl-a-"), "{}", record.call_id);
    // The agent is idle again: this node's claim ends.
    assert!(sim.cluster.iter().any(|r| matches!(
        r,
        ClusterRequest::Release { agent } if agent == "1001"
    )));
}

#[test]
fn a_refused_claim_leaves_the_caller_in_place_until_the_agent_is_free_again() {
    let mut sim = Sim::new(node_config());
    register(&mut sim, "1001");
    caller_presses(&mut sim, "c1", '2');
    let first = claims(&sim)[0].0;
    sim.cluster.clear();
    store_says(
        &mut sim,
        ClusterEvent::Claimed {
            claim: first,
            granted: false,
        },
    );
    assert!(invite_to(&sim, "1001").is_none());
    // Waiting again, as other nodes must see, and nothing rang: no
    // RINGNOANSWER, no no-answer counted.
    assert!(sim.cluster.iter().any(|r| matches!(
        r,
        ClusterRequest::Waiting { queue, .. } if queue == "repair"
    )));
    assert!(!queue_log_has(&sim, "RINGNOANSWER"));
    assert!(claims(&sim).is_empty(), "the agent is held elsewhere now");
    sim.run_for(secs(5));
    assert!(claims(&sim).is_empty());
    // The other node's call ends: offered here again.
    store_says(
        &mut sim,
        ClusterEvent::AgentHeld {
            agent: "1001".into(),
            held: false,
        },
    );
    let again = claims(&sim);
    assert_eq!(again.len(), 1);
    assert!(again[0].0 > first, "a new claim");
    store_says(
        &mut sim,
        ClusterEvent::Claimed {
            claim: again[0].0,
            granted: true,
        },
    );
    assert!(invite_to(&sim, "1001").is_some());
}

#[test]
fn a_caller_waiting_on_another_node_goes_first() {
    let mut sim = Sim::new(node_config());
    register(&mut sim, "1001");
    sim.act(|engine, now| {
        engine.agent_command(
            now,
            "1001",
            AgentCommand::Break {
                reason: "meeting".into(),
            },
        )
    });
    caller_presses(&mut sim, "c1", '2');
    sim.cluster.clear();
    // Another node's caller arrived a minute ago.
    let earlier = sim.wall_ms() - 60_000;
    store_says(
        &mut sim,
        ClusterEvent::RemoteWaiting {
            entry: 9,
            queue: "repair".into(),
            priority: 1,
            arrival_ms: earlier,
        },
    );
    // The agent's status set on the other node.
    store_says(
        &mut sim,
        ClusterEvent::AgentStatus {
            agent: "1001".into(),
            status: hotline::acd::AgentStatus::Available,
        },
    );
    assert!(
        claims(&sim).is_empty(),
        "the earlier caller elsewhere first"
    );
    // A status the store told is not told back.
    assert!(!sim.cluster.iter().any(|r| matches!(
        r,
        ClusterRequest::Status {
            status: hotline::acd::AgentStatus::Available,
            ..
        }
    )));
    store_says(&mut sim, ClusterEvent::RemoteGone { entry: 9 });
    assert_eq!(claims(&sim).len(), 1, "then ours");
}

#[test]
fn without_the_store_callers_are_offered_a_message_and_served_when_it_is_back() {
    let mut sim = Sim::new(node_config());
    register(&mut sim, "1001");
    store_says(
        &mut sim,
        ClusterEvent::AgentHeld {
            agent: "1001".into(),
            held: true,
        },
    );
    caller_presses(&mut sim, "c1", '2');
    assert!(claims(&sim).is_empty());
    store_says(&mut sim, ClusterEvent::StoreLost);
    // The waiting caller leaves for the IVR's fallback: "no agent can
    // take your call", then a message.
    assert!(queue_log_has(&sim, "EXITEMPTY"), "{:?}", sim.lines);
    sim.run_for(secs(10));
    assert!(
        sim.played_names().iter().any(|n| n == "leave_message"),
        "{:?}",
        sim.played_names()
    );
    // A new caller asking for an agent is offered the message at once.
    caller_presses(&mut sim, "c2", '2');
    sim.run_for(secs(1));
    let exits = sim
        .lines
        .iter()
        .filter(|(f, l)| f == "queue_log" && l.contains("EXITEMPTY"))
        .count();
    assert_eq!(exits, 2);
    assert!(claims(&sim).is_empty(), "no claim without the store");
    // The store is back (and says the agent is free): served again.
    store_says(&mut sim, ClusterEvent::StoreBack);
    store_says(
        &mut sim,
        ClusterEvent::AgentHeld {
            agent: "1001".into(),
            held: false,
        },
    );
    caller_presses(&mut sim, "c3", '2');
    assert_eq!(claims(&sim).len(), 1, "{:?}", sim.cluster);
}

#[test]
fn an_agent_registered_through_another_node_is_rung_through_its_path() {
    let mut sim = Sim::new(node_config());
    let edge: std::net::SocketAddr = "127.0.0.1:5066".parse().expect("addr");
    let path = "<sip:127.0.0.1:5066;lr;received=sip:10.0.0.9:5060>".to_string();
    let expires_ms = sim.wall_ms() + 60_000;
    store_says(
        &mut sim,
        ClusterEvent::RemoteBindings {
            user: "1001".into(),
            bindings: vec![SharedBinding {
                contact: "sip:1001@10.0.0.9:5060".into(),
                source: edge,
                transport: Transport::Udp,
                path: vec![path.clone()],
                expires_ms,
            }],
        },
    );
    assert!(sim.engine.agent_registered("1001"));
    // Not told back to the store as this node's phone.
    assert!(!sim
        .cluster
        .iter()
        .any(|r| matches!(r, ClusterRequest::Bindings { bindings, .. } if !bindings.is_empty())));
    sim.act(|engine, now| engine.agent_command(now, "1001", AgentCommand::Login));
    caller_presses(&mut sim, "c1", '2');
    let claim = claims(&sim)[0].0;
    store_says(
        &mut sim,
        ClusterEvent::Claimed {
            claim,
            granted: true,
        },
    );
    let sent = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.text.starts_with("INVITE sip:1001@10.0.0.9:5060"))
        .expect("the agent's INVITE");
    let to_edge = Peer {
        transport: Transport::Udp,
        addr: edge,
        conn: 0,
    };
    assert_eq!(sent.peer, to_edge, "sent to the edge proxy");
    assert!(
        sent.text.contains(&format!("Route: {path}")),
        "{}",
        sent.text
    );
    // The phone's binding runs out: the agent is unreachable here too.
    sim.run_for(secs(61));
    assert!(!sim.engine.agent_registered("1001"));
}

#[test]
fn a_campaign_number_another_node_dials_first_is_not_dialled_here() {
    let mut sim = Sim::new(config(|c| {
        c.store.url = Some("postgres://hotline@db.example/hotline".into());
        c.node.id = Some("a".into());
        c.trunks.push(trunk(30, 10, false));
    }));
    sim.attempts_taken = true;
    sim.create_campaign(serde_json::json!({
        "name": "gas outage", "trunk": "pstn", "prompt": "goodbye",
        "numbers": ["13800000001", "13800000002"]
    }));
    sim.run_for(secs(3 * 3600));
    let invites = sim
        .sent
        .iter()
        .filter(|s| s.text.starts_with("INVITE sip:1380000000"))
        .count();
    assert_eq!(invites, 0, "both numbers are the other node's");
    // Nothing is written about attempts this node never made, and no
    // record says it made one.
    assert!(!sim
        .writes
        .iter()
        .any(|w| matches!(w, hotline::store::StoreWrite::AttemptEnded { .. })));
    assert!(sim.records.iter().all(|r| r.campaign.is_none()));
    // Its trunk's channels are free for other calls.
    sim.attempts_taken = false;
    sim.create_campaign(serde_json::json!({
        "name": "second", "trunk": "pstn", "prompt": "goodbye",
        "numbers": ["13900000001"]
    }));
    sim.run_for(secs(120));
    assert!(sim
        .sent
        .iter()
        .any(|s| s.text.starts_with("INVITE sip:13900000001")));
}
