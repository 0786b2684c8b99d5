//! Tool arguments. Each type derives `Deserialize` (what the server accepts) and `JsonSchema`
//! (what `tools/list` advertises); the field docs become the schema's descriptions, so they
//! are written for the model that fills them in.
//!
//! Serde refuses unknown fields, so a misspelled optional argument is an error the model sees
//! instead of a silently ignored one.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads a vector leniently enough to report *why* it is bad: a JSON `null` (what many JSON
/// encoders write for NaN) becomes NaN, and a number outside the f32 range becomes infinity,
/// so [`Embedding::new`](reasonbank::memory::Embedding::new) names the bad component instead
/// of serde reporting a type error.
fn lenient_vector<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    let raw = Vec::<Option<f64>>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|x| x.map_or(f32::NAN, |x| x as f32))
        .collect())
}

/// `vector_shard_create`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardCreate {
    /// Shard id: 1-128 letters, digits, `.`, `_` or `-` (not `.` or `..`). The shard is the file
    /// `<root>/<shard>.sqlite`.
    pub shard: String,
    /// Number of dimensions of every vector this shard will hold (1-65536), e.g. 384, 768, 1536.
    pub dimensions: usize,
    /// Id of the embedding model that made the vectors, e.g. `text-embedding-3-small`. Recorded
    /// in the shard so vectors of different models are never mixed.
    pub model_id: String,
}

/// `vector_insert`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorInsert {
    /// The shard to insert into (made by `vector_shard_create`).
    pub shard: String,
    /// The vector: exactly the shard's number of dimensions, finite numbers, not all zero. It
    /// is stored normalized to unit length (search is by cosine similarity).
    #[serde(deserialize_with = "lenient_vector")]
    pub vector: Vec<f32>,
    /// Metadata to store with the vector and filter on later: a JSON object (at most 64 KiB).
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Text to store with the vector (returned by searches; also searchable by words). Default
    /// empty.
    #[serde(default)]
    pub text: Option<String>,
    /// Record kind, a short label to filter on (`{"kind": "..."}`). Default `memory`.
    #[serde(default)]
    pub kind: Option<String>,
    /// A UUID to use as the record id (e.g. to mirror ids of another system). Default: a new
    /// time-ordered UUID.
    #[serde(default)]
    pub id: Option<String>,
}

/// `vector_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorSearch {
    /// The shard to search.
    pub shard: String,
    /// The query vector, with the shard's number of dimensions.
    #[serde(deserialize_with = "lenient_vector")]
    pub vector: Vec<f32>,
    /// Number of nearest records to return (1-10000). Default 10.
    #[serde(default)]
    pub k: Option<usize>,
    /// Minimum cosine similarity in [-1, 1]; records below it are left out. Default none.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Metadata filter, applied before ranking (see the tool description for its form).
    #[serde(default)]
    pub filter: Option<Value>,
}

/// `vector_shard_stats`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardStats {
    /// The shard to describe. Omit it to describe every shard in the root.
    #[serde(default)]
    pub shard: Option<String>,
}

/// `vector_sync_shard`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncShard {
    /// The local shard to sync (an agent's memory or a raw-vector shard); it must exist.
    pub shard: String,
    /// The peer's QUIC address, e.g. "10.0.0.5:7700" (a `reasonbank serve` hub or peer).
    pub peer: String,
    /// The peer's certificate fingerprint (64 hex characters, printed by its
    /// `reasonbank sync keygen`). Only a peer presenting exactly this certificate is accepted.
    pub trust: String,
    /// Directory with this side's cert.pem and key.pem. Defaults to `<root>/.sync`
    /// (create it with `reasonbank sync keygen`).
    #[serde(default)]
    pub identity: Option<String>,
    /// "both" (default), "pull" (only receive) or "push" (only send).
    #[serde(default)]
    pub direction: Option<String>,
}

/// `memory_remember`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remember {
    /// What to remember: one self-contained fact, decision, preference or lesson, in plain
    /// language (at most 1 MiB).
    pub text: String,
    /// Metadata to filter on later, a JSON object, e.g. `{"topic": "deploy", "repo": "web"}`.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Record kind, a short label such as `fact`, `decision`, `preference`. Default `memory`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace, to keep unrelated memories apart within one agent. Default empty.
    #[serde(default)]
    pub namespace: Option<String>,
    /// When it happened, if not now (something from an earlier conversation): a date
    /// (`2026-12-01`), an RFC 3339 date-time (`2026-12-01T09:30:00Z`), an age (`3d`) or Unix
    /// milliseconds. Default: now.
    #[serde(default)]
    pub at: Option<String>,
    /// The agent whose memory to write. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// How `memory_recall` ranks.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Meaning and words combined (cosine lifted by a bounded BM25 bonus). The default.
    #[default]
    Hybrid,
    /// Meaning only: cosine similarity of embeddings.
    Vector,
    /// Words only: BM25 over the text (for exact names, error codes, identifiers).
    Text,
}

