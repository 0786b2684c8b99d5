//! Opening a large shard before its arena is loaded: these tests hold the background load
//! back (`ShardOptions::load_gate`) to search in that window deterministically.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{
    Embedding, Error, NewRecord, Query, RecordId, RecordUpdate, SearchMode, SearchOptions, Shard,
    ShardOptions,
};

const DIM: usize = 32;

fn options(tweak: impl FnOnce(&mut ShardOptions)) -> ShardOptions {
    let mut o = ShardOptions::new();
    o.dimensions(DIM)
        .model_id("test-model")
        .index_threshold(500)
        .background_load_rows(1_000);
    tweak(&mut o);
    o
}

/// Unit vectors around `clusters` random centres.
fn vectors(n: usize, clusters: usize, rng: &mut StdRng) -> Vec<Embedding> {
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..clusters)];
            let v = c
                .iter()
                .map(|x| x + rng.random_range(-0.4f32..0.4))
                .collect();
            Embedding::new(v).unwrap()
        })
        .collect()
}

fn search(
    shard: &Shard,
    q: &Embedding,
    k: usize,
    mode: SearchMode,
) -> crate::Result<Vec<(RecordId, f32)>> {
    let mut o = SearchOptions::new(k);
    o.mode(mode);
    Ok(shard
        .search(&Query::vector(q.clone()), &o)?
        .into_iter()
        .map(|h| (h.id, h.score))
        .collect())
}

fn dot(a: &Embedding, b: &Embedding) -> f32 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

/// A shard of 3,000 rows with a saved index file, then changed without the index (so the
/// file's stamp is behind): 20 deleted, 20 moved next to `queries[0]`, 20 new rows there.
/// Returns the ids of each group.
fn prepare(
    path: &Path,
    queries: &[Embedding],
    rng: &mut StdRng,
) -> (Vec<RecordId>, Vec<RecordId>, Vec<RecordId>) {
    let base = vectors(3_000, 40, rng);
    let ids = {
        let shard = Shard::open(path, &options(|_| {})).unwrap();
        let recs: Vec<NewRecord> = base
            .iter()
            .map(|v| NewRecord::new("row", v.clone()))
            .collect();
        let ids = shard.insert_batch(&recs).unwrap();
        assert!(shard.wait_indexed(Duration::from_secs(300)));
        shard.save_index().unwrap();
        ids
    };
    let shard = Shard::open(
        path,
        &options(|o| {
            o.index_file(false);
        }),
    )
    .unwrap();
    // The rows nearest the first query go away, so a graph answer that kept them is caught.
    let nearest: Vec<RecordId> = search(&shard, &queries[0], 20, SearchMode::Exact)
        .unwrap()
        .into_iter()
        .map(|h| h.0)
        .collect();
    for id in &nearest {
        assert!(shard.delete(*id).unwrap());
    }
    let near = |rng: &mut StdRng| {
        let v = queries[0]
            .as_slice()
            .iter()
            .map(|x| x + rng.random_range(-0.05f32..0.05))
            .collect();
        Embedding::new(v).unwrap()
    };
    let moved: Vec<RecordId> = ids
        .iter()
        .rev()
        .filter(|id| !nearest.contains(id))
        .take(20)
        .copied()
        .collect();
    for id in &moved {
        let mut u = RecordUpdate::new();
        u.embedding(near(rng));
        shard.update(*id, &u).unwrap();
    }
    let added: Vec<NewRecord> = (0..20).map(|_| NewRecord::new("new", near(rng))).collect();
    let added = shard.insert_batch(&added).unwrap();
    (nearest, moved, added)
}

/// A shard made by `prepare` in a temporary directory, with its queries and changed rows.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    queries: Vec<Embedding>,
    deleted: Vec<RecordId>,
    moved: Vec<RecordId>,
    added: Vec<RecordId>,
}

fn fixture(seed: u64, queries: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let mut rng = StdRng::seed_from_u64(seed);
    let queries = vectors(queries, 40, &mut rng);
    let (deleted, moved, added) = prepare(&path, &queries, &mut rng);
    Fixture {
        _dir: dir,
        path,
        queries,
        deleted,
        moved,
        added,
    }
}

