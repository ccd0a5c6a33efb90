//! Streaming records back from disk, for reports and planning: files are
//! read line by line, so memory stays bounded however many records there
//! are. Lines that do not parse (one torn by a crash, or a foreign line) are
//! skipped and counted, never fatal.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

pub use crate::cdr::parse_time_ms;
use crate::cdr::CallRecord;

/// Why records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: no call-record files (*.jsonl) found")]
    NoFiles(PathBuf),
}

/// What a read went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub files: usize,
    pub records: u64,
    /// Lines that were not a call record (torn, invalid JSON, wrong shape).
    pub skipped_lines: u64,
    pub bytes: u64,
}

/// The call-record files behind `paths`: files as given, and in
/// directories the `*.jsonl` files that hold call records (not the
/// `offers-*.jsonl` agent-attempt stream, nor the `audit-*.jsonl` log of
/// changes made through the API), sorted by name (so by date).
pub fn record_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        let io = |source| ReadError::Io {
            path: path.clone(),
            source,
        };
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_record_file(p))
                .collect();
            if found.is_empty() {
                return Err(ReadError::NoFiles(path.clone()));
            }
            found.sort();
            files.extend(found);
        } else {
            std::fs::metadata(path).map_err(io)?;
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn is_record_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".jsonl")
        && !name.starts_with("offers-")
        && !name.starts_with("audit-")
        && path.is_file()
}

/// Calls `each` with every record in `files`, in file order, and `progress`
/// with (bytes read so far, total bytes) after each file chunk.
pub fn for_each_record(
    files: &[PathBuf],
    mut progress: impl FnMut(u64, u64),
    mut each: impl FnMut(CallRecord),
) -> Result<ReadStats, ReadError> {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut stats = ReadStats::default();
    let mut line = Vec::new();
    for path in files {
        let io = |source| ReadError::Io {
            path: path.clone(),
            source,
        };
        let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
        stats.files += 1;
        let mut since_progress = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            stats.bytes += n as u64;
            since_progress += n as u64;
            if since_progress >= 1 << 20 {
                since_progress = 0;
                progress(stats.bytes, total);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // Bytes, not str: a line that is not UTF-8 is one bad line.
            match serde_json::from_slice::<CallRecord>(&line) {
                Ok(record) => {
                    stats.records += 1;
                    each(record);
                }
                Err(_) => stats.skipped_lines += 1,
            }
        }
        progress(stats.bytes, total);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn streams_records_and_counts_bad_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = CallRecord {
            version: 1,
            call_id: "hl-1".into(),
            invite_at: "2026-11-25T03:00:00.000Z".into(),
            ended_at: "2026-11-25T03:00:10.000Z".into(),
            ..CallRecord::default()
        };
        let mut f = File::create(dir.path().join("2026-11-25.jsonl")).expect("create");
        f.write_all(good.to_line().as_bytes()).expect("write");
        f.write_all(b"{\"version\":1,\"call\n").expect("write");
        f.write_all(b"\xff\xfe not utf-8\n").expect("write");
        f.write_all(good.to_line().as_bytes()).expect("write");
        // The agent-attempt stream lives beside records and is not one.
        std::fs::write(dir.path().join("offers-2026-11-25.jsonl"), "{}\n").expect("write");
        std::fs::write(dir.path().join("audit-2026-11-25.jsonl"), "{}\n").expect("write");
        let files = record_files(&[dir.path().to_path_buf()]).expect("files");
        assert_eq!(files.len(), 1);
        let mut seen = Vec::new();
        let stats = for_each_record(&files, |_, _| {}, |r| seen.push(r)).expect("read");
        assert_eq!(seen, vec![good.clone(), good]);
        assert_eq!(stats.records, 2);
        assert_eq!(stats.skipped_lines, 2);
        assert_eq!(stats.files, 1);
    }

    #[test]
    fn times_parse_to_epoch_ms() {
        assert_eq!(
            parse_time_ms("2025-11-25T03:31:38.123Z"),
            Some(1_764_041_498_123)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            record_files(&[dir.path().to_path_buf()]),
            Err(ReadError::NoFiles(_))
        ));
    }
}
