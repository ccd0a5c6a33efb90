//! The interop harness, shared by the tests/interop_*.rs files: the real
//! `hotline` binary (started by [`engine`], here with config/default.toml
//! changed by `set_key`: its ports, folders and shorter waits), SIPp runs,
//! the records, `queue_log` and offers streams read back, RTP listeners,
//! and captures written for SIPp to replay.
//!
//! Each test runs its own engine, its own SIPp instances and listeners on
//! ports derived from its number (see [`Ports`]), in its own temporary
//! folder, so tests run in parallel. With `INTEROP_KEEP=1` each test's
//! folder (config, engine log, records, SIPp and baresip traces) is kept
//! and its path printed.
#![allow(dead_code)]

pub mod engine;
pub mod kamailio;
pub mod postgres;

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

pub use engine::*;
use hotline::media::g711::Codec;
use serde_json::Value;

// ---- tools and ports ---------------------------------------------------------

/// Whether `tool` is on PATH. Missing: a skip (message on stderr), or a
/// failure under `CI=true`, where every test must really run.
pub fn require_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        let package = match tool {
            "sipp" => "sip-tester",
            "baresip" => "baresip-core",
            other => other,
        };
        skip_or_fail(&format!(
            "`{tool}` is not installed (Debian: apt-get install {package})"
        ));
    }
    found
}

/// Raw sockets (SIPp's play_pcap_audio) need root.
pub fn require_root() -> bool {
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

pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("interop test cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Every port a test uses, derived from its number `n` (1..=39;
/// interop_calls.rs and interop_faults.rs use 1..=19, interop_acd.rs
/// 20..=39) so that tests never collide (the other interop files have
/// blocks of their own: see tests/README.md). All below the Linux
/// ephemeral range (32768+):
///
/// | what | ports |
/// |---|---|
/// | engine SIP | 15060 + n |
/// | engine RTP | 30000 + 50n .. + 49 |
/// | SIPp k SIP | 15160 + 100k + n |
/// | SIPp k control | 15460 + 100k + n |
/// | media | 16000 + 20n .. + 19 (SIPp k: + 6k, + 6k + 2; its SDP: + 6k + 4) |
///
/// `HOTLINE_TEST_PORT_OFFSET` (default 0) shifts every one of these ports,
/// so that two people can run the suites on one machine at once (e.g.
/// `HOTLINE_TEST_PORT_OFFSET=3000`).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub n: u16,
    /// Added to every port (`HOTLINE_TEST_PORT_OFFSET`).
    pub offset: u16,
    /// The engine's SIP port (UDP and TCP).
    pub sip: u16,
    /// The engine's RTP port range.
    pub rtp: (u16, u16),
    /// Set for a test outside the numbering above, with ports of its own.
    pub block: Option<PortBlock>,
}

/// The other ports of a test with its own block (see [`Ports::block`]).
#[derive(Debug, Clone, Copy)]
pub struct PortBlock {
    /// SIP and control ports of SIPp instances 0 and 1 (no instance 2).
    pub sipp_sip: [u16; 2],
    pub sipp_control: [u16; 2],
    /// The first of 20 media ports, laid out as in the table above.
    pub media: u16,
    pub api: u16,
}

impl Ports {
    pub fn new(n: u16) -> Ports {
        assert!((1..=39).contains(&n));
        let offset = port_offset();
        Ports {
            n,
            offset,
            sip: offset + 15060 + n,
            rtp: (offset + 30000 + n * 50, offset + 30000 + n * 50 + 49),
            block: None,
        }
    }

    /// A test with its own ports (`n` only names it in messages).
    pub fn block(n: u16, sip: u16, rtp: (u16, u16), block: PortBlock) -> Ports {
        Ports {
            n,
            offset: 0,
            sip,
            rtp,
            block: Some(block),
        }
    }

    /// SIPp instance `k` of this test (0, 1 or 2), or another phone in its
    /// place (baresip).
    pub fn sipp(&self, k: u16) -> SippPorts {
        assert!(k < 3);
        if let Some(b) = self.block {
            let i = usize::from(k);
            assert!(i < 2, "a port block has SIPp instances 0 and 1");
            let media = b.media + 6 * k;
            return SippPorts {
                sip: b.sipp_sip[i],
                control: b.sipp_control[i],
                media,
                sdp: media + 4,
            };
        }
        let media = self.offset + 16000 + self.n * 20 + 6 * k;
        SippPorts {
            sip: self.offset + 15160 + 100 * k + self.n,
            control: self.offset + 15460 + 100 * k + self.n,
            media,
            sdp: media + 4,
        }
    }

    /// The engine's own ports.
    pub fn engine(&self) -> EnginePorts {
        EnginePorts {
            sip: self.sip,
            api: self.api(),
            rtp: self.rtp,
        }
    }

    /// The engine's HTTP API port.
    pub fn api(&self) -> u16 {
        match self.block {
            Some(b) => b.api,
            None => self.offset + 18000 + self.n,
        }
    }

    /// A port where the test itself listens for the engine's RTP.
    pub fn caller_rtp(&self) -> u16 {
        match self.block {
            Some(b) => b.media + 18,
            None => self.offset + 16000 + self.n * 20 + 18,
        }
    }
}

/// `HOTLINE_TEST_PORT_OFFSET`, checked so that no port passes 65535 (the
/// highest base port is 32000, the top of test 39's RTP range).
fn port_offset() -> u16 {
    let Ok(text) = std::env::var("HOTLINE_TEST_PORT_OFFSET") else {
        return 0;
    };
    let offset: u16 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("HOTLINE_TEST_PORT_OFFSET={text:?}: {e}"));
    assert!(
        offset <= 65535 - 32000,
        "HOTLINE_TEST_PORT_OFFSET={offset} puts ports past 65535"
    );
    offset
}

