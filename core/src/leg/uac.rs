//! The UAC side of a leg: an INVITE we send, to an agent's phone or to
//! any number through a trunk. Provisional responses (ringing, early
//! media) are progress, never an answer; the 2xx is ACKed and answers;
//! a final error is ACKed and rejects; CANCEL stops a ringing leg.

use std::net::IpAddr;
use std::time::Instant;

use tracing::warn;

use super::{Dialog, Leg, LegEvent, LegMedia, LegState, Role};
use crate::ids::{CallKey, LegKey};
use crate::io::Peer;
use crate::media::g711::Codec;
use crate::sip::build::{self, Body, DialogRequest, ALLOW};
use crate::sip::digest::{self, Challenge, Secret};
use crate::sip::message::{Method, SipResponse};
use crate::sip::sdp::{self, Direction, LocalMedia};
use crate::sip::transaction::InviteResponse;
use crate::wire::{is_sips, TxKey, Wire};

/// Where a leg is placed: any SIP URI, the next hop it is sent to, and
/// the route set to reach it (a registration's Path, a trunk's proxy).
#[derive(Debug, Clone)]
pub struct LegTarget {
    /// The Request-URI: an agent's registered Contact, or
    /// `sip:<number>@<trunk>`.
    pub uri: String,
    /// Where the INVITE goes (no DNS: the shell resolved it, or it came
    /// from a registration's source address).
    pub peer: Peer,
    pub route: Vec<String>,
    /// Our From: display name and user (the caller id we present).
    pub from_user: String,
    pub from_display: String,
    /// Credentials for a 401/407 from the far end (a trunk's).
    pub auth: Option<UacAuth>,
}

/// What a UAC answers a digest challenge with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UacAuth {
    pub username: String,
    pub password: String,
}

/// What an outgoing leg needs to send its INVITE again (answering a
/// challenge).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub auth: Option<UacAuth>,
    /// Challenges answered so far: one is enough; a second challenge to
    /// an answered one means the credentials are wrong.
    pub challenges_answered: u32,
}

/// What a new outgoing leg needs besides its target.
pub struct Offer<'a> {
    pub port: u16,
    pub media_address: IpAddr,
    /// The codec to offer first (the other leg's, to avoid transcoding).
    pub preferred: Option<Codec>,
    pub headers: &'a [(&'a str, &'a str)],
}

impl Leg {
    /// Sends an INVITE with our SDP offer to `target`.
    pub fn outgoing(
        now: Instant,
        wire: &mut Wire,
        key: LegKey,
        call: CallKey,
        target: &LegTarget,
        offer: Offer<'_>,
    ) -> Leg {
        let call_id = format!("{}@hotline", wire.token(20));
        let local_tag = wire.token(10);
        let branch = wire.branch();
        let host = wire.sip_address.clone();
        let from = format!(
            "\"{}\" <sip:{}@{host}>",
            target.from_display, target.from_user
        );
        let to = format!("<{}>", target.uri);
        let sdp_session = wire.sdp_session_id();
        let body = sdp::write(
            &LocalMedia {
                addr: offer.media_address,
                port: offer.port,
                session_id: sdp_session,
                version: 1,
            },
            None,
            Direction::SendRecv,
        );
        let body = match offer.preferred {
            Some(Codec::Pcma) => body.replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101").replace(
                "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n",
            ),
            _ => body,
        };
        // Over TCP or TLS, so that requests within the dialog come back
        // the same way (to a sips: URI, a sips: Contact).
        let contact = wire.contact_for(target.peer.transport, is_sips(&target.uri));
        let mut headers: Vec<(&str, &str)> = vec![("Contact", &contact), ("Allow", ALLOW)];
        headers.extend_from_slice(offer.headers);
        let outgoing = Outgoing {
            body: body.clone(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            auth: target.auth.clone(),
            challenges_answered: 0,
        };
        let local_party = format!("{from};tag={local_tag}");
        let invite = build::request(&DialogRequest {
            method: "INVITE",
            target: &target.uri,
            route: &target.route,
            via_transport: target.peer.transport.name(),
            via_sent_by: wire.sent_by(target.peer.transport),
            branch: &branch,
            from: &local_party,
            to: &to,
            call_id: &call_id,
            cseq: 1,
            extra: &headers,
            body: Some(Body {
                content_type: "application/sdp",
                bytes: body.as_bytes(),
            }),
        });
        wire.start_invite_tx(now, (call, key), branch.clone(), invite, target.peer);
        Leg {
            key,
            call,
            role: Role::Uac,
            state: LegState::Calling,
            dialog: Dialog {
                call_id,
                local_tag,
                remote_tag: None,
                local_party,
                remote_party: to,
                remote_target: target.uri.clone(),
                route: target.route.clone(),
                local_cseq: 1,
                remote_cseq: 0,
                peer: target.peer,
            },
            invite: None,
            invite_tx: TxKey::new(&branch, Method::Invite),
            invite_cseq: 1,
            awaiting_ack: None,
            request_uri: target.uri.clone(),
            media: LegMedia::new(offer.port, sdp_session),
            outgoing: Some(outgoing),
            created_at: now,
            ringing_at: None,
            answered_at: None,
            media_start_at: None,
        }
    }

