//! Interop tests: the real `hotline` binary, driven by SIPp (and by raw UDP
//! for malformed requests) over loopback. Each test runs its own engine with
//! its own config (config/default.toml with its ports, folders and shorter
//! waits), record and message folders in a temporary directory, so the
//! tests can run in parallel.
//!
//! Needs `sipp` (Debian package `sip-tester`) on PATH, and its sample
//! captures in /usr/share/sip-tester: without them the SIPp tests are
//! skipped, or fail when `CI=true`. Tests where the caller talks or sends
//! keys in RTP also need root (SIPp replays captures through a raw socket).
//!
//! Scenarios live in `tests/interop/*.xml`. With `INTEROP_KEEP=1` each
//! test's folder (config, engine log, records, messages, SIPp traces) is
//! kept and its path printed.

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

/// Every port a test uses, derived from its number `n` (1..=19) so that
/// tests never collide (tests/crash_records.rs has SIP 15100, RTP
/// 26000-26199). All below the Linux ephemeral range (32768+).
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
        assert!((1..=19).contains(&n));
        Ports {
            n,
            sip: 15060 + n,
            rtp: (30000 + n * 100, 30000 + n * 100 + 99),
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

/// The settings a test varies; everything else is config/default.toml.
#[derive(Debug, Clone)]
struct Settings {
    answer_after: &'static str,
    max_calls: u32,
    /// Language of the IVR's number (`*`).
    language: &'static str,
    /// How long the main menu waits for a key before the silent-caller node.
    menu_timeout: &'static str,
    /// The silent-caller node's waits after its question and its apology.
    silent_wait: &'static str,
    apology_wait: &'static str,
    /// The caller directory's text (written to `callers.csv`), if any.
    directory: Option<&'static str>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            answer_after: "1s",
            max_calls: 50,
            language: "en",
            menu_timeout: "1s",
            silent_wait: "1s",
            apology_wait: "1s",
            directory: None,
        }
    }
}

/// config/default.toml with this test's ports, folders (relative to the
/// config file) and timings.
fn config_toml(ports: &Ports, s: &Settings) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let mut text = fs::read_to_string(&path).expect("read config/default.toml");
    let q = |v: &str| format!("{v:?}");
    for (table, key, value) in [
        ("[sip]", "listen", format!("[\"127.0.0.1:{}\"]", ports.sip)),
        ("[media]", "port_min", ports.rtp.0.to_string()),
        ("[media]", "port_max", ports.rtp.1.to_string()),
        ("[calls]", "answer_after", q(s.answer_after)),
        ("[calls]", "max_calls", s.max_calls.to_string()),
        ("[cdr]", "dir", q("cdr")),
        ("[messages]", "dir", q("messages")),
        ("[[ivr.numbers]]", "language", q(s.language)),
        ("[ivr.nodes.main]", "timeout", q(s.menu_timeout)),
        ("[ivr.nodes.silent]", "wait", q(s.silent_wait)),
        ("[ivr.nodes.silent]", "apology_wait", q(s.apology_wait)),
    ] {
        text = set_key(&text, table, key, &value);
    }
    if s.directory.is_some() {
        let commented = "# file = \"callers.csv\"";
        assert!(text.contains(commented), "{commented} not in default.toml");
        text = text.replace(commented, "file = \"callers.csv\"");
    }
    text
}

/// Sets `key = value` in the table whose header line is `table` (e.g.
/// `[ivr.nodes.silent]`); the key must be there, so that a change to
/// default.toml fails loudly instead of leaving a default in place.
fn set_key(text: &str, table: &str, key: &str, value: &str) -> String {
    let mut in_table = false;
    let mut done = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_table = t == table;
        }
        let is_key = !t.starts_with('#') && t.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if in_table && is_key && !done {
            out.push_str(&format!("{key} = {value}"));
            done = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(done, "no `{key}` under {table} in config/default.toml");
    out
}

/// A running `hotline run`; killed on drop (also when a test panics).
struct Engine {
    child: Child,
    dir: tempfile::TempDir,
    ports: Ports,
    config: PathBuf,
    log: PathBuf,
}

