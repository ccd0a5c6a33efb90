//! One media worker thread: many calls' sockets and sessions, one epoll
//! set, one `timerfd` armed at the earliest session deadline, and commands
//! from the engine shell through a channel plus a mio `Waker`.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use rustix::time::Timespec;
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};
use tokio::sync::mpsc;
use tracing::warn;

use crate::ids::CallKey;
use crate::media::call_media::{CallMedia, MediaCommand, SocketChange, MAX_LEGS};
use crate::media::prompt::{PromptSet, FRAME};

use super::timers::TimerHeap;
use super::{CallRecordings, Event, Flushed, LiveRtp, Recordings, SharedTotals, FLUSH_EVERY};

const WAKER: Token = Token(usize::MAX);
const TIMER: Token = Token(usize::MAX - 1);

/// The timer fires this long after the earliest deadline, and every session
/// due by then is served in the same wake-up. Thousands of calls have
/// deadlines spread over each 20 ms; waking for each one separately cost
/// more in context switches and timer re-arming (perf: ~20% of the
/// worker at 2,000 calls) than the sends themselves. This bounds the added
/// lateness to 200 µs, well inside the 2 ms budget.
const COALESCE: Duration = Duration::from_micros(200);

/// The 20 ms frame cycle cut into slots of 250 µs, for spreading the calls'
/// send phases.
const PHASE_SLOTS: usize = 80;
const PHASE_WIDTH: Duration = Duration::from_micros(250);
const _: () = assert!(PHASE_WIDTH.as_nanos() * PHASE_SLOTS as u128 == FRAME.as_nanos());

/// What the shell sends a worker.
pub enum WorkerCommand {
    /// A call's media starts on this worker.
    Open {
        id: u64,
        call: CallKey,
        prompts: Arc<PromptSet>,
    },
    /// One of the engine's commands for the call, with the leg's socket
    /// when it opens one.
    Call {
        id: u64,
        command: MediaCommand,
        socket: Option<std::net::UdpSocket>,
    },
    Close {
        id: u64,
    },
}

/// The shell's end of a worker. When the last one goes (the pool and every
/// call's handle), the worker thread ends.
pub struct WorkerLink {
    /// Taken only on drop.
    tx: Option<std_mpsc::Sender<WorkerCommand>>,
    waker: Waker,
    /// Calls opened on this worker and not yet closed.
    load: Arc<AtomicUsize>,
}

impl Drop for WorkerLink {
    fn drop(&mut self) {
        // Close the channel first, so that the woken worker sees it closed.
        self.tx.take();
        let _ = self.waker.wake();
    }
}

impl WorkerLink {
    pub fn send(&self, command: WorkerCommand) {
        let Some(tx) = &self.tx else { return };
        if tx.send(command).is_ok() {
            if let Err(e) = self.waker.wake() {
                warn!(error = %e, "cannot wake a media worker");
            }
        }
    }

    /// Sends an `Open`, counting the call at once so that a burst of new
    /// calls spreads over the workers.
    pub fn open(&self, command: WorkerCommand) {
        self.load.fetch_add(1, Ordering::Relaxed);
        self.send(command);
    }

    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }
}

/// Starts worker `index` on its own thread.
pub fn start(
    index: usize,
    realtime_priority: u8,
    events: mpsc::UnboundedSender<Event>,
    totals: SharedTotals,
    live: Arc<LiveRtp>,
    recordings: Recordings,
    call_recordings: CallRecordings,
) -> std::io::Result<Arc<WorkerLink>> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let timer = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    poll.registry()
        .register(&mut SourceFd(&timer.as_raw_fd()), TIMER, Interest::READABLE)?;
    let (tx, rx) = std_mpsc::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let link = Arc::new(WorkerLink {
        tx: Some(tx),
        waker,
        load: load.clone(),
    });
    let mut worker = Worker {
        poll,
        timer,
        armed: None,
        calls: Vec::new(),
        free: Vec::new(),
        ids: HashMap::new(),
        timers: TimerHeap::default(),
        phases: [0; PHASE_SLOTS],
        epoch: Instant::now(),
        rx,
        load,
        out: Outlet {
            events,
            recordings,
            call_recordings,
            totals,
            live,
        },
        send_buf: [0; 512],
        recv_buf: [0; 2048],
    };
    std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || {
            set_scheduling(realtime_priority);
            worker.run()
        })?;
    Ok(link)
}

