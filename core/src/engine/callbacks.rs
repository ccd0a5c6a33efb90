//! A waiting caller's callback: offered after the queue's
//! `callback_after` (or on arrival when the expected wait is over
//! `callback_wait_over`), taken with the callback key; the number is read
//! back (a mobile number 3-4-4), confirmed with 1 or replaced by another
//! ended with `#`; then the caller hears it is booked and the call ends.
//! Their entry stays in the queue under the callback's task, same place.

use std::time::{Duration, Instant};

use tracing::info;

use super::Engine;
use crate::acd::AcdInput;
use crate::call::work::{readback_groups, CallbackAsk};
use crate::call::AfterSequence;
use crate::cdr::{Disposition, Outcome};
use crate::ids::CallKey;
use crate::tasks::{Task, TaskKind, TaskState};
use crate::wire::{CallTimer, Wake};

/// How long the caller has for a key after the number is read back.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(8);

impl Engine {
    fn callback_queue(&self, key: CallKey) -> Option<&crate::acd::QueueConfig> {
        let name = self.calls.get(&key)?.queue.as_ref()?.queue.clone();
        self.settings.queues.iter().find(|q| q.name == name)
    }

    /// The caller joined a queue: arm its callback offer.
    pub(super) fn arm_callback_offer(&mut self, now: Instant, key: CallKey) {
        if !self.waiting(key) || self.calls.get(&key).is_some_and(|c| c.work.is_some()) {
            return;
        }
        let Some(q) = self.callback_queue(key) else {
            return;
        };
        let (after, over) = (q.callback_after, q.callback_wait_over);
        if let Some(over) = over {
            // Not to a caller already being offered to an agent.
            let waiting = self
                .acd
                .caller(key)
                .is_some_and(|c| c.phase == crate::acd::CallerPhase::Waiting);
            let long = waiting && self.acd.expected_wait(key).is_some_and(|w| w > over);
            if long {
                return self.offer_callback(now, key);
            }
        }
        if let Some(after) = after {
            self.wire
                .timers
                .schedule(now + after, Wake::Call(key, CallTimer::CallbackOffer));
        }
    }

    /// "如需回电并保留您的排队位置，请按1".
    pub(super) fn offer_callback(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let waiting = call.queue.as_ref().is_some_and(|q| q.waiting());
        if !waiting || call.callback.is_some() {
            return;
        }
        call.callback = Some(CallbackAsk::Offered);
        info!("offering a callback");
        let names = vec!["callback_offer".to_string()];
        self.play_sequence(now, key, &names, Some(AfterSequence::Moh));
    }

    /// A key from a waiting caller, for the callback exchange. Returns
    /// whether it was taken.
    pub(super) fn callback_digit(&mut self, now: Instant, key: CallKey, digit: char) -> bool {
        if !self.waiting(key) {
            return false;
        }
        let callback_key = self.callback_queue(key).map(|q| q.callback_key);
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Some(ask) = call.callback.clone() else {
            return false;
        };
        match ask {
            CallbackAsk::Offered if Some(digit) == callback_key => {
                let number = call
                    .customer_leg()
                    .and_then(|l| l.invite.as_ref())
                    .map(|i| crate::campaign::normalise_number(i.caller_number()))
                    .unwrap_or_default();
                if crate::number::is_number(&number) {
                    self.read_back(now, key, number);
                } else {
                    // No usable caller id: ask for the number.
                    self.ask_number(now, key);
                }
                true
            }
            CallbackAsk::Offered => false,
            CallbackAsk::Confirming { number } => {
                match digit {
                    '1' => self.book_callback(now, key, number),
                    '*' => self.callback_dropped(now, key),
                    d if d.is_ascii_digit() => {
                        call.callback = Some(CallbackAsk::Entering {
                            digits: d.to_string(),
                        });
                        call.playing = None;
                        let leg = call.customer;
                        self.media(
                            key,
                            crate::media::call_media::MediaCommand::StopPlayback { leg },
                        );
                        self.rearm_callback_key(now, key);
                    }
                    _ => {}
                }
                true
            }
            CallbackAsk::Entering { mut digits } => {
                match digit {
                    '#' => {
                        let ok = (5..=20).contains(&digits.len());
                        if ok {
                            self.read_back(now, key, digits);
                        } else {
                            self.ask_number(now, key);
                        }
                    }
                    '*' => self.callback_dropped(now, key),
                    d if d.is_ascii_digit() && digits.len() < 20 => {
                        digits.push(d);
                        call.callback = Some(CallbackAsk::Entering { digits });
                        self.rearm_callback_key(now, key);
                    }
                    _ => {}
                }
                true
            }
            CallbackAsk::Booked { .. } => true,
        }
    }

