//! Appends call records durably. One writer thread owns the files: it
//! writes each record as a single line, fsyncs after every batch, and only
//! then releases what the call held (its media socket), so a record is on
//! disk before the call's resources go. A line torn by a crash is sealed
//! with a newline on the next open, so readers can skip it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::alarms::Alarms;
use super::durable::open_sealed;

use tracing::error;

use crate::cdr::{daily_file_name, CallRecord};

/// What the writer appends.
pub enum Job {
    /// A call record, and whatever must live until it is on disk.
    Record {
        record: Box<CallRecord>,
        hold: Option<Box<dyn Send>>,
    },
    /// A line for another stream (the queue_log), newline included.
    Line { file: String, line: String },
    /// Something to drop once everything queued before it is on disk.
    Hold(Box<dyn Send>),
}

pub struct CdrWriter {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// A batch that cannot be written is retried this many times, waiting
/// from [`FIRST_BACKOFF`] doubling to [`MAX_BACKOFF`] (about 7 s in all),
/// before its lines go to stderr instead.
const ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl CdrWriter {
    pub fn start(dir: PathBuf, alarms: Arc<Alarms>) -> std::io::Result<CdrWriter> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || writer_loop(&dir, rx, &alarms))?;
        Ok(CdrWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn write(&self, job: Job) {
        if let Some(tx) = &self.tx {
            if tx.send(job).is_err() {
                error!("record writer has stopped; a record was not written");
            }
        }
    }

    /// Writes everything queued and waits for it to be on disk.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer_loop(dir: &Path, rx: mpsc::Receiver<Job>, alarms: &Alarms) {
    let mut files: HashMap<String, File> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let lines: Vec<(String, String)> = batch
            .iter()
            .filter_map(|job| match job {
                Job::Record { record, .. } => {
                    Some((daily_file_name(&record.ended_at), record.to_line()))
                }
                Job::Line { file, line } => Some((file.clone(), line.clone())),
                Job::Hold(_) => None,
            })
            .collect();
        // Lines before `done` are written; a retry goes on from there, so
        // none is written twice.
        let mut done = 0;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            match write_batch(dir, &mut files, &lines, &mut done) {
                Ok(()) => break,
                Err(e) => {
                    Alarms::add(&alarms.record_write_failures);
                    // Reopen on the next try: the file may have moved.
                    files.clear();
                    if attempt == ATTEMPTS {
                        error!(error = %e, lines = lines.len() - done, "records cannot be written; printed to stderr instead");
                        for (_, line) in &lines[done..] {
                            alarms.records_not_written.fetch_add(1, Ordering::Relaxed);
                            eprintln!("{}", line.trim_end());
                        }
                        break;
                    }
                    error!(error = %e, attempt, retry_in = ?backoff, "cannot write records; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        // Records are durable: now the calls' resources may go.
        drop(batch);
        // Keep the few current files open (today's, yesterday's, queue_log).
        if files.len() > 4 {
            let mut names: Vec<String> = files.keys().cloned().collect();
            names.sort();
            for n in &names[..names.len() - 4] {
                files.remove(n);
            }
        }
    }
}

/// Appends `lines[*done..]` (file name, line) and fsyncs every file
/// touched; `done` counts the lines appended so far.
fn write_batch(
    dir: &Path,
    files: &mut HashMap<String, File>,
    lines: &[(String, String)],
    done: &mut usize,
) -> std::io::Result<()> {
    let mut touched: Vec<&str> = Vec::new();
    for (name, line) in &lines[*done..] {
        if !files.contains_key(name) {
            files.insert(name.clone(), open_sealed(&dir.join(name))?);
        }
        if let Some(f) = files.get_mut(name) {
            f.write_all(line.as_bytes())?;
        }
        if !touched.contains(&name.as_str()) {
            touched.push(name);
        }
        *done += 1;
    }
    for (name, _) in lines {
        if let Some(f) = files.get(name) {
            f.sync_data()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::{read_records, Disposition, Outcome};

    fn record(n: u32) -> CallRecord {
        CallRecord {
            version: 1,
            call_id: format!("c{n}"),
            sip_call_id: format!("s{n}"),
            caller_number: "1".into(),
            caller_name: None,
            dialled_number: "2".into(),
            source: "udp:127.0.0.1:5070".into(),
            invite_at: "2026-11-25T00:00:00.000Z".into(),
            ended_at: "2026-11-25T00:00:01.000Z".into(),
            disposition: Disposition::Rejected,
            outcome: Outcome::OverCapacity,
            sip_status: 503,
            ..CallRecord::default()
        }
    }

    #[test]
    fn torn_tail_is_sealed_and_new_records_stay_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("2026-11-25.jsonl");
        std::fs::write(
            &file,
            format!("{}{{\"version\":1,\"cal", record(0).to_line()),
        )
        .expect("write");
        let w = CdrWriter::start(dir.path().to_path_buf(), Arc::default()).expect("start");
        for n in 1..=3 {
            w.write(Job::Record {
                record: Box::new(record(n)),
                hold: None,
            });
        }
        w.finish();
        let text = std::fs::read_to_string(&file).expect("read");
        let (records, skipped) = read_records(&text);
        assert_eq!(skipped, 1, "the torn line is skipped");
        let ids: Vec<_> = records.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, ["c0", "c1", "c2", "c3"]);
    }

    #[test]
    fn a_failed_write_is_retried_alarmed_and_then_done_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("2026-11-25.jsonl");
        // A folder where the day's file must go: every open fails (even
        // for root, unlike a permission) until it is removed.
        std::fs::create_dir(&file).expect("blocker");
        let alarms = Arc::new(Alarms::default());
        let w = CdrWriter::start(dir.path().to_path_buf(), alarms.clone()).expect("start");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        struct Signal(std::sync::mpsc::Sender<()>);
        impl Drop for Signal {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        w.write(Job::Record {
            record: Box::new(record(1)),
            hold: Some(Box::new(Signal(tx))),
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Alarms::get(&alarms.record_write_failures) < 2 {
            assert!(std::time::Instant::now() < deadline, "no retry seen");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Not durable yet: what waits for the record is still held.
        assert!(
            rx.try_recv().is_err(),
            "released before the record was written"
        );
        std::fs::remove_dir(&file).expect("unblock");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("released once written");
        w.finish();
        let text = std::fs::read_to_string(&file).expect("read");
        let (records, skipped) = read_records(&text);
        assert_eq!((records.len(), skipped), (1, 0), "written once: {text}");
        assert_eq!(Alarms::get(&alarms.records_not_written), 0);
    }
}
