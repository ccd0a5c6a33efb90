//! RTP datagrams into a media session that is playing a prompt. The input
//! is a series of packets, each prefixed with its length (one byte), 20 ms
//! apart, so sequences (DTMF events, resyncs) can be found.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hotline::config::{Config, Language};
use hotline::media::g711::Codec;
use hotline::media::session::{MediaParams, MediaSession};
use hotline::setup::Setup;
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| hotline::shell::load::setup(Config::embedded(), "fuzz config").expect("config loads"))
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let mut now = Instant::now();
    let from = SocketAddr::from(([127, 0, 0, 1], 6000));
    let params = MediaParams {
        codec: Codec::Pcmu,
        telephone_event: Some(101),
        remote: from,
        ssrc: 1,
        initial_seq: 1,
        initial_timestamp: 0,
        inactivity_timeout: Duration::from_secs(60),
        speech_threshold_dbfs: -35.0,
        speech_frames: 6,
        inband_dtmf: true,
    };
    let mut session = MediaSession::new(now, setup.prompts.set.clone(), params);
    let greeting = setup
        .prompts
        .get(Language::Zh, "greeting")
        .expect("the built-in greeting");
    session.play(greeting, 1);
    let mut out = [0u8; 1500];
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        session.handle_rtp(now, from, packet);
        session.handle_timeout(now);
        while session.poll_transmit(now, &mut out).is_some() {}
        while session.poll_event().is_some() {}
        now += Duration::from_millis(20);
    }
});
