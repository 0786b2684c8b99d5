//! Replication (`changes_since`, `apply_changes`, cursors): last-writer-wins, tombstones,
//! idempotence, cursor atomicity, relays without echo, and rejection of bad changes.

use reasonbank_memory::{
    Change, Embedding, Error, MAX_VERSION, NewRecord, Query, RecordUpdate, SearchOptions, Shard,
};
use serde_json::json;

use crate::{assert_fts_consistent, clustered, open_shard};

const DIM: usize = 8;

/// Every row (tombstones included) ordered by id, without the local `seq`.
fn contents(s: &Shard) -> Vec<Change> {
    let mut all = s.changes_since(0, usize::MAX).unwrap();
    for c in &mut all {
        c.seq = 0;
    }
    all.sort_by_key(|c| c.id);
    all
}

/// Pulls everything `from` has after `to`'s cursor for it, as the sync protocol does.
fn pull(to: &Shard, from: &Shard) -> usize {
    let after = to.sync_cursor(from.origin()).unwrap();
    let batch = from.changes_since(after, usize::MAX).unwrap();
    let upto = batch.last().map_or(after, |c| c.seq);
    to.apply_changes(&batch, Some((from.origin(), upto)))
        .unwrap()
        .applied()
}

fn shards(n: usize) -> (tempfile::TempDir, Vec<Shard>) {
    let dir = tempfile::tempdir().unwrap();
    let v = (0..n)
        .map(|i| open_shard(&dir.path().join(format!("s{i}.sqlite")), DIM))
        .collect();
    (dir, v)
}

fn vecs(n: usize, seed: u64) -> Vec<Embedding> {
    clustered(n, DIM, 3, seed)
}

#[test]
fn changes_come_in_commit_order_with_full_rows() {
    let (_d, s) = shards(1);
    let v = vecs(3, 1);
    let mut r = NewRecord::new("alpha beta", v[0].clone());
    r.kind("pattern")
        .namespace("ns")
        .metadata(json!({"k": [1, 2.5, "x"]}));
    let a = s[0].insert(&r).unwrap();
    let b = s[0].insert(&NewRecord::new("gamma", v[1].clone())).unwrap();
    s[0].delete(b).unwrap();
    let all = s[0].changes_since(0, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].seq < all[1].seq);
    assert_eq!(all[0].id, a);
    assert_eq!(all[0].metadata, r#"{"k":[1,2.5,"x"]}"#);
    assert_eq!(all[0].embedding.as_ref(), Some(&v[0]));
    assert!(all[1].deleted && all[1].embedding.is_none() && all[1].text.is_empty());
    assert_eq!(s[0].changes_since(all[0].seq, 10).unwrap().len(), 1);
    assert_eq!(s[0].changes_since(0, 1).unwrap().len(), 1);
    assert_eq!(s[0].last_seq().unwrap(), all[1].seq);
}

#[test]
fn last_writer_wins_and_ties_break_on_origin() {
    let (_d, s) = shards(2);
    let v = vecs(4, 2);
    let id = s[0].insert(&NewRecord::new("base", v[0].clone())).unwrap();
    pull(&s[1], &s[0]);
    let base = s[0].changes_since(0, 1).unwrap().remove(0);

    let mut older = base.clone();
    older.text = "older".into();
    older.version = base.version - 1;
    let mut newer = base.clone();
    newer.text = "newer".into();
    newer.version = base.version + 10;
    newer.embedding = Some(v[1].clone());
    let mut tie_a = newer.clone();
    tie_a.text = "tie from a".into();
    tie_a.origin = "aaaa".into();
    let mut tie_z = newer.clone();
    tie_z.text = "tie from z".into();
    tie_z.origin = "zzzz".into();

    // Different orders on the two shards end in the same state.
    let r = s[0]
        .apply_changes(
            &[older.clone(), newer.clone(), tie_a.clone(), tie_z.clone()],
            None,
        )
        .unwrap();
    // "aaaa" sorts after the UUID origin of `newer`, so it wins the tie with it too.
    assert_eq!((r.updated, r.skipped), (3, 1), "{r:?}");
    let r = s[1]
        .apply_changes(&[tie_z.clone(), tie_a, newer, older], None)
        .unwrap();
    assert_eq!((r.updated, r.skipped), (1, 3), "{r:?}");
    assert_eq!(contents(&s[0]), contents(&s[1]));
    let got = s[0].get(id).unwrap().unwrap();
    assert_eq!(
        (got.text.as_str(), got.origin.as_str()),
        ("tie from z", "zzzz")
    );
    assert_eq!(got.embedding.as_ref(), Some(&v[1]));
    // The vector arena follows: the winner's vector is what search finds.
    let hits = s[1]
        .search(&Query::vector(v[1].clone()), &SearchOptions::new(1))
        .unwrap();
    assert_eq!(
        (hits[0].id, hits[0].record.text.as_str()),
        (id, "tie from z")
    );
    assert_fts_consistent(s[0].path());
    assert_fts_consistent(s[1].path());
}

