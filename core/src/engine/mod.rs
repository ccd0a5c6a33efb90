//! The engine: every decision about SIP and calls, as a pure state machine.
//!
//! The runtime calls, in a loop:
//! 1. `handle_input(now, input)` for each datagram, TCP message or media event;
//! 2. `handle_timeout(now)` when `poll_timeout()` is reached;
//! 3. `poll_output()` until `None`, carrying out each [`Output`].
//!
//! The engine never reads a clock: wall-clock times in records are derived
//! from the `(Instant, epoch ms)` pair it was created with.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use tracing::{debug, info, info_span, warn};

use crate::acd::{Acd, AgentConfig, QueueConfig};
use crate::cdr::{self, CallRecord, Disposition, HangupSide, Outcome};
use crate::config::{Config, InbandDtmf, Language};
use crate::directory::{CustomerInfo, Directory};
use crate::ivr::interpreter::Ivr;
use crate::ivr::program::{NodeId, Program};
use crate::media::catalog::PromptLibrary;
use crate::media::dtmf::DigitSource;
use crate::media::prompt::{PromptId, PromptSet};
use crate::media::session::{MediaEvent, MediaParams, RecordingEnd};
use crate::sip::build::{self, Body, DialogRequest, ALLOW};
use crate::sip::message::{self, Method, ParseError, SipMessage, SipRequest, SipResponse};
use crate::sip::registrar::{Credentials, Registrar, RegistrarSettings};
use crate::sip::sdp::{self, Direction, LocalMedia, Negotiated, RemoteMedia};
use crate::sip::transaction::{
    ClientTransaction, InviteClientTransaction, ServerState, ServerTransaction, SipTimers, Timed,
    TimerOutcome,
};
use crate::time::TimerQueue;
use crate::voicemail::MessageRecord;

mod acd;
mod agent_leg;
mod agents_api;
mod dialog;
pub mod guard;
mod ivr;
mod live;
mod record;
mod register;

use agent_leg::AgentLeg;
pub use agent_leg::LegKey;
pub use agents_api::{AgentCommand, AgentSnapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
    fn reliable(self) -> bool {
        self == Transport::Tcp
    }
}

/// Where a message came from or goes to. `conn` names the TCP connection
/// (0 for UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub conn: u64,
}

pub type CallKey = u64;

#[derive(Debug)]
pub enum Input<'a> {
    Sip {
        peer: Peer,
        data: &'a [u8],
    },
    Media {
        call: CallKey,
        event: MediaEvent,
    },
    /// The runtime could not open the call's RTP port.
    MediaFailed {
        call: CallKey,
    },
    /// A recording asked for by [`Output::MediaRecord`] is on disk.
    RecordingSaved {
        call: CallKey,
        duration_ms: u64,
        ended_by: RecordingEnd,
    },
    /// The caller directory was reloaded.
    Directory(Arc<Directory>),
}

