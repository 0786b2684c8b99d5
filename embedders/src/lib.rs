//! Text embedders for reasonbank: turn text into unit-length vectors.
//!
//! ```no_run
//! # #[cfg(feature = "onnx")]
//! # mod demo {
//! use std::sync::Arc;
//! use reasonbank_embedders::{CachedEmbedder, EmbedKind, Embedder, OnnxEmbedder};
//! use reasonbank_embedders::provision::ProvisionOptions;
//!
//! # async fn demo() -> reasonbank_embedders::Result<()> {
//! // Finds the ONNX Runtime, model and tokenizer in the cache, downloading them if missing.
//! let opts = ProvisionOptions::new();
//! let onnx = tokio::task::spawn_blocking(move || OnnxEmbedder::new(&opts))
//!     .await
//!     .map_err(reasonbank_embedders::Error::Join)??;
//! let embedder: Arc<dyn Embedder> = Arc::new(CachedEmbedder::builder(Arc::new(onnx)).build()?);
//!
//! let query = embedder.embed_one("how do I reset my password?", EmbedKind::Query).await?;
//! let docs = embedder
//!     .embed(&["Click 'Forgot password' on the login page.".to_owned()], EmbedKind::Document)
//!     .await?;
//! let score: f32 = query.iter().zip(&docs[0]).map(|(a, b)| a * b).sum();
//! assert_eq!(query.len(), 384);
//! # let _ = score;
//! # Ok(())
//! # }
//! # }
//! ```
//!
//! # What is here
//!
//! - [`Embedder`], the object-safe async trait everything else implements, used as
//!   `Arc<dyn Embedder>`. It needs no feature.
//! - [`OnnxEmbedder`] (feature `onnx`, default): a [`LocalModel`] (all-MiniLM-L6-v2 by
//!   default, or bge-small-en-v1.5), int8, 384 dimensions, local, on a dynamically loaded ONNX
//!   Runtime. Its files come from [`provision`].
//! - [`OpenAiCompatibleEmbedder`] (feature `openai`, default): any `/v1/embeddings` server
//!   (OpenAI, ollama, vLLM, llama.cpp).
//! - [`Reranker`], the object-safe async trait of cross-encoders (a query and a document
//!   scored together), and [`HttpReranker`] (feature `openai`): any `/v1/rerank` server
//!   (llama.cpp with `--reranking`, vLLM, Jina, Cohere).
//! - [`CachedEmbedder`]: wraps any embedder so one text is embedded once; in memory (LRU), and
//!   with feature `sqlite` (default) optionally in a SQLite file.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `onnx` | yes | [`OnnxEmbedder`], [`provision`] (`ort`, `tokenizers`, `zip`) |
//! | `openai` | yes | [`OpenAiCompatibleEmbedder`], [`HttpReranker`] (`ureq` with rustls) |
//! | `sqlite` | yes | persistent cache for [`CachedEmbedder`] (`rusqlite`) |
//!
//! With `default-features = false` the crate is the trait, [`CachedEmbedder`] (memory only) and
//! the error type.
//!
//! # Environment
//!
//! - `REASONBANK_HOME`: models are cached in `$REASONBANK_HOME/models`; otherwise in
//!   `$XDG_CACHE_HOME/reasonbank` or `~/.cache/reasonbank`.
//! - `ORT_DYLIB_PATH`: the ONNX Runtime library to load instead of the cached one.
//!
//! # Empty texts
//!
//! Empty and whitespace-only texts are refused with [`Error::EmptyText`] by every embedder: the
//! vector a model gives them is an artefact, close to many unrelated texts, and storing it would
//! make search return noise. There is no silent fallback anywhere: a missing model or runtime is an
//! error naming the file and the command that fixes it (`reasonbank models fetch`).

mod cache;
mod embedder;
mod error;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "onnx")]
mod lazy;
#[cfg(feature = "onnx")]
mod local_model;
#[cfg(feature = "onnx")]
mod onnx;
#[cfg(feature = "openai")]
mod openai;
#[cfg(feature = "onnx")]
pub mod provision;
mod rerank;
#[cfg(feature = "test-server")]
pub mod test_server;

pub use cache::{CachedEmbedder, CachedEmbedderBuilder, DEFAULT_CACHE_CAPACITY};
pub use embedder::{EmbedKind, Embedder, Prefixes, check_texts, finish_vectors, normalize};
pub use error::{BoxError, Error, FIX_COMMAND, Result};
#[cfg(feature = "onnx")]
pub use lazy::LazyDefaultEmbedder;
#[cfg(feature = "onnx")]
pub use local_model::{BGE_QUERY_INSTRUCTION, LocalModel};
#[cfg(feature = "onnx")]
pub use onnx::{
    DEFAULT_DIMENSIONS, DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_LENGTH, DEFAULT_MODEL_ID,
    GraphOptimization, OnnxEmbedder, OnnxEmbedderBuilder, init_runtime,
};
#[cfg(feature = "openai")]
pub use openai::{OpenAiCompatibleEmbedder, OpenAiCompatibleEmbedderBuilder};
#[cfg(feature = "openai")]
pub use rerank::{HttpReranker, HttpRerankerBuilder};
pub use rerank::{Reranker, check_pair_texts};

/// The local embedder ([`ProvisionOptions::local_model`](provision::ProvisionOptions::local_model),
/// all-MiniLM-L6-v2 unless set, on ONNX Runtime, provisioned with `opts`) behind an in-memory
/// [`CachedEmbedder`], ready to share.
///
/// Blocking (it may download the model the first time): call it from `spawn_blocking` in async
/// code.
///
/// # Errors
///
/// As [`OnnxEmbedderBuilder::build`].
#[cfg(feature = "onnx")]
pub fn default_embedder(
    opts: &provision::ProvisionOptions,
) -> Result<std::sync::Arc<dyn Embedder>> {
    let onnx = OnnxEmbedder::new(opts)?;
    let cached = CachedEmbedder::builder(std::sync::Arc::new(onnx)).build()?;
    Ok(std::sync::Arc::new(cached))
}
