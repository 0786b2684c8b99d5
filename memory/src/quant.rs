//! The approximate scans ([`SearchMode::Quantized`](crate::SearchMode::Quantized) and
//! [`SearchMode::Binary`](crate::SearchMode::Binary)): a cheap first pass over every row
//! (or every row a filter leaves) keeps the `rescore` best rows by an estimate of their
//! score, and the f32 kernel rescores them. The returned scores are exact and the threshold
//! applies to them; only the choice of rows is approximate. Both estimates share the first
//! pass (rows estimated in blocks; per thread, the nearest `rescore` kept by linear-time
//! selection; the threads' merged into the global nearest `rescore`, so the rescored set does
//! not depend on the thread count) and the rescoring.
//!
//! # i8 calibration
//!
//! A fixed mapping of [-1, 1] onto [-127, 127] (usearch's i8) wastes most of the code range
//! on embeddings: the components of a 384-d unit vector are mostly within ±0.15, so they get
//! a handful of levels and recall@10 stalls near 0.83. Here every row is calibrated on its own
//! data: `scale = max|vᵢ| / 127`, `code = round(v / scale)`, so each row uses the full i8
//! range (rounding error ≤ `scale / 2` per component). The query is quantized the same way and
//! the approximate cosine is `Σ codeᵢ·qcodeᵢ · scale · qscale`, an exact integer sum times two
//! floats. 384 + 4 bytes per row are read instead of 768 (f16) or 1,536 (f32).
//!
//! # Sign bits
//!
//! The binary estimate keeps one bit per component, `vᵢ > 0`, packed into u64 words (384
//! dims: 6 words, 48 bytes per row), and ranks rows by the Hamming distance between their bits
//! and the query's: the number of components whose signs disagree, one `popcnt` per word. For
//! unit vectors that count estimates the angle (for random hyperplanes, exactly:
//! `P[bit differs] = θ/π`), coarsely: it takes a few hundred candidates where the i8 estimate
//! needs tens for the same recall. The bits are of the raw vector, not of the vector minus a
//! per-shard mean. All-MiniLM embeddings are not centred (their mean has norm 0.28, and
//! some components are positive in a third of the rows, others in two thirds), but on 43K
//! real ones centring raised recall@10 only from 0.971 to 0.975 at 100 candidates and from
//! 0.9969 to 0.9977 at 400 (1,000 queries): less than doubling the candidates does, and a
//! mean that moves as rows change would need every row's bits recomputed now and then.

use std::cmp::Reverse;

use crate::arena::{Arena, OrdF32, Scored, sort_best_first};
use crate::kernels;

/// Quantizes `v` into `out` (same length) and returns the row's scale. An all-zero vector
/// (impossible for a unit-length embedding) gets scale 0 and all-zero codes.
pub(crate) fn quantize(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.fill(0);
        return 0.0;
    }
    let scale = max / 127.0;
    let inv = 127.0 / max;
    for (o, &x) in out.iter_mut().zip(v) {
        // Round half away from zero by truncation: `round` is a libm call per element on
        // baseline x86-64 (no SSE4.1), this is a vectorized add and convert. |y| ≤ 127.
        let y = x * inv;
        *o = (y + 0.5f32.copysign(y)) as i8;
    }
    scale
}

/// Packs the signs of `v` into `out`: bit `i % 64` of word `i / 64` is `vᵢ > 0`. `out` must
/// hold `v.len() / 64` words rounded up; the bits past `v.len()` stay zero (in rows and
/// queries alike, so they never add to a distance).
pub(crate) fn sign_bits(v: &[f32], out: &mut [u64]) {
    debug_assert_eq!(out.len(), v.len().div_ceil(64));
    for (word, xs) in out.iter_mut().zip(v.chunks(64)) {
        *word = xs
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &x)| w | (u64::from(x > 0.0) << i));
    }
}

/// Rows per thread below which the i8 scan stays on the calling thread.
const I8_MIN_ROWS_PER_THREAD: usize = 4_096;
/// The same for the binary scan, whose rows cost a few nanoseconds each: a smaller split
/// spends more on handing work to the pool than it saves.
const BINARY_MIN_ROWS_PER_THREAD: usize = 16_384;