#[test]
fn tombstones_win_over_older_writes_only() {
    let (_d, s) = shards(2);
    let v = vecs(2, 3);
    let id = s[0]
        .insert(&NewRecord::new("to be deleted", v[0].clone()))
        .unwrap();
    pull(&s[1], &s[0]);
    let live = s[1].changes_since(0, 1).unwrap().remove(0);
    s[0].delete(id).unwrap();
    let r = s[1]
        .apply_changes(&s[0].changes_since(0, 10).unwrap(), None)
        .unwrap();
    assert_eq!(r.deleted, 1);
    assert!(s[1].get(id).unwrap().is_none());
    assert_eq!(s[1].stats().unwrap().tombstones, 1);
    let text = Query::text("deleted");
    assert!(
        s[1].search(&text, &SearchOptions::new(5))
            .unwrap()
            .is_empty()
    );
    assert!(
        s[1].search(&Query::vector(v[0].clone()), &SearchOptions::new(5))
            .unwrap()
            .is_empty()
    );
    // The older live copy arriving late loses to the tombstone.
    assert_eq!(
        s[1].apply_changes(std::slice::from_ref(&live), None)
            .unwrap()
            .skipped,
        1
    );
    assert!(s[1].get(id).unwrap().is_none());
    // A write stamped after the delete revives the record (plain last-writer-wins).
    let mut later = live;
    later.version = s[1].changes_since(0, 1).unwrap()[0].version + 1;
    later.text = "revived".into();
    assert_eq!(s[1].apply_changes(&[later], None).unwrap().updated, 1);
    assert_eq!(s[1].get(id).unwrap().unwrap().text, "revived");
    assert_eq!(
        s[1].search(&Query::text("revived"), &SearchOptions::new(5))
            .unwrap()
            .len(),
        1
    );
    assert_fts_consistent(s[1].path());
}

#[test]
fn applying_twice_is_applying_once() {
    let (_d, s) = shards(2);
    let v = vecs(20, 4);
    let recs: Vec<NewRecord> = v
        .iter()
        .enumerate()
        .map(|(i, e)| NewRecord::new(format!("record {i}"), e.clone()))
        .collect();
    let ids = s[0].insert_batch(&recs).unwrap();
    s[0].delete(ids[3]).unwrap();
    let mut u = RecordUpdate::new();
    u.text("changed");
    s[0].update(ids[5], &u).unwrap();
    let batch = s[0].changes_since(0, 100).unwrap();
    assert_eq!(s[1].apply_changes(&batch, None).unwrap().applied(), 20);
    let seq = s[1].last_seq().unwrap();
    let before = contents(&s[1]);
    let r = s[1].apply_changes(&batch, None).unwrap();
    assert_eq!((r.applied(), r.skipped), (0, 20));
    assert_eq!(s[1].last_seq().unwrap(), seq, "a no-op apply takes no seq");
    assert_eq!(contents(&s[1]), before);
    assert_eq!(contents(&s[0]), before);
    // A batch that repeats an id applies its last state.
    let mut dup = batch[0].clone();
    dup.version += 5;
    dup.text = "again".into();
    let r = s[1].apply_changes(&[dup.clone(), dup], None).unwrap();
    assert_eq!((r.updated, r.skipped), (1, 1));
    assert_fts_consistent(s[1].path());
}

