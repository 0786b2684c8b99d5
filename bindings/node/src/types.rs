//! The JavaScript shapes of arguments and results (camelCase objects; TypeScript interfaces are
//! generated from them) and their conversions from and to the facade's types. Conversion only:
//! every check of a value is the facade's or a member crate's.

use napi::bindgen_prelude::{Either, Float32Array};
use napi_derive::napi;
use reasonbank::memory::{Record, ShardStats as RsShardStats};
use reasonbank::reasoning::{
    ConsolidationReport as RsConsolidationReport, ContextItem as RsContextItem,
    LearnReport as RsLearnReport, MemoryItem as RsMemoryItem, ScoredItem as RsScoredItem,
    SynthesizedContext as RsSynthesizedContext, Verdict as RsVerdict,
};
use serde::Serialize;

use serde_json::{Map, Value};

/// Unix milliseconds and counters cross as JS numbers (exact up to 2^53).
fn num(n: u64) -> f64 {
    n as f64
}

/// The serde name of a unit enum variant (`"success"`, `"strategy"`, `"active"`).
fn variant_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        // Unit variants of these enums always serialize to a string; anything else is
        // shown as its JSON rather than hidden.
        Ok(other) => other.to_string(),
        Err(e) => format!("<unserializable: {e}>"),
    }
}

/// One memory for `rememberBatch`.
#[napi(object)]
pub struct MemoryInput {
    /// The text (embedded as a document).
    pub text: String,
    /// A JSON object. Defaults to `{}`.
    #[napi(ts_type = "Record<string, unknown>")]
    pub metadata: Option<Value>,
    /// Record kind. Defaults to `memory`.
    pub kind: Option<String>,
    /// Namespace. Defaults to `""`.
    pub namespace: Option<String>,
    /// When it happened, if not now: as `createdAt` of `RememberOptions`.
    #[napi(ts_type = "number | string")]
    pub created_at: Option<Either<f64, String>>,
}

/// Options of `remember`.
#[napi(object)]
#[derive(Default)]
pub struct RememberOptions {
    /// Record kind. Defaults to `memory`.
    pub kind: Option<String>,
    /// Namespace. Defaults to `""`.
    pub namespace: Option<String>,
    /// When it happened, if not now (a conversation remembered later): Unix milliseconds
    /// (`date.getTime()`), or a date (`2026-12-01`), RFC 3339 date-time
    /// (`date.toISOString()`) or age (`3d`) as a string. `recall`'s `since`/`until` select
    /// by it. Defaults to now.
    #[napi(ts_type = "number | string")]
    pub created_at: Option<Either<f64, String>>,
}

/// Options of `recall`.
#[napi(object)]
#[derive(Default)]
pub struct RecallOptions {
    /// Number of results. Defaults to 5.
    pub k: Option<u32>,
    /// Minimum cosine similarity in [-1, 1] (vector and hybrid modes). Defaults to none.
    pub threshold: Option<f64>,
    /// A metadata filter, as an object or its JSON text, e.g.
    /// `{eq: {field: "topic", value: "http"}}`. Applied before ranking. Defaults to none.
    #[napi(ts_type = "Record<string, unknown> | string")]
    pub filter: Option<Value>,
    /// `hybrid` (meaning and words, the default), `vector` (meaning) or `text` (BM25).
    #[napi(ts_type = "'hybrid' | 'vector' | 'text'")]
    pub mode: Option<String>,
    /// How the vector side is searched: `auto` (the default: picked by shard size), `exact`,
    /// `quantized` (i8 scan), `binary` (sign-bit scan) or `ann` (HNSW graph). Scores are
    /// exact cosines in every mode; the approximate ones only choose rows faster on large
    /// shards.
    #[napi(ts_type = "'auto' | 'exact' | 'quantized' | 'binary' | 'ann'")]
    pub search: Option<String>,
    /// Other agents' shards to search too. Defaults to none.
    pub shards: Option<Vec<String>>,
    /// Only records of these kinds. Defaults to every kind but `experience` (raw
    /// trajectories come back only when asked for).
    pub kinds: Option<Vec<String>>,
    /// Also return learned items merged into another or archived. Defaults to false.
    pub include_inactive: Option<bool>,
    /// Rerank: the first ranking (as `mode` says) keeps its best `rerank` memories, the
    /// reranker of `AgentMemory.open`'s `rerankUrl` scores each against the query, and the
    /// best `k` by that score come back, with it as `score` and `why.rerank`. At least `k`
    /// and at most 10000; the reranker reads that many texts per recall. Without a reranker
    /// rejects with `RB_INVALID_INPUT`, a failing one with `RB_RERANK`. Defaults to none (no
    /// reranking).
    pub rerank: Option<u32>,
    /// Only memories created at or after this: Unix milliseconds, or a date (`2026-12-01`,
    /// its start in UTC), RFC 3339 date-time or age before now (`7d`, `36h`, `2w`) as a
    /// string. Defaults to no lower bound.
    #[napi(ts_type = "number | string")]
    pub since: Option<Either<f64, String>>,
    /// Only memories created before this (same forms as `since`). Defaults to no upper bound.
    #[napi(ts_type = "number | string")]
    pub until: Option<Either<f64, String>>,
}

