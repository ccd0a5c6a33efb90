//! A simulated-time harness: the engine and each call's media machine,
//! both pure, stepped together from one wake-up to the next, exactly as
//! the shell's loop and media workers drive them. No sockets, no clock: a
//! 30-second call runs in microseconds.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::campaign::{Campaign, CampaignId, CampaignSpec};
use hotline::cdr::CallRecord;
use hotline::config::{Config, Language, TrunkConfig, TrunkTransport};
use hotline::engine::{Engine, EngineSettings};
use hotline::ids::{CallKey, LegKey};
use hotline::io::{Input, Output, Peer, Transport};
use hotline::media::call_media::{CallMedia, MediaCommand};
use hotline::media::catalog::PromptLibrary;
use hotline::media::prompt::{PromptId, PromptSet};
use hotline::media::session::MediaEvent;
use hotline::shell::store::sqlite::SqliteStore;
use hotline::shell::store::Store;
use hotline::sip::digest::{self, Algorithm, Qop};
use hotline::store::{StoreWrite, StoredCampaign};
use hotline::voicemail::MessageRecord;

pub const CALLER: &str = "127.0.0.1:5070";

pub struct Sent {
    pub at: Instant,
    pub peer: Peer,
    pub text: String,
}

pub struct Sim {
    pub engine: Engine,
    pub t0: Instant,
    pub now: Instant,
    pub prompts: Arc<PromptSet>,
    pub library: PromptLibrary,
    /// Each call's media machine, as a media worker holds it.
    pub media: HashMap<CallKey, CallMedia>,
    pub sent: Vec<Sent>,
    /// Prompts played to customers: (when, call, prompt).
    pub played: Vec<(Instant, CallKey, PromptId)>,
    pub records: Vec<CallRecord>,
    pub rtp_packets: u64,
    pub media_updates: Vec<(CallKey, SocketAddr, bool)>,
    /// Calls whose customer's media opened, in order.
    pub media_started: Vec<CallKey>,
    /// Recordings taken: (call, samples, why they ended).
    pub recordings: Vec<(CallKey, Vec<i16>, hotline::media::session::RecordingEnd)>,
    /// Call recordings as the shell's writer gets them: file, interleaved
    /// stereo samples, ended.
    pub call_recordings: HashMap<String, (Vec<i16>, bool)>,
    pub messages: Vec<MessageRecord>,
    pub stops: Vec<(Instant, CallKey)>,
    pub bridged: Vec<(Instant, CallKey)>,
    /// queue_log and offers lines: (file, line).
    pub lines: Vec<(String, String)>,
    /// Prompts played to other legs than the customer's (the whisper).
    pub whispers: Vec<(CallKey, PromptId)>,
    /// The store, as the shell runs it: a real SQLite file in a temporary
    /// folder, every write acknowledged at once.
    pub store: SqliteStore,
    pub store_dir: Arc<tempfile::TempDir>,
    /// Every write the engine asked for, in order.
    pub writes: Vec<StoreWrite>,
    /// What the engine asked of the store several nodes share, in order
    /// (answered by the test, as the shell's cluster thread would).
    pub cluster: Vec<hotline::cluster::ClusterRequest>,
    /// Campaign attempts the store answers "another node holds it"
    /// (`Input::StoreTaken`) instead of writing, as PostgreSQL does for an
    /// attempt another node started first.
    pub attempts_taken: bool,
    /// Claims on agents granted at once, as a store with no other node
    /// would (the requests are still kept in `cluster`).
    pub grant_claims: bool,
    /// Wall-clock ms at `t0`.
    pub wall0: u64,
}

