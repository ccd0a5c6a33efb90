//! The HTTP JSON API (axum): agents' status, and log in / log out / break
//! behind a bearer token. Requests go to the engine task through the
//! event channel and wait for its answer.

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::engine::{AgentCommand, AgentSnapshot};

use super::Event;

/// What the API asks the engine.
pub enum ApiRequest {
    Agents(oneshot::Sender<Vec<AgentSnapshot>>),
    Command {
        agent: String,
        command: AgentCommand,
        reply: oneshot::Sender<Option<AgentSnapshot>>,
    },
}

#[derive(Clone)]
struct ApiState {
    events: mpsc::UnboundedSender<Event>,
    token: String,
}

#[derive(Deserialize, Default)]
struct BreakBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn serve(
    listen: SocketAddr,
    token: String,
    events: mpsc::UnboundedSender<Event>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    info!(%listen, "HTTP API listening");
    let app = Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{id}/{action}", post(command))
        .with_state(ApiState { events, token });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "HTTP API stopped");
        }
    });
    Ok(())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
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

async fn command(
    State(state): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<BreakBody>>,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == state.token);
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    }
    let command = match action.as_str() {
        "login" => AgentCommand::Login,
        "logout" => AgentCommand::Logout,
        "available" => AgentCommand::Available,
        "break" => AgentCommand::Break {
            reason: body
                .and_then(|Json(b)| b.reason)
                .unwrap_or_else(|| "break".into()),
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
