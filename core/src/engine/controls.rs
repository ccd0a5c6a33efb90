//! In-call controls: an agent puts the caller on hold (music, with a word
//! before and an apology after), and, on queues that ask, the caller rates
//! the service when the agent hangs up first.

use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::info;

use super::Engine;
use crate::acd::AcdInput;
use crate::call::controls::{Survey, Transfer, TransferTarget, Transferring};
use crate::call::AfterSequence;
use crate::cdr::{Disposition, Outcome};
use crate::ids::{CallKey, LegKey};
use crate::io::Peer;
use crate::leg::uac::LegTarget;
use crate::leg::{Leg, LegEvent};
use crate::media::call_media::MediaCommand;
use crate::wire::{CallTimer, Wake};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    #[error("no such call")]
    NoCall,
    #[error("the call is not connected to an agent")]
    NotBridged,
    #[error("the call is not on hold")]
    NotHeld,
    #[error("the call is already on hold")]
    AlreadyHeld,
    #[error("no queue, agent or number {0:?} to transfer to")]
    UnknownTarget(String),
    #[error("a transfer of this call is already under way")]
    Transferring,
    #[error("no answered consultation call to join the caller with")]
    NoConsultation,
}

impl Engine {
    /// The call in progress with this id (as in its record, `hl-...-N`).
    pub fn call_by_id(&self, id: &str) -> Option<CallKey> {
        let prefix = crate::call::record_id_of(&self.clock, 0);
        let prefix = prefix.strip_suffix('0')?;
        let n: u64 = id.strip_prefix(prefix)?.parse().ok()?;
        let key = CallKey(n);
        self.calls.contains_key(&key).then_some(key)
    }

    /// The queue settings of a call's queue.
    fn queue_config_of(&self, call: CallKey) -> Option<&crate::acd::QueueConfig> {
        let queue = self.calls.get(&call)?.queue.as_ref()?.queue.clone();
        self.settings.queues.iter().find(|q| q.name == queue)
    }

    /// Puts a connected caller on hold: the bridge is lifted, the caller
    /// hears the hold prompt, then music.
    pub fn hold(&mut self, now: Instant, call: CallKey) -> Result<(), ControlError> {
        let c = self.calls.get(&call).ok_or(ControlError::NoCall)?;
        if c.controls.held_since.is_some() {
            return Err(ControlError::AlreadyHeld);
        }
        let (a, b) = c.bridge.ok_or(ControlError::NotBridged)?;
        let partner = if a == c.customer { b } else { a };
        let prompt = self
            .queue_config_of(call)
            .and_then(|q| q.hold_prompt.clone());
        let c = self.calls.get_mut(&call).ok_or(ControlError::NoCall)?;
        c.controls.held_since = Some(now);
        c.controls.held_partner = Some(partner);
        c.controls.holds += 1;
        c.bridge = None;
        info!("caller put on hold");
        self.media(call, MediaCommand::Unbridge);
        self.play_named(call, prompt.as_deref().unwrap_or("moh"));
        Ok(())
    }

    /// Takes the caller off hold: the apology, then the bridge again.
    pub fn resume(&mut self, now: Instant, call: CallKey) -> Result<(), ControlError> {
        let prompt = self
            .queue_config_of(call)
            .and_then(|q| q.resume_prompt.clone());
        let c = self.calls.get_mut(&call).ok_or(ControlError::NoCall)?;
        let since = c.controls.held_since.take().ok_or(ControlError::NotHeld)?;
        c.controls.hold_total += now.saturating_duration_since(since);
        let partner = c
            .controls
            .held_partner
            .take()
            .ok_or(ControlError::NotHeld)?;
        let customer = c.customer;
        info!(
            held_ms = now.saturating_duration_since(since).as_millis() as u64,
            "caller resumed"
        );
        self.media(call, MediaCommand::StopPlayback { leg: customer });
        let then = AfterSequence::Rebridge { leg: partner };
        match prompt {
            Some(p) => self.play_sequence(now, call, &[p], Some(then)),
            None => self.after_sequence(now, call, then),
        }
        Ok(())
    }

