//! The knowledge base: answers agents search while a caller waits, and
//! add when a question is new (docs/knowledge-base.md).
//!
//! It lives in the store, beside campaigns and tasks, but the engine never
//! sees it: the HTTP API asks the store thread directly through a
//! [`StoreCreator`], and each question is answered on a oneshot channel.
//!
//! Edits are versioned. An entry is written with the version its editor
//! started from; if someone else saved a newer one meanwhile, the write is
//! refused with [`KbError::Conflict`], which carries the current entry so
//! the second editor can merge (no edit silently overwrites another).
//! Every version ever written is kept in the history.

use serde::Serialize;
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::error;

use super::{Job, Store, StoreCreator, StoreError};

/// Longest search result list.
pub const MAX_RESULTS: usize = 50;

/// What a person writes: an entry's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KbFields {
    pub title: String,
    /// The question as callers ask it (may be empty).
    pub question: String,
    pub answer: String,
    /// Each without a comma (the store keeps them as a comma list).
    pub tags: Vec<String>,
    pub business_type: Option<String>,
}

/// An entry as stored, or one of its versions as it was written (in the
/// history, `updated_ms` and `updated_by` say when and by whom that
/// version was written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KbEntry {
    pub id: u64,
    #[serde(flatten)]
    pub fields: KbFields,
    /// 1 when created, one more at each saved edit.
    pub version: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub updated_by: String,
}

impl KbEntry {
    /// Entry `id` as created: version 1, by `who` at `now_ms`.
    pub fn created(id: u64, fields: &KbFields, who: &str, now_ms: u64) -> KbEntry {
        KbEntry {
            id,
            fields: fields.clone(),
            version: 1,
            created_ms: now_ms,
            updated_ms: now_ms,
            updated_by: who.to_string(),
        }
    }
}

/// A search: every word of `text` (split at white space) must appear in
/// the title, question, answer or tags, case-insensitively; an empty text
/// lists the newest entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbQuery {
    pub text: String,
    pub business_type: Option<String>,
    /// At most [`MAX_RESULTS`].
    pub limit: usize,
}

#[derive(Debug, Error)]
pub enum KbError {
    #[error("no knowledge base entry {0}")]
    NotFound(u64),
    /// The entry is no longer at the version the edit started from.
    #[error(
        "entry {} was changed by {} (now version {}) after version {expected} was opened",
        current.id,
        current.updated_by,
        current.version
    )]
    Conflict {
        expected: u64,
        current: Box<KbEntry>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store has stopped")]
    Stopped,
}

impl From<rusqlite::Error> for KbError {
    fn from(e: rusqlite::Error) -> Self {
        KbError::Store(StoreError::Sql(e))
    }
}

/// The knowledge base's part of a store. Every change commits before it
/// returns.
pub trait KbStore {
    /// Entries matching `query`, most recently updated first.
    fn kb_search(&mut self, query: &KbQuery) -> Result<Vec<KbEntry>, KbError>;

    fn kb_get(&mut self, id: u64) -> Result<KbEntry, KbError>;

    /// A new entry at version 1, written by `who`.
    fn kb_create(&mut self, fields: &KbFields, who: &str, now_ms: u64) -> Result<KbEntry, KbError>;

    /// Replaces the text of entry `id`, if it is still at `expected`
    /// (the version the editor opened): it becomes `expected + 1`.
    /// Otherwise [`KbError::Conflict`] with the entry as it is now.
    fn kb_update(
        &mut self,
        id: u64,
        expected: u64,
        fields: &KbFields,
        who: &str,
        now_ms: u64,
    ) -> Result<KbEntry, KbError>;

    /// Every version of entry `id` as it was written, newest first (the
    /// first is the current one).
    fn kb_history(&mut self, id: u64) -> Result<Vec<KbEntry>, KbError>;
}

type Reply<T> = oneshot::Sender<Result<T, KbError>>;

/// What the store thread is asked about the knowledge base.
pub(super) enum KbJob {
    Search {
        query: KbQuery,
        reply: Reply<Vec<KbEntry>>,
    },
    Get {
        id: u64,
        reply: Reply<KbEntry>,
    },
    Create {
        fields: Box<KbFields>,
        who: String,
        reply: Reply<KbEntry>,
    },
    Update {
        id: u64,
        expected: u64,
        fields: Box<KbFields>,
        who: String,
        reply: Reply<KbEntry>,
    },
    History {
        id: u64,
        reply: Reply<Vec<KbEntry>>,
    },
}

/// The store thread's side: answers one job.
pub(super) fn serve(store: &mut dyn Store, job: KbJob, now_ms: u64) {
    fn logged<T>(result: Result<T, KbError>) -> Result<T, KbError> {
        if let Err(KbError::Store(e)) = &result {
            error!(error = %e, "knowledge base");
        }
        result
    }
    match job {
        KbJob::Search { query, reply } => {
            let _ = reply.send(logged(store.kb_search(&query)));
        }
        KbJob::Get { id, reply } => {
            let _ = reply.send(logged(store.kb_get(id)));
        }
        KbJob::Create { fields, who, reply } => {
            let _ = reply.send(logged(store.kb_create(&fields, &who, now_ms)));
        }
        KbJob::Update {
            id,
            expected,
            fields,
            who,
            reply,
        } => {
            let _ = reply.send(logged(store.kb_update(id, expected, &fields, &who, now_ms)));
        }
        KbJob::History { id, reply } => {
            let _ = reply.send(logged(store.kb_history(id)));
        }
    }
}

/// The API's side: each method asks the store thread and waits.
impl StoreCreator {
    async fn kb<T>(&self, make: impl FnOnce(Reply<T>) -> KbJob) -> Result<T, KbError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Kb(make(reply)))
            .map_err(|_| KbError::Stopped)?;
        rx.await.map_err(|_| KbError::Stopped)?
    }

    pub async fn kb_search(&self, query: KbQuery) -> Result<Vec<KbEntry>, KbError> {
        self.kb(|reply| KbJob::Search { query, reply }).await
    }

    pub async fn kb_get(&self, id: u64) -> Result<KbEntry, KbError> {
        self.kb(|reply| KbJob::Get { id, reply }).await
    }

    pub async fn kb_create(&self, fields: KbFields, who: String) -> Result<KbEntry, KbError> {
        self.kb(|reply| KbJob::Create {
            fields: Box::new(fields),
            who,
            reply,
        })
        .await
    }

    pub async fn kb_update(
        &self,
        id: u64,
        expected: u64,
        fields: KbFields,
        who: String,
    ) -> Result<KbEntry, KbError> {
        self.kb(|reply| KbJob::Update {
            id,
            expected,
            fields: Box::new(fields),
            who,
            reply,
        })
        .await
    }

    pub async fn kb_history(&self, id: u64) -> Result<Vec<KbEntry>, KbError> {
        self.kb(|reply| KbJob::History { id, reply }).await
    }
}
