//! The real ONNX embedder: reference vectors, semantics, edge cases.

use std::sync::Arc;

use reasonbank_embedders::{EmbedKind, Embedder, Error, OnnxEmbedder};

use crate::common::{dot, embedder, strings};

#[derive(serde::Deserialize)]
struct Reference {
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

/// `tests/data/<file>`, written by `embedders/scripts/make_reference.py`.
fn reference(file: &str) -> Reference {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Tolerance against the Python onnxruntime reference, per component. Observed: ~1.4e-7 (both
/// sides ONNX Runtime 1.31.1; Rust uses the `Basic` graph optimization and length-sorted batches,
/// the reference the default `All` and one text at a time).
pub(crate) const TOLERANCE: f32 = 1e-5;

/// `e` embeds the sentences of reference `file` (as documents) within [`TOLERANCE`] of Python
/// onnxruntime, in one batch and one at a time.
pub(crate) async fn assert_matches_reference(e: &OnnxEmbedder, file: &str) {
    let r = reference(file);
    let got = e.embed(&r.sentences, EmbedKind::Document).await.unwrap();
    assert_eq!(got.len(), r.embeddings.len());
    let mut worst = 0.0f32;
    for (i, (g, want)) in got.iter().zip(&r.embeddings).enumerate() {
        assert_eq!(g.len(), 384);
        let diff = max_abs_diff(g, want);
        worst = worst.max(diff);
        assert!(diff <= TOLERANCE, "sentence {i} differs by {diff}");
    }
    eprintln!("{file}: largest difference from the Python reference: {worst:e}");
    for (i, (s, want)) in r.sentences.iter().zip(&r.embeddings).enumerate() {
        let g = e.embed_one(s, EmbedKind::Document).await.unwrap();
        let diff = max_abs_diff(&g, want);
        assert!(diff <= TOLERANCE, "sentence {i} alone differs by {diff}");
    }
}

#[tokio::test]
async fn matches_python_reference() {
    assert_matches_reference(embedder(), "reference.json").await;
}

#[tokio::test]
async fn queries_and_documents_are_embedded_alike() {
    // all-MiniLM-L6-v2 has no query instruction.
    let text = "How do I reset my password?";
    let q = embedder().embed_one(text, EmbedKind::Query).await.unwrap();
    let d = embedder()
        .embed_one(text, EmbedKind::Document)
        .await
        .unwrap();
    assert_eq!(q, d);
}

#[tokio::test]
async fn vectors_are_unit_and_finite() {
    let texts = strings(&["hello world", "東京", "🍕🌮🍣", "naïve café"]);
    for v in embedder().embed(&texts, EmbedKind::Document).await.unwrap() {
        assert_eq!(v.len(), embedder().dimensions());
        assert!(v.iter().all(|x| x.is_finite()));
        let norm = dot(&v, &v).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[tokio::test]
async fn paraphrases_score_higher_than_unrelated_pairs() {
    assert_paraphrases_score_higher(embedder()).await;
}

/// Each sentence of five paraphrase pairs is closer (by more than 0.1) to its paraphrase than
/// to the other pairs' sentences.
pub(crate) async fn assert_paraphrases_score_higher(e: &OnnxEmbedder) {
    let pairs = [
        (
            "How do I reset my password?",
            "I forgot my password and need to change it.",
        ),
        ("The cat sits on the mat.", "A cat is sitting on a mat."),
        (
            "What is the capital of France?",
            "Paris is the capital and largest city of France.",
        ),
        (
            "The stock market fell sharply on Monday.",
            "Share prices dropped steeply at the start of the week.",
        ),
    ];
    let mut texts = Vec::new();
    for (a, b) in pairs {
        texts.push(a.to_owned());
        texts.push(b.to_owned());
    }
    let v = e.embed(&texts, EmbedKind::Document).await.unwrap();
    let n = pairs.len();
    for i in 0..n {
        let same = dot(&v[2 * i], &v[2 * i + 1]);
        for j in 0..n {
            if j != i {
                let other = dot(&v[2 * i], &v[2 * j + 1]);
                assert!(
                    same > other + 0.1,
                    "pair {i}: {same} vs unrelated {j}: {other}"
                );
            }
        }
    }
}

#[tokio::test]
async fn empty_and_whitespace_texts_are_typed_errors() {
    let e = embedder();
    let err = e
        .embed(&strings(&["fine", ""]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmptyText { index: 1 }), "{err}");
    let err = e.embed_one(" \t\n ", EmbedKind::Query).await.unwrap_err();
    assert!(matches!(err, Error::EmptyText { index: 0 }), "{err}");
    assert!(e.embed(&[], EmbedKind::Query).await.unwrap().is_empty());
}

#[tokio::test]
async fn long_text_is_truncated_to_256_tokens() {
    // ~100 KB of prose.
    let sentence = "Memory systems for agents store experiences and retrieve them later. ";
    let long: String = sentence.repeat(100 * 1024 / sentence.len() + 1);
    assert!(long.len() >= 100 * 1024);
    let e = embedder();
    assert_eq!(e.token_count(&long).unwrap(), 256);
    let v = e.embed_one(&long, EmbedKind::Document).await.unwrap();
    // Truncation keeps the start: the same as embedding the first ~256 tokens' worth.
    let prefix: String = sentence.repeat(30);
    let w = e.embed_one(&prefix, EmbedKind::Document).await.unwrap();
    assert!(dot(&v, &w) > 0.99);
}

#[test]
fn count_tokens_is_untruncated_and_cached_embedders_delegate() {
    let sentence = "Memory systems for agents store experiences and retrieve them later. ";
    let e = embedder();
    let one = e.count_tokens(sentence).unwrap();
    // `token_count` adds [CLS] and [SEP]; `count_tokens` counts the text alone.
    assert_eq!(one + 2, e.token_count(sentence).unwrap());
    // Far past the 256-token truncation, the count keeps growing with the text.
    assert_eq!(e.count_tokens(&sentence.repeat(40)).unwrap(), 40 * one);
    let mixed = "Die Größe von 東京 ist beeindruckend; naïve café-owners agree. ".repeat(60);
    let piece = "Die Größe von 東京 ist beeindruckend; naïve café-owners agree. ";
    assert_eq!(
        e.count_tokens(&mixed).unwrap(),
        60 * e.count_tokens(piece).unwrap()
    );
    let spaced = format!("{}{sentence}", " ".repeat(5000));
    assert_eq!(e.count_tokens(&spaced).unwrap(), one);
    let dynamic: Arc<dyn Embedder> = Arc::new(e.clone());
    let cached = reasonbank_embedders::CachedEmbedder::builder(dynamic)
        .build()
        .unwrap();
    assert_eq!(cached.count_tokens(sentence), Some(one));
}

#[tokio::test]
async fn order_is_preserved_across_length_sorted_batches() {
    let mut texts = Vec::new();
    for i in 0..150 {
        let words = 1 + (i * 37) % 90;
        texts.push(format!("item {i} ") + &"word ".repeat(words));
    }
    let e = embedder();
    let batch = e.embed(&texts, EmbedKind::Document).await.unwrap();
    for i in [0usize, 1, 17, 75, 149] {
        let one = e.embed_one(&texts[i], EmbedKind::Document).await.unwrap();
        let diff = max_abs_diff(&one, &batch[i]);
        assert!(diff <= TOLERANCE, "text {i} differs by {diff}");
    }
}

#[tokio::test]
async fn works_as_arc_dyn_embedder_with_a_cache() {
    let dynamic: Arc<dyn Embedder> = Arc::new(embedder().clone());
    let cached = reasonbank_embedders::CachedEmbedder::builder(dynamic)
        .build()
        .unwrap();
    let a = cached
        .embed_one("cache me", EmbedKind::Query)
        .await
        .unwrap();
    let b = cached
        .embed_one("cache me", EmbedKind::Query)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(cached.model_id(), reasonbank_embedders::DEFAULT_MODEL_ID);
}

#[tokio::test]
async fn default_embedder_is_a_shared_cached_onnx_embedder() {
    // Commit the runtime the same way as the other tests (same library, so no conflict).
    let _ = embedder();
    let opts = reasonbank_embedders::provision::ProvisionOptions::new();
    let shared = tokio::task::spawn_blocking(move || reasonbank_embedders::default_embedder(&opts))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shared.dimensions(), 384);
    let a = shared.embed_one("hello", EmbedKind::Query).await.unwrap();
    let b = embedder()
        .embed_one("hello", EmbedKind::Query)
        .await
        .unwrap();
    assert!(max_abs_diff(&a, &b) <= TOLERANCE);
}
