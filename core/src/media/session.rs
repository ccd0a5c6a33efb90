//! One call's RTP session as a pure state machine: it paces 20 ms frames
//! against the `now` it is given, decodes what the caller sends, and reports
//! events. The runtime owns the socket and calls, in a loop:
//! `poll_transmit(now, buf)` until it returns `None`, `poll_event()`,
//! `handle_rtp(now, from, packet)` for each datagram, and sleeps until
//! `poll_timeout()`. Nothing here allocates per packet.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use super::dtmf::{DigitSource, TelephoneEventDecoder};
use super::g711::Codec;
use super::inband::InbandDtmf;
use super::prompt::{PromptId, PromptSet, FRAME, FRAME_SAMPLES};
use super::silence::SpeechDetector;

/// What happened on the media path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// The last frame of the prompt started with `token` has been played out.
    PlaybackFinished { prompt: PromptId, token: u32 },
    /// The caller started speaking.
    Speech,
    /// A key, from RFC 4733 telephone-events or tones in the audio.
    Digit { digit: char, source: DigitSource },
    /// A recording ended; take it with [`MediaSession::take_recording`].
    RecordingFinished(RecordingEnd),
    /// No RTP from the caller for the inactivity timeout.
    Inactive,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingEnd {
    Pound,
    Silence,
    MaxLength,
    Hangup,
}

impl RecordingEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingEnd::Pound => "pound",
            RecordingEnd::Silence => "silence",
            RecordingEnd::MaxLength => "max_length",
            RecordingEnd::Hangup => "hangup",
        }
    }
}

/// A recording in progress: its buffer is allocated once, at the start.
#[derive(Debug)]
struct Recording {
    samples: Vec<i16>,
    max_samples: usize,
    deadline: Instant,
    end_silence: Duration,
    last_voice: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct MediaParams {
    pub codec: Codec,
    pub telephone_event: Option<u8>,
    pub remote: SocketAddr,
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
    pub inactivity_timeout: Duration,
    pub speech_threshold_dbfs: f64,
    pub speech_frames: u32,
    /// Detect DTMF tones in the decoded audio.
    pub inband_dtmf: bool,
}

/// Counters the runtime reports and benchmarks read.
#[derive(Debug, Default, Clone, Copy)]
pub struct MediaStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_invalid: u64,
    /// Frames sent after their slot; `lateness_hist[i]` counts sends late by
    /// [i*250, (i+1)*250) µs, the last bucket everything beyond 7.75 ms.
    pub lateness_hist: [u32; LATENESS_BUCKETS],
    /// Times the clock jumped so far that pacing restarted from `now`.
    pub resyncs: u32,
}

/// A datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub len: usize,
    pub destination: SocketAddr,
}

pub struct MediaSession {
    prompts: Arc<PromptSet>,
    params: MediaParams,
    remote: SocketAddr,
    latched: bool,
    sending: bool,
    seq: u16,
    timestamp: u32,
    marker: bool,
    next_send: Instant,
    playing: Option<(PromptId, usize, u32)>,
    /// After a prompt ends, its next slot waits this long for the engine
    /// to name the next prompt, so prompts follow each other without a gap.
    handoff_until: Option<Instant>,
    recording: Option<Recording>,
    finished_recording: Option<(Vec<i16>, RecordingEnd)>,
    inband: Option<InbandDtmf>,
    last_rx: Instant,
    inactive_reported: bool,
    /// Bridged to another leg: relayed frames replace prompts and silence.
    bridged: bool,
    /// The last audio packet received, decoded (up to 60 ms), for relaying
    /// to the other leg.
    last_frame: [i16; MAX_RELAY_SAMPLES],
    last_frame_len: usize,
    /// The last telephone-event payload received and its RTP timestamp.
    last_event: Option<([u8; 4], u32)>,
    /// Maps the other leg's event timestamp to ours while relaying events.
    relayed_event: Option<(u32, u32)>,
    speech: SpeechDetector,
    dtmf: TelephoneEventDecoder,
    events: VecDeque<MediaEvent>,
    stats: MediaStats,
}

