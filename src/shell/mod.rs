//! The thin tokio shell: the only place with sockets, the clock, files and
//! signals. It feeds the pure [`Engine`] and carries out its outputs.

pub mod alarms;
pub mod api;
pub mod api_campaigns;
pub mod api_desk;
pub mod api_kb;
pub mod api_requests;
pub mod api_tasks;
pub mod call_recordings;
pub mod cdr_writer;
pub mod cluster;
pub mod directory_watch;
pub mod durable;
pub mod load;
pub mod media;
pub mod store;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod voicemail_store;
pub mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{info, warn};

use crate::directory::Directory;
use crate::engine::{Engine, EngineSettings};
use crate::ids::{CallKey, LegKey};
use crate::io::{Input, Output, Peer, Reload, Transmit, Transport};
use crate::media::call_media::MediaCommand;
use crate::media::session::{MediaEvent, RecordingEnd};
use crate::setup::Setup;

use self::alarms::Alarms;
use self::cdr_writer::{CdrWriter, Job};
use self::media::{LiveRtp, MediaHandle, MediaPool, Recordings};
use self::store::StoreThread;

/// Everything that reaches the engine task.
pub enum Event {
    Sip {
        peer: Peer,
        data: Vec<u8>,
    },
    Media {
        call: CallKey,
        leg: LegKey,
        event: MediaEvent,
    },
    /// A leg's RTP port could not be opened.
    MediaFailed {
        call: CallKey,
        leg: LegKey,
    },
    TcpOpened {
        conn: u64,
        writer: mpsc::UnboundedSender<Vec<u8>>,
    },
    TcpClosed {
        conn: u64,
    },
    RecordingSaved {
        call: CallKey,
        duration_ms: u64,
        ended_by: RecordingEnd,
    },
    Directory(Arc<Directory>),
    Api(api::ApiRequest),
    /// Messages whose calls' records are now durable.
    Transmit(Vec<Transmit>),
    /// SIGHUP's config, loaded and checked on the blocking pool.
    Reload {
        reload: Box<Reload>,
        /// The accounts it names, for sign-in (`None`: no API).
        web: Option<(Arc<web::WebAuth>, Box<web::auth::Accounts>)>,
    },
    /// SIGHUP's `transport = "tls"` trunks (sent before its `Reload`).
    TrunkTls(HashMap<SocketAddr, tls::TrunkTls>),
    /// The store made the engine's write `id` durable.
    Stored {
        id: u64,
    },
    StoreFailed {
        id: u64,
    },
    /// Another node sharing the store holds the work write `id` claimed.
    StoreTaken {
        id: u64,
    },
    /// A call's recording could not be written; it stopped.
    CallRecordingFailed {
        call: CallKey,
        error: String,
    },
    /// From the store several nodes share.
    Cluster(hotline_core::cluster::ClusterEvent),
    /// Work other nodes changed in the shared store.
    WorkChanged(Box<crate::store::WorkChanges>),
    /// Work this node took over from nodes whose lease ran out.
    WorkAdopted(Box<crate::store::StoredWork>),
}

