//! The schedule of time-driven evaluations: which profile to evaluate when.
//!
//! A calendar queue. Entries are kept in buckets of about a minute of clock time, in a
//! sorted map; only the bucket being worked through is a heap. With millions of entries,
//! a single binary heap would touch a cache line per level at every pop, and a day's
//! advance pops hundreds of thousands of them; a bucket's heap stays in cache.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::Slot;

/// Bucket width: 2^36 ns, about 69 seconds.
const BUCKET_BITS: u32 = 36;

fn bucket(at: i64) -> i64 {
    at >> BUCKET_BITS
}

/// Entries (time, profile slot), popped in (time, slot) order.
#[derive(Default)]
pub struct Schedule {
    later: BTreeMap<i64, Vec<(i64, Slot)>>,
    /// The bucket being worked through, and the entries at or before it.
    current: Option<i64>,
    heap: BinaryHeap<Reverse<(i64, Slot)>>,
}

impl Schedule {
    pub fn push(&mut self, at: i64, slot: Slot) {
        let b = bucket(at);
        match self.current {
            Some(current) if b <= current => self.heap.push(Reverse((at, slot))),
            _ => self.later.entry(b).or_default().push((at, slot)),
        }
    }

    /// The earliest entry at or before `time`, removed; `None` if there is none.
    pub fn pop_until(&mut self, time: i64) -> Option<(i64, Slot)> {
        loop {
            if let Some(Reverse((at, _))) = self.heap.peek() {
                if *at > time {
                    return None;
                }
                return self.heap.pop().map(|Reverse(entry)| entry);
            }
            let first = *self.later.keys().next()?;
            if first > bucket(time) {
                return None;
            }
            let entries = self.later.remove(&first).unwrap_or_default();
            self.current = Some(first);
            self.heap = entries.into_iter().map(Reverse).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_in_time_then_key_order_across_buckets() {
        let mut schedule = Schedule::default();
        let minute = 60_000_000_000;
        let times = [5 * minute, 3, 90 * minute, 3, 5 * minute + 1, 2 * minute];
        for (i, t) in times.iter().enumerate() {
            schedule.push(*t, 10 - i as Slot);
        }
        assert_eq!(schedule.pop_until(2), None);
        assert_eq!(schedule.pop_until(3), Some((3, 7)));
        // Pushed while the first bucket is being worked through, earlier than what is left.
        schedule.push(4, 0);
        let mut popped = Vec::new();
        while let Some(entry) = schedule.pop_until(10 * minute) {
            popped.push(entry);
            if popped.len() == 2 {
                // A later entry pushed into a bucket not yet reached.
                schedule.push(3 * minute, 1);
            }
        }
        assert_eq!(
            popped,
            vec![
                (3, 9),
                (4, 0),
                (2 * minute, 5),
                (3 * minute, 1),
                (5 * minute, 10),
                (5 * minute + 1, 6),
            ]
        );
        assert_eq!(schedule.pop_until(i64::MAX), Some((90 * minute, 8)));
        assert_eq!(schedule.pop_until(i64::MAX), None);
    }
}
