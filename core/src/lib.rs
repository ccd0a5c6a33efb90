//! # hotline-core
//!
//! Everything in hotline that decides, as pure state machines. Nothing
//! here reads a clock, opens a file or a socket, or spawns a thread (the
//! crate has no tokio, and `clippy.toml` forbids the std calls); the shell
//! in the `hotline` crate does all of that and feeds the machines.
//!
//! - [`engine`]: the router. SIP in, transactions and dialogs routed to
//!   legs, the call flow, the port pool, the flood guard.
//! - [`call`]: one customer's call, owning its legs, its IVR, its queue
//!   visit and its record.
//! - [`leg`]: one SIP dialog, inbound (UAS) or outbound (UAC), with its
//!   media negotiation.
//! - [`wire`]: transaction tables, the timer table keyed by reason, the
//!   outbox. [`io`]: the inputs and outputs the shell sees. [`ids`]: the
//!   newtype ids of calls and legs.
//! - [`media`]: G.711, prompts, DTMF, speech detection, one leg's RTP
//!   session, and [`media::call_media`], the machine for a call's media.
//! - [`ivr`]: IVR programs as data and their interpreter. [`directory`]:
//!   the caller directory (customer classes).
//! - [`acd`]: queues, agents (status x state), strategies, queue_log.
//! - [`sip`]: parsing, writing, transactions (RFC 3261 section 17), SDP,
//!   digest auth, the registrar.
//! - [`campaign`]: voice-notice campaigns: their spec, calling windows and
//!   the scheduler on the standard's retry rule. [`store`]: the writes of
//!   work that outlives a call, and what is read back at start.
//! - [`cdr`]: the call record. [`voicemail`]: a voice message's record.
//! - [`live`]: the live view (wallboard, /metrics figures). [`sla`]: the
//!   hotline's figures (service level, connection and abandon rates...),
//!   defined once for the live view and the report.
//! - [`number`]: the one rule by which telephone numbers are compared
//!   (dialled numbers, callers, the do-not-call list).
//! - [`config`], [`setup`]: the typed config, and a config checked with
//!   everything it names. [`forms`]: the written forms of durations,
//!   offsets, times and dates.

pub mod acd;
pub mod call;
pub mod campaign;
pub mod cdr;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod engine;
pub mod forms;
pub mod ids;
pub mod io;
pub mod ivr;
pub mod leg;
pub mod live;
pub mod media;
pub mod number;
pub mod setup;
pub mod sip;
pub mod sla;
pub mod store;
pub mod tasks;
pub mod time;
pub mod voicemail;
pub mod wire;