/// Runs the engine. SIGTERM drains (new calls get 503, calls in progress
/// finish up to the drain timeout; a second SIGTERM stops at once), SIGINT
/// stops at once, SIGHUP reloads `config_path` (the embedded default has
/// nothing to reload). Every record is written before it returns.
pub async fn run(setup: Setup, config_path: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let Setup {
        config,
        prompts,
        program,
        directory,
    } = setup;
    let cdr_dir = config.cdr_dir();
    let messages_dir = config.messages_dir();
    let alarms = Arc::new(Alarms::default());
    let writer = CdrWriter::start(cdr_dir.clone(), alarms.clone())
        .with_context(|| format!("opening record folder {}", cdr_dir.display()))?;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();

    // Work that outlives a call: read back before any call is taken.
    // ([store] url: PostgreSQL, several nodes; otherwise the SQLite file.)
    let node = config.store.url.as_ref().map(|_| store::NodeIdentity {
        id: config.node.id.clone().unwrap_or_else(host_name),
        lease: config.node.lease,
    });
    let (store, mut work) = store::open_and_load(
        config.store.url.as_deref(),
        &config.store_path(),
        node.as_ref(),
        store::wall_ms(),
        config.outbound.notice_memory_days,
    )?;
    if let Some(file) = config
        .outbound
        .dnc_file
        .as_ref()
        .map(|f| config.base_dir.join(f))
    {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading outbound.dnc_file {}", file.display()))?;
        work.do_not_call.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let store =
        StoreThread::start(store, events_tx.clone()).context("starting the store thread")?;

    // TLS: the pair is read (and checked) before anything listens.
    let server_tls = match config.tls_files() {
        Some((certificate, key)) => Some(tls::ServerTls::load(&certificate, &key)?),
        None => None,
    };
    let trunk_tls = tls::trunk_tls(&config)?;
    warn_in_clear(&config);

    let mut udp_sockets: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    for (i, addr) in config.sip.listen.iter().enumerate() {
        let udp = Arc::new(
            UdpSocket::bind(addr)
                .await
                .with_context(|| format!("binding SIP UDP {addr}"))?,
        );
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding SIP TCP {addr}"))?;
        info!(%addr, "SIP listening on UDP and TCP");
        let limits = &config.sip.limits;
        tokio::spawn(udp::receive_loop(
            udp.clone(),
            events_tx.clone(),
            limits.max_message_size,
        ));
        tokio::spawn(tcp::accept_loop(
            tcp,
            events_tx.clone(),
            (i as u64) << 48,
            tcp::TcpLimits::from(limits),
            None,
        ));
        udp_sockets.insert(*addr, udp);
    }
    if let Some(server_tls) = &server_tls {
        let acceptor = server_tls.acceptor(&[])?;
        let first = config.sip.listen.len();
        for (j, addr) in config.sip_tls_listen().iter().enumerate() {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding SIP TLS {addr}"))?;
            info!(%addr, "SIP listening on TLS");
            tokio::spawn(tcp::accept_loop(
                listener,
                events_tx.clone(),
                ((first + j) as u64) << 48,
                tcp::TcpLimits::from(&config.sip.limits),
                Some(acceptor.clone()),
            ));
        }
    }
    let udp_out = udp_sockets
        .values()
        .next()
        .cloned()
        .context("no SIP socket")?;
    let sip_ip = udp_out.local_addr().context("SIP socket address")?.ip();
    let rtp = Arc::new(LiveRtp::default());
    let (live_version, version_rx) = watch::channel(0u64);
    // Sign-in and the audit log; SIGHUP refreshes the accounts.
    let web = config
        .api
        .as_ref()
        .map(|_| web::WebAuth::from_config(&config));
    if let (Some(api), Some(web)) = (&config.api, &web) {
        let live = api::LiveSources {
            rtp: rtp.clone(),
            version: version_rx,
            alarms: alarms.clone(),
        };
        let setup = api::ApiSetup {
            listen: api.listen,
            web: web.clone(),
            utc_offset_minutes: api.utc_offset.0,
            store: store.creator(),
            recordings_dir: config.recordings_dir(),
            tls: match (&server_tls, config.tls.as_ref().is_some_and(|t| t.https)) {
                (Some(server_tls), true) => Some(server_tls.acceptor(&[b"http/1.1"])?),
                _ => None,
            },
        };
        api::serve(setup, events_tx.clone(), live)
            .await
            .with_context(|| format!("binding the HTTP API on {}", api.listen))?;
    }
    if let Some(path) = config.directory_file() {
        let events = events_tx.clone();
        tokio::spawn(directory_watch::watch(
            path,
            config.directory.reload_every,
            move |d| {
                let _ = events.send(Event::Directory(d));
            },
        ));
    }
    // A phone that answers none of these never logs in (docs/acd.md).
    let algorithms: Vec<&str> = config
        .registrar
        .algorithms
        .iter()
        .map(|a| match a {
            crate::config::DigestAlgorithm::Sha256 => "SHA-256",
            crate::config::DigestAlgorithm::Md5 => "MD5",
        })
        .collect();
    info!(
        realm = %config.registrar.realm,
        "digest algorithms offered to phones: {}",
        algorithms.join(", ")
    );
    info!(
        records = %cdr_dir.display(),
        messages = %messages_dir.display(),
        prompts = prompts.set.len(),
        callers = directory.len(),
        answer_after = ?config.calls.answer_after.0,
        "hotline ready"
    );

    let now = Instant::now();
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut settings = EngineSettings::from_config(&config);
    // Several nodes: this one's name, and the thread that shares its state.
    let cluster = match &config.store.url {
        Some(url) => {
            let node = node.as_ref().map_or_else(host_name, |n| n.id.clone());
            settings.node = Some(node.clone());
            let thread =
                cluster::ClusterThread::start(url, node, config.node.lease, events_tx.clone())
                    .with_context(|| {
                        format!(
                            "joining the cluster at {}",
                            store::postgres::redact_url(url)
                        )
                    })?;
            Some(thread)
        }
        None => None,
    };
    let mut engine = Engine::new(
        settings,
        prompts,
        program,
        directory,
        now,
        wall_ms,
        wall_ms ^ u64::from(std::process::id()),
    );
    engine.handle_input(now, Input::Work(Box::new(work)));
    let recordings = Recordings::with_alarms(
        messages_dir.clone(),
        events_tx.clone(),
        tokio::runtime::Handle::current(),
        alarms.clone(),
    );
    let call_recordings = call_recordings::CallRecordings::start(
        config.recordings_dir(),
        config.recordings.retention_days,
        events_tx.clone(),
        alarms.clone(),
    )
    .context("starting the call-recording writer")?;
    let mut shell = Shell {
        udp: udp_out,
        tcp: HashMap::new(),
        media: HashMap::new(),
        writer: Some(writer),
        events: events_tx.clone(),
        bind: config.media.bind_address,
        live_version,
        media_pool: MediaPool::start(
            config.media.workers,
            config.media.realtime_priority,
            events_tx.clone(),
            rtp,
            recordings.clone(),
            call_recordings,
        )
        .context("starting the media workers")?,
        messages_dir: messages_dir.clone(),
        store: Some(store),
        trunk_tcp: HashMap::new(),
        trunk_tls,
        next_trunk_conn: TRUNK_CONNS,
        sip_ip,
        tcp_limits: tcp::TcpLimits::from(&config.sip.limits),
        pending_tasks: api_tasks::PendingTasks::default(),
        cluster,
        figures_published: None,
    };

    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let sleep = sleep_until(TokioInstant::now());
    tokio::pin!(sleep);
    loop {
        if let Some(at) = engine.poll_timeout() {
            sleep.as_mut().reset(TokioInstant::from_std(at));
        } else {
            sleep
                .as_mut()
                .reset(TokioInstant::now() + std::time::Duration::from_secs(3600));
        }
        tokio::select! {
            event = events_rx.recv() => {
                let Some(event) = event else { break };
                shell.handle_event(&mut engine, event);
                // Take whatever else is queued before polling timers again.
                while let Ok(event) = events_rx.try_recv() {
                    shell.handle_event(&mut engine, event);
                }
            }
            _ = &mut sleep => engine.handle_timeout(Instant::now()),
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: shutting down"); break; }
            _ = sigterm.recv() => {
                if engine.draining() {
                    info!("second SIGTERM: shutting down now");
                    break;
                }
                engine.drain(Instant::now());
                // Work a dead node left would wait here until this one
                // stops: leave it to the others.
                if let Some(store) = &shell.store {
                    store.stop_adopting();
                }
            }
            _ = sighup.recv() => reload(
                events_tx.clone(),
                config_path.clone(),
                server_tls.clone(),
                web.clone(),
            ),
        }
        shell.drain(&mut engine).await;
        shell.publish_live(&engine);
        shell.publish_figures(&mut engine);
        if engine.drained() {
            info!("drained: every call has ended");
            break;
        }
    }
    engine.shutdown(Instant::now());
    shell.drain(&mut engine).await;
    // The engine's last writes (attempts ended at shutdown) are durable.
    if let Some(store) = shell.store.take() {
        store.finish();
    }
    // This node's claims and waiting callers leave the shared store now,
    // rather than when its lease runs out.
    if let Some(cluster) = shell.cluster.take() {
        cluster.finish();
    }
    // Records are durable once the writer finishes; only then are the
    // calls' media released, and a message being left is saved.
    if let Some(writer) = shell.writer.take() {
        writer.finish();
    }
    // The last calls' BYEs and responses, held until their records were
    // written.
    while let Ok(event) = events_rx.try_recv() {
        shell.handle_event(&mut engine, event);
    }
    let deadline = TokioInstant::now() + std::time::Duration::from_secs(5);
    while engine.pending_messages() > 0 {
        match tokio::time::timeout_at(deadline, events_rx.recv()).await {
            Ok(Some(event)) => {
                shell.handle_event(&mut engine, event);
                shell.drain(&mut engine).await;
            }
            _ => {
                warn!(
                    pending = engine.pending_messages(),
                    "messages still being saved at exit"
                );
                break;
            }
        }
    }
    // What could not be written where it belongs is kept elsewhere.
    recordings.keep_unsaved(&std::env::temp_dir().join("hotline-unsaved-messages"));
    // Media workers add a call's totals when its handle is dropped.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let media = shell.media_pool.totals();
    let c = engine.counters();
    info!(
        calls_offered = c.calls_offered,
        calls_rejected_busy = c.calls_rejected_busy,
        datagrams_dropped = c.datagrams_dropped,
        bad_requests = c.bad_requests,
        oversized = c.oversized,
        rtp_sent = media.packets_sent,
        rtp_received = media.packets_received,
        rtp_invalid = media.packets_invalid,
        rtp_resyncs = media.resyncs,
        send_late_p50_us = media.lateness_percentile_us(50.0),
        send_late_p90_us = media.lateness_percentile_us(90.0),
        send_late_p99_us = media.lateness_percentile_us(99.0),
        send_late_p999_us = media.lateness_percentile_us(99.9),
        "stopped; all records written"
    );
    Ok(())
}

/// At start: says what is exposed in clear beyond loopback (docs/tls.md).
fn warn_in_clear(config: &crate::config::Config) {
    for warning in in_clear(config) {
        warn!("{warning}");
    }
}

/// What listens beyond loopback without TLS, one sentence each.
pub fn in_clear(config: &crate::config::Config) -> Vec<String> {
    let mut out = Vec::new();
    let https = config.tls.as_ref().is_some_and(|t| t.https);
    if let Some(api) = config.api.as_ref().filter(|a| !a.listen.ip().is_loopback()) {
        if !https {
            out.push(format!(
                "the HTTP API and desk on {} are served in clear (plain HTTP) beyond \
                 loopback: the bearer token, agents' status and callers' numbers can be \
                 read on the network; configure [tls] (docs/tls.md)",
                api.listen
            ));
        }
    }
    if config.tls.is_none() {
        for addr in config.sip.listen.iter().filter(|a| !a.ip().is_loopback()) {
            out.push(format!(
                "SIP on {addr} listens beyond loopback in clear only (UDP and TCP): \
                 phones' logins, callers' numbers and call signalling can be read on the \
                 network; configure [tls] for SIP over TLS (docs/tls.md)"
            ));
        }
    }
    out
}

/// SIGHUP: loads and checks the config file again on the blocking pool
/// (prompts are decoded there, not on the engine's task), then hands it
/// to the engine as one input with the web accounts it names (users,
/// agents' passwords, API tokens), which sign-in takes once the engine
/// has taken the config, and reads `[tls]`'s certificate and key again
/// for new connections. A config that does not load is reported and the
/// running one stays; so does the running certificate when the new pair
/// does not load.
fn reload(
    events: mpsc::UnboundedSender<Event>,
    path: Option<std::path::PathBuf>,
    server_tls: Option<tls::ServerTls>,
    web: Option<Arc<web::WebAuth>>,
) {
    let Some(path) = path else {
        info!("SIGHUP: running on the embedded default config, nothing to reload");
        return;
    };
    tokio::task::spawn_blocking(move || {
        let origin = path.display().to_string();
        let setup = load::config(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let trunk_tls = tls::trunk_tls(&c).map_err(|e| e.to_string())?;
                Ok((c, trunk_tls))
            })
            .and_then(|(c, trunk_tls)| {
                let setup = load::setup(c, &origin).map_err(|e| e.to_string())?;
                Ok((setup, trunk_tls))
            });
        match setup {
            Ok((setup, trunk_tls)) => {
                reload_tls(&setup.config, server_tls.as_ref());
                let _ = events.send(Event::TrunkTls(trunk_tls));
                let web = web.map(|w| {
                    let accounts = web::auth::Accounts::from_config(&setup.config);
                    (w, Box::new(accounts))
                });
                let reload = Reload {
                    settings: EngineSettings::from_config(&setup.config),
                    prompts: setup.prompts,
                    program: setup.program,
                    directory: setup.directory,
                };
                let _ = events.send(Event::Reload {
                    reload: Box::new(reload),
                    web,
                });
            }
            Err(e) => warn!(error = %e, "SIGHUP: config not reloaded; the running one stays"),
        }
    });
}

