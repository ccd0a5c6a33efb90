//! Campaigns through the HTTP API, for supervisors and admins (a
//! session or a bearer token; every change audited):
//! `POST /api/v1/campaigns` (JSON, or multipart with a `campaign` JSON
//! part, a `numbers` CSV and a `prompt` WAV), `GET /api/v1/campaigns`,
//! `GET /api/v1/campaigns/{id}`, `POST /api/v1/campaigns/{id}/{pause |
//! resume | cancel}`, and `POST /api/v1/do-not-call` (`{"number"}`).
//!
//! A new campaign is checked (400 naming the field), written to the store,
//! and only then handed to the engine and answered `201 {"id"}`.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::campaign::{Campaign, CampaignId, CampaignSpec};
use crate::config::Role;
use crate::engine::CampaignCommand;
use crate::media::prompt::decode_wav;
use crate::store::StoredCampaign;

pub use super::api_requests::CampaignRequest;
use super::api_requests::{error, ApiRequest, ApiState};
use super::web::Caller;
use super::Event;

/// 400 naming the field.
fn bad(field: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": format!("{field}: {message}"), "field": field })),
    )
        .into_response()
}

async fn ask<T>(
    state: &ApiState,
    make: impl FnOnce(oneshot::Sender<T>) -> CampaignRequest,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    state
        .events
        .send(Event::Api(ApiRequest::Campaign(make(tx))))
        .ok()?;
    rx.await.ok()
}

fn stopping() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "engine stopping")
}

/// `POST /api/v1/campaigns`, audited as `campaign.create`.
pub async fn create(State(state): State<ApiState>, caller: Caller, request: Request) -> Response {
    let (response, target) = match caller.require(Role::Supervisor) {
        Ok(()) => match create_campaign(&state, request).await {
            Ok(id) => (
                (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
                id.to_string(),
            ),
            Err(r) => (r, String::new()),
        },
        Err(r) => (r.into_response(), String::new()),
    };
    state
        .web
        .audited(&caller, "campaign.create", &target, None, response)
        .await
}

/// Checks, stores and hands a new campaign to the engine: its id.
async fn create_campaign(state: &ApiState, request: Request) -> Result<u64, Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let (json, csv, wav) = if multipart {
        read_parts(request).await?
    } else {
        match Json::<Value>::from_request(request, &()).await {
            Ok(Json(v)) => (v, None, None),
            Err(e) => return Err(bad("body", &e.body_text())),
        }
    };
    let spec = CampaignSpec::parse(&json, csv.as_deref(), state.utc_offset_minutes)
        .map_err(|e| bad(&e.field, &e.message))?;
    let audio = match &wav {
        Some(bytes) => match decode_wav(
            &spec.prompt,
            std::path::Path::new("prompt"),
            bytes.as_slice(),
        ) {
            Ok(samples) if !samples.is_empty() => Some(samples),
            Ok(_) => return Err(bad("prompt", "the WAV holds no audio")),
            Err(e) => return Err(bad("prompt", &e.to_string())),
        },
        None => None,
    };
    let check = ask(state, |reply| CampaignRequest::Check {
        spec: Box::new(spec.clone()),
        uploaded_prompt: audio.is_some(),
        reply,
    })
    .await;
    match check {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(bad(&e.field, &e.message)),
        None => return Err(stopping()),
    }
    let Some(store) = &state.store else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "no store"));
    };
    let (id, created_ms) = store
        .create(spec.clone(), wav)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    let stored = StoredCampaign {
        campaign: Campaign::new(id, spec, created_ms),
        prompt_audio: audio,
    };
    if ask(state, |reply| CampaignRequest::Add {
        stored: Box::new(stored),
        reply,
    })
    .await
    .is_none()
    {
        return Err(stopping());
    }
    Ok(id.0)
}

