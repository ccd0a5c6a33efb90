//! Live figures for the operations view: what is happening now (callers
//! waiting and for how long, agents by status and state) and what has
//! happened, both since start (counters, for Prometheus) and "today"
//! (since local midnight, for the wallboard).
//!
//! A pure state machine like the rest of the core: the engine feeds it
//! typed [`LiveEvent`]s with `now` and reads a [`LiveSnapshot`] back. It
//! never reads a clock; "today" is worked out from the engine's
//! `(Instant, Unix ms)` pair and a fixed UTC offset, so the midnight reset
//! is tested with simulated time.
//!
//! What counts as offered, answered, a short abandon or in time, and
//! every rate, come from [`crate::sla`], shared with the report
//! (definitions: docs/metrics.md). What is live-only: each time the IVR
//! puts a caller in a queue is one **queue visit**, counted in that queue
//! when it joins, its result when that is known; "today" buckets by the
//! call's arrival, in local time.
//!
//! All counts and sums are integers (ms); ratios are worked out when a
//! snapshot is taken.

pub mod nodes;
pub mod prometheus;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::acd::{AgentState, AgentStatus};
use crate::cdr::Outcome;
use crate::ids::CallKey;
pub use crate::sla::QueueResult;
use crate::sla::{self, Thresholds};

const DAY_MS: i64 = 86_400_000;

/// What the live view is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSettings {
    /// Service-level threshold T: answered within T counts as in time.
    pub service_level_threshold: Duration,
    /// The service level the hotline aims at (0..=1), for the wallboard's
    /// colours.
    pub service_level_target: f64,
    /// Local time's offset from UTC, in minutes; "today" starts at local
    /// midnight.
    pub utc_offset_minutes: i32,
    /// Abandons shorter than this are short abandons (off when `None`).
    pub short_abandon: Option<Duration>,
}

impl LiveSettings {
    /// The thresholds in whole milliseconds, the records' precision, so
    /// the live view and the report judge a call alike.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            service_level_ms: ms(self.service_level_threshold),
            short_abandon_ms: self.short_abandon.map(ms),
        }
    }
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            service_level_threshold: Duration::from_millis(sla::DEFAULT_SERVICE_LEVEL_MS),
            service_level_target: sla::DEFAULT_SERVICE_LEVEL_TARGET,
            utc_offset_minutes: 0,
            short_abandon: None,
        }
    }
}

/// Every call outcome, in a fixed order (for zero-valued series).
pub const OUTCOMES: [Outcome; 13] = [
    Outcome::Completed,
    Outcome::SilentHangup,
    Outcome::CallerHangup,
    Outcome::CallerCancelled,
    Outcome::OverCapacity,
    Outcome::NoCommonCodec,
    Outcome::BadRequest,
    Outcome::UnknownNumber,
    Outcome::Forbidden,
    Outcome::NoAck,
    Outcome::MediaTimeout,
    Outcome::MediaFailed,
    Outcome::Shutdown,
];

/// An outcome's name, as in the records.
pub fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Completed => "completed",
        Outcome::SilentHangup => "silent_hangup",
        Outcome::CallerHangup => "caller_hangup",
        Outcome::CallerCancelled => "caller_cancelled",
        Outcome::OverCapacity => "over_capacity",
        Outcome::NoCommonCodec => "no_common_codec",
        Outcome::BadRequest => "bad_request",
        Outcome::UnknownNumber => "unknown_number",
        Outcome::Forbidden => "forbidden",
        Outcome::NoAck => "no_ack",
        Outcome::MediaTimeout => "media_timeout",
        Outcome::MediaFailed => "media_failed",
        Outcome::Shutdown => "shutdown",
        // Outbound only: never in the inbound series above.
        Outcome::Unanswered => "unanswered",
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0)
}

/// Agent status labels, in a fixed order.
pub const STATUSES: [&str; 3] = ["logged_out", "available", "on_break"];
/// Agent state labels, in a fixed order.
pub const STATES: [&str; 4] = ["idle", "offered", "on_call", "wrap_up"];

