//! SDP offer/answer (RFC 3264) for one audio stream: PCMU, PCMA and
//! telephone-event, ptime 20. The caller's codec order wins.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use crate::media::g711::Codec;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP line {0:?} is malformed")]
    Malformed(String),
    #[error("SDP has no connection address")]
    NoConnection,
    #[error("no common codec (we offer PCMU, PCMA)")]
    NoCommonCodec,
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// What we answer to this offered direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// What the peer's SDP says about its audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where the peer wants RTP; port 0 means the stream is disabled.
    pub rtp: SocketAddr,
    /// Payload types in the peer's order, with their encodings.
    pub formats: Vec<(u8, String)>,
    pub direction: Direction,
}

/// The negotiated result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// Payload type of telephone-event, taken from the offer.
    pub telephone_event: Option<u8>,
}

pub fn parse(body: &[u8]) -> Result<RemoteMedia, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_addr: Option<IpAddr> = None;
    let mut media_addr: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut rtpmap: Vec<(u8, String)> = Vec::new();
    let mut direction = Direction::SendRecv;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or_else(|| SdpError::Malformed(truncate(line)))?;
        match kind {
            "m" => {
                in_audio = value.starts_with("audio ") && !seen_audio;
                if in_audio {
                    seen_audio = true;
                    let mut parts = value.split_ascii_whitespace().skip(1);
                    let port = parts
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| SdpError::Malformed(truncate(line)))?;
                    let _proto = parts.next();
                    let pts = parts.filter_map(|p| p.parse::<u8>().ok()).collect();
                    audio = Some((port, pts));
                }
            }
            "c" => {
                let addr = value
                    .split_ascii_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .ok_or_else(|| SdpError::Malformed(truncate(line)))?;
                if audio.is_some() && in_audio {
                    media_addr = Some(addr);
                } else if audio.is_none() {
                    session_addr = Some(addr);
                }
            }
            "a" if audio.is_none() || in_audio => {
                if let Some(map) = value.strip_prefix("rtpmap:") {
                    let mut parts = map.split_ascii_whitespace();
                    let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
                    let enc = parts.next();
                    if let (Some(pt), Some(enc)) = (pt, enc) {
                        rtpmap.push((pt, enc.to_string()));
                    }
                } else {
                    match value {
                        "sendrecv" => direction = Direction::SendRecv,
                        "sendonly" => direction = Direction::SendOnly,
                        "recvonly" => direction = Direction::RecvOnly,
                        "inactive" => direction = Direction::Inactive,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (port, pts) = audio.ok_or(SdpError::NoAudio)?;
    let ip = media_addr.or(session_addr).ok_or(SdpError::NoConnection)?;
    let formats = pts
        .into_iter()
        .map(|pt| {
            let enc = rtpmap
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| static_encoding(pt).to_string());
            (pt, enc)
        })
        .collect();
    if ip.is_unspecified() {
        // RFC 3264 hold (c=0.0.0.0) is an inactive stream.
        direction = Direction::Inactive;
    }
    Ok(RemoteMedia {
        rtp: SocketAddr::new(ip, port),
        formats,
        direction,
    })
}

fn static_encoding(pt: u8) -> &'static str {
    match pt {
        0 => "PCMU/8000",
        8 => "PCMA/8000",
        _ => "",
    }
}

fn truncate(line: &str) -> String {
    line.chars().take(40).collect()
}

/// Parses the peer's SDP and negotiates with it in one step.
pub fn parse_and_negotiate(body: &[u8]) -> Result<(RemoteMedia, Negotiated), SdpError> {
    let remote = parse(body)?;
    let negotiated = negotiate(&remote)?;
    Ok((remote, negotiated))
}

