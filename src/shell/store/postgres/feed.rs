//! Work shared between nodes: the change feed and adoption (see
//! [`super`]'s documentation).
//!
//! Each write announces what it changed with `NOTIFY hl_work`, sent in
//! the write's own transaction: the others hear of it only if, and once,
//! it commits. The payload is `<node>\t<kind>\t<key>`:
//! - `campaign\t<id>`: created, its state changed, or adopted;
//! - `target\t<campaign>:<index>`: an attempt started or ended, or the
//!   number's state changed;
//! - `task\t<id>`: created, changed, or adopted;
//! - `dnc\t<number>`: added to the do-not-call list (as stored there);
//! - `contact\t<number key>`: a call an agent took.
//!
//! PostgreSQL delivers them to every session listening, for as long as it
//! lasts; a connection made again may have missed some, and then
//! everything is read again ([`resync`]).

use std::collections::{BTreeMap, BTreeSet};

use postgres::Client;
use tracing::{debug, warn};

use super::{
    campaigns_from, col, foreign, pg, read_campaigns, read_contacts, read_do_not_call, read_tasks,
    recent_contacts, tasks_from, CAMPAIGNS_RUNNING, TASKS_RECENT,
};
use crate::campaign::{CampaignId, Target};
use crate::shell::store::rows::{self, AttemptRow, TargetRow, CLOSED_TASKS_DAYS, DAY_MS};
use crate::shell::store::StoreError;
use crate::store::{Changed, ChangedTarget, StoredWork, WorkChanges};

/// The channel changes are announced on.
const CHANNEL: &str = "hl_work";
/// Run on every connection of a store connected as a node.
pub(super) const LISTEN: &str = "LISTEN hl_work";

/// What an announcement names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Campaign,
    Target,
    Task,
    DoNotCall,
    Contact,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Campaign => "campaign",
            Kind::Target => "target",
            Kind::Task => "task",
            Kind::DoNotCall => "dnc",
            Kind::Contact => "contact",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "campaign" => Kind::Campaign,
            "target" => Kind::Target,
            "task" => Kind::Task,
            "dnc" => Kind::DoNotCall,
            "contact" => Kind::Contact,
            _ => return None,
        })
    }
}

/// A number's key in an announcement: `<campaign>:<index>`.
pub(super) fn target_key(campaign: CampaignId, index: usize) -> String {
    format!("{}:{index}", campaign.0)
}

/// Announces, in the transaction under way, that node `me` changed `key`.
/// Nothing when not connected as a node (`me` is `None`).
pub(super) fn notify(
    c: &mut Client,
    me: Option<&str>,
    kind: Kind,
    key: &str,
) -> Result<(), StoreError> {
    let Some(me) = me else {
        return Ok(());
    };
    let payload = format!("{me}\t{}\t{key}", kind.as_str());
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .map_err(pg("announcing a change"))?;
    Ok(())
}

/// What other nodes announced and has not been read yet, each thing once.
#[derive(Debug, Default)]
pub(super) struct Pending {
    campaigns: BTreeSet<i64>,
    targets: BTreeSet<(i64, i64)>,
    tasks: BTreeSet<i64>,
    do_not_call: BTreeSet<String>,
    contacts: BTreeSet<String>,
}

