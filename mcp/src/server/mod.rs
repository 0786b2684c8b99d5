//! The MCP server: one tool per `AgentMemory` call and four raw-vector shard tools.
//!
//! Every tool answers with a JSON object (as `structuredContent` and as a text block). Every
//! failure the caller can fix (bad arguments, unknown shard or agent, wrong dimensions, invalid
//! filter) is a tool result with `isError: true` and a message that says what was wrong; the
//! server itself never stops on one.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use reasonbank::memory::{
    Embedding, NewRecord, Query, RecordId, SearchOptions, Shard, ShardId, ShardOptions, Store,
};
use reasonbank::reasoning::{ConsolidateOptions, Feedback, Trajectory};
use reasonbank::units::{TimeUnit, duration};
use reasonbank::{Memories, Memory, RecallMode, RecallOptions};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

use crate::convert::{outcome, parse_filter, parse_instant, parse_shard_id, parse_shard_ids};
use crate::describe::*;
use crate::params;

mod open;

/// Name the server gives in `initialize`.
pub const SERVER_NAME: &str = "reasonbank-mcp";

/// Most agents' shards kept open at once by the root handle's store (its LRU closes the least
/// recently used beyond this; a call in flight keeps its shard alive).
const MAX_OPEN_AGENTS: usize = 64;

/// What the tools share.
struct State {
    root: PathBuf,
    default_agent: ShardId,
    /// Every agent's memory: one store, embedder and bank for the root.
    memories: Memories,
    /// Raw-vector shards: opened with the dimensions and model recorded in each file, and
    /// never created implicitly (only `vector_shard_create` creates one).
    raw: Arc<Store>,
}

/// The reasonbank MCP server. Cheap to clone (rmcp clones it per connection).
#[derive(Clone)]
pub struct Server {
    state: Arc<State>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("root", &self.state.root)
            .field("agent", &self.state.default_agent)
            .finish_non_exhaustive()
    }
}

