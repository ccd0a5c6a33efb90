//! `[tasks]`: work owed to customers after a call. When a task counts as
//! at risk, how far back a returning caller is recognised (首问负责制),
//! how long the owning agent is waited for, and which calls leave a
//! follow-up or a message to return.

use std::time::Duration;

use serde::Deserialize;

use crate::tasks::TaskKind;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    /// A task this close to its deadline is offered ahead of new calls.
    #[serde(default = "default_margin", with = "crate::forms::duration")]
    pub at_risk_margin: Duration,
    /// A caller who called within this time is a repeat contact.
    #[serde(default = "default_repeat_window", with = "crate::forms::duration")]
    pub repeat_window: Duration,
    /// How long a repeat caller waits for the agent who took their last
    /// call (or owns their open task) before any agent may take them.
    #[serde(default = "default_owner_wait", with = "crate::forms::duration")]
    pub owner_wait: Duration,
    /// Every voice message left becomes a task for this queue (none: not).
    #[serde(default)]
    pub message_queue: Option<String>,
    /// A message task's deadline, from when it was left.
    #[serde(default = "default_message_due", with = "crate::forms::duration")]
    pub message_due: Duration,
    /// Calls of a business type an agent answered leave a task.
    #[serde(default)]
    pub after_call: Vec<AfterCallRule>,
}

/// `[[tasks.after_call]]`: after an agent's call of `business`, a task
/// of `kind` due `due` after the call, for `queue` (the call's own when
/// not given), owned by the agent who took the call.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AfterCallRule {
    pub business: String,
    #[serde(default = "default_kind")]
    pub kind: TaskKind,
    #[serde(with = "crate::forms::duration")]
    pub due: Duration,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default = "default_retry", with = "crate::forms::duration")]
    pub retry: Duration,
}

fn default_margin() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_repeat_window() -> Duration {
    Duration::from_secs(72 * 3600)
}
fn default_owner_wait() -> Duration {
    Duration::from_secs(20)
}
fn default_message_due() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_kind() -> TaskKind {
    TaskKind::FollowUp
}
fn default_attempts() -> u32 {
    3
}
fn default_retry() -> Duration {
    Duration::from_secs(30 * 60)
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig {
            at_risk_margin: default_margin(),
            repeat_window: default_repeat_window(),
            owner_wait: default_owner_wait(),
            message_queue: None,
            message_due: default_message_due(),
            after_call: Vec::new(),
        }
    }
}