pub fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::embedded();
    edit(&mut c);
    c
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Sim::with_store(config, dir, Instant::now(), 1_795_600_800_000)
    }

    /// A Sim on the store in `dir` (another's, to model a restart), its
    /// clock starting at `t0` and wall-clock `wall_ms`; it reads back what
    /// the store holds, as the shell does at start.
    pub fn with_store(
        config: Config,
        dir: Arc<tempfile::TempDir>,
        t0: Instant,
        wall_ms: u64,
    ) -> Sim {
        let mut store = SqliteStore::open(&dir.path().join("hotline.db")).expect("store");
        let work = store.load(wall_ms, 7).expect("load");
        let settings = EngineSettings::from_config(&config);
        let setup = hotline::shell::load::setup(config, "test config").expect("config loads");
        let engine = Engine::new(
            settings,
            setup.prompts.clone(),
            setup.program.clone(),
            setup.directory.clone(),
            t0,
            // 1_795_600_800_000: 2026-11-25T10:00:00Z
            wall_ms,
            7,
        );
        let mut sim = Sim {
            engine,
            t0,
            now: t0,
            prompts: setup.prompts.set.clone(),
            library: setup.prompts,
            media: HashMap::new(),
            sent: Vec::new(),
            played: Vec::new(),
            records: Vec::new(),
            rtp_packets: 0,
            media_updates: Vec::new(),
            media_started: Vec::new(),
            recordings: Vec::new(),
            call_recordings: HashMap::new(),
            messages: Vec::new(),
            stops: Vec::new(),
            bridged: Vec::new(),
            lines: Vec::new(),
            whispers: Vec::new(),
            store,
            store_dir: dir,
            writes: Vec::new(),
            cluster: Vec::new(),
            attempts_taken: false,
            grant_claims: false,
            wall0: wall_ms,
        };
        sim.engine.handle_input(t0, Input::Work(Box::new(work)));
        sim.drain();
        sim
    }

    /// Wall-clock ms at the current simulated time.
    pub fn wall_ms(&self) -> u64 {
        self.wall0 + (self.now - self.t0).as_millis() as u64
    }

    /// Creates a campaign as the API does: checked, written, handed over.
    pub fn create_campaign(&mut self, json: serde_json::Value) -> CampaignId {
        let spec = CampaignSpec::parse(&json, None, 480).expect("valid spec");
        self.engine
            .check_campaign(&spec, false)
            .expect("known trunk and prompt");
        let created_ms = self.wall_ms();
        let id = self
            .store
            .create_campaign(&spec, created_ms, None)
            .expect("stored");
        let stored = StoredCampaign {
            campaign: Campaign::new(id, spec, created_ms),
            prompt_audio: None,
        };
        self.engine
            .handle_input(self.now, Input::Campaign(Box::new(stored)));
        self.drain();
        id
    }

    /// A prompt's id in the default language (zh).
    pub fn prompt(&self, name: &str) -> PromptId {
        self.library
            .get(Language::Zh, name)
            .unwrap_or_else(|| panic!("no prompt {name}"))
    }

    /// Names of the prompts played, in order, for assertions.
    pub fn played_names(&self) -> Vec<String> {
        self.played
            .iter()
            .map(|(_, _, p)| {
                // "zh/digits/7" -> "digits/7": drop the language.
                let n = &self.prompts.get(*p).name;
                n.split_once('/')
                    .map(|(_, rest)| rest)
                    .unwrap_or(n)
                    .to_string()
            })
            .collect()
    }

    pub fn peer(&self) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: CALLER.parse().expect("addr"),
            conn: 0,
        }
    }

    /// Time since the start, for assertions.
    pub fn elapsed(&self, at: Instant) -> Duration {
        at - self.t0
    }

    pub fn send(&mut self, message: &str) {
        let peer = self.peer();
        self.send_bytes(peer, message.as_bytes());
    }

    pub fn send_bytes(&mut self, peer: Peer, data: &[u8]) {
        self.engine
            .handle_input(self.now, Input::Sip { peer, data });
        self.drain();
    }

    /// Calls an engine operation at the current time, then carries out
    /// what it asked for.
    pub fn act<R>(&mut self, op: impl FnOnce(&mut Engine, Instant) -> R) -> R {
        let r = op(&mut self.engine, self.now);
        self.drain();
        r
    }

    /// Legs of a call whose media is open.
    pub fn open_legs(&self, call: CallKey) -> usize {
        self.media
            .get(&call)
            .map(|m| m.stats().count())
            .unwrap_or(0)
    }

    fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit(t) => self.sent.push(Sent {
                    at: self.now,
                    peer: t.peer,
                    text: String::from_utf8_lossy(&t.data).into_owned(),
                }),
                Output::Media { call, command } => self.media_command(call, command),
                Output::MessageSaved(m) => self.messages.push(*m),
                Output::Store { id, write }
                    if self.attempts_taken
                        && matches!(write, StoreWrite::AttemptStarted { .. }) =>
                {
                    self.engine.handle_input(self.now, Input::StoreTaken { id });
                }
                Output::Store { id, write } => {
                    self.store.apply(&write, 0).expect("store write");
                    self.writes.push(write);
                    self.engine.handle_input(self.now, Input::Stored { id });
                }
                Output::Line { file, line } => self.lines.push((file, line)),
                Output::Cluster(request) => {
                    let claim = match &request {
                        hotline::cluster::ClusterRequest::Claim { claim, .. } => Some(*claim),
                        _ => None,
                    };
                    self.cluster.push(request);
                    if let Some(claim) = claim.filter(|_| self.grant_claims) {
                        let granted = hotline::cluster::ClusterEvent::Claimed {
                            claim,
                            granted: true,
                        };
                        self.engine.handle_input(self.now, Input::Cluster(granted));
                    }
                }
                Output::CallEnded {
                    call,
                    record,
                    then_send,
                } => {
                    if let Some(mut m) = self.media.remove(&call) {
                        // As a media worker does: a message being left is kept.
                        m.close(self.now);
                        self.take_recordings(call, &mut m);
                    }
                    self.records.push(*record);
                    // Sent once the record is durable (at once here).
                    for t in then_send {
                        self.sent.push(Sent {
                            at: self.now,
                            peer: t.peer,
                            text: String::from_utf8_lossy(&t.data).into_owned(),
                        });
                    }
                }
            }
        }
    }

    /// What the shell's media worker does with a command, plus a note of
    /// it for assertions.
    fn media_command(&mut self, call: CallKey, command: MediaCommand) {
        let customer = self.engine.customer_leg(call);
        match &command {
            MediaCommand::OpenLeg { leg, prompts, .. } => {
                if Some(*leg) == customer {
                    self.media_started.push(call);
                }
                self.media
                    .entry(call)
                    .or_insert_with(|| CallMedia::new(prompts.clone()));
            }
            MediaCommand::Play { leg, prompt, .. } if Some(*leg) == customer => {
                self.played.push((self.now, call, *prompt))
            }
            MediaCommand::Play { prompt, .. } => self.whispers.push((call, *prompt)),
            MediaCommand::StopPlayback { leg } if Some(*leg) == customer => {
                self.stops.push((self.now, call))
            }
            MediaCommand::Bridge { .. } => self.bridged.push((self.now, call)),
            MediaCommand::Update {
                leg,
                remote,
                sending,
            } if Some(*leg) == customer => self.media_updates.push((call, *remote, *sending)),
            _ => {}
        }
        let now = self.now;
        if let Some(m) = self.media.get_mut(&call) {
            m.handle_command(now, command);
        }
        self.flush_media(call);
    }

    /// Events and finished recordings of one call's media, into the
    /// engine, as a media worker passes them on.
    fn flush_media(&mut self, call: CallKey) {
        let mut events = Vec::new();
        let mut recorded = Vec::new();
        if let Some(m) = self.media.get_mut(&call) {
            while let Some(e) = m.poll_event() {
                events.push(e);
            }
            while let Some(r) = m.poll_recording() {
                recorded.push(r);
            }
            while let Some(chunk) = m.poll_record_chunk() {
                let entry = self.call_recordings.entry(chunk.file).or_default();
                entry.0.extend_from_slice(&chunk.samples);
                entry.1 |= chunk.last;
            }
        }
        for r in recorded {
            self.save_recording(call, r);
        }
        for (leg, event) in events {
            self.engine
                .handle_input(self.now, Input::Media { call, leg, event });
            self.drain();
        }
    }

    fn take_recordings(&mut self, call: CallKey, m: &mut CallMedia) {
        while let Some(r) = m.poll_recording() {
            self.save_recording(call, r);
        }
        while let Some(chunk) = m.poll_record_chunk() {
            let entry = self.call_recordings.entry(chunk.file).or_default();
            entry.0.extend_from_slice(&chunk.samples);
            entry.1 |= chunk.last;
        }
    }

    /// A finished recording is "written" and the engine told it is saved.
    fn save_recording(&mut self, call: CallKey, r: hotline::media::call_media::Recorded) {
        let duration_ms = r.samples.len() as u64 / 8;
        self.engine.handle_input(
            self.now,
            Input::RecordingSaved {
                call,
                duration_ms,
                ended_by: r.end,
            },
        );
        self.recordings.push((call, r.samples, r.end));
        self.drain();
    }

    /// Steps simulated time through every wake-up up to `until`.
    pub fn run_until(&mut self, until: Instant) {
        let mut buf = [0u8; 600];
        loop {
            let next = self
                .media
                .values()
                .filter_map(|m| m.poll_timeout())
                .chain(self.engine.poll_timeout())
                .min();
            match next {
                Some(at) if at <= until => self.now = self.now.max(at),
                _ => break,
            }
            let now = self.now;
            self.engine.handle_timeout(now);
            self.drain();
            let calls: Vec<CallKey> = self.media.keys().copied().collect();
            for call in calls {
                if let Some(m) = self.media.get_mut(&call) {
                    while m.poll_transmit(now, &mut buf).is_some() {
                        self.rtp_packets += 1;
                    }
                    m.handle_timeout(now);
                }
                self.flush_media(call);
            }
        }
        self.now = until.max(self.now);
    }

    /// Feeds one datagram to the customer's leg of a call, as its socket
    /// would.
    pub fn customer_rtp(&mut self, call: CallKey, from: SocketAddr, packet: &[u8]) {
        let Some(leg) = self.engine.customer_leg(call) else {
            return;
        };
        self.leg_rtp(call, leg, from, packet);
    }

    /// Feeds one datagram to a leg of a call.
    pub fn leg_rtp(&mut self, call: CallKey, leg: LegKey, from: SocketAddr, packet: &[u8]) {
        let now = self.now;
        let mut buf = [0u8; 600];
        if let Some(m) = self.media.get_mut(&call) {
            let Some(slot) = m.slot_of(leg) else {
                return;
            };
            m.handle_rtp(now, slot, from, packet);
            while m.poll_transmit(now, &mut buf).is_some() {
                self.rtp_packets += 1;
            }
        }
        self.flush_media(call);
    }

    /// Sends RTP from the caller: 20 ms packets of `pcm` at the current
    /// time, to the call's media.
    pub fn caller_audio(&mut self, call: CallKey, pcm: &[i16], pt: u8) {
        let codec = hotline::media::g711::Codec::from_payload_type(pt).expect("G.711");
        let mut buf = [0u8; 512];
        let from: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
        for (i, chunk) in pcm.chunks(160).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|&s| codec.encode(s)).collect();
            let len = rtp_rs::RtpPacketBuilder::new()
                .payload_type(pt)
                .ssrc(5)
                .sequence(rtp_rs::Seq::from(i as u16))
                .timestamp(i as u32 * 160)
                .payload(&payload)
                .build_into(&mut buf)
                .expect("rtp");
            let packet = buf[..len].to_vec();
            self.customer_rtp(call, from, &packet);
            self.run_for(Duration::from_millis(20));
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub fn shutdown(&mut self) {
        self.engine.shutdown(self.now);
        self.drain();
    }

    /// Runs until a message starting with `start` has been sent (at most
    /// `limit`), and returns when it was.
    pub fn run_until_sent(&mut self, start: &str, limit: Duration) -> Instant {
        let end = self.now + limit;
        while self.now < end {
            if let Some(s) = self.sent.iter().find(|s| s.text.starts_with(start)) {
                return s.at;
            }
            let step = self.now + Duration::from_millis(1);
            self.run_until(step);
        }
        panic!("nothing starting with {start:?} sent within {limit:?}");
    }

    /// Feeds a media event from a call's customer leg.
    pub fn media_event(&mut self, call: CallKey, event: MediaEvent) {
        let leg = self.engine.customer_leg(call).expect("a call in progress");
        self.engine
            .handle_input(self.now, Input::Media { call, leg, event });
        self.drain();
    }

    /// Messages sent whose first line starts with `start`.
    pub fn sent_starting(&self, start: &str) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.text.starts_with(start))
            .collect()
    }

    /// How long a prompt (by name, default language) plays.
    pub fn duration_of(&self, name: &str) -> Duration {
        self.prompt_duration(self.prompt(name))
    }

    pub fn prompt_duration(&self, id: PromptId) -> Duration {
        self.prompts.get(id).duration()
    }

    /// The To tag the engine put in its ringing or answer.
    pub fn to_tag(&self) -> String {
        self.to_tag_where(|t| t.starts_with("SIP/2.0 180") || t.starts_with("SIP/2.0 200"))
    }

    /// The To tag of the ringing or answer for the call `call_id`.
    pub fn to_tag_for(&self, call_id: &str) -> String {
        let needle = format!("Call-ID: {call_id}\r\n");
        self.to_tag_where(|t| {
            (t.starts_with("SIP/2.0 180") || t.starts_with("SIP/2.0 200")) && t.contains(&needle)
        })
    }

    /// The To tag of the first response starting with `start`.
    pub fn to_tag_of(&self, start: &str) -> String {
        self.to_tag_where(|t| t.starts_with(start))
    }

    fn to_tag_where(&self, pick: impl Fn(&str) -> bool) -> String {
        let resp = self
            .sent
            .iter()
            .find(|s| pick(&s.text))
            .expect("a tagged response");
        let to = resp
            .text
            .lines()
            .find(|l| l.starts_with("To:"))
            .expect("To header");
        to.split("tag=").nth(1).expect("tag").trim().to_string()
    }
}

