//! SIP: message parsing (over rsipstack's types), message writing,
//! RFC 3261 transactions and SDP offer/answer.

pub mod build;
pub mod digest;
pub mod message;
pub mod params;
pub mod registrar;
pub mod sdp;
pub mod transaction;
pub mod transport;
pub mod uri;
pub mod validate;
