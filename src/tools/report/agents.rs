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
    pub survey_offered: u64,
    pub rated: u64,
    pub satisfied: u64,
}

impl AgentTally {
    /// Counts a connected call (`bridged_at` present) in, with this
    /// agent's `talk_ms` of it; `last`: they had the caller last (a
    /// transfer's earlier agents did not), so the hang-up, the survey and
    /// the record's agent number are theirs.
    pub fn add(&mut self, r: &CallRecord, talk_ms: u64, last: bool) {
        if let Some(n) = r.agent_number.as_ref().filter(|n| last && !n.is_empty()) {
            if self.number.as_ref().is_none_or(|have| n < have) {
                self.number = Some(n.clone());
            }
        }
        self.calls += 1;
        let talk = talk_ms;
        self.talk_ms += talk;
        self.wrap_up_ms += r.wrap_up_ms.unwrap_or(0);
        if talk <= HANDLED_WITHIN_MS {
            self.handled_within_3min += 1;
        }
        if !last {
            return;
        }
        if r.hangup_side == Some(HangupSide::Agent) {
            self.hung_up_first += 1;
        }
        if r.survey_offered {
            self.survey_offered += 1;
        }
        if let Some(rating) = r.satisfaction {
            self.rated += 1;
            if sla::is_satisfied(rating) {
                self.satisfied += 1;
            }
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
            survey_offered: self.survey_offered,
            rated: self.rated,
            satisfaction_rate: sla::satisfaction_rate(self.satisfied, self.rated),
        }
    }
}

/// One agent's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Callers asked to rate this agent's service, those who did, and
    /// the share rating it 1 or 2.
    pub survey_offered: u64,
    pub rated: u64,
    pub satisfaction_rate: Option<f64>,
}