/// The longest packet relayed whole between bridged legs: 60 ms (ptime
/// 10 to 60 is what phones and trunks send).
const MAX_RELAY_SAMPLES: usize = 480;

/// How long a finished prompt's next slot waits for the next prompt.
const PROMPT_HANDOFF: Duration = Duration::from_millis(5);

/// Buckets of 250 µs in the send-lateness histogram.
pub const LATENESS_BUCKETS: usize = 32;

/// How far behind schedule pacing may fall before it restarts from `now`
/// instead of bursting to catch up.
const MAX_BACKLOG: Duration = Duration::from_millis(200);

impl MediaSession {
    pub fn new(now: Instant, prompts: Arc<PromptSet>, params: MediaParams) -> Self {
        MediaSession {
            prompts,
            remote: params.remote,
            latched: false,
            sending: true,
            seq: params.initial_seq,
            timestamp: params.initial_timestamp,
            marker: true,
            next_send: now,
            playing: None,
            handoff_until: None,
            recording: None,
            finished_recording: None,
            inband: params.inband_dtmf.then(InbandDtmf::new),
            last_rx: now,
            inactive_reported: false,
            bridged: false,
            last_frame: [0; MAX_RELAY_SAMPLES],
            last_frame_len: 0,
            last_event: None,
            relayed_event: None,
            speech: SpeechDetector::new(params.speech_threshold_dbfs, params.speech_frames),
            dtmf: TelephoneEventDecoder::default(),
            events: VecDeque::with_capacity(16),
            stats: MediaStats::default(),
            params,
        }
    }

    /// Starts `prompt` from its beginning, replacing whatever was playing;
    /// its [`MediaEvent::PlaybackFinished`] carries `token`.
    pub fn play(&mut self, prompt: PromptId, token: u32) {
        self.playing = Some((prompt, 0, token));
        self.marker = true;
    }

    /// Records the caller's decoded audio (allocates the whole buffer now).
    pub fn start_recording(&mut self, now: Instant, max_length: Duration, end_silence: Duration) {
        let max_samples = (max_length.as_millis() as usize) * 8;
        self.recording = Some(Recording {
            samples: Vec::with_capacity(max_samples),
            max_samples,
            deadline: now + max_length,
            end_silence,
            last_voice: now,
        });
    }

    /// Ends the recording, if one is running.
    pub fn stop_recording(&mut self, end: RecordingEnd) {
        if let Some(r) = self.recording.take() {
            self.finished_recording = Some((r.samples, end));
            self.events.push_back(MediaEvent::RecordingFinished(end));
        }
    }

    /// The last finished recording's samples (8 kHz mono) and why it ended.
    pub fn take_recording(&mut self) -> Option<(Vec<i16>, RecordingEnd)> {
        self.finished_recording.take()
    }

    /// Stops playback (silence is sent instead); no event is raised.
    pub fn stop(&mut self) {
        self.playing = None;
    }

    /// A re-INVITE moved the peer or put it on hold.
    pub fn update_remote(&mut self, remote: SocketAddr, sending: bool) {
        self.remote = remote;
        self.latched = false;
        self.sending = sending;
    }

