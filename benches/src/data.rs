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

/// Real embeddings of the texts of a JSON-lines file (field `text`; see
/// `benches/python/docstring_corpus.py`), by the default model (all-MiniLM-L6-v2 int8,
/// provisioned like the library does), in file order. They are cached beside the file as
/// `<file>.minilm.f32` (rows of f32, as `--data` reads them) with the file's length and
/// modification time in `<file>.minilm.stamp`, so later runs skip the embedding.
pub fn embedded_texts(path: &Path, dim: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    use reasonbank::embedders::provision::{self, ProvisionOptions};
    use reasonbank::embedders::{EmbedKind, Embedder, OnnxEmbedder};

    let cache = path.with_extension("minilm.f32");
    let stamp_path = path.with_extension("minilm.stamp");
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let stamp = format!(
        "{} {:?}",
        meta.len(),
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    );
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return read_f32_rows(&cache, dim, None);
    }
    let texts = crate::embed::read_texts(path, "text")?;
    let files = provision::resolve(&ProvisionOptions::new())?;
    let embedder = OnnxEmbedder::builder().files(files).build()?;
    anyhow::ensure!(
        embedder.dimensions() == dim,
        "the model makes {}-d vectors, --dim is {dim}",
        embedder.dimensions()
    );
    eprintln!(
        "embedding {} texts of {} (once; cached in {})",
        texts.len(),
        path.display(),
        cache.display()
    );
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        out.extend(embedder.embed_blocking(chunk, EmbedKind::Document)?);
    }
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&cache, bytes).with_context(|| format!("writing {}", cache.display()))?;
    std::fs::write(&stamp_path, stamp)?;
    Ok(out)
}
