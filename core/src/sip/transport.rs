//! The transport a SIP message travels over (RFC 3261 18): UDP, TCP or
//! TLS, and what each means for retransmissions and framing.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS (RFC 3261 26.2): framed as on TCP, over a TLS
    /// connection the shell accepted (port 5061) or opened to a trunk.
    Tls,
}

impl Transport {
    /// As written in a Via (`SIP/2.0/TLS`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// A stream: no retransmissions (RFC 3261 17.1.1.2), replies over the
    /// same connection.
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// Encrypted (TLS).
    pub fn secure(self) -> bool {
        self == Transport::Tls
    }
}
