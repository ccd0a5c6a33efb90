//! Asterisk-compatible `queue_log` events, so existing queue-statistics
//! tools read hotline's data unchanged.
//!
//! A line is `epoch|callid|queue|agent|EVENT|data1|data2|...`, exactly as
//! Asterisk's `ast_queue_log()` writes it: the five fixed fields each
//! followed by `|`, then the event's data fields joined by `|` (so an event
//! without data ends in `|`). `callid` and `agent` are `NONE` when the event
//! has none. Times in data fields are whole seconds (truncated) unless
//! noted; ring times are milliseconds.
//!
//! | Event | Data fields |
//! |---|---|
//! | `ENTERQUEUE` | url, callerid, origposition |
//! | `CONNECT` | holdtime, bridged-channel-uniqueid, ringtime |
//! | `COMPLETECALLER` | holdtime, calltime, origposition |
//! | `COMPLETEAGENT` | holdtime, calltime, origposition |
//! | `BLINDTRANSFER` | extension, context (`hotline`), holdtime, calltime, origposition |
//! | `ATTENDEDTRANSFER` | `BRIDGE`, the agent taking the call, holdtime, calltime, origposition |
//! | `ABANDON` | position, origposition, waittime |
//! | `EXITWITHTIMEOUT` | position, origposition, waittime |
//! | `EXITEMPTY` | position, origposition, waittime |
//! | `EXITWITHKEY` | key, position, origposition, waittime |
//! | `RINGNOANSWER` | ringtime (ms) |
//! | `RINGCANCELED` | ringtime (ms) |
//! | `JOINEMPTY` | (none) |
//! | `FULL` | (none) |
//! | `ADDMEMBER` | `PAUSED` when the agent joins on a break, else empty |
//! | `REMOVEMEMBER` | (empty) |
//! | `PAUSE` | reason |
//! | `UNPAUSE` | reason (empty) |
//!
//! Positions are 1-based. `holdtime` runs from joining the queue to the
//! answer, `calltime` from the answer to the hang-up, `waittime` from
//! joining to leaving.

use std::fmt::Write;
use std::time::Duration;

use crate::ids::CallKey;

/// One queue_log line, before the engine adds the wall-clock time and the
/// caller's channel id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLogEvent {
    pub queue: String,
    /// The caller the event is about; `None` for member events (the line
    /// then says `NONE`).
    pub caller: Option<CallKey>,
    /// The agent id; `None` for caller-only events (`NONE`).
    pub agent: Option<String>,
    pub kind: QueueLogKind,
}

/// The event and its data fields, in Asterisk's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueLogKind {
    EnterQueue {
        url: String,
        caller_id: String,
        orig_position: usize,
    },
    Connect {
        hold: Duration,
        /// The agent leg's unique id. The ACD fills in the agent id; the
        /// engine may replace it with the agent leg's Call-ID.
        bridged_uniqueid: String,
        ring: Duration,
    },
    CompleteCaller {
        hold: Duration,
        talk: Duration,
        orig_position: usize,
    },
    CompleteAgent {
        hold: Duration,
        talk: Duration,
        orig_position: usize,
    },
    /// The agent transferred the caller (blind) to `extension`.
    BlindTransfer {
        extension: String,
        hold: Duration,
        talk: Duration,
        orig_position: usize,
    },
    /// The agent joined the caller with the colleague they consulted.
    AttendedTransfer {
        to_agent: String,
        hold: Duration,
        talk: Duration,
        orig_position: usize,
    },
    Abandon {
        position: usize,
        orig_position: usize,
        wait: Duration,
    },
    ExitWithTimeout {
        position: usize,
        orig_position: usize,
        wait: Duration,
    },
    ExitEmpty {
        position: usize,
        orig_position: usize,
        wait: Duration,
    },
    /// The caller asked to be called back (hotline's own event: Asterisk
    /// has no callbacks); the callback keeps this place.
    Callback {
        position: usize,
        orig_position: usize,
        wait: Duration,
    },
    ExitWithKey {
        key: char,
        position: usize,
        orig_position: usize,
        wait: Duration,
    },
    RingNoAnswer {
        ring: Duration,
    },
    RingCanceled {
        ring: Duration,
    },
    JoinEmpty,
    Full,
    AddMember {
        paused: bool,
    },
    RemoveMember,
    Pause {
        reason: String,
    },
    Unpause {
        reason: String,
    },
}

