//! `hotline messages list`: the voice messages as a table for a terminal.

use crate::voicemail::MessageRecord;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voicemail::message_id;

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