pub const SDP_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

pub fn invite(call_id: &str, branch: &str, sdp: Option<&str>) -> String {
    let body = sdp.unwrap_or("");
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: \"Li Lei\" <sip:13800138000@127.0.0.1:5070>;tag=caller1\r\n\
To: <sip:4008@127.0.0.1:5060>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:13800138000@127.0.0.1:5070>\r\n\
{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn in_dialog(
    method: &str,
    call_id: &str,
    branch: &str,
    cseq: u32,
    to_tag: &str,
    body: Option<&str>,
) -> String {
    let body_text = body.unwrap_or("");
    let ctype = if body.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: \"Li Lei\" <sip:13800138000@127.0.0.1:5070>;tag=caller1\r\n\
To: <sip:4008@127.0.0.1:5060>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
{ctype}Content-Length: {}\r\n\r\n{body_text}",
        body_text.len()
    )
}

/// CANCEL for the INVITE sent with `branch`.
pub fn cancel(call_id: &str, branch: &str) -> String {
    format!(
        "CANCEL sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: \"Li Lei\" <sip:13800138000@127.0.0.1:5070>;tag=caller1\r\n\
To: <sip:4008@127.0.0.1:5060>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 CANCEL\r\n\
Content-Length: 0\r\n\r\n"
    )
}

