//! Voice messages (留言): each one a WAV file under the messages folder and
//! a JSON line in `<dir>/index.jsonl` describing it.
//!
//! The WAV is written and fsynced before its index line is appended, so a
//! line never points at a recording that is not on disk. Index lines are
//! appended whole and fsynced; a line torn by a crash is sealed with a
//! newline on the next append and skipped by readers.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The index file's name inside the messages folder.
pub const INDEX_FILE: &str = "index.jsonl";

/// Sample rate of message recordings (narrowband telephony).
pub const SAMPLE_RATE: u32 = 8000;

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

/// One voice message, as a line of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// e.g. `msg-<epoch ms>-<n>`; see [`message_id`].
    pub id: String,
    /// The engine's call id (matches the CDR's `call_id`).
    pub call_id: String,
    pub caller_number: String,
    pub caller_name: Option<String>,
    pub dialled_number: String,
    pub business_type: Option<String>,
    pub customer_class: Option<String>,
    /// RFC 3339 UTC with milliseconds.
    pub recorded_at: String,
    pub duration_ms: u64,
    /// `pound`, `silence`, `max_length` or `hangup`.
    pub ended_by: String,
    /// Path of the WAV relative to the messages folder.
    pub file: String,
}

/// A message id: `msg-<epoch ms>-<n>`.
pub fn message_id(epoch_ms: u64, n: u64) -> String {
    format!("msg-{epoch_ms}-{n}")
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
    let mut f = open_append_sealed(&path).map_err(append_err)?;
    f.write_all(line.as_bytes()).map_err(append_err)?;
    f.sync_data().map_err(append_err)
}

/// Opens `path` for appending, creating it. If it does not end in a newline
/// (a line torn by a crash), writes one so the next line stands alone.
///
/// The same rule as `open_sealed` in `runtime::cdr_writer`; kept private here
/// until the two share one helper.
fn open_append_sealed(path: &Path) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(f);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1))?;
    f.read_exact(&mut last)?;
    if last != *b"\n" {
        // Appends go to the end whatever the read position.
        f.write_all(b"\n")?;
    }
    Ok(f)
}

/// Reads the index, skipping (and counting) unparseable lines. A folder
/// with no index yet has no messages.
pub fn read_index(dir: &Path) -> Result<(Vec<MessageRecord>, usize), MessageError> {
    let path = dir.join(INDEX_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => return Err(MessageError::Read { path, source }),
    };
    let mut records = Vec::new();
    let mut skipped = 0;
    // Line by line as bytes: a torn line may end inside a multi-byte
    // character, which must not make the whole file unreadable.
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<MessageRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) => skipped += 1,
        }
    }
    Ok((records, skipped))
}

/// A plain-text table for `hotline messages list`: newest first; columns id, recorded at (UTC),
/// caller (number and name), dialled, business type, class, duration (m:ss), ended by, file.
/// Columns are padded by display width (CJK counts as two columns). Only
/// the header line when there are no records.
pub fn format_table(records: &[MessageRecord]) -> String {
    const HEADER: [&str; 9] = [
        "ID",
        "RECORDED AT (UTC)",
        "CALLER",
        "DIALLED",
        "BUSINESS",
        "CLASS",
        "DURATION",
        "ENDED BY",
        "FILE",
    ];
    let mut order: Vec<(usize, &MessageRecord)> = records.iter().enumerate().collect();
    // Newest first; among equal times, the later line first.
    order.sort_by(|(ia, a), (ib, b)| b.recorded_at.cmp(&a.recorded_at).then(ib.cmp(ia)));

    let mut rows: Vec<[String; 9]> = vec![HEADER.map(String::from)];
    for (_, r) in order {
        let caller = match r.caller_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => format!("{} {}", r.caller_number, name),
            _ => r.caller_number.clone(),
        };
        let row = [
            r.id.clone(),
            show_time(&r.recorded_at),
            caller,
            r.dialled_number.clone(),
            or_dash(r.business_type.as_deref()),
            or_dash(r.customer_class.as_deref()),
            show_duration(r.duration_ms),
            r.ended_by.clone(),
            r.file.clone(),
        ];
        rows.push(row.map(|cell| clean(&cell)));
    }

    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i] - display_width(cell);
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(v: Option<&str>) -> String {
    match v.map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".to_string(),
    }
}

/// `2026-11-25T03:31:38.123Z` as `2026-11-25 03:31:38`; anything else as is.
fn show_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.as_bytes().get(10) == Some(&b'T') => {
            format!("{date} {time}")
        }
        _ => rfc3339.to_string(),
    }
}

/// Minutes and seconds, rounded to the nearest second.
fn show_duration(ms: u64) -> String {
    let secs = ms.saturating_add(500) / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Control characters (a caller name comes from the caller's SIP display
/// name) would break the table: show them as spaces.
fn clean(cell: &str) -> String {
    cell.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Terminal columns a string takes: East Asian wide and full-width
/// characters count two, combining marks and zero-width characters none.
fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
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

    #[test]
    fn table_is_newest_first_and_aligned() {
        let old = record(1, "2025-11-25T03:31:38.123Z");
        let mut new = record(2, "2025-11-26T08:00:05.999Z");
        new.caller_name = Some("Bob\tSmith".into());
        new.business_type = None;
        new.customer_class = None;
        new.duration_ms = 4_600;
        new.ended_by = "silence".into();
        let table = format_table(&[old, new]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("ID "), "{table}");
        assert!(
            lines[1].starts_with("msg-1764041498002-2  2025-11-26 08:00:05  13800138000 Bob Smith"),
            "{table}"
        );
        assert!(lines[1].contains(" 0:05 "), "{table}");
        assert!(lines[2].contains("13800138000 张三"), "{table}");
        assert!(lines[2].contains(" 1:05 "), "{table}");
        assert!(lines[2].contains("宽带报修"), "{table}");
        assert!(
            lines[1].contains("  -  "),
            "missing values shown as -: {table}"
        );

        // Each column starts at the same display column on every line,
        // though row 2's caller name is CJK and row 1's is not.
        let col = |line: &str, needle: &str| {
            let at = line
                .rfind(needle)
                .unwrap_or_else(|| panic!("{needle} in {line}"));
            display_width(&line[..at])
        };
        for (header, row1, row2) in [
            ("DIALLED", "10010", "10010"),
            ("DURATION", "0:05", "1:05"),
            ("ENDED BY", "silence", "pound"),
            ("FILE", "2025-11-25/msg-2", "2025-11-25/msg-1"),
        ] {
            let want = col(lines[0], header);
            assert_eq!(col(lines[1], row1), want, "{header}:\n{table}");
            assert_eq!(col(lines[2], row2), want, "{header}:\n{table}");
        }
        assert!(
            table.lines().all(|l| l == l.trim_end()),
            "no trailing blanks"
        );
        assert_eq!(format_table(&[]).lines().count(), 1);
    }

    #[test]
    fn widths_and_durations() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("张三"), 4);
        assert_eq!(display_width("ＡＢ"), 4);
        assert_eq!(display_width("é"), 1);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(show_duration(0), "0:00");
        assert_eq!(show_duration(59_499), "0:59");
        assert_eq!(show_duration(59_500), "1:00");
        assert_eq!(show_duration(3_725_000), "62:05");
        assert_eq!(show_time("2025-11-25T03:31:38.123Z"), "2025-11-25 03:31:38");
        assert_eq!(show_time("yesterday"), "yesterday");
    }
}
