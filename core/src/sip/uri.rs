//! SIP URI comparison (RFC 3261 section 19.1.4), for telling whether two
//! URIs name the same resource: a digest `uri` and the Request-URI it
//! answers for.
//!
//! One deliberate difference from the RFC: an absent port equals the
//! scheme's default (5060 for sip, 5061 for sips). Clients such as SIPp
//! answer a challenge to `REGISTER sip:127.0.0.1` with
//! `uri="sip:127.0.0.1:5060"`, and registrars such as Kamailio accept it.

use std::net::IpAddr;

use super::params::{name_value, split_params};

/// The parts of a sip: or sips: URI that comparison looks at.
#[derive(Debug, PartialEq, Eq)]
struct SipUri {
    secure: bool,
    /// `user[:password]`, escapes undone; compared case-sensitively.
    userinfo: Option<String>,
    host: Host,
    port: u16,
    /// Names lowercased, values lowercased, escapes undone; first wins.
    params: Vec<(String, Option<String>)>,
    /// Names lowercased, sorted; values with escapes undone.
    headers: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    /// Lowercased.
    Name(String),
}

/// URI parameters that, present in one URI, must be present in the other.
const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

/// Whether `a` and `b` name the same resource: by RFC 3261 section 19.1.4
/// for sip: and sips: URIs (with the default port equal to no port),
/// byte for byte for anything else.
pub fn equivalent(a: &str, b: &str) -> bool {
    match (SipUri::parse(a), SipUri::parse(b)) {
        (Some(a), Some(b)) => a.same_resource(&b),
        _ => a == b,
    }
}

impl SipUri {
    fn parse(text: &str) -> Option<SipUri> {
        let (scheme, rest) = text.trim().split_once(':')?;
        let secure = if scheme.eq_ignore_ascii_case("sips") {
            true
        } else if scheme.eq_ignore_ascii_case("sip") {
            false
        } else {
            return None;
        };
        // The user part may hold `;`, `?` and `/`; none of the parts after
        // the host may hold an `@`.
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(unescape(u)?), r),
            None => (None, rest),
        };
        let (rest, headers) = rest.split_once('?').unwrap_or((rest, ""));
        let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host, port) = split_host_port(hostport)?;
        let default_port = if secure { 5061 } else { 5060 };
        let mut uri = SipUri {
            secure,
            userinfo,
            host,
            port: port.unwrap_or(default_port),
            params: Vec::new(),
            headers: Vec::new(),
        };
        for p in split_params(params) {
            let (name, value) = name_value(p);
            if name.is_empty() {
                continue;
            }
            let name = unescape(name)?.to_ascii_lowercase();
            let value = match value {
                Some(v) => Some(unescape(v)?.to_ascii_lowercase()),
                None => None,
            };
            if !uri.params.iter().any(|(n, _)| *n == name) {
                uri.params.push((name, value));
            }
        }
        for h in headers.split('&').filter(|h| !h.is_empty()) {
            let (name, value) = h.split_once('=').unwrap_or((h, ""));
            uri.headers
                .push((unescape(name)?.to_ascii_lowercase(), unescape(value)?));
        }
        uri.headers.sort();
        Some(uri)
    }

    fn param(&self, name: &str) -> Option<&Option<String>> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn same_resource(&self, other: &SipUri) -> bool {
        let params_match = self.params.iter().chain(&other.params).all(|(name, _)| {
            match (self.param(name), other.param(name)) {
                (Some(a), Some(b)) => a == b,
                _ => !MUST_MATCH.contains(&name.as_str()),
            }
        });
        self.secure == other.secure
            && self.userinfo == other.userinfo
            && self.host == other.host
            && self.port == other.port
            && params_match
            && self.headers == other.headers
    }
}

/// `host[:port]`, the host a name, an IPv4 address or an IPv6 reference.
fn split_host_port(text: &str) -> Option<(Host, Option<u16>)> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (Host::Ip(IpAddr::V6(addr.parse().ok()?)), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if host.is_empty() {
            return None;
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host.to_ascii_lowercase()),
        };
        (host, port)
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

/// Undoes `%XX` escapes of characters outside RFC 3261's reserved set
/// (section 19.1.4: those equal their escapes); reserved ones stay escaped,
/// in uppercase hex. None for a malformed escape.
fn unescape(text: &str) -> Option<String> {
    const RESERVED: &[u8] = b";/?:@&=+$,";
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = text.get(i + 1..i + 3)?;
        let byte = u8::from_str_radix(hex, 16).ok()?;
        if RESERVED.contains(&byte) {
            out.extend_from_slice(format!("%{byte:02X}").as_bytes());
        } else {
            out.push(byte);
        }
        i += 3;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_equivalent_uris() {
        for (a, b) in [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            (
                "sip:carol@chicago.com;newparam=5",
                "sip:carol@chicago.com;security=on",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ] {
            assert!(equivalent(a, b), "{a} = {b}");
            assert!(equivalent(b, a), "{b} = {a}");
        }
    }

    #[test]
    fn rfc3261_different_uris() {
        for (a, b) in [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
            ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
            ("sip:a%3Bb@h", "sip:a;b@h"),
        ] {
            assert!(!equivalent(a, b), "{a} != {b}");
            assert!(!equivalent(b, a), "{b} != {a}");
        }
    }

    #[test]
    fn the_default_port_equals_no_port() {
        // RFC 3261 says these differ; SIPp and Kamailio treat them as one.
        assert!(equivalent("sip:127.0.0.1", "sip:127.0.0.1:5060"));
        assert!(equivalent("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(equivalent("sips:[::1]", "sips:[0:0::1]:5061"));
        assert!(!equivalent("sips:127.0.0.1", "sips:127.0.0.1:5060"));
        assert!(!equivalent("sip:127.0.0.1", "sip:127.0.0.1:5070"));
        assert!(!equivalent("sip:127.0.0.1", "sip:127.0.0.2:5060"));
    }

    #[test]
    fn anything_else_compares_as_written() {
        assert!(equivalent("/dir/index.html", "/dir/index.html"));
        assert!(!equivalent("tel:+1-201-555-0123", "tel:+12015550123"));
        // A sip: URI that does not parse too.
        assert!(equivalent("sip:h:port", "sip:h:port"));
        assert!(!equivalent("sip:h:port", "sip:H:port"));
        assert!(!equivalent("sip:a%zz@h", "sip:a%zz@h:5060"));
    }
}
