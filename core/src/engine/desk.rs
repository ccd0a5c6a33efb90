//! What an agent's desk (the web workstation) needs of the engine: the
//! agent's current call with what is known of the caller, the tasks they
//! may work, a call's business type and summary saved into its record,
//! repair and complaint orders (with their fields) that become follow-up
//! tasks, edits of a task by the version its editor saw, and "call back"
//! on a task (the agent's phone rings with it now, then the customer is
//! dialled).

use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;
use tracing::info;

use super::{AgentSnapshot, Engine};
use crate::acd::AcdInput;
use crate::call::work::WorkStage;
use crate::campaign::spec::SpecError;
use crate::ids::CallKey;
use crate::io::Output;
use crate::tasks::{EditError, Edited, Task, TaskEdit, TaskId, TaskSpec, TaskState, WorkOrder};

/// Longest summary kept with a call.
pub const MAX_SUMMARY_CHARS: usize = 2000;

/// One agent's desk now.
#[derive(Debug, Clone, Serialize)]
pub struct DeskView {
    pub agent: AgentSnapshot,
    pub call: Option<DeskCall>,
    /// Open tasks the agent may work: theirs, then their queues', each
    /// earliest deadline first.
    pub tasks: Vec<Task>,
    /// The IVR's business types, for the notes form.
    pub business_types: Vec<String>,
}

/// The call ringing or connected at an agent's phone.
#[derive(Debug, Clone, Serialize)]
pub struct DeskCall {
    pub call_id: String,
    /// `ringing` (offered), `connected`, or `held`.
    pub state: &'static str,
    pub number: String,
    pub customer_class: &'static str,
    pub vip: bool,
    pub customer_name: Option<String>,
    /// Chosen in the IVR.
    pub business_type: Option<String>,
    pub queue: Option<String>,
    /// From arrival to the agent's answer (or until now while ringing).
    pub waited_ms: u64,
    /// A repeat contact: the earlier call's record id.
    pub repeat_of: Option<String>,
    /// The number's last call before this one (its record id, agent and
    /// time, RFC 3339), within the repeat window.
    pub last_call: Option<LastCall>,
    /// The number's open tasks.
    pub open_tasks: Vec<Task>,
    /// A task's call: the task.
    pub task: Option<Task>,
    /// What the agent saved so far.
    pub summary: Option<String>,
    pub saved_business_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastCall {
    pub call_id: String,
    pub agent: Option<String>,
    pub at: String,
}

/// A desk request the engine refuses; `field` names the culprit for a
/// 400, others are 404 or 409.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeskError {
    #[error("no agent {0}")]
    UnknownAgent(String),
    #[error("no call {0} in progress")]
    UnknownCall(String),
    #[error("call {call} is not {agent}'s")]
    NotYourCall { call: String, agent: String },
    #[error("no task {0}")]
    UnknownTask(u64),
    #[error("{0}")]
    Invalid(SpecError),
    #[error("task {id} is {state}: it cannot be called back now")]
    TaskBusy { id: u64, state: &'static str },
    #[error("{0} must be available (status) with a registered phone to call back")]
    AgentNotReady(String),
}

/// A work order the agent makes from a call (its fields:
/// [`WorkOrder`]).
pub use crate::tasks::order::OrderKind;

impl Engine {
    /// The call ringing or connected at `agent`'s phone (the newest).
    fn call_of_agent(&self, agent: &str) -> Option<(CallKey, &'static str)> {
        self.calls
            .iter()
            .filter_map(|(key, call)| {
                let leg = call.leg_of_agent(agent)?;
                let state = if call.controls.held_since.is_some() {
                    "held"
                } else if call.leg(leg).is_some_and(|l| l.answered()) {
                    "connected"
                } else {
                    "ringing"
                };
                Some((*key, state, call.arrived_at))
            })
            .max_by_key(|(key, _, at)| (*at, *key))
            .map(|(key, state, _)| (key, state))
    }

