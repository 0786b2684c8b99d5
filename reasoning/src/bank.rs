//! [`ReasoningBank`]: learn from trajectories, recall items, take feedback, synthesize context.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reasonbank_embedders::{EmbedKind, Embedder};
use reasonbank_memory::{
    Embedding, Filter, NewRecord, Query, Record, RecordId, RecordUpdate, SearchOptions, Shard,
    ShardId, Store,
};
use serde::Serialize;

use crate::consolidate::{ConsolidateOptions, ConsolidationReport};
use crate::metadata::{ExperienceMetadata, ItemMetadata, keys};
use crate::rank::{self, Weights};
use crate::types::{EXPERIENCE_KIND, PATTERN_KIND, Prior, experience_metadata, item_metadata};
use crate::{
    Distiller, Error, ExplicitJudge, ExtractiveDistiller, Feedback, ItemDraft, ItemKind,
    ItemStatus, Judge, MemoryItem, Outcome, Result, RuleJudge, Trajectory, Verdict,
};

/// Runs blocking work (SQLite) on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(Error::Join)?
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Every live memory item record of `shard`, with embeddings, in one statement. Records of
/// kind `pattern` that another layer wrote without this crate's layout (no `rb` key) are not
/// items and are left out.
pub(crate) fn scan_patterns(shard: &Shard) -> Result<Vec<Record>> {
    let f = Filter::And(vec![
        Filter::Kind(PATTERN_KIND.into()),
        Filter::Exists {
            field: keys::LAYOUT.into(),
        },
    ]);
    Ok(shard.scan(Some(&f), usize::MAX, None)?)
}

/// Settings of a [`ReasoningBank`]. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct BankBuilder {
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    judge: Arc<dyn Judge>,
    distiller: Arc<dyn Distiller>,
    config: Config,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub weights: Weights,
    pub mmr_lambda: f32,
    pub consolidate_on_learn: bool,
    pub consolidate: ConsolidateOptions,
    pub prior: Prior,
    pub recency_half_life: Duration,
    pub record_usage: bool,
    pub candidates: usize,
    pub dedupe_threshold: f32,
}

impl BankBuilder {
    /// The judge of [`learn`](ReasoningBank::learn). Defaults to [`ExplicitJudge`] (the
    /// trajectory's `outcome` or `reward`) falling back to [`RuleJudge`] when the trajectory
    /// carries neither; the verdict names the judge that decided.
    pub fn judge(&mut self, judge: Arc<dyn Judge>) -> &mut Self {
        self.judge = judge;
        self
    }
    /// The distiller. Defaults to [`ExtractiveDistiller`] (offline, no LLM).
    pub fn distiller(&mut self, distiller: Arc<dyn Distiller>) -> &mut Self {
        self.distiller = distiller;
        self
    }
    /// Ranking weights of similarity, recency and reliability. Defaults to
    /// [`Weights::default`] (0.45 / 0.10 / 0.45, chosen by measurement; see there).
    pub fn weights(&mut self, w: Weights) -> &mut Self {
        self.config.weights = w;
        self
    }
    /// MMR trade-off λ in [0, 1]: 1 ranks by score alone, lower values trade score for
    /// diversity (penalizing similarity to items already picked). Defaults to 0.7.
    pub fn mmr_lambda(&mut self, lambda: f32) -> &mut Self {
        self.config.mmr_lambda = lambda;
        self
    }
    /// Run [`consolidate`](ReasoningBank::consolidate) with the
    /// [`consolidate_options`](Self::consolidate_options) after every learn. Defaults to
    /// false: consolidation compares every pair of items of the shard (O(n²)), so it is
    /// better run periodically.
    pub fn consolidate_on_learn(&mut self, yes: bool) -> &mut Self {
        self.config.consolidate_on_learn = yes;
        self
    }
    /// Options of the consolidation run after learning. Defaults to
    /// [`ConsolidateOptions::default`].
    pub fn consolidate_options(&mut self, o: ConsolidateOptions) -> &mut Self {
        self.config.consolidate = o;
        self
    }
    /// Beta prior `(α, β)` of item reliability: confidence is the posterior mean
    /// `(α + successes) / (α + β + successes + failures)`. Defaults to `(1, 1)`, the uniform
    /// prior: a new item has confidence 0.5 and one success moves it to 0.67.
    pub fn prior(&mut self, alpha: f64, beta: f64) -> &mut Self {
        self.config.prior = Prior { alpha, beta };
        self
    }
    /// Age at which an item's recency signal halves (`2^(-age / half_life)`, age from
    /// creation). Defaults to 30 days.
    pub fn recency_half_life(&mut self, d: Duration) -> &mut Self {
        self.config.recency_half_life = d;
        self
    }
    /// Count each item returned by recall or placed in a synthesized context
    /// (`usage_count`, `last_used_at`; one metadata write per item). Defaults to true.
    pub fn record_usage(&mut self, yes: bool) -> &mut Self {
        self.config.record_usage = yes;
        self
    }
    /// Candidates fetched per shard before re-ranking and MMR; at least `k`. Defaults to 40.
    pub fn candidates(&mut self, n: usize) -> &mut Self {
        self.config.candidates = n;
        self
    }
    /// Items at least this similar (cosine) to a better-ranked item are dropped as duplicates
    /// in recall and synthesis, e.g. the same lesson learned by two agents. Defaults to 0.95.
    pub fn dedupe_threshold(&mut self, t: f32) -> &mut Self {
        self.config.dedupe_threshold = t;
        self
    }

