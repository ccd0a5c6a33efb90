//! The media worker's deadlines: one per call slot, in a binary heap so
//! that a wake-up costs O(log n) instead of a scan of every call.
//!
//! Rescheduling a slot does not search the heap: the new deadline is pushed
//! and the slot remembers which entry is current (by a sequence number);
//! older entries are skipped when they reach the top. The heap is compacted
//! when stale entries outnumber live ones, so it stays bounded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    /// Per slot: its current deadline and that entry's sequence number.
    current: Vec<Option<(Instant, u64)>>,
    seq: u64,
    live: usize,
}

impl TimerHeap {
    /// Sets `slot`'s deadline to `at`, replacing any earlier one.
    pub fn schedule(&mut self, slot: usize, at: Instant) {
        if slot >= self.current.len() {
            self.current.resize(slot + 1, None);
        }
        match self.current[slot] {
            Some((t, _)) if t == at => return,
            Some(_) => {}
            None => self.live += 1,
        }
        self.seq += 1;
        self.current[slot] = Some((at, self.seq));
        self.heap.push(Reverse((at, self.seq, slot)));
        if self.heap.len() > 2 * self.live + 64 {
            let current = &self.current;
            self.heap.retain(
                |Reverse((_, seq, slot))| matches!(current[*slot], Some((_, s)) if s == *seq),
            );
        }
    }

    /// Forgets `slot`'s deadline.
    pub fn cancel(&mut self, slot: usize) {
        if let Some(c) = self.current.get_mut(slot) {
            if c.take().is_some() {
                self.live -= 1;
            }
        }
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the slot whose deadline is earliest if it is at or before
    /// `now`; that slot then has no deadline until scheduled again.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        self.drop_stale();
        let Reverse((at, _, slot)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.current[slot] = None;
        self.live -= 1;
        Some(slot)
    }

    /// Live deadlines.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((_, seq, slot))) = self.heap.peek() {
            if matches!(self.current[*slot], Some((_, s)) if s == *seq) {
                return;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pops_due_slots_in_deadline_order() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.schedule(3, t0 + ms(30));
        h.schedule(1, t0 + ms(10));
        h.schedule(2, t0 + ms(20));
        assert_eq!(h.next_deadline(), Some(t0 + ms(10)));
        // At t0 + 20 ms, slots 1 (10 ms) and 2 (20 ms) are due; 3 is not.
        assert_eq!(h.pop_due(t0 + ms(20)), Some(1));
        assert_eq!(h.pop_due(t0 + ms(20)), Some(2));
        assert_eq!(h.pop_due(t0 + ms(20)), None);
        assert_eq!(h.next_deadline(), Some(t0 + ms(30)));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn rescheduling_replaces_the_old_deadline_both_ways() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.schedule(0, t0 + ms(20));
        h.schedule(1, t0 + ms(25));
        // Later: slot 0's 20 ms entry is stale and must not fire.
        h.schedule(0, t0 + ms(40));
        assert_eq!(h.next_deadline(), Some(t0 + ms(25)));
        assert_eq!(h.pop_due(t0 + ms(30)), Some(1));
        assert_eq!(h.pop_due(t0 + ms(30)), None);
        // Earlier: the 40 ms entry becomes stale.
        h.schedule(0, t0 + ms(5));
        assert_eq!(h.pop_due(t0 + ms(5)), Some(0));
        assert_eq!(h.pop_due(t0 + ms(100)), None);
        assert_eq!(h.next_deadline(), None);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn cancelled_slots_never_fire() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.schedule(7, t0 + ms(1));
        h.schedule(8, t0 + ms(2));
        h.cancel(7);
        h.cancel(7); // twice is harmless
        assert_eq!(h.len(), 1);
        assert_eq!(h.pop_due(t0 + ms(10)), Some(8));
        assert_eq!(h.pop_due(t0 + ms(10)), None);
        // A slot reused after cancel gets only its new deadline.
        h.schedule(7, t0 + ms(3));
        assert_eq!(h.pop_due(t0 + ms(10)), Some(7));
        assert_eq!(h.pop_due(t0 + ms(10)), None);
    }

    #[test]
    fn stale_entries_stay_bounded() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        for slot in 0..10 {
            h.schedule(slot, t0 + ms(slot as u64));
        }
        // 10,000 reschedules of 10 live slots: without compaction the heap
        // would hold 10,010 entries; with it, at most 2 * 10 + 64 = 84.
        for i in 0..10_000u64 {
            h.schedule((i % 10) as usize, t0 + ms(100 + i));
        }
        assert_eq!(h.len(), 10);
        assert!(h.heap.len() <= 84, "heap holds {}", h.heap.len());
        // The last deadline of slot s is 100 + (9,990 + s) ms.
        assert_eq!(h.next_deadline(), Some(t0 + ms(100 + 9_990)));
        let mut order = Vec::new();
        while let Some(s) = h.pop_due(t0 + ms(100_000)) {
            order.push(s);
        }
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn same_deadline_twice_adds_no_entry() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.schedule(0, t0 + ms(20));
        h.schedule(0, t0 + ms(20));
        assert_eq!(h.heap.len(), 1);
        assert_eq!(h.pop_due(t0 + ms(20)), Some(0));
        assert_eq!(h.pop_due(t0 + ms(20)), None);
    }
}
