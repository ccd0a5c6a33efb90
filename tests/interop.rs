//! Interop tests: the real `hotline` binary, driven by SIPp (and by raw UDP
//! for malformed requests) over loopback. Each test runs its own engine with
//! its own config, ports and record folder in a temporary directory, so the
//! tests can run in parallel.
//!
//! Needs `sipp` (Debian package `sip-tester`) on PATH: without it the SIPp
//! tests are skipped, or fail when `CI=true`. The speaking-caller test also
//! needs root (SIPp replays RTP through a raw socket).
//!
//! Scenarios live in `tests/interop/*.xml`.

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

// ---- harness: tools and ports ----------------------------------------------

/// Whether `tool` is on PATH. Missing: a skip (message on stderr), or a
/// failure under `CI=true`, where every test must really run.
fn require_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        skip_or_fail(&format!(
            "`{tool}` is not installed (Debian: apt-get install sip-tester)"
        ));
    }
    found
}

/// Raw sockets (SIPp's play_pcap_audio) need root.
fn require_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    if !root {
        skip_or_fail("needs root: SIPp's play_pcap_audio sends RTP through a raw socket");
    }
    root
}

fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("interop test cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Every port a test uses, derived from its number `n` (1..=9) so that tests
/// never collide. All below the Linux ephemeral range (32768+).
#[derive(Debug, Clone, Copy)]
struct Ports {
    n: u16,
    /// The engine's SIP port (UDP and TCP).
    sip: u16,
    /// The engine's RTP port range.
    rtp: (u16, u16),
}

impl Ports {
    fn new(n: u16) -> Ports {
        assert!((1..=9).contains(&n));
        Ports {
            n,
            sip: 15060 + n,
            rtp: (30000 + n * 200, 30000 + n * 200 + 199),
        }
    }

    /// SIPp instance `k` of this test (0 or 1): SIP port, media port (SIPp
    /// also binds media + 2) and control port.
    fn sipp(&self, k: u16) -> SippPorts {
        assert!(k < 2);
        SippPorts {
            sip: 15160 + self.n + 100 * k,
            control: 15360 + self.n + 100 * k,
            media: 16000 + self.n * 10 + 4 * k,
        }
    }

    /// A port where the test itself listens for the engine's RTP.
    fn caller_rtp(&self) -> u16 {
        16000 + self.n * 10 + 8
    }
}

#[derive(Debug, Clone, Copy)]
struct SippPorts {
    sip: u16,
    control: u16,
    media: u16,
}

// ---- harness: config and the engine process -------------------------------

/// The settings a test varies; everything else is fixed.
#[derive(Debug, Clone)]
struct Settings {
    answer_after: &'static str,
    max_calls: u32,
    language: &'static str,
    listen_after_greeting: &'static str,
    silent_wait: &'static str,
    apology_wait: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            answer_after: "1s",
            max_calls: 50,
            language: "en",
            listen_after_greeting: "1s",
            silent_wait: "2s",
            apology_wait: "2s",
        }
    }
}

/// The structure of config/default.toml; `cdr.dir` is relative to the file.
fn config_toml(ports: &Ports, s: &Settings) -> String {
    format!(
        r#"# Written by tests/interop.rs
[sip]
listen = ["127.0.0.1:{sip}"]

[media]
bind_address = "127.0.0.1"
advertised_address = "127.0.0.1"
port_min = {rtp_min}
port_max = {rtp_max}
inactivity_timeout = "60s"
speech_threshold_dbfs = -35.0
speech_min = "120ms"

[calls]
answer_after = "{answer_after}"
max_calls = {max_calls}
max_calls_per_second = 500
retry_after = "5s"

[flow]
language = "{language}"
listen_after_greeting = "{listen}"
silent_wait = "{silent_wait}"
apology_wait = "{apology_wait}"

[prompts]

[cdr]
dir = "cdr"
"#,
        sip = ports.sip,
        rtp_min = ports.rtp.0,
        rtp_max = ports.rtp.1,
        answer_after = s.answer_after,
        max_calls = s.max_calls,
        language = s.language,
        listen = s.listen_after_greeting,
        silent_wait = s.silent_wait,
        apology_wait = s.apology_wait,
    )
}

