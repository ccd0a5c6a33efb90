//! SIP ingress, transactions and dialogs: INVITE admission, ringing and
//! answer, ACK, CANCEL, BYE, re-INVITE, and the BYEs the engine sends.
use std::time::Instant;

use super::*;

impl Engine {
    // ---- SIP ingress -------------------------------------------------

    pub(super) fn handle_sip(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        if self.guard.is_banned(now, peer.addr.ip()) {
            // Checked before parsing: a flood costs as little as possible.
            self.counters.flood_dropped += 1;
            return;
        }
        if data.len() > self.settings.limits.max_message_size {
            self.counters.oversized += 1;
            debug!(bytes = data.len(), from = %peer.addr, "message too large");
        }
        match message::parse_with(data, &self.settings.limits) {
            Ok(SipMessage::Request(req)) => {
                let span = info_span!("call", call_id = %req.call_id);
                let _entered = span.enter();
                self.handle_request(now, peer, req)
            }
            Ok(SipMessage::Response(resp)) => self.handle_response(now, peer, resp),
            Err(ParseError::BadRequest { reason, request }) => {
                self.counters.bad_requests += 1;
                debug!(%reason, from = %peer.addr, "bad request");
                if request.method != Method::Ack {
                    self.respond_stateless(peer, &request, 400, &reason, &[]);
                    self.record_refused_invite(now, peer, &request, 400);
                }
            }
            Err(ParseError::Refused {
                status,
                reason,
                headers,
                request,
            }) => {
                self.counters.bad_requests += 1;
                debug!(status, reason, from = %peer.addr, "request refused");
                if request.method != Method::Ack {
                    self.respond_stateless(peer, &request, status, reason, headers);
                    self.record_refused_invite(now, peer, &request, status);
                }
            }
            Err(ParseError::UnsupportedScheme { request }) => {
                self.counters.bad_requests += 1;
                if request.method != Method::Ack {
                    self.respond_stateless(peer, &request, 416, "Unsupported URI Scheme", &[]);
                    self.record_refused_invite(now, peer, &request, 416);
                }
            }
            Err(e) => {
                self.counters.datagrams_dropped += 1;
                debug!(error = %e, from = %peer.addr, "dropped");
            }
        }
    }

