//! Rendering a [`Report`]: a terminal table, CSV, JSON or one HTML file.
//! All four read the same column list, so a figure has one name (the CSV
//! column and JSON key) and one label everywhere.

pub mod csv;
mod escape;
pub mod html;
pub mod json;
mod svg;
pub mod table;

use std::fmt::Write as _;
use std::str::FromStr;

use super::{Figures, Report};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!("{other:?}: format is table, csv, json or html")),
        }
    }
}

/// Renders the report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table::render(report),
        Format::Csv => csv::render(report),
        Format::Json => json::render(report),
        Format::Html => html::render(report),
    }
}

/// A figure's value, by kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Count(u64),
    /// A decimal ratio; `None` when its denominator is zero.
    Ratio(Option<f64>),
    /// Milliseconds.
    Ms(Option<u64>),
    /// Whole seconds.
    Secs(Option<u64>),
    /// A mean score (the survey's 1 to 5).
    Score(Option<f64>),
}

impl Value {
    /// For machines: integers, ratios as decimals with 4 places, empty
    /// when undefined.
    pub fn machine(self) -> String {
        match self {
            Value::Count(n) => n.to_string(),
            Value::Ratio(r) => r.map(|r| format!("{r:.4}")).unwrap_or_default(),
            Value::Ms(v) | Value::Secs(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Value::Score(v) => v.map(|v| format!("{v:.2}")).unwrap_or_default(),
        }
    }

    /// For people: "97.3%", "12.4 s", "3m 05s", "-" when undefined.
    pub fn human(self) -> String {
        match self {
            Value::Count(n) => n.to_string(),
            Value::Ratio(r) => r.map(percent).unwrap_or_else(|| "-".into()),
            Value::Ms(v) => v.map(duration_ms).unwrap_or_else(|| "-".into()),
            Value::Secs(v) => v
                .map(|s| duration_ms(s * 1000))
                .unwrap_or_else(|| "-".into()),
            Value::Score(v) => v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
        }
    }
}

/// 0.9731 -> "97.3%".
pub fn percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

/// 12_400 -> "12.4 s"; 15_000 -> "15 s"; 185_000 -> "3m 05s"; 7_384_000 -> "2h 03m".
pub fn duration_ms(ms: u64) -> String {
    if ms < 60_000 {
        let tenths = (ms + 50) / 100;
        if tenths >= 600 {
            return "1m 00s".into();
        }
        return match tenths % 10 {
            0 => format!("{} s", tenths / 10),
            t => format!("{}.{t} s", tenths / 10),
        };
    }
    let s = (ms + 500) / 1000;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, s % 3600 / 60)
    }
}

/// One figure: its machine name (a [`Figures`] field), its label for
/// people (at most 34 characters, ASCII, for the terminal table), the
/// Chinese term operators use when there is one, and how to read it.
pub struct Column {
    pub name: &'static str,
    pub label: &'static str,
    pub zh: &'static str,
    pub get: fn(&Figures) -> Value,
}

macro_rules! col {
    ($name:ident, $kind:ident, $label:expr) => {
        col!($name, $kind, $label, "")
    };
    ($name:ident, $kind:ident, $label:expr, $zh:expr) => {
        Column {
            name: stringify!($name),
            label: $label,
            zh: $zh,
            get: |f: &Figures| Value::$kind(f.$name),
        }
    };
}

