//! `reasonbank-bench sync`: two peers on loopback QUIC. A server shard holds `n` records; a
//! client pulls them over a fresh connection (full TLS 1.3 handshake, mutual authentication),
//! then the server gets `n` more and the client pulls again over a resumed connection with
//! its first request in 0-RTT data. One JSON line per measured sync with `--json`.
//!
//! `converge_ms` runs from the start of the connection attempt to the commit of the last
//! batch; `converged` is true only when both shards then hold identical rows (compared in full,
//! vectors and tombstones included). The record set is realistic for agent memory: a sentence
//! of text, a small metadata object and a 384-d clustered unit vector per record. The zstd
//! ratios of batches of the vectors alone and of the text and metadata alone are reported too.
//!
//! With `--text-only` the shards use the real model (all-MiniLM-L6-v2, 384-d, uncached): the
//! server's vectors are the model's embeddings of its texts, and every round is measured
//! twice on the same data in the same run, once in full (modes `fresh`, `0rtt`) and once
//! text-only (`fresh-text`, `0rtt-text`) into another client shard, whose receiver re-embeds
//! every text (`reembed_ms`, `reembedded`). A text-only sync has `converged` when text,
//! metadata, stamps and tombstones are identical and every vector is within cosine 0.9999 of
//! the sender's (`min_cosine`; the two sides' inference batches differ, so vectors may differ
//! in the last bits).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use reasonbank::EmbedderReembedder;
use reasonbank::embedders::provision::ProvisionOptions;
use reasonbank::embedders::{EmbedKind, Embedder, OnnxEmbedder};
use reasonbank::memory::{Change, Embedding, NewRecord, Shard, ShardId, Store, StoreOptions};
use reasonbank::sync::proto::{Batch, Message};
use reasonbank::sync::{
    Access, SyncClient, SyncConfig, SyncReport, SyncServer, frame, generate_identity,
};
use serde_json::json;

use crate::data::clustered;

/// Arguments of `sync`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Records on the server before the first sync (and added again before the reconnect).
    #[arg(long, default_value_t = 1_000)]
    n: usize,
    /// Dimensions.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Independent runs (fresh peers each time).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Changes per batch.
    #[arg(long, default_value_t = 2048)]
    batch_size: u32,
    /// zstd level for batches (0 = uncompressed).
    #[arg(long, default_value_t = 1)]
    zstd_level: i32,
    /// Changes per text-only batch (each re-embedded in one call).
    #[arg(long, default_value_t = 256)]
    text_only_batch_size: u32,
    /// Also measure text-only sync (receiver re-embeds with the real model) on the same data;
    /// the shards then hold the real model's vectors and `--dim` is the model's.
    #[arg(long)]
    text_only: bool,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

const WORDS: &[&str] = &[
    "retry",
    "the",
    "request",
    "with",
    "exponential",
    "backoff",
    "cache",
    "parsed",
    "config",
    "timeout",
    "agent",
    "memory",
    "pattern",
    "failed",
    "because",
    "of",
    "a",
    "missing",
    "token",
    "use",
    "jitter",
    "and",
    "log",
    "error",
    "context",
    "before",
    "returning",
    "tool",
    "call",
];

/// `n` records; with `model`, their vectors are its embeddings of their texts, otherwise
/// clustered random unit vectors.
async fn records(
    n: usize,
    dim: usize,
    seed: u64,
    model: Option<&Arc<dyn Embedder>>,
) -> anyhow::Result<Vec<NewRecord>> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut texts = Vec::with_capacity(n);
    let mut metas = Vec::with_capacity(n);
    for i in 0..n {
        let len = 12 + (next() % 20) as usize;
        let text: Vec<&str> = (0..len)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect();
        texts.push(text.join(" "));
        metas.push(json!({
            "task": format!("task-{}", i % 50),
            "outcome": if next() % 3 == 0 { "failure" } else { "success" },
            "tags": ["http", "rust"],
        }));
    }
    let vecs = match model {
        Some(m) => m.embed(&texts, EmbedKind::Document).await?,
        None => clustered(n, dim, seed, 7),
    };
    texts
        .into_iter()
        .zip(metas)
        .zip(vecs)
        .map(|((text, meta), v)| {
            let mut r = NewRecord::new(text, Embedding::new(v)?);
            r.kind("experience").metadata(meta);
            Ok(r)
        })
        .collect()
}

