//! The call flow: a new INVITE becomes a call with its customer's leg;
//! what each leg reports moves the call on; a call ends with one record.
//! The operations every feature builds on live here too: placing a leg
//! to any URI, bridging two legs of a call, replacing one leg by another,
//! and hanging up one leg.

use std::time::Instant;

use thiserror::Error;
use tracing::{info, warn};

use super::Engine;
use crate::call::record::{self, Ending};
use crate::call::Call;
use crate::cdr::{Disposition, HangupSide, Outcome};
use crate::ids::{CallKey, LegKey};
use crate::io::{Output, Peer};
use crate::ivr::program::NodeId;
use crate::ivr::Ivr;
use crate::leg::uac::{LegTarget, Offer};
use crate::leg::{Leg, LegEvent, Role};
use crate::live::LiveEvent;
use crate::media::call_media::MediaCommand;
use crate::media::dtmf::DigitSource;
use crate::media::g711::Codec;
use crate::sip::message::{Method, SipRequest};
use crate::wire::{CallTimer, Wake};

/// Why a leg could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PlaceError {
    #[error("no such call")]
    NoCall,
    #[error("no free RTP port")]
    NoPort,
    #[error("the call has as many legs as its media can carry")]
    TooManyLegs,
}

/// What the flow does with an agent's leg when it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Customer,
    /// Offered a queued caller (the ACD's business).
    Agent,
    /// Placed by an operation with no feature around it yet.
    Other,
}

impl Engine {
    // ---- a new call ----------------------------------------------------

