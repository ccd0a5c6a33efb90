//! The IVR interpreter: runs one call through a [`Program`], as a pure state
//! machine. It is told what happened (a prompt finished, a key, speech, a
//! timer, a recording ended, the queue could not take the caller) with
//! `now`, and answers with [`IvrAction`]s and the next instant it wants to
//! be woken at.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cdr::Outcome;
use crate::config::Language;

use super::program::{Node, NodeId, Program, BEEP};

/// What the interpreter wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Play this prompt (in the call's language), replacing any other.
    Play(String),
    /// Stop the prompt that is playing (a key interrupted it).
    StopPlayback,
    /// Record the caller until `max_length`, `end_silence` of silence, or
    /// [`IvrAction::StopRecording`].
    Record {
        max_length: Duration,
        end_silence: Duration,
    },
    StopRecording,
    /// Hand the caller to a queue.
    Queue(String),
    Hangup(Outcome),
}

/// Where the interpreter is inside the current node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    /// A play node's prompt (or a hangup node's last words).
    Prompt,
    /// A menu or collect node's prompt.
    Asking,
    /// The invalid/timeout prompt of a menu or collect node.
    Retrying,
    /// Waiting for keys after the prompt.
    Listening,
    MessagePrompt,
    MessageBeep,
    Recording,
    SilentQuestion,
    SilentWait,
    SilentApology,
    ApologyWait,
    InQueue,
    Done,
}

/// One call's run through a program.
#[derive(Debug)]
pub struct Ivr {
    program: Arc<Program>,
    node: NodeId,
    phase: Phase,
    deadline: Option<Instant>,
    attempts: u32,
    /// Keys gathered for the current menu or collect node.
    buffer: String,
    /// Keys pressed during an interruptible prompt, for the next node.
    type_ahead: String,
    actions: VecDeque<IvrAction>,
    pub language: Language,
    /// Node names in the order the call entered them.
    pub path: Vec<String>,
    pub business: Option<String>,
    pub variables: BTreeMap<String, String>,
    /// When the caller left the IVR (queued or hung up by it).
    pub finished_at: Option<Instant>,
    /// The campaign whose notice the caller heard lately, if any.
    notified: Option<String>,
}

/// Guards against a program that chains nodes without end (the loader
/// already refuses such loops).
const MAX_CHAIN: usize = 64;

impl Ivr {
    pub fn new(program: Arc<Program>, entry: NodeId, language: Language) -> Self {
        Ivr {
            program,
            node: entry,
            phase: Phase::NotStarted,
            deadline: None,
            attempts: 0,
            buffer: String::new(),
            type_ahead: String::new(),
            actions: VecDeque::new(),
            language,
            path: Vec::new(),
            business: None,
            variables: BTreeMap::new(),
            finished_at: None,
            notified: None,
        }
    }

