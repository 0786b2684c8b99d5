//! [`EmbedderReembedder`]: the [`Embedder`] behind text-only shard sync.
//!
//! `reasonbank-sync` depends on `reasonbank-memory` only, so it takes the re-embedding hook
//! as a trait object; this adapter is where the facade plugs its embedder in.

use std::sync::Arc;

use async_trait::async_trait;

use crate::embedders::{EmbedKind, Embedder};
use crate::memory::Embedding;
use crate::sync::{BoxError, Reembedder};

/// A [`Reembedder`] that embeds received texts with an [`Embedder`] exactly as
/// [`AgentMemory::remember`](crate::AgentMemory::remember) does (document embeddings,
/// normalized by [`Embedding::new`]), so a row received in text-only mode gets the vector a
/// local write of the same text would have.
///
/// ```no_run
/// # async fn demo(memory: reasonbank::AgentMemory, cert: &str, key: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use reasonbank::EmbedderReembedder;
/// use reasonbank::sync::SyncConfig;
/// let mut config = SyncConfig::new(cert, key)?;
/// config
///     .text_only(true)
///     .reembedder(Arc::new(EmbedderReembedder::new(Arc::clone(memory.embedder()))));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct EmbedderReembedder {
    embedder: Arc<dyn Embedder>,
}

impl EmbedderReembedder {
    /// Re-embeds with `embedder`; its model id and dimensions must be the synced shards'.
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        EmbedderReembedder { embedder }
    }
}

#[async_trait]
impl Reembedder for EmbedderReembedder {
    fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    fn dimensions(&self) -> usize {
        self.embedder.dimensions()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Embedding>, BoxError> {
        let vectors = self.embedder.embed(texts, EmbedKind::Document).await?;
        vectors
            .into_iter()
            .map(|v| Embedding::new(v).map_err(BoxError::from))
            .collect()
    }
}
