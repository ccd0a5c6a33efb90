//! One node of several sharing a store (docs/cluster.md), in simulated
//! time: the engine's requests to the shared store are captured and the
//! test answers them as the store would, so that what the node does with
//! each answer is checked exactly (the store's own side runs against
//! PostgreSQL in tests/interop_cluster.rs).

mod common;

use std::time::Duration;

use common::*;
use hotline::campaign::{Attempt, AttemptResult, Campaign, CampaignSpec, NumberState};
use hotline::cluster::{ClusterEvent, ClusterRequest, SharedBinding};
use hotline::engine::{AgentCommand, CampaignCommand, Peer, Transport};
use hotline::io::Input;
use hotline::shell::store::Store;
use hotline::store::{Changed, ChangedTarget, StoreWrite, StoredCampaign, StoredWork, WorkChanges};
use hotline::tasks::TaskSpec;

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

/// Node a's config, with a trunk for campaigns and tasks.
fn dialing_node(id: &str) -> hotline::config::Config {
    config(|c| {
        c.store.url = Some("postgres://hotline@db.example/hotline".into());
        c.node.id = Some(id.into());
        c.trunks.push(trunk(30, 10, false));
        c.media.inactivity_timeout = secs(3600);
    })
}

fn changes(sim: &mut Sim, changes: WorkChanges) {
    sim.act(|engine, now| engine.handle_input(now, Input::WorkChanged(Box::new(changes))));
}

fn invites_to_number(sim: &Sim, number: &str) -> usize {
    let start = format!("INVITE sip:{number}");
    sim.sent
        .iter()
        .filter(|s| s.text.starts_with(&start))
        .count()
}

#[test]
fn another_nodes_campaign_is_shown_never_dialled_and_taken_over_when_its_node_dies() {
    let mut sim = Sim::new(dialing_node("a"));
    sim.grant_claims = true;
    let (first, second) = ("13800000001", "13800000002");
    let spec = CampaignSpec::parse(
        &serde_json::json!({"name": "gas outage", "trunk": "pstn", "prompt": "goodbye",
                            "numbers": [first, second]}),
        None,
        480,
    )
    .expect("spec");
    let created = sim.wall_ms();
    let id = sim
        .store
        .create_campaign(&spec, created, None)
        .expect("stored");
    // Node b runs it, and is on the first number's first attempt.
    let mut campaign = Campaign::new(id, spec, created);
    let on_the_line = Attempt {
        number: 1,
        at_ms: created,
        ended_ms: None,
        result: None,
        sip_status: 0,
        call_id: Some("hl-b-1".into()),
    };
    campaign.targets[0].state = NumberState::Dialing;
    campaign.targets[0].due_ms = None;
    campaign.targets[0].attempts.push(on_the_line.clone());
    changes(
        &mut sim,
        WorkChanges {
            campaigns: vec![Changed {
                item: StoredCampaign {
                    campaign: campaign.clone(),
                    prompt_audio: None,
                },
                foreign: true,
            }],
            ..WorkChanges::default()
        },
    );
    sim.run_for(secs(15 * 60));
    assert_eq!(
        invites_to_number(&sim, first) + invites_to_number(&sim, second),
        0
    );
    let shown = sim.engine.campaign(id).expect("shown here");
    assert_eq!(shown.targets[0].state, NumberState::Dialing);

    // Node b's call is heard: this node's copy follows, and knows the
    // number heard the notice.
    let mut heard = campaign.targets[0].clone();
    heard.state = NumberState::Confirmed;
    heard.attempts[0].ended_ms = Some(created + 40_000);
    heard.attempts[0].result = Some(AttemptResult::Confirmed);
    heard.attempts[0].sip_status = 200;
    changes(
        &mut sim,
        WorkChanges {
            targets: vec![ChangedTarget {
                campaign: id,
                index: 0,
                target: heard.clone(),
            }],
            ..WorkChanges::default()
        },
    );
    let shown = sim.engine.campaign(id).expect("shown here");
    assert_eq!(shown.targets[0], heard);

    // Node b dies on the second number's first attempt; this node takes
    // the campaign over as the store holds it.
    campaign.targets[0] = heard;
    campaign.targets[1].state = NumberState::Dialing;
    campaign.targets[1].due_ms = None;
    campaign.targets[1].attempts.push(Attempt {
        at_ms: sim.wall_ms() - 5_000,
        call_id: Some("hl-b-2".into()),
        ..on_the_line
    });
    let adopted = StoredWork {
        campaigns: vec![StoredCampaign {
            campaign,
            prompt_audio: None,
        }],
        ..StoredWork::default()
    };
    let taken_at = sim.now;
    sim.act(|engine, now| engine.handle_input(now, Input::WorkAdopted(Box::new(adopted))));
    // Its call there left no record: one here says it was interrupted,
    // and the attempt's end is written.
    let interrupted = sim
        .records
        .iter()
        .find(|r| r.campaign == Some(id.0))
        .expect("a record for the attempt b was making");
    assert_eq!(interrupted.attempt_result.as_deref(), Some("interrupted"));
    assert!(sim.writes.iter().any(|w| matches!(
        w,
        StoreWrite::AttemptEnded { campaign, target: 1, attempt, .. }
            if *campaign == id && attempt.result == Some(AttemptResult::Interrupted)
    )));
    // Retried on the schedule (10 min after an interruption), never at
    // once, and the number heard is never called again.
    sim.run_until(taken_at + secs(9 * 60));
    assert_eq!(
        invites_to_number(&sim, second),
        0,
        "not the same attempt twice"
    );
    sim.run_until(taken_at + secs(11 * 60));
    assert!(
        invites_to_number(&sim, second) > 0,
        "retried by the survivor"
    );
    assert_eq!(invites_to_number(&sim, first), 0);
}

