//! QUIC shard sync for reasonbank: delta pull with last-writer-wins, zstd-compressed
//! batches, and peers that authenticate each other by pinned certificate fingerprints.
//!
//! ```
//! use std::sync::Arc;
//! use reasonbank_memory::{Embedding, NewRecord, ShardId, Store, StoreOptions};
//! use reasonbank_sync::{generate_identity, Access, SyncClient, SyncConfig, SyncServer};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = |dir: &std::path::Path| {
//!     let mut o = StoreOptions::new();
//!     o.shard_options_mut().dimensions(3).model_id("toy-3d");
//!     Store::open(dir, o).map(Arc::new)
//! };
//! let (hub_dir, edge_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let (hub, edge) = (store(hub_dir.path())?, store(edge_dir.path())?);
//!
//! // Each side has a key pair and pins the other's certificate fingerprint.
//! let (cert, key) = generate_identity("hub")?;
//! let mut hub_cfg = SyncConfig::new(&cert, &key)?;
//! let (cert, key) = generate_identity("edge")?;
//! let mut edge_cfg = SyncConfig::new(&cert, &key)?;
//! hub_cfg.grant(edge_cfg.fingerprint(), None, Access::READ_WRITE);
//! edge_cfg.grant(hub_cfg.fingerprint(), None, Access::READ_WRITE);
//!
//! let server = SyncServer::bind("127.0.0.1:0".parse()?, Arc::clone(&hub), hub_cfg)?;
//! let client = SyncClient::connect(server.local_addr()?, edge_cfg).await?;
//!
//! let id = ShardId::new("coder")?;
//! let local = edge.shard(&id)?;
//! local.insert(&NewRecord::new("use exponential backoff", Embedding::new(vec![1.0, 0.2, 0.0])?))?;
//! let report = client.sync(&id, &local).await?;
//! assert_eq!(report.changes_sent, 1);
//! assert_eq!(hub.shard(&id)?.count(None)?, 1);
//! # Ok(()) }
//! ```
//!
//! # Layers
//!
//! - [`frame`]: length-prefixed frames with a maximum size; batches compressed with zstd;
//!   hardened decoding (typed errors, bounded decompression, never a panic).
//! - [`proto`]: the protocol as a pure state machine, messages and `now` in, messages out,
//!   with storage behind the [`proto::Replica`] trait; simulated deterministically in tests.
//! - [`quic`]: the quinn/rustls/tokio glue: [`SyncServer`], [`SyncClient`]; one connection per
//!   peer, one bidirectional stream per shard.
//! - [`reembed`]: the [`Reembedder`] hook of text-only sync.
//!
//! # Text-only sync
//!
//! With [`SyncConfig::text_only`] a client's sessions carry text, metadata and stamps but no
//! vectors (27× fewer bytes on the wire for short 384-d memories in `reasonbank-bench sync
//! --text-only`); each receiver re-embeds the texts with its [`Reembedder`]
//! ([`SyncConfig::reembedder`]) before it applies a batch, so rows still commit with their
//! vectors and the cursor. Re-embedding dominates the time (seconds per thousand memories
//! on a CPU, against tens of milliseconds for a full sync), so the mode fits slow or metered
//! links. Both shards and the re-embedder must use the same model id and dimensions. A pull without a re-embedder fails with
//! [`Error::NoReembedder`] before anything is sent; a server without one refuses text-only
//! pushes ([`quic::CODE_TEXT_ONLY`]).
//!
//! # Security
//!
//! TLS 1.3 only, with client certificates mandatory; each side accepts exactly the peers whose
//! certificate SHA-256 fingerprint it allows ([`SyncConfig::allow`], [`SyncConfig::grant`]),
//! checked in the TLS verifiers during the handshake and again by the application on every
//! connection (resumed sessions skip the verifiers). Every stream's shard and direction is
//! checked against the peer's grants before anything is read from or written to the shard;
//! a refused stream is reset with [`quic::CODE_DENIED`] and receives no data.
//!
//! 0-RTT: a client resuming a session may send an idempotent pull (never a push) as early
//! data. The server accepts early data at the TLS layer but does not use quinn's server-side
//! `into_0rtt`, which would hand over the connection before the client certificate is
//! checked; it reads streams only after the handshake, peer identity included, has completed.

#![forbid(unsafe_code)]

mod config;
mod error;
pub mod frame;
pub mod proto;
pub mod quic;
pub mod reembed;
mod tls;

pub use config::{Access, Fingerprint, SyncConfig, generate_identity};
pub use error::{Error, Result};
pub use quic::{SyncClient, SyncReport, SyncServer};
pub use reembed::{BoxError, Reembedder};
pub use tls::ALPN;