    /// The agent's desk now: their status, their call, their tasks.
    pub fn desk(&self, now: Instant, agent: &str) -> Option<DeskView> {
        let snapshot = self.agent_snapshots().into_iter().find(|a| a.id == agent)?;
        let call = self
            .call_of_agent(agent)
            .and_then(|(key, state)| self.desk_call(now, key, state));
        let queues: Vec<&str> = self
            .settings
            .agents
            .iter()
            .find(|a| a.id == agent)
            .map(|a| a.queues.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut tasks: Vec<Task> = self
            .tasks
            .tasks()
            .filter(|t| !t.state.is_final())
            .filter(|t| t.owner.as_deref() == Some(agent) || queues.contains(&t.queue.as_str()))
            .cloned()
            .collect();
        tasks.sort_by_key(|t| {
            (
                t.owner.as_deref() != Some(agent),
                t.due_ms.unwrap_or(u64::MAX),
                t.id,
            )
        });
        tasks.truncate(100);
        Some(DeskView {
            agent: snapshot,
            call,
            tasks,
            business_types: self.program.business_types.clone(),
        })
    }

    fn desk_call(&self, now: Instant, key: CallKey, state: &'static str) -> Option<DeskCall> {
        let call = self.calls.get(&key)?;
        let number = match &call.work {
            Some(w) => w.number.clone(),
            None => call
                .customer_leg()
                .and_then(|l| l.invite.as_ref())
                .map(|i| i.caller_number().to_string())
                .unwrap_or_default(),
        };
        let key_of = crate::number::number_key(&number);
        let answered = call.queue.as_ref().and_then(|q| q.answered_at);
        let waited = answered
            .unwrap_or(now)
            .saturating_duration_since(call.arrived_at);
        let window = self.settings.tasks.repeat_window.as_millis() as u64;
        let now_ms = self.wall_ms(now);
        let last_call = self
            .contacts
            .get(&key_of)
            .filter(|c| now_ms.saturating_sub(c.at_ms) <= window)
            .map(|c| LastCall {
                call_id: c.call_id.clone(),
                agent: c.agent.clone(),
                at: crate::cdr::format_ms(c.at_ms),
            });
        let open_tasks = self
            .tasks
            .tasks()
            .filter(|t| !t.state.is_final() && crate::number::number_key(&t.number) == key_of)
            .cloned()
            .collect();
        Some(DeskCall {
            call_id: self.record_id(key.0),
            state,
            number,
            customer_class: call.info.class.as_str(),
            vip: call.info.vip,
            customer_name: call.info.name.clone(),
            business_type: call.ivr.business.clone(),
            queue: call.queue.as_ref().map(|q| q.queue.clone()),
            waited_ms: waited.as_millis() as u64,
            repeat_of: call.repeat.as_ref().map(|r| r.earlier_call.clone()),
            last_call,
            open_tasks,
            task: call
                .work
                .as_ref()
                .and_then(|w| self.tasks.get(w.task))
                .cloned(),
            summary: call.controls.summary.clone(),
            saved_business_type: call.controls.saved_business.clone(),
        })
    }

    /// The agent saves the business type and a short summary of a call
    /// ("press save at the end of every call"). Kept in the call's record
    /// when the call is still up, and always as a line in
    /// `notes-<date>.jsonl` (the call may have ended: the agent saves in
    /// wrap-up).
    pub fn save_call_notes(
        &mut self,
        now: Instant,
        agent: &str,
        call_id: &str,
        business: Option<String>,
        summary: String,
    ) -> Result<(), DeskError> {
        if !self.settings.agents.iter().any(|a| a.id == agent) {
            return Err(DeskError::UnknownAgent(agent.to_string()));
        }
        let bad = |field: &str, message: String| {
            DeskError::Invalid(SpecError {
                field: field.to_string(),
                message,
            })
        };
        if summary.chars().count() > MAX_SUMMARY_CHARS {
            return Err(bad(
                "summary",
                format!("longer than {MAX_SUMMARY_CHARS} characters"),
            ));
        }
        if summary.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("summary", "control characters are not allowed".into()));
        }
        if let Some(b) = &business {
            if !self.program.business_types.iter().any(|t| t == b) {
                return Err(bad(
                    "business_type",
                    format!("{b:?} is not one of the IVR's business types"),
                ));
            }
        }
        let ours = |key: CallKey, engine: &Engine| {
            engine.calls.get(&key).is_some_and(|c| {
                c.leg_of_agent(agent).is_some()
                    || c.queue.as_ref().and_then(|q| q.agent.as_deref()) == Some(agent)
            })
        };
        let live = self.call_by_id(call_id);
        if let Some(key) = live {
            if !ours(key, self) {
                return Err(DeskError::NotYourCall {
                    call: call_id.to_string(),
                    agent: agent.to_string(),
                });
            }
            if let Some(c) = self.calls.get_mut(&key) {
                c.controls.summary = Some(summary.clone());
                c.controls.saved_business = business.clone();
            }
        } else if !self.recent_call_of(agent, call_id) {
            return Err(DeskError::UnknownCall(call_id.to_string()));
        }
        let at = crate::cdr::format_ms(self.wall_ms(now));
        let line = serde_json::json!({
            "version": 1,
            "call_id": call_id,
            "agent": agent,
            "at": at,
            "business_type": business,
            "summary": summary,
        })
        .to_string();
        info!(%call_id, %agent, "call notes saved");
        self.wire.push(Output::Line {
            file: format!("notes-{}.jsonl", at.get(..10).unwrap_or("undated")),
            line,
        });
        Ok(())
    }

