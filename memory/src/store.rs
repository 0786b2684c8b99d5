//! [`Store`]: a directory of shards, with a bounded cache of open ones.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::search::{Candidate, fuse};
use crate::{Error, Query, Result, SearchHit, SearchOptions, Shard, ShardId, ShardOptions};

/// File name suffix of shard files: shard `coder` lives in `coder.sqlite`.
pub const SHARD_SUFFIX: &str = ".sqlite";

/// How a store is opened. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    shard: ShardOptions,
    max_open: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            shard: ShardOptions::default(),
            max_open: 256,
        }
    }
}

impl StoreOptions {
    /// Options with the defaults below.
    pub fn new() -> Self {
        Self::default()
    }
    /// Options every shard is opened with (dimensions and model id included).
    /// Defaults to [`ShardOptions::default`].
    pub fn shard_options(&mut self, o: ShardOptions) -> &mut Self {
        self.shard = o;
        self
    }
    /// Mutable access to the shard options.
    pub fn shard_options_mut(&mut self) -> &mut ShardOptions {
        &mut self.shard
    }
    /// Most shards kept open at once; the least recently used is closed beyond it. Each open
    /// shard holds three file descriptors (database, WAL, shared memory) and its vectors in
    /// memory. Defaults to 256.
    pub fn max_open(&mut self, n: usize) -> &mut Self {
        self.max_open = n.max(1);
        self
    }
}

/// A directory of shards, one SQLite file per agent.
///
/// Shards are opened on first use and kept in an LRU of at most
/// [`max_open`](StoreOptions::max_open); a store can hold any number of shards on disk while
/// a few hundred are in use. Evicting a shard only drops the store's handle: callers still
/// holding an `Arc<Shard>` keep it open until they drop it.
pub struct Store {
    root: PathBuf,
    opts: StoreOptions,
    /// The open shards, least recently used first out (the `lru` crate the embedders' cache
    /// uses too).
    open: Mutex<LruCache<ShardId, Arc<Slot>>>,
}