#[test]
fn answers_from_the_mapped_graph_while_the_arena_loads() {
    let Fixture {
        _dir,
        path,
        queries,
        deleted,
        moved,
        added,
    } = fixture(7, 30);

    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let shard = Shard::open(&path, &options(|o| o.load_gate = Some(Arc::clone(&gate)))).unwrap();
    let st = shard.index_status();
    assert!(st.arena_loading, "{st:?}");
    assert!(st.mapped && st.graph, "{st:?}");

    // The rows changed since the file was saved are scored from SQLite: the deleted ones
    // never come back and the moved and added ones (the nearest now) do.
    let early = search(&shard, &queries[0], 40, SearchMode::Ann).unwrap();
    let got: HashSet<RecordId> = early.iter().map(|h| h.0).collect();
    assert!(
        deleted.iter().all(|id| !got.contains(id)),
        "a deleted row came back"
    );
    assert!(
        moved.iter().chain(&added).all(|id| got.contains(id)),
        "a changed row is missing"
    );
    // A write goes through before the arena is in, and the next search sees it.
    let fresh = Embedding::new(queries[1].as_slice().to_vec()).unwrap();
    let fresh_id = shard.insert(&NewRecord::new("fresh", fresh)).unwrap();
    let early_auto: Vec<Vec<(RecordId, f32)>> = queries
        .iter()
        .map(|q| search(&shard, q, 10, SearchMode::Auto).unwrap())
        .collect();
    assert_eq!(early_auto[1][0].0, fresh_id);
    assert!(
        shard.index_status().arena_loading,
        "a vector search waited for the arena"
    );

    drop(held);
    // Exact search needs the arena: it waits for the load, then answers as always.
    let mut hit = 0;
    for (q, early) in queries.iter().zip(&early_auto) {
        let exact = search(&shard, q, 10, SearchMode::Exact).unwrap();
        let vectors: Vec<(RecordId, Embedding)> = early
            .iter()
            .map(|(id, _)| (*id, shard.get(*id).unwrap().unwrap().embedding.unwrap()))
            .collect();
        for ((id, score), (_, v)) in early.iter().zip(&vectors) {
            assert!(
                (dot(q, v) - score).abs() < 1e-5,
                "{id}: score is not the exact cosine"
            );
        }
        let kth = exact.last().unwrap().1;
        hit += early.iter().filter(|h| h.1 >= kth - 1e-6).count();
    }
    let recall = hit as f64 / (10 * queries.len()) as f64;
    assert!(recall >= 0.9, "recall@10 before the load {recall}");
    assert!(!shard.index_status().arena_loading);
    assert_eq!(shard.stats().unwrap().records, 3_001);
}

#[test]
fn other_searches_wait_for_the_arena() {
    let Fixture {
        _dir,
        path,
        queries,
        ..
    } = fixture(8, 5);
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let shard =
        Arc::new(Shard::open(&path, &options(|o| o.load_gate = Some(Arc::clone(&gate)))).unwrap());
    assert!(shard.index_status().arena_loading);
    let s = Arc::clone(&shard);
    let q = queries[0].clone();
    let exact = std::thread::spawn(move || search(&s, &q, 10, SearchMode::Exact).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !exact.is_finished(),
        "an exact search answered before the arena was in"
    );
    drop(held);
    let hits = exact.join().unwrap();
    assert_eq!(hits.len(), 10);
    assert_eq!(
        hits,
        search(&shard, &queries[0], 10, SearchMode::Exact).unwrap()
    );
}

#[test]
fn a_corrupt_row_found_by_the_background_load_is_an_error_not_a_gap() {
    let Fixture {
        _dir,
        path,
        queries,
        ..
    } = fixture(9, 5);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            // A row in the middle: the open checks the oldest and newest rows itself.
            "UPDATE records SET embedding = x'0000' WHERE rowid = 1500",
            [],
        )
        .unwrap();
    }
    let shard = Shard::open(&path, &options(|_| {})).unwrap();
    for _ in 0..2 {
        // Reported again on every call until the row is repaired.
        let err = shard.stats().unwrap_err();
        assert!(matches!(err, Error::CorruptRecord { .. }), "{err}");
    }
    let err = search(&shard, &queries[0], 10, SearchMode::Exact).unwrap_err();
    assert!(matches!(err, Error::CorruptRecord { .. }), "{err}");
}

