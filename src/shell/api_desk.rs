//! The agent's desk over HTTP: `GET /desk` (the page), and for the
//! signed-in agent `GET /api/v1/desk` (status, the call, the tasks),
//! `POST /api/v1/desk/calls/{id}/notes` (`{"business_type", "summary"}`),
//! `POST /api/v1/desk/calls/{id}/orders` (`{"kind": "repair" |
//! "complaint", "note", "due_hours", "customer_name", "address",
//! "fault", "fault_detail", "subject"}`, answered `201` once the task is
//! durable) and `POST /api/v1/desk/tasks/{id}/call-back`. Every input is
//! checked here or by the engine, and a refusal names the field.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::engine::{DeskError, DeskView, Engine, OrderKind};
use crate::tasks::order::{self, WorkOrder};
use crate::tasks::{Task, TaskId};

use super::api_requests::{error, ApiRequest, ApiState, TaskCreateError};
use super::api_tasks::PendingTasks;
use super::web::{Caller, Refusal};
use super::Event;
use crate::config::Role;

/// The desk page: one self-contained file.
const DESK: &str = include_str!("desk.html");
/// The supervisor's page, likewise.
const SUPERVISOR: &str = include_str!("supervisor.html");

/// Longest a work order may be given to be due.
const MAX_DUE_HOURS: u64 = 90 * 24;

/// What the desk asks the engine, for one agent.
pub enum DeskRequest {
    View {
        agent: String,
        reply: oneshot::Sender<Option<DeskView>>,
    },
    Notes {
        agent: String,
        call_id: String,
        business: Option<String>,
        summary: String,
        reply: oneshot::Sender<Result<(), DeskError>>,
    },
    Order {
        agent: String,
        call_id: String,
        order: Box<WorkOrder>,
        due: Option<Duration>,
        note: String,
        reply: oneshot::Sender<Result<Task, TaskCreateError>>,
        refused: oneshot::Sender<DeskError>,
    },
    CallBack {
        agent: String,
        task: TaskId,
        reply: oneshot::Sender<Result<(), DeskError>>,
    },
}

pub async fn page() -> Html<&'static str> {
    Html(DESK)
}

/// Supervisors and admins only; anyone else signed in is refused, and
/// someone not signed in is sent to sign in.
pub async fn supervisor_page(caller: Result<Caller, Refusal>) -> Response {
    match caller {
        Ok(c) => match c.require(Role::Supervisor) {
            Ok(()) => Html(SUPERVISOR).into_response(),
            Err(r) => r.into_response(),
        },
        Err(_) => axum::response::Redirect::to("/login?next=/supervisor").into_response(),
    }
}

fn bad(field: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": format!("{field}: {message}"), "field": field })),
    )
        .into_response()
}

fn refused(e: DeskError) -> Response {
    match e {
        DeskError::Invalid(f) => bad(&f.field, &f.message),
        DeskError::UnknownCall(_) | DeskError::UnknownTask(_) | DeskError::UnknownAgent(_) => {
            error(StatusCode::NOT_FOUND, &e.to_string())
        }
        DeskError::NotYourCall { .. } => error(StatusCode::FORBIDDEN, &e.to_string()),
        DeskError::TaskBusy { .. } | DeskError::AgentNotReady(_) => {
            error(StatusCode::CONFLICT, &e.to_string())
        }
    }
}

fn stopping() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping")
}

async fn ask<T>(
    state: &ApiState,
    make: impl FnOnce(oneshot::Sender<T>) -> DeskRequest,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    state
        .events
        .send(Event::Api(ApiRequest::Desk(make(tx))))
        .ok()?;
    rx.await.ok()
}

/// A string field of a JSON body, if present.
fn text<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, Box<Response>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(Box::new(bad(field, "expected a string"))),
    }
}

pub async fn view(State(state): State<ApiState>, caller: Caller) -> Response {
    let agent = caller.id.clone();
    match ask(&state, |reply| DeskRequest::View { agent, reply }).await {
        Some(Some(view)) => Json(view).into_response(),
        Some(None) => error(StatusCode::NOT_FOUND, "not an agent"),
        None => stopping(),
    }
}

pub async fn notes(
    State(state): State<ApiState>,
    Path(call_id): Path<String>,
    caller: Caller,
    body: Option<Json<Value>>,
) -> Response {
    let agent = caller.id.clone();
    let target = call_id.clone();
    let response = notes_for(&state, agent, call_id, body).await;
    state
        .web
        .audited(&caller, "desk.notes", &target, None, response)
        .await
}

