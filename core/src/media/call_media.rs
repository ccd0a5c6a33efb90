//! One call's media, as a pure machine: the RTP session of each of its legs
//! (the customer's, an agent's, any other), the bridge that relays audio
//! between two of them, and the life of recordings. The engine decides
//! everything with [`MediaCommand`]s; whoever owns the sockets (the
//! shell's media workers, or a test) only feeds packets in and takes
//! packets, events and finished recordings out:
//!
//! 1. [`CallMedia::handle_command`] for each command the engine sends; it
//!    says when a leg's socket must be opened or closed ([`SocketChange`]);
//! 2. [`CallMedia::handle_rtp`] for each datagram on a leg's socket;
//! 3. [`CallMedia::poll_transmit`] until `None`: packets to send, each
//!    with the slot of the socket it leaves from;
//! 4. [`CallMedia::handle_timeout`] at [`CallMedia::poll_timeout`], then
//!    [`CallMedia::poll_event`] and [`CallMedia::poll_recording`].
//!
//! Nothing here allocates per packet.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ids::LegKey;

use super::prompt::{PromptId, PromptSet};
use super::recorder::Recorder;
use super::session::{MediaEvent, MediaParams, MediaSession, MediaStats, RecordingEnd, Transmit};

/// Legs one call can have at once: the customer, an agent, and two more
/// (a consultation or transfer target, a supervisor).
pub const MAX_LEGS: usize = 4;

/// What the engine asks of a call's media.
#[derive(Debug, Clone)]
pub enum MediaCommand {
    /// Open the leg's RTP socket on `port` and start its session.
    OpenLeg {
        leg: LegKey,
        port: u16,
        params: MediaParams,
        prompts: Arc<PromptSet>,
    },
    /// Close the leg's socket; the call's other legs go on.
    CloseLeg {
        leg: LegKey,
    },
    /// Play a prompt to one leg; its end is reported with `token`.
    Play {
        leg: LegKey,
        prompt: PromptId,
        token: u32,
    },
    StopPlayback {
        leg: LegKey,
    },
    /// Record what the leg says into `file` (relative to the messages
    /// folder), ending on silence, at `max_length`, or when stopped.
    Record {
        leg: LegKey,
        file: String,
        max_length: Duration,
        end_silence: Duration,
    },
    /// End the recording; with `keep: false` what was recorded is dropped
    /// (a message too short to keep) and no [`Recorded`] comes of it.
    StopRecording {
        leg: LegKey,
        keep: bool,
    },
    /// Relay audio and telephone-events between two legs, both ways.
    Bridge {
        a: LegKey,
        b: LegKey,
    },
    /// Undo the bridge: both legs go back to prompts and silence.
    Unbridge,
    /// A re-INVITE moved the leg's peer or put it on hold.
    Update {
        leg: LegKey,
        remote: SocketAddr,
        sending: bool,
    },
    /// Record the call from now on: `customer`'s audio on the left, every
    /// other leg's on the right, in one-second chunks for `file`.
    RecordCall {
        customer: LegKey,
        file: String,
    },
    /// Stop recording the call (the rest of the file is handed over).
    StopRecordingCall,
}

impl MediaCommand {
    /// The leg a command is about, when it is about one.
    pub fn leg(&self) -> Option<LegKey> {
        match self {
            MediaCommand::OpenLeg { leg, .. }
            | MediaCommand::CloseLeg { leg }
            | MediaCommand::Play { leg, .. }
            | MediaCommand::StopPlayback { leg }
            | MediaCommand::Record { leg, .. }
            | MediaCommand::StopRecording { leg, .. }
            | MediaCommand::Update { leg, .. } => Some(*leg),
            MediaCommand::Bridge { .. }
            | MediaCommand::Unbridge
            | MediaCommand::RecordCall { .. }
            | MediaCommand::StopRecordingCall => None,
        }
    }
}

/// What the socket owner must do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketChange {
    /// The leg now lives in `slot`: its socket (bound to `port`) is read
    /// into [`CallMedia::handle_rtp`] with this slot.
    Open { slot: usize, port: u16 },
    /// The leg in `slot` is gone: close its socket.
    Close { slot: usize },
}

/// A piece of a call's recording, for the shell to append to its WAV.
#[derive(Debug)]
pub struct RecordChunk {
    /// Relative to the recordings folder.
    pub file: String,
    /// Interleaved stereo (customer left), 8 kHz.
    pub samples: Vec<i16>,
    /// The recording ends with this chunk.
    pub last: bool,
}

