//! IVR programs as data: the `[ivr]` part of the config, checked and
//! compiled into a graph of nodes addressed by index.
//!
//! The loader refuses, with the key path and line, any reference to an
//! unknown node, prompt or queue, any node no entry can reach, and any loop
//! that could spin without waiting for the caller.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Deserialize;

use crate::config::Language;
use crate::forms::{parse_date, parse_hhmm, parse_offset};

/// `[ivr]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// Business types calls can be given (consultation, repair, ...).
    #[serde(default)]
    pub business_types: Vec<String>,
    /// Queues nodes may send callers to.
    #[serde(default)]
    pub queues: Vec<String>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
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

/// Index of a node in a [`Program`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u16);

/// A checked node: names resolved to indices.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Play {
        prompt: String,
        interruptible: bool,
        next: NodeId,
    },
    Menu {
        prompt: String,
        options: Vec<(String, NodeId)>,
        timeout: Duration,
        inter_digit_timeout: Duration,
        invalid_prompt: Option<String>,
        timeout_prompt: Option<String>,
        retries: u32,
        default: NodeId,
        on_timeout: Option<NodeId>,
    },
    Collect {
        prompt: String,
        variable: String,
        min_digits: usize,
        max_digits: usize,
        terminator: Option<char>,
        timeout: Duration,
        inter_digit_timeout: Duration,
        invalid_prompt: Option<String>,
        retries: u32,
        next: NodeId,
        default: NodeId,
    },
    Business {
        business: String,
        next: NodeId,
    },
    Language {
        language: Language,
        next: NodeId,
    },
    Queue {
        queue: String,
        on_no_agents: NodeId,
    },
    Message {
        prompt: String,
        max_length: Duration,
        end_silence: Duration,
        next: NodeId,
    },
    SilentCaller {
        question: String,
        wait: Duration,
        apology: String,
        apology_wait: Duration,
        on_response: NodeId,
    },
    Hangup {
        prompt: Option<String>,
    },
}

impl Node {
    /// Nodes the caller leaves only by pressing keys, speaking or waiting.
    fn waits_for_caller(&self) -> bool {
        matches!(
            self,
            Node::Menu { .. }
                | Node::Collect { .. }
                | Node::Message { .. }
                | Node::SilentCaller { .. }
        )
    }

    fn edges(&self) -> Vec<NodeId> {
        match self {
            Node::Play { next, .. }
            | Node::Business { next, .. }
            | Node::Language { next, .. }
            | Node::Message { next, .. } => vec![*next],
            Node::Menu {
                options,
                default,
                on_timeout,
                ..
            } => options
                .iter()
                .map(|(_, n)| *n)
                .chain([*default])
                .chain(*on_timeout)
                .collect(),
            Node::Collect { next, default, .. } => vec![*next, *default],
            Node::Queue { on_no_agents, .. } => vec![*on_no_agents],
            Node::SilentCaller { on_response, .. } => vec![*on_response],
            Node::Hangup { .. } => vec![],
        }
    }

    /// Every prompt the node may play.
    pub fn prompts(&self) -> Vec<&str> {
        match self {
            Node::Play { prompt, .. } | Node::Message { prompt, .. } => vec![prompt],
            Node::Menu {
                prompt,
                invalid_prompt,
                timeout_prompt,
                ..
            } => [
                Some(prompt),
                invalid_prompt.as_ref(),
                timeout_prompt.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect(),
            Node::Collect {
                prompt,
                invalid_prompt,
                ..
            } => [Some(prompt), invalid_prompt.as_ref()]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            Node::SilentCaller {
                question, apology, ..
            } => vec![question, apology],
            Node::Hangup { prompt } => prompt.iter().map(String::as_str).collect(),
            Node::Business { .. } | Node::Language { .. } | Node::Queue { .. } => vec![],
        }
    }
}

/// Where a number's calls start.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberPlan {
    pub number: String,
    pub language: Option<Language>,
    pub entry: NodeId,
    pub schedule: Option<Schedule>,
    pub night_entry: Option<NodeId>,
    pub holiday_entry: Option<NodeId>,
}

