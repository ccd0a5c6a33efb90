//! Media events and the IVR: what the caller does reaches the call's
//! interpreter, and its actions become media commands and hang-ups.

use std::time::{Duration, Instant};

use tracing::{debug, info, info_span, warn};

use super::Engine;
use crate::cdr::{self, Disposition, Outcome};
use crate::ids::{CallKey, LegKey};
use crate::io::Output;
use crate::ivr::interpreter::IvrAction;
use crate::media::call_media::MediaCommand;
use crate::media::dtmf::DigitSource;
use crate::media::session::{MediaEvent, RecordingEnd};
use crate::voicemail::{message_id, MessageRecord};
use crate::wire::{CallTimer, Wake};

/// The same key arriving another way within this window is one press
/// (a trunk sending both RFC 4733 and INFO, or events and tones).
const DIGIT_DEDUP_WINDOW: Duration = Duration::from_millis(500);

impl Engine {
    pub(super) fn handle_media(
        &mut self,
        now: Instant,
        key: CallKey,
        leg: LegKey,
        event: MediaEvent,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // The IVR listens to the customer only: an agent's keys and
        // silence, and the end of the whisper, drive nothing. A task's
        // briefing plays to the agent: only its end counts.
        if leg != call.customer {
            let briefing =
                leg == call.prompt_leg() && matches!(event, MediaEvent::PlaybackFinished { .. });
            if !briefing {
                return;
            }
        }
        let call_id = call
            .customer_leg()
            .map(|l| l.dialog.call_id.clone())
            .unwrap_or_default();
        let span = info_span!("call", call_id = %call_id);
        let _entered = span.enter();
        match event {
            MediaEvent::PlaybackFinished { token, .. } => {
                if call.playing != Some(token) {
                    return; // a prompt that was replaced or stopped
                }
                call.playing = None;
                if call.notice.is_some() {
                    return self.notice_played(now, key);
                }
                if let Some(next) = call.sequence.pop_front() {
                    return self.play_id(key, next);
                }
                if let Some(then) = call.after_sequence.take() {
                    return self.after_sequence(now, key, then);
                }
                if self.control_playback_finished(now, key) {
                    return;
                }
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                if call.queue.as_ref().is_some_and(|q| q.waiting()) {
                    // Music on hold loops, and resumes after the apology.
                    return self.play_named(key, "moh");
                }
                if call.feature.is_some() {
                    // The feature code's confirmation has been said.
                    return self.hangup(now, key, Outcome::Completed, Disposition::Answered);
                }
                call.ivr.handle_playback_finished(now);
            }
            // A notice call has no IVR: its callee's voice steers nothing.
            MediaEvent::Speech if call.notice.is_some() => return,
            MediaEvent::Speech => {
                call.caller_spoke = true;
                call.ivr.handle_speech(now);
            }
            MediaEvent::Digit { digit, source } => {
                if self.queue_exit_key(now, key, digit) {
                    return;
                }
                return self.digit(now, key, digit, source);
            }
            MediaEvent::RecordingFinished(end) => {
                call.recording_since = None;
                if let Some(m) = self.pending_messages.get_mut(&key) {
                    m.ended_by = end.as_str().to_string();
                }
                call.ivr.handle_recording_finished(now);
            }
            MediaEvent::Inactive if call.notice.is_some() => {
                info!("no RTP from the callee");
                return self.notice_media_lost(now, key);
            }
            MediaEvent::Inactive => {
                info!("no RTP from caller");
                return self.hangup(now, key, Outcome::MediaTimeout, Disposition::Failed);
            }
        }
        self.apply_ivr(now, key);
    }

    /// A key from any source; the same key from another source within the
    /// window is the same press.
    pub(super) fn digit(&mut self, now: Instant, key: CallKey, digit: char, source: DigitSource) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some((last, last_source, at)) = call.last_digit {
            if last == digit && last_source != source && now < at + DIGIT_DEDUP_WINDOW {
                debug!(%digit, ?source, "same key sent another way: dropped");
                return;
            }
        }
        call.last_digit = Some((digit, source, now));
        call.digits.push(digit);
        debug!(%digit, ?source, "key");
        if call.notice.is_some() {
            return self.notice_key(now, key, digit);
        }
        if self.survey_key(now, key, digit) || self.callback_digit(now, key, digit) {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.ivr.handle_digit(now, digit);
        self.apply_ivr(now, key);
    }

