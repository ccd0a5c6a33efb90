//! The engine's side of tasks: the book's decisions become ACD entries;
//! an entry the ACD hands out becomes a call. Agent first: the agent's
//! phone rings with the task, the agent hears what it is, the attempt is
//! written, then the customer is dialled through the trunk and bridged.
//! Customer first: the attempt is written, the customer dialled, told
//! why, and queued at the head. The call's end is the attempt's result,
//! its record and the task's next step (done, a retry, failed).

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::Engine;
use crate::acd::AcdInput;
use crate::call::record::Ending;
use crate::call::work::{WorkCall, WorkStage};
use crate::call::{AfterSequence, Call, QueueVisit};
use crate::campaign::spec::SpecError;
use crate::cdr::{CallRecord, Disposition, HangupSide, Outcome};
use crate::ids::{CallKey, LegKey};
use crate::ivr::program::NodeId;
use crate::ivr::Ivr;
use crate::leg::uac::Offer;
use crate::leg::{Leg, LegEvent};
use crate::store::StoreWrite;
use crate::tasks::book::OutcomeError;
use crate::tasks::{
    AttemptEnd, CallbackMode, Task, TaskDecision, TaskId, TaskKind, TaskOutcome, TaskSpec,
    TaskState,
};
use crate::wire::{CallTimer, Wake};

/// How long the customer's phone rings on a task's call.
pub const CUSTOMER_RING: Duration = Duration::from_secs(30);

impl Engine {
    // ---- the task book ---------------------------------------------------

    /// Writes a task as it now stands; `ack` when the engine waits for it.
    pub(super) fn write_task(&mut self, id: TaskId, ack: bool) -> Option<u64> {
        let task = self.tasks.get(id)?.clone();
        Some(self.store(StoreWrite::Task {
            task: Box::new(task),
            ack,
        }))
    }

    /// The trunk a queue's callbacks and tasks dial through.
    pub(super) fn task_trunk_for(&self, queue: &str) -> Option<usize> {
        let named = self
            .settings
            .queues
            .iter()
            .find(|q| q.name == queue)
            .and_then(|q| q.callback_trunk.as_deref());
        match named {
            Some(name) => self.trunks.iter().position(|t| t.config.name == name),
            None if self.trunks.len() == 1 => Some(0),
            None => None,
        }
    }

    /// A task through the API: checked against this configuration, kept
    /// in the book and written. Returns its id and the write to wait for
    /// before answering (the task is durable then).
    pub fn create_task(
        &mut self,
        now: Instant,
        spec: TaskSpec,
    ) -> Result<(TaskId, u64), SpecError> {
        let bad = |field: &str, message: String| SpecError {
            field: field.to_string(),
            message,
        };
        let Some(queue) = self.settings.queues.iter().find(|q| q.name == spec.queue) else {
            let known: Vec<&str> = self
                .settings
                .queues
                .iter()
                .map(|q| q.name.as_str())
                .collect();
            return Err(bad(
                "queue",
                format!("no queue {:?} (queues: {})", spec.queue, known.join(", ")),
            ));
        };
        let mode = queue.callback_mode;
        if self.task_trunk_for(&spec.queue).is_none() {
            return Err(bad(
                "queue",
                format!(
                    "queue {:?} has no trunk to dial through: set its callback_trunk",
                    spec.queue
                ),
            ));
        }
        if let Some(owner) = &spec.owner {
            if !self.settings.agents.iter().any(|a| &a.id == owner) {
                return Err(bad("owner", format!("no agent {owner:?}")));
            }
        }
        let now_ms = self.wall_ms(now);
        let id = self.tasks.next_id();
        let task = Task {
            id,
            kind: spec.kind,
            number: spec.number,
            queue: spec.queue,
            business: spec.business,
            note: spec.note,
            created_ms: now_ms,
            due_ms: spec.due_ms,
            state: TaskState::Open,
            attempts: Vec::new(),
            max_attempts: spec.attempts,
            retry_ms: spec.retry.as_millis() as u64,
            not_before_ms: 0,
            priority: 0,
            order_ms: spec.due_ms.unwrap_or(now_ms),
            owner: spec.owner,
            origin_call: spec.origin_call,
            mode: if spec.kind == TaskKind::Callback {
                mode
            } else {
                CallbackMode::AgentFirst
            },
            outcome: None,
            closed_ms: None,
            version: 1,
            order: spec.order,
        };
        info!(task = id.0, kind = task.kind.as_str(), queue = %task.queue, "task created");
        self.tasks.insert(task);
        let write = self.write_task(id, true).unwrap_or_default();
        self.poll_tasks(now);
        Ok((id, write))
    }

