//! The knowledge base through the HTTP API (docs/knowledge-base.md):
//! `GET /api/v1/kb` (`?q=`, `?business_type=`, `?limit=`),
//! `GET /api/v1/kb/{id}`, `POST /api/v1/kb`, `PUT /api/v1/kb/{id}` (with
//! the `version` edited: 409 with the current entry if someone saved
//! since) and `GET /api/v1/kb/{id}/history`.
//!
//! Every field is checked here (400 naming the field); a business type
//! against the running config's `[ivr] business_types`, which the engine
//! task is asked for. The text goes only to the store (as SQL parameters)
//! and back as JSON; the desk shows it with `textContent`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use thiserror::Error;
use tokio::sync::oneshot;

use super::api_requests::{error, ApiRequest, ApiState};
use super::api_tasks::local_time;
use super::store::kb::{KbEntry, KbError, KbFields, KbQuery, MAX_RESULTS};
use super::store::StoreCreator;
use super::web::Caller;
use super::Event;

pub const MAX_TITLE: usize = 200;
pub const MAX_QUESTION: usize = 2000;
pub const MAX_ANSWER: usize = 10_000;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG: usize = 32;
/// Longest search text, and longest business type.
pub const MAX_QUERY: usize = 200;
pub const MAX_BUSINESS_TYPE: usize = 64;
/// Largest request body (the longest entry is well under this).
pub const MAX_BODY: usize = 256 << 10;

/// The fields a body may have.
const FIELDS: &str = "title, question, answer, tags, business_type";

/// A refused field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Why a request was not served; each is one answer ([`Refusal::respond`]).
#[derive(Debug, Error)]
pub enum Refusal {
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 400 naming the field.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// 413: more than [`MAX_BODY`] bytes.
    #[error("body: larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("no store")]
    NoStore,
    #[error("engine stopping")]
    EngineStopping,
    #[error(transparent)]
    Kb(#[from] KbError),
}

impl Refusal {
    fn respond(self, offset_minutes: i32) -> Response {
        match self {
            Refusal::Unauthorized => error(StatusCode::UNAUTHORIZED, &self.to_string()),
            Refusal::Field(e) => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string(), "field": e.field })),
            )
                .into_response(),
            Refusal::TooLarge => error(StatusCode::PAYLOAD_TOO_LARGE, &self.to_string()),
            Refusal::NoStore | Refusal::EngineStopping => {
                error(StatusCode::SERVICE_UNAVAILABLE, &self.to_string())
            }
            Refusal::Kb(e) => match e {
                KbError::NotFound(_) => error(StatusCode::NOT_FOUND, &e.to_string()),
                KbError::Conflict {
                    expected,
                    ref current,
                } => (
                    StatusCode::CONFLICT,
                    Json(json!({
                        "error": format!(
                            "version: {e}; your text was not saved. Merge it with the current \
                             text and save again with version {}",
                            current.version
                        ),
                        "field": "version",
                        "expected": expected,
                        "current": entry_json(current, offset_minutes),
                    })),
                )
                    .into_response(),
                KbError::Stopped => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
                KbError::Store(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the store failed: {e}"),
                ),
            },
        }
    }
}

/// A handler's outcome as the answer.
fn answer(result: Result<Response, Refusal>, state: &ApiState) -> Response {
    result.unwrap_or_else(|r| r.respond(state.utc_offset_minutes))
}

/// Who is asking: the person signed in (or the token's name), whom an
/// entry's `updated_by` names. Anyone signed in may read and write.
fn author(caller: &Caller) -> Result<String, Refusal> {
    Ok(caller.id.clone())
}

fn store(state: &ApiState) -> Result<&StoreCreator, Refusal> {
    state.store.as_ref().ok_or(Refusal::NoStore)
}

/// An entry (or one of its versions) as the API shows it, with its times
/// also written out in the API's offset.
pub fn entry_json(e: &KbEntry, offset_minutes: i32) -> Value {
    json!({
        "id": e.id,
        "title": e.fields.title,
        "question": e.fields.question,
        "answer": e.fields.answer,
        "tags": e.fields.tags,
        "business_type": e.fields.business_type,
        "version": e.version,
        "created_ms": e.created_ms,
        "updated_ms": e.updated_ms,
        "updated_by": e.updated_by,
        "created": local_time(e.created_ms, offset_minutes),
        "updated": local_time(e.updated_ms, offset_minutes),
    })
}

// ---- checking input ----------------------------------------------------------

/// Refuses control characters (but newline where `newline` allows it)
/// and the bidirectional overrides that make text read other than it is.
fn check_characters(field: &str, text: &str, newline: bool) -> Result<(), FieldError> {
    for (i, c) in text.chars().enumerate() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && !(newline && c == '\n')) || bidi {
            let allowed = if newline {
                " (only line breaks are allowed)"
            } else {
                ""
            };
            return Err(field_error(
                field,
                format!(
                    "character {} is a control character (U+{:04X}){allowed}",
                    i + 1,
                    c as u32
                ),
            ));
        }
    }
    Ok(())
}

