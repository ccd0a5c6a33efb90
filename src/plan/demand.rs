//! Demand per interval of the day, folded from call records one at a
//! time: how many calls asked for an agent, how long agents spent on each
//! (talk + wrap-up), how many callers hung up waiting and how long all of
//! them waited. Memory is one small counter set per interval plus one
//! entry per calendar day seen, however many records stream through.
//!
//! Days are counted honestly: an interval's arrival rate is its calls
//! divided by the number of local calendar days that have at least one
//! record of any kind (so the engine was running and writing records that
//! day). A day with no record at all is treated as missing data, not as a
//! day with no calls; days with records but no calls in an interval count
//! as zeros for it.

use std::collections::BTreeSet;

use crate::cdr::read::parse_time_ms;
use crate::cdr::{CallRecord, Outcome};

pub const DAY_MS: i64 = 86_400_000;

/// What slice of the records to fold, and how to cut the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemandOptions {
    /// Interval length in milliseconds; divides a day.
    pub interval_ms: i64,
    /// Local time = UTC + this, in milliseconds.
    pub utc_offset_ms: i64,
    /// Only calls that arrived (`invite_at`) at or after this instant.
    pub from_ms: Option<i64>,
    /// Only calls that arrived before this instant.
    pub to_ms: Option<i64>,
    /// Only calls sent to this ACD queue.
    pub queue: Option<String>,
}

/// Exact counts for one interval of the day, summed over all days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls that asked for an agent (`queued_at` present).
    pub asked: u64,
    /// Of those, answered by an agent (`bridged_at` present).
    pub answered: u64,
    /// Σ (talk_ms + wrap_up_ms) over the answered ones.
    pub handle_ms: u64,
    /// Callers who hung up while waiting (`queue_result` "abandoned").
    pub abandoned: u64,
    /// Σ wait_ms over every call that asked for an agent: the time all of
    /// them were exposed to hanging up.
    pub waited_ms: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.asked += other.asked;
        self.answered += other.answered;
        self.handle_ms += other.handle_ms;
        self.abandoned += other.abandoned;
        self.waited_ms += other.waited_ms;
    }

    /// Mean handle time in seconds, if any call was answered.
    pub fn aht_s(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.handle_ms as f64 / 1000.0 / self.answered as f64)
    }

    /// Mean patience in seconds, the maximum-likelihood estimate for an
    /// exponential patience with censoring: total time waited (by callers
    /// who hung up and by those answered or sent elsewhere first) over the
    /// number who hung up. `None` with no abandons: patience looks
    /// unbounded and Erlang A reduces to Erlang C.
    pub fn patience_s(&self) -> Option<f64> {
        (self.abandoned > 0).then(|| self.waited_ms as f64 / 1000.0 / self.abandoned as f64)
    }
}

/// Records that did not count as demand, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ignored {
    /// `invite_at` is not a timestamp.
    pub bad_time: u64,
    /// Arrived outside --from/--to.
    pub out_of_range: u64,
    /// `bad_request` or `unknown_number`: not calls to the hotline.
    pub invalid: u64,
    /// Sent to another queue than the one asked for.
    pub other_queue: u64,
    /// Offered calls that never asked for an agent (IVR only, refused...).
    pub no_agent_asked: u64,
}

/// Folds records into per-interval counts.
#[derive(Debug, Clone)]
pub struct Demand {
    options: DemandOptions,
    intervals: Vec<Counts>,
    days: BTreeSet<i64>,
    ignored: Ignored,
}

impl Demand {
    /// `options.interval_ms` must divide a day (checked where it is
    /// parsed); anything else is taken as one interval per day.
    pub fn new(options: DemandOptions) -> Self {
        let per_day = if options.interval_ms > 0 && DAY_MS % options.interval_ms == 0 {
            (DAY_MS / options.interval_ms) as usize
        } else {
            1
        };
        Demand {
            options,
            intervals: vec![Counts::default(); per_day],
            days: BTreeSet::new(),
            ignored: Ignored::default(),
        }
    }

    fn interval_ms(&self) -> i64 {
        DAY_MS / self.intervals.len() as i64
    }