    /// Whether `call_id` is a call `agent` took lately (its contact is
    /// remembered), so notes may still be saved after it ended.
    fn recent_call_of(&self, agent: &str, call_id: &str) -> bool {
        self.contacts
            .values()
            .any(|c| c.call_id == call_id && c.agent.as_deref() == Some(agent))
    }

    /// A repair or complaint order made from a call, with its fields
    /// (checked already: [`WorkOrder::parse`]): a follow-up (or a
    /// complaint reply) task for the caller's number, owned by the agent,
    /// due `due` from now (the order kind's default when `None`), in the
    /// call's queue (or the agent's first), carrying the order. Returns
    /// the task and the write to wait for.
    pub fn make_order(
        &mut self,
        now: Instant,
        agent: &str,
        call_id: &str,
        order: WorkOrder,
        due: Option<Duration>,
        note: String,
    ) -> Result<(TaskId, u64), DeskError> {
        let kind = order.kind;
        let agent_config = self
            .settings
            .agents
            .iter()
            .find(|a| a.id == agent)
            .ok_or_else(|| DeskError::UnknownAgent(agent.to_string()))?;
        let first_queue = agent_config.queues.first().cloned();
        let (number, queue, business) = match self.call_by_id(call_id) {
            Some(key) => {
                let c = self
                    .calls
                    .get(&key)
                    .ok_or_else(|| DeskError::UnknownCall(call_id.to_string()))?;
                let number = match &c.work {
                    Some(w) => w.number.clone(),
                    None => c
                        .customer_leg()
                        .and_then(|l| l.invite.as_ref())
                        .map(|i| i.caller_number().to_string())
                        .unwrap_or_default(),
                };
                (
                    number,
                    c.queue.as_ref().map(|q| q.queue.clone()),
                    c.ivr.business.clone(),
                )
            }
            None => {
                let c = self
                    .contacts
                    .values()
                    .find(|c| c.call_id == call_id && c.agent.as_deref() == Some(agent))
                    .ok_or_else(|| DeskError::UnknownCall(call_id.to_string()))?;
                (c.number.clone(), None, None)
            }
        };
        let queue = queue
            .or(first_queue)
            .ok_or_else(|| DeskError::UnknownAgent(agent.to_string()))?;
        let due_ms = self.wall_ms(now) + due.unwrap_or(kind.default_due()).as_millis() as u64;
        let mut spec = TaskSpec::parse(&serde_json::json!({
            "kind": kind.task_kind().as_str(),
            "number": number,
            "queue": queue,
            "due": crate::cdr::format_ms(due_ms),
            "note": note,
            "owner": agent,
            "origin_call": call_id,
            "business": business,
        }))
        .map_err(DeskError::Invalid)?;
        spec.order = Some(order);
        let made = self.create_task(now, spec).map_err(DeskError::Invalid)?;
        info!(task = made.0 .0, %agent, ?kind, "order made from a call");
        Ok(made)
    }

