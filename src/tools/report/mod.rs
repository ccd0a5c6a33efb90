//! SLA reports from call records, as pure functions: an [`Accumulator`]
//! takes [`CallRecord`](crate::cdr::CallRecord)s one at a time (order does
//! not matter) and yields the figures per (interval, group) and in total;
//! [`format`] renders them as a terminal table, CSV, JSON or one HTML
//! file. No IO here: `hotline report` in main.rs reads the files
//! (`cdr::read::for_each_record`) and writes the output. Every figure is
//! defined in docs/metrics.md.

pub mod accumulator;
pub mod agents;
pub mod figures;
pub mod format;
pub mod group;
pub mod interval;
pub mod outbound;
pub mod tasks;

pub use accumulator::{Accumulator, Report, Row, Settings, Source, StateSize};
pub use figures::{Figures, Tally, Thresholds, WaitHistogram};
pub use group::GroupBy;
pub use interval::{Interval, UtcOffset};

/// The report over `records`, as if they were read from files.
pub fn report_of<'a>(
    records: impl IntoIterator<Item = &'a crate::cdr::CallRecord>,
    settings: Settings,
) -> Report {
    let mut acc = Accumulator::new(settings);
    let mut n = 0;
    for r in records {
        acc.add(r);
        n += 1;
    }
    acc.finish(Source {
        records: n,
        ..Source::default()
    })
}