#[derive(Debug)]
pub enum Output {
    Transmit {
        peer: Peer,
        data: Vec<u8>,
    },
    /// Open the call's RTP socket on `port` and start a media session.
    MediaStart {
        call: CallKey,
        port: u16,
        params: MediaParams,
    },
    /// Play a prompt; its end is reported with the same `token`.
    MediaPlay {
        call: CallKey,
        prompt: PromptId,
        token: u32,
    },
    MediaStopPlayback {
        call: CallKey,
    },
    /// Record the caller into `file` (relative to the messages folder),
    /// reporting [`MediaEvent::RecordingFinished`], then, once the WAV is
    /// written, [`Input::RecordingSaved`].
    MediaRecord {
        call: CallKey,
        file: String,
        max_length: Duration,
        end_silence: Duration,
    },
    MediaStopRecording {
        call: CallKey,
    },
    /// A voice message is on disk: append it to the message index.
    MessageSaved(Box<MessageRecord>),
    /// Open a second RTP socket on `port` beside the call's media, for
    /// the leg to an agent.
    MediaAddLeg {
        call: CallKey,
        port: u16,
        params: MediaParams,
    },
    /// Play a prompt to the agent only (the whisper before the bridge).
    MediaPlayLeg {
        call: CallKey,
        prompt: PromptId,
    },
    /// Relay audio between the caller and the agent leg, both ways.
    MediaBridge {
        call: CallKey,
    },
    /// Close the agent leg's socket; the caller's leg goes on.
    MediaRemoveLeg {
        call: CallKey,
    },
    /// A line for another stream in the records folder: `queue_log`
    /// (Asterisk's format) or `offers-<date>.jsonl` (one line per offer).
    Line {
        file: String,
        line: String,
    },
    MediaUpdate {
        call: CallKey,
        remote: SocketAddr,
        sending: bool,
    },
    /// The call is over: write the record durably, then close its media.
    CallEnded {
        call: CallKey,
        record: Box<CallRecord>,
    },
}

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
    pub media_address: IpAddr,
    pub port_range: (u16, u16),
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
    pub features: crate::config::FeatureCodes,
    /// The live view's service level and "today" (from `[api]`).
    pub live: crate::live::LiveSettings,
    /// Message size and header limits (`[sip.limits]`).
    pub limits: message::ParseLimits,
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
            media_address: c.media.advertised_address,
            port_range: c.port_range(),
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
            login_on_register: c
                .agents
                .iter()
                .filter(|a| a.login_on_register)
                .map(|a| a.id.clone())
                .collect(),
            credentials: c
                .agents
                .iter()
                .map(|a| Credentials {
                    user: a.id.clone(),
                    ha1_md5: a.ha1_md5.clone(),
                    ha1_sha256: a.ha1_sha256.clone(),
                })
                .collect(),
        }
    }
}

/// Counters for operations and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub datagrams_dropped: u64,
    pub bad_requests: u64,
    pub retransmissions_absorbed: u64,
    pub calls_offered: u64,
    pub calls_rejected_busy: u64,
    pub bye_timeouts: u64,
    /// INVITEs for hotline numbers from outside the trunk allow-list (403).
    pub calls_forbidden: u64,
    /// Datagrams dropped because their source is banned for flooding.
    pub flood_dropped: u64,
    /// Messages over `max_message_size` (answered 513 or dropped).
    pub oversized: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TxKey {
    branch: String,
    /// INVITE for INVITE and its ACK; the method otherwise.
    method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    ServerTx(TxKey),
    ClientTx(String),
    InviteClientTx(String),
    Call(CallKey),
    Registrar,
    Acd,
    /// The drain timeout after SIGTERM ran out.
    Drain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Ringing,
    /// 200 sent, waiting for the ACK.
    Answered,
    Confirmed,
}

struct Call {
    /// The prompts the call started with: a reload does not change the
    /// ids its media task plays.
    prompts: Arc<PromptLibrary>,
    peer: Peer,
    invite: SipRequest,
    invite_tx: TxKey,
    local_tag: String,
    state: CallState,
    answer_at: Option<Instant>,
    remote_cseq: u32,
    local_cseq: u32,
    offer: Option<RemoteMedia>,
    negotiated: Option<Negotiated>,
    port: u16,
    sdp_session: u64,
    sdp_version: u64,
    /// The INVITE transaction (initial or re-INVITE) whose 2xx awaits an ACK.
    awaiting_ack: Option<TxKey>,
    ivr: Ivr,
    /// Token of the prompt playing now; other tokens' ends are stale.
    playing: Option<u32>,
    next_token: u32,
    /// The last digit taken, for dropping the same key sent two ways.
    last_digit: Option<(char, DigitSource, Instant)>,
    customer: CustomerInfo,
    message_file: Option<String>,
    /// The call's time in an ACD queue, once the IVR queues it.
    queue: Option<acd::QueueVisit>,
    /// A feature code dialled by an agent, instead of the IVR.
    feature: Option<acd::Feature>,
    /// Prompts still to play in an announcement built from pieces, and
    /// what to do when it is over.
    sequence: VecDeque<PromptId>,
    after_sequence: Option<acd::AfterSequence>,
    agent_hung_up: bool,
    media_started: bool,
    invite_at: Instant,
    ringing_at: Option<Instant>,
    answered_at: Option<Instant>,
    media_start_at: Option<Instant>,
    digits: String,
    caller_spoke: bool,
}

