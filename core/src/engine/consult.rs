//! The attended transfer: an agent holding a caller calls a colleague from
//! the same phone (a consultation call, which hotline places as part of
//! the caller's call), then transfers with REFER + Replaces (RFC 3891):
//! the caller is connected with the colleague, and both of the first
//! agent's calls end.

use std::time::Instant;

use tracing::info;

use super::controls::ControlError;
use super::Engine;
use crate::acd::{AcdInput, AgentState};
use crate::call::controls::{Consult, Transfer, TransferTarget};
use crate::ids::{CallKey, LegKey};
use crate::io::Peer;
use crate::leg::{Leg, LegEvent};
use crate::media::call_media::MediaCommand;
use crate::sip::message::SipRequest;

impl Engine {
    /// Whether a new INVITE is a consultation: it comes from a registered
    /// agent's phone, that agent holds a caller, and it dials another
    /// agent (by id or number). Returns the caller's call and the agent
    /// dialled.
    pub(super) fn consultation_for(
        &self,
        req: &SipRequest,
        peer: Peer,
    ) -> Option<(CallKey, String)> {
        let agent = req.from_user();
        let from_phone = self
            .registrar
            .bindings(agent)
            .iter()
            .any(|b| b.source.ip() == peer.addr.ip());
        if !from_phone {
            return None;
        }
        let dialled = match self.transfer_target(req.uri_user())? {
            TransferTarget::Agent(a) if a != agent => a,
            _ => return None,
        };
        let (call, _) = self.calls.iter().find(|(_, c)| {
            c.controls.consult.is_none()
                && c.controls.transferring.is_none()
                && c.controls
                    .held_partner
                    .and_then(|l| c.agent_of(l))
                    .is_some_and(|a| a == agent)
        })?;
        Some((*call, dialled))
    }

    /// Takes the holding agent's second call into the caller's call and
    /// rings the colleague; the phone hears ringing until they answer.
    pub(super) fn start_consultation(
        &mut self,
        now: Instant,
        call: CallKey,
        agent: String,
        peer: Peer,
        req: SipRequest,
    ) {
        let from = req.from_user().to_string();
        let phone = LegKey(self.next_key());
        let mut leg = Leg::incoming(now, &mut self.wire, phone, call, peer, req);
        self.incoming.insert(leg.invite_tx.clone(), (call, phone));
        self.dialogs.insert(
            (leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()),
            (call, phone),
        );
        let refusal = match (leg.take_offer(), self.ports.take()) {
            (Err(_), port) => {
                if let Some(p) = port {
                    self.ports.release(p);
                }
                Some((488, "Not Acceptable Here"))
            }
            (Ok(()), None) => Some((503, "Service Unavailable")),
            (Ok(()), Some(port)) => {
                leg.media.port = port;
                None
            }
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.legs.push(leg);
        if let Some((status, reason)) = refusal {
            info!(status, "consultation call refused");
            return self.refuse_consultation(now, call, phone, status, reason);
        }
        let usable = self
            .acd
            .agent(&agent)
            .is_some_and(|a| a.state == AgentState::Idle && a.reachable);
        let target = usable
            .then(|| self.ring_agent_directly(now, call, &agent))
            .flatten();
        let Some(target) = target else {
            info!(%agent, "consulted agent busy");
            return self.refuse_consultation(now, call, phone, 486, "Busy Here");
        };
        info!(%from, %agent, "consultation call");
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.controls.consult = Some(Consult {
            from,
            phone,
            agent,
            target,
        });
        if let Some(l) = c.leg_mut(phone) {
            l.ring(now, &mut self.wire);
        }
    }

    fn refuse_consultation(
        &mut self,
        now: Instant,
        call: CallKey,
        phone: LegKey,
        status: u16,
        reason: &str,
    ) {
        if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(phone)) {
            l.reject(now, &mut self.wire, status, reason, &[]);
        }
        self.end_leg(call, phone);
    }

    pub(super) fn is_consult_leg(&self, call: CallKey, leg: LegKey) -> bool {
        self.calls
            .get(&call)
            .and_then(|c| c.controls.consult.as_ref())
            .is_some_and(|k| k.phone == leg || k.target == leg)
    }

