//! Consolidation: merge near-duplicate items (keeping provenance), flag contradictions,
//! decay old evidence, prune (archive) items that proved unreliable or went unused.
//!
//! Nothing is deleted. A merged item stays in the shard with `status = "merged"` and
//! `merged_into` naming the survivor, which lists it in `merged_from` and in the grow-only
//! merged set of its replicated counters, so its feedback and usage count as the survivor's
//! (read through the link, never copied: see `evidence.rs`); a pruned item gets
//! `status = "archived"`. The survivor of a pair is the older item (the smaller UUIDv7), so
//! replicas that consolidate the same items concurrently pick the same one. Both are left out of recall and
//! can be restored by editing their metadata. (mem0 let an LLM decide deletions and lost user
//! data, mem0#1674; here the rules are explicit and every change is reversible.)

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use reasonbank_memory::{Counters, Record, RecordId, RecordUpdate, Shard, ShardId};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bank::{blocking, now_ms, scan_patterns};
use crate::evidence::{MERGED_GROUP, counters_of, load_item, names};
use crate::metadata::{ItemMetadata, keys};
use crate::rank::dot;
use crate::types::Prior;
use crate::{Error, ItemStatus, MemoryItem, ReasoningBank, Result};

/// The default cosine at which consolidation merges two items of the same kind and outcome
/// ([`ConsolidateOptions::duplicate_threshold`]): 0.90. With all-MiniLM-L6-v2, rephrasings of
/// one lesson score 0.92–0.97 and different lessons on one topic 0.59–0.63 (measured by the
/// test `duplicate_threshold_separates_rephrasings_from_different_lessons`).
pub const DEFAULT_DUPLICATE_THRESHOLD: f32 = 0.90;

/// The default cosine at which two items of opposite outcomes are flagged as contradicting
/// each other ([`ConsolidateOptions::contradiction_threshold`]): 0.65. With all-MiniLM-L6-v2,
/// the extractive strategy and pitfall of one task (the same command working in one
/// trajectory and failing in another) score 0.69, while different lessons on one topic score
/// 0.59–0.63 and an item of an unrelated task 0.02 (the consolidation tests print these).
pub const DEFAULT_CONTRADICTION_THRESHOLD: f32 = 0.65;

/// The default feedback an item needs before low confidence can archive it
/// ([`ConsolidateOptions::prune_min_evidence`]): 5 reports. Under the uniform prior two
/// failures in a row already put confidence at 0.25; five reports keep one unlucky streak
/// from archiving a lesson, while one that fails four times in five (confidence 2/7 ≈ 0.29)
/// goes under a threshold of 0.3.
pub const DEFAULT_PRUNE_MIN_EVIDENCE: f64 = 5.0;

/// What [`consolidate`](ReasoningBank::consolidate) does. Every setter documents its default.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsolidateOptions {
    pub(crate) duplicate_threshold: f32,
    pub(crate) contradiction_threshold: f32,
    pub(crate) evidence_half_life: Option<Duration>,
    pub(crate) prune_below_confidence: Option<f32>,
    pub(crate) prune_min_evidence: f64,
    pub(crate) prune_idle: Option<Duration>,
    pub(crate) dry_run: bool,
}

impl Default for ConsolidateOptions {
    fn default() -> Self {
        ConsolidateOptions {
            duplicate_threshold: DEFAULT_DUPLICATE_THRESHOLD,
            contradiction_threshold: DEFAULT_CONTRADICTION_THRESHOLD,
            evidence_half_life: None,
            prune_below_confidence: None,
            prune_min_evidence: DEFAULT_PRUNE_MIN_EVIDENCE,
            prune_idle: None,
            dry_run: false,
        }
    }
}