#[derive(Debug, Clone, Copy)]
pub struct SippPorts {
    pub sip: u16,
    pub control: u16,
    /// SIPp's -mp: it binds this port and this + 2 (its RTP echo).
    pub media: u16,
    /// The port scenarios put in their SDP (`[media_port+4]`): SIPp replays
    /// captures from it (raw socket) but does not bind it, so the test can
    /// listen there for what the engine sends this SIPp's side.
    pub sdp: u16,
}

// ---- config and the engine process -------------------------------------------

/// The settings a test varies; everything else is config/default.toml.
#[derive(Debug, Clone)]
pub struct Settings {
    pub answer_after: &'static str,
    pub max_calls: u32,
    /// Language of the IVR's number (`*`).
    pub language: &'static str,
    /// How long the main menu waits for a key before the silent-caller node.
    pub menu_timeout: &'static str,
    /// The silent-caller node's waits after its question and its apology.
    pub silent_wait: &'static str,
    pub apology_wait: &'static str,
    /// The caller directory's text (written to `callers.csv`), if any.
    pub directory: Option<&'static str>,
    /// More `(table, key, value)` to set, in every table with that header
    /// (all three `[[queues]]`, say); the value is TOML.
    pub overrides: Vec<(&'static str, &'static str, String)>,
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
            overrides: Vec::new(),
        }
    }
}

/// config/default.toml with this test's ports, folders (see
/// [`base_config`]) and timings.
/// `config` with one `[[trunks]]` entry, "pstn", at 127.0.0.1:`port` over
/// UDP (4 channels, 5 calls a second).
pub fn with_trunk(mut config: String, port: u16) -> String {
    config.push_str(&format!(
        "\n[[trunks]]\nname = \"pstn\"\naddress = \"127.0.0.1:{port}\"\ntransport = \"udp\"\n\
         caller_id = \"4008001234\"\nmax_channels = 4\nmax_calls_per_second = 5\n"
    ));
    config
}

pub fn config_toml(ports: &Ports, s: &Settings) -> String {
    let mut text = base_config(ports.engine());
    let q = |v: &str| format!("{v:?}");
    for (table, key, value) in [
        ("[calls]", "answer_after", q(s.answer_after)),
        ("[calls]", "max_calls", s.max_calls.to_string()),
        // Tests stop engines with SIGTERM; a call left up ends after 2 s.
        ("[calls]", "drain_timeout", q("2s")),
        ("[[ivr.numbers]]", "language", q(s.language)),
        ("[ivr.nodes.main]", "timeout", q(s.menu_timeout)),
        ("[ivr.nodes.silent]", "wait", q(s.silent_wait)),
        ("[ivr.nodes.silent]", "apology_wait", q(s.apology_wait)),
    ] {
        text = set_key(&text, table, key, &value);
    }
    for (table, key, value) in &s.overrides {
        text = set_key_all(&text, table, key, value);
    }
    if s.directory.is_some() {
        let commented = "# file = \"callers.csv\"";
        assert!(text.contains(commented), "{commented} not in default.toml");
        text = text.replace(commented, "file = \"callers.csv\"");
    }
    text
}

