//! [`Memories`]: a root of agent memories (one store, one embedder, one ReasoningBank) and a
//! cheap [`AgentMemory`] per agent in it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::embedders::{Embedder, Reranker};
use crate::memory::{ShardId, Store};
use crate::reasoning::ReasoningBank;
use crate::{AgentMemory, AgentMemoryBuilder, Result};

/// What every agent of one root shares: one store (with its LRU of open shards), one
/// embedder, one ReasoningBank.
pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    pub(crate) bank: ReasoningBank,
    pub(crate) store: Arc<Store>,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) recency_half_life: Duration,
}

/// A root of agent memories: one store, one embedder and one ReasoningBank shared by every
/// agent in it, and a cheap [`agent`](Self::agent) per call. Servers and front ends that act
/// for many agents (the MCP server, a hub, the bindings) hold one of these instead of an
/// `AgentMemory` per agent. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> reasonbank::Result<()> {
/// use reasonbank::Memories;
/// let root = Memories::builder("memories").build_memories().await?;   // loads the model once
/// let coder = root.agent("coder").await?;
/// let reviewer = root.agent("reviewer").await?;
/// coder.remember("Retry flaky HTTP calls with backoff", serde_json::json!({})).await?;
/// # let _ = reviewer;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Memories {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Memories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memories")
            .field("root", &self.shared.root)
            .field("embedder", &self.shared.embedder.model_id())
            .finish_non_exhaustive()
    }
}

impl Memories {
    /// A builder for the root `root` (its `agent` setter does not apply to a root).
    pub fn builder(root: impl Into<PathBuf>) -> AgentMemoryBuilder {
        AgentMemoryBuilder::new(root)
    }

    /// The memory of `agent`, opening (and creating, if missing) its shard; shards stay open
    /// in the store's LRU, so asking again is cheap.
    ///
    /// # Errors
    /// An invalid agent id, a shard made by another model, I/O and SQLite errors.
    pub async fn agent(&self, agent: impl Into<String>) -> Result<AgentMemory> {
        self.open_agent(ShardId::new(agent.into())?).await
    }

    pub(crate) async fn open_agent(&self, agent: ShardId) -> Result<AgentMemory> {
        let store = Arc::clone(&self.shared.store);
        let id = agent.clone();
        let shard = tokio::task::spawn_blocking(move || store.shard(&id)).await??;
        Ok(AgentMemory::new(agent, shard, Arc::clone(&self.shared)))
    }

    /// Whether `agent` has a shard in this root (reads nothing, creates nothing).
    pub fn exists(&self, agent: &ShardId) -> bool {
        self.shared.store.exists(agent)
    }

    /// The directory of shards.
    pub fn root(&self) -> &std::path::Path {
        &self.shared.root
    }

    /// The store holding every agent's shard.
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.shared.embedder
    }

    /// The reranker, when one was configured
    /// ([`AgentMemoryBuilder::reranker`](crate::AgentMemoryBuilder::reranker)).
    pub fn reranker(&self) -> Option<&Arc<dyn Reranker>> {
        self.shared.bank.reranker()
    }

    /// The ReasoningBank over every shard of the root.
    pub fn bank(&self) -> &ReasoningBank {
        &self.shared.bank
    }
}
