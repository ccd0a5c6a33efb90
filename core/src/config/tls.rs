//! `[tls]`: one certificate and key for HTTPS (the API and the desk) and
//! SIP over TLS (phones and trunks that connect to hotline). The shell
//! reads the files at start and again on SIGHUP (docs/tls.md); this is
//! only where they are and what listens.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// SIP over TLS's port (RFC 3261 26.2.2: `sips:` URIs default to it).
pub const SIPS_PORT: u16 = 5061;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the certificate, then any intermediates (relative to the
    /// config's folder).
    pub certificate: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Where SIP over TLS listens; absent: each `sip.listen` host on port
    /// 5061.
    #[serde(default)]
    pub sip_listen: Option<Vec<SocketAddr>>,
    /// The API and desk listener serves HTTPS (and no plain HTTP).
    #[serde(default = "default_https")]
    pub https: bool,
}

fn default_https() -> bool {
    true
}

impl TlsConfig {
    /// The SIP-over-TLS addresses: as given, or each of `sip_listen`'s
    /// hosts on port 5061 (each once).
    pub fn sip_addresses(&self, sip_listen: &[SocketAddr]) -> Vec<SocketAddr> {
        if let Some(given) = &self.sip_listen {
            return given.clone();
        }
        let mut out: Vec<SocketAddr> = Vec::new();
        for a in sip_listen {
            let tls = SocketAddr::new(a.ip(), SIPS_PORT);
            if !out.contains(&tls) {
                out.push(tls);
            }
        }
        out
    }
}

/// The host of a `host[:port]` (`[v6]:port`, `v4:port`, a name, or a bare
/// v6 address).
pub fn host_of(address: &str) -> &str {
    if let Ok(sa) = address.parse::<SocketAddr>() {
        // Slicing keeps the text as written; the parse only says its form.
        return match sa {
            SocketAddr::V4(_) => address.rsplit_once(':').map_or(address, |(h, _)| h),
            SocketAddr::V6(_) => address
                .rsplit_once("]:")
                .map_or(address, |(h, _)| h)
                .trim_start_matches('['),
        };
    }
    if address.parse::<std::net::Ipv6Addr>().is_ok() {
        return address;
    }
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.split_once(':') {
        Some((host, _)) => host,
        None => address,
    }
}

/// `host:port`, bracketing an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_public_addresses() {
        assert_eq!(host_of("203.0.113.5:5060"), "203.0.113.5");
        assert_eq!(host_of("203.0.113.5"), "203.0.113.5");
        assert_eq!(host_of("sip.example.com:5070"), "sip.example.com");
        assert_eq!(host_of("sip.example.com"), "sip.example.com");
        assert_eq!(host_of("[2001:db8::1]:5060"), "2001:db8::1");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
        assert_eq!(join_host_port("2001:db8::1", 5061), "[2001:db8::1]:5061");
        assert_eq!(
            join_host_port("sip.example.com", 5061),
            "sip.example.com:5061"
        );
    }

    #[test]
    fn sip_addresses_default_to_5061_on_each_host() {
        let tls = TlsConfig {
            certificate: "c.pem".into(),
            key: "k.pem".into(),
            sip_listen: None,
            https: true,
        };
        let listen: Vec<SocketAddr> = ["127.0.0.1:5060", "127.0.0.1:5070", "[::1]:5060"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        let want: Vec<SocketAddr> = ["127.0.0.1:5061", "[::1]:5061"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        assert_eq!(tls.sip_addresses(&listen), want);
    }
}