fn status_label(status: &AgentStatus) -> &'static str {
    match status {
        AgentStatus::LoggedOut => STATUSES[0],
        AgentStatus::Available => STATUSES[1],
        AgentStatus::OnBreak { .. } => STATUSES[2],
    }
}

fn state_label(state: AgentState) -> &'static str {
    match state {
        AgentState::Idle => STATES[0],
        AgentState::Offered { .. } => STATES[1],
        AgentState::OnCall { .. } => STATES[2],
        AgentState::WrapUp { .. } => STATES[3],
    }
}

/// What happened, as far as the live view is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent<'a> {
    /// The engine answered (200 OK) a call that arrived at `arrival`.
    CallAnswered { arrival: Instant },
    /// A call ended and its record was made.
    CallEnded {
        call: CallKey,
        arrival: Instant,
        outcome: Outcome,
        answered: bool,
    },
    /// An inbound call that ended was a repeat contact (the number called
    /// within the repeat window, or has an open task).
    RepeatContact { arrival: Instant },
    /// The IVR put the caller in `queue`.
    QueueJoined {
        call: CallKey,
        queue: &'a str,
        arrival: Instant,
    },
    /// The caller's visit to its current queue ended this way. Ignored
    /// when the call has no open visit (a result already counted).
    QueueLeft { call: CallKey, result: QueueResult },
    /// An agent's status, state or registration changed.
    Agent {
        id: &'a str,
        status: &'a AgentStatus,
        state: AgentState,
        registered: bool,
    },
}

/// Engine-level call counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFigures {
    /// Answered, or ended unanswered for a reason other than an invalid
    /// request.
    pub offered: u64,
    /// Answered by the engine (200 OK sent).
    pub answered: u64,
    /// Bad requests and unknown numbers.
    pub invalid: u64,
    /// Ended calls by outcome, in [`OUTCOMES`] order.
    pub ended: [u64; OUTCOMES.len()],
    /// Offered calls from a number that called within the repeat window.
    pub repeat_contacts: u64,
}

impl CallFigures {
    pub fn ended_by(&self, outcome: Outcome) -> u64 {
        self.ended[outcome_index(outcome)]
    }
}

/// Counts for one queue over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFigures {
    /// Visits: every time a caller was put in the queue.
    pub offered: u64,
    /// Visits by result, in [`QueueResult::ALL`] order.
    pub results: [u64; QueueResult::ALL.len()],
    /// Answered with `bridged - invite <= T`.
    pub answered_within_from_arrival: u64,
    /// Answered with `wait <= T` (wait from queue entry to the bridge).
    pub answered_within_from_queue_entry: u64,
    /// Abandons shorter than the short-abandon threshold (also counted in
    /// `abandoned`).
    pub short_abandons: u64,
    /// Sum of the waits of answered visits, ms (ASA from queue entry).
    pub answered_wait_ms: u64,
    /// Sum of arrival-to-bridge of answered visits, ms (ASA from arrival).
    pub answered_since_arrival_ms: u64,
    /// Longest wait of a visit with a result, ms.
    pub longest_wait_ms: u64,
}

impl QueueFigures {
    pub fn result(&self, result: QueueResult) -> u64 {
        self.results[result.index()]
    }

    /// Visits with a result.
    pub fn resolved(&self) -> u64 {
        self.results.iter().sum()
    }

    /// The service-level (and abandon-rate) denominator: visits with a
    /// result, less short abandons.
    pub fn denominator(&self) -> u64 {
        sla::waited(self.resolved(), self.short_abandons)
    }

    pub fn service_level_from_arrival(&self) -> Option<f64> {
        sla::service_level(self.answered_within_from_arrival, self.denominator())
    }

    pub fn service_level_from_queue_entry(&self) -> Option<f64> {
        sla::service_level(self.answered_within_from_queue_entry, self.denominator())
    }

    /// Asterisk's: answered within T from queue entry / answered.
    pub fn service_level_asterisk(&self) -> Option<f64> {
        sla::asterisk_service_level(
            self.answered_within_from_queue_entry,
            self.result(QueueResult::Answered),
        )
    }

