//! Bad input gets a clear answer or is dropped and counted; never a panic.

mod common;

use std::time::Duration;

use common::*;
use hotline::ids::CallKey;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn status_of(sim: &Sim) -> Vec<String> {
    sim.sent
        .iter()
        .map(|s| s.text.lines().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn each_kind_of_bad_request_gets_its_answer() {
    let base = invite("bad", "z9hG4bK-1", Some(SDP_OFFER));
    let cases: Vec<(String, &str)> = vec![
        (
            base.replace("Content-Length: ", "Content-Length: x"),
            "SIP/2.0 400",
        ),
        (base.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), "SIP/2.0 400"),
        (
            base.replace(
                "INVITE sip:4008@127.0.0.1:5060",
                "INVITE http://example.com/",
            ),
            "SIP/2.0 416",
        ),
        (
            base.replace(
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nRequire: 100rel\r\n",
            ),
            "SIP/2.0 420",
        ),
        (
            invite(
                "bad",
                "z9hG4bK-1",
                Some(&SDP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18")),
            ),
            "SIP/2.0 488",
        ),
        (
            base.replace("INVITE sip:", "FROB sip:")
                .replace("CSeq: 1 INVITE", "CSeq: 1 FROB"),
            "SIP/2.0 501",
        ),
        (
            base.replace("INVITE sip:", "OPTIONS sip:")
                .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"),
            "SIP/2.0 200",
        ),
        (
            in_dialog("INFO", "nosuch", "z9hG4bK-i", 2, "t", None),
            "SIP/2.0 481",
        ),
    ];
    for (i, (msg, expected)) in cases.iter().enumerate() {
        let mut sim = Sim::new(config(|_| {}));
        let msg = msg.replace("z9hG4bK-1", &format!("z9hG4bK-case{i}"));
        sim.send(&msg);
        let got = status_of(&sim);
        assert!(
            got.iter().any(|l| l.starts_with(expected)),
            "case {i}: expected {expected}, got {got:?}"
        );
        if msg.starts_with("INVITE") {
            assert_eq!(
                sim.records.len(),
                1,
                "case {i}: a refused INVITE leaves a record"
            );
            let code: u16 = expected[8..11].parse().expect("code");
            assert_eq!(sim.records[0].sip_status, code, "case {i}");
        }
        if *expected == "SIP/2.0 400" {
            let reason = &got
                .iter()
                .find(|l| l.starts_with("SIP/2.0 400"))
                .expect("400")[12..];
            assert!(!reason.trim().is_empty(), "400 carries a reason");
        }
    }
}

#[test]
fn unanswerable_datagrams_are_dropped_and_counted() {
    let mut sim = Sim::new(config(|_| {}));
    let peer = sim.peer();
    for junk in [
        &b""[..],
        b"\x00\x01\x02",
        b"INVITE sip:a SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"hello world",
    ] {
        sim.send_bytes(peer, junk);
    }
    assert!(sim.sent.is_empty(), "nothing to answer to");
    assert_eq!(sim.engine.counters().datagrams_dropped, 5);
}

/// One random change to `buf`: a byte replaced, the end cut off, a
/// separator inserted, a slice repeated, a byte removed, or digits
/// inserted (overlong numbers).
fn mutate_once(rng: &mut StdRng, buf: &mut Vec<u8>) {
    let len = buf.len().max(1);
    match rng.random_range(0..6) {
        0 => {
            let at = rng.random_range(0..len);
            if at < buf.len() {
                buf[at] = rng.random();
            }
        }
        1 => {
            let at = rng.random_range(0..len);
            buf.truncate(at);
        }
        2 => {
            let at = rng.random_range(0..=buf.len());
            let b = [
                b':', b';', b'<', b'>', b'"', b',', b'\r', b'\n', b' ', b'=', b'@', b'/', b'\\',
            ];
            buf.insert(at, b[rng.random_range(0..b.len())]);
        }
        3 => {
            // Duplicate a slice (header repeated, body doubled).
            let a = rng.random_range(0..len);
            let b = (a + rng.random_range(0..64)).min(buf.len());
            let piece = buf.get(a..b).map(|p| p.to_vec()).unwrap_or_default();
            buf.extend_from_slice(&piece);
        }
        4 => {
            let at = rng.random_range(0..len);
            if at < buf.len() {
                buf.remove(at);
            }
        }
        _ => {
            let n: String = rng.random_range(0..u64::MAX).to_string();
            let at = rng.random_range(0..=buf.len());
            for (k, c) in n.bytes().enumerate() {
                buf.insert((at + k).min(buf.len()), c);
            }
        }
    }
}

/// An RTP packet from the caller: payload type `pt`, `payload` bytes.
fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let len = rtp_rs::RtpPacketBuilder::new()
        .payload_type(pt)
        .ssrc(5)
        .sequence(rtp_rs::Seq::from(seq))
        .timestamp(u32::from(seq) * 160)
        .payload(payload)
        .build_into(&mut buf)
        .expect("rtp");
    buf[..len].to_vec()
}

/// Places a call (INVITE, answer, ACK) and returns its media session's key.
fn live_call(sim: &mut Sim, call_id: &str) -> CallKey {
    sim.send(&invite(
        call_id,
        &format!("z9hG4bK-{call_id}"),
        Some(SDP_OFFER),
    ));
    sim.run_for(Duration::from_millis(2000));
    let tag = sim.to_tag_for(call_id);
    sim.send(&in_dialog("ACK", call_id, "z9hG4bK-ack", 1, &tag, None));
    *sim.media_started.last().expect("media started")
}

/// Mutated SIP messages, SDP bodies and RTP datagrams, seeded, more than
/// 100,000 of them: the engine and the media session must never panic,
/// and afterwards still answer OPTIONS and carry a whole call.
#[test]
fn a_hundred_thousand_mutated_messages() {
    const SIP: u32 = 100_000;
    const SDP: u32 = 20_000;
    const RTP: u32 = 60_000;
    let mut sim = Sim::new(config(|c| {
        c.calls.max_calls_per_second = 1_000_000;
        c.calls.max_calls = 100_000;
        // Parsing is under test here, not flood bans (tests/sim_guard.rs):
        // thousands of REGISTERs a second from one address would be banned.
        c.security.register_rate = u32::MAX;
    }));
    let peer = sim.peer();
    let mut rng = StdRng::seed_from_u64(4475);
    let mut buf = Vec::with_capacity(4096);

    // 1. Whole SIP messages, mutated anywhere.
    let seeds = [
        invite("m", "z9hG4bK-m", Some(SDP_OFFER)),
        in_dialog("BYE", "m", "z9hG4bK-b", 2, "t", None),
        cancel("m", "z9hG4bK-m"),
        in_dialog("INVITE", "m", "z9hG4bK-r", 3, "t", Some(SDP_OFFER)),
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: m\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n".to_string(),
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-reg\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=r\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.1:5070>;expires=60\r\nAuthorization: Digest username=\"1001\", realm=\"hotline\", nonce=\"abc\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n".to_string(),
    ];
    for i in 0..SIP {
        buf.clear();
        buf.extend_from_slice(seeds[i as usize % seeds.len()].as_bytes());
        for _ in 0..rng.random_range(1..6) {
            mutate_once(&mut rng, &mut buf);
        }
        sim.send_bytes(peer, &buf);
        if i % 1000 == 0 {
            sim.run_for(Duration::from_millis(50));
            sim.sent.clear();
        }
    }

    // 2. SDP bodies, mutated inside an INVITE whose Content-Length is then
    // made right, so that each reaches the offer/answer code.
    let mut sdp_answers = 0u32;
    for i in 0..SDP {
        buf.clear();
        buf.extend_from_slice(SDP_OFFER.as_bytes());
        for _ in 0..rng.random_range(1..4) {
            mutate_once(&mut rng, &mut buf);
        }
        let mut message = invite(&format!("sdp{i}"), &format!("z9hG4bK-sdp{i}"), Some(""))
            .replace(
                "Content-Length: 0",
                &format!("Content-Length: {}", buf.len()),
            )
            .into_bytes();
        message.extend_from_slice(&buf);
        sim.send_bytes(peer, &message);
        // Each got an answer (180, or 488 for an unusable offer, 503 when
        // the RTP ports ran out), never silence.
        sdp_answers += sim
            .sent
            .iter()
            .filter(|s| s.text.contains(&format!("Call-ID: sdp{i}\r\n")))
            .filter(|s| !s.text.starts_with("SIP/2.0 100"))
            .count()
            .min(1) as u32;
        if i % 1000 == 0 {
            sim.run_for(Duration::from_millis(50));
        }
        sim.sent.clear();
    }
    assert_eq!(
        sdp_answers, SDP,
        "every SDP offer got a final or ringing answer"
    );
    // The accepted offers hold RTP ports until their unacknowledged answers
    // time out (timer H, 64 * T1 = 32 s): let them.
    sim.run_for(Duration::from_secs(40));
    sim.sent.clear();

    // 3. RTP datagrams into a live call's media session: audio, RFC 4733
    // events and header oddities (CSRCs, extension, padding bits) mutated.
    let mut call = live_call(&mut sim, "rtp0");
    let from: std::net::SocketAddr = "127.0.0.1:6000".parse().expect("addr");
    let pcmu = [0xffu8; 160];
    let mut rtp_seeds = vec![
        rtp(0, 1, &pcmu),
        rtp(101, 2, &[5, 0x0a, 0, 160]),
        rtp(101, 3, &[11, 0x8a, 1, 64]),
        rtp(8, 4, &[0xd5; 160]),
    ];
    let mut odd = rtp(0, 5, &pcmu);
    odd[0] |= 0x2f; // padding bit and 15 CSRCs the packet does not hold
    rtp_seeds.push(odd);
    let mut ext = rtp(0, 6, &pcmu);
    ext[0] |= 0x10; // an extension header that is not there
    rtp_seeds.push(ext);
    let mut calls = 1;
    for i in 0..RTP {
        buf.clear();
        buf.extend_from_slice(&rtp_seeds[i as usize % rtp_seeds.len()]);
        for _ in 0..rng.random_range(0..4) {
            mutate_once(&mut rng, &mut buf);
        }
        if !sim.media.contains_key(&call) {
            // The IVR or a timeout ended the call: place another.
            calls += 1;
            call = live_call(&mut sim, &format!("rtp{calls}"));
        }
        let packet = buf.clone();
        sim.customer_rtp(call, from, &packet);
        if i % 50 == 0 {
            sim.run_for(Duration::from_millis(20));
            sim.sent.clear();
        }
    }
    let cases = SIP + SDP + RTP;
    assert!(cases >= 100_000);

    // Let every half-finished call run out (timer H is 64 * T1 = 32 s,
    // a BYE's timer F 32 s more), then check the engine still works.
    sim.run_for(Duration::from_secs(70));
    sim.sent.clear();
    sim.send(&in_dialog(
        "OPTIONS",
        "after",
        "z9hG4bK-after",
        1,
        "x",
        None,
    ));
    assert_eq!(status_of(&sim), ["SIP/2.0 200 OK"]);

    // And a whole call: ringing at once, answer, media, caller's BYE.
    sim.sent.clear();
    let records = sim.records.len();
    let key = live_call(&mut sim, "normal");
    let tag = sim.to_tag_for("normal");
    let lines = status_of(&sim);
    assert_eq!(
        lines[..3],
        [
            "SIP/2.0 100 Trying",
            "SIP/2.0 180 Ringing",
            "SIP/2.0 200 OK"
        ]
    );
    assert!(sim.media.contains_key(&key), "media session running");
    sim.run_for(Duration::from_secs(3));
    assert!(sim.rtp_packets > 0, "prompts played");
    sim.sent.clear();
    sim.send(&in_dialog("BYE", "normal", "z9hG4bK-bye", 2, &tag, None));
    assert_eq!(status_of(&sim), ["SIP/2.0 200 OK"]);
    let record = sim.records[records..]
        .iter()
        .find(|r| r.sip_call_id == "normal")
        .expect("the call's record");
    assert_eq!(record.outcome, hotline::cdr::Outcome::CallerHangup);
}

/// An OPTIONS with `extra` header lines added before Content-Length.
fn options_with(extra: &str) -> String {
    in_dialog("OPTIONS", "limits", "z9hG4bK-lim", 1, "x", None)
        .replace("Content-Length: 0", &format!("{extra}Content-Length: 0"))
}

#[test]
fn header_count_and_line_limits_come_from_the_config() {
    let mut sim = Sim::new(config(|c| {
        c.sip.limits.max_headers = 20;
        c.sip.limits.max_header_line = 300;
    }));
    // in_dialog's OPTIONS has 7 header fields (Via, Max-Forwards, From,
    // To, Call-ID, CSeq, Content-Length); 13 more make 20, the limit.
    let pad = |n: usize| {
        (0..n)
            .map(|i| format!("X-Pad-{i}: v\r\n"))
            .collect::<String>()
    };
    assert_eq!(options_with("").matches("\r\n").count() - 2, 7);
    sim.send(&options_with(&pad(13)));
    sim.send(&options_with(&pad(14)).replace("z9hG4bK-lim", "z9hG4bK-lim2"));
    // "X-Long: " is 8 bytes: 292 more make a 300-byte field, the limit;
    // 293 make 301.
    let long = |n: usize| format!("X-Long: {}\r\n", "a".repeat(n));
    sim.send(&options_with(&long(292)).replace("z9hG4bK-lim", "z9hG4bK-lim3"));
    sim.send(&options_with(&long(293)).replace("z9hG4bK-lim", "z9hG4bK-lim4"));
    // The same bytes folded over short lines are one long field.
    let folded = format!("X-Long: {}\r\n", vec!["a".repeat(50); 6].join("\r\n "));
    sim.send(&options_with(&folded).replace("z9hG4bK-lim", "z9hG4bK-lim5"));
    assert_eq!(
        status_of(&sim),
        [
            "SIP/2.0 200 OK",
            "SIP/2.0 400 Too Many Headers",
            "SIP/2.0 200 OK",
            "SIP/2.0 400 Header Too Long",
            "SIP/2.0 400 Header Too Long",
        ]
    );
}

#[test]
fn an_oversized_message_is_answered_513_or_dropped_and_counted() {
    let mut sim = Sim::new(config(|c| c.sip.limits.max_message_size = 1024));
    let peer = sim.peer();
    let base = options_with("X-Pad: \r\n");
    // Pad the X-Pad value so the message is exactly 1024 bytes, then 1025.
    let sized = |n: usize, branch: &str| {
        let padded = base.replace("X-Pad: ", &format!("X-Pad: {}", "p".repeat(n - base.len())));
        assert_eq!(padded.len(), n);
        padded.replace("z9hG4bK-lim", branch)
    };
    sim.send(&sized(1024, "z9hG4bK-at"));
    sim.send(&sized(1025, "z9hG4bK-over"));
    // 2000 bytes with no head to answer: dropped.
    sim.send_bytes(peer, &[b'x'; 2000]);
    // A body declared past the limit (2000 > 1024 - head): 413.
    let invite =
        invite("big", "z9hG4bK-big", None).replace("Content-Length: 0", "Content-Length: 2000");
    sim.send(&invite);
    assert_eq!(
        status_of(&sim),
        [
            "SIP/2.0 200 OK",
            "SIP/2.0 513 Message Too Large",
            "SIP/2.0 413 Request Entity Too Large",
        ]
    );
    assert!(sim.sent[1].text.contains("branch=z9hG4bK-over"));
    assert_eq!(
        sim.engine.counters().oversized,
        2,
        "the 1025 and 2000 bytes"
    );
    assert_eq!(sim.engine.counters().datagrams_dropped, 1, "the 2000 bytes");
    // A refused INVITE still leaves its record.
    assert_eq!(sim.records.len(), 1);
    assert_eq!(sim.records[0].sip_status, 413);
}

#[test]
fn a_parameter_value_that_is_one_quote_is_a_400() {
    // `;p="` once made the quoted-string check compute 0 - 1 (a panic in
    // a build with overflow checks); it is a malformed Contact.
    let mut sim = Sim::new(config(|_| {}));
    let msg = invite("quote", "z9hG4bK-q", Some(SDP_OFFER)).replace(
        "Contact: <sip:13800138000@127.0.0.1:5070>",
        "Contact: <sip:13800138000@127.0.0.1:5070>;p=\"",
    );
    sim.send(&msg);
    assert_eq!(status_of(&sim), ["SIP/2.0 400 Bad Contact"]);
}
