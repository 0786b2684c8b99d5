//! [`AgentMemory::recall`]'s options and results: [`RecallOptions`], [`RecallMode`],
//! [`Recalled`] and [`Why`].

use serde::Serialize;
use serde_json::{Map, Value};

#[cfg(doc)]
use crate::AgentMemory;
use crate::embedders::LocalModel;
use crate::memory::{Filter, Fusion, RecordId, SearchMode, ShardId, TimeRange};
use crate::reasoning::EXPERIENCE_KIND;
use crate::{Error, Result};

/// How [`AgentMemory::recall`] ranks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecallMode {
    /// Meaning (cosine) lifted by words (BM25, normalised, at most a bonus): see
    /// [`Fusion`](crate::memory::Fusion). The default.
    #[default]
    Hybrid,
    /// Meaning only: cosine similarity of embeddings.
    Vector,
    /// Words only: BM25 over the text.
    Text,
}

impl std::str::FromStr for RecallMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "hybrid" => Ok(RecallMode::Hybrid),
            "vector" => Ok(RecallMode::Vector),
            "text" => Ok(RecallMode::Text),
            _ => Err(Error::InvalidInput {
                what: "recall mode",
                reason: format!("{s:?} is not one of hybrid, vector, text"),
            }),
        }
    }
}

/// The most BM25 adds to a hybrid candidate's cosine when the memory's model is
/// bge-small-en-v1.5 ([`default_fusion`]).
///
/// bge-small-en-v1.5's cosines lie closer together than all-MiniLM-L6-v2's, so the same
/// bonus weighs more against them: on the dev half of `reasonbank-bench quality` the default
/// [`TEXT_BONUS`](crate::memory::TEXT_BONUS) of 0.3 put hybrid recall below vector recall on
/// the documents (MRR 0.609 against 0.631). Bonuses 0.1 / 0.15 / 0.2 gave MRR 0.650 / 0.639 /
/// 0.627 on the documents and 0.148 / 0.154 / 0.157 on the conversations (vector alone 0.631
/// and 0.128, text alone 0.557 and 0.124): 0.1 is the one clearly above both inputs on both.
pub const BGE_TEXT_BONUS: f32 = 0.1;

/// The hybrid fusion recall uses unless told otherwise ([`RecallOptions::fusion`]), for
/// vectors of the model `model_id`: [`Fusion::Score`] with a bonus measured for that model
/// ([`BGE_TEXT_BONUS`] for bge-small-en-v1.5, [`TEXT_BONUS`](crate::memory::TEXT_BONUS)
/// for all-MiniLM-L6-v2 and any other model).
///
/// A bonus per model, not one rule for all: scaling the bonus by each query's spread of
/// cosines (or their deviation) was measured too, and lost on the conversations with both
/// models (README, "Recall quality").
pub fn default_fusion(model_id: &str) -> Fusion {
    match LocalModel::from_model_id(model_id) {
        Some(LocalModel::BgeSmallEnV15) => Fusion::Score {
            bonus: BGE_TEXT_BONUS,
        },
        _ => Fusion::default(),
    }
}

/// Options of [`AgentMemory::recall`].
#[derive(Clone, Debug)]
pub struct RecallOptions {
    pub(crate) k: usize,
    pub(crate) threshold: Option<f32>,
    pub(crate) filter: Option<Filter>,
    pub(crate) mode: RecallMode,
    pub(crate) search: SearchMode,
    pub(crate) shards: Vec<ShardId>,
    pub(crate) kinds: Vec<String>,
    pub(crate) include_inactive: bool,
    pub(crate) fusion: Option<Fusion>,
    pub(crate) rerank: Option<usize>,
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
}

impl Default for RecallOptions {
    fn default() -> Self {
        RecallOptions {
            k: 5,
            threshold: None,
            filter: None,
            mode: RecallMode::Hybrid,
            search: SearchMode::Auto,
            shards: Vec::new(),
            kinds: Vec::new(),
            include_inactive: false,
            fusion: None,
            rerank: None,
            since: None,
            until: None,
        }
    }
}

