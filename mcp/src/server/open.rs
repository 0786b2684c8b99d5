//! Opening the server, and the agents and shards its tools reach: an agent's memory (opened
//! on first use; a read of an agent that has none is an error, never an empty memory
//! created for a typo) and raw-vector shards (never created implicitly).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use reasonbank::embedders::Embedder;
use reasonbank::memory::{Shard, ShardId, ShardOptions, Store, StoreOptions};
use reasonbank::{AgentMemory, Memories};

use super::{MAX_OPEN_AGENTS, Server, State};
use crate::convert::parse_shard_id;

impl Server {
    /// A server over the shards in `root`, acting for `default_agent` unless a call names
    /// another, embedding text with `embedder`. Opens the default agent's memory now, so a
    /// root that cannot be used fails at startup rather than on the first call.
    ///
    /// # Errors
    /// The root cannot be created or read; the default agent's shard holds vectors of another
    /// model; I/O and SQLite errors.
    pub async fn open(
        root: PathBuf,
        default_agent: ShardId,
        embedder: Arc<dyn Embedder>,
        models: crate::RemoteModels,
    ) -> anyhow::Result<Server> {
        let mut opts = StoreOptions::new();
        opts.max_open(64)
            .shard_options(ShardOptions::new().create(false).clone());
        let raw = Store::open(&root, opts)
            .with_context(|| format!("opening shard root {}", root.display()))?;
        let mut builder = Memories::builder(&root);
        builder.embedder(embedder).max_open_shards(MAX_OPEN_AGENTS);
        if let Some((url, model)) = &models.llm {
            builder.llm(url, model).context("--llm-url/--llm-model")?;
        }
        if let Some((url, model)) = &models.rerank {
            builder
                .rerank_server(url, model)
                .context("--rerank-url/--rerank-model")?;
        }
        let memories = builder
            .build_memories()
            .await
            .with_context(|| format!("opening shard root {}", root.display()))?;
        let server = Server {
            state: Arc::new(State {
                root,
                default_agent,
                memories,
                raw: Arc::new(raw),
            }),
            tool_router: Self::tool_router(),
        };
        server.agent(None, false).await?;
        Ok(server)
    }

    /// The memory of `agent` (default: the server's agent), opened on first use. With
    /// `must_exist`, an agent other than the default that has no shard yet is an error, so a
    /// mistyped id in a read does not silently search (and create) an empty memory.
    pub(super) async fn agent(
        &self,
        agent: Option<String>,
        must_exist: bool,
    ) -> anyhow::Result<AgentMemory> {
        let id = match agent {
            Some(a) => parse_shard_id("agent", a)?,
            None => self.state.default_agent.clone(),
        };
        if must_exist && id != self.state.default_agent && !self.state.memories.exists(&id) {
            bail!(
                "agent {:?} has no memory in {} yet; check the id, or write to it first with \
                 memory_remember or memory_learn",
                id.as_str(),
                self.state.root.display()
            );
        }
        self.state
            .memories
            .agent(id.as_str())
            .await
            .with_context(|| format!("opening the memory of agent {:?}", id.as_str()))
    }

    /// Fails unless every shard in `shards` exists: reading another agent's memory must not
    /// create an empty one for a mistyped id.
    pub(super) fn require_existing(&self, shards: &[ShardId]) -> anyhow::Result<()> {
        for s in shards {
            if !self.state.raw.exists(s) {
                bail!(
                    "shards: no agent or shard {:?} in {}; list them with vector_shard_stats",
                    s.as_str(),
                    self.state.root.display()
                );
            }
        }
        Ok(())
    }

    /// An existing raw-vector shard (or any shard: agents' memories are shards too).
    pub(super) async fn raw_shard(&self, shard: String) -> anyhow::Result<(ShardId, Arc<Shard>)> {
        let id = parse_shard_id("shard", shard)?;
        let store = Arc::clone(&self.state.raw);
        let root = self.state.root.clone();
        let for_task = id.clone();
        let shard = tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<Shard>> {
            if !store.exists(&for_task) {
                bail!(
                    "no shard {:?} in {}; create it with vector_shard_create, or list shards \
                     with vector_shard_stats",
                    for_task.as_str(),
                    root.display()
                );
            }
            Ok(store.shard(&for_task)?)
        })
        .await??;
        Ok((id, shard))
    }
}
