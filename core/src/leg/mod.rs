//! A leg: one SIP dialog of a call, in either direction, with its media
//! negotiation. The customer who rang the hotline is a UAS leg
//! ([`uas`]); an agent's phone rung with the caller, or any number dialled
//! through a trunk, is a UAC leg ([`uac`]). A leg answers and sends the
//! SIP of its own dialog through the shared [`Wire`] and reports what
//! happened as a [`LegEvent`]; what that means for the call is decided by
//! the engine's call flow.

pub mod uac;
pub mod uas;

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::ids::{CallKey, LegKey};
use crate::io::Peer;
use crate::media::session::MediaParams;
use crate::sip::build::{self, Body, DialogRequest, ALLOW};
use crate::sip::message::{Method, SipRequest};
use crate::sip::sdp::{self, Direction, LocalMedia, Negotiated, RemoteMedia};
use crate::sip::transaction::ServerTransaction;
use crate::wire::{TxKey, Wake, Wire};

/// Which side of the dialog we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We received the INVITE (a caller).
    Uas,
    /// We sent the INVITE (an agent's phone, a number through a trunk).
    Uac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// UAS: INVITE received, ringing.
    Incoming,
    /// UAS: 200 sent, waiting for the ACK.
    Answering,
    /// UAC: INVITE sent, no answer yet.
    Calling,
    /// UAC: a provisional response came (ringing, or early media).
    Early,
    /// UAC: CANCEL sent; waiting for the 487 (or a 200 that crossed it).
    Cancelling,
    /// The dialog is confirmed (ACK received, or sent).
    Confirmed,
}

/// What happened on a leg, for the call flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// UAS: the ACK for our 200 came; `first` for the initial INVITE's.
    Confirmed { first: bool },
    /// UAC: a provisional response (`early_media` when it carried SDP).
    Progress { status: u16, early_media: bool },
    /// UAC: answered; the ACK is sent.
    Answered,
    /// UAC: a final error, or 0 when nothing answered at all (timer B).
    /// `cancelled` when it answers our own CANCEL.
    Rejected { status: u16, cancelled: bool },
    /// UAS: CANCEL (or BYE) before the answer; 487 is sent.
    Cancelled,
    /// The other side hung up (BYE, answered 200).
    HungUp,
    /// A re-INVITE changed the remote media; the new address and whether
    /// it wants our audio (not on hold).
    MediaChanged { remote: SocketAddr, sending: bool },
    /// A key sent as SIP INFO.
    Digit(char),
    /// UAS: no ACK for our 200 within 64*T1 (timer H).
    NoAck,
    /// The SDP answer (in the ACK or the 2xx) has nothing we can use.
    MediaUnusable,
    /// The other side asks for a transfer (REFER, RFC 3515): the user
    /// part of the Refer-To URI, or the URI.
    Refer(String),
    /// An attended transfer: a REFER whose Refer-To carries Replaces (RFC
    /// 3891), naming by its Call-ID the dialog whose other party takes
    /// this leg's place.
    ReferReplaces { call_id: String },
}

/// The dialog's identifiers and routing (RFC 3261 section 12).
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// From of the requests we send in the dialog, with our tag.
    pub local_party: String,
    /// To of the requests we send: the remote party, with its tag once
    /// known (a caller's From exactly as it came).
    pub remote_party: String,
    /// Where in-dialog requests go: the remote Contact.
    pub remote_target: String,
    /// Route set for in-dialog requests, in the order to send.
    pub route: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// Where the remote party's messages come from, and ours go.
    pub peer: Peer,
}

/// A leg's media: its RTP port and the SDP negotiation.
#[derive(Debug, Clone)]
pub struct LegMedia {
    pub port: u16,
    /// The remote side's SDP (offer or answer).
    pub remote: Option<RemoteMedia>,
    pub negotiated: Option<Negotiated>,
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// The media session has been asked for (it opens once).
    pub started: bool,
}

impl LegMedia {
    pub fn new(port: u16, sdp_session: u64) -> LegMedia {
        LegMedia {
            port,
            remote: None,
            negotiated: None,
            sdp_session,
            sdp_version: 1,
            started: false,
        }
    }