/// A follow-up due now, created on the node `sim` is.
fn follow_up_now(sim: &mut Sim, number: &str) -> hotline::tasks::Task {
    let due = hotline::cdr::format_ms(sim.wall_ms() + 3_600_000);
    let spec = TaskSpec::parse(&serde_json::json!({
        "kind": "follow_up", "number": number, "queue": "repair", "due": due,
    }))
    .expect("valid");
    let id = sim
        .act(|e, now| e.create_task(now, spec))
        .expect("created")
        .0;
    sim.engine.task(id).expect("kept").clone()
}

#[test]
fn another_nodes_task_is_kept_not_offered_until_taken_over() {
    let mut b = Sim::new(dialing_node("b"));
    let task = follow_up_now(&mut b, "13800000021");
    let mut a = Sim::new(dialing_node("a"));
    a.grant_claims = true;
    register(&mut a, "1001");
    changes(
        &mut a,
        WorkChanges {
            tasks: vec![Changed {
                item: task.clone(),
                foreign: true,
            }],
            ..WorkChanges::default()
        },
    );
    a.run_for(secs(120));
    assert!(invite_to(&a, "1001").is_none(), "node b offers it, not a");
    assert_eq!(a.engine.task(task.id), Some(&task), "but a shows it");
    // Node b dies: node a takes the task over and offers it.
    let adopted = StoredWork {
        tasks: vec![task.clone()],
        ..StoredWork::default()
    };
    a.act(|engine, now| engine.handle_input(now, Input::WorkAdopted(Box::new(adopted))));
    a.run_for(secs(5));
    let offer = invite_to(&a, "1001").expect("offered after the takeover");
    assert!(
        offer.contains(&format!("X-Hotline-Task: {}", task.id.0)),
        "{offer}"
    );
}

#[test]
fn a_task_cancelled_on_another_node_leaves_this_nodes_queue() {
    let mut a = Sim::new(dialing_node("a"));
    a.grant_claims = true;
    register(&mut a, "1001");
    on_break(&mut a, "1001");
    let task = follow_up_now(&mut a, "13800000031");
    a.run_for(secs(5));
    // Cancelled through node b's API, from the version node a wrote.
    let mut cancelled = task.clone();
    cancelled.state = hotline::tasks::TaskState::Cancelled;
    cancelled.closed_ms = Some(a.wall_ms());
    cancelled.version += 1;
    changes(
        &mut a,
        WorkChanges {
            tasks: vec![Changed {
                item: cancelled.clone(),
                foreign: false,
            }],
            ..WorkChanges::default()
        },
    );
    assert_eq!(a.engine.task(task.id), Some(&cancelled));
    available(&mut a, "1001");
    a.run_for(secs(60));
    assert!(
        invite_to(&a, "1001").is_none(),
        "a cancelled task is not offered"
    );
    // Node a does not write it back: the store already has it.
    assert!(!a.writes.iter().any(|w| matches!(
        w,
        StoreWrite::Task { task: t, .. } if t.version > cancelled.version
    )));
}

