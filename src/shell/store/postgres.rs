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

mod conn;
mod kb;

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::Client;

pub use self::conn::redact_url;
use self::conn::{col, pg, Conn};

use super::rows::{self, AttemptRow, TargetRow, CLOSED_TASKS_DAYS, CONTACT_DAYS, DAY_MS};
use super::{Store, StoreError};
use crate::campaign::{Campaign, CampaignId, CampaignSpec, NumberState};
use crate::store::{Contact, Notice, StoreWrite, StoredCampaign, StoredWork};
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
";

/// The advisory lock key schema creation holds ("hotline" in ASCII), so
/// that two nodes connecting at once create it one after the other.
const SCHEMA_LOCK: i64 = 0x0068_6f74_6c69_6e65;

/// A task write whose commit failed: it may or may not have landed.
struct Unsure {
    version: u64,
    body: String,
}

pub struct PostgresStore {
    conn: Conn,
    /// Each task's version as this store last read or wrote it: the
    /// version its next write must still find (a compare-and-set).
    known: HashMap<u64, u64>,
    /// Task writes whose commit failed, so their outcome is not known:
    /// if one is found in the store later, it was this store's own.
    unsure: HashMap<u64, Unsure>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`)
    /// and creates the schema if it is not there yet.
    /// Connects as node `node` (several nodes). Not yet: as `connect`.
    pub fn connect_as(url: &str, _node: super::NodeIdentity) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect(url)
    }

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
                .map_err(pg("creating the knowledge base's schema"))
        })?;
        Ok(PostgresStore {
            conn,
            known: HashMap::new(),
            unsure: HashMap::new(),
        })
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

fn load_work(c: &mut Client, now_ms: u64, notice_days: u32) -> Result<StoredWork, StoreError> {
    let mut work = StoredWork::default();
    const C: &str = "reading campaigns";
    let campaigns = c
        .query(
            "SELECT id, spec, state, created_ms, prompt_wav FROM campaigns
             WHERE state IN ('running', 'paused') ORDER BY id",
            &[],
        )
        .map_err(pg(C))?;
    for r in &campaigns {
        let id: i64 = col(r, 0, C)?;
        let spec: String = col(r, 1, C)?;
        let state: String = col(r, 2, C)?;
        let campaign = read_campaign(c, id, &spec, &state, col(r, 3, C)?)?;
        let prompt_audio = rows::prompt_audio(&campaign, col(r, 4, C)?)?;
        work.campaigns.push(StoredCampaign {
            campaign,
            prompt_audio,
        });
    }
    const D: &str = "reading the do-not-call list";
    for r in c
        .query("SELECT number FROM do_not_call ORDER BY number", &[])
        .map_err(pg(D))?
    {
        work.do_not_call.push(col(&r, 0, D)?);
    }
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
    const K: &str = "reading tasks";
    let since = now_ms.saturating_sub(CLOSED_TASKS_DAYS * DAY_MS) as i64;
    for r in c
        .query(
            "SELECT id, body FROM tasks WHERE closed_ms IS NULL OR closed_ms >= $1 ORDER BY id",
            &[&since],
        )
        .map_err(pg(K))?
    {
        work.tasks.push(rows::task(col(&r, 0, K)?, col(&r, 1, K)?)?);
    }
    const P: &str = "reading contacts";
    let since = now_ms.saturating_sub(CONTACT_DAYS * DAY_MS) as i64;
    for r in c
        .query(
            "SELECT number, call_id, agent, at_ms FROM contacts WHERE at_ms >= $1
             ORDER BY at_ms, number_key",
            &[&since],
        )
        .map_err(pg(P))?
    {
        work.contacts.push(Contact {
            number: col(&r, 0, P)?,
            call_id: col(&r, 1, P)?,
            agent: col(&r, 2, P)?,
            at_ms: col::<i64>(&r, 3, P)? as u64,
        });
    }
    Ok(work)
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

/// Every write but a task's (see [`PostgresStore::apply_task`]).
fn apply_write(c: &mut Client, write: &StoreWrite, now_ms: u64) -> Result<(), StoreError> {
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
        }
        StoreWrite::Target {
            campaign,
            target,
            state,
            due_ms,
        } => update_target(c, *campaign, *target, *state, *due_ms)?,
        StoreWrite::Campaign { campaign, state } => {
            c.execute(
                "UPDATE campaigns SET state = $2 WHERE id = $1",
                &[&(campaign.0 as i64), &state.as_str()],
            )
            .map_err(pg("updating a campaign"))?;
        }
        StoreWrite::Contact(contact) => {
            c.execute(
                "INSERT INTO contacts (number_key, number, call_id, agent, at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (number_key) DO UPDATE SET number = EXCLUDED.number,
                    call_id = EXCLUDED.call_id, agent = EXCLUDED.agent, at_ms = EXCLUDED.at_ms",
                &[
                    &crate::number::number_key(&contact.number),
                    &contact.number,
                    &contact.call_id,
                    &contact.agent,
                    &(contact.at_ms as i64),
                ],
            )
            .map_err(pg("writing a contact"))?;
        }
        StoreWrite::DoNotCall { number } => {
            c.execute(
                "INSERT INTO do_not_call (number, added_ms) VALUES ($1, $2)
                 ON CONFLICT (number) DO NOTHING",
                &[&crate::campaign::number_key(number), &(now_ms as i64)],
            )
            .map_err(pg("adding to the do-not-call list"))?;
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
        None => c
            .execute(
                "INSERT INTO tasks (id, state, due_ms, closed_ms, version, body)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &params,
            )
            .map_err(pg(W))?,
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
        let mut base = self.known.get(&id).copied();
        if base.is_some_and(|known| task.version < known) {
            // Older than one this store already wrote: never replaces it.
            return Ok(());
        }
        self.conn.begin(false)?;
        let mut outcome = write_task(&mut self.conn.client, task, &body, base);
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
                        outcome = write_task(&mut self.conn.client, task, &body, base);
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
                self.known.insert(id, task.version);
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
        let work = self
            .conn
            .with_tx(true, |c| load_work(c, now_ms, notice_days))?;
        // What this node now holds: its task writes start from here.
        self.known = work.tasks.iter().map(|t| (t.id.0, t.version)).collect();
        self.unsure.clear();
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
        self.conn.with_tx(false, |c| {
            const W: &str = "creating a campaign";
            let row = c
                .query_one(
                    "INSERT INTO campaigns (spec, state, created_ms, prompt_wav)
                     VALUES ($1, 'running', $2, $3) RETURNING id",
                    &[&spec_json, &(created_ms as i64), &prompt_wav],
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
            Ok(CampaignId(id as u64))
        })
    }

    fn apply(&mut self, write: &StoreWrite, now_ms: u64) -> Result<(), StoreError> {
        match write {
            StoreWrite::Task { task, .. } => self.apply_task(task),
            other => self.conn.with_tx(false, |c| apply_write(c, other, now_ms)),
        }
    }
}
