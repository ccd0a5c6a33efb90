//! The store's test suite, for every backend: each check takes a
//! [`Backend`] (an empty store it may open as many connections to as it
//! likes) and panics when the store answers wrong. The library's unit
//! tests run every check on SQLite; `tests/store_backends.rs` runs every
//! check on SQLite and on a throw-away PostgreSQL.
//!
//! Two connections to one store stand for two nodes (or one node before
//! and after a restart, when the first is dropped). Where the backends
//! are meant to differ, a check asks [`Backend::shared`]: a claim lost
//! is [`StoreError::Taken`] on a shared store, and on SQLite (one node)
//! the write is taken as it comes.
//!
//! Public for the integration tests only (hidden from the docs).

mod kb;

use std::io::Cursor;

use serde_json::json;

use super::{Store, StoreError};
use crate::campaign::{
    Attempt, AttemptResult, CampaignId, CampaignSpec, CampaignState, NumberState,
};
use crate::store::{Contact, StoreWrite};
use crate::tasks::{
    AttemptEnd, CallbackMode, Task, TaskAttempt, TaskId, TaskKind, TaskOutcome, TaskState,
};

/// A store under test, empty at first.
pub trait Backend {
    /// A new connection to this store: the same node after a restart, or
    /// another node.
    fn open(&self) -> Box<dyn Store>;
    /// Whether several nodes share the store, so that a claim another
    /// node holds is refused with [`StoreError::Taken`].
    fn shared(&self) -> bool;
}

/// The embedded store, a SQLite file at this path (in a folder the test
/// owns), opened afresh for each connection.
pub struct SqliteFile(pub std::path::PathBuf);

impl Backend for SqliteFile {
    fn open(&self) -> Box<dyn Store> {
        match crate::shell::store::sqlite::SqliteStore::open(&self.0) {
            Ok(store) => Box::new(store),
            Err(e) => panic!("open SQLite {}: {e}", self.0.display()),
        }
    }

    fn shared(&self) -> bool {
        false
    }
}

/// A check of the suite.
pub type Check = fn(&dyn Backend);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "a_campaign_and_its_attempts_survive_a_restart",
        a_campaign_and_its_attempts_survive_a_restart,
    ),
    (
        "a_campaigns_own_prompt_survives_a_restart",
        a_campaigns_own_prompt_survives_a_restart,
    ),
    (
        "a_second_start_of_one_attempt_is_taken",
        a_second_start_of_one_attempt_is_taken,
    ),
    (
        "a_task_reads_back_as_it_was_written",
        a_task_reads_back_as_it_was_written,
    ),
    (
        "an_older_task_write_never_replaces_a_newer_one",
        an_older_task_write_never_replaces_a_newer_one,
    ),
    (
        "a_task_changed_by_another_node_is_taken",
        a_task_changed_by_another_node_is_taken,
    ),
    (
        "a_new_task_with_an_id_another_node_holds_is_taken",
        a_new_task_with_an_id_another_node_holds_is_taken,
    ),
    (
        "closed_tasks_are_read_back_for_seven_days_open_ones_always",
        closed_tasks_are_read_back_for_seven_days_open_ones_always,
    ),
    (
        "contacts_read_back_one_per_number_for_thirty_days",
        contacts_read_back_one_per_number_for_thirty_days,
    ),
    (
        "kb_an_entry_is_created_at_version_one_and_read_back",
        kb::an_entry_is_created_at_version_one_and_read_back,
    ),
    (
        "kb_search_finds_chinese_and_english_words_anywhere_newest_first",
        kb::search_finds_chinese_and_english_words_anywhere_newest_first,
    ),
    (
        "kb_an_edit_from_the_current_version_is_saved_a_stale_one_gets_the_current",
        kb::an_edit_from_the_current_version_is_saved_a_stale_one_gets_the_current,
    ),
    (
        "kb_a_stale_edit_from_another_node_gets_the_current",
        kb::a_stale_edit_from_another_node_gets_the_current,
    ),
    (
        "kb_the_history_keeps_every_version_and_all_of_it_survives_a_restart",
        kb::the_history_keeps_every_version_and_all_of_it_survives_a_restart,
    ),
];

const T0: u64 = 1_796_520_600_000;
const DAY: u64 = 86_400_000;

fn spec_named(prompt: &str) -> CampaignSpec {
    CampaignSpec::parse(
        &json!({"name": "gas outage", "trunk": "pstn", "prompt": prompt,
                "numbers": ["13800000001", "13800000002"], "retry": ["1m"],
                "window": {"from": "09:00", "to": "20:00", "utc_offset": "+08:00"},
                "confirm_key": "1"}),
        None,
        480,
    )
    .expect("spec")
}