    /// A response to our INVITE, as its transaction classified it.
    pub fn on_invite_response(
        &mut self,
        now: Instant,
        wire: &mut Wire,
        resp: &SipResponse,
        outcome: InviteResponse,
    ) -> Option<LegEvent> {
        match outcome {
            InviteResponse::Provisional => {
                if self.state == LegState::Calling {
                    self.state = LegState::Early;
                    self.ringing_at.get_or_insert(now);
                }
                // A 183 with SDP (coloured ringback, a carrier's
                // announcement) is progress, never an answer.
                Some(LegEvent::Progress {
                    status: resp.status,
                    early_media: !resp.body.is_empty(),
                })
            }
            InviteResponse::Accepted => Some(self.take_answer(now, wire, resp)),
            InviteResponse::Rejected => {
                self.ack_rejection(wire, resp);
                let cancelled = self.state == LegState::Cancelling;
                if !cancelled && self.answer_challenge(now, wire, resp) {
                    return None;
                }
                Some(LegEvent::Rejected {
                    status: resp.status,
                    cancelled,
                })
            }
            InviteResponse::Repeated => {
                if (200..300).contains(&resp.status) {
                    self.send_ack(wire);
                } else {
                    self.ack_rejection(wire, resp);
                }
                None
            }
        }
    }

    /// The 2xx: the dialog is established (ACK sent). A 2xx that crossed
    /// our CANCEL, or with unusable SDP, is hung up at once.
    fn take_answer(&mut self, now: Instant, wire: &mut Wire, resp: &SipResponse) -> LegEvent {
        self.dialog.remote_tag = resp.to_tag.clone();
        if let Some(tag) = &resp.to_tag {
            self.dialog.remote_party = format!("{};tag={tag}", self.dialog.remote_party);
        }
        if let Some(contact) = &resp.contact {
            self.dialog.remote_target = contact.clone();
        }
        // The UAC's route set is the Record-Route list reversed; without
        // one, the route it was sent with (a Path) stays.
        if !resp.record_route.is_empty() {
            self.dialog.route = resp.record_route.iter().rev().cloned().collect();
        }
        let cancelling = self.state == LegState::Cancelling;
        self.state = LegState::Confirmed;
        self.answered_at = Some(now);
        self.send_ack(wire);
        if cancelling {
            self.send_bye(now, wire);
            return LegEvent::Rejected {
                status: 487,
                cancelled: true,
            };
        }
        match sdp::parse_and_negotiate(&resp.body) {
            Ok((remote, n)) => {
                self.media.remote = Some(remote);
                self.media.negotiated = Some(n);
                LegEvent::Answered
            }
            Err(e) => {
                warn!(error = %e, "answered with unusable SDP: hung up");
                self.send_bye(now, wire);
                LegEvent::MediaUnusable
            }
        }
    }

