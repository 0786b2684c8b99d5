//! Dot-product and Hamming kernels with runtime CPU dispatch, and the hook that makes usearch's
//! graph use them. With `ann/file.rs` (the mapping and view of the index file), the only
//! module of this crate with `unsafe`.
//!
//! Every vector in a shard is unit length, so cosine similarity is a dot product. Per CPU
//! level: `dot` (f32 · f32), `dot_f16` (f32 query · IEEE binary16 row, used by the exact
//! search's first pass, see `arena.rs`), `dot_i8`, `hamming` and `hamming_rows` (the i8 and
//! sign-bit scans' first passes, see `quant.rs`) and `dot_f16_f16` (the graph's metric). The
//! scalar kernels are the reference; the SIMD kernels (AVX-512F, AVX2+FMA+F16C, POPCNT on
//! x86-64, NEON on aarch64) must agree with them to floating-point reassociation error, and
//! the integer kernels exactly, which property tests check for every kernel this CPU can run.
//! CPU features are detected once, on first use. [`prefetch`] is a cache hint for the rows a
//! scan is about to rescore.
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// A dot-product kernel. Both slices must have the same length.
pub type DotFn = fn(&[f32], &[f32]) -> f32;
/// A dot product of an f32 vector with a vector of IEEE binary16 bit patterns.
pub type DotF16Fn = fn(&[f32], &[u16]) -> f32;
/// An exact dot product of two i8 vectors (the quantized scan's first pass).
pub type DotI8Fn = fn(&[i8], &[i8]) -> i32;
/// A dot product of two vectors of IEEE binary16 bit patterns (the HNSW graph's metric).
pub type DotF16F16Fn = fn(&[u16], &[u16]) -> f32;
/// The Hamming distance of two bit vectors packed into u64 words (the binary scan's first
/// pass): the number of bit positions where they differ.
pub type HammingFn = fn(&[u64], &[u64]) -> u32;
/// The Hamming distances of one packed bit vector (`query`) to consecutive rows of the same
/// length (`rows`, `out.len()` of them), written to `out`: the binary scan's first pass over
/// a block of rows in one call.
pub type HammingRowsFn = fn(query: &[u64], rows: &[u64], out: &mut [u32]);

/// The kernels of one CPU level.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// Short name: `scalar`, `avx2`, `avx512`, `neon`.
    pub name: &'static str,
    /// f32 · f32.
    pub dot: DotFn,
    /// f32 · f16.
    pub dot_f16: DotF16Fn,
    /// i8 · i8, summed exactly in i32 (vectors of up to 65,536 dimensions cannot overflow:
    /// 65,536 · 127² < 2³¹).
    pub dot_i8: DotI8Fn,
    /// f16 · f16.
    pub dot_f16_f16: DotF16F16Fn,
    /// Hamming distance of packed bits (exact; the hardware `popcnt` where the CPU has it).
    pub hamming: HammingFn,
    /// Hamming distances of one bit vector to a block of rows.
    pub hamming_rows: HammingRowsFn,
}

/// The fastest kernel for this CPU, chosen once.
pub fn best() -> Kernel {
    static BEST: OnceLock<Kernel> = OnceLock::new();
    *BEST.get_or_init(|| {
        *available()
            .last()
            .expect("scalar kernel is always available")
    })
}

/// Dot product of `a` and `b` with the fastest kernel for this CPU.
///
/// # Panics
/// If the slices differ in length (a programming error: the store checks dimensions first).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (best().dot)(a, b)
}

