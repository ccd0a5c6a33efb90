//! Voice-notice campaigns (通知通告): a prompt played to a list of numbers
//! through a trunk, on the telecom standard's retry rule (first call 1
//! minute after the trigger; after a failure again 10 minutes, 1 hour and
//! 3 hours later; then stop), inside a calling window.
//!
//! - [`spec`]: a campaign as the API takes it, checked field by field.
//! - [`window`]: when calls may be placed (hours, days, skipped dates,
//!   make-up workdays).
//! - [`scheduler`]: the pure machine that says which number to dial when;
//!   the engine makes each decision durable in the store before acting.
//!
//! What a result means is decided here once ([`AttemptResult`]): which
//! end a number's calls, which are retried, which count as success.

pub mod scheduler;
pub mod spec;
pub mod window;

use serde::{Deserialize, Serialize};

pub use scheduler::Scheduler;
pub use spec::CampaignSpec;

/// A campaign's id, given by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CampaignId(pub u64);

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Running,
    Paused,
    Cancelled,
    /// Every number reached a final state.
    Completed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Cancelled => "cancelled",
            CampaignState::Completed => "completed",
        }
    }

    pub fn parse(text: &str) -> Option<CampaignState> {
        Some(match text {
            "running" => CampaignState::Running,
            "paused" => CampaignState::Paused,
            "cancelled" => CampaignState::Cancelled,
            "completed" => CampaignState::Completed,
            _ => return None,
        })
    }
}

/// Where one number of a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberState {
    /// No attempt yet.
    Pending,
    /// An attempt is being written or is on the line.
    Dialing,
    /// The last attempt failed in a way worth retrying; the next is due.
    WaitingRetry,
    /// Heard and confirmed (or heard to the end, with no confirm key).
    Confirmed,
    /// Gave up: every attempt failed, or the callee declined.
    Failed,
    /// The number does not exist (404, 484, 604).
    Invalid,
    /// Pressed the opt-out key, or on the do-not-call list.
    OptedOut,
    /// The campaign was cancelled before this number finished.
    Cancelled,
}

/// Every number state, in the order views list them.
pub const NUMBER_STATES: [NumberState; 8] = [
    NumberState::Pending,
    NumberState::Dialing,
    NumberState::WaitingRetry,
    NumberState::Confirmed,
    NumberState::Failed,
    NumberState::Invalid,
    NumberState::OptedOut,
    NumberState::Cancelled,
];

impl NumberState {
    pub fn as_str(self) -> &'static str {
        match self {
            NumberState::Pending => "pending",
            NumberState::Dialing => "dialing",
            NumberState::WaitingRetry => "waiting_retry",
            NumberState::Confirmed => "confirmed",
            NumberState::Failed => "failed",
            NumberState::Invalid => "invalid",
            NumberState::OptedOut => "opted_out",
            NumberState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<NumberState> {
        Some(match text {
            "pending" => NumberState::Pending,
            "dialing" => NumberState::Dialing,
            "waiting_retry" => NumberState::WaitingRetry,
            "confirmed" => NumberState::Confirmed,
            "failed" => NumberState::Failed,
            "invalid" => NumberState::Invalid,
            "opted_out" => NumberState::OptedOut,
            "cancelled" => NumberState::Cancelled,
            _ => return None,
        })
    }

    /// No more calls to this number.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            NumberState::Pending | NumberState::Dialing | NumberState::WaitingRetry
        )
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// Answered, and the callee pressed the confirm key.
    Confirmed,
    /// Answered and heard to the end (no confirm key configured).
    Heard,
    /// Answered, but not confirmed (hung up, or no key in time).
    Unconfirmed,
    /// Pressed the opt-out key.
    OptedOut,
    /// 486, 600.
    Busy,
    /// Rang out (our ring timeout and CANCEL), or 480, 408.
    NoAnswer,
    /// 603: the callee declined.
    Rejected,
    /// 404, 484, 604: no such number.
    Invalid,
    /// 500, 502, 503, 504, no response at all, or anything else the
    /// network failed with.
    Congestion,
    /// The engine stopped during the attempt (a restart found it
    /// written but never finished): its outcome is unknown.
    Interrupted,
}

