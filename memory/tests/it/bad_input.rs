//! Bad input: each case is a typed error, never a panic, never a partial write.

use std::io::Write;

use reasonbank_memory::{
    Embedding, Error, Filter, MAX_METADATA_BYTES, MAX_TEXT_BYTES, NewRecord, Query, RecordUpdate,
    SearchOptions, Shard, ShardId, ShardOptions, Store, StoreOptions,
};
use serde_json::json;

use crate::open_shard;

fn e(v: &[f32]) -> Embedding {
    Embedding::new(v.to_vec()).unwrap()
}

#[test]
fn bad_vectors() {
    for v in [
        vec![],
        vec![0.0; 4],
        vec![f32::NAN, 1.0, 0.0, 0.0],
        vec![f32::INFINITY, 0.0, 0.0, 0.0],
    ] {
        assert!(matches!(
            Embedding::new(v),
            Err(Error::InvalidVector { .. })
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("v.sqlite"), 4);
    let wrong = NewRecord::new("x", e(&[1.0, 0.0, 0.0]));
    assert!(matches!(
        shard.insert(&wrong),
        Err(Error::DimensionMismatch {
            expected: 4,
            actual: 3
        })
    ));
    let q = Query::vector(e(&[1.0, 0.0]));
    assert!(matches!(
        shard.search(&q, &SearchOptions::new(1)),
        Err(Error::DimensionMismatch { .. })
    ));
    let id = shard
        .insert(&NewRecord::new("ok", e(&[1.0, 0.0, 0.0, 0.0])))
        .unwrap();
    let mut u = RecordUpdate::new();
    u.embedding(e(&[1.0; 5]));
    assert!(matches!(
        shard.update(id, &u),
        Err(Error::DimensionMismatch { .. })
    ));
    assert_eq!(
        shard.get(id).unwrap().unwrap().embedding.unwrap(),
        e(&[1.0, 0.0, 0.0, 0.0])
    );
}

#[test]
fn batch_with_one_bad_record_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("b.sqlite"), 2);
    let mut bad_meta = NewRecord::new("m", e(&[1.0, 0.0]));
    bad_meta.metadata(json!({"blob": "x".repeat(MAX_METADATA_BYTES)}));
    let mut not_object = NewRecord::new("m", e(&[1.0, 0.0]));
    not_object.metadata(json!([1, 2]));
    let mut bad_kind = NewRecord::new("m", e(&[1.0, 0.0]));
    bad_kind.kind("Bad Kind");
    let mut bad_ns = NewRecord::new("m", e(&[1.0, 0.0]));
    bad_ns.namespace("a\u{0}b");
    let huge_text = NewRecord::new("x".repeat(MAX_TEXT_BYTES + 1), e(&[1.0, 0.0]));
    let wrong_dims = NewRecord::new("m", e(&[1.0, 0.0, 1.0]));
    let mut before_1970 = NewRecord::new("m", e(&[1.0, 0.0]));
    before_1970.created_at(-1);
    let mut after_9999 = NewRecord::new("m", e(&[1.0, 0.0]));
    after_9999.created_at(reasonbank_memory::MAX_TIMESTAMP_MS + 1);
    for (bad, check) in [
        (
            bad_meta,
            (|e: &Error| {
                matches!(
                    e,
                    Error::TooLarge {
                        what: "metadata",
                        ..
                    }
                )
            }) as fn(&Error) -> bool,
        ),
        (not_object, |e| {
            matches!(
                e,
                Error::InvalidInput {
                    what: "metadata",
                    ..
                }
            )
        }),
        (bad_kind, |e| {
            matches!(e, Error::InvalidInput { what: "kind", .. })
        }),
        (bad_ns, |e| {
            matches!(
                e,
                Error::InvalidInput {
                    what: "namespace",
                    ..
                }
            )
        }),
        (huge_text, |e| {
            matches!(e, Error::TooLarge { what: "text", .. })
        }),
        (wrong_dims, |e| matches!(e, Error::DimensionMismatch { .. })),
        (before_1970, |e| {
            matches!(
                e,
                Error::InvalidInput {
                    what: "created_at",
                    ..
                }
            )
        }),
        (after_9999, |e| {
            matches!(
                e,
                Error::InvalidInput {
                    what: "created_at",
                    ..
                }
            )
        }),
    ] {
        let batch = vec![
            NewRecord::new("good", e(&[0.0, 1.0])),
            bad,
            NewRecord::new("good", e(&[0.0, 1.0])),
        ];
        let err = shard.insert_batch(&batch).unwrap_err();
        assert!(check(&err), "{err:?}");
        assert_eq!(shard.count(None).unwrap(), 0);
    }
    // A duplicate id inside one batch rolls the whole batch back.
    let id = reasonbank_memory::RecordId::new();
    let mut a = NewRecord::new("a", e(&[1.0, 0.0]));
    a.id(id);
    let batch = vec![a.clone(), NewRecord::new("b", e(&[1.0, 0.0])), a];
    assert!(matches!(
        shard.insert_batch(&batch),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(shard.count(None).unwrap(), 0);
    let hits = shard
        .search(&Query::vector(e(&[1.0, 0.0])), &SearchOptions::new(5))
        .unwrap();
    assert!(hits.is_empty(), "the arena must not see rolled-back rows");
}

#[test]
fn invalid_ids_and_filters() {
    for bad in ["../../etc/x", "", "..", "a/b"] {
        assert!(matches!(
            ShardId::new(bad),
            Err(Error::InvalidShardId { .. })
        ));
    }
    assert!(matches!(
        "not-a-uuid".parse::<reasonbank_memory::RecordId>(),
        Err(Error::InvalidRecordId { .. })
    ));
    assert!(matches!("{".parse::<Filter>(), Err(Error::FilterJson(_))));
    assert!(matches!(
        r#"{"eq":{"field":"a","value":{"x":1}}}"#.parse::<Filter>(),
        Err(Error::InvalidFilter { .. })
    ));
    // Filters built in code are validated at search time too.
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("f.sqlite"), 2);
    let mut o = SearchOptions::new(1);
    o.filter(Filter::Exists {
        field: "a..b".into(),
    });
    assert!(matches!(
        shard.search(&Query::vector(e(&[1.0, 0.0])), &o),
        Err(Error::InvalidFilter { .. })
    ));
    assert!(matches!(
        shard.count(Some(&Filter::Exists {
            field: String::new()
        })),
        Err(Error::InvalidFilter { .. })
    ));
}

#[test]
fn wrong_model_or_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    drop(open_shard(&path, 8));
    let mut o = ShardOptions::new();
    o.dimensions(16).model_id("test-model");
    assert!(matches!(
        Shard::open(&path, &o),
        Err(Error::ModelMismatch {
            found_dimensions: 8,
            ..
        })
    ));
    let mut o = ShardOptions::new();
    o.dimensions(8).model_id("other-model");
    assert!(matches!(
        Shard::open(&path, &o),
        Err(Error::ModelMismatch { .. })
    ));
    let mut o = ShardOptions::new();
    o.model_id("other-model");
    assert!(matches!(
        Shard::open(&path, &o),
        Err(Error::ModelMismatch { .. })
    ));
    // Without a spec, an existing shard opens with what it has; a new one cannot be created.
    assert_eq!(
        Shard::open(&path, &ShardOptions::new())
            .unwrap()
            .dimensions(),
        8
    );
    assert!(matches!(
        Shard::open(dir.path().join("new.sqlite"), &ShardOptions::new()),
        Err(Error::MissingShardSpec { .. })
    ));
    let mut o = ShardOptions::new();
    o.create(false).dimensions(8).model_id("test-model");
    assert!(matches!(
        Shard::open(dir.path().join("nope.sqlite"), &o),
        Err(Error::NoSuchShard { .. })
    ));
    o.create(true).dimensions(0);
    assert!(matches!(
        Shard::open(dir.path().join("zero.sqlite"), &o),
        Err(Error::InvalidOption { .. })
    ));
}

