//! Who may send what, decided per source address: the trunk allow-list
//! (only the PBXs and trunks in front may place calls to hotline numbers)
//! and flood limits (too many INVITEs or REGISTERs per second from one
//! address bans it for a while; a banned address's requests are dropped
//! unanswered, so a scanner gets nothing to amplify). Pure: time comes in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// How often idle sources are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Sources tracked at most; beyond it new sources are not rate-tracked
/// (they pass), so a flood from many addresses cannot exhaust memory.
const MAX_SOURCES: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub struct GuardSettings {
    /// Sources allowed to call hotline numbers; empty = anyone.
    pub trunks: Vec<IpNet>,
    /// INVITEs per second from one non-trunk source before it is banned.
    pub invite_rate: u32,
    /// REGISTERs per second from one source before it is banned.
    pub register_rate: u32,
    pub flood_ban: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            trunks: Vec::new(),
            invite_rate: 20,
            register_rate: 20,
            flood_ban: Duration::from_secs(60),
        }
    }
}

/// The requests that are rate-limited per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Invite,
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over its rate just now: banned from this request on.
    Banned,
}

/// A token bucket holding up to one second's worth of requests.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(now: Instant, rate: u32) -> Self {
        Bucket {
            tokens: rate as f64,
            updated: now,
        }
    }

    fn take(&mut self, now: Instant, rate: u32) -> bool {
        let rate = rate as f64;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone)]
struct Source {
    invite: Bucket,
    register: Bucket,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

#[derive(Debug)]
pub struct SourceGuard {
    settings: GuardSettings,
    sources: HashMap<IpAddr, Source>,
    last_sweep: Instant,
    /// Bans given so far, for counters and tests.
    pub bans: u64,
}

impl SourceGuard {
    pub fn new(now: Instant, settings: GuardSettings) -> Self {
        SourceGuard {
            settings,
            sources: HashMap::new(),
            last_sweep: now,
            bans: 0,
        }
    }

    pub fn set_settings(&mut self, settings: GuardSettings) {
        self.settings = settings;
    }

    /// Whether `ip` may place calls to hotline numbers.
    pub fn is_trunk(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.settings.trunks.is_empty() || self.settings.trunks.iter().any(|n| n.contains(&ip))
    }

    /// Whether `ip` is banned now (its requests are dropped).
    pub fn is_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.sources
            .get(&canonical(ip))
            .and_then(|s| s.banned_until)
            .is_some_and(|until| now < until)
    }

    /// Counts one request of `kind` from `ip`. Configured trunks are not
    /// INVITE-limited: they carry every caller's calls, and the engine-wide
    /// call-rate limit answers their excess with 503 instead.
    pub fn check(&mut self, now: Instant, ip: IpAddr, kind: Limited) -> Verdict {
        let ip = canonical(ip);
        if kind == Limited::Invite
            && !self.settings.trunks.is_empty()
            && self.settings.trunks.iter().any(|n| n.contains(&ip))
        {
            return Verdict::Pass;
        }
        self.sweep(now);
        let (invite_rate, register_rate) = (self.settings.invite_rate, self.settings.register_rate);
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            return Verdict::Pass;
        }
        let source = self.sources.entry(ip).or_insert_with(|| Source {
            invite: Bucket::full(now, invite_rate),
            register: Bucket::full(now, register_rate),
            banned_until: None,
            last_seen: now,
        });
        source.last_seen = now;
        let allowed = match kind {
            Limited::Invite => source.invite.take(now, invite_rate),
            Limited::Register => source.register.take(now, register_rate),
        };
        if allowed {
            return Verdict::Pass;
        }
        source.banned_until = Some(now + self.settings.flood_ban);
        self.bans += 1;
        Verdict::Banned
    }

    fn sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        // A full bucket refills within a second; a source idle for longer
        // than that and not banned carries no state worth keeping.
        let idle = Duration::from_secs(2);
        self.sources.retain(|_, s| {
            s.banned_until.is_some_and(|u| now < u)
                || now.saturating_duration_since(s.last_seen) < idle
        });
    }

    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }
}

/// IPv4-mapped IPv6 addresses (dual-stack sockets) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trunks: &[&str]) -> GuardSettings {
        GuardSettings {
            trunks: trunks.iter().map(|t| t.parse().expect("net")).collect(),
            invite_rate: 5,
            register_rate: 3,
            flood_ban: Duration::from_secs(60),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn trunk_list_matches_prefixes_and_empty_means_anyone() {
        let t0 = crate::time::test_epoch();
        let g = SourceGuard::new(t0, settings(&["10.1.0.0/16", "192.0.2.7/32"]));
        assert!(g.is_trunk(ip("10.1.200.3")));
        assert!(g.is_trunk(ip("192.0.2.7")));
        assert!(g.is_trunk(ip("::ffff:10.1.0.1")));
        assert!(!g.is_trunk(ip("192.0.2.8")));
        assert!(!g.is_trunk(ip("203.0.113.1")));
        let open = SourceGuard::new(t0, settings(&[]));
        assert!(open.is_trunk(ip("203.0.113.1")));
    }

    #[test]
    fn a_flood_is_banned_for_the_ban_time_then_forgiven() {
        let t0 = crate::time::test_epoch();
        let mut g = SourceGuard::new(t0, settings(&["10.0.0.0/8"]));
        let scanner = ip("203.0.113.9");
        // A burst of 5 (one second's worth) passes; the 6th in the same
        // instant is over the rate.
        for _ in 0..5 {
            assert_eq!(g.check(t0, scanner, Limited::Invite), Verdict::Pass);
        }
        assert_eq!(g.check(t0, scanner, Limited::Invite), Verdict::Banned);
        assert!(g.is_banned(t0 + Duration::from_secs(59), scanner));
        assert!(!g.is_banned(t0 + Duration::from_secs(60), scanner));
        // Others are untouched.
        assert!(!g.is_banned(t0, ip("203.0.113.10")));
        assert_eq!(g.bans, 1);
    }

    #[test]
    fn a_steady_rate_under_the_limit_passes_forever() {
        let t0 = crate::time::test_epoch();
        let mut g = SourceGuard::new(t0, settings(&[]));
        let phone = ip("198.51.100.4");
        // 3 REGISTERs a second allowed; one every 400 ms (2.5/s) for 10 min.
        for i in 0..1500u64 {
            let now = t0 + Duration::from_millis(400 * i);
            assert_eq!(g.check(now, phone, Limited::Register), Verdict::Pass);
        }
    }

    #[test]
    fn trunks_are_not_invite_limited_but_are_register_limited() {
        let t0 = crate::time::test_epoch();
        let mut g = SourceGuard::new(t0, settings(&["10.0.0.0/8"]));
        let pbx = ip("10.0.0.5");
        for _ in 0..1000 {
            assert_eq!(g.check(t0, pbx, Limited::Invite), Verdict::Pass);
        }
        for _ in 0..3 {
            assert_eq!(g.check(t0, pbx, Limited::Register), Verdict::Pass);
        }
        assert_eq!(g.check(t0, pbx, Limited::Register), Verdict::Banned);
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let t0 = crate::time::test_epoch();
        let mut g = SourceGuard::new(t0, settings(&[]));
        for i in 0..100u8 {
            g.check(t0, ip(&format!("198.51.100.{i}")), Limited::Invite);
        }
        assert_eq!(g.tracked_sources(), 100);
        g.check(
            t0 + Duration::from_secs(11),
            ip("192.0.2.1"),
            Limited::Invite,
        );
        assert_eq!(g.tracked_sources(), 1);
    }
}
