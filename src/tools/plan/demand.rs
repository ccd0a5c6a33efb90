//! Demand per interval of the day, folded from call records one at a
//! time: how many calls asked for an agent, how long agents spent on each
//! (talk + wrap-up), how many callers hung up waiting and how long all of
//! them waited. Memory is one small counter set per interval plus one
//! entry per calendar day seen, however many records stream through.
//!
//! Time is counted honestly: an interval's arrival rate is its calls
//! divided by the time it was observed. The records are taken to cover
//! the span from the first call's arrival to the last call's end (within
//! --from/--to), so a read in the middle of today does not dilute this
//! afternoon with hours that have not happened yet, and a first day that
//! starts at noon does not count its morning. Inside that span, a local
//! calendar day with no record at all is left out as missing data (the
//! engine was down or its file is gone), not taken as a day without
//! calls; a day with records but no call in an interval counts as zero
//! calls for it.

use std::collections::BTreeSet;

use crate::cdr::CallRecord;
use crate::sla::QueueResult;
use crate::tools::records::parse_time_ms;

pub const DAY_MS: i64 = 86_400_000;

/// Fewer days with records than this is a sample, not a history to plan
/// from: one week, so every weekday is seen at least once.
pub const MIN_HISTORY_DAYS: u64 = 7;

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
    /// `bad_request`, `unknown_number` or `forbidden`: not calls to the hotline.
    pub invalid: u64,
    /// Sent to another queue than the one asked for.
    pub other_queue: u64,
    /// Offered calls that never asked for an agent (IVR only, refused...).
    pub no_agent_asked: u64,
    /// Calls hotline placed (notices): not demand on the agents.
    pub outbound: u64,
}

/// Folds records into per-interval counts.
#[derive(Debug, Clone)]
pub struct Demand {
    options: DemandOptions,
    intervals: Vec<Counts>,
    days: BTreeSet<i64>,
    /// Earliest arrival and latest end seen, epoch ms.
    first_ms: Option<i64>,
    last_ms: Option<i64>,
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
            first_ms: None,
            last_ms: None,
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
        // Any record shows the engine was up and recording that day, from
        // the call's arrival to its end.
        self.days.insert(local.div_euclid(DAY_MS));
        let ended = parse_time_ms(&record.ended_at)
            .and_then(|t| i64::try_from(t).ok())
            .map_or(at, |e| e.max(at));
        self.first_ms = Some(self.first_ms.map_or(at, |f| f.min(at)));
        self.last_ms = Some(self.last_ms.map_or(ended, |l| l.max(ended)));
        if record.is_outbound() {
            self.ignored.outbound += 1;
            return;
        }
        if !crate::sla::is_offered(record.outcome) {
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
        if record.queue_result.as_deref().and_then(QueueResult::parse)
            == Some(QueueResult::Abandoned)
        {
            counts.abandoned += 1;
        }
        if record.bridged_at.is_some() {
            counts.answered += 1;
            counts.handle_ms += record.talk_ms.unwrap_or(0) + record.wrap_up_ms.unwrap_or(0);
        }
    }

    /// First arrival to last end, clipped to --from/--to.
    fn observed_span(&self) -> Option<(i64, i64)> {
        let mut from = self.first_ms?;
        let mut to = self.last_ms?;
        if let Some(f) = self.options.from_ms {
            from = from.max(f);
        }
        if let Some(t) = self.options.to_ms {
            to = to.min(t);
        }
        (to > from).then_some((from, to))
    }