    /// "您的回电号码是 138 0013 8000，确认请按1，更改请输入新号码并以#号结束".
    fn read_back(&mut self, now: Instant, key: CallKey, number: String) {
        let mut names = vec!["callback_number_is".to_string()];
        names.extend(readback_groups(&number));
        names.push("callback_confirm".to_string());
        if let Some(call) = self.calls.get_mut(&key) {
            call.callback = Some(CallbackAsk::Confirming { number });
        }
        self.play_sequence(now, key, &names, Some(AfterSequence::CallbackListen));
    }

    /// "请输入回电号码，以#号结束".
    fn ask_number(&mut self, now: Instant, key: CallKey) {
        if let Some(call) = self.calls.get_mut(&key) {
            call.callback = Some(CallbackAsk::Entering {
                digits: String::new(),
            });
        }
        let names = vec!["callback_enter_number".to_string()];
        self.play_sequence(now, key, &names, Some(AfterSequence::CallbackListen));
    }

    pub(super) fn rearm_callback_key(&mut self, now: Instant, key: CallKey) {
        self.wire
            .timers
            .schedule(now + CONFIRM_WAIT, Wake::Call(key, CallTimer::CallbackKey));
        if let Some(call) = self.calls.get_mut(&key) {
            call.controls.callback_key_at = Some(now + CONFIRM_WAIT);
        }
    }

    /// No key in time: the caller goes on waiting (the offer stands).
    pub(super) fn callback_key_timeout(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.controls.callback_key_at.is_none_or(|at| now < at) {
            return;
        }
        if !matches!(
            call.callback,
            Some(CallbackAsk::Confirming { .. } | CallbackAsk::Entering { .. })
        ) {
            return;
        }
        info!("no callback confirmation: the caller keeps waiting");
        self.callback_dropped(now, key);
    }

    fn callback_dropped(&mut self, now: Instant, key: CallKey) {
        if let Some(call) = self.calls.get_mut(&key) {
            call.callback = Some(CallbackAsk::Offered);
            call.controls.callback_key_at = None;
        }
        self.after_sequence(now, key, AfterSequence::Moh);
    }

    /// Confirmed: the callback task takes the caller's place in the
    /// queue, is written, and the caller hears it is booked.
    fn book_callback(&mut self, now: Instant, key: CallKey, number: String) {
        let Some(q) = self.callback_queue(key).cloned() else {
            return;
        };
        let now_ms = self.wall_ms(now);
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let priority = crate::acd::caller_priority(call.info.class, call.info.vip);
        let arrival_ms = self.wall_ms(call.arrived_at);
        let business = call.ivr.business.clone();
        let origin = self.record_id(key.0);
        let id = self.tasks.next_id();
        let task = Task {
            id,
            kind: TaskKind::Callback,
            number: number.clone(),
            queue: q.name.clone(),
            business,
            note: String::new(),
            created_ms: now_ms,
            due_ms: None,
            state: TaskState::Open,
            attempts: Vec::new(),
            max_attempts: q.callback_attempts,
            retry_ms: q.callback_retry.as_millis() as u64,
            not_before_ms: 0,
            priority,
            order_ms: arrival_ms,
            owner: None,
            origin_call: Some(origin),
            mode: q.callback_mode,
            outcome: None,
            closed_ms: None,
            version: 1,
            order: None,
        };
        info!(task = id.0, %number, queue = %q.name, "callback booked, keeping the caller's place");
        self.tasks.insert(task);
        self.tasks.mark_entered(id);
        self.write_task(id, false);
        let entry = CallKey(self.next_key());
        self.work_entries.insert(entry, id);
        self.task_entry.insert(id, entry);
        if let Some(call) = self.calls.get_mut(&key) {
            call.callback = Some(CallbackAsk::Booked { task: id });
            call.controls.callback_key_at = None;
        }
        self.acd.handle(
            now,
            AcdInput::KeepPlace {
                caller: key,
                callback: entry,
                dial_first: q.callback_mode == crate::tasks::CallbackMode::CustomerFirst,
            },
        );
        self.apply_acd(now);
        let names = vec!["callback_booked".to_string()];
        self.play_sequence(now, key, &names, Some(AfterSequence::Hangup));
    }

    /// The callback is said: goodbye.
    pub(super) fn callback_said(&mut self, now: Instant, key: CallKey) {
        self.hangup(now, key, Outcome::Completed, Disposition::Answered);
    }

    /// Queue announcements wait while the caller is in the exchange.
    pub(super) fn in_callback_exchange(&self, key: CallKey) -> bool {
        self.calls
            .get(&key)
            .and_then(|c| c.callback.as_ref())
            .is_some_and(CallbackAsk::busy)
    }
}