impl QueueLogKind {
    /// Asterisk's event name.
    pub fn name(&self) -> &'static str {
        match self {
            QueueLogKind::EnterQueue { .. } => "ENTERQUEUE",
            QueueLogKind::Connect { .. } => "CONNECT",
            QueueLogKind::CompleteCaller { .. } => "COMPLETECALLER",
            QueueLogKind::CompleteAgent { .. } => "COMPLETEAGENT",
            QueueLogKind::BlindTransfer { .. } => "BLINDTRANSFER",
            QueueLogKind::AttendedTransfer { .. } => "ATTENDEDTRANSFER",
            QueueLogKind::Abandon { .. } => "ABANDON",
            QueueLogKind::ExitWithTimeout { .. } => "EXITWITHTIMEOUT",
            QueueLogKind::ExitEmpty { .. } => "EXITEMPTY",
            QueueLogKind::ExitWithKey { .. } => "EXITWITHKEY",
            QueueLogKind::Callback { .. } => "EXITWITHCALLBACK",
            QueueLogKind::RingNoAnswer { .. } => "RINGNOANSWER",
            QueueLogKind::RingCanceled { .. } => "RINGCANCELED",
            QueueLogKind::JoinEmpty => "JOINEMPTY",
            QueueLogKind::Full => "FULL",
            QueueLogKind::AddMember { .. } => "ADDMEMBER",
            QueueLogKind::RemoveMember => "REMOVEMEMBER",
            QueueLogKind::Pause { .. } => "PAUSE",
            QueueLogKind::Unpause { .. } => "UNPAUSE",
        }
    }

    /// The data fields, `|`-joined (empty for events without data).
    fn write_data(&self, out: &mut String) {
        let secs = |d: &Duration| d.as_secs();
        let ms = |d: &Duration| d.as_millis();
        // Writing to a String cannot fail.
        let _ = match self {
            QueueLogKind::EnterQueue {
                url,
                caller_id,
                orig_position,
            } => write!(out, "{}|{}|{orig_position}", clean(url), clean(caller_id)),
            QueueLogKind::Connect {
                hold,
                bridged_uniqueid,
                ring,
            } => write!(
                out,
                "{}|{}|{}",
                secs(hold),
                clean(bridged_uniqueid),
                secs(ring)
            ),
            QueueLogKind::CompleteCaller {
                hold,
                talk,
                orig_position,
            }
            | QueueLogKind::CompleteAgent {
                hold,
                talk,
                orig_position,
            } => write!(out, "{}|{}|{orig_position}", secs(hold), secs(talk)),
            QueueLogKind::BlindTransfer {
                extension,
                hold,
                talk,
                orig_position,
            } => write!(
                out,
                "{}|hotline|{}|{}|{orig_position}",
                clean(extension),
                secs(hold),
                secs(talk)
            ),
            QueueLogKind::AttendedTransfer {
                to_agent,
                hold,
                talk,
                orig_position,
            } => write!(
                out,
                "BRIDGE|{}|{}|{}|{orig_position}",
                clean(to_agent),
                secs(hold),
                secs(talk)
            ),
            QueueLogKind::Abandon {
                position,
                orig_position,
                wait,
            }
            | QueueLogKind::ExitWithTimeout {
                position,
                orig_position,
                wait,
            }
            | QueueLogKind::ExitEmpty {
                position,
                orig_position,
                wait,
            }
            | QueueLogKind::Callback {
                position,
                orig_position,
                wait,
            } => write!(out, "{position}|{orig_position}|{}", secs(wait)),
            QueueLogKind::ExitWithKey {
                key,
                position,
                orig_position,
                wait,
            } => write!(
                out,
                "{}|{position}|{orig_position}|{}",
                clean(&key.to_string()),
                secs(wait)
            ),
            QueueLogKind::RingNoAnswer { ring } | QueueLogKind::RingCanceled { ring } => {
                write!(out, "{}", ms(ring))
            }
            QueueLogKind::JoinEmpty | QueueLogKind::Full | QueueLogKind::RemoveMember => Ok(()),
            QueueLogKind::AddMember { paused } => {
                out.push_str(if *paused { "PAUSED" } else { "" });
                Ok(())
            }
            QueueLogKind::Pause { reason } | QueueLogKind::Unpause { reason } => {
                out.push_str(&clean(reason));
                Ok(())
            }
        };
    }
}

/// Field separators and line breaks cannot appear inside a field.
fn clean(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains(['|', '\r', '\n']) {
        field.replace(['|', '\r', '\n'], " ").into()
    } else {
        field.into()
    }
}