#[test]
fn cursor_moves_with_the_rows_and_never_back() {
    let (_d, s) = shards(2);
    let v = vecs(3, 5);
    for (i, e) in v.iter().enumerate() {
        s[0].insert(&NewRecord::new(format!("r{i}"), e.clone()))
            .unwrap();
    }
    let peer = s[0].origin().to_owned();
    assert_eq!(s[1].sync_cursor(&peer).unwrap(), 0);
    let first = s[0].changes_since(0, 2).unwrap();
    s[1].apply_changes(&first, Some((&peer, first[1].seq)))
        .unwrap();
    assert_eq!(s[1].sync_cursor(&peer).unwrap(), first[1].seq);
    // A failing batch moves neither the rows nor the cursor.
    let mut rest = s[0].changes_since(first[1].seq, 10).unwrap();
    let good = rest[0].clone();
    let mut bad = good.clone();
    bad.kind = "Not A Kind".into();
    rest.push(bad);
    assert!(matches!(
        s[1].apply_changes(&rest, Some((&peer, 99))),
        Err(Error::InvalidChange { index: 1, .. })
    ));
    assert_eq!(s[1].sync_cursor(&peer).unwrap(), first[1].seq);
    assert_eq!(s[1].count(None).unwrap(), 2);
    // A late duplicate of the first batch does not rewind it.
    s[1].apply_changes(std::slice::from_ref(&good), Some((&peer, good.seq)))
        .unwrap();
    s[1].apply_changes(&first, Some((&peer, first[1].seq)))
        .unwrap();
    assert_eq!(s[1].sync_cursor(&peer).unwrap(), good.seq);
    // Cursors are per peer, and reopening keeps them (they are in the file).
    assert_eq!(s[1].sync_cursor("someone-else").unwrap(), 0);
    let path = s[1].path().to_owned();
    drop(s);
    assert_eq!(open_shard(&path, DIM).sync_cursor(&peer).unwrap(), good.seq);
}

#[test]
fn relay_through_a_third_peer_without_echo() {
    let (_d, s) = shards(3);
    let v = vecs(6, 6);
    let a = s[0]
        .insert(&NewRecord::new("from a", v[0].clone()))
        .unwrap();
    s[2].insert(&NewRecord::new("from c", v[1].clone()))
        .unwrap();
    assert_eq!(pull(&s[1], &s[0]), 1); // A -> B
    assert_eq!(pull(&s[2], &s[1]), 1); // B -> C (relayed)
    assert_eq!(s[2].get(a).unwrap().unwrap().origin, s[0].origin());
    assert_eq!(pull(&s[1], &s[2]), 1); // C's own record reaches B
    assert_eq!(pull(&s[0], &s[1]), 1); // ... and A
    let seqs: Vec<i64> = s.iter().map(|x| x.last_seq().unwrap()).collect();
    // Another full round writes nothing anywhere: nothing echoes.
    for (to, from) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
        let after = 0;
        let batch = s[from].changes_since(after, usize::MAX).unwrap();
        assert_eq!(s[to].apply_changes(&batch, None).unwrap().applied(), 0);
    }
    assert_eq!(
        s.iter().map(|x| x.last_seq().unwrap()).collect::<Vec<_>>(),
        seqs
    );
    assert_eq!(contents(&s[0]), contents(&s[1]));
    assert_eq!(contents(&s[1]), contents(&s[2]));
}

