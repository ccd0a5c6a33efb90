//! The SIP plumbing the engine and every leg share: the transaction
//! tables (RFC 3261 section 17), the one timer table keyed by why each
//! wake-up exists, the outbox of [`Output`]s, and random tokens. A leg
//! borrows a `&mut Wire` to send, so calls and the plumbing can be
//! borrowed apart.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use rand::{rngs::StdRng, Rng};

use crate::ids::{CallKey, LegKey};
use crate::io::{Output, Peer, Transmit, Transport};
use crate::sip::build;
use crate::sip::message::{Method, SipRequest};
use crate::sip::transaction::{
    ClientTransaction, InviteClientTransaction, ServerTransaction, SipTimers, Timed, TimerOutcome,
};
use crate::time::TimerQueue;

/// A transaction: the top Via's branch and the method (an ACK shares its
/// INVITE's key, a CANCEL has its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey {
    pub branch: String,
    pub method: Method,
}

impl TxKey {
    pub fn new(branch: &str, method: Method) -> TxKey {
        TxKey {
            branch: branch.to_string(),
            method,
        }
    }
}

/// Why the engine asked to be woken. Every timer in the engine is one of
/// these, in one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    /// A server transaction's timer (G, H, I, J).
    ServerTx(TxKey),
    /// A non-INVITE client transaction's timer (E, F, K).
    ClientTx(TxKey),
    /// An INVITE client transaction's timer (A, B, D), by branch.
    InviteClientTx(String),
    /// One of a call's own deadlines.
    Call(CallKey, CallTimer),
    Registrar,
    Acd,
    /// The next campaign call may be due.
    Campaigns,
    /// A task's retry time, or its deadline coming at risk.
    Tasks,
    /// The drain timeout after SIGTERM ran out.
    Drain,
}

/// A call's own deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallTimer {
    /// Ringing is over: answer (`calls.answer_after`).
    Answer,
    /// The IVR interpreter's next deadline (a menu's wait, silence).
    Ivr,
    /// An outbound call has rung long enough: CANCEL it.
    RingTimeout,
    /// A notice has been played; the callee's key is late.
    KeyWait,
    /// The survey has been asked; the caller's rating is late.
    Survey,
    /// A transfer's target has rung long enough.
    TransferRing,
    /// A waiting caller has waited long enough to be offered a callback.
    CallbackOffer,
    /// The caller asked for a callback and has not confirmed the number.
    CallbackKey,
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
    /// INVITEs for hotline numbers from outside the trunk allow-list (403).
    pub calls_forbidden: u64,
    /// Datagrams dropped because their source is banned for flooding.
    pub flood_dropped: u64,
    /// Messages over `max_message_size` (answered 513 or dropped).
    pub oversized: u64,
    /// REGISTERs without credentials from a phone challenged before that
    /// never answered: it cannot use any algorithm offered.
    pub challenges_unanswered: u64,
}

/// An output waiting in the outbox, with the call it belongs to (its
/// last messages wait for its record) and, for a response, its status
/// (counted by the live view as it leaves).
#[derive(Debug)]
pub struct Queued {
    pub output: Output,
    pub owner: Option<CallKey>,
    pub status: Option<u16>,
}

/// An INVITE we sent, and the leg it belongs to.
pub struct InviteClient {
    pub tx: InviteClientTransaction,
    pub peer: Peer,
    pub owner: (CallKey, LegKey),
}

pub struct Wire {
    pub timers_base: SipTimers,
    /// host[:port] for our Via and Contact.
    pub sip_address: String,
    /// host:port for our Via and Contact over TLS (`[tls]`'s first SIP
    /// address, or the public address's host on its port); none without
    /// `[tls]`.
    pub tls_address: Option<String>,
    pub rng: StdRng,
    pub server_txs: HashMap<TxKey, (ServerTransaction, Peer)>,
    pub client_txs: HashMap<TxKey, (ClientTransaction, Peer)>,
    pub invite_client_txs: HashMap<String, InviteClient>,
    pub timers: TimerQueue<Wake>,
    pub counters: Counters,
    outbox: VecDeque<Queued>,
}

