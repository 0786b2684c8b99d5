//! The fold thread: it waits for pending rows, adds them to the graph in parallel batches on
//! a process-wide pool, takes deleted rows out, saves the file now and then, and rebuilds a
//! graph worn by removals.

use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;

use super::file::HEADER_LEN;
use super::{Graph, IndexCore, IndexError, context_count, new_index};

/// The threads that add rows to graphs, shared by every shard of the process and separate
/// from rayon's global pool, which searches use. One per core: folding is background work,
/// and searches on the global pool keep their threads (the OS shares the cores).
fn fold_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            .thread_name(|i| format!("reasonbank-fold-{i}"))
            .build()
            // Building a pool fails only if the OS refuses to spawn threads; rayon's
            // global pool would have failed the same way.
            .expect("spawning the index fold threads")
    })
}

impl IndexCore {
    /// The fold thread: waits for work, folds batches, saves now and then, and on stop
    /// saves what it has (so the next open loads instead of rebuilding).
    pub(super) fn fold_loop(self: Arc<Self>) {
        loop {
            let (stop, work) = {
                let st = self.ledger();
                (st.stop, st.has_work(&self.cfg, self.has_graph()))
            };
            if stop {
                break;
            }
            if !work {
                if self.recall_due() {
                    if self.measure_recall() {
                        // Saved with the graph at the next save (at the latest when the shard
                        // is dropped), so that a reopened shard knows it at once.
                        self.ledger_mut().unsaved += 1;
                    }
                    continue;
                }
                let mut flag = self.wake.lock().unwrap_or_else(|p| p.into_inner());
                if !*flag {
                    flag = self
                        .woken
                        .wait_timeout(flag, Duration::from_millis(200))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                *flag = false;
                continue;
            }
            if let Err(e) = self.fold_once() {
                let mut st = self.ledger_mut();
                st.error = Some(e);
                st.busy = false;
                // Drop the graph: searches answer exactly (or `Ann` reports the error) until
                // the next open rebuilds it.
                drop(st);
                *self.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
                self.ledger_mut().pending.clear();
                break;
            }
            let save = {
                let st = self.ledger();
                st.unsaved > 0
                    && (st.unsaved >= self.cfg.save_every
                        || (st.pending.is_empty() && st.removed.is_empty()))
            };
            if save {
                // A complete graph is measured first, so that the file carries the estimate.
                if self.recall_due() {
                    self.measure_recall();
                }
                if let Err(e) = self.save() {
                    self.ledger_mut().error = Some(e);
                }
            }
        }
        if self.ledger().unsaved > 0 {
            // Errors here have nowhere to go but the status; the next open catches up.
            if let Err(e) = self.save() {
                self.ledger_mut().error = Some(e);
            }
        }
    }

    /// Folds one batch of pending rows (and every pending removal) into the graph.
    pub(super) fn fold_once(&self) -> Result<(), IndexError> {
        let (batch, removed) = {
            let mut st = self.ledger_mut();
            st.busy = true;
            // Oldest changes first, so that the stamp of a save during a long build (the
            // lowest pending seq minus one) advances and a reopened file is worth loading.
            let mut all: Vec<(i64, i64, u64)> =
                st.pending.iter().map(|(&r, &(g, q))| (q, r, g)).collect();
            let n = self.cfg.fold_batch.min(all.len());
            if n < all.len() {
                all.select_nth_unstable(n);
                all.truncate(n);
            }
            let batch: Vec<(i64, u64)> = all.into_iter().map(|(_, r, g)| (r, g)).collect();
            (batch, std::mem::take(&mut st.removed))
        };
        let vectors: Vec<(i64, u64, Vec<f32>)> = {
            let arena = self.read_arena();
            batch
                .iter()
                .filter_map(|&(r, g)| arena.slot(r).map(|s| (r, g, arena.vector(s).to_vec())))
                .collect()
        };
        self.copy_view_into_memory()?;
        // Make room (usearch must not grow while other threads search it). Lock order is
        // state before graph everywhere: no state lock is taken while the graph is locked.
        let live = self.ledger().live;
        let created = {
            let mut graph = self.graph.write().unwrap_or_else(|p| p.into_inner());
            let created = graph.is_none();
            if created {
                let mut index = new_index(&self.cfg, self.dims)?;
                crate::kernels::install_usearch_metric(&mut index, self.dims);
                *graph = Some(Graph::owned(index));
            }
            let index = graph.as_ref().ok_or(IndexError::Vanished)?;
            let need = index.size() + vectors.len();
            if need > index.capacity() {
                let cap = need.max(index.capacity() * 2).max(live + live / 8);
                index
                    .reserve_capacity_and_threads(cap, context_count(&self.cfg))
                    .map_err(|e| IndexError::graph(format!("reserving room for {cap} rows"), e))?;
            }
            created
        };
        if created {
            self.ledger_mut().graph_removed = 0;
        }
        let mut taken_out = 0;
        {
            let graph = self.read_graph();
            let index = graph.as_ref().ok_or(IndexError::Vanished)?;
            for &(r, _) in &removed {
                if index.contains(r as u64) {
                    let _ctx = self.contexts.acquire();
                    index
                        .remove(r as u64)
                        .map_err(|e| IndexError::graph(format!("removing row {r}"), e))?;
                    taken_out += 1;
                }
            }
            let pool = self.cfg.fold_threads.max(1);
            let add = |(r, _, v): &(i64, u64, Vec<f32>)| -> Result<usize, IndexError> {
                let _ctx = self.contexts.acquire();
                let key = *r as u64;
                let mut replaced = 0;
                if index.contains(key) {
                    index
                        .remove(key)
                        .map_err(|e| IndexError::graph(format!("replacing row {r}"), e))?;
                    replaced = 1;
                }
                index
                    .add(key, v.as_slice())
                    .map_err(|e| IndexError::graph(format!("adding row {r}"), e))?;
                Ok(replaced)
            };
            let replaced: usize = if pool == 1 {
                vectors.iter().map(add).sum::<Result<usize, IndexError>>()?
            } else {
                // On the fold pool, not rayon's global one: a search's parallel scan queued
                // behind a batch of graph inserts would wait for the whole batch (seconds).
                fold_pool().install(|| {
                    vectors
                        .par_iter()
                        .with_min_len(vectors.len().div_ceil(pool).max(1))
                        .map(add)
                        .sum::<Result<usize, IndexError>>()
                })?
            };
            taken_out += replaced;
        }
        let mut st = self.ledger_mut();
        for (r, g, _) in &vectors {
            if st.pending.get(r).is_some_and(|p| p.0 == *g) {
                st.pending.remove(r);
            }
        }
        // Rows of the batch that left the arena meanwhile were deleted: their delete note
        // already took them out of `pending`.
        st.unsaved += vectors.len() + removed.len();
        st.graph_removed += taken_out;
        st.busy = false;
        // usearch keeps removed rows as tombstones that still cost search time; past a
        // quarter of the graph, rebuild it from the arena in the background.
        let rebuild = {
            let graph = self.read_graph();
            graph
                .as_ref()
                .is_some_and(|g| st.graph_removed > 1_000 && st.graph_removed > g.size() / 4)
        };
        if rebuild {
            drop(st);
            let rows: Vec<i64> = {
                let arena = self.read_arena();
                (0..arena.len()).map(|s| arena.rowid_at(s)).collect()
            };
            let mut st = self.ledger_mut();
            *self.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
            st.removed.clear();
            st.graph_removed = 0;
            for r in rows {
                st.generation += 1;
                let g = st.generation;
                // Seq 0: a save during the rebuild covers nothing until it is complete.
                st.pending.insert(r, (g, 0));
            }
        }
        Ok(())
    }

    /// Replaces a viewed graph (the mapped index file, read-only) with an in-memory copy
    /// that can change. Searches go on against the view while the copy is made. Only the
    /// fold thread changes the graph, so nothing replaces it in between.
    pub(super) fn copy_view_into_memory(&self) -> Result<(), IndexError> {
        let copy = {
            let graph = self.read_graph();
            let Some(map) = graph.as_ref().and_then(|g| g.map.as_ref()) else {
                return Ok(());
            };
            let mut index = new_index(&self.cfg, self.dims)?;
            index
                .load_from_buffer(&map[HEADER_LEN..])
                .map_err(|e| IndexError::graph("copying the mapped graph", e))?;
            crate::kernels::install_usearch_metric(&mut index, self.dims);
            index
                .reserve_capacity_and_threads(index.size() + 1024, context_count(&self.cfg))
                .map_err(|e| IndexError::graph("reserving room in the graph", e))?;
            index
        };
        let mut graph = self.graph.write().unwrap_or_else(|p| p.into_inner());
        if graph.as_ref().is_some_and(Graph::viewed) {
            *graph = Some(Graph::owned(copy));
        }
        Ok(())
    }
}