#[test]
fn files_that_are_not_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = ShardOptions::new();
    o.dimensions(4).model_id("test-model");

    let text = dir.path().join("text.sqlite");
    let content = "hello, I am not a database\n".repeat(100);
    std::fs::write(&text, &content).unwrap();
    assert!(matches!(
        Shard::open(&text, &o),
        Err(Error::NotAShard { .. })
    ));
    // The file is left as it was.
    assert_eq!(std::fs::read_to_string(&text).unwrap(), content);

    let tiny = dir.path().join("tiny.sqlite");
    std::fs::write(&tiny, b"SQLite").unwrap();
    assert!(matches!(
        Shard::open(&tiny, &o),
        Err(Error::NotAShard { .. })
    ));

    // Another application's SQLite database.
    let other = dir.path().join("other.sqlite");
    let c = rusqlite::Connection::open(&other).unwrap();
    c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    assert!(matches!(
        Shard::open(&other, &o),
        Err(Error::NotAShard { .. })
    ));

    // A directory where a shard file should be.
    let d = dir.path().join("dir.sqlite");
    std::fs::create_dir(&d).unwrap();
    assert!(Shard::open(&d, &o).is_err());

    // A 0-byte file is a damaged shard, with or without `create`: never "missing", never
    // silently made into a new empty shard.
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    for create in [true, false] {
        let mut o = o.clone();
        o.create(create);
        match Shard::open(&empty, &o) {
            Err(e @ Error::NotAShard { .. }) => {
                assert!(e.to_string().contains("empty (0 bytes)"), "{e}")
            }
            other => panic!("create={create}: {:?}", other.map(|_| ())),
        }
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    }
}

