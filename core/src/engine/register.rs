//! REGISTER: agents' softphones log in through the registrar, whose
//! bindings say where to send their calls.

use std::time::Instant;

use tracing::{info, warn};

use super::Engine;
use crate::io::Peer;
use crate::sip::message::SipRequest;
use crate::sip::registrar::{RegistrarEvent, Source};
use crate::wire::Wake;

impl Engine {
    pub(super) fn handle_register(&mut self, now: Instant, peer: Peer, req: &SipRequest) {
        let source = Source {
            addr: peer.addr,
            reliable: peer.transport.reliable(),
            conn: peer.conn,
        };
        let reply = self.registrar.handle_register(now, source, req);
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
        self.registrar_events(now);
    }

    pub(super) fn registrar_timeout(&mut self, now: Instant) {
        self.registrar.handle_timeout(now);
        self.registrar_events(now);
    }

    /// Passes registrations on (to the ACD once it is wired) and re-arms
    /// the registrar's timer.
    fn registrar_events(&mut self, now: Instant) {
        while let Some(event) = self.registrar.poll_event() {
            match event {
                RegistrarEvent::Registered { user, contact } => {
                    info!(agent = %user, %contact, "agent registered");
                    self.agent_reachable(now, &user, true);
                }
                RegistrarEvent::Unregistered {
                    user,
                    contact,
                    expired,
                } => {
                    info!(agent = %user, %contact, expired, "agent binding removed");
                    let still = self.registrar.is_registered(&user);
                    self.agent_reachable(now, &user, still);
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
