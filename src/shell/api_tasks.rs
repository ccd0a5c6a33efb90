//! Tasks through the HTTP API (docs/tasks-api.md): `POST /api/v1/tasks`
//! (JSON), `GET /api/v1/tasks` (`?state=`, `?queue=`),
//! `GET /api/v1/tasks/{id}`, `PATCH /api/v1/tasks/{id}` (`{"version",
//! "note", "due", "order"}`), `POST /api/v1/tasks/{id}/outcome`
//! (`{"outcome"}`) and `POST /api/v1/tasks/{id}/cancel`.
//!
//! Anyone signed in (or with a token) reads; supervisors and admins
//! create and cancel; an outcome is recorded by the task's agent (its
//! owner, or the agent of its last attempt) or a supervisor or admin; a
//! task is edited by its owner (an agent) or a supervisor or admin, with
//! the version the editor saw (409 with the task as it now is when
//! someone changed it since). Every change is audited (`task.create`,
//! `task.edit`, `task.outcome`, `task.cancel`).
//!
//! A new task is checked field by field (400 naming the field), then
//! against the running config by the engine, and answered `201` with the
//! task only once the store has committed it: the engine task keeps the
//! reply in [`PendingTasks`] until the write's acknowledgement comes back
//! (`Event::Stored`), and answers 503 if the store failed it. An edit is
//! answered the same way (`200` once durable; `503` and undone if not).
//!
//! The handlers are the HTTP side; [`handle`], [`PendingTasks::stored`]
//! and [`PendingTasks::store_failed`] are the engine task's side.

use std::collections::HashMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tracing::warn;

use crate::config::Role;
use crate::engine::Engine;
use crate::tasks::book::OutcomeError;
use crate::tasks::spec::is_name;
use crate::tasks::{EditError, Edited, Task, TaskEdit, TaskId, TaskOutcome, TaskSpec, TaskState};

use super::api_requests::{error, ApiRequest, ApiState};
pub use super::api_requests::{TaskCancelError, TaskCreateError, TaskFilter, TaskRequest};
use super::web::Caller;
use super::Event;

/// Every state, for `?state=` and its error message.
const STATES: [TaskState; 7] = [
    TaskState::Open,
    TaskState::Offered,
    TaskState::Dialing,
    TaskState::Connected,
    TaskState::Done,
    TaskState::Failed,
    TaskState::Cancelled,
];

/// 400 naming the field (or query parameter).
fn bad(field: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": format!("{field}: {message}"), "field": field })),
    )
        .into_response()
}

fn stopping() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping")
}

fn not_found(id: u64) -> Response {
    error(StatusCode::NOT_FOUND, &format!("no task {id}"))
}

async fn ask<T>(
    state: &ApiState,
    make: impl FnOnce(oneshot::Sender<T>) -> TaskRequest,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    state
        .events
        .send(Event::Api(ApiRequest::Task(make(tx))))
        .ok()?;
    rx.await.ok()
}

/// A task id from the path: a number.
fn task_id(text: &str) -> Result<TaskId, Box<Response>> {
    text.parse::<u64>()
        .map(TaskId)
        .map_err(|_| Box::new(bad("id", "a task id is a number")))
}

/// A JSON body, or 400 naming `body`.
fn json_body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, Box<Response>> {
    match body {
        Ok(Json(v)) => Ok(v),
        Err(e) => Err(Box::new(bad(
            "body",
            &format!(
                "a JSON object with Content-Type: application/json is expected ({})",
                e.body_text()
            ),
        ))),
    }
}

/// `ms` since the epoch as RFC 3339 in the API's offset
/// (`api.utc_offset`): "2026-12-07T09:00:00+08:00".
pub fn local_time(ms: u64, offset_minutes: i32) -> String {
    let local = (ms as i64 + i64::from(offset_minutes) * 60_000).max(0) as u64;
    let mut text =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(local)).to_string();
    // humantime writes UTC ("...Z"); the digits are the local time.
    text.pop();
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.unsigned_abs();
    format!("{text}{sign}{:02}:{:02}", m / 60, m % 60)
}