/// Open hours in a fixed UTC offset (the operators' zones have no DST).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub utc_offset_minutes: i32,
    pub open_minute: u32,
    pub close_minute: u32,
    /// Bit i set: open on weekday i (0 = Monday).
    pub days: u8,
    /// Closed dates as days since 1970-01-01 (local).
    pub holidays: BTreeSet<i64>,
}

/// Which entry a schedule picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Open,
    Closed,
    Holiday,
}

impl Schedule {
    /// The period at `wall_ms` (Unix epoch milliseconds).
    pub fn period(&self, wall_ms: u64) -> Period {
        let local_minutes = (wall_ms / 60_000) as i64 + self.utc_offset_minutes as i64;
        let day = local_minutes.div_euclid(24 * 60);
        let minute = local_minutes.rem_euclid(24 * 60) as u32;
        if self.holidays.contains(&day) {
            return Period::Holiday;
        }
        // 1970-01-01 was a Thursday (weekday 3 counting from Monday = 0).
        let weekday = (day + 3).rem_euclid(7) as u8;
        let open_day = self.days & (1 << weekday) != 0;
        let in_hours = if self.open_minute <= self.close_minute {
            (self.open_minute..self.close_minute).contains(&minute)
        } else {
            // Overnight hours, e.g. 20:00-08:00.
            minute >= self.open_minute || minute < self.close_minute
        };
        if open_day && in_hours {
            Period::Open
        } else {
            Period::Closed
        }
    }
}

/// A checked IVR program.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub nodes: Vec<Node>,
    pub names: Vec<String>,
    pub numbers: Vec<NumberPlan>,
    pub business_types: Vec<String>,
    pub queues: Vec<String>,
}

impl Program {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.0 as usize]
    }

    /// The plan for a dialled number: an exact match, else `*`.
    pub fn plan_for(&self, dialled: &str) -> Option<&NumberPlan> {
        self.numbers
            .iter()
            .find(|n| n.number == dialled)
            .or_else(|| self.numbers.iter().find(|n| n.number == "*"))
    }

    /// The entry node for a call arriving at `wall_ms`.
    pub fn entry(&self, plan: &NumberPlan, wall_ms: u64) -> NodeId {
        let Some(schedule) = &plan.schedule else {
            return plan.entry;
        };
        match schedule.period(wall_ms) {
            Period::Open => plan.entry,
            Period::Closed => plan.night_entry.unwrap_or(plan.entry),
            Period::Holiday => plan
                .holiday_entry
                .or(plan.night_entry)
                .unwrap_or(plan.entry),
        }
    }

    /// Every prompt any node may play.
    pub fn prompt_names(&self) -> BTreeSet<&str> {
        self.nodes.iter().flat_map(|n| n.prompts()).collect()
    }

    /// Checks and compiles `[ivr]`. `source` is the config text (for line
    /// numbers); `prompt_exists` says whether a prompt name can be played.
    pub fn compile(
        config: &IvrConfig,
        source: &str,
        prompt_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Program, String> {
        Compiler {
            config,
            source,
            ids: config
                .nodes
                .keys()
                .enumerate()
                .map(|(i, name)| (name.as_str(), NodeId(i as u16)))
                .collect(),
        }
        .compile(prompt_exists)
    }
}

struct Compiler<'a> {
    config: &'a IvrConfig,
    source: &'a str,
    ids: HashMap<&'a str, NodeId>,
}

