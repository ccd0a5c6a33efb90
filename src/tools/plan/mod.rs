//! The staffing planner (`hotline plan`): demand per interval of the day
//! from call records, and the agents that meet a service-level target by
//! Erlang C and Erlang A. See docs/planning.md.
//!
//! - [`erlang`]: the queueing formulas, pure;
//! - [`demand`]: records folded into per-interval counts, one at a time;
//! - [`staffing`]: counts to agents per interval, pure;
//! - [`format`]: table, CSV or JSON.
//!
//! [`run`] streams the records (bounded memory) and writes the plan.

pub mod demand;
pub mod erlang;
pub mod format;
pub mod staffing;

use std::io::Write;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::tools::records::{for_each_record, parse_time_ms, record_files, ReadError};
use demand::{Demand, DemandOptions, DAY_MS};
use format::PlanReport;
use staffing::{PlanOptions, Target};

/// `hotline plan` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Call-record files, or folders of them (the engine's cdr.dir).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Take the defaults of --target and --utc-offset from this config's
    /// [api] table (service_level_target/service_level, utc_offset).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Service-level target: percent of calls answered within seconds
    /// [default: --config's api.service_level_target/api.service_level,
    /// else 85/15].
    #[arg(long, value_parser = parse_target)]
    pub target: Option<Target>,
    /// Interval length (15m, 30m, 1h...); must divide a day.
    #[arg(long, default_value = "30m", value_parser = parse_interval)]
    pub interval: IntervalMs,
    /// Local time of the intervals and of --from/--to dates, as ±HH:MM
    /// [default: --config's api.utc_offset, else +00:00].
    #[arg(long, value_parser = parse_offset, allow_hyphen_values = true)]
    pub utc_offset: Option<OffsetMs>,
    /// First local date (YYYY-MM-DD) or UTC instant (RFC 3339, ...Z) of
    /// arrivals to count.
    #[arg(long, value_parser = parse_bound)]
    pub from: Option<Bound>,
    /// Last local date, included, or UTC instant, excluded.
    #[arg(long, value_parser = parse_bound)]
    pub to: Option<Bound>,
    /// A table for people, CSV for spreadsheets, JSON for tools.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Plan no agent busier than this share of the time (e.g. 0.85).
    #[arg(long, value_parser = parse_max_occupancy)]
    pub max_occupancy: Option<f64>,
    /// Share of paid time off the phones (e.g. 0.3): scheduled staff =
    /// agents / (1 - shrinkage).
    #[arg(long, value_parser = parse_shrinkage)]
    pub shrinkage: Option<f64>,
    /// Only calls sent to this ACD queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Mean patience for Erlang A (e.g. 90s) instead of the records'
    /// estimate.
    #[arg(long, value_parser = parse_patience)]
    pub patience: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// An interval length in milliseconds that divides a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalMs(pub i64);

/// A UTC offset in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetMs(pub i64);

/// A --from/--to bound before the offset is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A local calendar date, as days since 1970-01-01.
    Date(i64),
    /// An instant, epoch milliseconds.
    Instant(i64),
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write the plan: {0}")]
    Write(#[source] std::io::Error),
    #[error("--from is not before --to")]
    EmptyRange,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("api.service_level_target = {0} in --config: the planner needs a share above 0 and below 1 (or give --target)")]
    ConfigTarget(f64),
}

/// The target without --target: 85% within 15 s, the planner's usual aim.
pub const DEFAULT_TARGET: Target = Target {
    share: 0.85,
    seconds: 15.0,
};

/// `--target` and `--utc-offset`, or else the config's `[api]`, or else
/// the planner's defaults.
fn resolve(args: &PlanArgs) -> Result<(Target, i64), PlanError> {
    let api = crate::tools::api_defaults(args.config.as_deref())?;
    let target = match (args.target, &api) {
        (Some(t), _) => t,
        (None, Some(a)) if a.service_level_target > 0.0 && a.service_level_target < 1.0 => Target {
            share: a.service_level_target,
            seconds: a.service_level.as_secs_f64(),
        },
        (None, Some(a)) => return Err(PlanError::ConfigTarget(a.service_level_target)),
        (None, None) => DEFAULT_TARGET,
    };
    let offset = match (args.utc_offset, &api) {
        (Some(o), _) => o.0,
        (None, Some(a)) => i64::from(a.utc_offset.0) * 60_000,
        (None, None) => 0,
    };
    Ok((target, offset))
}