fn store(dir: &std::path::Path, dim: usize, model_id: &str) -> anyhow::Result<Arc<Store>> {
    let mut o = StoreOptions::new();
    o.shard_options_mut().dimensions(dim).model_id(model_id);
    Ok(Arc::new(Store::open(dir, o)?))
}

fn contents(s: &Shard) -> anyhow::Result<Vec<Change>> {
    let mut all = s.changes_since(0, usize::MAX)?;
    for c in &mut all {
        c.seq = 0;
    }
    all.sort_by_key(|c| c.id);
    Ok(all)
}

/// Compression ratio of a batch frame holding `changes` (postcard bytes / frame bytes).
fn ratio(changes: Vec<Change>, level: i32) -> anyhow::Result<f64> {
    let msg = Message::Batch(Batch {
        req: 1,
        origin: "bench".into(),
        after: 0,
        upto: 0,
        more: false,
        changes,
    });
    let f = frame::encode(&msg, level, u32::MAX as usize)?;
    Ok(f.raw_len as f64 / f.bytes.len() as f64)
}

fn print(
    args: &Args,
    mode: &str,
    run: usize,
    ms: f64,
    converged: bool,
    r: &SyncReport,
    extra: serde_json::Value,
) {
    let mut line = json!({
        "bench": "sync",
        "mode": mode,
        "run": run,
        "n": args.n,
        "dim": args.dim,
        "converge_ms": ms,
        "converged": converged,
        "changes": r.changes_received,
        "bytes_on_wire": r.bytes_on_wire(),
        "compression_ratio": r.compression_ratio(),
        "zero_rtt": r.zero_rtt,
        "reembedded": r.changes_reembedded,
        "reembed_ms": r.reembed_time.as_secs_f64() * 1e3,
    });
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        l.extend(e.clone());
    }
    if args.json {
        println!("{line}");
    } else {
        println!(
            "{mode:>10} run {run}: n={} {:.1} ms converged={converged} wire={} B ratio={:.2} zero_rtt={} reembed={:.1} ms",
            args.n,
            ms,
            r.bytes_on_wire(),
            r.compression_ratio(),
            r.zero_rtt,
            r.reembed_time.as_secs_f64() * 1e3
        );
    }
}

/// Runs the benchmark.
///
/// # Errors
/// Any storage, TLS or QUIC failure.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

/// Whether `b` holds `a`'s rows: identical, or, for a text-only receiver, identical but for
/// vectors within cosine 0.9999 of the sender's. Returns it and the lowest cosine.
fn compare(a: &Shard, b: &Shard, text_only: bool) -> anyhow::Result<(bool, f32)> {
    let (ra, rb) = (contents(a)?, contents(b)?);
    if !text_only {
        return Ok((ra == rb, 1.0));
    }
    let strip = |v: &[Change]| -> Vec<Change> {
        v.iter()
            .map(|c| Change {
                embedding: None,
                ..c.clone()
            })
            .collect()
    };
    let mut min = 1.0f32;
    for (x, y) in ra.iter().zip(&rb) {
        if let (Some(x), Some(y)) = (&x.embedding, &y.embedding) {
            let cos: f32 = x
                .as_slice()
                .iter()
                .zip(y.as_slice())
                .map(|(p, q)| p * q)
                .sum();
            min = min.min(cos);
        }
    }
    Ok((strip(&ra) == strip(&rb) && min > 0.9999, min))
}

