//! The engine's side of the ACD: callers the IVR queues join the pure
//! [`Acd`]; its actions ring agents' phones (legs), bridge audio, play the
//! apology and send callers back to the IVR; what happens on legs and to
//! registrations goes back into it.

use std::time::Instant;

use super::agent_leg::{LegEvent, LegKey, LegTarget};
use super::*;
use crate::acd::{caller_priority, AcdAction, AcdInput, EndedBy, LeaveReason, RejectReason};
use crate::live::{LiveEvent, QueueResult};

/// A feature code an agent dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feature {
    Login(AgentIndex),
    Logout(AgentIndex),
    Break(AgentIndex),
    Available(AgentIndex),
    /// Dialled by someone who is not a registered agent.
    Refused,
}

/// What follows an announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AfterSequence {
    /// Connect the caller to the agent who answered.
    Bridge { agent: String },
    /// Back to music on hold.
    Moh,
}

/// The agent a feature call is for, as an index into the agent table.
pub(super) type AgentIndex = usize;

/// Where a queued call stands, for its record.
#[derive(Debug, Clone, Default)]
pub(super) struct QueueVisit {
    pub queue: String,
    pub joined_at: Option<Instant>,
    pub first_offer_at: Option<Instant>,
    pub bridged_at: Option<Instant>,
    /// The agent's phone answered (the announcement plays before the bridge).
    pub answered_at: Option<Instant>,
    /// The queue's wrap-up after this call, for the record.
    pub wrap_up: Option<std::time::Duration>,
    /// Left the queue unanswered (refused, timed out, ...).
    pub left_at: Option<Instant>,
    pub agent: Option<String>,
    pub agent_number: Option<String>,
    pub offers: u32,
    /// How the caller left the queue (answered, abandoned, timeout, ...).
    pub result: Option<&'static str>,
    /// The agent leg once bridged (or ringing, with ring-all several).
    pub legs: Vec<LegKey>,
}