/// A finished recording, for the shell to write to disk.
#[derive(Debug)]
pub struct Recorded {
    pub leg: LegKey,
    /// Relative to the messages folder, as the engine named it.
    pub file: String,
    /// 8 kHz mono.
    pub samples: Vec<i16>,
    pub end: RecordingEnd,
}

struct LegMedia {
    leg: LegKey,
    session: MediaSession,
    recording_file: Option<String>,
}

pub struct CallMedia {
    prompts: Arc<PromptSet>,
    /// Boxed: a session is kilobytes, and most calls use one or two of
    /// the slots (inline, every call paid for four).
    legs: [Option<Box<LegMedia>>; MAX_LEGS],
    bridge: Option<(usize, usize)>,
    /// A packet `handle_rtp` took that the bridge must pass on: from, to.
    relay: Option<(usize, usize)>,
    events: VecDeque<(LegKey, MediaEvent)>,
    recordings: VecDeque<Recorded>,
    /// The call's own recording, and the slot of the customer's leg.
    recorder: Option<(Recorder, LegKey)>,
    chunks: VecDeque<RecordChunk>,
}

impl CallMedia {
    pub fn new(prompts: Arc<PromptSet>) -> Self {
        CallMedia {
            prompts,
            legs: Default::default(),
            bridge: None,
            relay: None,
            events: VecDeque::with_capacity(8),
            recordings: VecDeque::new(),
            recorder: None,
            chunks: VecDeque::new(),
        }
    }

    /// The slot a leg lives in.
    pub fn slot_of(&self, leg: LegKey) -> Option<usize> {
        self.legs
            .iter()
            .position(|l| l.as_ref().is_some_and(|l| l.leg == leg))
    }

    /// The leg in a slot.
    pub fn leg_in(&self, slot: usize) -> Option<LegKey> {
        self.legs.get(slot)?.as_ref().map(|l| l.leg)
    }

    /// Whether any leg is open.
    pub fn is_empty(&self) -> bool {
        self.legs.iter().all(Option::is_none)
    }

    /// The prompts this call plays from.
    pub fn prompts(&self) -> &Arc<PromptSet> {
        &self.prompts
    }

