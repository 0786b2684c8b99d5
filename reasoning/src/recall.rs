//! Recall: candidates from the shards (by item or by past task), scored by similarity,
//! recency and reliability, deduplicated across shards and ordered by MMR above a relevance
//! floor.

use std::collections::HashSet;
use std::sync::Arc;

use reasonbank_embedders::EmbedKind;
use reasonbank_memory::{Filter, Query, Record, RecordId, SearchOptions, Shard, ShardId};
use serde::Serialize;

use crate::bank::{blocking, now_ms};
use crate::metadata::{ExperienceMetadata, ItemMetadata, keys};
use crate::rank;
use crate::types::{EXPERIENCE_KIND, PATTERN_KIND};
use crate::{Error, ItemKind, ItemStatus, MemoryItem, ReasoningBank, Result};

/// How [`recall_patterns`](ReasoningBank::recall_patterns) matches a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum RecallMode {
    /// Compare the task with the items' own text (title, description, content).
    #[default]
    Items,
    /// The paper's mode: compare the task with past *task queries* (experiences) and return
    /// the items learned from the most similar tasks; an item's similarity is its task's.
    TaskQuery,
}

/// Items a recall returns unless [`RecallOptions::k`] says otherwise: 5. A handful of items
/// fits in a prompt beside the task; [`synthesize_context`](ReasoningBank::synthesize_context)
/// fills a token budget instead of a count.
pub const DEFAULT_RECALL_K: usize = 5;

/// Options of one recall. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct RecallOptions {
    pub(crate) shards: Vec<ShardId>,
    pub(crate) k: usize,
    pub(crate) threshold: Option<f32>,
    pub(crate) mode: RecallMode,
    pub(crate) kind: Option<ItemKind>,
    pub(crate) record_usage: Option<bool>,
    /// A shard that does not exist is an error rather than a shard with no items
    /// (synthesis, whose caller names the agents to draw from).
    pub(crate) missing_shard_is_error: bool,
}

impl RecallOptions {
    /// Recall from `shards` with the defaults below.
    pub fn new(shards: impl Into<Vec<ShardId>>) -> Self {
        RecallOptions {
            shards: shards.into(),
            k: DEFAULT_RECALL_K,
            threshold: None,
            mode: RecallMode::Items,
            kind: None,
            record_usage: None,
            missing_shard_is_error: false,
        }
    }
    /// Items to return. Defaults to [`DEFAULT_RECALL_K`] (5).
    pub fn k(&mut self, k: usize) -> &mut Self {
        self.k = k;
        self
    }
    /// Minimum cosine similarity in [-1, 1] of an item (or, in task-query mode, of its task)
    /// to the query. Defaults to none.
    pub fn threshold(&mut self, t: f32) -> &mut Self {
        self.threshold = Some(t);
        self
    }
    /// What the task is matched against. Defaults to [`RecallMode::Items`].
    pub fn mode(&mut self, m: RecallMode) -> &mut Self {
        self.mode = m;
        self
    }
    /// Only items of this kind. Defaults to all kinds.
    pub fn kind(&mut self, k: ItemKind) -> &mut Self {
        self.kind = Some(k);
        self
    }
    /// Override the bank's [`record_usage`](crate::BankBuilder::record_usage) for this call.
    /// Defaults to the bank's setting.
    pub fn record_usage(&mut self, yes: bool) -> &mut Self {
        self.record_usage = Some(yes);
        self
    }
}

/// One recalled item and why it ranked where it did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ScoredItem {
    /// The item.
    pub item: MemoryItem,
    /// The shard it lives in.
    pub shard: ShardId,
    /// `w_sim·relevance + w_rec·recency + w_rel·reliability`, where the relevance is the
    /// similarity, or with a reranker ([`BankBuilder::reranker`](crate::BankBuilder::reranker))
    /// the similarity of the candidate at this item's place in the reranker's order.
    pub score: f32,
    /// Cosine similarity to the task (in task-query mode: of its source task).
    pub similarity: f32,
    /// The reranker's score of the item against the task, when a reranker is configured and
    /// the item was among the candidates it scored. Its scale is the reranker model's.
    /// Left out of JSON when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<f32>,
    /// `2^(-age / half_life)`.
    pub recency: f32,
    /// The item's confidence.
    pub reliability: f32,
    /// In task-query mode, the past experience whose task matched.
    pub via_task: Option<RecordId>,
}

