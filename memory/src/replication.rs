//! Replication: reading a shard's changes in commit order and applying a peer's changes with
//! last-writer-wins, the storage half of `reasonbank-sync`.
//!
//! Every row carries a hybrid-logical-clock stamp (`version`), the id of the writer that made
//! its last write (`origin`) and a tombstone flag; `seq` orders this file's commits. A peer
//! pulls with [`Shard::changes_since`] from its cursor, and the receiver applies the rows
//! with [`Shard::apply_changes`], which keeps a row only when its `(version, origin)` is
//! strictly greater than the local one and records the new cursor in the same transaction.
//!
//! Conflict resolution needs no coordination: `(version, origin)` is a total order, the same
//! on every peer, so any two peers that have applied the same set of changes, in any order
//! and any number of times, hold the same rows.
//!
//! One part of a row is merged instead of replaced: the replicated counters of its metadata
//! ([`COUNTERS_KEY`](crate::COUNTERS_KEY), see [`Counters`]). When a live change meets a live
//! local row, the row keeps the counters' join (per-entry maximum) whichever side wins, so a
//! change that loses or ties still contributes its counters; when that changes the local row,
//! it is rewritten with its own stamp and a fresh `seq`, so the merged counters are relayed
//! too. [`resolve`] is that rule as a pure function.

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::counters::may_hold_counters;
use crate::error::SqliteContext;
use crate::record::{check_kind, check_namespace, check_text};
use crate::shard::{ArenaChange, RECORD_COLUMNS, RowValues};
use crate::{Counters, Embedding, Error, MAX_METADATA_BYTES, RecordId, Result, Shard};

/// Largest accepted `version` stamp (exclusive), 2<sup>62</sup>.
///
/// A stamp is `unix_ms << 16 | counter`, so this is the year 2231; the bound keeps a peer from
/// pushing the clock to `i64::MAX`, after which no local write could get a greater stamp.
pub const MAX_VERSION: u64 = 1 << 62;

/// Longest accepted origin id or peer id, in bytes.
pub const MAX_ORIGIN_BYTES: usize = 128;

/// Tolerance on the squared L2 norm of a received vector (it must be unit length).
const UNIT_NORM_SLACK: f64 = 1e-3;

/// Prefix of the `meta` keys that hold pull cursors: `sync.cursor.<peer>`.
const CURSOR_PREFIX: &str = "sync.cursor.";

/// One row as a peer sends it: the full current state of a record (or its tombstone) plus the
/// sender's local `seq` of that state.
///
/// Serialized with serde in a compact form: the vector as its little-endian f32 BLOB (the
/// on-disk layout), the metadata as the JSON text stored in the shard, so a row arrives
/// byte-for-byte as it was written.
///
/// Not `#[non_exhaustive]`: it is a wire type, and a new field is a protocol change anyway.
/// Nor is it a [`Record`](crate::Record) with a `seq`: a record is the reader's view (metadata
/// parsed, no vector in search hits, open to new fields), a change the replication contract
/// (metadata as stored, vector always carried, fixed layout). Both are decoded from one row
/// by the same code (`shard/decode.rs`) and checked by the same rules (`record.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Record id.
    pub id: RecordId,
    /// Kind (`memory`, `pattern`, ...).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Text; empty for a tombstone.
    pub text: String,
    /// Metadata: a JSON object, as stored (serialized JSON text); `{}` for a tombstone.
    pub metadata: String,
    /// Unit-length vector; `None` exactly for a tombstone.
    #[serde(with = "blob")]
    pub embedding: Option<Embedding>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Time of the last write, Unix milliseconds.
    pub updated_at: i64,
    /// Hybrid logical clock stamp of the last write, below [`MAX_VERSION`].
    pub version: u64,
    /// Id of the writer that made the last write.
    pub origin: String,
    /// Whether this is a tombstone.
    pub deleted: bool,
    /// The sender's local change sequence number of this row state.
    pub seq: i64,
}

impl Change {
    /// The conflict-resolution key: a change wins when its key is strictly greater.
    pub fn stamp(&self) -> (u64, &str) {
        (self.version, &self.origin)
    }

