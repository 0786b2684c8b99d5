//! `reasonbank-bench embed`: a local ONNX embedder (`--model`, all-MiniLM-L6-v2 by default)
//! measured against Python fastembed, and against another local model (`--compare-model`).
//!
//! One run measures, on the texts of a JSONL file:
//! - `texts_per_s`: all texts embedded in one call (the embedder batches them), best of
//!   `--repeat` runs after a warm-up;
//! - `short_texts_per_s`: the same for the texts of at most 20 words;
//! - `p50_short_ms`: one short query through the async `Embedder::embed_one` path;
//! - `cold_start_ms`: wall time from spawning this binary in a mode that loads the model and
//!   embeds one text to reading its output (median of `--cold-runs`);
//! - `peak_rss_mb`: this process's `VmHWM`;
//! - the same texts, model files and thread count through Python fastembed 0.9.1
//!   (`benches/python/fastembed_bench.py`, in a virtualenv under the model cache), giving
//!   `ratio_vs_python_fastembed`;
//! - with `--compare-model M`: `texts_per_s`, `short_texts_per_s` and `p50_short_ms` of model
//!   `M` on the same texts in the same process, measured in turns with `--model`'s (each
//!   round measures both), and their ratios.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reasonbank::embedders::provision::{self, ProvisionOptions};
use reasonbank::embedders::{EmbedKind, Embedder, LocalModel, OnnxEmbedder};

/// The short query used for latency and cold start.
const SHORT_QUERY: &str = "how do I reset my password?";

/// Arguments of `reasonbank-bench embed`.
#[derive(clap::Args)]
pub struct EmbedArgs {
    /// JSONL file with one object per line.
    #[arg(long)]
    input: PathBuf,
    /// Field of each object holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// ONNX Runtime intra-op threads (both engines).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Throughput runs (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Cold-start runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    cold_runs: usize,
    /// Single-query latency samples.
    #[arg(long, default_value_t = 200)]
    latency_samples: usize,
    /// Padded tokens per inference call (default: the library default).
    #[arg(long)]
    max_batch_tokens: Option<usize>,
    /// Skip the Python fastembed comparison.
    #[arg(long)]
    no_python: bool,
    /// Batch size for Python fastembed (its default is 256; smaller is faster on mixed lengths).
    #[arg(long, default_value_t = 256)]
    python_batch_size: usize,
    /// Python with fastembed 0.9.1 installed (default: a virtualenv created under the model cache).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The local model measured.
    #[arg(long, default_value = "all-MiniLM-L6-v2")]
    model: LocalModel,
    /// A second local model measured on the same texts in the same run, in turns with the
    /// first.
    #[arg(long)]
    compare_model: Option<LocalModel>,
}

/// Arguments of the hidden `embed-cold` mode.
#[derive(clap::Args)]
pub struct ColdArgs {
    /// ONNX Runtime intra-op threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The local model.
    #[arg(long, default_value = "all-MiniLM-L6-v2")]
    model: LocalModel,
}

/// Loads the default embedder, embeds one text and prints `ok`: what `cold_start_ms` times.
pub fn cold(args: &ColdArgs) -> anyhow::Result<()> {
    let trace = std::env::var_os("REASONBANK_BENCH_TRACE").is_some();
    let start = Instant::now();
    let mut opts = ProvisionOptions::new();
    opts.allow_fetch(false).local_model(args.model);
    let files = provision::resolve(&opts)?;
    let resolved = start.elapsed();
    let embedder = OnnxEmbedder::builder()
        .files(files)
        .intra_threads(args.threads)
        .build()?;
    let built = start.elapsed();
    let v = embedder.embed_blocking(&[SHORT_QUERY.to_owned()], EmbedKind::Query)?;
    if trace {
        eprintln!(
            "resolve {resolved:?}, build {:?}, first embed {:?}",
            built - resolved,
            start.elapsed() - built
        );
    }
    anyhow::ensure!(v.len() == 1 && v[0].len() == 384);
    println!("ok");
    Ok(())
}

