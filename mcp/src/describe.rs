//! What `tools/list` says of each tool: the descriptions are written for the model that
//! chooses and calls the tools (when to use one, its arguments, what it returns).

/// The filter syntax, appended to the descriptions of the tools that take a filter.
macro_rules! filter_form {
    () => {
        " A filter is a JSON object: {\"eq\": {\"field\": \"topic\", \"value\": \"http\"}}; \
operators eq ne gt gte lt lte (field + value), in nin (field + values: [...]), exists (field), \
combined with {\"and\": [...]}, {\"or\": [...]}, {\"not\": {...}}; plus {\"kind\": \"...\"} and \
{\"namespace\": \"...\"}. `field` is a metadata path with dots (\"repo.owner\")."
    };
}

pub(crate) const D_SHARD_CREATE: &str = "Create a shard for raw vectors that you embed yourself (with any model). \
Use it once before vector_insert/vector_search when you bring your own embeddings; for plain-text \
memories use memory_remember instead (it embeds for you). Arguments: shard (id), dimensions (of \
every vector), model_id (the model that makes them; vectors of different models are never mixed). \
Idempotent: for a shard that already exists with the same dimensions and model it returns \
created=false; with others it is an error. Returns {shard, created, dimensions, model_id, records}.";

pub(crate) const D_VECTOR_INSERT: &str = "Store one raw vector in a shard made by vector_shard_create, with optional \
metadata (JSON object, for filtering), text and kind. The vector must have exactly the shard's \
dimensions and finite components (NaN, infinity, null or all zeros are errors); it is stored \
normalized. Durable when the call returns. Returns {shard, id} (a UUID).";

pub(crate) const D_VECTOR_SEARCH: &str = concat!(
    "Exact nearest-neighbour search of a shard by cosine similarity with a raw \
query vector (same dimensions and model as the shard). Arguments: shard, vector, k (default 10), \
threshold (minimum cosine, optional), filter (optional, applied before ranking, so k matches \
come back when k exist). Returns {shard, results: [{id, score (cosine), text, kind, namespace, \
metadata, created_at, updated_at}]}, best first; no match is an empty list.",
    filter_form!()
);

pub(crate) const D_SHARD_STATS: &str = "Describe a shard: live records, tombstones of deleted ones, dimensions, model id, \
schema version, file and vector bytes. Omit `shard` to list every shard in the root (agents' \
memories and raw-vector shards alike). Returns {shards: [{shard, records, tombstones, \
dimensions, model_id, ...}]}.";

pub(crate) const D_SYNC_SHARD: &str = "Synchronize a local shard with a peer over QUIC: changes made on either side \
since the last sync are exchanged (delta sync, last-writer-wins on each record, deletes win over \
older writes), compressed, over mutually authenticated TLS. Use it to share an agent's memory with \
another machine or a hub. Needs this side's identity (cert.pem and key.pem from \
`reasonbank sync keygen`, default <root>/.sync) and the peer's certificate fingerprint in `trust`; \
the peer must have granted this side access to the shard. Returns {shard, sent, received, \
applied, bytes_on_wire, compression_ratio, ms}.";

pub(crate) const D_REMEMBER: &str = "Remember one piece of text for later: a fact, decision, user preference, or \
lesson. It is embedded with the server's local model and stored durably in the agent's memory. \
Use it when something is worth knowing in a future task; keep each memory self-contained. \
Optional metadata (JSON object) and kind let you filter recalls; `at` (a date, date-time or \
age such as 3d) says when it happened if not now; `agent` writes to another agent's memory. \
Returns {agent, id}.";

