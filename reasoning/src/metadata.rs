//! Typed reads of the metadata layout of [`types`](crate::types): one accessor per key, so
//! no other code (in this crate or above it) spells a key or decides how a malformed value
//! reads.
//!
//! Two strictnesses, both part of the layout's contract ([`types`](crate::types)): keys an
//! item cannot be without (its text, kind, outcome, links to other items) are read strictly
//! and a bad value is [`Error::InvalidRecord`]; counters and timestamps are read leniently
//! (missing or malformed reads as zero or none), because other layers and older writers may
//! leave them out.

use reasonbank_memory::{Filter, Record, RecordId};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::types::{EXPERIENCE_KIND, PATTERN_KIND};
use crate::{Error, ItemKind, ItemStatus, Outcome, Result};

/// The metadata keys of layout version 1 (see [`types`](crate::types)), in one place.
pub(crate) mod keys {
    /// Layout version (both record kinds).
    pub const LAYOUT: &str = "rb";
    /// Item: short name.
    pub const TITLE: &str = "title";
    /// Item: one-sentence summary.
    pub const DESCRIPTION: &str = "description";
    /// Item: the insight.
    pub const CONTENT: &str = "content";
    /// Item: strategy, pitfall or insight.
    pub const ITEM_KIND: &str = "item_kind";
    /// Item and experience: the judged outcome.
    pub const OUTCOME: &str = "outcome";
    /// Item: the experience it was distilled from.
    pub const SOURCE: &str = "source";
    /// Item and experience: the task query.
    pub const TASK: &str = "task";
    /// Item: the distiller's name.
    pub const DISTILLER: &str = "distiller";
    /// Item: feedback successes.
    pub const SUCCESSES: &str = "successes";
    /// Item: feedback failures.
    pub const FAILURES: &str = "failures";
    /// Item (or any record given feedback): posterior mean reliability.
    pub const CONFIDENCE: &str = "confidence";
    /// Item: times used.
    pub const USAGE_COUNT: &str = "usage_count";
    /// Item: Unix ms of the last use.
    pub const LAST_USED_AT: &str = "last_used_at";
    /// Item: lifecycle state.
    pub const STATUS: &str = "status";
    /// Item: the survivor that absorbed it.
    pub const MERGED_INTO: &str = "merged_into";
    /// Item: the items folded into it.
    pub const MERGED_FROM: &str = "merged_from";
    /// Item: similar items with the opposite outcome.
    pub const CONTRADICTS: &str = "contradicts";
    /// Item: Unix ms of the last evidence decay.
    pub const DECAYED_AT: &str = "decayed_at";
    /// Item: the replicated counters (per-replica evidence and the merged-item set).
    pub const COUNTERS: &str = reasonbank_memory::COUNTERS_KEY;
    /// Experience: the steps.
    pub const STEPS: &str = "steps";
    /// Experience: the final answer.
    pub const ANSWER: &str = "answer";
    /// Experience: the caller's own outcome.
    pub const CLAIMED_OUTCOME: &str = "claimed_outcome";
    /// Experience: the caller's reward.
    pub const REWARD: &str = "reward";
    /// Experience: the judge's verdict.
    pub const VERDICT: &str = "verdict";
    /// Experience: the items learned from it.
    pub const ITEMS: &str = "items";
}

/// The confidence an item reads with when its metadata has none (or one outside [0, 1]):
/// 0.5, the posterior mean of the default uniform prior `(1, 1)` with no evidence, i.e. what
/// a fresh item is written with. A reader does not know the bank's prior, so it cannot do
/// better than the default's.
pub const MISSING_CONFIDENCE: f32 = 0.5;

/// A filter matching every record except learned items that no longer stand on their own:
/// merged into a survivor or archived by pruning. What a plain recall shows by default (the
/// items stay readable by id and restorable; this only keeps superseded lessons out of an
/// agent's context).
pub fn active_records() -> Filter {
    Filter::Not(Box::new(Filter::And(vec![
        Filter::Kind(PATTERN_KIND.to_owned()),
        Filter::In {
            field: keys::STATUS.to_owned(),
            values: vec![
                Value::from(ItemStatus::Merged.as_str()),
                Value::from(ItemStatus::Archived.as_str()),
            ],
        },
    ])))
}

/// A typed view of a record's metadata in the memory-item layout (record kind
/// [`PATTERN_KIND`]).
///
/// It reads any record: the lenient accessors ([`confidence`](Self::confidence), the counts,
/// the timestamps) are meaningful on records that other layers wrote too, e.g. the facade
/// reading a memory's `confidence` set by feedback.
///
/// ```
/// use reasonbank_memory::Record;
/// use reasonbank_reasoning::{ItemMetadata, ItemStatus, Result};
///
/// fn describe(record: &Record) -> Result<()> {
///     let m = ItemMetadata::of(record);
///     if m.status()? == ItemStatus::Active {
///         println!("confidence {:?} after {} successes", m.confidence(), m.successes());
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ItemMetadata<'a> {
    id: RecordId,
    map: &'a Map<String, Value>,
}