impl Engine {
    fn start(ports: Ports, settings: &Settings) -> Engine {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("hotline.toml");
        fs::write(&config, config_toml(&ports, settings)).expect("write config");
        if let Some(callers) = settings.directory {
            fs::write(dir.path().join("callers.csv"), callers).expect("write directory");
        }
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
            config,
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
        files_ending(&self.path().join("cdr"), ".jsonl")
            .iter()
            .flat_map(|file| read_jsonl(file))
            .collect()
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
        if std::env::var_os("INTEROP_KEEP").is_some() {
            // Config, engine log, records, messages and SIPp's traces.
            self.dir.disable_cleanup(true);
            eprintln!("test {}: kept {}", self.ports.n, self.dir.path().display());
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

/// Every line of a JSON Lines file, parsed (a line that is not JSON fails).
fn read_jsonl(file: &Path) -> Vec<Value> {
    let text =
        fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", file.display()))
        })
        .collect()
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

/// `ivr_path`: the IVR nodes the call went through.
fn ivr_path(record: &Value) -> Vec<&str> {
    record["ivr_path"]
        .as_array()
        .unwrap_or_else(|| panic!("record field ivr_path is not an array: {record}"))
        .iter()
        .map(|v| v.as_str().expect("node name"))
        .collect()
}

/// A duration setting ("1s") in milliseconds.
fn ms(setting: &str) -> u64 {
    humantime::parse_duration(setting)
        .expect("duration")
        .as_millis() as u64
}

/// What a prompt takes to play: whole 20 ms frames, the last one padded.
/// Per-language prompts are in `prompts/<language>/`, shared ones (the
/// beep) in `prompts/`.
fn prompt_ms(language: &str, name: &str) -> u64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let file = format!("{name}.wav");
    let path = [dir.join(language).join(&file), dir.join(&file)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no prompt {file} in {}", dir.display()));
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

// ---- harness: audio files ----------------------------------------------

/// A SIPp sample capture, or a skip (failure under `CI=true`) without it.
fn sample_pcap(name: &str) -> Option<String> {
    let path = format!("/usr/share/sip-tester/{name}");
    if Path::new(&path).is_file() {
        Some(path)
    } else {
        skip_or_fail(&format!("{path} is missing (package sip-tester)"));
        None
    }
}

/// 8 kHz audio: `lead_ms` of silence, `tone_ms` of the DTMF pair
/// `low` + `high` Hz (each at -10 dBFS), then `trail_ms` of silence.
fn dtmf_audio(low: f64, high: f64, lead_ms: usize, tone_ms: usize, trail_ms: usize) -> Vec<i16> {
    // A sine's RMS is its peak over sqrt(2): -10 dBFS RMS each.
    let peak = 32768.0 * 2f64.sqrt() * 10f64.powf(-10.0 / 20.0);
    let rate = 8000.0;
    let mut samples = vec![0i16; lead_ms * 8];
    samples.extend((0..tone_ms * 8).map(|i| {
        let t = i as f64 / rate;
        let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
        (peak * (w(low) + w(high))).round() as i16
    }));
    samples.extend(std::iter::repeat_n(0i16, trail_ms * 8));
    samples
}

/// Writes `samples` (8 kHz) as a pcap of RTP PCMU packets, for SIPp's
/// play_pcap_audio: Ethernet/IPv4/UDP frames 20 ms apart, 160 samples
/// each, with consecutive sequence numbers and timestamps and one SSRC.
/// SIPp rewrites the addresses and ports when it replays them.
fn write_pcmu_pcap(path: &Path, samples: &[i16]) {
    use hotline::media::g711::Codec;
    let mut out = Vec::new();
    // Global header: magic, version 2.4, GMT offset, accuracy, snaplen,
    // link type 1 (Ethernet); little-endian.
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend(0i32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let (ssrc, seq0, ts0) = (0x1234_5678u32, 1000u16, 160_000u32);
    for (i, frame) in samples.chunks(160).enumerate() {
        let mut rtp = Vec::with_capacity(12 + 160);
        rtp.push(0x80); // version 2
        rtp.push(if i == 0 { 0x80 } else { 0 }); // marker on the first; PT 0
        rtp.extend(seq0.wrapping_add(i as u16).to_be_bytes());
        rtp.extend(ts0.wrapping_add(160 * i as u32).to_be_bytes());
        rtp.extend(ssrc.to_be_bytes());
        rtp.extend(frame.iter().map(|&s| Codec::Pcmu.encode(s)));
        let udp_len = 8 + rtp.len() as u16;
        let mut udp = Vec::with_capacity(udp_len as usize);
        udp.extend(6000u16.to_be_bytes());
        udp.extend(6000u16.to_be_bytes());
        udp.extend(udp_len.to_be_bytes());
        udp.extend(0u16.to_be_bytes()); // no checksum (allowed over IPv4)
        udp.extend(&rtp);
        let mut ip = vec![0x45, 0];
        ip.extend((20 + udp_len).to_be_bytes());
        ip.extend((i as u16).to_be_bytes()); // identification
        ip.extend(0x4000u16.to_be_bytes()); // don't fragment
        ip.extend([64, 17, 0, 0]); // TTL, UDP, checksum (below)
        ip.extend([127, 0, 0, 1, 127, 0, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend(&ip);
        frame.extend(&udp);
        let at_us = i as u64 * 20_000;
        out.extend(((1_700_000_000 + at_us / 1_000_000) as u32).to_le_bytes());
        out.extend(((at_us % 1_000_000) as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(&frame);
    }
    fs::write(path, out).expect("write pcap");
}

/// A recorded message's WAV: its format, length and loudness.
#[derive(Debug)]
struct WavInfo {
    spec: hound::WavSpec,
    duration_ms: u64,
    rms: f64,
}

fn wav_info(path: &Path) -> WavInfo {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec = reader.spec();
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("bad samples in {}: {e}", path.display()));
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    WavInfo {
        spec,
        duration_ms: samples.len() as u64 * 1000 / u64::from(spec.sample_rate.max(1)),
        rms: (energy / samples.len().max(1) as f64).sqrt(),
    }
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

/// A caller who never sends RTP nor presses a key: greeting, main menu,
/// the menu's timeout, then the silent-caller node (question, wait,
/// apology, wait) and the engine hangs up; the call lasts just that long.
#[test]
fn silent_caller_hung_up_by_engine() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(2);
    let s = Settings::default();
    let mut engine = Engine::start(ports, &s);
    let sipp = Sipp::spawn(&engine, 0, "uac_silent.xml", &[], 60);
    sipp.expect_success(&engine);

    let lang = s.language;
    let expected = prompt_ms(lang, "greeting")
        + prompt_ms(lang, "main_menu")
        + ms(s.menu_timeout)
        + prompt_ms(lang, "silent_question")
        + ms(s.silent_wait)
        + prompt_ms(lang, "silent_apology")
        + ms(s.apology_wait);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "silent_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "engine", "{r}");
    assert_eq!(ivr_path(r), ["welcome", "main", "silent"], "{r}");
    assert_eq!(r["caller_spoke"], Value::Bool(false), "{r}");
    assert_eq!(str_field(r, "digits"), "", "{r}");
    assert!(r["business_type"].is_null(), "{r}");
    assert_eq!(str_field(r, "language"), lang, "{r}");
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

/// A caller who stays silent through the greeting and the menu, so the
/// silent-caller node asks whether anyone is there; then the caller talks
/// (recorded PCMA speech) and the IVR takes it back to the main menu.
/// The silent node's waits are long (10 s), so only the speech can have
/// moved the call on before the caller hangs up.
#[test]
fn speaking_caller_goes_back_to_the_menu() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("g711a.pcap") else {
        return;
    };
    let ports = Ports::new(6);
    let s = Settings {
        language: "zh",
        silent_wait: "10s",
        apology_wait: "10s",
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &s);
    // Silent until the question is being asked (its prompt is over 2 s).
    let lang = s.language;
    let silent_until =
        prompt_ms(lang, "greeting") + prompt_ms(lang, "main_menu") + ms(s.menu_timeout) + 500;
    let silent_until = silent_until.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_speak.xml",
        &["-key", "pcap", &pcap, "-d", &silent_until],
        60,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(
        ivr_path(r),
        ["welcome", "main", "silent", "main"],
        "speech in the silent node leads back to the menu: {r}"
    );
    assert_eq!(r["caller_spoke"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(str_field(r, "codec"), "PCMA", "caller's first codec: {r}");
    assert_eq!(str_field(r, "digits"), "", "{r}");
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

/// Malformed and unsupported requests, and an INFO for no call, each get
/// their proper error; garbage gets nothing; the engine still answers
/// afterwards.
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

    let info = RawRequest {
        extra_headers: "Content-Type: application/dtmf-relay\r\n",
        content_length: "10",
        body: "Signal=5\r\n",
        ..RawRequest::new("INFO sip:4000@127.0.0.1 SIP/2.0", "INFO")
    };
    assert_status(
        &exchange(&engine, &info, "info-no-dialog"),
        481,
        "INFO outside any call",
    );

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

// ---- IVR menus, keys in every form, messages --------------------------------

/// The record of a caller who chose `business` in the main menu by
/// pressing `digits`, then hung up while hearing that no agent is free:
/// with no agent registered, the queue of the same name refuses the caller
/// and the IVR falls back to the no-agents prompt.
fn assert_chose(r: &Value, business: &str, digits: &str) {
    assert_eq!(str_field(r, "business_type"), business, "{r}");
    assert_eq!(str_field(r, "digits"), digits, "{r}");
    let queue = format!("{business}_queue");
    let path = ivr_path(r);
    assert!(
        path.starts_with(&["welcome", "main", business, &queue, "no_agents"]),
        "ivr_path = {path:?}: {r}"
    );
    assert_eq!(str_field(r, "queue"), business, "{r}");
    assert_eq!(str_field(r, "queue_result"), "refused", "{r}");
    assert_eq!(u64_field(r, "offers"), 0, "{r}");
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
}

/// Key 2 as RFC 4733 telephone-events (SIPp's capture, payload type 101,
/// the type our SDP offers), pressed during the greeting: it interrupts it
/// and chooses repair. Its three end packets count once.
#[test]
fn dtmf_rfc4733_chooses_repair() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("dtmf_2833_2.pcap") else {
        return;
    };
    let ports = Ports::new(9);
    let mut engine = Engine::start(ports, &Settings::default());
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_dtmf_rtp.xml",
        &["-key", "pcap", &pcap, "-d", "2000"],
        30,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    assert_chose(single(&records), "repair", "2");
}

/// Key 3 as SIP INFO (application/dtmf-relay) chooses complaint. A second
/// 3 sent both as INFO and as RFC 4733 events at the same moment counts
/// once: "33", not "333".
#[test]
fn dtmf_sip_info_chooses_complaint() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let Some(pcap) = sample_pcap("dtmf_2833_3.pcap") else {
        return;
    };
    let ports = Ports::new(10);
    let mut engine = Engine::start(ports, &Settings::default());
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_dtmf_info.xml",
        &["-key", "digit", "3", "-key", "pcap", &pcap, "-d", "1500"],
        30,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    assert_chose(single(&records), "complaint", "33");
}

/// A phone that sends keys as tones: the SDP offers PCMU alone (no
/// telephone-event), and the audio (a capture written by this test) holds
/// 100 ms of the DTMF pair for 1 (697 + 1209 Hz) after 1 s of silence.
/// The engine hears the tones and chooses consultation.
#[test]
fn dtmf_inband_chooses_consultation() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let ports = Ports::new(11);
    let mut engine = Engine::start(ports, &Settings::default());
    let pcap = engine.path().join("dtmf_1_inband.pcap");
    write_pcmu_pcap(&pcap, &dtmf_audio(697.0, 1209.0, 1000, 100, 500));
    let pcap = pcap.to_string_lossy().into_owned();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac_dtmf_inband.xml",
        &["-key", "pcap", &pcap, "-d", "2500"],
        30,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "codec"), "PCMU", "{r}");
    assert_chose(r, "consultation", "1");
}

/// Runs `scenario` (uac_message*.xml: key 9 as RFC 4733 during the
/// greeting, the "leave a message" prompt and the beep, then 7.08 s of
/// PCMA speech) as test `n`; returns the engine, still running.
fn leave_message(n: u16, scenario: &str) -> Option<Engine> {
    if !require_tool("sipp") || !require_root() {
        return None;
    }
    let (Some(dtmf), Some(speech)) = (sample_pcap("dtmf_2833_9.pcap"), sample_pcap("g711a.pcap"))
    else {
        return None;
    };
    let s = Settings::default();
    let engine = Engine::start(Ports::new(n), &s);
    let until_recording =
        prompt_ms(s.language, "leave_message") + prompt_ms(s.language, "beep") + 500;
    let until_recording = until_recording.to_string();
    let args = ["-key", "dtmf", &dtmf, "-key", "pcap", &speech];
    let sipp = Sipp::spawn(
        &engine,
        0,
        scenario,
        &[&args[..], &["-d", &until_recording]].concat(),
        60,
    );
    sipp.expect_success(&engine);
    Some(engine)
}

/// The messages index once it has `n` lines (it is written after the WAV,
/// which is written after the recording ends), or a panic after 5 s.
fn wait_for_index(engine: &Engine, n: usize) -> Vec<Value> {
    let index = engine.path().join("messages").join("index.jsonl");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = if index.is_file() {
            read_jsonl(&index)
        } else {
            Vec::new()
        };
        if lines.len() >= n || Instant::now() > deadline {
            assert_eq!(
                lines.len(),
                n,
                "messages index: {lines:#?}\n{}",
                engine.log_tail()
            );
            return lines;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Checks one message: the index line `m` agrees with the call's record
/// `r`, and its WAV is 8 kHz mono 16-bit, holds the 7.08 s of speech the
/// caller sent (only received audio is recorded) and is not silent.
fn check_message(engine: &Engine, r: &Value, m: &Value, ended_by: &str) {
    let file = str_field(r, "message_file");
    assert_eq!(str_field(m, "file"), file, "index and record agree: {m}");
    assert_eq!(str_field(m, "call_id"), str_field(r, "call_id"), "{m}");
    assert_eq!(str_field(m, "ended_by"), ended_by, "{m}");
    assert_eq!(str_field(m, "caller_number"), "13800138000", "{m}");
    assert_eq!(str_field(m, "dialled_number"), "4000", "{m}");
    assert_eq!(str_field(m, "customer_class"), "public", "{m}");
    assert!(m["business_type"].is_null(), "9 chooses no business: {m}");

    let info = wav_info(&engine.path().join("messages").join(file));
    assert_eq!(
        (
            info.spec.channels,
            info.spec.sample_rate,
            info.spec.bits_per_sample
        ),
        (1, 8000, 16),
        "{info:?}"
    );
    assert_eq!(info.spec.sample_format, hound::SampleFormat::Int);
    assert!(
        (5000..=7100).contains(&info.duration_ms),
        "message of {} ms, expected about 7080: {info:?}",
        info.duration_ms
    );
    assert!(
        u64_field(m, "duration_ms").abs_diff(info.duration_ms) <= 20,
        "index says {} ms, the WAV holds {} ms: {m}",
        u64_field(m, "duration_ms"),
        info.duration_ms
    );
    // Speech at about -25 dBFS; silence would be near 0.
    assert!(info.rms > 300.0, "the message is (nearly) silent: {info:?}");
}

/// Key 9 (RFC 4733) during the greeting, the "leave a message" prompt and
/// the beep, 7 s of speech (PCMA), then # as SIP INFO (application/dtmf):
/// the engine says the message is saved and hangs up. The message is in
/// the index and on disk, the record names it, and `hotline messages list`
/// shows it.
#[test]
fn message_recorded_from_sipp_audio() {
    let Some(mut engine) = leave_message(12, "uac_message.xml") else {
        return;
    };
    let index = wait_for_index(&engine, 1);
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(
        ivr_path(r),
        ["welcome", "main", "message", "message_saved"],
        "{r}"
    );
    assert_eq!(str_field(r, "digits"), "9#", "{r}");
    assert_eq!(str_field(r, "outcome"), "completed", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "engine", "{r}");
    assert_eq!(str_field(r, "codec"), "PCMA", "{r}");
    assert_eq!(r["caller_spoke"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "customer_class"), "public", "{r}");
    assert_eq!(r["vip"], Value::Bool(false), "{r}");
    check_message(&engine, r, single(&index), "pound");

    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["messages", "list", "--config"])
        .arg(&engine.config)
        .env("NO_COLOR", "1")
        .output()
        .expect("run hotline messages list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "messages list: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let file = str_field(r, "message_file");
    assert!(stdout.contains("13800138000"), "caller missing:\n{stdout}");
    assert!(stdout.contains(file), "file {file} missing:\n{stdout}");
    assert!(stdout.contains("pound"), "ended_by missing:\n{stdout}");
}

/// The caller hangs up while still being recorded: the message is kept
/// (ended by "hangup") and the record names it.
#[test]
fn message_kept_when_caller_hangs_up() {
    let Some(mut engine) = leave_message(14, "uac_message_bye.xml") else {
        return;
    };
    let index = wait_for_index(&engine, 1);
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(ivr_path(r), ["welcome", "main", "message"], "{r}");
    assert_eq!(str_field(r, "digits"), "9", "{r}");
    assert_eq!(str_field(r, "outcome"), "caller_hangup", "{r}");
    check_message(&engine, r, single(&index), "hangup");
}

/// The engine is stopped (SIGTERM) while a caller is leaving a message:
/// the call's record names the message, so the message must be kept and
/// indexed like one cut short by the caller hanging up (the engine waits
/// for the WAV before it exits).
#[test]
fn message_kept_on_shutdown() {
    if !require_tool("sipp") || !require_root() {
        return;
    }
    let (Some(dtmf), Some(speech)) = (sample_pcap("dtmf_2833_9.pcap"), sample_pcap("g711a.pcap"))
    else {
        return;
    };
    let s = Settings::default();
    let mut engine = Engine::start(Ports::new(15), &s);
    let until_recording =
        prompt_ms(s.language, "leave_message") + prompt_ms(s.language, "beep") + 500;
    let d = until_recording.to_string();
    let args = ["-key", "dtmf", &dtmf, "-key", "pcap", &speech, "-d", &d];
    // The scenario fails (the engine's BYE comes before its INFO): ignored.
    let _sipp = Sipp::spawn(&engine, 0, "uac_message.xml", &args, 60);
    // Ringing, 1 s to the key, the prompt and the beep, 3 s of speech.
    thread::sleep(Duration::from_millis(2000 + until_recording + 3000));

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "outcome"), "shutdown", "{r}");
    assert_eq!(ivr_path(r), ["welcome", "main", "message"], "{r}");
    let file = str_field(r, "message_file");
    let wav = engine.path().join("messages").join(file);
    assert!(wav.is_file(), "no {}", wav.display());
    let m = wait_for_index(&engine, 1);
    assert_eq!(str_field(single(&m), "file"), file, "{m:?}");
}

/// A caller directory with the caller's number as a group VIP: the record
/// carries the class, the VIP flag and the directory's name for it.
#[test]
fn caller_directory_sets_class_and_vip() {
    if !require_tool("sipp") {
        return;
    }
    let ports = Ports::new(13);
    let s = Settings {
        directory: Some(
            "# number,class,vip,name\n\
             13800138000,group,yes,Test Group Co\n\
             138*,business,no,Prefix Only\n",
        ),
        ..Settings::default()
    };
    let mut engine = Engine::start(ports, &s);
    let media = ports.sipp(0).media.to_string();
    let sipp = Sipp::spawn(
        &engine,
        0,
        "uac.xml",
        &["-key", "rtp_port", &media, "-d", "1000"],
        15,
    );
    sipp.expect_success(&engine);

    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "caller_number"), "13800138000", "{r}");
    assert_eq!(
        str_field(r, "customer_class"),
        "group",
        "the exact number beats the prefix: {r}"
    );
    assert_eq!(r["vip"], Value::Bool(true), "{r}");
    assert_eq!(str_field(r, "customer_name"), "Test Group Co", "{r}");
}