    /// The checks of [`Shard::apply_changes`] that need no shard: kind, namespace, text and
    /// metadata rules and limits, the origin, the stamp's range, and that a tombstone carries
    /// no text, metadata or vector. A live change without its vector passes (it may be one
    /// to re-embed); the vector's dimensions and norm are checked when it is applied.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] or [`Error::TooLarge`] naming the first rule broken.
    pub fn check_fields(&self) -> Result<()> {
        check_kind(&self.kind)?;
        check_namespace(&self.namespace)?;
        check_text(&self.text)?;
        check_origin("origin", &self.origin)?;
        if self.version == 0 || self.version >= MAX_VERSION {
            return Err(Error::InvalidInput {
                what: "version",
                reason: format!("{} is outside 1..2^62", self.version),
            });
        }
        if self.metadata.len() > MAX_METADATA_BYTES {
            return Err(Error::TooLarge {
                what: "metadata",
                size: self.metadata.len(),
                limit: MAX_METADATA_BYTES,
            });
        }
        match serde_json::from_str::<serde_json::Value>(&self.metadata) {
            Ok(serde_json::Value::Object(m)) => {
                Counters::of(&m)?;
            }
            _ => {
                return Err(Error::InvalidInput {
                    what: "metadata",
                    reason: "it is not a JSON object".into(),
                });
            }
        }
        if self.deleted {
            if self.embedding.is_some() {
                return Err(Error::InvalidInput {
                    what: "tombstone",
                    reason: "a tombstone carries no vector".into(),
                });
            }
            if !self.text.is_empty() || self.metadata != "{}" {
                return Err(Error::InvalidInput {
                    what: "tombstone",
                    reason: "a tombstone carries no text and `{}` metadata".into(),
                });
            }
        }
        Ok(())
    }
}

/// What [`Shard::apply_changes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Changes for ids this shard did not hold, inserted.
    pub inserted: usize,
    /// Changes that replaced an older live row or tombstone with a live row.
    pub updated: usize,
    /// Tombstones that replaced an older live row or tombstone.
    pub deleted: usize,
    /// Changes not newer than the local row (already applied, or lost to a later write).
    /// Those whose counters raised the local row's are counted in `counters_merged` too.
    pub skipped: usize,
    /// Changes that lost (or tied) last-writer-wins but whose replicated counters raised the
    /// local row's ([`Counters`]): the row was rewritten with the join and its own stamp.
    pub counters_merged: usize,
}

impl ApplyReport {
    /// Changes that were written.
    pub fn applied(&self) -> usize {
        self.inserted + self.updated + self.deleted
    }
}

/// The local state of one id, as far as conflict resolution and the indexes need it.
struct Local {
    rowid: i64,
    text: String,
    version: u64,
    origin: String,
    deleted: bool,
    metadata: String,
}

/// The state of a local row that [`resolve`] decides against.
#[derive(Clone, Copy, Debug)]
pub struct LocalRow<'a> {
    /// Its `version` stamp.
    pub version: u64,
    /// Its `origin`.
    pub origin: &'a str,
    /// Whether it is a tombstone.
    pub deleted: bool,
    /// Its metadata as stored (JSON text).
    pub metadata: &'a str,
}

/// What applying a change does to the local row ([`resolve`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Nothing: the change loses (or ties) and brings no counters the row lacks.
    Skip,
    /// The change wins: the row becomes the change, with this metadata in place of the
    /// change's when the join of the counters differs from the change's own (`None`: the
    /// change's metadata as sent).
    Replace(Option<String>),
    /// The change loses (or ties) but raised counters: the row keeps its content and stamp
    /// and takes this metadata (its own with the joined counters).
    MergeCounters(String),
}

