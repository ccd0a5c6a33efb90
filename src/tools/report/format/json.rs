//! JSON: one object, shape documented in docs/metrics.md and versioned by
//! `report_version` (fields are only ever added within a version).

use serde::Serialize;

use crate::report::agents::AgentRow;
use crate::report::{Report, Row, Settings, Source};

pub const REPORT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    report_version: u32,
    settings: &'a Settings,
    source: &'a Source,
    total: &'a Row,
    rows: &'a [Row],
    intervals: &'a [Row],
    groups: &'a [Row],
    agents: &'a [AgentRow],
    /// Per campaign: the calls hotline placed (never in the figures above).
    outbound: &'a [crate::report::outbound::CampaignRow],
    /// Callbacks, task calls per kind, the repeat-contact rate.
    tasks: &'a crate::report::tasks::TaskFigures,
    /// [seconds waited (rounded up), calls] for every call that asked for
    /// an agent.
    wait_histogram: Vec<(u64, u64)>,
}

pub fn render(report: &Report) -> String {
    let doc = Document {
        report_version: REPORT_VERSION,
        settings: &report.settings,
        source: &report.source,
        total: &report.total,
        rows: &report.rows,
        intervals: &report.intervals,
        groups: &report.groups,
        agents: &report.agents,
        outbound: &report.outbound,
        tasks: &report.tasks,
        wait_histogram: report.waits.iter().collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        // Plain numbers and strings always serialize; say so if not.
        format!("{{\"report_version\":{REPORT_VERSION},\"error\":\"{e}\"}}")
    });
    text.push('\n');
    text
}
