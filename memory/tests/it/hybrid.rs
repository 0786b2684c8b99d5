//! BM25 full-text search and its fusion with vector search.

use reasonbank_memory::{Embedding, Error, Filter, NewRecord, Query, SearchOptions};

use crate::open_shard;

fn e(v: &[f32]) -> Embedding {
    Embedding::new(v.to_vec()).unwrap()
}

#[test]
fn bm25_and_hybrid_fusion() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("h.sqlite"), 3);
    let texts = [
        (
            "retry the request with exponential backoff",
            [1.0, 0.0, 0.0],
        ),
        (
            "parse the configuration file once and cache it",
            [0.0, 1.0, 0.0],
        ),
        (
            "backoff jitter avoids thundering herds when retrying",
            [0.0, 0.0, 1.0],
        ),
        ("unrelated note about lunch", [0.7, 0.7, 0.0]),
    ];
    let mut ids = Vec::new();
    for (t, v) in texts {
        let mut r = NewRecord::new(t, e(&v));
        r.kind(if t.contains("lunch") {
            "note"
        } else {
            "pattern"
        });
        ids.push(shard.insert(&r).unwrap());
    }
    // Text only: both backoff records, none without the word; porter stemming matches "retrying".
    let hits = shard
        .search(&Query::text("Backoff!"), &SearchOptions::new(10))
        .unwrap();
    let got: Vec<_> = hits.iter().map(|h| h.id).collect();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&ids[0]) && got.contains(&ids[2]));
    assert!(
        hits.iter()
            .all(|h| h.bm25.unwrap() > 0.0 && h.similarity.is_none())
    );
    let hits = shard
        .search(&Query::text("retry"), &SearchOptions::new(10))
        .unwrap();
    assert_eq!(hits.len(), 2, "stemming: retry ~ retrying");

    // Vector only: nearest to the config record.
    let hits = shard
        .search(&Query::vector(e(&[0.1, 1.0, 0.0])), &SearchOptions::new(1))
        .unwrap();
    assert_eq!(hits[0].id, ids[1]);

    // Hybrid: the vector points at the config record, the text at the backoff records; the
    // record ranked well by both (jitter: second by vector, first by text) wins.
    let q = Query::hybrid(e(&[0.0, 0.6, 0.8]), "jitter backoff");
    let hits = shard.search(&q, &SearchOptions::new(4)).unwrap();
    assert_eq!(hits[0].id, ids[2]);
    assert!(hits[0].similarity.is_some() && hits[0].bm25.is_some());
    // Raising the vector weight far enough hands the top spot to pure vector ranking.
    let mut o = SearchOptions::new(4);
    o.text_weight(0.0);
    let hits = shard.search(&q, &o).unwrap();
    assert_eq!(hits[0].id, ids[2]);
    assert_eq!(hits[1].id, ids[1]);
    // Filters apply to both rankings.
    let mut o = SearchOptions::new(4);
    o.filter(Filter::Kind("note".into()));
    let hits = shard
        .search(&Query::hybrid(e(&[1.0, 0.0, 0.0]), "backoff"), &o)
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, ids[3]);
    // Threshold applies to text-only candidates of a hybrid query too.
    let mut o = SearchOptions::new(4);
    o.threshold(0.9);
    let hits = shard
        .search(&Query::hybrid(e(&[1.0, 0.0, 0.0]), "jitter"), &o)
        .unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![ids[0]]);

    // Deleted and updated text is reflected in the index in the same transaction.
    shard.delete(ids[2]).unwrap();
    let hits = shard
        .search(&Query::text("jitter"), &SearchOptions::new(10))
        .unwrap();
    assert!(hits.is_empty());
    let mut u = reasonbank_memory::RecordUpdate::new();
    u.text("now about jitter");
    shard.update(ids[1], &u).unwrap();
    let hits = shard
        .search(&Query::text("jitter"), &SearchOptions::new(10))
        .unwrap();
    assert_eq!(hits[0].id, ids[1]);
    assert!(
        shard
            .search(&Query::text("configuration"), &SearchOptions::new(10))
            .unwrap()
            .is_empty()
    );
    crate::assert_fts_consistent(&dir.path().join("h.sqlite"));
}

