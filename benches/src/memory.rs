//! `reasonbank-bench memory`: `AgentMemory` end to end with the real model — batched
//! remember throughput, recall latency including the query embedding, and `learn` latency
//! with the extractive distiller.
//!
//! Memories come from one of two corpora (`--corpus`):
//! - `prose` (default): pairs of real sentences from `benches/data/texts.jsonl` (CPython
//!   docstrings), so the vocabulary has the long tail of real text; queries are three content
//!   words of a random sentence — a short query.
//! - `templates`: sentences from 16 × 16 × 16 templates, where every query word matches about
//!   1/16 of all memories: a worst case for BM25, whose cost grows with the matches.
//!
//! There is no peer engine here: the figures are absolute medians on this machine, and the
//! target is the (recall p50 ≤ 5 ms for a short query on a 100K-memory shard).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reasonbank::reasoning::{Outcome, Trajectory};
use reasonbank::{AgentMemory, Memory, RecallOptions};
use serde_json::json;

use crate::data::p50_p99;

/// Arguments of `memory`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Memories to remember.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Recall queries to time.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Results per recall.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Memories per `remember_batch` call.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// `prose` (real sentences) or `templates` (BM25 worst case).
    #[arg(long, default_value = "prose")]
    corpus: String,
    /// `learn` calls to time (extractive distiller, no LLM).
    #[arg(long, default_value_t = 30)]
    learns: usize,
    /// Print one JSON line.
    #[arg(long)]
    json: bool,
    /// Run against this directory of shards instead of a new temporary one. When the agent's
    /// shard there already holds memories, nothing is remembered (`--n` and `--corpus` only
    /// shape the queries) and `remember_per_s` is null: this times recall on an existing shard.
    #[arg(long)]
    root: Option<std::path::PathBuf>,
    /// The agent (shard) to use.
    #[arg(long, default_value = "bench")]
    agent: String,
    /// Recall queries from this file, one per line (instead of generated ones).
    #[arg(long)]
    queries_file: Option<std::path::PathBuf>,
}

const SUBJECTS: [&str; 16] = [
    "the deploy script",
    "the login page",
    "the billing job",
    "the search index",
    "the cache layer",
    "the CI pipeline",
    "the mobile app",
    "the database migration",
    "the API gateway",
    "the test suite",
    "the logging agent",
    "the scheduler",
    "the payment webhook",
    "the config loader",
    "the image resizer",
    "the email worker",
];
const PROBLEMS: [&str; 16] = [
    "times out under load",
    "leaks file descriptors",
    "returns stale data",
    "crashes on empty input",
    "double-charges on retry",
    "deadlocks at shutdown",
    "drops messages after a restart",
    "fails on non-ASCII names",
    "is slow on cold start",
    "ignores the timezone",
    "loses writes when the disk is full",
    "retries forever",
    "spams the on-call channel",
    "mis-sorts unicode",
    "blocks the event loop",
    "runs out of memory on big files",
];
const FIXES: [&str; 16] = [
    "add exponential backoff with jitter",
    "close handles in a finally block",
    "invalidate on write",
    "validate input at the boundary",
    "make the handler idempotent",
    "drop locks before awaiting",
    "persist the queue offset",
    "normalize to NFC first",
    "warm the pool at start-up",
    "store times in UTC",
    "check free space before writing",
    "cap retries and alert",
    "rate-limit notifications",
    "use a collation-aware sort",
    "move the work to a blocking pool",
    "stream the file in chunks",
];

fn sentence(rng: &mut StdRng, i: usize) -> String {
    format!(
        "Case {i}: {} {}; fix: {}.",
        SUBJECTS[rng.random_range(0..16)],
        PROBLEMS[rng.random_range(0..16)],
        FIXES[rng.random_range(0..16)]
    )
}

/// `n` memories of two real sentences each and `q` short queries (three content words of a
/// random sentence), from the docstring corpus in `benches/data/texts.jsonl`.
fn prose(rng: &mut StdRng, n: usize, q: usize) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/texts.jsonl");
    let raw = std::fs::read_to_string(path)?;
    let mut sentences = Vec::new();
    for line in raw.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let text = v["text"].as_str().unwrap_or_default();
        sentences.extend(
            text.split(". ")
                .map(str::trim)
                .filter(|s| s.split_whitespace().count() >= 4)
                .map(str::to_owned),
        );
    }
    anyhow::ensure!(sentences.len() > 100, "{path} has too few sentences");
    let pick = |rng: &mut StdRng| sentences[rng.random_range(0..sentences.len())].clone();
    let texts = (0..n)
        .map(|i| format!("Note {i}: {} {}", pick(rng), pick(rng)))
        .collect();
    let queries = (0..q)
        .map(|_| {
            let s = pick(rng);
            let words: Vec<&str> = s
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() > 3)
                .collect();
            let start = rng.random_range(0..words.len().saturating_sub(2).max(1));
            words[start..(start + 3).min(words.len())].join(" ")
        })
        .filter(|q: &String| !q.is_empty())
        .collect();
    Ok((texts, queries))
}

