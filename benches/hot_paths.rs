//! Hot-path micro-benchmarks: SIP parsing and answering, RTP send and
//! receive, a campaign's scheduler per call. `cargo bench --bench
//! hot_paths`; figures go to BENCHMARKS.md.
//! Plain timing loops (best of several runs), no harness.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::campaign::scheduler::{Decision, Scheduler};
use hotline::campaign::{AttemptResult, Campaign, CampaignId, CampaignSpec};
use hotline::media::g711::Codec;
use hotline::media::prompt::{Prompt, PromptSet};
use hotline::media::session::{MediaParams, MediaSession};
use hotline::sip::{build, message};
use rtp_rs::{RtpPacketBuilder, Seq};

const INVITE_HEAD: &str = "INVITE sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-524287-1---;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:13800138000@127.0.0.1:5070>\r\n\
To: <sip:4008@127.0.0.1:5060>\r\n\
From: \"Li Lei\" <sip:13800138000@127.0.0.1:5070>;tag=8f2d6c1a\r\n\
Call-ID: 6b7c2d8e-1f3a-4b5c-9d0e-1a2b3c4d5e6f\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n\
Content-Type: application/sdp\r\n\
User-Agent: bench\r\n";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// Runs `f` `iters` times, five rounds, and prints the best ns per call.
fn bench(name: &str, iters: u32, mut f: impl FnMut()) {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(start.elapsed());
    }
    let ns = best.as_nanos() as f64 / iters as f64;
    println!("{name:<40} {ns:>10.0} ns/op  {:>12.0} ops/s", 1e9 / ns);
}

fn main() {
    let invite = format!("{INVITE_HEAD}Content-Length: {}\r\n\r\n{SDP}", SDP.len());
    let source = "127.0.0.1:5070".parse().expect("addr");
    bench("sip: parse INVITE", 20_000, || {
        black_box(message::parse(black_box(invite.as_bytes())).ok());
    });
    let Ok(message::SipMessage::Request(req)) = message::parse(invite.as_bytes()) else {
        panic!("bench INVITE must parse");
    };
    bench("sip: build 180 Ringing", 20_000, || {
        black_box(build::response(
            &req,
            source,
            180,
            "Ringing",
            Some("abc"),
            &[],
            None,
        ));
    });

    let mut set = PromptSet::default();
    let samples: Vec<i16> = (0..80_000)
        .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
        .collect();
    let id = set.insert(Prompt::from_samples("p", &samples));
    let t0 = Instant::now();
    let mut session = MediaSession::new(
        t0,
        Arc::new(set),
        MediaParams {
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            remote: source,
            ssrc: 7,
            initial_seq: 0,
            initial_timestamp: 0,
            inactivity_timeout: Duration::from_secs(3600),
            speech_threshold_dbfs: -35.0,
            speech_frames: 6,
            inband_dtmf: true,
        },
    );
    session.play(id, 0);
    let mut buf = [0u8; 512];
    let mut now = t0;
    let mut frame = 0u32;
    bench("rtp: poll_transmit one 20 ms frame", 200_000, || {
        now += Duration::from_millis(20);
        frame += 1;
        if frame.is_multiple_of(400) {
            session.play(id, frame);
        }
        black_box(session.poll_transmit(now, &mut buf));
    });
    let payload = [0x7fu8; 160];
    let mut packet = [0u8; 256];
    let len = RtpPacketBuilder::new()
        .payload_type(0)
        .ssrc(9)
        .sequence(Seq::from(1))
        .payload(&payload)
        .build_into(&mut packet)
        .expect("build");
    bench(
        "rtp: handle_rtp (decode, speech, inband DTMF)",
        200_000,
        || {
            session.handle_rtp(now, source, black_box(&packet[..len]));
            while session.poll_event().is_some() {}
        },
    );

    for n in [10_000, 100_000] {
        let best = (0..3).map(|_| campaign_run(n)).min().unwrap_or_default();
        let ns = best.as_nanos() as f64 / n as f64;
        println!(
            "{:<40} {ns:>10.0} ns/op  {:>12.0} ops/s",
            format!("campaign: dial + end, {n} numbers"),
            1e9 / ns
        );
    }
}

/// The scheduler's work per call over a whole campaign of `n` numbers, as
/// the engine drives it: 200 calls on the line, each ending heard (final),
/// another dialled in its place, and the next wake-up asked for.
fn campaign_run(n: usize) -> Duration {
    let numbers: Vec<String> = (0..n).map(|i| format!("138{i:08}")).collect();
    let json = serde_json::json!({"name": "bench", "trunk": "t", "prompt": "p",
        "numbers": numbers, "first_after": "0s"});
    let spec = CampaignSpec::parse(&json, None, 0).expect("spec");
    let mut s = Scheduler::default();
    s.add(Campaign::new(CampaignId(1), spec, 0), 0);
    let start = Instant::now();
    let mut on_line = VecDeque::new();
    loop {
        while on_line.len() < 200 {
            match s.poll(1, |_| true) {
                Some(Decision::Dial { target, .. }) => on_line.push_back(target),
                _ => break,
            }
        }
        let Some(t) = on_line.pop_front() else { break };
        black_box(s.attempt_ended(CampaignId(1), t, AttemptResult::Heard, 200, None, 2));
        black_box(s.next_due());
    }
    start.elapsed()
}
