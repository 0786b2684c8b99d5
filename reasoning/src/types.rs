//! Memory items and trajectories, and how they map onto shard records.
//!
//! # Metadata layout (version 1)
//!
//! A [`MemoryItem`] is a record of kind [`PATTERN_KIND`] whose text (the embedded text) is
//! `title + "\n" + description + "\n" + content`, and whose metadata object is:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `rb` | integer | layout version, `1` |
//! | `title`, `description`, `content` | string | the paper's memory-item schema |
//! | `item_kind` | string | `strategy`, `pitfall` or `insight` ([`ItemKind`]) |
//! | `outcome` | string | `success` or `failure`: the verdict of the trajectory it came from |
//! | `source` | string (UUID) or null | the experience record it was distilled from |
//! | `task` | string | that trajectory's task query |
//! | `distiller` | string | name of the distiller that wrote it (`extractive`, `llm`, ...) |
//! | `_counters` | object | the evidence as per-replica replicated counters (see `evidence.rs` and `docs/FORMAT.md`) |
//! | `successes`, `failures` | number ≥ 0 | feedback evidence as its last writer computed it (rewards count fractionally); a cache of the counters |
//! | `confidence` | number in (0, 1) | posterior mean of that evidence (for filters) |
//! | `usage_count` | integer | times returned by recall or included in a synthesized context; cached |
//! | `last_used_at` | integer or null | Unix ms of the last such use; cached |
//! | `status` | string | `active`, `merged` (folded into `merged_into`) or `archived` (pruned) |
//! | `merged_into` | string (UUID) or null | the item that absorbed this one |
//! | `merged_from` | array of UUID strings | items folded into this one (provenance) |
//! | `contradicts` | array of UUID strings | similar items with the opposite outcome |
//! | `decayed_at` | integer, optional | Unix ms of the last evidence decay by consolidation |
//!
//! Keys that other layers add to an item's metadata survive every rewrite by this crate;
//! readers ignore unknown keys and treat missing counters as zero. The bank reads an item's
//! evidence from `_counters` plus that of the items merged into it, so the cached keys of a
//! row may lag after a sync merged other replicas' counters; [`MemoryItem`]s the bank returns
//! carry the merged values. Code that reads these keys
//! goes through the typed views of [`metadata`](crate::metadata) ([`ItemMetadata`],
//! [`ExperienceMetadata`](crate::ExperienceMetadata)), never through the key strings.
//!
//! A [`Trajectory`] is a record of kind [`EXPERIENCE_KIND`] whose text is the task query (so
//! a new task can be matched against past *tasks*, the paper's retrieval) and whose metadata
//! is `{"rb": 1, "task", "steps": [{"action", "observation"}], "answer", "outcome", "reward",
//! "verdict": {"outcome", "reasons", "judge"}, "items": [UUID strings]}`; `outcome` is the
//! judged outcome, while the caller's own outcome and reward are kept in `claimed_outcome`
//! and `reward`.

use reasonbank_memory::{Record, RecordId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::metadata::{ItemMetadata, MISSING_CONFIDENCE, keys};
use crate::{Error, Result};

/// Record kind of memory items.
pub const PATTERN_KIND: &str = "pattern";
/// Record kind of trajectories.
pub const EXPERIENCE_KIND: &str = "experience";
/// Version of the metadata layout this crate writes (key `rb`).
pub const LAYOUT_VERSION: u64 = 1;

/// Whether a trajectory achieved its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The task was achieved.
    Success,
    /// It was not.
    Failure,
}

impl Outcome {
    /// `"success"` or `"failure"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// What a memory item teaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemKind {
    /// Something to do: distilled from what worked.
    Strategy,
    /// Something to avoid: distilled from what failed.
    Pitfall,
    /// A neutral observation (e.g. from an LLM that labels it so).
    Insight,
}

impl ItemKind {
    /// `"strategy"`, `"pitfall"` or `"insight"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Strategy => "strategy",
            ItemKind::Pitfall => "pitfall",
            ItemKind::Insight => "insight",
        }
    }
}

/// Lifecycle state of a stored item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemStatus {
    /// Retrieved by recall.
    Active,
    /// Folded into another item by consolidation; kept for provenance, not retrieved.
    Merged,
    /// Pruned by consolidation; kept (recoverable), not retrieved.
    Archived,
}

impl ItemStatus {
    /// `"active"`, `"merged"` or `"archived"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Active => "active",
            ItemStatus::Merged => "merged",
            ItemStatus::Archived => "archived",
        }
    }
}

/// One step of a trajectory: what the agent did and what it saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The action (tool call, command, click, thought).
    pub action: String,
    /// What came back.
    #[serde(default)]
    pub observation: String,
}

