//! Voice messages on disk: each one a WAV file under the messages folder
//! and a JSON line in `<dir>/index.jsonl` describing it.
//!
//! The WAV is written and fsynced before its index line is appended, so a
//! line never points at a recording that is not on disk. Index lines are
//! appended whole and fsynced; a line torn by a crash is sealed with a
//! newline on the next append and skipped by readers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::ids::CallKey;
use crate::media::call_media::Recorded;
use crate::voicemail::{parse_index, MessageRecord, INDEX_FILE, SAMPLE_RATE};

use super::alarms::Alarms;
use super::durable::open_sealed;
use super::Event;

/// Writes finished recordings' WAVs off the media threads, on the tokio
/// blocking pool, and tells the engine once each is on disk. A write that
/// fails (a full disk, a folder gone) is retried with backoff and
/// alarmed; what is still unsaved at exit is kept in a fallback folder,
/// never silently dropped.
#[derive(Clone)]
pub struct Recordings {
    dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    runtime: tokio::runtime::Handle,
    alarms: Arc<Alarms>,
    unsaved: Arc<Mutex<HashMap<u64, (CallKey, Recorded)>>>,
    next: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
}

/// The first retry comes this soon; each next one twice as late, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Recordings {
    pub fn new(
        dir: PathBuf,
        events: mpsc::UnboundedSender<Event>,
        runtime: tokio::runtime::Handle,
    ) -> Recordings {
        Recordings::with_alarms(dir, events, runtime, Arc::default())
    }

    pub fn with_alarms(
        dir: PathBuf,
        events: mpsc::UnboundedSender<Event>,
        runtime: tokio::runtime::Handle,
        alarms: Arc<Alarms>,
    ) -> Recordings {
        Recordings {
            dir,
            events,
            runtime,
            alarms,
            unsaved: Arc::default(),
            next: Arc::default(),
            stopping: Arc::default(),
        }
    }

    /// Saves a finished recording (from any thread), retrying until it is
    /// on disk or the shell stops.
    pub fn save(&self, call: CallKey, recorded: Recorded) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(&recorded.file);
        if let Ok(mut u) = self.unsaved.lock() {
            u.insert(id, (call, recorded));
        }
        let this = self.clone();
        self.runtime
            .spawn_blocking(move || this.write_until_saved(id, &path));
    }

    fn write_until_saved(&self, id: u64, path: &Path) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let result = {
                let Ok(unsaved) = self.unsaved.lock() else {
                    return;
                };
                let Some((_, r)) = unsaved.get(&id) else {
                    return;
                };
                write_wav(path, &r.samples)
            };
            match result {
                Ok(()) => {
                    let Some((call, r)) = self.unsaved.lock().ok().and_then(|mut u| u.remove(&id))
                    else {
                        return;
                    };
                    let _ = self.events.send(Event::RecordingSaved {
                        call,
                        duration_ms: r.samples.len() as u64 / 8,
                        ended_by: r.end,
                    });
                    return;
                }
                Err(e) => {
                    Alarms::add(&self.alarms.message_write_failures);
                    error!(error = %e, retry_in = ?backoff, "cannot save a recorded message; retrying");
                }
            }
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Recordings not yet on disk.
    pub fn pending(&self) -> usize {
        self.unsaved.lock().map(|u| u.len()).unwrap_or(0)
    }

    /// At exit: stops retrying and writes what is still unsaved under
    /// `fallback`, naming each file in the log. Returns the files kept.
    pub fn keep_unsaved(&self, fallback: &Path) -> Vec<PathBuf> {
        self.stopping.store(true, Ordering::Relaxed);
        let left: Vec<(CallKey, Recorded)> = match self.unsaved.lock() {
            Ok(mut u) => u.drain().map(|(_, v)| v).collect(),
            Err(_) => return Vec::new(),
        };
        if left.is_empty() {
            return Vec::new();
        }
        let mut kept = Vec::new();
        for (call, r) in left {
            let path = fallback.join(&r.file);
            match write_wav(&path, &r.samples) {
                Ok(()) => {
                    Alarms::add(&self.alarms.messages_kept_elsewhere);
                    error!(%call, file = %path.display(), wanted = %self.dir.join(&r.file).display(), "message could not be saved in the messages folder: kept here instead");
                    kept.push(path);
                }
                Err(e) => {
                    error!(%call, error = %e, samples = r.samples.len(), "message lost: it could not be saved anywhere")
                }
            }
        }
        warn!(count = kept.len(), "messages kept in the fallback folder");
        kept
    }
}

