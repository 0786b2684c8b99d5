//! The second local model, bge-small-en-v1.5: its files, recipe (CLS pooling, query
//! instruction) and id.

use std::sync::OnceLock;

use reasonbank_embedders::provision::{self, ProvisionOptions};
use reasonbank_embedders::{
    BGE_QUERY_INSTRUCTION, EmbedKind, Embedder, LazyDefaultEmbedder, LocalModel, OnnxEmbedder,
    Prefixes,
};

use crate::common::{dot, embedder};
use crate::onnx::{
    TOLERANCE, assert_matches_reference, assert_paraphrases_score_higher, max_abs_diff,
};

fn bge_options() -> ProvisionOptions {
    let mut p = ProvisionOptions::new();
    p.local_model(LocalModel::BgeSmallEnV15);
    p
}

/// The real bge-small-en-v1.5 embedder (2 intra-op threads), fetched and built once.
fn bge() -> &'static OnnxEmbedder {
    static BGE: OnceLock<OnnxEmbedder> = OnceLock::new();
    BGE.get_or_init(|| {
        // The runtime is committed once per process: the same library as the other tests.
        let _ = embedder();
        let files = provision::resolve(&bge_options())
            .unwrap_or_else(|e| panic!("provisioning bge-small-en-v1.5 failed: {e}"));
        assert_eq!(files.local_model, LocalModel::BgeSmallEnV15);
        OnnxEmbedder::builder()
            .files(files)
            .intra_threads(2)
            .build()
            .unwrap_or_else(|e| panic!("loading bge-small-en-v1.5 failed: {e}"))
    })
}

#[tokio::test]
async fn matches_python_reference_with_cls_pooling() {
    assert_matches_reference(bge(), "reference-bge-small-en-v1.5.json").await;
}

#[tokio::test]
async fn paraphrases_score_higher_than_unrelated_pairs() {
    assert_paraphrases_score_higher(bge()).await;
}

#[tokio::test]
async fn queries_carry_the_instruction_and_documents_do_not() {
    let text = "How do I reset my password?";
    let q = bge().embed_one(text, EmbedKind::Query).await.unwrap();
    let d = bge().embed_one(text, EmbedKind::Document).await.unwrap();
    let instructed = bge()
        .embed_one(
            &format!("{BGE_QUERY_INSTRUCTION}{text}"),
            EmbedKind::Document,
        )
        .await
        .unwrap();
    assert!(max_abs_diff(&q, &instructed) <= TOLERANCE);
    assert!(dot(&q, &d) < 0.999, "the instruction changes the vector");
}

#[test]
fn its_vectors_have_their_own_model_id() {
    assert_eq!(bge().model_id(), "bge-small-en-v1.5-int8");
    assert_eq!(bge().dimensions(), 384);
    assert_ne!(bge().model_id(), embedder().model_id());
    // Prefixes other than the model's own are part of the id: such vectors are not
    // interchangeable with the default recipe's.
    let plain = OnnxEmbedder::builder()
        .provision(bge_options())
        .prefixes(Prefixes::default())
        .build()
        .unwrap();
    assert_eq!(plain.model_id(), "bge-small-en-v1.5-int8;query_prefix=\"\"");
}

#[tokio::test]
async fn the_lazy_embedder_announces_and_loads_the_selected_model() {
    let _ = bge();
    let lazy = LazyDefaultEmbedder::new(bge_options());
    assert_eq!(lazy.model_id(), "bge-small-en-v1.5-int8");
    assert!(!lazy.is_loaded());
    let v = lazy
        .embed_one("a cat on a mat", EmbedKind::Document)
        .await
        .unwrap();
    let want = bge()
        .embed_one("a cat on a mat", EmbedKind::Document)
        .await
        .unwrap();
    assert!(lazy.is_loaded());
    assert!(max_abs_diff(&v, &want) <= TOLERANCE);
}

#[test]
fn an_explicit_model_file_is_checked_against_the_selected_models_pin() {
    // The default model's file is not bge's: refused by checksum, not loaded as bge.
    let minilm = crate::common::model_files().model.clone();
    let mut p = bge_options();
    p.model(minilm).allow_fetch(false);
    let err = provision::resolve(&p).unwrap_err();
    assert!(
        matches!(err, reasonbank_embedders::Error::ChecksumMismatch { .. }),
        "{err}"
    );
}