    /// An agent's phone changed its media: a hold (sendonly or inactive)
    /// or a resume (sendrecv again) from the phone itself.
    pub(super) fn agent_media_changed(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        sending: bool,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let bridged_with_leg = c.bridge.is_some_and(|(a, b)| a == leg || b == leg);
        let held_with_leg = c.controls.held_partner == Some(leg);
        if !sending && bridged_with_leg {
            let _ = self.hold(now, call);
        } else if sending && held_with_leg {
            let _ = self.resume(now, call);
        }
    }

    /// The agent hung up first: on a queue with a survey the caller is
    /// asked to rate the service; otherwise the call ends.
    pub(super) fn after_agent_left(&mut self, now: Instant, call: CallKey) {
        self.end_hold(now, call);
        if let Some(c) = self.calls.get_mut(&call) {
            c.controls.agent_parted(now);
        }
        let survey = self.queue_config_of(call).is_some_and(|q| q.survey);
        let bridged = self
            .calls
            .get(&call)
            .and_then(|c| c.queue.as_ref())
            .is_some_and(|q| q.bridged_at.is_some());
        if !(survey && bridged) {
            return self.hangup(now, call, Outcome::Completed, Disposition::Answered);
        }
        self.start_survey(call);
    }

    /// Asks the caller to rate the service (the agent has left).
    fn start_survey(&mut self, call: CallKey) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.controls.survey = Some(Survey {
            asked: 1,
            deadline: None,
            answered: false,
        });
        info!("asking the caller to rate the service");
        let prompt = self.survey_setting(call, |q| q.survey_prompt.clone());
        self.play_named(call, &prompt);
    }

    /// A survey setting of the call's queue (the defaults without one).
    fn survey_setting<T>(&self, call: CallKey, get: impl Fn(&crate::acd::QueueConfig) -> T) -> T {
        match self.queue_config_of(call) {
            Some(q) => get(q),
            None => get(&crate::acd::QueueConfig::new("")),
        }
    }

    /// A hold still running when the agent's leg goes: its time counts.
    pub(super) fn end_hold(&mut self, now: Instant, call: CallKey) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(since) = c.controls.held_since.take() {
                c.controls.hold_total += now.saturating_duration_since(since);
                c.controls.held_partner = None;
            }
        }
    }

    /// A prompt ended on a call with a control running: music goes on
    /// while on hold; the survey waits for its key, or ends the call once
    /// thanked. Returns false when no control took it.
    pub(super) fn control_playback_finished(&mut self, now: Instant, call: CallKey) -> bool {
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        if c.controls.held_since.is_some() {
            self.play_named(call, "moh");
            return true;
        }
        let Some(s) = c.controls.survey.as_mut() else {
            return false;
        };
        if s.answered {
            self.hangup(now, call, Outcome::Completed, Disposition::Answered);
            return true;
        }
        let at = now + self.survey_setting(call, |q| q.survey_timeout);
        let Some(s) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.controls.survey.as_mut())
        else {
            return false;
        };
        s.deadline = Some(at);
        self.wire
            .timers
            .schedule(at, Wake::Call(call, CallTimer::Survey));
        true
    }

    /// A key during the survey: 1 to 5 is the rating. Returns false when
    /// no survey is running.
    pub(super) fn survey_key(&mut self, now: Instant, call: CallKey, digit: char) -> bool {
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let Some(s) = c.controls.survey.as_mut() else {
            return false;
        };
        if s.answered {
            return true;
        }
        let keys = self.survey_setting(call, |q| q.survey_keys.clone());
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let Some(s) = c.controls.survey.as_mut() else {
            return false;
        };
        if let Some(score) = keys
            .find(digit)
            .map(|i| i as u32 + 1)
            .filter(|d| (1..=5).contains(d))
        {
            s.answered = true;
            s.deadline = None;
            c.controls.satisfaction = Some(score as u8);
            info!(score, "survey answered");
            let customer = c.customer;
            self.media(call, MediaCommand::StopPlayback { leg: customer });
            let thanks = self.survey_setting(call, |q| q.survey_thanks.clone());
            self.play_named(call, &thanks);
        }
        let _ = now;
        true
    }

    /// No rating in time: the question once more, then the call ends.
    pub(super) fn survey_timeout(&mut self, now: Instant, call: CallKey) {
        let Some(s) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.controls.survey.as_mut())
        else {
            return;
        };
        if s.answered || s.deadline.is_none_or(|d| now < d) {
            return;
        }
        if s.asked < 2 {
            s.asked += 1;
            s.deadline = None;
            let prompt = self.survey_setting(call, |q| q.survey_prompt.clone());
            self.play_named(call, &prompt);
        } else {
            info!("no rating: the call ends");
            self.hangup(now, call, Outcome::Completed, Disposition::Answered);
        }
    }
}