    /// A 401 or 407 to our INVITE, from a far end we have credentials
    /// for: the INVITE goes again (same dialog, next CSeq, new branch)
    /// with the answer. Returns false when it cannot be answered.
    fn answer_challenge(&mut self, now: Instant, wire: &mut Wire, resp: &SipResponse) -> bool {
        let Some(header) = digest::answer_header(resp.status) else {
            return false;
        };
        let Some(out) = self.outgoing.as_mut() else {
            return false;
        };
        let Some(auth) = out.auth.clone() else {
            return false;
        };
        if out.challenges_answered > 0 {
            warn!(
                status = resp.status,
                "challenged again: the trunk refuses our credentials"
            );
            return false;
        }
        let Some(challenge) =
            Challenge::first_supported(resp.challenges.iter().map(String::as_str))
        else {
            warn!(status = resp.status, "a challenge we cannot answer");
            return false;
        };
        out.challenges_answered += 1;
        let cnonce = wire.token(16);
        let answer = challenge
            .answer(
                &auth.username,
                Secret::Password(&auth.password),
                "INVITE",
                &self.request_uri,
                &cnonce,
                1,
            )
            .to_header();
        let mut headers: Vec<(&str, &str)> = out
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        headers.push((header, &answer));
        let branch = wire.branch();
        self.dialog.local_cseq += 1;
        let d = &self.dialog;
        let invite = build::request(&DialogRequest {
            method: "INVITE",
            target: &self.request_uri,
            route: &d.route,
            via_transport: d.peer.transport.name(),
            via_sent_by: wire.sent_by(d.peer.transport),
            branch: &branch,
            from: &d.local_party,
            to: &d.remote_party,
            call_id: &d.call_id,
            cseq: d.local_cseq,
            extra: &headers,
            body: Some(Body {
                content_type: "application/sdp",
                bytes: out.body.as_bytes(),
            }),
        });
        let peer = d.peer;
        self.invite_tx = TxKey::new(&branch, Method::Invite);
        self.invite_cseq = self.dialog.local_cseq;
        wire.start_invite_tx(now, (self.call, self.key), branch, invite, peer);
        true
    }

    fn send_ack(&mut self, wire: &mut Wire) {
        let branch = wire.branch();
        let ack = self.dialog_request(wire, "ACK", &branch, false, &[], None);
        wire.send(Some(self.call), self.dialog.peer, ack);
    }

    /// The ACK for a non-2xx final response: same branch and Request-URI
    /// as the INVITE, To with the response's tag.
    fn ack_rejection(&mut self, wire: &mut Wire, resp: &SipResponse) {
        let ack = self.invite_transaction_request(wire, "ACK", resp.to_tag.as_deref());
        wire.send(Some(self.call), self.dialog.peer, ack);
    }

    /// ACK of a rejection, or CANCEL: in the INVITE's transaction.
    fn invite_transaction_request(
        &self,
        wire: &Wire,
        method: &str,
        to_tag: Option<&str>,
    ) -> Vec<u8> {
        let d = &self.dialog;
        let to = match to_tag {
            Some(tag) => format!("{};tag={tag}", d.remote_party),
            None => d.remote_party.clone(),
        };
        build::request(&DialogRequest {
            method,
            target: &self.request_uri,
            route: &d.route,
            via_transport: d.peer.transport.name(),
            via_sent_by: wire.sent_by(d.peer.transport),
            branch: &self.invite_tx.branch,
            from: &d.local_party,
            to: &to,
            call_id: &d.call_id,
            cseq: self.invite_cseq,
            extra: &[],
            body: None,
        })
    }

    /// Stops ringing with CANCEL (RFC 3261 9.1), sent at once: by a ring
    /// timeout a phone has long sent its 180; one that never answered at
    /// all is ended by timer B. An answered leg gets BYE instead.
    pub fn cancel_or_bye(&mut self, now: Instant, wire: &mut Wire) {
        match self.state {
            LegState::Calling | LegState::Early => {}
            LegState::Confirmed | LegState::Answering => {
                self.send_bye(now, wire);
                return;
            }
            LegState::Cancelling | LegState::Incoming => return,
        }
        self.state = LegState::Cancelling;
        let cancel = self.invite_transaction_request(wire, "CANCEL", None);
        let key = TxKey::new(&self.invite_tx.branch, Method::Cancel);
        wire.start_client_tx(now, Some(self.call), key, cancel, self.dialog.peer);
    }
}