/// A task as the API shows it: [`Task::to_json`] with its times also
/// written out (`created`, `due`, `closed`) in the API's offset.
pub fn task_json(task: &Task, offset_minutes: i32) -> Value {
    let mut v = task.to_json();
    if let Some(obj) = v.as_object_mut() {
        let time = |ms: Option<u64>| match ms {
            Some(ms) => Value::String(local_time(ms, offset_minutes)),
            None => Value::Null,
        };
        obj.insert("created".into(), time(Some(task.created_ms)));
        obj.insert("due".into(), time(task.due_ms));
        obj.insert("closed".into(), time(task.closed_ms));
    }
    v
}

/// Tasks in the order the list shows them: by deadline (earliest first;
/// those without one, callbacks, last), then by id.
pub fn sort_by_due(tasks: &mut [Task]) {
    tasks.sort_by_key(|t| (t.due_ms.is_none(), t.due_ms, t.id));
}

/// `?state=` and `?queue=` as a filter; a bad or unknown parameter is
/// `Err((its name, why))`.
fn filter(params: &[(String, String)]) -> Result<TaskFilter, (String, String)> {
    let mut filter = TaskFilter::default();
    for (name, value) in params {
        match name.as_str() {
            "state" => {
                let names: Vec<&str> = STATES.iter().map(|s| s.as_str()).collect();
                let state = STATES
                    .into_iter()
                    .find(|s| s.as_str() == value)
                    .ok_or_else(|| {
                        (
                            name.clone(),
                            format!("{value:?} is not one of {}", names.join(", ")),
                        )
                    })?;
                filter.state = Some(state);
            }
            "queue" => {
                if !is_name(value) {
                    return Err((
                        name.clone(),
                        format!("{value:?} is not a queue name (letters, digits, '_' and '-')"),
                    ));
                }
                filter.queue = Some(value.clone());
            }
            _ => return Err((name.clone(), "unknown parameter (state, queue)".to_string())),
        }
    }
    Ok(filter)
}

// ---- the handlers --------------------------------------------------------------

/// `POST /api/v1/tasks`: supervisors and admins.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let (response, target) = match caller.require(Role::Supervisor) {
        Ok(()) => create_task(&state, body).await,
        Err(r) => (r.into_response(), String::new()),
    };
    state
        .web
        .audited(&caller, "task.create", &target, None, response)
        .await
}

/// The answer, and the new task's id (empty if none).
async fn create_task(
    state: &ApiState,
    body: Result<Json<Value>, JsonRejection>,
) -> (Response, String) {
    let body = match json_body(body) {
        Ok(v) => v,
        Err(r) => return (*r, String::new()),
    };
    let spec = match TaskSpec::parse(&body) {
        Ok(s) => s,
        Err(e) => return (bad(&e.field, &e.message), String::new()),
    };
    let created = ask(state, |reply| TaskRequest::Create {
        spec: Box::new(spec),
        reply,
    })
    .await;
    let response = match created {
        Some(Ok(task)) => {
            return (
                (
                    StatusCode::CREATED,
                    Json(task_json(&task, state.utc_offset_minutes)),
                )
                    .into_response(),
                task.id.0.to_string(),
            )
        }
        Some(Err(TaskCreateError::Invalid(e))) => bad(&e.field, &e.message),
        Some(Err(TaskCreateError::NotStored)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store could not write the task; it was not created",
        ),
        None => stopping(),
    };
    (response, String::new())
}

/// `GET /api/v1/tasks[?state=open][&queue=repair]`.
pub async fn list(
    State(state): State<ApiState>,
    _caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return bad("query", "not a valid query string");
    };
    let filter = match filter(&params) {
        Ok(f) => f,
        Err((name, why)) => return bad(&name, &why),
    };
    match ask(&state, |reply| TaskRequest::List { filter, reply }).await {
        Some(mut tasks) => {
            sort_by_due(&mut tasks);
            let list: Vec<Value> = tasks
                .iter()
                .map(|t| task_json(t, state.utc_offset_minutes))
                .collect();
            Json(list).into_response()
        }
        None => stopping(),
    }
}