// ---- agents' phones ----------------------------------------------------------

/// The agent phone's address for `agent`.
pub fn phone(agent: &str) -> hotline::engine::Peer {
    // 1001 -> 5081, 1002 -> 5082, ...
    let port = 4080 + agent.parse::<u16>().expect("a numeric agent id");
    hotline::engine::Peer {
        transport: hotline::engine::Transport::Udp,
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        conn: 0,
    }
}

/// Registers `agent` (password "secret") as a softphone would: REGISTER,
/// 401, then REGISTER with the digest response.
pub fn register(sim: &mut Sim, agent: &str) {
    register_again(sim, agent, 0);
}

/// Registration number `round` (0 first) of `agent`'s phone, as a phone
/// refreshes before its binding expires: same Call-ID, higher CSeqs.
pub fn register_again(sim: &mut Sim, agent: &str, round: u32) {
    register_via(sim, agent, round, phone(agent), "");
}

/// `agent`'s phone registers through a proxy at `from` that adds
/// `headers` (a Path, say): the REGISTER comes from the proxy's address.
pub fn register_via(sim: &mut Sim, agent: &str, round: u32, from: Peer, headers: &str) {
    let port = phone(agent).addr.port();
    let reg = |cseq: u32, auth: Option<String>| {
        format!(
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-reg{agent}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{agent}@127.0.0.1>;tag=r{agent}\r\nTo: <sip:{agent}@127.0.0.1>\r\nCall-ID: reg-{agent}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{agent}@127.0.0.1:{port}>\r\nExpires: 600\r\n{headers}{}Content-Length: 0\r\n\r\n",
            from.addr,
            auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
        )
    };
    sim.send_bytes(from, reg(2 * round + 1, None).as_bytes());
    let challenge = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.text.starts_with("SIP/2.0 401"))
        .expect("401")
        .text
        .clone();
    let header = challenge
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate:") && l.contains("MD5"))
        .expect("an MD5 challenge");
    let nonce = header
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("nonce");
    let ha1 = digest::ha1(Algorithm::Md5, agent, "hotline", "secret");
    let uri = "sip:127.0.0.1:5060";
    let response = digest::response(
        Algorithm::Md5,
        &ha1,
        nonce,
        "00000001",
        "c0ffee",
        Some(Qop::Auth),
        "REGISTER",
        uri,
    );
    let auth = format!(
        "Digest username=\"{agent}\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    );
    sim.send_bytes(from, reg(2 * round + 2, Some(auth)).as_bytes());
    let ok = sim.sent.last().expect("reply");
    assert!(ok.text.starts_with("SIP/2.0 200"), "{}", ok.text);
    assert!(sim.engine.agent_registered(agent));
}