impl ConsolidateOptions {
    /// Options with the defaults below: merge and flag, no decay, no pruning, writes.
    pub fn new() -> Self {
        Self::default()
    }
    /// Items of the same kind and outcome at least this similar (cosine of their embedded
    /// texts) are merged. Defaults to [`DEFAULT_DUPLICATE_THRESHOLD`] (0.90; the measurement
    /// is there).
    pub fn duplicate_threshold(&mut self, t: f32) -> &mut Self {
        self.duplicate_threshold = t;
        self
    }
    /// Items of opposite outcomes (a strategy that worked and a pitfall that failed) at
    /// least this similar are flagged as contradicting each other, for review; flags change
    /// no ranking and delete nothing. Defaults to [`DEFAULT_CONTRADICTION_THRESHOLD`] (0.65;
    /// the measurement is there).
    pub fn contradiction_threshold(&mut self, t: f32) -> &mut Self {
        self.contradiction_threshold = t;
        self
    }
    /// Feedback evidence halves over this time, so an item's confidence drifts back to the
    /// prior unless it keeps being confirmed. Applied for the time since the last decay (or
    /// creation) on each run. Defaults to none (no decay).
    pub fn evidence_half_life(&mut self, d: Duration) -> &mut Self {
        self.evidence_half_life = Some(d);
        self
    }
    /// Archive items whose confidence is below this once they have at least
    /// [`prune_min_evidence`](Self::prune_min_evidence) feedback. Defaults to none.
    pub fn prune_below_confidence(&mut self, c: f32) -> &mut Self {
        self.prune_below_confidence = Some(c);
        self
    }
    /// Feedback (successes + failures) an item needs before low confidence can prune it.
    /// Defaults to [`DEFAULT_PRUNE_MIN_EVIDENCE`] (5).
    pub fn prune_min_evidence(&mut self, n: f64) -> &mut Self {
        self.prune_min_evidence = n;
        self
    }
    /// Archive items neither used nor created within this time. Defaults to none.
    pub fn prune_idle(&mut self, d: Duration) -> &mut Self {
        self.prune_idle = Some(d);
        self
    }
    /// Compute and return the report without writing anything. Defaults to false.
    pub fn dry_run(&mut self, yes: bool) -> &mut Self {
        self.dry_run = yes;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (name, t) in [
            ("duplicate_threshold", self.duplicate_threshold),
            ("contradiction_threshold", self.contradiction_threshold),
        ] {
            if !(-1.0..=1.0).contains(&t) {
                return Err(Error::InvalidInput {
                    what: "consolidate options",
                    reason: format!("{name} must be in [-1, 1], got {t}"),
                });
            }
        }
        if let Some(c) = self.prune_below_confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err(Error::InvalidInput {
                what: "consolidate options",
                reason: format!("prune_below_confidence must be in [0, 1], got {c}"),
            });
        }
        if !(self.prune_min_evidence.is_finite() && self.prune_min_evidence >= 0.0) {
            return Err(Error::InvalidInput {
                what: "consolidate options",
                reason: format!(
                    "prune_min_evidence must be a number >= 0, got {}",
                    self.prune_min_evidence
                ),
            });
        }
        if self.evidence_half_life.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidInput {
                what: "consolidate options",
                reason: "evidence_half_life must be non-zero".into(),
            });
        }
        Ok(())
    }
}

/// One merge: `loser` folded into `winner`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Merge {
    /// The surviving item.
    pub winner: RecordId,
    /// The item folded into it.
    pub loser: RecordId,
    /// Their cosine similarity.
    pub similarity: f32,
}

/// Two similar items with opposite outcomes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContradictionPair {
    /// One item.
    pub a: RecordId,
    /// The other.
    pub b: RecordId,
    /// Their cosine similarity.
    pub similarity: f32,
}

/// A flagged contradiction with both items, as [`contradictions`](ReasoningBank::contradictions)
/// returns it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Contradiction {
    /// One item.
    pub a: MemoryItem,
    /// The other.
    pub b: MemoryItem,
    /// Their cosine similarity.
    pub similarity: f32,
}

/// An archived item and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Pruned {
    /// The item.
    pub id: RecordId,
    /// Why it was archived.
    pub reason: String,
}