struct Call {
    key: CallKey,
    /// Its send phase's slot in `Worker::phases`, once its first leg opens.
    phase: Option<usize>,
    media: CallMedia,
    /// Each leg slot's socket.
    sockets: [Option<UdpSocket>; MAX_LEGS],
    /// Counts already added to the live RTP counters, and when.
    flushed: Flushed,
    flushed_at: Instant,
}

impl Call {
    fn flush(&mut self, live: &LiveRtp) {
        for (slot, stats) in self.media.stats() {
            self.flushed.flush(live, slot, stats);
        }
        self.flushed.flush_errors(live);
    }
}

/// Where a worker's results go: the engine's events, the writer of
/// recordings, the shutdown totals.
struct Outlet {
    events: mpsc::UnboundedSender<Event>,
    recordings: Recordings,
    /// The writer of whole-call recordings.
    call_recordings: CallRecordings,
    totals: SharedTotals,
    /// The live RTP counters for /metrics.
    live: Arc<LiveRtp>,
}

struct Worker {
    poll: Poll,
    timer: OwnedFd,
    /// The deadline the timerfd is set to, if any.
    armed: Option<Instant>,
    /// Call slot `s` owns tokens `s * MAX_LEGS + l`, one per leg slot `l`.
    calls: Vec<Option<Call>>,
    free: Vec<usize>,
    ids: HashMap<u64, usize>,
    timers: TimerHeap,
    /// Calls per send-phase slot. A call's frames go out at a fixed phase
    /// of the 20 ms cycle, set by its first frame. Calls arrive in bursts
    /// (a SIP burst, a load generator's tick), and calls started together
    /// would all send at the same instant: hundreds of sends queued behind
    /// each other make the last ones late, then the thread idles. Each new
    /// call starts in the least crowded slot instead, so the work is flat
    /// over the cycle.
    phases: [u32; PHASE_SLOTS],
    /// The origin of the phase slots.
    epoch: Instant,
    rx: std_mpsc::Receiver<WorkerCommand>,
    /// The link's count of calls, lowered as calls close.
    load: Arc<AtomicUsize>,
    out: Outlet,
    send_buf: [u8; 512],
    recv_buf: [u8; 2048],
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            // Serve the sessions due by now (each reads the clock again, so
            // lateness is measured honestly). Only those: under overload,
            // chasing deadlines that fall due meanwhile would starve the
            // sockets and the commands.
            let now = Instant::now();
            while let Some(slot) = self.timers.pop_due(now) {
                self.service(slot);
            }
            let timeout = match self.timers.next_deadline() {
                // Due already (the loop above took long): look at the
                // sockets without sleeping, then serve it.
                Some(at) if at <= Instant::now() => Some(Duration::ZERO),
                Some(at) => {
                    self.arm(at);
                    None
                }
                None => None,
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    warn!(error = %e, "media worker cannot poll; it stops");
                    return;
                }
                continue;
            }
            let mut commands = false;
            for event in events.iter() {
                match event.token() {
                    WAKER => commands = true,
                    TIMER => {
                        // Clear the expiry count; the deadline is served at
                        // the top of the loop.
                        let mut n = [0u8; 8];
                        let _ = rustix::io::read(&self.timer, &mut n);
                        self.armed = None;
                    }
                    Token(t) => self.readable(t / MAX_LEGS, t % MAX_LEGS),
                }
            }
            if commands && !self.take_commands() {
                return;
            }
        }
    }

    /// Sets the timerfd to fire at `at`, unless it already does.
    fn arm(&mut self, at: Instant) {
        if self.armed == Some(at) {
            return;
        }
        // Relative to now: at most a few hundred ns pass before the call.
        // A zero value would disarm, so the least is 1 ns.
        let left = (at + COALESCE)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            },
        };
        match timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &spec) {
            Ok(_) => self.armed = Some(at),
            Err(e) => warn!(error = %e, "cannot arm the media timer"),
        }
    }

    /// Drains the command channel. False when the shell is gone.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(WorkerCommand::Open { id, call, prompts }) => self.open(id, call, prompts),
                Ok(WorkerCommand::Call {
                    id,
                    command,
                    socket,
                }) => {
                    if let Some(&slot) = self.ids.get(&id) {
                        self.command(slot, command, socket);
                        self.service(slot);
                    }
                }
                Ok(WorkerCommand::Close { id }) => {
                    if let Some(slot) = self.ids.remove(&id) {
                        self.close(slot);
                    }
                }
                Err(std_mpsc::TryRecvError::Empty) => return true,
                Err(std_mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn open(&mut self, id: u64, key: CallKey, prompts: Arc<PromptSet>) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.calls.push(None);
            self.calls.len() - 1
        });
        self.calls[slot] = Some(Call {
            key,
            phase: None,
            media: CallMedia::new(prompts),
            sockets: Default::default(),
            flushed: Flushed::default(),
            flushed_at: Instant::now(),
        });
        self.ids.insert(id, slot);
    }

    fn close(&mut self, slot: usize) {
        let Some(mut call) = self.calls[slot].take() else {
            return;
        };
        self.timers.cancel(slot);
        if let Some(phase) = call.phase {
            self.phases[phase] = self.phases[phase].saturating_sub(1);
        }
        // The call is over; a message being left is still kept.
        call.media.close(Instant::now());
        while let Some(recorded) = call.media.poll_recording() {
            self.out.recordings.save(call.key, recorded);
        }
        while let Some(chunk) = call.media.poll_record_chunk() {
            self.out.call_recordings.append(call.key, chunk);
        }
        call.flush(&self.out.live);
        if let Ok(mut t) = self.out.totals.lock() {
            t.add_call(call.media.stats().map(|(_, s)| s));
        }
        let registry = self.poll.registry();
        for socket in call.sockets.iter_mut().flatten() {
            let _ = registry.deregister(socket);
        }
        self.free.push(slot);
        self.load.fetch_sub(1, Ordering::Relaxed);
    }

    fn command(&mut self, slot: usize, command: MediaCommand, socket: Option<std::net::UdpSocket>) {
        let Some(call) = self.calls[slot].as_mut() else {
            return;
        };
        let mut now = Instant::now();
        if matches!(command, MediaCommand::OpenLeg { .. }) && call.phase.is_none() {
            // The call's first leg: delay its first frame (by under 20 ms)
            // into the least crowded phase.
            let cur = phase_slot(now.duration_since(self.epoch));
            let delay = pick_phase(&self.phases, cur);
            let phase = (cur + delay) % PHASE_SLOTS;
            self.phases[phase] += 1;
            call.phase = Some(phase);
            now += PHASE_WIDTH * delay as u32;
        }
        // A leg's stats leave with it: count them before it closes, in the
        // live counters and (below) in the shutdown totals alike.
        let mut closing = None;
        if let MediaCommand::CloseLeg { leg } = command {
            call.flush(&self.out.live);
            let slot = call.media.slot_of(leg);
            closing = call
                .media
                .stats()
                .find(|(s, _)| Some(*s) == slot)
                .map(|(_, stats)| *stats);
        }
        match call.media.handle_command(now, command) {
            Some(SocketChange::Open { slot: leg_slot, .. }) => {
                let Some(socket) = socket else {
                    warn!("a leg opened without its socket");
                    return;
                };
                let mut socket = UdpSocket::from_std(socket);
                let token = Token(slot * MAX_LEGS + leg_slot);
                if let Err(e) =
                    self.poll
                        .registry()
                        .register(&mut socket, token, Interest::READABLE)
                {
                    // The leg still sends its prompts; it cannot hear.
                    warn!(error = %e, "cannot watch an RTP socket");
                }
                call.flushed.reset(leg_slot);
                call.sockets[leg_slot] = Some(socket);
            }
            Some(SocketChange::Close { slot: leg_slot }) => {
                if let Some(mut old) = call.sockets[leg_slot].take() {
                    let _ = self.poll.registry().deregister(&mut old);
                }
                if let Ok(mut t) = self.out.totals.lock() {
                    t.legs += 1;
                    if let Some(stats) = &closing {
                        t.add(stats);
                    }
                }
            }
            None => {}
        }
    }

    /// Reads every datagram waiting on a leg's socket (mio is
    /// edge-triggered); what the bridge relays leaves at once.
    fn readable(&mut self, slot: usize, leg_slot: usize) {
        let Some(call) = self.calls.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let buf = &mut self.recv_buf;
        let out = &mut self.send_buf;
        loop {
            let Some(socket) = call.sockets[leg_slot].as_ref() else {
                return;
            };
            let Some((n, from)) = recv(socket, buf) else {
                break;
            };
            let now = Instant::now();
            call.media.handle_rtp(now, leg_slot, from, &buf[..n]);
            send_due(call, now, out);
        }
        self.service(slot);
    }

    /// Sends what is due, runs timeouts, passes events and finished
    /// recordings on, and sets the call's next deadline.
    fn service(&mut self, slot: usize) {
        let Some(call) = self.calls.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let now = Instant::now();
        send_due(call, now, &mut self.send_buf);
        call.media.handle_timeout(now);
        while let Some((leg, event)) = call.media.poll_event() {
            // A closed channel means the engine is stopping; nothing to do.
            let _ = self.out.events.send(Event::Media {
                call: call.key,
                leg,
                event,
            });
        }
        while let Some(recorded) = call.media.poll_recording() {
            self.out.recordings.save(call.key, recorded);
        }
        while let Some(chunk) = call.media.poll_record_chunk() {
            self.out.call_recordings.append(call.key, chunk);
        }
        if now.saturating_duration_since(call.flushed_at) >= FLUSH_EVERY {
            call.flushed_at = now;
            call.flush(&self.out.live);
        }
        match call.media.poll_timeout() {
            Some(wake) => self.timers.schedule(slot, wake),
            None => self.timers.cancel(slot),
        }
    }
}