impl Call {
    /// A prompt by name in the call's language, else in `fallback`.
    fn prompt(&self, name: &str, fallback: Language) -> Option<PromptId> {
        self.prompts
            .get(self.ivr.language, name)
            .or_else(|| self.prompts.get(fallback, name))
    }
}

pub struct Engine {
    settings: EngineSettings,
    prompts: Arc<PromptLibrary>,
    program: Arc<Program>,
    directory: Arc<Directory>,
    /// Messages being recorded, by call, until their WAV is saved.
    pending_messages: HashMap<CallKey, MessageRecord>,
    epoch: (Instant, u64),
    rng: StdRng,
    calls: HashMap<CallKey, Call>,
    dialogs: HashMap<String, CallKey>,
    server_txs: HashMap<TxKey, (ServerTransaction, Peer)>,
    client_txs: HashMap<String, (ClientTransaction, Peer)>,
    invite_client_txs: HashMap<String, (InviteClientTransaction, Peer)>,
    legs: HashMap<LegKey, AgentLeg>,
    leg_by_call_id: HashMap<String, LegKey>,
    registrar: Registrar,
    acd: Acd,
    /// The leg ringing each (caller, agent) offer.
    offers: HashMap<(CallKey, String), LegKey>,
    agent_numbers: HashMap<String, String>,
    login_on_register: std::collections::HashSet<String>,
    timers: TimerQueue<Wake>,
    free_ports: VecDeque<u16>,
    outputs: VecDeque<Output>,
    next_call: CallKey,
    rate_tokens: f64,
    rate_updated: Instant,
    draining: bool,
    guard: guard::SourceGuard,
    pub counters: Counters,
    /// Figures for the live view (wallboard, /metrics).
    live: crate::live::LiveStats,
}