/// A running `hotline run`; killed on drop (also when a test panics).
struct Engine {
    child: Child,
    dir: tempfile::TempDir,
    ports: Ports,
    log: PathBuf,
}

impl Engine {
    fn start(ports: Ports, settings: &Settings) -> Engine {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("hotline.toml");
        fs::write(&config, config_toml(&ports, settings)).expect("write config");
        let log = dir.path().join("engine.log");
        let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info,hotline=debug")
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("engine.out")).expect("stdout file"))
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start hotline");
        let mut engine = Engine {
            child,
            dir,
            ports,
            log,
        };
        engine.wait_ready(Duration::from_secs(15));
        engine
    }

    fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.sip))
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Polls with OPTIONS until the SIP port answers 200.
    fn wait_ready(&mut self, limit: Duration) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let deadline = Instant::now() + limit;
        let mut attempt = 0;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hotline exited at start ({status}):\n{}", self.log_tail());
            }
            attempt += 1;
            let msg = options(&socket, &format!("ready-{attempt}"));
            let _ = socket.send_to(msg.as_bytes(), self.sip_addr());
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                if buf[..n].starts_with(b"SIP/2.0 200") {
                    return;
                }
            }
        }
        panic!(
            "hotline did not answer OPTIONS on {} within {limit:?}:\n{}",
            self.sip_addr(),
            self.log_tail()
        );
    }

    /// SIGTERM, then wait (the engine writes every record before exiting).
    fn stop(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let status = wait_child(&mut self.child, Duration::from_secs(10));
        status.unwrap_or_else(|| {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "hotline did not stop within 10 s of SIGTERM:\n{}",
                self.log_tail()
            )
        })
    }

    /// Stops the engine (it must exit cleanly) and returns every record.
    fn stop_and_read_records(&mut self) -> Vec<Value> {
        let status = self.stop();
        assert!(
            status.success(),
            "hotline exited with {status}:\n{}",
            self.log_tail()
        );
        let dir = self.path().join("cdr");
        let mut records = Vec::new();
        for file in files_ending(&dir, ".jsonl") {
            let text = fs::read_to_string(&file).expect("read records");
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let record: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("record is not JSON ({e}): {line}"));
                records.push(record);
            }
        }
        records
    }

    fn log_tail(&self) -> String {
        tail(&fs::read_to_string(&self.log).unwrap_or_default(), 6000)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- hotline log (test {}) ---\n{}",
                self.ports.n,
                self.log_tail()
            );
        }
    }
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn tail(text: &str, max: usize) -> String {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

// ---- harness: SIPp ----------------------------------------------------------

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// One SIPp process placing one call; killed on drop.
struct Sipp {
    child: Child,
    dir: PathBuf,
    limit: Duration,
}

impl Sipp {
    /// Starts `sipp` against `engine` with scenario `file` and `extra` args.
    /// `timeout_s` bounds the whole run (SIPp's -timeout, an error if hit).
    fn spawn(engine: &Engine, k: u16, file: &str, extra: &[&str], timeout_s: u64) -> Sipp {
        let ports = engine.ports.sipp(k);
        let dir = engine.path().join(format!("sipp{k}"));
        fs::create_dir_all(&dir).expect("sipp dir");
        let timeout = timeout_s.to_string();
        let child = Command::new("sipp")
            .arg(engine.sip_addr().to_string())
            .arg("-sf")
            .arg(scenario(file))
            .args(["-s", "4000", "-i", "127.0.0.1"])
            .args(["-p", &ports.sip.to_string()])
            .args(["-mp", &ports.media.to_string()])
            .args(["-cp", &ports.control.to_string()])
            .args(["-m", "1", "-nostdin"])
            .args(["-timeout", &timeout, "-timeout_error"])
            .args(["-trace_err", "-trace_msg"])
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout.txt")).expect("stdout file"))
            .stderr(fs::File::create(dir.join("stderr.txt")).expect("stderr file"))
            .spawn()
            .expect("start sipp");
        Sipp {
            child,
            dir,
            limit: Duration::from_secs(timeout_s + 10),
        }
    }

    /// Waits for SIPp; panics unless it exits 0 (every call succeeded).
    fn expect_success(mut self, engine: &Engine) {
        let status = wait_child(&mut self.child, self.limit);
        if status.map(|s| s.code()) == Some(Some(0)) {
            return;
        }
        panic!(
            "sipp failed ({}).\n--- sipp errors ---\n{}\n--- sipp stderr ---\n{}\n\
             --- sipp messages (tail) ---\n{}\n--- hotline log (tail) ---\n{}",
            status.map_or("timed out".to_string(), |s| s.to_string()),
            self.read("_errors.log", 4000),
            self.read("stderr.txt", 2000),
            self.read("_messages.log", 6000),
            engine.log_tail()
        );
    }

    fn read(&self, suffix: &str, max: usize) -> String {
        let text: String = files_ending(&self.dir, suffix)
            .iter()
            .map(|f| fs::read_to_string(f).unwrap_or_default())
            .collect();
        tail(&text, max)
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- harness: records, prompts, RTP -------------------------------------

/// The only record, or a panic listing all of them.
fn single(records: &[Value]) -> &Value {
    assert_eq!(records.len(), 1, "expected one record: {records:#?}");
    &records[0]
}

fn str_field<'a>(record: &'a Value, key: &str) -> &'a str {
    record[key]
        .as_str()
        .unwrap_or_else(|| panic!("record field {key} is not a string: {record}"))
}

fn u64_field(record: &Value, key: &str) -> u64 {
    record[key]
        .as_u64()
        .unwrap_or_else(|| panic!("record field {key} is not a number: {record}"))
}

/// What a prompt takes to play: whole 20 ms frames, the last one padded.
fn prompt_ms(language: &str, name: &str) -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("prompts")
        .join(language)
        .join(format!("{name}.wav"));
    let reader = hound::WavReader::open(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, 8000, "{}", path.display());
    let samples = u64::from(reader.duration());
    samples.div_ceil(160) * 20
}