impl Step {
    /// A step.
    pub fn new(action: impl Into<String>, observation: impl Into<String>) -> Self {
        Step {
            action: action.into(),
            observation: observation.into(),
        }
    }
}

/// An agent's attempt at a task, as given to [`learn`](crate::ReasoningBank::learn).
///
/// Deserializes from `{"task": "...", "steps": [{"action": "...", "observation": "..."}],
/// "answer": "...", "outcome": "success", "reward": 1.0}`; all but `task` may be omitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// The task query (what the agent was asked).
    pub task: String,
    /// The steps, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The final answer, if any.
    #[serde(default)]
    pub answer: Option<String>,
    /// The outcome the caller knows (e.g. tests passed), if any.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// A reward in [0, 1] the caller knows, if any.
    #[serde(default)]
    pub reward: Option<f32>,
}

impl Trajectory {
    /// A trajectory for `task` with no steps, answer or outcome yet.
    pub fn new(task: impl Into<String>) -> Self {
        Trajectory {
            task: task.into(),
            steps: Vec::new(),
            answer: None,
            outcome: None,
            reward: None,
        }
    }
    /// Appends a step.
    pub fn step(&mut self, action: impl Into<String>, observation: impl Into<String>) -> &mut Self {
        self.steps.push(Step::new(action, observation));
        self
    }
    /// Sets the answer.
    pub fn answer(&mut self, answer: impl Into<String>) -> &mut Self {
        self.answer = Some(answer.into());
        self
    }
    /// Sets the known outcome.
    pub fn outcome(&mut self, outcome: Outcome) -> &mut Self {
        self.outcome = Some(outcome);
        self
    }
    /// Sets the known reward in [0, 1].
    pub fn reward(&mut self, reward: f32) -> &mut Self {
        self.reward = Some(reward);
        self
    }

    /// Checks what every learner needs, naming the field at fault: a task, at least one step,
    /// an action in every step (its observation may be empty: a command that succeeded
    /// silently), a reward in [0, 1]. [`learn`] and
    /// [`learn_contrastive`] call it before judging; front ends call it before they open (or
    /// create) an agent's memory.
    ///
    /// [`learn`]: crate::ReasoningBank::learn
    /// [`learn_contrastive`]: crate::ReasoningBank::learn_contrastive
    ///
    /// # Errors
    /// [`Error::InvalidInput`] whose reason names the field (`task`, `steps`,
    /// `steps[2].action`, `reward`).
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidInput {
                what: "trajectory",
                reason,
            })
        };
        if self.task.trim().is_empty() {
            return bad("`task` is empty".into());
        }
        if self.steps.is_empty() {
            return bad(
                "`steps` is empty: a trajectory needs at least one {\"action\", \"observation\"}"
                    .into(),
            );
        }
        for (j, s) in self.steps.iter().enumerate() {
            if s.action.trim().is_empty() {
                return bad(format!("`steps[{j}].action` is empty"));
            }
        }
        if let Some(r) = self.reward
            && !(0.0..=1.0).contains(&r)
        {
            return bad(format!("`reward` must be in [0, 1], got {r}"));
        }
        Ok(())
    }
}

/// A judge's decision on a trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// Success or failure.
    pub outcome: Outcome,
    /// Why (the LLM's thoughts, the rule that fired, "caller's outcome").
    pub reasons: String,
    /// Which judge decided: `explicit`, `rule`, `llm`.
    pub judge: String,
    /// When a configured fallback judge decided because the primary one failed: the primary's
    /// error. `None` when the primary decided.
    #[serde(default)]
    pub fallback_from: Option<String>,
}

impl Verdict {
    /// A verdict by `judge`.
    pub fn new(outcome: Outcome, reasons: impl Into<String>, judge: impl Into<String>) -> Self {
        Verdict {
            outcome,
            reasons: reasons.into(),
            judge: judge.into(),
            fallback_from: None,
        }
    }
}

/// A memory item before it is stored: what a [`Distiller`](crate::Distiller) returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemDraft {
    /// A short name.
    pub title: String,
    /// One sentence summary.
    pub description: String,
    /// The insight itself, a few sentences.
    pub content: String,
    /// Strategy, pitfall or insight.
    pub kind: ItemKind,
}

impl ItemDraft {
    /// The text that is embedded and searched: title, description and content on three lines.
    pub fn embedded_text(&self) -> String {
        format!("{}\n{}\n{}", self.title, self.description, self.content)
    }
}

