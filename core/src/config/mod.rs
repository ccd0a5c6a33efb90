//! Typed configuration: TOML in, checked values out. Unknown keys and bad
//! values are refused with the key and the line they are on.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

pub mod ivr;
mod limits;
pub mod outbound;
pub mod recordings;
pub mod source;
pub mod tasks;
pub mod tls;
pub mod web;

pub use ivr::IvrConfig;
pub use limits::SipLimits;
pub use outbound::{NodeConfig, OutboundConfig, StoreConfig, TrunkConfig, TrunkTransport};
pub use recordings::RecordingsConfig;
pub use source::{did_you_mean, Mistake, Source};
pub use tasks::TasksConfig;
pub use tls::TlsConfig;
pub use web::{ApiToken, Role, WebConfig, WebUser};

/// The configuration `hotline run` uses when given no file.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The demo config's API token and agents' password: refused beyond
/// loopback ([`Config`]'s checks).
pub const DEMO_TOKEN: &str = "demo-token";
pub const DEMO_PASSWORD: &str = "secret";
/// The demo supervisor's web password, and its Argon2id hash as
/// config/default.toml has it: refused beyond loopback too.
pub const DEMO_SUPERVISOR_PASSWORD: &str = "supervisor";
pub const DEMO_SUPERVISOR_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$EGLAjfWbKTERxHe0DQx31g$GF7AX7F0vwg2gZ/+27+gCyia4YpFlRm95WzelQd9cCg";

/// Longest ringing time the operators' standard allows (3 rings / 15 s).
pub const ANSWER_WINDOW: Duration = Duration::from_secs(15);

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {mistake}")]
    Invalid { origin: String, mistake: Mistake },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub calls: CallsConfig,
    #[serde(default)]
    pub prompts: PromptsConfig,
    pub cdr: CdrConfig,
    #[serde(default)]
    pub messages: MessagesConfig,
    #[serde(default)]
    pub directory: DirectoryConfig,
    pub ivr: IvrConfig,
    #[serde(default)]
    pub registrar: RegistrarConfig,
    /// Agents whose softphones register with hotline.
    #[serde(default)]
    pub agents: Vec<AgentEntry>,
    /// ACD queues (the IVR's queue nodes name them).
    #[serde(default)]
    pub queues: Vec<crate::acd::QueueConfig>,
    /// Feature codes agents dial from their softphones.
    #[serde(default)]
    pub features: FeatureCodes,
    /// The HTTP JSON API (agent status); off without `[api]`.
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// Trunk allow-list and flood limits.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Trunks hotline places calls through.
    #[serde(default)]
    pub trunks: Vec<TrunkConfig>,
    /// Voice-notice campaigns.
    #[serde(default)]
    pub outbound: OutboundConfig,
    /// Where work that outlives a call is kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// This node among several sharing `store.url`.
    #[serde(default)]
    pub node: NodeConfig,
    /// Call recordings (queues with `record = true`).
    #[serde(default)]
    pub recordings: RecordingsConfig,
    /// Callbacks, follow-ups and first-contact routing.
    #[serde(default)]
    pub tasks: TasksConfig,
    /// HTTPS and SIP over TLS (docs/tls.md); off without `[tls]`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Sign-in on the web: users, sessions, throttling.
    #[serde(default)]
    pub web: WebConfig,
    /// Directory relative paths are resolved against (the config's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The TOML text and where each key is in it, for the lines of later
    /// checks (the IVR program, cross-references).
    #[serde(skip)]
    pub source: Source,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<SocketAddr>,
    #[serde(default)]
    pub public_address: Option<String>,
    #[serde(default = "default_t1", with = "crate::forms::duration")]
    pub t1: Duration,
    #[serde(default = "default_t2", with = "crate::forms::duration")]
    pub t2: Duration,
    #[serde(default = "default_t4", with = "crate::forms::duration")]
    pub t4: Duration,
    /// `[sip.limits]`: message size, header and TCP connection limits.
    #[serde(default)]
    pub limits: SipLimits,
}

fn default_t1() -> Duration {
    Duration::from_millis(500)
}
fn default_t2() -> Duration {
    Duration::from_secs(4)
}
fn default_t4() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub bind_address: IpAddr,
    pub advertised_address: IpAddr,
    pub port_min: toml::Spanned<u16>,
    pub port_max: toml::Spanned<u16>,
    #[serde(with = "crate::forms::duration")]
    pub inactivity_timeout: Duration,
    pub speech_threshold_dbfs: f64,
    #[serde(with = "crate::forms::duration")]
    pub speech_min: Duration,
    /// Detect DTMF tones in the audio: `auto` (when the caller's SDP has no
    /// telephone-event), `always` or `off`.
    #[serde(default)]
    pub inband_dtmf: InbandDtmf,
    /// Media worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// 1..=99: run the media workers under SCHED_FIFO at this priority
    /// (needs CAP_SYS_NICE), so that other busy processes on the machine
    /// cannot delay RTP. 0: normal scheduling.
    #[serde(default)]
    pub realtime_priority: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InbandDtmf {
    #[default]
    Auto,
    Always,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    pub answer_after: AnswerDelay,
    pub max_calls: usize,
    pub max_calls_per_second: u32,
    #[serde(with = "crate::forms::duration")]
    pub retry_after: Duration,
    /// On SIGTERM: how long calls in progress may go on while new ones
    /// get 503, before the rest are hung up.
    #[serde(default = "default_drain_timeout", with = "crate::forms::duration")]
    pub drain_timeout: Duration,
    /// The header that names the caller: "from", "p-asserted-identity"
    /// or "remote-party-id" (From when the INVITE has none).
    #[serde(default)]
    pub caller_id_from: crate::sip::message::CallerIdFrom,
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Addresses or prefixes ("10.0.0.0/8", "192.0.2.7") of the PBXs and
    /// trunks that may call hotline numbers; others get 403. Empty: anyone.
    #[serde(default)]
    pub trunks: Vec<SourcePrefix>,
    /// INVITEs per second from one non-trunk address before it is banned.
    #[serde(default = "default_invite_rate")]
    pub invite_rate: u32,
    /// REGISTERs per second from one address before it is banned.
    #[serde(default = "default_register_rate")]
    pub register_rate: u32,
    /// How long a flooding address is ignored.
    #[serde(default = "default_flood_ban", with = "crate::forms::duration")]
    pub flood_ban: Duration,
}

