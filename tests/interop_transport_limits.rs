//! `[sip.limits]` on the real sockets: the `hotline` binary is started with
//! short limits, and plain UDP sockets and TcpStreams break them. No
//! external tool is needed. Ports (one set per test, `k` = 0..=4): SIP
//! 15300 + k, API 18300 + k, RTP 28000 + 100k to + 99.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::{base_config, set_key, EnginePorts, Hotline};

/// Starts the engine for test `k` with `limits` set in `[sip.limits]`.
fn start(k: u16, limits: &[(&str, &str)]) -> Hotline {
    assert!(k < 20);
    let rtp = 28000 + 100 * k;
    let ports = EnginePorts {
        sip: 15300 + k,
        api: 18300 + k,
        rtp: (rtp, rtp + 99),
    };
    let mut text = base_config(ports);
    for (key, value) in limits {
        text = set_key(&text, "[sip.limits]", key, value);
    }
    Hotline::start(ports, &text, &[])
}

fn tcp(hotline: &Hotline) -> TcpStream {
    let s = TcpStream::connect(hotline.sip_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

fn recv(socket: &UdpSocket) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// An OPTIONS from `socket`'s port (UDP), with `pad` bytes in an X-Pad
/// header field.
fn options(socket: &UdpSocket, id: &str) -> String {
    options_padded(socket.local_addr().expect("addr").port(), "UDP", id, 0)
}

fn options_padded(port: u16, transport: &str, id: &str, pad: usize) -> String {
    format!(
        "OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK-{id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1:{port}>;tag=probe\r\n\
         To: <sip:hotline@127.0.0.1>\r\n\
         Call-ID: {id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         X-Pad: {}\r\n\
         Content-Length: 0\r\n\r\n",
        "p".repeat(pad)
    )
}

/// Reads one response (head and Content-Length body) from a TCP stream.
fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let len: usize = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                return String::from_utf8_lossy(&data[..end + 4 + len]).into_owned();
            }
        }
        let n = stream.read(&mut chunk).expect("read a response");
        assert!(n > 0, "closed before a whole response");
        data.extend_from_slice(&chunk[..n]);
    }
}

