//! Search requests and results: vector, full-text (BM25) and hybrid (cosine plus a normalised
//! BM25 bonus by default, or reciprocal-rank fusion).

use serde::Serialize;

use crate::arena::Scored;
use crate::{Embedding, Error, Filter, Record, RecordId, Result, ShardId};

/// What to search for. A vector alone ranks by cosine similarity, text alone by BM25, and
/// both by fusing the two rankings as [`SearchOptions::fusion`] says.
#[derive(Clone, Debug)]
pub struct Query {
    pub(crate) vector: Option<Embedding>,
    pub(crate) text: Option<String>,
}

impl Query {
    /// Rank by cosine similarity to `v`.
    pub fn vector(v: Embedding) -> Self {
        Query {
            vector: Some(v),
            text: None,
        }
    }
    /// Rank by BM25 over the records' text.
    pub fn text(t: impl Into<String>) -> Self {
        Query {
            vector: None,
            text: Some(t.into()),
        }
    }
    /// Fuse both rankings.
    pub fn hybrid(v: Embedding, t: impl Into<String>) -> Self {
        Query {
            vector: Some(v),
            text: Some(t.into()),
        }
    }
    /// The query vector, if any.
    pub fn embedding(&self) -> Option<&Embedding> {
        self.vector.as_ref()
    }
}

/// Rows a [`SearchMode::Auto`] search must scan (the shard's, or those a filter leaves) before
/// it uses the quantized scan instead of the exact one, when no graph answers. Below it the
/// exact scan is fast enough (under 0.8 ms for 50K 384-d rows here); above it the i8 pass
/// saves about 40% (0.85–0.94 ms against 1.45–1.55 ms at 100K) with recall@10 of 1.0 measured
/// on real text embeddings and clustered synthetic vectors.
pub const AUTO_QUANTIZED_ROWS: usize = 50_000;

/// Rows the i8 pass of [`SearchMode::Quantized`] hands to f32 rescoring unless
/// [`SearchOptions::rescore`] says otherwise.
pub const QUANTIZED_RESCORE: usize = 100;

/// Rows the sign-bit pass of [`SearchMode::Binary`] hands to f32 rescoring unless
/// [`SearchOptions::rescore`] says otherwise: this many, or [`BINARY_RESCORE_PER_HIT`] per
/// requested hit if that is more.
///
/// Measured on 43K real all-MiniLM-L6-v2 sentence embeddings (1,000 held-out queries),
/// recall@10 of the sign-bit pass rescored with f32 is 0.97 at 100 candidates, 0.99 at 200,
/// 0.997 at 400 and 0.999 at 800, where the i8 pass reaches 1.0 with 20. 400 keeps recall
/// near the i8 mode's while the search stays 1.6–1.9 times as fast as the i8 mode with its
/// default 100 candidates (p50 0.17–0.20 ms against 0.32 ms on 2 cores; 800 candidates
/// cost 0.23–0.25 ms).
pub const BINARY_RESCORE: usize = 400;

/// Rows the sign-bit pass hands to f32 rescoring per requested hit, when `k` is large enough
/// that this exceeds [`BINARY_RESCORE`] (from k = 26). The candidates needed for a given
/// recall grow with k: on the embeddings above, recall@50 is 0.97 with 400 candidates and
/// 0.99 with 800, recall@100 0.91 with 400 and 0.99 with 1,600. By k = 100 the binary mode
/// is no faster than the i8 one (0.46 ms against 0.47 ms).
pub const BINARY_RESCORE_PER_HIT: usize = 16;