impl<'a> Compiler<'a> {
    fn compile(&self, prompt_exists: &dyn Fn(&str) -> bool) -> Result<Program, String> {
        if self.config.nodes.len() > u16::MAX as usize {
            return Err("ivr.nodes: too many nodes".into());
        }
        let mut nodes = Vec::with_capacity(self.config.nodes.len());
        for (name, node) in &self.config.nodes {
            nodes.push(self.node(name, node)?);
        }
        for (name, node) in self.config.nodes.keys().zip(&nodes) {
            for prompt in node.prompts() {
                if !prompt_exists(prompt) {
                    let key = self.prompt_key(name, prompt);
                    return Err(self.error(
                        &format!("ivr.nodes.{name}"),
                        Some(&key),
                        &format!(
                            "no prompt named {prompt:?} (looked in every language's prompt folder)"
                        ),
                    ));
                }
            }
        }
        let mut numbers = Vec::new();
        for (i, n) in self.config.numbers.iter().enumerate() {
            numbers.push(self.number(i, n)?);
        }
        if numbers.is_empty() {
            return Err("ivr.numbers: give at least one number (\"*\" for any)".into());
        }
        let program = Program {
            nodes,
            names: self.config.nodes.keys().cloned().collect(),
            numbers,
            business_types: self.config.business_types.clone(),
            queues: self.config.queues.clone(),
        };
        self.check_reachable(&program)?;
        self.check_idle_loops(&program)?;
        Ok(program)
    }

    fn prompt_key(&self, node: &str, prompt: &str) -> String {
        match self.config.nodes.get(node) {
            Some(NodeConfig::Menu {
                invalid_prompt,
                timeout_prompt,
                ..
            }) if invalid_prompt.as_deref() == Some(prompt) => "invalid_prompt".into(),
            Some(NodeConfig::Menu { timeout_prompt, .. })
                if timeout_prompt.as_deref() == Some(prompt) =>
            {
                "timeout_prompt".into()
            }
            Some(NodeConfig::Collect { invalid_prompt, .. })
                if invalid_prompt.as_deref() == Some(prompt) =>
            {
                "invalid_prompt".into()
            }
            Some(NodeConfig::SilentCaller { apology, .. }) if apology == prompt => "apology".into(),
            Some(NodeConfig::SilentCaller { .. }) => "question".into(),
            _ => "prompt".into(),
        }
    }

    fn target(&self, table: &str, key: &str, name: &str) -> Result<NodeId, String> {
        self.ids
            .get(name)
            .copied()
            .ok_or_else(|| self.error(table, Some(key), &format!("no node named {name:?}")))
    }

