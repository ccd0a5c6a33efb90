//! RFC 3261 section 17 transactions as pure state machines, with the
//! timers named as in the RFC. The engine keeps them in maps, feeds them
//! requests, responses and `now`, and sends what they hand back.
//!
//! Server INVITE (17.2.1, with RFC 6026's Accepted state for 2xx):
//! Proceeding -> Accepted (2xx: retransmitted T1, 2T1 .. T2 until ACK;
//! timer H = 64*T1 gives up) or Completed (non-2xx: timer G retransmits over
//! UDP, timer H gives up) -> Confirmed (timer I = T4 over UDP absorbs ACKs).
//! Server non-INVITE (17.2.2): final response -> Completed, timer J = 64*T1
//! over UDP absorbs retransmitted requests.
//! Client non-INVITE (17.1.2, the BYEs and CANCELs we send): timer E
//! retransmits over UDP, timer F = 64*T1 times out, timer K = T4 absorbs
//! responses. Client INVITE (17.1.1, offers to agents): timer A
//! retransmits, timer B = 64*T1 gives up, timer D absorbs repeated finals.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for SipTimers {
    fn default() -> Self {
        SipTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl SipTimers {
    /// 64*T1: timers B, F, H and J.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// The RFC's name of a timer, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerName {
    /// 2xx retransmission by the UAS core (13.3.1.4).
    Retransmit2xx,
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
}

/// What the engine needs of any transaction to drive its timers.
pub trait Timed {
    fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_>;
    fn poll_timeout(&self) -> Option<Instant>;
}

impl Timed for ServerTransaction {
    fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_> {
        ServerTransaction::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerTransaction::poll_timeout(self)
    }
}

impl Timed for ClientTransaction {
    fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_> {
        ClientTransaction::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ClientTransaction::poll_timeout(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

/// What a timer firing asks of the engine.
#[derive(Debug, PartialEq, Eq)]
pub enum TimerOutcome<'a> {
    Retransmit(&'a [u8]),
    /// The transaction is over; `gave_up` when it ended without its ACK or
    /// response (timer H, timer F).
    Terminated {
        gave_up: bool,
    },
    Nothing,
}

#[derive(Debug)]
pub struct ServerTransaction {
    pub invite: bool,
    reliable: bool,
    timers: SipTimers,
    state: ServerState,
    last_response: Option<Vec<u8>>,
    retransmit: Option<(Instant, TimerName)>,
    interval: Duration,
    end: Option<(Instant, TimerName)>,
}

impl ServerTransaction {
    pub fn new(invite: bool, reliable: bool, timers: SipTimers) -> Self {
        ServerTransaction {
            invite,
            reliable,
            timers,
            state: ServerState::Proceeding,
            last_response: None,
            retransmit: None,
            interval: timers.t1,
            end: None,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    /// A provisional response was sent; kept for retransmitted requests.
    pub fn provisional(&mut self, response: Vec<u8>) {
        if self.state == ServerState::Proceeding {
            self.last_response = Some(response);
        }
    }

    /// The final response was sent at `now`.
    pub fn final_response(&mut self, now: Instant, status: u16, response: Vec<u8>) {
        if self.state != ServerState::Proceeding {
            return;
        }
        self.last_response = Some(response);
        self.interval = self.timers.t1;
        let give_up = now + self.timers.timeout();
        if self.invite && (200..300).contains(&status) {
            // The 2xx is retransmitted on every transport until the ACK.
            self.state = ServerState::Accepted;
            self.retransmit = Some((now + self.interval, TimerName::Retransmit2xx));
            self.end = Some((give_up, TimerName::H));
        } else if self.invite {
            self.state = ServerState::Completed;
            self.retransmit = (!self.reliable).then(|| (now + self.interval, TimerName::G));
            self.end = Some((give_up, TimerName::H));
        } else {
            self.state = ServerState::Completed;
            let j = if self.reliable { now } else { give_up };
            self.end = Some((j, TimerName::J));
        }
    }

    /// The request arrived again: what to resend, if anything.
    pub fn handle_retransmission(&self) -> Option<&[u8]> {
        match self.state {
            ServerState::Confirmed | ServerState::Terminated => None,
            _ => self.last_response.as_deref(),
        }
    }

    /// The ACK arrived. Returns true when it acknowledged a 2xx.
    pub fn handle_ack(&mut self, now: Instant) -> bool {
        match self.state {
            ServerState::Accepted => {
                self.state = ServerState::Terminated;
                self.retransmit = None;
                self.end = None;
                true
            }
            ServerState::Completed if self.invite => {
                self.state = ServerState::Confirmed;
                self.retransmit = None;
                let i = if self.reliable {
                    now
                } else {
                    now + self.timers.t4
                };
                self.end = Some((i, TimerName::I));
                false
            }
            _ => false,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_> {
        if let Some((at, name)) = self.end {
            if now >= at {
                self.state = ServerState::Terminated;
                self.retransmit = None;
                self.end = None;
                return TimerOutcome::Terminated {
                    gave_up: name == TimerName::H,
                };
            }
        }
        if let Some((at, name)) = self.retransmit {
            if now >= at {
                self.interval = (self.interval * 2).min(self.timers.t2);
                self.retransmit = Some((now + self.interval, name));
                if let Some(r) = self.last_response.as_deref() {
                    return TimerOutcome::Retransmit(r);
                }
            }
        }
        TimerOutcome::Nothing
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.retransmit, self.end) {
            (Some((a, _)), Some((b, _))) => Some(a.min(b)),
            (a, b) => a.or(b).map(|(t, _)| t),
        }
    }

    /// The timer that fires next, for tests and logs.
    pub fn next_timer(&self) -> Option<TimerName> {
        match (self.retransmit, self.end) {
            (Some((a, n)), Some((b, m))) => Some(if a < b { n } else { m }),
            (a, b) => a.or(b).map(|(_, n)| n),
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Trying,
    Completed,
    Terminated,
}

/// A non-INVITE client transaction (the engine's BYEs).
#[derive(Debug)]
pub struct ClientTransaction {
    request: Vec<u8>,
    timers: SipTimers,
    state: ClientState,
    retransmit: Option<Instant>,
    interval: Duration,
    end: (Instant, TimerName),
    pub final_status: Option<u16>,
}

impl ClientTransaction {
    /// The request was sent at `now`.
    pub fn new(now: Instant, request: Vec<u8>, reliable: bool, timers: SipTimers) -> Self {
        ClientTransaction {
            request,
            timers,
            state: ClientState::Trying,
            retransmit: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            end: (now + timers.timeout(), TimerName::F),
            final_status: None,
        }
    }

    pub fn request(&self) -> &[u8] {
        &self.request
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn handle_response(&mut self, now: Instant, status: u16, reliable: bool) {
        if self.state != ClientState::Trying || status < 200 {
            return;
        }
        self.final_status = Some(status);
        self.state = ClientState::Completed;
        self.retransmit = None;
        let k = if reliable { now } else { now + self.timers.t4 };
        self.end = (k, TimerName::K);
    }

    pub fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_> {
        if self.state == ClientState::Terminated {
            return TimerOutcome::Nothing;
        }
        if now >= self.end.0 {
            self.state = ClientState::Terminated;
            self.retransmit = None;
            return TimerOutcome::Terminated {
                gave_up: self.end.1 == TimerName::F,
            };
        }
        match self.retransmit {
            Some(at) if now >= at => {
                self.interval = (self.interval * 2).min(self.timers.t2);
                self.retransmit = Some(now + self.interval);
                TimerOutcome::Retransmit(&self.request)
            }
            _ => TimerOutcome::Nothing,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ClientState::Terminated {
            return None;
        }
        Some(match self.retransmit {
            Some(r) => r.min(self.end.0),
            None => self.end.0,
        })
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    /// A non-2xx final arrived and was ACKed; timer D absorbs repeats.
    Completed,
    Terminated,
}

/// What a response to our INVITE asks of the engine.
#[derive(Debug, PartialEq, Eq)]
pub enum InviteResponse {
    /// 1xx: ringing or trying; stop retransmitting.
    Provisional,
    /// 2xx: the call is answered; the TU sends the ACK (a new transaction).
    Accepted,
    /// 3xx-6xx: send this ACK (same branch; built by the engine) once.
    Rejected,
    /// A retransmitted final: resend the ACK for a non-2xx, or the 2xx ACK.
    Repeated,
}

/// An INVITE client transaction (RFC 3261 17.1.1): the engine's offers to
/// agents. Timer A retransmits over UDP (T1 doubling, no cap), timer B
/// (64*T1) gives up without any response, timer D (32 s over UDP, 0 over
/// TCP) absorbs retransmitted final responses after a non-2xx.
#[derive(Debug)]
pub struct InviteClientTransaction {
    request: Vec<u8>,
    reliable: bool,
    state: InviteClientState,
    retransmit: Option<Instant>,
    interval: Duration,
    end: Option<(Instant, TimerName)>,
    pub final_status: Option<u16>,
}

/// Timer D's value over unreliable transports.
const TIMER_D: Duration = Duration::from_secs(32);

impl InviteClientTransaction {
    /// The INVITE was sent at `now`.
    pub fn new(now: Instant, request: Vec<u8>, reliable: bool, timers: SipTimers) -> Self {
        InviteClientTransaction {
            request,
            reliable,
            state: InviteClientState::Calling,
            retransmit: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            end: Some((now + timers.timeout(), TimerName::B)),
            final_status: None,
        }
    }

    pub fn state(&self) -> InviteClientState {
        self.state
    }

    pub fn handle_response(&mut self, now: Instant, status: u16) -> InviteResponse {
        match (self.state, status) {
            (InviteClientState::Calling | InviteClientState::Proceeding, 100..=199) => {
                self.state = InviteClientState::Proceeding;
                self.retransmit = None;
                // Timer B only guards Calling; a ringing agent is bounded by
                // the ACD's ring timeout (then CANCEL).
                self.end = None;
                InviteResponse::Provisional
            }
            (InviteClientState::Calling | InviteClientState::Proceeding, 200..=299) => {
                self.final_status = Some(status);
                self.state = InviteClientState::Terminated;
                self.retransmit = None;
                self.end = None;
                InviteResponse::Accepted
            }
            (InviteClientState::Calling | InviteClientState::Proceeding, _) => {
                self.final_status = Some(status);
                self.state = InviteClientState::Completed;
                self.retransmit = None;
                let d = if self.reliable { now } else { now + TIMER_D };
                self.end = Some((d, TimerName::D));
                InviteResponse::Rejected
            }
            // A final response again, after the transaction ended.
            _ => InviteResponse::Repeated,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_> {
        if let Some((at, name)) = self.end {
            if now >= at {
                self.state = InviteClientState::Terminated;
                self.retransmit = None;
                self.end = None;
                return TimerOutcome::Terminated {
                    gave_up: name == TimerName::B,
                };
            }
        }
        match self.retransmit {
            Some(at) if now >= at => {
                // Timer A doubles without the T2 cap (17.1.1.2).
                self.interval *= 2;
                self.retransmit = Some(now + self.interval);
                TimerOutcome::Retransmit(&self.request)
            }
            _ => TimerOutcome::Nothing,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.retransmit, self.end) {
            (Some(a), Some((b, _))) => Some(a.min(b)),
            (a, b) => a.or(b.map(|(t, _)| t)),
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }
}

impl Timed for InviteClientTransaction {
    fn handle_timeout(&mut self, now: Instant) -> TimerOutcome<'_> {
        InviteClientTransaction::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        InviteClientTransaction::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Steps to each wake-up and lists (offset ms, outcome) until the end.
    fn run_server(tx: &mut ServerTransaction, t0: Instant) -> Vec<(u64, &'static str)> {
        let mut log = Vec::new();
        while let Some(at) = tx.poll_timeout() {
            let what = match tx.handle_timeout(at) {
                TimerOutcome::Retransmit(_) => "retransmit",
                TimerOutcome::Terminated { gave_up: true } => "gave up",
                TimerOutcome::Terminated { gave_up: false } => "ended",
                TimerOutcome::Nothing => "nothing",
            };
            log.push(((at - t0).as_millis() as u64, what));
        }
        log
    }

    #[test]
    fn two_xx_retransmits_doubling_to_t2_then_timer_h() {
        let t0 = crate::time::test_epoch();
        let mut tx = ServerTransaction::new(true, false, SipTimers::default());
        tx.final_response(t0, 200, b"200".to_vec());
        assert_eq!(tx.state(), ServerState::Accepted);
        let log = run_server(&mut tx, t0);
        let retransmits: Vec<u64> = log
            .iter()
            .filter(|(_, w)| *w == "retransmit")
            .map(|(t, _)| *t)
            .collect();
        // 500, 1500, 3500, 7500, then every 4 s (T2) until 32 s.
        assert_eq!(&retransmits[..5], &[500, 1500, 3500, 7500, 11500]);
        assert!(retransmits.windows(2).skip(3).all(|w| w[1] - w[0] == 4000));
        assert_eq!(log.last(), Some(&(32_000, "gave up")));
    }

    #[test]
    fn ack_stops_2xx_retransmission() {
        let t0 = crate::time::test_epoch();
        let mut tx = ServerTransaction::new(true, false, SipTimers::default());
        tx.final_response(t0, 200, b"200".to_vec());
        assert!(matches!(
            tx.handle_timeout(t0 + ms(500)),
            TimerOutcome::Retransmit(_)
        ));
        assert!(tx.handle_ack(t0 + ms(700)));
        assert_eq!(tx.poll_timeout(), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_2xx_over_udp_uses_g_h_then_i() {
        let t0 = crate::time::test_epoch();
        let mut tx = ServerTransaction::new(true, false, SipTimers::default());
        tx.final_response(t0, 487, b"487".to_vec());
        assert_eq!(tx.next_timer(), Some(TimerName::G));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(500)));
        assert!(!tx.handle_ack(t0 + ms(600)));
        assert_eq!(tx.state(), ServerState::Confirmed);
        assert_eq!(tx.next_timer(), Some(TimerName::I));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(600) + ms(5000)));
        assert_eq!(
            tx.handle_timeout(t0 + ms(5600)),
            TimerOutcome::Terminated { gave_up: false }
        );
    }

    #[test]
    fn non_2xx_over_tcp_has_no_timer_g() {
        let t0 = crate::time::test_epoch();
        let mut tx = ServerTransaction::new(true, true, SipTimers::default());
        tx.final_response(t0, 486, b"486".to_vec());
        assert_eq!(tx.next_timer(), Some(TimerName::H));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
    }

    #[test]
    fn non_invite_timer_j_absorbs_retransmissions() {
        let t0 = crate::time::test_epoch();
        let mut tx = ServerTransaction::new(false, false, SipTimers::default());
        tx.final_response(t0, 200, b"200 BYE".to_vec());
        assert_eq!(tx.handle_retransmission(), Some(&b"200 BYE"[..]));
        assert_eq!(tx.next_timer(), Some(TimerName::J));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
        let mut tcp = ServerTransaction::new(false, true, SipTimers::default());
        tcp.final_response(t0, 200, b"200".to_vec());
        assert_eq!(tcp.poll_timeout(), Some(t0), "timer J is 0 on TCP");
    }

    #[test]
    fn client_timer_e_doubles_and_f_gives_up() {
        let t0 = crate::time::test_epoch();
        let mut tx = ClientTransaction::new(t0, b"BYE".to_vec(), false, SipTimers::default());
        let mut sends = Vec::new();
        let end = loop {
            let at = tx.poll_timeout().expect("running");
            match tx.handle_timeout(at) {
                TimerOutcome::Retransmit(_) => sends.push((at - t0).as_millis()),
                TimerOutcome::Terminated { gave_up } => break ((at - t0).as_millis(), gave_up),
                TimerOutcome::Nothing => {}
            }
        };
        assert_eq!(&sends[..4], &[500, 1500, 3500, 7500]);
        assert_eq!(end, (32_000, true));
    }

    #[test]
    fn client_final_response_starts_timer_k() {
        let t0 = crate::time::test_epoch();
        let mut tx = ClientTransaction::new(t0, b"BYE".to_vec(), false, SipTimers::default());
        tx.handle_response(t0 + ms(100), 100, false);
        assert_eq!(tx.state(), ClientState::Trying);
        tx.handle_response(t0 + ms(200), 200, false);
        assert_eq!(tx.final_status, Some(200));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(5200)));
        assert_eq!(
            tx.handle_timeout(t0 + ms(5200)),
            TimerOutcome::Terminated { gave_up: false }
        );
    }

    #[test]
    fn invite_client_timer_a_doubles_without_cap_and_b_gives_up() {
        let t0 = crate::time::test_epoch();
        let mut tx =
            InviteClientTransaction::new(t0, b"INVITE".to_vec(), false, SipTimers::default());
        let mut sends = Vec::new();
        let end = loop {
            let at = tx.poll_timeout().expect("running");
            match tx.handle_timeout(at) {
                TimerOutcome::Retransmit(_) => sends.push((at - t0).as_millis()),
                TimerOutcome::Terminated { gave_up } => break ((at - t0).as_millis(), gave_up),
                TimerOutcome::Nothing => {}
            }
        };
        assert_eq!(sends, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(end, (32_000, true), "timer B = 64*T1");
    }

    #[test]
    fn invite_client_ringing_then_rejection_uses_timer_d() {
        let t0 = crate::time::test_epoch();
        let mut tx =
            InviteClientTransaction::new(t0, b"INVITE".to_vec(), false, SipTimers::default());
        assert_eq!(
            tx.handle_response(t0 + ms(100), 180),
            InviteResponse::Provisional
        );
        assert_eq!(tx.poll_timeout(), None, "no retransmission once ringing");
        assert_eq!(
            tx.handle_response(t0 + ms(900), 486),
            InviteResponse::Rejected
        );
        assert_eq!(tx.final_status, Some(486));
        assert_eq!(
            tx.handle_response(t0 + ms(950), 486),
            InviteResponse::Repeated
        );
        assert_eq!(
            tx.poll_timeout(),
            Some(t0 + ms(900) + Duration::from_secs(32))
        );
        let mut tcp =
            InviteClientTransaction::new(t0, b"INVITE".to_vec(), true, SipTimers::default());
        assert_eq!(
            tcp.poll_timeout(),
            Some(t0 + ms(32_000)),
            "no timer A on TCP"
        );
        tcp.handle_response(t0, 603);
        assert_eq!(tcp.poll_timeout(), Some(t0), "timer D is 0 on TCP");
    }

    #[test]
    fn invite_client_2xx_ends_the_transaction() {
        let t0 = crate::time::test_epoch();
        let mut tx =
            InviteClientTransaction::new(t0, b"INVITE".to_vec(), false, SipTimers::default());
        assert_eq!(
            tx.handle_response(t0 + ms(100), 200),
            InviteResponse::Accepted
        );
        assert!(tx.is_terminated());
        assert_eq!(
            tx.handle_response(t0 + ms(600), 200),
            InviteResponse::Repeated
        );
    }
}