#[test]
fn a_note_edited_on_another_node_during_the_call_is_kept_with_this_nodes_attempt() {
    let mut a = Sim::new(dialing_node("a"));
    a.grant_claims = true;
    register(&mut a, "1001");
    let task = follow_up_now(&mut a, "13800000041");
    let offer = next_agent_invite(&mut a, "1001", 0);
    assert!(
        offer.contains(&format!("X-Hotline-Task: {}", task.id.0)),
        "{offer}"
    );
    let ringing = a.engine.task(task.id).expect("t").clone();
    assert_eq!(ringing.state, hotline::tasks::TaskState::Offered);
    // Node b's desk edits the note of the version it was shown.
    let mut edited = ringing.clone();
    edited.note = "客户下午在家".into();
    edited.version += 1;
    changes(
        &mut a,
        WorkChanges {
            tasks: vec![Changed {
                item: edited.clone(),
                foreign: false,
            }],
            ..WorkChanges::default()
        },
    );
    let now = a.engine.task(task.id).expect("t").clone();
    assert_eq!(now.note, "客户下午在家");
    assert_eq!(
        now.state,
        hotline::tasks::TaskState::Offered,
        "the offer stands"
    );
    assert_eq!(now.version, edited.version + 1, "written over the other's");
    assert!(a.writes.iter().any(|w| matches!(
        w,
        StoreWrite::Task { task: t, .. } if t.version == now.version && t.note == now.note
    )));
}

#[test]
fn a_campaign_paused_on_another_node_is_paused_by_the_node_running_it() {
    let mut a = Sim::new(dialing_node("a"));
    let numbers: Vec<String> = (1..=3).map(|i| format!("1380000010{i}")).collect();
    let id = a.create_campaign(serde_json::json!({
        "name": "outage", "trunk": "pstn", "prompt": "goodbye",
        "numbers": numbers, "first_after": "60s", "max_concurrent": 1
    }));
    // Paused through node b's API before its first call.
    let mut paused = a.engine.campaign(id).expect("runs here").clone();
    paused.state = hotline::campaign::CampaignState::Paused;
    let stored = |campaign| StoredCampaign {
        campaign,
        prompt_audio: None,
    };
    changes(
        &mut a,
        WorkChanges {
            campaigns: vec![Changed {
                item: stored(paused.clone()),
                foreign: false,
            }],
            ..WorkChanges::default()
        },
    );
    a.run_for(secs(10 * 60));
    let dialled = |sim: &Sim| {
        numbers
            .iter()
            .map(|n| invites_to_number(sim, n))
            .sum::<usize>()
    };
    assert_eq!(dialled(&a), 0, "paused by the runner");
    assert_eq!(
        a.engine.campaign(id).map(|c| c.state),
        Some(hotline::campaign::CampaignState::Paused)
    );
    // Resumed there: the runner dials again.
    let mut resumed = paused;
    resumed.state = hotline::campaign::CampaignState::Running;
    changes(
        &mut a,
        WorkChanges {
            campaigns: vec![Changed {
                item: stored(resumed),
                foreign: false,
            }],
            ..WorkChanges::default()
        },
    );
    a.run_for(secs(5));
    assert!(dialled(&a) > 0, "resumed by the runner");
}

#[test]
fn a_command_for_another_nodes_campaign_is_written_for_its_runner_to_apply() {
    let mut b = Sim::new(dialing_node("b"));
    let id = b.create_campaign(serde_json::json!({
        "name": "outage", "trunk": "pstn", "prompt": "goodbye",
        "numbers": ["13800000201", "13800000202"], "first_after": "1h"
    }));
    let campaign = b.engine.campaign(id).expect("b runs it").clone();
    let mut a = Sim::new(dialing_node("a"));
    changes(
        &mut a,
        WorkChanges {
            campaigns: vec![Changed {
                item: StoredCampaign {
                    campaign,
                    prompt_audio: None,
                },
                foreign: true,
            }],
            ..WorkChanges::default()
        },
    );
    let before = a.writes.len();
    let state = a.act(|e, now| e.campaign_command(now, id, CampaignCommand::Cancel));
    assert_eq!(state, Ok(hotline::campaign::CampaignState::Cancelled));
    // The state only: the numbers are the runner's to cancel.
    assert_eq!(
        &a.writes[before..],
        &[StoreWrite::Campaign {
            campaign: id,
            state: hotline::campaign::CampaignState::Cancelled,
        }]
    );
}
