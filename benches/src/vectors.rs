//! `reasonbank-bench vectors`: bulk insert, single durable insert and exact top-k search on
//! one shard, and the same data through sqlite-vec 0.1.9 (`vec0`) in the same process.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use reasonbank::memory::{
    Embedding, NewRecord, Query, SearchOptions, Shard, ShardOptions, kernels,
};
use rusqlite::Connection;
use serde_json::json;

use crate::data::{clustered, p50_p99, read_f32_rows};

/// Search modes. `exact` is the SIMD scan of the in-memory arena.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Mode {
    /// Exact cosine top-k.
    Exact,
}

/// Arguments of `vectors`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of stored vectors.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Dimensions.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Number of timed queries.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Search mode.
    #[arg(long, value_enum, default_value_t = Mode::Exact)]
    mode: Mode,
    /// Stored vectors: rows of `dim` little-endian f32 (default: synthetic clustered).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Query vectors, same layout (default: synthetic, from the data's distribution).
    #[arg(long)]
    query_data: Option<PathBuf>,
    /// Single durable inserts to time.
    #[arg(long, default_value_t = 500)]
    single_inserts: usize,
    /// Skip sqlite-vec (no ratio is printed then).
    #[arg(long)]
    no_peer: bool,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

struct Measured {
    insert_per_s: f64,
    single_p50_us: f64,
    search_p50_us: f64,
    search_p99_us: f64,
    recall: f64,
}

/// Runs the benchmark.
pub fn run(a: &Args) -> anyhow::Result<()> {
    let Mode::Exact = a.mode;
    let base = match &a.data {
        Some(p) => read_f32_rows(p, a.dim, Some(a.n))?,
        None => clustered(a.n, a.dim, 1, 7),
    };
    let queries = match &a.query_data {
        Some(p) => read_f32_rows(p, a.dim, Some(a.queries))?,
        None => clustered(a.queries, a.dim, 2, 7),
    };
    let extra = clustered(a.single_inserts, a.dim, 3, 7);
    let truth = ground_truth(&base, &queries, a.k);

    let dir = tempfile::tempdir()?;
    let ours = bench_reasonbank(
        &dir.path().join("bench.sqlite"),
        a,
        &base,
        &queries,
        &extra,
        &truth,
    )?;
    report(a, "reasonbank", &ours);
    if !a.no_peer {
        let peer = bench_sqlite_vec(
            &dir.path().join("vec0.sqlite"),
            a,
            &base,
            &queries,
            &extra,
            &truth,
        )?;
        report(a, "sqlite-vec", &peer);
        let ratio = peer.search_p50_us / ours.search_p50_us;
        let insert_ratio = ours.insert_per_s / peer.insert_per_s;
        if a.json {
            println!(
                "{}",
                json!({"ratio_search_vs_sqlite_vec": ratio, "ratio_insert_vs_sqlite_vec": insert_ratio})
            );
        } else {
            println!(
                "search p50: reasonbank is {ratio:.1}x faster than sqlite-vec; bulk insert {insert_ratio:.2}x"
            );
        }
    }
    Ok(())
}

fn report(a: &Args, engine: &str, m: &Measured) {
    if a.json {
        println!(
            "{}",
            json!({
                "engine": engine, "mode": "exact", "n": a.n, "dim": a.dim, "k": a.k,
                "queries": a.queries, "kernel": kernels::best().name,
                "insert_per_s": m.insert_per_s.round(), "single_insert_p50_us": m.single_p50_us,
                "search_p50_us": m.search_p50_us, "search_p99_us": m.search_p99_us,
                "recall_at_k": m.recall,
            })
        );
    } else {
        println!(
            "{engine:>11}: insert {:>9.0}/s  single insert p50 {:>7.1} µs  search p50 {:>9.1} µs  p99 {:>9.1} µs  recall@{} {:.4}",
            m.insert_per_s, m.single_p50_us, m.search_p50_us, m.search_p99_us, a.k, m.recall
        );
    }
}

