//! The terminal table, at most 100 columns wide. With few rows the table
//! is transposed (figures down, intervals across) and shows every figure;
//! with many, one line per row with the key figures, then every figure of
//! the total.

use std::fmt::Write as _;

use super::{duration_ms, percent, period, settings_line, source_line, COLUMNS};
use crate::report::{Report, Row};

const WIDTH: usize = 100;
const LABEL: usize = 34;
/// The narrowest value column; wider when a heading needs it.
const CELL: usize = 10;
/// The group column of the one-line-per-row layout: wide enough for most
/// names, and at most what keeps the line within [`WIDTH`].
const GROUP: usize = 12;
const MAX_GROUP: usize = 17;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "hotline SLA report: {}", period(report));
    let _ = writeln!(out, "{}", settings_line(report));
    let _ = writeln!(out, "{}", source_line(report));
    out.push('\n');
    let grouped = report.settings.by.is_some();
    // One interval: the groups are the rows.
    let cols: &[Row] = if grouped && report.rows.len() == report.groups.len() {
        &report.groups
    } else if grouped {
        &[]
    } else {
        &report.rows
    };
    let across = with_total(cols, &report.total);
    if !cols.is_empty() && fits(&across) {
        transposed(&mut out, &across);
    } else {
        lines(&mut out, report);
        out.push('\n');
        let groups = with_total(&report.groups, &report.total);
        if grouped && fits(&groups) {
            transposed(&mut out, &groups);
        } else {
            transposed(&mut out, &[&report.total]);
        }
    }
    if !report.agents.is_empty() {
        out.push('\n');
        agents(&mut out, report);
    }
    if !report.outbound.is_empty() {
        out.push('\n');
        outbound(&mut out, report);
    }
    if !report.tasks.is_empty() {
        out.push('\n');
        tasks(&mut out, report);
    }
    out
}

/// Callbacks, the repeat-contact rate against its target, and the calls
/// placed to work tasks, per kind.
fn tasks(out: &mut String, report: &Report) {
    let t = &report.tasks;
    let ms = |v: Option<u64>| v.map(duration_ms).unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "Callbacks and tasks");
    let _ = writeln!(out, "{}", "-".repeat(LABEL + CELL + 1));
    let line = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "{label:LABEL$} {value:>CELL$}");
    };
    line(
        out,
        "Callbacks requested",
        t.callbacks_requested.to_string(),
    );
    line(
        out,
        "Callbacks completed",
        t.callbacks_completed.to_string(),
    );
    line(out, "Callbacks failed", t.callbacks_failed.to_string());
    line(
        out,
        "Request to answer, median",
        ms(t.callback_answer_p50_ms),
    );
    line(out, "Request to answer, p90", ms(t.callback_answer_p90_ms));
    let rate = t
        .repeat_contact_rate
        .map(percent)
        .unwrap_or_else(|| "-".into());
    let verdict = match t.repeat_contact_rate {
        None => String::new(),
        Some(_) if t.repeat_contact_above_target => {
            format!("  ABOVE the {} target", percent(t.repeat_contact_target))
        }
        Some(_) => format!("  within the {} target", percent(t.repeat_contact_target)),
    };
    let _ = writeln!(
        out,
        "{:LABEL$} {rate:>CELL$}{verdict}",
        "Repeat-contact rate"
    );
    let _ = writeln!(
        out,
        "{:LABEL$} {:>CELL$}  of {} offered calls",
        "Repeat contacts", t.repeat_contacts, t.offered
    );
    if t.task_calls.iter().all(|k| k.attempts == 0) {
        return;
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:16} {:>9} {:>9} {:>12}",
        "Task calls", "Attempts", "Answered", "Answer rate"
    );
    let _ = writeln!(out, "{}", "-".repeat(49));
    for k in &t.task_calls {
        let _ = writeln!(
            out,
            "{:16} {:>9} {:>9} {:>12}",
            cut(&k.kind, 16),
            k.attempts,
            k.answered,
            k.answer_rate.map(percent).unwrap_or_else(|| "-".into()),
        );
    }
}

/// Campaigns: numbers and their outcomes, then attempts by result.
fn outbound(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "Outbound (calls hotline placed; not in the figures above)"
    );
    let _ = writeln!(
        out,
        "{:24} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>11}",
        "Campaign",
        "Numbers",
        "Attempts",
        "Per no.",
        "Reached",
        "Confirmed",
        "Opt-out",
        "Invalid",
        "Not reached"
    );
    let _ = writeln!(out, "{}", "-".repeat(95));
    for c in &report.outbound {
        let name = match &c.name {
            Some(n) => format!("{} {n}", c.campaign),
            None => c.campaign.to_string(),
        };
        let _ = writeln!(
            out,
            "{:24} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>11}",
            cut(&name, 24),
            c.numbers,
            c.attempts,
            c.attempts_per_number
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into()),
            c.reached,
            c.confirmed,
            c.opted_out,
            c.invalid,
            c.not_reached,
        );
        let results: Vec<String> = c.results.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(out, "{:24} attempts: {}", "", results.join(", "));
    }
}

fn with_total<'a>(rows: &'a [Row], total: &'a Row) -> Vec<&'a Row> {
    rows.iter().chain(std::iter::once(total)).collect()
}