/// SIGHUP's `[tls]`: the pair read again for the listeners running. TLS
/// turned on or off, or moved, takes a restart.
fn reload_tls(config: &crate::config::Config, running: Option<&tls::ServerTls>) {
    match (config.tls_files(), running) {
        (Some((certificate, key)), Some(running)) => match running.reload(&certificate, &key) {
            Ok(()) => info!(
                certificate = %certificate.display(),
                "SIGHUP: TLS certificate reloaded; new connections get it"
            ),
            Err(e) => {
                warn!(error = %e, "SIGHUP: TLS certificate not reloaded; the running one stays")
            }
        },
        (Some(_), None) => {
            warn!("SIGHUP: [tls] was added; TLS listeners start only at a restart")
        }
        (None, Some(_)) => {
            warn!("SIGHUP: [tls] was removed; TLS stays on with its certificate until a restart")
        }
        (None, None) => {}
    }
}

struct Shell {
    udp: Arc<UdpSocket>,
    tcp: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    media: HashMap<CallKey, MediaHandle>,
    /// Taken at shutdown, once everything is written.
    writer: Option<CdrWriter>,
    /// Back to the engine task (messages released once records are durable).
    events: mpsc::UnboundedSender<Event>,
    bind: std::net::IpAddr,
    /// The engine's live-figures version, watched by wallboards' streams.
    live_version: watch::Sender<u64>,
    media_pool: MediaPool,
    messages_dir: std::path::PathBuf,
    /// Taken at shutdown, once the engine's last writes are queued.
    store: Option<StoreThread>,
    /// Connections we opened to TCP and TLS trunks, by transport and
    /// address (reused by every message sent there without a connection
    /// named).
    trunk_tcp: HashMap<(Transport, SocketAddr), u64>,
    /// How to reach each `transport = "tls"` trunk.
    trunk_tls: HashMap<SocketAddr, tls::TrunkTls>,
    next_trunk_conn: u64,
    /// Where outgoing TCP connections are made from.
    sip_ip: std::net::IpAddr,
    tcp_limits: tcp::TcpLimits,
    /// Tasks created through the API, answered once the store has them.
    pending_tasks: api_tasks::PendingTasks,
    /// Several nodes share state (`store.url`); taken at shutdown.
    cluster: Option<cluster::ClusterThread>,
    /// When this node's live figures were last handed to the cluster.
    figures_published: Option<Instant>,
}

