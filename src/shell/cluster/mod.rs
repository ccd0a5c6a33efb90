//! The cluster thread: this node's side of the state several nodes share
//! in PostgreSQL (docs/cluster.md). It owns one connection, applies the
//! engine's requests in order (claims answered at once), renews the
//! node's lease, and every `POLL` reads what the other nodes share and
//! tells the engine what changed. Losing the store for longer than the
//! lease allows is told to the engine as `StoreLost`; when the store is
//! back, what this node shares is written again, then `StoreBack`.
//!
//! Every `FIGURES` it also publishes this node's live figures and reads
//! the other live nodes', for the wallboard and `/api/v1/status`
//! ([`Figures`]).

mod sql;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline_core::acd::AgentStatus;
use hotline_core::cluster::{ClusterEvent, ClusterRequest, SharedBinding};
use hotline_core::io::Transport;
use hotline_core::live::nodes::NodeFigures;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc as tokio_mpsc;
use tracing::{error, info, warn};

use super::store::postgres::tls::PgTarget;
use super::Event;

/// How often other nodes' state is read.
const POLL: Duration = Duration::from_millis(100);

/// How often live figures are published and read.
pub const FIGURES: Duration = Duration::from_secs(1);

/// Live figures on their way through the store: this node's latest, to
/// publish, and the other live nodes' as last read.
#[derive(Default)]
pub struct Figures {
    own: Mutex<Option<String>>,
    others: Mutex<Vec<NodeFigures>>,
}

impl Figures {
    /// This node's figures, published at the next turn.
    pub fn publish(&self, figures: &NodeFigures) {
        match serde_json::to_string(figures) {
            Ok(json) => *self.own.lock().unwrap_or_else(|e| e.into_inner()) = Some(json),
            Err(e) => warn!(error = %e, "cannot encode this node's live figures"),
        }
    }

    /// The other live nodes' figures, as last read.
    pub fn others(&self) -> Vec<NodeFigures> {
        self.others
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("the shared store: {0}")]
    Sql(#[from] postgres::Error),
    #[error("the shared store's URL: {0}")]
    Url(String),
}

/// The running thread; dropping the sender stops it.
pub struct ClusterThread {
    tx: Option<mpsc::Sender<ClusterRequest>>,
    thread: Option<JoinHandle<()>>,
    /// This node's name (`[node] id`).
    pub node: String,
    pub figures: Arc<Figures>,
}

impl ClusterThread {
    /// Connects (failing start-up when the store cannot be reached, as a
    /// misconfigured URL should), creates the tables, and starts.
    pub fn start(
        url: &str,
        node: String,
        lease: Duration,
        events: tokio_mpsc::UnboundedSender<Event>,
    ) -> Result<ClusterThread, ClusterError> {
        let config = connect_config(url)?;
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let figures = Arc::new(Figures::default());
        let shared_figures = figures.clone();
        let name = node.clone();
        // The blocking client runs its own runtime: it must live on a
        // thread of its own, away from the engine's.
        let thread = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let connected = config.connect().map_err(ClusterError::from);
                let joined = connected.and_then(|mut client| {
                    sql::create_schema(&mut client)?;
                    sql::heartbeat(&mut client, &node, lease.as_millis() as i64)?;
                    sql::start_fresh(&mut client, &node)?;
                    Ok(client)
                });
                let client = match joined {
                    Ok(client) => {
                        let _ = ready_tx.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                info!(%node, lease = ?lease, "sharing state through the store");
                let mut worker = Worker::new(config, Some(client), node, lease, events);
                worker.figures = shared_figures;
                worker.run(rx);
            })
            .map_err(|e| ClusterError::Url(format!("cannot start the cluster thread: {e}")))?;
        let ready = ready
            .recv()
            .map_err(|_| ClusterError::Url("the cluster thread stopped at start".into()))?;
        ready?;
        Ok(ClusterThread {
            tx: Some(tx),
            thread: Some(thread),
            node: name,
            figures,
        })
    }

    pub fn send(&self, request: ClusterRequest) {
        if let Some(tx) = &self.tx {
            if tx.send(request).is_err() {
                error!("the cluster thread has stopped");
            }
        }
    }

