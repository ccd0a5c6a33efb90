//! Sign-in, roles, sessions and the audit log, for the HTTP API and the
//! web pages on its listener (docs/security.md, "Sign-in, roles,
//! sessions and audit").
//!
//! - `GET /login`: the sign-in page; `POST /login` (JSON or a form:
//!   `user`, `password`) starts a session: a cookie, and a CSRF token in
//!   the answer; `POST /logout` ends it; `GET /api/v1/session` says who is
//!   signed in (and the CSRF token again).
//! - [`Caller`], an axum extractor: who is calling and their role, from a
//!   bearer token (`Authorization: Bearer ...`) or the session cookie. A
//!   request with the cookie and a method other than GET/HEAD/OPTIONS
//!   must carry the session's CSRF token in `X-CSRF-Token` (403
//!   otherwise); one with a bearer token needs none. Handlers then ask
//!   [`Caller::require`] or [`Caller::require_for_agent`].
//! - [`WebAuth::audited`]: writes a change to the audit log
//!   ([`audit`]) and hands the answer back.
//!
//! Failed sign-ins are throttled per user and client address
//! ([`throttle`]); passwords are checked on the blocking pool, two at a
//! time at most, so sign-in attempts cannot take the machine's cores.

pub mod audit;
pub mod auth;
mod login;
pub mod session;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::{Config, Role};
use crate::sip::digest::constant_time_eq;

use self::audit::{AuditEvent, AuditLog};
use self::auth::{Accounts, Identity};
use self::session::Sessions;
use self::throttle::{Throttle, ThrottleSettings};

pub use self::login::routes;

/// The session cookie's name over plain HTTP (the loopback demo)...
pub const COOKIE: &str = "hotline_session";
/// ...and with `Secure`: the `__Host-` prefix makes browsers refuse it
/// unless it is `Secure`, has `Path=/` and no `Domain`.
pub const SECURE_COOKIE: &str = "__Host-hotline_session";

/// The header a session's changes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Password checks running at once (Argon2 takes a core each).
const CONCURRENT_CHECKS: usize = 2;

/// Everything sign-in needs, shared by the API's handlers.
#[derive(Debug)]
pub struct WebAuth {
    accounts: RwLock<Arc<Accounts>>,
    sessions: Mutex<Sessions>,
    throttle: Mutex<Throttle>,
    audit: Arc<AuditLog>,
    secure_cookie: bool,
    checks: Semaphore,
}

impl WebAuth {
    /// From the config: its users, agents and tokens, `[web]`'s settings,
    /// and the audit log in `cdr.dir`.
    pub fn from_config(config: &Config) -> Arc<WebAuth> {
        let web = &config.web;
        Arc::new(WebAuth {
            accounts: RwLock::new(Arc::new(Accounts::from_config(config))),
            sessions: Mutex::new(Sessions::new(web.session_ttl)),
            throttle: Mutex::new(Throttle::new(ThrottleSettings {
                max_failures: web.max_failures,
                failure_window: web.failure_window,
                ban: web.ban,
            })),
            audit: AuditLog::new(config.cdr_dir()),
            secure_cookie: config.secure_cookie(),
            checks: Semaphore::new(CONCURRENT_CHECKS),
        })
    }

    /// The accounts now.
    pub fn accounts(&self) -> Arc<Accounts> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGHUP's accounts: new users and tokens count at once; a session
    /// whose user is gone ends at its next request, and one whose role
    /// changed acts with the new role.
    pub fn set_accounts(&self, accounts: Accounts) {
        *self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(accounts);
    }

