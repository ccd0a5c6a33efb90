//! Who may sign in and how each is checked: web users (Argon2id),
//! agents (their SIP password against their HA1, or their own Argon2id
//! web password), and bearer tokens (their SHA-256 against the
//! configured ones, every one compared in constant time).
//!
//! Built from the config at start and again on SIGHUP; sessions name a
//! user, whose role is looked up here on every request, so a role taken
//! away or an account removed takes effect at once.

use std::collections::HashMap;

use crate::config::web::verify_password;
use crate::config::{Config, Role, DEMO_SUPERVISOR_HASH};
use crate::sip::digest::{constant_time_eq, ha1, Algorithm};

/// Who is acting: a person signed in, or a token's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// A web user's or agent's id, or a token's name.
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// How a person proves who they are.
#[derive(Debug, Clone)]
enum Secret {
    /// An Argon2id PHC string.
    Argon2(String),
    /// An agent's SIP HA1, lowercase hex.
    Ha1 { alg: Algorithm, ha1: String },
    /// No way to sign in (an agent rung through a PBX, with no HA1).
    None,
}

#[derive(Debug, Clone)]
struct Person {
    identity: Identity,
    secret: Secret,
}

#[derive(Debug, Clone)]
struct Token {
    identity: Identity,
    /// Lowercase hex SHA-256 of the token.
    sha256: String,
}

/// The name the shared `[api] token` acts under in the audit log.
pub const SHARED_TOKEN_NAME: &str = "api.token";

/// Everyone who may sign in or present a token.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    people: HashMap<String, Person>,
    tokens: Vec<Token>,
    shared_token: Option<String>,
    realm: String,
}

impl Accounts {
    pub fn from_config(config: &Config) -> Accounts {
        let mut people = HashMap::new();
        for u in &config.web.users {
            people.insert(
                u.id.clone(),
                Person {
                    identity: Identity {
                        id: u.id.clone(),
                        name: u.name.clone(),
                        role: u.role,
                    },
                    secret: Secret::Argon2(u.password_hash.clone()),
                },
            );
        }
        for a in &config.agents {
            let lower = |h: &Option<String>| h.as_ref().map(|h| h.trim().to_ascii_lowercase());
            let secret = match (
                &a.web_password_hash,
                lower(&a.ha1_sha256),
                lower(&a.ha1_md5),
            ) {
                (Some(phc), _, _) => Secret::Argon2(phc.clone()),
                (None, Some(ha1), _) => Secret::Ha1 {
                    alg: Algorithm::Sha256,
                    ha1,
                },
                (None, None, Some(ha1)) => Secret::Ha1 {
                    alg: Algorithm::Md5,
                    ha1,
                },
                (None, None, None) => Secret::None,
            };
            people.insert(
                a.id.clone(),
                Person {
                    identity: Identity {
                        id: a.id.clone(),
                        name: a.name.clone(),
                        role: Role::Agent,
                    },
                    secret,
                },
            );
        }
        let (tokens, shared_token) = match &config.api {
            Some(api) => (
                api.tokens
                    .iter()
                    .map(|t| Token {
                        identity: Identity {
                            id: t.name.clone(),
                            name: t.name.clone(),
                            role: t.role,
                        },
                        sha256: t.sha256.to_ascii_lowercase(),
                    })
                    .collect(),
                api.token.clone(),
            ),
            None => (Vec::new(), None),
        };
        Accounts {
            people,
            tokens,
            shared_token,
            realm: config.registrar.realm.clone(),
        }
    }

    /// Whether `password` is `user`'s. Argon2 costs tens of
    /// milliseconds: call it off the async workers (`spawn_blocking`).
    /// An unknown user costs the same as a known one with a web
    /// password, so the time taken does not tell which names exist.
    pub fn verify_password(&self, user: &str, password: &str) -> Option<Identity> {
        let Some(person) = self.people.get(user) else {
            let _ = verify_password(DEMO_SUPERVISOR_HASH, password);
            return None;
        };
        let ok = match &person.secret {
            Secret::Argon2(phc) => verify_password(phc, password),
            Secret::Ha1 { alg, ha1: stored } => {
                let given = ha1(*alg, user, &self.realm, password);
                constant_time_eq(given.as_bytes(), stored.as_bytes())
            }
            Secret::None => {
                let _ = verify_password(DEMO_SUPERVISOR_HASH, password);
                false
            }
        };
        ok.then(|| person.identity.clone())
    }

