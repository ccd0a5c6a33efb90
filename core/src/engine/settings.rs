//! What the engine is told by the config: [`EngineSettings`], taken from
//! [`Config`] once at start and again at each reload (it travels in the
//! reload input, so it depends on nothing of the engine's).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::guard;
use crate::acd::{AgentConfig, QueueConfig};
use crate::config::{Config, InbandDtmf, Language};
use crate::sip::message;
use crate::sip::registrar::{Credentials, RegistrarSettings};
use crate::sip::transaction::SipTimers;

/// Engine settings, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub timers: SipTimers,
    pub answer_after: Duration,
    pub max_calls: usize,
    pub max_calls_per_second: u32,
    pub retry_after: Duration,
    pub drain_timeout: Duration,
    pub guard: guard::GuardSettings,
    pub sip_address: String,
    /// host:port for Via and Contact over TLS (`[tls]`); none without it.
    pub tls_address: Option<String>,
    pub media_address: IpAddr,
    pub port_range: (u16, u16),
    /// `calls.caller_id_from`: the header that names the caller.
    pub caller_id_from: crate::sip::message::CallerIdFrom,
    /// `messages.min_length`: shorter messages are discarded.
    pub min_message: Duration,
    pub default_language: Language,
    pub inband_dtmf: InbandDtmf,
    pub inactivity_timeout: Duration,
    pub speech_threshold_dbfs: f64,
    pub speech_frames: u32,
    pub registrar: RegistrarSettings,
    pub credentials: Vec<Credentials>,
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentConfig>,
    /// Agents logged in when their phone registers.
    pub login_on_register: Vec<String>,
    /// Calls are recorded when answered by these agents, or of these
    /// business types (besides queues with `record`).
    pub record_agents: Vec<String>,
    pub record_business_types: Vec<String>,
    /// Agents whose phones are PBX extensions: id -> (trunk, extension).
    pub pbx_agents: BTreeMap<String, (String, String)>,
    pub features: crate::config::FeatureCodes,
    /// The live view's service level and "today" (from `[api]`).
    pub live: crate::live::LiveSettings,
    /// Message size and header limits (`[sip.limits]`).
    pub limits: message::ParseLimits,
    /// Trunks calls are placed through (passwords resolved by the shell).
    pub trunks: Vec<crate::config::TrunkConfig>,
    /// How long a heard notice is remembered for its number's calls.
    pub notice_memory_days: u32,
    /// Callbacks, follow-ups, first-contact routing.
    pub tasks: crate::config::TasksConfig,
    /// This node's name, in record ids (`[node] id`; the shell puts the
    /// host name here for a node sharing a store without one).
    pub node: Option<String>,
    /// Several nodes share `store.url`: offers wait for the store's claim.
    pub cluster: Option<ClusterSettings>,
}

impl EngineSettings {
    pub fn from_config(c: &Config) -> Self {
        EngineSettings {
            timers: SipTimers {
                t1: c.sip.t1,
                t2: c.sip.t2,
                t4: c.sip.t4,
            },
            answer_after: c.calls.answer_after.0,
            max_calls: c.calls.max_calls,
            max_calls_per_second: c.calls.max_calls_per_second,
            retry_after: c.calls.retry_after,
            drain_timeout: c.calls.drain_timeout,
            guard: guard::GuardSettings {
                trunks: c.security.trunks.iter().map(|t| t.0).collect(),
                invite_rate: c.security.invite_rate,
                register_rate: c.security.register_rate,
                flood_ban: c.security.flood_ban,
            },
            sip_address: c.sip_public_address(),
            tls_address: c.sip_tls_address(),
            media_address: c.media.advertised_address,
            port_range: c.port_range(),
            min_message: c.messages.min_length,
            caller_id_from: c.calls.caller_id_from,
            default_language: c.prompts.default_language,
            inband_dtmf: c.media.inband_dtmf,
            inactivity_timeout: c.media.inactivity_timeout,
            speech_threshold_dbfs: c.media.speech_threshold_dbfs,
            speech_frames: (c.media.speech_min.as_millis() / 20).max(1) as u32,
            registrar: RegistrarSettings {
                realm: c.registrar.realm.clone(),
                nonce_ttl: c.registrar.nonce_ttl,
                min_expires: c.registrar.min_expires.as_secs() as u32,
                max_expires: c.registrar.max_expires.as_secs() as u32,
                default_expires: c.registrar.max_expires.as_secs() as u32,
                max_auth_failures: c.registrar.max_auth_failures,
                failure_window: c.registrar.failure_window,
                ban: c.registrar.ban,
                algorithms: c
                    .registrar
                    .algorithms
                    .iter()
                    .map(|a| match a {
                        crate::config::DigestAlgorithm::Sha256 => {
                            crate::sip::digest::Algorithm::Sha256
                        }
                        crate::config::DigestAlgorithm::Md5 => crate::sip::digest::Algorithm::Md5,
                    })
                    .collect(),
                // The PBX or proxy in front is on the trunk allow-list.
                trusted_proxies: c.security.trunks.iter().map(|t| t.0).collect(),
                ..RegistrarSettings::default()
            },
            queues: c.queues.clone(),
            agents: c
                .agents
                .iter()
                .map(|a| AgentConfig {
                    id: a.id.clone(),
                    number: a.number.clone(),
                    name: a.name.clone(),
                    skills: a.skills.clone(),
                    queues: a.queues.clone(),
                })
                .collect(),
            features: c.features.clone(),
            live: c
                .api
                .as_ref()
                .map(|api| crate::live::LiveSettings {
                    service_level_threshold: api.service_level,
                    service_level_target: api.service_level_target,
                    utc_offset_minutes: api.utc_offset.0,
                    short_abandon: api.short_abandon,
                })
                .unwrap_or_default(),
            limits: c.sip.limits.parse_limits(),
            trunks: c.trunks.clone(),
            notice_memory_days: c.outbound.notice_memory_days,
            tasks: c.tasks.clone(),
            node: c.node.id.clone(),
            cluster: c.store.url.as_ref().map(|_| ClusterSettings {
                lease: c.node.lease,
            }),
            login_on_register: c
                .agents
                .iter()
                .filter(|a| a.login_on_register)
                .map(|a| a.id.clone())
                .collect(),
            record_agents: c
                .agents
                .iter()
                .filter(|a| a.record)
                .map(|a| a.id.clone())
                .collect(),
            record_business_types: c.recordings.business_types.clone(),
            pbx_agents: c
                .agents
                .iter()
                .filter_map(|a| Some((a.id.clone(), (a.trunk.clone()?, a.extension.clone()?))))
                .collect(),
            credentials: c
                .agents
                .iter()
                .filter(|a| a.trunk.is_none())
                .map(|a| Credentials {
                    user: a.id.clone(),
                    ha1_md5: a.ha1_md5.clone(),
                    ha1_sha256: a.ha1_sha256.clone(),
                })
                .collect(),
        }
    }
}

/// A node sharing the store with others.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// How long this node's claims outlive its last heartbeat.
    pub lease: Duration,
}