impl<'a> ItemMetadata<'a> {
    /// The view of `record`'s metadata.
    pub fn of(record: &'a Record) -> Self {
        Self::new(record.id, &record.metadata)
    }

    /// The view of `metadata`, the metadata object of record `id` (named in errors).
    pub fn new(id: RecordId, metadata: &'a Map<String, Value>) -> Self {
        ItemMetadata { id, map: metadata }
    }

    fn bad(&self, reason: String) -> Error {
        Error::InvalidRecord {
            id: self.id,
            expected: PATTERN_KIND,
            reason,
        }
    }

    /// The layout version (`rb`), or `None` for a record this crate did not write.
    pub fn layout_version(&self) -> Option<u64> {
        self.map.get(keys::LAYOUT).and_then(Value::as_u64)
    }

    /// `title`.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is missing or not a string.
    pub fn title(&self) -> Result<&'a str> {
        required_str(self.map, keys::TITLE).map_err(|r| self.bad(r))
    }

    /// `description`.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is missing or not a string.
    pub fn description(&self) -> Result<&'a str> {
        required_str(self.map, keys::DESCRIPTION).map_err(|r| self.bad(r))
    }

    /// `content`.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is missing or not a string.
    pub fn content(&self) -> Result<&'a str> {
        required_str(self.map, keys::CONTENT).map_err(|r| self.bad(r))
    }

    /// `item_kind`.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is missing or not a kind.
    pub fn kind(&self) -> Result<ItemKind> {
        required_enum(self.map, keys::ITEM_KIND).map_err(|r| self.bad(r))
    }

    /// `outcome`: the verdict on the trajectory the item came from.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is missing or not an outcome.
    pub fn outcome(&self) -> Result<Outcome> {
        required_enum(self.map, keys::OUTCOME).map_err(|r| self.bad(r))
    }

    /// `status`; a record without one is [`ItemStatus::Active`].
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is not a status.
    pub fn status(&self) -> Result<ItemStatus> {
        match self.map.get(keys::STATUS) {
            None => Ok(ItemStatus::Active),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| self.bad(format!("`{}`: {e}", keys::STATUS))),
        }
    }

    /// `source`: the experience record the item was distilled from.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is neither null nor a UUID string.
    pub fn source(&self) -> Result<Option<RecordId>> {
        optional_id(self.map, keys::SOURCE).map_err(|r| self.bad(r))
    }

    /// `merged_into`: the item that absorbed this one.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is neither null nor a UUID string.
    pub fn merged_into(&self) -> Result<Option<RecordId>> {
        optional_id(self.map, keys::MERGED_INTO).map_err(|r| self.bad(r))
    }

    /// `merged_from`: the items folded into this one (empty when missing).
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is not an array of UUID strings.
    pub fn merged_from(&self) -> Result<Vec<RecordId>> {
        id_list(self.map, keys::MERGED_FROM).map_err(|r| self.bad(r))
    }

    /// `contradicts`: similar items with the opposite outcome (empty when missing).
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is not an array of UUID strings.
    pub fn contradicts(&self) -> Result<Vec<RecordId>> {
        id_list(self.map, keys::CONTRADICTS).map_err(|r| self.bad(r))
    }

    /// `task`: the source trajectory's task query; empty when missing or not a string.
    pub fn task(&self) -> &'a str {
        self.map
            .get(keys::TASK)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `distiller`: the name of the distiller that wrote the item; empty when missing.
    pub fn distiller(&self) -> &'a str {
        self.map
            .get(keys::DISTILLER)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `confidence` when it is a number in [0, 1], else `None` (an item then reads with
    /// [`MISSING_CONFIDENCE`]).
    pub fn confidence(&self) -> Option<f32> {
        self.map
            .get(keys::CONFIDENCE)
            .and_then(Value::as_f64)
            .filter(|c| (0.0..=1.0).contains(c))
            .map(|c| c as f32)
    }

    /// `successes`: the stored feedback successes (the cached total its last writer
    /// computed); 0 when missing, negative or not a number. The evidence the bank ranks with
    /// is read from the replicated counters (`_counters`, see `docs/FORMAT.md`) and includes
    /// the items merged into this one: [`MemoryItem`](crate::MemoryItem) as the bank returns
    /// it.
    pub fn successes(&self) -> f64 {
        count(self.map, keys::SUCCESSES)
    }

    /// `failures`: the stored feedback failures, cached like [`successes`](Self::successes).
    pub fn failures(&self) -> f64 {
        count(self.map, keys::FAILURES)
    }

    /// `usage_count`, cached like [`successes`](Self::successes); 0 when missing or not a
    /// non-negative integer.
    pub fn usage_count(&self) -> u64 {
        self.map
            .get(keys::USAGE_COUNT)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// `last_used_at`, Unix ms, cached like [`successes`](Self::successes); `None` when
    /// missing or not an integer.
    pub fn last_used_at(&self) -> Option<i64> {
        self.map.get(keys::LAST_USED_AT).and_then(Value::as_i64)
    }

    /// `decayed_at`, Unix ms of the last evidence decay; `None` when missing or not an
    /// integer.
    pub fn decayed_at(&self) -> Option<i64> {
        self.map.get(keys::DECAYED_AT).and_then(Value::as_i64)
    }

    /// The survivor this item was merged into, when its status is `merged` and the link
    /// reads; `None` for any other item (including one whose fields are malformed, which a
    /// full decode reports).
    pub(crate) fn merged_link(&self) -> Option<RecordId> {
        match self.status() {
            Ok(ItemStatus::Merged) => self.merged_into().ok().flatten(),
            _ => None,
        }
    }
}

/// A typed view of a record's metadata in the trajectory layout (record kind
/// [`EXPERIENCE_KIND`]).
#[derive(Clone, Copy, Debug)]
pub struct ExperienceMetadata<'a> {
    id: RecordId,
    map: &'a Map<String, Value>,
}

