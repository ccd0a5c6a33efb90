//! No record is lost to a crash: calls end, the engine is killed with
//! SIGKILL, and every line in the record file still parses (or is a sealed
//! torn line a reader skips), with a record for every call that ended. A
//! restarted engine appends cleanly after it. Needs no external tool: a
//! small SIP client over loopback UDP drives the real binary.

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use hotline::cdr::{read_records, Outcome};
use support::{base_config, set_key, EnginePorts, Hotline};

const SIP_PORT: u16 = 15100;

/// The default config on this file's ports, answering at once.
fn start() -> Hotline {
    let ports = EnginePorts {
        sip: SIP_PORT,
        api: 18100,
        rtp: (26000, 26199),
    };
    let config = set_key(&base_config(ports), "[calls]", "answer_after", "\"0s\"");
    Hotline::start(ports, &config, &[])
}

struct Client {
    socket: UdpSocket,
}

impl Client {
    fn new() -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        socket.connect(("127.0.0.1", SIP_PORT)).expect("connect");
        Client { socket }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    fn send(&self, text: &str) {
        self.socket.send(text.as_bytes()).expect("send");
    }

    /// Waits for a response whose status line starts with `status`.
    fn expect(&self, status: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 8192];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.starts_with(status) {
                    return text;
                }
            }
        }
        panic!("no {status} within 5 s");
    }

    fn headers(
        &self,
        call_id: &str,
        branch: &str,
        method: &str,
        cseq: u32,
        to_tag: &str,
    ) -> String {
        let p = self.port();
        let to_tag = if to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={to_tag}")
        };
        format!(
            "Via: SIP/2.0/UDP 127.0.0.1:{p};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:1390000@127.0.0.1:{p}>;tag=c\r\nTo: <sip:4008@127.0.0.1:{SIP_PORT}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:c@127.0.0.1:{p}>\r\n"
        )
    }

    /// INVITE and ACK; returns the To tag.
    fn call(&self, call_id: &str) -> String {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
        let head = self.headers(call_id, &format!("z9hG4bK-i-{call_id}"), "INVITE", 1, "");
        self.send(&format!(
            "INVITE sip:4008@127.0.0.1:{SIP_PORT} SIP/2.0\r\n{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ));
        let ok = self.expect("SIP/2.0 200");
        let tag = ok
            .lines()
            .find(|l| l.starts_with("To:"))
            .and_then(|l| l.split("tag=").nth(1))
            .expect("To tag")
            .trim()
            .to_string();
        let head = self.headers(call_id, &format!("z9hG4bK-a-{call_id}"), "ACK", 1, &tag);
        self.send(&format!(
            "ACK sip:hotline@127.0.0.1:{SIP_PORT} SIP/2.0\r\n{head}Content-Length: 0\r\n\r\n"
        ));
        tag
    }

    fn bye(&self, call_id: &str, tag: &str) {
        let head = self.headers(call_id, &format!("z9hG4bK-b-{call_id}"), "BYE", 2, tag);
        self.send(&format!(
            "BYE sip:hotline@127.0.0.1:{SIP_PORT} SIP/2.0\r\n{head}Content-Length: 0\r\n\r\n"
        ));
        self.expect("SIP/2.0 200");
    }
}

fn all_lines(cdr: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(cdr).expect("cdr dir").flatten() {
        text.push_str(&std::fs::read_to_string(entry.path()).expect("read"));
    }
    text
}

#[test]
fn sigkill_loses_no_record_of_a_finished_call() {
    let mut engine = start();
    let client = Client::new();
    for i in 0..20 {
        let id = format!("done-{i}");
        let tag = client.call(&id);
        client.bye(&id, &tag);
    }
    // Calls still up at the moment of the kill: they never ended, so they
    // have no record; that is the one thing a kill may take.
    for i in 0..5 {
        client.call(&format!("open-{i}"));
    }
    // Records are fsynced within milliseconds of each call's end.
    std::thread::sleep(Duration::from_millis(300));
    engine.kill();

    let text = all_lines(&engine.records_dir());
    let (records, skipped) = read_records(&text);
    assert_eq!(skipped, 0, "no torn line after the kill:\n{text}");
    let mut done: Vec<_> = records
        .iter()
        .filter(|r| r.sip_call_id.starts_with("done-"))
        .map(|r| r.sip_call_id.clone())
        .collect();
    done.sort();
    done.dedup();
    assert_eq!(done.len(), 20, "every finished call has its record");
    assert!(records.iter().all(|r| r.outcome == Outcome::CallerHangup));

    // Simulate a write torn by the crash, then restart: the new engine
    // seals it and appends whole lines after it.
    let file = std::fs::read_dir(engine.records_dir())
        .expect("cdr dir")
        .flatten()
        .next()
        .expect("a record file")
        .path();
    let mut torn = std::fs::read(&file).expect("read");
    torn.extend_from_slice(b"{\"version\":1,\"call_id\":\"hl-torn");
    std::fs::write(&file, torn).expect("write");

    engine.restart();
    let client = Client::new();
    let tag = client.call("after-restart");
    client.bye("after-restart", &tag);
    std::thread::sleep(Duration::from_millis(300));
    let (records, skipped) = read_records(&all_lines(&engine.records_dir()));
    assert_eq!(skipped, 1, "only the torn line is skipped");
    assert!(records.iter().any(|r| r.sip_call_id == "after-restart"));
}
