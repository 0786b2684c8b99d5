//! Identifiers: [`ShardId`] (validated, never a path) and [`RecordId`] (a time-ordered UUID).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Longest accepted shard id, in bytes.
pub const MAX_SHARD_ID_LEN: usize = 128;

/// The name of one agent's shard.
///
/// 1–128 characters from `[A-Za-z0-9._-]`, and never `.` or `..`. Because `/`, `\` and NUL
/// can't appear and the dot-only names are refused, a `ShardId` joined to a store directory
/// always names a file directly inside it: a hostile id such as `../../etc/x` is an
/// [`Error::InvalidShardId`], never a path.
///
/// ```
/// use reasonbank_memory::ShardId;
/// assert!(ShardId::new("coder-01").is_ok());
/// assert!(ShardId::new("../../etc/x").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ShardId(String);

impl ShardId {
    /// Validates `id`.
    ///
    /// # Errors
    /// [`Error::InvalidShardId`] when `id` breaks the rules above.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_SHARD_ID_LEN {
            Some("it is longer than 128 bytes")
        } else if id == "." || id == ".." {
            Some("`.` and `..` are reserved")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some("only letters, digits, `.`, `_` and `-` are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidShardId { id, reason }),
            None => Ok(ShardId(id)),
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ShardId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ShardId::new(s)
    }
}

impl<'de> Deserialize<'de> for ShardId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ShardId::new(s).map_err(serde::de::Error::custom)
    }
}

/// The id of one record: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(uuid::Uuid);

impl RecordId {
    /// A fresh time-ordered id.
    pub fn new() -> Self {
        RecordId(uuid::Uuid::now_v7())
    }

    /// Wraps an existing UUID (e.g. one received from a peer).
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        RecordId(id)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }

    /// The id as a 128-bit integer; its order is the order of ids (used to break score ties).
    pub fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The 16 big-endian bytes stored in the `id` column; byte order is id order.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Reads the 16 bytes of an `id` column; `None` for any other length.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        uuid::Uuid::from_slice(b).ok().map(RecordId)
    }
}

impl Default for RecordId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl rusqlite::ToSql for RecordId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Blob(self.as_bytes()),
        ))
    }
}

impl FromStr for RecordId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(RecordId)
            .map_err(|_| Error::InvalidRecordId { id: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids() {
        for ok in [
            "a",
            "agent_1",
            "coder.v2",
            "A-b.C_d",
            &"x".repeat(128),
            "...",
        ] {
            assert!(ShardId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc/x",
            "a/b",
            "a\\b",
            "a\0b",
            "ä",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(ShardId::new(bad), Err(Error::InvalidShardId { .. })),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<ShardId>("\"../x\"").is_err());
    }

    #[test]
    fn record_ids_are_time_ordered_and_parse() {
        let a = RecordId::new();
        let b = RecordId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<RecordId>().unwrap(), a);
        assert!(matches!(
            "nope".parse::<RecordId>(),
            Err(Error::InvalidRecordId { .. })
        ));
    }
}
