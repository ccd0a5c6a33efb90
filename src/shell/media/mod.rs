//! Calls' RTP on a few media worker threads (one per core by default),
//! each a plain OS thread that owns many calls' sockets and their pure
//! [`CallMedia`] machines, and sleeps on epoll until a socket is readable,
//! a command arrives, or the earliest deadline, which a `timerfd` marks to
//! the nanosecond (tokio's timer wheel rounds to 1 ms). The workers decide
//! nothing: they feed packets to the machine and send what it returns.
//! Buffers belong to the worker; nothing is allocated per packet.
//!
//! The engine shell sees only [`MediaPool::open`] and [`MediaHandle`]:
//! dropping a handle closes the call's sockets, which the record writer
//! does only once the call's record is on disk.
//!
//! [`CallMedia`]: crate::media::call_media::CallMedia

mod timers;
mod worker;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::ids::CallKey;
use crate::media::call_media::{MediaCommand, MAX_LEGS};
use crate::media::prompt::PromptSet;
use crate::media::session::{MediaStats, LATENESS_BUCKETS};

use self::worker::{WorkerCommand, WorkerLink};
pub use super::call_recordings::CallRecordings;
pub use super::voicemail_store::Recordings;
use super::Event;

/// Media counters summed over every finished call, for the shutdown report
/// and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaTotals {
    pub calls: u64,
    /// Legs that closed before their call ended (agents, transfers).
    pub legs: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_invalid: u64,
    pub resyncs: u64,
    /// Sends late by [i*250, (i+1)*250) µs; the last bucket is everything beyond.
    pub lateness_hist: [u64; LATENESS_BUCKETS],
}

