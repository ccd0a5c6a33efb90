//! Call records: the engine's facts about a call folded into one record.

use std::time::Instant;

use super::*;

impl Engine {
    pub(super) fn end_call(
        &mut self,
        now: Instant,
        key: CallKey,
        outcome: Outcome,
        disposition: Disposition,
        side: Option<HangupSide>,
        status: u16,
    ) {
        self.caller_gone(now, key);
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        if self.dialogs.get(&call.invite.call_id) == Some(&key) {
            self.dialogs.remove(&call.invite.call_id);
        }
        if call.port != 0 {
            self.free_ports.push_back(call.port);
        }
        if let Some(tx_key) = &call.awaiting_ack {
            self.server_txs.remove(tx_key);
        }
        let at = |i: Instant| cdr::format_ms(self.wall_ms(i));
        let mut record = self.base_record(key, &call.invite, call.peer, call.invite_at, now);
        record.ringing_at = call.ringing_at.map(at);
        record.answered_at = call.answered_at.map(at);
        record.media_start_at = call.media_start_at.map(at);
        record.media_end_at = call.media_start_at.map(|_| at(now));
        record.time_to_answer_ms = call
            .answered_at
            .map(|a| (a - call.invite_at).as_millis() as u64);
        record.duration_ms = call.answered_at.map(|a| (now - a).as_millis() as u64);
        record.disposition = disposition;
        record.outcome = outcome;
        record.hangup_side = side;
        record.sip_status = if call.answered_at.is_some() {
            200
        } else {
            status
        };
        record.codec = call.negotiated.map(|n| n.codec);
        record.digits = call.digits;
        record.caller_spoke = call.caller_spoke;
        if call.media_start_at.is_some() {
            record.language = Some(call.ivr.language.code().to_string());
            record.time_in_ivr_ms = call
                .media_start_at
                .map(|start| (call.ivr.finished_at.unwrap_or(now) - start).as_millis() as u64);
        }
        record.ivr_path = call.ivr.path;
        record.business_type = call.ivr.business;
        record.collected = call.ivr.variables;
        record.customer_class = Some(call.customer.class.as_str().to_string());
        record.vip = call.customer.vip;
        record.customer_name = call.customer.name;
        record.message_file = call.message_file;
        if let Some(q) = call.queue {
            let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis() as u64;
            record.queue = Some(q.queue);
            record.queued_at = q.joined_at.map(at);
            record.first_offer_at = q.first_offer_at.map(at);
            record.bridged_at = q.bridged_at.map(at);
            record.agent_answered_at = q.answered_at.map(at);
            record.wrap_up_ms = q.wrap_up.map(|w| w.as_millis() as u64);
            // The wait ends at the bridge, or when the caller left the
            // queue (not at the end of the message left after it).
            let wait_end = q.bridged_at.or(q.left_at).unwrap_or(now);
            record.wait_ms = q.joined_at.map(|j| ms(j, wait_end));
            record.talk_ms = q.bridged_at.map(|b| ms(b, now));
            record.agent = q.agent;
            record.agent_number = q.agent_number;
            record.offers = q.offers;
            // A caller who hung up while the agent's number was read out
            // was never connected: an abandon, not an answered call.
            let result = match q.result {
                Some("answered") if q.bridged_at.is_none() => "abandoned",
                Some(r) => r,
                None => "abandoned",
            };
            record.queue_result = Some(result.to_string());
            if call.agent_hung_up {
                record.hangup_side = Some(HangupSide::Agent);
            }
        }
        info!(outcome = ?outcome, "call ended");
        self.live_event(
            now,
            crate::live::LiveEvent::CallEnded {
                call: key,
                arrival: call.invite_at,
                outcome,
                answered: call.answered_at.is_some(),
            },
        );
        self.outputs.push_back(Output::CallEnded {
            call: key,
            record: Box::new(record),
        });
    }

    /// A record with the INVITE's facts, for a call refused at `now`.
    pub(super) fn base_record(
        &self,
        key: CallKey,
        invite: &SipRequest,
        peer: Peer,
        invite_at: Instant,
        now: Instant,
    ) -> CallRecord {
        CallRecord {
            version: cdr::RECORD_VERSION,
            call_id: self.call_id(key),
            sip_call_id: invite.call_id.clone(),
            caller_number: invite.from_user().to_string(),
            caller_name: invite.from_display_name(),
            dialled_number: invite.uri_user().to_string(),
            source: format!(
                "{}:{}",
                peer.transport.name().to_ascii_lowercase(),
                peer.addr
            ),
            invite_at: cdr::format_ms(self.wall_ms(invite_at)),
            ended_at: cdr::format_ms(self.wall_ms(now)),
            disposition: Disposition::Rejected,
            outcome: Outcome::BadRequest,
            hangup_side: Some(HangupSide::Engine),
            ..CallRecord::default()
        }
    }

    /// A new INVITE refused before any call state exists (400, 416, 420,
    /// 483) still leaves a record.
    pub(super) fn record_refused_invite(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &SipRequest,
        status: u16,
    ) {
        if req.method != Method::Invite || req.to_tag.is_some() {
            return;
        }
        self.counters.calls_offered += 1;
        let key = self.next_call;
        self.next_call += 1;
        let mut record = self.base_record(key, req, peer, now, now);
        record.sip_status = status;
        info!(status, "INVITE refused");
        self.live_event(
            now,
            crate::live::LiveEvent::CallEnded {
                call: key,
                arrival: now,
                outcome: record.outcome,
                answered: false,
            },
        );
        self.outputs.push_back(Output::CallEnded {
            call: key,
            record: Box::new(record),
        });
    }
}
