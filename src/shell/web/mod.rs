//! Sign-in, roles, sessions and the audit log, for the HTTP API and the
//! web pages on its listener (docs/security.md, "Sign-in, roles,
//! sessions and audit").

pub mod audit;
pub mod auth;
pub mod session;
pub mod throttle;
