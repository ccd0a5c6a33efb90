//! Per-agent figures: who handled the connected calls, and how.

use serde::Serialize;

use crate::cdr::{CallRecord, HangupSide};
use crate::sla::{self, HANDLED_WITHIN_MS};

/// Exact sums for one agent over the calls they were connected to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentTally {
    /// The number callers hear; the smallest seen, so that the result does
    /// not depend on record order if it changed.
    pub number: Option<String>,
    pub calls: u64,
    pub talk_ms: u64,
    pub wrap_up_ms: u64,
    pub handled_within_3min: u64,
    pub hung_up_first: u64,
}

impl AgentTally {
    /// Counts a connected call (`bridged_at` present) in.
    pub fn add(&mut self, r: &CallRecord) {
        if let Some(n) = r.agent_number.as_ref().filter(|n| !n.is_empty()) {
            if self.number.as_ref().is_none_or(|have| n < have) {
                self.number = Some(n.clone());
            }
        }
        self.calls += 1;
        let talk = r.talk_ms.unwrap_or(0);
        self.talk_ms += talk;
        self.wrap_up_ms += r.wrap_up_ms.unwrap_or(0);
        if talk <= HANDLED_WITHIN_MS {
            self.handled_within_3min += 1;
        }
        if r.hangup_side == Some(HangupSide::Agent) {
            self.hung_up_first += 1;
        }
    }

    pub fn row(&self, agent: &str) -> AgentRow {
        AgentRow {
            agent: agent.to_string(),
            number: self.number.clone(),
            calls: self.calls,
            aht_ms: sla::aht_ms(self.talk_ms, self.wrap_up_ms, self.calls),
            mean_talk_ms: sla::mean_ms(self.talk_ms, self.calls),
            mean_wrap_up_ms: sla::mean_ms(self.wrap_up_ms, self.calls),
            talk_ms: self.talk_ms,
            wrap_up_ms: self.wrap_up_ms,
            handled_within_3min: self.handled_within_3min,
            hung_up_first: self.hung_up_first,
        }
    }
}

/// One agent's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    pub agent: String,
    pub number: Option<String>,
    pub calls: u64,
    /// Mean of talk + wrap-up.
    pub aht_ms: Option<u64>,
    pub mean_talk_ms: Option<u64>,
    pub mean_wrap_up_ms: Option<u64>,
    /// Totals.
    pub talk_ms: u64,
    pub wrap_up_ms: u64,
    pub handled_within_3min: u64,
    pub hung_up_first: u64,
}
