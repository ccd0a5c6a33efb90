//! First-contact responsibility (首问负责制): a caller never has to call
//! twice about the same thing. Every call is remembered by its number; a
//! number that called within `tasks.repeat_window`, or has an open task,
//! is a repeat contact, offered first to the agent who took the last call
//! or owns the task. And calls leave tasks behind them: a follow-up after
//! a repair call, a message to return.

use std::time::Instant;

use tracing::{info, warn};

use super::Engine;
use crate::call::work::RepeatContact;
use crate::call::Call;
use crate::cdr::CallRecord;
use crate::store::{Contact, StoreWrite};
use crate::tasks::{CallbackMode, Task, TaskKind, TaskState};

/// Above this many remembered numbers, those outside the window go.
const CONTACTS_PRUNE_AT: usize = 100_000;

impl Engine {
    /// Whether `number` called lately or has an open task: the earlier
    /// call, and the agent to offer the call to first.
    pub(super) fn repeat_contact(&self, now: Instant, number: &str) -> Option<RepeatContact> {
        if !crate::number::is_number(number) {
            return None;
        }
        let key = crate::number::number_key(number);
        let window = self.settings.tasks.repeat_window.as_millis() as u64;
        let now_ms = self.wall_ms(now);
        let recent = self
            .contacts
            .get(&key)
            .filter(|c| now_ms.saturating_sub(c.at_ms) <= window);
        let task = self.tasks.open_for(&key);
        let earlier_call = match (recent, task) {
            (Some(c), _) => c.call_id.clone(),
            (None, Some(t)) => t
                .origin_call
                .clone()
                .unwrap_or_else(|| format!("task-{}", t.id.0)),
            (None, None) => return None,
        };
        let agent = task
            .and_then(|t| t.owner.clone())
            .or_else(|| recent.and_then(|c| c.agent.clone()));
        Some(RepeatContact {
            earlier_call,
            agent,
            open_task: task.map(|t| t.id),
        })
    }

    /// Remembers a finished call by its number (and writes it, so a
    /// restart remembers too). The agent stays the last one who served
    /// the number when this call had none.
    pub(super) fn remember_contact(&mut self, now: Instant, record: &CallRecord) {
        let number = &record.caller_number;
        let outbound_unanswered = record.is_outbound() && record.answered_at.is_none();
        if outbound_unanswered || record.outcome.is_invalid() || !crate::number::is_number(number) {
            return;
        }
        let key = crate::number::number_key(number);
        let now_ms = self.wall_ms(now);
        let window = self.settings.tasks.repeat_window.as_millis() as u64;
        let agent = record.agent.clone().or_else(|| {
            self.contacts
                .get(&key)
                .filter(|c| now_ms.saturating_sub(c.at_ms) <= window)
                .and_then(|c| c.agent.clone())
        });
        let contact = Contact {
            number: number.clone(),
            call_id: record.call_id.clone(),
            agent,
            at_ms: now_ms,
        };
        if self.contacts.len() >= CONTACTS_PRUNE_AT {
            self.contacts
                .retain(|_, c| now_ms.saturating_sub(c.at_ms) <= window);
        }
        self.contacts.insert(key, contact.clone());
        self.store(StoreWrite::Contact(contact));
    }

    /// The tasks a finished inbound call leaves: a follow-up (or complaint
    /// reply) by its business type when an agent took it, and a message
    /// to return when one was left. Their ids go into the record.
    pub(super) fn tasks_after_call(&mut self, now: Instant, call: &Call, record: &mut CallRecord) {
        let number = record.caller_number.clone();
        if !crate::number::is_number(&number) {
            return;
        }
        let now_ms = self.wall_ms(now);
        let mut made = Vec::new();
        let served = record.agent.clone().filter(|_| record.bridged_at.is_some());
        let business = call.ivr.business.clone();
        if let (Some(agent), Some(business)) = (&served, &business) {
            let rules: Vec<_> = self
                .settings
                .tasks
                .after_call
                .iter()
                .filter(|r| &r.business == business)
                .cloned()
                .collect();
            for rule in rules {
                let Some(queue) = rule.queue.clone().or_else(|| record.queue.clone()) else {
                    continue;
                };
                let due = now_ms + rule.due.as_millis() as u64;
                made.push(Task {
                    id: self.tasks.next_id(),
                    kind: rule.kind,
                    number: number.clone(),
                    queue,
                    business: Some(business.clone()),
                    note: String::new(),
                    created_ms: now_ms,
                    due_ms: Some(due),
                    state: TaskState::Open,
                    attempts: Vec::new(),
                    max_attempts: rule.attempts,
                    retry_ms: rule.retry.as_millis() as u64,
                    not_before_ms: 0,
                    priority: 0,
                    order_ms: due,
                    owner: Some(agent.clone()),
                    origin_call: Some(record.call_id.clone()),
                    mode: CallbackMode::AgentFirst,
                    outcome: None,
                    closed_ms: None,
                    version: 1,
                    order: None,
                });
            }
        }
        if let (Some(queue), Some(file)) = (
            self.settings.tasks.message_queue.clone(),
            record.message_file.clone(),
        ) {
            let due = now_ms + self.settings.tasks.message_due.as_millis() as u64;
            made.push(Task {
                id: self.tasks.next_id(),
                kind: TaskKind::Message,
                number: number.clone(),
                queue,
                business,
                note: file,
                created_ms: now_ms,
                due_ms: Some(due),
                state: TaskState::Open,
                attempts: Vec::new(),
                max_attempts: 3,
                retry_ms: 30 * 60_000,
                not_before_ms: 0,
                priority: 0,
                order_ms: due,
                owner: None,
                origin_call: Some(record.call_id.clone()),
                mode: CallbackMode::AgentFirst,
                outcome: None,
                closed_ms: None,
                version: 1,
                order: None,
            });
        }
        for task in made {
            if self.task_trunk_for(&task.queue).is_none() {
                warn!(queue = %task.queue, "no trunk to dial the task through: not made");
                continue;
            }
            info!(kind = task.kind.as_str(), "the call leaves a task");
            record.tasks_created.push(task.id.0);
            self.task_after_call(now, task);
        }
    }
}
