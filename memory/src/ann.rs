//! The approximate-nearest-neighbour (HNSW) index of a shard, its flat segment of rows not yet
//! in the graph, the background thread that folds them in, and the index file.
//!
//! # Design
//!
//! The graph is [usearch](https://github.com/unum-cloud/usearch)'s HNSW, keyed by SQLite
//! `rowid`, holding the vectors as binary16 and ranking by inner product (vectors are unit
//! length). It is *derived* data, like the arena: SQLite rows are the truth.
//!
//! - **Flat segment.** A write never touches the graph: the arena takes the vector as before and
//!   the row is noted as *pending* (its current vector is not in the graph). A search ranks the
//!   graph with a predicate that skips pending and deleted rows, scans the pending rows exactly
//!   in the arena, and merges both. The background thread folds pending rows into the graph in
//!   batches (a row updated while it was being folded stays pending: each note carries a
//!   generation).
//! - **Exact scores.** Graph candidates are rescored with the arena's f32 vector, so every
//!   returned score is the exact cosine, and a row that is not live in the arena (deleted,
//!   even if still in the graph) is never returned.
//! - **Completeness.** When the graph returns fewer candidates than it should (fewer than
//!   `min(candidates, rows eligible in the graph)`), the caller answers exactly instead: a
//!   filter through the index returns `k` matching rows whenever `k` exist.
//! - **Index file.** `<shard file>.hnsw` holds a header (magic, format version, dimensions,
//!   the shard's origin, the stamp `seq` it covers, CRC-32 of header and payload) and usearch's
//!   serialization (see `docs/FORMAT.md`). It is written to a temporary file, synced and
//!   renamed. At open it is checked (CRCs, origin, dimensions, stamp not ahead of the rows,
//!   a sample of rows present with their current vectors) and only then loaded; rows with
//!   `seq` above the stamp are caught up. A missing, stale or damaged file means a rebuild
//!   from the rows, never wrong or empty results.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::arena::{Arena, Scored, sort_best_first};
use crate::search::VectorSearch;

/// Lowest estimated recall@10 (see [`IndexStatus::recall_estimate`]) at which
/// [`SearchMode::Auto`](crate::SearchMode::Auto) searches a shard's graph; below it, `Auto`
/// scans instead. Vectors with little neighbourhood structure (every pair about equally
/// similar) defeat HNSW: 100K embeddings of random sentence pairs gave 0.50, real sentence
/// embeddings 0.995.
pub const AUTO_MIN_RECALL: f32 = 0.9;

/// Rows sampled by the recall estimate, and its `k` and beam width (the search default).
const RECALL_SAMPLE: usize = 64;
const RECALL_K: usize = 10;
const RECALL_BEAM: usize = 64;

/// Suffix appended to the shard file's name for its index file.
pub const INDEX_SUFFIX: &str = ".hnsw";

const MAGIC: &[u8; 8] = b"RBKHNSW\x01";
/// Version 2 stores the graph's recall estimate at bytes 124..128 (covered by the header
/// CRC); version 1 files (zero there, outside the CRC) are still read.
const FORMAT_VERSION: u32 = 2;
const HEADER_LEN: usize = 128;
/// Scalar kind code of the stored vectors: 1 = IEEE binary16.
const SCALAR_F16: u32 = 1;
const MAX_ORIGIN: usize = 64;

/// Tunables of the per-shard HNSW index (set through [`ShardOptions`](crate::ShardOptions)).
#[derive(Clone, Debug)]
pub(crate) struct AnnConfig {
    /// Live rows from which the graph is built and `Auto` uses it.
    pub threshold: usize,
    /// HNSW `M`: links per node (twice that on the base layer).
    pub connectivity: usize,
    /// Candidate list size while inserting (`efConstruction`).
    pub expansion_add: usize,
    /// Whether the graph is saved to and loaded from `<shard>.hnsw`.
    pub persist: bool,
    /// Rows folded since the last save after which the file is written again.
    pub save_every: usize,
    /// Rows folded per batch (a batch is added in parallel).
    pub fold_batch: usize,
    /// Threads that add to the graph in parallel.
    pub fold_threads: usize,
}

