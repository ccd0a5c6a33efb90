//! The inbound call flow: greeting, listening, the silent-caller routine
//! (question, wait, apology, wait, hang up) and the default destination.
//! Every wait starts when the prompt before it has finished playing.

use std::time::{Duration, Instant};

use crate::cdr::Outcome;
use crate::media::prompt::PromptId;

#[derive(Debug, Clone, Copy)]
pub struct FlowPrompts {
    pub greeting: PromptId,
    pub silent_question: PromptId,
    pub silent_apology: PromptId,
    pub please_hold: PromptId,
    pub goodbye: PromptId,
}

#[derive(Debug, Clone, Copy)]
pub struct FlowTimings {
    pub listen_after_greeting: Duration,
    pub silent_wait: Duration,
    pub apology_wait: Duration,
}

/// What the flow wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowAction {
    Play(PromptId),
    Hangup(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    NotStarted,
    Greeting,
    Listening,
    SilentQuestion,
    SilentWait,
    SilentApology,
    ApologyWait,
    PleaseHold,
    Goodbye,
    Done,
}

#[derive(Debug, Clone)]
pub struct CallFlow {
    prompts: FlowPrompts,
    timings: FlowTimings,
    step: Step,
    deadline: Option<Instant>,
    caller_active: bool,
}

impl CallFlow {
    pub fn new(prompts: FlowPrompts, timings: FlowTimings) -> Self {
        CallFlow {
            prompts,
            timings,
            step: Step::NotStarted,
            deadline: None,
            caller_active: false,
        }
    }

    pub fn step(&self) -> Step {
        self.step
    }

    /// Media is up: play the greeting.
    pub fn start(&mut self) -> Option<FlowAction> {
        if self.step != Step::NotStarted {
            return None;
        }
        self.step = Step::Greeting;
        Some(FlowAction::Play(self.prompts.greeting))
    }

    /// The caller spoke or pressed a key.
    pub fn handle_caller_activity(&mut self) -> Option<FlowAction> {
        self.caller_active = true;
        match self.step {
            // While waiting in silence: go on at once.
            Step::Listening | Step::SilentWait | Step::ApologyWait => self.go_to_destination(),
            // While a prompt plays: go on when it ends.
            _ => None,
        }
    }

    pub fn handle_playback_finished(
        &mut self,
        now: Instant,
        prompt: PromptId,
    ) -> Option<FlowAction> {
        let (expected, wait, next) = match self.step {
            Step::Greeting => (
                self.prompts.greeting,
                self.timings.listen_after_greeting,
                Step::Listening,
            ),
            Step::SilentQuestion => (
                self.prompts.silent_question,
                self.timings.silent_wait,
                Step::SilentWait,
            ),
            Step::SilentApology => (
                self.prompts.silent_apology,
                self.timings.apology_wait,
                Step::ApologyWait,
            ),
            Step::PleaseHold if prompt == self.prompts.please_hold => {
                self.step = Step::Goodbye;
                return Some(FlowAction::Play(self.prompts.goodbye));
            }
            Step::Goodbye if prompt == self.prompts.goodbye => {
                self.step = Step::Done;
                return Some(FlowAction::Hangup(Outcome::Completed));
            }
            _ => return None,
        };
        if prompt != expected {
            return None;
        }
        if self.caller_active {
            return self.go_to_destination();
        }
        self.step = next;
        self.deadline = Some(now + wait);
        None
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<FlowAction> {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return None,
        }
        self.deadline = None;
        match self.step {
            Step::Listening => {
                self.step = Step::SilentQuestion;
                Some(FlowAction::Play(self.prompts.silent_question))
            }
            Step::SilentWait => {
                self.step = Step::SilentApology;
                Some(FlowAction::Play(self.prompts.silent_apology))
            }
            Step::ApologyWait => {
                self.step = Step::Done;
                Some(FlowAction::Hangup(Outcome::SilentHangup))
            }
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Until the ACD exists the default destination is: please hold, then a
    /// polite goodbye.
    fn go_to_destination(&mut self) -> Option<FlowAction> {
        self.deadline = None;
        self.step = Step::PleaseHold;
        Some(FlowAction::Play(self.prompts.please_hold))
    }
}
