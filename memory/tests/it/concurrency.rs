//! Several threads and two processes write and read one shard at once: no "database is
//! locked" reaches the caller and nothing is lost.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use reasonbank_memory::{NewRecord, Query, RecordId, SearchOptions};

use crate::{child, clustered, open_shard};

const DIM: usize = 32;
const PER_WRITER: usize = 150;

/// Child side: inserts `PER_WRITER` records one by one, printing each id, while searching.
#[test]
#[ignore = "child process of concurrency::threads_and_processes_share_a_shard"]
fn child_process_writer() {
    let Ok(path) = std::env::var("RB_CONC_SHARD") else {
        return;
    };
    let shard = open_shard(std::path::Path::new(&path), DIM);
    let vecs = clustered(PER_WRITER, DIM, 4, 77);
    for (i, v) in vecs.into_iter().enumerate() {
        let id = shard
            .insert(&NewRecord::new(format!("child {i}"), v.clone()))
            .unwrap();
        println!("ID {id}");
        if i % 10 == 0 {
            shard
                .search(&Query::vector(v), &SearchOptions::new(5))
                .unwrap();
        }
    }
}

#[test]
fn threads_and_processes_share_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conc.sqlite");
    let shard = Arc::new(open_shard(&path, DIM));
    // A second handle in this process: its own connection, like another library user.
    let second = Arc::new(open_shard(&path, DIM));

    let mut proc = child(
        "concurrency::child_process_writer",
        &[("RB_CONC_SHARD", path.to_str().unwrap())],
    )
    .spawn()
    .unwrap();
    let stdout = proc.stdout.take().unwrap();

    let mut handles = Vec::new();
    for t in 0..4 {
        let s = Arc::clone(if t % 2 == 0 { &shard } else { &second });
        handles.push(std::thread::spawn(move || {
            let vecs = clustered(PER_WRITER, DIM, 4, t);
            let mut ids = Vec::new();
            for (i, v) in vecs.into_iter().enumerate() {
                if i % 3 == 0 {
                    let batch = vec![
                        NewRecord::new(format!("t{t} {i}a"), v.clone()),
                        NewRecord::new(format!("t{t} {i}b"), v.clone()),
                    ];
                    ids.extend(s.insert_batch(&batch).unwrap());
                } else {
                    ids.push(
                        s.insert(&NewRecord::new(format!("t{t} {i}"), v.clone()))
                            .unwrap(),
                    );
                }
                let hits = s
                    .search(&Query::hybrid(v, format!("t{t}")), &SearchOptions::new(3))
                    .unwrap();
                assert!(!hits.is_empty());
            }
            // Updates and deletes race with the other writers too.
            for id in ids.iter().step_by(10) {
                assert!(s.delete(*id).unwrap());
            }
            ids.into_iter()
                .enumerate()
                .filter(|(i, _)| i % 10 != 0)
                .map(|(_, id)| id)
                .collect::<Vec<RecordId>>()
        }));
    }
    let mut expected: HashSet<RecordId> = HashSet::new();
    for h in handles {
        expected.extend(h.join().unwrap());
    }
    let child_ids: Vec<RecordId> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| crate::tagged(&l, "ID ").map(|id| id.parse().unwrap()))
        .collect();
    assert!(proc.wait().unwrap().success(), "child writer failed");
    assert_eq!(child_ids.len(), PER_WRITER);
    expected.extend(child_ids.iter().copied());

    for s in [&shard, &second] {
        assert_eq!(s.count(None).unwrap() as usize, expected.len());
        for id in &expected {
            assert!(s.get(*id).unwrap().is_some());
        }
        // The arena caught up with the other process's writes: a child vector is findable.
        let v = clustered(PER_WRITER, DIM, 4, 77).remove(5);
        let hits = s.search(&Query::vector(v), &SearchOptions::new(1)).unwrap();
        assert!(hits[0].similarity.unwrap() > 0.9999);
        let all = s
            .search(
                &Query::vector(clustered(1, DIM, 1, 5).remove(0)),
                &SearchOptions::new(10_000),
            )
            .unwrap();
        let found: HashSet<RecordId> = all.iter().map(|h| h.id).collect();
        assert_eq!(found, expected, "search sees exactly the live rows");
    }
    crate::assert_fts_consistent(&path);
}

