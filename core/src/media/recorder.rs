//! The recording of a bridged call: one stereo stream at 8 kHz, the
//! customer on the left channel and whoever the customer talks to (an
//! agent, a transfer's target) on the right, cut into one-second chunks
//! that the shell appends to the call's WAV as the call goes.
//!
//! Each side's decoded audio waits in a small queue of 20 ms frames; every
//! 20 ms one frame of each side (or silence, when a side sent nothing) is
//! interleaved into the chunk, so the channels stay aligned in time
//! however the packets arrive. Every buffer is allocated when recording
//! starts: nothing per packet.

use std::time::{Duration, Instant};

use super::prompt::{FRAME, FRAME_SAMPLES};

/// Frames a side may run ahead (60 ms of jitter); older ones are dropped.
const QUEUED_FRAMES: usize = 3;
/// Samples per channel in one chunk: one second.
pub const CHUNK_FRAMES: usize = 50;
pub const CHUNK_SAMPLES: usize = CHUNK_FRAMES * FRAME_SAMPLES;

/// One side's frames waiting to be written.
struct FrameQueue {
    frames: [[i16; FRAME_SAMPLES]; QUEUED_FRAMES],
    /// Samples in the frame being filled (the last of `len`).
    partial: usize,
    /// Whole frames queued, oldest first.
    len: usize,
}

impl FrameQueue {
    fn new() -> FrameQueue {
        FrameQueue {
            frames: [[0; FRAME_SAMPLES]; QUEUED_FRAMES],
            partial: 0,
            len: 0,
        }
    }

    /// Appends decoded samples, dropping the oldest frame when full.
    fn push(&mut self, mut pcm: &[i16]) {
        while !pcm.is_empty() {
            if self.len == QUEUED_FRAMES {
                self.frames.rotate_left(1);
                self.len -= 1;
            }
            let frame = &mut self.frames[self.len];
            let n = (FRAME_SAMPLES - self.partial).min(pcm.len());
            frame[self.partial..self.partial + n].copy_from_slice(&pcm[..n]);
            self.partial += n;
            pcm = &pcm[n..];
            if self.partial == FRAME_SAMPLES {
                self.partial = 0;
                self.len += 1;
            }
        }
    }

    /// The oldest whole frame, or silence.
    fn pop(&mut self, out: &mut [i16; FRAME_SAMPLES]) {
        if self.len == 0 {
            *out = [0; FRAME_SAMPLES];
            return;
        }
        *out = self.frames[0];
        self.frames.rotate_left(1);
        self.len -= 1;
    }
}

pub struct Recorder {
    /// Relative to the recordings folder.
    pub file: String,
    left: FrameQueue,
    right: FrameQueue,
    /// Interleaved samples of the chunk being filled (L R L R ...).
    chunk: Box<[i16; CHUNK_SAMPLES * 2]>,
    filled: usize,
    next_tick: Instant,
    /// A chunk is full and waits for the shell.
    ready: bool,
}

impl Recorder {
    pub fn new(now: Instant, file: String) -> Recorder {
        Recorder {
            file,
            left: FrameQueue::new(),
            right: FrameQueue::new(),
            chunk: Box::new([0; CHUNK_SAMPLES * 2]),
            filled: 0,
            next_tick: now + FRAME,
            ready: false,
        }
    }

    /// Audio the customer sent (left) or the other party sent (right).
    pub fn feed(&mut self, left: bool, pcm: &[i16]) {
        if left {
            self.left.push(pcm);
        } else {
            self.right.push(pcm);
        }
    }

    /// Writes a frame per side for every 20 ms tick due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // After a long stall, catch up at most one second's ticks.
        if now > self.next_tick + Duration::from_secs(1) {
            self.next_tick = now - Duration::from_secs(1);
        }
        while now >= self.next_tick && !self.ready {
            let (mut l, mut r) = ([0; FRAME_SAMPLES], [0; FRAME_SAMPLES]);
            self.left.pop(&mut l);
            self.right.pop(&mut r);
            let at = self.filled * 2;
            for (i, (a, b)) in l.iter().zip(r.iter()).enumerate() {
                self.chunk[at + 2 * i] = *a;
                self.chunk[at + 2 * i + 1] = *b;
            }
            self.filled += FRAME_SAMPLES;
            self.next_tick += FRAME;
            if self.filled == CHUNK_SAMPLES {
                self.ready = true;
            }
        }
    }

    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Whether a full chunk waits.
    pub fn has_chunk(&self) -> bool {
        self.ready
    }

    /// A full chunk to append (interleaved stereo), taken once.
    pub fn take_chunk(&mut self) -> Option<&[i16]> {
        if !self.ready {
            return None;
        }
        self.ready = false;
        let n = self.filled * 2;
        self.filled = 0;
        Some(&self.chunk[..n])
    }

    /// The rest, when the recording ends.
    pub fn take_rest(&mut self) -> &[i16] {
        let n = self.filled * 2;
        self.filled = 0;
        self.ready = false;
        &self.chunk[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_lands_in_its_channel_aligned_in_time() {
        let t0 = crate::time::test_epoch();
        let mut r = Recorder::new(t0, "x.wav".into());
        let mut now = t0;
        let mut chunks = Vec::new();
        for i in 0..CHUNK_FRAMES {
            // The customer talks in the first half second, the agent in
            // the second; packets of 20 ms, the agent's a little late.
            if i < CHUNK_FRAMES / 2 {
                r.feed(true, &[1000; FRAME_SAMPLES]);
            } else {
                r.feed(false, &[-2000; FRAME_SAMPLES]);
            }
            now += FRAME;
            r.handle_timeout(now);
            if let Some(c) = r.take_chunk() {
                chunks.push(c.to_vec());
            }
        }
        assert_eq!(chunks.len(), 1);
        let c = &chunks[0];
        assert_eq!(c.len(), CHUNK_SAMPLES * 2);
        let half = CHUNK_SAMPLES; // interleaved: first half second
        assert!(c[..half].chunks(2).all(|lr| lr == [1000, 0]));
        assert!(c[half..].chunks(2).all(|lr| lr == [0, -2000]));
    }

    #[test]
    fn a_side_running_ahead_keeps_its_last_frames_and_silence_fills_gaps() {
        let t0 = crate::time::test_epoch();
        let mut r = Recorder::new(t0, "x.wav".into());
        // 5 frames at once: only the newest 3 are kept (60 ms of jitter).
        for v in 1..=5 {
            r.feed(true, &[v; FRAME_SAMPLES]);
        }
        r.handle_timeout(t0 + FRAME * 5);
        let rest = r.take_rest().to_vec();
        let left: Vec<i16> = rest
            .chunks(2)
            .step_by(FRAME_SAMPLES)
            .map(|lr| lr[0])
            .collect();
        assert_eq!(left, [3, 4, 5, 0, 0]);
        // A 30 ms packet is split across frames.
        r.feed(false, &[7; 240]);
        r.feed(false, &[8; 80]);
        r.handle_timeout(t0 + FRAME * 7);
        let rest = r.take_rest().to_vec();
        let right: Vec<i16> = rest.chunks(2).map(|lr| lr[1]).collect();
        assert_eq!(&right[..240], &[7; 240][..]);
        assert_eq!(&right[240..], &[8; 80][..]);
    }
}