/// Why a command-line value was refused; each names the text given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgError {
    #[error("{0:?}: expected PERCENT/SECONDS, e.g. 85/15")]
    TargetForm(String),
    #[error("{0:?}: the percent must be above 0 and below 100")]
    TargetShare(String),
    #[error("{0:?}: the seconds must be 0 or more")]
    TargetSeconds(String),
    #[error("{text:?}: {source}")]
    Duration {
        text: String,
        source: humantime::DurationError,
    },
    #[error("{0:?}: the interval must be whole minutes that divide a day (15m, 30m, 1h...)")]
    Interval(String),
    #[error("{0:?}: expected an offset like +08:00 or -05:30")]
    Offset(String),
    #[error("{0:?}: expected a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)")]
    Bound(String),
    #[error("{0:?}: a share above 0 and at most 1, e.g. 0.85")]
    MaxOccupancy(String),
    #[error("{0:?}: a share from 0 up to (not including) 1, e.g. 0.3")]
    Shrinkage(String),
    #[error("{0:?}: patience must be above zero")]
    Patience(String),
}

fn duration(text: &str) -> Result<std::time::Duration, ArgError> {
    humantime::parse_duration(text).map_err(|source| ArgError::Duration {
        text: text.to_string(),
        source,
    })
}

/// `85/15`: 85% within 15 s (a trailing `s` is allowed).
pub fn parse_target(text: &str) -> Result<Target, ArgError> {
    let form = || ArgError::TargetForm(text.to_string());
    let (share, seconds) = text.split_once('/').ok_or_else(form)?;
    let share: f64 = share
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| form())?;
    let seconds: f64 = seconds
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| form())?;
    if !(share > 0.0 && share < 100.0) {
        return Err(ArgError::TargetShare(text.to_string()));
    }
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(ArgError::TargetSeconds(text.to_string()));
    }
    Ok(Target {
        share: share / 100.0,
        seconds,
    })
}

pub fn parse_interval(text: &str) -> Result<IntervalMs, ArgError> {
    let bad = || ArgError::Interval(text.to_string());
    let ms = i64::try_from(duration(text)?.as_millis()).map_err(|_| bad())?;
    if !(60_000..=DAY_MS).contains(&ms) || DAY_MS % ms != 0 || ms % 60_000 != 0 {
        return Err(bad());
    }
    Ok(IntervalMs(ms))
}

/// `+08:00`, `-05:30`, `+0800`, `Z`.
pub fn parse_offset(text: &str) -> Result<OffsetMs, ArgError> {
    let err = || ArgError::Offset(text.to_string());
    if text == "Z" || text == "z" {
        return Ok(OffsetMs(0));
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(err()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    let hours: i64 = digits[..2].parse().map_err(|_| err())?;
    let minutes: i64 = digits[2..].parse().map_err(|_| err())?;
    if hours > 14 || minutes > 59 {
        return Err(err());
    }
    Ok(OffsetMs(sign * (hours * 60 + minutes) * 60_000))
}

/// `2026-11-25` (a local date) or `2026-11-25T01:30:00Z` (an instant).
pub fn parse_bound(text: &str) -> Result<Bound, ArgError> {
    let err = || ArgError::Bound(text.to_string());
    if text.len() == 10 {
        let ms = parse_time_ms(&format!("{text}T00:00:00Z")).ok_or_else(err)?;
        let ms = i64::try_from(ms).map_err(|_| err())?;
        return Ok(Bound::Date(ms / DAY_MS));
    }
    let ms = parse_time_ms(text).ok_or_else(err)?;
    Ok(Bound::Instant(i64::try_from(ms).map_err(|_| err())?))
}

fn parse_max_occupancy(text: &str) -> Result<f64, ArgError> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(ArgError::MaxOccupancy(text.to_string())),
    }
}

fn parse_shrinkage(text: &str) -> Result<f64, ArgError> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(ArgError::Shrinkage(text.to_string())),
    }
}

fn parse_patience(text: &str) -> Result<f64, ArgError> {
    let s = duration(text)?.as_secs_f64();
    if s > 0.0 {
        Ok(s)
    } else {
        Err(ArgError::Patience(text.to_string()))
    }
}

/// Epoch ms of a bound; a date is local midnight, and as an upper bound
/// the midnight after it (the date is included).
fn bound_ms(bound: Bound, offset_ms: i64, upper: bool) -> i64 {
    match bound {
        Bound::Date(day) => (day + i64::from(upper)) * DAY_MS - offset_ms,
        Bound::Instant(ms) => ms,
    }
}

