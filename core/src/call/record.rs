//! A call's facts folded into its one record.

use std::time::Instant;

use super::{record_id, Call, QueueExit};
use crate::cdr::{self, CallRecord, Disposition, HangupSide, Outcome};
use crate::ids::CallKey;
use crate::io::Peer;
use crate::leg::Leg;
use crate::sip::message::SipRequest;
use crate::time::WallClock;

/// How a call ended, for its record.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub outcome: Outcome,
    pub disposition: Disposition,
    pub side: Option<HangupSide>,
    /// The final status the customer's INVITE got (0 when none).
    pub status: u16,
}

/// The record of a call ending at `now`.
pub fn build(
    call: &Call,
    customer: &Leg,
    clock: WallClock,
    now: Instant,
    end: Ending,
) -> CallRecord {
    let at = |i: Instant| cdr::format_ms(clock.ms(i));
    let mut record = match &customer.invite {
        Some(invite) => base(
            call.key,
            invite,
            customer.dialog.peer,
            call.arrived_at,
            clock,
            now,
        ),
        // A leg we placed: its Call-ID is ours, and the far end's CDR
        // knows the call by it.
        None => CallRecord {
            version: cdr::RECORD_VERSION,
            call_id: record_id(&clock, call.key),
            sip_call_id: customer.dialog.call_id.clone(),
            invite_at: at(call.arrived_at),
            ended_at: at(now),
            ..CallRecord::default()
        },
    };
    let answered_at = customer.answered_at;
    let media_start_at = customer.media_start_at;
    record.ringing_at = customer.ringing_at.map(at);
    record.answered_at = answered_at.map(at);
    record.media_start_at = media_start_at.map(at);
    record.media_end_at = media_start_at.map(|_| at(now));
    record.time_to_answer_ms = answered_at.map(|a| (a - call.arrived_at).as_millis() as u64);
    record.duration_ms = answered_at.map(|a| (now - a).as_millis() as u64);
    record.disposition = end.disposition;
    record.outcome = end.outcome;
    record.hangup_side = end.side;
    record.sip_status = if answered_at.is_some() {
        200
    } else {
        end.status
    };
    record.codec = customer.media.negotiated.map(|n| n.codec);
    record.digits = call.digits.clone();
    record.caller_spoke = call.caller_spoke;
    if media_start_at.is_some() {
        record.language = Some(call.ivr.language.code().to_string());
        record.time_in_ivr_ms = media_start_at
            .map(|start| (call.ivr.finished_at.unwrap_or(now) - start).as_millis() as u64);
    }
    record.ivr_path = call.ivr.path.clone();
    record.business_type = call.ivr.business.clone();
    record.collected = call.ivr.variables.clone();
    record.customer_class = Some(call.info.class.as_str().to_string());
    if let Some(super::work::CallbackAsk::Booked { task }) = &call.callback {
        record.callback_task = Some(task.0);
    }
    record.repeat_of = call.repeat.as_ref().map(|r| r.earlier_call.clone());
    record.summary = call.controls.summary.clone();
    record.agent_business_type = call.controls.saved_business.clone();
    record.vip = call.info.vip;
    record.customer_name = call.info.name.clone();
    record.message_file = call.message_file.clone();
    let c = &call.controls;
    record.holds = c.holds;
    record.hold_ms = (c.holds > 0).then(|| c.hold_time(now).as_millis() as u64);
    record.survey_offered = c.survey.is_some();
    record.satisfaction = c.satisfaction;
    record.recording_file = c.recording_file.clone();
    record.recording_error = c.recording_error.clone();
    record.transfers = c
        .transfers
        .iter()
        .map(|t| cdr::TransferRecord {
            from: t.from.clone(),
            to: t.to.describe(),
            at: at(t.at),
            result: t.result.map(str::to_string),
        })
        .collect();
    record.message_discarded_ms = call.message_discarded_ms;
    let parts = call.controls.agent_parts(now);
    if parts.len() > 1 {
        record.agent_parts = parts
            .iter()
            .map(|p| cdr::AgentPartRecord {
                agent: p.agent.clone(),
                talk_ms: p.talk.as_millis() as u64,
            })
            .collect();
    }
    // A transfer that queued the caller again: the visit in which they
    // first reached an agent is the record's (its wait, its answer).
    let visit = call.controls.first_visit.as_ref().or(call.queue.as_ref());
    if let Some(q) = visit {
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis() as u64;
        record.queue = Some(q.queue.clone());
        record.queued_at = q.joined_at.map(at);
        record.first_offer_at = q.first_offer_at.map(at);
        record.bridged_at = q.bridged_at.map(at);
        record.agent_answered_at = q.answered_at.map(at);
        record.wrap_up_ms = q.wrap_up.map(|w| w.as_millis() as u64);
        // The wait ends at the bridge, or when the caller left the queue
        // (not at the end of the message left after it).
        let wait_end = q.bridged_at.or(q.left_at).unwrap_or(now);
        record.wait_ms = q.joined_at.map(|j| ms(j, wait_end));
        record.talk_ms = q.bridged_at.map(|b| {
            if parts.is_empty() {
                ms(b, now)
            } else {
                parts.iter().map(|p| p.talk.as_millis() as u64).sum()
            }
        });
        record.agent = q.agent.clone();
        record.agent_number = q.agent_number.clone();
        if let Some(last) = parts.last().filter(|_| parts.len() > 1) {
            if record.agent.as_ref() != Some(&last.agent) {
                record.agent = Some(last.agent.clone());
                // The later agent's number is the current visit's, if it
                // was theirs.
                record.agent_number = call
                    .queue
                    .as_ref()
                    .filter(|v| v.agent.as_ref() == Some(&last.agent))
                    .and_then(|v| v.agent_number.clone());
            }
        }
        record.offers = q.offers;
        // A caller who hung up while the agent's number was read out was
        // never connected: an abandon, not an answered call.
        let result = match q.result {
            Some(QueueExit::Answered) if q.bridged_at.is_none() => QueueExit::Abandoned,
            Some(r) => r,
            None => QueueExit::Abandoned,
        };
        record.queue_result = Some(result.as_str().to_string());
        if call.agent_hung_up {
            record.hangup_side = Some(HangupSide::Agent);
        }
    }
    record
}

