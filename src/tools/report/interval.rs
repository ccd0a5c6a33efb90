//! Intervals in the operator's local time: a fixed UTC offset, interval
//! lengths that divide a day (so every day starts an interval at local
//! midnight), and the `--from`/`--to` bounds. Pure arithmetic on epoch
//! milliseconds; humantime does the calendar.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

const DAY_MS: u64 = 86_400_000;

/// Why an interval, offset or time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?}: not an interval (15m, 30m, 1h, 1d, or any whole minutes that divide a day)")]
    Interval(String),
    #[error("{0:?}: not a UTC offset (+08:00, -05:30, Z)")]
    Offset(String),
    #[error("{0:?}: not a time (RFC 3339 such as 2026-11-25T08:00:00+08:00, or YYYY-MM-DD)")]
    Time(String),
}

/// A fixed offset from UTC, in seconds east.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UtcOffset(pub i32);

impl UtcOffset {
    pub fn parse(text: &str) -> Result<UtcOffset, TimeError> {
        let bad = || TimeError::Offset(text.to_string());
        let t = text.trim();
        if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
            return Ok(UtcOffset(0));
        }
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'+') => (1, &t[1..]),
            Some(b'-') => (-1, &t[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 14 || m > 59 {
            return Err(bad());
        }
        Ok(UtcOffset(sign * (h * 3600 + m * 60)))
    }

    fn ms(self) -> i64 {
        i64::from(self.0) * 1000
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let s = self.0.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", s / 3600, s % 3600 / 60)
    }
}

/// An interval length that divides a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    ms: u64,
}

impl Interval {
    pub const DAY: Interval = Interval { ms: DAY_MS };

    pub fn parse(text: &str) -> Result<Interval, TimeError> {
        let bad = || TimeError::Interval(text.to_string());
        let d = humantime::parse_duration(text.trim()).map_err(|_| bad())?;
        let ms = u64::try_from(d.as_millis()).map_err(|_| bad())?;
        if ms == 0 || ms % 60_000 != 0 || !DAY_MS.is_multiple_of(ms) {
            return Err(bad());
        }
        Ok(Interval { ms })
    }

    pub fn ms(self) -> u64 {
        self.ms
    }

    /// The start (epoch ms) of the local interval holding `at`.
    pub fn start_of(self, at: u64, offset: UtcOffset) -> u64 {
        let local = at as i64 + offset.ms();
        let start = local.div_euclid(self.ms as i64) * self.ms as i64;
        (start - offset.ms()).max(0) as u64
    }

    /// "15m", "1h", "1d".
    pub fn name(self) -> String {
        match self.ms {
            DAY_MS => "1d".into(),
            ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
            ms => format!("{}m", ms / 60_000),
        }
    }

