//! Integration tests of `reasonbank-memory`, one binary. Real SQLite files in temp dirs; a
//! deterministic vector generator stands in for an embedding model (this crate never embeds).

mod ann;
mod bad_input;
mod concurrency;
mod crash;
mod differential;
mod filters;
mod format;
mod hybrid;
mod replication;
mod store;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reasonbank_memory::{Embedding, Shard, ShardOptions};

/// `n` unit vectors in `clusters` Gaussian-ish clusters, reproducible from `seed`.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Embedding> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|i| {
            let c = &centers[i % clusters];
            let v = c
                .iter()
                .map(|x| x + rng.random_range(-0.35f32..0.35))
                .collect();
            Embedding::new(v).expect("random vectors are finite and non-zero")
        })
        .collect()
}

/// Opens (creating) a shard for `dim`-d vectors of model `test-model`.
pub fn open_shard(path: &std::path::Path, dim: usize) -> Shard {
    let mut o = ShardOptions::new();
    o.dimensions(dim).model_id("test-model");
    Shard::open(path, &o).expect("open shard")
}

/// Runs `test` (a `module::function` path in this binary) in a child process with `env`.
/// The child's stdout is piped to the caller.
pub fn child(test: &str, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        test,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped());
    cmd
}

/// The value after `tag` in a line of a child's output. libtest prints `test NAME ... `
/// without a newline before the test's own output, so the tag may not start the line.
pub fn tagged<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    line.split_once(tag).map(|(_, v)| v.trim())
}

/// Asserts FTS5's own check that the full-text index matches the `records` text column.
pub fn assert_fts_consistent(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute(
        "INSERT INTO records_fts (records_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("full-text index matches the records");
}