impl QueueLogEvent {
    /// The queue_log line (without the newline) for this event at
    /// `epoch_secs`, with `callid` as the caller's channel id. `callid` is
    /// only used for events about a caller; member events say `NONE`.
    pub fn to_line(&self, epoch_secs: u64, callid: &str) -> String {
        let mut line = String::with_capacity(96);
        let callid = if self.caller.is_some() && !callid.is_empty() {
            clean(callid)
        } else {
            "NONE".into()
        };
        let agent = self.agent.as_deref().map_or("NONE".into(), clean);
        let _ = write!(
            line,
            "{epoch_secs}|{callid}|{}|{agent}|{}|",
            clean(&self.queue),
            self.kind.name()
        );
        self.kind.write_data(&mut line);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(agent: Option<&str>, kind: QueueLogKind) -> QueueLogEvent {
        QueueLogEvent {
            queue: "repair".into(),
            caller: Some(CallKey(7)),
            agent: agent.map(str::to_string),
            kind,
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn lines_follow_asterisk_field_order() {
        let cases = [
            (
                event(
                    None,
                    QueueLogKind::EnterQueue {
                        url: String::new(),
                        caller_id: "13800138000".into(),
                        orig_position: 3,
                    },
                ),
                "1700000000|1700000000.7|repair|NONE|ENTERQUEUE||13800138000|3",
            ),
            (
                event(
                    Some("1001"),
                    QueueLogKind::Connect {
                        hold: Duration::from_millis(12_900),
                        bridged_uniqueid: "1001".into(),
                        ring: s(4),
                    },
                ),
                "1700000000|1700000000.7|repair|1001|CONNECT|12|1001|4",
            ),
            (
                event(
                    Some("1001"),
                    QueueLogKind::CompleteCaller {
                        hold: s(12),
                        talk: s(95),
                        orig_position: 3,
                    },
                ),
                "1700000000|1700000000.7|repair|1001|COMPLETECALLER|12|95|3",
            ),
            (
                event(
                    Some("1001"),
                    QueueLogKind::CompleteAgent {
                        hold: s(12),
                        talk: s(95),
                        orig_position: 1,
                    },
                ),
                "1700000000|1700000000.7|repair|1001|COMPLETEAGENT|12|95|1",
            ),
            (
                event(
                    Some("1001"),
                    QueueLogKind::BlindTransfer {
                        extension: "8003".into(),
                        hold: s(12),
                        talk: s(40),
                        orig_position: 1,
                    },
                ),
                "1700000000|1700000000.7|repair|1001|BLINDTRANSFER|8003|hotline|12|40|1",
            ),
            (
                event(
                    Some("1001"),
                    QueueLogKind::AttendedTransfer {
                        to_agent: "1002".into(),
                        hold: s(12),
                        talk: s(40),
                        orig_position: 1,
                    },
                ),
                "1700000000|1700000000.7|repair|1001|ATTENDEDTRANSFER|BRIDGE|1002|12|40|1",
            ),
            (
                event(
                    None,
                    QueueLogKind::Abandon {
                        position: 2,
                        orig_position: 4,
                        wait: s(31),
                    },
                ),
                "1700000000|1700000000.7|repair|NONE|ABANDON|2|4|31",
            ),
            (
                event(
                    None,
                    QueueLogKind::ExitWithTimeout {
                        position: 1,
                        orig_position: 1,
                        wait: s(120),
                    },
                ),
                "1700000000|1700000000.7|repair|NONE|EXITWITHTIMEOUT|1|1|120",
            ),
            (
                event(
                    None,
                    QueueLogKind::ExitEmpty {
                        position: 1,
                        orig_position: 2,
                        wait: s(9),
                    },
                ),
                "1700000000|1700000000.7|repair|NONE|EXITEMPTY|1|2|9",
            ),
            (
                event(
                    None,
                    QueueLogKind::ExitWithKey {
                        key: '0',
                        position: 2,
                        orig_position: 2,
                        wait: s(40),
                    },
                ),
                "1700000000|1700000000.7|repair|NONE|EXITWITHKEY|0|2|2|40",
            ),
            (
                event(Some("1002"), QueueLogKind::RingNoAnswer { ring: s(15) }),
                "1700000000|1700000000.7|repair|1002|RINGNOANSWER|15000",
            ),
            (
                event(
                    Some("1002"),
                    QueueLogKind::RingCanceled {
                        ring: Duration::from_millis(2_500),
                    },
                ),
                "1700000000|1700000000.7|repair|1002|RINGCANCELED|2500",
            ),
            (
                event(None, QueueLogKind::JoinEmpty),
                "1700000000|1700000000.7|repair|NONE|JOINEMPTY|",
            ),
            (
                event(None, QueueLogKind::Full),
                "1700000000|1700000000.7|repair|NONE|FULL|",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_line(1_700_000_000, "1700000000.7"), want);
        }
    }

    #[test]
    fn member_events_have_no_callid() {
        let member = |kind| QueueLogEvent {
            queue: "repair".into(),
            caller: None,
            agent: Some("1001".into()),
            kind,
        };
        let t = 1_700_000_000;
        assert_eq!(
            member(QueueLogKind::AddMember { paused: false }).to_line(t, "x"),
            "1700000000|NONE|repair|1001|ADDMEMBER|"
        );
        assert_eq!(
            member(QueueLogKind::AddMember { paused: true }).to_line(t, ""),
            "1700000000|NONE|repair|1001|ADDMEMBER|PAUSED"
        );
        assert_eq!(
            member(QueueLogKind::Pause {
                reason: "lunch|break\n".into()
            })
            .to_line(t, ""),
            "1700000000|NONE|repair|1001|PAUSE|lunch break ",
            "separators cannot leak into fields"
        );
        assert_eq!(
            member(QueueLogKind::Unpause {
                reason: String::new()
            })
            .to_line(t, ""),
            "1700000000|NONE|repair|1001|UNPAUSE|"
        );
        assert_eq!(
            member(QueueLogKind::RemoveMember).to_line(t, ""),
            "1700000000|NONE|repair|1001|REMOVEMEMBER|"
        );
    }
}
