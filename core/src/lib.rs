//! # hotline-core
//!
//! Everything in hotline that decides, as pure state machines. Nothing
//! here reads a clock, opens a file or a socket, or spawns a thread (the
//! crate has no tokio, and `clippy.toml` forbids the std calls); the shell
//! in the `hotline` crate does all of that and feeds the machines.
pub mod acd;
pub mod cdr;
pub mod config;
pub mod directory;
pub mod engine;
pub mod ivr;
pub mod live;
pub mod media;
pub mod setup;
pub mod sip;
pub mod sla;
pub mod time;
pub mod voicemail;
