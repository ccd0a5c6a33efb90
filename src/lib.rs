//! # hotline
//!
//! A telephony IVR and ACD engine that talks SIP, in two crates:
//!
//! - **`hotline-core`** (`core/`, re-exported here): everything that
//!   decides, as pure state machines that take `now` with every input and
//!   never read a clock, open a file or a socket, or spawn a thread (the
//!   crate has no tokio, and its `clippy.toml` forbids the std calls).
//! - **this crate**: the [`shell`] that does the I/O, the offline
//!   [`tools`] (the SLA report and the staffing plan), and the CLI.
//!
//! ## The loop
//!
//! 1. [`engine::Engine::handle_input`] takes an [`io::Input`] with `now`:
//!    a SIP datagram (or framed TCP message), a media event from a leg, a
//!    saved recording, a reloaded directory or config.
//! 2. [`engine::Engine::poll_output`] hands back [`io::Output`]s until
//!    `None`: SIP to send, commands for a call's media, lines for the
//!    record streams, and each finished call's record with the messages
//!    that must wait until it is durable.
//! 3. [`engine::Engine::poll_timeout`] says when to call
//!    [`engine::Engine::handle_timeout`] next. Every timer is one entry in
//!    one table, keyed by why it exists ([`wire::Wake`]).
//!
//! Inside the engine, a [`call::Call`] owns its [`leg::Leg`]s: SIP dialogs
//! in either direction (the caller's is a UAS leg; an agent's phone, or
//! any number through a trunk, a UAC leg). Placing a leg to a URI,
//! bridging two legs and replacing one leg by another are engine
//! operations (`engine/flow.rs`); an outbound call is a call whose first
//! leg is placed, a transfer replaces a leg, and the recording of a bridged
//! call is a job for the call's media machine.
//!
//! Each call's media is one more pure machine,
//! [`media::call_media::CallMedia`]: a session per leg, the bridge between
//! two of them, recordings. `poll_transmit(now, buf)` writes the next
//! packet into the caller's buffer; `handle_rtp(now, slot, from, packet)`
//! takes what arrives. Tests drive the same machines with simulated time
//! (`tests/sim_*.rs`), so "answer within 15 s" or "wait 5 s" is checked in
//! microseconds.
//!
//! ## The threads, and where each output goes
//!
//! - **The engine task** (tokio, [`shell::run`]): owns the [`engine::Engine`]
//!   and feeds it from one channel: SIP from the UDP receive tasks and the
//!   TCP connection tasks, media events from the media workers, saved
//!   recordings, API requests, SIGHUP's reloaded config. It sends SIP
//!   itself (`Output::Transmit`) and hands every other output on.
//! - **Media workers** (one OS thread per core, epoll and a timerfd,
//!   [`shell::media`]): each owns many calls' RTP sockets and their
//!   `CallMedia` machines (`Output::Media`), sends what they return and
//!   passes their events back to the engine task.
//! - **The record writer** (one OS thread, [`shell::cdr_writer`]): appends
//!   records and queue_log/offers lines (`Output::CallEnded`,
//!   `Output::Line`) with fsync, retrying failed writes; only then does it
//!   release the call's media sockets and the call's last messages.
//! - **The blocking pool** (tokio): writes voice messages' WAVs
//!   ([`shell::voicemail_store`], retried until saved) and their index
//!   (`Output::MessageSaved`), loads SIGHUP's config and prompts, reloads
//!   the caller directory.
//! - **The HTTP API** (tokio tasks, [`shell::api`]): agent commands and the
//!   live view, answered by the engine task through the channel.

pub use hotline_core::{
    acd, call, campaign, cdr, cluster, config, directory, engine, forms, ids, io, ivr, leg, live,
    media, number, setup, sip, sla, store, tasks, time, voicemail, wire,
};

pub mod shell;
pub mod tools;

pub use tools::{plan, report};
