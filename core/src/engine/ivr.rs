//! Media events and the IVR: what the caller does reaches the call's
//! interpreter, and its actions become media commands and hang-ups.

use std::time::{Duration, Instant};

use super::*;
use crate::ivr::interpreter::IvrAction;
use crate::voicemail::message_id;

/// The same key arriving another way within this window is one press
/// (a trunk sending both RFC 4733 and INFO, or events and tones).
const DIGIT_DEDUP_WINDOW: Duration = Duration::from_millis(500);

impl Engine {
    pub(super) fn handle_media(&mut self, now: Instant, key: CallKey, event: MediaEvent) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let span = info_span!("call", call_id = %call.invite.call_id);
        let _entered = span.enter();
        match event {
            MediaEvent::PlaybackFinished { token, .. } => {
                if call.playing != Some(token) {
                    return; // a prompt that was replaced or stopped
                }
                call.playing = None;
                if let Some(next) = call.sequence.pop_front() {
                    return self.play_id(key, next);
                }
                if let Some(then) = call.after_sequence.take() {
                    return self.after_sequence(now, key, then);
                }
                let waiting = call
                    .queue
                    .as_ref()
                    .is_some_and(|q| q.result.is_none() && q.bridged_at.is_none());
                if waiting {
                    // Music on hold loops, and resumes after the apology.
                    return self.play_named(key, "moh");
                }
                if call.feature.is_some() {
                    // The feature code's confirmation has been said.
                    return self.hangup(now, key, Outcome::Completed, Disposition::Answered);
                }
                call.ivr.handle_playback_finished(now);
            }
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
                if let Some(m) = self.pending_messages.get_mut(&key) {
                    m.ended_by = end.as_str().to_string();
                }
                call.ivr.handle_recording_finished(now);
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
                            call.next_token = call.next_token.wrapping_add(1);
                            let token = call.next_token;
                            call.playing = Some(token);
                            self.outputs.push_back(Output::MediaPlay {
                                call: key,
                                prompt,
                                token,
                            });
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
                    self.outputs
                        .push_back(Output::MediaStopPlayback { call: key });
                }
                IvrAction::Record {
                    max_length,
                    end_silence,
                } => {
                    let recorded_at = super::wall_ms(self.epoch, now);
                    let id = message_id(recorded_at, key);
                    let file = format!(
                        "{}/{id}.wav",
                        cdr::format_ms(recorded_at).get(..10).unwrap_or("undated")
                    );
                    call.message_file = Some(file.clone());
                    let message = MessageRecord {
                        id,
                        call_id: super::call_id(self.epoch, key),
                        caller_number: call.invite.from_user().to_string(),
                        caller_name: call
                            .customer
                            .name
                            .clone()
                            .or_else(|| call.invite.from_display_name()),
                        dialled_number: call.invite.uri_user().to_string(),
                        business_type: call.ivr.business.clone(),
                        customer_class: Some(call.customer.class.as_str().to_string()),
                        recorded_at: cdr::format_ms(recorded_at),
                        duration_ms: 0,
                        ended_by: RecordingEnd::Hangup.as_str().to_string(),
                        file: file.clone(),
                    };
                    self.pending_messages.insert(key, message);
                    self.outputs.push_back(Output::MediaRecord {
                        call: key,
                        file,
                        max_length,
                        end_silence,
                    });
                }
                IvrAction::StopRecording => {
                    self.outputs
                        .push_back(Output::MediaStopRecording { call: key });
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
            self.timers.schedule(at, Wake::Call(key));
        }
    }

    pub(super) fn call_timeout(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let span = info_span!("call", call_id = %call.invite.call_id);
        let _entered = span.enter();
        if call.answer_at.is_some_and(|at| now >= at) {
            return self.answer(now, key);
        }
        call.ivr.handle_timeout(now);
        self.apply_ivr(now, key);
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
            self.outputs
                .push_back(Output::MessageSaved(Box::new(message)));
        }
    }
}

/// The key in a SIP INFO body: `application/dtmf-relay` ("Signal=5") or
/// `application/dtmf` ("5").
pub(super) fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let ctype = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = match ctype.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    match (chars.next(), c) {
        (None, '0'..='9' | '*' | '#' | 'A'..='D') => Some(c),
        // Some phones send the event number (RFC 4733): 10 = *, 11 = #.
        _ => match value.parse::<u8>().ok()? {
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some((b'A' + value.parse::<u8>().ok()? - 12) as char),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::info_digit;

    #[test]
    fn info_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            info_digit(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            info_digit(relay, b"Signal= #\r\nDuration=160\r\n"),
            Some('#')
        );
        assert_eq!(info_digit(relay, b"Signal=11\r\n"), Some('#'));
        assert_eq!(info_digit(Some("application/dtmf"), b"7"), Some('7'));
        assert_eq!(info_digit(Some("application/dtmf"), b"x"), None);
        assert_eq!(info_digit(Some("text/plain"), b"5"), None);
        assert_eq!(info_digit(None, b"Signal=5"), None);
    }
}
