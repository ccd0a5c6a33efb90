//! The SLA figures, defined once: which calls are offered, what a queue
//! visit's result is, what is a short abandon and what is answered in time
//! (from arrival and from queue entry), and the rates and means built from
//! those counts. The live view ([`crate::live`]) counts with these as
//! events arrive; `hotline report` counts with them over call records.
//! Both divide with the functions here, so a figure cannot mean two
//! things. The definitions, in words: docs/metrics.md.
//!
//! Everything is integer counts and sums of milliseconds (the records'
//! precision); a ratio is `None` when its denominator is zero.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cdr::Outcome;

/// T, the standards' "answered within 15 s".
pub const DEFAULT_SERVICE_LEVEL_MS: u64 = 15_000;
/// The service level aimed at when none is given: 80%.
pub const DEFAULT_SERVICE_LEVEL_TARGET: f64 = 0.8;
/// "Handled within 3 minutes": the standards' target talk time.
pub const HANDLED_WITHIN_MS: u64 = 180_000;

/// A call to the hotline at all. Malformed requests, unknown numbers and
/// calls from outside the trunk allow-list (scanners, misdials) are
/// invalid: counted apart and in no other figure.
pub fn is_offered(outcome: Outcome) -> bool {
    !outcome.is_invalid()
}

/// How a queue visit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueResult {
    /// Bridged to an agent.
    Answered,
    /// The caller hung up while waiting or while an agent's phone rang.
    Abandoned,
    /// `max_wait` passed with no overflow target.
    Timeout,
    /// Sent to another queue or IVR node (`max_wait` or `max_len`).
    Overflow,
    /// The last agent logged out of a `leave_empty` queue.
    Empty,
    /// The caller pressed the queue's exit key.
    ExitKey,
    /// The queue would not take the caller (no agent logged in, full).
    Refused,
    /// An agent answered but the call ended during the agent's
    /// announcement, before the bridge: not answered, not an abandon.
    EndedBeforeBridge,
    /// The caller asked to be called back, keeping their place: not an
    /// abandon.
    Callback,
}

impl QueueResult {
    pub const ALL: [QueueResult; 9] = [
        QueueResult::Answered,
        QueueResult::Abandoned,
        QueueResult::Timeout,
        QueueResult::Overflow,
        QueueResult::Empty,
        QueueResult::ExitKey,
        QueueResult::Refused,
        QueueResult::EndedBeforeBridge,
        QueueResult::Callback,
    ];

    /// The label used in metrics and JSON (as `queue_result` in records).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueResult::Answered => "answered",
            QueueResult::Abandoned => "abandoned",
            QueueResult::Timeout => "timeout",
            QueueResult::Overflow => "overflow",
            QueueResult::Empty => "empty",
            QueueResult::ExitKey => "exit_key",
            QueueResult::Refused => "refused",
            QueueResult::EndedBeforeBridge => "ended_before_bridge",
            QueueResult::Callback => "callback",
        }
    }

    /// The result a record's `queue_result` names, if any.
    pub fn parse(label: &str) -> Option<QueueResult> {
        QueueResult::ALL.into_iter().find(|r| r.as_str() == label)
    }

    /// Its position in [`QueueResult::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The thresholds the figures depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// T of "answered within T".
    pub service_level_ms: u64,
    /// Callers who abandon sooner than this are short abandons (left out
    /// of the service-level and abandon-rate denominators); `None`: off.
    pub short_abandon_ms: Option<u64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            service_level_ms: DEFAULT_SERVICE_LEVEL_MS,
            short_abandon_ms: None,
        }
    }
}

/// How one finished queue visit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// Abandoned with a wait below the short-abandon threshold.
    pub short_abandon: bool,
    /// Answered with arrival-to-bridge ≤ T (never when that time is
    /// unknown: an unreadable timestamp cannot prove an answer in time).
    pub in_time_from_arrival: bool,
    /// Answered with wait (queue entry to bridge) ≤ T.
    pub in_time_from_queue_entry: bool,
}

