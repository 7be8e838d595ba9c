//! Each profile's slot in the engine's slab, by key.
//!
//! Customer keys are most often small non-negative integers, handed out in sequence.
//! Those are looked up in a table indexed by the key itself: four bytes per key, so a
//! million customers' slots fit in 4 MB, which stays in cache, where a hash map of the same
//! keys takes 40 MB and a cache miss per lookup. Other keys (strings, negative or
//! scattered integers) go to a hash map.

use std::collections::HashMap;

use super::{Key, Slot};

type Hasher = foldhash::fast::RandomState;

/// No slot at this position of the table.
const NONE: u32 = u32::MAX;

/// Integer keys below this always go to the table, however few profiles there are.
const ALWAYS_DENSE: usize = 1 << 16;

#[derive(Default)]
pub struct Slots {
    /// The slot of integer key `k` at position `k`, or [`NONE`].
    dense: Vec<u32>,
    /// The slots of the keys the table does not hold.
    sparse: HashMap<Key, Slot, Hasher>,
    len: usize,
}

impl Slots {
    /// How many keys have a slot.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The slot of `key`, giving it `next` if it has none yet: `(slot, true)` if the key
    /// is new.
    pub fn get_or_insert(&mut self, key: &Key, next: Slot) -> (Slot, bool) {
        if let Some(slot) = self.get(key) {
            return (slot, false);
        }
        self.insert(key.clone(), next);
        (next, true)
    }

    pub fn get(&self, key: &Key) -> Option<Slot> {
        if let Some(at) = self.dense_position(key)
            && let Some(&slot) = self.dense.get(at)
            && slot != NONE
        {
            return Some(slot as Slot);
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get(key).copied()
    }

    /// Gives `key`, which has no slot, the slot `slot`.
    fn insert(&mut self, key: Key, slot: Slot) {
        self.len += 1;
        if let (Some(at), Ok(compact)) = (self.dense_position(&key), u32::try_from(slot))
            && compact != NONE
            && self.fits_dense(at)
        {
            if at >= self.dense.len() {
                let grown = (at + 1).max(self.dense.len() * 2).min(self.dense_limit());
                self.dense.resize(grown, NONE);
            }
            self.dense[at] = compact;
            return;
        }
        self.sparse.insert(key, slot);
    }

    fn dense_position(&self, key: &Key) -> Option<usize> {
        match key {
            Key::Int(k) => usize::try_from(*k).ok(),
            Key::Str(_) => None,
        }
    }

    /// The table grows to at most four positions per key (and [`ALWAYS_DENSE`]), so
    /// scattered keys cannot make it large.
    fn dense_limit(&self) -> usize {
        self.len.saturating_mul(4).max(ALWAYS_DENSE)
    }

    fn fits_dense(&self, at: usize) -> bool {
        at < self.dense.len() || at < self.dense_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_key_finds_the_slot_it_was_given() {
        let mut slots = Slots::default();
        let keys = [
            Key::Int(3),
            Key::Int(0),
            Key::Int(-5),
            Key::Int(i64::MAX),
            Key::Str("a".into()),
            Key::Int(60_000),
            Key::Int(1 << 40),
            Key::Int(4),
        ];
        for (slot, key) in keys.iter().enumerate() {
            assert_eq!(slots.get_or_insert(key, slot), (slot, true), "{key:?}");
        }
        // Negative, scattered and string keys went to the map, the small ones to the table.
        assert_eq!(slots.sparse.len(), 4);
        for (slot, key) in keys.iter().enumerate() {
            assert_eq!(slots.get(key), Some(slot), "{key:?}");
            assert_eq!(slots.get_or_insert(key, 99), (slot, false), "{key:?}");
        }
        assert_eq!(slots.get(&Key::Int(1)), None);
        assert_eq!(slots.get(&Key::Str("b".into())), None);
        assert_eq!(slots.len(), keys.len());
    }

    #[test]
    fn a_key_kept_in_the_map_is_found_after_the_table_grows_past_it() {
        let mut slots = Slots::default();
        slots.get_or_insert(&Key::Int(100_000), 0);
        assert_eq!(slots.sparse.len(), 1);
        for k in 0..30_000 {
            slots.get_or_insert(&Key::Int(k), k as Slot + 1);
        }
        slots.get_or_insert(&Key::Int(110_000), 30_001);
        assert!(
            slots.dense.len() > 100_000,
            "the table grew past the first key"
        );
        assert_eq!(slots.get(&Key::Int(100_000)), Some(0));
        assert_eq!(slots.get_or_insert(&Key::Int(100_000), 7), (0, false));
        assert_eq!(slots.get(&Key::Int(110_000)), Some(30_001));
    }
}