/// The replication rule for one change against the local row of its id (`None` if there is
/// none): last-writer-wins on `(version, origin)`, and, when both are live, the join of their
/// replicated counters ([`Counters`]) whichever wins. The rule [`Shard::apply_changes`]
/// applies, as a pure function (the sync simulator's models use it too).
///
/// # Errors
/// [`Error::InvalidInput`] if either metadata is not a JSON object or holds malformed
/// counters.
pub fn resolve(local: Option<LocalRow<'_>>, ch: &Change) -> Result<Resolution> {
    let Some(l) = local else {
        return Ok(Resolution::Replace(None));
    };
    let wins = ch.stamp() > (l.version, l.origin);
    let counted = !l.deleted
        && !ch.deleted
        && (may_hold_counters(l.metadata) || may_hold_counters(&ch.metadata));
    if !counted {
        return Ok(if wins {
            Resolution::Replace(None)
        } else {
            Resolution::Skip
        });
    }
    let (mut mine, theirs) = (parse_object(l.metadata)?, parse_object(&ch.metadata)?);
    let (ours, other) = (Counters::of(&mine)?, Counters::of(&theirs)?);
    if wins {
        let mut join = other.clone();
        if !join.join(&ours) {
            return Ok(Resolution::Replace(None));
        }
        let mut m = theirs;
        join.write_into(&mut m);
        Ok(Resolution::Replace(Some(to_json(&m)?)))
    } else {
        let mut join = ours;
        if !join.join(&other) {
            return Ok(Resolution::Skip);
        }
        join.write_into(&mut mine);
        Ok(Resolution::MergeCounters(to_json(&mine)?))
    }
}

fn parse_object(json: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(json).map_err(|e| Error::InvalidInput {
        what: "metadata",
        reason: format!("it is not a JSON object: {e}"),
    })
}

/// Serializes merged metadata, within the size limit.
fn to_json(m: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
    // Serializing a map of `Value`s cannot fail: string keys, no non-finite floats.
    crate::record::metadata_within_limit(
        serde_json::to_string(m).expect("serializing a serde_json::Map"),
    )
}