    /// Takes one record into account.
    pub fn add(&mut self, record: &CallRecord) {
        let Some(at) = parse_time_ms(&record.invite_at).and_then(|t| i64::try_from(t).ok()) else {
            self.ignored.bad_time += 1;
            return;
        };
        if self.options.from_ms.is_some_and(|from| at < from)
            || self.options.to_ms.is_some_and(|to| at >= to)
        {
            self.ignored.out_of_range += 1;
            return;
        }
        let local = at + self.options.utc_offset_ms;
        // Any record shows the engine was up and recording that day.
        self.days.insert(local.div_euclid(DAY_MS));
        if matches!(record.outcome, Outcome::BadRequest | Outcome::UnknownNumber) {
            self.ignored.invalid += 1;
            return;
        }
        if let Some(queue) = &self.options.queue {
            if record.queue.as_deref() != Some(queue.as_str()) {
                self.ignored.other_queue += 1;
                return;
            }
        }
        if record.queued_at.is_none() {
            self.ignored.no_agent_asked += 1;
            return;
        }
        let index = (local.rem_euclid(DAY_MS) / self.interval_ms()) as usize;
        let counts = &mut self.intervals[index];
        counts.asked += 1;
        counts.waited_ms += record.wait_ms.unwrap_or(0);
        if record.queue_result.as_deref() == Some("abandoned") {
            counts.abandoned += 1;
        }
        if record.bridged_at.is_some() {
            counts.answered += 1;
            counts.handle_ms += record.talk_ms.unwrap_or(0) + record.wrap_up_ms.unwrap_or(0);
        }
    }

    /// The counts folded so far.
    pub fn summary(&self) -> DemandSummary {
        let mut total = Counts::default();
        for c in &self.intervals {
            total.add(c);
        }
        DemandSummary {
            interval_ms: self.interval_ms(),
            utc_offset_ms: self.options.utc_offset_ms,
            intervals: self.intervals.clone(),
            total,
            days: self.days.len() as u64,
            first_day: self.days.first().copied(),
            last_day: self.days.last().copied(),
            ignored: self.ignored,
        }
    }
}

/// Demand over the whole read, ready for planning.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandSummary {
    pub interval_ms: i64,
    pub utc_offset_ms: i64,
    /// One entry per interval of the day, from local midnight.
    pub intervals: Vec<Counts>,
    /// All intervals together.
    pub total: Counts,
    /// Local calendar days with at least one record.
    pub days: u64,
    /// First and last of those days, as days since 1970-01-01 (local).
    pub first_day: Option<i64>,
    pub last_day: Option<i64>,
    pub ignored: Ignored,
}

impl DemandSummary {
    /// Calls per second that asked for an agent in interval `index`, on an
    /// average day with records.
    pub fn rate(&self, index: usize) -> f64 {
        if self.days == 0 {
            return 0.0;
        }
        let seconds = self.days as f64 * self.interval_ms as f64 / 1000.0;
        self.intervals[index].asked as f64 / seconds
    }

    /// Calls per interval on an average day with records.
    pub fn calls_per_day(&self, index: usize) -> f64 {
        if self.days == 0 {
            return 0.0;
        }
        self.intervals[index].asked as f64 / self.days as f64
    }

