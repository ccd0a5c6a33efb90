//! One tokio task per call's RTP socket, driving a pure
//! [`MediaSession`]. Buffers are allocated once per call, not per packet.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant as TokioInstant};

use crate::engine::CallKey;
use crate::media::prompt::{PromptId, PromptSet};
use crate::media::session::{
    MediaEvent, MediaParams, MediaSession, MediaStats, RecordingEnd, LATENESS_BUCKETS,
};
use crate::stats::prometheus::RtpTotals;

use super::Event;

pub enum MediaCommand {
    Play {
        prompt: PromptId,
        token: u32,
    },
    StopPlayback,
    Update {
        remote: SocketAddr,
        sending: bool,
    },
    /// Record the caller into this WAV file.
    Record {
        path: PathBuf,
        max_length: Duration,
        end_silence: Duration,
    },
    StopRecording,
    /// The leg to an agent: its own socket and session in this task.
    AddLeg {
        socket: UdpSocket,
        params: MediaParams,
    },
    /// Play a prompt on the agent leg (the whisper).
    PlayLeg(PromptId),
    /// Relay audio and telephone-events between the two legs.
    Bridge,
    RemoveLeg,
}

/// Media counters summed over every finished call, for the shutdown report
/// and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaTotals {
    pub calls: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_invalid: u64,
    pub resyncs: u64,
    /// Sends late by [i*250, (i+1)*250) µs; the last bucket is everything beyond.
    pub lateness_hist: [u64; LATENESS_BUCKETS],
}

impl MediaTotals {
    fn add(&mut self, s: &MediaStats) {
        self.calls += 1;
        self.packets_sent += s.packets_sent;
        self.packets_received += s.packets_received;
        self.packets_invalid += s.packets_invalid;
        self.resyncs += s.resyncs as u64;
        for (t, n) in self.lateness_hist.iter_mut().zip(s.lateness_hist) {
            *t += n as u64;
        }
    }

    /// The send-lateness percentile `p` (0..=100), in µs (bucket upper edge).
    pub fn lateness_percentile_us(&self, p: f64) -> u64 {
        let total: u64 = self.lateness_hist.iter().sum();
        if total == 0 {
            return 0;
        }
        let target = (total as f64 * p / 100.0).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.lateness_hist.iter().enumerate() {
            seen += n;
            if seen >= target {
                return (i as u64 + 1) * 250;
            }
        }
        LATENESS_BUCKETS as u64 * 250
    }
}

pub type SharedTotals = Arc<Mutex<MediaTotals>>;

/// Where a media task adds its counts: the totals for the shutdown report
/// (at its end) and the live RTP counters (as it goes).
#[derive(Clone)]
pub struct MediaCounters {
    pub totals: SharedTotals,
    pub live: Arc<LiveRtp>,
}

/// RTP counters of every call, live, for /metrics: each media task adds
/// what its sessions did about once a second and when it ends.
#[derive(Debug, Default)]
pub struct LiveRtp {
    sent: AtomicU64,
    received: AtomicU64,
    invalid: AtomicU64,
    send_errors: AtomicU64,
}

impl LiveRtp {
    pub fn totals(&self) -> RtpTotals {
        RtpTotals {
            packets_sent: self.sent.load(Ordering::Relaxed),
            packets_received: self.received.load(Ordering::Relaxed),
            packets_invalid: self.invalid.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
        }
    }
}

/// How often a media task adds its counts to [`LiveRtp`].
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What one media task has already added to [`LiveRtp`].
#[derive(Debug, Default)]
struct Flushed {
    /// Per session (the caller's, the agent leg's): sent, received, invalid.
    caller: [u64; 3],
    leg: [u64; 3],
    /// Send errors counted by the task, not yet added.
    pending_send_errors: u64,
}