    /// Our SDP: the answer to the remote offer (with the direction that
    /// answers it), or an offer when we have none.
    pub fn local_sdp(&self, address: IpAddr) -> String {
        let direction = self
            .remote
            .as_ref()
            .map(|o| o.direction.answer())
            .unwrap_or(Direction::SendRecv);
        sdp::write(
            &LocalMedia {
                addr: address,
                port: self.port,
                session_id: self.sdp_session,
                version: self.sdp_version,
            },
            self.negotiated,
            direction,
        )
    }

    /// Whether the remote side wants our audio (not sendonly or inactive).
    pub fn remote_receives(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|o| !matches!(o.direction, Direction::Inactive | Direction::SendOnly))
    }
}

/// Settings a leg's media session takes beyond the negotiation.
#[derive(Debug, Clone, Copy)]
pub struct MediaTuning {
    pub inactivity_timeout: std::time::Duration,
    pub speech_threshold_dbfs: f64,
    pub speech_frames: u32,
    pub inband_dtmf: bool,
}

pub struct Leg {
    pub key: LegKey,
    pub call: CallKey,
    pub role: Role,
    pub state: LegState,
    pub dialog: Dialog,
    /// UAS: the INVITE that opened the dialog (the caller's facts, and
    /// what responses echo).
    pub invite: Option<SipRequest>,
    /// The initial INVITE's transaction: ours (UAC) or theirs (UAS).
    pub invite_tx: TxKey,
    /// UAC: the CSeq of that INVITE (its CANCEL and non-2xx ACK echo it).
    pub invite_cseq: u32,
    /// UAS: the INVITE transaction (initial or re-INVITE) whose 2xx awaits
    /// an ACK.
    pub awaiting_ack: Option<TxKey>,
    /// UAC: the Request-URI of the initial INVITE (CANCEL and non-2xx ACK
    /// use it).
    pub request_uri: String,
    pub media: LegMedia,
    /// UAC: what resending the INVITE needs (answering a challenge).
    pub outgoing: Option<uac::Outgoing>,
    pub created_at: Instant,
    pub ringing_at: Option<Instant>,
    pub answered_at: Option<Instant>,
    pub media_start_at: Option<Instant>,
}

impl Leg {
    /// The parameters of this leg's media session, once negotiated.
    pub fn media_params(&self, wire: &mut Wire, tuning: MediaTuning) -> Option<MediaParams> {
        let remote = self.media.remote.as_ref()?;
        let n = self.media.negotiated?;
        Some(MediaParams {
            codec: n.codec,
            telephone_event: n.telephone_event,
            remote: remote.rtp,
            ssrc: wire.random(),
            initial_seq: wire.random(),
            initial_timestamp: wire.random(),
            inactivity_timeout: tuning.inactivity_timeout,
            speech_threshold_dbfs: tuning.speech_threshold_dbfs,
            speech_frames: tuning.speech_frames,
            inband_dtmf: tuning.inband_dtmf,
        })
    }

    /// Whether the leg's dialog is established (a 2xx was sent or taken).
    pub fn answered(&self) -> bool {
        self.answered_at.is_some()
    }

    /// A request inside the dialog: to the remote target, through the
    /// route set, with our tag and the next CSeq when `new_cseq`.
    pub fn dialog_request(
        &mut self,
        wire: &Wire,
        method: &str,
        branch: &str,
        new_cseq: bool,
        extra: &[(&str, &str)],
        body: Option<Body<'_>>,
    ) -> Vec<u8> {
        if new_cseq {
            self.dialog.local_cseq += 1;
        }
        let d = &self.dialog;
        build::request(&DialogRequest {
            method,
            target: &d.remote_target,
            route: &d.route,
            via_transport: d.peer.transport.name(),
            via_sent_by: wire.sent_by(d.peer.transport),
            branch,
            from: &d.local_party,
            to: &d.remote_party,
            call_id: &d.call_id,
            cseq: d.local_cseq,
            extra,
            body,
        })
    }

    /// Hangs up an answered leg with BYE (in its own client transaction).
    /// Sends BYE in a client transaction of its own; returns its key.
    pub fn send_bye(&mut self, now: Instant, wire: &mut Wire) -> TxKey {
        let branch = wire.branch();
        let bye = self.dialog_request(wire, "BYE", &branch, true, &[], None);
        let peer = self.dialog.peer;
        let key = TxKey::new(&branch, Method::Bye);
        wire.start_client_tx(now, Some(self.call), key.clone(), bye, peer);
        key
    }