/// How a vector query is ranked.
///
/// | mode | how | results |
/// |---|---|---|
/// | `Exact` | f16 pass with error bounds + f32 rescoring over the arena | identical to a brute-force f32 scan |
/// | `Quantized` | calibrated i8 pass, f32 rescoring of the best [`rescore`](SearchOptions::rescore) rows (default 100) | exact scores; rows approximate (recall@10 ≈ 0.99+) |
/// | `Binary` | sign-bit pass (Hamming distance, 48 bytes per 384-d row), f32 rescoring of the best [`rescore`](SearchOptions::rescore) rows (default `max(`[`BINARY_RESCORE`]`, `[`BINARY_RESCORE_PER_HIT`]` · k)`) | exact scores; rows approximate (recall@10 ≈ 0.997 on real text embeddings, far lower on near-uniform vectors: see [`SearchMode::Binary`]) |
/// | `Ann` | HNSW graph (beam [`beam`](SearchOptions::beam)) + exact scan of rows not yet in it, f32 rescoring | exact scores; rows approximate |
/// | `Auto` | `Ann` when the shard has at least [`index_threshold`](crate::ShardOptions::index_threshold) live rows (or matching rows, with a filter) and its graph is ready; otherwise `Quantized` when at least [`AUTO_QUANTIZED_ROWS`] rows are scanned, else `Exact` | |
///
/// Every mode returns only live rows, applies the filter before top-k, and returns `k` hits
/// whenever `k` matching rows reach the threshold... except that the approximate modes may
/// miss a row that scores just above the threshold. A filter that leaves fewer rows than the
/// index threshold is always searched exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SearchMode {
    /// Exact top-k (see the table above).
    Exact,
    /// i8 scan rescored with f32.
    Quantized,
    /// Sign-bit (1-bit) scan by Hamming distance, rescored with f32. Its first pass reads
    /// an eighth of the bytes of the i8 scan but ranks more coarsely, so it rescores more
    /// rows: `max(`[`BINARY_RESCORE`]`, `[`BINARY_RESCORE_PER_HIT`]` · k)` unless
    /// [`SearchOptions::rescore`] is set. How many candidates it needs depends on the data
    /// far more than for the i8 scan: text embeddings with clear neighbours reach recall@10
    /// 0.997 at the default, but on a near-uniform set (99K vectors whose nearest neighbours
    /// barely stand out) it is 0.68 at 400 candidates and 0.89 at 1,600, where the i8 scan
    /// stays at 1.0. Never picked by `Auto`: measure on your own vectors first.
    Binary,
    /// HNSW graph plus flat segment, rescored with f32. Answers exactly while the shard has
    /// no graph yet (below the index threshold, or still building); an index failure is
    /// [`Error::Index`].
    Ann,
    /// Picks by shard size and filter (the default).
    #[default]
    Auto,
}

impl std::str::FromStr for SearchMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(SearchMode::Exact),
            "quantized" => Ok(SearchMode::Quantized),
            "binary" => Ok(SearchMode::Binary),
            "ann" => Ok(SearchMode::Ann),
            "auto" => Ok(SearchMode::Auto),
            _ => Err(Error::InvalidOption {
                reason: format!(
                    "search mode must be exact, quantized, binary, ann or auto, got {s:?}"
                ),
            }),
        }
    }
}

/// Default [`Fusion::Score`] bonus: the most BM25 can add to a hybrid candidate's cosine.
///
/// Chosen on the dev half of `reasonbank-bench quality` (numpy, pandas and scipy docstrings;
/// chitchat conversations; all-MiniLM-L6-v2): 0.2–0.3 beat reciprocal-rank fusion on both
/// datasets; 0.3 was best on the conversations, where BM25 alone is weaker than cosine, and
/// within 0.01 MRR of 0.2 on the documents. Larger bonuses let a weak word match outvote
/// meaning; smaller ones waste the matches that matter (names, dates, rare words).
pub const TEXT_BONUS: f32 = 0.3;