impl Wire {
    pub fn new(
        timers_base: SipTimers,
        sip_address: String,
        tls_address: Option<String>,
        rng: StdRng,
    ) -> Wire {
        Wire {
            timers_base,
            sip_address,
            tls_address,
            rng,
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            invite_client_txs: HashMap::new(),
            timers: TimerQueue::default(),
            counters: Counters::default(),
            outbox: VecDeque::new(),
        }
    }

    /// Our Contact.
    pub fn contact(&self) -> String {
        format!("<sip:hotline@{}>", self.sip_address)
    }

    /// Our Via sent-by over `transport`: the TLS listener's address over
    /// TLS, so that responses and requests come back to it.
    pub fn sent_by(&self, transport: Transport) -> &str {
        match (transport, &self.tls_address) {
            (Transport::Tls, Some(tls)) => tls,
            _ => &self.sip_address,
        }
    }

    /// Our Contact in a dialog over `transport` with a peer who addressed
    /// us (or whom we address) with a `sips:` URI when `sips`. Over TLS it
    /// names the TLS listener: `sips:` when the dialog is `sips:` (RFC 3261
    /// 8.1.1.8), else `;transport=tls`, so that requests within the dialog
    /// come back encrypted; over TCP, `;transport=tcp`.
    pub fn contact_for(&self, transport: Transport, sips: bool) -> String {
        match transport {
            Transport::Udp => self.contact(),
            Transport::Tcp => format!("<sip:hotline@{};transport=tcp>", self.sip_address),
            Transport::Tls if sips => format!("<sips:hotline@{}>", self.sent_by(transport)),
            Transport::Tls => format!("<sip:hotline@{};transport=tls>", self.sent_by(transport)),
        }
    }

    /// Our Contact in the answers to a request that came over `peer`'s
    /// transport to `request_uri`. Over UDP and TCP the listener's plain
    /// address (as hotline always wrote it; TCP callers keep their
    /// connection); over TLS, [`Wire::contact_for`].
    pub fn answer_contact(&self, transport: Transport, request_uri: &str) -> String {
        match transport {
            Transport::Tls => self.contact_for(transport, is_sips(request_uri)),
            _ => self.contact(),
        }
    }

    pub fn token(&mut self, len: usize) -> String {
        random_token(&mut self.rng, len)
    }

