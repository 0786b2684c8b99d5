//! [`AnnConfig`]: the tunables of a shard's HNSW index, set through `ShardOptions`.

/// Tunables of the per-shard HNSW index (set through [`ShardOptions`](crate::ShardOptions)).
#[derive(Clone, Debug)]
pub(crate) struct AnnConfig {
    /// Live rows from which the graph is built and `Auto` uses it.
    pub threshold: usize,
    /// HNSW `M`: links per node (twice that on the base layer).
    pub connectivity: usize,
    /// Candidate list size while inserting (`efConstruction`).
    pub expansion_add: usize,
    /// Whether the graph is saved to and loaded from `<shard>.hnsw`.
    pub persist: bool,
    /// Rows folded since the last save after which the file is written again.
    pub save_every: usize,
    /// Rows folded per batch (a batch is added in parallel).
    pub fold_batch: usize,
    /// Threads that add to the graph in parallel.
    pub fold_threads: usize,
}

impl Default for AnnConfig {
    fn default() -> Self {
        AnnConfig {
            threshold: 100_000,
            connectivity: 32,
            expansion_add: 64,
            persist: true,
            save_every: 50_000,
            fold_batch: 4_096,
            fold_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}
