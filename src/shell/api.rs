//! The HTTP API (axum), on one listener:
//! * sign-in (`/login`, `/logout`, `/api/v1/session`) and who may do
//!   what ([`super::web`]): every change needs a bearer token or a
//!   session (with its CSRF token), a role that allows it, and is written
//!   to the audit log;
//! * agents' status, and log in / log out / break / available (an agent
//!   for themselves, a supervisor or admin for anyone);
//! * campaigns (`api_campaigns`), tasks (`api_tasks`), the knowledge
//!   base (`api_kb`) and the agent's desk (`api_desk`);
//! * the live operations view, read-only and open (no personal data; the
//!   listener is on loopback by default): `/metrics` for Prometheus,
//!   `/api/v1/status` (JSON), `/api/v1/events` (server-sent events) and
//!   `/wallboard` (one self-contained page fed by those events).
//!
//! Requests go to the engine task through the event channel and wait for
//! its answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Role;
use crate::engine::AgentCommand;
use crate::live::prometheus::{self, RtpTotals};
use crate::live::LiveSnapshot;

pub use super::api_requests::{error, ApiRequest, ApiState, CallAction, LiveSources};
use super::media::LiveRtp;
use super::web::{self, Caller, WebAuth};
use super::Event;
use super::{api_campaigns, api_desk, api_kb, api_tasks};

/// The wallboard: one page, its CSS and script inline, no external fetch.
const WALLBOARD: &str = include_str!("wallboard.html");

/// A wallboard hears of a change at most this often...
const PUSH_MIN_INTERVAL: Duration = Duration::from_millis(250);
/// ...and gets a fresh snapshot at least this often, change or not.
const PUSH_HEARTBEAT: Duration = Duration::from_secs(3);

/// `/api/v1/status` and each server-sent event: the snapshot and RTP.
#[derive(Serialize)]
struct StatusBody {
    #[serde(flatten)]
    snapshot: LiveSnapshot,
    rtp: RtpTotals,
}

#[derive(Deserialize, Default)]
struct BreakBody {
    #[serde(default)]
    reason: Option<String>,
}

/// Where the API's requests go, and what it needs besides the engine.
pub struct ApiSetup {
    pub listen: SocketAddr,
    /// Accounts, sessions and the audit log.
    pub web: Arc<WebAuth>,
    pub utc_offset_minutes: i32,
    pub store: Option<super::store::StoreCreator>,
    /// Where call recordings are, for `/api/v1/recordings/{call id}`.
    pub recordings_dir: std::path::PathBuf,
    /// Serve HTTPS with this (`[tls]`), and no plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

pub async fn serve(
    setup: ApiSetup,
    events: mpsc::UnboundedSender<Event>,
    live: LiveSources,
) -> std::io::Result<()> {
    let ApiSetup {
        listen,
        web,
        utc_offset_minutes,
        store,
        recordings_dir,
        tls,
    } = setup;
    let listener = TcpListener::bind(listen).await?;
    let scheme = if tls.is_some() { "HTTPS" } else { "HTTP" };
    info!(%listen, "{scheme} API listening (wallboard at /wallboard, metrics at /metrics)");
    let app = Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{id}/{action}", post(command))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(status_events))
        .route("/metrics", get(metrics))
        .route("/wallboard", get(wallboard))
        .route(
            "/api/v1/campaigns",
            get(api_campaigns::list).post(api_campaigns::create),
        )
        .route("/api/v1/campaigns/{id}", get(api_campaigns::get_one))
        .route(
            "/api/v1/campaigns/{id}/{action}",
            post(api_campaigns::command),
        )
        .route("/api/v1/do-not-call", post(api_campaigns::do_not_call))
        .route(
            "/api/v1/tasks",
            get(api_tasks::list).post(api_tasks::create),
        )
        .route("/api/v1/tasks/{id}", get(api_tasks::get_one))
        .route("/api/v1/tasks/{id}", axum::routing::patch(api_tasks::edit))
        .route("/api/v1/tasks/{id}/outcome", post(api_tasks::outcome))
        .route("/api/v1/tasks/{id}/cancel", post(api_tasks::cancel))
        .route("/api/v1/calls/{id}/{action}", post(call_control))
        .route("/desk", get(api_desk::page))
        .route("/supervisor", get(api_desk::supervisor_page))
        .route("/supervisor/report", get(api_desk::supervisor_report))
        .route("/api/v1/desk", get(api_desk::view))
        .route("/api/v1/desk/calls/{id}/notes", post(api_desk::notes))
        .route("/api/v1/desk/calls/{id}/orders", post(api_desk::order))
        .route(
            "/api/v1/desk/tasks/{id}/call-back",
            post(api_desk::call_back),
        )
        .route("/api/v1/recordings/{id}", get(recording))
        .route(
            "/api/v1/kb",
            get(api_kb::search)
                .post(api_kb::create)
                .layer(axum::extract::DefaultBodyLimit::max(api_kb::MAX_BODY)),
        )
        .route(
            "/api/v1/kb/{id}",
            get(api_kb::get_one)
                .put(api_kb::update)
                .layer(axum::extract::DefaultBodyLimit::max(api_kb::MAX_BODY)),
        )
        .route("/api/v1/kb/{id}/history", get(api_kb::history))
        .merge(web::routes())
        // WAVs and number lists come with campaigns: up to 64 MiB.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(ApiState {
            events,
            web,
            live,
            store,
            utc_offset_minutes,
            recordings_dir: Arc::new(recordings_dir),
        });
    // The peer's address: the audit log's `client`, and the key of the
    // failed sign-in throttle.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    warn!(error = %e, "HTTP API stopped");
                }
            });
        }
        Some(acceptor) => {
            // tap_io: so that axum gives the peer's address (ConnectInfo)
            // for a listener of our own, as it does for a TcpListener.
            let listener = axum::serve::ListenerExt::tap_io(
                super::tls::HttpsListener::new(listener, acceptor)?,
                |_| {},
            );
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    warn!(error = %e, "HTTPS API stopped");
                }
            });
        }
    }
    Ok(())
}

