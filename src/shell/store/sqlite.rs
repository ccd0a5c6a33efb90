//! The embedded store: one SQLite file (bundled, so nothing to install),
//! in WAL mode with `synchronous = FULL`, so a committed write survives a
//! crash or a power cut.

mod kb;

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{self, AttemptRow, TargetRow, CLOSED_TASKS_DAYS, CONTACT_DAYS, DAY_MS};
use super::{Store, StoreError};
use crate::campaign::{Campaign, CampaignId, CampaignSpec, NumberState};
use crate::store::{Contact, Notice, StoreWrite, StoredCampaign, StoredWork};
use crate::tasks::Task;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    prompt_wav BLOB
);
CREATE TABLE IF NOT EXISTS targets (
    campaign INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    number TEXT NOT NULL,
    state TEXT NOT NULL,
    due_ms INTEGER,
    PRIMARY KEY (campaign, idx)
);
CREATE TABLE IF NOT EXISTS attempts (
    campaign INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    n INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    result TEXT,
    sip_status INTEGER NOT NULL DEFAULT 0,
    call_id TEXT,
    PRIMARY KEY (campaign, idx, n)
);
CREATE INDEX IF NOT EXISTS attempts_answered ON attempts (sip_status, ended_ms);
CREATE TABLE IF NOT EXISTS do_not_call (
    number TEXT PRIMARY KEY,
    added_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    due_ms INTEGER,
    closed_ms INTEGER,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks (state, closed_ms);
CREATE TABLE IF NOT EXISTS contacts (
    number_key TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    call_id TEXT NOT NULL,
    agent TEXT,
    at_ms INTEGER NOT NULL
);
";

/// id, spec, state, created_ms, prompt_wav.
type CampaignRow = (i64, String, String, i64, Option<Vec<u8>>);

pub struct SqliteStore {
    db: Connection,
}

impl SqliteStore {
    /// Opens (creating) the store at `path`; its folder is created too.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = Connection::open(path).map_err(open_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        db.execute_batch(SCHEMA).map_err(open_err)?;
        db.execute_batch(kb::SCHEMA).map_err(open_err)?;
        Ok(SqliteStore { db })
    }

    fn campaign(
        &self,
        id: i64,
        spec: &str,
        state: &str,
        created_ms: i64,
    ) -> Result<Campaign, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT idx, number, state, due_ms FROM targets WHERE campaign = ?1 ORDER BY idx",
        )?;
        let targets = stmt
            .query_map([id], |r| {
                Ok(TargetRow {
                    idx: r.get(0)?,
                    number: r.get(1)?,
                    state: r.get(2)?,
                    due_ms: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self.db.prepare_cached(
            "SELECT idx, n, at_ms, ended_ms, result, sip_status, call_id FROM attempts WHERE campaign = ?1 ORDER BY idx, n",
        )?;
        let attempts = stmt
            .query_map([id], |r| {
                Ok(AttemptRow {
                    idx: r.get(0)?,
                    n: r.get(1)?,
                    at_ms: r.get(2)?,
                    ended_ms: r.get(3)?,
                    result: r.get(4)?,
                    sip_status: r.get(5)?,
                    call_id: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows::campaign(id, spec, state, created_ms, targets, attempts)
    }
}

impl SqliteStore {
    /// Open tasks, and those closed in the last days. A row that does not
    /// read back is an error naming it, not a task silently dropped.
    fn load_tasks(&self, now_ms: u64) -> Result<Vec<Task>, StoreError> {
        let since = now_ms.saturating_sub(CLOSED_TASKS_DAYS * DAY_MS) as i64;
        let mut stmt = self.db.prepare(
            "SELECT id, body FROM tasks WHERE closed_ms IS NULL OR closed_ms >= ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut tasks = Vec::new();
        for row in rows {
            let (id, body) = row?;
            tasks.push(rows::task(id, &body)?);
        }
        Ok(tasks)
    }

    fn load_contacts(&self, now_ms: u64) -> Result<Vec<Contact>, StoreError> {
        let since = now_ms.saturating_sub(CONTACT_DAYS * DAY_MS) as i64;
        let mut stmt = self
            .db
            .prepare("SELECT number, call_id, agent, at_ms FROM contacts WHERE at_ms >= ?1")?;
        let rows = stmt.query_map([since], |r| {
            Ok(Contact {
                number: r.get(0)?,
                call_id: r.get(1)?,
                agent: r.get(2)?,
                at_ms: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Store for SqliteStore {
    fn load(&mut self, now_ms: u64, notice_days: u32) -> Result<StoredWork, StoreError> {
        let mut work = StoredWork::default();
        let rows: Vec<CampaignRow> = {
            let mut stmt = self.db.prepare(
                "SELECT id, spec, state, created_ms, prompt_wav FROM campaigns WHERE state IN ('running', 'paused') ORDER BY id",
            )?;
            let mapped = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            mapped.collect::<Result<_, _>>()?
        };
        for (id, spec, state, created, wav) in rows {
            let campaign = self.campaign(id, &spec, &state, created)?;
            let prompt_audio = rows::prompt_audio(&campaign, wav)?;
            work.campaigns.push(StoredCampaign {
                campaign,
                prompt_audio,
            });
        }
        let mut stmt = self.db.prepare("SELECT number FROM do_not_call")?;
        work.do_not_call = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let since = now_ms.saturating_sub(u64::from(notice_days) * DAY_MS) as i64;
        let mut stmt = self.db.prepare(
            "SELECT t.number, a.campaign, c.spec, a.ended_ms FROM attempts a
             JOIN targets t ON t.campaign = a.campaign AND t.idx = a.idx
             JOIN campaigns c ON c.id = a.campaign
             WHERE a.sip_status = 200 AND a.ended_ms >= ?1 ORDER BY a.ended_ms",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        work.tasks = self.load_tasks(now_ms)?;
        work.contacts = self.load_contacts(now_ms)?;
        for row in rows {
            let (number, campaign, spec, at) = row?;
            work.notices.push(Notice {
                number,
                campaign: CampaignId(campaign as u64),
                campaign_name: rows::campaign_name(&spec),
                at_ms: at as u64,
            });
        }
        Ok(work)
    }

    fn create_campaign(
        &mut self,
        spec: &CampaignSpec,
        created_ms: u64,
        prompt_wav: Option<&[u8]>,
    ) -> Result<CampaignId, StoreError> {
        let template = Campaign::new(CampaignId(0), spec.clone(), created_ms);
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO campaigns (spec, state, created_ms, prompt_wav) VALUES (?1, 'running', ?2, ?3)",
            params![spec.to_json().to_string(), created_ms as i64, prompt_wav],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT INTO targets (campaign, idx, number, state, due_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, t) in template.targets.iter().enumerate() {
                insert.execute(params![
                    id,
                    i as i64,
                    t.number,
                    t.state.as_str(),
                    t.due_ms.map(|d| d as i64)
                ])?;
            }
        }
        tx.commit()?;
        Ok(CampaignId(id as u64))
    }

    fn apply(&mut self, write: &StoreWrite, now_ms: u64) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        match write {
            StoreWrite::AttemptStarted {
                campaign,
                target,
                attempt,
            } => {
                tx.execute(
                    "INSERT OR REPLACE INTO attempts (campaign, idx, n, at_ms, sip_status) VALUES (?1, ?2, ?3, ?4, 0)",
                    params![campaign.0 as i64, *target as i64, attempt.number, attempt.at_ms as i64],
                )?;
                tx.execute(
                    "UPDATE targets SET state = 'dialing', due_ms = NULL WHERE campaign = ?1 AND idx = ?2",
                    params![campaign.0 as i64, *target as i64],
                )?;
            }
            StoreWrite::AttemptEnded {
                campaign,
                target,
                attempt,
                state,
                due_ms,
            } => {
                tx.execute(
                    "INSERT OR REPLACE INTO attempts (campaign, idx, n, at_ms, ended_ms, result, sip_status, call_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        campaign.0 as i64,
                        *target as i64,
                        attempt.number,
                        attempt.at_ms as i64,
                        attempt.ended_ms.map(|e| e as i64),
                        attempt.result.map(|r| r.as_str()),
                        attempt.sip_status,
                        attempt.call_id
                    ],
                )?;
                update_target(&tx, *campaign, *target, *state, *due_ms)?;
            }
            StoreWrite::Target {
                campaign,
                target,
                state,
                due_ms,
            } => update_target(&tx, *campaign, *target, *state, *due_ms)?,
            StoreWrite::Campaign { campaign, state } => {
                tx.execute(
                    "UPDATE campaigns SET state = ?2 WHERE id = ?1",
                    params![campaign.0 as i64, state.as_str()],
                )?;
            }
            StoreWrite::Task { task, .. } => {
                let body = rows::task_body(task)?;
                // Versioned: an older write never replaces a newer one.
                tx.execute(
                    "INSERT INTO tasks (id, state, due_ms, closed_ms, version, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET state = ?2, due_ms = ?3, closed_ms = ?4,
                        version = ?5, body = ?6 WHERE tasks.version <= ?5",
                    params![
                        task.id.0 as i64,
                        task.state.as_str(),
                        task.due_ms.map(|d| d as i64),
                        task.closed_ms.map(|d| d as i64),
                        task.version as i64,
                        body
                    ],
                )?;
            }
            StoreWrite::Contact(c) => {
                tx.execute(
                    "INSERT OR REPLACE INTO contacts (number_key, number, call_id, agent, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        crate::number::number_key(&c.number),
                        c.number,
                        c.call_id,
                        c.agent,
                        c.at_ms as i64
                    ],
                )?;
            }
            StoreWrite::DoNotCall { number } => {
                tx.execute(
                    "INSERT OR IGNORE INTO do_not_call (number, added_ms) VALUES (?1, ?2)",
                    params![crate::campaign::number_key(number), now_ms as i64],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn update_target(
    tx: &rusqlite::Transaction<'_>,
    campaign: CampaignId,
    target: usize,
    state: NumberState,
    due_ms: Option<u64>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE targets SET state = ?3, due_ms = ?4 WHERE campaign = ?1 AND idx = ?2",
        params![
            campaign.0 as i64,
            target as i64,
            state.as_str(),
            due_ms.map(|d| d as i64)
        ],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Whether a number is on the do-not-call list (for tests and tools).
    pub fn is_dnc(&self, number: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM do_not_call WHERE number = ?1",
                [crate::campaign::number_key(number)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    // What every backend does is checked on both (`store::conformance`);
    // here, what only this one has.
    use super::*;

    #[test]
    fn is_dnc_looks_a_number_up_as_it_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(&dir.path().join("hotline.db")).expect("open");
        let write = StoreWrite::DoNotCall {
            number: "138 0000 0001".into(),
        };
        store.apply(&write, 1).expect("dnc");
        assert!(store.is_dnc("13800000001").expect("dnc"));
        assert!(store.is_dnc("138-0000-0001").expect("dnc"));
        assert!(!store.is_dnc("13800000002").expect("dnc"));
    }
}
