//! `reasonbank-bench embed`: the default ONNX embedder measured against Python fastembed.
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
//!   `ratio_vs_python_fastembed`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reasonbank::embedders::provision::{self, ProvisionOptions};
use reasonbank::embedders::{EmbedKind, Embedder, OnnxEmbedder};

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
}

/// Arguments of the hidden `embed-cold` mode.
#[derive(clap::Args)]
pub struct ColdArgs {
    /// ONNX Runtime intra-op threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Loads the default embedder, embeds one text and prints `ok`: what `cold_start_ms` times.
pub fn cold(args: &ColdArgs) -> anyhow::Result<()> {
    let trace = std::env::var_os("REASONBANK_BENCH_TRACE").is_some();
    let start = Instant::now();
    let mut opts = ProvisionOptions::new();
    opts.allow_fetch(false);
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

fn cold_start_ms(threads: usize, runs: usize) -> anyhow::Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let mut child = Command::new(&exe)
            .args(["embed-cold", "--threads", &threads.to_string()])
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

/// Runs `reasonbank-bench embed`.
pub fn run(args: &EmbedArgs) -> anyhow::Result<()> {
    let texts = read_texts(&args.input, &args.field)?;
    let opts = ProvisionOptions::new();
    let files = provision::resolve(&opts)?;
    // Before this process loads a model, so its runtime threads cannot compete with the child's.
    let (cold_ms, cold_first_ms) = cold_start_ms(args.threads, args.cold_runs)?;
    let mut builder = OnnxEmbedder::builder();
    builder.files(files.clone()).intra_threads(args.threads);
    if let Some(tokens) = args.max_batch_tokens {
        builder.max_batch_tokens(tokens);
    }
    let embedder = builder.build()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    // Warm-up, then throughput.
    runtime.block_on(embedder.embed(&texts[..texts.len().min(16)], EmbedKind::Document))?;
    let mut best = Duration::MAX;
    let mut vectors = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let start = Instant::now();
        vectors = runtime.block_on(embedder.embed(&texts, EmbedKind::Document))?;
        best = best.min(start.elapsed());
    }
    let texts_per_s = texts.len() as f64 / best.as_secs_f64();

    // The short texts alone (at most 20 words), like queries and one-line memories.
    let short: Vec<String> = texts
        .iter()
        .filter(|t| t.split_whitespace().count() <= 20)
        .cloned()
        .collect();
    let mut short_best = Duration::MAX;
    if !short.is_empty() {
        for _ in 0..args.repeat.max(1) {
            let start = Instant::now();
            runtime.block_on(embedder.embed(&short, EmbedKind::Document))?;
            short_best = short_best.min(start.elapsed());
        }
    }
    let short_texts_per_s = short.len() as f64 / short_best.as_secs_f64();

    let mut latencies = Vec::with_capacity(args.latency_samples);
    for _ in 0..args.latency_samples.max(1) {
        let start = Instant::now();
        runtime.block_on(embedder.embed_one(SHORT_QUERY, EmbedKind::Query))?;
        latencies.push(start.elapsed());
    }
    let p50_short_ms = percentile(&mut latencies, 0.5);
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