/// `GET /api/v1/tasks/{id}`.
pub async fn get_one(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    _caller: Caller,
) -> Response {
    let id = match task_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match ask(&state, |reply| TaskRequest::Get { id, reply }).await {
        Some(Some(task)) => Json(task_json(&task, state.utc_offset_minutes)).into_response(),
        Some(None) => not_found(id.0),
        None => stopping(),
    }
}

/// An edit the engine is asked to make: task `id` by `edit`; `owner`:
/// the editor is that agent (who may edit only tasks they own).
pub struct TaskEditRequest {
    pub id: TaskId,
    pub edit: TaskEdit,
    pub owner: Option<String>,
    /// The task as edited and the fields changed, once durable.
    pub reply: oneshot::Sender<Result<(Task, Vec<&'static str>), TaskEditRefused>>,
}

/// Why an edit was not made.
#[derive(Debug)]
pub enum TaskEditRefused {
    Engine(EditError),
    /// The store could not commit it: 503 (the engine undid it).
    NotStored,
}

/// `PATCH /api/v1/tasks/{id}` with `{"version", "note"?, "due"?,
/// "order"?}`: the task's owner (an agent) or a supervisor or admin.
/// `200` the task at its new version once durable; `409` with the
/// current task when `version` is not the task's now (or the task is
/// closed); audited as `task.edit` with the versions and the fields
/// changed.
pub async fn edit(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let (response, detail) = edit_task(&state, &caller, &id, body).await;
    state
        .web
        .audited(&caller, "task.edit", &id, detail, response)
        .await
}

/// The answer, and what the audit line says of it.
async fn edit_task(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    body: Result<Json<Value>, JsonRejection>,
) -> (Response, Option<Value>) {
    let id = match task_id(id) {
        Ok(id) => id,
        Err(r) => return (*r, None),
    };
    let body = match json_body(body) {
        Ok(v) => v,
        Err(r) => return (*r, None),
    };
    let edit = match TaskEdit::parse(&body) {
        Ok(e) => e,
        Err(e) => return (bad(&e.field, &e.message), None),
    };
    let from = edit.version;
    let owner = (!caller.role.at_least(Role::Supervisor)).then(|| caller.id.clone());
    let asked = ask(state, |reply| {
        TaskRequest::Edit(Box::new(TaskEditRequest {
            id,
            edit,
            owner,
            reply,
        }))
    })
    .await;
    let offset = state.utc_offset_minutes;
    match asked {
        Some(Ok((task, changed))) => {
            let detail =
                json!({ "from_version": from, "version": task.version, "changed": changed });
            (Json(task_json(&task, offset)).into_response(), Some(detail))
        }
        Some(Err(TaskEditRefused::Engine(e))) => {
            let detail = json!({ "from_version": from });
            let response = match e {
                EditError::Unknown(id) => not_found(id),
                EditError::NotOwner { .. } => error(StatusCode::FORBIDDEN, &e.to_string()),
                EditError::Stale {
                    expected,
                    ref current,
                } => (
                    StatusCode::CONFLICT,
                    Json(json!({
                        "error": format!(
                            "version: {e}; your edit was not saved. Merge it with the task as \
                             it is now and save again with version {}",
                            current.version
                        ),
                        "field": "version",
                        "expected": expected,
                        "current": task_json(current, offset),
                    })),
                )
                    .into_response(),
                EditError::Closed(ref current) => (
                    StatusCode::CONFLICT,
                    Json(json!({
                        "error": e.to_string(),
                        "current": task_json(current, offset),
                    })),
                )
                    .into_response(),
                EditError::Invalid(f) => bad(&f.field, &f.message),
            };
            (response, Some(detail))
        }
        Some(Err(TaskEditRefused::NotStored)) => (
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store could not write the edit; it was not made",
            ),
            Some(json!({ "from_version": from })),
        ),
        None => (stopping(), None),
    }
}

/// `POST /api/v1/tasks/{id}/outcome` with `{"outcome": "satisfied" |
/// "not_satisfied" | "not_reached"}`: the task's agent (its owner, or
/// the agent of its last attempt), a supervisor or an admin.
pub async fn outcome(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let detail = body
        .as_ref()
        .ok()
        .and_then(|Json(b)| b.get("outcome"))
        .map(|o| json!({ "outcome": o }));
    let response = record_outcome(&state, &caller, &id, body).await;
    state
        .web
        .audited(&caller, "task.outcome", &id, detail, response)
        .await
}

