//! Calls the engine places to agents (the B2BUA's second legs): the INVITE
//! with our media offer, ringing, the answer and its ACK, rejection, CANCEL
//! when the ring times out or the caller leaves, and BYE from either side.
//! What happens on a leg is reported as a [`LegEvent`] to the ACD glue.

use std::time::Instant;

use super::*;
use crate::media::g711::Codec;
use crate::sip::transaction::{InviteClientTransaction, InviteResponse};

pub type LegKey = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LegState {
    Calling,
    Ringing,
    Answered,
    /// CANCEL sent; waiting for the 487 (or a 200 that crossed it).
    Cancelling,
}

/// What happened on an agent leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LegEvent {
    Answered,
    /// A final error from the agent (486 busy, 603 decline, ...), or 0 when
    /// no response came at all (timer B).
    Rejected(u16),
    /// The agent hung up an answered leg.
    HungUp,
}

/// Whom a leg rings: the agent and their registered phone.
pub(super) struct LegTarget<'a> {
    pub agent: &'a str,
    /// The contact URI from the agent's registration.
    pub contact: &'a str,
    /// Where that registration came from (symmetric signalling).
    pub peer: Peer,
}

pub(super) struct AgentLeg {
    pub caller: CallKey,
    pub agent: String,
    pub call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    invite_branch: String,
    /// The INVITE's CSeq number; in-dialog requests we send count from it.
    cseq: u32,
    target: String,
    remote_target: Option<String>,
    route: Vec<String>,
    from: String,
    to: String,
    pub peer: Peer,
    pub state: LegState,
    pub port: u16,
    pub offered_at: Instant,
    pub answered_at: Option<Instant>,
    pub negotiated: Option<Negotiated>,
    pub remote_rtp: Option<SocketAddr>,
}

/// Where a request the engine sends on a leg belongs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// ACK of a rejection, CANCEL: the INVITE's branch and Request-URI.
    InviteTransaction,
    /// ACK of the 2xx, BYE: the remote target and the route set.
    Dialog,
}

impl AgentLeg {
    fn request(
        &self,
        scope: Scope,
        method: &str,
        branch: &str,
        to_tag: Option<&str>,
        sent_by: &str,
    ) -> Vec<u8> {
        let to = match to_tag {
            Some(tag) => format!("{};tag={tag}", self.to),
            None => self.to.clone(),
        };
        let (target, route): (&str, &[String]) = match scope {
            Scope::InviteTransaction => (&self.target, &[]),
            Scope::Dialog => (
                self.remote_target.as_deref().unwrap_or(&self.target),
                &self.route,
            ),
        };
        build::request(&DialogRequest {
            method,
            target,
            route,
            via_transport: self.peer.transport.name(),
            via_sent_by: sent_by,
            branch,
            from: &format!("{};tag={}", self.from, self.local_tag),
            to: &to,
            call_id: &self.call_id,
            cseq: self.cseq,
            extra: &[],
            body: None,
        })
    }
}