#[tool_router]
impl Server {
    #[tool(
        name = "vector_shard_create",
        description = D_SHARD_CREATE,
        annotations(
            title = "Create a raw-vector shard",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false,
        )
    )]
    async fn vector_shard_create(
        &self,
        Parameters(p): Parameters<params::ShardCreate>,
    ) -> CallToolResult {
        reply(async {
            let id = parse_shard_id("shard", p.shard)?;
            if p.model_id.trim().is_empty() {
                bail!("model_id must not be empty: name the model that makes the vectors");
            }
            let path = self.state.raw.path_of(&id);
            let (dims, model) = (p.dimensions, p.model_id);
            let (existed, stats) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let existed = path.is_file();
                let mut o = ShardOptions::new();
                o.create(true).dimensions(dims).model_id(model);
                let shard = Shard::open(&path, &o)?;
                Ok((existed, shard.stats()?))
            })
            .await??;
            Ok(json!({
                "shard": id, "created": !existed, "dimensions": stats.dimensions,
                "model_id": stats.model_id, "records": stats.records,
            }))
        })
        .await
    }

    #[tool(
        name = "vector_insert",
        description = D_VECTOR_INSERT,
        annotations(
            title = "Insert a raw vector",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false,
        )
    )]
    async fn vector_insert(
        &self,
        Parameters(p): Parameters<params::VectorInsert>,
    ) -> CallToolResult {
        reply(async {
            let (id, shard) = self.raw_shard(p.shard).await?;
            let mut rec = NewRecord::new(
                p.text.unwrap_or_default(),
                Embedding::new(p.vector).context("vector")?,
            );
            if let Some(m) = p.metadata {
                rec.metadata(m);
            }
            if let Some(k) = p.kind {
                rec.kind(k);
            }
            if let Some(r) = p.id {
                rec.id(r.parse::<RecordId>()?);
            }
            let rid = tokio::task::spawn_blocking(move || shard.insert(&rec)).await??;
            Ok(json!({ "shard": id, "id": rid }))
        })
        .await
    }

    #[tool(
        name = "vector_search",
        description = D_VECTOR_SEARCH,
        annotations(
            title = "Search a shard by vector",
            read_only_hint = true,
            open_world_hint = false,
        )
    )]
    async fn vector_search(
        &self,
        Parameters(p): Parameters<params::VectorSearch>,
    ) -> CallToolResult {
        reply(async {
            let filter = parse_filter(p.filter)?;
            let (id, shard) = self.raw_shard(p.shard).await?;
            let query = Query::vector(Embedding::new(p.vector).context("vector")?);
            let mut o = SearchOptions::new(p.k.unwrap_or(10));
            if let Some(t) = p.threshold {
                o.threshold(t);
            }
            if let Some(f) = filter {
                o.filter(f);
            }
            let hits = tokio::task::spawn_blocking(move || shard.search(&query, &o)).await??;
            let results: Vec<Value> = hits
                .into_iter()
                .map(|h| {
                    let r = h.record;
                    json!({
                        "id": h.id, "score": h.score, "text": r.text, "kind": r.kind,
                        "namespace": r.namespace, "metadata": r.metadata,
                        "created_at": r.created_at, "updated_at": r.updated_at,
                    })
                })
                .collect();
            Ok(json!({ "shard": id, "results": results }))
        })
        .await
    }

    #[tool(
        name = "vector_sync_shard",
        description = D_SYNC_SHARD,
        annotations(
            title = "Sync a shard with a peer",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true,
        )
    )]
    async fn vector_sync_shard(
        &self,
        Parameters(p): Parameters<params::SyncShard>,
    ) -> CallToolResult {
        use reasonbank::sync::Fingerprint;
        use reasonbank::{Identity, SyncDirection, SyncRequest};
        reply(async {
            let (id, _shard) = self.raw_shard(p.shard).await?;
            let _: std::net::SocketAddr = p.peer.parse().with_context(|| {
                format!(
                    "argument peer: {:?} is not an address like 10.0.0.5:7700",
                    p.peer
                )
            })?;
            let trust: Fingerprint = p.trust.parse().context("argument trust")?;
            let direction = match p.direction.as_deref() {
                Some(d) => d
                    .parse::<SyncDirection>()
                    .map_err(|e| anyhow!("argument direction: {e}"))?,
                None => SyncDirection::Both,
            };
            let root = self.state.root.clone();
            let dir = p.identity.map(PathBuf::from);
            let identity = tokio::task::spawn_blocking(move || {
                Identity::resolve(&root, dir.as_deref(), None, None)
            })
            .await??;
            let mut request = SyncRequest::new(p.peer, trust);
            request.direction(direction).shards(vec![id.clone()]);
            let outcome =
                reasonbank::sync_store(Arc::clone(&self.state.raw), &request, &identity, None)
                    .await?
                    .pop()
                    .context("the sync reported no shard")?;
            Ok(reasonbank::report_json(&id, &outcome.result?))
        })
        .await
    }

    #[tool(
        name = "vector_shard_stats",
        description = D_SHARD_STATS,
        annotations(
            title = "Describe shards",
            read_only_hint = true,
            open_world_hint = false,
        )
    )]
    async fn vector_shard_stats(
        &self,
        Parameters(p): Parameters<params::ShardStats>,
    ) -> CallToolResult {
        reply(async {
            let ids = match p.shard {
                Some(s) => vec![self.raw_shard(s).await?.0],
                None => {
                    let store = Arc::clone(&self.state.raw);
                    tokio::task::spawn_blocking(move || store.list()).await??
                }
            };
            let store = Arc::clone(&self.state.raw);
            let shards = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Value>> {
                ids.into_iter()
                    .map(|id| {
                        let stats = store
                            .shard(&id)
                            .and_then(|s| s.stats())
                            .with_context(|| format!("shard {:?}", id.as_str()))?;
                        let mut v = serde_json::to_value(stats)?;
                        v["shard"] = json!(id);
                        Ok(v)
                    })
                    .collect()
            })
            .await??;
            Ok(json!({ "root": self.state.root, "shards": shards }))
        })
        .await
    }

    #[tool(
        name = "memory_remember",
        description = D_REMEMBER,
        annotations(
            title = "Remember",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false,
        )
    )]
    async fn memory_remember(&self, Parameters(p): Parameters<params::Remember>) -> CallToolResult {
        reply(async {
            let memory = self.agent(p.agent, false).await?;
            let at = parse_instant("at", p.at)?;
            let m = Memory::from_parts(p.text, p.metadata, p.kind, p.namespace).created_at(at);
            let ids = memory.remember_batch(vec![m]).await?;
            Ok(json!({ "agent": memory.agent(), "id": ids.first() }))
        })
        .await
    }

    #[tool(
        name = "memory_recall",
        description = D_RECALL,
        annotations(
            title = "Recall memories",
            read_only_hint = true,
            open_world_hint = false,
        )
    )]
    async fn memory_recall(&self, Parameters(p): Parameters<params::Recall>) -> CallToolResult {
        reply(async {
            let mut o = RecallOptions::new();
            o.k(p.k.unwrap_or(5))
                .mode(match p.mode.unwrap_or_default() {
                    params::Mode::Hybrid => RecallMode::Hybrid,
                    params::Mode::Vector => RecallMode::Vector,
                    params::Mode::Text => RecallMode::Text,
                });
            if let Some(t) = p.threshold {
                o.threshold(t);
            }
            if let Some(n) = p.rerank {
                o.rerank(n);
            }
            if let Some(f) = parse_filter(p.filter)? {
                o.filter(f);
            }
            if let Some(t) = parse_instant("since", p.since)? {
                o.since(t);
            }
            if let Some(t) = parse_instant("until", p.until)? {
                o.until(t);
            }
            let others = parse_shard_ids(p.shards)?;
            self.require_existing(&others)?;
            o.shards(others)
                .kinds(p.kinds.unwrap_or_default())
                .include_inactive(p.include_inactive.unwrap_or(false));
            let memory = self.agent(p.agent, true).await?;
            let hits = memory.recall(&p.query, &o).await?;
            // `Recalled` names its shard `shard`; here every other argument says `agent`. The
            // creation time is also given as a date-time, which a model reads at sight.
            let results = hits
                .into_iter()
                .map(|h| {
                    let created = reasonbank::units::rfc3339(h.created_at);
                    let mut v = serde_json::to_value(&h)?;
                    if let Some(obj) = v.as_object_mut() {
                        if let Some(s) = obj.remove("shard") {
                            obj.insert("agent".into(), s);
                        }
                        obj.insert("created".into(), created.into());
                    }
                    Ok(v)
                })
                .collect::<anyhow::Result<Vec<Value>>>()?;
            Ok(json!({ "agent": memory.agent(), "results": results }))
        })
        .await
    }

    #[tool(
        name = "memory_learn",
        description = D_LEARN,
        annotations(
            title = "Learn from a task",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false,
        )
    )]
    async fn memory_learn(&self, Parameters(p): Parameters<params::Learn>) -> CallToolResult {
        reply(async {
            let mut t = Trajectory::new(p.task);
            for s in p.steps {
                t.step(s.action, s.observation);
            }
            if let Some(a) = p.answer {
                t.answer(a);
            }
            if let Some(o) = p.outcome {
                t.outcome(outcome(o));
            }
            if let Some(r) = p.reward {
                t.reward(r);
            }
            // Checked before the agent is opened (and maybe created).
            t.validate()?;
            let memory = self.agent(p.agent, false).await?;
            let report = memory.learn(&t).await?;
            let mut v = serde_json::to_value(&report)?;
            v["agent"] = json!(memory.agent());
            Ok(v)
        })
        .await
    }

    #[tool(
        name = "memory_feedback",
        description = D_FEEDBACK,
        annotations(
            title = "Feedback on a memory item",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false,
        )
    )]
    async fn memory_feedback(
        &self,
        Parameters(p): Parameters<params::FeedbackArgs>,
    ) -> CallToolResult {
        reply(async {
            let id: RecordId = p.id.parse()?;
            let fb = match (p.outcome, p.reward) {
                (Some(params::Outcome::Success), None) => Feedback::Success,
                (Some(params::Outcome::Failure), None) => Feedback::Failure,
                (None, Some(r)) if (0.0..=1.0).contains(&r) => Feedback::Reward(r),
                (None, Some(r)) => bail!("reward must be in [0, 1], got {r}"),
                (None, None) => bail!("give outcome (success or failure) or reward (0 to 1)"),
                (Some(_), Some(_)) => bail!("give outcome or reward, not both"),
            };
            let memory = self.agent(p.agent, true).await?;
            let item = memory.feedback(id, fb).await?;
            Ok(serde_json::to_value(&item)?)
        })
        .await
    }

    #[tool(
        name = "memory_find_patterns",
        description = D_FIND_PATTERNS,
        annotations(
            title = "Find learned patterns",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false,
        )
    )]
    async fn memory_find_patterns(
        &self,
        Parameters(p): Parameters<params::FindPatterns>,
    ) -> CallToolResult {
        reply(async {
            let memory = self.agent(p.agent, true).await?;
            let items = memory
                .find_similar_patterns(&p.task, p.threshold.unwrap_or(0.0), p.k.unwrap_or(5))
                .await?;
            Ok(json!({ "agent": memory.agent(), "items": items }))
        })
        .await
    }

    #[tool(
        name = "memory_consolidate",
        description = D_CONSOLIDATE,
        annotations(
            title = "Consolidate learned items",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false,
        )
    )]
    async fn memory_consolidate(
        &self,
        Parameters(p): Parameters<params::Consolidate>,
    ) -> CallToolResult {
        reply(async {
            let memory = self.agent(p.agent, true).await?;
            // ConsolidateOptions checks every value, naming it; only the unit is ours.
            let mut o = ConsolidateOptions::new();
            o.dry_run(p.dry_run);
            if let Some(t) = p.duplicate_threshold {
                o.duplicate_threshold(t);
            }
            if let Some(t) = p.contradiction_threshold {
                o.contradiction_threshold(t);
            }
            if let Some(d) = p.decay_half_life_days {
                o.evidence_half_life(duration("decay_half_life_days", d, TimeUnit::Days)?);
            }
            if let Some(c) = p.prune_below_confidence {
                o.prune_below_confidence(c);
            }
            if let Some(n) = p.prune_min_evidence {
                o.prune_min_evidence(n);
            }
            if let Some(d) = p.prune_idle_days {
                o.prune_idle(duration("prune_idle_days", d, TimeUnit::Days)?);
            }
            let report = memory.consolidate(&o).await?;
            let mut v = serde_json::to_value(&report)?;
            v["agent"] = json!(memory.agent());
            Ok(v)
        })
        .await
    }

    #[tool(
        name = "memory_get",
        description = D_GET,
        annotations(
            title = "Get a memory",
            read_only_hint = true,
            open_world_hint = false,
        )
    )]
    async fn memory_get(&self, Parameters(p): Parameters<params::ById>) -> CallToolResult {
        reply(async {
            let id: RecordId = p.id.parse()?;
            let memory = self.agent(p.agent, true).await?;
            let record = memory
                .get(id)
                .await?
                .ok_or_else(|| anyhow!("no memory {id} in agent {:?}", memory.agent().as_str()))?;
            let mut v = serde_json::to_value(&record)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("embedding");
            }
            v["agent"] = json!(memory.agent());
            // The times as date-times too, which a model reads at sight.
            v["created"] = json!(reasonbank::units::rfc3339(record.created_at));
            v["updated"] = json!(reasonbank::units::rfc3339(record.updated_at));
            Ok(v)
        })
        .await
    }

    #[tool(
        name = "memory_update",
        description = D_UPDATE,
        annotations(
            title = "Update a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false,
        )
    )]
    async fn memory_update(&self, Parameters(p): Parameters<params::Update>) -> CallToolResult {
        reply(async {
            let id: RecordId = p.id.parse()?;
            if p.text.is_none() && p.metadata.is_none() {
                bail!("give text, metadata or both");
            }
            let memory = self.agent(p.agent, true).await?;
            memory.update(id, p.text.as_deref(), p.metadata).await?;
            Ok(json!({ "agent": memory.agent(), "updated": id }))
        })
        .await
    }

    #[tool(
        name = "memory_forget",
        description = D_FORGET,
        annotations(
            title = "Forget a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false,
        )
    )]
    async fn memory_forget(&self, Parameters(p): Parameters<params::ById>) -> CallToolResult {
        reply(async {
            let id: RecordId = p.id.parse()?;
            let memory = self.agent(p.agent, true).await?;
            if !memory.forget(id).await? {
                bail!("no memory {id} in agent {:?}", memory.agent().as_str());
            }
            Ok(json!({ "agent": memory.agent(), "forgotten": id }))
        })
        .await
    }

    #[tool(
        name = "memory_contradictions",
        description = D_CONTRADICTIONS,
        annotations(
            title = "List contradictions",
            read_only_hint = true,
            open_world_hint = false,
        )
    )]
    async fn memory_contradictions(
        &self,
        Parameters(p): Parameters<params::Contradictions>,
    ) -> CallToolResult {
        reply(async {
            let memory = self.agent(p.agent, true).await?;
            let pairs = memory.contradictions().await?;
            Ok(json!({ "agent": memory.agent(), "contradictions": pairs }))
        })
        .await
    }

    #[tool(
        name = "memory_synthesize_context",
        description = D_SYNTHESIZE,
        annotations(
            title = "Synthesize context",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false,
        )
    )]
    async fn memory_synthesize_context(
        &self,
        Parameters(p): Parameters<params::Synthesize>,
    ) -> CallToolResult {
        reply(async {
            let others = parse_shard_ids(p.shards)?;
            self.require_existing(&others)?;
            let memory = self.agent(p.agent, true).await?;
            let ctx = memory
                .synthesize_context(&p.task, &others, p.token_budget.unwrap_or(512))
                .await?;
            let mut v = serde_json::to_value(&ctx)?;
            v["agent"] = json!(memory.agent());
            Ok(v)
        })
        .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Agent memory that learns (reasonbank). Your memory is agent {:?}. At the start \
                 of a task call memory_recall (facts) and memory_find_patterns or \
                 memory_synthesize_context (learned strategies); store facts worth keeping with \
                 memory_remember; after a task call memory_learn with what you did and whether it \
                 worked, and memory_feedback on the items you used. vector_* tools are for raw \
                 vectors you embed yourself.",
                self.state.default_agent.as_str()
            ))
    }
}