    /// Applies what is queued, releases this node's claims, and stops.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn connect_config(url: &str) -> Result<PgTarget, ClusterError> {
    let mut target = PgTarget::parse(url).map_err(|e| ClusterError::Url(e.to_string()))?;
    let config = &mut target.config;
    config.connect_timeout(Duration::from_secs(2));
    // A statement never hangs longer than a lease's worth.
    config.options("-c statement_timeout=2000");
    config.application_name("hotline");
    Ok(target)
}

/// A phone as stored (JSON in `hl_bindings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct StoredBinding {
    contact: String,
    source: SocketAddr,
    transport: String,
    path: Vec<String>,
    expires_ms: u64,
}

impl StoredBinding {
    fn from_shared(b: &SharedBinding) -> StoredBinding {
        StoredBinding {
            contact: b.contact.clone(),
            source: b.source,
            transport: b.transport.name().to_string(),
            path: b.path.clone(),
            expires_ms: b.expires_ms,
        }
    }

    fn to_shared(&self) -> SharedBinding {
        let transport = match self.transport.as_str() {
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            _ => Transport::Udp,
        };
        SharedBinding {
            contact: self.contact.clone(),
            source: self.source,
            transport,
            path: self.path.clone(),
            expires_ms: self.expires_ms,
        }
    }
}

fn status_text(status: &AgentStatus) -> (&'static str, &str) {
    match status {
        AgentStatus::LoggedOut => ("logged_out", ""),
        AgentStatus::Available => ("available", ""),
        AgentStatus::OnBreak { reason } => ("break", reason.as_str()),
    }
}

fn status_of(text: &str, reason: &str) -> AgentStatus {
    match text {
        "available" => AgentStatus::Available,
        "break" => AgentStatus::OnBreak {
            reason: reason.to_string(),
        },
        _ => AgentStatus::LoggedOut,
    }
}

struct Worker {
    config: PgTarget,
    client: Option<postgres::Client>,
    node: String,
    lease: Duration,
    events: tokio_mpsc::UnboundedSender<Event>,
    /// The last lease renewal that succeeded.
    last_ok: Instant,
    /// `StoreLost` was told and `StoreBack` not yet.
    lost: bool,
    /// What this node shares, to write again after an outage: its
    /// waiting callers, its claims (agent -> fence) and phones.
    entries: HashMap<i64, (String, i32, i64)>,
    claims: HashMap<String, i64>,
    written_bindings: HashMap<String, String>,
    /// Other nodes' state as last told to the engine.
    seen_entries: HashSet<i64>,
    seen_agents: HashMap<String, (String, String, bool)>,
    seen_bindings: HashMap<String, Vec<SharedBinding>>,
    round_trips: u64,
    figures: Arc<Figures>,
    next_figures: Instant,
}

