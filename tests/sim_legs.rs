//! The operations every feature builds on, in simulated time: placing a
//! leg of a call to any SIP URI, bridging two legs, replacing one leg by
//! another (the basis of a transfer), and what a placed leg's answers,
//! refusals and silence do to it.

mod common;

use std::time::Duration;

use common::*;
use hotline::ids::{CallKey, LegKey};
use hotline::io::{Peer, Transport};
use hotline::leg::uac::LegTarget;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A caller answered by the demo IVR and its media open.
fn answered_call(sim: &mut Sim, call_id: &str) -> CallKey {
    sim.send(&invite(call_id, "z9hG4bK-inv", Some(SDP_OFFER)));
    sim.run_for(secs(2));
    let tag = sim.to_tag_for(call_id);
    sim.send(&in_dialog("ACK", call_id, "z9hG4bK-ack", 1, &tag, None));
    *sim.media_started.last().expect("media open")
}

fn far_end(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        conn: 0,
    }
}

fn target(user: &str, port: u16) -> LegTarget {
    LegTarget {
        uri: format!("sip:{user}@127.0.0.1:{port}"),
        peer: far_end(port),
        route: Vec::new(),
        from_user: "4008001234".into(),
        from_display: "hotline".into(),
        auth: None,
    }
}

/// The INVITE the engine sent to `port`.
fn invite_sent_to(sim: &Sim, port: u16) -> String {
    sim.sent
        .iter()
        .rev()
        .find(|s| s.peer == far_end(port) && s.text.starts_with("INVITE "))
        .expect("an INVITE to the far end")
        .text
        .clone()
}

/// The far end at `port` answers the engine's INVITE with `status`; a 200
/// and a 183 carry SDP.
fn far_end_answers(sim: &mut Sim, port: u16, status: u16) {
    let invite = invite_sent_to(sim, port);
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        port + 1000
    );
    let body = if status == 200 || status == 183 {
        sdp.as_str()
    } else {
        ""
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let reply = format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=far{port}\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:far@127.0.0.1:{port}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        header(&invite, "Via"),
        header(&invite, "From"),
        header(&invite, "To"),
        header(&invite, "Call-ID"),
        body.len()
    );
    sim.send_bytes(far_end(port), reply.as_bytes());
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut buf = [0u8; 200];
    let n = rtp_rs::RtpPacketBuilder::new()
        .payload_type(0)
        .ssrc(77)
        .sequence(rtp_rs::Seq::from(seq))
        .timestamp(u32::from(seq) * 160)
        .payload(&[0x55; 160])
        .build_into(&mut buf)
        .expect("rtp");
    buf[..n].to_vec()
}

#[test]
fn a_leg_placed_to_any_uri_answers_and_is_bridged_with_the_caller() {
    let mut sim = Sim::new(config(|_| {}));
    let call = answered_call(&mut sim, "c1");
    let leg = sim
        .act(|e, now| e.place_leg(now, call, &target("2001", 5090), &[("X-Why", "test")]))
        .expect("placed");
    let invite = invite_sent_to(&sim, 5090);
    assert!(
        invite.starts_with("INVITE sip:2001@127.0.0.1:5090 SIP/2.0\r\n"),
        "{invite}"
    );
    assert!(invite.contains("\r\nX-Why: test\r\n"), "{invite}");
    assert!(
        invite.contains("From: \"hotline\" <sip:4008001234@"),
        "{invite}"
    );
    assert!(invite.contains("m=audio "), "an SDP offer: {invite}");
    assert_eq!(sim.engine.call_legs(call).len(), 2);

    // Ringing and early media are progress, not an answer.
    far_end_answers(&mut sim, 5090, 180);
    far_end_answers(&mut sim, 5090, 183);
    assert_eq!(sim.open_legs(call), 1, "no media for an unanswered leg");
    sim.run_for(secs(3));

    far_end_answers(&mut sim, 5090, 200);
    let ack = sim.sent.last().expect("ACK").text.clone();
    assert!(
        ack.starts_with("ACK sip:far@127.0.0.1:5090 SIP/2.0"),
        "{ack}"
    );
    assert!(ack.contains(";tag=far5090"), "{ack}");
    assert_eq!(sim.open_legs(call), 2, "the answered leg's media opened");

    let customer = sim.engine.customer_leg(call).expect("customer");
    assert!(
        !sim.act(|e, _| e.bridge(call, customer, customer)),
        "a leg is not bridged to itself"
    );
    assert!(sim.act(|e, _| e.bridge(call, customer, leg)));
    assert_eq!(sim.bridged.len(), 1);
    // What the caller says reaches the far end at once, and back.
    let before = sim.rtp_packets;
    sim.customer_rtp(call, "127.0.0.1:6000".parse().expect("a"), &rtp(1));
    assert_eq!(sim.rtp_packets, before + 1, "relayed to the placed leg");
    sim.leg_rtp(call, leg, "127.0.0.1:6090".parse().expect("a"), &rtp(2));
    assert_eq!(sim.rtp_packets, before + 2, "relayed back to the caller");

    // The caller hangs up: the placed leg gets a BYE, one record.
    let tag = sim.to_tag_for("c1");
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, None));
    let bye = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.peer == far_end(5090) && s.text.starts_with("BYE "))
        .expect("BYE to the placed leg");
    assert!(
        bye.text.starts_with("BYE sip:far@127.0.0.1:5090"),
        "{}",
        bye.text
    );
    assert_eq!(sim.records.len(), 1);
    assert!(sim.engine.calls().is_empty());
}

