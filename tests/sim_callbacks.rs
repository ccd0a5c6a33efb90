//! Callbacks and tasks through the whole pure engine in simulated time,
//! with the real embedded store: a callback keeps its caller's place
//! between two live callers (agent first and customer first), retries on
//! its schedule and fails when nobody is reached, tasks are worked
//! earliest deadline first and ahead of calls once at risk, a repeat
//! caller goes to the agent who took their last call, and tasks survive a
//! restart.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hotline::ids::CallKey;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::MediaEvent;
use hotline::tasks::{CallbackMode, TaskId, TaskKind, TaskOutcome, TaskSpec, TaskState};
use serde_json::json;

const TRUNK: &str = "127.0.0.1:5090";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The demo config with a trunk; the repair queue offers a callback after
/// 20 s of waiting, in `mode`, two attempts a minute apart.
fn sim_with(mode: CallbackMode) -> Sim {
    Sim::new(config(|c| {
        c.trunks.push(trunk(10, 5, false));
        // Simulated callers send no RTP while they wait.
        c.media.inactivity_timeout = secs(3600);
        for q in &mut c.queues {
            q.callback_after = Some(secs(20));
            q.callback_mode = mode;
            q.callback_attempts = 2;
            q.callback_retry = secs(60);
        }
    }))
}

/// A caller from `number` is answered by the IVR and presses `key` (2:
/// repair); returns the call.
fn call_in(sim: &mut Sim, call_id: &str, number: &str, key: char) -> CallKey {
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
    press(sim, call, key);
    call
}

fn press(sim: &mut Sim, call: CallKey, digit: char) {
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit,
            source: DigitSource::Rfc4733,
        },
    );
}

/// The caller of `call_id` hangs up.
fn caller_hangs_up(sim: &mut Sim, call_id: &str) {
    let tag = sim.to_tag_for(call_id);
    sim.send(&in_dialog(
        "BYE",
        call_id,
        &format!("z9hG4bK-b{call_id}"),
        2,
        &tag,
        None,
    ));
}

/// Names of the prompts played to one call's customer.
fn played_to(sim: &Sim, call: CallKey) -> Vec<String> {
    sim.played
        .iter()
        .filter(|(_, c, _)| *c == call)
        .map(|(_, _, p)| {
            let n = &sim.prompts.get(*p).name;
            n.split_once('/').map_or(n.as_str(), |(_, r)| r).to_string()
        })
        .collect()
}

/// The callee behind the trunk hangs up the call `invite` set up.
fn callee_hangs_up(sim: &mut Sim, invite: &str) {
    let bye = format!(
        "BYE sip:hotline@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bK-cbye\r\nMax-Forwards: 70\r\nFrom: {};tag=callee\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 5 BYE\r\nContent-Length: 0\r\n\r\n",
        header(invite, "To"),
        header(invite, "From"),
        header(invite, "Call-ID"),
    );
    sim.send_bytes(trunk_peer(), bye.as_bytes());
}

/// The only task the engine knows of.
fn only_task(sim: &Sim) -> hotline::tasks::Task {
    let tasks: Vec<_> = sim.engine.tasks().cloned().collect();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    tasks[0].clone()
}

