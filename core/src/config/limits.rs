//! `[sip.limits]`: what one message and one TCP connection may cost.
//! Refused at load when a value would break ordinary traffic.

use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::sip::message::ParseLimits;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimits")]
pub struct SipLimits {
    /// Bytes in one message: a UDP datagram, or head and body on TCP.
    pub max_message_size: usize,
    /// Header fields in one message.
    pub max_headers: usize,
    /// Bytes in one header field (folded lines included) or request line.
    pub max_header_line: usize,
    /// A TCP connection with no message in progress is closed after this.
    pub tcp_idle_timeout: Duration,
    /// A message on TCP must arrive whole within this of its first byte.
    pub tcp_message_timeout: Duration,
    /// TCP connections open at once, and from one IP address.
    pub max_tcp_connections: usize,
    pub max_tcp_connections_per_ip: usize,
}

impl Default for SipLimits {
    fn default() -> Self {
        let parse = ParseLimits::default();
        SipLimits {
            max_message_size: parse.max_message_size,
            max_headers: parse.max_headers,
            max_header_line: parse.max_header_line,
            tcp_idle_timeout: Duration::from_secs(300),
            tcp_message_timeout: Duration::from_secs(30),
            max_tcp_connections: 1024,
            max_tcp_connections_per_ip: 32,
        }
    }
}

impl SipLimits {
    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_message_size: self.max_message_size,
            max_headers: self.max_headers,
            max_header_line: self.max_header_line,
        }
    }
}

/// Why a `[sip.limits]` table is refused. The message names the key and
/// what would do, as it is shown to whoever edits the file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LimitsError {
    #[error(
        "max_message_size = {0}: give 1024 to 65535 bytes (a UDP datagram holds at most 65535)"
    )]
    MessageSize(usize),
    #[error("max_headers = {0}: give at least 20")]
    TooFewHeaders(usize),
    #[error("max_header_line = {0}: give at least 256 bytes")]
    HeaderLineTooShort(usize),
    #[error("tcp_idle_timeout and tcp_message_timeout must be above 0")]
    ZeroTcpTimeout,
    #[error("max_tcp_connections_per_ip = {per_ip} must be 1 to max_tcp_connections ({total})")]
    TcpConnections { per_ip: usize, total: usize },
}

/// The table as written; checked into [`SipLimits`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message_size: Option<usize>,
    max_headers: Option<usize>,
    max_header_line: Option<usize>,
    #[serde(default, with = "crate::forms::duration::option")]
    tcp_idle_timeout: Option<Duration>,
    #[serde(default, with = "crate::forms::duration::option")]
    tcp_message_timeout: Option<Duration>,
    max_tcp_connections: Option<usize>,
    max_tcp_connections_per_ip: Option<usize>,
}

impl TryFrom<RawLimits> for SipLimits {
    type Error = LimitsError;

    fn try_from(raw: RawLimits) -> Result<Self, LimitsError> {
        let d = SipLimits::default();
        let limits = SipLimits {
            max_message_size: raw.max_message_size.unwrap_or(d.max_message_size),
            max_headers: raw.max_headers.unwrap_or(d.max_headers),
            max_header_line: raw.max_header_line.unwrap_or(d.max_header_line),
            tcp_idle_timeout: raw.tcp_idle_timeout.unwrap_or(d.tcp_idle_timeout),
            tcp_message_timeout: raw.tcp_message_timeout.unwrap_or(d.tcp_message_timeout),
            max_tcp_connections: raw.max_tcp_connections.unwrap_or(d.max_tcp_connections),
            max_tcp_connections_per_ip: raw
                .max_tcp_connections_per_ip
                .unwrap_or(d.max_tcp_connections_per_ip),
        };
        // Below these, ordinary INVITEs (an SDP offer is about 300 bytes,
        // a softphone's INVITE 1-2 KB with 15 to 20 fields) would be refused.
        if !(1024..=65_535).contains(&limits.max_message_size) {
            return Err(LimitsError::MessageSize(limits.max_message_size));
        }
        if limits.max_headers < 20 {
            return Err(LimitsError::TooFewHeaders(limits.max_headers));
        }
        if limits.max_header_line < 256 {
            return Err(LimitsError::HeaderLineTooShort(limits.max_header_line));
        }
        if limits.tcp_idle_timeout.is_zero() || limits.tcp_message_timeout.is_zero() {
            return Err(LimitsError::ZeroTcpTimeout);
        }
        if limits.max_tcp_connections == 0
            || limits.max_tcp_connections_per_ip == 0
            || limits.max_tcp_connections_per_ip > limits.max_tcp_connections
        {
            return Err(LimitsError::TcpConnections {
                per_ip: limits.max_tcp_connections_per_ip,
                total: limits.max_tcp_connections,
            });
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SipLimits, toml::de::Error> {
        toml::from_str::<SipLimits>(text)
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse("").ok(), Some(SipLimits::default()));
        let l = parse("max_headers = 50\ntcp_idle_timeout = \"2s\"").expect("parses");
        assert_eq!(l.max_headers, 50);
        assert_eq!(l.tcp_idle_timeout, Duration::from_secs(2));
        assert_eq!(l.max_message_size, 65_535);
    }

    #[test]
    fn refuses_what_would_break_traffic() {
        for (text, needle) in [
            ("max_message_size = 100", "max_message_size"),
            ("max_message_size = 70000", "65535"),
            ("max_headers = 3", "max_headers"),
            ("max_header_line = 10", "max_header_line"),
            ("tcp_idle_timeout = \"0s\"", "tcp_idle_timeout"),
            (
                "max_tcp_connections = 2\nmax_tcp_connections_per_ip = 3",
                "max_tcp_connections_per_ip",
            ),
            ("max_bytes = 1", "unknown field"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn errors_are_typed() {
        let raw = |per_ip| RawLimits {
            max_message_size: None,
            max_headers: None,
            max_header_line: None,
            tcp_idle_timeout: None,
            tcp_message_timeout: None,
            max_tcp_connections: Some(2),
            max_tcp_connections_per_ip: Some(per_ip),
        };
        assert_eq!(
            SipLimits::try_from(raw(3)),
            Err(LimitsError::TcpConnections {
                per_ip: 3,
                total: 2
            })
        );
        assert!(SipLimits::try_from(raw(2)).is_ok());
    }
}
