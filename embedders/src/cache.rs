//! [`CachedEmbedder`]: never embed the same text twice.
//!
//! The key of a text is SHA-256 over the inner embedder's model id, its dimensions, the
//! [`EmbedKind`] and the text, so vectors of different models or kinds never mix. Lookups go to an
//! in-memory LRU, then (feature `sqlite`) to an optional SQLite file, and only then to the inner
//! embedder. Concurrent calls that miss on the same text share one inner call: the first becomes
//! the leader, the others wait for its result (and, should it fail or be cancelled, try again
//! themselves).
//!
//! # On-disk format (`PRAGMA user_version = 1`)
//!
//! ```sql
//! CREATE TABLE embedding_cache (
//!     key        BLOB PRIMARY KEY NOT NULL, -- SHA-256(model id, dimensions, kind, text), 32 bytes
//!     model_id   TEXT NOT NULL,
//!     dimensions INTEGER NOT NULL,
//!     vector     BLOB NOT NULL              -- `dimensions` f32, little-endian
//! ) WITHOUT ROWID;
//! ```
//!
//! A row whose vector has the wrong length is treated as a miss and overwritten.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use lru::LruCache;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::embedder::check_texts;
use crate::{EmbedKind, Embedder, Error, Result};

/// Default [`CachedEmbedderBuilder::capacity`]: 10 000 vectors (about 15 MB at 384 dimensions).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

type Key = [u8; 32];
type Vector = Arc<[f32]>;
type Inflight = Mutex<HashMap<Key, watch::Receiver<Option<Vector>>>>;

/// Builds a [`CachedEmbedder`]. Get one from [`CachedEmbedder::builder`].
#[derive(Debug, Clone)]
pub struct CachedEmbedderBuilder {
    inner: Arc<dyn Embedder>,
    capacity: usize,
    #[cfg(feature = "sqlite")]
    sqlite_path: Option<std::path::PathBuf>,
}

impl CachedEmbedderBuilder {
    /// Number of vectors kept in memory (least recently used are evicted). Defaults to
    /// [`DEFAULT_CACHE_CAPACITY`]; 0 disables the memory cache.
    pub fn capacity(&mut self, vectors: usize) -> &mut Self {
        self.capacity = vectors;
        self
    }

    /// Also keep vectors in this SQLite file (created if missing), so they survive restarts.
    /// Defaults to none (memory only).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_path(&mut self, path: impl Into<std::path::PathBuf>) -> &mut Self {
        self.sqlite_path = Some(path.into());
        self
    }

    /// Opens the SQLite file, if any, and returns the embedder.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the SQLite file cannot be opened or has a newer format.
    pub fn build(&self) -> Result<CachedEmbedder> {
        Ok(CachedEmbedder {
            inner: Arc::clone(&self.inner),
            memory: Mutex::new(NonZeroUsize::new(self.capacity).map(LruCache::new)),
            inflight: Mutex::new(HashMap::new()),
            #[cfg(feature = "sqlite")]
            store: match &self.sqlite_path {
                Some(path) => Some(Arc::new(store::Store::open(path)?)),
                None => None,
            },
        })
    }
}

/// Wraps an embedder so that a text (per model and kind) is embedded at most once.
///
/// It reports the inner embedder's [`model_id`](Embedder::model_id) and
/// [`dimensions`](Embedder::dimensions).
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    memory: Mutex<Option<LruCache<Key, Vector>>>,
    inflight: Inflight,
    #[cfg(feature = "sqlite")]
    store: Option<Arc<store::Store>>,
}

impl std::fmt::Debug for CachedEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl CachedEmbedder {
    /// A builder wrapping `inner`, with every default (see its setters).
    pub fn builder(inner: Arc<dyn Embedder>) -> CachedEmbedderBuilder {
        CachedEmbedderBuilder {
            inner,
            capacity: DEFAULT_CACHE_CAPACITY,
            #[cfg(feature = "sqlite")]
            sqlite_path: None,
        }
    }

    /// The wrapped embedder.
    pub fn inner(&self) -> &Arc<dyn Embedder> {
        &self.inner
    }