/// Callers A, B and C queue for repair in that order with the agent on
/// break; B takes the callback after 20 s, confirms the number read back
/// 3-4-4 and is hung up. Returns (A, B, C).
fn three_callers_and_a_callback(sim: &mut Sim) -> (CallKey, CallKey, CallKey) {
    register(sim, "1001");
    on_break(sim, "1001");
    let a = call_in(sim, "ca", "13800000001", '2');
    sim.run_for(secs(1));
    let b = call_in(sim, "cb", "13900000002", '2');
    sim.run_for(secs(1));
    let c = call_in(sim, "cc", "13700000003", '2');
    run_until(sim, secs(30), "the callback offer", |s| {
        played_to(s, b).iter().any(|n| n == "callback_offer")
    });
    press(sim, b, '1');
    sim.run_for(secs(12));
    let readback = played_to(sim, b);
    let from = readback
        .iter()
        .position(|n| n == "callback_number_is")
        .expect("the number is read back");
    let spoken: String = readback[from + 1..]
        .iter()
        .take_while(|n| *n != "callback_confirm")
        .map(|n| n.strip_prefix("digits/").unwrap_or(" "))
        .collect();
    assert_eq!(spoken, "139 0000 0002", "a mobile number is read 3-4-4");
    press(sim, b, '1');
    run_until(sim, secs(20), "B is hung up", |s| {
        s.records.iter().any(|r| r.sip_call_id == "cb")
    });
    let record = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "cb")
        .expect("B's record");
    assert_eq!(record.queue_result.as_deref(), Some("callback"));
    let task = only_task(sim);
    assert_eq!(record.callback_task, Some(task.id.0));
    assert_eq!(task.kind, TaskKind::Callback);
    assert_eq!(task.number, "13900000002");
    assert_eq!(task.origin_call.as_deref(), Some(record.call_id.as_str()));
    assert!(played_to(sim, b).iter().any(|n| n == "callback_booked"));
    assert!(
        sim.lines
            .iter()
            .any(|(f, l)| f == "queue_log" && l.contains("|EXITWITHCALLBACK|")),
        "the queue_log says the caller left for a callback"
    );
    (a, b, c)
}

#[test]
fn an_agent_first_callback_keeps_its_place_between_two_live_callers() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    let (_a, _b, _c) = three_callers_and_a_callback(&mut sim);
    available(&mut sim, "1001");

    // A first: they were ahead.
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(inv.contains("X-Hotline-Caller: 13800000001"), "{inv}");
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(5));
    caller_hangs_up(&mut sim, "ca");

    // Then B's callback, ahead of C who is still on the line.
    let inv = next_agent_invite(&mut sim, "1001", 1);
    assert!(inv.contains("X-Hotline-Caller: 13900000002"), "{inv}");
    assert!(inv.contains("X-Hotline-Task-Kind: callback"), "{inv}");
    let task = only_task(&sim);
    assert_eq!(task.state, TaskState::Offered);
    assert!(
        invites_to(&sim, trunk_peer()).is_empty(),
        "the customer is dialled only once the agent has answered"
    );
    answer(&mut sim, "1001", &inv, 200);
    // The agent hears the task and the number, then the customer is dialled.
    run_until(&mut sim, secs(30), "the INVITE to the customer", |s| {
        !invites_to(s, trunk_peer()).is_empty()
    });
    let out = invites_to(&sim, trunk_peer())[0].clone();
    assert!(
        out.starts_with("INVITE sip:13900000002@127.0.0.1:5090"),
        "{out}"
    );
    assert_eq!(only_task(&sim).state, TaskState::Dialing);
    let attempt_durable = sim.writes.iter().any(|w| {
        matches!(w, hotline::store::StoreWrite::Task { task, ack: true }
            if task.state == TaskState::Dialing)
    });
    assert!(attempt_durable, "the attempt was written before the INVITE");
    trunk_says(&mut sim, &out, 200, "");
    assert_eq!(only_task(&sim).state, TaskState::Connected);
    let bridged = sim.bridged.len();
    assert!(bridged > 0, "customer and agent bridged");
    sim.run_for(secs(30));
    callee_hangs_up(&mut sim, &out);
    let record = sim
        .records
        .iter()
        .find(|r| r.task == Some(task.id.0))
        .expect("the callback's record")
        .clone();
    let origin = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "cb")
        .expect("B's record");
    assert_eq!(record.origin_call.as_deref(), Some(origin.call_id.as_str()));
    assert_eq!(record.direction.as_deref(), Some("outbound"));
    assert_eq!(record.attempt_result.as_deref(), Some("answered"));
    assert_eq!(record.agent.as_deref(), Some("1001"));
    assert!(record.talk_ms.unwrap_or(0) >= 29_000, "{record:?}");
    let task = only_task(&sim);
    assert_eq!(task.state, TaskState::Done);
    assert!(task.time_to_answer_ms().is_some());

    // C last.
    let inv = next_agent_invite(&mut sim, "1001", 2);
    assert!(inv.contains("X-Hotline-Caller: 13700000003"), "{inv}");

    // The agent records the outcome by feature code: *71 satisfied.
    let outcome = sim.act(|e, now| e.task_outcome(now, task.id, TaskOutcome::Satisfied));
    assert_eq!(outcome.map(|t| t.outcome), Ok(Some(TaskOutcome::Satisfied)));
}

