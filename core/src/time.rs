//! A timer queue for the pure core: the engine pushes "wake `key` at `at`"
//! whenever a deadline changes; stale entries are harmless because every
//! owner re-checks its own deadlines when woken.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TimerQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Clone> TimerQueue<K> {
    pub fn schedule(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest instant anyone asked to be woken at.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns one key due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, k))| k),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Wall-clock time for records, derived from one `(Instant, epoch ms)`
/// pair the shell gave at start: the core never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    pub base: Instant,
    /// Milliseconds since the Unix epoch at `base`.
    pub base_ms: u64,
    /// The node's name when several share a store: part of every record
    /// id, so that records from several nodes merge.
    pub node: Option<NodeTag>,
}

/// A node's name (at most 32 ASCII letters, digits, `-`, `_`, as the
/// config checks), kept inline so that the clock stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeTag {
    bytes: [u8; 32],
    len: u8,
}

impl NodeTag {
    /// `None` for an empty, too long or non-ASCII name.
    pub fn new(name: &str) -> Option<NodeTag> {
        if name.is_empty() || name.len() > 32 || !name.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(NodeTag {
            bytes,
            len: name.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl WallClock {
    /// The instant of wall-clock `ms`, past or future (the inverse of
    /// [`ms`](Self::ms); before the process started if need be).
    pub fn at(&self, ms: u64) -> Instant {
        if ms >= self.base_ms {
            self.base + Duration::from_millis(ms - self.base_ms)
        } else {
            self.base
                .checked_sub(Duration::from_millis(self.base_ms - ms))
                .unwrap_or(self.base)
        }
    }

    /// Wall-clock ms at `at`.
    pub fn ms(&self, at: Instant) -> u64 {
        if at >= self.base {
            self.base_ms + (at - self.base).as_millis() as u64
        } else {
            self.base_ms
                .saturating_sub((self.base - at).as_millis() as u64)
        }
    }
}

/// A wall-clock moment in a fixed UTC offset (the operators' zones have
/// no daylight saving): its local date and minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Days since 1970-01-01, local.
    pub day: i64,
    /// Minutes since local midnight.
    pub minute: u32,
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
}

pub const MINUTE_MS: u64 = 60_000;
pub const DAY_MINUTES: i64 = 24 * 60;

impl LocalTime {
    pub fn at(wall_ms: u64, utc_offset_minutes: i32) -> LocalTime {
        let local_minutes = (wall_ms / MINUTE_MS) as i64 + i64::from(utc_offset_minutes);
        let day = local_minutes.div_euclid(DAY_MINUTES);
        LocalTime {
            day,
            minute: local_minutes.rem_euclid(DAY_MINUTES) as u32,
            // 1970-01-01 was a Thursday (3 counting from Monday = 0).
            weekday: (day + 3).rem_euclid(7) as u8,
        }
    }

    /// Wall-clock ms of local `day` at `minute` in the offset.
    pub fn wall_ms(day: i64, minute: u32, utc_offset_minutes: i32) -> u64 {
        let local = day * DAY_MINUTES + i64::from(minute) - i64::from(utc_offset_minutes);
        (local.max(0) as u64) * MINUTE_MS
    }
}

/// The instant unit tests start their simulated time from: the one clock
/// read the core's own tests make (an `Instant` cannot be built any other
/// way). Everything after it is `t0 + duration`.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wall_clock_time_maps_to_its_instant_before_and_after_the_start() {
        let base = test_epoch() + Duration::from_secs(3600);
        let clock = WallClock {
            base,
            base_ms: 1_796_500_000_000,
            node: None,
        };
        let later = base + Duration::from_millis(1_234);
        assert_eq!(clock.at(clock.ms(later)), later);
        let earlier = base - Duration::from_secs(60);
        assert_eq!(clock.at(1_796_500_000_000 - 60_000), earlier);
        assert_eq!(clock.ms(earlier), 1_796_500_000_000 - 60_000);
    }
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order() {
        let t0 = crate::time::test_epoch();
        let mut q = TimerQueue::default();
        q.schedule(t0 + Duration::from_secs(2), "b");
        q.schedule(t0 + Duration::from_secs(1), "a");
        assert_eq!(q.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        assert_eq!(q.pop_due(t0 + Duration::from_secs(5)), Some("a"));
        assert_eq!(q.pop_due(t0 + Duration::from_secs(5)), Some("b"));
        assert!(q.is_empty());
    }

    #[test]
    fn local_time_in_a_fixed_offset() {
        // 2026-12-06T01:30:00Z is Sunday 09:30 in +08:00.
        let t = LocalTime::at(1_796_520_600_000, 8 * 60);
        assert_eq!((t.minute, t.weekday), (9 * 60 + 30, 6));
        assert_eq!(
            LocalTime::wall_ms(t.day, t.minute, 8 * 60),
            1_796_520_600_000
        );
        let utc = LocalTime::at(1_796_520_600_000, 0);
        assert_eq!((utc.day, utc.minute), (t.day, 90));
    }
}
