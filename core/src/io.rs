//! What passes between the engine and the shell: [`Input`]s the shell
//! feeds in with `now`, and [`Output`]s it carries out. Nothing else
//! crosses; the shell never looks inside a message the engine built.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::cdr::CallRecord;
use crate::directory::Directory;
use crate::ids::{CallKey, LegKey};
use crate::ivr::program::Program;
use crate::media::call_media::MediaCommand;
use crate::media::catalog::PromptLibrary;
use crate::media::session::{MediaEvent, RecordingEnd};
use crate::store::{StoreWrite, StoredCampaign, StoredWork};
use crate::voicemail::MessageRecord;

/// The SIP transport a message came or goes over (kept with SIP; named
/// here too, since every `Peer` has one).
pub use crate::sip::transport::Transport;

/// Where a message came from or goes to. `conn` names the TCP or TLS
/// connection (0 for UDP, and for a trunk's connection not yet opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub conn: u64,
}

/// A SIP message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub enum Input<'a> {
    /// A SIP datagram, or one message framed from a TCP stream.
    Sip { peer: Peer, data: &'a [u8] },
    /// Something happened on a leg's media.
    Media {
        call: CallKey,
        leg: LegKey,
        event: MediaEvent,
    },
    /// The shell could not open a leg's RTP port.
    MediaFailed { call: CallKey, leg: LegKey },
    /// A recording asked for by [`MediaCommand::Record`] is on disk.
    RecordingSaved {
        call: CallKey,
        duration_ms: u64,
        ended_by: RecordingEnd,
    },
    /// The caller directory was reloaded.
    Directory(Arc<Directory>),
    /// SIGHUP: a config loaded and checked off the engine's task.
    Reload(Box<Reload>),
    /// At start: the work the store holds (campaigns, do-not-call list,
    /// notices heard lately).
    Work(Box<StoredWork>),
    /// What other nodes sharing the store changed (several nodes).
    WorkChanged(Box<crate::store::WorkChanges>),
    /// Work this node took over from nodes whose lease ran out (several
    /// nodes): run from now on, as if read back at a restart (an attempt
    /// it finds on the line ends as interrupted and is retried).
    WorkAdopted(Box<StoredWork>),
    /// A campaign the store has just made durable (created by the API).
    Campaign(Box<StoredCampaign>),
    /// The store has made write `id` durable ([`Output::Store`]).
    Stored { id: u64 },
    /// The store could not make write `id` durable.
    StoreFailed { id: u64 },
    /// Write `id` claimed work another node sharing the store holds (an
    /// attempt it started first): this node does not do it, and writes
    /// nothing more about it.
    StoreTaken { id: u64 },
    /// A call's recording could not be written (and has stopped).
    CallRecordingFailed { call: CallKey, error: String },
    /// From the store several nodes share (docs/cluster.md).
    Cluster(crate::cluster::ClusterEvent),
}

/// A reloaded configuration with everything it names.
pub struct Reload {
    pub settings: crate::engine::settings::EngineSettings,
    pub prompts: PromptLibrary,
    pub program: Arc<Program>,
    pub directory: Arc<Directory>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum Output {
    Transmit(Transmit),
    /// A command for one call's media (see [`crate::media::call_media`]).
    Media {
        call: CallKey,
        command: MediaCommand,
    },
    /// A voice message is on disk: append it to the message index.
    MessageSaved(Box<MessageRecord>),
    /// A line for another stream in the records folder: `queue_log`
    /// (Asterisk's format) or `offers-<date>.jsonl` (one line per offer).
    Line {
        file: String,
        line: String,
    },
    /// Make `write` durable, in order, and answer `Input::Stored { id }`
    /// (the engine waits for it when `write.needs_ack()`).
    Store {
        id: u64,
        write: StoreWrite,
    },
    /// For the store several nodes share, in order (docs/cluster.md); a
    /// `Claim` is answered with `Input::Cluster(Claimed)`.
    Cluster(crate::cluster::ClusterRequest),
    /// The call is over: write the record durably, then close its media,
    /// then send `then_send` (the call's last messages: whoever sees the
    /// call end can count on its record surviving a crash).
    CallEnded {
        call: CallKey,
        record: Box<CallRecord>,
        then_send: Vec<Transmit>,
    },
}
