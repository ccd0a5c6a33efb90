//! `hotline campaign create | list | show | pause | resume | cancel`: voice-
//! notice campaigns through the running engine's HTTP API (the bearer
//! token's endpoints under `/api/v1/campaigns`). The engine is found by
//! `--api` and `--token`, or by `--config` (its `api.listen` and
//! `api.token`).
//!
//! Exit codes: 0 done; 2 the API refused a field (400, the field named on
//! stderr) or the command line is incomplete; 1 anything else (the engine
//! unreachable, a wrong token, no such campaign).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Args)]
pub struct CampaignArgs {
    #[command(subcommand)]
    pub command: CampaignCommand,
    /// The engine's API, e.g. http://127.0.0.1:8088 [default: --config's
    /// api.listen (https:// with [tls]), else http://127.0.0.1:8088].
    #[arg(long, global = true)]
    pub api: Option<String>,
    /// The API's bearer token [default: --config's api.token].
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Take the API's address and token from this config file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign; prints its id.
    Create(Box<CreateArgs>),
    /// The campaigns the engine runs, with their numbers' states.
    List {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// One campaign, each number with its state and attempts.
    Show {
        id: u64,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop placing calls (calls on the line finish).
    Pause { id: u64 },
    /// Place calls again.
    Resume { id: u64 },
    /// End the campaign: numbers not yet final are not called.
    Cancel { id: u64 },
}

#[derive(Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    /// The trunk (a `[[trunks]]` name in the engine's config).
    #[arg(long)]
    pub trunk: String,
    /// A prompt of the engine's prompt set (or the name for --wav).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Upload this WAV as the notice (8 kHz mono 16-bit); named by
    /// --prompt, else by the file's stem.
    #[arg(long, value_name = "FILE")]
    pub wav: Option<PathBuf>,
    /// A CSV of numbers (the first column; a header line is skipped).
    #[arg(long, value_name = "FILE.csv")]
    pub numbers: Option<PathBuf>,
    /// A number to call (repeatable; added to --numbers).
    #[arg(long = "number", value_name = "N")]
    pub number: Vec<String>,
    /// First call this long after the start (the engine's default: 1m).
    #[arg(long)]
    pub first_after: Option<String>,
    /// Waits before each retry, e.g. 10m,1h,3h ("" for no retry).
    #[arg(long)]
    pub retry: Option<String>,
    #[arg(long)]
    pub confirm_key: Option<String>,
    #[arg(long)]
    pub repeat_key: Option<String>,
    #[arg(long)]
    pub optout_key: Option<String>,
    /// When the campaign starts (RFC 3339), if not now.
    #[arg(long)]
    pub start_at: Option<String>,
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    #[arg(long)]
    pub ring_timeout: Option<String>,
}

/// Why a command failed, and its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Runs the command; what it prints goes to stdout.
pub fn run(args: CampaignArgs) -> Result<String, Failure> {
    let api = Api::new(&args)?;
    match args.command {
        CampaignCommand::Create(c) => {
            let reply = create(&api, &c)?;
            let id = reply["id"]
                .as_u64()
                .ok_or_else(|| fail(1, format!("the API answered without an id: {reply}")))?;
            Ok(format!("{id}\n"))
        }
        CampaignCommand::List { json } => {
            let list = api.request("GET", "/api/v1/campaigns", None)?;
            Ok(if json {
                pretty(&list)
            } else {
                list_table(&list)
            })
        }
        CampaignCommand::Show { id, json } => {
            let c = api.request("GET", &format!("/api/v1/campaigns/{id}"), None)?;
            Ok(if json { pretty(&c) } else { show_text(&c) })
        }
        CampaignCommand::Pause { id } => api.action(id, "pause"),
        CampaignCommand::Resume { id } => api.action(id, "resume"),
        CampaignCommand::Cancel { id } => api.action(id, "cancel"),
    }
}

/// Where the API is, and its token.
struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// The body of a request: JSON, or multipart form data (content type, bytes).
enum Body {
    Json(Value),
    Form(String, Vec<u8>),
}

impl Api {
    fn new(args: &CampaignArgs) -> Result<Api, Failure> {
        let from_config = match &args.config {
            Some(path) => {
                // The API's table only: no trunk secret is needed here.
                let config = crate::shell::load::config_without_secrets(path)
                    .map_err(|e| fail(1, e.to_string()))?;
                let https = config.tls.as_ref().is_some_and(|t| t.https);
                // HTTPS: trust the engine's own certificate too.
                let roots = crate::shell::tls::api_client_roots(&config)
                    .map_err(|e| fail(1, e.to_string()))?;
                let api = config
                    .api
                    .ok_or_else(|| fail(1, format!("{}: no [api] table", path.display())))?;
                Some((api.listen, api.token, https, roots))
            }
            None => None,
        };
        let base = match (&args.api, &from_config) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some((listen, _, https, _))) => {
                let scheme = if *https { "https" } else { "http" };
                format!("{scheme}://{}", reachable(*listen))
            }
            (None, None) => "http://127.0.0.1:8088".to_string(),
        };
        let (token, roots) = match from_config {
            Some((_, token, _, roots)) => (token, roots),
            None => (None, rustls_native_certs::load_native_certs().certs),
        };
        let token =
            args.token.clone().or(token).ok_or_else(|| {
                fail(2, "no token: give --token, or --config with an [api] token")
            })?;
        let roots: Vec<ureq::tls::Certificate<'static>> = roots
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .unversioned_rustls_crypto_provider(crate::shell::tls::provider())
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .tls_config(tls)
            .build()
            .into();
        Ok(Api { base, token, agent })
    }

    fn request(&self, method: &str, path: &str, body: Option<Body>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            (_, Some(Body::Json(v))) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(v),
            (_, Some(Body::Form(content_type, bytes))) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", &content_type)
                .send(bytes),
            (_, None) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
        };
        let mut response =
            sent.map_err(|e| fail(1, format!("cannot reach the API at {url}: {e}")))?;
        let status = response.status().as_u16();
        // A campaign of 100,000 numbers with its attempts is tens of MB.
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| fail(1, format!("{url}: reading the answer: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let error = body["error"].as_str().unwrap_or(text.trim()).to_string();
        match status {
            200..=299 => Ok(body),
            400 => {
                let field = body["field"].as_str().unwrap_or("?");
                Err(fail(2, format!("the API refused field {field}: {error}")))
            }
            _ => Err(fail(1, format!("{method} {url}: {status}: {error}"))),
        }
    }

    fn action(&self, id: u64, action: &str) -> Result<String, Failure> {
        let reply = self.request("POST", &format!("/api/v1/campaigns/{id}/{action}"), None)?;
        let state = reply["state"].as_str().unwrap_or("?");
        Ok(format!("campaign {id}: {state}\n"))
    }
}

