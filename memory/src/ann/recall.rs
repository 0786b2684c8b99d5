//! The recall estimate: how many of a sampled row's exact nearest neighbours the graph finds,
//! measured in the background on the shard's own rows, which `Auto` reads to decide whether
//! the graph is worth searching.

use super::IndexCore;

/// Rows sampled by the recall estimate, and its `k` and beam width (the search default).
const RECALL_SAMPLE: usize = 64;
const RECALL_K: usize = 10;
const RECALL_BEAM: usize = 64;

impl IndexCore {
    /// Measures the graph's recall (see [`Self::estimate_recall`]) and records it; `false`
    /// if it could not (stopped, no graph).
    pub(super) fn measure_recall(&self) -> bool {
        let r = self.estimate_recall();
        if r.is_some() {
            self.ledger_mut().recall = r;
        }
        r.is_some()
    }

    /// Whether the graph is complete and its recall was not measured at about its size.
    pub(super) fn recall_due(&self) -> bool {
        let st = self.ledger();
        let size = self.read_graph().as_ref().map_or(0, |g| g.size());
        st.opened
            && !st.stop
            && st.pending.is_empty()
            && st.removed.is_empty()
            && size >= RECALL_SAMPLE * 4
            && st.recall.is_none_or(|(_, at)| size.abs_diff(at) > at / 10)
    }

    /// Measures the graph's recall on the shard's own rows: for rows spread evenly over the
    /// arena, the share of their `RECALL_K` exact nearest neighbours (the row itself left
    /// out) among the graph's `RECALL_BEAM` candidates, which is the recall of a search at
    /// the default beam (candidates are rescored exactly). One exact scan per sampled row,
    /// on this thread, taking the arena's lock only for the scan. `None` if stopped or
    /// the graph went away meanwhile. Returns the estimate and the graph size it was
    /// measured at.
    pub(super) fn estimate_recall(&self) -> Option<(f32, usize)> {
        let (mut found, mut total) = (0usize, 0usize);
        let mut size = 0;
        for i in 0..RECALL_SAMPLE {
            if self.ledger().stop {
                return None;
            }
            let (rowid, query, exact) = {
                let arena = self.read_arena();
                let n = arena.len();
                if n <= RECALL_K {
                    return None;
                }
                let slot = i * n / RECALL_SAMPLE;
                let q = arena.vector(slot).to_vec();
                let rowid = arena.rowid_at(slot);
                let exact: Vec<i64> = arena
                    .top_k(&q, RECALL_K + 1, f32::NEG_INFINITY, None, 1)
                    .into_iter()
                    .map(|h| h.rowid)
                    .filter(|&r| r != rowid)
                    .take(RECALL_K)
                    .collect();
                (rowid, q, exact)
            };
            let graph = self.read_graph();
            let index = graph.as_ref()?;
            size = index.size();
            let matches = {
                let _ctx = self.contexts.acquire();
                index.search(&query, RECALL_BEAM + 1).ok()?
            };
            let keys: std::collections::HashSet<i64> = matches
                .keys
                .iter()
                .map(|&k| k as i64)
                .filter(|&r| r != rowid)
                .collect();
            total += exact.len();
            found += exact.iter().filter(|r| keys.contains(r)).count();
        }
        (total > 0).then(|| (found as f32 / total as f32, size))
    }
}