/// A filtered search that filters its over-fetched rankings gives exactly what selecting the
/// matching rows first gives (same ids, scores, similarities and BM25 in the same order), for
/// vector, text and hybrid queries, with and without a threshold, and falls back to selecting
/// first only when the filter is too selective.
#[test]
fn post_filtered_search_equals_selecting_the_matching_rows_first() {
    use super::query::testing::{PREFILTER_ONLY, PREFILTERED};
    use crate::Filter;

    let dir = tempfile::tempdir().unwrap();
    let shard = Shard::open(
        dir.path().join("post.sqlite"),
        &options(|o| {
            o.index_threshold(100_000);
        }),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(41);
    let words = [
        "deploy", "staging", "retry", "parser", "cargo", "test", "timeout", "cache", "login",
        "token", "build", "docker", "schema", "index", "query", "merge",
    ];
    let vecs = vectors(2_000, 12, &mut rng);
    let recs: Vec<NewRecord> = vecs
        .iter()
        .map(|v| {
            let text: Vec<&str> = (0..rng.random_range(3..9))
                .map(|_| words[rng.random_range(0..words.len())])
                .collect();
            let kind = match rng.random_range(0..100) {
                0..60 => "common",
                60..97 => "other",
                _ => "rare",
            };
            let mut r = NewRecord::new(text.join(" "), v.clone());
            r.kind(kind);
            r
        })
        .collect();
    shard.insert_batch(&recs).unwrap();
    let filters = [
        Filter::Kind("common".into()),
        Filter::Not(Box::new(Filter::Kind("other".into()))),
        Filter::Kind("rare".into()),
    ];
    let run = |query: &Query, o: &SearchOptions, prefilter: bool| {
        PREFILTER_ONLY.with(|p| p.set(prefilter));
        let hits = shard.search(query, o).unwrap();
        PREFILTER_ONLY.with(|p| p.set(false));
        hits.into_iter()
            .map(|h| (h.id, h.score, h.similarity, h.bm25))
            .collect::<Vec<_>>()
    };
    let mut compared = 0;
    for round in 0..60 {
        let v = vectors(1, 12, &mut rng).remove(0);
        let t = format!(
            "{} {}",
            words[rng.random_range(0..words.len())],
            words[rng.random_range(0..words.len())]
        );
        let query = match round % 3 {
            0 => Query::vector(v),
            1 => Query::text(t),
            _ => Query::hybrid(v, t),
        };
        for f in &filters {
            for threshold in [None, Some(0.2)] {
                let mut o = SearchOptions::new([1, 5, 20][round % 3]);
                o.filter(f.clone()).mode(SearchMode::Exact);
                if let (Some(t), Some(_)) = (threshold, &query.vector) {
                    o.threshold(t);
                }
                let want = run(&query, &o, true);
                let got = run(&query, &o, false);
                assert_eq!(
                    got, want,
                    "round {round}, filter {f:?}, threshold {threshold:?}"
                );
                compared += got.len();
            }
        }
    }
    assert!(compared > 1_000, "the comparison saw hits: {compared}");
    // A filter keeping most rows never selects first; one keeping 3% always does.
    let count = |f: &Filter| {
        let before = PREFILTERED.with(std::cell::Cell::get);
        let mut o = SearchOptions::new(5);
        o.filter(f.clone());
        shard
            .search(&Query::hybrid(vecs[0].clone(), "deploy staging"), &o)
            .unwrap();
        PREFILTERED.with(std::cell::Cell::get) - before
    };
    assert_eq!(count(&filters[0]), 0);
    assert_eq!(count(&filters[2]), 1);
}

/// A candidate list longer than SQLite's limit of bound variables (32,766: a filtered search
/// with k = 10,000 over-fetches 40,000 rows per side) is one parameter, not a `?` per row.
#[test]
fn candidate_lists_longer_than_sqlites_variable_limit_are_one_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard::open(dir.path().join("many.sqlite"), &options(|_| {})).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let recs: Vec<NewRecord> = vectors(10, 2, &mut rng)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = NewRecord::new(format!("row {i}"), v);
            r.metadata(serde_json::json!({"even": i % 2 == 0}));
            r
        })
        .collect();
    shard.insert_batch(&recs).unwrap();
    let rowids: std::collections::BTreeSet<i64> = (1..=40_000).collect();
    let filter: crate::Filter = r#"{"eq":{"field":"even","value":true}}"#.parse().unwrap();
    let matching = shard.matching_rows(&filter, rowids.clone()).unwrap();
    assert_eq!(matching.len(), 5);
    let records = shard.fetch_records(rowids.into_iter()).unwrap();
    assert_eq!(records.len(), 10);
    assert!(matching.iter().all(|r| records[r].metadata["even"] == true));
}
