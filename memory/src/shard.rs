//! [`Shard`]: one agent's SQLite file, its in-memory vector arena and every operation on both.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde_json::Value;

use crate::ann::{Ann, AnnAnswer, AnnConfig, IndexStatus, Note};
use crate::arena::{Arena, Scored, sort_best_first};
use crate::record::{check_kind, check_namespace, check_text, metadata_json};
use crate::schema::{self, Durability, Pragmas};
use crate::search::{AUTO_QUANTIZED_ROWS, Candidate, Rankings, fuse};
use crate::text::{QueryTerms, TextIndex};
use crate::{
    Embedding, Error, Filter, NewRecord, Query, Record, RecordId, RecordUpdate, Result, SearchHit,
    SearchMode, SearchOptions,
};

/// Largest accepted number of dimensions.
pub const MAX_DIMENSIONS: usize = 65_536;

/// How a shard is opened. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    pub(crate) dimensions: Option<usize>,
    pub(crate) model_id: Option<String>,
    pub(crate) create: bool,
    pub(crate) pragmas: Pragmas,
    pub(crate) search_threads: usize,
    pub(crate) ann: AnnConfig,
    pub(crate) background_load_rows: usize,
    /// Unit tests hold this lock to keep a background arena load from finishing.
    #[cfg(test)]
    pub(crate) load_gate: Option<Arc<Mutex<()>>>,
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions {
            dimensions: None,
            model_id: None,
            create: true,
            pragmas: Pragmas {
                durability: Durability::Process,
                mmap_bytes: 256 << 20,
                cache_kib: 16 << 10,
                busy_timeout: Duration::from_secs(10),
            },
            search_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ann: AnnConfig::default(),
            background_load_rows: BACKGROUND_LOAD_ROWS,
            #[cfg(test)]
            load_gate: None,
        }
    }
}

impl ShardOptions {
    /// Options with the defaults below.
    pub fn new() -> Self {
        Self::default()
    }
    /// Dimensions of the vectors, required to create a shard and checked against an existing
    /// one. Defaults to none (take them from the file).
    pub fn dimensions(&mut self, d: usize) -> &mut Self {
        self.dimensions = Some(d);
        self
    }
    /// Id of the embedding model, required to create a shard and checked against an existing
    /// one: vectors of different models must never be mixed. Defaults to none.
    pub fn model_id(&mut self, m: impl Into<String>) -> &mut Self {
        self.model_id = Some(m.into());
        self
    }
    /// Create the shard when the file does not exist. Defaults to true.
    pub fn create(&mut self, yes: bool) -> &mut Self {
        self.create = yes;
        self
    }
    /// Commit durability. Defaults to [`Durability::Process`].
    pub fn durability(&mut self, d: Durability) -> &mut Self {
        self.pragmas.durability = d;
        self
    }
    /// Bytes of the file SQLite may memory-map for reads (`PRAGMA mmap_size`).
    /// Defaults to 256 MiB.
    pub fn mmap_bytes(&mut self, bytes: u64) -> &mut Self {
        self.pragmas.mmap_bytes = bytes;
        self
    }
    /// SQLite page cache per connection, in KiB (`PRAGMA cache_size`). Defaults to 16 MiB.
    pub fn cache_kib(&mut self, kib: u32) -> &mut Self {
        self.pragmas.cache_kib = kib;
        self
    }
    /// How long a write waits for another writer (thread or process) before failing with
    /// "database is locked" (`PRAGMA busy_timeout`). Defaults to 10 seconds.
    pub fn busy_timeout(&mut self, t: Duration) -> &mut Self {
        self.pragmas.busy_timeout = t;
        self
    }
    /// Threads one exact scan may use (the caller plus rayon's pool); scans of fewer than
    /// 2,048 rows per thread stay on the calling thread.
    /// Defaults to the available parallelism.
    pub fn search_threads(&mut self, n: usize) -> &mut Self {
        self.search_threads = n.max(1);
        self
    }
    /// Live rows from which the shard builds an HNSW graph in the background and
    /// [`SearchMode::Auto`] searches through it. Defaults to 100,000: there the i8 scan
    /// `Auto` uses below it takes about 0.9 ms, the graph 0.12–0.3 ms (recall@10 0.995 at
    /// beam 64 on 44K all-MiniLM-L6-v2 embeddings of distinct docstring sentences, 0.999 on
    /// clustered synthetic vectors), and building it costs about 25–50 s of background work
    /// on two cores. `Auto` leaves a graph for the scan if its measured recall is poor
    /// ([`IndexStatus::recall_estimate`](crate::IndexStatus::recall_estimate)): vectors
    /// without neighbourhood structure defeat HNSW (100K embeddings of random *pairs* of
    /// sentences, every row about equally similar to every other, gave 0.50).
    pub fn index_threshold(&mut self, rows: usize) -> &mut Self {
        self.ann.threshold = rows.max(1);
        self
    }
    /// HNSW connectivity `M` (links per node; twice that on the base layer). More links give
    /// higher recall at a given beam width and slower inserts. Defaults to 32 (measured
    /// with efConstruction 64 on 200K clustered 384-d vectors: recall@10 0.986 at beam 64
    /// and 9.3K folds/s, against 0.982 and 14.2K/s for `M = 16`; on 44K real sentence
    /// embeddings 0.986 against 0.976).
    pub fn index_connectivity(&mut self, m: usize) -> &mut Self {
        self.ann.connectivity = m.clamp(4, 128);
        self
    }
    /// Beam width while inserting into the graph (`efConstruction`). Defaults to 64:
    /// measured with `M = 32` on 200K clustered vectors, it folds 1.65× faster than 128
    /// (9.3K against 5.6K vectors/s) for recall@10 0.986 against 0.997 at beam 64 (0.998
    /// against 0.999 at beam 128); on 44K real sentence embeddings 0.986 against 0.994
    /// (0.995 against 0.997 at beam 128).
    pub fn index_expansion_add(&mut self, ef: usize) -> &mut Self {
        self.ann.expansion_add = ef.max(8);
        self
    }
    /// Keep the graph in `<shard file>.hnsw` so that reopening loads it instead of
    /// rebuilding. Defaults to true.
    pub fn index_file(&mut self, yes: bool) -> &mut Self {
        self.ann.persist = yes;
        self
    }
    /// Rows folded into the graph after which the index file is written again (it is
    /// also written whenever the flat segment empties, and when the shard is dropped).
    /// Defaults to 50,000.
    pub fn index_save_every(&mut self, rows: usize) -> &mut Self {
        self.ann.save_every = rows.max(1);
        self
    }
    /// Threads the background fold uses to add rows to the graph.
    /// Defaults to the available parallelism.
    pub fn index_fold_threads(&mut self, n: usize) -> &mut Self {
        self.ann.fold_threads = n.max(1);
        self
    }
    /// Rows (live ones and the tombstones of deleted ones) from which a shard whose index
    /// file checks out returns from
    /// [`Shard::open`] before its vectors are loaded: a thread loads them while vector
    /// searches in [`SearchMode::Ann`] and [`SearchMode::Auto`] answer from the mapped graph,
    /// rescored from the rows (see [`Shard::open`]). Defaults to 100,000 (about 0.3 s of
    /// loading); `usize::MAX` always loads before returning.
    pub fn background_load_rows(&mut self, rows: usize) -> &mut Self {
        self.background_load_rows = rows;
        self
    }
}

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
    opening: Option<Vec<Note>>,
    /// Until the arena is in: its background load, or (without a thread) the load still to
    /// do. Writes then only go to SQLite; the load's catch-up brings their rows in.
    loading: Option<Loading>,
}