    /// Carries out the interpreter's actions and re-arms its timer.
    pub(super) fn apply_ivr(&mut self, now: Instant, key: CallKey) {
        loop {
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(action) = call.ivr.poll_action() else {
                break;
            };
            match action {
                IvrAction::Play(name) => {
                    let id = call.prompt(&name, self.settings.default_language);
                    match id {
                        Some(prompt) => {
                            let token = call.next_play_token();
                            let leg = call.customer;
                            self.media(key, MediaCommand::Play { leg, prompt, token });
                        }
                        None => {
                            // The loader checks prompts; never stall a call.
                            warn!(prompt = %name, "prompt missing: skipped");
                            call.ivr.handle_playback_finished(now);
                        }
                    }
                }
                IvrAction::StopPlayback => {
                    call.playing = None;
                    let leg = call.customer;
                    self.media(key, MediaCommand::StopPlayback { leg });
                }
                IvrAction::Record {
                    max_length,
                    end_silence,
                } => {
                    let recorded_at = self.clock.ms(now);
                    let id = message_id(recorded_at, key.0);
                    let file = format!(
                        "{}/{id}.wav",
                        cdr::format_ms(recorded_at).get(..10).unwrap_or("undated")
                    );
                    call.message_file = Some(file.clone());
                    call.recording_since = Some(now);
                    let invite = call.customer_leg().and_then(|l| l.invite.as_ref());
                    let message = MessageRecord {
                        id,
                        call_id: crate::call::record_id(&self.clock, key),
                        caller_number: invite
                            .map(|i| i.caller_number().to_string())
                            .unwrap_or_default(),
                        caller_name: call
                            .info
                            .name
                            .clone()
                            .or_else(|| invite.and_then(|i| i.caller_name())),
                        dialled_number: invite
                            .map(|i| i.uri_user().to_string())
                            .unwrap_or_default(),
                        business_type: call.ivr.business.clone(),
                        customer_class: Some(call.info.class.as_str().to_string()),
                        recorded_at: cdr::format_ms(recorded_at),
                        duration_ms: 0,
                        ended_by: RecordingEnd::Hangup.as_str().to_string(),
                        file: file.clone(),
                    };
                    let leg = call.customer;
                    self.pending_messages.insert(key, message);
                    self.media(
                        key,
                        MediaCommand::Record {
                            leg,
                            file,
                            max_length,
                            end_silence,
                        },
                    );
                }
                IvrAction::StopRecording => {
                    let leg = call.customer;
                    let keep = !self.discard_short_message(now, key);
                    self.media(key, MediaCommand::StopRecording { leg, keep });
                }
                IvrAction::Queue(queue) => {
                    self.join_queue(now, key, queue);
                    continue;
                }
                IvrAction::Hangup(outcome) => {
                    return self.hangup(now, key, outcome, Disposition::Answered);
                }
            }
        }
        if let Some(at) = self.calls.get(&key).and_then(|c| c.ivr.poll_timeout()) {
            self.wire
                .timers
                .schedule(at, Wake::Call(key, CallTimer::Ivr));
        }
    }

    /// The IVR's deadline (a menu's wait, a silence) may have come.
    pub(super) fn ivr_timeout(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.ivr.handle_timeout(now);
        self.apply_ivr(now, key);
    }

    /// A message being recorded ends now (`#`, or the call ends): one
    /// shorter than `messages.min_length` is dropped here, before the
    /// record is built, so that no WAV, no index line and the record agree.
    /// Returns whether it was dropped; the caller stops the recording.
    fn discard_short_message(&mut self, now: Instant, key: CallKey) -> bool {
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Some(since) = call.recording_since.take() else {
            return false;
        };
        let length = now.saturating_duration_since(since);
        if length >= self.settings.min_message {
            return false;
        }
        let length_ms = length.as_millis() as u64;
        info!(
            length_ms,
            min_ms = self.settings.min_message.as_millis() as u64,
            "message shorter than messages.min_length: discarded"
        );
        call.message_file = None;
        call.message_discarded_ms = Some(length_ms);
        self.pending_messages.remove(&key);
        true
    }

    /// The call is ending: a message still being recorded that is too
    /// short is dropped (a longer one is saved as the media closes).
    pub(super) fn message_at_call_end(&mut self, now: Instant, key: CallKey) {
        if self.discard_short_message(now, key) {
            if let Some(leg) = self.calls.get(&key).map(|c| c.customer) {
                self.media(key, MediaCommand::StopRecording { leg, keep: false });
            }
        }
    }

    /// The WAV of a message is on disk: index it (the call may be over).
    pub(super) fn recording_saved(
        &mut self,
        key: CallKey,
        duration_ms: u64,
        ended_by: RecordingEnd,
    ) {
        if let Some(mut message) = self.pending_messages.remove(&key) {
            message.duration_ms = duration_ms;
            message.ended_by = ended_by.as_str().to_string();
            info!(file = %message.file, duration_ms, "message recorded");
            self.wire.push(Output::MessageSaved(Box::new(message)));
        }
    }
}