    pub(super) fn handle_request(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let method = req.method.clone();
        if method == Method::Ack {
            return self.handle_ack(now, peer, req);
        }
        let key = TxKey {
            branch: req.branch.clone(),
            method: req.method.to_string(),
        };
        if let Some((tx, tx_peer)) = self.server_txs.get(&key) {
            // A retransmission: answer again with what we last sent.
            self.counters.retransmissions_absorbed += 1;
            if let Some(resp) = tx.handle_retransmission() {
                let data = resp.to_vec();
                let tx_peer = *tx_peer;
                self.outputs.push_back(Output::Transmit {
                    peer: tx_peer,
                    data,
                });
            }
            return;
        }
        if method == Method::Cancel {
            return self.handle_cancel(now, peer, req);
        }
        let limited = match method {
            Method::Invite if req.to_tag.is_none() => Some(guard::Limited::Invite),
            Method::Register => Some(guard::Limited::Register),
            _ => None,
        };
        if let Some(kind) = limited {
            if self.guard.check(now, peer.addr.ip(), kind) == guard::Verdict::Banned {
                warn!(source = %peer.addr.ip(), ?kind, "flooding: banned, its requests are dropped");
                self.counters.flood_dropped += 1;
                return;
            }
        }
        if req.to_tag.is_some() && self.handle_leg_request(now, peer, &req) {
            return;
        }
        if !req.require.is_empty() {
            let unsupported = req.require.join(", ");
            self.respond_new(
                now,
                peer,
                &req,
                420,
                "Bad Extension",
                &[("Unsupported", &unsupported)],
            );
            return self.record_refused_invite(now, peer, &req, 420);
        }
        if req.max_forwards == Some(0) && method != Method::Options {
            self.respond_new(now, peer, &req, 483, "Too Many Hops", &[]);
            return self.record_refused_invite(now, peer, &req, 483);
        }
        match method {
            Method::Invite if req.to_tag.is_none() => self.handle_new_invite(now, peer, req),
            Method::Invite => self.handle_reinvite(now, peer, req),
            Method::Bye => self.handle_bye(now, peer, req),
            Method::Register => self.handle_register(now, peer, &req),
            Method::Options => self.respond_new(
                now,
                peer,
                &req,
                200,
                "OK",
                &[
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", ""),
                ],
            ),
            Method::Info => match self.dialog_of(&req) {
                Some(key) => {
                    self.respond_new(now, peer, &req, 200, "OK", &[]);
                    if let Some(digit) =
                        super::ivr::info_digit(req.content_type.as_deref(), &req.body)
                    {
                        self.digit(now, key, digit, DigitSource::SipInfo);
                    }
                }
                None => {
                    self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[])
                }
            },
            _ => self.respond_new(now, peer, &req, 501, "Not Implemented", &[("Allow", ALLOW)]),
        }
    }

    pub(super) fn handle_response(&mut self, now: Instant, peer: Peer, resp: SipResponse) {
        if self.handle_leg_response(now, &resp) {
            return;
        }
        // A CANCEL shares its INVITE's branch; its transaction is keyed apart.
        let key = if resp.cseq_method == Method::Cancel {
            format!("{}:CANCEL", resp.branch)
        } else {
            resp.branch.clone()
        };
        let Some((tx, _)) = self.client_txs.get_mut(&key) else {
            self.counters.datagrams_dropped += 1;
            return;
        };
        tx.handle_response(now, resp.status, peer.transport.reliable());
        debug!(status = resp.status, call_id = %resp.call_id, "response to our {}", resp.cseq_method);
        let wake = tx.poll_timeout();
        self.schedule(wake, Wake::ClientTx(key));
    }

    pub(super) fn dialog_of(&self, req: &SipRequest) -> Option<CallKey> {
        let key = *self.dialogs.get(&req.call_id)?;
        let call = self.calls.get(&key)?;
        (req.to_tag.as_deref() == Some(call.local_tag.as_str())).then_some(key)
    }

    // ---- INVITE: admission, ringing, answer ---------------------------

    pub(super) fn handle_new_invite(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        self.counters.calls_offered += 1;
        let key = self.next_call;
        self.next_call += 1;
        let tx_key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        let mut tx = ServerTransaction::new(true, peer.transport.reliable(), self.settings.timers);
        let trying = build::response(&req, peer.addr, 100, "Trying", None, &[], None);
        tx.provisional(trying.clone());
        self.outputs
            .push_back(Output::Transmit { peer, data: trying });
        self.server_txs.insert(tx_key.clone(), (tx, peer));

        let local_tag = self.random_token(10);
        // Where the call starts: the dialled number's plan, by the hour.
        let plan = self.program.plan_for(req.uri_user()).cloned();
        let (entry, language) = match &plan {
            Some(plan) => (
                self.program.entry(plan, self.wall_ms(now)),
                plan.language.unwrap_or(self.settings.default_language),
            ),
            None => (NodeId(0), self.settings.default_language),
        };
        let customer = self.directory.lookup(req.from_user());
        let feature = self.feature_for(&req, peer);
        let mut call = Call {
            prompts: self.prompts.clone(),
            ivr: Ivr::new(self.program.clone(), entry, language),
            playing: None,
            next_token: 0,
            last_digit: None,
            customer,
            message_file: None,
            queue: None,
            feature: None,
            sequence: VecDeque::new(),
            after_sequence: None,
            agent_hung_up: false,
            peer,
            invite_tx: tx_key,
            local_tag,
            state: CallState::Ringing,
            answer_at: None,
            remote_cseq: req.cseq,
            local_cseq: self.rng.random_range(1..10_000),
            offer: None,
            negotiated: None,
            port: 0,
            sdp_session: self.rng.random_range(1..u32::MAX as u64),
            sdp_version: 1,
            awaiting_ack: None,
            media_started: false,
            invite_at: now,
            ringing_at: None,
            answered_at: None,
            media_start_at: None,
            digits: String::new(),
            caller_spoke: false,
            invite: req,
        };

        // Refuse at once rather than leave a call ringing past the window.
        if self.draining || !self.admit(now) {
            self.counters.calls_rejected_busy += 1;
            let retry = self.settings.retry_after.as_secs().max(1).to_string();
            warn!("over capacity: 503");
            let refusal = (503, "Service Unavailable", Outcome::OverCapacity);
            return self.refuse_new_call(now, key, call, refusal, &[("Retry-After", &retry)]);
        }
        call.feature = feature;
        if call.feature.is_none() && !self.guard.is_trunk(peer.addr.ip()) {
            // Not the PBX or trunk in front, and not an agent's feature code.
            self.counters.calls_forbidden += 1;
            info!(source = %peer.addr.ip(), "not on the trunk allow-list: 403");
            let refusal = (403, "Forbidden", Outcome::Forbidden);
            return self.refuse_new_call(now, key, call, refusal, &[]);
        }
        if plan.is_none() && call.feature.is_none() {
            info!("no IVR plan for the dialled number: 404");
            let refusal = (404, "Not Found", Outcome::UnknownNumber);
            return self.refuse_new_call(now, key, call, refusal, &[]);
        }
        if !call.invite.body.is_empty() {
            let is_sdp = call
                .invite
                .content_type
                .as_deref()
                .map(|c| c.to_ascii_lowercase().starts_with("application/sdp"))
                .unwrap_or(false);
            let negotiated = if is_sdp {
                sdp::parse_and_negotiate(&call.invite.body)
            } else {
                Err(sdp::SdpError::NotText)
            };
            match negotiated {
                Ok((offer, n)) => {
                    call.offer = Some(offer);
                    call.negotiated = Some(n);
                }
                Err(e) => {
                    info!(error = %e, "488");
                    let refusal = (488, "Not Acceptable Here", Outcome::NoCommonCodec);
                    return self.refuse_new_call(now, key, call, refusal, &[]);
                }
            }
        }
        let Some(port) = self.free_ports.pop_front() else {
            warn!("no free RTP port: 503");
            let refusal = (503, "Service Unavailable", Outcome::OverCapacity);
            return self.refuse_new_call(now, key, call, refusal, &[]);
        };
        call.port = port;

        let ringing = build::response(
            &call.invite,
            peer.addr,
            180,
            "Ringing",
            Some(&call.local_tag),
            &[("Contact", &self.contact())],
            None,
        );
        if let Some((tx, _)) = self.server_txs.get_mut(&call.invite_tx) {
            tx.provisional(ringing.clone());
        }
        self.outputs.push_back(Output::Transmit {
            peer,
            data: ringing,
        });
        call.ringing_at = Some(now);
        let answer_at = now + self.settings.answer_after;
        call.answer_at = Some(answer_at);
        info!(
            caller = call.invite.from_user(),
            dialled = call.invite.uri_user(),
            "ringing"
        );
        self.dialogs.insert(call.invite.call_id.clone(), key);
        self.calls.insert(key, call);
        if self.settings.answer_after.is_zero() {
            self.answer(now, key);
        } else {
            self.timers.schedule(answer_at, Wake::Call(key));
        }
    }

    /// Refuses a new call with a final error at once (the record says why).
    fn refuse_new_call(
        &mut self,
        now: Instant,
        key: CallKey,
        call: Call,
        (status, reason, outcome): (u16, &str, Outcome),
        extra: &[(&str, &str)],
    ) {
        self.dialogs.insert(call.invite.call_id.clone(), key);
        self.calls.insert(key, call);
        self.reject_ringing_with(now, key, status, reason, outcome, extra);
    }

    /// Token bucket for the call rate, refilled from `now`.
    pub(super) fn admit(&mut self, now: Instant) -> bool {
        if self.calls.len() >= self.settings.max_calls {
            return false;
        }
        let rate = self.settings.max_calls_per_second as f64;
        let elapsed = now
            .saturating_duration_since(self.rate_updated)
            .as_secs_f64();
        self.rate_tokens = (self.rate_tokens + elapsed * rate).min(rate.max(1.0));
        self.rate_updated = now;
        if self.rate_tokens >= 1.0 {
            self.rate_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(super) fn answer(&mut self, now: Instant, key: CallKey) {
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.state != CallState::Ringing {
            return;
        }
        call.answer_at = None;
        call.state = CallState::Answered;
        call.answered_at = Some(now);
        let body = local_sdp(call, self.settings.media_address);
        let response = build::response(
            &call.invite,
            call.peer.addr,
            200,
            "OK",
            Some(&call.local_tag),
            &[("Contact", &contact), ("Allow", ALLOW), ("Supported", "")],
            Some(Body {
                content_type: "application/sdp",
                bytes: body.as_bytes(),
            }),
        );
        info!(
            time_to_answer_ms = (now - call.invite_at).as_millis() as u64,
            "answered"
        );
        let peer = call.peer;
        let tx_key = call.invite_tx.clone();
        call.awaiting_ack = Some(tx_key.clone());
        let arrival = call.invite_at;
        self.live_event(now, crate::live::LiveEvent::CallAnswered { arrival });
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response.clone(),
        });
        if let Some((tx, _)) = self.server_txs.get_mut(&tx_key) {
            tx.final_response(now, 200, response);
            let wake = tx.poll_timeout();
            self.schedule(wake, Wake::ServerTx(tx_key));
        }
    }

    /// Opens media once the dialog is confirmed and both SDPs are known.
    pub(super) fn start_media(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let (Some(offer), Some(n)) = (&call.offer, call.negotiated) else {
            return;
        };
        if call.media_started {
            return;
        }
        call.media_started = true;
        let params = MediaParams {
            codec: n.codec,
            telephone_event: n.telephone_event,
            remote: offer.rtp,
            ssrc: self.rng.random(),
            initial_seq: self.rng.random(),
            initial_timestamp: self.rng.random(),
            inactivity_timeout: self.settings.inactivity_timeout,
            speech_threshold_dbfs: self.settings.speech_threshold_dbfs,
            speech_frames: self.settings.speech_frames,
            inband_dtmf: match self.settings.inband_dtmf {
                InbandDtmf::Always => true,
                InbandDtmf::Off => false,
                InbandDtmf::Auto => n.telephone_event.is_none(),
            },
        };
        let sending = !matches!(offer.direction, Direction::Inactive | Direction::SendOnly);
        let remote = offer.rtp;
        self.outputs.push_back(Output::MediaStart {
            call: key,
            port: call.port,
            params,
        });
        if !sending {
            self.outputs.push_back(Output::MediaUpdate {
                call: key,
                remote,
                sending,
            });
        }
    }

    pub(super) fn handle_ack(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        // ACK for a non-2xx final response: same branch as the INVITE.
        let key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        if let Some((tx, _)) = self.server_txs.get_mut(&key) {
            if !tx.is_terminated() && tx.state() == ServerState::Completed {
                tx.handle_ack(now);
                let wake = tx.poll_timeout();
                self.schedule(wake, Wake::ServerTx(key));
                return;
            }
        }
        let Some(call_key) = self.dialog_of(&req) else {
            self.counters.datagrams_dropped += 1;
            return;
        };
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let Some(tx_key) = call.awaiting_ack.take() else {
            return; // retransmitted ACK
        };
        let first_ack = call.state == CallState::Answered;
        call.state = CallState::Confirmed;
        let _ = peer;
        if let Some((tx, _)) = self.server_txs.get_mut(&tx_key) {
            tx.handle_ack(now);
        }
        self.server_txs.remove(&tx_key);
        if !first_ack {
            return;
        }
        // An INVITE without SDP: our offer went in the 200, the answer is here.
        if call.offer.is_none() {
            let answer = sdp::parse_and_negotiate(&req.body);
            match answer {
                Ok((offer, n)) => {
                    call.offer = Some(offer);
                    call.negotiated = Some(n);
                }
                Err(e) => {
                    info!(error = %e, "ACK without usable SDP answer");
                    return self.hangup(now, call_key, Outcome::NoCommonCodec, Disposition::Failed);
                }
            }
        }
        // Media opens with the confirmed dialog, so a lost ACK is timer H's
        // business, not the RTP inactivity timeout's.
        self.start_media(call_key);
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        call.media_start_at = Some(now);
        if let Some(feature) = call.feature {
            return self.run_feature(now, call_key, feature);
        }
        call.ivr.start(now);
        self.apply_ivr(now, call_key);
    }

    pub(super) fn handle_cancel(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let invite_key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        if !self.server_txs.contains_key(&invite_key) {
            return self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[]);
        }
        let call_key = self.dialogs.get(&req.call_id).copied();
        // The 200 to CANCEL carries the INVITE's To tag (RFC 3261 9.2).
        let mut req = req;
        if let Some(c) = call_key.and_then(|k| self.calls.get(&k)) {
            req.to_tag = Some(c.local_tag.clone());
            req.to = format!("{};tag={}", req.to, c.local_tag);
        }
        self.respond_new(now, peer, &req, 200, "OK", &[]);
        let call =
            call_key.filter(|k| self.calls.get(k).map(|c| c.state) == Some(CallState::Ringing));
        if let Some(key) = call {
            info!("cancelled while ringing");
            self.reject_ringing(
                now,
                key,
                487,
                "Request Terminated",
                Outcome::CallerCancelled,
            );
        }
    }

    pub(super) fn handle_bye(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let Some(key) = self.dialog_of(&req) else {
            return self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[]);
        };
        if !self.check_cseq(now, peer, key, &req) {
            return;
        }
        self.respond_new(now, peer, &req, 200, "OK", &[]);
        let state = self.calls.get(&key).map(|c| c.state);
        if state == Some(CallState::Ringing) {
            // BYE on the early dialog: the INVITE gets 487.
            self.reject_ringing(
                now,
                key,
                487,
                "Request Terminated",
                Outcome::CallerCancelled,
            );
            return;
        }
        info!("caller hung up");
        self.end_call(
            now,
            key,
            Outcome::CallerHangup,
            Disposition::Answered,
            Some(HangupSide::Caller),
            200,
        );
    }

    pub(super) fn handle_reinvite(&mut self, now: Instant, peer: Peer, req: SipRequest) {
        let Some(key) = self.dialog_of(&req) else {
            return self.respond_new(now, peer, &req, 481, "Call/Transaction Does Not Exist", &[]);
        };
        if !self.check_cseq(now, peer, key, &req) {
            return;
        }
        let contact = self.contact();
        let media_address = self.settings.media_address;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.state != CallState::Confirmed || call.awaiting_ack.is_some() {
            return self.respond_new(now, peer, &req, 491, "Request Pending", &[]);
        }
        let mut offer = call.offer.clone();
        let mut negotiated = call.negotiated;
        if !req.body.is_empty() {
            match sdp::parse_and_negotiate(&req.body) {
                Ok((o, n)) => {
                    offer = Some(o);
                    negotiated = Some(n);
                }
                Err(_) => {
                    return self.respond_new(now, peer, &req, 488, "Not Acceptable Here", &[]);
                }
            }
        }
        let changed = offer != call.offer;
        call.offer = offer;
        call.negotiated = negotiated;
        if changed {
            call.sdp_version += 1;
        }
        let body = local_sdp(call, media_address);
        let response = build::response(
            &req,
            peer.addr,
            200,
            "OK",
            None,
            &[("Contact", &contact), ("Allow", ALLOW)],
            Some(Body {
                content_type: "application/sdp",
                bytes: body.as_bytes(),
            }),
        );
        let tx_key = TxKey {
            branch: req.branch.clone(),
            method: "INVITE".into(),
        };
        call.awaiting_ack = Some(tx_key.clone());
        if let (true, Some(o)) = (changed, &call.offer) {
            let sending = !matches!(o.direction, Direction::Inactive | Direction::SendOnly);
            self.outputs.push_back(Output::MediaUpdate {
                call: key,
                remote: o.rtp,
                sending,
            });
        }
        let mut tx = ServerTransaction::new(true, peer.transport.reliable(), self.settings.timers);
        tx.final_response(now, 200, response.clone());
        let wake = tx.poll_timeout();
        self.server_txs.insert(tx_key.clone(), (tx, peer));
        self.schedule(wake, Wake::ServerTx(tx_key));
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
    }

    /// In-dialog CSeq must grow (RFC 3261 12.2.2); answers 500 if not.
    pub(super) fn check_cseq(
        &mut self,
        now: Instant,
        peer: Peer,
        key: CallKey,
        req: &SipRequest,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        if req.cseq <= call.remote_cseq && req.cseq_method != Method::Bye {
            self.respond_new(now, peer, req, 500, "CSeq Out Of Order", &[]);
            return false;
        }
        call.remote_cseq = call.remote_cseq.max(req.cseq);
        true
    }

    // ---- ending calls ------------------------------------------------

    /// The engine hangs up an answered call: BYE, then the record.
    pub(super) fn hangup(
        &mut self,
        now: Instant,
        key: CallKey,
        outcome: Outcome,
        disposition: Disposition,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let local = format!("{};tag={}", call.invite.to, call.local_tag);
        let target = call
            .invite
            .contact
            .clone()
            .unwrap_or_else(|| message::name_addr_uri(&call.invite.from).to_string());
        // The UAS's route set is the Record-Route list in its order.
        let bye = build::request(&DialogRequest {
            method: "BYE",
            target: &target,
            route: &call.invite.record_route,
            via_transport: call.peer.transport.name(),
            via_sent_by: &self.settings.sip_address,
            branch: &branch,
            from: &local,
            to: &call.invite.from,
            call_id: &call.invite.call_id,
            cseq: call.local_cseq,
            extra: &[],
            body: None,
        });
        let peer = call.peer;
        let status = if call.answered_at.is_some() { 200 } else { 0 };
        let tx = ClientTransaction::new(
            now,
            bye.clone(),
            peer.transport.reliable(),
            self.settings.timers,
        );
        let wake = tx.poll_timeout();
        self.client_txs.insert(branch.clone(), (tx, peer));
        self.schedule(wake, Wake::ClientTx(branch));
        self.outputs.push_back(Output::Transmit { peer, data: bye });
        self.end_call(
            now,
            key,
            outcome,
            disposition,
            Some(HangupSide::Engine),
            status,
        );
    }

    /// Answers a still-ringing call with a final error and ends it.
    pub(super) fn reject_ringing(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        outcome: Outcome,
    ) {
        self.reject_ringing_with(now, key, status, reason, outcome, &[])
    }

    pub(super) fn reject_ringing_with(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        outcome: Outcome,
        extra: &[(&str, &str)],
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let response = build::response(
            &call.invite,
            call.peer.addr,
            status,
            reason,
            Some(&call.local_tag),
            extra,
            None,
        );
        let peer = call.peer;
        let tx_key = call.invite_tx.clone();
        if let Some((tx, _)) = self.server_txs.get_mut(&tx_key) {
            tx.final_response(now, status, response.clone());
            let wake = tx.poll_timeout();
            self.schedule(wake, Wake::ServerTx(tx_key));
        }
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
        let (disposition, side) = match outcome {
            Outcome::CallerCancelled => (Disposition::Cancelled, Some(HangupSide::Caller)),
            _ => (Disposition::Rejected, Some(HangupSide::Engine)),
        };
        self.end_call(now, key, outcome, disposition, side, status);
    }

    // ---- transaction timers ------------------------------------------

    pub(super) fn server_tx_timeout(&mut self, now: Instant, key: TxKey) {
        match fire(&mut self.server_txs, &key, now, &mut self.outputs) {
            Fired::Pending(wake) => self.schedule(wake, Wake::ServerTx(key)),
            Fired::Ended { gave_up } => {
                if gave_up {
                    self.timer_h_fired(now, &key);
                }
            }
        }
    }

    /// No ACK for our 2xx within 64*T1: the dialog is dead; BYE it.
    pub(super) fn timer_h_fired(&mut self, now: Instant, key: &TxKey) {
        let call = self
            .calls
            .iter()
            .find(|(_, c)| c.awaiting_ack.as_ref() == Some(key))
            .map(|(k, _)| *k);
        if let Some(call_key) = call {
            let call_id = self.calls.get(&call_key).map(|c| c.invite.call_id.clone());
            let span = info_span!("call", call_id = call_id.as_deref().unwrap_or_default());
            let _entered = span.enter();
            warn!("timer H: no ACK for 200 OK");
            if let Some(c) = self.calls.get_mut(&call_key) {
                c.awaiting_ack = None;
            }
            self.hangup(now, call_key, Outcome::NoAck, Disposition::Failed);
        }
    }

    pub(super) fn client_tx_timeout(&mut self, now: Instant, branch: String) {
        match fire(&mut self.client_txs, &branch, now, &mut self.outputs) {
            Fired::Pending(wake) => self.schedule(wake, Wake::ClientTx(branch)),
            Fired::Ended { gave_up } => {
                if gave_up {
                    self.counters.bye_timeouts += 1;
                }
            }
        }
    }
}

/// Our SDP for a call: the answer to its offer (with the direction that
/// answers the caller's), or an offer when the INVITE had none.
fn local_sdp(call: &Call, media_address: IpAddr) -> String {
    let direction = call
        .offer
        .as_ref()
        .map(|o| o.direction.answer())
        .unwrap_or(Direction::SendRecv);
    sdp::write(
        &LocalMedia {
            addr: media_address,
            port: call.port,
            session_id: call.sdp_session,
            version: call.sdp_version,
        },
        call.negotiated,
        direction,
    )
}