/// An address to connect to for a listen address (`0.0.0.0` listens on
/// loopback too).
fn reachable(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

fn create(api: &Api, c: &CreateArgs) -> Result<Value, Failure> {
    let prompt = match (&c.prompt, &c.wav) {
        (Some(p), _) => p.clone(),
        (None, Some(wav)) => wav
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(|| fail(2, format!("--wav {}: no file name", wav.display())))?,
        (None, None) => return Err(fail(2, "give --prompt NAME or --wav FILE")),
    };
    if c.numbers.is_none() && c.number.is_empty() {
        return Err(fail(2, "give --numbers FILE.csv or --number N"));
    }
    let mut spec = Map::new();
    spec.insert("name".into(), json!(c.name));
    spec.insert("trunk".into(), json!(c.trunk));
    spec.insert("prompt".into(), json!(prompt));
    if !c.number.is_empty() {
        spec.insert("numbers".into(), json!(c.number));
    }
    let text_fields = [
        ("first_after", &c.first_after),
        ("confirm_key", &c.confirm_key),
        ("repeat_key", &c.repeat_key),
        ("optout_key", &c.optout_key),
        ("start_at", &c.start_at),
        ("ring_timeout", &c.ring_timeout),
    ];
    for (field, value) in text_fields {
        if let Some(v) = value {
            spec.insert(field.into(), json!(v));
        }
    }
    if let Some(retry) = &c.retry {
        let waits: Vec<&str> = retry
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        spec.insert("retry".into(), json!(waits));
    }
    if let Some(n) = c.max_concurrent {
        spec.insert("max_concurrent".into(), json!(n));
    }
    let spec = Value::Object(spec);
    let body = if c.numbers.is_none() && c.wav.is_none() {
        Body::Json(spec)
    } else {
        let mut form = Form::new();
        form.part(
            "campaign",
            None,
            "application/json",
            spec.to_string().into_bytes(),
        );
        if let Some(path) = &c.numbers {
            form.part("numbers", Some(path), "text/csv", read(path, "--numbers")?);
        }
        if let Some(path) = &c.wav {
            form.part("prompt", Some(path), "audio/wav", read(path, "--wav")?);
        }
        let (content_type, bytes) = form.finish();
        Body::Form(content_type, bytes)
    };
    api.request("POST", "/api/v1/campaigns", Some(body))
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| fail(2, format!("{flag} {}: {e}", path.display())))
}