/// Every figure, in report order.
pub const COLUMNS: &[Column] = &[
    col!(offered, Count, "Offered calls", "呼入量"),
    col!(invalid, Count, "Invalid (not calls: 400/404)"),
    col!(engine_answered, Count, "Answered by the engine"),
    col!(connection_rate, Ratio, "Connection rate", "接通率"),
    col!(engine_answered_within_t, Count, "Engine answered within T"),
    col!(
        engine_answer_rate_within_t,
        Ratio,
        "Engine answer rate within T"
    ),
    col!(asked_for_agent, Count, "Asked for an agent", "转人工"),
    col!(agent_answered, Count, "Agent answered", "人工接听"),
    col!(
        manual_connection_rate,
        Ratio,
        "Manual connection rate",
        "人工接通率"
    ),
    col!(
        answered_within_t_from_arrival,
        Count,
        "Agent answered <=T from arrival"
    ),
    col!(
        service_level_from_arrival,
        Ratio,
        "Service level from arrival",
        "服务水平"
    ),
    col!(
        answered_within_t_from_queue,
        Count,
        "Agent answered <=T from queueing"
    ),
    col!(
        service_level_from_queue,
        Ratio,
        "Service level from queue entry"
    ),
    col!(asterisk_service_level, Ratio, "Asterisk's service level"),
    col!(asa_ms, Ms, "ASA (from queue entry)", "平均应答速度"),
    col!(asa_from_arrival_ms, Ms, "ASA from arrival"),
    col!(abandoned, Count, "Abandoned", "放弃"),
    col!(abandon_rate, Ratio, "Abandon rate", "放弃率"),
    col!(short_abandons, Count, "Short abandons"),
    col!(timeouts, Count, "Queue timeouts"),
    col!(overflows, Count, "Overflows"),
    col!(exit_key, Count, "Left with the exit key"),
    col!(empty, Count, "Queue emptied"),
    col!(refused, Count, "Refused by the queue"),
    col!(callbacks, Count, "Left for a callback", "预约回电"),
    col!(other_queue_results, Count, "Other unanswered queue ends"),
    col!(lost, Count, "Lost calls", "呼损"),
    col!(call_loss_rate, Ratio, "Call-loss rate", "呼损率"),
    col!(repeat_contacts, Count, "Repeat contacts", "重复来电"),
    col!(
        repeat_contact_rate,
        Ratio,
        "Repeat-contact rate",
        "重复来电率"
    ),
    col!(aht_ms, Ms, "AHT (talk + wrap-up)", "平均处理时长"),
    col!(mean_talk_ms, Ms, "Mean talk time"),
    col!(mean_wrap_up_ms, Ms, "Mean wrap-up"),
    col!(handled_within_3min, Count, "Handled within 3 min"),
    col!(
        handled_within_3min_rate,
        Ratio,
        "Handled within 3 min (share)"
    ),
    col!(longest_wait_ms, Ms, "Longest wait", "最长等待"),
    col!(wait_p50_s, Secs, "Wait p50"),
    col!(wait_p80_s, Secs, "Wait p80"),
    col!(wait_p90_s, Secs, "Wait p90"),
    col!(wait_p95_s, Secs, "Wait p95"),
    col!(wait_p99_s, Secs, "Wait p99"),
    col!(silent_calls, Count, "Silent calls", "无声电话"),
    col!(agent_hung_up_first, Count, "Agent hung up first"),
    col!(held_calls, Count, "Calls put on hold"),
    col!(mean_hold_ms, Ms, "Mean hold (calls held)"),
    col!(transferred, Count, "Calls transferred", "转接"),
    col!(survey_offered, Count, "Asked to rate the service"),
    col!(rated, Count, "Rated the service"),
    col!(
        survey_response_rate,
        Ratio,
        "Survey response rate",
        "参评率"
    ),
    col!(
        satisfaction_rate,
        Ratio,
        "Satisfaction (rated 1-2)",
        "满意率"
    ),
    col!(mean_rating, Score, "Mean rating (1 best, 5 worst)"),
];

/// The column named `name`.
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name == name)
}

/// One line saying what was read and what was skipped.
pub fn source_line(report: &Report) -> String {
    let s = &report.source;
    let mut line = format!(
        "{} records from {} file{}; {} torn or invalid line{} skipped",
        s.records,
        s.files,
        if s.files == 1 { "" } else { "s" },
        s.skipped_lines,
        if s.skipped_lines == 1 { "" } else { "s" },
    );
    if s.outside_range > 0 {
        let _ = write!(line, "; {} outside the time range", s.outside_range);
    }
    if s.bad_timestamps > 0 {
        let _ = write!(
            line,
            "; {} with an unreadable arrival time",
            s.bad_timestamps
        );
    }
    line
}

/// The settings in one line: period, interval, T, short abandons.
pub fn settings_line(report: &Report) -> String {
    let s = &report.settings;
    let t = &s.thresholds;
    let mut line = format!(
        "interval {}, times in UTC{}, T = {}",
        s.interval,
        s.utc_offset,
        duration_ms(t.service_level_ms)
    );
    match t.short_abandon_ms {
        Some(ms) => {
            let _ = write!(line, ", short abandon < {}", duration_ms(ms));
        }
        None => line.push_str(", short abandons off"),
    }
    if let Some(by) = s.by {
        let _ = write!(line, ", by {by}");
    }
    line
}

/// The period the report covers, from its settings or its intervals.
pub fn period(report: &Report) -> String {
    let s = &report.settings;
    let local = |ms| super::interval::local_rfc3339(ms, s.utc_offset);
    let from = s
        .from_ms
        .or_else(|| report.intervals.first().and_then(|r| r.start_ms));
    let to = s
        .to_ms
        .or_else(|| report.intervals.last().and_then(|r| r.end_ms));
    match (from, to) {
        (Some(f), Some(t)) => {
            format!("{} to {}", &local(f)[..16], &local(t)[..16]).replace('T', " ")
        }
        _ => "no calls".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_the_json_keys_and_labels_fit() {
        let f = crate::report::Tally::default().figures();
        let json = serde_json::to_value(&f).expect("json");
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        assert_eq!(keys, names, "every figure has exactly one column");
        assert!(COLUMNS
            .iter()
            .all(|c| c.label.len() <= 34 && c.label.is_ascii()));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_ms(12_449), "12.4 s");
        assert_eq!(duration_ms(59_990), "1m 00s");
        assert_eq!(duration_ms(15_000), "15 s");
        assert_eq!(duration_ms(185_000), "3m 05s");
        assert_eq!(duration_ms(7_384_000), "2h 03m");
        assert_eq!(Value::Ratio(Some(0.97349)).human(), "97.3%");
        assert_eq!(Value::Ratio(Some(0.97349)).machine(), "0.9735");
        assert_eq!(Value::Ratio(None).machine(), "");
    }
}
