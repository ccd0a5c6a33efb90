//! The store's test suite (`hotline::shell::store::conformance`) on both
//! backends: every check on a fresh SQLite file, and on a fresh database
//! of a throw-away PostgreSQL (one cluster shared by the tests running at
//! the same time, a database each), there again with each connection a
//! node. Then what only a shared server has: nodes connecting at once, an
//! outage, a URL that does not answer; and work shared between nodes:
//! who runs what, the change feed, adoption.
//!
//! Needs PostgreSQL's server (Debian: `apt-get install postgresql`);
//! without it the PostgreSQL tests are skipped, or fail under `CI=true`.

#[path = "support/postgres.rs"]
mod pg;

use std::sync::{Arc, Barrier, Mutex, Weak};

use hotline::campaign::{Attempt, CampaignSpec, NumberState};
use hotline::shell::store::conformance::{Backend, SqliteFile, CHECKS};
use hotline::shell::store::postgres::PostgresStore;
use hotline::shell::store::{Store, StoreError};
use hotline::store::StoreWrite;
use pg::PgCluster;

struct Postgres {
    url: String,
    _cluster: Arc<PgCluster>,
}

impl Backend for Postgres {
    fn open(&self) -> Box<dyn Store> {
        Box::new(PostgresStore::connect(&self.url).unwrap_or_else(|e| panic!("{e}")))
    }

    fn shared(&self) -> bool {
        true
    }
}

/// PostgreSQL with each connection a node of its own (`n1`, `n2`, ...):
/// sharing work between nodes changes none of the suite's answers.
struct PostgresNodes {
    url: String,
    opened: std::sync::atomic::AtomicUsize,
    _cluster: Arc<PgCluster>,
}

impl Backend for PostgresNodes {
    fn open(&self) -> Box<dyn Store> {
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let node = hotline::shell::store::NodeIdentity {
            id: format!("n{}", n + 1),
            lease: std::time::Duration::from_secs(60),
        };
        Box::new(PostgresStore::connect_as(&self.url, node).unwrap_or_else(|e| panic!("{e}")))
    }

    fn shared(&self) -> bool {
        true
    }
}

/// The cluster the tests running now share: started by the first,
/// stopped when the last lets go of it (a static would never be dropped,
/// and would leave a server running after the tests).
fn cluster() -> Option<Arc<PgCluster>> {
    static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return Some(cluster);
    }
    let cluster = Arc::new(PgCluster::start()?);
    *shared = Arc::downgrade(&cluster);
    Some(cluster)
}

#[derive(Clone, Copy)]
enum On {
    Sqlite,
    Postgres,
    /// PostgreSQL, each connection as a node.
    PostgresNodes,
}

fn run_check(name: &str, on: On) {
    let check = CHECKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("no check {name}"));
    if let On::Sqlite = on {
        let dir = tempfile::tempdir().expect("tempdir");
        check(&SqliteFile(dir.path().join("hotline.db")));
        return;
    }
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    match on {
        On::Postgres => check(&Postgres {
            url,
            _cluster: cluster,
        }),
        _ => check(&PostgresNodes {
            url,
            opened: Default::default(),
            _cluster: cluster,
        }),
    }
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check of the suite has a test here, on each backend.
        const LISTED: &[&str] = &[$(stringify!($name)),*];

        mod sqlite {
            $(#[test]
            fn $name() {
                super::run_check(stringify!($name), super::On::Sqlite);
            })*
        }

        mod postgres {
            $(#[test]
            fn $name() {
                super::run_check(stringify!($name), super::On::Postgres);
            })*
        }

        mod postgres_nodes {
            $(#[test]
            fn $name() {
                super::run_check(stringify!($name), super::On::PostgresNodes);
            })*
        }
    };
}

checks!(
    a_campaign_and_its_attempts_survive_a_restart,
    a_campaigns_own_prompt_survives_a_restart,
    a_second_start_of_one_attempt_is_taken,
    a_task_reads_back_as_it_was_written,
    an_older_task_write_never_replaces_a_newer_one,
    a_task_changed_by_another_node_is_taken,
    a_new_task_with_an_id_another_node_holds_is_taken,
    closed_tasks_are_read_back_for_seven_days_open_ones_always,
    contacts_read_back_one_per_number_for_thirty_days,
    kb_an_entry_is_created_at_version_one_and_read_back,
    kb_search_finds_chinese_and_english_words_anywhere_newest_first,
    kb_an_edit_from_the_current_version_is_saved_a_stale_one_gets_the_current,
    kb_a_stale_edit_from_another_node_gets_the_current,
    kb_the_history_keeps_every_version_and_all_of_it_survives_a_restart,
);