impl<'a> ExperienceMetadata<'a> {
    /// The view of `record`'s metadata.
    pub fn of(record: &'a Record) -> Self {
        ExperienceMetadata {
            id: record.id,
            map: &record.metadata,
        }
    }

    /// `task`: the task query; empty when missing or not a string.
    pub fn task(&self) -> &'a str {
        self.map
            .get(keys::TASK)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `outcome`: the judged outcome.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if it is missing or not an outcome.
    pub fn outcome(&self) -> Result<Outcome> {
        required_enum(self.map, keys::OUTCOME).map_err(|reason| Error::InvalidRecord {
            id: self.id,
            expected: EXPERIENCE_KIND,
            reason,
        })
    }

    /// `items`: the memory items learned from this trajectory. Entries that are not UUID
    /// strings are skipped (they cannot name an item).
    pub fn items(&self) -> Vec<RecordId> {
        self.map
            .get(keys::ITEMS)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    }
}

fn required_str<'a>(m: &'a Map<String, Value>, k: &str) -> Result<&'a str, String> {
    m.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{k}` is missing or not a string"))
}

fn required_enum<T: DeserializeOwned>(m: &Map<String, Value>, k: &str) -> Result<T, String> {
    let v = m.get(k).ok_or_else(|| format!("`{k}` is missing"))?;
    serde_json::from_value(v.clone()).map_err(|e| format!("`{k}`: {e}"))
}

fn optional_id(m: &Map<String, Value>, k: &str) -> Result<Option<RecordId>, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("`{k}` is not a UUID")),
        Some(_) => Err(format!("`{k}` is not a string")),
    }
}

fn id_list(m: &Map<String, Value>, k: &str) -> Result<Vec<RecordId>, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("`{k}` holds a non-UUID"))
            })
            .collect(),
        Some(_) => Err(format!("`{k}` is not an array")),
    }
}

fn count(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn view(v: Value) -> (RecordId, Map<String, Value>) {
        let Value::Object(m) = v else {
            unreachable!("the tests pass objects")
        };
        (RecordId::new(), m)
    }

    #[test]
    fn lenient_keys_default_and_strict_keys_fail() {
        let (id, m) = view(json!({
            "confidence": 1.5, "successes": -2, "failures": 3.5, "usage_count": "x",
            "status": "merged", "merged_into": "not-a-uuid", "merged_from": ["nope"],
        }));
        let v = ItemMetadata::new(id, &m);
        assert_eq!(v.confidence(), None);
        assert_eq!(
            (v.successes(), v.failures(), v.usage_count()),
            (0.0, 3.5, 0)
        );
        assert_eq!(v.status().unwrap(), ItemStatus::Merged);
        assert!(matches!(v.merged_into(), Err(Error::InvalidRecord { .. })));
        assert!(v.merged_from().is_err() && v.title().is_err() && v.kind().is_err());
        assert_eq!(v.merged_link(), None);
        assert_eq!((v.task(), v.layout_version()), ("", None));

        let (id, m) = view(json!({"confidence": 0.25}));
        let v = ItemMetadata::new(id, &m);
        assert_eq!(v.confidence(), Some(0.25));
        assert_eq!(v.status().unwrap(), ItemStatus::Active);
        assert_eq!(v.merged_from().unwrap(), Vec::new());
    }

    #[test]
    fn merged_link_follows_only_merged_items() {
        let to = RecordId::new();
        let (id, m) = view(json!({"status": "merged", "merged_into": to.to_string()}));
        assert_eq!(ItemMetadata::new(id, &m).merged_link(), Some(to));
        let (id, m) = view(json!({"status": "archived", "merged_into": to.to_string()}));
        assert_eq!(ItemMetadata::new(id, &m).merged_link(), None);
    }
}