impl RecallOptions {
    /// Options with the defaults below.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of results. Defaults to 5.
    pub fn k(&mut self, k: usize) -> &mut Self {
        self.k = k;
        self
    }
    /// Minimum cosine similarity (vector and hybrid modes). Defaults to none.
    pub fn threshold(&mut self, t: f32) -> &mut Self {
        self.threshold = Some(t);
        self
    }
    /// Metadata filter applied before ranking. Defaults to none.
    pub fn filter(&mut self, f: Filter) -> &mut Self {
        self.filter = Some(f);
        self
    }
    /// Ranking mode. Defaults to [`RecallMode::Hybrid`].
    pub fn mode(&mut self, m: RecallMode) -> &mut Self {
        self.mode = m;
        self
    }
    /// How the vector side is searched: exact, an i8 or sign-bit scan rescored exactly,
    /// through the HNSW graph, or picked by shard size. Defaults to [`SearchMode::Auto`] (see there for what it picks
    /// and the recall measured for each mode).
    pub fn search_mode(&mut self, m: SearchMode) -> &mut Self {
        self.search = m;
        self
    }
    /// Other agents' shards to search besides this agent's own. Defaults to none.
    pub fn shards(&mut self, shards: Vec<ShardId>) -> &mut Self {
        self.shards = shards;
        self
    }
    /// Only records of these kinds (`memory`, `pattern`, `experience`, or your own). Defaults
    /// to every kind except `experience`: raw trajectories are the evidence learned items
    /// come from, not something to act on, so they come back only when asked for.
    pub fn kinds(&mut self, kinds: Vec<String>) -> &mut Self {
        self.kinds = kinds;
        self
    }
    /// Also return learned items that were merged into another or archived. Defaults to
    /// false: superseded lessons stay out of recall (they stay readable with `get`).
    pub fn include_inactive(&mut self, yes: bool) -> &mut Self {
        self.include_inactive = yes;
        self
    }

    /// How hybrid recall fuses meaning and words. Defaults to [`default_fusion`] of the
    /// memory's embedding model (cosine plus a normalised BM25 bonus of at most
    /// [`TEXT_BONUS`](crate::memory::TEXT_BONUS), or [`BGE_TEXT_BONUS`] for
    /// bge-small-en-v1.5); [`Fusion::Rrf`] is reciprocal-rank fusion.
    pub fn fusion(&mut self, f: Fusion) -> &mut Self {
        self.fusion = Some(f);
        self
    }

    /// Rerank: the first ranking (as [`mode`](Self::mode) says) keeps its best `n`, the
    /// memory's reranker ([`AgentMemoryBuilder::reranker`](crate::AgentMemoryBuilder::reranker))
    /// scores each of them together with the query, and the best `k` by that score come
    /// back, with it as [`Recalled::score`] and [`Why::rerank`]. `n` is at least `k` and at
    /// most [`MAX_K`](crate::memory::MAX_K); the reranker reads `n` texts per recall, so its
    /// latency grows with `n`. Defaults to none (no reranking).
    pub fn rerank(&mut self, n: usize) -> &mut Self {
        self.rerank = Some(n);
        self
    }

    /// Only memories created at or after this instant (Unix milliseconds; the creation time
    /// a memory was given, see [`Memory::created_at`](crate::Memory::created_at), or the time
    /// it was written). With [`until`](Self::until), a window: "what did we discuss last
    /// week". [`units::instant`](crate::units::instant) reads dates, date-times and ages
    /// (`7d`). Defaults to no lower bound.
    pub fn since(&mut self, unix_ms: i64) -> &mut Self {
        self.since = Some(unix_ms);
        self
    }

