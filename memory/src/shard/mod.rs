//! [`Shard`]: one agent's SQLite file, its in-memory vector arena and every operation on both.
//!
//! The operations live in rooms by job: [`options`] (how a shard is opened), `open` (opening,
//! the arena's background load and its catch-up with other connections), `write` (the write
//! transaction and every write path, with the one row writer inserts and replication share),
//! `query` (reads, filters, search and the text index), `vector` (vector search through the
//! arena or the graph, before and after the arena loads) and `decode` (turning stored rows
//! into records, with errors that name the shard file).

mod decode;
mod open;
mod options;
mod query;
mod vector;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::ann::{Ann, IndexStatus, RowChange};
use crate::arena::Arena;
use crate::error::SqliteContext;
use crate::schema;
use crate::text::TextIndex;
use crate::{Embedding, Error, Result};

pub(crate) use decode::Decoder;
use open::Loading;
pub use options::{MAX_DIMENSIONS, ShardOptions};
pub(crate) use write::{ArenaChange, RowValues};

/// Counters and sizes of a shard.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ShardStats {
    /// Live records.
    pub records: u64,
    /// Tombstones left by deletes.
    pub tombstones: u64,
    /// Vector dimensions.
    pub dimensions: usize,
    /// Embedding model id.
    pub model_id: String,
    /// Similarity metric (`cosine`).
    pub metric: String,
    /// On-disk schema version.
    pub schema_version: u32,
    /// Bytes of the database file plus its write-ahead log.
    pub file_bytes: u64,
    /// Bytes of vectors held in memory for search.
    pub vector_bytes: u64,
}

/// SQLite connection plus what the arena has caught up with.
pub(crate) struct Conn {
    pub(crate) conn: Connection,
    /// Highest `seq` reflected in the arena.
    applied_seq: i64,
    /// `PRAGMA data_version` when the arena was last caught up; it changes when another
    /// connection (another process, or another handle in this one) commits.
    data_version: i64,
    /// While the shard opens, the changes the arena loaded (the index file is read at the
    /// same time; which of them the index must hear about depends on its stamp).
    opening: Option<Vec<RowChange>>,
    /// Until the arena is in: its background load, or (without a thread) the load still to
    /// do. Writes then only go to SQLite; the load's catch-up brings their rows in.
    loading: Option<Loading>,
}

/// One agent's shard: a SQLite file plus an in-memory arena of its live vectors.
///
/// `Shard` is `Send + Sync`; share it with `Arc`. Writes serialize on one connection and
/// wait (up to the busy timeout) for writers in other processes; searches scan the arena
/// under a read lock. Before each search the shard checks whether another connection has
/// committed and, if so, loads just the changed rows, so a second process's writes are
/// visible to the next search.
pub struct Shard {
    path: PathBuf,
    dims: usize,
    model_id: String,
    origin: String,
    schema_version: u32,
    threads: usize,
    conn: Mutex<Conn>,
    arena: Arc<RwLock<Arena>>,
    /// BM25 index of the live texts; lock it before `conn` when both are needed.
    text: RwLock<TextIndex>,
    /// The HNSW graph and its flat segment (derived from the arena, like the arena from
    /// the rows); its fold thread stops when the shard is dropped.
    ann: Ann,
    ann_threshold: usize,
    /// The arena is in (see [`Loading`]).
    loaded: AtomicBool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("path", &self.path)
            .field("dims", &self.dims)
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

/// The condition "`rowid` is one of a list", bound as one parameter ([`rowid_list`]): the
/// statement's text does not depend on how many rows are asked about, so it is compiled
/// once, and a list longer than SQLite's limit of bound variables (32,766) is fine.
pub(crate) const ROWID_IN_LIST: &str = "rowid IN (SELECT value FROM json_each(?))";

/// `rowids` as the one parameter of [`ROWID_IN_LIST`]: a JSON array of integers.
pub(crate) fn rowid_list(rowids: impl IntoIterator<Item = i64>) -> rusqlite::types::Value {
    let mut json = String::from("[");
    for (i, r) in rowids.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&r.to_string());
    }
    json.push(']');
    rusqlite::types::Value::Text(json)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, kind, namespace, text, metadata, created_at, updated_at, version, origin, deleted";

