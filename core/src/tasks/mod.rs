//! Tasks: work owed to a customer after (or instead of) a call. A
//! callback a waiting caller asked for, a voice message to return, a
//! follow-up (回访) after a repair or complaint, each with the queue whose
//! agents do it and, but for callbacks, a deadline.
//!
//! - [`spec`]: a task as the API takes it, checked field by field.
//! - [`book`]: the pure machine that says which task enters its queue
//!   when, which is at risk of missing its deadline, and what an
//!   attempt's end means (done, retry later, failed).
//! - [`order`]: a work order's fields (the customer, the address, a
//!   repair's fault, a complaint's subject), kept on its task.
//! - [`edit`]: editing a task's note, deadline and order by the version
//!   its editor saw, so that two editors never lose each other's edit.
//!
//! The ACD offers a task to an agent like a call; the engine rings the
//! agent, says what the task is, then dials the customer (`engine::work`).
//! Every change is written to the store whole ([`Task`] is the row), and
//! the write that starts a dial is acknowledged before the INVITE leaves.

pub mod book;
pub mod edit;
pub mod order;
pub mod spec;

use serde::{Deserialize, Serialize};

pub use book::{TaskBook, TaskDecision};
pub use edit::{EditError, Edited, TaskEdit};
pub use order::{FaultType, OrderKind, WorkOrder};
pub use spec::TaskSpec;

/// A task's id, given by the engine (restored past the highest stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

/// What is owed. Each kind is a deadline type in the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A waiting caller asked to be called back, keeping their place.
    Callback,
    /// A voice message left for the hotline, to be answered by a call.
    Message,
    /// A follow-up call (回访) after a repair or other work order.
    FollowUp,
    /// A reply owed on a complaint (2 h simple, 24 h complex).
    Complaint,
}

pub const TASK_KINDS: [TaskKind; 4] = [
    TaskKind::Callback,
    TaskKind::Message,
    TaskKind::FollowUp,
    TaskKind::Complaint,
];

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Callback => "callback",
            TaskKind::Message => "message",
            TaskKind::FollowUp => "follow_up",
            TaskKind::Complaint => "complaint",
        }
    }

    pub fn parse(text: &str) -> Option<TaskKind> {
        TASK_KINDS.into_iter().find(|k| k.as_str() == text)
    }

    /// The prompt the agent hears first when the task is theirs.
    pub fn intro_prompt(self) -> &'static str {
        match self {
            TaskKind::Callback => "task_callback",
            TaskKind::Message => "task_message",
            TaskKind::FollowUp => "task_follow_up",
            TaskKind::Complaint => "task_complaint",
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for an agent (in its queue), or for its next attempt.
    Open,
    /// An agent's phone is ringing with it.
    Offered,
    /// The customer is being dialled.
    Dialing,
    /// The customer answered and is talking to the agent.
    Connected,
    Done,
    /// Every attempt failed: nobody was reached.
    Failed,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Offered => "offered",
            TaskState::Dialing => "dialing",
            TaskState::Connected => "connected",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Done, failed or cancelled: nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Failed | TaskState::Cancelled
        )
    }
}

/// What the agent recorded after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    Satisfied,
    NotSatisfied,
    /// The customer could not be reached (or the wrong person answered):
    /// tried again on the schedule.
    NotReached,
}

impl TaskOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOutcome::Satisfied => "satisfied",
            TaskOutcome::NotSatisfied => "not_satisfied",
            TaskOutcome::NotReached => "not_reached",
        }
    }

    pub fn parse(text: &str) -> Option<TaskOutcome> {
        Some(match text {
            "satisfied" => TaskOutcome::Satisfied,
            "not_satisfied" => TaskOutcome::NotSatisfied,
            "not_reached" => TaskOutcome::NotReached,
            _ => return None,
        })
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptEnd {
    /// The customer answered.
    Answered,
    /// No answer, busy, rejected or unreachable.
    NotReached,
    /// The agent left before the customer answered: not the customer's
    /// fault, and not counted against the attempts.
    AgentLeft,
    /// The attempt could not be made (no trunk channel, a store failure,
    /// a restart during it).
    Failed,
}

impl AttemptEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptEnd::Answered => "answered",
            AttemptEnd::NotReached => "not_reached",
            AttemptEnd::AgentLeft => "agent_left",
            AttemptEnd::Failed => "failed",
        }
    }
}