fn spec() -> CampaignSpec {
    spec_named("notice")
}

fn attempt(number: u32, at_ms: u64) -> Attempt {
    Attempt {
        number,
        at_ms,
        ended_ms: None,
        result: None,
        sip_status: 0,
        call_id: None,
    }
}

fn start(store: &mut dyn Store, campaign: CampaignId, target: usize, a: &Attempt) {
    store
        .apply(
            &StoreWrite::AttemptStarted {
                campaign,
                target,
                attempt: a.clone(),
            },
            T0,
        )
        .expect("attempt started");
}

pub fn a_campaign_and_its_attempts_survive_a_restart(backend: &dyn Backend) {
    let mut store = backend.open();
    let id = store.create_campaign(&spec(), T0, None).expect("create");
    let attempt = attempt(1, T0 + 60_000);
    start(store.as_mut(), id, 1, &attempt);
    let ended = Attempt {
        ended_ms: Some(T0 + 70_000),
        result: Some(AttemptResult::Confirmed),
        sip_status: 200,
        call_id: Some("hl-1-9".into()),
        ..attempt
    };
    store
        .apply(
            &StoreWrite::AttemptEnded {
                campaign: id,
                target: 1,
                attempt: ended.clone(),
                state: NumberState::Confirmed,
                due_ms: None,
            },
            T0,
        )
        .expect("ended");
    for number in ["138 0000 0001", "13800000001"] {
        // The same number twice (as typed, and as kept): listed once.
        store
            .apply(
                &StoreWrite::DoNotCall {
                    number: number.into(),
                },
                T0,
            )
            .expect("dnc");
    }
    drop(store);

    // A new process reads it back as it was.
    let mut store = backend.open();
    let work = store.load(T0 + 100_000, 7).expect("load");
    assert_eq!(work.campaigns.len(), 1);
    let c = &work.campaigns[0].campaign;
    assert_eq!(c.id, id);
    assert_eq!(c.spec, spec());
    assert_eq!(c.state, CampaignState::Running);
    assert_eq!(c.created_ms, T0);
    assert_eq!(c.targets[0].state, NumberState::Pending);
    assert_eq!(c.targets[0].due_ms, Some(T0 + 60_000));
    assert!(c.targets[0].attempts.is_empty());
    assert_eq!(c.targets[1].state, NumberState::Confirmed);
    assert_eq!(c.targets[1].attempts, vec![ended.clone()]);
    assert_eq!(work.campaigns[0].prompt_audio, None);
    assert_eq!(work.do_not_call, vec!["13800000001".to_string()]);
    assert_eq!(work.notices.len(), 1);
    assert_eq!(work.notices[0].number, "13800000002");
    assert_eq!(work.notices[0].campaign, id);
    assert_eq!(work.notices[0].campaign_name, "gas outage");
    assert_eq!(work.notices[0].at_ms, T0 + 70_000);
    // Too old to remember.
    assert!(store
        .load(T0 + 70_000 + 7 * DAY + 1, 7)
        .expect("load")
        .notices
        .is_empty());

    // Paused, it is still run from; a number's state without a call.
    let write = |state| StoreWrite::Campaign {
        campaign: id,
        state,
    };
    store
        .apply(&write(CampaignState::Paused), T0)
        .expect("pause");
    store
        .apply(
            &StoreWrite::Target {
                campaign: id,
                target: 0,
                state: NumberState::OptedOut,
                due_ms: None,
            },
            T0,
        )
        .expect("target");
    let work = store.load(T0, 7).expect("load");
    assert_eq!(work.campaigns[0].campaign.state, CampaignState::Paused);
    assert_eq!(
        work.campaigns[0].campaign.targets[0].state,
        NumberState::OptedOut
    );
    assert_eq!(work.campaigns[0].campaign.targets[0].due_ms, None);

    // A second campaign gets a new id; a finished campaign is not run
    // again.
    let other = store
        .create_campaign(&spec(), T0 + 1, None)
        .expect("create");
    assert_ne!(other, id);
    store
        .apply(&write(CampaignState::Cancelled), T0)
        .expect("cancel");
    let ids: Vec<CampaignId> = store
        .load(T0, 7)
        .expect("load")
        .campaigns
        .iter()
        .map(|c| c.campaign.id)
        .collect();
    assert_eq!(ids, vec![other]);
}

/// A WAV file's bytes: 8 kHz, mono, 16-bit.
fn wav(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("wav");
    for &s in samples {
        writer.write_sample(s).expect("sample");
    }
    writer.finalize().expect("wav");
    bytes.into_inner()
}

