//! The one error type of `reasonbank-memory`.

use std::path::PathBuf;

use crate::RecordId;

/// Everything that can go wrong in a store or a shard.
///
/// Context lives in fields (paths, sizes, expected vs. actual), the underlying cause in
/// `#[source]`, so callers can match on the variant and still print a full cause chain.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shard id that is empty, too long, has a forbidden character or is `.`/`..`.
    #[error("invalid shard id {id:?}: {reason}")]
    InvalidShardId {
        /// The rejected id, as given.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A record id that is not a UUID.
    #[error(
        "invalid record id {id:?}: expected a UUID such as 0190b1c2-3d4e-7f60-8a9b-0c1d2e3f4a5b"
    )]
    InvalidRecordId {
        /// The rejected id, as given.
        id: String,
    },
    /// A vector whose length differs from the shard's dimensions.
    #[error("vector has {actual} dimensions but the shard stores {expected}")]
    DimensionMismatch {
        /// Dimensions of the shard.
        expected: usize,
        /// Dimensions of the rejected vector.
        actual: usize,
    },
    /// A vector that is empty, all zeros, or holds NaN or infinity.
    #[error("invalid vector: {reason}")]
    InvalidVector {
        /// What is wrong with it.
        reason: String,
    },
    /// The shard on disk was created for another embedding model or dimension count.
    #[error(
        "shard {path} holds {found_dimensions}-d vectors of model {found_model:?}, \
         but it was opened for {expected_dimensions}-d vectors of model {expected_model:?}"
    )]
    ModelMismatch {
        /// The shard file.
        path: PathBuf,
        /// Model id recorded in the shard.
        found_model: String,
        /// Dimensions recorded in the shard.
        found_dimensions: usize,
        /// Model id the caller asked for.
        expected_model: String,
        /// Dimensions the caller asked for.
        expected_dimensions: usize,
    },
    /// A text, metadata document or other input over its documented size limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Metadata that is not a JSON object, or a kind/namespace that breaks its rules.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input (`metadata`, `kind`, `namespace`, ...).
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A filter that cannot be evaluated (bad field path, non-scalar operand, too deep, ...).
    #[error("invalid filter: {reason}")]
    InvalidFilter {
        /// Why it was rejected.
        reason: String,
    },
    /// Filter JSON that does not parse into a [`Filter`](crate::Filter).
    #[error("invalid filter JSON")]
    FilterJson(#[source] serde_json::Error),
    /// A search option out of range (k = 0, threshold outside [-1, 1], weights < 0, ...).
    #[error("invalid search option: {reason}")]
    InvalidOption {
        /// Why it was rejected.
        reason: String,
    },
    /// No live record has this id (never existed, or was deleted).
    #[error("record {id} not found")]
    NotFound {
        /// The id that was looked up.
        id: RecordId,
    },
    /// A record with this id already exists in the shard.
    #[error("record {id} already exists")]
    AlreadyExists {
        /// The duplicate id.
        id: RecordId,
    },
    /// The shard does not exist and the caller asked not to create it.
    #[error("shard {path} does not exist")]
    NoSuchShard {
        /// Where it was expected.
        path: PathBuf,
    },
    /// Creating a shard needs its dimensions and model id, and they were not given.
    #[error("shard {path} does not exist and cannot be created without dimensions and a model id")]
    MissingShardSpec {
        /// The shard file.
        path: PathBuf,
    },
    /// The file exists but is not a SQLite database written by reasonbank.
    #[error("{path} is not a reasonbank shard: {reason}")]
    NotAShard {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// SQLite reports the file as damaged (truncated, overwritten, bad pages).
    #[error("shard {path} is corrupt")]
    Corrupt {
        /// The shard file.
        path: PathBuf,
        /// SQLite's report.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row that cannot be decoded (vector BLOB of the wrong length, metadata that
    /// is not a JSON object, an id that is not a UUID).
    #[error("shard {path} is corrupt: record {id}: {reason}")]
    CorruptRecord {
        /// The shard file.
        path: PathBuf,
        /// The id column of the bad row, as stored.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The shard was written by a newer version of reasonbank.
    #[error("shard {path} has schema version {found}; this build reads versions up to {supported}")]
    UnsupportedSchema {
        /// The shard file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Newest version this build understands.
        supported: u32,
    },
    /// A change received from a peer that breaks the shard's rules; nothing of its batch was
    /// written.
    #[error("change {index} of the batch (record {id}) is invalid")]
    InvalidChange {
        /// Position of the change in the batch.
        index: usize,
        /// Its record id.
        id: RecordId,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// Any other SQLite failure.
    #[error("SQLite error on {path}")]
    Sqlite {
        /// The shard file.
        path: PathBuf,
        /// SQLite's report.
        #[source]
        source: rusqlite::Error,
    },
    /// A filesystem failure (creating the store directory, listing shards, ...).
    #[error("I/O error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The approximate-nearest-neighbour index of a shard failed (building, adding to or
    /// searching the graph) and a search asked for [`SearchMode::Ann`](crate::SearchMode::Ann)
    /// explicitly. `Auto` searches answer exactly instead; the index itself is derived data
    /// and is rebuilt from the rows.
    #[error("vector index of shard {path} failed")]
    Index {
        /// The shard file.
        path: PathBuf,
        /// What failed (also shown in [`IndexStatus::error`](crate::IndexStatus::error)).
        #[source]
        source: crate::IndexError,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the shard file in a SQLite failure: `stmt.execute(params).at(path)?`.
pub(crate) trait SqliteContext<T> {
    /// The value, or the error classified by [`Error::sqlite`] for the file at `path`.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> SqliteContext<T> for rusqlite::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::sqlite(path, source))
    }
}

impl Error {
    /// Classifies a rusqlite error raised while working on `path`.
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) => Error::Corrupt {
                path: path.to_owned(),
                source,
            },
            Some(ErrorCode::NotADatabase) => Error::NotAShard {
                path: path.to_owned(),
                reason: source.to_string(),
            },
            _ => Error::Sqlite {
                path: path.to_owned(),
                source,
            },
        }
    }
}
