//! The engine: every decision about SIP and calls, as a pure state machine.
//!
//! The runtime calls, in a loop:
//! 1. `handle_input(now, input)` for each datagram, TCP message or media event;
//! 2. `handle_timeout(now)` when `poll_timeout()` is reached;
//! 3. `poll_output()` until `None`, carrying out each [`Output`].
//!
//! The engine never reads a clock: wall-clock times in records are derived
//! from the `(Instant, epoch ms)` pair it was created with.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use tracing::{debug, info, info_span, warn};

use crate::call::flow::{CallFlow, FlowAction, FlowPrompts, FlowTimings};
use crate::cdr::{self, CallRecord, Disposition, HangupSide, Outcome};
use crate::config::Config;
use crate::media::prompt::{PromptId, PromptSet};
use crate::media::session::{MediaEvent, MediaParams};
use crate::sip::build::{self, Body, DialogRequest, ALLOW};
use crate::sip::message::{self, Method, ParseError, SipMessage, SipRequest, SipResponse};
use crate::sip::sdp::{self, Direction, LocalMedia, Negotiated, RemoteMedia};
use crate::sip::transaction::{
    ClientTransaction, ServerState, ServerTransaction, SipTimers, Timed, TimerOutcome,
};
use crate::time::TimerQueue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
    fn reliable(self) -> bool {
        self == Transport::Tcp
    }
}

/// Where a message came from or goes to. `conn` names the TCP connection
/// (0 for UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub conn: u64,
}

pub type CallKey = u64;

#[derive(Debug)]
pub enum Input<'a> {
    Sip {
        peer: Peer,
        data: &'a [u8],
    },
    Media {
        call: CallKey,
        event: MediaEvent,
    },
    /// The runtime could not open the call's RTP port.
    MediaFailed {
        call: CallKey,
    },
}

#[derive(Debug)]
pub enum Output {
    Transmit {
        peer: Peer,
        data: Vec<u8>,
    },
    /// Open the call's RTP socket on `port` and start a media session.
    MediaStart {
        call: CallKey,
        port: u16,
        params: MediaParams,
    },
    MediaPlay {
        call: CallKey,
        prompt: PromptId,
    },
    MediaUpdate {
        call: CallKey,
        remote: SocketAddr,
        sending: bool,
    },
    /// The call is over: write the record durably, then close its media.
    CallEnded {
        call: CallKey,
        record: Box<CallRecord>,
    },
}

/// Engine settings, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub timers: SipTimers,
    pub answer_after: Duration,
    pub max_calls: usize,
    pub max_calls_per_second: u32,
    pub retry_after: Duration,
    pub sip_address: String,
    pub media_address: IpAddr,
    pub port_range: (u16, u16),
    pub flow: FlowTimings,
    pub inactivity_timeout: Duration,
    pub speech_threshold_dbfs: f64,
    pub speech_frames: u32,
}

impl EngineSettings {
    pub fn from_config(c: &Config) -> Self {
        EngineSettings {
            timers: SipTimers {
                t1: c.sip.t1,
                t2: c.sip.t2,
                t4: c.sip.t4,
            },
            answer_after: c.calls.answer_after.0,
            max_calls: c.calls.max_calls,
            max_calls_per_second: c.calls.max_calls_per_second,
            retry_after: c.calls.retry_after,
            sip_address: c.sip_public_address(),
            media_address: c.media.advertised_address,
            port_range: c.port_range(),
            flow: FlowTimings {
                listen_after_greeting: c.flow.listen_after_greeting,
                silent_wait: c.flow.silent_wait,
                apology_wait: c.flow.apology_wait,
            },
            inactivity_timeout: c.media.inactivity_timeout,
            speech_threshold_dbfs: c.media.speech_threshold_dbfs,
            speech_frames: (c.media.speech_min.as_millis() / 20).max(1) as u32,
        }
    }
}

/// Counters for operations and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub datagrams_dropped: u64,
    pub bad_requests: u64,
    pub retransmissions_absorbed: u64,
    pub calls_offered: u64,
    pub calls_rejected_busy: u64,
    pub bye_timeouts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TxKey {
    branch: String,
    /// INVITE for INVITE and its ACK; the method otherwise.
    method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    ServerTx(TxKey),
    ClientTx(String),
    Call(CallKey),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Ringing,
    /// 200 sent, waiting for the ACK.
    Answered,
    Confirmed,
}

