//! The agent's desk over HTTP: `GET /desk` (the page), and for the
//! signed-in agent `GET /api/v1/desk` (status, the call, the tasks),
//! `POST /api/v1/desk/calls/{id}/notes` (`{"business_type", "summary"}`),
//! `POST /api/v1/desk/calls/{id}/orders` (`{"kind": "repair" |
//! "complaint", "note", "due_hours", "customer_name", "address",
//! "fault", "fault_detail", "subject"}`, answered `201` once the task is
//! durable) and `POST /api/v1/desk/tasks/{id}/call-back`. Every input is
//! checked here or by the engine, and a refusal names the field.

use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::engine::{DeskError, DeskView, Engine, OrderKind};
use crate::report::interval as report_interval;
use crate::report::{
    Accumulator, Interval, Settings as ReportSettings, Source, Thresholds, UtcOffset,
};
use crate::tasks::order::{self, WorkOrder};
use crate::tasks::{Task, TaskId};
use crate::tools::records::{for_each_record, ReadError};

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

/// `GET /supervisor/report[?date=YYYY-MM-DD]`: the day's SLA report
/// (`hotline report --format html`, by the hour) from the records folder,
/// for supervisors and admins; today (the live view's local date) when no
/// date is given. Read and rendered on the blocking pool, never on the
/// engine's task. A bad date (or any other parameter) is a 400 naming it.
pub async fn supervisor_report(
    State(state): State<ApiState>,
    caller: Result<Caller, Refusal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    match caller {
        Ok(c) => match c.require(Role::Supervisor) {
            Ok(()) => day_report(&state, query).await,
            Err(r) => r.into_response(),
        },
        Err(_) => axum::response::Redirect::to("/login?next=/supervisor/report").into_response(),
    }
}

/// A date `YYYY-MM-DD` that is on the calendar, else why not.
fn report_date(text: &str, offset: UtcOffset) -> Result<u64, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let why = || format!("{text:?} is not a date: expected YYYY-MM-DD, e.g. 2026-12-07");
    if !shaped {
        return Err(why());
    }
    report_interval::parse_time(text, offset).map_err(|_| why())
}

async fn day_report(
    state: &ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return bad("query", "not a valid query string");
    };
    let mut date = None;
    for (name, value) in params {
        match name.as_str() {
            "date" if date.is_none() => date = Some(value),
            "date" => return bad("date", "given twice"),
            _ => return bad(&name, "unknown parameter (date)"),
        }
    }
    // The live view's day, offset and service level: the report says
    // what the supervisor's page and the wallboard say.
    let (tx, rx) = oneshot::channel();
    let asked = state
        .events
        .send(Event::Api(ApiRequest::Status {
            detail: false,
            all_nodes: false,
            reply: tx,
        }))
        .is_ok();
    let Some(live) = (if asked { rx.await.ok() } else { None }) else {
        return stopping();
    };
    let offset = UtcOffset::parse(&live.utc_offset).unwrap_or_default();
    let date = date.unwrap_or_else(|| live.today.clone());
    let from_ms = match report_date(&date, offset) {
        Ok(ms) => ms,
        Err(why) => return bad("date", &why),
    };
    let to_ms = from_ms + DAY_MS;
    let settings = ReportSettings {
        interval: Interval::parse("1h").unwrap_or(Interval::DAY),
        utc_offset: offset,
        by: None,
        thresholds: Thresholds {
            service_level_ms: live.service_level_threshold_ms,
            short_abandon_ms: live.short_abandon_ms,
        },
        from_ms: Some(from_ms),
        to_ms: Some(to_ms),
        target: live.service_level_target,
    };
    // The records folder: where the audit log is kept (`cdr.dir`).
    let dir = state.web.audit_log().dir().to_path_buf();
    let rendered =
        tokio::task::spawn_blocking(move || render_day_report(&dir, settings, from_ms, to_ms))
            .await;
    match rendered {
        Ok(Ok(html)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                // The report has no script and fetches nothing.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
                ),
            ],
            html,
        )
            .into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read the records: {e}"),
        ),
        Err(_) => stopping(),
    }
}

