//! The embedded store: one SQLite file (bundled, so nothing to install),
//! in WAL mode with `synchronous = FULL`, so a committed write survives a
//! crash or a power cut.

mod kb;

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, StoreError};
use crate::campaign::{
    Attempt, AttemptResult, Campaign, CampaignId, CampaignSpec, CampaignState, NumberState, Target,
};
use crate::media::prompt::decode_wav;
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

/// Closed tasks are read back for this long (the lists and reports show
/// them); open ones always.
const CLOSED_TASKS_DAYS: u64 = 7;
/// Contacts are read back for this long; the engine keeps those inside
/// its repeat window.
const CONTACT_DAYS: u64 = 30;

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
        let corrupt = |problem: String| StoreError::Corrupt {
            campaign: id as u64,
            problem,
        };
        let mut targets: Vec<Target> = Vec::new();
        let mut stmt = self.db.prepare_cached(
            "SELECT idx, number, state, due_ms FROM targets WHERE campaign = ?1 ORDER BY idx",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        for row in rows {
            let (idx, number, st, due) = row?;
            if idx as usize != targets.len() {
                return Err(corrupt(format!("number {idx} out of order")));
            }
            targets.push(Target {
                number,
                state: NumberState::parse(&st)
                    .ok_or_else(|| corrupt(format!("number state {st:?}")))?,
                attempts: Vec::new(),
                due_ms: due.map(|d| d as u64),
            });
        }
        let mut stmt = self.db.prepare_cached(
            "SELECT idx, n, at_ms, ended_ms, result, sip_status, call_id FROM attempts WHERE campaign = ?1 ORDER BY idx, n",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        for row in rows {
            let (idx, n, at, ended, result, status, call_id) = row?;
            let t = targets
                .get_mut(idx as usize)
                .ok_or_else(|| corrupt(format!("attempt for number {idx}")))?;
            t.attempts.push(Attempt {
                number: n as u32,
                at_ms: at as u64,
                ended_ms: ended.map(|e| e as u64),
                result: match result {
                    Some(r) => Some(
                        AttemptResult::parse(&r).ok_or_else(|| corrupt(format!("result {r:?}")))?,
                    ),
                    None => None,
                },
                sip_status: status as u16,
                call_id,
            });
        }
        // The spec as created, with its numbers from the targets.
        let mut json: serde_json::Value =
            serde_json::from_str(spec).map_err(|e| corrupt(format!("spec: {e}")))?;
        json["numbers"] = targets.iter().map(|t| t.number.clone()).collect();
        let offset = json["window"]["utc_offset"]
            .as_str()
            .and_then(crate::forms::parse_offset)
            .unwrap_or(0);
        let spec =
            CampaignSpec::parse(&json, None, offset).map_err(|e| corrupt(format!("spec: {e}")))?;
        Ok(Campaign {
            id: CampaignId(id as u64),
            spec,
            state: CampaignState::parse(state)
                .ok_or_else(|| corrupt(format!("state {state:?}")))?,
            created_ms: created_ms as u64,
            targets,
        })
    }
}

