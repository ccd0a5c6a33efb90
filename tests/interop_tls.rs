//! TLS with the real binary over loopback (docs/tls.md):
//!
//! - HTTPS: the API answers over TLS to a client trusting the test's
//!   certificate (ureq with rustls), plain HTTP on that port gets nothing,
//!   and after SIGHUP with a new pair new connections see the new
//!   certificate (on the SIP TLS port too);
//! - SIP over TLS: OPTIONS over a TLS connection is answered over it with
//!   `Via: SIP/2.0/TLS`; the TCP limits hold for TLS (connections per
//!   address, a handshake that never comes); baresip registers and calls
//!   over TLS (INVITE, 200, ACK, BYE), and an agent whose baresip
//!   registered over TLS is rung over that connection;
//! - a trunk with `transport = "tls"` is reached over TLS, its
//!   certificate verified against its `tls_ca` for its `domain`;
//! - a missing or mismatched pair stops the start (and check-config)
//!   naming the file; the documented openssl command makes a pair that
//!   hotline takes.
//!
//! Certificates are made here with rcgen; baresip (package baresip-core),
//! SIPp and openssl are needed for some tests: without them those are
//! skipped, or fail under `CI=true`. Ports: tests/README.md.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, ServerName};
use support::*;

// ---- ports, certificates, config ---------------------------------------------

/// Test `k`'s ports (k = 0..=4): SIP 15600 + 10k (UDP/TCP), and above it
/// SIP over TLS (next port), SIPp (2 on, control 3 on) and the trunk's TLS
/// server (8 on); the API 18800 + k, RTP 22700 + 40k, media 22900 + 20k,
/// baresip 14200 + 2k (its TLS on the next port).
fn ports(k: u16) -> Ports {
    assert!(k <= 4);
    let sip = 15600 + 10 * k;
    Ports::block(
        100 + k,
        sip,
        (22700 + 40 * k, 22700 + 40 * k + 39),
        PortBlock {
            sipp_sip: [sip + 2, sip + 4],
            sipp_control: [sip + 3, sip + 5],
            media: 22900 + 20 * k,
            api: 18800 + k,
        },
    )
}

fn tls_port(engine: &Engine) -> u16 {
    engine.ports.sip + 1
}

/// A self-signed pair for `names` (IP addresses or DNS names): (PEM
/// certificate, PEM key, DER certificate).
fn make_pair(names: &[&str]) -> (String, String, CertificateDer<'static>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names).expect("rcgen");
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().clone(),
    )
}

/// config/default.toml on test `k`'s ports with `[tls]` naming cert.pem
/// and key.pem beside it, SIP over TLS on the port after SIP's, and the
/// TCP limits `limits` (key, value) set.
fn tls_config(ports: &Ports, limits: &[(&str, &str)], extra: &str) -> String {
    let mut text = base_config(ports.engine());
    text = set_key(&text, "[calls]", "answer_after", "\"1s\"");
    text = set_key(&text, "[calls]", "drain_timeout", "\"2s\"");
    // baresip 1.0 answers only MD5 challenges (tests/interop_acd.rs).
    text = set_key(&text, "[registrar]", "algorithms", "[\"MD5\"]");
    for (key, value) in limits {
        text = set_key(&text, "[sip.limits]", key, value);
    }
    format!(
        "{text}\n[tls]\ncertificate = \"cert.pem\"\nkey = \"key.pem\"\n\
         sip_listen = [\"127.0.0.1:{}\"]\n{extra}",
        ports.sip + 1
    )
}

fn start(k: u16, limits: &[(&str, &str)], extra: &str) -> (Engine, CertificateDer<'static>) {
    let p = ports(k);
    let (cert, key, der) = make_pair(&["127.0.0.1"]);
    let config = tls_config(&p, limits, extra);
    let engine = Engine::start_with_files(p, &config, &[("cert.pem", &cert), ("key.pem", &key)]);
    (engine, der)
}

/// SIPp's number (4000) goes straight to the consultation queue.
const STRAIGHT_TO_QUEUE: &str = "\n[[ivr.numbers]]\nnumber = \"4000\"\nlanguage = \"en\"\n\
    entry = \"consultation_queue\"\nno_agents = \"no_agents\"\n";

// ---- clients -------------------------------------------------------------------

