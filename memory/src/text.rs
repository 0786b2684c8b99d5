//! The in-memory BM25 index of a shard's live texts.
//!
//! Like the vector arena it is derived from the rows: it remembers up to which `seq` it has
//! read them and catches up from SQLite before each text search, so writes never touch it and
//! a second process's commits are seen. Ranking is Okapi BM25 with FTS5's constants and
//! formula (`k1 = 1.2`, `b = 0.75`, `idf = ln((N − n + ½) / (n + ½))`, floored at 1e-6), over
//! the terms of [`crate::tokenize`], so the order equals FTS5's `bm25()` on the same rows —
//! but scoring a query costs one pass over the postings of its terms instead of an FTS5
//! auxiliary-function call per matching row (hundreds of nanoseconds each).
//!
//! Documents are numbered densely; a deleted or replaced row leaves a dead document whose
//! postings are skipped and dropped by a compaction once they are as many as the live ones.

use rustc_hash::FxHashMap;

use crate::search::STOP_WORDS;
use crate::tokenize::{for_each_token, stem};

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Most distinct terms of a query that take part in ranking.
pub(crate) const MAX_QUERY_TERMS: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Posting {
    doc: u32,
    tf: u32,
}

#[derive(Debug)]
struct Doc {
    rowid: i64,
    /// Number of tokens (FTS5's column size), stop words included.
    len: u32,
    /// `(term, frequency)` of each distinct term, to undo the document's statistics when it
    /// dies and to rebuild postings at compaction. Empty once dead.
    terms: Box<[(u32, u32)]>,
    live: bool,
}

/// The terms of a query, resolved against one index.
#[derive(Debug)]
pub(crate) struct QueryTerms(Vec<Box<[u8]>>);