    /// Days from the first to the last day with records, both included.
    pub fn days_spanned(&self) -> u64 {
        match (self.first_day, self.last_day) {
            (Some(first), Some(last)) => (last - first + 1) as u64,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call at `invite_at` (UTC) that asked for an agent.
    fn queued(invite_at: &str, wait_ms: u64, result: &str) -> CallRecord {
        CallRecord {
            invite_at: invite_at.into(),
            outcome: Outcome::CallerHangup,
            queue: Some("consultation".into()),
            queued_at: Some(invite_at.into()),
            wait_ms: Some(wait_ms),
            queue_result: Some(result.into()),
            ..CallRecord::default()
        }
    }

    fn answered(invite_at: &str, wait_ms: u64, talk_ms: u64, wrap_up_ms: u64) -> CallRecord {
        CallRecord {
            bridged_at: Some(invite_at.into()),
            talk_ms: Some(talk_ms),
            wrap_up_ms: Some(wrap_up_ms),
            ..queued(invite_at, wait_ms, "answered")
        }
    }

    fn options() -> DemandOptions {
        DemandOptions {
            interval_ms: 30 * 60_000,
            utc_offset_ms: 8 * 3_600_000,
            from_ms: None,
            to_ms: None,
            queue: None,
        }
    }

    /// Two days of records, times in UTC; at +08:00, 01:00Z is 09:00 local
    /// and 01:30Z is 09:30.
    fn fixture() -> Vec<CallRecord> {
        vec![
            // Day 1 (2026-11-24 local), 09:00-09:30: two answered, one
            // abandoned after 40 s.
            answered("2026-11-24T01:05:00.000Z", 10_000, 170_000, 10_000),
            answered("2026-11-24T01:20:00.000Z", 30_000, 200_000, 20_000),
            queued("2026-11-24T01:25:00.000Z", 40_000, "abandoned"),
            // 09:30-10:00: one answered.
            answered("2026-11-24T01:40:00.000Z", 0, 100_000, 20_000),
            // Not demand: IVR only, a scanner, a misdial.
            CallRecord {
                invite_at: "2026-11-24T01:10:00.000Z".into(),
                outcome: Outcome::Completed,
                ..CallRecord::default()
            },
            CallRecord {
                invite_at: "2026-11-24T01:11:00.000Z".into(),
                outcome: Outcome::BadRequest,
                ..CallRecord::default()
            },
            // Day 2 (2026-11-25 local), 09:00-09:30: one answered, one
            // timed out after 60 s (not an abandon, but time waited).
            answered("2026-11-25T01:15:00.000Z", 20_000, 160_000, 0),
            queued("2026-11-25T01:16:00.000Z", 60_000, "timeout"),
            // 2026-11-25T16:10Z is 00:10 local on 2026-11-26: a third day
            // with a record, an IVR-only call.
            CallRecord {
                invite_at: "2026-11-25T16:10:00.000Z".into(),
                outcome: Outcome::CallerHangup,
                ..CallRecord::default()
            },
        ]
    }

    #[test]
    fn rates_aht_and_patience_by_hand() {
        let mut demand = Demand::new(options());
        for r in fixture() {
            demand.add(&r);
        }
        let s = demand.summary();
        assert_eq!(s.intervals.len(), 48);
        // Three local days have records (24th, 25th, 26th).
        assert_eq!(s.days, 3);
        assert_eq!(s.days_spanned(), 3);
        // 09:00-09:30 is interval 18 (9 h × 2).
        let nine = s.intervals[18];
        assert_eq!(nine.asked, 5, "3 on day 1, 2 on day 2");
        assert_eq!(nine.answered, 3);
        assert_eq!(nine.abandoned, 1);
        // Handle: (170+10) + (200+20) + (160+0) = 560 s over 3 answered.
        assert_eq!(nine.handle_ms, 560_000);
        let aht = nine.aht_s().expect("aht");
        assert!((aht - 560.0 / 3.0).abs() < 1e-9);
        // 5 calls over 3 days × 1800 s: 5 / 5400 per second; 5/3 per day.
        assert!((s.rate(18) - 5.0 / 5400.0).abs() < 1e-15);
        assert!((s.calls_per_day(18) - 5.0 / 3.0).abs() < 1e-12);
        // 09:30-10:00: one call, 120 s handle.
        assert_eq!(s.intervals[19].asked, 1);
        assert_eq!(s.intervals[19].aht_s(), Some(120.0));
        // Other intervals: nothing.
        assert_eq!(s.intervals[17], Counts::default());
        assert_eq!(s.rate(0), 0.0);
        // Patience: waits 10+30+40+0+20+60 = 160 s, one abandon: 160 s.
        assert_eq!(s.total.waited_ms, 160_000);
        assert_eq!(s.total.abandoned, 1);
        assert_eq!(s.total.patience_s(), Some(160.0));
        // Ignored: one scanner; IVR-only calls on days 1 and 3.
        assert_eq!(s.ignored.invalid, 1);
        assert_eq!(s.ignored.no_agent_asked, 2);
    }

    #[test]
    fn range_and_queue_filters() {
        // From local midnight of the 25th (16:00Z on the 24th) on: only
        // day 2 and the 00:10 call of the 26th remain.
        let from = parse_time_ms("2026-11-24T16:00:00.000Z").expect("time") as i64;
        let mut demand = Demand::new(DemandOptions {
            from_ms: Some(from),
            ..options()
        });
        for r in fixture() {
            demand.add(&r);
        }
        let s = demand.summary();
        assert_eq!(s.ignored.out_of_range, 6);
        assert_eq!(s.days, 2);
        assert_eq!(s.intervals[18].asked, 2);
        // 2 calls over 2 days × 1800 s.
        assert!((s.rate(18) - 2.0 / 3600.0).abs() < 1e-15);
        // No abandons left: patience unknown.
        assert_eq!(s.total.patience_s(), None);

        let mut demand = Demand::new(DemandOptions {
            queue: Some("repair".into()),
            ..options()
        });
        for r in fixture() {
            demand.add(&r);
        }
        let s = demand.summary();
        assert_eq!(s.total.asked, 0);
        // Six queued calls to "consultation" and two IVR-only calls with no
        // queue; the scanner stays counted as invalid.
        assert_eq!(s.ignored.other_queue, 6 + 2);
        assert_eq!(s.ignored.invalid, 1);
        assert_eq!(s.days, 3, "days still count: the engine was recording");
    }

    #[test]
    fn a_day_without_records_is_not_a_day_without_calls() {
        // Calls on the 1st and the 3rd only: two days counted, three
        // spanned, and the rate is over the two.
        let mut demand = Demand::new(options());
        demand.add(&answered("2026-12-01T01:00:00.000Z", 0, 60_000, 0));
        demand.add(&answered("2026-12-03T01:00:00.000Z", 0, 60_000, 0));
        let s = demand.summary();
        assert_eq!(s.days, 2);
        assert_eq!(s.days_spanned(), 3);
        assert!((s.calls_per_day(18) - 1.0).abs() < 1e-12);
        let mut bad = answered("yesterday", 0, 1, 0);
        bad.queued_at = None;
        demand.add(&bad);
        assert_eq!(demand.summary().ignored.bad_time, 1);
    }
}
