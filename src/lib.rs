//! # hotline
//!
//! A telephony IVR and ACD engine that talks SIP.
//!
//! Everything that decides is a pure state machine that takes `now` with
//! every input and never reads a clock or touches a socket:
//!
//! 1. [`engine::Engine::handle_input`] takes a SIP datagram (or framed TCP
//!    message) or a media event, with `now`.
//! 2. [`engine::Engine::poll_output`] hands back what to do: datagrams to
//!    send, media sessions to start, prompts to play, finished call records.
//! 3. [`engine::Engine::poll_timeout`] says when to call
//!    [`engine::Engine::handle_timeout`] next.
//!
//! Each call's RTP is another pure machine, [`media::session::MediaSession`]:
//! `poll_transmit(now, buf)` writes the next 20 ms frame into the caller's
//! buffer, `handle_rtp(now, from, packet)` decodes what arrives.
//!
//! The [`runtime`] module is the thin tokio shell: sockets, the clock, the
//! record writer and signals. Tests drive the same machines with simulated
//! time, so "answer within 15 s" or "wait 5 s" is checked in microseconds.

pub use hotline_core::{
    acd, cdr, config, directory, engine, ivr, live, media, setup, sip, sla, time, voicemail,
};

pub mod shell;
pub mod tools;

pub use tools::{plan, report};