    /// The bank.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for weights that are negative or all zero, λ outside [0, 1],
    /// a prior with a non-positive pseudo-count, a zero half-life or zero candidates.
    pub fn build(&self) -> Result<ReasoningBank> {
        let c = &self.config;
        c.weights.validate()?;
        let bad = |what, reason: String| Err(Error::InvalidInput { what, reason });
        if !(0.0..=1.0).contains(&c.mmr_lambda) {
            return bad(
                "mmr_lambda",
                format!("must be in [0, 1], got {}", c.mmr_lambda),
            );
        }
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !(positive(c.prior.alpha) && positive(c.prior.beta)) {
            return bad(
                "prior",
                format!("pseudo-counts must be > 0, got {:?}", c.prior),
            );
        }
        if c.recency_half_life.is_zero() || c.candidates == 0 {
            return bad(
                "options",
                "recency_half_life and candidates must be non-zero".into(),
            );
        }
        c.consolidate.validate()?;
        Ok(ReasoningBank {
            inner: Arc::new(Inner {
                store: Arc::clone(&self.store),
                embedder: Arc::clone(&self.embedder),
                judge: Arc::clone(&self.judge),
                distiller: Arc::clone(&self.distiller),
                config: self.config.clone(),
            }),
        })
    }
}

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

/// Options of one recall. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct RecallOptions {
    pub(crate) shards: Vec<ShardId>,
    pub(crate) k: usize,
    pub(crate) threshold: Option<f32>,
    pub(crate) mode: RecallMode,
    pub(crate) kind: Option<ItemKind>,
    pub(crate) record_usage: Option<bool>,
}

impl RecallOptions {
    /// Recall from `shards` with the defaults below.
    pub fn new(shards: impl Into<Vec<ShardId>>) -> Self {
        RecallOptions {
            shards: shards.into(),
            k: 5,
            threshold: None,
            mode: RecallMode::Items,
            kind: None,
            record_usage: None,
        }
    }
    /// Items to return. Defaults to 5.
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
    /// Override the bank's [`record_usage`](BankBuilder::record_usage) for this call.
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
    /// `w_sim·similarity + w_rec·recency + w_rel·reliability`.
    pub score: f32,
    /// Cosine similarity to the task (in task-query mode: of its source task).
    pub similarity: f32,
    /// `2^(-age / half_life)`.
    pub recency: f32,
    /// The item's confidence.
    pub reliability: f32,
    /// In task-query mode, the past experience whose task matched.
    pub via_task: Option<RecordId>,
}

/// What [`learn`](ReasoningBank::learn) and
/// [`learn_contrastive`](ReasoningBank::learn_contrastive) did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct LearnReport {
    /// The experience records written, one per trajectory, in input order.
    pub experiences: Vec<RecordId>,
    /// The verdict on each trajectory, in input order.
    pub verdicts: Vec<Verdict>,
    /// The items stored (possibly none, if the distiller found nothing).
    pub items: Vec<MemoryItem>,
    /// The consolidation run after learning, when configured.
    pub consolidation: Option<ConsolidationReport>,
}

