//! Appends call records durably. One writer thread owns the files: it
//! writes each record as a single line, fsyncs after every batch, and only
//! then releases what the call held (its media socket), so a record is on
//! disk before the call's resources go. A line torn by a crash is sealed
//! with a newline on the next open, so readers can skip it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

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

impl CdrWriter {
    pub fn start(dir: PathBuf) -> std::io::Result<CdrWriter> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || writer_loop(&dir, rx))?;
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

fn writer_loop(dir: &Path, rx: mpsc::Receiver<Job>) {
    let mut files: HashMap<String, File> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut touched: Vec<String> = Vec::new();
        for job in &batch {
            let (line, name) = match job {
                Job::Record { record, .. } => (record.to_line(), daily_file_name(&record.ended_at)),
                Job::Line { file, line } => (line.clone(), file.clone()),
                Job::Hold(_) => continue,
            };
            if !files.contains_key(&name) {
                match open_sealed(&dir.join(&name)) {
                    Ok(f) => {
                        files.insert(name.clone(), f);
                    }
                    Err(e) => {
                        error!(file = %dir.join(&name).display(), error = %e, "cannot open record file; record printed instead");
                        eprintln!("{}", line.trim_end());
                        continue;
                    }
                }
            }
            if let Some(f) = files.get_mut(&name) {
                if let Err(e) = f.write_all(line.as_bytes()) {
                    error!(error = %e, "cannot append record; record printed instead");
                    eprintln!("{}", line.trim_end());
                }
                if !touched.contains(&name) {
                    touched.push(name);
                }
            }
        }
        for name in &touched {
            if let Some(f) = files.get(name) {
                if let Err(e) = f.sync_data() {
                    error!(error = %e, "fsync of record file failed");
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
        let w = CdrWriter::start(dir.path().to_path_buf()).expect("start");
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
}
