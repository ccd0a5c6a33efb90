//! Tools beside the engine: over the records (the SLA report, the
//! staffing plan, voice messages), and `hotline campaign`, a client of the
//! running engine's API.
pub mod campaign_cli;
pub mod hash_password;
pub mod plan;
pub mod records;
pub mod report;
pub mod voicemail_list;

use std::path::Path;

use crate::config::{ApiConfig, ConfigError};

/// The `[api]` table of the config at `path`, whose local time and
/// service level `hotline report` and `hotline plan` take as defaults
/// (flags win). `None` without a path or without an `[api]` table: the
/// tools' own defaults then apply.
pub fn api_defaults(path: Option<&Path>) -> Result<Option<ApiConfig>, ConfigError> {
    match path {
        Some(p) => Ok(crate::shell::load::config(p)?.api),
        None => Ok(None),
    }
}
