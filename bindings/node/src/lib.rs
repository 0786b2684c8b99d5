//! `reasonbank-node`: the Node.js binding of reasonbank (napi-rs), published to npm as
//! `reasonbank`.
//!
//! It converts arguments and results and runs every call on napi-rs' tokio runtime, so the JS
//! thread never blocks on SQLite, ONNX Runtime or the network; the work itself is the facade's
//! (`reasonbank::AgentMemory`, whose blocking parts already run on tokio's blocking pool). Each
//! method returns a `Promise`; a failure rejects it with an `Error` whose `code` is stable
//! (see [`error::code`]) and whose message holds the whole cause chain.
//!
//! ```js
//! const { AgentMemory } = require('reasonbank')
//! const memory = await AgentMemory.open('memories', 'coder')
//! await memory.remember('Retry flaky HTTP calls with backoff', { topic: 'http' })
//! const hits = await memory.recall('the API timed out', { k: 3 })
//! ```

pub mod error;
pub mod models;
mod open;
mod types;

use reasonbank::units::{TimeUnit, duration};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::{Either, Env, Float32Array, PromiseRaw, ToNapiValue};
use napi_derive::napi;
use reasonbank::Identity;
use reasonbank::embedders::EmbedKind;
use reasonbank::memory::{Filter, RecordId, SearchMode, ShardId};
use reasonbank::reasoning::{Feedback, Trajectory};
use reasonbank::sync::Fingerprint;
use reasonbank::{Grant, Memory, PeerGrant, RecallMode, ShardSync, SyncDirection, SyncRequest};
use serde_json::Value;

use error::Failure;
use open::OpenOptions;
use types::{
    ConsolidateOptions, ConsolidationReport, LearnReport, MemoryInput, MemoryItem, MemoryRecord,
    PatternOptions, RecallOptions, Recalled, RememberOptions, ScoredItem, ServeOptions, ShardStats,
    SyncOptions, SyncReport, SynthesizeOptions, SynthesizedContext, TrajectoryInput, UpdateInput,
};

/// Runs `fut` on napi-rs' tokio runtime and returns a promise of its value; a [`Failure`]
/// rejects the promise with a JS `Error` built on the JS thread (code, message, cause).
fn settle<'env, T, F>(env: &'env Env, fut: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r| {
        r.map_err(|f| f.into_js(env))
    })
}

/// A new sync identity (self-signed certificate and key) named `name` (default `reasonbank`).
#[napi]
pub fn generate_identity(env: &Env, name: Option<String>) -> napi::Result<types::Identity> {
    let run = || -> Result<types::Identity, Failure> {
        let id = Identity::generate(name.as_deref().unwrap_or("reasonbank"))?;
        Ok(types::Identity {
            fingerprint: id.fingerprint()?.to_string(),
            cert_pem: id.cert_pem().to_owned(),
            key_pem: id.key_pem().to_owned(),
        })
    };
    run().map_err(|f| f.into_js(env))
}

/// Runs the MCP server (`reasonbank-mcp`, the same server the Rust binary runs) on this
/// process's stdin/stdout until the client closes the session; resolves to the exit status
/// the binary would return (0 after a clean session, 1 after an error, 2 for bad usage;
/// diagnostics go to stderr). `argv` starts with the program name, e.g.
/// `['reasonbank mcp', '--root', dir]`. The package's `reasonbank mcp` command calls it.
#[napi(ts_return_type = "Promise<number>")]
pub fn run_mcp_server(env: &Env, argv: Vec<String>) -> napi::Result<PromiseRaw<'_, u32>> {
    settle(
        env,
        on_own_thread("reasonbank-mcp", move || reasonbank_mcp::main_with(argv)),
    )
}

/// Runs the `reasonbank` command line (the Rust CLI, `reasonbank::cli::run`) with `argv`
/// (the program name first) and resolves to its exit status: 0 success, 1 error, 2 bad usage,
/// 3 not found. It prints to the process's stdout and stderr and reads its stdin (`learn -`).
/// The package's `reasonbank` bin calls it, so npm and cargo users run one CLI.
#[napi(ts_return_type = "Promise<number>")]
pub fn run_cli(env: &Env, argv: Vec<String>) -> napi::Result<PromiseRaw<'_, u32>> {
    settle(
        env,
        on_own_thread("reasonbank-cli", move || reasonbank::cli::run(argv)),
    )
}