    pub fn abandon_rate(&self) -> Option<f64> {
        sla::abandon_rate(
            self.result(QueueResult::Abandoned) - self.short_abandons,
            self.denominator(),
        )
    }

    /// Average speed of answer from queue entry, ms.
    pub fn asa_ms(&self) -> Option<u64> {
        sla::asa_ms(self.answered_wait_ms, self.result(QueueResult::Answered))
    }
}

/// A caller in a queue, from joining to its result.
#[derive(Debug, Clone, Copy)]
struct Visit {
    queue: usize,
    joined_at: Instant,
    arrival: Instant,
}

#[derive(Debug, Clone)]
struct QueueLive {
    name: String,
    total: QueueFigures,
    today: QueueFigures,
}

#[derive(Debug, Clone)]
struct AgentLive {
    id: String,
    name: String,
    number: String,
    queues: Vec<usize>,
    status: &'static str,
    break_reason: Option<String>,
    state: &'static str,
    registered: bool,
}

/// An agent as the live view knows it at start (logged out, idle, not
/// registered).
#[derive(Debug, Clone)]
pub struct LiveAgent {
    pub id: String,
    pub name: String,
    pub number: String,
    /// Queues the agent serves.
    pub queues: Vec<String>,
}

/// The live figures.
#[derive(Debug, Clone)]
pub struct LiveStats {
    settings: LiveSettings,
    epoch: (Instant, u64),
    /// The local day (days since 1970-01-01) "today" refers to.
    day: i64,
    /// Bumped whenever a call, queue or agent figure changes.
    version: u64,
    calls_total: CallFigures,
    calls_today: CallFigures,
    queues: Vec<QueueLive>,
    queue_index: HashMap<String, usize>,
    visits: HashMap<CallKey, Visit>,
    agents: Vec<AgentLive>,
    agent_index: HashMap<String, usize>,
    /// SIP responses sent by code (100..=699, index `code - 100`).
    sip_responses: Box<[u64; 600]>,
}