#[test]
fn every_check_of_the_suite_runs_here() {
    let mut suite: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
    let mut here = LISTED.to_vec();
    suite.sort_unstable();
    here.sort_unstable();
    assert_eq!(here, suite, "checks! must list every check of the suite");
}

// ---- what only a shared server has -------------------------------------------

const T0: u64 = 1_796_520_600_000;

fn spec() -> CampaignSpec {
    CampaignSpec::parse(
        &serde_json::json!({"name": "outage", "trunk": "pstn", "prompt": "notice",
                            "numbers": ["13800000001", "13800000002", "13800000003"]}),
        None,
        0,
    )
    .expect("spec")
}

fn started(campaign: hotline::campaign::CampaignId, target: usize, at_ms: u64) -> StoreWrite {
    StoreWrite::AttemptStarted {
        campaign,
        target,
        attempt: Attempt {
            number: 1,
            at_ms,
            ended_ms: None,
            result: None,
            sip_status: 0,
            call_id: None,
        },
    }
}

#[test]
fn nodes_connecting_at_once_create_the_schema_once_and_one_claim_wins() {
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    const NODES: usize = 6;
    // Every node connects to the empty database at the same moment.
    let barrier = Arc::new(Barrier::new(NODES));
    let nodes: Vec<_> = (0..NODES)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::connect(&url)
            })
        })
        .collect();
    let mut stores: Vec<PostgresStore> = nodes
        .into_iter()
        .map(|n| {
            n.join()
                .expect("node thread")
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let campaign = stores[0]
        .create_campaign(&spec(), T0, None)
        .expect("create");

    // They all race to start the same attempt: exactly one has it.
    let barrier = Arc::new(Barrier::new(NODES));
    let racers: Vec<_> = stores
        .drain(..)
        .enumerate()
        .map(|(i, mut store)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let result = store.apply(&started(campaign, 2, T0 + i as u64), T0);
                (i, result, store)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (i, result, store) = racer.join().expect("racer");
        match result {
            Ok(()) => winners.push(i),
            Err(StoreError::Taken { .. }) => {}
            Err(e) => panic!("node {i}: {e}"),
        }
        stores.push(store);
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let work = stores[0].load(T0, 7).expect("load");
    let target = &work.campaigns[0].campaign.targets[2];
    assert_eq!(target.state, NumberState::Dialing);
    assert_eq!(target.attempts.len(), 1);
    assert_eq!(
        target.attempts[0].at_ms,
        T0 + winners[0] as u64,
        "the attempt stored is the winner's"
    );
}

#[test]
fn after_an_outage_the_store_connects_again_and_lost_nothing_committed() {
    // Its own cluster: this test stops it.
    let Some(mut cluster) = PgCluster::start() else {
        return;
    };
    let mut store = PostgresStore::connect(&cluster.url()).unwrap_or_else(|e| panic!("{e}"));
    let campaign = store.create_campaign(&spec(), T0, None).expect("create");
    store
        .apply(&started(campaign, 0, T0 + 1), T0)
        .expect("before the outage");

    cluster.stop();
    let during = store.apply(&started(campaign, 1, T0 + 2), T0);
    assert!(
        matches!(
            during,
            Err(StoreError::Postgres { .. } | StoreError::Connect { .. })
        ),
        "a write while the server is down fails: {during:?}"
    );
    assert!(store.load(T0, 7).is_err(), "so does a read");
    cluster.start_again();

    // The next write connects again and is made.
    store
        .apply(&started(campaign, 1, T0 + 3), T0)
        .expect("after the outage");
    let targets = store.load(T0, 7).expect("load").campaigns[0]
        .campaign
        .targets
        .clone();
    let at: Vec<Option<u64>> = targets
        .iter()
        .map(|t| t.attempts.first().map(|a| a.at_ms))
        .collect();
    assert_eq!(at, vec![Some(T0 + 1), Some(T0 + 3), None]);
    assert_eq!(targets[1].state, NumberState::Dialing);

    // A server restarted while the store was idle is found at the next
    // write, which connects again at once (nothing was sent yet).
    cluster.stop();
    cluster.start_again();
    store
        .apply(&started(campaign, 2, T0 + 4), T0)
        .expect("after a restart while idle");
    drop(store);
    let mut again = PostgresStore::connect(&cluster.url()).unwrap_or_else(|e| panic!("{e}"));
    let targets = &again.load(T0, 7).expect("load").campaigns[0]
        .campaign
        .targets;
    assert!(targets.iter().all(|t| t.state == NumberState::Dialing));
}

#[test]
fn a_server_that_does_not_answer_is_an_error_naming_it_without_the_password() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("postgres://hotline:s3cret@127.0.0.1:{port}/hotline?connect_timeout=2");
    let err = match PostgresStore::connect(&url) {
        Err(e) => e,
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("Connection refused"), "{message}");
    assert!(
        message.contains(&format!("postgres://hotline@127.0.0.1:{port}/hotline")),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    // The same through the config's way in.
    let path = std::path::Path::new("unused.db");
    assert_eq!(
        hotline::shell::store::describe(Some(&url), path),
        format!("postgres://hotline@127.0.0.1:{port}/hotline?connect_timeout=2")
    );
    assert!(hotline::shell::store::open(Some(&url), path, None).is_err());
}

#[test]
fn the_shared_store_opens_from_async_code_and_its_thread_reports_a_lost_claim() {
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    let unused = std::path::Path::new("unused.db");
    // As `hotline run` does, on its multi-threaded runtime: opened and
    // read from async code; dropped there too when the run stops on an
    // error before the store thread takes the store.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (store, work) =
            hotline::shell::store::open_and_load(Some(&url), unused, None, T0, 7).expect("open");
        assert!(work.campaigns.is_empty());
        drop(store);
    });
    let (campaign, store) = runtime.block_on(async {
        let (mut store, _) =
            hotline::shell::store::open_and_load(Some(&url), unused, None, T0, 7).expect("open");
        // Blocking, but no call is waiting yet.
        let campaign = tokio::task::block_in_place(|| store.create_campaign(&spec(), T0, None))
            .expect("create");
        (campaign, store)
    });

    // The store thread: each write acknowledged, a claim another node
    // holds reported as taken (the engine then neither dials nor writes
    // anything more about it).
    let (events, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let thread = hotline::shell::store::StoreThread::start(store, events).expect("thread");
    let mut other = PostgresStore::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    other
        .apply(&started(campaign, 1, T0 + 5), T0)
        .expect("the other node's claim");
    thread.write(1, started(campaign, 0, T0 + 6));
    thread.write(2, started(campaign, 1, T0 + 7));
    thread.finish();
    let mut got = Vec::new();
    while let Ok(event) = acks.try_recv() {
        got.push(match event {
            hotline::shell::Event::Stored { id } => (id, "stored"),
            hotline::shell::Event::StoreTaken { id } => (id, "taken"),
            hotline::shell::Event::StoreFailed { id } => (id, "failed"),
            _ => panic!("not a store event"),
        });
    }
    assert_eq!(got, vec![(1, "stored"), (2, "taken")]);
    let work = other.load(T0, 7).expect("load");
    let at: Vec<Option<u64>> = work.campaigns[0]
        .campaign
        .targets
        .iter()
        .map(|t| t.attempts.first().map(|a| a.at_ms))
        .collect();
    assert_eq!(at, vec![Some(T0 + 6), Some(T0 + 5), None]);
}

#[test]
fn a_postgres_error_is_typed_says_what_failed_and_the_store_goes_on() {
    use hotline::shell::store::kb::{KbError, KbStore};
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    let mut store = PostgresStore::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("admin");
    admin.batch_execute("DROP TABLE kb").expect("drop");
    match store.kb_get(1) {
        Err(KbError::Store(e @ StoreError::Postgres { what, .. })) => {
            assert_eq!(what, "reading the knowledge base");
            // With the server's own words, not only "db error".
            let message = e.to_string();
            assert!(
                message.contains(r#"relation "kb" does not exist"#),
                "{message}"
            );
        }
        other => panic!("expected a typed error, got {other:?}"),
    }
    // The failed transaction is over: the next one works.
    let campaign = store.create_campaign(&spec(), T0, None).expect("create");
    assert_eq!(
        store.load(T0, 7).expect("load").campaigns[0].campaign.id,
        campaign
    );
}

// ---- work shared between nodes: runner, feed, adoption ----------------------

use std::time::{Duration, Instant};

use hotline::campaign::{AttemptResult, CampaignId, CampaignState};
use hotline::shell::store::NodeIdentity;
use hotline::store::{Changed, ChangedTarget, Contact, WorkChanges};
use hotline::tasks::{CallbackMode, Task, TaskId, TaskKind, TaskState};

/// Store connected as node `id`, its lease `lease`, and loaded (which
/// renews its lease, as the cluster's heartbeat would).
fn node(url: &str, id: &str, lease: Duration) -> PostgresStore {
    let mut store = PostgresStore::connect_as(
        url,
        NodeIdentity {
            id: id.into(),
            lease,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    store.load(T0, 7).expect("load");
    store
}

const LONG: Duration = Duration::from_secs(60);

fn task(id: u64, version: u64) -> Task {
    Task {
        id: TaskId(id),
        kind: TaskKind::FollowUp,
        number: "13800000001".into(),
        queue: "repair".into(),
        business: None,
        note: "请回访".into(),
        created_ms: T0,
        due_ms: Some(T0 + 86_400_000),
        state: TaskState::Open,
        attempts: Vec::new(),
        max_attempts: 3,
        retry_ms: 30 * 60_000,
        not_before_ms: T0,
        priority: 0,
        order_ms: T0,
        owner: None,
        origin_call: None,
        mode: CallbackMode::AgentFirst,
        outcome: None,
        closed_ms: None,
        version,
        order: None,
    }
}

use hotline::shell::store::conformance::write_task;

/// Everything `store.changes()` returns until `done` holds of it all
/// (notifications reach a session shortly after the commit, not at once);
/// a panic after 5 s.
fn changes_until(store: &mut dyn Store, done: impl Fn(&WorkChanges) -> bool) -> WorkChanges {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut all = WorkChanges::default();
    loop {
        let more = store.changes(T0).expect("changes");
        all.campaigns.extend(more.campaigns);
        all.targets.extend(more.targets);
        all.tasks.extend(more.tasks);
        all.do_not_call.extend(more.do_not_call);
        all.contacts.extend(more.contacts);
        if done(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "no such changes: {all:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The campaign ids in `changes`, each with whether it is foreign.
fn campaigns_in(changes: &WorkChanges) -> Vec<(CampaignId, bool)> {
    changes
        .campaigns
        .iter()
        .map(|c| (c.item.campaign.id, c.foreign))
        .collect()
}

fn ended(campaign: CampaignId, target: usize, at_ms: u64) -> StoreWrite {
    StoreWrite::AttemptEnded {
        campaign,
        target,
        attempt: Attempt {
            number: 1,
            at_ms,
            ended_ms: Some(at_ms + 20_000),
            result: Some(AttemptResult::Confirmed),
            sip_status: 200,
            call_id: Some("hl-a-7".into()),
        },
        state: NumberState::Confirmed,
        due_ms: None,
    }
}

#[test]
fn a_node_sees_what_another_creates_and_dials_and_not_its_own_writes() {
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);

    let campaign = a.create_campaign(&spec(), T0, None).expect("create");
    let created = task(1, 1);
    write_task(&mut a, &created).expect("task");
    let seen = changes_until(&mut b, |c| !c.campaigns.is_empty() && !c.tasks.is_empty());
    assert_eq!(campaigns_in(&seen), vec![(campaign, true)]);
    let stored = &seen.campaigns[0].item;
    assert_eq!(stored.campaign.spec.name, "outage");
    assert_eq!(stored.campaign.targets.len(), 3);
    assert_eq!(
        seen.tasks,
        vec![Changed {
            item: created.clone(),
            foreign: true
        }]
    );
    assert!(seen.targets.is_empty(), "{seen:?}");

    // An attempt: one number, with the attempt, not the whole campaign.
    a.apply(&started(campaign, 1, T0 + 10), T0).expect("start");
    let seen = changes_until(&mut b, |c| !c.targets.is_empty());
    assert!(seen.campaigns.is_empty(), "{seen:?}");
    assert_eq!(seen.targets.len(), 1, "{seen:?}");
    let ChangedTarget {
        campaign: of,
        index,
        target,
    } = &seen.targets[0];
    assert_eq!((*of, *index), (campaign, 1));
    assert_eq!(target.number, "13800000002");
    assert_eq!(target.state, NumberState::Dialing);
    assert_eq!(target.attempts.len(), 1);
    assert_eq!(target.attempts[0].at_ms, T0 + 10);
    assert_eq!(target.attempts[0].ended_ms, None);

    // Its end, the do-not-call list, a contact, a campaign paused.
    a.apply(&ended(campaign, 1, T0 + 10), T0).expect("end");
    a.apply(
        &StoreWrite::DoNotCall {
            number: "13800000003".into(),
        },
        T0,
    )
    .expect("dnc");
    let contact = Contact {
        number: "13900000001".into(),
        call_id: "hl-a-9".into(),
        agent: Some("1001".into()),
        at_ms: T0 + 5,
    };
    a.apply(&StoreWrite::Contact(contact.clone()), T0)
        .expect("contact");
    a.apply(
        &StoreWrite::Campaign {
            campaign,
            state: CampaignState::Paused,
        },
        T0,
    )
    .expect("pause");
    let seen = changes_until(&mut b, |c| {
        !c.targets.is_empty()
            && !c.do_not_call.is_empty()
            && !c.contacts.is_empty()
            && !c.campaigns.is_empty()
    });
    assert_eq!(seen.targets.len(), 1, "{seen:?}");
    assert_eq!(seen.targets[0].target.state, NumberState::Confirmed);
    assert_eq!(
        seen.targets[0].target.attempts[0].result,
        Some(AttemptResult::Confirmed)
    );
    assert_eq!(seen.do_not_call, vec!["13800000003".to_string()]);
    assert_eq!(seen.contacts, vec![contact]);
    assert_eq!(campaigns_in(&seen), vec![(campaign, true)]);
    assert_eq!(seen.campaigns[0].item.campaign.state, CampaignState::Paused);

    // Node B's own write reaches A after all of A's (each session hears
    // them in commit order): by then A has heard its own, and left them
    // out.
    let theirs = b.create_campaign(&spec(), T0, None).expect("B's campaign");
    let seen = changes_until(&mut a, |c| !c.campaigns.is_empty());
    assert_eq!(campaigns_in(&seen), vec![(theirs, true)], "{seen:?}");
    assert!(
        seen.targets.is_empty()
            && seen.tasks.is_empty()
            && seen.do_not_call.is_empty()
            && seen.contacts.is_empty(),
        "A's own writes came back: {seen:?}"
    );
    // Nor does B of its own: A's next write is all B hears.
    a.apply(
        &StoreWrite::DoNotCall {
            number: "13800000009".into(),
        },
        T0,
    )
    .expect("dnc");
    let seen = changes_until(&mut b, |c| !c.do_not_call.is_empty());
    assert_eq!(
        seen,
        WorkChanges {
            do_not_call: vec!["13800000009".into()],
            ..Default::default()
        }
    );
}

#[test]
fn a_task_another_node_wrote_is_the_base_and_an_older_copy_is_taken() {
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    let mut a = node(&url, "a", LONG);
    let v1 = task(7, 1);
    write_task(&mut a, &v1).expect("created");
    let mut b = node(&url, "b", LONG);

    // Node B's agent takes it over (its outcome set on B's desk).
    let by_b = Task {
        state: TaskState::Offered,
        owner: Some("1002".into()),
        version: 2,
        ..v1.clone()
    };
    write_task(&mut b, &by_b).expect("B writes A's task");
    let seen = changes_until(&mut a, |c| !c.tasks.is_empty());
    assert_eq!(
        seen.tasks,
        vec![Changed {
            item: by_b.clone(),
            foreign: false
        }],
        "A still runs it"
    );

    // A copy A made from version 1 (A's engine had not applied B's yet):
    // not ignored, not written over B's, but taken.
    for stale in [
        Task {
            owner: Some("1001".into()),
            version: 2,
            ..v1.clone()
        },
        Task {
            state: TaskState::Done,
            version: 1,
            ..v1.clone()
        },
    ] {
        match write_task(&mut a, &stale) {
            Err(StoreError::Taken { what }) => assert!(what.contains("task 7"), "{what}"),
            other => panic!("expected Taken, got {other:?}"),
        }
    }
    let mut check = PostgresStore::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(check.load(T0, 7).expect("load").tasks, vec![by_b.clone()]);

    // From B's version on, A's write is made.
    let after = Task {
        state: TaskState::Done,
        closed_ms: Some(T0 + 1000),
        version: 3,
        ..by_b.clone()
    };
    write_task(&mut a, &after).expect("from B's version");
    assert_eq!(check.load(T0, 7).expect("load").tasks, vec![after.clone()]);
    // B hears of it, and A's write reaches it as A's (A runs it).
    let seen = changes_until(&mut b, |c| !c.tasks.is_empty());
    assert_eq!(
        seen.tasks,
        vec![Changed {
            item: after,
            foreign: true
        }]
    );
}

#[test]
fn loading_as_a_node_names_what_others_run_and_what_none_runs_foreign() {
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    let mut a = node(&url, "a", LONG);
    let theirs = a.create_campaign(&spec(), T0, None).expect("A's");
    write_task(&mut a, &task(1, 1)).expect("A's task");
    // Written without a node (as before nodes shared work): none runs it.
    let mut plain = PostgresStore::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    let nobodys = plain.create_campaign(&spec(), T0, None).expect("none's");
    write_task(&mut plain, &task(2, 1)).expect("none's task");
    let mut b = node(&url, "b", LONG);
    let mine = b.create_campaign(&spec(), T0, None).expect("B's");
    write_task(&mut b, &task(3, 1)).expect("B's task");

    let work = b.load(T0, 7).expect("load as B");
    assert_eq!(work.campaigns.len(), 3);
    assert_eq!(work.tasks.len(), 3);
    assert_eq!(
        work.foreign.campaigns.iter().copied().collect::<Vec<_>>(),
        vec![theirs, nobodys]
    );
    assert!(!work.foreign.campaigns.contains(&mine));
    assert_eq!(
        work.foreign.tasks.iter().copied().collect::<Vec<_>>(),
        vec![TaskId(1), TaskId(2)]
    );
    let work = a.load(T0, 7).expect("load as A");
    assert_eq!(
        work.foreign.campaigns.iter().copied().collect::<Vec<_>>(),
        vec![nobodys, mine]
    );
    // Without a node, as ever: everything its own.
    let work = plain.load(T0, 7).expect("load without a node");
    assert_eq!(work.campaigns.len(), 3);
    assert!(work.foreign.campaigns.is_empty() && work.foreign.tasks.is_empty());
    assert!(!plain.shared() && plain.changes(T0).expect("changes").is_empty());
    assert!(plain.adopt(T0).expect("adopt").campaigns.is_empty());
}

#[test]
fn a_live_node_adopts_the_running_work_of_a_dead_one_once() {
    let Some(cluster) = cluster() else { return };
    let url = cluster.create_database();
    // D's lease runs out first, then A's; B and C live on.
    let mut d = node(&url, "d", Duration::from_secs(1));
    let mut a = node(&url, "a", Duration::from_secs(2));
    let a_alive_until = Instant::now() + Duration::from_secs(2);
    let mut b = node(&url, "b", LONG);
    let mut c = node(&url, "c", LONG);

    // A's work: a campaign with an attempt left on the line, one
    // cancelled, a task open, one closed.
    let running = a.create_campaign(&spec(), T0, None).expect("running");
    a.apply(&started(running, 0, T0 + 1), T0)
        .expect("on the line");
    let cancelled = a.create_campaign(&spec(), T0, None).expect("cancelled");
    a.apply(
        &StoreWrite::Campaign {
            campaign: cancelled,
            state: CampaignState::Cancelled,
        },
        T0,
    )
    .expect("cancel");
    write_task(&mut a, &task(1, 1)).expect("open task");
    // Changed by A after B read it: B must go on from this version.
    let open = Task {
        note: "changed by A".into(),
        version: 2,
        ..task(1, 1)
    };
    write_task(&mut a, &open).expect("open task changed");
    let done = Task {
        state: TaskState::Done,
        closed_ms: Some(T0 + 1),
        ..task(2, 1)
    };
    write_task(&mut a, &done).expect("closed task");
    // And a campaign no node runs.
    let mut plain = PostgresStore::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    let nobodys = plain.create_campaign(&spec(), T0, None).expect("none's");

    // While A lives, only what no node runs is adopted.
    let early = b.adopt(T0).expect("adopt");
    assert!(
        Instant::now() < a_alive_until,
        "too slow to test a live lease"
    );
    let ids: Vec<CampaignId> = early.campaigns.iter().map(|c| c.campaign.id).collect();
    assert_eq!(ids, vec![nobodys]);
    assert!(early.tasks.is_empty(), "{early:?}");

    // A's lease runs out (no heartbeat comes), D's before it.
    std::thread::sleep(a_alive_until.saturating_duration_since(Instant::now()));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.adopt(T0).expect("adopt"), Default::default(), "D is dead");
    assert_eq!(a.adopt(T0).expect("adopt"), Default::default(), "A is dead");

    let adopted = b.adopt(T0).expect("adopt");
    assert!(adopted.foreign.campaigns.is_empty() && adopted.foreign.tasks.is_empty());
    let ids: Vec<CampaignId> = adopted.campaigns.iter().map(|c| c.campaign.id).collect();
    assert_eq!(ids, vec![running], "the running one only");
    let number = &adopted.campaigns[0].campaign.targets[0];
    assert_eq!(number.state, NumberState::Dialing);
    assert_eq!(number.attempts.len(), 1);
    assert_eq!(number.attempts[0].ended_ms, None, "still on the line");
    assert_eq!(adopted.tasks, vec![open.clone()], "the open task only");

    // Once: not again, not by another node.
    assert_eq!(b.adopt(T0).expect("adopt"), Default::default());
    assert_eq!(c.adopt(T0).expect("adopt"), Default::default());

    // B writes from the version it adopted (B read the store before the
    // task was created), and runs them now.
    let next = Task {
        note: "changed by B".into(),
        version: 3,
        ..open
    };
    write_task(&mut b, &next).expect("B writes the task it adopted");
    let work = b.load(T0, 7).expect("load");
    assert!(!work.foreign.campaigns.contains(&running));
    assert!(!work.foreign.tasks.contains(&TaskId(1)));
    assert!(work.foreign.tasks.contains(&TaskId(2)), "closed: left to A");
    // C heard of the adoption: B runs them, not C.
    let seen = changes_until(&mut c, |ch| {
        campaigns_in(ch).contains(&(running, true)) && ch.tasks.iter().any(|t| t.item == next)
    });
    assert!(seen.tasks.iter().all(|t| t.foreign));
}

#[test]
fn after_the_connection_is_made_again_changes_reads_everything_again() {
    // Its own cluster: this test stops it.
    let Some(mut cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.url();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    let before = a.create_campaign(&spec(), T0, None).expect("before");
    let mine = b.create_campaign(&spec(), T0, None).expect("B's");
    changes_until(&mut b, |c| !c.campaigns.is_empty());

    cluster.stop();
    assert!(b.changes(T0).is_err(), "the server is down");
    cluster.start_again();
    // A writes before B is connected again: B cannot hear of it.
    let during = a.create_campaign(&spec(), T0, None).expect("during");
    write_task(&mut a, &task(5, 1)).expect("A's task");

    let seen = b.changes(T0).expect("changes after the outage");
    let mut campaigns = campaigns_in(&seen);
    campaigns.sort();
    assert_eq!(
        campaigns,
        vec![(before, true), (mine, false), (during, true)],
        "everything, read again"
    );
    assert_eq!(
        seen.tasks,
        vec![Changed {
            item: task(5, 1),
            foreign: true
        }]
    );
    // Then the feed again, not everything each time.
    assert!(b.changes(T0).expect("changes").is_empty());
    let after = a.create_campaign(&spec(), T0, None).expect("after");
    let seen = changes_until(&mut b, |c| !c.campaigns.is_empty());
    assert_eq!(campaigns_in(&seen), vec![(after, true)]);
    // The resync counted as another node's write: a copy older than it
    // is taken.
    match write_task(&mut b, &task(5, 1)) {
        Err(StoreError::Taken { .. }) => {}
        other => panic!("expected Taken, got {other:?}"),
    }
}

/// On a fresh database: node a, whose lease (1 s) will run out, and node
/// b's store thread, its events on the receiver.
fn a_dying_and_bs_thread(
    cluster: &PgCluster,
) -> (
    String,
    PostgresStore,
    hotline::shell::store::StoreThread,
    tokio::sync::mpsc::UnboundedReceiver<hotline::shell::Event>,
) {
    let url = cluster.create_database();
    let a = node(&url, "a", Duration::from_secs(1));
    let b = node(&url, "b", LONG);
    let (events, got) = tokio::sync::mpsc::unbounded_channel();
    let thread = hotline::shell::store::StoreThread::start(Box::new(b), events).expect("thread");
    (url, a, thread, got)
}

#[test]
fn the_store_thread_of_a_node_passes_on_changes_and_adopted_work() {
    let Some(cluster) = cluster() else { return };
    let (_, mut a, thread, mut got) = a_dying_and_bs_thread(&cluster);
    let campaign = a.create_campaign(&spec(), T0, None).expect("create");

    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut changed, mut adopted) = (None, None);
    while adopted.is_none() {
        assert!(Instant::now() < deadline, "changed: {changed:?}");
        match got.try_recv() {
            Ok(hotline::shell::Event::WorkChanged(changes)) => {
                changed.get_or_insert(campaigns_in(&changes));
            }
            Ok(hotline::shell::Event::WorkAdopted(work)) => {
                adopted = Some(
                    work.campaigns
                        .iter()
                        .map(|c| c.campaign.id)
                        .collect::<Vec<_>>(),
                );
            }
            Ok(_) => panic!("not a shared-work event"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    // Heard of at once, taken over once A's lease ran out (1 s).
    assert_eq!(changed, Some(vec![(campaign, true)]));
    assert_eq!(adopted, Some(vec![campaign]));
    // Writes go on being served meanwhile.
    thread.write(1, started(campaign, 0, T0 + 1));
    thread.finish();
    let mut acks = Vec::new();
    while let Ok(event) = got.try_recv() {
        if let hotline::shell::Event::Stored { id } = event {
            acks.push(id);
        }
    }
    assert_eq!(acks, vec![1]);
}

/// A draining node (SIGTERM) takes over no work: what a dead node left
/// would only wait there until it stops. It still hears of changes, and
/// the work stays for another node.
#[test]
fn a_draining_nodes_store_thread_takes_over_nothing() {
    let Some(cluster) = cluster() else { return };
    let (url, mut a, thread, mut got) = a_dying_and_bs_thread(&cluster);
    thread.stop_adopting();
    let campaign = a.create_campaign(&spec(), T0, None).expect("create");
    // Three adoption rounds after a's lease (1 s) ran out.
    let until = Instant::now() + Duration::from_secs(4);
    let mut changed = false;
    while Instant::now() < until {
        match got.try_recv() {
            Ok(hotline::shell::Event::WorkChanged(_)) => changed = true,
            Ok(hotline::shell::Event::WorkAdopted(work)) => {
                panic!("a draining node took work over: {work:?}")
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert!(changed, "it still hears of other nodes' changes");
    thread.finish();
    let mut c = node(&url, "c", LONG);
    let left: Vec<_> = c
        .adopt(T0)
        .expect("adopt")
        .campaigns
        .iter()
        .map(|s| s.campaign.id)
        .collect();
    assert_eq!(left, vec![campaign], "left for a node that is not draining");
}

// ---- TLS to the server -----------------------------------------------------

/// A server that takes TCP only over TLS: the store and the cluster thread
/// connect with `sslmode=require` and the server's certificate as
/// `sslrootcert`, and what they write is there; without TLS, or trusting
/// another certificate, they do not connect, and say why.
#[test]
fn tls_to_postgresql_is_used_and_the_server_is_verified() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let Some(cluster) = PgCluster::start_tls(&made.cert.pem(), &made.signing_key.serialize_pem())
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("db ca.pem");
    std::fs::write(&root, made.cert.pem()).expect("write the root");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, other.cert.pem()).expect("write another root");
    let with = |params: &str| format!("{}?{params}", cluster.url());
    let escaped = |path: &std::path::Path| path.display().to_string().replace(' ', "%20");

    // Over TLS, verified against the root named in the URL (its space
    // written as %20, as in any URL).
    let good = with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        escaped(&root)
    ));
    let mut store = PostgresStore::connect(&good).unwrap_or_else(|e| panic!("over TLS: {e}"));
    store
        .apply(
            &StoreWrite::DoNotCall {
                number: "13800000001".into(),
            },
            T0,
        )
        .expect("a write over TLS");
    assert_eq!(
        store.load(T0, 7).expect("load").do_not_call,
        vec!["13800000001".to_string()]
    );
    let mut server = ::postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=hotline sslmode=disable",
            cluster.port()
        ),
        ::postgres::NoTls,
    );
    assert!(server.is_err(), "the server refuses TCP without TLS");
    let used: bool = {
        let target = hotline::shell::store::postgres::tls::PgTarget::parse(&good).expect("url");
        server = target.connect();
        let mut client = server.unwrap_or_else(|e| panic!("{e}"));
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .expect("pg_stat_ssl")
            .get(0)
    };
    assert!(used, "the connection is encrypted");

    // The cluster thread connects the same way.
    let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
    let thread = hotline::shell::cluster::ClusterThread::start(
        &good,
        "tls-node".into(),
        Duration::from_secs(5),
        events,
    )
    .unwrap_or_else(|e| panic!("the cluster over TLS: {e}"));
    thread.finish();

    // No sslmode: plain TCP, which this server refuses.
    let plain = PostgresStore::connect(&cluster.url())
        .err()
        .map(|e| e.to_string());
    assert!(
        plain
            .as_deref()
            .is_some_and(|e| e.contains("no encryption") || e.contains("pg_hba.conf")),
        "{plain:?}"
    );
    // Another certificate trusted: the server's is refused.
    let distrusted = with(&format!("sslmode=require&sslrootcert={}", wrong.display()));
    let refused = PostgresStore::connect(&distrusted)
        .err()
        .map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("certificate")),
        "{refused:?}"
    );
    // A root file that is not there is named.
    let missing = with("sslmode=require&sslrootcert=/nowhere/ca.pem");
    let named = PostgresStore::connect(&missing)
        .err()
        .map(|e| e.to_string());
    assert!(
        named
            .as_deref()
            .is_some_and(|e| e.contains("/nowhere/ca.pem")),
        "{named:?}"
    );
}
