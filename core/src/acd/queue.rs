//! Queues and the callers waiting in them.
//!
//! Each queue keeps its callers in ordered sets keyed by
//! [`CallerKey`] (higher priority first, then earlier arrival), so the
//! next caller to serve is the first element, and its usable agents in a
//! set of [`Rank`]s, so the agent to offer is the first element too:
//! joining, hanging up and assigning cost `O(log n)` each, never
//! `O(callers × agents)`. A caller's position is counted from whichever
//! end of the queue is nearer.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::strategy::{Rank, Strategy};
use crate::ids::CallKey;

/// Average handle time assumed before a queue has completed any call.
pub const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(180);

/// One queue as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// How long an agent's phone rings before the next agent is tried.
    #[serde(default = "default_ring_timeout", with = "crate::forms::duration")]
    pub ring_timeout: Duration,
    /// After-call work before the agent is offered the next call.
    #[serde(default = "default_wrap_up", with = "crate::forms::duration")]
    pub wrap_up: Duration,
    /// Longest wait before the caller leaves (to `overflow` when set).
    #[serde(default, with = "crate::forms::duration::option")]
    pub max_wait: Option<Duration>,
    /// Most callers waiting; later callers go to `overflow`, or are refused.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Where callers go on `max_wait` or `max_len`: another queue's name,
    /// `"message"`, an IVR node; the engine interprets it.
    #[serde(default)]
    pub overflow: Option<String>,
    /// Let callers join when no agent is logged in.
    #[serde(default)]
    pub join_empty: bool,
    /// Send waiting callers away when the last agent logs out.
    #[serde(default = "yes")]
    pub leave_empty: bool,
    /// Period of position / expected-wait announcements.
    #[serde(default = "default_announce", with = "crate::forms::duration::option")]
    pub announce_every: Option<Duration>,
    /// When to say "sorry for the wait" (once).
    #[serde(default = "default_apology", with = "crate::forms::duration::option")]
    pub apology_after: Option<Duration>,
    /// Put an agent on break after this many offers in a row without an
    /// answer.
    #[serde(default = "default_auto_break")]
    pub auto_break_after: Option<u32>,
    /// After a phone refuses an offer (busy, failed), how long before it
    /// is offered a call again.
    #[serde(default = "default_retry", with = "crate::forms::duration")]
    pub retry: Duration,
    /// Tell the caller the agent's number before connecting ("工号007为您
    /// 服务"). Used by the engine, not the ACD.
    #[serde(default = "yes")]
    pub announce_agent: bool,
    /// A key that takes a waiting caller out of the queue, to the IVR's
    /// fallback (by default, leaving a message). Used by the engine.
    #[serde(default)]
    pub exit_key: Option<char>,
    /// The extension callers are told when transferred here, and that an
    /// agent's REFER may name. Used by the engine.
    #[serde(default)]
    pub extension: Option<String>,
    /// What a caller put on hold hears first ("请您稍等"), then music.
    #[serde(default = "default_hold_prompt")]
    pub hold_prompt: Option<String>,
    /// What the caller hears when the agent comes back ("对不起，让您久等了").
    #[serde(default = "default_resume_prompt")]
    pub resume_prompt: Option<String>,
    /// Record calls answered from this queue (stereo WAV: caller left,
    /// agent right).
    #[serde(default)]
    pub record: bool,
    /// Tell the caller before the agent is connected that the call may be
    /// recorded (when `record`).
    #[serde(default = "yes")]
    pub recording_notice: bool,
    /// When the agent hangs up first, ask the caller to rate the service
    /// (1 to 5) before the call ends.
    #[serde(default)]
    pub survey: bool,
    /// The survey's question and thanks (prompt names).
    #[serde(default = "default_survey_prompt")]
    pub survey_prompt: String,
    #[serde(default = "default_survey_thanks")]
    pub survey_thanks: String,
    /// The keys for ratings 1 (best) to 5, in that order: "12345" by
    /// default; "54321" where the question offers 5 as the best.
    #[serde(default = "default_survey_keys")]
    pub survey_keys: String,
    /// How long the caller has to press a key after the question; it is
    /// asked once more, then the call ends.
    #[serde(default = "default_survey_timeout", with = "crate::forms::duration")]
    pub survey_timeout: Duration,
    /// Offer a callback ("press 1 to be called back, keeping your place")
    /// to a caller who has waited this long. Used by the engine.
    #[serde(default, with = "crate::forms::duration::option")]
    pub callback_after: Option<Duration>,
    /// Offer it on arrival when the expected wait is over this.
    #[serde(default, with = "crate::forms::duration::option")]
    pub callback_wait_over: Option<Duration>,
    #[serde(default = "default_callback_key")]
    pub callback_key: char,
    /// Agent first (ring the agent, then dial the customer) or customer
    /// first (dial the customer, then queue them at the head).
    #[serde(default)]
    pub callback_mode: crate::tasks::CallbackMode,
    /// Attempts to reach the customer, and the time between them.
    #[serde(default = "default_callback_attempts")]
    pub callback_attempts: u32,
    #[serde(default = "default_callback_retry", with = "crate::forms::duration")]
    pub callback_retry: Duration,
    /// The trunk callbacks and this queue's tasks dial through (the only
    /// trunk when the config has one).
    #[serde(default)]
    pub callback_trunk: Option<String>,
}

