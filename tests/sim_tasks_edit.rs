//! Editing tasks through the whole pure engine in simulated time, with
//! the real embedded store (docs/tasks-api.md, "Editing a task"): two
//! people editing the same version lose neither edit (the second is
//! refused with the first's result, merges and saves on the new
//! version), every accepted edit is a durable write with its version
//! bumped and is read back after a restart, an agent edits only their
//! own tasks, a new deadline reorders the queue (ahead of a waiting
//! caller once at risk), and a work order's fields never reach a SIP
//! message or a file.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::MediaEvent;
use hotline::store::StoreWrite;
use hotline::tasks::{EditError, OrderKind, TaskEdit, TaskId, TaskSpec, TaskState, WorkOrder};
use serde_json::{json, Value};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The demo config with a trunk for tasks to dial through.
fn cfg() -> hotline::config::Config {
    config(|c| {
        c.trunks.push(trunk(10, 5, false));
        // Simulated callers send no RTP while they wait.
        c.media.inactivity_timeout = secs(3600);
    })
}

/// A caller from `number` is answered by the IVR and presses 2 (repair).
fn call_in(sim: &mut Sim, call_id: &str, number: &str) {
    let invite = invite(call_id, &format!("z9hG4bK-{call_id}"), Some(SDP_OFFER))
        .replace("13800138000", number);
    sim.send(&invite);
    sim.run_for(secs(2));
    let tag = sim.to_tag_for(call_id);
    sim.send(&in_dialog(
        "ACK",
        call_id,
        &format!("z9hG4bK-a{call_id}"),
        1,
        &tag,
        None,
    ));
    let call = *sim.media_started.last().expect("media");
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '2',
            source: DigitSource::Rfc4733,
        },
    );
}

fn repair_fields() -> Value {
    json!({"customer_name": "王建国", "address": "朝阳区建国路 88 号 3 单元 501",
           "fault": "leak", "fault_detail": "燃气表接口漏气"})
}

/// A repair follow-up for `number`, due `due_in` from now, owned by 1001,
/// with its order's fields.
fn repair_follow_up(sim: &mut Sim, number: &str, due_in: Duration) -> TaskId {
    let due = hotline::cdr::format_ms(sim.wall_ms() + due_in.as_millis() as u64);
    let spec = TaskSpec::parse(&json!({
        "kind": "follow_up", "number": number, "queue": "repair", "due": due,
        "owner": "1001", "note": "更换燃气表后回访", "order": repair_fields(),
    }))
    .expect("valid");
    sim.act(|e, now| e.create_task(now, spec))
        .expect("created")
        .0
}

fn edit(body: Value) -> TaskEdit {
    TaskEdit::parse(&body).expect("a valid edit")
}