/// This machine's name as a node name: up to the first dot, letters,
/// digits, `-` and `_` only (`node` when nothing is left).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    if name.is_empty() {
        "node".into()
    } else {
        name
    }
}

/// Ids of connections we open ourselves; accepted ones are numbered from
/// `listener index << 48`, far below.
const TRUNK_CONNS: u64 = 0xffff << 48;

impl Shell {
    fn handle_event(&mut self, engine: &mut Engine, event: Event) {
        let now = Instant::now();
        match event {
            Event::Sip { peer, data } => engine.handle_input(now, Input::Sip { peer, data: &data }),
            Event::Media { call, leg, event } => {
                engine.handle_input(now, Input::Media { call, leg, event })
            }
            Event::MediaFailed { call, leg } => {
                engine.handle_input(now, Input::MediaFailed { call, leg })
            }
            // The accounts change only with the config: a reload the
            // engine refuses leaves sign-in as it was too.
            Event::Reload { reload, web } => match engine.reload(*reload) {
                Ok(()) => {
                    if let Some((auth, accounts)) = web {
                        auth.set_accounts(*accounts);
                    }
                }
                Err(e) => warn!(error = %e, "SIGHUP: config not reloaded; the running one stays"),
            },
            Event::TrunkTls(trunk_tls) => self.trunk_tls = trunk_tls,
            Event::Cluster(event) => engine.handle_input(now, Input::Cluster(event)),
            Event::WorkChanged(changes) => engine.handle_input(now, Input::WorkChanged(changes)),
            Event::WorkAdopted(work) => engine.handle_input(now, Input::WorkAdopted(work)),
            Event::Stored { id } => {
                engine.handle_input(now, Input::Stored { id });
                self.pending_tasks.stored(id);
            }
            Event::StoreTaken { id } => {
                engine.handle_input(now, Input::StoreTaken { id });
                self.pending_tasks.store_failed(engine, now, id);
            }
            Event::StoreFailed { id } => {
                engine.handle_input(now, Input::StoreFailed { id });
                self.pending_tasks.store_failed(engine, now, id);
            }
            Event::TcpOpened { conn, writer } => {
                self.tcp.insert(conn, writer);
            }
            Event::TcpClosed { conn } => {
                self.tcp.remove(&conn);
                self.trunk_tcp.retain(|_, c| *c != conn);
            }
            Event::RecordingSaved {
                call,
                duration_ms,
                ended_by,
            } => engine.handle_input(
                now,
                Input::RecordingSaved {
                    call,
                    duration_ms,
                    ended_by,
                },
            ),
            Event::CallRecordingFailed { call, error } => {
                engine.handle_input(now, Input::CallRecordingFailed { call, error })
            }
            Event::Directory(d) => engine.handle_input(now, Input::Directory(d)),
            Event::Transmit(messages) => {
                for t in messages {
                    self.transmit_now(t.peer, t.data);
                }
            }
            Event::Api(api::ApiRequest::Agents(reply)) => {
                let _ = reply.send(engine.agent_snapshots());
            }
            Event::Api(api::ApiRequest::Command {
                agent,
                command,
                reply,
            }) => {
                let _ = reply.send(engine.agent_command(now, &agent, command));
            }
            Event::Api(api::ApiRequest::Status {
                detail,
                all_nodes,
                reply,
            }) => {
                let mut snapshot = engine.live_status(now, detail);
                if let (true, Some(cluster)) = (all_nodes, &self.cluster) {
                    snapshot.add_nodes(&cluster.figures.others());
                }
                let _ = reply.send(snapshot);
            }
            Event::Api(api::ApiRequest::Campaign(request)) => {
                campaign_request(engine, now, request)
            }
            Event::Api(api::ApiRequest::Task(request)) => {
                api_tasks::handle(engine, now, request, &mut self.pending_tasks)
            }
            Event::Api(api::ApiRequest::Desk(request)) => {
                api_desk::handle(engine, now, request, &mut self.pending_tasks)
            }
            Event::Api(api::ApiRequest::BusinessTypes(reply)) => {
                let _ = reply.send(engine.business_types().to_vec());
            }
            Event::Api(api::ApiRequest::CallControl {
                call_id,
                action,
                agent,
                reply,
            }) => {
                let ours = agent.is_none_or(|a| {
                    engine
                        .desk(now, &a)
                        .and_then(|d| d.call)
                        .is_some_and(|c| c.call_id == call_id)
                });
                let _ = reply.send(if ours {
                    call_control(engine, now, &call_id, action)
                } else {
                    Err((403, format!("{call_id} is not the call at your phone")))
                });
            }
        }
    }