/// Default of [`ShardOptions::background_load_rows`]: below it the arena loads in well under
/// a second anyway.
const BACKGROUND_LOAD_ROWS: usize = 100_000;

/// Most rows changed since the index file's stamp that a search before the arena is loaded
/// reads and scores itself; with more it waits for the arena.
const EARLY_MAX_CHANGED: usize = 4_096;

/// The arena's load, until it is installed.
struct Loading {
    /// The thread loading it; `None` when the load is to be done by the next caller (no
    /// thread, or the thread failed and the error is to be reported from a fresh attempt).
    handle: Option<JoinHandle<Result<LoadedArena>>>,
    /// Stamp of the loaded index file (-1 without one); `None` until asked of the index
    /// (which reads the file while the arena loads).
    stamp: Option<i64>,
    /// Tells the thread to stop (the shard was dropped).
    cancel: Arc<AtomicBool>,
}

impl Drop for Loading {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// What the background load read: every row up to `max_seq`, in one snapshot.
struct LoadedArena {
    arena: Arena,
    notes: Vec<Note>,
    max_seq: i64,
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

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, kind, namespace, text, metadata, created_at, updated_at, version, origin, deleted";

impl Shard {
    /// Opens (or, if allowed, creates) the shard at `path`.
    ///
    /// Opening loads the shard's vectors into memory (about 0.3 s per 100K rows here). A
    /// large shard (from [`background_load_rows`](ShardOptions::background_load_rows)) whose
    /// index file checks out returns before that: the file is memory-mapped and its graph
    /// answers vector searches in [`SearchMode::Ann`] and [`SearchMode::Auto`] at once,
    /// rescored with the vectors read from SQLite, with the rows changed since the file
    /// was written scanned exactly (1M rows: first result 0.16–0.18 s after the process
    /// starts, against 3.5–4.4 s when loading first). Writes go through meanwhile; exact,
    /// quantized, text and hybrid searches, [`stats`](Self::stats) and
    /// [`wait_indexed`](Self::wait_indexed) wait for the load. A damaged row found by the
    /// background load is reported by the first of those, and by every one after it until
    /// the row is repaired.
    ///
    /// # Errors
    /// - [`Error::NoSuchShard`] if the file is missing and `create` is off;
    /// - [`Error::MissingShardSpec`] if it must be created but dimensions or model id are unset;
    /// - [`Error::ModelMismatch`] if it holds vectors of another model or dimension count;
    /// - [`Error::NotAShard`], [`Error::Corrupt`], [`Error::CorruptRecord`] for files that are
    ///   not shards or are damaged; [`Error::UnsupportedSchema`] for newer formats.
    pub fn open(path: impl AsRef<Path>, opts: &ShardOptions) -> Result<Shard> {
        let path = path.as_ref().to_owned();
        let want = match (opts.dimensions, &opts.model_id) {
            (Some(d), Some(m)) => {
                if d == 0 || d > MAX_DIMENSIONS {
                    return Err(Error::InvalidOption {
                        reason: format!("dimensions must be in 1..={MAX_DIMENSIONS}, got {d}"),
                    });
                }
                Some((d, m.as_str()))
            }
            _ => None,
        };
        let exists = match std::fs::metadata(&path) {
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(source) => return Err(Error::Io { path, source }),
        };
        if exists {
            check_header(&path)?;
        } else if !opts.create {
            return Err(Error::NoSuchShard { path });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(&path, flags).map_err(|e| Error::sqlite(&path, e))?;
        schema::apply_pragmas(&conn, &opts.pragmas, &path)?;
        let meta = schema::init(&mut conn, &path, want, now_ms())?;
        if want.is_none() && (opts.dimensions.is_some() || opts.model_id.is_some()) {
            // Only one of the two was given: check that one.
            let dims_ok = opts.dimensions.is_none_or(|d| d == meta.dimensions);
            let model_ok = opts.model_id.as_deref().is_none_or(|m| m == meta.model_id);
            if !dims_ok || !model_ok {
                return Err(Error::ModelMismatch {
                    path,
                    found_model: meta.model_id.clone(),
                    found_dimensions: meta.dimensions,
                    expected_model: opts.model_id.clone().unwrap_or(meta.model_id),
                    expected_dimensions: opts.dimensions.unwrap_or(meta.dimensions),
                });
            }
        }
        let arena = Arc::new(RwLock::new(Arena::new(meta.dimensions)));
        let ann = Ann::new(
            opts.ann.clone(),
            meta.dimensions,
            &path,
            &meta.origin,
            Arc::clone(&arena),
        );
        let shard = Shard {
            dims: meta.dimensions,
            model_id: meta.model_id,
            origin: meta.origin,
            schema_version: meta.schema_version,
            threads: opts.search_threads,
            conn: Mutex::new(Conn {
                conn,
                applied_seq: 0,
                data_version: 0,
                opening: Some(Vec::new()),
                loading: None,
            }),
            arena,
            text: RwLock::new(TextIndex::default()),
            ann,
            ann_threshold: opts.ann.threshold,
            loaded: AtomicBool::new(false),
            path,
        };
        {
            let mut c = shard.lock_conn();
            // Rows including tombstones: an upper bound of the live ones, counted from an
            // index in milliseconds (counting only live rows reads every row: 0.3 s at 1M).
            let count: i64 = c
                .conn
                .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
                .map_err(|e| shard.err(e))?;
            let cancel = Arc::new(AtomicBool::new(false));
            let big = usize::try_from(count).unwrap_or(0) >= opts.background_load_rows;
            let handle = if big && shard.ann.has_file() {
                shard.spawn_load(opts, count, &cancel)
            } else {
                shard
                    .write_arena()
                    .reserve(usize::try_from(count).unwrap_or(0));
                None
            };
            // With a loading thread, wait for the index file to be mapped and checked now,
            // to know whether its graph can answer before the arena is in.
            let stamp = handle.is_some().then(|| shard.ann.loaded());
            // Stored first: on an error below, dropping the shard stops the thread.
            c.loading = Some(Loading {
                handle,
                stamp,
                cancel,
            });
            let early = match stamp {
                Some(s) if s >= 0 => shard.early_check(&c, s)?,
                _ => false,
            };
            if !early {
                shard.ensure_loaded(&mut c)?;
            }
        }
        Ok(shard)
    }

    /// Starts the thread that loads the arena on a connection of its own (`None` if no
    /// thread can be started: the caller loads it).
    fn spawn_load(
        &self,
        opts: &ShardOptions,
        rows: i64,
        cancel: &Arc<AtomicBool>,
    ) -> Option<JoinHandle<Result<LoadedArena>>> {
        let (path, dims, cancel) = (self.path.clone(), self.dims, Arc::clone(cancel));
        let pragmas = opts.pragmas.clone();
        #[cfg(test)]
        let gate = opts.load_gate.clone();
        std::thread::Builder::new()
            .name("reasonbank-arena-load".into())
            .spawn(move || {
                #[cfg(test)]
                let _gate = gate.as_ref().map(|g| g.lock());
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&path, flags)
                    .map_err(|source| Error::sqlite(&path, source))?;
                schema::apply_read_pragmas(&conn, &pragmas, &path)?;
                let mut arena = Arena::new(dims);
                arena.reserve(usize::try_from(rows).unwrap_or(0));
                let (notes, max_seq) = Decoder { path: &path, dims }.load_changes(
                    &conn,
                    0,
                    &mut arena,
                    Some(&cancel),
                )?;
                Ok(LoadedArena {
                    arena,
                    notes,
                    max_seq,
                })
            })
            .ok()
    }

