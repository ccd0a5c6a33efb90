//! The plan as a table for people, CSV for spreadsheets, JSON for tools.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::demand::{DemandSummary, DAY_MS, MIN_HISTORY_DAYS};
use super::staffing::{IntervalPlan, PatienceSource, Plan};
use crate::tools::records::ReadStats;

/// Everything an output shows.
#[derive(Debug, Clone)]
pub struct PlanReport {
    pub plan: Plan,
    pub demand: DemandSummary,
    pub stats: ReadStats,
    pub queue: Option<String>,
}

/// `+08:00`, `-05:30`.
pub fn offset_label(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let minutes = offset_ms.abs() / 60_000;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `YYYY-MM-DD` of a local day number (days since 1970-01-01).
pub fn day_label(day: i64) -> String {
    match u64::try_from(day * DAY_MS) {
        Ok(ms) => crate::cdr::format_ms(ms)[..10].to_string(),
        Err(_) => format!("day {day}"),
    }
}

/// `YYYY-MM-DD HH:MM` local of an instant.
pub fn local_time(ms: i64, offset_ms: i64) -> String {
    match u64::try_from(ms + offset_ms) {
        Ok(local) => crate::cdr::format_ms(local)[..16].replace('T', " "),
        Err(_) => format!("{ms} ms"),
    }
}

/// `6 minutes`, `30.5 hours`.
fn observed(ms: u64) -> String {
    if ms < 3_600_000 {
        format!("{} minutes", ms / 60_000)
    } else {
        format!("{:.1} hours", ms as f64 / 3_600_000.0)
    }
}

/// How much history the plan rests on.
pub fn history(d: &DemandSummary) -> String {
    format!(
        "History used: {} day{} with records, {} observed.",
        d.days,
        if d.days == 1 { "" } else { "s" },
        observed(d.observed_ms())
    )
}

/// A warning when the history is too short to plan from.
pub fn short_history_warning(d: &DemandSummary) -> Option<String> {
    d.short_history().then(|| {
        format!(
            "WARNING: {} day{} of records ({} observed), fewer than {MIN_HISTORY_DAYS}. Scaled up from so short a sample, these figures are not a plan: plan from at least {MIN_HISTORY_DAYS} days of records.",
            d.days,
            if d.days == 1 { "" } else { "s" },
            observed(d.observed_ms())
        )
    })
}

fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn fixed(x: Option<f64>, places: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.places$}"))
}

fn count(x: Option<u32>) -> String {
    x.map_or_else(|| "?".into(), |v| v.to_string())
}

/// Lines that say what the numbers rest on.
fn preamble(r: &PlanReport) -> String {
    let p = &r.plan;
    let d = &r.demand;
    let mut s = String::new();
    let target = p.options.target;
    let _ = writeln!(
        s,
        "Staffing plan: {}% of calls answered within {} s; {}-minute intervals, local time UTC{}{}",
        trim(target.share * 100.0),
        trim(target.seconds),
        d.interval_ms / 60_000,
        offset_label(d.utc_offset_ms),
        r.queue
            .as_ref()
            .map(|q| format!("; queue {q}"))
            .unwrap_or_default()
    );
    if let Some(warning) = short_history_warning(d) {
        let _ = writeln!(s, "{warning}");
    }
    let _ = writeln!(
        s,
        "Read {} files, {} records ({} unreadable lines skipped).",
        r.stats.files, r.stats.records, r.stats.skipped_lines
    );
    let _ = writeln!(s, "{}", history(d));
    match d.observed {
        Some((from, to)) => {
            let _ = writeln!(
                s,
                "Demand: {} calls asked for an agent. Records cover {} to {} local, {} days with records of {} spanned; each interval's calls are averaged over the time it was observed (column days), leaving out days without any record.",
                d.total.asked,
                local_time(from, d.utc_offset_ms),
                local_time(to, d.utc_offset_ms),
                d.days,
                d.days_spanned()
            );
        }
        None => {
            let _ = writeln!(s, "Demand: no records in the range.");
        }
    }
    let aht = p.aht_all_s.map_or_else(
        || "unknown (no call answered by an agent)".into(),
        |a| format!("{a:.1} s"),
    );
    let patience = match p.patience_source {
        PatienceSource::Records => format!(
            "{:.1} s, estimated as time waited / abandons ({} s / {})",
            p.patience_s.unwrap_or(0.0),
            d.total.waited_ms / 1000,
            d.total.abandoned
        ),
        PatienceSource::Given => format!("{:.1} s, as given", p.patience_s.unwrap_or(0.0)),
        PatienceSource::Unbounded => {
            "unbounded (no caller hung up waiting), so Erlang A = Erlang C".into()
        }
    };
    let _ = writeln!(s, "AHT over all intervals: {aht}. Patience: {patience}.");
    let mut rules = vec!["agents by Erlang C, with its SL, ASA and occupancy".to_string()];
    if let Some(max) = p.options.max_occupancy {
        rules.push(format!("occupancy at most {}%", trim(max * 100.0)));
    }
    rules.push("A: Erlang A agents, abandon and SL".into());
    rules.push(match p.options.shrinkage {
        Some(sh) => format!(
            "staff = agents / (1 - {}% shrinkage), rounded up",
            trim(sh * 100.0)
        ),
        None => "staff = agents (no shrinkage given)".into(),
    });
    let _ = writeln!(s, "Columns: {}.", rules.join("; "));
    s
}