/// A new shard appears whole: after creation the directory holds the shard file only (no
/// temporary name, no 0-byte file), and the file is a shard when first seen.
#[test]
fn shards_are_created_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite");
    let mut o = ShardOptions::new();
    o.dimensions(4).model_id("test-model");
    drop(Shard::open(&path, &o).unwrap());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(names, vec!["new.sqlite".to_owned()]);
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    // Reopening finds the shard it made (its model and dimensions).
    let mut other = ShardOptions::new();
    other.dimensions(8).model_id("test-model");
    assert!(matches!(
        Shard::open(&path, &other),
        Err(Error::ModelMismatch { .. })
    ));
    // Many opens racing to create one shard all get it.
    let racing = dir.path().join("race.sqlite");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| drop(Shard::open(&racing, &o).unwrap()));
        }
    });
    assert!(Shard::open(&racing, &o).is_ok());
}

#[test]
fn truncated_and_corrupt_shards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    {
        let shard = open_shard(&path, 64);
        let recs: Vec<NewRecord> = crate::clustered(3000, 64, 4, 1)
            .into_iter()
            .map(|v| NewRecord::new("some text to index", v))
            .collect();
        shard.insert_batch(&recs).unwrap();
    }
    // Closing the last connection checkpoints the WAL into the main file.
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 400_000, "{}", bytes.len());

    let truncated = dir.path().join("t.sqlite");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Shard::open(&truncated, &ShardOptions::new()).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { .. } | Error::NotAShard { .. }),
        "{err:?}"
    );

    // Overwrite the middle of the file with garbage (page contents, not the header).
    let garbled = dir.path().join("g.sqlite");
    let mut g = bytes.clone();
    let mid = g.len() / 2;
    for (i, b) in g[mid..mid + 65536].iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::File::create(&garbled)
        .unwrap()
        .write_all(&g)
        .unwrap();
    let err = Shard::open(&garbled, &ShardOptions::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt { .. } | Error::CorruptRecord { .. } | Error::NotAShard { .. }
        ),
        "{err:?}"
    );

    // A vector BLOB of the wrong length written behind our back.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "UPDATE records SET embedding = x'00112233' WHERE rowid = 5",
        [],
    )
    .unwrap();
    drop(c);
    let err = Shard::open(&path, &ShardOptions::new()).unwrap_err();
    assert!(matches!(err, Error::CorruptRecord { .. }), "{err:?}");
}

#[test]
fn store_rejects_hostile_ids_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root"), StoreOptions::new()).unwrap();
    assert!(ShardId::new("../../etc/x").is_err());
    // Every valid id maps to a file directly inside the root.
    let id = ShardId::new("...").unwrap();
    assert_eq!(store.path_of(&id).parent().unwrap(), store.root());
}
