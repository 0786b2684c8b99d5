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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
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

fn records(n: usize, dim: usize, seed: u64) -> anyhow::Result<Vec<NewRecord>> {
    let vecs = clustered(n, dim, seed, 7);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    vecs.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let len = 12 + (next() % 20) as usize;
            let text: Vec<&str> = (0..len)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            let mut r = NewRecord::new(text.join(" "), Embedding::new(v)?);
            r.kind("experience").metadata(json!({
                "task": format!("task-{}", i % 50),
                "outcome": if next() % 3 == 0 { "failure" } else { "success" },
                "tags": ["http", "rust"],
            }));
            Ok(r)
        })
        .collect()
}

fn store(dir: &std::path::Path, dim: usize) -> anyhow::Result<Arc<Store>> {
    let mut o = StoreOptions::new();
    o.shard_options_mut()
        .dimensions(dim)
        .model_id("bench-model");
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
    });
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        l.extend(e.clone());
    }
    if args.json {
        println!("{line}");
    } else {
        println!(
            "{mode:>6} run {run}: n={} {:.1} ms converged={converged} wire={} B ratio={:.2} zero_rtt={}",
            args.n,
            ms,
            r.bytes_on_wire(),
            r.compression_ratio(),
            r.zero_rtt
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

async fn run_async(args: &Args) -> anyhow::Result<()> {
    let id = ShardId::new("bench")?;
    for run in 0..args.runs {
        let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (a, b) = (
            store(dir_a.path(), args.dim)?,
            store(dir_b.path(), args.dim)?,
        );
        let (sa, sb) = (a.shard(&id)?, b.shard(&id)?);
        let recs = records(args.n, args.dim, run as u64 * 2 + 1)?;
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
            c.batch_size(args.batch_size).zstd_level(args.zstd_level);
        }
        let addr: SocketAddr = "127.0.0.1:0".parse()?;
        let server = SyncServer::bind(addr, Arc::clone(&a), server_cfg)?;
        let addr = server.local_addr()?;

        // Fresh: connect (full handshake) and pull everything.
        let t = Instant::now();
        let mut client = SyncClient::connect(addr, client_cfg).await?;
        let report = client.pull(&id, &sb).await.context("fresh pull")?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let converged = contents(&sa)? == contents(&sb)?;
        print(args, "fresh", run, ms, converged, &report, parts.clone());

        // 0-RTT: n more records, then a resumed connection whose first pull is early data.
        sa.insert_batch(&records(args.n, args.dim, run as u64 * 2 + 2)?)?;
        let t = Instant::now();
        client.reconnect().await?;
        let report = client.pull(&id, &sb).await.context("0-RTT pull")?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let converged = contents(&sa)? == contents(&sb)?;
        let accepted = json!({ "zero_rtt_accepted": client.zero_rtt_accepted() });
        print(args, "0rtt", run, ms, converged, &report, accepted);
        client.close();
        server.close();
    }
    Ok(())
}
