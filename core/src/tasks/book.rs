//! The task book: every task the engine knows, and the pure rules for
//! them. Which task enters its queue when (its retry time has come),
//! which is at risk of missing its deadline (ahead of new calls from
//! then on), and where an attempt or an agent's outcome leaves it. Times
//! are wall-clock milliseconds passed in; nothing here reads a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::edit::{self, EditError, EditableFields, Edited, TaskEdit};
use super::{AttemptEnd, Task, TaskAttempt, TaskId, TaskKind, TaskOutcome, TaskState};

/// The queue priority of a task at risk: above any caller's (group VIP
/// is 6), so it is offered ahead of new calls.
pub const AT_RISK_PRIORITY: u8 = 10;

/// What the engine should do with a task now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskDecision {
    /// Put it in its queue with this priority, ordered by `order_ms`.
    Enter {
        id: TaskId,
        priority: u8,
        order_ms: u64,
    },
    /// It is in its queue and now at risk: raise it to
    /// [`AT_RISK_PRIORITY`].
    Escalate { id: TaskId },
}

/// Why an outcome could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeError {
    #[error("no task {0}")]
    Unknown(u64),
    #[error("task {id} is {state}: the customer has not been reached on it")]
    NotReached { id: u64, state: &'static str },
}

#[derive(Debug, Default)]
pub struct TaskBook {
    tasks: BTreeMap<TaskId, Task>,
    /// Tasks in their queue now, and whether raised for being at risk.
    entered: HashMap<TaskId, bool>,
    /// Open tasks by number key (`number::number_key`): every INVITE asks
    /// whether its caller has one, so that is a lookup, not a scan.
    open_by_number: HashMap<String, BTreeSet<TaskId>>,
    /// How long before its deadline a task counts as at risk.
    margin_ms: u64,
    next_id: u64,
    /// Several nodes share the store: the ids this node numbers its own
    /// tasks from (see [`TaskBook::set_id_space`]).
    id_space: Option<std::ops::Range<u64>>,
    /// Tasks another node runs (several nodes): kept to show and to route
    /// by, never queued or restored here.
    foreign: HashSet<TaskId>,
}

/// The ids each node numbers tasks from: 2^40 of them.
pub const ID_SPACE: u64 = 1 << 40;

// Ranges 1 to 4095 stay below 2^53, where the desk's JavaScript still
// counts exactly.
const _: () = assert!(4096 * ID_SPACE <= 1 << 53);

impl TaskBook {
    pub fn new(margin_ms: u64) -> TaskBook {
        TaskBook {
            margin_ms,
            next_id: 1,
            ..TaskBook::default()
        }
    }

    pub fn set_margin(&mut self, margin_ms: u64) {
        self.margin_ms = margin_ms;
    }

    /// Several nodes share the store: this node numbers new tasks from
    /// `space` (so two nodes never give the same id), and at start takes
    /// as interrupted only its own tasks that were on a phone or the line;
    /// others' are theirs. Call before [`restore`](Self::restore).
    pub fn set_id_space(&mut self, space: u64) {
        let base = space * ID_SPACE;
        self.next_id = self.next_id.max(base);
        self.id_space = Some(base..base + ID_SPACE);
    }

    /// Whether this node numbered `id` (always, on one node).
    pub fn is_own(&self, id: TaskId) -> bool {
        self.id_space.as_ref().is_none_or(|r| r.contains(&id.0))
    }

    /// Whether another node runs task `id`.
    pub fn is_foreign(&self, id: TaskId) -> bool {
        self.foreign.contains(&id)
    }

    /// Task `id` is run by another node (`true`), or by this one from now
    /// on (`false`: taken over).
    pub fn set_foreign(&mut self, id: TaskId, foreign: bool) {
        if foreign {
            self.foreign.insert(id);
            self.entered.remove(&id);
        } else {
            self.foreign.remove(&id);
        }
    }

    /// Task `id` as another node wrote it, replacing this node's copy.
    pub fn replace(&mut self, task: Task) {
        let id = task.id;
        self.tasks.insert(id, task);
        self.index(id);
    }

