//! `[recordings]`: where calls recorded on queues with `record = true`
//! go, and how long they are kept.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordingsConfig {
    /// `<dir>/YYYY-MM-DD/<call id>.wav`; relative to the config's folder.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// Days a recording is kept; older day folders are removed.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Record every call of these business types (`[ivr]
    /// business_types`), whatever the queue or agent says.
    #[serde(default)]
    pub business_types: Vec<String>,
}

fn default_dir() -> PathBuf {
    PathBuf::from("var/recordings")
}

fn default_retention_days() -> u32 {
    90
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            dir: default_dir(),
            retention_days: default_retention_days(),
            business_types: Vec::new(),
        }
    }
}