/// An item placed in a synthesized context.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ContextItem {
    /// The shard (agent) it came from.
    pub shard: ShardId,
    /// Its id.
    pub id: RecordId,
    /// Its kind.
    pub kind: ItemKind,
    /// Its title.
    pub title: String,
    /// Its ranking score.
    pub score: f32,
    /// Tokens its block takes.
    pub tokens: usize,
}

/// A prompt-ready block of memory items from one or more shards.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SynthesizedContext {
    /// The text to put in a prompt (empty when nothing fits or nothing matched).
    pub text: String,
    /// The items in the text, in order.
    pub items: Vec<ContextItem>,
    /// Tokens of `text`.
    pub tokens_used: usize,
    /// The budget asked for.
    pub token_budget: usize,
    /// Whether the counts come from the embedder's tokenizer (`true`) or from the
    /// conservative estimate of [`estimate_tokens`] (`false`, when the embedder cannot count).
    pub tokens_exact: bool,
    /// Candidates dropped as near-duplicates of better-ranked ones.
    pub duplicates_removed: usize,
    /// Candidates left out because they did not fit the budget.
    pub omitted: usize,
}

/// The token estimate used when the embedder cannot count tokens: one token per three ASCII
/// bytes (rounded up) plus one per non-ASCII character. WordPiece and BPE tokenizers average
/// about four characters per token on English prose, so this overestimates prose by about a
/// third; symbol-dense text (code, tables) can exceed it, which is why the result says
/// whether counts were exact.
pub fn estimate_tokens(text: &str) -> usize {
    let ascii = text.bytes().filter(u8::is_ascii).count();
    let other = text.chars().filter(|c| !c.is_ascii()).count();
    ascii.div_ceil(3) + other
}

/// The ReasoningBank: agents' memory of what worked and what failed (arXiv 2509.25140).
///
/// Cheap to clone; `Send + Sync`. Blocking SQLite work runs on tokio's blocking pool, so every
/// method must be called within a tokio runtime.
#[derive(Clone, Debug)]
pub struct ReasoningBank {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub store: Arc<Store>,
    pub embedder: Arc<dyn Embedder>,
    judge: Arc<dyn Judge>,
    distiller: Arc<dyn Distiller>,
    pub config: Config,
}

/// One recall candidate before ranking.
pub(crate) struct Candidate {
    pub item: MemoryItem,
    pub shard: ShardId,
    pub vector: Vec<f32>,
    pub similarity: f32,
    pub via_task: Option<RecordId>,
}