/// The task writes for `id`: (version, acknowledged before answering).
fn writes_of(sim: &Sim, id: TaskId) -> Vec<(u64, bool)> {
    sim.writes
        .iter()
        .filter_map(|w| match w {
            StoreWrite::Task { task, ack } if task.id == id => Some((task.version, *ack)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_editors_of_one_version_lose_neither_edit_and_each_is_durable() {
    let mut sim = Sim::new(cfg());
    register(&mut sim, "1001");
    on_break(&mut sim, "1001");
    let id = repair_follow_up(&mut sim, "13800000051", secs(24 * 3600));
    let opened = sim.engine.task(id).expect("task").clone();
    assert_eq!(
        opened.order.as_ref().map(|o| o.customer_name.as_str()),
        Some("王建国")
    );
    let v = opened.version;

    // The supervisor and the agent both opened version v. The supervisor
    // saves first: a new note.
    let (first, edited, write) = sim
        .act(|e, now| {
            e.edit_task(
                now,
                id,
                &edit(json!({"version": v, "note": "客户要求上午十点后回访"})),
                None,
            )
        })
        .expect("a fresh version");
    assert_ne!(write, 0, "written");
    assert_eq!(
        (first.version, edited.changed.clone()),
        (v + 1, vec!["note"])
    );

    // The agent saves on the version they opened: refused, with the task
    // as the supervisor left it, and nothing changed.
    let stale = sim.act(|e, now| {
        e.edit_task(
            now,
            id,
            &edit(json!({"version": v, "order": {"address": "朝阳区建国路 90 号"}})),
            Some("1001"),
        )
    });
    let current = match stale {
        Err(EditError::Stale { expected, current }) => {
            assert_eq!(expected, v);
            current
        }
        other => panic!("a stale version is refused: {other:?}"),
    };
    assert_eq!(current.version, v + 1);
    assert_eq!(current.note, "客户要求上午十点后回访");
    assert_eq!(
        sim.engine
            .task(id)
            .and_then(|t| t.order.as_ref())
            .map(|o| o.address.as_str()),
        Some("朝阳区建国路 88 号 3 单元 501"),
        "the refused edit changed nothing"
    );

    // Another agent may not edit 1001's task at all.
    let theirs = sim.act(|e, now| {
        e.edit_task(
            now,
            id,
            &edit(json!({"version": v + 1, "note": "x"})),
            Some("1002"),
        )
    });
    assert!(
        matches!(theirs, Err(EditError::NotOwner { .. })),
        "{theirs:?}"
    );

    // The agent saves again on the current version: both edits stand.
    let (second, edited, _) = sim
        .act(|e, now| {
            e.edit_task(
                now,
                id,
                &edit(json!({"version": current.version,
                              "order": {"address": "朝阳区建国路 90 号"}})),
                Some("1001"),
            )
        })
        .expect("merged");
    assert_eq!(edited.changed, vec!["order"]);
    assert_eq!(second.version, v + 2);
    assert_eq!(second.note, "客户要求上午十点后回访");
    let order = second.order.clone().expect("the order");
    assert_eq!(order.address, "朝阳区建国路 90 号");
    assert_eq!(order.customer_name, "王建国", "the other fields kept");
    assert_eq!(order.fault_detail.as_deref(), Some("燃气表接口漏气"));

    // Each edit was written whole, acknowledged before the answer, with
    // its version.
    let writes = writes_of(&sim, id);
    assert!(
        writes.ends_with(&[(v + 1, true), (v + 2, true)]),
        "{writes:?}"
    );

    // A restart on the same store reads both back.
    let dir = sim.store_dir.clone();
    let wall = sim.wall_ms();
    drop(sim);
    let sim = Sim::with_store(cfg(), dir, Instant::now(), wall + 10_000);
    let back = sim.engine.task(id).expect("kept").clone();
    assert_eq!(back.version, v + 2);
    assert_eq!(back.note, "客户要求上午十点后回访");
    assert_eq!(back.order, Some(order));
}

#[test]
fn a_new_deadline_reorders_the_queue_and_at_risk_goes_ahead_of_a_caller() {
    let mut sim = Sim::new(cfg());
    register(&mut sim, "1001");
    on_break(&mut sim, "1001");
    let sooner = repair_follow_up(&mut sim, "13800000061", secs(3 * 3600));
    let later = repair_follow_up(&mut sim, "13800000062", secs(5 * 3600));
    // A live caller waits for repair too.
    call_in(&mut sim, "live", "13600000061");
    sim.run_for(secs(5));
    // The later task is now due in 10 minutes: at risk (the margin is
    // 30 minutes), so ahead of the caller and of the other task.
    let due = hotline::cdr::format_ms(sim.wall_ms() + 10 * 60_000);
    let v = sim.engine.task(later).map(|t| t.version).expect("task");
    let (task, edited, _) = sim
        .act(|e, now| e.edit_task(now, later, &edit(json!({"version": v, "due": due})), None))
        .expect("edited");
    assert_eq!(edited.changed, vec!["due"]);
    assert_eq!(task.order_ms, task.due_ms.expect("a deadline"));
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", later.0)),
        "the task brought forward comes first: {inv}"
    );
    answer(&mut sim, "1001", &inv, 486);
    on_break(&mut sim, "1001");
    sim.run_for(secs(6));
    assert_eq!(
        sim.engine.task(sooner).map(|t| t.state),
        Some(TaskState::Open)
    );
    // The other task, not at risk, waits behind the live caller.
    let v = sim.engine.task(later).map(|t| t.version).expect("task");
    let far = hotline::cdr::format_ms(sim.wall_ms() + 48 * 3600 * 1000);
    sim.act(|e, now| e.edit_task(now, later, &edit(json!({"version": v, "due": far})), None))
        .expect("moved back");
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 1);
    assert!(
        inv.contains("X-Hotline-Caller: 13600000061") && !inv.contains("X-Hotline-Task"),
        "the caller before tasks not at risk: {inv}"
    );
}

#[test]
fn an_order_s_fields_reach_neither_a_sip_message_nor_a_file() {
    let mut sim = Sim::new(cfg());
    register(&mut sim, "1001");
    call_in(&mut sim, "o1", "13800000071");
    let inv = next_agent_invite(&mut sim, "1001", 0);
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(10));
    let call_id = sim
        .engine
        .desk(sim.now, "1001")
        .and_then(|d| d.call)
        .map(|c| c.call_id)
        .expect("connected");
    let fields = repair_fields();
    let order = WorkOrder::parse(
        OrderKind::Repair,
        fields.as_object().expect("an object"),
        "",
    )
    .expect("valid");
    let (id, _) = sim
        .act(|e, now| {
            e.make_order(
                now,
                "1001",
                &call_id,
                order.clone(),
                None,
                "更换燃气表".into(),
            )
        })
        .expect("made");
    // On the agent's list with its fields.
    let desk = sim.engine.desk(sim.now, "1001").expect("agent");
    let listed = desk.tasks.iter().find(|t| t.id == id).expect("listed");
    assert_eq!(listed.order, Some(order));
    // The caller hangs up; the follow-up is offered, answered, and the
    // customer dialled through the trunk.
    let tag = sim.to_tag_for("o1");
    sim.send(&in_dialog("BYE", "o1", "z9hG4bK-bo1", 2, &tag, None));
    let inv = next_agent_invite(&mut sim, "1001", 1);
    assert!(inv.contains(&format!("X-Hotline-Task: {}", id.0)), "{inv}");
    answer(&mut sim, "1001", &inv, 200);
    run_until(&mut sim, secs(60), "the customer is dialled", |s| {
        !invites_to(s, trunk_peer()).is_empty()
    });
    for text in ["王建国", "建国路", "燃气表接口漏气", "更换燃气表"] {
        for sent in &sim.sent {
            assert!(!sent.text.contains(text), "{text:?} in {}", sent.text);
        }
        for (file, line) in &sim.lines {
            assert!(
                !file.contains(text) && !line.contains(text),
                "{file}: {line}"
            );
        }
    }
}