    fn node(&self, name: &str, node: &NodeConfig) -> Result<Node, String> {
        let table = format!("ivr.nodes.{name}");
        let t = |key: &str, target: &str| self.target(&table, key, target);
        Ok(match node {
            NodeConfig::Play {
                prompt,
                interruptible,
                next,
            } => Node::Play {
                prompt: prompt.clone(),
                interruptible: *interruptible,
                next: t("next", next)?,
            },
            NodeConfig::Menu {
                prompt,
                options,
                timeout,
                inter_digit_timeout,
                invalid_prompt,
                timeout_prompt,
                retries,
                default,
                on_timeout,
            } => {
                let mut resolved = Vec::new();
                for (keys, target) in options {
                    if keys.is_empty() || !keys.chars().all(is_dtmf) {
                        return Err(self.error(
                            &table,
                            Some("options"),
                            &format!("option {keys:?} is not a key sequence (0-9, *, #, A-D)"),
                        ));
                    }
                    resolved.push((keys.clone(), t("options", target)?));
                }
                if resolved.is_empty() {
                    return Err(self.error(&table, Some("options"), "a menu needs options"));
                }
                Node::Menu {
                    prompt: prompt.clone(),
                    options: resolved,
                    timeout: *timeout,
                    inter_digit_timeout: *inter_digit_timeout,
                    invalid_prompt: invalid_prompt.clone(),
                    timeout_prompt: timeout_prompt.clone(),
                    retries: *retries,
                    default: t("default", default)?,
                    on_timeout: on_timeout
                        .as_deref()
                        .map(|n| t("on_timeout", n))
                        .transpose()?,
                }
            }
            NodeConfig::Collect {
                prompt,
                variable,
                min_digits,
                max_digits,
                terminator,
                timeout,
                inter_digit_timeout,
                invalid_prompt,
                retries,
                next,
                default,
            } => {
                if *min_digits == 0 || min_digits > max_digits {
                    return Err(self.error(
                        &table,
                        Some("min_digits"),
                        "min_digits must be at least 1 and at most max_digits",
                    ));
                }
                let mut chars = terminator.chars();
                let terminator = match (chars.next(), chars.next()) {
                    (None, _) => None,
                    (Some(c), None) if is_dtmf(c) => Some(c),
                    _ => {
                        return Err(self.error(
                            &table,
                            Some("terminator"),
                            "terminator must be one key (usually \"#\") or empty",
                        ))
                    }
                };
                Node::Collect {
                    prompt: prompt.clone(),
                    variable: variable.clone(),
                    min_digits: *min_digits,
                    max_digits: *max_digits,
                    terminator,
                    timeout: *timeout,
                    inter_digit_timeout: *inter_digit_timeout,
                    invalid_prompt: invalid_prompt.clone(),
                    retries: *retries,
                    next: t("next", next)?,
                    default: t("default", default)?,
                }
            }
            NodeConfig::Business { business, next } => {
                if !self.config.business_types.contains(business) {
                    return Err(self.error(
                        &table,
                        Some("business"),
                        &format!(
                            "{business:?} is not in ivr.business_types {:?}",
                            self.config.business_types
                        ),
                    ));
                }
                Node::Business {
                    business: business.clone(),
                    next: t("next", next)?,
                }
            }
            NodeConfig::Language { language, next } => Node::Language {
                language: *language,
                next: t("next", next)?,
            },
            NodeConfig::Queue {
                queue,
                on_no_agents,
            } => {
                if !self.config.queues.contains(queue) {
                    return Err(self.error(
                        &table,
                        Some("queue"),
                        &format!(
                            "no queue named {queue:?} (ivr.queues: {:?})",
                            self.config.queues
                        ),
                    ));
                }
                let fallback = match on_no_agents {
                    Some(n) => t("on_no_agents", n)?,
                    None => self.default_no_agents().ok_or_else(|| {
                        self.error(
                            &table,
                            Some("queue"),
                            "no on_no_agents here and no number has no_agents: a caller would have nowhere to go when no agent is logged in",
                        )
                    })?,
                };
                Node::Queue {
                    queue: queue.clone(),
                    on_no_agents: fallback,
                }
            }
            NodeConfig::Message {
                prompt,
                max_length,
                end_silence,
                next,
            } => Node::Message {
                prompt: prompt.clone(),
                max_length: *max_length,
                end_silence: *end_silence,
                next: t("next", next)?,
            },
            NodeConfig::SilentCaller {
                question,
                wait,
                apology,
                apology_wait,
                on_response,
            } => Node::SilentCaller {
                question: question.clone(),
                wait: *wait,
                apology: apology.clone(),
                apology_wait: *apology_wait,
                on_response: t("on_response", on_response)?,
            },
            NodeConfig::Hangup { prompt } => Node::Hangup {
                prompt: prompt.clone(),
            },
        })
    }

    /// The first number's `no_agents` node, used by queue nodes that name
    /// none of their own.
    fn default_no_agents(&self) -> Option<NodeId> {
        self.config
            .numbers
            .iter()
            .find_map(|n| n.no_agents.as_deref())
            .and_then(|n| self.ids.get(n).copied())
    }

