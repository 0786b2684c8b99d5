//! Opening a shard: checking the file, loading the arena (on a thread for a large shard with
//! a valid index file), checking the index against the rows, and catching the arena up with
//! what other connections committed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::{Conn, Decoder, MAX_DIMENSIONS, Shard, ShardOptions, now_ms};
#[cfg(doc)]
use crate::SearchMode;
use crate::ann::{Ann, RowChange};
use crate::arena::Arena;
use crate::error::SqliteContext;
use crate::schema;
use crate::schema::Pragmas;
use crate::text::TextIndex;
use crate::{Error, Result};

/// The arena's load, until it is installed.
pub(super) struct Loading {
    /// The thread loading it; `None` when the load is to be done by the next caller (no
    /// thread, or the thread failed and the error is to be reported from a fresh attempt).
    handle: Option<JoinHandle<Result<LoadedArena>>>,
    /// Stamp of the loaded index file (-1 without one); `None` until asked of the index
    /// (which reads the file while the arena loads).
    pub(super) stamp: Option<i64>,
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
    notes: Vec<RowChange>,
    max_seq: i64,
}

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
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(source) => return Err(Error::Io { path, source }),
        };
        if exists {
            // A 0-byte file included: shards are created whole (below), so an empty one
            // was truncated or made by something else; it is reported, never reinitialized.
            check_header(&path)?;
        } else if !opts.create {
            return Err(Error::NoSuchShard { path });
        } else {
            create_whole(&path, want, &opts.pragmas)?;
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
                .at(&shard.path)?;
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
            let stamp = handle.is_some().then(|| shard.ann.install_file_graph());
            // Stored first: on an error below, dropping the shard stops the thread.
            c.loading = Some(Loading {
                handle,
                stamp,
                cancel,
            });
            let answers_early = match stamp {
                Some(s) if s >= 0 => shard.graph_answers_while_loading(&c, s)?,
                _ => false,
            };
            if !answers_early {
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
    pub(super) fn ensure_loaded(&self, c: &mut Conn) -> Result<()> {
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
            None => self.ann.install_file_graph(),
        };
        self.check_index(c, stamp)?;
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the graph of the index file may answer before the arena is loaded: its stamp
    /// is not ahead of the rows, and the oldest and newest live rows it claims are in it with
    /// their current vectors. The full check (`check_index`) follows once the arena is in.
    fn graph_answers_while_loading(&self, c: &Conn, stamp: i64) -> Result<bool> {
        let max_seq: i64 = c
            .conn
            .query_row("SELECT ifnull(max(seq), 0) FROM records", [], |r| r.get(0))
            .at(&self.path)?;
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
        Ok(self.ann.verify_sample(&rows))
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
                RowChange::Upsert { rowid, seq } if seq <= stamp => Some(rowid),
                _ => None,
            })
            .collect();
        // The oldest and the newest rows the file claims to cover.
        let mut sample: Vec<i64> = covered.iter().take(64).copied().collect();
        sample.extend(covered.iter().rev().take(64).copied());
        let changed: Vec<RowChange> = all
            .iter()
            .filter(|n| match **n {
                RowChange::Upsert { seq, .. } | RowChange::Remove { seq, .. } => seq > stamp,
            })
            .copied()
            .collect();
        let live = self.read_arena().len();
        self.ann.record_changes(&changed, live, c.applied_seq);
        self.ann
            .after_open(stamp, c.applied_seq, &sample, covered.len(), || {
                Ok::<_, Error>(
                    all.iter()
                        .filter_map(|n| match *n {
                            RowChange::Upsert { rowid, seq } => Some((rowid, seq)),
                            RowChange::Remove { .. } => None,
                        })
                        .collect(),
                )
            })
    }

    /// Loads every row changed since `applied_seq` into the arena.
    pub(super) fn catch_up(&self, c: &mut Conn) -> Result<()> {
        let dv: i64 = c
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .at(&self.path)?;
        let mut arena = self.write_arena();
        let (mut notes, max_seq) =
            self.decoder()
                .load_changes(&c.conn, c.applied_seq, &mut arena, None)?;
        match &mut c.opening {
            Some(pending) => pending.append(&mut notes),
            None if !notes.is_empty() => self.ann.record_changes(&notes, arena.len(), max_seq),
            None => {}
        }
        c.applied_seq = max_seq;
        c.data_version = dv;
        Ok(())
    }

    /// Catches the arena up if another connection committed since the last check.
    pub(super) fn refresh(&self, c: &mut Conn) -> Result<()> {
        if c.loading.is_some() {
            // The load's catch-up reads whatever was committed meanwhile.
            return Ok(());
        }
        let dv: i64 = c
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .at(&self.path)?;
        if dv != c.data_version {
            self.catch_up(c)?;
        }
        Ok(())
    }
}

/// Refuses files that are not SQLite databases before SQLite sees them, with a clear reason.
/// Creates the shard file at `path` whole: initialized under a temporary name in the same
/// directory, then hard-linked into place, so a crash or a full disk never leaves a partial
/// or 0-byte shard behind. Another process creating the same shard at once wins the link and
/// this one opens its file.
fn create_whole(path: &Path, want: Option<(usize, &str)>, pragmas: &Pragmas) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let Some(want) = want else {
        return Err(Error::MissingShardSpec {
            path: path.to_owned(),
        });
    };
    // Unique per process and call: opens racing to create one shard each use their own.
    static CREATING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(
        ".{name}.creating-{}-{}",
        std::process::id(),
        CREATING.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        // A stale file of a crashed process that had this pid is not reused.
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let mut conn =
                Connection::open_with_flags(&tmp, flags).map_err(|e| Error::sqlite(&tmp, e))?;
            schema::apply_pragmas(&conn, pragmas, &tmp)?;
            schema::init(&mut conn, &tmp, Some(want), now_ms())?;
            // Back to a rollback journal so that closing leaves one self-contained file
            // (the shard's own opens switch it to WAL again).
            conn.pragma_update(None, "journal_mode", "DELETE")
                .map_err(|e| Error::sqlite(&tmp, e))?;
            conn.close().map_err(|(_, e)| Error::sqlite(&tmp, e))?;
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent() {
            // The new name is durable before anything is written through it.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    })();
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = tmp.clone().into_os_string();
        p.push(suffix);
        // Best effort: a leftover temporary file is clutter, never a shard.
        let _ = std::fs::remove_file(p);
    }
    result
}

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
    if n == 0 {
        return Err(Error::NotAShard {
            path: path.to_owned(),
            reason: "the file is empty (0 bytes): a damaged shard (truncated, or never \
                     completed by an older version); move it away to start the agent over"
                .into(),
        });
    }
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(Error::NotAShard {
            path: path.to_owned(),
            reason: "it does not start with the SQLite file header".into(),
        });
    }
    Ok(())
}
