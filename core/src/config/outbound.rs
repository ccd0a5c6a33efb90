//! What hotline needs to place calls: `[[trunks]]` (the PBX, SBC or
//! provider its INVITEs go to), `[outbound]` (notice campaigns), and
//! `[store]` (where work that outlives a call is kept).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A trunk: where outbound INVITEs go, the number presented, and the
/// limits the provider sets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// host:port the INVITEs are sent to (an IP address: no DNS).
    pub address: SocketAddr,
    #[serde(default)]
    pub transport: TrunkTransport,
    /// The number presented (From user) on calls through this trunk.
    pub caller_id: String,
    /// Calls through the trunk at once; never exceeded.
    #[serde(default = "default_channels")]
    pub max_channels: u32,
    /// New calls per second; never exceeded.
    #[serde(default = "default_rate")]
    pub max_calls_per_second: u32,
    /// The host of the Request-URI (`sip:<number>@<domain>`); the
    /// address when absent.
    #[serde(default)]
    pub domain: Option<String>,
    /// Digest credentials for 401/407 challenges from the trunk.
    #[serde(default)]
    pub username: Option<String>,
    /// The secret, in the file...
    #[serde(default)]
    pub password: Option<String>,
    /// ...or, better, the name of an environment variable holding it
    /// (read by the shell at start; never logged).
    #[serde(default)]
    pub password_env: Option<String>,
    /// With `transport = "tls"`: a PEM file of the certificate authorities
    /// the trunk's certificate must chain to (relative to the config's
    /// folder), instead of the system's roots.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
}

fn default_channels() -> u32 {
    30
}
fn default_rate() -> u32 {
    10
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrunkTransport {
    #[default]
    Udp,
    Tcp,
    /// SIP over TLS: the trunk's certificate is verified against the
    /// system's roots (or `tls_ca`), for the trunk's `domain` (or its
    /// address).
    Tls,
}

/// Voice-notice campaigns.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// A caller who received a notice within this many days is recognised
    /// when they call the hotline (the IVR may branch on it).
    #[serde(default = "default_notice_memory_days")]
    pub notice_memory_days: u32,
    /// A do-not-call list: one number per line (more can be added through
    /// the API). Relative to the config's folder.
    #[serde(default)]
    pub dnc_file: Option<PathBuf>,
}

fn default_notice_memory_days() -> u32 {
    7
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            notice_memory_days: default_notice_memory_days(),
            dnc_file: None,
        }
    }
}

/// Where campaigns, their numbers and attempts are kept.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The embedded database file (SQLite, WAL); relative to the config's
    /// folder. Nothing to install or start.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// Shared state in PostgreSQL for several nodes
    /// (`postgres://user@host/db`, docs/cluster.md); `path` is then unused.
    #[serde(default)]
    pub url: Option<String>,
}

fn default_store_path() -> PathBuf {
    PathBuf::from("var/hotline.db")
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            url: None,
        }
    }
}

/// `[node]`: this process among several sharing one store (docs/cluster.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name, in its call ids and records; the host name when
    /// not given.
    #[serde(default)]
    pub id: Option<String>,
    /// How long the node's claims (agents offered, entries, dialing
    /// attempts) outlive its last heartbeat; a dead node's are released
    /// after this.
    #[serde(default = "default_lease", with = "crate::forms::duration")]
    pub lease: Duration,
}

fn default_lease() -> Duration {
    Duration::from_secs(5)
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: None,
            lease: default_lease(),
        }
    }
}