    /// In-dialog CSeq must grow (RFC 3261 12.2.2); answers 500 if not.
    pub fn check_cseq(
        &mut self,
        now: Instant,
        wire: &mut Wire,
        peer: Peer,
        req: &SipRequest,
    ) -> bool {
        if req.cseq <= self.dialog.remote_cseq && req.method != Method::Bye {
            wire.respond_new(
                now,
                Some(self.call),
                peer,
                req,
                500,
                "CSeq Out Of Order",
                &[],
            );
            return false;
        }
        self.dialog.remote_cseq = self.dialog.remote_cseq.max(req.cseq);
        true
    }
}

impl Leg {
    /// Tells the leg's phone how the transfer it asked for goes (RFC 3515
    /// NOTIFY with a sipfrag body); `done` ends the subscription.
    pub fn notify_refer(
        &mut self,
        now: Instant,
        wire: &mut Wire,
        status: u16,
        reason: &str,
        done: bool,
    ) {
        let branch = wire.branch();
        let frag = format!("SIP/2.0 {status} {reason}\r\n");
        let state = if done {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let notify = self.dialog_request(
            wire,
            "NOTIFY",
            &branch,
            true,
            &[("Event", "refer"), ("Subscription-State", state)],
            Some(Body {
                content_type: "message/sipfrag;version=2.0",
                bytes: frag.as_bytes(),
            }),
        );
        let peer = self.dialog.peer;
        let key = TxKey::new(&branch, Method::Other("NOTIFY".into()));
        wire.start_client_tx(now, Some(self.call), key, notify, peer);
    }

    /// A request inside this leg's dialog, from either side: BYE, a
    /// re-INVITE (session refresh or hold), INFO (keys), OPTIONS; others
    /// get 501.
    pub fn on_request(
        &mut self,
        now: Instant,
        wire: &mut Wire,
        peer: Peer,
        req: &SipRequest,
        media_address: IpAddr,
    ) -> Option<LegEvent> {
        let owner = Some(self.call);
        match req.method {
            Method::Bye => {
                if !self.check_cseq(now, wire, peer, req) {
                    return None;
                }
                wire.respond_new(now, owner, peer, req, 200, "OK", &[]);
                if self.state == LegState::Incoming {
                    // BYE on the early dialog: the INVITE gets 487.
                    self.reject(now, wire, 487, "Request Terminated", &[]);
                    return Some(LegEvent::Cancelled);
                }
                Some(LegEvent::HungUp)
            }
            Method::Invite => self.on_reinvite(now, wire, peer, req, media_address),
            Method::Info => {
                wire.respond_new(now, owner, peer, req, 200, "OK", &[]);
                info_digit(req.content_type.as_deref(), &req.body).map(LegEvent::Digit)
            }
            Method::Other(ref m) if m == "REFER" => {
                let to = req
                    .refer_to
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty());
                let Some(to) = to else {
                    wire.respond_new(now, owner, peer, req, 400, "Missing Refer-To", &[]);
                    return None;
                };
                let uri = crate::sip::message::name_addr_uri(to);
                if let Some(replaces) = uri_header(uri, "Replaces") {
                    let call_id = replaces.split(';').next().unwrap_or("").trim().to_string();
                    if call_id.is_empty() {
                        wire.respond_new(now, owner, peer, req, 400, "Bad Replaces", &[]);
                        return None;
                    }
                    wire.respond_new(now, owner, peer, req, 202, "Accepted", &[]);
                    return Some(LegEvent::ReferReplaces { call_id });
                }
                wire.respond_new(now, owner, peer, req, 202, "Accepted", &[]);
                let user = crate::sip::message::uri_user(uri);
                let target = if user.is_empty() { uri } else { user };
                Some(LegEvent::Refer(target.to_string()))
            }
            Method::Options => {
                let allow = [
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", ""),
                ];
                wire.respond_new(now, owner, peer, req, 200, "OK", &allow);
                None
            }
            _ => {
                wire.respond_new(
                    now,
                    owner,
                    peer,
                    req,
                    501,
                    "Not Implemented",
                    &[("Allow", ALLOW)],
                );
                None
            }
        }
    }

