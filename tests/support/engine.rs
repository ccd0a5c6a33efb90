//! The one way tests run the real `hotline` binary.
//!
//! - [`command`]: the binary for a one-shot command (`check-config`,
//!   `report`, `plan`, `messages list`).
//! - [`Hotline`]: `hotline run --config <file>` in a temporary folder of
//!   its own, started from a config text (usually [`base_config`] edited
//!   with [`set_key`]), ready once its SIP port answers OPTIONS with 200.
//!   It takes signals ([`Signal`]), keeps its log (stderr) in
//!   `engine.log`, and writes records to `cdr/` and messages to
//!   `messages/` beside its config. Killed on drop, also when a test
//!   panics (its log tail is then printed); `INTEROP_KEEP=1` keeps the
//!   folder and prints its path.
//!
//! Self-contained, so a test that only runs commands can include it alone:
//! `#[path = "support/engine.rs"] mod engine;`. The interop harness
//! (`mod support;`) includes and re-exports it.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_hotline");

/// How long [`Hotline::start`] waits for the SIP port to answer.
const READY_LIMIT: Duration = Duration::from_secs(15);

/// The binary, for a one-shot command; the caller adds the arguments.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("NO_COLOR", "1");
    cmd
}

// ---- config ----------------------------------------------------------------------

/// The ports one engine listens on (all on 127.0.0.1).
#[derive(Debug, Clone, Copy)]
pub struct EnginePorts {
    /// SIP over UDP and TCP.
    pub sip: u16,
    /// The HTTP API (metrics, status, wallboard).
    pub api: u16,
    /// The RTP port range, both ends included.
    pub rtp: (u16, u16),
}

/// config/default.toml as shipped.
pub fn default_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    fs::read_to_string(&path).expect("read config/default.toml")
}

/// config/default.toml listening on `ports`, with its records in `cdr/` and
/// messages in `messages/` (relative to the config file, so in the
/// engine's own folder).
pub fn base_config(ports: EnginePorts) -> String {
    let mut text = default_config();
    for (table, key, value) in [
        ("[sip]", "listen", format!("[\"127.0.0.1:{}\"]", ports.sip)),
        ("[api]", "listen", format!("\"127.0.0.1:{}\"", ports.api)),
        ("[media]", "port_min", ports.rtp.0.to_string()),
        ("[media]", "port_max", ports.rtp.1.to_string()),
        ("[cdr]", "dir", "\"cdr\"".to_string()),
        ("[messages]", "dir", "\"messages\"".to_string()),
    ] {
        text = set_key(&text, table, key, &value);
    }
    text
}

/// Sets `key = value` in the table whose header line is `table` (e.g.
/// `[ivr.nodes.silent]`); the key must be there, so that a change to
/// default.toml fails loudly instead of leaving a default in place.
pub fn set_key(text: &str, table: &str, key: &str, value: &str) -> String {
    set_key_in(text, table, key, value, false)
}

/// [`set_key`] in every table with that header (`[[queues]]`).
pub fn set_key_all(text: &str, table: &str, key: &str, value: &str) -> String {
    set_key_in(text, table, key, value, true)
}

fn set_key_in(text: &str, table: &str, key: &str, value: &str, all: bool) -> String {
    let mut in_table = false;
    let mut done_here = false;
    let mut done = 0;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_table = t == table;
            done_here = false;
        }
        let is_key = !t.starts_with('#') && t.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if in_table && is_key && !done_here && (all || done == 0) {
            out.push_str(&format!("{key} = {value}"));
            done_here = true;
            done += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(done > 0, "no `{key}` under {table} in config/default.toml");
    out
}

// ---- the process ---------------------------------------------------------------

/// A signal to send the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Drain: finish calls in progress, refuse new ones, then exit.
    Term,
    /// Ctrl-C: hang up what is left and exit.
    Int,
    /// Reload the config file.
    Hup,
    /// A crash, as far as the engine can tell.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Kill => "KILL",
        }
    }
}

/// A running `hotline run`.
pub struct Hotline {
    child: Child,
    dir: tempfile::TempDir,
    ports: EnginePorts,
    config: PathBuf,
    log: PathBuf,
    /// Environment variables set for the engine (secrets a config names
    /// by `password_env`), kept for restarts.
    env: Vec<(String, String)>,
}