/// Whether `caller` may record task `id`'s outcome: supervisors and
/// admins always; an agent when the task is theirs. `Err` is the answer.
async fn may_record_outcome(
    state: &ApiState,
    caller: &Caller,
    id: TaskId,
) -> Result<(), Box<Response>> {
    if caller.role.at_least(Role::Supervisor) {
        return Ok(());
    }
    match ask(state, |reply| TaskRequest::Get { id, reply }).await {
        Some(Some(task)) => {
            let worked = task.attempts.last().and_then(|a| a.agent.as_deref());
            let theirs = task.owner.as_deref() == Some(caller.id.as_str())
                || worked == Some(caller.id.as_str());
            if theirs {
                Ok(())
            } else {
                Err(Box::new(error(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "task {} is not {}'s (neither its owner nor the agent who worked it)",
                        id.0, caller.id
                    ),
                )))
            }
        }
        Some(None) => Err(Box::new(not_found(id.0))),
        None => Err(Box::new(stopping())),
    }
}

async fn record_outcome(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let id = match task_id(id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    if let Err(r) = may_record_outcome(state, caller, id).await {
        return *r;
    }
    let body = match json_body(body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(obj) = body.as_object() else {
        return bad(
            "body",
            "a JSON object like {\"outcome\": \"satisfied\"} is expected",
        );
    };
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "outcome") {
        return bad(unknown, "unknown field");
    }
    let expected = "expected one of satisfied, not_satisfied, not_reached";
    let outcome = match obj.get("outcome") {
        None | Some(Value::Null) => return bad("outcome", &format!("required: {expected}")),
        Some(v) => match v.as_str().and_then(TaskOutcome::parse) {
            Some(o) => o,
            None => return bad("outcome", &format!("{v}: {expected}")),
        },
    };
    match ask(state, |reply| TaskRequest::Outcome { id, outcome, reply }).await {
        Some(Ok(task)) => Json(task_json(&task, state.utc_offset_minutes)).into_response(),
        Some(Err(OutcomeError::Unknown(id))) => not_found(id),
        Some(Err(e @ OutcomeError::NotReached { .. })) => {
            error(StatusCode::CONFLICT, &e.to_string())
        }
        None => stopping(),
    }
}

/// `POST /api/v1/tasks/{id}/cancel`: an open task, or one ringing an
/// agent's phone (the ringing stops), is cancelled (one already cancelled
/// is answered as it is); one on the line, done or failed is 409.
/// Supervisors and admins.
pub async fn cancel(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    let response = match caller.require(Role::Supervisor) {
        Ok(()) => cancel_task(&state, &id).await,
        Err(r) => r.into_response(),
    };
    state
        .web
        .audited(&caller, "task.cancel", &id, None, response)
        .await
}

async fn cancel_task(state: &ApiState, id: &str) -> Response {
    let id = match task_id(id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match ask(state, |reply| TaskRequest::Cancel { id, reply }).await {
        Some(Ok(task)) => Json(task_json(&task, state.utc_offset_minutes)).into_response(),
        Some(Err(TaskCancelError::Unknown)) => not_found(id.0),
        Some(Err(TaskCancelError::NotCancellable(st))) => {
            let why = if st.is_final() {
                "it is closed"
            } else {
                "an agent is working it now"
            };
            error(
                StatusCode::CONFLICT,
                &format!("task {} is {}: {why}", id.0, st.as_str()),
            )
        }
        None => stopping(),
    }
}

// ---- the engine task's side ----------------------------------------------------

/// Who waits for a task's write.
enum Waiting {
    /// A task created through the API (or the desk).
    Created(oneshot::Sender<Result<Task, TaskCreateError>>),
    /// An edit: answered once durable, undone if the store failed it.
    Edited {
        reply: oneshot::Sender<Result<(Task, Vec<&'static str>), TaskEditRefused>>,
        edited: Box<Edited>,
    },
}

/// A task whose write the store has not yet acknowledged.
struct Pending {
    task: Task,
    waiting: Waiting,
}

/// The API's created and edited tasks waiting for their writes, by
/// write id.
#[derive(Default)]
pub struct PendingTasks {
    by_write: HashMap<u64, Pending>,
}

impl PendingTasks {
    /// Answers `reply` with `task` once write `write` is durable (or 503
    /// if the store fails it).
    pub fn wait_for(
        &mut self,
        write: u64,
        task: Task,
        reply: oneshot::Sender<Result<Task, TaskCreateError>>,
    ) {
        self.by_write.insert(
            write,
            Pending {
                task,
                waiting: Waiting::Created(reply),
            },
        );
    }

    /// The store committed write `id`: a task created or edited through
    /// the API is durable, and its request is answered.
    pub fn stored(&mut self, id: u64) {
        if let Some(p) = self.by_write.remove(&id) {
            match p.waiting {
                Waiting::Created(reply) => {
                    let _ = reply.send(Ok(p.task));
                }
                Waiting::Edited { reply, edited } => {
                    let _ = reply.send(Ok((p.task, edited.changed)));
                }
            }
        }
    }

    /// The store failed write `id`. A task created through the API is
    /// answered 503 and cancelled: its client was told it does not exist
    /// (and may well ask again), so it must not be worked. An edit is
    /// answered 503 and undone: the task is as it was before it.
    pub fn store_failed(&mut self, engine: &mut Engine, now: Instant, id: u64) {
        let Some(p) = self.by_write.remove(&id) else {
            return;
        };
        match p.waiting {
            Waiting::Created(reply) => {
                warn!(
                    task = p.task.id.0,
                    "a task from the API was not stored: cancelled"
                );
                engine.cancel_task(now, p.task.id);
                let _ = reply.send(Err(TaskCreateError::NotStored));
            }
            Waiting::Edited { reply, edited } => {
                warn!(task = p.task.id.0, "a task's edit was not stored: undone");
                engine.undo_task_edit(now, p.task.id, &edited);
                let _ = reply.send(Err(TaskEditRefused::NotStored));
            }
        }
    }
}

/// The API's task requests, answered by the engine; a creation is
/// answered later, from [`PendingTasks::stored`].
pub fn handle(engine: &mut Engine, now: Instant, request: TaskRequest, pending: &mut PendingTasks) {
    match request {
        TaskRequest::Create { spec, reply } => match engine.create_task(now, *spec) {
            Ok((id, write)) => match engine.task(id).cloned() {
                Some(task) if write != 0 => pending.wait_for(write, task, reply),
                // Never so: the engine writes every task it creates.
                _ => {
                    warn!(task = id.0, "a task from the API has no write to wait for");
                    engine.cancel_task(now, id);
                    let _ = reply.send(Err(TaskCreateError::NotStored));
                }
            },
            Err(e) => {
                let _ = reply.send(Err(TaskCreateError::Invalid(e)));
            }
        },
        TaskRequest::List { filter, reply } => {
            let _ = reply.send(
                engine
                    .tasks()
                    .filter(|t| filter.admits(t))
                    .cloned()
                    .collect(),
            );
        }
        TaskRequest::Get { id, reply } => {
            let _ = reply.send(engine.task(id).cloned());
        }
        TaskRequest::Outcome { id, outcome, reply } => {
            let _ = reply.send(engine.task_outcome(now, id, outcome));
        }
        TaskRequest::Edit(request) => {
            let TaskEditRequest {
                id,
                edit,
                owner,
                reply,
            } = *request;
            match engine.edit_task(now, id, &edit, owner.as_deref()) {
                // Nothing changed: nothing to wait for.
                Ok((task, edited, 0)) => {
                    let _ = reply.send(Ok((task, edited.changed)));
                }
                Ok((task, edited, write)) => {
                    pending.by_write.insert(
                        write,
                        Pending {
                            task,
                            waiting: Waiting::Edited {
                                reply,
                                edited: Box::new(edited),
                            },
                        },
                    );
                }
                Err(e) => {
                    let _ = reply.send(Err(TaskEditRefused::Engine(e)));
                }
            }
        }
        TaskRequest::Cancel { id, reply } => {
            let result = match engine.task(id).map(|t| t.state) {
                None => Err(TaskCancelError::Unknown),
                Some(TaskState::Open | TaskState::Offered) => {
                    engine.cancel_task(now, id).ok_or(TaskCancelError::Unknown)
                }
                // Asked again: answered as it is, nothing written.
                Some(TaskState::Cancelled) => {
                    engine.task(id).cloned().ok_or(TaskCancelError::Unknown)
                }
                // On the line: the agent finishes it (and records the
                // outcome); done and failed are final.
                Some(st) => Err(TaskCancelError::NotCancellable(st)),
            };
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_the_api_offset() {
        // 2026-12-07T01:00:00Z
        let ms = 1_796_605_200_000;
        assert_eq!(local_time(ms, 480), "2026-12-07T09:00:00+08:00");
        assert_eq!(local_time(ms, 0), "2026-12-07T01:00:00+00:00");
        assert_eq!(local_time(ms, -330), "2026-12-06T19:30:00-05:30");
        assert_eq!(
            crate::campaign::spec::parse_rfc3339_ms(&local_time(ms, 330)),
            Some(ms)
        );
    }

    #[test]
    fn the_filter_names_a_bad_parameter() {
        let p = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            filter(&pairs).map_err(|(name, _)| name)
        };
        assert_eq!(
            p(&[("state", "open"), ("queue", "repair")]),
            Ok(TaskFilter {
                state: Some(TaskState::Open),
                queue: Some("repair".into())
            })
        );
        assert_eq!(p(&[]), Ok(TaskFilter::default()));
        assert_eq!(p(&[("state", "opened")]), Err("state".into()));
        assert_eq!(p(&[("queue", "a b")]), Err("queue".into()));
        assert_eq!(p(&[("status", "open")]), Err("status".into()));
    }

    #[test]
    fn the_list_is_by_deadline_then_id_callbacks_last() {
        let task = |id: u64, due_ms: Option<u64>| -> Task {
            serde_json::from_value(json!({
                "id": id, "kind": "follow_up", "number": "13800000001", "queue": "repair",
                "created_ms": 0, "due_ms": due_ms, "state": "open", "max_attempts": 3,
                "retry_ms": 1000, "order_ms": 0
            }))
            .expect("task")
        };
        let mut tasks = vec![
            task(1, None),
            task(2, Some(50)),
            task(3, Some(10)),
            task(4, Some(50)),
        ];
        sort_by_due(&mut tasks);
        let ids: Vec<u64> = tasks.iter().map(|t| t.id.0).collect();
        assert_eq!(ids, vec![3, 2, 4, 1]);
    }

    // ---- the engine task's side ----------------------------------------

    use crate::config::{Config, DEFAULT_TOML};
    use crate::engine::EngineSettings;
    use crate::io::Output;
    use crate::store::StoreWrite;
    use tokio::sync::oneshot::error::TryRecvError;

    /// The default config with one trunk (so a queue's tasks have one to
    /// dial through); no agent is logged in.
    fn engine(now: Instant) -> Engine {
        let text = format!(
            "{DEFAULT_TOML}\n[[trunks]]\nname = \"pstn\"\naddress = \"127.0.0.1:5060\"\n\
             caller_id = \"4008001234\"\n"
        );
        let config =
            Config::parse(&text, "test config", std::path::Path::new(".")).expect("config");
        let settings = EngineSettings::from_config(&config);
        let setup = crate::shell::load::setup(config, "test config").expect("setup");
        // 2026-11-25T10:00:00Z
        Engine::new(
            settings,
            setup.prompts,
            setup.program,
            setup.directory,
            now,
            1_795_600_800_000,
            7,
        )
    }

    fn spec(queue: &str) -> Box<TaskSpec> {
        Box::new(
            TaskSpec::parse(&json!({"kind": "follow_up", "number": "13800000001",
                                    "queue": queue, "due": "2036-12-07T09:00:00+08:00"}))
            .expect("spec"),
        )
    }

    /// The ids of the task writes the engine asked for.
    fn task_writes(engine: &mut Engine) -> Vec<u64> {
        let mut ids = Vec::new();
        while let Some(output) = engine.poll_output() {
            if let Output::Store {
                id,
                write: StoreWrite::Task { .. },
            } = output
            {
                ids.push(id);
            }
        }
        ids
    }

    #[test]
    fn a_created_task_is_answered_once_its_write_is_stored() {
        let now = Instant::now();
        let mut engine = engine(now);
        let mut pending = PendingTasks::default();
        let (reply, mut rx) = oneshot::channel();
        handle(
            &mut engine,
            now,
            TaskRequest::Create {
                spec: spec("repair"),
                reply,
            },
            &mut pending,
        );
        let writes = task_writes(&mut engine);
        assert_eq!(writes.len(), 1, "the task is written");
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "not yet");
        // Another write's acknowledgement answers nothing.
        pending.stored(writes[0] + 100);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        pending.stored(writes[0]);
        match rx.try_recv() {
            Ok(Ok(task)) => {
                assert_eq!(task.state, TaskState::Open);
                assert_eq!(engine.task(task.id).map(|t| t.state), Some(TaskState::Open));
            }
            _ => panic!("answered with the task"),
        }
    }

    #[test]
    fn a_task_the_store_failed_is_refused_and_never_worked() {
        let now = Instant::now();
        let mut engine = engine(now);
        let mut pending = PendingTasks::default();
        let (reply, mut rx) = oneshot::channel();
        handle(
            &mut engine,
            now,
            TaskRequest::Create {
                spec: spec("repair"),
                reply,
            },
            &mut pending,
        );
        let writes = task_writes(&mut engine);
        pending.store_failed(&mut engine, now, writes[0]);
        assert!(matches!(rx.try_recv(), Ok(Err(TaskCreateError::NotStored))));
        let states: Vec<TaskState> = engine.tasks().map(|t| t.state).collect();
        assert_eq!(states, vec![TaskState::Cancelled]);
    }

    #[test]
    fn a_task_for_an_unknown_queue_is_refused_at_once() {
        let now = Instant::now();
        let mut engine = engine(now);
        let mut pending = PendingTasks::default();
        let (reply, mut rx) = oneshot::channel();
        handle(
            &mut engine,
            now,
            TaskRequest::Create {
                spec: spec("billing"),
                reply,
            },
            &mut pending,
        );
        match rx.try_recv() {
            Ok(Err(TaskCreateError::Invalid(e))) => assert_eq!(e.field, "queue"),
            _ => panic!("refused naming the queue"),
        }
        assert!(task_writes(&mut engine).is_empty(), "nothing written");
        assert_eq!(engine.tasks().count(), 0);
    }

    /// Creates a task through `handle` and stores it; its id.
    fn stored_task(engine: &mut Engine, now: Instant, pending: &mut PendingTasks) -> TaskId {
        let (reply, _rx) = oneshot::channel();
        handle(
            engine,
            now,
            TaskRequest::Create {
                spec: spec("repair"),
                reply,
            },
            pending,
        );
        for w in task_writes(engine) {
            pending.stored(w);
        }
        engine.tasks().map(|t| t.id).next().expect("created")
    }

    type EditReply = oneshot::Receiver<Result<(Task, Vec<&'static str>), TaskEditRefused>>;

    fn edit_request(
        engine: &mut Engine,
        now: Instant,
        pending: &mut PendingTasks,
        id: TaskId,
        body: Value,
        owner: Option<&str>,
    ) -> EditReply {
        let (reply, rx) = oneshot::channel();
        handle(
            engine,
            now,
            TaskRequest::Edit(Box::new(TaskEditRequest {
                id,
                edit: TaskEdit::parse(&body).expect("a valid edit"),
                owner: owner.map(str::to_string),
                reply,
            })),
            pending,
        );
        rx
    }

    #[test]
    fn an_edit_is_answered_once_stored_and_a_stale_one_gets_the_current_task() {
        let now = Instant::now();
        let mut engine = engine(now);
        let mut pending = PendingTasks::default();
        let id = stored_task(&mut engine, now, &mut pending);
        let v = engine.task(id).map(|t| t.version).expect("task");
        let mut first = edit_request(
            &mut engine,
            now,
            &mut pending,
            id,
            json!({"version": v, "note": "上午十点后联系"}),
            None,
        );
        let writes = task_writes(&mut engine);
        assert_eq!(writes.len(), 1, "the edit is written");
        assert!(
            matches!(first.try_recv(), Err(TryRecvError::Empty)),
            "not yet durable"
        );
        // A second editor who opened the same version.
        let mut second = edit_request(
            &mut engine,
            now,
            &mut pending,
            id,
            json!({"version": v, "note": "下午联系"}),
            None,
        );
        match second.try_recv() {
            Ok(Err(TaskEditRefused::Engine(EditError::Stale { current, .. }))) => {
                assert_eq!(current.note, "上午十点后联系", "the first edit, to merge");
                assert_eq!(current.version, v + 1);
            }
            other => panic!("stale expected: {other:?}"),
        }
        pending.stored(writes[0]);
        match first.try_recv() {
            Ok(Ok((task, changed))) => {
                assert_eq!((task.version, changed), (v + 1, vec!["note"]));
            }
            other => panic!("answered with the task: {other:?}"),
        }
        // Only the owner may edit as an agent (this task has none).
        let mut agent = edit_request(
            &mut engine,
            now,
            &mut pending,
            id,
            json!({"version": v + 1, "note": "x"}),
            Some("1001"),
        );
        assert!(matches!(
            agent.try_recv(),
            Ok(Err(TaskEditRefused::Engine(EditError::NotOwner { .. })))
        ));
    }

    #[test]
    fn an_edit_the_store_failed_is_refused_and_undone() {
        let now = Instant::now();
        let mut engine = engine(now);
        let mut pending = PendingTasks::default();
        let id = stored_task(&mut engine, now, &mut pending);
        let before = engine.task(id).cloned().expect("task");
        let mut rx = edit_request(
            &mut engine,
            now,
            &mut pending,
            id,
            json!({"version": before.version, "note": "改约", "due": "2036-12-08T09:00:00+08:00"}),
            None,
        );
        let writes = task_writes(&mut engine);
        pending.store_failed(&mut engine, now, writes[0]);
        assert!(matches!(rx.try_recv(), Ok(Err(TaskEditRefused::NotStored))));
        let after = engine.task(id).cloned().expect("task");
        assert_eq!(
            (after.note.as_str(), after.due_ms, after.order_ms),
            (before.note.as_str(), before.due_ms, before.order_ms),
            "as it was"
        );
        assert_eq!(after.version, before.version + 2, "the undo is written too");
        assert_eq!(task_writes(&mut engine).len(), 1);
    }

    #[test]
    fn an_open_task_is_cancelled_once_and_stays_so() {
        let now = Instant::now();
        let mut engine = engine(now);
        let mut pending = PendingTasks::default();
        let (reply, _rx) = oneshot::channel();
        handle(
            &mut engine,
            now,
            TaskRequest::Create {
                spec: spec("repair"),
                reply,
            },
            &mut pending,
        );
        task_writes(&mut engine);
        let id = engine.tasks().map(|t| t.id).next().expect("created");
        let mut cancel = |engine: &mut Engine, id: TaskId| {
            let (reply, mut rx) = oneshot::channel();
            handle(engine, now, TaskRequest::Cancel { id, reply }, &mut pending);
            let written = task_writes(engine).len();
            (rx.try_recv().expect("answered"), written)
        };
        let (first, written) = cancel(&mut engine, id);
        assert_eq!(first.map(|t| t.state), Ok(TaskState::Cancelled));
        assert_eq!(written, 1, "the cancel is written");
        let (again, written) = cancel(&mut engine, id);
        assert_eq!(again.map(|t| t.state), Ok(TaskState::Cancelled));
        assert_eq!(written, 0, "nothing changed, nothing written");
        let (unknown, _) = cancel(&mut engine, TaskId(99));
        assert_eq!(unknown.map(|t| t.state), Err(TaskCancelError::Unknown));
    }
}
