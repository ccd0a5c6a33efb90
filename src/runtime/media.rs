//! One tokio task per call's RTP socket, driving a pure
//! [`MediaSession`]. Buffers are allocated once per call, not per packet.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant as TokioInstant};

use crate::engine::CallKey;
use crate::media::prompt::{PromptId, PromptSet};
use crate::media::session::{MediaParams, MediaSession, MediaStats, LATENESS_BUCKETS};

use super::Event;

pub enum MediaCommand {
    Play(PromptId),
    Update { remote: SocketAddr, sending: bool },
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

/// Dropping the handle ends the media task and closes its socket.
pub struct MediaHandle {
    pub commands: mpsc::UnboundedSender<MediaCommand>,
}

pub fn spawn(
    call: CallKey,
    bind: IpAddr,
    port: u16,
    params: MediaParams,
    prompts: Arc<PromptSet>,
    events: mpsc::UnboundedSender<Event>,
    totals: SharedTotals,
) -> std::io::Result<MediaHandle> {
    let std_socket = StdUdpSocket::bind(SocketAddr::new(bind, port))?;
    std_socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(std_socket)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let stats = run(call, socket, params, prompts, events, rx).await;
        if let Ok(mut t) = totals.lock() {
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
) -> MediaStats {
    let mut session = MediaSession::new(std::time::Instant::now(), prompts, params);
    let mut send_buf = [0u8; 512];
    let mut recv_buf = [0u8; 2048];
    let sleep = sleep_until(TokioInstant::now());
    tokio::pin!(sleep);
    loop {
        let now = std::time::Instant::now();
        while let Some(t) = session.poll_transmit(now, &mut send_buf) {
            // A full socket buffer drops the frame, as the network would.
            let _ = socket.try_send_to(&send_buf[..t.len], t.destination);
        }
        session.handle_timeout(now);
        while let Some(event) = session.poll_event() {
            if events.send(Event::Media { call, event }).is_err() {
                return *session.stats();
            }
        }
        sleep
            .as_mut()
            .reset(TokioInstant::from_std(session.poll_timeout()));
        tokio::select! {
            command = commands.recv() => match command {
                Some(MediaCommand::Play(p)) => session.play(p),
                Some(MediaCommand::Update { remote, sending }) => session.update_remote(remote, sending),
                None => return *session.stats(),
            },
            received = socket.recv_from(&mut recv_buf) => {
                if let Ok((n, from)) = received {
                    session.handle_rtp(std::time::Instant::now(), from, &recv_buf[..n]);
                }
            }
            _ = &mut sleep => {}
        }
    }
}