#[test]
fn fts_syntax_in_user_text_is_inert_and_bad_options_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("x.sqlite"), 2);
    shard
        .insert(&NewRecord::new("alpha NEAR beta", e(&[1.0, 0.0])))
        .unwrap();
    for q in [
        "alpha\" OR",
        "NEAR(alpha beta)",
        "beta*",
        "-alpha",
        "alpha:beta",
    ] {
        assert!(
            shard
                .search(&Query::text(q), &SearchOptions::new(3))
                .is_ok(),
            "{q}"
        );
    }
    for q in ["?!", "\"\"\"", ""] {
        let err = shard
            .search(&Query::text(q), &SearchOptions::new(3))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{q}");
    }
    for o in [
        SearchOptions::new(0),
        SearchOptions::new(10_001),
        {
            let mut o = SearchOptions::new(1);
            o.threshold(1.5);
            o
        },
        {
            let mut o = SearchOptions::new(1);
            o.vector_weight(f32::NAN);
            o
        },
        {
            let mut o = SearchOptions::new(1);
            o.text_weight(-1.0);
            o
        },
    ] {
        let err = shard
            .search(&Query::vector(e(&[1.0, 0.0])), &o)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{o:?}");
    }
    let mut o = SearchOptions::new(1);
    o.threshold(0.5);
    assert!(matches!(
        shard.search(&Query::text("alpha"), &o),
        Err(Error::InvalidOption { .. })
    ));
}

/// The in-memory BM25 index is derived from the rows: it follows this handle's writes and,
/// through `seq`, those of another handle on the same file.
#[test]
fn text_index_follows_writes_of_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let a = open_shard(&path, 3);
    let b = open_shard(&path, 3);
    let ids_of = |hits: Vec<reasonbank_memory::SearchHit>| -> Vec<_> {
        hits.into_iter().map(|h| h.id).collect()
    };
    let text = |s: &reasonbank_memory::Shard, q: &str| {
        ids_of(s.search(&Query::text(q), &SearchOptions::new(10)).unwrap())
    };
    let first = a
        .insert(&NewRecord::new("alpha beta", e(&[1.0, 0.0, 0.0])))
        .unwrap();
    assert_eq!(
        text(&a, "alpha"),
        [first],
        "index built at the first text search"
    );

    let second = b
        .insert(&NewRecord::new("alpha gamma", e(&[0.0, 1.0, 0.0])))
        .unwrap();
    let mut upd = reasonbank_memory::RecordUpdate::new();
    upd.text("delta");
    b.update(first, &upd).unwrap();
    assert_eq!(
        text(&a, "alpha"),
        [second],
        "another handle's insert and update"
    );
    assert_eq!(text(&a, "delta"), [first]);

    b.delete(second).unwrap();
    assert!(text(&a, "alpha").is_empty(), "another handle's delete");
    let mut upd = reasonbank_memory::RecordUpdate::new();
    upd.text("epsilon alpha");
    a.update(first, &upd).unwrap();
    assert_eq!(text(&a, "alpha"), [first], "this handle's own update");
    assert_eq!(
        text(&b, "epsilon"),
        [first],
        "the other handle builds its own index"
    );
    assert!(text(&a, "delta").is_empty());
}

/// A filter restricts BM25 before its top k, as it does vector search.
#[test]
fn text_search_applies_the_filter_before_k() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("f.sqlite"), 3);
    for i in 0..200 {
        let mut r = NewRecord::new(
            format!("shared words in note {i} {}", "extra ".repeat(i % 5)),
            e(&[1.0, i as f32, 0.0]),
        );
        r.kind(if i % 10 == 0 { "rare" } else { "common" });
        shard.insert(&r).unwrap();
    }
    let mut o = SearchOptions::new(15);
    o.filter(r#"{"kind": "rare"}"#.parse::<Filter>().unwrap());
    let hits = shard.search(&Query::text("shared note"), &o).unwrap();
    assert_eq!(hits.len(), 15);
    assert!(hits.iter().all(|h| h.record.kind == "rare"));
    let hits = shard
        .search(&Query::hybrid(e(&[1.0, 0.0, 0.0]), "shared note"), &o)
        .unwrap();
    assert_eq!(hits.len(), 15);
    assert!(hits.iter().all(|h| h.record.kind == "rare"));
}
