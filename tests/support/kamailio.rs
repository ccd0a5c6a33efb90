//! Kamailio for interop tests: config/kamailio/hotline-edge.cfg run as
//! shipped, in the foreground, with its ports, modules folder and
//! dispatcher list given with `-A` (no root, a run folder of its own).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{require_root, require_tool, sample_pcap, skip_or_fail, tail, terminate};

/// Where Debian (and other distributions) put Kamailio's modules.
const MODULE_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/lib64/kamailio/modules",
];

/// The folder of Kamailio's modules, or a skip (failure under `CI=true`).
pub fn kamailio_modules() -> Option<&'static str> {
    let found = MODULE_DIRS
        .into_iter()
        .find(|d| Path::new(d).join("dispatcher.so").is_file());
    if found.is_none() {
        skip_or_fail(&format!(
            "Kamailio's modules (dispatcher.so, path.so) are in none of {MODULE_DIRS:?}"
        ));
    }
    found
}

/// What a test through Kamailio needs: Kamailio's modules folder and
/// SIPp's capture of the key 1 (RFC 4733), with root for SIPp's raw
/// sockets; `None` after a skip notice (a failure under `CI=true`).
pub fn kamailio_and_sipp() -> Option<(&'static str, String)> {
    if !require_tool("kamailio") || !require_tool("sipp") || !require_root() {
        return None;
    }
    let modules = kamailio_modules()?;
    let dtmf = sample_pcap("dtmf_2833_1.pcap")?;
    Some((modules, dtmf))
}

/// Kamailio running config/kamailio/hotline-edge.cfg, its log in
/// `<dir>/kamailio.log`; stopped on drop.
pub struct Kamailio {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Kamailio {
    /// Starts Kamailio on 127.0.0.1:`port` (UDP and TCP) in front of the
    /// hotline `nodes` (dispatcher URIs such as `sip:127.0.0.1:5060` or
    /// `sip:127.0.0.1:5060;transport=tcp`), in folder `dir`, and waits
    /// until it listens.
    pub fn start(dir: &Path, port: u16, nodes: &[String], modules: &str) -> Kamailio {
        fs::create_dir_all(dir).expect("kamailio folder");
        let list = dir.join("hotline-dispatcher.list");
        let lines: String = nodes.iter().map(|n| format!("1 {n} 0 0\n")).collect();
        fs::write(&list, lines).expect("dispatcher list");
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kamailio/hotline-edge.cfg");
        let log = fs::File::create(dir.join("kamailio.log")).expect("kamailio log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-w")
            .arg(dir)
            .arg("-Y")
            .arg(dir)
            .args(["-A", "LISTEN_IP=127.0.0.1"])
            .args(["-A", &format!("SIP_PORT={port}")])
            .args(["-A", &format!("MODULES_DIR=\"{modules}/\"")])
            .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start kamailio");
        let mut kamailio = Kamailio {
            child,
            dir: dir.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        kamailio.wait_listening();
        kamailio
    }

    /// Until Kamailio has bound UDP and accepts TCP on its port.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited ({status}):\n{}", self.log());
            }
            let udp = fs::read_to_string("/proc/net/udp")
                .unwrap_or_default()
                .contains(&format!("0100007F:{:04X}", self.addr.port()));
            if udp && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not listen on {} within 10 s:\n{}",
                self.addr,
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        tail(
            &fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default(),
            8000,
        )
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM: the main process stops its workers.
        terminate(&mut self.child, Duration::from_secs(5));
    }
}