/// Feedback on an item after an agent used it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    /// It helped: one success.
    Success,
    /// It did not: one failure.
    Failure,
    /// A reward in [0, 1]: counts as `r` successes and `1 - r` failures.
    Reward(f32),
}

/// A stored memory item (see the [module docs](self) for its record layout).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MemoryItem {
    /// Its record id.
    pub id: RecordId,
    /// Short name.
    pub title: String,
    /// One sentence summary.
    pub description: String,
    /// The insight.
    pub content: String,
    /// Strategy, pitfall or insight.
    pub kind: ItemKind,
    /// Outcome of the trajectory it was distilled from.
    pub outcome: Outcome,
    /// The experience record it was distilled from.
    pub source: Option<RecordId>,
    /// That trajectory's task.
    pub task: String,
    /// The distiller that wrote it.
    pub distiller: String,
    /// Posterior mean reliability in (0, 1) (see [`BankBuilder::prior`](crate::BankBuilder::prior)).
    pub confidence: f32,
    /// Feedback successes (fractional with rewards).
    pub successes: f64,
    /// Feedback failures (fractional with rewards).
    pub failures: f64,
    /// Times it was recalled or put into a context.
    pub usage_count: u64,
    /// Unix ms of the last use.
    pub last_used_at: Option<i64>,
    /// Lifecycle state.
    pub status: ItemStatus,
    /// The item that absorbed this one, when merged.
    pub merged_into: Option<RecordId>,
    /// Items folded into this one.
    pub merged_from: Vec<RecordId>,
    /// Similar items with the opposite outcome.
    pub contradicts: Vec<RecordId>,
    /// Unix ms of creation.
    pub created_at: i64,
    /// Unix ms of the last write (feedback, usage, merge).
    pub updated_at: i64,
}

/// Beta-posterior prior pseudo-counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Prior {
    pub alpha: f64,
    pub beta: f64,
}

impl Prior {
    /// `(1, 1)`, the uniform prior and the default ([`BankBuilder::prior`](crate::BankBuilder::prior)):
    /// it assumes nothing about a new item, which starts at confidence 0.5
    /// ([`MISSING_CONFIDENCE`]), and one report moves it by a sixth.
    pub(crate) const UNIFORM: Prior = Prior {
        alpha: 1.0,
        beta: 1.0,
    };

    pub(crate) fn mean(self, successes: f64, failures: f64) -> f32 {
        ((self.alpha + successes) / (self.alpha + self.beta + successes + failures)) as f32
    }
}

/// Metadata of a fresh item.
pub(crate) fn item_metadata(
    draft: &ItemDraft,
    outcome: Outcome,
    source: Option<RecordId>,
    task: &str,
    distiller: &str,
    prior: Prior,
) -> Value {
    let mut m = Map::new();
    m.insert(keys::LAYOUT.into(), LAYOUT_VERSION.into());
    m.insert(keys::TITLE.into(), draft.title.clone().into());
    m.insert(keys::DESCRIPTION.into(), draft.description.clone().into());
    m.insert(keys::CONTENT.into(), draft.content.clone().into());
    m.insert(keys::ITEM_KIND.into(), draft.kind.as_str().into());
    m.insert(keys::OUTCOME.into(), outcome.as_str().into());
    m.insert(keys::SOURCE.into(), id_or_null(source));
    m.insert(keys::TASK.into(), task.into());
    m.insert(keys::DISTILLER.into(), distiller.into());
    m.insert(keys::SUCCESSES.into(), json!(0.0));
    m.insert(keys::FAILURES.into(), json!(0.0));
    m.insert(keys::CONFIDENCE.into(), json!(prior.mean(0.0, 0.0)));
    m.insert(keys::USAGE_COUNT.into(), 0.into());
    m.insert(keys::LAST_USED_AT.into(), Value::Null);
    m.insert(keys::STATUS.into(), ItemStatus::Active.as_str().into());
    m.insert(keys::MERGED_INTO.into(), Value::Null);
    m.insert(keys::MERGED_FROM.into(), Value::Array(Vec::new()));
    m.insert(keys::CONTRADICTS.into(), Value::Array(Vec::new()));
    m.insert(keys::COUNTERS.into(), Value::Object(Map::new()));
    Value::Object(m)
}

/// A UUID string, or null.
fn id_or_null(id: Option<RecordId>) -> Value {
    id.map_or(Value::Null, |i| i.to_string().into())
}