    pub fn audit_log(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookie {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    /// Who is calling: a bearer token's owner, or the session's user
    /// (checking the CSRF token on a change). 401 with neither, or with
    /// a wrong token or an unknown or expired session; 403 for a change
    /// without the session's CSRF token.
    pub fn caller(&self, parts: &Parts) -> Result<Caller, Refusal> {
        let client = client_addr(&parts.extensions);
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            return match self.accounts().verify_token(token) {
                Some(who) => Ok(Caller::new(who, Via::Token, client)),
                None => Err(Refusal::NotSignedIn("a valid bearer token is required")),
            };
        }
        let Some((who, csrf)) = self.session_of(&parts.headers) else {
            return Err(Refusal::NotSignedIn(
                "sign in (POST /login) or give a bearer token",
            ));
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let given = parts
                .headers
                .get(CSRF_HEADER)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !constant_time_eq(given, csrf.as_bytes()) {
                return Err(Refusal::NoCsrfToken);
            }
        }
        Ok(Caller::new(who, Via::Session { csrf }, client))
    }

    /// The signed-in person of the request's cookie and the session's
    /// CSRF token; the session's expiry slides.
    fn session_of(&self, headers: &HeaderMap) -> Option<(Identity, String)> {
        let token = cookie(headers, self.cookie_name())?;
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let session = sessions.touch(now, &token)?;
        match self.accounts().person(&session.user) {
            Some(who) => Some((who, session.csrf)),
            None => {
                sessions.remove(&token);
                None
            }
        }
    }

    /// Writes one line to the audit log, and waits until it is on disk.
    pub async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        detail: Option<Value>,
        status: StatusCode,
    ) {
        self.audit
            .record(AuditEvent {
                who: caller.id.clone(),
                role: Some(caller.role),
                action: action.to_string(),
                target: target.to_string(),
                result: status.as_u16(),
                client: caller.client,
                detail,
            })
            .await;
    }

    /// [`audit`](Self::audit) with `response`'s status, then `response`:
    /// `return web.audited(&caller, "task.cancel", &id, None, response).await`.
    pub async fn audited(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        detail: Option<Value>,
        response: Response,
    ) -> Response {
        self.audit(caller, action, target, detail, response.status())
            .await;
        response
    }

    fn set_cookie(&self, token: &str) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.cookie_name()
        )
    }

    fn clear_cookie(&self) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            self.cookie_name()
        )
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The session cookie; changes carry this CSRF token.
    Session { csrf: String },
    /// A bearer token (per person or system, or the shared `[api] token`).
    Token,
}

/// Who is calling, from a bearer token or the session cookie; an axum
/// extractor for any state `Arc<WebAuth>` comes from. Rejects with 401
/// (not signed in) or 403 (a change without the CSRF token) before the
/// handler runs.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The web user's or agent's id, or the token's name.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub via: Via,
    /// The client's address (the TCP peer: a reverse proxy's, behind one).
    pub client: Option<SocketAddr>,
}

impl Caller {
    fn new(who: Identity, via: Via, client: Option<SocketAddr>) -> Caller {
        Caller {
            id: who.id,
            name: who.name,
            role: who.role,
            via,
            client,
        }
    }

    /// At least `role` (admin > supervisor > agent), else 403.
    pub fn require(&self, role: Role) -> Result<(), Refusal> {
        if self.role.at_least(role) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "{} is {}: this needs {} or above",
                self.id,
                self.role.as_str(),
                role.as_str()
            )))
        }
    }

    /// Whether the caller may act for agent `agent`: the agent themself,
    /// or a supervisor or admin.
    pub fn may_act_for_agent(&self, agent: &str) -> bool {
        self.role.at_least(Role::Supervisor) || self.id == agent
    }

    /// [`may_act_for_agent`](Self::may_act_for_agent), else 403.
    pub fn require_for_agent(&self, agent: &str) -> Result<(), Refusal> {
        if self.may_act_for_agent(agent) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "{} is {}: an agent acts only for themselves; {agent} needs a supervisor",
                self.id,
                self.role.as_str()
            )))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<WebAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Refusal> {
        Arc::<WebAuth>::from_ref(state).caller(parts)
    }
}

/// Why a request may not go on: answered `{"error": ...}` with 401 or 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No valid bearer token or session: 401.
    #[error("{0}")]
    NotSignedIn(&'static str),
    /// A change made with the session cookie without its CSRF token: 403.
    #[error(
        "a change made with the session cookie needs the session's CSRF token \
         in the X-CSRF-Token header (GET /api/v1/session gives it)"
    )]
    NoCsrfToken,
    /// Signed in, but the role does not allow it: 403.
    #[error("{0}")]
    Forbidden(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NotSignedIn(_) => StatusCode::UNAUTHORIZED,
            Refusal::NoCsrfToken | Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotSignedIn(why) => unauthorized(why),
            other => crate::shell::api::error(other.status(), &other.to_string()),
        }
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = crate::shell::api::error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn forbidden(message: &str) -> Response {
    crate::shell::api::error(StatusCode::FORBIDDEN, message)
}

/// The TCP peer, when the listener was served with connect info.
fn client_addr(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}