/// The `field` strings of a JSON-lines file, one object per line (blank lines skipped).
pub(crate) fn read_texts(path: &Path, field: &str) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut texts = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        match value.get(field).and_then(|v| v.as_str()) {
            Some(text) if !text.trim().is_empty() => texts.push(text.to_owned()),
            _ => bail!("line {}: no non-empty string field {field:?}", n + 1),
        }
    }
    anyhow::ensure!(!texts.is_empty(), "{} has no texts", path.display());
    Ok(texts)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i].as_secs_f64() * 1e3
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn cold_start_ms(threads: usize, runs: usize, model: LocalModel) -> anyhow::Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let mut child = Command::new(&exe)
            .args(["embed-cold", "--threads", &threads.to_string()])
            .args(["--model", model.name()])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let elapsed = start.elapsed();
        let status = child.wait()?;
        anyhow::ensure!(
            status.success() && line.trim() == "ok",
            "cold run failed: {status}"
        );
        samples.push(elapsed);
    }
    let first = samples[0].as_secs_f64() * 1e3;
    Ok((percentile(&mut samples, 0.5), first))
}

/// A Python with fastembed 0.9.1 and onnxruntime 1.31.1, in a virtualenv under the cache.
fn fastembed_python(cache: &Path) -> anyhow::Result<PathBuf> {
    let venv = cache.join("venv-fastembed-bench");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".ready-fastembed-0.9.1");
    if !ready.exists() {
        let run = |cmd: &mut Command| -> anyhow::Result<()> {
            let status = cmd.status()?;
            anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
            Ok(())
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "fastembed==0.9.1",
            "onnxruntime==1.31.1",
        ]))?;
        std::fs::write(&ready, "")?;
    }
    Ok(python)
}

