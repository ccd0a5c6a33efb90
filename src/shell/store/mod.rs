//! The store: where work that outlives a call is kept (campaigns, their
//! numbers and attempts, the do-not-call list, tasks), and the knowledge
//! base ([`kb`]). One interface, [`Store`], two backends: the embedded
//! SQLite file ([`sqlite`]), the default, nothing to install or start;
//! and PostgreSQL ([`postgres`], `[store] url`), which several nodes
//! share.
//!
//! Both keep the same tables and answer the same way, and the same tests
//! run against both ([`conformance`]). What sharing adds is that a write
//! which claims work is a claim: if another node already holds the work
//! (started the same campaign attempt, or changed the task since this
//! node read it), PostgreSQL refuses it with [`StoreError::Taken`] and
//! writes nothing. SQLite has one node, and never returns it.
//!
//! Sharing also spreads the work ([`Store::shared`], a PostgreSQL store
//! connected as a node, [`NodeIdentity`]): each campaign and task is run
//! by one node, the one that created it or took it over, and the others
//! keep a copy to show and route by ([`StoredWork::foreign`]). What
//! other nodes change reaches this one through [`Store::changes`]; the
//! work of a node whose lease ran out is taken over with
//! [`Store::adopt`].
//!
//! One thread owns the store ([`StoreThread`]): the engine's writes are
//! applied in order, each committed durably, and acknowledged back to the
//! engine, which waits for the acknowledgement of an attempt before its
//! INVITE leaves. On a shared store it also asks, between jobs, for the
//! other nodes' changes (every 100 ms) and for work to adopt (every
//! second), and hands what it gets to the engine
//! (`Event::WorkChanged`, `Event::WorkAdopted`).

#[doc(hidden)]
pub mod conformance;
pub mod kb;
pub mod postgres;
mod rows;
pub mod sqlite;

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::{mpsc as tokio_mpsc, oneshot};
use tracing::{error, info, warn};

use crate::campaign::{CampaignId, CampaignSpec};
use crate::store::{StoreWrite, StoredWork, WorkChanges};

use super::Event;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("store: campaign {campaign}: {problem}")]
    Corrupt { campaign: u64, problem: String },
    #[error("store: task {task}: {problem}")]
    CorruptTask { task: u64, problem: String },
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    /// PostgreSQL could not be reached at `url` (shown without its
    /// password).
    #[error("store {url}: {}", WithCauses(.error))]
    Connect {
        url: String,
        error: ::postgres::Error,
    },
    /// `[store] url` does not read, or names TLS settings that do not
    /// work (shown without its password).
    #[error("store {url}: {error}")]
    Url {
        url: String,
        error: postgres::tls::PgUrlError,
    },
    /// A statement failed on PostgreSQL; `what` says which.
    #[error("store: {what}: {}", WithCauses(.error))]
    Postgres {
        what: &'static str,
        error: ::postgres::Error,
    },
    /// Another node holds this work (several nodes share PostgreSQL): the
    /// write was a claim that lost, and nothing was written.
    #[error("store: {what}: another node holds this work")]
    Taken { what: String },
}

/// A PostgreSQL error with its causes: its own text only names its kind
/// ("db error"), the server's message is its cause. (Not a `source` of
/// [`StoreError`], so that a chain of errors shows it once.)
struct WithCauses<'a>(&'a ::postgres::Error);

impl std::fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// The store `[store]` names: PostgreSQL at `url` when it is set
/// (several nodes), otherwise the SQLite file at `path`.
pub fn open(
    url: Option<&str>,
    path: &Path,
    node: Option<&NodeIdentity>,
) -> Result<Box<dyn Store>, StoreError> {
    Ok(match url {
        Some(url) => Box::new(match node {
            Some(node) => postgres::PostgresStore::connect_as(url, node.clone())?,
            None => postgres::PostgresStore::connect(url)?,
        }),
        None => Box::new(sqlite::SqliteStore::open(path)?),
    })
}