/// One recall candidate before ranking.
pub(crate) struct Candidate {
    pub item: MemoryItem,
    pub shard: ShardId,
    pub vector: Vec<f32>,
    pub similarity: f32,
    /// What ranking uses for similarity: the similarity itself, or after reranking the
    /// reranker's order on the similarities' scale (`rank::rerank_relevance`).
    pub relevance: f32,
    pub rerank: Option<f32>,
    pub via_task: Option<RecordId>,
}

impl ReasoningBank {
    /// The seed's call: the `k` best active items of `shards` for `task` whose similarity is
    /// at least `threshold`, ranked by score with MMR diversity (item mode).
    ///
    /// # Errors
    /// As [`recall_patterns`](Self::recall_patterns).
    pub async fn find_similar_patterns(
        &self,
        shards: &[ShardId],
        task: &str,
        threshold: f32,
        k: usize,
    ) -> Result<Vec<ScoredItem>> {
        let mut o = RecallOptions::new(shards.to_vec());
        o.k(k).threshold(threshold);
        self.recall_patterns(task, &o).await
    }

    /// The best active items for `task` across the option's shards: candidates by cosine
    /// similarity (to the items, or in [`RecallMode::TaskQuery`] to past tasks), scored
    /// `w_sim·similarity + w_rec·recency + w_rel·reliability`, near-duplicates across shards
    /// dropped, ordered by MMR among the candidates at or above the relevance floor
    /// ([`BankBuilder::relevance_floor`](crate::BankBuilder::relevance_floor)); candidates
    /// below it only fill the slots left, in score order. Merged and archived items are never
    /// returned. Usage is recorded as configured. Shards that do not exist contribute nothing
    /// (reading never creates a shard).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for `k` = 0 or a threshold outside [-1, 1]; embedder and
    /// storage errors ([`Error::ModelMismatch`] for a shard of another model).
    pub async fn recall_patterns(&self, task: &str, o: &RecallOptions) -> Result<Vec<ScoredItem>> {
        if o.k == 0 || o.k > reasonbank_memory::MAX_K {
            return Err(Error::InvalidInput {
                what: "k",
                reason: format!("must be in 1..={}, got {}", reasonbank_memory::MAX_K, o.k),
            });
        }
        if let Some(t) = o.threshold
            && !(-1.0..=1.0).contains(&t)
        {
            return Err(Error::InvalidInput {
                what: "threshold",
                reason: format!("must be a cosine similarity in [-1, 1], got {t}"),
            });
        }
        let cands = self.candidates(task, o, o.k).await?;
        let cands = self.rerank(task, cands).await?;
        let Ranking {
            items: mut ranked,
            below_floor,
            ..
        } = self.rank(cands, o.k);
        let room = o.k.saturating_sub(ranked.len());
        ranked.extend(below_floor.into_iter().take(room));
        let record = o.record_usage.unwrap_or(self.inner.config.record_usage);
        if record {
            self.record_usage(
                ranked
                    .iter()
                    .map(|s| (s.shard.clone(), s.item.id))
                    .collect(),
            )
            .await?;
        }
        Ok(ranked)
    }

