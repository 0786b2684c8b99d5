//! The command line's grammar: every command, flag and value set, parsed by clap into typed
//! values, so a bad value is a usage error (exit 2) before anything runs.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::embedders::LocalModel;
use crate::memory::{Filter, MAX_K, RecordId, SearchMode, ShardId};
use crate::reasoning::Feedback;
use crate::{RecallMode, SyncDirection};

/// `reasonbank`: agent memory that learns.
#[derive(Parser, Debug)]
#[command(name = "reasonbank", version, about = "Agent memory that learns")]
pub(crate) struct Cli {
    /// Directory of shards (default: $XDG_DATA_HOME/reasonbank or ~/.local/share/reasonbank).
    /// Commands that only read need it to exist; commands that write create it.
    #[arg(long, global = true, env = "REASONBANK_ROOT")]
    pub root: Option<PathBuf>,
    /// The agent (its shard id).
    #[arg(long, global = true, env = "REASONBANK_AGENT", default_value = crate::DEFAULT_AGENT)]
    pub agent: ShardId,
    /// Machine-readable output: one JSON document per line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log what happens on standard error (info level; `RUST_LOG` sets the filter too).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// An OpenAI-compatible chat API for the LLM judge and distiller of `learn`, up to and
    /// including `/v1` (e.g. llama.cpp's server: http://localhost:8080/v1); needs --llm-model.
    /// The API key, if any, comes from REASONBANK_LLM_API_KEY. Default: no LLM (the outcome
    /// the trajectory states, and the extractive distiller).
    #[arg(
        long,
        global = true,
        env = "REASONBANK_LLM_URL",
        requires = "llm_model"
    )]
    pub llm_url: Option<String>,
    /// The model the LLM API serves (with --llm-url).
    #[arg(
        long,
        global = true,
        env = "REASONBANK_LLM_MODEL",
        requires = "llm_url"
    )]
    pub llm_model: Option<String>,
    /// A rerank API (`POST {url}/rerank`: llama.cpp's server with --reranking, vLLM, Jina,
    /// Cohere), up to and including `/v1`; needs --rerank-model. `recall --rerank N` uses it,
    /// and `patterns` and `synthesize` let it order their candidates. The API key, if any,
    /// comes from REASONBANK_RERANK_API_KEY. Default: no reranker.
    #[arg(
        long,
        global = true,
        env = "REASONBANK_RERANK_URL",
        requires = "rerank_model"
    )]
    pub rerank_url: Option<String>,
    /// The reranking model the rerank API serves (with --rerank-url).
    #[arg(
        long,
        global = true,
        env = "REASONBANK_RERANK_MODEL",
        requires = "rerank_url"
    )]
    pub rerank_model: Option<String>,
    /// The local embedding model: all-MiniLM-L6-v2 (default, fastest) or bge-small-en-v1.5
    /// (recalls documents better, conversations worse; queries ~20% slower). A shard keeps
    /// the model it was created with and refuses another, so pass the same model every time
    /// (or set REASONBANK_MODEL).
    #[arg(
        long,
        global = true,
        env = "REASONBANK_MODEL",
        default_value = "all-MiniLM-L6-v2"
    )]
    pub model: LocalModel,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Remember a text.
    Remember {
        /// The text.
        text: String,
        /// Metadata, a JSON object.
        #[arg(long, value_parser = json_object)]
        meta: Option<serde_json::Value>,
        /// Record kind (default `memory`).
        #[arg(long)]
        kind: Option<String>,
        /// Namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// When it happened, if not now (a conversation remembered later): a date
        /// (2026-12-01), an RFC 3339 date-time (2026-12-01T09:30:00Z), an age (3d) or Unix
        /// milliseconds. `recall --since/--until` select by it.
        #[arg(long, value_name = "WHEN", value_parser = instant)]
        at: Option<i64>,
    },
    /// Recall the memories that best match a query.
    Recall(RecallArgs),
    /// Print one memory.
    Get {
        /// Its id.
        id: RecordId,
    },
    /// Change a memory's text (re-embedding it) and/or replace its metadata.
    Update {
        /// Its id.
        id: RecordId,
        /// The new text.
        #[arg(long)]
        text: Option<String>,
        /// The new metadata, a JSON object (replaces the old one).
        #[arg(long, value_parser = json_object)]
        meta: Option<serde_json::Value>,
    },
    /// Forget one memory (leaves a tombstone for sync).
    Forget {
        /// Its id.
        id: RecordId,
    },
    /// Import JSONL: an `export` (rows keep their ids and stamps and are applied
    /// last-writer-wins, so importing twice changes nothing), or one object per line with
    /// `text` and optional `metadata`, `kind`, `namespace`, `created_at` (when it happened:
    /// Unix ms, or a date, RFC 3339 date-time or age) (new memories). Every line is checked before the first write.
    Import {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// Lines embedded and stored per transaction.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
        /// Import the valid lines and report the invalid ones (default: any invalid line
        /// stops the import before anything is written).
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Export the agent as JSONL, everything needed to restore it with `import`: ids, kinds,
    /// namespaces, texts, metadata, times and stamps (format: docs/FORMAT.md).
    Export {
        /// Output file (default: standard output); written whole, then renamed into place.
        file: Option<PathBuf>,
        /// Also export tombstones (forgotten memories), so that a restore forgets them too.
        #[arg(long)]
        tombstones: bool,
    },
    /// Counts, sizes and model of the agent's shard (or every shard with --all).
    Stats {
        /// Every shard in the root.
        #[arg(long)]
        all: bool,
    },
    /// Learn from a finished task: a trajectory as JSON
    /// (`{"task", "steps": [{"action", "observation"}], "answer", "outcome"}`), or with
    /// --contrastive a JSON array of attempts at one task.
    Learn {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// The file holds several attempts at one task: contrast successes and failures.
        #[arg(long)]
        contrastive: bool,
    },
    /// Tell whether a memory item helped: `success`, `failure` or a reward in [0, 1].
    Feedback {
        /// The item's id.
        id: RecordId,
        /// success, failure, or a number in [0, 1].
        #[arg(value_parser = feedback)]
        verdict: Feedback,
    },
    /// Merge near-duplicate items, flag contradictions, decay and prune.
    Consolidate(ConsolidateArgs),
    /// The contradictions consolidation flagged between active items, for review.
    Contradictions,
    /// The memory items most useful for a task (similarity, recency, reliability).
    Patterns {
        /// The task.
        task: String,
        /// Number of items.
        #[arg(long, default_value_t = 5, value_parser = k)]
        k: usize,
        /// Minimum cosine similarity (negative values too).
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = cosine)]
        threshold: f32,
    },
    /// A prompt-ready context block for a task, from this agent and others, within a budget.
    Synthesize {
        /// The task.
        task: String,
        /// Token budget (counted with the model's tokenizer).
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
        budget: u32,
        /// Another agent's shard to draw from (repeatable).
        #[arg(long = "shard")]
        shards: Vec<ShardId>,
    },
    /// Sync shards with a peer over QUIC (mutual TLS, pinned fingerprints), or `sync keygen`.
    Sync(SyncArgs),
    /// Serve the root's shards to authorized peers (a hub), as a JSON config file says.
    Serve {
        /// The config: {"listen": "ADDR:PORT", "identity": "DIR",
        /// "peers": [{"fingerprint": "HEX", "shards": ["*"], "access": "read_write"}],
        /// "reembed": false}. With "reembed": true the hub loads the embedding model and
        /// accepts text-only pushes (`sync --text-only`), re-embedding their texts.
        #[arg(long)]
        config: PathBuf,
    },
    /// Embedding model files.
    #[command(subcommand)]
    Models(Models),
}

