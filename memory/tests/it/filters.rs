//! Filters are applied before top-k and mean the same in SQL as in a reference evaluator.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reasonbank_memory::{Filter, NewRecord, Query, SearchOptions, TimeRange};
use serde_json::{Value, json};

use crate::{clustered, open_shard};

#[test]
fn filter_before_k_returns_k_matches() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("f.sqlite"), 32);
    let vecs = clustered(1000, 32, 8, 11);
    let recs: Vec<NewRecord> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = NewRecord::new(format!("row {i}"), v.clone());
            // 10 of 1,000 rows match; they sit far from the query's cluster.
            r.metadata(json!({"team": if i % 100 == 57 { "blue" } else { "red" }}));
            r
        })
        .collect();
    shard.insert_batch(&recs).unwrap();
    let f: Filter = r#"{"eq":{"field":"team","value":"blue"}}"#.parse().unwrap();
    let mut o = SearchOptions::new(5);
    o.filter(f.clone());
    let hits = shard.search(&Query::vector(vecs[0].clone()), &o).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.record.metadata["team"] == "blue"));
    o.k(50);
    assert_eq!(
        shard
            .search(&Query::vector(vecs[0].clone()), &o)
            .unwrap()
            .len(),
        10
    );
    assert_eq!(shard.count(Some(&f)).unwrap(), 10);
    assert_eq!(shard.scan(Some(&f), 100, None).unwrap().len(), 10);
}

/// The meaning of a filter, written independently of the SQL compiler.
fn eval(f: &Filter, kind: &str, meta: &Value, created: i64) -> bool {
    let get = |field: &str| field.split('.').try_fold(meta, |v, k| v.get(k));
    let eq = |a: Option<&Value>, b: &Value| match (a, b) {
        (Some(Value::Number(x)), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Some(a), b) => a == b,
        (None, _) => false,
    };
    let ord = |a: Option<&Value>, b: &Value| match (a, b) {
        (Some(Value::Number(x)), Value::Number(y)) => {
            x.as_f64().unwrap().partial_cmp(&y.as_f64().unwrap())
        }
        (Some(Value::String(x)), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    };
    use std::cmp::Ordering::*;
    match f {
        Filter::Eq { field, value } => eq(get(field), value),
        Filter::Ne { field, value } => !eq(get(field), value),
        Filter::Gt { field, value } => ord(get(field), value) == Some(Greater),
        Filter::Gte { field, value } => matches!(ord(get(field), value), Some(Greater | Equal)),
        Filter::Lt { field, value } => ord(get(field), value) == Some(Less),
        Filter::Lte { field, value } => matches!(ord(get(field), value), Some(Less | Equal)),
        Filter::In { field, values } => values.iter().any(|v| eq(get(field), v)),
        Filter::Nin { field, values } => !values.iter().any(|v| eq(get(field), v)),
        Filter::Exists { field } => get(field).is_some(),
        Filter::And(fs) => fs.iter().all(|g| eval(g, kind, meta, created)),
        Filter::Or(fs) => fs.iter().any(|g| eval(g, kind, meta, created)),
        Filter::Not(g) => !eval(g, kind, meta, created),
        Filter::Kind(k) => kind == k,
        Filter::Namespace(n) => n.is_empty(),
        Filter::CreatedAt(r) => {
            r.from.is_none_or(|a| created >= a) && r.to.is_none_or(|b| created < b)
        }
        _ => unreachable!("not generated"),
    }
}

fn random_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..6) {
        0 => json!(rng.random_range(-3..4)),
        1 => json!(rng.random_range(-3..4) as f64 + 0.5),
        2 => json!(["a", "b", "c", "1"][rng.random_range(0..4)]),
        3 => json!(rng.random_bool(0.5)),
        4 => Value::Null,
        _ => json!(rng.random_range(-3..4).to_string()),
    }
}