/// What a consolidation did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ConsolidationReport {
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Active items examined.
    pub examined: usize,
    /// Merges, in the order they were decided.
    pub merges: Vec<Merge>,
    /// Contradictions newly flagged by this run.
    pub contradictions: Vec<ContradictionPair>,
    /// Items whose evidence decayed.
    pub decayed: usize,
    /// Items archived.
    pub pruned: Vec<Pruned>,
    /// Item records written.
    pub written: usize,
    /// Items that were merged in a cycle (A into B on one replica while B went into A on
    /// another, by an older version or a hand edit) and stand again: the oldest item of each
    /// cycle, which the others' links now name.
    pub revived: Vec<RecordId>,
}

struct Entry {
    record: Record,
    /// Its replicated counters, as the write will store them.
    counters: Counters,
    /// The item with its evidence (its own and that of what was merged into it).
    item: MemoryItem,
    vector: Vec<f32>,
    decayed_at: Option<i64>,
    dirty: bool,
}

impl ReasoningBank {
    /// Consolidates the items of `shard`: merges near-duplicates (same kind and outcome,
    /// similarity ≥ the duplicate threshold; the older item, by id, survives, so that
    /// replicas consolidating concurrently agree, and the evidence of the other counts as
    /// its own), flags
    /// contradictions (opposite outcomes, similarity ≥ the contradiction threshold), decays
    /// evidence and archives items as the options say. With `dry_run` it only reports.
    ///
    /// It compares every pair of active items: O(n²) in the shard's item count.
    ///
    /// All changes are written in one transaction, and only if none of the items involved
    /// changed since they were read (by feedback, usage or another consolidation, in this
    /// process or another); otherwise the run starts over from the new state, so no
    /// concurrent update is lost and no merge is half written.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for bad options; [`Error::Contended`] if the items kept
    /// changing for [`CONSOLIDATE_ATTEMPTS`] runs in a row; storage errors.
    pub async fn consolidate(
        &self,
        shard: &ShardId,
        o: &ConsolidateOptions,
    ) -> Result<ConsolidationReport> {
        o.validate()?;
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        let o = o.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            for _ in 0..CONSOLIDATE_ATTEMPTS {
                if let Some(report) = consolidate_once(&shard, inner.config.prior, &o)? {
                    return Ok(report);
                }
            }
            Err(Error::Contended {
                what: "consolidate",
                attempts: CONSOLIDATE_ATTEMPTS,
            })
        })
        .await
    }
}

/// Consolidation attempts before [`ReasoningBank::consolidate`] gives up with
/// [`Error::Contended`] (each attempt restarts after a concurrent change of its items).
pub const CONSOLIDATE_ATTEMPTS: u32 = 8;

