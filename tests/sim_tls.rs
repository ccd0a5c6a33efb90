//! SIP over TLS through the pure engine: what arrives over a TLS
//! connection is answered over it, with a Contact that brings requests
//! back encrypted (to the TLS port; `sips:` for a `sips:` dialog); an agent
//! whose phone registered over TLS is rung over that connection with
//! `Via: SIP/2.0/TLS`; a TLS trunk is dialled over TLS. The sockets and
//! the handshake are the shell's (tests/interop_tls.rs).

mod common;

use std::time::Duration;

use common::*;
use hotline::config::TlsConfig;
use hotline::engine::{Peer, Transport};

fn with_tls() -> hotline::config::Config {
    config(|c| {
        c.tls = Some(TlsConfig {
            certificate: "tls/cert.pem".into(),
            key: "tls/key.pem".into(),
            sip_listen: None,
            https: true,
        })
    })
}

/// A phone or caller on a TLS connection the shell numbered `conn`.
fn tls_peer(port: u16, conn: u64) -> Peer {
    Peer {
        transport: Transport::Tls,
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        conn,
    }
}

fn tls_invite(call_id: &str, request_uri: &str) -> String {
    invite(call_id, "z9hG4bK-tls1", Some(SDP_OFFER))
        .replace(
            "INVITE sip:4008@127.0.0.1:5060 ",
            &format!("INVITE {request_uri} "),
        )
        .replace("SIP/2.0/UDP 127.0.0.1:5070", "SIP/2.0/TLS 127.0.0.1:5070")
        .replace(
            "To: <sip:4008@127.0.0.1:5060>",
            &format!("To: <{request_uri}>"),
        )
}

#[test]
fn a_call_over_tls_is_answered_over_its_connection_with_a_tls_contact() {
    let mut sim = Sim::new(with_tls());
    let caller = tls_peer(40001, 77);
    sim.send_bytes(
        caller,
        tls_invite("t1", "sip:4008@127.0.0.1:5061").as_bytes(),
    );
    sim.run_for(Duration::from_millis(2100));
    let answers: Vec<&Sent> = sim
        .sent
        .iter()
        .filter(|s| s.text.starts_with("SIP/2.0 "))
        .collect();
    assert!(answers.iter().any(|s| s.text.starts_with("SIP/2.0 180")));
    let ok = answers
        .iter()
        .find(|s| s.text.starts_with("SIP/2.0 200"))
        .expect("answered");
    // Over the very connection the INVITE came on.
    assert!(
        answers.iter().all(|s| s.peer == caller),
        "a reply left by another way"
    );
    assert!(
        ok.text.contains("Via: SIP/2.0/TLS 127.0.0.1:5070"),
        "{}",
        ok.text
    );
    assert_eq!(
        header(&ok.text, "Contact"),
        "<sip:hotline@127.0.0.1:5061;transport=tls>"
    );
    // The caller's ACK and BYE, then the record says where it came from.
    let tag = sim.to_tag_for("t1");
    let ack =
        in_dialog("ACK", "t1", "z9hG4bK-tls2", 1, &tag, None).replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    sim.send_bytes(caller, ack.as_bytes());
    sim.run_for(Duration::from_millis(500));
    let bye =
        in_dialog("BYE", "t1", "z9hG4bK-tls3", 2, &tag, None).replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    sim.send_bytes(caller, bye.as_bytes());
    sim.run_for(Duration::from_millis(100));
    let bye_ok = sim.sent.last().expect("200 to BYE");
    assert!(bye_ok.text.starts_with("SIP/2.0 200"), "{}", bye_ok.text);
    assert!(bye_ok.text.contains("CSeq: 2 BYE"), "{}", bye_ok.text);
    assert_eq!(bye_ok.peer, caller);
    let record = sim.records.last().expect("a record");
    assert_eq!(record.source, "tls:127.0.0.1:40001");
}

#[test]
fn a_sips_call_gets_a_sips_contact() {
    let mut sim = Sim::new(with_tls());
    let caller = tls_peer(40002, 78);
    sim.send_bytes(caller, tls_invite("t2", "sips:4008@127.0.0.1").as_bytes());
    sim.run_for(Duration::from_millis(2100));
    let ok = sim
        .sent
        .iter()
        .find(|s| s.text.starts_with("SIP/2.0 200"))
        .expect("answered");
    assert_eq!(ok.peer, caller);
    assert_eq!(header(&ok.text, "Contact"), "<sips:hotline@127.0.0.1:5061>");
}

#[test]
fn an_agent_registered_over_tls_is_rung_over_its_connection() {
    let mut sim = Sim::new(with_tls());
    let phone_tls = tls_peer(5081, 9);
    register_via(&mut sim, "1001", 0, phone_tls, "");
    caller_presses(&mut sim, "c1", '2');
    let inv = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.text.starts_with("INVITE "))
        .expect("the agent is rung");
    assert_eq!(inv.peer, phone_tls, "over the registered connection");
    let text = inv.text.clone();
    assert!(text.contains("Via: SIP/2.0/TLS 127.0.0.1:5061;"), "{text}");
    assert_eq!(
        header(&text, "Contact"),
        "<sip:hotline@127.0.0.1:5061;transport=tls>"
    );
    // Reliable: no retransmission of the INVITE over TLS.
    sim.run_for(Duration::from_millis(1600));
    let invites = sim
        .sent
        .iter()
        .filter(|s| s.peer == phone_tls && s.text.starts_with("INVITE "))
        .count();
    assert_eq!(invites, 1);
}

#[test]
fn without_tls_configured_a_tls_peer_still_gets_a_tls_via() {
    // The engine answers whatever the shell hands it; Via and Contact name
    // the plain address when there is no TLS listener to name.
    let mut sim = Sim::new(config(|_| {}));
    let caller = tls_peer(40003, 79);
    sim.send_bytes(caller, tls_invite("t3", "sip:4008@127.0.0.1").as_bytes());
    sim.run_for(Duration::from_millis(2100));
    let ok = sim
        .sent
        .iter()
        .find(|s| s.text.starts_with("SIP/2.0 200"))
        .expect("answered");
    assert_eq!(
        header(&ok.text, "Contact"),
        "<sip:hotline@127.0.0.1:5060;transport=tls>"
    );
}
