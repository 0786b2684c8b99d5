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
//!
//! # Layout
//!
//! This module holds the handle the shard uses ([`Ann`]) and the index proper (`IndexCore`:
//! the ledger of rows the graph lacks, the graph, the fold thread's wake-up); [`config`] its
//! tunables, `fold` the background thread that folds pending rows into the graph, `recall`
//! the estimate that tells `Auto` whether to trust the graph, `file` the index file's format,
//! its mapping, save and checks, and `error` the typed failures [`IndexStatus`] reports.

mod config;
mod error;
mod file;
mod fold;
mod recall;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::arena::{Arena, Scored, sort_best_first};
use crate::search::VectorSearch;

pub(crate) use config::AnnConfig;
pub use error::{IndexError, IndexFileError, IndexFileOutcome};
use file::FileRead;
pub use file::{INDEX_SUFFIX, index_path};

/// Lowest estimated recall@10 (see [`IndexStatus::recall_estimate`]) at which
/// [`SearchMode::Auto`](crate::SearchMode::Auto) searches a shard's graph; below it, `Auto`
/// scans instead. Vectors with little neighbourhood structure (every pair about equally
/// similar) defeat HNSW: 100K embeddings of random sentence pairs gave 0.50, real sentence
/// embeddings 0.995.
pub const AUTO_MIN_RECALL: f32 = 0.9;

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
    /// What happened to the index file at open: [`IndexFileOutcome::Loaded`], or why it was
    /// not used and the graph is rebuilt ([`IndexFileError`]: missing, stale, corrupt, another
    /// shard's, ...). `None` when persistence is off. Serialized as its display string
    /// (`loaded`, `missing`, `corrupt: payload checksum mismatch`, ...).
    pub file: Option<IndexFileOutcome>,
    /// The last failure of the background fold or of a save, if any. Serialized as its
    /// display string.
    pub error: Option<IndexError>,
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

/// The ledger of what the graph lacks (pending rows, removals) and of the index's progress,
/// shared by writers, searches and the fold thread.
#[derive(Debug, Default)]
struct Ledger {
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
    error: Option<IndexError>,
    file_outcome: Option<IndexFileOutcome>,
    /// Recall estimate of the graph (see [`IndexCore::estimate_recall`]) and the graph size it
    /// was measured at.
    recall: Option<(f32, usize)>,
}

impl Ledger {
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

/// The index proper: its settings, ledger, graph and the fold thread's wake-up, shared by the
/// shard's handle ([`Ann`]) and the fold thread.
struct IndexCore {
    cfg: AnnConfig,
    dims: usize,
    /// `<shard>.hnsw`, when persistence is on.
    file: Option<PathBuf>,
    /// The shard's origin id, written into the file so that a file never serves another shard.
    origin: String,
    arena: Arc<RwLock<Arena>>,
    ledger: RwLock<Ledger>,
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
    core: Arc<IndexCore>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Reads the index file while the shard opens.
    loader: Mutex<Option<JoinHandle<FileRead>>>,
}

/// The HNSW graph: built in memory, or a read-only view of the mapped index file.
///
/// A loaded file is not copied: usearch reads its nodes and vectors in place from the
/// mapping, so a large shard's graph answers as soon as the file is checked. A view cannot
/// change; the fold thread replaces it with an in-memory copy ([`IndexCore::copy_view_into_memory`]) before the
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
pub(crate) enum RowChange {
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

fn new_index(cfg: &AnnConfig, dims: usize) -> Result<Index, IndexError> {
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
    Index::new(&opts).map_err(|e| IndexError::graph("creating the graph", e))
}

impl Ann {
    /// The index of a shard whose arena is `arena`. With persistence on, a thread starts
    /// reading and checking the file beside `shard_path` while the shard loads its arena;
    /// [`install_file_graph`](Self::install_file_graph) waits for it.
    pub fn new(
        cfg: AnnConfig,
        dims: usize,
        shard_path: &Path,
        origin: &str,
        arena: Arc<RwLock<Arena>>,
    ) -> Ann {
        let file = cfg.persist.then(|| index_path(shard_path));
        let contexts = context_count(&cfg);
        let shared = Arc::new(IndexCore {
            dims,
            file,
            origin: origin.to_owned(),
            arena,
            ledger: RwLock::new(Ledger::default()),
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
                .spawn(move || sh.read_file(&path))
        });
        let loader = match loader {
            None => None,
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                // Without a thread the file is simply not used: the graph is rebuilt.
                shared.ledger_mut().file_outcome =
                    Some(IndexFileOutcome::NotUsed(IndexFileError::NotRead {
                        reason: e.to_string(),
                    }));
                None
            }
        };
        Ann {
            core: shared,
            worker: Mutex::new(None),
            loader: Mutex::new(loader),
        }
    }