/// How a hybrid query combines its cosine and BM25 rankings.
///
/// Both work on the candidates of every searched shard together (see
/// [`SearchOptions::candidates`]), so a cross-shard search ranks exactly as one shard holding
/// the same candidates would.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "fusion")]
#[non_exhaustive]
pub enum Fusion {
    /// `vector_weight · cosine + text_weight · bonus · (bm25 − min) / (max − min)`, where min
    /// and max are the lowest and highest BM25 of the text candidates and a candidate that is
    /// not among them adds nothing (the default, with `bonus` = [`TEXT_BONUS`]).
    ///
    /// The cosine is kept as it is because it means the same from query to query; BM25 is
    /// not (its scale depends on the query's words and the corpus), so only its place
    /// between the best and the last text candidate counts, and a word match can lift a hit
    /// by at most `bonus`. Unlike reciprocal-rank fusion this never throws the cosine's
    /// margins away: a clear semantic winner stays ahead of a document that merely shares
    /// a word, while a strong word match (a name, a date) still moves a near-tie.
    Score {
        /// The largest BM25 contribution, at `text_weight` 1. Finite and >= 0.
        bonus: f32,
    },
    /// Reciprocal-rank fusion `Σ w / (c + rank)` with [`SearchOptions::rrf_k`] as `c` and the
    /// two weights as `w` (Cormack et al., 2009): ranks only, scores ignored.
    Rrf,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Score { bonus: TEXT_BONUS }
    }
}

/// Options of one search.
///
/// ```
/// use reasonbank_memory::{Filter, SearchOptions};
/// let mut o = SearchOptions::new(5);
/// o.threshold(0.3).filter(Filter::Kind("pattern".into()));
/// ```
#[derive(Clone, Debug)]
pub struct SearchOptions {
    pub(crate) k: usize,
    pub(crate) threshold: Option<f32>,
    pub(crate) filter: Option<Filter>,
    pub(crate) fusion: Fusion,
    pub(crate) rrf_k: f32,
    pub(crate) vector_weight: f32,
    pub(crate) text_weight: f32,
    pub(crate) candidates: Option<usize>,
    pub(crate) mode: SearchMode,
    pub(crate) beam: usize,
    pub(crate) rescore: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions::new(10)
    }
}

/// Largest accepted `k`.
pub const MAX_K: usize = 10_000;

impl SearchOptions {
    /// Options returning the best `k` hits, with the defaults below.
    pub fn new(k: usize) -> Self {
        SearchOptions {
            k,
            threshold: None,
            filter: None,
            fusion: Fusion::default(),
            rrf_k: 60.0,
            vector_weight: 1.0,
            text_weight: 1.0,
            candidates: None,
            mode: SearchMode::Auto,
            beam: 64,
            rescore: None,
        }
    }
    /// Number of hits to return, 1..=10,000. Defaults to 10.
    pub fn k(&mut self, k: usize) -> &mut Self {
        self.k = k;
        self
    }
    /// Minimum cosine similarity in [-1, 1] a hit must reach (vector and hybrid queries).
    /// Defaults to none.
    pub fn threshold(&mut self, t: f32) -> &mut Self {
        self.threshold = Some(t);
        self
    }
    /// Only rows matching `f` are ranked (applied before top-k). Defaults to none.
    pub fn filter(&mut self, f: Filter) -> &mut Self {
        self.filter = Some(f);
        self
    }
    /// How hybrid queries combine the two rankings. Defaults to [`Fusion::Score`] with a
    /// bonus of [`TEXT_BONUS`] (0.3).
    pub fn fusion(&mut self, f: Fusion) -> &mut Self {
        self.fusion = f;
        self
    }
    /// The constant `c` of reciprocal-rank fusion ([`Fusion::Rrf`]), `score = Σ w / (c +
    /// rank)`. Larger values flatten the influence of top ranks. Defaults to 60 (Cormack et
    /// al., 2009).
    pub fn rrf_k(&mut self, c: f32) -> &mut Self {
        self.rrf_k = c;
        self
    }
    /// Weight of the vector ranking in hybrid fusion (of the cosine in [`Fusion::Score`]).
    /// Defaults to 1.0.
    pub fn vector_weight(&mut self, w: f32) -> &mut Self {
        self.vector_weight = w;
        self
    }
    /// Weight of the BM25 ranking in hybrid fusion (a factor on the bonus in
    /// [`Fusion::Score`]; 0 ranks by cosine alone). Defaults to 1.0.
    pub fn text_weight(&mut self, w: f32) -> &mut Self {
        self.text_weight = w;
        self
    }
    /// How many candidates each ranking contributes to hybrid fusion.
    /// Defaults to `max(4 * k, 40)`.
    pub fn candidates(&mut self, n: usize) -> &mut Self {
        self.candidates = Some(n);
        self
    }