    /// The owner of a bearer token. The token is hashed and compared
    /// with every configured hash (and the shared token), each in
    /// constant time, with no early exit.
    pub fn verify_token(&self, presented: &str) -> Option<Identity> {
        let presented = presented.trim();
        if presented.is_empty() {
            return None;
        }
        let hash = Algorithm::Sha256.hex(presented.as_bytes());
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(hash.as_bytes(), t.sha256.as_bytes()) && found.is_none() {
                found = Some(t.identity.clone());
            }
        }
        if let Some(shared) = &self.shared_token {
            if constant_time_eq(presented.as_bytes(), shared.as_bytes()) && found.is_none() {
                found = Some(Identity {
                    id: SHARED_TOKEN_NAME.into(),
                    name: "the shared API token".into(),
                    role: Role::Admin,
                });
            }
        }
        found
    }

    /// A signed-in person as they are now (their role may have changed
    /// on a reload); `None` once their account is gone.
    pub fn person(&self, id: &str) -> Option<Identity> {
        self.people.get(id).map(|p| p.identity.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_TOML, DEMO_SUPERVISOR_PASSWORD, DEMO_TOKEN};

    fn accounts(extra: &str) -> Accounts {
        let text = format!("{DEFAULT_TOML}\n{extra}");
        let config =
            Config::parse(&text, "test config", std::path::Path::new(".")).expect("config");
        Accounts::from_config(&config)
    }

    #[test]
    fn agents_sign_in_with_their_sip_password() {
        let a = accounts("");
        let who = a.verify_password("1001", "secret").expect("1001");
        assert_eq!((who.id.as_str(), who.role), ("1001", Role::Agent));
        assert!(a.verify_password("1001", "Secret").is_none());
        assert!(a.verify_password("1002", "secret").is_some());
        assert!(
            a.verify_password("1003", "secret").is_none(),
            "no such agent"
        );
    }

    #[test]
    fn the_demo_supervisor_signs_in_with_a_web_password() {
        let a = accounts("");
        let who = a
            .verify_password("sup", DEMO_SUPERVISOR_PASSWORD)
            .expect("sup");
        assert_eq!(who.role, Role::Supervisor);
        assert!(a.verify_password("sup", "secret").is_none());
        assert_eq!(a.person("sup").map(|p| p.role), Some(Role::Supervisor));
        assert!(a.person("nobody").is_none());
    }

    #[test]
    fn an_agent_s_web_password_wins_over_the_sip_one() {
        let text = DEFAULT_TOML.replacen(
            "ha1_md5 = \"9825b4c9c75afc481a419b95f9c54647\"",
            &format!(
                "ha1_md5 = \"9825b4c9c75afc481a419b95f9c54647\"\nweb_password_hash = \"{}\"",
                DEMO_SUPERVISOR_HASH
            ),
            1,
        );
        assert_ne!(text, DEFAULT_TOML);
        let config = Config::parse(&text, "t", std::path::Path::new(".")).expect("config");
        let a = Accounts::from_config(&config);
        assert!(a.verify_password("1001", "secret").is_none());
        assert!(a
            .verify_password("1001", DEMO_SUPERVISOR_PASSWORD)
            .is_some());
        // MD5 only: the other agent still signs in with the SIP password.
        assert!(a.verify_password("1002", "secret").is_some());
    }

    #[test]
    fn tokens_by_hash_and_the_shared_one() {
        let hash = Algorithm::Sha256.hex(b"tok-alice");
        let a = accounts(&format!(
            "[[api.tokens]]\nname = \"alice\"\nrole = \"supervisor\"\nsha256 = \"{}\"\n\
             [[api.tokens]]\nname = \"crm\"\nrole = \"agent\"\nsha256 = \"{}\"\n",
            hash.to_uppercase(),
            Algorithm::Sha256.hex(b"tok-crm"),
        ));
        let alice = a.verify_token("tok-alice").expect("alice");
        assert_eq!((alice.id.as_str(), alice.role), ("alice", Role::Supervisor));
        assert_eq!(a.verify_token("tok-crm").map(|i| i.role), Some(Role::Agent));
        assert!(a.verify_token("tok-alic").is_none());
        assert!(a.verify_token(&hash).is_none(), "the hash is not the token");
        assert!(a.verify_token("").is_none());
        let shared = a.verify_token(DEMO_TOKEN).expect("shared");
        assert_eq!(
            (shared.id.as_str(), shared.role),
            (SHARED_TOKEN_NAME, Role::Admin)
        );
    }
}