    /// Several nodes: this node's own figures, for the others' wallboards,
    /// at most once per `cluster::FIGURES`.
    fn publish_figures(&mut self, engine: &mut Engine) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if self
            .figures_published
            .is_some_and(|at| at.elapsed() < cluster::FIGURES)
        {
            return;
        }
        self.figures_published = Some(Instant::now());
        let snapshot = engine.live_status(Instant::now(), false);
        cluster
            .figures
            .publish(&hotline_core::live::nodes::NodeFigures::of(
                &cluster.node,
                &snapshot,
            ));
    }

    /// Wakes the wallboards' streams when the live figures changed.
    fn publish_live(&self, engine: &Engine) {
        let version = engine.live_version();
        self.live_version.send_if_modified(|v| {
            let changed = *v != version;
            *v = version;
            changed
        });
    }

    fn write(&self, job: Job) {
        match &self.writer {
            Some(w) => w.write(job),
            // Nothing ends after shutdown; never lose a record silently.
            None => match job {
                Job::Record { record, .. } => eprintln!("{}", record.to_line().trim_end()),
                Job::Line { line, .. } => eprintln!("{}", line.trim_end()),
                Job::Hold(hold) => drop(hold),
            },
        }
    }

    /// A command for a call's media. Opening a leg binds its port here,
    /// so a port in use fails at once (and the engine hears of it).
    fn media_command(&mut self, call: CallKey, command: MediaCommand) {
        let socket = match &command {
            MediaCommand::OpenLeg { leg, port, .. } => match media::bind(self.bind, *port) {
                Ok(socket) => Some(socket),
                Err(e) => {
                    warn!(port, error = %e, "cannot open RTP port");
                    let _ = self.events.send(Event::MediaFailed { call, leg: *leg });
                    return;
                }
            },
            _ => None,
        };
        if let MediaCommand::OpenLeg { prompts, .. } = &command {
            if !self.media.contains_key(&call) {
                let handle = self.media_pool.open(call, prompts.clone());
                self.media.insert(call, handle);
            }
        }
        if let Some(m) = self.media.get(&call) {
            m.send(command, socket);
        }
    }

    /// From a synchronous context: a full socket buffer drops the message,
    /// as the network may (SIP retransmits).
    fn transmit_now(&mut self, peer: Peer, data: Vec<u8>) {
        match peer.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&data, peer.addr) {
                    warn!(to = %peer.addr, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp | Transport::Tls => {
                // No connection named: a trunk's address, ours to open.
                let conn = if peer.conn == 0 {
                    match self.trunk_conn(peer.transport, peer.addr) {
                        Some(conn) => conn,
                        None => return,
                    }
                } else {
                    peer.conn
                };
                if let Some(w) = self.tcp.get(&conn) {
                    let _ = w.send(data);
                }
            }
        }
    }

    /// The connection to `addr` we opened, or a new one: its writer takes
    /// messages at once and sends them once connected. None for TLS to an
    /// address no `transport = "tls"` trunk has (nothing to verify it by).
    fn trunk_conn(&mut self, transport: Transport, addr: SocketAddr) -> Option<u64> {
        if let Some(&conn) = self.trunk_tcp.get(&(transport, addr)) {
            if self.tcp.contains_key(&conn) {
                return Some(conn);
            }
        }
        let tls = match transport {
            Transport::Tls => match self.trunk_tls.get(&addr) {
                Some(tls) => Some(tls.clone()),
                None => {
                    warn!(to = %addr, "no TLS trunk at this address; message not sent");
                    return None;
                }
            },
            _ => None,
        };
        self.next_trunk_conn += 1;
        let conn = self.next_trunk_conn;
        let (writer, writer_rx) = mpsc::unbounded_channel();
        self.tcp.insert(conn, writer);
        self.trunk_tcp.insert((transport, addr), conn);
        tokio::spawn(tcp::connect(
            self.sip_ip,
            addr,
            conn,
            self.events.clone(),
            writer_rx,
            self.tcp_limits,
            tls,
        ));
        Some(conn)
    }

    /// From the engine loop: UDP waits for room in the socket buffer.
    async fn transmit(&mut self, peer: Peer, data: Vec<u8>) {
        if peer.transport != Transport::Udp {
            return self.transmit_now(peer, data);
        }
        if let Err(e) = self.udp.send_to(&data, peer.addr).await {
            warn!(to = %peer.addr, error = %e, "UDP send failed");
        }
    }

    /// Carries out the engine's outputs. A call's last messages (the 200
    /// to the caller's BYE, or our BYE) come with its record and leave
    /// once it is on disk: whoever sees the call end can count on the
    /// record surviving a crash.
    async fn drain(&mut self, engine: &mut Engine) {
        while let Some(output) = engine.poll_output() {
            self.carry_out(output).await;
        }
    }

    async fn carry_out(&mut self, output: Output) {
        match output {
            Output::Transmit(t) => self.transmit(t.peer, t.data).await,
            Output::Media { call, command } => self.media_command(call, command),
            Output::Store { id, write } => {
                if let Some(store) = &self.store {
                    store.write(id, write);
                }
            }
            Output::Cluster(request) => {
                if let Some(cluster) = &self.cluster {
                    cluster.send(request);
                }
            }
            Output::Line { file, mut line } => {
                line.push('\n');
                self.write(Job::Line { file, line });
            }
            Output::MessageSaved(message) => {
                // Rare, and must be durable before shutdown completes:
                // wait for the fsync off the async threads.
                let dir = self.messages_dir.clone();
                let saved = tokio::task::spawn_blocking(move || {
                    voicemail_store::append_index(&dir, &message)
                })
                .await;
                match saved {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "cannot index a recorded message"),
                    Err(e) => warn!(error = %e, "message indexing task failed"),
                }
            }
            Output::CallEnded {
                call,
                record,
                then_send,
            } => {
                let hold = self
                    .media
                    .remove(&call)
                    .map(|h| Box::new(h) as Box<dyn Send>);
                self.write(Job::Record { record, hold });
                if !then_send.is_empty() {
                    self.write(Job::Hold(Box::new(SendWhenDurable {
                        events: self.events.clone(),
                        messages: then_send,
                    })));
                }
            }
        }
    }
}