fn default_invite_rate() -> u32 {
    20
}
fn default_register_rate() -> u32 {
    20
}
fn default_flood_ban() -> Duration {
    Duration::from_secs(60)
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            trunks: Vec::new(),
            invite_rate: default_invite_rate(),
            register_rate: default_register_rate(),
            flood_ban: default_flood_ban(),
        }
    }
}

/// An address prefix, written as CIDR or as a bare address (a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePrefix(pub ipnet::IpNet);

impl<'de> Deserialize<'de> for SourcePrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(SourcePrefix(net.trunc()));
        }
        match text.parse::<IpAddr>() {
            Ok(ip) => Ok(SourcePrefix(ipnet::IpNet::from(ip))),
            Err(_) => Err(serde::de::Error::custom(format!(
                "{text:?} is not an address or prefix (e.g. \"10.0.0.0/8\" or \"192.0.2.7\")"
            ))),
        }
    }
}

/// Ringing time before answering, refused above the 15 s answer window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerDelay(pub Duration);

impl<'de> Deserialize<'de> for AnswerDelay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let delay = crate::forms::duration::deserialize(d)?;
        if delay > ANSWER_WINDOW {
            return Err(serde::de::Error::custom(
                "beyond the 15 s answer window (3 rings); use at most 15s",
            ));
        }
        Ok(AnswerDelay(delay))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Zh,
    En,
}

/// "zh, en", for messages.
pub fn language_list(languages: &[Language]) -> String {
    languages
        .iter()
        .map(|l| l.code())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        match code {
            "zh" => Some(Language::Zh),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsConfig {
    /// Folder holding `<language>/<name>.wav` (shared ones such as
    /// `beep.wav` directly in it); none = the built-in set.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Per-name overrides for every language: name -> file (relative to `dir`).
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
    /// Languages to load; every prompt a program uses must exist in each.
    #[serde(default = "default_languages")]
    pub languages: Vec<Language>,
    /// Language of numbers that name none.
    #[serde(default = "default_language")]
    pub default_language: Language,
}

impl Default for PromptsConfig {
    fn default() -> Self {
        PromptsConfig {
            dir: None,
            files: BTreeMap::new(),
            languages: default_languages(),
            default_language: default_language(),
        }
    }
}

fn default_languages() -> Vec<Language> {
    vec![Language::Zh, Language::En]
}
fn default_language() -> Language {
    Language::Zh
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// Where recorded messages (WAV) and their index go.
    pub dir: PathBuf,
    /// A message ended (by `#` or a hang-up) sooner than this after the
    /// beep is not kept: no WAV, no index line; the record says so.
    #[serde(default = "default_min_message", with = "crate::forms::duration")]
    pub min_length: Duration,
}

fn default_min_message() -> Duration {
    Duration::from_secs(1)
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            dir: PathBuf::from("var/messages"),
            min_length: default_min_message(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Digest realm; an agent's HA1 is H(id:realm:password).
    pub realm: String,
    #[serde(with = "crate::forms::duration")]
    pub min_expires: Duration,
    #[serde(with = "crate::forms::duration")]
    pub max_expires: Duration,
    #[serde(with = "crate::forms::duration")]
    pub nonce_ttl: Duration,
    /// Failed logins from one address within `failure_window` before it is
    /// refused for `ban`.
    pub max_auth_failures: u32,
    #[serde(with = "crate::forms::duration")]
    pub failure_window: Duration,
    #[serde(with = "crate::forms::duration")]
    pub ban: Duration,
    /// Digest algorithms to challenge with, most preferred first:
    /// "SHA-256", "MD5". Some clients answer only the first.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<DigestAlgorithm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DigestAlgorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
}

fn default_algorithms() -> Vec<DigestAlgorithm> {
    vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5]
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "hotline".into(),
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            nonce_ttl: Duration::from_secs(300),
            max_auth_failures: 5,
            failure_window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
            algorithms: default_algorithms(),
        }
    }
}

/// One agent: who they are, how they log in, what they handle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// The SIP user name the softphone registers as (e.g. "1001").
    pub id: String,
    /// The number callers hear ("工号007为您服务").
    pub number: String,
    #[serde(default)]
    pub name: String,
    /// lowercase hex MD5(id:realm:password); at least one HA1 is required.
    #[serde(default)]
    pub ha1_md5: Option<String>,
    /// lowercase hex SHA-256(id:realm:password).
    #[serde(default)]
    pub ha1_sha256: Option<String>,
    /// Queues the agent serves.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Skill name -> level 1..10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Log the agent in when their phone registers (an agent on a PBX
    /// extension: at start).
    #[serde(default = "default_true")]
    pub login_on_register: bool,
    /// The agent's phone is an extension of the PBX behind this
    /// `[[trunks]]` entry, not registered with hotline: it is always
    /// reachable and rung at `sip:<extension>@<trunk>`.
    #[serde(default)]
    pub trunk: Option<String>,
    /// The extension dialled through `trunk` (e.g. "8001").
    #[serde(default)]
    pub extension: Option<String>,
    /// Record every call this agent answers, whatever the queue says.
    #[serde(default)]
    pub record: bool,
    /// Argon2id PHC string of a web password (`hotline hash-password`);
    /// when set, the agent signs in on the web with it, not with the SIP
    /// password.
    #[serde(default)]
    pub web_password_hash: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// A bearer token with the admin role (the shared token of old); see
    /// `tokens` for tokens per person or system.
    #[serde(default)]
    pub token: Option<String>,
    /// `[[api.tokens]]`: bearer tokens with a name and a role, stored as
    /// their SHA-256.
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// Local time's offset from UTC: the live view's "today" starts at
    /// local midnight.
    #[serde(default)]
    pub utc_offset: UtcOffset,
    /// Service-level threshold for the live view: answered within it is in
    /// time.
    #[serde(default = "default_service_level", with = "crate::forms::duration")]
    pub service_level: Duration,
    /// The service level aimed at (0..1), for the wallboard's colours.
    #[serde(default = "default_service_level_target")]
    pub service_level_target: f64,
    /// Abandons shorter than this are short abandons, left out of the
    /// service level and abandon rate (off when absent).
    #[serde(default, with = "crate::forms::duration::option")]
    pub short_abandon: Option<Duration>,
}

fn default_service_level() -> Duration {
    ANSWER_WINDOW
}
fn default_service_level_target() -> f64 {
    crate::sla::DEFAULT_SERVICE_LEVEL_TARGET
}