struct Call {
    peer: Peer,
    invite: SipRequest,
    invite_tx: TxKey,
    local_tag: String,
    state: CallState,
    answer_at: Option<Instant>,
    remote_cseq: u32,
    local_cseq: u32,
    offer: Option<RemoteMedia>,
    negotiated: Option<Negotiated>,
    port: u16,
    sdp_session: u64,
    sdp_version: u64,
    /// The INVITE transaction (initial or re-INVITE) whose 2xx awaits an ACK.
    awaiting_ack: Option<TxKey>,
    flow: CallFlow,
    media_started: bool,
    invite_at: Instant,
    ringing_at: Option<Instant>,
    answered_at: Option<Instant>,
    media_start_at: Option<Instant>,
    digits: String,
    caller_spoke: bool,
}

pub struct Engine {
    settings: EngineSettings,
    prompts: Arc<PromptSet>,
    flow_prompts: FlowPrompts,
    epoch: (Instant, u64),
    rng: StdRng,
    calls: HashMap<CallKey, Call>,
    dialogs: HashMap<String, CallKey>,
    server_txs: HashMap<TxKey, (ServerTransaction, Peer)>,
    client_txs: HashMap<String, (ClientTransaction, Peer)>,
    timers: TimerQueue<Wake>,
    free_ports: VecDeque<u16>,
    outputs: VecDeque<Output>,
    next_call: CallKey,
    rate_tokens: f64,
    rate_updated: Instant,
    draining: bool,
    pub counters: Counters,
}

impl Engine {
    /// `wall_ms` is the wall-clock time (ms since the Unix epoch) at `now`.
    pub fn new(
        settings: EngineSettings,
        prompts: Arc<PromptSet>,
        flow_prompts: FlowPrompts,
        now: Instant,
        wall_ms: u64,
        seed: u64,
    ) -> Self {
        let (lo, hi) = settings.port_range;
        // Even ports only (RTP convention); released ports go to the back so
        // a port is not reused while its old socket may still be closing.
        let free_ports = (lo..=hi).filter(|p| p % 2 == 0).collect();
        Engine {
            rate_tokens: settings.max_calls_per_second as f64,
            rate_updated: now,
            settings,
            prompts,
            flow_prompts,
            epoch: (now, wall_ms),
            rng: StdRng::seed_from_u64(seed),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            timers: TimerQueue::default(),
            free_ports,
            outputs: VecDeque::new(),
            next_call: 1,
            draining: false,
            counters: Counters::default(),
        }
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn prompts(&self) -> &Arc<PromptSet> {
        &self.prompts
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Sip { peer, data } => self.handle_sip(now, peer, data),
            Input::Media { call, event } => self.handle_media(now, call, event),
            Input::MediaFailed { call } => {
                if self.calls.contains_key(&call) {
                    self.hangup(now, call, Outcome::MediaFailed, Disposition::Failed);
                }
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(wake) = self.timers.pop_due(now) {
            match wake {
                Wake::ServerTx(key) => self.server_tx_timeout(now, key),
                Wake::ClientTx(branch) => self.client_tx_timeout(now, branch),
                Wake::Call(call) => self.call_timeout(now, call),
            }
        }
    }

    /// Stop taking calls and hang up those in progress (records written).
    pub fn shutdown(&mut self, now: Instant) {
        self.draining = true;
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            let ringing = self.calls.get(&key).map(|c| c.state == CallState::Ringing);
            if ringing == Some(true) {
                self.reject_ringing(now, key, 503, "Service Unavailable", Outcome::Shutdown);
            } else {
                self.hangup(now, key, Outcome::Shutdown, Disposition::Answered);
            }
        }
    }

    // ---- SIP ingress -------------------------------------------------

    fn handle_sip(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        match message::parse(data) {
            Ok(SipMessage::Request(req)) => {
                let span = info_span!("call", call_id = %req.call_id);
                let _entered = span.enter();
                self.handle_request(now, peer, req)
            }
            Ok(SipMessage::Response(resp)) => self.handle_response(now, peer, resp),
            Err(ParseError::BadRequest { reason, request }) => {
                self.counters.bad_requests += 1;
                debug!(%reason, from = %peer.addr, "bad request");
                if request.method() != Method::Ack {
                    self.respond_stateless(peer, &request, 400, &reason, &[]);
                    self.record_refused_invite(now, peer, &request, 400);
                }
            }
            Err(ParseError::UnsupportedScheme { request }) => {
                self.counters.bad_requests += 1;
                if request.method() != Method::Ack {
                    self.respond_stateless(peer, &request, 416, "Unsupported URI Scheme", &[]);
                    self.record_refused_invite(now, peer, &request, 416);
                }
            }
            Err(e) => {
                self.counters.datagrams_dropped += 1;
                debug!(error = %e, from = %peer.addr, "dropped");
            }
        }
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let method = req.method();
        if method == Method::Ack {
            return self.handle_ack(now, peer, req);
        }
        let key = TxKey {
            branch: req.branch.clone(),
            method: req.method_token.clone(),
        };
        if let Some((tx, tx_peer)) = self.server_txs.get(&key) {
            // A retransmission: answer again with what we last sent.
            self.counters.retransmissions_absorbed += 1;
            if let Some(resp) = tx.handle_retransmission() {
                let data = resp.to_vec();
                let tx_peer = *tx_peer;
                self.outputs.push_back(Output::Transmit {
                    peer: tx_peer,
                    data,
                });
            }
            return;
        }
        if method == Method::Cancel {
            return self.handle_cancel(now, peer, req);
        }
        if !req.require.is_empty() {
            let unsupported = req.require.join(", ");
            self.respond_new(
                now,
                peer,
                &req,
                420,
                "Bad Extension",
                &[("Unsupported", &unsupported)],
            );
            return self.record_refused_invite(now, peer, &req, 420);
        }
        if req.max_forwards == Some(0) && method != Method::Options {
            self.respond_new(now, peer, &req, 483, "Too Many Hops", &[]);
            return self.record_refused_invite(now, peer, &req, 483);
        }
        match method {
            Method::Invite if req.to_tag.is_none() => self.handle_new_invite(now, peer, req),
            Method::Invite => self.handle_reinvite(now, peer, req),
            Method::Bye => self.handle_bye(now, peer, req),
            Method::Options => self.respond_new(
                now,
                peer,
                &req,
                200,
                "OK",
                &[
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", ""),
                ],
            ),
            Method::Info => {
                if self.dialog_of(&req).is_some() {
                    self.respond_new(now, peer, &req, 200, "OK", &[])
                } else {
                    self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[])
                }
            }
            _ => self.respond_new(now, peer, &req, 501, "Not Implemented", &[("Allow", ALLOW)]),
        }
    }