/// Top-`k` over all slots (or `subset`) by the i8 estimate, the `rescore` (≥ k) best
/// candidates rescored with f32; hits below `threshold` are dropped. Best first.
pub(crate) fn top_k_i8(
    arena: &Arena,
    query: &[f32],
    k: usize,
    threshold: f32,
    subset: Option<&[usize]>,
    rescore: usize,
    threads: usize,
) -> Vec<Scored> {
    let mut qcodes = vec![0i8; query.len()];
    let qscale = quantize(query, &mut qcodes);
    let dot_i8 = kernels::best().dot_i8;
    let scan = Scan {
        arena,
        query,
        k,
        threshold,
        subset,
        rescore,
        threads,
        min_rows_per_thread: I8_MIN_ROWS_PER_THREAD,
    };
    // A higher estimated cosine is nearer.
    scan.run(|rows: Rows<'_>, out: &mut [Reverse<OrdF32>]| {
        for (o, slot) in out.iter_mut().zip(rows.slots()) {
            let (codes, scale) = arena.code(slot);
            *o = Reverse(OrdF32(dot_i8(&qcodes, codes) as f32 * scale * qscale));
        }
    })
}

/// Top-`k` over all slots (or `subset`) by the Hamming distance of sign bits, the `rescore`
/// (≥ k) nearest candidates rescored with f32; hits below `threshold` are dropped. Best first.
pub(crate) fn top_k_binary(
    arena: &Arena,
    query: &[f32],
    k: usize,
    threshold: f32,
    subset: Option<&[usize]>,
    rescore: usize,
    threads: usize,
) -> Vec<Scored> {
    let mut qbits = vec![0u64; query.len().div_ceil(64)];
    sign_bits(query, &mut qbits);
    let kernel = kernels::best();
    let scan = Scan {
        arena,
        query,
        k,
        threshold,
        subset,
        rescore,
        threads,
        min_rows_per_thread: BINARY_MIN_ROWS_PER_THREAD,
    };
    scan.run(|rows: Rows<'_>, out: &mut [u32]| match rows {
        // Consecutive slots: one kernel call for the block.
        Rows::Range(lo, hi) => (kernel.hamming_rows)(&qbits, arena.signs_of(lo, hi), out),
        Rows::Slots(slots) => {
            for (o, &slot) in out.iter_mut().zip(slots) {
                *o = (kernel.hamming)(&qbits, arena.signs(slot));
            }
        }
    })
}

/// One approximate search: what to scan, and how much to rescore.
struct Scan<'a> {
    arena: &'a Arena,
    query: &'a [f32],
    k: usize,
    threshold: f32,
    subset: Option<&'a [usize]>,
    rescore: usize,
    threads: usize,
    min_rows_per_thread: usize,
}

/// A block of rows handed to an estimator: consecutive slots `lo..hi`, or listed slots.
#[derive(Clone, Copy)]
enum Rows<'a> {
    Range(usize, usize),
    Slots(&'a [usize]),
}

impl Rows<'_> {
    fn slots(self) -> impl Iterator<Item = usize> {
        let (range, list) = match self {
            Rows::Range(lo, hi) => (lo..hi, None),
            Rows::Slots(s) => (0..0, Some(s.iter().copied())),
        };
        range.chain(list.into_iter().flatten())
    }
}

/// A first-pass candidate: its estimated distance (smaller is nearer), then its slot, lower
/// slots winning ties so that the kept set does not depend on how the scan was split.
type Candidate<D> = (D, u32);

/// Leaves the `keep` smallest of `c` (all of them if there are fewer), the largest of those
/// last.
fn nearest<T: Ord>(c: &mut Vec<T>, keep: usize) {
    if c.len() > keep && keep > 0 {
        c.select_nth_unstable(keep - 1);
        c.truncate(keep);
    }
}

/// Candidates ahead of the one being rescored whose vectors are prefetched.
const PREFETCH_AHEAD: usize = 4;

/// Rows estimated per call of the estimator: its output fits in L1, and a block is long
/// enough that the call costs nothing next to the rows.
const BLOCK: usize = 256;