impl Engine {
    /// INVITEs an agent's registered contact with our media offer (the
    /// caller's codec first, to avoid transcoding). Returns the leg, or
    /// `None` when no RTP port is free.
    pub(super) fn place_leg(
        &mut self,
        now: Instant,
        caller: CallKey,
        whom: LegTarget<'_>,
        preferred: Option<Codec>,
        extra: &[(&str, &str)],
    ) -> Option<LegKey> {
        let LegTarget {
            agent,
            contact: target,
            peer,
        } = whom;
        let port = self.free_ports.pop_front()?;
        let key = self.next_call;
        self.next_call += 1;
        let call_id = format!("{}@hotline", self.random_token(20));
        let local_tag = self.random_token(10);
        let branch = format!("z9hG4bK{}", self.random_token(16));
        let host = self.settings.sip_address.clone();
        let from = format!("\"hotline\" <sip:hotline@{host}>");
        let to = format!("<{target}>");
        let offer = sdp::write(
            &LocalMedia {
                addr: self.settings.media_address,
                port,
                session_id: self.rng.random_range(1..u32::MAX as u64),
                version: 1,
            },
            None,
            Direction::SendRecv,
        );
        let offer = match preferred {
            Some(Codec::Pcma) => offer.replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101").replace(
                "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n",
            ),
            _ => offer,
        };
        let contact = self.contact();
        let mut headers: Vec<(&str, &str)> = vec![("Contact", &contact), ("Allow", ALLOW)];
        headers.extend_from_slice(extra);
        let invite = build::request(&DialogRequest {
            method: "INVITE",
            target,
            route: &[],
            via_transport: peer.transport.name(),
            via_sent_by: &host,
            branch: &branch,
            from: &format!("{from};tag={local_tag}"),
            to: &to,
            call_id: &call_id,
            cseq: 1,
            extra: &headers,
            body: Some(Body {
                content_type: "application/sdp",
                bytes: offer.as_bytes(),
            }),
        });
        let tx = InviteClientTransaction::new(
            now,
            invite.clone(),
            peer.transport.reliable(),
            self.settings.timers,
        );
        let wake = tx.poll_timeout();
        self.invite_client_txs.insert(branch.clone(), (tx, peer));
        self.schedule(wake, Wake::InviteClientTx(branch.clone()));
        self.outputs
            .push_back(Output::Transmit { peer, data: invite });
        info!(%agent, %target, leg = key, "offering the call to an agent");
        self.leg_by_call_id.insert(call_id.clone(), key);
        self.legs.insert(
            key,
            AgentLeg {
                caller,
                agent: agent.to_string(),
                call_id,
                local_tag,
                remote_tag: None,
                invite_branch: branch,
                cseq: 1,
                target: target.to_string(),
                remote_target: None,
                route: Vec::new(),
                from,
                to,
                peer,
                state: LegState::Calling,
                port,
                offered_at: now,
                answered_at: None,
                negotiated: None,
                remote_rtp: None,
            },
        );
        Some(key)
    }

    /// A response to our INVITE or to an in-dialog request on a leg.
    /// Returns false when the response is not for a leg's INVITE.
    pub(super) fn handle_leg_response(&mut self, now: Instant, resp: &SipResponse) -> bool {
        if resp.cseq_method != Method::Invite {
            return false;
        }
        let Some((tx, _)) = self.invite_client_txs.get_mut(&resp.branch) else {
            return false;
        };
        let outcome = tx.handle_response(now, resp.status);
        let wake = tx.poll_timeout();
        self.schedule(wake, Wake::InviteClientTx(resp.branch.clone()));
        let Some(key) = self.leg_by_call_id.get(&resp.call_id).copied() else {
            return true;
        };
        match outcome {
            InviteResponse::Provisional => {
                if let Some(leg) = self.legs.get_mut(&key) {
                    if leg.state == LegState::Calling {
                        leg.state = LegState::Ringing;
                    }
                }
            }
            InviteResponse::Accepted => self.leg_answered(now, key, resp),
            InviteResponse::Rejected => {
                self.ack_rejection(key, resp);
                if let Some(leg) = self.end_leg(key) {
                    if leg.state == LegState::Cancelling {
                        // The 487 answers our own CANCEL (ring timeout, or
                        // another agent answered first).
                        self.offer_line(now, key, &leg, 487);
                    } else {
                        self.leg_event(now, key, &leg, LegEvent::Rejected(resp.status));
                    }
                }
            }
            InviteResponse::Repeated => {
                if (200..300).contains(&resp.status) {
                    self.send_in_dialog(now, key, "ACK", false);
                } else {
                    self.ack_rejection(key, resp);
                }
            }
        }
        true
    }

    fn leg_answered(&mut self, now: Instant, key: LegKey, resp: &SipResponse) {
        let answer = sdp::parse_and_negotiate(&resp.body);
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.remote_tag = resp.to_tag.clone();
        leg.remote_target = resp.contact.clone();
        // The UAC's route set is the Record-Route list reversed.
        leg.route = resp.record_route.iter().rev().cloned().collect();
        let cancelling = leg.state == LegState::Cancelling;
        leg.state = LegState::Answered;
        leg.answered_at = Some(now);
        self.send_in_dialog(now, key, "ACK", false);
        match answer {
            Ok((remote, n)) if !cancelling => {
                if let Some(leg) = self.legs.get_mut(&key) {
                    leg.negotiated = Some(n);
                    leg.remote_rtp = Some(remote.rtp);
                }
                if let Some(leg) = self.legs.remove(&key) {
                    self.leg_event(now, key, &leg, LegEvent::Answered);
                    self.legs.insert(key, leg);
                }
            }
            // The 200 crossed our CANCEL, or its SDP is unusable: hang up.
            other => {
                if let Err(e) = other {
                    warn!(error = %e, "agent answered with unusable SDP");
                }
                self.send_in_dialog(now, key, "BYE", true);
                if let Some(leg) = self.end_leg(key) {
                    if !cancelling {
                        self.leg_event(now, key, &leg, LegEvent::Rejected(488));
                    }
                }
            }
        }
    }

    /// The ACK for a non-2xx final response (same branch as the INVITE).
    fn ack_rejection(&mut self, key: LegKey, resp: &SipResponse) {
        let Some(leg) = self.legs.get(&key) else {
            return;
        };
        let ack = leg.request(
            Scope::InviteTransaction,
            "ACK",
            &leg.invite_branch,
            resp.to_tag.as_deref(),
            &self.settings.sip_address,
        );
        let peer = leg.peer;
        self.outputs.push_back(Output::Transmit { peer, data: ack });
    }

    /// Sends ACK or BYE inside the leg's dialog. A BYE runs in its own
    /// client transaction; `new_cseq` gives it the next CSeq.
    fn send_in_dialog(&mut self, now: Instant, key: LegKey, method: &str, new_cseq: bool) {
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        if new_cseq {
            leg.cseq += 1;
        }
        let data = leg.request(
            Scope::Dialog,
            method,
            &branch,
            leg.remote_tag.as_deref(),
            &self.settings.sip_address,
        );
        let peer = leg.peer;
        if method != "ACK" {
            self.start_client_tx(now, branch, data.clone(), peer);
        }
        self.outputs.push_back(Output::Transmit { peer, data });
    }

    /// Stops ringing an agent with CANCEL (RFC 3261 9.1), sent at once: by
    /// the ring timeout a phone has long sent its 180; one that never
    /// answered at all is ended by timer B.
    pub(super) fn cancel_leg(&mut self, now: Instant, key: LegKey) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        match leg.state {
            LegState::Calling | LegState::Ringing => {}
            LegState::Answered => return self.hangup_leg(now, key),
            LegState::Cancelling => return,
        }
        leg.state = LegState::Cancelling;
        let cancel = leg.request(
            Scope::InviteTransaction,
            "CANCEL",
            &leg.invite_branch,
            None,
            &self.settings.sip_address,
        );
        let (peer, branch) = (leg.peer, leg.invite_branch.clone());
        self.start_client_tx(now, format!("{branch}:CANCEL"), cancel.clone(), peer);
        self.outputs
            .push_back(Output::Transmit { peer, data: cancel });
    }

    /// Hangs up an answered leg (BYE) and forgets it.
    pub(super) fn hangup_leg(&mut self, now: Instant, key: LegKey) {
        match self.legs.get(&key).map(|l| l.state) {
            Some(LegState::Answered) => {
                self.send_in_dialog(now, key, "BYE", true);
                self.end_leg(key);
            }
            Some(_) => self.cancel_leg(now, key),
            None => {}
        }
    }

    /// A request inside a leg's dialog (BYE or re-INVITE from the agent).
    /// Returns false when it belongs to no leg.
    pub(super) fn handle_leg_request(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &SipRequest,
    ) -> bool {
        let Some(key) = self.leg_by_call_id.get(&req.call_id).copied() else {
            return false;
        };
        let ours = self
            .legs
            .get(&key)
            .is_some_and(|l| req.to_tag.as_deref() == Some(l.local_tag.as_str()));
        if !ours {
            return false;
        }
        match req.method {
            Method::Bye => {
                self.respond_new(now, peer, req, 200, "OK", &[]);
                if let Some(leg) = self.end_leg(key) {
                    self.leg_event(now, key, &leg, LegEvent::HungUp);
                }
            }
            Method::Ack => {}
            // Session refresh or hold from the agent's phone: keep our side.
            Method::Invite | Method::Info | Method::Options => {
                self.respond_new(now, peer, req, 200, "OK", &[("Allow", ALLOW)])
            }
            _ => self.respond_new(now, peer, req, 501, "Not Implemented", &[("Allow", ALLOW)]),
        }
        true
    }

    /// Timer A/B/D of a leg's INVITE.
    pub(super) fn invite_client_tx_timeout(&mut self, now: Instant, branch: String) {
        match fire(&mut self.invite_client_txs, &branch, now, &mut self.outputs) {
            Fired::Pending(wake) => self.schedule(wake, Wake::InviteClientTx(branch)),
            Fired::Ended { gave_up: true } => {
                let key = self
                    .legs
                    .iter()
                    .find(|(_, l)| l.invite_branch == branch)
                    .map(|(k, _)| *k);
                if let Some(leg) = key.and_then(|k| self.end_leg(k).map(|l| (k, l))) {
                    warn!("timer B: the agent's phone never answered the INVITE");
                    self.leg_event(now, leg.0, &leg.1, LegEvent::Rejected(0));
                }
            }
            Fired::Ended { gave_up: false } => {}
        }
    }

    /// Forgets a leg, returns its port, and hands it back for reporting.
    pub(super) fn end_leg(&mut self, key: LegKey) -> Option<AgentLeg> {
        let leg = self.legs.remove(&key)?;
        self.leg_by_call_id.remove(&leg.call_id);
        self.free_ports.push_back(leg.port);
        if leg.answered_at.is_some() {
            self.outputs
                .push_back(Output::MediaRemoveLeg { call: leg.caller });
        }
        Some(leg)
    }

    fn start_client_tx(&mut self, now: Instant, key: String, data: Vec<u8>, peer: Peer) {
        let tx = ClientTransaction::new(now, data, peer.transport.reliable(), self.settings.timers);
        let wake = tx.poll_timeout();
        self.client_txs.insert(key.clone(), (tx, peer));
        self.schedule(wake, Wake::ClientTx(key));
    }

    /// Reports what happened on a leg to the ACD, opening the agent's media
    /// on answer and ending the caller's call when the agent hangs up.
    fn leg_event(&mut self, now: Instant, key: LegKey, leg: &AgentLeg, event: LegEvent) {
        info!(leg = key, agent = %leg.agent, ?event, "agent leg");
        match event {
            LegEvent::Answered => {
                if let (Some(n), Some(remote)) = (leg.negotiated, leg.remote_rtp) {
                    let params = MediaParams {
                        codec: n.codec,
                        telephone_event: n.telephone_event,
                        remote,
                        ssrc: self.rng.random(),
                        initial_seq: self.rng.random(),
                        initial_timestamp: self.rng.random(),
                        inactivity_timeout: self.settings.inactivity_timeout,
                        speech_threshold_dbfs: self.settings.speech_threshold_dbfs,
                        speech_frames: self.settings.speech_frames,
                        inband_dtmf: false,
                    };
                    self.outputs.push_back(Output::MediaAddLeg {
                        call: leg.caller,
                        port: leg.port,
                        params,
                    });
                    // The whisper: the agent hears the business type
                    // ("报修业务") while the caller hears the agent's number.
                    let whisper = self.calls.get(&leg.caller).and_then(|c| {
                        let business = c.ivr.business.as_deref()?;
                        c.prompt(business, self.settings.default_language)
                    });
                    if let Some(prompt) = whisper {
                        self.outputs.push_back(Output::MediaPlayLeg {
                            call: leg.caller,
                            prompt,
                        });
                    }
                }
            }
            LegEvent::Rejected(status) => self.offer_line(now, key, leg, status),
            LegEvent::HungUp => {}
        }
        if event == LegEvent::Answered {
            self.offer_line(now, key, leg, 200);
        }
        self.leg_event_to_acd(now, leg.caller, &leg.agent, event);
        if event == LegEvent::HungUp {
            // The agent ended the call: the caller's leg ends too.
            self.hangup(now, leg.caller, Outcome::Completed, Disposition::Answered);
        }
    }

    /// One line per offer in `offers-<date>.jsonl`: agent, outcome, ring time.
    fn offer_line(&mut self, now: Instant, key: LegKey, leg: &AgentLeg, status: u16) {
        let outcome = match status {
            200 => "answered",
            487 => "cancelled",
            486 | 600 | 603 => "busy",
            408 | 480 => "no_answer",
            0 => "no_response",
            _ => "failed",
        };
        let ended = cdr::format_ms(self.wall_ms(now));
        let line = serde_json::json!({
            "version": 1,
            "call_id": super::call_id(self.epoch, leg.caller),
            "offer_id": super::call_id(self.epoch, key),
            "agent": leg.agent,
            "agent_call_id": leg.call_id,
            "offered_at": cdr::format_ms(self.wall_ms(leg.offered_at)),
            "ended_at": ended,
            "ring_ms": now.saturating_duration_since(leg.offered_at).as_millis() as u64,
            "sip_status": status,
            "outcome": outcome,
        })
        .to_string();
        self.outputs.push_back(Output::Line {
            file: format!("offers-{}.jsonl", ended.get(..10).unwrap_or("undated")),
            line,
        });
    }
}