/// `recall`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct RecallArgs {
    /// The query.
    pub query: String,
    /// Number of results.
    #[arg(long, default_value_t = 5, value_parser = k)]
    pub k: usize,
    /// Minimum cosine similarity in [-1, 1] (negative values too: `--threshold -0.5`).
    #[arg(long, allow_negative_numbers = true, value_parser = cosine)]
    pub threshold: Option<f32>,
    /// Metadata filter as JSON, e.g. '{"eq":{"field":"topic","value":"http"}}'.
    #[arg(long, value_parser = filter)]
    pub filter: Option<Filter>,
    /// How to rank.
    #[arg(long, value_enum, default_value_t = ModeArg::Hybrid)]
    pub mode: ModeArg,
    /// How to search vectors.
    #[arg(long, value_enum, default_value_t = SearchArg::Auto)]
    pub search: SearchArg,
    /// Another agent's shard to search too (repeatable).
    #[arg(long = "shard")]
    pub shards: Vec<ShardId>,
    /// Only records of this kind (repeatable; default: every kind but `experience`).
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Also return learned items that were merged into another or archived.
    #[arg(long)]
    pub include_inactive: bool,
    /// Rerank: the reranker (--rerank-url) scores the first ranking's best N (at least --k)
    /// against the query, and the best --k by its score come back.
    #[arg(long, value_name = "N", value_parser = k)]
    pub rerank: Option<usize>,
    /// Only memories created at or after this: a date (2026-12-01, its start in UTC), an
    /// RFC 3339 date-time, an age before now (7d, 36h, 2w) or Unix milliseconds.
    #[arg(long, value_name = "WHEN", value_parser = instant)]
    pub since: Option<i64>,
    /// Only memories created before this (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = instant)]
    pub until: Option<i64>,
}