/// Waits for the server to close `stream`; returns how long that took.
/// Anything read before the close is returned too.
fn wait_closed(stream: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        assert!(started.elapsed() < limit, "not closed within {limit:?}");
        match stream.read(&mut chunk) {
            Ok(0) => return (started.elapsed(), got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (started.elapsed(), got),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn udp_datagrams_over_the_limit_are_answered_513_or_dropped() {
    let hotline = start(0, &[("max_message_size", "2000")]);
    let socket = udp();
    let port = socket.local_addr().expect("addr").port();
    // 3000 bytes with a readable head: 513, addressed to its branch.
    let big = options_padded(port, "UDP", "big", 3000);
    assert!(big.len() > 3000);
    socket
        .send_to(big.as_bytes(), hotline.sip_addr())
        .expect("send");
    let reply = recv(&socket).expect("an answer");
    assert!(
        reply.starts_with("SIP/2.0 513 Message Too Large"),
        "{reply}"
    );
    assert!(reply.contains("branch=z9hG4bK-big"), "{reply}");
    // 60000 bytes: more than the 2001-byte receive buffer; the kernel cuts
    // it, the head is still there, so 513 again.
    let huge = options_padded(port, "UDP", "huge", 60_000);
    socket
        .send_to(huge.as_bytes(), hotline.sip_addr())
        .expect("send");
    let reply = recv(&socket).expect("an answer");
    assert!(reply.starts_with("SIP/2.0 513"), "{reply}");
    assert!(reply.contains("branch=z9hG4bK-huge"), "{reply}");
    // 3000 bytes of nothing: no one to answer, dropped.
    socket
        .send_to(&[b'x'; 3000], hotline.sip_addr())
        .expect("send");
    assert_eq!(recv(&socket), None);
    // Still serving.
    socket
        .send_to(options(&socket, "after").as_bytes(), hotline.sip_addr())
        .expect("send");
    assert!(recv(&socket).expect("200").starts_with("SIP/2.0 200 OK"));
    // Each oversized datagram was logged (at debug): 3 of them.
    let logged = hotline
        .log_text()
        .matches("datagram over max_message_size")
        .count();
    assert_eq!(logged, 3, "{}", hotline.log_text());
}

#[test]
fn tcp_content_length_over_the_cap_gets_413_and_the_connection_closes() {
    // Default max_message_size: 65535 bytes.
    let hotline = start(1, &[]);
    let mut stream = tcp(&hotline);
    let port = stream.local_addr().expect("addr").port();
    // A head declaring 100000 bytes of body, and the first bytes of it.
    let head =
        options_padded(port, "TCP", "cl", 0).replace("Content-Length: 0", "Content-Length: 100000");
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(&[b'b'; 1000]).expect("write");
    let (_, got) = wait_closed(&mut stream, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("SIP/2.0 413 Request Entity Too Large\r\n"),
        "{text}"
    );
    assert!(text.contains("Call-ID: cl\r\n"), "{text}");
    // One response, then the close.
    assert_eq!(text.matches("SIP/2.0 ").count(), 1, "{text}");
}

#[test]
fn an_idle_tcp_connection_is_closed() {
    let hotline = start(2, &[("tcp_idle_timeout", "\"1s\"")]);
    let mut stream = tcp(&hotline);
    let port = stream.local_addr().expect("addr").port();
    stream
        .write_all(options_padded(port, "TCP", "idle", 0).as_bytes())
        .expect("write");
    assert!(read_response(&mut stream).starts_with("SIP/2.0 200 OK"));
    // Nothing more is sent: closed about 1 s after the last message.
    let (after, got) = wait_closed(&mut stream, Duration::from_secs(5));
    assert!(got.is_empty());
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
    // A connection that never sends anything is closed as well.
    let mut silent = tcp(&hotline);
    let (after, _) = wait_closed(&mut silent, Duration::from_secs(5));
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
}

#[test]
fn a_slow_sender_is_cut_off_at_the_message_deadline() {
    // Idle timeout far away, so only the per-message deadline can act.
    let hotline = start(
        3,
        &[
            ("tcp_idle_timeout", "\"30s\""),
            ("tcp_message_timeout", "\"2s\""),
        ],
    );
    let stream = tcp(&hotline);
    let port = stream.local_addr().expect("addr").port();
    let message = options_padded(port, "TCP", "slow", 0);
    // One byte every 100 ms: the ~250-byte message would take ~25 s, and
    // bytes keep arriving, so the connection is never idle.
    let mut writer = stream.try_clone().expect("clone");
    let started = Instant::now();
    let trickle = std::thread::spawn(move || {
        for b in message.bytes() {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut reader = stream;
    let (_, got) = wait_closed(&mut reader, Duration::from_secs(10));
    let elapsed = started.elapsed();
    assert!(got.is_empty(), "no answer to half a message");
    // Closed 2 s after the first byte (give or take scheduling).
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}"
    );
    let _ = reader.shutdown(std::net::Shutdown::Both);
    let _ = trickle.join();
}

#[test]
fn tcp_connections_are_limited_in_total_and_per_address() {
    let hotline = start(
        4,
        &[
            ("max_tcp_connections", "3"),
            ("max_tcp_connections_per_ip", "2"),
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Connects from a chosen loopback address (127.0.0.0/8 is all local).
    let connect_from = |ip: [u8; 4]| -> TcpStream {
        runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind(SocketAddr::from((ip, 0)))
                .expect("bind loopback alias");
            let stream = socket.connect(hotline.sip_addr()).await.expect("connect");
            let std = stream.into_std().expect("std");
            std.set_nonblocking(false).expect("blocking");
            std.set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            std
        })
    };
    let served = |stream: &mut TcpStream, id: &str| {
        let port = stream.local_addr().expect("addr").port();
        stream
            .write_all(options_padded(port, "TCP", id, 0).as_bytes())
            .expect("write");
        assert!(read_response(stream).starts_with("SIP/2.0 200 OK"), "{id}");
    };
    let refused = |stream: &mut TcpStream, what: &str| {
        let (after, got) = wait_closed(stream, Duration::from_secs(3));
        assert!(got.is_empty(), "{what}");
        assert!(
            after < Duration::from_secs(2),
            "{what}: closed after {after:?}"
        );
    };
    let mut a = connect_from([127, 0, 0, 1]);
    let mut b = connect_from([127, 0, 0, 1]);
    served(&mut a, "a");
    served(&mut b, "b");
    // A third from 127.0.0.1: over the 2 per address.
    let mut c = connect_from([127, 0, 0, 1]);
    refused(&mut c, "3rd from one address");
    // From 127.0.0.2: the 3rd in all, served.
    let mut d = connect_from([127, 0, 0, 2]);
    served(&mut d, "d");
    // From 127.0.0.3: the 4th in all, refused.
    let mut e = connect_from([127, 0, 0, 3]);
    refused(&mut e, "4th in all");
    // Closing one gives its place back, once hotline has closed its side
    // too: it waits up to 1 s for a last answer to send (CLOSE_GRACE).
    drop(a);
    std::thread::sleep(Duration::from_millis(1500));
    let mut f = connect_from([127, 0, 0, 3]);
    served(&mut f, "f");
    assert!(hotline.log_text().contains("connection limit reached"));
}