    fn handle_response(&mut self, now: Instant, peer: Peer, resp: SipResponse) {
        let Some((tx, _)) = self.client_txs.get_mut(&resp.branch) else {
            self.counters.datagrams_dropped += 1;
            return;
        };
        tx.handle_response(now, resp.status, peer.transport.reliable());
        debug!(status = resp.status, call_id = %resp.call_id, "response to our {}", resp.cseq_method);
        let wake = tx.poll_timeout();
        self.schedule(wake, Wake::ClientTx(resp.branch));
    }

    fn dialog_of(&self, req: &SipRequest) -> Option<CallKey> {
        let key = *self.dialogs.get(&req.call_id)?;
        let call = self.calls.get(&key)?;
        (req.to_tag.as_deref() == Some(call.local_tag.as_str())).then_some(key)
    }

    // ---- INVITE: admission, ringing, answer ---------------------------

    fn handle_new_invite(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        self.counters.calls_offered += 1;
        let key = self.next_call;
        self.next_call += 1;
        let tx_key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        let mut tx = ServerTransaction::new(true, peer.transport.reliable(), self.settings.timers);
        let trying = build::response(&req, peer.addr, 100, "Trying", None, &[], None);
        tx.provisional(trying.clone());
        self.outputs
            .push_back(Output::Transmit { peer, data: trying });
        self.server_txs.insert(tx_key.clone(), (tx, peer));

        let local_tag = self.random_token(10);
        let mut call = Call {
            peer,
            invite_tx: tx_key,
            local_tag,
            state: CallState::Ringing,
            answer_at: None,
            remote_cseq: req.cseq,
            local_cseq: self.rng.random_range(1..10_000),
            offer: None,
            negotiated: None,
            port: 0,
            sdp_session: self.rng.random_range(1..u32::MAX as u64),
            sdp_version: 1,
            awaiting_ack: None,
            flow: CallFlow::new(self.flow_prompts, self.settings.flow),
            media_started: false,
            invite_at: now,
            ringing_at: None,
            answered_at: None,
            media_start_at: None,
            digits: String::new(),
            caller_spoke: false,
            invite: req,
        };

        // Refuse at once rather than leave a call ringing past the window.
        if self.draining || !self.admit(now) {
            self.counters.calls_rejected_busy += 1;
            let retry = self.settings.retry_after.as_secs().max(1).to_string();
            self.dialogs.insert(call.invite.call_id.clone(), key);
            self.calls.insert(key, call);
            warn!("over capacity: 503");
            return self.reject_ringing_with(
                now,
                key,
                503,
                "Service Unavailable",
                Outcome::OverCapacity,
                &[("Retry-After", &retry)],
            );
        }
        if !call.invite.body.is_empty() {
            let is_sdp = call
                .invite
                .content_type
                .as_deref()
                .map(|c| c.to_ascii_lowercase().starts_with("application/sdp"))
                .unwrap_or(false);
            let negotiated = if is_sdp {
                sdp::parse(&call.invite.body).and_then(|o| sdp::negotiate(&o).map(|n| (o, n)))
            } else {
                Err(sdp::SdpError::NotText)
            };
            match negotiated {
                Ok((offer, n)) => {
                    call.offer = Some(offer);
                    call.negotiated = Some(n);
                }
                Err(e) => {
                    info!(error = %e, "488");
                    self.dialogs.insert(call.invite.call_id.clone(), key);
                    self.calls.insert(key, call);
                    return self.reject_ringing(
                        now,
                        key,
                        488,
                        "Not Acceptable Here",
                        Outcome::NoCommonCodec,
                    );
                }
            }
        }
        let Some(port) = self.free_ports.pop_front() else {
            self.dialogs.insert(call.invite.call_id.clone(), key);
            self.calls.insert(key, call);
            warn!("no free RTP port: 503");
            return self.reject_ringing(
                now,
                key,
                503,
                "Service Unavailable",
                Outcome::OverCapacity,
            );
        };
        call.port = port;

        let ringing = build::response(
            &call.invite,
            peer.addr,
            180,
            "Ringing",
            Some(&call.local_tag),
            &[("Contact", &self.contact())],
            None,
        );
        if let Some((tx, _)) = self.server_txs.get_mut(&call.invite_tx) {
            tx.provisional(ringing.clone());
        }
        self.outputs.push_back(Output::Transmit {
            peer,
            data: ringing,
        });
        call.ringing_at = Some(now);
        let answer_at = now + self.settings.answer_after;
        call.answer_at = Some(answer_at);
        info!(
            caller = call.invite.from_user(),
            dialled = call.invite.uri_user(),
            "ringing"
        );
        self.dialogs.insert(call.invite.call_id.clone(), key);
        self.calls.insert(key, call);
        if self.settings.answer_after.is_zero() {
            self.answer(now, key);
        } else {
            self.timers.schedule(answer_at, Wake::Call(key));
        }
    }

