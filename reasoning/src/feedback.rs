//! Feedback and usage: atomic read-modify-writes of an item's counters, following merges to
//! the surviving item; reading items back.

use std::sync::Arc;

use reasonbank_memory::{Counters, Record, RecordId, RecordUpdate, Shard, ShardId};
use serde_json::Value;

use crate::bank::{blocking, now_ms, scan_patterns};
use crate::evidence::{
    Evidence, counted, counters_of, effective, load_item, merged_evidence, names, totals,
};
use crate::metadata::ItemMetadata;
use crate::recall::resolve;
use crate::types::Prior;
use crate::{Error, Feedback, ItemStatus, MemoryItem, ReasoningBank, Result};

/// Attempts of one feedback or usage update before [`Error::Contended`]. The write itself is
/// atomic ([`Shard::modify`](reasonbank_memory::Shard::modify)); an attempt is repeated only
/// when a consolidation merged the item between finding it and writing it, so the update
/// goes to the survivor. Each repeat needs another merge of the same chain in that window;
/// eight in a row means something keeps merging, and the caller hears about it.
pub const FEEDBACK_ATTEMPTS: u32 = 8;

/// The update of a counted write of `r`: `f` raises this replica's counters, and the cached
/// totals (`successes`, `failures`, `confidence`, `usage_count`, `last_used_at`) become its own
/// evidence after `f` plus `merged` (that of the items merged into it, read beforehand).
pub(crate) fn counted_update(
    r: &Record,
    merged: Evidence,
    prior: Prior,
    f: impl FnOnce(&mut Counters),
) -> Result<RecordUpdate> {
    let mut item = MemoryItem::from_record(r)?;
    let mut c = counters_of(r);
    f(&mut c);
    totals(&c, merged).apply(&mut item, prior);
    let mut m = item.to_metadata(&r.metadata);
    if let Value::Object(map) = &mut m {
        c.write_into(map);
    }
    let mut u = RecordUpdate::new();
    u.metadata(m);
    Ok(u)
}

impl ReasoningBank {
    /// Raises this replica's counters of item `id` of `shard_id` (or of the item it was
    /// merged into) with `f` in one atomic read-modify-write, so concurrent updates from any
    /// process are never lost, and those of other replicas add up at sync. If a
    /// consolidation merges the item in between, `f` goes to the survivor.
    async fn modify_item<F>(&self, shard_id: &ShardId, id: RecordId, f: F) -> Result<MemoryItem>
    where
        F: Fn(&mut Counters, &str) + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let sid = shard_id.clone();
        let prior = self.inner.config.prior;
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            let me = shard.origin().to_owned();
            for _ in 0..FEEDBACK_ATTEMPTS {
                let Some(r) = resolve(&shard, id)? else {
                    return Err(Error::NoSuchItem { id });
                };
                // Read before the write (`modify` must not call the shard); it only feeds
                // the cached totals, the counters themselves are exact.
                let merged = merged_evidence(&shard, &r)?;
                let mut merged_meanwhile = false;
                let after = shard.modify(r.id, |r| -> Result<Option<RecordUpdate>> {
                    if MemoryItem::from_record(r)?.status == ItemStatus::Merged {
                        merged_meanwhile = true;
                        return Ok(None);
                    }
                    counted_update(r, merged, prior, |c| f(c, &me)).map(Some)
                })?;
                match after {
                    _ if merged_meanwhile => continue,
                    Some(r) => return load_item(&shard, &r, prior),
                    None => return Err(Error::NoSuchItem { id }),
                }
            }
            Err(Error::Contended {
                what: "feedback",
                attempts: FEEDBACK_ATTEMPTS,
            })
        })
        .await
    }

    /// Records feedback on an item after an agent used it: a success, a failure, or a reward
    /// `r` in [0, 1] counted as `r` successes and `1 − r` failures. The item's confidence
    /// becomes the mean of its Beta posterior (see [`BankBuilder::prior`](crate::BankBuilder::prior)), which ranking
    /// uses as reliability. Feedback on a merged item goes to the item that absorbed it.
    /// Returns the updated item.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a reward outside [0, 1]; [`Error::NoSuchItem`];
    /// [`Error::InvalidRecord`] if `item` is not a memory item; storage errors.
    pub async fn feedback(
        &self,
        shard: &ShardId,
        item: RecordId,
        feedback: Feedback,
    ) -> Result<MemoryItem> {
        let (s, f) = match feedback {
            Feedback::Success => (1.0, 0.0),
            Feedback::Failure => (0.0, 1.0),
            Feedback::Reward(r) if (0.0..=1.0).contains(&r) => (f64::from(r), 1.0 - f64::from(r)),
            Feedback::Reward(r) => {
                return Err(Error::InvalidInput {
                    what: "reward",
                    reason: format!("must be in [0, 1], got {r}"),
                });
            }
        };
        self.modify_item(shard, item, move |c, me| {
            c.add(me, names::S, s);
            c.add(me, names::F, f);
        })
        .await
    }

    pub(crate) async fn record_usage(&self, used: Vec<(ShardId, RecordId)>) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let prior = self.inner.config.prior;
        blocking(move || {
            let now = now_ms();
            for (sid, id) in used {
                let shard = Self::open(&inner, &sid)?;
                // An item deleted since it was recalled is skipped (`None`).
                let Some(r) = shard.get(id)? else { continue };
                let merged = merged_evidence(&shard, &r)?;
                let me = shard.origin().to_owned();
                shard.modify(id, |r| -> Result<Option<RecordUpdate>> {
                    counted_update(r, merged, prior, |c| {
                        c.add(&me, names::USES, 1.0);
                        c.raise(&me, names::USED_AT, now as f64);
                    })
                    .map(Some)
                })?;
            }
            Ok(())
        })
        .await
    }

    /// The item `id` (in any status), or `None` if there is no such live record. Its
    /// evidence is its own plus that of the items merged into it.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if the record is not a memory item; storage errors.
    pub async fn item(&self, shard: &ShardId, id: RecordId) -> Result<Option<MemoryItem>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        let prior = self.inner.config.prior;
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            shard
                .get(id)?
                .map(|r| load_item(&shard, &r, prior))
                .transpose()
        })
        .await
    }

    /// The reliability of `record`, a record of `shard`: the confidence under the bank's prior
    /// of its evidence (every replica's counters and the items merged into it, as
    /// [`item`](Self::item) computes it); `None` for a record no feedback ever reached.
    /// Blocking: it may read the merged items' rows.
    ///
    /// # Errors
    /// Storage errors.
    pub fn reliability(&self, shard: &Shard, record: &Record) -> Result<Option<f32>> {
        if !counted(&record.metadata) && ItemMetadata::of(record).confidence().is_none() {
            return Ok(None);
        }
        let e = effective(shard, record)?;
        Ok(Some(self.inner.config.prior.mean(e.successes, e.failures)))
    }

    /// Every memory item of `shard` (all statuses), oldest first.
    ///
    /// # Errors
    /// Storage errors; [`Error::InvalidRecord`] for a pattern record that does not decode.
    pub async fn items(&self, shard: &ShardId) -> Result<Vec<MemoryItem>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        let prior = self.inner.config.prior;
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            scan_patterns(&shard)?
                .iter()
                .map(|r| load_item(&shard, r, prior))
                .collect()
        })
        .await
    }
}