/// Statistics of the RTP the engine sent to one port.
#[derive(Debug, Default)]
struct RtpStats {
    packets: usize,
    not_version_2: usize,
    payload_types: BTreeSet<u8>,
    sources: BTreeSet<SocketAddr>,
    /// Packets whose payload is not all PCMU silence (0xFF).
    with_sound: usize,
    /// Packets whose sequence number is not the previous one plus one.
    sequence_breaks: usize,
}

/// Counts RTP arriving on `socket` until `stop` is set or `limit` passes.
fn count_rtp(socket: UdpSocket, stop: Arc<AtomicBool>, limit: Duration) -> JoinHandle<RtpStats> {
    thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let deadline = Instant::now() + limit;
        let mut stats = RtpStats::default();
        let mut last_seq: Option<u16> = None;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let packet = &buf[..n];
            if n < 12 {
                stats.not_version_2 += 1;
                continue;
            }
            stats.packets += 1;
            stats.sources.insert(from);
            if packet[0] >> 6 != 2 {
                stats.not_version_2 += 1;
            }
            stats.payload_types.insert(packet[1] & 0x7f);
            let seq = u16::from_be_bytes([packet[2], packet[3]]);
            if last_seq.is_some_and(|last| seq != last.wrapping_add(1)) {
                stats.sequence_breaks += 1;
            }
            last_seq = Some(seq);
            let csrc = usize::from(packet[0] & 0x0f) * 4;
            let payload = packet.get(12 + csrc..).unwrap_or_default();
            if payload.iter().any(|&b| b != 0xFF) {
                stats.with_sound += 1;
            }
        }
        stats
    })
}

// ---- harness: raw SIP over UDP ----------------------------------------------