/// A cookie's value from the `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Request headers from (name, value) pairs (also for login's tests).
    pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[
            ("cookie", "a=1; hotline_session=abc; b=2"),
            ("cookie", "c=3"),
        ]);
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, SECURE_COOKIE), None);
        assert_eq!(
            cookie(&headers(&[("cookie", "hotline_session=")]), COOKIE),
            None
        );
    }

    fn caller(id: &str, role: Role) -> Caller {
        Caller {
            id: id.into(),
            name: String::new(),
            role,
            via: Via::Token,
            client: None,
        }
    }

    #[test]
    fn agents_act_for_themselves_supervisors_for_anyone() {
        let agent = caller("1001", Role::Agent);
        assert!(agent.require_for_agent("1001").is_ok());
        let refused = agent.require_for_agent("1002").expect_err("not another");
        assert_eq!(refused.into_response().status(), StatusCode::FORBIDDEN);
        assert!(agent.require(Role::Supervisor).is_err());
        let sup = caller("sup", Role::Supervisor);
        assert!(sup.require_for_agent("1002").is_ok());
        assert!(sup.require(Role::Supervisor).is_ok());
        assert!(sup.require(Role::Admin).is_err());
        assert!(caller("api.token", Role::Admin)
            .require(Role::Admin)
            .is_ok());
    }

    fn web() -> Arc<WebAuth> {
        WebAuth::from_config(&Config::embedded())
    }

    fn parts(method: Method, pairs: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().method(method).uri("/x");
        for (k, v) in pairs {
            builder = builder.header(*k, *v);
        }
        let (parts, ()) = builder.body(()).expect("request").into_parts();
        parts
    }

    #[test]
    fn a_session_s_changes_need_its_csrf_token_a_token_s_do_not() {
        let web = web();
        assert!(!web.secure_cookie, "the demo's API is on loopback");
        let issued = web.sessions.lock().expect("lock").create(
            Instant::now(),
            "1001",
            std::array::from_fn(|i| i as u8),
        );
        let cookie = format!("{COOKIE}={}", issued.token);
        let who = web
            .caller(&parts(Method::GET, &[("cookie", &cookie)]))
            .expect("a read needs no CSRF token");
        assert_eq!((who.id.as_str(), who.role), ("1001", Role::Agent));
        let refused = web
            .caller(&parts(Method::POST, &[("cookie", &cookie)]))
            .expect_err("a change without it");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let refused = web
            .caller(&parts(
                Method::POST,
                &[("cookie", &cookie), (CSRF_HEADER, &issued.token)],
            ))
            .expect_err("the cookie is not the CSRF token");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(web
            .caller(&parts(
                Method::POST,
                &[("cookie", &cookie), (CSRF_HEADER, &issued.csrf)]
            ))
            .is_ok());
        let by_token = web
            .caller(&parts(
                Method::POST,
                &[("authorization", "Bearer demo-token")],
            ))
            .expect("no CSRF token with a bearer token");
        assert_eq!((by_token.role, by_token.via), (Role::Admin, Via::Token));
        for bad in [
            vec![("authorization", "Bearer wrong")],
            vec![("authorization", "Basic ZGVtbzpkZW1v")],
            vec![("cookie", "hotline_session=feedface")],
            vec![],
        ] {
            let refused = web
                .caller(&parts(Method::GET, &bad))
                .expect_err("not signed in");
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        }
    }

    #[test]
    fn a_session_whose_user_is_gone_ends() {
        let web = web();
        let issued = web
            .sessions
            .lock()
            .expect("lock")
            .create(Instant::now(), "sup", [9u8; 64]);
        let cookie = format!("{COOKIE}={}", issued.token);
        assert!(web
            .caller(&parts(Method::GET, &[("cookie", &cookie)]))
            .is_ok());
        web.set_accounts(Accounts::default());
        assert!(web
            .caller(&parts(Method::GET, &[("cookie", &cookie)]))
            .is_err());
        assert!(web.sessions.lock().expect("lock").is_empty());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_off_loopback() {
        let web = web();
        let c = web.set_cookie("abc");
        assert_eq!(c, "hotline_session=abc; Path=/; HttpOnly; SameSite=Strict");
        let secure = WebAuth {
            secure_cookie: true,
            ..Arc::try_unwrap(WebAuth::from_config(&Config::embedded())).expect("sole owner")
        };
        assert_eq!(
            secure.set_cookie("abc"),
            "__Host-hotline_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
