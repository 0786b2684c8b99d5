//! A store of many shards keeps a bounded number open; cross-shard search merges top-k.

use reasonbank_memory::{Embedding, NewRecord, Query, SearchOptions, ShardId, Store, StoreOptions};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn many_shards_bounded_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new();
    opts.max_open(16)
        .shard_options_mut()
        .dimensions(4)
        .model_id("m");
    let store = Store::open(dir.path(), opts).unwrap();
    let before = open_fds();
    let v = Embedding::new(vec![1.0, 0.0, 0.0, 0.0]).unwrap();
    for i in 0..600 {
        let id = ShardId::new(format!("agent-{i:04}")).unwrap();
        store
            .shard(&id)
            .unwrap()
            .insert(&NewRecord::new(format!("agent {i}"), v.clone()))
            .unwrap();
        assert!(store.open_count() <= 16);
    }
    // 16 shards × (db + wal + shm) plus slack for the test harness.
    let grown = open_fds().saturating_sub(before);
    assert!(grown <= 16 * 3 + 8, "{grown} file descriptors held open");
    assert_eq!(store.list().unwrap().len(), 600);
    // Evicted shards reopen with their data.
    let first = store.shard(&ShardId::new("agent-0000").unwrap()).unwrap();
    assert_eq!(first.count(None).unwrap(), 1);
}

#[test]
fn the_least_recently_used_shard_is_the_one_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new();
    opts.max_open(2)
        .shard_options_mut()
        .dimensions(4)
        .model_id("m");
    let store = Store::open(dir.path(), opts).unwrap();
    let id = |s: &str| ShardId::new(s).unwrap();
    // Weak handles: alive exactly while the store keeps the shard open.
    let a = std::sync::Arc::downgrade(&store.shard(&id("a")).unwrap());
    let b = std::sync::Arc::downgrade(&store.shard(&id("b")).unwrap());
    store.shard(&id("a")).unwrap(); // a is now the most recently used
    store.shard(&id("c")).unwrap();
    assert_eq!(store.open_count(), 2);
    assert!(a.upgrade().is_some(), "the recently used shard stays open");
    assert!(
        b.upgrade().is_none(),
        "the least recently used shard is closed"
    );
}

#[test]
fn cross_shard_search_merges_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new();
    opts.shard_options_mut().dimensions(2).model_id("m");
    let store = Store::open(dir.path(), opts).unwrap();
    let a = ShardId::new("a").unwrap();
    let b = ShardId::new("b").unwrap();
    let e = |x: f32, y: f32| Embedding::new(vec![x, y]).unwrap();
    store
        .shard(&a)
        .unwrap()
        .insert(&NewRecord::new("a1", e(1.0, 0.1)))
        .unwrap();
    store
        .shard(&a)
        .unwrap()
        .insert(&NewRecord::new("a2", e(0.0, 1.0)))
        .unwrap();
    store
        .shard(&b)
        .unwrap()
        .insert(&NewRecord::new("b1", e(1.0, 0.0)))
        .unwrap();
    store
        .shard(&b)
        .unwrap()
        .insert(&NewRecord::new("b2", e(1.0, 0.5)))
        .unwrap();
    let hits = store
        .search(
            &[a.clone(), b.clone()],
            &Query::vector(e(1.0, 0.0)),
            &SearchOptions::new(3),
        )
        .unwrap();
    let got: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| (h.shard.as_ref().unwrap().as_str(), h.record.text.as_str()))
        .collect();
    assert_eq!(got, vec![("b", "b1"), ("a", "a1"), ("b", "b2")]);
}

/// Regression: fusing each shard's hybrid ranking separately gave every shard's best hit the
/// same score `1 / (c + 1)`, so the older id won regardless of meaning. Rankings are now
/// fused across shards.
#[test]
fn cross_shard_hybrid_ranks_by_global_similarity() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new();
    opts.shard_options_mut().dimensions(2).model_id("m");
    let store = Store::open(dir.path(), opts).unwrap();
    let (a, b) = (ShardId::new("a").unwrap(), ShardId::new("b").unwrap());
    let e = |x: f32, y: f32| Embedding::new(vec![x, y]).unwrap();
    // `a`'s record is older (smaller id) and far from the query; `b`'s is close.
    store
        .shard(&a)
        .unwrap()
        .insert(&NewRecord::new("alpha note", e(0.0, 1.0)))
        .unwrap();
    store
        .shard(&b)
        .unwrap()
        .insert(&NewRecord::new("beta note", e(1.0, 0.05)))
        .unwrap();
    let hits = store
        .search(
            &[a, b.clone()],
            &Query::hybrid(e(1.0, 0.0), "unrelated words"),
            &SearchOptions::new(2),
        )
        .unwrap();
    assert_eq!(hits[0].shard.as_ref(), Some(&b));
    assert!(hits[0].score > hits[1].score);
}