/// At most `width` characters (an ellipsis marks the cut).
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('~');
        s
    }
}

/// A column's two heading lines: the date over the time (intervals), or
/// the group's name.
fn heading(r: &Row) -> (String, String) {
    match (&r.label, &r.group) {
        // "2026-11-25 08:00": the date over the time.
        (Some(l), _) if l.len() > 10 => (l[..10].to_string(), l[11..].to_string()),
        (Some(l), _) => (String::new(), l.clone()),
        (None, Some(g)) => (String::new(), g.clone()),
        (None, None) => (String::new(), "Total".into()),
    }
}

/// The value columns' width: [`CELL`], or the longest heading.
fn cell_width(across: &[&Row]) -> usize {
    across
        .iter()
        .map(|r| {
            let (a, b) = heading(r);
            a.chars().count().max(b.chars().count())
        })
        .fold(CELL, usize::max)
}

/// Whether `across` fits beside the labels, headings whole.
fn fits(across: &[&Row]) -> bool {
    LABEL + across.len() * (cell_width(across) + 1) <= WIDTH
}

/// Figures down, rows across (a heading too long for [`WIDTH`] is cut).
fn transposed(out: &mut String, across: &[&Row]) {
    let cell = cell_width(across).min((WIDTH - LABEL) / across.len().max(1) - 1);
    let heads: Vec<(String, String)> = across
        .iter()
        .map(|r| {
            let (a, b) = heading(r);
            (cut(&a, cell), cut(&b, cell))
        })
        .collect();
    for line in [0, 1] {
        let cells: Vec<&str> = heads
            .iter()
            .map(|(a, b)| if line == 0 { a.as_str() } else { b.as_str() })
            .collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        let _ = write!(out, "{:LABEL$}", "");
        for c in cells {
            let _ = write!(out, " {c:>cell$}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", "-".repeat(LABEL + across.len() * (cell + 1)));
    for c in COLUMNS {
        let _ = write!(out, "{:LABEL$}", c.label);
        for r in across {
            let _ = write!(out, " {:>cell$}", (c.get)(&r.figures).human());
        }
        out.push('\n');
    }
}

/// One line per row, key figures only.
fn lines(out: &mut String, report: &Report) {
    let grouped = report.settings.by.is_some();
    let key = [
        ("Offered", "offered", 7),
        ("Conn", "connection_rate", 6),
        ("Asked", "asked_for_agent", 6),
        ("Agent", "agent_answered", 6),
        ("SL", "service_level_from_arrival", 6),
        ("ASA", "asa_ms", 7),
        ("Aband", "abandon_rate", 6),
        ("Lost", "call_loss_rate", 6),
        ("AHT", "aht_ms", 7),
    ];
    let group = report
        .groups
        .iter()
        .filter_map(|r| r.group.as_deref())
        .map(|g| g.chars().count())
        .fold(GROUP, usize::max)
        .min(MAX_GROUP);
    let _ = write!(out, "{:16}", "Interval");
    if grouped {
        let _ = write!(out, " {:group$}", "Group");
    }
    for (h, _, w) in key {
        let _ = write!(out, " {h:>w$}");
    }
    out.push('\n');
    let width =
        16 + if grouped { group + 1 } else { 0 } + key.iter().map(|k| k.2 + 1).sum::<usize>();
    let _ = writeln!(out, "{}", "-".repeat(width));
    let cell = |r: &Row, name: &str| {
        super::column(name)
            .map(|c| (c.get)(&r.figures).human())
            .unwrap_or_default()
    };
    let all = report.rows.iter().chain(std::iter::once(&report.total));
    for r in all {
        let label = r.label.clone().unwrap_or_else(|| "Total".into());
        let _ = write!(out, "{label:16}");
        if grouped {
            let g = r.group.as_deref().unwrap_or("");
            let _ = write!(out, " {:group$}", cut(g, group));
        }
        for (_, name, w) in key {
            let _ = write!(out, " {:>w$}", cell(r, name));
        }
        out.push('\n');
    }
}

/// Per agent: calls, AHT, talk and wrap-up, who hung up first.
fn agents(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "{:12} {:>7} {:>6} {:>8} {:>8} {:>9} {:>10} {:>11} {:>6} {:>9}",
        "Agent",
        "Number",
        "Calls",
        "AHT",
        "Talk",
        "Wrap-up",
        "Talk total",
        "Hung up 1st",
        "Rated",
        "Satisfied"
    );
    let _ = writeln!(out, "{}", "-".repeat(95));
    let ms = |v: Option<u64>| v.map(duration_ms).unwrap_or_else(|| "-".into());
    for a in &report.agents {
        let _ = writeln!(
            out,
            "{:12} {:>7} {:>6} {:>8} {:>8} {:>9} {:>10} {:>11} {:>6} {:>9}",
            cut(&a.agent, 12),
            cut(a.number.as_deref().unwrap_or("-"), 7),
            a.calls,
            ms(a.aht_ms),
            ms(a.mean_talk_ms),
            ms(a.mean_wrap_up_ms),
            duration_ms(a.talk_ms),
            a.hung_up_first,
            a.rated,
            a.satisfaction_rate
                .map_or_else(|| "-".into(), super::percent),
        );
    }
}