    /// Installs the arena (waiting for its background load, or loading it here), catches it
    /// up with what was committed meanwhile, and finishes opening the index. Every
    /// operation that needs the arena calls this first; it returns at once after the first
    /// success. A failed load is reported, and tried again by the next call.
    fn ensure_loaded(&self, c: &mut Conn) -> Result<()> {
        let Some(mut loading) = c.loading.take() else {
            return Ok(());
        };
        if let Some(h) = loading.handle.take() {
            // On failure (or a panic) the catch-up below loads every row on this thread and
            // reports the error itself.
            if let Ok(Ok(l)) = h.join() {
                *self.write_arena() = l.arena;
                c.applied_seq = l.max_seq;
                if let Some(o) = c.opening.as_mut() {
                    o.extend(l.notes);
                }
            }
        }
        if let Err(e) = self.catch_up(c) {
            c.loading = Some(loading);
            return Err(e);
        }
        let stamp = match loading.stamp {
            Some(s) => s,
            None => self.ann.loaded(),
        };
        self.check_index(c, stamp)?;
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the graph of the index file may answer before the arena is loaded: its stamp
    /// is not ahead of the rows, and the oldest and newest live rows it claims are in it with
    /// their current vectors. The full check (`check_index`) follows once the arena is in.
    fn early_check(&self, c: &Conn, stamp: i64) -> Result<bool> {
        let max_seq: i64 = c
            .conn
            .query_row("SELECT ifnull(max(seq), 0) FROM records", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if stamp > max_seq {
            return Ok(false);
        }
        let mut sample = Vec::new();
        for order in ["ASC", "DESC"] {
            let sql = format!(
                "SELECT rowid, id, embedding FROM records WHERE deleted = 0 AND seq <= ?1 \
                 ORDER BY seq {order} LIMIT 64"
            );
            sample.extend(self.decoder().vectors(&c.conn, &sql, [stamp])?);
        }
        let rows: Vec<(i64, &[f32])> = sample.iter().map(|(r, _, v)| (*r, v.as_slice())).collect();
        Ok(self.ann.verify_sample(&rows).is_ok())
    }

    /// Hands the index what it needs to check a loaded graph against the rows (see
    /// `Ann::after_open`), then lets it start folding.
    fn check_index(&self, c: &mut Conn, stamp: i64) -> Result<()> {
        // The arena just loaded every row once, in seq order: its notes tell which live rows
        // the file claims to cover, without another pass over the table.
        let all = c.opening.take().unwrap_or_default();
        let covered: Vec<i64> = all
            .iter()
            .filter_map(|n| match *n {
                Note::Upsert { rowid, seq } if seq <= stamp => Some(rowid),
                _ => None,
            })
            .collect();
        // The oldest and the newest rows the file claims to cover.
        let mut sample: Vec<i64> = covered.iter().take(64).copied().collect();
        sample.extend(covered.iter().rev().take(64).copied());
        let changed: Vec<Note> = all
            .iter()
            .filter(|n| match **n {
                Note::Upsert { seq, .. } | Note::Remove { seq, .. } => seq > stamp,
            })
            .copied()
            .collect();
        let live = self.read_arena().len();
        self.ann.note(&changed, live, c.applied_seq);
        self.ann
            .after_open(stamp, c.applied_seq, &sample, covered.len(), || {
                Ok::<_, Error>(
                    all.iter()
                        .filter_map(|n| match *n {
                            Note::Upsert { rowid, seq } => Some((rowid, seq)),
                            Note::Remove { .. } => None,
                        })
                        .collect(),
                )
            })
    }

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
        self.ann.save().map_err(|reason| Error::Index {
            path: self.path.clone(),
            reason,
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

    pub(crate) fn err(&self, e: rusqlite::Error) -> Error {
        Error::sqlite(&self.path, e)
    }

    pub(crate) fn lock_conn(&self) -> MutexGuard<'_, Conn> {
        // A panic while the lock was held cannot leave SQLite half-written (an open
        // transaction rolls back when dropped); the arena may then lag, which the next
        // catch-up repairs because `applied_seq` only advances after the arena is updated.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_arena(&self) -> RwLockReadGuard<'_, Arena> {
        self.arena.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_arena(&self) -> RwLockWriteGuard<'_, Arena> {
        self.arena.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads every row changed since `applied_seq` into the arena.
    fn catch_up(&self, c: &mut Conn) -> Result<()> {
        let dv: i64 = c
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut arena = self.write_arena();
        let (mut notes, max_seq) =
            self.decoder()
                .load_changes(&c.conn, c.applied_seq, &mut arena, None)?;
        match &mut c.opening {
            Some(pending) => pending.append(&mut notes),
            None if !notes.is_empty() => self.ann.note(&notes, arena.len(), max_seq),
            None => {}
        }
        c.applied_seq = max_seq;
        c.data_version = dv;
        Ok(())
    }

    /// Catches the arena up if another connection committed since the last check.
    fn refresh(&self, c: &mut Conn) -> Result<()> {
        if c.loading.is_some() {
            // The load's catch-up reads whatever was committed meanwhile.
            return Ok(());
        }
        let dv: i64 = c
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if dv != c.data_version {
            self.catch_up(c)?;
        }
        Ok(())
    }

    fn corrupt(&self, id: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        self.decoder().corrupt(id, reason)
    }

    /// Reads the 16-byte `id` column at `idx`.
    fn read_id(&self, row: &Row<'_>, idx: usize) -> Result<RecordId> {
        self.decoder().id(row, idx)
    }

    fn decoder(&self) -> Decoder<'_> {
        Decoder {
            path: &self.path,
            dims: self.dims,
        }
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

    /// Runs `f` in an IMMEDIATE write transaction stamped with fresh `seq`/`version` values,
    /// commits, then brings the arena up to date with what was committed.
    ///
    /// `f` receives the transaction and a [`Stamper`], and returns the arena changes.
    pub(crate) fn write<'a, T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Stamper) -> Result<(T, Vec<ArenaChange<'a>>), E>,
    ) -> Result<T, E> {
        let mut c = self.lock_conn();
        let tx = c
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let (max_seq, max_version): (i64, i64) = tx
            // Two scalar subqueries, not one SELECT with two aggregates: SQLite answers a lone
            // `max(col)` from the index in O(log n) but scans the table for two at once.
            .query_row(
                "SELECT ifnull((SELECT max(seq) FROM records), 0), \
                        ifnull((SELECT max(version) FROM records), 0)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let mut stamper = Stamper {
            first_seq: max_seq + 1,
            next_seq: max_seq + 1,
            last_version: max_version,
            now: now_ms(),
        };
        let (out, changes) = f(&tx, &mut stamper)?;
        tx.commit().map_err(|e| self.err(e))?;
        if c.loading.is_some() {
            // The arena is not in yet: its load catches up with this commit.
        } else if stamper.first_seq == c.applied_seq + 1 {
            // Nobody else committed in between: apply our own changes directly.
            let mut arena = self.write_arena();
            arena.reserve(changes.len());
            // Every change of this transaction is noted with its first seq: the index file's
            // stamp (the lowest pending seq minus one) then never claims a row of it.
            let seq = stamper.first_seq;
            let mut notes = Vec::with_capacity(changes.len());
            for ch in changes {
                match ch {
                    ArenaChange::Upsert(rowid, key, v) => {
                        arena.upsert(rowid, key, v.as_slice());
                        notes.push(Note::Upsert { rowid, seq });
                    }
                    ArenaChange::Remove(rowid) => {
                        arena.remove(rowid);
                        notes.push(Note::Remove { rowid, seq });
                    }
                }
            }
            if !notes.is_empty() {
                self.ann.note(&notes, arena.len(), stamper.next_seq - 1);
            }
            drop(arena);
            c.applied_seq = stamper.next_seq - 1;
        } else {
            self.catch_up(&mut c)?;
        }
        Ok(out)
    }

    /// Inserts one record and returns its id. Durable when this returns (see [`Durability`]).
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`], [`Error::TooLarge`], [`Error::InvalidInput`] for bad
    /// input (nothing is written), [`Error::AlreadyExists`] for a duplicate id.
    pub fn insert(&self, rec: &NewRecord) -> Result<RecordId> {
        Ok(self.insert_batch(std::slice::from_ref(rec))?[0])
    }

    /// Inserts many records in one transaction: all of them or, on any error, none.
    ///
    /// # Errors
    /// As [`insert`](Self::insert); every record is checked before anything is written.
    pub fn insert_batch(&self, recs: &[NewRecord]) -> Result<Vec<RecordId>> {
        let mut prepared = Vec::with_capacity(recs.len());
        for r in recs {
            self.check_embedding(&r.embedding)?;
            check_text(&r.text)?;
            check_kind(&r.kind)?;
            check_namespace(&r.namespace)?;
            let meta = metadata_json(&r.metadata)?;
            prepared.push((r.id.unwrap_or_default(), meta));
        }
        self.write(|tx, st| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO records (id, kind, namespace, text, metadata, embedding, \
                     created_at, updated_at, version, origin, deleted, seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, 0, ?10)",
                )
                .map_err(|e| self.err(e))?;
            let mut fts = tx
                .prepare_cached("INSERT INTO records_fts (rowid, text) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            let mut ids = Vec::with_capacity(recs.len());
            let mut changes = Vec::with_capacity(recs.len());
            let mut blob = Vec::with_capacity(self.dims * 4);
            for (r, (id, meta)) in recs.iter().zip(&prepared) {
                let (seq, version) = st.stamp();
                blob.clear();
                r.embedding.write_blob(&mut blob);
                let res = stmt.execute(rusqlite::params![
                    id,
                    r.kind,
                    r.namespace,
                    r.text,
                    meta,
                    blob,
                    st.now,
                    version,
                    self.origin,
                    seq,
                ]);
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::AlreadyExists { id: *id });
                    }
                    Err(e) => return Err(self.err(e)),
                }
                let rowid = tx.last_insert_rowid();
                fts.execute((rowid, &r.text)).map_err(|e| self.err(e))?;
                changes.push(ArenaChange::Upsert(
                    rowid,
                    id.as_u128(),
                    Cow::Borrowed(&r.embedding),
                ));
                ids.push(*id);
            }
            Ok((ids, changes))
        })
    }

    /// The live record `id` with its embedding, or `None` if it does not exist or was deleted.
    ///
    /// # Errors
    /// SQLite failures and [`Error::CorruptRecord`] for rows that do not decode.
    pub fn get(&self, id: RecordId) -> Result<Option<Record>> {
        let c = self.lock_conn();
        let mut stmt = c
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS}, embedding FROM records WHERE id = ?1 AND deleted = 0"
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([id]).map_err(|e| self.err(e))?;
        match rows.next().map_err(|e| self.err(e))? {
            Some(row) => self.read_record(row, true).map(Some),
            None => Ok(None),
        }
    }

    /// Updates the fields set in `upd` of the live record `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no live record `id`; input errors as for inserts.
    pub fn update(&self, id: RecordId, upd: &RecordUpdate) -> Result<()> {
        self.check_update(upd)?;
        self.write(|tx, st| {
            let Some(LiveRow {
                rowid,
                text: old_text,
                ..
            }) = self.live_row(tx, id)?
            else {
                return Err(Error::NotFound { id });
            };
            let changes = self.apply_update(tx, st, rowid, id, &old_text, upd)?;
            Ok(((), changes))
        })
    }

    /// Reads the live record `id` (with its embedding), lets `f` derive an update from it
    /// and writes that, atomically: no other writer, in this process or another, commits in
    /// between, so read-modify-write updates (counters, merged metadata) are never lost.
    /// `f` returning `Ok(None)` writes nothing. Returns the record as it is afterwards, or
    /// `None` if there is no live record `id` (then `f` is not called).
    ///
    /// `f` runs inside the write transaction: keep it short, and do not call this shard
    /// from it (that would deadlock).
    ///
    /// # Errors
    /// `f`'s error (nothing is written), input errors of the update as for
    /// [`update`](Self::update), and SQLite failures.
    pub fn modify<E: From<Error>>(
        &self,
        id: RecordId,
        f: impl FnOnce(&Record) -> Result<Option<RecordUpdate>, E>,
    ) -> Result<Option<Record>, E> {
        let mut out = None;
        self.write::<(), E>(|tx, st| {
            let sql = format!(
                "SELECT {RECORD_COLUMNS}, embedding, rowid FROM records WHERE id = ?1 AND deleted = 0"
            );
            let found = tx
                .prepare_cached(&sql)
                .and_then(|mut stmt| {
                    stmt.query_row([id], |row| Ok((self.read_record(row, true), row.get(11)?)))
                        .optional()
                })
                .map_err(|e| self.err(e))?;
            let Some((record, rowid)) = found else {
                return Ok(((), Vec::new()));
            };
            let record = record?;
            let Some(upd) = f(&record)? else {
                out = Some(record);
                return Ok(((), Vec::new()));
            };
            self.check_update(&upd)?;
            let changes = self.apply_update(tx, st, rowid, id, &record.text, &upd)?;
            let after = tx
                .prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_row([id], |row| Ok(self.read_record(row, true))))
                .map_err(|e| self.err(e))??;
            out = Some(after);
            // The arena takes the new vector by reference; it lives in `upd` until `write`
            // has applied it, so hand over an owned copy instead.
            let changes: Vec<ArenaChange<'static>> = changes
                .into_iter()
                .map(ArenaChange::into_owned)
                .collect();
            Ok(((), changes))
        })?;
        Ok(out)
    }

    /// Applies every `(id, version, update)` in one transaction if each record `id` is still
    /// live at `version` (compare-and-swap over several records); otherwise writes nothing.
    /// Returns whether the updates were applied. Read records, compute, then call this, and
    /// start over on `false`: no write made meanwhile, by any process, is lost.
    ///
    /// # Errors
    /// Input errors of any update as for [`update`](Self::update) (nothing is written), and
    /// SQLite failures.
    pub fn update_if_unchanged(&self, updates: &[(RecordId, u64, RecordUpdate)]) -> Result<bool> {
        for (_, _, u) in updates {
            self.check_update(u)?;
        }
        self.write(|tx, st| {
            let mut rows = Vec::with_capacity(updates.len());
            for (id, version, _) in updates {
                match self.live_row(tx, *id)? {
                    Some(row) if u64::try_from(row.version).ok() == Some(*version) => {
                        rows.push((row.rowid, row.text));
                    }
                    _ => return Ok((false, Vec::new())),
                }
            }
            let mut changes = Vec::new();
            for ((id, _, upd), (rowid, text)) in updates.iter().zip(&rows) {
                changes.extend(self.apply_update(tx, st, *rowid, *id, text, upd)?);
            }
            Ok((true, changes))
        })
    }

    /// Checks the fields of an update as inserts check them.
    fn check_update(&self, upd: &RecordUpdate) -> Result<()> {
        if let Some(e) = &upd.embedding {
            self.check_embedding(e)?;
        }
        if let Some(t) = &upd.text {
            check_text(t)?;
        }
        if let Some(k) = &upd.kind {
            check_kind(k)?;
        }
        if let Some(n) = &upd.namespace {
            check_namespace(n)?;
        }
        Ok(())
    }

    /// Writes the checked update `upd` to the live row `rowid` (record `id`, whose text was
    /// `old_text`) and returns the arena change it implies.
    fn apply_update<'u>(
        &self,
        tx: &Transaction<'_>,
        st: &mut Stamper,
        rowid: i64,
        id: RecordId,
        old_text: &str,
        upd: &'u RecordUpdate,
    ) -> Result<Vec<ArenaChange<'u>>> {
        let meta = upd.metadata.as_ref().map(metadata_json).transpose()?;
        let (seq, version) = st.stamp();
        tx.execute(
            "UPDATE records SET \
             text = coalesce(?2, text), metadata = coalesce(?3, metadata), \
             embedding = coalesce(?4, embedding), kind = coalesce(?5, kind), \
             namespace = coalesce(?6, namespace), \
             updated_at = ?7, version = ?8, origin = ?9, seq = ?10 WHERE rowid = ?1",
            rusqlite::params![
                rowid,
                upd.text,
                meta,
                upd.embedding.as_ref().map(Embedding::to_blob),
                upd.kind,
                upd.namespace,
                st.now,
                version,
                self.origin,
                seq,
            ],
        )
        .map_err(|e| self.err(e))?;
        if let Some(text) = &upd.text {
            self.reindex(tx, rowid, old_text, text)?;
        }
        Ok(upd
            .embedding
            .iter()
            .map(|e| ArenaChange::Upsert(rowid, id.as_u128(), Cow::Borrowed(e)))
            .collect())
    }

