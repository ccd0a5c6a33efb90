//! A task as `POST /api/v1/tasks` takes it, checked field by field: a bad
//! field is named in the error, never guessed at.

use std::time::Duration;

use serde_json::Value;

use super::order::{self, OrderKind, WorkOrder};
use super::TaskKind;
use crate::campaign::normalise_number;
use crate::campaign::spec::{parse_rfc3339_ms, SpecError};
use crate::forms::parse_duration;

/// Longest note kept with a task.
pub const MAX_NOTE_CHARS: usize = 500;
/// Attempts when the request names none.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Between attempts that did not reach the customer, by default.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(30 * 60);

/// A task asked for through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub kind: TaskKind,
    pub number: String,
    pub queue: String,
    pub due_ms: Option<u64>,
    pub note: String,
    pub business: Option<String>,
    pub owner: Option<String>,
    pub attempts: u32,
    pub retry: Duration,
    pub origin_call: Option<String>,
    /// A work order's fields: a follow-up's repair notice, a complaint's
    /// complaint order.
    pub order: Option<WorkOrder>,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl TaskSpec {
    /// Reads the JSON body. `due` is an RFC 3339 time with its offset;
    /// every kind but `callback` needs one.
    pub fn parse(json: &Value) -> Result<TaskSpec, SpecError> {
        let obj = json
            .as_object()
            .ok_or_else(|| err("body", "expected a JSON object"))?;
        const KNOWN: [&str; 11] = [
            "kind",
            "number",
            "queue",
            "due",
            "note",
            "business",
            "owner",
            "attempts",
            "retry",
            "origin_call",
            "order",
        ];
        if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(err(unknown, "unknown field"));
        }
        let text = |field: &str| -> Result<Option<&str>, SpecError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(err(field, "expected a string")),
            }
        };
        let kind_text = text("kind")?.ok_or_else(|| err("kind", "required"))?;
        let kind = TaskKind::parse(kind_text).ok_or_else(|| {
            err(
                "kind",
                format!("{kind_text:?} is not one of callback, message, follow_up, complaint"),
            )
        })?;
        let raw = text("number")?.ok_or_else(|| err("number", "required"))?;
        if !crate::number::is_number(raw) {
            return Err(err("number", format!("{raw:?} is not a phone number")));
        }
        let number = normalise_number(raw);
        let digits = number.trim_start_matches('+').len();
        if !(3..=20).contains(&digits) {
            return Err(err("number", "expected 3 to 20 digits"));
        }
        let queue = text("queue")?
            .filter(|q| !q.is_empty())
            .ok_or_else(|| err("queue", "required"))?
            .to_string();
        let due_ms = match text("due")? {
            Some(d) => Some(parse_rfc3339_ms(d).ok_or_else(|| {
                err(
                    "due",
                    "expected an RFC 3339 time with its offset, e.g. 2026-12-07T09:00:00+08:00",
                )
            })?),
            None if kind == TaskKind::Callback => None,
            None => return Err(err("due", "required for this kind")),
        };
        let note = text("note")?.unwrap_or_default().to_string();
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(err(
                "note",
                format!("longer than {MAX_NOTE_CHARS} characters"),
            ));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(err("note", "control characters are not allowed"));
        }
        let name = |field: &str| -> Result<Option<String>, SpecError> {
            match text(field)? {
                None => Ok(None),
                Some(s) if is_name(s) => Ok(Some(s.to_string())),
                Some(s) => Err(err(
                    field,
                    format!("{s:?}: letters, digits, '_' and '-' only, at most 64"),
                )),
            }
        };
        let business = name("business")?;
        let owner = name("owner")?;
        let origin_call = name("origin_call")?;
        let attempts = match obj.get("attempts") {
            None | Some(Value::Null) => DEFAULT_ATTEMPTS,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| err("attempts", "expected a whole number from 1 to 10"))?
                as u32,
        };
        let retry = match text("retry")? {
            None => DEFAULT_RETRY,
            Some(r) => parse_duration(r)
                .filter(|d| *d >= Duration::from_secs(1))
                .ok_or_else(|| err("retry", "expected a duration such as \"30m\" or \"2h\""))?,
        };
        let order = match obj.get("order") {
            None | Some(Value::Null) => None,
            Some(Value::Object(fields)) => {
                let order_kind = OrderKind::of_task(kind).ok_or_else(|| {
                    err(
                        "order",
                        format!("a {} task has no work order", kind.as_str()),
                    )
                })?;
                order::refuse_unknown(fields, &[], "order.")?;
                Some(WorkOrder::parse(order_kind, fields, "order.")?)
            }
            Some(_) => return Err(err("order", "expected an object of order fields")),
        };
        Ok(TaskSpec {
            kind,
            number,
            queue,
            due_ms,
            note,
            business,
            owner,
            attempts,
            retry,
            origin_call,
            order,
        })
    }
}

/// A name that may go into a SIP header or a file name as it is.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_follow_up_is_read_with_its_deadline() {
        let spec = TaskSpec::parse(&json!({
            "kind": "follow_up", "number": "138-0000-0001", "queue": "repair",
            "due": "1970-01-01T08:00:01+08:00", "note": "燃气表已更换"
        }))
        .expect("valid");
        assert_eq!(spec.kind, TaskKind::FollowUp);
        assert_eq!(spec.number, "13800000001");
        assert_eq!(spec.due_ms, Some(1000));
        assert_eq!(spec.attempts, DEFAULT_ATTEMPTS);
        assert_eq!(spec.retry, DEFAULT_RETRY);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = json!({"kind": "follow_up", "number": "13800000001", "queue": "repair",
                          "due": "2026-12-07T09:00:00+08:00"});
        let with = |field: &str, value: Value| {
            let mut v = base.clone();
            v[field] = value;
            TaskSpec::parse(&v).expect_err("invalid").field
        };
        assert_eq!(with("kind", json!("visit")), "kind");
        assert_eq!(with("number", json!("anonymous")), "number");
        assert_eq!(with("queue", json!("")), "queue");
        assert_eq!(with("due", json!("tomorrow")), "due");
        assert_eq!(with("note", json!("x".repeat(501))), "note");
        assert_eq!(with("owner", json!("a b")), "owner");
        assert_eq!(with("attempts", json!(0)), "attempts");
        assert_eq!(with("retry", json!("soon")), "retry");
        assert_eq!(with("colour", json!(1)), "colour");
        assert_eq!(with("order", json!("repair")), "order");
        assert_eq!(
            with("order", json!({"customer_name": "王", "address": "x"})),
            "order.fault"
        );
        let mut callback = base.clone();
        callback["kind"] = json!("callback");
        callback["order"] = json!({"customer_name": "王", "subject": "x"});
        assert_eq!(
            TaskSpec::parse(&callback).expect_err("no order").field,
            "order"
        );
        let mut no_due = base.clone();
        no_due.as_object_mut().map(|o| o.remove("due"));
        assert_eq!(TaskSpec::parse(&no_due).expect_err("due").field, "due");
        no_due["kind"] = json!("callback");
        assert!(TaskSpec::parse(&no_due).is_ok(), "a callback needs no due");
    }
}
