//! The in-memory vector arena of a shard and exact top-k search over it.
//!
//! All live vectors of a shard sit in one contiguous `Vec<f32>` (row-major, `dims` floats per
//! slot), loaded at open and kept in step with every committed write. A query is one pass of
//! the SIMD dot kernel over that memory: no SQLite cursor, no BLOB decoding per query.
//! Deleting swaps the last slot into the hole, so the arena stays dense.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::kernels;

/// One scored slot. Ordered so that the *worst* hit is the greatest: lower score first, and
/// on equal scores the larger record id (ties go to the older id, which sorts first).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub score: f32,
    pub key: u128,
    pub rowid: i64,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    /// "Greater" means "worse": the max-heap root is the hit to evict first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.key.cmp(&other.key))
    }
}

/// Sorts hits best first: score descending, then record id ascending.
pub(crate) fn sort_best_first(hits: &mut [Scored]) {
    hits.sort_unstable();
}

/// Contiguous vectors plus the mapping between slots, SQLite rowids and record ids.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    dims: usize,
    vectors: Vec<f32>,
    keys: Vec<u128>,
    rowids: Vec<i64>,
    slot_of: HashMap<i64, usize>,
}

impl Arena {
    pub fn new(dims: usize) -> Self {
        Arena {
            dims,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.rowids.len()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.vectors.reserve(additional * self.dims);
        self.keys.reserve(additional);
        self.rowids.reserve(additional);
        self.slot_of.reserve(additional);
    }

    /// Inserts or replaces the vector of `rowid`. `v.len()` must equal the arena's dims.
    pub fn upsert(&mut self, rowid: i64, key: u128, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dims);
        match self.slot_of.get(&rowid) {
            Some(&slot) => {
                self.vectors[slot * self.dims..(slot + 1) * self.dims].copy_from_slice(v);
                self.keys[slot] = key;
            }
            None => {
                self.slot_of.insert(rowid, self.rowids.len());
                self.rowids.push(rowid);
                self.keys.push(key);
                self.vectors.extend_from_slice(v);
            }
        }
    }

    /// Removes `rowid` if present (swap-remove keeps the arena dense).
    pub fn remove(&mut self, rowid: i64) {
        let Some(slot) = self.slot_of.remove(&rowid) else {
            return;
        };
        let last = self.rowids.len() - 1;
        if slot != last {
            let moved = self.rowids[last];
            self.rowids[slot] = moved;
            self.keys[slot] = self.keys[last];
            self.vectors
                .copy_within(last * self.dims..(last + 1) * self.dims, slot * self.dims);
            self.slot_of.insert(moved, slot);
        }
        self.rowids.pop();
        self.keys.pop();
        self.vectors.truncate(last * self.dims);
    }

    /// Slot of `rowid`, if it has a live vector.
    pub fn slot(&self, rowid: i64) -> Option<usize> {
        self.slot_of.get(&rowid).copied()
    }

    /// The vector in `slot`.
    pub fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dims..(slot + 1) * self.dims]
    }

    /// Bytes of vector data held in memory.
    pub fn vector_bytes(&self) -> usize {
        self.vectors.len() * 4
    }

    /// Exact top-`k` over all slots (`subset == None`) or the given slots, best first.
    /// Hits scoring below `threshold` are skipped. Large scans are split over `threads`.
    pub fn top_k(
        &self,
        query: &[f32],
        k: usize,
        threshold: f32,
        subset: Option<&[usize]>,
        threads: usize,
    ) -> Vec<Scored> {
        let total = subset.map_or(self.len(), <[usize]>::len);
        let threads = threads
            .clamp(1, 64)
            .min(total / PARALLEL_MIN_ROWS_PER_THREAD)
            .max(1);
        let mut hits = if threads == 1 {
            self.scan(query, k, threshold, subset, 0, total)
        } else {
            let chunk = total.div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (lo, hi) = (t * chunk, ((t + 1) * chunk).min(total));
                        s.spawn(move || self.scan(query, k, threshold, subset, lo, hi))
                    })
                    .collect();
                let mut merged = Vec::with_capacity(k * threads);
                for h in handles {
                    // A scan never panics on valid slots; if it did, re-raise it here.
                    merged.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
                merged
            })
        };
        sort_best_first(&mut hits);
        hits.truncate(k);
        hits
    }

    /// Scans positions `lo..hi` (of all slots, or of `subset`) keeping the best `k`.
    fn scan(
        &self,
        query: &[f32],
        k: usize,
        threshold: f32,
        subset: Option<&[usize]>,
        lo: usize,
        hi: usize,
    ) -> Vec<Scored> {
        let dot = kernels::best().dot;
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        // Score that a candidate must beat once the heap is full.
        let mut floor = f32::NEG_INFINITY;
        let mut consider = |slot: usize| {
            let score = dot(query, self.vector(slot));
            if score < threshold || score < floor {
                return;
            }
            let hit = Scored {
                score,
                key: self.keys[slot],
                rowid: self.rowids[slot],
            };
            if heap.len() < k {
                heap.push(hit);
            } else if let Some(mut worst) = heap.peek_mut() {
                if hit < *worst {
                    *worst = hit;
                }
            }
            if heap.len() == k {
                floor = heap.peek().map_or(f32::NEG_INFINITY, |w| w.score);
            }
        };
        match subset {
            None => (lo..hi).for_each(&mut consider),
            Some(slots) => slots[lo..hi].iter().copied().for_each(&mut consider),
        }
        heap.into_vec()
    }
}

