//! CSV: one row per (interval, group), or per interval, then the total.
//! Column names are the figures' machine names; ratios are decimals
//! (0.9731), durations whole milliseconds (or seconds for `_s`), empty when
//! undefined. The total row also says how many records were read and how
//! many lines were skipped.

use std::fmt::Write as _;

use super::COLUMNS;
use crate::report::interval::local_rfc3339;
use crate::report::{Report, Row};

pub fn render(report: &Report) -> String {
    let mut out = String::from("row,interval_start,interval_end,group");
    for c in COLUMNS {
        out.push(',');
        out.push_str(c.name);
    }
    out.push_str(",records_read,skipped_lines\n");
    for r in &report.rows {
        line(&mut out, report, "interval", r, None);
    }
    line(&mut out, report, "total", &report.total, Some(report));
    out
}

fn line(out: &mut String, report: &Report, kind: &str, r: &Row, source: Option<&Report>) {
    let time = |ms: Option<u64>| {
        ms.map(|ms| local_rfc3339(ms, report.settings.utc_offset))
            .unwrap_or_default()
    };
    let _ = write!(
        out,
        "{kind},{},{},{}",
        time(r.start_ms),
        time(r.end_ms),
        quote(r.group.as_deref().unwrap_or(""))
    );
    for c in COLUMNS {
        out.push(',');
        out.push_str(&(c.get)(&r.figures).machine());
    }
    match source {
        Some(rep) => {
            let _ = write!(out, ",{},{}", rep.source.records, rep.source.skipped_lines);
        }
        None => out.push_str(",,"),
    }
    out.push('\n');
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes
/// doubled.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(super::quote("repair"), "repair");
        assert_eq!(super::quote("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