    pub fn prompts(&self) -> &Arc<PromptSet> {
        &self.prompts
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    /// Feeds one received datagram.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) {
        let Ok(rtp) = RtpReader::new(packet) else {
            self.stats.packets_invalid += 1;
            return;
        };
        if rtp.version() != 2 {
            self.stats.packets_invalid += 1;
            return;
        }
        self.stats.packets_received += 1;
        self.last_rx = now;
        self.inactive_reported = false;
        if !self.latched {
            // Symmetric RTP: answer to where the caller really sends from.
            self.remote = from;
            self.latched = true;
        }
        let pt = rtp.payload_type();
        self.last_frame_len = 0;
        self.last_event = None;
        if Some(pt) == self.params.telephone_event {
            if let [a, b, c, d, ..] = *rtp.payload() {
                self.last_event = Some(([a, b, c, d], rtp.timestamp()));
            }
            if let Some(digit) = self.dtmf.handle(rtp.timestamp(), rtp.payload()) {
                self.events.push_back(MediaEvent::Digit {
                    digit,
                    source: DigitSource::Rfc4733,
                });
            }
            return;
        }
        let Some(codec) = Codec::from_payload_type(pt) else {
            return;
        };
        let mut pcm = [0i16; FRAME_SAMPLES];
        for frame in rtp.payload().chunks(FRAME_SAMPLES) {
            let pcm = &mut pcm[..frame.len()];
            for (o, &b) in pcm.iter_mut().zip(frame) {
                *o = codec.decode(b);
            }
            // Keep the whole packet for the bridge, not just its last chunk.
            let at = self.last_frame_len;
            let n = pcm.len().min(MAX_RELAY_SAMPLES - at);
            self.last_frame[at..at + n].copy_from_slice(&pcm[..n]);
            self.last_frame_len = at + n;
            if self.speech.handle_frame(pcm.iter().copied()) {
                self.events.push_back(MediaEvent::Speech);
            }
            if let Some(detector) = self.inband.as_mut() {
                if let Some(digit) = detector.handle_samples(pcm.iter().copied()) {
                    self.events.push_back(MediaEvent::Digit {
                        digit,
                        source: DigitSource::Inband,
                    });
                }
            }
            let loud = self.speech.last_frame_loud();
            if let Some(r) = self.recording.as_mut() {
                let room = r.max_samples - r.samples.len();
                r.samples.extend_from_slice(&pcm[..pcm.len().min(room)]);
                if loud {
                    r.last_voice = now;
                }
                if r.samples.len() >= r.max_samples {
                    self.stop_recording(RecordingEnd::MaxLength);
                }
            }
        }
    }