impl Engine {
    /// The IVR hands the caller to a queue.
    pub(super) fn join_queue(&mut self, now: Instant, key: CallKey, queue: String) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let priority = caller_priority(call.customer.class, call.customer.vip);
        let caller_id = call.invite.from_user().to_string();
        let arrival = call.invite_at;
        call.queue = Some(QueueVisit {
            queue: queue.clone(),
            joined_at: Some(now),
            ..QueueVisit::default()
        });
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
            },
        );
        self.apply_acd(now);
        let waiting = self
            .calls
            .get(&key)
            .and_then(|c| c.queue.as_ref())
            .is_some_and(|q| q.result.is_none() && q.bridged_at.is_none());
        if waiting {
            self.play_named(key, "moh");
        }
    }

    /// Carries out what the ACD asks and re-arms its timer.
    pub(super) fn apply_acd(&mut self, now: Instant) {
        while let Some(action) = self.acd.poll_action() {
            match action {
                AcdAction::Offer { caller, agent } => self.offer(now, caller, agent),
                AcdAction::CancelOffer { caller, agent } => {
                    if let Some(leg) = self.offers.remove(&(caller, agent)) {
                        self.cancel_leg(now, leg);
                    }
                }
                AcdAction::Bridge { caller, agent } => self.bridge(now, caller, &agent),
                AcdAction::Announce {
                    caller,
                    position,
                    expected_wait,
                } => self.announce_position(now, caller, position, expected_wait),
                // "Sorry to have kept you waiting"; the music resumes when it
                // ends, as after any prompt while waiting.
                AcdAction::Apologise { caller } => self.play_named(caller, "sorry_wait"),
                AcdAction::Leave { caller, reason } => self.left_queue(now, caller, reason),
                AcdAction::JoinRefused { caller, reason } => {
                    info!(caller, ?reason, "queue refused the caller");
                    self.live_event(
                        now,
                        LiveEvent::QueueLeft {
                            call: caller,
                            result: QueueResult::Refused,
                        },
                    );
                    if let Some(q) = self.calls.get_mut(&caller).and_then(|c| c.queue.as_mut()) {
                        q.result = Some("refused");
                        q.left_at = Some(now);
                    }
                    self.back_to_ivr(now, caller, "refused");
                }
                AcdAction::QueueLog(event) => {
                    let callid = event
                        .caller
                        .map(|c| super::call_id(self.epoch, c))
                        .unwrap_or_default();
                    let line = event.to_line(self.wall_ms(now) / 1000, &callid);
                    self.outputs.push_back(Output::Line {
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
            self.timers.schedule(at, Wake::Acd);
        }
    }

    pub(super) fn acd_timeout(&mut self, now: Instant) {
        self.acd.handle_timeout(now);
        self.apply_acd(now);
    }

    /// Rings the agent's newest registered phone with the caller.
    fn offer(&mut self, now: Instant, caller: CallKey, agent: String) {
        let binding = self
            .registrar
            .bindings(&agent)
            .first()
            .map(|b| (b.contact.clone(), b.source, b.transport_reliable, b.conn));
        let Some(call) = self.calls.get(&caller) else {
            return;
        };
        let codec = call.negotiated.map(|n| n.codec);
        let business = call.ivr.business.clone().unwrap_or_default();
        let class = call.customer.class.as_str();
        let queue = call
            .queue
            .as_ref()
            .map(|q| q.queue.clone())
            .unwrap_or_default();
        let number = call.invite.from_user().to_string();
        let leg = binding.and_then(|(contact, addr, reliable, conn)| {
            let peer = Peer {
                transport: if reliable {
                    Transport::Tcp
                } else {
                    Transport::Udp
                },
                addr,
                conn,
            };
            // What the agent's phone shows: queue, business type, class.
            let whisper = [
                ("X-Hotline-Queue", queue.as_str()),
                ("X-Hotline-Business", business.as_str()),
                ("X-Hotline-Class", class),
                ("X-Hotline-Caller", number.as_str()),
            ];
            let target = LegTarget {
                agent: &agent,
                contact: &contact,
                peer,
            };
            self.place_leg(now, caller, target, codec, &whisper)
        });
        match leg {
            Some(leg) => {
                self.offers.insert((caller, agent), leg);
                if let Some(q) = self.calls.get_mut(&caller).and_then(|c| c.queue.as_mut()) {
                    q.offers += 1;
                    q.first_offer_at.get_or_insert(now);
                    q.legs.push(leg);
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
            }
        }
    }

    fn bridge(&mut self, now: Instant, caller: CallKey, agent: &str) {
        let Some(leg) = self.offers.remove(&(caller, agent.to_string())) else {
            return;
        };
        let number = self.agent_numbers.get(agent).cloned();
        let queue = self
            .calls
            .get(&caller)
            .and_then(|c| c.queue.as_ref())
            .map(|q| q.queue.clone());
        let queue_config = queue.and_then(|q| self.settings.queues.iter().find(|c| c.name == q));
        let announce = queue_config.is_some_and(|c| c.announce_agent);
        let wrap_up = queue_config.map(|c| c.wrap_up);
        if let Some(call) = self.calls.get_mut(&caller) {
            if let Some(q) = call.queue.as_mut() {
                q.agent = Some(agent.to_string());
                q.agent_number = number.clone();
                q.result = Some("answered");
                q.answered_at = Some(now);
                q.wrap_up = wrap_up;
                q.legs = vec![leg];
            }
        }
        let then = AfterSequence::Bridge {
            agent: agent.to_string(),
        };
        match number.filter(|n| announce && !n.is_empty()) {
            // "工号 0 0 7 为您服务", then the two are connected.
            Some(n) => {
                let mut names = vec!["agent_intro".to_string()];
                names.extend(
                    n.chars()
                        .filter(char::is_ascii_digit)
                        .map(|d| format!("digits/{d}")),
                );
                names.push("agent_serving".into());
                self.play_sequence(now, caller, &names, Some(then));
            }
            None => self.after_sequence(now, caller, then),
        }
    }

    /// Runs what an announcement was leading to.
    pub(super) fn after_sequence(&mut self, now: Instant, caller: CallKey, then: AfterSequence) {
        match then {
            AfterSequence::Bridge { agent } => {
                let Some(call) = self.calls.get_mut(&caller) else {
                    return;
                };
                call.playing = None;
                if let Some(q) = call.queue.as_mut() {
                    q.bridged_at = Some(now);
                }
                info!(%agent, "caller bridged to agent");
                self.live_event(
                    now,
                    LiveEvent::QueueLeft {
                        call: caller,
                        result: QueueResult::Answered,
                    },
                );
                self.outputs.push_back(Output::MediaBridge { call: caller });
            }
            AfterSequence::Moh => self.play_named(caller, "moh"),
        }
    }

    /// "您前面还有 N 位客户在等待", and "预计等待时间约 M 分钟" when the ACD
    /// has an estimate, for a waiting caller with callers ahead.
    fn announce_position(
        &mut self,
        now: Instant,
        caller: CallKey,
        position: usize,
        expected_wait: Option<std::time::Duration>,
    ) {
        let waiting = self
            .calls
            .get(&caller)
            .and_then(|c| c.queue.as_ref())
            .is_some_and(|q| q.result.is_none() && q.bridged_at.is_none());
        if !waiting || position <= 1 {
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
            .filter(|q| q.result.is_none() && q.bridged_at.is_none())
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
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let language = call.ivr.language;
        let ids: VecDeque<PromptId> = names
            .iter()
            .filter_map(|n| {
                call.prompts
                    .get(language, n)
                    .or_else(|| call.prompts.get(self.settings.default_language, n))
            })
            .collect();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
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
            LeaveReason::Completed { .. } => "answered",
            LeaveReason::Abandoned => "abandoned",
            LeaveReason::Timeout => "timeout",
            LeaveReason::Overflow { .. } => "overflow",
            LeaveReason::EmptyQueue => "empty",
            LeaveReason::ExitKey { .. } => "exit_key",
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
                    EndedBy::Agent => Outcome::Completed,
                };
                debug!(?outcome, "bridged call over");
            }
            LeaveReason::Abandoned => {}
            // Overflow to another queue, or to a node of the IVR program.
            LeaveReason::Overflow { target } => self.overflow(now, caller, &target),
            // Not answered in time, or nobody left: the IVR's fallback
            // (a message, by default) instead of an endless wait.
            _ => self.back_to_ivr(now, caller, result),
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

    /// What happened on an agent's leg, for the ACD.
    pub(super) fn leg_event_to_acd(
        &mut self,
        now: Instant,
        caller: CallKey,
        agent: &str,
        event: LegEvent,
    ) {
        let input = match event {
            LegEvent::Answered => AcdInput::OfferAnswered {
                caller,
                agent: agent.to_string(),
            },
            LegEvent::Rejected(status) => {
                self.offers.remove(&(caller, agent.to_string()));
                AcdInput::OfferRejected {
                    caller,
                    agent: agent.to_string(),
                    reason: match status {
                        486 | 600 | 603 => RejectReason::Busy,
                        408 | 480 | 487 => RejectReason::NoAnswer,
                        _ => RejectReason::Failed,
                    },
                }
            }
            LegEvent::HungUp => {
                if let Some(call) = self.calls.get_mut(&caller) {
                    call.agent_hung_up = true;
                }
                AcdInput::AgentHungUp {
                    caller,
                    agent: agent.to_string(),
                }
            }
        };
        self.acd.handle(now, input);
        self.apply_acd(now);
    }

    /// The caller's call is ending: tell the ACD and drop the agent's leg.
    pub(super) fn caller_gone(&mut self, now: Instant, caller: CallKey) {
        let Some(visit) = self.calls.get(&caller).and_then(|c| c.queue.clone()) else {
            return;
        };
        // The ACD ignores a caller it no longer has, so always tell it: a
        // caller hanging up during the agent announcement must free the
        // agent too.
        self.acd.handle(now, AcdInput::CallerHungUp { caller });
        self.apply_acd(now);
        for leg in visit.legs {
            self.hangup_leg(now, leg);
        }
        self.offers.retain(|(c, _), _| *c != caller);
    }

    /// An agent's phone registered or its last binding went.
    pub(super) fn agent_reachable(&mut self, now: Instant, agent: &str, reachable: bool) {
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
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(prompt) = call.prompt(name, self.settings.default_language) else {
            warn!(prompt = %name, "prompt missing");
            return;
        };
        self.play_id(key, prompt);
    }

    /// Plays one prompt; its end comes back with this call's next token.
    pub(super) fn play_id(&mut self, key: CallKey, prompt: PromptId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.next_token = call.next_token.wrapping_add(1);
        let token = call.next_token;
        call.playing = Some(token);
        self.outputs.push_back(Output::MediaPlay {
            call: key,
            prompt,
            token,
        });
    }

    /// A feature code, when the dialled number is one and the caller is an
    /// agent calling from a registered phone (the address it registered
    /// from); anyone else dialling a code gets a refusal.
    pub(super) fn feature_for(&self, req: &SipRequest, peer: Peer) -> Option<Feature> {
        let dialled = req.uri_user();
        let f = &self.settings.features;
        let make: fn(usize) -> Feature = if dialled == f.login {
            Feature::Login
        } else if dialled == f.logout {
            Feature::Logout
        } else if dialled == f.on_break {
            Feature::Break
        } else if dialled == f.available {
            Feature::Available
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
            Feature::Refused => (None, "agent_unknown"),
        };
        if let Some(input) = input {
            info!(?input, "agent feature code");
            self.acd.handle(now, input);
            self.apply_acd(now);
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.ivr
                .path
                .push(format!("feature:{}", call.invite.uri_user()));
        }
        self.play_named(key, prompt);
    }
}
