//! The in-memory vector arena of a shard and exact top-k search over it.
//!
//! All live vectors of a shard sit in one contiguous `Vec<f32>` (row-major, `dims` floats per
//! slot), loaded at open and kept in step with every committed write. A query is one pass of
//! the SIMD dot kernel over that memory: no SQLite cursor, no BLOB decoding per query.
//! Deleting swaps the last slot into the hole, so the arena stays dense. Beside the f32 rows
//! it keeps, per slot, an f16 copy (below), i8 codes and packed sign bits (the approximate
//! scans of `quant.rs`); every copy moves with its row.
//!
//! # Exact search in two passes
//!
//! A flat f32 scan is bound by memory bandwidth (100K × 384 × 4 bytes = 154 MB per query).
//! The arena therefore also keeps every vector rounded to IEEE binary16 (half the bytes) and,
//! per row, `err = ‖v − f16(v)‖₂`. For a unit query `q`, Cauchy–Schwarz bounds the difference
//! between the f16 score and the exact one: `|q·v − q·f16(v)| ≤ ‖q‖·‖v − f16(v)‖ = err`.
//! Adding `slack` for the rounding of both float sums gives, for every row, an interval
//! `[lo, hi]` that is certain to contain the score the f32 kernel computes.
//!
//! Pass 1 streams the f16 copy, keeps the k largest `lo` (their minimum is `τ`) and every row
//! whose `hi ≥ τ` at the time. Pass 2 rescores those candidates with the f32 kernel and takes
//! the top k. Any row of the true top k has `hi ≥ score ≥ k-th best score ≥ τ`, so it is a
//! candidate: the result is identical to a full f32 scan (ids, order, ties and scores), which
//! the differential tests check, at about half the memory traffic.

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
    /// Bound on the rounding error of the two float dot products (see the module docs).
    slack: f32,
    vectors: Vec<f32>,
    /// The vectors rounded to binary16, same layout.
    halves: Vec<u16>,
    /// Per slot, `‖v − f16(v)‖₂` rounded up.
    errs: Vec<f32>,
    /// The vectors as i8 codes with a per-row scale (`v ≈ code · scale`), for the
    /// approximate quantized scan (`quant.rs`).
    codes: Vec<i8>,
    code_scales: Vec<f32>,
    /// Words of packed sign bits per slot (`dims / 64` rounded up).
    words: usize,
    /// The sign bits of every vector (bit `i` of a row is `vᵢ > 0`), `words` u64 per slot,
    /// for the binary scan (`quant.rs`).
    signs: Vec<u64>,
    keys: Vec<u128>,
    rowids: Vec<i64>,
    slot_of: HashMap<i64, usize>,
    /// Reused buffer of `to_f16`.
    scratch: Vec<f32>,
}

/// Rounds `v` to binary16 into `out` (SIMD conversion where the CPU has it), returning
/// `‖v − f16(v)‖₂` rounded up. `scratch` is reused between calls.
fn to_f16(v: &[f32], out: &mut [u16], scratch: &mut Vec<f32>) -> f32 {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    let halves: &mut [half::f16] = out.reinterpret_cast_mut();
    halves.convert_from_f32_slice(v);
    scratch.resize(v.len(), 0.0);
    halves.convert_to_f32_slice(scratch);
    // Eight independent f64 sums (one dependency chain would cost ~4 cycles per element;
    // the order of summing non-negative f64 terms changes the result by ~n·2⁻⁵³ relative,
    // far below the f32 rounding-up below and the scan's slack).
    let mut acc = [0f64; 8];
    for (xs, rs) in v.chunks(8).zip(scratch.chunks(8)) {
        for ((a, &x), &r) in acc.iter_mut().zip(xs).zip(rs) {
            let d = f64::from(x) - f64::from(r);
            *a += d * d;
        }
    }
    let err: f64 = acc.iter().sum();
    // Round the f64 result up into f32 so the stored bound never understates the error.
    let e = err.sqrt();
    let f = e as f32;
    if f64::from(f) < e { f.next_up() } else { f }
}