// ---- transfers ------------------------------------------------------------

/// How long a transfer target rings before the caller goes back.
pub const TRANSFER_RING: Duration = Duration::from_secs(20);

impl Engine {
    /// Where `to` points: a queue (by name or extension), an agent (by id
    /// or number), or else a number through the trunk.
    pub(super) fn transfer_target(&self, to: &str) -> Option<TransferTarget> {
        let to = to.trim();
        if let Some(q) = to.strip_prefix("queue:") {
            return self
                .settings
                .queues
                .iter()
                .any(|c| c.name == q)
                .then(|| TransferTarget::Queue(q.to_string()));
        }
        if let Some(a) = to.strip_prefix("agent:") {
            return self
                .settings
                .agents
                .iter()
                .any(|c| c.id == a)
                .then(|| TransferTarget::Agent(a.to_string()));
        }
        let to = to.strip_prefix("number:").unwrap_or(to);
        if let Some(q) = self
            .settings
            .queues
            .iter()
            .find(|c| c.name == to || c.extension.as_deref() == Some(to))
        {
            return Some(TransferTarget::Queue(q.name.clone()));
        }
        if let Some(a) = self
            .settings
            .agents
            .iter()
            .find(|c| c.id == to || c.number == to)
        {
            return Some(TransferTarget::Agent(a.id.clone()));
        }
        let digits = to.trim_start_matches('+');
        (!digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && !self.trunks.is_empty())
        .then(|| TransferTarget::Number(to.to_string()))
    }

    /// The extension the caller is told for a target.
    fn extension_of(&self, target: &TransferTarget) -> String {
        match target {
            TransferTarget::Queue(q) => self
                .settings
                .queues
                .iter()
                .find(|c| &c.name == q)
                .and_then(|c| c.extension.clone())
                .unwrap_or_default(),
            TransferTarget::Agent(a) => self.agent_numbers.get(a).cloned().unwrap_or_default(),
            TransferTarget::Number(n) => n.clone(),
            TransferTarget::Survey => String::new(),
        }
    }

    /// Transfers a connected caller (blind): the caller hears the
    /// announcement with the target's extension ("正在为您转接，分机号 8 0 0
    /// 2"), then is queued, or rung through to the agent or number. A
    /// target that does not answer sends the caller back to the agent who
    /// transferred, or to the queue: never dropped. `refer` is the leg
    /// whose REFER asked for it (told of progress by NOTIFY).
    pub fn transfer(
        &mut self,
        now: Instant,
        call: CallKey,
        to: &str,
        refer: Option<LegKey>,
    ) -> Result<(), ControlError> {
        if to.trim().eq_ignore_ascii_case("survey") {
            return self.transfer_to_survey(now, call, refer);
        }
        let target = self
            .transfer_target(to)
            .ok_or_else(|| ControlError::UnknownTarget(to.to_string()))?;
        let c = self.calls.get(&call).ok_or(ControlError::NoCall)?;
        if c.controls.transferring.is_some() {
            return Err(ControlError::Transferring);
        }
        let partner = c.partner().ok_or(ControlError::NotBridged)?;
        let from = c.agent_of(partner);
        self.end_hold(now, call);
        let extension = self.extension_of(&target);
        let mut names = vec!["transfer_to".to_string()];
        names.extend(
            extension
                .chars()
                .filter(char::is_ascii_digit)
                .map(|d| format!("digits/{d}")),
        );
        let Some(c) = self.calls.get_mut(&call) else {
            return Err(ControlError::NoCall);
        };
        info!(to = %target.describe(), "transfer");
        c.bridge = None;
        c.controls.agent_parted(now);
        c.controls.transfers.push(Transfer {
            from,
            to: target.clone(),
            at: now,
            result: None,
        });
        c.controls.transferring = Some(Transferring {
            leg: None,
            from_leg: Some(partner),
            refer,
        });
        self.media(call, MediaCommand::Unbridge);
        self.refer_progress(now, call, 100, "Trying", false);
        self.play_sequence(now, call, &names, Some(AfterSequence::Transfer));
        Ok(())
    }

