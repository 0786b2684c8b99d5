//! Exact search equals brute force: ids, order and ties, through inserts, updates, deletes.
//! So do the approximate scans when they rescore every row.

use reasonbank_memory::{
    Embedding, NewRecord, Query, RecordId, RecordUpdate, SearchMode, SearchOptions, kernels,
};

use crate::{clustered, open_shard};

/// Brute force over `(id, vector)`: score descending, then id ascending.
fn brute(rows: &[(RecordId, Embedding)], q: &Embedding, k: usize, threshold: f32) -> Vec<RecordId> {
    let mut scored: Vec<(f32, RecordId)> = rows
        .iter()
        .map(|(id, v)| (kernels::dot(q.as_slice(), v.as_slice()), *id))
        .filter(|(s, _)| *s >= threshold)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

fn search(
    shard: &reasonbank_memory::Shard,
    q: &Embedding,
    k: usize,
    threshold: Option<f32>,
) -> Vec<RecordId> {
    search_in(shard, q, k, threshold, SearchMode::Auto)
}

/// Rows rescored by the approximate modes in these tests: more than any shard here holds.
const EVERY_ROW: usize = 1_000_000;

fn search_in(
    shard: &reasonbank_memory::Shard,
    q: &Embedding,
    k: usize,
    threshold: Option<f32>,
    mode: SearchMode,
) -> Vec<RecordId> {
    let mut o = SearchOptions::new(k);
    o.mode(mode);
    if matches!(mode, SearchMode::Quantized | SearchMode::Binary) {
        o.rescore(EVERY_ROW);
    }
    if let Some(t) = threshold {
        o.threshold(t);
    }
    shard
        .search(&Query::vector(q.clone()), &o)
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect()
}

#[test]
fn exact_search_equals_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 48;
    let shard = open_shard(&dir.path().join("d.sqlite"), dim);
    let mut vecs = clustered(2500, dim, 12, 7);
    // Exact duplicates create score ties that must be broken by id.
    for i in 0..50 {
        vecs.push(vecs[i * 3].clone());
    }
    let recs: Vec<NewRecord> = vecs.iter().map(|v| NewRecord::new("", v.clone())).collect();
    let ids = shard.insert_batch(&recs).unwrap();
    let mut rows: Vec<(RecordId, Embedding)> = ids.into_iter().zip(vecs).collect();

    let queries = clustered(40, dim, 12, 99);
    let modes = [SearchMode::Exact, SearchMode::Quantized, SearchMode::Binary];
    let check = |rows: &[(RecordId, Embedding)]| {
        for mode in modes {
            for (i, q) in queries.iter().enumerate() {
                for k in [1, 10, 37] {
                    assert_eq!(
                        search_in(&shard, q, k, None, mode),
                        brute(rows, q, k, f32::NEG_INFINITY),
                        "{mode:?} query {i} k {k}"
                    );
                }
                assert_eq!(
                    search_in(&shard, q, 50, Some(0.6), mode),
                    brute(rows, q, 50, 0.6),
                    "{mode:?} query {i} threshold"
                );
                // A query equal to a stored duplicate: the tie is broken by id.
                let dup = &rows[i * 3].1;
                assert_eq!(
                    search_in(&shard, dup, 5, None, mode),
                    brute(rows, dup, 5, f32::NEG_INFINITY),
                    "{mode:?} duplicate {i}"
                );
            }
        }
    };
    check(&rows);

    // Deletes, updates of vectors, and fresh inserts keep the arena consistent.
    for i in (0..rows.len()).step_by(7).rev() {
        assert!(shard.delete(rows[i].0).unwrap());
        rows.swap_remove(i);
    }
    let newv = clustered(200, dim, 5, 1234);
    for (i, v) in newv.iter().enumerate().take(100) {
        let mut u = RecordUpdate::new();
        u.embedding(v.clone());
        shard.update(rows[i * 5].0, &u).unwrap();
        rows[i * 5].1 = v.clone();
    }
    for v in &newv[100..] {
        let id = shard.insert(&NewRecord::new("", v.clone())).unwrap();
        rows.push((id, v.clone()));
    }
    check(&rows);

    // Reopening rebuilds the arena from the rows: same answers.
    drop(shard);
    let shard = open_shard(&dir.path().join("d.sqlite"), dim);
    for q in &queries {
        for mode in modes {
            assert_eq!(
                search_in(&shard, q, 10, None, mode),
                brute(&rows, q, 10, f32::NEG_INFINITY),
                "{mode:?} after reopening"
            );
        }
    }
}

#[test]
fn large_scan_uses_threads_and_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let shard = open_shard(&dir.path().join("big.sqlite"), dim);
    let vecs = clustered(40_000, dim, 30, 3);
    let recs: Vec<NewRecord> = vecs.iter().map(|v| NewRecord::new("", v.clone())).collect();
    let ids = shard.insert_batch(&recs).unwrap();
    let rows: Vec<(RecordId, Embedding)> = ids.into_iter().zip(vecs).collect();
    for q in clustered(10, dim, 30, 4) {
        assert_eq!(
            search(&shard, &q, 20, None),
            brute(&rows, &q, 20, f32::NEG_INFINITY)
        );
    }
}

#[test]
fn k_larger_than_shard_and_empty_shard() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("e.sqlite"), 4);
    let q = Embedding::new(vec![1.0, 0.0, 0.0, 0.0]).unwrap();
    assert!(search(&shard, &q, 10, None).is_empty());
    for v in clustered(3, 4, 1, 1) {
        shard.insert(&NewRecord::new("", v)).unwrap();
    }
    assert_eq!(search(&shard, &q, 10, None).len(), 3);
}

/// Rows that differ by less than binary16 can resolve: the f16 first pass cannot order them,
/// so the result must come from the exact rescoring, and still equal brute force.
#[test]
fn near_ties_below_f16_resolution() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let dim = 384;
    let shard = open_shard(&dir.path().join("near.sqlite"), dim);
    let base = clustered(1, dim, 1, 8).remove(0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let vecs: Vec<Embedding> = (0..3000)
        .map(|_| {
            let v = base
                .as_slice()
                .iter()
                .map(|x| x + rng.random_range(-2e-5f32..2e-5))
                .collect();
            Embedding::new(v).unwrap()
        })
        .collect();
    let recs: Vec<NewRecord> = vecs.iter().map(|v| NewRecord::new("", v.clone())).collect();
    let ids = shard.insert_batch(&recs).unwrap();
    let rows: Vec<(RecordId, Embedding)> = ids.into_iter().zip(vecs).collect();
    for q in clustered(5, dim, 1, 8).into_iter().chain([base.clone()]) {
        for k in [1, 10, 100] {
            assert_eq!(
                search(&shard, &q, k, None),
                brute(&rows, &q, k, f32::NEG_INFINITY)
            );
        }
    }
}