    /// What a consultation's legs did: the colleague's answer answers the
    /// phone's call and the two are bridged; either side leaving ends the
    /// consultation, and the caller stays on hold with the first agent.
    pub(super) fn consult_leg_event(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        event: LegEvent,
    ) {
        let Some(k) = self
            .calls
            .get(&call)
            .and_then(|c| c.controls.consult.clone())
        else {
            return;
        };
        let media_address = self.settings.media_address;
        match event {
            LegEvent::MediaChanged { remote, sending } => self.media(
                call,
                MediaCommand::Update {
                    leg,
                    remote,
                    sending,
                },
            ),
            LegEvent::Answered if leg == k.target => {
                self.start_media(now, call, leg);
                if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(k.phone)) {
                    l.answer(now, &mut self.wire, media_address);
                }
            }
            LegEvent::Confirmed { first: true } if leg == k.phone => {
                self.start_media(now, call, leg);
                info!(agent = %k.agent, "consultation connected");
                self.bridge(call, k.phone, k.target);
            }
            LegEvent::Rejected { status, .. } if leg == k.target => {
                let status = if status == 0 { 480 } else { status };
                info!(status, "consultation not answered");
                self.end_leg(call, k.target);
                self.refuse_consultation(now, call, k.phone, status, "Not Answered");
                self.end_consultation(now, call, &k.agent);
            }
            LegEvent::HungUp | LegEvent::Cancelled | LegEvent::NoAck | LegEvent::MediaUnusable => {
                info!("consultation over");
                let other = if leg == k.phone { k.target } else { k.phone };
                self.end_leg(call, leg);
                self.hangup_leg(now, call, other);
                self.end_consultation(now, call, &k.agent);
            }
            _ => {}
        }
    }

    /// The consultation is over; the consulted agent is free again.
    fn end_consultation(&mut self, now: Instant, call: CallKey, agent: &str) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.controls.consult = None;
            if c.bridge
                .is_some_and(|(a, b)| c.leg(a).is_none() || c.leg(b).is_none())
            {
                c.bridge = None;
            }
        }
        self.tell_engaged(agent, false);
        self.acd.handle(
            now,
            AcdInput::AgentEngaged {
                agent: agent.to_string(),
                engaged: false,
            },
        );
        self.apply_acd(now);
    }

    /// REFER with Replaces from the holding agent's phone, on the call
    /// with the caller, naming the consultation call: the caller is
    /// connected with the colleague, the first agent's two calls end and
    /// they go to wrap-up. NOTIFY tells their phone it went through.
    pub(super) fn attended_transfer(
        &mut self,
        now: Instant,
        call: CallKey,
        refer: LegKey,
        replaces: &str,
    ) -> Result<(), ControlError> {
        let c = self.calls.get(&call).ok_or(ControlError::NoCall)?;
        let k = c
            .controls
            .consult
            .clone()
            .ok_or(ControlError::NoConsultation)?;
        let named = c.leg(k.phone).is_some_and(|l| l.dialog.call_id == replaces);
        let connected = c.leg(k.target).is_some_and(|l| l.media.started)
            && c.leg(k.phone).is_some_and(|l| l.media.started);
        if !named || !connected || c.controls.held_partner != Some(refer) {
            return Err(ControlError::NoConsultation);
        }
        let from = c.agent_of(refer);
        let customer = c.customer;
        info!(to = %k.agent, "attended transfer");
        self.end_hold(now, call);
        let Some(c) = self.calls.get_mut(&call) else {
            return Err(ControlError::NoCall);
        };
        c.controls.agent_parted(now);
        c.controls.agent_connected(now, k.agent.clone());
        c.controls.transfers.push(Transfer {
            from: from.clone(),
            to: TransferTarget::Agent(k.agent.clone()),
            at: now,
            result: Some("answered"),
        });
        c.controls.consult = None;
        // The colleague is now the call's agent, engaged until they hang
        // up (as after a blind transfer they answered).
        c.controls.direct_agent = Some((k.target, k.agent.clone()));
        c.playing = None;
        if let Some(l) = c.leg_mut(refer) {
            l.notify_refer(now, &mut self.wire, 200, "OK", true);
        }
        self.media(call, MediaCommand::StopPlayback { leg: customer });
        self.hangup_leg(now, call, k.phone);
        self.bridge(call, customer, k.target);
        self.hangup_leg(now, call, refer);
        if let Some(agent) = from {
            self.acd.handle(
                now,
                AcdInput::AgentTransferred {
                    caller: call,
                    agent,
                    to: k.agent,
                    attended: true,
                },
            );
            self.apply_acd(now);
        }
        Ok(())
    }
}