    /// Rowid, text and version of the live record `id`.
    fn live_row(&self, tx: &Transaction<'_>, id: RecordId) -> Result<Option<LiveRow>> {
        tx.prepare_cached("SELECT rowid, text, version FROM records WHERE id = ?1 AND deleted = 0")
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(LiveRow {
                        rowid: r.get(0)?,
                        text: r.get(1)?,
                        version: r.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Replaces the full-text entry of `rowid` (external-content FTS5 needs the old text to
    /// delete its tokens). Every write path calls this in the transaction of the row change.
    pub(crate) fn reindex(
        &self,
        tx: &Transaction<'_>,
        rowid: i64,
        old: &str,
        new: &str,
    ) -> Result<()> {
        tx.prepare_cached(
            "INSERT INTO records_fts (records_fts, rowid, text) VALUES ('delete', ?1, ?2)",
        )
        .and_then(|mut s| s.execute((rowid, old)))
        .and_then(|_| {
            tx.prepare_cached("INSERT INTO records_fts (rowid, text) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute((rowid, new)))
        })
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// Deletes record `id`, leaving a tombstone (id, times, version, origin) so that the
    /// delete wins over older copies during sync. The text, metadata and vector are erased.
    /// Returns whether a live record was deleted.
    ///
    /// # Errors
    /// SQLite failures only; deleting a missing record returns `Ok(false)`.
    pub fn delete(&self, id: RecordId) -> Result<bool> {
        self.write(|tx, st| {
            let Some(LiveRow {
                rowid,
                text: old_text,
                ..
            }) = self.live_row(tx, id)?
            else {
                return Ok((false, Vec::new()));
            };
            let (seq, version) = st.stamp();
            tx.execute(
                "UPDATE records SET deleted = 1, text = '', metadata = '{}', embedding = NULL, \
                 updated_at = ?2, version = ?3, origin = ?4, seq = ?5 WHERE rowid = ?1",
                rusqlite::params![rowid, st.now, version, self.origin, seq],
            )
            .map_err(|e| self.err(e))?;
            self.reindex(tx, rowid, &old_text, "")?;
            Ok((true, vec![ArenaChange::Remove(rowid)]))
        })
    }

    /// Live records matching `filter` (all if `None`), ordered by id (creation time), at
    /// most `limit`, starting after id `after` (keyset pagination).
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] and SQLite failures.
    pub fn scan(
        &self,
        filter: Option<&Filter>,
        limit: usize,
        after: Option<RecordId>,
    ) -> Result<Vec<Record>> {
        let (fsql, mut params) = filter_sql(filter)?;
        // Ids are 16-byte BLOBs; the empty BLOB sorts before every one of them.
        params.push(SqlValue::Blob(
            after.map(|a| a.as_bytes().to_vec()).unwrap_or_default(),
        ));
        params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let n = params.len();
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, embedding FROM records \
             WHERE deleted = 0 AND {fsql} AND id > ?{} ORDER BY id LIMIT ?{n}",
            n - 1
        );
        let c = self.lock_conn();
        let mut stmt = c.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            out.push(self.read_record(row, true)?);
        }
        Ok(out)
    }

    /// Number of live records matching `filter` (all if `None`).
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] and SQLite failures.
    pub fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        let (fsql, params) = filter_sql(filter)?;
        let sql = format!("SELECT count(*) FROM records WHERE deleted = 0 AND {fsql}");
        let c = self.lock_conn();
        let n: i64 = c
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(params), |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
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
            c.conn.execute_batch("BEGIN").map_err(|e| self.err(e))?;
            let counted = self.catch_up(&mut c).and_then(|()| {
                c.conn
                    .query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))
                    .map_err(|e| self.err(e))
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

    /// Searches the shard: cosine top-k for a vector query (exact, by an i8 or sign-bit scan,
    /// or through the HNSW graph, as [`SearchOptions::mode`] says; see [`SearchMode`] for what
    /// `Auto` picks), BM25 for a text query,
    /// reciprocal-rank fusion of both for a hybrid query. A filter is applied before top-k,
    /// so when at least `k` live rows match it (and reach the threshold), `k` hits return
    /// (approximate modes may miss a row whose score is just above the threshold).
    ///
    /// # Errors
    /// [`Error::InvalidOption`], [`Error::InvalidFilter`], [`Error::DimensionMismatch`], and
    /// SQLite failures. An empty shard or no match is `Ok` with no hits.
    pub fn search(&self, query: &Query, opts: &SearchOptions) -> Result<Vec<SearchHit>> {
        let rankings = self.rankings(query, opts)?;
        let picks = fuse(std::slice::from_ref(&rankings), opts);
        self.fetch_hits(picks.into_iter().map(|p| p.1).collect())
    }

    /// The candidate rankings of one shard for `query`, before fusion: the best
    /// `k` (or, for hybrid queries, the best `candidates`) by cosine and by BM25.
    pub(crate) fn rankings(&self, query: &Query, opts: &SearchOptions) -> Result<Rankings> {
        opts.validate(query)?;
        if let Some(v) = &query.vector {
            self.check_embedding(v)?;
        }
        let terms = query.text.as_deref().and_then(QueryTerms::parse);
        if query.vector.is_none() && terms.is_none() {
            return Err(Error::InvalidOption {
                reason: "the query text has no words to search for".into(),
            });
        }
        let allowed = {
            let mut c = self.lock_conn();
            self.refresh(&mut c)?;
            match &opts.filter {
                Some(f) => Some(self.filter_rows(&c, f)?),
                None => None,
            }
        };
        let hybrid = query.vector.is_some() && terms.is_some();
        let want = if hybrid {
            opts.candidate_count()
        } else {
            opts.k
        };
        let threshold = opts.threshold.unwrap_or(f32::NEG_INFINITY);
        let vector = match &query.vector {
            Some(v) => self
                .vector_top(v, want, threshold, allowed.as_deref(), opts)?
                .into_iter()
                .map(|s| Candidate {
                    hit: s,
                    similarity: Some(s.score),
                    bm25: None,
                })
                .collect(),
            None => Vec::new(),
        };
        let mut text = Vec::new();
        if let Some(q) = &terms {
            let rows = self.text_index()?.top_k(q, want, allowed.as_deref());
            let arena = self.read_arena();
            let qv = query.vector.as_ref().map(Embedding::as_slice);
            for (rowid, bm25) in rows {
                // Every live row has a vector in the arena; a row committed by another
                // connection after this search caught up is not there yet and is left out,
                // as if the search had run a moment earlier.
                let Some(slot) = arena.slot(rowid) else {
                    continue;
                };
                let similarity = qv.map(|q| crate::kernels::dot(q, arena.vector(slot)));
                if similarity.is_some_and(|s| s < threshold) {
                    continue;
                }
                let key = arena.key_at(slot);
                text.push(Candidate {
                    hit: Scored {
                        score: bm25,
                        key,
                        rowid,
                    },
                    similarity,
                    bm25: Some(bm25),
                });
            }
        }
        Ok(Rankings {
            vector,
            text,
            hybrid,
        })
    }

    /// Reads the records of `picks` (best first) and turns them into hits.
    pub(crate) fn fetch_hits(&self, picks: Vec<Candidate>) -> Result<Vec<SearchHit>> {
        let mut records = self.fetch_records(picks.iter().map(|p| p.hit.rowid))?;
        Ok(picks
            .into_iter()
            .filter_map(|p| {
                // A row deleted by another connection since the scan is not returned.
                let record = records.remove(&p.hit.rowid)?;
                Some(SearchHit {
                    id: record.id,
                    score: p.hit.score,
                    similarity: p.similarity,
                    bm25: p.bm25,
                    shard: None,
                    record,
                })
            })
            .collect())
    }

    /// Live records (without embeddings) of the given rowids, in one statement.
    fn fetch_records(&self, rowids: impl Iterator<Item = i64>) -> Result<HashMap<i64, Record>> {
        let rowids: Vec<SqlValue> = rowids.map(SqlValue::Integer).collect();
        if rowids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks = vec!["?"; rowids.len()].join(", ");
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, rowid FROM records WHERE deleted = 0 AND rowid IN ({marks})"
        );
        let c = self.lock_conn();
        let mut stmt = c.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(rowids))
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let rowid: i64 = row.get(10).map_err(|e| self.err(e))?;
            out.insert(rowid, self.read_record(row, false)?);
        }
        Ok(out)
    }