#[derive(Debug, Error)]
pub enum MessageError {
    #[error("cannot create folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write recording {path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    #[error("cannot write recording {path}: {source}")]
    WavIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode message {id} for {path}: {source}")]
    Encode {
        path: PathBuf,
        id: String,
        source: serde_json::Error,
    },
    #[error("cannot append to message index {path}: {source}")]
    Append {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read message index {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes 8 kHz mono 16-bit PCM WAV with hound; creates parent dirs.
/// The file is fsynced before this returns.
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), MessageError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    let io_err = |source| MessageError::WavIo {
        path: path.to_path_buf(),
        source,
    };
    let wav_err = |source| MessageError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = BufWriter::new(File::create(path).map_err(io_err)?);
    {
        let mut wav = hound::WavWriter::new(&mut out, spec).map_err(wav_err)?;
        for &s in samples {
            wav.write_sample(s).map_err(wav_err)?;
        }
        wav.finalize().map_err(wav_err)?;
    }
    let file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)
}

/// Appends one JSON line to `<dir>/index.jsonl` durably (write_all of a whole line + sync_data),
/// sealing a torn last line first.
pub fn append_index(dir: &Path, record: &MessageRecord) -> Result<(), MessageError> {
    create_dir(dir)?;
    let path = dir.join(INDEX_FILE);
    let mut line = serde_json::to_string(record).map_err(|source| MessageError::Encode {
        path: path.clone(),
        id: record.id.clone(),
        source,
    })?;
    line.push('\n');
    let append_err = |source| MessageError::Append {
        path: path.clone(),
        source,
    };
    let mut f = open_sealed(&path).map_err(append_err)?;
    f.write_all(line.as_bytes()).map_err(append_err)?;
    f.sync_data().map_err(append_err)
}

/// Reads the index, skipping (and counting) unparseable lines. A folder
/// with no index yet has no messages.
pub fn read_index(dir: &Path) -> Result<(Vec<MessageRecord>, usize), MessageError> {
    let path = dir.join(INDEX_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(parse_index(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), 0)),
        Err(source) => Err(MessageError::Read { path, source }),
    }
}