impl AttemptResult {
    /// A final SIP status of an unanswered attempt, classified. 0 means
    /// no response at all (timer B).
    pub fn of_status(status: u16) -> AttemptResult {
        match status {
            486 | 600 => AttemptResult::Busy,
            408 | 480 | 487 => AttemptResult::NoAnswer,
            603 => AttemptResult::Rejected,
            404 | 484 | 604 => AttemptResult::Invalid,
            _ => AttemptResult::Congestion,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Confirmed => "confirmed",
            AttemptResult::Heard => "heard",
            AttemptResult::Unconfirmed => "unconfirmed",
            AttemptResult::OptedOut => "opted_out",
            AttemptResult::Busy => "busy",
            AttemptResult::NoAnswer => "no_answer",
            AttemptResult::Rejected => "rejected",
            AttemptResult::Invalid => "invalid",
            AttemptResult::Congestion => "congestion",
            AttemptResult::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<AttemptResult> {
        [
            AttemptResult::Confirmed,
            AttemptResult::Heard,
            AttemptResult::Unconfirmed,
            AttemptResult::OptedOut,
            AttemptResult::Busy,
            AttemptResult::NoAnswer,
            AttemptResult::Rejected,
            AttemptResult::Invalid,
            AttemptResult::Congestion,
            AttemptResult::Interrupted,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// What the result does to the number: a final state, or `None` when
    /// the attempt is worth retrying (busy, no answer, congestion, an
    /// answer without confirmation, an interrupted attempt).
    pub fn final_state(self) -> Option<NumberState> {
        match self {
            AttemptResult::Confirmed | AttemptResult::Heard => Some(NumberState::Confirmed),
            AttemptResult::OptedOut => Some(NumberState::OptedOut),
            AttemptResult::Invalid => Some(NumberState::Invalid),
            AttemptResult::Rejected => Some(NumberState::Failed),
            AttemptResult::Unconfirmed
            | AttemptResult::Busy
            | AttemptResult::NoAnswer
            | AttemptResult::Congestion
            | AttemptResult::Interrupted => None,
        }
    }
}

/// One attempt at one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first call.
    pub number: u32,
    /// Wall-clock ms when it was written, before its INVITE left.
    pub at_ms: u64,
    pub ended_ms: Option<u64>,
    pub result: Option<AttemptResult>,
    /// The final SIP status (200 when answered; 0 when none came).
    pub sip_status: u16,
    /// The engine's record id of the attempt's call.
    pub call_id: Option<String>,
}

/// One number of a campaign and its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub number: String,
    pub state: NumberState,
    pub attempts: Vec<Attempt>,
    /// Wall-clock ms when the next attempt is due (pending or waiting).
    pub due_ms: Option<u64>,
}

/// A campaign as the store keeps it and the engine runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: CampaignId,
    pub spec: CampaignSpec,
    pub state: CampaignState,
    /// Wall-clock ms it was created (the trigger of its first calls).
    pub created_ms: u64,
    pub targets: Vec<Target>,
}

impl Campaign {
    /// A new campaign's targets: each number due `first_after` after the
    /// trigger (its `start_at`, or its creation).
    pub fn new(id: CampaignId, spec: CampaignSpec, created_ms: u64) -> Campaign {
        let trigger = spec.start_at_ms.unwrap_or(created_ms).max(created_ms);
        let due = trigger + spec.first_after.as_millis() as u64;
        let targets = spec
            .numbers
            .iter()
            .map(|n| Target {
                number: n.clone(),
                state: NumberState::Pending,
                attempts: Vec::new(),
                due_ms: Some(due),
            })
            .collect();
        Campaign {
            id,
            spec,
            state: CampaignState::Running,
            created_ms,
            targets,
        }
    }
}

impl Campaign {
    /// How many numbers are in each state.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for t in &self.targets {
            *counts.entry(t.state.as_str()).or_insert(0) += 1;
        }
        counts
    }

    /// The campaign as the API shows it: its spec, state and counts, and
    /// with `numbers`, each number with its state and attempts.
    pub fn to_json(&self, numbers: bool) -> serde_json::Value {
        use crate::cdr::format_ms;
        let mut v = self.spec.to_json();
        v["id"] = self.id.0.into();
        v["state"] = self.state.as_str().into();
        v["created_at"] = format_ms(self.created_ms).into();
        v["total"] = self.targets.len().into();
        v["counts"] = serde_json::json!(self.counts());
        if numbers {
            v["numbers"] = self
                .targets
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "number": t.number,
                        "state": t.state.as_str(),
                        "next_at": t.due_ms.map(format_ms),
                        "attempts": t.attempts.iter().map(|a| serde_json::json!({
                            "attempt": a.number,
                            "at": format_ms(a.at_ms),
                            "ended_at": a.ended_ms.map(format_ms),
                            "result": a.result.map(|r| r.as_str()),
                            "sip_status": a.sip_status,
                            "call_id": a.call_id,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
        }
        v
    }
}

/// A number as it is dialled: digits, a leading + kept; spaces, dashes
/// and brackets dropped.
pub fn normalise_number(text: &str) -> String {
    let t = text.trim();
    let plus = t.starts_with('+');
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if plus {
        format!("+{digits}")
    } else {
        digits
    }
}

/// Numbers are compared (the do-not-call list, a notice's number calling
/// back) by the one rule every part of hotline uses.
pub use crate::number::number_key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_and_results_decide_retries() {
        assert_eq!(AttemptResult::of_status(486), AttemptResult::Busy);
        assert_eq!(AttemptResult::of_status(600), AttemptResult::Busy);
        assert_eq!(AttemptResult::of_status(480), AttemptResult::NoAnswer);
        assert_eq!(AttemptResult::of_status(408), AttemptResult::NoAnswer);
        assert_eq!(AttemptResult::of_status(603), AttemptResult::Rejected);
        for s in [404, 484, 604] {
            assert_eq!(AttemptResult::of_status(s), AttemptResult::Invalid);
        }
        for s in [500, 502, 503, 504, 0, 403] {
            assert_eq!(
                AttemptResult::of_status(s),
                AttemptResult::Congestion,
                "{s}"
            );
        }
        assert_eq!(AttemptResult::Busy.final_state(), None);
        assert_eq!(AttemptResult::Unconfirmed.final_state(), None);
        assert_eq!(
            AttemptResult::Invalid.final_state(),
            Some(NumberState::Invalid)
        );
        assert_eq!(
            AttemptResult::Rejected.final_state(),
            Some(NumberState::Failed)
        );
        for r in [AttemptResult::Heard, AttemptResult::Interrupted] {
            assert_eq!(AttemptResult::parse(r.as_str()), Some(r));
        }
        for s in [NumberState::WaitingRetry, NumberState::OptedOut] {
            assert_eq!(NumberState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn numbers_are_dialled_as_written_and_compared_without_the_country_code() {
        assert_eq!(normalise_number(" 138-0013-8000 "), "13800138000");
        assert_eq!(normalise_number("+86 (138) 0013 8000"), "+8613800138000");
        for same in [
            "13800138000",
            "+86 138 0013 8000",
            "008613800138000",
            "8613800138000",
        ] {
            assert_eq!(number_key(same), "13800138000", "{same}");
        }
        // A landline is one number with or without the country code.
        assert_eq!(number_key("+86 10 8888 0000"), "01088880000");
        assert_eq!(number_key("010-8888-0000"), "01088880000");
    }
}