    /// Someone edits task `id` (its note, deadline or order fields),
    /// having opened version `edit.version`; `owner`: the editor is that
    /// agent, who may edit only tasks they own (`None`: a supervisor or
    /// admin). A stale version is refused with the task as it now is
    /// ([`EditError::Stale`]). An accepted edit bumps the version and is
    /// written; returns the task, what changed, and the write to wait for
    /// before answering (0: nothing changed, nothing written). A new
    /// deadline reorders the task in its queue when it is waiting there.
    pub fn edit_task(
        &mut self,
        now: Instant,
        id: TaskId,
        edit: &TaskEdit,
        owner: Option<&str>,
    ) -> Result<(Task, Edited, u64), EditError> {
        let edited = self.tasks.edit(id, edit, owner)?;
        let task = self
            .tasks
            .get(id)
            .cloned()
            .ok_or(EditError::Unknown(id.0))?;
        if edited.changed.is_empty() {
            return Ok((task, edited, 0));
        }
        info!(task = id.0, version = task.version, changed = ?edited.changed, "task edited");
        let write = self.write_task(id, true).unwrap_or_default();
        if edited.changed.contains(&"due") {
            self.requeue_by_deadline(now, id);
        }
        Ok((task, edited, write))
    }

    /// The store failed to write an edit: its fields go back (unless
    /// changed again since), and that is written in turn.
    pub fn undo_task_edit(&mut self, now: Instant, id: TaskId, edited: &Edited) -> Option<Task> {
        let version = self.tasks.get(id)?.version;
        let task = self.tasks.undo_edit(id, edited)?.clone();
        if task.version != version {
            info!(task = id.0, "task edit not stored: undone");
            self.write_task(id, false);
            if edited.changed.contains(&"due") {
                self.requeue_by_deadline(now, id);
            }
        }
        Some(task)
    }

    /// A task waiting in its queue (not ringing an agent, not on the
    /// line) whose deadline changed leaves it and enters again in its new
    /// place, raised at once if now at risk.
    pub(super) fn requeue_by_deadline(&mut self, now: Instant, id: TaskId) {
        let Some(&entry) = self.task_entry.get(&id) else {
            return;
        };
        if self.calls.contains_key(&entry)
            || self
                .tasks
                .get(id)
                .is_none_or(|t| t.state != TaskState::Open)
        {
            return;
        }
        self.acd
            .handle(now, AcdInput::WorkWithdrawn { caller: entry });
        self.apply_acd(now);
        self.poll_tasks(now);
    }

    /// "Call back" on a task: the agent's phone rings with it as soon as
    /// they are free (now, when idle), then the customer is dialled. The
    /// agent must be available with a registered phone.
    pub fn call_back(&mut self, now: Instant, agent: &str, id: TaskId) -> Result<(), DeskError> {
        let ready = self
            .acd
            .agent(agent)
            .ok_or_else(|| DeskError::UnknownAgent(agent.to_string()))?;
        if ready.status != &crate::acd::AgentStatus::Available || !ready.reachable {
            return Err(DeskError::AgentNotReady(agent.to_string()));
        }
        let task = self.tasks.get(id).ok_or(DeskError::UnknownTask(id.0))?;
        if task.state != TaskState::Open {
            return Err(DeskError::TaskBusy {
                id: id.0,
                state: task.state.as_str(),
            });
        }
        if self.tasks.is_foreign(id) {
            // Another node runs it: due now, through the store; that node
            // queues it (ahead of nobody, and for any agent).
            info!(task = id.0, %agent, "call back from the desk, on the node that runs it");
            self.tasks.retry_now(id, self.wall_ms(now));
            self.write_task(id, false);
            return Ok(());
        }
        // Waiting for its retry time: now instead.
        if !self.tasks.is_entered(id) {
            self.tasks.retry_now(id, self.wall_ms(now));
            self.poll_tasks(now);
        }
        let Some(&entry) = self.task_entry.get(&id) else {
            return Err(DeskError::TaskBusy {
                id: id.0,
                state: "not queued",
            });
        };
        if self
            .calls
            .get(&entry)
            .and_then(|c| c.work.as_ref())
            .is_some_and(|w| w.stage != WorkStage::AgentRinging)
        {
            return Err(DeskError::TaskBusy {
                id: id.0,
                state: "being worked",
            });
        }
        info!(task = id.0, %agent, "call back from the desk");
        // First in its queue, and for this agent alone for a while.
        self.acd.handle(
            now,
            AcdInput::Reprioritise {
                caller: entry,
                priority: crate::tasks::book::AT_RISK_PRIORITY,
            },
        );
        self.acd.handle(
            now,
            AcdInput::Prefer {
                caller: entry,
                agent: agent.to_string(),
                until: now + Duration::from_secs(60),
            },
        );
        self.apply_acd(now);
        Ok(())
    }
}
