//! Callbacks and task calls in `hotline report`: the callbacks callers
//! asked for and what became of them, the calls placed to work tasks per
//! kind, and the repeat-contact rate against its target.
//!
//! A callback's request (the inbound call, `callback_task`) and its
//! attempts (outbound records with `task`) are separate records, joined
//! here by task id, so unlike the cells' tallies the state holds one small
//! entry per callback task seen (as the outbound figures hold one per
//! number). Records may come in any order. Deadlines ("done on time") are
//! not in the records, only in the task store, so they are not here.
//! Definitions: docs/metrics.md, "Callbacks and tasks".

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::cdr::CallRecord;
use crate::sla;
use crate::tasks::TASK_KINDS;
use crate::tools::records::parse_time_ms;

use super::figures::Figures;

/// What the records say about one callback task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CallbackTrace {
    /// The requesting call's `ended_at` (the earliest, should there be
    /// two), when that record is among those read.
    requested_ms: Option<u64>,
    /// An attempt with `attempt_result` `answered` was seen ...
    answered: bool,
    /// ... and the earliest `answered_at` of those attempts.
    answered_ms: Option<u64>,
    /// The last attempt: the highest `attempt`, then the latest
    /// `ended_at`; with its `attempt_result`.
    last: Option<(u32, String, String)>,
}

impl CallbackTrace {
    fn failed(&self) -> bool {
        !self.answered
            && self
                .last
                .as_ref()
                .is_some_and(|(_, _, result)| matches!(result.as_str(), "not_reached" | "failed"))
    }

    /// From the request to the customer's answer, when both are known.
    fn time_to_answer_ms(&self) -> Option<u64> {
        let (asked, answered) = (self.requested_ms?, self.answered_ms?);
        Some(answered.saturating_sub(asked))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KindTally {
    attempts: u64,
    answered: u64,
}

/// Feed inbound records to [`TasksTally::add_inbound`] and task calls to
/// [`TasksTally::add_attempt`]; [`TasksTally::figures`] at the end.
#[derive(Debug, Clone, Default)]
pub struct TasksTally {
    /// Inbound records with `callback_task`.
    requested: u64,
    callbacks: HashMap<u64, CallbackTrace>,
    /// By `task_kind`.
    kinds: BTreeMap<String, KindTally>,
}

impl TasksTally {
    /// An inbound record: a callback request when it has `callback_task`.
    pub fn add_inbound(&mut self, r: &CallRecord) {
        let Some(id) = r.callback_task else { return };
        self.requested += 1;
        let trace = self.callbacks.entry(id).or_default();
        if let Some(ended) = parse_time_ms(&r.ended_at) {
            trace.requested_ms = Some(trace.requested_ms.map_or(ended, |t| t.min(ended)));
        }
    }

    /// An outbound record with `task`: one attempt at a task.
    pub fn add_attempt(&mut self, r: &CallRecord) {
        let kind = r.task_kind.as_deref().unwrap_or("unknown");
        let result = r.attempt_result.as_deref().unwrap_or("unknown");
        let answered = result == "answered";
        let k = match self.kinds.get_mut(kind) {
            Some(k) => k,
            None => self.kinds.entry(kind.to_string()).or_default(),
        };
        k.attempts += 1;
        if answered {
            k.answered += 1;
        }
        let (Some(id), "callback") = (r.task, kind) else {
            return;
        };
        let trace = self.callbacks.entry(id).or_default();
        if answered {
            trace.answered = true;
            if let Some(at) = r.answered_at.as_deref().and_then(parse_time_ms) {
                trace.answered_ms = Some(trace.answered_ms.map_or(at, |t| t.min(at)));
            }
        }
        let this = (
            r.attempt.unwrap_or(0),
            r.ended_at.clone(),
            result.to_string(),
        );
        if trace.last.as_ref().is_none_or(|last| this > *last) {
            trace.last = Some(this);
        }
    }

    /// The figures, with the repeat contacts of `total` (the inbound
    /// figures over the whole period).
    pub fn figures(&self, total: &Figures) -> TaskFigures {
        let completed = self.callbacks.values().filter(|t| t.answered).count() as u64;
        let failed = self.callbacks.values().filter(|t| t.failed()).count() as u64;
        let mut times: Vec<u64> = self
            .callbacks
            .values()
            .filter_map(CallbackTrace::time_to_answer_ms)
            .collect();
        times.sort_unstable();
        // The four kinds always, in their order; any other label after.
        let known = TASK_KINDS.map(|k| k.as_str());
        let mut task_calls: Vec<TaskKindRow> = known
            .iter()
            .map(|k| kind_row(k, self.kinds.get(*k).copied().unwrap_or_default()))
            .collect();
        task_calls.extend(
            self.kinds
                .iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(k, t)| kind_row(k, *t)),
        );
        let rate = total.repeat_contact_rate;
        TaskFigures {
            callbacks_requested: self.requested,
            callbacks_completed: completed,
            callbacks_failed: failed,
            callbacks_timed: times.len() as u64,
            callback_answer_p50_ms: nearest_rank(&times, 50),
            callback_answer_p90_ms: nearest_rank(&times, 90),
            task_calls,
            repeat_contacts: total.repeat_contacts,
            offered: total.offered,
            repeat_contact_rate: rate,
            repeat_contact_target: sla::REPEAT_CONTACT_TARGET,
            repeat_contact_above_target: rate.is_some_and(|r| r > sla::REPEAT_CONTACT_TARGET),
        }
    }
}

fn kind_row(kind: &str, t: KindTally) -> TaskKindRow {
    TaskKindRow {
        kind: kind.to_string(),
        attempts: t.attempts,
        answered: t.answered,
        answer_rate: sla::ratio(t.answered, t.attempts),
    }
}

/// Nearest-rank percentile `p` of `sorted` (ascending): the smallest value
/// that at least p% of the values do not exceed (rank ⌈p·n/100⌉).
fn nearest_rank(sorted: &[u64], p: u64) -> Option<u64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

/// The callbacks and tasks section (JSON `tasks`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFigures {
    /// Inbound records with `callback_task`.
    pub callbacks_requested: u64,
    /// Callback tasks with an attempt answered (`attempt_result`
    /// `answered`).
    pub callbacks_completed: u64,
    /// Callback tasks with no answered attempt whose last attempt was
    /// `not_reached` or `failed`.
    pub callbacks_failed: u64,
    /// Completed callbacks whose request is in the records too: how many
    /// times the percentiles below are taken over.
    pub callbacks_timed: u64,
    /// From the request (the requesting call's `ended_at`) to the
    /// customer's answer (`answered_at` of the first answered attempt):
    /// nearest-rank median and p90, ms.
    pub callback_answer_p50_ms: Option<u64>,
    pub callback_answer_p90_ms: Option<u64>,
    /// Per task kind: calls placed and answered.
    pub task_calls: Vec<TaskKindRow>,
    /// The inbound total's repeat contacts, offered calls and rate, and
    /// whether the rate is above the target.
    pub repeat_contacts: u64,
    pub offered: u64,
    pub repeat_contact_rate: Option<f64>,
    pub repeat_contact_target: f64,
    pub repeat_contact_above_target: bool,
}

