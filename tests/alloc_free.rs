//! The RTP hot path allocates nothing per packet: checked with a counting
//! global allocator around thousands of sends and receives, with speech
//! detection, inband DTMF detection and a message recording running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::media::g711::Codec;
use hotline::media::prompt::{Prompt, PromptSet};
use hotline::media::session::{MediaParams, MediaSession};
use rtp_rs::{RtpPacketBuilder, Seq};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn sending_and_receiving_rtp_allocates_nothing() {
    let mut set = PromptSet::default();
    let samples: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 0.2).sin() * 9000.0) as i16)
        .collect();
    let id = set.insert(Prompt::from_samples("tone", &samples));
    let t0 = Instant::now();
    let mut session = MediaSession::new(
        t0,
        Arc::new(set),
        MediaParams {
            codec: Codec::Pcma,
            telephone_event: Some(101),
            remote: "127.0.0.1:6000".parse().expect("addr"),
            ssrc: 1,
            initial_seq: 0,
            initial_timestamp: 0,
            inactivity_timeout: Duration::from_secs(30),
            speech_threshold_dbfs: -40.0,
            speech_frames: 5,
            inband_dtmf: true,
        },
    );
    // A recording allocates its whole buffer once, when it starts.
    session.start_recording(t0, Duration::from_secs(120), Duration::from_secs(60));
    let from = "127.0.0.1:6000".parse().expect("addr");
    let payload: Vec<u8> = samples[..160]
        .iter()
        .map(|&s| Codec::Pcma.encode(s))
        .collect();
    let mut incoming = [0u8; 512];
    let mut out = [0u8; 512];
    let dtmf_len = RtpPacketBuilder::new()
        .payload_type(101)
        .sequence(Seq::from(1))
        .payload(&[5, 0x80, 0, 160])
        .build_into(&mut incoming[256..])
        .expect("build");

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut now = t0;
    let mut sent = 0;
    for i in 0..5000u32 {
        if i % 50 == 0 {
            session.play(id, i);
        }
        while let Some(t) = session.poll_transmit(now, &mut out) {
            sent += t.len;
        }
        let len = RtpPacketBuilder::new()
            .payload_type(8)
            .sequence(Seq::from(i as u16))
            .timestamp(i * 160)
            .payload(&payload)
            .build_into(&mut incoming[..256])
            .expect("build");
        session.handle_rtp(now, from, &incoming[..len]);
        if i % 100 == 0 {
            session.handle_rtp(now, from, &incoming[256..256 + dtmf_len]);
        }
        session.handle_timeout(now);
        while session.poll_event().is_some() {}
        now += Duration::from_millis(20);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(sent > 5000 * 160, "packets were sent");
    assert_eq!(session.stats().packets_received, 5050);
    assert_eq!(allocations, 0, "allocations on the RTP path");
}
