//! The write paths: one `IMMEDIATE` transaction per call stamped with fresh `seq` and
//! `version` values, the row and full-text changes inside it, and the arena brought up to
//! date after the commit.

use std::borrow::Cow;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

use super::{RECORD_COLUMNS, Shard, now_ms};
#[cfg(doc)]
use crate::Durability;
use crate::ann::RowChange;
use crate::error::SqliteContext;
use crate::record::{check_created_at, check_kind, check_namespace, check_text, metadata_json};
use crate::{Embedding, Error, NewRecord, Record, RecordId, RecordUpdate, Result};

impl Shard {
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
            .at(&self.path)?;
        let (max_seq, max_version): (i64, i64) = tx
            // Two scalar subqueries, not one SELECT with two aggregates: SQLite answers a lone
            // `max(col)` from the index in O(log n) but scans the table for two at once.
            .query_row(
                "SELECT ifnull((SELECT max(seq) FROM records), 0), \
                        ifnull((SELECT max(version) FROM records), 0)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .at(&self.path)?;
        let mut stamper = Stamper {
            first_seq: max_seq + 1,
            next_seq: max_seq + 1,
            last_version: max_version,
            now: now_ms(),
        };
        let (out, changes) = f(&tx, &mut stamper)?;
        tx.commit().at(&self.path)?;
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
                        notes.push(RowChange::Upsert { rowid, seq });
                    }
                    ArenaChange::Remove(rowid) => {
                        arena.remove(rowid);
                        notes.push(RowChange::Remove { rowid, seq });
                    }
                }
            }
            if !notes.is_empty() {
                self.ann
                    .record_changes(&notes, arena.len(), stamper.next_seq - 1);
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
            check_created_at(r.created_at)?;
            let meta = metadata_json(&r.metadata)?;
            prepared.push((r.id.unwrap_or_default(), meta));
        }
        self.write(|tx, st| {
            let mut ids = Vec::with_capacity(recs.len());
            let mut changes = Vec::with_capacity(recs.len());
            let mut blob = Vec::with_capacity(self.dims * 4);
            for (r, (id, meta)) in recs.iter().zip(&prepared) {
                let (seq, version) = st.stamp();
                blob.clear();
                r.embedding.write_blob(&mut blob);
                let rowid = self.insert_row(
                    tx,
                    &RowValues {
                        id: *id,
                        kind: &r.kind,
                        namespace: &r.namespace,
                        text: &r.text,
                        metadata: meta,
                        embedding: Some(&blob),
                        created_at: r.created_at.unwrap_or(st.now),
                        updated_at: st.now,
                        version,
                        origin: &self.origin,
                        deleted: false,
                        seq,
                    },
                )?;
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
                    stmt.query_row([id], |row| Ok((self.decoder().record(row, true), row.get(11)?)))
                        .optional()
                })
                .at(&self.path)?;
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
                .and_then(|mut stmt| stmt.query_row([id], |row| Ok(self.decoder().record(row, true))))
                .at(&self.path)??;
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
        .at(&self.path)?;
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
            .at(&self.path)
    }

    /// Inserts the row `row` and its full-text entry; returns its rowid. The one statement
    /// that inserts rows, for local inserts and a peer's changes alike.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if a row (live or tombstone) has its id; SQLite failures.
    pub(crate) fn insert_row(&self, tx: &Transaction<'_>, row: &RowValues<'_>) -> Result<i64> {
        let res = tx
            .prepare_cached(
                "INSERT INTO records (id, kind, namespace, text, metadata, embedding, \
                 created_at, updated_at, version, origin, deleted, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    row.id,
                    row.kind,
                    row.namespace,
                    row.text,
                    row.metadata,
                    row.embedding,
                    row.created_at,
                    row.updated_at,
                    row.version,
                    row.origin,
                    row.deleted,
                    row.seq,
                ])
            });
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(Error::AlreadyExists { id: row.id }),
            Err(e) => return Err(Error::sqlite(&self.path, e)),
        }
        let rowid = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO records_fts (rowid, text) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute((rowid, row.text)))
            .at(&self.path)?;
        Ok(rowid)
    }

    /// Replaces every column of the row `rowid` (whose text was `old_text`, and whose id is
    /// `row.id`) with `row`, and its full-text entry: the whole-row write of a peer's change.
    pub(crate) fn replace_row(
        &self,
        tx: &Transaction<'_>,
        rowid: i64,
        old_text: &str,
        row: &RowValues<'_>,
    ) -> Result<()> {
        tx.prepare_cached(
            "UPDATE records SET kind = ?2, namespace = ?3, text = ?4, metadata = ?5, \
             embedding = ?6, created_at = ?7, updated_at = ?8, version = ?9, origin = ?10, \
             deleted = ?11, seq = ?12 WHERE rowid = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                rowid,
                row.kind,
                row.namespace,
                row.text,
                row.metadata,
                row.embedding,
                row.created_at,
                row.updated_at,
                row.version,
                row.origin,
                row.deleted,
                row.seq,
            ])
        })
        .at(&self.path)?;
        self.reindex(tx, rowid, old_text, row.text)
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
        .at(&self.path)
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
            .at(&self.path)?;
            self.reindex(tx, rowid, &old_text, "")?;
            Ok((true, vec![ArenaChange::Remove(rowid)]))
        })
    }
}

/// Every column a write stores in a `records` row but the rowid: what
/// [`Shard::insert_row`] and [`Shard::replace_row`] write.
pub(crate) struct RowValues<'a> {
    pub id: RecordId,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub text: &'a str,
    /// The metadata as stored: a JSON object's text.
    pub metadata: &'a str,
    /// The vector BLOB (see `docs/FORMAT.md`); `None` exactly for a tombstone.
    pub embedding: Option<&'a [u8]>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub origin: &'a str,
    pub deleted: bool,
    pub seq: i64,
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