/// All kernels this CPU can run, slowest first; the first is always the scalar reference.
pub fn available() -> Vec<Kernel> {
    let mut out = vec![Kernel {
        name: "scalar",
        dot: scalar,
        dot_f16: scalar_f16,
        dot_i8: scalar_i8,
        dot_f16_f16: scalar_f16_f16,
        hamming: scalar_hamming,
        hamming_rows: scalar_hamming_rows,
    }];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        // Baseline x86-64 has no population count instruction: `count_ones` there is a
        // dozen shifts, masks and adds per word. Every AVX2 CPU has `popcnt`, but it is
        // detected on its own anyway.
        let (hamming, hamming_rows): (HammingFn, HammingRowsFn) = if has!("popcnt") {
            (x86::popcnt_hamming, x86::popcnt_hamming_rows)
        } else {
            (scalar_hamming, scalar_hamming_rows)
        };
        if has!("avx2") && has!("fma") && has!("f16c") {
            out.push(Kernel {
                name: "avx2",
                dot: x86::avx2,
                dot_f16: x86::avx2_f16,
                dot_i8: x86::avx2_i8,
                dot_f16_f16: x86::avx2_f16_f16,
                hamming,
                hamming_rows,
            });
        }
        if has!("avx512f") {
            out.push(Kernel {
                name: "avx512",
                dot: x86::avx512,
                dot_f16: x86::avx512_f16,
                dot_i8: if has!("avx512bw") {
                    x86::avx512_i8
                } else if has!("avx2") {
                    x86::avx2_i8
                } else {
                    scalar_i8
                },
                dot_f16_f16: x86::avx512_f16_f16,
                hamming,
                hamming_rows,
            });
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            // f16 -> f32 conversion instructions need the `fp16` target feature, which stable
            // Rust does not expose yet: the f16 pass runs the scalar kernel on aarch64.
            out.push(Kernel {
                name: "neon",
                dot: arm::neon,
                dot_f16: scalar_f16,
                dot_i8: scalar_i8,
                dot_f16_f16: scalar_f16_f16,
                // `count_ones` compiles to NEON's `cnt` + `addv`: aarch64 needs no variant.
                hamming: scalar_hamming,
                hamming_rows: scalar_hamming_rows,
            });
        }
    }
    out
}

/// Asks the CPU to start loading `v` into its caches, a line at a time, without waiting for
/// it: a hint that never faults (a no-op on CPUs other than x86-64). Random rows a scan is
/// about to read (the candidates it rescores) arrive while earlier ones are being scored.
pub fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = v.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(v)).step_by(64) {
            // SAFETY: `p + offset` stays inside the slice, so the pointer arithmetic is in
            // bounds; a prefetch reads nothing architecturally and cannot fault. SSE, which
            // `_mm_prefetch` needs, is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(offset)) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// The reference kernel: a plain sequential sum.
///
/// # Panics
/// If the slices differ in length.
pub fn scalar(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot product of slices of different lengths"
    );
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The reference f16 kernel.
///
/// # Panics
/// If the slices differ in length.
pub fn scalar_f16(a: &[f32], b: &[u16]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot product of slices of different lengths"
    );
    a.iter()
        .zip(b)
        .map(|(x, &h)| x * half::f16::from_bits(h).to_f32())
        .sum()
}

/// The reference i8 kernel (exact: integer arithmetic).
///
/// # Panics
/// If the slices differ in length.
pub fn scalar_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot product of slices of different lengths"
    );
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

/// The reference f16 · f16 kernel.
///
/// # Panics
/// If the slices differ in length.
pub fn scalar_f16_f16(a: &[u16], b: &[u16]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot product of slices of different lengths"
    );
    a.iter()
        .zip(b)
        .map(|(&x, &y)| half::f16::from_bits(x).to_f32() * half::f16::from_bits(y).to_f32())
        .sum()
}