/// Below this many rows per thread, splitting a scan costs more (thread start-up) than it saves.
const PARALLEL_MIN_ROWS_PER_THREAD: usize = 16_384;

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(rows: &[(i64, [f32; 2])]) -> Arena {
        let mut a = Arena::new(2);
        for &(r, v) in rows {
            a.upsert(r, r as u128, &v);
        }
        a
    }

    #[test]
    fn top_k_orders_by_score_then_id() {
        let a = arena(&[
            (3, [1.0, 0.0]),
            (1, [1.0, 0.0]),
            (2, [0.0, 1.0]),
            (4, [0.6, 0.8]),
        ]);
        let hits = a.top_k(&[1.0, 0.0], 3, f32::NEG_INFINITY, None, 1);
        let rows: Vec<i64> = hits.iter().map(|h| h.rowid).collect();
        assert_eq!(rows, vec![1, 3, 4]);
    }

    #[test]
    fn threshold_and_subset() {
        let a = arena(&[(1, [1.0, 0.0]), (2, [0.0, 1.0]), (3, [0.6, 0.8])]);
        let hits = a.top_k(&[1.0, 0.0], 10, 0.5, None, 1);
        assert_eq!(hits.iter().map(|h| h.rowid).collect::<Vec<_>>(), vec![1, 3]);
        let only = [a.slot(2).unwrap()];
        let hits = a.top_k(&[1.0, 0.0], 10, -1.0, Some(&only), 1);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rowid, 2);
    }

    #[test]
    fn remove_keeps_slots_consistent() {
        let mut a = arena(&[(1, [1.0, 0.0]), (2, [0.0, 1.0]), (3, [0.6, 0.8])]);
        a.remove(1);
        a.remove(42);
        assert_eq!(a.len(), 2);
        assert_eq!(a.vector(a.slot(3).unwrap()), &[0.6, 0.8]);
        assert_eq!(a.vector(a.slot(2).unwrap()), &[0.0, 1.0]);
        a.upsert(2, 2, &[1.0, 0.0]);
        assert_eq!(a.vector(a.slot(2).unwrap()), &[1.0, 0.0]);
        a.remove(3);
        a.remove(2);
        assert_eq!(a.len(), 0);
        assert_eq!(a.vector_bytes(), 0);
    }

    #[test]
    fn parallel_scan_equals_serial() {
        let mut a = Arena::new(4);
        let mut x = 1u64;
        for r in 0..40_000i64 {
            let mut v = [0f32; 4];
            for c in &mut v {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *c = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            a.upsert(r, r as u128, &v);
        }
        let q = [0.5, -0.5, 0.5, -0.5];
        let serial = a.top_k(&q, 25, f32::NEG_INFINITY, None, 1);
        let parallel = a.top_k(&q, 25, f32::NEG_INFINITY, None, 2);
        assert_eq!(
            serial.iter().map(|h| h.rowid).collect::<Vec<_>>(),
            parallel.iter().map(|h| h.rowid).collect::<Vec<_>>()
        );
    }
}
