//! The engine's side of campaigns: the scheduler's decisions become
//! durable attempts, then calls through a trunk; a call's end becomes the
//! attempt's result, its record and the number's next step.
//!
//! The order is the promise: an attempt is written (and acknowledged by
//! the store) before its INVITE leaves, so a crash never loses one and a
//! restart never repeats one (see `campaign::scheduler`).

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;
use tracing::{info, warn};

use super::Engine;
use crate::call::notice::{NoticeCall, NoticeKey, NoticeStage};
use crate::call::record::Ending;
use crate::call::Call;
use crate::campaign::scheduler::Decision;
use crate::campaign::spec::{CampaignSpec, SpecError, KEY_WAIT};
use crate::campaign::{AttemptResult, Campaign, CampaignId, CampaignState};
use crate::cdr::{Disposition, HangupSide, Outcome};
use crate::ids::{CallKey, LegKey};
use crate::io::Output;
use crate::ivr::program::NodeId;
use crate::ivr::Ivr;
use crate::leg::uac::Offer;
use crate::leg::{Leg, LegEvent};
use crate::media::call_media::MediaCommand;
use crate::media::dtmf::DigitSource;
use crate::store::{Notice, StoreWrite, StoredCampaign, StoredWork};
use crate::wire::{CallTimer, Wake};

/// A call the scheduler chose, waiting for its attempt to be durable.
#[derive(Debug, Clone)]
pub(super) struct PendingDial {
    campaign: CampaignId,
    target: usize,
    number: String,
    attempt: u32,
    trunk: usize,
}

/// The part of a campaign one of its calls needs.
struct NoticeSpec {
    name: String,
    trunk: String,
    prompt: String,
    confirm_key: Option<char>,
    repeat_key: Option<char>,
    optout_key: Option<char>,
    ring_timeout: std::time::Duration,
}

