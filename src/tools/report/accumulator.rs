//! The report's accumulator: records go in one at a time, in any order;
//! its state is one [`Tally`] per (interval, group) that has calls, per
//! interval, per group, per agent, and in total, so memory depends on
//! intervals × groups, never on the number of records.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cdr::CallRecord;
use crate::tools::records::parse_time_ms;

use super::agents::{AgentRow, AgentTally};
use super::figures::{Figures, Tally, Thresholds, WaitHistogram};
use super::group::GroupBy;
use super::interval::{Interval, UtcOffset};

/// Gaps between intervals with calls are filled with empty intervals (so
/// charts and time series have no holes) up to this many intervals.
const MAX_FILLED_INTERVALS: u64 = 100_000;

/// What the report is asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    #[serde(serialize_with = "ser_display")]
    pub interval: Interval,
    #[serde(serialize_with = "ser_display")]
    pub utc_offset: UtcOffset,
    pub by: Option<GroupBy>,
    #[serde(flatten)]
    pub thresholds: Thresholds,
    /// Calls that arrived at or after this (epoch ms) ...
    pub from_ms: Option<u64>,
    /// ... and before this.
    pub to_ms: Option<u64>,
    /// The service-level target drawn on the chart (0.8 = 80%).
    pub target: f64,
}

fn ser_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: Interval::DAY,
            utc_offset: UtcOffset::default(),
            by: None,
            thresholds: Thresholds::default(),
            from_ms: None,
            to_ms: None,
            target: crate::sla::DEFAULT_SERVICE_LEVEL_TARGET,
        }
    }
}

/// Where the records came from and what was left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    pub files: usize,
    /// Records read (parsed), including those left out below.
    pub records: u64,
    /// Lines that were not a record (torn by a crash, invalid JSON).
    pub skipped_lines: u64,
    /// Records whose arrival is outside `--from`/`--to`.
    pub outside_range: u64,
    /// Records whose `invite_at` is not a time (so no interval).
    pub bad_timestamps: u64,
}

/// Feed records with [`Accumulator::add`], then [`Accumulator::finish`].
#[derive(Debug, Clone)]
pub struct Accumulator {
    settings: Settings,
    /// Only when grouping: interval start -> group -> tally.
    cells: BTreeMap<u64, BTreeMap<String, Tally>>,
    intervals: BTreeMap<u64, Tally>,
    groups: BTreeMap<String, Tally>,
    agents: BTreeMap<String, AgentTally>,
    total: Tally,
    /// Calls hotline placed: their own figures, never in the inbound ones.
    outbound: super::outbound::OutboundTally,
    /// Callback requests and task calls, joined by task id.
    tasks: super::tasks::TasksTally,
    outside_range: u64,
    bad_timestamps: u64,
}

/// How big the accumulator's state is, for checking that it does not grow
/// with the number of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSize {
    pub cells: usize,
    pub intervals: usize,
    pub groups: usize,
    pub agents: usize,
    /// Distinct whole-second waits kept, over all histograms.
    pub wait_buckets: usize,
}