/// Opens the store `[store]` names ([`open`]) and reads back the work it
/// holds ([`Store::load`]), on a thread of its own, since PostgreSQL's
/// blocking client cannot run on the async runtime's threads (nor can a
/// store that uses it: after this, only the store thread does). Errors
/// name the store ([`describe`]).
pub fn open_and_load(
    url: Option<&str>,
    path: &Path,
    node: Option<&NodeIdentity>,
    now_ms: u64,
    notice_days: u32,
) -> anyhow::Result<(Box<dyn Store>, StoredWork)> {
    use anyhow::Context;
    let name = describe(url, path);
    std::thread::scope(|scope| {
        let opening = scope.spawn(|| {
            let mut store =
                open(url, path, node).with_context(|| format!("opening the store {name}"))?;
            let work = store
                .load(now_ms, notice_days)
                .with_context(|| format!("reading the store {name}"))?;
            Ok((store, work))
        });
        opening
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// This node, where several nodes share the store: its name (`[node]
/// id`), which the campaigns and tasks it creates or takes over carry as
/// their runner, and its lease (`[node] lease`), after which the others
/// take that work over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub id: String,
    pub lease: Duration,
}

/// The store's name for messages: its URL without the password, or the
/// SQLite file's path.
pub fn describe(url: Option<&str>, path: &Path) -> String {
    match url {
        Some(url) => postgres::redact_url(url),
        None => path.display().to_string(),
    }
}

/// Work that outlives a call, kept durably. Every method is one
/// transaction, committed before it returns (or, on an error, nothing of
/// it is written).
pub trait Store: kb::KbStore + Send {
    /// Everything the engine runs from, read back at start: running and
    /// paused campaigns with their numbers and attempts, the do-not-call
    /// list, and the notices answered in the last `notice_days` days.
    fn load(&mut self, now_ms: u64, notice_days: u32) -> Result<StoredWork, StoreError>;

    /// A new campaign (its numbers pending), with its uploaded prompt's WAV
    /// bytes if any. Returns its id.
    fn create_campaign(
        &mut self,
        spec: &CampaignSpec,
        created_ms: u64,
        prompt_wav: Option<&[u8]>,
    ) -> Result<CampaignId, StoreError>;

    /// Applies one of the engine's writes.
    ///
    /// Where several nodes share the store (PostgreSQL), two writes are
    /// claims, and a claim another node already holds fails with
    /// [`StoreError::Taken`], writing nothing:
    /// - [`StoreWrite::AttemptStarted`]: the same campaign, number and
    ///   attempt number was started already (by another node: the engine
    ///   never starts one attempt twice);
    /// - [`StoreWrite::Task`]: the task changed in the store since this
    ///   store last read it ([`load`](Self::load)) or wrote it, that is,
    ///   another node wrote it meanwhile; or it is new here and another
    ///   node already has a task with its id. A write repeated as it was
    ///   is not a claim lost, and a write older than one this store
    ///   already made for the task is ignored, as on SQLite.
    ///
    /// SQLite has one node and never returns `Taken`: a repeated attempt
    /// start replaces the row, and a task write replaces the stored one
    /// unless that one is newer (a higher version).
    fn apply(&mut self, write: &StoreWrite, now_ms: u64) -> Result<(), StoreError>;

    /// Whether other nodes share this store (then the store thread asks
    /// for [`changes`](Self::changes) and [`adopt`](Self::adopt)).
    fn shared(&self) -> bool {
        false
    }

    /// Several nodes: what the other nodes changed since the last call.
    /// One node: nothing.
    fn changes(&mut self, _now_ms: u64) -> Result<WorkChanges, StoreError> {
        Ok(WorkChanges::default())
    }

    /// Several nodes: takes over the running campaigns and open tasks of
    /// nodes whose lease ran out (and of none), returned as
    /// [`load`](Self::load) returns work. One node: nothing.
    fn adopt(&mut self, _now_ms: u64) -> Result<StoredWork, StoreError> {
        Ok(StoredWork::default())
    }
}

/// What the store thread is asked.
enum Job {
    Write {
        id: u64,
        write: StoreWrite,
    },
    Create {
        spec: Box<CampaignSpec>,
        created_ms: u64,
        prompt_wav: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<CampaignId, String>>,
    },
    /// A knowledge base search or edit, from the API.
    Kb(kb::KbJob),
    /// This node is draining: it takes over no more work from dead nodes
    /// (it would only sit here until the node stops).
    StopAdopting,
    /// Everything before it is applied: stop. (The API's creators hold
    /// senders too, so the channel alone never closes while it serves.)
    Stop,
}

/// The thread that owns the store.
pub struct StoreThread {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Starts the thread; acknowledgements go to the engine on `events`.
    pub fn start(
        mut store: Box<dyn Store>,
        events: tokio_mpsc::UnboundedSender<Event>,
    ) -> std::io::Result<StoreThread> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                // Writes applied, and their time (each one a durable commit).
                let (mut writes, mut failed) = (0u64, 0u64);
                let (mut busy, mut slowest) = (Duration::ZERO, Duration::ZERO);
                // Several nodes: what the others change, and the work of
                // those that died, asked for between jobs.
                let mut shared = store.shared().then(|| Shared::new(Instant::now()));
                loop {
                    let job = match &shared {
                        None => match rx.recv() {
                            Ok(job) => Some(job),
                            Err(_) => break,
                        },
                        Some(s) => match rx.recv_timeout(s.until_due(Instant::now())) {
                            Ok(job) => Some(job),
                            Err(mpsc::RecvTimeoutError::Timeout) => None,
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        },
                    };
                    if let Some(job) = job {
                        let now_ms = wall_ms();
                        match job {
                            Job::Write { id, write } => {
                                let started = Instant::now();
                                let event = match store.apply(&write, now_ms) {
                                    Ok(()) => Event::Stored { id },
                                    // Another node holds the work: not an
                                    // error here, and nothing more is
                                    // written for it.
                                    Err(StoreError::Taken { what }) => {
                                        info!(%what, "another node holds this work");
                                        Event::StoreTaken { id }
                                    }
                                    Err(e) => {
                                        error!(error = %e, ?write, "store write failed");
                                        failed += 1;
                                        Event::StoreFailed { id }
                                    }
                                };
                                let took = started.elapsed();
                                writes += 1;
                                busy += took;
                                slowest = slowest.max(took);
                                let _ = events.send(event);
                            }
                            Job::Create {
                                spec,
                                created_ms,
                                prompt_wav,
                                reply,
                            } => {
                                let created = store
                                    .create_campaign(&spec, created_ms, prompt_wav.as_deref())
                                    .map_err(|e| {
                                        error!(error = %e, "cannot create a campaign");
                                        e.to_string()
                                    });
                                let _ = reply.send(created);
                            }
                            Job::Kb(job) => kb::serve(store.as_mut(), job, now_ms),
                            Job::StopAdopting => {
                                if let Some(s) = &mut shared {
                                    s.adopting = false;
                                }
                            }
                            Job::Stop => break,
                        }
                    }
                    // Also while jobs keep coming: they must not starve it.
                    if let Some(s) = &mut shared {
                        s.poll(store.as_mut(), &events, Instant::now());
                    }
                }
                info!(
                    writes,
                    failed,
                    mean_us = busy.as_micros() as u64 / writes.max(1),
                    max_us = slowest.as_micros() as u64,
                    "store closed"
                );
            })?;
        Ok(StoreThread {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// The node drains: the work of dead nodes is left to the others.
    pub fn stop_adopting(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::StopAdopting);
        }
    }

    pub fn write(&self, id: u64, write: StoreWrite) {
        if let Some(tx) = &self.tx {
            if tx.send(Job::Write { id, write }).is_err() {
                error!("the store thread has stopped; a write was not made");
            }
        }
    }

    /// A handle for other tasks (the API) to create campaigns with.
    pub fn creator(&self) -> Option<StoreCreator> {
        self.tx.clone().map(|tx| StoreCreator { tx })
    }

    /// Applies everything queued, then stops (a creation asked for later
    /// is answered "the store has stopped").
    pub fn finish(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Job::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How often the store thread asks a shared store for what the other
/// nodes changed: as often as the cluster reads the shared state.
const CHANGES_EVERY: Duration = Duration::from_millis(100);
/// How often it asks to adopt the work of dead nodes: a lease is seconds.
const ADOPT_EVERY: Duration = Duration::from_secs(1);

/// The store thread's side of sharing work with other nodes: when to ask
/// for changes and adoption next, and whether the last try failed (a
/// warning once per outage, not one every 100 ms).
struct Shared {
    changes_due: Instant,
    adopt_due: Instant,
    changes_failing: bool,
    adopt_failing: bool,
    /// Cleared when the node drains.
    adopting: bool,
}

impl Shared {
    fn new(now: Instant) -> Shared {
        Shared {
            changes_due: now + CHANGES_EVERY,
            adopt_due: now + ADOPT_EVERY,
            changes_failing: false,
            adopt_failing: false,
            adopting: true,
        }
    }

    /// How long to wait for a job before something is due.
    fn until_due(&self, now: Instant) -> Duration {
        let next = if self.adopting {
            self.changes_due.min(self.adopt_due)
        } else {
            self.changes_due
        };
        next.saturating_duration_since(now)
    }

    /// Asks for what is due; what it returns goes to the engine.
    fn poll(
        &mut self,
        store: &mut dyn Store,
        events: &tokio_mpsc::UnboundedSender<Event>,
        now: Instant,
    ) {
        if now >= self.changes_due {
            self.changes_due = now + CHANGES_EVERY;
            match store.changes(wall_ms()) {
                Ok(changes) => {
                    if self.changes_failing {
                        info!("the shared store's changes are read again");
                        self.changes_failing = false;
                    }
                    if !changes.is_empty() {
                        let _ = events.send(Event::WorkChanged(Box::new(changes)));
                    }
                }
                Err(e) => {
                    if !self.changes_failing {
                        warn!(error = %e, "cannot read what other nodes changed; trying again");
                        self.changes_failing = true;
                    }
                }
            }
        }
        if now >= self.adopt_due && self.adopting {
            self.adopt_due = now + ADOPT_EVERY;
            match store.adopt(wall_ms()) {
                Ok(work) => {
                    if self.adopt_failing {
                        info!("the work of dead nodes is looked for again");
                        self.adopt_failing = false;
                    }
                    if !work.campaigns.is_empty() || !work.tasks.is_empty() {
                        info!(
                            campaigns = work.campaigns.len(),
                            tasks = work.tasks.len(),
                            "took over the work of nodes whose lease ran out"
                        );
                        let _ = events.send(Event::WorkAdopted(Box::new(work)));
                    }
                }
                Err(e) => {
                    if !self.adopt_failing {
                        warn!(error = %e, "cannot take over the work of dead nodes; trying again");
                        self.adopt_failing = true;
                    }
                }
            }
        }
    }
}

/// Creates campaigns, and searches and edits the knowledge base, through
/// the store thread (cheap to clone).
#[derive(Clone)]
pub struct StoreCreator {
    tx: mpsc::Sender<Job>,
}

impl StoreCreator {
    pub async fn create(
        &self,
        spec: CampaignSpec,
        prompt_wav: Option<Vec<u8>>,
    ) -> Result<(CampaignId, u64), String> {
        let (reply, rx) = oneshot::channel();
        let created_ms = wall_ms();
        self.tx
            .send(Job::Create {
                spec: Box::new(spec),
                created_ms,
                prompt_wav,
                reply,
            })
            .map_err(|_| "the store has stopped".to_string())?;
        let id = rx
            .await
            .map_err(|_| "the store has stopped".to_string())??;
        Ok((id, created_ms))
    }
}

/// Milliseconds since the Unix epoch now.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{Attempt, CampaignId};

    #[test]
    fn finish_applies_what_is_queued_and_stops_while_the_api_holds_a_creator() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite::SqliteStore::open(&dir.path().join("s.db")).expect("open");
        let (events, mut acks) = tokio_mpsc::unbounded_channel();
        let thread = StoreThread::start(Box::new(store), events).expect("start");
        // The API's handle, alive for as long as the server runs.
        let _creator = thread.creator().expect("creator");
        let attempt = Attempt {
            number: 1,
            at_ms: 1,
            ended_ms: None,
            result: None,
            sip_status: 0,
            call_id: None,
        };
        thread.write(
            7,
            StoreWrite::AttemptStarted {
                campaign: CampaignId(1),
                target: 0,
                attempt,
            },
        );
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            thread.finish();
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(5))
            .expect("the store thread stopped");
        assert!(matches!(acks.try_recv(), Ok(Event::Stored { id: 7 })));
    }
}