    /// Only memories created before this instant (Unix milliseconds, exclusive). Defaults to
    /// no upper bound.
    pub fn until(&mut self, unix_ms: i64) -> &mut Self {
        self.until = Some(unix_ms);
        self
    }

    /// Checks what can be checked before the query is embedded: the time window.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `since` is not before `until`.
    pub(crate) fn check(&self) -> Result<()> {
        match (self.since, self.until) {
            (Some(s), Some(u)) if s >= u => Err(Error::InvalidInput {
                what: "since",
                reason: format!(
                    "the window is empty: since ({s}) must be before until ({u}), Unix ms"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The reranker a recall with these options uses, of the memory's `configured` one:
    /// none without [`rerank`](Self::rerank).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `rerank` is set but out of `k..=MAX_K`, or the memory has
    /// no reranker.
    pub(crate) fn reranker(
        &self,
        configured: Option<&std::sync::Arc<dyn crate::embedders::Reranker>>,
    ) -> Result<Option<std::sync::Arc<dyn crate::embedders::Reranker>>> {
        let Some(n) = self.rerank else {
            return Ok(None);
        };
        if n < self.k || n > crate::memory::MAX_K {
            return Err(Error::InvalidInput {
                what: "rerank",
                reason: format!(
                    "the number of candidates to rerank must be in k..={} (k = {}), got {n}",
                    crate::memory::MAX_K,
                    self.k
                ),
            });
        }
        match configured {
            Some(r) => Ok(Some(std::sync::Arc::clone(r))),
            None => Err(Error::InvalidInput {
                what: "rerank",
                reason: "this memory has no reranker: configure one (AgentMemoryBuilder::\
                         rerank_server, or --rerank-url and --rerank-model)"
                    .into(),
            }),
        }
    }

    /// The filter a search runs with: the caller's, the time window, the kinds, and the
    /// active-items rule.
    pub(crate) fn effective_filter(&self) -> Filter {
        let mut all = Vec::with_capacity(4);
        all.extend(self.filter.clone());
        if self.since.is_some() || self.until.is_some() {
            all.push(Filter::CreatedAt(TimeRange {
                from: self.since,
                to: self.until,
            }));
        }
        if self.kinds.is_empty() {
            all.push(Filter::Not(Box::new(Filter::Kind(
                EXPERIENCE_KIND.to_owned(),
            ))));
        } else {
            all.push(Filter::Or(
                self.kinds.iter().cloned().map(Filter::Kind).collect(),
            ));
        }
        if !self.include_inactive {
            all.push(crate::reasoning::active_records());
        }
        Filter::And(all)
    }
}

/// Why a memory scored as it did. Every field that applied is set.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Why {
    /// Cosine similarity of the query and the memory, when a vector ranking ran.
    pub similarity: Option<f32>,
    /// BM25 relevance (higher is better), when the memory shares words with the query.
    pub bm25: Option<f32>,
    /// `0.5^(age / half-life)` of the last update, 1.0 for a memory written just now.
    pub recency: f32,
    /// The memory's `confidence` metadata in [0, 1] (set by ReasoningBank feedback), if any.
    pub reliability: Option<f32>,
    /// The reranker's score of the memory against the query, when the recall was reranked
    /// ([`RecallOptions::rerank`]); its scale is the reranker model's.
    /// Left out of JSON when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<f32>,
}

/// One recalled memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Recalled {
    /// Its id.
    pub id: RecordId,
    /// The agent (shard) it belongs to.
    pub shard: ShardId,
    /// Its kind.
    pub kind: String,
    /// Its text.
    pub text: String,
    /// Its metadata.
    pub metadata: Map<String, Value>,
    /// The ranking score: fused (hybrid: cosine plus a bounded BM25 bonus), cosine (vector)
    /// or BM25 (text); the reranker's score when the recall was reranked.
    pub score: f32,
    /// The parts of the score.
    pub why: Why,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last update, Unix milliseconds.
    pub updated_at: i64,
}
