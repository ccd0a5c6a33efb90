//! From demand per interval to agents per interval: Erlang C for the
//! classic answer, Erlang A beside it with the callers' patience, and the
//! staff to schedule once shrinkage is allowed for. Pure.

use super::demand::DemandSummary;
use super::erlang::{self, ErlangA};

/// A service-level target: `share` of calls answered within `seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// In (0, 1).
    pub share: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    pub target: Target,
    /// Never plan an agent busier than this (A/N at most this), in (0, 1].
    pub max_occupancy: Option<f64>,
    /// Share of paid time agents are not on the phone (breaks, training,
    /// absence), in [0, 1): scheduled = agents / (1 − shrinkage).
    pub shrinkage: Option<f64>,
    /// Mean patience in seconds to use instead of the records' estimate.
    pub patience_s: Option<f64>,
}

/// Where the patience behind the Erlang A columns came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatienceSource {
    /// Estimated from the records (abandons / time waited).
    Records,
    /// Given with --patience.
    Given,
    /// No abandons in the records: callers look infinitely patient, and
    /// Erlang A is Erlang C.
    Unbounded,
}

/// One interval's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalPlan {
    /// Minutes from local midnight.
    pub start_min: u32,
    pub end_min: u32,
    /// Calls that asked for an agent, over all days.
    pub calls: u64,
    /// The same on an average day: calls over the time observed, times
    /// the interval's length.
    pub calls_per_day: f64,
    /// The number of days' worth of this interval observed.
    pub observed_days: f64,
    /// Mean handle time used, seconds; `None` when no call anywhere was
    /// answered by an agent, so there is nothing to plan with.
    pub aht_s: Option<f64>,
    /// The interval had no answered call, so the AHT is all intervals'.
    pub aht_from_all: bool,
    /// Offered load in Erlangs: calls per second × AHT.
    pub traffic: f64,
    /// Erlang C agents (occupancy cap applied); 0 with no calls.
    pub agents: Option<u32>,
    /// Erlang C predictions at `agents` (`None` with no calls).
    pub service_level: Option<f64>,
    pub asa_s: Option<f64>,
    pub occupancy: Option<f64>,
    /// Erlang A agents and its predictions at that number.
    pub agents_a: Option<u32>,
    pub abandon_a: Option<f64>,
    pub service_level_a: Option<f64>,
    /// Staff to schedule for the Erlang C agents, with shrinkage.
    pub scheduled: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub options: PlanOptions,
    /// The intervals of the day the records observed, in order.
    pub intervals: Vec<IntervalPlan>,
    /// AHT over all intervals, seconds.
    pub aht_all_s: Option<f64>,
    /// Mean patience used by Erlang A, seconds.
    pub patience_s: Option<f64>,
    pub patience_source: PatienceSource,
    /// Σ agents × interval length, hours, for an average day.
    pub agent_hours: f64,
    pub agent_hours_a: f64,
    pub scheduled_hours: f64,
}

/// Rounds up, forgiving the float noise of e.g. 14 / 0.7 = 20.000000000000004.
fn ceil(x: f64) -> u32 {
    (x - 1e-9).ceil().max(0.0) as u32
}

