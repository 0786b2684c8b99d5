//! Decoding stored rows (ids, vectors, whole records and replication changes) into this
//! crate's types, with errors that name the shard file and the row.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, Row};
use serde_json::Value;

use super::Shard;
use crate::ann::RowChange;
use crate::arena::Arena;
use crate::error::SqliteContext;
use crate::{Change, Embedding, Error, Record, RecordId, Result};

impl Shard {
    /// The decoder of this shard's rows.
    pub(crate) fn decoder(&self) -> Decoder<'_> {
        Decoder {
            path: &self.path,
            dims: self.dims,
        }
    }
}

/// The columns of a row selected with `RECORD_COLUMNS` (and `embedding`), decoded: what
/// [`Record`] and [`Change`] both show, the metadata still as the stored JSON text.
struct Stored {
    id: RecordId,
    kind: String,
    namespace: String,
    text: String,
    metadata: String,
    embedding: Option<Embedding>,
    created_at: i64,
    updated_at: i64,
    version: u64,
    origin: String,
    deleted: bool,
}

/// Decodes columns of `records` rows (ids, vectors, records), naming the shard file in errors.
#[derive(Clone, Copy)]
pub(crate) struct Decoder<'a> {
    pub(super) path: &'a Path,
    pub(super) dims: usize,
}

impl Decoder<'_> {
    fn corrupt(self, id: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        Error::CorruptRecord {
            path: self.path.to_owned(),
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    /// A row selected with `RECORD_COLUMNS` (and `embedding` last if `with_vec`).
    pub(crate) fn record(self, row: &Row<'_>, with_vec: bool) -> Result<Record> {
        let (s, metadata) = self.stored(row, with_vec)?;
        Ok(Record {
            id: s.id,
            kind: s.kind,
            namespace: s.namespace,
            text: s.text,
            metadata,
            embedding: s.embedding,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
            origin: s.origin,
            deleted: s.deleted,
        })
    }

    /// A row selected with `RECORD_COLUMNS, embedding, seq`, as a peer receives it.
    pub(crate) fn change(self, row: &Row<'_>) -> Result<Change> {
        // The metadata is checked as for a record, and sent as stored.
        let (s, _) = self.stored(row, true)?;
        Ok(Change {
            id: s.id,
            kind: s.kind,
            namespace: s.namespace,
            text: s.text,
            metadata: s.metadata,
            embedding: s.embedding,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
            origin: s.origin,
            deleted: s.deleted,
            seq: row.get(11).at(self.path)?,
        })
    }

    /// The columns of `RECORD_COLUMNS` (and `embedding` if `with_vec`) with the metadata
    /// parsed, which must be a JSON object.
    fn stored(
        self,
        row: &Row<'_>,
        with_vec: bool,
    ) -> Result<(Stored, serde_json::Map<String, Value>)> {
        let id = self.id(row, 0)?;
        let metadata: String = row.get(4).at(self.path)?;
        let parsed = match serde_json::from_str::<Value>(&metadata) {
            Ok(Value::Object(m)) => m,
            _ => return Err(self.corrupt(id, "metadata is not a JSON object")),
        };
        let deleted: bool = row.get(9).at(self.path)?;
        let embedding = if with_vec && !deleted {
            Some(self.vector(row, 10, id)?)
        } else {
            None
        };
        let stored = Stored {
            id,
            kind: row.get(1).at(self.path)?,
            namespace: row.get(2).at(self.path)?,
            text: row.get(3).at(self.path)?,
            metadata,
            embedding,
            created_at: row.get(5).at(self.path)?,
            updated_at: row.get(6).at(self.path)?,
            version: row.get::<_, i64>(7).at(self.path)? as u64,
            origin: row.get(8).at(self.path)?,
            deleted,
        };
        Ok((stored, parsed))
    }

    /// The 16-byte `id` column at `idx`.
    fn id(self, row: &Row<'_>, idx: usize) -> Result<RecordId> {
        let v = row.get_ref(idx).at(self.path)?;
        let b = v.as_blob().unwrap_or_default();
        RecordId::from_slice(b).ok_or_else(|| {
            let shown: String = b.iter().map(|x| format!("{x:02x}")).collect();
            self.corrupt(shown, "id is not a 16-byte UUID")
        })
    }

    /// The `embedding` column at `idx` of the row `id`.
    fn vector(self, row: &Row<'_>, idx: usize, id: RecordId) -> Result<Embedding> {
        let blob = row.get_ref(idx).at(self.path)?;
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
    pub(super) fn each_change(
        self,
        conn: &Connection,
        after: i64,
        mut f: impl FnMut(i64, i64, RecordId, Option<Embedding>) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, id, deleted, embedding, seq FROM records WHERE seq > ?1 ORDER BY seq",
            )
            .at(self.path)?;
        let mut rows = stmt.query([after]).at(self.path)?;
        while let Some(row) = rows.next().at(self.path)? {
            let rowid: i64 = row.get(0).at(self.path)?;
            let id = self.id(row, 1)?;
            let deleted: bool = row.get(2).at(self.path)?;
            let seq: i64 = row.get(4).at(self.path)?;
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
    pub(super) fn load_changes(
        self,
        conn: &Connection,
        after: i64,
        arena: &mut Arena,
        cancel: Option<&AtomicBool>,
    ) -> Result<(Vec<RowChange>, i64)> {
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
                    notes.push(RowChange::Remove { rowid, seq });
                }
                Some(v) => {
                    arena.upsert(rowid, id.as_u128(), v.as_slice());
                    notes.push(RowChange::Upsert { rowid, seq });
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok((notes, max_seq))
    }

    /// `(rowid, id, vector)` of the rows of a `SELECT rowid, id, embedding …` statement.
    pub(super) fn vectors(
        self,
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(i64, RecordId, Embedding)>> {
        let mut stmt = conn.prepare_cached(sql).at(self.path)?;
        let mut rows = stmt.query(params).at(self.path)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().at(self.path)? {
            let rowid: i64 = row.get(0).at(self.path)?;
            let id = self.id(row, 1)?;
            out.push((rowid, id, self.vector(row, 2, id)?));
        }
        Ok(out)
    }
}