fn default_callback_key() -> char {
    '1'
}
fn default_callback_attempts() -> u32 {
    3
}
fn default_callback_retry() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_survey_prompt() -> String {
    "survey".into()
}
fn default_survey_thanks() -> String {
    "survey_thanks".into()
}
fn default_survey_keys() -> String {
    "12345".into()
}
fn default_survey_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_hold_prompt() -> Option<String> {
    Some("hold_start".into())
}
fn default_resume_prompt() -> Option<String> {
    Some("sorry_wait".into())
}

fn default_ring_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_wrap_up() -> Duration {
    Duration::from_secs(30)
}
fn default_announce() -> Option<Duration> {
    Some(Duration::from_secs(30))
}
fn default_apology() -> Option<Duration> {
    Some(Duration::from_secs(15))
}
fn default_retry() -> Duration {
    Duration::from_secs(5)
}
fn default_auto_break() -> Option<u32> {
    Some(3)
}
fn yes() -> bool {
    true
}

impl QueueConfig {
    /// A queue with the defaults: longest idle, 15 s ring timeout, 30 s
    /// wrap-up, no wait or length limit, refuse and leave when empty,
    /// announcements every 30 s, apology at 15 s, break after 3 missed
    /// offers.
    pub fn new(name: &str) -> QueueConfig {
        QueueConfig {
            name: name.to_string(),
            strategy: Strategy::default(),
            ring_timeout: default_ring_timeout(),
            wrap_up: default_wrap_up(),
            max_wait: None,
            max_len: None,
            overflow: None,
            join_empty: false,
            leave_empty: true,
            announce_every: default_announce(),
            apology_after: default_apology(),
            auto_break_after: default_auto_break(),
            retry: default_retry(),
            announce_agent: true,
            exit_key: None,
            extension: None,
            hold_prompt: default_hold_prompt(),
            resume_prompt: default_resume_prompt(),
            record: false,
            recording_notice: true,
            survey: false,
            survey_prompt: default_survey_prompt(),
            survey_thanks: default_survey_thanks(),
            survey_keys: default_survey_keys(),
            survey_timeout: default_survey_timeout(),
            callback_after: None,
            callback_wait_over: None,
            callback_key: default_callback_key(),
            callback_mode: Default::default(),
            callback_attempts: default_callback_attempts(),
            callback_retry: default_callback_retry(),
            callback_trunk: None,
        }
    }

    pub fn with_strategy(mut self, strategy: Strategy) -> QueueConfig {
        self.strategy = strategy;
        self
    }
}

/// A caller's place in the service order: higher priority first, then
/// earlier arrival, then earlier join (`seq` is unique across queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CallerKey {
    pub priority: Reverse<u8>,
    pub arrival: Instant,
    pub seq: u64,
    pub id: CallKey,
}

/// Where a caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    Waiting,
    /// A dial-first entry whose customer is being dialled: keeps its
    /// place, offered to nobody until the customer answers.
    Dialing,
    /// Offered to these agents (several only for ring-all).
    Ringing {
        agents: Vec<u32>,
    },
    Bridged {
        agent: u32,
        since: Instant,
    },
}

/// A caller at run time.
#[derive(Debug)]
pub(crate) struct Caller {
    pub queue: usize,
    pub key: CallerKey,
    pub orig_position: usize,
    pub phase: Phase,
    /// Agents whose offer of this caller ended unanswered.
    pub declined: Vec<u32>,
    pub announce_at: Option<Instant>,
    pub apology_at: Option<Instant>,
    pub max_wait_at: Option<Instant>,
    /// Work, not a caller on the line: `Some(dial_first)`.
    pub work: Option<bool>,
    /// Waiting for this agent alone (first-contact), until `prefer_until`.
    pub reserved_for: Option<u32>,
    pub prefer_until: Option<Instant>,
}