    fn key(&self, kind: EmbedKind, text: &str) -> Key {
        let model = self.inner.model_id().as_bytes();
        let mut hasher = Sha256::new();
        hasher.update((model.len() as u64).to_le_bytes());
        hasher.update(model);
        hasher.update((self.inner.dimensions() as u64).to_le_bytes());
        hasher.update([kind.tag()]);
        hasher.update(text.as_bytes());
        hasher.finalize().into()
    }

    fn remember(&self, key: Key, vector: &Vector) {
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lru) = memory.as_mut() {
            lru.put(key, Arc::clone(vector));
        }
    }

    #[cfg(feature = "sqlite")]
    async fn load_persistent(&self, keys: Vec<Key>) -> Result<Vec<Option<Vector>>> {
        match &self.store {
            None => Ok(vec![None; keys.len()]),
            Some(store) => {
                let store = Arc::clone(store);
                let dims = self.inner.dimensions();
                tokio::task::spawn_blocking(move || store.get(&keys, dims))
                    .await
                    .map_err(Error::Join)?
            }
        }
    }

    #[cfg(not(feature = "sqlite"))]
    async fn load_persistent(&self, keys: Vec<Key>) -> Result<Vec<Option<Vector>>> {
        Ok(vec![None; keys.len()])
    }

    #[cfg(feature = "sqlite")]
    async fn save_persistent(&self, rows: Vec<(Key, Vector)>) -> Result<()> {
        match &self.store {
            None => Ok(()),
            Some(store) => {
                let store = Arc::clone(store);
                let model = self.inner.model_id().to_owned();
                tokio::task::spawn_blocking(move || store.put(&model, &rows))
                    .await
                    .map_err(Error::Join)?
            }
        }
    }

    #[cfg(not(feature = "sqlite"))]
    async fn save_persistent(&self, _rows: Vec<(Key, Vector)>) -> Result<()> {
        Ok(())
    }
}

/// Removes the keys a leader claimed from the in-flight map when it finishes, fails or is
/// cancelled. Waiters whose leader vanished see their channel closed and retry.
struct ClaimGuard<'a> {
    inflight: &'a Inflight,
    keys: Vec<Key>,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            map.remove(key);
        }
    }
}

#[async_trait]
impl Embedder for CachedEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.inner.count_tokens(text)
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        let keys: Vec<Key> = texts.iter().map(|t| self.key(kind, t)).collect();
        let mut found: Vec<Option<Vector>> = {
            let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            keys.iter()
                .map(|k| memory.as_mut().and_then(|lru| lru.get(k).cloned()))
                .collect()
        };

        let mut first_round = true;
        loop {
            // Unique missing keys, each with every position it fills.
            let mut missing: Vec<(Key, Vec<usize>)> = Vec::new();
            let mut slot: HashMap<Key, usize> = HashMap::new();
            for (i, key) in keys.iter().enumerate() {
                if found[i].is_none() {
                    let at = *slot.entry(*key).or_insert_with(|| {
                        missing.push((*key, Vec::new()));
                        missing.len() - 1
                    });
                    missing[at].1.push(i);
                }
            }
            if missing.is_empty() {
                break;
            }

            if first_round {
                first_round = false;
                let stored = self
                    .load_persistent(missing.iter().map(|(k, _)| *k).collect())
                    .await?;
                let mut still = Vec::with_capacity(missing.len());
                for ((key, positions), hit) in missing.into_iter().zip(stored) {
                    match hit {
                        Some(vector) => {
                            self.remember(key, &vector);
                            for &i in &positions {
                                found[i] = Some(Arc::clone(&vector));
                            }
                        }
                        None => still.push((key, positions)),
                    }
                }
                missing = still;
                if missing.is_empty() {
                    break;
                }
            }

            // Claim the keys nobody is embedding; wait for the others.
            let mut lead = Vec::new();
            let mut senders = Vec::new();
            let mut waits = Vec::new();
            {
                let mut map = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
                for (key, positions) in missing {
                    match map.get(&key) {
                        Some(rx) => waits.push((rx.clone(), positions)),
                        None => {
                            let (tx, rx) = watch::channel(None);
                            map.insert(key, rx);
                            senders.push(tx);
                            lead.push((key, positions));
                        }
                    }
                }
            }
            let guard = ClaimGuard {
                inflight: &self.inflight,
                keys: lead.iter().map(|(k, _)| *k).collect(),
            };

            if !lead.is_empty() {
                let batch: Vec<String> = lead
                    .iter()
                    .map(|(_, positions)| texts[positions[0]].clone())
                    .collect();
                let vectors = self.inner.embed(&batch, kind).await?;
                if vectors.len() != batch.len() {
                    return Err(Error::CountMismatch {
                        expected: batch.len(),
                        actual: vectors.len(),
                    });
                }
                let dims = self.inner.dimensions();
                let mut rows = Vec::with_capacity(lead.len());
                for (((key, positions), vector), tx) in lead.into_iter().zip(vectors).zip(&senders)
                {
                    if vector.len() != dims {
                        return Err(Error::DimensionMismatch {
                            index: positions[0],
                            expected: dims,
                            actual: vector.len(),
                        });
                    }
                    let vector: Vector = vector.into();
                    self.remember(key, &vector);
                    // Waiters may all have gone; that is fine.
                    let _ = tx.send(Some(Arc::clone(&vector)));
                    for &i in &positions {
                        found[i] = Some(Arc::clone(&vector));
                    }
                    rows.push((key, vector));
                }
                drop(guard);
                self.save_persistent(rows).await?;
            } else {
                drop(guard);
            }

            for (mut rx, positions) in waits {
                // Err: the leader failed or was cancelled; the next round embeds it here.
                if let Ok(value) = rx.wait_for(Option::is_some).await
                    && let Some(vector) = value.as_ref()
                {
                    for &i in &positions {
                        found[i] = Some(Arc::clone(vector));
                    }
                }
            }
        }

        found
            .into_iter()
            .enumerate()
            .map(|(index, v)| {
                v.map(|v| v.to_vec()).ok_or(Error::CountMismatch {
                    expected: texts.len(),
                    actual: index,
                })
            })
            .collect()
    }
}