/// A fixed offset from UTC, written "+08:00"; in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcOffset(pub i32);

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::forms::parse_offset(&text)
            .map(UtcOffset)
            .ok_or_else(|| serde::de::Error::custom("write the offset as \"+08:00\""))
    }
}

/// What an agent dials to change status; answered with a confirmation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureCodes {
    pub login: String,
    pub logout: String,
    #[serde(rename = "break")]
    pub on_break: String,
    pub available: String,
    /// The outcome of the agent's last task call: satisfied, not
    /// satisfied, not reached (tried again on its schedule).
    #[serde(default = "default_task_satisfied")]
    pub task_satisfied: String,
    #[serde(default = "default_task_not_satisfied")]
    pub task_not_satisfied: String,
    #[serde(default = "default_task_not_reached")]
    pub task_not_reached: String,
}

fn default_task_satisfied() -> String {
    "*71".into()
}
fn default_task_not_satisfied() -> String {
    "*72".into()
}
fn default_task_not_reached() -> String {
    "*73".into()
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            login: "*1".into(),
            logout: "*2".into(),
            on_break: "*3".into(),
            available: "*4".into(),
            task_satisfied: default_task_satisfied(),
            task_not_satisfied: default_task_not_satisfied(),
            task_not_reached: default_task_not_reached(),
        }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The caller directory (customer classes); reloaded when it changes.
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default = "default_reload", with = "crate::forms::duration")]
    pub reload_every: Duration,
}

fn default_reload() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrConfig {
    pub dir: PathBuf,
}