    /// Token bucket for the call rate, refilled from `now`.
    fn admit(&mut self, now: Instant) -> bool {
        if self.calls.len() >= self.settings.max_calls {
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

    fn answer(&mut self, now: Instant, key: CallKey) {
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.state != CallState::Ringing {
            return;
        }
        call.answer_at = None;
        call.state = CallState::Answered;
        call.answered_at = Some(now);
        let direction = call
            .offer
            .as_ref()
            .map(|o| o.direction.answer())
            .unwrap_or(Direction::SendRecv);
        let body = sdp::write(
            &LocalMedia {
                addr: self.settings.media_address,
                port: call.port,
                session_id: call.sdp_session,
                version: call.sdp_version,
            },
            call.negotiated,
            direction,
        );
        let response = build::response(
            &call.invite,
            call.peer.addr,
            200,
            "OK",
            Some(&call.local_tag),
            &[("Contact", &contact), ("Allow", ALLOW), ("Supported", "")],
            Some(Body {
                content_type: "application/sdp",
                bytes: body.as_bytes(),
            }),
        );
        info!(
            time_to_answer_ms = (now - call.invite_at).as_millis() as u64,
            "answered"
        );
        let peer = call.peer;
        let tx_key = call.invite_tx.clone();
        call.awaiting_ack = Some(tx_key.clone());
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response.clone(),
        });
        if let Some((tx, _)) = self.server_txs.get_mut(&tx_key) {
            tx.final_response(now, 200, response);
            let wake = tx.poll_timeout();
            self.schedule(wake, Wake::ServerTx(tx_key));
        }
    }

    /// Opens media once the dialog is confirmed and both SDPs are known.
    fn start_media(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let (Some(offer), Some(n)) = (&call.offer, call.negotiated) else {
            return;
        };
        if call.media_started {
            return;
        }
        call.media_started = true;
        let params = MediaParams {
            codec: n.codec,
            telephone_event: n.telephone_event,
            remote: offer.rtp,
            ssrc: self.rng.random(),
            initial_seq: self.rng.random(),
            initial_timestamp: self.rng.random(),
            inactivity_timeout: self.settings.inactivity_timeout,
            speech_threshold_dbfs: self.settings.speech_threshold_dbfs,
            speech_frames: self.settings.speech_frames,
        };
        let sending = !matches!(offer.direction, Direction::Inactive | Direction::SendOnly);
        let remote = offer.rtp;
        self.outputs.push_back(Output::MediaStart {
            call: key,
            port: call.port,
            params,
        });
        if !sending {
            self.outputs.push_back(Output::MediaUpdate {
                call: key,
                remote,
                sending,
            });
        }
    }