impl Shard {
    /// Up to `limit` changes with `seq > after_seq`, in `seq` (commit) order: the current
    /// state of every row written after that point, tombstones included.
    ///
    /// Because `seq` is commit order, a reader that resumes from the last `seq` it received
    /// misses nothing.
    ///
    /// # Errors
    /// SQLite failures and [`Error::CorruptRecord`] for rows that do not decode.
    pub fn changes_since(&self, after_seq: i64, limit: usize) -> Result<Vec<Change>> {
        let c = self.lock_conn();
        let mut stmt = c
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS}, embedding, seq FROM records \
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .at(self.path())?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(rusqlite::params![after_seq, limit])
            .at(self.path())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().at(self.path())? {
            out.push(self.decoder().change(row)?);
        }
        Ok(out)
    }

    /// Applies a peer's changes in one `IMMEDIATE` transaction, last-writer-wins, and, if
    /// `cursor` is `(peer, seq)`, records in the same transaction that everything from `peer`
    /// up to `seq` has been applied ([`sync_cursor`](Self::sync_cursor) reads it back).
    ///
    /// Per change ([`resolve`]): a new id is inserted; an existing row is replaced only if the
    /// change's `(version, origin)` is strictly greater (lexicographically) than the row's, so a
    /// tombstone wins over older writes, ties resolve the same way on every peer, and applying
    /// a batch twice is the same as once. Between two live states the replicated counters of
    /// the metadata ([`Counters`]) are joined whichever wins; a losing change that raised them
    /// rewrites the local row with the join, its own stamp and a fresh `seq` (counted in
    /// [`ApplyReport::counters_merged`]). A losing live change may come without its vector
    /// (a text-only receiver does not embed what it would not keep). A written row keeps the change's `version` and
    /// `origin` and takes a fresh local `seq`, so it is relayed to peers that pull from this
    /// shard; the peer it came from skips it (same stamp), so nothing echoes back and forth.
    /// The full-text index and the in-memory vectors follow as for local writes. Local writes
    /// made afterwards are stamped above every applied version (the hybrid-logical-clock
    /// receive rule: a local stamp is `max(now, max(version) + 1)`).
    ///
    /// Every change is checked before anything is written; the cursor only moves forward.
    ///
    /// # Errors
    /// [`Error::InvalidChange`] naming the first bad change (wrong dimensions, a vector that is
    /// not finite and unit length, a tombstone with content or a live row without a vector,
    /// limits, kind or namespace rules, a stamp out of range), [`Error::InvalidInput`] for a
    /// bad peer id, and SQLite failures. On any error nothing is written, the cursor included.
    pub fn apply_changes(
        &self,
        changes: &[Change],
        cursor: Option<(&str, i64)>,
    ) -> Result<ApplyReport> {
        if let Some((peer, _)) = cursor {
            check_origin("peer id", peer)?;
        }
        for (index, ch) in changes.iter().enumerate() {
            self.check_change(ch)
                .map_err(|source| Error::InvalidChange {
                    index,
                    id: ch.id,
                    source: Box::new(source),
                })?;
        }
        self.write(|tx, st| {
            let mut report = ApplyReport::default();
            let mut arena = Vec::with_capacity(changes.len());
            let mut find = tx
                .prepare_cached(
                    "SELECT rowid, text, version, origin, deleted, metadata FROM records \
                     WHERE id = ?1",
                )
                .at(self.path())?;
            for (index, ch) in changes.iter().enumerate() {
                let local = find
                    .query_row([ch.id], |r| {
                        Ok(Local {
                            rowid: r.get(0)?,
                            text: r.get(1)?,
                            version: r.get::<_, i64>(2)? as u64,
                            origin: r.get(3)?,
                            deleted: r.get(4)?,
                            metadata: r.get(5)?,
                        })
                    })
                    .optional()
                    .at(self.path())?;
                let bad = |source: Error| Error::InvalidChange {
                    index,
                    id: ch.id,
                    source: Box::new(source),
                };
                let view = local.as_ref().map(|l| LocalRow {
                    version: l.version,
                    origin: &l.origin,
                    deleted: l.deleted,
                    metadata: &l.metadata,
                });
                let metadata = match resolve(view, ch).map_err(bad)? {
                    Resolution::Skip => {
                        report.skipped += 1;
                        continue;
                    }
                    Resolution::MergeCounters(m) => {
                        // Only a live local row merges counters.
                        let Some(l) = &local else { continue };
                        let seq = st.next_seq;
                        st.next_seq += 1;
                        tx.prepare_cached(
                            "UPDATE records SET metadata = ?2, seq = ?3 WHERE rowid = ?1",
                        )
                        .and_then(|mut s| s.execute(rusqlite::params![l.rowid, m, seq]))
                        .at(self.path())?;
                        report.skipped += 1;
                        report.counters_merged += 1;
                        continue;
                    }
                    Resolution::Replace(m) => m,
                };
                if !ch.deleted && ch.embedding.is_none() {
                    return Err(bad(Error::InvalidVector {
                        reason: "a live record needs a vector".into(),
                    }));
                }
                let seq = st.next_seq;
                st.next_seq += 1;
                let blob = ch.embedding.as_ref().map(Embedding::to_blob);
                let row = RowValues {
                    id: ch.id,
                    kind: &ch.kind,
                    namespace: &ch.namespace,
                    text: &ch.text,
                    metadata: metadata.as_deref().unwrap_or(&ch.metadata),
                    embedding: blob.as_deref(),
                    created_at: ch.created_at,
                    updated_at: ch.updated_at,
                    // `check_change` bounded the version below 2^62, so it fits in an i64.
                    version: ch.version as i64,
                    origin: &ch.origin,
                    deleted: ch.deleted,
                    seq,
                };
                let rowid = match &local {
                    None => {
                        let rowid = self.insert_row(tx, &row)?;
                        report.inserted += 1;
                        rowid
                    }
                    Some(l) => {
                        self.replace_row(tx, l.rowid, &l.text, &row)?;
                        if ch.deleted {
                            report.deleted += 1;
                        } else {
                            report.updated += 1;
                        }
                        l.rowid
                    }
                };
                arena.push(match &ch.embedding {
                    Some(e) => {
                        ArenaChange::Upsert(rowid, ch.id.as_u128(), std::borrow::Cow::Borrowed(e))
                    }
                    None => ArenaChange::Remove(rowid),
                });
            }
            drop(find);
            if let Some((peer, seq)) = cursor {
                // Only forward: a late duplicate of an old batch must not rewind the cursor.
                tx.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE \
                     SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                )
                .and_then(|mut s| s.execute((format!("{CURSOR_PREFIX}{peer}"), seq)))
                .at(self.path())?;
            }
            Ok((report, arena))
        })
    }

    /// The pull cursor stored for `peer` by [`apply_changes`](Self::apply_changes): the
    /// highest `seq` of `peer` whose changes are committed here, or 0 if none.
    ///
    /// # Errors
    /// SQLite failures, and [`Error::CorruptRecord`] if the stored value is not an integer.
    pub fn sync_cursor(&self, peer: &str) -> Result<i64> {
        let c = self.lock_conn();
        let v: Option<rusqlite::types::Value> = c
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| {
                s.query_row([format!("{CURSOR_PREFIX}{peer}")], |r| r.get(0))
                    .optional()
            })
            .at(self.path())?;
        use rusqlite::types::Value as V;
        match v {
            None => Ok(0),
            Some(V::Integer(n)) => Ok(n),
            Some(V::Text(t)) => t.parse().map_err(|_| Error::CorruptRecord {
                path: self.path().to_owned(),
                id: format!("meta:{CURSOR_PREFIX}{peer}"),
                reason: format!("cursor {t:?} is not an integer"),
            }),
            Some(other) => Err(Error::CorruptRecord {
                path: self.path().to_owned(),
                id: format!("meta:{CURSOR_PREFIX}{peer}"),
                reason: format!("cursor is {:?}, not an integer", other.data_type()),
            }),
        }
    }

    /// The conflict-resolution stamps `(version, origin)` of the rows with these ids, in
    /// order, tombstones included; `None` for an id this shard does not hold. A change whose
    /// [`stamp`](Change::stamp) is not greater than its id's stamp here would be skipped by
    /// [`apply_changes`](Self::apply_changes), now or later: a row's stamp never decreases.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn stamps(&self, ids: &[RecordId]) -> Result<Vec<Option<(u64, String)>>> {
        let c = self.lock_conn();
        let mut stmt = c
            .conn
            .prepare_cached("SELECT version, origin FROM records WHERE id = ?1")
            .at(self.path())?;
        ids.iter()
            .map(|id| {
                stmt.query_row([id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
                    .optional()
                    .at(self.path())
            })
            .collect()
    }

    /// The highest local `seq` (0 for an empty shard): where a peer that has pulled
    /// everything stands.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn last_seq(&self) -> Result<i64> {
        let c = self.lock_conn();
        c.conn
            .query_row("SELECT ifnull(max(seq), 0) FROM records", [], |r| r.get(0))
            .at(self.path())
    }

    /// Checks one incoming change against this shard's rules, as the local write paths do.
    fn check_change(&self, ch: &Change) -> Result<()> {
        ch.check_fields()?;
        match (&ch.embedding, ch.deleted) {
            // `check_fields` checked the tombstone's shape.
            (_, true) => {}
            // Refused when it would win ([`resolve`]); a losing change only brings counters.
            (None, false) => {}
            (Some(e), false) => {
                self.check_embedding(e)?;
                // Finite by construction (`Embedding` is decoded with `from_blob`), but a
                // peer's vector is not normalized here: it must already be unit length, and
                // is stored bit for bit so that every peer holds the same bytes.
                let norm2: f64 = e.as_slice().iter().map(|&x| f64::from(x).powi(2)).sum();
                if (norm2 - 1.0).abs() > UNIT_NORM_SLACK {
                    return Err(Error::InvalidVector {
                        reason: format!("it is not unit length (squared norm {norm2})"),
                    });
                }
            }
        }
        Ok(())
    }
}

