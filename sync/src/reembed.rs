//! [`Reembedder`]: how text-only sync turns received texts back into vectors.
//!
//! In text-only mode ([`SyncConfig::text_only`](crate::SyncConfig::text_only)) the sender
//! leaves out the vector of every live row whose text can be embedded, and the receiver
//! embeds those texts with its own copy of the model before it applies the batch, so rows and
//! their vectors commit together with the cursor. This crate does not depend on any embedder
//! (`sync` → `memory` only): the application passes one in as an `Arc<dyn Reembedder>` (the
//! `reasonbank` facade adapts its `Embedder`).

use std::fmt;

use async_trait::async_trait;
use reasonbank_memory::Embedding;

/// A boxed error of a [`Reembedder`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Turns the texts of received rows into the vectors the local shard stores for them.
///
/// # Contract
///
/// `embed(texts)` returns one unit-length vector of [`dimensions`](Self::dimensions)
/// components per text, in order, made the way local writes of the shard make theirs (for
/// `AgentMemory` shards: the document embedding of the text). Text-only sync is only sound
/// when every vector of the shard is the model's embedding of its row's text, which is what
/// `AgentMemory` writes; shards of raw vectors must sync in full.
///
/// The texts are never empty or whitespace only: rows with such texts travel with their
/// vector.
#[async_trait]
pub trait Reembedder: Send + Sync + fmt::Debug {
    /// The model id of the vectors; it must equal the shard's `model_id`.
    fn model_id(&self) -> &str;
    /// The length of every vector; it must equal the shard's dimensions.
    fn dimensions(&self) -> usize;
    /// Embeds `texts`, one vector per text, in order.
    ///
    /// # Errors
    /// Whatever the embedding backend reports; the batch is then not applied.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Embedding>, BoxError>;
}

/// Whether a text can be re-embedded: not empty and not whitespace only (embedders refuse
/// those). The sender keeps the vector of a live row whose text is not embeddable.
pub fn embeddable(text: &str) -> bool {
    !text.trim().is_empty()
}
