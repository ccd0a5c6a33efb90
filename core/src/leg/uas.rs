//! The UAS side of a leg: an INVITE we received. 100 Trying at once,
//! ringing, the answer (retransmitted until the ACK), or a final error;
//! CANCEL before the answer.

use std::net::IpAddr;
use std::time::Instant;

use tracing::info;

use super::{Dialog, Leg, LegEvent, LegMedia, LegState, Role};
use crate::ids::{CallKey, LegKey};
use crate::io::Peer;
use crate::sip::build::{self, Body, ALLOW};
use crate::sip::message::{self, Method, SipRequest};
use crate::sip::sdp::{self, SdpError};
use crate::sip::transaction::ServerTransaction;
use crate::wire::{TxKey, Wake, Wire};

impl Leg {
    /// A leg for a new INVITE: its server transaction starts and 100
    /// Trying leaves at once. The leg has no RTP port yet.
    pub fn incoming(
        now: Instant,
        wire: &mut Wire,
        key: LegKey,
        call: CallKey,
        peer: Peer,
        req: SipRequest,
    ) -> Leg {
        let invite_tx = TxKey::new(&req.branch, Method::Invite);
        let mut tx = ServerTransaction::new(true, peer.transport.reliable(), wire.timers_base);
        let trying = build::response(&req, peer.addr, 100, "Trying", None, &[], None);
        tx.provisional(trying.clone());
        wire.send_response(Some(call), peer, 100, trying);
        wire.server_txs.insert(invite_tx.clone(), (tx, peer));
        let local_tag = wire.token(10);
        let remote_target = req
            .contact
            .clone()
            .unwrap_or_else(|| message::name_addr_uri(&req.from).to_string());
        let sdp_session = wire.sdp_session_id();
        let local_cseq = wire.initial_cseq();
        Leg {
            key,
            call,
            role: Role::Uas,
            state: LegState::Incoming,
            dialog: Dialog {
                call_id: req.call_id.clone(),
                local_party: format!("{};tag={local_tag}", req.to),
                local_tag,
                remote_tag: req.from_tag.clone(),
                remote_party: req.from.clone(),
                remote_target,
                // The UAS's route set is the Record-Route list in its order.
                route: req.record_route.clone(),
                local_cseq,
                remote_cseq: req.cseq,
                peer,
            },
            invite_tx,
            invite_cseq: req.cseq,
            awaiting_ack: None,
            request_uri: req.uri.clone(),
            invite: Some(req),
            media: LegMedia::new(0, sdp_session),
            outgoing: None,
            created_at: now,
            ringing_at: None,
            answered_at: None,
            media_start_at: None,
        }
    }

    /// Takes the INVITE's SDP offer, if it has one: a body that is not SDP,
    /// or an offer with no codec we speak, is an error (488).
    pub fn take_offer(&mut self) -> Result<(), SdpError> {
        let Some(invite) = &self.invite else {
            return Ok(());
        };
        if invite.body.is_empty() {
            return Ok(());
        }
        let is_sdp = invite
            .content_type
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        if !is_sdp {
            return Err(SdpError::NotText);
        }
        let (offer, n) = sdp::parse_and_negotiate(&invite.body)?;
        self.media.remote = Some(offer);
        self.media.negotiated = Some(n);
        Ok(())
    }

    /// 180 Ringing, with our tag and Contact.
    pub fn ring(&mut self, now: Instant, wire: &mut Wire) {
        let Some(invite) = &self.invite else { return };
        let contact = wire.answer_contact(self.dialog.peer.transport, &invite.uri);
        let ringing = build::response(
            invite,
            self.dialog.peer.addr,
            180,
            "Ringing",
            Some(&self.dialog.local_tag),
            &[("Contact", &contact)],
            None,
        );
        if let Some((tx, _)) = wire.server_txs.get_mut(&self.invite_tx) {
            tx.provisional(ringing.clone());
        }
        wire.send_response(Some(self.call), self.dialog.peer, 180, ringing);
        self.ringing_at = Some(now);
    }

    /// 200 OK with our SDP (the answer, or an offer when the INVITE had
    /// none), retransmitted until the ACK.
    pub fn answer(&mut self, now: Instant, wire: &mut Wire, media_address: IpAddr) {
        if self.state != LegState::Incoming {
            return;
        }
        let Some(invite) = &self.invite else { return };
        let body = self.media.local_sdp(media_address);
        let contact = wire.answer_contact(self.dialog.peer.transport, &invite.uri);
        let response = build::response(
            invite,
            self.dialog.peer.addr,
            200,
            "OK",
            Some(&self.dialog.local_tag),
            &[("Contact", &contact), ("Allow", ALLOW), ("Supported", "")],
            Some(Body {
                content_type: "application/sdp",
                bytes: body.as_bytes(),
            }),
        );
        self.state = LegState::Answering;
        self.answered_at = Some(now);
        self.awaiting_ack = Some(self.invite_tx.clone());
        wire.send_response(Some(self.call), self.dialog.peer, 200, response.clone());
        if let Some((tx, _)) = wire.server_txs.get_mut(&self.invite_tx) {
            tx.final_response(now, 200, response);
            let wake = tx.poll_timeout();
            wire.schedule(wake, Wake::ServerTx(self.invite_tx.clone()));
        }
    }

    /// Refuses the INVITE with a final error (the leg is then over).
    pub fn reject(
        &mut self,
        now: Instant,
        wire: &mut Wire,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let Some(invite) = &self.invite else { return };
        let response = build::response(
            invite,
            self.dialog.peer.addr,
            status,
            reason,
            Some(&self.dialog.local_tag),
            extra,
            None,
        );
        if let Some((tx, _)) = wire.server_txs.get_mut(&self.invite_tx) {
            tx.final_response(now, status, response.clone());
            let wake = tx.poll_timeout();
            wire.schedule(wake, Wake::ServerTx(self.invite_tx.clone()));
        }
        wire.send_response(Some(self.call), self.dialog.peer, status, response);
    }

    /// The ACK for our 2xx. An INVITE without SDP got our offer in the 200
    /// and its answer comes here.
    pub fn on_ack(&mut self, now: Instant, wire: &mut Wire, req: &SipRequest) -> Option<LegEvent> {
        let tx_key = self.awaiting_ack.take()?;
        let first = self.state == LegState::Answering;
        self.state = LegState::Confirmed;
        if let Some((tx, _)) = wire.server_txs.get_mut(&tx_key) {
            tx.handle_ack(now);
        }
        wire.server_txs.remove(&tx_key);
        if first && self.media.remote.is_none() {
            match sdp::parse_and_negotiate(&req.body) {
                Ok((answer, n)) => {
                    self.media.remote = Some(answer);
                    self.media.negotiated = Some(n);
                }
                Err(e) => {
                    info!(error = %e, "ACK without usable SDP answer");
                    return Some(LegEvent::MediaUnusable);
                }
            }
        }
        Some(LegEvent::Confirmed { first })
    }

    /// CANCEL for our INVITE: 200 to the CANCEL (the server transaction
    /// is the engine's), then 487 to the INVITE while still ringing.
    pub fn on_cancel(&mut self, now: Instant, wire: &mut Wire) -> Option<LegEvent> {
        if self.state != LegState::Incoming {
            return None;
        }
        self.reject(now, wire, 487, "Request Terminated", &[]);
        Some(LegEvent::Cancelled)
    }
}