#[test]
fn replacing_a_leg_moves_the_bridge_and_hangs_up_the_old_one() {
    let mut sim = Sim::new(config(|_| {}));
    let call = answered_call(&mut sim, "c1");
    let customer = sim.engine.customer_leg(call).expect("customer");
    let a = sim
        .act(|e, now| e.place_leg(now, call, &target("2001", 5090), &[]))
        .expect("a");
    far_end_answers(&mut sim, 5090, 200);
    assert!(sim.act(|e, _| e.bridge(call, customer, a)));
    let b = sim
        .act(|e, now| e.place_leg(now, call, &target("2002", 5092), &[]))
        .expect("b");
    // Not answered yet: it cannot take A's place.
    assert!(!sim.act(|e, now| e.replace_leg(now, call, a, b)));
    far_end_answers(&mut sim, 5092, 200);
    assert!(sim.act(|e, now| e.replace_leg(now, call, a, b)));

    let bye = sim.sent.last().expect("BYE").text.clone();
    assert!(
        bye.starts_with("BYE sip:far@127.0.0.1:5090"),
        "A is hung up: {bye}"
    );
    assert_eq!(sim.engine.call_legs(call), vec![customer, b]);
    assert_eq!(sim.bridged.len(), 2, "bridged again, with B");
    assert_eq!(sim.open_legs(call), 2, "A's media closed, B's open");
    let before = sim.rtp_packets;
    sim.customer_rtp(call, "127.0.0.1:6000".parse().expect("a"), &rtp(1));
    assert_eq!(sim.rtp_packets, before + 1, "the caller now reaches B");
    // A's 200 to the BYE ends its transaction; the call goes on with B.
    respond(&mut sim, far_end(5090), &bye, 200);
    assert_eq!(sim.engine.calls(), vec![call]);
}

#[test]
fn a_refused_or_silent_leg_goes_and_the_call_stays() {
    let mut sim = Sim::new(config(|_| {}));
    let call = answered_call(&mut sim, "c1");
    let customer = sim.engine.customer_leg(call).expect("customer");
    sim.act(|e, now| e.place_leg(now, call, &target("busy", 5094), &[]))
        .expect("placed");
    far_end_answers(&mut sim, 5094, 486);
    let ack = sim.sent.last().expect("ACK").text.clone();
    assert!(
        ack.starts_with("ACK sip:busy@127.0.0.1:5094"),
        "the 486 is ACKed in its transaction: {ack}"
    );
    assert_eq!(sim.engine.call_legs(call), vec![customer]);

    // Nobody answers at all: timer B (64 * T1) ends the leg.
    let start = sim.now;
    let leg = sim
        .act(|e, now| e.place_leg(now, call, &target("void", 5096), &[]))
        .expect("placed");
    // The caller keeps talking, so the IVR's silent-caller routine does
    // not end the call meanwhile.
    for _ in 0..31 {
        sim.media_event(call, hotline::media::session::MediaEvent::Speech);
        sim.run_for(secs(1));
    }
    assert_eq!(sim.engine.call_legs(call), vec![customer, leg]);
    let invites = sim
        .sent
        .iter()
        .filter(|s| s.peer == far_end(5096) && s.text.starts_with("INVITE "))
        .count();
    assert!(invites >= 6, "timer A retransmits: {invites}");
    sim.run_for(secs(2));
    assert_eq!(sim.engine.call_legs(call), vec![customer]);
    assert!(sim.now - start >= secs(32));
    assert_eq!(sim.records.len(), 0, "the call itself goes on");

    // No call, no leg.
    let gone = CallKey(9_999);
    assert!(sim
        .act(|e, now| e.place_leg(now, gone, &target("x", 5098), &[]))
        .is_err());
    assert!(!sim.act(|e, _| e.bridge(gone, LegKey(1), LegKey(2))));
}
