//! Reads: records by id, filtered scans and counts, and search (candidate rankings of the
//! vector and text sides, fusion, and the hits read back from the rows), with the text index
//! caught up lazily before each text or hybrid search.

use std::collections::HashMap;
use std::sync::RwLockReadGuard;

use rusqlite::types::Value as SqlValue;

use super::{Conn, RECORD_COLUMNS, Shard};
#[cfg(doc)]
use crate::SearchMode;
use crate::arena::Scored;
use crate::error::SqliteContext;
use crate::search::{Candidate, Rankings, VectorSearch, fuse};
use crate::text::{QueryTerms, TextIndex};
use crate::{Embedding, Error, Filter, Query, Record, RecordId, Result, SearchHit, SearchOptions};

impl Shard {
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
            .at(&self.path)?;
        let mut rows = stmt.query([id]).at(&self.path)?;
        match rows.next().at(&self.path)? {
            Some(row) => self.decoder().record(row, true).map(Some),
            None => Ok(None),
        }
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
        let mut stmt = c.conn.prepare_cached(&sql).at(&self.path)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .at(&self.path)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().at(&self.path)? {
            out.push(self.decoder().record(row, true)?);
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
            .at(&self.path)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Searches the shard: cosine top-k for a vector query (exact, by an i8 or sign-bit scan,
    /// or through the HNSW graph, as [`SearchOptions::mode`] says; see [`SearchMode`] for what
    /// `Auto` picks), BM25 for a text query,
    /// both fused as [`SearchOptions::fusion`] says for a hybrid query. A filter is applied before top-k,
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
    ///
    /// A filter is first tried *after* ranking: both sides rank [`POST_FILTER_FACTOR`] times
    /// as many rows as needed without it, one indexed statement keeps those that match, and
    /// when enough match (or a side ran out of rows) the result is exactly the filtered
    /// ranking — same rows, same ranks, same scores — without reading every row's metadata.
    /// Only a filter too selective for that falls back to selecting the matching rows first.
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
        self.refresh(&mut self.lock_conn())?;
        let hybrid = query.vector.is_some() && terms.is_some();
        let want = if hybrid {
            opts.candidate_count()
        } else {
            opts.k
        };
        let side = |allowed: Option<&[i64]>, n: usize| -> Result<Sides> {
            let vector = match &query.vector {
                Some(v) => self.vector_top(&VectorSearch {
                    query: v.as_slice(),
                    k: n,
                    threshold: opts.threshold.unwrap_or(f32::NEG_INFINITY),
                    allowed,
                    mode: opts.mode,
                    beam: opts.beam,
                    rescore: opts.rescore_for(opts.mode),
                })?,
                None => Vec::new(),
            };
            let text = match &terms {
                Some(q) => self.text_index()?.top_k(q, n, allowed),
                None => Vec::new(),
            };
            Ok(Sides { vector, text })
        };
        let sides = match &opts.filter {
            None => side(None, want)?,
            Some(filter) => {
                let wide = want.saturating_mul(POST_FILTER_FACTOR);
                let post = if prefilter_only() {
                    None
                } else {
                    self.post_filter(side(None, wide)?, filter, want, wide)?
                };
                match post {
                    Some(sides) => sides,
                    None => {
                        #[cfg(test)]
                        testing::PREFILTERED.with(|n| n.set(n.get() + 1));
                        let allowed = self.filter_rows(&self.lock_conn(), filter)?;
                        side(Some(&allowed), want)?
                    }
                }
            }
        };
        Ok(self.assemble(query, sides, opts, hybrid))
    }

    /// Keeps the rows of `wide` unfiltered rankings that match `filter`, cut to `want` per
    /// side; `None` when a side was cut at `wide` and fewer than `want` of its rows match,
    /// since rows past the cut could then belong to the filtered ranking.
    fn post_filter(
        &self,
        sides: Sides,
        filter: &Filter,
        want: usize,
        wide: usize,
    ) -> Result<Option<Sides>> {
        let rowids: std::collections::BTreeSet<i64> = sides
            .vector
            .iter()
            .map(|s| s.rowid)
            .chain(sides.text.iter().map(|t| t.0))
            .collect();
        let matching = self.matching_rows(filter, rowids)?;
        let keep = |full: bool, kept: usize| !full || kept >= want;
        let vector_full = sides.vector.len() >= wide;
        let text_full = sides.text.len() >= wide;
        let mut vector: Vec<Scored> = sides
            .vector
            .into_iter()
            .filter(|s| matching.contains(&s.rowid))
            .collect();
        let mut text: Vec<(i64, f32)> = sides
            .text
            .into_iter()
            .filter(|t| matching.contains(&t.0))
            .collect();
        if !keep(vector_full, vector.len()) || !keep(text_full, text.len()) {
            return Ok(None);
        }
        vector.truncate(want);
        text.truncate(want);
        Ok(Some(Sides { vector, text }))
    }

    /// The rows among `rowids` that are live and match `filter`.
    pub(super) fn matching_rows(
        &self,
        filter: &Filter,
        rowids: std::collections::BTreeSet<i64>,
    ) -> Result<std::collections::HashSet<i64>> {
        if rowids.is_empty() {
            return Ok(Default::default());
        }
        let (fsql, mut params) = filter_sql(Some(filter))?;
        params.push(super::rowid_list(rowids));
        // The filter's anonymous parameters come first in the text, as in `params`.
        let sql = format!(
            "SELECT rowid FROM records WHERE deleted = 0 AND ({fsql}) AND {}",
            super::ROWID_IN_LIST
        );
        let c = self.lock_conn();
        let mut stmt = c.conn.prepare_cached(&sql).at(&self.path)?;
        stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
            .at(&self.path)?
            .collect::<rusqlite::Result<_>>()
            .at(&self.path)
    }

    /// Turns the ranked rows of both sides into candidates: text rows get their similarity
    /// to the query vector (hybrid), and those below the threshold are left out.
    fn assemble(
        &self,
        query: &Query,
        sides: Sides,
        opts: &SearchOptions,
        hybrid: bool,
    ) -> Rankings {
        let threshold = opts.threshold.unwrap_or(f32::NEG_INFINITY);
        let vector = sides
            .vector
            .into_iter()
            .map(|s| Candidate {
                hit: s,
                similarity: Some(s.score),
                bm25: None,
            })
            .collect();
        let mut text = Vec::new();
        if !sides.text.is_empty() {
            let arena = self.read_arena();
            let qv = query.vector.as_ref().map(Embedding::as_slice);
            for (rowid, bm25) in sides.text {
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
        Rankings {
            vector,
            text,
            hybrid,
        }
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
    pub(super) fn fetch_records(
        &self,
        rowids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, Record>> {
        let mut rowids = rowids.peekable();
        if rowids.peek().is_none() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, rowid FROM records WHERE deleted = 0 AND {}",
            super::ROWID_IN_LIST
        );
        let c = self.lock_conn();
        let mut stmt = c.conn.prepare_cached(&sql).at(&self.path)?;
        let mut rows = stmt.query([super::rowid_list(rowids)]).at(&self.path)?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next().at(&self.path)? {
            let rowid: i64 = row.get(10).at(&self.path)?;
            out.insert(rowid, self.decoder().record(row, false)?);
        }
        Ok(out)
    }

    /// Rowids of the live rows matching `filter`, ascending.
    fn filter_rows(&self, c: &Conn, filter: &Filter) -> Result<Vec<i64>> {
        let (fsql, params) = filter_sql(Some(filter))?;
        let sql = format!("SELECT rowid FROM records WHERE deleted = 0 AND {fsql} ORDER BY rowid");
        let mut stmt = c.conn.prepare_cached(&sql).at(&self.path)?;
        stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
            .at(&self.path)?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .at(&self.path)
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
                        .at(&self.path)?;
                    stmt.query_map([ix.applied_seq], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .at(&self.path)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .at(&self.path)?
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
}

/// How many times more rows than needed a filtered search ranks before it applies the
/// filter to them (see [`Shard::rankings`]): enough for filters that keep a quarter of the
/// rows or more, such as recall's default exclusion of experiences and merged items.
const POST_FILTER_FACTOR: usize = 4;

/// Whether filtered searches skip the post-filter attempt: never outside tests, where the
/// selecting-first path is the reference the post-filter path is compared with.
fn prefilter_only() -> bool {
    #[cfg(test)]
    return testing::PREFILTER_ONLY.with(std::cell::Cell::get);
    #[cfg(not(test))]
    false
}

/// The ranked rows of one shard before they become candidates: by cosine and by BM25
/// (`(rowid, score)`), each best first.
struct Sides {
    vector: Vec<Scored>,
    text: Vec<(i64, f32)>,
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

/// Test hooks of the filtered search (this thread's searches only).
#[cfg(test)]
pub(crate) mod testing {
    use std::cell::Cell;

    thread_local! {
        /// Filtered searches select the matching rows first, as before post-filtering.
        pub(crate) static PREFILTER_ONLY: Cell<bool> = const { Cell::new(false) };
        /// Filtered searches that selected the matching rows first.
        pub(crate) static PREFILTERED: Cell<usize> = const { Cell::new(0) };
    }
}
