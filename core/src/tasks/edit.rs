//! Editing a task (`PATCH /api/v1/tasks/{id}`): its note, its deadline
//! and its work order's fields, by two people at once without either
//! edit being lost. Each edit names the [`version`](super::Task::version)
//! its editor saw; an edit of any other version is refused with the task
//! as it now is ([`EditError::Stale`]), so the second editor merges and
//! saves again instead of overwriting the first. An accepted edit bumps
//! the version.
//!
//! [`TaskEdit::parse`] checks the body field by field; the book applies
//! it ([`TaskBook::edit`](super::TaskBook::edit)), checking the order
//! whole against the task's kind, and can undo it if the store failed to
//! write it ([`TaskBook::undo_edit`](super::TaskBook::undo_edit)).

use serde_json::{Map, Value};
use thiserror::Error;

use super::order::{self, OrderKind, WorkOrder};
use super::spec::MAX_NOTE_CHARS;
use super::{Task, TaskKind};
use crate::campaign::spec::{parse_rfc3339_ms, SpecError};

/// The fields an edit may have.
pub const EDIT_FIELDS: [&str; 4] = ["version", "note", "due", "order"];

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// An edit as the API takes it: the version its editor saw, and what to
/// change (absent: left as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEdit {
    pub version: u64,
    pub note: Option<String>,
    pub due_ms: Option<u64>,
    /// Order fields to set (a null clears one); merged into the task's
    /// order and checked whole.
    pub order: Option<Map<String, Value>>,
}

/// A note: at most [`MAX_NOTE_CHARS`], line breaks allowed, no other
/// control characters nor bidirectional overrides.
pub fn check_note(field: &str, note: &str) -> Result<(), SpecError> {
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(err(
            field,
            format!("longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if note
        .chars()
        .any(|c| (c.is_control() && c != '\n') || bidi(c))
    {
        return Err(err(field, "control characters are not allowed"));
    }
    Ok(())
}

impl TaskEdit {
    /// Reads the JSON body: `{"version": 3, "note"?, "due"?, "order"?}`.
    /// `due` is an RFC 3339 time with its offset; `order` an object of
    /// order fields. Unknown fields are refused, named.
    pub fn parse(json: &Value) -> Result<TaskEdit, SpecError> {
        let obj = json
            .as_object()
            .ok_or_else(|| err("body", "expected a JSON object"))?;
        if let Some(unknown) = obj.keys().find(|k| !EDIT_FIELDS.contains(&k.as_str())) {
            return Err(err(unknown, "unknown field (version, note, due, order)"));
        }
        let version = match obj.get("version") {
            None | Some(Value::Null) => {
                return Err(err(
                    "version",
                    "required: the version of the task you opened (its \"version\")",
                ))
            }
            Some(v) => v
                .as_u64()
                .ok_or_else(|| err("version", "expected a whole number"))?,
        };
        let note = match obj.get("note") {
            None => None,
            Some(Value::Null) => Some(String::new()),
            Some(Value::String(s)) => {
                let s = s.replace("\r\n", "\n").replace('\r', "\n");
                check_note("note", &s)?;
                Some(s)
            }
            Some(_) => return Err(err("note", "expected a string")),
        };
        let due_ms = match obj.get("due") {
            None => None,
            Some(Value::String(d)) => Some(parse_rfc3339_ms(d).ok_or_else(|| {
                err(
                    "due",
                    "expected an RFC 3339 time with its offset, e.g. 2026-12-07T09:00:00+08:00",
                )
            })?),
            Some(_) => {
                return Err(err(
                    "due",
                    "expected an RFC 3339 time with its offset, e.g. 2026-12-07T09:00:00+08:00",
                ))
            }
        };
        let order = match obj.get("order") {
            None => None,
            Some(Value::Object(o)) => {
                order::refuse_unknown(o, &[], "order.")?;
                // Each field on its own now; the whole order once merged.
                for (k, v) in o {
                    match v {
                        Value::Null => {}
                        Value::String(s) => {
                            order::one_line(&format!("order.{k}"), s, 200)?;
                        }
                        _ => return Err(err(&format!("order.{k}"), "expected a string")),
                    }
                }
                Some(o.clone())
            }
            Some(_) => return Err(err("order", "expected an object of order fields")),
        };
        if note.is_none() && due_ms.is_none() && order.is_none() {
            return Err(err("body", "nothing to change: give note, due or order"));
        }
        Ok(TaskEdit {
            version,
            note,
            due_ms,
            order,
        })
    }
}

/// The fields an edit may change, as they were or became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditableFields {
    pub note: String,
    pub due_ms: Option<u64>,
    pub order: Option<WorkOrder>,
}

impl EditableFields {
    pub fn of(task: &Task) -> EditableFields {
        EditableFields {
            note: task.note.clone(),
            due_ms: task.due_ms,
            order: task.order.clone(),
        }
    }
}

/// An accepted edit: the fields before and after, and the names of those
/// that changed (`note`, `due`, `order`), for the audit log and an undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub before: EditableFields,
    pub after: EditableFields,
    pub changed: Vec<&'static str>,
}

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    #[error("no task {0}")]
    Unknown(u64),
    #[error("task {id} is not {who}'s: an agent edits only the tasks they own")]
    NotOwner { id: u64, who: String },
    /// Someone changed the task after the editor opened it.
    #[error(
        "task {} was changed after version {expected} was opened (now version {})",
        current.id.0,
        current.version
    )]
    Stale { expected: u64, current: Box<Task> },
    #[error("task {} is {}: a closed task is not edited", .0.id.0, .0.state.as_str())]
    Closed(Box<Task>),
    #[error("{0}")]
    Invalid(SpecError),
}

