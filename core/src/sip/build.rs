//! Writing SIP messages: responses to requests we received, and the
//! requests (BYE) the engine sends inside a dialog.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::message::{via_sent_by, SipRequest};
use super::params::via_param;

pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER, REFER";
pub const USER_AGENT: &str = concat!("hotline/", env!("CARGO_PKG_VERSION"));

/// A response body with its content type.
pub struct Body<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// Builds a response to `req`. `source` is where the request came from: the
/// top Via gains `received`/`rport` (RFC 3261 18.2.1, RFC 3581) so the
/// response routes back through NAT. `to_tag` is added to To when the request
/// had none.
pub fn response(
    req: &SipRequest,
    source: SocketAddr,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Body<'_>>,
) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
    for (i, via) in req.vias.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, "Via: {}\r\n", stamp_via(via, source));
        } else {
            let _ = write!(out, "Via: {via}\r\n");
        }
    }
    for rr in &req.record_route {
        if (101..300).contains(&status) {
            let _ = write!(out, "Record-Route: {rr}\r\n");
        }
    }
    // A request refused for a missing or unreadable field (RFC 4475 3.3.1,
    // 3.1.2.4) is answered with what it had: empty fields are left out
    // and an unreadable CSeq is echoed as received.
    if !req.from.is_empty() {
        let _ = write!(out, "From: {}\r\n", req.from);
    }
    match (&req.to_tag, to_tag) {
        _ if req.to.is_empty() => {}
        (None, Some(tag)) => {
            let _ = write!(out, "To: {};tag={tag}\r\n", req.to);
        }
        _ => {
            let _ = write!(out, "To: {}\r\n", req.to);
        }
    }
    if !req.call_id.is_empty() {
        let _ = write!(out, "Call-ID: {}\r\n", req.call_id);
    }
    match &req.cseq_raw {
        Some(raw) => {
            let _ = write!(out, "CSeq: {raw}\r\n");
        }
        None if req.cseq_method.as_str().is_empty() => {}
        None => {
            let _ = write!(out, "CSeq: {} {}\r\n", req.cseq, req.cseq_method);
        }
    }
    let _ = write!(out, "Server: {USER_AGENT}\r\n");
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    finish(out, body)
}

/// Adds `received` when the sent-by host differs from the packet's source
/// address, and fills an empty `rport`.
fn stamp_via(via: &str, source: SocketAddr) -> String {
    let sent_by = via_sent_by(via);
    let host = sent_by
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(sent_by)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let has_rport = via_param(via, "rport").is_some();
    let mut via = via.to_string();
    if has_rport {
        via = via
            .split(';')
            .map(|p| {
                if p.trim().eq_ignore_ascii_case("rport") {
                    format!("rport={}", source.port())
                } else {
                    p.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(";");
    }
    if (host != source.ip().to_string() || has_rport) && via_param(&via, "received").is_none() {
        let _ = write!(via, ";received={}", source.ip());
    }
    via
}

/// An in-dialog request the engine originates (BYE).
pub struct DialogRequest<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub route: &'a [String],
    pub via_transport: &'a str,
    pub via_sent_by: &'a str,
    pub branch: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub extra: &'a [(&'a str, &'a str)],
    pub body: Option<Body<'a>>,
}

pub fn request(r: &DialogRequest<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "{} {} SIP/2.0\r\n", r.method, r.target);
    let _ = write!(
        out,
        "Via: SIP/2.0/{} {};branch={};rport\r\n",
        r.via_transport, r.via_sent_by, r.branch
    );
    let _ = write!(out, "Max-Forwards: 70\r\n");
    for route in r.route {
        let _ = write!(out, "Route: {route}\r\n");
    }
    let _ = write!(out, "From: {}\r\nTo: {}\r\n", r.from, r.to);
    let _ = write!(
        out,
        "Call-ID: {}\r\nCSeq: {} {}\r\n",
        r.call_id, r.cseq, r.method
    );
    let _ = write!(out, "User-Agent: {USER_AGENT}\r\n");
    for (name, value) in r.extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    finish(
        out,
        r.body.as_ref().map(|b| Body {
            content_type: b.content_type,
            bytes: b.bytes,
        }),
    )
}

fn finish(mut out: String, body: Option<Body<'_>>) -> Vec<u8> {
    match body {
        Some(body) => {
            let _ = write!(
                out,
                "Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
                body.content_type,
                body.bytes.len()
            );
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(body.bytes);
            bytes
        }
        None => {
            out.push_str("Content-Length: 0\r\n\r\n");
            out.into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, SipMessage};

    #[test]
    fn response_echoes_and_stamps_via() {
        let invite = "INVITE sip:4008@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bK1;rport\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:4008@c>\r\nCall-ID: x\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let Ok(SipMessage::Request(req)) = parse(invite.as_bytes()) else {
            panic!()
        };
        let source: SocketAddr = "203.0.113.7:40000".parse().expect("addr");
        let resp = response(&req, source, 180, "Ringing", Some("t1"), &[], None);
        let text = String::from_utf8(resp).expect("utf8");
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"));
        assert!(text.contains("branch=z9hG4bK1;rport=40000;received=203.0.113.7\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK0\r\n"));
        assert!(text.contains("To: <sip:4008@c>;tag=t1\r\n"));
        assert!(text.contains("CSeq: 7 INVITE\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