impl Flushed {
    /// Adds what `session` (and `leg`) did since the last flush.
    fn flush(&mut self, live: &LiveRtp, session: &MediaSession, leg: Option<&MediaSession>) {
        fn add(live: &LiveRtp, done: &mut [u64; 3], s: &MediaStats) {
            let now = [s.packets_sent, s.packets_received, s.packets_invalid];
            for ((counter, done), now) in [&live.sent, &live.received, &live.invalid]
                .into_iter()
                .zip(done.iter_mut())
                .zip(now)
            {
                if now > *done {
                    counter.fetch_add(now - *done, Ordering::Relaxed);
                    *done = now;
                }
            }
        }
        add(live, &mut self.caller, session.stats());
        if let Some(leg) = leg {
            add(live, &mut self.leg, leg.stats());
        }
        if self.pending_send_errors > 0 {
            live.send_errors
                .fetch_add(self.pending_send_errors, Ordering::Relaxed);
            self.pending_send_errors = 0;
        }
    }
}

/// Dropping the handle ends the media task and closes its socket.
pub struct MediaHandle {
    pub commands: mpsc::UnboundedSender<MediaCommand>,
}

/// Binds an RTP socket for a call leg.
pub fn bind(bind: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let std_socket = StdUdpSocket::bind(SocketAddr::new(bind, port))?;
    std_socket.set_nonblocking(true)?;
    UdpSocket::from_std(std_socket)
}

/// Receives on the agent leg's socket, or never when there is none.
async fn recv_leg(
    leg: &Option<(UdpSocket, MediaSession)>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match leg {
        Some((socket, _)) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

pub fn spawn(
    call: CallKey,
    bind: IpAddr,
    port: u16,
    params: MediaParams,
    prompts: Arc<PromptSet>,
    events: mpsc::UnboundedSender<Event>,
    counters: MediaCounters,
) -> std::io::Result<MediaHandle> {
    let socket = self::bind(bind, port)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let stats = run(call, socket, params, prompts, events, rx, counters.live).await;
        if let Ok(mut t) = counters.totals.lock() {
            t.add(&stats);
        }
    });
    Ok(MediaHandle { commands: tx })
}

