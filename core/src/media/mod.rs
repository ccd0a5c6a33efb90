//! Media: G.711, the prompt cache, RFC 4733 digits, speech detection, one
//! leg's RTP session, and the machine that holds a call's legs' sessions,
//! its bridge and its recordings ([`call_media`]).

pub mod call_media;
pub mod catalog;
pub mod dtmf;
pub mod g711;
pub mod inband;
pub mod prompt;
pub mod recorder;
pub mod session;
pub mod silence;