fn check_length(field: &str, text: &str, max: usize) -> Result<(), FieldError> {
    let n = text.chars().count();
    if n > max {
        return Err(field_error(
            field,
            format!("at most {max} characters (this has {n})"),
        ));
    }
    Ok(())
}

/// A string field; `None` when absent or null.
fn string<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_error(field, "expected a string")),
    }
}

/// A text of several lines: line breaks as `\n`.
fn lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Tags as a list of strings, or one string separated by commas (`,`,
/// `，` or `、`); blanks dropped, repeats once.
fn tags(value: Option<&Value>) -> Result<Vec<String>, FieldError> {
    let raw: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split([',', '，', '、']).map(str::to_string).collect(),
        Some(Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) if !s.contains(',') => list.push(s.to_string()),
                    Some(_) => return Err(field_error("tags", "a tag cannot hold a comma")),
                    None => return Err(field_error("tags", "expected strings")),
                }
            }
            list
        }
        Some(_) => {
            return Err(field_error(
                "tags",
                "expected a list of strings, or one string separated by commas",
            ))
        }
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in raw.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        check_characters("tags", tag, false)?;
        if tag.chars().count() > MAX_TAG {
            return Err(field_error(
                "tags",
                format!("{tag:?} is longer than {MAX_TAG} characters"),
            ));
        }
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(field_error(
            "tags",
            format!("at most {MAX_TAGS} tags (this has {})", tags.len()),
        ));
    }
    Ok(tags)
}

/// A business type's form (the running config decides which exist).
fn business_type_form(field: &str, text: &str) -> Result<(), FieldError> {
    check_characters(field, text, false)?;
    check_length(field, text, MAX_BUSINESS_TYPE)
}

/// An entry's fields from a JSON body. With `with_version`, the body also
/// carries the `version` edited, which is returned.
pub fn parse_fields(body: &Value, with_version: bool) -> Result<(KbFields, u64), FieldError> {
    let Some(body) = body.as_object() else {
        return Err(field_error(
            "body",
            format!("expected a JSON object with {FIELDS}"),
        ));
    };
    for key in body.keys() {
        let known = matches!(
            key.as_str(),
            "title" | "question" | "answer" | "tags" | "business_type"
        ) || (with_version && key == "version");
        if !known {
            let version = if with_version { ", version" } else { "" };
            return Err(field_error(
                key,
                format!("unknown field (the fields are {FIELDS}{version})"),
            ));
        }
    }

    let title = string(body, "title")?.unwrap_or_default().trim();
    if title.is_empty() {
        return Err(field_error(
            "title",
            format!("required (1 to {MAX_TITLE} characters)"),
        ));
    }
    check_length("title", title, MAX_TITLE)?;
    check_characters("title", title, false)?;

    let question = lines(string(body, "question")?.unwrap_or_default());
    let question = question.trim();
    check_length("question", question, MAX_QUESTION)?;
    check_characters("question", question, true)?;

    let answer = lines(string(body, "answer")?.unwrap_or_default());
    let answer = answer.trim();
    if answer.is_empty() {
        return Err(field_error(
            "answer",
            format!("required (1 to {MAX_ANSWER} characters)"),
        ));
    }
    check_length("answer", answer, MAX_ANSWER)?;
    check_characters("answer", answer, true)?;

    let tags = tags(body.get("tags"))?;

    let business_type = match string(body, "business_type")?.map(str::trim) {
        None | Some("") => None,
        Some(b) => {
            business_type_form("business_type", b)?;
            Some(b.to_string())
        }
    };

    let version = if with_version {
        match body.get("version") {
            Some(v) => v.as_u64().filter(|&v| v >= 1).ok_or_else(|| {
                field_error(
                    "version",
                    "expected the entry's version you edited (a whole number from 1)",
                )
            })?,
            None => {
                return Err(field_error(
                    "version",
                    "required: the entry's version you edited",
                ))
            }
        }
    } else {
        0
    };

    Ok((
        KbFields {
            title: title.to_string(),
            question: question.to_string(),
            answer: answer.to_string(),
            tags,
            business_type,
        },
        version,
    ))
}

