//! The crate's one error type.

use std::time::Duration;

use reasonbank_memory::RecordId;

/// A boxed error from a dependency that this crate does not name in its API (the HTTP client).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the ReasoningBank.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A storage error from `reasonbank-memory`.
    #[error(transparent)]
    Memory(#[from] reasonbank_memory::Error),

    /// An embedding error from `reasonbank-embedders`.
    #[error(transparent)]
    Embedder(#[from] reasonbank_embedders::Error),

    /// The reranker ([`BankBuilder::reranker`](crate::BankBuilder::reranker)) failed or
    /// answered nonsense; nothing was recalled rather than an order it did not make.
    #[error("the reranker {model} failed")]
    Rerank {
        /// The reranker's model id.
        model: String,
        /// Why.
        #[source]
        source: reasonbank_embedders::Error,
    },

    /// A read-modify-write kept losing to concurrent writers of the same records.
    #[error(
        "{what}: the records kept changing under concurrent writers; gave up after {attempts} attempts"
    )]
    Contended {
        /// The operation.
        what: &'static str,
        /// Attempts made.
        attempts: u32,
    },

    /// The LLM endpoint answered with a non-2xx status.
    #[error("LLM request to {url} failed with HTTP {status}: {body}")]
    Http {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the response body (at most 1 KiB).
        body: String,
    },

    /// The LLM endpoint did not answer in time.
    #[error("LLM request to {url} timed out after {after:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The configured timeout.
        after: Duration,
    },

    /// The LLM request failed below HTTP (connection refused, DNS, TLS, ...).
    #[error("LLM request to {url} failed")]
    Transport {
        /// The URL requested.
        url: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },

    /// The LLM answered, but not in the shape the prompt asked for.
    #[error(
        "malformed LLM output ({what}): {reason}; the output began: {:?}",
        output_start(excerpt)
    )]
    MalformedLlmOutput {
        /// Which call produced it (`judge`, `distill`, `chat response`).
        what: &'static str,
        /// What was wrong.
        reason: String,
        /// The start of the offending text (at most 1 KiB).
        excerpt: String,
    },

    /// A stored record is not a valid memory item or trajectory (wrong kind or metadata).
    #[error("record {id} is not a valid {expected}: {reason}")]
    InvalidRecord {
        /// The record.
        id: RecordId,
        /// `pattern` or `experience`.
        expected: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// The shard holds vectors of another model than the bank's embedder.
    #[error(
        "shard {shard} holds vectors of {shard_model:?} ({shard_dimensions} dimensions) but the \
         embedder is {embedder_model:?} ({embedder_dimensions} dimensions)"
    )]
    ModelMismatch {
        /// The shard.
        shard: reasonbank_memory::ShardId,
        /// Its model id.
        shard_model: String,
        /// Its dimensions.
        shard_dimensions: usize,
        /// The embedder's model id.
        embedder_model: String,
        /// The embedder's dimensions.
        embedder_dimensions: usize,
    },

    /// No live memory item with this id.
    #[error("no memory item {id} in the shard")]
    NoSuchItem {
        /// The id asked for.
        id: RecordId,
    },

    /// The judge could not decide: e.g. [`ExplicitJudge`](crate::ExplicitJudge) without an
    /// outcome or reward on the trajectory and without a fallback.
    #[error("the trajectory has no outcome: {reason}")]
    NoOutcome {
        /// Why.
        reason: String,
    },

    /// An argument or option is out of range.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// The argument or option.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// A blocking task (SQLite, HTTP) panicked or was cancelled.
    #[error("a blocking task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// At most 1 KiB of `text`, cut at a character boundary.
pub(crate) use reasonbank_embedders::http::excerpt;

/// The first 200 characters of an LLM's output, for an error message (the whole excerpt stays
/// in the error's `excerpt` field).
fn output_start(excerpt: &str) -> String {
    const SHOWN: usize = 200;
    match excerpt.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &excerpt[..end]),
        None => excerpt.to_owned(),
    }
}