/// Messages held back until the records written before them are on disk;
/// the record writer drops this after its fsync, which sends them on.
struct SendWhenDurable {
    events: mpsc::UnboundedSender<Event>,
    messages: Vec<Transmit>,
}

impl Drop for SendWhenDurable {
    fn drop(&mut self) {
        let messages = std::mem::take(&mut self.messages);
        let _ = self.events.send(Event::Transmit(messages));
    }
}

/// The API's campaign requests, answered by the engine.
fn campaign_request(engine: &mut Engine, now: Instant, request: api_campaigns::CampaignRequest) {
    use api_campaigns::CampaignRequest as R;
    match request {
        R::Check {
            spec,
            uploaded_prompt,
            reply,
        } => {
            let _ = reply.send(engine.check_campaign(&spec, uploaded_prompt));
        }
        R::Add { stored, reply } => {
            engine.handle_input(now, Input::Campaign(stored));
            let _ = reply.send(());
        }
        R::List(reply) => {
            let _ = reply.send(engine.campaigns().map(|c| c.to_json(false)).collect());
        }
        R::Get { id, reply } => {
            let _ = reply.send(engine.campaign(id).map(|c| c.to_json(true)));
        }
        R::Command { id, command, reply } => {
            let result = engine
                .campaign_command(now, id, command)
                .map(|s| s.as_str())
                .map_err(|e| e.to_string());
            let _ = reply.send(result);
        }
        R::DoNotCall { number, reply } => {
            engine.add_do_not_call(now, &number);
            let _ = reply.send(());
        }
    }
}