/// The reference Hamming kernel (exact: integer arithmetic).
///
/// # Panics
/// If the slices differ in length.
pub fn scalar_hamming(a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(
        a.len(),
        b.len(),
        "Hamming distance of slices of different lengths"
    );
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// The reference block Hamming kernel.
///
/// # Panics
/// If `rows` does not hold exactly `out.len()` rows of `query.len()` words.
pub fn scalar_hamming_rows(query: &[u64], rows: &[u64], out: &mut [u32]) {
    if !check_rows(query, rows, out) {
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        *o = row
            .iter()
            .zip(query)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
    }
}

/// Panics unless `rows` holds exactly `out.len()` rows of `query.len()` words; fills `out`
/// with zeros and returns false when the rows are empty vectors (nothing left to compute).
fn check_rows(query: &[u64], rows: &[u64], out: &mut [u32]) -> bool {
    assert_eq!(
        query.len() * out.len(),
        rows.len(),
        "Hamming rows do not match the query's length and the output's"
    );
    if query.is_empty() {
        out.fill(0);
    }
    !query.is_empty()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Safe entry point; only handed out by `available()` after POPCNT was detected.
    pub(super) fn popcnt_hamming(a: &[u64], b: &[u64]) -> u32 {
        assert_eq!(
            a.len(),
            b.len(),
            "Hamming distance of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports POPCNT; the
        // body is safe code that the compiler lowers to one `popcnt` per word.
        unsafe { popcnt_hamming_impl(a, b) }
    }

    /// A 384-d row is 6 words: a vector popcount (AVX-512 VPOPCNTDQ) would not pay for its
    /// horizontal sum, so this stays one scalar `popcnt` per word.
    #[target_feature(enable = "popcnt")]
    unsafe fn popcnt_hamming_impl(a: &[u64], b: &[u64]) -> u32 {
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    /// Safe entry point; only handed out by `available()` after POPCNT was detected.
    pub(super) fn popcnt_hamming_rows(query: &[u64], rows: &[u64], out: &mut [u32]) {
        if !super::check_rows(query, rows, out) {
            return;
        }
        // SAFETY: `available()` returns this function only when the CPU reports POPCNT; the
        // body is safe code that the compiler lowers to one `popcnt` per word.
        unsafe { popcnt_hamming_rows_impl(query, rows, out) }
    }

    /// One call per block keeps the per-row cost at a few `popcnt`s: through a function
    /// pointer per row, the call costs as much as the distance.
    #[target_feature(enable = "popcnt")]
    unsafe fn popcnt_hamming_rows_impl(query: &[u64], rows: &[u64], out: &mut [u32]) {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
            *o = row
                .iter()
                .zip(query)
                .map(|(x, y)| (x ^ y).count_ones())
                .sum();
        }
    }

    /// Safe entry point; only handed out by `available()` after AVX2, FMA and F16C were detected.
    pub(super) fn avx2_f16_f16(a: &[u16], b: &[u16]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX2, FMA and
        // F16C, and the slices have equal length (checked above).
        unsafe { avx2_f16_f16_impl(a, b) }
    }

    /// Safe entry point; only handed out by `available()` after AVX-512F was detected.
    pub(super) fn avx512_f16_f16(a: &[u16], b: &[u16]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX-512F
        // (which includes the 512-bit f16 conversion), and the slices have equal length.
        unsafe { avx512_f16_f16_impl(a, b) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn avx2_f16_f16_impl(a: &[u16], b: &[u16]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: each load reads 8 values at `i + o` with `i + o + 8 <= n` guaranteed by the
        // loop conditions, for both slices of length `n`.
        unsafe {
            while i + 16 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 8 * j;
                    let x = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(o).cast()));
                    let y = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(o).cast()));
                    *acc = _mm256_fmadd_ps(x, y, *acc);
                }
                i += 16;
            }
            while i + 8 <= n {
                let x = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i).cast()));
                let y = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i).cast()));
                acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
                i += 8;
            }
        }
        let mut sum = hsum256(_mm256_add_ps(acc[0], acc[1]));
        for k in i..n {
            sum += half::f16::from_bits(a[k]).to_f32() * half::f16::from_bits(b[k]).to_f32();
        }
        sum
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_f16_f16_impl(a: &[u16], b: &[u16]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: each load reads 16 values at `i + o` with `i + o + 16 <= n` guaranteed by
        // the loop conditions, for both slices of length `n`.
        unsafe {
            while i + 32 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 16 * j;
                    let x = _mm512_cvtph_ps(_mm256_loadu_si256(pa.add(o).cast()));
                    let y = _mm512_cvtph_ps(_mm256_loadu_si256(pb.add(o).cast()));
                    *acc = _mm512_fmadd_ps(x, y, *acc);
                }
                i += 32;
            }
            while i + 16 <= n {
                let x = _mm512_cvtph_ps(_mm256_loadu_si256(pa.add(i).cast()));
                let y = _mm512_cvtph_ps(_mm256_loadu_si256(pb.add(i).cast()));
                acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
                i += 16;
            }
        }
        let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        for k in i..n {
            sum += half::f16::from_bits(a[k]).to_f32() * half::f16::from_bits(b[k]).to_f32();
        }
        sum
    }

    /// Safe entry point; only handed out by `available()` after AVX2 was detected.
    pub(super) fn avx2_i8(a: &[i8], b: &[i8]) -> i32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX2; the
        // body is safe code that the compiler vectorizes with AVX2 instructions.
        unsafe { avx2_i8_impl(a, b) }
    }

    /// Safe entry point; only handed out by `available()` after AVX-512BW was detected.
    pub(super) fn avx512_i8(a: &[i8], b: &[i8]) -> i32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX-512F and
        // AVX-512BW; the body is safe code vectorized with those instructions.
        unsafe { avx512_i8_impl(a, b) }
    }

    /// Integer sums are exact, so the compiler may vectorize freely (sign-extend to i16,
    /// `vpmaddwd` pairs into i32 lanes).
    #[target_feature(enable = "avx2")]
    unsafe fn avx2_i8_impl(a: &[i8], b: &[i8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum()
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512_i8_impl(a: &[i8], b: &[i8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum()
    }

    /// Safe entry point; only handed out by `available()` after AVX2, FMA and F16C were detected.
    pub(super) fn avx2_f16(a: &[f32], b: &[u16]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX2, FMA and
        // F16C, and the slices have equal length (checked above).
        unsafe { avx2_f16_impl(a, b) }
    }

    /// Safe entry point; only handed out by `available()` after AVX-512F was detected.
    pub(super) fn avx512_f16(a: &[f32], b: &[u16]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX-512F
        // (which includes the 512-bit f16 conversion), and the slices have equal length.
        unsafe { avx512_f16_impl(a, b) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn avx2_f16_impl(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: for all loads below, each load reads 8 values at `i + o` with `i + o + 8 <= n`
        // guaranteed by the loop conditions, for both slices of length `n`.
        unsafe {
            while i + 16 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 8 * j;
                    let h = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(o).cast()));
                    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), h, *acc);
                }
                i += 16;
            }
            while i + 8 <= n {
                let h = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i).cast()));
                acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), h, acc[0]);
                i += 8;
            }
        }
        let mut sum = hsum256(_mm256_add_ps(acc[0], acc[1]));
        for k in i..n {
            sum += a[k] * half::f16::from_bits(b[k]).to_f32();
        }
        sum
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_f16_impl(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: for all loads below, each load reads 16 values at `i + o` with
        // `i + o + 16 <= n` guaranteed by the loop conditions, for both slices of length `n`.
        unsafe {
            while i + 32 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 16 * j;
                    let h = _mm512_cvtph_ps(_mm256_loadu_si256(pb.add(o).cast()));
                    *acc = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(o)), h, *acc);
                }
                i += 32;
            }
            while i + 16 <= n {
                let h = _mm512_cvtph_ps(_mm256_loadu_si256(pb.add(i).cast()));
                acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), h, acc[0]);
                i += 16;
            }
        }
        let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        for k in i..n {
            sum += a[k] * half::f16::from_bits(b[k]).to_f32();
        }
        sum
    }

    #[target_feature(enable = "avx2")]
    fn hsum256(s: __m256) -> f32 {
        let hi = _mm256_extractf128_ps(s, 1);
        let q = _mm_add_ps(_mm256_castps256_ps128(s), hi);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        _mm_cvtss_f32(q)
    }

    /// Safe entry point; only handed out by `available()` after AVX2 and FMA were detected.
    pub(super) fn avx2(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX2 and FMA,
        // and the slices have equal length (checked above), which is all `avx2_impl` needs.
        unsafe { avx2_impl(a, b) }
    }

    /// Safe entry point; only handed out by `available()` after AVX-512F was detected.
    pub(super) fn avx512(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports AVX-512F,
        // and the slices have equal length (checked above), which is all `avx512_impl` needs.
        unsafe { avx512_impl(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: for all loads below, every load reads 8 floats starting at index `i + o`, and
        // the loop conditions guarantee `i + o + 8 <= n` for both slices of length `n`.
        unsafe {
            while i + 32 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 8 * j;
                    *acc = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(o)),
                        _mm256_loadu_ps(pb.add(o)),
                        *acc,
                    );
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i)),
                    _mm256_loadu_ps(pb.add(i)),
                    acc[0],
                );
                i += 8;
            }
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut sum = hsum256(s);
        for k in i..n {
            sum += a[k] * b[k];
        }
        sum
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: for all loads below, full loads read 16 floats at `i + o` with `i + o + 16 <= n`
        // guaranteed by the loop conditions; the final masked load touches only the `n - i < 16`
        // lanes selected by `mask`, all inside both slices.
        unsafe {
            while i + 64 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 16 * j;
                    *acc = _mm512_fmadd_ps(
                        _mm512_loadu_ps(pa.add(o)),
                        _mm512_loadu_ps(pb.add(o)),
                        *acc,
                    );
                }
                i += 64;
            }
            while i + 16 <= n {
                acc[0] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i)),
                    _mm512_loadu_ps(pb.add(i)),
                    acc[0],
                );
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u16 << (n - i)) - 1;
                let va = _mm512_maskz_loadu_ps(mask, pa.add(i));
                let vb = _mm512_maskz_loadu_ps(mask, pb.add(i));
                acc[1] = _mm512_fmadd_ps(va, vb, acc[1]);
            }
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    /// Safe entry point; only handed out by `available()` after NEON was detected.
    pub(super) fn neon(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of slices of different lengths"
        );
        // SAFETY: `available()` returns this function only when the CPU reports NEON, and the
        // slices have equal length (checked above), which is all `neon_impl` needs.
        unsafe { neon_impl(a, b) }
    }

    #[target_feature(enable = "neon")]
    unsafe fn neon_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        // SAFETY: for all loads below, each load reads 4 floats at `i + o` with `i + o + 4 <= n`
        // guaranteed by the loop conditions.
        unsafe {
            while i + 16 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let o = i + 4 * j;
                    *acc = vfmaq_f32(*acc, vld1q_f32(pa.add(o)), vld1q_f32(pb.add(o)));
                }
                i += 16;
            }
            while i + 4 <= n {
                acc[0] = vfmaq_f32(acc[0], vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                i += 4;
            }
        }
        let s = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        let mut sum = vaddvq_f32(s);
        for k in i..n {
            sum += a[k] * b[k];
        }
        sum
    }
}

/// Replaces usearch's portable binary16 inner product (compiled for baseline x86-64, it
/// converts element by element) with this crate's SIMD kernel: the same distance, `1 − a·b`,
/// several times faster, for inserts and searches alike. Not stored in the index file (and
/// reset by usearch's `load`): the index installs it on every new graph and after every load.
pub(crate) fn install_usearch_metric(index: &mut usearch::Index, dims: usize) {
    let dot = best().dot_f16_f16;
    let metric = move |a: *const usearch::f16, b: *const usearch::f16| -> f32 {
        // SAFETY: usearch calls the metric only with pointers to two vectors of this
        // index, each `dims` binary16 values (`usearch::f16` is a 2-byte `repr(transparent)`
        // bit pattern, read here as `u16`), alive for the duration of the call: stored
        // vectors, or the query cast to binary16 by usearch. Nothing else calls it.
        let (x, y) = unsafe {
            (
                std::slice::from_raw_parts(a.cast::<u16>(), dims),
                std::slice::from_raw_parts(b.cast::<u16>(), dims),
            )
        };
        1.0 - dot(x, y)
    };
    index.change_metric::<usearch::f16>(Box::new(metric));
}

#[cfg(test)]
#[path = "kernels_tests.rs"]
mod tests;