/// Picks the first of the caller's formats that we support.
pub fn negotiate(remote: &RemoteMedia) -> Result<Negotiated, SdpError> {
    let codec = remote
        .formats
        .iter()
        .find_map(|(pt, enc)| codec_for(*pt, enc))
        .ok_or(SdpError::NoCommonCodec)?;
    let telephone_event = remote.formats.iter().find_map(|(pt, enc)| {
        enc.to_ascii_lowercase()
            .starts_with("telephone-event/8000")
            .then_some(*pt)
    });
    Ok(Negotiated {
        codec,
        telephone_event,
    })
}

fn codec_for(pt: u8, enc: &str) -> Option<Codec> {
    let enc = enc.to_ascii_uppercase();
    if pt == 0 || enc.starts_with("PCMU/8000") {
        Some(Codec::Pcmu)
    } else if pt == 8 || enc.starts_with("PCMA/8000") {
        Some(Codec::Pcma)
    } else {
        None
    }
}

/// Our side of the session description.
pub struct LocalMedia {
    pub addr: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub version: u64,
}

/// Writes an answer (one codec) or, with `negotiated = None`, an offer of
/// everything we support.
pub fn write(local: &LocalMedia, negotiated: Option<Negotiated>, direction: Direction) -> String {
    let ip_kind = if local.addr.is_ipv4() { "IP4" } else { "IP6" };
    let formats: Vec<(u8, &str)> = match negotiated {
        Some(n) => {
            let mut f = vec![(n.codec.payload_type(), n.codec.rtpmap())];
            if let Some(te) = n.telephone_event {
                f.push((te, "telephone-event/8000"));
            }
            f
        }
        None => vec![
            (0, "PCMU/8000"),
            (8, "PCMA/8000"),
            (101, "telephone-event/8000"),
        ],
    };
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "v=0\r\no=hotline {} {} IN {ip_kind} {}\r\ns=hotline\r\nc=IN {ip_kind} {}\r\nt=0 0\r\nm=audio {} RTP/AVP",
        local.session_id, local.version, local.addr, local.addr, local.port
    );
    for (pt, _) in &formats {
        let _ = write!(out, " {pt}");
    }
    out.push_str("\r\n");
    for (pt, enc) in &formats {
        let _ = write!(out, "a=rtpmap:{pt} {enc}\r\n");
        if enc.starts_with("telephone-event") {
            let _ = write!(out, "a=fmtp:{pt} 0-16\r\n");
        }
    }
    let _ = write!(out, "a=ptime:20\r\na={}\r\n", direction.attr());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n";

    #[test]
    fn callers_order_wins_and_event_pt_from_offer() {
        let remote = parse(OFFER.as_bytes()).expect("parses");
        assert_eq!(remote.rtp, "127.0.0.1:6000".parse().expect("addr"));
        let n = negotiate(&remote).expect("common codec");
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event, Some(96));
        let answer = write(
            &LocalMedia {
                addr: "192.0.2.1".parse().expect("ip"),
                port: 10000,
                session_id: 5,
                version: 1,
            },
            Some(n),
            remote.direction.answer(),
        );
        assert!(answer.contains("c=IN IP4 192.0.2.1\r\n"));
        assert!(answer.contains("m=audio 10000 RTP/AVP 8 96\r\n"));
        assert!(answer.contains("a=rtpmap:96 telephone-event/8000\r\n"));
        assert!(answer.contains("a=ptime:20\r\n"));
    }

    #[test]
    fn no_common_codec() {
        let offer = OFFER.replace("18 8 0 96", "18 96");
        let remote = parse(offer.as_bytes()).expect("parses");
        assert_eq!(negotiate(&remote), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn hold_offer_is_answered_as_such() {
        let offer = OFFER.replace("a=sendrecv", "a=sendonly");
        let remote = parse(offer.as_bytes()).expect("parses");
        assert_eq!(remote.direction.answer(), Direction::RecvOnly);
        let offer = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(
            parse(offer.as_bytes()).expect("parses").direction,
            Direction::Inactive
        );
    }

    #[test]
    fn malformed() {
        assert!(parse(b"v=0\r\nthis is not sdp\r\n").is_err());
        assert_eq!(
            parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\n"),
            Err(SdpError::NoAudio)
        );
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