/// The parts of a multipart upload: the campaign JSON, the numbers CSV,
/// the prompt WAV.
async fn read_parts(
    request: Request,
) -> Result<(Value, Option<Vec<u8>>, Option<Vec<u8>>), Response> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad("body", &e.body_text()))?;
    let (mut json, mut csv, mut wav) = (None, None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(bad("body", &e.body_text())),
        };
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| bad(&name, &e.body_text()))?;
        match name.as_str() {
            "campaign" => {
                json = Some(
                    serde_json::from_slice::<Value>(&bytes)
                        .map_err(|e| bad("campaign", &format!("not JSON: {e}")))?,
                )
            }
            "numbers" => csv = Some(bytes.to_vec()),
            "prompt" => wav = Some(bytes.to_vec()),
            other => return Err(bad(other, "unknown part (campaign, numbers, prompt)")),
        }
    }
    let json = json.ok_or_else(|| bad("campaign", "missing part"))?;
    Ok((json, csv, wav))
}

pub async fn list(State(state): State<ApiState>, caller: Caller) -> Response {
    if let Err(r) = caller.require(Role::Supervisor) {
        return r.into_response();
    }
    match ask(&state, CampaignRequest::List).await {
        Some(list) => Json(list).into_response(),
        None => stopping(),
    }
}

pub async fn get_one(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    if let Err(r) = caller.require(Role::Supervisor) {
        return r.into_response();
    }
    let Ok(id) = id.parse::<u64>() else {
        return bad("id", "a campaign id is a number");
    };
    match ask(&state, |reply| CampaignRequest::Get {
        id: CampaignId(id),
        reply,
    })
    .await
    {
        Some(Some(v)) => Json(v).into_response(),
        Some(None) => error(StatusCode::NOT_FOUND, "no such campaign"),
        None => stopping(),
    }
}

/// `POST /api/v1/campaigns/{id}/{pause | resume | cancel}`, audited as
/// `campaign.<action>`.
pub async fn command(
    State(state): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    caller: Caller,
) -> Response {
    let response = match caller.require(Role::Supervisor) {
        Ok(()) => campaign_command(&state, &id, &action).await,
        Err(r) => r.into_response(),
    };
    let name = match action.as_str() {
        "pause" | "resume" | "cancel" => format!("campaign.{action}"),
        _ => "campaign.unknown".to_string(),
    };
    state.web.audited(&caller, &name, &id, None, response).await
}

async fn campaign_command(state: &ApiState, id: &str, action: &str) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return bad("id", "a campaign id is a number");
    };
    let command = match action {
        "pause" => CampaignCommand::Pause,
        "resume" => CampaignCommand::Resume,
        "cancel" => CampaignCommand::Cancel,
        _ => return error(StatusCode::NOT_FOUND, "actions: pause, resume, cancel"),
    };
    match ask(state, |reply| CampaignRequest::Command {
        id: CampaignId(id),
        command,
        reply,
    })
    .await
    {
        Some(Ok(st)) => Json(json!({ "id": id, "state": st })).into_response(),
        Some(Err(e)) if e.starts_with("no campaign") => error(StatusCode::NOT_FOUND, &e),
        Some(Err(e)) => error(StatusCode::CONFLICT, &e),
        None => stopping(),
    }
}

/// `POST /api/v1/do-not-call`, audited as `campaign.do_not_call` with the
/// number as the target.
pub async fn do_not_call(
    State(state): State<ApiState>,
    caller: Caller,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let number = body
        .as_ref()
        .ok()
        .and_then(|Json(b)| b.get("number"))
        .and_then(Value::as_str)
        .map(crate::campaign::number_key)
        .unwrap_or_default();
    let response = match caller.require(Role::Supervisor) {
        Ok(()) => add_do_not_call(&state, body).await,
        Err(r) => r.into_response(),
    };
    state
        .web
        .audited(&caller, "campaign.do_not_call", &number, None, response)
        .await
}

async fn add_do_not_call(
    state: &ApiState,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad(
            "body",
            "JSON like {\"number\": \"13800000001\"} is expected",
        );
    };
    let number = match body.get("number").and_then(Value::as_str) {
        Some(n) if crate::campaign::number_key(n).len() >= 3 => n.to_string(),
        _ => return bad("number", "a phone number is expected"),
    };
    match ask(state, |reply| CampaignRequest::DoNotCall {
        number: number.clone(),
        reply,
    })
    .await
    {
        Some(()) => Json(json!({ "number": crate::campaign::number_key(&number) })).into_response(),
        None => stopping(),
    }
}
