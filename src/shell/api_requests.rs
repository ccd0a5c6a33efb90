//! What the HTTP API's handlers share: the requests they send the engine
//! task (agents, the live view, campaigns, tasks, call controls), the
//! state each handler holds, and the error body. The handlers live in
//! `api`, `api_campaigns` and `api_tasks`; each depends on this, not on
//! the others.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::campaign::spec::SpecError;
use crate::campaign::{CampaignId, CampaignSpec};
use crate::engine::{AgentCommand, AgentSnapshot, CampaignCommand};
use crate::live::LiveSnapshot;
use crate::store::StoredCampaign;
use crate::tasks::book::OutcomeError;
use crate::tasks::{Task, TaskId, TaskOutcome, TaskSpec, TaskState};

use super::media::LiveRtp;
use super::web::WebAuth;
use super::Event;

/// What the API asks the engine.
pub enum ApiRequest {
    Agents(oneshot::Sender<Vec<AgentSnapshot>>),
    Command {
        agent: String,
        command: AgentCommand,
        reply: oneshot::Sender<Option<AgentSnapshot>>,
    },
    /// The live view now; `detail` adds calls and waiting callers,
    /// `all_nodes` the other nodes' figures (several nodes; not for
    /// `/metrics`, which each node answers for itself).
    Status {
        detail: bool,
        all_nodes: bool,
        reply: oneshot::Sender<LiveSnapshot>,
    },
    Campaign(CampaignRequest),
    Task(TaskRequest),
    /// The signed-in agent's desk.
    Desk(super::api_desk::DeskRequest),
    /// The IVR's business types in the running config (`[ivr]
    /// business_types`), to check a form's `business_type` against.
    BusinessTypes(oneshot::Sender<Vec<String>>),
    /// Hold, resume or transfer a call in progress.
    CallControl {
        call_id: String,
        action: CallAction,
        /// An agent may act only on the call at their own phone.
        agent: Option<String>,
        reply: oneshot::Sender<Result<(), (u16, String)>>,
    },
}

/// What the API may do to a call in progress.
#[derive(Debug, Clone)]
pub enum CallAction {
    Hold,
    Resume,
    Transfer { to: String },
}

/// What the live view reads besides the engine: the media tasks' RTP
/// counters, and the engine's change counter (see
/// [`crate::engine::Engine::live_version`]).
#[derive(Clone)]
pub struct LiveSources {
    pub rtp: Arc<LiveRtp>,
    pub version: watch::Receiver<u64>,
    pub alarms: Arc<crate::shell::alarms::Alarms>,
}

#[derive(Clone)]
pub struct ApiState {
    pub events: mpsc::UnboundedSender<Event>,
    /// Sign-in, sessions, tokens and the audit log: handlers take a
    /// [`Caller`](super::web::Caller) and write changes with
    /// [`WebAuth::audited`].
    pub web: Arc<WebAuth>,
    pub(super) live: LiveSources,
    /// Creates campaigns durably (`None`: no store).
    pub store: Option<super::store::StoreCreator>,
    /// The offset local times in requests are read in (`api.utc_offset`).
    pub utc_offset_minutes: i32,
    pub(super) recordings_dir: Arc<std::path::PathBuf>,
}

impl ApiState {
    /// A request carrying a valid bearer token, of any role (the shared
    /// `[api] token` or one of `[[api.tokens]]`, compared in constant
    /// time). Handlers that change things take a
    /// [`Caller`](super::web::Caller) instead, which knows the role and
    /// also accepts a session.
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.web.accounts().verify_token(t).is_some())
    }
}

impl FromRef<ApiState> for Arc<WebAuth> {
    fn from_ref(state: &ApiState) -> Arc<WebAuth> {
        state.web.clone()
    }
}

/// What the engine is asked about campaigns.
pub enum CampaignRequest {
    Check {
        spec: Box<CampaignSpec>,
        uploaded_prompt: bool,
        reply: oneshot::Sender<Result<(), SpecError>>,
    },
    Add {
        stored: Box<StoredCampaign>,
        reply: oneshot::Sender<()>,
    },
    List(oneshot::Sender<Vec<Value>>),
    Get {
        id: CampaignId,
        reply: oneshot::Sender<Option<Value>>,
    },
    Command {
        id: CampaignId,
        command: CampaignCommand,
        reply: oneshot::Sender<Result<&'static str, String>>,
    },
    DoNotCall {
        number: String,
        reply: oneshot::Sender<()>,
    },
}

/// What the engine is asked about tasks (follow-ups, messages to
/// return, complaints, callbacks).
pub enum TaskRequest {
    /// A new task. Answered once the store has committed it (the engine
    /// task keeps `reply` until the write is acknowledged).
    Create {
        spec: Box<TaskSpec>,
        reply: oneshot::Sender<Result<Task, TaskCreateError>>,
    },
    /// The tasks that pass `filter`, in no particular order.
    List {
        filter: TaskFilter,
        reply: oneshot::Sender<Vec<Task>>,
    },
    Get {
        id: TaskId,
        reply: oneshot::Sender<Option<Task>>,
    },
    /// The agent's outcome, after the customer was reached.
    Outcome {
        id: TaskId,
        outcome: TaskOutcome,
        reply: oneshot::Sender<Result<Task, OutcomeError>>,
    },
    Cancel {
        id: TaskId,
        reply: oneshot::Sender<Result<Task, TaskCancelError>>,
    },
    /// An edit by the version its editor saw; answered once durable.
    Edit(Box<super::api_tasks::TaskEditRequest>),
}

/// Why a task was not cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCancelError {
    Unknown,
    /// Being worked now (`offered`, `dialing`, `connected`): the call in
    /// progress would carry on and settle it anyway; or already `done`
    /// or `failed`.
    NotCancellable(TaskState),
}

/// Which tasks a list holds; `None` lets any through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub state: Option<TaskState>,
    pub queue: Option<String>,
}

impl TaskFilter {
    pub fn admits(&self, task: &Task) -> bool {
        self.state.is_none_or(|s| task.state == s)
            && self.queue.as_ref().is_none_or(|q| &task.queue == q)
    }
}

/// Why a task was not created.
#[derive(Debug)]
pub enum TaskCreateError {
    /// The running config refuses it (an unknown queue, a queue with no
    /// trunk, an unknown owner): 400 naming the field.
    Invalid(SpecError),
    /// The store could not commit it: 503 (the engine drops it, cancelled).
    NotStored,
}

/// An error answer: `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