    /// How an interval starting at `start` is labelled: the local date for
    /// whole days, the local date and time otherwise.
    pub fn label(self, start: u64, offset: UtcOffset) -> String {
        let local = local_rfc3339(start, offset);
        if self.ms == DAY_MS {
            local[..10].to_string()
        } else {
            format!("{} {}", &local[..10], &local[11..16])
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// `at` as local time in RFC 3339 with the offset: "2026-11-25T18:00:00+08:00".
pub fn local_rfc3339(at: u64, offset: UtcOffset) -> String {
    let local = (at as i64 + offset.ms()).max(0) as u64;
    let t = UNIX_EPOCH + Duration::from_millis(local);
    let utc = humantime::format_rfc3339_seconds(t).to_string();
    // humantime writes UTC ("...Z"); the digits are the local time.
    format!("{}{offset}", utc.trim_end_matches('Z'))
}

/// A `--from`/`--to` bound: RFC 3339 (its own offset, or `offset` when it
/// has none), or a date `YYYY-MM-DD` meaning local midnight.
pub fn parse_time(text: &str, offset: UtcOffset) -> Result<u64, TimeError> {
    let bad = || TimeError::Time(text.to_string());
    let t = text.trim();
    let (mut civil, zone) = split_zone(t);
    let zone = match zone {
        Some(z) => UtcOffset::parse(z).map_err(|_| bad())?,
        None => offset,
    };
    let owned;
    if civil.len() == 10 {
        owned = format!("{civil}T00:00:00");
        civil = &owned;
    } else if civil.len() == 16 {
        owned = format!("{civil}:00");
        civil = &owned;
    }
    let local = humantime::parse_rfc3339_weak(civil).map_err(|_| bad())?;
    let local_ms = local
        .duration_since(UNIX_EPOCH)
        .map_err(|_| bad())?
        .as_millis() as i64;
    u64::try_from(local_ms - zone.ms()).map_err(|_| bad())
}

/// Splits a trailing "Z" or "+HH:MM"/"-HH:MM" off a time (after the date).
fn split_zone(t: &str) -> (&str, Option<&str>) {
    if let Some(civil) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        return (civil, Some("Z"));
    }
    if t.len() > 10 {
        if let Some(i) = t[10..].rfind(['+', '-']) {
            let i = i + 10;
            return (&t[..i], Some(&t[i..]));
        }
    }
    (t, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN: UtcOffset = UtcOffset(8 * 3600);

    #[test]
    fn offsets_parse_and_print() {
        assert_eq!(UtcOffset::parse("+08:00"), Ok(CN));
        assert_eq!(
            UtcOffset::parse("-05:30"),
            Ok(UtcOffset(-(5 * 3600 + 1800)))
        );
        assert_eq!(UtcOffset::parse("+0800"), Ok(CN));
        assert_eq!(UtcOffset::parse("Z"), Ok(UtcOffset(0)));
        assert!(UtcOffset::parse("08:00").is_err());
        assert!(UtcOffset::parse("+25:00").is_err());
        assert_eq!(UtcOffset(-(5 * 3600 + 1800)).to_string(), "-05:30");
    }

    #[test]
    fn intervals_divide_a_day() {
        assert_eq!(Interval::parse("15m").map(Interval::ms), Ok(900_000));
        assert_eq!(Interval::parse("1d"), Ok(Interval::DAY));
        assert!(
            Interval::parse("7m").is_err(),
            "1440 is not a multiple of 7"
        );
        assert!(Interval::parse("90s").is_err());
        assert!(Interval::parse("2d").is_err());
    }

    #[test]
    fn days_start_at_local_midnight() {
        // 2026-11-25T17:30:00Z is 2026-11-26 01:30 in +08:00, so its local
        // day started at 2026-11-26T00:00+08:00 = 2026-11-25T16:00:00Z.
        let at = parse_time("2026-11-25T17:30:00Z", CN).expect("time");
        let start = Interval::DAY.start_of(at, CN);
        assert_eq!(start, parse_time("2026-11-25T16:00:00Z", CN).expect("t"));
        assert_eq!(Interval::DAY.label(start, CN), "2026-11-26");
        let q = Interval::parse("15m").expect("15m");
        assert_eq!(q.label(q.start_of(at, CN), CN), "2026-11-26 01:30");
        assert_eq!(local_rfc3339(start, CN), "2026-11-26T00:00:00+08:00");
    }

    #[test]
    fn bounds_take_their_own_offset_or_the_operators() {
        let utc = parse_time("2026-11-25T00:00:00Z", CN).expect("t");
        // A date is local midnight: 8 h before UTC midnight.
        assert_eq!(parse_time("2026-11-25", CN), Ok(utc - 8 * 3_600_000));
        assert_eq!(
            parse_time("2026-11-25T08:00:00+08:00", UtcOffset(0)),
            Ok(utc)
        );
        assert_eq!(parse_time("2026-11-25T08:00", CN), Ok(utc));
        assert_eq!(
            parse_time("2026-11-25T01:00:00.500+01:00", CN),
            Ok(utc + 500)
        );
        assert!(parse_time("yesterday", CN).is_err());
    }
}