/// `recall --mode`.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ModeArg {
    /// Fusion of meaning (cosine) and words (BM25).
    Hybrid,
    /// Meaning only.
    Vector,
    /// Words only (BM25).
    Text,
}

impl From<ModeArg> for RecallMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Hybrid => RecallMode::Hybrid,
            ModeArg::Vector => RecallMode::Vector,
            ModeArg::Text => RecallMode::Text,
        }
    }
}

/// `recall --search`.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum SearchArg {
    /// Exact on small shards, the HNSW graph on large ones.
    Auto,
    /// Exact SIMD scan.
    Exact,
    /// Calibrated i8 scan, rescored exactly.
    Quantized,
    /// Sign-bit scan, rescored exactly.
    Binary,
    /// HNSW graph, rescored exactly.
    Ann,
}

impl From<SearchArg> for SearchMode {
    fn from(m: SearchArg) -> Self {
        match m {
            SearchArg::Auto => SearchMode::Auto,
            SearchArg::Exact => SearchMode::Exact,
            SearchArg::Quantized => SearchMode::Quantized,
            SearchArg::Binary => SearchMode::Binary,
            SearchArg::Ann => SearchMode::Ann,
        }
    }
}

/// `consolidate`'s arguments (defaults: merge and flag only, no decay, no pruning).
#[derive(clap::Args, Debug)]
pub(crate) struct ConsolidateArgs {
    /// Report what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Cosine at which two items of the same kind and outcome merge (default 0.90).
    #[arg(long, value_parser = cosine)]
    pub duplicate_threshold: Option<f32>,
    /// Cosine at which items of opposite outcomes are flagged as contradicting (default 0.65).
    #[arg(long, value_parser = cosine)]
    pub contradiction_threshold: Option<f32>,
    /// Feedback evidence halves over this many days (default: no decay).
    #[arg(long, value_parser = days)]
    pub decay_half_life_days: Option<f64>,
    /// Archive items whose confidence is below this (default: never).
    #[arg(long, value_parser = unit)]
    pub prune_below_confidence: Option<f32>,
    /// Feedback reports an item needs before low confidence archives it (default 5).
    #[arg(long, value_parser = days)]
    pub prune_min_evidence: Option<f64>,
    /// Archive items not used for this many days (default: never).
    #[arg(long, value_parser = days)]
    pub prune_idle_days: Option<f64>,
}

