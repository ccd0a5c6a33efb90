//! Sign-in, roles, CSRF, throttling, tokens and the audit log against the
//! real binary (docs/security.md, "Sign-in, roles, sessions and audit").
//!
//! The demo config as shipped (agents 1001 and 1002 with the SIP password
//! "secret", the supervisor "sup" with "supervisor", the shared token
//! `demo-token`) plus one per-person token, `alice`, a supervisor. No
//! phone registers and no call is made: only the HTTP API is exercised.
//!
//! Ports (tests/README.md): engine SIP 15440, API 18710, RTP 22640-22659.

#[path = "support/engine.rs"]
mod engine;

use std::path::Path;
use std::time::Duration;

use engine::{base_config, EnginePorts, Hotline, Signal};
use serde_json::{json, Value};

const PORTS: EnginePorts = EnginePorts {
    sip: 15440,
    api: 18710,
    rtp: (22640, 22659),
};

/// Alice's token: only its SHA-256 is in the config.
const ALICE_TOKEN: &str = "alice-7f3c9a1e-per-person-token";

fn config() -> String {
    let hash = hotline::sip::digest::Algorithm::Sha256.hex(ALICE_TOKEN.as_bytes());
    let mut text = base_config(PORTS);
    text.push_str(&format!(
        "\n[[api.tokens]]\nname = \"alice\"\nrole = \"supervisor\"\nsha256 = \"{hash}\"\n"
    ));
    text
}

// ---- HTTP ---------------------------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", PORTS.api)
}

/// An answer: status, `Set-Cookie` and `Location` headers, body as JSON
/// (or as a string when it is not JSON).
struct Reply {
    status: u16,
    set_cookie: Vec<String>,
    location: Option<String>,
    body: Value,
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("API request");
    let status = r.status().as_u16();
    let set_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        set_cookie,
        location,
        body,
    }
}

/// A signed-in browser: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn login(user: &str, password: &str) -> Reply {
    reply(
        agent()
            .post(&url("/login"))
            .send_json(json!({ "user": user, "password": password })),
    )
}

fn signed_in(user: &str, password: &str) -> Session {
    let r = login(user, password);
    assert_eq!(r.status, 200, "{user} signs in: {}", r.body);
    let set = r.set_cookie.first().expect("a cookie is set").clone();
    let cookie = set.split(';').next().unwrap_or("").trim().to_string();
    Session {
        cookie,
        csrf: r.body["csrf"].as_str().unwrap_or("").to_string(),
    }
}

/// POST with the session's cookie, and its CSRF token when `csrf`.
fn post_as(s: &Session, path: &str, csrf: bool, body: Value) -> Reply {
    let mut req = agent().post(&url(path)).header("Cookie", &s.cookie);
    if csrf {
        req = req.header("X-CSRF-Token", &s.csrf);
    }
    reply(req.send_json(body))
}

fn post_token(token: &str, path: &str, body: Value) -> Reply {
    reply(
        agent()
            .post(&url(path))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(body),
    )
}

fn get_with(path: &str, header: (&str, &str)) -> Reply {
    reply(agent().get(&url(path)).header(header.0, header.1).call())
}

/// Every line of the audit files in `dir`.
fn audit_lines(dir: &Path) -> Vec<Value> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("records folder").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("audit-") && name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(entry.path()).expect("audit file");
            lines.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")),
            );
        }
    }
    lines
}

fn has(lines: &[Value], who: &str, action: &str, target: &str, result: u16) -> bool {
    lines.iter().any(|l| {
        l["who"] == who && l["action"] == action && l["target"] == target && l["result"] == result
    })
}