/// A change to a campaign asked for through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignCommand {
    Pause,
    Resume,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CampaignCommandError {
    #[error("no campaign {0}")]
    Unknown(u64),
    #[error("campaign {id} is {state}: it cannot change any more")]
    Finished { id: u64, state: &'static str },
}

impl Engine {
    /// Writes `write` through the store, in order.
    pub(super) fn store(&mut self, write: StoreWrite) -> u64 {
        self.next_write += 1;
        let id = self.next_write;
        self.wire.push(Output::Store { id, write });
        id
    }

    /// At start: the campaigns the store holds. Attempts a crash left on
    /// the line end as interrupted (written back, with a record) and are
    /// retried on the schedule. Work another node runs (`work.foreign`)
    /// is only kept, to show.
    pub(super) fn load_work(&mut self, now: Instant, work: StoredWork) {
        for number in &work.do_not_call {
            self.scheduler.add_dnc(number);
        }
        for n in work.notices {
            self.remember_notice(n);
        }
        for contact in work.contacts {
            self.contacts
                .insert(crate::number::number_key(&contact.number), contact);
        }
        self.run_work(now, work.campaigns, work.tasks, &work.foreign);
    }

    /// Campaigns and tasks to run from now on (read back at start, or
    /// taken over from a node that died), but for those in `foreign`,
    /// which another node runs and this one only keeps.
    fn run_work(
        &mut self,
        now: Instant,
        campaigns: Vec<StoredCampaign>,
        tasks: Vec<crate::tasks::Task>,
        foreign: &crate::store::Foreign,
    ) {
        for stored in campaigns {
            if foreign.campaigns.contains(&stored.campaign.id) {
                self.scheduler.cache(stored.campaign);
            } else {
                self.add_campaign(now, stored);
            }
        }
        self.poll_campaigns(now);
        let now_ms = self.wall_ms(now);
        for id in self.tasks.restore(tasks, &foreign.tasks, now_ms) {
            warn!(
                task = id.0,
                "task interrupted (by a restart, or its node died)"
            );
            self.task_interrupted_record(now, id, now_ms);
            self.write_task(id, false);
        }
        self.poll_tasks(now);
    }

    /// A campaign the store holds: the engine starts running it.
    pub(super) fn add_campaign(&mut self, now: Instant, stored: StoredCampaign) {
        let StoredCampaign {
            campaign,
            prompt_audio,
        } = stored;
        let id = campaign.id;
        if let Some(samples) = prompt_audio {
            let library = self.prompts.with_shared(&campaign.spec.prompt, &samples);
            self.campaign_prompts.insert(id, Arc::new(library));
        }
        let name = campaign.spec.name.clone();
        let now_ms = self.wall_ms(now);
        for (target, attempt) in self.scheduler.add(campaign, now_ms) {
            let Some(t) = self
                .scheduler
                .campaign(id)
                .and_then(|c| c.targets.get(target))
            else {
                continue;
            };
            let (state, due_ms, number) = (t.state, t.due_ms, t.number.clone());
            warn!(campaign = id.0, %number, attempt = attempt.number,
                "attempt interrupted (by a restart, or its node died)");
            // Its call left no record of its own: this one says so.
            let mut record = crate::call::record::base_outbound(now, self.clock, &number);
            record.call_id = self.record_id(self.next_id);
            self.next_id += 1;
            record.invite_at = crate::cdr::format_ms(attempt.at_ms);
            record.campaign = Some(id.0);
            record.campaign_name = Some(name.clone());
            record.attempt = Some(attempt.number);
            record.attempt_result = Some(AttemptResult::Interrupted.as_str().to_string());
            record.outcome = Outcome::Shutdown;
            record.disposition = Disposition::Failed;
            self.wire.push(Output::CallEnded {
                call: CallKey(0),
                record: Box::new(record),
                then_send: Vec::new(),
            });
            self.store(StoreWrite::AttemptEnded {
                campaign: id,
                target,
                attempt,
                state,
                due_ms,
            });
        }
        info!(campaign = id.0, %name, "campaign running");
        self.poll_campaigns(now);
    }

    /// Checks a new campaign against this configuration: its trunk, and
    /// its prompt (unless it brings its own).
    pub fn check_campaign(
        &self,
        spec: &CampaignSpec,
        uploaded_prompt: bool,
    ) -> Result<(), SpecError> {
        if !self.trunks.iter().any(|t| t.config.name == spec.trunk) {
            let known: Vec<&str> = self.trunks.iter().map(|t| t.config.name.as_str()).collect();
            return Err(SpecError {
                field: "trunk".into(),
                message: if known.is_empty() {
                    format!("no trunk {:?}: the config has no [[trunks]]", spec.trunk)
                } else {
                    format!("no trunk {:?} (trunks: {})", spec.trunk, known.join(", "))
                },
            });
        }
        if !uploaded_prompt && !self.prompts.has_everywhere(&spec.prompt) {
            return Err(SpecError {
                field: "prompt".into(),
                message: format!(
                    "no prompt {:?} in the prompt set (or upload a WAV with the campaign)",
                    spec.prompt
                ),
            });
        }
        Ok(())
    }

    /// The UTC offset a campaign's window is read in by default.
    pub fn local_offset_minutes(&self) -> i32 {
        self.settings.live.utc_offset_minutes
    }

    /// Pause, resume or cancel a campaign.
    pub fn campaign_command(
        &mut self,
        now: Instant,
        id: CampaignId,
        command: CampaignCommand,
    ) -> Result<CampaignState, CampaignCommandError> {
        let state = match command {
            CampaignCommand::Pause => CampaignState::Paused,
            CampaignCommand::Resume => CampaignState::Running,
            CampaignCommand::Cancel => CampaignState::Cancelled,
        };
        let current = self
            .scheduler
            .campaign(id)
            .map(|c| c.state)
            .ok_or(CampaignCommandError::Unknown(id.0))?;
        let Some(changed) = self.scheduler.set_state(id, state) else {
            return Err(CampaignCommandError::Finished {
                id: id.0,
                state: current.as_str(),
            });
        };
        info!(campaign = id.0, ?command, "campaign command");
        self.store(StoreWrite::Campaign {
            campaign: id,
            state,
        });
        // Another node's campaign: the node running it applies the state
        // to its numbers when the store tells it.
        if !self.scheduler.is_foreign(id) {
            self.write_targets(id, &changed);
            self.poll_campaigns(now);
        }
        Ok(state)
    }

    /// A number added to the do-not-call list through the API: written,
    /// and never called again from now.
    pub fn add_do_not_call(&mut self, now: Instant, number: &str) {
        self.scheduler.add_dnc(number);
        self.store(StoreWrite::DoNotCall {
            number: number.to_string(),
        });
        self.poll_campaigns(now);
    }

    /// The campaigns, as they stand.
    pub fn campaigns(&self) -> impl Iterator<Item = &Campaign> {
        self.scheduler.campaigns()
    }

    pub fn campaign(&self, id: CampaignId) -> Option<&Campaign> {
        self.scheduler.campaign(id)
    }

    pub(super) fn write_targets(&mut self, id: CampaignId, targets: &[usize]) {
        for &target in targets {
            let Some(t) = self
                .scheduler
                .campaign(id)
                .and_then(|c| c.targets.get(target))
            else {
                continue;
            };
            let write = StoreWrite::Target {
                campaign: id,
                target,
                state: t.state,
                due_ms: t.due_ms,
            };
            self.store(write);
        }
        self.write_campaign_if_done(id);
    }

    fn write_campaign_if_done(&mut self, id: CampaignId) {
        if self.scheduler.campaign(id).map(|c| c.state) == Some(CampaignState::Completed)
            && self.completed_written.insert(id)
        {
            info!(campaign = id.0, "campaign completed");
            self.store(StoreWrite::Campaign {
                campaign: id,
                state: CampaignState::Completed,
            });
        }
    }

    /// Places every call that is due and allowed now, then sets the next
    /// wake-up (the next due call, or a trunk's next rate token).
    pub(super) fn poll_campaigns(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        let now_ms = self.wall_ms(now);
        loop {
            let trunks = &mut self.trunks;
            let decision = self.scheduler.poll(now_ms, |name| {
                trunks
                    .iter_mut()
                    .find(|t| t.config.name == name)
                    .is_some_and(|t| t.can_dial(now))
            });
            let Some(decision) = decision else { break };
            match decision {
                Decision::Blocked { campaign, target } => {
                    info!(
                        campaign = campaign.0,
                        target, "on the do-not-call list: not called"
                    );
                    self.write_targets(campaign, &[target]);
                }
                Decision::Dial {
                    campaign,
                    target,
                    number,
                    attempt,
                    trunk,
                } => {
                    let Some(t) = self.trunks.iter().position(|t| t.config.name == trunk) else {
                        continue;
                    };
                    self.trunks[t].reserve();
                    let Some(a) = self
                        .scheduler
                        .campaign(campaign)
                        .and_then(|c| c.targets.get(target))
                        .and_then(|x| x.attempts.last())
                        .cloned()
                    else {
                        continue;
                    };
                    let id = self.store(StoreWrite::AttemptStarted {
                        campaign,
                        target,
                        attempt: a,
                    });
                    self.pending_dials.insert(
                        id,
                        PendingDial {
                            campaign,
                            target,
                            number,
                            attempt,
                            trunk: t,
                        },
                    );
                }
            }
        }
        // A call due now that could not start waits for a channel (a
        // call ending polls again) or for the trunk's next rate token; one
        // due later, for its time.
        let later = self
            .scheduler
            .next_due()
            .filter(|ms| *ms > now_ms)
            .map(|ms| self.instant_at(now, ms));
        let due = later
            .into_iter()
            .chain(self.trunks.iter().filter_map(|t| t.next_token()))
            .filter(|at| *at > now)
            .min();
        if let Some(at) = due {
            self.wire.timers.schedule(at, Wake::Campaigns);
        }
    }

    /// The engine instant of wall-clock `ms`.
    fn instant_at(&self, now: Instant, ms: u64) -> Instant {
        let now_ms = self.wall_ms(now);
        if ms <= now_ms {
            now
        } else {
            now + std::time::Duration::from_millis(ms - now_ms)
        }
    }

    /// A write is durable: a pending attempt's call starts now. Its
    /// INVITE now counts in the trunk's rate, which may free a place for
    /// the next call (or set the wake-up for it).
    pub(super) fn stored(&mut self, now: Instant, id: u64) {
        if let Some(dial) = self.pending_dials.remove(&id) {
            self.dial_notice(now, dial);
            self.poll_campaigns(now);
        }
        if let Some(call) = self.pending_work_dials.remove(&id) {
            self.work_attempt_stored(now, call);
        }
    }

    /// The store failed a write: a pending attempt is not made (it will be
    /// tried again as a retry, never silently dropped).
    pub(super) fn store_failed(&mut self, now: Instant, id: u64) {
        if let Some(call) = self.pending_work_dials.remove(&id) {
            self.work_store_failed(now, call);
        }
        if let Some(dial) = self.pending_dials.remove(&id) {
            warn!(campaign = dial.campaign.0, number = %dial.number, "attempt not written: not dialled");
            self.trunks[dial.trunk].unreserve();
            self.attempt_over(now, &dial, AttemptResult::Congestion, 0, None);
        }
    }

    /// Another node started this attempt first: it is that node's. The
    /// number is not dialled here, nor tried again by this node, and
    /// nothing is written (the other node writes its attempt's end).
    pub(super) fn store_taken(&mut self, now: Instant, id: u64) {
        if let Some(dial) = self.pending_dials.remove(&id) {
            info!(campaign = dial.campaign.0, number = %dial.number, attempt = dial.attempt,
                "another node dials this number");
            self.trunks[dial.trunk].unreserve();
            self.scheduler.taken_elsewhere(dial.campaign, dial.target);
            self.poll_campaigns(now);
        }
        if let Some(call) = self.pending_work_dials.remove(&id) {
            // A task's attempt: tasks are not yet shared between nodes
            // (docs/cluster.md); ended here as a failed attempt.
            self.work_store_failed(now, call);
        }
    }

    fn dial_notice(&mut self, now: Instant, dial: PendingDial) {
        // What the call needs of its campaign (not the number list).
        let Some(spec) = self.scheduler.campaign(dial.campaign).map(|c| NoticeSpec {
            name: c.spec.name.clone(),
            trunk: c.spec.trunk.clone(),
            prompt: c.spec.prompt.clone(),
            confirm_key: c.spec.confirm_key,
            repeat_key: c.spec.repeat_key,
            optout_key: c.spec.optout_key,
            ring_timeout: c.spec.ring_timeout,
        }) else {
            self.trunks[dial.trunk].unreserve();
            return;
        };
        let prompts = self
            .campaign_prompts
            .get(&dial.campaign)
            .cloned()
            .unwrap_or_else(|| self.prompts.clone());
        let language = self.settings.default_language;
        let Some(prompt) = prompts.get(language, &spec.prompt) else {
            warn!(prompt = %spec.prompt, "campaign prompt missing: attempt failed");
            self.trunks[dial.trunk].unreserve();
            return self.attempt_over(now, &dial, AttemptResult::Congestion, 0, None);
        };
        let notice = NoticeCall {
            campaign: dial.campaign,
            campaign_name: spec.name.clone(),
            target: dial.target,
            number: dial.number.clone(),
            attempt: dial.attempt,
            trunk: dial.trunk,
            trunk_name: spec.trunk.clone(),
            prompt,
            confirm_key: spec.confirm_key,
            repeat_key: spec.repeat_key,
            optout_key: spec.optout_key,
            stage: NoticeStage::Ringing,
            plays: 0,
            ring_deadline: now + spec.ring_timeout,
            key_deadline: None,
            result: None,
            sip_status: 0,
            bye: None,
        };
        let Some(port) = self.ports.take() else {
            warn!("no free RTP port: attempt failed");
            self.trunks[dial.trunk].unreserve();
            return self.attempt_over(now, &dial, AttemptResult::Congestion, 503, None);
        };
        let key = CallKey(self.next_key());
        let leg_key = LegKey(self.next_key());
        let target = self.trunks[dial.trunk].target(&dial.number);
        self.trunks[dial.trunk].sent(now);
        let offer = Offer {
            port,
            media_address: self.settings.media_address,
            preferred: None,
            headers: &[],
        };
        let leg = Leg::outgoing(now, &mut self.wire, leg_key, key, &target, offer);
        self.dialogs.insert(
            (leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()),
            (key, leg_key),
        );
        info!(
            campaign = dial.campaign.0,
            number = %dial.number,
            attempt = dial.attempt,
            trunk = %spec.trunk,
            "placing a notice call"
        );
        let mut call = Call::new(
            key,
            prompts,
            leg_key,
            vec![leg],
            Ivr::new(self.program.clone(), NodeId(0), language),
            Default::default(),
            now,
        );
        call.notice = Some(notice);
        let deadline = now + spec.ring_timeout;
        self.calls.insert(key, call);
        self.wire
            .timers
            .schedule(deadline, Wake::Call(key, CallTimer::RingTimeout));
    }

    /// What the callee's leg did.
    pub(super) fn notice_leg_event(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        event: LegEvent,
    ) {
        match event {
            // Ringback or a carrier's announcement: not an answer.
            LegEvent::Progress {
                early_media: true, ..
            } => info!("early media: still ringing"),
            LegEvent::Answered => {
                self.start_media(now, call, leg);
                if let Some(n) = self.calls.get_mut(&call).and_then(|c| c.notice.as_mut()) {
                    n.sip_status = 200;
                }
                self.play_notice(call);
            }
            LegEvent::Rejected { status, cancelled } => {
                let result = if cancelled {
                    AttemptResult::NoAnswer
                } else {
                    AttemptResult::of_status(status)
                };
                let status = if cancelled { 487 } else { status };
                self.end_notice(now, call, result, status);
            }
            LegEvent::MediaUnusable => self.end_notice(now, call, AttemptResult::Congestion, 488),
            LegEvent::HungUp => {
                // The callee hung up: heard to the end only if it was.
                let result = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.notice.as_ref())
                    .map(|n| match (n.stage, n.result) {
                        (_, Some(r)) => r,
                        (NoticeStage::WaitingKey, None) => n.heard_result(),
                        _ => AttemptResult::Unconfirmed,
                    });
                if let Some(result) = result {
                    self.end_notice_by(now, call, result, 200, HangupSide::Caller);
                }
            }
            LegEvent::Digit(d) => self.digit(now, call, d, DigitSource::SipInfo),
            _ => {}
        }
    }

    fn play_notice(&mut self, call: CallKey) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(n) = c.notice.as_mut() else { return };
        n.stage = NoticeStage::Playing;
        n.plays += 1;
        n.key_deadline = None;
        let prompt = n.prompt;
        let token = c.next_play_token();
        let leg = c.customer;
        self.media(call, MediaCommand::Play { leg, prompt, token });
    }

    /// The notice played to its end: with no confirm key that is success;
    /// otherwise the callee has a few seconds for a key.
    pub(super) fn notice_played(&mut self, now: Instant, call: CallKey) {
        let Some(n) = self.calls.get_mut(&call).and_then(|c| c.notice.as_mut()) else {
            return;
        };
        if n.stage != NoticeStage::Playing {
            return;
        }
        if n.confirm_key.is_none() && n.optout_key.is_none() && n.repeat_key.is_none() {
            return self.end_notice(now, call, AttemptResult::Heard, 200);
        }
        n.stage = NoticeStage::WaitingKey;
        let at = now + KEY_WAIT;
        n.key_deadline = Some(at);
        self.wire
            .timers
            .schedule(at, Wake::Call(call, CallTimer::KeyWait));
    }

    /// A key from the callee (RFC 4733, INFO or a tone).
    pub(super) fn notice_key(&mut self, now: Instant, call: CallKey, digit: char) {
        let Some(n) = self.calls.get(&call).and_then(|c| c.notice.as_ref()) else {
            return;
        };
        if !matches!(n.stage, NoticeStage::Playing | NoticeStage::WaitingKey) {
            return;
        }
        match n.key(digit) {
            Some(NoticeKey::Confirm) => self.end_notice(now, call, AttemptResult::Confirmed, 200),
            Some(NoticeKey::OptOut) => {
                let number = n.number.clone();
                self.store(StoreWrite::DoNotCall { number });
                self.end_notice(now, call, AttemptResult::OptedOut, 200)
            }
            Some(NoticeKey::Repeat) => self.play_notice(call),
            None => {}
        }
    }

    pub(super) fn notice_timeout(&mut self, now: Instant, call: CallKey, timer: CallTimer) {
        let Some(n) = self.calls.get(&call).and_then(|c| c.notice.as_ref()) else {
            return;
        };
        match timer {
            CallTimer::RingTimeout if n.stage == NoticeStage::Ringing && now >= n.ring_deadline => {
                info!("rang out: CANCEL");
                let leg = self.calls.get(&call).map(|c| c.customer);
                if let Some(leg) = leg {
                    self.hangup_leg(now, call, leg);
                }
            }
            CallTimer::KeyWait
                if n.stage == NoticeStage::WaitingKey
                    && n.key_deadline.is_some_and(|at| now >= at) =>
            {
                let result = n.heard_result();
                self.end_notice(now, call, result, 200);
            }
            _ => {}
        }
    }

    /// No RTP from the callee: the line is dead; not heard.
    pub(super) fn notice_media_lost(&mut self, now: Instant, call: CallKey) {
        self.end_notice(now, call, AttemptResult::Unconfirmed, 200);
    }

    fn end_notice(&mut self, now: Instant, call: CallKey, result: AttemptResult, status: u16) {
        self.end_notice_by(now, call, result, status, HangupSide::Engine)
    }

    /// The attempt's outcome is known: the call ends (hung up by us when
    /// still up), and the attempt with it.
    fn end_notice_by(
        &mut self,
        now: Instant,
        call: CallKey,
        result: AttemptResult,
        status: u16,
        side: HangupSide,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(n) = c.notice.as_mut() else { return };
        if n.stage == NoticeStage::Done {
            return;
        }
        n.stage = NoticeStage::Done;
        n.result = Some(result);
        n.sip_status = status;
        let answered = c.customer_leg().is_some_and(Leg::answered);
        let ending = Ending {
            outcome: if !answered {
                Outcome::Unanswered
            } else if side == HangupSide::Caller {
                Outcome::CallerHangup
            } else {
                Outcome::Completed
            },
            disposition: if answered {
                Disposition::Answered
            } else {
                Disposition::Failed
            },
            side: Some(side),
            status,
        };
        let still_up = answered && side == HangupSide::Engine;
        if still_up {
            if let Some(leg) = c.customer_leg_mut() {
                let bye = leg.send_bye(now, &mut self.wire);
                if let Some(n) = c.notice.as_mut() {
                    n.bye = Some(bye);
                }
            }
        }
        self.end_call(now, call, ending);
    }

    /// After an outbound call's record: its trunk channel is free, its
    /// attempt ends in the scheduler and the store, and a heard notice is
    /// remembered for when the number calls back.
    pub(super) fn notice_call_ended(&mut self, now: Instant, n: &NoticeCall, call_id: String) {
        // Our BYE waits for the record: until the trunk has it, the call
        // still holds its channel there.
        match &n.bye {
            Some(bye) => {
                self.bye_channels.insert(bye.clone(), n.trunk);
            }
            None => self.trunks[n.trunk].release(),
        }
        let result = n.result.unwrap_or(AttemptResult::Congestion);
        let dial = PendingDial {
            campaign: n.campaign,
            target: n.target,
            number: n.number.clone(),
            attempt: n.attempt,
            trunk: n.trunk,
        };
        if n.sip_status == 200 {
            self.remember_notice(Notice {
                number: n.number.clone(),
                campaign: n.campaign,
                campaign_name: n.campaign_name.clone(),
                at_ms: self.wall_ms(now),
            });
        }
        self.attempt_over(now, &dial, result, n.sip_status, Some(call_id));
    }

    fn attempt_over(
        &mut self,
        now: Instant,
        dial: &PendingDial,
        result: AttemptResult,
        status: u16,
        call_id: Option<String>,
    ) {
        let now_ms = self.wall_ms(now);
        let target = self
            .scheduler
            .attempt_ended(dial.campaign, dial.target, result, status, call_id, now_ms)
            .cloned();
        if let Some(t) = target {
            info!(
                campaign = dial.campaign.0,
                number = %dial.number,
                attempt = dial.attempt,
                result = result.as_str(),
                next = t.state.as_str(),
                "attempt over"
            );
            if let Some(attempt) = t.attempts.last().cloned() {
                self.store(StoreWrite::AttemptEnded {
                    campaign: dial.campaign,
                    target: dial.target,
                    attempt,
                    state: t.state,
                    due_ms: t.due_ms,
                });
            }
        }
        self.write_campaign_if_done(dial.campaign);
        self.poll_campaigns(now);
    }

    /// A BYE's transaction is over (answered, or given up): a notice
    /// call's channel it held is free.
    pub(super) fn bye_done(&mut self, now: Instant, key: &crate::wire::TxKey) {
        if let Some(trunk) = self.bye_channels.remove(key) {
            self.trunks[trunk].release();
            self.poll_campaigns(now);
        }
    }

    pub(super) fn remember_notice(&mut self, n: Notice) {
        let key = crate::campaign::number_key(&n.number);
        self.notices.insert(key, n);
    }

    /// The campaign whose notice `number` heard within the configured
    /// days, if any.
    pub(super) fn recent_notice(&self, now: Instant, number: &str) -> Option<&Notice> {
        let n = self.notices.get(&crate::campaign::number_key(number))?;
        let days = u64::from(self.settings.notice_memory_days);
        let age = self.wall_ms(now).saturating_sub(n.at_ms);
        (age <= days * 86_400_000).then_some(n)
    }

    /// Each trunk's channels, for the live view.
    pub fn trunk_views(&self) -> Vec<crate::live::TrunkView> {
        self.trunks
            .iter()
            .map(|t| crate::live::TrunkView {
                name: t.config.name.clone(),
                channels: t.channels,
                max_channels: t.config.max_channels,
                peak_channels: t.peak_channels,
            })
            .collect()
    }
}