impl LiveStats {
    /// `epoch` is the engine's `(Instant, Unix ms)` pair: the wall-clock
    /// time at that instant.
    pub fn new(
        settings: LiveSettings,
        queues: &[String],
        agents: Vec<LiveAgent>,
        now: Instant,
        epoch: (Instant, u64),
    ) -> LiveStats {
        let queue_index: HashMap<String, usize> = queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.clone(), i))
            .collect();
        let agents: Vec<AgentLive> = agents
            .into_iter()
            .map(|a| AgentLive {
                queues: a
                    .queues
                    .iter()
                    .filter_map(|q| queue_index.get(q).copied())
                    .collect(),
                id: a.id,
                name: a.name,
                number: a.number,
                status: STATUSES[0],
                break_reason: None,
                state: STATES[0],
                registered: false,
            })
            .collect();
        let mut stats = LiveStats {
            day: 0,
            version: 0,
            calls_total: CallFigures::default(),
            calls_today: CallFigures::default(),
            queues: queues
                .iter()
                .map(|q| QueueLive {
                    name: q.clone(),
                    total: QueueFigures::default(),
                    today: QueueFigures::default(),
                })
                .collect(),
            queue_index,
            visits: HashMap::new(),
            agent_index: agents
                .iter()
                .enumerate()
                .map(|(i, a)| (a.id.clone(), i))
                .collect(),
            agents,
            sip_responses: Box::new([0; 600]),
            settings,
            epoch,
        };
        stats.day = stats.local_day(now);
        stats
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Changes whenever a call, queue or agent figure changes (SIP
    /// response counts aside): a cheap "is there news?" for pushing.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Takes one event at `now`.
    pub fn handle(&mut self, now: Instant, event: LiveEvent<'_>) {
        self.roll(now);
        match event {
            LiveEvent::CallAnswered { arrival } => {
                let today = self.is_today(arrival);
                for (figures, counts) in [
                    (&mut self.calls_total, true),
                    (&mut self.calls_today, today),
                ] {
                    if counts {
                        figures.offered += 1;
                        figures.answered += 1;
                    }
                }
            }
            LiveEvent::CallEnded {
                call,
                arrival,
                outcome,
                answered,
            } => {
                // A visit still open when the call ends (the engine reports
                // every result, so this is a safety net) is an abandon.
                self.leave(now, call, QueueResult::Abandoned);
                let today = self.is_today(arrival);
                for (figures, counts) in [
                    (&mut self.calls_total, true),
                    (&mut self.calls_today, today),
                ] {
                    if !counts {
                        continue;
                    }
                    figures.ended[outcome_index(outcome)] += 1;
                    if !sla::is_offered(outcome) {
                        figures.invalid += 1;
                    } else if !answered {
                        figures.offered += 1;
                    }
                }
            }
            LiveEvent::RepeatContact { arrival } => {
                self.calls_total.repeat_contacts += 1;
                if self.is_today(arrival) {
                    self.calls_today.repeat_contacts += 1;
                }
            }
            LiveEvent::QueueJoined {
                call,
                queue,
                arrival,
            } => {
                self.leave(now, call, QueueResult::Abandoned);
                let Some(&q) = self.queue_index.get(queue) else {
                    return;
                };
                self.visits.insert(
                    call,
                    Visit {
                        queue: q,
                        joined_at: now,
                        arrival,
                    },
                );
                let today = self.is_today(arrival);
                let live = &mut self.queues[q];
                live.total.offered += 1;
                if today {
                    live.today.offered += 1;
                }
            }
            LiveEvent::QueueLeft { call, result } => self.leave(now, call, result),
            LiveEvent::Agent {
                id,
                status,
                state,
                registered,
            } => {
                let Some(&a) = self.agent_index.get(id) else {
                    return;
                };
                let agent = &mut self.agents[a];
                agent.status = status_label(status);
                agent.break_reason = match status {
                    AgentStatus::OnBreak { reason } => Some(reason.clone()),
                    _ => None,
                };
                agent.state = state_label(state);
                agent.registered = registered;
            }
        }
        self.version += 1;
    }

    /// The engine sent a SIP response with status `code` (a counter since
    /// start, so no `now`; it does not change [`version`](Self::version)).
    pub fn sip_response_sent(&mut self, code: u16) {
        if let Some(n) = code
            .checked_sub(100)
            .and_then(|i| self.sip_responses.get_mut(usize::from(i)))
        {
            *n += 1;
        }
    }

    /// Counts the result of `call`'s open visit, if it has one.
    fn leave(&mut self, now: Instant, call: CallKey, result: QueueResult) {
        let Some(visit) = self.visits.remove(&call) else {
            return;
        };
        let wait = ms(now.saturating_duration_since(visit.joined_at));
        let since_arrival = ms(now.saturating_duration_since(visit.arrival));
        let judged = self
            .settings
            .thresholds()
            .judge(result, wait, Some(since_arrival));
        let today = self.is_today(visit.arrival);
        let live = &mut self.queues[visit.queue];
        for (figures, counts) in [(&mut live.total, true), (&mut live.today, today)] {
            if !counts {
                continue;
            }
            figures.results[result.index()] += 1;
            figures.longest_wait_ms = figures.longest_wait_ms.max(wait);
            if judged.short_abandon {
                figures.short_abandons += 1;
            }
            if result == QueueResult::Answered {
                figures.answered_wait_ms += wait;
                figures.answered_since_arrival_ms += since_arrival;
            }
            if judged.in_time_from_arrival {
                figures.answered_within_from_arrival += 1;
            }
            if judged.in_time_from_queue_entry {
                figures.answered_within_from_queue_entry += 1;
            }
        }
    }

    /// Starts a new "today" when local midnight has passed.
    fn roll(&mut self, now: Instant) {
        let day = self.local_day(now);
        if day != self.day {
            self.day = day;
            self.calls_today = CallFigures::default();
            for q in &mut self.queues {
                q.today = QueueFigures::default();
            }
            self.version += 1;
        }
    }

    fn wall_ms(&self, at: Instant) -> i64 {
        let (base, wall) = self.epoch;
        let wall = wall as i64;
        if at >= base {
            wall + (at - base).as_millis() as i64
        } else {
            wall - (base - at).as_millis() as i64
        }
    }

    fn local_day(&self, at: Instant) -> i64 {
        (self.wall_ms(at) + i64::from(self.settings.utc_offset_minutes) * 60_000).div_euclid(DAY_MS)
    }

    fn is_today(&self, arrival: Instant) -> bool {
        self.local_day(arrival) == self.day
    }

    /// Callers waiting now in queue `q`: (call, joined, arrival), longest
    /// wait first.
    fn waiting(&self, q: usize) -> Vec<(CallKey, Instant, Instant)> {
        let mut list: Vec<(CallKey, Instant, Instant)> = self
            .visits
            .iter()
            .filter(|(_, v)| v.queue == q)
            .map(|(call, v)| (*call, v.joined_at, v.arrival))
            .collect();
        list.sort_by_key(|(call, joined, _)| (*joined, *call));
        list
    }

    /// Everything, as of `now`. `detail` adds each waiting caller (the
    /// full status page); `call_id` names a call by its key.
    pub fn snapshot(
        &mut self,
        now: Instant,
        detail: bool,
        call_id: impl Fn(CallKey) -> String,
    ) -> LiveSnapshot {
        self.roll(now);
        let queues = (0..self.queues.len())
            .map(|q| {
                let waiting = self.waiting(q);
                let longest_wait_ms = waiting.first().map_or(0, |(_, joined, _)| {
                    ms(now.saturating_duration_since(*joined))
                });
                let live = &self.queues[q];
                QueueSnapshot {
                    name: live.name.clone(),
                    waiting: waiting.len(),
                    longest_wait_ms,
                    callers: detail.then(|| {
                        waiting
                            .iter()
                            .map(|(call, joined, arrival)| WaitingCaller {
                                call_id: call_id(*call),
                                wait_ms: ms(now.saturating_duration_since(*joined)),
                                since_arrival_ms: ms(now.saturating_duration_since(*arrival)),
                            })
                            .collect()
                    }),
                    agents: self.queue_agents(q),
                    longest_wait_today_ms: live.today.longest_wait_ms.max(longest_wait_ms),
                    total: FiguresView::of(&live.total),
                    today: FiguresView::of(&live.today),
                }
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .map(|a| AgentView {
                id: a.id.clone(),
                name: a.name.clone(),
                number: a.number.clone(),
                status: a.status,
                break_reason: a.break_reason.clone(),
                state: a.state,
                registered: a.registered,
                queues: a
                    .queues
                    .iter()
                    .map(|&q| self.queues[q].name.clone())
                    .collect(),
            })
            .collect();
        let sip_responses = self
            .sip_responses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u16 + 100, *n))
            .collect();
        LiveSnapshot {
            at_ms: self.wall_ms(now).max(0) as u64,
            today: local_date(self.day),
            utc_offset: format_offset(self.settings.utc_offset_minutes),
            service_level_threshold_ms: ms(self.settings.service_level_threshold),
            service_level_target: self.settings.service_level_target,
            short_abandon_ms: self.settings.short_abandon.map(ms),
            calls: CallsView {
                in_progress: 0,
                list: None,
                total: CallsFiguresView::of(&self.calls_total),
                today: CallsFiguresView::of(&self.calls_today),
            },
            queues,
            agents,
            sip_responses,
            outbound: OutboundView::default(),
            tasks: TasksView::default(),
            nodes: Vec::new(),
        }
    }

    /// Agents serving queue `q`, each in one activity.
    fn queue_agents(&self, q: usize) -> QueueAgents {
        let mut c = QueueAgents::default();
        for a in self.agents.iter().filter(|a| a.queues.contains(&q)) {
            c.count(a.status, a.state, a.registered);
        }
        c
    }
}