#[test]
fn a_customer_first_callback_dials_the_customer_then_queues_them_at_the_head() {
    let mut sim = sim_with(CallbackMode::CustomerFirst);
    let (_a, _b, _c) = three_callers_and_a_callback(&mut sim);
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(inv.contains("X-Hotline-Caller: 13800000001"), "{inv}");
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(5));
    assert!(
        invites_to(&sim, trunk_peer()).is_empty(),
        "no agent free: the customer is not dialled yet"
    );
    caller_hangs_up(&mut sim, "ca");
    // The agent is free again after wrap-up: B is at the head, so the
    // customer is dialled before any agent is rung.
    run_until(&mut sim, secs(60), "the customer is dialled", |s| {
        !invites_to(s, trunk_peer()).is_empty()
    });
    let out = invites_to(&sim, trunk_peer())[0].clone();
    assert!(out.starts_with("INVITE sip:13900000002@"), "{out}");
    // While the customer's phone rings the agent is not held idle: C is
    // offered meanwhile (and does not answer here).
    let c_offer = next_agent_invite(&mut sim, "1001", 1);
    assert!(
        c_offer.contains("X-Hotline-Caller: 13700000003"),
        "{c_offer}"
    );
    trunk_says(&mut sim, &out, 200, "");
    // The customer answered: first for the next free agent, ahead of C.
    let inv = next_agent_invite(&mut sim, "1001", 2);
    assert!(inv.contains("X-Hotline-Task-Kind: callback"), "{inv}");
    assert!(inv.contains("X-Hotline-Caller: 13900000002"), "{inv}");
    answer(&mut sim, "1001", &inv, 200);
    run_until(&mut sim, secs(20), "bridged", |s| s.bridged.len() >= 2);
    callee_hangs_up(&mut sim, &out);
    let task = only_task(&sim);
    assert_eq!(task.state, TaskState::Done);
    let record = sim
        .records
        .iter()
        .find(|r| r.task == Some(task.id.0))
        .expect("the callback's record");
    assert_eq!(record.attempt_result.as_deref(), Some("answered"));
    let inv = next_agent_invite(&mut sim, "1001", 3);
    assert!(inv.contains("X-Hotline-Caller: 13700000003"), "C after B");
}

#[test]
fn a_callback_nobody_answers_is_retried_on_its_schedule_then_fails() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    let (_a, _b, _c) = three_callers_and_a_callback(&mut sim);
    // A and C give up; only the callback is left.
    caller_hangs_up(&mut sim, "ca");
    caller_hangs_up(&mut sim, "cc");
    available(&mut sim, "1001");
    let mut attempts_at = Vec::new();
    for n in 0..2 {
        let inv = next_agent_invite(&mut sim, "1001", n);
        assert!(inv.contains("X-Hotline-Task-Kind: callback"), "{inv}");
        answer(&mut sim, "1001", &inv, 200);
        run_until(&mut sim, secs(30), "the customer is dialled", |s| {
            invites_to(s, trunk_peer()).len() > n
        });
        attempts_at.push(sim.now);
        let out = invites_to(&sim, trunk_peer())[n].clone();
        trunk_says(&mut sim, &out, 486, "");
        let task = only_task(&sim);
        if n == 0 {
            assert_eq!(task.state, TaskState::Open);
            assert_eq!(task.not_before_ms, sim.wall_ms() + 60_000);
        }
    }
    let gap = attempts_at[1] - attempts_at[0];
    assert!(
        gap >= secs(60) && gap < secs(100),
        "the retry waits callback_retry (then the wrap-up): {gap:?}"
    );
    let task = only_task(&sim);
    assert_eq!(task.state, TaskState::Failed, "two attempts used");
    assert_eq!(task.attempts.len(), 2);
    let failed: Vec<_> = sim
        .records
        .iter()
        .filter(|r| r.task == Some(task.id.0))
        .collect();
    assert_eq!(failed.len(), 2, "each attempt has its record");
    assert!(failed
        .iter()
        .all(|r| r.attempt_result.as_deref() == Some("not_reached") && r.sip_status == 486));
    sim.run_for(secs(600));
    assert_eq!(
        invites_to(&sim, trunk_peer()).len(),
        2,
        "never silently again"
    );
}

