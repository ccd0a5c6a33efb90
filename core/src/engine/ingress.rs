//! SIP in: parse, guard, absorb retransmissions, and route each request
//! or response to the transaction and leg it belongs to.

use std::time::Instant;

use tracing::{debug, info, info_span, warn};

use super::{guard, Engine};
use crate::ids::{CallKey, LegKey};
use crate::io::Peer;
use crate::sip::build::ALLOW;
use crate::sip::message::{self, Method, ParseError, SipMessage, SipRequest, SipResponse};
use crate::sip::transaction::ServerState;
use crate::wire::{TxKey, Wake};

impl Engine {
    pub(super) fn handle_sip(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        if self.guard.is_banned(now, peer.addr.ip()) {
            // Checked before parsing: a flood costs as little as possible.
            self.wire.counters.flood_dropped += 1;
            return;
        }
        if data.len() > self.settings.limits.max_message_size {
            self.wire.counters.oversized += 1;
            debug!(bytes = data.len(), from = %peer.addr, "message too large");
        }
        match message::parse_with(data, &self.settings.limits) {
            Ok(SipMessage::Request(req)) => {
                let span = info_span!("call", call_id = %req.call_id);
                let _entered = span.enter();
                self.handle_request(now, peer, req)
            }
            Ok(SipMessage::Response(resp)) => self.handle_response(now, peer, resp),
            Err(ParseError::BadRequest { reason, request }) => {
                self.refuse_unparsed(now, peer, &request, 400, &reason, &[]);
            }
            Err(ParseError::Refused {
                status,
                reason,
                headers,
                request,
            }) => self.refuse_unparsed(now, peer, &request, status, reason, headers),
            Err(ParseError::UnsupportedScheme { request }) => {
                self.refuse_unparsed(now, peer, &request, 416, "Unsupported URI Scheme", &[]);
            }
            Err(e) => {
                self.wire.counters.datagrams_dropped += 1;
                debug!(error = %e, from = %peer.addr, "dropped");
            }
        }
    }

    /// A request we could not take whole: answered without a transaction
    /// (never an ACK), and an INVITE still leaves a record.
    fn refuse_unparsed(
        &mut self,
        now: Instant,
        peer: Peer,
        request: &SipRequest,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) {
        self.wire.counters.bad_requests += 1;
        debug!(status, reason, from = %peer.addr, "request refused");
        if request.method != Method::Ack {
            self.wire
                .respond_stateless(peer, request, status, reason, headers);
            self.record_refused_invite(now, peer, request, status);
        }
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let method = req.method.clone();
        if method == Method::Ack {
            return self.handle_ack(now, peer, req);
        }
        let key = TxKey::new(&req.branch, method.clone());
        if let Some((tx, tx_peer)) = self.wire.server_txs.get(&key) {
            // A retransmission: answer again with what we last sent.
            self.wire.counters.retransmissions_absorbed += 1;
            if let Some(resp) = tx.handle_retransmission() {
                let (data, tx_peer) = (resp.to_vec(), *tx_peer);
                self.wire.send(None, tx_peer, data);
            }
            return;
        }
        if method == Method::Cancel {
            return self.handle_cancel(now, peer, req);
        }
        let limited = match method {
            Method::Invite if req.to_tag.is_none() => Some(guard::Limited::Invite),
            Method::Register => Some(guard::Limited::Register),
            _ => None,
        };
        if let Some(kind) = limited {
            if self.guard.check(now, peer.addr.ip(), kind) == guard::Verdict::Banned {
                warn!(source = %peer.addr.ip(), ?kind, "flooding: banned, its requests are dropped");
                self.wire.counters.flood_dropped += 1;
                return;
            }
        }
        // Path is the one extension we support (RFC 3327, for REGISTER).
        let unsupported: Vec<&str> = req
            .require
            .iter()
            .map(String::as_str)
            .filter(|r| !(method == Method::Register && r.eq_ignore_ascii_case("path")))
            .collect();
        if !unsupported.is_empty() {
            let unsupported = unsupported.join(", ");
            let extra = [("Unsupported", unsupported.as_str())];
            self.wire
                .respond_new(now, None, peer, &req, 420, "Bad Extension", &extra);
            return self.record_refused_invite(now, peer, &req, 420);
        }
        if req.max_forwards == Some(0) && method != Method::Options {
            self.wire
                .respond_new(now, None, peer, &req, 483, "Too Many Hops", &[]);
            return self.record_refused_invite(now, peer, &req, 483);
        }
        if req.to_tag.is_some() {
            if let Some((call, leg)) = self.dialog_leg(&req) {
                return self.leg_request(now, call, leg, peer, &req);
            }
        }
        match method {
            Method::Invite if req.to_tag.is_none() => self.handle_new_invite(now, peer, req),
            Method::Register => self.handle_register(now, peer, &req),
            Method::Options => {
                let allow = [
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", ""),
                ];
                self.wire
                    .respond_new(now, None, peer, &req, 200, "OK", &allow)
            }
            // In a dialog we do not have.
            Method::Invite | Method::Bye | Method::Info => self.wire.respond_new(
                now,
                None,
                peer,
                &req,
                481,
                "Call/Transaction Does Not Exist",
                &[],
            ),
            _ => self.wire.respond_new(
                now,
                None,
                peer,
                &req,
                501,
                "Not Implemented",
                &[("Allow", ALLOW)],
            ),
        }
    }