    /// The agent hands the caller to the survey (REFER to `survey`, or the
    /// API): their leg ends, they go to wrap-up, the caller is asked to
    /// rate the service, whatever the queue's `survey` says.
    fn transfer_to_survey(
        &mut self,
        now: Instant,
        call: CallKey,
        refer: Option<LegKey>,
    ) -> Result<(), ControlError> {
        let c = self.calls.get(&call).ok_or(ControlError::NoCall)?;
        if c.controls.transferring.is_some() || c.controls.survey.is_some() {
            return Err(ControlError::Transferring);
        }
        let partner = c.partner().ok_or(ControlError::NotBridged)?;
        let from = c.agent_of(partner);
        info!("transfer to the survey");
        self.end_hold(now, call);
        let Some(c) = self.calls.get_mut(&call) else {
            return Err(ControlError::NoCall);
        };
        c.controls.agent_parted(now);
        c.controls.transfers.push(Transfer {
            from: from.clone(),
            to: TransferTarget::Survey,
            at: now,
            result: Some("survey"),
        });
        c.bridge = None;
        if let Some(l) = refer.and_then(|r| c.leg_mut(r)) {
            l.notify_refer(now, &mut self.wire, 200, "OK", true);
        }
        self.media(call, MediaCommand::Unbridge);
        self.hangup_leg(now, call, partner);
        if let Some(agent) = from {
            self.agent_transferred(now, call, agent);
        }
        self.start_survey(call);
        Ok(())
    }