impl Hotline {
    /// Writes `config` (and `files`, name and text, e.g. a caller
    /// directory) into a new temporary folder, runs the engine on it and
    /// waits until it answers OPTIONS on `ports.sip`. `config` must listen
    /// on `ports` ([`base_config`] does).
    pub fn start(ports: EnginePorts, config: &str, files: &[(&str, &str)]) -> Hotline {
        Hotline::start_with_env(ports, config, files, &[])
    }

    /// [`Hotline::start`] with `env` (name, value) set for the engine
    /// process (and its restarts), not for the test process.
    pub fn start_with_env(
        ports: EnginePorts,
        config: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Hotline {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hotline.toml");
        fs::write(&path, config).expect("write config");
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write a file beside the config");
        }
        let log = dir.path().join("engine.log");
        fs::File::create(&log).expect("log file");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn(&path, dir.path(), &log, &env);
        let mut hotline = Hotline {
            child,
            dir,
            ports,
            config: path,
            log,
            env,
        };
        hotline.wait_ready();
        hotline
    }

    /// Starts the engine again on the same config and folders (after a
    /// crash or a stop); its log goes on in the same file.
    pub fn restart(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.child = spawn(&self.config, self.dir.path(), &self.log, &self.env);
        self.wait_ready();
    }

    /// Polls with OPTIONS until the SIP port answers 200.
    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let deadline = Instant::now() + READY_LIMIT;
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
            "hotline did not answer OPTIONS on {} within {READY_LIMIT:?}:\n{}",
            self.sip_addr(),
            self.log_tail()
        );
    }

    pub fn ports(&self) -> EnginePorts {
        self.ports
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.sip))
    }

    pub fn api_port(&self) -> u16 {
        self.ports.api
    }

    /// The engine's folder: its config, log, records and messages, and
    /// room for the test's own files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The config file; a test may rewrite it and send [`Signal::Hup`].
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Where [`base_config`] puts the records (`*.jsonl`, `queue_log`).
    pub fn records_dir(&self) -> PathBuf {
        self.path().join("cdr")
    }

    /// Where [`base_config`] puts the voice messages and their index.
    pub fn messages_dir(&self) -> PathBuf {
        self.path().join("messages")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal`; the process must still be there to take it.
    pub fn signal(&self, signal: Signal) {
        let status = Command::new("kill")
            .arg(format!("-{}", signal.name()))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{} failed", signal.name());
    }

    /// SIGTERM, then wait (the engine writes every record before exiting).
    pub fn stop(&mut self) -> ExitStatus {
        let status = terminate(&mut self.child, Duration::from_secs(10));
        status.unwrap_or_else(|| {
            panic!(
                "hotline did not stop within 10 s of SIGTERM:\n{}",
                self.log_tail()
            )
        })
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        self.signal(Signal::Kill);
        assert!(
            self.wait_exit(Duration::from_secs(5)).is_some(),
            "hotline still there 5 s after SIGKILL"
        );
    }

    /// Waits for the engine to exit on its own; `None` if it did not
    /// within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, limit)
    }

    /// The engine's whole log (its stderr).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log_text(), 6000)
    }

    /// Waits until the engine's log holds `needle`, or panics after `limit`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the engine's log within {limit:?}:\n{}",
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hotline {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let name = format!("hotline on SIP port {}", self.ports.sip);
        if std::env::var_os("INTEROP_KEEP").is_some() {
            // Config, engine log, records, messages and the peers' traces.
            self.dir.disable_cleanup(true);
            eprintln!("{name}: kept {}", self.dir.path().display());
        }
        if thread::panicking() {
            eprintln!("--- log of {name} ---\n{}", self.log_tail());
        }
    }
}

/// `hotline run --config <config>` in `dir`, stderr appended to `log`.
fn spawn(config: &Path, dir: &Path, log: &Path, env: &[(String, String)]) -> Child {
    let append = |path: &Path| {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    };
    command()
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info,hotline=debug")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(append(&dir.join("engine.out")))
        .stderr(append(log))
        .spawn()
        .expect("start hotline")
}

// ---- child processes (the engine, and the peers tests run beside it) ----------------

/// SIGTERM to `child`, then wait up to `limit`; SIGKILL if it is still
/// there. `None` when it had to be killed.
pub fn terminate(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    let status = wait_child(child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

/// The last `max` bytes of `text` (on a char boundary).
pub fn tail(text: &str, max: usize) -> String {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// An OPTIONS request from `socket`'s port.
pub fn options(socket: &UdpSocket, call_id: &str) -> String {
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
