//! Criterion benches: every dot-product kernel this CPU runs, and exact search on a shard.

use criterion::{Criterion, criterion_group, criterion_main};
use reasonbank::memory::{
    Embedding, NewRecord, Query, SearchOptions, Shard, ShardOptions, kernels,
};
use std::hint::black_box;

fn vec_of(dim: usize, seed: u32) -> Vec<f32> {
    (0..dim)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 1000.0 - 0.5
        })
        .collect()
}

fn dot_kernels(c: &mut Criterion) {
    let (a, b) = (vec_of(384, 1), vec_of(384, 2));
    let mut g = c.benchmark_group("dot384");
    for k in kernels::available() {
        g.bench_function(k.name, |bench| {
            bench.iter(|| (k.dot)(black_box(&a), black_box(&b)))
        });
    }
    g.finish();
}

fn exact_search(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = ShardOptions::new();
    o.dimensions(384).model_id("bench");
    let shard = Shard::open(dir.path().join("s.sqlite"), &o).unwrap();
    let recs: Vec<NewRecord> = (0..10_000)
        .map(|i| NewRecord::new("", Embedding::new(vec_of(384, i)).unwrap()))
        .collect();
    shard.insert_batch(&recs).unwrap();
    let q = Query::vector(Embedding::new(vec_of(384, 99_999)).unwrap());
    let opts = SearchOptions::new(10);
    c.bench_function("search_exact_10k_384_k10", |b| {
        b.iter(|| shard.search(black_box(&q), &opts).unwrap())
    });
}

criterion_group!(benches, dot_kernels, exact_search);
criterion_main!(benches);
