//! Feedback evidence that merges across replicas: per-replica counters in the record's
//! replicated counters (`_counters`, merged by per-entry maximum on every sync, see
//! [`reasonbank_memory::Counters`]), and the evidence of an item read as its own counters plus
//! those of the items validly merged into it.
//!
//! Each replica (a shard file, named by its `origin`) only raises its own group:
//! `{"<origin>": {"s": successes, "f": failures, "ds": successes decayed away, "df": failures
//! decayed away, "uses": times used, "used_at": Unix ms of the last use}}`, so concurrent
//! feedback on two replicas adds up after any number of syncs in any order, and nothing is
//! counted twice. Decay only grows `ds`/`df` (a PN-counter): two replicas decaying the same
//! evidence at once both subtract, which converges but may decay more than one run would.
//!
//! Consolidation never copies counts: the survivor lists what it absorbed in the grow-only
//! group [`MERGED_GROUP`] (`{"merged_from": {"<uuid>": 1.0}}`), and an item's evidence is its
//! own plus that of every listed item whose row still says `merged` into it
//! ([`effective`]). An item is counted under one survivor only (its own `merged_into`), so
//! two replicas consolidating at once, or feedback given to a merged item by a replica that
//! had not seen the merge yet, never double-count or lose a report.
//!
//! Rows written before this layout hold plain `successes`, `failures` and `usage_count` and
//! no counters: they read as they are, and the first counted write moves them into the group
//! of the record's `origin` (the replica that wrote them), where every replica that migrates
//! the same row puts the same values, so the maximum keeps them once.

use std::collections::HashSet;

use reasonbank_memory::{Counters, Record, RecordId, Shard};
use serde_json::{Map, Value};

use crate::metadata::{ItemMetadata, keys};
use crate::types::Prior;
use crate::{MemoryItem, Result};

/// The group of the replicated counters listing the items merged into this one.
pub const MERGED_GROUP: &str = "merged_from";

/// Counter names of a replica's group.
pub(crate) mod names {
    /// Successes.
    pub const S: &str = "s";
    /// Failures.
    pub const F: &str = "f";
    /// Successes removed by decay.
    pub const DS: &str = "ds";
    /// Failures removed by decay.
    pub const DF: &str = "df";
    /// Uses.
    pub const USES: &str = "uses";
    /// Unix ms of the last use.
    pub const USED_AT: &str = "used_at";
}

/// The evidence of an item.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Evidence {
    pub successes: f64,
    pub failures: f64,
    pub uses: u64,
    pub last_used_at: Option<i64>,
}

impl Evidence {
    fn add(&mut self, o: Evidence) {
        self.successes += o.successes;
        self.failures += o.failures;
        self.uses += o.uses;
        self.last_used_at = self.last_used_at.max(o.last_used_at);
    }

    /// Writes these values into `item` with its confidence under `prior`.
    pub(crate) fn apply(self, item: &mut MemoryItem, prior: Prior) {
        item.successes = self.successes;
        item.failures = self.failures;
        item.usage_count = self.uses;
        item.last_used_at = self.last_used_at;
        item.confidence = prior.mean(self.successes, self.failures);
    }
}

/// Whether `m` holds replicated counters (the current layout) rather than plain counts.
pub(crate) fn counted(m: &Map<String, Value>) -> bool {
    m.contains_key(keys::COUNTERS)
}

/// The counters of `record` ready for a counted write: its own, or, for a row of the plain
/// layout, its plain counts moved into the group of its `origin`.
pub(crate) fn counters_of(record: &Record) -> Counters {
    let m = &record.metadata;
    if counted(m) {
        // Stored counters were checked by the write that stored them.
        return Counters::of(m).unwrap_or_default();
    }
    let v = ItemMetadata::of(record);
    let mut c = Counters::new();
    let o = &record.origin;
    c.raise(o, names::S, v.successes());
    c.raise(o, names::F, v.failures());
    c.raise(o, names::USES, v.usage_count() as f64);
    if let Some(t) = v.last_used_at() {
        c.raise(o, names::USED_AT, t as f64);
    }
    c
}

