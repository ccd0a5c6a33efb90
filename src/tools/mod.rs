//! Offline tools over the records: the SLA report and the staffing plan.
pub mod plan;
pub mod records;
pub mod report;
pub mod voicemail_list;
