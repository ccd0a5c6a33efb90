//! `[web]`: who may sign in on the web and with what role, how long a
//! session lasts, and how failed sign-ins are throttled; and
//! `[[api.tokens]]`, bearer tokens per person or system (stored as their
//! SHA-256, never as themselves).
//!
//! Web-only passwords are Argon2id PHC strings (`$argon2id$v=19$m=...`),
//! made with `hotline hash-password`. Agents may sign in with their SIP
//! password instead, checked against their HA1 (the shell does that);
//! an agent's `web_password_hash` wins when set.
//!
//! Only checking a hash against a password is here (pure computation);
//! making one needs a random salt, which the shell draws.

use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::PasswordVerifier;
use argon2::Argon2;
use serde::Deserialize;

/// What a person or system may do, least to most. Agents act on
/// themselves only; supervisors on any agent, campaigns, tasks and calls;
/// admins on everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// At least as much as `needed` (admin > supervisor > agent).
    pub fn at_least(self, needed: Role) -> bool {
        self >= needed
    }
}

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// A session ends this long after its last request (sliding).
    #[serde(default = "default_session_ttl", with = "crate::forms::duration")]
    pub session_ttl: Duration,
    /// Failed sign-ins for one user from one address within
    /// `failure_window` before further attempts are refused for `ban`.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    #[serde(default = "default_failure_window", with = "crate::forms::duration")]
    pub failure_window: Duration,
    #[serde(default = "default_ban", with = "crate::forms::duration")]
    pub ban: Duration,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Default:
    /// on, unless the API listens on loopback (the plain-HTTP demo).
    #[serde(default)]
    pub secure_cookie: Option<bool>,
    /// People who sign in with a web password (supervisors, admins).
    #[serde(default)]
    pub users: Vec<WebUser>,
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_max_failures() -> u32 {
    5
}
fn default_failure_window() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_ban() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_ttl: default_session_ttl(),
            max_failures: default_max_failures(),
            failure_window: default_failure_window(),
            ban: default_ban(),
            secure_cookie: None,
            users: Vec::new(),
        }
    }
}

/// `[[web.users]]`: one person with a web password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUser {
    /// What they type to sign in, and what the audit log names them by.
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// Argon2id PHC string (`hotline hash-password`).
    pub password_hash: String,
}

/// `[[api.tokens]]`: a bearer token of a person or a system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who the token is, in the audit log; an agent-role token acts for
    /// the agent with this id.
    pub name: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
    pub sha256: String,
}

/// Why a password hash in the config is not usable.
pub fn check_password_hash(text: &str) -> Result<(), String> {
    let hash = PasswordHash::new(text).map_err(|e| {
        format!(
            "not a PHC string ({e}); make one with `hotline hash-password` \
             (\"$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>\")"
        )
    })?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "{} is not argon2id; make one with `hotline hash-password`",
            hash.algorithm.as_str()
        ));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("the salt or the hash is missing".into());
    }
    argon2::Params::try_from(&hash).map_err(|e| format!("bad Argon2 parameters: {e}"))?;
    Ok(())
}

/// Whether `password` is the one `phc` (an Argon2id PHC string) was made
/// from. The comparison inside is constant time; a hash that does not
/// parse matches nothing. Costs what the hash's parameters say (tens of
/// milliseconds with the defaults): callers off the engine's path only.
pub fn verify_password(phc: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A web user's id: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn is_user_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c))
}

/// Whether `text` is 64 hex digits (a SHA-256 written out).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "supervisor", hashed by `hotline hash-password` (the demo's).
    const DEMO: &str = crate::config::DEMO_SUPERVISOR_HASH;

    #[test]
    fn a_hash_verifies_its_password_only() {
        assert!(check_password_hash(DEMO).is_ok());
        assert!(verify_password(DEMO, "supervisor"));
        assert!(!verify_password(DEMO, "Supervisor"));
        assert!(!verify_password(DEMO, ""));
        assert!(!verify_password("not a hash", "supervisor"));
    }

    #[test]
    fn only_argon2id_phc_strings_are_taken() {
        let argon2i = DEMO.replacen("$argon2id$", "$argon2i$", 1);
        assert!(check_password_hash(&argon2i)
            .expect_err("argon2i")
            .contains("not argon2id"));
        assert!(check_password_hash("supervisor")
            .expect_err("plain")
            .contains("hash-password"));
        assert!(check_password_hash("$argon2id$v=19$m=19456,t=2,p=1").is_err());
        let bad_params = DEMO.replacen("m=19456", "m=1", 1);
        assert!(check_password_hash(&bad_params).is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.at_least(Role::Supervisor));
        assert!(Role::Supervisor.at_least(Role::Supervisor));
        assert!(!Role::Agent.at_least(Role::Supervisor));
        assert!(Role::Agent.at_least(Role::Agent));
    }

    #[test]
    fn sha256_hex() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }
}