    fn number(&self, index: usize, n: &NumberConfig) -> Result<NumberPlan, String> {
        let table = format!("ivr.numbers[{index}]");
        let t = |key: &str, target: &str| -> Result<NodeId, String> {
            self.ids.get(target).copied().ok_or_else(|| {
                self.error_numbers(
                    index,
                    key,
                    &format!("{table}.{key}: no node named {target:?}"),
                )
            })
        };
        let schedule = match &n.schedule {
            None => None,
            Some(name) => {
                let s = self.config.schedules.get(name).ok_or_else(|| {
                    self.error_numbers(
                        index,
                        "schedule",
                        &format!("{table}.schedule: no schedule named {name:?} in ivr.schedules"),
                    )
                })?;
                Some(self.schedule(name, s)?)
            }
        };
        if let Some(no_agents) = &n.no_agents {
            t("no_agents", no_agents)?;
        }
        Ok(NumberPlan {
            number: n.number.clone(),
            language: n.language,
            entry: t("entry", &n.entry)?,
            schedule,
            night_entry: n
                .night_entry
                .as_deref()
                .map(|e| t("night_entry", e))
                .transpose()?,
            holiday_entry: n
                .holiday_entry
                .as_deref()
                .map(|e| t("holiday_entry", e))
                .transpose()?,
        })
    }

    fn schedule(&self, name: &str, s: &ScheduleConfig) -> Result<Schedule, String> {
        let table = format!("ivr.schedules.{name}");
        let err = |key: &str, what: &str| self.error(&table, Some(key), what);
        let offset = parse_offset(&s.utc_offset)
            .ok_or_else(|| err("utc_offset", "write the offset as \"+08:00\""))?;
        let open = parse_hhmm(&s.open).ok_or_else(|| err("open", "write times as \"08:00\""))?;
        let close = parse_hhmm(&s.close).ok_or_else(|| err("close", "write times as \"20:00\""))?;
        let mut days = 0u8;
        for d in &s.days {
            let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .position(|w| w.eq_ignore_ascii_case(d))
                .ok_or_else(|| err("days", &format!("{d:?} is not one of mon..sun")))?;
            days |= 1 << i;
        }
        if s.days.is_empty() {
            days = 0x7f;
        }
        let mut holidays = BTreeSet::new();
        for h in &s.holidays {
            holidays.insert(
                parse_date(h)
                    .ok_or_else(|| err("holidays", &format!("{h:?} is not a YYYY-MM-DD date")))?,
            );
        }
        Ok(Schedule {
            utc_offset_minutes: offset,
            open_minute: open,
            close_minute: close,
            days,
            holidays,
        })
    }