/// Reads the records behind `args.paths` and writes the plan to `out`;
/// unreadable lines are reported on `err`.
pub fn run(args: &PlanArgs, out: &mut impl Write, err: &mut impl Write) -> Result<(), PlanError> {
    let (target, offset) = resolve(args)?;
    let from_ms = args.from.map(|b| bound_ms(b, offset, false));
    let to_ms = args.to.map(|b| bound_ms(b, offset, true));
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from >= to {
            return Err(PlanError::EmptyRange);
        }
    }
    let files = record_files(&args.paths)?;
    let mut demand = Demand::new(DemandOptions {
        interval_ms: args.interval.0,
        utc_offset_ms: offset,
        from_ms,
        to_ms,
        queue: args.queue.clone(),
    });
    let stats = for_each_record(&files, |_, _| {}, |record| demand.add(&record))?;
    if stats.skipped_lines > 0 {
        let _ = writeln!(
            err,
            "hotline plan: skipped {} unreadable lines (torn by a crash, or not a call record)",
            stats.skipped_lines
        );
    }
    let summary = demand.summary();
    if let Some(warning) = format::short_history_warning(&summary) {
        let _ = writeln!(err, "hotline plan: {warning}");
    }
    let plan = staffing::plan(
        &summary,
        PlanOptions {
            target,
            max_occupancy: args.max_occupancy,
            shrinkage: args.shrinkage,
            patience_s: args.patience,
        },
    );
    let report = PlanReport {
        plan,
        demand: summary,
        stats,
        queue: args.queue.clone(),
    };
    let text = match args.format {
        Format::Table => format::table(&report),
        Format::Csv => format::csv(&report),
        Format::Json => format::json(&report),
    };
    out.write_all(text.as_bytes()).map_err(PlanError::Write)?;
    out.flush().map_err(PlanError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_intervals_offsets_and_bounds() {
        let t = parse_target("85/15").expect("target");
        assert_eq!((t.share, t.seconds), (0.85, 15.0));
        let t = parse_target("80%/20s").expect("target");
        assert_eq!((t.share, t.seconds), (0.8, 20.0));
        assert_eq!(
            parse_target("100/15"),
            Err(ArgError::TargetShare("100/15".into()))
        );
        assert_eq!(parse_target("85"), Err(ArgError::TargetForm("85".into())));
        assert_eq!(
            parse_target("85/-1"),
            Err(ArgError::TargetSeconds("85/-1".into()))
        );
        assert_eq!(parse_interval("30m"), Ok(IntervalMs(1_800_000)));
        assert_eq!(parse_interval("1h"), Ok(IntervalMs(3_600_000)));
        assert_eq!(
            parse_interval("7m"),
            Err(ArgError::Interval("7m".into())),
            "does not divide a day"
        );
        assert_eq!(parse_interval("30s"), Err(ArgError::Interval("30s".into())));
        assert!(matches!(
            parse_interval("half an hour"),
            Err(ArgError::Duration { text, .. }) if text == "half an hour"
        ));
        assert_eq!(parse_offset("+08:00"), Ok(OffsetMs(28_800_000)));
        assert_eq!(parse_offset("-05:30"), Ok(OffsetMs(-19_800_000)));
        assert_eq!(parse_offset("+0545"), Ok(OffsetMs(20_700_000)));
        assert_eq!(parse_offset("08:00"), Err(ArgError::Offset("08:00".into())));
        // 2026-11-25 is day 20_782; local midnight at +08:00 is 16:00Z the
        // day before; as an upper bound, the next local midnight.
        let day = parse_bound("2026-11-25").expect("date");
        assert_eq!(day, Bound::Date(20_782));
        let from = bound_ms(day, 28_800_000, false);
        assert_eq!(Some(from as u64), parse_time_ms("2026-11-24T16:00:00Z"));
        let to = bound_ms(day, 28_800_000, true);
        assert_eq!(Some(to as u64), parse_time_ms("2026-11-25T16:00:00Z"));
        assert_eq!(
            parse_bound("2026-11-25T01:30:00Z"),
            Ok(Bound::Instant(1_795_570_200_000))
        );
        assert_eq!(
            parse_bound("25/11/2026"),
            Err(ArgError::Bound("25/11/2026".into()))
        );
        assert_eq!(parse_max_occupancy("0.85"), Ok(0.85));
        assert_eq!(
            parse_max_occupancy("0"),
            Err(ArgError::MaxOccupancy("0".into()))
        );
        assert_eq!(parse_shrinkage("1"), Err(ArgError::Shrinkage("1".into())));
        assert_eq!(parse_patience("90s"), Ok(90.0));
        assert_eq!(parse_patience("0s"), Err(ArgError::Patience("0s".into())));
    }
}