fn options(socket: &UdpSocket, call_id: &str) -> String {
    let port = socket.local_addr().expect("addr").port();
    format!(
        "OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1:{port}>;tag=probe\r\n\
         To: <sip:hotline@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A hand-written request, rendered for the sending socket's port.
struct RawRequest<'a> {
    start_line: &'a str,
    method: &'a str,
    extra_headers: &'a str,
    content_length: &'a str,
    body: &'a str,
}

impl RawRequest<'_> {
    fn new<'a>(start_line: &'a str, method: &'a str) -> RawRequest<'a> {
        RawRequest {
            start_line,
            method,
            extra_headers: "",
            content_length: "0",
            body: "",
        }
    }

    fn render(&self, port: u16, id: &str) -> String {
        format!(
            "{start}\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{id}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Probe\" <sip:probe@127.0.0.1:{port}>;tag=t-{id}\r\n\
             To: <sip:4000@127.0.0.1>\r\n\
             Call-ID: {id}\r\n\
             CSeq: 1 {method}\r\n\
             Contact: <sip:probe@127.0.0.1:{port}>\r\n\
             {extra}Content-Length: {len}\r\n\r\n{body}",
            start = self.start_line,
            method = self.method,
            extra = self.extra_headers,
            len = self.content_length,
            body = self.body,
        )
    }
}

/// Sends `req` from a fresh socket and returns the first final response
/// (provisional ones skipped), or panics after 3 s. Non-2xx final responses
/// to an INVITE are ACKed, as a real caller would.
fn exchange(engine: &Engine, req: &RawRequest<'_>, id: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let text = req.render(port, id);
    socket
        .send_to(text.as_bytes(), engine.sip_addr())
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let response = String::from_utf8_lossy(&buf[..n]).into_owned();
        if response.starts_with("SIP/2.0 1") {
            continue;
        }
        if req.method == "INVITE" {
            let to = header(&response, "To").unwrap_or_default();
            let ack = format!(
                "ACK sip:4000@127.0.0.1 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{id}\r\n\
                 Max-Forwards: 70\r\n\
                 From: \"Probe\" <sip:probe@127.0.0.1:{port}>;tag=t-{id}\r\n\
                 To: {to}\r\n\
                 Call-ID: {id}\r\n\
                 CSeq: 1 ACK\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            socket
                .send_to(ack.as_bytes(), engine.sip_addr())
                .expect("send ACK");
        }
        return response;
    }
    panic!(
        "no final response within 3 s to:\n{text}\n--- hotline log ---\n{}",
        engine.log_tail()
    );
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn assert_status(response: &str, status: u16, what: &str) {
    assert!(
        response.starts_with(&format!("SIP/2.0 {status} ")),
        "{what}: expected {status}, got:\n{response}"
    );
}

// ---- tests -------------------------------------------------------------------

/// A normal call: 180 before 200 (the scenario requires it), the greeting
/// heard as PCMU RTP, the caller hangs up after 3 s.
#[test]
fn answered_inside_window_with_ringing_first() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(1);
    let mut engine = Engine::start(ports, &Settings::default());

    let rtp = UdpSocket::bind(("127.0.0.1", ports.caller_rtp())).expect("bind RTP listener");
    let stop = Arc::new(AtomicBool::new(false));
    let counter = count_rtp(rtp, stop.clone(), Duration::from_secs(30));
    let rtp_port = ports.caller_rtp().to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &rtp_port, "-d", "3000"],
        20,
    );
    sipp.expect_success(&engine);
    stop.store(true, Ordering::Relaxed);
    let stats = counter.join().expect("RTP counter");

    assert!(
        stats.packets >= 100,
        "too little RTP from the engine: {stats:?}"
    );
    assert_eq!(stats.not_version_2, 0, "{stats:?}");
    assert_eq!(
        stats.payload_types,
        BTreeSet::from([0]),
        "PCMU only: {stats:?}"
    );
    assert!(
        stats.with_sound >= 50,
        "greeting audio, not only silence: {stats:?}"
    );
    assert_eq!(stats.sequence_breaks, 0, "{stats:?}");
    for from in &stats.sources {
        assert!(
            (ports.rtp.0..=ports.rtp.1).contains(&from.port()),
            "RTP from {from}, outside the configured range {:?}",
            ports.rtp
        );
    }

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 200, "{r}");
    assert_eq!(str_field(r, "codec"), "PCMU", "{r}");
    let tta = u64_field(r, "time_to_answer_ms");
    assert!(
        (900..=15000).contains(&tta),
        "time_to_answer_ms = {tta}: {r}"
    );
    assert!(r["ringing_at"].is_string(), "ringing_at missing: {r}");
    assert!(
        str_field(r, "ringing_at") <= str_field(r, "answered_at"),
        "rang after answering: {r}"
    );
    assert_eq!(str_field(r, "caller_number"), "13800138000", "{r}");
    assert_eq!(str_field(r, "dialled_number"), "4000", "{r}");
}

