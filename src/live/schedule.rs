//! The schedule of time-driven evaluations: which profile to evaluate when.
//!
//! A calendar queue. Entries are kept in buckets of about an hour of clock time, in a
//! sorted map; only the bucket being worked through is sorted. With millions of
//! entries, a single binary heap would touch a cache line per level at every pop, and a
//! day's advance pops hundreds of thousands of them; a bucket stays in cache. Sorted,
//! the bucket also says which profiles come next ([`Schedule::upcoming`]), so their
//! state can be read ahead.
//!
//! A push finds its bucket in a direct-mapped index (the bucket number modulo its size,
//! about 208 days of buckets in 64 KB, which stays in cache) and walks the sorted map only
//! when another bucket holds that entry of the index: the map's walk cost a cache miss
//! per node, and pushes go to buckets all over the coming weeks (every customer's own
//! window ends).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::Slot;

/// Bucket width: 2^42 ns, about 73 minutes. Wide enough that the buckets pushes go to
/// (each customer's window ends, over the coming year) are a few thousand, whose ends stay
/// in cache; narrow enough that sorting one, when the clock reaches it, takes little.
const BUCKET_BITS: u32 = 42;

fn bucket(at: i64) -> i64 {
    at >> BUCKET_BITS
}

/// Entries (time, profile slot), popped in (time, slot) order.
#[derive(Default)]
pub struct Schedule {
    /// The buckets after the current one, by bucket number: their place in `buckets`.
    later: BTreeMap<i64, usize>,
    buckets: Vec<Vec<(i64, Slot)>>,
    /// Places in `buckets` no bucket uses.
    free: Vec<usize>,
    /// (bucket number, place) of buckets after the current one at the entry of their
    /// number modulo [`INDEX_SIZE`] (`i64::MIN` where none): the first bucket given an
    /// entry keeps it until it is worked through. Allocated at the first push.
    index: Vec<(i64, usize)>,
    /// The bucket being worked through.
    current: Option<i64>,
    /// Its entries, latest first, so that the next is last.
    sorted: Vec<(i64, Slot)>,
    /// The entries pushed into it, or before it, since it was sorted.
    heap: BinaryHeap<Reverse<(i64, Slot)>>,
}

/// The entries of the bucket index: 2^12 buckets, about 208 days, in 64 KB.
const INDEX_SIZE: usize = 1 << 12;

fn index_entry(bucket: i64) -> usize {
    (bucket as u64 as usize) & (INDEX_SIZE - 1)
}

impl Schedule {
    pub fn push(&mut self, at: i64, slot: Slot) {
        let b = bucket(at);
        if let Some(current) = self.current
            && b <= current
        {
            self.heap.push(Reverse((at, slot)));
            return;
        }
        if self.index.is_empty() {
            self.index = vec![(i64::MIN, 0); INDEX_SIZE];
        }
        let entry = index_entry(b);
        let place = match self.index[entry] {
            (number, place) if number == b => place,
            (number, _) => {
                let place = match self.later.get(&b) {
                    Some(&place) => place,
                    None => {
                        let place = self.free.pop().unwrap_or_else(|| {
                            self.buckets.push(Vec::new());
                            self.buckets.len() - 1
                        });
                        self.later.insert(b, place);
                        place
                    }
                };
                if number == i64::MIN {
                    self.index[entry] = (b, place);
                }
                place
            }
        };
        self.buckets[place].push((at, slot));
    }

    /// The earliest entry at or before `time`, removed; `None` if there is none.
    pub fn pop_until(&mut self, time: i64) -> Option<(i64, Slot)> {
        loop {
            let sorted = self.sorted.last().copied();
            let pushed = self.heap.peek().map(|Reverse(entry)| *entry);
            let next = match (sorted, pushed) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(entry) = next {
                if entry.0 > time {
                    return None;
                }
                if next == sorted {
                    self.sorted.pop();
                } else {
                    self.heap.pop();
                }
                return Some(entry);
            }
            let (&first, &place) = self.later.first_key_value()?;
            if first > bucket(time) {
                return None;
            }
            self.later.remove(&first);
            if let Some(entry) = self.index.get_mut(index_entry(first))
                && entry.0 == first
            {
                *entry = (i64::MIN, 0);
            }
            let mut entries = std::mem::take(&mut self.buckets[place]);
            self.free.push(place);
            self.current = Some(first);
            entries.sort_unstable_by(|a, b| b.cmp(a));
            self.sorted = entries;
        }
    }

    /// The profiles of the bucket being worked through, next first: those the coming pops
    /// will most likely give (entries pushed since the bucket was sorted aside).
    pub fn upcoming(&self) -> impl Iterator<Item = Slot> + '_ {
        self.sorted.iter().rev().map(|&(_, slot)| slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_and_pops_interleaved_over_many_buckets_come_out_as_from_a_sorted_set() {
        let mut schedule = Schedule::default();
        let mut reference = std::collections::BTreeSet::new();
        let mut state: u64 = 7;
        let mut random = |below: i64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as i64 % below
        };
        let bucket_width = 1i64 << BUCKET_BITS;
        let mut now = 0;
        for round in 0..200 {
            // Entries up to 40 buckets ahead, and some three index sizes ahead.
            for i in 0..50 {
                // Some entries a multiple of the index's size of buckets ahead, sharing
                // the index entry of a nearer bucket.
                let far = if i % 5 == 0 {
                    (1 + random(3)) * INDEX_SIZE as i64 * bucket_width
                } else {
                    0
                };
                let at = now + far + random(40 * bucket_width);
                let slot = random(1_000) as Slot;
                schedule.push(at, slot);
                reference.insert((at, slot));
            }
            now += random(3 * bucket_width);
            while let Some(entry) = schedule.pop_until(now) {
                let expected = reference.pop_first();
                assert_eq!(Some(entry), expected, "round {round}");
            }
            assert!(reference.first().is_none_or(|(at, _)| *at > now));
        }
        while let Some(entry) = schedule.pop_until(i64::MAX) {
            assert_eq!(Some(entry), reference.pop_first());
        }
        assert!(reference.is_empty());
    }

    #[test]
    fn the_upcoming_profiles_are_those_the_next_pops_give() {
        let mut schedule = Schedule::default();
        for (at, slot) in [(30, 3), (10, 1), (20, 2), (40, 4)] {
            schedule.push(at, slot);
        }
        assert_eq!(
            schedule.upcoming().count(),
            0,
            "no bucket is being worked through"
        );
        assert_eq!(schedule.pop_until(10), Some((10, 1)));
        assert_eq!(schedule.upcoming().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(schedule.pop_until(25), Some((20, 2)));
        assert_eq!(schedule.upcoming().collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn entries_come_out_in_time_then_key_order_across_buckets() {
        let mut schedule = Schedule::default();
        let minute = (1i64 << BUCKET_BITS) / 60; // a bucket is an hour here
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