impl Default for AnnConfig {
    fn default() -> Self {
        AnnConfig {
            threshold: 100_000,
            connectivity: 32,
            expansion_add: 64,
            persist: true,
            save_every: 50_000,
            fold_batch: 4_096,
            fold_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// State of a shard's vector index, for diagnostics and tests.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct IndexStatus {
    /// Whether a graph exists (built, loaded from the file, or being built).
    pub graph: bool,
    /// Rows in the graph (including rows deleted since and not yet taken out).
    pub indexed: usize,
    /// Live rows in the flat segment: searched exactly until folded into the graph.
    pub pending: usize,
    /// What happened to the index file at open: `loaded`, `missing`, or why it was rejected
    /// and rebuilt (stale, corrupt, another shard's, ...). `None` when persistence is off.
    pub file: Option<String>,
    /// The last failure of the background fold or of a save, if any.
    pub error: Option<String>,
    /// Estimated recall@10 of the graph at the default beam width, measured in the
    /// background on the shard's own rows once the graph is complete (and again after it
    /// grew by a tenth), and saved in the index file with the graph: the share of each
    /// sampled row's 10 exact nearest neighbours among the graph's candidates. [`SearchMode::Auto`](crate::SearchMode::Auto) uses the graph
    /// only while this is unknown or at least [`AUTO_MIN_RECALL`].
    pub recall_estimate: Option<f32>,
    /// Bytes the graph holds in memory (its vectors and links); for a graph mapped from the
    /// index file, its bookkeeping only (the file's pages are the OS page cache's).
    pub memory_bytes: usize,
    /// Whether the graph is a read-only view of the mapped index file (until the first
    /// change is folded in, which copies it into memory).
    pub mapped: bool,
    /// Whether the shard's arena is still loading in the background (a large shard just
    /// opened with a valid index file): vector searches answer from the graph meanwhile,
    /// other searches wait for the load.
    pub arena_loading: bool,
}

/// Bookkeeping shared by writers, searches and the fold thread.
#[derive(Debug, Default)]
struct State {
    /// Live rows whose current vector is not in the graph: `rowid → (generation, seq)`.
    pending: HashMap<i64, (u64, i64)>,
    /// Rows to take out of the graph, with the `seq` of their change.
    removed: Vec<(i64, i64)>,
    /// Generation counter of pending notes.
    generation: u64,
    /// Highest `seq` the arena reflects.
    seen_seq: i64,
    /// Live rows in the arena.
    live: usize,
    /// Rows taken out of the graph since it was built (usearch keeps them as tombstones).
    graph_removed: usize,
    /// Rows folded since the last save.
    unsaved: usize,
    stop: bool,
    /// The fold thread is working on a batch.
    busy: bool,
    /// The shard finished opening (the loaded graph was checked): folding may start.
    opened: bool,
    error: Option<String>,
    file_note: Option<String>,
    /// Recall estimate of the graph (see [`Shared::estimate_recall`]) and the graph size it
    /// was measured at.
    recall: Option<(f32, usize)>,
}

impl State {
    fn has_work(&self, cfg: &AnnConfig, graph: bool) -> bool {
        self.opened
            && ((graph && !self.removed.is_empty())
                || (!self.pending.is_empty() && (graph || self.live >= cfg.threshold)))
    }
    /// Every live row with `seq ≤` this has its current vector in the graph, and every row
    /// deleted at or before it is out of the graph.
    fn stamp(&self) -> i64 {
        let lowest = self
            .pending
            .values()
            .map(|p| p.1)
            .chain(self.removed.iter().map(|r| r.1))
            .min();
        match lowest {
            Some(s) => (s - 1).min(self.seen_seq),
            None => self.seen_seq,
        }
    }
}

/// A counting semaphore over usearch's per-thread search contexts: usearch fails an operation
/// when more threads use the index at once than it reserved contexts for.
#[derive(Debug)]
struct Contexts {
    free: Mutex<usize>,
    freed: Condvar,
}

struct ContextGuard<'a>(&'a Contexts);

impl Contexts {
    fn acquire(&self) -> ContextGuard<'_> {
        let mut n = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *n == 0 {
            n = self.freed.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n -= 1;
        ContextGuard(self)
    }
}

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// Everything the shard and its fold thread share.
struct Shared {
    cfg: AnnConfig,
    dims: usize,
    /// `<shard>.hnsw`, when persistence is on.
    file: Option<PathBuf>,
    /// The shard's origin id, written into the file so that a file never serves another shard.
    origin: String,
    arena: Arc<RwLock<Arena>>,
    state: RwLock<State>,
    graph: RwLock<Option<Graph>>,
    contexts: Contexts,
    /// Wakes the fold thread (the flag says there is news).
    wake: Mutex<bool>,
    woken: Condvar,
    /// Serializes saves.
    saving: Mutex<()>,
}

/// Number of usearch thread contexts: searches plus fold threads at once.
fn context_count(cfg: &AnnConfig) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).max(8) + cfg.fold_threads
}

/// The index of one shard and the handle of its fold thread (stopped and joined on drop).
pub(crate) struct Ann {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Reads the index file while the shard opens.
    loader: Mutex<Option<JoinHandle<Loaded>>>,
}

/// A graph read from the index file, its stamp and the recall estimate saved with it, or why
/// the file cannot be used.
type Loaded = Result<(Graph, i64, Option<f32>), String>;

/// The HNSW graph: built in memory, or a read-only view of the mapped index file.
///
/// A loaded file is not copied: usearch reads its nodes and vectors in place from the
/// mapping, so a large shard's graph answers as soon as the file is checked. A view cannot
/// change; the fold thread replaces it with an in-memory copy ([`Shared::thaw`]) before the
/// first change it folds in. The file is only ever replaced by rename, so the mapped bytes
/// stay those of the checked file for as long as the view lives.
pub(crate) struct Graph {
    /// Declared before `map`: dropped (and done reading) before the mapping is unmapped.
    index: Index,
    map: Option<memmap2::Mmap>,
}

impl Graph {
    fn owned(index: Index) -> Graph {
        Graph { index, map: None }
    }
    /// Whether this is a read-only view of the index file.
    fn viewed(&self) -> bool {
        self.map.is_some()
    }
}

impl std::ops::Deref for Graph {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.index
    }
}

impl std::fmt::Debug for Ann {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ann").finish_non_exhaustive()
    }
}

/// A change of the arena, told to the index in commit order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Note {
    /// The row's vector was inserted or replaced.
    Upsert { rowid: i64, seq: i64 },
    /// The row was deleted.
    Remove { rowid: i64, seq: i64 },
}

/// Outcome of a graph search.
pub(crate) enum AnnAnswer {
    /// The merged top-k of graph and flat segment.
    Hits(Vec<Scored>),
    /// The graph cannot answer (not built, too much pending, or incomplete results): the
    /// caller searches exactly.
    Exact,
}

fn new_index(cfg: &AnnConfig, dims: usize) -> Result<Index, String> {
    let opts = IndexOptions {
        dimensions: dims,
        metric: MetricKind::IP,
        quantization: ScalarKind::F16,
        connectivity: cfg.connectivity,
        expansion_add: cfg.expansion_add,
        // Searches ask for `candidates` results, which usearch uses as the beam width when it
        // exceeds this; keep it small so the per-query knob decides.
        expansion_search: 16,
        multi: false,
    };
    Index::new(&opts).map_err(|e| format!("creating the graph: {e}"))
}

