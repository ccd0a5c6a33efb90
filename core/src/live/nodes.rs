//! Several nodes' calls on one wallboard (docs/cluster.md). Each node
//! publishes what can be summed of its own view ([`NodeFigures`]) through
//! the shared store, about once a second; a node's status adds the other
//! live nodes' to its own ([`LiveSnapshot::add_nodes`]). Counts add up,
//! ratios are worked out again from the sums, longest waits are the
//! longest of all, and an agent busy with another node's call shows busy
//! here. Agents' statuses, tasks and campaigns need no summing: every node
//! already has them all.

use serde::{Deserialize, Serialize};

use super::{CallFigures, CallsFiguresView, FiguresView, LiveSnapshot, QueueAgents, QueueFigures};

/// One node's own figures, as it publishes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFigures {
    pub node: String,
    /// When they were taken, Unix ms.
    pub at_ms: u64,
    /// The local date its "today" figures are for.
    pub today: String,
    pub in_progress: usize,
    pub calls_total: CallFigures,
    pub calls_today: CallFigures,
    pub queues: Vec<NodeQueue>,
    /// Agents busy with this node's calls: (agent, offered / on_call /
    /// wrap_up).
    pub agents: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeQueue {
    pub name: String,
    pub waiting: usize,
    pub longest_wait_ms: u64,
    pub longest_wait_today_ms: u64,
    pub total: QueueFigures,
    pub today: QueueFigures,
}

impl NodeFigures {
    /// What node `node` publishes of its own `snapshot`.
    pub fn of(node: &str, snapshot: &LiveSnapshot) -> NodeFigures {
        NodeFigures {
            node: node.to_string(),
            at_ms: snapshot.at_ms,
            today: snapshot.today.clone(),
            in_progress: snapshot.calls.in_progress,
            calls_total: snapshot.calls.total.figures.clone(),
            calls_today: snapshot.calls.today.figures.clone(),
            queues: snapshot
                .queues
                .iter()
                .map(|q| NodeQueue {
                    name: q.name.clone(),
                    waiting: q.waiting,
                    longest_wait_ms: q.longest_wait_ms,
                    longest_wait_today_ms: q.longest_wait_today_ms,
                    total: q.total.figures.clone(),
                    today: q.today.figures.clone(),
                })
                .collect(),
            agents: snapshot
                .agents
                .iter()
                .filter(|a| a.state != "idle")
                .map(|a| (a.id.clone(), a.state.to_string()))
                .collect(),
        }
    }
}

impl CallFigures {
    fn add(&mut self, other: &CallFigures) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.invalid += other.invalid;
        self.repeat_contacts += other.repeat_contacts;
        for (mine, theirs) in self.ended.iter_mut().zip(other.ended) {
            *mine += theirs;
        }
    }
}

impl QueueFigures {
    fn add(&mut self, other: &QueueFigures) {
        self.offered += other.offered;
        for (mine, theirs) in self.results.iter_mut().zip(other.results) {
            *mine += theirs;
        }
        self.answered_within_from_arrival += other.answered_within_from_arrival;
        self.answered_within_from_queue_entry += other.answered_within_from_queue_entry;
        self.short_abandons += other.short_abandons;
        self.answered_wait_ms += other.answered_wait_ms;
        self.answered_since_arrival_ms += other.answered_since_arrival_ms;
        self.longest_wait_ms = self.longest_wait_ms.max(other.longest_wait_ms);
    }
}

/// A busy state names a call; "idle" is the only other.
fn busy(state: &str) -> Option<&'static str> {
    match state {
        "offered" => Some("offered"),
        "on_call" => Some("on_call"),
        "wrap_up" => Some("wrap_up"),
        _ => None,
    }
}

impl LiveSnapshot {
    /// Adds other nodes' figures to this node's own. A node's "today"
    /// counts only if it is the same date here (around midnight, a node
    /// whose day already rolled over adds its totals only).
    pub fn add_nodes(&mut self, others: &[NodeFigures]) {
        if others.is_empty() {
            return;
        }
        let mut calls_total = self.calls.total.figures.clone();
        let mut calls_today = self.calls.today.figures.clone();
        for other in others {
            let same_day = other.today == self.today;
            self.nodes.push(other.node.clone());
            self.calls.in_progress += other.in_progress;
            calls_total.add(&other.calls_total);
            if same_day {
                calls_today.add(&other.calls_today);
            }
            for theirs in &other.queues {
                let Some(q) = self.queues.iter_mut().find(|q| q.name == theirs.name) else {
                    continue;
                };
                q.waiting += theirs.waiting;
                q.longest_wait_ms = q.longest_wait_ms.max(theirs.longest_wait_ms);
                let mut total = q.total.figures.clone();
                total.add(&theirs.total);
                q.total = FiguresView::of(&total);
                if same_day {
                    q.longest_wait_today_ms =
                        q.longest_wait_today_ms.max(theirs.longest_wait_today_ms);
                    let mut today = q.today.figures.clone();
                    today.add(&theirs.today);
                    q.today = FiguresView::of(&today);
                }
            }
            for (agent, state) in &other.agents {
                let Some(busy) = busy(state) else { continue };
                if let Some(a) = self
                    .agents
                    .iter_mut()
                    .find(|a| &a.id == agent && a.state == "idle")
                {
                    a.state = busy;
                }
            }
        }
        self.calls.total = CallsFiguresView::of(&calls_total);
        self.calls.today = CallsFiguresView::of(&calls_today);
        for q in &mut self.queues {
            let mut agents = QueueAgents::default();
            for a in self.agents.iter().filter(|a| a.queues.contains(&q.name)) {
                agents.count(a.status, a.state, a.registered);
            }
            q.agents = agents;
        }
    }
}