/// One try at reaching the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAttempt {
    pub number: u32,
    pub agent: Option<String>,
    pub started_ms: u64,
    #[serde(default)]
    pub answered_ms: Option<u64>,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    #[serde(default)]
    pub result: Option<AttemptEnd>,
    #[serde(default)]
    pub sip_status: u16,
    /// The attempt's call record id.
    #[serde(default)]
    pub call_id: Option<String>,
}

/// How a queue's callbacks are worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallbackMode {
    /// Ring the agent, tell them the task, then dial the customer.
    #[default]
    AgentFirst,
    /// At the head with an agent free: dial the customer, then queue the
    /// customer at the head.
    CustomerFirst,
}

/// A task, as the store keeps it (one row, written whole on each change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    /// The customer's number, as dialled through the trunk.
    pub number: String,
    pub queue: String,
    #[serde(default)]
    pub business: Option<String>,
    #[serde(default)]
    pub note: String,
    pub created_ms: u64,
    /// When it must be done by (callbacks have none: they keep a place).
    #[serde(default)]
    pub due_ms: Option<u64>,
    pub state: TaskState,
    #[serde(default)]
    pub attempts: Vec<TaskAttempt>,
    /// Most attempts that may fail to reach the customer.
    pub max_attempts: u32,
    /// After an attempt that did not reach the customer.
    pub retry_ms: u64,
    /// No attempt before this (a retry's time).
    #[serde(default)]
    pub not_before_ms: u64,
    /// Queue priority (a callback keeps its caller's; tasks 0).
    #[serde(default)]
    pub priority: u8,
    /// Its place among equals: a callback's caller's arrival, a task's
    /// deadline (earliest first).
    pub order_ms: u64,
    /// The agent who owns it (the one who took the call it came from).
    #[serde(default)]
    pub owner: Option<String>,
    /// The record id of the call it came from.
    #[serde(default)]
    pub origin_call: Option<String>,
    #[serde(default)]
    pub mode: CallbackMode,
    #[serde(default)]
    pub outcome: Option<TaskOutcome>,
    #[serde(default)]
    pub closed_ms: Option<u64>,
    /// Bumped on each change: a write never overwrites a newer one.
    #[serde(default)]
    pub version: u64,
    /// A work order's fields (a repair notice's, a complaint order's);
    /// none on tasks stored before orders had fields.
    #[serde(default)]
    pub order: Option<WorkOrder>,
}

impl Task {
    /// Attempts that count against `max_attempts`.
    pub fn failed_attempts(&self) -> u32 {
        self.attempts
            .iter()
            .filter(|a| matches!(a.result, Some(AttemptEnd::NotReached | AttemptEnd::Failed)))
            .count() as u32
    }

    /// Closed by its deadline (or with none); `None` while open.
    pub fn on_time(&self) -> Option<bool> {
        let closed = self.closed_ms?;
        Some(self.due_ms.is_none_or(|due| closed <= due))
    }

    /// The time from creation to the customer's first answer.
    pub fn time_to_answer_ms(&self) -> Option<u64> {
        let answered = self.attempts.iter().find_map(|a| a.answered_ms)?;
        Some(answered.saturating_sub(self.created_ms))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_task_stored_without_an_order_still_loads() {
        let task: Task = serde_json::from_value(json!({
            "id": 4, "kind": "follow_up", "number": "13800000001", "queue": "repair",
            "created_ms": 0, "due_ms": 1000, "state": "open", "max_attempts": 3,
            "retry_ms": 1000, "order_ms": 1000, "version": 2
        }))
        .expect("a task stored before orders had fields");
        assert_eq!(task.order, None);
        let mut with = task.clone();
        with.order = Some(WorkOrder {
            kind: OrderKind::Repair,
            customer_name: "王先生".into(),
            address: "建国路 88 号".into(),
            fault: Some(FaultType::Leak),
            fault_detail: None,
            subject: None,
        });
        let back: Task = serde_json::from_value(with.to_json()).expect("round trip");
        assert_eq!(back, with);
        assert_eq!(with.to_json()["order"]["fault"], "leak");
    }
}