/// Runs a tool body: `Ok(value)` becomes a structured result, `Err(e)` a tool error whose text
/// is the whole cause chain (`what: why: root cause`).
async fn reply(body: impl Future<Output = anyhow::Result<Value>>) -> CallToolResult {
    match body.await {
        Ok(v) => structured(v),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("{e:#}"))]),
    }
}

fn structured(v: Value) -> CallToolResult {
    if v.is_object() {
        CallToolResult::structured(v)
    } else {
        CallToolResult::success(vec![ContentBlock::text(v.to_string())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_from_objects_and_strings() {
        let obj = json!({"eq": {"field": "topic", "value": "http"}});
        let a = parse_filter(Some(obj.clone())).unwrap().unwrap();
        let b = parse_filter(Some(Value::String(obj.to_string())))
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert!(parse_filter(None).unwrap().is_none());
        assert!(parse_filter(Some(Value::Null)).unwrap().is_none());
    }

    #[test]
    fn bad_filters_name_the_argument() {
        for bad in [json!({"bogus": 1}), json!("{not json"), json!(42)] {
            let e = format!("{:#}", parse_filter(Some(bad)).unwrap_err());
            assert!(e.starts_with("argument filter"), "{e}");
        }
    }

    #[test]
    fn hostile_shard_ids_are_refused() {
        for id in ["../x", "a/b", "..", "", "x\0y"] {
            assert!(parse_shard_id("shard", id.into()).is_err(), "{id:?}");
        }
        assert!(parse_shard_ids(Some(vec!["ok".into(), "../../etc".into()])).is_err());
    }
}