    /// How vector queries are ranked. Defaults to [`SearchMode::Auto`].
    pub fn mode(&mut self, m: SearchMode) -> &mut Self {
        self.mode = m;
        self
    }
    /// Candidates asked of the HNSW graph (its beam width `ef`); all of them are rescored
    /// with f32. Higher is slower with better recall: on 100K clustered 384-d vectors, 64
    /// gives recall@10 ≈ 0.98. Defaults to 64 (at least `k` is used).
    pub fn beam(&mut self, n: usize) -> &mut Self {
        self.beam = n.clamp(1, MAX_K);
        self
    }
    /// Rows the first pass of the quantized and binary modes hands to f32 rescoring (the
    /// best by its estimate, however the scan is split over threads). Defaults to
    /// [`QUANTIZED_RESCORE`] (100) for [`SearchMode::Quantized`] and to
    /// `max(`[`BINARY_RESCORE`]` (400), `[`BINARY_RESCORE_PER_HIT`]` (16) · k)` for
    /// [`SearchMode::Binary`], whose 1-bit estimate needs more candidates for the same
    /// recall; at least `k` is used.
    pub fn rescore(&mut self, n: usize) -> &mut Self {
        self.rescore = Some(n.clamp(1, 100 * MAX_K));
        self
    }

    /// The rescored rows of `mode`'s first pass: the caller's, or the mode's default.
    pub(crate) fn rescore_for(&self, mode: SearchMode) -> usize {
        self.rescore.unwrap_or(match mode {
            SearchMode::Binary => BINARY_RESCORE.max(BINARY_RESCORE_PER_HIT * self.k),
            _ => QUANTIZED_RESCORE,
        })
    }

    pub(crate) fn candidate_count(&self) -> usize {
        self.candidates.unwrap_or((4 * self.k).max(40)).max(self.k)
    }

    pub(crate) fn validate(&self, query: &Query) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidOption { reason });
        if self.k == 0 || self.k > MAX_K {
            return bad(format!("k must be in 1..={MAX_K}, got {}", self.k));
        }
        if let Some(t) = self.threshold {
            if !(-1.0..=1.0).contains(&t) {
                return bad(format!("threshold must be in [-1, 1], got {t}"));
            }
            if query.vector.is_none() {
                return bad("threshold is a cosine similarity and needs a query vector".into());
            }
        }
        let bonus = match self.fusion {
            Fusion::Score { bonus } => bonus,
            Fusion::Rrf => 0.0,
        };
        for (name, w) in [
            ("fusion bonus", bonus),
            ("rrf_k", self.rrf_k),
            ("vector_weight", self.vector_weight),
            ("text_weight", self.text_weight),
        ] {
            if !w.is_finite() || w < 0.0 {
                return bad(format!("{name} must be finite and >= 0, got {w}"));
            }
        }
        if query.vector.is_none() && query.text.is_none() {
            return bad("a query needs a vector, a text or both".into());
        }
        if let Some(f) = &self.filter {
            f.validate()?;
        }
        Ok(())
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SearchHit {
    /// The record's id.
    pub id: RecordId,
    /// The ranking score: the cosine similarity for vector queries, BM25 (higher is better)
    /// for text queries, the fused score for hybrid queries (see [`Fusion`]).
    pub score: f32,
    /// Cosine similarity to the query vector, when there was one.
    pub similarity: Option<f32>,
    /// BM25 relevance (higher is better), when the record matched the query text.
    pub bm25: Option<f32>,
    /// The shard the hit came from, in cross-shard searches.
    pub shard: Option<ShardId>,
    /// The record, without its embedding.
    pub record: Record,
}

/// One vector search as the scans and the graph take it: what a shard derives from a query
/// and its [`SearchOptions`] before ranking by cosine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VectorSearch<'a> {
    /// The query vector (unit length, the shard's dimensions).
    pub query: &'a [f32],
    /// Hits wanted.
    pub k: usize,
    /// Lowest score returned (`-inf` for none).
    pub threshold: f32,
    /// Rowids a filter admits, ascending; `None` admits every row.
    pub allowed: Option<&'a [i64]>,
    /// How to search.
    pub mode: SearchMode,
    /// Candidates asked of the graph (its beam width).
    pub beam: usize,
    /// Rows an i8 or sign-bit first pass hands to the exact rescoring.
    pub rescore: usize,
}