/// Plans every interval of `demand`.
pub fn plan(demand: &DemandSummary, options: PlanOptions) -> Plan {
    let aht_all_s = demand.total.aht_s();
    let (patience_s, patience_source) = match (options.patience_s, demand.total.patience_s()) {
        (Some(p), _) => (Some(p), PatienceSource::Given),
        (None, Some(p)) => (Some(p), PatienceSource::Records),
        (None, None) => (None, PatienceSource::Unbounded),
    };
    let minutes = (demand.interval_ms / 60_000) as u32;
    let hours = demand.interval_ms as f64 / 3_600_000.0;
    let mut intervals = Vec::with_capacity(demand.intervals.len());
    let (mut agent_hours, mut agent_hours_a, mut scheduled_hours) = (0.0, 0.0, 0.0);
    for (index, counts) in demand.intervals.iter().enumerate() {
        // Never observed: there is no demand to plan from, and a row of
        // zeros would read as a quiet interval.
        if demand.exposure_ms[index] == 0 {
            continue;
        }
        let own = counts.aht_s();
        let aht_s = own.or(aht_all_s);
        let rate = demand.rate(index);
        let mut row = IntervalPlan {
            start_min: index as u32 * minutes,
            end_min: (index as u32 + 1) * minutes,
            calls: counts.asked,
            calls_per_day: demand.calls_per_day(index),
            observed_days: demand.observed_days(index),
            aht_s,
            aht_from_all: own.is_none() && aht_s.is_some() && counts.asked > 0,
            traffic: 0.0,
            agents: None,
            service_level: None,
            asa_s: None,
            occupancy: None,
            agents_a: None,
            abandon_a: None,
            service_level_a: None,
            scheduled: None,
        };
        if counts.asked == 0 {
            row.agents = Some(0);
            row.agents_a = Some(0);
            row.scheduled = Some(0);
        } else if let Some(aht) = aht_s {
            fill(&mut row, rate, aht, patience_s, &options);
        }
        agent_hours += f64::from(row.agents.unwrap_or(0)) * hours;
        agent_hours_a += f64::from(row.agents_a.unwrap_or(0)) * hours;
        scheduled_hours += f64::from(row.scheduled.unwrap_or(0)) * hours;
        intervals.push(row);
    }
    Plan {
        options,
        intervals,
        aht_all_s,
        patience_s,
        patience_source,
        agent_hours,
        agent_hours_a,
        scheduled_hours,
    }
}

