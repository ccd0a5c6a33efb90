//! Trunks as the engine uses them: where a number is dialled, and the
//! channels and call rate each may not exceed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{TrunkConfig, TrunkTransport};
use crate::io::{Peer, Transport};
use crate::leg::uac::{LegTarget, UacAuth};

pub struct Trunk {
    pub config: TrunkConfig,
    /// Calls through it now (those whose INVITE waits for its attempt to
    /// be written included).
    pub channels: u32,
    /// The most calls through it at once since start.
    pub peak_channels: u32,
    /// When the INVITEs of the last second left: a sliding window, so no
    /// one-second span ever holds more than `max_calls_per_second` (a
    /// token bucket lets a burst and its refill share one second).
    started: VecDeque<Instant>,
    /// Calls decided whose INVITE has not left yet (their attempt is being
    /// written): they count against the rate until they leave, then at the
    /// time they left, so the store's delay cannot bunch them up.
    pending: u32,
}

const SECOND: Duration = Duration::from_secs(1);

impl Trunk {
    pub fn new(config: TrunkConfig, _now: Instant) -> Trunk {
        Trunk {
            started: VecDeque::with_capacity(config.max_calls_per_second as usize),
            config,
            channels: 0,
            peak_channels: 0,
            pending: 0,
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while self.started.front().is_some_and(|t| *t + SECOND <= now) {
            self.started.pop_front();
        }
    }

    fn rate(&self) -> usize {
        self.config.max_calls_per_second.max(1) as usize
    }

    /// Whether a call may be decided now (a channel free, and the rate
    /// with the calls not yet sent).
    pub fn can_dial(&mut self, now: Instant) -> bool {
        self.forget_old(now);
        self.channels < self.config.max_channels
            && self.started.len() + (self.pending as usize) < self.rate()
    }

    /// A call is decided: it takes a channel, and a place in the rate
    /// until its INVITE leaves ([`Trunk::sent`]) or it is given up
    /// ([`Trunk::unreserve`]).
    pub fn reserve(&mut self) {
        self.pending += 1;
        self.channels += 1;
        self.peak_channels = self.peak_channels.max(self.channels);
    }

    /// A reserved call's INVITE leaves now.
    pub fn sent(&mut self, now: Instant) {
        self.pending = self.pending.saturating_sub(1);
        self.forget_old(now);
        self.started.push_back(now);
    }

    /// A reserved call is not placed after all.
    pub fn unreserve(&mut self) {
        self.pending = self.pending.saturating_sub(1);
        self.release();
    }

    /// A call through it is over.
    pub fn release(&mut self) {
        self.channels = self.channels.saturating_sub(1);
    }

    /// When the rate lets the next call start (if a channel is free; when
    /// calls not yet sent fill the second, the poll after they leave says).
    pub fn next_token(&self) -> Option<Instant> {
        let full = self.started.len() + self.pending as usize >= self.rate();
        if self.channels >= self.config.max_channels || !full {
            return None;
        }
        self.started.front().map(|t| *t + SECOND)
    }

    /// Where `number` is dialled through this trunk.
    pub fn target(&self, number: &str) -> LegTarget {
        let c = &self.config;
        let domain = c.domain.clone().unwrap_or_else(|| c.address.to_string());
        LegTarget {
            uri: format!("sip:{number}@{domain}"),
            peer: Peer {
                transport: match c.transport {
                    TrunkTransport::Udp => Transport::Udp,
                    TrunkTransport::Tcp => Transport::Tcp,
                    TrunkTransport::Tls => Transport::Tls,
                },
                addr: c.address,
                conn: 0,
            },
            route: Vec::new(),
            from_user: c.caller_id.clone(),
            from_display: c.caller_id.clone(),
            auth: match (&c.username, &c.password) {
                (Some(u), Some(p)) => Some(UacAuth {
                    username: u.clone(),
                    password: p.clone(),
                }),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(channels: u32, rate: u32) -> Trunk {
        let config = TrunkConfig {
            name: "pstn".into(),
            address: "192.0.2.10:5060".parse().expect("addr"),
            transport: TrunkTransport::Udp,
            caller_id: "4008001234".into(),
            max_channels: channels,
            max_calls_per_second: rate,
            domain: None,
            username: Some("hl".into()),
            password: Some("s3cret".into()),
            password_env: None,
            tls_ca: None,
        };
        Trunk::new(config, crate::time::test_epoch())
    }

    #[test]
    fn a_burst_never_exceeds_the_rate_or_the_channels() {
        let mut t = trunk(30, 10);
        let t0 = crate::time::test_epoch();
        let mut started = Vec::new();
        let mut now = t0;
        // Try every millisecond for 3 s; calls end after 10 s, so only
        // the rate limits here.
        while now < t0 + Duration::from_secs(3) {
            if t.can_dial(now) {
                t.reserve();
                t.sent(now);
                started.push(now - t0);
            }
            now += Duration::from_millis(1);
        }
        // In any one-second window, at most 10.
        for (i, s) in started.iter().enumerate() {
            let in_window = started[i..]
                .iter()
                .take_while(|x| **x < *s + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} calls in the second from {s:?}"
            );
        }
        assert!(
            started.len() >= 29,
            "{} calls in 3 s at 10/s",
            started.len()
        );
        // And the channels: 30 in use now, none more however long we wait.
        assert_eq!(t.channels, started.len() as u32);
        let later = now + Duration::from_secs(10);
        let mut more = 0;
        while t.can_dial(later) && more < 100 {
            t.reserve();
            t.sent(later);
            more += 1;
        }
        assert_eq!(t.channels, 30);
        assert_eq!(t.peak_channels, 30);
        t.release();
        assert!(t.can_dial(later + Duration::from_secs(1)));
    }

    #[test]
    fn calls_whose_invite_waits_count_against_the_rate_and_are_timed_when_sent() {
        let mut t = trunk(100, 10);
        let t0 = crate::time::test_epoch();
        // Ten decided at once; their attempts are written one by one, so
        // their INVITEs leave over 300 ms.
        for _ in 0..10 {
            assert!(t.can_dial(t0));
            t.reserve();
        }
        assert!(!t.can_dial(t0), "ten waiting fill the second");
        for i in 0..10u64 {
            t.sent(t0 + Duration::from_millis(30 * i));
        }
        // A second after the first left, one place: the others left later.
        let second = t0 + Duration::from_secs(1);
        assert!(t.can_dial(second));
        t.reserve();
        assert!(!t.can_dial(second));
        assert_eq!(t.next_token(), Some(t0 + Duration::from_millis(1030)));
        // Given up before its INVITE: its channel and place are back.
        t.unreserve();
        assert!(t.can_dial(second));
        assert_eq!(t.channels, 10);
    }

    #[test]
    fn numbers_are_dialled_at_the_trunk_with_its_caller_id() {
        let t = trunk(1, 1);
        let target = t.target("13800138000");
        assert_eq!(target.uri, "sip:13800138000@192.0.2.10:5060");
        assert_eq!(target.from_user, "4008001234");
        assert_eq!(target.peer.addr, t.config.address);
        assert_eq!(target.auth.map(|a| a.username), Some("hl".to_string()));
    }
}
