//! The shared store: PostgreSQL (`[store] url`), for several nodes. The
//! same tables as the embedded store ([`super::sqlite`]), and the same
//! answers, through rust-postgres's blocking client on the store thread.
//!
//! - The schema is created on connect, idempotently, under a
//!   transaction-scoped advisory lock, so that nodes starting together
//!   do not trip over each other's `CREATE TABLE IF NOT EXISTS`.
//! - Every method is one transaction, committed before it returns
//!   (`load` reads one snapshot: repeatable read, read only). PostgreSQL
//!   commits durably with its default `synchronous_commit = on`.
//! - Writes that claim work are claims ([`StoreError::Taken`], see
//!   [`Store::apply`]): an attempt start is an insert that must be the
//!   first; a task write is a compare-and-set on the version this store
//!   last read or wrote for it (the engine bumps a task's version on
//!   changes it does not write, so the version written is not always the
//!   stored one plus one).
//! - A connection lost (the server restarted, a network cut) fails the
//!   method that found it; the next one connects again. Starting a
//!   transaction changes nothing, so a connection found dead then is
//!   replaced and the transaction started again at once.
//!
//! Connected as a node ([`PostgresStore::connect_as`]), the store also
//! shares work between nodes (`postgres/feed.rs`):
//! - **Runner.** Each campaign and task names the node that runs it
//!   (`node`): the one that created it, or took it over. `load` renews
//!   this node's lease (`hl_nodes`, the cluster's table) and names
//!   everything another node runs, or none does, as foreign.
//! - **Feed.** Every write announces what it changed (`NOTIFY hl_work`,
//!   in its own transaction); [`Store::changes`] reads what the other
//!   nodes announced, as the store now holds it. A task another node
//!   wrote is then a version this node's writes must be newer than: a
//!   write derived from an older copy is `Taken`. After the connection
//!   was made again (announcements may have been missed), `changes`
//!   reads everything again instead.
//! - **Adoption.** [`Store::adopt`] takes over the running campaigns and
//!   open tasks of nodes whose lease ran out, and of none, while this
//!   node's own lease is alive; one node gets each (an `UPDATE`).
//!
//! Connected without a node ([`PostgresStore::connect`]), none of this:
//! everything is this store's own, and nothing is announced.

mod conn;
mod feed;
mod kb;
pub mod tls;

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Row};
use tracing::{info, warn};

pub use self::conn::redact_url;
use self::conn::{col, pg, Conn, Tx};
use self::feed::Kind;