impl Arena {
    pub fn new(dims: usize) -> Self {
        // A computed dot product of two vectors of norm ≤ 1 is within n·u of the true one
        // (u = 2^-24, sequential or tree summation alike). Both passes round, so 2·n·u, and a
        // factor 2 of margin covers the query's own normalization error and FMA variants.
        let slack = 4.0 * dims as f32 * f32::EPSILON / 2.0 + 1e-6;
        Arena {
            dims,
            slack,
            words: dims.div_ceil(64),
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.rowids.len()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.vectors.reserve(additional * self.dims);
        self.halves.reserve(additional * self.dims);
        self.errs.reserve(additional);
        self.codes.reserve(additional * self.dims);
        self.code_scales.reserve(additional);
        self.signs.reserve(additional * self.words);
        self.keys.reserve(additional);
        self.rowids.reserve(additional);
        self.slot_of.reserve(additional);
    }

    /// Inserts or replaces the vector of `rowid`. `v.len()` must equal the arena's dims.
    pub fn upsert(&mut self, rowid: i64, key: u128, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dims);
        let (d, w) = (self.dims, self.words);
        let slot = match self.slot_of.get(&rowid) {
            Some(&slot) => {
                self.vectors[slot * d..(slot + 1) * d].copy_from_slice(v);
                self.keys[slot] = key;
                slot
            }
            None => {
                let slot = self.rowids.len();
                self.slot_of.insert(rowid, slot);
                self.rowids.push(rowid);
                self.keys.push(key);
                self.vectors.extend_from_slice(v);
                self.halves.resize(self.halves.len() + d, 0);
                self.errs.push(0.0);
                self.codes.resize(self.codes.len() + d, 0);
                self.code_scales.push(0.0);
                self.signs.resize(self.signs.len() + w, 0);
                slot
            }
        };
        crate::quant::sign_bits(v, &mut self.signs[slot * w..(slot + 1) * w]);
        self.code_scales[slot] =
            crate::quant::quantize(v, &mut self.codes[slot * d..(slot + 1) * d]);
        self.errs[slot] = to_f16(
            v,
            &mut self.halves[slot * d..(slot + 1) * d],
            &mut self.scratch,
        );
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
            self.errs[slot] = self.errs[last];
            self.vectors
                .copy_within(last * self.dims..(last + 1) * self.dims, slot * self.dims);
            self.halves
                .copy_within(last * self.dims..(last + 1) * self.dims, slot * self.dims);
            self.codes
                .copy_within(last * self.dims..(last + 1) * self.dims, slot * self.dims);
            self.code_scales[slot] = self.code_scales[last];
            self.signs.copy_within(
                last * self.words..(last + 1) * self.words,
                slot * self.words,
            );
            self.slot_of.insert(moved, slot);
        }
        self.rowids.pop();
        self.keys.pop();
        self.errs.pop();
        self.vectors.truncate(last * self.dims);
        self.halves.truncate(last * self.dims);
        self.codes.truncate(last * self.dims);
        self.code_scales.pop();
        self.signs.truncate(last * self.words);
    }

    /// Slot of `rowid`, if it has a live vector.
    pub fn slot(&self, rowid: i64) -> Option<usize> {
        self.slot_of.get(&rowid).copied()
    }

    /// SQLite rowid of the row in `slot`.
    pub fn rowid_at(&self, slot: usize) -> i64 {
        self.rowids[slot]
    }

    /// The i8 codes of `slot` and their scale.
    pub fn code(&self, slot: usize) -> (&[i8], f32) {
        (
            &self.codes[slot * self.dims..(slot + 1) * self.dims],
            self.code_scales[slot],
        )
    }

    /// The packed sign bits of `slot` (`dims / 64` words, rounded up).
    pub fn signs(&self, slot: usize) -> &[u64] {
        &self.signs[slot * self.words..(slot + 1) * self.words]
    }

    /// The packed sign bits of slots `lo..hi`, consecutive.
    pub fn signs_of(&self, lo: usize, hi: usize) -> &[u64] {
        &self.signs[lo * self.words..hi * self.words]
    }

    /// Record id (as u128) of the row in `slot`.
    pub fn key_at(&self, slot: usize) -> u128 {
        self.keys[slot]
    }

    /// The vector in `slot`.
    pub fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dims..(slot + 1) * self.dims]
    }

    /// Bytes of vector data held in memory (f32, f16, i8 and sign-bit copies, error bounds,
    /// scales).
    pub fn vector_bytes(&self) -> usize {
        self.vectors.len() * 4
            + self.halves.len() * 2
            + self.errs.len() * 4
            + self.codes.len()
            + self.code_scales.len() * 4
            + self.signs.len() * 8
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
        if k == 0 || total == 0 {
            return Vec::new();
        }
        let threads = threads
            .clamp(1, 64)
            .min(total / PARALLEL_MIN_ROWS_PER_THREAD)
            .max(1);
        let passes: Vec<Pass> = if threads == 1 {
            vec![self.first_pass(query, k, threshold, subset, 0, total)]
        } else {
            // The calling thread scans the first chunk while rayon's pool scans the others:
            // a persistent pool costs microseconds per query where spawning threads costs tens.
            let chunk = total.div_ceil(threads);
            let mut passes: Vec<Option<Pass>> = (0..threads).map(|_| None).collect();
            let (first, rest) = passes.split_at_mut(1);
            rayon::in_place_scope(|s| {
                for (i, out) in rest.iter_mut().enumerate() {
                    let t = i + 1;
                    let (lo, hi) = (t * chunk, ((t + 1) * chunk).min(total));
                    s.spawn(move |_| {
                        *out = Some(self.first_pass(query, k, threshold, subset, lo, hi));
                    });
                }
                first[0] = Some(self.first_pass(query, k, threshold, subset, 0, chunk.min(total)));
            });
            // Every slot was filled: the scope returns only after all its spawns finished
            // (a panic in one is re-raised by the scope).
            passes.into_iter().flatten().collect()
        };
        // τ: the k-th largest lower bound over all passes.
        let mut lows: Vec<f32> = passes.iter().flat_map(|p| p.lows.iter().copied()).collect();
        let tau = if lows.len() >= k {
            let (_, kth, _) = lows.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            *kth
        } else {
            f32::NEG_INFINITY
        };
        let dot = kernels::best().dot;
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for &(slot, hi) in passes.iter().flat_map(|p| p.candidates.iter()) {
            if hi < tau {
                continue;
            }
            let slot = slot as usize;
            let score = dot(query, self.vector(slot));
            if score < threshold {
                continue;
            }
            let hit = Scored {
                score,
                key: self.keys[slot],
                rowid: self.rowids[slot],
            };
            if heap.len() < k {
                heap.push(hit);
            } else if let Some(mut worst) = heap.peek_mut()
                && hit < *worst
            {
                *worst = hit;
            }
        }
        let mut hits = heap.into_vec();
        sort_best_first(&mut hits);
        hits
    }

    /// Pass 1 over positions `lo..hi` (of all slots, or of `subset`): f16 scores with their
    /// error intervals, the `k` largest lower bounds, and every row that may still make the
    /// top k.
    fn first_pass(
        &self,
        query: &[f32],
        k: usize,
        threshold: f32,
        subset: Option<&[usize]>,
        lo: usize,
        hi: usize,
    ) -> Pass {
        let dot16 = kernels::best().dot_f16;
        let d = self.dims;
        // Min-heap of the k largest lower bounds; `tau` is its minimum once full.
        let mut lows: BinaryHeap<std::cmp::Reverse<OrdF32>> = BinaryHeap::with_capacity(k + 1);
        let mut tau = f32::NEG_INFINITY;
        let mut candidates = Vec::new();
        let mut consider = |slot: usize| {
            let approx = dot16(query, &self.halves[slot * d..(slot + 1) * d]);
            let e = self.errs[slot] + self.slack;
            let upper = approx + e;
            if upper < threshold || upper < tau {
                return;
            }
            // Slots index a `Vec`, and the arena never holds more than u32::MAX rows
            // (that would be 6 TB of 384-d vectors).
            candidates.push((slot as u32, upper));
            let lower = approx - e;
            if lows.len() < k {
                lows.push(std::cmp::Reverse(OrdF32(lower)));
            } else if let Some(mut min) = lows.peek_mut()
                && lower > min.0.0
            {
                *min = std::cmp::Reverse(OrdF32(lower));
            }
            if lows.len() == k {
                tau = lows.peek().map_or(f32::NEG_INFINITY, |m| m.0.0);
            }
        };
        match subset {
            None => (lo..hi).for_each(&mut consider),
            Some(slots) => slots[lo..hi].iter().copied().for_each(&mut consider),
        }
        Pass {
            lows: lows.into_iter().map(|r| r.0.0).collect(),
            candidates,
        }
    }
}

