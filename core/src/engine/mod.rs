//! The engine: the router at the heart of the core. It takes SIP, media
//! events and timeouts with `now`, and hands back [`Output`]s; it never
//! reads a clock or touches a socket. The shell calls, in a loop:
//! 1. `handle_input(now, input)` for each datagram, TCP message, media
//!    event or reload;
//! 2. `handle_timeout(now)` when `poll_timeout()` is reached;
//! 3. `poll_output()` until `None`, carrying out each [`Output`].
//!
//! What it routes, and where each part lives:
//! - SIP in ([`ingress`]): parsing, the flood guard ([`guard`]),
//!   retransmissions absorbed by the transaction tables ([`crate::wire`]),
//!   and each request or response demultiplexed by transaction, Call-ID
//!   and tag to the [`Leg`] it belongs to;
//! - calls ([`flow`]): a new INVITE becomes a [`Call`] with its customer's
//!   leg; what a leg reports ([`LegEvent`]) moves the call on. Placing a
//!   leg to any URI, bridging two legs and replacing a leg are operations
//!   here, used by the ACD today and by transfers and outbound calls next;
//! - the IVR ([`ivr`]), queues and agents ([`queue`], the pure
//!   [`crate::acd`]), registrations ([`register`]), the live view
//!   ([`live`]);
//! - RTP ports ([`ports`]).
//!
//! Wall-clock times in records derive from the `(Instant, epoch ms)` pair
//! the engine was created with.

mod agents_api;
mod callbacks;
mod cluster;
mod consult;
mod controls;
mod desk;
mod first_contact;
mod flow;
pub mod guard;
mod ingress;
mod ivr;
mod live;
mod outbound;
mod pbx_agents;
mod ports;
mod queue;
mod register;
pub mod settings;
mod shared_work;
mod trunks;
mod work;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use rand::{rngs::StdRng, Rng, SeedableRng};
use tracing::{info, warn};

use crate::acd::{Acd, AgentConfig};
use crate::call::Call;
use crate::cdr::{Disposition, Outcome};
use crate::config::InbandDtmf;
use crate::directory::Directory;
use crate::ids::{CallKey, LegKey};
use crate::io::{Input, Output, Reload};
use crate::ivr::program::Program;
use crate::leg::{Leg, LegEvent, MediaTuning};
use crate::media::catalog::PromptLibrary;
use crate::media::prompt::PromptSet;
use crate::sip::registrar::Registrar;
use crate::time::WallClock;
use crate::voicemail::MessageRecord;
use crate::wire::{Fired, TxKey, Wake, Wire};

pub use crate::io::{Peer, Transport};
pub use crate::leg::uac::LegTarget;
pub use crate::wire::Counters;
pub use agents_api::{AgentCommand, AgentSnapshot};
pub use controls::ControlError;
pub use desk::{DeskCall, DeskError, DeskView, OrderKind};
pub use flow::PlaceError;
pub use outbound::{CampaignCommand, CampaignCommandError};
pub use settings::EngineSettings;

