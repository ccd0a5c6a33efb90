//! The sign-in routes: `GET /login` (the page), `POST /login`,
//! `POST /logout` and `GET /api/v1/session`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::sip::digest::constant_time_eq;

use super::audit::AuditEvent;
use super::throttle::Failure;
use super::{client_addr, cookie, forbidden, unauthorized, Caller, Via, WebAuth, CSRF_HEADER};

/// The sign-in page: its CSS and script inline, no external fetch.
const LOGIN_PAGE: &str = include_str!("login.html");

/// Longest user name and password taken.
const MAX_USER: usize = 64;
const MAX_PASSWORD: usize = 1024;

/// A browser's request from another site (its `Origin` names another
/// host, or `Sec-Fetch-Site` says cross-site): refused at sign-in and
/// sign-out, so no other site can sign a browser in or out.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return true;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => {
            let authority = origin
                .split_once("://")
                .map_or(origin, |(_, rest)| rest)
                .trim_end_matches('/');
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// A form post (the page without script), not JSON.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
}

/// A local path to go to after signing in (`/desk`), never another site.
fn local_path(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.starts_with("/\\")
            && !n.chars().any(char::is_control)
    })
}

/// `303 See Other` to `location`: where a form post goes next.
fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

// ---- the routes ----------------------------------------------------------------

/// `/login`, `/logout` and `/api/v1/session`, for any router whose state
/// gives `Arc<WebAuth>`.
pub fn routes<S>() -> Router<S>
where
    Arc<WebAuth>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/api/v1/session", get(session))
}

async fn login_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        LOGIN_PAGE,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /login`.
async fn login(State(web): State<Arc<WebAuth>>, request: Request) -> Response {
    let client = client_addr(request.extensions());
    let form = is_form(request.headers());
    if cross_site(request.headers()) {
        return forbidden("sign in from this site's own page");
    }
    // A browser signing in again gets a new session; its old one ends.
    let old_session = cookie(request.headers(), web.cookie_name());
    let body = if form {
        Form::<LoginBody>::from_request(request, &())
            .await
            .map(|Form(b)| b)
            .map_err(|e| e.body_text())
    } else {
        Json::<LoginBody>::from_request(request, &())
            .await
            .map(|Json(b)| b)
            .map_err(|e| e.body_text())
    };
    let body = match body {
        Ok(b) => b,
        Err(why) => {
            return crate::shell::api::error(
                StatusCode::BAD_REQUEST,
                &format!("JSON or a form with user and password is expected ({why})"),
            )
        }
    };
    if body.user.is_empty() || body.user.chars().count() > MAX_USER {
        return crate::shell::api::error(StatusCode::BAD_REQUEST, "user: 1 to 64 characters");
    }
    if body.password.is_empty() || body.password.len() > MAX_PASSWORD {
        return crate::shell::api::error(StatusCode::BAD_REQUEST, "password: 1 to 1024 bytes");
    }
    let next = local_path(body.next.as_deref()).map(str::to_string);
    let ip = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.ip());
    let failed = |result: StatusCode, reason: &str| AuditEvent {
        who: body.user.clone(),
        role: None,
        action: "session.login_failed".into(),
        target: body.user.clone(),
        result: result.as_u16(),
        client,
        detail: Some(json!({ "reason": reason })),
    };

    // Refused at once while banned...
    if let Err(left) = web.banned(&body.user, ip) {
        return throttled(
            &web,
            failed(StatusCode::TOO_MANY_REQUESTS, "throttled"),
            form,
            left,
        )
        .await;
    }
    // ...and checked again once it is this attempt's turn: attempts sent
    // all at once wait here, and each sees the failures before it.
    let Ok(permit) = web.checks.acquire().await else {
        return crate::shell::api::error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    };
    if let Err(left) = web.banned(&body.user, ip) {
        drop(permit);
        return throttled(
            &web,
            failed(StatusCode::TOO_MANY_REQUESTS, "throttled"),
            form,
            left,
        )
        .await;
    }
    let accounts = web.accounts();
    let (user, password) = (body.user.clone(), body.password.clone());
    let who = tokio::task::spawn_blocking(move || accounts.verify_password(&user, &password))
        .await
        .ok()
        .flatten();
    let failure = {
        let mut throttle = web.throttle.lock().unwrap_or_else(PoisonError::into_inner);
        match &who {
            Some(_) => {
                throttle.succeeded(&body.user, ip);
                None
            }
            None => Some((
                throttle.failed(Instant::now(), &body.user, ip),
                throttle.settings(),
            )),
        }
    };
    drop(permit);

    let Some(who) = who else {
        if let Some((Failure::Banned { .. }, settings)) = failure {
            warn!(
                user = %body.user,
                client = %ip,
                failures = settings.max_failures,
                ban_secs = settings.ban.as_secs(),
                "web sign-in: too many failures; this user is refused from this address"
            );
        }
        web.audit
            .record(failed(StatusCode::UNAUTHORIZED, "wrong user or password"))
            .await;
        if form {
            return see_other("/login?error=wrong");
        }
        return unauthorized("wrong user or password");
    };

    let mut random = [0u8; 64];
    if getrandom::fill(&mut random).is_err() {
        return crate::shell::api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness for a session; try again",
        );
    }
    let issued = {
        let mut sessions = web.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = &old_session {
            sessions.remove(old);
        }
        sessions.create(Instant::now(), &who.id, random)
    };
    info!(user = %who.id, role = who.role.as_str(), client = %ip, "web sign-in");
    let caller = Caller::new(
        who,
        Via::Session {
            csrf: issued.csrf.clone(),
        },
        client,
    );
    let mut response = if form {
        see_other(next.as_deref().unwrap_or("/login"))
    } else {
        Json(session_json(&caller, web.sessions_ttl_secs())).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&web.set_cookie(&issued.token)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    web.audit(&caller, "session.login", &caller.id, None, StatusCode::OK)
        .await;
    response
}

/// A sign-in refused while its user is banned from its address: audited,
/// and answered 429 with `Retry-After` (a form: back to the page).
async fn throttled(web: &WebAuth, event: AuditEvent, form: bool, left: Duration) -> Response {
    web.audit.record(event).await;
    if form {
        return see_other("/login?error=throttled");
    }
    let mut r = crate::shell::api::error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed sign-ins for this user from this address; try again later",
    );
    if let Ok(v) = HeaderValue::from_str(&left.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

impl WebAuth {
    /// `Err(time left)` while `user` is refused from `ip`.
    fn banned(&self, user: &str, ip: IpAddr) -> Result<(), Duration> {
        self.throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(Instant::now(), user, ip)
    }

    fn sessions_ttl_secs(&self) -> u64 {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ttl()
            .as_secs()
    }
}

/// What `POST /login` and `GET /api/v1/session` answer.
fn session_json(caller: &Caller, ttl_secs: u64) -> Value {
    let mut v = json!({
        "user": caller.id,
        "name": caller.name,
        "role": caller.role.as_str(),
    });
    if let Some(obj) = v.as_object_mut() {
        match &caller.via {
            Via::Session { csrf } => {
                obj.insert("via".into(), "session".into());
                obj.insert("csrf".into(), csrf.clone().into());
                obj.insert("idle_timeout_secs".into(), ttl_secs.into());
            }
            Via::Token => {
                obj.insert("via".into(), "token".into());
            }
        }
    }
    v
}

/// `GET /api/v1/session`: who is signed in (or whose token this is), with
/// the session's CSRF token.
async fn session(State(web): State<Arc<WebAuth>>, caller: Caller) -> Response {
    let mut r = Json(session_json(&caller, web.sessions_ttl_secs())).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /logout`, with the CSRF token in `X-CSRF-Token` or a `csrf`
