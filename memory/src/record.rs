//! Records as callers write ([`NewRecord`], [`RecordUpdate`]) and read ([`Record`]) them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Embedding, Error, RecordId, Result};

/// Largest accepted text, in bytes (1 MiB). Longer texts are refused, never truncated.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Largest accepted metadata document, serialized as JSON, in bytes (64 KiB).
pub const MAX_METADATA_BYTES: usize = 64 << 10;
/// Longest accepted kind, in bytes.
pub const MAX_KIND_BYTES: usize = 64;
/// Longest accepted namespace, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 256;
/// Kind given to records that don't name one.
pub const DEFAULT_KIND: &str = "memory";
/// Latest accepted [`NewRecord::created_at`]: 9999-12-31T23:59:59.999Z, in Unix milliseconds.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// A record to insert.
///
/// ```
/// use reasonbank_memory::{Embedding, NewRecord};
/// let mut r = NewRecord::new("retry with backoff", Embedding::new(vec![1.0, 0.0]).unwrap());
/// r.kind("pattern").namespace("http").metadata(serde_json::json!({"lang": "rust"}));
/// ```
#[derive(Clone, Debug)]
pub struct NewRecord {
    pub(crate) id: Option<RecordId>,
    pub(crate) kind: String,
    pub(crate) namespace: String,
    pub(crate) text: String,
    pub(crate) metadata: Value,
    pub(crate) embedding: Embedding,
    pub(crate) created_at: Option<i64>,
}

impl NewRecord {
    /// A record of kind `memory` in the default (empty) namespace with no metadata.
    pub fn new(text: impl Into<String>, embedding: Embedding) -> Self {
        NewRecord {
            id: None,
            kind: DEFAULT_KIND.to_owned(),
            namespace: String::new(),
            text: text.into(),
            metadata: Value::Object(Map::new()),
            embedding,
            created_at: None,
        }
    }

    /// Uses this id instead of a fresh UUIDv7. Defaults to a fresh id.
    pub fn id(&mut self, id: RecordId) -> &mut Self {
        self.id = Some(id);
        self
    }

    /// The record's kind: 1–64 bytes of `[a-z0-9_.:-]`, e.g. `pattern`, `experience`.
    /// Defaults to `memory`.
    pub fn kind(&mut self, kind: impl Into<String>) -> &mut Self {
        self.kind = kind.into();
        self
    }

    /// The record's namespace: up to 256 bytes, no control characters. Defaults to `""`.
    pub fn namespace(&mut self, namespace: impl Into<String>) -> &mut Self {
        self.namespace = namespace.into();
        self
    }

    /// Metadata: a JSON object of at most 64 KiB serialized. Defaults to `{}`.
    pub fn metadata(&mut self, metadata: Value) -> &mut Self {
        self.metadata = metadata;
        self
    }

    /// The record's creation time, Unix milliseconds in `0..=`[`MAX_TIMESTAMP_MS`]: the time
    /// the record is about, for records written after the fact (a conversation imported
    /// later). `updated_at` is still the time of the write. Defaults to the time of the
    /// write.
    pub fn created_at(&mut self, unix_ms: i64) -> &mut Self {
        self.created_at = Some(unix_ms);
        self
    }
}

/// Changes to an existing record; fields left `None` keep their value.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RecordUpdate {
    /// New text (the full-text index follows in the same transaction).
    pub text: Option<String>,
    /// New metadata, replacing the old document.
    pub metadata: Option<Value>,
    /// New vector.
    pub embedding: Option<Embedding>,
    /// New kind.
    pub kind: Option<String>,
    /// New namespace.
    pub namespace: Option<String>,
}

impl RecordUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the new text.
    pub fn text(&mut self, text: impl Into<String>) -> &mut Self {
        self.text = Some(text.into());
        self
    }
    /// Sets the new metadata.
    pub fn metadata(&mut self, metadata: Value) -> &mut Self {
        self.metadata = Some(metadata);
        self
    }
    /// Sets the new vector.
    pub fn embedding(&mut self, embedding: Embedding) -> &mut Self {
        self.embedding = Some(embedding);
        self
    }
    /// Sets the new kind.
    pub fn kind(&mut self, kind: impl Into<String>) -> &mut Self {
        self.kind = Some(kind.into());
        self
    }
    /// Sets the new namespace.
    pub fn namespace(&mut self, namespace: impl Into<String>) -> &mut Self {
        self.namespace = Some(namespace.into());
        self
    }
}