fn create_dir(dir: &Path) -> Result<(), MessageError> {
    std::fs::create_dir_all(dir).map_err(|source| MessageError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voicemail::message_id;
    use std::fs::OpenOptions;

    fn record(n: u64, at: &str) -> MessageRecord {
        MessageRecord {
            id: message_id(1_764_041_498_000 + n, n),
            call_id: format!("c{n}"),
            caller_number: "13800138000".into(),
            caller_name: Some("张三".into()),
            dialled_number: "10010".into(),
            business_type: Some("宽带报修".into()),
            customer_class: Some("group".into()),
            recorded_at: at.into(),
            duration_ms: 65_400,
            ended_by: "pound".into(),
            file: format!("2025-11-25/msg-{n}.wav"),
        }
    }

    #[test]
    fn wav_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/msg.wav");
        let samples: Vec<i16> = (0..8000)
            .map(|i| ((i as f64 / 8.0).sin() * 12_000.0) as i16)
            .chain([i16::MIN, i16::MAX, 0, -1])
            .collect();
        write_wav(&path, &samples).expect("write");
        let mut reader = hound::WavReader::open(&path).expect("open");
        let spec = reader.spec();
        assert_eq!(spec.sample_rate, 8000);
        assert_eq!(spec.channels, 1);
        assert_eq!(spec.bits_per_sample, 16);
        assert_eq!(spec.sample_format, hound::SampleFormat::Int);
        let back: Vec<i16> = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples");
        assert_eq!(back, samples);

        // Empty recordings are valid files too.
        let empty = dir.path().join("empty.wav");
        write_wav(&empty, &[]).expect("write empty");
        assert_eq!(hound::WavReader::open(&empty).expect("open").len(), 0);
    }

    #[test]
    fn wav_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").expect("write");
        let e = write_wav(&blocker.join("msg.wav"), &[0]).expect_err("parent is a file");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot create folder {}", blocker.display())),
            "{e}"
        );
        assert!(matches!(e, MessageError::CreateDir { .. }), "{e:?}");
    }

    #[test]
    fn index_appends_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let messages = dir.path().join("messages");
        assert_eq!(read_index(&messages).expect("no index yet"), (vec![], 0));
        let a = record(1, "2025-11-25T03:31:38.123Z");
        let mut b = record(2, "2025-11-25T03:35:00.000Z");
        b.caller_name = None;
        b.business_type = None;
        b.customer_class = None;
        append_index(&messages, &a).expect("append a");
        append_index(&messages, &b).expect("append b");
        let (records, skipped) = read_index(&messages).expect("read");
        assert_eq!(skipped, 0);
        assert_eq!(records, vec![a, b]);
        let text = std::fs::read_to_string(messages.join(INDEX_FILE)).expect("read");
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn torn_index_line_is_sealed_and_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = record(1, "2025-11-25T03:31:38.123Z");
        let b = record(2, "2025-11-25T03:35:00.000Z");
        append_index(dir.path(), &a).expect("append");
        // A crash mid-line, cut inside the 3-byte UTF-8 of a Chinese name.
        let whole = serde_json::to_string(&b).expect("json");
        let cut = whole.find("张").expect("name in line") + 1;
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(INDEX_FILE))
            .expect("open");
        f.write_all(&whole.as_bytes()[..cut]).expect("torn write");
        drop(f);
        assert_eq!(read_index(dir.path()).expect("read"), (vec![a.clone()], 1));

        append_index(dir.path(), &b).expect("append after crash");
        let (records, skipped) = read_index(dir.path()).expect("read");
        assert_eq!(skipped, 1, "only the torn line");
        assert_eq!(records, vec![a, b]);
    }

    fn recorded(file: &str) -> Recorded {
        Recorded {
            leg: crate::ids::LegKey(2),
            file: file.into(),
            samples: vec![1000; 800],
            end: crate::media::session::RecordingEnd::Pound,
        }
    }

    #[test]
    fn a_message_that_cannot_be_written_is_retried_then_saved() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the messages folder must be: creating it fails,
        // even for root, until the file goes.
        let messages = dir.path().join("messages");
        std::fs::write(&messages, "x").expect("blocker");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let alarms = Arc::new(Alarms::default());
        let saver = Recordings::with_alarms(
            messages.clone(),
            tx,
            runtime.handle().clone(),
            alarms.clone(),
        );
        saver.save(CallKey(1), recorded("2026-12-06/m.wav"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Alarms::get(&alarms.message_write_failures) < 2 {
            assert!(std::time::Instant::now() < deadline, "no retry seen");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(rx.try_recv().is_err(), "not saved yet");
        assert_eq!(saver.pending(), 1);
        std::fs::remove_file(&messages).expect("unblock");
        let saved = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), rx.recv()).await });
        match saved {
            Ok(Some(Event::RecordingSaved {
                call, duration_ms, ..
            })) => assert_eq!((call, duration_ms), (CallKey(1), 100)),
            _ => panic!("no RecordingSaved"),
        }
        let wav = hound::WavReader::open(messages.join("2026-12-06/m.wav")).expect("saved");
        assert_eq!(wav.len(), 800);
        assert_eq!(saver.pending(), 0);
    }

    #[test]
    fn a_message_still_unsaved_at_exit_is_kept_in_the_fallback_folder() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let messages = dir.path().join("messages");
        std::fs::write(&messages, "x").expect("blocker");
        let (tx, _rx) = mpsc::unbounded_channel();
        let alarms = Arc::new(Alarms::default());
        let saver = Recordings::with_alarms(messages, tx, runtime.handle().clone(), alarms.clone());
        saver.save(CallKey(1), recorded("2026-12-06/m.wav"));
        let fallback = dir.path().join("kept");
        let kept = saver.keep_unsaved(&fallback);
        assert_eq!(kept, vec![fallback.join("2026-12-06/m.wav")]);
        assert_eq!(hound::WavReader::open(&kept[0]).expect("kept").len(), 800);
        assert_eq!(Alarms::get(&alarms.messages_kept_elsewhere), 1);
        assert_eq!(saver.pending(), 0);
    }
}
