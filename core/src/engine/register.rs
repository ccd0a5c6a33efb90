//! REGISTER: agents' softphones log in through the registrar, whose
//! bindings say where to send their calls.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::Engine;
use crate::io::Peer;
use crate::sip::message::SipRequest;
use crate::sip::registrar::{RegistrarEvent, Source};
use crate::wire::Wake;

/// How long an unanswered challenge is remembered, and how many phones.
const CHALLENGE_MEMORY: Duration = Duration::from_secs(600);
const CHALLENGES_KEPT: usize = 10_000;

impl Engine {
    pub(super) fn handle_register(&mut self, now: Instant, peer: Peer, req: &SipRequest) {
        let source = Source {
            addr: peer.addr,
            transport: peer.transport,
            conn: peer.conn,
        };
        let reply = self.registrar.handle_register(now, source, req);
        self.note_challenge(now, peer, req, reply.status);
        if reply.status == 403 || reply.status == 423 {
            let banned = reply.headers.iter().any(|(n, _)| n == "Retry-After");
            warn!(
                from = %peer.addr,
                user = req.from_user(),
                status = reply.status,
                banned,
                "registration refused"
            );
        }
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.wire
            .respond_new(now, None, peer, req, reply.status, reply.reason, &headers);
        if reply.status == 200 {
            // A refresh moves the expiry, which other nodes must see.
            let user = crate::sip::message::uri_user(crate::sip::params::name_addr_uri(&req.to));
            let user = user.to_string();
            self.tell_bindings(&user);
        }
        self.registrar_events(now);
    }

    /// A phone that gets a 401, then asks again without credentials, did
    /// not answer the challenge: it cannot use any algorithm offered (as
    /// Debian's baresip 1.0 with SHA-256). Said once per phone and
    /// retry, at WARN, since it will never log in.
    fn note_challenge(&mut self, now: Instant, peer: Peer, req: &SipRequest, status: u16) {
        let key = (req.from_user().to_string(), peer.addr.ip());
        if req.authorization.is_some() {
            self.challenged.remove(&key);
            return;
        }
        if status != 401 {
            return;
        }
        // Forget challenges older than a registration cycle, and bound the
        // table against a flood of made-up users.
        if self.challenged.len() >= CHALLENGES_KEPT {
            self.challenged
                .retain(|_, at| now.saturating_duration_since(*at) < CHALLENGE_MEMORY);
            if self.challenged.len() >= CHALLENGES_KEPT {
                self.challenged.clear();
            }
        }
        let earlier = self.challenged.insert(key, now);
        if earlier.is_some_and(|at| now.saturating_duration_since(at) < CHALLENGE_MEMORY) {
            self.wire.counters.challenges_unanswered += 1;
            let offered: Vec<&str> = self
                .settings
                .registrar
                .algorithms
                .iter()
                .map(|a| a.name())
                .collect();
            warn!(
                from = %peer.addr,
                user = req.from_user(),
                offered = %offered.join(", "),
                "challenge not answered: the phone asked again without credentials (it may not support any algorithm offered)"
            );
        }
    }

    pub(super) fn registrar_timeout(&mut self, now: Instant) {
        self.registrar.handle_timeout(now);
        self.registrar_events(now);
    }

    /// Bindings changed outside a REGISTER (another node's phones).
    pub(super) fn registrar_changed(&mut self, now: Instant) {
        self.registrar_events(now);
    }

    /// Passes registrations on to the ACD (and to the shared store) and
    /// re-arms the registrar's timer.
    fn registrar_events(&mut self, now: Instant) {
        while let Some(event) = self.registrar.poll_event() {
            match event {
                RegistrarEvent::Registered { user, contact } => {
                    info!(agent = %user, %contact, "agent registered");
                    self.agent_reachable(now, &user, true);
                    self.tell_bindings(&user);
                }
                RegistrarEvent::Unregistered {
                    user,
                    contact,
                    expired,
                } => {
                    info!(agent = %user, %contact, expired, "agent binding removed");
                    let still = self.registrar.is_registered(&user);
                    self.agent_reachable(now, &user, still);
                    self.tell_bindings(&user);
                }
            }
        }
        if let Some(at) = self.registrar.poll_timeout() {
            self.wire.timers.schedule(at, Wake::Registrar);
        }
    }

    /// Whether any of an agent's phones is registered.
    pub fn agent_registered(&self, agent: &str) -> bool {
        self.registrar.is_registered(agent)
    }
}