/// Exact neighbours by brute force (score descending, then row index).
fn ground_truth(base: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    queries
        .iter()
        .map(|q| {
            let mut s: Vec<(f32, usize)> = base
                .iter()
                .enumerate()
                .map(|(i, v)| (kernels::dot(q, v), i))
                .collect();
            let k = k.min(s.len());
            if k > 0 {
                s.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            }
            s.truncate(k);
            s.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

fn recall(found: &[Vec<usize>], truth: &[Vec<usize>]) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for (f, t) in found.iter().zip(truth) {
        total += t.len();
        hit += f.iter().filter(|i| t.contains(i)).count();
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}

fn bench_reasonbank(
    path: &std::path::Path,
    a: &Args,
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    extra: &[Vec<f32>],
    truth: &[Vec<usize>],
) -> anyhow::Result<Measured> {
    let mut o = ShardOptions::new();
    o.dimensions(a.dim).model_id("bench");
    let shard = Shard::open(path, &o)?;
    let recs: Vec<NewRecord> = base
        .iter()
        .map(|v| Ok(NewRecord::new("", Embedding::new(v.clone())?)))
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    let mut ids = Vec::with_capacity(recs.len());
    for chunk in recs.chunks(10_000) {
        ids.extend(shard.insert_batch(chunk)?);
    }
    let insert_per_s = base.len() as f64 / t.elapsed().as_secs_f64();
    let index: std::collections::HashMap<_, _> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();

    let opts = SearchOptions::new(a.k);
    let qs: Vec<Query> = queries
        .iter()
        .map(|q| Ok(Query::vector(Embedding::new(q.clone())?)))
        .collect::<anyhow::Result<_>>()?;
    for q in qs.iter().take(10) {
        shard.search(q, &opts)?;
    }
    let mut lat = Vec::with_capacity(qs.len());
    let mut found = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        let hits = shard.search(q, &opts)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        found.push(hits.iter().map(|h| index[&h.id]).collect());
    }
    let (search_p50_us, search_p99_us) = p50_p99(&mut lat);

    let mut single = Vec::with_capacity(extra.len());
    for v in extra {
        let r = NewRecord::new("", Embedding::new(v.clone())?);
        let t = Instant::now();
        shard.insert(&r)?;
        single.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Measured {
        insert_per_s,
        single_p50_us: p50_p99(&mut single).0,
        search_p50_us,
        search_p99_us,
        recall: recall(&found, truth),
    })
}

fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Registers sqlite-vec with every connection opened afterwards in this process.
fn register_sqlite_vec() {
    type Init = unsafe extern "C" fn(
        *mut rusqlite::ffi::sqlite3,
        *mut *mut std::os::raw::c_char,
        *const rusqlite::ffi::sqlite3_api_routines,
    ) -> std::os::raw::c_int;
    #[allow(unsafe_code)]
    // SAFETY: `sqlite3_vec_init` is the extension's C entry point with exactly the `Init`
    // signature SQLite expects of an auto-extension (sqlite-vec's documented Rust usage);
    // registering it has no other precondition.
    unsafe {
        rusqlite::ffi::sqlite3_auto_extension(Some(std::mem::transmute::<*const (), Init>(
            sqlite_vec::sqlite3_vec_init as *const (),
        )));
    }
}

fn bench_sqlite_vec(
    path: &std::path::Path,
    a: &Args,
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    extra: &[Vec<f32>],
    truth: &[Vec<usize>],
) -> anyhow::Result<Measured> {
    register_sqlite_vec();
    let mut db = Connection::open(path)?;
    // The same durability and caching as our shards, so the comparison is like for like.
    db.execute_batch(
        "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384;",
    )?;
    let version: String = db
        .query_row("SELECT vec_version()", [], |r| r.get(0))
        .context("sqlite-vec did not load")?;
    db.execute_batch(&format!(
        "CREATE VIRTUAL TABLE v USING vec0(embedding float[{}] distance_metric=cosine)",
        a.dim
    ))?;
    let t = Instant::now();
    {
        let tx = db.transaction()?;
        {
            let mut st = tx.prepare("INSERT INTO v (rowid, embedding) VALUES (?1, ?2)")?;
            for (i, v) in base.iter().enumerate() {
                st.execute((i as i64, blob(v)))?;
            }
        }
        tx.commit()?;
    }
    let insert_per_s = base.len() as f64 / t.elapsed().as_secs_f64();
    let mut st =
        db.prepare("SELECT rowid FROM v WHERE embedding MATCH ?1 AND k = ?2 ORDER BY distance")?;
    let mut run = |q: &[f32]| -> anyhow::Result<Vec<usize>> {
        let rows = st.query_map((blob(q), a.k as i64), |r| r.get::<_, i64>(0))?;
        Ok(rows
            .map(|r| r.map(|i| i as usize))
            .collect::<Result<_, _>>()?)
    };
    for q in queries.iter().take(3) {
        run(q)?;
    }
    let mut lat = Vec::with_capacity(queries.len());
    let mut found = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        found.push(run(q)?);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(st);
    let (search_p50_us, search_p99_us) = p50_p99(&mut lat);
    let mut single = Vec::with_capacity(extra.len());
    let mut ins = db.prepare("INSERT INTO v (rowid, embedding) VALUES (?1, ?2)")?;
    for (i, v) in extra.iter().enumerate() {
        let b = blob(v);
        let t = Instant::now();
        ins.execute(((base.len() + i) as i64, b))?;
        single.push(t.elapsed().as_secs_f64() * 1e6);
    }
    if !a.json {
        eprintln!("sqlite-vec {version}");
    }
    Ok(Measured {
        insert_per_s,
        single_p50_us: p50_p99(&mut single).0,
        search_p50_us,
        search_p99_us,
        recall: recall(&found, truth),
    })
}