/// A repair notice's fields, as the desk's form sends them.
fn repair_order() -> hotline::tasks::WorkOrder {
    let fields = json!({"customer_name": "王建国", "address": "朝阳区建国路 88 号 3 单元 501",
                        "fault": "leak", "fault_detail": "燃气表接口漏气"});
    hotline::tasks::WorkOrder::parse(
        hotline::tasks::OrderKind::Repair,
        fields.as_object().expect("an object"),
        "",
    )
    .expect("a valid order")
}

fn follow_up(sim: &mut Sim, number: &str, due_in: Duration) -> TaskId {
    let due = sim.wall_ms() + due_in.as_millis() as u64;
    let due = hotline::cdr::format_ms(due);
    let spec = TaskSpec::parse(&json!({
        "kind": "follow_up", "number": number, "queue": "repair", "due": due,
    }))
    .expect("valid");
    sim.act(|e, now| e.create_task(now, spec))
        .expect("created")
        .0
}

#[test]
fn tasks_go_earliest_deadline_first_behind_calls_until_at_risk() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    register(&mut sim, "1001");
    on_break(&mut sim, "1001");
    let later = follow_up(&mut sim, "13800000011", secs(3 * 3600));
    let sooner = follow_up(&mut sim, "13800000012", secs(40 * 60));
    // A live caller waits too: tasks not at risk come after calls.
    call_in(&mut sim, "live", "13600000001", '2');
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(inv.contains("X-Hotline-Caller: 13600000001"), "{inv}");
    assert!(!inv.contains("X-Hotline-Task"), "{inv}");
    answer(&mut sim, "1001", &inv, 486);
    on_break(&mut sim, "1001");
    caller_hangs_up(&mut sim, "live");
    sim.run_for(secs(5));
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 1);
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", sooner.0)),
        "earliest deadline first: {inv}"
    );
    answer(&mut sim, "1001", &inv, 486);
    on_break(&mut sim, "1001");

    // At 9 min a caller arrives; at 10 min (40 min deadline, 30 min
    // margin) the task is at risk and goes ahead of that caller.
    sim.run_until(sim.t0 + secs(9 * 60));
    register_again(&mut sim, "1001", 1);
    call_in(&mut sim, "live2", "13600000002", '2');
    sim.run_until(sim.t0 + secs(10 * 60 + 30));
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 2);
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", sooner.0)),
        "the task at risk comes before the caller: {inv}"
    );
    assert_eq!(
        sim.engine.task(later).map(|t| t.state),
        Some(TaskState::Open),
        "the later one waits"
    );
}