/// form field.
async fn logout(State(web): State<Arc<WebAuth>>, request: Request) -> Response {
    let client = client_addr(request.extensions());
    let form = is_form(request.headers());
    if cross_site(request.headers()) {
        return forbidden("sign out from this site's own page");
    }
    let token = cookie(request.headers(), web.cookie_name());
    let session = web.session_of(request.headers());
    let header_csrf = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let given = match header_csrf {
        Some(c) => c,
        None if form => Form::<LogoutForm>::from_request(request, &())
            .await
            .map(|Form(f)| f.csrf)
            .unwrap_or_default(),
        None => String::new(),
    };
    let (Some((who, csrf)), Some(token)) = (session, token) else {
        let mut r = unauthorized("not signed in");
        if let Ok(v) = HeaderValue::from_str(&web.clear_cookie()) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        return r;
    };
    let caller = Caller::new(who, Via::Session { csrf: csrf.clone() }, client);
    if !constant_time_eq(given.as_bytes(), csrf.as_bytes()) {
        let r =
            forbidden("signing out needs the session's CSRF token (X-CSRF-Token or a csrf field)");
        return web
            .audited(&caller, "session.logout", &caller.id, None, r)
            .await;
    }
    web.sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&token);
    let mut r = if form {
        see_other("/login")
    } else {
        Json(json!({ "ok": true })).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&web.clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    web.audit(&caller, "session.logout", &caller.id, None, StatusCode::OK)
        .await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::web::tests::headers;

    #[test]
    fn cross_site_requests_are_told_apart() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8088")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8088"),
            ("origin", "http://127.0.0.1:8088")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8088"),
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn only_local_paths_to_go_to_after_sign_in() {
        assert_eq!(local_path(Some("/desk")), Some("/desk"));
        assert_eq!(local_path(Some("//evil.example")), None);
        assert_eq!(local_path(Some("/\\evil.example")), None);
        assert_eq!(local_path(Some("https://evil.example")), None);
        assert_eq!(local_path(None), None);
    }
}