use super::rows::{self, AttemptRow, TargetRow, CLOSED_TASKS_DAYS, CONTACT_DAYS, DAY_MS};
use super::{NodeIdentity, Store, StoreError};
use crate::campaign::{Campaign, CampaignId, CampaignSpec, NumberState};
use crate::store::{Contact, Notice, StoreWrite, StoredCampaign, StoredWork, WorkChanges};
use crate::tasks::Task;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaigns (
    id BIGSERIAL PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    prompt_wav BYTEA
);
CREATE TABLE IF NOT EXISTS targets (
    campaign BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    number TEXT NOT NULL,
    state TEXT NOT NULL,
    due_ms BIGINT,
    PRIMARY KEY (campaign, idx)
);
CREATE TABLE IF NOT EXISTS attempts (
    campaign BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    n BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    ended_ms BIGINT,
    result TEXT,
    sip_status BIGINT NOT NULL DEFAULT 0,
    call_id TEXT,
    PRIMARY KEY (campaign, idx, n)
);
CREATE INDEX IF NOT EXISTS attempts_answered ON attempts (sip_status, ended_ms);
CREATE TABLE IF NOT EXISTS do_not_call (
    number TEXT PRIMARY KEY,
    added_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    due_ms BIGINT,
    closed_ms BIGINT,
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks (state, closed_ms);
CREATE TABLE IF NOT EXISTS contacts (
    number_key TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    call_id TEXT NOT NULL,
    agent TEXT,
    at_ms BIGINT NOT NULL
);
-- The node that runs each campaign and task (several nodes; NULL: none,
-- or a store connected without a node). Added to databases from before.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS node TEXT;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS node TEXT;
";

/// The nodes and their leases: the cluster keeps them
/// (`crate::shell::cluster`), the store reads them to adopt the work of
/// nodes whose lease ran out. One definition for both, created by
/// whichever comes first, under [`NODES_LOCK`]. Leases are the
/// database's `now()`, one clock for every node.
pub const NODES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS hl_nodes (
    id text PRIMARY KEY,
    lease_until timestamptz NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
";

/// The advisory lock the cluster's schema is created under, which the
/// store takes too for [`NODES_TABLE`]: the two must not create it at
/// once.
pub const NODES_LOCK: i64 = 7_240_001;

/// The advisory lock key schema creation holds ("hotline" in ASCII), so
/// that two nodes connecting at once create it one after the other.
const SCHEMA_LOCK: i64 = 0x0068_6f74_6c69_6e65;

/// A task write whose commit failed: it may or may not have landed.
struct Unsure {
    version: u64,
    body: String,
}

/// A task's version as this store last read or wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    version: u64,
    /// Written by another node (read from the feed): a write of this
    /// node's must be newer, or it was made from an older copy.
    theirs: bool,
}

pub struct PostgresStore {
    conn: Conn,
    /// Each task's version as this store last read or wrote it: the
    /// version its next write must still find (a compare-and-set).
    known: HashMap<u64, Known>,
    /// Task writes whose commit failed, so their outcome is not known:
    /// if one is found in the store later, it was this store's own.
    unsure: HashMap<u64, Unsure>,
    /// This node, when connected as one (then the store shares work).
    node: Option<NodeIdentity>,
    /// What other nodes announced that [`Store::changes`] has not read yet.
    pending: feed::Pending,
    /// The connection (its generation) whose announcements `changes` has
    /// followed: on a new one, some may have been missed.
    synced: u64,
}

impl PostgresStore {
    /// Connects to `url` as node `node` (several nodes share the store):
    /// what it creates it runs, and it follows what the others change
    /// (see the module's documentation).
    pub fn connect_as(url: &str, node: NodeIdentity) -> Result<PostgresStore, StoreError> {
        let mut store = PostgresStore::connect(url)?;
        // From now on, and on every connection made again: nothing
        // announced after this is missed while the connection lasts.
        store.conn.on_every_connection(feed::LISTEN)?;
        store.synced = store.conn.generation();
        store.node = Some(node);
        Ok(store)
    }

    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`)
    /// and creates the schema if it is not there yet. Not as a node:
    /// everything is this store's own, and it neither announces its
    /// writes nor follows other nodes'.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut conn = Conn::open(url)?;
        conn.with_tx(false, |c| {
            c.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .map_err(pg("locking the schema"))?;
            // Not a notice per table that is already there, at each start.
            c.batch_execute("SET LOCAL client_min_messages = warning")
                .map_err(pg("creating the schema"))?;
            c.batch_execute(SCHEMA).map_err(pg("creating the schema"))?;
            c.batch_execute(kb::SCHEMA)
                .map_err(pg("creating the knowledge base's schema"))?;
            c.execute("SELECT pg_advisory_xact_lock($1)", &[&NODES_LOCK])
                .map_err(pg("locking the nodes' table"))?;
            c.batch_execute(NODES_TABLE)
                .map_err(pg("creating the nodes' table"))
        })?;
        Ok(PostgresStore {
            conn,
            known: HashMap::new(),
            unsure: HashMap::new(),
            node: None,
            pending: feed::Pending::default(),
            synced: 0,
        })
    }

    /// This node's name, when connected as one.
    fn me(&self) -> Option<&str> {
        self.node.as_ref().map(|n| n.id.as_str())
    }
}

fn read_campaign(
    c: &mut Client,
    id: i64,
    spec: &str,
    state: &str,
    created_ms: i64,
) -> Result<Campaign, StoreError> {
    const T: &str = "reading a campaign's numbers";
    const A: &str = "reading a campaign's attempts";
    let targets = c
        .query(
            "SELECT idx, number, state, due_ms FROM targets WHERE campaign = $1 ORDER BY idx",
            &[&id],
        )
        .map_err(pg(T))?
        .iter()
        .map(|r| {
            Ok(TargetRow {
                idx: col(r, 0, T)?,
                number: col(r, 1, T)?,
                state: col(r, 2, T)?,
                due_ms: col(r, 3, T)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let attempts = c
        .query(
            "SELECT idx, n, at_ms, ended_ms, result, sip_status, call_id FROM attempts
             WHERE campaign = $1 ORDER BY idx, n",
            &[&id],
        )
        .map_err(pg(A))?
        .iter()
        .map(|r| {
            Ok(AttemptRow {
                idx: col(r, 0, A)?,
                n: col(r, 1, A)?,
                at_ms: col(r, 2, A)?,
                ended_ms: col(r, 3, A)?,
                result: col(r, 4, A)?,
                sip_status: col(r, 5, A)?,
                call_id: col(r, 6, A)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    rows::campaign(id, spec, state, created_ms, targets, attempts)
}

/// Running and paused campaigns, as `load` reads them back.
const CAMPAIGNS_RUNNING: &str = "SELECT id, spec, state, created_ms, prompt_wav, node
     FROM campaigns WHERE state IN ('running', 'paused') ORDER BY id";
/// Open tasks, and those closed since `$1`, as `load` reads them back.
const TASKS_RECENT: &str = "SELECT id, body, version, node FROM tasks
     WHERE closed_ms IS NULL OR closed_ms >= $1 ORDER BY id";

/// Whether work run by `node` is foreign to this node `me` (none runs
/// it: foreign too, until a node adopts it).
fn foreign(me: &str, node: Option<&str>) -> bool {
    node != Some(me)
}

/// Campaigns read by `sql` (columns `id, spec, state, created_ms,
/// prompt_wav, node`), whole, with the node that runs each (see
/// [`campaigns_from`]).
fn read_campaigns(
    c: &mut Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    skip_corrupt: bool,
) -> Result<Vec<(StoredCampaign, Option<String>)>, StoreError> {
    let found = c.query(sql, params).map_err(pg("reading campaigns"))?;
    campaigns_from(c, &found, skip_corrupt)
}

/// Campaigns from their rows (columns `id, spec, state, created_ms,
/// prompt_wav, node`), with their numbers, attempts and prompt. With
/// `skip_corrupt`, one that does not read back is left out with a
/// warning naming it (the feed goes on past it) instead of failing all.
fn campaigns_from(
    c: &mut Client,
    found: &[Row],
    skip_corrupt: bool,
) -> Result<Vec<(StoredCampaign, Option<String>)>, StoreError> {
    const C: &str = "reading campaigns";
    let mut campaigns = Vec::with_capacity(found.len());
    for r in found {
        let id: i64 = col(r, 0, C)?;
        let spec: String = col(r, 1, C)?;
        let state: String = col(r, 2, C)?;
        let read = read_campaign(c, id, &spec, &state, col(r, 3, C)?).and_then(|campaign| {
            let prompt_audio = rows::prompt_audio(&campaign, col(r, 4, C)?)?;
            Ok(StoredCampaign {
                campaign,
                prompt_audio,
            })
        });
        match read {
            Ok(campaign) => campaigns.push((campaign, col(r, 5, C)?)),
            Err(e @ StoreError::Corrupt { .. }) if skip_corrupt => {
                warn!(error = %e, "a campaign that does not read back is left out")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(campaigns)
}

/// A task as stored, with what the feed needs besides the task.
struct TaskRow {
    task: Task,
    version: u64,
    /// Its JSON as stored (to recognise a write of this store's own).
    body: String,
    node: Option<String>,
}

/// Tasks read by `sql` (columns `id, body, version, node`); with
/// `skip_corrupt`, as [`campaigns_from`].
fn read_tasks(
    c: &mut Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    skip_corrupt: bool,
) -> Result<Vec<TaskRow>, StoreError> {
    let found = c.query(sql, params).map_err(pg("reading tasks"))?;
    tasks_from(&found, skip_corrupt)
}

fn tasks_from(found: &[Row], skip_corrupt: bool) -> Result<Vec<TaskRow>, StoreError> {
    const K: &str = "reading tasks";
    let mut tasks = Vec::with_capacity(found.len());
    for r in found {
        let body: String = col(r, 1, K)?;
        match rows::task(col(r, 0, K)?, &body) {
            Ok(task) => tasks.push(TaskRow {
                task,
                version: col::<i64>(r, 2, K)? as u64,
                body,
                node: col(r, 3, K)?,
            }),
            Err(e @ StoreError::CorruptTask { .. }) if skip_corrupt => {
                warn!(error = %e, "a task that does not read back is left out")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(tasks)
}

/// The whole do-not-call list.
fn read_do_not_call(c: &mut Client) -> Result<Vec<String>, StoreError> {
    const D: &str = "reading the do-not-call list";
    c.query("SELECT number FROM do_not_call ORDER BY number", &[])
        .map_err(pg(D))?
        .iter()
        .map(|r| col(r, 0, D))
        .collect()
}

/// Contacts read by `sql` (columns `number, call_id, agent, at_ms`).
fn read_contacts(
    c: &mut Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Contact>, StoreError> {
    const P: &str = "reading contacts";
    c.query(sql, params)
        .map_err(pg(P))?
        .iter()
        .map(|r| {
            Ok(Contact {
                number: col(r, 0, P)?,
                call_id: col(r, 1, P)?,
                agent: col(r, 2, P)?,
                at_ms: col::<i64>(r, 3, P)? as u64,
            })
        })
        .collect()
}

/// The contacts `load` reads back: those of the last [`CONTACT_DAYS`].
fn recent_contacts(c: &mut Client, now_ms: u64) -> Result<Vec<Contact>, StoreError> {
    let since = now_ms.saturating_sub(CONTACT_DAYS * DAY_MS) as i64;
    read_contacts(
        c,
        "SELECT number, call_id, agent, at_ms FROM contacts WHERE at_ms >= $1
         ORDER BY at_ms, number_key",
        &[&since],
    )
}

/// Everything `load` reads back; with `me` (connected as a node), what
/// other nodes run, or none does, named foreign.
fn load_work(
    c: &mut Client,
    me: Option<&str>,
    now_ms: u64,
    notice_days: u32,
) -> Result<StoredWork, StoreError> {
    let mut work = StoredWork::default();
    for (campaign, node) in read_campaigns(c, CAMPAIGNS_RUNNING, &[], false)? {
        if me.is_some_and(|me| foreign(me, node.as_deref())) {
            work.foreign.campaigns.insert(campaign.campaign.id);
        }
        work.campaigns.push(campaign);
    }
    work.do_not_call = read_do_not_call(c)?;
    const N: &str = "reading the notices answered";
    let since = now_ms.saturating_sub(u64::from(notice_days) * DAY_MS) as i64;
    for r in c
        .query(
            "SELECT t.number, a.campaign, c.spec, a.ended_ms FROM attempts a
             JOIN targets t ON t.campaign = a.campaign AND t.idx = a.idx
             JOIN campaigns c ON c.id = a.campaign
             WHERE a.sip_status = 200 AND a.ended_ms >= $1
             ORDER BY a.ended_ms, a.campaign, a.idx, a.n",
            &[&since],
        )
        .map_err(pg(N))?
    {
        work.notices.push(Notice {
            number: col(&r, 0, N)?,
            campaign: CampaignId(col::<i64>(&r, 1, N)? as u64),
            campaign_name: rows::campaign_name(col(&r, 2, N)?),
            at_ms: col::<i64>(&r, 3, N)? as u64,
        });
    }
    let since = now_ms.saturating_sub(CLOSED_TASKS_DAYS * DAY_MS) as i64;
    for row in read_tasks(c, TASKS_RECENT, &[&since], false)? {
        if me.is_some_and(|me| foreign(me, row.node.as_deref())) {
            work.foreign.tasks.insert(row.task.id);
        }
        work.tasks.push(row.task);
    }
    work.contacts = recent_contacts(c, now_ms)?;
    Ok(work)
}

/// Renews node `id`'s lease for `lease` from the database's `now()`,
/// as the cluster's heartbeat does.
fn renew_lease(c: &mut Client, id: &str, lease: std::time::Duration) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO hl_nodes (id, lease_until) VALUES ($1, now() + $2 * interval '1 millisecond')
         ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        &[&id, &(lease.as_millis() as f64)],
    )
    .map_err(pg("renewing this node's lease"))?;
    Ok(())
}

fn update_target(
    c: &mut Client,
    campaign: CampaignId,
    target: usize,
    state: NumberState,
    due_ms: Option<u64>,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE targets SET state = $3, due_ms = $4 WHERE campaign = $1 AND idx = $2",
        &[
            &(campaign.0 as i64),
            &(target as i64),
            &state.as_str(),
            &due_ms.map(|d| d as i64),
        ],
    )
    .map_err(pg("updating a number"))?;
    Ok(())
}

/// Every write but a task's (see [`PostgresStore::apply_task`]),
/// announced as node `me`'s when connected as one.
fn apply_write(
    c: &mut Client,
    write: &StoreWrite,
    now_ms: u64,
    me: Option<&str>,
) -> Result<(), StoreError> {
    match write {
        StoreWrite::AttemptStarted {
            campaign,
            target,
            attempt,
        } => {
            // A claim: only the first start of this attempt is written.
            let started = c
                .execute(
                    "INSERT INTO attempts (campaign, idx, n, at_ms, sip_status)
                     VALUES ($1, $2, $3, $4, 0) ON CONFLICT (campaign, idx, n) DO NOTHING",
                    &[
                        &(campaign.0 as i64),
                        &(*target as i64),
                        &i64::from(attempt.number),
                        &(attempt.at_ms as i64),
                    ],
                )
                .map_err(pg("starting an attempt"))?;
            if started == 0 {
                return Err(StoreError::Taken {
                    what: format!(
                        "campaign {} number {target} attempt {}",
                        campaign.0, attempt.number
                    ),
                });
            }
            c.execute(
                "UPDATE targets SET state = 'dialing', due_ms = NULL WHERE campaign = $1 AND idx = $2",
                &[&(campaign.0 as i64), &(*target as i64)],
            )
            .map_err(pg("updating a number"))?;
            feed::notify(c, me, Kind::Target, &feed::target_key(*campaign, *target))?;
        }
        StoreWrite::AttemptEnded {
            campaign,
            target,
            attempt,
            state,
            due_ms,
        } => {
            c.execute(
                "INSERT INTO attempts (campaign, idx, n, at_ms, ended_ms, result, sip_status, call_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (campaign, idx, n) DO UPDATE SET at_ms = EXCLUDED.at_ms,
                    ended_ms = EXCLUDED.ended_ms, result = EXCLUDED.result,
                    sip_status = EXCLUDED.sip_status, call_id = EXCLUDED.call_id",
                &[
                    &(campaign.0 as i64),
                    &(*target as i64),
                    &i64::from(attempt.number),
                    &(attempt.at_ms as i64),
                    &attempt.ended_ms.map(|e| e as i64),
                    &attempt.result.map(|r| r.as_str()),
                    &i64::from(attempt.sip_status),
                    &attempt.call_id,
                ],
            )
            .map_err(pg("ending an attempt"))?;
            update_target(c, *campaign, *target, *state, *due_ms)?;
            feed::notify(c, me, Kind::Target, &feed::target_key(*campaign, *target))?;
        }
        StoreWrite::Target {
            campaign,
            target,
            state,
            due_ms,
        } => {
            update_target(c, *campaign, *target, *state, *due_ms)?;
            feed::notify(c, me, Kind::Target, &feed::target_key(*campaign, *target))?;
        }
        StoreWrite::Campaign { campaign, state } => {
            c.execute(
                "UPDATE campaigns SET state = $2 WHERE id = $1",
                &[&(campaign.0 as i64), &state.as_str()],
            )
            .map_err(pg("updating a campaign"))?;
            feed::notify(c, me, Kind::Campaign, &campaign.0.to_string())?;
        }
        StoreWrite::Contact(contact) => {
            let key = crate::number::number_key(&contact.number);
            c.execute(
                "INSERT INTO contacts (number_key, number, call_id, agent, at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (number_key) DO UPDATE SET number = EXCLUDED.number,
                    call_id = EXCLUDED.call_id, agent = EXCLUDED.agent, at_ms = EXCLUDED.at_ms",
                &[
                    &key,
                    &contact.number,
                    &contact.call_id,
                    &contact.agent,
                    &(contact.at_ms as i64),
                ],
            )
            .map_err(pg("writing a contact"))?;
            feed::notify(c, me, Kind::Contact, &key)?;
        }
        StoreWrite::DoNotCall { number } => {
            let key = crate::campaign::number_key(number);
            let added = c
                .execute(
                    "INSERT INTO do_not_call (number, added_ms) VALUES ($1, $2)
                     ON CONFLICT (number) DO NOTHING",
                    &[&key, &(now_ms as i64)],
                )
                .map_err(pg("adding to the do-not-call list"))?;
            // Already on the list: nothing changed to announce.
            if added > 0 {
                feed::notify(c, me, Kind::DoNotCall, &key)?;
            }
        }
        // Tasks are compare-and-set (`PostgresStore::apply_task`).
        StoreWrite::Task { task, .. } => {
            return Err(StoreError::CorruptTask {
                task: task.id.0,
                problem: "a task write must go through its compare-and-set".into(),
            })
        }
    }
    Ok(())
}

/// What one try at a task write found.
enum TaskWrite {
    Written,
    /// The store holds `(version, body)` instead, and kept it.
    Found(Option<(u64, String)>),
}

/// Writes `task` if the store still holds version `base` of it (`None`:
/// if the store has no task with its id).
fn write_task(
    c: &mut Client,
    task: &Task,
    body: &str,
    base: Option<u64>,
    me: Option<&str>,
) -> Result<TaskWrite, StoreError> {
    const W: &str = "writing a task";
    let params: [&(dyn ToSql + Sync); 6] = [
        &(task.id.0 as i64),
        &task.state.as_str(),
        &task.due_ms.map(|d| d as i64),
        &task.closed_ms.map(|d| d as i64),
        &(task.version as i64),
        &body,
    ];
    let written = match base {
        // A new task: this node runs it. (An update never changes who
        // does; only adoption does.)
        None => {
            let mut with_node: Vec<&(dyn ToSql + Sync)> = params.to_vec();
            with_node.push(&me);
            c.execute(
                "INSERT INTO tasks (id, state, due_ms, closed_ms, version, body, node)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                &with_node,
            )
            .map_err(pg(W))?
        }
        Some(base) => {
            let mut with_base: Vec<&(dyn ToSql + Sync)> = params.to_vec();
            let base = base as i64;
            with_base.push(&base);
            c.execute(
                "UPDATE tasks SET state = $2, due_ms = $3, closed_ms = $4, version = $5, body = $6
                 WHERE id = $1 AND version = $7",
                &with_base,
            )
            .map_err(pg(W))?
        }
    };
    if written > 0 {
        feed::notify(c, me, Kind::Task, &task.id.0.to_string())?;
        return Ok(TaskWrite::Written);
    }
    const R: &str = "reading a task";
    let found = c
        .query_opt(
            "SELECT version, body FROM tasks WHERE id = $1",
            &[&(task.id.0 as i64)],
        )
        .map_err(pg(R))?;
    Ok(TaskWrite::Found(match found {
        Some(r) => Some((col::<i64>(&r, 0, R)? as u64, col(&r, 1, R)?)),
        None => None,
    }))
}

impl PostgresStore {
    /// A task write: a compare-and-set on the version this store last
    /// read or wrote (see [`Store::apply`]).
    fn apply_task(&mut self, task: &Task) -> Result<(), StoreError> {
        let id = task.id.0;
        let body = rows::task_body(task)?;
        let known = self.known.get(&id).copied();
        match known {
            // Another node wrote this version: a write not newer was made
            // from an older copy, and would undo theirs.
            Some(Known {
                version,
                theirs: true,
            }) if task.version <= version => {
                return Err(StoreError::Taken {
                    what: format!(
                        "task {id} version {}: another node wrote version {version}",
                        task.version
                    ),
                });
            }
            // Older than one this store already wrote: never replaces it.
            Some(Known {
                version,
                theirs: false,
            }) if task.version < version => return Ok(()),
            _ => {}
        }
        let mut base = known.map(|k| k.version);
        let me = self.node.as_ref().map(|n| n.id.as_str());
        self.conn.begin(Tx::Write)?;
        let mut outcome = write_task(&mut self.conn.client, task, &body, base, me);
        // Not written: the store holds something else. Fine if it is
        // this very write (repeated), or an earlier write of this store's
        // whose commit was not confirmed (then from that version on).
        let mut retried = false;
        loop {
            match outcome {
                Ok(TaskWrite::Written) => break,
                Ok(TaskWrite::Found(Some((version, ref stored))))
                    if version == task.version && *stored == body =>
                {
                    break
                }
                Ok(TaskWrite::Found(found)) => {
                    let ours = match (&found, self.unsure.get(&id)) {
                        (Some((version, stored)), Some(u)) => {
                            u.version == *version && u.body == *stored
                        }
                        _ => false,
                    };
                    if ours && !retried {
                        retried = true;
                        base = found.map(|(version, _)| version);
                        outcome = write_task(&mut self.conn.client, task, &body, base, me);
                        continue;
                    }
                    self.conn.rollback();
                    let held = match found {
                        Some((version, _)) => format!("the store has version {version}"),
                        None => "the store has no such task".to_string(),
                    };
                    let from = match base {
                        Some(base) => format!("from version {base}"),
                        None => "as a new task".to_string(),
                    };
                    return Err(StoreError::Taken {
                        what: format!("task {id} version {} {from}: {held}", task.version),
                    });
                }
                Err(e) => {
                    self.conn.rollback();
                    return Err(e);
                }
            }
        }
        match self.conn.commit() {
            Ok(()) => {
                self.unsure.remove(&id);
                self.known.insert(
                    id,
                    Known {
                        version: task.version,
                        theirs: false,
                    },
                );
                Ok(())
            }
            Err(e) => {
                self.unsure.insert(
                    id,
                    Unsure {
                        version: task.version,
                        body,
                    },
                );
                Err(e)
            }
        }
    }
}

impl Store for PostgresStore {
    fn load(&mut self, now_ms: u64, notice_days: u32) -> Result<StoredWork, StoreError> {
        let work = match &self.node {
            None => self
                .conn
                .with_tx(true, |c| load_work(c, None, now_ms, notice_days))?,
            // A node: alive from now on (the cluster renews it later), in
            // the snapshot it reads everything from.
            Some(node) => self.conn.with_tx_as(Tx::SnapshotWrite, |c| {
                renew_lease(c, &node.id, node.lease)?;
                load_work(c, Some(&node.id), now_ms, notice_days)
            })?,
        };
        // What this node now holds: its task writes start from here.
        self.known = work
            .tasks
            .iter()
            .map(|t| {
                let known = Known {
                    version: t.version,
                    theirs: false,
                };
                (t.id.0, known)
            })
            .collect();
        self.unsure.clear();
        // Read whole on this connection: what was announced before is in
        // it (and whatever is still unread is read again, harmlessly).
        self.pending.clear();
        self.synced = self.conn.generation();
        Ok(work)
    }

    fn create_campaign(
        &mut self,
        spec: &CampaignSpec,
        created_ms: u64,
        prompt_wav: Option<&[u8]>,
    ) -> Result<CampaignId, StoreError> {
        let template = Campaign::new(CampaignId(0), spec.clone(), created_ms);
        let spec_json = spec.to_json().to_string();
        let me = self.node.as_ref().map(|n| n.id.as_str());
        self.conn.with_tx(false, |c| {
            const W: &str = "creating a campaign";
            // This node runs what it creates.
            let row = c
                .query_one(
                    "INSERT INTO campaigns (spec, state, created_ms, prompt_wav, node)
                     VALUES ($1, 'running', $2, $3, $4) RETURNING id",
                    &[&spec_json, &(created_ms as i64), &prompt_wav, &me],
                )
                .map_err(pg(W))?;
            let id: i64 = col(&row, 0, W)?;
            // Every number in one statement, however many there are.
            let idx: Vec<i64> = (0..template.targets.len() as i64).collect();
            let numbers: Vec<&str> = template.targets.iter().map(|t| t.number.as_str()).collect();
            let states: Vec<&str> = template.targets.iter().map(|t| t.state.as_str()).collect();
            let due: Vec<Option<i64>> = template
                .targets
                .iter()
                .map(|t| t.due_ms.map(|d| d as i64))
                .collect();
            c.execute(
                "INSERT INTO targets (campaign, idx, number, state, due_ms)
                 SELECT $1, t.idx, t.number, t.state, t.due_ms
                 FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[])
                    AS t (idx, number, state, due_ms)",
                &[&id, &idx, &numbers, &states, &due],
            )
            .map_err(pg("writing a campaign's numbers"))?;
            feed::notify(c, me, Kind::Campaign, &id.to_string())?;
            Ok(CampaignId(id as u64))
        })
    }

    fn apply(&mut self, write: &StoreWrite, now_ms: u64) -> Result<(), StoreError> {
        match write {
            StoreWrite::Task { task, .. } => self.apply_task(task),
            other => {
                let me = self.node.as_ref().map(|n| n.id.as_str());
                self.conn
                    .with_tx(false, |c| apply_write(c, other, now_ms, me))
            }
        }
    }

    fn shared(&self) -> bool {
        self.node.is_some()
    }

    fn changes(&mut self, now_ms: u64) -> Result<WorkChanges, StoreError> {
        let Some(me) = self.me().map(str::to_string) else {
            return Ok(WorkChanges::default());
        };
        for n in self.conn.notifications() {
            self.pending.add(&me, n.payload());
        }
        // Nothing announced, and nothing missed: no round trip.
        if self.pending.is_empty()
            && !self.conn.needs_connecting()
            && self.conn.generation() == self.synced
        {
            return Ok(WorkChanges::default());
        }
        self.conn.begin(Tx::Snapshot)?;
        // Connected again (here or by an earlier method): what was
        // announced meanwhile is lost, so everything is read again.
        let generation = self.conn.generation();
        let resync = generation != self.synced;
        let read = if resync {
            feed::resync(&mut self.conn.client, &me, now_ms)
        } else {
            feed::read(&mut self.conn.client, &me, &self.pending)
        };
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                self.conn.rollback();
                return Err(e);
            }
        };
        self.conn.commit()?;
        if resync {
            info!(
                campaigns = read.changes.campaigns.len(),
                tasks = read.changes.tasks.len(),
                "connected to the shared store again: read all shared work again"
            );
            self.synced = generation;
        }
        self.pending.clear();
        for (id, version, body) in read.tasks {
            self.saw_task(id, version, &body);
        }
        Ok(read.changes)
    }

    fn adopt(&mut self, _now_ms: u64) -> Result<StoredWork, StoreError> {
        let Some(me) = self.me().map(str::to_string) else {
            return Ok(StoredWork::default());
        };
        let adopted = self.conn.with_tx(false, |c| feed::adopt(c, &me))?;
        // This node runs them now: its writes go on from what it read.
        for (id, version) in &adopted.versions {
            self.unsure.remove(id);
            self.known.insert(
                *id,
                Known {
                    version: *version,
                    theirs: false,
                },
            );
        }
        Ok(adopted.work)
    }
}

impl PostgresStore {
    /// Task `id` read from the feed at `version` (stored as `body`):
    /// unless it is what this store wrote itself, another node wrote it,
    /// and this node's next write must be newer.
    fn saw_task(&mut self, id: u64, version: u64, body: &str) {
        if let Some(u) = self.unsure.get(&id) {
            if u.version == version && u.body == body {
                // This store's own write, whose commit was not confirmed.
                self.unsure.remove(&id);
                self.known.insert(
                    id,
                    Known {
                        version,
                        theirs: false,
                    },
                );
                return;
            }
        }
        let ours = Known {
            version,
            theirs: false,
        };
        if self.known.get(&id) != Some(&ours) {
            self.known.insert(
                id,
                Known {
                    version,
                    theirs: true,
                },
            );
        }
    }
}