    /// Rowids of the live rows matching `filter`, ascending.
    fn filter_rows(&self, c: &Conn, filter: &Filter) -> Result<Vec<i64>> {
        let (fsql, params) = filter_sql(Some(filter))?;
        let sql = format!("SELECT rowid FROM records WHERE deleted = 0 AND {fsql} ORDER BY rowid");
        let mut stmt = c.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(|e| self.err(e))
    }

    /// Top-`k` by cosine, restricted to the `allowed` rowids (ascending) if given, in the
    /// mode `opts` asks for (see [`SearchMode`]).
    fn vector_top(
        &self,
        q: &Embedding,
        k: usize,
        threshold: f32,
        allowed: Option<&[i64]>,
        opts: &SearchOptions,
    ) -> Result<Vec<Scored>> {
        // Once the arena is in (the steady state), a search does not touch the connection.
        if !self.loaded.load(Ordering::Acquire) {
            let mut c = self.lock_conn();
            if c.loading.is_some() {
                let stamp = c.loading.as_ref().and_then(|l| l.stamp).unwrap_or(-1);
                if stamp >= 0
                    && let Some(hits) = self.early_top(&c, stamp, q, k, threshold, allowed, opts)?
                {
                    return Ok(hits);
                }
                self.ensure_loaded(&mut c)?;
            }
        }
        let arena = self.read_arena();
        if self.uses_graph(opts.mode, allowed, arena.len()) {
            match self.ann.search(
                &arena,
                q.as_slice(),
                k,
                threshold,
                opts.beam,
                allowed,
                self.threads,
            ) {
                Ok(AnnAnswer::Hits(hits)) => return Ok(hits),
                Ok(AnnAnswer::Exact) => {}
                Err(reason) if opts.mode == SearchMode::Ann => {
                    return Err(Error::Index {
                        path: self.path.clone(),
                        reason,
                    });
                }
                // `Auto` answers exactly; the failure stays visible in `index_status`.
                Err(_) => {}
            }
        }
        let slots = allowed.map(|rowids| {
            let mut slots: Vec<usize> = rowids.iter().filter_map(|&r| arena.slot(r)).collect();
            slots.sort_unstable();
            slots
        });
        // `Auto` without a graph scans large row sets with the i8 pass: measured on 100K real
        // all-MiniLM embeddings, recall@10 and @60 of 1.0 in 0.85–0.94 ms against 1.45–1.55
        // ms exact (and 1.0 on clustered synthetic vectors too).
        let scanned = slots.as_ref().map_or(arena.len(), Vec::len);
        let scan = match opts.mode {
            SearchMode::Binary => crate::quant::top_k_binary,
            SearchMode::Quantized => crate::quant::top_k_i8,
            SearchMode::Auto if scanned >= AUTO_QUANTIZED_ROWS => crate::quant::top_k_i8,
            _ => {
                return Ok(arena.top_k(q.as_slice(), k, threshold, slots.as_deref(), self.threads));
            }
        };
        let rescore = opts.rescore_for(opts.mode);
        Ok(scan(
            &arena,
            q.as_slice(),
            k,
            threshold,
            slots.as_deref(),
            rescore,
            self.threads,
        ))
    }

