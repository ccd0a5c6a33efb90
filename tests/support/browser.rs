//! Headless Chromium for page tests, driven over the DevTools protocol: a
//! page stays open while the test watches its DOM change (a wallboard fed
//! by server-sent events never lets `--dump-dom --virtual-time-budget`
//! finish, since its event stream never goes idle).
//!
//! `Browser::open(url)` starts `/usr/bin/chromium --headless` with its own
//! profile in a temporary folder and `--remote-debugging-port=0` (the
//! system picks a free port, read back from `DevToolsActivePort`), finds
//! the page's WebSocket and evaluates JavaScript in it. Chromium is killed
//! on drop. Include it with `#[path = "support/browser.rs"] mod browser;`
//! beside `mod support;` and `#[path = "support/chromium.rs"] mod chromium;`
//! (which finds Chromium and holds the headless flags).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Whether Chromium is installed: missing, a skip (message on stderr), or
/// a failure under `CI=true`.
pub fn require_chromium() -> bool {
    crate::chromium::find().is_some()
}

/// One headless Chromium showing one page.
pub struct Browser {
    child: Child,
    profile: tempfile::TempDir,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Starts Chromium on `url` with a `width` x `height` window and
    /// connects to the page.
    pub fn open(url: &str, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let chromium = crate::chromium::find().expect("checked by require_chromium");
        let child = Command::new(chromium)
            .args(crate::chromium::HEADLESS_FLAGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut browser_child = Some(child);
        let port = wait_devtools_port(profile.path(), &mut browser_child);
        let child = browser_child.expect("chromium still running");
        let ws_url = page_websocket(port, url);
        let (socket, _) = tungstenite::connect(ws_url.as_str())
            .unwrap_or_else(|e| panic!("cannot connect to the page at {ws_url}: {e}"));
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
        }
        Browser {
            child,
            profile,
            socket,
            next_id: 1,
        }
    }

    /// Sends one DevTools command and returns its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(request.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        loop {
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("DevTools {method}: no answer: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            // Events (no id) and other answers are skipped.
            if value["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(error) = value.get("error") {
                panic!("DevTools {method} failed: {error}");
            }
            return value["result"].clone();
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` and waits for the promise it gives (a
    /// `fetch`, say), returning its value.
    pub fn eval_async(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Goes to `url` in the same page (cookies kept).
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        // The new document replaces the old: wait until it is there.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let here = self.eval("location.href + ' ' + document.readyState");
            if here
                .as_str()
                .is_some_and(|h| h.starts_with(url) && h.ends_with("complete"))
            {
                return;
            }
            assert!(Instant::now() < deadline, "{url} did not load: {here}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `expression` until it evaluates to `want`, or panics after
    /// `limit` with the last value.
    pub fn wait_for(&mut self, expression: &str, want: &Value, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.eval(expression);
            if &got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{expression} = {got} after {limit:?}, expected {want}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the page as shown.
    pub fn screenshot(&mut self, path: &Path) {
        let result = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let data = result["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// The profile folder (for keeping artefacts beside it).
    pub fn profile(&self) -> &Path {
        self.profile.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the DevTools port Chromium wrote into its profile.
fn wait_devtools_port(profile: &Path, child: &mut Option<Child>) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(port) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            return port;
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("chromium exited at start: {status}");
            }
        }
        if Instant::now() > deadline {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!("chromium wrote no DevToolsActivePort within 20 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The WebSocket of the page showing `url`, from `/json/list`.
fn page_websocket(port: u16, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let targets = http_get(port, "/json/list");
        let list: Value = serde_json::from_str(&targets).unwrap_or(Value::Null);
        let page = list.as_array().and_then(|pages| {
            pages.iter().find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
            })
        });
        if let Some(ws) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
            return ws.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no page for {url} in DevTools' list: {targets}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}