impl VectorSearch<'_> {
    /// Whether the filter (if any) admits `rowid`.
    pub fn admits(&self, rowid: i64) -> bool {
        self.allowed.is_none_or(|s| s.binary_search(&rowid).is_ok())
    }
}

/// One candidate of one shard: its row, its ranking score and record key, and what is known
/// of its similarity and BM25.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub hit: Scored,
    pub similarity: Option<f32>,
    pub bm25: Option<f32>,
}

/// A shard's candidates for a query: by cosine (best first) and by BM25 (best first).
#[derive(Debug, Default)]
pub(crate) struct Rankings {
    pub vector: Vec<Candidate>,
    pub text: Vec<Candidate>,
    pub hybrid: bool,
}

/// Merges the rankings of one or more shards into the final top-k, best first; each pick
/// names the index of the ranking (shard) it came from.
///
/// Plain vector and text queries merge by score (cosine, or BM25). Hybrid queries gather every
/// shard's vector candidates *together* and every shard's text candidates together, then fuse
/// the two global lists as [`SearchOptions::fusion`] says: [`Fusion::Score`] normalises BM25
/// over the global text list, [`Fusion::Rrf`] ranks each global list, `Σ w / (c + rank)`.
/// Fusing per shard and merging the fused scores would make each shard's best hit look alike
/// (`1 / (c + 1)` for RRF, a full bonus for the score fusion) regardless of how good it is.
/// Ties break on record id.
pub(crate) fn fuse(rankings: &[Rankings], opts: &SearchOptions) -> Vec<(usize, Candidate)> {
    let hybrid = rankings.iter().any(|r| r.hybrid);
    let mut picks: Vec<(usize, Candidate)> = if !hybrid {
        rankings
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.vector.iter().chain(&r.text).map(move |c| (i, *c)))
            .collect()
    } else {
        let global = |text: bool| -> Vec<(usize, Candidate)> {
            let mut all: Vec<(usize, Candidate)> = rankings
                .iter()
                .enumerate()
                .flat_map(|(i, r)| {
                    let l = if text { &r.text } else { &r.vector };
                    l.iter().map(move |c| (i, *c))
                })
                .collect();
            all.sort_unstable_by_key(|(_, c)| c.hit);
            all
        };
        let (vector, text) = (global(false), global(true));
        type Fused = std::collections::HashMap<(usize, i64), Candidate>;
        let mut fused = Fused::default();
        // Adds `add` to the fused score of shard `i`'s candidate `c`.
        let merge = |fused: &mut Fused, i: usize, c: &Candidate, add: f32| {
            let e = fused.entry((i, c.hit.rowid)).or_insert(Candidate {
                hit: Scored {
                    score: 0.0,
                    ..c.hit
                },
                similarity: None,
                bm25: None,
            });
            e.hit.score += add;
            e.similarity = e.similarity.or(c.similarity);
            e.bm25 = e.bm25.or(c.bm25);
        };
        match opts.fusion {
            Fusion::Rrf => {
                for (list, weight) in [(&vector, opts.vector_weight), (&text, opts.text_weight)] {
                    for (rank, (i, c)) in list.iter().enumerate() {
                        merge(&mut fused, *i, c, weight / (opts.rrf_k + rank as f32 + 1.0));
                    }
                }
            }
            Fusion::Score { bonus } => {
                let bm25 = |c: &Candidate| c.bm25.unwrap_or(0.0);
                // Sorted best first, so the first and last text candidates bound BM25.
                let (max, min) = match (text.first(), text.last()) {
                    (Some(f), Some(l)) => (bm25(&f.1), bm25(&l.1)),
                    _ => (0.0, 0.0),
                };
                let text_bonus = |c: &Candidate| {
                    let share = if max > min {
                        (bm25(c) - min) / (max - min)
                    } else {
                        // One text candidate, or all equal: each is the best match.
                        1.0
                    };
                    opts.text_weight * bonus * share
                };
                // A text candidate carries its cosine when the query has a vector, which a
                // hybrid query has; the vector list holds each row once, so every fused
                // candidate gets its cosine once, from whichever list has it first.
                for (i, c) in &vector {
                    merge(
                        &mut fused,
                        *i,
                        c,
                        opts.vector_weight * c.similarity.unwrap_or(-1.0),
                    );
                }
                for (i, c) in &text {
                    let cosine = if fused.contains_key(&(*i, c.hit.rowid)) {
                        0.0
                    } else {
                        opts.vector_weight * c.similarity.unwrap_or(-1.0)
                    };
                    merge(&mut fused, *i, c, cosine + text_bonus(c));
                }
            }
        }
        fused.into_iter().map(|((i, _), c)| (i, c)).collect()
    };
    picks.sort_unstable_by_key(|(_, c)| c.hit);
    picks.truncate(opts.k);
    picks
}

