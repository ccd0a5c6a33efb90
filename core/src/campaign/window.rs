//! When a campaign may call: local hours, days of the week, dates to skip
//! (holidays) and dates to call although their weekday is off (the
//! make-up workdays that Chinese holidays bring, which follow no weekday
//! rule).

use std::collections::BTreeSet;

use crate::time::{LocalTime, DAY_MINUTES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingWindow {
    pub utc_offset_minutes: i32,
    /// Minutes since local midnight: calls start at or after `from` and
    /// before `to` (`from < to`; no overnight windows for notices).
    pub from: u32,
    pub to: u32,
    /// Bit i set: calling on weekday i (0 = Monday).
    pub days: u8,
    /// Local dates (days since 1970-01-01) with no calls.
    pub skip: BTreeSet<i64>,
    /// Local dates with calls whatever their weekday.
    pub work: BTreeSet<i64>,
}

impl CallingWindow {
    /// Whether calls may be placed on this local date.
    fn day_open(&self, day: i64, weekday: u8) -> bool {
        if self.skip.contains(&day) {
            return false;
        }
        self.work.contains(&day) || self.days & (1 << weekday) != 0
    }

    /// The earliest moment at or after `wall_ms` inside the window, or
    /// `None` when there is none in the next two years (a window with no
    /// open day).
    pub fn next_open(&self, wall_ms: u64) -> Option<u64> {
        let t = LocalTime::at(wall_ms, self.utc_offset_minutes);
        if self.day_open(t.day, t.weekday) && (self.from..self.to).contains(&t.minute) {
            return Some(wall_ms);
        }
        // Today's window is still ahead, or the next open day's start.
        if self.day_open(t.day, t.weekday) && t.minute < self.from {
            return Some(LocalTime::wall_ms(
                t.day,
                self.from,
                self.utc_offset_minutes,
            ));
        }
        for ahead in 1..=730 {
            let day = t.day + ahead;
            let weekday = (i64::from(t.weekday) + ahead).rem_euclid(7) as u8;
            if self.day_open(day, weekday) {
                return Some(LocalTime::wall_ms(day, self.from, self.utc_offset_minutes));
            }
        }
        None
    }

    /// A whole-day window in `utc_offset_minutes`: every day, any hour.
    pub fn always(utc_offset_minutes: i32) -> CallingWindow {
        CallingWindow {
            utc_offset_minutes,
            from: 0,
            to: DAY_MINUTES as u32,
            days: 0x7f,
            skip: BTreeSet::new(),
            work: BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::parse_date;

    const H: u64 = 3_600_000;

    fn at(date: &str, hour: u64, minute: u64) -> u64 {
        // Local +08:00.
        let day = parse_date(date).expect("date") as u64;
        day * 24 * H + hour * H + minute * 60_000 - 8 * H
    }

    fn weekdays_9_to_18() -> CallingWindow {
        CallingWindow {
            utc_offset_minutes: 8 * 60,
            from: 9 * 60,
            to: 18 * 60,
            days: 0b0001_1111,
            skip: [parse_date("2026-10-01").expect("d")].into(),
            work: [parse_date("2026-10-11").expect("d")].into(),
        }
    }

    #[test]
    fn inside_the_window_is_now_and_before_it_is_its_start() {
        let w = weekdays_9_to_18();
        // Wednesday 2026-09-30.
        assert_eq!(
            w.next_open(at("2026-09-30", 10, 15)),
            Some(at("2026-09-30", 10, 15))
        );
        assert_eq!(
            w.next_open(at("2026-09-30", 7, 0)),
            Some(at("2026-09-30", 9, 0))
        );
        // 18:00 is past the end: the next open day is Thursday... but
        // 2026-10-01 is a holiday, so Friday.
        assert_eq!(
            w.next_open(at("2026-09-30", 18, 0)),
            Some(at("2026-10-02", 9, 0))
        );
    }

    #[test]
    fn weekends_are_skipped_but_make_up_workdays_are_called() {
        let w = weekdays_9_to_18();
        // Friday evening 2026-10-09 -> Saturday 10th is off, Sunday 11th
        // is a make-up workday.
        assert_eq!(
            w.next_open(at("2026-10-09", 19, 0)),
            Some(at("2026-10-11", 9, 0))
        );
        // Saturday 2026-10-17, an ordinary weekend: Monday.
        assert_eq!(
            w.next_open(at("2026-10-17", 12, 0)),
            Some(at("2026-10-19", 9, 0))
        );
    }

    #[test]
    fn a_window_with_no_day_has_no_next_open() {
        let w = CallingWindow {
            days: 0,
            ..weekdays_9_to_18()
        };
        assert_eq!(
            w.next_open(at("2026-09-30", 10, 0)),
            Some(at("2026-10-11", 9, 0))
        );
        let never = CallingWindow {
            days: 0,
            work: BTreeSet::new(),
            ..weekdays_9_to_18()
        };
        assert_eq!(never.next_open(at("2026-09-30", 10, 0)), None);
        assert_eq!(CallingWindow::always(0).next_open(12_345), Some(12_345));
    }
}