impl Worker {
    fn new(
        config: PgTarget,
        client: Option<postgres::Client>,
        node: String,
        lease: Duration,
        events: tokio_mpsc::UnboundedSender<Event>,
    ) -> Worker {
        Worker {
            config,
            client,
            node,
            lease,
            events,
            last_ok: Instant::now(),
            lost: false,
            entries: HashMap::new(),
            claims: HashMap::new(),
            seen_entries: HashSet::new(),
            seen_agents: HashMap::new(),
            seen_bindings: HashMap::new(),
            written_bindings: HashMap::new(),
            round_trips: 0,
            figures: Arc::default(),
            next_figures: Instant::now(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<ClusterRequest>) {
        let mut next_poll = Instant::now();
        loop {
            let wait = next_poll.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(request) => {
                    self.apply(request);
                    // Everything queued behind it, before the next poll.
                    while let Ok(request) = rx.try_recv() {
                        self.apply(request);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_poll {
                self.poll();
                next_poll = Instant::now() + POLL;
            }
        }
        self.stop();
    }

    fn tell(&self, event: ClusterEvent) {
        let _ = self.events.send(Event::Cluster(event));
    }

    /// Runs `f` on the connection; a failure drops the connection (the
    /// next poll reconnects).
    fn with_client<T>(
        &mut self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, ClusterError>,
    ) -> Option<T> {
        let client = self.client.as_mut()?;
        self.round_trips += 1;
        match f(client) {
            Ok(v) => Some(v),
            Err(e) => {
                warn!(error = %e, "the shared store failed");
                if client.is_closed() {
                    self.client = None;
                }
                None
            }
        }
    }

    fn apply(&mut self, request: ClusterRequest) {
        let node = self.node.clone();
        match request {
            ClusterRequest::Claim {
                claim,
                agent,
                caller,
                queue,
                priority,
                arrival_ms,
            } => {
                let ask = sql::ClaimAsk {
                    node: &node,
                    agent: &agent,
                    caller: caller.0 as i64,
                    queue: &queue,
                    priority: i32::from(priority),
                    arrival_ms: arrival_ms as i64,
                };
                let fence = if self.lost {
                    None
                } else {
                    self.with_client(|c| sql::claim(c, &ask)).flatten()
                };
                match fence {
                    Some(fence) => {
                        self.claims.insert(agent.clone(), fence);
                        self.entries.remove(&(caller.0 as i64));
                    }
                    // The engine now holds the agent as taken elsewhere.
                    // It may not be (the claim lost to a caller ahead, or
                    // the store failed): the next view must say so even
                    // if nothing changed in the store.
                    None => {
                        let seen = self
                            .seen_agents
                            .entry(agent.clone())
                            .or_insert_with(|| (String::new(), String::new(), true));
                        seen.2 = true;
                    }
                }
                self.tell(ClusterEvent::Claimed {
                    claim,
                    granted: fence.is_some(),
                });
            }
            ClusterRequest::Release { agent } => {
                if let Some(fence) = self.claims.remove(&agent) {
                    self.with_client(|c| sql::release(c, &node, &agent, fence));
                }
            }
            ClusterRequest::Waiting {
                caller,
                queue,
                priority,
                arrival_ms,
            } => {
                let call = caller.0 as i64;
                let (priority, arrival_ms) = (i32::from(priority), arrival_ms as i64);
                self.entries
                    .insert(call, (queue.clone(), priority, arrival_ms));
                self.with_client(|c| sql::waiting(c, &node, call, &queue, priority, arrival_ms));
            }
            ClusterRequest::NotWaiting { caller } => {
                let call = caller.0 as i64;
                if self.entries.remove(&call).is_some() {
                    self.with_client(|c| sql::not_waiting(c, &node, call));
                }
            }
            ClusterRequest::Engaged { agent, engaged } => {
                if engaged {
                    match self.with_client(|c| sql::hold(c, &node, &agent)).flatten() {
                        Some(fence) => {
                            self.claims.insert(agent, fence);
                        }
                        // The call is already ringing; another node's
                        // claim stands, and the agent's phone says busy.
                        None => warn!(%agent, "an agent rung directly is held by another node"),
                    }
                } else if let Some(fence) = self.claims.remove(&agent) {
                    self.with_client(|c| sql::release(c, &node, &agent, fence));
                }
            }
            ClusterRequest::Status { agent, status } => {
                let (text, reason) = status_text(&status);
                self.with_client(|c| sql::status(c, &node, &agent, text, reason));
            }
            ClusterRequest::Bindings { user, bindings } => {
                let json = if bindings.is_empty() {
                    self.written_bindings.remove(&user);
                    None
                } else {
                    let stored: Vec<StoredBinding> =
                        bindings.iter().map(StoredBinding::from_shared).collect();
                    let json = serde_json::to_string(&stored).unwrap_or_default();
                    self.written_bindings.insert(user.clone(), json.clone());
                    Some(json)
                };
                self.with_client(|c| sql::bindings(c, &node, &user, json.as_deref()));
            }
        }
    }

    fn poll(&mut self) {
        if self.client.is_none() {
            match self.config.connect() {
                Ok(client) => {
                    info!("connected to the shared store again");
                    self.client = Some(client);
                }
                Err(e) => {
                    if !self.lost {
                        warn!(error = %e, "cannot reach the shared store");
                    }
                }
            }
        }
        let (node, lease_ms) = (self.node.clone(), self.lease.as_millis() as i64);
        let renewed = self
            .with_client(|c| sql::heartbeat(c, &node, lease_ms))
            .is_some();
        if renewed {
            if self.lost {
                self.rewrite();
                self.lost = false;
                self.tell(ClusterEvent::StoreBack);
                // Everything is told again after the outage.
                self.seen_entries.clear();
                self.seen_agents.clear();
                self.seen_bindings.clear();
            }
            self.last_ok = Instant::now();
        } else if !self.lost && self.last_ok.elapsed() >= self.lease * 2 / 3 {
            // Other nodes take over our claims when the lease runs out;
            // stop offering before that.
            warn!("the shared store is out of reach for most of the lease: offering no agents");
            self.lost = true;
            self.claims.clear();
            self.tell(ClusterEvent::StoreLost);
        }
        if self.lost {
            // Other nodes' figures go stale: this node shows its own.
            self.figures
                .others
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            return;
        }
        if let Some(snapshot) = self.with_client(|c| sql::snapshot(c, &node)) {
            self.tell_changes(snapshot);
        }
        if Instant::now() >= self.next_figures {
            self.next_figures = Instant::now() + FIGURES;
            self.exchange_figures();
        }
    }

    /// Publishes this node's live figures and reads the other nodes'.
    fn exchange_figures(&mut self) {
        let node = self.node.clone();
        let own = self
            .figures
            .own
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(json) = own {
            self.with_client(|c| sql::publish_figures(c, &node, &json));
        }
        let Some(texts) = self.with_client(|c| sql::other_figures(c, &node)) else {
            return;
        };
        let others: Vec<NodeFigures> = texts
            .iter()
            .filter_map(|text| match serde_json::from_str(text) {
                Ok(figures) => Some(figures),
                Err(e) => {
                    warn!(error = %e, "another node's live figures do not read; left out");
                    None
                }
            })
            .collect();
        *self
            .figures
            .others
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = others;
    }

    /// After an outage: this node's waiting callers, claims and phones.
    fn rewrite(&mut self) {
        let node = self.node.clone();
        let entries: Vec<(i64, (String, i32, i64))> =
            self.entries.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (call, (queue, priority, arrival)) in entries {
            self.with_client(|c| sql::waiting(c, &node, call, &queue, priority, arrival));
        }
        let bindings: Vec<(String, String)> = self
            .written_bindings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (user, json) in bindings {
            self.with_client(|c| sql::bindings(c, &node, &user, Some(&json)));
        }
        let claims: Vec<String> = self.claims.keys().cloned().collect();
        for agent in claims {
            self.with_client(|c| sql::reassert(c, &node, &agent));
        }
    }

    fn tell_changes(&mut self, snapshot: sql::Snapshot) {
        let mut now_entries = HashSet::new();
        for e in snapshot.entries {
            now_entries.insert(e.id);
            if self.seen_entries.insert(e.id) {
                self.tell(ClusterEvent::RemoteWaiting {
                    entry: e.id as u64,
                    queue: e.queue,
                    priority: u8::try_from(e.priority).unwrap_or(0),
                    arrival_ms: e.arrival_ms.max(0) as u64,
                });
            }
        }
        let gone: Vec<i64> = self
            .seen_entries
            .difference(&now_entries)
            .copied()
            .collect();
        for id in gone {
            self.seen_entries.remove(&id);
            self.tell(ClusterEvent::RemoteGone { entry: id as u64 });
        }
        for a in snapshot.agents {
            let seen = (a.status.clone(), a.reason.clone(), a.held);
            let before = self.seen_agents.insert(a.id.clone(), seen);
            let (status_before, held_before) = match &before {
                Some((s, r, h)) => (Some((s.as_str(), r.as_str())), *h),
                None => (None, false),
            };
            if a.held != held_before {
                self.tell(ClusterEvent::AgentHeld {
                    agent: a.id.clone(),
                    held: a.held,
                });
            }
            let changed = status_before != Some((a.status.as_str(), a.reason.as_str()));
            let by_other = a.status_node.as_deref().is_some_and(|n| n != self.node);
            if changed && by_other {
                self.tell(ClusterEvent::AgentStatus {
                    agent: a.id.clone(),
                    status: status_of(&a.status, &a.reason),
                });
            }
        }
        // Phones registered through other nodes, or through this node
        // before it restarted (still valid: the phone does not know).
        let mut phones: HashMap<String, Vec<SharedBinding>> = HashMap::new();
        for (agent, node, json) in snapshot.bindings {
            if node == self.node && self.written_bindings.contains_key(&agent) {
                continue;
            }
            let Ok(stored) = serde_json::from_str::<Vec<StoredBinding>>(&json) else {
                warn!(%agent, %node, "a stored binding is not readable; ignored");
                continue;
            };
            phones
                .entry(agent)
                .or_default()
                .extend(stored.iter().map(StoredBinding::to_shared));
        }
        let users: HashSet<String> = phones
            .keys()
            .chain(self.seen_bindings.keys())
            .cloned()
            .collect();
        for user in users {
            let now = phones.remove(&user).unwrap_or_default();
            if self.seen_bindings.get(&user) != Some(&now) {
                if now.is_empty() {
                    self.seen_bindings.remove(&user);
                } else {
                    self.seen_bindings.insert(user.clone(), now.clone());
                }
                self.tell(ClusterEvent::RemoteBindings {
                    user,
                    bindings: now,
                });
            }
        }
    }

    /// At shutdown: this node's claims, entries and phones' rows go; the
    /// lease ends now, so nobody waits for it to run out.
    fn stop(&mut self) {
        let node = self.node.clone();
        let claims: Vec<(String, i64)> = self.claims.drain().collect();
        for (agent, fence) in claims {
            self.with_client(|c| sql::release(c, &node, &agent, fence));
        }
        self.with_client(|c| sql::start_fresh(c, &node));
        self.with_client(|c| sql::heartbeat(c, &node, 0));
        info!(round_trips = self.round_trips, "cluster thread stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::ids::CallKey;

    /// A worker with no connection (as during an outage), telling `events`.
    fn worker(events: tokio_mpsc::UnboundedSender<Event>) -> Worker {
        let config = connect_config("postgres://hotline@127.0.0.1:1/hotline").expect("url");
        Worker::new(config, None, "a".into(), Duration::from_secs(5), events)
    }

    fn free_agent(id: &str) -> sql::AgentRow {
        sql::AgentRow {
            id: id.into(),
            status: "available".into(),
            reason: String::new(),
            status_node: Some("a".into()),
            held: false,
        }
    }

    fn snapshot(agents: Vec<sql::AgentRow>) -> sql::Snapshot {
        sql::Snapshot {
            entries: Vec::new(),
            agents,
            bindings: Vec::new(),
        }
    }

    fn held_events(rx: &mut tokio_mpsc::UnboundedReceiver<Event>) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let Event::Cluster(ClusterEvent::AgentHeld { agent, held }) = event {
                out.push((agent, held));
            }
        }
        out
    }

    #[test]
    fn an_agent_refused_but_free_is_offered_again_after_the_next_view() {
        let (tx, mut rx) = tokio_mpsc::unbounded_channel();
        let mut w = worker(tx);
        w.tell_changes(snapshot(vec![free_agent("1001")]));
        assert!(held_events(&mut rx).is_empty(), "free, as first seen");
        // The claim fails (here: no connection), so the engine holds 1001
        // as taken elsewhere ...
        w.apply(ClusterRequest::Claim {
            claim: 1,
            agent: "1001".into(),
            caller: CallKey(7),
            queue: "repair".into(),
            priority: 1,
            arrival_ms: 0,
        });
        let refused = std::iter::from_fn(|| rx.try_recv().ok()).any(|e| {
            matches!(
                e,
                Event::Cluster(ClusterEvent::Claimed {
                    claim: 1,
                    granted: false
                })
            )
        });
        assert!(refused);
        // ... and the store, unchanged, still says free: told again.
        w.tell_changes(snapshot(vec![free_agent("1001")]));
        assert_eq!(held_events(&mut rx), vec![("1001".to_string(), false)]);
        // Nothing more while nothing changes.
        w.tell_changes(snapshot(vec![free_agent("1001")]));
        assert!(held_events(&mut rx).is_empty());
    }
}
