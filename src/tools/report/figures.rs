//! The SLA figures of one cell (an interval, a group, or everything): a
//! [`Tally`] of exact integer counts and sums that records are added to one
//! at a time, in any order, and [`Figures`], the ratios and means derived
//! from it at output time. Definitions: docs/metrics.md.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cdr::{CallRecord, HangupSide, Outcome};
use crate::tools::records::parse_time_ms;

/// "Handled within 3 minutes": the standards' target talk time.
pub const HANDLED_WITHIN_MS: u64 = 180_000;

/// The thresholds the figures depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// T of "answered within T" (the standards' 15 s).
    pub service_level_ms: u64,
    /// Callers who abandon sooner than this are short abandons (excluded
    /// from the abandon-rate and service-level denominators); `None`: off.
    pub short_abandon_ms: Option<u64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            service_level_ms: 15_000,
            short_abandon_ms: None,
        }
    }
}

/// Waits in whole seconds (rounded up) and how many calls waited that
/// long: memory grows with the number of distinct seconds, not calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WaitHistogram {
    counts: BTreeMap<u64, u64>,
}

impl WaitHistogram {
    pub fn add(&mut self, wait_ms: u64) {
        *self.counts.entry(wait_ms.div_ceil(1000)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &WaitHistogram) {
        for (&secs, &n) in &other.counts {
            *self.counts.entry(secs).or_default() += n;
        }
    }

    pub fn len(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// (seconds, calls) in increasing seconds.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts.iter().map(|(&s, &n)| (s, n))
    }

    /// Nearest-rank percentile `p` (1..=100) in whole seconds: the smallest
    /// wait that at least p% of the calls did not exceed.
    pub fn percentile(&self, p: u64) -> Option<u64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        // rank = ceil(p/100 * n), at least 1.
        let rank = (p * n).div_ceil(100).max(1);
        let mut seen = 0;
        for (secs, count) in self.iter() {
            seen += count;
            if seen >= rank {
                return Some(secs);
            }
        }
        None
    }
}

/// Exact counts and sums over the records added; ratios come later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub offered: u64,
    pub invalid: u64,
    pub engine_answered: u64,
    pub engine_answered_within_t: u64,
    pub asked_for_agent: u64,
    pub agent_answered: u64,
    pub answered_within_t_from_arrival: u64,
    pub answered_within_t_from_queue: u64,
    pub short_abandons: u64,
    /// Abandons, short abandons excluded.
    pub abandoned: u64,
    pub timeouts: u64,
    pub overflows: u64,
    pub exit_key: u64,
    pub empty: u64,
    pub refused: u64,
    /// Asked for an agent, not connected, and none of the results above
    /// (such as a caller hanging up while the agent's number is read out).
    pub other_queue_results: u64,
    pub lost: u64,
    pub silent_calls: u64,
    pub agent_hung_up_first: u64,
    pub handled_within_3min: u64,
    /// Sum of `wait_ms` over agent-answered calls.
    pub answered_wait_ms: u64,
    /// Sum of `bridged_at - invite_at` over agent-answered calls.
    pub answered_from_arrival_ms: u64,
    /// Sums over agent-answered calls.
    pub talk_ms: u64,
    pub wrap_up_ms: u64,
    /// Max `wait_ms` over calls that asked for an agent.
    pub longest_wait_ms: u64,
    pub waits: WaitHistogram,
}

/// Whether a record is a call to the hotline at all: malformed requests,
/// unknown numbers and calls from outside the trunk allow-list (scanners)
/// are not.
pub fn is_invalid(record: &CallRecord) -> bool {
    record.outcome.is_invalid()
}