const DAY_MS: u64 = 86_400_000;

/// The HTML report of calls that arrived in `[from_ms, to_ms)`, from the
/// daily record files that may hold them: records are filed by the UTC
/// date they ended, so the UTC dates from the day's start to a day past
/// its end (a call that ended after midnight, however long). No file:
/// an empty report.
fn render_day_report(
    dir: &std::path::Path,
    settings: ReportSettings,
    from_ms: u64,
    to_ms: u64,
) -> Result<String, ReadError> {
    let mut files = Vec::new();
    let mut day = from_ms - from_ms % DAY_MS;
    while day <= to_ms + DAY_MS {
        let date = crate::cdr::format_ms(day);
        if let Some(date) = date.get(..10) {
            let path = dir.join(format!("{date}.jsonl"));
            if path.is_file() {
                files.push(path);
            }
        }
        day += DAY_MS;
    }
    let mut acc = Accumulator::new(settings);
    let stats = for_each_record(&files, |_, _| {}, |record| acc.add(&record))?;
    let report = acc.finish(Source {
        files: stats.files,
        records: stats.records,
        skipped_lines: stats.skipped_lines,
        ..Source::default()
    });
    Ok(crate::report::format::render(
        &report,
        crate::report::format::Format::Html,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_date_is_a_calendar_date() {
        let cn = UtcOffset(8 * 3600);
        // 2026-12-07T00:00:00+08:00
        assert_eq!(report_date("2026-12-07", cn), Ok(1_796_572_800_000));
        for bad in [
            "2026-12-7",
            "2026-13-01",
            "2026-02-30",
            "2026/12/07",
            "2026-12-07T00:00",
            "today",
            "",
            "2026-12-07\n",
        ] {
            assert!(report_date(bad, cn).is_err(), "{bad:?}");
        }
        assert!(report_date("2028-02-29", cn).is_ok(), "a leap day");
    }

    #[test]
    fn the_day_s_report_reads_the_files_that_may_hold_its_calls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = |invite_at: &str, ended_at: &str| {
            let r = crate::cdr::CallRecord {
                call_id: format!("hl-{invite_at}"),
                invite_at: invite_at.into(),
                ended_at: ended_at.into(),
                ..Default::default()
            };
            serde_json::to_string(&r).expect("json")
        };
        // 2026-12-07 in +08:00 is 2026-12-06T16:00Z .. 2026-12-07T16:00Z.
        let write = |name: &str, lines: &[String]| {
            std::fs::write(dir.path().join(name), lines.join("\n") + "\n").expect("write")
        };
        write(
            "2026-12-06.jsonl",
            &[
                record("2026-12-06T15:59:00.000Z", "2026-12-06T16:01:00.000Z"),
                record("2026-12-06T16:30:00.000Z", "2026-12-06T16:31:00.000Z"),
            ],
        );
        write(
            "2026-12-07.jsonl",
            &[record(
                "2026-12-07T09:00:00.000Z",
                "2026-12-07T09:03:00.000Z",
            )],
        );
        // Arrived before local midnight, ended after it: in the next file.
        write(
            "2026-12-08.jsonl",
            &[record(
                "2026-12-07T15:59:00.000Z",
                "2026-12-08T00:10:00.000Z",
            )],
        );
        write(
            "notes-2026-12-07.jsonl",
            &["{\"summary\": \"x\"}".to_string()],
        );
        let offset = UtcOffset(8 * 3600);
        let from = report_date("2026-12-07", offset).expect("date");
        let settings = ReportSettings {
            interval: Interval::parse("1h").expect("1h"),
            utc_offset: offset,
            from_ms: Some(from),
            to_ms: Some(from + DAY_MS),
            ..ReportSettings::default()
        };
        let html = render_day_report(dir.path(), settings, from, from + DAY_MS).expect("report");
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
        // The three dated files (not the notes); the call that arrived
        // the evening before is left out.
        assert!(
            html.contains("4 records from 3 files") && html.contains("1 outside the time range"),
            "{html}"
        );
    }
}