    /// Whether a vector search in `mode` of a shard of `rows` rows, restricted to the
    /// `allowed` rowids if a filter is given, goes through the graph.
    fn uses_graph(&self, mode: SearchMode, allowed: Option<&[i64]>, rows: usize) -> bool {
        // A selective filter leaves few rows: scanning them exactly is cheaper than walking
        // the graph past all the others, and it is exact. A graph search visits about
        // `beam · total / matching` nodes of ~32 distances each, an exact scan `matching`
        // rows of one (f16) distance: the graph wins from `matching ≈ √(2,000 · total)`
        // (4.5% of 1M rows, 14% of 100K), and never below the index threshold.
        let selective = allowed.is_some_and(|s| {
            let floor = (2_048.0 * rows as f64).sqrt() as usize;
            s.len() < self.ann_threshold.max(floor)
        });
        !selective
            && match mode {
                SearchMode::Exact | SearchMode::Quantized | SearchMode::Binary => false,
                SearchMode::Ann => true,
                SearchMode::Auto => rows >= self.ann_threshold && self.ann.ready(rows),
            }
    }

    /// A vector search while the arena loads (see [`Loading`]): the mapped graph ranks the
    /// rows unchanged since the index file's stamp, whose vectors are then read from SQLite
    /// and rescored exactly; the rows changed since are read and scored exactly. The answer
    /// is the one the graph gives once the arena is in. `None` when it cannot answer like
    /// that (a mode or filter that does not use the graph, many changed rows, fewer graph
    /// results than asked): the caller waits for the arena.
    #[allow(clippy::too_many_arguments)]
    fn early_top(
        &self,
        c: &Conn,
        stamp: i64,
        q: &Embedding,
        k: usize,
        threshold: f32,
        allowed: Option<&[i64]>,
        opts: &SearchOptions,
    ) -> Result<Option<Vec<Scored>>> {
        let graph_rows = self.ann.graph_size();
        if graph_rows == 0 || !self.uses_graph(opts.mode, allowed, graph_rows) {
            return Ok(None);
        }
        let dec = self.decoder();
        // The latest state of every row changed since the stamp (`None`: deleted).
        let mut changed: HashMap<i64, Option<(RecordId, Embedding)>> = HashMap::new();
        let mut too_many = false;
        dec.each_change(&c.conn, stamp, |rowid, _, id, vector| {
            if changed.len() >= EARLY_MAX_CHANGED {
                too_many = true;
                return ControlFlow::Break(());
            }
            changed.insert(rowid, vector.map(|v| (id, v)));
            ControlFlow::Continue(())
        })?;
        if too_many {
            return Ok(None);
        }
        let admitted = |r: i64| allowed.is_none_or(|s| s.binary_search(&r).is_ok());
        let want = opts.beam.max(k);
        let keys = match self.ann.graph_candidates(q.as_slice(), want, |r| {
            admitted(r) && !changed.contains_key(&r)
        }) {
            Ok(Some(keys)) => keys,
            Ok(None) => return Ok(None),
            Err(reason) if opts.mode == SearchMode::Ann => {
                return Err(Error::Index {
                    path: self.path.clone(),
                    reason,
                });
            }
            // `Auto` answers from the arena, once it is in.
            Err(_) => return Ok(None),
        };
        if keys.len() < want && keys.len() < allowed.map_or(graph_rows, <[i64]>::len) {
            // Possibly incomplete: the exact answer after the load is.
            return Ok(None);
        }
        let mut hits = Vec::with_capacity(keys.len() + changed.len());
        let mut score = |rowid: i64, id: RecordId, v: &Embedding| {
            let s = crate::kernels::dot(q.as_slice(), v.as_slice());
            if s >= threshold {
                hits.push(Scored {
                    score: s,
                    key: id.as_u128(),
                    rowid,
                });
            }
        };
        if !keys.is_empty() {
            let marks = vec!["?"; keys.len()].join(", ");
            let sql = format!(
                "SELECT rowid, id, embedding FROM records WHERE deleted = 0 AND rowid IN ({marks})"
            );
            for (rowid, id, v) in dec.vectors(&c.conn, &sql, rusqlite::params_from_iter(&keys))? {
                score(rowid, id, &v);
            }
        }
        for (&rowid, live) in &changed {
            if let Some((id, v)) = live
                && admitted(rowid)
            {
                score(rowid, *id, v);
            }
        }
        sort_best_first(&mut hits);
        hits.truncate(k);
        Ok(Some(hits))
    }