fn check_origin(what: &'static str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_ORIGIN_BYTES || s.chars().any(char::is_control) {
        return Err(Error::InvalidInput {
            what,
            reason: format!("{s:?} must be 1-{MAX_ORIGIN_BYTES} bytes without control characters"),
        });
    }
    Ok(())
}

/// Serde for `Option<Embedding>` as the little-endian f32 BLOB; decoding checks the length
/// and finiteness but not the dimensions or the norm ([`Shard::apply_changes`] does).
mod blob {
    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    use crate::Embedding;

    pub(super) fn serialize<S: Serializer>(e: &Option<Embedding>, s: S) -> Result<S::Ok, S::Error> {
        match e {
            Some(e) => s.serialize_some(&Bytes(&e.to_blob())),
            None => s.serialize_none(),
        }
    }

    struct Bytes<'a>(&'a [u8]);

    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Embedding>, D::Error> {
        d.deserialize_option(OptVisitor)
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Embedding>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an optional vector BLOB")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_bytes(BlobVisitor).map(Some)
        }
    }

    struct BlobVisitor;

    impl BlobVisitor {
        fn decode<E: de::Error>(b: &[u8]) -> Result<Embedding, E> {
            if b.is_empty() || !b.len().is_multiple_of(4) {
                return Err(E::custom(format_args!(
                    "a vector BLOB of {} bytes is not a non-empty multiple of 4",
                    b.len()
                )));
            }
            Embedding::from_blob(b, b.len() / 4)
                .ok_or_else(|| E::custom("the vector has a NaN or infinite component"))
        }
    }

    impl<'de> Visitor<'de> for BlobVisitor {
        type Value = Embedding;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a vector BLOB (little-endian f32 values)")
        }
        fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Embedding, E> {
            Self::decode(b)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Embedding, A::Error> {
            // Self-describing formats (JSON) write bytes as a sequence of numbers.
            let mut b = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(x) = seq.next_element::<u8>()? {
                b.push(x);
            }
            Self::decode(&b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Change {
        Change {
            id: RecordId::new(),
            kind: "memory".into(),
            namespace: String::new(),
            text: "retry with backoff".into(),
            metadata: r#"{"topic":"http"}"#.into(),
            embedding: None,
            created_at: 1,
            updated_at: 2,
            version: 3 << 16,
            origin: "peer-a".into(),
            deleted: false,
            seq: 0,
        }
    }

    /// `check_fields` is the shard-free half of `apply_changes`' checks: a live change still
    /// to be embedded passes, every rule that needs no shard is enforced.
    #[test]
    fn check_fields_needs_no_shard_and_no_vector() {
        live().check_fields().unwrap();
        let tomb = Change {
            text: String::new(),
            metadata: "{}".into(),
            deleted: true,
            ..live()
        };
        tomb.check_fields().unwrap();
        type Edit = fn(&mut Change);
        let cases: [(&str, Edit); 9] = [
            ("kind", |c| c.kind = "Not A Kind".into()),
            ("namespace", |c| c.namespace = "a\u{1}b".into()),
            ("text", |c| c.text = "x".repeat(crate::MAX_TEXT_BYTES + 1)),
            ("metadata", |c| c.metadata = "[1]".into()),
            ("version 0", |c| c.version = 0),
            ("version too big", |c| c.version = MAX_VERSION),
            ("origin", |c| c.origin = String::new()),
            ("tombstone with text", |c| c.deleted = true),
            ("tombstone with vector", |c| {
                *c = Change {
                    text: String::new(),
                    metadata: "{}".into(),
                    deleted: true,
                    embedding: Some(Embedding::new(vec![1.0, 0.0]).unwrap()),
                    ..live()
                }
            }),
        ];
        for (what, f) in cases {
            let mut c = live();
            f(&mut c);
            assert!(c.check_fields().is_err(), "{what}");
        }
    }

    #[test]
    fn check_content_is_the_write_paths_rules() {
        let meta = serde_json::json!({"k": 1});
        crate::check_content("pattern", "ns", "text", &meta).unwrap();
        assert!(crate::check_content("Pattern", "", "t", &meta).is_err());
        assert!(crate::check_content("memory", "a\u{7}", "t", &meta).is_err());
        assert!(crate::check_content("memory", "", "t", &serde_json::json!([1])).is_err());
        let big = "x".repeat(crate::MAX_TEXT_BYTES + 1);
        assert!(crate::check_content("memory", "", &big, &meta).is_err());
    }
}
