//! The store: where work that outlives a call is kept (campaigns, their
//! numbers and attempts, the do-not-call list). One interface, [`Store`];
//! the embedded SQLite backend ([`sqlite`]) is the default, nothing to
//! install or start, and a PostgreSQL backend for several nodes can
//! implement the same trait.
//!
//! One thread owns the store ([`StoreThread`]): the engine's writes are
//! applied in order, each committed durably, and acknowledged back to the
//! engine, which waits for the acknowledgement of an attempt before its
//! INVITE leaves.

pub mod sqlite;

use std::sync::mpsc;
use std::thread::JoinHandle;

use thiserror::Error;
use tokio::sync::{mpsc as tokio_mpsc, oneshot};
use tracing::error;

use crate::campaign::{CampaignId, CampaignSpec};
use crate::store::{StoreWrite, StoredWork};

use super::Event;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("store: campaign {campaign}: {problem}")]
    Corrupt { campaign: u64, problem: String },
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
}

/// Work that outlives a call, kept durably. Every method commits before
/// it returns.
pub trait Store: Send {
    /// Everything the engine runs from, read back at start: running and
    /// paused campaigns with their numbers and attempts, the do-not-call
    /// list, and the notices answered in the last `notice_days` days.
    fn load(&mut self, now_ms: u64, notice_days: u32) -> Result<StoredWork, StoreError>;

    /// A new campaign (its numbers pending), with its uploaded prompt's WAV
    /// bytes if any. Returns its id.
    fn create_campaign(
        &mut self,
        spec: &CampaignSpec,
        created_ms: u64,
        prompt_wav: Option<&[u8]>,
    ) -> Result<CampaignId, StoreError>;

    /// Applies one of the engine's writes.
    fn apply(&mut self, write: &StoreWrite, now_ms: u64) -> Result<(), StoreError>;
}

/// What the store thread is asked.
enum Job {
    Write {
        id: u64,
        write: StoreWrite,
    },
    Create {
        spec: Box<CampaignSpec>,
        created_ms: u64,
        prompt_wav: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<CampaignId, String>>,
    },
}

/// The thread that owns the store.
pub struct StoreThread {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Starts the thread; acknowledgements go to the engine on `events`.
    pub fn start(
        mut store: Box<dyn Store>,
        events: tokio_mpsc::UnboundedSender<Event>,
    ) -> std::io::Result<StoreThread> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let now_ms = wall_ms();
                    match job {
                        Job::Write { id, write } => {
                            let event = match store.apply(&write, now_ms) {
                                Ok(()) => Event::Stored { id },
                                Err(e) => {
                                    error!(error = %e, ?write, "store write failed");
                                    Event::StoreFailed { id }
                                }
                            };
                            let _ = events.send(event);
                        }
                        Job::Create {
                            spec,
                            created_ms,
                            prompt_wav,
                            reply,
                        } => {
                            let created = store
                                .create_campaign(&spec, created_ms, prompt_wav.as_deref())
                                .map_err(|e| {
                                    error!(error = %e, "cannot create a campaign");
                                    e.to_string()
                                });
                            let _ = reply.send(created);
                        }
                    }
                }
            })?;
        Ok(StoreThread {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn write(&self, id: u64, write: StoreWrite) {
        if let Some(tx) = &self.tx {
            if tx.send(Job::Write { id, write }).is_err() {
                error!("the store thread has stopped; a write was not made");
            }
        }
    }

    /// A handle for other tasks (the API) to create campaigns with.
    pub fn creator(&self) -> Option<StoreCreator> {
        self.tx.clone().map(|tx| StoreCreator { tx })
    }

    /// Applies everything queued, then stops.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Creates campaigns through the store thread (cheap to clone).
#[derive(Clone)]
pub struct StoreCreator {
    tx: mpsc::Sender<Job>,
}

impl StoreCreator {
    pub async fn create(
        &self,
        spec: CampaignSpec,
        prompt_wav: Option<Vec<u8>>,
    ) -> Result<(CampaignId, u64), String> {
        let (reply, rx) = oneshot::channel();
        let created_ms = wall_ms();
        self.tx
            .send(Job::Create {
                spec: Box::new(spec),
                created_ms,
                prompt_wav,
                reply,
            })
            .map_err(|_| "the store has stopped".to_string())?;
        let id = rx
            .await
            .map_err(|_| "the store has stopped".to_string())??;
        Ok((id, created_ms))
    }
}

/// Milliseconds since the Unix epoch now.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