#[allow(deprecated)] // ring, as the engine (src/shell/tls.rs)
fn client_config(root: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("a root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `port` trusting only `root`, handshake done.
fn tls_connect(port: u16, root: &CertificateDer<'static>) -> Result<TlsStream, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let conn =
        rustls::ClientConnection::new(client_config(root), name).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(stream)
}

/// Reads one SIP message (head and Content-Length body) from `stream`.
fn read_message(stream: &mut impl Read) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&buf))),
            Ok(_) => buf.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(head + &String::from_utf8_lossy(&body))
}

fn options(call_id: &str, local_port: u16) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:{local_port};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=probe\r\n\
         To: <sip:127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends OPTIONS over `stream` and returns the answer read from it.
fn ask_options(stream: &mut TlsStream, call_id: &str) -> Result<String, String> {
    let local = stream.sock.local_addr().map_err(|e| e.to_string())?.port();
    stream
        .write_all(options(call_id, local).as_bytes())
        .map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    read_message(stream)
}

/// GET `path` over HTTPS, trusting only `root`: (status, body).
fn https_get(
    port: u16,
    path: &str,
    root: &CertificateDer<'static>,
) -> Result<(u16, String), String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = RootCerts::Specific(Arc::new(vec![
        Certificate::from_der(root.as_ref()).to_owned()
    ]));
    let agent = ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut response = agent
        .get(format!("https://127.0.0.1:{port}{path}"))
        .call()
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// Rewrites the engine's cert.pem and key.pem with a new pair and sends
/// SIGHUP; returns the new certificate once the engine says it took it.
fn new_pair_and_hup(engine: &mut Engine) -> CertificateDer<'static> {
    let (cert, key, der) = make_pair(&["127.0.0.1"]);
    fs::write(engine.path().join("cert.pem"), cert).expect("write cert");
    fs::write(engine.path().join("key.pem"), key).expect("write key");
    engine.signal(Signal::Hup);
    wait_for_log(engine, "TLS certificate reloaded");
    der
}