impl QueryTerms {
    /// The distinct terms of `text` that are not [stop words](STOP_WORDS), at most
    /// [`MAX_QUERY_TERMS`]; `None` if none is left.
    pub(crate) fn parse(text: &str) -> Option<QueryTerms> {
        let mut terms: Vec<Box<[u8]>> = Vec::new();
        let mut term = Vec::new();
        for_each_token(text, |folded| {
            if terms.len() >= MAX_QUERY_TERMS
                || std::str::from_utf8(folded).is_ok_and(|w| STOP_WORDS.contains(&w))
            {
                return;
            }
            stem(folded, &mut term);
            if !terms.iter().any(|t| **t == *term) {
                terms.push(term.as_slice().into());
            }
        });
        (!terms.is_empty()).then_some(QueryTerms(terms))
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct TextIndex {
    /// Every row with `seq <= applied_seq` is reflected.
    pub(crate) applied_seq: i64,
    term_ids: FxHashMap<Box<[u8]>, u32>,
    /// Term id of each folded token seen, so a repeated word is not stemmed again.
    token_ids: FxHashMap<Box<[u8]>, u32>,
    postings: Vec<Vec<Posting>>,
    /// Live documents containing each term.
    df: Vec<u32>,
    docs: Vec<Doc>,
    by_rowid: FxHashMap<i64, u32>,
    live_docs: u64,
    live_tokens: u64,
    dead_postings: usize,
    total_postings: usize,
}

impl TextIndex {
    /// Indexes `text` as the live text of `rowid`, replacing what it had.
    pub(crate) fn upsert(&mut self, rowid: i64, text: &str) {
        self.remove(rowid);
        // A shard holds far fewer than 2^32 rows (and this index compacts dead ones).
        let doc = u32::try_from(self.docs.len()).expect("fewer than 2^32 documents");
        let mut ids: Vec<u32> = Vec::new();
        let mut term = Vec::new();
        for_each_token(text, |token| {
            let id = match self.token_ids.get(token) {
                Some(&id) => id,
                None => {
                    stem(token, &mut term);
                    let id = match self.term_ids.get(term.as_slice()) {
                        Some(&id) => id,
                        None => {
                            // Distinct terms are bounded by the text indexed, far below 2^32.
                            let id = u32::try_from(self.postings.len()).expect("< 2^32 terms");
                            self.term_ids.insert(term.as_slice().into(), id);
                            self.postings.push(Vec::new());
                            self.df.push(0);
                            id
                        }
                    };
                    self.token_ids.insert(token.into(), id);
                    id
                }
            };
            ids.push(id);
        });
        let len = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        ids.sort_unstable();
        let mut terms: Vec<(u32, u32)> = Vec::new();
        for id in ids {
            match terms.last_mut() {
                Some((t, tf)) if *t == id => *tf += 1,
                _ => terms.push((id, 1)),
            }
        }
        for &(t, tf) in &terms {
            self.postings[t as usize].push(Posting { doc, tf });
            self.df[t as usize] += 1;
        }
        self.total_postings += terms.len();
        self.live_docs += 1;
        self.live_tokens += u64::from(len);
        self.docs.push(Doc {
            rowid,
            len,
            terms: terms.into_boxed_slice(),
            live: true,
        });
        self.by_rowid.insert(rowid, doc);
    }

    /// Forgets the text of `rowid` (deleted, or about to be replaced).
    pub(crate) fn remove(&mut self, rowid: i64) {
        let Some(doc) = self.by_rowid.remove(&rowid) else {
            return;
        };
        let d = &mut self.docs[doc as usize];
        d.live = false;
        for &(t, _) in d.terms.iter() {
            self.df[t as usize] -= 1;
        }
        self.dead_postings += d.terms.len();
        self.live_docs -= 1;
        self.live_tokens -= u64::from(d.len);
        d.terms = Box::new([]);
        if self.dead_postings > 4096 && self.dead_postings * 2 > self.total_postings {
            self.compact();
        }
    }

    /// Renumbers the live documents and rebuilds the postings without the dead ones.
    fn compact(&mut self) {
        let docs = std::mem::take(&mut self.docs);
        for p in &mut self.postings {
            p.clear();
        }
        self.by_rowid.clear();
        for d in docs.into_iter().filter(|d| d.live) {
            let doc = u32::try_from(self.docs.len()).expect("fewer live documents than before");
            for &(t, tf) in d.terms.iter() {
                self.postings[t as usize].push(Posting { doc, tf });
            }
            self.by_rowid.insert(d.rowid, doc);
            self.docs.push(d);
        }
        for p in &mut self.postings {
            p.shrink_to_fit();
        }
        self.total_postings -= self.dead_postings;
        self.dead_postings = 0;
    }

    /// Number of live documents.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.live_docs
    }

    /// The best `k` live rows by BM25 for `query`, as `(rowid, score)` best first (ties by
    /// rowid), restricted to `allowed` rowids if given. Rows sharing no term are not returned.
    pub(crate) fn top_k(
        &self,
        query: &QueryTerms,
        k: usize,
        allowed: Option<&[i64]>,
    ) -> Vec<(i64, f32)> {
        if self.live_docs == 0 || k == 0 {
            return Vec::new();
        }
        let n = self.live_docs as f64;
        let avgdl = self.live_tokens as f64 / n;
        let mask = allowed.map(|rows| {
            let mut m = vec![false; self.docs.len()];
            for r in rows {
                if let Some(&d) = self.by_rowid.get(r) {
                    m[d as usize] = true;
                }
            }
            m
        });
        let mut score = vec![0f64; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in &query.0 {
            let Some(&t) = self.term_ids.get(term) else {
                continue;
            };
            let df = f64::from(self.df[t as usize]);
            if df == 0.0 {
                continue;
            }
            let idf = ((n - df + 0.5) / (df + 0.5)).ln().max(1e-6);
            for p in &self.postings[t as usize] {
                let d = &self.docs[p.doc as usize];
                if !d.live || mask.as_ref().is_some_and(|m| !m[p.doc as usize]) {
                    continue;
                }
                let tf = f64::from(p.tf);
                let s = &mut score[p.doc as usize];
                if *s == 0.0 {
                    touched.push(p.doc);
                }
                *s += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * f64::from(d.len) / avgdl));
            }
        }
        let better = |a: &u32, b: &u32| {
            score[*b as usize].total_cmp(&score[*a as usize]).then(
                self.docs[*a as usize]
                    .rowid
                    .cmp(&self.docs[*b as usize].rowid),
            )
        };
        if touched.len() > k {
            touched.select_nth_unstable_by(k - 1, better);
            touched.truncate(k);
        }
        touched.sort_unstable_by(better);
        touched
            .into_iter()
            .map(|d| (self.docs[d as usize].rowid, score[d as usize] as f32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(t: &str) -> QueryTerms {
        QueryTerms::parse(t).unwrap()
    }

    #[test]
    fn ranks_rare_terms_and_skips_dead_rows() {
        let mut ix = TextIndex::default();
        ix.upsert(1, "retry the deploy with backoff");
        ix.upsert(2, "the deploy failed");
        ix.upsert(3, "cache the config");
        let hits = ix.top_k(&q("deploy backoff"), 10, None);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 2]);
        ix.remove(1);
        assert_eq!(ix.top_k(&q("backoff"), 10, None), []);
        ix.upsert(2, "now about caching");
        assert_eq!(ix.top_k(&q("deploy"), 10, None), []);
        assert_eq!(ix.top_k(&q("cached"), 10, None).len(), 2);
        assert_eq!(ix.top_k(&q("cache"), 10, Some(&[3])).len(), 1);
        assert_eq!(ix.len(), 2);
    }

    #[test]
    fn stop_words_and_duplicates_are_dropped() {
        assert!(QueryTerms::parse("the and of").is_none());
        assert_eq!(q("Deploys deploy the DEPLOY").0.len(), 1);
    }

    #[test]
    fn compaction_keeps_results() {
        let mut ix = TextIndex::default();
        for i in 0..20_000 {
            ix.upsert(i, &format!("note {i} about topic{}", i % 7));
        }
        for i in 0..15_000 {
            ix.remove(i);
        }
        assert!(ix.docs.len() < 20_000, "compacted");
        let hits = ix.top_k(&q("topic3"), 5, None);
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|h| h.0 >= 15_000 && h.0 % 7 == 3));
        assert_eq!(ix.len(), 5_000);
    }

    /// Real English (CPython docstrings) plus accented Latin words: our terms must be exactly
    /// the terms FTS5 stores for the same texts, and our BM25 ranking FTS5's `bm25()`.
    #[test]
    fn terms_and_ranking_equal_fts5() {
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../benches/data/texts.jsonl"
        ))
        .unwrap();
        let mut texts: Vec<String> = raw
            .lines()
            .flat_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let t = v["text"].as_str().unwrap().to_owned();
                t.split(". ").map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        texts.push("Café résumé naïve Über façade, CONNECTIONS hopping generalizations".into());
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE VIRTUAL TABLE fts USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
             CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, row);",
        )
        .unwrap();
        let mut ix = TextIndex::default();
        for (i, t) in texts.iter().enumerate() {
            let rowid = i as i64 + 1;
            db.execute("INSERT INTO fts (rowid, text) VALUES (?1, ?2)", (rowid, t))
                .unwrap();
            ix.upsert(rowid, t);
        }
        let fts_df: std::collections::BTreeMap<Vec<u8>, u32> = db
            .prepare("SELECT CAST(term AS BLOB), doc FROM vocab")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let ours: std::collections::BTreeMap<Vec<u8>, u32> = ix
            .term_ids
            .iter()
            .filter(|(_, t)| ix.df[**t as usize] > 0)
            .map(|(term, t)| (term.to_vec(), ix.df[*t as usize]))
            .collect();
        assert!(fts_df.len() > 1500, "a real vocabulary");
        let diff: Vec<_> = fts_df
            .iter()
            .filter(|(t, d)| ours.get(*t) != Some(d))
            .map(|(t, d)| {
                (
                    String::from_utf8_lossy(t).into_owned(),
                    *d,
                    ours.get(t).copied(),
                )
            })
            .chain(
                ours.iter()
                    .filter(|(t, _)| !fts_df.contains_key(*t))
                    .map(|(t, d)| (String::from_utf8_lossy(t).into_owned(), 0, Some(*d))),
            )
            .take(20)
            .collect();
        assert!(diff.is_empty(), "(term, fts df, our df): {diff:?}");

        let mut rng = 7u64;
        for _ in 0..200 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let t = &texts[(rng >> 33) as usize % texts.len()];
            let words: Vec<&str> = t.split_whitespace().take(4).collect();
            let text = words.join(" ");
            let Some(query) = QueryTerms::parse(&text) else {
                continue;
            };
            // FTS5 stems the words of a MATCH itself: give it one unstemmed word per term.
            let mut seen: Vec<Vec<u8>> = Vec::new();
            let mut quoted: Vec<String> = Vec::new();
            let mut term = Vec::new();
            for_each_token(&text, |folded| {
                stem(folded, &mut term);
                if query.0.contains(&term.as_slice().into()) && !seen.contains(&term) {
                    seen.push(term.clone());
                    quoted.push(format!("\"{}\"", String::from_utf8_lossy(folded)));
                }
            });
            let mut stmt = db
                .prepare_cached(
                    "SELECT rowid, -bm25(fts) FROM fts WHERE fts MATCH ?1 ORDER BY bm25(fts), rowid",
                )
                .unwrap();
            let theirs: Vec<(i64, f64)> = stmt
                .query_map([quoted.join(" OR ")], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let by_row: std::collections::HashMap<i64, f64> = theirs.iter().copied().collect();
            let k = 10;
            let hits = ix.top_k(&query, k, None);
            assert_eq!(hits.len(), theirs.len().min(k), "{text:?}");
            for (i, (rowid, score)) in hits.iter().enumerate() {
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
                assert!(close(f64::from(*score), theirs[i].1), "{text:?} rank {i}");
                assert!(
                    close(f64::from(*score), by_row[rowid]),
                    "{text:?} row {rowid}"
                );
            }
        }
    }
}