impl MediaTotals {
    /// Adds a finished call's legs.
    pub(crate) fn add_call<'a>(&mut self, legs: impl Iterator<Item = &'a MediaStats>) {
        self.calls += 1;
        for s in legs {
            self.add(s);
        }
    }

    fn add(&mut self, s: &MediaStats) {
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

/// RTP counters of every call, live, for /metrics: each worker adds what
/// its calls' sessions did about once a second and when a call ends.
#[derive(Debug, Default)]
pub struct LiveRtp {
    sent: AtomicU64,
    received: AtomicU64,
    invalid: AtomicU64,
    send_errors: AtomicU64,
}

impl LiveRtp {
    pub fn totals(&self) -> crate::live::prometheus::RtpTotals {
        crate::live::prometheus::RtpTotals {
            packets_sent: self.sent.load(Ordering::Relaxed),
            packets_received: self.received.load(Ordering::Relaxed),
            packets_invalid: self.invalid.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
        }
    }
}

/// How often a worker adds a call's counts to [`LiveRtp`].
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What one call has already added to [`LiveRtp`].
#[derive(Debug, Default)]
pub(crate) struct Flushed {
    /// Per leg slot: sent, received, invalid.
    legs: [[u64; 3]; MAX_LEGS],
    /// Send errors counted by the worker, not yet added.
    pub pending_send_errors: u64,
}

impl Flushed {
    /// Adds what the leg in `slot` did since the last flush.
    pub fn flush(&mut self, live: &LiveRtp, slot: usize, s: &MediaStats) {
        let Some(done) = self.legs.get_mut(slot) else {
            return;
        };
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

    pub fn flush_errors(&mut self, live: &LiveRtp) {
        if self.pending_send_errors > 0 {
            live.send_errors
                .fetch_add(self.pending_send_errors, Ordering::Relaxed);
            self.pending_send_errors = 0;
        }
    }

    /// A new leg in `slot` counts from zero.
    pub fn reset(&mut self, slot: usize) {
        if let Some(done) = self.legs.get_mut(slot) {
            *done = [0; 3];
        }
    }
}

/// One call's media on its worker. Dropping the handle ends the call's
/// media and closes its sockets.
pub struct MediaHandle {
    id: u64,
    worker: Arc<WorkerLink>,
}

impl MediaHandle {
    /// Passes one of the engine's commands on, with the leg's bound socket
    /// for an [`MediaCommand::OpenLeg`].
    pub fn send(&self, command: MediaCommand, socket: Option<UdpSocket>) {
        self.worker.send(WorkerCommand::Call {
            id: self.id,
            command,
            socket,
        });
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        self.worker.send(WorkerCommand::Close { id: self.id });
    }
}

/// Binds an RTP socket for a call leg.
pub fn bind(bind: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(bind, port))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The media worker threads, and where the next call goes.
pub struct MediaPool {
    workers: Vec<Arc<WorkerLink>>,
    /// Where the least-loaded search starts, so ties go round-robin.
    cursor: AtomicUsize,
    next_id: AtomicU64,
    totals: SharedTotals,
}

impl MediaPool {
    /// Starts `workers` threads (0: one per core), under SCHED_FIFO at
    /// `realtime_priority` if not 0; finished recordings go to
    /// `recordings`.
    pub fn start(
        workers: usize,
        realtime_priority: u8,
        events: mpsc::UnboundedSender<Event>,
        live: Arc<LiveRtp>,
        recordings: Recordings,
        call_recordings: CallRecordings,
    ) -> std::io::Result<Self> {
        let count = match workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let totals = SharedTotals::default();
        let workers = (0..count)
            .map(|i| {
                worker::start(
                    i,
                    realtime_priority,
                    events.clone(),
                    totals.clone(),
                    live.clone(),
                    recordings.clone(),
                    call_recordings.clone(),
                )
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(MediaPool {
            workers,
            cursor: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            totals,
        })
    }

    /// Starts a call's media on the least-loaded worker.
    pub fn open(&self, call: CallKey, prompts: Arc<PromptSet>) -> MediaHandle {
        let loads: Vec<usize> = self.workers.iter().map(|w| w.load()).collect();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let worker = self.workers[pick_worker(&loads, start)].clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        worker.open(WorkerCommand::Open { id, call, prompts });
        MediaHandle { id, worker }
    }

    /// Counters of every call whose media has ended.
    pub fn totals(&self) -> MediaTotals {
        self.totals.lock().map(|t| *t).unwrap_or_default()
    }
}

/// The worker with the fewest calls; among equals, the first at or after
/// `start` (mod the count), so that a rising `start` spreads ties
/// round-robin.
fn pick_worker(loads: &[usize], start: usize) -> usize {
    let n = loads.len();
    (0..n)
        .map(|k| (start + k) % n)
        .min_by_key(|&i| loads[i])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_least_loaded_worker() {
        // Worker 2 has 1 call, the others 3 or 5: it wins from any start.
        for start in 0..8 {
            assert_eq!(pick_worker(&[3, 5, 1, 3], start), 2);
        }
    }

    #[test]
    fn ties_go_round_robin() {
        // Equal loads: the search starts at `start % 3`, which wins.
        let picks: Vec<usize> = (0..6).map(|s| pick_worker(&[4, 4, 4], s)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        // Workers 1 and 3 tie at 2 calls: from start 2 the first of them
        // met is 3 (order 2, 3, 0, 1); from start 0 it is 1.
        assert_eq!(pick_worker(&[5, 2, 7, 2], 2), 3);
        assert_eq!(pick_worker(&[5, 2, 7, 2], 0), 1);
    }

    #[test]
    fn a_burst_of_calls_spreads_evenly() {
        // Assigning 10 calls to 3 empty workers, counting each as it is
        // placed, gives loads 4, 3, 3 (10 = 3 + 3 + 3 + 1).
        let mut loads = [0usize; 3];
        for start in 0..10 {
            let w = pick_worker(&loads, start);
            loads[w] += 1;
        }
        assert_eq!(loads, [4, 3, 3]);
    }

    #[test]
    fn one_worker_takes_everything() {
        assert_eq!(pick_worker(&[9], 41), 0);
    }

    use crate::ids::LegKey;
    use crate::media::g711::Codec;
    use crate::media::prompt::Prompt;
    use crate::media::session::{MediaEvent, MediaParams};

    /// A port free now (the OS picks it; the socket is closed again).
    fn free_port() -> u16 {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("probe port")
            .port()
    }

    fn params(remote: SocketAddr) -> MediaParams {
        MediaParams {
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            remote,
            ssrc: 0x5eed,
            initial_seq: 100,
            initial_timestamp: 8000,
            inactivity_timeout: Duration::from_secs(60),
            speech_threshold_dbfs: -35.0,
            speech_frames: 6,
            inband_dtmf: false,
        }
    }

    /// A pool of `workers` media threads whose recordings go under `dir`.
    fn test_pool(
        workers: usize,
        dir: &tempfile::TempDir,
        runtime: &tokio::runtime::Runtime,
        events_tx: mpsc::UnboundedSender<Event>,
        live: Arc<LiveRtp>,
    ) -> MediaPool {
        let recordings = Recordings::new(
            dir.path().to_path_buf(),
            events_tx.clone(),
            runtime.handle().clone(),
        );
        let call_recordings = CallRecordings::start(
            dir.path().join("calls"),
            1,
            events_tx.clone(),
            Default::default(),
        )
        .expect("writer");
        MediaPool::start(workers, 0, events_tx, live, recordings, call_recordings).expect("pool")
    }

    /// A real worker end to end: paced RTP to a socket of ours, a prompt's
    /// end reported through the event channel, and the port released once
    /// the handle is dropped.
    #[test]
    fn worker_plays_reports_and_releases_the_port() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _guard = runtime.enter();
        let (events_tx, mut events_rx) = mpsc::unbounded_channel();
        let live = Arc::new(LiveRtp::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = test_pool(2, &dir, &runtime, events_tx, live.clone());
        let phone = UdpSocket::bind("127.0.0.1:0").expect("phone");
        phone
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut prompts = PromptSet::default();
        // 3 frames of 160 samples: 60 ms of audio.
        let prompt = prompts.insert(Prompt::from_samples("p", &[4000; 480]));
        let port = free_port();
        let prompts = Arc::new(prompts);
        let handle = pool.open(CallKey(7), prompts.clone());
        let socket = bind("127.0.0.1".parse().expect("ip"), port).expect("bind");
        let leg = LegKey(8);
        handle.send(
            MediaCommand::OpenLeg {
                leg,
                port,
                params: params(phone.local_addr().expect("addr")),
                prompts,
            },
            Some(socket),
        );
        // The port is held while the call lives.
        assert!(bind("127.0.0.1".parse().expect("ip"), port).is_err());
        handle.send(
            MediaCommand::Play {
                leg,
                prompt,
                token: 9,
            },
            None,
        );

        // 10 packets in a row: sequence numbers +1 and timestamps +160
        // (one 20 ms frame at 8 kHz) each, from the call's port.
        let mut buf = [0u8; 512];
        let mut last: Option<(u16, u32)> = None;
        for _ in 0..10 {
            let (n, from) = phone.recv_from(&mut buf).expect("RTP within 2 s");
            assert_eq!(from.port(), port);
            assert_eq!(n, 12 + 160);
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            if let Some((s, t)) = last {
                assert_eq!(seq, s.wrapping_add(1));
                assert_eq!(ts, t.wrapping_add(160));
            }
            last = Some((seq, ts));
        }
        let finished = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), events_rx.recv()).await
        });
        match finished {
            Ok(Some(Event::Media {
                call: CallKey(7),
                leg: LegKey(8),
                event:
                    MediaEvent::PlaybackFinished {
                        prompt: p,
                        token: 9,
                    },
            })) => assert_eq!(p, prompt),
            _ => panic!("no PlaybackFinished for call 7, leg 8"),
        }

        drop(handle);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while bind("127.0.0.1".parse().expect("ip"), port).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} still held"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Its totals are in once it is closed: at least the 10 packets seen.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while pool.totals().calls < 1 {
            assert!(std::time::Instant::now() < deadline, "call not counted");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(pool.totals().packets_sent >= 10);
        // The live counters for /metrics got them too, at the call's end.
        assert!(live.totals().packets_sent >= 10);
    }

    /// A leg that closes before its call (an agent's) counts in the
    /// shutdown totals as it does in /metrics: both say the same.
    #[test]
    fn a_leg_closed_early_counts_in_the_totals_as_in_metrics() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _guard = runtime.enter();
        let (events_tx, _events_rx) = mpsc::unbounded_channel();
        let live = Arc::new(LiveRtp::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = test_pool(1, &dir, &runtime, events_tx, live.clone());
        let phone = UdpSocket::bind("127.0.0.1:0").expect("phone");
        let prompts = Arc::new(PromptSet::default());
        let handle = pool.open(CallKey(1), prompts.clone());
        let mut ports = Vec::new();
        for leg in [LegKey(2), LegKey(3)] {
            let port = free_port();
            let socket = bind("127.0.0.1".parse().expect("ip"), port).expect("bind");
            handle.send(
                MediaCommand::OpenLeg {
                    leg,
                    port,
                    params: params(phone.local_addr().expect("addr")),
                    prompts: prompts.clone(),
                },
                Some(socket),
            );
            ports.push(port);
        }
        // 20 packets to the agent's leg (LegKey(3)), then it closes.
        let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        packet.extend([0xffu8; 160]);
        for seq in 0..20u16 {
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            phone
                .send_to(&packet, ("127.0.0.1", ports[1]))
                .expect("send");
        }
        std::thread::sleep(Duration::from_millis(200));
        handle.send(MediaCommand::CloseLeg { leg: LegKey(3) }, None);
        std::thread::sleep(Duration::from_millis(50));
        drop(handle);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while pool.totals().calls < 1 {
            assert!(std::time::Instant::now() < deadline, "call not counted");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (totals, metrics) = (pool.totals(), live.totals());
        assert_eq!(totals.packets_received, 20, "{totals:?}");
        assert_eq!(totals.legs, 1);
        assert_eq!(metrics.packets_received, totals.packets_received);
        assert_eq!(metrics.packets_sent, totals.packets_sent);
        assert_eq!(metrics.packets_invalid, totals.packets_invalid);
    }
}