    fn handle_ack(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        // ACK for a non-2xx final response: same branch as the INVITE.
        let key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        if let Some((tx, _)) = self.server_txs.get_mut(&key) {
            if !tx.is_terminated() && tx.state() == ServerState::Completed {
                tx.handle_ack(now);
                let wake = tx.poll_timeout();
                self.schedule(wake, Wake::ServerTx(key));
                return;
            }
        }
        let Some(call_key) = self.dialog_of(&req) else {
            self.counters.datagrams_dropped += 1;
            return;
        };
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let Some(tx_key) = call.awaiting_ack.take() else {
            return; // retransmitted ACK
        };
        let first_ack = call.state == CallState::Answered;
        call.state = CallState::Confirmed;
        let _ = peer;
        if let Some((tx, _)) = self.server_txs.get_mut(&tx_key) {
            tx.handle_ack(now);
        }
        self.server_txs.remove(&tx_key);
        if !first_ack {
            return;
        }
        // An INVITE without SDP: our offer went in the 200, the answer is here.
        if call.offer.is_none() {
            let answer = sdp::parse(&req.body).and_then(|o| sdp::negotiate(&o).map(|n| (o, n)));
            match answer {
                Ok((offer, n)) => {
                    call.offer = Some(offer);
                    call.negotiated = Some(n);
                }
                Err(e) => {
                    info!(error = %e, "ACK without usable SDP answer");
                    return self.hangup(now, call_key, Outcome::NoCommonCodec, Disposition::Failed);
                }
            }
        }
        // Media opens with the confirmed dialog, so a lost ACK is timer H's
        // business, not the RTP inactivity timeout's.
        self.start_media(call_key);
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        call.media_start_at = Some(now);
        let action = call.flow.start();
        self.apply_flow(now, call_key, action);
    }

