//! The facade's error: member-crate errors plus what only the facade can get wrong, and the
//! stable error codes every front end (CLI `--json`, MCP, Node, Python) reports.

use std::path::PathBuf;

/// Everything `AgentMemory` and the CLI can fail with.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Storage, search or input validation failed.
    #[error(transparent)]
    Memory(#[from] crate::memory::Error),
    /// Turning text into vectors failed (missing model, runtime, empty text, ...).
    #[error(transparent)]
    Embedder(#[from] crate::embedders::Error),
    /// The reranker of a reranked recall failed or answered nonsense.
    #[error("the reranker {model} failed")]
    Rerank {
        /// The reranker's model id.
        model: String,
        /// Why.
        #[source]
        source: crate::embedders::Error,
    },
    /// Judging, distilling, ranking or consolidating memory items failed.
    #[error(transparent)]
    Reasoning(#[from] crate::reasoning::Error),
    /// Shard sync with a peer failed (refused, unreachable, protocol).
    #[error(transparent)]
    Sync(#[from] crate::sync::Error),
    /// One shard of a multi-shard sync failed (see `ShardSync::all`).
    #[error("syncing shard {shard}")]
    ShardSync {
        /// The shard.
        shard: crate::memory::ShardId,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A sync identity file (certificate or key) cannot be read or written.
    #[error("{action} {path} ({hint})")]
    IdentityFile {
        /// What was being done: "reading" or "writing".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task (SQLite or ONNX work) panicked or was cancelled.
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    /// An argument that no member crate checks (e.g. a batch that is empty).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code of this error (one of [`code`]'s constants), chosen from the innermost
    /// reasonbank error variant: a storage error inside a reasoning error is a storage error,
    /// so the code names what went wrong, not which layer noticed. Every front end reports
    /// the same code for the same failure.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Memory(m) => memory_code(m),
            Error::Embedder(m) => embedder_code(m),
            Error::Rerank { source, .. } => rerank_code(source),
            Error::Reasoning(m) => reasoning_code(m),
            Error::Sync(m) => sync_code(m),
            Error::ShardSync { source, .. } => source.code(),
            Error::IdentityFile { .. } | Error::InvalidInput { .. } => code::INVALID_INPUT,
            Error::Join(_) => code::INTERNAL,
        }
    }
}

/// The code of `e` if it is one of the facade's or a member crate's errors (the CLI walks an
/// error's chain with this).
#[cfg(feature = "cli")]
pub(crate) fn code_of(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    if let Some(e) = e.downcast_ref::<Error>() {
        return Some(e.code());
    }
    if let Some(e) = e.downcast_ref::<crate::memory::Error>() {
        return Some(memory_code(e));
    }
    if let Some(e) = e.downcast_ref::<crate::embedders::Error>() {
        return Some(embedder_code(e));
    }
    if let Some(e) = e.downcast_ref::<crate::reasoning::Error>() {
        return Some(reasoning_code(e));
    }
    e.downcast_ref::<crate::sync::Error>().map(sync_code)
}

/// For an error that a shard of another embedding model caused: the shard's id (its file
/// name without `.sqlite`, or the id the reasoning bank names) and the model id it holds.
#[cfg(feature = "cli")]
pub(crate) fn stored_model<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<(String, &'a str)> {
    fn memory(e: &crate::memory::Error) -> Option<(String, &str)> {
        match e {
            crate::memory::Error::ModelMismatch {
                path, found_model, ..
            } => {
                let id = path.file_stem()?.to_string_lossy().into_owned();
                Some((id, found_model))
            }
            _ => None,
        }
    }
    fn reasoning(e: &crate::reasoning::Error) -> Option<(String, &str)> {
        match e {
            crate::reasoning::Error::ModelMismatch {
                shard, shard_model, ..
            } => Some((shard.to_string(), shard_model)),
            crate::reasoning::Error::Memory(m) => memory(m),
            _ => None,
        }
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Memory(m)) => memory(m),
        Some(Error::Reasoning(r)) => reasoning(r),
        Some(_) => None,
        None => e
            .downcast_ref::<crate::memory::Error>()
            .and_then(memory)
            .or_else(|| {
                e.downcast_ref::<crate::reasoning::Error>()
                    .and_then(reasoning)
            }),
    }
}

/// Every code an error can carry; the README's error table lists the same set.
pub mod code {
    /// An argument was rejected (bad option, text, metadata, trajectory, address, ...).
    pub const INVALID_INPUT: &str = "RB_INVALID_INPUT";
    /// An agent, shard or memory id is malformed (e.g. `../x`, not a UUID).
    pub const INVALID_ID: &str = "RB_INVALID_ID";
    /// A metadata filter does not parse or is not valid.
    pub const INVALID_FILTER: &str = "RB_INVALID_FILTER";
    /// A vector is NaN, infinite, zero or empty.
    pub const INVALID_VECTOR: &str = "RB_INVALID_VECTOR";
    /// A vector has the wrong number of dimensions for the shard.
    pub const DIMENSION_MISMATCH: &str = "RB_DIMENSION_MISMATCH";
    /// A text or metadata object is over its size limit.
    pub const TOO_LARGE: &str = "RB_TOO_LARGE";
    /// A text to embed is empty or whitespace.
    pub const EMPTY_TEXT: &str = "RB_EMPTY_TEXT";
    /// The memory or memory item does not exist.
    pub const NOT_FOUND: &str = "RB_NOT_FOUND";
    /// A record with this id already exists.
    pub const ALREADY_EXISTS: &str = "RB_ALREADY_EXISTS";
    /// Another agent's shard named in the call does not exist.
    pub const NO_SUCH_SHARD: &str = "RB_NO_SUCH_SHARD";
    /// The shard was written with a different embedding model.
    pub const MODEL_MISMATCH: &str = "RB_MODEL_MISMATCH";
    /// The file is not a reasonbank shard.
    pub const NOT_A_SHARD: &str = "RB_NOT_A_SHARD";
    /// The shard or a record in it is corrupt.
    pub const CORRUPT: &str = "RB_CORRUPT";
    /// The shard was written by a newer reasonbank.
    pub const UNSUPPORTED_SCHEMA: &str = "RB_UNSUPPORTED_SCHEMA";
    /// SQLite or the file system failed.
    pub const STORAGE: &str = "RB_STORAGE";
    /// The model, tokenizer or runtime file is missing (run `reasonbank models fetch`).
    pub const MODEL_MISSING: &str = "RB_MODEL_MISSING";
    /// A model file does not match its pinned checksum.
    pub const MODEL_CORRUPT: &str = "RB_MODEL_CORRUPT";
    /// Downloading the model files failed.
    pub const FETCH_FAILED: &str = "RB_FETCH_FAILED";
    /// The ONNX Runtime library cannot be loaded (or another one already was).
    pub const RUNTIME: &str = "RB_RUNTIME";
    /// The embedder failed while running (inference, tokenizer, remote embedder).
    pub const EMBEDDER: &str = "RB_EMBEDDER";
    /// An LLM judge or distiller failed or answered nonsense.
    pub const LLM: &str = "RB_LLM";
    /// The reranker failed or answered nonsense (unreachable, HTTP error, a score missing).
    pub const RERANK: &str = "RB_RERANK";
    /// The peer refused: unknown fingerprint, no grant for the shard.
    pub const SYNC_DENIED: &str = "RB_SYNC_DENIED";
    /// The peer cannot be reached or the connection broke.
    pub const SYNC_NETWORK: &str = "RB_SYNC_NETWORK";
    /// The peer broke the protocol or speaks another version.
    pub const SYNC_PROTOCOL: &str = "RB_SYNC_PROTOCOL";
    /// A bug: a blocking task panicked or was cancelled.
    pub const INTERNAL: &str = "RB_INTERNAL";
}

fn memory_code(e: &crate::memory::Error) -> &'static str {
    use crate::memory::Error as E;
    match e {
        E::InvalidShardId { .. } | E::InvalidRecordId { .. } => code::INVALID_ID,
        E::DimensionMismatch { .. } => code::DIMENSION_MISMATCH,
        E::InvalidVector { .. } => code::INVALID_VECTOR,
        E::ModelMismatch { .. } => code::MODEL_MISMATCH,
        E::TooLarge { .. } => code::TOO_LARGE,
        E::InvalidInput { .. } | E::InvalidOption { .. } | E::InvalidChange { .. } => {
            code::INVALID_INPUT
        }
        E::InvalidFilter { .. } | E::FilterJson(_) => code::INVALID_FILTER,
        E::NotFound { .. } => code::NOT_FOUND,
        E::AlreadyExists { .. } => code::ALREADY_EXISTS,
        E::NoSuchShard { .. } | E::MissingShardSpec { .. } => code::NO_SUCH_SHARD,
        E::NotAShard { .. } => code::NOT_A_SHARD,
        E::Corrupt { .. } | E::CorruptRecord { .. } => code::CORRUPT,
        E::UnsupportedSchema { .. } => code::UNSUPPORTED_SCHEMA,
        _ => code::STORAGE,
    }
}

fn embedder_code(e: &crate::embedders::Error) -> &'static str {
    use crate::embedders::Error as E;
    match e {
        E::EmptyText { .. } => code::EMPTY_TEXT,
        E::MissingFile { .. } | E::NoCacheDir => code::MODEL_MISSING,
        E::ChecksumMismatch { .. } => code::MODEL_CORRUPT,
        E::Fetch { .. } | E::PackageLayout { .. } => code::FETCH_FAILED,
        E::RuntimeLoad { .. }
        | E::RuntimeAlreadyInitialized { .. }
        | E::UnsupportedPlatform { .. } => code::RUNTIME,
        E::InvalidConfig(_) => code::INVALID_INPUT,
        E::Join(_) => code::INTERNAL,
        _ => code::EMBEDDER,
    }
}