/// An interop test's engine: a [`Hotline`] (every process method, through
/// `Deref`) with the test's [`Ports`], for the peers started beside it,
/// and its records read back.
pub struct Engine {
    pub ports: Ports,
    hotline: Hotline,
}

impl Engine {
    pub fn start(ports: Ports, settings: &Settings) -> Engine {
        let config = config_toml(&ports, settings);
        let files: Vec<(&str, &str)> = settings
            .directory
            .map(|callers| ("callers.csv", callers))
            .into_iter()
            .collect();
        Engine {
            ports,
            hotline: Hotline::start(ports.engine(), &config, &files),
        }
    }

    /// An engine on `ports` running `config` as given (a config with
    /// tables `Settings` cannot add, such as `[[trunks]]`), with `env` set
    /// for its process.
    pub fn start_config(ports: Ports, config: &str, env: &[(&str, &str)]) -> Engine {
        Engine {
            ports,
            hotline: Hotline::start_with_env(ports.engine(), config, &[], env),
        }
    }

    /// An engine on `ports` running `config` as given, with `files`
    /// (name, bytes) written beside it first (a certificate and key).
    pub fn start_with_files(ports: Ports, config: &str, files: &[(&str, &str)]) -> Engine {
        Engine {
            ports,
            hotline: Hotline::start(ports.engine(), config, files),
        }
    }

    /// Stops the engine (it must exit cleanly) and returns every record.
    pub fn stop_and_read_records(&mut self) -> Vec<Value> {
        let status = self.stop();
        assert!(
            status.success(),
            "hotline exited with {status}:\n{}",
            self.log_tail()
        );
        self.records()
    }

    /// The call records written so far: the daily `<date>.jsonl` files,
    /// not the offers stream or the audit log beside them.
    pub fn records(&self) -> Vec<Value> {
        files_ending(&self.records_dir(), ".jsonl")
            .iter()
            .filter(|f| !file_name(f).starts_with("offers-") && !file_name(f).starts_with("audit-"))
            .flat_map(|file| read_jsonl(file))
            .collect()
    }

    /// The offers stream (`offers-<date>.jsonl`): one line per agent rung.
    pub fn offers(&self) -> Vec<Value> {
        files_ending(&self.records_dir(), ".jsonl")
            .iter()
            .filter(|f| file_name(f).starts_with("offers-"))
            .flat_map(|file| read_jsonl(file))
            .collect()
    }

    /// The `queue_log` (Asterisk's format), one entry per line.
    pub fn queue_log(&self) -> Vec<QueueLogLine> {
        let text = fs::read_to_string(self.records_dir().join("queue_log")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(QueueLogLine::parse)
            .collect()
    }
}

impl Deref for Engine {
    type Target = Hotline;