fn run_python(
    args: &EmbedArgs,
    python: &Path,
    files: &provision::ModelFiles,
) -> anyhow::Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/fastembed_bench.py");
    let output = Command::new(python)
        .arg(&script)
        .arg("--input")
        .arg(&args.input)
        .args([
            "--field",
            &args.field,
            "--threads",
            &args.threads.to_string(),
        ])
        .args(["--repeat", &args.repeat.to_string()])
        .args(["--latency-samples", &args.latency_samples.to_string()])
        .arg("--model")
        .arg(&files.model)
        .arg("--tokenizer-dir")
        .arg(&files.tokenizer_dir)
        .args(["--short-query", SHORT_QUERY])
        .args(["--batch-size", &args.python_batch_size.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "python benchmark failed");
    let stdout = String::from_utf8(output.stdout)?;
    let last = stdout.lines().last().context("python printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

/// What one round measures of one embedder.
struct Round {
    /// All texts in one call.
    all: Duration,
    /// The short texts in one call.
    short: Duration,
    /// One short query at a time.
    latencies: Vec<Duration>,
}

/// One round on `embedder`: the texts, the short texts, then `samples` single queries.
fn measure(
    runtime: &tokio::runtime::Runtime,
    embedder: &OnnxEmbedder,
    texts: &[String],
    short: &[String],
    samples: usize,
) -> anyhow::Result<(Round, Vec<Vec<f32>>)> {
    let start = Instant::now();
    let vectors = runtime.block_on(embedder.embed(texts, EmbedKind::Document))?;
    let all = start.elapsed();
    let start = Instant::now();
    if !short.is_empty() {
        runtime.block_on(embedder.embed(short, EmbedKind::Document))?;
    }
    let short = start.elapsed();
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let start = Instant::now();
        runtime.block_on(embedder.embed_one(SHORT_QUERY, EmbedKind::Query))?;
        latencies.push(start.elapsed());
    }
    Ok((
        Round {
            all,
            short,
            latencies,
        },
        vectors,
    ))
}

/// The best throughputs and the median latency over `rounds`: `(texts/s, short texts/s,
/// p50 ms)`.
fn summarize(rounds: &[Round], texts: usize, short: usize) -> (f64, f64, f64) {
    let best_all = rounds.iter().map(|r| r.all).min().unwrap_or(Duration::MAX);
    let best_short = rounds
        .iter()
        .map(|r| r.short)
        .min()
        .unwrap_or(Duration::MAX);
    let mut latencies: Vec<Duration> = rounds.iter().flat_map(|r| r.latencies.clone()).collect();
    (
        texts as f64 / best_all.as_secs_f64(),
        short as f64 / best_short.as_secs_f64(),
        percentile(&mut latencies, 0.5),
    )
}

fn build(files: provision::ModelFiles, args: &EmbedArgs) -> anyhow::Result<OnnxEmbedder> {
    let mut builder = OnnxEmbedder::builder();
    builder.files(files).intra_threads(args.threads);
    if let Some(tokens) = args.max_batch_tokens {
        builder.max_batch_tokens(tokens);
    }
    Ok(builder.build()?)
}

/// Runs `reasonbank-bench embed`.
pub fn run(args: &EmbedArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.no_python || args.model == LocalModel::AllMiniLmL6V2,
        "the Python fastembed comparison runs all-MiniLM-L6-v2's recipe only; pass --no-python"
    );
    let texts = read_texts(&args.input, &args.field)?;
    let mut opts = ProvisionOptions::new();
    opts.local_model(args.model);
    let files = provision::resolve(&opts)?;
    // Before this process loads a model, so its runtime threads cannot compete with the child's.
    let (cold_ms, cold_first_ms) = cold_start_ms(args.threads, args.cold_runs, args.model)?;
    let embedder = build(files.clone(), args)?;
    let other = match args.compare_model {
        Some(m) => {
            let mut o = ProvisionOptions::new();
            o.local_model(m);
            Some(build(provision::resolve(&o)?, args)?)
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    // The short texts alone (at most 20 words), like queries and one-line memories.
    let short: Vec<String> = texts
        .iter()
        .filter(|t| t.split_whitespace().count() <= 20)
        .cloned()
        .collect();
    // Warm-up, then rounds; with a second model, each round measures both in turn.
    for e in std::iter::once(&embedder).chain(&other) {
        runtime.block_on(e.embed(&texts[..texts.len().min(16)], EmbedKind::Document))?;
    }
    let samples = args.latency_samples / args.repeat.max(1);
    let (mut mine, mut theirs, mut vectors) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.repeat.max(1) {
        let (round, v) = measure(&runtime, &embedder, &texts, &short, samples)?;
        mine.push(round);
        vectors = v;
        if let Some(o) = &other {
            theirs.push(measure(&runtime, o, &texts, &short, samples)?.0);
        }
    }
    let (texts_per_s, short_texts_per_s, p50_short_ms) = summarize(&mine, texts.len(), short.len());
    let peak_rss = peak_rss_mb();

    let mut report = serde_json::json!({
        "bench": "embed",
        "model": embedder.model_id(),
        "texts": texts.len(),
        "threads": args.threads,
        "texts_per_s": round(texts_per_s),
        "short_texts": short.len(),
        "short_texts_per_s": round(short_texts_per_s),
        "p50_short_ms": round(p50_short_ms),
        "cold_start_ms": round(cold_ms),
        "cold_start_first_ms": round(cold_first_ms),
        "peak_rss_mb": peak_rss.map(round),
    });
    if let Some(o) = &other {
        let (tps, short_tps, p50) = summarize(&theirs, texts.len(), short.len());
        report["compare_model"] = o.model_id().into();
        report["compare_texts_per_s"] = round(tps).into();
        report["compare_short_texts_per_s"] = round(short_tps).into();
        report["compare_p50_short_ms"] = round(p50).into();
        report["ratio_texts_per_s_vs_compare"] = round(texts_per_s / tps).into();
        report["ratio_p50_short_vs_compare"] = round(p50_short_ms / p50).into();
    }

    if !args.no_python {
        let python = match &args.python {
            Some(p) => p.clone(),
            None => fastembed_python(&opts.effective_cache_dir()?)?,
        };
        let py = run_python(args, &python, &files)?;
        let py_tps = py["texts_per_s"].as_f64().context("python texts_per_s")?;
        // Agreement on the first vectors (same model, same truncation, same pooling).
        let mut max_diff = 0.0f32;
        if let Some(first) = py["first_vectors"].as_array() {
            for (v, mine) in first.iter().zip(&vectors) {
                for (a, b) in v.as_array().into_iter().flatten().zip(mine) {
                    max_diff = max_diff.max((a.as_f64().unwrap_or(f64::NAN) as f32 - b).abs());
                }
            }
        }
        report["python_fastembed_batch_size"] = args.python_batch_size.into();
        report["python_fastembed_texts_per_s"] = round(py_tps).into();
        report["python_fastembed_p50_short_ms"] = py["p50_short_ms"].clone();
        report["python_fastembed_peak_rss_mb"] = py["peak_rss_mb"].clone();
        report["python_fastembed_load_ms"] = py["load_ms"].clone();
        report["ratio_vs_python_fastembed"] = round(texts_per_s / py_tps).into();
        report["max_abs_diff_vs_python"] = f64::from(max_diff).into();
    }

    if args.json {
        println!("{report}");
    } else if let Some(map) = report.as_object() {
        for (k, v) in map {
            println!("{k:32} {v}");
        }
    }
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