#[test]
fn a_repeat_caller_goes_to_the_agent_who_took_their_last_call() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    register(&mut sim, "1001");
    register(&mut sim, "1002");
    on_break(&mut sim, "1001");
    // First call: taken by 1002.
    call_in(&mut sim, "first", "13500000005", '2');
    let inv = next_agent_invite(&mut sim, "1002", 0);
    answer(&mut sim, "1002", &inv, 200);
    sim.run_for(secs(20));
    caller_hangs_up(&mut sim, "first");
    let first = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "first")
        .expect("record")
        .clone();
    assert_eq!(first.agent.as_deref(), Some("1002"));
    assert_eq!(first.repeat_of, None);
    available(&mut sim, "1001");
    sim.run_for(secs(60)); // 1002's wrap-up is over: both idle

    // The same number again: 1002 first, though 1001 has been idle
    // longer.
    call_in(&mut sim, "again", "13500000005", '2');
    let inv = next_agent_invite(&mut sim, "1002", 1);
    assert!(
        inv.contains(&format!("X-Hotline-Repeat-Of: {}", first.call_id)),
        "{inv}"
    );
    assert_eq!(invites_to(&sim, phone("1001")).len(), 0);
    answer(&mut sim, "1002", &inv, 200);
    sim.run_for(secs(10));
    caller_hangs_up(&mut sim, "again");
    let again = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "again")
        .expect("record");
    assert_eq!(again.repeat_of.as_deref(), Some(first.call_id.as_str()));

    // Third call with 1002 busy on another caller: the repeat caller
    // waits tasks.owner_wait (20 s) for 1002, then goes to 1001.
    sim.run_for(secs(60));
    on_break(&mut sim, "1001");
    call_in(&mut sim, "other", "13100000009", '2');
    let inv = next_agent_invite(&mut sim, "1002", 2);
    answer(&mut sim, "1002", &inv, 200);
    available(&mut sim, "1001");
    let before = sim.now;
    call_in(&mut sim, "third", "13500000005", '2');
    let inv = next_agent_invite(&mut sim, "1001", 0);
    let waited = sim.now - before;
    assert!(inv.contains("X-Hotline-Caller: 13500000005"), "{inv}");
    assert!(
        waited >= secs(20) && waited < secs(25),
        "waited for the owner first: {waited:?}"
    );
}

#[test]
fn tasks_survive_a_restart_and_an_interrupted_attempt_is_not_repeated_at_once() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    register(&mut sim, "1001");
    on_break(&mut sim, "1001");
    let pending = follow_up(&mut sim, "13800000021", secs(24 * 3600));
    let dialing = follow_up(&mut sim, "13800000022", secs(12 * 3600));
    available(&mut sim, "1001");
    // The earlier deadline is offered first; the agent answers and the
    // customer is being dialled when the process dies.
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", dialing.0)),
        "{inv}"
    );
    answer(&mut sim, "1001", &inv, 200);
    run_until(&mut sim, secs(30), "dialled", |s| {
        !invites_to(s, trunk_peer()).is_empty()
    });
    let dir = sim.store_dir.clone();
    let wall = sim.wall_ms();
    drop(sim);

    // A new process on the same store, 10 s later.
    let mut sim = Sim::with_store(
        config(|c| {
            c.trunks.push(trunk(10, 5, false));
            for q in &mut c.queues {
                q.callback_after = Some(secs(20));
            }
        }),
        dir,
        Instant::now(),
        wall + 10_000,
    );
    let a = sim.engine.task(pending).expect("kept").clone();
    let b = sim.engine.task(dialing).expect("kept").clone();
    assert_eq!(a.state, TaskState::Open);
    assert_eq!(b.state, TaskState::Open);
    assert_eq!(
        b.attempts[0].result,
        Some(hotline::tasks::AttemptEnd::Failed)
    );
    assert!(b.not_before_ms > wall + 10_000, "retried on its schedule");
    let interrupted = sim
        .records
        .iter()
        .find(|r| r.task == Some(dialing.0))
        .expect("the interrupted attempt has a record");
    assert_eq!(interrupted.attempt_result.as_deref(), Some("interrupted"));
    assert_eq!(interrupted.agent.as_deref(), Some("1001"));
    assert_eq!(interrupted.caller_number, "13800000022");
    assert!(
        sim.records.iter().all(|r| r.task != Some(pending.0)),
        "nothing was interrupted on the other"
    );
    on_break(&mut sim, "1001");
    register(&mut sim, "1001");
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", pending.0)),
        "the interrupted one waits for its retry time: {inv}"
    );
}

