//! `reasonbank-bench vectors`: bulk insert, single durable insert, index build and top-k
//! search on one shard in each search mode (exact, quantized, binary, ann, auto), cold open,
//! memory per vector, and the same data through sqlite-vec 0.1.9 (`vec0`) in the same
//! process. Every mode reports recall@k against brute-force ground truth and the bytes its
//! flat first pass reads per stored vector; `--plot` draws recall against p50 latency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reasonbank::memory::{
    AUTO_QUANTIZED_ROWS, BINARY_RESCORE, BINARY_RESCORE_PER_HIT, Embedding, NewRecord, Query,
    SearchMode, SearchOptions, Shard, ShardOptions, kernels,
};
use rusqlite::Connection;
use serde_json::json;

use crate::data::{clustered, embedded_texts, p50_p99, read_f32_rows};

/// Search modes (see `reasonbank_memory::SearchMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Exact cosine top-k (f16 pass with error bounds, f32 rescoring).
    Exact,
    /// Calibrated i8 scan, f32 rescoring.
    Quantized,
    /// Sign-bit (Hamming) scan, f32 rescoring.
    Binary,
    /// HNSW graph plus flat segment, f32 rescoring.
    Ann,
    /// Picks by shard size and filter.
    Auto,
}

impl Mode {
    fn search_mode(self) -> SearchMode {
        match self {
            Mode::Exact => SearchMode::Exact,
            Mode::Quantized => SearchMode::Quantized,
            Mode::Binary => SearchMode::Binary,
            Mode::Ann => SearchMode::Ann,
            Mode::Auto => SearchMode::Auto,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Mode::Exact => "exact",
            Mode::Quantized => "quantized",
            Mode::Binary => "binary",
            Mode::Ann => "ann",
            Mode::Auto => "auto",
        }
    }
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
    /// Search modes to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Mode::Exact, Mode::Quantized, Mode::Binary, Mode::Ann, Mode::Auto])]
    mode: Vec<Mode>,
    /// HNSW beam widths (`SearchOptions::beam`) for `ann`; the first is the headline figure,
    /// the others draw the curve of `--plot`.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 16, 32, 128, 256])]
    beam: Vec<usize>,
    /// Candidates rescored by `quantized` (`SearchOptions::rescore`); the first is the
    /// headline figure.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 20, 50, 200, 400])]
    rescore: Vec<usize>,
    /// Candidates rescored by `binary` (`SearchOptions::rescore`); the first is the headline
    /// figure. Default: the library's default for `--k` (`max(400, 16·k)`), then 100, 200,
    /// 800, 1600.
    #[arg(long, value_delimiter = ',')]
    binary_rescore: Vec<usize>,
    /// Live rows from which the shard builds its HNSW graph (`ShardOptions::index_threshold`).
    #[arg(long, default_value_t = 20_000)]
    index_threshold: usize,
    /// HNSW connectivity `M` (`ShardOptions::index_connectivity`).
    #[arg(long, default_value_t = 32)]
    connectivity: usize,
    /// HNSW beam width while inserting (`ShardOptions::index_expansion_add`).
    #[arg(long, default_value_t = 64)]
    expansion_add: usize,
    /// Stored vectors: rows of `dim` little-endian f32 (default: synthetic clustered).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Query vectors, same layout (default: synthetic, from the data's distribution).
    #[arg(long)]
    query_data: Option<PathBuf>,
    /// Real embeddings instead: a JSON-lines file of texts (field `text`, e.g. from
    /// `python3 benches/python/docstring_corpus.py`), embedded once with the default model
    /// and cached beside it. Its last `--queries` texts are the queries (held out), the first
    /// `--n` of the others are stored.
    #[arg(long, conflicts_with_all = ["data", "query_data"])]
    texts: Option<PathBuf>,
    /// Single durable inserts to time.
    #[arg(long, default_value_t = 500)]
    single_inserts: usize,
    /// Skip sqlite-vec (no ratio is printed then).
    #[arg(long)]
    no_peer: bool,
    /// Directory for the shard and sqlite-vec files, kept after the run (default: a temporary
    /// directory, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Draw recall@k against p50 latency of every mode (and sqlite-vec) into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Arguments of the hidden `vectors-cold` command: open a shard, answer one query, exit.
#[derive(clap::Args, Debug)]
pub struct ColdArgs {
    /// The shard file.
    #[arg(long)]
    path: PathBuf,
    /// Dimensions.
    #[arg(long)]
    dim: usize,
    /// Search mode.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Live rows from which the shard uses its graph.
    #[arg(long)]
    index_threshold: usize,
}

/// One measured configuration (a mode at one knob setting).
struct Point {
    engine: &'static str,
    mode: &'static str,
    knob: Option<(&'static str, usize)>,
    p50_us: f64,
    p99_us: f64,
    recall: f64,
}

/// Runs the benchmark.
pub fn run(a: &Args) -> anyhow::Result<()> {
    if a.mode.is_empty() {
        bail!("--mode needs at least one of exact, quantized, binary, ann, auto");
    }
    let (base, queries) = if let Some(p) = &a.texts {
        let mut all = embedded_texts(p, a.dim)?;
        if all.len() <= a.queries {
            bail!(
                "{} has {} texts: not enough for {} queries and stored rows",
                p.display(),
                all.len(),
                a.queries
            );
        }
        let queries = all.split_off(all.len() - a.queries);
        all.truncate(a.n);
        (all, queries)
    } else {
        let base = match &a.data {
            Some(p) => read_f32_rows(p, a.dim, Some(a.n))?,
            None => clustered(a.n, a.dim, 1, 7),
        };
        let queries = match &a.query_data {
            Some(p) => read_f32_rows(p, a.dim, Some(a.queries))?,
            None => clustered(a.queries, a.dim, 2, 7),
        };
        (base, queries)
    };
    let extra = clustered(a.single_inserts, a.dim, 3, 7);
    let truth = ground_truth(&base, &queries, a.k);

    let tmp = tempfile::tempdir()?;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            for f in ["bench.sqlite", "vec0.sqlite"] {
                for suffix in ["", "-wal", "-shm", ".hnsw"] {
                    let _ = std::fs::remove_file(d.join(format!("{f}{suffix}")));
                }
            }
            d.clone()
        }
        None => tmp.path().to_owned(),
    };
    let shard_path = dir.join("bench.sqlite");
    let mut points = bench_reasonbank(&shard_path, a, &base, &queries, &extra, &truth)?;
    if !a.no_peer {
        let peer = bench_sqlite_vec(&dir.join("vec0.sqlite"), a, &base, &queries, &extra, &truth)?;
        let peer_p50 = peer.search_p50_us;
        emit(
            a,
            json!({
                "engine": "sqlite-vec", "n": a.n, "dim": a.dim, "k": a.k,
                "insert_per_s": peer.insert_per_s.round(),
                "single_insert_p50_us": peer.single_p50_us,
                "search_p50_us": peer.search_p50_us, "search_p99_us": peer.search_p99_us,
                "recall_at_k": peer.recall,
            }),
            format!(
                "{:>11}: insert {:>9.0}/s  single insert p50 {:>7.1} µs  search p50 {:>9.1} µs  p99 {:>9.1} µs  recall@{} {:.4}",
                "sqlite-vec",
                peer.insert_per_s,
                peer.single_p50_us,
                peer.search_p50_us,
                peer.search_p99_us,
                a.k,
                peer.recall
            ),
        );
        for p in points.iter().filter(|p| p.engine == "reasonbank") {
            let ratio = peer_p50 / p.p50_us;
            let knob = p.knob.map(|(n, v)| format!(" {n}={v}")).unwrap_or_default();
            emit(
                a,
                json!({"mode": p.mode, "knob": p.knob.map(|k| json!({k.0: k.1})),
                       "ratio_search_vs_sqlite_vec": ratio, "recall_at_k": p.recall}),
                format!(
                    "{:>9}{knob:<12} p50 {:>8.1} µs  recall@{} {:.4}  {ratio:>7.1}x faster than sqlite-vec",
                    p.mode, p.p50_us, a.k, p.recall
                ),
            );
        }
        points.push(Point {
            engine: "sqlite-vec",
            mode: "sqlite-vec",
            knob: None,
            p50_us: peer.search_p50_us,
            p99_us: peer.search_p99_us,
            recall: peer.recall,
        });
    }
    if let Some(path) = &a.plot {
        std::fs::write(path, plot_svg(a, &points))
            .with_context(|| format!("writing {}", path.display()))?;
        if !a.json {
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// Bytes per stored vector that `mode`'s flat first pass reads (`None`: a graph search,
/// which reads what its walk visits). Every mode then reads `4 · dim` bytes per candidate it
/// rescores with f32. `auto` is the pass it picks for this run's row count.
fn first_pass_bytes(mode: Mode, a: &Args) -> Option<usize> {
    let dim = a.dim;
    match mode {
        // f16 copy plus the per-row error bound.
        Mode::Exact => Some(2 * dim + 4),
        // i8 codes plus the per-row scale.
        Mode::Quantized => Some(dim + 4),
        // Sign bits in whole u64 words.
        Mode::Binary => Some(dim.div_ceil(64) * 8),
        Mode::Ann => None,
        Mode::Auto if a.n >= a.index_threshold => None,
        Mode::Auto if a.n >= AUTO_QUANTIZED_ROWS => first_pass_bytes(Mode::Quantized, a),
        Mode::Auto => first_pass_bytes(Mode::Exact, a),
    }
}

fn emit(a: &Args, j: serde_json::Value, text: String) {
    if a.json {
        println!("{j}");
    } else {
        println!("{text}");
    }
}

/// Exact neighbours by brute force (score descending, then row index), in parallel.
fn ground_truth(base: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = queries
            .chunks(chunk)
            .map(|qs| {
                s.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            let mut s: Vec<(f32, usize)> = base
                                .iter()
                                .enumerate()
                                .map(|(i, v)| (kernels::dot(q, v), i))
                                .collect();
                            let k = k.min(s.len());
                            if k > 0 {
                                s.select_nth_unstable_by(k - 1, |a, b| {
                                    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
                                });
                            }
                            s.truncate(k);
                            s.into_iter().map(|(_, i)| i).collect::<Vec<usize>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("ground-truth thread panicked"))
            .collect()
    })
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

fn shard_options(dim: usize, threshold: usize) -> ShardOptions {
    let mut o = ShardOptions::new();
    o.dimensions(dim)
        .model_id("bench")
        .index_threshold(threshold);
    o
}

/// Resident set size of this process, from `/proc/self/status` (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn bench_reasonbank(
    path: &Path,
    a: &Args,
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    extra: &[Vec<f32>],
    truth: &[Vec<usize>],
) -> anyhow::Result<Vec<Point>> {
    let mut o = shard_options(a.dim, a.index_threshold);
    o.index_connectivity(a.connectivity)
        .index_expansion_add(a.expansion_add);
    let shard = Shard::open(path, &o)?;
    let recs: Vec<NewRecord> = base
        .iter()
        .map(|v| Ok(NewRecord::new("", Embedding::new(v.clone())?)))
        .collect::<anyhow::Result<_>>()?;
    let rss_before = rss_bytes();
    let t = Instant::now();
    let mut ids = Vec::with_capacity(recs.len());
    for chunk in recs.chunks(10_000) {
        ids.extend(shard.insert_batch(chunk)?);
    }
    drop(recs);
    let insert_s = t.elapsed().as_secs_f64();
    let insert_per_s = base.len() as f64 / insert_s;
    // The fold thread builds the graph while the rows are inserted and after.
    let indexed = shard.wait_indexed(Duration::from_secs(3600));
    let build_s = t.elapsed().as_secs_f64();
    let status = shard.index_status();
    let stats = shard.stats()?;
    let arena_per_vec = stats.vector_bytes as f64 / base.len() as f64;
    let graph_per_vec = status.memory_bytes as f64 / base.len() as f64;
    let rss_per_vec = rss_bytes().saturating_sub(rss_before) as f64 / base.len() as f64;
    let fold_per_s = if status.graph {
        base.len() as f64 / build_s
    } else {
        0.0
    };
    emit(
        a,
        json!({
            "engine": "reasonbank", "n": a.n, "dim": a.dim, "k": a.k, "kernel": kernels::best().name,
            "connectivity": a.connectivity, "expansion_add": a.expansion_add,
            "insert_per_s": insert_per_s.round(), "insert_s": insert_s,
            "index_ready_s": build_s, "indexed": indexed, "graph": status.graph,
            "fold_per_s": fold_per_s.round(),
            "bytes_per_vector_arena": arena_per_vec, "bytes_per_vector_graph": graph_per_vec,
            "bytes_per_vector_rss": rss_per_vec,
        }),
        format!(
            "reasonbank: n={} dim={} kernel={}  bulk insert {insert_per_s:.0}/s ({insert_s:.1} s)  \
             graph ready {build_s:.1} s after the first insert ({fold_per_s:.0} vectors/s folded)\n\
             \x20          memory per vector: arena {arena_per_vec:.0} B (f32 {} + f16 {} + i8 {} + sign bits {} + bounds)  \
             graph {graph_per_vec:.0} B  process RSS growth {rss_per_vec:.0} B  \
             (f32 rescoring reads {} B per candidate)",
            a.n,
            a.dim,
            kernels::best().name,
            a.dim * 4,
            a.dim * 2,
            a.dim,
            a.dim.div_ceil(64) * 8,
            a.dim * 4
        ),
    );

    let index: std::collections::HashMap<_, _> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let qs: Vec<Query> = queries
        .iter()
        .map(|q| Ok(Query::vector(Embedding::new(q.clone())?)))
        .collect::<anyhow::Result<_>>()?;
    let mut points = Vec::new();
    for &mode in &a.mode {
        let knobs: Vec<Option<(&'static str, usize)>> = match mode {
            Mode::Ann => a.beam.iter().map(|&b| Some(("beam", b))).collect(),
            Mode::Quantized => a.rescore.iter().map(|&r| Some(("rescore", r))).collect(),
            Mode::Binary if a.binary_rescore.is_empty() => {
                let default = BINARY_RESCORE.max(BINARY_RESCORE_PER_HIT * a.k);
                let mut sweep = vec![default];
                sweep.extend([100, 200, 800, 1600].into_iter().filter(|&r| r != default));
                sweep.into_iter().map(|r| Some(("rescore", r))).collect()
            }
            Mode::Binary => a
                .binary_rescore
                .iter()
                .map(|&r| Some(("rescore", r)))
                .collect(),
            Mode::Exact | Mode::Auto => vec![None],
        };
        for knob in knobs {
            let mut opts = SearchOptions::new(a.k);
            opts.mode(mode.search_mode());
            match knob {
                Some(("beam", b)) => {
                    opts.beam(b);
                }
                Some((_, r)) => {
                    opts.rescore(r);
                }
                None => {}
            }
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
            let (p50, p99) = p50_p99(&mut lat);
            let r = recall(&found, truth);
            let knob_text = knob.map(|(n, v)| format!(" {n}={v}")).unwrap_or_default();
            let first = first_pass_bytes(mode, a);
            let first_text =
                first.map_or_else(|| "graph".to_owned(), |b| format!("{b:>4} B/vector"));
            emit(
                a,
                json!({"engine": "reasonbank", "mode": mode.name(), "knob": knob.map(|k| json!({k.0: k.1})),
                       "search_p50_us": p50, "search_p99_us": p99, "recall_at_k": r,
                       "first_pass_bytes_per_vector": first,
                       "rescore_bytes_per_candidate": a.dim * 4}),
                format!(
                    "{:>9}{knob_text:<13} search p50 {p50:>8.1} µs  p99 {p99:>8.1} µs  recall@{} {r:.4}  first pass {first_text}",
                    mode.name(),
                    a.k
                ),
            );
            points.push(Point {
                engine: "reasonbank",
                mode: mode.name(),
                knob,
                p50_us: p50,
                p99_us: p99,
                recall: r,
            });
        }
    }

    let graph_present = shard.index_status().graph;
    let mut single = Vec::with_capacity(extra.len());
    for v in extra {
        let r = NewRecord::new("", Embedding::new(v.clone())?);
        let t = Instant::now();
        shard.insert(&r)?;
        single.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let single_p50 = p50_p99(&mut single).0;
    // Dropping the shard stops its fold thread, which writes the index file.
    let t = Instant::now();
    drop(shard);
    let close_s = t.elapsed().as_secs_f64();
    let index_file_bytes = std::fs::metadata(reasonbank::memory::index_path(path))
        .map(|m| m.len())
        .unwrap_or(0);
    // Cold open: a fresh process opens the existing shard and answers one query, in the
    // default mode if it was measured.
    let mode = if a.mode.contains(&Mode::Auto) {
        Mode::Auto
    } else {
        a.mode[0]
    };
    let exe = std::env::current_exe()?;
    let mut cold = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = std::process::Command::new(&exe)
            .args([
                "vectors-cold",
                "--dim",
                &a.dim.to_string(),
                "--mode",
                mode.name(),
            ])
            .arg("--index-threshold")
            .arg(a.index_threshold.to_string())
            .arg("--path")
            .arg(path)
            .output()?;
        let wall = t.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            bail!(
                "vectors-cold failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        cold.push((wall, text.trim().to_owned()));
    }
    let (cold_ms, cold_report) = cold
        .iter()
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .cloned()
        .unwrap_or_default();
    emit(
        a,
        json!({"engine": "reasonbank", "single_insert_p50_us": single_p50, "graph_present": graph_present,
               "close_s": close_s, "index_file_bytes": index_file_bytes,
               "cold_open_to_first_result_ms": cold_ms, "cold_mode": mode.name(),
               "cold_detail": serde_json::from_str::<serde_json::Value>(&cold_report).unwrap_or_default()}),
        format!(
            "reasonbank: single durable insert p50 {single_p50:.1} µs (index present: {})  \
             close {close_s:.2} s  index file {:.1} MB\n\
             \x20          cold open → first {} result: {cold_ms:.0} ms (process start to exit, best of 3; {cold_report})",
            graph_present,
            index_file_bytes as f64 / 1e6,
            mode.name()
        ),
    );
    Ok(points)
}

/// `vectors-cold`: opens the shard, answers one query, prints the timings as JSON.
pub fn cold(a: &ColdArgs) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut o = shard_options(a.dim, a.index_threshold);
    o.create(false);
    let shard = Shard::open(&a.path, &o)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let q = Embedding::new(clustered(1, a.dim, 99, 7).remove(0))?;
    let mut opts = SearchOptions::new(10);
    opts.mode(a.mode.search_mode());
    let hits = shard.search(&Query::vector(q), &opts)?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    let status = shard.index_status();
    println!(
        "{}",
        json!({"open_ms": open_ms, "first_result_ms": first_ms, "hits": hits.len(),
               "index_file": status.file, "answered_before_the_arena_loaded": status.arena_loading})
    );
    // Leave without writing the index again: the measurement is of the open.
    std::process::exit(0);
}

/// Recall@k (y) against p50 latency (x, log scale) for every measured point, one colour per
/// engine/mode, points of one mode joined in latency order.
fn plot_svg(a: &Args, points: &[Point]) -> String {
    let (w, h) = (760.0f64, 480.0f64);
    let (left, right, top, bottom) = (70.0, 170.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let lat: Vec<f64> = points.iter().map(|p| p.p50_us.max(1.0)).collect();
    let lo = lat.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = lat.iter().copied().fold(1.0, f64::max);
    let (lx0, lx1) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let rmin = points.iter().map(|p| p.recall).fold(1.0, f64::min).min(0.8);
    let y0 = (rmin * 10.0).floor() / 10.0;
    let x = |us: f64| left + (us.max(1.0).log10() - lx0) / (lx1 - lx0) * pw;
    let y = |r: f64| top + (1.0 - (r - y0) / (1.0 - y0)) * ph;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"14\">recall@{} vs p50 latency, n={} dim={} ({} queries)</text>\n",
        a.k, a.n, a.dim, a.queries
    );
    // Axes and grid.
    for e in (lx0 as i32)..=(lx1 as i32) {
        let xv = x(10f64.powi(e));
        let label = match e {
            0 => "1 µs".to_owned(),
            1 => "10 µs".to_owned(),
            2 => "100 µs".to_owned(),
            3 => "1 ms".to_owned(),
            4 => "10 ms".to_owned(),
            5 => "100 ms".to_owned(),
            _ => format!("1e{e} µs"),
        };
        svg += &format!(
            "<line x1=\"{xv:.1}\" y1=\"{top}\" x2=\"{xv:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{xv:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>\n",
            top + ph,
            top + ph + 18.0
        );
    }
    let mut r = y0;
    while r <= 1.0 + 1e-9 {
        let yv = y(r);
        svg += &format!(
            "<line x1=\"{left}\" y1=\"{yv:.1}\" x2=\"{:.1}\" y2=\"{yv:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{r:.2}</text>\n",
            left + pw,
            left - 6.0,
            yv + 4.0
        );
        r += 0.05;
    }
    svg += &format!(
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"black\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">p50 latency per query (log scale)</text>\n\
         <text transform=\"translate(18,{:.1}) rotate(-90)\" text-anchor=\"middle\">recall@{}</text>\n",
        left + pw / 2.0,
        h - 16.0,
        top + ph / 2.0,
        a.k
    );
    let colours = [
        ("exact", "#1f77b4"),
        ("quantized", "#2ca02c"),
        ("binary", "#ff7f0e"),
        ("ann", "#d62728"),
        ("auto", "#9467bd"),
        ("sqlite-vec", "#7f7f7f"),
    ];
    for (i, (mode, colour)) in colours.iter().enumerate() {
        let mut ps: Vec<&Point> = points.iter().filter(|p| p.mode == *mode).collect();
        if ps.is_empty() {
            continue;
        }
        ps.sort_by(|p, q| p.p50_us.total_cmp(&q.p50_us));
        if ps.len() > 1 {
            let path: Vec<String> = ps
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.p50_us), y(p.recall)))
                .collect();
            svg += &format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>\n",
                path.join(" ")
            );
        }
        for p in &ps {
            let title = match p.knob {
                Some((n, v)) => format!(
                    "{mode} {n}={v}: p50 {:.1} µs (p99 {:.1}), recall {:.4}",
                    p.p50_us, p.p99_us, p.recall
                ),
                None => format!(
                    "{mode}: p50 {:.1} µs (p99 {:.1}), recall {:.4}",
                    p.p50_us, p.p99_us, p.recall
                ),
            };
            svg += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{title}</title></circle>\n",
                x(p.p50_us),
                y(p.recall)
            );
            if let Some((n, v)) = p.knob {
                svg += &format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"{colour}\">{n} {v}</text>\n",
                    x(p.p50_us) + 5.0,
                    y(p.recall) + 12.0
                );
            }
        }
        let ly = top + 16.0 + i as f64 * 20.0;
        let lxp = left + pw + 16.0;
        svg += &format!(
            "<circle cx=\"{lxp:.1}\" cy=\"{ly:.1}\" r=\"5\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{mode}</text>\n",
            lxp + 10.0,
            ly + 4.0
        );
    }
    svg += "</svg>\n";
    svg
}

/// What one engine measured (sqlite-vec).
struct Measured {
    insert_per_s: f64,
    single_p50_us: f64,
    search_p50_us: f64,
    search_p99_us: f64,
    recall: f64,
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
    path: &Path,
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