    fn check_reachable(&self, p: &Program) -> Result<(), String> {
        let mut seen = vec![false; p.nodes.len()];
        let mut stack: Vec<NodeId> = p
            .numbers
            .iter()
            .flat_map(|n| [Some(n.entry), n.night_entry, n.holiday_entry])
            .flatten()
            .collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0 as usize], true) {
                continue;
            }
            stack.extend(p.node(id).edges());
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            let name = &p.names[i];
            return Err(self.error(
                &format!("ivr.nodes.{name}"),
                None,
                "no number's entry leads to this node (unreachable)",
            ));
        }
        Ok(())
    }

    /// A cycle through nodes that never wait for the caller would spin
    /// (or replay prompts) forever.
    fn check_idle_loops(&self, p: &Program) -> Result<(), String> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        fn visit(
            p: &Program,
            id: NodeId,
            marks: &mut [Mark],
            path: &mut Vec<NodeId>,
        ) -> Option<Vec<NodeId>> {
            let node = p.node(id);
            if node.waits_for_caller() {
                return None;
            }
            match marks[id.0 as usize] {
                Mark::Done => return None,
                Mark::Active => {
                    let start = path.iter().position(|n| *n == id).unwrap_or(0);
                    return Some(path[start..].to_vec());
                }
                Mark::New => {}
            }
            marks[id.0 as usize] = Mark::Active;
            path.push(id);
            for next in node.edges() {
                if let Some(cycle) = visit(p, next, marks, path) {
                    return Some(cycle);
                }
            }
            path.pop();
            marks[id.0 as usize] = Mark::Done;
            None
        }
        let mut marks = vec![Mark::New; p.nodes.len()];
        for i in 0..p.nodes.len() {
            let mut path = Vec::new();
            if let Some(cycle) = visit(p, NodeId(i as u16), &mut marks, &mut path) {
                let names: Vec<&str> = cycle.iter().map(|id| p.name(*id)).collect();
                let first = names.first().copied().unwrap_or_default();
                return Err(self.error(
                    &format!("ivr.nodes.{first}"),
                    None,
                    &format!(
                        "these nodes loop without ever waiting for the caller: {} -> {first}",
                        names.join(" -> ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// "ivr.nodes.main.next (line 42): ..." with the line found in the text.
    fn error(&self, table: &str, key: Option<&str>, what: &str) -> String {
        let path = match key {
            Some(k) => format!("{table}.{k}"),
            None => table.to_string(),
        };
        match line_of(self.source, table, key) {
            Some(line) => format!("{path} (line {line}): {what}"),
            None => format!("{path}: {what}"),
        }
    }

    fn error_numbers(&self, index: usize, key: &str, what: &str) -> String {
        match line_of_array_entry(self.source, "ivr.numbers", index, key) {
            Some(line) => format!("{what} (line {line})"),
            None => what.to_string(),
        }
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// The line of `key` inside the table `[table]` (or of the header when
/// `key` is `None`), found by reading the TOML text.
pub fn line_of(source: &str, table: &str, key: Option<&str>) -> Option<usize> {
    let header = format!("[{table}]");
    let mut in_table = false;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            if in_table {
                return None;
            }
            in_table = t == header;
            if in_table && key.is_none() {
                return Some(i + 1);
            }
            continue;
        }
        if let (true, Some(k)) = (in_table, key) {
            if let Some((name, _)) = t.split_once('=') {
                if name.trim().trim_matches('"') == k {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// The line of `key` in the `index`th `[[table]]` entry.
fn line_of_array_entry(source: &str, table: &str, index: usize, key: &str) -> Option<usize> {
    let header = format!("[[{table}]]");
    let mut count = 0usize;
    let mut in_entry = false;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_entry = t == header && {
                count += 1;
                count == index + 1
            };
            continue;
        }
        if in_entry {
            if let Some((name, _)) = t.split_once('=') {
                if name.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"
[ivr]
business_types = ["consultation", "repair"]
queues = ["consultation", "repair"]

[[ivr.numbers]]
number = "*"
entry = "welcome"
no_agents = "message"

[ivr.nodes.welcome]
type = "play"
prompt = "greeting"
interruptible = true
next = "main"

[ivr.nodes.main]
type = "menu"
prompt = "main_menu"
options = { 1 = "consult", 2 = "repair", 9 = "message" }
default = "bye"
on_timeout = "silent"

[ivr.nodes.consult]
type = "business"
business = "consultation"
next = "consult_queue"

[ivr.nodes.consult_queue]
type = "queue"
queue = "consultation"

[ivr.nodes.repair]
type = "business"
business = "repair"
next = "message"

[ivr.nodes.message]
type = "message"
prompt = "leave_message"
next = "bye"

[ivr.nodes.silent]
type = "silent_caller"
question = "silent_question"
apology = "silent_apology"
on_response = "main"

[ivr.nodes.bye]
type = "hangup"
prompt = "goodbye"
"#;

    fn compile(text: &str) -> Result<Program, String> {
        #[derive(Deserialize)]
        struct Doc {
            ivr: IvrConfig,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        Program::compile(&doc.ivr, text, &|p| p != "missing_prompt")
    }

    #[test]
    fn demo_compiles() {
        let p = compile(DEMO).expect("valid");
        let plan = p.plan_for("4008").expect("catch-all");
        assert_eq!(p.name(plan.entry), "welcome");
        let queue = p
            .names
            .iter()
            .position(|n| n == "consult_queue")
            .expect("node");
        let Node::Queue { on_no_agents, .. } = p.node(NodeId(queue as u16)) else {
            panic!("consult_queue is a queue node")
        };
        assert_eq!(p.name(*on_no_agents), "message", "number-level fallback");
        assert!(p.prompt_names().contains("main_menu"));
    }

    fn expect_error(text: &str, needles: &[&str]) {
        let err = compile(text).expect_err("must be refused");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in: {err}");
        }
    }

    #[test]
    fn unknown_node_named_with_key_and_line() {
        let text = DEMO.replace("next = \"consult_queue\"", "next = \"consult_qeue\"");
        let line = text
            .lines()
            .position(|l| l.contains("consult_qeue"))
            .expect("line")
            + 1;
        expect_error(
            &text,
            &[
                "ivr.nodes.consult.next",
                &format!("line {line}"),
                "consult_qeue",
            ],
        );
    }

    #[test]
    fn unknown_prompt_queue_and_business() {
        expect_error(
            &DEMO.replace("prompt = \"leave_message\"", "prompt = \"missing_prompt\""),
            &["ivr.nodes.message.prompt", "missing_prompt"],
        );
        expect_error(
            &DEMO.replace("queue = \"consultation\"", "queue = \"sales\""),
            &["ivr.nodes.consult_queue.queue", "sales"],
        );
        expect_error(
            &DEMO.replace("business = \"repair\"", "business = \"billing\""),
            &["ivr.nodes.repair.business", "billing"],
        );
    }

    #[test]
    fn unreachable_node() {
        let text = format!("{DEMO}\n[ivr.nodes.orphan]\ntype = \"hangup\"\n");
        let line = text
            .lines()
            .position(|l| l == "[ivr.nodes.orphan]")
            .expect("line")
            + 1;
        expect_error(
            &text,
            &["ivr.nodes.orphan", "unreachable", &format!("line {line}")],
        );
    }

    #[test]
    fn loop_without_input() {
        let text = DEMO
            .replace("next = \"message\"\n\n[ivr.nodes.message]", "next = \"loop_a\"\n\n[ivr.nodes.message]")
            + "\n[ivr.nodes.loop_a]\ntype = \"play\"\nprompt = \"greeting\"\nnext = \"loop_b\"\n\n[ivr.nodes.loop_b]\ntype = \"business\"\nbusiness = \"repair\"\nnext = \"loop_a\"\n";
        expect_error(&text, &["loop without ever waiting", "loop_a", "loop_b"]);
    }

    #[test]
    fn menu_loops_are_fine() {
        // welcome -> main -> (timeout) silent -> main: main waits for keys.
        assert!(compile(DEMO).is_ok());
    }

    #[test]
    fn queue_without_any_fallback_is_refused() {
        expect_error(
            &DEMO.replace("no_agents = \"message\"\n", ""),
            &["ivr.nodes.consult_queue", "nowhere to go"],
        );
    }

    #[test]
    fn schedules_pick_day_night_and_holiday() {
        let s = Schedule {
            utc_offset_minutes: 8 * 60,
            open_minute: 8 * 60,
            close_minute: 20 * 60,
            days: 0b001_1111, // Mon-Fri
            holidays: [parse_date("2026-10-01").expect("date")].into(),
        };
        let ms = |date: &str, h: u64, m: u64| {
            let day = parse_date(date).expect("date") as u64;
            // Local time to UTC: minus 8 h.
            (day * 86_400 + h * 3600 + m * 60 - 8 * 3600) * 1000
        };
        assert_eq!(s.period(ms("2026-11-25", 9, 0)), Period::Open); // Wednesday
        assert_eq!(s.period(ms("2026-11-25", 7, 59)), Period::Closed);
        assert_eq!(s.period(ms("2026-11-25", 20, 0)), Period::Closed);
        assert_eq!(s.period(ms("2026-11-28", 10, 0)), Period::Closed); // Saturday
        assert_eq!(s.period(ms("2026-10-01", 10, 0)), Period::Holiday);
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
    }
}