async fn run(
    call: CallKey,
    socket: UdpSocket,
    params: MediaParams,
    prompts: Arc<PromptSet>,
    events: mpsc::UnboundedSender<Event>,
    mut commands: mpsc::UnboundedReceiver<MediaCommand>,
    live: Arc<LiveRtp>,
) -> MediaStats {
    let mut session = MediaSession::new(std::time::Instant::now(), prompts, params);
    let mut flushed = Flushed::default();
    let mut next_flush = std::time::Instant::now() + FLUSH_EVERY;
    let mut send_buf = [0u8; 512];
    let mut recv_buf = [0u8; 2048];
    let mut recording_path: Option<PathBuf> = None;
    let mut leg: Option<(UdpSocket, MediaSession)> = None;
    // Every way out of the loop goes through here, so no count is lost.
    macro_rules! finish {
        () => {{
            flushed.flush(&live, &session, leg.as_ref().map(|(_, l)| l));
            return *session.stats();
        }};
    }
    let mut leg_buf = [0u8; 2048];
    let sleep = sleep_until(TokioInstant::now());
    tokio::pin!(sleep);
    loop {
        let now = std::time::Instant::now();
        while let Some(t) = session.poll_transmit(now, &mut send_buf) {
            // A full socket buffer drops the frame, as the network would.
            if socket
                .try_send_to(&send_buf[..t.len], t.destination)
                .is_err()
            {
                flushed.pending_send_errors += 1;
            }
        }
        if let Some((leg_socket, leg_session)) = leg.as_mut() {
            while let Some(t) = leg_session.poll_transmit(now, &mut send_buf) {
                if leg_socket
                    .try_send_to(&send_buf[..t.len], t.destination)
                    .is_err()
                {
                    flushed.pending_send_errors += 1;
                }
            }
            leg_session.handle_timeout(now);
            // The agent leg's own events (its keys, its silence) do not
            // drive the caller's IVR.
            while leg_session.poll_event().is_some() {}
        }
        session.handle_timeout(now);
        while let Some(event) = session.poll_event() {
            if let MediaEvent::RecordingFinished(_) = event {
                save_recording(call, &mut session, recording_path.take(), &events);
            }
            if events.send(Event::Media { call, event }).is_err() {
                finish!();
            }
        }
        if now >= next_flush {
            flushed.flush(&live, &session, leg.as_ref().map(|(_, l)| l));
            next_flush = now + FLUSH_EVERY;
        }
        let wake = match &leg {
            Some((_, l)) => session.poll_timeout().min(l.poll_timeout()),
            None => session.poll_timeout(),
        };
        sleep.as_mut().reset(TokioInstant::from_std(wake));
        tokio::select! {
            command = commands.recv() => match command {
                Some(MediaCommand::Play { prompt, token }) => session.play(prompt, token),
                Some(MediaCommand::StopPlayback) => session.stop(),
                Some(MediaCommand::Update { remote, sending }) => session.update_remote(remote, sending),
                Some(MediaCommand::Record { path, max_length, end_silence }) => {
                    recording_path = Some(path);
                    session.start_recording(std::time::Instant::now(), max_length, end_silence);
                }
                Some(MediaCommand::StopRecording) => session.stop_recording(RecordingEnd::Pound),
                Some(MediaCommand::AddLeg { socket, params }) => {
                    // A new leg's counts start from zero.
                    flushed.flush(&live, &session, leg.as_ref().map(|(_, l)| l));
                    flushed.leg = [0; 3];
                    let leg_session = MediaSession::new(std::time::Instant::now(), session.prompts().clone(), params);
                    leg = Some((socket, leg_session));
                }
                Some(MediaCommand::PlayLeg(prompt)) => {
                    if let Some((_, l)) = leg.as_mut() {
                        l.play(prompt, 0);
                    }
                }
                Some(MediaCommand::Bridge) => {
                    let now = std::time::Instant::now();
                    session.set_bridged(now, true);
                    if let Some((_, l)) = leg.as_mut() {
                        l.set_bridged(now, true);
                    }
                }
                Some(MediaCommand::RemoveLeg) => {
                    session.set_bridged(std::time::Instant::now(), false);
                    flushed.flush(&live, &session, leg.as_ref().map(|(_, l)| l));
                    flushed.leg = [0; 3];
                    leg = None;
                }
                None => {
                    // The call is over; a message being left is still kept.
                    session.stop_recording(RecordingEnd::Hangup);
                    save_recording(call, &mut session, recording_path.take(), &events);
                    finish!();
                }
            },
            received = socket.recv_from(&mut recv_buf) => {
                if let Ok((n, from)) = received {
                    session.handle_rtp(std::time::Instant::now(), from, &recv_buf[..n]);
                    if let Some((leg_socket, leg_session)) = leg.as_mut() {
                        if !relay(&session, leg_session, leg_socket, &mut send_buf) {
                            flushed.pending_send_errors += 1;
                        }
                    }
                }
            }
            received = recv_leg(&leg, &mut leg_buf) => {
                if let (Ok((n, from)), Some((_, leg_session))) = (received, leg.as_mut()) {
                    leg_session.handle_rtp(std::time::Instant::now(), from, &leg_buf[..n]);
                    if !relay(leg_session, &mut session, &socket, &mut send_buf) {
                        flushed.pending_send_errors += 1;
                    }
                }
            }
            _ = &mut sleep => {}
        }
    }
}

/// Relays what `from` just received to `to` (audio transcoded as needed,
/// telephone-events passed through); `false` when the send failed.
fn relay(from: &MediaSession, to: &mut MediaSession, socket: &UdpSocket, buf: &mut [u8]) -> bool {
    let sent = match (from.last_audio(), from.last_event()) {
        (Some(pcm), _) => to.relay_audio(pcm, buf),
        (None, Some((payload, ts))) => to.relay_event(payload, ts, buf),
        (None, None) => None,
    };
    match sent {
        Some(t) => socket.try_send_to(&buf[..t.len], t.destination).is_ok(),
        None => true,
    }
}

/// Writes a finished recording to its WAV off the media task, then tells
/// the engine it is saved.
fn save_recording(
    call: CallKey,
    session: &mut MediaSession,
    path: Option<PathBuf>,
    events: &mpsc::UnboundedSender<Event>,
) {
    let (Some(path), Some((samples, ended_by))) = (path, session.take_recording()) else {
        return;
    };
    let events = events.clone();
    tokio::task::spawn_blocking(move || match crate::messages::write_wav(&path, &samples) {
        Ok(()) => {
            let _ = events.send(Event::RecordingSaved {
                call,
                duration_ms: samples.len() as u64 / 8,
                ended_by,
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot save a recorded message"),
    });
}