/// A stored record.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Record {
    /// Its id.
    pub id: RecordId,
    /// Its kind (`memory`, `pattern`, `experience`, ...).
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its text (empty for tombstones).
    pub text: String,
    /// Its metadata object (empty for tombstones).
    pub metadata: Map<String, Value>,
    /// Its vector: loaded by `get`, left out of search hits; `None` for tombstones.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_embedding"
    )]
    pub embedding: Option<Embedding>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Time of the last write, Unix milliseconds.
    pub updated_at: i64,
    /// Hybrid logical clock stamp of the last write: Unix ms << 16 | logical counter.
    pub version: u64,
    /// Id of the writer (peer) that made the last write.
    pub origin: String,
    /// Whether this is a tombstone left by a delete.
    pub deleted: bool,
}

fn ser_embedding<S: serde::Serializer>(e: &Option<Embedding>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => e.as_slice().serialize(s),
        None => s.serialize_none(),
    }
}

/// Checks a record's content against the rules every write path applies (kind, namespace,
/// text and metadata limits), without writing anything: a caller can validate a whole input
/// (an import file) before its first write.
///
/// # Errors
/// The error the write would return: [`Error::InvalidInput`] or [`Error::TooLarge`].
pub fn check_content(kind: &str, namespace: &str, text: &str, metadata: &Value) -> Result<()> {
    check_kind(kind)?;
    check_namespace(namespace)?;
    check_text(text)?;
    metadata_json(metadata).map(drop)
}

/// Checks a [`NewRecord::created_at`]: Unix milliseconds from 1970 to the end of 9999 (so a
/// caller can refuse it before doing costly work, as the shard does on insert).
///
/// # Errors
/// [`Error::InvalidInput`] about `created_at` otherwise.
pub fn check_created_at(created_at: Option<i64>) -> Result<()> {
    match created_at {
        Some(t) if !(0..=MAX_TIMESTAMP_MS).contains(&t) => Err(Error::InvalidInput {
            what: "created_at",
            reason: format!(
                "{t} is not a Unix time in milliseconds between 1970 and the end of 9999"
            ),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_text(text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::TooLarge {
            what: "text",
            size: text.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn check_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_BYTES
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            what: "kind",
            reason: format!(
                "{kind:?} must be 1-64 bytes of lowercase letters, digits, `_`, `.`, `:` or `-`"
            ),
        })
    }
}

pub(crate) fn check_namespace(ns: &str) -> Result<()> {
    if ns.len() > MAX_NAMESPACE_BYTES {
        return Err(Error::TooLarge {
            what: "namespace",
            size: ns.len(),
            limit: MAX_NAMESPACE_BYTES,
        });
    }
    if ns.chars().any(char::is_control) {
        return Err(Error::InvalidInput {
            what: "namespace",
            reason: "it contains a control character".into(),
        });
    }
    Ok(())
}

/// Checks metadata and returns its serialized form.
pub(crate) fn metadata_json(metadata: &Value) -> Result<String> {
    if !metadata.is_object() {
        return Err(Error::InvalidInput {
            what: "metadata",
            reason: format!("expected a JSON object, got {}", json_type(metadata)),
        });
    }
    let normal = crate::counters::normalize(metadata)?;
    let metadata = normal.as_ref().unwrap_or(metadata);
    // Serializing a `Value` cannot fail: its keys are strings and it holds no non-finite floats.
    metadata_within_limit(serde_json::to_string(metadata).expect("serializing a serde_json::Value"))
}

/// `s`, serialized metadata, unless it is over [`MAX_METADATA_BYTES`] ([`Error::TooLarge`]).
pub(crate) fn metadata_within_limit(s: String) -> Result<String> {
    if s.len() > MAX_METADATA_BYTES {
        return Err(Error::TooLarge {
            what: "metadata",
            size: s.len(),
            limit: MAX_METADATA_BYTES,
        });
    }
    Ok(s)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
