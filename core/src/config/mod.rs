//! Typed configuration: TOML in, checked values out. Unknown keys and bad
//! values are refused with the key and the line they are on.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::ivr::program::IvrConfig;

mod limits;
pub use limits::SipLimits;

/// The configuration `hotline run` uses when given no file.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Longest ringing time the operators' standard allows (3 rings / 15 s).
pub const ANSWER_WINDOW: Duration = Duration::from_secs(15);

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
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
    /// Directory relative paths are resolved against (the config's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The TOML text, for line numbers in later checks.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<SocketAddr>,
    #[serde(default)]
    pub public_address: Option<String>,
    #[serde(default = "default_t1", with = "humantime_serde")]
    pub t1: Duration,
    #[serde(default = "default_t2", with = "humantime_serde")]
    pub t2: Duration,
    #[serde(default = "default_t4", with = "humantime_serde")]
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
    #[serde(with = "humantime_serde")]
    pub inactivity_timeout: Duration,
    pub speech_threshold_dbfs: f64,
    #[serde(with = "humantime_serde")]
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
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// On SIGTERM: how long calls in progress may go on while new ones
    /// get 503, before the rest are hung up.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
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
    #[serde(default = "default_flood_ban", with = "humantime_serde")]
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
        let delay: Duration = humantime_serde::deserialize(d)?;
        if delay > ANSWER_WINDOW {
            return Err(serde::de::Error::custom(format!(
                "answer_after = {} is beyond the 15 s answer window (3 rings); use at most 15s",
                humantime::format_duration(delay)
            )));
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
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            dir: PathBuf::from("var/messages"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Digest realm; an agent's HA1 is H(id:realm:password).
    pub realm: String,
    #[serde(with = "humantime_serde")]
    pub min_expires: Duration,
    #[serde(with = "humantime_serde")]
    pub max_expires: Duration,
    #[serde(with = "humantime_serde")]
    pub nonce_ttl: Duration,
    /// Failed logins from one address within `failure_window` before it is
    /// refused for `ban`.
    pub max_auth_failures: u32,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    #[serde(with = "humantime_serde")]
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
    /// Log the agent in when their phone registers.
    #[serde(default = "default_true")]
    pub login_on_register: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Bearer token required for changes (log in, log out, break).
    pub token: String,
    /// Local time's offset from UTC: the live view's "today" starts at
    /// local midnight.
    #[serde(default)]
    pub utc_offset: UtcOffset,
    /// Service-level threshold for the live view: answered within it is in
    /// time.
    #[serde(default = "default_service_level", with = "humantime_serde")]
    pub service_level: Duration,
    /// The service level aimed at (0..1), for the wallboard's colours.
    #[serde(default = "default_service_level_target")]
    pub service_level_target: f64,
    /// Abandons shorter than this are short abandons, left out of the
    /// service level and abandon rate (off when absent).
    #[serde(default, with = "humantime_serde")]
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
        crate::ivr::program::parse_offset(&text)
            .map(UtcOffset)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "utc_offset = {text:?}: write the offset as \"+08:00\""
                ))
            })
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
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            login: "*1".into(),
            logout: "*2".into(),
            on_break: "*3".into(),
            available: "*4".into(),
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
    #[serde(default = "default_reload", with = "humantime_serde")]
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
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        config.base_dir = base_dir.to_path_buf();
        config.source = text.to_string();
        let line_of = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        let (min, max) = (&config.media.port_min, &config.media.port_max);
        if min.get_ref() >= max.get_ref() || *min.get_ref() == 0 {
            return Err(invalid(format!(
                "line {}: media.port_min ({}) must be above 0 and below media.port_max ({}, line {})",
                line_of(min.span()),
                min.get_ref(),
                max.get_ref(),
                line_of(max.span())
            )));
        }
        if config.media.realtime_priority > 99 {
            return Err(invalid(format!(
                "media.realtime_priority ({}) must be 0 (off) or 1..=99",
                config.media.realtime_priority
            )));
        }
        if config.sip.listen.is_empty() {
            return Err(invalid("sip.listen: give at least one address".into()));
        }
        if config.calls.max_calls == 0 {
            return Err(invalid("calls.max_calls must be at least 1".into()));
        }
        for (i, a) in config.agents.iter().enumerate() {
            if a.ha1_md5.is_none() && a.ha1_sha256.is_none() {
                return Err(invalid(format!(
                    "agents[{i}] ({}): give ha1_md5 or ha1_sha256 (hex of H(id:realm:password))",
                    a.id
                )));
            }
            for (key, ha1, len) in [
                ("ha1_md5", &a.ha1_md5, 32),
                ("ha1_sha256", &a.ha1_sha256, 64),
            ] {
                if let Some(h) = ha1 {
                    if h.len() != len || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(invalid(format!(
                            "agents[{i}].{key} ({}): expected {len} hex digits",
                            a.id
                        )));
                    }
                }
            }
        }
        if let Some(api) = &config.api {
            if !(0.0..=1.0).contains(&api.service_level_target) {
                return Err(invalid(format!(
                    "api.service_level_target = {}: give a share between 0 and 1 (0.8 for 80%)",
                    api.service_level_target
                )));
            }
        }
        if config.prompts.languages.is_empty() {
            return Err(invalid(
                "prompts.languages: give at least one language".into(),
            ));
        }
        Ok(config)
    }

    pub fn port_range(&self) -> (u16, u16) {
        (
            *self.media.port_min.get_ref(),
            *self.media.port_max.get_ref(),
        )
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
        assert!(msg.contains("media.realtime_priority (100)"), "{msg}");
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
