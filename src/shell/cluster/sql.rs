//! The cluster's tables in PostgreSQL and the statements on them. Times
//! that decide leases are the database's `now()`, one clock for every
//! node; arrivals are the nodes' wall clocks in ms (NTP-synchronised).

use postgres::{Client, Transaction};

use super::ClusterError;
use crate::shell::store::postgres::{NODES_LOCK, NODES_TABLE};

/// Created by the first node, under the advisory lock [`NODES_LOCK`],
/// which keeps two nodes starting at once from racing on `CREATE TABLE IF
/// NOT EXISTS`. (`hl_nodes`, [`NODES_TABLE`], is the store's definition:
/// the store reads it too, to adopt the work of dead nodes.)
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS hl_agents (
        id text PRIMARY KEY,
        status text NOT NULL DEFAULT 'logged_out',
        reason text NOT NULL DEFAULT '',
        status_node text,
        claim_node text,
        claim_call bigint,
        fence bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS hl_entries (
        id bigserial PRIMARY KEY,
        node text NOT NULL,
        call bigint NOT NULL,
        queue text NOT NULL,
        priority int NOT NULL,
        arrival_ms bigint NOT NULL,
        UNIQUE (node, call)
    );
    CREATE INDEX IF NOT EXISTS hl_entries_order ON hl_entries (queue, priority DESC, arrival_ms);
    CREATE TABLE IF NOT EXISTS hl_bindings (
        agent text NOT NULL,
        node text NOT NULL,
        bindings text NOT NULL,
        PRIMARY KEY (agent, node)
    );
    ALTER TABLE hl_nodes ADD COLUMN IF NOT EXISTS figures text;
";

pub fn create_schema(client: &mut Client) -> Result<(), ClusterError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&NODES_LOCK])?;
    tx.batch_execute(NODES_TABLE)?;
    tx.batch_execute(SCHEMA)?;
    tx.commit()?;
    Ok(())
}

/// Renews this node's lease; at start, also forgets what an earlier run
/// under the same name left (its waiting callers and claims died with it).
pub fn heartbeat(client: &mut Client, node: &str, lease_ms: i64) -> Result<(), ClusterError> {
    client.execute(
        "INSERT INTO hl_nodes (id, lease_until) VALUES ($1, now() + $2 * interval '1 millisecond')
         ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        &[&node, &(lease_ms as f64)],
    )?;
    Ok(())
}

pub fn start_fresh(client: &mut Client, node: &str) -> Result<(), ClusterError> {
    let mut tx = client.transaction()?;
    tx.execute("DELETE FROM hl_entries WHERE node = $1", &[&node])?;
    tx.execute(
        "UPDATE hl_agents SET claim_node = NULL, claim_call = NULL WHERE claim_node = $1",
        &[&node],
    )?;
    tx.execute(
        "UPDATE hl_nodes SET started_at = now() WHERE id = $1",
        &[&node],
    )?;
    tx.commit()?;
    Ok(())
}

/// A claim on `agent` for `caller`: granted (with the new fencing number)
/// when this node's lease is alive, no live node holds the agent, and no
/// caller ahead in the queue waits unoffered on another live node.
pub struct ClaimAsk<'a> {
    pub node: &'a str,
    pub agent: &'a str,
    pub caller: i64,
    pub queue: &'a str,
    pub priority: i32,
    pub arrival_ms: i64,
}

pub fn claim(client: &mut Client, ask: &ClaimAsk<'_>) -> Result<Option<i64>, ClusterError> {
    let mut tx = client.transaction()?;
    let fence = claim_in(&mut tx, ask)?;
    tx.commit()?;
    Ok(fence)
}