/// Sends every packet the call's media has due, each from its leg's
/// socket. A full socket buffer drops the packet, as the network would.
fn send_due(call: &mut Call, now: Instant, buf: &mut [u8]) {
    while let Some((leg_slot, t)) = call.media.poll_transmit(now, buf) {
        let sent = call.sockets[leg_slot]
            .as_ref()
            .map(|s| s.send_to(&buf[..t.len], t.destination));
        if !matches!(sent, Some(Ok(_))) {
            call.flushed.pending_send_errors += 1;
        }
    }
}

/// The phase slot of a moment `since` the epoch.
fn phase_slot(since: Duration) -> usize {
    ((since.as_nanos() % FRAME.as_nanos()) / PHASE_WIDTH.as_nanos()) as usize
}

/// How many slots after `cur` the least crowded one is (the nearest among
/// equals).
fn pick_phase(counts: &[u32; PHASE_SLOTS], cur: usize) -> usize {
    (0..PHASE_SLOTS)
        .min_by_key(|&k| counts[(cur + k) % PHASE_SLOTS])
        .unwrap_or(0)
}

/// Sets this thread's scheduling: SCHED_FIFO at `realtime_priority` if
/// not 0, else normal scheduling with a 100 µs time slice. Since Linux
/// 6.12 (EEVDF), a normal task with a shorter slice gets an earlier virtual
/// deadline and may preempt a CPU-bound task (a compiler, say) as soon as
/// it wakes, instead of waiting out that task's slice (3 ms and more); its
/// share of the CPU does not change. That needs no privilege, and older
/// kernels ignore it. SCHED_FIFO needs CAP_SYS_NICE; without it, a warning
/// and normal scheduling.
fn set_scheduling(realtime_priority: u8) {
    // SAFETY: getpriority only reads this thread's nice value (who = 0).
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let normal = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        // sched_setattr sets the nice value too: keep the one we have.
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: 100_000,
        sched_deadline: 0,
        sched_period: 0,
    };
    if realtime_priority > 0 {
        let fifo = libc::sched_attr {
            sched_policy: libc::SCHED_FIFO as u32,
            sched_nice: 0,
            sched_priority: u32::from(realtime_priority),
            sched_runtime: 0,
            ..normal
        };
        match sched_setattr(&fifo) {
            Ok(()) => return,
            Err(e) => warn!(
                error = %e,
                priority = realtime_priority,
                "media.realtime_priority: cannot use SCHED_FIFO; normal scheduling"
            ),
        }
    }
    if let Err(e) = sched_setattr(&normal) {
        tracing::debug!(error = %e, "no short scheduler slice for media");
    }
}