impl MemoryItem {
    /// Decodes a `pattern` record.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] if the record is not a pattern or its metadata does not follow
    /// the layout.
    pub fn from_record(record: &Record) -> Result<MemoryItem> {
        if record.kind != PATTERN_KIND {
            return Err(Error::InvalidRecord {
                id: record.id,
                expected: PATTERN_KIND,
                reason: format!("its kind is {:?}", record.kind),
            });
        }
        let m = ItemMetadata::of(record);
        let (kind, outcome, status) = (m.kind()?, m.outcome()?, m.status()?);
        Ok(MemoryItem {
            id: record.id,
            title: m.title()?.to_owned(),
            description: m.description()?.to_owned(),
            content: m.content()?.to_owned(),
            kind,
            outcome,
            source: m.source()?,
            task: m.task().to_owned(),
            distiller: m.distiller().to_owned(),
            confidence: m.confidence().unwrap_or(MISSING_CONFIDENCE),
            successes: m.successes(),
            failures: m.failures(),
            usage_count: m.usage_count(),
            last_used_at: m.last_used_at(),
            status,
            merged_into: m.merged_into()?,
            merged_from: m.merged_from()?,
            contradicts: m.contradicts()?,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    /// The text that was embedded: title, description and content on three lines.
    pub fn embedded_text(&self) -> String {
        format!("{}\n{}\n{}", self.title, self.description, self.content)
    }

    /// The metadata object this item is stored with: `base` (the stored object, so keys other
    /// layers added survive) with this item's keys written over it.
    pub(crate) fn to_metadata(&self, base: &Map<String, Value>) -> Value {
        let ids = |v: &[RecordId]| Value::Array(v.iter().map(|i| i.to_string().into()).collect());
        let mut m = base.clone();
        m.insert(keys::LAYOUT.into(), LAYOUT_VERSION.into());
        m.insert(keys::TITLE.into(), self.title.clone().into());
        m.insert(keys::DESCRIPTION.into(), self.description.clone().into());
        m.insert(keys::CONTENT.into(), self.content.clone().into());
        m.insert(keys::ITEM_KIND.into(), self.kind.as_str().into());
        m.insert(keys::OUTCOME.into(), self.outcome.as_str().into());
        m.insert(keys::SOURCE.into(), id_or_null(self.source));
        m.insert(keys::TASK.into(), self.task.clone().into());
        m.insert(keys::DISTILLER.into(), self.distiller.clone().into());
        m.insert(keys::SUCCESSES.into(), json!(self.successes));
        m.insert(keys::FAILURES.into(), json!(self.failures));
        m.insert(keys::CONFIDENCE.into(), json!(self.confidence));
        m.insert(keys::USAGE_COUNT.into(), self.usage_count.into());
        m.insert(keys::LAST_USED_AT.into(), json!(self.last_used_at));
        m.insert(keys::STATUS.into(), self.status.as_str().into());
        m.insert(keys::MERGED_INTO.into(), id_or_null(self.merged_into));
        m.insert(keys::MERGED_FROM.into(), ids(&self.merged_from));
        m.insert(keys::CONTRADICTS.into(), ids(&self.contradicts));
        Value::Object(m)
    }
}

/// Metadata of a stored trajectory (see the module docs).
pub(crate) fn experience_metadata(t: &Trajectory, verdict: &Verdict, items: &[RecordId]) -> Value {
    let mut m = Map::new();
    m.insert(keys::LAYOUT.into(), LAYOUT_VERSION.into());
    m.insert(keys::TASK.into(), t.task.clone().into());
    m.insert(keys::STEPS.into(), json!(t.steps));
    m.insert(keys::ANSWER.into(), json!(t.answer));
    m.insert(keys::OUTCOME.into(), verdict.outcome.as_str().into());
    m.insert(keys::CLAIMED_OUTCOME.into(), json!(t.outcome));
    m.insert(keys::REWARD.into(), json!(t.reward));
    m.insert(keys::VERDICT.into(), json!(verdict));
    m.insert(
        keys::ITEMS.into(),
        Value::Array(items.iter().map(|i| i.to_string().into()).collect()),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trajectory_json_round_trips_with_defaults() {
        let t: Trajectory = serde_json::from_str(r#"{"task": "x"}"#).unwrap();
        assert!(t.steps.is_empty() && t.outcome.is_none());
        let t: Trajectory = serde_json::from_str(
            r#"{"task": "x", "steps": [{"action": "a"}], "outcome": "failure", "reward": 0.2}"#,
        )
        .unwrap();
        assert_eq!(t.outcome, Some(Outcome::Failure));
        assert_eq!(t.steps[0].observation, "");
    }

    #[test]
    fn prior_mean() {
        let p = Prior {
            alpha: 1.0,
            beta: 1.0,
        };
        assert_eq!(p.mean(0.0, 0.0), 0.5);
        assert!((p.mean(3.0, 1.0) - 4.0 / 6.0).abs() < 1e-6);
    }
}
