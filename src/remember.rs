//! [`AgentMemory::remember`](crate::AgentMemory::remember)'s input: [`Memory`], what to
//! remember.

use serde_json::{Map, Value};

/// What to remember: text plus optional metadata, kind, namespace and creation time.
#[derive(Clone, Debug)]
pub struct Memory {
    /// The text (embedded as a document).
    pub text: String,
    /// A JSON object (default `{}`).
    pub metadata: Value,
    /// Record kind (default `memory`).
    pub kind: Option<String>,
    /// Namespace (default `""`).
    pub namespace: Option<String>,
    /// When it happened, Unix milliseconds (default: when it is remembered). For memories
    /// written after the fact, such as an imported conversation, so that
    /// [`RecallOptions::since`](crate::RecallOptions::since)/[`until`](crate::RecallOptions::until)
    /// find them by their own time.
    pub created_at: Option<i64>,
}

impl Memory {
    /// Text with no metadata.
    pub fn new(text: impl Into<String>) -> Self {
        Memory {
            text: text.into(),
            metadata: Value::Object(Map::new()),
            kind: None,
            namespace: None,
            created_at: None,
        }
    }
    /// The memory the front ends' optional arguments describe: no metadata is `{}`, no kind
    /// or namespace the defaults.
    pub fn from_parts(
        text: impl Into<String>,
        metadata: Option<Value>,
        kind: Option<String>,
        namespace: Option<String>,
    ) -> Self {
        Memory {
            text: text.into(),
            metadata: metadata.unwrap_or_else(|| Value::Object(Map::new())),
            kind,
            namespace,
            created_at: None,
        }
    }
    /// Sets the metadata object.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
    /// Sets the kind.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }
    /// Sets the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }
    /// Sets when it happened (Unix milliseconds, 1970 to 9999; see
    /// [`units::instant`](crate::units::instant) for reading one from text). `None` is when
    /// it is remembered.
    pub fn created_at(mut self, unix_ms: Option<i64>) -> Self {
        self.created_at = unix_ms;
        self
    }
}