    /// The caller heard this campaign's notice lately (for `notified`
    /// nodes).
    pub fn set_notified(&mut self, campaign_name: Option<String>) {
        self.notified = campaign_name;
    }

    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Media is up: enter the entry node.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::NotStarted {
            self.enter(now, self.node, 0);
        }
    }

    pub fn handle_playback_finished(&mut self, now: Instant) {
        match self.phase {
            Phase::Prompt => match self.current().clone() {
                Node::Play { next, .. } => self.enter(now, next, 0),
                Node::Hangup { .. } => self.finish(now, Outcome::Completed),
                _ => {}
            },
            Phase::Asking => self.listen(now),
            Phase::Retrying => self.ask(),
            Phase::MessagePrompt => {
                self.phase = Phase::MessageBeep;
                self.actions.push_back(IvrAction::Play(BEEP.into()));
            }
            Phase::MessageBeep => {
                if let Node::Message {
                    max_length,
                    end_silence,
                    ..
                } = *self.current()
                {
                    self.phase = Phase::Recording;
                    self.actions.push_back(IvrAction::Record {
                        max_length,
                        end_silence,
                    });
                }
            }
            Phase::SilentQuestion => {
                if let Node::SilentCaller { wait, .. } = *self.current() {
                    self.phase = Phase::SilentWait;
                    self.deadline = Some(now + wait);
                }
            }
            Phase::SilentApology => {
                if let Node::SilentCaller { apology_wait, .. } = *self.current() {
                    self.phase = Phase::ApologyWait;
                    self.deadline = Some(now + apology_wait);
                }
            }
            _ => {}
        }
    }

    pub fn handle_digit(&mut self, now: Instant, digit: char) {
        match self.phase {
            Phase::Prompt => {
                if let Node::Play {
                    interruptible: true,
                    next,
                    ..
                } = *self.current()
                {
                    self.actions.push_back(IvrAction::StopPlayback);
                    self.type_ahead.push(digit);
                    self.enter(now, next, 0);
                }
            }
            Phase::Asking | Phase::Retrying | Phase::Listening => {
                if self.phase != Phase::Listening {
                    self.actions.push_back(IvrAction::StopPlayback);
                    self.phase = Phase::Listening;
                }
                self.key(now, digit);
            }
            Phase::Recording if digit == '#' => {
                self.actions.push_back(IvrAction::StopRecording);
            }
            Phase::SilentQuestion
            | Phase::SilentApology
            | Phase::SilentWait
            | Phase::ApologyWait => self.respond(now),
            _ => {}
        }
    }

    pub fn handle_speech(&mut self, now: Instant) {
        if matches!(
            self.phase,
            Phase::SilentQuestion | Phase::SilentApology | Phase::SilentWait | Phase::ApologyWait
        ) {
            self.respond(now);
        }
    }

    pub fn handle_recording_finished(&mut self, now: Instant) {
        if self.phase == Phase::Recording {
            if let Node::Message { next, .. } = *self.current() {
                self.enter(now, next, 0);
            }
        }
    }

    /// The queue could not take the caller (no agent logged in).
    pub fn handle_queue_unavailable(&mut self, now: Instant) {
        if self.phase == Phase::InQueue {
            if let Node::Queue { on_no_agents, .. } = *self.current() {
                self.finished_at = None;
                self.enter(now, on_no_agents, 0);
            }
        }
    }

    /// A queue sends the caller on to a named node (its overflow target).
    /// Returns false when the program has no such node.
    pub fn handle_overflow(&mut self, now: Instant, node: &str) -> bool {
        let Some(i) = self.program.names.iter().position(|n| n == node) else {
            return false;
        };
        self.finished_at = None;
        self.enter(now, NodeId(i as u16), 0);
        true
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d => self.deadline = None,
            _ => return,
        }
        match self.phase {
            Phase::Listening => self.listening_timeout(now),
            Phase::SilentWait => {
                if let Node::SilentCaller { apology, .. } = self.current().clone() {
                    self.phase = Phase::SilentApology;
                    self.actions.push_back(IvrAction::Play(apology));
                }
            }
            Phase::ApologyWait => self.finish(now, Outcome::SilentHangup),
            _ => {}
        }
    }

    fn current(&self) -> &Node {
        self.program.node(self.node)
    }

    fn enter(&mut self, now: Instant, id: NodeId, depth: usize) {
        if depth > MAX_CHAIN {
            return self.finish(now, Outcome::Completed);
        }
        self.node = id;
        self.deadline = None;
        self.path.push(self.program.name(id).to_string());
        match self.program.node(id).clone() {
            Node::Play { prompt, .. } => {
                self.phase = Phase::Prompt;
                self.actions.push_back(IvrAction::Play(prompt));
            }
            Node::Menu { .. } | Node::Collect { .. } => {
                self.attempts = 0;
                self.buffer.clear();
                if self.type_ahead.is_empty() {
                    self.ask();
                } else {
                    // Keys pressed during the previous prompt answer this node.
                    self.phase = Phase::Listening;
                    let keys = std::mem::take(&mut self.type_ahead);
                    for k in keys.chars() {
                        if self.phase != Phase::Listening || self.node != id {
                            break;
                        }
                        self.key(now, k);
                    }
                }
            }
            Node::Business { business, next } => {
                self.business = Some(business);
                self.enter(now, next, depth + 1);
            }
            Node::Notified { campaign, yes, no } => {
                let heard = match (&self.notified, &campaign) {
                    (Some(heard), Some(wanted)) => heard == wanted,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                self.enter(now, if heard { yes } else { no }, depth + 1);
            }
            Node::Language { language, next } => {
                self.language = language;
                self.enter(now, next, depth + 1);
            }
            Node::Queue { queue, .. } => {
                self.phase = Phase::InQueue;
                self.finished_at = Some(now);
                self.actions.push_back(IvrAction::Queue(queue));
            }
            Node::Message { prompt, .. } => {
                self.phase = Phase::MessagePrompt;
                self.actions.push_back(IvrAction::Play(prompt));
            }
            Node::SilentCaller { question, .. } => {
                self.phase = Phase::SilentQuestion;
                self.actions.push_back(IvrAction::Play(question));
            }
            Node::Hangup { prompt } => match prompt {
                Some(p) => {
                    self.phase = Phase::Prompt;
                    self.actions.push_back(IvrAction::Play(p));
                }
                None => self.finish(now, Outcome::Completed),
            },
        }
    }

    /// Plays a menu or collect node's prompt.
    fn ask(&mut self) {
        let prompt = match self.current() {
            Node::Menu { prompt, .. } | Node::Collect { prompt, .. } => prompt.clone(),
            _ => return,
        };
        self.buffer.clear();
        self.phase = Phase::Asking;
        self.actions.push_back(IvrAction::Play(prompt));
    }

    fn listen(&mut self, now: Instant) {
        let timeout = match *self.current() {
            Node::Menu { timeout, .. } | Node::Collect { timeout, .. } => timeout,
            _ => return,
        };
        self.phase = Phase::Listening;
        self.deadline = Some(now + timeout);
    }

    fn key(&mut self, now: Instant, digit: char) {
        match self.current().clone() {
            Node::Menu {
                options,
                inter_digit_timeout,
                ..
            } => {
                self.buffer.push(digit);
                let exact = options
                    .iter()
                    .find(|(k, _)| *k == self.buffer)
                    .map(|(_, n)| *n);
                let longer = options
                    .iter()
                    .any(|(k, _)| k.len() > self.buffer.len() && k.starts_with(&self.buffer));
                match (exact, longer) {
                    (Some(target), false) => self.enter(now, target, 0),
                    (_, true) => self.deadline = Some(now + inter_digit_timeout),
                    (None, false) => self.retry(now, true),
                }
            }
            Node::Collect {
                max_digits,
                terminator,
                inter_digit_timeout,
                ..
            } => {
                if Some(digit) == terminator {
                    return self.finish_collect(now);
                }
                self.buffer.push(digit);
                if self.buffer.len() >= max_digits {
                    self.finish_collect(now);
                } else {
                    self.deadline = Some(now + inter_digit_timeout);
                }
            }
            _ => {}
        }
    }

    fn listening_timeout(&mut self, now: Instant) {
        match self.current().clone() {
            Node::Menu {
                options,
                on_timeout,
                ..
            } => {
                if self.buffer.is_empty() {
                    match on_timeout {
                        Some(node) => self.enter(now, node, 0),
                        None => self.retry(now, false),
                    }
                } else {
                    match options.iter().find(|(k, _)| *k == self.buffer) {
                        Some((_, target)) => self.enter(now, *target, 0),
                        None => self.retry(now, true),
                    }
                }
            }
            Node::Collect { .. } => {
                if self.buffer.is_empty() {
                    self.retry(now, false);
                } else {
                    self.finish_collect(now);
                }
            }
            _ => {}
        }
    }

    fn finish_collect(&mut self, now: Instant) {
        if let Node::Collect {
            variable,
            min_digits,
            next,
            ..
        } = self.current().clone()
        {
            if self.buffer.len() >= min_digits {
                self.variables
                    .insert(variable, std::mem::take(&mut self.buffer));
                self.enter(now, next, 0);
            } else {
                self.retry(now, true);
            }
        }
    }

    /// A wrong entry (`invalid`) or no entry: another try, or the default.
    fn retry(&mut self, now: Instant, invalid: bool) {
        self.attempts += 1;
        self.buffer.clear();
        let (retries, default, prompt) = match self.current() {
            Node::Menu {
                retries,
                default,
                invalid_prompt,
                timeout_prompt,
                ..
            } => (
                *retries,
                *default,
                if invalid {
                    invalid_prompt.clone()
                } else {
                    timeout_prompt.clone()
                },
            ),
            Node::Collect {
                retries,
                default,
                invalid_prompt,
                ..
            } => (*retries, *default, invalid_prompt.clone()),
            _ => return,
        };
        if self.attempts > retries {
            return self.enter(now, default, 0);
        }
        match prompt {
            Some(p) => {
                self.phase = Phase::Retrying;
                self.actions.push_back(IvrAction::Play(p));
            }
            None => self.ask(),
        }
    }

    /// The silent caller answered after all.
    fn respond(&mut self, now: Instant) {
        if let Node::SilentCaller { on_response, .. } = *self.current() {
            if matches!(self.phase, Phase::SilentQuestion | Phase::SilentApology) {
                self.actions.push_back(IvrAction::StopPlayback);
            }
            self.enter(now, on_response, 0);
        }
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        self.phase = Phase::Done;
        self.deadline = None;
        self.finished_at.get_or_insert(now);
        self.actions.push_back(IvrAction::Hangup(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{IvrConfig, Source};
    use crate::ivr::program::Known;

    const PROGRAM: &str = r#"
[ivr]
business_types = ["repair"]
[[ivr.numbers]]
number = "*"
entry = "welcome"
no_agents = "bye"
[ivr.nodes.welcome]
type = "play"
prompt = "greeting"
interruptible = true
next = "main"
[ivr.nodes.main]
type = "menu"
prompt = "main_menu"
options = { 1 = "account", 2 = "repair", 31 = "bye", 9 = "bye" }
timeout = "4s"
inter_digit_timeout = "2s"
invalid_prompt = "invalid_choice"
timeout_prompt = "no_input"
retries = 2
default = "bye"
[ivr.nodes.account]
type = "collect"
prompt = "enter_account"
variable = "account"
min_digits = 4
max_digits = 8
next = "repair"
default = "bye"
[ivr.nodes.repair]
type = "business"
business = "repair"
next = "q"
[ivr.nodes.q]
type = "queue"
queue = "repair"
[ivr.nodes.bye]
type = "hangup"
prompt = "goodbye"
"#;

    fn ivr() -> (Ivr, Instant) {
        #[derive(serde::Deserialize)]
        struct Doc {
            ivr: IvrConfig,
        }
        let (doc, source): (Doc, Source) = crate::config::source::parse(PROGRAM).expect("toml");
        let known = Known {
            queues: vec!["repair"],
            languages: &[Language::Zh],
            prompt_in: &|_, _| true,
            prompts: vec![],
        };
        let p = Program::compile(&doc.ivr, &source, &known).expect("valid");
        let entry = p.plan_for("x").expect("plan").entry;
        let t0 = crate::time::test_epoch();
        let mut ivr = Ivr::new(Arc::new(p), entry, Language::Zh);
        ivr.start(t0);
        (ivr, t0)
    }

    fn drain(ivr: &mut Ivr) -> Vec<IvrAction> {
        std::iter::from_fn(|| ivr.poll_action()).collect()
    }

    fn play(p: &str) -> IvrAction {
        IvrAction::Play(p.into())
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn timeouts_retry_with_the_timeout_prompt_then_default() {
        let (mut ivr, t0) = ivr();
        assert_eq!(drain(&mut ivr), vec![play("greeting")]);
        ivr.handle_playback_finished(t0 + secs(3));
        assert_eq!(drain(&mut ivr), vec![play("main_menu")]);
        let mut now = t0 + secs(6);
        ivr.handle_playback_finished(now);
        for _ in 0..2 {
            assert_eq!(
                ivr.poll_timeout(),
                Some(now + secs(4)),
                "timeout counts from the prompt's end"
            );
            now += secs(4);
            ivr.handle_timeout(now);
            assert_eq!(drain(&mut ivr), vec![play("no_input")]);
            ivr.handle_playback_finished(now + secs(1));
            assert_eq!(drain(&mut ivr), vec![play("main_menu")]);
            now += secs(3);
            ivr.handle_playback_finished(now);
        }
        now += secs(4);
        ivr.handle_timeout(now);
        assert_eq!(
            drain(&mut ivr),
            vec![play("goodbye")],
            "retries exhausted: default"
        );
        ivr.handle_playback_finished(now + secs(2));
        assert_eq!(drain(&mut ivr), vec![IvrAction::Hangup(Outcome::Completed)]);
        assert_eq!(ivr.path, ["welcome", "main", "bye"]);
    }

    #[test]
    fn invalid_key_then_valid_choice() {
        let (mut ivr, t0) = ivr();
        ivr.handle_playback_finished(t0);
        drain(&mut ivr);
        ivr.handle_digit(t0, '7');
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::StopPlayback, play("invalid_choice")]
        );
        ivr.handle_playback_finished(t0 + secs(2));
        assert_eq!(drain(&mut ivr), vec![play("main_menu")]);
        ivr.handle_digit(t0 + secs(3), '2');
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::StopPlayback, IvrAction::Queue("repair".into())]
        );
        assert_eq!(ivr.business.as_deref(), Some("repair"));
        assert_eq!(ivr.finished_at, Some(t0 + secs(3)));
    }

    #[test]
    fn type_ahead_through_an_interruptible_prompt() {
        let (mut ivr, t0) = ivr();
        drain(&mut ivr);
        ivr.handle_digit(t0 + secs(1), '2');
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::StopPlayback, IvrAction::Queue("repair".into())]
        );
        assert_eq!(ivr.path, ["welcome", "main", "repair", "q"]);
    }

    #[test]
    fn multi_digit_option_waits_for_the_inter_digit_timeout() {
        let (mut ivr, t0) = ivr();
        ivr.handle_playback_finished(t0);
        ivr.handle_playback_finished(t0);
        drain(&mut ivr);
        ivr.handle_digit(t0, '3');
        assert_eq!(ivr.poll_timeout(), Some(t0 + secs(2)));
        ivr.handle_digit(t0 + secs(1), '1');
        assert_eq!(drain(&mut ivr), vec![play("goodbye")]);
    }

    #[test]
    fn collect_digits_with_terminator_and_minimum() {
        let (mut ivr, t0) = ivr();
        ivr.handle_playback_finished(t0);
        ivr.handle_playback_finished(t0);
        ivr.handle_digit(t0, '1');
        assert_eq!(drain(&mut ivr).last(), Some(&play("enter_account")));
        ivr.handle_playback_finished(t0);
        for d in "12#".chars() {
            ivr.handle_digit(t0, d);
        }
        assert_eq!(
            drain(&mut ivr),
            vec![play("enter_account")],
            "too short: retry"
        );
        ivr.handle_playback_finished(t0);
        for d in "123456#".chars() {
            ivr.handle_digit(t0, d);
        }
        assert_eq!(drain(&mut ivr), vec![IvrAction::Queue("repair".into())]);
        assert_eq!(
            ivr.variables.get("account").map(String::as_str),
            Some("123456")
        );
    }
}