/// A search from the query parameters.
pub fn parse_query(params: &[(String, String)]) -> Result<KbQuery, FieldError> {
    let mut query = KbQuery {
        limit: MAX_RESULTS,
        ..KbQuery::default()
    };
    for (name, value) in params {
        match name.as_str() {
            "q" => {
                check_length("q", value, MAX_QUERY)?;
                check_characters("q", value, false)?;
                query.text = value.trim().to_string();
            }
            "business_type" => {
                let value = value.trim();
                if !value.is_empty() {
                    business_type_form("business_type", value)?;
                    query.business_type = Some(value.to_string());
                }
            }
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_RESULTS).contains(n))
                    .ok_or_else(|| {
                        field_error("limit", format!("a whole number from 1 to {MAX_RESULTS}"))
                    })?;
            }
            _ => {
                return Err(field_error(
                    name,
                    "unknown parameter (q, business_type, limit)",
                ))
            }
        }
    }
    Ok(query)
}

/// Checks a business type against the running config.
async fn check_business_type(state: &ApiState, fields: &KbFields) -> Result<(), Refusal> {
    let Some(b) = &fields.business_type else {
        return Ok(());
    };
    let (reply, rx) = oneshot::channel();
    state
        .events
        .send(Event::Api(ApiRequest::BusinessTypes(reply)))
        .map_err(|_| Refusal::EngineStopping)?;
    let known = rx.await.map_err(|_| Refusal::EngineStopping)?;
    if known.iter().any(|k| k == b) {
        return Ok(());
    }
    let message = if known.is_empty() {
        format!("{b:?}: no business types are configured ([ivr] business_types)")
    } else {
        format!("{b:?} is not one of {}", known.join(", "))
    };
    Err(field_error("business_type", message).into())
}

fn entry_id(text: &str) -> Result<u64, FieldError> {
    text.parse::<u64>()
        .map_err(|_| field_error("id", "an entry id is a whole number"))
}

fn json_body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, Refusal> {
    match body {
        Ok(Json(v)) => Ok(v),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Refusal::TooLarge),
        Err(e) => Err(field_error(
            "body",
            format!(
                "a JSON object with Content-Type: application/json is expected ({})",
                e.body_text()
            ),
        )
        .into()),
    }
}

