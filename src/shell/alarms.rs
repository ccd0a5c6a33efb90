//! Failures the shell retries but an operator must hear about: counted
//! here, exposed on `/metrics`, and logged where they happen.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Alarms {
    /// Attempts to write call records (or queue_log/offers lines) to disk
    /// that failed and were retried.
    pub record_write_failures: AtomicU64,
    /// Record lines given up on disk and printed to stderr instead.
    pub records_not_written: AtomicU64,
    /// Attempts to save a voice message's WAV that failed and were retried.
    pub message_write_failures: AtomicU64,
    /// Voice messages kept in the fallback folder at exit.
    pub messages_kept_elsewhere: AtomicU64,
    /// Call recordings stopped because their file could not be written.
    pub call_recordings_stopped: AtomicU64,
}

impl Alarms {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl Alarms {
    /// The counts, for `/metrics`.
    pub fn storage(&self) -> crate::live::prometheus::StorageAlarms {
        crate::live::prometheus::StorageAlarms {
            record_write_failures: Alarms::get(&self.record_write_failures),
            records_not_written: Alarms::get(&self.records_not_written),
            message_write_failures: Alarms::get(&self.message_write_failures),
            messages_kept_elsewhere: Alarms::get(&self.messages_kept_elsewhere),
            call_recordings_stopped: Alarms::get(&self.call_recordings_stopped),
        }
    }
}