/// multipart/form-data (RFC 7578), built by hand: ureq has no stable
/// multipart API.
struct Form {
    boundary: String,
    bytes: Vec<u8>,
}

impl Form {
    fn new() -> Form {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Form {
            boundary: format!("hotline-{nanos:x}-{}", std::process::id()),
            bytes: Vec::new(),
        }
    }

    fn part(&mut self, name: &str, file: Option<&Path>, content_type: &str, data: Vec<u8>) {
        let filename = file
            .and_then(|p| p.file_name())
            .map(|n| format!("; filename=\"{}\"", n.to_string_lossy().replace('"', "")))
            .unwrap_or_default();
        let head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\nContent-Type: {content_type}\r\n\r\n",
            self.boundary
        );
        self.bytes.extend_from_slice(head.as_bytes());
        self.bytes.extend_from_slice(&data);
        self.bytes.extend_from_slice(b"\r\n");
    }

    fn finish(mut self) -> (String, Vec<u8>) {
        self.bytes
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.bytes,
        )
    }
}

fn pretty(v: &Value) -> String {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    text
}

/// "confirmed 3, pending 7" from a campaign's counts.
fn counts(c: &Value) -> String {
    c["counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(state, n)| format!("{state} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn list_table(list: &Value) -> String {
    let empty = Vec::new();
    let campaigns = list.as_array().unwrap_or(&empty);
    if campaigns.is_empty() {
        return "no campaigns\n".to_string();
    }
    let rows: Vec<[String; 6]> = campaigns
        .iter()
        .map(|c| {
            [
                text(&c["id"]),
                text(&c["state"]),
                text(&c["name"]),
                text(&c["trunk"]),
                text(&c["total"]),
                counts(c),
            ]
        })
        .collect();
    table(
        &["ID", "STATE", "NAME", "TRUNK", "NUMBERS", "BY STATE"],
        &rows,
    )
}

fn show_text(c: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "campaign {} \"{}\": {}",
        text(&c["id"]),
        text(&c["name"]),
        text(&c["state"])
    );
    let _ = writeln!(
        out,
        "trunk {}, prompt {}, created {}",
        text(&c["trunk"]),
        text(&c["prompt"]),
        text(&c["created_at"])
    );
    let _ = writeln!(
        out,
        "first after {}, retries {}, ring timeout {}",
        text(&c["first_after"]),
        c["retry"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        text(&c["ring_timeout"])
    );
    let _ = writeln!(out, "{} numbers: {}", text(&c["total"]), counts(c));
    let empty = Vec::new();
    let rows: Vec<[String; 5]> = c["numbers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|n| {
            let attempts = n["attempts"].as_array().unwrap_or(&empty);
            let last = attempts.last().map(|a| {
                let status = a["sip_status"].as_u64().unwrap_or(0);
                match status {
                    0 => text(&a["result"]),
                    s => format!("{} ({s})", text(&a["result"])),
                }
            });
            [
                text(&n["number"]),
                text(&n["state"]),
                attempts.len().to_string(),
                last.unwrap_or_else(|| "-".to_string()),
                text(&n["next_at"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &["NUMBER", "STATE", "ATTEMPTS", "LAST RESULT", "NEXT AT"],
        &rows,
    ));
    out
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = head.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_has_each_part_with_its_name_and_file_name() {
        let mut form = Form::new();
        form.part("campaign", None, "application/json", b"{}".to_vec());
        form.part(
            "numbers",
            Some(Path::new("/tmp/list.csv")),
            "text/csv",
            b"13800000001\n".to_vec(),
        );
        let (content_type, bytes) = form.finish();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"campaign\"\r\n\
                 Content-Type: application/json\r\n\r\n{{}}\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"numbers\"; filename=\"list.csv\"\r\n\
                 Content-Type: text/csv\r\n\r\n13800000001\n\r\n--{boundary}--\r\n"
            )
        );
    }

    #[test]
    fn tables_line_up_and_a_listen_address_is_made_reachable() {
        let t = table(
            &["ID", "NAME"],
            &[
                ["1".to_string(), "gas".to_string()],
                ["12".to_string(), "water".to_string()],
            ],
        );
        assert_eq!(t, "ID  NAME\n1   gas\n12  water\n");
        let any: SocketAddr = "0.0.0.0:8088".parse().expect("addr");
        assert_eq!(reachable(any).to_string(), "127.0.0.1:8088");
        let one: SocketAddr = "10.0.0.5:8088".parse().expect("addr");
        assert_eq!(reachable(one), one);
    }
}