/// A caller answered by the demo IVR (after its 2 s) presses `key` at
/// once, as RFC 4733; returns the To tag.
pub fn caller_presses(sim: &mut Sim, call_id: &str, key: char) -> String {
    sim.send(&invite(call_id, "z9hG4bK-inv", Some(SDP_OFFER)));
    sim.run_for(Duration::from_millis(2000));
    let tag = sim.to_tag_for(call_id);
    sim.send(&in_dialog("ACK", call_id, "z9hG4bK-ack", 1, &tag, None));
    let call = *sim.media_started.last().expect("media");
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: key,
            source: hotline::media::dtmf::DigitSource::Rfc4733,
        },
    );
    tag
}

/// The last INVITE the engine sent to `agent`'s phone.
pub fn invite_to(sim: &Sim, agent: &str) -> Option<String> {
    sim.sent
        .iter()
        .rev()
        .find(|s| s.peer == phone(agent) && s.text.starts_with("INVITE "))
        .map(|s| s.text.clone())
}

pub fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_default()
}

/// The agent's phone answers `invite` with `status` (and SDP on 200).
pub fn answer(sim: &mut Sim, agent: &str, invite: &str, status: u16) {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let body = if status == 200 { sdp } else { "" };
    let ctype = if status == 200 {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    let port = phone(agent).addr.port();
    let reply = format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=agent{agent}\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:{agent}@127.0.0.1:{port}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        header(invite, "Via"),
        header(invite, "From"),
        header(invite, "To"),
        header(invite, "Call-ID"),
        body.len()
    );
    sim.send_bytes(phone(agent), reply.as_bytes());
}