impl Thresholds {
    /// "≤ T" is inclusive: an answer at exactly T is in time.
    pub fn in_time(&self, ms: u64) -> bool {
        ms <= self.service_level_ms
    }

    /// An abandon after a wait shorter than the threshold (when one is set).
    pub fn is_short_abandon(&self, result: QueueResult, wait_ms: u64) -> bool {
        result == QueueResult::Abandoned && self.short_abandon_ms.is_some_and(|s| wait_ms < s)
    }

    /// How a visit that ended with `result` after `wait_ms` in the queue
    /// (`since_arrival_ms` from the call's arrival) counts.
    pub fn judge(
        &self,
        result: QueueResult,
        wait_ms: u64,
        since_arrival_ms: Option<u64>,
    ) -> Judged {
        let answered = result == QueueResult::Answered;
        Judged {
            short_abandon: self.is_short_abandon(result, wait_ms),
            in_time_from_arrival: answered && since_arrival_ms.is_some_and(|ms| self.in_time(ms)),
            in_time_from_queue_entry: answered && self.in_time(wait_ms),
        }
    }
}

/// `n / d`, `None` when there is nothing to divide by.
pub fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// The mean of `n` durations summing to `sum_ms`, to the nearest
/// millisecond (halves up); `None` for no durations.
pub fn mean_ms(sum_ms: u64, n: u64) -> Option<u64> {
    (n > 0).then(|| (sum_ms + n / 2) / n)
}

/// The denominator of service level and abandon rate: visits with a
/// result less short abandons. Timeouts, overflows, exits, refusals and
/// abandons all stay in, as not answered in time.
pub fn waited(with_result: u64, short_abandons: u64) -> u64 {
    with_result.saturating_sub(short_abandons)
}

/// 接通率: answered by the engine / offered.
pub fn connection_rate(engine_answered: u64, offered: u64) -> Option<f64> {
    ratio(engine_answered, offered)
}

/// Answered by the engine within T / offered (the 3-ring rule at the IVR).
pub fn engine_answer_rate_within_t(answered_within_t: u64, offered: u64) -> Option<f64> {
    ratio(answered_within_t, offered)
}

/// 人工接通率: answered by an agent / asked for an agent.
pub fn manual_connection_rate(agent_answered: u64, asked_for_agent: u64) -> Option<f64> {
    ratio(agent_answered, asked_for_agent)
}

/// Service level (from arrival or from queue entry, by which count is
/// given): answered within T / [`waited`].
pub fn service_level(answered_within_t: u64, waited: u64) -> Option<f64> {
    ratio(answered_within_t, waited)
}

/// Asterisk's `servicelevel`: answered within T from queue entry / answered.
/// Callers who gave up do not lower it; shown for comparison only.
pub fn asterisk_service_level(answered_within_t_from_queue: u64, answered: u64) -> Option<f64> {
    ratio(answered_within_t_from_queue, answered)
}

/// Abandons that are not short / [`waited`].
pub fn abandon_rate(abandoned_not_short: u64, waited: u64) -> Option<f64> {
    ratio(abandoned_not_short, waited)
}

/// 呼损率: lost / offered.
pub fn call_loss_rate(lost: u64, offered: u64) -> Option<f64> {
    ratio(lost, offered)
}

/// ASA: the mean wait (queue entry to bridge, or arrival to bridge) of
/// answered visits, ms.
pub fn asa_ms(answered_wait_ms: u64, answered: u64) -> Option<u64> {
    mean_ms(answered_wait_ms, answered)
}

/// AHT: the mean talk plus wrap-up of answered calls, ms.
pub fn aht_ms(talk_ms: u64, wrap_up_ms: u64, answered: u64) -> Option<u64> {
    mean_ms(talk_ms + wrap_up_ms, answered)
}

/// Answered calls whose talk was at most [`HANDLED_WITHIN_MS`] / answered.
pub fn handled_within_3min_rate(handled_within_3min: u64, answered: u64) -> Option<f64> {
    ratio(handled_within_3min, answered)
}

/// Survey ratings that count as satisfied: 1 (very satisfied) and 2
/// (satisfied), as the survey prompt offers them.
pub fn is_satisfied(rating: u8) -> bool {
    matches!(rating, 1 | 2)
}

