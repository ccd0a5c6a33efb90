//! `[ivr]` as written: numbers, schedules and nodes, each naming others
//! by name. `ivr::program` checks and compiles them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Language;

/// `[ivr]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// Business types calls can be given (consultation, repair, ...).
    #[serde(default)]
    pub business_types: Vec<String>,
    pub numbers: Vec<NumberConfig>,
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleConfig>,
    pub nodes: BTreeMap<String, NodeConfig>,
}

/// A dialled number (or `*` for any other) and where its calls start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    pub number: String,
    #[serde(default)]
    pub language: Option<Language>,
    /// Entry node in open hours (or always, without a schedule).
    pub entry: String,
    #[serde(default)]
    pub schedule: Option<String>,
    /// Entry node outside open hours.
    #[serde(default)]
    pub night_entry: Option<String>,
    /// Entry node on holidays (default: `night_entry`).
    #[serde(default)]
    pub holiday_entry: Option<String>,
    /// Where queue nodes send callers when no agent is logged in, unless
    /// the node says otherwise.
    #[serde(default)]
    pub no_agents: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Local time's offset from UTC, e.g. "+08:00".
    pub utc_offset: String,
    /// Opening and closing time, "HH:MM" local.
    pub open: String,
    pub close: String,
    /// Open days ("mon".."sun"); all days when empty.
    #[serde(default)]
    pub days: Vec<String>,
    /// Closed dates, "YYYY-MM-DD" local.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// One `[ivr.nodes.<name>]` table; `type` says which. (The config reader
/// moves `type` out to tag the table, see `config::source`, so that errors
/// inside a node keep their lines.)
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeConfig {
    Play {
        prompt: String,
        #[serde(default)]
        interruptible: bool,
        next: String,
    },
    Menu {
        prompt: String,
        options: BTreeMap<String, String>,
        #[serde(default = "default_menu_timeout", with = "crate::forms::duration")]
        timeout: Duration,
        #[serde(default = "default_inter_digit", with = "crate::forms::duration")]
        inter_digit_timeout: Duration,
        #[serde(default)]
        invalid_prompt: Option<String>,
        #[serde(default)]
        timeout_prompt: Option<String>,
        #[serde(default = "default_retries")]
        retries: u32,
        /// After the retries: where to go.
        default: String,
        /// A node (typically a silent-caller node) taken on a timeout with
        /// no key at all, instead of retrying.
        #[serde(default)]
        on_timeout: Option<String>,
    },
    Collect {
        prompt: String,
        variable: String,
        #[serde(default = "default_min_digits")]
        min_digits: usize,
        max_digits: usize,
        #[serde(default = "default_terminator")]
        terminator: String,
        #[serde(default = "default_menu_timeout", with = "crate::forms::duration")]
        timeout: Duration,
        #[serde(default = "default_inter_digit", with = "crate::forms::duration")]
        inter_digit_timeout: Duration,
        #[serde(default)]
        invalid_prompt: Option<String>,
        #[serde(default = "default_retries")]
        retries: u32,
        next: String,
        default: String,
    },
    Business {
        business: String,
        next: String,
    },
    Language {
        language: Language,
        next: String,
    },
    Queue {
        queue: String,
        #[serde(default)]
        on_no_agents: Option<String>,
    },
    Message {
        prompt: String,
        #[serde(default = "default_max_message", with = "crate::forms::duration")]
        max_length: Duration,
        #[serde(default = "default_end_silence", with = "crate::forms::duration")]
        end_silence: Duration,
        next: String,
    },
    SilentCaller {
        question: String,
        #[serde(default = "default_silent_wait", with = "crate::forms::duration")]
        wait: Duration,
        apology: String,
        #[serde(default = "default_silent_wait", with = "crate::forms::duration")]
        apology_wait: Duration,
        /// Where a caller who speaks or presses a key goes.
        on_response: String,
    },
    Hangup {
        #[serde(default)]
        prompt: Option<String>,
    },
    /// Branches on whether the caller heard a campaign's notice lately
    /// (`outbound.notice_memory_days`): `campaign` names one campaign,
    /// or any when absent.
    Notified {
        #[serde(default)]
        campaign: Option<String>,
        yes: String,
        no: String,
    },
}

fn default_menu_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_inter_digit() -> Duration {
    Duration::from_secs(3)
}
fn default_retries() -> u32 {
    2
}
fn default_min_digits() -> usize {
    1
}
fn default_terminator() -> String {
    "#".into()
}
fn default_max_message() -> Duration {
    Duration::from_secs(60)
}
fn default_end_silence() -> Duration {
    Duration::from_secs(5)
}
fn default_silent_wait() -> Duration {
    Duration::from_secs(5)
}