/// The phone at `peer` answers a request the engine sent (a BYE or a
/// CANCEL) with `status`.
pub fn respond(sim: &mut Sim, peer: Peer, request: &str, status: u16) {
    let reply = format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(request, "Via"),
        header(request, "From"),
        header(request, "To"),
        header(request, "Call-ID"),
        header(request, "CSeq"),
    );
    sim.send_bytes(peer, reply.as_bytes());
}

/// The agent's phone dials a feature code; returns the prompts played.
pub fn agent_dials(sim: &mut Sim, agent: &str, code: &str, call_id: &str) -> Vec<String> {
    let port = phone(agent).addr.port();
    let sdp = SDP_OFFER;
    let inv = format!(
        "INVITE sip:{code}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-f{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:{agent}@127.0.0.1>;tag=f{agent}\r\nTo: <sip:{code}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:{agent}@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let before = sim.played.len();
    sim.send_bytes(phone(agent), inv.as_bytes());
    sim.run_for(Duration::from_millis(2000));
    let tag = sim.to_tag_for(call_id);
    let ack = format!(
        "ACK sip:hotline@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-fa{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:{agent}@127.0.0.1>;tag=f{agent}\r\nTo: <sip:{code}@127.0.0.1>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sim.send_bytes(phone(agent), ack.as_bytes());
    sim.run_for(Duration::from_secs(6));
    let names = sim.played_names();
    names[before..].to_vec()
}

// ---- a trunk ------------------------------------------------------------------

/// The trunk's address in the sims.
pub const TRUNK: &str = "127.0.0.1:5090";

pub fn trunk_peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: TRUNK.parse().expect("addr"),
        conn: 0,
    }
}