#[test]
fn local_writes_after_remote_ones_get_greater_stamps() {
    let (_d, s) = shards(2);
    let v = vecs(2, 7);
    let id = s[0].insert(&NewRecord::new("x", v[0].clone())).unwrap();
    let mut ch = s[0].changes_since(0, 1).unwrap().remove(0);
    // A peer whose clock runs an hour ahead.
    ch.version += (3_600_000u64) << 16;
    s[1].apply_changes(&[ch.clone()], None).unwrap();
    let mut u = RecordUpdate::new();
    u.text("local edit");
    s[1].update(id, &u).unwrap();
    let mine = s[1].get(id).unwrap().unwrap();
    assert!(
        mine.version > ch.version,
        "{} <= {}",
        mine.version,
        ch.version
    );
    assert_eq!(mine.origin, s[1].origin());
    // So the local edit wins on the fast peer too.
    let back = s[1].changes_since(0, 10).unwrap();
    s[0].apply_changes(&back, None).unwrap();
    assert_eq!(s[0].get(id).unwrap().unwrap().text, "local edit");
    let other = s[1].insert(&NewRecord::new("y", v[1].clone())).unwrap();
    assert!(s[1].get(other).unwrap().unwrap().version > mine.version);
}

#[test]
fn bad_changes_are_rejected_with_nothing_written() {
    let (_d, s) = shards(2);
    let v = vecs(2, 8);
    s[0].insert(&NewRecord::new("good", v[0].clone())).unwrap();
    let good = s[0].changes_since(0, 1).unwrap().remove(0);
    let mut cases: Vec<(&str, Change)> = Vec::new();
    let mut c = good.clone();
    c.embedding = Some(Embedding::new(vec![1.0; DIM + 1]).unwrap());
    cases.push(("dimensions", c));
    // A live change without its vector that would win (one that loses only brings its
    // counters, issue #14).
    let mut c = good.clone();
    c.embedding = None;
    c.version += 1;
    cases.push(("live without vector", c));
    let mut c = good.clone();
    c.deleted = true;
    cases.push(("tombstone with vector", c));
    let mut c = good.clone();
    c.deleted = true;
    c.embedding = None;
    cases.push(("tombstone with text", c));
    for (what, f) in [
        (
            "kind",
            (|c: &mut Change| c.kind = String::new()) as fn(&mut Change),
        ),
        ("namespace", |c| c.namespace = "a\u{1}b".into()),
        ("text", |c| c.text = "x".repeat((1 << 20) + 1)),
        ("metadata array", |c| c.metadata = "[1]".into()),
        ("metadata garbage", |c| c.metadata = "{".into()),
        ("metadata size", |c| {
            c.metadata = format!(r#"{{"k":"{}"}}"#, "x".repeat(70_000))
        }),
        ("version 0", |c| c.version = 0),
        ("version too big", |c| c.version = MAX_VERSION),
        ("empty origin", |c| c.origin = String::new()),
        ("long origin", |c| c.origin = "o".repeat(200)),
    ] {
        let mut c = good.clone();
        f(&mut c);
        cases.push((what, c));
    }
    // A vector that is finite but not unit length only arrives through deserialization.
    let mut j = serde_json::to_value(&good).unwrap();
    let mut raw = vec![0u8; DIM * 4];
    raw[..4].copy_from_slice(&2.0f32.to_le_bytes());
    j["embedding"] = json!(raw);
    cases.push(("not unit", serde_json::from_value(j.clone()).unwrap()));
    // NaN and ragged BLOBs do not even deserialize.
    raw[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    j["embedding"] = json!(raw);
    assert!(serde_json::from_value::<Change>(j.clone()).is_err());
    j["embedding"] = json!([0, 0, 128]);
    assert!(serde_json::from_value::<Change>(j).is_err());

    let peer = s[0].origin().to_owned();
    for (what, bad) in cases {
        let batch = [good.clone(), bad];
        let err = s[1].apply_changes(&batch, Some((&peer, 5))).unwrap_err();
        assert!(
            matches!(err, Error::InvalidChange { index: 1, .. }),
            "{what}: {err:?}"
        );
        assert_eq!(s[1].last_seq().unwrap(), 0, "{what}");
        assert_eq!(s[1].sync_cursor(&peer).unwrap(), 0, "{what}");
    }
    assert!(matches!(
        s[1].apply_changes(std::slice::from_ref(&good), Some(("", 1))),
        Err(Error::InvalidInput { .. })
    ));
    // The good change alone applies.
    s[1].apply_changes(&[good], Some((&peer, 1))).unwrap();
    assert_eq!(s[1].count(None).unwrap(), 1);
}

/// `stamps` gives the conflict key of held rows (tombstones included) and `None` for others;
/// a change not newer than it is skipped by `apply_changes`.
#[test]
fn stamps_are_the_conflict_keys_of_held_rows() {
    let (_d, s) = shards(2);
    let v = vecs(2, 9);
    let a = s[0].insert(&NewRecord::new("kept", v[0].clone())).unwrap();
    let b = s[0]
        .insert(&NewRecord::new("deleted", v[1].clone()))
        .unwrap();
    s[0].delete(b).unwrap();
    let missing = reasonbank_memory::RecordId::new();
    let st = s[0].stamps(&[a, missing, b]).unwrap();
    let rows = contents(&s[0]);
    let key = |id| {
        let c = rows.iter().find(|c| c.id == id).unwrap();
        Some((c.version, c.origin.clone()))
    };
    assert_eq!(st, vec![key(a), None, key(b)]);
    pull(&s[1], &s[0]);
    assert_eq!(s[1].stamps(&[a, b]).unwrap(), vec![key(a), key(b)]);
    // Re-applying the same rows: each is not newer than its stamp, and is skipped.
    let again = s[0].changes_since(0, 10).unwrap();
    assert!(
        again
            .iter()
            .all(|c| Some((c.version, c.origin.clone())) <= key(c.id))
    );
    let r = s[1].apply_changes(&again, None).unwrap();
    assert_eq!((r.applied(), r.skipped), (0, 2));
}

/// Adds `n` to counter `name` of this shard's own group of record `id`, as a local write.
fn count(s: &Shard, id: reasonbank_memory::RecordId, name: &str, n: f64) {
    s.modify(id, |r| -> reasonbank_memory::Result<_> {
        let mut c = reasonbank_memory::Counters::of(&r.metadata)?;
        c.add(s.origin(), name, n);
        let mut m = r.metadata.clone();
        c.write_into(&mut m);
        let mut u = RecordUpdate::new();
        u.metadata(serde_json::Value::Object(m));
        Ok(Some(u))
    })
    .unwrap();
}

fn total(s: &Shard, id: reasonbank_memory::RecordId, name: &str) -> f64 {
    let r = s.get(id).unwrap().unwrap();
    let c = reasonbank_memory::Counters::of(&r.metadata).unwrap();
    c.groups()
        .map(|(_, e)| e.get(name).copied().unwrap_or(0.0))
        .sum()
}

/// Issue #14: concurrent increments on two replicas add up after sync whichever write wins
/// last-writer-wins, in either order, with repeated syncs; the other content is the winner's.
#[test]
fn issue_14_concurrent_counters_add_up_whoever_wins() {
    for a_first in [true, false] {
        let (_d, s) = shards(3);
        let v = vecs(1, 7);
        let id = s[0]
            .insert(NewRecord::new("item", v[0].clone()).metadata(json!({"title": "t"})))
            .unwrap();
        pull(&s[1], &s[0]);
        // Hub A: three successes; peer B: one failure and a text edit (written last: it wins).
        for _ in 0..3 {
            count(&s[0], id, "s", 1.0);
        }
        count(&s[1], id, "f", 1.0);
        let mut u = RecordUpdate::new();
        u.text("item, edited on B");
        s[1].update(id, &u).unwrap();
        for _ in 0..2 {
            if a_first {
                pull(&s[1], &s[0]);
                pull(&s[0], &s[1]);
            } else {
                pull(&s[0], &s[1]);
                pull(&s[1], &s[0]);
            }
            pull(&s[2], &s[0]);
            pull(&s[2], &s[1]);
        }
        for x in &s {
            assert_eq!((total(x, id, "s"), total(x, id, "f")), (3.0, 1.0));
            assert_eq!(x.get(id).unwrap().unwrap().text, "item, edited on B");
        }
        assert_eq!(contents(&s[0]), contents(&s[1]));
        assert_eq!(contents(&s[0]), contents(&s[2]));
        // Converged: one more round writes nothing.
        let before = s[0].last_seq().unwrap();
        assert_eq!(pull(&s[0], &s[1]), 0);
        assert_eq!(s[0].last_seq().unwrap(), before);
    }
}

/// A change that loses last-writer-wins still brings its counters: the local row keeps its
/// content and stamp, takes the join and a fresh `seq` (so it is relayed); a losing live
/// change may come without its vector, a winning one may not.
#[test]
fn issue_14_a_losing_change_merges_its_counters() {
    let (_d, s) = shards(2);
    let v = vecs(1, 8);
    let id = s[0].insert(&NewRecord::new("x", v[0].clone())).unwrap();
    pull(&s[1], &s[0]);
    count(&s[0], id, "uses", 2.0);
    let mut old = s[0].changes_since(0, 10).unwrap().pop().unwrap();
    count(&s[1], id, "uses", 1.0); // B's write is newer.
    let stamp_b = s[1].stamps(&[id]).unwrap()[0].clone();
    let seq_b = s[1].last_seq().unwrap();
    old.embedding = None;
    let r = s[1].apply_changes(&[old.clone()], None).unwrap();
    assert_eq!((r.skipped, r.counters_merged, r.applied()), (1, 1, 0));
    assert_eq!(total(&s[1], id, "uses"), 3.0);
    assert_eq!(s[1].stamps(&[id]).unwrap()[0], stamp_b, "the stamp is kept");
    assert!(s[1].last_seq().unwrap() > seq_b, "a fresh seq relays it");
    // Twice is once.
    let r = s[1].apply_changes(&[old.clone()], None).unwrap();
    assert_eq!((r.skipped, r.counters_merged), (1, 0));
    // A winning change without a vector is refused, and nothing is written.
    let mut newer = old;
    newer.version = MAX_VERSION - 1;
    assert!(matches!(
        s[1].apply_changes(&[newer], None),
        Err(Error::InvalidChange { .. })
    ));
    assert_eq!(total(&s[1], id, "uses"), 3.0);
}

/// Tombstones win as before and carry no counters; malformed counters are refused.
#[test]
fn issue_14_tombstones_win_and_malformed_counters_are_refused() {
    let (_d, s) = shards(2);
    let v = vecs(1, 9);
    let id = s[0].insert(&NewRecord::new("x", v[0].clone())).unwrap();
    pull(&s[1], &s[0]);
    count(&s[1], id, "s", 1.0);
    pull(&s[0], &s[1]);
    s[0].delete(id).unwrap();
    pull(&s[1], &s[0]);
    pull(&s[0], &s[1]);
    assert!(s[0].get(id).unwrap().is_none() && s[1].get(id).unwrap().is_none());
    assert_eq!(contents(&s[0]), contents(&s[1]));

    let mut bad = NewRecord::new("y", v[0].clone());
    bad.metadata(json!({"_counters": {"g": {"s": -1}}}));
    assert!(matches!(s[0].insert(&bad), Err(Error::InvalidInput { .. })));
    let mut ints = NewRecord::new("y", v[0].clone());
    ints.metadata(json!({"_counters": {"g": {"s": 2}}}));
    let id = s[0].insert(&ints).unwrap();
    let ch = s[0].changes_since(0, 10).unwrap();
    let ch = ch.iter().find(|c| c.id == id).unwrap();
    assert_eq!(
        ch.metadata, r#"{"_counters":{"g":{"s":2.0}}}"#,
        "stored normalized"
    );
    let mut c = ch.clone();
    c.metadata = r#"{"_counters":{"g":"x"}}"#.into();
    assert!(matches!(
        s[1].apply_changes(&[c], None),
        Err(Error::InvalidChange { .. })
    ));
}