/// A caller who never sends RTP: greeting, listen, question, wait, apology,
/// wait, then the engine hangs up; the call lasts just that long.
#[test]
fn silent_caller_hung_up_by_engine() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(2);
    let settings = Settings::default();
    let mut engine = Engine::start(ports, &settings);
    let sipp = Sipp::spawn(&engine, 0, "uac_silent.xml", &[], 60);
    sipp.expect_success(&engine);

    let lang = settings.language;
    let expected = prompt_ms(lang, "greeting")
        + 1000 // listen_after_greeting
        + prompt_ms(lang, "silent_question")
        + 2000 // silent_wait
        + prompt_ms(lang, "silent_apology")
        + 2000; // apology_wait

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "silent_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "engine", "{r}");
    assert_eq!(r["caller_spoke"], Value::Bool(false), "{r}");
    let duration = u64_field(r, "duration_ms");
    assert!(
        duration.abs_diff(expected) <= 1500,
        "duration_ms = {duration}, expected {expected} +/- 1500: {r}"
    );
}

/// CANCEL while it rings: 200 for the CANCEL, 487 for the INVITE.
#[test]
fn cancel_before_answer() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(3);
    let settings = Settings {
        answer_after: "5s",
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &settings);
    let sipp = Sipp::spawn(&engine, 0, "cancel.xml", &[], 15);
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "cancelled", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_cancelled", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 487, "{r}");
    assert!(r["ringing_at"].is_string(), "{r}");
    assert!(r["answered_at"].is_null(), "{r}");
    assert!(r["duration_ms"].is_null(), "{r}");
}

/// The caller hangs up during the greeting, half a second after the answer.
#[test]
fn caller_bye() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(4);
    let mut engine = Engine::start(ports, &Settings::default());
    let media = ports.sipp(0).media.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &media, "-d", "500"],
        15,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    let duration = u64_field(r, "duration_ms");
    assert!(
        (400..3000).contains(&duration),
        "duration_ms = {duration}: {r}"
    );
}

/// The same call over TCP.
#[test]
fn call_over_tcp() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(5);
    let mut engine = Engine::start(ports, &Settings::default());
    let media = ports.sipp(0).media.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-t", "t1", "-key", "rtp_port", &media, "-d", "1000"],
        15,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert!(str_field(r, "source").starts_with("tcp:"), "{r}");
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
}

/// A caller who talks (recorded PCMA speech): the engine hears it, plays
/// "please hold" and "goodbye" after the greeting and hangs up.
#[test]
fn speaking_caller_goes_to_destination() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let pcap = "/usr/share/sip-tester/g711a.pcap";
    if !Path::new(pcap).is_file() {
        skip_or_fail(&format!("{pcap} is missing (package sip-tester)"));
        return;
    }
    let ports = Ports::new(6);
    let settings = Settings {
        language: "zh",
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &settings);
    let sipp = Sipp::spawn(&engine, 0, "uac_speak.xml", &["-key", "pcap", pcap], 45);
    sipp.expect_success(&engine);

    let lang = settings.language;
    let expected =
        prompt_ms(lang, "greeting") + prompt_ms(lang, "please_hold") + prompt_ms(lang, "goodbye");

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(r["caller_spoke"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "outcome"), "completed", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "engine", "{r}");
    assert_eq!(str_field(r, "codec"), "PCMA", "caller's first codec: {r}");
    let duration = u64_field(r, "duration_ms");
    assert!(
        duration.abs_diff(expected) <= 1500,
        "duration_ms = {duration}, expected {expected} +/- 1500: {r}"
    );
}