impl Scan<'_> {
    /// Estimates every row's distance with `estimate` (which fills one distance per row of
    /// a block), keeps the nearest `max(rescore, k)`, rescores those with f32 and returns the
    /// top k at or above the threshold.
    fn run<D, E>(&self, estimate: E) -> Vec<Scored>
    where
        D: Ord + Copy + Default + Send,
        E: Fn(Rows<'_>, &mut [D]) + Sync,
    {
        let total = self.subset.map_or(self.arena.len(), <[usize]>::len);
        if self.k == 0 || total == 0 {
            return Vec::new();
        }
        let keep = self.rescore.max(self.k);
        let threads = self
            .threads
            .clamp(1, 64)
            .min(total / self.min_rows_per_thread)
            .max(1);
        let mut candidates: Vec<Candidate<D>> = if threads == 1 {
            self.first_pass(&estimate, keep, 0, total)
        } else {
            // The calling thread scans the first chunk while rayon's pool scans the others.
            let chunk = total.div_ceil(threads);
            let mut parts: Vec<Vec<Candidate<D>>> = vec![Vec::new(); threads];
            let (first, rest) = parts.split_at_mut(1);
            rayon::in_place_scope(|s| {
                for (i, out) in rest.iter_mut().enumerate() {
                    let t = i + 1;
                    let (lo, hi) = (t * chunk, ((t + 1) * chunk).min(total));
                    let estimate = &estimate;
                    s.spawn(move |_| *out = self.first_pass(estimate, keep, lo.min(hi), hi));
                }
                first[0] = self.first_pass(&estimate, keep, 0, chunk.min(total));
            });
            parts.concat()
        };
        // Each chunk kept its own nearest `keep`; the global nearest `keep` are among them,
        // and `Candidate`'s order is total, so the set equals a serial scan's.
        nearest(&mut candidates, keep);
        self.rescore(candidates.into_iter().map(|(_, slot)| slot))
    }

    /// The nearest `keep` rows among positions `lo..hi` (of all slots, or of the subset).
    fn first_pass<D: Ord + Copy + Default>(
        &self,
        estimate: &impl Fn(Rows<'_>, &mut [D]),
        keep: usize,
        lo: usize,
        hi: usize,
    ) -> Vec<Candidate<D>> {
        // Rows nearer than the `keep`-th nearest so far go to `kept`; when it holds twice
        // `keep`, the nearest `keep` stay (a linear-time selection) and the farthest of them
        // becomes the bar. Amortized, a row costs one comparison and an accepted one O(1),
        // where a heap pays a sift of log(keep) levels per accepted row.
        let mut kept: Vec<Candidate<D>> = Vec::with_capacity((2 * keep).min(hi - lo));
        let mut bar: Option<Candidate<D>> = None;
        let mut consider = |d: D, slot: usize| {
            // Slots index a `Vec`, and the arena never holds more than u32::MAX rows (that
            // would be 6 TB of 384-d vectors).
            let c = (d, slot as u32);
            if bar.is_some_and(|b| c >= b) {
                return;
            }
            kept.push(c);
            if kept.len() == 2 * keep {
                nearest(&mut kept, keep);
                bar = kept.last().copied();
            }
        };
        let mut out = [D::default(); BLOCK];
        for start in (lo..hi).step_by(BLOCK) {
            let end = (start + BLOCK).min(hi);
            let out = &mut out[..end - start];
            match self.subset {
                None => {
                    estimate(Rows::Range(start, end), out);
                    for (i, &d) in out.iter().enumerate() {
                        consider(d, start + i);
                    }
                }
                Some(s) => {
                    let slots = &s[start..end];
                    estimate(Rows::Slots(slots), out);
                    for (&d, &slot) in out.iter().zip(slots) {
                        consider(d, slot);
                    }
                }
            }
        }
        nearest(&mut kept, keep);
        kept
    }

    /// Exact f32 scores of `slots`, the top k of them at or above the threshold, best first.
    fn rescore(&self, slots: impl Iterator<Item = u32>) -> Vec<Scored> {
        let mut slots: Vec<u32> = slots.collect();
        // In memory order: neighbouring candidates share cache lines and pages.
        slots.sort_unstable();
        let dot = kernels::best().dot;
        let mut hits: Vec<Scored> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, &slot)| {
                if let Some(&ahead) = slots.get(i + PREFETCH_AHEAD) {
                    kernels::prefetch(self.arena.vector(ahead as usize));
                }
                let slot = slot as usize;
                let score = dot(self.query, self.arena.vector(slot));
                (score >= self.threshold).then(|| Scored {
                    score,
                    key: self.arena.key_at(slot),
                    rowid: self.arena.rowid_at(slot),
                })
            })
            .collect();
        if hits.len() > self.k {
            // `Scored` orders best first: the k best, then only they are sorted.
            hits.select_nth_unstable(self.k - 1);
            hits.truncate(self.k);
        }
        sort_best_first(&mut hits);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_uses_the_full_range_and_round_trips() {
        let v = [0.05f32, -0.1, 0.02, 0.0];
        let mut c = [0i8; 4];
        let s = quantize(&v, &mut c);
        assert_eq!(c[1], -127);
        for (x, q) in v.iter().zip(c) {
            assert!((x - f32::from(q) * s).abs() <= s / 2.0 + 1e-7);
        }
        assert_eq!(quantize(&[0.0, 0.0], &mut [0i8; 2]), 0.0);
    }

    #[test]
    fn sign_bits_pack_positive_components_low_bit_first() {
        let mut v = vec![-0.5f32; 70];
        v[0] = 0.1;
        v[63] = 0.2;
        v[64] = 0.3;
        v[69] = 1e-30;
        v[5] = 0.0; // not positive
        v[6] = -0.0;
        let mut out = [u64::MAX; 2];
        sign_bits(&v, &mut out);
        assert_eq!(out, [1 | (1 << 63), 1 | (1 << 5)]);
    }

    fn toy() -> Arena {
        let mut a = Arena::new(3);
        let rows = [
            [1.0f32, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.6, 0.8, 0.0],
            [0.8, 0.6, 0.0],
            [-0.6, 0.0, -0.8],
        ];
        for (i, v) in rows.iter().enumerate() {
            a.upsert(i as i64, i as u128, v);
        }
        a
    }

    fn rowids(hits: &[Scored]) -> Vec<i64> {
        hits.iter().map(|h| h.rowid).collect()
    }

    #[test]
    fn both_scans_find_the_exact_top_when_rescoring_everything() {
        let a = toy();
        let q = [0.9f32, 0.435_889_9, 0.0];
        let exact = a.top_k(&q, 3, -1.0, None, 1);
        for scan in [top_k_i8, top_k_binary] {
            let got = scan(&a, &q, 3, -1.0, None, 5, 1);
            assert_eq!(rowids(&got), rowids(&exact));
            assert!(got.iter().zip(&exact).all(|(g, e)| g.score == e.score));
            // Threshold after rescoring; subsets only.
            let got = scan(&a, &q, 5, 0.85, None, 5, 1);
            assert_eq!(rowids(&got), vec![3, 0, 2]);
            let subset = [a.slot(1).unwrap(), a.slot(4).unwrap()];
            let got = scan(&a, &q, 5, -1.0, Some(&subset), 5, 1);
            assert_eq!(rowids(&got), vec![1, 4]);
        }
    }

    #[test]
    fn binary_keeps_the_nearest_sign_patterns() {
        // The query's signs are (+, +, 0): rows 2 and 3 match them (distance 0), rows 0 and
        // 1 differ in one bit, row 4 in two. Ties go to the lowest slot.
        let a = toy();
        let q = [0.9f32, 0.435_889_9, 0.0];
        let scan = |k, rescore| rowids(&top_k_binary(&a, &q, k, -1.0, None, rescore, 1));
        // One candidate: row 2, although row 3 scores higher.
        assert_eq!(scan(1, 1), vec![2]);
        assert_eq!(scan(1, 2), vec![3]);
        assert_eq!(scan(3, 3), vec![3, 0, 2]);
        assert_eq!(scan(2, 4), vec![3, 0]);
        // At least k rows are rescored.
        assert_eq!(scan(5, 1), vec![3, 0, 2, 1, 4]);
    }

    /// The kept set does not depend on how the scan is split over threads.
    #[test]
    fn parallel_first_pass_equals_serial() {
        let dims = 40;
        let mut a = Arena::new(dims);
        let mut x = 3u64;
        for r in 0..70_000i64 {
            let v: Vec<f32> = (0..dims)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            a.upsert(r, r as u128, &v);
        }
        let q: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.37).sin()).collect();
        let subset: Vec<usize> = (0..a.len()).step_by(2).collect();
        for scan in [top_k_i8, top_k_binary] {
            for sub in [None, Some(&subset[..])] {
                for rescore in [10, 57, 300] {
                    let serial = scan(&a, &q, 10, -1.0, sub, rescore, 1);
                    let parallel = scan(&a, &q, 10, -1.0, sub, rescore, 4);
                    assert_eq!(rowids(&serial), rowids(&parallel), "rescore {rescore}");
                }
            }
        }
    }
}