async fn notes_for(
    state: &ApiState,
    agent: String,
    call_id: String,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(body)) = body else {
        return bad("body", "expected a JSON object");
    };
    let business = match text(&body, "business_type") {
        Ok(b) => b.filter(|b| !b.is_empty()).map(str::to_string),
        Err(r) => return *r,
    };
    let summary = match text(&body, "summary") {
        Ok(s) => s.unwrap_or_default().to_string(),
        Err(r) => return *r,
    };
    let result = ask(state, |reply| DeskRequest::Notes {
        agent,
        call_id,
        business,
        summary,
        reply,
    })
    .await;
    match result {
        Some(Ok(())) => Json(json!({ "saved": true })).into_response(),
        Some(Err(e)) => refused(e),
        None => stopping(),
    }
}

pub async fn order(
    State(state): State<ApiState>,
    Path(call_id): Path<String>,
    caller: Caller,
    body: Option<Json<Value>>,
) -> Response {
    let agent = caller.id.clone();
    let target = call_id.clone();
    let response = order_for(&state, agent, call_id, body).await;
    state
        .web
        .audited(&caller, "desk.order", &target, None, response)
        .await
}

async fn order_for(
    state: &ApiState,
    agent: String,
    call_id: String,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(body)) = body else {
        return bad("body", "expected a JSON object");
    };
    let Some(fields) = body.as_object() else {
        return bad("body", "expected a JSON object");
    };
    if let Err(e) = order::refuse_unknown(fields, &["kind", "note", "due_hours"], "") {
        return bad(&e.field, &e.message);
    }
    let kind = match text(&body, "kind") {
        Ok(Some(k)) => match OrderKind::parse(k) {
            Some(kind) => kind,
            None => return bad("kind", "expected \"repair\" or \"complaint\""),
        },
        Ok(None) => return bad("kind", "required"),
        Err(r) => return *r,
    };
    let order = match WorkOrder::parse(kind, fields, "") {
        Ok(o) => Box::new(o),
        Err(e) => return bad(&e.field, &e.message),
    };
    let note = match text(&body, "note") {
        Ok(n) => n.unwrap_or_default().to_string(),
        Err(r) => return *r,
    };
    let due = match body.get("due_hours") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|h| (1..=MAX_DUE_HOURS).contains(h)) {
            Some(h) => Some(Duration::from_secs(h * 3600)),
            None => {
                return bad(
                    "due_hours",
                    &format!("expected a whole number of hours from 1 to {MAX_DUE_HOURS}"),
                )
            }
        },
    };
    let (refused_tx, refused_rx) = oneshot::channel();
    let result = ask(state, |reply| DeskRequest::Order {
        agent,
        call_id,
        order,
        due,
        note,
        reply,
        refused: refused_tx,
    })
    .await;
    match result {
        Some(Ok(task)) => (
            StatusCode::CREATED,
            Json(json!({ "id": task.id.0, "state": task.state.as_str(), "task": task })),
        )
            .into_response(),
        Some(Err(TaskCreateError::Invalid(f))) => bad(&f.field, &f.message),
        Some(Err(TaskCreateError::NotStored)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store could not write the order; it was not made",
        ),
        None => match refused_rx.await {
            Ok(e) => refused(e),
            Err(_) => stopping(),
        },
    }
}

pub async fn call_back(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    let agent = caller.id.clone();
    let response = match id.parse::<u64>().map(TaskId) {
        Err(_) => bad("id", "expected a task number"),
        Ok(task) => match ask(&state, |reply| DeskRequest::CallBack { agent, task, reply }).await {
            Some(Ok(())) => Json(json!({ "calling": true })).into_response(),
            Some(Err(e)) => refused(e),
            None => stopping(),
        },
    };
    state
        .web
        .audited(&caller, "desk.call_back", &id, None, response)
        .await
}

/// The engine task's side: answers each desk request; an order is
/// answered once its task is durable (through `pending`).
pub fn handle(engine: &mut Engine, now: Instant, request: DeskRequest, pending: &mut PendingTasks) {
    match request {
        DeskRequest::View { agent, reply } => {
            let _ = reply.send(engine.desk(now, &agent));
        }
        DeskRequest::Notes {
            agent,
            call_id,
            business,
            summary,
            reply,
        } => {
            let _ = reply.send(engine.save_call_notes(now, &agent, &call_id, business, summary));
        }
        DeskRequest::Order {
            agent,
            call_id,
            order,
            due,
            note,
            reply,
            refused,
        } => match engine.make_order(now, &agent, &call_id, *order, due, note) {
            Ok((id, write)) => match engine.task(id).cloned() {
                Some(task) => pending.wait_for(write, task, reply),
                None => {
                    let _ = reply.send(Err(TaskCreateError::NotStored));
                }
            },
            // The reply is dropped: the handler reads the refusal.
            Err(e) => {
                let _ = refused.send(e);
            }
        },
        DeskRequest::CallBack { agent, task, reply } => {
            let _ = reply.send(engine.call_back(now, &agent, task));
        }
    }
}
