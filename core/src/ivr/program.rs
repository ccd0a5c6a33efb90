//! IVR programs as data: the `[ivr]` part of the config
//! ([`crate::config::ivr`]), checked and compiled into a graph of nodes
//! addressed by index.
//!
//! The compiler refuses, with the key path and line, any reference to an
//! unknown node, prompt, queue, business type, schedule or language, any
//! node no entry can reach, and any loop that could spin without waiting
//! for the caller.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use thiserror::Error;

use crate::config::ivr::{IvrConfig, NodeConfig, NumberConfig, ScheduleConfig};
use crate::config::source::hint;
use crate::config::{did_you_mean, language_list, Language, Source};
use crate::forms::{parse_date, parse_hhmm, parse_offset};

/// The tone before a message is recorded: a shared prompt that every
/// program with a message node needs.
pub const BEEP: &str = "beep";

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
    /// To `yes` when the caller heard a notice lately (of `campaign`, if
    /// named), else to `no`.
    Notified {
        campaign: Option<String>,
        yes: NodeId,
        no: NodeId,
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
            Node::Notified { yes, no, .. } => vec![*yes, *no],
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
            Node::Business { .. }
            | Node::Language { .. }
            | Node::Queue { .. }
            | Node::Notified { .. } => vec![],
        }
    }
}

/// Where a number's calls start.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberPlan {
    pub number: String,
    /// `number` as dialled numbers are compared ([`crate::number::number_key`]).
    pub key: String,
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
}

/// What a program may name outside `[ivr]`.
pub struct Known<'a> {
    /// Queues `[[queues]]` defines: the only ones a queue node may name.
    pub queues: Vec<&'a str>,
    /// Languages prompts are loaded in (`prompts.languages`).
    pub languages: &'a [Language],
    /// Whether prompt `name` exists in `language`.
    pub prompt_in: &'a dyn Fn(&str, Language) -> bool,
    /// Every prompt name, for suggestions.
    pub prompts: Vec<&'a str>,
}

impl Known<'_> {
    fn has_prompt(&self, name: &str) -> bool {
        self.languages.iter().all(|l| (self.prompt_in)(name, *l))
    }
}

/// A mistake in `[ivr]`: its key path, its line when the config text has
/// the key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{key}: {problem}", at_line(.line))]
pub struct ProgramError {
    pub key: String,
    pub line: Option<usize>,
    pub problem: Problem,
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none defined".into()
    } else {
        names.join(", ")
    }
}

fn cycle(names: &[String]) -> String {
    format!(
        "{} -> {}",
        names.join(" -> "),
        names.first().map(String::as_str).unwrap_or_default()
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("no node named {name:?}{}", hint(.near.as_deref()))]
    UnknownNode { name: String, near: Option<String> },
    #[error("no prompt named {name:?} (looked in every language's prompt folder){}", hint(.near.as_deref()))]
    UnknownPrompt { name: String, near: Option<String> },
    #[error(
        "prompt {name:?} is missing in {missing} (every language in prompts.languages needs it)"
    )]
    PromptMissingIn { name: String, missing: String },
    #[error("no queue named {name:?} in [[queues]] ({}){}", listed(.defined), hint(.near.as_deref()))]
    UnknownQueue {
        name: String,
        defined: Vec<String>,
        near: Option<String>,
    },
    #[error("{name:?} is not in ivr.business_types ({}){}", listed(.known), hint(.near.as_deref()))]
    UnknownBusiness {
        name: String,
        known: Vec<String>,
        near: Option<String>,
    },
    #[error("no schedule named {name:?} in ivr.schedules{}", hint(.near.as_deref()))]
    UnknownSchedule { name: String, near: Option<String> },
    #[error("{language} is not in prompts.languages ({loaded}), so its prompts are not loaded")]
    LanguageNotLoaded { language: String, loaded: String },
    #[error("no number's entry leads to this node (unreachable)")]
    Unreachable,
    #[error("these nodes loop without ever waiting for the caller: {}", cycle(.nodes))]
    IdleLoop { nodes: Vec<String> },
    #[error("no on_no_agents here and no number has no_agents: a caller would have nowhere to go when no agent is logged in")]
    NowhereWithoutAgents,
    #[error(
        "message nodes need a shared prompt named {:?} (prompts/beep.wav)",
        BEEP
    )]
    NoBeep,
    #[error("option {keys:?} is not a key sequence (0-9, *, #, A-D)")]
    BadOption { keys: String },
    #[error("a menu needs options")]
    NoOptions,
    #[error("min_digits must be at least 1 and at most max_digits")]
    BadDigitCounts,
    #[error("terminator must be one key (usually \"#\") or empty")]
    BadTerminator,
    #[error("write the offset as \"+08:00\"")]
    BadOffset,
    #[error("write times as \"08:00\"")]
    BadTime,
    #[error("{day:?} is not one of mon..sun")]
    BadDay { day: String },
    #[error("{date:?} is not a YYYY-MM-DD date")]
    BadDate { date: String },
    #[error("give at least one number (\"*\" for any)")]
    NoNumbers,
    #[error("too many nodes (at most 65535)")]
    TooManyNodes,
}

