//! Feedback and usage: atomic read-modify-writes of an item's counters, following merges to
//! the surviving item; reading items back.

use std::sync::Arc;

use reasonbank_memory::{RecordId, RecordUpdate, ShardId};

use crate::bank::{blocking, now_ms, scan_patterns};
use crate::recall::resolve;
use crate::{Error, Feedback, ItemStatus, MemoryItem, ReasoningBank, Result};

/// Attempts of one feedback or usage update before [`Error::Contended`]. The write itself is
/// atomic ([`Shard::modify`](reasonbank_memory::Shard::modify)); an attempt is repeated only
/// when a consolidation merged the item between finding it and writing it, so the update
/// goes to the survivor. Each repeat needs another merge of the same chain in that window;
/// eight in a row means something keeps merging, and the caller hears about it.
pub const FEEDBACK_ATTEMPTS: u32 = 8;

impl ReasoningBank {
    /// Applies `f` to item `id` of `shard_id` (or the item it was merged into) and writes it
    /// back in one atomic read-modify-write, so concurrent updates from any process are
    /// never lost. If a consolidation merges the item in between, `f` goes to the survivor.
    async fn modify_item<F>(&self, shard_id: &ShardId, id: RecordId, f: F) -> Result<MemoryItem>
    where
        F: Fn(&mut MemoryItem) + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let sid = shard_id.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            for _ in 0..FEEDBACK_ATTEMPTS {
                let Some(r) = resolve(&shard, id)? else {
                    return Err(Error::NoSuchItem { id });
                };
                let mut merged_meanwhile = false;
                let after = shard.modify(r.id, |r| -> Result<Option<RecordUpdate>> {
                    let mut item = MemoryItem::from_record(r)?;
                    if item.status == ItemStatus::Merged {
                        merged_meanwhile = true;
                        return Ok(None);
                    }
                    f(&mut item);
                    let mut u = RecordUpdate::new();
                    u.metadata(item.to_metadata(&r.metadata));
                    Ok(Some(u))
                })?;
                match after {
                    _ if merged_meanwhile => continue,
                    Some(r) => return MemoryItem::from_record(&r),
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
        let prior = self.inner.config.prior;
        self.modify_item(shard, item, move |it| {
            it.successes += s;
            it.failures += f;
            it.confidence = prior.mean(it.successes, it.failures);
        })
        .await
    }

    pub(crate) async fn record_usage(&self, used: Vec<(ShardId, RecordId)>) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let now = now_ms();
            for (sid, id) in used {
                let shard = Self::open(&inner, &sid)?;
                // An item deleted since it was recalled is skipped (`None`).
                shard.modify(id, |r| -> Result<Option<RecordUpdate>> {
                    let mut item = MemoryItem::from_record(r)?;
                    item.usage_count += 1;
                    item.last_used_at = Some(now);
                    let mut u = RecordUpdate::new();
                    u.metadata(item.to_metadata(&r.metadata));
                    Ok(Some(u))
                })?;
            }
            Ok(())
        })
        .await
    }

    /// The item `id` (in any status), or `None` if there is no such live record.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if the record is not a memory item; storage errors.
    pub async fn item(&self, shard: &ShardId, id: RecordId) -> Result<Option<MemoryItem>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            shard
                .get(id)?
                .map(|r| MemoryItem::from_record(&r))
                .transpose()
        })
        .await
    }

    /// Every memory item of `shard` (all statuses), oldest first.
    ///
    /// # Errors
    /// Storage errors; [`Error::InvalidRecord`] for a pattern record that does not decode.
    pub async fn items(&self, shard: &ShardId) -> Result<Vec<MemoryItem>> {
        let inner = Arc::clone(&self.inner);
        let sid = shard.clone();
        blocking(move || {
            let shard = Self::open(&inner, &sid)?;
            scan_patterns(&shard)?
                .iter()
                .map(MemoryItem::from_record)
                .collect()
        })
        .await
    }
}