    /// The announcement is over: the caller moves to the target.
    pub(super) fn continue_transfer(&mut self, now: Instant, call: CallKey) {
        let Some(target) = self
            .calls
            .get(&call)
            .and_then(|c| c.controls.transfers.last())
            .map(|t| t.to.clone())
        else {
            return;
        };
        match target {
            TransferTarget::Queue(queue) => {
                self.refer_progress(now, call, 200, "OK", true);
                self.release_transferring_agent(now, call);
                self.transfer_done(call, "queued");
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ivr.path.push(format!("transfer:queue:{queue}"));
                }
                self.join_queue(now, call, queue);
            }
            TransferTarget::Agent(agent) => {
                let usable = self
                    .acd
                    .agent(&agent)
                    .is_some_and(|a| a.state == crate::acd::AgentState::Idle && a.reachable);
                let leg = usable
                    .then(|| self.ring_agent_directly(now, call, &agent))
                    .flatten();
                match leg {
                    Some(leg) => self.transfer_ringing(now, call, leg, Some(agent)),
                    None => self.transfer_failed(now, call, "busy", 486),
                }
            }
            // Handled at once by transfer_to_survey, never announced.
            TransferTarget::Survey => {}
            TransferTarget::Number(number) => {
                let target = self.trunks.first().map(|t| t.target(&number));
                let leg = target.and_then(|t| self.place_leg(now, call, &t, &[]).ok());
                match leg {
                    Some(leg) => self.transfer_ringing(now, call, leg, None),
                    None => self.transfer_failed(now, call, "failed", 503),
                }
            }
        }
    }

    /// Places a leg to an agent's phone outside the ACD (a transfer):
    /// the ACD is told the agent is engaged meanwhile.
    pub(super) fn ring_agent_directly(
        &mut self,
        now: Instant,
        call: CallKey,
        agent: &str,
    ) -> Option<LegKey> {
        let b = self.registrar.bindings(agent).first().cloned()?;
        let target = LegTarget {
            uri: b.contact.clone(),
            peer: Peer {
                transport: b.transport,
                addr: b.source,
                conn: b.conn,
            },
            route: b.path.clone(),
            from_user: "hotline".into(),
            from_display: "hotline".into(),
            auth: None,
        };
        let leg = self
            .place_leg(now, call, &target, &[("X-Hotline-Transfer", "1")])
            .ok()?;
        self.acd.handle(
            now,
            AcdInput::AgentEngaged {
                agent: agent.to_string(),
                engaged: true,
            },
        );
        self.apply_acd(now);
        self.tell_engaged(agent, true);
        Some(leg)
    }

    fn transfer_ringing(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        agent: Option<String>,
    ) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(t) = c.controls.transferring.as_mut() {
                t.leg = Some(leg);
            }
            c.controls.direct_agent = agent.map(|a| (leg, a));
        }
        self.play_named(call, "moh");
        self.wire.timers.schedule(
            now + TRANSFER_RING,
            Wake::Call(call, CallTimer::TransferRing),
        );
    }

    /// What the transfer target's leg did.
    pub(super) fn transfer_leg_event(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        event: LegEvent,
    ) {
        match event {
            LegEvent::Answered => {
                self.start_media(now, call, leg);
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                c.playing = None;
                if let Some((_, agent)) = c.controls.direct_agent.clone().filter(|(l, _)| *l == leg)
                {
                    c.controls.agent_connected(now, agent);
                }
                let customer = c.customer;
                self.media(call, MediaCommand::StopPlayback { leg: customer });
                // Told before its leg goes: the transfer went through.
                self.refer_progress(now, call, 200, "OK", true);
                self.release_transferring_agent(now, call);
                self.bridge(call, customer, leg);
                self.transfer_done(call, "answered");
                info!("transfer answered");
            }
            LegEvent::Rejected { status, .. } => {
                self.end_leg(call, leg);
                self.disengage_direct_agent(now, call);
                let result = match status {
                    486 | 600 | 603 => "busy",
                    408 | 480 | 487 => "no_answer",
                    _ => "failed",
                };
                let status = if status == 0 { 408 } else { status };
                self.transfer_failed(now, call, result, status);
            }
            LegEvent::MediaUnusable => {
                self.end_leg(call, leg);
                self.disengage_direct_agent(now, call);
                self.transfer_failed(now, call, "failed", 488);
            }
            LegEvent::HungUp => {
                // The transferred-to party hung up the connected call.
                self.end_leg(call, leg);
                self.disengage_direct_agent(now, call);
                self.hangup(now, call, Outcome::Completed, Disposition::Answered);
            }
            _ => {}
        }
    }

    /// The target rang too long: CANCEL, and the caller goes back.
    pub(super) fn transfer_ring_timeout(&mut self, now: Instant, call: CallKey) {
        let leg = self
            .calls
            .get(&call)
            .and_then(|c| c.controls.transferring.as_ref())
            .and_then(|t| t.leg);
        let answered = leg
            .and_then(|l| self.calls.get(&call)?.leg(l).map(Leg::answered))
            .unwrap_or(true);
        if let (Some(leg), false) = (leg, answered) {
            info!("transfer target did not answer: CANCEL");
            self.hangup_leg(now, call, leg);
        }
    }

    /// The transfer is over: its result noted for the record.
    fn transfer_done(&mut self, call: CallKey, result: &'static str) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(t) = c.controls.transfers.last_mut() {
                t.result = Some(result);
            }
            c.controls.transferring = None;
        }
    }

    /// The target did not take the caller: "对不起，转接没有成功", then back
    /// to the agent who transferred, or else to the queue.
    fn transfer_failed(&mut self, now: Instant, call: CallKey, result: &'static str, status: u16) {
        info!(result, "transfer failed");
        self.refer_progress(now, call, status, "Transfer Failed", true);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(t) = c.controls.transfers.last_mut() {
            t.result = Some(result);
        }
        let back_to = c.controls.transferring.take().and_then(|t| t.from_leg);
        let from_still_there = back_to.filter(|l| c.leg(*l).is_some_and(Leg::answered));
        let then = match from_still_there {
            Some(leg) => AfterSequence::Rebridge { leg },
            None => AfterSequence::Requeue,
        };
        self.play_sequence(now, call, &["transfer_failed".to_string()], Some(then));
    }

    /// The caller could not go back to the agent who transferred (they
    /// left): into the queue the call came through, at once; with none,
    /// the IVR's fallback.
    pub(super) fn requeue(&mut self, now: Instant, call: CallKey) {
        let queue = self
            .calls
            .get(&call)
            .and_then(|c| c.queue.as_ref())
            .map(|q| q.queue.clone());
        match queue {
            Some(q) => self.join_queue(now, call, q),
            None => self.hangup(now, call, Outcome::Completed, Disposition::Answered),
        }
    }

    /// The agent who transferred leaves the call: their leg is hung up and
    /// the ACD puts them into wrap-up.
    fn release_transferring_agent(&mut self, now: Instant, call: CallKey) {
        let Some(leg) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.controls.transferring.as_mut())
            .and_then(|t| t.from_leg.take())
        else {
            return;
        };
        let agent = self.calls.get(&call).and_then(|c| c.agent_of(leg));
        self.hangup_leg(now, call, leg);
        if let Some(agent) = agent {
            self.agent_transferred(now, call, agent);
        }
    }

    /// The ACD hears that `agent` handed the caller on by the call's last
    /// (blind) transfer: their call ends, logged as BLINDTRANSFER to the
    /// extension the caller was told.
    pub(super) fn agent_transferred(&mut self, now: Instant, call: CallKey, agent: String) {
        let target = self
            .calls
            .get(&call)
            .and_then(|c| c.controls.transfers.last())
            .map(|t| t.to.clone());
        let to = match target {
            Some(TransferTarget::Survey) => "survey".to_string(),
            Some(t) => {
                let extension = self.extension_of(&t);
                if extension.is_empty() {
                    t.describe()
                } else {
                    extension
                }
            }
            None => String::new(),
        };
        self.acd.handle(
            now,
            AcdInput::AgentTransferred {
                caller: call,
                agent,
                to,
                attended: false,
            },
        );
        self.apply_acd(now);
    }

    /// The agent who transferred hung up (as phones do after a REFER):
    /// the call goes on; the agent goes to wrap-up.
    pub(super) fn transferring_agent_left(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
    ) -> bool {
        let Some(t) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.controls.transferring.as_mut())
        else {
            return false;
        };
        if t.from_leg != Some(leg) {
            return false;
        }
        t.from_leg = None;
        if t.refer == Some(leg) {
            t.refer = None;
        }
        let agent = self.calls.get(&call).and_then(|c| c.agent_of(leg));
        self.end_leg(call, leg);
        if let Some(agent) = agent {
            self.agent_transferred(now, call, agent);
        }
        true
    }

    /// An agent reached directly by a transfer is free again.
    pub(super) fn disengage_direct_agent(&mut self, now: Instant, call: CallKey) {
        let Some((_, agent)) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.controls.direct_agent.take())
        else {
            return;
        };
        self.tell_engaged(&agent, false);
        self.acd.handle(
            now,
            AcdInput::AgentEngaged {
                agent,
                engaged: false,
            },
        );
        self.apply_acd(now);
    }

    /// NOTIFY the phone that asked for the transfer, if it still can hear.
    fn refer_progress(
        &mut self,
        now: Instant,
        call: CallKey,
        status: u16,
        reason: &str,
        done: bool,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(refer) = c.controls.transferring.as_ref().and_then(|t| t.refer) else {
            return;
        };
        if let Some(leg) = c.leg_mut(refer).filter(|l| l.answered()) {
            leg.notify_refer(now, &mut self.wire, status, reason, done);
        }
    }

    /// Whether `leg` is the transfer target's.
    pub(super) fn is_transfer_leg(&self, call: CallKey, leg: LegKey) -> bool {
        self.calls
            .get(&call)
            .and_then(|c| c.controls.transferring.as_ref())
            .and_then(|t| t.leg)
            == Some(leg)
            || self
                .calls
                .get(&call)
                .and_then(|c| c.controls.direct_agent.as_ref())
                .is_some_and(|(l, _)| *l == leg)
    }
}

// ---- recording ------------------------------------------------------------

impl Engine {
    /// Starts the call's recording: `<date>/<call id>.wav` under the
    /// recordings folder, the customer on the left.
    pub(super) fn start_call_recording(&mut self, now: Instant, call: CallKey) {
        let date = crate::cdr::format_ms(self.wall_ms(now));
        let file = format!(
            "{}/{}.wav",
            date.get(..10).unwrap_or("undated"),
            crate::call::record_id(&self.clock, call)
        );
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.controls.recording_file = Some(file.clone());
        let customer = c.customer;
        info!(%file, "recording the call");
        self.media(call, MediaCommand::RecordCall { customer, file });
    }

    /// The shell could not write the call's recording (a full disk): the
    /// call goes on unrecorded, and its record says why.
    pub(super) fn call_recording_failed(&mut self, call: CallKey, error: String) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.controls.recording_error = Some(error);
            self.media(call, MediaCommand::StopRecordingCall);
        }
    }
}
