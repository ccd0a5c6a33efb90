//! A throw-away PostgreSQL for tests: Debian's server binaries
//! (`/usr/lib/postgresql/<version>/bin`, package `postgresql`), a cluster
//! in a temporary folder, listening on 127.0.0.1 at a free port (its unix
//! socket in that folder, so it never meets the machine's own server),
//! trust authentication, fsync off. Self-contained, so any test can use
//! it with
//!
//! ```ignore
//! #[path = "support/postgres.rs"]
//! mod pg;
//! ```
//!
//! PostgreSQL refuses to run as root, and tests run as root here: then
//! `initdb` and `pg_ctl` run as the `postgres` user (`runuser`), which
//! owns the folder. Missing PostgreSQL is a skip (message on stderr), or
//! a failure when `CI=true`, where every test must really run.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The database [`PgCluster::start`] creates.
pub const DATABASE: &str = "hotline";

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server's tools as the `postgres` user (we are root).
    as_postgres: bool,
    running: bool,
    databases: AtomicUsize,
}

impl PgCluster {
    /// A new cluster, started, with database [`DATABASE`]; `None` (after
    /// a skip notice) when PostgreSQL is not installed, and a panic
    /// instead under `CI=true`. A cluster that is installed but will not
    /// start is a panic.
    pub fn start() -> Option<PgCluster> {
        PgCluster::start_with(None)
    }

    /// [`start`](Self::start), the server speaking TLS with the PEM
    /// certificate and key given, and refusing connections over TCP
    /// without it (its own socket, for the test's setup, still trusted).
    pub fn start_tls(certificate: &str, key: &str) -> Option<PgCluster> {
        PgCluster::start_with(Some((certificate, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<PgCluster> {
        let bin = match find_bin() {
            Ok(bin) => bin,
            Err(why) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("PostgreSQL test cannot run under CI=true: {why}");
                }
                eprintln!("SKIPPED: {why}");
                return None;
            }
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("hotline-pg-")
            .tempdir()
            .expect("temporary folder for PostgreSQL");
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            as_postgres,
            running: false,
            databases: AtomicUsize::new(0),
        };
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(cluster.dir.path())
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "cannot give {} to the postgres user (needed to run PostgreSQL as root)",
                cluster.dir.path().display()
            );
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        if let Some((certificate, key)) = tls {
            cluster.use_tls(certificate, key);
        }
        // A free port: what the kernel hands out now. Should another
        // process take it before the server binds it, try another.
        let mut tries = 0;
        loop {
            cluster.port = free_port();
            if cluster.try_start() {
                break;
            }
            tries += 1;
            assert!(tries < 3, "PostgreSQL did not start:\n{}", cluster.log());
        }
        cluster.create_named(DATABASE);
        Some(cluster)
    }

    /// The database [`DATABASE`]'s URL.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database (its URL), for a test of its own.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        self.create_named(&name);
        self.url_of(&name)
    }

    /// The server's certificate and key in its data folder, `ssl = on`,
    /// and TCP only with TLS.
    fn use_tls(&self, certificate: &str, key: &str) {
        let data = self.data();
        let write = |name: &str, text: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let path = data.join(name);
            std::fs::write(&path, text).expect("write a server file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .expect("set its mode");
            if self.as_postgres {
                let status = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&path)
                    .status()
                    .expect("run chown");
                assert!(status.success(), "chown {}", path.display());
            }
        };
        write("server.crt", certificate, 0o644);
        write("server.key", key, 0o600);
        write(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 reject\n",
            0o600,
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).expect("write postgresql.conf");
    }

    fn create_named(&self, name: &str) {
        // Through the server's own socket, which needs no TLS.
        let admin_url = format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        );
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test cluster: {e}\n{}", self.log()));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    }

    /// Stops the server at once, as a crash or an outage would (connected
    /// clients see their connections drop).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data();
            self.run(
                "pg_ctl",
                &["stop", "-D", path_str(&data), "-m", "immediate", "-w"],
            );
            self.running = false;
        }
    }

    /// Starts the server again after [`stop`](Self::stop), on the same
    /// port, with everything it had.
    pub fn start_again(&mut self) {
        if !self.running {
            assert!(
                self.try_start(),
                "PostgreSQL did not start again:\n{}",
                self.log()
            );
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn try_start(&mut self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (self.data(), self.log_path());
        let out = self.command(
            "pg_ctl",
            &[
                "start",
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
            ],
        );
        self.running = out.status.success();
        self.running
    }

    fn command(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&program);
            cmd
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self.command(
                "pg_ctl",
                &["stop", "-D", path_str(&data), "-m", "immediate", "-w"],
            );
        }
        // The folder goes with `dir`.
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// Debian's newest PostgreSQL server binaries, or why there are none.
fn find_bin() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                        .then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let (_, bin) = found.pop().ok_or_else(|| {
        "PostgreSQL's server is not installed: no /usr/lib/postgresql/*/bin/initdb \
         (Debian: apt-get install postgresql)"
            .to_string()
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let user = Command::new("id")
            .args(["-u", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !user.is_ok_and(|s| s.success()) {
            return Err("running as root, and there is no `postgres` user to run \
                        PostgreSQL as (Debian's postgresql package makes it)"
                .to_string());
        }
    }
    Ok(bin)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