impl Program {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.0 as usize]
    }

    /// The plan for a dialled number (`+86 400 800 1234`, `04008001234`
    /// and `tel:+86-400-800-1234`'s user are one number): an exact match,
    /// else `*`.
    pub fn plan_for(&self, dialled: &str) -> Option<&NumberPlan> {
        let key = crate::number::number_key(dialled);
        self.numbers
            .iter()
            .find(|n| n.key == key && n.number != "*")
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

    /// Checks and compiles `[ivr]` against what the rest of the config
    /// defines. `source` gives the lines of the keys named in errors.
    pub fn compile(
        config: &IvrConfig,
        source: &Source,
        known: &Known,
    ) -> Result<Program, ProgramError> {
        Compiler {
            config,
            source,
            known,
            ids: config
                .nodes
                .keys()
                .enumerate()
                .map(|(i, name)| (name.as_str(), NodeId(i as u16)))
                .collect(),
        }
        .compile()
    }
}

struct Compiler<'a> {
    config: &'a IvrConfig,
    source: &'a Source,
    known: &'a Known<'a>,
    ids: HashMap<&'a str, NodeId>,
}

impl<'a> Compiler<'a> {
    fn compile(&self) -> Result<Program, ProgramError> {
        if self.config.nodes.len() > u16::MAX as usize {
            return Err(self.error("ivr.nodes".into(), Problem::TooManyNodes));
        }
        let mut nodes = Vec::with_capacity(self.config.nodes.len());
        for (name, node) in &self.config.nodes {
            nodes.push(self.node(name, node)?);
        }
        for (name, node) in self.config.nodes.keys().zip(&nodes) {
            for prompt in node.prompts() {
                self.check_prompt(name, prompt)?;
            }
        }
        let message_node = self
            .config
            .nodes
            .keys()
            .zip(&nodes)
            .find(|(_, n)| matches!(n, Node::Message { .. }));
        if let Some((name, _)) = message_node {
            if !self.known.has_prompt(BEEP) {
                return Err(self.error(format!("ivr.nodes.{name}"), Problem::NoBeep));
            }
        }
        let mut numbers = Vec::new();
        for (i, n) in self.config.numbers.iter().enumerate() {
            numbers.push(self.number(i, n)?);
        }
        if numbers.is_empty() {
            return Err(self.error("ivr.numbers".into(), Problem::NoNumbers));
        }
        let program = Program {
            nodes,
            names: self.config.nodes.keys().cloned().collect(),
            numbers,
            business_types: self.config.business_types.clone(),
        };
        self.check_reachable(&program)?;
        self.check_idle_loops(&program)?;
        Ok(program)
    }

    fn error(&self, key: String, problem: Problem) -> ProgramError {
        ProgramError {
            line: self.source.line(&key),
            key,
            problem,
        }
    }