/// A record with an INVITE's facts, for a call refused at `now`.
pub fn base(
    key: CallKey,
    invite: &SipRequest,
    peer: Peer,
    invite_at: Instant,
    clock: WallClock,
    now: Instant,
) -> CallRecord {
    CallRecord {
        version: cdr::RECORD_VERSION,
        call_id: record_id(&clock, key),
        sip_call_id: invite.call_id.clone(),
        caller_number: invite.caller_number().to_string(),
        caller_name: invite.caller_name(),
        dialled_number: invite.uri_user().to_string(),
        source: format!(
            "{}:{}",
            peer.transport.name().to_ascii_lowercase(),
            peer.addr
        ),
        invite_at: cdr::format_ms(clock.ms(invite_at)),
        ended_at: cdr::format_ms(clock.ms(now)),
        disposition: Disposition::Rejected,
        outcome: Outcome::BadRequest,
        hangup_side: Some(HangupSide::Engine),
        ..CallRecord::default()
    }
}

/// The start of an outbound attempt's record: the number dialled, and the
/// direction.
pub fn base_outbound(now: Instant, clock: WallClock, number: &str) -> CallRecord {
    CallRecord {
        version: cdr::RECORD_VERSION,
        dialled_number: number.to_string(),
        invite_at: cdr::format_ms(clock.ms(now)),
        ended_at: cdr::format_ms(clock.ms(now)),
        direction: Some("outbound".to_string()),
        disposition: Disposition::Failed,
        outcome: Outcome::Unanswered,
        hangup_side: Some(HangupSide::Engine),
        ..CallRecord::default()
    }
}

/// An outbound attempt's facts added to its call's record.
pub fn add_notice(record: &mut CallRecord, n: &super::notice::NoticeCall, caller_id: &str) {
    record.direction = Some("outbound".to_string());
    record.caller_number = caller_id.to_string();
    record.dialled_number = n.number.clone();
    record.campaign = Some(n.campaign.0);
    record.campaign_name = Some(n.campaign_name.clone());
    record.attempt = Some(n.attempt);
    record.attempt_result = n.result.map(|r| r.as_str().to_string());
    record.trunk = Some(n.trunk_name.clone());
    record.sip_status = n.sip_status;
}