fn wait_for_log(engine: &Engine, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !engine.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            engine.log_tail()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

// ---- HTTPS -----------------------------------------------------------------------

#[test]
fn https_serves_the_api_refuses_plain_http_and_takes_a_new_certificate_on_sighup() {
    let (mut engine, first) = start(0, &[], "");
    let api = engine.api_port();
    assert!(
        engine.log_text().contains("HTTPS API listening"),
        "{}",
        engine.log_tail()
    );
    let (status, body) = https_get(api, "/api/v1/status", &first).expect("HTTPS");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(json.get("calls").is_some(), "{json}");

    // Plain HTTP on the HTTPS port: the handshake fails, nothing is served.
    let mut plain = TcpStream::connect(("127.0.0.1", api)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    plain
        .write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP was served: {}",
        String::from_utf8_lossy(&answer)
    );
    let plain_client = ureq::get(format!("http://127.0.0.1:{api}/api/v1/status")).call();
    assert!(plain_client.is_err(), "plain HTTP answered");

    // `hotline campaign --config` talks HTTPS, trusting the config's pair.
    let cli = engine::command()
        .args(["campaign", "list", "--config"])
        .arg(engine.config_path())
        .output()
        .expect("hotline campaign");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    // A client that trusts another certificate is refused.
    let (_, _, stranger) = make_pair(&["127.0.0.1"]);
    assert!(https_get(api, "/api/v1/status", &stranger).is_err());

    // SIGHUP with a new pair: new connections see it, on HTTPS and SIP.
    let second = new_pair_and_hup(&mut engine);
    let (status, _) = https_get(api, "/api/v1/status", &second).expect("the new certificate");
    assert_eq!(status, 200);
    assert!(
        https_get(api, "/api/v1/status", &first).is_err(),
        "the old certificate is still served"
    );
    let mut sip = tls_connect(tls_port(&engine), &second).expect("SIP TLS, new certificate");
    let answer = ask_options(&mut sip, "after-hup").expect("OPTIONS");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(tls_connect(tls_port(&engine), &first).is_err());

    // A mismatched pair on SIGHUP is refused; the running one stays.
    let (_, other_key, _) = make_pair(&["127.0.0.1"]);
    fs::write(engine.path().join("key.pem"), other_key).expect("write key");
    engine.signal(Signal::Hup);
    wait_for_log(&engine, "TLS certificate not reloaded");
    assert!(engine
        .log_text()
        .contains("does not belong to the certificate"));
    let (status, _) = https_get(api, "/api/v1/status", &second).expect("still served");
    assert_eq!(status, 200);
    let status = engine.stop();
    assert!(status.success(), "{}", engine.log_tail());
}

// ---- SIP over TLS: the engine's own client ---------------------------------------

#[test]
fn options_over_tls_is_answered_over_the_same_connection_within_the_tcp_limits() {
    let limits = [
        ("max_tcp_connections_per_ip", "2"),
        ("tcp_message_timeout", "\"1s\""),
    ];
    let (mut engine, root) = start(1, &limits, "");
    let port = tls_port(&engine);
    let mut first = tls_connect(port, &root).expect("TLS");
    let answer = ask_options(&mut first, "tls-opt-1").expect("an answer");
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    let local = first.sock.local_addr().expect("addr").port();
    assert!(
        answer.contains(&format!(
            "Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK-tls-opt-1;rport={local};received=127.0.0.1"
        )) || answer.contains(&format!(
            "Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK-tls-opt-1;rport={local}"
        )),
        "{answer}"
    );
    // The connection stays up: a second request, the same way.
    let again = ask_options(&mut first, "tls-opt-2").expect("a second answer");
    assert!(again.contains("Call-ID: tls-opt-2"), "{again}");

    // max_tcp_connections_per_ip = 2: a third connection is closed at once.
    let _second = tls_connect(port, &root).expect("the second connection");
    assert!(
        tls_connect(port, &root)
            .and_then(|mut s| ask_options(&mut s, "third"))
            .is_err(),
        "a third TLS connection from one address was served"
    );
    drop(_second);

    // A connection that never says hello is closed after
    // tcp_message_timeout (1 s), and frees its place.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let closed = matches!(idle.read(&mut byte), Ok(0) | Err(_));
    assert!(closed && started.elapsed() < Duration::from_secs(4));

    // Plain SIP on the TLS port gets no answer.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    plain
        .write_all(options("plain", 5999).as_bytes())
        .expect("send");
    assert!(
        read_message(&mut plain).is_err(),
        "plain SIP answered on TLS"
    );
    let status = engine.stop();
    assert!(status.success(), "{}", engine.log_tail());
}

// ---- SIP over TLS: baresip -------------------------------------------------------

/// baresip on test `k`'s phone ports as `agent`, registering over TLS
/// (its account says `transport=tls`) and trusting `ca`; it answers every
/// call. `extra` are its arguments (`-e` commands, `-t`).
struct Baresip {
    child: Child,
    dir: PathBuf,
}

impl Baresip {
    fn start(engine: &Engine, agent: &str, extra: &[&str]) -> Baresip {
        let k = engine.ports.n - 100;
        let dir = engine.path().join(format!("baresip-{agent}"));
        fs::create_dir_all(&dir).expect("baresip folder");
        let media = engine.ports.sipp(0).media + 12;
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip}\n\
             net_interface\t\t127.0.0.1\n\
             rtp_ports\t\t{media}-{media_end}\n\
             audio_player\t\talsa,null\n\
             audio_alert\t\talsa,null\n\
             audio_source\t\tausine,440\n\
             ausrc_srate\t\t48000\n\
             ausrc_channels\t\t2\n\
             sip_cafile\t\t{ca}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\tausine.so\n\
             module\t\t\talsa.so\n\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            sip = 14200 + 2 * k,
            media_end = media + 3,
            ca = engine.path().join("cert.pem").display(),
        );
        fs::write(dir.join("config"), config).expect("baresip config");
        let account = format!(
            "<sip:{agent}@127.0.0.1:{port};transport=tls>;auth_pass=secret;regint=60;answermode=auto\n",
            port = tls_port(engine)
        );
        fs::write(dir.join("accounts"), account).expect("baresip accounts");
        let out = fs::File::create(dir.join("baresip.out")).expect("baresip output");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .arg("-s") // SIP trace
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output file"))
            .stderr(out)
            .spawn()
            .expect("start baresip");
        Baresip { child, dir }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir.join("baresip.out")).unwrap_or_default())
            .into_owned()
    }

    fn wait_for(&mut self, engine: &Engine, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "baresip never said {needle:?}.\n--- baresip ---\n{}\n--- hotline ---\n{}",
                tail(&self.output(), 6000),
                engine.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The heads of the messages baresip's SIP trace shows arriving over
    /// TLS from hotline's TLS port that start with `start`. (A trace entry
    /// is a line `TLS <from> -> <to>`, possibly after a status line, then
    /// the message.)
    fn received(&self, from_port: u16, start: &str) -> Vec<String> {
        let marker = format!("TLS 127.0.0.1:{from_port} -> ");
        let trace = self.trace();
        trace
            .match_indices(&marker)
            .filter_map(|(at, _)| {
                let rest = &trace[at..];
                let message = &rest[rest.find('\n')? + 1..];
                let head = message.split("\r\n\r\n").next().unwrap_or(message);
                head.starts_with(start).then(|| head.to_string())
            })
            .collect()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- baresip (tail) ---\n{}", tail(&self.output(), 6000));
        }
    }
}