pub fn a_campaigns_own_prompt_survives_a_restart(backend: &dyn Backend) {
    let samples: Vec<i16> = (0..800).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
    let mut store = backend.open();
    let id = store
        .create_campaign(&spec_named("uploaded.wav"), T0, Some(&wav(&samples)))
        .expect("create");
    drop(store);
    let mut store = backend.open();
    let work = store.load(T0, 7).expect("load");
    assert_eq!(work.campaigns.len(), 1);
    assert_eq!(work.campaigns[0].campaign.id, id);
    assert_eq!(work.campaigns[0].campaign.spec.prompt, "uploaded.wav");
    assert_eq!(
        work.campaigns[0].prompt_audio.as_deref(),
        Some(&samples[..])
    );
}

pub fn a_second_start_of_one_attempt_is_taken(backend: &dyn Backend) {
    // Node A creates the campaign and dials number 0 once: not reached,
    // to be tried again in a minute.
    let mut a = backend.open();
    let id = a.create_campaign(&spec(), T0, None).expect("create");
    let first = attempt(1, T0 + 1000);
    start(a.as_mut(), id, 0, &first);
    let ended = Attempt {
        ended_ms: Some(T0 + 31_000),
        result: Some(AttemptResult::NoAnswer),
        sip_status: 480,
        call_id: Some("hl-a-1".into()),
        ..first.clone()
    };
    a.apply(
        &StoreWrite::AttemptEnded {
            campaign: id,
            target: 0,
            attempt: ended.clone(),
            state: NumberState::WaitingRetry,
            due_ms: Some(T0 + 91_000),
        },
        T0,
    )
    .expect("ended");

    // Node B, from the same store, starts the same attempt.
    let mut b = backend.open();
    let seen = b.load(T0 + 40_000, 7).expect("load");
    assert_eq!(
        seen.campaigns[0].campaign.targets[0].attempts,
        vec![ended.clone()],
        "node A's writes are committed: node B sees them"
    );
    let again = attempt(1, T0 + 40_000);
    let second = b.apply(
        &StoreWrite::AttemptStarted {
            campaign: id,
            target: 0,
            attempt: again.clone(),
        },
        T0,
    );
    let target = |store: &mut dyn Store| {
        store.load(T0 + 40_000, 7).expect("load").campaigns[0]
            .campaign
            .targets[0]
            .clone()
    };
    if backend.shared() {
        match second {
            Err(StoreError::Taken { what }) => {
                assert!(what.contains("attempt 1"), "{what}");
            }
            other => panic!("expected Taken, got {other:?}"),
        }
        // Nothing of node B's write was made: the number is still
        // waiting for its retry, with node A's attempt.
        for store in [a.as_mut(), b.as_mut()] {
            let t = target(store);
            assert_eq!(t.state, NumberState::WaitingRetry);
            assert_eq!(t.due_ms, Some(T0 + 91_000));
            assert_eq!(t.attempts, vec![ended.clone()]);
        }
    } else {
        // One node: the start is taken as it comes (it replaces the row).
        second.expect("one node: no claims");
        let t = target(a.as_mut());
        assert_eq!(t.state, NumberState::Dialing);
        assert_eq!(t.attempts, vec![again]);
    }

    // The next attempt is a new claim, and the first to make it has it.
    let next = attempt(2, T0 + 92_000);
    start(b.as_mut(), id, 0, &next);
    let t = target(a.as_mut());
    assert_eq!(t.state, NumberState::Dialing);
    assert_eq!(t.due_ms, None);
    assert_eq!(t.attempts.last(), Some(&next));
    let late = a.apply(
        &StoreWrite::AttemptStarted {
            campaign: id,
            target: 0,
            attempt: attempt(2, T0 + 93_000),
        },
        T0,
    );
    assert_eq!(
        matches!(late, Err(StoreError::Taken { .. })),
        backend.shared(),
        "{late:?}"
    );
}

// ---- tasks and contacts ---------------------------------------------------

