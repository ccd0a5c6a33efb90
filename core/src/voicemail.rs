//! Voice messages (留言) as data: the record of one message, its id, and
//! the index's line format. The shell writes the WAV and appends the line
//! (`hotline::shell::voicemail_store`); `hotline messages list` reads them.

use serde::{Deserialize, Serialize};

/// The index file's name inside the messages folder.
pub const INDEX_FILE: &str = "index.jsonl";

/// Sample rate of message recordings (narrowband telephony).
pub const SAMPLE_RATE: u32 = 8000;

/// One voice message, as a line of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// e.g. `msg-<epoch ms>-<n>`; see [`message_id`].
    pub id: String,
    /// The engine's call id (matches the CDR's `call_id`).
    pub call_id: String,
    pub caller_number: String,
    pub caller_name: Option<String>,
    pub dialled_number: String,
    pub business_type: Option<String>,
    pub customer_class: Option<String>,
    /// RFC 3339 UTC with milliseconds.
    pub recorded_at: String,
    pub duration_ms: u64,
    /// `pound`, `silence`, `max_length` or `hangup`.
    pub ended_by: String,
    /// Path of the WAV relative to the messages folder.
    pub file: String,
}

/// A message id: `msg-<epoch ms>-<n>`.
pub fn message_id(epoch_ms: u64, n: u64) -> String {
    format!("msg-{epoch_ms}-{n}")
}

/// Parses the index's bytes, skipping (and counting) lines that are not a
/// message (one torn by a crash).
pub fn parse_index(bytes: &[u8]) -> (Vec<MessageRecord>, usize) {
    let mut records = Vec::new();
    let mut skipped = 0;
    // Line by line as bytes: a torn line may end inside a multi-byte
    // character, which must not make the whole file unreadable.
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<MessageRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) => skipped += 1,
        }
    }
    (records, skipped)
}