/// max_calls = 1: a second call while the first is up gets 503 with
/// Retry-After (the scenario checks the header).
#[test]
fn over_capacity_gets_503() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(7);
    let settings = Settings {
        max_calls: 1,
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &settings);
    let media = ports.sipp(0).media.to_string();
    // Rings 1 s, then stays up 5 s.
    let first = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &media, "-d", "5000"],
        20,
    );
    thread::sleep(Duration::from_millis(1500));
    let second = Sipp::spawn(&engine, 1, "busy.xml", &[], 15);
    second.expect_success(&engine);
    first.expect_success(&engine);

    let records = engine.stop_and_read_records();
    assert_eq!(records.len(), 2, "{records:#?}");
    let rejected: Vec<Value> = records
        .iter()
        .filter(|r| r["disposition"] == "rejected")
        .cloned()
        .collect();
    let r = single(&rejected);
    assert_eq!(str_field(r, "outcome"), "over_capacity", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 503, "{r}");
    assert_eq!(str_field(r, "caller_number"), "13800138001", "{r}");
    let held = records
        .iter()
        .find(|r| r["disposition"] == "answered")
        .unwrap_or_else(|| panic!("no answered call: {records:#?}"));
    assert_eq!(str_field(held, "outcome"), "caller_hangup", "{held}");
}

/// Malformed and unsupported requests each get their proper error; garbage
/// gets nothing; the engine still answers afterwards.
#[test]
fn bad_requests_answered() {
    let ports = Ports::new(8);
    let mut engine = Engine::start(ports, &Settings::default());
    let invite = "INVITE sip:4000@127.0.0.1 SIP/2.0";

    let bad_length = RawRequest {
        content_length: "abc",
        ..RawRequest::new(invite, "INVITE")
    };
    assert_status(
        &exchange(&engine, &bad_length, "bad-length"),
        400,
        "Content-Length: abc",
    );

    let unknown = RawRequest::new("FOO sip:4000@127.0.0.1 SIP/2.0", "FOO");
    assert_status(
        &exchange(&engine, &unknown, "unknown-method"),
        501,
        "method FOO",
    );

    let require = RawRequest {
        extra_headers: "Require: foo\r\n",
        ..RawRequest::new(invite, "INVITE")
    };
    let response = exchange(&engine, &require, "require-foo");
    assert_status(&response, 420, "Require: foo");
    assert_eq!(header(&response, "Unsupported"), Some("foo"), "{response}");

    let probe = RawRequest::new("OPTIONS sip:4000@127.0.0.1 SIP/2.0", "OPTIONS");
    assert_status(&exchange(&engine, &probe, "options-1"), 200, "OPTIONS");

    let http = RawRequest::new("INVITE http://example.com/4000 SIP/2.0", "INVITE");
    assert_status(
        &exchange(&engine, &http, "http-uri"),
        416,
        "http: Request-URI",
    );

    let g729_sdp = "v=0\r\n\
                    o=probe 1 1 IN IP4 127.0.0.1\r\n\
                    s=-\r\n\
                    c=IN IP4 127.0.0.1\r\n\
                    t=0 0\r\n\
                    m=audio 16990 RTP/AVP 18\r\n\
                    a=rtpmap:18 G729/8000\r\n";
    let length = g729_sdp.len().to_string();
    let g729 = RawRequest {
        extra_headers: "Content-Type: application/sdp\r\n",
        content_length: &length,
        body: g729_sdp,
        ..RawRequest::new(invite, "INVITE")
    };
    assert_status(
        &exchange(&engine, &g729, "g729-only"),
        488,
        "G.729-only offer",
    );

    // Garbage: no reply at all.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    socket
        .send_to(b"\x00\x01\x02 not SIP \xff\xfe\r\n\r\n", engine.sip_addr())
        .expect("send");
    let mut buf = [0u8; 4096];
    if let Ok((n, _)) = socket.recv_from(&mut buf) {
        panic!(
            "garbage got a reply: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }

    assert_status(
        &exchange(&engine, &probe, "options-2"),
        200,
        "OPTIONS after garbage",
    );

    let records = engine.stop_and_read_records();
    let r = records
        .iter()
        .find(|r| r["sip_call_id"] == "g729-only")
        .unwrap_or_else(|| panic!("no record of the 488 call: {records:#?}"));
    assert_eq!(str_field(r, "disposition"), "rejected", "{r}");
    assert_eq!(str_field(r, "outcome"), "no_common_codec", "{r}");
    assert_eq!(u64_field(r, "sip_status"), 488, "{r}");
}