impl ReasoningBank {
    /// A builder over `store` (whose shard options must name the embedder's model and
    /// dimensions) and `embedder`; other settings default (see [`BankBuilder`]).
    pub fn builder(store: Arc<Store>, embedder: Arc<dyn Embedder>) -> BankBuilder {
        let mut judge = ExplicitJudge::new();
        judge.fallback(Arc::new(RuleJudge::new()));
        BankBuilder {
            store,
            embedder,
            judge: Arc::new(judge),
            distiller: Arc::new(ExtractiveDistiller::new()),
            config: Config {
                weights: Weights::default(),
                mmr_lambda: 0.7,
                consolidate_on_learn: false,
                consolidate: ConsolidateOptions::default(),
                prior: Prior {
                    alpha: 1.0,
                    beta: 1.0,
                },
                recency_half_life: rank::DEFAULT_RECENCY_HALF_LIFE,
                record_usage: true,
                candidates: 40,
                dedupe_threshold: 0.95,
            },
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.embedder
    }

    /// Opens `id` and checks that it holds vectors of the embedder's model. Blocking.
    pub(crate) fn open(inner: &Inner, id: &ShardId) -> Result<Arc<Shard>> {
        let shard = inner.store.shard(id)?;
        let (m, d) = (inner.embedder.model_id(), inner.embedder.dimensions());
        if shard.model_id() != m || shard.dimensions() != d {
            return Err(Error::ModelMismatch {
                shard: id.clone(),
                shard_model: shard.model_id().to_owned(),
                shard_dimensions: shard.dimensions(),
                embedder_model: m.to_owned(),
                embedder_dimensions: d,
            });
        }
        Ok(shard)
    }

    /// One embedding per text, in order; a count mismatch (a broken embedder) is an error,
    /// so callers may rely on the count.
    async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<Embedding>> {
        let vectors = self.inner.embedder.embed(&texts, kind).await?;
        if vectors.len() != texts.len() {
            return Err(reasonbank_embedders::Error::CountMismatch {
                expected: texts.len(),
                actual: vectors.len(),
            }
            .into());
        }
        vectors
            .into_iter()
            .map(|v| Embedding::new(v).map_err(Error::from))
            .collect()
    }

    /// Learns from one trajectory: judge → distill → store the trajectory (kind
    /// `experience`) and its items (kind `pattern`) in one transaction → consolidate, if
    /// configured.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty task or a reward outside [0, 1]; the judge's and
    /// distiller's errors (nothing is stored then); embedder and storage errors.
    pub async fn learn(&self, shard: &ShardId, trajectory: &Trajectory) -> Result<LearnReport> {
        trajectory.validate()?;
        let verdict = self.inner.judge.judge(trajectory).await?;
        let drafts = self.inner.distiller.distill(trajectory, &verdict).await?;
        let runs = vec![(trajectory.clone(), verdict)];
        self.store_learned(shard, runs, drafts).await
    }

    /// MaTTS (memory-aware test-time scaling, parallel): learns from `trajectories`, several
    /// attempts at the same `task`, by judging each and distilling items that contrast the
    /// successes with the failures. Every trajectory is stored as an experience; the items
    /// are linked from all of them.
    ///
    /// # Errors
    /// As [`learn`](Self::learn); [`Error::InvalidInput`] for no trajectories.
    pub async fn learn_contrastive(
        &self,
        shard: &ShardId,
        task: &str,
        trajectories: &[Trajectory],
    ) -> Result<LearnReport> {
        if trajectories.is_empty() || task.trim().is_empty() {
            return Err(Error::InvalidInput {
                what: "learn_contrastive",
                reason: "needs a task and at least one trajectory".into(),
            });
        }
        let mut runs = Vec::with_capacity(trajectories.len());
        for t in trajectories {
            t.validate()?;
            let v = self.inner.judge.judge(t).await?;
            runs.push((t.clone(), v));
        }
        let drafts = self
            .inner
            .distiller
            .distill_contrastive(task, &runs)
            .await?;
        self.store_learned(shard, runs, drafts).await
    }

    async fn store_learned(
        &self,
        shard_id: &ShardId,
        runs: Vec<(Trajectory, Verdict)>,
        drafts: Vec<ItemDraft>,
    ) -> Result<LearnReport> {
        if let Some(d) = drafts
            .iter()
            .find(|d| d.title.trim().is_empty() || d.content.trim().is_empty())
        {
            return Err(Error::InvalidInput {
                what: "distilled item",
                reason: format!("the distiller returned an item without title or content: {d:?}"),
            });
        }
        let exp_ids: Vec<RecordId> = runs.iter().map(|_| RecordId::new()).collect();
        let item_ids: Vec<RecordId> = drafts.iter().map(|_| RecordId::new()).collect();
        let mut texts: Vec<String> = runs.iter().map(|(t, _)| t.task.clone()).collect();
        texts.extend(drafts.iter().map(ItemDraft::embedded_text));
        let mut vectors = self.embed(texts, EmbedKind::Document).await?.into_iter();

        let any_success = runs.iter().any(|(_, v)| v.outcome == Outcome::Success);
        let mut records = Vec::with_capacity(runs.len() + drafts.len());
        for ((t, v), id) in runs.iter().zip(&exp_ids) {
            let Some(e) = vectors.next() else {
                unreachable!("`embed` checked that there is one vector per text")
            };
            let mut r = NewRecord::new(t.task.clone(), e);
            r.id(*id)
                .kind(EXPERIENCE_KIND)
                .metadata(experience_metadata(t, v, &item_ids));
            records.push(r);
        }
        let distiller = self.inner.distiller.name().to_owned();
        for (d, id) in drafts.iter().zip(&item_ids) {
            let Some(e) = vectors.next() else {
                unreachable!("`embed` checked that there is one vector per text")
            };
            let outcome = match (d.kind, runs.len()) {
                (_, 1) => runs[0].1.outcome,
                (ItemKind::Pitfall, _) => Outcome::Failure,
                (ItemKind::Strategy, _) => Outcome::Success,
                _ if any_success => Outcome::Success,
                _ => Outcome::Failure,
            };
            let mut r = NewRecord::new(d.embedded_text(), e);
            r.id(*id).kind(PATTERN_KIND).metadata(item_metadata(
                d,
                outcome,
                exp_ids.first().copied(),
                &runs[0].0.task,
                &distiller,
                self.inner.config.prior,
            ));
            records.push(r);
        }

        let inner = Arc::clone(&self.inner);
        let sid = shard_id.clone();
        let ids = item_ids.clone();
        let items = blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            shard.insert_batch(&records)?;
            let mut items = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = shard.get(id)? {
                    items.push(MemoryItem::from_record(&r)?);
                }
            }
            Ok(items)
        })
        .await?;

        let consolidation = if self.inner.config.consolidate_on_learn {
            let o = self.inner.config.consolidate.clone();
            Some(self.consolidate(shard_id, &o).await?)
        } else {
            None
        };
        Ok(LearnReport {
            experiences: exp_ids,
            verdicts: runs.into_iter().map(|(_, v)| v).collect(),
            items,
            consolidation,
        })
    }

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
    /// dropped, ordered by MMR. Usage is recorded as configured. Shards that do not exist
    /// contribute nothing (reading never creates a shard).
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
        let (ranked, _) = self.rank(cands, o.k);
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
        blocking(move || {
            let n = inner.config.candidates.max(k);
            let mut out = Vec::new();
            for sid in &o.shards {
                // Reading must not create shards: one that does not exist has no items.
                if !inner.store.exists(sid) {
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
                                out.push(candidate(&r, sid, hit.similarity, None)?);
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
                                let c = candidate(&r, sid, hit.similarity, Some(hit.id))?;
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

    /// Scores, drops near-duplicates, orders by MMR; returns the top `k` and the number of
    /// duplicates dropped.
    pub(crate) fn rank(&self, cands: Vec<Candidate>, k: usize) -> (Vec<ScoredItem>, usize) {
        let c = &self.inner.config;
        let now = now_ms();
        let mut scored: Vec<(f32, f32, f32, Candidate)> = cands
            .into_iter()
            .map(|cand| {
                let rec = rank::recency(now, cand.item.created_at, c.recency_half_life);
                let rel = cand.item.confidence;
                (c.weights.score(cand.similarity, rec, rel), rec, rel, cand)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.3.item.id.cmp(&b.3.item.id)));
        let mut kept: Vec<(f32, f32, f32, Candidate)> = Vec::with_capacity(scored.len());
        let mut dupes = 0;
        for s in scored {
            let dup = kept
                .iter()
                .any(|k| rank::dot(&k.3.vector, &s.3.vector) >= c.dedupe_threshold);
            if dup {
                dupes += 1;
            } else {
                kept.push(s);
            }
        }
        let rel: Vec<f32> = kept.iter().map(|s| s.0).collect();
        let vecs: Vec<&[f32]> = kept.iter().map(|s| s.3.vector.as_slice()).collect();
        let order = rank::mmr(&rel, &vecs, c.mmr_lambda, k);
        let mut slots: Vec<Option<(f32, f32, f32, Candidate)>> =
            kept.into_iter().map(Some).collect();
        let out = order
            .into_iter()
            .filter_map(|i| slots[i].take())
            .map(|(score, recency, reliability, cand)| ScoredItem {
                item: cand.item,
                shard: cand.shard,
                score,
                similarity: cand.similarity,
                recency,
                reliability,
                via_task: cand.via_task,
            })
            .collect();
        (out, dupes)
    }

    /// Applies `f` to item `id` of `shard_id` (or the item it was merged into) and writes it
    /// back in one atomic read-modify-write, so concurrent updates from any process are
    /// never lost. If a consolidation merges the item in between, `f` goes to the survivor.
    async fn modify_item<F>(&self, shard_id: &ShardId, id: RecordId, f: F) -> Result<MemoryItem>
    where
        F: Fn(&mut MemoryItem) + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let sid = shard_id.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            for _ in 0..8 {
                let Some(r) = resolve(&shard, id)? else {
                    return Err(Error::NoSuchItem { id });
                };
                let mut merged_meanwhile = false;
                let after = shard.modify(r.id, |r| -> Result<Option<RecordUpdate>> {
                    let mut item = MemoryItem::from_record(r)?;
                    if item.status == ItemStatus::Merged {
                        merged_meanwhile = true;
                        return Ok(None);
                    }
                    f(&mut item);
                    let mut u = RecordUpdate::new();
                    u.metadata(item.to_metadata(&r.metadata));
                    Ok(Some(u))
                })?;
                match after {
                    _ if merged_meanwhile => continue,
                    Some(r) => return MemoryItem::from_record(&r),
                    None => return Err(Error::NoSuchItem { id }),
                }
            }
            Err(Error::Contended {
                what: "feedback",
                attempts: 8,
            })
        })
        .await
    }

    /// Records feedback on an item after an agent used it: a success, a failure, or a reward
    /// `r` in [0, 1] counted as `r` successes and `1 − r` failures. The item's confidence
    /// becomes the mean of its Beta posterior (see [`BankBuilder::prior`]), which ranking
    /// uses as reliability. Feedback on a merged item goes to the item that absorbed it.
    /// Returns the updated item.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a reward outside [0, 1]; [`Error::NoSuchItem`];
    /// [`Error::InvalidRecord`] if `item` is not a memory item; storage errors.
    pub async fn feedback(
        &self,
        shard: &ShardId,
        item: RecordId,
        feedback: Feedback,
    ) -> Result<MemoryItem> {
        let (s, f) = match feedback {
            Feedback::Success => (1.0, 0.0),
            Feedback::Failure => (0.0, 1.0),
            Feedback::Reward(r) if (0.0..=1.0).contains(&r) => (f64::from(r), 1.0 - f64::from(r)),
            Feedback::Reward(r) => {
                return Err(Error::InvalidInput {
                    what: "reward",
                    reason: format!("must be in [0, 1], got {r}"),
                });
            }
        };
        let prior = self.inner.config.prior;
        self.modify_item(shard, item, move |it| {
            it.successes += s;
            it.failures += f;
            it.confidence = prior.mean(it.successes, it.failures);
        })
        .await
    }

    async fn record_usage(&self, used: Vec<(ShardId, RecordId)>) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let now = now_ms();
            for (sid, id) in used {
                let shard = Self::open(&inner, &sid)?;
                // An item deleted since it was recalled is skipped (`None`).
                shard.modify(id, |r| -> Result<Option<RecordUpdate>> {
                    let mut item = MemoryItem::from_record(r)?;
                    item.usage_count += 1;
                    item.last_used_at = Some(now);
                    let mut u = RecordUpdate::new();
                    u.metadata(item.to_metadata(&r.metadata));
                    Ok(Some(u))
                })?;
            }
            Ok(())
        })
        .await
    }

    /// The item `id` (in any status), or `None` if there is no such live record.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if the record is not a memory item; storage errors.
    pub async fn item(&self, shard: &ShardId, id: RecordId) -> Result<Option<MemoryItem>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            shard
                .get(id)?
                .map(|r| MemoryItem::from_record(&r))
                .transpose()
        })
        .await
    }

    /// Every memory item of `shard` (all statuses), oldest first.
    ///
    /// # Errors
    /// Storage errors; [`Error::InvalidRecord`] for a pattern record that does not decode.
    pub async fn items(&self, shard: &ShardId) -> Result<Vec<MemoryItem>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            scan_patterns(&shard)?
                .iter()
                .map(MemoryItem::from_record)
                .collect()
        })
        .await
    }

    /// A prompt-ready block of the items of `shards` most useful for `task`: recalled and
    /// scored as [`recall_patterns`](Self::recall_patterns), near-duplicates across shards
    /// removed, ordered by MMR, and added while they fit `token_budget`. Each item names the
    /// shard (agent) it came from. Tokens are counted with the embedder's tokenizer when it
    /// has one ([`Embedder::count_tokens`]), else with [`estimate_tokens`]; the result says
    /// which.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty task; embedder and storage errors.
    pub async fn synthesize_context(
        &self,
        task: &str,
        shards: &[ShardId],
        token_budget: usize,
    ) -> Result<SynthesizedContext> {
        let mut o = RecallOptions::new(shards.to_vec());
        o.k(self.inner.config.candidates);
        let n = self
            .inner
            .config
            .candidates
            .saturating_mul(shards.len().max(1));
        let cands = self.candidates(task, &o, n).await?;
        let total = cands.len();
        let (ranked, duplicates_removed) = self.rank(cands, total);
        let embedder = &self.inner.embedder;
        let mut exact = true;
        let mut count = |s: &str| match embedder.count_tokens(s) {
            Some(n) => n,
            None => {
                exact = false;
                estimate_tokens(s)
            }
        };
        let header = format!("Relevant memory for the task \"{task}\" (from past attempts):\n");
        let header_tokens = count(&header);
        let mut blocks: Vec<(String, usize, &ScoredItem)> = Vec::new();
        let mut used = header_tokens;
        let mut omitted = 0;
        for s in &ranked {
            let it = &s.item;
            let block = format!(
                "\n[{}] {} ({}, from agent `{}`, confidence {:.2})\n{}\n{}\n",
                blocks.len() + 1,
                it.title,
                it.kind.as_str(),
                s.shard,
                it.confidence,
                it.description,
                it.content
            );
            let t = count(&block);
            if used + t <= token_budget {
                used += t;
                blocks.push((block, t, s));
            } else {
                omitted += 1;
            }
        }
        let mut text = String::new();
        if !blocks.is_empty() {
            text.push_str(&header);
            for (b, _, _) in &blocks {
                text.push_str(b);
            }
            // Counts of the parts add up for whitespace-splitting tokenizers; check the whole
            // and drop from the end should a tokenizer merge across the joins.
            let mut total = count(&text);
            while total > token_budget && !blocks.is_empty() {
                blocks.pop();
                omitted += 1;
                text.truncate(header.len());
                for (b, _, _) in &blocks {
                    text.push_str(b);
                }
                total = if blocks.is_empty() { 0 } else { count(&text) };
            }
            if blocks.is_empty() {
                text.clear();
            }
            used = total;
        } else {
            used = 0;
        }
        let items: Vec<ContextItem> = blocks
            .iter()
            .map(|(_, t, s)| ContextItem {
                shard: s.shard.clone(),
                id: s.item.id,
                kind: s.item.kind,
                title: s.item.title.clone(),
                score: s.score,
                tokens: *t,
            })
            .collect();
        if self.inner.config.record_usage {
            self.record_usage(items.iter().map(|i| (i.shard.clone(), i.id)).collect())
                .await?;
        }
        Ok(SynthesizedContext {
            text,
            items,
            tokens_used: used,
            token_budget,
            tokens_exact: exact,
            duplicates_removed,
            omitted,
        })
    }
}

/// The live record `id`, following `merged_into` links (at most 8 hops) to the active item.
pub(crate) fn resolve(shard: &Shard, mut id: RecordId) -> Result<Option<Record>> {
    for _ in 0..8 {
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
    r: &Record,
    shard: &ShardId,
    similarity: Option<f32>,
    via_task: Option<RecordId>,
) -> Result<Candidate> {
    let item = MemoryItem::from_record(r)?;
    let vector = r
        .embedding
        .as_ref()
        .map(|e| e.as_slice().to_vec())
        .unwrap_or_default();
    Ok(Candidate {
        item,
        shard: shard.clone(),
        vector,
        similarity: similarity.unwrap_or(0.0),
        via_task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_estimate_is_conservative_for_prose() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 2);
        assert_eq!(estimate_tokens("東京"), 2);
        // 44 characters of English prose: all-MiniLM-L6-v2 counts 10 tokens.
        assert!(estimate_tokens("The quick brown fox jumps over the lazy dog.") >= 10);
    }
}
