//! Headless Chromium for tests that look at a page: the DOM after loading
//! (`--dump-dom`) and a screenshot (PNG). Self-contained, so any test can
//! use it with
//!
//! ```ignore
//! #[path = "support/chromium.rs"]
//! mod chromium;
//! ```
//!
//! Missing Chromium is a skip (message on stderr), or a failure when
//! `CI=true`, where every test must really run. Each run has its own
//! profile folder and a time limit; on overrun only the process group this
//! helper started is killed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The flags every headless run here uses. The background-networking ones
/// matter on a closed network: without them Chromium keeps trying to reach
/// Google's hosts.
pub const HEADLESS_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// How long one Chromium run may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(90);

/// The Chromium binary, or `None` (after printing a skip notice) when it
/// is not installed; panics instead under `CI=true`.
pub fn find() -> Option<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    });
    let found = on_path.or_else(|| {
        let fixed = PathBuf::from("/usr/bin/chromium");
        fixed.is_file().then_some(fixed)
    });
    if found.is_none() {
        let why = "chromium is not installed (Debian: apt-get install chromium)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("browser test cannot run under CI=true: {why}");
        }
        eprintln!("SKIPPED: {why}");
    }
    found
}

/// Runs headless Chromium on `page` with `extra` arguments and returns its
/// standard output. Panics (with stderr) if it fails or overruns.
pub fn run(chromium: &Path, page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page path").display()
    );
    let mut cmd = Command::new(chromium);
    cmd.args(HEADLESS_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so an overrun kills its helpers too, and
    // nothing else.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("start chromium");
    let pid = child.id();
    // Read the pipes on threads so a full pipe cannot stall Chromium.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out_pipe, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err_pipe, &mut s);
        s
    });
    let deadline = Instant::now() + TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => stdout,
        Some(s) => panic!("chromium failed ({s}) on {url}:\n{stderr}"),
        None => panic!("chromium did not finish within {TIME_LIMIT:?} on {url}:\n{stderr}"),
    }
}

/// The page's DOM as Chromium built it (after parsing, with no scripts).
pub fn dump_dom(chromium: &Path, page: &Path) -> String {
    run(chromium, page, &["--dump-dom".to_string()])
}

/// Screenshots `page` at `width` x `height` into `png`; checks that a PNG
/// was written and returns its size in bytes.
pub fn screenshot(chromium: &Path, page: &Path, png: &Path, width: u32, height: u32) -> u64 {
    let _ = std::fs::remove_file(png);
    run(
        chromium,
        page,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
        ],
    );
    let bytes =
        std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    bytes.len() as u64
}

/// Width and height of a PNG, from its IHDR chunk.
pub fn png_size(png: &Path) -> (u32, u32) {
    let bytes = std::fs::read(png).expect("read png");
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    assert!(bytes.len() > 24 && &bytes[12..16] == b"IHDR", "not a PNG");
    (be(16), be(20))
}