#[test]
fn a_repair_call_leaves_a_follow_up_owned_by_its_agent() {
    let mut sim = Sim::new(config(|c| {
        c.trunks.push(trunk(10, 5, false));
        c.tasks
            .after_call
            .push(hotline::config::tasks::AfterCallRule {
                business: "repair".into(),
                kind: TaskKind::FollowUp,
                due: secs(7 * 86_400),
                queue: None,
                attempts: 3,
                retry: secs(1800),
            });
    }));
    register(&mut sim, "1001");
    call_in(&mut sim, "r1", "13800000031", '2');
    let inv = next_agent_invite(&mut sim, "1001", 0);
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(30));
    caller_hangs_up(&mut sim, "r1");
    let record = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "r1")
        .expect("record")
        .clone();
    let task = only_task(&sim);
    assert_eq!(record.tasks_created, vec![task.id.0]);
    assert_eq!(task.kind, TaskKind::FollowUp);
    assert_eq!(task.owner.as_deref(), Some("1001"));
    assert_eq!(task.origin_call.as_deref(), Some(record.call_id.as_str()));
    assert_eq!(task.due_ms, Some(sim.wall_ms() + 7 * 86_400_000));
    // The customer calls back while the follow-up is open (the agent is
    // away, so it is not worked yet): a repeat contact, offered to the
    // task's owner ahead of the task itself.
    on_break(&mut sim, "1001");
    sim.run_for(secs(60));
    call_in(&mut sim, "r2", "13800000031", '2');
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 1);
    assert!(inv.contains("X-Hotline-Caller: 13800000031"), "{inv}");
    assert!(
        !inv.contains("X-Hotline-Task"),
        "the caller before the task: {inv}"
    );
    assert!(
        inv.contains(&format!("X-Hotline-Repeat-Of: {}", record.call_id)),
        "{inv}"
    );
}

#[test]
fn a_task_cancelled_while_it_rings_an_agent_stops_ringing_and_is_never_dialled() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    register(&mut sim, "1001");
    let id = follow_up(&mut sim, "13800000041", secs(3600));
    let inv = next_agent_invite(&mut sim, "1001", 0);
    assert!(inv.contains(&format!("X-Hotline-Task: {}", id.0)), "{inv}");
    assert_eq!(
        sim.engine.task(id).map(|t| t.state),
        Some(TaskState::Offered)
    );
    let cancelled = sim.act(|e, now| e.cancel_task(now, id)).expect("known");
    assert_eq!(cancelled.state, TaskState::Cancelled);
    let cancel = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.peer == phone("1001") && s.text.starts_with("CANCEL "))
        .expect("the agent's phone stops ringing")
        .text
        .clone();
    respond(&mut sim, phone("1001"), &cancel, 200);
    answer(&mut sim, "1001", &inv, 487);
    sim.run_for(secs(3600));
    assert_eq!(
        invites_to(&sim, phone("1001")).len(),
        1,
        "not offered again"
    );
    assert!(invites_to(&sim, trunk_peer()).is_empty(), "never dialled");
    let task = sim.engine.task(id).expect("kept");
    assert_eq!(task.state, TaskState::Cancelled);
}