fn rerank_code(e: &crate::embedders::Error) -> &'static str {
    use crate::embedders::Error as E;
    match e {
        E::InvalidConfig(_) => code::INVALID_INPUT,
        E::Join(_) => code::INTERNAL,
        _ => code::RERANK,
    }
}

fn reasoning_code(e: &crate::reasoning::Error) -> &'static str {
    use crate::reasoning::Error as E;
    match e {
        E::Memory(m) => memory_code(m),
        E::Embedder(m) => embedder_code(m),
        E::Rerank { source, .. } => rerank_code(source),
        E::NoSuchItem { .. } => code::NOT_FOUND,
        E::NoOutcome { .. } | E::InvalidInput { .. } => code::INVALID_INPUT,
        E::ModelMismatch { .. } => code::MODEL_MISMATCH,
        E::InvalidRecord { .. } => code::CORRUPT,
        E::Join(_) => code::INTERNAL,
        _ => code::LLM,
    }
}

fn sync_code(e: &crate::sync::Error) -> &'static str {
    use crate::sync::Error as E;
    match e {
        E::Memory(m) => memory_code(m),
        E::ModelMismatch { .. } => code::MODEL_MISMATCH,
        E::Identity { .. } | E::InvalidFingerprint { .. } | E::InvalidOption { .. } => {
            code::INVALID_INPUT
        }
        E::UnknownPeer { .. }
        | E::AccessDenied { .. }
        | E::Refused { .. }
        | E::HandshakeRefused { .. } => code::SYNC_DENIED,
        E::Io(_)
        | E::Unreachable { .. }
        | E::Connect(_)
        | E::Connection(_)
        | E::Write(_)
        | E::Read(_)
        | E::Timeout { .. }
        | E::UnexpectedEnd
        | E::Tls { .. } => code::SYNC_NETWORK,
        E::Task(_) => code::INTERNAL,
        _ => code::SYNC_PROTOCOL,
    }
}