#[test]
fn sign_in_roles_csrf_throttling_tokens_and_audit() {
    let hotline = Hotline::start(PORTS, &config(), &[]);
    let log = || hotline.log_tail();

    // The sign-in page: both languages, the CJK font stack.
    let page = reply(agent().get(&url("/login")).call());
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap_or("");
    for needle in [
        "登录",
        "Sign in",
        "\"Noto Sans CJK SC\", \"PingFang SC\", \"Microsoft YaHei\"",
    ] {
        assert!(html.contains(needle), "{needle} on the page");
    }

    // Agent 1001 signs in with the SIP password: a session cookie (no
    // Secure on plain-HTTP loopback) and a CSRF token.
    let r = login("1001", "secret");
    assert_eq!(r.status, 200, "{}\n{}", r.body, log());
    assert_eq!(r.body["user"], "1001");
    assert_eq!(r.body["role"], "agent");
    let csrf = r.body["csrf"].as_str().unwrap_or("");
    assert!(
        csrf.len() == 64 && csrf.chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        r.body
    );
    let set = r.set_cookie.first().cloned().unwrap_or_default();
    assert!(set.starts_with("hotline_session="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let a1001 = Session {
        cookie: set.split(';').next().unwrap_or("").to_string(),
        csrf: csrf.to_string(),
    };
    let me = get_with("/api/v1/session", ("Cookie", &a1001.cookie));
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["csrf"], a1001.csrf.as_str());
    assert_eq!(me.body["via"], "session");

    // A wrong password is 401; five of them in the window, and the sixth
    // attempt is refused (429) even with the right password.
    for n in 1..=5 {
        let r = login("1002", "not-the-password");
        assert_eq!(r.status, 401, "attempt {n}: {}", r.body);
        assert!(r.set_cookie.is_empty(), "no session for a wrong password");
    }
    let r = login("1002", "secret");
    assert_eq!(r.status, 429, "{}\n{}", r.body, log());
    assert!(r.set_cookie.is_empty());
    assert!(
        hotline.log_text().contains("too many failures"),
        "a warning in the log"
    );
    // Only that user from this address: 1001 still signs in.
    assert_eq!(login("1001", "secret").status, 200);

    // A change with the cookie needs the CSRF token.
    let r = post_as(&a1001, "/api/v1/agents/1001/break", false, json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("CSRF")));
    let r = post_as(
        &a1001,
        "/api/v1/agents/1001/break",
        true,
        json!({"reason": "lunch"}),
    );
    assert_eq!(r.status, 200, "{}\n{}", r.body, log());
    assert_eq!(r.body["id"], "1001", "{}", r.body);

    // An agent acts for themselves only, and runs no campaign.
    let r = post_as(&a1001, "/api/v1/agents/1002/break", true, json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post_as(
        &a1001,
        "/api/v1/campaigns",
        true,
        json!({"name": "x", "prompt": "greeting", "numbers": ["13800000001"]}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get_with("/api/v1/campaigns", ("Cookie", &a1001.cookie));
    assert_eq!(
        r.status, 403,
        "campaigns are read by supervisors: {}",
        r.body
    );
    // Tasks are read by anyone signed in, created by supervisors.
    let r = get_with("/api/v1/tasks", ("Cookie", &a1001.cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_as(&a1001, "/api/v1/tasks", true, json!({}));
    assert_eq!(r.status, 403, "{}", r.body);

    // The supervisor acts for any agent.
    let sup = signed_in("sup", "supervisor");
    let r = post_as(&sup, "/api/v1/agents/1002/break", true, json!({}));
    assert_eq!(r.status, 200, "{}\n{}", r.body, log());
    let r = get_with("/api/v1/campaigns", ("Cookie", &sup.cookie));
    assert_eq!(r.status, 200, "{}", r.body);

    // Signing in again from a browser ends its old session.
    let first = signed_in("sup", "supervisor");
    let r = reply(
        agent()
            .post(&url("/login"))
            .header("Cookie", &first.cookie)
            .send_json(json!({"user": "sup", "password": "supervisor"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get_with("/api/v1/session", ("Cookie", &first.cookie));
    assert_eq!(r.status, 401, "the old session is gone: {}", r.body);

    // A form sign-in goes on to the page asked for (only on this site).
    let r = reply(agent().post(&url("/login")).send_form([
        ("user", "sup"),
        ("password", "supervisor"),
        ("next", "/wallboard"),
    ]));
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/wallboard"));
    assert!(!r.set_cookie.is_empty());
    let r = reply(agent().post(&url("/login")).send_form([
        ("user", "sup"),
        ("password", "supervisor"),
        ("next", "//evil.example/"),
    ]));
    assert_eq!(r.location.as_deref(), Some("/login"));
    // Another site cannot sign a browser in.
    let r = reply(
        agent()
            .post(&url("/login"))
            .header("Origin", "https://evil.example")
            .send_json(json!({"user": "sup", "password": "supervisor"})),
    );
    assert_eq!(r.status, 403, "{}", r.body);

    // A per-person token with the supervisor role; a wrong one is 401.
    let r = post_token(ALICE_TOKEN, "/api/v1/agents/1002/available", json!({}));
    assert_eq!(r.status, 200, "{}\n{}", r.body, log());
    let r = get_with(
        "/api/v1/session",
        ("Authorization", &format!("Bearer {ALICE_TOKEN}")),
    );
    assert_eq!(
        (r.body["user"].as_str(), r.body["role"].as_str()),
        (Some("alice"), Some("supervisor"))
    );
    let r = post_token("alice-wrong", "/api/v1/agents/1002/available", json!({}));
    assert_eq!(r.status, 401, "{}", r.body);
    // The shared demo token still works, as an admin.
    let r = post_token("demo-token", "/api/v1/agents/1001/available", json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    // And the read-only live view needs nothing.
    assert_eq!(
        reply(agent().get(&url("/api/v1/agents")).call()).status,
        200
    );

    // Signing out needs the CSRF token too; then the cookie is dead.
    let r = post_as(&a1001, "/logout", false, json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post_as(&a1001, "/logout", true, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.set_cookie.iter().any(|c| c.contains("Max-Age=0")));
    let r = get_with("/api/v1/session", ("Cookie", &a1001.cookie));
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post_as(&a1001, "/api/v1/agents/1001/available", true, json!({}));
    assert_eq!(r.status, 401, "{}", r.body);

    // Guesses sent all at once are throttled too: each waits its turn and
    // sees the failures before it (two are checked at a time).
    let guesses: Vec<_> = (0..12)
        .map(|n| std::thread::spawn(move || login("sup", &format!("guess-{n}")).status))
        .collect();
    let mut statuses: Vec<u16> = guesses
        .into_iter()
        .map(|g| g.join().expect("a guess"))
        .collect();
    statuses.sort_unstable();
    let wrong = statuses.iter().filter(|&&s| s == 401).count();
    assert!((5..=6).contains(&wrong), "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 429),
        "{statuses:?}"
    );
    // A session already open goes on.
    let r = post_as(&sup, "/api/v1/agents/1002/available", true, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);

    // SIGHUP: a token added to the config counts once the engine has
    // taken the config; a session open goes on.
    const BOB_TOKEN: &str = "bob-0b5e-another-token";
    let r = post_token(BOB_TOKEN, "/api/v1/agents/1001/available", json!({}));
    assert_eq!(r.status, 401, "{}", r.body);
    let bob = hotline::sip::digest::Algorithm::Sha256.hex(BOB_TOKEN.as_bytes());
    let text = format!(
        "{}\n[[api.tokens]]\nname = \"bob\"\nrole = \"admin\"\nsha256 = \"{bob}\"\n",
        config()
    );
    std::fs::write(hotline.config_path(), text).expect("write the config");
    hotline.signal(Signal::Hup);
    hotline.wait_for_log("configuration reloaded", Duration::from_secs(10));
    // (The accounts are swapped just after that line is logged.)
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let r = loop {
        let r = post_token(BOB_TOKEN, "/api/v1/agents/1001/available", json!({}));
        if r.status != 401 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r.status, 200, "{}\n{}", r.body, log());
    let r = get_with("/api/v1/session", ("Cookie", &sup.cookie));
    assert_eq!(r.status, 200, "{}", r.body);

    // The audit log: who did what to whom, and how it went.
    let lines = audit_lines(&hotline.records_dir());
    let all = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(has(&lines, "1001", "session.login", "1001", 200), "{all}");
    assert!(
        has(&lines, "1002", "session.login_failed", "1002", 401),
        "{all}"
    );
    assert!(
        has(&lines, "1002", "session.login_failed", "1002", 429),
        "{all}"
    );
    assert!(has(&lines, "1001", "agent.status", "1001", 200), "{all}");
    assert!(has(&lines, "1001", "agent.status", "1002", 403), "{all}");
    assert!(has(&lines, "1001", "campaign.create", "", 403), "{all}");
    assert!(has(&lines, "sup", "agent.status", "1002", 200), "{all}");
    assert!(has(&lines, "alice", "agent.status", "1002", 200), "{all}");
    assert!(
        has(&lines, "api.token", "agent.status", "1001", 200),
        "{all}"
    );
    assert!(has(&lines, "1001", "session.logout", "1001", 200), "{all}");
    assert!(has(&lines, "bob", "agent.status", "1001", 200), "{all}");
    let status = lines
        .iter()
        .find(|l| l["who"] == "1001" && l["action"] == "agent.status" && l["result"] == 200)
        .expect("1001's break");
    assert_eq!(status["role"], "agent");
    assert_eq!(status["detail"]["status"], "break");
    assert_eq!(status["detail"]["reason"], "lunch");
    assert!(
        status["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{status}"
    );
    assert!(
        status["at"]
            .as_str()
            .is_some_and(|at| at.len() == 24 && at.ends_with('Z')),
        "RFC 3339 with milliseconds: {status}"
    );
    // No secret is ever written.
    for secret in [
        "secret",
        "not-the-password",
        "guess-",
        ALICE_TOKEN,
        BOB_TOKEN,
        "demo-token",
        &a1001.csrf,
        a1001.cookie.trim_start_matches("hotline_session="),
    ] {
        assert!(!all.contains(secret), "{secret:?} in the audit log:\n{all}");
    }
}