/// What `edit` makes of `task`'s fields (nothing is changed yet), or why
/// it may not. `owner`: the editor is an agent, who may edit only tasks
/// they own.
pub fn apply(task: &Task, edit: &TaskEdit, owner: Option<&str>) -> Result<Edited, EditError> {
    if let Some(who) = owner {
        if task.owner.as_deref() != Some(who) {
            return Err(EditError::NotOwner {
                id: task.id.0,
                who: who.to_string(),
            });
        }
    }
    if task.version != edit.version {
        return Err(EditError::Stale {
            expected: edit.version,
            current: Box::new(task.clone()),
        });
    }
    if task.state.is_final() {
        return Err(EditError::Closed(Box::new(task.clone())));
    }
    let before = EditableFields::of(task);
    let mut after = before.clone();
    if let Some(note) = &edit.note {
        if task.kind == TaskKind::Message && *note != task.note {
            return Err(EditError::Invalid(err(
                "note",
                "a message's note names its recording: it is not edited",
            )));
        }
        after.note = note.clone();
    }
    if let Some(due) = edit.due_ms {
        if task.kind == TaskKind::Callback {
            return Err(EditError::Invalid(err(
                "due",
                "a callback keeps its caller's place: it has no deadline",
            )));
        }
        after.due_ms = Some(due);
    }
    if let Some(change) = &edit.order {
        let kind = OrderKind::of_task(task.kind).ok_or_else(|| {
            EditError::Invalid(err(
                "order",
                format!("a {} task has no work order", task.kind.as_str()),
            ))
        })?;
        let merged = WorkOrder::merged(task.order.as_ref(), kind, change, "order.")
            .map_err(EditError::Invalid)?;
        after.order = Some(merged);
    }
    let mut changed = Vec::new();
    if after.note != before.note {
        changed.push("note");
    }
    if after.due_ms != before.due_ms {
        changed.push("due");
    }
    if after.order != before.order {
        changed.push("order");
    }
    Ok(Edited {
        before,
        after,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_edit_names_each_bad_field() {
        let field = |v: Value| TaskEdit::parse(&v).expect_err("invalid").field;
        assert_eq!(field(json!({"note": "x"})), "version");
        assert_eq!(field(json!({"version": "3", "note": "x"})), "version");
        assert_eq!(field(json!({"version": 3})), "body", "nothing to change");
        assert_eq!(
            field(json!({"version": 3, "note": "x".repeat(501)})),
            "note"
        );
        assert_eq!(field(json!({"version": 3, "note": "a\u{7}"})), "note");
        assert_eq!(field(json!({"version": 3, "due": "tomorrow"})), "due");
        assert_eq!(field(json!({"version": 3, "due": 5})), "due");
        assert_eq!(field(json!({"version": 3, "order": "x"})), "order");
        assert_eq!(
            field(json!({"version": 3, "order": {"colour": "red"}})),
            "order.colour"
        );
        assert_eq!(
            field(json!({"version": 3, "order": {"address": "a\r\nb"}})),
            "order.address"
        );
        assert_eq!(field(json!({"version": 3, "owner": "1002"})), "owner");
        let ok = TaskEdit::parse(&json!({"version": 3, "note": "a\r\nb",
                                         "due": "1970-01-01T08:00:02+08:00"}))
        .expect("valid");
        assert_eq!(
            (ok.version, ok.note.as_deref(), ok.due_ms),
            (3, Some("a\nb"), Some(2000))
        );
    }
}
