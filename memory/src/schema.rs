//! The on-disk format: pragmas, schema v1 and the `meta` table. `docs/FORMAT.md` is the
//! prose version of this file; change both together and add a fixture for every new version.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::{Error, Result};

/// Schema version written by this build (`meta.schema_version`).
pub const SCHEMA_VERSION: u32 = 1;
/// `PRAGMA application_id` of every shard: ASCII `RBNK`.
pub const APPLICATION_ID: i32 = 0x5242_4E4B;
/// Page size of new shards. A 384-d vector is a 1,536-byte BLOB; with 4 KiB pages SQLite
/// keeps only two such rows per page and wastes ~25%, with 8 KiB pages the waste is ~6%.
pub const PAGE_SIZE: u32 = 8192;
/// The only similarity metric stored so far (vectors are unit length: cosine = dot).
pub const METRIC: &str = "cosine";

const SCHEMA_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE records (
    rowid      INTEGER PRIMARY KEY,
    id         BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    kind       TEXT    NOT NULL,
    namespace  TEXT    NOT NULL DEFAULT '',
    text       TEXT    NOT NULL,
    metadata   TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    embedding  BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    origin     TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    seq        INTEGER NOT NULL,
    CHECK (deleted = 1 OR embedding IS NOT NULL)
);
CREATE UNIQUE INDEX records_seq ON records (seq);
CREATE INDEX records_version ON records (version);

CREATE VIRTUAL TABLE records_fts USING fts5 (
    text,
    content = 'records',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"#;

/// How much durability a commit buys (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = NORMAL` in WAL mode: a commit that returned survives a crash of the
    /// process (it is in the OS page cache); the last commits may be lost if the machine loses
    /// power. Costs no fsync per commit. The default.
    #[default]
    Process,
    /// `synchronous = FULL`: every commit is fsynced and survives power loss; each commit
    /// then costs a disk flush (milliseconds on most disks).
    PowerLoss,
}

/// Connection settings applied at open.
#[derive(Clone, Debug)]
pub(crate) struct Pragmas {
    pub durability: Durability,
    pub mmap_bytes: u64,
    pub cache_kib: u32,
    pub busy_timeout: Duration,
}

/// What the `meta` table says about a shard.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub schema_version: u32,
    pub dimensions: usize,
    pub model_id: String,
    pub origin: String,
}

pub(crate) fn apply_pragmas(conn: &Connection, p: &Pragmas, path: &Path) -> Result<()> {
    let e = |source| Error::sqlite(path, source);
    apply_read_pragmas(conn, p, path)?;
    // Only takes effect on a file without tables; harmless otherwise.
    conn.pragma_update(None, "page_size", PAGE_SIZE)
        .map_err(e)?;
    // WAL: readers never block the writer and a commit is one append. Persistent in the file.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(e)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotAShard {
            path: path.to_owned(),
            reason: format!("SQLite refused WAL mode (journal_mode is {mode})"),
        });
    }
    let sync = match p.durability {
        Durability::Process => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(e)?;
    Ok(())
}

/// The settings of `p` that a read-only connection takes too (busy timeout, statement cache,
/// memory map, page cache, temporary storage).
pub(crate) fn apply_read_pragmas(conn: &Connection, p: &Pragmas, path: &Path) -> Result<()> {
    let e = |source| Error::sqlite(path, source);
    conn.busy_timeout(p.busy_timeout).map_err(e)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(
        None,
        "mmap_size",
        i64::try_from(p.mmap_bytes).unwrap_or(i64::MAX),
    )
    .map_err(e)?;
    conn.pragma_update(None, "cache_size", -i64::from(p.cache_kib))
        .map_err(e)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(e)?;
    Ok(())
}

/// Reads the meta table, creating the schema first when the file has none.
///
/// `want` is `(dimensions, model_id)` of the caller, required to create a shard and checked
/// against an existing one.
pub(crate) fn init(
    conn: &mut Connection,
    path: &Path,
    want: Option<(usize, &str)>,
    now_ms: i64,
) -> Result<Meta> {
    let e = |source| Error::sqlite(path, source);
    // IMMEDIATE: two processes creating the same shard at once serialize here, and the
    // loser sees the winner's schema instead of failing on CREATE TABLE.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(e)?;
    let app_id: i32 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(e)?;
    let tables: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(e)?;
    if tables == 0 {
        let Some((dims, model)) = want else {
            return Err(Error::MissingShardSpec {
                path: path.to_owned(),
            });
        };
        tx.execute_batch(SCHEMA_V1).map_err(e)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(e)?;
        let origin = uuid::Uuid::now_v7().hyphenated().to_string();
        let rows = [
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("dimensions", dims.to_string()),
            ("metric", METRIC.to_owned()),
            ("model_id", model.to_owned()),
            ("origin", origin),
            ("created_at", now_ms.to_string()),
        ];
        for (k, v) in rows {
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", (k, v))
                .map_err(e)?;
        }
    } else if app_id != APPLICATION_ID {
        return Err(Error::NotAShard {
            path: path.to_owned(),
            reason: format!(
                "it is a SQLite database of another application (application_id {app_id:#x})"
            ),
        });
    }
    let meta = read_meta(&tx, path)?;
    tx.commit().map_err(e)?;
    if let Some((dims, model)) = want
        && (dims != meta.dimensions || model != meta.model_id)
    {
        return Err(Error::ModelMismatch {
            path: path.to_owned(),
            found_model: meta.model_id,
            found_dimensions: meta.dimensions,
            expected_model: model.to_owned(),
            expected_dimensions: dims,
        });
    }
    Ok(meta)
}

fn read_meta(conn: &Connection, path: &Path) -> Result<Meta> {
    let get = |key: &str| -> Result<String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|source| Error::sqlite(path, source))?
            .ok_or_else(|| Error::NotAShard {
                path: path.to_owned(),
                reason: format!("meta table has no {key:?}"),
            })
    };
    let bad = |key: &str, v: &str| Error::NotAShard {
        path: path.to_owned(),
        reason: format!("meta {key:?} has the invalid value {v:?}"),
    };
    let version = get("schema_version")?;
    let schema_version: u32 = version
        .parse()
        .map_err(|_| bad("schema_version", &version))?;
    if schema_version > SCHEMA_VERSION {
        return Err(Error::UnsupportedSchema {
            path: path.to_owned(),
            found: schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    let dims = get("dimensions")?;
    let dimensions = dims
        .parse::<usize>()
        .ok()
        .filter(|d| (1..=crate::MAX_DIMENSIONS).contains(d))
        .ok_or_else(|| bad("dimensions", &dims))?;
    let metric = get("metric")?;
    if metric != METRIC {
        return Err(bad("metric", &metric));
    }
    Ok(Meta {
        schema_version,
        dimensions,
        model_id: get("model_id")?,
        origin: get("origin")?,
    })
}