    /// Counters of each open leg, by slot.
    pub fn stats(&self) -> impl Iterator<Item = (usize, &MediaStats)> {
        self.legs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, l.as_ref()?.session.stats())))
    }

    /// Applies one of the engine's commands at `now` (for an open, the
    /// moment the leg's first frame is due).
    pub fn handle_command(&mut self, now: Instant, command: MediaCommand) -> Option<SocketChange> {
        match command {
            MediaCommand::OpenLeg {
                leg, port, params, ..
            } => {
                if self.slot_of(leg).is_some() {
                    return None;
                }
                let slot = self.legs.iter().position(Option::is_none)?;
                self.legs[slot] = Some(Box::new(LegMedia {
                    leg,
                    session: MediaSession::new(now, self.prompts.clone(), params),
                    recording_file: None,
                }));
                return Some(SocketChange::Open { slot, port });
            }
            MediaCommand::CloseLeg { leg } => {
                let slot = self.slot_of(leg)?;
                if self.bridge.is_some_and(|(a, b)| a == slot || b == slot) {
                    self.unbridge(now);
                }
                if let Some(mut l) = self.legs[slot].take() {
                    l.session.stop_recording(RecordingEnd::Hangup);
                    self.take_recording(&mut l);
                }
                return Some(SocketChange::Close { slot });
            }
            MediaCommand::Bridge { a, b } => {
                if let (Some(a), Some(b)) = (self.slot_of(a), self.slot_of(b)) {
                    self.unbridge(now);
                    self.bridge = Some((a, b));
                    for s in [a, b] {
                        if let Some(l) = self.legs[s].as_mut() {
                            l.session.set_bridged(now, true);
                        }
                    }
                }
            }
            MediaCommand::Unbridge => self.unbridge(now),
            MediaCommand::RecordCall { customer, file } => {
                self.end_call_recording();
                self.recorder = Some((Recorder::new(now, file), customer));
            }
            MediaCommand::StopRecordingCall => self.end_call_recording(),
            command => {
                let slot = command.leg().and_then(|leg| self.slot_of(leg))?;
                let l = self.legs[slot].as_mut()?;
                match command {
                    MediaCommand::Play { prompt, token, .. } => l.session.play(prompt, token),
                    MediaCommand::StopPlayback { .. } => l.session.stop(),
                    MediaCommand::Record {
                        file,
                        max_length,
                        end_silence,
                        ..
                    } => {
                        l.recording_file = Some(file);
                        l.session.start_recording(now, max_length, end_silence);
                    }
                    MediaCommand::StopRecording { keep, .. } => {
                        l.session.stop_recording(RecordingEnd::Pound);
                        if !keep {
                            l.session.take_recording();
                            l.recording_file = None;
                        }
                    }
                    MediaCommand::Update {
                        remote, sending, ..
                    } => l.session.update_remote(remote, sending),
                    _ => {}
                }
            }
        }
        self.collect(now);
        None
    }

    fn unbridge(&mut self, now: Instant) {
        if let Some((a, b)) = self.bridge.take() {
            for s in [a, b] {
                if let Some(l) = self.legs[s].as_mut() {
                    l.session.set_bridged(now, false);
                }
            }
        }
        self.relay = None;
    }

    /// Feeds one datagram received on the socket of `slot`.
    pub fn handle_rtp(&mut self, now: Instant, slot: usize, from: SocketAddr, packet: &[u8]) {
        let Some(l) = self.legs.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        l.session.handle_rtp(now, from, packet);
        if let (Some((recorder, customer)), Some(pcm)) =
            (self.recorder.as_mut(), l.session.last_audio())
        {
            recorder.feed(l.leg == *customer, pcm);
        }
        self.relay = match self.bridge {
            Some((a, b)) if a == slot => Some((a, b)),
            Some((a, b)) if b == slot => Some((b, a)),
            _ => None,
        };
        self.collect(now);
    }

    /// Writes the next packet to send into `buf` (at least 12 + 480
    /// bytes): first what the bridge relays, then each leg's paced frame
    /// that is due. Returns the slot whose socket sends it.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, Transmit)> {
        if let Some((from, to)) = self.relay.take() {
            if let [Some(a), Some(b)] = pick_two(&mut self.legs, from, to) {
                let sent = match (a.session.last_audio(), a.session.last_event()) {
                    (Some(pcm), _) => b.session.relay_audio(pcm, buf),
                    (None, Some((payload, ts))) => b.session.relay_event(payload, ts, buf),
                    (None, None) => None,
                };
                if let Some(t) = sent {
                    return Some((to, t));
                }
            }
        }
        for (slot, l) in self.legs.iter_mut().enumerate() {
            if let Some(l) = l {
                if let Some(t) = l.session.poll_transmit(now, buf) {
                    return Some((slot, t));
                }
            }
        }
        self.collect(now);
        None
    }

    /// Runs the legs' inactivity and recording timers, and the call
    /// recording's 20 ms ticks.
    pub fn handle_timeout(&mut self, now: Instant) {
        for l in self.legs.iter_mut().flatten() {
            l.session.handle_timeout(now);
        }
        if let Some((recorder, _)) = self.recorder.as_mut() {
            recorder.handle_timeout(now);
            // Once a second: the chunk's copy is the only allocation.
            if recorder.has_chunk() {
                let file = recorder.file.clone();
                if let Some(samples) = recorder.take_chunk() {
                    self.chunks.push_back(RecordChunk {
                        file,
                        samples: samples.to_vec(),
                        last: false,
                    });
                }
            }
        }
        self.collect(now);
    }

    /// The next piece of the call's recording to append.
    pub fn poll_record_chunk(&mut self) -> Option<RecordChunk> {
        self.chunks.pop_front()
    }

    /// Ends the call recording: what is left goes out as the last chunk.
    fn end_call_recording(&mut self) {
        if let Some((mut recorder, _)) = self.recorder.take() {
            let file = recorder.file.clone();
            let samples = recorder.take_rest().to_vec();
            self.chunks.push_back(RecordChunk {
                file,
                samples,
                last: true,
            });
        }
    }

    /// What happened, and on which leg.
    pub fn poll_event(&mut self) -> Option<(LegKey, MediaEvent)> {
        self.events.pop_front()
    }

    /// A recording that has ended, for the shell to write.
    pub fn poll_recording(&mut self) -> Option<Recorded> {
        self.recordings.pop_front()
    }

    /// The earliest moment any leg needs serving.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs
            .iter()
            .flatten()
            .map(|l| l.session.poll_timeout())
            .chain(self.recorder.as_ref().map(|(r, _)| r.poll_timeout()))
            .min()
    }

    /// The call is over: every leg closes, and a message being left is
    /// kept (its recording ends as a hang-up).
    pub fn close(&mut self, now: Instant) {
        self.unbridge(now);
        self.end_call_recording();
        for slot in 0..MAX_LEGS {
            if let Some(mut l) = self.legs[slot].take() {
                l.session.stop_recording(RecordingEnd::Hangup);
                self.take_recording(&mut l);
                self.legs[slot] = Some(l);
            }
        }
        self.collect(now);
    }

    /// Moves the legs' events here, tagged with their leg, and takes the
    /// recordings that ended.
    fn collect(&mut self, _now: Instant) {
        for slot in 0..MAX_LEGS {
            let Some(mut l) = self.legs[slot].take() else {
                continue;
            };
            while let Some(event) = l.session.poll_event() {
                self.events.push_back((l.leg, event));
            }
            self.take_recording(&mut l);
            self.legs[slot] = Some(l);
        }
    }

    fn take_recording(&mut self, l: &mut LegMedia) {
        if let Some((samples, end)) = l.session.take_recording() {
            let file = l.recording_file.take().unwrap_or_default();
            self.recordings.push_back(Recorded {
                leg: l.leg,
                file,
                samples,
                end,
            });
        }
    }
}

