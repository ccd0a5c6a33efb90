//! A call hotline places to deliver a voice notice: it rings (early media
//! is not an answer), plays the notice, and listens for the campaign's
//! keys: confirm, repeat, opt out.

use std::time::Instant;

use crate::campaign::{AttemptResult, CampaignId};
use crate::media::prompt::PromptId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStage {
    /// INVITE out, not answered yet.
    Ringing,
    /// Answered; the notice is playing.
    Playing,
    /// The notice ended; a key may still come.
    WaitingKey,
    /// The outcome is known; the call is being ended.
    Done,
}

#[derive(Debug, Clone)]
pub struct NoticeCall {
    pub campaign: CampaignId,
    pub campaign_name: String,
    /// The number's index in its campaign.
    pub target: usize,
    pub number: String,
    pub attempt: u32,
    /// Index of the trunk in the engine's table.
    pub trunk: usize,
    pub trunk_name: String,
    pub prompt: PromptId,
    pub confirm_key: Option<char>,
    pub repeat_key: Option<char>,
    pub optout_key: Option<char>,
    pub stage: NoticeStage,
    /// How often the notice has been started.
    pub plays: u32,
    pub ring_deadline: Instant,
    pub key_deadline: Option<Instant>,
    pub result: Option<AttemptResult>,
    /// The final status of the INVITE (200 once answered).
    pub sip_status: u16,
    /// Our BYE, when we hung up: the trunk's channel stays taken until it
    /// is answered (it leaves only once the record is on disk).
    pub bye: Option<crate::wire::TxKey>,
}

impl NoticeCall {
    /// What a key pressed during or after the notice means.
    pub fn key(&self, digit: char) -> Option<NoticeKey> {
        if Some(digit) == self.confirm_key {
            Some(NoticeKey::Confirm)
        } else if Some(digit) == self.optout_key {
            Some(NoticeKey::OptOut)
        } else if Some(digit) == self.repeat_key {
            Some(NoticeKey::Repeat)
        } else {
            None
        }
    }

    /// The result of a notice heard to its end with no key: success when
    /// the campaign asks for no confirmation.
    pub fn heard_result(&self) -> AttemptResult {
        if self.confirm_key.is_some() {
            AttemptResult::Unconfirmed
        } else {
            AttemptResult::Heard
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKey {
    Confirm,
    Repeat,
    OptOut,
}