/// `memory_recall`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recall {
    /// What you are looking for, in natural language (a question, the task at hand, an error
    /// message).
    pub query: String,
    /// Number of memories to return (1-10000). Default 5.
    #[serde(default)]
    pub k: Option<usize>,
    /// Minimum cosine similarity in [-1, 1] (modes `hybrid` and `vector`); around 0.3 keeps
    /// only clearly related memories. Default none.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Metadata filter, applied before ranking (see the tool description for its form).
    #[serde(default)]
    pub filter: Option<Value>,
    /// `hybrid` (default), `vector` or `text`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Other agents whose memories to search as well; results say which agent each came from.
    #[serde(default)]
    pub shards: Option<Vec<String>>,
    /// Only records of these kinds (`memory`, `pattern`, `experience`, ...). Default: every
    /// kind but `experience` (raw task trajectories come back only when asked for).
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    /// Only memories created at or after this: a date (`2026-12-01`, its start in UTC), an
    /// RFC 3339 date-time, an age before now (`7d`, `36h`, `2w`) or Unix milliseconds. For
    /// "what did we decide last week" pass `since: "7d"`.
    #[serde(default)]
    pub since: Option<String>,
    /// Only memories created before this (same forms as `since`).
    #[serde(default)]
    pub until: Option<String>,
    /// Also return learned items merged into another or archived. Default false.
    #[serde(default)]
    pub include_inactive: Option<bool>,
    /// Rerank: the server's reranker (started with --rerank-url) scores the first ranking's
    /// best `rerank` memories (at least k) against the query and the best k by its score come
    /// back. Default: no reranking.
    #[serde(default)]
    pub rerank: Option<usize>,
    /// The agent whose memory to search. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// One step of a trajectory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the agent did (a command, a tool call, an edit).
    pub action: String,
    /// What it observed as a result (output, error message, test result).
    pub observation: String,
}

/// Whether a task was achieved.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The task was achieved.
    Success,
    /// It was not.
    Failure,
}

/// `memory_learn`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Learn {
    /// The task the agent worked on, as it was given.
    pub task: String,
    /// The steps taken, in order (at least one).
    pub steps: Vec<Step>,
    /// The final answer or result, if any.
    #[serde(default)]
    pub answer: Option<String>,
    /// `success` or `failure`, if known. If neither this nor `reward` is given, a rule-based
    /// judge decides from the observations.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// A reward in [0, 1] instead of (or besides) `outcome`.
    #[serde(default)]
    pub reward: Option<f32>,
    /// The agent that learns. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_feedback`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackArgs {
    /// The memory item's id (the `id` of an item from `memory_find_patterns`,
    /// `memory_learn` or `memory_synthesize_context`).
    pub id: String,
    /// `success` if the item helped, `failure` if it did not. Give this or `reward`.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// How much it helped, in [0, 1]. Give this or `outcome`.
    #[serde(default)]
    pub reward: Option<f32>,
    /// The agent whose item it is. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_find_patterns`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindPatterns {
    /// The task at hand, in natural language.
    pub task: String,
    /// Number of items to return. Default 5.
    #[serde(default)]
    pub k: Option<usize>,
    /// Minimum cosine similarity to the task in [-1, 1]. Default 0.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// The agent whose items to search. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_consolidate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consolidate {
    /// Only report what would change, write nothing. Default false.
    #[serde(default)]
    pub dry_run: bool,
    /// Cosine at which two items of the same kind and outcome merge. Default 0.90.
    #[serde(default)]
    pub duplicate_threshold: Option<f32>,
    /// Cosine at which items of opposite outcomes are flagged as contradicting. Default 0.65.
    #[serde(default)]
    pub contradiction_threshold: Option<f32>,
    /// Feedback evidence halves over this many days. Default: no decay.
    #[serde(default)]
    pub decay_half_life_days: Option<f64>,
    /// Archive items whose confidence is below this (0 to 1). Default: never.
    #[serde(default)]
    pub prune_below_confidence: Option<f32>,
    /// Feedback reports an item needs before low confidence archives it. Default 5.
    #[serde(default)]
    pub prune_min_evidence: Option<f64>,
    /// Archive items not used for this many days. Default: never.
    #[serde(default)]
    pub prune_idle_days: Option<f64>,
    /// The agent whose items to consolidate. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_get` and `memory_forget`: one memory by id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ById {
    /// The memory's id (from `memory_remember` or a recall result).
    pub id: String,
    /// The agent whose memory it is. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_update`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// The memory's id.
    pub id: String,
    /// The new text (re-embedded). Give this, `metadata` or both.
    #[serde(default)]
    pub text: Option<String>,
    /// The new metadata, a JSON object that replaces the old one.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// The agent whose memory it is. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_contradictions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contradictions {
    /// The agent whose items to list. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `memory_synthesize_context`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Synthesize {
    /// The task the context is for, in natural language.
    pub task: String,
    /// Other agents whose items to draw from as well; each item says which agent it came from.
    #[serde(default)]
    pub shards: Option<Vec<String>>,
    /// Most tokens the returned text may take (counted with the embedding model's tokenizer).
    /// Default 512.
    #[serde(default)]
    pub token_budget: Option<usize>,
    /// The agent whose items to use first. Default: the server's agent.
    #[serde(default)]
    pub agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_nulls_and_overflow_reach_the_embedding_check() {
        let p: VectorInsert = serde_json::from_value(serde_json::json!({
            "shard": "s", "vector": [1.0, null, 1e39]
        }))
        .unwrap();
        assert_eq!(p.vector[0], 1.0);
        assert!(p.vector[1].is_nan());
        assert_eq!(p.vector[2], f32::INFINITY);
    }

    #[test]
    fn unknown_and_mistyped_fields_are_refused() {
        let r: Result<Recall, _> =
            serde_json::from_value(serde_json::json!({"query": "q", "kk": 3}));
        assert!(r.unwrap_err().to_string().contains("unknown field `kk`"));
        let r: Result<Recall, _> =
            serde_json::from_value(serde_json::json!({"query": "q", "mode": "fuzzy"}));
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("unknown variant `fuzzy`")
        );
    }

    #[test]
    fn schemas_mark_only_the_required_arguments() {
        let s = schemars::schema_for!(Recall);
        assert_eq!(s.get("required"), Some(&serde_json::json!(["query"])));
        let s = schemars::schema_for!(ShardCreate);
        assert_eq!(
            s.get("required"),
            Some(&serde_json::json!(["shard", "dimensions", "model_id"]))
        );
    }
}