    /// A task left by a call (a follow-up, a message to return).
    pub(super) fn task_after_call(&mut self, now: Instant, task: Task) -> TaskId {
        let id = task.id;
        info!(task = id.0, kind = task.kind.as_str(), number = %task.number, "task left by the call");
        self.tasks.insert(task);
        self.write_task(id, false);
        self.poll_tasks(now);
        id
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.tasks()
    }

    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(id)
    }

    /// The agent's outcome for a task they reached the customer on.
    pub fn task_outcome(
        &mut self,
        now: Instant,
        id: TaskId,
        outcome: TaskOutcome,
    ) -> Result<Task, OutcomeError> {
        let now_ms = self.wall_ms(now);
        let task = self.tasks.record_outcome(id, outcome, now_ms)?.clone();
        info!(
            task = id.0,
            outcome = outcome.as_str(),
            state = task.state.as_str(),
            "task outcome"
        );
        self.write_task(id, false);
        self.poll_tasks(now);
        Ok(task)
    }

    /// Cancels a task not yet closed: out of its queue, and an agent's
    /// phone ringing with it stops. Once the agent has taken it the call
    /// goes on, but the task is not tried again (a finished one stays as
    /// it is).
    pub fn cancel_task(&mut self, now: Instant, id: TaskId) -> Option<Task> {
        let now_ms = self.wall_ms(now);
        let task = self.tasks.cancel(id, now_ms)?.clone();
        self.withdraw_task(now, id);
        self.write_task(id, false);
        Some(task)
    }

    /// Task `id` leaves its queue, and an agent's phone ringing with it
    /// stops (a call already taken goes on).
    pub(super) fn withdraw_task(&mut self, now: Instant, id: TaskId) {
        if let Some(key) = self.task_entry.remove(&id) {
            let ringing = self.calls.get(&key).is_none_or(|c| {
                c.work
                    .as_ref()
                    .is_some_and(|w| w.stage == WorkStage::AgentRinging)
            });
            if ringing {
                self.acd
                    .handle(now, AcdInput::WorkWithdrawn { caller: key });
                self.apply_acd(now);
            }
        }
    }

    /// Tasks whose time has come enter their queue; those at risk are
    /// raised ahead of new calls. Wakes again for the next such moment.
    pub(super) fn poll_tasks(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        let now_ms = self.wall_ms(now);
        for decision in self.tasks.poll(now_ms) {
            match decision {
                TaskDecision::Enter {
                    id,
                    priority,
                    order_ms,
                } => {
                    let Some(task) = self.tasks.get(id) else {
                        continue;
                    };
                    let (queue, dial_first) =
                        (task.queue.clone(), task.mode == CallbackMode::CustomerFirst);
                    let key = CallKey(self.next_key());
                    self.work_entries.insert(key, id);
                    self.task_entry.insert(id, key);
                    let order = self.clock.at(order_ms);
                    info!(task = id.0, %queue, priority, "task queued");
                    self.acd.handle(
                        now,
                        AcdInput::WorkJoined {
                            caller: key,
                            queue,
                            priority,
                            order,
                            dial_first,
                        },
                    );
                }
                TaskDecision::Escalate { id } => {
                    if let Some(&key) = self.task_entry.get(&id) {
                        info!(
                            task = id.0,
                            "task at risk of missing its deadline: ahead of new calls"
                        );
                        self.acd.handle(
                            now,
                            AcdInput::Reprioritise {
                                caller: key,
                                priority: crate::tasks::book::AT_RISK_PRIORITY,
                            },
                        );
                    }
                }
            }
        }
        self.apply_acd(now);
        if let Some(at) = self.tasks.next_wake(now_ms) {
            let at = self.clock.at(at);
            self.wire.timers.schedule(at, Wake::Tasks);
        }
    }

    /// An ACD entry left for good: if it was a task's, the task is no
    /// longer queued (unless it has been queued again since).
    pub(super) fn work_left_acd(&mut self, key: CallKey) {
        let Some(id) = self.work_entries.remove(&key) else {
            return;
        };
        if self.task_entry.get(&id) == Some(&key) {
            self.task_entry.remove(&id);
            self.tasks.left_queue(id);
        }
    }

    /// Draining: queued tasks leave the ACD (they stay in the store).
    pub(super) fn withdraw_queued_work(&mut self, now: Instant) {
        let idle: Vec<CallKey> = self
            .work_entries
            .keys()
            .copied()
            .filter(|k| !self.calls.contains_key(k))
            .collect();
        for key in idle {
            self.acd
                .handle(now, AcdInput::WorkWithdrawn { caller: key });
        }
        self.apply_acd(now);
    }

    // ---- a task's call ----------------------------------------------------

    /// The call for a task's ACD entry, made when the ACD hands the entry
    /// out (an offer, or a customer-first dial). `None` when it is not a
    /// task's, or the task cannot be worked now.
    pub(super) fn open_work_call(&mut self, now: Instant, key: CallKey) -> bool {
        if self.calls.contains_key(&key) {
            return true;
        }
        let Some(&id) = self.work_entries.get(&key) else {
            return false;
        };
        let Some(task) = self.tasks.get(id).cloned() else {
            return false;
        };
        if task.state.is_final() {
            return false;
        }
        let Some(trunk) = self.task_trunk_for(&task.queue) else {
            warn!(task = id.0, queue = %task.queue, "no trunk for the task's queue");
            return false;
        };
        let language = self.settings.default_language;
        let mut ivr = Ivr::new(self.program.clone(), NodeId(0), language);
        ivr.business = task.business.clone();
        let customer = LegKey(self.next_key());
        let info = self.directory.lookup(&task.number);
        let mut call = Call::new(
            key,
            self.prompts.clone(),
            customer,
            Vec::new(),
            ivr,
            info,
            now,
        );
        call.queue = Some(QueueVisit {
            queue: task.queue.clone(),
            joined_at: Some(now),
            ..QueueVisit::default()
        });
        call.work = Some(WorkCall {
            task: id,
            kind: task.kind,
            number: task.number.clone(),
            trunk,
            trunk_name: self.trunks[trunk].config.name.clone(),
            customer_first: task.mode == CallbackMode::CustomerFirst,
            stage: WorkStage::AgentRinging,
            agent: None,
            agent_leg: None,
            channel: false,
            end: None,
            sip_status: 0,
            attempt: 0,
            origin_call: task.origin_call.clone(),
        });
        self.calls.insert(key, call);
        true
    }

    /// The task's number and headers for the agent's phone.
    pub(super) fn work_headers(&self, key: CallKey) -> Option<(String, String, &'static str)> {
        let w = self.calls.get(&key)?.work.as_ref()?;
        Some((w.number.clone(), w.task.0.to_string(), w.kind.as_str()))
    }

    /// An agent's phone rings with the task.
    pub(super) fn work_offered(&mut self, key: CallKey) {
        let Some(id) = self
            .calls
            .get(&key)
            .and_then(|c| c.work.as_ref())
            .map(|w| w.task)
        else {
            return;
        };
        let first_offer = self
            .tasks
            .get(id)
            .is_some_and(|t| t.state == TaskState::Open);
        self.tasks.offered(id);
        if first_offer {
            self.write_task(id, false);
        }
    }

    /// An offer of a task's call ended unanswered and nothing else is
    /// ringing: the call goes (it was never dialled) and the task is open
    /// again, still queued for the next agent.
    pub(super) fn drop_unanswered_work_call(&mut self, key: CallKey) {
        let idle = self.calls.get(&key).is_some_and(|c| {
            c.legs.is_empty()
                && c.work
                    .as_ref()
                    .is_some_and(|w| w.stage == WorkStage::AgentRinging)
        });
        if !idle {
            return;
        }
        if let Some(call) = self.calls.remove(&key) {
            if let Some(w) = call.work {
                self.tasks.offer_ended(w.task);
                self.write_task(w.task, false);
            }
        }
    }

    /// The agent answered a task (agent first): they hear what it is —
    /// the kind, the number, the business type — then the customer is
    /// dialled.
    pub(super) fn work_agent_answered(
        &mut self,
        now: Instant,
        key: CallKey,
        agent: &str,
        leg: LegKey,
    ) {
        let number = self.agent_numbers.get(agent).cloned();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(q) = call.queue.as_mut() {
            q.agent = Some(agent.to_string());
            q.agent_number = number;
            q.answered_at = Some(now);
        }
        let Some(w) = call.work.as_mut() else {
            return;
        };
        w.agent = Some(agent.to_string());
        w.agent_leg = Some(leg);
        self.last_task_of_agent.insert(agent.to_string(), w.task);
        if w.customer_first {
            // The customer is on the line already: an ordinary bridge.
            return;
        }
        w.stage = WorkStage::Briefing;
        let mut names = vec![w.kind.intro_prompt().to_string()];
        names.extend(crate::call::work::readback_groups(&w.number));
        if let Some(b) = call.ivr.business.clone() {
            names.push(b);
        }
        info!(%agent, task = w.task.0, "briefing the agent, then dialling the customer");
        self.play_sequence(now, key, &names, Some(AfterSequence::DialCustomer));
    }

    /// Writes the attempt; the customer is dialled once it is durable.
    pub(super) fn work_write_attempt(&mut self, now: Instant, key: CallKey) {
        let now_ms = self.wall_ms(now);
        let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) else {
            return;
        };
        if !matches!(w.stage, WorkStage::Briefing | WorkStage::AgentRinging) {
            return;
        }
        w.stage = WorkStage::Writing;
        let (id, agent) = (w.task, w.agent.clone());
        let Some(task) = self.tasks.dialing(id, agent.as_deref(), now_ms) else {
            return;
        };
        let attempt = task.attempts.len() as u32;
        if let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) {
            w.attempt = attempt;
        }
        if let Some(write) = self.write_task(id, true) {
            self.pending_work_dials.insert(write, key);
        }
    }

    /// The attempt is durable: dial the customer through the trunk.
    pub(super) fn work_attempt_stored(&mut self, now: Instant, key: CallKey) {
        let Some(w) = self.calls.get(&key).and_then(|c| c.work.clone()) else {
            return;
        };
        if w.stage != WorkStage::Writing {
            return;
        }
        if !self.trunks[w.trunk].can_dial(now) {
            warn!(trunk = %w.trunk_name, "no trunk channel for the task's call");
            return self.work_failed(now, key, AttemptEnd::Failed, 503);
        }
        let Some(port) = self.ports.take() else {
            warn!("no free RTP port for the task's call");
            return self.work_failed(now, key, AttemptEnd::Failed, 503);
        };
        self.trunks[w.trunk].reserve();
        self.trunks[w.trunk].sent(now);
        let target = self.trunks[w.trunk].target(&w.number);
        let Some(call) = self.calls.get(&key) else {
            self.ports.release(port);
            self.trunks[w.trunk].release();
            return;
        };
        let leg_key = call.customer;
        let preferred = w
            .agent_leg
            .and_then(|l| call.leg(l))
            .and_then(|l| l.media.negotiated)
            .map(|n| n.codec);
        let offer = Offer {
            port,
            media_address: self.settings.media_address,
            preferred,
            headers: &[],
        };
        let leg = Leg::outgoing(now, &mut self.wire, leg_key, key, &target, offer);
        self.dialogs.insert(
            (leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()),
            (key, leg_key),
        );
        info!(task = w.task.0, number = %w.number, trunk = %w.trunk_name, "dialling the customer");
        if let Some(c) = self.calls.get_mut(&key) {
            c.legs.push(leg);
            c.arrived_at = now;
            if let Some(w) = c.work.as_mut() {
                w.stage = WorkStage::Dialing;
                w.channel = true;
            }
        }
        self.wire
            .timers
            .schedule(now + CUSTOMER_RING, Wake::Call(key, CallTimer::RingTimeout));
    }

    /// The attempt's write failed, or no channel: no call is made.
    fn work_failed(&mut self, now: Instant, key: CallKey, end: AttemptEnd, status: u16) {
        if let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) {
            w.end = Some(end);
            w.sip_status = status;
        }
        self.end_work_call(now, key);
    }

    pub(super) fn work_store_failed(&mut self, now: Instant, key: CallKey) {
        warn!("the task's attempt was not written: not dialled");
        self.work_failed(now, key, AttemptEnd::Failed, 0);
    }

    /// What the customer's leg did.
    pub(super) fn work_leg_event(
        &mut self,
        now: Instant,
        key: CallKey,
        leg: LegKey,
        event: LegEvent,
    ) {
        match event {
            LegEvent::Answered => {
                self.start_media(now, key, leg);
                let now_ms = self.wall_ms(now);
                let Some(c) = self.calls.get_mut(&key) else {
                    return;
                };
                let Some(w) = c.work.as_mut() else { return };
                w.sip_status = 200;
                let id = w.task;
                if w.customer_first {
                    w.stage = WorkStage::WaitingAgent;
                    self.tasks.answered(id, now_ms);
                    self.write_task(id, false);
                    info!(task = id.0, "the customer answered: queued at the head");
                    let names = vec!["callback_intro".to_string()];
                    self.play_sequence(now, key, &names, Some(AfterSequence::WaitForAgent));
                    return;
                }
                w.stage = WorkStage::Connected;
                let agent_leg = w.agent_leg;
                let agent = w.agent.clone();
                if let Some(q) = c.queue.as_mut() {
                    q.bridged_at = Some(now);
                }
                if let Some(agent) = agent {
                    c.controls.agent_connected(now, agent);
                }
                c.playing = None;
                self.tasks.answered(id, now_ms);
                self.write_task(id, false);
                info!(task = id.0, "the customer answered: bridged with the agent");
                if let Some(agent_leg) = agent_leg {
                    self.bridge(key, leg, agent_leg);
                }
            }
            LegEvent::Rejected { status, cancelled } => {
                let status = if cancelled { 487 } else { status };
                if let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) {
                    w.end.get_or_insert(AttemptEnd::NotReached);
                    w.sip_status = status;
                }
                info!(status, "the customer was not reached");
                self.end_work_call(now, key);
            }
            LegEvent::MediaUnusable => {
                if let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) {
                    w.end = Some(AttemptEnd::NotReached);
                    w.sip_status = 488;
                }
                self.hangup(now, key, Outcome::NoCommonCodec, Disposition::Failed);
            }
            LegEvent::HungUp => {
                info!("the customer hung up");
                self.end_call(
                    now,
                    key,
                    Ending {
                        outcome: Outcome::CallerHangup,
                        disposition: Disposition::Answered,
                        side: Some(HangupSide::Caller),
                        status: 200,
                    },
                );
            }
            LegEvent::Digit(d) => self.digit(now, key, d, crate::media::dtmf::DigitSource::SipInfo),
            LegEvent::MediaChanged { remote, sending } => self.media(
                key,
                crate::media::call_media::MediaCommand::Update {
                    leg,
                    remote,
                    sending,
                },
            ),
            _ => {}
        }
    }

    /// The customer has rung long enough: CANCEL (the 487 ends the call).
    pub(super) fn work_ring_timeout(&mut self, now: Instant, key: CallKey) {
        let ringing = self
            .calls
            .get(&key)
            .and_then(|c| c.work.as_ref().map(|w| (w.stage, c.customer)));
        if let Some((WorkStage::Dialing, leg)) = ringing {
            info!("the customer's phone rang out: CANCEL");
            if let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) {
                w.end = Some(AttemptEnd::NotReached);
                w.sip_status = 480;
            }
            self.hangup_leg(now, key, leg);
        }
    }

    /// The agent hung up before the customer was on the line (agent
    /// first): the customer's phone stops ringing and the task goes back
    /// to its queue, not counted against the customer. Returns whether it
    /// was that case.
    pub(super) fn work_agent_left_early(
        &mut self,
        now: Instant,
        key: CallKey,
        leg: LegKey,
    ) -> bool {
        let Some(c) = self.calls.get(&key) else {
            return false;
        };
        let Some(w) = c.work.as_ref() else {
            return false;
        };
        if w.customer_first
            || !matches!(
                w.stage,
                WorkStage::Briefing | WorkStage::Writing | WorkStage::Dialing
            )
        {
            return false;
        }
        let stage = w.stage;
        let customer = c.customer;
        info!("the agent left before the customer answered");
        self.end_leg(key, leg);
        if let Some(w) = self.calls.get_mut(&key).and_then(|c| c.work.as_mut()) {
            w.end = Some(AttemptEnd::AgentLeft);
        }
        match stage {
            // CANCEL; the 487 ends the call.
            WorkStage::Dialing => self.hangup_leg(now, key, customer),
            _ => self.end_work_call(now, key),
        }
        true
    }

    /// Ends a task's call that never reached a bridge: with its record
    /// when the customer was dialled, without one when not.
    fn end_work_call(&mut self, now: Instant, key: CallKey) {
        let dialled = self
            .calls
            .get(&key)
            .is_some_and(|c| c.customer_leg().is_some());
        if dialled {
            return self.end_call(
                now,
                key,
                Ending {
                    outcome: Outcome::Unanswered,
                    disposition: Disposition::Failed,
                    side: Some(HangupSide::Engine),
                    status: self
                        .calls
                        .get(&key)
                        .and_then(|c| c.work.as_ref())
                        .map_or(0, |w| w.sip_status),
                },
            );
        }
        // Never dialled: no record (no attempt reached the line); the
        // agent's leg and the ACD entry end, the task moves on.
        self.caller_gone(now, key);
        let legs: Vec<LegKey> = self
            .calls
            .get(&key)
            .map(|c| c.legs.iter().map(|l| l.key).collect())
            .unwrap_or_default();
        for leg in legs {
            self.hangup_leg(now, key, leg);
            if let Some(l) = self.end_leg(key, leg) {
                if l.role == crate::leg::Role::Uac && !l.answered() {
                    self.lingering.insert(leg, (key, l, None));
                }
            }
        }
        if let Some(call) = self.calls.remove(&key) {
            if let Some(w) = call.work {
                self.work_attempt_over(now, key, &w, None);
            }
        }
    }

    /// After a task's call's record: its trunk channel is free and the
    /// attempt's result moves the task on.
    pub(super) fn work_call_ended(&mut self, now: Instant, call: &Call, record: &mut CallRecord) {
        let Some(w) = &call.work else { return };
        let bridged = call.queue.as_ref().is_some_and(|q| q.bridged_at.is_some());
        let answered = w.sip_status == 200;
        let end = match w.end {
            Some(e) => e,
            None if answered && bridged => AttemptEnd::Answered,
            // Customer first, reached but gone before an agent took them.
            None if answered => AttemptEnd::NotReached,
            None => AttemptEnd::NotReached,
        };
        let mut w = w.clone();
        w.end = Some(end);
        record.direction = Some("outbound".into());
        record.caller_number = w.number.clone();
        record.trunk = Some(w.trunk_name.clone());
        record.task = Some(w.task.0);
        record.task_kind = Some(w.kind.as_str().to_string());
        record.origin_call = w.origin_call.clone();
        record.attempt = Some(w.attempt);
        record.attempt_result = Some(end.as_str().to_string());
        self.work_attempt_over(now, call.key, &w, Some(record.call_id.clone()));
    }

    fn work_attempt_over(
        &mut self,
        now: Instant,
        key: CallKey,
        w: &WorkCall,
        call_id: Option<String>,
    ) {
        if w.channel {
            self.trunks[w.trunk].release();
        }
        let now_ms = self.wall_ms(now);
        let end = w.end.unwrap_or(AttemptEnd::Failed);
        let dialled = w.attempt > 0;
        let task = if dialled {
            self.tasks
                .attempt_ended(w.task, end, w.sip_status, call_id, now_ms)
                .cloned()
        } else {
            // Never dialled (the agent left during the briefing): open
            // again at once.
            self.tasks.offer_ended(w.task).cloned()
        };
        if let Some(t) = task {
            info!(
                task = t.id.0,
                result = end.as_str(),
                next = t.state.as_str(),
                "task attempt over"
            );
            if self.task_entry.get(&t.id) == Some(&key) {
                self.task_entry.remove(&t.id);
            }
            self.write_task(t.id, false);
        }
        self.poll_tasks(now);
    }

    /// Customer first: the customer heard why we call; they wait at the
    /// head of the queue for the next agent.
    pub(super) fn work_wait_for_agent(&mut self, now: Instant, key: CallKey) {
        self.acd
            .handle(now, AcdInput::CustomerReached { caller: key });
        self.apply_acd(now);
        if self.waiting(key) {
            self.play_named(key, "moh");
        }
    }

    /// Customer first: the ACD says the entry is at the head with an
    /// agent free.
    pub(super) fn work_dial_customer_first(&mut self, now: Instant, key: CallKey) {
        if !self.open_work_call(now, key) {
            self.acd
                .handle(now, AcdInput::WorkWithdrawn { caller: key });
            return;
        }
        self.work_write_attempt(now, key);
    }

    /// A feature code with the agent's outcome for their last task.
    pub(super) fn agent_task_outcome(
        &mut self,
        now: Instant,
        agent: &str,
        outcome: TaskOutcome,
    ) -> bool {
        let Some(&id) = self.last_task_of_agent.get(agent) else {
            return false;
        };
        self.task_outcome(now, id, outcome).is_ok()
    }

    /// Tasks now, for the live view: per kind open, at risk and overdue,
    /// and today's closes; callbacks waiting and today's.
    pub(super) fn tasks_view(&self, now: Instant) -> crate::live::TasksView {
        use crate::live::{CallbacksView, TaskKindView, TasksView};
        let now_ms = self.wall_ms(now);
        let offset = self.settings.live.utc_offset_minutes;
        let today = crate::time::LocalTime::at(now_ms, offset).day;
        let is_today = |ms: u64| crate::time::LocalTime::at(ms, offset).day == today;
        let margin = self.settings.tasks.at_risk_margin.as_millis() as u64;
        let mut kinds: Vec<TaskKindView> = crate::tasks::TASK_KINDS
            .iter()
            .map(|k| TaskKindView {
                kind: k.as_str(),
                ..TaskKindView::default()
            })
            .collect();
        let mut callbacks = CallbacksView::default();
        let mut answer_ms = Vec::new();
        for t in self.tasks.tasks() {
            let Some(v) = crate::tasks::TASK_KINDS
                .iter()
                .position(|k| *k == t.kind)
                .and_then(|i| kinds.get_mut(i))
            else {
                continue;
            };
            if !t.state.is_final() {
                v.open += 1;
                if let Some(due) = t.due_ms {
                    if now_ms > due {
                        v.overdue += 1;
                    } else if now_ms + margin >= due {
                        v.at_risk += 1;
                    }
                }
            } else if t.closed_ms.is_some_and(is_today) {
                match (t.state, t.on_time()) {
                    (TaskState::Done, Some(true)) => v.done_on_time_today += 1,
                    (TaskState::Done, _) => v.done_late_today += 1,
                    (TaskState::Failed, _) => v.failed_today += 1,
                    _ => {}
                }
            }
            if t.kind == TaskKind::Callback {
                if !t.state.is_final() {
                    callbacks.waiting += 1;
                }
                if is_today(t.created_ms) {
                    callbacks.requested_today += 1;
                }
                if t.closed_ms.is_some_and(is_today) {
                    match t.state {
                        TaskState::Done => {
                            callbacks.completed_today += 1;
                            answer_ms.extend(t.time_to_answer_ms());
                        }
                        TaskState::Failed => callbacks.failed_today += 1,
                        _ => {}
                    }
                }
            }
        }
        for v in &mut kinds {
            let closed = v.done_on_time_today + v.done_late_today + v.failed_today;
            v.on_time_rate_today =
                (closed > 0).then(|| v.done_on_time_today as f64 / closed as f64);
        }
        answer_ms.sort_unstable();
        callbacks.answer_ms_median_today = answer_ms.get(answer_ms.len() / 2).copied();
        TasksView { kinds, callbacks }
    }

    /// A task's attempt a crash left on the line left no record of its
    /// own: this one says so (`attempt_result: "interrupted"`), as an
    /// interrupted campaign attempt's does.
    pub(super) fn task_interrupted_record(&mut self, now: Instant, id: TaskId, now_ms: u64) {
        let Some(task) = self.tasks.get(id) else {
            return;
        };
        let Some(attempt) = task
            .attempts
            .last()
            .filter(|a| a.ended_ms == Some(now_ms) && a.call_id.is_none())
        else {
            return;
        };
        let mut record = crate::call::record::base_outbound(now, self.clock, &task.number);
        record.caller_number = task.number.clone();
        record.invite_at = crate::cdr::format_ms(attempt.started_ms);
        record.task = Some(task.id.0);
        record.task_kind = Some(task.kind.as_str().to_string());
        record.origin_call = task.origin_call.clone();
        record.queue = Some(task.queue.clone());
        record.agent = attempt.agent.clone();
        record.attempt = Some(attempt.number);
        record.attempt_result = Some("interrupted".to_string());
        record.outcome = Outcome::Shutdown;
        record.call_id = self.record_id(self.next_id);
        self.next_id += 1;
        self.wire.push(crate::io::Output::CallEnded {
            call: CallKey(0),
            record: Box::new(record),
            then_send: Vec::new(),
        });
    }
}