    /// The text index, first brought up to date with every row this handle has seen
    /// committed (it reads only the rows written since its last catch-up).
    fn text_index(&self) -> Result<RwLockReadGuard<'_, TextIndex>> {
        let target = {
            let mut c = self.lock_conn();
            self.ensure_loaded(&mut c)?;
            c.applied_seq
        };
        {
            let ix = self.text.read().unwrap_or_else(|p| p.into_inner());
            if ix.applied_seq >= target {
                return Ok(ix);
            }
        }
        {
            let mut ix = self.text.write().unwrap_or_else(|p| p.into_inner());
            if ix.applied_seq < target {
                // Read under the connection lock, index after releasing it: the first
                // catch-up of a large shard tokenizes every text and must not stall writers.
                let rows = {
                    let c = self.lock_conn();
                    let mut stmt = c
                        .conn
                        .prepare_cached(
                            "SELECT rowid, deleted, text, seq FROM records WHERE seq > ?1 ORDER BY seq",
                        )
                        .map_err(|e| self.err(e))?;
                    stmt.query_map([ix.applied_seq], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .map_err(|e| self.err(e))?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(|e| self.err(e))?
                };
                for (rowid, deleted, text, seq) in rows {
                    if deleted {
                        ix.remove(rowid);
                    } else {
                        ix.upsert(rowid, &text);
                    }
                    ix.applied_seq = ix.applied_seq.max(seq);
                }
            }
        }
        Ok(self.text.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Decodes a row selected with `RECORD_COLUMNS` (and `embedding` last if `with_vec`).
    pub(crate) fn read_record(&self, row: &Row<'_>, with_vec: bool) -> Result<Record> {
        let e = |err| self.err(err);
        let id = self.read_id(row, 0)?;
        let metadata: String = row.get(4).map_err(e)?;
        let metadata = match serde_json::from_str::<Value>(&metadata) {
            Ok(Value::Object(m)) => m,
            _ => return Err(self.corrupt(id, "metadata is not a JSON object")),
        };
        let deleted: bool = row.get(9).map_err(e)?;
        let embedding = if with_vec && !deleted {
            Some(self.decoder().vector(row, 10, id)?)
        } else {
            None
        };
        Ok(Record {
            id,
            kind: row.get(1).map_err(e)?,
            namespace: row.get(2).map_err(e)?,
            text: row.get(3).map_err(e)?,
            metadata,
            embedding,
            created_at: row.get(5).map_err(e)?,
            updated_at: row.get(6).map_err(e)?,
            version: row.get::<_, i64>(7).map_err(e)? as u64,
            origin: row.get(8).map_err(e)?,
            deleted,
        })
    }
}

/// Decodes columns of `records` rows (ids, vectors), naming the shard file in errors.
#[derive(Clone, Copy)]
struct Decoder<'a> {
    path: &'a Path,
    dims: usize,
}

impl Decoder<'_> {
    fn err(self, e: rusqlite::Error) -> Error {
        Error::sqlite(self.path, e)
    }

