//! Call-detail records: one JSON line per call, whatever its end. The
//! schema is documented in docs/cdr.md; bump `RECORD_VERSION` on any change
//! that is not a pure addition.

use serde::{Deserialize, Serialize};

use crate::media::g711::Codec;

pub const RECORD_VERSION: u32 = 1;

/// How the call ended, from the operator's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// The engine answered (200 OK).
    Answered,
    /// The caller hung up (CANCEL or BYE) before the answer.
    Cancelled,
    /// Refused with a final error response (busy, bad request, no codec).
    #[default]
    Rejected,
    /// Answered or being answered, then broke (lost ACK, dead media).
    Failed,
}

/// What happened in the call flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The caller was served and the engine said goodbye.
    Completed,
    /// The silent-caller routine ran to its end.
    SilentHangup,
    /// The caller hung up after the answer.
    CallerHangup,
    /// The caller gave up while it was ringing.
    CallerCancelled,
    /// Call or rate limit reached: 503.
    OverCapacity,
    /// No common codec or unusable SDP: 488.
    NoCommonCodec,
    /// A malformed or unsupported INVITE: 400, 416, 420 or 483.
    #[default]
    BadRequest,
    /// No IVR plan for the dialled number: 404.
    UnknownNumber,
    /// From an address not on the trunk allow-list: 403.
    Forbidden,
    /// The 2xx was never acknowledged (timer H).
    NoAck,
    /// No RTP from the caller for the inactivity timeout.
    MediaTimeout,
    /// No RTP port could be opened for the call.
    MediaFailed,
    /// The engine was shut down during the call.
    Shutdown,
    /// An outbound call that was never answered (`attempt_result` says
    /// why: busy, no answer, invalid number, ...).
    Unanswered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    Caller,
    Engine,
    /// The agent, in a bridged call.
    Agent,
}

/// One call's record. Timestamps are UTC, RFC 3339 with milliseconds. The
/// default is a call refused before anything happened.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallRecord {
    pub version: u32,
    /// The engine's own id for the call.
    pub call_id: String,
    pub sip_call_id: String,
    pub caller_number: String,
    pub caller_name: Option<String>,
    pub dialled_number: String,
    /// "udp:ip:port", "tcp:ip:port" or "tls:ip:port" of the INVITE's sender.
    pub source: String,
    pub invite_at: String,
    pub ringing_at: Option<String>,
    pub answered_at: Option<String>,
    pub media_start_at: Option<String>,
    pub media_end_at: Option<String>,
    pub ended_at: String,
    /// From INVITE received to 200 OK sent.
    pub time_to_answer_ms: Option<u64>,
    /// From answer to end (talk time with the engine).
    pub duration_ms: Option<u64>,
    pub disposition: Disposition,
    pub outcome: Outcome,
    pub hangup_side: Option<HangupSide>,
    /// Final status the engine sent for the INVITE.
    pub sip_status: u16,
    pub codec: Option<Codec>,
    /// Keys the caller pressed, in order.
    pub digits: String,
    /// Whether speech was detected from the caller.
    pub caller_spoke: bool,
    /// Prompt language the call ended in.
    #[serde(default)]
    pub language: Option<String>,
    /// IVR nodes in the order the caller went through them.
    #[serde(default)]
    pub ivr_path: Vec<String>,
    /// From answer (media start) to leaving the IVR (queue or hang-up).
    #[serde(default)]
    pub time_in_ivr_ms: Option<u64>,
    /// Business type chosen in the IVR (consultation, repair, ...).
    #[serde(default)]
    pub business_type: Option<String>,
    /// Digits collected by collect nodes, by variable (account numbers...).
    #[serde(default)]
    pub collected: std::collections::BTreeMap<String, String>,
    /// From the caller directory: group, business or public.
    #[serde(default)]
    pub customer_class: Option<String>,
    #[serde(default)]
    pub vip: bool,
    #[serde(default)]
    pub customer_name: Option<String>,
    /// The voice message left, relative to the messages folder.
    #[serde(default)]
    pub message_file: Option<String>,
    /// A message shorter than `messages.min_length` was begun and not
    /// kept: how long it was (ms from the beep to `#` or the hang-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_discarded_ms: Option<u64>,
    /// The ACD queue the IVR sent the call to.
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub queued_at: Option<String>,
    #[serde(default)]
    pub first_offer_at: Option<String>,
    /// The agent's phone answered.
    #[serde(default)]
    pub agent_answered_at: Option<String>,
    /// The caller was connected to the agent (after the agent's number was
    /// announced).
    #[serde(default)]
    pub bridged_at: Option<String>,
    /// The agent's after-call work (the queue's wrap-up).
    #[serde(default)]
    pub wrap_up_ms: Option<u64>,
    /// From joining the queue to the bridge (or to leaving unanswered).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// Time connected to agents, hold included: from the bridge to the
    /// agent's hang-up (or the end); over a transfer, every agent's part.
    #[serde(default)]
    pub talk_ms: Option<u64>,
    /// The agent who served the caller (the last, after transfers).
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    /// How many times the call was offered to agents.
    #[serde(default)]
    pub offers: u32,
    /// answered, abandoned (hung up while waiting), timeout, overflow,
    /// empty (no agent left), exit_key or refused.
    #[serde(default)]
    pub queue_result: Option<String>,
    /// `outbound` for a call hotline placed (a notice, a callback);
    /// absent for a call it received. Outbound records stay out of the
    /// inbound figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The campaign an outbound attempt belongs to, or that an inbound
    /// caller received a notice from (a caller who calls back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_name: Option<String>,
    /// Outbound: which attempt at this number (1 for the first call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Outbound: how the attempt ended (confirmed, heard, unconfirmed,
    /// opted_out, busy, no_answer, rejected, invalid, congestion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_result: Option<String>,
    /// Outbound: the trunk it went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<String>,
    /// Times the agent put the caller on hold, and the time on hold (part
    /// of `talk_ms`, so of AHT).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub holds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u64>,
    /// The caller was asked to rate the service (the agent hung up first
    /// on a queue with a survey), and the rating, 1 (best) to 5.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub survey_offered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<u8>,
    /// Each transfer of the call, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfers: Vec<TransferRecord>,
    /// With more than one agent (a transfer): each agent's talk time, in
    /// order; they add up to `talk_ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_parts: Vec<AgentPartRecord>,
    /// The call's recording (stereo WAV: caller left, agent right),
    /// relative to the recordings folder; `recording_error` when the
    /// recording had to stop (a full disk) while the call went on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_error: Option<String>,
    /// The caller asked to be called back: the callback's task id (their
    /// queue_result is `callback`, not an abandon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_task: Option<u64>,
    /// A call placed to work a task: its id and kind (`callback`,
    /// `message`, `follow_up`, `complaint`), and the record id of the call
    /// the task came from. `attempt` and `attempt_result` say which try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_call: Option<String>,
    /// The caller called within `tasks.repeat_window` before: the earlier
    /// call's record id (a repeat contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<String>,
    /// What the agent saved on the desk while the call was up: the
    /// business type they chose and a summary (also in `notes-*.jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_business_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Follow-up or message tasks this call left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks_created: Vec<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One agent's part of a transferred call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentPartRecord {
    pub agent: String,
    pub talk_ms: u64,
}