/// English function words left out of full-text queries. Agents ask in sentences ("how do I
/// retry the call?"); without this list, BM25 ranks records by shared words such as "the" and
/// "how", and that noise outvotes the vector ranking in hybrid fusion. Stored text is indexed
/// in full; only the query drops these words.
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same",
    "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mode parses from the name it serializes to, and an unknown name lists them all.
    #[test]
    fn modes_parse_from_their_serialized_names() {
        for mode in [
            SearchMode::Exact,
            SearchMode::Quantized,
            SearchMode::Binary,
            SearchMode::Ann,
            SearchMode::Auto,
        ] {
            let name = serde_json::to_value(mode).unwrap();
            let name = name.as_str().unwrap();
            assert_eq!(name.parse::<SearchMode>().unwrap(), mode);
            let err = "bogus".parse::<SearchMode>().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    /// A candidate of row `rowid` (record key `rowid` too) with a cosine and, if it matched
    /// the text, a BM25; its ranking score is the one of the list it is put in.
    fn cand(rowid: i64, cos: f32, bm25: Option<f32>, by_text: bool) -> Candidate {
        Candidate {
            hit: Scored {
                score: if by_text { bm25.unwrap() } else { cos },
                key: rowid as u128,
                rowid,
            },
            similarity: Some(cos),
            bm25,
        }
    }

    /// One shard's hybrid rankings from (rowid, cosine, bm25) triples: every triple is a
    /// vector candidate, and those with a BM25 are text candidates too, each list best first.
    fn rankings(rows: &[(i64, f32, Option<f32>)], vector: &[i64]) -> Rankings {
        let mut r = Rankings {
            hybrid: true,
            ..Rankings::default()
        };
        for &(rowid, cos, bm25) in rows {
            if vector.contains(&rowid) {
                r.vector.push(cand(rowid, cos, bm25, false));
            }
            if bm25.is_some() {
                r.text.push(cand(rowid, cos, bm25, true));
            }
        }
        r.vector.sort_unstable_by_key(|c| c.hit);
        r.text.sort_unstable_by_key(|c| c.hit);
        r
    }

    fn order(picks: &[(usize, Candidate)]) -> Vec<i64> {
        picks.iter().map(|(_, c)| c.hit.rowid).collect()
    }

    /// The score fusion keeps a clear semantic winner ahead of a record that only shares a
    /// word, where RRF hands the top to the record that is second by meaning but first by
    /// words (the conversational-memory failure of issue #16).
    #[test]
    fn score_fusion_keeps_a_clear_semantic_winner_ahead_of_a_word_match() {
        let rows = [(1, 0.9, None), (2, 0.5, Some(10.0)), (3, 0.3, Some(2.0))];
        let r = rankings(&rows, &[1, 2]);
        let o = SearchOptions::new(3);
        let picks = fuse(std::slice::from_ref(&r), &o);
        assert_eq!(order(&picks), [1, 2, 3]);
        // cosine + 0.3 · (bm25 − min) / (max − min); the last text candidate gets no bonus.
        let scores: Vec<f32> = picks.iter().map(|(_, c)| c.hit.score).collect();
        assert!((scores[0] - 0.9).abs() < 1e-6 && (scores[1] - 0.8).abs() < 1e-6);
        assert!((scores[2] - 0.3).abs() < 1e-6);
        assert_eq!(picks[1].1.bm25, Some(10.0));
        assert_eq!(picks[0].1.bm25, None);
        let mut rrf = SearchOptions::new(3);
        rrf.fusion(Fusion::Rrf);
        assert_eq!(order(&fuse(std::slice::from_ref(&r), &rrf)), [2, 1, 3]);
    }

    /// A strong word match (a name, a date) still decides between near-equal meanings, and
    /// the text weight scales the bonus down to pure cosine order.
    #[test]
    fn score_fusion_lets_a_word_match_break_a_near_tie() {
        let rows = [(1, 0.61, None), (2, 0.58, Some(7.0)), (3, 0.2, Some(1.0))];
        let r = rankings(&rows, &[1, 2]);
        assert_eq!(
            order(&fuse(std::slice::from_ref(&r), &SearchOptions::new(3))),
            [2, 1, 3]
        );
        let mut o = SearchOptions::new(3);
        o.text_weight(0.0);
        assert_eq!(order(&fuse(std::slice::from_ref(&r), &o)), [1, 2, 3]);
        // A lone text candidate is the best match there is: it gets the whole bonus.
        let r = rankings(&[(1, 0.61, None), (2, 0.2, Some(3.0))], &[1]);
        let picks = fuse(std::slice::from_ref(&r), &SearchOptions::new(2));
        assert_eq!(order(&picks), [1, 2]);
        assert!((picks[1].1.hit.score - 0.5).abs() < 1e-6);
    }

    /// Split over shards, the candidates fuse as they would in one shard: BM25 is normalised
    /// over every shard's text candidates together, not per shard.
    #[test]
    fn score_fusion_across_shards_equals_one_shard() {
        let rows = [
            (1, 0.70, Some(2.0)),
            (2, 0.66, Some(9.0)),
            (3, 0.64, None),
            (4, 0.50, Some(5.0)),
            (5, 0.45, Some(1.0)),
            (6, 0.30, Some(8.5)),
        ];
        let all = [1, 2, 3, 4, 5];
        let one = fuse(&[rankings(&rows, &all)], &SearchOptions::new(6));
        let (a, b): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.0 % 2 == 0);
        let split = fuse(
            &[rankings(&a, &all), rankings(&b, &all)],
            &SearchOptions::new(6),
        );
        assert_eq!(order(&one), order(&split));
        assert_eq!(order(&one), [2, 1, 4, 3, 6, 5]);
        for ((_, x), (i, y)) in one.iter().zip(&split) {
            assert_eq!(x.hit.score, y.hit.score);
            assert_eq!(*i, usize::from(y.hit.rowid % 2 == 1));
        }
    }

    #[test]
    fn fusion_bonus_must_be_finite_and_not_negative() {
        let q = Query::text("words");
        for bad in [-0.1, f32::NAN, f32::INFINITY] {
            let mut o = SearchOptions::new(3);
            o.fusion(Fusion::Score { bonus: bad });
            assert!(o.validate(&q).is_err(), "{bad}");
        }
        let mut o = SearchOptions::new(3);
        o.fusion(Fusion::Score { bonus: 0.0 });
        assert!(o.validate(&q).is_ok());
        assert_eq!(
            SearchOptions::new(3).fusion,
            Fusion::Score { bonus: TEXT_BONUS }
        );
    }

    #[test]
    fn rescore_defaults_per_mode_unless_set() {
        let mut o = SearchOptions::new(10);
        assert_eq!(o.rescore_for(SearchMode::Quantized), QUANTIZED_RESCORE);
        assert_eq!(o.rescore_for(SearchMode::Binary), BINARY_RESCORE);
        o.k(100);
        assert_eq!(o.rescore_for(SearchMode::Binary), 1_600);
        o.rescore(50);
        assert_eq!(o.rescore_for(SearchMode::Quantized), 50);
        assert_eq!(o.rescore_for(SearchMode::Binary), 50);
    }
}