/// What one first pass hands to the rescoring pass.
struct Pass {
    lows: Vec<f32>,
    candidates: Vec<(u32, f32)>,
}

/// An f32 with a total order (scores are always finite here).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct OrdF32(pub f32);
impl Eq for OrdF32 {}
impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Below this many rows per thread, splitting a scan costs more (thread start-up) than it saves.
const PARALLEL_MIN_ROWS_PER_THREAD: usize = 2_048;

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

    /// Every derived copy (f16, error bound, i8 codes and scale, sign bits) stays with its
    /// row through replacements and swap-removes: after a random sequence of writes each live
    /// slot holds exactly what a fresh encoding of its vector gives.
    #[test]
    fn swap_remove_keeps_every_copy_with_its_row() {
        // 70 dims: two words of sign bits, the second one partly used.
        const D: usize = 70;
        let mut x = 7u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        let mut a = Arena::new(D);
        let mut live: HashMap<i64, Vec<f32>> = HashMap::new();
        for step in 0..2_000 {
            let rowid = (next() % 64) as i64;
            if next() % 3 == 0 {
                a.remove(rowid);
                live.remove(&rowid);
            } else {
                let v: Vec<f32> = (0..D)
                    .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                    .collect();
                a.upsert(rowid, rowid as u128 * 3, &v);
                live.insert(rowid, v);
            }
            assert_eq!(a.len(), live.len(), "step {step}");
        }
        assert!(live.len() > 10);
        let mut scratch = Vec::new();
        for (&rowid, v) in &live {
            let slot = a.slot(rowid).unwrap();
            assert_eq!(a.rowid_at(slot), rowid);
            assert_eq!(a.key_at(slot), rowid as u128 * 3);
            assert_eq!(a.vector(slot), &v[..]);
            let mut halves = vec![0u16; D];
            let err = to_f16(v, &mut halves, &mut scratch);
            assert_eq!(&a.halves[slot * D..(slot + 1) * D], &halves[..]);
            assert_eq!(a.errs[slot], err);
            let mut codes = vec![0i8; D];
            let scale = crate::quant::quantize(v, &mut codes);
            assert_eq!(a.code(slot), (&codes[..], scale));
            let mut signs = vec![0u64; 2];
            crate::quant::sign_bits(v, &mut signs);
            assert_eq!(a.signs(slot), &signs[..]);
        }
        let n = live.len();
        assert_eq!(a.vector_bytes(), n * (D * 4 + D * 2 + 4 + D + 4 + 2 * 8));
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