impl SqliteStore {
    /// Open tasks, and those closed in the last days. A row that does not
    /// read back is an error naming it, not a task silently dropped.
    fn load_tasks(&self, now_ms: u64) -> Result<Vec<Task>, StoreError> {
        let since = now_ms.saturating_sub(CLOSED_TASKS_DAYS * 86_400_000) as i64;
        let mut stmt = self.db.prepare(
            "SELECT id, body FROM tasks WHERE closed_ms IS NULL OR closed_ms >= ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut tasks = Vec::new();
        for row in rows {
            let (id, body) = row?;
            let task =
                serde_json::from_str::<Task>(&body).map_err(|e| StoreError::CorruptTask {
                    task: id as u64,
                    problem: e.to_string(),
                })?;
            tasks.push(task);
        }
        Ok(tasks)
    }

    fn load_contacts(&self, now_ms: u64) -> Result<Vec<Contact>, StoreError> {
        let since = now_ms.saturating_sub(CONTACT_DAYS * 86_400_000) as i64;
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
            let prompt_audio = match wav {
                Some(bytes) => Some(
                    decode_wav(
                        &campaign.spec.prompt,
                        Path::new("<store>"),
                        bytes.as_slice(),
                    )
                    .map_err(|e| StoreError::Corrupt {
                        campaign: id as u64,
                        problem: e.to_string(),
                    })?,
                ),
                None => None,
            };
            work.campaigns.push(StoredCampaign {
                campaign,
                prompt_audio,
            });
        }
        let mut stmt = self.db.prepare("SELECT number FROM do_not_call")?;
        work.do_not_call = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let since = now_ms.saturating_sub(u64::from(notice_days) * 86_400_000) as i64;
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
            let name = serde_json::from_str::<serde_json::Value>(&spec)
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_string))
                .unwrap_or_default();
            work.notices.push(Notice {
                number,
                campaign: CampaignId(campaign as u64),
                campaign_name: name,
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
                let body = serde_json::to_string(task).map_err(|e| StoreError::CorruptTask {
                    task: task.id.0,
                    problem: e.to_string(),
                })?;
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
    use super::*;
    use serde_json::json;

    const T0: u64 = 1_796_520_600_000;

    fn spec() -> CampaignSpec {
        CampaignSpec::parse(
            &json!({"name": "gas outage", "trunk": "pstn", "prompt": "notice",
                    "numbers": ["13800000001", "13800000002"], "retry": ["1m"],
                    "window": {"from": "09:00", "to": "20:00", "utc_offset": "+08:00"},
                    "confirm_key": "1"}),
            None,
            480,
        )
        .expect("spec")
    }

    #[test]
    fn a_campaign_and_its_attempts_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("var/hotline.db");
        let mut store = SqliteStore::open(&path).expect("open");
        let id = store.create_campaign(&spec(), T0, None).expect("create");
        let attempt = Attempt {
            number: 1,
            at_ms: T0 + 60_000,
            ended_ms: None,
            result: None,
            sip_status: 0,
            call_id: None,
        };
        store
            .apply(
                &StoreWrite::AttemptStarted {
                    campaign: id,
                    target: 1,
                    attempt: attempt.clone(),
                },
                T0,
            )
            .expect("started");
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
        store
            .apply(
                &StoreWrite::DoNotCall {
                    number: "138 0000 0001".into(),
                },
                T0,
            )
            .expect("dnc");
        drop(store);

        // A new process reads it back as it was.
        let mut store = SqliteStore::open(&path).expect("reopen");
        let work = store.load(T0 + 100_000, 7).expect("load");
        assert_eq!(work.campaigns.len(), 1);
        let c = &work.campaigns[0].campaign;
        assert_eq!(c.id, id);
        assert_eq!(c.spec, spec());
        assert_eq!(c.targets[0].state, NumberState::Pending);
        assert_eq!(c.targets[0].due_ms, Some(T0 + 60_000));
        assert_eq!(c.targets[1].state, NumberState::Confirmed);
        assert_eq!(c.targets[1].attempts, vec![ended]);
        assert_eq!(work.do_not_call, vec!["13800000001".to_string()]);
        assert!(store.is_dnc("13800000001").expect("dnc"));
        assert_eq!(work.notices.len(), 1);
        assert_eq!(work.notices[0].number, "13800000002");
        assert_eq!(work.notices[0].campaign_name, "gas outage");
        // Too old to remember.
        assert!(store
            .load(T0 + 8 * 86_400_000, 7)
            .expect("load")
            .notices
            .is_empty());

        // A finished campaign is not run again.
        store
            .apply(
                &StoreWrite::Campaign {
                    campaign: id,
                    state: CampaignState::Cancelled,
                },
                T0,
            )
            .expect("cancel");
        assert!(store.load(T0, 7).expect("load").campaigns.is_empty());
    }

    // ---- tasks and contacts ---------------------------------------------

    const DAY: u64 = 86_400_000;

    fn task(id: u64, version: u64) -> Task {
        use crate::tasks::{
            AttemptEnd, CallbackMode, TaskAttempt, TaskId, TaskKind, TaskOutcome, TaskState,
        };
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
            version,
            order: None,
        }
    }

    fn write_task(store: &mut SqliteStore, task: &Task) {
        store
            .apply(
                &StoreWrite::Task {
                    task: Box::new(task.clone()),
                    ack: true,
                },
                T0,
            )
            .expect("task written");
    }

    #[test]
    fn a_task_reads_back_as_it_was_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hotline.db");
        let mut store = SqliteStore::open(&path).expect("open");
        let written = task(1, 3);
        write_task(&mut store, &written);
        drop(store);

        let mut store = SqliteStore::open(&path).expect("reopen");
        let work = store.load(T0 + 60 * DAY, 7).expect("load");
        assert_eq!(
            work.tasks,
            vec![written],
            "an open task is always read back"
        );
    }

    #[test]
    fn an_older_task_write_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hotline.db");
        let mut store = SqliteStore::open(&path).expect("open");
        let newer = Task {
            state: crate::tasks::TaskState::Cancelled,
            closed_ms: Some(T0 + 1000),
            ..task(1, 5)
        };
        write_task(&mut store, &newer);
        // A write from before the cancel arrives late: it is ignored.
        write_task(&mut store, &task(1, 4));
        assert_eq!(store.load(T0, 7).expect("load").tasks, vec![newer.clone()]);
        // The same version again (a write repeated) is taken; a newer one too.
        write_task(&mut store, &newer);
        let newest = Task {
            note: "changed".into(),
            ..newer.clone()
        };
        let newest = Task {
            version: 6,
            ..newest
        };
        write_task(&mut store, &newest);
        drop(store);
        let mut store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.load(T0, 7).expect("load").tasks, vec![newest]);
    }

    #[test]
    fn closed_tasks_are_read_back_for_seven_days_open_ones_always() {
        use crate::tasks::TaskState;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hotline.db");
        let mut store = SqliteStore::open(&path).expect("open");
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
            write_task(&mut store, t);
        }
        let ids = |store: &mut SqliteStore, now_ms: u64| -> Vec<u64> {
            let work = store.load(now_ms, 7).expect("load");
            work.tasks.iter().map(|t| t.id.0).collect()
        };
        assert_eq!(ids(&mut store, T0 + 2 * DAY), vec![1, 2, 3]);
        // Exactly seven days after it closed, a task is still read back.
        assert_eq!(ids(&mut store, T0 + 8 * DAY), vec![1, 2, 3]);
        assert_eq!(ids(&mut store, T0 + 8 * DAY + 1), vec![1, 3]);
        assert_eq!(ids(&mut store, T0 + 11 * DAY), vec![1]);
        // Open for a year, still there.
        assert_eq!(ids(&mut store, T0 + 365 * DAY), vec![1]);
    }

    #[test]
    fn contacts_read_back_one_per_number_for_thirty_days() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hotline.db");
        let mut store = SqliteStore::open(&path).expect("open");
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
        let mut store = SqliteStore::open(&path).expect("reopen");
        let mut contacts = store.load(T0 + 3 * DAY, 7).expect("load").contacts;
        contacts.sort_by_key(|c| c.at_ms);
        // The same number's later call replaced its earlier one.
        assert_eq!(contacts, vec![again.clone(), other.clone()]);
        let contacts = store.load(T0 + 31 * DAY + 1, 7).expect("load").contacts;
        assert_eq!(contacts, vec![other], "older than 30 days: not read back");
    }
}