/// Why a memory scored as it did.
#[napi(object)]
pub struct Why {
    /// Cosine similarity of query and memory, when a vector ranking ran.
    pub similarity: Option<f64>,
    /// BM25 relevance (higher is better), when the memory shares words with the query.
    pub bm25: Option<f64>,
    /// `0.5^(age / half-life)` of the last update.
    pub recency: f64,
    /// The memory's `confidence` metadata in [0, 1], if any.
    pub reliability: Option<f64>,
    /// The reranker's score of the memory against the query, when the recall was reranked
    /// (`rerank`); its scale is the reranker model's.
    pub rerank: Option<f64>,
}

/// One recalled memory.
#[napi(object)]
pub struct Recalled {
    /// Its id (a UUID).
    pub id: String,
    /// The agent (shard) it belongs to.
    pub shard: String,
    /// Its kind.
    pub kind: String,
    /// Its text.
    pub text: String,
    /// Its metadata.
    #[napi(ts_type = "Record<string, unknown>")]
    pub metadata: Map<String, Value>,
    /// Fused score (hybrid: cosine plus a bounded BM25 bonus), cosine (vector) or BM25 (text);
    /// the reranker's score when the recall was reranked.
    pub score: f64,
    /// The parts of the score.
    pub why: Why,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last update, Unix milliseconds.
    pub updated_at: i64,
}