/// One shard of the LRU, open or being opened. Opening happens under the slot's own lock, not
/// the LRU's: a large shard takes a while to load, and other shards stay reachable meanwhile.
#[derive(Default)]
struct Slot(Mutex<Option<Arc<Shard>>>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `root`, creating the directory if needed.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created.
    pub fn open(root: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let root = root.as_ref().to_owned();
        std::fs::create_dir_all(&root).map_err(|source| Error::Io {
            path: root.clone(),
            source,
        })?;
        let capacity = NonZeroUsize::new(opts.max_open).unwrap_or(NonZeroUsize::MIN);
        Ok(Store {
            root,
            opts,
            open: Mutex::new(LruCache::new(capacity)),
        })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of shard `id`'s file (inside the root by construction of [`ShardId`]).
    pub fn path_of(&self, id: &ShardId) -> PathBuf {
        self.root.join(format!("{id}{SHARD_SUFFIX}"))
    }

    /// Whether shard `id` exists on disk.
    pub fn exists(&self, id: &ShardId) -> bool {
        self.path_of(id).is_file()
    }

    /// Shard `id`, opened (or created, as the shard options allow) on first use.
    ///
    /// # Errors
    /// As [`Shard::open`].
    pub fn shard(&self, id: &ShardId) -> Result<Arc<Shard>> {
        let (slot, evicted) = {
            let mut lru = self.open.lock().unwrap_or_else(|p| p.into_inner());
            match lru.get(id) {
                Some(slot) => (Arc::clone(slot), None),
                None => {
                    let slot = Arc::new(Slot::default());
                    // Full: the least recently used goes. Handles already given out stay
                    // valid; that shard closes with the last of them.
                    let evicted = lru.push(id.clone(), Arc::clone(&slot));
                    (slot, evicted)
                }
            }
        };
        // Closing a shard joins its index thread, which may write the index file: not while
        // other callers wait for the store's lock.
        drop(evicted);
        let mut open = slot.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shard) = &*open {
            return Ok(Arc::clone(shard));
        }
        match Shard::open(self.path_of(id), &self.opts.shard) {
            Ok(shard) => {
                let shard = Arc::new(shard);
                *open = Some(Arc::clone(&shard));
                Ok(shard)
            }
            Err(e) => {
                // Forget the empty slot (unless it was already replaced) so that a later call
                // tries again, e.g. once the file exists.
                drop(open);
                let mut lru = self.open.lock().unwrap_or_else(|p| p.into_inner());
                if lru.peek(id).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    lru.pop(id);
                }
                Err(e)
            }
        }
    }

    /// Removes shard `id` if it holds no row at all (no record, no tombstone) and nobody but
    /// the store holds it open: closes the store's handle and deletes its files. For an
    /// operation that created a shard and then failed (a denied sync), so that it leaves
    /// nothing behind. Returns whether the shard was removed.
    ///
    /// # Errors
    /// SQLite errors reading its counts, [`Error::Io`] deleting its files.
    pub fn discard_if_empty(&self, id: &ShardId) -> Result<bool> {
        let slot = {
            let mut lru = self.open.lock().unwrap_or_else(|p| p.into_inner());
            lru.pop(id)
        };
        let Some(slot) = slot else {
            return Ok(false);
        };
        let Some(shard) = slot.0.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(false);
        };
        let stats = shard.stats()?;
        if stats.records > 0 || stats.tombstones > 0 || Arc::strong_count(&shard) > 1 {
            // In use or not empty: only the store's handle is dropped (reopened on next use).
            return Ok(false);
        }
        // Closing joins the shard's threads and checkpoints its WAL.
        drop(shard);
        let path = self.path_of(id);
        for suffix in ["", "-wal", "-shm", "-journal", ".hnsw"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: p.into(),
                        source,
                    });
                }
            }
        }
        Ok(true)
    }

    /// Number of shards the store currently holds open.
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Ids of all shards on disk, sorted. Files whose names are not valid shard ids are
    /// ignored.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read.
    pub fn list(&self) -> Result<Vec<ShardId>> {
        let io = |source| Error::Io {
            path: self.root.clone(),
            source,
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SHARD_SUFFIX))
                .and_then(|n| ShardId::new(n).ok())
            {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Searches several shards and merges their hits into one top-k, each hit tagged with
    /// its shard. Vector queries merge by cosine, text queries by BM25 (each shard's BM25 uses
    /// its own term statistics), and hybrid queries fuse the shards' cosine and BM25 rankings
    /// globally (see [`Shard::search`]).
    ///
    /// # Errors
    /// The first error of any shard (an unknown shard is [`Error::NoSuchShard`] when the
    /// store does not create shards, otherwise it is created empty).
    pub fn search(
        &self,
        shards: &[ShardId],
        query: &Query,
        opts: &SearchOptions,
    ) -> Result<Vec<SearchHit>> {
        let open = shards
            .iter()
            .map(|id| self.shard(id))
            .collect::<Result<Vec<_>>>()?;
        let rankings = open
            .iter()
            .map(|s| s.rankings(query, opts))
            .collect::<Result<Vec<_>>>()?;
        // Fetch each shard's picks in one statement, then emit them in the fused order (a
        // hit's record id is its candidate's key; rows deleted meanwhile are left out).
        let picks = fuse(&rankings, opts);
        let mut per_shard: Vec<Vec<Candidate>> = vec![Vec::new(); open.len()];
        for (i, c) in &picks {
            per_shard[*i].push(*c);
        }
        let mut fetched = per_shard
            .into_iter()
            .zip(&open)
            .map(|(list, shard)| {
                let hits = shard.fetch_hits(list)?;
                Ok(hits
                    .into_iter()
                    .map(|h| (h.id.as_u128(), h))
                    .collect::<std::collections::HashMap<_, _>>())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(picks
            .into_iter()
            .filter_map(|(i, c)| {
                let mut hit = fetched[i].remove(&c.hit.key)?;
                hit.shard = Some(shards[i].clone());
                Some(hit)
            })
            .collect())
    }
}