impl Pending {
    /// Adds what `payload` names, unless this node (`me`) wrote it: it
    /// knows its own writes.
    pub(super) fn add(&mut self, me: &str, payload: &str) {
        let mut parts = payload.splitn(3, '\t');
        let (Some(node), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            debug!(payload, "an announcement not understood, ignored");
            return;
        };
        if node == me {
            return;
        }
        let understood = match Kind::parse(kind) {
            Some(Kind::Campaign) => key.parse().map(|id| self.campaigns.insert(id)).is_ok(),
            Some(Kind::Target) => key
                .split_once(':')
                .and_then(|(c, i)| Some((c.parse().ok()?, i.parse().ok()?)))
                .map(|k| self.targets.insert(k))
                .is_some(),
            Some(Kind::Task) => key.parse().map(|id| self.tasks.insert(id)).is_ok(),
            Some(Kind::DoNotCall) => {
                self.do_not_call.insert(key.to_string());
                true
            }
            Some(Kind::Contact) => {
                self.contacts.insert(key.to_string());
                true
            }
            None => false,
        };
        if !understood {
            // A later version's, perhaps: nothing this one reads.
            debug!(payload, "an announcement not understood, ignored");
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.campaigns.is_empty()
            && self.targets.is_empty()
            && self.tasks.is_empty()
            && self.do_not_call.is_empty()
            && self.contacts.is_empty()
    }

    pub(super) fn clear(&mut self) {
        *self = Pending::default();
    }
}

/// What [`read`] or [`resync`] found.
pub(super) struct Read {
    pub(super) changes: WorkChanges,
    /// Each task read: its id, version, and JSON as stored (for
    /// `PostgresStore::saw_task`).
    pub(super) tasks: Vec<(u64, u64, String)>,
}

/// Reads what `pending` names as the store holds it now, as seen by node
/// `me`. Something that does not read back is left out with a warning:
/// the feed goes on past it.
pub(super) fn read(c: &mut Client, me: &str, pending: &Pending) -> Result<Read, StoreError> {
    let mut read = Read {
        changes: WorkChanges::default(),
        tasks: Vec::new(),
    };
    if !pending.campaigns.is_empty() {
        let ids: Vec<i64> = pending.campaigns.iter().copied().collect();
        let campaigns = read_campaigns(
            c,
            "SELECT id, spec, state, created_ms, prompt_wav, node FROM campaigns
             WHERE id = ANY($1) ORDER BY id",
            &[&ids],
            true,
        )?;
        for (campaign, node) in campaigns {
            read.changes.campaigns.push(Changed {
                item: campaign,
                foreign: foreign(me, node.as_deref()),
            });
        }
    }
    if !pending.targets.is_empty() {
        read.changes.targets = read_targets(c, &pending.targets)?;
    }
    if !pending.tasks.is_empty() {
        let ids: Vec<i64> = pending.tasks.iter().copied().collect();
        let tasks = read_tasks(
            c,
            "SELECT id, body, version, node FROM tasks WHERE id = ANY($1) ORDER BY id",
            &[&ids],
            true,
        )?;
        add_tasks(&mut read, me, tasks);
    }
    if !pending.do_not_call.is_empty() {
        const D: &str = "reading the do-not-call list";
        let numbers: Vec<&str> = pending.do_not_call.iter().map(String::as_str).collect();
        for r in c
            .query(
                "SELECT number FROM do_not_call WHERE number = ANY($1) ORDER BY number",
                &[&numbers],
            )
            .map_err(pg(D))?
        {
            read.changes.do_not_call.push(col(&r, 0, D)?);
        }
    }
    if !pending.contacts.is_empty() {
        let keys: Vec<&str> = pending.contacts.iter().map(String::as_str).collect();
        read.changes.contacts = read_contacts(
            c,
            "SELECT number, call_id, agent, at_ms FROM contacts WHERE number_key = ANY($1)
             ORDER BY at_ms, number_key",
            &[&keys],
        )?;
    }
    Ok(read)
}

/// Everything shared, as `load` reads it back (but the notices), as seen
/// by node `me`: after the connection was made again, when what was
/// announced meanwhile may have been missed.
pub(super) fn resync(c: &mut Client, me: &str, now_ms: u64) -> Result<Read, StoreError> {
    let mut read = Read {
        changes: WorkChanges::default(),
        tasks: Vec::new(),
    };
    for (campaign, node) in read_campaigns(c, CAMPAIGNS_RUNNING, &[], true)? {
        read.changes.campaigns.push(Changed {
            item: campaign,
            foreign: foreign(me, node.as_deref()),
        });
    }
    let since = now_ms.saturating_sub(CLOSED_TASKS_DAYS * DAY_MS) as i64;
    let tasks = read_tasks(c, TASKS_RECENT, &[&since], true)?;
    add_tasks(&mut read, me, tasks);
    read.changes.do_not_call = read_do_not_call(c)?;
    read.changes.contacts = recent_contacts(c, now_ms)?;
    Ok(read)
}

fn add_tasks(read: &mut Read, me: &str, tasks: Vec<super::TaskRow>) {
    for row in tasks {
        read.tasks.push((row.task.id.0, row.version, row.body));
        read.changes.tasks.push(Changed {
            item: row.task,
            foreign: foreign(me, row.node.as_deref()),
        });
    }
}

/// Numbers `keys` (campaign, index), each with its attempts: two
/// statements however many there are, not a campaign read per attempt.
fn read_targets(
    c: &mut Client,
    keys: &BTreeSet<(i64, i64)>,
) -> Result<Vec<ChangedTarget>, StoreError> {
    const T: &str = "reading numbers";
    const A: &str = "reading attempts";
    let (campaigns, indexes): (Vec<i64>, Vec<i64>) = keys.iter().copied().unzip();
    let mut targets: BTreeMap<(i64, i64), Target> = BTreeMap::new();
    for r in c
        .query(
            "SELECT t.campaign, t.idx, t.number, t.state, t.due_ms FROM targets t
             JOIN UNNEST($1::BIGINT[], $2::BIGINT[]) AS k (campaign, idx)
                ON t.campaign = k.campaign AND t.idx = k.idx",
            &[&campaigns, &indexes],
        )
        .map_err(pg(T))?
    {
        let campaign: i64 = col(&r, 0, T)?;
        let row = TargetRow {
            idx: col(&r, 1, T)?,
            number: col(&r, 2, T)?,
            state: col(&r, 3, T)?,
            due_ms: col(&r, 4, T)?,
        };
        let idx = row.idx;
        match rows::target(campaign, row) {
            Ok(target) => {
                targets.insert((campaign, idx), target);
            }
            Err(e) => warn!(error = %e, "a number that does not read back is left out"),
        }
    }
    // A number with an attempt that does not read back is left out whole.
    let mut corrupt = BTreeSet::new();
    for r in c
        .query(
            "SELECT a.campaign, a.idx, a.n, a.at_ms, a.ended_ms, a.result, a.sip_status,
                    a.call_id
             FROM attempts a
             JOIN UNNEST($1::BIGINT[], $2::BIGINT[]) AS k (campaign, idx)
                ON a.campaign = k.campaign AND a.idx = k.idx
             ORDER BY a.campaign, a.idx, a.n",
            &[&campaigns, &indexes],
        )
        .map_err(pg(A))?
    {
        let campaign: i64 = col(&r, 0, A)?;
        let row = AttemptRow {
            idx: col(&r, 1, A)?,
            n: col(&r, 2, A)?,
            at_ms: col(&r, 3, A)?,
            ended_ms: col(&r, 4, A)?,
            result: col(&r, 5, A)?,
            sip_status: col(&r, 6, A)?,
            call_id: col(&r, 7, A)?,
        };
        let key = (campaign, row.idx);
        let Some(target) = targets.get_mut(&key) else {
            continue;
        };
        match rows::attempt(campaign, row) {
            Ok(attempt) => target.attempts.push(attempt),
            Err(e) => {
                warn!(error = %e, "a number with an attempt that does not read back is left out");
                corrupt.insert(key);
            }
        }
    }
    Ok(targets
        .into_iter()
        .filter(|(key, _)| !corrupt.contains(key))
        .map(|((campaign, index), target)| ChangedTarget {
            campaign: CampaignId(campaign as u64),
            index: index as usize,
            target,
        })
        .collect())
}

/// What [`adopt`] took over.
#[derive(Default)]
pub(super) struct Adopted {
    /// Campaigns whole and tasks; nothing foreign.
    pub(super) work: StoredWork,
    /// Each task adopted: its id and stored version.
    pub(super) versions: Vec<(u64, u64)>,
}

/// Node `me` takes over the running and paused campaigns and the open
/// tasks that no live node runs, if its own lease is alive. Two nodes
/// adopting at once are served one after the other (the rows are locked
/// by the `UPDATE`), and the second finds them run by a live node.
pub(super) fn adopt(c: &mut Client, me: &str) -> Result<Adopted, StoreError> {
    let mut adopted = Adopted::default();
    // A node whose lease ran out is itself being taken over.
    let alive = c
        .query_opt(
            "SELECT 1 FROM hl_nodes WHERE id = $1 AND lease_until > now()",
            &[&me],
        )
        .map_err(pg("reading this node's lease"))?
        .is_some();
    if !alive {
        return Ok(adopted);
    }
    const C: &str = "adopting campaigns";
    let found = c
        .query(
            "WITH adopted AS (
                UPDATE campaigns c SET node = $1
                WHERE c.state IN ('running', 'paused')
                  AND (c.node IS NULL OR (c.node <> $1 AND NOT EXISTS (
                        SELECT 1 FROM hl_nodes n
                        WHERE n.id = c.node AND n.lease_until > now())))
                RETURNING c.id, c.spec, c.state, c.created_ms, c.prompt_wav, c.node)
             SELECT * FROM adopted ORDER BY id",
            &[&me],
        )
        .map_err(pg(C))?;
    for r in &found {
        let id: i64 = col(r, 0, C)?;
        notify(c, Some(me), Kind::Campaign, &id.to_string())?;
    }
    adopted.work.campaigns = campaigns_from(c, &found, true)?
        .into_iter()
        .map(|(campaign, _)| campaign)
        .collect();
    const K: &str = "adopting tasks";
    let found = c
        .query(
            "WITH adopted AS (
                UPDATE tasks t SET node = $1
                WHERE t.closed_ms IS NULL
                  AND (t.node IS NULL OR (t.node <> $1 AND NOT EXISTS (
                        SELECT 1 FROM hl_nodes n
                        WHERE n.id = t.node AND n.lease_until > now())))
                RETURNING t.id, t.body, t.version, t.node)
             SELECT * FROM adopted ORDER BY id",
            &[&me],
        )
        .map_err(pg(K))?;
    for r in &found {
        let id: i64 = col(r, 0, K)?;
        notify(c, Some(me), Kind::Task, &id.to_string())?;
    }
    for row in tasks_from(&found, true)? {
        adopted.versions.push((row.task.id.0, row.version));
        adopted.work.tasks.push(row.task);
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_read_once_each_and_never_this_nodes_own() {
        let mut pending = Pending::default();
        for payload in [
            "b\tcampaign\t3",
            "b\tcampaign\t3",
            "c\ttarget\t3:2",
            "b\ttask\t1099511627777",
            "b\tdnc\t13800000001",
            "b\tcontact\t+8613800000001",
            // This node's own writes: it knows them.
            "a\tcampaign\t4",
            "a\ttask\t5",
            // Not understood (a later version's, or garbled): ignored.
            "b\tqueue\tsupport",
            "b\ttarget\t3",
            "b\ttask\tseven",
            "no tabs at all",
        ] {
            pending.add("a", payload);
        }
        assert_eq!(pending.campaigns, BTreeSet::from([3]));
        assert_eq!(pending.targets, BTreeSet::from([(3, 2)]));
        assert_eq!(pending.tasks, BTreeSet::from([1_099_511_627_777]));
        assert_eq!(pending.do_not_call, BTreeSet::from(["13800000001".into()]));
        assert_eq!(pending.contacts, BTreeSet::from(["+8613800000001".into()]));
        pending.clear();
        assert!(pending.is_empty());
    }

    #[test]
    fn a_payload_names_the_node_the_kind_and_the_key() {
        let payload = format!(
            "a\t{}\t{}",
            Kind::Target.as_str(),
            target_key(CampaignId(3), 2)
        );
        let mut pending = Pending::default();
        pending.add("b", &payload);
        assert_eq!(pending.targets, BTreeSet::from([(3, 2)]));
        for kind in [
            Kind::Campaign,
            Kind::Target,
            Kind::Task,
            Kind::DoNotCall,
            Kind::Contact,
        ] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
    }
}
