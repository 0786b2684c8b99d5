//! The typed failures of the index: why the index file was not used at open
//! ([`IndexFileError`]), what the file turned out to be ([`IndexFileOutcome`]), and what went
//! wrong with the graph or a save afterwards ([`IndexError`]).
//!
//! The messages are those [`IndexStatus`](super::IndexStatus) showed as strings before, and
//! these types serialize as those strings, so `reasonbank stats --json` prints the same.
//! Causes from usearch and the OS are kept as their messages: the status is `Clone` and
//! comparable, which `std::io::Error` and usearch's exception are not.

use std::path::PathBuf;

/// Why the index file was not used when the shard opened; the graph is then rebuilt from
/// the rows in the background.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexFileError {
    /// There is no index file (a new shard, or the file was removed).
    #[error("missing")]
    Missing,
    /// The file was not read: no thread could be started to read it, or the reader panicked.
    #[error("not read: {reason}")]
    NotRead {
        /// What stopped it.
        reason: String,
    },
    /// The file exists but could not be opened or mapped.
    #[error("unreadable: {reason}")]
    Unreadable {
        /// The OS error.
        reason: String,
    },
    /// The file is damaged: short, a checksum or length mismatch, a graph that does not
    /// parse, or a row count other than its header says.
    #[error("corrupt: {reason}")]
    Corrupt {
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written in a newer format.
    #[error("unsupported: format version {version}")]
    Unsupported {
        /// The format version found.
        version: u32,
    },
    /// The file belongs to another shard, or its graph was built with other dimensions,
    /// vector encoding or settings.
    #[error("mismatch: {reason}")]
    Mismatch {
        /// What differs.
        reason: String,
    },
    /// The graph library could not open the file's graph.
    #[error("unusable: {reason}")]
    Unusable {
        /// What failed.
        reason: String,
    },
    /// The file read well but does not match the rows: its stamp is ahead of the shard, or
    /// rows it should hold are missing or have other vectors.
    #[error("rejected: {reason}")]
    Rejected {
        /// The mismatch found.
        reason: String,
    },
}

/// What became of the index file when the shard opened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexFileOutcome {
    /// Its graph was loaded (and checked against the rows).
    Loaded,
    /// It was not used, for this reason; the graph is rebuilt from the rows.
    NotUsed(IndexFileError),
}

impl std::fmt::Display for IndexFileOutcome {
    /// `loaded`, or the reason the file was not used.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexFileOutcome::Loaded => f.write_str("loaded"),
            IndexFileOutcome::NotUsed(e) => e.fmt(f),
        }
    }
}

/// A failure of a shard's graph after it opened: of the fold, a search or a save. After one,
/// searches in `Auto` answer exactly and [`SearchMode::Ann`](crate::SearchMode::Ann) reports
/// it as [`Error::Index`](crate::Error::Index); the next open rebuilds the graph.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The graph library (usearch) failed an operation.
    #[error("{action}: {message}")]
    Graph {
        /// The operation: `creating the graph`, `adding row 7`, `searching the graph`, ...
        action: String,
        /// usearch's message.
        message: String,
    },
    /// The graph was dropped while the fold was using it.
    #[error("graph vanished")]
    Vanished,
    /// A thread the index needs could not be started.
    #[error("cannot start the {thread} thread: {message}")]
    Thread {
        /// Which thread (`fold`).
        thread: &'static str,
        /// The OS error.
        message: String,
    },
    /// Writing the index file failed (it is written to a temporary file, then renamed).
    #[error("{action} {}: {message}", path.display())]
    Save {
        /// `creating`, `writing`, `syncing` or `renaming`.
        action: &'static str,
        /// The temporary file.
        path: PathBuf,
        /// The kind of the OS error.
        kind: std::io::ErrorKind,
        /// The OS error.
        message: String,
    },
}

impl IndexError {
    /// A usearch failure while doing `action`.
    pub(crate) fn graph(action: impl Into<String>, e: impl std::fmt::Display) -> Self {
        IndexError::Graph {
            action: action.into(),
            message: e.to_string(),
        }
    }
}

/// Serializes as the display string, as `IndexStatus` did when these were strings.
macro_rules! serialize_as_display {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

serialize_as_display!(IndexFileError, IndexFileOutcome, IndexError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_strings_the_status_showed() {
        let cases: Vec<(String, &str)> = vec![
            (IndexFileOutcome::Loaded.to_string(), "loaded"),
            (
                IndexFileOutcome::NotUsed(IndexFileError::Missing).to_string(),
                "missing",
            ),
            (
                IndexFileError::Corrupt {
                    reason: "payload checksum mismatch".into(),
                }
                .to_string(),
                "corrupt: payload checksum mismatch",
            ),
            (
                IndexFileError::Unsupported { version: 3 }.to_string(),
                "unsupported: format version 3",
            ),
            (
                IndexFileError::Rejected {
                    reason: "row 7 is missing from the graph".into(),
                }
                .to_string(),
                "rejected: row 7 is missing from the graph",
            ),
            (
                IndexError::graph("adding row 7", "out of memory").to_string(),
                "adding row 7: out of memory",
            ),
            (
                IndexError::Thread {
                    thread: "fold",
                    message: "no threads".into(),
                }
                .to_string(),
                "cannot start the fold thread: no threads",
            ),
            (
                IndexError::Save {
                    action: "renaming",
                    path: "/s/a.sqlite.hnsw.1-0.tmp".into(),
                    kind: std::io::ErrorKind::PermissionDenied,
                    message: "denied".into(),
                }
                .to_string(),
                "renaming /s/a.sqlite.hnsw.1-0.tmp: denied",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert_eq!(
            serde_json::to_value(IndexFileOutcome::Loaded).unwrap(),
            serde_json::json!("loaded")
        );
    }
}
