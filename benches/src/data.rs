//! Benchmark data: synthetic clustered unit vectors, or real vectors from a file.

use std::path::Path;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n` vectors of `dim` components in about `sqrt(n)` clusters, unit length. Uniform random
/// vectors are meaningless for retrieval (every pair is nearly orthogonal); clustered ones
/// have near neighbours the way embeddings of related texts do.
pub fn clustered(n: usize, dim: usize, seed: u64, centers_seed: u64) -> Vec<Vec<f32>> {
    let clusters = ((n as f64).sqrt() as usize).clamp(1, 4096);
    let mut crng = StdRng::seed_from_u64(centers_seed);
    let centers: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| crng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let c = &centers[rng.random_range(0..clusters)];
            normalize(
                c.iter()
                    .map(|x| x + rng.random_range(-0.45f32..0.45))
                    .collect(),
            )
        })
        .collect()
}

/// Scales `v` to unit length.
pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Reads rows of `dim` little-endian f32 values (no header), normalized.
pub fn read_f32_rows(
    path: &Path,
    dim: usize,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let row = dim * 4;
    if bytes.len() % row != 0 {
        bail!(
            "{} is {} bytes, not a whole number of {dim}-d f32 rows ({row} bytes each)",
            path.display(),
            bytes.len()
        );
    }
    let mut out: Vec<Vec<f32>> = bytes
        .chunks_exact(row)
        .map(|r| {
            normalize(
                r.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        })
        .collect();
    if let Some(l) = limit {
        out.truncate(l);
    }
    Ok(out)
}

/// Median and 99th percentile of `xs` (sorted in place).
pub fn p50_p99(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}