    /// A fresh RFC 3261 branch.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.token(16))
    }

    pub fn random<T>(&mut self) -> T
    where
        rand::distr::StandardUniform: rand::distr::Distribution<T>,
    {
        self.rng.random()
    }

    /// An SDP session id (o= line).
    pub fn sdp_session_id(&mut self) -> u64 {
        self.rng.random_range(1..u32::MAX as u64)
    }

    /// The first CSeq of requests we send in a dialog we did not start.
    pub fn initial_cseq(&mut self) -> u32 {
        self.rng.random_range(1..10_000)
    }

    pub fn schedule(&mut self, at: Option<Instant>, wake: Wake) {
        if let Some(at) = at {
            self.timers.schedule(at, wake);
        }
    }

    pub fn push(&mut self, output: Output) {
        self.outbox.push_back(Queued {
            output,
            owner: None,
            status: None,
        });
    }

    /// Queues a request (or an ACK) for `peer`.
    pub fn send(&mut self, owner: Option<CallKey>, peer: Peer, data: Vec<u8>) {
        self.outbox.push_back(Queued {
            output: Output::Transmit(Transmit { peer, data }),
            owner,
            status: None,
        });
    }

    /// Queues a response with its status code.
    pub fn send_response(
        &mut self,
        owner: Option<CallKey>,
        peer: Peer,
        status: u16,
        data: Vec<u8>,
    ) {
        self.outbox.push_back(Queued {
            output: Output::Transmit(Transmit { peer, data }),
            owner,
            status: Some(status),
        });
    }

    pub fn pop(&mut self) -> Option<Queued> {
        self.outbox.pop_front()
    }

    /// Takes the messages of `owner` still in the outbox, with the status
    /// of each response: they leave once its record is durable.
    pub fn take_owned(&mut self, owner: CallKey) -> Vec<(Transmit, Option<u16>)> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.outbox.len());
        for q in self.outbox.drain(..) {
            match q.output {
                Output::Transmit(t) if q.owner == Some(owner) => taken.push((t, q.status)),
                output => kept.push_back(Queued { output, ..q }),
            }
        }
        self.outbox = kept;
        taken
    }

    /// Responds within a new server transaction (non-INVITE requests, and
    /// INVITEs refused at once).
    #[allow(clippy::too_many_arguments)]
    pub fn respond_new(
        &mut self,
        now: Instant,
        owner: Option<CallKey>,
        peer: Peer,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = (req.to_tag.is_none() && status > 100).then(|| self.token(10));
        let response = build::response(req, peer.addr, status, reason, tag.as_deref(), extra, None);
        let invite = req.method == Method::Invite;
        let mut tx = ServerTransaction::new(invite, peer.transport.reliable(), self.timers_base);
        tx.final_response(now, status, response.clone());
        let key = TxKey::new(&req.branch, req.method.clone());
        let wake = tx.poll_timeout();
        if !req.branch.is_empty() {
            self.server_txs.insert(key.clone(), (tx, peer));
            self.schedule(wake, Wake::ServerTx(key));
        }
        self.send_response(owner, peer, status, response);
    }

    /// Answers a request we could not fully parse, without a transaction.
    pub fn respond_stateless(
        &mut self,
        peer: Peer,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = req.to_tag.is_none().then(|| self.token(10));
        let response = build::response(req, peer.addr, status, reason, tag.as_deref(), extra, None);
        self.send_response(None, peer, status, response);
    }

    /// Sends a non-INVITE request in its own client transaction.
    pub fn start_client_tx(
        &mut self,
        now: Instant,
        owner: Option<CallKey>,
        key: TxKey,
        data: Vec<u8>,
        peer: Peer,
    ) {
        let tx = ClientTransaction::new(
            now,
            data.clone(),
            peer.transport.reliable(),
            self.timers_base,
        );
        let wake = tx.poll_timeout();
        self.client_txs.insert(key.clone(), (tx, peer));
        self.schedule(wake, Wake::ClientTx(key));
        self.send(owner, peer, data);
    }

    /// Sends an INVITE in its own client transaction, for a leg.
    pub fn start_invite_tx(
        &mut self,
        now: Instant,
        owner: (CallKey, LegKey),
        branch: String,
        data: Vec<u8>,
        peer: Peer,
    ) {
        let tx = InviteClientTransaction::new(
            now,
            data.clone(),
            peer.transport.reliable(),
            self.timers_base,
        );
        let wake = tx.poll_timeout();
        self.invite_client_txs
            .insert(branch.clone(), InviteClient { tx, peer, owner });
        self.schedule(wake, Wake::InviteClientTx(branch));
        self.send(Some(owner.0), peer, data);
    }
}

/// What a transaction's timer did.
pub enum Fired {
    /// Still running; wake it again then.
    Pending(Option<Instant>),
    /// Ended and removed; `gave_up` when timer H, B or F ran out.
    Ended { gave_up: bool },
}

/// Runs a transaction's due timers: retransmissions go to the outbox, and
/// an ended transaction is removed.
pub fn fire<K: std::hash::Hash + Eq, T: Timed>(
    txs: &mut HashMap<K, (T, Peer)>,
    key: &K,
    now: Instant,
    wire_out: &mut VecDeque<Queued>,
) -> Fired {
    let Some((tx, peer)) = txs.get_mut(key) else {
        return Fired::Pending(None);
    };
    match tx.handle_timeout(now) {
        TimerOutcome::Retransmit(data) => wire_out.push_back(Queued {
            output: Output::Transmit(Transmit {
                peer: *peer,
                data: data.to_vec(),
            }),
            owner: None,
            status: None,
        }),
        TimerOutcome::Terminated { gave_up } => {
            txs.remove(key);
            return Fired::Ended { gave_up };
        }
        TimerOutcome::Nothing => {}
    }
    Fired::Pending(tx.poll_timeout())
}