fn claim_in(tx: &mut Transaction<'_>, ask: &ClaimAsk<'_>) -> Result<Option<i64>, ClusterError> {
    let alive = tx.query_opt(
        "SELECT 1 FROM hl_nodes WHERE id = $1 AND lease_until > now()",
        &[&ask.node],
    )?;
    if alive.is_none() {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO hl_agents (id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&ask.agent],
    )?;
    // The row lock serialises claims on one agent across nodes.
    let row = tx.query_one(
        "SELECT a.claim_node, a.fence,
                COALESCE(n.lease_until > now(), false) AS holder_alive
           FROM hl_agents a LEFT JOIN hl_nodes n ON n.id = a.claim_node
          WHERE a.id = $1 FOR UPDATE OF a",
        &[&ask.agent],
    )?;
    let holder: Option<String> = row.try_get(0)?;
    let holder_alive: bool = row.try_get(2)?;
    if holder.as_deref().is_some_and(|h| h != ask.node) && holder_alive {
        return Ok(None);
    }
    let ahead = tx.query_opt(
        "SELECT 1 FROM hl_entries e JOIN hl_nodes n ON n.id = e.node
          WHERE e.queue = $1 AND e.node <> $2 AND n.lease_until > now()
            AND (e.priority > $3 OR (e.priority = $3 AND e.arrival_ms < $4))
          LIMIT 1",
        &[&ask.queue, &ask.node, &ask.priority, &ask.arrival_ms],
    )?;
    if ahead.is_some() {
        return Ok(None);
    }
    let row = tx.query_one(
        "UPDATE hl_agents SET claim_node = $2, claim_call = $3, fence = fence + 1
          WHERE id = $1 RETURNING fence",
        &[&ask.agent, &ask.node, &ask.caller],
    )?;
    tx.execute(
        "DELETE FROM hl_entries WHERE node = $1 AND call = $2",
        &[&ask.node, &ask.caller],
    )?;
    Ok(Some(row.try_get(0)?))
}

/// Holds `agent` for a call this node placed outside the ACD (no queue
/// order to respect): granted, with a new fencing number, unless another
/// live node holds the agent.
pub fn hold(client: &mut Client, node: &str, agent: &str) -> Result<Option<i64>, ClusterError> {
    client.execute(
        "INSERT INTO hl_agents (id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&agent],
    )?;
    let row = client.query_opt(
        "UPDATE hl_agents a SET claim_node = $2, claim_call = NULL, fence = fence + 1
          WHERE a.id = $1 AND (a.claim_node IS NULL OR a.claim_node = $2 OR NOT EXISTS
                (SELECT 1 FROM hl_nodes n WHERE n.id = a.claim_node AND n.lease_until > now()))
          RETURNING fence",
        &[&agent, &node],
    )?;
    row.map(|r| r.try_get(0))
        .transpose()
        .map_err(ClusterError::from)
}

/// Re-takes a claim after the store came back (only if nobody alive took
/// the agent meanwhile).
pub fn reassert(client: &mut Client, node: &str, agent: &str) -> Result<bool, ClusterError> {
    let n = client.execute(
        "UPDATE hl_agents a SET claim_node = $2, fence = fence + 1
          WHERE a.id = $1 AND (a.claim_node IS NULL OR a.claim_node = $2 OR NOT EXISTS
                (SELECT 1 FROM hl_nodes n WHERE n.id = a.claim_node AND n.lease_until > now()))",
        &[&agent, &node],
    )?;
    Ok(n == 1)
}

pub fn release(
    client: &mut Client,
    node: &str,
    agent: &str,
    fence: i64,
) -> Result<(), ClusterError> {
    client.execute(
        "UPDATE hl_agents SET claim_node = NULL, claim_call = NULL
          WHERE id = $1 AND claim_node = $2 AND fence = $3",
        &[&agent, &node, &fence],
    )?;
    Ok(())
}

pub fn waiting(
    client: &mut Client,
    node: &str,
    call: i64,
    queue: &str,
    priority: i32,
    arrival_ms: i64,
) -> Result<(), ClusterError> {
    client.execute(
        "INSERT INTO hl_entries (node, call, queue, priority, arrival_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (node, call) DO UPDATE
           SET queue = EXCLUDED.queue, priority = EXCLUDED.priority, arrival_ms = EXCLUDED.arrival_ms",
        &[&node, &call, &queue, &priority, &arrival_ms],
    )?;
    Ok(())
}

pub fn not_waiting(client: &mut Client, node: &str, call: i64) -> Result<(), ClusterError> {
    client.execute(
        "DELETE FROM hl_entries WHERE node = $1 AND call = $2",
        &[&node, &call],
    )?;
    Ok(())
}