pub(crate) const D_RECALL: &str = concat!(
    "Search an agent's memory for what is relevant now: call it at the start of a task \
or when stuck, with the task, question or error message as `query`. Ranks by meaning and words \
(mode hybrid, the default), meaning only (vector) or words only (text, for exact identifiers). \
Optional: k (default 5), threshold (minimum cosine, e.g. 0.3), filter, shards (other agents to \
search too), agent, rerank (when the server has a reranker: rerank the best N, at least k, \
and return the best k by its score), since and until (a time window on when memories were \
created: a date 2026-12-01, an RFC 3339 date-time, an age before now such as 7d or 36h, or \
Unix ms; \"what did we decide last week\" is since 7d). Returns {results: [{id, agent, kind, \
text, metadata, score, why: {similarity, bm25, recency, reliability, rerank (when reranked)}, \
created (RFC 3339, UTC), created_at, updated_at (Unix ms)}]}, best first.",
    filter_form!()
);

pub(crate) const D_LEARN: &str = "Learn from a finished task (ReasoningBank): give the task, the steps taken \
(action + observation each), optionally the answer and the outcome (success/failure) or a \
reward. The trajectory is judged, stored as an experience, and distilled into memory items: \
strategies from successes, pitfalls from failures. Call it after every task that taught \
something, successful or not. Returns {agent, experiences, verdicts, items: [{id, title, \
description, content, kind, confidence, ...}]}.";

pub(crate) const D_FEEDBACK: &str = "Tell the memory whether an item you used helped: outcome success or failure, or \
a reward in [0, 1]. The item's confidence (a Beta posterior over all feedback) and so its future \
ranking follow. Use it after acting on items from memory_find_patterns or \
memory_synthesize_context. Returns the updated item {id, title, confidence, successes, \
failures, ...}.";

pub(crate) const D_FIND_PATTERNS: &str = "Find the learned strategies and pitfalls (memory items from memory_learn) \
most useful for a task, ranked by similarity, recency and reliability and diversified. Use it \
before starting a task similar to earlier ones. Arguments: task, k (default 5), threshold \
(minimum cosine, default 0), agent. Returns {items: [{item: {id, title, description, content, \
kind, confidence, ...}, score, similarity, recency, reliability}]}.";

pub(crate) const D_CONSOLIDATE: &str = "Tidy an agent's learned items: merge near-duplicates (keeping provenance), flag \
contradictions for review, decay old evidence and archive items that keep failing. Nothing is \
hard-deleted (merged and archived items stay restorable). Use it occasionally, e.g. after many \
memory_learn calls; dry_run=true only reports. Returns {dry_run, examined, merges, \
contradictions, decayed, pruned, written}.";

pub(crate) const D_SYNTHESIZE: &str = "Build a prompt-ready block of the learned items most useful for a task, from \
this agent and optionally other agents (shards), deduplicated, diverse and within token_budget \
tokens (default 512). Use it to prime your context before a task. Returns {text, items: [{shard, \
id, kind, title, score, tokens}], tokens_used, token_budget, duplicates_removed, omitted}.";

pub(crate) const D_GET: &str = "Read one memory by id (from memory_remember or a recall result): its text, kind, \
namespace, metadata and times. Use it to see a memory in full before updating or forgetting \
it; `agent` reads another agent's memory. Returns {id, agent, kind, namespace, text, metadata, created and \
updated (RFC 3339, UTC), created_at and updated_at (Unix ms), ...}.";

pub(crate) const D_UPDATE: &str = "Correct a memory: replace its text (re-embedded) and/or its metadata (a JSON \
object replacing the old one). Use it when a stored fact changed, rather than remembering a \
contradicting copy. Returns {agent, updated}.";

pub(crate) const D_FORGET: &str = "Forget one memory by id: its text, metadata and vector are erased, and a tombstone \
keeps sync from bringing it back. Use it for memories that are wrong, obsolete or must not be \
kept (e.g. a secret stored by mistake). Returns {agent, forgotten}.";

pub(crate) const D_CONTRADICTIONS: &str = "List the pairs of learned items that memory_consolidate flagged as \
contradicting each other (similar situations, opposite outcomes), for review: nothing is \
resolved automatically. Returns {agent, contradictions: [{a: item, b: item, similarity}]}.";
