//! ReasoningBank for reasonbank: agents learn reusable *memory items* from their own
//! successful **and** failed trajectories, recall them for new tasks, and refine them with
//! feedback (Ouyang et al., *ReasoningBank*, arXiv 2509.25140).
//!
//! ```no_run
//! use std::sync::Arc;
//! use reasonbank_embedders::Embedder;
//! use reasonbank_memory::{ShardId, Store, StoreOptions};
//! use reasonbank_reasoning::{Feedback, Outcome, ReasoningBank, Trajectory};
//!
//! # async fn demo(embedder: Arc<dyn Embedder>) -> Result<(), Box<dyn std::error::Error>> {
//! // Shards must be created for the embedder's model.
//! let mut opts = StoreOptions::new();
//! opts.shard_options_mut()
//!     .dimensions(embedder.dimensions())
//!     .model_id(embedder.model_id());
//! let store = Arc::new(Store::open("/tmp/reasonbank", opts)?);
//! let bank = ReasoningBank::builder(store, embedder).build()?;
//! let agent = ShardId::new("coder")?;
//!
//! // Learn from a failure and a success (judge → distill → store; offline by default).
//! let mut failed = Trajectory::new("publish the crate to the registry");
//! failed
//!     .step("cargo publish", "error: 1 files in the working directory contain changes")
//!     .outcome(Outcome::Failure);
//! bank.learn(&agent, &failed).await?;
//! let mut worked = Trajectory::new("publish the crate to the registry");
//! worked
//!     .step("git commit -am release", "1 file changed")
//!     .step("cargo publish", "Uploading reasonbank v0.1.0")
//!     .answer("published")
//!     .outcome(Outcome::Success);
//! bank.learn(&agent, &worked).await?;
//!
//! // Recall for a new task, then tell the bank whether the item helped.
//! let found = bank
//!     .find_similar_patterns(&[agent.clone()], "release a new crate version", 0.2, 3)
//!     .await?;
//! for hit in &found {
//!     println!("{:.2} {:?} {}", hit.score, hit.item.kind, hit.item.title);
//! }
//! bank.feedback(&agent, found[0].item.id, Feedback::Success).await?;
//!
//! // A prompt-ready block within 300 tokens of the model's tokenizer.
//! let ctx = bank.synthesize_context("release a new crate version", &[agent], 300).await?;
//! println!("{}", ctx.text);
//! # Ok(()) }
//! ```
//!
//! # The loop
//!
//! - [`ReasoningBank::learn`]: a [`Judge`] decides success or failure ([`ExplicitJudge`],
//!   [`RuleJudge`], or the paper's LLM-as-judge [`LlmJudge`]); a [`Distiller`] turns the
//!   trajectory into at most three items of the paper's schema (title, description, content):
//!   strategies from successes, pitfalls from failures ([`ExtractiveDistiller`] offline, or
//!   [`LlmDistiller`] with the paper's prompts); the trajectory is stored as an `experience`
//!   record and the items as `pattern` records (layout: [`types`]).
//! - [`ReasoningBank::recall_patterns`] / [`find_similar_patterns`](ReasoningBank::find_similar_patterns):
//!   `score = w_sim·similarity + w_rec·recency + w_rel·reliability` ([`Weights`]) with MMR
//!   diversity among the candidates above a relevance floor
//!   ([`BankBuilder::relevance_floor`]), matching the task against items or, as the paper
//!   does, against past task queries ([`RecallMode::TaskQuery`]). [`recency`] and
//!   [`ItemMetadata`] serve callers that rank or read records themselves.
//! - [`ReasoningBank::feedback`]: confidence is the mean of a Beta posterior over the
//!   successes and failures agents report.
//! - [`ReasoningBank::consolidate`]: merges near-duplicates with provenance, flags
//!   contradictions ([`ReasoningBank::contradictions`]), decays and prunes, with a dry run.
//! - [`ReasoningBank::synthesize_context`]: a deduplicated, diverse, ranked block from several
//!   agents' shards within a token budget, each item attributed to its agent.
//! - [`ReasoningBank::learn_contrastive`]: MaTTS, learning by contrasting several attempts
//!   at one task.
//!
//! # Where this departs from the paper
//!
//! The paper keeps everything but the memory content minimal and says so: items are only
//! appended (no consolidation), retrieval is plain embedding similarity, and the correctness
//! signal comes from an LLM judge that can be wrong. Here items carry a Beta-posterior
//! confidence fed by the outcomes agents report after using them, so a wrong judgement is
//! corrected over time; ranking weighs that reliability and recency next to similarity;
//! near-duplicates are merged with provenance and contradictions surfaced, never silently
//! deleted; failed steps inside successful trajectories become recovery strategies; and a
//! rule judge plus an extractive distiller make the loop work offline. An LLM that is
//! configured but fails is an error, or an explicit, logged fallback, never a made-up verdict.

#![forbid(unsafe_code)]

mod bank;
mod consolidate;
mod distill;
mod error;
mod evidence;
mod feedback;
mod judge;
mod llm;
pub mod metadata;
mod rank;
mod recall;
mod synthesize;
pub mod types;

pub use bank::{
    BankBuilder, DEFAULT_CANDIDATES, DEFAULT_DEDUPE_THRESHOLD, DEFAULT_MMR_LAMBDA,
    DEFAULT_RELEVANCE_FLOOR, LearnReport, ReasoningBank,
};
pub use consolidate::{
    CONSOLIDATE_ATTEMPTS, ConsolidateOptions, ConsolidationReport, Contradiction,
    ContradictionPair, DEFAULT_CONTRADICTION_THRESHOLD, DEFAULT_DUPLICATE_THRESHOLD,
    DEFAULT_PRUNE_MIN_EVIDENCE, Merge, Pruned,
};
pub use distill::{
    CONTRASTIVE_PROMPT, DEFAULT_MAX_CONTRASTIVE_ITEMS, DEFAULT_MAX_ITEMS, Distiller,
    ExtractiveDistiller, FAILURE_PROMPT, LlmDistiller, SUCCESS_PROMPT,
};
pub use error::{BoxError, Error, Result};
pub use evidence::MERGED_GROUP;
pub use feedback::FEEDBACK_ATTEMPTS;
pub use judge::{
    DEFAULT_ERROR_MARKERS, ExplicitJudge, JUDGE_SYSTEM_PROMPT, Judge, LlmJudge, RuleJudge,
};
pub use llm::{ChatClient, ChatClientBuilder, Message};
pub use metadata::{ExperienceMetadata, ItemMetadata, MISSING_CONFIDENCE, active_records};
pub use rank::{DEFAULT_RECENCY_HALF_LIFE, Weights, recency};
pub use recall::{DEFAULT_RECALL_K, RecallMode, RecallOptions, ScoredItem};
pub use synthesize::{ContextItem, SynthesizedContext, estimate_tokens};
pub use types::{
    EXPERIENCE_KIND, Feedback, ItemDraft, ItemKind, ItemStatus, LAYOUT_VERSION, MemoryItem,
    Outcome, PATTERN_KIND, Step, Trajectory, Verdict,
};