async fn run_async(args: &Args) -> anyhow::Result<()> {
    let id = ShardId::new("bench")?;
    // The real model, uncached: the receiver of a text-only sync pays for every text.
    let model: Option<Arc<dyn Embedder>> = if args.text_only {
        let onnx =
            tokio::task::spawn_blocking(|| OnnxEmbedder::new(&ProvisionOptions::new())).await??;
        Some(Arc::new(onnx))
    } else {
        None
    };
    let (dim, model_id) = match &model {
        Some(m) => (m.dimensions(), m.model_id().to_owned()),
        None => (args.dim, "bench-model".to_owned()),
    };
    for run in 0..args.runs {
        let (dir_a, dir_b, dir_c) = (
            tempfile::tempdir()?,
            tempfile::tempdir()?,
            tempfile::tempdir()?,
        );
        let (a, b, c) = (
            store(dir_a.path(), dim, &model_id)?,
            store(dir_b.path(), dim, &model_id)?,
            store(dir_c.path(), dim, &model_id)?,
        );
        let (sa, sb, sc) = (a.shard(&id)?, b.shard(&id)?, c.shard(&id)?);
        let recs = records(args.n, dim, run as u64 * 2 + 1, model.as_ref()).await?;
        let t = Instant::now();
        sa.insert_batch(&recs)?;
        // The floor a sync cannot beat: writing the same rows locally in one transaction.
        let insert_ms = t.elapsed().as_secs_f64() * 1e3;
        drop(recs);

        // Ratios of the parts: the same rows as batches of vectors only and of text and
        // metadata only.
        let rows = sa.changes_since(0, usize::MAX)?;
        let vectors_only = rows
            .iter()
            .map(|c| Change {
                text: String::new(),
                metadata: String::new(),
                ..c.clone()
            })
            .collect();
        let text_only = rows
            .iter()
            .map(|c| Change {
                embedding: None,
                ..c.clone()
            })
            .collect();
        let level = args.zstd_level.max(1);
        let parts = json!({
            "local_insert_ms": insert_ms,
            "zstd_ratio_vectors": ratio(vectors_only, level)?,
            "zstd_ratio_text_metadata": ratio(text_only, level)?,
        });

        let (ca, ka) = generate_identity("bench-server")?;
        let (cb, kb) = generate_identity("bench-client")?;
        let mut server_cfg = SyncConfig::new(&ca, &ka)?;
        let mut client_cfg = SyncConfig::new(&cb, &kb)?;
        server_cfg.grant(client_cfg.fingerprint(), None, Access::READ_WRITE);
        client_cfg.grant(server_cfg.fingerprint(), None, Access::READ_WRITE);
        for c in [&mut server_cfg, &mut client_cfg] {
            c.batch_size(args.batch_size)
                .text_only_batch_size(args.text_only_batch_size)
                .zstd_level(args.zstd_level);
        }
        let addr: SocketAddr = "127.0.0.1:0".parse()?;
        let server = SyncServer::bind(addr, Arc::clone(&a), server_cfg)?;
        let addr = server.local_addr()?;

        // One client per mode, each into its own shard; in text-only runs the order of the
        // two alternates between runs so neither always meets a warm server.
        let mut clients = vec![(false, sb)];
        if model.is_some() {
            clients.push((true, sc));
            if run % 2 == 1 {
                clients.reverse();
            }
        }
        let mut connected = Vec::new();
        for (text, local) in clients {
            let mut cfg = client_cfg.clone();
            if let (true, Some(m)) = (text, &model) {
                cfg.text_only(true)
                    .reembedder(Arc::new(EmbedderReembedder::new(Arc::clone(m))));
            }
            // Fresh: connect (full handshake) and pull everything.
            let t = Instant::now();
            let client = SyncClient::connect(addr, cfg).await?;
            let report = client.pull(&id, &local).await.context("fresh pull")?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let (converged, min_cos) = compare(&sa, &local, text)?;
            let mut extra = parts.clone();
            if text {
                extra["min_cosine"] = json!(min_cos);
            }
            let mode = if text { "fresh-text" } else { "fresh" };
            print(args, mode, run, ms, converged, &report, extra);
            connected.push((text, local, client));
        }

        // 0-RTT: n more records, then a resumed connection whose first pull is early data.
        sa.insert_batch(&records(args.n, dim, run as u64 * 2 + 2, model.as_ref()).await?)?;
        for (text, local, mut client) in connected {
            let t = Instant::now();
            client.reconnect().await?;
            let report = client.pull(&id, &local).await.context("0-RTT pull")?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let (converged, min_cos) = compare(&sa, &local, text)?;
            let mut extra = json!({ "zero_rtt_accepted": client.zero_rtt_accepted() });
            if text {
                extra["min_cosine"] = json!(min_cos);
            }
            let mode = if text { "0rtt-text" } else { "0rtt" };
            print(args, mode, run, ms, converged, &report, extra);
            client.close();
        }
        server.close();
    }
    Ok(())
}