impl Shard {
    /// State of the shard's HNSW index: whether a graph exists, how many rows it and its
    /// flat segment hold, what happened to the index file at open, the last failure.
    pub fn index_status(&self) -> IndexStatus {
        let mut st = self.ann.status();
        st.arena_loading = !self.loaded.load(Ordering::Acquire);
        st
    }

    /// Blocks until the background fold has put every live row into the graph, at most
    /// `timeout`; returns whether it has. Returns `true` at once for shards below the
    /// [index threshold](ShardOptions::index_threshold) with nothing to fold.
    pub fn wait_indexed(&self, timeout: Duration) -> bool {
        // Until the arena is in, the index does not know which rows it lacks.
        if self.ensure_loaded(&mut self.lock_conn()).is_err() {
            return false;
        }
        self.ann.wait_folded(timeout)
    }

    /// Writes the index file now (it is otherwise written by the background fold and when
    /// the shard is dropped). Does nothing when there is no graph or the file is disabled.
    ///
    /// # Errors
    /// [`Error::Index`] if the graph cannot be serialized or the file cannot be written.
    pub fn save_index(&self) -> Result<()> {
        // A save before the arena is in would not know which rows the graph covers.
        self.ensure_loaded(&mut self.lock_conn())?;
        self.ann.save().map_err(|source| Error::Index {
            path: self.path.clone(),
            source,
        })
    }

    /// The shard file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Dimensions of its vectors.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// Id of the embedding model its vectors come from.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Id this shard writes as `origin` on local writes.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn lock_conn(&self) -> MutexGuard<'_, Conn> {
        // A panic while the lock was held cannot leave SQLite half-written (an open
        // transaction rolls back when dropped); the arena may then lag, which the next
        // catch-up repairs because `applied_seq` only advances after the arena is updated.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn read_arena(&self) -> RwLockReadGuard<'_, Arena> {
        self.arena.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write_arena(&self) -> RwLockWriteGuard<'_, Arena> {
        self.arena.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn check_embedding(&self, e: &Embedding) -> Result<()> {
        if e.len() != self.dims {
            return Err(Error::DimensionMismatch {
                expected: self.dims,
                actual: e.len(),
            });
        }
        Ok(())
    }

    /// Row counts, sizes, dimensions and model.
    ///
    /// # Errors
    /// SQLite and file-system failures.
    pub fn stats(&self) -> Result<ShardStats> {
        let (live, dead) = {
            let mut c = self.lock_conn();
            self.ensure_loaded(&mut c)?;
            // The arena holds exactly the live rows once caught up, and all rows are counted
            // from an index; reading `deleted` of every row instead costs 0.3 s at 1M rows.
            // One read transaction, so both see the same commits.
            c.conn.execute_batch("BEGIN").at(&self.path)?;
            let counted = self.catch_up(&mut c).and_then(|()| {
                c.conn
                    .query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))
                    .at(&self.path)
            });
            // Nothing was written: ending the read cannot lose anything.
            let _ = c.conn.execute_batch("COMMIT");
            let live = self.read_arena().len() as u64;
            (
                live,
                u64::try_from(counted?).unwrap_or(0).saturating_sub(live),
            )
        };
        let mut file_bytes = 0;
        for suffix in ["", "-wal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            match std::fs::metadata(&p) {
                Ok(m) => file_bytes += m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: p.into(),
                        source,
                    });
                }
            }
        }
        Ok(ShardStats {
            records: live,
            tombstones: dead,
            dimensions: self.dims,
            model_id: self.model_id.clone(),
            metric: schema::METRIC.to_owned(),
            schema_version: self.schema_version,
            file_bytes,
            vector_bytes: self.read_arena().vector_bytes() as u64,
        })
    }
}

#[cfg(test)]
mod tests;