    /// Writes the next due packet into `buf` (at least 12 + 160 bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if now < self.next_send || self.bridged {
            return None;
        }
        if let Some((id, index, token)) = self.playing {
            if index >= self.prompts.get(id).frames() {
                // The prompt has played out. Report it before filling this
                // slot, so a prompt chosen in reply takes the slot with no
                // gap: call again after handling the event.
                self.playing = None;
                self.handoff_until = Some(self.next_send + PROMPT_HANDOFF);
                self.events
                    .push_back(MediaEvent::PlaybackFinished { prompt: id, token });
                return None;
            }
        }
        if let Some(until) = self.handoff_until {
            if self.playing.is_none() && now < until {
                return None;
            }
            self.handoff_until = None;
        }
        let late = now - self.next_send;
        if late > MAX_BACKLOG {
            self.stats.resyncs += 1;
            let skipped = (late.as_micros() / FRAME.as_micros()) as u32;
            self.timestamp = self
                .timestamp
                .wrapping_add(skipped.wrapping_mul(FRAME_SAMPLES as u32));
            self.next_send = now;
            self.marker = true;
        }
        let bucket =
            ((now - self.next_send).as_micros() / 250).min(LATENESS_BUCKETS as u128 - 1) as usize;
        self.stats.lateness_hist[bucket] += 1;
        self.next_send += FRAME;

        let codec = self.params.codec;
        // The frame is copied to the stack: no allocation, and no borrow of
        // the prompt while the packet is written.
        let mut payload = [codec.silence(); FRAME_SAMPLES];
        if let Some((id, index, token)) = self.playing {
            self.playing = Some((id, index + 1, token));
            payload.copy_from_slice(self.prompts.get(id).frame(codec, index));
        }
        let tx = self.write_packet(codec.payload_type(), &payload, FRAME_SAMPLES as u32, buf)?;
        // On hold the timeline still advances; nothing is sent.
        if !self.sending {
            return None;
        }
        self.stats.packets_sent += 1;
        Some(tx)
    }

    /// Bridges (or unbridges) this leg: while bridged, it sends only what
    /// [`MediaSession::relay_audio`] and [`MediaSession::relay_event`] give it.
    pub fn set_bridged(&mut self, now: Instant, bridged: bool) {
        self.bridged = bridged;
        self.playing = None;
        self.marker = true;
        if !bridged {
            self.next_send = now;
        }
    }

    /// The audio frame decoded from the last packet `handle_rtp` took, if
    /// it was audio: what a bridge relays to the other leg.
    pub fn last_audio(&self) -> Option<&[i16]> {
        (self.last_frame_len > 0).then(|| &self.last_frame[..self.last_frame_len])
    }

    /// The telephone-event payload and timestamp of the last packet, if it
    /// was one.
    pub fn last_event(&self) -> Option<([u8; 4], u32)> {
        self.last_event
    }

    /// Encodes a frame from the other leg in this leg's codec (transcoding
    /// PCMU and PCMA as needed) and writes the packet into `buf`.
    pub fn relay_audio(&mut self, pcm: &[i16], buf: &mut [u8]) -> Option<Transmit> {
        if !self.bridged || !self.sending || pcm.is_empty() {
            return None;
        }
        let codec = self.params.codec;
        let mut payload = [0u8; MAX_RELAY_SAMPLES];
        let n = pcm.len().min(MAX_RELAY_SAMPLES);
        for (o, &s) in payload.iter_mut().zip(&pcm[..n]) {
            *o = codec.encode(s);
        }
        self.relayed_event = None;
        let tx = self.write_packet(codec.payload_type(), &payload[..n], n as u32, buf)?;
        self.stats.packets_sent += 1;
        Some(tx)
    }

    /// Passes a telephone-event through with this leg's payload type; every
    /// packet of one event keeps one timestamp, as RFC 4733 requires.
    pub fn relay_event(
        &mut self,
        payload: [u8; 4],
        their_ts: u32,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let pt = self.params.telephone_event?;
        if !self.bridged || !self.sending {
            return None;
        }
        let ts = match self.relayed_event {
            Some((theirs, ours)) if theirs == their_ts => ours,
            _ => {
                self.relayed_event = Some((their_ts, self.timestamp));
                self.marker = true;
                self.timestamp
            }
        };
        let saved = self.timestamp;
        self.timestamp = ts;
        let out = self.write_packet(pt, &payload, 0, buf);
        self.timestamp = saved;
        self.stats.packets_sent += u64::from(out.is_some());
        out
    }

    /// Writes one packet with the next sequence number, then advances the
    /// timestamp by `samples`.
    fn write_packet(
        &mut self,
        pt: u8,
        payload: &[u8],
        samples: u32,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let len = RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(self.params.ssrc)
            .sequence(Seq::from(self.seq))
            .timestamp(self.timestamp)
            .marked(self.marker)
            .payload(payload)
            .build_into(buf)
            .ok()?;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.marker = false;
        Some(Transmit {
            len,
            destination: self.remote,
        })
    }

    /// Checks the inactivity and recording timeouts; call when
    /// `poll_timeout` is reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = &self.recording {
            if now >= r.deadline {
                self.stop_recording(RecordingEnd::MaxLength);
            } else if now >= r.last_voice + r.end_silence {
                self.stop_recording(RecordingEnd::Silence);
            }
        }
        if !self.inactive_reported
            && self.sending
            && now >= self.last_rx + self.params.inactivity_timeout
        {
            self.inactive_reported = true;
            self.events.push_back(MediaEvent::Inactive);
        }
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When to call again: the next frame slot, the inactivity deadline or
    /// a recording's end.
    pub fn poll_timeout(&self) -> Instant {
        let far = self.last_rx + self.params.inactivity_timeout;
        let mut at = match self.handoff_until {
            _ if self.bridged => far,
            Some(until) if self.playing.is_none() => until,
            _ => self.next_send,
        };
        if !self.inactive_reported {
            at = at.min(self.last_rx + self.params.inactivity_timeout);
        }
        if let Some(r) = &self.recording {
            at = at.min(r.deadline).min(r.last_voice + r.end_silence);
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::prompt::Prompt;

    fn session(now: Instant) -> (MediaSession, PromptId) {
        let mut set = PromptSet::default();
        let id = set.insert(Prompt::from_samples("p", &[4000; 160 * 3]));
        let params = MediaParams {
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            remote: "127.0.0.1:6000".parse().expect("addr"),
            ssrc: 0x1234,
            initial_seq: 65534,
            initial_timestamp: 1000,
            inactivity_timeout: Duration::from_secs(30),
            speech_threshold_dbfs: -40.0,
            speech_frames: 3,
            inband_dtmf: false,
        };
        (MediaSession::new(now, Arc::new(set), params), id)
    }

    #[test]
    fn paces_without_drift_and_numbers_packets() {
        let t0 = crate::time::test_epoch();
        let (mut s, id) = session(t0);
        s.play(id, 1);
        let mut buf = [0u8; 256];
        let mut sent = Vec::new();
        let mut now = t0;
        // Wake a little late each time: the schedule must not drift (the
        // slot after the prompt's end waits briefly for the next prompt).
        while sent.len() < 500 {
            while let Some(tx) = s.poll_transmit(now, &mut buf) {
                let r = RtpReader::new(&buf[..tx.len]).expect("valid rtp");
                sent.push((now, u16::from(r.sequence_number()), r.timestamp(), r.mark()));
            }
            now = s.poll_timeout() + Duration::from_micros(700);
        }
        assert_eq!(sent.len(), 500);
        assert_eq!(sent[0].1, 65534);
        assert_eq!(sent[2].1, 0, "sequence wraps");
        assert!(sent[0].3 && !sent[1].3, "marker on first packet only");
        for (i, w) in sent.windows(2).enumerate() {
            assert_eq!(w[1].2.wrapping_sub(w[0].2), 160, "timestamp step at {i}");
        }
        // Each wake is 0.7 ms late, yet the 500th packet is still only
        // 0.7 ms behind its slot: lateness does not accumulate.
        let span = sent[499].0 - sent[0].0;
        assert_eq!(
            span,
            Duration::from_millis(20 * 499) + Duration::from_micros(700)
        );
        assert_eq!(s.stats().packets_sent, 500);
    }

    #[test]
    fn playback_finishes_after_its_last_frame() {
        let t0 = crate::time::test_epoch();
        let (mut s, id) = session(t0);
        s.play(id, 7);
        let mut buf = [0u8; 256];
        let mut now = t0;
        let finished_at = loop {
            while s.poll_transmit(now, &mut buf).is_some() {}
            if let Some(MediaEvent::PlaybackFinished { prompt, token }) = s.poll_event() {
                assert_eq!((prompt, token), (id, 7));
                break now;
            }
            now = s.poll_timeout();
        };
        assert_eq!(finished_at - t0, Duration::from_millis(60));
    }

    #[test]
    fn latches_decodes_speech_and_digits() {
        let t0 = crate::time::test_epoch();
        let (mut s, _) = session(t0);
        let from: SocketAddr = "10.1.1.1:7000".parse().expect("addr");
        let loud: Vec<u8> = (0..160)
            .map(|i| Codec::Pcmu.encode(((i as f64 * 0.5).sin() * 8000.0) as i16))
            .collect();
        let mut buf = [0u8; 256];
        for i in 0..3u16 {
            let len = RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(9)
                .sequence(Seq::from(i))
                .timestamp(160 * i as u32)
                .payload(&loud)
                .build_into(&mut buf)
                .expect("build");
            s.handle_rtp(t0, from, &buf[..len]);
        }
        assert_eq!(s.remote(), from);
        assert_eq!(s.poll_event(), Some(MediaEvent::Speech));
        let len = RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(9)
            .sequence(Seq::from(9))
            .timestamp(4000)
            .payload(&[7, 0x80, 0, 160])
            .build_into(&mut buf)
            .expect("build");
        s.handle_rtp(t0, from, &buf[..len]);
        s.handle_rtp(t0, from, &buf[..len]);
        assert_eq!(
            s.poll_event(),
            Some(MediaEvent::Digit {
                digit: '7',
                source: DigitSource::Rfc4733
            })
        );
        assert_eq!(s.poll_event(), None);
        s.handle_rtp(t0, from, b"junk");
        assert_eq!(s.stats().packets_invalid, 1);
    }

    #[test]
    fn inactivity_is_reported_once() {
        let t0 = crate::time::test_epoch();
        let (mut s, _) = session(t0);
        let deadline = t0 + Duration::from_secs(30);
        s.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(deadline);
        assert_eq!(s.poll_event(), Some(MediaEvent::Inactive));
        s.handle_timeout(deadline + Duration::from_secs(1));
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn bridged_legs_relay_and_transcode() {
        let t0 = crate::time::test_epoch();
        let (mut caller, _) = session(t0); // PCMU, telephone-event 101
        let (mut agent, _) = session(t0);
        agent.params.codec = Codec::Pcma;
        agent.params.telephone_event = Some(96);
        caller.set_bridged(t0, true);
        agent.set_bridged(t0, true);
        let mut out = [0u8; 256];
        assert_eq!(
            caller.poll_transmit(t0, &mut out),
            None,
            "no paced frames when bridged"
        );

        let from: SocketAddr = "10.0.0.9:4000".parse().expect("addr");
        let tone: Vec<u8> = (0..160)
            .map(|i| Codec::Pcmu.encode(((i as f64 * 0.3).sin() * 5000.0) as i16))
            .collect();
        let mut pkt = [0u8; 256];
        let len = RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(1)
            .sequence(Seq::from(1))
            .payload(&tone)
            .build_into(&mut pkt)
            .expect("build");
        caller.handle_rtp(t0, from, &pkt[..len]);
        let pcm = caller.last_audio().expect("decoded").to_vec();
        let tx = agent.relay_audio(&pcm, &mut out).expect("relayed");
        let r = RtpReader::new(&out[..tx.len]).expect("rtp");
        assert_eq!(r.payload_type(), 8, "transcoded to PCMA");
        assert_eq!(r.payload().len(), 160);
        assert!(r.mark(), "marker on the first relayed packet");
        let back: Vec<i16> = r.payload().iter().map(|&b| Codec::Pcma.decode(b)).collect();
        for (a, b) in pcm.iter().zip(&back) {
            assert!((a - b).abs() <= (a.abs() / 16).max(32), "{a} vs {b}");
        }

        // A telephone-event passes through with the agent's payload type and
        // one timestamp for all its packets.
        let mut stamps = Vec::new();
        for (i, end) in [(2u16, false), (3, true), (4, true)] {
            let len = RtpPacketBuilder::new()
                .payload_type(101)
                .ssrc(1)
                .sequence(Seq::from(i))
                .timestamp(9999)
                .payload(&[5, if end { 0x80 } else { 0 }, 0, 160])
                .build_into(&mut pkt)
                .expect("build");
            caller.handle_rtp(t0, from, &pkt[..len]);
            assert_eq!(caller.last_audio(), None);
            let (payload, ts) = caller.last_event().expect("event");
            let tx = agent.relay_event(payload, ts, &mut out).expect("relayed");
            let r = RtpReader::new(&out[..tx.len]).expect("rtp");
            assert_eq!(r.payload_type(), 96);
            assert_eq!(r.payload()[0], 5);
            stamps.push(r.timestamp());
        }
        assert!(stamps.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn a_30_ms_packet_is_relayed_whole() {
        let t0 = crate::time::test_epoch();
        let (mut caller, _) = session(t0);
        let (mut agent, _) = session(t0);
        caller.set_bridged(t0, true);
        agent.set_bridged(t0, true);
        let payload = [Codec::Pcmu.encode(3000); 240];
        let mut pkt = [0u8; 512];
        let len = RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(1)
            .payload(&payload)
            .build_into(&mut pkt)
            .expect("build");
        let from: SocketAddr = "10.0.0.9:4000".parse().expect("addr");
        caller.handle_rtp(t0, from, &pkt[..len]);
        assert_eq!(caller.last_audio().map(<[i16]>::len), Some(240));
        let mut out = [0u8; 1024];
        let first = agent
            .relay_audio(caller.last_audio().expect("audio"), &mut out)
            .expect("sent");
        let r = RtpReader::new(&out[..first.len]).expect("rtp");
        assert_eq!(r.payload().len(), 240);
        let ts = r.timestamp();
        caller.handle_rtp(t0, from, &pkt[..len]);
        let second = agent
            .relay_audio(caller.last_audio().expect("audio"), &mut out)
            .expect("sent");
        let r = RtpReader::new(&out[..second.len]).expect("rtp");
        assert_eq!(
            r.timestamp().wrapping_sub(ts),
            240,
            "timestamps follow the samples"
        );
    }
}
