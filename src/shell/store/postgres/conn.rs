//! The connection behind [`super::PostgresStore`]: connected again when
//! it was lost, each method's statements in one transaction, errors
//! typed with what they were doing, and the URL shown without its
//! password.

use std::mem::ManuallyDrop;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::FromSql;
use postgres::{Client, Notification, Row};

use super::tls::PgTarget;
use crate::shell::store::StoreError;

/// How long a connection attempt may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Conn::notifications`] waits when none has come: long enough
/// for the client to read its socket, short enough not to hold the store
/// thread.
const NOTIFICATION_WAIT: Duration = Duration::from_millis(1);
/// The most notifications read at once (the rest wait for the next call):
/// a steady stream must not keep the store thread reading.
const MAX_NOTIFICATIONS: usize = 10_000;

/// A statement's error, with what it was doing.
pub(super) fn pg(what: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |error| StoreError::Postgres { what, error }
}

/// Column `i` of `row`, typed (a mismatch is an error, not a panic).
pub(super) fn col<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    what: &'static str,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(pg(what))
}

/// `url` without its password, for messages: `postgres://user@host/db`.
/// Handles the URL form (a password in the user part or as a
/// `password=` parameter) and the `key=value` form.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // key=value pairs: drop the password's.
        return url
            .split_whitespace()
            .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, hosts)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{user}@{hosts}")
        }
        None => authority.to_string(),
    };
    let mut shown = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
            .collect();
        if !kept.is_empty() {
            shown.push('?');
            shown.push_str(&kept.join("&"));
        }
    }
    shown
}

/// Whether a failed statement says the connection is gone (not a
/// statement the server refused on its merits).
fn lost(client: &Client, e: &postgres::Error) -> bool {
    if client.is_closed() || e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08, connection exception; 57, operator intervention (the
        // server shutting down or restarting).
        Some(code) => code.code().starts_with("08") || code.code().starts_with("57"),
        None => true,
    }
}

/// One connection, connected again when it was lost.
pub(super) struct Conn {
    /// Closed by [`Conn`]'s `Drop`, where it is safe to.
    pub(super) client: ManuallyDrop<Client>,
    target: PgTarget,
    /// The URL without its password.
    shown: String,
    /// The connection failed: connect again before the next transaction.
    broken: bool,
    /// Run on every new connection before anything else (`LISTEN`): what
    /// a session must have that a new one would not.
    session: Option<&'static str>,
    /// Connections made since [`Conn::open`]'s: a new one has missed what
    /// was announced (NOTIFY) while there was none.
    generation: u64,
}

/// How a transaction reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tx {
    /// Read committed, read and write: PostgreSQL's default.
    Write,
    /// One consistent snapshot, read only (repeatable read).
    Snapshot,
    /// One consistent snapshot that also writes a little (a node's lease
    /// renewed as it reads everything back).
    SnapshotWrite,
}