/// One consolidation run over a snapshot of `shard`'s items: `None` if they changed before
/// its writes could commit.
fn consolidate_once(
    shard: &Shard,
    prior: Prior,
    o: &ConsolidateOptions,
) -> Result<Option<ConsolidationReport>> {
    let now = now_ms();
    let me = shard.origin().to_owned();
    let all = scan_patterns(shard)?;
    let revive = cycle_heads(
        &all.iter()
            .filter_map(|r| Some((r.id, ItemMetadata::of(r).merged_link()?)))
            .collect(),
    );
    let mut revived = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    for r in all {
        let again = revive.contains(&r.id);
        if MemoryItem::from_record(&r)?.status != ItemStatus::Active && !again {
            continue;
        }
        let mut item = load_item(shard, &r, prior)?;
        if again {
            // The oldest item of a merge cycle stands again, absorbing the rest through
            // their links.
            item.status = ItemStatus::Active;
            item.merged_into = None;
            revived.push(r.id);
        }
        let counters = counters_of(&r);
        let vector = r
            .embedding
            .as_ref()
            .map(|e| e.as_slice().to_vec())
            .unwrap_or_default();
        let decayed_at = ItemMetadata::of(&r).decayed_at();
        entries.push(Entry {
            record: r,
            counters,
            item,
            vector,
            decayed_at,
            dirty: again,
        });
    }
    let mut report = ConsolidationReport {
        dry_run: o.dry_run,
        examined: entries.len(),
        revived,
        ..Default::default()
    };

    // Merge: oldest first, so the survivor of a pair is the older item whatever evidence
    // this replica has seen: replicas consolidating the same items at once pick the same
    // survivors and never merge A into B on one side and B into A on the other.
    entries.sort_by_key(|e| e.item.id);
    let n = entries.len();
    for i in 0..n {
        if entries[i].item.status != ItemStatus::Active {
            continue;
        }
        for j in (i + 1)..n {
            let (a, b) = (&entries[i], &entries[j]);
            if b.item.status != ItemStatus::Active
                || a.item.kind != b.item.kind
                || a.item.outcome != b.item.outcome
            {
                continue;
            }
            let sim = dot(&a.vector, &b.vector);
            if sim < o.duplicate_threshold {
                continue;
            }
            let (winner, loser) = split_pair(&mut entries, i, j);
            let (wid, lid) = (winner.item.id, loser.item.id);
            loser.item.status = ItemStatus::Merged;
            loser.item.merged_into = Some(wid);
            loser.dirty = true;
            let w = &mut winner.item;
            w.successes += loser.item.successes;
            w.failures += loser.item.failures;
            w.usage_count += loser.item.usage_count;
            w.last_used_at = w.last_used_at.max(loser.item.last_used_at);
            w.confidence = prior.mean(w.successes, w.failures);
            w.merged_from.push(lid);
            winner.counters.raise(MERGED_GROUP, &lid.to_string(), 1.0);
            for m in &loser.item.merged_from {
                if !w.merged_from.contains(m) {
                    w.merged_from.push(*m);
                }
            }
            for c in &loser.item.contradicts {
                if !w.contradicts.contains(c) && *c != wid {
                    w.contradicts.push(*c);
                }
            }
            winner.dirty = true;
            report.merges.push(Merge {
                winner: wid,
                loser: lid,
                similarity: sim,
            });
        }
    }

    // Contradictions among the survivors.
    for i in 0..n {
        for j in (i + 1)..n {
            let (a, b) = (&entries[i], &entries[j]);
            if a.item.status != ItemStatus::Active
                || b.item.status != ItemStatus::Active
                || a.item.outcome == b.item.outcome
                || a.item.contradicts.contains(&b.item.id)
                || b.item.contradicts.contains(&a.item.id)
            {
                continue;
            }
            let sim = dot(&a.vector, &b.vector);
            if sim < o.contradiction_threshold {
                continue;
            }
            let (x, y) = split_pair(&mut entries, i, j);
            x.item.contradicts.push(y.item.id);
            y.item.contradicts.push(x.item.id);
            x.dirty = true;
            y.dirty = true;
            let (a, b) = if x.item.id < y.item.id {
                (x.item.id, y.item.id)
            } else {
                (y.item.id, x.item.id)
            };
            report.contradictions.push(ContradictionPair {
                a,
                b,
                similarity: sim,
            });
        }
    }

    for e in entries
        .iter_mut()
        .filter(|e| e.item.status == ItemStatus::Active)
    {
        if let Some(h) = o.evidence_half_life {
            let since = e.decayed_at.unwrap_or(e.item.created_at);
            let f = crate::rank::recency(now, since, h);
            if f < 1.0 && e.item.successes + e.item.failures > 0.0 {
                // Counters only grow: what decays away is counted as removed, by this
                // replica.
                let keep = f64::from(f);
                e.counters
                    .add(&me, names::DS, e.item.successes * (1.0 - keep));
                e.counters
                    .add(&me, names::DF, e.item.failures * (1.0 - keep));
                e.item.successes *= keep;
                e.item.failures *= keep;
                e.item.confidence = prior.mean(e.item.successes, e.item.failures);
                e.decayed_at = Some(now);
                e.dirty = true;
                report.decayed += 1;
            }
        }
        let evidence = e.item.successes + e.item.failures;
        let mut reason = None;
        if let Some(c) = o.prune_below_confidence
            && evidence >= o.prune_min_evidence
            && e.item.confidence < c
        {
            reason = Some(format!(
                "confidence {:.3} < {c} after {evidence:.1} feedback",
                e.item.confidence
            ));
        }
        if let Some(idle) = o.prune_idle {
            let last = e.item.last_used_at.unwrap_or(0).max(e.item.created_at);
            if now - last > i64::try_from(idle.as_millis()).unwrap_or(i64::MAX) {
                reason.get_or_insert_with(|| format!("unused for more than {idle:?}"));
            }
        }
        if let Some(reason) = reason {
            e.item.status = ItemStatus::Archived;
            e.dirty = true;
            report.pruned.push(Pruned {
                id: e.item.id,
                reason,
            });
        }
    }

    if o.dry_run {
        return Ok(Some(report));
    }
    let mut writes = Vec::new();
    for e in entries.iter().filter(|e| e.dirty) {
        let mut m = e.item.to_metadata(&e.record.metadata);
        if let Some(t) = e.decayed_at {
            m[keys::DECAYED_AT] = json!(t);
        }
        if let Value::Object(map) = &mut m {
            e.counters.write_into(map);
        }
        let mut u = RecordUpdate::new();
        u.metadata(m);
        writes.push((e.item.id, e.record.version, u));
    }
    if !writes.is_empty() && !shard.update_if_unchanged(&writes)? {
        return Ok(None);
    }
    report.written = writes.len();
    Ok(Some(report))
}