/// Hold, resume or transfer a call, for the API: an error is (HTTP
/// status, message).
fn call_control(
    engine: &mut Engine,
    now: Instant,
    call_id: &str,
    action: api::CallAction,
) -> Result<(), (u16, String)> {
    let call = engine
        .call_by_id(call_id)
        .ok_or_else(|| (404, format!("no call {call_id} in progress")))?;
    let result = match action {
        api::CallAction::Hold => engine.hold(now, call),
        api::CallAction::Resume => engine.resume(now, call),
        api::CallAction::Transfer { to } => engine.transfer(now, call, &to, None),
    };
    result.map_err(|e| match e {
        // The request named nothing that exists: the caller's mistake.
        crate::engine::ControlError::UnknownTarget(_) => (400, format!("to: {e}")),
        _ => (409, e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::in_clear;
    use crate::config::{Config, TlsConfig};

    #[test]
    fn what_listens_beyond_loopback_in_clear_is_named() {
        let mut c = Config::embedded();
        assert!(in_clear(&c).is_empty(), "the demo is on loopback");
        c.sip.listen = vec!["192.0.2.7:5060".parse().expect("addr")];
        if let Some(api) = c.api.as_mut() {
            api.listen = "0.0.0.0:8088".parse().expect("addr");
        }
        let said = in_clear(&c);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("the HTTP API and desk on 0.0.0.0:8088"));
        assert!(said[1].starts_with("SIP on 192.0.2.7:5060 listens"));
        c.tls = Some(TlsConfig {
            certificate: "c.pem".into(),
            key: "k.pem".into(),
            sip_listen: None,
            https: true,
        });
        assert!(in_clear(&c).is_empty());
        // TLS for SIP only: the API is still in clear.
        if let Some(tls) = c.tls.as_mut() {
            tls.https = false;
        }
        assert_eq!(in_clear(&c).len(), 1);
    }
}