impl Tally {
    /// Counts one record in.
    pub fn add(&mut self, r: &CallRecord, t: &Thresholds) {
        if is_invalid(r) {
            self.invalid += 1;
            return;
        }
        self.offered += 1;
        let engine_answered = r.answered_at.is_some();
        if engine_answered {
            self.engine_answered += 1;
        } else {
            // 503, failures before the answer, callers giving up while ringing.
            self.lost += 1;
        }
        if r.time_to_answer_ms
            .is_some_and(|ms| ms <= t.service_level_ms)
        {
            self.engine_answered_within_t += 1;
        }
        if r.outcome == Outcome::SilentHangup {
            self.silent_calls += 1;
        }
        if r.queued_at.is_none() {
            return;
        }
        self.asked_for_agent += 1;
        let wait = r.wait_ms;
        if let Some(w) = wait {
            self.longest_wait_ms = self.longest_wait_ms.max(w);
            self.waits.add(w);
        }
        let within = |ms: u64| ms <= t.service_level_ms;
        if let Some(bridged) = r.bridged_at.as_deref() {
            self.agent_answered += 1;
            let w = wait.unwrap_or(0);
            self.answered_wait_ms += w;
            if within(w) {
                self.answered_within_t_from_queue += 1;
            }
            // An unreadable timestamp cannot prove an answer in time.
            let from_arrival = parse_time_ms(bridged)
                .zip(parse_time_ms(&r.invite_at))
                .map(|(b, i)| b.saturating_sub(i));
            if let Some(ms) = from_arrival {
                self.answered_from_arrival_ms += ms;
                if within(ms) {
                    self.answered_within_t_from_arrival += 1;
                }
            }
            let talk = r.talk_ms.unwrap_or(0);
            self.talk_ms += talk;
            self.wrap_up_ms += r.wrap_up_ms.unwrap_or(0);
            if talk <= HANDLED_WITHIN_MS {
                self.handled_within_3min += 1;
            }
            if r.hangup_side == Some(HangupSide::Agent) {
                self.agent_hung_up_first += 1;
            }
            return;
        }
        // Asked for an agent, never connected: lost unless a message was
        // left (the promised call back). Counted once even when the engine
        // did not answer (it always did, to queue the call).
        if r.message_file.is_none() && engine_answered {
            self.lost += 1;
        }
        match r.queue_result.as_deref() {
            Some("abandoned") => {
                let short = t
                    .short_abandon_ms
                    .is_some_and(|limit| wait.unwrap_or(0) < limit);
                if short {
                    self.short_abandons += 1;
                } else {
                    self.abandoned += 1;
                }
            }
            Some("timeout") => self.timeouts += 1,
            Some("overflow") => self.overflows += 1,
            Some("exit_key") => self.exit_key += 1,
            Some("empty") => self.empty += 1,
            Some("refused") => self.refused += 1,
            _ => self.other_queue_results += 1,
        }
    }

    /// Adds another tally in: tallies of disjoint record sets merge into
    /// the tally of their union.
    pub fn merge(&mut self, o: &Tally) {
        self.offered += o.offered;
        self.invalid += o.invalid;
        self.engine_answered += o.engine_answered;
        self.engine_answered_within_t += o.engine_answered_within_t;
        self.asked_for_agent += o.asked_for_agent;
        self.agent_answered += o.agent_answered;
        self.answered_within_t_from_arrival += o.answered_within_t_from_arrival;
        self.answered_within_t_from_queue += o.answered_within_t_from_queue;
        self.short_abandons += o.short_abandons;
        self.abandoned += o.abandoned;
        self.timeouts += o.timeouts;
        self.overflows += o.overflows;
        self.exit_key += o.exit_key;
        self.empty += o.empty;
        self.refused += o.refused;
        self.other_queue_results += o.other_queue_results;
        self.lost += o.lost;
        self.silent_calls += o.silent_calls;
        self.agent_hung_up_first += o.agent_hung_up_first;
        self.handled_within_3min += o.handled_within_3min;
        self.answered_wait_ms += o.answered_wait_ms;
        self.answered_from_arrival_ms += o.answered_from_arrival_ms;
        self.talk_ms += o.talk_ms;
        self.wrap_up_ms += o.wrap_up_ms;
        self.longest_wait_ms = self.longest_wait_ms.max(o.longest_wait_ms);
        self.waits.merge(&o.waits);
    }