#[test]
fn the_agent_records_the_outcome_by_feature_code_and_not_reached_tries_again() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    register(&mut sim, "1001");
    on_break(&mut sim, "1001");
    let id = follow_up(&mut sim, "13800000051", secs(86_400));
    // Before any task call the code has nothing to apply to.
    assert_eq!(
        agent_dials(&mut sim, "1001", "*71", "o0")
            .last()
            .map(String::as_str),
        Some("agent_unknown")
    );
    available(&mut sim, "1001");
    let inv = next_agent_invite(&mut sim, "1001", 0);
    answer(&mut sim, "1001", &inv, 200);
    run_until(&mut sim, secs(30), "dialled", |s| {
        !invites_to(s, trunk_peer()).is_empty()
    });
    let out = invites_to(&sim, trunk_peer())[0].clone();
    trunk_says(&mut sim, &out, 200, "");
    sim.run_for(secs(20));
    callee_hangs_up(&mut sim, &out);
    assert_eq!(sim.engine.task(id).map(|t| t.state), Some(TaskState::Done));
    on_break(&mut sim, "1001");
    // *73: the wrong person answered; the follow-up is open again and
    // waits its retry time (30 min by default).
    assert_eq!(
        agent_dials(&mut sim, "1001", "*73", "o1")
            .last()
            .map(String::as_str),
        Some("task_outcome_saved")
    );
    let task = sim.engine.task(id).expect("task").clone();
    assert_eq!(task.state, TaskState::Open);
    assert_eq!(
        task.attempts[0].result,
        Some(hotline::tasks::AttemptEnd::NotReached)
    );
    let wrote = sim.writes.iter().rev().find_map(|w| match w {
        hotline::store::StoreWrite::Task { task, .. } if task.id == id => Some(task.state),
        _ => None,
    });
    assert_eq!(wrote, Some(TaskState::Open), "the reopening is written");
    available(&mut sim, "1001");
    sim.run_for(secs(29 * 60));
    // The phone refreshes its registration (600 s) as phones do.
    register_again(&mut sim, "1001", 1);
    assert_eq!(
        invites_to(&sim, phone("1001")).len(),
        1,
        "not before the retry"
    );
    let inv = next_agent_invite(&mut sim, "1001", 1);
    answer(&mut sim, "1001", &inv, 200);
    run_until(&mut sim, secs(30), "dialled again", |s| {
        invites_to(s, trunk_peer()).len() == 2
    });
    let out = invites_to(&sim, trunk_peer())[1].clone();
    trunk_says(&mut sim, &out, 200, "");
    sim.run_for(secs(10));
    callee_hangs_up(&mut sim, &out);
    on_break(&mut sim, "1001");
    assert_eq!(
        agent_dials(&mut sim, "1001", "*71", "o2")
            .last()
            .map(String::as_str),
        Some("task_outcome_saved")
    );
    let task = sim.engine.task(id).expect("task");
    assert_eq!(
        (task.state, task.outcome, task.on_time()),
        (TaskState::Done, Some(TaskOutcome::Satisfied), Some(true))
    );
}

#[test]
fn a_long_expected_wait_offers_the_callback_on_arrival() {
    let mut sim = Sim::new(config(|c| {
        c.trunks.push(trunk(10, 5, false));
        c.media.inactivity_timeout = secs(3600);
        for q in &mut c.queues {
            q.callback_wait_over = Some(secs(120));
        }
    }));
    register(&mut sim, "1001");
    // Two callers ahead, the agent busy with neither answering: with the
    // default 3-minute handle time the third waits about 9 minutes.
    let first = call_in(&mut sim, "w1", "13800000061", '2');
    let inv = next_agent_invite(&mut sim, "1001", 0);
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(5));
    let second = call_in(&mut sim, "w2", "13800000062", '2');
    let third = call_in(&mut sim, "w3", "13800000063", '2');
    sim.run_for(secs(1));
    assert!(!played_to(&sim, first).iter().any(|n| n == "callback_offer"));
    assert!(
        played_to(&sim, second)
            .iter()
            .any(|n| n == "callback_offer"),
        "{:?}",
        played_to(&sim, second)
    );
    assert!(played_to(&sim, third).iter().any(|n| n == "callback_offer"));
}