impl Wire {
    /// A server transaction's timer.
    pub fn fire_server(&mut self, now: Instant, key: &TxKey) -> Fired {
        let fired = fire(&mut self.server_txs, key, now, &mut self.outbox);
        if let Fired::Pending(wake) = fired {
            self.schedule(wake, Wake::ServerTx(key.clone()));
        }
        fired
    }

    /// A non-INVITE client transaction's timer.
    pub fn fire_client(&mut self, now: Instant, key: &TxKey) -> Fired {
        let fired = fire(&mut self.client_txs, key, now, &mut self.outbox);
        if let Fired::Pending(wake) = fired {
            self.schedule(wake, Wake::ClientTx(key.clone()));
        }
        fired
    }

    /// An INVITE client transaction's timer; the leg it belongs to when it
    /// ended.
    pub fn fire_invite_client(
        &mut self,
        now: Instant,
        branch: &str,
    ) -> (Fired, Option<(CallKey, LegKey)>) {
        let Some(c) = self.invite_client_txs.get_mut(branch) else {
            return (Fired::Pending(None), None);
        };
        let owner = c.owner;
        match c.tx.handle_timeout(now) {
            TimerOutcome::Retransmit(data) => {
                let t = Transmit {
                    peer: c.peer,
                    data: data.to_vec(),
                };
                self.outbox.push_back(Queued {
                    output: Output::Transmit(t),
                    owner: None,
                    status: None,
                });
            }
            TimerOutcome::Terminated { gave_up } => {
                self.invite_client_txs.remove(branch);
                return (Fired::Ended { gave_up }, Some(owner));
            }
            TimerOutcome::Nothing => {}
        }
        let wake = c.tx.poll_timeout();
        self.schedule(wake, Wake::InviteClientTx(branch.to_string()));
        (Fired::Pending(wake), Some(owner))
    }
}

pub fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A `sips:` URI (the scheme is case-insensitive), bare or in `<>`.
pub fn is_sips(uri: &str) -> bool {
    let uri = uri.trim_start().trim_start_matches('<');
    uri.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn wire(tls: Option<&str>) -> Wire {
        Wire::new(
            SipTimers::default(),
            "192.0.2.7:5060".into(),
            tls.map(str::to_string),
            StdRng::seed_from_u64(1),
        )
    }

    #[test]
    fn contacts_and_via_follow_the_transport() {
        let w = wire(Some("192.0.2.7:5061"));
        assert_eq!(w.sent_by(Transport::Udp), "192.0.2.7:5060");
        assert_eq!(w.sent_by(Transport::Tcp), "192.0.2.7:5060");
        assert_eq!(w.sent_by(Transport::Tls), "192.0.2.7:5061");
        assert_eq!(
            w.contact_for(Transport::Tls, false),
            "<sip:hotline@192.0.2.7:5061;transport=tls>"
        );
        assert_eq!(
            w.contact_for(Transport::Tls, true),
            "<sips:hotline@192.0.2.7:5061>"
        );
        assert_eq!(
            w.contact_for(Transport::Tcp, false),
            "<sip:hotline@192.0.2.7:5060;transport=tcp>"
        );
        assert_eq!(
            w.contact_for(Transport::Udp, false),
            "<sip:hotline@192.0.2.7:5060>"
        );
        assert_eq!(
            w.answer_contact(Transport::Tls, "SIPS:4008@example.com"),
            "<sips:hotline@192.0.2.7:5061>"
        );
        assert_eq!(
            w.answer_contact(Transport::Tcp, "sip:4008@example.com"),
            "<sip:hotline@192.0.2.7:5060>"
        );
        assert!(is_sips("<sips:a@b>") && !is_sips("sip:a@b") && !is_sips("sips"));
    }
}