/// The trunk at [`TRUNK`], `pstn`, with `channels` channels, `rate` calls
/// a second, and digest credentials when `auth`.
pub fn trunk(channels: u32, rate: u32, auth: bool) -> TrunkConfig {
    TrunkConfig {
        name: "pstn".into(),
        address: TRUNK.parse().expect("addr"),
        transport: TrunkTransport::Udp,
        caller_id: "4008001234".into(),
        max_channels: channels,
        max_calls_per_second: rate,
        domain: None,
        username: auth.then(|| "hotline".into()),
        password: auth.then(|| "trunk-secret".into()),
        password_env: None,
        tls_ca: None,
    }
}

/// The trunk answers `invite` with `status` (SDP on 200 and 183).
pub fn trunk_says(sim: &mut Sim, invite: &str, status: u16, extra: &str) {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let body = if status == 200 || status == 183 {
        sdp
    } else {
        ""
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let reply = format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=callee\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:callee@{TRUNK}>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        header(invite, "Via"),
        header(invite, "From"),
        header(invite, "To"),
        header(invite, "Call-ID"),
        header(invite, "CSeq"),
        body.len()
    );
    sim.send_bytes(trunk_peer(), reply.as_bytes());
}

/// Puts `agent` on break ("meeting") through the engine's agent API.
pub fn on_break(sim: &mut Sim, agent: &str) {
    sim.act(|e, now| {
        e.agent_command(
            now,
            agent,
            hotline::engine::AgentCommand::Break {
                reason: "meeting".into(),
            },
        )
    });
}

/// Makes `agent` available through the engine's agent API.
pub fn available(sim: &mut Sim, agent: &str) {
    sim.act(|e, now| e.agent_command(now, agent, hotline::engine::AgentCommand::Available));
}

/// First sendings of INVITEs to `peer` (retransmissions left out).
pub fn invites_to(sim: &Sim, peer: Peer) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    sim.sent
        .iter()
        .filter(|s| s.peer == peer && s.text.starts_with("INVITE "))
        .filter(|s| seen.insert(header(&s.text, "Call-ID").to_string()))
        .map(|s| s.text.clone())
        .collect()
}

/// Runs the clock (by wake-ups) until `cond` holds, at most `limit`.
#[track_caller]
pub fn run_until(sim: &mut Sim, limit: Duration, what: &str, mut cond: impl FnMut(&Sim) -> bool) {
    let end = sim.now + limit;
    while !cond(sim) {
        assert!(sim.now < end, "{what}: not within {limit:?}");
        let step = sim
            .engine
            .poll_timeout()
            .map_or(end, |t| t.min(end))
            .max(sim.now + Duration::from_millis(1));
        sim.run_until(step);
    }
}

/// The next INVITE to the agent's phone after the first `seen`.
#[track_caller]
pub fn next_agent_invite(sim: &mut Sim, agent: &str, seen: usize) -> String {
    run_until(
        sim,
        Duration::from_secs(120),
        "an INVITE to the agent",
        |s| invites_to(s, phone(agent)).len() > seen,
    );
    invites_to(sim, phone(agent))[seen].clone()
}