impl ReasoningBank {
    /// The contradictions flagged in `shard` between items that are still active, each pair
    /// once.
    ///
    /// # Errors
    /// Storage errors; [`Error::InvalidRecord`] for a pattern record that does not decode.
    pub async fn contradictions(&self, shard: &ShardId) -> Result<Vec<Contradiction>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        let prior = self.inner.config.prior;
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            let mut items = Vec::new();
            for r in scan_patterns(&shard)? {
                if MemoryItem::from_record(&r)?.status == ItemStatus::Active {
                    let item = load_item(&shard, &r, prior)?;
                    let v = r
                        .embedding
                        .map(|e| e.as_slice().to_vec())
                        .unwrap_or_default();
                    items.push((item, v));
                }
            }
            // A flag may sit on either side only (a survivor inherits its merged item's
            // flags), so pairs are collected from both directions, each once.
            let index: HashMap<RecordId, usize> = items
                .iter()
                .enumerate()
                .map(|(i, (it, _))| (it.id, i))
                .collect();
            let mut pairs = BTreeSet::new();
            for (i, (a, _)) in items.iter().enumerate() {
                for c in &a.contradicts {
                    if let Some(&j) = index.get(c)
                        && i != j
                    {
                        pairs.insert((i.min(j), i.max(j)));
                    }
                }
            }
            Ok(pairs
                .into_iter()
                .map(|(i, j)| Contradiction {
                    a: items[i].0.clone(),
                    b: items[j].0.clone(),
                    similarity: dot(&items[i].1, &items[j].1),
                })
                .collect())
        })
        .await
    }
}

/// The oldest item of every cycle of `merged_into` links (`links`: merged item → survivor).
/// Consolidation itself never makes one (the older item always survives), but replicas of
/// another version, or hand edits, can merge A into B on one side and B into A on the other;
/// last-writer-wins may then keep both links, and neither item would be recalled.
fn cycle_heads(links: &HashMap<RecordId, RecordId>) -> BTreeSet<RecordId> {
    let mut heads = BTreeSet::new();
    for &start in links.keys() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(&next) = links.get(&at) {
            if let Some(i) = path.iter().position(|&p| p == next) {
                if let Some(&head) = path[i..].iter().min() {
                    heads.insert(head);
                }
                break;
            }
            if path.len() > links.len() {
                break;
            }
            path.push(next);
            at = next;
        }
    }
    heads
}

/// Mutable references to entries `i < j`.
fn split_pair(entries: &mut [Entry], i: usize, j: usize) -> (&mut Entry, &mut Entry) {
    debug_assert!(i < j);
    let (left, right) = entries.split_at_mut(j);
    (&mut left[i], &mut right[0])
}