async fn agents(State(state): State<ApiState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if state
        .events
        .send(Event::Api(ApiRequest::Agents(tx)))
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping");
    }
    match rx.await {
        Ok(list) => Json(list).into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping"),
    }
}

/// `POST /api/v1/agents/{id}/{login | logout | break | available}`: an
/// agent for themselves, a supervisor or admin for anyone; audited as
/// `agent.status`.
async fn command(
    State(state): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    caller: Caller,
    body: Option<Json<BreakBody>>,
) -> Response {
    let reason = body.and_then(|Json(b)| b.reason);
    let mut detail = serde_json::json!({ "status": action });
    if let (Some(r), Some(obj)) = (&reason, detail.as_object_mut()) {
        obj.insert("reason".into(), r.clone().into());
    }
    let response = match caller.require_for_agent(&id) {
        Ok(()) => agent_command(&state, id.clone(), &action, reason).await,
        Err(r) => r.into_response(),
    };
    state
        .web
        .audited(&caller, "agent.status", &id, Some(detail), response)
        .await
}

async fn agent_command(
    state: &ApiState,
    id: String,
    action: &str,
    reason: Option<String>,
) -> Response {
    let command = match action {
        "login" => AgentCommand::Login,
        "logout" => AgentCommand::Logout,
        "available" => AgentCommand::Available,
        "break" => AgentCommand::Break {
            reason: reason.unwrap_or_else(|| "break".into()),
        },
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "actions: login, logout, break, available",
            )
        }
    };
    let (tx, rx) = oneshot::channel();
    let request = ApiRequest::Command {
        agent: id,
        command,
        reply: tx,
    };
    if state.events.send(Event::Api(request)).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping");
    }
    match rx.await {
        Ok(Some(agent)) => Json(agent).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such agent"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping"),
    }
}

#[derive(Deserialize, Default)]
struct TransferBody {
    #[serde(default)]
    to: Option<String>,
}