    /// The counts folded so far.
    pub fn summary(&self) -> DemandSummary {
        let mut total = Counts::default();
        for c in &self.intervals {
            total.add(c);
        }
        let observed = self.observed_span();
        let interval_ms = self.interval_ms();
        let offset = self.options.utc_offset_ms;
        // Observed time of each interval: its overlap with the span, on
        // every day that has records.
        let mut exposure_ms = vec![0u64; self.intervals.len()];
        if let Some((from, to)) = observed {
            for day in &self.days {
                for (index, exposure) in exposure_ms.iter_mut().enumerate() {
                    let start = day * DAY_MS + index as i64 * interval_ms - offset;
                    let overlap = (start + interval_ms).min(to) - start.max(from);
                    *exposure += overlap.max(0) as u64;
                }
            }
        }
        DemandSummary {
            interval_ms,
            utc_offset_ms: offset,
            intervals: self.intervals.clone(),
            exposure_ms,
            observed,
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
    /// Per interval, the time it was observed over all days, ms.
    pub exposure_ms: Vec<u64>,
    /// The span the records cover, epoch ms: first arrival to last end,
    /// within --from/--to.
    pub observed: Option<(i64, i64)>,
    /// Local calendar days with at least one record.
    pub days: u64,
    /// First and last of those days, as days since 1970-01-01 (local).
    pub first_day: Option<i64>,
    pub last_day: Option<i64>,
    pub ignored: Ignored,
}

impl DemandSummary {
    /// Calls per second that asked for an agent in interval `index`: its
    /// calls over the time it was observed (0 if never observed).
    pub fn rate(&self, index: usize) -> f64 {
        match self.exposure_ms[index] {
            0 => 0.0,
            ms => self.intervals[index].asked as f64 / (ms as f64 / 1000.0),
        }
    }

    /// Calls in interval `index` on an average day: rate × its length.
    pub fn calls_per_day(&self, index: usize) -> f64 {
        self.rate(index) * self.interval_ms as f64 / 1000.0
    }

    /// How many whole intervals' worth of time interval `index` was
    /// observed: the number of days behind its average.
    pub fn observed_days(&self, index: usize) -> f64 {
        self.exposure_ms[index] as f64 / self.interval_ms as f64
    }

    /// The time the records cover, ms: every interval's observed time.
    pub fn observed_ms(&self) -> u64 {
        self.exposure_ms.iter().sum()
    }

    /// Too little history for a plan (fewer than [`MIN_HISTORY_DAYS`]
    /// days with records).
    pub fn short_history(&self) -> bool {
        self.days < MIN_HISTORY_DAYS
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
    use crate::cdr::{format_ms, Outcome};

    /// `at` plus `ms`, as a record timestamp.
    fn after(at: &str, ms: u64) -> String {
        format_ms(parse_time_ms(at).expect("time") + ms)
    }

    /// A call at `invite_at` (UTC) that asked for an agent and left the
    /// queue after `wait_ms` (the call ends then).
    fn queued(invite_at: &str, wait_ms: u64, result: &str) -> CallRecord {
        CallRecord {
            invite_at: invite_at.into(),
            ended_at: after(invite_at, wait_ms),
            outcome: Outcome::CallerHangup,
            queue: Some("consultation".into()),
            queued_at: Some(invite_at.into()),
            wait_ms: Some(wait_ms),
            queue_result: Some(result.into()),
            ..CallRecord::default()
        }
    }

    /// Answered after `wait_ms`, talked `talk_ms`, then the agent's wrap-up.
    fn answered(invite_at: &str, wait_ms: u64, talk_ms: u64, wrap_up_ms: u64) -> CallRecord {
        CallRecord {
            ended_at: after(invite_at, wait_ms + talk_ms),
            bridged_at: Some(after(invite_at, wait_ms)),
            talk_ms: Some(talk_ms),
            wrap_up_ms: Some(wrap_up_ms),
            ..queued(invite_at, wait_ms, "answered")
        }
    }

    /// A record that is not demand (IVR only, refused...).
    fn other(invite_at: &str, ended_at: &str, outcome: Outcome) -> CallRecord {
        CallRecord {
            invite_at: invite_at.into(),
            ended_at: ended_at.into(),
            outcome,
            ..CallRecord::default()
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

    /// Records over three local days, times in UTC; at +08:00, 01:00Z is
    /// 09:00 local and 01:30Z is 09:30.
    fn fixture() -> Vec<CallRecord> {
        vec![
            // 2026-11-24 local, 09:00-09:30: two answered, one abandoned
            // after 40 s. The first arrival (09:05 local) opens the span.
            answered("2026-11-24T01:05:00.000Z", 10_000, 170_000, 10_000),
            answered("2026-11-24T01:20:00.000Z", 30_000, 200_000, 20_000),
            queued("2026-11-24T01:25:00.000Z", 40_000, "abandoned"),
            // 09:30-10:00: one answered.
            answered("2026-11-24T01:40:00.000Z", 0, 100_000, 20_000),
            // Not demand: IVR only, a scanner.
            other(
                "2026-11-24T01:10:00.000Z",
                "2026-11-24T01:11:00.000Z",
                Outcome::Completed,
            ),
            other(
                "2026-11-24T01:11:00.000Z",
                "2026-11-24T01:11:00.000Z",
                Outcome::BadRequest,
            ),
            // 2026-11-25 local, 09:00-09:30: one answered, one timed out
            // after 60 s (not an abandon, but time waited).
            answered("2026-11-25T01:15:00.000Z", 20_000, 160_000, 0),
            queued("2026-11-25T01:16:00.000Z", 60_000, "timeout"),
            // 2026-11-25T16:10Z is 00:10 local on 2026-11-26: a third day
            // with a record, an IVR-only call whose end (00:12) closes the
            // span.
            other(
                "2026-11-25T16:10:00.000Z",
                "2026-11-25T16:12:00.000Z",
                Outcome::CallerHangup,
            ),
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
        assert_eq!(nine.asked, 5, "3 on the 24th, 2 on the 25th");
        assert_eq!(nine.answered, 3);
        assert_eq!(nine.abandoned, 1);
        // Handle: (170+10) + (200+20) + (160+0) = 560 s over 3 answered.
        assert_eq!(nine.handle_ms, 560_000);
        let aht = nine.aht_s().expect("aht");
        assert!((aht - 560.0 / 3.0).abs() < 1e-9);
        // Observed: the span runs from 09:05 on the 24th to 00:12 on the
        // 26th, so 09:00-09:30 was seen for 25 min on the 24th and 30 on
        // the 25th: 3300 s. Rate 5 / 3300 per s; an average day 5/3300 ×
        // 1800 = 2.727 calls, behind it 3300/1800 = 1.83 days.
        assert_eq!(s.exposure_ms[18], 3_300_000);
        assert!((s.rate(18) - 5.0 / 3300.0).abs() < 1e-15);
        assert!((s.calls_per_day(18) - 5.0 / 3300.0 * 1800.0).abs() < 1e-12);
        assert!((s.observed_days(18) - 3300.0 / 1800.0).abs() < 1e-12);
        // 09:30-10:00: one call over two whole intervals (24th, 25th):
        // 0.5 a day; 120 s handle.
        assert_eq!(s.intervals[19].asked, 1);
        assert_eq!(s.exposure_ms[19], 3_600_000);
        assert!((s.calls_per_day(19) - 0.5).abs() < 1e-12);
        assert_eq!(s.intervals[19].aht_s(), Some(120.0));
        // 00:00-00:30: not seen on the 24th (before 09:05), whole on the
        // 25th, 12 min on the 26th: 1800 + 720 s; no calls.
        assert_eq!(s.exposure_ms[0], 2_520_000);
        assert_eq!(s.intervals[0], Counts::default());
        assert_eq!(s.rate(0), 0.0);
        // Patience: waits 10+30+40+0+20+60 = 160 s, one abandon: 160 s.
        assert_eq!(s.total.waited_ms, 160_000);
        assert_eq!(s.total.abandoned, 1);
        assert_eq!(s.total.patience_s(), Some(160.0));
        // Ignored: one scanner; IVR-only calls on the 24th and the 26th.
        assert_eq!(s.ignored.invalid, 1);
        assert_eq!(s.ignored.no_agent_asked, 2);
    }

    #[test]
    fn range_and_queue_filters() {
        // From local midnight of the 25th (16:00Z on the 24th) on: only
        // the 25th's two calls and the 26th's IVR call remain.
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
        // The span now opens at 09:15 on the 25th: 15 min of 09:00-09:30
        // observed, 2 calls in 900 s.
        assert_eq!(s.exposure_ms[18], 900_000);
        assert!((s.rate(18) - 2.0 / 900.0).abs() < 1e-15);
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
        // Calls at 09:00 local on the 1st and the 3rd, and one at 12:00 on
        // the 3rd; nothing on the 2nd. 09:00-09:30 is averaged over the
        // two days with records: 2 calls / 3600 s, one a day.
        let mut demand = Demand::new(options());
        demand.add(&answered("2026-12-01T01:00:00.000Z", 0, 60_000, 0));
        demand.add(&answered("2026-12-03T01:00:00.000Z", 0, 60_000, 0));
        demand.add(&answered("2026-12-03T04:00:00.000Z", 0, 60_000, 0));
        let s = demand.summary();
        assert_eq!(s.days, 2);
        assert_eq!(s.days_spanned(), 3);
        assert_eq!(s.exposure_ms[18], 3_600_000);
        assert!((s.calls_per_day(18) - 1.0).abs() < 1e-12);
        assert!((s.observed_days(18) - 2.0).abs() < 1e-12);
        let mut bad = answered("2026-12-03T04:00:00.000Z", 0, 1, 0);
        bad.invite_at = "yesterday".into();
        demand.add(&bad);
        assert_eq!(demand.summary().ignored.bad_time, 1);
    }
}