/// Calls placed to work tasks of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskKindRow {
    /// `callback`, `message`, `follow_up`, `complaint` (or the record's
    /// own label; `unknown` when it has none).
    pub kind: String,
    /// Records with this `task_kind`: one per attempt.
    pub attempts: u64,
    /// Of those, `attempt_result` `answered`.
    pub answered: u64,
    pub answer_rate: Option<f64>,
}

impl TaskFigures {
    /// Nothing about callbacks, tasks or repeat contacts in the records.
    pub fn is_empty(&self) -> bool {
        self.callbacks_requested == 0
            && self.callbacks_completed == 0
            && self.callbacks_failed == 0
            && self.repeat_contacts == 0
            && self.task_calls.iter().all(|k| k.attempts == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::format_ms;

    const T0: u64 = 1_795_572_000_000;
    const MIN: u64 = 60_000;

    /// The inbound call that booked callback `task`, ending at `ended`.
    fn request(task: u64, ended: u64) -> CallRecord {
        CallRecord {
            call_id: format!("in{task}"),
            invite_at: format_ms(T0 + ended - MIN),
            ended_at: format_ms(T0 + ended),
            queue_result: Some("callback".into()),
            callback_task: Some(task),
            ..CallRecord::default()
        }
    }

    /// Attempt `n` at `task` of `kind`, ending `result`; the customer
    /// answered at `answered` when given.
    fn attempt(task: u64, kind: &str, n: u32, result: &str, answered: Option<u64>) -> CallRecord {
        let start = T0 + 100 * MIN * u64::from(n);
        CallRecord {
            call_id: format!("out{task}-{n}"),
            direction: Some("outbound".into()),
            invite_at: format_ms(start),
            ended_at: format_ms(start + MIN),
            answered_at: answered.map(|a| format_ms(T0 + a)),
            task: Some(task),
            task_kind: Some(kind.into()),
            attempt: Some(n),
            attempt_result: Some(result.into()),
            ..CallRecord::default()
        }
    }

    fn feed(records: &[CallRecord]) -> TaskFigures {
        let mut t = TasksTally::default();
        for r in records {
            if r.is_outbound() {
                t.add_attempt(r);
            } else {
                t.add_inbound(r);
            }
        }
        let total = crate::report::Tally::default().figures();
        t.figures(&total)
    }

    #[test]
    fn callbacks_completed_failed_and_time_to_answer() {
        let records = vec![
            // 1: asked at 0, reached on the 2nd attempt at 10 min.
            request(1, 0),
            attempt(1, "callback", 1, "not_reached", None),
            attempt(1, "callback", 2, "answered", Some(10 * MIN)),
            // 2: asked at 5 min, answered at once at 25 min: 20 min.
            request(2, 5 * MIN),
            attempt(2, "callback", 1, "answered", Some(25 * MIN)),
            // 3: asked, two attempts, the last failed: failed.
            request(3, 0),
            attempt(3, "callback", 1, "not_reached", None),
            attempt(3, "callback", 2, "failed", None),
            // 4: the agent left on the last attempt: neither.
            request(4, 0),
            attempt(4, "callback", 1, "not_reached", None),
            attempt(4, "callback", 2, "agent_left", None),
            // 5: asked, not tried yet.
            request(5, 0),
            // 6: answered, asked before these records: completed, not timed.
            attempt(6, "callback", 1, "answered", Some(70 * MIN)),
            // 7: asked at 0, answered at 60 min.
            request(7, 0),
            attempt(7, "callback", 3, "answered", Some(60 * MIN)),
            attempt(7, "callback", 1, "not_reached", None),
        ];
        let f = feed(&records);
        assert_eq!(f.callbacks_requested, 6);
        assert_eq!(f.callbacks_completed, 4, "1, 2, 6, 7");
        assert_eq!(f.callbacks_failed, 1, "3");
        // Timed: 1 (10 min), 2 (20 min), 7 (60 min). Nearest rank: p50
        // = ceil(1.5) = 2nd = 20 min; p90 = ceil(2.7) = 3rd = 60 min.
        assert_eq!(f.callbacks_timed, 3);
        assert_eq!(f.callback_answer_p50_ms, Some(20 * MIN));
        assert_eq!(f.callback_answer_p90_ms, Some(60 * MIN));
        let cb = &f.task_calls[0];
        assert_eq!(
            (cb.kind.as_str(), cb.attempts, cb.answered),
            ("callback", 10, 4)
        );
        assert_eq!(cb.answer_rate, Some(0.4));
    }

    #[test]
    fn an_answer_after_a_failure_is_completed_whatever_the_order() {
        let mut records = vec![
            request(1, 0),
            attempt(1, "callback", 1, "failed", None),
            attempt(1, "callback", 2, "answered", Some(30 * MIN)),
        ];
        let a = feed(&records);
        records.reverse();
        let b = feed(&records);
        assert_eq!(a, b);
        assert_eq!((a.callbacks_completed, a.callbacks_failed), (1, 0));
        assert_eq!(a.callback_answer_p50_ms, Some(30 * MIN));
    }

    #[test]
    fn task_calls_per_kind_always_list_the_four_kinds() {
        let f = feed(&[
            attempt(10, "follow_up", 1, "answered", Some(MIN)),
            attempt(11, "follow_up", 1, "not_reached", None),
            attempt(12, "complaint", 1, "answered", Some(MIN)),
            attempt(13, "survey", 1, "answered", Some(MIN)),
        ]);
        let kinds: Vec<(&str, u64, u64)> = f
            .task_calls
            .iter()
            .map(|k| (k.kind.as_str(), k.attempts, k.answered))
            .collect();
        assert_eq!(
            kinds,
            [
                ("callback", 0, 0),
                ("message", 0, 0),
                ("follow_up", 2, 1),
                ("complaint", 1, 1),
                ("survey", 1, 1),
            ]
        );
        assert_eq!(f.task_calls[0].answer_rate, None);
        assert_eq!(f.callbacks_completed, 0, "not callbacks");
        assert!(!f.is_empty());
        assert!(feed(&[]).is_empty());
    }

    #[test]
    fn repeat_contacts_are_flagged_above_five_percent() {
        let mut t = crate::report::Tally::default();
        let thresholds = crate::report::Thresholds::default();
        for i in 0..20 {
            let r = CallRecord {
                outcome: crate::cdr::Outcome::Completed,
                repeat_of: (i == 0).then(|| "hl-1-1".to_string()),
                ..CallRecord::default()
            };
            t.add(&r, &thresholds);
        }
        // 1 of 20: exactly 5%, not above.
        let f = TasksTally::default().figures(&t.figures());
        assert_eq!((f.repeat_contacts, f.offered), (1, 20));
        assert_eq!(f.repeat_contact_rate, Some(0.05));
        assert!(!f.repeat_contact_above_target);
        let r = CallRecord {
            outcome: crate::cdr::Outcome::Completed,
            repeat_of: Some("hl-1-2".into()),
            ..CallRecord::default()
        };
        t.add(&r, &thresholds);
        // 2 of 21: 9.5%.
        let f = TasksTally::default().figures(&t.figures());
        assert!(f.repeat_contact_above_target);
        // An invalid record is not offered: not a repeat contact either.
        let mut u = crate::report::Tally::default();
        u.add(
            &CallRecord {
                repeat_of: Some("hl-1-3".into()),
                ..CallRecord::default()
            },
            &thresholds,
        );
        assert_eq!(u.figures().repeat_contacts, 0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 50), Some(5));
        assert_eq!(nearest_rank(&v, 90), Some(9));
        assert_eq!(nearest_rank(&v, 91), Some(10));
    }
}