    fn deref(&self) -> &Hotline {
        &self.hotline
    }
}

impl DerefMut for Engine {
    fn deref_mut(&mut self) -> &mut Hotline {
        &mut self.hotline
    }
}

/// One line of the `queue_log`: `epoch|callid|queue|agent|EVENT|data...`.
#[derive(Debug, Clone)]
pub struct QueueLogLine {
    pub epoch: u64,
    pub call_id: String,
    pub queue: String,
    pub agent: String,
    pub event: String,
    pub data: Vec<String>,
}

impl QueueLogLine {
    fn parse(line: &str) -> QueueLogLine {
        let fields: Vec<&str> = line.split('|').collect();
        assert!(
            fields.len() >= 5,
            "queue_log line with too few fields: {line}"
        );
        QueueLogLine {
            epoch: fields[0]
                .parse()
                .unwrap_or_else(|_| panic!("queue_log: bad epoch: {line}")),
            call_id: fields[1].to_string(),
            queue: fields[2].to_string(),
            agent: fields[3].to_string(),
            event: fields[4].to_string(),
            data: fields[5..].iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Every line of a JSON Lines file, parsed (a line that is not JSON fails).
pub fn read_jsonl(file: &Path) -> Vec<Value> {
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

pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Waits until something has bound UDP `port` on 127.0.0.1 (or any
/// address), looking at /proc/net/udp so as not to race for the port.
pub fn wait_udp_bound(port: u16, limit: Duration) {
    let wanted = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    let deadline = Instant::now() + limit;
    loop {
        let table = fs::read_to_string("/proc/net/udp").unwrap_or_default();
        let bound = table.lines().skip(1).any(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|local| wanted.iter().any(|w| w == local))
        });
        if bound {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing bound UDP port {port} within {limit:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- SIPp --------------------------------------------------------------------

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// One SIPp process; killed on drop.
pub struct Sipp {
    child: Child,
    dir: PathBuf,
    limit: Duration,
}

impl Sipp {
    /// Starts `sipp` against `engine` with scenario `file` and `extra` args,
    /// as instance `k`, for one call. `timeout_s` bounds the whole run
    /// (SIPp's -timeout, an error if hit).
    pub fn spawn(engine: &Engine, k: u16, file: &str, extra: &[&str], timeout_s: u64) -> Sipp {
        Sipp::start(engine, k, file, extra, timeout_s, 1)
    }

    /// [`Sipp::spawn`] for `calls` calls (-m). A scenario that starts by
    /// receiving runs SIPp as a server: call [`Sipp::wait_listening`]
    /// before the engine may send to it.
    pub fn start(
        engine: &Engine,
        k: u16,
        file: &str,
        extra: &[&str],
        timeout_s: u64,
        calls: u32,
    ) -> Sipp {
        Sipp::start_via(engine, engine.sip_addr(), k, file, extra, timeout_s, calls)
    }

    /// [`Sipp::start`] sending to `target` (a lossy relay in front of the
    /// engine) instead of the engine itself.
    pub fn start_via(
        engine: &Engine,
        target: SocketAddr,
        k: u16,
        file: &str,
        extra: &[&str],
        timeout_s: u64,
        calls: u32,
    ) -> Sipp {
        let ports = engine.ports.sipp(k);
        let label = format!("sipp{k}");
        Sipp::start_on_via(engine, target, ports, &label, file, extra, timeout_s, calls)
    }

    /// [`Sipp::start`] on ports the test chooses (`label` names its
    /// folder): a third phone beside a [`PortBlock`]'s SIPp instances 0
    /// and 1.
    pub fn start_on(
        engine: &Engine,
        ports: SippPorts,
        label: &str,
        file: &str,
        extra: &[&str],
        timeout_s: u64,
        calls: u32,
    ) -> Sipp {
        let target = engine.sip_addr();
        Sipp::start_on_via(engine, target, ports, label, file, extra, timeout_s, calls)
    }

    /// [`Sipp::start_on`] sending to `target` (a proxy in front of the
    /// engine) instead of the engine itself.
    #[allow(clippy::too_many_arguments)]
    pub fn start_on_via(
        engine: &Engine,
        target: SocketAddr,
        ports: SippPorts,
        label: &str,
        file: &str,
        extra: &[&str],
        timeout_s: u64,
        calls: u32,
    ) -> Sipp {
        // One folder per run: an agent's phone runs twice on one port
        // (registering, then taking calls).
        let stem = file.trim_end_matches(".xml");
        let dir = (1..)
            .map(|i| engine.path().join(format!("{label}-{stem}-{i}")))
            .find(|d| !d.exists())
            .expect("a free folder name");
        fs::create_dir_all(&dir).expect("sipp dir");
        let timeout = timeout_s.to_string();
        let child = Command::new("sipp")
            .arg(target.to_string())
            .arg("-sf")
            .arg(scenario(file))
            .args(["-s", "4000", "-i", "127.0.0.1"])
            .args(["-p", &ports.sip.to_string()])
            .args(["-mp", &ports.media.to_string()])
            .args(["-cp", &ports.control.to_string()])
            .args(["-m", &calls.to_string(), "-nostdin"])
            .args(["-timeout", &timeout, "-timeout_error"])
            .args(["-trace_err", "-trace_msg", "-trace_logs"])
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

    /// Waits until this SIPp has bound its SIP port (a server scenario is
    /// then ready for the engine's requests).
    pub fn wait_listening(&self, engine: &Engine, k: u16) {
        wait_udp_bound(engine.ports.sipp(k).sip, Duration::from_secs(5));
    }

    /// Waits for SIPp; panics unless it exits 0 (every call succeeded).
    /// Returns the finished run, for its logs.
    pub fn expect_success(mut self, engine: &Engine) -> Sipp {
        let status = wait_child(&mut self.child, self.limit);
        if status.map(|s| s.code()) == Some(Some(0)) {
            return self;
        }
        panic!(
            "sipp ({}) failed ({}).\n--- sipp errors ---\n{}\n--- sipp stderr ---\n{}\n\
             --- sipp messages (tail) ---\n{}\n--- hotline log (tail) ---\n{}",
            self.dir.display(),
            status.map_or("timed out".to_string(), |s| s.to_string()),
            self.read("_errors.log", 4000),
            self.read("stderr.txt", 2000),
            self.read("_messages.log", 6000),
            engine.log_tail()
        );
    }

    /// Waits for SIPp to end, whatever its verdict (for runs where some
    /// calls are meant to fail), and returns it for its logs.
    pub fn finish(mut self) -> Sipp {
        let _ = wait_child(&mut self.child, self.limit);
        self
    }

    /// Stops a SIPp that would run on (a server taking any number of
    /// calls) and returns its SIP messages log.
    pub fn stop(mut self) -> String {
        terminate(&mut self.child, Duration::from_secs(5));
        self.read("_messages.log", usize::MAX)
    }

    /// What the scenario's `<log>` actions wrote.
    pub fn logs(&self) -> String {
        self.read("_logs.log", usize::MAX)
    }

    pub fn read(&self, suffix: &str, max: usize) -> String {
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

// ---- records, prompts --------------------------------------------------------

/// The only record, or a panic listing all of them.
pub fn single(records: &[Value]) -> &Value {
    assert_eq!(records.len(), 1, "expected one record: {records:#?}");
    &records[0]
}

pub fn str_field<'a>(record: &'a Value, key: &str) -> &'a str {
    record[key]
        .as_str()
        .unwrap_or_else(|| panic!("record field {key} is not a string: {record}"))
}

pub fn u64_field(record: &Value, key: &str) -> u64 {
    record[key]
        .as_u64()
        .unwrap_or_else(|| panic!("record field {key} is not a number: {record}"))
}

/// A timestamp field ("2026-01-02T03:04:05.678Z") as a time.
pub fn time_field(record: &Value, key: &str) -> SystemTime {
    let text = str_field(record, key);
    humantime::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("record field {key} = {text:?} is not a time ({e}): {record}"))
}

/// Milliseconds from `earlier` to `later` (negative if reversed).
pub fn ms_between(earlier: SystemTime, later: SystemTime) -> i64 {
    match later.duration_since(earlier) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// `ivr_path`: the IVR nodes the call went through.
pub fn ivr_path(record: &Value) -> Vec<&str> {
    record["ivr_path"]
        .as_array()
        .unwrap_or_else(|| panic!("record field ivr_path is not an array: {record}"))
        .iter()
        .map(|v| v.as_str().expect("node name"))
        .collect()
}

/// A duration setting ("1s") in milliseconds.
pub fn ms(setting: &str) -> u64 {
    humantime::parse_duration(setting)
        .expect("duration")
        .as_millis() as u64
}

/// A prompt's WAV: per-language prompts are in `prompts/<language>/`,
/// shared ones (the beep, music on hold) in `prompts/`.
pub fn prompt_path(language: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let file = format!("{name}.wav");
    [dir.join(language).join(&file), dir.join(&file)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no prompt {file} in {}", dir.display()))
}

/// A prompt's samples (8 kHz mono 16-bit, as the engine plays them).
pub fn prompt_samples(language: &str, name: &str) -> Vec<i16> {
    let path = prompt_path(language, name);
    let mut reader = hound::WavReader::open(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels),
        (8000, 1),
        "{}",
        path.display()
    );
    reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("bad samples in {}: {e}", path.display()))
}

/// What a prompt takes to play: whole 20 ms frames, the last one padded.
pub fn prompt_ms(language: &str, name: &str) -> u64 {
    let path = prompt_path(language, name);
    let reader = hound::WavReader::open(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, 8000, "{}", path.display());
    let samples = u64::from(reader.duration());
    samples.div_ceil(160) * 20
}

// ---- RTP ---------------------------------------------------------------------

/// Statistics of the RTP the engine sent to one port.
#[derive(Debug, Default)]
pub struct RtpStats {
    pub packets: usize,
    pub not_version_2: usize,
    pub payload_types: BTreeSet<u8>,
    pub sources: BTreeSet<SocketAddr>,
    /// Packets whose payload is not all PCMU silence (0xFF).
    pub with_sound: usize,
    /// Packets whose sequence number is not the previous one plus one.
    pub sequence_breaks: usize,
}

/// Counts RTP arriving on `socket` until `stop` is set or `limit` passes.
pub fn count_rtp(
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> JoinHandle<RtpStats> {
    let probe = RtpProbe::start(socket, stop, limit);
    thread::spawn(move || {
        let heard = probe.join();
        let mut stats = RtpStats {
            not_version_2: heard.not_rtp,
            ..RtpStats::default()
        };
        let mut last_seq: Option<u16> = None;
        for p in &heard.packets {
            stats.packets += 1;
            stats.sources.insert(p.from);
            if p.version != 2 {
                stats.not_version_2 += 1;
            }
            stats.payload_types.insert(p.payload_type);
            if last_seq.is_some_and(|last| p.seq != last.wrapping_add(1)) {
                stats.sequence_breaks += 1;
            }
            last_seq = Some(p.seq);
            if p.payload.iter().any(|&b| b != 0xFF) {
                stats.with_sound += 1;
            }
        }
        stats
    })
}

/// One RTP packet as received.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub at: SystemTime,
    pub from: SocketAddr,
    pub version: u8,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// The payload decoded, when it is G.711 audio (PCMU or PCMA).
    pub fn samples(&self) -> Option<Vec<i16>> {
        let codec = Codec::from_payload_type(self.payload_type)?;
        Some(self.payload.iter().map(|&b| codec.decode(b)).collect())
    }
}

/// Everything an [`RtpProbe`] heard.
#[derive(Debug, Default)]
pub struct Heard {
    pub packets: Vec<RtpPacket>,
    /// Datagrams too short to be RTP.
    pub not_rtp: usize,
}

impl Heard {
    pub fn payload_types(&self) -> BTreeSet<u8> {
        self.packets.iter().map(|p| p.payload_type).collect()
    }

    pub fn sources(&self) -> BTreeSet<SocketAddr> {
        self.packets.iter().map(|p| p.from).collect()
    }

    /// Packets of G.711 audio that are mostly (at least half their energy)
    /// a tone of `hz`.
    pub fn tone_packets(&self, hz: f64) -> usize {
        self.packets
            .iter()
            .filter_map(RtpPacket::samples)
            .filter(|s| tone_share(s, hz) >= 0.5)
            .count()
    }

    /// Audio samples received, all packets together.
    pub fn audio_samples(&self) -> usize {
        self.packets
            .iter()
            .filter(|p| Codec::from_payload_type(p.payload_type).is_some())
            .map(|p| p.payload.len())
            .sum()
    }

    /// When the first packet carrying exactly `payload` arrived.
    pub fn first_with_payload(&self, payload: &[u8]) -> Option<SystemTime> {
        self.packets
            .iter()
            .find(|p| p.payload == payload)
            .map(|p| p.at)
    }
}

/// The share of `samples`' energy at `hz` (Goertzel; 1.0 for a pure tone).
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let n = samples.len() as f64;
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    // Below about -60 dBFS: silence, not a tone.
    if n == 0.0 || energy / n < 1000.0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure tone of amplitude A: power (A N / 2)^2, energy N A^2 / 2.
    power / (n * energy / 2.0)
}

/// Listens for RTP on a socket of its own (the port a phone's SDP names)
/// and keeps every packet, until stopped or `limit` passes.
pub struct RtpProbe {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Heard>,
}

impl RtpProbe {
    /// Binds 127.0.0.1:`port` and listens for up to `limit`.
    pub fn listen(port: u16, limit: Duration) -> RtpProbe {
        let socket = UdpSocket::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot bind RTP listener on {port}: {e}"));
        RtpProbe::start(socket, Arc::new(AtomicBool::new(false)), limit)
    }

    fn start(socket: UdpSocket, stop: Arc<AtomicBool>, limit: Duration) -> RtpProbe {
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let deadline = Instant::now() + limit;
            let mut heard = Heard::default();
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let packet = &buf[..n];
                if n < 12 {
                    heard.not_rtp += 1;
                    continue;
                }
                let csrc = usize::from(packet[0] & 0x0f) * 4;
                heard.packets.push(RtpPacket {
                    at: SystemTime::now(),
                    from,
                    version: packet[0] >> 6,
                    payload_type: packet[1] & 0x7f,
                    seq: u16::from_be_bytes([packet[2], packet[3]]),
                    timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
                    payload: packet.get(12 + csrc..).unwrap_or_default().to_vec(),
                });
            }
            heard
        });
        RtpProbe { stop, handle }
    }

    /// Stops listening and returns what was heard.
    pub fn finish(self) -> Heard {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    fn join(self) -> Heard {
        self.handle.join().expect("RTP listener")
    }
}

// ---- audio files ---------------------------------------------------------------

/// A SIPp sample capture, or a skip (failure under `CI=true`) without it.
pub fn sample_pcap(name: &str) -> Option<String> {
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
pub fn dtmf_audio(
    low: f64,
    high: f64,
    lead_ms: usize,
    tone_ms: usize,
    trail_ms: usize,
) -> Vec<i16> {
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

/// 8 kHz audio: a tone of `hz` at -12 dBFS for `ms` milliseconds.
pub fn tone(hz: f64, ms: usize) -> Vec<i16> {
    let peak = 32768.0 * 10f64.powf(-12.0 / 20.0);
    (0..ms * 8)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (peak * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
        })
        .collect()
}

/// Writes `samples` (8 kHz) as a pcap of RTP PCMU packets, for SIPp's
/// play_pcap_audio.
pub fn write_pcmu_pcap(path: &Path, samples: &[i16]) {
    write_rtp_pcap(path, samples, Codec::Pcmu);
}

/// Writes `samples` (8 kHz) as a pcap of RTP packets in `codec`, for
/// SIPp's play_pcap_audio: Ethernet/IPv4/UDP frames 20 ms apart, 160
/// samples each, with consecutive sequence numbers and timestamps and one
/// SSRC. SIPp rewrites the addresses and ports when it replays them.
pub fn write_rtp_pcap(path: &Path, samples: &[i16], codec: Codec) {
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
        let marker = if i == 0 { 0x80 } else { 0 };
        rtp.push(marker | codec.payload_type());
        rtp.extend(seq0.wrapping_add(i as u16).to_be_bytes());
        rtp.extend(ts0.wrapping_add(160 * i as u32).to_be_bytes());
        rtp.extend(ssrc.to_be_bytes());
        rtp.extend(frame.iter().map(|&s| codec.encode(s)));
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

/// A WAV file's format, length and loudness.
#[derive(Debug)]
pub struct WavInfo {
    pub spec: hound::WavSpec,
    pub duration_ms: u64,
    pub rms: f64,
}

pub fn wav_info(path: &Path) -> WavInfo {
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

// ---- raw SIP over UDP ----------------------------------------------------------

/// A hand-written request, rendered for the sending socket's port.
pub struct RawRequest<'a> {
    pub start_line: &'a str,
    pub method: &'a str,
    pub extra_headers: &'a str,
    pub content_length: &'a str,
    pub body: &'a str,
}

impl RawRequest<'_> {
    pub fn new<'a>(start_line: &'a str, method: &'a str) -> RawRequest<'a> {
        RawRequest {
            start_line,
            method,
            extra_headers: "",
            content_length: "0",
            body: "",
        }
    }

    pub fn render(&self, port: u16, id: &str) -> String {
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
pub fn exchange(engine: &Engine, req: &RawRequest<'_>, id: &str) -> String {
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

pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn assert_status(response: &str, status: u16, what: &str) {
    assert!(
        response.starts_with(&format!("SIP/2.0 {status} ")),
        "{what}: expected {status}, got:\n{response}"
    );
}