/// `Shard::modify` is an atomic read-modify-write: increments from threads on two handles
/// (two connections, as two processes would have) are all counted.
#[test]
fn modify_loses_no_update_across_handles() {
    use reasonbank_memory::{Error, RecordUpdate};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rmw.sqlite");
    let handles = [
        Arc::new(open_shard(&path, DIM)),
        Arc::new(open_shard(&path, DIM)),
    ];
    let v = clustered(2, DIM, 1, 5);
    let mut rec = NewRecord::new("counter", v[0].clone());
    rec.metadata(serde_json::json!({"n": 0, "keep": "me"}));
    let id = handles[0].insert(&rec).unwrap();
    let bump = |s: &reasonbank_memory::Shard| {
        s.modify(id, |r| {
            let n = r.metadata["n"].as_i64().unwrap();
            let mut m = r.metadata.clone();
            m.insert("n".into(), (n + 1).into());
            let mut u = RecordUpdate::new();
            u.metadata(serde_json::Value::Object(m));
            Ok::<_, Error>(Some(u))
        })
        .unwrap()
        .unwrap()
    };
    std::thread::scope(|scope| {
        for t in 0..4 {
            let shard = Arc::clone(&handles[t % 2]);
            scope.spawn(move || {
                for _ in 0..25 {
                    bump(&shard);
                }
            });
        }
    });
    let r = handles[1].get(id).unwrap().unwrap();
    assert_eq!(r.metadata["n"], 100);
    assert_eq!(r.metadata["keep"], "me");

    // An error from the closure writes nothing; a missing record is `None`, closure not run.
    let err = handles[0].modify(id, |_| {
        Err::<Option<RecordUpdate>, _>(Error::InvalidOption {
            reason: "no".into(),
        })
    });
    assert!(matches!(err, Err(Error::InvalidOption { .. })));
    assert_eq!(handles[0].get(id).unwrap().unwrap().version, r.version);
    let missing = handles[0]
        .modify(RecordId::new(), |_| -> Result<_, Error> { unreachable!() })
        .unwrap();
    assert!(missing.is_none());

    // A new vector through modify reaches vector search.
    let after = handles[0]
        .modify(id, |_| {
            let mut u = RecordUpdate::new();
            u.embedding(v[1].clone());
            Ok::<_, Error>(Some(u))
        })
        .unwrap()
        .unwrap();
    assert_eq!(after.embedding.as_ref(), Some(&v[1]));
    let hits = handles[0]
        .search(&Query::vector(v[1].clone()), &SearchOptions::new(1))
        .unwrap();
    assert!((hits[0].score - 1.0).abs() < 1e-5);
}

/// `update_if_unchanged` writes all its updates or, if any record moved on, none.
#[test]
fn update_if_unchanged_is_all_or_nothing() {
    use reasonbank_memory::RecordUpdate;
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("cas.sqlite"), DIM);
    let v = clustered(2, DIM, 1, 9);
    let a = shard.insert(&NewRecord::new("a", v[0].clone())).unwrap();
    let b = shard.insert(&NewRecord::new("b", v[1].clone())).unwrap();
    let version = |id| shard.get(id).unwrap().unwrap().version;
    let (va, vb) = (version(a), version(b));
    let text = |t: &str| {
        let mut u = RecordUpdate::new();
        u.text(t);
        u
    };
    // b moves on: the pair is not applied, a keeps its text.
    shard.update(b, &text("b2")).unwrap();
    assert!(
        !shard
            .update_if_unchanged(&[(a, va, text("a1")), (b, vb, text("b1"))])
            .unwrap()
    );
    assert_eq!(shard.get(a).unwrap().unwrap().text, "a");
    // With current versions both apply, and text search sees them.
    assert!(
        shard
            .update_if_unchanged(&[(a, va, text("a1 fresh")), (b, version(b), text("b1 fresh"))])
            .unwrap()
    );
    let hits = shard
        .search(&Query::text("fresh"), &SearchOptions::new(5))
        .unwrap();
    assert_eq!(hits.len(), 2);
    // A deleted record is a conflict too.
    shard.delete(b).unwrap();
    assert!(
        !shard
            .update_if_unchanged(&[(b, version(a), text("x"))])
            .unwrap()
    );
}

/// `stats` counts another handle's commits: live rows from the caught-up arena, tombstones
/// as the rest of all rows, both from one snapshot.
#[test]
fn stats_see_the_other_handles_inserts_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.sqlite");
    let a = open_shard(&path, DIM);
    let b = open_shard(&path, DIM);
    assert_eq!(b.stats().unwrap().records, 0);
    let recs: Vec<NewRecord> = clustered(10, DIM, 2, 5)
        .into_iter()
        .map(|v| NewRecord::new("row", v))
        .collect();
    let ids = a.insert_batch(&recs).unwrap();
    for id in &ids[..3] {
        assert!(a.delete(*id).unwrap());
    }
    for s in [&a, &b] {
        let st = s.stats().unwrap();
        assert_eq!((st.records, st.tombstones), (7, 3));
    }
}