/// A number without trailing zeros: 85, 0.5, 15.
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The plan for people.
pub fn table(r: &PlanReport) -> String {
    let mut s = preamble(r);
    s.push('\n');
    let _ = writeln!(
        s,
        "{:<11} {:>6} {:>5} {:>7} {:>7} {:>7} {:>6} {:>6} {:>7} {:>6} | {:>6} {:>7} {:>6} | {:>5}",
        "interval",
        "calls",
        "days",
        "per day",
        "AHT s",
        "Erlang",
        "agents",
        "SL",
        "ASA s",
        "occ",
        "A agts",
        "A aband",
        "A SL",
        "staff"
    );
    let mut borrowed = false;
    for row in &r.plan.intervals {
        borrowed |= row.aht_from_all;
        let aht = match row.aht_s {
            Some(a) if row.calls > 0 => {
                format!("{a:.1}{}", if row.aht_from_all { "*" } else { "" })
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "{:<11} {:>6} {:>5.2} {:>7.2} {:>7} {:>7.2} {:>6} {:>6} {:>7} {:>6} | {:>6} {:>7} {:>6} | {:>5}",
            format!("{}-{}", clock(row.start_min), clock(row.end_min)),
            row.calls,
            row.observed_days,
            row.calls_per_day,
            aht,
            row.traffic,
            count(row.agents),
            percent(row.service_level),
            fixed(row.asa_s, 1),
            percent(row.occupancy),
            count(row.agents_a),
            percent(row.abandon_a),
            percent(row.service_level_a),
            count(row.scheduled),
        );
    }
    let p = &r.plan;
    let per_day: f64 = p.intervals.iter().map(|i| i.calls_per_day).sum();
    let _ = writeln!(
        s,
        "\nAn average day: {per_day:.1} calls for agents; {:.1} agent-hours by Erlang C, {:.1} by Erlang A; {:.1} staff-hours to schedule.",
        p.agent_hours, p.agent_hours_a, p.scheduled_hours
    );
    if borrowed {
        let _ = writeln!(
            s,
            "* no call answered by an agent in this interval: the AHT of all intervals is used."
        );
    }
    if p.intervals.iter().any(|i| i.calls > 0 && i.aht_s.is_none()) {
        let _ = writeln!(
            s,
            "? no call was answered by an agent in any interval, so there is no handle time to plan with."
        );
    }
    s
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(String::new, |v| format!("{v:.6}"))
}

fn opt_u(x: Option<u32>) -> String {
    x.map_or_else(String::new, |v| v.to_string())
}

/// One row per interval; empty cells where a figure does not apply.
pub fn csv(r: &PlanReport) -> String {
    let mut s = String::from(
        "interval_start,interval_end,calls,observed_days,calls_per_day,aht_s,traffic_erlangs,agents,service_level,asa_s,occupancy,agents_erlang_a,abandon_erlang_a,service_level_erlang_a,scheduled\n",
    );
    for row in &r.plan.intervals {
        let _ = writeln!(
            s,
            "{},{},{},{:.6},{:.6},{},{:.6},{},{},{},{},{},{},{},{}",
            clock(row.start_min),
            clock(row.end_min),
            row.calls,
            row.observed_days,
            row.calls_per_day,
            opt(row.aht_s.filter(|_| row.calls > 0)),
            row.traffic,
            opt_u(row.agents),
            opt(row.service_level),
            opt(row.asa_s),
            opt(row.occupancy),
            opt_u(row.agents_a),
            opt(row.abandon_a),
            opt(row.service_level_a),
            opt_u(row.scheduled),
        );
    }
    s
}

fn interval_json(row: &IntervalPlan) -> Value {
    json!({
        "start": clock(row.start_min),
        "end": clock(row.end_min),
        "calls": row.calls,
        "observed_days": row.observed_days,
        "calls_per_day": row.calls_per_day,
        "aht_s": row.aht_s.filter(|_| row.calls > 0),
        "aht_from_all_intervals": row.aht_from_all,
        "traffic_erlangs": row.traffic,
        "agents": row.agents,
        "service_level": row.service_level,
        "asa_s": row.asa_s,
        "occupancy": row.occupancy,
        "erlang_a": {
            "agents": row.agents_a,
            "abandon": row.abandon_a,
            "service_level": row.service_level_a,
        },
        "scheduled": row.scheduled,
    })
}

/// The whole plan with what it rests on.
pub fn json(r: &PlanReport) -> String {
    let p = &r.plan;
    let d = &r.demand;
    let value = json!({
        "target": {
            "share": p.options.target.share,
            "seconds": p.options.target.seconds,
        },
        "interval_minutes": d.interval_ms / 60_000,
        "utc_offset": offset_label(d.utc_offset_ms),
        "queue": r.queue,
        "max_occupancy": p.options.max_occupancy,
        "shrinkage": p.options.shrinkage,
        "files": r.stats.files,
        "records": r.stats.records,
        "skipped_lines": r.stats.skipped_lines,
        "ignored": {
            "bad_time": d.ignored.bad_time,
            "out_of_range": d.ignored.out_of_range,
            "invalid": d.ignored.invalid,
            "other_queue": d.ignored.other_queue,
            "no_agent_asked": d.ignored.no_agent_asked,
            "outbound": d.ignored.outbound,
        },
        "observed_from": d.observed.map(|(f, _)| crate::cdr::format_ms(f.max(0) as u64)),
        "observed_to": d.observed.map(|(_, t)| crate::cdr::format_ms(t.max(0) as u64)),
        "days_with_records": d.days,
        "days_spanned": d.days_spanned(),
        "observed_hours": d.observed_ms() as f64 / 3_600_000.0,
        "short_history": d.short_history(),
        "warning": short_history_warning(d),
        "first_day": d.first_day.map(day_label),
        "last_day": d.last_day.map(day_label),
        "asked": d.total.asked,
        "answered": d.total.answered,
        "abandoned": d.total.abandoned,
        "waited_s": d.total.waited_ms as f64 / 1000.0,
        "aht_s": p.aht_all_s,
        "patience_s": p.patience_s,
        "patience_source": match p.patience_source {
            PatienceSource::Records => "records",
            PatienceSource::Given => "given",
            PatienceSource::Unbounded => "unbounded",
        },
        "agent_hours": p.agent_hours,
        "agent_hours_erlang_a": p.agent_hours_a,
        "scheduled_hours": p.scheduled_hours,
        "intervals": p.intervals.iter().map(interval_json).collect::<Vec<_>>(),
    });
    let mut s =
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(offset_label(8 * 3_600_000), "+08:00");
        assert_eq!(offset_label(-(5 * 60 + 30) * 60_000), "-05:30");
        assert_eq!(offset_label(0), "+00:00");
        // 2026-11-25 is day 20_782 since 1970-01-01 (1_795_564_800 s / 86_400).
        assert_eq!(day_label(20_782), "2026-11-25");
        assert_eq!(clock(1440), "24:00");
        assert_eq!(trim(85.0), "85");
        assert_eq!(trim(2.5), "2.5");
        assert_eq!(observed(360_000), "6 minutes");
        assert_eq!(observed(5_400_000), "1.5 hours");
    }
}
