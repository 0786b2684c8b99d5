//! One line of an import file: an export row (with its id and stamp, applied last-writer-wins)
//! or a new memory, read into a typed struct that refuses unknown fields and checked before
//! anything is written (`docs/FORMAT.md`, "Export format").

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EXPORT_FORMAT, Header, LEGACY_ORIGIN};
use crate::memory::{Change, DEFAULT_KIND, RecordId, check_content, check_created_at};

/// One line as `import` reads it: an export row (format 2, or format 1 without the stamp) or
/// a new memory (`text` and optional `kind`, `namespace`, `metadata`, `created_at`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    id: Option<RecordId>,
    kind: Option<String>,
    namespace: Option<String>,
    text: String,
    metadata: Option<Map<String, Value>>,
    created_at: Option<CreatedAt>,
    updated_at: Option<i64>,
    version: Option<u64>,
    origin: Option<String>,
    #[serde(default)]
    deleted: bool,
}

/// A line's `created_at`: Unix milliseconds (as `export` writes it) or, for a new memory, any
/// text `units::instant` reads (a date, an RFC 3339 date-time, an age).
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "Unix milliseconds, or a date, RFC 3339 date-time or age as a string"
)]
enum CreatedAt {
    Millis(i64),
    Text(String),
}

/// A validated line, ready to embed and write.
pub(super) enum Item {
    /// No id: a new memory with a fresh id and a local stamp.
    New(NewMemory),
    /// An id: a row state applied last-writer-wins (the vector is filled in when embedded).
    Row(Change),
}

pub(super) struct NewMemory {
    pub(super) kind: String,
    pub(super) namespace: String,
    pub(super) text: String,
    pub(super) metadata: Value,
    pub(super) created_at: Option<i64>,
}

impl Item {
    /// The text to embed, `None` for a tombstone.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Item::New(m) => Some(&m.text),
            Item::Row(c) if c.deleted => None,
            Item::Row(c) => Some(&c.text),
        }
    }
}

/// `serde_json`'s message without its position: each line is parsed alone, so "line 1" would
/// mislead; the column is kept.
fn json_error(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = s.strip_suffix(&suffix).unwrap_or(&s);
    let not_json = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON: ",
        _ => "",
    };
    format!("{not_json}{msg} (column {})", e.column())
}

/// Parses and checks one non-empty line: `Ok(None)` for a header.
pub(super) fn parse_line(line: &str) -> Result<Option<Item>, String> {
    let l: LineIn = match serde_json::from_str(line) {
        Ok(l) => l,
        Err(e) => {
            // Not a row: a header (also in the middle of concatenated exports)?
            return match serde_json::from_str::<Header>(line) {
                Ok(h) if h.reasonbank_export > EXPORT_FORMAT => Err(format!(
                    "export format {} is newer than this build reads (1-{EXPORT_FORMAT}): \
                     upgrade reasonbank",
                    h.reasonbank_export
                )),
                Ok(_) => Ok(None),
                Err(_) => Err(json_error(&e)),
            };
        }
    };
    let metadata = Value::Object(l.metadata.unwrap_or_default());
    let kind = l.kind.unwrap_or_else(|| DEFAULT_KIND.to_owned());
    let namespace = l.namespace.unwrap_or_default();
    if !l.deleted && l.text.trim().is_empty() {
        return Err("`text` is empty: there is nothing to embed".into());
    }
    let Some(id) = l.id else {
        let stamped = [
            ("updated_at", l.updated_at.is_some()),
            ("version", l.version.is_some()),
            ("origin", l.origin.is_some()),
            ("deleted", l.deleted),
        ];
        if let Some((field, _)) = stamped.iter().find(|(_, set)| *set) {
            return Err(format!(
                "`{field}` is kept only for a row with an `id`; a line without one is a new memory"
            ));
        }
        check_content(&kind, &namespace, &l.text, &metadata).map_err(|e| e.to_string())?;
        let created_at = match l.created_at {
            None => None,
            Some(CreatedAt::Millis(t)) => Some(t),
            Some(CreatedAt::Text(t)) => {
                Some(crate::units::read_instant("created_at", &t).map_err(|e| e.to_string())?)
            }
        };
        check_created_at(created_at).map_err(|e| e.to_string())?;
        return Ok(Some(Item::New(NewMemory {
            kind,
            namespace,
            text: l.text,
            metadata,
            created_at,
        })));
    };
    let (Some(created_at), Some(updated_at)) = (l.created_at, l.updated_at) else {
        return Err("a line with an `id` needs `created_at` and `updated_at`".into());
    };
    let CreatedAt::Millis(created_at) = created_at else {
        return Err(
            "a line with an `id` gives `created_at` in Unix milliseconds, as `export` \
                    writes it"
                .into(),
        );
    };
    let (version, origin) = match (l.version, l.origin) {
        (Some(v), Some(o)) => (v, o),
        (None, None) if !l.deleted => {
            // Format 1 carried no stamp: one at or below the row's real one.
            let v = u64::try_from(updated_at)
                .ok()
                .and_then(|u| u.checked_mul(1 << 16))
                .ok_or_else(|| format!("`updated_at` {updated_at} is out of range"))?;
            (v, LEGACY_ORIGIN.to_owned())
        }
        _ => {
            return Err(
                "a line with an `id` needs both `version` and `origin` (or, for a live row \
                 of a format 1 export, neither)"
                    .into(),
            );
        }
    };
    let change = Change {
        id,
        kind,
        namespace,
        text: l.text,
        // Serializing a `Value` cannot fail: its keys are strings and it holds no NaN.
        metadata: serde_json::to_string(&metadata).map_err(|e| e.to_string())?,
        embedding: None,
        created_at,
        updated_at,
        version,
        origin,
        deleted: l.deleted,
        seq: 0,
    };
    change.check_fields().map_err(|e| e.to_string())?;
    Ok(Some(Item::Row(change)))
}