    fn handle_cancel(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let invite_key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        if !self.server_txs.contains_key(&invite_key) {
            return self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[]);
        }
        let call_key = self.dialogs.get(&req.call_id).copied();
        // The 200 to CANCEL carries the INVITE's To tag (RFC 3261 9.2).
        let mut req = req;
        if let Some(c) = call_key.and_then(|k| self.calls.get(&k)) {
            req.to_tag = Some(c.local_tag.clone());
            req.to = format!("{};tag={}", req.to, c.local_tag);
        }
        self.respond_new(now, peer, &req, 200, "OK", &[]);
        let call =
            call_key.filter(|k| self.calls.get(k).map(|c| c.state) == Some(CallState::Ringing));
        if let Some(key) = call {
            info!("cancelled while ringing");
            self.reject_ringing(
                now,
                key,
                487,
                "Request Terminated",
                Outcome::CallerCancelled,
            );
        }
    }

    fn handle_bye(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let Some(key) = self.dialog_of(&req) else {
            return self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[]);
        };
        if !self.check_cseq(now, peer, key, &req) {
            return;
        }
        self.respond_new(now, peer, &req, 200, "OK", &[]);
        let state = self.calls.get(&key).map(|c| c.state);
        if state == Some(CallState::Ringing) {
            // BYE on the early dialog: the INVITE gets 487.
            self.reject_ringing(
                now,
                key,
                487,
                "Request Terminated",
                Outcome::CallerCancelled,
            );
            return;
        }
        info!("caller hung up");
        self.end_call(
            now,
            key,
            Outcome::CallerHangup,
            Disposition::Answered,
            Some(HangupSide::Caller),
            200,
        );
    }

    fn handle_reinvite(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let Some(key) = self.dialog_of(&req) else {
            return self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[]);
        };
        if !self.check_cseq(now, peer, key, &req) {
            return;
        }
        let contact = self.contact();
        let media_address = self.settings.media_address;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.state != CallState::Confirmed || call.awaiting_ack.is_some() {
            return self.respond_new(now, peer, &req, 491, "Request Pending", &[]);
        }
        let mut offer = call.offer.clone();
        let mut negotiated = call.negotiated;
        if !req.body.is_empty() {
            match sdp::parse(&req.body).and_then(|o| sdp::negotiate(&o).map(|n| (o, n))) {
                Ok((o, n)) => {
                    offer = Some(o);
                    negotiated = Some(n);
                }
                Err(_) => {
                    return self.respond_new(now, peer, &req, 488, "Not Acceptable Here", &[]);
                }
            }
        }
        let changed = offer != call.offer;
        call.offer = offer;
        call.negotiated = negotiated;
        if changed {
            call.sdp_version += 1;
        }
        let direction = call
            .offer
            .as_ref()
            .map(|o| o.direction.answer())
            .unwrap_or(Direction::SendRecv);
        let body = sdp::write(
            &LocalMedia {
                addr: media_address,
                port: call.port,
                session_id: call.sdp_session,
                version: call.sdp_version,
            },
            call.negotiated,
            direction,
        );
        let response = build::response(
            &req,
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
        let tx_key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        call.awaiting_ack = Some(tx_key.clone());
        if let (true, Some(o)) = (changed, &call.offer) {
            let sending = !matches!(o.direction, Direction::Inactive | Direction::SendOnly);
            self.outputs.push_back(Output::MediaUpdate {
                call: key,
                remote: o.rtp,
                sending,
            });
        }
        let mut tx = ServerTransaction::new(true, peer.transport.reliable(), self.settings.timers);
        tx.final_response(now, 200, response.clone());
        let wake = tx.poll_timeout();
        self.server_txs.insert(tx_key.clone(), (tx, peer));
        self.schedule(wake, Wake::ServerTx(tx_key));
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
    }

    /// In-dialog CSeq must grow (RFC 3261 12.2.2); answers 500 if not.
    fn check_cseq(&mut self, now: Instant, peer: Peer, key: CallKey, req: &SipRequest) -> bool {
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        if req.cseq <= call.remote_cseq && req.cseq_method != "BYE" {
            self.respond_new(now, peer, req, 500, "CSeq Out Of Order", &[]);
            return false;
        }
        call.remote_cseq = call.remote_cseq.max(req.cseq);
        true
    }

    // ---- media events and the call flow ------------------------------

    fn handle_media(&mut self, now: Instant, key: CallKey, event: MediaEvent) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let span = info_span!("call", call_id = %call.invite.call_id);
        let _entered = span.enter();
        let action = match event {
            MediaEvent::PlaybackFinished(prompt) => call.flow.handle_playback_finished(now, prompt),
            MediaEvent::Speech => {
                call.caller_spoke = true;
                call.flow.handle_caller_activity()
            }
            MediaEvent::Digit(d) => {
                call.digits.push(d);
                call.flow.handle_caller_activity()
            }
            MediaEvent::Inactive => {
                info!("no RTP from caller");
                return self.hangup(now, key, Outcome::MediaTimeout, Disposition::Failed);
            }
        };
        self.apply_flow(now, key, action);
    }

    fn apply_flow(&mut self, now: Instant, key: CallKey, action: Option<FlowAction>) {
        match action {
            Some(FlowAction::Play(prompt)) => self
                .outputs
                .push_back(Output::MediaPlay { call: key, prompt }),
            Some(FlowAction::Hangup(outcome)) => {
                return self.hangup(now, key, outcome, Disposition::Answered)
            }
            None => {}
        }
        if let Some(at) = self.calls.get(&key).and_then(|c| c.flow.poll_timeout()) {
            self.timers.schedule(at, Wake::Call(key));
        }
    }

    fn call_timeout(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let span = info_span!("call", call_id = %call.invite.call_id);
        let _entered = span.enter();
        if call.answer_at.is_some_and(|at| now >= at) {
            return self.answer(now, key);
        }
        let action = call.flow.handle_timeout(now);
        self.apply_flow(now, key, action);
    }

    // ---- ending calls ------------------------------------------------

    /// The engine hangs up an answered call: BYE, then the record.
    fn hangup(&mut self, now: Instant, key: CallKey, outcome: Outcome, disposition: Disposition) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let local = format!("{};tag={}", call.invite.to, call.local_tag);
        let target = call
            .invite
            .contact
            .clone()
            .unwrap_or_else(|| message::name_addr_uri(&call.invite.from).to_string());
        // The UAS's route set is the Record-Route list in its order.
        let bye = build::request(&DialogRequest {
            method: "BYE",
            target: &target,
            route: &call.invite.record_route,
            via_transport: call.peer.transport.name(),
            via_sent_by: &self.settings.sip_address,
            branch: &branch,
            from: &local,
            to: &call.invite.from,
            call_id: &call.invite.call_id,
            cseq: call.local_cseq,
            extra: &[],
        });
        let peer = call.peer;
        let status = if call.answered_at.is_some() { 200 } else { 0 };
        let tx = ClientTransaction::new(
            now,
            bye.clone(),
            peer.transport.reliable(),
            self.settings.timers,
        );
        let wake = tx.poll_timeout();
        self.client_txs.insert(branch.clone(), (tx, peer));
        self.schedule(wake, Wake::ClientTx(branch));
        self.outputs.push_back(Output::Transmit { peer, data: bye });
        self.end_call(
            now,
            key,
            outcome,
            disposition,
            Some(HangupSide::Engine),
            status,
        );
    }

    /// Answers a still-ringing call with a final error and ends it.
    fn reject_ringing(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        outcome: Outcome,
    ) {
        self.reject_ringing_with(now, key, status, reason, outcome, &[])
    }

    fn reject_ringing_with(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        outcome: Outcome,
        extra: &[(&str, &str)],
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let response = build::response(
            &call.invite,
            call.peer.addr,
            status,
            reason,
            Some(&call.local_tag),
            extra,
            None,
        );
        let peer = call.peer;
        let tx_key = call.invite_tx.clone();
        if let Some((tx, _)) = self.server_txs.get_mut(&tx_key) {
            tx.final_response(now, status, response.clone());
            let wake = tx.poll_timeout();
            self.schedule(wake, Wake::ServerTx(tx_key));
        }
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
        let (disposition, side) = match outcome {
            Outcome::CallerCancelled => (Disposition::Cancelled, Some(HangupSide::Caller)),
            _ => (Disposition::Rejected, Some(HangupSide::Engine)),
        };
        self.end_call(now, key, outcome, disposition, side, status);
    }

    fn end_call(
        &mut self,
        now: Instant,
        key: CallKey,
        outcome: Outcome,
        disposition: Disposition,
        side: Option<HangupSide>,
        status: u16,
    ) {
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        if self.dialogs.get(&call.invite.call_id) == Some(&key) {
            self.dialogs.remove(&call.invite.call_id);
        }
        if call.port != 0 {
            self.free_ports.push_back(call.port);
        }
        if let Some(tx_key) = &call.awaiting_ack {
            self.server_txs.remove(tx_key);
        }
        let at = |i: Instant| cdr::format_ms(self.wall_ms(i));
        let mut record = self.base_record(key, &call.invite, call.peer, call.invite_at, now);
        record.ringing_at = call.ringing_at.map(at);
        record.answered_at = call.answered_at.map(at);
        record.media_start_at = call.media_start_at.map(at);
        record.media_end_at = call.media_start_at.map(|_| at(now));
        record.time_to_answer_ms = call
            .answered_at
            .map(|a| (a - call.invite_at).as_millis() as u64);
        record.duration_ms = call.answered_at.map(|a| (now - a).as_millis() as u64);
        record.disposition = disposition;
        record.outcome = outcome;
        record.hangup_side = side;
        record.sip_status = if call.answered_at.is_some() {
            200
        } else {
            status
        };
        record.codec = call.negotiated.map(|n| n.codec);
        record.digits = call.digits;
        record.caller_spoke = call.caller_spoke;
        info!(outcome = ?outcome, "call ended");
        self.outputs.push_back(Output::CallEnded {
            call: key,
            record: Box::new(record),
        });
    }

    /// A record with the INVITE's facts, for a call refused at `now`.
    fn base_record(
        &self,
        key: CallKey,
        invite: &SipRequest,
        peer: Peer,
        invite_at: Instant,
        now: Instant,
    ) -> CallRecord {
        CallRecord {
            version: cdr::RECORD_VERSION,
            call_id: format!("hl-{}-{}", self.epoch.1, key),
            sip_call_id: invite.call_id.clone(),
            caller_number: invite.from_user().to_string(),
            caller_name: invite.from_display_name(),
            dialled_number: invite.uri_user().to_string(),
            source: format!(
                "{}:{}",
                peer.transport.name().to_ascii_lowercase(),
                peer.addr
            ),
            invite_at: cdr::format_ms(self.wall_ms(invite_at)),
            ringing_at: None,
            answered_at: None,
            media_start_at: None,
            media_end_at: None,
            ended_at: cdr::format_ms(self.wall_ms(now)),
            time_to_answer_ms: None,
            duration_ms: None,
            disposition: Disposition::Rejected,
            outcome: Outcome::BadRequest,
            hangup_side: Some(HangupSide::Engine),
            sip_status: 0,
            codec: None,
            digits: String::new(),
            caller_spoke: false,
        }
    }

    /// A new INVITE refused before any call state exists (400, 416, 420,
    /// 483) still leaves a record.
    fn record_refused_invite(&mut self, now: Instant, peer: Peer, req: &SipRequest, status: u16) {
        if req.method() != Method::Invite || req.to_tag.is_some() {
            return;
        }
        self.counters.calls_offered += 1;
        let key = self.next_call;
        self.next_call += 1;
        let mut record = self.base_record(key, req, peer, now, now);
        record.sip_status = status;
        info!(status, "INVITE refused");
        self.outputs.push_back(Output::CallEnded {
            call: key,
            record: Box::new(record),
        });
    }

    // ---- transaction timers ------------------------------------------

    fn server_tx_timeout(&mut self, now: Instant, key: TxKey) {
        match fire(&mut self.server_txs, &key, now, &mut self.outputs) {
            Fired::Pending(wake) => self.schedule(wake, Wake::ServerTx(key)),
            Fired::Ended { gave_up } => {
                if gave_up {
                    self.timer_h_fired(now, &key);
                }
            }
        }
    }

    /// No ACK for our 2xx within 64*T1: the dialog is dead; BYE it.
    fn timer_h_fired(&mut self, now: Instant, key: &TxKey) {
        let call = self
            .calls
            .iter()
            .find(|(_, c)| c.awaiting_ack.as_ref() == Some(key))
            .map(|(k, _)| *k);
        if let Some(call_key) = call {
            let call_id = self.calls.get(&call_key).map(|c| c.invite.call_id.clone());
            let span = info_span!("call", call_id = call_id.as_deref().unwrap_or_default());
            let _entered = span.enter();
            warn!("timer H: no ACK for 200 OK");
            if let Some(c) = self.calls.get_mut(&call_key) {
                c.awaiting_ack = None;
            }
            self.hangup(now, call_key, Outcome::NoAck, Disposition::Failed);
        }
    }

    fn client_tx_timeout(&mut self, now: Instant, branch: String) {
        match fire(&mut self.client_txs, &branch, now, &mut self.outputs) {
            Fired::Pending(wake) => self.schedule(wake, Wake::ClientTx(branch)),
            Fired::Ended { gave_up } => {
                if gave_up {
                    self.counters.bye_timeouts += 1;
                }
            }
        }
    }

    // ---- helpers -------------------------------------------------------

    fn schedule(&mut self, at: Option<Instant>, wake: Wake) {
        if let Some(at) = at {
            self.timers.schedule(at, wake);
        }
    }

    /// Responds within a new server transaction (non-INVITE requests).
    fn respond_new(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = (req.to_tag.is_none() && status > 100).then(|| self.random_token(10));
        let response = build::response(req, peer.addr, status, reason, tag.as_deref(), extra, None);
        let invite = req.method() == Method::Invite;
        let mut tx =
            ServerTransaction::new(invite, peer.transport.reliable(), self.settings.timers);
        tx.final_response(now, status, response.clone());
        let key = TxKey {
            branch: req.branch.clone(),
            method: if invite {
                "INVITE".into()
            } else {
                req.method_token.clone()
            },
        };
        let wake = tx.poll_timeout();
        if !req.branch.is_empty() {
            self.server_txs.insert(key.clone(), (tx, peer));
            self.schedule(wake, Wake::ServerTx(key));
        }
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
    }

    /// Answers a request we could not fully parse, without a transaction.
    fn respond_stateless(
        &mut self,
        peer: Peer,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = req.to_tag.is_none().then(|| self.random_token(10));
        let response = build::response(req, peer.addr, status, reason, tag.as_deref(), extra, None);
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
    }

    fn contact(&self) -> String {
        format!("<sip:hotline@{}>", self.settings.sip_address)
    }

    fn random_token(&mut self, len: usize) -> String {
        random_token(&mut self.rng, len)
    }

    fn wall_ms(&self, at: Instant) -> u64 {
        let (base, wall) = self.epoch;
        if at >= base {
            wall + (at - base).as_millis() as u64
        } else {
            wall.saturating_sub((base - at).as_millis() as u64)
        }
    }
}

enum Fired {
    /// Still running; wake it again then.
    Pending(Option<Instant>),
    /// Ended and removed; `gave_up` when timer H or F ran out.
    Ended { gave_up: bool },
}

/// Runs a transaction's due timers: retransmissions go to `outputs`, and an
/// ended transaction is removed from `txs`.
fn fire<K: std::hash::Hash + Eq, T: Timed>(
    txs: &mut HashMap<K, (T, Peer)>,
    key: &K,
    now: Instant,
    outputs: &mut VecDeque<Output>,
) -> Fired {
    let Some((tx, peer)) = txs.get_mut(key) else {
        return Fired::Pending(None);
    };
    match tx.handle_timeout(now) {
        TimerOutcome::Retransmit(data) => outputs.push_back(Output::Transmit {
            peer: *peer,
            data: data.to_vec(),
        }),
        TimerOutcome::Terminated { gave_up } => {
            txs.remove(key);
            return Fired::Ended { gave_up };
        }
        TimerOutcome::Nothing => {}
    }
    Fired::Pending(tx.poll_timeout())
}

fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
