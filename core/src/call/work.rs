//! A call hotline places to work a task (a callback, a follow-up, a
//! message to return), and a waiting caller's request for a callback.

use crate::ids::LegKey;
use crate::tasks::{AttemptEnd, TaskId, TaskKind};

/// Where a task's call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkStage {
    /// Agent first: the agent's phone rings with the task.
    AgentRinging,
    /// The agent answered and hears what the task is.
    Briefing,
    /// The attempt is being written; the customer is dialled once it is
    /// durable.
    Writing,
    /// The customer's phone rings.
    Dialing,
    /// Customer first: the customer answered and waits, at the head of
    /// the queue, for an agent.
    WaitingAgent,
    /// The customer and the agent are talking.
    Connected,
}

#[derive(Debug, Clone)]
pub struct WorkCall {
    pub task: TaskId,
    pub kind: TaskKind,
    pub number: String,
    /// Index of the trunk in the engine's table, and its name.
    pub trunk: usize,
    pub trunk_name: String,
    pub customer_first: bool,
    pub stage: WorkStage,
    /// The agent working it, and their leg (agent first).
    pub agent: Option<String>,
    pub agent_leg: Option<LegKey>,
    /// A trunk channel is held by the customer's leg.
    pub channel: bool,
    /// How the attempt ended, once known.
    pub end: Option<AttemptEnd>,
    pub sip_status: u16,
    /// The attempt's number (1-based), once dialling.
    pub attempt: u32,
    /// The record id of the call the task came from.
    pub origin_call: Option<String>,
}

/// A waiting caller's callback request, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackAsk {
    /// The offer was made; the callback key takes it.
    Offered,
    /// The number is read back; 1 confirms, other digits start another.
    Confirming { number: String },
    /// Keying another number, ended by `#`.
    Entering { digits: String },
    /// Confirmed: the caller hears so and the call ends.
    Booked { task: TaskId },
}

impl CallbackAsk {
    /// The caller is in the middle of the exchange: queue announcements
    /// wait.
    pub fn busy(&self) -> bool {
        matches!(
            self,
            CallbackAsk::Confirming { .. }
                | CallbackAsk::Entering { .. }
                | CallbackAsk::Booked { .. }
        )
    }
}

/// A repeat caller (first-contact responsibility): their last call in
/// the window and the agent who took it, or the owner of their open task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatContact {
    pub earlier_call: String,
    pub agent: Option<String>,
    pub open_task: Option<TaskId>,
}

/// A number read back in groups: a mobile number 3-4-4 (138 0013 8000),
/// others in fours from the end; each group a list of digit prompts, a
/// pause between groups.
pub fn readback_groups(number: &str) -> Vec<String> {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let sizes: Vec<usize> = if digits.len() == 11 && digits[0] == '1' {
        vec![3, 4, 4]
    } else {
        let mut sizes = Vec::new();
        let mut left = digits.len();
        while left > 4 {
            sizes.push(4);
            left -= 4;
        }
        if left > 0 {
            sizes.push(left);
        }
        sizes.reverse();
        sizes
    };
    let mut out = Vec::new();
    let mut at = 0;
    for (i, size) in sizes.into_iter().enumerate() {
        if i > 0 {
            out.push("pause".to_string());
        }
        for d in &digits[at..at + size] {
            out.push(format!("digits/{d}"));
        }
        at += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_numbers_are_read_3_4_4() {
        let groups = readback_groups("13800138000");
        let text: String = groups
            .iter()
            .map(|p| p.strip_prefix("digits/").unwrap_or(" "))
            .collect();
        assert_eq!(text, "138 0013 8000");
        let text: String = readback_groups("075588886666")
            .iter()
            .map(|p| p.strip_prefix("digits/").unwrap_or(" "))
            .collect();
        assert_eq!(text, "0755 8888 6666");
        let text: String = readback_groups("12345")
            .iter()
            .map(|p| p.strip_prefix("digits/").unwrap_or(" "))
            .collect();
        assert_eq!(text, "1 2345");
    }
}