impl Caller {
    pub fn is_work(&self) -> bool {
        self.work.is_some()
    }
}

/// A queue at run time.
#[derive(Debug)]
pub(crate) struct Queue {
    pub config: QueueConfig,
    /// Callers in the queue (waiting or ringing, not bridged).
    pub members: BTreeSet<CallerKey>,
    /// Callers not ringing anyone: the first is the next to offer.
    pub unoffered: BTreeSet<CallerKey>,
    /// (arrival, seq) of `members`, for the longest wait.
    pub by_arrival: BTreeSet<(Instant, u64)>,
    /// Usable member agents, best first.
    pub idle: BTreeSet<Rank>,
    /// Member agents, in member order.
    pub agents: Vec<u32>,
    pub logged_in: u32,
    pub available: u32,
    /// Round-robin memory: the last agent offered a call.
    pub cursor: Option<u32>,
    /// Of `members`, entries that are work (callbacks, tasks).
    pub work: usize,
    /// Callers waiting on other nodes sharing the store, unoffered there:
    /// never offered here, but nobody behind them is offered first (one
    /// order per queue across nodes).
    pub remote: BTreeSet<CallerKey>,
    /// Shared with other nodes: `unoffered` changes are kept in `changed`.
    pub share: bool,
    /// Entries whose `unoffered` membership changed since the ACD last
    /// published them.
    pub changed: Vec<CallerKey>,
    pub counters: QueueCounters,
    handled: u64,
    handle_total: Duration,
}

impl Queue {
    pub fn new(config: QueueConfig) -> Queue {
        Queue {
            config,
            members: BTreeSet::new(),
            unoffered: BTreeSet::new(),
            by_arrival: BTreeSet::new(),
            idle: BTreeSet::new(),
            agents: Vec::new(),
            logged_in: 0,
            available: 0,
            cursor: None,
            work: 0,
            remote: BTreeSet::new(),
            share: false,
            changed: Vec::new(),
            counters: QueueCounters::default(),
            handled: 0,
            handle_total: Duration::ZERO,
        }
    }

    /// A caller on the line counts for the longest wait; work does not.
    pub fn insert(&mut self, key: CallerKey, live: bool) {
        self.members.insert(key);
        self.set_unoffered(key, true);
        if live {
            self.by_arrival.insert((key.arrival, key.seq));
        }
    }

    pub fn remove(&mut self, key: &CallerKey) {
        self.members.remove(key);
        self.set_unoffered(*key, false);
        self.by_arrival.remove(&(key.arrival, key.seq));
    }

    /// Puts `key` in or out of the unoffered set; whether it changed.
    pub fn set_unoffered(&mut self, key: CallerKey, unoffered: bool) -> bool {
        let changed = if unoffered {
            self.unoffered.insert(key)
        } else {
            self.unoffered.remove(&key)
        };
        if changed && self.share {
            self.changed.push(key);
        }
        changed
    }

    /// 1-based position of a caller in the queue, counting callers
    /// waiting ahead on other nodes.
    pub fn position(&self, key: &CallerKey) -> usize {
        let remote_ahead = if self.remote.is_empty() {
            0
        } else {
            self.remote.range(..*key).count()
        };
        position(&self.members, key) + remote_ahead
    }

    /// Whether a caller waiting on another node comes before `key`.
    pub fn remote_ahead_of(&self, key: &CallerKey) -> bool {
        self.remote.first().is_some_and(|r| r < key)
    }

    /// Records a finished call's handle time (talk plus wrap-up).
    pub fn record_handle_time(&mut self, handle: Duration) {
        self.handled += 1;
        self.handle_total += handle;
    }