/// Replaces usearch's portable binary16 inner product (compiled for baseline x86-64, it
/// converts element by element) with this crate's SIMD kernel: the same distance, `1 − a·b`,
/// several times faster, for inserts and searches alike. Not stored in the file (and reset
/// by usearch's `load`): installed on every new graph and after every load.
#[allow(unsafe_code)]
fn install_metric(index: &mut Index, dims: usize) {
    let dot = crate::kernels::best().dot_f16_f16;
    let metric = move |a: *const usearch::f16, b: *const usearch::f16| -> f32 {
        // SAFETY: usearch calls the metric only with pointers to two vectors of this
        // index, each `dims` binary16 values (`usearch::f16` is a 2-byte `repr(transparent)`
        // bit pattern, read here as `u16`), alive for the duration of the call: stored
        // vectors, or the query cast to binary16 by usearch. Nothing else calls it.
        let (x, y) = unsafe {
            (
                std::slice::from_raw_parts(a.cast::<u16>(), dims),
                std::slice::from_raw_parts(b.cast::<u16>(), dims),
            )
        };
        1.0 - dot(x, y)
    };
    index.change_metric::<usearch::f16>(Box::new(metric));
}

/// The threads that add rows to graphs, shared by every shard of the process and separate
/// from rayon's global pool, which searches use. One per core: folding is background work,
/// and searches on the global pool keep their threads (the OS shares the cores).
fn fold_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            .thread_name(|i| format!("reasonbank-fold-{i}"))
            .build()
            // Building a pool fails only if the OS refuses to spawn threads; rayon's
            // global pool would have failed the same way.
            .expect("spawning the index fold threads")
    })
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// The header checksum of a file of format `version`: bytes 0..120, and from version 2 also
/// bytes 124..128 (the recall estimate).
fn header_crc(h: &[u8], version: u32) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&h[..120]);
    if version >= 2 {
        c.update(&h[124..128]);
    }
    c.finalize()
}

/// CRC-32 of `bytes`, the same value as [`crc32`], computed in chunks on every core and
/// combined (checking a 1M-row index file is ~1 GB: half the time on two cores).
fn crc32_parallel(bytes: &[u8]) -> u32 {
    const MIN_CHUNK: usize = 16 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = bytes.len().div_ceil(threads).max(MIN_CHUNK);
    if chunk >= bytes.len() {
        return crc32(bytes);
    }
    let hash = |c: &[u8]| {
        let mut h = crc32fast::Hasher::new();
        h.update(c);
        h
    };
    let parts: Vec<crc32fast::Hasher> = std::thread::scope(|s| {
        let handles: Vec<_> = bytes
            .chunks(chunk)
            .map(|c| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || hash(c))
                    .map_err(|_| c)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                // No thread to spare: this chunk on the calling thread.
                Err(c) => hash(c),
            })
            .collect()
    });
    let mut all = crc32fast::Hasher::new();
    for p in &parts {
        all.combine(p);
    }
    all.finalize()
}

