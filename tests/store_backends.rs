//! The store's test suite (`hotline::shell::store::conformance`) on both
//! backends: every check on a fresh SQLite file, and on a fresh database
//! of a throw-away PostgreSQL (one cluster shared by the tests running at
//! the same time, a database each). Then what only a shared server has:
//! nodes connecting at once, an outage, a URL that does not answer.
//!
//! Needs PostgreSQL's server (Debian: `apt-get install postgresql`);
//! without it the PostgreSQL tests are skipped, or fail under `CI=true`.

#[path = "support/postgres.rs"]
mod pg;

use std::sync::{Arc, Barrier, Mutex, Weak};

use hotline::campaign::{Attempt, CampaignSpec, NumberState};
use hotline::shell::store::conformance::{Backend, CHECKS};
use hotline::shell::store::postgres::PostgresStore;
use hotline::shell::store::sqlite::SqliteStore;
use hotline::shell::store::{Store, StoreError};
use hotline::store::StoreWrite;
use pg::PgCluster;

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.0.path().join("hotline.db")).expect("open SQLite"))
    }

    fn shared(&self) -> bool {
        false
    }
}

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

fn run_check(name: &str, on_postgres: bool) {
    let check = CHECKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("no check {name}"));
    if on_postgres {
        let Some(cluster) = cluster() else { return };
        let url = cluster.create_database();
        check(&Postgres {
            url,
            _cluster: cluster,
        });
    } else {
        check(&Sqlite(tempfile::tempdir().expect("tempdir")));
    }
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check of the suite has a test here, on each backend.
        const LISTED: &[&str] = &[$(stringify!($name)),*];

        mod sqlite {
            $(#[test]
            fn $name() {
                super::run_check(stringify!($name), false);
            })*
        }

        mod postgres {
            $(#[test]
            fn $name() {
                super::run_check(stringify!($name), true);
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
