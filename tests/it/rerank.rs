//! Reranked recall (issue #16): `RecallOptions::rerank` through a reranker configured with
//! `AgentMemoryBuilder::rerank_server`, against an in-test server speaking the `/v1/rerank`
//! protocol, with the real model for the first stage.

use reasonbank::embedders::test_server::{Reply, TestServer};
use reasonbank::{AgentMemory, Error, Memory, RecallOptions};

const NOTES: [&str; 4] = [
    "Cats sleep for most of the day in a warm spot.",
    "Cats purr when they are content, and sometimes when they are hurt.",
    "The cat door sticks in winter; oil the hinge.",
    "Dogs bark at the mail carrier every morning.",
];

async fn memory(root: &std::path::Path, reranker: Option<&TestServer>) -> AgentMemory {
    let mut b = AgentMemory::builder(root);
    b.agent("pets");
    if let Some(s) = reranker {
        b.rerank_server(&s.base_url(), "test-reranker").unwrap();
    }
    let m = b.build().await.unwrap();
    m.remember_batch(NOTES.iter().map(|t| Memory::new(*t)).collect())
        .await
        .unwrap();
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_16_a_reranked_recall_returns_the_rerankers_best_k() {
    // Prefers the cat door, then anything about purring; the rest last.
    let server = TestServer::start(|r| {
        Reply::rerank(r, |_, doc| {
            if doc.contains("door") {
                4.0
            } else if doc.contains("purr") {
                2.5
            } else {
                -1.0
            }
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let m = memory(dir.path(), Some(&server)).await;
    let mut o = RecallOptions::new();
    o.k(2).rerank(3);
    let hits = m.recall("what do cats do", &o).await.unwrap();
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, [NOTES[2], NOTES[1]], "{hits:?}");
    assert_eq!(hits[0].score, 4.0);
    assert_eq!(hits[0].why.rerank, Some(4.0));
    assert!(
        hits[0].why.similarity.is_some(),
        "the first stage's signals stay"
    );
    // The reranker saw the first stage's best 3 (not the dog) and the query.
    let calls = server.requests();
    assert_eq!(calls.len(), 1);
    let body = calls[0].json();
    assert_eq!(body["query"], "what do cats do");
    let docs = body["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    assert!(!docs.iter().any(|d| d.as_str().unwrap().contains("Dogs")));

    // Without `rerank`, recall does not call the reranker.
    let plain = m
        .recall("what do cats do", &RecallOptions::new())
        .await
        .unwrap();
    assert!(plain.iter().all(|h| h.why.rerank.is_none()));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_16_reranking_without_a_reranker_or_with_a_failing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = memory(&dir.path().join("a"), None).await;
    let mut o = RecallOptions::new();
    o.k(2).rerank(10);
    let err = m.recall("cats", &o).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { what: "rerank", .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "RB_INVALID_INPUT");
    assert!(err.to_string().contains("no reranker"), "{err}");

    let down = TestServer::always(Reply::new(503, r#"{"error":"loading model"}"#));
    let m = memory(&dir.path().join("b"), Some(&down)).await;
    // Fewer candidates than results is a usage error, before any call.
    o.k(5).rerank(3);
    let err = m.recall("cats", &o).await.unwrap_err();
    assert_eq!(err.code(), "RB_INVALID_INPUT", "{err}");
    assert!(down.requests().is_empty());
    o.rerank(5);
    let err = m.recall("cats", &o).await.unwrap_err();
    assert!(matches!(&err, Error::Rerank { .. }), "{err:?}");
    assert_eq!(err.code(), "RB_RERANK");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        cause.contains("503") && cause.contains("loading model"),
        "{cause}"
    );

    // Both settings or neither.
    let mut b = AgentMemory::builder(dir.path());
    let err = b
        .rerank_options(
            Some("http://127.0.0.1:1/v1"),
            None,
            ["rerankUrl", "rerankModel"],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("rerankUrl and rerankModel"),
        "{err}"
    );
}
