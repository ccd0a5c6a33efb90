//! Web sessions: a random 256-bit token in an `HttpOnly`,
//! `SameSite=Strict` cookie, and a server-side map from the token's
//! SHA-256 to who signed in, the session's CSRF token and its expiry.
//!
//! Expiry slides: a session ends `session_ttl` after its last request
//! (an agent's desk open all shift stays signed in; one left alone is
//! signed out). The cookie itself has no expiry (it ends with the
//! browser); the server decides. Tokens are kept hashed, so the map's
//! lookups do not compare secrets byte by byte, and a memory dump does
//! not hand out live cookies.
//!
//! Pure: the caller draws the random bytes and gives `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::sip::digest::Algorithm;

/// Sessions kept at most; beyond, expired ones go, then the ones closest
/// to expiring.
pub const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user, agent or web user id.
    pub user: String,
    /// Sent back in `X-CSRF-Token` (or a `csrf` form field) with every
    /// change.
    pub csrf: String,
    pub expires: Instant,
}

/// A new session's secrets: the cookie's token and the CSRF token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub csrf: String,
}

#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    by_hash: HashMap<String, Session>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            by_hash: HashMap::new(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A session for `user` from 64 random bytes (the first 32 the
    /// token, the others the CSRF token).
    pub fn create(&mut self, now: Instant, user: &str, random: [u8; 64]) -> Issued {
        let token = hex(&random[..32]);
        let csrf = hex(&random[32..]);
        if self.by_hash.len() >= MAX_SESSIONS {
            self.expire(now);
        }
        if self.by_hash.len() >= MAX_SESSIONS {
            let soonest = self
                .by_hash
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(k) = soonest {
                self.by_hash.remove(&k);
            }
        }
        self.by_hash.insert(
            digest(&token),
            Session {
                user: user.to_string(),
                csrf: csrf.clone(),
                expires: now + self.ttl,
            },
        );
        Issued { token, csrf }
    }

    /// The session of a cookie's token, its expiry moved to `now + ttl`;
    /// `None` if unknown or expired (an expired one is dropped).
    pub fn touch(&mut self, now: Instant, token: &str) -> Option<Session> {
        let key = digest(token);
        let session = self.by_hash.get_mut(&key)?;
        if session.expires <= now {
            self.by_hash.remove(&key);
            return None;
        }
        session.expires = now + self.ttl;
        Some(session.clone())
    }

    /// Signs the cookie's session out; whether there was one.
    pub fn remove(&mut self, token: &str) -> bool {
        self.by_hash.remove(&digest(token)).is_some()
    }

    /// Signs every session of `user` out (their account is gone).
    pub fn remove_user(&mut self, user: &str) {
        self.by_hash.retain(|_, s| s.user != user);
    }

    /// Drops expired sessions.
    pub fn expire(&mut self, now: Instant) {
        self.by_hash.retain(|_, s| s.expires > now);
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn digest(token: &str) -> String {
    Algorithm::Sha256.hex(token.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn random(seed: u8) -> [u8; 64] {
        let mut r = [0u8; 64];
        for (i, b) in r.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(i as u8);
        }
        r
    }

    #[test]
    fn a_session_is_found_by_its_token_and_slides() {
        let t0 = Instant::now();
        let mut s = Sessions::new(8 * HOUR);
        let issued = s.create(t0, "1001", random(1));
        assert_eq!(issued.token.len(), 64, "256 bits, hex");
        assert_eq!(issued.csrf.len(), 64);
        assert_ne!(issued.token, issued.csrf);
        let found = s.touch(t0 + 7 * HOUR, &issued.token).expect("live");
        assert_eq!(found.user, "1001");
        assert_eq!(found.csrf, issued.csrf);
        // Used at 7 h: good until 15 h.
        assert!(s.touch(t0 + 14 * HOUR, &issued.token).is_some());
        assert!(s.touch(t0 + 23 * HOUR, &issued.token).is_none(), "idle 9 h");
        assert!(s.is_empty(), "the expired one is dropped");
    }

    #[test]
    fn unknown_tokens_and_signed_out_sessions_find_nothing() {
        let t0 = Instant::now();
        let mut s = Sessions::new(HOUR);
        let issued = s.create(t0, "sup", random(2));
        assert!(s.touch(t0, "00").is_none());
        assert!(
            s.touch(t0, &issued.csrf).is_none(),
            "the CSRF token is no cookie"
        );
        assert!(s.remove(&issued.token));
        assert!(!s.remove(&issued.token));
        assert!(s.touch(t0, &issued.token).is_none());
    }

    #[test]
    fn a_user_s_sessions_end_together() {
        let t0 = Instant::now();
        let mut s = Sessions::new(HOUR);
        let a = s.create(t0, "sup", random(3));
        let b = s.create(t0, "sup", random(4));
        let c = s.create(t0, "1001", random(5));
        s.remove_user("sup");
        assert!(s.touch(t0, &a.token).is_none());
        assert!(s.touch(t0, &b.token).is_none());
        assert!(s.touch(t0, &c.token).is_some());
    }

    #[test]
    fn the_map_is_bounded() {
        let t0 = Instant::now();
        let mut s = Sessions::new(HOUR);
        let mut first = None;
        for n in 0..=MAX_SESSIONS {
            let mut r = [0u8; 64];
            r[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let issued = s.create(t0 + Duration::from_millis(n as u64), "u", r);
            first.get_or_insert(issued);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        let first = first.expect("first");
        assert!(
            s.touch(t0, &first.token).is_none(),
            "the one closest to expiring made room"
        );
    }
}