impl Config {
    /// The embedded default.
    pub fn embedded() -> Config {
        // The embedded file is checked by a unit test, so this cannot fail
        // in a released binary.
        Config::parse(DEFAULT_TOML, "embedded default config", Path::new("."))
            .unwrap_or_else(|e| panic!("embedded default config is invalid: {e}"))
    }

    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let invalid = |mistake: Mistake| ConfigError::Invalid {
            origin: origin.to_string(),
            mistake,
        };
        let (mut config, source): (Config, Source) = source::parse(text).map_err(invalid)?;
        config.base_dir = base_dir.to_path_buf();
        config.source = source;
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// What serde cannot say: values that depend on each other.
    fn check(&self) -> Result<(), Mistake> {
        let at = &self.source;
        let (min, max) = self.port_range();
        if min >= max || min == 0 {
            return Err(at.mistake(
                "media.port_min",
                format!(
                    "must be above 0 and below media.port_max ({max}, line {})",
                    at.line("media.port_max").unwrap_or_default()
                ),
            ));
        }
        for (i, q) in self.queues.iter().enumerate() {
            let keys = &q.survey_keys;
            let distinct = keys
                .chars()
                .enumerate()
                .all(|(j, c)| !keys.chars().skip(j + 1).any(|d| d == c));
            let dialable = keys
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
            if keys.chars().count() != 5 || !distinct || !dialable {
                return Err(at.mistake(
                    &format!("queues[{i}].survey_keys"),
                    "five different keys (0-9, *, #), for ratings 1 (best) to 5 in order, such as \"12345\"",
                ));
            }
        }
        self.check_tasks()?;
        self.check_cluster()?;
        if self.media.realtime_priority > 99 {
            return Err(at.mistake("media.realtime_priority", "must be 0 (off) or 1..=99"));
        }
        if self.sip.listen.is_empty() {
            return Err(at.mistake("sip.listen", "give at least one address"));
        }
        if self.calls.max_calls == 0 {
            return Err(at.mistake("calls.max_calls", "must be at least 1"));
        }
        for (i, t) in self.trunks.iter().enumerate() {
            let key = |k: &str| format!("trunks[{i}].{k}");
            if self.trunks[..i].iter().any(|o| o.name == t.name) {
                return Err(at.mistake(&key("name"), "another trunk has this name"));
            }
            if t.max_channels == 0 {
                return Err(at.mistake(&key("max_channels"), "must be at least 1"));
            }
            if t.max_calls_per_second == 0 {
                return Err(at.mistake(&key("max_calls_per_second"), "must be at least 1"));
            }
            if t.caller_id.is_empty()
                || !t.caller_id.chars().all(|c| c.is_ascii_digit() || c == '+')
            {
                return Err(at.mistake(&key("caller_id"), "digits (a leading + allowed)"));
            }
            if t.password.is_some() && t.password_env.is_some() {
                return Err(at.at(
                    &key("password_env"),
                    "give password or password_env, not both",
                ));
            }
            if t.tls_ca.is_some() && t.transport != TrunkTransport::Tls {
                return Err(at.mistake(&key("tls_ca"), "only for a trunk with transport = \"tls\""));
            }
            let secret = t.password.is_some() || t.password_env.is_some();
            if secret != t.username.is_some() {
                return Err(at.at(
                    &key("username"),
                    "digest credentials need both username and password (or password_env)",
                ));
            }
        }
        for (i, a) in self.agents.iter().enumerate() {
            match (&a.trunk, &a.extension) {
                (Some(trunk), Some(extension)) => {
                    if !self.trunks.iter().any(|t| &t.name == trunk) {
                        return Err(at.mistake(
                            &format!("agents[{i}].trunk"),
                            format!("agent {:?}: no [[trunks]] entry is named {trunk:?}", a.id),
                        ));
                    }
                    let dialable = |c: char| c.is_ascii_alphanumeric() || "+*#-_.".contains(c);
                    if extension.is_empty() || !extension.chars().all(dialable) {
                        return Err(at.mistake(
                            &format!("agents[{i}].extension"),
                            format!("agent {:?}: digits (or a SIP user name)", a.id),
                        ));
                    }
                }
                (Some(_), None) => {
                    return Err(at.at(
                        &format!("agents[{i}].trunk"),
                        format!("agent {:?}: give the extension to ring too", a.id),
                    ))
                }
                (None, Some(_)) => {
                    return Err(at.at(
                        &format!("agents[{i}].extension"),
                        format!("agent {:?}: give the trunk that reaches it too", a.id),
                    ))
                }
                (None, None) => {}
            }
            // An agent rung through a PBX has no phone registering: no HA1.
            if a.trunk.is_none() && a.ha1_md5.is_none() && a.ha1_sha256.is_none() {
                return Err(at.at(
                    &format!("agents[{i}]"),
                    format!(
                        "agent {:?}: give ha1_md5 or ha1_sha256 (hex of H(id:realm:password))",
                        a.id
                    ),
                ));
            }
            for (key, ha1, len) in [
                ("ha1_md5", &a.ha1_md5, 32),
                ("ha1_sha256", &a.ha1_sha256, 64),
            ] {
                if let Some(h) = ha1 {
                    if h.len() != len || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(at.at(
                            &format!("agents[{i}].{key}"),
                            format!("agent {:?}: expected {len} hex digits", a.id),
                        ));
                    }
                }
            }
        }
        self.check_web()?;
        self.check_demo_secrets()?;
        self.check_tls()?;
        if let Some(api) = &self.api {
            if !(0.0..=1.0).contains(&api.service_level_target) {
                return Err(at.mistake(
                    "api.service_level_target",
                    "give a share between 0 and 1 (0.8 for 80%)",
                ));
            }
        }
        // Only `#` and a hang-up may end a message early: one ended by the
        // media itself (silence, max length) is always long enough.
        for (name, node) in &self.ivr.nodes {
            if let ivr::NodeConfig::Message {
                max_length,
                end_silence,
                ..
            } = node
            {
                if self.messages.min_length > *max_length.min(end_silence) {
                    return Err(at.mistake(
                        "messages.min_length",
                        format!(
                            "longer than message node {name:?}'s end_silence or max_length; \
                             give at most {:?}",
                            max_length.min(end_silence)
                        ),
                    ));
                }
            }
        }
        if self.prompts.languages.is_empty() {
            return Err(at.mistake("prompts.languages", "give at least one language"));
        }
        if !self
            .prompts
            .languages
            .contains(&self.prompts.default_language)
        {
            return Err(at.mistake(
                "prompts.default_language",
                format!(
                    "not one of prompts.languages ({})",
                    language_list(&self.prompts.languages)
                ),
            ));
        }
        Ok(())
    }

    /// Callback settings and task rules name queues and trunks that exist.
    fn check_cluster(&self) -> Result<(), Mistake> {
        let at = &self.source;
        if let Some(url) = &self.store.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(at.mistake(
                    "store.url",
                    "a PostgreSQL URL, such as \"postgres://hotline@db.example/hotline\"",
                ));
            }
        }
        if let Some(id) = &self.node.id {
            let fits = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !fits {
                return Err(at.mistake(
                    "node.id",
                    "1 to 32 letters, digits, '-' or '_' (it becomes part of call ids)",
                ));
            }
        }
        let lease = self.node.lease;
        if lease < Duration::from_secs(1) || lease > Duration::from_secs(300) {
            return Err(at.mistake("node.lease", "between 1s and 300s"));
        }
        Ok(())
    }

    fn check_tasks(&self) -> Result<(), Mistake> {
        let at = &self.source;
        let queue_known = |name: &str| self.queues.iter().any(|q| q.name == name);
        for (i, q) in self.queues.iter().enumerate() {
            let key = |k: &str| format!("queues[{i}].{k}");
            let offered = q.callback_after.is_some() || q.callback_wait_over.is_some();
            if !offered {
                continue;
            }
            if q.exit_key == Some(q.callback_key) {
                return Err(at.mistake(&key("callback_key"), "is the queue's exit_key too"));
            }
            if !(q.callback_key.is_ascii_digit() || q.callback_key == '*') {
                return Err(at.mistake(&key("callback_key"), "a key 0-9 or *"));
            }
            if !(1..=10).contains(&q.callback_attempts) {
                return Err(at.mistake(&key("callback_attempts"), "must be 1..=10"));
            }
            match &q.callback_trunk {
                Some(t) if !self.trunks.iter().any(|x| &x.name == t) => {
                    return Err(at.mistake(
                        &key("callback_trunk"),
                        format!("no [[trunks]] entry is named {t:?}"),
                    ))
                }
                None if self.trunks.len() != 1 => {
                    return Err(at.mistake(
                        &key("callback_after"),
                        "callbacks dial through a trunk: name it in callback_trunk (the config has none, or several)",
                    ))
                }
                _ => {}
            }
        }
        if let Some(q) = &self.tasks.message_queue {
            if !queue_known(q) {
                return Err(at.mistake("tasks.message_queue", format!("no queue {q:?}")));
            }
        }
        for (i, rule) in self.tasks.after_call.iter().enumerate() {
            let key = |k: &str| format!("tasks.after_call[{i}].{k}");
            if let Some(q) = rule.queue.as_deref().filter(|q| !queue_known(q)) {
                return Err(at.mistake(&key("queue"), format!("no queue {q:?}")));
            }
            if !(1..=10).contains(&rule.attempts) {
                return Err(at.mistake(&key("attempts"), "must be 1..=10"));
            }
            if rule.kind == crate::tasks::TaskKind::Callback {
                return Err(at.mistake(
                    &key("kind"),
                    "follow_up, complaint or message (callbacks come from queues)",
                ));
            }
        }
        Ok(())
    }

    /// `[tls]`'s addresses: some, each free of the other listeners (the
    /// files themselves are read by the shell, which names them).
    fn check_tls(&self) -> Result<(), Mistake> {
        let at = &self.source;
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        for (key, path) in [("tls.certificate", &tls.certificate), ("tls.key", &tls.key)] {
            if path.as_os_str().is_empty() {
                return Err(at.mistake(key, "give the path of a PEM file"));
            }
        }
        let addresses = tls.sip_addresses(&self.sip.listen);
        // Written: the key's line; derived: the table's, with the fix.
        let key = if tls.sip_listen.is_some() {
            "tls.sip_listen"
        } else {
            "tls"
        };
        if addresses.is_empty() {
            return Err(at.mistake(
                key,
                "give at least one address (or leave sip_listen out: port 5061 on each sip.listen host)",
            ));
        }
        for (i, a) in addresses.iter().enumerate() {
            let clash = if self
                .sip
                .listen
                .iter()
                .any(|s| s == a || same_port_any(s, a))
            {
                Some("a sip.listen address (its TCP listener)")
            } else if self.api.as_ref().is_some_and(|api| &api.listen == a) {
                Some("api.listen")
            } else if addresses[..i].contains(a) {
                Some("another tls.sip_listen address")
            } else {
                None
            };
            if let Some(what) = clash {
                let fix = if tls.sip_listen.is_none() {
                    "; set tls.sip_listen to free addresses"
                } else {
                    ""
                };
                return Err(at.mistake(
                    key,
                    format!("SIP over TLS on {a} is {what}: it needs a port of its own{fix}"),
                ));
            }
        }
        Ok(())
    }

    /// Web users, web passwords and API tokens: well formed, and every
    /// name signs in as one person only.
    fn check_web(&self) -> Result<(), Mistake> {
        let at = &self.source;
        let web = &self.web;
        for (key, d) in [
            ("web.session_ttl", web.session_ttl),
            ("web.failure_window", web.failure_window),
        ] {
            if d.is_zero() {
                return Err(at.mistake(key, "must be above 0s"));
            }
        }
        if web.max_failures == 0 {
            return Err(at.mistake(
                "web.max_failures",
                "must be at least 1 (failed sign-ins before a ban)",
            ));
        }
        for (i, u) in web.users.iter().enumerate() {
            let key = |k: &str| format!("web.users[{i}].{k}");
            if !web::is_user_id(&u.id) {
                return Err(at.mistake(&key("id"), "1 to 64 letters, digits, '.', '_', '-' or '@'"));
            }
            if web.users[..i].iter().any(|o| o.id == u.id) {
                return Err(at.mistake(&key("id"), "another web user has this id"));
            }
            if self.agents.iter().any(|a| a.id == u.id) {
                return Err(at.mistake(
                    &key("id"),
                    "an [[agents]] entry has this id (agents sign in as themselves; \
                     give them web_password_hash there)",
                ));
            }
            if let Err(problem) = web::check_password_hash(&u.password_hash) {
                return Err(at.at(&key("password_hash"), problem));
            }
        }
        for (i, a) in self.agents.iter().enumerate() {
            if let Some(h) = &a.web_password_hash {
                if let Err(problem) = web::check_password_hash(h) {
                    return Err(at.at(
                        &format!("agents[{i}].web_password_hash"),
                        format!("agent {:?}: {problem}", a.id),
                    ));
                }
            }
        }
        if let Some(api) = &self.api {
            if api.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(at.at("api.token", "empty: give a long random token, or none"));
            }
            for (i, t) in api.tokens.iter().enumerate() {
                let key = |k: &str| format!("api.tokens[{i}].{k}");
                if t.name.trim().is_empty() || t.name.len() > 64 {
                    return Err(at.mistake(&key("name"), "1 to 64 characters"));
                }
                if api.tokens[..i].iter().any(|o| o.name == t.name) {
                    return Err(at.mistake(&key("name"), "another token has this name"));
                }
                if !web::is_sha256_hex(&t.sha256) {
                    return Err(at.at(
                        &key("sha256"),
                        "64 hex digits: the SHA-256 of the token \
                         (printf %s \"$TOKEN\" | sha256sum), never the token itself",
                    ));
                }
                if api.tokens[..i]
                    .iter()
                    .any(|o| o.sha256.eq_ignore_ascii_case(&t.sha256))
                {
                    return Err(at.at(&key("sha256"), "another token has the same hash"));
                }
            }
        }
        Ok(())
    }

    /// The files `[tls]` names, relative to the config's folder.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        self.tls.as_ref().map(|t| {
            (
                self.base_dir.join(&t.certificate),
                self.base_dir.join(&t.key),
            )
        })
    }

    /// Where SIP over TLS listens: none without `[tls]`.
    pub fn sip_tls_listen(&self) -> Vec<SocketAddr> {
        self.tls
            .as_ref()
            .map(|t| t.sip_addresses(&self.sip.listen))
            .unwrap_or_default()
    }

    /// Host:port for our Via and Contact over TLS: `sip.public_address`'s
    /// host (when set) on the first TLS port, else the first TLS address.
    pub fn sip_tls_address(&self) -> Option<String> {
        let first = *self.sip_tls_listen().first()?;
        Some(match &self.sip.public_address {
            Some(public) => tls::join_host_port(tls::host_of(public), first.port()),
            None => first.to_string(),
        })
    }

    /// Whether the session cookie is marked `Secure`: `web.secure_cookie`,
    /// else on unless the API listens on loopback (plain HTTP there).
    pub fn secure_cookie(&self) -> bool {
        self.web.secure_cookie.unwrap_or_else(|| {
            self.api
                .as_ref()
                .is_none_or(|api| !api.listen.ip().is_loopback())
        })
    }

    /// The demo's secrets are public (in this repository): the API token
    /// `demo-token`, agents whose password is `secret` and web users
    /// whose password is `supervisor` are refused once hotline listens
    /// beyond loopback (SIP for the agents' phones, the API for sign-in).
    fn check_demo_secrets(&self) -> Result<(), Mistake> {
        let at = &self.source;
        let api_exposed = self
            .api
            .as_ref()
            .map(|api| api.listen)
            .filter(|a| !a.ip().is_loopback());
        if let Some(api) = &self.api {
            if api.token.as_deref() == Some(DEMO_TOKEN) && !api.listen.ip().is_loopback() {
                return Err(at.at(
                    "api.token",
                    format!(
                        "the demo token {DEMO_TOKEN:?} is public; api.listen ({}) is not \
                         loopback: set a long random token",
                        api.listen
                    ),
                ));
            }
        }
        if let Some(listen) = api_exposed {
            for (i, u) in self.web.users.iter().enumerate() {
                if web::verify_password(&u.password_hash, DEMO_SUPERVISOR_PASSWORD) {
                    return Err(at.at(
                        &format!("web.users[{i}].password_hash"),
                        format!(
                            "web user {:?} has the demo password {DEMO_SUPERVISOR_PASSWORD:?}; \
                             api.listen ({listen}) is not loopback: make a hash of a password \
                             of their own with `hotline hash-password`",
                            u.id
                        ),
                    ));
                }
            }
            for (i, a) in self.agents.iter().enumerate() {
                let demo = a
                    .web_password_hash
                    .as_deref()
                    .is_some_and(|h| web::verify_password(h, DEMO_PASSWORD));
                if demo {
                    return Err(at.at(
                        &format!("agents[{i}].web_password_hash"),
                        format!(
                            "agent {:?} has the demo password {DEMO_PASSWORD:?}; api.listen \
                             ({listen}) is not loopback",
                            a.id
                        ),
                    ));
                }
            }
        }
        // Agents sign in with their SIP password on the web too (unless
        // they have a web password): exposed by either listener.
        let sip_exposed = self.sip.listen.iter().find(|a| !a.ip().is_loopback());
        use crate::sip::digest::{ha1, Algorithm};
        let realm = &self.registrar.realm;
        for (i, a) in self.agents.iter().enumerate() {
            let exposed = match (sip_exposed, api_exposed) {
                (Some(sip), _) => format!("sip.listen ({sip})"),
                (None, Some(api)) if a.web_password_hash.is_none() => {
                    format!("api.listen ({api}), where agents sign in with it,")
                }
                _ => continue,
            };
            for (key, given, alg) in [
                ("ha1_md5", &a.ha1_md5, Algorithm::Md5),
                ("ha1_sha256", &a.ha1_sha256, Algorithm::Sha256),
            ] {
                let demo = ha1(alg, &a.id, realm, DEMO_PASSWORD);
                if given
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&demo))
                {
                    return Err(at.at(
                        &format!("agents[{i}].{key}"),
                        format!(
                            "agent {:?} has the demo password {DEMO_PASSWORD:?}; {exposed} \
                             is not loopback: give each agent a password of its own",
                            a.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn port_range(&self) -> (u16, u16) {
        (
            *self.media.port_min.get_ref(),
            *self.media.port_max.get_ref(),
        )
    }

    /// The folder of call recordings.
    pub fn recordings_dir(&self) -> PathBuf {
        self.base_dir.join(&self.recordings.dir)
    }

    /// The store's database file.
    pub fn store_path(&self) -> PathBuf {
        self.base_dir.join(&self.store.path)
    }

    pub fn cdr_dir(&self) -> PathBuf {
        self.base_dir.join(&self.cdr.dir)
    }

    /// The prompt folder, when prompts come from files.
    pub fn prompts_dir(&self) -> Option<PathBuf> {
        self.prompts.dir.as_ref().map(|d| self.base_dir.join(d))
    }

    pub fn messages_dir(&self) -> PathBuf {
        self.base_dir.join(&self.messages.dir)
    }

    pub fn directory_file(&self) -> Option<PathBuf> {
        self.directory.file.as_ref().map(|f| self.base_dir.join(f))
    }

    /// Host:port for our Via and Contact headers.
    pub fn sip_public_address(&self) -> String {
        match &self.sip.public_address {
            Some(a) => a.clone(),
            None => self.sip.listen[0].to_string(),
        }
    }
}

/// Two addresses on one port where one is the unspecified address (both
/// cannot be bound).
fn same_port_any(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.sip.listen, vec!["127.0.0.1:5060".parse().expect("addr")]);
        assert!(c.calls.answer_after.0 <= ANSWER_WINDOW);
        assert!(!c.ivr.nodes.is_empty());
    }

    #[test]
    fn answer_delay_above_window_names_key_and_line() {
        let text = DEFAULT_TOML.replace("answer_after = \"2s\"", "answer_after = \"20s\"");
        let line = text
            .lines()
            .position(|l| l.starts_with("answer_after"))
            .expect("line")
            + 1;
        let err = Config::parse(&text, "x.toml", Path::new(".")).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains("answer_after"), "{msg}");
        assert!(msg.contains(&format!("line {line}")), "{msg}");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = DEFAULT_TOML.replace("max_calls = 2000", "max_calls = 2000\nmax_cals = 3");
        let msg = Config::parse(&text, "x.toml", Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("max_cals"), "{msg}");
        assert!(msg.contains("line"), "{msg}");
    }

    fn refused(text: &str) -> Mistake {
        match Config::parse(text, "x.toml", Path::new(".")) {
            Err(ConfigError::Invalid { mistake, .. }) => mistake,
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).expect(needle) + 1
    }

    /// `[ivr.nodes.silent]` with `wait = "5s"` on the line after the
    /// question: the demo's silent-caller node.
    fn with_silent_wait(wait: &str) -> String {
        let text = DEFAULT_TOML.replace(
            "question = \"silent_question\"\nwait = \"5s\"",
            &format!("question = \"silent_question\"\nwait = {wait}"),
        );
        assert_ne!(text, DEFAULT_TOML);
        text
    }

    #[test]
    fn a_value_inside_a_node_is_named_by_its_key_and_line() {
        let text = with_silent_wait("\"five\"");
        let line = line_of(&text, "wait = \"five\"");
        assert_eq!(
            refused(&text).to_string(),
            format!(
                "line {line}: ivr.nodes.silent.wait = \"five\": not a duration (durations: 500ms, 5s, 2m, 1h)"
            )
        );
        let mistake = refused(&with_silent_wait("5"));
        assert_eq!(mistake.key, "ivr.nodes.silent.wait");
        assert!(
            mistake.problem.contains("durations: 500ms, 5s, 2m, 1h"),
            "{mistake}"
        );
    }

    #[test]
    fn only_the_documented_duration_forms() {
        for wait in ["\"2 secs\"", "\"1.5s\"", "\"1h30m\""] {
            let mistake = refused(&with_silent_wait(wait));
            assert_eq!(mistake.key, "ivr.nodes.silent.wait", "{wait}");
            assert!(mistake.problem.contains("500ms, 5s, 2m, 1h"), "{mistake}");
        }
        let config = Config::parse(&with_silent_wait("\"750ms\""), "x", Path::new("."))
            .expect("750ms is a duration");
        let Some(crate::config::ivr::NodeConfig::SilentCaller { wait, .. }) =
            config.ivr.nodes.get("silent")
        else {
            panic!("silent node")
        };
        assert_eq!(*wait, Duration::from_millis(750));
        // Everywhere, not just in nodes: queues, sip.limits, top-level tables.
        for (from, to) in [
            ("wrap_up = \"30s\"", "wrap_up = \"30 s\""),
            ("tcp_idle_timeout = \"5m\"", "tcp_idle_timeout = \"5min\""),
            ("retry_after = \"5s\"", "retry_after = \"5.0s\""),
        ] {
            let mistake = refused(&DEFAULT_TOML.replacen(from, to, 1));
            assert!(mistake.problem.contains("durations: 500ms"), "{mistake}");
            assert!(mistake.line.is_some(), "{mistake}");
        }
    }

    #[test]
    fn misspelt_keys_and_values_get_a_suggestion() {
        let text = DEFAULT_TOML.replace(
            "question = \"silent_question\"",
            "questoin = \"silent_question\"",
        );
        let mistake = refused(&text);
        assert_eq!(mistake.key, "ivr.nodes.silent.questoin");
        assert_eq!(mistake.line, Some(line_of(&text, "questoin")));
        assert!(
            mistake.problem.ends_with("did you mean `question`?"),
            "{mistake}"
        );

        let text = DEFAULT_TOML.replace("type = \"silent_caller\"", "type = \"silent_caler\"");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "ivr.nodes.silent.type");
        assert_eq!(mistake.line, Some(line_of(&text, "silent_caler")));
        assert!(
            mistake.problem.ends_with("did you mean `silent_caller`?"),
            "{mistake}"
        );

        let text = DEFAULT_TOML.replace(
            "realtime_priority = 0",
            "realtime_priority = 0\ninband_dtmf = \"alway\"",
        );
        let mistake = refused(&text);
        assert_eq!(mistake.key, "media.inband_dtmf");
        assert!(
            mistake.problem.ends_with("did you mean `always`?"),
            "{mistake}"
        );
    }

    #[test]
    fn a_node_without_a_type_and_the_old_ivr_queues_are_explained() {
        let text = DEFAULT_TOML.replace("type = \"silent_caller\"\n", "");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "ivr.nodes.silent");
        assert_eq!(mistake.line, Some(line_of(&text, "[ivr.nodes.silent]")));
        assert!(mistake.problem.contains("missing key `type`"), "{mistake}");

        let text = DEFAULT_TOML.replace(
            "[ivr]\n",
            "[ivr]\nqueues = [\"consultation\", \"repair\", \"complaint\"]\n",
        );
        let mistake = refused(&text);
        assert_eq!(mistake.key, "ivr.queues");
        assert!(mistake.problem.contains("[[queues]]"), "{mistake}");
    }

    #[test]
    fn the_default_language_must_be_loaded() {
        let text = DEFAULT_TOML.replace("languages = [\"zh\", \"en\"]", "languages = [\"en\"]");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "prompts.default_language");
        assert!(mistake.problem.contains("(en)"), "{mistake}");
    }

    #[test]
    fn live_view_settings_are_checked() {
        let c = Config::embedded();
        let api = c.api.expect("[api]");
        assert_eq!(api.utc_offset, UtcOffset(8 * 60));
        assert_eq!(api.service_level, Duration::from_secs(15));
        let text = DEFAULT_TOML.replace(
            "utc_offset = \"+08:00\"\n# Service",
            "utc_offset = \"8h\"\n# Service",
        );
        let msg = Config::parse(&text, "x.toml", Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(
            msg.contains("utc_offset") && msg.contains("+08:00"),
            "{msg}"
        );
        let text = DEFAULT_TOML.replace("service_level_target = 0.8", "service_level_target = 80");
        let msg = Config::parse(&text, "x.toml", Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("api.service_level_target"), "{msg}");
    }

    #[test]
    fn media_workers_and_realtime_priority() {
        let config = Config::parse(DEFAULT_TOML, "x.toml", Path::new(".")).expect("default");
        // The defaults: one worker per core, normal scheduling.
        assert_eq!(config.media.workers, 0);
        assert_eq!(config.media.realtime_priority, 0);
        let text = DEFAULT_TOML
            .replace("workers = 0", "workers = 3")
            .replace("realtime_priority = 0", "realtime_priority = 99");
        let config = Config::parse(&text, "x.toml", Path::new(".")).expect("99 is allowed");
        assert_eq!(config.media.workers, 3);
        assert_eq!(config.media.realtime_priority, 99);
        // SCHED_FIFO priorities stop at 99.
        let text = DEFAULT_TOML.replace("realtime_priority = 0", "realtime_priority = 100");
        let msg = Config::parse(&text, "x.toml", Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("media.realtime_priority = 100:"), "{msg}");
    }

    #[test]
    fn a_message_minimum_above_a_node_s_silence_is_refused() {
        let c = Config::embedded();
        assert_eq!(c.messages.min_length, Duration::from_secs(1));
        let text = DEFAULT_TOML.replace("min_length = \"1s\"", "min_length = \"6s\"");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "messages.min_length");
        assert_eq!(mistake.line, Some(line_of(&text, "min_length = \"6s\"")));
        assert!(mistake.problem.contains("give at most 5s"), "{mistake}");
    }

    const TLS: &str = "\n[tls]\ncertificate = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n";

    #[test]
    fn tls_listens_on_5061_by_default_and_names_its_files_from_the_config_folder() {
        let text = format!("{DEFAULT_TOML}{TLS}");
        let c = Config::parse(&text, "x.toml", Path::new("/etc/hotline")).expect("valid");
        let tls = c.tls.as_ref().expect("[tls]");
        assert!(tls.https, "HTTPS on by default");
        assert_eq!(
            c.sip_tls_listen(),
            vec!["127.0.0.1:5061".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(c.sip_tls_address().as_deref(), Some("127.0.0.1:5061"));
        assert_eq!(
            c.tls_files(),
            Some((
                PathBuf::from("/etc/hotline/tls/cert.pem"),
                PathBuf::from("/etc/hotline/tls/key.pem")
            ))
        );
        // Behind NAT: the public host, on the TLS port.
        let text = text.replace(
            "listen = [\"127.0.0.1:5060\"]",
            "listen = [\"127.0.0.1:5060\"]\npublic_address = \"203.0.113.5:5060\"",
        );
        let c = Config::parse(&text, "x.toml", Path::new(".")).expect("valid");
        assert_eq!(c.sip_tls_address().as_deref(), Some("203.0.113.5:5061"));
        assert!(Config::embedded().tls.is_none(), "the demo stays plain");
        assert_eq!(Config::embedded().sip_tls_address(), None);
    }

    #[test]
    fn tls_addresses_that_clash_are_named_with_their_line() {
        let text = format!("{DEFAULT_TOML}{TLS}sip_listen = [\"127.0.0.1:5060\"]\n");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "tls.sip_listen");
        assert_eq!(mistake.line, Some(line_of(&text, "sip_listen = ")));
        assert!(mistake.problem.contains("sip.listen"), "{mistake}");

        let text = format!("{DEFAULT_TOML}{TLS}sip_listen = []\n");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "tls.sip_listen");
        assert!(mistake.problem.contains("at least one"), "{mistake}");

        // The default 5061 taken by SIP itself: the table's line, and the fix.
        let text = format!("{DEFAULT_TOML}{TLS}").replace(
            "listen = [\"127.0.0.1:5060\"]",
            "listen = [\"127.0.0.1:5061\"]",
        );
        let mistake = refused(&text);
        assert_eq!(mistake.key, "tls");
        assert_eq!(mistake.line, Some(line_of(&text, "[tls]")));
        assert!(mistake.problem.contains("set tls.sip_listen"), "{mistake}");

        let text = format!("{DEFAULT_TOML}{TLS}sip_listen = [\"127.0.0.1:8088\"]\n");
        assert!(refused(&text).problem.contains("api.listen"));

        let text = format!("{DEFAULT_TOML}{TLS}certificat = \"x.pem\"\n");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "tls.certificat");
        assert!(mistake.problem.contains("certificate"), "{mistake}");
    }

    #[test]
    fn a_trunk_ca_needs_a_tls_trunk() {
        let trunk = "\n[[trunks]]\nname = \"pstn\"\naddress = \"192.0.2.10:5061\"\ncaller_id = \"4008001234\"\n";
        let text = format!("{DEFAULT_TOML}{trunk}transport = \"tls\"\ntls_ca = \"ca.pem\"\n");
        let c = Config::parse(&text, "x.toml", Path::new(".")).expect("valid");
        assert_eq!(c.trunks[0].transport, TrunkTransport::Tls);
        let text = format!("{DEFAULT_TOML}{trunk}tls_ca = \"ca.pem\"\n");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "trunks[0].tls_ca");
        assert_eq!(mistake.line, Some(line_of(&text, "tls_ca")));
    }

    /// The default config with the API on a public address and a token
    /// of its own: only the web secrets are left to refuse.
    fn public_api(text: &str) -> String {
        let out = text
            .replace("listen = \"127.0.0.1:8088\"", "listen = \"192.0.2.7:8088\"")
            .replace(
                "token = \"demo-token\"",
                "token = \"a-long-random-token-of-its-own\"",
            );
        assert_ne!(out, text);
        out
    }

    #[test]
    fn web_users_and_tokens_are_checked_with_lines() {
        let c = Config::embedded();
        assert_eq!(c.web.users.len(), 1, "the demo supervisor");
        assert_eq!(c.web.users[0].role, Role::Supervisor);
        assert_eq!(c.web.session_ttl, Duration::from_secs(8 * 3600));
        assert_eq!(c.web.max_failures, 5);
        assert_eq!(c.web.failure_window, Duration::from_secs(600));
        assert_eq!(c.web.ban, Duration::from_secs(900));
        assert!(!c.secure_cookie(), "plain HTTP on loopback");
        let mut public = c.clone();
        if let Some(api) = public.api.as_mut() {
            api.listen = "192.0.2.7:8088".parse().expect("addr");
        }
        assert!(public.secure_cookie(), "on by default off loopback");
        let text = DEFAULT_TOML.replace("# secure_cookie = true ", "secure_cookie = true ");
        let forced = Config::parse(&text, "x", Path::new(".")).expect("parses");
        assert!(forced.secure_cookie(), "behind a TLS proxy on loopback");

        let text = DEFAULT_TOML.replace(DEMO_SUPERVISOR_HASH, "supervisor");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "web.users[0].password_hash");
        assert_eq!(
            mistake.line,
            Some(line_of(&text, "password_hash = \"supervisor\""))
        );
        assert!(
            mistake.problem.contains("hotline hash-password"),
            "{mistake}"
        );

        let text = DEFAULT_TOML.replace("id = \"sup\"", "id = \"1001\"");
        let mistake = refused(&text);
        assert_eq!(mistake.key, "web.users[0].id");
        assert!(mistake.problem.contains("[[agents]]"), "{mistake}");

        let text = DEFAULT_TOML.replace("role = \"supervisor\"", "role = \"boss\"");
        assert_eq!(refused(&text).key, "web.users[0].role");

        let text = format!(
            "{DEFAULT_TOML}\n[[api.tokens]]\nname = \"crm\"\nrole = \"admin\"\nsha256 = \"crm-token\"\n"
        );
        let mistake = refused(&text);
        assert_eq!(mistake.key, "api.tokens[0].sha256");
        assert!(
            mistake.problem.contains("never the token itself"),
            "{mistake}"
        );
        assert_eq!(mistake.line, Some(line_of(&text, "sha256 = \"crm-token\"")));
        let token = |name: &str, hex: &str| {
            format!("[[api.tokens]]\nname = \"{name}\"\nrole = \"agent\"\nsha256 = \"{hex}\"\n")
        };
        let text = format!(
            "{DEFAULT_TOML}\n{}{}",
            token("a", &"a".repeat(64)),
            token("a", &"b".repeat(64))
        );
        assert_eq!(refused(&text).key, "api.tokens[1].name");
        let text = format!(
            "{DEFAULT_TOML}\n{}{}",
            token("a", &"a".repeat(64)),
            token("b", &"A".repeat(64))
        );
        assert_eq!(refused(&text).key, "api.tokens[1].sha256");

        let text = DEFAULT_TOML.replace("session_ttl = \"8h\"", "session_ttl = \"0s\"");
        assert_eq!(refused(&text).key, "web.session_ttl");
        let text = DEFAULT_TOML.replace("max_failures = 5 ", "max_failures = 0 ");
        assert_eq!(refused(&text).key, "web.max_failures");
    }

    #[test]
    fn the_demo_web_passwords_are_refused_beyond_loopback() {
        // The demo supervisor's hash on a public API.
        let text = public_api(DEFAULT_TOML);
        let mistake = refused(&text);
        assert_eq!(mistake.key, "web.users[0].password_hash");
        assert_eq!(
            mistake.line,
            Some(line_of(
                &text,
                &format!("password_hash = \"{DEMO_SUPERVISOR_HASH}\"")
            ))
        );
        assert!(mistake.problem.contains("\"supervisor\""), "{mistake}");
        // Then the agents: they sign in on the web with "secret".
        let text = public_api(&DEFAULT_TOML.replace(
            &format!("password_hash = \"{DEMO_SUPERVISOR_HASH}\""),
            "password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$kJvjTZHdrzbANOA0ZKmS8mjBiZjJwyi6m1rSNkHwNbQ\"",
        ));
        let mistake = refused(&text);
        assert_eq!(mistake.key, "agents[0].ha1_md5");
        assert!(
            mistake.problem.contains("api.listen (192.0.2.7:8088)"),
            "{mistake}"
        );
    }

    #[test]
    fn port_range_checked_with_lines() {
        let text = DEFAULT_TOML.replace("port_min = 20000", "port_min = 40000");
        let msg = Config::parse(&text, "x.toml", Path::new("."))
            .expect_err("refused")
            .to_string();
        assert!(
            msg.contains("media.port_min") && msg.contains("line"),
            "{msg}"
        );
    }
}