    /// A re-INVITE: answered 200 with our SDP (hold and resume answered
    /// with the matching direction), 491 while another is pending, 488
    /// for an offer we cannot take.
    fn on_reinvite(
        &mut self,
        now: Instant,
        wire: &mut Wire,
        peer: Peer,
        req: &SipRequest,
        media_address: IpAddr,
    ) -> Option<LegEvent> {
        let owner = Some(self.call);
        if !self.check_cseq(now, wire, peer, req) {
            return None;
        }
        if self.state != LegState::Confirmed || self.awaiting_ack.is_some() {
            wire.respond_new(now, owner, peer, req, 491, "Request Pending", &[]);
            return None;
        }
        let mut remote = self.media.remote.clone();
        let mut negotiated = self.media.negotiated;
        if !req.body.is_empty() {
            match sdp::parse_and_negotiate(&req.body) {
                Ok((o, n)) => {
                    remote = Some(o);
                    negotiated = Some(n);
                }
                Err(_) => {
                    wire.respond_new(now, owner, peer, req, 488, "Not Acceptable Here", &[]);
                    return None;
                }
            }
        }
        let changed = remote != self.media.remote;
        self.media.remote = remote;
        self.media.negotiated = negotiated;
        if changed {
            self.media.sdp_version += 1;
        }
        let body = self.media.local_sdp(media_address);
        let contact = wire.answer_contact(peer.transport, &req.uri);
        let response = build::response(
            req,
            peer.addr,
            200,
            "OK",
            None,
            &[("Contact", &contact), ("Allow", ALLOW)],
            Some(Body {
                content_type: "application/sdp",
                bytes: body.as_bytes(),
            }),
        );
        let tx_key = TxKey::new(&req.branch, Method::Invite);
        self.awaiting_ack = Some(tx_key.clone());
        let mut tx = ServerTransaction::new(true, peer.transport.reliable(), wire.timers_base);
        tx.final_response(now, 200, response.clone());
        let wake = tx.poll_timeout();
        wire.server_txs.insert(tx_key.clone(), (tx, peer));
        wire.schedule(wake, Wake::ServerTx(tx_key));
        wire.send_response(owner, peer, 200, response);
        let remote = self.media.remote.as_ref()?;
        changed.then(|| LegEvent::MediaChanged {
            remote: remote.rtp,
            sending: self.media.remote_receives(),
        })
    }
}

/// A header carried in a URI (`sip:b@h?Replaces=...&...`, RFC 3261
/// section 19.1.1), its name case-insensitive, its value %-decoded.
pub fn uri_header(uri: &str, name: &str) -> Option<String> {
    let (_, headers) = uri.split_once('?')?;
    headers.split('&').find_map(|h| {
        let (n, v) = h.split_once('=')?;
        n.trim().eq_ignore_ascii_case(name).then(|| {
            percent_encoding::percent_decode_str(v.trim())
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The key in a SIP INFO body: `application/dtmf-relay` ("Signal=5") or
/// `application/dtmf` ("5").
pub fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let ctype = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = match ctype.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    match (chars.next(), c) {
        (None, '0'..='9' | '*' | '#' | 'A'..='D') => Some(c),
        // Some phones send the event number (RFC 4733): 10 = *, 11 = #.
        _ => match value.parse::<u8>().ok()? {
            10 => Some('*'),
            11 => Some('#'),
            n @ 12..=15 => Some((b'A' + n - 12) as char),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{info_digit, uri_header};

    #[test]
    fn info_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            info_digit(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            info_digit(relay, b"Signal= #\r\nDuration=160\r\n"),
            Some('#')
        );
        assert_eq!(info_digit(relay, b"Signal=11\r\n"), Some('#'));
        assert_eq!(info_digit(relay, b"Signal=13\r\n"), Some('B'));
        assert_eq!(info_digit(Some("application/dtmf"), b"7"), Some('7'));
        assert_eq!(info_digit(Some("application/dtmf"), b"x"), None);
        assert_eq!(info_digit(Some("text/plain"), b"5"), None);
        assert_eq!(info_digit(None, b"Signal=5"), None);
    }

    #[test]
    fn a_replaces_in_a_refer_to_uri_is_found_and_decoded() {
        let uri = "sip:1002@hotline?Replaces=abc%40host%3Bto-tag%3D7%3Bfrom-tag%3D9&X=1";
        assert_eq!(
            uri_header(uri, "replaces").as_deref(),
            Some("abc@host;to-tag=7;from-tag=9")
        );
        assert_eq!(uri_header(uri, "X").as_deref(), Some("1"));
        assert_eq!(uri_header("sip:1002@hotline", "Replaces"), None);
    }
}