fn task(id: u64, version: u64) -> Task {
    Task {
        id: TaskId(id),
        kind: TaskKind::FollowUp,
        number: "13800000001".into(),
        queue: "repair".into(),
        business: Some("gas_meter".into()),
        note: "燃气表已更换\n请回访".into(),
        created_ms: T0,
        due_ms: Some(T0 + DAY),
        state: TaskState::Open,
        attempts: vec![TaskAttempt {
            number: 1,
            agent: Some("1001".into()),
            started_ms: T0 + 60_000,
            answered_ms: None,
            ended_ms: Some(T0 + 90_000),
            result: Some(AttemptEnd::NotReached),
            sip_status: 486,
            call_id: Some("hl-1-3".into()),
        }],
        max_attempts: 3,
        retry_ms: 30 * 60_000,
        not_before_ms: T0 + 90_000 + 30 * 60_000,
        priority: 0,
        order_ms: T0 + DAY,
        owner: Some("1001".into()),
        origin_call: Some("hl-1-1".into()),
        mode: CallbackMode::AgentFirst,
        outcome: None::<TaskOutcome>,
        closed_ms: None,
        // A repair order's fields, kept with the task by every backend.
        order: Some(crate::tasks::WorkOrder {
            kind: crate::tasks::OrderKind::Repair,
            customer_name: "王建国".into(),
            address: "朝阳区建国路 88 号".into(),
            fault: Some(crate::tasks::FaultType::Leak),
            fault_detail: None,
            subject: None,
        }),
        version,
    }
}

/// Writes `task` whole, as the engine does.
pub fn write_task(store: &mut dyn Store, task: &Task) -> Result<(), StoreError> {
    store.apply(
        &StoreWrite::Task {
            task: Box::new(task.clone()),
            ack: true,
        },
        T0,
    )
}

fn tasks(store: &mut dyn Store) -> Vec<Task> {
    store.load(T0, 7).expect("load").tasks
}

pub fn a_task_reads_back_as_it_was_written(backend: &dyn Backend) {
    let mut store = backend.open();
    let written = task(1, 3);
    write_task(store.as_mut(), &written).expect("task written");
    drop(store);

    let mut store = backend.open();
    let work = store.load(T0 + 60 * DAY, 7).expect("load");
    assert_eq!(
        work.tasks,
        vec![written],
        "an open task is always read back"
    );
}

pub fn an_older_task_write_never_replaces_a_newer_one(backend: &dyn Backend) {
    let mut store = backend.open();
    let newer = Task {
        state: TaskState::Cancelled,
        closed_ms: Some(T0 + 1000),
        ..task(1, 5)
    };
    write_task(store.as_mut(), &newer).expect("written");
    // A write from before the cancel arrives late: it is ignored.
    write_task(store.as_mut(), &task(1, 4)).expect("ignored");
    assert_eq!(tasks(store.as_mut()), vec![newer.clone()]);
    // The same version again (a write repeated) is taken; a newer one too.
    write_task(store.as_mut(), &newer).expect("repeated");
    let newest = Task {
        note: "changed".into(),
        version: 6,
        ..newer.clone()
    };
    write_task(store.as_mut(), &newest).expect("newer");
    // The engine changes a task without writing each change (an agent's
    // "call back now"): the next write skips versions, and is taken.
    let skipped = Task {
        note: "changed twice".into(),
        version: 8,
        ..newest.clone()
    };
    write_task(store.as_mut(), &skipped).expect("skipping versions");
    drop(store);
    let mut store = backend.open();
    assert_eq!(tasks(store.as_mut()), vec![skipped.clone()]);
    // After a restart, the node goes on from what it read.
    let next = Task {
        version: 9,
        state: TaskState::Open,
        closed_ms: None,
        ..skipped
    };
    write_task(store.as_mut(), &next).expect("after a restart");
    assert_eq!(tasks(store.as_mut()), vec![next]);
}

pub fn a_task_changed_by_another_node_is_taken(backend: &dyn Backend) {
    let mut a = backend.open();
    let mut b = backend.open();
    let v1 = task(7, 1);
    write_task(a.as_mut(), &v1).expect("created");
    // Both nodes hold version 1.
    assert_eq!(tasks(a.as_mut()), vec![v1.clone()]);
    assert_eq!(tasks(b.as_mut()), vec![v1.clone()]);

    // Node A offers it to its agent first.
    let offered_a = Task {
        state: TaskState::Offered,
        owner: Some("1001".into()),
        version: 2,
        ..v1.clone()
    };
    write_task(a.as_mut(), &offered_a).expect("node A's claim");
    // Node B, still on version 1, offers it to another agent: version 2
    // too, and then 3 (a change it did not write in between).
    let offered_b = Task {
        state: TaskState::Offered,
        owner: Some("1002".into()),
        version: 2,
        ..v1.clone()
    };
    let ahead_b = Task {
        version: 3,
        ..offered_b.clone()
    };
    let results = [
        write_task(b.as_mut(), &offered_b),
        write_task(b.as_mut(), &ahead_b),
    ];
    if backend.shared() {
        for result in results {
            match result {
                Err(StoreError::Taken { what }) => assert!(what.contains("task 7"), "{what}"),
                other => panic!("expected Taken, got {other:?}"),
            }
        }
        assert_eq!(
            tasks(a.as_mut()),
            vec![offered_a.clone()],
            "node A holds it"
        );
        // Node B reads it again and goes on from node A's version.
        assert_eq!(tasks(b.as_mut()), vec![offered_a.clone()]);
        let done = Task {
            state: TaskState::Done,
            closed_ms: Some(T0 + 2000),
            version: 3,
            ..offered_a.clone()
        };
        write_task(b.as_mut(), &done).expect("from the version it read");
        assert_eq!(tasks(a.as_mut()), vec![done]);
    } else {
        // One node: each write is taken, the later version stays.
        for result in results {
            result.expect("one node: no claims");
        }
        assert_eq!(tasks(a.as_mut()), vec![ahead_b]);
    }
}

