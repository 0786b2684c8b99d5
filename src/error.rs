//! The facade's error: member-crate errors plus what only the facade can get wrong.

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
    /// Judging, distilling, ranking or consolidating memory items failed.
    #[error(transparent)]
    Reasoning(#[from] crate::reasoning::Error),
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