#[test]
fn the_desk_shows_the_call_saves_notes_makes_a_repair_order_and_calls_back() {
    let mut sim = sim_with(CallbackMode::AgentFirst);
    register(&mut sim, "1001");
    call_in(&mut sim, "d1", "13800000071", '2');
    let inv = next_agent_invite(&mut sim, "1001", 0);
    let desk = sim.engine.desk(sim.now, "1001").expect("agent");
    let call = desk.call.expect("the ringing call is on the desk");
    assert_eq!(
        (
            call.state,
            call.number.as_str(),
            call.business_type.as_deref()
        ),
        ("ringing", "13800000071", Some("repair"))
    );
    assert_eq!(call.customer_class, "public");
    assert!(call.repeat_of.is_none());
    answer(&mut sim, "1001", &inv, 200);
    sim.run_for(secs(10));
    let call_id = sim
        .engine
        .desk(sim.now, "1001")
        .and_then(|d| d.call)
        .map(|c| {
            assert_eq!(c.state, "connected");
            c.call_id
        })
        .expect("connected");
    // Another agent cannot write on this call.
    let other = sim.act(|e, now| e.save_call_notes(now, "1002", &call_id, None, "x".into()));
    assert!(matches!(
        other,
        Err(hotline::engine::DeskError::NotYourCall { .. })
    ));
    let bad = sim.act(|e, now| {
        e.save_call_notes(now, "1001", &call_id, Some("gardening".into()), "x".into())
    });
    assert!(
        matches!(bad, Err(hotline::engine::DeskError::Invalid(ref f)) if f.field == "business_type")
    );
    sim.act(|e, now| {
        e.save_call_notes(
            now,
            "1001",
            &call_id,
            Some("repair".into()),
            "燃气表漏气，已派维修".into(),
        )
    })
    .expect("saved");
    let (order, _) = sim
        .act(|e, now| {
            e.make_order(
                now,
                "1001",
                &call_id,
                repair_order(),
                None,
                "更换燃气表".into(),
            )
        })
        .expect("order made");
    caller_hangs_up(&mut sim, "d1");
    let record = sim
        .records
        .iter()
        .find(|r| r.sip_call_id == "d1")
        .expect("record");
    assert_eq!(record.summary.as_deref(), Some("燃气表漏气，已派维修"));
    assert_eq!(record.agent_business_type.as_deref(), Some("repair"));
    assert!(sim
        .lines
        .iter()
        .any(|(f, l)| f.starts_with("notes-") && l.contains("燃气表漏气")));
    let task = sim.engine.task(order).expect("the order's task").clone();
    assert_eq!(task.kind, TaskKind::FollowUp);
    assert_eq!(task.order, Some(repair_order()), "the order's fields");
    assert_eq!(task.owner.as_deref(), Some("1001"));
    assert_eq!(task.origin_call.as_deref(), Some(call_id.as_str()));
    let due = task.due_ms.expect("a deadline");
    assert!(
        due > sim.wall_ms() + 7 * 86_400_000 - 60_000 && due <= sim.wall_ms() + 7 * 86_400_000,
        "due a week after the order"
    );
    // The follow-up is on the agent's list, first (theirs).
    let desk = sim.engine.desk(sim.now, "1001").expect("agent");
    assert_eq!(desk.tasks.first().map(|t| t.id), Some(order));

    // "Call back": the agent's phone rings with the task once wrap-up
    // is over (the task was offered already then: it is theirs and the
    // only one), then the customer is dialled through the trunk.
    run_until(&mut sim, secs(60), "the follow-up is offered", |s| {
        invites_to(s, phone("1001")).len() == 2
    });
    let inv = invites_to(&sim, phone("1001"))[1].clone();
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", order.0)),
        "{inv}"
    );
    answer(&mut sim, "1001", &inv, 486);
    // Refused at the phone (the agent was not ready); a moment later
    // they click "call back": their phone rings with it as soon as the
    // phone's rest after a refusal (the queue's retry, 5 s) is over.
    sim.run_for(secs(1));
    // Another follow-up with an earlier deadline would come first...
    let sooner = follow_up(&mut sim, "13800000072", secs(3600));
    assert!(sim
        .engine
        .desk(sim.now, "1001")
        .is_some_and(|d| d.tasks.iter().any(|t| t.id == sooner)));
    // ... but the agent clicks "call back" on the order's.
    sim.act(|e, now| e.call_back(now, "1001", order))
        .expect("call back");
    let clicked = sim.now;
    let inv = next_agent_invite(&mut sim, "1001", 2);
    assert!(sim.now - clicked <= secs(5), "{:?}", sim.now - clicked);
    assert!(
        inv.contains(&format!("X-Hotline-Task: {}", order.0)),
        "{inv}"
    );
    answer(&mut sim, "1001", &inv, 200);
    run_until(&mut sim, secs(30), "the customer is dialled", |s| {
        !invites_to(s, trunk_peer()).is_empty()
    });
    let out = invites_to(&sim, trunk_peer())[0].clone();
    assert!(out.starts_with("INVITE sip:13800000071@"), "{out}");
}