pub struct Engine {
    settings: EngineSettings,
    prompts: Arc<PromptLibrary>,
    program: Arc<Program>,
    directory: Arc<Directory>,
    clock: WallClock,
    /// Transactions, timers, the outbox and random tokens.
    wire: Wire,
    calls: HashMap<CallKey, Call>,
    /// (Call-ID, our tag) of each dialog, to its call and leg.
    dialogs: HashMap<(String, String), (CallKey, LegKey)>,
    /// Each ringing customer's INVITE transaction, for its CANCEL.
    incoming: HashMap<TxKey, (CallKey, LegKey)>,
    /// Legs CANCELled as their call ended, kept until the INVITE is
    /// finished (the 487 ACKed); with the agent they rang.
    lingering: HashMap<LegKey, (CallKey, Leg, Option<String>)>,
    /// Messages being recorded, by call, until their WAV is saved.
    pending_messages: HashMap<CallKey, MessageRecord>,
    /// Agent legs CANCELled for ringing the whole ring timeout, until
    /// their offers line is written (`no_answer`, as in the queue_log).
    ring_timeouts: HashSet<LegKey>,
    registrar: Registrar,
    /// Phones sent a 401 (user, address) and when: one that asks again
    /// without answering it cannot answer any offered algorithm.
    challenged: HashMap<(String, std::net::IpAddr), Instant>,
    acd: Acd,
    agent_numbers: HashMap<String, String>,
    login_on_register: HashSet<String>,
    ports: ports::PortPool,
    next_id: u64,
    rate_tokens: f64,
    rate_updated: Instant,
    draining: bool,
    guard: guard::SourceGuard,
    /// Figures for the live view (wallboard, /metrics).
    live: crate::live::LiveStats,
    trunks: Vec<trunks::Trunk>,
    /// Which campaign number to dial when.
    scheduler: crate::campaign::Scheduler,
    /// Attempts written to the store and not yet acknowledged, by write.
    pending_dials: HashMap<u64, outbound::PendingDial>,
    /// Our BYEs ending notice calls, not answered yet, and the trunk whose
    /// channel each still holds.
    bye_channels: HashMap<crate::wire::TxKey, usize>,
    next_write: u64,
    /// Campaigns with their own (uploaded) notice prompt.
    campaign_prompts: HashMap<crate::campaign::CampaignId, Arc<PromptLibrary>>,
    /// Campaigns whose completion has been written.
    completed_written: HashSet<crate::campaign::CampaignId>,
    /// Notices heard lately, by number.
    notices: HashMap<String, crate::store::Notice>,
    /// Tasks: callbacks, messages to return, follow-ups.
    tasks: crate::tasks::TaskBook,
    /// ACD entries that are tasks, and each queued task's entry.
    work_entries: HashMap<CallKey, crate::tasks::TaskId>,
    task_entry: HashMap<crate::tasks::TaskId, CallKey>,
    /// Task attempts written and not yet acknowledged, by write.
    pending_work_dials: HashMap<u64, CallKey>,
    /// Each agent's last task call, for the outcome feature codes.
    last_task_of_agent: HashMap<String, crate::tasks::TaskId>,
    /// The last answered call of each number, for first-contact routing.
    contacts: HashMap<String, crate::store::Contact>,
    /// Several nodes share the store (docs/cluster.md); `None` for one.
    cluster: Option<cluster::ClusterState>,
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
        let mut rng = StdRng::seed_from_u64(seed);
        let settings_margin_ms = settings.tasks.at_risk_margin.as_millis() as u64;
        let registrar = Registrar::new(
            now,
            settings.registrar.clone(),
            settings.credentials.clone(),
            rng.random(),
        );
        // Setup checked the queues and agents; a failure here is a bug.
        let mut acd = Acd::new(settings.queues.clone(), settings.agents.clone())
            .unwrap_or_else(|e| panic!("ACD config passed the checks but failed: {e}"));
        let cluster = settings.cluster.as_ref().map(|_| {
            acd.share_waiting();
            cluster::ClusterState::default()
        });
        let mut tasks = crate::tasks::TaskBook::new(settings_margin_ms);
        if cluster.is_some() {
            tasks.set_id_space(cluster::task_id_space(
                settings.node.as_deref().unwrap_or(""),
            ));
        }
        let guard = guard::SourceGuard::new(now, settings.guard.clone());
        let clock = WallClock {
            base: now,
            base_ms: wall_ms,
            node: settings.node.as_deref().and_then(crate::time::NodeTag::new),
        };
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
            agent_numbers: agent_numbers(&settings.agents),
            login_on_register: settings.login_on_register.iter().cloned().collect(),
            registrar,
            challenged: HashMap::new(),
            rate_tokens: settings.max_calls_per_second as f64,
            rate_updated: now,
            ports: ports::PortPool::new(settings.port_range),
            wire: Wire::new(
                settings.timers,
                settings.sip_address.clone(),
                settings.tls_address.clone(),
                rng,
            ),
            settings,
            prompts: Arc::new(prompts),
            program,
            directory,
            pending_messages: HashMap::new(),
            ring_timeouts: HashSet::new(),
            clock,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            incoming: HashMap::new(),
            lingering: HashMap::new(),
            next_id: 1,
            draining: false,
            guard,
            trunks: Vec::new(),
            scheduler: Default::default(),
            pending_dials: HashMap::new(),
            bye_channels: HashMap::new(),
            next_write: 0,
            campaign_prompts: HashMap::new(),
            completed_written: HashSet::new(),
            notices: HashMap::new(),
            tasks,
            work_entries: HashMap::new(),
            task_entry: HashMap::new(),
            pending_work_dials: HashMap::new(),
            last_task_of_agent: HashMap::new(),
            contacts: HashMap::new(),
            cluster,
        }
        .with_trunks(now)
        .with_pbx_agents(now)
    }

    fn with_trunks(mut self, now: Instant) -> Engine {
        self.trunks = self
            .settings
            .trunks
            .iter()
            .map(|t| trunks::Trunk::new(t.clone(), now))
            .collect();
        self
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn counters(&self) -> Counters {
        self.wire.counters
    }

    /// Messages being recorded whose WAV is not saved yet.
    pub fn pending_messages(&self) -> usize {
        self.pending_messages.len()
    }

    pub fn prompts(&self) -> &Arc<PromptSet> {
        &self.prompts.set
    }

    /// The IVR's business types (`[ivr] business_types`) in the config
    /// running now.
    pub fn business_types(&self) -> &[String] {
        &self.program.business_types
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        let queued = self.wire.pop()?;
        // Counted as they leave, so every path that answers is covered.
        if let Some(code) = queued.status {
            self.live.sip_response_sent(code);
        }
        Some(queued.output)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wire.timers.next()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Sip { peer, data } => self.handle_sip(now, peer, data),
            Input::Media { call, leg, event } => self.handle_media(now, call, leg, event),
            Input::MediaFailed { call, leg } => self.media_failed(now, call, leg),
            Input::RecordingSaved {
                call,
                duration_ms,
                ended_by,
            } => self.recording_saved(call, duration_ms, ended_by),
            Input::Directory(directory) => {
                info!(entries = directory.len(), "caller directory reloaded");
                self.directory = directory;
            }
            Input::Reload(reload) => {
                if let Err(e) = self.reload(*reload) {
                    warn!(error = %e, "SIGHUP: config not reloaded; the running one stays");
                }
            }
            Input::Work(work) => self.load_work(now, *work),
            Input::Campaign(campaign) => self.add_campaign(now, *campaign),
            Input::Stored { id } => self.stored(now, id),
            Input::StoreFailed { id } => self.store_failed(now, id),
            Input::StoreTaken { id } => self.store_taken(now, id),
            Input::CallRecordingFailed { call, error } => self.call_recording_failed(call, error),
            Input::Cluster(event) => self.handle_cluster(now, event),
            Input::WorkChanged(changes) => self.work_changed(now, *changes),
            Input::WorkAdopted(work) => self.work_adopted(now, *work),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(wake) = self.wire.timers.pop_due(now) {
            match wake {
                Wake::ServerTx(key) => {
                    if let Fired::Ended { gave_up: true } = self.wire.fire_server(now, &key) {
                        self.timer_h_fired(now, &key);
                    }
                }
                Wake::ClientTx(key) => {
                    let fired = self.wire.fire_client(now, &key);
                    if let Fired::Ended { gave_up } = fired {
                        if gave_up {
                            self.wire.counters.bye_timeouts += 1;
                        }
                        self.bye_done(now, &key);
                    }
                }
                Wake::InviteClientTx(branch) => {
                    if let (Fired::Ended { gave_up: true }, Some((call, leg))) =
                        self.wire.fire_invite_client(now, &branch)
                    {
                        warn!(%leg, "timer B: the INVITE was never answered");
                        if self.lingering.contains_key(&leg) {
                            self.finish_lingering(now, call, leg, 0);
                            continue;
                        }
                        let event = LegEvent::Rejected {
                            status: 0,
                            cancelled: false,
                        };
                        self.leg_event(now, call, leg, event);
                    }
                }
                Wake::Call(call, timer) => self.call_timeout(now, call, timer),
                Wake::Registrar => self.registrar_timeout(now),
                Wake::Acd => self.acd_timeout(now),
                Wake::Campaigns => self.poll_campaigns(now),
                Wake::Tasks => self.poll_tasks(now),
                Wake::Drain => self.shutdown(now),
            }
        }
    }

    /// Applies a reloaded configuration (SIGHUP): new calls get the new
    /// IVR program, prompts and limits; calls in progress finish on what
    /// they started with. The RTP port range cannot change while running
    /// (it stays). ACD shape changes are refused and then nothing changes.
    pub fn reload(&mut self, reload: Reload) -> Result<(), crate::acd::AcdConfigError> {
        let Reload {
            mut settings,
            prompts,
            program,
            directory,
        } = reload;
        self.acd
            .reconfigure(settings.queues.clone(), settings.agents.clone())?;
        if settings.port_range != self.settings.port_range {
            warn!("the RTP port range changes only on restart");
            settings.port_range = self.settings.port_range;
        }
        if settings.pbx_agents != self.settings.pbx_agents {
            warn!("agents' trunk and extension change only on restart");
            settings.pbx_agents = self.settings.pbx_agents.clone();
        }
        self.registrar
            .reconfigure(settings.registrar.clone(), settings.credentials.clone());
        self.tasks
            .set_margin(settings.tasks.at_risk_margin.as_millis() as u64);
        self.guard.set_settings(settings.guard.clone());
        self.agent_numbers = agent_numbers(&settings.agents);
        self.login_on_register = settings.login_on_register.iter().cloned().collect();
        self.wire.timers_base = settings.timers;
        self.wire.sip_address = settings.sip_address.clone();
        self.wire.tls_address = settings.tls_address.clone();
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
        self.wire
            .timers
            .schedule(now + self.settings.drain_timeout, Wake::Drain);
        self.withdraw_queued_work(now);
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Draining and nothing left: no calls, no message waiting to be
    /// saved. The shell may stop.
    pub fn drained(&self) -> bool {
        self.draining && self.calls.is_empty() && self.pending_messages.is_empty()
    }

    /// Stop taking calls and hang up those in progress (records written).
    pub fn shutdown(&mut self, now: Instant) {
        self.draining = true;
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            let ringing = self
                .calls
                .get(&key)
                .and_then(Call::customer_leg)
                .is_some_and(|l| !l.answered());
            if ringing {
                self.reject_ringing(now, key, 503, "Service Unavailable", Outcome::Shutdown);
            } else {
                self.hangup(now, key, Outcome::Shutdown, Disposition::Answered);
            }
        }
    }

    // ---- helpers -------------------------------------------------------

    /// A fresh id; calls and legs share the sequence, so their record ids
    /// never collide.
    fn next_key(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The engine's own id for a call or leg, as in records.
    fn record_id(&self, key: u64) -> String {
        crate::call::record_id_of(&self.clock, key)
    }

    fn wall_ms(&self, at: Instant) -> u64 {
        self.clock.ms(at)
    }

    /// Media settings of a leg's session.
    fn media_tuning(&self, inband: bool) -> MediaTuning {
        MediaTuning {
            inactivity_timeout: self.settings.inactivity_timeout,
            speech_threshold_dbfs: self.settings.speech_threshold_dbfs,
            speech_frames: self.settings.speech_frames,
            inband_dtmf: inband,
        }
    }

    /// Whether inband DTMF detection runs for a leg with this negotiation.
    fn inband_for(&self, telephone_event: Option<u8>) -> bool {
        match self.settings.inband_dtmf {
            InbandDtmf::Always => true,
            InbandDtmf::Off => false,
            InbandDtmf::Auto => telephone_event.is_none(),
        }
    }
}

fn agent_numbers(agents: &[AgentConfig]) -> HashMap<String, String> {
    agents
        .iter()
        .map(|a| (a.id.clone(), a.number.clone()))
        .collect()
}