#[cfg(feature = "sqlite")]
mod store {
    //! The SQLite file behind a [`CachedEmbedder`](super::CachedEmbedder).

    use std::path::Path;
    use std::sync::{Arc, Mutex, PoisonError};

    use rusqlite::{Connection, OptionalExtension, params};

    use super::{Key, Vector};
    use crate::{Error, Result};

    const VERSION: i64 = 1;

    fn cache_error(during: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |e| Error::Cache {
            during,
            source: Box::new(e),
        }
    }

    pub(super) struct Store {
        conn: Mutex<Connection>,
    }

    impl Store {
        pub(super) fn open(path: &Path) -> Result<Self> {
            let conn = Connection::open(path).map_err(cache_error("opening the cache file"))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(cache_error("setting busy_timeout"))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(cache_error("enabling WAL"))?;
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(cache_error("reading user_version"))?;
            if version > VERSION {
                return Err(Error::Cache {
                    during: "opening the cache file",
                    source: format!(
                        "{} has cache format {version}; this build knows up to {VERSION}",
                        path.display()
                    )
                    .into(),
                });
            }
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS embedding_cache (
                    key BLOB PRIMARY KEY NOT NULL,
                    model_id TEXT NOT NULL,
                    dimensions INTEGER NOT NULL,
                    vector BLOB NOT NULL
                ) WITHOUT ROWID;
                PRAGMA user_version = 1;",
            )
            .map_err(cache_error("creating the cache table"))?;
            Ok(Self {
                conn: Mutex::new(conn),
            })
        }

        pub(super) fn get(&self, keys: &[Key], dims: usize) -> Result<Vec<Option<Vector>>> {
            let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let mut stmt = conn
                .prepare_cached("SELECT vector FROM embedding_cache WHERE key = ?1")
                .map_err(cache_error("reading"))?;
            keys.iter()
                .map(|key| {
                    let blob: Option<Vec<u8>> = stmt
                        .query_row(params![&key[..]], |row| row.get(0))
                        .optional()
                        .map_err(cache_error("reading"))?;
                    Ok(blob.and_then(|b| decode(&b, dims)))
                })
                .collect()
        }