fn sched_setattr(attr: &libc::sched_attr) -> std::io::Result<()> {
    // SAFETY: sched_setattr(pid 0 = this thread, attr, flags 0) only reads
    // `attr`, whose size field says how much.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            attr as *const libc::sched_attr,
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The next datagram waiting, or `None` once the socket is drained.
fn recv(socket: &UdpSocket, buf: &mut [u8]) -> Option<(usize, std::net::SocketAddr)> {
    loop {
        match socket.recv_from(buf) {
            Ok(r) => return Some(r),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            // ICMP port-unreachable from a vanished peer, and the like: the
            // error is consumed, so read on.
            Err(_) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_slots_cut_the_frame_cycle() {
        // 250 µs slots: 0 µs -> 0, 249 µs -> 0, 250 µs -> 1, 19,999 µs ->
        // 79, and 20 ms wraps to 0 again; 45.3 ms is 5.3 ms into a cycle,
        // slot 21 (5,300 / 250 = 21.2).
        let us = Duration::from_micros;
        assert_eq!(phase_slot(us(0)), 0);
        assert_eq!(phase_slot(us(249)), 0);
        assert_eq!(phase_slot(us(250)), 1);
        assert_eq!(phase_slot(us(19_999)), 79);
        assert_eq!(phase_slot(us(20_000)), 0);
        assert_eq!(phase_slot(us(45_300)), 21);
    }

    #[test]
    fn new_calls_go_to_the_least_crowded_phase() {
        let mut counts = [2u32; PHASE_SLOTS];
        counts[10] = 1;
        counts[70] = 1;
        // From slot 5, slot 10 is 5 slots on and slot 70 is 65: the nearer.
        assert_eq!(pick_phase(&counts, 5), 5);
        // From slot 40, slot 70 is 30 on and slot 10 is 50 (wrapping).
        assert_eq!(pick_phase(&counts, 40), 30);
        // All equal: no delay.
        assert_eq!(pick_phase(&[3; PHASE_SLOTS], 17), 0);
    }

    #[test]
    fn a_burst_of_calls_fills_every_phase_evenly() {
        // 200 calls opened at the same instant (slot 0), each counted as it
        // is placed: slots 0..79 get one each, then again, then 40 more:
        // 200 = 2 x 80 + 40, so 40 slots hold 3 and 40 hold 2.
        let mut counts = [0u32; PHASE_SLOTS];
        for _ in 0..200 {
            let k = pick_phase(&counts, 0);
            counts[k] += 1;
        }
        assert_eq!(counts.iter().filter(|&&c| c == 3).count(), 40);
        assert_eq!(counts.iter().filter(|&&c| c == 2).count(), 40);
    }
}