    /// Another node changed task `id` while this node works on it (on an
    /// agent's phone or the line): its edits (note, deadline, order) are
    /// taken in, and a close (cancelled, or an outcome given there) too,
    /// but this node's attempts stand. One version past both, to be
    /// written over the other's.
    pub fn merge_in_flight(&mut self, remote: &Task) -> Option<&Task> {
        let id = remote.id;
        let task = self.tasks.get_mut(&id)?;
        set_fields(task, EditableFields::of(remote));
        if remote.state.is_final() && !task.state.is_final() {
            task.state = remote.state;
            task.closed_ms = remote.closed_ms;
            task.outcome = remote.outcome;
            self.entered.remove(&id);
        }
        task.version = task.version.max(remote.version) + 1;
        self.index(id);
        self.tasks.get(&id)
    }

    /// A fresh id, past every stored one.
    pub fn next_id(&mut self) -> TaskId {
        let id = TaskId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Tasks read back at start, or taken over from a node that died. One
    /// a crash caught on an agent's phone or on the line is open again; an
    /// attempt it was making ends as failed (tried again after its retry
    /// time, never silently twice). Those in `foreign` are another node's,
    /// and left as they are. Returns the tasks that changed, to be written
    /// back.
    pub fn restore(
        &mut self,
        tasks: Vec<Task>,
        foreign: &BTreeSet<TaskId>,
        now_ms: u64,
    ) -> Vec<TaskId> {
        let mut changed = Vec::new();
        for mut task in tasks {
            if self.is_own(task.id) {
                self.next_id = self.next_id.max(task.id.0 + 1);
            }
            let runs_here = !foreign.contains(&task.id);
            self.set_foreign(task.id, !runs_here);
            if runs_here
                && matches!(
                    task.state,
                    TaskState::Offered | TaskState::Dialing | TaskState::Connected
                )
            {
                let mut retry_at = now_ms;
                if let Some(a) = task.attempts.last_mut().filter(|a| a.result.is_none()) {
                    a.ended_ms = Some(now_ms);
                    if a.answered_ms.is_some() {
                        a.result = Some(AttemptEnd::Answered);
                    } else {
                        a.result = Some(AttemptEnd::Failed);
                        retry_at = now_ms + task.retry_ms;
                    }
                }
                let answered = task
                    .attempts
                    .last()
                    .is_some_and(|a| a.result == Some(AttemptEnd::Answered));
                if answered {
                    task.state = TaskState::Done;
                    task.closed_ms = Some(now_ms);
                } else if task.failed_attempts() >= task.max_attempts {
                    task.state = TaskState::Failed;
                    task.closed_ms = Some(now_ms);
                } else {
                    task.state = TaskState::Open;
                    task.not_before_ms = retry_at;
                }
                task.version += 1;
                changed.push(task.id);
            }
            let id = task.id;
            self.tasks.insert(id, task);
            self.index(id);
        }
        changed
    }

    /// Keeps `open_by_number` in step with task `id`'s state.
    fn index(&mut self, id: TaskId) {
        let Some(t) = self.tasks.get(&id) else {
            return;
        };
        let key = crate::number::number_key(&t.number);
        if t.state.is_final() {
            if let Some(set) = self.open_by_number.get_mut(&key) {
                set.remove(&id);
                if set.is_empty() {
                    self.open_by_number.remove(&key);
                }
            }
        } else {
            self.open_by_number.entry(key).or_default().insert(id);
        }
    }

    /// A new task (its id from [`next_id`](Self::next_id)).
    pub fn insert(&mut self, task: Task) {
        if self.is_own(task.id) {
            self.next_id = self.next_id.max(task.id.0 + 1);
        }
        let id = task.id;
        self.tasks.insert(id, task);
        self.index(id);
    }

    /// A task already in its queue (a callback that kept its caller's
    /// place).
    pub fn mark_entered(&mut self, id: TaskId) {
        self.entered.insert(id, false);
    }

    pub fn get(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(&id)
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    pub fn is_entered(&self, id: TaskId) -> bool {
        self.entered.contains_key(&id)
    }

    fn at_risk_from(&self, task: &Task) -> Option<u64> {
        task.due_ms.map(|due| due.saturating_sub(self.margin_ms))
    }

    /// What to do now: open tasks whose time has come enter their queue
    /// (at risk ones raised at once), and queued ones that became at risk
    /// are raised. Earliest deadline first within a queue comes from
    /// `order_ms`.
    pub fn poll(&mut self, now_ms: u64) -> Vec<TaskDecision> {
        let mut out = Vec::new();
        for task in self.tasks.values() {
            if self.foreign.contains(&task.id) {
                continue;
            }
            let at_risk = self.at_risk_from(task).is_some_and(|at| now_ms >= at);
            match self.entered.get(&task.id) {
                None if task.state == TaskState::Open && task.not_before_ms <= now_ms => {
                    out.push(TaskDecision::Enter {
                        id: task.id,
                        priority: if at_risk {
                            AT_RISK_PRIORITY
                        } else {
                            task.priority
                        },
                        order_ms: task.order_ms,
                    });
                }
                Some(false) if at_risk && task.state == TaskState::Open => {
                    out.push(TaskDecision::Escalate { id: task.id });
                }
                _ => {}
            }
        }
        for d in &out {
            match *d {
                TaskDecision::Enter { id, priority, .. } => {
                    self.entered.insert(id, priority == AT_RISK_PRIORITY);
                }
                TaskDecision::Escalate { id } => {
                    self.entered.insert(id, true);
                }
            }
        }
        out
    }

    /// When [`poll`](Self::poll) next has something to say.
    pub fn next_wake(&self, now_ms: u64) -> Option<u64> {
        self.tasks
            .values()
            .filter(|t| t.state == TaskState::Open && !self.foreign.contains(&t.id))
            .filter_map(|t| match self.entered.get(&t.id) {
                // Not yet in its queue: its retry time.
                None => Some(t.not_before_ms),
                Some(false) => self.at_risk_from(t),
                Some(true) => None,
            })
            .filter(|at| *at > now_ms)
            .min()
    }

    /// An open task waiting for its retry time may go now (an agent asked
    /// to call it back).
    pub fn retry_now(&mut self, id: TaskId, now_ms: u64) -> Option<&Task> {
        self.change(id, |t| {
            if t.state == TaskState::Open {
                t.not_before_ms = t.not_before_ms.min(now_ms);
            }
        })
    }

    /// The task left its queue (being worked, or withdrawn).
    pub fn left_queue(&mut self, id: TaskId) {
        self.entered.remove(&id);
    }

    fn change(&mut self, id: TaskId, f: impl FnOnce(&mut Task)) -> Option<&Task> {
        let task = self.tasks.get_mut(&id)?;
        f(task);
        task.version += 1;
        self.index(id);
        self.tasks.get(&id)
    }

    /// An agent's phone rings with it.
    pub fn offered(&mut self, id: TaskId) -> Option<&Task> {
        self.change(id, |t| {
            if !t.state.is_final() {
                t.state = TaskState::Offered;
            }
        })
    }

    /// The agent's phone did not take it: open again, still queued.
    pub fn offer_ended(&mut self, id: TaskId) -> Option<&Task> {
        self.change(id, |t| {
            if t.state == TaskState::Offered {
                t.state = TaskState::Open;
            }
        })
    }

    /// The customer is about to be dialled, by `agent` (none when the
    /// customer is dialled first).
    pub fn dialing(&mut self, id: TaskId, agent: Option<&str>, now_ms: u64) -> Option<&Task> {
        self.change(id, |t| {
            t.state = TaskState::Dialing;
            let number = t.attempts.len() as u32 + 1;
            t.attempts.push(TaskAttempt {
                number,
                agent: agent.map(str::to_string),
                started_ms: now_ms,
                answered_ms: None,
                ended_ms: None,
                result: None,
                sip_status: 0,
                call_id: None,
            });
        })
    }

    /// The customer answered.
    pub fn answered(&mut self, id: TaskId, now_ms: u64) -> Option<&Task> {
        self.change(id, |t| {
            if !t.state.is_final() {
                t.state = TaskState::Connected;
            }
            if let Some(a) = t.attempts.last_mut() {
                a.answered_ms = Some(now_ms);
                a.sip_status = 200;
            }
        })
    }

    /// The agent of a connected attempt, once known (customer first).
    pub fn set_attempt_agent(&mut self, id: TaskId, agent: &str) -> Option<&Task> {
        self.change(id, |t| {
            if let Some(a) = t.attempts.last_mut() {
                a.agent = Some(agent.to_string());
            }
        })
    }

    /// The attempt is over: done when the customer was reached; otherwise
    /// tried again after the retry time, or failed when the attempts are
    /// used up.
    pub fn attempt_ended(
        &mut self,
        id: TaskId,
        end: AttemptEnd,
        sip_status: u16,
        call_id: Option<String>,
        now_ms: u64,
    ) -> Option<&Task> {
        self.entered.remove(&id);
        self.change(id, |t| {
            if let Some(a) = t.attempts.last_mut().filter(|a| a.result.is_none()) {
                a.result = Some(end);
                a.ended_ms = Some(now_ms);
                if a.sip_status == 0 {
                    a.sip_status = sip_status;
                }
                a.call_id = call_id;
            }
            settle(t, end, now_ms);
        })
    }

    /// What the agent recorded. `not_reached` after an answered call (the
    /// wrong person, a line that dropped) counts as an attempt that did
    /// not reach the customer.
    pub fn record_outcome(
        &mut self,
        id: TaskId,
        outcome: TaskOutcome,
        now_ms: u64,
    ) -> Result<&Task, OutcomeError> {
        let task = self.tasks.get(&id).ok_or(OutcomeError::Unknown(id.0))?;
        let reached = task.attempts.iter().any(|a| a.answered_ms.is_some());
        if !reached || !matches!(task.state, TaskState::Done | TaskState::Connected) {
            return Err(OutcomeError::NotReached {
                id: id.0,
                state: task.state.as_str(),
            });
        }
        let connected = task.state == TaskState::Connected;
        let task = self
            .change(id, |t| match outcome {
                TaskOutcome::NotReached => {
                    if let Some(a) = t
                        .attempts
                        .iter_mut()
                        .rev()
                        .find(|a| a.answered_ms.is_some())
                    {
                        a.result = Some(AttemptEnd::NotReached);
                    }
                    t.outcome = None;
                    if !connected {
                        t.closed_ms = None;
                        settle(t, AttemptEnd::NotReached, now_ms);
                    }
                }
                _ => t.outcome = Some(outcome),
            })
            .ok_or(OutcomeError::Unknown(id.0))?;
        Ok(task)
    }

    pub fn cancel(&mut self, id: TaskId, now_ms: u64) -> Option<&Task> {
        self.entered.remove(&id);
        self.change(id, |t| {
            if !t.state.is_final() {
                t.state = TaskState::Cancelled;
                t.closed_ms = Some(now_ms);
            }
        })
    }

    /// An open task for this number key (see `number::number_key`).
    pub fn open_for(&self, number_key: &str) -> Option<&Task> {
        let id = self.open_by_number.get(number_key)?.first()?;
        self.tasks.get(id)
    }

    /// Someone edits task `id`'s note, deadline or order, having opened
    /// version `edit.version` (see [`edit`](super::edit)): applied, with
    /// the version bumped, only if the task is still at that version and
    /// not closed. `owner`: the editor is that agent, who may edit only
    /// their own tasks. An edit that changes nothing changes no version.
    pub fn edit(
        &mut self,
        id: TaskId,
        edit: &TaskEdit,
        owner: Option<&str>,
    ) -> Result<Edited, EditError> {
        let task = self.tasks.get(&id).ok_or(EditError::Unknown(id.0))?;
        let edited = edit::apply(task, edit, owner)?;
        if !edited.changed.is_empty() {
            let after = edited.after.clone();
            self.change(id, |t| set_fields(t, after));
        }
        Ok(edited)
    }

    /// The store could not write `edited`: each field it changed goes
    /// back to what it was, unless it has been changed again since (the
    /// version is bumped again, so the undo is written over the edit).
    pub fn undo_edit(&mut self, id: TaskId, edited: &Edited) -> Option<&Task> {
        let task = self.tasks.get(&id)?;
        let mut fields = EditableFields::of(task);
        let (before, after) = (&edited.before, &edited.after);
        if fields.note == after.note {
            fields.note = before.note.clone();
        }
        if fields.due_ms == after.due_ms {
            fields.due_ms = before.due_ms;
        }
        if fields.order == after.order {
            fields.order = before.order.clone();
        }
        if fields == EditableFields::of(task) {
            return self.tasks.get(&id);
        }
        self.change(id, |t| set_fields(t, fields))
    }
}

/// Sets a task's editable fields; a deadline also orders the queue (a
/// callback's place is its caller's, and never changes).
fn set_fields(t: &mut Task, fields: EditableFields) {
    t.note = fields.note;
    t.order = fields.order;
    if t.kind != TaskKind::Callback {
        if let Some(due) = fields.due_ms {
            t.order_ms = due;
        }
        t.due_ms = fields.due_ms;
    }
}

/// Where a task goes after an attempt ended with `end`.
fn settle(t: &mut Task, end: AttemptEnd, now_ms: u64) {
    // A task cancelled while it was worked stays cancelled: no retry.
    if t.state == TaskState::Cancelled {
        return;
    }
    let answered = end == AttemptEnd::Answered
        && t.attempts
            .last()
            .is_some_and(|a| a.result == Some(AttemptEnd::Answered));
    if answered {
        t.state = TaskState::Done;
        t.closed_ms = Some(now_ms);
    } else if t.failed_attempts() >= t.max_attempts {
        t.state = TaskState::Failed;
        t.closed_ms = Some(now_ms);
    } else {
        t.state = TaskState::Open;
        t.not_before_ms = match end {
            AttemptEnd::AgentLeft => now_ms,
            _ => now_ms + t.retry_ms,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{CallbackMode, TaskKind};

    const MIN: u64 = 60_000;

    fn task(id: u64, due_ms: Option<u64>) -> Task {
        Task {
            id: TaskId(id),
            kind: TaskKind::FollowUp,
            number: format!("1380000000{id}"),
            queue: "repair".into(),
            business: None,
            note: String::new(),
            created_ms: 0,
            due_ms,
            state: TaskState::Open,
            attempts: Vec::new(),
            max_attempts: 2,
            retry_ms: 10 * MIN,
            not_before_ms: 0,
            priority: 0,
            order_ms: due_ms.unwrap_or(0),
            owner: None,
            origin_call: None,
            mode: CallbackMode::AgentFirst,
            outcome: None,
            closed_ms: None,
            version: 0,
            order: None,
        }
    }

    #[test]
    fn nodes_number_tasks_apart_and_leave_each_others_calls_alone() {
        let mut a = TaskBook::new(30 * MIN);
        a.set_id_space(7);
        let base = 7 * ID_SPACE;
        // Node a's own task on a phone when it died, node b's on the line
        // now, one node b numbered that a took over, and an old task from
        // before the cluster that node b runs.
        let mut own = task(base + 3, None);
        own.state = TaskState::Dialing;
        let mut theirs = task(9 * ID_SPACE + 1, None);
        theirs.state = TaskState::Connected;
        let mut taken_over = task(9 * ID_SPACE + 2, None);
        taken_over.state = TaskState::Offered;
        let foreign = BTreeSet::from([TaskId(9 * ID_SPACE + 1), TaskId(5)]);
        let tasks = vec![own, theirs, taken_over, task(5, None)];
        let changed = a.restore(tasks, &foreign, 2 * MIN);
        assert_eq!(
            changed,
            vec![TaskId(base + 3), TaskId(9 * ID_SPACE + 2)],
            "only those it runs are interrupted"
        );
        assert_eq!(a.next_id(), TaskId(base + 4), "numbered in its own space");
        assert!(a.is_own(TaskId(base + 4)) && !a.is_own(TaskId(9 * ID_SPACE + 1)));
        // Another node's open task is never queued here, until taken over.
        let queued: Vec<TaskId> = a
            .poll(3 * MIN)
            .iter()
            .filter_map(|d| match d {
                TaskDecision::Enter { id, .. } => Some(*id),
                TaskDecision::Escalate { .. } => None,
            })
            .collect();
        assert!(!queued.contains(&TaskId(5)), "{queued:?}");
        a.set_foreign(TaskId(5), false);
        assert!(a.poll(3 * MIN).contains(&TaskDecision::Enter {
            id: TaskId(5),
            priority: 0,
            order_ms: 0
        }));
        // One node numbers from 1 as before.
        let mut one = TaskBook::new(30 * MIN);
        one.restore(vec![task(5, None)], &BTreeSet::new(), 0);
        assert_eq!(one.next_id(), TaskId(6));
    }

    #[test]
    fn tasks_enter_by_deadline_and_are_raised_when_at_risk() {
        let mut book = TaskBook::new(30 * MIN);
        book.insert(task(1, Some(120 * MIN)));
        book.insert(task(2, Some(40 * MIN)));
        let first = book.poll(0);
        assert_eq!(first.len(), 2);
        assert!(first
            .iter()
            .all(|d| matches!(d, TaskDecision::Enter { priority, .. } if *priority == 0)));
        assert_eq!(book.poll(0), vec![], "entered once");
        // Task 2 is at risk 30 minutes before its deadline.
        assert_eq!(book.next_wake(0), Some(10 * MIN));
        assert_eq!(book.poll(10 * MIN - 1), vec![]);
        assert_eq!(
            book.poll(10 * MIN),
            vec![TaskDecision::Escalate { id: TaskId(2) }]
        );
        assert_eq!(book.next_wake(10 * MIN), Some(90 * MIN));
    }

    #[test]
    fn a_task_already_at_risk_enters_raised() {
        let mut book = TaskBook::new(30 * MIN);
        book.insert(task(1, Some(20 * MIN)));
        assert_eq!(
            book.poll(0),
            vec![TaskDecision::Enter {
                id: TaskId(1),
                priority: AT_RISK_PRIORITY,
                order_ms: 20 * MIN
            }]
        );
    }

    #[test]
    fn not_reached_retries_after_the_delay_then_fails() {
        let mut book = TaskBook::new(0);
        book.insert(task(1, Some(1000 * MIN)));
        book.poll(0);
        book.offered(TaskId(1));
        book.dialing(TaskId(1), Some("1001"), MIN);
        let t = book
            .attempt_ended(TaskId(1), AttemptEnd::NotReached, 486, None, 2 * MIN)
            .expect("task");
        assert_eq!(t.state, TaskState::Open);
        assert_eq!(t.not_before_ms, 12 * MIN);
        assert_eq!(book.poll(12 * MIN - 1), vec![], "not before the retry time");
        assert_eq!(book.next_wake(2 * MIN), Some(12 * MIN));
        assert_eq!(book.poll(12 * MIN).len(), 1);
        book.dialing(TaskId(1), Some("1001"), 12 * MIN);
        let t = book
            .attempt_ended(TaskId(1), AttemptEnd::NotReached, 480, None, 13 * MIN)
            .expect("task");
        assert_eq!(t.state, TaskState::Failed, "two attempts used");
        assert_eq!(t.closed_ms, Some(13 * MIN));
        assert_eq!(book.poll(100 * MIN), vec![]);
    }

    #[test]
    fn an_agent_leaving_is_not_counted_against_the_customer() {
        let mut book = TaskBook::new(0);
        book.insert(task(1, None));
        book.poll(0);
        book.dialing(TaskId(1), Some("1001"), MIN);
        let t = book
            .attempt_ended(TaskId(1), AttemptEnd::AgentLeft, 0, None, 2 * MIN)
            .expect("task");
        assert_eq!((t.state, t.not_before_ms), (TaskState::Open, 2 * MIN));
        assert_eq!(t.failed_attempts(), 0);
    }

    #[test]
    fn outcomes_close_or_reopen_a_reached_task() {
        let mut book = TaskBook::new(0);
        book.insert(task(1, Some(60 * MIN)));
        assert!(book
            .record_outcome(TaskId(1), TaskOutcome::Satisfied, 0)
            .is_err());
        book.poll(0);
        book.dialing(TaskId(1), Some("1001"), MIN);
        book.answered(TaskId(1), MIN + 5000);
        book.attempt_ended(TaskId(1), AttemptEnd::Answered, 200, None, 3 * MIN);
        let t = book
            .record_outcome(TaskId(1), TaskOutcome::NotReached, 4 * MIN)
            .expect("reached");
        assert_eq!(t.state, TaskState::Open, "the wrong person answered");
        assert_eq!(t.not_before_ms, 14 * MIN);
        book.poll(14 * MIN);
        book.dialing(TaskId(1), Some("1002"), 15 * MIN);
        book.answered(TaskId(1), 15 * MIN);
        book.attempt_ended(TaskId(1), AttemptEnd::Answered, 200, None, 16 * MIN);
        let t = book
            .record_outcome(TaskId(1), TaskOutcome::Satisfied, 17 * MIN)
            .expect("reached");
        assert_eq!(
            (t.state, t.outcome, t.on_time()),
            (TaskState::Done, Some(TaskOutcome::Satisfied), Some(true))
        );
    }

    #[test]
    fn open_tasks_are_found_by_number_until_they_close() {
        let mut book = TaskBook::new(0);
        book.insert(task(1, None));
        book.insert(task(2, None));
        let key = crate::number::number_key("+86 138-0000-0001");
        assert_eq!(book.open_for(&key).map(|t| t.id), Some(TaskId(1)));
        book.cancel(TaskId(1), MIN);
        assert_eq!(book.open_for(&key), None, "a cancelled task is not open");
        book.poll(0);
        book.dialing(TaskId(2), Some("1001"), MIN);
        book.answered(TaskId(2), MIN);
        book.attempt_ended(TaskId(2), AttemptEnd::Answered, 200, None, 2 * MIN);
        let key2 = crate::number::number_key("13800000002");
        assert_eq!(book.open_for(&key2), None, "done");
        book.record_outcome(TaskId(2), TaskOutcome::NotReached, 3 * MIN)
            .expect("reached");
        assert_eq!(
            book.open_for(&key2).map(|t| t.id),
            Some(TaskId(2)),
            "reopened by a not-reached outcome"
        );
    }

    fn edit(version: u64, v: serde_json::Value) -> TaskEdit {
        let mut v = v;
        v["version"] = serde_json::json!(version);
        TaskEdit::parse(&v).expect("a valid edit")
    }

    #[test]
    fn two_edits_of_the_same_version_the_second_is_refused_with_the_first() {
        let mut book = TaskBook::new(0);
        let mut t = task(1, Some(60 * MIN));
        t.version = 3;
        t.owner = Some("1001".into());
        book.insert(t);
        let first = book
            .edit(
                TaskId(1),
                &edit(3, serde_json::json!({"note": "上午联系"})),
                None,
            )
            .expect("fresh");
        assert_eq!(first.changed, vec!["note"]);
        let now = book.get(TaskId(1)).expect("task");
        assert_eq!((now.version, now.note.as_str()), (4, "上午联系"));
        // The second editor opened version 3 too.
        let second = book.edit(
            TaskId(1),
            &edit(3, serde_json::json!({"due": "1970-01-01T10:00:00+08:00"})),
            None,
        );
        match second {
            Err(EditError::Stale { expected, current }) => {
                assert_eq!(expected, 3);
                assert_eq!(current.version, 4);
                assert_eq!(current.note, "上午联系", "the first edit, to merge with");
            }
            other => panic!("expected stale, got {other:?}"),
        }
        assert_eq!(book.get(TaskId(1)).map(|t| t.due_ms), Some(Some(60 * MIN)));
        // Merged: saved on version 4, and both edits are there.
        let third = book
            .edit(
                TaskId(1),
                &edit(4, serde_json::json!({"due": "1970-01-01T10:00:00+08:00"})),
                None,
            )
            .expect("fresh");
        assert_eq!(third.changed, vec!["due"]);
        let t = book.get(TaskId(1)).expect("task");
        assert_eq!(
            (t.version, t.note.as_str(), t.due_ms, t.order_ms),
            (5, "上午联系", Some(120 * MIN), 120 * MIN)
        );
    }

    #[test]
    fn only_the_owner_agent_edits_and_a_closed_task_is_not_edited() {
        let mut book = TaskBook::new(0);
        let mut t = task(1, Some(60 * MIN));
        t.owner = Some("1001".into());
        book.insert(t);
        let e = edit(0, serde_json::json!({"note": "x"}));
        assert!(matches!(
            book.edit(TaskId(1), &e, Some("1002")),
            Err(EditError::NotOwner { .. })
        ));
        assert!(book.edit(TaskId(1), &e, Some("1001")).is_ok());
        assert!(matches!(
            book.edit(TaskId(9), &e, None),
            Err(EditError::Unknown(9))
        ));
        book.cancel(TaskId(1), MIN);
        let e = edit(2, serde_json::json!({"note": "y"}));
        assert!(matches!(
            book.edit(TaskId(1), &e, None),
            Err(EditError::Closed(_))
        ));
    }

    #[test]
    fn an_order_is_edited_field_by_field_and_undone_if_not_stored() {
        let mut book = TaskBook::new(0);
        let mut t = task(1, Some(60 * MIN));
        t.order = Some(super::super::WorkOrder {
            kind: super::super::OrderKind::Repair,
            customer_name: "王先生".into(),
            address: "旧地址".into(),
            fault: Some(super::super::FaultType::Noise),
            fault_detail: None,
            subject: None,
        });
        book.insert(t);
        let bad = book.edit(
            TaskId(1),
            &edit(0, serde_json::json!({"order": {"subject": "x"}})),
            None,
        );
        assert!(
            matches!(bad, Err(EditError::Invalid(ref f)) if f.field == "order.subject"),
            "{bad:?}"
        );
        let edited = book
            .edit(
                TaskId(1),
                &edit(0, serde_json::json!({"order": {"address": "新地址"}})),
                None,
            )
            .expect("edited");
        let order = |book: &TaskBook| {
            book.get(TaskId(1))
                .and_then(|t| t.order.clone())
                .map(|o| (o.customer_name, o.address))
        };
        assert_eq!(order(&book), Some(("王先生".into(), "新地址".into())));
        let undone = book.undo_edit(TaskId(1), &edited).expect("task");
        assert_eq!(undone.version, 2, "the undo is a change of its own");
        assert_eq!(order(&book), Some(("王先生".into(), "旧地址".into())));
        // A callback has no deadline and no order to edit.
        let mut cb = task(2, None);
        cb.kind = TaskKind::Callback;
        book.insert(cb);
        for (body, field) in [
            (
                serde_json::json!({"due": "1970-01-01T10:00:00+08:00"}),
                "due",
            ),
            (
                serde_json::json!({"order": {"customer_name": "李"}}),
                "order",
            ),
        ] {
            let r = book.edit(TaskId(2), &edit(0, body), None);
            assert!(
                matches!(r, Err(EditError::Invalid(ref f)) if f.field == field),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_restart_reopens_interrupted_work_without_repeating_it_at_once() {
        let mut dialing = task(1, None);
        dialing.state = TaskState::Dialing;
        dialing.attempts.push(TaskAttempt {
            number: 1,
            agent: Some("1001".into()),
            started_ms: MIN,
            answered_ms: None,
            ended_ms: None,
            result: None,
            sip_status: 0,
            call_id: None,
        });
        let mut talking = task(2, None);
        talking.state = TaskState::Connected;
        talking.attempts = dialing.attempts.clone();
        talking.attempts[0].answered_ms = Some(MIN + 1);
        let mut book = TaskBook::new(0);
        let changed = book.restore(
            vec![dialing, talking, task(7, None)],
            &BTreeSet::new(),
            2 * MIN,
        );
        assert_eq!(changed, vec![TaskId(1), TaskId(2)]);
        let one = book.get(TaskId(1)).expect("1");
        assert_eq!((one.state, one.not_before_ms), (TaskState::Open, 12 * MIN));
        assert_eq!(one.attempts[0].result, Some(AttemptEnd::Failed));
        assert_eq!(book.get(TaskId(2)).map(|t| t.state), Some(TaskState::Done));
        assert_eq!(book.next_id(), TaskId(8));
    }
}