/// Callers who rated / callers asked to rate.
pub fn survey_response_rate(rated: u64, asked: u64) -> Option<f64> {
    ratio(rated, asked)
}

/// Satisfaction (满意率): ratings of 1 or 2 / ratings.
pub fn satisfaction_rate(satisfied: u64, rated: u64) -> Option<f64> {
    ratio(satisfied, rated)
}

/// The repeat-contact rate aimed at: at most 5% of inbound calls come
/// from a caller who called within the repeat window before.
pub const REPEAT_CONTACT_TARGET: f64 = 0.05;

/// Repeat-contact rate: offered calls from a caller who called within
/// `tasks.repeat_window` before (`repeat_of`) / offered calls.
pub fn repeat_contact_rate(repeat_contacts: u64, offered: u64) -> Option<f64> {
    ratio(repeat_contacts, offered)
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

    /// [`percentile`](Self::percentile), never above the longest wait:
    /// seconds are rounded up, so a percentile in the longest wait's own
    /// second would read above it (p80 26 s beside a longest wait of
    /// 25.2 s); there it is the longest wait's whole seconds instead.
    pub fn percentile_within(&self, p: u64, longest_wait_ms: u64) -> Option<u64> {
        self.percentile(p).map(|s| s.min(longest_wait_ms / 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_invalid_outcomes_are_not_offered() {
        assert!(!is_offered(Outcome::BadRequest));
        assert!(!is_offered(Outcome::UnknownNumber));
        assert!(!is_offered(Outcome::Forbidden));
        assert!(is_offered(Outcome::OverCapacity), "a 503 is a lost call");
        assert!(is_offered(Outcome::CallerCancelled));
        assert!(is_offered(Outcome::Completed));
    }

    #[test]
    fn queue_results_read_back_from_their_labels() {
        for r in QueueResult::ALL {
            assert_eq!(QueueResult::parse(r.as_str()), Some(r));
            assert_eq!(QueueResult::ALL[r.index()], r);
        }
        assert_eq!(QueueResult::parse("exit_key"), Some(QueueResult::ExitKey));
        assert_eq!(QueueResult::parse("hung_up"), None);
    }

    #[test]
    fn t_is_inclusive_and_short_abandons_are_strictly_shorter() {
        let t = Thresholds {
            service_level_ms: 15_000,
            short_abandon_ms: Some(5_000),
        };
        assert!(t.in_time(15_000));
        assert!(!t.in_time(15_001));
        assert!(t.is_short_abandon(QueueResult::Abandoned, 4_999));
        assert!(!t.is_short_abandon(QueueResult::Abandoned, 5_000));
        assert!(
            !t.is_short_abandon(QueueResult::Timeout, 1_000),
            "only abandons are short abandons"
        );
        let off = Thresholds::default();
        assert_eq!(off.service_level_ms, 15_000);
        assert!(!off.is_short_abandon(QueueResult::Abandoned, 0));
    }

    #[test]
    fn judging_a_visit() {
        let t = Thresholds {
            service_level_ms: 15_000,
            short_abandon_ms: Some(5_000),
        };
        // Answered after 12 s in the queue, 18 s after arrival: in time
        // from queue entry only.
        let j = t.judge(QueueResult::Answered, 12_000, Some(18_000));
        assert!(j.in_time_from_queue_entry && !j.in_time_from_arrival && !j.short_abandon);
        // Arrival unknown (unreadable timestamp): not in time from arrival.
        let j = t.judge(QueueResult::Answered, 1_000, None);
        assert!(j.in_time_from_queue_entry && !j.in_time_from_arrival);
        // Abandoned after 3 s: short, and never in time.
        let j = t.judge(QueueResult::Abandoned, 3_000, Some(4_000));
        assert_eq!(
            j,
            Judged {
                short_abandon: true,
                in_time_from_arrival: false,
                in_time_from_queue_entry: false,
            }
        );
        // A timeout after 2 s is neither in time nor a short abandon.
        let j = t.judge(QueueResult::Timeout, 2_000, Some(2_000));
        assert!(!j.short_abandon && !j.in_time_from_arrival && !j.in_time_from_queue_entry);
    }

    #[test]
    fn ratios_and_means() {
        assert_eq!(ratio(1, 4), Some(0.25));
        assert_eq!(ratio(0, 3), Some(0.0));
        assert_eq!(ratio(3, 0), None);
        // 10 / 4 = 2.5 -> 3 (halves up); 10 / 3 = 3.33 -> 3; 11 / 3 = 3.67 -> 4.
        assert_eq!(mean_ms(10, 4), Some(3));
        assert_eq!(mean_ms(10, 3), Some(3));
        assert_eq!(mean_ms(11, 3), Some(4));
        assert_eq!(mean_ms(0, 0), None);
    }

    /// One hand-worked queue: 20 offered calls, 18 answered by the engine
    /// (12 of them within T), 2 lost at the engine (503s); 15 asked for an
    /// agent: 9 answered (6 within T from queue entry, 5 from arrival;
    /// waits sum 72 s, arrival-to-bridge 117 s; talk 1 620 s and wrap-up
    /// 270 s, 7 talks ≤ 3 min), 4 abandoned of which 1 short, a timeout
    /// and an overflow. Lost: the 2 at the engine and the 6 unanswered
    /// agent requests, less 1 that left a message: 7.
    #[test]
    fn every_rate_on_a_hand_worked_queue() {
        let (offered, engine_answered, engine_within) = (20, 18, 12);
        let (asked, answered, short) = (15, 9, 1);
        let abandoned = 4;
        let w = waited(asked, short);
        assert_eq!(w, 14);
        assert_eq!(connection_rate(engine_answered, offered), Some(0.9));
        assert_eq!(
            engine_answer_rate_within_t(engine_within, offered),
            Some(0.6)
        );
        assert_eq!(manual_connection_rate(answered, asked), Some(0.6));
        // 5 / 14 and 6 / 14; Asterisk's 6 / 9 over answered only.
        assert_eq!(service_level(5, w), Some(5.0 / 14.0));
        assert_eq!(service_level(6, w), Some(3.0 / 7.0));
        assert_eq!(asterisk_service_level(6, answered), Some(2.0 / 3.0));
        // (4 - 1 short) / 14.
        assert_eq!(abandon_rate(abandoned - short, w), Some(3.0 / 14.0));
        assert_eq!(call_loss_rate(7, offered), Some(0.35));
        // 72 s / 9 = 8 s; 117 s / 9 = 13 s; (1620 + 270) s / 9 = 210 s.
        assert_eq!(asa_ms(72_000, answered), Some(8_000));
        assert_eq!(asa_ms(117_000, answered), Some(13_000));
        assert_eq!(aht_ms(1_620_000, 270_000, answered), Some(210_000));
        assert_eq!(handled_within_3min_rate(7, answered), Some(7.0 / 9.0));
        // Nothing yet: no rate at all rather than 0% or 100%.
        assert_eq!(service_level(0, waited(0, 0)), None);
        assert_eq!(asa_ms(0, 0), None);
        assert_eq!(waited(1, 1), 0, "only short abandons: nobody waited");
    }

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

    #[test]
    fn percentiles_never_exceed_the_longest_wait() {
        // Waits 3 s, 10 s and 25.2 s: 25.2 s falls in the 26 s bin, so
        // p80 (rank 3) would read 26 s above a 25.2 s longest wait; it is
        // 25 s. p50 (rank 2, 10 s) is below it and stays.
        let mut h = WaitHistogram::default();
        for ms in [3_000, 10_000, 25_200] {
            h.add(ms);
        }
        assert_eq!(h.percentile(80), Some(26));
        assert_eq!(h.percentile_within(80, 25_200), Some(25));
        assert_eq!(h.percentile_within(50, 25_200), Some(10));
        // A longest wait of whole seconds is its own bin: nothing changes.
        let mut h = WaitHistogram::default();
        h.add(20_000);
        assert_eq!(h.percentile_within(99, 20_000), Some(20));
    }
}
