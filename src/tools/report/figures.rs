//! The SLA figures of one cell (an interval, a group, or everything): a
//! [`Tally`] of exact integer counts and sums that records are added to one
//! at a time, in any order, and [`Figures`], the ratios and means derived
//! from it at output time. What counts and how it divides is
//! [`crate::sla`], shared with the live view; definitions: docs/metrics.md.

use serde::Serialize;

use crate::cdr::{CallRecord, HangupSide, Outcome};
use crate::sla::{self, QueueResult};
use crate::tools::records::parse_time_ms;

pub use crate::sla::{Thresholds, WaitHistogram, HANDLED_WITHIN_MS};

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
    /// Left the queue asking to be called back (`queue_result`
    /// `callback`): the callback task keeps their place.
    pub callbacks: u64,
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
    /// Callers asked to rate the service, those who did, the satisfied
    /// (1 or 2) among them, and the sum of ratings.
    pub survey_offered: u64,
    pub rated: u64,
    pub satisfied: u64,
    pub rating_sum: u64,
    /// Agent-answered calls put on hold, and the time on hold (part of
    /// the talk time).
    pub held_calls: u64,
    pub hold_ms: u64,
    /// Calls transferred at least once.
    pub transferred: u64,
    /// Calls from a caller who called within the repeat window before
    /// (`repeat_of`).
    pub repeat_contacts: u64,
}