impl From<reasonbank::Recalled> for Recalled {
    fn from(r: reasonbank::Recalled) -> Self {
        Recalled {
            id: r.id.to_string(),
            shard: r.shard.to_string(),
            kind: r.kind,
            text: r.text,
            metadata: r.metadata,
            score: f64::from(r.score),
            why: Why {
                similarity: r.why.similarity.map(f64::from),
                bm25: r.why.bm25.map(f64::from),
                recency: f64::from(r.why.recency),
                reliability: r.why.reliability.map(f64::from),
                rerank: r.why.rerank.map(f64::from),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A stored memory, with its embedding.
#[napi(object)]
pub struct MemoryRecord {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its text.
    pub text: String,
    /// Its metadata.
    #[napi(ts_type = "Record<string, unknown>")]
    pub metadata: Map<String, Value>,
    /// The unit-length embedding of its text.
    pub embedding: Option<Float32Array>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last update, Unix milliseconds.
    pub updated_at: i64,
    /// Version, bumped by every write (sync resolves conflicts with it).
    pub version: f64,
    /// The replica that wrote the current version.
    pub origin: String,
}

impl From<Record> for MemoryRecord {
    fn from(r: Record) -> Self {
        MemoryRecord {
            id: r.id.to_string(),
            kind: r.kind,
            namespace: r.namespace,
            text: r.text,
            metadata: r.metadata,
            embedding: r.embedding.map(|e| Float32Array::new(e.into_vec())),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: num(r.version),
            origin: r.origin,
        }
    }
}

/// Changes of `update`: the text (re-embedded) and/or the metadata (replaced).
#[napi(object)]
pub struct UpdateInput {
    /// New text.
    pub text: Option<String>,
    /// New metadata object.
    #[napi(ts_type = "Record<string, unknown>")]
    pub metadata: Option<Value>,
}

/// Counts, sizes and model of a shard.
#[napi(object)]
pub struct ShardStats {
    /// Live memories.
    pub records: f64,
    /// Forgotten memories kept as tombstones for sync.
    pub tombstones: f64,
    /// Vector dimensions.
    pub dimensions: u32,
    /// The embedding model's id.
    pub model_id: String,
    /// The similarity metric.
    pub metric: String,
    /// The on-disk schema version.
    pub schema_version: u32,
    /// Size of the SQLite file(s), bytes.
    pub file_bytes: f64,
    /// Bytes of the in-memory vector arena.
    pub vector_bytes: f64,
}

impl From<RsShardStats> for ShardStats {
    fn from(s: RsShardStats) -> Self {
        ShardStats {
            records: num(s.records),
            tombstones: num(s.tombstones),
            dimensions: u32::try_from(s.dimensions).unwrap_or(u32::MAX),
            model_id: s.model_id,
            metric: s.metric,
            schema_version: s.schema_version,
            file_bytes: num(s.file_bytes),
            vector_bytes: num(s.vector_bytes),
        }
    }
}

/// One step of a trajectory.
#[napi(object)]
#[derive(Serialize)]
pub struct StepInput {
    /// What the agent did.
    pub action: String,
    /// What it saw. Defaults to `""`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<String>,
}

/// A finished task for `learn`: what was asked, what the agent did and saw, and how it ended.
#[napi(object)]
#[derive(Serialize)]
pub struct TrajectoryInput {
    /// The task.
    pub task: String,
    /// The steps, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepInput>>,
    /// The final answer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// `success` or `failure`; without it (and without `reward`) the rule-based judge decides.
    #[napi(ts_type = "'success' | 'failure'")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// A reward in [0, 1] instead of an outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward: Option<f64>,
}

/// A judge's verdict on a trajectory.
#[napi(object)]
pub struct Verdict {
    /// `success` or `failure`.
    pub outcome: String,
    /// Why.
    pub reasons: String,
    /// Which judge decided.
    pub judge: String,
    /// The judge that failed before this one answered, when a fallback was configured.
    pub fallback_from: Option<String>,
}

impl From<RsVerdict> for Verdict {
    fn from(v: RsVerdict) -> Self {
        Verdict {
            outcome: v.outcome.as_str().to_owned(),
            reasons: v.reasons,
            judge: v.judge,
            fallback_from: v.fallback_from,
        }
    }
}

/// Two active items that consolidation flagged as contradicting each other, for review.
#[napi(object)]
pub struct Contradiction {
    /// One item.
    pub a: MemoryItem,
    /// The other.
    pub b: MemoryItem,
    /// Their cosine similarity.
    pub similarity: f64,
}

impl From<reasonbank::reasoning::Contradiction> for Contradiction {
    fn from(c: reasonbank::reasoning::Contradiction) -> Self {
        Contradiction {
            a: c.a.into(),
            b: c.b.into(),
            similarity: f64::from(c.similarity),
        }
    }
}

/// A distilled memory item: a strategy (from a success) or a pitfall (from a failure).
#[napi(object)]
pub struct MemoryItem {
    /// Its id.
    pub id: String,
    /// A short title.
    pub title: String,
    /// One sentence on when it applies.
    pub description: String,
    /// The lesson.
    pub content: String,
    /// `strategy` or `pitfall` (or another kind a distiller made).
    pub kind: String,
    /// The outcome of the trajectory it came from.
    pub outcome: String,
    /// The experience (trajectory record) it was distilled from.
    pub source: Option<String>,
    /// The task of that trajectory.
    pub task: String,
    /// Which distiller made it.
    pub distiller: String,
    /// Posterior mean of "it helps", in [0, 1].
    pub confidence: f64,
    /// Evidence for it (feedback successes, fractional for rewards).
    pub successes: f64,
    /// Evidence against it.
    pub failures: f64,
    /// How often it was recalled.
    pub usage_count: f64,
    /// When it was last recalled, Unix milliseconds.
    pub last_used_at: Option<i64>,
    /// `active`, `merged` or `archived`.
    pub status: String,
    /// The item it was merged into.
    pub merged_into: Option<String>,
    /// Items merged into it.
    pub merged_from: Vec<String>,
    /// Items flagged as contradicting it.
    pub contradicts: Vec<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last update, Unix milliseconds.
    pub updated_at: i64,
}

impl From<RsMemoryItem> for MemoryItem {
    fn from(i: RsMemoryItem) -> Self {
        MemoryItem {
            id: i.id.to_string(),
            title: i.title,
            description: i.description,
            content: i.content,
            kind: variant_name(&i.kind),
            outcome: i.outcome.as_str().to_owned(),
            source: i.source.map(|s| s.to_string()),
            task: i.task,
            distiller: i.distiller,
            confidence: f64::from(i.confidence),
            successes: i.successes,
            failures: i.failures,
            usage_count: num(i.usage_count),
            last_used_at: i.last_used_at,
            status: variant_name(&i.status),
            merged_into: i.merged_into.map(|s| s.to_string()),
            merged_from: i.merged_from.iter().map(ToString::to_string).collect(),
            contradicts: i.contradicts.iter().map(ToString::to_string).collect(),
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// A memory item with the parts of its ranking score.
#[napi(object)]
pub struct ScoredItem {
    /// The item.
    pub item: MemoryItem,
    /// The shard it lives in.
    pub shard: String,
    /// Weighted sum of similarity, recency and reliability.
    pub score: f64,
    /// Cosine similarity to the task.
    pub similarity: f64,
    /// The reranker's score of the item against the task, when `AgentMemory.open` was given
    /// a reranker (`rerankUrl`) and the item was among the candidates it scored; its scale is
    /// the reranker model's.
    pub rerank: Option<f64>,
    /// `2^(-age / half-life)`.
    pub recency: f64,
    /// The item's confidence.
    pub reliability: f64,
    /// The past experience whose task matched (task-query mode).
    pub via_task: Option<String>,
}

impl From<RsScoredItem> for ScoredItem {
    fn from(s: RsScoredItem) -> Self {
        ScoredItem {
            item: s.item.into(),
            shard: s.shard.to_string(),
            score: f64::from(s.score),
            similarity: f64::from(s.similarity),
            rerank: s.rerank.map(f64::from),
            recency: f64::from(s.recency),
            reliability: f64::from(s.reliability),
            via_task: s.via_task.map(|t| t.to_string()),
        }
    }
}

/// What `learn` did.
#[napi(object)]
pub struct LearnReport {
    /// The experience records stored (one per trajectory).
    pub experiences: Vec<String>,
    /// The verdict on each trajectory.
    pub verdicts: Vec<Verdict>,
    /// The memory items distilled.
    pub items: Vec<MemoryItem>,
    /// The consolidation run after learning, when the bank is configured to run one.
    pub consolidation: Option<ConsolidationReport>,
}

impl From<RsLearnReport> for LearnReport {
    fn from(r: RsLearnReport) -> Self {
        LearnReport {
            experiences: r.experiences.iter().map(ToString::to_string).collect(),
            verdicts: r.verdicts.into_iter().map(Into::into).collect(),
            items: r.items.into_iter().map(Into::into).collect(),
            consolidation: r.consolidation.map(Into::into),
        }
    }
}

/// Options of `consolidate`. Every field is optional; each documents its default.
#[napi(object)]
#[derive(Default)]
pub struct ConsolidateOptions {
    /// Report without writing. Defaults to false.
    pub dry_run: Option<bool>,
    /// Same-kind items at least this similar are merged. Defaults to 0.90.
    pub duplicate_threshold: Option<f64>,
    /// Opposite-outcome items at least this similar are flagged. Defaults to 0.65.
    pub contradiction_threshold: Option<f64>,
    /// Feedback evidence halves over this many milliseconds. Defaults to none (no decay).
    pub evidence_half_life_ms: Option<f64>,
    /// Archive items below this confidence (with enough evidence). Defaults to none.
    pub prune_below_confidence: Option<f64>,
    /// Evidence needed before low confidence prunes. Defaults to 5.
    pub prune_min_evidence: Option<f64>,
    /// Archive items neither used nor created within this many milliseconds. Defaults to none.
    pub prune_idle_ms: Option<f64>,
}

/// Two items merged by consolidation.
#[napi(object)]
pub struct Merge {
    /// The survivor.
    pub winner: String,
    /// The item folded into it (kept, status `merged`).
    pub loser: String,
    /// Their cosine similarity.
    pub similarity: f64,
}

/// Two items flagged as contradicting each other.
#[napi(object)]
pub struct ContradictionPair {
    /// One item.
    pub a: String,
    /// The other.
    pub b: String,
    /// Their cosine similarity.
    pub similarity: f64,
}

/// An item archived by consolidation.
#[napi(object)]
pub struct Pruned {
    /// The item (kept, status `archived`).
    pub id: String,
    /// Why.
    pub reason: String,
}

/// What `consolidate` did (or would do, in a dry run).
#[napi(object)]
pub struct ConsolidationReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Items looked at.
    pub examined: u32,
    /// Merges.
    pub merges: Vec<Merge>,
    /// Contradictions flagged.
    pub contradictions: Vec<ContradictionPair>,
    /// Items whose evidence decayed.
    pub decayed: u32,
    /// Items archived.
    pub pruned: Vec<Pruned>,
    /// Rows written.
    pub written: u32,
    /// Items that stand again after a merge cycle between replicas (the oldest of each cycle).
    pub revived: Vec<String>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<RsConsolidationReport> for ConsolidationReport {
    fn from(r: RsConsolidationReport) -> Self {
        ConsolidationReport {
            dry_run: r.dry_run,
            examined: count(r.examined),
            merges: r
                .merges
                .into_iter()
                .map(|m| Merge {
                    winner: m.winner.to_string(),
                    loser: m.loser.to_string(),
                    similarity: f64::from(m.similarity),
                })
                .collect(),
            contradictions: r
                .contradictions
                .into_iter()
                .map(|c| ContradictionPair {
                    a: c.a.to_string(),
                    b: c.b.to_string(),
                    similarity: f64::from(c.similarity),
                })
                .collect(),
            decayed: count(r.decayed),
            pruned: r
                .pruned
                .into_iter()
                .map(|p| Pruned {
                    id: p.id.to_string(),
                    reason: p.reason,
                })
                .collect(),
            written: count(r.written),
            revived: r.revived.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Options of `findSimilarPatterns`.
#[napi(object)]
#[derive(Default)]
pub struct PatternOptions {
    /// Number of items. Defaults to 5.
    pub k: Option<u32>,
    /// Minimum cosine similarity. Defaults to 0.
    pub threshold: Option<f64>,
}

/// Options of `synthesizeContext`.
#[napi(object)]
#[derive(Default)]
pub struct SynthesizeOptions {
    /// Other agents' shards to draw from. Defaults to none.
    pub shards: Option<Vec<String>>,
    /// Token budget, counted with the model's tokenizer. Defaults to 512.
    pub token_budget: Option<u32>,
}

/// One item in a synthesized context.
#[napi(object)]
pub struct ContextItem {
    /// The agent it came from.
    pub shard: String,
    /// Its id.
    pub id: String,
    /// `strategy` or `pitfall`.
    pub kind: String,
    /// Its title.
    pub title: String,
    /// Its ranking score.
    pub score: f64,
    /// Tokens it takes in the text.
    pub tokens: u32,
}

impl From<RsContextItem> for ContextItem {
    fn from(c: RsContextItem) -> Self {
        ContextItem {
            shard: c.shard.to_string(),
            id: c.id.to_string(),
            kind: variant_name(&c.kind),
            title: c.title,
            score: f64::from(c.score),
            tokens: count(c.tokens),
        }
    }
}

/// A prompt-ready block of memory items within a token budget.
#[napi(object)]
pub struct SynthesizedContext {
    /// The text to put in a prompt.
    pub text: String,
    /// The items in it, in order.
    pub items: Vec<ContextItem>,
    /// Tokens used.
    pub tokens_used: u32,
    /// The budget.
    pub token_budget: u32,
    /// Whether tokens were counted with the model's tokenizer (else estimated).
    pub tokens_exact: bool,
    /// Near-duplicates left out.
    pub duplicates_removed: u32,
    /// Items left out for the budget.
    pub omitted: u32,
    /// Candidates left out because their relevance was far below the best one's.
    pub below_relevance_floor: u32,
}

impl From<RsSynthesizedContext> for SynthesizedContext {
    fn from(c: RsSynthesizedContext) -> Self {
        SynthesizedContext {
            text: c.text,
            items: c.items.into_iter().map(Into::into).collect(),
            tokens_used: count(c.tokens_used),
            token_budget: count(c.token_budget),
            tokens_exact: c.tokens_exact,
            duplicates_removed: count(c.duplicates_removed),
            omitted: count(c.omitted),
            below_relevance_floor: count(c.below_relevance_floor),
        }
    }
}

/// This side's sync identity: a self-signed certificate, its key and its fingerprint.
#[napi(object)]
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM. Keep it secret.
    pub key_pem: String,
    /// Hex SHA-256 of the certificate: what the peer passes as `trust`.
    pub fingerprint: String,
}

/// Options of `sync`.
#[napi(object)]
pub struct SyncOptions {
    /// The peer's address, `host:port` (e.g. `10.0.0.5:7700`).
    pub peer: String,
    /// The peer's certificate fingerprint (hex SHA-256).
    pub trust: String,
    /// This side's certificate, PEM. Defaults to `<identityDir>/cert.pem`.
    pub cert_pem: Option<String>,
    /// This side's key, PEM. Defaults to `<identityDir>/key.pem`.
    pub key_pem: Option<String>,
    /// Directory holding `cert.pem` and `key.pem` (as `reasonbank sync keygen` writes).
    /// Defaults to `<root>/.sync`.
    pub identity_dir: Option<String>,
    /// `both` (the default), `pull` or `push`.
    #[napi(ts_type = "'both' | 'pull' | 'push'")]
    pub direction: Option<String>,
    /// Shards to sync. Defaults to this agent's.
    pub shards: Option<Vec<String>>,
}

/// What syncing one shard did.
#[napi(object)]
pub struct SyncReport {
    /// The shard.
    pub shard: String,
    /// Changes sent to the peer.
    pub sent: f64,
    /// Changes received from it.
    pub received: f64,
    /// Received changes that won last-writer-wins and were applied.
    pub applied: f64,
    /// Bytes on the wire, both ways.
    pub bytes_on_wire: f64,
    /// Raw / compressed size of the change batches.
    pub compression_ratio: f64,
    /// Whether the pull went out as 0-RTT early data.
    pub zero_rtt: bool,
    /// Wall time, milliseconds.
    pub ms: f64,
    /// A two-way sync whose push the peer denied (a read-only grant): only the pull ran.
    pub push_denied: bool,
}

impl SyncReport {
    pub(crate) fn new(shard: String, r: &reasonbank::sync::SyncReport) -> Self {
        SyncReport {
            shard,
            sent: num(r.changes_sent),
            received: num(r.changes_received),
            applied: num(r.changes_applied),
            bytes_on_wire: num(r.bytes_on_wire()),
            compression_ratio: r.compression_ratio(),
            zero_rtt: r.zero_rtt,
            ms: r.elapsed.as_secs_f64() * 1e3,
            push_denied: r.push_denied,
        }
    }
}

/// A peer allowed by `serve`.
#[napi(object)]
pub struct ServePeer {
    /// The peer's certificate fingerprint.
    pub fingerprint: String,
    /// Shards it may access (`*` for all). Defaults to all.
    pub shards: Option<Vec<String>>,
    /// `read`, `write` or `read_write`.
    #[napi(ts_type = "'read' | 'write' | 'read_write'")]
    pub access: String,
}

/// Options of `serve`.
#[napi(object)]
pub struct ServeOptions {
    /// Address to listen on, e.g. `127.0.0.1:7700` (port 0 picks a free one).
    pub listen: String,
    /// This side's certificate, PEM.
    pub cert_pem: String,
    /// This side's key, PEM.
    pub key_pem: String,
    /// The peers allowed in, with their grants.
    pub peers: Vec<ServePeer>,
}