    fn corrupt(self, id: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        Error::CorruptRecord {
            path: self.path.to_owned(),
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    /// The 16-byte `id` column at `idx`.
    fn id(self, row: &Row<'_>, idx: usize) -> Result<RecordId> {
        let v = row.get_ref(idx).map_err(|e| self.err(e))?;
        let b = v.as_blob().unwrap_or_default();
        RecordId::from_slice(b).ok_or_else(|| {
            let shown: String = b.iter().map(|x| format!("{x:02x}")).collect();
            self.corrupt(shown, "id is not a 16-byte UUID")
        })
    }

    /// The `embedding` column at `idx` of the row `id`.
    fn vector(self, row: &Row<'_>, idx: usize, id: RecordId) -> Result<Embedding> {
        let blob = row.get_ref(idx).map_err(|e| self.err(e))?;
        let blob = blob
            .as_blob()
            .map_err(|_| self.corrupt(id, "embedding is not a BLOB"))?;
        Embedding::from_blob(blob, self.dims).ok_or_else(|| {
            self.corrupt(
                id,
                format!(
                    "{}-byte vector, expected {} finite little-endian f32 bytes",
                    blob.len(),
                    self.dims * 4
                ),
            )
        })
    }

    /// Calls `f(rowid, seq, id, vector)` for every row with `seq > after`, in `seq` order
    /// (`vector` is `None` for a deleted row), until `f` breaks. One statement, so one
    /// consistent snapshot of the file.
    fn each_change(
        self,
        conn: &Connection,
        after: i64,
        mut f: impl FnMut(i64, i64, RecordId, Option<Embedding>) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, id, deleted, embedding, seq FROM records WHERE seq > ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([after]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let rowid: i64 = row.get(0).map_err(|e| self.err(e))?;
            let id = self.id(row, 1)?;
            let deleted: bool = row.get(2).map_err(|e| self.err(e))?;
            let seq: i64 = row.get(4).map_err(|e| self.err(e))?;
            let vector = if deleted {
                None
            } else {
                Some(self.vector(row, 3, id)?)
            };
            if f(rowid, seq, id, vector).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Applies every row with `seq > after` to `arena` in `seq` order, and returns the
    /// changes as index notes with the highest `seq` seen (`after` if none). Stops early once
    /// `cancel` is set (the result is then partial, for a caller that discards it).
    fn load_changes(
        self,
        conn: &Connection,
        after: i64,
        arena: &mut Arena,
        cancel: Option<&AtomicBool>,
    ) -> Result<(Vec<Note>, i64)> {
        let mut max_seq = after;
        let mut notes = Vec::new();
        self.each_change(conn, after, |rowid, seq, id, vector| {
            if cancel.is_some_and(|c| notes.len() % 1024 == 0 && c.load(Ordering::Relaxed)) {
                return ControlFlow::Break(());
            }
            max_seq = max_seq.max(seq);
            match vector {
                None => {
                    arena.remove(rowid);
                    notes.push(Note::Remove { rowid, seq });
                }
                Some(v) => {
                    arena.upsert(rowid, id.as_u128(), v.as_slice());
                    notes.push(Note::Upsert { rowid, seq });
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok((notes, max_seq))
    }

    /// `(rowid, id, vector)` of the rows of a `SELECT rowid, id, embedding …` statement.
    fn vectors(
        self,
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(i64, RecordId, Embedding)>> {
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let rowid: i64 = row.get(0).map_err(|e| self.err(e))?;
            let id = self.id(row, 1)?;
            out.push((rowid, id, self.vector(row, 2, id)?));
        }
        Ok(out)
    }
}

/// The columns of a live row that writes need before changing it.
struct LiveRow {
    rowid: i64,
    /// The old text: external-content FTS5 needs it to delete the row's tokens.
    text: String,
    version: i64,
}

/// Issues `seq` and hybrid-logical-clock `version` stamps inside one write transaction.
pub(crate) struct Stamper {
    first_seq: i64,
    pub(crate) next_seq: i64,
    last_version: i64,
    now: i64,
}

impl Stamper {
    /// The next `(seq, version)`: `seq` counts up by one; `version` is the wall clock in ms
    /// shifted left 16 bits, or one more than the last version if the clock is behind.
    fn stamp(&mut self) -> (i64, i64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.last_version = (self.now << 16).max(self.last_version + 1);
        (seq, self.last_version)
    }
}

pub(crate) enum ArenaChange<'a> {
    Upsert(i64, u128, Cow<'a, Embedding>),
    Remove(i64),
}

impl ArenaChange<'_> {
    /// The same change, owning its vector.
    fn into_owned(self) -> ArenaChange<'static> {
        match self {
            ArenaChange::Upsert(rowid, key, v) => {
                ArenaChange::Upsert(rowid, key, Cow::Owned(v.into_owned()))
            }
            ArenaChange::Remove(rowid) => ArenaChange::Remove(rowid),
        }
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Compiles an optional filter to `(sql, params)`; `None` is the always-true `1`.
fn filter_sql(filter: Option<&Filter>) -> Result<(String, Vec<SqlValue>)> {
    match filter {
        None => Ok(("1".to_owned(), Vec::new())),
        Some(f) => {
            let s = f.to_sql()?;
            Ok((s.sql, s.params))
        }
    }
}

/// Refuses files that are not SQLite databases before SQLite sees them, with a clear reason.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let n = f.read(&mut header).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(Error::NotAShard {
            path: path.to_owned(),
            reason: "it does not start with the SQLite file header".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
