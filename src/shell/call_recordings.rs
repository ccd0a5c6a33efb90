//! Call recordings on disk: one stereo WAV per recorded call, under
//! `<recordings.dir>/YYYY-MM-DD/<call id>.wav`, appended a second at a
//! time as the call goes. After each second the WAV header is rewritten
//! (hound's `flush`), so a crash loses at most the last second and the
//! file stays readable. A write that fails (a full disk) stops that
//! recording, never the call: the engine is told, the record says so, and
//! `/metrics` counts it. Old day folders are removed after the retention.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::sync::mpsc as tokio_mpsc;
use tracing::{error, info, warn};

use crate::ids::CallKey;
use crate::media::call_media::RecordChunk;

use super::alarms::Alarms;
use super::Event;

type Wav = hound::WavWriter<BufWriter<File>>;

enum Job {
    Chunk {
        call: CallKey,
        chunk: RecordChunk,
    },
    /// Remove day folders older than the retention.
    Sweep,
}

/// The shell's end: cheap to clone into every media worker.
#[derive(Clone)]
pub struct CallRecordings {
    tx: mpsc::Sender<Job>,
}

impl CallRecordings {
    /// Starts the writer thread for recordings under `dir`, kept
    /// `retention_days` days.
    pub fn start(
        dir: PathBuf,
        retention_days: u32,
        events: tokio_mpsc::UnboundedSender<Event>,
        alarms: Arc<Alarms>,
    ) -> std::io::Result<CallRecordings> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("recordings".into())
            .spawn(move || writer(&dir, retention_days, &rx, &events, &alarms))?;
        // The first sweep at start, then once an hour.
        let sweeper = tx.clone();
        std::thread::Builder::new()
            .name("recordings-sweep".into())
            .spawn(move || {
                while sweeper.send(Job::Sweep).is_ok() {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            })?;
        Ok(CallRecordings { tx })
    }

    pub fn append(&self, call: CallKey, chunk: RecordChunk) {
        let _ = self.tx.send(Job::Chunk { call, chunk });
    }
}

fn writer(
    dir: &Path,
    retention_days: u32,
    rx: &mpsc::Receiver<Job>,
    events: &tokio_mpsc::UnboundedSender<Event>,
    alarms: &Alarms,
) {
    let mut open: HashMap<String, Wav> = HashMap::new();
    // Files that failed: their later chunks are dropped.
    let mut failed: HashSet<String> = HashSet::new();
    while let Ok(job) = rx.recv() {
        let (call, chunk) = match job {
            Job::Sweep => {
                sweep(dir, retention_days);
                continue;
            }
            Job::Chunk { call, chunk } => (call, chunk),
        };
        if failed.contains(&chunk.file) {
            if chunk.last {
                failed.remove(&chunk.file);
            }
            continue;
        }
        let result = append(dir, &mut open, &chunk);
        match result {
            Ok(()) if chunk.last => {
                if let Some(wav) = open.remove(&chunk.file) {
                    if let Err(e) = wav.finalize() {
                        warn!(file = %chunk.file, error = %e, "cannot close a recording");
                    }
                }
            }
            Ok(()) => {}
            Err(e) => {
                Alarms::add(&alarms.call_recordings_stopped);
                error!(file = %chunk.file, error = %e, "cannot write a call recording: it stops, the call goes on");
                open.remove(&chunk.file);
                if !chunk.last {
                    failed.insert(chunk.file.clone());
                }
                let _ = events.send(Event::CallRecordingFailed {
                    call,
                    error: e.to_string(),
                });
            }
        }
    }
    for (_, wav) in open {
        let _ = wav.finalize();
    }
}

fn append(
    dir: &Path,
    open: &mut HashMap<String, Wav>,
    chunk: &RecordChunk,
) -> Result<(), hound::Error> {
    if !open.contains_key(&chunk.file) {
        let path = dir.join(&chunk.file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        open.insert(chunk.file.clone(), hound::WavWriter::create(&path, spec)?);
    }
    let Some(wav) = open.get_mut(&chunk.file) else {
        return Ok(());
    };
    for &s in &chunk.samples {
        wav.write_sample(s)?;
    }
    // The header now says how long the file is: readable after a crash.
    wav.flush()?;
    Ok(())
}

/// Removes `YYYY-MM-DD` folders older than the retention.
fn sweep(dir: &Path, retention_days: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let today = super::store::wall_ms() / 86_400_000;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(day) = name.to_str().and_then(crate::forms::parse_date) else {
            continue;
        };
        if (today as i64 - day) > i64::from(retention_days) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => info!(folder = %entry.path().display(), "old recordings removed"),
                Err(e) => {
                    warn!(folder = %entry.path().display(), error = %e, "cannot remove old recordings")
                }
            }
        }
    }
}

/// The file of a call's recording, if there is one (its id names it;
/// the day folder is found by looking).
pub fn find(dir: &Path, call_id: &str) -> Option<PathBuf> {
    if !call_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    let name = format!("{call_id}.wav");
    let mut days: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    days.sort();
    days.into_iter()
        .rev()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_make_a_stereo_wav_readable_after_each_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut open = HashMap::new();
        let chunk = |last| RecordChunk {
            file: "2026-12-06/hl-1-2.wav".into(),
            samples: (0..16_000)
                .map(|i| if i % 2 == 0 { 100 } else { -100 })
                .collect(),
            last,
        };
        append(dir.path(), &mut open, &chunk(false)).expect("first");
        // Readable while the call goes on: one second of stereo.
        let path = dir.path().join("2026-12-06/hl-1-2.wav");
        let r = hound::WavReader::open(&path).expect("readable mid-call");
        assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 8000));
        assert_eq!(r.duration(), 8000);
        append(dir.path(), &mut open, &chunk(true)).expect("second");
        assert_eq!(
            hound::WavReader::open(&path).expect("wav").duration(),
            16_000
        );
        assert_eq!(find(dir.path(), "hl-1-2"), Some(path));
        assert_eq!(find(dir.path(), "../etc/passwd"), None);
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("2026-12-06"), "x").expect("blocker");
        let mut open = HashMap::new();
        let chunk = RecordChunk {
            file: "2026-12-06/hl-1-2.wav".into(),
            samples: vec![0; 320],
            last: false,
        };
        assert!(append(dir.path(), &mut open, &chunk).is_err());
    }

    #[test]
    fn old_day_folders_are_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("2000-01-01")).expect("old");
        let today = crate::cdr::format_ms(super::super::store::wall_ms());
        std::fs::create_dir_all(dir.path().join(&today[..10])).expect("today");
        std::fs::create_dir_all(dir.path().join("not-a-date")).expect("other");
        sweep(dir.path(), 90);
        assert!(!dir.path().join("2000-01-01").exists());
        assert!(dir.path().join(&today[..10]).exists());
        assert!(dir.path().join("not-a-date").exists());
    }
}
