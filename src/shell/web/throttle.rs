//! Failed sign-ins, counted per (user, client address) the way the
//! registrar counts failed REGISTERs: `max_failures` within
//! `failure_window` bans that pair for `ban`, during which every attempt
//! is refused (429), even one with the right password. A success clears
//! the count. Addresses are IPv4 addresses and IPv6 /64s (one site).
//!
//! Pure: every call takes `now`. At most [`MAX_RECORDS`] pairs are
//! tracked, so a flood of made-up user names cannot exhaust memory.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Pairs tracked at most; beyond, stale ones are forgotten, and if none
/// is stale new failures go uncounted (fail open rather than grow).
pub const MAX_RECORDS: usize = 100_000;

/// Longest user name kept in a key (longer ones are cut).
const MAX_USER: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    pub max_failures: u32,
    pub failure_window: Duration,
    pub ban: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    count: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
}

impl Record {
    /// When the record stops mattering: its ban's end, or its window's.
    fn deadline(&self, window: Duration) -> Instant {
        self.banned_until.unwrap_or(self.window_start + window)
    }
}

/// What a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Counted; `left` more before a ban.
    Counted { left: u32 },
    /// This failure started a ban, until then.
    Banned { until: Instant },
}

#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    records: HashMap<(String, IpAddr), Record>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle {
            settings,
            records: HashMap::new(),
        }
    }

    pub fn settings(&self) -> ThrottleSettings {
        self.settings
    }

    /// `Err(time left)` while (user, address) is banned.
    pub fn check(&mut self, now: Instant, user: &str, ip: IpAddr) -> Result<(), Duration> {
        let key = key(user, ip);
        let Some(until) = self.records.get(&key).and_then(|r| r.banned_until) else {
            return Ok(());
        };
        if until > now {
            return Err(until - now);
        }
        self.records.remove(&key);
        Ok(())
    }

    /// A wrong password (or unknown user) from `ip`.
    pub fn failed(&mut self, now: Instant, user: &str, ip: IpAddr) -> Failure {
        let window = self.settings.failure_window;
        let key = key(user, ip);
        let max = self.settings.max_failures.max(1);
        if !self.records.contains_key(&key) && self.records.len() >= MAX_RECORDS {
            self.forget_stale(now);
            if self.records.len() >= MAX_RECORDS {
                return Failure::Counted { left: max };
            }
        }
        let fresh = Record {
            count: 0,
            window_start: now,
            banned_until: None,
        };
        let record = self.records.entry(key).or_insert(fresh);
        if record.deadline(window) <= now {
            *record = fresh;
        }
        record.count += 1;
        if record.count >= max {
            let until = now + self.settings.ban;
            record.banned_until = Some(until);
            Failure::Banned { until }
        } else {
            Failure::Counted {
                left: max - record.count,
            }
        }
    }

    /// A correct sign-in: the pair's failures are forgotten.
    pub fn succeeded(&mut self, user: &str, ip: IpAddr) {
        self.records.remove(&key(user, ip));
    }

    /// Forgets records whose window and ban are over.
    pub fn forget_stale(&mut self, now: Instant) {
        let window = self.settings.failure_window;
        self.records.retain(|_, r| r.deadline(window) > now);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn key(user: &str, ip: IpAddr) -> (String, IpAddr) {
    let user = match user.char_indices().nth(MAX_USER) {
        Some((cut, _)) => &user[..cut],
        None => user,
    };
    (user.to_string(), site(ip))
}

/// An IPv4 address as it is; an IPv6 address's /64 (IPv4-mapped ones as
/// IPv4).
fn site(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn throttle() -> Throttle {
        Throttle::new(ThrottleSettings {
            max_failures: 5,
            failure_window: 10 * MIN,
            ban: 15 * MIN,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn five_failures_in_the_window_ban_the_pair_for_the_ban() {
        let t0 = Instant::now();
        let mut t = throttle();
        let a = ip("192.0.2.7");
        for n in 1..5 {
            assert_eq!(t.check(t0, "1001", a), Ok(()));
            assert_eq!(
                t.failed(t0 + MIN * n, "1001", a),
                Failure::Counted { left: 5 - n }
            );
        }
        let at = t0 + 5 * MIN;
        assert_eq!(
            t.failed(at, "1001", a),
            Failure::Banned {
                until: at + 15 * MIN
            }
        );
        // Refused for the whole ban, whatever the password.
        assert_eq!(t.check(at, "1001", a), Err(15 * MIN));
        assert_eq!(t.check(at + 14 * MIN, "1001", a), Err(MIN));
        // Another user from there, and the same user from elsewhere, may try.
        assert_eq!(t.check(at, "1002", a), Ok(()));
        assert_eq!(t.check(at, "1001", ip("192.0.2.8")), Ok(()));
        // Over: counted afresh.
        assert_eq!(t.check(at + 15 * MIN, "1001", a), Ok(()));
        assert_eq!(
            t.failed(at + 15 * MIN, "1001", a),
            Failure::Counted { left: 4 }
        );
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let t0 = Instant::now();
        let mut t = throttle();
        let a = ip("192.0.2.7");
        for _ in 0..4 {
            t.failed(t0, "sup", a);
        }
        assert_eq!(
            t.failed(t0 + 10 * MIN, "sup", a),
            Failure::Counted { left: 4 }
        );
    }

    #[test]
    fn a_success_clears_the_count() {
        let t0 = Instant::now();
        let mut t = throttle();
        let a = ip("192.0.2.7");
        for _ in 0..4 {
            t.failed(t0, "sup", a);
        }
        t.succeeded("sup", a);
        assert_eq!(t.failed(t0, "sup", a), Failure::Counted { left: 4 });
    }

    #[test]
    fn an_ipv6_site_counts_as_one_address() {
        let t0 = Instant::now();
        let mut t = throttle();
        for n in 1..=5 {
            t.failed(t0, "sup", ip(&format!("2001:db8:1:2::{n}")));
        }
        assert!(t.check(t0, "sup", ip("2001:db8:1:2::99")).is_err());
        assert!(t.check(t0, "sup", ip("2001:db8:1:3::1")).is_ok());
        assert_eq!(site(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn memory_is_bounded_and_stale_records_go() {
        let t0 = Instant::now();
        let mut t = throttle();
        let a = ip("192.0.2.7");
        for n in 0..MAX_RECORDS {
            t.failed(t0, &format!("u{n}"), a);
        }
        assert_eq!(t.len(), MAX_RECORDS);
        // Full and nothing stale: not counted, nothing grows.
        assert_eq!(t.failed(t0, "new", a), Failure::Counted { left: 5 });
        assert_eq!(t.len(), MAX_RECORDS);
        // Once the window is over, room is made.
        t.failed(t0 + 10 * MIN, "new", a);
        assert_eq!(t.len(), 1);
        t.forget_stale(t0 + 30 * MIN);
        assert!(t.is_empty());
    }

    #[test]
    fn long_user_names_are_cut_in_the_key() {
        let t0 = Instant::now();
        let mut t = throttle();
        let a = ip("192.0.2.7");
        let long = "x".repeat(200);
        for _ in 0..5 {
            t.failed(t0, &long, a);
        }
        assert!(t.check(t0, &"x".repeat(64), a).is_err());
    }
}