/// Whether a record is not a call to the hotline at all
/// ([`sla::is_offered`]).
pub fn is_invalid(record: &CallRecord) -> bool {
    !sla::is_offered(record.outcome)
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
        if r.time_to_answer_ms.is_some_and(|ms| t.in_time(ms)) {
            self.engine_answered_within_t += 1;
        }
        if r.outcome == Outcome::SilentHangup {
            self.silent_calls += 1;
        }
        if r.repeat_of.is_some() {
            self.repeat_contacts += 1;
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
        let w = wait.unwrap_or(0);
        if let Some(bridged) = r.bridged_at.as_deref() {
            self.agent_answered += 1;
            self.answered_wait_ms += w;
            let from_arrival = parse_time_ms(bridged)
                .zip(parse_time_ms(&r.invite_at))
                .map(|(b, i)| b.saturating_sub(i));
            let judged = t.judge(QueueResult::Answered, w, from_arrival);
            if judged.in_time_from_queue_entry {
                self.answered_within_t_from_queue += 1;
            }
            if judged.in_time_from_arrival {
                self.answered_within_t_from_arrival += 1;
            }
            self.answered_from_arrival_ms += from_arrival.unwrap_or(0);
            let talk = r.talk_ms.unwrap_or(0);
            self.talk_ms += talk;
            self.wrap_up_ms += r.wrap_up_ms.unwrap_or(0);
            if talk <= HANDLED_WITHIN_MS {
                self.handled_within_3min += 1;
            }
            if r.hangup_side == Some(HangupSide::Agent) {
                self.agent_hung_up_first += 1;
            }
            if r.survey_offered {
                self.survey_offered += 1;
            }
            if let Some(rating) = r.satisfaction {
                self.rated += 1;
                self.rating_sum += u64::from(rating);
                if sla::is_satisfied(rating) {
                    self.satisfied += 1;
                }
            }
            if r.holds > 0 {
                self.held_calls += 1;
                self.hold_ms += r.hold_ms.unwrap_or(0);
            }
            // Handing the caller to the survey moves them to no one.
            if r.transfers.iter().any(|t| t.to != "survey") {
                self.transferred += 1;
            }
            return;
        }
        // Asked for an agent, never connected: lost unless a message was
        // left or a callback booked (the promised call back). Counted once
        // even when the engine did not answer (it always did, to queue the
        // call).
        if r.message_file.is_none() && r.callback_task.is_none() && engine_answered {
            self.lost += 1;
        }
        // "answered" without a bridge, or a label this version never
        // writes, is counted apart so the results add up.
        match r.queue_result.as_deref().and_then(QueueResult::parse) {
            Some(QueueResult::Abandoned) => {
                if t.is_short_abandon(QueueResult::Abandoned, w) {
                    self.short_abandons += 1;
                } else {
                    self.abandoned += 1;
                }
            }
            Some(QueueResult::Timeout) => self.timeouts += 1,
            Some(QueueResult::Overflow) => self.overflows += 1,
            Some(QueueResult::ExitKey) => self.exit_key += 1,
            Some(QueueResult::Empty) => self.empty += 1,
            Some(QueueResult::Refused) => self.refused += 1,
            Some(QueueResult::Callback) => self.callbacks += 1,
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
        self.callbacks += o.callbacks;
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
        self.survey_offered += o.survey_offered;
        self.rated += o.rated;
        self.satisfied += o.satisfied;
        self.rating_sum += o.rating_sum;
        self.held_calls += o.held_calls;
        self.hold_ms += o.hold_ms;
        self.transferred += o.transferred;
        self.repeat_contacts += o.repeat_contacts;
    }

    /// The figures, ratios and means computed now.
    pub fn figures(&self) -> Figures {
        let waited = sla::waited(self.asked_for_agent, self.short_abandons);
        let answered = self.agent_answered;
        let percentile = |p| self.waits.percentile_within(p, self.longest_wait_ms);
        Figures {
            offered: self.offered,
            invalid: self.invalid,
            engine_answered: self.engine_answered,
            connection_rate: sla::connection_rate(self.engine_answered, self.offered),
            engine_answered_within_t: self.engine_answered_within_t,
            engine_answer_rate_within_t: sla::engine_answer_rate_within_t(
                self.engine_answered_within_t,
                self.offered,
            ),
            asked_for_agent: self.asked_for_agent,
            agent_answered: answered,
            manual_connection_rate: sla::manual_connection_rate(answered, self.asked_for_agent),
            answered_within_t_from_arrival: self.answered_within_t_from_arrival,
            service_level_from_arrival: sla::service_level(
                self.answered_within_t_from_arrival,
                waited,
            ),
            answered_within_t_from_queue: self.answered_within_t_from_queue,
            service_level_from_queue: sla::service_level(self.answered_within_t_from_queue, waited),
            asterisk_service_level: sla::asterisk_service_level(
                self.answered_within_t_from_queue,
                answered,
            ),
            asa_ms: sla::asa_ms(self.answered_wait_ms, answered),
            asa_from_arrival_ms: sla::asa_ms(self.answered_from_arrival_ms, answered),
            abandoned: self.abandoned,
            abandon_rate: sla::abandon_rate(self.abandoned, waited),
            short_abandons: self.short_abandons,
            timeouts: self.timeouts,
            overflows: self.overflows,
            exit_key: self.exit_key,
            empty: self.empty,
            refused: self.refused,
            callbacks: self.callbacks,
            other_queue_results: self.other_queue_results,
            lost: self.lost,
            call_loss_rate: sla::call_loss_rate(self.lost, self.offered),
            repeat_contacts: self.repeat_contacts,
            repeat_contact_rate: sla::repeat_contact_rate(self.repeat_contacts, self.offered),
            aht_ms: sla::aht_ms(self.talk_ms, self.wrap_up_ms, answered),
            mean_talk_ms: sla::mean_ms(self.talk_ms, answered),
            mean_wrap_up_ms: sla::mean_ms(self.wrap_up_ms, answered),
            handled_within_3min: self.handled_within_3min,
            handled_within_3min_rate: sla::handled_within_3min_rate(
                self.handled_within_3min,
                answered,
            ),
            longest_wait_ms: (self.asked_for_agent > 0).then_some(self.longest_wait_ms),
            wait_p50_s: percentile(50),
            wait_p80_s: percentile(80),
            wait_p90_s: percentile(90),
            wait_p95_s: percentile(95),
            wait_p99_s: percentile(99),
            silent_calls: self.silent_calls,
            agent_hung_up_first: self.agent_hung_up_first,
            held_calls: self.held_calls,
            mean_hold_ms: sla::mean_ms(self.hold_ms, self.held_calls),
            transferred: self.transferred,
            survey_offered: self.survey_offered,
            rated: self.rated,
            survey_response_rate: sla::survey_response_rate(self.rated, self.survey_offered),
            satisfaction_rate: sla::satisfaction_rate(self.satisfied, self.rated),
            mean_rating: (self.rated > 0).then(|| self.rating_sum as f64 / self.rated as f64),
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
    /// Left the queue for a callback (`queue_result` `callback`).
    pub callbacks: u64,
    pub other_queue_results: u64,
    pub lost: u64,
    pub call_loss_rate: Option<f64>,
    /// Offered calls with `repeat_of`, and their share of offered calls
    /// (target: at most [`sla::REPEAT_CONTACT_TARGET`]).
    pub repeat_contacts: u64,
    pub repeat_contact_rate: Option<f64>,
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
    pub held_calls: u64,
    /// Mean time on hold of the calls put on hold.
    pub mean_hold_ms: Option<u64>,
    pub transferred: u64,
    pub survey_offered: u64,
    pub rated: u64,
    pub survey_response_rate: Option<f64>,
    /// Ratings of 1 or 2 / ratings.
    pub satisfaction_rate: Option<f64>,
    /// 1 (very satisfied) to 5.
    pub mean_rating: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queued, answered by the engine, left the queue with `result`.
    fn left(result: &str) -> CallRecord {
        CallRecord {
            outcome: Outcome::Completed,
            answered_at: Some("2026-11-25T02:00:00.000Z".into()),
            queued_at: Some("2026-11-25T02:00:05.000Z".into()),
            wait_ms: Some(60_000),
            queue_result: Some(result.into()),
            ..CallRecord::default()
        }
    }

    #[test]
    fn a_callback_is_neither_an_abandon_nor_lost() {
        let t = Thresholds::default();
        let mut tally = Tally::default();
        tally.add(
            &CallRecord {
                callback_task: Some(4),
                ..left("callback")
            },
            &t,
        );
        tally.add(&left("abandoned"), &t);
        let f = tally.figures();
        assert_eq!((f.asked_for_agent, f.callbacks, f.abandoned), (2, 1, 1));
        assert_eq!(f.other_queue_results, 0);
        assert_eq!(
            f.lost, 1,
            "the abandon only: a callback is a promised call back"
        );
        // Still in the abandon rate's denominator, as not answered in time.
        assert_eq!(f.abandon_rate, Some(0.5));
    }

    #[test]
    fn repeat_contacts_are_offered_calls_with_repeat_of() {
        let t = Thresholds::default();
        let mut tally = Tally::default();
        for repeat in [true, false, false, false] {
            tally.add(
                &CallRecord {
                    outcome: Outcome::Completed,
                    repeat_of: repeat.then(|| "hl-1-1".to_string()),
                    ..CallRecord::default()
                },
                &t,
            );
        }
        let f = tally.figures();
        assert_eq!((f.repeat_contacts, f.offered), (1, 4));
        assert_eq!(f.repeat_contact_rate, Some(0.25));
        let mut merged = Tally::default();
        merged.merge(&tally);
        merged.merge(&tally);
        assert_eq!(merged.figures().repeat_contacts, 2);
    }
}