impl Engine {
    /// `wall_ms` is the wall-clock time (ms since the Unix epoch) at `now`.
    pub fn new(
        settings: EngineSettings,
        prompts: PromptLibrary,
        program: Arc<Program>,
        directory: Arc<Directory>,
        now: Instant,
        wall_ms: u64,
        seed: u64,
    ) -> Self {
        let (lo, hi) = settings.port_range;
        // Even ports only (RTP convention); released ports go to the back so
        // a port is not reused while its old socket may still be closing.
        let free_ports = (lo..=hi).filter(|p| p % 2 == 0).collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let registrar = Registrar::new(
            now,
            settings.registrar.clone(),
            settings.credentials.clone(),
            rng.random(),
        );
        // Setup checked the queues and agents; a failure here is a bug.
        let acd = Acd::new(settings.queues.clone(), settings.agents.clone())
            .unwrap_or_else(|e| panic!("ACD config passed the checks but failed: {e}"));
        let guard = guard::SourceGuard::new(now, settings.guard.clone());
        let live = live::new_stats(
            settings.live.clone(),
            &settings.queues,
            &settings.agents,
            now,
            (now, wall_ms),
        );
        Engine {
            live,
            acd,
            offers: HashMap::new(),
            agent_numbers: settings
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.number.clone()))
                .collect(),
            login_on_register: settings.login_on_register.iter().cloned().collect(),
            registrar,
            rate_tokens: settings.max_calls_per_second as f64,
            rate_updated: now,
            settings,
            prompts: Arc::new(prompts),
            program,
            directory,
            pending_messages: HashMap::new(),
            epoch: (now, wall_ms),
            rng,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            invite_client_txs: HashMap::new(),
            legs: HashMap::new(),
            leg_by_call_id: HashMap::new(),
            timers: TimerQueue::default(),
            free_ports,
            outputs: VecDeque::new(),
            next_call: 1,
            draining: false,
            guard,
            counters: Counters::default(),
        }
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Messages being recorded whose WAV is not saved yet.
    pub fn pending_messages(&self) -> usize {
        self.pending_messages.len()
    }

    pub fn prompts(&self) -> &Arc<PromptSet> {
        &self.prompts.set
    }

    /// The prompts a call plays from (those loaded when it started).
    pub fn call_prompts(&self, call: CallKey) -> Arc<PromptSet> {
        match self.calls.get(&call) {
            Some(c) => c.prompts.set.clone(),
            None => self.prompts.set.clone(),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front()?;
        // Counted as they leave, so every path that answers is covered.
        if let Output::Transmit { data, .. } = &output {
            if let Some(code) = live::response_code(data) {
                self.live.sip_response_sent(code);
            }
        }
        Some(output)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Sip { peer, data } => self.handle_sip(now, peer, data),
            Input::Media { call, event } => self.handle_media(now, call, event),
            Input::MediaFailed { call } => {
                if self.calls.contains_key(&call) {
                    self.hangup(now, call, Outcome::MediaFailed, Disposition::Failed);
                }
            }
            Input::RecordingSaved {
                call,
                duration_ms,
                ended_by,
            } => self.recording_saved(call, duration_ms, ended_by),
            Input::Directory(directory) => {
                info!(entries = directory.len(), "caller directory reloaded");
                self.directory = directory;
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(wake) = self.timers.pop_due(now) {
            match wake {
                Wake::ServerTx(key) => self.server_tx_timeout(now, key),
                Wake::ClientTx(branch) => self.client_tx_timeout(now, branch),
                Wake::InviteClientTx(branch) => self.invite_client_tx_timeout(now, branch),
                Wake::Call(call) => self.call_timeout(now, call),
                Wake::Registrar => self.registrar_timeout(now),
                Wake::Acd => self.acd_timeout(now),
                Wake::Drain => self.shutdown(now),
            }
        }
    }

    /// Applies a reloaded configuration (SIGHUP): new calls get the new
    /// IVR program, prompts and limits; calls in progress finish on what
    /// they started with. The RTP port range cannot change while running
    /// (it stays). ACD shape changes are refused and then nothing changes.
    pub fn reload(
        &mut self,
        mut settings: EngineSettings,
        prompts: PromptLibrary,
        program: Arc<Program>,
        directory: Arc<Directory>,
    ) -> Result<(), crate::acd::AcdConfigError> {
        self.acd
            .reconfigure(settings.queues.clone(), settings.agents.clone())?;
        if settings.port_range != self.settings.port_range {
            warn!("the RTP port range changes only on restart");
            settings.port_range = self.settings.port_range;
        }
        self.registrar
            .reconfigure(settings.registrar.clone(), settings.credentials.clone());
        self.guard.set_settings(settings.guard.clone());
        self.agent_numbers = settings
            .agents
            .iter()
            .map(|a| (a.id.clone(), a.number.clone()))
            .collect();
        self.login_on_register = settings.login_on_register.iter().cloned().collect();
        self.settings = settings;
        self.prompts = Arc::new(prompts);
        self.program = program;
        self.directory = directory;
        info!(calls = self.calls.len(), "configuration reloaded");
        Ok(())
    }

    /// Stop taking calls (new INVITEs get 503) and let those in progress
    /// finish, for at most the drain timeout; then hang them up.
    pub fn drain(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        self.draining = true;
        info!(
            calls = self.calls.len(),
            timeout = ?self.settings.drain_timeout,
            "draining: new calls get 503"
        );
        self.timers
            .schedule(now + self.settings.drain_timeout, Wake::Drain);
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Draining and nothing left: no calls, no agent legs, no message
    /// waiting to be saved. The shell may stop.
    pub fn drained(&self) -> bool {
        self.draining
            && self.calls.is_empty()
            && self.legs.is_empty()
            && self.pending_messages.is_empty()
    }

    /// Stop taking calls and hang up those in progress (records written).
    pub fn shutdown(&mut self, now: Instant) {
        self.draining = true;
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            let ringing = self.calls.get(&key).map(|c| c.state == CallState::Ringing);
            if ringing == Some(true) {
                self.reject_ringing(now, key, 503, "Service Unavailable", Outcome::Shutdown);
            } else {
                self.hangup(now, key, Outcome::Shutdown, Disposition::Answered);
            }
        }
    }

    // ---- helpers -------------------------------------------------------

    fn schedule(&mut self, at: Option<Instant>, wake: Wake) {
        if let Some(at) = at {
            self.timers.schedule(at, wake);
        }
    }

    /// Responds within a new server transaction (non-INVITE requests).
    fn respond_new(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = (req.to_tag.is_none() && status > 100).then(|| self.random_token(10));
        let response = build::response(req, peer.addr, status, reason, tag.as_deref(), extra, None);
        let invite = req.method == Method::Invite;
        let mut tx =
            ServerTransaction::new(invite, peer.transport.reliable(), self.settings.timers);
        tx.final_response(now, status, response.clone());
        let key = TxKey {
            branch: req.branch.clone(),
            method: if invite {
                "INVITE".into()
            } else {
                req.method.to_string()
            },
        };
        let wake = tx.poll_timeout();
        if !req.branch.is_empty() {
            self.server_txs.insert(key.clone(), (tx, peer));
            self.schedule(wake, Wake::ServerTx(key));
        }
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
    }

    /// Answers a request we could not fully parse, without a transaction.
    fn respond_stateless(
        &mut self,
        peer: Peer,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = req.to_tag.is_none().then(|| self.random_token(10));
        let response = build::response(req, peer.addr, status, reason, tag.as_deref(), extra, None);
        self.outputs.push_back(Output::Transmit {
            peer,
            data: response,
        });
    }

    /// The engine's own id for a call, as in its record.
    fn call_id(&self, key: CallKey) -> String {
        call_id(self.epoch, key)
    }

    fn contact(&self) -> String {
        format!("<sip:hotline@{}>", self.settings.sip_address)
    }

    fn random_token(&mut self, len: usize) -> String {
        random_token(&mut self.rng, len)
    }

    fn wall_ms(&self, at: Instant) -> u64 {
        wall_ms(self.epoch, at)
    }
}

/// Wall-clock ms at `at`, from the engine's (Instant, epoch ms) pair.
fn wall_ms(epoch: (Instant, u64), at: Instant) -> u64 {
    let (base, wall) = epoch;
    if at >= base {
        wall + (at - base).as_millis() as u64
    } else {
        wall.saturating_sub((base - at).as_millis() as u64)
    }
}

fn call_id(epoch: (Instant, u64), key: CallKey) -> String {
    format!("hl-{}-{}", epoch.1, key)
}

enum Fired {
    /// Still running; wake it again then.
    Pending(Option<Instant>),
    /// Ended and removed; `gave_up` when timer H or F ran out.
    Ended { gave_up: bool },
}

/// Runs a transaction's due timers: retransmissions go to `outputs`, and an
/// ended transaction is removed from `txs`.
fn fire<K: std::hash::Hash + Eq, T: Timed>(
    txs: &mut HashMap<K, (T, Peer)>,
    key: &K,
    now: Instant,
    outputs: &mut VecDeque<Output>,
) -> Fired {
    let Some((tx, peer)) = txs.get_mut(key) else {
        return Fired::Pending(None);
    };
    match tx.handle_timeout(now) {
        TimerOutcome::Retransmit(data) => outputs.push_back(Output::Transmit {
            peer: *peer,
            data: data.to_vec(),
        }),
        TimerOutcome::Terminated { gave_up } => {
            txs.remove(key);
            return Fired::Ended { gave_up };
        }
        TimerOutcome::Nothing => {}
    }
    Fired::Pending(tx.poll_timeout())
}

fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