    /// The exact mean of recorded handle times, or
    /// [`DEFAULT_HANDLE_TIME`] before the first.
    pub fn average_handle_time(&self) -> Duration {
        if self.handled == 0 {
            return DEFAULT_HANDLE_TIME;
        }
        let nanos = self.handle_total.as_nanos() / u128::from(self.handled);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Expected wait at `position`: that many average handle times shared
    /// among the queue's available agents; `None` when no agent is
    /// available to estimate with.
    pub fn expected_wait(&self, position: usize) -> Option<Duration> {
        if self.available == 0 {
            return None;
        }
        let nanos =
            self.average_handle_time().as_nanos() * position as u128 / u128::from(self.available);
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    pub fn longest_wait(&self, now: Instant) -> Option<Duration> {
        self.by_arrival
            .first()
            .map(|(arrival, _)| now.saturating_duration_since(*arrival))
    }
}

/// 1-based position of `key` in `set`, counting from the nearer end:
/// `O(min(position, len - position))`.
pub(crate) fn position(set: &BTreeSet<CallerKey>, key: &CallerKey) -> usize {
    let mut before = set.range(..*key);
    let mut after = set.range((Bound::Excluded(*key), Bound::Unbounded));
    let mut steps = 0;
    loop {
        if before.next_back().is_none() {
            return steps + 1;
        }
        if after.next().is_none() {
            let len = set.len() - usize::from(set.contains(key));
            return len - steps + 1;
        }
        steps += 1;
    }
}

/// Totals since start, per queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    /// Callers who entered the queue.
    pub entered: u64,
    /// Callers connected to an agent.
    pub answered: u64,
    /// Connected calls that ended.
    pub completed: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Callers who reached `max_wait` with no overflow target.
    pub timed_out: u64,
    /// Callers sent to the overflow target (`max_wait` or `max_len`).
    pub overflowed: u64,
    /// Callers sent away when the last agent logged out.
    pub exited_empty: u64,
    /// Callers who pressed the exit key.
    pub exited_key: u64,
    /// Callers refused at the door (no agents, or full with no overflow).
    pub refused: u64,
    /// Callers who asked to be called back (left keeping their place).
    pub callbacks: u64,
}

/// A read-only look at one queue, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub name: String,
    pub strategy: Strategy,
    /// Callers in the queue (waiting or ringing an agent), work aside.
    pub waiting: usize,
    /// Callbacks and tasks in the queue.
    pub work: usize,
    /// Of those, callers ringing an agent.
    pub ringing: usize,
    /// Wait of the caller who joined first.
    pub longest_wait: Option<Duration>,
    /// Member agents.
    pub agents: usize,
    pub logged_in: u32,
    /// Available and reachable (busy or not).
    pub available: u32,
    /// Usable now: available, reachable and idle.
    pub idle: usize,
    pub average_handle_time: Duration,
    pub counters: QueueCounters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_from_the_nearer_end() {
        let t0 = crate::time::test_epoch();
        let key = |seq: u64, prio: u8| CallerKey {
            priority: Reverse(prio),
            arrival: t0 + Duration::from_secs(seq),
            seq,
            id: CallKey(seq),
        };
        let mut set = BTreeSet::new();
        for seq in 0..9 {
            set.insert(key(seq, 1));
        }
        set.insert(key(100, 3));
        assert_eq!(position(&set, &key(100, 3)), 1, "priority first");
        for seq in 0..9 {
            assert_eq!(position(&set, &key(seq, 1)), seq as usize + 2);
        }
        // A key not in the set: where it would go.
        assert_eq!(position(&set, &key(50, 1)), 11);
        assert_eq!(position(&BTreeSet::new(), &key(1, 1)), 1);
    }

    #[test]
    fn expected_wait_shares_handle_time_among_available_agents() {
        let mut q = Queue::new(QueueConfig::new("q"));
        assert_eq!(q.expected_wait(1), None);
        q.available = 2;
        assert_eq!(q.average_handle_time(), DEFAULT_HANDLE_TIME);
        assert_eq!(q.expected_wait(3), Some(Duration::from_secs(270)));
        q.record_handle_time(Duration::from_secs(100));
        q.record_handle_time(Duration::from_secs(201));
        assert_eq!(q.average_handle_time(), Duration::from_millis(150_500));
        assert_eq!(q.expected_wait(2), Some(Duration::from_millis(150_500)));
    }

    #[test]
    fn config_defaults_from_toml() {
        let q: QueueConfig = toml::from_str(
            "name = \"repair\"\nstrategy = { skills = { skill = \"gas\", min_level = 3 } }\nmax_wait = \"2m\"\n",
        )
        .expect("toml");
        assert_eq!(
            q.strategy,
            Strategy::Skills {
                skill: "gas".into(),
                min_level: 3
            }
        );
        assert_eq!(q.max_wait, Some(Duration::from_secs(120)));
        let defaults = QueueConfig::new("repair");
        assert_eq!(
            (q.ring_timeout, q.wrap_up, q.announce_every, q.apology_after),
            (
                defaults.ring_timeout,
                defaults.wrap_up,
                defaults.announce_every,
                defaults.apology_after
            )
        );
        assert_eq!(
            (q.join_empty, q.leave_empty, q.auto_break_after),
            (false, true, Some(3))
        );
        let rr: QueueConfig =
            toml::from_str("name = \"a\"\nstrategy = \"round-robin\"\n").expect("toml");
        assert_eq!(rr.strategy, Strategy::RoundRobin);
        assert!(toml::from_str::<QueueConfig>("name = \"a\"\nbogus = 1\n").is_err());
    }
}