    /// A request inside a leg's dialog: the leg answers it, the call flow
    /// takes what it reports.
    fn leg_request(
        &mut self,
        now: Instant,
        call: CallKey,
        leg: LegKey,
        peer: Peer,
        req: &SipRequest,
    ) {
        let media_address = self.settings.media_address;
        let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        if let Some(event) = l.on_request(now, &mut self.wire, peer, req, media_address) {
            self.leg_event(now, call, leg, event);
        }
    }

    fn handle_response(&mut self, now: Instant, peer: Peer, resp: SipResponse) {
        let method = resp.cseq_method.clone();
        if method == Method::Invite {
            if let Some(c) = self.wire.invite_client_txs.get_mut(&resp.branch) {
                let outcome = c.tx.handle_response(now, resp.status);
                let owner = c.owner;
                let wake = c.tx.poll_timeout();
                self.wire
                    .schedule(wake, Wake::InviteClientTx(resp.branch.clone()));
                let (call, leg) = owner;
                let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) else {
                    return self.lingering_response(now, leg, &resp, outcome);
                };
                if let Some(event) = l.on_invite_response(now, &mut self.wire, &resp, outcome) {
                    self.leg_event(now, call, leg, event);
                }
                return;
            }
        }
        let key = TxKey::new(&resp.branch, method);
        let Some((tx, _)) = self.wire.client_txs.get_mut(&key) else {
            self.wire.counters.datagrams_dropped += 1;
            return;
        };
        tx.handle_response(now, resp.status, peer.transport.reliable());
        debug!(status = resp.status, call_id = %resp.call_id, "response to our {}", resp.cseq_method);
        let wake = tx.poll_timeout();
        self.wire.schedule(wake, Wake::ClientTx(key.clone()));
        if resp.status >= 200 {
            self.bye_done(now, &key);
        }
    }

    /// The call and leg of a request inside a dialog (by Call-ID and our
    /// tag in its To).
    pub(super) fn dialog_leg(&self, req: &SipRequest) -> Option<(CallKey, LegKey)> {
        let tag = req.to_tag.as_ref()?;
        self.dialogs
            .get(&(req.call_id.clone(), tag.clone()))
            .copied()
    }

    fn handle_ack(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        // ACK for a non-2xx final response: same branch as the INVITE.
        let key = TxKey::new(&req.branch, Method::Invite);
        if let Some((tx, _)) = self.wire.server_txs.get_mut(&key) {
            if !tx.is_terminated() && tx.state() == ServerState::Completed {
                tx.handle_ack(now);
                let wake = tx.poll_timeout();
                self.wire.schedule(wake, Wake::ServerTx(key));
                return;
            }
        }
        let Some((call, leg)) = self.dialog_leg(&req) else {
            self.wire.counters.datagrams_dropped += 1;
            return;
        };
        let _ = peer;
        let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        // None: a retransmitted ACK.
        if let Some(event) = l.on_ack(now, &mut self.wire, &req) {
            self.leg_event(now, call, leg, event);
        }
    }

    fn handle_cancel(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let invite_key = TxKey::new(&req.branch, Method::Invite);
        if !self.wire.server_txs.contains_key(&invite_key) {
            return self.wire.respond_new(
                now,
                None,
                peer,
                &req,
                481,
                "Call/Transaction Does Not Exist",
                &[],
            );
        }
        let owner = self.incoming.get(&invite_key).copied();
        // The 200 to CANCEL carries the INVITE's To tag (RFC 3261 9.2).
        let mut req = req;
        let tag =
            owner.and_then(|(c, l)| Some(self.calls.get(&c)?.leg(l)?.dialog.local_tag.clone()));
        if let Some(tag) = tag {
            req.to = format!("{};tag={tag}", req.to);
            req.to_tag = Some(tag);
        }
        self.wire
            .respond_new(now, owner.map(|o| o.0), peer, &req, 200, "OK", &[]);
        let Some((call, leg)) = owner else { return };
        let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        if let Some(event) = l.on_cancel(now, &mut self.wire) {
            info!("cancelled while ringing");
            self.leg_event(now, call, leg, event);
        }
    }

    /// No ACK for our 2xx within 64*T1: the dialog is dead.
    pub(super) fn timer_h_fired(&mut self, now: Instant, key: &TxKey) {
        let found = self.calls.iter().find_map(|(c, call)| {
            call.legs
                .iter()
                .find(|l| l.awaiting_ack.as_ref() == Some(key))
                .map(|l| (*c, l.key, l.dialog.call_id.clone()))
        });
        if let Some((call, leg, call_id)) = found {
            let span = info_span!("call", call_id = %call_id);
            let _entered = span.enter();
            warn!("timer H: no ACK for 200 OK");
            if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.leg_mut(leg)) {
                l.awaiting_ack = None;
            }
            self.leg_event(now, call, leg, crate::leg::LegEvent::NoAck);
        }
    }
}