    pub(crate) async fn candidates(
        &self,
        task: &str,
        o: &RecallOptions,
        k: usize,
    ) -> Result<Vec<Candidate>> {
        if task.trim().is_empty() {
            return Err(Error::InvalidInput {
                what: "task",
                reason: "it is empty".into(),
            });
        }
        let mut q = self.embed(vec![task.to_owned()], EmbedKind::Query).await?;
        let Some(q) = q.pop() else {
            unreachable!("`embed` checked that there is one vector per text")
        };
        let inner = Arc::clone(&self.inner);
        let o = o.clone();
        let prior = self.inner.config.prior;
        blocking(move || {
            let n = inner.config.candidates.max(k);
            let mut out = Vec::new();
            for sid in &o.shards {
                // Reading must not create shards: one that does not exist has no items.
                if !inner.store.exists(sid) {
                    if o.missing_shard_is_error {
                        return Err(reasonbank_memory::Error::NoSuchShard {
                            path: inner.store.path_of(sid),
                        }
                        .into());
                    }
                    continue;
                }
                let shard = Self::open(&inner, sid)?;
                let mut so = SearchOptions::new(n.min(reasonbank_memory::MAX_K));
                if let Some(t) = o.threshold {
                    so.threshold(t);
                }
                match o.mode {
                    RecallMode::Items => {
                        let mut f = vec![
                            Filter::Kind(PATTERN_KIND.into()),
                            Filter::Eq {
                                field: keys::STATUS.into(),
                                value: ItemStatus::Active.as_str().into(),
                            },
                        ];
                        if let Some(kind) = o.kind {
                            f.push(Filter::Eq {
                                field: keys::ITEM_KIND.into(),
                                value: kind.as_str().into(),
                            });
                        }
                        so.filter(Filter::And(f));
                        for hit in shard.search(&Query::vector(q.clone()), &so)? {
                            if let Some(r) = shard.get(hit.id)? {
                                out.push(candidate(&shard, &r, sid, hit.similarity, None, prior)?);
                            }
                        }
                    }
                    RecallMode::TaskQuery => {
                        so.filter(Filter::Kind(EXPERIENCE_KIND.into()));
                        let mut seen: HashSet<RecordId> = HashSet::new();
                        for hit in shard.search(&Query::vector(q.clone()), &so)? {
                            for id in ExperienceMetadata::of(&hit.record).items() {
                                let Some(r) = resolve(&shard, id)? else {
                                    continue;
                                };
                                let c = candidate(
                                    &shard,
                                    &r,
                                    sid,
                                    hit.similarity,
                                    Some(hit.id),
                                    prior,
                                )?;
                                if c.item.status != ItemStatus::Active
                                    || o.kind.is_some_and(|k| k != c.item.kind)
                                {
                                    continue;
                                }
                                // Hits come best first: the first task to reach an item wins.
                                if seen.insert(c.item.id) {
                                    out.push(c);
                                }
                            }
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// With a reranker configured, rescores the best [`candidates`](crate::BankBuilder::candidates)
    /// of `cands` by similarity against `task` in one call and sets their relevance
    /// (`rank::rerank_relevance`); the others keep their similarity, below all of those.
    /// Without one, `cands` as they are.
    pub(crate) async fn rerank(
        &self,
        task: &str,
        mut cands: Vec<Candidate>,
    ) -> Result<Vec<Candidate>> {
        let Some(reranker) = &self.inner.reranker else {
            return Ok(cands);
        };
        cands.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.item.id.cmp(&b.item.id))
        });
        let n = cands.len().min(self.inner.config.candidates);
        let texts: Vec<String> = cands[..n].iter().map(|c| c.item.embedded_text()).collect();
        let scores = reranker
            .rerank(task, &texts)
            .await
            .map_err(|source| Error::Rerank {
                model: reranker.model_id().to_owned(),
                source,
            })?;
        let sims: Vec<f32> = cands[..n].iter().map(|c| c.similarity).collect();
        let relevance = rank::rerank_relevance(&sims, &scores);
        for ((c, r), s) in cands.iter_mut().zip(relevance).zip(scores) {
            c.relevance = r;
            c.rerank = Some(s);
        }
        Ok(cands)
    }

    /// Scores `cands`, drops near-duplicates, sets aside those below the relevance floor and
    /// orders the rest by MMR, keeping `k`.
    pub(crate) fn rank(&self, cands: Vec<Candidate>, k: usize) -> Ranking {
        let c = &self.inner.config;
        let now = now_ms();
        let mut scored: Vec<Ranked> = cands
            .into_iter()
            .map(|cand| {
                let recency = rank::recency(now, cand.item.created_at, c.recency_half_life);
                let reliability = cand.item.confidence;
                Ranked {
                    hit: ScoredItem {
                        score: c.weights.score(cand.relevance, recency, reliability),
                        similarity: cand.similarity,
                        rerank: cand.rerank,
                        recency,
                        reliability,
                        item: cand.item,
                        shard: cand.shard,
                        via_task: cand.via_task,
                    },
                    relevance: cand.relevance,
                    vector: cand.vector,
                }
            })
            .collect();
        scored.sort_by(|a, b| {
            b.hit
                .score
                .total_cmp(&a.hit.score)
                .then(a.hit.item.id.cmp(&b.hit.item.id))
        });
        // Best first, so of near-duplicates the better-scored one stays.
        let mut kept: Vec<Ranked> = Vec::with_capacity(scored.len());
        let mut duplicates = 0;
        for r in scored {
            if kept
                .iter()
                .any(|k| rank::dot(&k.vector, &r.vector) >= c.dedupe_threshold)
            {
                duplicates += 1;
            } else {
                kept.push(r);
            }
        }
        // Only candidates on the task compete in MMR, so diversity cannot promote one off it
        // (issue #14); the rest stay in score order.
        let relevance: Vec<f32> = kept.iter().map(|r| r.relevance).collect();
        let (on_task, below): (Vec<Ranked>, Vec<Ranked>) =
            match rank::relevance_floor(&relevance, c.relevance_floor) {
                Some(floor) => kept.into_iter().partition(|r| r.relevance >= floor),
                None => (kept, Vec::new()),
            };
        let relevance: Vec<f32> = on_task.iter().map(|r| r.hit.score).collect();
        let vectors: Vec<&[f32]> = on_task.iter().map(|r| r.vector.as_slice()).collect();
        let order = rank::mmr(&relevance, &vectors, c.mmr_lambda, k);
        let mut slots: Vec<Option<Ranked>> = on_task.into_iter().map(Some).collect();
        Ranking {
            items: order
                .into_iter()
                .filter_map(|i| slots[i].take())
                .map(|r| r.hit)
                .collect(),
            below_floor: below.into_iter().map(|r| r.hit).collect(),
            duplicates,
        }
    }
}

/// A scored candidate: what recall returns, and the vector that deduplication and MMR
/// compare.
struct Ranked {
    hit: ScoredItem,
    /// The similarity ranking uses (see [`Candidate::relevance`]).
    relevance: f32,
    vector: Vec<f32>,
}

/// What [`ReasoningBank::rank`] chose.
pub(crate) struct Ranking {
    /// At most `k` items at or above the relevance floor, in MMR order.
    pub items: Vec<ScoredItem>,
    /// The items below the relevance floor, best score first.
    pub below_floor: Vec<ScoredItem>,
    /// Candidates dropped as near-duplicates of better-scored ones.
    pub duplicates: usize,
}

/// Links [`resolve`] follows from a merged item towards its survivor. A run of
/// consolidation points each item it merges at a survivor that is active after the run, so a
/// chain grows by one link only when a later run merges that survivor in turn; eight runs
/// that each merge the survivor of the last are far more than a shard sees, and the bound
/// keeps a damaged (cyclic) chain from looping.
const MERGE_CHAIN_HOPS: usize = 8;

/// The live record `id`, following `merged_into` links (at most [`MERGE_CHAIN_HOPS`]) to the
/// item that absorbed it.
pub(crate) fn resolve(shard: &Shard, mut id: RecordId) -> Result<Option<Record>> {
    for _ in 0..MERGE_CHAIN_HOPS {
        let Some(r) = shard.get(id)? else {
            return Ok(None);
        };
        match ItemMetadata::of(&r).merged_link() {
            Some(next) => id = next,
            None => return Ok(Some(r)),
        }
    }
    Ok(shard.get(id)?)
}

fn candidate(
    store: &Shard,
    r: &Record,
    shard: &ShardId,
    similarity: Option<f32>,
    via_task: Option<RecordId>,
    prior: crate::types::Prior,
) -> Result<Candidate> {
    // Its evidence includes that of the items merged into it (`evidence`).
    let item = crate::evidence::load_item(store, r, prior)?;
    let vector = r
        .embedding
        .as_ref()
        .map(|e| e.as_slice().to_vec())
        .unwrap_or_default();
    let similarity = similarity.unwrap_or(0.0);
    Ok(Candidate {
        item,
        shard: shard.clone(),
        vector,
        similarity,
        relevance: similarity,
        rerank: None,
        via_task,
    })
}