/// The evidence of one record alone (without what was merged into it), not clamped.
fn own(c: &Counters) -> (f64, f64, Evidence) {
    let (mut s, mut f, mut ds, mut df, mut uses) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut used_at: Option<i64> = None;
    for (g, e) in c.groups() {
        if g == MERGED_GROUP {
            continue;
        }
        let get = |n: &str| e.get(n).copied().unwrap_or(0.0);
        s += get(names::S);
        f += get(names::F);
        ds += get(names::DS);
        df += get(names::DF);
        uses += get(names::USES);
        if let Some(&t) = e.get(names::USED_AT) {
            used_at = used_at.max(Some(t as i64));
        }
    }
    let e = Evidence {
        successes: 0.0,
        failures: 0.0,
        uses: uses.round() as u64,
        last_used_at: used_at,
    };
    (s - ds, f - df, e)
}

/// The evidence `record` holds by itself: its counters, or its plain counts.
pub(crate) fn own_evidence(m: &ItemMetadata<'_>, metadata: &Map<String, Value>) -> Evidence {
    if !counted(metadata) {
        return Evidence {
            successes: m.successes(),
            failures: m.failures(),
            uses: m.usage_count(),
            last_used_at: m.last_used_at(),
        };
    }
    let (s, f, mut e) = own(&Counters::of(metadata).unwrap_or_default());
    e.successes = s.max(0.0);
    e.failures = f.max(0.0);
    e
}

/// Hops followed down merged items, as for `merged_into` chains.
const MAX_DEPTH: usize = 8;

/// The evidence of `record`: its own plus, for every item listed in its [`MERGED_GROUP`]
/// whose row is still `merged` into it, that item's evidence (recursively), each clamped at
/// zero after decay.
///
/// # Errors
/// Storage errors.
pub(crate) fn effective(shard: &Shard, record: &Record) -> Result<Evidence> {
    let mut seen = HashSet::from([record.id]);
    walk(shard, record, &mut seen, 0)
}

fn walk(shard: &Shard, r: &Record, seen: &mut HashSet<RecordId>, depth: usize) -> Result<Evidence> {
    if !counted(&r.metadata) {
        return Ok(own_evidence(&ItemMetadata::of(r), &r.metadata));
    }
    let c = Counters::of(&r.metadata).unwrap_or_default();
    let (mut s, mut f, mut e) = own(&c);
    if depth < MAX_DEPTH
        && let Some(children) = c.group(MERGED_GROUP)
    {
        for id in children.keys().filter_map(|k| k.parse::<RecordId>().ok()) {
            if !seen.insert(id) {
                continue;
            }
            let Some(child) = shard.get(id)? else {
                continue;
            };
            if ItemMetadata::of(&child).merged_link() != Some(r.id) {
                continue;
            }
            let ce = walk(shard, &child, seen, depth + 1)?;
            s += ce.successes;
            f += ce.failures;
            e.add(Evidence {
                successes: 0.0,
                failures: 0.0,
                ..ce
            });
        }
    }
    e.successes = s.max(0.0);
    e.failures = f.max(0.0);
    Ok(e)
}

/// `record` decoded as an item with its [`effective`] evidence and the confidence of `prior`.
///
/// # Errors
/// As [`MemoryItem::from_record`], and storage errors.
pub(crate) fn load_item(shard: &Shard, record: &Record, prior: Prior) -> Result<MemoryItem> {
    let mut item = MemoryItem::from_record(record)?;
    effective(shard, record)?.apply(&mut item, prior);
    Ok(item)
}

/// The evidence merged into `record` (its [`effective`] evidence minus its own), read before a
/// counted write so that the write's cached totals include it.
pub(crate) fn merged_evidence(shard: &Shard, record: &Record) -> Result<Evidence> {
    let all = effective(shard, record)?;
    let mine = own_evidence(&ItemMetadata::of(record), &record.metadata);
    Ok(Evidence {
        successes: (all.successes - mine.successes).max(0.0),
        failures: (all.failures - mine.failures).max(0.0),
        uses: all.uses.saturating_sub(mine.uses),
        last_used_at: all.last_used_at,
    })
}

/// Own evidence after a counted write of `c`, plus `merged`: the cached totals to store.
pub(crate) fn totals(c: &Counters, merged: Evidence) -> Evidence {
    let (s, f, mut e) = own(c);
    e.successes = s.max(0.0);
    e.failures = f.max(0.0);
    let mut t = e;
    t.add(merged);
    t
}