    /// Waits for the index file (if any) to be read and checked, installs its graph, and
    /// returns its stamp: rows with a higher `seq` must be noted as changes; -1 when there
    /// is no graph (every row must be noted).
    pub fn install_file_graph(&self) -> i64 {
        let handle = self.loader.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(h) = handle else {
            return -1;
        };
        let (outcome, stamp) = match h.join() {
            Ok(Ok((index, stamp, recall))) => {
                let size = index.size();
                *self.core.graph.write().unwrap_or_else(|p| p.into_inner()) = Some(index);
                self.core.ledger_mut().recall = recall.map(|r| (r, size));
                (IndexFileOutcome::Loaded, stamp)
            }
            Ok(Err(e)) => (IndexFileOutcome::NotUsed(e), -1),
            Err(_) => (
                IndexFileOutcome::NotUsed(IndexFileError::NotRead {
                    reason: "the loader panicked".into(),
                }),
                -1,
            ),
        };
        self.core.ledger_mut().file_outcome = Some(outcome);
        stamp
    }

    /// Whether the index is persisted (a file may be loaded at open).
    pub fn has_file(&self) -> bool {
        self.core.file.is_some()
    }

    /// Whether the loaded graph holds the sampled rows (`rowid`, current vector), checked
    /// before the arena is loaded (see `verify`).
    pub fn verify_sample(&self, sample: &[(i64, &[f32])]) -> bool {
        let graph = self.core.read_graph();
        graph
            .as_ref()
            .is_some_and(|index| verify(index, sample, 0, self.core.dims).is_ok())
    }

    /// Rows in the graph (0 without one).
    pub fn graph_size(&self) -> usize {
        self.core.read_graph().as_ref().map_or(0, |g| g.size())
    }