pub fn status(
    client: &mut Client,
    node: &str,
    agent: &str,
    status: &str,
    reason: &str,
) -> Result<(), ClusterError> {
    client.execute(
        "INSERT INTO hl_agents (id, status, reason, status_node) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE
           SET status = EXCLUDED.status, reason = EXCLUDED.reason, status_node = EXCLUDED.status_node",
        &[&agent, &status, &reason, &node],
    )?;
    Ok(())
}

pub fn bindings(
    client: &mut Client,
    node: &str,
    agent: &str,
    json: Option<&str>,
) -> Result<(), ClusterError> {
    match json {
        Some(json) => client.execute(
            "INSERT INTO hl_bindings (agent, node, bindings) VALUES ($1, $2, $3)
             ON CONFLICT (agent, node) DO UPDATE SET bindings = EXCLUDED.bindings",
            &[&agent, &node, &json],
        )?,
        None => client.execute(
            "DELETE FROM hl_bindings WHERE agent = $1 AND node = $2",
            &[&agent, &node],
        )?,
    };
    Ok(())
}

/// What other live nodes' callers wait for, unoffered.
pub struct RemoteEntry {
    pub id: i64,
    pub queue: String,
    pub priority: i32,
    pub arrival_ms: i64,
}

/// An agent as the store has it.
pub struct AgentRow {
    pub id: String,
    pub status: String,
    pub reason: String,
    pub status_node: Option<String>,
    /// A live node other than this one holds it.
    pub held: bool,
}

pub struct Snapshot {
    pub entries: Vec<RemoteEntry>,
    pub agents: Vec<AgentRow>,
    /// (agent, node, bindings as JSON).
    pub bindings: Vec<(String, String, String)>,
}

/// One consistent read of everything other nodes share.
pub fn snapshot(client: &mut Client, node: &str) -> Result<Snapshot, ClusterError> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut entries = Vec::new();
    for row in tx.query(
        "SELECT e.id, e.queue, e.priority, e.arrival_ms FROM hl_entries e
           JOIN hl_nodes n ON n.id = e.node
          WHERE e.node <> $1 AND n.lease_until > now()",
        &[&node],
    )? {
        entries.push(RemoteEntry {
            id: row.try_get(0)?,
            queue: row.try_get(1)?,
            priority: row.try_get(2)?,
            arrival_ms: row.try_get(3)?,
        });
    }
    let mut agents = Vec::new();
    for row in tx.query(
        "SELECT a.id, a.status, a.reason, a.status_node,
                (a.claim_node IS NOT NULL AND a.claim_node <> $1
                 AND COALESCE(n.lease_until > now(), false)) AS held
           FROM hl_agents a LEFT JOIN hl_nodes n ON n.id = a.claim_node",
        &[&node],
    )? {
        agents.push(AgentRow {
            id: row.try_get(0)?,
            status: row.try_get(1)?,
            reason: row.try_get(2)?,
            status_node: row.try_get(3)?,
            held: row.try_get(4)?,
        });
    }
    let mut bindings = Vec::new();
    for row in tx.query("SELECT agent, node, bindings FROM hl_bindings", &[])? {
        bindings.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    tx.commit()?;
    Ok(Snapshot {
        entries,
        agents,
        bindings,
    })
}

/// This node's own live figures (JSON), for the others' wallboards.
pub fn publish_figures(client: &mut Client, node: &str, json: &str) -> Result<(), ClusterError> {
    client.execute(
        "UPDATE hl_nodes SET figures = $2 WHERE id = $1",
        &[&node, &json],
    )?;
    Ok(())
}

/// The live figures (JSON) the other live nodes published.
pub fn other_figures(client: &mut Client, node: &str) -> Result<Vec<String>, ClusterError> {
    let rows = client.query(
        "SELECT figures FROM hl_nodes
          WHERE id <> $1 AND lease_until > now() AND figures IS NOT NULL ORDER BY id",
        &[&node],
    )?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(ClusterError::from))
        .collect()
}