/// Runs the benchmark.
pub fn run(a: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let root = a.root.clone().unwrap_or_else(|| dir.path().to_owned());
        let mem = AgentMemory::builder(root)
            .agent(a.agent.clone())
            .build()
            .await?;
        let existing_records = mem.stats().await?.records;
        let existing = existing_records > 0;
        let mut rng = StdRng::seed_from_u64(11);
        let (texts, mut queries) = match a.corpus.as_str() {
            "templates" => {
                let texts: Vec<String> = (0..a.n).map(|i| sentence(&mut rng, i)).collect();
                let queries = (0..a.queries)
                    .map(|_| {
                        format!(
                            "{} {}",
                            SUBJECTS[rng.random_range(0..16)],
                            PROBLEMS[rng.random_range(0..16)]
                        )
                    })
                    .collect();
                (texts, queries)
            }
            "prose" => prose(&mut rng, a.n, a.queries)?,
            other => anyhow::bail!("--corpus {other:?}: expected prose or templates"),
        };
        if let Some(f) = &a.queries_file {
            queries = std::fs::read_to_string(f)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            anyhow::ensure!(!queries.is_empty(), "{} holds no queries", f.display());
        }
        let remember_per_s = if existing {
            None
        } else {
            let memories: Vec<Memory> = texts
                .into_iter()
                .enumerate()
                .map(|(i, t)| Memory::new(t).metadata(json!({"i": i})))
                .collect();
            let t = Instant::now();
            for chunk in memories.chunks(a.batch.max(1)) {
                mem.remember_batch(chunk.to_vec()).await?;
            }
            Some(a.n as f64 / t.elapsed().as_secs_f64())
        };

        // Recall is timed in the steady state: once the shard's ANN graph (built in the
        // background for shards above the index threshold) holds every row. The wait is
        // reported; searches before that are exact and slower.
        let shard = std::sync::Arc::clone(mem.shard());
        let t = Instant::now();
        let indexed =
            tokio::task::spawn_blocking(move || shard.wait_indexed(Duration::from_secs(1800)))
                .await?;
        anyhow::ensure!(indexed, "the ANN index was not ready after 30 minutes");
        let index_ready_ms = t.elapsed().as_secs_f64() * 1e3;

        let mut o = RecallOptions::new();
        o.k(a.k);
        for q in queries.iter().take(5) {
            mem.recall(q, &o).await?;
        }
        let mut lat = Vec::with_capacity(queries.len());
        for q in &queries {
            let t = Instant::now();
            let hits = mem.recall(q, &o).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(!hits.is_empty(), "recall returned nothing for {q:?}");
        }
        let (p50, p99) = p50_p99(&mut lat);

        // learn: judge (explicit outcome) -> extractive distill -> store, one trajectory each.
        let mut learn = Vec::with_capacity(a.learns);
        for i in 0..a.learns {
            let s = SUBJECTS[i % 16];
            let mut t = Trajectory::new(format!("fix {s} in run {i}"));
            t.step(format!("restart {s}"), PROBLEMS[i % 16])
                .step(FIXES[i % 16], "all checks green")
                .answer("fixed")
                .outcome(if i % 3 == 0 { Outcome::Failure } else { Outcome::Success });
            let t0 = Instant::now();
            mem.learn(&t).await?;
            learn.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let (learn_ms, _) = p50_p99(&mut learn);
        if a.json {
            println!(
                "{}",
                json!({"n": if existing { existing_records } else { a.n as u64 }, "k": a.k,
                       "remember_per_s": remember_per_s.map(f64::round),
                       "queries": queries.len(), "recall_p50_ms": p50, "recall_p99_ms": p99,
                       "index_ready_ms": index_ready_ms, "learn_ms": learn_ms})
            );
        } else {
            let remember = remember_per_s.map_or_else(
                || "existing shard".to_owned(),
                |r| format!("remember {r:.0}/s (batched)"),
            );
            println!(
                "n {}: {remember}, recall p50 {p50:.2} ms, p99 {p99:.2} ms (with query embedding), learn p50 {learn_ms:.1} ms (extractive)",
                a.n
            );
        }
        Ok(())
    })
}