/// The figures of an interval with calls and a known AHT.
fn fill(row: &mut IntervalPlan, rate: f64, aht: f64, patience: Option<f64>, options: &PlanOptions) {
    let target = options.target;
    let traffic = rate * aht;
    row.traffic = traffic;
    let floor = options
        .max_occupancy
        .map(|max| ceil(traffic / max))
        .unwrap_or(0);
    let Some(needed) = erlang::agents_needed(rate, aht, target.share, target.seconds) else {
        return;
    };
    let n = needed.max(floor);
    row.agents = Some(n);
    row.service_level = Some(erlang::service_level(rate, aht, n, target.seconds));
    row.asa_s = Some(erlang::asa(rate, aht, n));
    row.occupancy = Some(erlang::occupancy(traffic, n));
    row.scheduled = Some(match options.shrinkage {
        Some(s) => ceil(f64::from(n) / (1.0 - s)),
        None => n,
    });
    match patience {
        Some(p) => {
            let Some(needed_a) =
                erlang::agents_needed_a(rate, aht, p, target.share, target.seconds)
            else {
                return;
            };
            let m = needed_a.max(floor);
            if let Some(model) = ErlangA::new(rate, aht, p, m) {
                row.agents_a = Some(m);
                row.abandon_a = Some(model.p_abandon());
                row.service_level_a = Some(model.service_level(target.seconds));
            }
        }
        None => {
            // Nobody hangs up: Erlang A is Erlang C.
            row.agents_a = row.agents;
            row.abandon_a = Some(0.0);
            row.service_level_a = row.service_level;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::demand::{Counts, Ignored};

    /// One day, 30-minute intervals; interval 18 (09:00) gets 100 calls
    /// answered with AHT 180 s: the published worked example (10 Erlangs).
    fn demand(abandoned: u64, waited_ms: u64) -> DemandSummary {
        let mut intervals = vec![Counts::default(); 48];
        intervals[18] = Counts {
            asked: 100,
            answered: 100,
            handle_ms: 100 * 180_000,
            abandoned,
            waited_ms,
        };
        // 09:30: 3 calls, none answered: AHT falls back to all intervals.
        intervals[19] = Counts {
            asked: 3,
            ..Counts::default()
        };
        let mut total = Counts::default();
        for c in &intervals {
            total.asked += c.asked;
            total.answered += c.answered;
            total.handle_ms += c.handle_ms;
            total.abandoned += c.abandoned;
            total.waited_ms += c.waited_ms;
        }
        DemandSummary {
            interval_ms: 1_800_000,
            utc_offset_ms: 0,
            intervals,
            // One whole day observed.
            exposure_ms: vec![1_800_000; 48],
            observed: Some((0, 86_400_000)),
            total,
            days: 1,
            first_day: Some(20_000),
            last_day: Some(20_000),
            ignored: Ignored::default(),
        }
    }

    fn options() -> PlanOptions {
        PlanOptions {
            target: Target {
                share: 0.8,
                seconds: 20.0,
            },
            max_occupancy: Some(0.85),
            shrinkage: Some(0.3),
            patience_s: None,
        }
    }

    #[test]
    fn the_worked_example_as_a_plan() {
        let p = plan(&demand(0, 0), options());
        let nine = &p.intervals[18];
        assert_eq!((nine.start_min, nine.end_min), (540, 570));
        // 100 calls / 1800 s × 180 s = 10 Erlangs; 14 agents (88.8%),
        // max occupancy asks only 12; 14 / 0.7 = 20 scheduled.
        assert!((nine.traffic - 10.0).abs() < 1e-12);
        assert_eq!(nine.agents, Some(14));
        assert!((nine.service_level.expect("sl") - 0.88835).abs() < 5e-6);
        assert_eq!(nine.scheduled, Some(20));
        // No abandons: Erlang A is Erlang C.
        assert_eq!(p.patience_source, PatienceSource::Unbounded);
        assert_eq!(nine.agents_a, Some(14));
        assert_eq!(nine.abandon_a, Some(0.0));
        // An interval with no calls plans nobody.
        assert_eq!(p.intervals[0].agents, Some(0));
        assert_eq!(p.intervals[0].scheduled, Some(0));
        assert_eq!(p.intervals[0].service_level, None);
        // 09:30 borrows the all-interval AHT: 3 calls/1800 s × 180 s =
        // 0.3 Erlangs. One agent (M/M/1, C = ρ = 0.3) answers
        // 1 − 0.3·e^{−0.7·20/180} = 72.2% < 80%; two (M/M/2, C = 2ρ²/(1+ρ)
        // with ρ = 0.15, = 0.045/1.15) answer 1 − (0.045/1.15)·e^{−1.7·20/180}
        // = 96.8%.
        let half = &p.intervals[19];
        assert!(half.aht_from_all);
        assert_eq!(half.agents, Some(2));
        assert!(erlang::service_level(3.0 / 1800.0, 180.0, 1, 20.0) < 0.8);
        let want = 1.0 - 0.045 / 1.15 * (-1.7_f64 * 20.0 / 180.0).exp();
        assert!((half.service_level.expect("sl") - want).abs() < 1e-12);
        // 2 / 0.7 = 2.86 rounds up to 3 scheduled.
        assert_eq!(half.scheduled, Some(3));
        // Agent-hours: (14 + 2) agents × 0.5 h; scheduled (20 + 3) × 0.5.
        assert!((p.agent_hours - 8.0).abs() < 1e-12);
        assert!((p.scheduled_hours - 11.5).abs() < 1e-12);
    }

    #[test]
    fn patience_from_records_lowers_erlang_a_agents() {
        // 10 abandons over 1200 s waited: mean patience 120 s.
        let p = plan(
            &demand(10, 1_200_000),
            PlanOptions {
                max_occupancy: None,
                ..options()
            },
        );
        assert_eq!(p.patience_source, PatienceSource::Records);
        assert_eq!(p.patience_s, Some(120.0));
        let nine = &p.intervals[18];
        let m = nine.agents_a.expect("agents A");
        // Callers who give up shorten the queue for the rest: no more
        // agents than Erlang C at 80/20, and the target still met.
        assert!(m <= 14);
        assert!(nine.service_level_a.expect("sl") >= 0.8);
        let model = ErlangA::new(100.0 / 1800.0, 180.0, 120.0, m).expect("model");
        assert_eq!(nine.abandon_a, Some(model.p_abandon()));
        // Given patience wins over the records.
        let given = plan(
            &demand(10, 1_200_000),
            PlanOptions {
                patience_s: Some(30.0),
                ..options()
            },
        );
        assert_eq!(given.patience_source, PatienceSource::Given);
        assert_eq!(given.patience_s, Some(30.0));
    }

    #[test]
    fn no_answered_call_anywhere_means_no_plan() {
        let mut d = demand(0, 0);
        d.intervals[18] = Counts {
            asked: 5,
            ..Counts::default()
        };
        d.total = Counts {
            asked: 8,
            ..Counts::default()
        };
        let p = plan(&d, options());
        assert_eq!(p.intervals[18].aht_s, None);
        assert_eq!(p.intervals[18].agents, None);
        assert_eq!(p.intervals[0].agents, Some(0));
    }
}