fn random_filter(rng: &mut StdRng, depth: usize) -> Filter {
    let field = ["x", "y", "nested.z", "missing"][rng.random_range(0..4)].to_owned();
    let scalar = |rng: &mut StdRng| random_value(rng);
    let orderable = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            json!(rng.random_range(-3..4))
        } else {
            json!(["a", "b", "c"][rng.random_range(0..3)])
        }
    };
    match rng.random_range(0..if depth > 2 { 10 } else { 13 }) {
        0 => Filter::Eq {
            field,
            value: scalar(rng),
        },
        1 => Filter::Ne {
            field,
            value: scalar(rng),
        },
        2 => Filter::Gt {
            field,
            value: orderable(rng),
        },
        3 => Filter::Gte {
            field,
            value: orderable(rng),
        },
        4 => Filter::Lt {
            field,
            value: orderable(rng),
        },
        5 => Filter::Lte {
            field,
            value: orderable(rng),
        },
        6 => Filter::In {
            field,
            values: (0..rng.random_range(0..4)).map(|_| scalar(rng)).collect(),
        },
        7 => Filter::Nin {
            field,
            values: (0..rng.random_range(0..4)).map(|_| scalar(rng)).collect(),
        },
        8 => Filter::Exists { field },
        9 => Filter::Kind(["a", "b"][rng.random_range(0..2)].into()),
        10 => Filter::And(
            (0..rng.random_range(0..3))
                .map(|_| random_filter(rng, depth + 1))
                .collect(),
        ),
        11 => Filter::Or(
            (0..rng.random_range(0..3))
                .map(|_| random_filter(rng, depth + 1))
                .collect(),
        ),
        _ => Filter::Not(Box::new(random_filter(rng, depth + 1))),
    }
}

#[test]
fn sql_filters_agree_with_reference_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("sem.sqlite"), 8);
    let mut rng = StdRng::seed_from_u64(5);
    let vecs = clustered(300, 8, 3, 2);
    let mut rows = Vec::new();
    let recs: Vec<NewRecord> = vecs
        .iter()
        .map(|v| {
            let mut meta = serde_json::Map::new();
            if rng.random_bool(0.8) {
                meta.insert("x".into(), random_value(&mut rng));
            }
            if rng.random_bool(0.8) {
                meta.insert("y".into(), random_value(&mut rng));
            }
            if rng.random_bool(0.5) {
                meta.insert("nested".into(), json!({"z": random_value(&mut rng)}));
            }
            let kind = ["a", "b"][rng.random_range(0..2)];
            let mut r = NewRecord::new("", v.clone());
            r.kind(kind).metadata(Value::Object(meta.clone()));
            rows.push((kind, Value::Object(meta)));
            r
        })
        .collect();
    let ids = shard.insert_batch(&recs).unwrap();
    let created = shard.get(ids[0]).unwrap().unwrap().created_at;
    for round in 0..400 {
        let f = random_filter(&mut rng, 0);
        let got: std::collections::HashSet<_> = shard
            .scan(Some(&f), 10_000, None)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let want: std::collections::HashSet<_> = ids
            .iter()
            .zip(&rows)
            .filter(|(_, (kind, meta))| eval(&f, kind, meta, created))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            got,
            want,
            "round {round}: {}",
            serde_json::to_string(&f).unwrap()
        );
    }
    // Time ranges.
    let all = shard
        .count(Some(&Filter::CreatedAt(TimeRange {
            from: Some(created),
            to: None,
        })))
        .unwrap();
    assert_eq!(all, 300);
    let none = shard
        .count(Some(&Filter::CreatedAt(TimeRange {
            from: None,
            to: Some(created),
        })))
        .unwrap();
    assert_eq!(none, 0);
    // A record written after the fact keeps the creation time it was given (its update time
    // is the write's), and time ranges select it by that.
    let mut old = NewRecord::new("last year's note", vecs[0].clone());
    old.created_at(1_700_000_000_000);
    let id = shard.insert(&old).unwrap();
    let rec = shard.get(id).unwrap().unwrap();
    assert_eq!(rec.created_at, 1_700_000_000_000);
    assert!(rec.updated_at >= created, "{rec:?}");
    let range = |from, to| {
        shard
            .count(Some(&Filter::CreatedAt(TimeRange { from, to })))
            .unwrap()
    };
    assert_eq!(range(None, Some(created)), 1);
    assert_eq!(range(Some(1_700_000_000_000), Some(1_700_000_000_001)), 1);
    assert_eq!(range(Some(created), None), 300);
}

#[test]
fn scan_pages_through_every_row_once_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open_shard(&dir.path().join("scan.sqlite"), 4);
    let recs: Vec<NewRecord> = clustered(250, 4, 2, 1)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = NewRecord::new(format!("r{i}"), v);
            r.metadata(json!({"even": i % 2 == 0}));
            r
        })
        .collect();
    let ids = shard.insert_batch(&recs).unwrap();
    shard.delete(ids[10]).unwrap();
    for (filter, want) in [
        (None, 249),
        (
            Some(Filter::Eq {
                field: "even".into(),
                value: json!(true),
            }),
            124,
        ),
    ] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = shard.scan(filter.as_ref(), 40, after).unwrap();
            assert!(page.len() <= 40);
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            seen.extend(page.iter().map(|r| r.id));
        }
        assert_eq!(seen.len(), want);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing ids"
        );
        assert!(!seen.contains(&ids[10]));
    }
}