/// Runs `main` (the CLI or the MCP server, each starting a tokio runtime of its own) on a
/// thread of its own rather than a worker of napi-rs' runtime, where starting a runtime would
/// panic, and resolves to its exit status.
async fn on_own_thread(
    name: &str,
    main: impl FnOnce() -> u8 + Send + 'static,
) -> Result<u32, Failure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let code = main();
            // The receiver is gone only if the JS side was torn down; nothing to tell.
            let _ = tx.send(code);
        })
        .map_err(|e| Failure::of(error::code::INTERNAL, &e))?;
    let code = rx
        .await
        .map_err(|e| Failure::of(error::code::INTERNAL, &e))?;
    Ok(u32::from(code))
}

/// Runs blocking work (file hashing, pip, SQLite opens) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::of(error::code::INTERNAL, &e))?
}

fn record_id(id: &str) -> Result<RecordId, Failure> {
    Ok(id.parse::<RecordId>()?)
}

fn shard_ids(ids: Option<Vec<String>>) -> Result<Vec<ShardId>, Failure> {
    ids.unwrap_or_default()
        .into_iter()
        .map(|s| ShardId::new(s).map_err(Failure::from))
        .collect()
}

/// Metadata as the facade takes it: absent means `{}`; anything else is passed on (the facade
/// rejects what is not an object).
fn filter(f: Value) -> Result<Filter, Failure> {
    let text = match f {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Ok(text.parse::<Filter>()?)
}

/// An instant as JavaScript gives it: Unix milliseconds, or text `units::instant` reads
/// (absent: none).
fn instant(what: &'static str, v: Option<Either<f64, String>>) -> Result<Option<i64>, Failure> {
    let Some(v) = v else { return Ok(None) };
    Ok(Some(match v {
        Either::A(ms) => reasonbank::units::instant_from_number(what, ms, TimeUnit::Milliseconds)?,
        Either::B(s) => reasonbank::units::read_instant(what, &s)?,
    }))
}

/// One agent's memory: text remembered and recalled by meaning and words, plus the
/// ReasoningBank (learn from trajectories, feedback, consolidation, context synthesis).
/// Open it with `AgentMemory.open`; every method returns a Promise and may be called
/// concurrently.
#[napi(js_name = "AgentMemory")]
pub struct JsAgentMemory {
    inner: reasonbank::AgentMemory,
    root: PathBuf,
}

#[napi]
impl JsAgentMemory {
    /// Opens the shard of `agent` (default `default`) in the directory `root`, creating both
    /// if missing unless `create: false`, and loads the local embedding model (fetched on
    /// first use unless `allowFetch: false`); `llmUrl` with `llmModel` makes `learn` judge
    /// and distill with that LLM, and `rerankUrl` with `rerankModel` gives `recall`'s
    /// `rerank` and the ReasoningBank's recall a reranker.
    #[napi(ts_return_type = "Promise<AgentMemory>")]
    pub fn open(
        env: &Env,
        root: String,
        agent: Option<String>,
        options: Option<OpenOptions>,
    ) -> napi::Result<PromiseRaw<'_, JsAgentMemory>> {
        let o = options.unwrap_or_default();
        settle(env, async move {
            let inner = o.builder(&root, agent)?.build().await?;
            Ok(JsAgentMemory {
                inner,
                root: PathBuf::from(root),
            })
        })
    }

    /// The agent's id (its shard).
    #[napi(getter)]
    pub fn agent(&self) -> String {
        self.inner.agent().to_string()
    }

    /// The directory of shards.
    #[napi(getter)]
    pub fn root(&self) -> String {
        self.root.display().to_string()
    }

    /// The embedding model's id (recorded in every shard it writes).
    #[napi(getter)]
    pub fn model_id(&self) -> String {
        self.inner.embedder().model_id().to_owned()
    }

    /// Dimensions of the embedding vectors.
    #[napi(getter)]
    pub fn dimensions(&self) -> u32 {
        u32::try_from(self.inner.embedder().dimensions()).unwrap_or(u32::MAX)
    }

    /// Remembers `text` with `metadata` (an object, default `{}`); resolves to its id.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn remember<'env>(
        &self,
        env: &'env Env,
        text: String,
        #[napi(ts_arg_type = "Record<string, unknown>")] metadata: Option<Value>,
        options: Option<RememberOptions>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let mem = self.inner.clone();
        let o = options.unwrap_or_default();
        settle(env, async move {
            let at = instant("createdAt", o.created_at)?;
            let m = Memory::from_parts(text, metadata, o.kind, o.namespace).created_at(at);
            let ids = mem.remember_batch(vec![m]).await?;
            ids.first()
                .map(ToString::to_string)
                .ok_or_else(|| Failure::new(error::code::INTERNAL, "remember stored no record"))
        })
    }

    /// Remembers many memories in one transaction (all or none); resolves to their ids in order.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn remember_batch<'env>(
        &self,
        env: &'env Env,
        memories: Vec<MemoryInput>,
    ) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let mem = self.inner.clone();
        settle(env, async move {
            let batch = memories
                .into_iter()
                .map(|i| {
                    let at = instant("createdAt", i.created_at)?;
                    Ok(Memory::from_parts(i.text, i.metadata, i.kind, i.namespace).created_at(at))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let ids = mem.remember_batch(batch).await?;
            Ok(ids.iter().map(ToString::to_string).collect())
        })
    }

    /// The memories that best match `query` (none is an empty array, never an error).
    #[napi(ts_return_type = "Promise<Recalled[]>")]
    pub fn recall<'env>(
        &self,
        env: &'env Env,
        query: String,
        options: Option<RecallOptions>,
    ) -> napi::Result<PromiseRaw<'env, Vec<Recalled>>> {
        let mem = self.inner.clone();
        let o = options.unwrap_or_default();
        settle(env, async move {
            let mut ro = reasonbank::RecallOptions::new();
            if let Some(k) = o.k {
                ro.k(k as usize);
            }
            if let Some(t) = o.threshold {
                ro.threshold(t as f32);
            }
            if let Some(f) = o.filter {
                ro.filter(filter(f)?);
            }
            if let Some(m) = o.mode {
                ro.mode(m.parse::<RecallMode>()?);
            }
            if let Some(s) = o.search {
                ro.search_mode(s.parse::<SearchMode>()?);
            }
            ro.shards(shard_ids(o.shards)?);
            if let Some(k) = o.kinds {
                ro.kinds(k);
            }
            if let Some(i) = o.include_inactive {
                ro.include_inactive(i);
            }
            if let Some(n) = o.rerank {
                ro.rerank(n as usize);
            }
            if let Some(t) = instant("since", o.since)? {
                ro.since(t);
            }
            if let Some(t) = instant("until", o.until)? {
                ro.until(t);
            }
            let hits = mem.recall(&query, &ro).await?;
            Ok(hits.into_iter().map(Into::into).collect())
        })
    }

    /// The memory `id` with its embedding, or `null` if absent or forgotten.
    #[napi(ts_return_type = "Promise<MemoryRecord | null>")]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, Option<MemoryRecord>>> {
        let mem = self.inner.clone();
        settle(env, async move {
            Ok(mem.get(record_id(&id)?).await?.map(Into::into))
        })
    }

    /// Changes a memory's text (re-embedding it) and/or metadata; rejects with `RB_NOT_FOUND`
    /// for an unknown id.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn update<'env>(
        &self,
        env: &'env Env,
        id: String,
        changes: UpdateInput,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let mem = self.inner.clone();
        settle(env, async move {
            let id = record_id(&id)?;
            mem.update(id, changes.text.as_deref(), changes.metadata)
                .await?;
            Ok(())
        })
    }

    /// Forgets memory `id`; resolves to whether it existed.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn forget<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, bool>> {
        let mem = self.inner.clone();
        settle(env, async move { Ok(mem.forget(record_id(&id)?).await?) })
    }

    /// Embeds texts with this memory's model: one unit-length `Float32Array` per text.
    /// `kind` is `document` (the default) or `query`.
    #[napi(ts_return_type = "Promise<Float32Array[]>")]
    pub fn embed<'env>(
        &self,
        env: &'env Env,
        texts: Vec<String>,
        #[napi(ts_arg_type = "'document' | 'query'")] kind: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, Vec<Float32Array>>> {
        let embedder = Arc::clone(self.inner.embedder());
        settle(env, async move {
            let kind = match kind.as_deref() {
                None | Some("document") => EmbedKind::Document,
                Some("query") => EmbedKind::Query,
                Some(k) => {
                    return Err(Failure::invalid(format!(
                        "embed kind {k:?} is not one of document, query"
                    )));
                }
            };
            let vectors = embedder.embed(&texts, kind).await?;
            Ok(vectors.into_iter().map(Float32Array::new).collect())
        })
    }

    /// Learns from a finished task: judges it, stores it as an experience and distills
    /// strategies (from successes) or pitfalls (from failures) into this agent's shard.
    #[napi(ts_return_type = "Promise<LearnReport>")]
    pub fn learn<'env>(
        &self,
        env: &'env Env,
        trajectory: TrajectoryInput,
    ) -> napi::Result<PromiseRaw<'env, LearnReport>> {
        let mem = self.inner.clone();
        settle(env, async move {
            let t = trajectory_of(&trajectory)?;
            Ok(mem.learn(&t).await?.into())
        })
    }

    /// Learns from several attempts at one task by contrasting successes with failures (MaTTS).
    #[napi(ts_return_type = "Promise<LearnReport>")]
    pub fn learn_contrastive<'env>(
        &self,
        env: &'env Env,
        task: String,
        trajectories: Vec<TrajectoryInput>,
    ) -> napi::Result<PromiseRaw<'env, LearnReport>> {
        let mem = self.inner.clone();
        settle(env, async move {
            let runs = trajectories
                .iter()
                .map(trajectory_of)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(mem.learn_contrastive(&task, &runs).await?.into())
        })
    }

    /// Records whether memory item `id` helped: `'success'`, `'failure'` or a reward in
    /// [0, 1]; resolves to the item with its new confidence.
    #[napi(ts_return_type = "Promise<MemoryItem>")]
    pub fn feedback<'env>(
        &self,
        env: &'env Env,
        id: String,
        #[napi(ts_arg_type = "'success' | 'failure' | number")] verdict: Either<String, f64>,
    ) -> napi::Result<PromiseRaw<'env, MemoryItem>> {
        let mem = self.inner.clone();
        settle(env, async move {
            let fb = match verdict {
                Either::A(s) if s == "success" => Feedback::Success,
                Either::A(s) if s == "failure" => Feedback::Failure,
                Either::A(s) => {
                    return Err(Failure::invalid(format!(
                        "feedback {s:?} is not success, failure or a reward in [0, 1]"
                    )));
                }
                Either::B(r) => Feedback::Reward(r as f32),
            };
            Ok(mem.feedback(record_id(&id)?, fb).await?.into())
        })
    }

    /// Merges near-duplicate items (keeping provenance), flags contradictions, decays and
    /// prunes as `options` say.
    #[napi(ts_return_type = "Promise<ConsolidationReport>")]
    pub fn consolidate<'env>(
        &self,
        env: &'env Env,
        options: Option<ConsolidateOptions>,
    ) -> napi::Result<PromiseRaw<'env, ConsolidationReport>> {
        let mem = self.inner.clone();
        let o = options.unwrap_or_default();
        settle(env, async move {
            let mut co = reasonbank::reasoning::ConsolidateOptions::new();
            if let Some(d) = o.dry_run {
                co.dry_run(d);
            }
            if let Some(t) = o.duplicate_threshold {
                co.duplicate_threshold(t as f32);
            }
            if let Some(t) = o.contradiction_threshold {
                co.contradiction_threshold(t as f32);
            }
            if let Some(h) = o.evidence_half_life_ms {
                co.evidence_half_life(duration("evidenceHalfLifeMs", h, TimeUnit::Milliseconds)?);
            }
            if let Some(c) = o.prune_below_confidence {
                co.prune_below_confidence(c as f32);
            }
            if let Some(n) = o.prune_min_evidence {
                co.prune_min_evidence(n);
            }
            if let Some(i) = o.prune_idle_ms {
                co.prune_idle(duration("pruneIdleMs", i, TimeUnit::Milliseconds)?);
            }
            Ok(mem.consolidate(&co).await?.into())
        })
    }

    /// The contradictions consolidation flagged between this agent's active items, each pair
    /// once, for review (nothing is resolved automatically).
    #[napi(ts_return_type = "Promise<Contradiction[]>")]
    pub fn contradictions<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Vec<types::Contradiction>>> {
        let mem = self.inner.clone();
        settle(env, async move {
            Ok(mem
                .contradictions()
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The memory items most useful for `task` (similarity, recency, reliability; diversified).
    /// With `open`'s `rerankUrl`, the reranker orders the best candidates, and each item it
    /// scored has that score as `rerank`.
    #[napi(ts_return_type = "Promise<ScoredItem[]>")]
    pub fn find_similar_patterns<'env>(
        &self,
        env: &'env Env,
        task: String,
        options: Option<PatternOptions>,
    ) -> napi::Result<PromiseRaw<'env, Vec<ScoredItem>>> {
        let mem = self.inner.clone();
        let o = options.unwrap_or_default();
        settle(env, async move {
            let items = mem
                .find_similar_patterns(
                    &task,
                    o.threshold.unwrap_or(0.0) as f32,
                    o.k.unwrap_or(5) as usize,
                )
                .await?;
            Ok(items.into_iter().map(Into::into).collect())
        })
    }

    /// A prompt-ready block of the items most useful for `task`, from this agent and
    /// `options.shards`, within `options.tokenBudget` tokens (default 512).
    #[napi(ts_return_type = "Promise<SynthesizedContext>")]
    pub fn synthesize_context<'env>(
        &self,
        env: &'env Env,
        task: String,
        options: Option<SynthesizeOptions>,
    ) -> napi::Result<PromiseRaw<'env, SynthesizedContext>> {
        let mem = self.inner.clone();
        let o = options.unwrap_or_default();
        settle(env, async move {
            let others = shard_ids(o.shards)?;
            let budget = o.token_budget.unwrap_or(512) as usize;
            Ok(mem.synthesize_context(&task, &others, budget).await?.into())
        })
    }

    /// Counts, sizes and model of this agent's shard.
    #[napi(ts_return_type = "Promise<ShardStats>")]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ShardStats>> {
        let mem = self.inner.clone();
        settle(env, async move { Ok(mem.stats().await?.into()) })
    }

    /// Syncs shards (default: this agent's) with a peer over QUIC (mutual TLS, the peer pinned
    /// by `trust`); resolves to one report per shard.
    #[napi(ts_return_type = "Promise<SyncReport[]>")]
    pub fn sync<'env>(
        &self,
        env: &'env Env,
        options: SyncOptions,
    ) -> napi::Result<PromiseRaw<'env, Vec<SyncReport>>> {
        let mem = self.inner.clone();
        let root = self.root.clone();
        settle(env, sync_shards(mem, root, options))
    }

    /// Serves this memory's store (every agent's shard in `root`) to the peers in
    /// `options.peers`, with their grants: a hub other memories `sync` with.
    #[napi(ts_return_type = "Promise<SyncServer>")]
    pub fn serve<'env>(
        &self,
        env: &'env Env,
        options: ServeOptions,
    ) -> napi::Result<PromiseRaw<'env, JsSyncServer>> {
        let store = Arc::clone(self.inner.store());
        settle(env, async move {
            let listen: SocketAddr = options.listen.parse().map_err(|e| {
                Failure::invalid(format!("listen address {:?}: {e}", options.listen))
            })?;
            let peers = options
                .peers
                .iter()
                .map(|p| {
                    Ok(PeerGrant {
                        fingerprint: p.fingerprint.clone(),
                        shards: p.shards.clone().unwrap_or_else(|| vec!["*".to_owned()]),
                        access: p.access.parse::<Grant>().map_err(|e| {
                            Failure::from(e).context(format!("peer {}", p.fingerprint))
                        })?,
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let cfg = Identity::from_pem(options.cert_pem, options.key_pem).hub_config(&peers)?;
            let fingerprint = cfg.fingerprint().to_string();
            let server = reasonbank::sync::SyncServer::bind(listen, store, cfg)?;
            let address = server.local_addr()?.to_string();
            Ok(JsSyncServer {
                server,
                address,
                fingerprint,
            })
        })
    }
}

/// A trajectory from its JS shape, checked by the reasoning crate's own deserializer.
fn trajectory_of(t: &TrajectoryInput) -> Result<Trajectory, Failure> {
    let v = serde_json::to_value(t).map_err(|e| Failure::invalid(format!("trajectory: {e}")))?;
    serde_json::from_value(v).map_err(|e| Failure::of(error::code::INVALID_INPUT, &e))
}

async fn sync_shards(
    mem: reasonbank::AgentMemory,
    root: PathBuf,
    o: SyncOptions,
) -> Result<Vec<SyncReport>, Failure> {
    let mut request = SyncRequest::new(o.peer.clone(), o.trust.parse::<Fingerprint>()?);
    if let Some(d) = &o.direction {
        request.direction(d.parse::<SyncDirection>()?);
    }
    request.shards(shard_ids(o.shards.clone())?);
    let (dir, cert, key) = (o.identity_dir.map(PathBuf::from), o.cert_pem, o.key_pem);
    let id = blocking(move || Ok(Identity::resolve(&root, dir.as_deref(), cert, key)?)).await?;
    let reports = ShardSync::all(mem.sync(&request, &id).await?)?;
    Ok(reports
        .iter()
        .map(|(shard, r)| SyncReport::new(shard.to_string(), r))
        .collect())
}

/// A running sync hub (see `AgentMemory.serve`). It stops on `close()` or when collected.
#[napi(js_name = "SyncServer")]
pub struct JsSyncServer {
    server: reasonbank::sync::SyncServer,
    address: String,
    fingerprint: String,
}

#[napi]
impl JsSyncServer {
    /// The address it listens on, `ip:port`.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Its certificate fingerprint: what peers pass as `trust`.
    #[napi(getter)]
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Stops accepting connections and closes the open ones.
    #[napi]
    pub fn close(&self) {
        self.server.close();
    }
}