fn list_json(entries: &[KbEntry], state: &ApiState) -> Response {
    Json(
        entries
            .iter()
            .map(|e| entry_json(e, state.utc_offset_minutes))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

// ---- the handlers --------------------------------------------------------------

/// `GET /api/v1/kb`: entries matching `q`, newest first, at most 50.
pub async fn search(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let result = async {
        author(&caller)?;
        let Query(params) = params.map_err(|e| field_error("query", e.body_text()))?;
        let query = parse_query(&params)?;
        let found = store(&state)?.kb_search(query).await?;
        Ok(list_json(&found, &state))
    };
    answer(result.await, &state)
}

/// `GET /api/v1/kb/{id}`.
pub async fn get_one(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    let result = async {
        author(&caller)?;
        let id = entry_id(&id)?;
        let entry = store(&state)?.kb_get(id).await?;
        Ok(Json(entry_json(&entry, state.utc_offset_minutes)).into_response())
    };
    answer(result.await, &state)
}

/// `POST /api/v1/kb`: `201` with the entry (its `id`, `version` 1).
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let result = async {
        let who = author(&caller)?;
        let (fields, _) = parse_fields(&json_body(body)?, false)?;
        check_business_type(&state, &fields).await?;
        let entry = store(&state)?.kb_create(fields, who).await?;
        Ok((
            StatusCode::CREATED,
            Json(entry_json(&entry, state.utc_offset_minutes)),
        )
            .into_response())
    };
    let response = answer(result.await, &state);
    state
        .web
        .audited(&caller, "kb.create", "", None, response)
        .await
}

/// `PUT /api/v1/kb/{id}`: the new text with the `version` it was edited
/// from; `200` with the entry at its new version, or `409` with the
/// current entry when someone saved since.
pub async fn update(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let id_text = id.clone();
    let result = async {
        let who = author(&caller)?;
        let id = entry_id(&id)?;
        let (fields, version) = parse_fields(&json_body(body)?, true)?;
        check_business_type(&state, &fields).await?;
        let entry = store(&state)?.kb_update(id, version, fields, who).await?;
        Ok(Json(entry_json(&entry, state.utc_offset_minutes)).into_response())
    };
    let response = answer(result.await, &state);
    state
        .web
        .audited(&caller, "kb.update", &id_text, None, response)
        .await
}

/// `GET /api/v1/kb/{id}/history`: every version, newest (current) first.
pub async fn history(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    let result = async {
        author(&caller)?;
        let id = entry_id(&id)?;
        let versions = store(&state)?.kb_history(id).await?;
        Ok(list_json(&versions, &state))
    };
    answer(result.await, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({"title": "燃气表更换后读数不走", "question": "换表后数字不动？",
               "answer": "新表需要先插卡激活。\r\n听到提示音后即可用气。",
               "tags": "燃气， 抄表、燃气", "business_type": "repair"})
    }

    fn field_of(body: &Value, with_version: bool) -> String {
        match parse_fields(body, with_version) {
            Err(e) => e.field,
            Ok(f) => panic!("accepted: {f:?}"),
        }
    }

    #[test]
    fn a_good_body_is_read_with_lines_and_tags_normalised() {
        let (f, _) = parse_fields(&body(), false).expect("accepted");
        assert_eq!(f.title, "燃气表更换后读数不走");
        assert_eq!(f.answer, "新表需要先插卡激活。\n听到提示音后即可用气。");
        assert_eq!(f.tags, vec!["燃气".to_string(), "抄表".to_string()]);
        assert_eq!(f.business_type.as_deref(), Some("repair"));
        let mut b = body();
        b["tags"] = json!(["a", " b ", ""]);
        b["business_type"] = json!("");
        b["question"] = Value::Null;
        let (f, _) = parse_fields(&b, false).expect("accepted");
        assert_eq!(f.tags, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(f.business_type, None);
        assert_eq!(f.question, "");
    }

    #[test]
    fn each_refusal_names_its_field() {
        let with = |key: &str, value: Value| {
            let mut b = body();
            b[key] = value;
            b
        };
        assert_eq!(field_of(&with("title", json!("  ")), false), "title");
        assert_eq!(
            field_of(&with("title", json!("x".repeat(201))), false),
            "title"
        );
        assert!(parse_fields(&with("title", json!("题".repeat(200))), false).is_ok());
        assert_eq!(field_of(&with("title", json!("a\nb")), false), "title");
        assert_eq!(field_of(&with("title", json!(5)), false), "title");
        assert_eq!(field_of(&with("answer", Value::Null), false), "answer");
        assert_eq!(
            field_of(&with("answer", json!("x".repeat(10_001))), false),
            "answer"
        );
        assert!(parse_fields(&with("answer", json!("答".repeat(10_000))), false).is_ok());
        assert_eq!(field_of(&with("answer", json!("a\u{7}b")), false), "answer");
        assert_eq!(field_of(&with("answer", json!("a\tb")), false), "answer");
        assert_eq!(
            field_of(&with("answer", json!("abc\u{202E}")), false),
            "answer"
        );
        assert_eq!(
            field_of(&with("question", json!("x".repeat(2001))), false),
            "question"
        );
        assert_eq!(
            field_of(&with("question", json!("a\u{0}")), false),
            "question"
        );
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(field_of(&with("tags", json!(many)), false), "tags");
        assert_eq!(
            field_of(&with("tags", json!(["x".repeat(33)])), false),
            "tags"
        );
        assert_eq!(field_of(&with("tags", json!(["a,b"])), false), "tags");
        assert_eq!(field_of(&with("tags", json!([1])), false), "tags");
        assert_eq!(field_of(&with("tags", json!({})), false), "tags");
        assert_eq!(
            field_of(&with("business_type", json!("a\u{1b}[31m")), false),
            "business_type"
        );
        assert_eq!(field_of(&with("author", json!("me")), false), "author");
        assert_eq!(field_of(&json!([1]), false), "body");
        // An edit carries the version it was made from.
        assert_eq!(field_of(&body(), true), "version");
        assert_eq!(field_of(&with("version", json!(0)), true), "version");
        assert_eq!(field_of(&with("version", json!("2")), true), "version");
        assert_eq!(field_of(&with("version", json!(2)), false), "version");
        let (_, v) = parse_fields(&with("version", json!(2)), true).expect("accepted");
        assert_eq!(v, 2);
    }

    #[test]
    fn the_message_says_what_is_wrong() {
        let mut b = body();
        b["answer"] = json!("第一行\u{0008}");
        let e = parse_fields(&b, false).expect_err("refused");
        assert_eq!(
            e.message,
            "character 4 is a control character (U+0008) (only line breaks are allowed)"
        );
        b["answer"] = json!("x".repeat(10_001));
        let e = parse_fields(&b, false).expect_err("refused");
        assert_eq!(e.message, "at most 10000 characters (this has 10001)");
    }

    #[test]
    fn search_parameters() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let q = parse_query(&p(&[("q", " 燃气 "), ("business_type", "repair")])).expect("ok");
        assert_eq!(q.text, "燃气");
        assert_eq!(q.business_type.as_deref(), Some("repair"));
        assert_eq!(q.limit, MAX_RESULTS);
        assert_eq!(parse_query(&p(&[("limit", "5")])).expect("ok").limit, 5);
        for bad in [
            p(&[("limit", "51")]),
            p(&[("limit", "0")]),
            p(&[("q", &"x".repeat(201))]),
            p(&[("q", "a\u{0}")]),
            p(&[("sort", "title")]),
        ] {
            assert!(parse_query(&bad).is_err(), "{bad:?}");
        }
    }
}
