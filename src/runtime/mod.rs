//! The thin tokio shell: the only place with sockets, the clock, files and
//! signals. It feeds the pure [`Engine`] and carries out its outputs.

pub mod api;
pub mod cdr_writer;
pub mod directory_watch;
pub mod media;
pub mod tcp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{info, warn};

use crate::call::directory::Directory;
use crate::engine::{CallKey, Engine, EngineSettings, Input, Output, Peer, Transport};
use crate::media::session::{MediaEvent, RecordingEnd};
use crate::setup::Setup;

use self::cdr_writer::{CdrWriter, Job};
use self::media::{MediaCommand, MediaHandle, MediaPool};

/// Everything that reaches the engine task.
pub enum Event {
    Sip {
        peer: Peer,
        data: Vec<u8>,
    },
    Media {
        call: CallKey,
        event: MediaEvent,
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
}

/// Runs the engine until SIGINT or SIGTERM.
pub async fn run(setup: Setup) -> anyhow::Result<()> {
    let Setup {
        config,
        prompts,
        program,
        directory,
    } = setup;
    let cdr_dir = config.cdr_dir();
    let messages_dir = config.messages_dir();
    let writer = CdrWriter::start(cdr_dir.clone())
        .with_context(|| format!("opening record folder {}", cdr_dir.display()))?;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();

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
        tokio::spawn(udp_loop(udp.clone(), events_tx.clone()));
        tokio::spawn(tcp::accept_loop(tcp, events_tx.clone(), (i as u64) << 48));
        udp_sockets.insert(*addr, udp);
    }
    let udp_out = udp_sockets
        .values()
        .next()
        .cloned()
        .context("no SIP socket")?;
    if let Some(api) = &config.api {
        api::serve(api.listen, api.token.clone(), events_tx.clone())
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
    let mut engine = Engine::new(
        EngineSettings::from_config(&config),
        prompts,
        program,
        directory,
        now,
        wall_ms,
        wall_ms ^ u64::from(std::process::id()),
    );
    let mut shell = Shell {
        udp: udp_out,
        tcp: HashMap::new(),
        media: HashMap::new(),
        writer: Some(writer),
        bind: config.media.bind_address,
        media_pool: MediaPool::start(
            config.media.workers,
            config.media.realtime_priority,
            events_tx.clone(),
        )
        .context("starting the media workers")?,
        messages_dir,
    };

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
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
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
        }
        shell.drain(&mut engine).await;
    }
    engine.shutdown(Instant::now());
    shell.drain(&mut engine).await;
    // Records are durable once the writer finishes; only then are the
    // calls' media released, and a message being left is saved.
    if let Some(writer) = shell.writer.take() {
        writer.finish();
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
    // Media workers add a call's totals when its handle is dropped.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let media = shell.media_pool.totals();
    let c = engine.counters;
    info!(
        calls_offered = c.calls_offered,
        calls_rejected_busy = c.calls_rejected_busy,
        datagrams_dropped = c.datagrams_dropped,
        bad_requests = c.bad_requests,
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

struct Shell {
    udp: Arc<UdpSocket>,
    tcp: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    media: HashMap<CallKey, MediaHandle>,
    /// Taken at shutdown, once everything is written.
    writer: Option<CdrWriter>,
    bind: std::net::IpAddr,
    media_pool: MediaPool,
    messages_dir: std::path::PathBuf,
}

impl Shell {
    fn handle_event(&mut self, engine: &mut Engine, event: Event) {
        let now = Instant::now();
        match event {
            Event::Sip { peer, data } => engine.handle_input(now, Input::Sip { peer, data: &data }),
            Event::Media { call, event } => engine.handle_input(now, Input::Media { call, event }),
            Event::TcpOpened { conn, writer } => {
                self.tcp.insert(conn, writer);
            }
            Event::TcpClosed { conn } => {
                self.tcp.remove(&conn);
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
            Event::Directory(d) => engine.handle_input(now, Input::Directory(d)),
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
        }
    }

    fn write(&self, job: Job) {
        match &self.writer {
            Some(w) => w.write(job),
            // Nothing ends after shutdown; never lose a record silently.
            None => match job {
                Job::Record { record, .. } => eprintln!("{}", record.to_line().trim_end()),
                Job::Line { line, .. } => eprintln!("{}", line.trim_end()),
            },
        }
    }

    fn command(&self, call: CallKey, command: MediaCommand) {
        if let Some(m) = self.media.get(&call) {
            m.send(command);
        }
    }

    async fn drain(&mut self, engine: &mut Engine) {
        while let Some(output) = engine.poll_output() {
            match output {
                Output::Transmit { peer, data } => match peer.transport {
                    Transport::Udp => {
                        if let Err(e) = self.udp.send_to(&data, peer.addr).await {
                            warn!(to = %peer.addr, error = %e, "UDP send failed");
                        }
                    }
                    Transport::Tcp => {
                        if let Some(w) = self.tcp.get(&peer.conn) {
                            let _ = w.send(data);
                        }
                    }
                },
                Output::MediaStart { call, port, params } => {
                    match self.media_pool.spawn(
                        call,
                        self.bind,
                        port,
                        params,
                        engine.prompts().clone(),
                    ) {
                        Ok(handle) => {
                            self.media.insert(call, handle);
                        }
                        Err(e) => {
                            warn!(port, error = %e, "cannot open RTP port");
                            engine.handle_input(Instant::now(), Input::MediaFailed { call });
                        }
                    }
                }
                Output::MediaPlay {
                    call,
                    prompt,
                    token,
                } => self.command(call, MediaCommand::Play { prompt, token }),
                Output::MediaStopPlayback { call } => {
                    self.command(call, MediaCommand::StopPlayback)
                }
                Output::MediaRecord {
                    call,
                    file,
                    max_length,
                    end_silence,
                } => self.command(
                    call,
                    MediaCommand::Record {
                        path: self.messages_dir.join(file),
                        max_length,
                        end_silence,
                    },
                ),
                Output::MediaStopRecording { call } => {
                    self.command(call, MediaCommand::StopRecording)
                }
                Output::MediaAddLeg { call, port, params } => match media::bind(self.bind, port) {
                    Ok(socket) => self.command(call, MediaCommand::AddLeg { socket, params }),
                    Err(e) => warn!(port, error = %e, "cannot open the agent leg's RTP port"),
                },
                Output::MediaBridge { call } => self.command(call, MediaCommand::Bridge),
                Output::MediaPlayLeg { call, prompt } => {
                    self.command(call, MediaCommand::PlayLeg(prompt))
                }
                Output::Line { file, mut line } => {
                    line.push('\n');
                    self.write(Job::Line { file, line });
                }
                Output::MediaRemoveLeg { call } => self.command(call, MediaCommand::RemoveLeg),
                Output::MessageSaved(message) => {
                    // Rare, and must be durable before shutdown completes:
                    // wait for the fsync off the async threads.
                    let dir = self.messages_dir.clone();
                    let saved = tokio::task::spawn_blocking(move || {
                        crate::messages::append_index(&dir, &message)
                    })
                    .await;
                    match saved {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => warn!(error = %e, "cannot index a recorded message"),
                        Err(e) => warn!(error = %e, "message indexing task failed"),
                    }
                }
                Output::MediaUpdate {
                    call,
                    remote,
                    sending,
                } => self.command(call, MediaCommand::Update { remote, sending }),
                Output::CallEnded { call, record } => {
                    let hold = self
                        .media
                        .remove(&call)
                        .map(|h| Box::new(h) as Box<dyn Send>);
                    self.write(Job::Record { record, hold });
                }
            }
        }
    }
}

async fn udp_loop(socket: Arc<UdpSocket>, events: mpsc::UnboundedSender<Event>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, addr)) => {
                let peer = Peer {
                    transport: Transport::Udp,
                    addr,
                    conn: 0,
                };
                let data = buf[..n].to_vec();
                if events.send(Event::Sip { peer, data }).is_err() {
                    return;
                }
            }
            // ICMP port-unreachable from a vanished peer shows up here.
            Err(_) => continue,
        }
    }
}