impl Conn {
    /// Connects to `url`: `postgres://user[:password]@host[:port]/db`
    /// or `key=value` pairs; unless it says otherwise, giving up after
    /// 10 s and named "hotline" in `pg_stat_activity`.
    pub(super) fn open(url: &str) -> Result<Conn, StoreError> {
        let shown = redact_url(url);
        let mut target = PgTarget::parse(url).map_err(|error| StoreError::Url {
            url: shown.clone(),
            error,
        })?;
        let config = &mut target.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("hotline");
        }
        let client = Conn::connect(&target, &shown)?;
        Ok(Conn {
            client: ManuallyDrop::new(client),
            target,
            shown,
            broken: false,
            session: None,
            generation: 0,
        })
    }

    /// Runs `sql` now and on every connection made from now on, before
    /// its first transaction (so that a `LISTEN` is in force before any
    /// snapshot is read on it).
    pub(super) fn on_every_connection(&mut self, sql: &'static str) -> Result<(), StoreError> {
        self.client
            .batch_execute(sql)
            .map_err(pg("setting up the connection"))?;
        self.session = Some(sql);
        Ok(())
    }

    /// How many times the connection was made again: when it changes,
    /// what was announced on the old one meanwhile may have been missed.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the next transaction connects again first.
    pub(super) fn needs_connecting(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// The notifications received so far, waiting at most about a
    /// millisecond for none (and at most [`MAX_NOTIFICATIONS`] at once).
    /// A connection found lost meanwhile is replaced at the next
    /// transaction (what it had not yet received is lost with it: see
    /// [`generation`](Self::generation)).
    pub(super) fn notifications(&mut self) -> Vec<Notification> {
        let mut received = Vec::new();
        if self.needs_connecting() {
            // A lost connection is not read again (its end was already
            // read); the next transaction replaces it.
            return received;
        }
        {
            // Not `iter()`, which never waits: the blocking client reads
            // its socket only while its runtime is parked, so a
            // notification that came while it was idle is only seen by a
            // call that may wait (or by the next statement).
            let mut pending = self.client.notifications();
            let mut iter = pending.timeout_iter(NOTIFICATION_WAIT);
            while received.len() < MAX_NOTIFICATIONS {
                match iter.next() {
                    Ok(Some(n)) => received.push(n),
                    Ok(None) => break,
                    Err(_) => {
                        self.broken = true;
                        break;
                    }
                }
            }
        }
        if self.client.is_closed() {
            self.broken = true;
        }
        received
    }

    fn connect(target: &PgTarget, shown: &str) -> Result<Client, StoreError> {
        target.connect().map_err(|error| StoreError::Connect {
            url: shown.to_string(),
            error,
        })
    }

    fn reconnect(&mut self) -> Result<(), StoreError> {
        // The old client is dropped here, on the store's thread.
        *self.client = Conn::connect(&self.target, &self.shown)?;
        self.generation += 1;
        if let Some(sql) = self.session {
            // Until this has run, the connection is not one to use.
            self.broken = true;
            self.client
                .batch_execute(sql)
                .map_err(pg("setting up the connection"))?;
        }
        self.broken = false;
        Ok(())
    }

    /// Starts a transaction, connecting again first if the connection
    /// was lost.
    pub(super) fn begin(&mut self, tx: Tx) -> Result<(), StoreError> {
        let sql = match tx {
            Tx::Write => "START TRANSACTION",
            Tx::Snapshot => "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            Tx::SnapshotWrite => "START TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        };
        if self.broken || self.client.is_closed() {
            self.reconnect()?;
        }
        if self.client.batch_execute(sql).is_err() {
            // Found dead only now (lost while idle): nothing was done yet.
            self.reconnect()?;
            self.client
                .batch_execute(sql)
                .map_err(pg("starting a transaction"))?;
        }
        Ok(())
    }

    pub(super) fn commit(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("COMMIT").map_err(|e| {
            self.broken = self.broken || lost(&self.client, &e);
            StoreError::Postgres {
                what: "commit",
                error: e,
            }
        })
    }

    /// Undoes a transaction that failed; a connection that cannot is
    /// replaced before the next one.
    pub(super) fn rollback(&mut self) {
        if self.client.batch_execute("ROLLBACK").is_err() {
            self.broken = true;
        }
    }

    /// Runs `f` in one transaction (a consistent read-only snapshot when
    /// `snapshot`): committed if it returns `Ok`, rolled back otherwise.
    pub(super) fn with_tx<T, E: From<StoreError>>(
        &mut self,
        snapshot: bool,
        f: impl FnOnce(&mut Client) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = if snapshot { Tx::Snapshot } else { Tx::Write };
        self.with_tx_as(tx, f)
    }

    /// Runs `f` in one transaction of kind `tx`: committed if it returns
    /// `Ok`, rolled back otherwise.
    pub(super) fn with_tx_as<T, E: From<StoreError>>(
        &mut self,
        tx: Tx,
        f: impl FnOnce(&mut Client) -> Result<T, E>,
    ) -> Result<T, E> {
        self.begin(tx)?;
        match f(&mut self.client) {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: taken once, here, and never used again.
        let client = unsafe { ManuallyDrop::take(&mut self.client) };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Closing a client blocks on its own runtime, which panics on
            // an async runtime's thread (where a store opened but not yet
            // handed to the store thread is dropped on an error): it is
            // closed on a thread of its own.
            let _ = std::thread::Builder::new()
                .name("store-close".into())
                .spawn(move || drop(client));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_url_is_shown_without_its_password() {
        for (url, shown) in [
            (
                "postgres://hotline:s3cret@db.example:5433/hotline",
                "postgres://hotline@db.example:5433/hotline",
            ),
            (
                "postgresql://hotline@db.example/hotline?sslmode=disable",
                "postgresql://hotline@db.example/hotline?sslmode=disable",
            ),
            (
                "postgres://db.example/hotline?user=h&password=s3cret&connect_timeout=3",
                "postgres://db.example/hotline?user=h&connect_timeout=3",
            ),
            ("postgres://a:b:c@h1,h2/db", "postgres://a@h1,h2/db"),
            ("postgres://h:p@x@host/db", "postgres://h@host/db"),
            (
                "host=db user=hotline password=s3cret dbname=h",
                "host=db user=hotline dbname=h",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"));
        }
    }
}