impl Accumulator {
    pub fn new(settings: Settings) -> Accumulator {
        Accumulator {
            settings,
            cells: BTreeMap::new(),
            intervals: BTreeMap::new(),
            groups: BTreeMap::new(),
            agents: BTreeMap::new(),
            total: Tally::default(),
            outbound: Default::default(),
            tasks: Default::default(),
            outside_range: 0,
            bad_timestamps: 0,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Counts one record in.
    pub fn add(&mut self, r: &CallRecord) {
        let Some(arrival) = parse_time_ms(&r.invite_at) else {
            self.bad_timestamps += 1;
            return;
        };
        let s = &self.settings;
        if s.from_ms.is_some_and(|f| arrival < f) || s.to_ms.is_some_and(|t| arrival >= t) {
            self.outside_range += 1;
            return;
        }
        if r.is_outbound() {
            // A task's call (a callback, a follow-up) is no campaign's.
            if r.task.is_some() {
                return self.tasks.add_attempt(r);
            }
            return self.outbound.add(r);
        }
        self.tasks.add_inbound(r);
        let t = s.thresholds;
        let start = s.interval.start_of(arrival, s.utc_offset);
        self.intervals.entry(start).or_default().add(r, &t);
        self.total.add(r, &t);
        if let Some(by) = s.by {
            let key = by.key(r);
            let cell = self.cells.entry(start).or_default();
            // Allocate the key only for a group not seen in this interval.
            match cell.get_mut(key) {
                Some(tally) => tally.add(r, &t),
                None => cell.entry(key.to_string()).or_default().add(r, &t),
            }
            match self.groups.get_mut(key) {
                Some(tally) => tally.add(r, &t),
                None => self.groups.entry(key.to_string()).or_default().add(r, &t),
            }
        }
        if r.bridged_at.is_some() && !super::figures::is_invalid(r) && r.queued_at.is_some() {
            // A transferred call counts for each agent who had the caller,
            // with their own part of the talk; the survey and the hang-up
            // are the last agent's.
            if r.agent_parts.len() > 1 {
                let last = r.agent_parts.len() - 1;
                for (i, part) in r.agent_parts.iter().enumerate() {
                    if let Some(a) = self.agent_tally(&part.agent) {
                        a.add(r, part.talk_ms, i == last);
                    }
                }
            } else {
                let agent = r.agent.as_deref().unwrap_or(super::group::NONE);
                if let Some(a) = self.agent_tally(agent) {
                    a.add(r, r.talk_ms.unwrap_or(0), true);
                }
            }
        }
    }

    /// Allocates the key only for an agent not seen yet.
    fn agent_tally(&mut self, agent: &str) -> Option<&mut AgentTally> {
        if !self.agents.contains_key(agent) {
            self.agents.insert(agent.to_string(), AgentTally::default());
        }
        self.agents.get_mut(agent)
    }

    pub fn state_size(&self) -> StateSize {
        let buckets = |t: &Tally| t.waits.iter().count();
        StateSize {
            cells: self.cells.values().map(BTreeMap::len).sum(),
            intervals: self.intervals.len(),
            groups: self.groups.len(),
            agents: self.agents.len(),
            wait_buckets: buckets(&self.total)
                + self.intervals.values().map(buckets).sum::<usize>()
                + self.groups.values().map(buckets).sum::<usize>()
                + self
                    .cells
                    .values()
                    .flat_map(BTreeMap::values)
                    .map(buckets)
                    .sum::<usize>(),
        }
    }

    /// The report, with `read` saying what reading the records went through.
    pub fn finish(self, read: Source) -> Report {
        let s = self.settings;
        let len = s.interval.ms();
        let row = |start: Option<u64>, group: Option<&str>, tally: Tally| Row {
            start_ms: start,
            end_ms: start.map(|st| st + len),
            label: start.map(|st| s.interval.label(st, s.utc_offset)),
            group: group.map(str::to_string),
            figures: tally.figures(),
            tally,
        };
        let mut intervals = self.intervals;
        fill_gaps(&mut intervals, &s);
        let interval_rows: Vec<Row> = intervals
            .into_iter()
            .map(|(start, t)| row(Some(start), None, t))
            .collect();
        let rows = match s.by {
            None => interval_rows.clone(),
            Some(_) => self
                .cells
                .into_iter()
                .flat_map(|(start, groups)| groups.into_iter().map(move |(g, t)| (start, g, t)))
                .map(|(start, g, t)| row(Some(start), Some(&g), t))
                .collect(),
        };
        let groups = self
            .groups
            .into_iter()
            .map(|(g, t)| row(None, Some(&g), t))
            .collect();
        let agents = self.agents.iter().map(|(a, t)| t.row(a)).collect();
        let waits = self.total.waits.clone();
        let outbound = self.outbound.rows();
        let total = row(None, None, self.total);
        let tasks = self.tasks.figures(&total.figures);
        Report {
            source: Source {
                outside_range: self.outside_range,
                bad_timestamps: self.bad_timestamps,
                ..read
            },
            total,
            settings: s,
            rows,
            intervals: interval_rows,
            groups,
            agents,
            waits,
            outbound,
            tasks,
        }
    }
}

/// Adds empty intervals between the first and last (or over `--from` to
/// `--to`), unless that would be more than [`MAX_FILLED_INTERVALS`].
fn fill_gaps(intervals: &mut BTreeMap<u64, Tally>, s: &Settings) {
    let len = s.interval.ms();
    let first = s
        .from_ms
        .map(|f| s.interval.start_of(f, s.utc_offset))
        .or_else(|| intervals.keys().next().copied());
    let last = s
        .to_ms
        .map(|t| s.interval.start_of(t.saturating_sub(1), s.utc_offset))
        .or_else(|| intervals.keys().next_back().copied());
    let (Some(first), Some(last)) = (first, last) else {
        return;
    };
    if last < first || (last - first) / len >= MAX_FILLED_INTERVALS {
        return;
    }
    let mut at = first;
    while at <= last {
        intervals.entry(at).or_default();
        at += len;
    }
}

/// One line of the report: an interval, a group, both, or the total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The interval's start and end (epoch ms); `None` for totals.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    /// The interval's start in local time ("2026-11-25 08:00", or the date
    /// for daily intervals).
    pub label: Option<String>,
    pub group: Option<String>,
    pub figures: Figures,
    /// The exact counts and sums behind the figures.
    #[serde(skip)]
    pub tally: Tally,
}

/// Everything the formats print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub settings: Settings,
    pub source: Source,
    /// Per (interval, group) with calls when grouped; per interval otherwise.
    pub rows: Vec<Row>,
    /// Per interval over all groups, gaps filled with empty intervals.
    pub intervals: Vec<Row>,
    /// Per group over all intervals (empty when not grouped).
    pub groups: Vec<Row>,
    pub total: Row,
    pub agents: Vec<AgentRow>,
    /// The wait distribution of all calls that asked for an agent.
    #[serde(skip)]
    pub waits: WaitHistogram,
    /// Per campaign, the calls hotline placed.
    pub outbound: Vec<super::outbound::CampaignRow>,
    /// Callbacks, task calls per kind, the repeat-contact rate.
    pub tasks: super::tasks::TaskFigures,
}
