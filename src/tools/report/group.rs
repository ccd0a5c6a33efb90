//! Grouping calls by a dimension of the record.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::cdr::CallRecord;

/// The group of calls that have no value for the dimension (not queued,
/// no agent, no business type chosen).
pub const NONE: &str = "(none)";

/// A dimension to break the figures down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    Queue,
    Agent,
    BusinessType,
    /// The caller's customer class (group, business, public).
    Class,
}

impl GroupBy {
    /// The record's group for this dimension.
    pub fn key(self, r: &CallRecord) -> &str {
        let value = match self {
            GroupBy::Queue => r.queue.as_deref(),
            // Only a connected call was handled by its agent.
            GroupBy::Agent => r.bridged_at.as_ref().and(r.agent.as_deref()),
            GroupBy::BusinessType => r.business_type.as_deref(),
            GroupBy::Class => r.customer_class.as_deref(),
        };
        value.filter(|v| !v.is_empty()).unwrap_or(NONE)
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Queue => "queue",
            GroupBy::Agent => "agent",
            GroupBy::BusinessType => "business-type",
            GroupBy::Class => "class",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queue" => Ok(GroupBy::Queue),
            "agent" => Ok(GroupBy::Agent),
            "business-type" | "business_type" | "business" => Ok(GroupBy::BusinessType),
            "class" | "customer-class" => Ok(GroupBy::Class),
            other => Err(format!(
                "{other:?}: group by queue, agent, business-type or class"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fall_back_to_none() {
        let r = CallRecord {
            queue: Some("repair".into()),
            agent: Some("1001".into()),
            customer_class: Some("public".into()),
            ..CallRecord::default()
        };
        assert_eq!(GroupBy::Queue.key(&r), "repair");
        // Not bridged: the agent did not handle it.
        assert_eq!(GroupBy::Agent.key(&r), NONE);
        assert_eq!(GroupBy::BusinessType.key(&r), NONE);
        assert_eq!(GroupBy::Class.key(&r), "public");
        assert_eq!("business-type".parse(), Ok(GroupBy::BusinessType));
    }
}
