//! The on-disk format is a contract: a shard written by schema v1 opens and reads the same.
//! `tests/fixtures/shard-v1.sqlite` was written by `regenerate_v1_fixture` and is committed;
//! never regenerate it for a released version, add a new fixture per schema version instead.

use reasonbank_memory::{
    APPLICATION_ID, Embedding, NewRecord, Query, RecordId, SCHEMA_VERSION, SearchOptions, Shard,
    ShardOptions,
};
use serde_json::json;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/shard-v1.sqlite"
);

fn fixture_rows() -> Vec<(&'static str, &'static str, [f32; 4], serde_json::Value)> {
    vec![
        (
            "01890000-0000-7000-8000-000000000001",
            "retry with exponential backoff",
            [1.0, 0.0, 0.0, 0.0],
            json!({"lang": "rust", "stars": 5}),
        ),
        (
            "01890000-0000-7000-8000-000000000002",
            "cache parsed configuration",
            [0.0, 1.0, 0.0, 0.0],
            json!({"lang": "go"}),
        ),
        (
            "01890000-0000-7000-8000-000000000003",
            "deleted record",
            [0.0, 0.0, 1.0, 0.0],
            json!({}),
        ),
    ]
}

/// Writes the fixture. Run explicitly:
/// `RB_REGENERATE_FIXTURES=1 cargo test -p reasonbank-memory --test it format::regenerate_v1_fixture -- --ignored`
#[test]
#[ignore = "writes the committed fixture; run only when adding a schema version"]
fn regenerate_v1_fixture() {
    if std::env::var("RB_REGENERATE_FIXTURES").is_err() {
        return;
    }
    let _ = std::fs::remove_file(FIXTURE);
    let mut o = ShardOptions::new();
    o.dimensions(4).model_id("fixture-model");
    let shard = Shard::open(FIXTURE, &o).unwrap();
    for (id, text, v, meta) in fixture_rows() {
        let mut r = NewRecord::new(text, Embedding::new(v.to_vec()).unwrap());
        r.id(id.parse().unwrap()).kind("pattern").metadata(meta);
        shard.insert(&r).unwrap();
    }
    shard.delete(fixture_rows()[2].0.parse().unwrap()).unwrap();
}

#[test]
fn v1_fixture_opens_and_reads() {
    assert_eq!(
        SCHEMA_VERSION, 1,
        "a new schema version needs its own fixture and test"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    std::fs::copy(FIXTURE, &path).unwrap();
    let mut o = ShardOptions::new();
    o.dimensions(4).model_id("fixture-model");
    let shard = Shard::open(&path, &o).unwrap();
    let stats = shard.stats().unwrap();
    assert_eq!(
        (stats.records, stats.tombstones, stats.schema_version),
        (2, 1, 1)
    );

    let rows = fixture_rows();
    let r = shard.get(rows[0].0.parse().unwrap()).unwrap().unwrap();
    assert_eq!(r.text, "retry with exponential backoff");
    assert_eq!(r.kind, "pattern");
    assert_eq!(serde_json::Value::Object(r.metadata), rows[0].3);
    assert_eq!(r.embedding.unwrap().as_slice(), &[1.0, 0.0, 0.0, 0.0]);
    assert!(
        shard.get(rows[2].0.parse().unwrap()).unwrap().is_none(),
        "tombstone"
    );

    let q = Query::hybrid(
        Embedding::new(vec![0.1, 1.0, 0.0, 0.0]).unwrap(),
        "configuration",
    );
    let hits = shard.search(&q, &SearchOptions::new(5)).unwrap();
    assert_eq!(hits[0].id, rows[1].0.parse::<RecordId>().unwrap());
    assert_eq!(hits.len(), 2);

    let c = rusqlite::Connection::open(&path).unwrap();
    let app: i32 = c
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!((app, page), (APPLICATION_ID, 8192));
    // The vector BLOB layout: dims little-endian f32, no header.
    let blob: Vec<u8> = c
        .query_row(
            "SELECT embedding FROM records WHERE id = ?1",
            [rows[1].0.parse::<RecordId>().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        blob,
        [0f32, 1.0, 0.0, 0.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
    );
    // Ids are 16 big-endian bytes.
    let id: Vec<u8> = c
        .query_row("SELECT id FROM records WHERE rowid = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        id,
        rows[0].0.parse::<uuid::Uuid>().unwrap().as_bytes().to_vec()
    );
    crate::assert_fts_consistent(&path);
}