impl QueueAgents {
    /// One agent, in one activity: a call first, then the status.
    fn count(&mut self, status: &str, state: &str, registered: bool) {
        match (status, state) {
            (_, "on_call") => self.on_call += 1,
            (_, "offered") => self.ringing += 1,
            (_, "wrap_up") => self.wrap_up += 1,
            ("on_break", _) => self.on_break += 1,
            ("available", _) if registered => self.available += 1,
            ("available", _) => self.unregistered += 1,
            _ => self.logged_out += 1,
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// "+08:00" for 480 minutes.
pub fn format_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// "YYYY-MM-DD" for a day number (days since 1970-01-01).
fn local_date(day: i64) -> String {
    let ms = (day.max(0) * DAY_MS) as u64;
    let text = crate::cdr::format_ms(ms);
    text.get(..10).unwrap_or_default().to_string()
}

// ---- the snapshot (the JSON of /api/v1/status and the wallboard's events) ----

/// The live view at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSnapshot {
    /// When it was taken, Unix ms.
    pub at_ms: u64,
    /// The local date "today" figures are for.
    pub today: String,
    pub utc_offset: String,
    pub service_level_threshold_ms: u64,
    pub service_level_target: f64,
    pub short_abandon_ms: Option<u64>,
    pub calls: CallsView,
    pub queues: Vec<QueueSnapshot>,
    pub agents: Vec<AgentView>,
    /// SIP responses sent since start, by code (retransmissions included).
    pub sip_responses: BTreeMap<u16, u64>,
    /// Calls hotline places: trunks in use and campaigns' progress (set by
    /// the engine).
    pub outbound: OutboundView,
    /// Tasks and callbacks now, and today's (set by the engine).
    pub tasks: TasksView,
    /// Several nodes: the other nodes whose calls the figures include
    /// (see [`nodes`]); empty, and left out, on one node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// Work owed to customers: each kind's open tasks, those at risk of
/// missing their deadline and those past it, and today's closes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TasksView {
    pub kinds: Vec<TaskKindView>,
    pub callbacks: CallbacksView,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskKindView {
    pub kind: &'static str,
    pub open: u64,
    /// Open, within `tasks.at_risk_margin` of the deadline.
    pub at_risk: u64,
    /// Open, past the deadline.
    pub overdue: u64,
    /// Closed today (local date): done by the deadline, done after it,
    /// failed (nobody reached); on time / (those three).
    pub done_on_time_today: u64,
    pub done_late_today: u64,
    pub failed_today: u64,
    pub on_time_rate_today: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CallbacksView {
    /// Booked and not yet done (keeping their callers' places).
    pub waiting: u64,
    /// Booked today, done today (the customer answered), failed today.
    pub requested_today: u64,
    pub completed_today: u64,
    pub failed_today: u64,
    /// Median time from the request to the customer's answer, of the
    /// callbacks completed today.
    pub answer_ms_median_today: Option<u64>,
}

/// Trunks and campaigns, now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboundView {
    pub trunks: Vec<TrunkView>,
    pub campaigns: Vec<CampaignView>,
}

/// One trunk's channels now, its cap, and the most in use at once since
/// start (never above the cap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrunkView {
    pub name: String,
    pub channels: u32,
    pub max_channels: u32,
    pub peak_channels: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub id: u64,
    pub name: String,
    pub state: &'static str,
    pub numbers: usize,
    /// Numbers by state (pending, dialing, waiting_retry, confirmed,
    /// failed, invalid, opted_out, cancelled).
    pub counts: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallsView {
    /// Calls the engine holds now (set by the engine).
    pub in_progress: usize,
    /// Each call in progress (in the detailed status; set by the engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<CallView>>,
    pub total: CallsFiguresView,
    pub today: CallsFiguresView,
}

/// One call in progress. No caller number: the read-only views are open
/// to anyone who can reach the API's address.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub call_id: String,
    /// ringing, answering (200 sent, no ACK yet), ivr, queued, connecting
    /// (the agent answered, the announcement plays), with_agent, or
    /// feature_code (an agent dialling a status code).
    pub state: &'static str,
    /// Since the INVITE, ms.
    pub age_ms: u64,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub business_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallsFiguresView {
    pub offered: u64,
    pub answered: u64,
    pub invalid: u64,
    /// answered / offered.
    pub connection_rate: Option<f64>,
    /// Offered calls from a number that called within the repeat window
    /// (3 days by default), and their share of offered calls (target at
    /// most 5%).
    pub repeat_contacts: u64,
    pub repeat_contact_rate: Option<f64>,
    /// Ended calls by outcome (outcomes with none left out).
    pub ended: BTreeMap<&'static str, u64>,
    /// The integer figures, for summing nodes.
    #[serde(skip)]
    pub figures: CallFigures,
}

impl CallsFiguresView {
    pub(crate) fn of(f: &CallFigures) -> CallsFiguresView {
        CallsFiguresView {
            offered: f.offered,
            answered: f.answered,
            invalid: f.invalid,
            connection_rate: sla::connection_rate(f.answered, f.offered),
            repeat_contacts: f.repeat_contacts,
            repeat_contact_rate: (f.offered > 0)
                .then(|| f.repeat_contacts as f64 / f.offered as f64),
            ended: OUTCOMES
                .iter()
                .zip(f.ended)
                .filter(|(_, n)| *n > 0)
                .map(|(o, n)| (outcome_label(*o), n))
                .collect(),
            figures: f.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueSnapshot {
    pub name: String,
    /// Callers waiting now (ringing an agent, or hearing the agent's
    /// announcement, included: they are not connected yet).
    pub waiting: usize,
    /// The longest current wait, from queue entry, ms.
    pub longest_wait_ms: u64,
    /// The waiting callers, longest wait first (in the detailed status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callers: Option<Vec<WaitingCaller>>,
    /// Agents serving the queue, by what they are doing.
    pub agents: QueueAgents,
    /// The longest wait of a caller who arrived today, waiting or not, ms.
    pub longest_wait_today_ms: u64,
    pub total: FiguresView,
    pub today: FiguresView,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaitingCaller {
    pub call_id: String,
    /// Since queue entry.
    pub wait_ms: u64,
    /// Since the call arrived (INVITE).
    pub since_arrival_ms: u64,
}

/// Agents of one queue, each counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueAgents {
    /// Available, idle and registered: can take the next call.
    pub available: u32,
    /// Their phone is ringing with a caller.
    pub ringing: u32,
    pub on_call: u32,
    pub wrap_up: u32,
    /// On break and idle.
    pub on_break: u32,
    /// Available and idle, but the phone is not registered.
    pub unregistered: u32,
    pub logged_out: u32,
}

/// One queue's figures over a period, with the ratios worked out.
#[derive(Debug, Clone, Serialize)]
pub struct FiguresView {
    pub offered: u64,
    /// By result (every result listed, zeros too).
    pub results: BTreeMap<&'static str, u64>,
    pub answered_within_from_arrival: u64,
    pub answered_within_from_queue_entry: u64,
    pub short_abandons: u64,
    pub longest_wait_ms: u64,
    pub service_level_from_arrival: Option<f64>,
    pub service_level_from_queue_entry: Option<f64>,
    pub service_level_asterisk: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub asa_ms: Option<u64>,
    /// The integer figures, for exact use (metrics).
    #[serde(skip)]
    pub figures: QueueFigures,
}

impl FiguresView {
    pub(crate) fn of(f: &QueueFigures) -> FiguresView {
        FiguresView {
            offered: f.offered,
            results: QueueResult::ALL
                .iter()
                .map(|r| (r.as_str(), f.result(*r)))
                .collect(),
            answered_within_from_arrival: f.answered_within_from_arrival,
            answered_within_from_queue_entry: f.answered_within_from_queue_entry,
            short_abandons: f.short_abandons,
            longest_wait_ms: f.longest_wait_ms,
            service_level_from_arrival: f.service_level_from_arrival(),
            service_level_from_queue_entry: f.service_level_from_queue_entry(),
            service_level_asterisk: f.service_level_asterisk(),
            abandon_rate: f.abandon_rate(),
            asa_ms: f.asa_ms(),
            figures: f.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub number: String,
    /// logged_out, available or on_break.
    pub status: &'static str,
    pub break_reason: Option<String>,
    /// idle, offered, on_call or wrap_up.
    pub state: &'static str,
    pub registered: bool,
    /// Queues the agent serves.
    pub queues: Vec<String>,
}