/// `sync`'s arguments.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SyncArgs {
    #[command(subcommand)]
    pub sub: Option<SyncSub>,
    /// The peer's address, e.g. 10.0.0.5:7700 or hub.example:7700.
    #[arg(long)]
    pub peer: Option<String>,
    /// The peer's certificate fingerprint (hex SHA-256, printed by its `sync keygen`).
    #[arg(long)]
    pub trust: Option<crate::sync::Fingerprint>,
    /// Shard to sync (repeatable; default: --agent).
    #[arg(long = "shard")]
    pub shards: Vec<ShardId>,
    /// Directory holding this side's cert.pem and key.pem (default: <root>/.sync).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Which way rows move.
    #[arg(long, value_enum, default_value_t = SyncDirection::Both)]
    pub direction: SyncDirection,
    /// Send text, metadata and stamps without vectors; each side re-embeds what it receives
    /// with its local model (loads the model here; the hub needs "reembed": true to accept
    /// pushes). Both sides must use the same model.
    #[arg(long)]
    pub text_only: bool,
    /// Give up on a peer that does not answer within this many seconds.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    pub timeout: f64,
}

/// `sync`'s subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum SyncSub {
    /// Create this side's key and certificate and print its fingerprint.
    Keygen {
        /// Name in the certificate.
        #[arg(long, default_value = "reasonbank")]
        name: String,
        /// Output directory (default: <root>/.sync); existing files are not overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the fingerprint of the identity already in the directory; create nothing.
        #[arg(long)]
        show: bool,
    },
}

/// `models`' subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum Models {
    /// Download (if missing) and verify the ONNX Runtime, model and tokenizer (of --model).
    Fetch(ModelArgs),
    /// Show the files that would be used (for --model), without downloading anything.
    Path(ModelArgs),
}

/// Where the model files are.
#[derive(clap::Args, Debug)]
pub(crate) struct ModelArgs {
    /// Cache directory (default: $REASONBANK_HOME/models, else $XDG_CACHE_HOME/reasonbank or
    /// ~/.cache/reasonbank).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// `--k`: 1 to [`MAX_K`].
fn k(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if (1..=MAX_K).contains(&k) => Ok(k),
        _ => Err(format!("{s:?} is not a whole number in 1..={MAX_K}")),
    }
}

/// A cosine similarity: a number in [-1, 1].
fn cosine(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(c) if (-1.0..=1.0).contains(&c) => Ok(c),
        _ => Err(format!("{s:?} is not a number in [-1, 1]")),
    }
}

/// A number in [0, 1].
fn unit(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(c) if (0.0..=1.0).contains(&c) => Ok(c),
        _ => Err(format!("{s:?} is not a number in [0, 1]")),
    }
}

/// A finite number ≥ 0 (days, counts).
fn days(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() && d >= 0.0 => Ok(d),
        _ => Err(format!("{s:?} is not a number ≥ 0")),
    }
}

/// A finite number of seconds > 0.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 86_400.0 => Ok(d),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

/// A JSON object.
fn json_object(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("not a JSON object".to_owned()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// A metadata filter, with what is wrong with it (the JSON parser's message included: clap
/// shows an error's own message only).
fn filter(s: &str) -> Result<Filter, String> {
    s.parse::<Filter>().map_err(|e| {
        let mut msg = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cause = c.source();
        }
        msg
    })
}

/// An instant in one of [`crate::units::INSTANT_FORMS`], as Unix milliseconds (an age counts
/// back from now).
fn instant(s: &str) -> Result<i64, String> {
    crate::units::read_instant("time", s).map_err(|e| e.to_string())
}

/// `feedback`'s verdict.
fn feedback(s: &str) -> Result<Feedback, String> {
    match s {
        "success" => Ok(Feedback::Success),
        "failure" => Ok(Feedback::Failure),
        r => match r.parse::<f32>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(Feedback::Reward(r)),
            _ => Err(format!(
                "{r:?} is not success, failure or a reward in [0, 1]"
            )),
        },
    }
}