/// A call's recording as a stereo WAV (customer left, agent right), by
/// the call's id from its record: supervisors and admins.
async fn recording(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    if let Err(r) = caller.require(Role::Supervisor) {
        return r.into_response();
    }
    let dir = state.recordings_dir.clone();
    let id = id.trim_end_matches(".wav").to_string();
    let found = tokio::task::spawn_blocking(move || {
        super::call_recordings::find(&dir, &id).map(std::fs::read)
    })
    .await;
    match found {
        Ok(Some(Ok(bytes))) => ([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response(),
        Ok(Some(Err(e))) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read the recording: {e}"),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, "no recording for that call"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping"),
    }
}

/// `POST /api/v1/calls/{id}/hold|resume|transfer` (`{"to": ...}`):
/// supervisors and admins (a person's session or token, or the shared
/// token). Which agent is on a call is the engine's to know, so an agent
/// cannot yet be allowed their own calls only; audited as `call.<action>`.
async fn call_control(
    State(state): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    caller: Caller,
    body: Option<Json<TransferBody>>,
) -> Response {
    let to = body.and_then(|Json(b)| b.to);
    let detail = to.as_ref().map(|to| serde_json::json!({ "to": to }));
    // A supervisor on any call; an agent on the call at their own phone
    // (checked by the engine task).
    let agent = (!caller.role.at_least(Role::Supervisor)).then(|| caller.id.clone());
    let response = control_call(&state, id.clone(), &action, to, agent).await;
    let name = match action.as_str() {
        "hold" | "resume" | "transfer" => format!("call.{action}"),
        _ => "call.unknown".to_string(),
    };
    state
        .web
        .audited(&caller, &name, &id, detail, response)
        .await
}

async fn control_call(
    state: &ApiState,
    id: String,
    action: &str,
    to: Option<String>,
    agent: Option<String>,
) -> Response {
    let action = match action {
        "hold" => CallAction::Hold,
        "resume" => CallAction::Resume,
        "transfer" => match to.filter(|t| !t.trim().is_empty()) {
            Some(to) => CallAction::Transfer { to },
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({"error": "to: an agent, a queue or a number is required", "field": "to"})),
                )
                    .into_response()
            }
        },
        _ => return error(StatusCode::NOT_FOUND, "actions: hold, resume, transfer"),
    };
    let (reply, rx) = oneshot::channel();
    let request = ApiRequest::CallControl {
        call_id: id,
        action,
        agent,
        reply,
    };
    if state.events.send(Event::Api(request)).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping");
    }
    match rx.await {
        Ok(Ok(())) => Json(serde_json::json!({"ok": true})).into_response(),
        Ok(Err((code, message))) => error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::CONFLICT),
            &message,
        ),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping"),
    }
}

/// Asks the engine for the live view; `None` when it is stopping.
async fn snapshot(
    events: &mpsc::UnboundedSender<Event>,
    detail: bool,
    all_nodes: bool,
) -> Option<LiveSnapshot> {
    let (reply, rx) = oneshot::channel();
    events
        .send(Event::Api(ApiRequest::Status {
            detail,
            all_nodes,
            reply,
        }))
        .ok()?;
    rx.await.ok()
}

async fn status(State(state): State<ApiState>) -> Response {
    match snapshot(&state.events, true, true).await {
        Some(snapshot) => Json(StatusBody {
            snapshot,
            rtp: state.live.rtp.totals(),
        })
        .into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping"),
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    match snapshot(&state.events, false, false).await {
        Some(snapshot) => (
            [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
            prometheus::encode_with(
                &snapshot,
                state.live.rtp.totals(),
                state.live.alarms.storage(),
            ),
        )
            .into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping"),
    }
}

async fn wallboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        WALLBOARD,
    )
        .into_response()
}

/// One wallboard's event stream.
struct Subscriber {
    events: mpsc::UnboundedSender<Event>,
    rtp: Arc<LiveRtp>,
    version: watch::Receiver<u64>,
    last: Option<Instant>,
}

/// Server-sent events: a `status` event with the snapshot at once, then
/// whenever the engine's figures change (at most every 250 ms), and every
/// 3 s regardless, so waits and "today" stay fresh. The stream ends when
/// the engine stops.
async fn status_events(
    State(state): State<ApiState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let subscriber = Subscriber {
        events: state.events.clone(),
        rtp: state.live.rtp.clone(),
        version: state.live.version.clone(),
        last: None,
    };
    let stream = futures_util::stream::unfold(subscriber, |mut s| async move {
        if let Some(last) = s.last {
            tokio::select! {
                changed = s.version.changed() => changed.ok()?,
                _ = tokio::time::sleep(PUSH_HEARTBEAT) => {}
            }
            tokio::time::sleep_until(last + PUSH_MIN_INTERVAL).await;
        }
        // Seen before asking, so a change while asking makes another push.
        s.version.borrow_and_update();
        let snapshot = snapshot(&s.events, false, true).await?;
        s.last = Some(Instant::now());
        let body = StatusBody {
            snapshot,
            rtp: s.rtp.totals(),
        };
        let event = SseEvent::default().event("status").json_data(&body).ok()?;
        Some((Ok(event), s))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