    /// The (at most) `want` rows of the graph nearest `query` that `admit` accepts, nearest
    /// first, by the graph's binary16 distance; `None` without a graph. For searches before
    /// the arena is loaded, which rescore them from the rows.
    pub fn graph_candidates(
        &self,
        query: &[f32],
        want: usize,
        admit: impl Fn(i64) -> bool,
    ) -> Result<Option<Vec<i64>>, IndexError> {
        let sh = &self.core;
        if let Some(e) = &sh.ledger().error {
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
        .map_err(|e| IndexError::graph("searching the graph", e))?;
        Ok(Some(matches.keys.iter().map(|&k| k as i64).collect()))
    }

    /// Tells the index about arena changes (in commit order, with the arena's new size),
    /// and wakes the fold thread when there is work. Rows with `seq ≤ stamp` at open are
    /// already in the loaded graph and are not recorded.
    pub fn record_changes(&self, changes: &[RowChange], live: usize, seen_seq: i64) {
        let sh = &self.core;
        let graph = sh.has_graph();
        let work = {
            let mut st = sh.ledger_mut();
            for change in changes {
                match *change {
                    RowChange::Upsert { rowid, seq } => {
                        st.generation += 1;
                        let g = st.generation;
                        // An older vector of the row may be in the graph: searches skip
                        // pending rows there, and the fold replaces the vector.
                        st.pending.insert(rowid, (g, seq));
                    }
                    RowChange::Remove { rowid, seq } => {
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
            sh.wake_fold();
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
        let sh = &self.core;
        let verdict = {
            let graph = sh.read_graph();
            match graph.as_ref() {
                None => None,
                Some(_) if stamp > max_seq => Some(IndexFileError::Rejected {
                    reason: format!(
                        "stale: the file covers seq {stamp}, the shard ends at {max_seq}"
                    ),
                }),
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
        if let Some(rejected) = verdict {
            *sh.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
            sh.ledger_mut().file_outcome = Some(IndexFileOutcome::NotUsed(rejected));
            let rows = all()?;
            let mut st = sh.ledger_mut();
            st.pending.clear();
            st.removed.clear();
            for (rowid, seq) in rows {
                st.generation += 1;
                let g = st.generation;
                st.pending.insert(rowid, (g, seq));
            }
        }
        let work = {
            let mut st = sh.ledger_mut();
            st.opened = true;
            st.has_work(&sh.cfg, sh.has_graph())
        };
        if work {
            self.start_worker();
            sh.wake_fold();
        }
        Ok(())
    }

    fn start_worker(&self) {
        let mut w = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_some() {
            return;
        }
        let shared = Arc::clone(&self.core);
        match std::thread::Builder::new()
            .name("reasonbank-fold".into())
            .spawn(move || shared.fold_loop())
        {
            Ok(h) => *w = Some(h),
            Err(e) => {
                self.core.ledger_mut().error = Some(IndexError::Thread {
                    thread: "fold",
                    message: e.to_string(),
                })
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
    ) -> Result<AnnAnswer, IndexError> {
        let sh = &self.core;
        let st = sh.ledger();
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
        .map_err(|e| IndexError::graph("searching the graph", e))?;
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
        let sh = &self.core;
        let st = sh.ledger();
        sh.has_graph()
            && st.pending.len() <= sh.cfg.threshold.max(live / 4)
            && st.recall.is_none_or(|r| r.0 >= AUTO_MIN_RECALL)
    }

    /// The index's state.
    pub fn status(&self) -> IndexStatus {
        let sh = &self.core;
        let st = sh.ledger();
        let graph = sh.read_graph();
        IndexStatus {
            graph: graph.is_some(),
            indexed: graph.as_ref().map_or(0, |g| g.size()),
            pending: st.pending.len(),
            file: st.file_outcome.clone(),
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
        let sh = &self.core;
        let deadline = Instant::now() + timeout;
        loop {
            {
                let st = sh.ledger();
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
    pub fn save(&self) -> Result<(), IndexError> {
        self.core.save()
    }
}

impl Drop for Ann {
    fn drop(&mut self) {
        self.core.ledger_mut().stop = true;
        self.core.wake_fold();
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

/// Checks a graph against the rows: its dimensions, that it holds at least `unchanged_count`
/// rows (the live rows unchanged since its stamp), and that each sampled row (`rowid`,
/// current vector) is in it with that vector.
fn verify(
    index: &Index,
    sample: &[(i64, &[f32])],
    unchanged_count: usize,
    dims: usize,
) -> Result<(), IndexFileError> {
    let rejected = |reason: String| IndexFileError::Rejected { reason };
    if index.dimensions() != dims {
        return Err(rejected(format!(
            "graph has {} dimensions, shard {dims}",
            index.dimensions()
        )));
    }
    if index.size() < unchanged_count {
        return Err(rejected(format!(
            "graph holds {} rows but {unchanged_count} live rows predate its stamp",
            index.size()
        )));
    }
    let mut buf = vec![0f32; dims];
    for &(r, v) in sample {
        let n = index
            .get(r as u64, &mut buf)
            .map_err(|e| rejected(format!("reading row {r} from the graph: {e}")))?;
        if n != 1 {
            return Err(rejected(format!("row {r} is missing from the graph")));
        }
        // The graph stores binary16: its copy is within ~1e-3 of the row's vector.
        let d = crate::kernels::dot(&buf, v);
        if d < 0.99 {
            return Err(rejected(format!(
                "row {r} has another vector in the graph (cosine {d:.4})"
            )));
        }
    }
    Ok(())
}

impl IndexCore {
    fn ledger(&self) -> RwLockReadGuard<'_, Ledger> {
        self.ledger.read().unwrap_or_else(|p| p.into_inner())
    }
    fn ledger_mut(&self) -> std::sync::RwLockWriteGuard<'_, Ledger> {
        self.ledger.write().unwrap_or_else(|p| p.into_inner())
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

    fn wake_fold(&self) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.woken.notify_all();
    }
}