/// Strips baresip's terminal colours.
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Baresip {
    fn trace(&self) -> String {
        plain_text(&self.output())
    }
}

#[test]
fn baresip_registers_and_calls_over_tls_and_the_call_is_answered() {
    if !require_tool("baresip") {
        return;
    }
    let (mut engine, _) = start(2, &[], "");
    let tls = tls_port(&engine);
    let dial = format!("/dial sip:4008@127.0.0.1:{tls}");
    // Registers, dials the hotline, and hangs up (BYE) when it quits at 8 s.
    let mut phone = Baresip::start(&engine, "1001", &["-t", "8", "-e", &dial]);
    phone.wait_for(&engine, "Call established", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(15);
    while engine.records().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no record:\n{}",
            engine.log_tail()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let trace = phone.trace();
    let registered = phone.received(tls, "SIP/2.0 200 OK");
    assert!(
        registered
            .iter()
            .any(|m| m.contains("CSeq:") && m.contains("REGISTER")),
        "no 200 to REGISTER over TLS:\n{trace}"
    );
    let answer = registered
        .iter()
        .find(|m| m.contains("INVITE"))
        .unwrap_or_else(|| panic!("no 200 to the INVITE over TLS:\n{trace}"));
    assert!(answer.contains("Via: SIP/2.0/TLS 127.0.0.1:"), "{answer}");
    assert!(
        answer.contains(&format!(
            "Contact: <sip:hotline@127.0.0.1:{tls};transport=tls>"
        )),
        "{answer}"
    );
    assert!(
        registered
            .iter()
            .any(|m| m.contains("CSeq:") && m.contains(" BYE")),
        "no 200 to baresip's BYE over TLS:\n{trace}"
    );
    drop(phone);
    let records = engine.stop_and_read_records();
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert!(
        r["source"]
            .as_str()
            .unwrap_or_default()
            .starts_with("tls:127.0.0.1:"),
        "{r}"
    );
    assert!(r["answered_at"].is_string(), "{r}");
    assert_eq!(r["outcome"], "caller_hangup", "{r}");
}

#[test]
fn an_agent_registered_over_tls_is_rung_over_its_connection() {
    if !require_tool("baresip") || !require_tool("sipp") {
        return;
    }
    let p = ports(3);
    let (cert, key, _) = make_pair(&["127.0.0.1"]);
    let config = tls_config(&p, &[], STRAIGHT_TO_QUEUE);
    let mut engine =
        Engine::start_with_files(p, &config, &[("cert.pem", &cert), ("key.pem", &key)]);
    let tls = tls_port(&engine);
    let mut agent = Baresip::start(&engine, "1001", &[]);
    wait_for_log(&engine, "agent registered agent=1001");
    assert!(
        engine.log_text().contains(";transport=tls"),
        "{}",
        engine.log_tail()
    );
    // A caller over UDP: queued, the agent rung over TLS, bridged, and
    // hung up by the caller after 6 s.
    let rtp = engine.ports.caller_rtp().to_string();
    let args = ["-key", "rtp_port", &rtp, "-d", "6000"];
    Sipp::spawn(&engine, 0, "uac.xml", &args, 30).expect_success(&engine);
    agent.wait_for(&engine, "terminated", Duration::from_secs(10));
    let invites = agent.received(tls, "INVITE ");
    assert_eq!(invites.len(), 1, "{}", agent.trace());
    assert!(
        invites[0].contains(&format!("Via: SIP/2.0/TLS 127.0.0.1:{tls};")),
        "{}",
        invites[0]
    );
    assert!(
        invites[0].contains(&format!(
            "Contact: <sip:hotline@127.0.0.1:{tls};transport=tls>"
        )),
        "{}",
        invites[0]
    );
    assert_eq!(agent.received(tls, "BYE ").len(), 1, "{}", agent.trace());
    drop(agent);
    let records = engine.stop_and_read_records();
    let r = records
        .iter()
        .find(|r| r["source"].as_str().is_some_and(|s| s.starts_with("udp:")))
        .unwrap_or_else(|| panic!("the caller's record: {records:#?}"));
    assert_eq!(r["agent"], "1001", "{r}");
    assert_eq!(r["disposition"], "answered", "{r}");
}

// ---- a TLS trunk ----------------------------------------------------------------------

/// A trunk's TLS server on `port` with the pair for `pbx.test`: reads
/// one INVITE, answers it 486 Busy Here, and returns what it read (or
/// the handshake's error).
#[allow(deprecated)]
fn trunk_server(
    listener: TcpListener,
    cert: &str,
    key: &str,
) -> std::sync::mpsc::Receiver<Result<String, String>> {
    use rustls_pki_types::pem::PemObject;
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let config = Arc::new(config);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(serve_one_invite(listener, config));
    });
    rx
}

