//! One datagram into a fresh engine (the embedded config): parsing, the
//! checks, and whatever the engine does with it, then 40 s of its timers.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hotline::config::Config;
use hotline::engine::{Engine, EngineSettings, Input, Peer, Transport};
use hotline::setup::Setup;
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let mut config = Config::embedded();
        // A small port range keeps each fresh engine cheap to build.
        config.media.port_max = toml::Spanned::new(20..25, 20_009);
        hotline::shell::load::setup(config, "fuzz config").expect("embedded config loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let now = Instant::now();
    let mut engine = Engine::new(
        EngineSettings::from_config(&setup.config),
        setup.prompts.clone(),
        setup.program.clone(),
        setup.directory.clone(),
        now,
        1_795_600_800_000,
        7,
    );
    let peer = Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], 5070)),
        conn: 0,
    };
    engine.handle_input(now, Input::Sip { peer, data });
    while engine.poll_output().is_some() {}
    // Run the timers the datagram set (ringing, answer, retransmissions).
    let end = now + Duration::from_secs(40);
    while let Some(at) = engine.poll_timeout().filter(|at| *at <= end) {
        engine.handle_timeout(at);
        while engine.poll_output().is_some() {}
    }
});