impl Ann {
    /// The index of a shard whose arena is `arena`. With persistence on, a thread starts
    /// reading and checking the file beside `shard_path` while the shard loads its arena;
    /// [`loaded`](Self::loaded) waits for it.
    pub fn new(
        cfg: AnnConfig,
        dims: usize,
        shard_path: &Path,
        origin: &str,
        arena: Arc<RwLock<Arena>>,
    ) -> Ann {
        let file = cfg.persist.then(|| index_path(shard_path));
        let contexts = context_count(&cfg);
        let shared = Arc::new(Shared {
            dims,
            file,
            origin: origin.to_owned(),
            arena,
            state: RwLock::new(State::default()),
            graph: RwLock::new(None),
            contexts: Contexts {
                free: Mutex::new(contexts),
                freed: Condvar::new(),
            },
            wake: Mutex::new(false),
            woken: Condvar::new(),
            saving: Mutex::new(()),
            cfg,
        });
        let loader = shared.file.clone().map(|path| {
            let sh = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("reasonbank-index-load".into())
                .spawn(move || sh.load(&path))
        });
        let loader = match loader {
            None => None,
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                // Without a thread the file is simply not used: the graph is rebuilt.
                shared.write_state().file_note = Some(format!("not read: {e}"));
                None
            }
        };
        Ann {
            shared,
            worker: Mutex::new(None),
            loader: Mutex::new(loader),
        }
    }

    /// Waits for the index file (if any) to be read and checked, installs its graph, and
    /// returns its stamp: rows with a higher `seq` must be noted as changes; -1 when there
    /// is no graph (every row must be noted).
    pub fn loaded(&self) -> i64 {
        let handle = self.loader.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(h) = handle else {
            return -1;
        };
        let (note, stamp) = match h.join() {
            Ok(Ok((index, stamp, recall))) => {
                let size = index.size();
                *self.shared.graph.write().unwrap_or_else(|p| p.into_inner()) = Some(index);
                self.shared.write_state().recall = recall.map(|r| (r, size));
                ("loaded".to_owned(), stamp)
            }
            Ok(Err(reason)) => (reason, -1),
            Err(_) => ("not read: the loader panicked".to_owned(), -1),
        };
        self.shared.write_state().file_note = Some(note);
        stamp
    }

    /// Whether the index is persisted (a file may be loaded at open).
    pub fn has_file(&self) -> bool {
        self.shared.file.is_some()
    }

    /// Checks the loaded graph against sampled rows (`rowid`, current vector) before the
    /// arena is loaded (see `verify`).
    pub fn verify_sample(&self, sample: &[(i64, &[f32])]) -> Result<(), String> {
        let graph = self.shared.read_graph();
        let index = graph.as_ref().ok_or("no graph")?;
        verify(index, sample, 0, self.shared.dims)
    }

    /// Rows in the graph (0 without one).
    pub fn graph_size(&self) -> usize {
        self.shared.read_graph().as_ref().map_or(0, |g| g.size())
    }

    /// The (at most) `want` rows of the graph nearest `query` that `admit` accepts, nearest
    /// first, by the graph's binary16 distance; `None` without a graph. For searches before
    /// the arena is loaded, which rescore them from the rows.
    pub fn graph_candidates(
        &self,
        query: &[f32],
        want: usize,
        admit: impl Fn(i64) -> bool,
    ) -> Result<Option<Vec<i64>>, String> {
        let sh = &self.shared;
        if let Some(e) = &sh.read_state().error {
            return Err(e.clone());
        }
        let graph = sh.read_graph();
        let Some(index) = graph.as_ref() else {
            return Ok(None);
        };
        let matches = {
            let _ctx = sh.contexts.acquire();
            index.filtered_search(query, want, |key: u64| admit(key as i64))
        }
        .map_err(|e| format!("searching the graph: {e}"))?;
        Ok(Some(matches.keys.iter().map(|&k| k as i64).collect()))
    }

    /// Tells the index about arena changes (in commit order, with the arena's new size),
    /// and wakes the fold thread when there is work. Rows with `seq ≤ stamp` at open are
    /// already in the loaded graph and are not noted.
    pub fn note(&self, notes: &[Note], live: usize, seen_seq: i64) {
        let sh = &self.shared;
        let graph = sh.has_graph();
        let work = {
            let mut st = sh.write_state();
            for n in notes {
                match *n {
                    Note::Upsert { rowid, seq } => {
                        st.generation += 1;
                        let g = st.generation;
                        // An older vector of the row may be in the graph: searches skip
                        // pending rows there, and the fold replaces the vector.
                        st.pending.insert(rowid, (g, seq));
                    }
                    Note::Remove { rowid, seq } => {
                        st.pending.remove(&rowid);
                        st.removed.push((rowid, seq));
                    }
                }
            }
            st.live = live;
            st.seen_seq = st.seen_seq.max(seen_seq);
            st.has_work(&sh.cfg, graph)
        };
        if work {
            self.start_worker();
            sh.poke();
        }
    }

    /// Finishes opening: checks the loaded graph against the rows (its stamp must not be
    /// ahead of the shard's highest `seq`; a sample of rows at or below the stamp must be in
    /// it with their current vectors; it must hold at least the rows that are live and
    /// unchanged since the stamp). On mismatch it drops the graph and marks every live row
    /// pending. `unchanged` lists some live rowids with `seq ≤ stamp`, `unchanged_count`
    /// how many there are, and `all` reads every live `(rowid, seq)` (only on rejection).
    pub fn after_open<E>(
        &self,
        stamp: i64,
        max_seq: i64,
        unchanged: &[i64],
        unchanged_count: usize,
        all: impl FnOnce() -> Result<Vec<(i64, i64)>, E>,
    ) -> Result<(), E> {
        let sh = &self.shared;
        let verdict = {
            let graph = sh.read_graph();
            match graph.as_ref() {
                None => None,
                Some(_) if stamp > max_seq => Some(format!(
                    "stale: the file covers seq {stamp}, the shard ends at {max_seq}"
                )),
                Some(index) => {
                    let arena = sh.read_arena();
                    let sample: Vec<(i64, &[f32])> = unchanged
                        .iter()
                        .filter_map(|&r| arena.slot(r).map(|s| (r, arena.vector(s))))
                        .collect();
                    verify(index, &sample, unchanged_count, sh.dims).err()
                }
            }
        };
        if let Some(reason) = &verdict {
            *sh.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
            sh.write_state().file_note = Some(format!("rejected: {reason}"));
            let rows = all()?;
            let mut st = sh.write_state();
            st.pending.clear();
            st.removed.clear();
            for (rowid, seq) in rows {
                st.generation += 1;
                let g = st.generation;
                st.pending.insert(rowid, (g, seq));
            }
        }
        let work = {
            let mut st = sh.write_state();
            st.opened = true;
            st.has_work(&sh.cfg, sh.has_graph())
        };
        if work {
            self.start_worker();
            sh.poke();
        }
        Ok(())
    }

    fn start_worker(&self) {
        let mut w = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        match std::thread::Builder::new()
            .name("reasonbank-fold".into())
            .spawn(move || shared.run())
        {
            Ok(h) => *w = Some(h),
            Err(e) => {
                self.shared.write_state().error = Some(format!("cannot start the fold thread: {e}"))
            }
        }
    }

    /// Searches the graph and the flat segment for `s` (its beam is the number of results
    /// asked of the graph); `threads` is what the exact scan of the flat segment may use.
    pub fn search(
        &self,
        arena: &Arena,
        s: &VectorSearch<'_>,
        threads: usize,
    ) -> Result<AnnAnswer, String> {
        let sh = &self.shared;
        let st = sh.read_state();
        if let Some(e) = &st.error {
            return Err(e.clone());
        }
        let graph = sh.read_graph();
        let Some(index) = graph.as_ref() else {
            return Ok(AnnAnswer::Exact);
        };
        // A large flat segment (the graph is still being built) is cheaper to scan whole.
        if st.pending.len() > sh.cfg.threshold.max(arena.len() / 4) {
            return Ok(AnnAnswer::Exact);
        }
        let (query, k, threshold) = (s.query, s.k, s.threshold);
        let mut flat: Vec<usize> = st
            .pending
            .keys()
            .filter(|&&r| s.admits(r))
            .filter_map(|&r| arena.slot(r))
            .collect();
        let eligible = s
            .allowed
            .map_or(arena.len(), <[i64]>::len)
            .saturating_sub(flat.len());
        let want = s.beam.max(k);
        let matches = {
            let _ctx = sh.contexts.acquire();
            if s.allowed.is_none() && st.pending.is_empty() && st.removed.is_empty() {
                index.search(query, want)
            } else {
                index.filtered_search(query, want, |key: u64| {
                    let r = key as i64;
                    s.admits(r) && !st.pending.contains_key(&r) && arena.slot(r).is_some()
                })
            }
        }
        .map_err(|e| format!("searching the graph: {e}"))?;
        let mut hits = Vec::with_capacity(want + k);
        let mut found = 0usize;
        for &key in &matches.keys {
            let r = key as i64;
            // Without a predicate, rows deleted meanwhile can still come back from the graph.
            let Some(slot) = arena.slot(r) else { continue };
            if st.pending.contains_key(&r) {
                continue;
            }
            found += 1;
            let score = crate::kernels::dot(query, arena.vector(slot));
            if score >= threshold {
                hits.push(Scored {
                    score,
                    key: arena.key_at(slot),
                    rowid: r,
                });
            }
        }
        if found < want.min(eligible) {
            return Ok(AnnAnswer::Exact);
        }
        if !flat.is_empty() {
            flat.sort_unstable();
            hits.extend(arena.top_k(query, k, threshold, Some(&flat), threads));
        }
        sort_best_first(&mut hits);
        hits.dedup_by_key(|h| h.rowid);
        hits.truncate(k);
        Ok(AnnAnswer::Hits(hits))
    }

    /// Whether `Auto` should search the graph: it exists, its flat segment is small, and its
    /// measured recall (if measured yet) is at least [`AUTO_MIN_RECALL`].
    pub fn ready(&self, live: usize) -> bool {
        let sh = &self.shared;
        let st = sh.read_state();
        sh.has_graph()
            && st.pending.len() <= sh.cfg.threshold.max(live / 4)
            && st.recall.is_none_or(|r| r.0 >= AUTO_MIN_RECALL)
    }

    /// The index's state.
    pub fn status(&self) -> IndexStatus {
        let sh = &self.shared;
        let st = sh.read_state();
        let graph = sh.read_graph();
        IndexStatus {
            graph: graph.is_some(),
            indexed: graph.as_ref().map_or(0, |g| g.size()),
            pending: st.pending.len(),
            file: st.file_note.clone(),
            error: st.error.clone(),
            recall_estimate: st.recall.map(|r| r.0),
            memory_bytes: graph.as_ref().map_or(0, |g| g.memory_usage()),
            mapped: graph.as_ref().is_some_and(Graph::viewed),
            arena_loading: false,
        }
    }

    /// Blocks until every live row is in the graph, at most `timeout`. Returns whether that
    /// happened; `true` at once for a shard below the threshold without a graph (nothing is
    /// folded there), `false` if the fold failed.
    pub fn wait_folded(&self, timeout: Duration) -> bool {
        let sh = &self.shared;
        let deadline = Instant::now() + timeout;
        loop {
            {
                let st = sh.read_state();
                let idle = !st.busy && !st.has_work(&sh.cfg, sh.has_graph());
                if idle && (st.pending.is_empty() || st.error.is_some()) {
                    return st.pending.is_empty();
                }
                if idle && st.live < sh.cfg.threshold {
                    // Nothing will be folded: the shard is small enough to scan exactly.
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Writes the index file now (when persistence is on and a graph exists).
    pub fn save(&self) -> Result<(), String> {
        self.shared.save()
    }
}

impl Drop for Ann {
    fn drop(&mut self) {
        self.shared.write_state().stop = true;
        self.shared.poke();
        let handle = self
            .worker
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            // A panicking fold thread has already recorded nothing useful; the index is
            // derived data and will be rebuilt, so its panic is not re-raised here.
            let _ = h.join();
        }
        // A shard whose open failed may still be reading its index file.
        let loader = self
            .loader
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = loader {
            let _ = h.join();
        }
    }
}

/// Path of the index file of the shard at `shard`: the shard file's name plus
/// [`INDEX_SUFFIX`] (`coder.sqlite` → `coder.sqlite.hnsw`).
pub fn index_path(shard: &Path) -> PathBuf {
    let mut p = shard.as_os_str().to_owned();
    p.push(INDEX_SUFFIX);
    PathBuf::from(p)
}

/// Removes `<file>.<pid>-<n>.tmp` files left by saves of processes that no longer run (a
/// save killed midway). Where liveness cannot be checked (no `/proc`), they stay.
fn remove_orphans(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            // Best effort: a file that cannot be removed is only wasted space.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Checks a loaded graph against the arena.
/// Checks a graph against the rows: its dimensions, that it holds at least `unchanged_count`
/// rows (the live rows unchanged since its stamp), and that each sampled row (`rowid`,
/// current vector) is in it with that vector.
fn verify(
    index: &Index,
    sample: &[(i64, &[f32])],
    unchanged_count: usize,
    dims: usize,
) -> Result<(), String> {
    if index.dimensions() != dims {
        return Err(format!(
            "graph has {} dimensions, shard {dims}",
            index.dimensions()
        ));
    }
    if index.size() < unchanged_count {
        return Err(format!(
            "graph holds {} rows but {unchanged_count} live rows predate its stamp",
            index.size()
        ));
    }
    let mut buf = vec![0f32; dims];
    for &(r, v) in sample {
        let n = index
            .get(r as u64, &mut buf)
            .map_err(|e| format!("reading row {r} from the graph: {e}"))?;
        if n != 1 {
            return Err(format!("row {r} is missing from the graph"));
        }
        // The graph stores binary16: its copy is within ~1e-3 of the row's vector.
        let d = crate::kernels::dot(&buf, v);
        if d < 0.99 {
            return Err(format!(
                "row {r} has another vector in the graph (cosine {d:.4})"
            ));
        }
    }
    Ok(())
}

impl Shared {
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
    fn read_graph(&self) -> RwLockReadGuard<'_, Option<Graph>> {
        self.graph.read().unwrap_or_else(|p| p.into_inner())
    }
    fn read_arena(&self) -> RwLockReadGuard<'_, Arena> {
        self.arena.read().unwrap_or_else(|p| p.into_inner())
    }
    fn has_graph(&self) -> bool {
        self.read_graph().is_some()
    }

    fn poke(&self) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.woken.notify_all();
    }

    /// The fold thread: waits for work, folds batches, saves now and then, and on stop
    /// saves what it has (so the next open loads instead of rebuilding).
    fn run(self: Arc<Self>) {
        loop {
            let (stop, work) = {
                let st = self.read_state();
                (st.stop, st.has_work(&self.cfg, self.has_graph()))
            };
            if stop {
                break;
            }
            if !work {
                if self.recall_due() {
                    if self.measure_recall() {
                        // Saved with the graph at the next save (at the latest when the shard
                        // is dropped), so that a reopened shard knows it at once.
                        self.write_state().unsaved += 1;
                    }
                    continue;
                }
                let mut flag = self.wake.lock().unwrap_or_else(|p| p.into_inner());
                if !*flag {
                    flag = self
                        .woken
                        .wait_timeout(flag, Duration::from_millis(200))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                *flag = false;
                continue;
            }
            if let Err(e) = self.fold_once() {
                let mut st = self.write_state();
                st.error = Some(e);
                st.busy = false;
                // Drop the graph: searches answer exactly (or `Ann` reports the error) until
                // the next open rebuilds it.
                drop(st);
                *self.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
                self.write_state().pending.clear();
                break;
            }
            let save = {
                let st = self.read_state();
                st.unsaved > 0
                    && (st.unsaved >= self.cfg.save_every
                        || (st.pending.is_empty() && st.removed.is_empty()))
            };
            if save {
                // A complete graph is measured first, so that the file carries the estimate.
                if self.recall_due() {
                    self.measure_recall();
                }
                if let Err(e) = self.save() {
                    self.write_state().error = Some(e);
                }
            }
        }
        if self.read_state().unsaved > 0 {
            // Errors here have nowhere to go but the status; the next open catches up.
            if let Err(e) = self.save() {
                self.write_state().error = Some(e);
            }
        }
    }

    /// Measures the graph's recall (see [`Self::estimate_recall`]) and records it; `false`
    /// if it could not (stopped, no graph).
    fn measure_recall(&self) -> bool {
        let r = self.estimate_recall();
        if r.is_some() {
            self.write_state().recall = r;
        }
        r.is_some()
    }

    /// Whether the graph is complete and its recall was not measured at about its size.
    fn recall_due(&self) -> bool {
        let st = self.read_state();
        let size = self.read_graph().as_ref().map_or(0, |g| g.size());
        st.opened
            && !st.stop
            && st.pending.is_empty()
            && st.removed.is_empty()
            && size >= RECALL_SAMPLE * 4
            && st.recall.is_none_or(|(_, at)| size.abs_diff(at) > at / 10)
    }

    /// Measures the graph's recall on the shard's own rows: for rows spread evenly over the
    /// arena, the share of their `RECALL_K` exact nearest neighbours (the row itself left
    /// out) among the graph's `RECALL_BEAM` candidates, which is the recall of a search at
    /// the default beam (candidates are rescored exactly). One exact scan per sampled row,
    /// on this thread, taking the arena's lock only for the scan. `None` if stopped or
    /// the graph went away meanwhile. Returns the estimate and the graph size it was
    /// measured at.
    fn estimate_recall(&self) -> Option<(f32, usize)> {
        let (mut found, mut total) = (0usize, 0usize);
        let mut size = 0;
        for i in 0..RECALL_SAMPLE {
            if self.read_state().stop {
                return None;
            }
            let (rowid, query, exact) = {
                let arena = self.read_arena();
                let n = arena.len();
                if n <= RECALL_K {
                    return None;
                }
                let slot = i * n / RECALL_SAMPLE;
                let q = arena.vector(slot).to_vec();
                let rowid = arena.rowid_at(slot);
                let exact: Vec<i64> = arena
                    .top_k(&q, RECALL_K + 1, f32::NEG_INFINITY, None, 1)
                    .into_iter()
                    .map(|h| h.rowid)
                    .filter(|&r| r != rowid)
                    .take(RECALL_K)
                    .collect();
                (rowid, q, exact)
            };
            let graph = self.read_graph();
            let index = graph.as_ref()?;
            size = index.size();
            let matches = {
                let _ctx = self.contexts.acquire();
                index.search(&query, RECALL_BEAM + 1).ok()?
            };
            let keys: std::collections::HashSet<i64> = matches
                .keys
                .iter()
                .map(|&k| k as i64)
                .filter(|&r| r != rowid)
                .collect();
            total += exact.len();
            found += exact.iter().filter(|r| keys.contains(r)).count();
        }
        (total > 0).then(|| (found as f32 / total as f32, size))
    }

    /// Folds one batch of pending rows (and every pending removal) into the graph.
    fn fold_once(&self) -> Result<(), String> {
        let (batch, removed) = {
            let mut st = self.write_state();
            st.busy = true;
            // Oldest changes first, so that the stamp of a save during a long build (the
            // lowest pending seq minus one) advances and a reopened file is worth loading.
            let mut all: Vec<(i64, i64, u64)> =
                st.pending.iter().map(|(&r, &(g, q))| (q, r, g)).collect();
            let n = self.cfg.fold_batch.min(all.len());
            if n < all.len() {
                all.select_nth_unstable(n);
                all.truncate(n);
            }
            let batch: Vec<(i64, u64)> = all.into_iter().map(|(_, r, g)| (r, g)).collect();
            (batch, std::mem::take(&mut st.removed))
        };
        let vectors: Vec<(i64, u64, Vec<f32>)> = {
            let arena = self.read_arena();
            batch
                .iter()
                .filter_map(|&(r, g)| arena.slot(r).map(|s| (r, g, arena.vector(s).to_vec())))
                .collect()
        };
        self.thaw()?;
        // Make room (usearch must not grow while other threads search it). Lock order is
        // state before graph everywhere: no state lock is taken while the graph is locked.
        let live = self.read_state().live;
        let created = {
            let mut graph = self.graph.write().unwrap_or_else(|p| p.into_inner());
            let created = graph.is_none();
            if created {
                let mut index = new_index(&self.cfg, self.dims)?;
                install_metric(&mut index, self.dims);
                *graph = Some(Graph::owned(index));
            }
            let index = graph.as_ref().ok_or("graph vanished")?;
            let need = index.size() + vectors.len();
            if need > index.capacity() {
                let cap = need.max(index.capacity() * 2).max(live + live / 8);
                index
                    .reserve_capacity_and_threads(cap, context_count(&self.cfg))
                    .map_err(|e| format!("reserving room for {cap} rows: {e}"))?;
            }
            created
        };
        if created {
            self.write_state().graph_removed = 0;
        }
        let mut taken_out = 0;
        {
            let graph = self.read_graph();
            let index = graph.as_ref().ok_or("graph vanished")?;
            for &(r, _) in &removed {
                if index.contains(r as u64) {
                    let _ctx = self.contexts.acquire();
                    index
                        .remove(r as u64)
                        .map_err(|e| format!("removing row {r}: {e}"))?;
                    taken_out += 1;
                }
            }
            let pool = self.cfg.fold_threads.max(1);
            let add = |(r, _, v): &(i64, u64, Vec<f32>)| -> Result<usize, String> {
                let _ctx = self.contexts.acquire();
                let key = *r as u64;
                let mut replaced = 0;
                if index.contains(key) {
                    index
                        .remove(key)
                        .map_err(|e| format!("replacing row {r}: {e}"))?;
                    replaced = 1;
                }
                index
                    .add(key, v.as_slice())
                    .map_err(|e| format!("adding row {r}: {e}"))?;
                Ok(replaced)
            };
            let replaced: usize = if pool == 1 {
                vectors.iter().map(add).sum::<Result<usize, String>>()?
            } else {
                // On the fold pool, not rayon's global one: a search's parallel scan queued
                // behind a batch of graph inserts would wait for the whole batch (seconds).
                fold_pool().install(|| {
                    vectors
                        .par_iter()
                        .with_min_len(vectors.len().div_ceil(pool).max(1))
                        .map(add)
                        .sum::<Result<usize, String>>()
                })?
            };
            taken_out += replaced;
        }
        let mut st = self.write_state();
        for (r, g, _) in &vectors {
            if st.pending.get(r).is_some_and(|p| p.0 == *g) {
                st.pending.remove(r);
            }
        }
        // Rows of the batch that left the arena meanwhile were deleted: their delete note
        // already took them out of `pending`.
        st.unsaved += vectors.len() + removed.len();
        st.graph_removed += taken_out;
        st.busy = false;
        // usearch keeps removed rows as tombstones that still cost search time; past a
        // quarter of the graph, rebuild it from the arena in the background.
        let rebuild = {
            let graph = self.read_graph();
            graph
                .as_ref()
                .is_some_and(|g| st.graph_removed > 1_000 && st.graph_removed > g.size() / 4)
        };
        if rebuild {
            drop(st);
            let rows: Vec<i64> = {
                let arena = self.read_arena();
                (0..arena.len()).map(|s| arena.rowid_at(s)).collect()
            };
            let mut st = self.write_state();
            *self.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
            st.removed.clear();
            st.graph_removed = 0;
            for r in rows {
                st.generation += 1;
                let g = st.generation;
                // Seq 0: a save during the rebuild covers nothing until it is complete.
                st.pending.insert(r, (g, 0));
            }
        }
        Ok(())
    }

    /// Replaces a viewed graph (the mapped index file, read-only) with an in-memory copy
    /// that can change. Searches go on against the view while the copy is made. Only the
    /// fold thread changes the graph, so nothing replaces it in between.
    fn thaw(&self) -> Result<(), String> {
        let copy = {
            let graph = self.read_graph();
            let Some(map) = graph.as_ref().and_then(|g| g.map.as_ref()) else {
                return Ok(());
            };
            let mut index = new_index(&self.cfg, self.dims)?;
            index
                .load_from_buffer(&map[HEADER_LEN..])
                .map_err(|e| format!("copying the mapped graph: {e}"))?;
            install_metric(&mut index, self.dims);
            index
                .reserve_capacity_and_threads(index.size() + 1024, context_count(&self.cfg))
                .map_err(|e| format!("reserving room in the graph: {e}"))?;
            index
        };
        let mut graph = self.graph.write().unwrap_or_else(|p| p.into_inner());
        if graph.as_ref().is_some_and(Graph::viewed) {
            *graph = Some(Graph::owned(copy));
        }
        Ok(())
    }

    /// Writes `<shard>.hnsw` atomically (temporary file, fsync, rename, directory fsync).
    fn save(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let _one = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let (stamp, unsaved, recall) = {
            let st = self.read_state();
            (st.stamp(), st.unsaved, st.recall)
        };
        let payload = {
            let graph = self.read_graph();
            let Some(index) = graph.as_ref() else {
                return Ok(());
            };
            let mut buf = vec![0u8; index.serialized_length()];
            index
                .save_to_buffer(&mut buf)
                .map_err(|e| format!("serializing the graph: {e}"))?;
            (buf, index.size())
        };
        let (payload, count) = payload;
        // The estimate goes into the file only if it was measured at about this size.
        let recall = recall
            .filter(|&(_, at)| count.abs_diff(at) <= at / 10)
            .map(|r| r.0);
        let header = self.header(stamp, count as u64, recall, &payload);
        // One temporary file per process and handle: two handles of one shard (threads or
        // processes) may save at once, and each renames only a file it wrote whole.
        static HANDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = {
            let n = HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{}-{n}.tmp", std::process::id()));
            PathBuf::from(p)
        };
        let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", tmp.display());
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
            f.write_all(&header).map_err(|e| io("writing", e))?;
            f.write_all(&payload).map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("syncing", e))?;
        }
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("renaming", e));
        }
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            // Makes the rename durable; a failure only means the next open may rebuild.
            let _ = d.sync_all();
        }
        let mut st = self.write_state();
        st.unsaved = st.unsaved.saturating_sub(unsaved);
        Ok(())
    }

    fn header(
        &self,
        stamp: i64,
        count: u64,
        recall: Option<f32>,
        payload: &[u8],
    ) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.dims as u32).to_le_bytes());
        h[16..20].copy_from_slice(&SCALAR_F16.to_le_bytes());
        h[20..24].copy_from_slice(&(self.cfg.connectivity as u32).to_le_bytes());
        h[24..32].copy_from_slice(&stamp.to_le_bytes());
        h[32..40].copy_from_slice(&count.to_le_bytes());
        h[40..48].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        h[48..52].copy_from_slice(&crc32(payload).to_le_bytes());
        let origin = &self.origin.as_bytes()[..self.origin.len().min(MAX_ORIGIN)];
        h[52..56].copy_from_slice(&(origin.len() as u32).to_le_bytes());
        h[56..56 + origin.len()].copy_from_slice(origin);
        h[124..128].copy_from_slice(&recall.unwrap_or(f32::NAN).to_le_bytes());
        let crc = header_crc(&h, FORMAT_VERSION);
        h[120..124].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Maps and checks the index file; returns a read-only view of its graph and its stamp,
    /// or why it cannot be used (`missing`, or the defect found).
    fn load(&self, path: &Path) -> Loaded {
        remove_orphans(path);
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".into()),
            Err(e) => return Err(format!("unreadable: {e}")),
        };
        #[allow(unsafe_code)]
        // SAFETY: the file is private to the shard and only ever replaced by rename (`save`),
        // never written in place, so the mapped bytes do not change while mapped. Truncating
        // it from outside would fault the process, as it would for the SQLite file it maps.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
            .map_err(|e| format!("unreadable: mapping it: {e}"))?;
        let (stamp, count, recall, payload) = self.check_header(&map)?;
        let meta = Index::metadata_from_buffer(payload)
            .map_err(|e| format!("corrupt: usearch header: {e}"))?;
        if meta.dimensions != self.dims as u64
            || meta.quantization != ScalarKind::F16
            || meta.metric != MetricKind::IP
            || meta.multi
        {
            return Err("mismatch: graph built with other settings".into());
        }
        let mut index = new_index(&self.cfg, self.dims).map_err(|e| format!("unusable: {e}"))?;
        // The thread contexts set before viewing are kept by the view.
        index
            .reserve_capacity_and_threads(0, context_count(&self.cfg))
            .map_err(|e| format!("unusable: reserving threads: {e}"))?;
        // SAFETY: the view reads from `payload`, which lives in `map`; both go into one
        // `Graph`, which drops the index before the mapping. The payload's checksum matched,
        // so these are the bytes usearch wrote.
        #[allow(unsafe_code)]
        unsafe { index.view_from_buffer(payload) }.map_err(|e| format!("corrupt: {e}"))?;
        install_metric(&mut index, self.dims);
        if index.size() as u64 != count {
            return Err(format!(
                "corrupt: header says {count} rows, graph has {}",
                index.size()
            ));
        }
        Ok((
            Graph {
                index,
                map: Some(map),
            },
            stamp,
            recall,
        ))
    }

    /// `(stamp, count, recall estimate, payload)` of a file whose header and payload check out.
    #[allow(clippy::type_complexity)]
    fn check_header<'a>(
        &self,
        bytes: &'a [u8],
    ) -> Result<(i64, u64, Option<f32>, &'a [u8]), String> {
        if bytes.len() < HEADER_LEN {
            return Err(format!(
                "corrupt: {} bytes, shorter than the header",
                bytes.len()
            ));
        }
        let (h, payload) = bytes.split_at(HEADER_LEN);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if &h[0..8] != MAGIC {
            return Err("corrupt: not a reasonbank index file".into());
        }
        let version = u32_at(8);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(format!("unsupported: format version {version}"));
        }
        if u32_at(120) != header_crc(h, version) {
            return Err("corrupt: header checksum mismatch".into());
        }
        if u32_at(12) as usize != self.dims || u32_at(16) != SCALAR_F16 {
            return Err("mismatch: other dimensions or vector encoding".into());
        }
        let origin_len = (u32_at(52) as usize).min(MAX_ORIGIN);
        let want = &self.origin.as_bytes()[..self.origin.len().min(MAX_ORIGIN)];
        if &h[56..56 + origin_len] != want {
            return Err("mismatch: the file belongs to another shard".into());
        }
        if u64_at(40) != payload.len() as u64 {
            return Err(format!(
                "corrupt: payload is {} bytes, header says {}",
                payload.len(),
                u64_at(40)
            ));
        }
        if u32_at(48) != crc32_parallel(payload) {
            return Err("corrupt: payload checksum mismatch".into());
        }
        let recall = f32::from_le_bytes([h[124], h[125], h[126], h[127]]);
        let recall = (version >= 2 && (0.0..=1.0).contains(&recall)).then_some(recall);
        Ok((u64_at(24) as i64, u64_at(32), recall, payload))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_checksum_equals_the_serial_one() {
        // Sizes around the chunking: one chunk, an uneven split, an even one.
        for len in [0usize, 1_000, (16 << 20) + 7, 48 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            assert_eq!(
                super::crc32_parallel(&bytes),
                super::crc32(&bytes),
                "{len} bytes"
            );
        }
    }
}
