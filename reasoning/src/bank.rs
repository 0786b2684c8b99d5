//! [`ReasoningBank`] and its [`BankBuilder`]: the handle, its settings, and learning from
//! trajectories (judge → distill → store). Recall lives in `recall`, feedback and usage in
//! `feedback`, context synthesis in `synthesize`, consolidation in `consolidate`.

use std::sync::Arc;
use std::time::Duration;

use reasonbank_embedders::{EmbedKind, Embedder, Reranker};
use reasonbank_memory::{Embedding, Filter, NewRecord, Record, RecordId, Shard, ShardId, Store};
use serde::Serialize;

use crate::consolidate::{ConsolidateOptions, ConsolidationReport};
use crate::metadata::keys;
use crate::rank::{self, Weights};
use crate::types::{EXPERIENCE_KIND, PATTERN_KIND, Prior, experience_metadata, item_metadata};
use crate::{
    Distiller, Error, ExplicitJudge, ExtractiveDistiller, ItemDraft, ItemKind, Judge, MemoryItem,
    Outcome, Result, RuleJudge, Trajectory, Verdict,
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

/// The default MMR trade-off λ ([`BankBuilder::mmr_lambda`]): 0.7. Relevance keeps most of
/// the weight, so the first pick is always the best-scored item; a later candidate loses
/// `0.3/0.7 ≈ 0.43` times its cosine to the closest item already picked, so a near-copy
/// (cosine 0.9) must outscore a different item by about 0.39 to come first, and a different
/// lesson on the same task (cosine about 0.6) by about 0.26: enough to show a second kind of
/// lesson instead of a rephrasing. What it may promote is bounded by the relevance floor
/// ([`BankBuilder::relevance_floor`]), so diversity never reaches items off the task.
pub const DEFAULT_MMR_LAMBDA: f32 = 0.7;

/// The default number of candidates fetched per shard ([`BankBuilder::candidates`]): 40,
/// eight times the default `k`, so deduplication and MMR have alternatives for what they
/// drop, while a recall decodes at most 40 records (with their vectors) per shard.
pub const DEFAULT_CANDIDATES: usize = 40;

/// The default cosine at which recall and synthesis hide a near-duplicate of a better-ranked
/// item ([`BankBuilder::dedupe_threshold`]): 0.95. Above consolidation's merge threshold
/// (0.90, [`ConsolidateOptions::duplicate_threshold`]): recall only hides copies (the same
/// lesson learned by two agents is the same text, cosine 1.0; close rephrasings score
/// 0.92–0.97 with all-MiniLM-L6-v2) and leaves merging the rest to consolidation, which
/// keeps provenance.
pub const DEFAULT_DEDUPE_THRESHOLD: f32 = 0.95;

/// The default relevance floor ([`BankBuilder::relevance_floor`]): 0.5, so diversity and
/// synthesis only consider items at least half as similar to the task as the best candidate.
/// Measured with all-MiniLM-L6-v2 in the regression test of issue #14: against "ship the site
/// to staging", the two lessons of a staging deployment score 0.46 and 0.37, a changelog item
/// 0.18 and a parser fix 0.03; half the best (0.23) keeps both lessons and neither of the
/// others, with a margin on each side.
pub const DEFAULT_RELEVANCE_FLOOR: f32 = 0.5;

/// Settings of a [`ReasoningBank`]. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct BankBuilder {
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    judge: Arc<dyn Judge>,
    distiller: Arc<dyn Distiller>,
    reranker: Option<Arc<dyn Reranker>>,
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
    pub relevance_floor: f32,
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
    /// diversity (penalizing similarity to items already picked). Defaults to
    /// [`DEFAULT_MMR_LAMBDA`] (0.7).
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
    /// creation). Defaults to [`DEFAULT_RECENCY_HALF_LIFE`](crate::DEFAULT_RECENCY_HALF_LIFE)
    /// (30 days).
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
    /// Candidates fetched per shard before re-ranking and MMR; at least `k`. Defaults to
    /// [`DEFAULT_CANDIDATES`] (40).
    pub fn candidates(&mut self, n: usize) -> &mut Self {
        self.config.candidates = n;
        self
    }
    /// Items at least this similar (cosine) to a better-ranked item are dropped as duplicates
    /// in recall and synthesis, e.g. the same lesson learned by two agents. Defaults to
    /// [`DEFAULT_DEDUPE_THRESHOLD`] (0.95).
    pub fn dedupe_threshold(&mut self, t: f32) -> &mut Self {
        self.config.dedupe_threshold = t;
        self
    }
    /// The relevance floor, a fraction in [0, 1] of the best candidate's similarity to the
    /// task: candidates less similar than `floor × best` (best counted as 0 if negative) are
    /// never promoted by MMR diversity or by recency and reliability over one above it. In
    /// recall they only fill the `k` slots the others leave, in score order; synthesis leaves
    /// them out of the context ([`SynthesizedContext::below_relevance_floor`]). 0 turns the
    /// floor off. Defaults to [`DEFAULT_RELEVANCE_FLOOR`] (0.5).
    ///
    /// [`SynthesizedContext::below_relevance_floor`]: crate::SynthesizedContext::below_relevance_floor
    pub fn relevance_floor(&mut self, floor: f32) -> &mut Self {
        self.config.relevance_floor = floor;
        self
    }

    /// A reranker (a cross-encoder) that rescores recall's and synthesis' best
    /// [`candidates`](Self::candidates) against the task before scoring: it decides their
    /// order of relevance, the cosine keeps the scale, so the weights and the relevance floor
    /// keep their meaning ([`ScoredItem::rerank`](crate::ScoredItem::rerank) holds its score).
    /// One call per recall or synthesis, so its latency adds to each. Defaults to none
    /// (cosine similarity alone).
    pub fn reranker(&mut self, r: Arc<dyn Reranker>) -> &mut Self {
        self.reranker = Some(r);
        self
    }

    /// The bank.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for weights that are negative or all zero, λ or the relevance
    /// floor outside [0, 1], a prior with a non-positive pseudo-count, a zero half-life or zero candidates.
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
        if !(0.0..=1.0).contains(&c.relevance_floor) {
            return bad(
                "relevance_floor",
                format!("must be in [0, 1], got {}", c.relevance_floor),
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
                reranker: self.reranker.clone(),
                config: self.config.clone(),
            }),
        })
    }
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
    pub reranker: Option<Arc<dyn Reranker>>,
    pub config: Config,
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
            reranker: None,
            config: Config {
                weights: Weights::default(),
                mmr_lambda: DEFAULT_MMR_LAMBDA,
                consolidate_on_learn: false,
                consolidate: ConsolidateOptions::default(),
                prior: Prior::UNIFORM,
                recency_half_life: rank::DEFAULT_RECENCY_HALF_LIFE,
                record_usage: true,
                candidates: DEFAULT_CANDIDATES,
                dedupe_threshold: DEFAULT_DEDUPE_THRESHOLD,
                relevance_floor: DEFAULT_RELEVANCE_FLOOR,
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

    /// The reranker, when one was configured ([`BankBuilder::reranker`]).
    pub fn reranker(&self) -> Option<&Arc<dyn Reranker>> {
        self.inner.reranker.as_ref()
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
    pub(crate) async fn embed(
        &self,
        texts: Vec<String>,
        kind: EmbedKind,
    ) -> Result<Vec<Embedding>> {
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
    /// [`Error::InvalidInput`] for a trajectory that [`Trajectory::validate`] refuses; the
    /// judge's and distiller's errors (nothing is stored then); embedder and storage errors.
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
    /// As [`learn`](Self::learn) (the reason says which attempt); [`Error::InvalidInput`] for
    /// no trajectories or an attempt at another task.
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
        for (i, t) in trajectories.iter().enumerate() {
            let attempt = |reason: String| Error::InvalidInput {
                what: "trajectory",
                reason: format!("attempt {}: {reason}", i + 1),
            };
            t.validate().map_err(|e| match e {
                Error::InvalidInput { reason, .. } => attempt(reason),
                other => other,
            })?;
            if t.task != task {
                return Err(attempt(format!(
                    "`task` is {:?}, not {task:?}: every attempt is at one task",
                    t.task
                )));
            }
        }
        let mut runs = Vec::with_capacity(trajectories.len());
        for t in trajectories {
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
}