/// Two distinct legs, mutably.
fn pick_two(
    legs: &mut [Option<Box<LegMedia>>; MAX_LEGS],
    a: usize,
    b: usize,
) -> [Option<&mut LegMedia>; 2] {
    if a == b || a >= MAX_LEGS || b >= MAX_LEGS {
        return [None, None];
    }
    let (lo, hi) = (a.min(b), a.max(b));
    let (left, right) = legs.split_at_mut(hi);
    let (x, y) = (left[lo].as_deref_mut(), right[0].as_deref_mut());
    if a < b {
        [x, y]
    } else {
        [y, x]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Codec;
    use crate::media::prompt::Prompt;
    use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

    fn params(remote: &str, codec: Codec) -> MediaParams {
        MediaParams {
            codec,
            telephone_event: Some(101),
            remote: remote.parse().expect("addr"),
            ssrc: 1,
            initial_seq: 1,
            initial_timestamp: 0,
            inactivity_timeout: Duration::from_secs(60),
            speech_threshold_dbfs: -35.0,
            speech_frames: 6,
            inband_dtmf: false,
        }
    }

    fn open(media: &mut CallMedia, now: Instant, leg: u64, remote: &str, codec: Codec) -> usize {
        let change = media.handle_command(
            now,
            MediaCommand::OpenLeg {
                leg: LegKey(leg),
                port: 20000 + leg as u16 * 2,
                params: params(remote, codec),
                prompts: media.prompts().clone(),
            },
        );
        match change {
            Some(SocketChange::Open { slot, port }) => {
                assert_eq!(port, 20000 + leg as u16 * 2);
                slot
            }
            other => panic!("{other:?}"),
        }
    }

    fn packet(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 600];
        let n = RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(9)
            .sequence(Seq::from(1))
            .timestamp(0)
            .payload(payload)
            .build_into(&mut buf)
            .expect("rtp");
        buf[..n].to_vec()
    }

    fn set() -> Arc<PromptSet> {
        let mut set = PromptSet::default();
        set.insert(Prompt::from_samples("hello", &[1000; 800]));
        Arc::new(set)
    }

    #[test]
    fn legs_open_in_slots_and_close_their_sockets() {
        let t0 = crate::time::test_epoch();
        let mut m = CallMedia::new(set());
        let a = open(&mut m, t0, 1, "127.0.0.1:6000", Codec::Pcmu);
        let b = open(&mut m, t0, 2, "127.0.0.1:7000", Codec::Pcma);
        assert_ne!(a, b);
        assert_eq!(m.leg_in(b), Some(LegKey(2)));
        assert_eq!(
            m.handle_command(t0, MediaCommand::CloseLeg { leg: LegKey(2) }),
            Some(SocketChange::Close { slot: b })
        );
        assert_eq!(m.slot_of(LegKey(2)), None);
        // Opening the same leg twice opens nothing.
        assert_eq!(
            m.handle_command(
                t0,
                MediaCommand::OpenLeg {
                    leg: LegKey(1),
                    port: 1,
                    params: params("127.0.0.1:6000", Codec::Pcmu),
                    prompts: set(),
                }
            ),
            None
        );
    }

    #[test]
    fn a_bridge_relays_audio_both_ways_transcoding_and_stops_prompts() {
        let t0 = crate::time::test_epoch();
        let mut m = CallMedia::new(set());
        let caller = open(&mut m, t0, 1, "127.0.0.1:6000", Codec::Pcmu);
        let agent = open(&mut m, t0, 2, "127.0.0.1:7000", Codec::Pcma);
        m.handle_command(
            t0,
            MediaCommand::Play {
                leg: LegKey(1),
                prompt: PromptId(0),
                token: 1,
            },
        );
        let mut buf = [0u8; 600];
        assert!(matches!(m.poll_transmit(t0, &mut buf), Some((s, _)) if s == caller));
        m.handle_command(
            t0,
            MediaCommand::Bridge {
                a: LegKey(1),
                b: LegKey(2),
            },
        );
        let t1 = t0 + Duration::from_millis(20);
        // Bridged legs send only what the other side says.
        assert!(m.poll_transmit(t1, &mut buf).is_none());
        let pcmu = [Codec::Pcmu.encode(4000); 160];
        m.handle_rtp(
            t1,
            caller,
            "127.0.0.1:6000".parse().expect("a"),
            &packet(0, &pcmu),
        );
        let (slot, t) = m.poll_transmit(t1, &mut buf).expect("relayed");
        assert_eq!(slot, agent);
        assert_eq!(t.destination, "127.0.0.1:7000".parse().expect("a"));
        let rtp = RtpReader::new(&buf[..t.len]).expect("rtp");
        assert_eq!(rtp.payload_type(), 8, "transcoded to the agent's PCMA");
        let pcma = [Codec::Pcma.encode(-2000); 160];
        m.handle_rtp(
            t1,
            agent,
            "127.0.0.1:7000".parse().expect("a"),
            &packet(8, &pcma),
        );
        let (slot, t) = m.poll_transmit(t1, &mut buf).expect("relayed back");
        assert_eq!(slot, caller);
        assert_eq!(
            RtpReader::new(&buf[..t.len]).expect("rtp").payload_type(),
            0
        );
        // Closing one leg undoes the bridge: the other is paced again.
        m.handle_command(t1, MediaCommand::CloseLeg { leg: LegKey(2) });
        let t2 = t1 + Duration::from_millis(20);
        assert!(matches!(m.poll_transmit(t2, &mut buf), Some((s, _)) if s == caller));
    }

    #[test]
    fn events_carry_their_leg_and_recordings_end_on_close() {
        let t0 = crate::time::test_epoch();
        let mut m = CallMedia::new(set());
        let caller = open(&mut m, t0, 1, "127.0.0.1:6000", Codec::Pcmu);
        m.handle_command(
            t0,
            MediaCommand::Record {
                leg: LegKey(1),
                file: "2026-12-06/msg.wav".into(),
                max_length: Duration::from_secs(60),
                end_silence: Duration::from_secs(5),
            },
        );
        let loud = [Codec::Pcmu.encode(8000); 160];
        let from = "127.0.0.1:6000".parse().expect("a");
        for i in 0..10u32 {
            m.handle_rtp(
                t0 + Duration::from_millis(20 * u64::from(i)),
                caller,
                from,
                &packet(0, &loud),
            );
        }
        let t1 = t0 + Duration::from_millis(200);
        m.handle_timeout(t1);
        assert_eq!(m.poll_event(), Some((LegKey(1), MediaEvent::Speech)));
        m.close(t1);
        assert_eq!(
            m.poll_event(),
            Some((
                LegKey(1),
                MediaEvent::RecordingFinished(RecordingEnd::Hangup)
            ))
        );
        let r = m.poll_recording().expect("kept");
        assert_eq!((r.leg, r.file.as_str()), (LegKey(1), "2026-12-06/msg.wav"));
        assert_eq!(r.samples.len(), 1600);
        assert_eq!(r.end, RecordingEnd::Hangup);
    }
}