pub fn a_new_task_with_an_id_another_node_holds_is_taken(backend: &dyn Backend) {
    let mut a = backend.open();
    let mut b = backend.open();
    let theirs = task(3, 1);
    write_task(a.as_mut(), &theirs).expect("node A's task");
    // The same write again, from the node that made it: not a claim lost.
    write_task(a.as_mut(), &theirs).expect("repeated");
    let mine = Task {
        number: "13900000009".into(),
        ..task(3, 1)
    };
    let result = write_task(b.as_mut(), &mine);
    if backend.shared() {
        assert!(
            matches!(result, Err(StoreError::Taken { .. })),
            "{result:?}"
        );
        assert_eq!(tasks(b.as_mut()), vec![theirs]);
    } else {
        result.expect("one node: no claims");
        assert_eq!(tasks(b.as_mut()), vec![mine]);
    }
}

pub fn closed_tasks_are_read_back_for_seven_days_open_ones_always(backend: &dyn Backend) {
    let mut store = backend.open();
    let open = task(1, 1);
    let done = Task {
        state: TaskState::Done,
        closed_ms: Some(T0 + DAY),
        ..task(2, 2)
    };
    let cancelled = Task {
        state: TaskState::Cancelled,
        closed_ms: Some(T0 + 3 * DAY),
        ..task(3, 2)
    };
    for t in [&open, &done, &cancelled] {
        write_task(store.as_mut(), t).expect("task written");
    }
    let mut ids = |now_ms: u64| -> Vec<u64> {
        let work = store.load(now_ms, 7).expect("load");
        work.tasks.iter().map(|t| t.id.0).collect()
    };
    assert_eq!(ids(T0 + 2 * DAY), vec![1, 2, 3]);
    // Exactly seven days after it closed, a task is still read back.
    assert_eq!(ids(T0 + 8 * DAY), vec![1, 2, 3]);
    assert_eq!(ids(T0 + 8 * DAY + 1), vec![1, 3]);
    assert_eq!(ids(T0 + 11 * DAY), vec![1]);
    // Open for a year, still there.
    assert_eq!(ids(T0 + 365 * DAY), vec![1]);
}

pub fn contacts_read_back_one_per_number_for_thirty_days(backend: &dyn Backend) {
    let mut store = backend.open();
    let contact = |number: &str, call: &str, agent: Option<&str>, at_ms: u64| Contact {
        number: number.into(),
        call_id: call.into(),
        agent: agent.map(str::to_string),
        at_ms,
    };
    let first = contact("13800000001", "hl-1-1", Some("1001"), T0);
    let again = contact("138 0000 0001", "hl-1-7", Some("1002"), T0 + DAY);
    let other = contact("13800000002", "hl-1-2", None, T0 + 2 * DAY);
    for c in [&first, &again, &other] {
        store
            .apply(&StoreWrite::Contact(c.clone()), T0)
            .expect("contact written");
    }
    drop(store);
    let mut store = backend.open();
    let mut contacts = store.load(T0 + 3 * DAY, 7).expect("load").contacts;
    contacts.sort_by_key(|c| c.at_ms);
    // The same number's later call replaced its earlier one.
    assert_eq!(contacts, vec![again.clone(), other.clone()]);
    let contacts = store.load(T0 + 31 * DAY + 1, 7).expect("load").contacts;
    assert_eq!(contacts, vec![other], "older than 30 days: not read back");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each check on SQLite (tests/store_backends.rs runs each on both
    /// backends, one test per check).
    #[test]
    fn every_check_passes_on_sqlite() {
        for (name, check) in CHECKS {
            eprintln!("check {name}");
            let dir = tempfile::tempdir().expect("tempdir");
            check(&SqliteFile(dir.path().join("var/hotline.db")));
        }
    }
}
