//! Media: G.711, the prompt cache, RFC 4733 digits, speech detection and
//! the per-call RTP session state machine.

pub mod catalog;
pub mod dtmf;
pub mod g711;
pub mod inband;
pub mod prompt;
pub mod session;
pub mod silence;