        pub(super) fn put(&self, model: &str, rows: &[(Key, Vector)]) -> Result<()> {
            let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction().map_err(cache_error("writing"))?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO embedding_cache (key, model_id, dimensions, vector)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(cache_error("writing"))?;
                for (key, vector) in rows {
                    let blob: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                    stmt.execute(params![&key[..], model, vector.len() as i64, blob])
                        .map_err(cache_error("writing"))?;
                }
            }
            tx.commit().map_err(cache_error("committing"))
        }
    }

    /// The vector in `blob`, or `None` if it does not hold `dims` finite floats.
    fn decode(blob: &[u8], dims: usize) -> Option<Vector> {
        if blob.len() != dims * 4 {
            return None;
        }
        let v: Vec<f32> = blob
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        v.iter().all(|x| x.is_finite()).then(|| Arc::from(v))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Deterministic test embedder: counts texts embedded, optionally sleeps, optionally fails.
    #[derive(Debug, Default)]
    struct Counting {
        texts: AtomicUsize,
        calls: AtomicUsize,
        delay_ms: u64,
        fail_first: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Embedder for Counting {
        fn model_id(&self) -> &str {
            "counting"
        }
        fn dimensions(&self) -> usize {
            2
        }
        async fn embed(&self, texts: &[String], _kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
            }
            if self.fail_first.swap(false, Ordering::SeqCst) {
                return Err(Error::InvalidConfig("injected failure".into()));
            }
            self.texts.fetch_add(texts.len(), Ordering::SeqCst);
            Ok(texts
                .iter()
                .map(|t| {
                    let a = t.len() as f32;
                    let n = (a * a + 1.0).sqrt();
                    vec![a / n, 1.0 / n]
                })
                .collect())
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn sequential_repeats_are_embedded_once() {
        let counting = Arc::new(Counting::default());
        let cached = CachedEmbedder::builder(counting.clone()).build().unwrap();
        let a = cached
            .embed(&strings(&["x", "yy", "x"]), EmbedKind::Document)
            .await
            .unwrap();
        assert_eq!(counting.texts.load(Ordering::SeqCst), 2);
        assert_eq!(a[0], a[2]);
        let b = cached
            .embed(&strings(&["yy", "x"]), EmbedKind::Document)
            .await
            .unwrap();
        assert_eq!(counting.texts.load(Ordering::SeqCst), 2);
        assert_eq!(b, vec![a[1].clone(), a[0].clone()]);
        // Another kind is another key.
        cached.embed_one("x", EmbedKind::Query).await.unwrap();
        assert_eq!(counting.texts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_requests_share_one_call() {
        let counting = Arc::new(Counting {
            delay_ms: 100,
            ..Counting::default()
        });
        let cached = Arc::new(CachedEmbedder::builder(counting.clone()).build().unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let cached = Arc::clone(&cached);
                tokio::spawn(async move {
                    cached
                        .embed(&strings(&["same text"]), EmbedKind::Document)
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(counting.texts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_retry_when_the_leader_fails() {
        let counting = Arc::new(Counting {
            delay_ms: 50,
            fail_first: true.into(),
            ..Counting::default()
        });
        let cached = Arc::new(CachedEmbedder::builder(counting.clone()).build().unwrap());
        let a = {
            let cached = Arc::clone(&cached);
            tokio::spawn(async move { cached.embed_one("t", EmbedKind::Query).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = cached.embed_one("t", EmbedKind::Query).await;
        let a = a.await.unwrap();
        // The first call fails (injected); the waiter retries and succeeds.
        assert!(a.is_err());
        assert!(b.is_ok());
        assert_eq!(counting.texts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn empty_text_is_refused_before_the_inner_call() {
        let counting = Arc::new(Counting::default());
        let cached = CachedEmbedder::builder(counting.clone()).build().unwrap();
        let err = cached
            .embed(&strings(&["a", ""]), EmbedKind::Document)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::EmptyText { index: 1 }));
        assert_eq!(counting.calls.load(Ordering::SeqCst), 0);
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_cache_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let first = Arc::new(Counting::default());
        let v1 = CachedEmbedder::builder(first.clone())
            .sqlite_path(&path)
            .build()
            .unwrap()
            .embed_one("persist me", EmbedKind::Document)
            .await
            .unwrap();
        assert_eq!(first.texts.load(Ordering::SeqCst), 1);

        let second = Arc::new(Counting::default());
        let v2 = CachedEmbedder::builder(second.clone())
            .sqlite_path(&path)
            .build()
            .unwrap()
            .embed_one("persist me", EmbedKind::Document)
            .await
            .unwrap();
        assert_eq!(second.texts.load(Ordering::SeqCst), 0);
        assert_eq!(v1, v2);
    }
}
