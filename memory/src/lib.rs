//! Per-agent SQLite shards with SIMD exact vector search, metadata filters and BM25 hybrid
//! search: the storage and retrieval core of reasonbank.
//!
//! A [`Store`] is a directory of shards; a [`Shard`] is one SQLite file per agent holding
//! records (text, JSON metadata, a unit-length vector, timestamps and sync stamps) and an FTS5
//! index over the text. In memory, derived from the rows, each open shard keeps a contiguous
//! arena of the live vectors that exact search scans with the fastest SIMD kernel of the CPU,
//! and a BM25 inverted index that ranks text with FTS5's terms and formula.
//!
//! ```
//! use reasonbank_memory::{Embedding, Filter, NewRecord, Query, SearchOptions, ShardId, Store, StoreOptions};
//!
//! # fn main() -> reasonbank_memory::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let mut opts = StoreOptions::new();
//! opts.shard_options_mut().dimensions(3).model_id("toy-3d");
//! let store = Store::open(dir.path(), opts)?;
//! let shard = store.shard(&ShardId::new("coder")?)?;
//!
//! let mut rec = NewRecord::new("use exponential backoff", Embedding::new(vec![1.0, 0.2, 0.0])?);
//! rec.kind("pattern").metadata(serde_json::json!({"lang": "rust"}));
//! let id = shard.insert(&rec)?;
//! shard.insert(&NewRecord::new("cache the parsed config", Embedding::new(vec![0.0, 1.0, 0.3])?))?;
//!
//! let mut o = SearchOptions::new(1);
//! o.filter(r#"{"eq": {"field": "lang", "value": "rust"}}"#.parse::<Filter>()?);
//! let hits = shard.search(&Query::hybrid(Embedding::new(vec![0.9, 0.1, 0.0])?, "backoff"), &o)?;
//! assert_eq!(hits[0].id, id);
//! # Ok(()) }
//! ```

mod ann;
mod arena;
mod counters;
mod embedding;
mod error;
mod filter;
mod id;
pub mod kernels;
mod quant;
mod record;
mod replication;
mod schema;
mod search;
mod shard;
mod store;
mod text;
mod tokenize;

pub use ann::{
    AUTO_MIN_RECALL, INDEX_SUFFIX, IndexError, IndexFileError, IndexFileOutcome, IndexStatus,
    index_path,
};
pub use counters::{COUNTERS_KEY, Counters, MAX_COUNTER_KEY_BYTES};
pub use embedding::Embedding;
pub use error::{Error, Result};
pub use filter::{Filter, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, TimeRange};
pub use id::{MAX_SHARD_ID_LEN, RecordId, ShardId};
pub use record::{
    DEFAULT_KIND, MAX_KIND_BYTES, MAX_METADATA_BYTES, MAX_NAMESPACE_BYTES, MAX_TEXT_BYTES,
    MAX_TIMESTAMP_MS, NewRecord, Record, RecordUpdate, check_content, check_created_at,
};
pub use replication::{
    ApplyReport, Change, LocalRow, MAX_ORIGIN_BYTES, MAX_VERSION, Resolution, resolve,
};
pub use schema::{APPLICATION_ID, Durability, PAGE_SIZE, SCHEMA_VERSION};
pub use search::{
    AUTO_QUANTIZED_ROWS, BINARY_RESCORE, BINARY_RESCORE_PER_HIT, Fusion, MAX_K, QUANTIZED_RESCORE,
    Query, STOP_WORDS, SearchHit, SearchMode, SearchOptions, TEXT_BONUS,
};
pub use shard::{MAX_DIMENSIONS, Shard, ShardOptions, ShardStats};
pub use store::{SHARD_SUFFIX, Store, StoreOptions};