    fn check_prompt(&self, node: &str, prompt: &str) -> Result<(), ProgramError> {
        if self.known.has_prompt(prompt) {
            return Ok(());
        }
        let key = format!("ivr.nodes.{node}.{}", self.prompt_key(node, prompt));
        let missing: Vec<&str> = self
            .known
            .languages
            .iter()
            .filter(|l| !(self.known.prompt_in)(prompt, **l))
            .map(|l| l.code())
            .collect();
        let problem = if missing.len() < self.known.languages.len() {
            Problem::PromptMissingIn {
                name: prompt.to_string(),
                missing: missing.join(", "),
            }
        } else {
            Problem::UnknownPrompt {
                name: prompt.to_string(),
                near: did_you_mean(prompt, self.known.prompts.iter().copied()).map(str::to_string),
            }
        };
        Err(self.error(key, problem))
    }

    fn prompt_key(&self, node: &str, prompt: &str) -> &'static str {
        match self.config.nodes.get(node) {
            Some(NodeConfig::Menu { invalid_prompt, .. })
                if invalid_prompt.as_deref() == Some(prompt) =>
            {
                "invalid_prompt"
            }
            Some(NodeConfig::Menu { timeout_prompt, .. })
                if timeout_prompt.as_deref() == Some(prompt) =>
            {
                "timeout_prompt"
            }
            Some(NodeConfig::Collect { invalid_prompt, .. })
                if invalid_prompt.as_deref() == Some(prompt) =>
            {
                "invalid_prompt"
            }
            Some(NodeConfig::SilentCaller { apology, .. }) if apology == prompt => "apology",
            Some(NodeConfig::SilentCaller { .. }) => "question",
            _ => "prompt",
        }
    }

    /// The node named by `key`.
    fn target(&self, key: String, name: &str) -> Result<NodeId, ProgramError> {
        self.ids.get(name).copied().ok_or_else(|| {
            let near = did_you_mean(name, self.ids.keys().copied()).map(str::to_string);
            self.error(
                key,
                Problem::UnknownNode {
                    name: name.to_string(),
                    near,
                },
            )
        })
    }

    fn check_language(&self, key: String, language: Language) -> Result<(), ProgramError> {
        if self.known.languages.contains(&language) {
            return Ok(());
        }
        Err(self.error(
            key,
            Problem::LanguageNotLoaded {
                language: language.code().to_string(),
                loaded: language_list(self.known.languages),
            },
        ))
    }

    fn node(&self, name: &str, node: &NodeConfig) -> Result<Node, ProgramError> {
        let table = format!("ivr.nodes.{name}");
        let key = |k: &str| format!("{table}.{k}");
        let t = |k: &str, target: &str| self.target(key(k), target);
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
                    let option = key(&format!("options.{keys}"));
                    if keys.is_empty() || !keys.chars().all(is_dtmf) {
                        return Err(self.error(option, Problem::BadOption { keys: keys.clone() }));
                    }
                    resolved.push((keys.clone(), self.target(option, target)?));
                }
                if resolved.is_empty() {
                    return Err(self.error(key("options"), Problem::NoOptions));
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
                    return Err(self.error(key("min_digits"), Problem::BadDigitCounts));
                }
                let mut chars = terminator.chars();
                let terminator = match (chars.next(), chars.next()) {
                    (None, _) => None,
                    (Some(c), None) if is_dtmf(c) => Some(c),
                    _ => return Err(self.error(key("terminator"), Problem::BadTerminator)),
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
                let types = &self.config.business_types;
                if !types.contains(business) {
                    return Err(self.error(
                        key("business"),
                        Problem::UnknownBusiness {
                            name: business.clone(),
                            known: types.clone(),
                            near: did_you_mean(business, types.iter().map(String::as_str))
                                .map(str::to_string),
                        },
                    ));
                }
                Node::Business {
                    business: business.clone(),
                    next: t("next", next)?,
                }
            }
            NodeConfig::Language { language, next } => {
                self.check_language(key("language"), *language)?;
                Node::Language {
                    language: *language,
                    next: t("next", next)?,
                }
            }
            NodeConfig::Queue {
                queue,
                on_no_agents,
            } => {
                let queues = &self.known.queues;
                if !queues.contains(&queue.as_str()) {
                    return Err(self.error(
                        key("queue"),
                        Problem::UnknownQueue {
                            name: queue.clone(),
                            defined: queues.iter().map(|q| q.to_string()).collect(),
                            near: did_you_mean(queue, queues.iter().copied()).map(str::to_string),
                        },
                    ));
                }
                let fallback = match on_no_agents {
                    Some(n) => t("on_no_agents", n)?,
                    None => self
                        .default_no_agents()
                        .ok_or_else(|| self.error(key("queue"), Problem::NowhereWithoutAgents))?,
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
            NodeConfig::Notified { campaign, yes, no } => Node::Notified {
                campaign: campaign.clone(),
                yes: t("yes", yes)?,
                no: t("no", no)?,
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

    fn number(&self, index: usize, n: &NumberConfig) -> Result<NumberPlan, ProgramError> {
        let key = |k: &str| format!("ivr.numbers[{index}].{k}");
        let t = |k: &str, target: &str| self.target(key(k), target);
        if let Some(language) = n.language {
            self.check_language(key("language"), language)?;
        }
        let schedule = match &n.schedule {
            None => None,
            Some(name) => {
                let schedules = &self.config.schedules;
                let s = schedules.get(name).ok_or_else(|| {
                    self.error(
                        key("schedule"),
                        Problem::UnknownSchedule {
                            name: name.clone(),
                            near: did_you_mean(name, schedules.keys().map(String::as_str))
                                .map(str::to_string),
                        },
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
            key: crate::number::number_key(&n.number),
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

    fn schedule(&self, name: &str, s: &ScheduleConfig) -> Result<Schedule, ProgramError> {
        let key = |k: &str| format!("ivr.schedules.{name}.{k}");
        let offset = parse_offset(&s.utc_offset)
            .ok_or_else(|| self.error(key("utc_offset"), Problem::BadOffset))?;
        let open = parse_hhmm(&s.open).ok_or_else(|| self.error(key("open"), Problem::BadTime))?;
        let close =
            parse_hhmm(&s.close).ok_or_else(|| self.error(key("close"), Problem::BadTime))?;
        let mut days = 0u8;
        for (i, d) in s.days.iter().enumerate() {
            let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .position(|w| w.eq_ignore_ascii_case(d))
                .ok_or_else(|| {
                    self.error(
                        key(&format!("days[{i}]")),
                        Problem::BadDay { day: d.clone() },
                    )
                })?;
            days |= 1 << day;
        }
        if s.days.is_empty() {
            days = 0x7f;
        }
        let mut holidays = BTreeSet::new();
        for (i, h) in s.holidays.iter().enumerate() {
            holidays.insert(parse_date(h).ok_or_else(|| {
                self.error(
                    key(&format!("holidays[{i}]")),
                    Problem::BadDate { date: h.clone() },
                )
            })?);
        }
        Ok(Schedule {
            utc_offset_minutes: offset,
            open_minute: open,
            close_minute: close,
            days,
            holidays,
        })
    }

    fn check_reachable(&self, p: &Program) -> Result<(), ProgramError> {
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
            return Err(self.error(format!("ivr.nodes.{name}"), Problem::Unreachable));
        }
        Ok(())
    }

    /// A cycle through nodes that never wait for the caller would spin
    /// (or replay prompts) forever.
    fn check_idle_loops(&self, p: &Program) -> Result<(), ProgramError> {
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
                let nodes: Vec<String> = cycle.iter().map(|id| p.name(*id).to_string()).collect();
                return Err(self.error(
                    format!("ivr.nodes.{}", nodes[0]),
                    Problem::IdleLoop { nodes },
                ));
            }
        }
        Ok(())
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"
[ivr]
business_types = ["consultation", "repair"]

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

    fn compile_with(text: &str, languages: &[Language]) -> Result<Program, ProgramError> {
        #[derive(serde::Deserialize)]
        struct Doc {
            ivr: IvrConfig,
        }
        let (doc, source): (Doc, Source) = crate::config::source::parse(text).expect("toml");
        let prompts = vec![
            "greeting",
            "main_menu",
            "leave_message",
            "goodbye",
            "silent_question",
            "silent_apology",
            BEEP,
        ];
        // These in every language; "english_only" only in en.
        let prompt_in = |p: &str, l: Language| {
            prompts.contains(&p) || (p == "english_only" && l == Language::En)
        };
        let known = Known {
            queues: vec!["consultation", "repair"],
            languages,
            prompt_in: &prompt_in,
            prompts: prompts.clone(),
        };
        Program::compile(&doc.ivr, &source, &known)
    }

    fn compile(text: &str) -> Result<Program, ProgramError> {
        compile_with(text, &[Language::Zh, Language::En])
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
        let err = compile(text).expect_err("must be refused").to_string();
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
        let err = compile(&text).expect_err("refused");
        assert_eq!(err.key, "ivr.nodes.consult.next");
        assert_eq!(err.line, Some(line));
        assert_eq!(
            err.problem,
            Problem::UnknownNode {
                name: "consult_qeue".into(),
                near: Some("consult_queue".into())
            }
        );
        assert_eq!(
            err.to_string(),
            format!("line {line}: ivr.nodes.consult.next: no node named \"consult_qeue\"; did you mean `consult_queue`?")
        );
    }

    #[test]
    fn unknown_prompt_queue_and_business_with_near_misses() {
        expect_error(
            &DEMO.replace("prompt = \"leave_message\"", "prompt = \"missing_prompt\""),
            &[
                "ivr.nodes.message.prompt",
                "no prompt named \"missing_prompt\"",
            ],
        );
        expect_error(
            &DEMO.replace("prompt = \"main_menu\"", "prompt = \"main_mneu\""),
            &["ivr.nodes.main.prompt", "did you mean `main_menu`?"],
        );
        expect_error(
            &DEMO.replace("queue = \"consultation\"", "queue = \"sales\""),
            &[
                "ivr.nodes.consult_queue.queue",
                "no queue named \"sales\" in [[queues]] (consultation, repair)",
            ],
        );
        expect_error(
            &DEMO.replace("queue = \"consultation\"", "queue = \"consultaton\""),
            &["did you mean `consultation`?"],
        );
        expect_error(
            &DEMO.replace("business = \"repair\"", "business = \"billing\""),
            &[
                "ivr.nodes.repair.business",
                "billing",
                "(consultation, repair)",
            ],
        );
        let err = compile(&DEMO.replace("business = \"repair\"", "business = \"repiar\""))
            .expect_err("refused");
        assert!(
            matches!(&err.problem, Problem::UnknownBusiness { near: Some(n), .. } if n == "repair"),
            "{err}"
        );
    }

    #[test]
    fn menu_options_are_named_by_their_key() {
        let text = DEMO.replace("9 = \"message\"", "9 = \"mesage\"");
        let line = text
            .lines()
            .position(|l| l.contains("mesage"))
            .expect("line")
            + 1;
        let err = compile(&text).expect_err("refused");
        assert_eq!(err.key, "ivr.nodes.main.options.9");
        assert_eq!(err.line, Some(line));
        assert!(
            err.to_string().ends_with("did you mean `message`?"),
            "{err}"
        );
    }

    #[test]
    fn prompts_and_languages_must_be_loaded() {
        let err = compile(&DEMO.replace("prompt = \"goodbye\"", "prompt = \"english_only\""))
            .expect_err("missing in zh");
        assert_eq!(
            err.problem,
            Problem::PromptMissingIn {
                name: "english_only".into(),
                missing: "zh".into()
            }
        );
        let text = DEMO.replace(
            "entry = \"welcome\"",
            "entry = \"welcome\"\nlanguage = \"en\"",
        );
        assert!(compile(&text).is_ok());
        let err = compile_with(&text, &[Language::Zh]).expect_err("en is not loaded");
        assert_eq!(err.key, "ivr.numbers[0].language");
        assert!(
            err.to_string()
                .contains("en is not in prompts.languages (zh)"),
            "{err}"
        );
    }

    #[test]
    fn message_nodes_need_the_beep() {
        #[derive(serde::Deserialize)]
        struct Doc {
            ivr: IvrConfig,
        }
        let (doc, source): (Doc, Source) = crate::config::source::parse(DEMO).expect("toml");
        let no_beep = |p: &str, _| p != BEEP;
        let known = Known {
            queues: vec!["consultation", "repair"],
            languages: &[Language::Zh],
            prompt_in: &no_beep,
            prompts: vec![],
        };
        let err = Program::compile(&doc.ivr, &source, &known).expect_err("no beep");
        assert_eq!(err.key, "ivr.nodes.message");
        assert_eq!(err.problem, Problem::NoBeep);
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