    /// The figures, ratios and means computed now.
    pub fn figures(&self) -> Figures {
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        // Rounded to the nearest millisecond, in integers.
        let mean = |sum: u64, n: u64| (n > 0).then(|| (sum + n / 2) / n);
        let waited = self.asked_for_agent - self.short_abandons;
        let answered = self.agent_answered;
        Figures {
            offered: self.offered,
            invalid: self.invalid,
            engine_answered: self.engine_answered,
            connection_rate: ratio(self.engine_answered, self.offered),
            engine_answered_within_t: self.engine_answered_within_t,
            engine_answer_rate_within_t: ratio(self.engine_answered_within_t, self.offered),
            asked_for_agent: self.asked_for_agent,
            agent_answered: answered,
            manual_connection_rate: ratio(answered, self.asked_for_agent),
            answered_within_t_from_arrival: self.answered_within_t_from_arrival,
            service_level_from_arrival: ratio(self.answered_within_t_from_arrival, waited),
            answered_within_t_from_queue: self.answered_within_t_from_queue,
            service_level_from_queue: ratio(self.answered_within_t_from_queue, waited),
            asterisk_service_level: ratio(self.answered_within_t_from_queue, answered),
            asa_ms: mean(self.answered_wait_ms, answered),
            asa_from_arrival_ms: mean(self.answered_from_arrival_ms, answered),
            abandoned: self.abandoned,
            abandon_rate: ratio(self.abandoned, waited),
            short_abandons: self.short_abandons,
            timeouts: self.timeouts,
            overflows: self.overflows,
            exit_key: self.exit_key,
            empty: self.empty,
            refused: self.refused,
            other_queue_results: self.other_queue_results,
            lost: self.lost,
            call_loss_rate: ratio(self.lost, self.offered),
            aht_ms: mean(self.talk_ms + self.wrap_up_ms, answered),
            mean_talk_ms: mean(self.talk_ms, answered),
            mean_wrap_up_ms: mean(self.wrap_up_ms, answered),
            handled_within_3min: self.handled_within_3min,
            handled_within_3min_rate: ratio(self.handled_within_3min, answered),
            longest_wait_ms: (self.asked_for_agent > 0).then_some(self.longest_wait_ms),
            wait_p50_s: self.waits.percentile(50),
            wait_p80_s: self.waits.percentile(80),
            wait_p90_s: self.waits.percentile(90),
            wait_p95_s: self.waits.percentile(95),
            wait_p99_s: self.waits.percentile(99),
            silent_calls: self.silent_calls,
            agent_hung_up_first: self.agent_hung_up_first,
        }
    }
}

/// The figures of one cell. Ratios are decimals (0.95), `None` when their
/// denominator is zero; means are whole milliseconds; wait percentiles
/// whole seconds. Field names are the CSV column and JSON key names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub offered: u64,
    pub invalid: u64,
    pub engine_answered: u64,
    pub connection_rate: Option<f64>,
    pub engine_answered_within_t: u64,
    pub engine_answer_rate_within_t: Option<f64>,
    pub asked_for_agent: u64,
    pub agent_answered: u64,
    pub manual_connection_rate: Option<f64>,
    pub answered_within_t_from_arrival: u64,
    pub service_level_from_arrival: Option<f64>,
    pub answered_within_t_from_queue: u64,
    pub service_level_from_queue: Option<f64>,
    pub asterisk_service_level: Option<f64>,
    pub asa_ms: Option<u64>,
    pub asa_from_arrival_ms: Option<u64>,
    pub abandoned: u64,
    pub abandon_rate: Option<f64>,
    pub short_abandons: u64,
    pub timeouts: u64,
    pub overflows: u64,
    pub exit_key: u64,
    pub empty: u64,
    pub refused: u64,
    pub other_queue_results: u64,
    pub lost: u64,
    pub call_loss_rate: Option<f64>,
    pub aht_ms: Option<u64>,
    pub mean_talk_ms: Option<u64>,
    pub mean_wrap_up_ms: Option<u64>,
    pub handled_within_3min: u64,
    pub handled_within_3min_rate: Option<f64>,
    pub longest_wait_ms: Option<u64>,
    pub wait_p50_s: Option<u64>,
    pub wait_p80_s: Option<u64>,
    pub wait_p90_s: Option<u64>,
    pub wait_p95_s: Option<u64>,
    pub wait_p99_s: Option<u64>,
    pub silent_calls: u64,
    pub agent_hung_up_first: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_on_whole_seconds() {
        let mut h = WaitHistogram::default();
        // 1 ms rounds up to 1 s, 1000 ms is 1 s, 1001 ms is 2 s; 0 ms is 0 s.
        for ms in [0, 1, 1000, 1001, 9_500] {
            h.add(ms);
        }
        // Seconds sorted: 0, 1, 1, 2, 10 (n = 5).
        // p50: rank ceil(2.5) = 3 -> 1 s; p80: rank 4 -> 2 s;
        // p90: rank ceil(4.5) = 5 -> 10 s; p99: rank 5 -> 10 s.
        assert_eq!(h.percentile(50), Some(1));
        assert_eq!(h.percentile(80), Some(2));
        assert_eq!(h.percentile(90), Some(10));
        assert_eq!(h.percentile(99), Some(10));
        assert_eq!(h.len(), 5);
        assert_eq!(WaitHistogram::default().percentile(50), None);
    }
}