    pub(super) fn handle_new_invite(&mut self, now: Instant, peer: Peer, mut req: SipRequest) {
        // An agent holding a caller calls a colleague: a consultation in
        // that call, not a call to the hotline.
        if let Some((call, agent)) = self.consultation_for(&req, peer) {
            return self.start_consultation(now, call, agent, peer, req);
        }
        self.wire.counters.calls_offered += 1;
        // Who is calling, by `calls.caller_id_from`, for everything after.
        req.take_caller_id(self.settings.caller_id_from);
        let key = CallKey(self.next_key());
        let leg_key = LegKey(self.next_key());
        // Where the call starts: the dialled number's plan, by the hour.
        let plan = self.program.plan_for(req.uri_user()).cloned();
        let (entry, language) = match &plan {
            Some(plan) => (
                self.program.entry(plan, self.wall_ms(now)),
                plan.language.unwrap_or(self.settings.default_language),
            ),
            None => (NodeId(0), self.settings.default_language),
        };
        let info = self.directory.lookup(req.caller_number());
        let repeat = self.repeat_contact(now, req.caller_number());
        let notified_by = self
            .recent_notice(now, req.caller_number())
            .map(|n| (n.campaign, n.campaign_name.clone()));
        let feature = self.feature_for(&req, peer);
        let leg = Leg::incoming(now, &mut self.wire, leg_key, key, peer, req);
        self.incoming.insert(leg.invite_tx.clone(), (key, leg_key));
        self.dialogs.insert(
            (leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()),
            (key, leg_key),
        );
        let ivr = {
            let mut ivr = Ivr::new(self.program.clone(), entry, language);
            ivr.set_notified(notified_by.as_ref().map(|(_, name)| name.clone()));
            ivr
        };
        let mut call = Call::new(
            key,
            self.prompts.clone(),
            leg_key,
            vec![leg],
            ivr,
            info,
            now,
        );
        call.notified_by = notified_by;
        call.repeat = repeat;
        self.calls.insert(key, call);

        // Refuse at once rather than leave a call ringing past the window.
        if self.draining || !self.admit(now) {
            self.wire.counters.calls_rejected_busy += 1;
            let retry = self.settings.retry_after.as_secs().max(1).to_string();
            warn!("over capacity: 503");
            let extra = [("Retry-After", retry.as_str())];
            return self.reject_ringing_with(
                now,
                key,
                (503, "Service Unavailable", Outcome::OverCapacity),
                &extra,
            );
        }
        if feature.is_none() && !self.guard.is_trunk(peer.addr.ip()) {
            // Not the PBX or trunk in front, and not an agent's feature code.
            self.wire.counters.calls_forbidden += 1;
            info!(source = %peer.addr.ip(), "not on the trunk allow-list: 403");
            return self.reject_ringing(now, key, 403, "Forbidden", Outcome::Forbidden);
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.feature = feature;
        }
        if plan.is_none() && feature.is_none() {
            info!("no IVR plan for the dialled number: 404");
            return self.reject_ringing(now, key, 404, "Not Found", Outcome::UnknownNumber);
        }
        let offer = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.customer_leg_mut())
            .map(|l| l.take_offer());
        if let Some(Err(e)) = offer {
            info!(error = %e, "488");
            return self.reject_ringing(
                now,
                key,
                488,
                "Not Acceptable Here",
                Outcome::NoCommonCodec,
            );
        }
        let Some(port) = self.ports.take() else {
            warn!("no free RTP port: 503");
            return self.reject_ringing(
                now,
                key,
                503,
                "Service Unavailable",
                Outcome::OverCapacity,
            );
        };
        let answer_at = now + self.settings.answer_after;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.answer_at = Some(answer_at);
        let Some(leg) = call.customer_leg_mut() else {
            return;
        };
        leg.media.port = port;
        leg.ring(now, &mut self.wire);
        if let Some(invite) = &leg.invite {
            info!(
                caller = invite.caller_number(),
                dialled = invite.uri_user(),
                "ringing"
            );
        }
        if self.settings.answer_after.is_zero() {
            self.answer(now, key);
        } else {
            self.wire
                .timers
                .schedule(answer_at, Wake::Call(key, CallTimer::Answer));
        }
    }

    /// Token bucket for the call rate, refilled from `now`.
    fn admit(&mut self, now: Instant) -> bool {
        // The call being admitted is already in the table.
        if self.calls.len() > self.settings.max_calls {
            return false;
        }
        let rate = self.settings.max_calls_per_second as f64;
        let elapsed = now
            .saturating_duration_since(self.rate_updated)
            .as_secs_f64();
        self.rate_tokens = (self.rate_tokens + elapsed * rate).min(rate.max(1.0));
        self.rate_updated = now;
        if self.rate_tokens >= 1.0 {
            self.rate_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Ringing is over: the customer's leg answers.
    pub(super) fn answer(&mut self, now: Instant, key: CallKey) {
        let media_address = self.settings.media_address;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.answer_at = None;
        let arrival = call.arrived_at;
        let Some(leg) = call.customer_leg_mut() else {
            return;
        };
        if leg.answered() {
            return;
        }
        leg.answer(now, &mut self.wire, media_address);
        info!(
            time_to_answer_ms = (now - arrival).as_millis() as u64,
            "answered"
        );
        self.live_event(now, LiveEvent::CallAnswered { arrival });
    }

    /// Opens a leg's media once both SDPs are known (once per leg).
    pub(super) fn start_media(&mut self, now: Instant, key: CallKey, leg: LegKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(l) = call.leg(leg) else { return };
        if l.media.started {
            return;
        }
        let customer = leg == call.customer;
        let inband =
            customer && self.inband_for(l.media.negotiated.and_then(|n| n.telephone_event));
        let tuning = self.media_tuning(inband);
        let prompts = call.prompts.set.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(l) = call.leg_mut(leg) else { return };
        let Some(params) = l.media_params(&mut self.wire, tuning) else {
            return;
        };
        l.media.started = true;
        l.media_start_at = Some(now);
        let sending = l.media.remote_receives();
        let (port, remote) = (l.media.port, params.remote);
        self.media(
            key,
            MediaCommand::OpenLeg {
                leg,
                port,
                params,
                prompts,
            },
        );
        if !sending {
            self.media(
                key,
                MediaCommand::Update {
                    leg,
                    remote,
                    sending,
                },
            );
        }
    }

    pub(super) fn media(&mut self, call: CallKey, command: MediaCommand) {
        self.wire.push(Output::Media { call, command });
    }

    pub(super) fn call_timeout(&mut self, now: Instant, key: CallKey, timer: CallTimer) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match timer {
            CallTimer::Answer => {
                if call.answer_at.is_some_and(|at| now >= at) {
                    self.answer(now, key);
                }
            }
            CallTimer::Ivr => self.ivr_timeout(now, key),
            CallTimer::RingTimeout if call.work.is_some() => self.work_ring_timeout(now, key),
            CallTimer::RingTimeout | CallTimer::KeyWait => self.notice_timeout(now, key, timer),
            CallTimer::CallbackOffer => self.offer_callback(now, key),
            CallTimer::CallbackKey => self.callback_key_timeout(now, key),
            CallTimer::Survey => self.survey_timeout(now, key),
            CallTimer::TransferRing => self.transfer_ring_timeout(now, key),
        }
    }

    // ---- what legs report ------------------------------------------------

    fn party(&self, call: CallKey, leg: LegKey) -> Option<Party> {
        let c = self.calls.get(&call)?;
        if c.customer == leg {
            Some(Party::Customer)
        } else if c.agent_legs.iter().any(|(l, _)| *l == leg) {
            Some(Party::Agent)
        } else {
            c.leg(leg).map(|_| Party::Other)
        }
    }

    /// Moves a call on after one of its legs reported `event`.
    pub(super) fn leg_event(&mut self, now: Instant, call: CallKey, leg: LegKey, event: LegEvent) {
        let Some(party) = self.party(call, leg) else {
            if let Some((c, _, _)) = self.lingering.get(&leg) {
                let c = *c;
                if matches!(event, LegEvent::Rejected { .. }) {
                    self.finish_lingering(now, c, leg, 0);
                }
            }
            return;
        };
        let notice = self.calls.get(&call).is_some_and(|c| c.notice.is_some());
        if notice && party == Party::Customer {
            return self.notice_leg_event(now, call, leg, event);
        }
        let work = self.calls.get(&call).is_some_and(|c| c.work.is_some());
        if work && party == Party::Customer {
            return self.work_leg_event(now, call, leg, event);
        }
        if self.is_consult_leg(call, leg) {
            return self.consult_leg_event(now, call, leg, event);
        }
        if self.is_transfer_leg(call, leg) && !matches!(event, LegEvent::MediaChanged { .. }) {
            return self.transfer_leg_event(now, call, leg, event);
        }
        match (party, event) {
            (_, LegEvent::MediaChanged { remote, sending }) => {
                self.media(
                    call,
                    MediaCommand::Update {
                        leg,
                        remote,
                        sending,
                    },
                );
                if party == Party::Agent {
                    self.agent_media_changed(now, call, leg, sending);
                }
            }
            (Party::Customer, LegEvent::Confirmed { first: true }) => {
                // Media opens with the confirmed dialog, so a lost ACK is
                // timer H's business, not the RTP inactivity timeout's.
                self.start_media(now, call, leg);
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if let Some(feature) = c.feature {
                    return self.run_feature(now, call, feature);
                }
                c.ivr.start(now);
                self.apply_ivr(now, call);
            }
            (_, LegEvent::Confirmed { .. }) | (_, LegEvent::Progress { .. }) => {}
            (Party::Customer, LegEvent::MediaUnusable) => {
                self.hangup(now, call, Outcome::NoCommonCodec, Disposition::Failed)
            }
            (Party::Customer, LegEvent::Cancelled) => self.end_call(
                now,
                call,
                Ending {
                    outcome: Outcome::CallerCancelled,
                    disposition: Disposition::Cancelled,
                    side: Some(HangupSide::Caller),
                    status: 487,
                },
            ),
            (Party::Customer, LegEvent::HungUp) => {
                info!("caller hung up");
                self.end_call(
                    now,
                    call,
                    Ending {
                        outcome: Outcome::CallerHangup,
                        disposition: Disposition::Answered,
                        side: Some(HangupSide::Caller),
                        status: 200,
                    },
                );
            }
            (Party::Customer, LegEvent::Digit(digit)) => {
                self.digit(now, call, digit, DigitSource::SipInfo)
            }
            (Party::Customer, LegEvent::NoAck) => {
                self.hangup(now, call, Outcome::NoAck, Disposition::Failed)
            }
            (Party::Agent, event) => self.agent_leg_event(now, call, leg, event),
            (Party::Other, LegEvent::Answered) => self.start_media(now, call, leg),
            (
                Party::Other,
                LegEvent::Rejected { .. } | LegEvent::HungUp | LegEvent::MediaUnusable,
            ) => {
                self.end_leg(call, leg);
            }
            _ => {}
        }
    }

    // ---- operations on legs ----------------------------------------------

    /// Places a new leg of `call` to `target`, offering our media with the
    /// customer's codec first. Its progress comes back as leg events; an
    /// answered leg opens its media but is not bridged until asked.
    pub fn place_leg(
        &mut self,
        now: Instant,
        call: CallKey,
        target: &LegTarget,
        headers: &[(&str, &str)],
    ) -> Result<LegKey, PlaceError> {
        let c = self.calls.get(&call).ok_or(PlaceError::NoCall)?;
        if c.legs.len() >= crate::media::call_media::MAX_LEGS {
            return Err(PlaceError::TooManyLegs);
        }
        let preferred: Option<Codec> = c
            .customer_leg()
            .and_then(|l| l.media.negotiated)
            .map(|n| n.codec);
        let port = self.ports.take().ok_or(PlaceError::NoPort)?;
        let key = LegKey(self.next_key());
        let offer = Offer {
            port,
            media_address: self.settings.media_address,
            preferred,
            headers,
        };
        let leg = Leg::outgoing(now, &mut self.wire, key, call, target, offer);
        self.dialogs.insert(
            (leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()),
            (call, key),
        );
        info!(leg = %key, target = %target.uri, "placing a leg");
        if let Some(c) = self.calls.get_mut(&call) {
            c.legs.push(leg);
        }
        Ok(key)
    }

    /// Relays audio between two answered legs of a call, both ways.
    pub fn bridge(&mut self, call: CallKey, a: LegKey, b: LegKey) -> bool {
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let ready = |k| c.leg(k).is_some_and(|l: &Leg| l.media.started);
        if a == b || !ready(a) || !ready(b) {
            return false;
        }
        c.bridge = Some((a, b));
        self.media(call, MediaCommand::Bridge { a, b });
        true
    }

    /// Puts `new` in the place of `old` (the basis of a transfer): whoever
    /// was bridged with `old` is bridged with `new`, and `old` is hung up.
    pub fn replace_leg(&mut self, now: Instant, call: CallKey, old: LegKey, new: LegKey) -> bool {
        let Some(c) = self.calls.get(&call) else {
            return false;
        };
        let partner = match c.bridge {
            Some((a, b)) if a == old => Some(b),
            Some((a, b)) if b == old => Some(a),
            _ => None,
        };
        if c.leg(new).is_none_or(|l| !l.media.started) {
            return false;
        }
        if c.customer == old {
            if let Some(c) = self.calls.get_mut(&call) {
                c.customer = new;
            }
        }
        self.hangup_leg(now, call, old);
        if let Some(p) = partner {
            self.bridge(call, p, new);
        }
        true
    }

    /// Ends one leg of a call: CANCEL while it rings, BYE once answered.
    /// The call goes on without it.
    pub fn hangup_leg(&mut self, now: Instant, call: CallKey, leg: LegKey) {
        let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        match l.role {
            Role::Uac => l.cancel_or_bye(now, &mut self.wire),
            Role::Uas if l.answered() => {
                l.send_bye(now, &mut self.wire);
            }
            Role::Uas => l.reject(now, &mut self.wire, 487, "Request Terminated", &[]),
        }
        // A ringing leg stays until its 487 (or a crossing 200) comes back.
        let ringing = l.role == Role::Uac && !l.answered();
        if !ringing {
            self.end_leg(call, leg);
        }
    }

    /// Forgets a leg that is over: its dialog, its port and its media.
    pub(super) fn end_leg(&mut self, call: CallKey, leg: LegKey) -> Option<Leg> {
        let c = self.calls.get_mut(&call)?;
        let l = c.remove_leg(leg)?;
        c.agent_legs.retain(|(k, _)| *k != leg);
        self.dialogs
            .remove(&(l.dialog.call_id.clone(), l.dialog.local_tag.clone()));
        self.incoming.remove(&l.invite_tx);
        if let Some(tx) = &l.awaiting_ack {
            self.wire.server_txs.remove(tx);
        }
        self.ports.release(l.media.port);
        if l.media.started {
            self.media(call, MediaCommand::CloseLeg { leg });
        }
        Some(l)
    }

    /// The shell could not open a leg's RTP port.
    pub(super) fn media_failed(&mut self, now: Instant, call: CallKey, leg: LegKey) {
        match self.party(call, leg) {
            Some(Party::Customer) => {
                self.hangup(now, call, Outcome::MediaFailed, Disposition::Failed)
            }
            Some(_) => self.hangup_leg(now, call, leg),
            None => {}
        }
    }

    // ---- ending calls ----------------------------------------------------

    /// The engine hangs up an answered call: BYE, then the record.
    pub(super) fn hangup(
        &mut self,
        now: Instant,
        key: CallKey,
        outcome: Outcome,
        disposition: Disposition,
    ) {
        let Some(leg) = self.calls.get_mut(&key).and_then(|c| c.customer_leg_mut()) else {
            return;
        };
        let status = if leg.answered() { 200 } else { 0 };
        leg.send_bye(now, &mut self.wire);
        self.end_call(
            now,
            key,
            Ending {
                outcome,
                disposition,
                side: Some(HangupSide::Engine),
                status,
            },
        );
    }

    /// Answers a still-ringing call with a final error and ends it.
    pub(super) fn reject_ringing(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        outcome: Outcome,
    ) {
        self.reject_ringing_with(now, key, (status, reason, outcome), &[])
    }

    fn reject_ringing_with(
        &mut self,
        now: Instant,
        key: CallKey,
        (status, reason, outcome): (u16, &str, Outcome),
        extra: &[(&str, &str)],
    ) {
        let Some(leg) = self.calls.get_mut(&key).and_then(|c| c.customer_leg_mut()) else {
            return;
        };
        leg.reject(now, &mut self.wire, status, reason, extra);
        let (disposition, side) = match outcome {
            Outcome::CallerCancelled => (Disposition::Cancelled, Some(HangupSide::Caller)),
            _ => (Disposition::Rejected, Some(HangupSide::Engine)),
        };
        self.end_call(
            now,
            key,
            Ending {
                outcome,
                disposition,
                side,
                status,
            },
        );
    }

    /// The call is over: its other legs are hung up, its record built,
    /// and its last messages wait for the record to be durable.
    pub(super) fn end_call(&mut self, now: Instant, key: CallKey, end: Ending) {
        self.message_at_call_end(now, key);
        self.caller_gone(now, key);
        self.disengage_direct_agent(now, key);
        let legs: Vec<LegKey> = self
            .calls
            .get(&key)
            .map(|c| c.legs.iter().map(|l| l.key).collect())
            .unwrap_or_default();
        let customer = self.calls.get(&key).map(|c| c.customer);
        let mut customer_leg = None;
        for leg in legs {
            if Some(leg) != customer {
                self.hangup_leg(now, key, leg);
            }
            let agent = self.calls.get(&key).and_then(|c| c.agent_of(leg));
            let Some(l) = self.end_leg(key, leg) else {
                continue;
            };
            if Some(leg) == customer {
                customer_leg = Some(l);
            } else if l.role == Role::Uac && !l.answered() {
                // CANCEL is out: the leg lingers to ACK the 487 (or hang
                // up a 200 that crossed it) after the call is gone.
                self.lingering.insert(leg, (key, l, agent));
            }
        }
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        let Some(customer) = customer_leg else {
            return;
        };
        let mut record = record::build(&call, &customer, self.clock, now, end);
        info!(outcome = ?end.outcome, "call ended");
        if let Some(n) = &call.notice {
            let caller_id = self.trunks[n.trunk].config.caller_id.clone();
            record::add_notice(&mut record, n, &caller_id);
            self.notice_call_ended(now, n, record.call_id.clone());
        } else if call.work.is_some() {
            self.work_call_ended(now, &call, &mut record);
            self.remember_contact(now, &record);
        } else {
            self.remember_contact(now, &record);
            self.tasks_after_call(now, &call, &mut record);
            if record.repeat_of.is_some() && !record.outcome.is_invalid() {
                self.live_event(
                    now,
                    LiveEvent::RepeatContact {
                        arrival: call.arrived_at,
                    },
                );
            }
            if let Some((campaign, name)) = &call.notified_by {
                record.campaign = Some(campaign.0);
                record.campaign_name = Some(name.clone());
            }
            self.live_event(
                now,
                LiveEvent::CallEnded {
                    call: key,
                    arrival: call.arrived_at,
                    outcome: end.outcome,
                    answered: customer.answered(),
                },
            );
        }
        let mut then_send = Vec::new();
        for (t, status) in self.wire.take_owned(key) {
            if let Some(code) = status {
                self.live.sip_response_sent(code);
            }
            then_send.push(t);
        }
        self.wire.push(Output::CallEnded {
            call: key,
            record: Box::new(record),
            then_send,
        });
    }

    /// A new INVITE refused before any call state exists (400, 416, 420,
    /// 483) still leaves a record.
    pub(super) fn record_refused_invite(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &SipRequest,
        status: u16,
    ) {
        if req.method != Method::Invite || req.to_tag.is_some() {
            return;
        }
        self.wire.counters.calls_offered += 1;
        let key = CallKey(self.next_key());
        let mut req = req.clone();
        req.take_caller_id(self.settings.caller_id_from);
        let mut record = record::base(key, &req, peer, now, self.clock, now);
        record.sip_status = status;
        info!(status, "INVITE refused");
        self.live_event(
            now,
            LiveEvent::CallEnded {
                call: key,
                arrival: now,
                outcome: record.outcome,
                answered: false,
            },
        );
        self.wire.push(Output::CallEnded {
            call: key,
            record: Box::new(record),
            then_send: Vec::new(),
        });
    }

    /// The legs of a call, for tests and the live view.
    pub fn call_legs(&self, call: CallKey) -> Vec<LegKey> {
        self.calls
            .get(&call)
            .map(|c| c.legs.iter().map(|l| l.key).collect())
            .unwrap_or_default()
    }

    /// The calls in progress.
    pub fn calls(&self) -> Vec<CallKey> {
        let mut keys: Vec<CallKey> = self.calls.keys().copied().collect();
        keys.sort();
        keys
    }

    /// The customer's leg of a call.
    pub fn customer_leg(&self, call: CallKey) -> Option<LegKey> {
        self.calls.get(&call).map(|c| c.customer)
    }
}
