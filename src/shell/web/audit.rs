//! The audit log: one JSON line per change made through the API or a
//! sign-in, in `<cdr.dir>/audit-YYYY-MM-DD.jsonl` (the UTC date):
//!
//! ```json
//! {"at":"2026-12-07T01:02:03.456Z","who":"1001","role":"agent","action":"agent.status",
//!  "target":"1001","result":200,"client":"127.0.0.1:53122","detail":{"status":"break"}}
//! ```
//!
//! Each line is appended and synced to disk before the request is
//! answered (changes are made by people, a few a second at most). A line
//! torn by a crash is sealed with a newline on the next open, as the
//! call records are. Passwords and tokens are never written: `who` is a
//! user id or a token's name.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Value};
use tracing::error;

use crate::config::Role;
use crate::shell::durable::open_sealed;

/// One change, as the log has it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// A user or agent id, or a token's name (for a failed sign-in: the
    /// name typed).
    pub who: String,
    /// `None` for someone not signed in (a failed sign-in).
    pub role: Option<Role>,
    /// `agent.status`, `campaign.create`, `task.outcome`, `call.hold`,
    /// `session.login`, ...
    pub action: String,
    /// What it was done to: an agent, campaign, task or call id.
    pub target: String,
    /// The HTTP status answered.
    pub result: u16,
    pub client: Option<SocketAddr>,
    /// What else says what was done (the new status, the outcome).
    pub detail: Option<Value>,
}

impl AuditEvent {
    /// The line written, newline included, for a change at `at`
    /// (RFC 3339 with milliseconds, UTC).
    pub fn to_line(&self, at: &str) -> String {
        let mut v = json!({
            "at": at,
            "who": self.who,
            "role": self.role.map(Role::as_str),
            "action": self.action,
            "target": self.target,
            "result": self.result,
            "client": self.client.map(|c| c.to_string()),
        });
        if let (Some(detail), Some(obj)) = (&self.detail, v.as_object_mut()) {
            obj.insert("detail".into(), detail.clone());
        }
        let mut line = v.to_string();
        line.push('\n');
        line
    }
}

/// The day's file for a change at `at` (RFC 3339): `audit-2026-12-07.jsonl`.
pub fn file_name(at: &str) -> String {
    format!("audit-{}.jsonl", at.get(..10).unwrap_or("undated"))
}

/// Appends audit lines; shared by the API's handlers.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    /// The day's file, kept open between lines.
    open: Mutex<Option<(String, File)>>,
}

impl AuditLog {
    pub fn new(dir: PathBuf) -> Arc<AuditLog> {
        Arc::new(AuditLog {
            dir,
            open: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `event`, stamped now, and waits until it is on disk. A line
    /// that cannot be written is logged and printed to stderr instead (the
    /// change itself is done: it is not undone for want of its line).
    pub async fn record(self: &Arc<Self>, event: AuditEvent) {
        let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let line = event.to_line(&at);
        let me = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            let result = me.append(&file_name(&at), &line);
            (result, line)
        })
        .await;
        match written {
            Ok((Ok(()), _)) => {}
            Ok((Err(e), line)) => {
                error!(error = %e, dir = %self.dir.display(), "cannot write the audit log; the line goes to stderr");
                eprintln!("{}", line.trim_end());
            }
            Err(e) => error!(error = %e, "the audit writer failed"),
        }
    }

    /// Appends `line` to `name` and syncs it.
    pub fn append(&self, name: &str, line: &str) -> std::io::Result<()> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.as_ref().is_none_or(|(n, _)| n != name) {
            std::fs::create_dir_all(&self.dir)?;
            *open = Some((name.to_string(), open_sealed(&self.dir.join(name))?));
        }
        let result = match open.as_mut() {
            Some((_, file)) => file
                .write_all(line.as_bytes())
                .and_then(|()| file.sync_data()),
            None => Ok(()),
        };
        if result.is_err() {
            // Reopen next time: the file may have moved.
            *open = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            who: "1001".into(),
            role: Some(Role::Agent),
            action: action.into(),
            target: "1001".into(),
            result: 200,
            client: "127.0.0.1:5000".parse().ok(),
            detail: Some(json!({"status": "break"})),
        }
    }

    #[test]
    fn a_line_has_who_what_when_and_the_result() {
        let line = event("agent.status").to_line("2026-12-07T01:02:03.456Z");
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["at"], "2026-12-07T01:02:03.456Z");
        assert_eq!(v["who"], "1001");
        assert_eq!(v["role"], "agent");
        assert_eq!(v["action"], "agent.status");
        assert_eq!(v["target"], "1001");
        assert_eq!(v["result"], 200);
        assert_eq!(v["client"], "127.0.0.1:5000");
        assert_eq!(v["detail"]["status"], "break");
        let failed = AuditEvent {
            role: None,
            detail: None,
            ..event("session.login_failed")
        }
        .to_line("2026-12-07T01:02:03.456Z");
        let v: Value = serde_json::from_str(&failed).expect("JSON");
        assert_eq!(v["role"], Value::Null);
        assert!(v.get("detail").is_none());
        assert_eq!(
            file_name("2026-12-07T01:02:03.456Z"),
            "audit-2026-12-07.jsonl"
        );
    }

    #[test]
    fn lines_are_appended_by_day_after_a_torn_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::new(dir.path().join("cdr"));
        std::fs::create_dir_all(log.dir()).expect("dir");
        let day = log.dir().join("audit-2026-12-07.jsonl");
        std::fs::write(&day, "{\"at\":\"2026-12-07T00:00:00.000Z\",\"wh").expect("torn");
        let a = event("agent.status").to_line("2026-12-07T01:00:00.000Z");
        let b = event("session.logout").to_line("2026-12-08T00:00:00.000Z");
        log.append(&file_name("2026-12-07T01:00:00.000Z"), &a)
            .expect("append");
        log.append(&file_name("2026-12-08T00:00:00.000Z"), &b)
            .expect("append");
        let text = std::fs::read_to_string(&day).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(format!("{}\n", lines[1]), a);
        let next =
            std::fs::read_to_string(log.dir().join("audit-2026-12-08.jsonl")).expect("next day");
        assert_eq!(next, b);
    }

    #[tokio::test]
    async fn record_stamps_the_line_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::new(dir.path().to_path_buf());
        log.record(event("task.outcome")).await;
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(files[0].path()).expect("read");
        let v: Value = serde_json::from_str(text.trim()).expect("JSON");
        assert_eq!(name, file_name(v["at"].as_str().expect("at")));
        assert_eq!(v["action"], "task.outcome");
    }
}