/// [`trunk_server`]'s work, bounded: nothing connecting within 20 s is an
/// error.
fn serve_one_invite(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> Result<String, String> {
    {
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let tcp = loop {
            match listener.accept() {
                Ok((tcp, _)) => break tcp,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err("nothing connected within 20 s".into());
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        tcp.set_nonblocking(false).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let sni = loop {
            if !stream.conn.is_handshaking() {
                break stream.conn.server_name().map(str::to_string);
            }
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        };
        let invite = read_message(&mut stream)?;
        let header = |name: &str| {
            invite
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .to_string()
        };
        let busy = format!(
            "SIP/2.0 486 Busy Here\r\n{}\r\n{}\r\n{};tag=pbx\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
            header("Via:"),
            header("From:"),
            header("To:"),
            header("Call-ID:"),
            header("CSeq:")
        );
        stream
            .write_all(busy.as_bytes())
            .map_err(|e| e.to_string())?;
        let _ = read_message(&mut stream); // the ACK
        Ok(format!("SNI: {}\n{invite}", sni.unwrap_or_default()))
    }
}

#[test]
fn a_tls_trunk_is_reached_over_tls_and_its_certificate_verified() {
    if !require_tool("sipp") {
        return;
    }
    let p = ports(4);
    let trunk_port = p.sip + 8;
    let (trunk_cert, trunk_key, _) = make_pair(&["pbx.test"]);
    let listener = TcpListener::bind(("127.0.0.1", trunk_port)).expect("trunk port");
    let server = trunk_server(listener, &trunk_cert, &trunk_key);
    // Agent 1001 is extension 8001 of a PBX reached over TLS; every call
    // goes to the consultation queue, which rings it.
    let trunk = format!(
        "\n[[trunks]]\nname = \"pbx\"\naddress = \"127.0.0.1:{trunk_port}\"\ntransport = \"tls\"\n\
         domain = \"pbx.test\"\ntls_ca = \"pbx-ca.pem\"\ncaller_id = \"4008001234\"\n"
    );
    let mut config = tls_config(&p, &[], &format!("{STRAIGHT_TO_QUEUE}{trunk}"));
    let agent = "[[agents]]\nid = \"1001\"\n";
    assert!(config.contains(agent));
    config = config.replacen(
        agent,
        "[[agents]]\nid = \"1001\"\ntrunk = \"pbx\"\nextension = \"8001\"\n",
        1,
    );
    let (cert, key, _) = make_pair(&["127.0.0.1"]);
    let mut engine = Engine::start_with_files(
        p,
        &config,
        &[
            ("cert.pem", &cert),
            ("key.pem", &key),
            ("pbx-ca.pem", &trunk_cert),
        ],
    );
    let rtp = engine.ports.caller_rtp().to_string();
    let args = ["-key", "rtp_port", &rtp, "-d", "3000"];
    let caller = Sipp::spawn(&engine, 0, "uac.xml", &args, 30);
    let seen = server
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| Err("the trunk server did not finish".into()))
        .unwrap_or_else(|e| {
            panic!(
                "the trunk saw no INVITE over TLS: {e}\n{}",
                engine.log_tail()
            )
        });
    assert!(
        seen.starts_with("SNI: pbx.test\nINVITE sip:8001@pbx.test SIP/2.0\r\n"),
        "{seen}"
    );
    assert!(seen.contains("Via: SIP/2.0/TLS 127.0.0.1:"), "{seen}");
    assert!(
        seen.contains(&format!(
            "Contact: <sip:hotline@127.0.0.1:{};transport=tls>",
            p.sip + 1
        )),
        "{seen}"
    );
    caller.expect_success(&engine);
    let status = engine.stop();
    assert!(status.success(), "{}", engine.log_tail());
    drop(engine);

    // The same trunk showing a certificate for pbx.test that tls_ca does
    // not vouch for: hotline refuses the handshake, sends no INVITE, and
    // says why.
    let (stranger_cert, stranger_key, _) = make_pair(&["pbx.test"]);
    let listener = TcpListener::bind(("127.0.0.1", trunk_port)).expect("trunk port");
    let server = trunk_server(listener, &stranger_cert, &stranger_key);
    let engine = Engine::start_with_files(
        p,
        &config,
        &[
            ("cert.pem", &cert),
            ("key.pem", &key),
            ("pbx-ca.pem", &trunk_cert),
        ],
    );
    let caller = Sipp::spawn(&engine, 0, "uac.xml", &args, 30);
    let refused = server
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| Err("the trunk server did not finish".into()));
    assert!(refused.is_err(), "an untrusted trunk got {refused:?}");
    wait_for_log(&engine, "TLS handshake with the trunk failed");
    assert!(
        engine.log_text().contains("invalid peer certificate"),
        "{}",
        engine.log_tail()
    );
    caller.expect_success(&engine);
}

// ---- bad pairs, and the documented command ------------------------------------------

fn check_config(dir: &Path, config: &str) -> (bool, String) {
    let path = dir.join("hotline.toml");
    fs::write(&path, config).expect("write config");
    let out = engine::command()
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run hotline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn a_missing_or_mismatched_pair_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ports(0);
    let config = tls_config(&p, &[], "");
    let (ok, out) = check_config(dir.path(), &config);
    assert!(!ok);
    let cert = dir.path().join("cert.pem");
    assert!(
        out.contains(&format!(
            "cannot read the TLS certificate {}",
            cert.display()
        )),
        "{out}"
    );
    let (cert_a, _, _) = make_pair(&["127.0.0.1"]);
    let (_, key_b, _) = make_pair(&["127.0.0.1"]);
    fs::write(&cert, cert_a).expect("cert");
    fs::write(dir.path().join("key.pem"), key_b).expect("key");
    let (ok, out) = check_config(dir.path(), &config);
    assert!(!ok);
    assert!(out.contains("does not belong to the certificate"), "{out}");
    // `hotline run` refuses to start, saying the same, before it listens.
    let run = engine::command()
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("hotline.toml"))
        .current_dir(dir.path())
        .output()
        .expect("run hotline");
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(&format!(
            "the TLS key {} does not belong to the certificate {}",
            dir.path().join("key.pem").display(),
            cert.display()
        )),
        "{err}"
    );
}

/// The command docs/tls.md gives makes a pair hotline takes.
#[test]
fn the_documented_openssl_command_makes_a_pair_hotline_takes() {
    if !require_tool("openssl") {
        return;
    }
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tls.md"))
        .expect("docs/tls.md");
    let command = doc
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("openssl req "))
        .expect("an openssl command in docs/tls.md");
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("tls")).expect("tls folder");
    // As documented: run from the config's folder.
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sh");
    assert!(status.success(), "{command}");
    let config = format!(
        "{}\n[tls]\ncertificate = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n",
        base_config(ports(0).engine())
    );
    let (ok, out) = check_config(dir.path(), &config);
    assert!(ok, "{out}");
}
