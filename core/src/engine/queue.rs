//! The engine's side of the ACD: callers the IVR queues join the pure
//! [`crate::acd::Acd`]; its actions place legs to agents' phones, bridge
//! them with the caller, play the apology and send callers back to the
//! IVR; what happens on agents' legs and to registrations goes back in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Engine;
use crate::acd::{
    caller_priority, AcdAction, AcdInput, CancelReason, EndedBy, LeaveReason, RejectReason,
};
use crate::call::{AfterSequence, Feature, QueueExit, QueueVisit};
use crate::cdr::{self, Outcome};
use crate::ids::{CallKey, LegKey};
use crate::io::{Output, Peer};
use crate::leg::uac::LegTarget;
use crate::leg::{Leg, LegEvent, LegState};
use crate::live::{LiveEvent, QueueResult};
use crate::media::call_media::MediaCommand;
use crate::media::prompt::PromptId;
use crate::sip::message::SipRequest;
use crate::sip::transaction::InviteResponse;

impl Engine {
    /// The IVR hands the caller to a queue.
    pub(super) fn join_queue(&mut self, now: Instant, key: CallKey, queue: String) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let priority = caller_priority(call.info.class, call.info.vip);
        let caller_id = call
            .customer_leg()
            .and_then(|l| l.invite.as_ref())
            .map(|i| i.caller_number().to_string())
            .unwrap_or_default();
        let arrival = call.arrived_at;
        // Queued again by a transfer: the first visit, in which the caller
        // reached an agent, stays the record's.
        if call.controls.first_visit.is_none() {
            call.controls.first_visit = call.queue.take().filter(|q| q.bridged_at.is_some());
        }
        call.queue = Some(QueueVisit {
            queue: queue.clone(),
            joined_at: Some(now),
            ..QueueVisit::default()
        });
        // A repeat caller waits a little for their own agent first.
        let preferred = call
            .repeat
            .as_ref()
            .and_then(|r| r.agent.clone())
            .map(|agent| (agent, now + self.settings.tasks.owner_wait));
        info!(%queue, priority, "caller queued");
        self.live_event(
            now,
            LiveEvent::QueueJoined {
                call: key,
                queue: &queue,
                arrival,
            },
        );
        self.acd.handle(
            now,
            AcdInput::CallerJoined {
                caller: key,
                queue,
                priority,
                caller_id,
                preferred,
            },
        );
        self.apply_acd(now);
        self.send_away_if_store_lost(now, key);
        self.apply_acd(now);
        if self.waiting(key) {
            self.play_named(key, "moh");
            self.arm_callback_offer(now, key);
        }
    }

    /// Whether the call waits in a queue for an agent.
    pub(super) fn waiting(&self, key: CallKey) -> bool {
        self.calls
            .get(&key)
            .and_then(|c| c.queue.as_ref())
            .is_some_and(QueueVisit::waiting)
    }

    /// Carries out what the ACD asks and re-arms its timer.
    pub(super) fn apply_acd(&mut self, now: Instant) {
        while let Some(action) = self.acd.poll_action() {
            match action {
                AcdAction::Offer { caller, agent } if self.clustered() => {
                    self.claim_agent(now, caller, agent)
                }
                AcdAction::Offer { caller, agent } => self.offer(now, caller, agent),
                AcdAction::Waiting {
                    caller,
                    queue,
                    priority,
                    arrival,
                } => self.tell_waiting(caller, queue, priority, arrival),
                AcdAction::NotWaiting { caller } => self.tell_not_waiting(caller),
                AcdAction::CancelOffer {
                    caller,
                    agent,
                    reason,
                } => {
                    if let Some(leg) = self.ringing_leg_of(caller, &agent) {
                        if reason == CancelReason::RingTimeout {
                            self.ring_timeouts.insert(leg);
                        }
                        self.hangup_leg(now, caller, leg);
                    }
                }
                AcdAction::Bridge { caller, agent } => self.connect(now, caller, &agent),
                AcdAction::Announce { caller, .. } if self.in_callback_exchange(caller) => {}
                AcdAction::Announce {
                    caller,
                    position,
                    expected_wait,
                } => self.announce_position(now, caller, position, expected_wait),
                AcdAction::Apologise { caller } if self.in_callback_exchange(caller) => {}
                // "Sorry to have kept you waiting"; the music resumes when it
                // ends, as after any prompt while waiting.
                AcdAction::Apologise { caller } => self.play_named(caller, "sorry_wait"),
                AcdAction::DialCustomer { caller } => self.work_dial_customer_first(now, caller),
                AcdAction::Leave { caller, reason } => {
                    self.work_left_acd(caller);
                    if self.calls.contains_key(&caller) {
                        self.left_queue(now, caller, reason);
                    }
                }
                AcdAction::JoinRefused { caller, reason } => {
                    info!(%caller, ?reason, "queue refused the caller");
                    self.live_event(
                        now,
                        LiveEvent::QueueLeft {
                            call: caller,
                            result: QueueResult::Refused,
                        },
                    );
                    if let Some(q) = self.calls.get_mut(&caller).and_then(|c| c.queue.as_mut()) {
                        q.result = Some(QueueExit::Refused);
                        q.left_at = Some(now);
                    }
                    self.back_to_ivr(now, caller, "refused");
                }
                AcdAction::QueueLog(event) => {
                    let callid = event
                        .caller
                        .map(|c| crate::call::record_id(&self.clock, c))
                        .unwrap_or_default();
                    let line = event.to_line(self.wall_ms(now) / 1000, &callid);
                    self.wire.push(Output::Line {
                        file: "queue_log".into(),
                        line,
                    });
                }
                AcdAction::AgentState {
                    agent,
                    status,
                    state,
                    reachable,
                } => {
                    debug!(%agent, ?status, ?state, reachable, "agent");
                    self.tell_agent(&agent, &status, state == crate::acd::AgentState::Idle);
                    self.live_event(
                        now,
                        LiveEvent::Agent {
                            id: &agent,
                            status: &status,
                            state,
                            registered: reachable,
                        },
                    );
                }
            }
        }
        if let Some(at) = self.acd.poll_timeout() {
            self.wire.timers.schedule(at, crate::wire::Wake::Acd);
        }
    }

    pub(super) fn acd_timeout(&mut self, now: Instant) {
        self.acd.handle_timeout(now);
        self.apply_acd(now);
    }

    /// The leg still ringing (not being cancelled) or connected to
    /// `agent` for this caller.
    fn ringing_leg_of(&self, caller: CallKey, agent: &str) -> Option<LegKey> {
        let call = self.calls.get(&caller)?;
        call.agent_legs
            .iter()
            .filter(|(_, a)| a == agent)
            .map(|(l, _)| *l)
            .find(|l| {
                call.leg(*l)
                    .is_some_and(|l| l.state != LegState::Cancelling)
            })
    }

    /// Rings the agent's newest registered phone with the caller, through
    /// the proxy it registered through (its Path) when there is one.
    pub(super) fn offer(&mut self, now: Instant, caller: CallKey, agent: String) {
        // A task's entry becomes a call when an agent is offered it.
        if self.work_entries.contains_key(&caller) && !self.open_work_call(now, caller) {
            self.acd.handle(now, AcdInput::WorkWithdrawn { caller });
            return;
        }
        let binding = self.registrar.bindings(&agent).first().map(|b| {
            let route = b.path.clone();
            (b.contact.clone(), b.source, b.transport, b.conn, route)
        });
        let Some(call) = self.calls.get(&caller) else {
            return;
        };
        let business = call.ivr.business.clone().unwrap_or_default();
        let class = call.info.class.as_str();
        let queue = call
            .queue
            .as_ref()
            .map(|q| q.queue.clone())
            .unwrap_or_default();
        let number = call
            .customer_leg()
            .and_then(|l| l.invite.as_ref())
            .map(|i| i.caller_number().to_string())
            .unwrap_or_default();
        let work = self.work_headers(caller);
        let number = work.as_ref().map_or(number, |(n, _, _)| n.clone());
        let repeat_of = call
            .repeat
            .as_ref()
            .map(|r| r.earlier_call.clone())
            .unwrap_or_default();
        let target = binding.map(|(contact, addr, transport, conn, route)| LegTarget {
            uri: contact,
            peer: Peer {
                transport,
                addr,
                conn,
            },
            // Registered through a proxy (RFC 3327): rung through it.
            route,
            from_user: "hotline".into(),
            from_display: "hotline".into(),
            auth: None,
        });
        // A PBX extension is rung through its trunk instead.
        let target = self.pbx_target(&agent).or(target);
        let leg = target.and_then(|target| {
            // What the agent's phone shows: queue, business type, class.
            let mut whisper = vec![
                ("X-Hotline-Queue", queue.as_str()),
                ("X-Hotline-Business", business.as_str()),
                ("X-Hotline-Class", class),
                ("X-Hotline-Caller", number.as_str()),
            ];
            if let Some((_, task, kind)) = &work {
                whisper.push(("X-Hotline-Task", task.as_str()));
                whisper.push(("X-Hotline-Task-Kind", kind));
            }
            if !repeat_of.is_empty() {
                // First-contact responsibility: the phone shows the caller
                // called before, and which call that was.
                whisper.push(("X-Hotline-Repeat-Of", repeat_of.as_str()));
            }
            self.place_leg(now, caller, &target, &whisper).ok()
        });
        match leg {
            Some(leg) => {
                info!(%agent, %leg, "offering the call to an agent");
                self.work_offered(caller);
                if let Some(call) = self.calls.get_mut(&caller) {
                    call.agent_legs.push((leg, agent));
                    if let Some(q) = call.queue.as_mut() {
                        q.offers += 1;
                        q.first_offer_at.get_or_insert(now);
                    }
                }
            }
            None => {
                warn!(%agent, "agent has no usable registration (or no RTP port): offer failed");
                self.acd.handle(
                    now,
                    AcdInput::OfferRejected {
                        caller,
                        agent,
                        reason: RejectReason::Failed,
                    },
                );
                self.drop_unanswered_work_call(caller);
            }
        }
    }

    /// What happened on an agent's leg: its media opens on answer (with
    /// the whisper), the offers stream gets a line, the ACD learns it.
    pub(super) fn agent_leg_event(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        event: LegEvent,
    ) {
        let Some(agent) = self.calls.get(&call).and_then(|c| c.agent_of(leg)) else {
            return;
        };
        info!(%leg, %agent, ?event, "agent leg");
        let input = match event {
            LegEvent::Answered => {
                self.start_media(now, call, leg);
                // The whisper: the agent hears the business type ("报修业务")
                // while the caller hears the agent's number.
                // A repeat caller: "this caller called before" first. A
                // task's call briefs the agent itself once connected.
                let whisper = self.calls.get(&call).and_then(|c| {
                    if c.work.as_ref().is_some_and(|w| !w.customer_first) {
                        return None;
                    }
                    if c.repeat.is_some() {
                        return c.prompt("repeat_caller", self.settings.default_language);
                    }
                    let business = c.ivr.business.as_deref()?;
                    c.prompt(business, self.settings.default_language)
                });
                if let Some(prompt) = whisper {
                    self.media(
                        call,
                        MediaCommand::Play {
                            leg,
                            prompt,
                            token: 0,
                        },
                    );
                }
                self.offer_line(now, call, leg, &agent, 200);
                AcdInput::OfferAnswered {
                    caller: call,
                    agent,
                }
            }
            LegEvent::Rejected { status, cancelled } => {
                let ended = self.end_leg(call, leg);
                if let Some(l) = &ended {
                    let status = if cancelled { 487 } else { status };
                    self.write_offer_line(now, call, l, &agent, status);
                }
                if cancelled {
                    // Our own CANCEL: the ACD already moved on.
                    self.drop_unanswered_work_call(call);
                    return;
                }
                AcdInput::OfferRejected {
                    caller: call,
                    agent,
                    reason: match status {
                        486 | 600 | 603 => RejectReason::Busy,
                        408 | 480 | 487 => RejectReason::NoAnswer,
                        _ => RejectReason::Failed,
                    },
                }
            }
            LegEvent::MediaUnusable => {
                if let Some(l) = self.end_leg(call, leg) {
                    self.write_offer_line(now, call, &l, &agent, 488);
                }
                AcdInput::OfferRejected {
                    caller: call,
                    agent,
                    reason: RejectReason::Failed,
                }
            }
            LegEvent::HungUp => {
                // After a REFER the transferring phone hangs up: the
                // caller stays.
                if self.transferring_agent_left(now, call, leg) {
                    return;
                }
                if self.work_agent_left_early(now, call, leg) {
                    return;
                }
                self.end_leg(call, leg);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.agent_hung_up = true;
                }
                self.acd.handle(
                    now,
                    AcdInput::AgentHungUp {
                        caller: call,
                        agent,
                    },
                );
                self.apply_acd(now);
                // The agent ended the call: the caller's leg ends too, or
                // first rates the service.
                return self.after_agent_left(now, call);
            }
            LegEvent::ReferReplaces { call_id } => {
                if let Err(e) = self.attended_transfer(now, call, leg, &call_id) {
                    info!(error = %e, "REFER with Replaces refused");
                    if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) {
                        l.notify_refer(
                            now,
                            &mut self.wire,
                            481,
                            "Call/Transaction Does Not Exist",
                            true,
                        );
                    }
                }
                return;
            }
            LegEvent::Refer(to) => {
                if let Err(e) = self.transfer(now, call, &to, Some(leg)) {
                    info!(error = %e, "REFER refused");
                    if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) {
                        l.notify_refer(now, &mut self.wire, 404, "Not Found", true);
                    }
                }
                return;
            }
            _ => return,
        };
        let rejected = matches!(input, AcdInput::OfferRejected { .. });
        self.acd.handle(now, input);
        self.apply_acd(now);
        if rejected {
            self.drop_unanswered_work_call(call);
        }
    }

    /// A response to a leg CANCELled as its call ended: ACKed (a 2xx that
    /// crossed the CANCEL is hung up), the offer's line written, the leg
    /// forgotten.
    pub(super) fn lingering_response(
        &mut self,
        now: Instant,
        leg: LegKey,
        resp: &crate::sip::message::SipResponse,
        outcome: InviteResponse,
    ) {
        let Some((call, l, _)) = self.lingering.get_mut(&leg) else {
            return;
        };
        let call = *call;
        match l.on_invite_response(now, &mut self.wire, resp, outcome) {
            Some(LegEvent::Progress { .. }) | None => {}
            Some(_) => self.finish_lingering(now, call, leg, 487),
        }
    }

    /// Timer B ran out on a leg whose call is gone.
    pub(super) fn finish_lingering(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        status: u16,
    ) {
        if let Some((_, l, Some(agent))) = self.lingering.remove(&leg) {
            self.write_offer_line(now, call, &l, &agent, status);
        }
    }

    /// Connects the caller to the agent who answered: "工号 0 0 7 为您服务"
    /// first when the queue announces agents.
    fn connect(&mut self, now: Instant, caller: CallKey, agent: &str) {
        let Some(leg) = self.ringing_leg_of(caller, agent) else {
            return;
        };
        let agent_first = self
            .calls
            .get(&caller)
            .and_then(|c| c.work.as_ref())
            .map(|w| !w.customer_first);
        if let Some(agent_first) = agent_first {
            self.work_agent_answered(now, caller, agent, leg);
            if agent_first {
                return;
            }
        }
        let number = self.agent_numbers.get(agent).cloned();
        let queue = self
            .calls
            .get(&caller)
            .and_then(|c| c.queue.as_ref())
            .map(|q| q.queue.clone());
        let queue_config = queue.and_then(|q| self.settings.queues.iter().find(|c| c.name == q));
        let announce = queue_config.is_some_and(|c| c.announce_agent);
        let wrap_up = queue_config.map(|c| c.wrap_up);
        // Recorded by the queue, the agent, or the business type.
        let business = self.calls.get(&caller).and_then(|c| c.ivr.business.clone());
        let record = queue_config.is_some_and(|c| c.record)
            || self.settings.record_agents.iter().any(|a| a == agent)
            || business.is_some_and(|b| self.settings.record_business_types.contains(&b));
        let notice = record && queue_config.is_none_or(|c| c.recording_notice);
        if let Some(call) = self.calls.get_mut(&caller) {
            if let Some(q) = call.queue.as_mut() {
                q.agent = Some(agent.to_string());
                q.agent_number = number.clone();
                q.result = Some(QueueExit::Answered);
                q.answered_at = Some(now);
                q.wrap_up = wrap_up;
            }
        }
        let then = AfterSequence::Bridge {
            agent: agent.to_string(),
            leg,
        };
        if let Some(call) = self.calls.get_mut(&caller) {
            call.controls.record = record;
        }
        // "您的通话可能会被录音", then "工号 0 0 7 为您服务", then the bridge.
        let mut names = Vec::new();
        if notice {
            names.push("recording_notice".to_string());
        }
        if let Some(n) = number.filter(|n| announce && !n.is_empty()) {
            names.push("agent_intro".to_string());
            names.extend(
                n.chars()
                    .filter(char::is_ascii_digit)
                    .map(|d| format!("digits/{d}")),
            );
            names.push("agent_serving".into());
        }
        if names.is_empty() {
            self.after_sequence(now, caller, then);
        } else {
            self.play_sequence(now, caller, &names, Some(then));
        }
    }

    /// Runs what an announcement was leading to.
    pub(super) fn after_sequence(&mut self, now: Instant, caller: CallKey, then: AfterSequence) {
        match then {
            AfterSequence::Bridge { agent, leg } => {
                let Some(call) = self.calls.get_mut(&caller) else {
                    return;
                };
                call.playing = None;
                if let Some(q) = call.queue.as_mut() {
                    q.bridged_at = Some(now);
                }
                call.controls.agent_connected(now, agent.clone());
                let customer = call.customer;
                let record = call.controls.record && call.controls.recording_file.is_none();
                info!(%agent, "caller bridged to agent");
                self.live_event(
                    now,
                    LiveEvent::QueueLeft {
                        call: caller,
                        result: QueueResult::Answered,
                    },
                );
                self.bridge(caller, customer, leg);
                if record {
                    self.start_call_recording(now, caller);
                }
            }
            AfterSequence::Moh => self.play_named(caller, "moh"),
            AfterSequence::DialCustomer => self.work_write_attempt(now, caller),
            AfterSequence::CallbackListen => self.rearm_callback_key(now, caller),
            AfterSequence::Hangup => self.callback_said(now, caller),
            AfterSequence::WaitForAgent => self.work_wait_for_agent(now, caller),
            AfterSequence::Transfer => self.continue_transfer(now, caller),
            AfterSequence::Requeue => self.requeue(now, caller),
            AfterSequence::Rebridge { leg } => {
                let Some(call) = self.calls.get_mut(&caller) else {
                    return;
                };
                call.playing = None;
                if let Some(agent) = call.agent_of(leg) {
                    call.controls.agent_connected(now, agent);
                }
                let customer = call.customer;
                self.bridge(caller, customer, leg);
            }
        }
    }

    /// "您前面还有 N 位客户在等待", and "预计等待时间约 M 分钟" when the ACD
    /// has an estimate, for a waiting caller with callers ahead.
    fn announce_position(
        &mut self,
        now: Instant,
        caller: CallKey,
        position: usize,
        expected_wait: Option<Duration>,
    ) {
        if !self.waiting(caller) || position <= 1 {
            return;
        }
        let mut names = vec!["queue_ahead".to_string()];
        names.extend(
            (position - 1)
                .to_string()
                .chars()
                .map(|d| format!("digits/{d}")),
        );
        names.push("queue_waiting".into());
        if let Some(wait) = expected_wait {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            names.push("queue_wait_about".into());
            names.extend(minutes.to_string().chars().map(|d| format!("digits/{d}")));
            names.push("queue_minutes".into());
        }
        self.play_sequence(now, caller, &names, Some(AfterSequence::Moh));
    }

    /// A waiting caller pressed the queue's exit key: out of the queue, to
    /// the IVR's fallback. Returns whether the key was taken.
    pub(super) fn queue_exit_key(&mut self, now: Instant, caller: CallKey, digit: char) -> bool {
        let Some(queue) = self
            .calls
            .get(&caller)
            .and_then(|c| c.queue.as_ref())
            .filter(|q| q.waiting())
            .map(|q| q.queue.clone())
        else {
            return false;
        };
        let exit = self
            .settings
            .queues
            .iter()
            .find(|q| q.name == queue)
            .and_then(|q| q.exit_key);
        if exit != Some(digit) {
            return false;
        }
        if let Some(call) = self.calls.get_mut(&caller) {
            call.digits.push(digit);
        }
        self.acd
            .handle(now, AcdInput::CallerPressedExit { caller, key: digit });
        self.apply_acd(now);
        true
    }

    /// Plays prompts one after the other; `then` runs after the last.
    pub(super) fn play_sequence(
        &mut self,
        now: Instant,
        key: CallKey,
        names: &[String],
        then: Option<AfterSequence>,
    ) {
        let fallback = self.settings.default_language;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let ids: VecDeque<PromptId> = names
            .iter()
            .filter_map(|n| call.prompt(n, fallback))
            .collect();
        call.sequence = ids;
        call.after_sequence = then;
        match call.sequence.pop_front() {
            Some(first) => self.play_id(key, first),
            None => {
                if let Some(then) = call.after_sequence.take() {
                    self.after_sequence(now, key, then);
                }
            }
        }
    }

    fn left_queue(&mut self, now: Instant, caller: CallKey, reason: LeaveReason) {
        let result = match &reason {
            LeaveReason::Completed { .. } => QueueExit::Answered,
            LeaveReason::Abandoned => QueueExit::Abandoned,
            LeaveReason::Timeout => QueueExit::Timeout,
            LeaveReason::Overflow { .. } => QueueExit::Overflow,
            LeaveReason::EmptyQueue => QueueExit::Empty,
            LeaveReason::ExitKey { .. } => QueueExit::ExitKey,
            LeaveReason::CallbackRequested { .. } => QueueExit::Callback,
            // A task's entry: its call's end says what happened.
            LeaveReason::Withdrawn => return,
        };
        let mut bridged = false;
        if let Some(q) = self.calls.get_mut(&caller).and_then(|c| c.queue.as_mut()) {
            q.result = Some(result);
            bridged = q.bridged_at.is_some();
            if !bridged {
                q.left_at = Some(now);
            }
        }
        // A bridged call's result was counted at the bridge.
        let live = match &reason {
            LeaveReason::Completed { .. } if bridged => None,
            LeaveReason::Completed { .. } => Some(QueueResult::EndedBeforeBridge),
            LeaveReason::Abandoned => Some(QueueResult::Abandoned),
            LeaveReason::Timeout => Some(QueueResult::Timeout),
            LeaveReason::Overflow { .. } => Some(QueueResult::Overflow),
            LeaveReason::EmptyQueue => Some(QueueResult::Empty),
            LeaveReason::ExitKey { .. } => Some(QueueResult::ExitKey),
            LeaveReason::CallbackRequested { .. } => Some(QueueResult::Callback),
            LeaveReason::Withdrawn => None,
        };
        if let Some(result) = live {
            self.live_event(
                now,
                LiveEvent::QueueLeft {
                    call: caller,
                    result,
                },
            );
        }
        match reason {
            LeaveReason::Completed { ended_by, .. } => {
                let outcome = match ended_by {
                    EndedBy::Caller => Outcome::CallerHangup,
                    EndedBy::Agent | EndedBy::Transfer => Outcome::Completed,
                };
                debug!(?outcome, "bridged call over");
            }
            LeaveReason::Abandoned | LeaveReason::Withdrawn => {}
            // The caller hears the callback is booked, then goodbye.
            LeaveReason::CallbackRequested { .. } => {}
            // Overflow to another queue, or to a node of the IVR program.
            LeaveReason::Overflow { target } => self.overflow(now, caller, &target),
            // Not answered in time, or nobody left: the IVR's fallback
            // (a message, by default) instead of an endless wait.
            _ => self.back_to_ivr(now, caller, result.as_str()),
        }
    }

    fn overflow(&mut self, now: Instant, caller: CallKey, target: &str) {
        info!(%target, "queue overflow");
        if self.settings.queues.iter().any(|q| q.name == target) {
            let earlier = self.calls.get_mut(&caller).and_then(|call| {
                call.playing = None;
                call.ivr.path.push(format!("queue:{target}"));
                call.queue.clone()
            });
            self.join_queue(now, caller, target.to_string());
            // For the record the caller's wait began in the first queue:
            // keep its entry time and offers.
            if let (Some(e), Some(q)) = (
                earlier,
                self.calls.get_mut(&caller).and_then(|c| c.queue.as_mut()),
            ) {
                q.joined_at = e.joined_at.or(q.joined_at);
                q.first_offer_at = e.first_offer_at.or(q.first_offer_at);
                q.offers += e.offers;
            }
            return;
        }
        let jumped = self
            .calls
            .get_mut(&caller)
            .is_some_and(|c| c.ivr.handle_overflow(now, target));
        if jumped {
            self.apply_ivr(now, caller);
        } else {
            self.back_to_ivr(now, caller, "overflow");
        }
    }

    /// The queue could not serve the caller: the IVR takes over again.
    fn back_to_ivr(&mut self, now: Instant, caller: CallKey, why: &str) {
        if let Some(call) = self.calls.get_mut(&caller) {
            debug!(why, "back to the IVR");
            call.playing = None;
            call.ivr.handle_queue_unavailable(now);
        }
        self.apply_ivr(now, caller);
    }

    /// The caller's call is ending: the ACD lets go of it (the call's legs
    /// to agents are hung up as the call ends).
    pub(super) fn caller_gone(&mut self, now: Instant, caller: CallKey) {
        if self
            .calls
            .get(&caller)
            .and_then(|c| c.queue.as_ref())
            .is_none()
        {
            return;
        }
        // The ACD ignores a caller it no longer has, so always tell it: a
        // caller hanging up during the agent announcement must free the
        // agent too.
        self.acd.handle(now, AcdInput::CallerHungUp { caller });
        self.apply_acd(now);
    }

    /// An agent's phone registered or its last binding went.
    pub(super) fn agent_reachable(&mut self, now: Instant, agent: &str, reachable: bool) {
        if self.is_pbx_agent(agent) {
            return; // always reachable through its PBX
        }
        self.acd.handle(
            now,
            AcdInput::AgentReachable {
                agent: agent.to_string(),
                reachable,
            },
        );
        if reachable && self.login_on_register.contains(agent) {
            self.acd.handle(
                now,
                AcdInput::AgentLogin {
                    agent: agent.to_string(),
                },
            );
        }
        self.apply_acd(now);
    }

    /// Plays a prompt by name in the call's language (music on hold, the
    /// apology); its end comes back through the IVR's playback handling.
    pub(super) fn play_named(&mut self, key: CallKey, name: &str) {
        let fallback = self.settings.default_language;
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(prompt) = call.prompt(name, fallback) else {
            warn!(prompt = %name, "prompt missing");
            return;
        };
        self.play_id(key, prompt);
    }

    /// Plays one prompt to the customer; its end comes back with this
    /// call's next token.
    pub(super) fn play_id(&mut self, key: CallKey, prompt: PromptId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let token = call.next_play_token();
        let leg = call.prompt_leg();
        self.media(key, MediaCommand::Play { leg, prompt, token });
    }

    /// A feature code, when the dialled number is one and the caller is an
    /// agent calling from a registered phone (the address it registered
    /// from); anyone else dialling a code gets a refusal.
    pub(super) fn feature_for(&self, req: &SipRequest, peer: Peer) -> Option<Feature> {
        let dialled = req.uri_user();
        let f = &self.settings.features;
        use crate::tasks::TaskOutcome;
        let make: fn(usize) -> Feature = if dialled == f.login {
            Feature::Login
        } else if dialled == f.logout {
            Feature::Logout
        } else if dialled == f.on_break {
            Feature::Break
        } else if dialled == f.available {
            Feature::Available
        } else if dialled == f.task_satisfied {
            |i| Feature::TaskOutcome(i, TaskOutcome::Satisfied)
        } else if dialled == f.task_not_satisfied {
            |i| Feature::TaskOutcome(i, TaskOutcome::NotSatisfied)
        } else if dialled == f.task_not_reached {
            |i| Feature::TaskOutcome(i, TaskOutcome::NotReached)
        } else {
            return None;
        };
        let agent = req.from_user();
        let registered_here = self
            .registrar
            .bindings(agent)
            .iter()
            .any(|b| b.source.ip() == peer.addr.ip());
        let index = self.settings.agents.iter().position(|a| a.id == agent);
        match (registered_here, index) {
            (true, Some(i)) => Some(make(i)),
            _ => Some(Feature::Refused),
        }
    }

    /// Applies a feature code and says so; the call ends after the prompt.
    pub(super) fn run_feature(&mut self, now: Instant, key: CallKey, feature: Feature) {
        let agent = |i: usize| self.settings.agents[i].id.clone();
        let (input, prompt) = match feature {
            Feature::Login(i) => (
                Some(AcdInput::AgentLogin { agent: agent(i) }),
                "agent_logged_in",
            ),
            Feature::Logout(i) => (
                Some(AcdInput::AgentLogout { agent: agent(i) }),
                "agent_logged_out",
            ),
            Feature::Break(i) => (
                Some(AcdInput::AgentBreak {
                    agent: agent(i),
                    reason: "feature code".into(),
                }),
                "agent_on_break",
            ),
            Feature::Available(i) => (
                Some(AcdInput::AgentAvailable { agent: agent(i) }),
                "agent_logged_in",
            ),
            Feature::TaskOutcome(i, outcome) => {
                let saved = self.agent_task_outcome(now, &agent(i), outcome);
                (
                    None,
                    if saved {
                        "task_outcome_saved"
                    } else {
                        "agent_unknown"
                    },
                )
            }
            Feature::Refused => (None, "agent_unknown"),
        };
        if let Some(input) = input {
            info!(?input, "agent feature code");
            self.acd.handle(now, input);
            self.apply_acd(now);
        }
        if let Some(call) = self.calls.get_mut(&key) {
            let dialled = call
                .customer_leg()
                .and_then(|l| l.invite.as_ref())
                .map(|i| i.uri_user().to_string())
                .unwrap_or_default();
            call.ivr.path.push(format!("feature:{dialled}"));
        }
        self.play_named(key, prompt);
    }

    /// One line per offer in `offers-<date>.jsonl`: agent, outcome, ring time.
    fn offer_line(&mut self, now: Instant, call: CallKey, leg: LegKey, agent: &str, status: u16) {
        self.ring_timeouts.remove(&leg);
        let Some(l) = self.calls.get(&call).and_then(|c| c.leg(leg)) else {
            return;
        };
        let line = self.offer_line_text(now, call, l, agent, status, false);
        self.wire.push(line);
    }

    fn write_offer_line(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: &Leg,
        agent: &str,
        status: u16,
    ) {
        let timed_out = self.ring_timeouts.remove(&leg.key);
        let line = self.offer_line_text(now, call, leg, agent, status, timed_out);
        self.wire.push(line);
    }

    fn offer_line_text(
        &self,
        now: Instant,
        call: CallKey,
        leg: &Leg,
        agent: &str,
        status: u16,
        timed_out: bool,
    ) -> Output {
        let outcome = match status {
            200 => "answered",
            // Our CANCEL after the ring timeout: the queue_log's
            // RINGNOANSWER, not a cancel for another reason.
            487 if timed_out => "no_answer",
            487 => "cancelled",
            486 | 600 | 603 => "busy",
            408 | 480 => "no_answer",
            0 => "no_response",
            _ => "failed",
        };
        let ended = cdr::format_ms(self.wall_ms(now));
        let line = serde_json::json!({
            "version": 1,
            "call_id": self.record_id(call.0),
            "offer_id": self.record_id(leg.key.0),
            "agent": agent,
            "agent_call_id": leg.dialog.call_id,
            "offered_at": cdr::format_ms(self.wall_ms(leg.created_at)),
            "ended_at": ended,
            "ring_ms": now.saturating_duration_since(leg.created_at).as_millis() as u64,
            "sip_status": status,
            "outcome": outcome,
        })
        .to_string();
        Output::Line {
            file: format!("offers-{}.jsonl", ended.get(..10).unwrap_or("undated")),
            line,
        }
    }
}