/// One transfer of a call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TransferRecord {
    /// The agent who transferred the call.
    pub from: Option<String>,
    /// `queue:<name>`, `agent:<id>` or `number:<digits>`.
    pub to: String,
    pub at: String,
    /// answered, queued, no_answer, busy, failed.
    pub result: Option<String>,
}

impl CallRecord {
    /// A call hotline placed, not one it received.
    pub fn is_outbound(&self) -> bool {
        self.direction.as_deref() == Some("outbound")
    }
}

impl Outcome {
    /// Not a call to the hotline: malformed requests, unknown numbers and
    /// calls from outside the trunk allow-list (scanners, misdials). The
    /// report, the planner and the live view all leave these out of
    /// "offered".
    pub fn is_invalid(self) -> bool {
        matches!(
            self,
            Outcome::BadRequest | Outcome::UnknownNumber | Outcome::Forbidden
        )
    }
}

impl CallRecord {
    /// One line of JSON Lines, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|e| {
            // Serializing plain strings and numbers cannot fail; keep a
            // parseable marker line rather than lose the record silently.
            format!("{{\"version\":{RECORD_VERSION},\"error\":\"{e}\"}}")
        });
        line.push('\n');
        line
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_ms(epoch_ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(epoch_ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The daily file a record belongs to: `YYYY-MM-DD.jsonl` by its end time.
pub fn daily_file_name(ended_at: &str) -> String {
    format!("{}.jsonl", ended_at.get(..10).unwrap_or("unknown-date"))
}

/// Reads records from JSON Lines text, skipping (and counting) lines that
/// do not parse, such as one torn by a crash.
pub fn read_records(text: &str) -> (Vec<CallRecord>, usize) {
    let mut skipped = 0;
    let records = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<CallRecord>(l) {
            Ok(r) => Some(r),
            Err(_) => {
                skipped += 1;
                None
            }
        })
        .collect();
    (records, skipped)
}

/// Milliseconds since the Unix epoch of a record timestamp (RFC 3339, as
/// the engine writes them); `None` if it is not one.
pub fn parse_time_ms(text: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(text).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_file_names() {
        let s = format_ms(1_764_041_498_123);
        assert_eq!(s, "2025-11-25T03:31:38.123Z");
        assert_eq!(daily_file_name(&s), "2025-11-25.jsonl");
    }

    #[test]
    fn torn_lines_are_skipped() {
        let (r, skipped) = read_records("{\"version\":1,\"call\n\n");
        assert!(r.is_empty());
        assert_eq!(skipped, 1);
    }
}
