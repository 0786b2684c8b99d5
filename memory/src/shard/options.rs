//! [`ShardOptions`]: how a shard is opened, every knob with its default.

use std::time::Duration;

#[cfg(test)]
use std::sync::{Arc, Mutex};

use crate::ann::AnnConfig;
use crate::schema::{Durability, Pragmas};
#[cfg(doc)]
use crate::{SearchMode, Shard};

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

/// Default of [`ShardOptions::background_load_rows`]: below it the arena loads in well under
/// a second anyway.
const BACKGROUND_LOAD_ROWS: usize = 100_000;
